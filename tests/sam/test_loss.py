"""SAM's loss: focal (= torchvision's) + dice, 20:1, best of 3 masks, IoU MSE."""

import math

import pytest
import torch
import torchvision.ops as tv
from torch.testing import assert_close

from coursekit.sam import dice_loss, mask_iou, sam_loss, sigmoid_focal_loss

LN2 = math.log(2)


def test_focal_hand_computed():
    x = torch.zeros(2)
    t = torch.tensor([1.0, 0.0])
    # p = 0.5: BCE = ln 2, (1 - p_t)^2 = 1/4, alpha_t = 0.25 for a positive, 0.75 for a negative
    assert_close(sigmoid_focal_loss(x, t), torch.tensor([0.25 * 0.25 * LN2, 0.75 * 0.25 * LN2]))
    assert_close(sigmoid_focal_loss(x, t, alpha=-1, gamma=0), torch.tensor([LN2, LN2]))


@pytest.mark.parametrize("alpha, gamma", [(0.25, 2.0), (-1.0, 0.0), (0.5, 1.5)])
@pytest.mark.parametrize("shape", [(7,), (2, 3, 5, 4)])
def test_focal_matches_torchvision(alpha, gamma, shape, device):
    x = torch.randn(*shape, dtype=torch.float64, device=device) * 3
    t = torch.rand(*shape, dtype=torch.float64, device=device).round()
    assert_close(sigmoid_focal_loss(x, t, alpha, gamma),
                 tv.sigmoid_focal_loss(x, t, alpha, gamma, reduction="none"), rtol=0, atol=1e-12)


def test_dice_hand_computed():
    assert_close(dice_loss(torch.zeros(1, 1), torch.ones(1, 1)),
                 torch.tensor(0.2))  # 1 - (2 * 0.5 + 1) / (0.5 + 1 + 1)
    assert_close(dice_loss(torch.zeros(2, 2), torch.zeros(2, 2)),
                 torch.tensor(2 / 3))  # 1 - 1 / (4 * 0.5 + 1)
    assert dice_loss(torch.full((3, 3), 30.0), torch.ones(3, 3)) < 1e-6  # confident and right


def test_dice_random_against_formula():
    x = torch.randn(4, 3, 6, 5, dtype=torch.float64)
    t = torch.rand(4, 3, 6, 5, dtype=torch.float64).round()
    p = torch.sigmoid(x)
    expected = torch.stack([torch.stack([
        1 - (2 * (p[b, c] * t[b, c]).sum() + 1) / (p[b, c].sum() + t[b, c].sum() + 1)
        for c in range(3)]) for b in range(4)])
    assert_close(dice_loss(x, t), expected, rtol=0, atol=1e-12)


def test_mask_iou_hand_computed():
    a = torch.tensor([[True, True, False, False]])
    b = torch.tensor([[True, False, True, False]])
    assert_close(mask_iou(a, b), torch.tensor(1 / 3))
    empty = torch.zeros(1, 4, dtype=torch.bool)
    assert_close(mask_iou(empty, empty), torch.tensor(1.0))


def test_sam_loss_hand_computed():
    gt = torch.tensor([[[True, False]]])  # B = 1, a 1 x 2 image
    logits = torch.tensor([[[[10.0, -10.0]], [[0.0, 0.0]], [[-10.0, 10.0]]]],
                          dtype=torch.float64, requires_grad=True)  # right, unsure, wrong
    iou_pred = torch.full((1, 3), 0.5, dtype=torch.float64, requires_grad=True)
    out = sam_loss(logits, iou_pred, gt)
    assert out.best.tolist() == [0]
    # mask 1 (logits 0): focal mean (0.25 + 0.75) * 0.25 * ln 2 / 2, dice 1 - 2/3
    unsure = 20 * (0.25 * 0.25 * LN2 + 0.75 * 0.25 * LN2) / 2 + 1 / 3
    per_mask = 20 * sigmoid_focal_loss(logits[0], gt.expand(3, 1, 2).double()).mean((-2, -1))
    per_mask = per_mask + dice_loss(logits[0], gt.expand(3, 1, 2).double())
    assert_close(per_mask[1], torch.tensor(unsure, dtype=torch.float64))
    assert_close(out.mask_loss, per_mask[0])  # the minimum
    # real IoUs (logits > 0): 1, 0 (empty vs one pixel), 0 -> ((0.5)^2 * 3) / 3
    assert_close(out.iou_loss, torch.tensor(0.25, dtype=torch.float64))
    assert_close(out.loss, out.mask_loss + out.iou_loss)
    out.loss.backward()
    assert logits.grad[0, 0].abs().sum() > 0
    assert (logits.grad[0, 1:] == 0).all()  # only the best mask is trained
    assert_close(iou_pred.grad, torch.tensor([[-1 / 3, 1 / 3, 1 / 3]], dtype=torch.float64))


