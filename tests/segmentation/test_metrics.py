"""Confusion matrix, IoU, mIoU and pixel accuracy against by-hand and independent computations."""

import math

import numpy as np
import pytest
import torch

from coursekit.segmentation.metrics import (
    boundary_band,
    confusion_matrix,
    iou_from_confusion,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)


def test_hand_computed_3x3():
    target = torch.tensor([[0, 0, 1], [0, 1, 1], [2, 2, 255]])
    pred = torch.tensor([[0, 1, 1], [0, 1, 0], [2, 0, 2]])
    # valid pixels (8): truth->pred: 0->0, 0->1, 1->1, 0->0, 1->1, 1->0, 2->2, 2->0
    expected = torch.tensor([[2, 1, 0], [1, 2, 0], [1, 0, 1]])
    assert torch.equal(confusion_matrix(pred, target, 3), expected)
    # class 0: TP 2, FP 2 (col 1+1), FN 1 -> 2/5 ; class 1: TP 2, FP 1, FN 1 -> 2/4 ; class 2: TP 1, FP 0, FN 1 -> 1/2
    torch.testing.assert_close(iou_per_class(pred, target, 3), torch.tensor([0.4, 0.5, 0.5], dtype=torch.float64))
    assert mean_iou(pred, target, 3) == pytest.approx((0.4 + 0.5 + 0.5) / 3)
    assert pixel_accuracy(pred, target, 3) == pytest.approx(5 / 8)


def test_absent_class_is_nan_and_left_out():
    target = torch.tensor([[0, 0], [1, 1]])
    pred = torch.tensor([[0, 0], [1, 0]])
    iou = iou_per_class(pred, target, 4)  # classes 2, 3 appear nowhere
    assert math.isnan(iou[2]) and math.isnan(iou[3])
    # class 0: TP 2, FP 1 -> 2/3 ; class 1: TP 1, FN 1 -> 1/2
    assert mean_iou(pred, target, 4) == pytest.approx((2 / 3 + 1 / 2) / 2)
    # a class only predicted (a false positive) counts with IoU 0
    assert mean_iou(torch.tensor([[3, 0], [1, 1]]), target, 4) == pytest.approx((1 / 2 + 1 + 0) / 3)


def _iou_with_masks(pred, target, num_classes, ignore_index=255):
    """Independent method: boolean masks per class."""
    valid = target != ignore_index
    ious = []
    for c in range(num_classes):
        p = (pred == c) & valid
        t = (target == c) & valid
        union = (p | t).sum().item()
        ious.append((p & t).sum().item() / union if union else float("nan"))
    return torch.tensor(ious, dtype=torch.float64)


@pytest.mark.parametrize("shape,num_classes", [((5,), 2), ((2, 7, 9), 4), ((3, 16, 16), 8), ((1, 4, 4), 10)])
def test_random_against_masks_and_histogram(shape, num_classes):
    target = torch.randint(0, num_classes, shape)
    target[torch.rand(shape) < 0.1] = 255
    pred = torch.randint(0, num_classes, shape)
    expected = _iou_with_masks(pred, target, num_classes)
    torch.testing.assert_close(iou_per_class(pred, target, num_classes), expected, equal_nan=True)
    assert mean_iou(pred, target, num_classes) == pytest.approx(float(np.nanmean(expected.numpy())))
    valid = target != 255
    assert pixel_accuracy(pred, target, num_classes) == pytest.approx((pred == target)[valid].double().mean().item())
    hist, _, _ = np.histogram2d(target[valid].numpy(), pred[valid].numpy(), bins=num_classes,
                                range=[[0, num_classes], [0, num_classes]])
    assert np.array_equal(confusion_matrix(pred, target, num_classes).numpy(), hist.astype(np.int64))


def test_summed_confusion_is_dataset_miou():
    target = torch.randint(0, 3, (4, 8, 8))
    pred = torch.randint(0, 3, (4, 8, 8))
    total = sum(confusion_matrix(p, t, 3) for p, t in zip(pred, target))
    torch.testing.assert_close(iou_from_confusion(total), iou_per_class(pred, target, 3))


def test_device(device):
    target = torch.randint(0, 5, (2, 6, 6), device=device)
    pred = torch.randint(0, 5, (2, 6, 6), device=device)
    matrix = confusion_matrix(pred, target, 5)
    assert matrix.device.type == device.type and matrix.dtype == torch.int64
    torch.testing.assert_close(iou_per_class(pred, target, 5).cpu(), _iou_with_masks(pred.cpu(), target.cpu(), 5),
                               equal_nan=True)


def test_bad_input():
    t = torch.zeros(2, 3, dtype=torch.long)
    with pytest.raises(TypeError, match=r"pred must be an integer Tensor of class ids \(take logits.argmax\(1\) first\)"):
        mean_iou(torch.zeros(2, 3), t, 2)
    with pytest.raises(ValueError, match=r"pred and target must have the same shape, got pred Tensor\[3, 2\]"):
        mean_iou(t.T, t, 2)
    with pytest.raises(ValueError, match=r"pred values must be in \[0, 2\), got min 0, max 5"):
        confusion_matrix(torch.tensor([0, 5]), torch.tensor([0, 1]), 2)
    with pytest.raises(ValueError, match=r"target values must be in \[0, 2\) or ignore_index=255"):
        confusion_matrix(torch.tensor([0, 1]), torch.tensor([0, 9]), 2)
    with pytest.raises(ValueError, match="num_classes must be a positive int, got 0"):
        confusion_matrix(t, t, 0)
    with pytest.raises(ValueError, match=r"matrix must be a square Tensor\[C, C\], got Tensor\[2, 3\]"):
        iou_from_confusion(t)


