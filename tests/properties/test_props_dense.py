"""Property tests (hypothesis) for coursekit.dense: the scale-invariant depth loss (and its
literal loop), the depth metrics, the end-point error, the flow metrics and the backward warp.

Drawn: batches of 0..3 log-depth maps of 0..6 x 0..6 pixels (single [H, W] maps too), masks
keeping every pixel, some of them or none, λ in [0, 1], global log-scales per image, positive
depths over two orders of magnitude, flow fields of up to ±4 pixels (so the border clamps),
integer flows, images 1 pixel wide; float32 / float64. References: the formulas written out in
numpy float64 (``1/n Σ d² − λ/n² (Σ d)²`` image by image, AbsRel, SqRel, RMSE, RMSE(log),
δ < 1.25^k, ``mean ‖f − f*‖₂``, the 1 / 3 / 5 px rates), ``F.grid_sample`` (``align_corners
=False``, border padding) and plain indexing for the warp; plus the invariants of the
definitions (λ = 1 forgives a global scale, D ≥ 0 and decreasing in λ, a perfect prediction,
metrics unchanged when both depths are scaled, EPE symmetric with a triangle inequality) and
gradcheck on small float64 inputs. Checked on every device this machine has; seeded
(``derandomize=True``).

Conventions pinned here (documented in the code, not in the formulas): an image with no valid
pixel adds 0 to the loss's mean over images (``n`` is clamped to 1), an empty batch gives NaN
(the mean of nothing, as ``F.mse_loss``), the EPE of no valid pixel is 0, and the metrics
refuse an empty selection with a ``ValueError``.
"""

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds
from torch.testing import assert_close

from coursekit.dense import (
    depth_metrics,
    end_point_error,
    flow_metrics,
    scale_invariant_loss,
    scale_invariant_loss_loop,
    warp,
)

sizes = st.integers(0, 6)
# [N, H, W] with N = 0 and empty images included, or one [H, W] map
depth_shapes = st.one_of(st.tuples(st.integers(0, 3), sizes, sizes), st.tuples(sizes, sizes))
lams = st.one_of(st.sampled_from([0.0, 0.5, 1.0]), st.floats(0, 1))
p_masks = st.sampled_from([None, 1.0, 0.6, 0.0])  # no mask, all, some, none of the pixels


def random_mask(g, shape, p):
    return None if p is None else torch.rand(shape, generator=g) < p


def tol(dtype):
    return {"rtol": 1e-10, "atol": 1e-10} if dtype == F64 else {"rtol": 2e-5, "atol": 2e-5}


# --------------------------------------------------------------------------- depth: the loss
def si_loss_formula(pred_log, target_log, mask, lam):
    """``mean over images of 1/n Σ d² − λ/n² (Σ d)²``, numpy float64, image by image; an image
    with no valid pixel adds 0; no image at all: NaN."""
    images = 1 if pred_log.dim() == 2 else pred_log.shape[0]
    p = pred_log.detach().cpu().double().numpy().reshape(images, *pred_log.shape[-2:])
    t = target_log.detach().cpu().double().numpy().reshape(p.shape)
    m = np.ones(p.shape, bool) if mask is None else mask.cpu().numpy().reshape(p.shape)
    values = []
    for pi, ti, mi in zip(p, t, m, strict=True):
        d = (pi - ti)[mi]
        n = d.size
        values.append(0.0 if n == 0 else (d**2).sum() / n - lam * d.sum() ** 2 / n**2)
    return float(np.mean(values)) if values else float("nan")


