"""Confusion matrix, IoU, mIoU and pixel accuracy against by-hand and independent computations."""

import math

import numpy as np
import pytest
import torch

from coursekit.segmentation.metrics import (
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
