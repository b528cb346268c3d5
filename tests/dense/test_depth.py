import math

import pytest
import torch

from coursekit.dense import depth_metrics, scale_invariant_loss, scale_invariant_loss_loop


def test_hand_computed_loss():
    # d = [1, 3]: 1/2 (1 + 9) - 0.5/4 * 16 = 5 - 2 = 3
    pred = torch.tensor([[1.0, 3.0]])
    assert scale_invariant_loss(pred, torch.zeros(1, 2), lam=0.5).item() == pytest.approx(3.0)
    assert scale_invariant_loss(pred, torch.zeros(1, 2), lam=0.0).item() == pytest.approx(5.0)
    assert scale_invariant_loss(pred, torch.zeros(1, 2), lam=1.0).item() == pytest.approx(1.0)


@pytest.mark.parametrize("shape", [(1, 4, 5), (3, 6, 2), (2, 1, 7)])
@pytest.mark.parametrize("lam", [0.0, 0.5, 1.0])
def test_matches_literal_loop_float64(shape, lam):
    pred, target = torch.randn(shape, dtype=torch.float64), torch.randn(shape, dtype=torch.float64)
    expected = scale_invariant_loss_loop(pred, target, lam)
    assert scale_invariant_loss(pred, target, lam=lam).item() == pytest.approx(expected, rel=1e-12)


def test_lambda_one_ignores_global_scale():
    pred = torch.randn(2, 5, 5, dtype=torch.float64)
    target = torch.randn(2, 5, 5, dtype=torch.float64)
    scaled = pred + math.log(3.0)  # every depth × 3
    torch.testing.assert_close(scale_invariant_loss(scaled, target, lam=1.0),
                               scale_invariant_loss(pred, target, lam=1.0))
    plain = scale_invariant_loss(pred, target, lam=0.0)
    assert scale_invariant_loss(scaled, target, lam=0.0) != plain


def test_mask_equals_selecting_pixels():
    pred = torch.randn(1, 4, 4, dtype=torch.float64)
    target = torch.randn(1, 4, 4, dtype=torch.float64)
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, :2] = True
    expected = scale_invariant_loss_loop(pred[:, :2], target[:, :2], 0.5)
    assert scale_invariant_loss(pred, target, mask).item() == pytest.approx(expected, rel=1e-12)


def test_gradcheck():
    pred = torch.randn(2, 3, 3, dtype=torch.float64, requires_grad=True)
    target = torch.randn(2, 3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda p: scale_invariant_loss(p, target), (pred,))


def test_device(device):
    pred, target = torch.randn(2, 4, 4), torch.randn(2, 4, 4)
    out = scale_invariant_loss(pred.to(device), target.to(device))
    assert out.device.type == device.type
    torch.testing.assert_close(out.cpu(), scale_invariant_loss(pred, target))


def test_metrics_hand_computed():
    m = depth_metrics(torch.tensor([2.0, 1.0]), torch.tensor([1.0, 1.0]))
    assert m["abs_rel"] == pytest.approx(0.5)
    assert m["sq_rel"] == pytest.approx(0.5)
    assert m["rmse"] == pytest.approx(math.sqrt(0.5))
    assert m["rmse_log"] == pytest.approx(math.log(2) / math.sqrt(2))
    assert (m["delta1"], m["delta2"], m["delta3"]) == (0.5, 0.5, 0.5)


def test_metrics_perfect_and_masked():
    t = torch.rand(3, 5, 5) + 0.5
    m = depth_metrics(t, t)
    assert m["abs_rel"] == 0 and m["rmse"] == 0 and m["delta1"] == 1
    bad = t.clone()
    bad[0] = 100.0
    mask = torch.ones_like(t, dtype=torch.bool)
    mask[0] = False
    assert depth_metrics(bad, t, mask)["abs_rel"] == 0


Z = torch.zeros


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: scale_invariant_loss(Z(2, 2), Z(2, 3)), ValueError,
     r"pred_log and target_log must have the same shape, got Tensor\[2, 2\] and Tensor\[2, 3\]"),
    (lambda: scale_invariant_loss(Z(2, 2), Z(2, 2), lam=2), ValueError,
     r"lam must be in \[0, 1\], got 2"),
    (lambda: scale_invariant_loss(Z(1, 1, 2, 2), Z(1, 1, 2, 2)), ValueError,
     r"pred_log must be Tensor\[N, H, W\] or Tensor\[H, W\], got Tensor\[1, 1, 2, 2\]"),
    (lambda: scale_invariant_loss(Z(2, 2, dtype=torch.long), Z(2, 2)), TypeError,
     r"pred_log must be a floating-point Tensor \(float16, bfloat16, float32 or float64\), "
     r"got Tensor\[2, 2\] int64"),
    (lambda: scale_invariant_loss(Z(2, 2), [0.0]), TypeError,
     "target_log must be a floating-point Tensor, got list"),
    (lambda: scale_invariant_loss(Z(2, 2), Z(2, 2), torch.ones(2, 2)), TypeError,
     r"mask must be a bool Tensor \(True where a pixel counts\), got Tensor\[2, 2\] float32"),
    (lambda: scale_invariant_loss(Z(2, 2), Z(2, 2), torch.ones(2, 3, dtype=torch.bool)),
     ValueError, r"mask must be Tensor\[2, 2\] \(one value per pixel\), got Tensor\[2, 3\]"),
    (lambda: depth_metrics(Z(2), torch.ones(2)), ValueError,
     "pred and target must be positive depths on the valid pixels"),
    (lambda: depth_metrics(torch.ones(2), torch.ones(2), Z(2, dtype=torch.bool)), ValueError,
     "mask selects no pixel"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
