"""Property tests (hypothesis) for coursekit.densepose: the CSE loss, nearest vertices, the IUV
decoding and picture, the part metrics and reading RoI maps at annotated points.

Drawn: counts (0 included), embedding widths, vertex counts (1 included), temperatures, map
sizes (1 included), batch shapes and dtypes. References: the formulas written out directly in
float64 (``-log softmax_k(-||e - v_k||^2 / t)[k*]``, the arg max over parts, the confusion
matrix) and ``F.grid_sample`` for the bilinear read; plus the invariants (a perfect prediction
has part IoU 1 and UV error 0). Checked on every device this machine has; seeded
(``derandomize=True``).
"""

import math

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds
from torch.testing import assert_close

from coursekit.densepose import (
    NUM_PARTS,
    cse_loss,
    decode_iuv,
    iuv_image,
    nearest_vertices,
    part_confusion,
    part_iou,
    sample_at_points,
    uv_error,
)


# ---------------------------------------------------------------------------------- CSE loss
def cse_reference(e, v, target, temperature):
    """The docstring's formula, one point at a time, in float64."""
    e, v = e.cpu().double().tolist(), v.cpu().double().tolist()
    total = 0.0
    for n in range(len(e)):
        logits = [-sum((a - b) ** 2 for a, b in zip(e[n], v[k], strict=True)) / temperature
                  for k in range(len(v))]
        top = max(logits)
        lse = top + math.log(sum(math.exp(x - top) for x in logits))
        total += lse - logits[int(target[n])]
    return total / len(e)


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(1, 6), V=st.integers(1, 8), D=st.integers(1, 5),
       temperature=st.sampled_from([0.05, 0.5, 1.0, 3.0]), dtype=floats)
def test_cse_loss_is_the_formula(device, seed, n, V, D, temperature, dtype):
    g = gen(seed)
    e = torch.randn(n, D, generator=g, dtype=F64).to(device, dtype).requires_grad_()
    v = torch.randn(V, D, generator=g, dtype=F64).to(device, dtype).requires_grad_()
    target = torch.randint(0, V, (n,), generator=g).to(device)
    loss = cse_loss(e, v, target, temperature)
    assert loss.shape == () and loss.dtype == dtype and loss.device == e.device
    ref = cse_reference(e.detach(), v.detach(), target, temperature)
    tol = 1e-10 if dtype == F64 else 2e-4
    assert_close(loss.double().cpu(), torch.tensor(ref, dtype=F64), rtol=tol, atol=tol)
    assert loss.item() >= 0 or V == 1  # a cross-entropy (exactly 0 with one vertex)
    loss.backward()
    assert bool(torch.isfinite(e.grad).all()) and bool(torch.isfinite(v.grad).all())
    if V == 1:  # a single vertex takes all the probability: nothing to learn
        assert loss.item() == 0 and bool((e.grad == 0).all())


@on_devices
@PROPS
@given(V=st.integers(1, 5), D=st.integers(1, 4), dtype=floats)
def test_cse_loss_of_no_points_is_zero_in_the_graph(device, V, D, dtype):
    e = torch.zeros(0, D, device=device, dtype=dtype, requires_grad=True)
    v = torch.randn(V, D, generator=gen(V * 7 + D), dtype=F64).to(device, dtype)
    v.requires_grad_()
    loss = cse_loss(e, v, torch.zeros(0, dtype=torch.int64, device=device))
    assert loss.shape == () and loss.dtype == dtype and loss.item() == 0
    loss.backward()  # still in the graph
    assert torch.equal(v.grad, torch.zeros_like(v))


@PROPS
@given(seed=seeds, n=st.integers(1, 3), V=st.integers(2, 4), D=st.integers(1, 3),
       temperature=st.sampled_from([0.5, 2.0]))
def test_cse_loss_gradcheck(seed, n, V, D, temperature):
    g = gen(seed)
    e = torch.randn(n, D, generator=g, dtype=F64, requires_grad=True)
    v = torch.randn(V, D, generator=g, dtype=F64, requires_grad=True)
    target = torch.randint(0, V, (n,), generator=g)
    assert torch.autograd.gradcheck(lambda a, b: cse_loss(a, b, target, temperature), (e, v))


# --------------------------------------------------------------------------- nearest vertex
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 12), V=st.integers(1, 10), D=st.integers(1, 6),
       dtype=floats, copies=st.booleans())
def test_nearest_vertices_is_the_arg_min(device, seed, n, V, D, dtype, copies):
    g = gen(seed)
    v = torch.randn(V, D, generator=g, dtype=F64)
    e = torch.randn(n, D, generator=g, dtype=F64)
    if copies and n:  # some pixels exactly on a vertex: that vertex is the answer
        on = torch.randint(0, V, (n,), generator=g)
        e = torch.where(torch.rand(n, 1, generator=g) < 0.5, v[on], e)
    out = nearest_vertices(e.to(device, dtype), v.to(device, dtype))
    assert out.shape == (n,) and out.dtype == torch.int64 and out.device.type == device
    assert bool(((out >= 0) & (out < V)).all())
    # compared in float32: the chosen vertex is as near as the nearest up to float32 rounding
    d = ((e[:, None] - v[None]) ** 2).sum(-1)  # (n, V) float64
    chosen = d.gather(1, out.cpu()[:, None])[:, 0] if n else d.new_zeros(0)
    best = d.min(1).values if V and n else d.new_zeros(0)
    assert_close(chosen, best, rtol=1e-5, atol=1e-5)


