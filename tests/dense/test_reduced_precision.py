"""float16 / bfloat16: warp, the depth and flow losses and metrics against torch in that dtype.

Our functions compute positions, differences and sums in float32 and return the inputs'
dtype (losses, warped images) or Python floats (metrics). With ``eps =
torch.finfo(dtype).eps`` (float16 2**-10, bfloat16 2**-7), ``ref`` torch in the reduced
dtype and ``ref_hi`` torch in float32 (warp, vs ``F.grid_sample``) or float64 (the
formulas) on the same, already rounded, inputs:

* tensors: ``|ours - ref_hi| <= eps * |ref_hi| + 1e-4`` (half an ulp of the final rounding,
  plus float32 noise) and ``max |ours - ref| <= max |ref_hi - ref| + eps * max |ref_hi|``:
  as close to torch-in-that-dtype as torch's own higher-precision result is, plus one ulp;
* metrics (Python floats): within ``1e-5`` relative of the float64 formulas (float32
  sums), thresholds (δ < 1.25, EPE < 1 px) exactly.
"""

import math

import pytest
import torch
import torch.nn.functional as F
from reduced_precision import assert_as_close_as_torch

from coursekit.dense import depth_metrics, end_point_error, flow_metrics, scale_invariant_loss, warp

DTYPES = [torch.float16, torch.bfloat16]


