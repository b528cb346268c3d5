"""Mask targets (project_masks_on_boxes) and the mask loss against torchvision's Mask R-CNN."""

import pytest
import torch
from torch.testing import assert_close
from torchvision.models.detection import roi_heads as tv
from torchvision.ops import roi_align as tv_roi_align

import coursekit.instance.targets as targets_module
from coursekit.detection import roi_align
from coursekit.instance import mask_rcnn_loss, project_masks_on_boxes


def random_case(G, P, H, W, dtype=torch.float64, binary=True):
    masks = torch.rand(G, H, W) > 0.5 if binary else torch.rand(G, H, W, dtype=dtype)
    xy = torch.rand(P, 2, dtype=dtype) * torch.tensor([W, H], dtype=dtype) - 2
    boxes = torch.cat([xy, xy + torch.rand(P, 2, dtype=dtype) * 20 + 0.5], 1)
    return masks, boxes, torch.randint(0, G, (P,))


def tv_aligned_targets(masks, boxes, idx, M):
    """Detectron2's targets: torchvision's RoI Align with aligned=True on the masks."""
    rois = torch.cat([idx[:, None].to(boxes), boxes], 1)
    return tv_roi_align(masks[:, None].to(boxes), rois, (M, M), 1.0, aligned=True)[:, 0]


# ---- project_masks_on_boxes -----------------------------------------------------------


def test_hand_computed_half_mask_aligned_default():
    # columns 0-1 are inside the object. Box (0, 0, 4, 4) -> 2 x 2 bins of 2 x 2 pixels; with
    # aligned=True (the default) pixel i covers [i, i + 1), so the bins sample (adaptive grid,
    # 2 per axis) at x = 0, 1 | 2, 3 (pixel centres): values 1, 1 | 0, 0 -- the target's left
    # half is exactly the object
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[:, :, :2] = True
    target = project_masks_on_boxes(mask, torch.tensor([[0.0, 0, 4, 4]]), torch.tensor([0]), 2)
    assert_close(target, torch.tensor([[[1.0, 0.0], [1.0, 0.0]]]))


def test_hand_computed_half_mask_torchvision():
    # aligned=False: the same bins sample at x = 0.5, 1.5 | 2.5, 3.5: bilinear values
    # 1, 0.5 | 0, 0
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[:, :, :2] = True
    target = project_masks_on_boxes(mask, torch.tensor([[0.0, 0, 4, 4]]), torch.tensor([0]), 2,
                                    aligned=False)
    assert_close(target, torch.tensor([[[0.75, 0.0], [0.75, 0.0]]]))


def test_hand_computed_matched_idxs_pick_the_mask():
    masks = torch.stack([torch.zeros(6, 6), torch.ones(6, 6)]).bool()  # mask 0 empty, 1 full
    boxes = torch.tensor([[1.0, 1, 4, 5], [1.0, 1, 4, 5], [0.5, 2, 3, 3]], dtype=torch.float64)
    for aligned in (True, False):
        target = project_masks_on_boxes(masks, boxes, torch.tensor([1, 0, 1]), 3, aligned)
        assert target.dtype == torch.float64
        assert_close(target, torch.stack([torch.ones(3, 3), torch.zeros(3, 3),
                                          torch.ones(3, 3)]).double())


SHAPES = [(1, 4, 16, 16, 28), (3, 7, 20, 13, 14), (5, 12, 64, 64, 28), (2, 3, 9, 30, 5)]


@pytest.mark.parametrize("G, P, H, W, M", SHAPES)
@pytest.mark.parametrize("binary", [True, False])
def test_matches_torchvision(G, P, H, W, M, binary):
    masks, boxes, idx = random_case(G, P, H, W, binary=binary)
    assert_close(project_masks_on_boxes(masks, boxes, idx, M, aligned=False),
                 tv.project_masks_on_boxes(masks, boxes, idx, M))


@pytest.mark.parametrize("G, P, H, W, M", SHAPES)
def test_aligned_matches_torchvision_roi_align_aligned(G, P, H, W, M):
    masks, boxes, idx = random_case(G, P, H, W)
    assert_close(project_masks_on_boxes(masks, boxes, idx, M), tv_aligned_targets(masks, boxes,
                                                                                 idx, M))