# ----------------------------------------------------------------------- IUV decode, picture
def decode_reference(coarse, fine, u, v):
    """``decode_iuv`` written out pixel by pixel (batch shape flattened)."""
    P1, H, W = fine.shape[-3:]
    c = coarse.reshape(-1, 2, H, W)
    f, uu, vv = (t.reshape(-1, P1, H, W) for t in (fine, u, v))
    parts = torch.zeros(len(c), H, W, dtype=torch.int64)
    uv = torch.zeros(len(c), 2, H, W, dtype=F64)
    for b in range(len(c)):
        for i in range(H):
            for j in range(W):
                if c[b, 1, i, j] > c[b, 0, i, j]:
                    k = 1 + int(f[b, 1:, i, j].argmax())
                    parts[b, i, j] = k
                    uv[b, 0, i, j] = min(max(float(uu[b, k, i, j]), 0.0), 1.0)
                    uv[b, 1, i, j] = min(max(float(vv[b, k, i, j]), 0.0), 1.0)
    return parts.reshape(*coarse.shape[:-3], H, W), uv.reshape(*coarse.shape[:-3], 2, H, W)


@on_devices
@PROPS
@given(seed=seeds, batch=st.lists(st.integers(0, 3), max_size=2), P=st.integers(1, 5),
       hw=st.tuples(st.integers(1, 5), st.integers(1, 5)), dtype=floats)
def test_decode_iuv_is_the_arg_max(device, seed, batch, P, hw, dtype):
    g = gen(seed)
    coarse = torch.randn(*batch, 2, *hw, generator=g, dtype=F64)
    fine = torch.randn(*batch, P + 1, *hw, generator=g, dtype=F64)
    u = torch.rand(*batch, P + 1, *hw, generator=g, dtype=F64) * 1.4 - 0.2  # some outside [0, 1]
    v = torch.rand(*batch, P + 1, *hw, generator=g, dtype=F64) * 1.4 - 0.2
    parts, uv = decode_iuv(*(t.to(device, dtype) for t in (coarse, fine, u, v)))
    assert parts.shape == (*batch, *hw) and parts.dtype == torch.int64
    assert uv.shape == (*batch, 2, *hw) and uv.dtype == dtype and uv.device.type == device
    assert bool(((parts >= 0) & (parts <= P)).all())
    assert bool(((uv >= 0) & (uv <= 1)).all())
    assert bool((uv.movedim(-3, 0)[:, parts == 0] == 0).all())  # nothing on the background
    args = (coarse.to(dtype), fine.to(dtype), u.to(dtype), v.to(dtype))  # same rounded values
    ref_parts, ref_uv = decode_reference(*args)
    assert torch.equal(parts.cpu(), ref_parts)
    assert_close(uv.cpu().double(), ref_uv, rtol=0, atol=0)


def random_chart(seed, H, W, empty=False):
    g = gen(seed)
    parts = torch.randint(0, NUM_PARTS + 1, (H, W), generator=g)
    if empty:
        parts.zero_()
    return parts, torch.rand(2, H, W, generator=g, dtype=F64)


@on_devices
@PROPS
@given(seed=seeds, hw=st.tuples(st.integers(1, 9), st.integers(1, 9)), dtype=floats,
       empty=st.booleans())
def test_iuv_image(device, seed, hw, dtype, empty):
    parts, uv = random_chart(seed, *hw, empty)
    parts, uv = parts.to(device), uv.to(device, dtype)
    img = iuv_image(parts, uv)
    assert img.shape == (3, *hw) and img.dtype == dtype and img.device == uv.device
    assert bool(((img >= 0) & (img <= 1)).all())
    on = parts > 0
    assert_close(img[0], parts.to(dtype) / NUM_PARTS)
    assert torch.equal(img[1:, on], uv[:, on]) and bool((img[1:, ~on] == 0).all())


# ------------------------------------------------------------------------------ part metrics
@on_devices
@PROPS
@given(seed=seeds, hw=st.tuples(st.integers(1, 9), st.integers(1, 9)), empty=st.booleans())
def test_perfect_prediction_has_iou_one_and_no_uv_error(device, seed, hw, empty):
    parts, uv = random_chart(seed, *hw, empty)
    parts, uv = parts.to(device), uv.to(device)
    iou, miou = part_iou(part_confusion(parts, parts))
    assert iou.shape == (NUM_PARTS,) and iou.dtype == F64
    present = torch.stack([(parts == k).any() for k in range(1, NUM_PARTS + 1)]).cpu()
    assert bool((iou.cpu()[present] == 1).all()) and bool(iou.cpu()[~present].isnan().all())
    assert miou == 1 if bool(present.any()) else math.isnan(miou)
    err, count = uv_error(parts, uv, parts, uv)
    assert err.shape == (2,) and err.dtype == F64 and bool((err == 0).all())
    assert count == int((parts > 0).sum())