def grid_sample_warp(image, flow):
    """F.grid_sample in the image's dtype (align_corners=True, border): the reference warp."""
    n, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype, device=flow.device),
                            torch.arange(w, dtype=flow.dtype, device=flow.device), indexing="ij")
    gx = 2 * (xs + flow[:, 0]) / (w - 1) - 1
    gy = 2 * (ys + flow[:, 1]) / (h - 1) - 1
    grid = torch.stack([gx, gy], -1).to(image.dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("flow_dtype", ["same", torch.float32])
def test_warp(dtype, flow_dtype, device):
    image = torch.rand(2, 3, 12, 300).to(device, dtype)  # 300 columns: bfloat16 lacks 300.3
    flow_dtype = dtype if flow_dtype == "same" else flow_dtype
    flow = (torch.randn(2, 2, 12, 300) * 3).to(device, flow_dtype)
    ours = warp(image, flow)
    ref = grid_sample_warp(image, flow.to(dtype))
    ref_hi = grid_sample_warp(image.float(), flow.float())
    assert_as_close_as_torch(ours, ref, ref_hi)


@pytest.mark.parametrize("dtype", DTYPES)
def test_warp_backward(dtype):
    image = torch.rand(1, 2, 8, 40).to(dtype).requires_grad_()
    flow = (torch.rand(1, 2, 8, 40) * 2 + 0.1).to(dtype)  # away from the integer kinks
    g = torch.randn(1, 2, 8, 40).to(dtype)
    (ours,) = torch.autograd.grad(warp(image, flow), image, g)
    (ref,) = torch.autograd.grad(grid_sample_warp(image, flow), image, g)
    image32 = image.detach().float().requires_grad_()
    (ref_hi,) = torch.autograd.grad(grid_sample_warp(image32, flow.float()), image32, g.float())
    assert_as_close_as_torch(ours, ref, ref_hi)


def si_loss_formula(p, t, lam):
    """The scale-invariant loss with plain torch ops, in the inputs' dtype."""
    d = p - t
    n = d[0].numel()
    return ((d * d).flatten(1).sum(1) / n - lam * d.flatten(1).sum(1) ** 2 / n**2).mean()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_scale_invariant_loss(dtype, lam):
    pred = (torch.randn(4, 64, 64) * 0.3 + 2).to(dtype)  # log depths around e^2 m
    target = (torch.randn(4, 64, 64) * 0.3 + 2).to(dtype)
    ours = scale_invariant_loss(pred, target, lam=lam)
    ref = si_loss_formula(pred, target, lam)
    ref_hi = si_loss_formula(pred.double(), target.double(), lam)
    assert_as_close_as_torch(ours, ref, ref_hi)


@pytest.mark.parametrize("dtype", DTYPES)
def test_losses_backward(dtype):
    pred = (torch.randn(2, 32, 32) * 0.3 + 2).to(dtype).requires_grad_()
    target = (torch.randn(2, 32, 32) * 0.3 + 2).to(dtype)
    pred64 = pred.detach().double().requires_grad_()
    (ours,) = torch.autograd.grad(scale_invariant_loss(pred, target), pred)
    (ref,) = torch.autograd.grad(si_loss_formula(pred, target, 0.5), pred)
    (ref_hi,) = torch.autograd.grad(si_loss_formula(pred64, target.double(), 0.5), pred64)
    assert_as_close_as_torch(ours, ref, ref_hi)

    flow = torch.randn(2, 2, 16, 16).to(dtype).requires_grad_()
    truth = torch.randn(2, 2, 16, 16).to(dtype)
    flow64 = flow.detach().double().requires_grad_()
    (ours,) = torch.autograd.grad(end_point_error(flow, truth), flow)
    (ref,) = torch.autograd.grad(torch.linalg.vector_norm(flow - truth, dim=1).mean(), flow)
    epe64 = torch.linalg.vector_norm(flow64 - truth.double(), dim=1).mean()
    (ref_hi,) = torch.autograd.grad(epe64, flow64)
    assert_as_close_as_torch(ours, ref, ref_hi)


@pytest.mark.parametrize("dtype", DTYPES)
def test_end_point_error(dtype, device):
    pred = (torch.randn(4, 2, 64, 64) * 2).to(device, dtype)
    true = (torch.randn(4, 2, 64, 64) * 2).to(device, dtype)
    ours = end_point_error(pred, true)
    ref = torch.linalg.vector_norm(pred - true, dim=1).mean()
    ref_hi = torch.linalg.vector_norm(pred.double() - true.double(), dim=1).mean()
    assert_as_close_as_torch(ours, ref, ref_hi)
    mask = torch.rand(4, 64, 64, device=device) > 0.7
    ours = end_point_error(pred, true, mask)
    ref = torch.linalg.vector_norm(pred - true, dim=1)[mask].mean()
    ref_hi = torch.linalg.vector_norm(pred.double() - true.double(), dim=1)[mask].mean()
    assert_as_close_as_torch(ours, ref, ref_hi)


def depth_formulas(p, t):
    ratio = torch.maximum(p / t, t / p)
    return {"abs_rel": ((p - t).abs() / t).mean(), "sq_rel": ((p - t) ** 2 / t).mean(),
            "rmse": ((p - t) ** 2).mean().sqrt(),
            "rmse_log": ((p.log() - t.log()) ** 2).mean().sqrt(),
            "delta1": (ratio < 1.25).double().mean(), "delta2": (ratio < 1.25**2).double().mean(),
            "delta3": (ratio < 1.25**3).double().mean()}


def assert_metric_close(ours, ref, ref_hi, name):
    """A Python float against the float64 formula (1e-5 relative) and torch in the dtype."""
    assert math.isclose(ours, ref_hi, rel_tol=1e-5, abs_tol=1e-7), (name, ours, ref_hi)
    assert abs(ours - ref) <= abs(ref_hi - ref) + 1e-5 * abs(ref_hi), (name, ours, ref, ref_hi)


@pytest.mark.parametrize("dtype", DTYPES)
def test_depth_metrics(dtype):
    target = (torch.rand(4, 64, 64) * 30 + 1).to(dtype)  # 1 to 31 m
    pred = (target.float() * torch.exp(torch.randn(4, 64, 64) * 0.2)).to(dtype)
    ours = depth_metrics(pred, target)
    ref = {k: float(v) for k, v in depth_formulas(pred, target).items()}
    ref_hi = {k: float(v) for k, v in depth_formulas(pred.double(), target.double()).items()}
    assert ours.keys() == ref_hi.keys()
    for name in ours:
        assert_metric_close(ours[name], ref[name], ref_hi[name], name)


@pytest.mark.parametrize("dtype", DTYPES)
def test_flow_metrics(dtype):
    true = (torch.randn(4, 2, 64, 64) * 3).to(dtype)
    pred = (true.float() + torch.randn(4, 2, 64, 64) * 1.5).to(dtype)

    def formulas(p, t):
        epe = torch.linalg.vector_norm(p - t, dim=1)
        return {"epe": epe.mean(), "1px": (epe < 1).double().mean(),
                "3px": (epe < 3).double().mean(), "5px": (epe < 5).double().mean()}

    ours = flow_metrics(pred, true)
    ref = {k: float(v) for k, v in formulas(pred, true).items()}
    ref_hi = {k: float(v) for k, v in formulas(pred.double(), true.double()).items()}
    assert ours.keys() == ref_hi.keys()
    for name in ours:
        assert_metric_close(ours[name], ref[name], ref_hi[name], name)


def test_float64_metrics_match_the_formulas():
    """The random float64 case of depth_metrics / flow_metrics against the plain formulas."""
    target = torch.rand(2, 9, 7, dtype=torch.float64) * 10 + 0.5
    pred = target * torch.exp(torch.randn(2, 9, 7, dtype=torch.float64) * 0.3)
    ours = depth_metrics(pred, target)
    for name, value in depth_formulas(pred, target).items():
        assert ours[name] == pytest.approx(float(value), rel=1e-12), name
    flow, truth = torch.randn(2, 2, 9, 7, dtype=torch.float64), torch.randn(2, 2, 9, 7,
                                                                            dtype=torch.float64)
    epe = torch.linalg.vector_norm(flow - truth, dim=1)
    m = flow_metrics(flow, truth)
    assert m["epe"] == pytest.approx(float(epe.mean()), rel=1e-12)
    assert m["1px"] == float((epe < 1).double().mean())


def test_the_yardstick_blames_torch_only_for_torchs_nan():
    """CI (stop 17) saw torch's bfloat16 grid_sample return NaN: that must not fail us, and
    a NaN of ours must."""
    truth = torch.tensor([0.25, 0.5, 1.0])
    good = truth.bfloat16()
    broken = torch.tensor([0.25, float("nan"), 1.0]).bfloat16()
    assert_as_close_as_torch(good, broken, truth)
    with pytest.raises(AssertionError):
        assert_as_close_as_torch(broken, good, truth)
    with pytest.raises(AssertionError):  # a finite but worse result still fails
        assert_as_close_as_torch(torch.tensor([0.25, 0.5, 1.0625]).bfloat16(), good, truth)