@on_devices
@PROPS
@given(seed=seeds, shape=depth_shapes, lam=lams, p_mask=p_masks, dtype=floats)
def test_scale_invariant_loss_is_the_formula(device, seed, shape, lam, p_mask, dtype):
    g = gen(seed)
    target = (torch.randn(shape, generator=g, dtype=F64) + 1).to(device, dtype)
    pred = (target.double().cpu() + torch.randn(shape, generator=g, dtype=F64) * 0.5).to(device,
                                                                                        dtype)
    mask = random_mask(g, shape, p_mask)
    mask = None if mask is None else mask.to(device)
    loss = scale_invariant_loss(pred, target, mask, lam)
    assert loss.shape == () and loss.dtype == dtype and loss.device == pred.device
    expected = si_loss_formula(pred, target, mask, lam)
    if np.isnan(expected):  # an empty batch: the mean of nothing
        assert loss.isnan()
        return
    assert_close(loss.double().cpu(), torch.tensor(expected, dtype=F64), **tol(dtype))
    if mask is not None:  # no mask is the all-True mask
        full = torch.ones(shape, dtype=torch.bool, device=device)
        assert torch.equal(scale_invariant_loss(pred, target, None, lam),
                           scale_invariant_loss(pred, target, full, lam))
    elif pred.numel():  # the literal loop (it needs pixels: 1/n)
        loop = scale_invariant_loss_loop(pred.cpu().double(), target.cpu().double(), lam)
        assert_close(loss.double().cpu(), torch.tensor(loop, dtype=F64), **tol(dtype))


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(1, 3), hw=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       p_mask=p_masks, dtype=floats)
def test_scale_invariant_loss_invariants(device, seed, n, hw, p_mask, dtype):
    g = gen(seed)
    target = torch.randn(n, *hw, generator=g, dtype=F64)
    pred = target + torch.randn(n, *hw, generator=g, dtype=F64) * 0.5
    shift = torch.randn(n, 1, 1, generator=g, dtype=F64) * 2  # log of a scale, per image
    mask = random_mask(g, (n, *hw), p_mask)
    mask = None if mask is None else mask.to(device)
    pred, target, shift = (x.to(device, dtype) for x in (pred, target, shift))

    def loss(p, lam):
        return scale_invariant_loss(p, target, mask, lam).double().cpu()

    values = [loss(pred, lam) for lam in (0.0, 0.25, 0.5, 0.75, 1.0)]
    # D = mean d² − λ mean(d)²: a variance plus (1 − λ) mean², never negative, and linear,
    # decreasing in λ
    assert all(float(v) >= -tol(dtype)["atol"] for v in values)
    assert all(float(a) >= float(b) - tol(dtype)["atol"] for a, b in itertools.pairwise(values))
    assert_close(values[2], (values[0] + values[4]) / 2, **tol(dtype))
    # λ = 1: multiplying each image's prediction by its own factor changes nothing
    assert_close(loss(pred + shift, 1.0), values[4], rtol=1e-4 if dtype != F64 else 1e-9,
                 atol=1e-4 if dtype != F64 else 1e-9)
    # λ = 0 is the mean (per image, then over images) squared log error
    valid = torch.ones(n, *hw, dtype=torch.bool) if mask is None else mask.cpu()
    d2 = (pred - target).double().cpu() ** 2 * valid
    mse = (d2.flatten(1).sum(1) / valid.flatten(1).sum(1).clamp(min=1)).mean()
    assert_close(values[0], mse, **tol(dtype))
    # a perfect prediction: 0 whatever λ
    assert loss(target, 0.5).item() == 0


@PROPS
@given(seed=seeds, shape=st.one_of(st.tuples(st.integers(1, 2), st.integers(1, 3),
                                             st.integers(1, 3)),
                                   st.tuples(st.integers(1, 3), st.integers(1, 3))),
       lam=lams, p_mask=p_masks)
def test_scale_invariant_loss_gradcheck(seed, shape, lam, p_mask):
    g = gen(seed)
    pred = torch.randn(shape, generator=g, dtype=F64, requires_grad=True)
    target = torch.randn(shape, generator=g, dtype=F64, requires_grad=True)
    mask = random_mask(g, shape, p_mask)
    assert torch.autograd.gradcheck(lambda p, t: scale_invariant_loss(p, t, mask, lam),
                                    (pred, target))


