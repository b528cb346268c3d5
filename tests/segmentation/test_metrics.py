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
    # class 0: TP 2, FP 2 (col 1+1), FN 1 -> 2/5 ; class 1: TP 2, FP 1, FN 1 -> 2/4 ;
    # class 2: TP 1, FP 0, FN 1 -> 1/2
    torch.testing.assert_close(iou_per_class(pred, target, 3),
                               torch.tensor([0.4, 0.5, 0.5], dtype=torch.float64))
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


@pytest.mark.parametrize("shape,num_classes",
                         [((5,), 2), ((2, 7, 9), 4), ((3, 16, 16), 8), ((1, 4, 4), 10)])
def test_random_against_masks_and_histogram(shape, num_classes):
    target = torch.randint(0, num_classes, shape)
    target[torch.rand(shape) < 0.1] = 255
    pred = torch.randint(0, num_classes, shape)
    expected = _iou_with_masks(pred, target, num_classes)
    torch.testing.assert_close(iou_per_class(pred, target, num_classes), expected, equal_nan=True)
    assert mean_iou(pred, target, num_classes) == pytest.approx(float(np.nanmean(expected.numpy())))
    valid = target != 255
    accuracy = (pred == target)[valid].double().mean().item()
    assert pixel_accuracy(pred, target, num_classes) == pytest.approx(accuracy)
    hist = _histogram(pred, target, num_classes)
    assert np.array_equal(confusion_matrix(pred, target, num_classes).numpy(), hist)
    # any integer dtype holds class ids
    small = confusion_matrix(pred.to(torch.uint8), target.to(torch.uint8), num_classes)
    assert np.array_equal(small.numpy(), hist)


def _histogram(pred, target, num_classes, ignore_index=255):
    """numpy's histogram2d of (target, pred) on the valid pixels: the reference matrix."""
    valid = target != ignore_index
    hist, _, _ = np.histogram2d(target[valid].cpu().numpy(), pred[valid].cpu().numpy(),
                                bins=num_classes, range=[[0, num_classes], [0, num_classes]])
    return hist.astype(np.int64)


def test_summed_confusion_is_dataset_miou():
    target = torch.randint(0, 3, (4, 8, 8))
    pred = torch.randint(0, 3, (4, 8, 8))
    total = sum(confusion_matrix(p, t, 3) for p, t in zip(pred, target, strict=True))
    torch.testing.assert_close(iou_from_confusion(total), iou_per_class(pred, target, 3))
    # counts may come as floats (e.g. averaged matrices): same IoU
    torch.testing.assert_close(iou_from_confusion(total.float()), iou_from_confusion(total))


def test_device(device):
    # the references (numpy's histogram2d, boolean masks in float64) run on the CPU
    target = torch.randint(0, 5, (2, 6, 6))
    target[0, 0] = 255
    pred = torch.randint(0, 5, (2, 6, 6))
    matrix = confusion_matrix(pred.to(device), target.to(device), 5)
    assert matrix.device.type == device.type and matrix.dtype == torch.int64
    assert np.array_equal(matrix.cpu().numpy(), _histogram(pred, target, 5))
    expected = _iou_with_masks(pred, target, 5)
    iou = iou_per_class(pred.to(device), target.to(device), 5)
    assert iou.device.type == device.type
    torch.testing.assert_close(iou.cpu(), expected, equal_nan=True)
    assert mean_iou(pred.to(device), target.to(device), 5) == pytest.approx(
        float(np.nanmean(expected.numpy())))
    valid = target != 255
    assert pixel_accuracy(pred.to(device), target.to(device), 5) == pytest.approx(
        (pred == target)[valid].double().mean().item())


T = torch.zeros(2, 3, dtype=torch.long)