@on_devices
@PROPS
@given(seed=seeds, hw=st.tuples(st.integers(1, 9), st.integers(1, 9)), dtype=floats)
def test_part_iou_and_uv_error_are_the_counts(device, seed, hw, dtype):
    parts, uv = random_chart(seed, *hw)
    pred, pred_uv = random_chart(seed + 1, *hw)
    conf = part_confusion(pred.to(device), parts.to(device))
    assert conf.shape == (NUM_PARTS + 1,) * 2 and int(conf.sum()) == hw[0] * hw[1]
    iou, miou = part_iou(conf)
    for k in range(1, NUM_PARTS + 1):
        tp = int(((pred == k) & (parts == k)).sum())
        union = int(((pred == k) | (parts == k)).sum())
        assert (math.isnan(iou[k - 1]) if union == 0 else iou[k - 1].item() == tp / union)
    assert bool(((iou[~iou.isnan()] >= 0) & (iou[~iou.isnan()] <= 1)).all())
    err, count = uv_error(pred.to(device), pred_uv.to(device, dtype), parts.to(device),
                          uv.to(device, dtype))
    right = (pred == parts) & (parts > 0)
    assert count == int(right.sum())
    ref = (pred_uv.to(dtype).double() - uv.to(dtype).double()).abs()[:, right].sum(1)
    assert_close(err.cpu(), ref, rtol=1e-12, atol=1e-12)
    assert bool((err >= 0).all())


# --------------------------------------------------------------------- reading maps at points
@on_devices
@PROPS
@given(seed=seeds, R=st.integers(0, 4), N=st.integers(0, 6), C=st.integers(1, 4),
       M=st.integers(1, 6), dtype=floats)
def test_sample_at_points_is_grid_sample(device, seed, R, N, C, M, dtype):
    g = gen(seed)
    maps = torch.randn(R, C, M, M, generator=g, dtype=F64)
    xy = torch.rand(R, 2, generator=g, dtype=F64) * 50
    boxes = torch.cat([xy, xy + 1 + torch.rand(R, 2, generator=g, dtype=F64) * 30], 1)
    # points in and around their box (a quarter outside), some not annotated (I = 0)
    t = torch.rand(R, N, 2, generator=g, dtype=F64) * 1.5 - 0.25
    far = torch.rand(R, N, 2, generator=g) < 0.1  # exactly on the far edge: kept
    pxy = boxes[:, None, :2] + t * (boxes[:, None, 2:] - boxes[:, None, :2])
    pxy = torch.where(far, boxes[:, None, 2:].expand(R, N, 2), pxy)
    part = torch.randint(0, NUM_PARTS + 1, (R, N, 1), generator=g).to(F64)
    points = torch.cat([pxy, part, torch.rand(R, N, 2, generator=g, dtype=F64)], 2)
    maps, boxes, points = (x.to(device, dtype) for x in (maps, boxes, points))
    values, kept = sample_at_points(maps, boxes, points)
    n = kept.shape[0]
    assert values.shape == (n, C) and kept.shape == (n, 5)
    assert values.dtype == dtype and values.device == maps.device
    # which points, box by box: annotated, and the grid position (x - x1) / w M in [0, M]
    b, p = boxes.cpu()[:, None], points.cpu()  # in their own dtype, as the docstring's formula
    gx = (p[..., 0] - b[..., 0]) / (b[..., 2] - b[..., 0]) * M  # (R, N)
    gy = (p[..., 1] - b[..., 1]) / (b[..., 3] - b[..., 1]) * M
    keep = (p[..., 2] > 0) & (gx >= 0) & (gx <= M) & (gy >= 0) & (gy <= M)
    r, j = torch.nonzero(keep, as_tuple=True)
    assert torch.equal(kept.cpu(), p[r, j])
    if n == 0:
        return
    # the reference: grid_sample (align_corners=False, border padding) on each point's map
    x1, y1, x2, y2 = boxes.cpu()[r].double().unbind(1)
    kx, ky = kept[:, 0].cpu().double(), kept[:, 1].cpu().double()
    grid = torch.stack([(kx - x1) / (x2 - x1) * 2 - 1, (ky - y1) / (y2 - y1) * 2 - 1], 1)
    ref = F.grid_sample(maps.cpu()[r].double(), grid[:, None, None, :], mode="bilinear",
                        padding_mode="border", align_corners=False)[:, :, 0, 0]  # (n, C)
    tol = 1e-10 if dtype == F64 else 1e-4
    assert_close(values.cpu().double(), ref, rtol=tol, atol=tol)