# ------------------------------------------------------------------------ depth: the metrics
def depth_metrics_formula(pred, target, mask):
    p = pred.detach().cpu().double().numpy()
    t = target.detach().cpu().double().numpy()
    if mask is not None:
        m = mask.cpu().numpy()
        p, t = p[m], t[m]
    p, t = p.ravel(), t.ravel()
    ratio = np.maximum(p / t, t / p)
    return {"abs_rel": np.mean(np.abs(p - t) / t), "sq_rel": np.mean((p - t) ** 2 / t),
            "rmse": np.sqrt(np.mean((p - t) ** 2)),
            "rmse_log": np.sqrt(np.mean((np.log(p) - np.log(t)) ** 2)),
            "delta1": np.mean(ratio < 1.25), "delta2": np.mean(ratio < 1.25**2),
            "delta3": np.mean(ratio < 1.25**3)}


any_shapes = st.one_of(st.tuples(st.integers(0, 12)), st.tuples(sizes, sizes),
                       st.tuples(st.integers(0, 3), sizes, sizes))


@on_devices
@PROPS
@given(seed=seeds, shape=any_shapes, p_mask=p_masks, dtype=floats,
       scale=st.sampled_from([0.25, 2.0, 8.0]))
def test_depth_metrics_are_the_formulas(device, seed, shape, p_mask, dtype, scale):
    g = gen(seed)
    target = torch.exp(torch.rand(shape, generator=g, dtype=F64) * 4.6 - 1)  # 0.37 m .. 37 m
    pred = target * torch.exp(torch.randn(shape, generator=g, dtype=F64) * 0.3)
    mask = random_mask(g, shape, p_mask)
    pred, target = pred.to(device, dtype), target.to(device, dtype)
    mask = None if mask is None else mask.to(device)
    selected = target.numel() if mask is None else int(mask.sum())
    if selected == 0:  # nothing to score: a clear error, not NaN
        with pytest.raises(ValueError, match="mask selects no pixel"):
            depth_metrics(pred, target, mask)
        return
    ours = depth_metrics(pred, target, mask)
    ref = depth_metrics_formula(pred, target, mask)
    assert ours.keys() == ref.keys() and all(isinstance(v, float) for v in ours.values())
    rel = 1e-10 if dtype == F64 else 1e-5
    for key, value in ref.items():
        assert ours[key] == pytest.approx(float(value), rel=rel, abs=rel), key
    assert 0 <= ours["delta1"] <= ours["delta2"] <= ours["delta3"] <= 1
    # a perfect prediction
    assert depth_metrics(target, target, mask) == {
        "abs_rel": 0.0, "sq_rel": 0.0, "rmse": 0.0, "rmse_log": 0.0,
        "delta1": 1.0, "delta2": 1.0, "delta3": 1.0}
    # both depths in other units (a power of two: exact): the relative metrics stay, RMSE and
    # SqRel scale
    scaled = depth_metrics(pred * scale, target * scale, mask)
    for key in ("abs_rel", "rmse_log", "delta1", "delta2", "delta3"):
        assert scaled[key] == pytest.approx(ours[key], rel=rel, abs=rel), key
    assert scaled["rmse"] == pytest.approx(ours["rmse"] * scale, rel=rel, abs=rel)
    assert scaled["sq_rel"] == pytest.approx(ours["sq_rel"] * scale, rel=rel, abs=rel)
    if mask is not None:  # the mask is the same as selecting the pixels
        assert depth_metrics(pred[mask], target[mask]) == pytest.approx(ours, rel=rel, abs=rel)


# ---------------------------------------------------------------------------- flow: the EPE
flow_shapes = st.one_of(st.tuples(st.integers(0, 3), st.just(2), sizes, sizes),
                        st.tuples(st.just(2), sizes, sizes))


def epe_formula(pred, true, mask):
    """Per valid pixel ``sqrt(dx² + dy²)`` in numpy float64 (pixels as (..., H, W))."""
    d = pred.detach().cpu().double().numpy() - true.detach().cpu().double().numpy()
    epe = np.sqrt((d**2).sum(axis=-3))
    return epe if mask is None else epe[mask.cpu().numpy()]