@pytest.mark.parametrize("fn, args, error, match", [
    (mean_iou, (T.float(), T, 2), TypeError,
     r"pred must be an integer Tensor of class ids \(int64, int32, int16, int8 or uint8\); "
     r"take logits.argmax\(1\) first, got Tensor\[2, 3\] float32"),
    (mean_iou, (T, T.bool(), 2), TypeError,
     r"target must be an integer Tensor of class ids .*got Tensor\[2, 3\] bool"),
    (pixel_accuracy, ([[0, 1]], T, 2), TypeError, "pred must be an integer Tensor .*got list"),
    (mean_iou, (T.T, T, 2), ValueError,
     r"pred and target must have the same shape, got pred Tensor\[3, 2\] int64"),
    (confusion_matrix, (torch.tensor([0, 5]), torch.tensor([0, 1]), 2), ValueError,
     r"pred values must be in \[0, 2\), got min 0, max 5"),
    (confusion_matrix, (torch.tensor([0, 1]), torch.tensor([0, 9]), 2), ValueError,
     r"target values must be in \[0, 2\) or ignore_index=255, got min 0, max 9"),
    (confusion_matrix, (T, T, 0), ValueError, "num_classes must be positive, got 0"),
    (confusion_matrix, (T, T, 2.0), TypeError, "num_classes must be an int, got 2.0"),
    (confusion_matrix, (T, T, 2, None), TypeError, "ignore_index must be an int, got None"),
    (iou_per_class, (T, T, True), TypeError, "num_classes must be an int, got True"),
    (iou_from_confusion, (T,), ValueError,
     r"matrix must be a square Tensor\[C, C\] of counts, got Tensor\[2, 3\] int64"),
    (iou_from_confusion, (T.tolist(),), TypeError, "matrix must be a square Tensor.*got list"),
    (iou_from_confusion, (torch.eye(2, dtype=torch.bool),), TypeError,
     r"matrix must be .*integer or floating dtype.*got Tensor\[2, 2\] bool"),
])
def test_bad_input(fn, args, error, match):
    with pytest.raises(error, match=match):
        fn(*args)


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
                             [0, 1, 1, 0]], dtype=torch.bool)
    # the border is no edge; 255 is never in the band
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
    expected = torch.tensor([[1, 1, 0], [1, 1, 0], [0, 0, 0]], dtype=torch.bool)
    assert torch.equal(boundary_band(corner), expected)


def _band_with_loops(target, width, ignore_index=255):
    """Independent method: for every pixel, look at every pixel of its window (plain loops)."""
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


@pytest.mark.parametrize("shape,width",
                         [((1, 5, 7), 1), ((2, 9, 6), 2), ((3, 12, 12), 3), ((1, 4, 4), 5)])
def test_boundary_band_random_against_loops(shape, width):
    target = torch.randint(0, 3, shape)
    target[torch.rand(shape) < 0.1] = 255
    band = boundary_band(target, width)
    assert band.dtype == torch.bool and band.shape == target.shape
    assert torch.equal(band, _band_with_loops(target, width))
    assert torch.equal(boundary_band(target[0], width), band[0])  # Tensor[H, W] works the same


def test_boundary_band_iou_on_the_band_float64():
    # the lesson's use: IoU per class on the band only, by confusion matrix and by boolean
    # masks in float64
    target = torch.randint(0, 4, (3, 16, 16))
    target[:, 4:12, 4:12] = 2  # some real edges
    pred = torch.where(torch.rand(3, 16, 16) < 0.2, torch.randint(0, 4, (3, 16, 16)), target)
    band = boundary_band(target, 2)
    on_band = torch.where(band, target, 255)
    torch.testing.assert_close(iou_per_class(pred, on_band, 4), _iou_with_masks(pred, on_band, 4),
                               equal_nan=True)
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
    meta = boundary_band(torch.zeros(2, 8, 8, dtype=torch.long, device="meta"))
    assert meta.shape == (2, 8, 8) and meta.dtype == torch.bool


BAND = torch.zeros(4, 4, dtype=torch.long)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((BAND.float(),), {}, TypeError,
     r"target must be an integer Tensor\[H, W\] or Tensor\[N, H, W\] of class ids "
     r"\(int64, int32, int16, int8 or uint8\), got Tensor\[4, 4\] float32"),
    ((BAND.view(1, 1, 4, 4),), {}, ValueError, r"target must be .*got Tensor\[1, 1, 4, 4\] int64"),
    (([[0, 1]],), {}, TypeError, "target must be .*got list"),
    ((BAND,), {"width": 0}, ValueError, "width must be positive, got 0"),
    ((BAND,), {"width": 1.5}, TypeError, "width must be an int, got 1.5"),
    ((BAND,), {"ignore_index": "255"}, TypeError, "ignore_index must be an int, got '255'"),
])
def test_boundary_band_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        boundary_band(*args, **kwargs)
