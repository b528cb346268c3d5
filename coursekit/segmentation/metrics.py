"""Segmentation metrics from the confusion matrix: IoU per class, mIoU, pixel accuracy.

``confusion_matrix[t, p]`` counts pixels of true class ``t`` predicted as ``p``
(rows = truth). For class ``c``: ``TP = M[c, c]``, ``FN = row sum - TP``,
``FP = column sum - TP`` and

    IoU_c = TP / (TP + FP + FN),    mIoU = mean of IoU_c over classes present
                                           in the prediction or the target,
    pixel accuracy = trace(M) / sum(M).

Pixels whose target is ``ignore_index`` count nowhere. Summing confusion
matrices over batches and calling ``iou_from_confusion`` gives the dataset
mIoU (what ``evaluate_segmentation`` does).

``boundary_band`` marks the pixels within ``width`` pixels of a label edge (the
"trimap" band of Kohli et al. 2009, used by DeepLab to score boundaries): set
the target to ``ignore_index`` outside the band and the same metrics measure
how well a model draws its edges. Tested against a per-class boolean-mask
computation, a pixel loop and hand-computed examples in
tests/segmentation/test_metrics.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.validators import describe, positive_int, require_tensor

__all__ = [
    "boundary_band",
    "confusion_matrix",
    "iou_from_confusion",
    "iou_per_class",
    "mean_iou",
    "pixel_accuracy",
]

INTEGER_DTYPES = "int64, int32, int16, int8 or uint8"


def _require_ids(t: object, name: str, expected: str, hint: str = "") -> Tensor:
    """An integer tensor of class ids: ``TypeError`` for anything else (float, bool, complex)."""
    require_tensor(t, name, expected)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be {expected} ({INTEGER_DTYPES}){hint}, got {describe(t)}")
    return t


def _require_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return value


def confusion_matrix(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255
) -> Tensor:
    """Tensor[C, C] int64 with ``M[t, p]`` = number of pixels with truth ``t`` and prediction ``p``.

    ``pred``, ``target``: integer tensors of the same shape (e.g. Tensor[N, H, W];
    take ``logits.argmax(1)`` first). One ``bincount`` of ``t * C + p``.
    Same as ``numpy.histogram2d(target, pred)`` on the valid pixels (tested).
    """
    num_classes = positive_int(num_classes, "num_classes")
    ignore_index = _require_int(ignore_index, "ignore_index")
    _require_ids(pred, "pred", "an integer Tensor of class ids", "; take logits.argmax(1) first")
    _require_ids(target, "target", "an integer Tensor of class ids")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, "
                         f"got pred {describe(pred)} and target {describe(target)}")
    valid = target != ignore_index
    pred, target = pred[valid].long(), target[valid].long()
    if pred.numel() and (int(pred.min()) < 0 or int(pred.max()) >= num_classes):
        raise ValueError(f"pred values must be in [0, {num_classes}), "
                         f"got min {int(pred.min())}, max {int(pred.max())}")
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(f"target values must be in [0, {num_classes}) or "
                         f"ignore_index={ignore_index}, "
                         f"got min {int(target.min())}, max {int(target.max())}")
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)  # (C_true, C_pred)


def iou_from_confusion(matrix: Tensor) -> Tensor:
    """IoU per class from a confusion matrix Tensor[C, C]: Tensor[C] float64, NaN if TP+FP+FN = 0.

    ``matrix`` holds counts (any integer or floating dtype; float32 on MPS, which has no float64).
    """
    expected = "a square Tensor[C, C] of counts"
    require_tensor(matrix, "matrix", expected)
    if matrix.dim() != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be {expected}, got {describe(matrix)}")
    if matrix.is_complex() or matrix.dtype == torch.bool:
        raise TypeError(f"matrix must be {expected} (an integer or floating dtype), "
                        f"got {describe(matrix)}")
    exact = torch.float32 if matrix.device.type == "mps" else torch.float64  # MPS has no float64
    matrix = matrix.to(exact)
    tp = matrix.diagonal()
    union = matrix.sum(0) + matrix.sum(1) - tp  # TP + FP + FN
    # divide by the union where it is > 0 (clamp(min=1) would be wrong for counts below 1, as
    # in an averaged matrix)
    safe = torch.where(union > 0, union, torch.ones_like(union))
    return torch.where(union > 0, tp / safe, torch.full_like(tp, float("nan")))


def iou_per_class(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255
) -> Tensor:
    """``IoU_c = TP / (TP + FP + FN)`` per class: Tensor[num_classes] float64, NaN where absent.

    A class is absent when it is in neither ``pred`` nor ``target`` (on valid pixels).
    """
    return iou_from_confusion(confusion_matrix(pred, target, num_classes, ignore_index))


def mean_iou(pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255) -> float:
    """Mean IoU over the classes present in ``pred`` or ``target`` (a float; NaN if no valid pixel).

    ``pred``, ``target``: integer Tensors of the same shape, e.g. Tensor[N, H, W].
    Pixels with ``target == ignore_index`` are left out. The dataset mIoU is
    ``nanmean(iou_from_confusion(sum of confusion matrices))``, not the mean of
    per-image mIoUs.
    """
    return float(torch.nanmean(iou_per_class(pred, target, num_classes, ignore_index)))


def pixel_accuracy(
    pred: Tensor, target: Tensor, num_classes: int, ignore_index: int = 255
) -> float:
    """Fraction of valid pixels (``target != ignore_index``) where ``pred == target``: a float."""
    matrix = confusion_matrix(pred, target, num_classes, ignore_index)
    total = int(matrix.sum())
    return float(matrix.diagonal().sum()) / total if total else float("nan")


def boundary_band(target: Tensor, width: int = 1, ignore_index: int = 255) -> Tensor:
    """Pixels near a label edge: bool Tensor shaped like ``target`` (Tensor[H, W] or [N, H, W]).

    Pixel ``p`` is in the band when its label is valid (not ``ignore_index``) and
    some valid pixel ``q`` of the same image with
    ``max(|p_y - q_y|, |p_x - q_x|) <= width``
    (the (2 width + 1)² window around ``p``) has a different label. Both sides of
    an edge are marked, so the band is 2 ``width`` pixels wide; the image border
    is not an edge and ignored pixels mark nothing. Computed with two max-pools:
    the largest and the smallest valid label in each window differ exactly on the band.
    Use it to score edges only: ``torch.where(band, target, ignore_index)`` as the target.
    ``target``: any integer dtype, class ids below 2^24.
    """
    expected = "an integer Tensor[H, W] or Tensor[N, H, W] of class ids"
    _require_ids(target, "target", expected)
    if target.dim() not in (2, 3):
        raise ValueError(f"target must be {expected}, got {describe(target)}")
    width = positive_int(width, "width")
    ignore_index = _require_int(ignore_index, "ignore_index")
    # float32 is exact for ids < 2^24 (and MPS has no float64)
    labels = target.reshape(-1, 1, *target.shape[-2:]).float()  # (N, 1, H, W)
    valid = labels != ignore_index
    kernel = 2 * width + 1
    lowest = torch.tensor(float("-inf"), dtype=labels.dtype, device=labels.device)
    # the largest and (negated) the smallest valid label in each window
    high = F.max_pool2d(torch.where(valid, labels, lowest), kernel, stride=1, padding=width)
    low = -F.max_pool2d(torch.where(valid, -labels, lowest), kernel, stride=1, padding=width)
    return (valid & (high > low)).reshape(target.shape)