@on_devices
@PROPS
@given(seed=seeds, shape=flow_shapes, p_mask=p_masks, dtype=floats)
def test_end_point_error_and_flow_metrics_are_the_formulas(device, seed, shape, p_mask, dtype):
    g = gen(seed)
    true = torch.randn(shape, generator=g, dtype=F64) * 3
    pred = true + torch.randn(shape, generator=g, dtype=F64) * torch.rand(1, generator=g) * 6
    other = torch.randn(shape, generator=g, dtype=F64) * 3
    pixels = shape[:-3] + shape[-2:]
    mask = random_mask(g, pixels, p_mask)
    pred, true, other = (x.to(device, dtype) for x in (pred, true, other))
    mask = None if mask is None else mask.to(device)
    epe = end_point_error(pred, true, mask)
    assert epe.shape == () and epe.dtype == dtype and epe.device == pred.device
    per_pixel = epe_formula(pred, true, mask)
    # the code adds 1e-12 under the root (a finite gradient at 0): at most 1e-6 per pixel
    atol = 2e-6 if dtype == F64 else 2e-5
    expected = float(per_pixel.mean()) if per_pixel.size else 0.0  # no valid pixel: 0
    assert epe.item() == pytest.approx(expected, rel=1e-5 if dtype != F64 else 1e-10, abs=atol)
    # a distance: symmetric, (about) 0 on itself, triangle inequality (pixel by pixel, so for
    # the mean too)
    assert torch.equal(end_point_error(true, pred, mask), epe)
    assert 0 <= end_point_error(pred, pred, mask).item() <= 1e-6 * (1 + 1e-3)
    assert epe.item() <= (end_point_error(pred, other, mask)
                          + end_point_error(other, true, mask)).item() + atol
    if per_pixel.size == 0:  # the metrics refuse to score nothing
        with pytest.raises(ValueError, match="mask selects no pixel"):
            flow_metrics(pred, true, mask)
        return
    metrics = flow_metrics(pred, true, mask)
    assert metrics.keys() == {"epe", "1px", "3px", "5px"}
    rel = 1e-10 if dtype == F64 else 1e-5
    assert metrics["epe"] == pytest.approx(float(per_pixel.mean()), rel=rel, abs=rel)
    for k in (1, 3, 5):
        assert metrics[f"{k}px"] == pytest.approx(float((per_pixel < k).mean()), rel=rel, abs=rel)
    assert 0 <= metrics["1px"] <= metrics["3px"] <= metrics["5px"] <= 1
    assert metrics["epe"] == pytest.approx(epe.item(), abs=atol)


@PROPS
@given(seed=seeds, n=st.integers(1, 2), hw=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       p_mask=p_masks)
def test_end_point_error_gradcheck(seed, n, hw, p_mask):
    g = gen(seed)
    pred = torch.randn(n, 2, *hw, generator=g, dtype=F64)
    true = pred + (torch.rand(n, 2, *hw, generator=g, dtype=F64) + 0.2)  # away from 0
    mask = random_mask(g, (n, *hw), p_mask)
    assert torch.autograd.gradcheck(lambda p, t: end_point_error(p, t, mask),
                                    (pred.requires_grad_(), true.requires_grad_()))


# ---------------------------------------------------------------------------- flow: the warp
def grid_sample_warp(image, flow):
    """``F.grid_sample`` in float64 with the grid of flow.py's docstring (align_corners=False)."""
    image, flow = image.double(), flow.double()
    n, _, h, w = image.shape
    ys = torch.arange(h, dtype=F64, device=image.device).view(1, h, 1)
    xs = torch.arange(w, dtype=F64, device=image.device).view(1, 1, w)
    gx = (2 * (xs + flow[:, 0]) + 1) / w - 1
    gy = (2 * (ys + flow[:, 1]) + 1) / h - 1
    return F.grid_sample(image, torch.stack([gx, gy], -1), mode="bilinear",
                         padding_mode="border", align_corners=False)


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2), c=st.integers(1, 3),
       hw=st.tuples(st.integers(1, 6), st.integers(1, 6)), reach=st.sampled_from([0.5, 2.0, 4.0]),
       batched=st.booleans(), dtype=floats)