def test_sam_loss_random_against_reference(device):
    """The loss rebuilt from torchvision's focal loss and an explicit min, float64."""
    B, C, H, W = 4, 3, 8, 6
    logits = torch.randn(B, C, H, W, dtype=torch.float64, device=device) * 2
    iou_pred = torch.rand(B, C, dtype=torch.float64, device=device)
    gt = torch.rand(B, H, W, device=device) > 0.6
    out = sam_loss(logits, iou_pred, gt, focal_weight=20.0, dice_weight=1.0)
    t = gt[:, None].expand(B, C, H, W).double()
    focal = tv.sigmoid_focal_loss(logits, t, reduction="none").mean((-2, -1))
    p = torch.sigmoid(logits)
    dice = 1 - (2 * (p * t).sum((-2, -1)) + 1) / (p.sum((-2, -1)) + t.sum((-2, -1)) + 1)
    per = 20 * focal + dice
    assert_close(out.mask_loss, per.min(dim=1).values.mean(), rtol=0, atol=1e-12)
    assert out.best.tolist() == per.argmin(dim=1).tolist()
    pred = logits > 0
    inter = (pred & gt[:, None]).sum((-2, -1)).double()
    union = (pred | gt[:, None]).sum((-2, -1)).double()
    assert_close(out.iou_loss, ((iou_pred - inter / union) ** 2).mean(), rtol=0, atol=1e-12)


def test_two_answers_hand_computed():
    """A part (pixel 0) and its whole (pixels 0, 1): each must be its own output's answer."""
    part = torch.tensor([[[True, False]]])
    whole = torch.tensor([[[True, True]]])
    logits = torch.tensor([[[[10.0, -10.0]], [[10.0, 10.0]], [[0.0, 0.0]]]],
                          dtype=torch.float64, requires_grad=True)  # part, whole, unsure
    iou_pred = torch.tensor([[1.0, 1.0, 0.0]], dtype=torch.float64, requires_grad=True)
    out = sam_loss(logits, iou_pred, part, other_masks=whole)
    assert out.best.tolist() == [0]  # the part's output
    per_part = 20 * sigmoid_focal_loss(logits[0], part.expand(3, 1, 2).double()).mean((-2, -1))
    per_part = per_part + dice_loss(logits[0], part.expand(3, 1, 2).double())
    per_whole = 20 * sigmoid_focal_loss(logits[0], whole.expand(3, 1, 2).double()).mean((-2, -1))
    per_whole = per_whole + dice_loss(logits[0], whole.expand(3, 1, 2).double())
    assert_close(out.mask_loss, (per_part[0] + per_whole[1]) / 2)
    # SAM's rule would train output 0 alone (its loss against the part is the least)
    assert_close(sam_loss(logits, iou_pred, part).mask_loss, per_part.min())
    # IoU targets stay SAM's, against the drawn answer (the part): output 0 -> 1, output 1
    # (the whole, 2 pixels) -> 1/2, output 2 (empty) -> 0; squared errors 0, 0.25, 0
    assert_close(out.iou_loss, torch.tensor(0.25 / 3, dtype=torch.float64))
    out.loss.backward()
    assert (logits.grad[0, 2] == 0).all() and logits.grad[0, :2].abs().sum() > 0
    # the same answer twice is SAM's rule; so is a prompt with one answer in a batch
    same = sam_loss(logits.detach(), iou_pred.detach(), part, other_masks=part)
    assert_close(same.loss, sam_loss(logits.detach(), iou_pred.detach(), part).loss)


def test_two_answers_random_against_brute_force(device):
    """The least-cost matching of 2 answers to 2 of C outputs, by trying every pair."""
    B, C, H, W = 6, 3, 5, 4
    g = torch.Generator().manual_seed(1)
    logits = (torch.randn(B, C, H, W, dtype=torch.float64, generator=g) * 2).to(device)
    iou_pred = torch.rand(B, C, dtype=torch.float64, generator=g).to(device)
    gt = (torch.rand(B, H, W, generator=g) > 0.5).to(device)
    other = (torch.rand(B, H, W, generator=g) > 0.3).to(device)
    other[0] = gt[0]  # one prompt with a single answer
    out = sam_loss(logits, iou_pred, gt, other_masks=other)

    def cost(t):
        t = t[:, None].expand(B, C, H, W).double()
        focal = tv.sigmoid_focal_loss(logits, t, reduction="none").mean((-2, -1))
        p = torch.sigmoid(logits)
        return 20 * focal + 1 - (2 * (p * t).sum((-2, -1)) + 1) / (
            p.sum((-2, -1)) + t.sum((-2, -1)) + 1)

    a, b = cost(gt), cost(other)
    expected, best = [], []
    for i in range(B):
        if i == 0:
            expected.append(a[0].min())
            best.append(int(a[0].argmin()))
            continue
        pairs = [(a[i, x] + b[i, y], x) for x in range(C) for y in range(C) if x != y]
        v, x = min(pairs, key=lambda p: float(p[0]))
        expected.append(v / 2)
        best.append(x)
    assert_close(out.mask_loss, torch.stack(expected).mean(), rtol=0, atol=1e-12)
    assert out.best.tolist() == best
    assert_close(out.iou_loss, sam_loss(logits, iou_pred, gt).iou_loss, rtol=0, atol=0)
    assert torch.autograd.gradcheck(
        lambda x: sam_loss(x, iou_pred, gt, other_masks=other).loss,
        (logits.detach().requires_grad_(),))