@pytest.mark.parametrize("aligned", [True, False])
def test_same_as_our_roi_align_on_the_masks(aligned):
    # the separable Ay · mask · Axᵀ is RoI Align on the mask, sample for sample
    masks, boxes, idx = random_case(3, 9, 40, 33)
    rois = torch.cat([idx[:, None].double(), boxes], 1)
    expected = roi_align(masks[:, None].double(), rois, (14, 14), 1.0, -1, aligned)[:, 0]
    assert_close(project_masks_on_boxes(masks, boxes, idx, 14, aligned), expected)


def test_degenerate_boxes_match_torchvision():
    # zero-size boxes, a box fully outside, a box larger than the image, a sub-pixel box
    masks = torch.rand(2, 10, 12) > 0.5
    boxes = torch.tensor([[3.0, 3, 3, 3], [-20, -20, -15, -14], [5, 5, 30, 40],
                          [11.5, 9.5, 11.5, 12], [0.2, 0.3, 0.2, 9], [4.1, 4.2, 4.3, 4.9]],
                         dtype=torch.float64)
    idx = torch.tensor([0, 1, 0, 1, 1, 0])
    assert_close(project_masks_on_boxes(masks, boxes, idx, 6, aligned=False),
                 tv.project_masks_on_boxes(masks, boxes, idx, 6))
    assert_close(project_masks_on_boxes(masks, boxes, idx, 6),
                 tv_aligned_targets(masks, boxes, idx, 6))


def test_large_image_and_chunks_match_torchvision(monkeypatch):
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(4, 300, 400, generator=g) > 0.5
    xy = torch.rand(30, 2, generator=g, dtype=torch.float64) * torch.tensor([300.0, 220.0])
    boxes = torch.cat([xy, xy + torch.rand(30, 2, generator=g, dtype=torch.float64) * 150 + 1], 1)
    idx = torch.randint(0, 4, (30,), generator=g)
    expected = tv.project_masks_on_boxes(masks, boxes, idx, 28)
    assert_close(project_masks_on_boxes(masks, boxes, idx, 28, aligned=False), expected)
    monkeypatch.setattr(targets_module, "BUDGET", 1)  # one box per chunk
    assert_close(project_masks_on_boxes(masks, boxes, idx, 28, aligned=False), expected)


def test_float32_matches_torchvision():
    masks, boxes, idx = random_case(4, 9, 32, 32, dtype=torch.float32)
    assert_close(project_masks_on_boxes(masks, boxes, idx, 28, aligned=False),
                 tv.project_masks_on_boxes(masks, boxes, idx, 28))
    assert_close(project_masks_on_boxes(masks, boxes, idx, 28),
                 tv_aligned_targets(masks, boxes, idx, 28))


@pytest.mark.parametrize("aligned", [True, False])
def test_gradcheck_wrt_soft_masks(aligned):
    masks, boxes, idx = random_case(2, 3, 6, 7, binary=False)
    masks.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda m: project_masks_on_boxes(m, boxes, idx, 4, aligned), (masks,))


def test_no_boxes():
    out = project_masks_on_boxes(torch.zeros(0, 8, 8, dtype=torch.bool), torch.zeros(0, 4),
                                 torch.zeros(0, dtype=torch.long), 28)
    assert out.shape == (0, 28, 28)


Z8, B34, I3 = torch.zeros(2, 8, 8, dtype=torch.bool), torch.zeros(3, 4), torch.zeros(3).long()