# --- boundary band ---------------------------------------------------------------------------


def test_boundary_band_hand_computed():
    # a vertical edge between columns 1 and 2, an ignored pixel at (3, 3)
    target = torch.tensor([[0, 0, 1, 1],
                           [0, 0, 1, 1],
                           [0, 0, 1, 1],
                           [0, 0, 1, 255]])
    expected = torch.tensor([[0, 1, 1, 0],
                             [0, 1, 1, 0],
                             [0, 1, 1, 0],
                             [0, 1, 1, 0]], dtype=torch.bool)  # the border is no edge; 255 is never in the band
    assert torch.equal(boundary_band(target), expected)
    # width 2 reaches every pixel of this 4-wide image, except the ignored one
    assert torch.equal(boundary_band(target, width=2), target != 255)
    # ignored pixels do not make an edge: 0 next to 255 only is not a boundary
    assert not boundary_band(torch.tensor([[0, 255, 0], [0, 0, 0]])).any()
    # one image of a batch never sees another
    batch = torch.stack([torch.zeros(3, 3, dtype=torch.long), torch.ones(3, 3, dtype=torch.long)])
    assert not boundary_band(batch).any()
    # a diagonal neighbour counts (square window)
    corner = torch.tensor([[1, 0, 0], [0, 0, 0], [0, 0, 0]])
    assert torch.equal(boundary_band(corner), torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=torch.bool))


def _band_with_loops(target, width, ignore_index=255):
    """Independent method: for every pixel, look at every pixel of its window (numpy, plain loops)."""
    t = target.numpy()
    out = np.zeros(t.shape, dtype=bool)
    n_img, h, w = t.shape
    for n in range(n_img):
        for y in range(h):
            for x in range(w):
                if t[n, y, x] == ignore_index:
                    continue
                window = t[n, max(0, y - width):y + width + 1, max(0, x - width):x + width + 1]
                out[n, y, x] = bool(((window != ignore_index) & (window != t[n, y, x])).any())
    return torch.from_numpy(out)


@pytest.mark.parametrize("shape,width", [((1, 5, 7), 1), ((2, 9, 6), 2), ((3, 12, 12), 3), ((1, 4, 4), 5)])
def test_boundary_band_random_against_loops(shape, width):
    target = torch.randint(0, 3, shape)
    target[torch.rand(shape) < 0.1] = 255
    band = boundary_band(target, width)
    assert band.dtype == torch.bool and band.shape == target.shape
    assert torch.equal(band, _band_with_loops(target, width))
    assert torch.equal(boundary_band(target[0], width), band[0])  # Tensor[H, W] works the same


def test_boundary_band_iou_on_the_band_float64():
    # the lesson's use: IoU per class on the band only, by confusion matrix and by boolean masks in float64
    target = torch.randint(0, 4, (3, 16, 16))
    target[:, 4:12, 4:12] = 2  # some real edges
    pred = torch.where(torch.rand(3, 16, 16) < 0.2, torch.randint(0, 4, (3, 16, 16)), target)
    band = boundary_band(target, 2)
    on_band = torch.where(band, target, 255)
    torch.testing.assert_close(iou_per_class(pred, on_band, 4), _iou_with_masks(pred, on_band, 4), equal_nan=True)
    expected = []
    for c in range(4):
        p, t = (pred == c) & band, (target == c) & band
        expected.append((p & t).double().sum() / (p | t).double().sum())
    torch.testing.assert_close(iou_per_class(pred, on_band, 4), torch.stack(expected))


def test_boundary_band_device(device):
    target = torch.randint(0, 5, (2, 9, 9), device=device)
    band = boundary_band(target, 2)
    assert band.device.type == device.type
    assert torch.equal(band.cpu(), _band_with_loops(target.cpu(), 2))
    assert boundary_band(torch.zeros(2, 8, 8, dtype=torch.long, device="meta")).shape == (2, 8, 8)


def test_boundary_band_bad_input():
    t = torch.zeros(4, 4, dtype=torch.long)
    with pytest.raises(ValueError, match=r"target must be an integer Tensor\[H, W\] or Tensor\[N, H, W\].*got Tensor\[4, 4\] float32"):
        boundary_band(t.float())
    with pytest.raises(ValueError, match=r"target must be .*got Tensor\[1, 1, 4, 4\] int64"):
        boundary_band(t.view(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"target must be .*got list"):
        boundary_band([[0, 1]])
    with pytest.raises(ValueError, match=r"width must be a positive int \(pixels from the edge\), got 0"):
        boundary_band(t, width=0)
    with pytest.raises(ValueError, match=r"width must be a positive int .*got 1.5"):
        boundary_band(t, width=1.5)
