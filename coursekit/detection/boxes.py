"""Boxes: area, IoU, non-maximum suppression, clipping and filtering.

Lecture: *Object detection* — a detector outputs many overlapping boxes per
object; **non-maximum suppression** keeps the best-scoring one and drops every
other box that overlaps it too much::

    IoU(A, B) = |A ∩ B| / |A ∪ B|        (intersection over union)

    NMS: sort boxes by score (highest first); repeat: keep the best remaining box,
         drop every remaining box whose IoU with it is > iou_threshold.

Boxes are ``(x1, y1, x2, y2)`` ("xyxy") with ``x1 <= x2``, ``y1 <= y2``. Every
function has the name, argument order and semantics of ``torchvision.ops``;
tested in tests/detection/test_boxes.py.
"""

from __future__ import annotations

import torch
from torch import Tensor


def shape_str(t: Tensor) -> str:
    """``Tensor[2, 3, 4]`` — how error messages name a tensor's shape."""
    return "Tensor[" + ", ".join(str(s) for s in t.shape) + "]"


def check_boxes(boxes: object, name: str = "boxes", floating: bool = False) -> Tensor:
    """Raise unless ``boxes`` is a ``Tensor[N, 4]`` (floating point if asked)."""
    if not isinstance(boxes, Tensor):
        raise TypeError(f"{name} must be a Tensor[N, 4], got {type(boxes).__name__}")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must be Tensor[N, 4] (x1, y1, x2, y2), got {shape_str(boxes)}")
    if floating and not boxes.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {boxes.dtype}")
    if boxes.is_complex() or boxes.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got dtype {boxes.dtype}")
    return boxes


def _upcast(t: Tensor) -> Tensor:
    """float16/bfloat16 -> float32 and small ints -> int32, so products do not overflow."""
    if t.is_floating_point():
        return t if t.dtype in (torch.float32, torch.float64) else t.float()
    return t if t.dtype in (torch.int32, torch.int64) else t.int()


def box_area(boxes: Tensor) -> Tensor:
    """Area ``(x2 - x1) * (y2 - y1)`` of each box.

    Args:
        boxes: Tensor[N, 4] in (x1, y1, x2, y2).

    Returns:
        Tensor[N]. Same as ``torchvision.ops.box_area``.
    """
    boxes = _upcast(check_boxes(boxes))
    return (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])


def box_iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """Intersection over union of every pair: ``IoU = inter / (area1 + area2 - inter)``.

    The intersection of two boxes is the box ``(max x1, max y1, min x2, min y2)``,
    with its width and height clamped at 0 when they do not overlap.

    Args:
        boxes1: Tensor[N, 4], boxes2: Tensor[M, 4] in (x1, y1, x2, y2).

    Returns:
        Tensor[N, M]. Same as ``torchvision.ops.box_iou`` (two empty boxes give NaN
        there too).
    """
    area1 = box_area(check_boxes(boxes1, "boxes1"))  # (N,)
    area2 = box_area(check_boxes(boxes2, "boxes2"))  # (M,)
    lt = torch.max(boxes1[:, None, :2], boxes2[None, :, :2])  # (N, M, 2) top-left of the intersection
    rb = torch.min(boxes1[:, None, 2:], boxes2[None, :, 2:])  # (N, M, 2) bottom-right
    wh = _upcast(rb - lt).clamp(min=0)  # (N, M, 2)
    inter = wh[..., 0] * wh[..., 1]  # (N, M)
    union = area1[:, None] + area2 - inter
    return inter / union


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression; returns the indices of the kept boxes.

    Boxes are sorted by score, highest first (a stable sort, so equal scores keep
    their input order, as torchvision's kernel does). The best remaining box is
    kept and every later box with ``IoU > iou_threshold`` against it is dropped,
    until no box remains. The IoU matrix is computed once, vectorised; the loop
    only reads one flag per box and updates the flags once per kept box.

    Args:
        boxes: Tensor[N, 4] floating point, (x1, y1, x2, y2).
        scores: Tensor[N], same dtype as boxes.
        iou_threshold: drop boxes with IoU > iou_threshold.

    Returns:
        int64 Tensor[K]: indices into ``boxes``, by decreasing score. Same as
        ``torchvision.ops.nms`` (order and ties included); tested in
        tests/detection/test_boxes.py.
    """
    check_boxes(boxes, floating=True)
    if not isinstance(scores, Tensor) or scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        got = shape_str(scores) if isinstance(scores, Tensor) else type(scores).__name__
        raise ValueError(f"scores must be Tensor[N] with N = {boxes.shape[0]} (one per box), got {got}")
    if not isinstance(iou_threshold, (int, float)) or isinstance(iou_threshold, bool):
        raise TypeError(f"iou_threshold must be a float, got {iou_threshold!r}")
    n = boxes.shape[0]
    if n == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    order = torch.sort(scores, descending=True, stable=True).indices  # (N,) best first
    sorted_boxes = boxes[order]
    # overlaps[i, j], i < j: box j is dropped if box i is kept (both in score order)
    overlaps = (box_iou(sorted_boxes, sorted_boxes) > iou_threshold).triu(1).cpu()  # (N, N) bool
    keep = torch.ones(n, dtype=torch.bool)
    for i in range(n):  # best first; a dropped box drops nothing
        if keep[i]:
            keep &= ~overlaps[i]
    return order[keep.nonzero().flatten().to(order.device)]


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS done independently per category ``idxs``: boxes of different categories never suppress each other.

    The coordinate-offset trick: shift every box of category ``c`` by
    ``c * (max coordinate + 1)`` so boxes of different categories cannot overlap,
    then run one ``nms``.

    Args:
        boxes: Tensor[N, 4], scores: Tensor[N], idxs: int64 Tensor[N] category of each box.
        iou_threshold: as in ``nms``.

    Returns:
        int64 Tensor[K]: kept indices by decreasing score. Same as
        ``torchvision.ops.batched_nms``.
    """
    check_boxes(boxes, floating=True)
    if not isinstance(idxs, Tensor) or idxs.shape != (boxes.shape[0],) or idxs.is_floating_point():
        got = f"{shape_str(idxs)} of dtype {idxs.dtype}" if isinstance(idxs, Tensor) else type(idxs).__name__
        raise ValueError(f"idxs must be an integer Tensor[N] with N = {boxes.shape[0]}, got {got}")
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    offsets = idxs.to(boxes) * (boxes.max() + torch.tensor(1).to(boxes))  # (N,)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clamp x to ``[0, width]`` and y to ``[0, height]``.

    Args:
        boxes: Tensor[N, 4]; size: ``(height, width)`` of the image.

    Returns:
        Tensor[N, 4]. Same as ``torchvision.ops.clip_boxes_to_image``.
    """
    check_boxes(boxes)
    if not isinstance(size, (tuple, list)) or len(size) != 2:
        raise TypeError(f"size must be (height, width), got {size!r}")
    height, width = size
    x = boxes[:, 0::2].clamp(min=0, max=width)  # (N, 2)
    y = boxes[:, 1::2].clamp(min=0, max=height)
    return torch.stack((x, y), dim=2).reshape(boxes.shape)  # (N, 2, 2) -> (N, 4) as x1 y1 x2 y2


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices of the boxes whose width and height are both ``>= min_size``.

    Args:
        boxes: Tensor[N, 4]; min_size: float.

    Returns:
        int64 Tensor[K]. Same as ``torchvision.ops.remove_small_boxes``.
    """
    check_boxes(boxes)
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.where((ws >= min_size) & (hs >= min_size))[0]