@pytest.mark.parametrize("args, error, match", [
    ((Z8, torch.zeros(3, 5), I3, 28), ValueError, r"boxes must be Tensor\[N, 4\].*Tensor\[3, 5\]"),
    ((Z8, B34, I3[:2], 28), ValueError, r"matched_idxs must be Tensor\[P\] with P = 3"),
    ((Z8, B34, torch.tensor([0, 1, 2]), 28), ValueError, r"must index the G = 2 .* got 2"),
    ((Z8, B34, torch.tensor([0, -1, 0]), 28), ValueError, r"\[0, 2\), got -1"),
    ((Z8, B34, torch.zeros(3), 28), TypeError, "matched_idxs must be an int64 Tensor"),
    ((Z8, B34, I3, 0), ValueError, "M must be positive, got 0"),
    ((Z8, B34, I3, 2.5), TypeError, "M must be an int, got 2.5"),
    ((Z8[0], B34, I3, 28), ValueError, r"gt_masks must be Tensor\[G, H, W\].*Tensor\[8, 8\]"),
    ((Z8, B34.long(), I3, 28), TypeError, "boxes must be a floating-point"),
    ((Z8.to(torch.uint8), B34, I3, 28), TypeError,
     r"gt_masks must be a bool Tensor\[G, H, W\].*got Tensor\[2, 8, 8\] uint8.*\.bool\(\)"),
    (([[0]], B34, I3, 28), TypeError, r"gt_masks must be .*Tensor\[G, H, W\].*got list"),
])
def test_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        project_masks_on_boxes(*args)


def test_bad_aligned():
    with pytest.raises(TypeError, match="aligned must be a bool, got 'yes'"):
        project_masks_on_boxes(Z8, B34, I3, 28, "yes")


def test_device(device):
    # ours on the device, the references (torchvision) on CPU copies
    masks, boxes, idx = random_case(3, 5, 16, 16)
    for aligned, expected in ((False, tv.project_masks_on_boxes(masks, boxes, idx, 14)),
                              (True, tv_aligned_targets(masks, boxes, idx, 14))):
        out = project_masks_on_boxes(masks.to(device), boxes.to(device), idx.to(device), 14,
                                     aligned)
        assert out.device.type == device.type
        assert_close(out.cpu(), expected)


# ---- mask_rcnn_loss ---------------------------------------------------------------------

def random_loss_inputs(sizes=((3, 5), (2, 4), (4, 0)), C=4, M=14, H=24, W=20,
                       dtype=torch.float64):
    proposals, masks, labels, idxs = [], [], [], []
    for G, P in sizes:
        m, b, i = random_case(G, P, H, W, dtype=dtype)
        proposals.append(b)
        masks.append(m)
        labels.append(torch.randint(1, C, (G,)))
        idxs.append(i)
    logits = torch.randn(sum(p for _, p in sizes), C, M, M, dtype=dtype)
    return logits, proposals, masks, labels, idxs


def test_loss_hand_computed_zero_logits_give_log2():
    logits, proposals, masks, labels, idxs = random_loss_inputs()
    loss = mask_rcnn_loss(torch.zeros_like(logits), proposals, masks, labels, idxs)
    # BCE(sigmoid(0) = 1/2, y) = -(y log 1/2 + (1 - y) log 1/2) = log 2 whatever the target
    assert_close(loss, torch.tensor(0.6931471805599453, dtype=torch.float64))


def test_loss_only_uses_the_ground_truth_class_channel():
    logits, proposals, masks, labels, idxs = random_loss_inputs()
    loss = mask_rcnn_loss(logits, proposals, masks, labels, idxs)
    chosen = torch.cat([lab[i] for lab, i in zip(labels, idxs, strict=True)])
    other = torch.ones_like(logits, dtype=torch.bool)
    other[torch.arange(len(chosen)), chosen] = False
    changed = logits.masked_fill(other, 50.0)  # every other class's masks become "all object"
    assert_close(mask_rcnn_loss(changed, proposals, masks, labels, idxs), loss)


@pytest.mark.parametrize("M", [5, 14, 28])
def test_loss_matches_torchvision(M):
    logits, proposals, masks, labels, idxs = random_loss_inputs(M=M)
    assert_close(mask_rcnn_loss(logits, proposals, masks, labels, idxs, aligned=False),
                 tv.maskrcnn_loss(logits, proposals, masks, labels, idxs))


def aligned_reference_loss(logits, proposals, masks, labels, idxs, M):
    """torchvision's maskrcnn_loss with the targets of RoI Align aligned=True."""
    chosen, targets = [], []
    start = 0
    for p, m, lab, i in zip(proposals, masks, labels, idxs, strict=True):
        targets.append(tv_aligned_targets(m, p, i, M))
        chosen.append(logits[start:start + len(p)][torch.arange(len(p)), lab[i]])
        start += len(p)
    return torch.nn.functional.binary_cross_entropy_with_logits(torch.cat(chosen),
                                                                torch.cat(targets).to(logits))