def test_sam_loss_reduced_precision_and_single_mask():
    """bfloat16 in, float32 inside, bfloat16 out (as torch does); C = 1 (multimask off)."""
    logits = torch.randn(2, 1, 5, 5).to(torch.bfloat16)
    iou = torch.rand(2, 1).to(torch.bfloat16)
    gt = torch.rand(2, 5, 5) > 0.5
    out = sam_loss(logits, iou, gt)
    assert out.loss.dtype == torch.bfloat16 and out.best.tolist() == [0, 0]
    ref = sam_loss(logits.float(), iou.float(), gt)
    assert_close(out.loss, ref.loss.to(torch.bfloat16), rtol=0, atol=0)


def test_gradcheck():
    logits = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    iou_pred = torch.rand(2, 3, dtype=torch.float64, requires_grad=True)
    gt = torch.rand(2, 3, 4) > 0.5
    assert torch.autograd.gradcheck(lambda x, i: sam_loss(x, i, gt).loss, (logits, iou_pred))
    t = torch.rand(3, 3, 4, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: sigmoid_focal_loss(x, t), (logits[0].detach()
                                                                        .requires_grad_(),))
    assert torch.autograd.gradcheck(lambda x: dice_loss(x, t), (logits[0].detach()
                                                               .requires_grad_(),))


def test_bad_inputs():
    x, iou, gt = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3), torch.zeros(2, 4, 4, dtype=torch.bool)
    with pytest.raises(TypeError, match="gt_masks must be a bool"):
        sam_loss(x, iou, gt.long())
    with pytest.raises(ValueError, match=r"gt_masks must be Tensor\[2, 4, 4\].*Tensor\[2, 4, 5\]"):
        sam_loss(x, iou, torch.zeros(2, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"iou_predictions must be Tensor\[2, 3\]"):
        sam_loss(x, iou[:, :1], gt)
    with pytest.raises(ValueError, match=r"mask_logits must be Tensor\[B, C, H, W\]"):
        sam_loss(x[0], iou, gt)
    with pytest.raises(TypeError, match="mask_logits must be a floating-point"):
        sam_loss(x.long(), iou, gt)
    with pytest.raises(TypeError, match="other_masks must be a Tensor of gt_masks' dtype"):
        sam_loss(x, iou, gt, other_masks=gt.float())
    with pytest.raises(ValueError, match=r"other_masks must have the shape of gt_masks"):
        sam_loss(x, iou, gt, other_masks=gt[:1])
    with pytest.raises(ValueError, match="other_masks must be on gt_masks' device"):
        sam_loss(x, iou, gt, other_masks=gt.to("meta"))
    with pytest.raises(ValueError, match="other_masks needs at least 2 output masks"):
        sam_loss(x[:, :1], iou[:, :1], gt, other_masks=gt)
    with pytest.raises(TypeError, match="focal_weight must be a real number"):
        sam_loss(x, iou, gt, focal_weight="20")
    with pytest.raises(ValueError, match="targets must have the shape of inputs"):
        sigmoid_focal_loss(torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="targets must have the shape of mask_logits"):
        dice_loss(torch.zeros(3, 3), torch.zeros(3, 4))
    with pytest.raises(TypeError, match="masks must be a bool"):
        mask_iou(torch.zeros(2, 2), torch.zeros(2, 2, dtype=torch.bool))


def test_soft_targets_equal_hard_ones_at_0_and_1():
    """A floating target of 0s and 1s gives the bool target's loss; its IoU counts >= 0.5."""
    g = torch.Generator().manual_seed(3)
    logits = torch.randn(3, 3, 6, 6, dtype=torch.float64, generator=g)
    iou = torch.rand(3, 3, dtype=torch.float64, generator=g)
    gt = torch.rand(3, 6, 6, generator=g) > 0.5
    hard, soft = sam_loss(logits, iou, gt), sam_loss(logits, iou, gt.double())
    assert_close(soft.loss, hard.loss, rtol=0, atol=0)
    half = torch.where(gt, 0.75, 0.25).double()  # the same mask at >= 0.5, other focal / dice
    assert_close(sam_loss(logits, iou, half).iou_loss, hard.iou_loss, rtol=0, atol=0)
