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
    assert scale_invariant_loss(pred, target, lam=lam).item() == pytest.approx(scale_invariant_loss_loop(pred, target, lam), rel=1e-12)


def test_lambda_one_ignores_global_scale():
    pred, target = torch.randn(2, 5, 5, dtype=torch.float64), torch.randn(2, 5, 5, dtype=torch.float64)
    scaled = pred + math.log(3.0)  # every depth × 3
    torch.testing.assert_close(scale_invariant_loss(scaled, target, lam=1.0), scale_invariant_loss(pred, target, lam=1.0))
    assert scale_invariant_loss(scaled, target, lam=0.0) != scale_invariant_loss(pred, target, lam=0.0)


def test_mask_equals_selecting_pixels():
    pred, target = torch.randn(1, 4, 4, dtype=torch.float64), torch.randn(1, 4, 4, dtype=torch.float64)
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


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: scale_invariant_loss(torch.zeros(2, 2), torch.zeros(2, 3)), ValueError, "same shape"),
    (lambda: scale_invariant_loss(torch.zeros(2, 2), torch.zeros(2, 2), lam=2), ValueError, "lam must be in"),
    (lambda: scale_invariant_loss(torch.zeros(1, 1, 2, 2), torch.zeros(1, 1, 2, 2)), ValueError, "pred_log must be Tensor"),
    (lambda: scale_invariant_loss(torch.zeros(2, 2, dtype=torch.long), torch.zeros(2, 2)), TypeError, "pred_log must be a floating"),
    (lambda: scale_invariant_loss(torch.zeros(2, 2), torch.zeros(2, 2), torch.ones(2, 2)), TypeError, "mask must be a bool"),
    (lambda: depth_metrics(torch.zeros(2), torch.ones(2)), ValueError, "must be positive"),
    (lambda: depth_metrics(torch.ones(2), torch.ones(2), torch.zeros(2, dtype=torch.bool)), ValueError, "no pixel"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