def test_loss_default_is_aligned():
    logits, proposals, masks, labels, idxs = random_loss_inputs(M=14)
    ours = mask_rcnn_loss(logits, proposals, masks, labels, idxs)
    assert_close(ours, aligned_reference_loss(logits, proposals, masks, labels, idxs, 14))
    torchvision = mask_rcnn_loss(logits, proposals, masks, labels, idxs, aligned=False)
    assert not torch.allclose(ours, torchvision)  # the shift matters


def test_loss_gradcheck_and_empty():
    logits, proposals, masks, labels, idxs = random_loss_inputs(sizes=((2, 2), (1, 1)), C=3, M=4)
    logits.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: mask_rcnn_loss(x, proposals, masks, labels, idxs),
                                    (logits,))
    empty = torch.zeros(0, 3, 4, 4, requires_grad=True)
    loss = mask_rcnn_loss(empty, [torch.zeros(0, 4)], [torch.zeros(1, 8, 8, dtype=torch.bool)],
                          [torch.tensor([1])], [torch.zeros(0, dtype=torch.long)])
    assert loss.item() == 0.0
    loss.backward()  # still part of the graph


def test_loss_bad_input():
    logits, proposals, masks, labels, idxs = random_loss_inputs()
    with pytest.raises(ValueError, match=r"mask_logits has P = 8 rows but the proposals hold 9"):
        mask_rcnn_loss(logits[:8], proposals, masks, labels, idxs)
    with pytest.raises(ValueError, match=r"mask_logits must be Tensor\[P, C, M, M\]"):
        mask_rcnn_loss(logits[:, :, :, :3], proposals, masks, labels, idxs)
    with pytest.raises(ValueError, match=r"gt_labels\[0\] must be class indices in \[0, C\)"):
        mask_rcnn_loss(logits, proposals, masks, [labels[0] + 9] + labels[1:], idxs)
    with pytest.raises(ValueError, match=r"gt_labels\[1\] must be Tensor\[G\] with G = 2"):
        mask_rcnn_loss(logits, proposals, masks, [labels[0], labels[1][:1], labels[2]], idxs)
    with pytest.raises(TypeError, match=r"gt_labels\[0\] must be an int64 Tensor\[G\]"):
        mask_rcnn_loss(logits, proposals, masks, [labels[0].float()] + labels[1:], idxs)
    with pytest.raises(ValueError, match="one entry per image"):
        mask_rcnn_loss(logits, proposals, masks[:2], labels, idxs)
    with pytest.raises(TypeError, match="proposals must be a list with one Tensor per image"):
        mask_rcnn_loss(logits, proposals[0], masks, labels, idxs)
    with pytest.raises(ValueError, match=r"matched_idxs\[0\] must index the G = 3"):
        mask_rcnn_loss(logits, proposals, masks, labels, [idxs[0] + 5] + idxs[1:])
    with pytest.raises(TypeError, match=r"gt_masks\[1\] must be a bool Tensor\[G, H, W\]"):
        mask_rcnn_loss(logits, proposals, [masks[0], masks[1].long(), masks[2]], labels, idxs)
    with pytest.raises(TypeError, match=r"mask_logits must be a Tensor\[P, C, M, M\], got list"):
        mask_rcnn_loss([1.0], proposals, masks, labels, idxs)


def test_loss_device(device):
    # ours on the device, torchvision's maskrcnn_loss on CPU copies
    logits, proposals, masks, labels, idxs = random_loss_inputs()
    move = lambda ts: [t.to(device) for t in ts]  # noqa: E731
    moved = mask_rcnn_loss(logits.to(device), move(proposals), move(masks), move(labels),
                           move(idxs), aligned=False)
    assert moved.device.type == device.type
    assert_close(moved.cpu(), tv.maskrcnn_loss(logits, proposals, masks, labels, idxs))
    moved = mask_rcnn_loss(logits.to(device), move(proposals), move(masks), move(labels),
                           move(idxs))
    assert_close(moved.cpu(), aligned_reference_loss(logits, proposals, masks, labels, idxs, 14))