def test_warp_is_grid_sample(device, seed, n, c, hw, reach, batched, dtype):
    assume(batched or n == 1)
    g = gen(seed)
    image = torch.randn(n, c, *hw, generator=g, dtype=F64).to(device, dtype)
    flow = ((torch.rand(n, 2, *hw, generator=g, dtype=F64) * 2 - 1) * reach).to(device, dtype)
    ref = grid_sample_warp(image, flow)
    if not batched:  # a single [C, H, W] image and [2, H, W] flow
        image, flow, ref = image[0], flow[0], ref[0]
    out = warp(image, flow)
    assert out.shape == image.shape and out.dtype == dtype and out.device == image.device
    assert_close(out.double(), ref, **tol(dtype))
    if batched and n:  # each image on its own
        for i in range(n):
            assert_close(warp(image[i], flow[i]), out[i], rtol=0, atol=0)
    # the zero flow reads every pixel where it is
    assert torch.equal(warp(image, torch.zeros_like(flow)), image)


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(1, 2), c=st.integers(1, 3),
       hw=st.tuples(st.integers(1, 6), st.integers(1, 6)), dtype=floats)
def test_warp_by_an_integer_flow_is_indexing(device, seed, n, c, hw, dtype):
    # an integer flow reads single pixels: out[n, :, y, x] = image[n, :, clamp(y + dy),
    # clamp(x + dx)], exactly
    g = gen(seed)
    h, w = hw
    image = torch.randn(n, c, h, w, generator=g, dtype=F64).to(device, dtype)
    flow = torch.randint(-4, 5, (n, 2, h, w), generator=g)
    out = warp(image, flow.to(device, dtype))
    ys = (torch.arange(h).view(1, h, 1) + flow[:, 1]).clamp(0, h - 1)  # (N, H, W)
    xs = (torch.arange(w).view(1, 1, w) + flow[:, 0]).clamp(0, w - 1)
    batch = torch.arange(n).view(n, 1, 1)
    expected = image.cpu()[batch, :, ys, xs].permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    assert torch.equal(out.cpu(), expected)


@PROPS
@given(seed=seeds, c=st.integers(1, 2), hw=st.tuples(st.integers(1, 4), st.integers(1, 4)))
def test_warp_gradcheck(seed, c, hw):
    g = gen(seed)
    image = torch.randn(1, c, *hw, generator=g, dtype=F64, requires_grad=True)
    # inside the image and away from the integer kinks of the bilinear weights
    h, w = hw
    frac = torch.rand(1, 2, *hw, generator=g, dtype=F64) * 0.6 + 0.2
    base = torch.stack([torch.randint(-1, 1, (1, *hw), generator=g),
                        torch.randint(-1, 1, (1, *hw), generator=g)], 1).to(F64)
    flow = (base + frac).requires_grad_()
    if h == 1 or w == 1:  # a 1-pixel axis is all border: the flow's gradient there is 0
        flow = flow.detach()
    assert torch.autograd.gradcheck(warp, (image, flow))


@PROPS
@given(n=st.integers(1, 2), hw=st.tuples(st.integers(1, 4), st.integers(1, 4)))
def test_warp_of_an_image_without_channels_is_empty(n, hw):
    image = torch.zeros(n, 0, *hw)
    out = warp(image, torch.zeros(n, 2, *hw))
    assert out.shape == image.shape and torch.equal(out, grid_sample_warp(image, torch.zeros(
        n, 2, *hw)).float())


@PROPS
@given(n=st.integers(0, 2), c=st.integers(1, 2), hw=st.sampled_from([(0, 3), (3, 0), (0, 0)]))
def test_warp_of_an_empty_image_is_empty_or_names_image(n, c, hw):
    image = torch.zeros(n, c, *hw)
    try:
        out = warp(image, torch.zeros(n, 2, *hw))
    except ValueError as err:
        assert "image" in str(err), str(err)
    else:
        assert out.shape == image.shape
