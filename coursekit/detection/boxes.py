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

import numbers

import torch
from torch import Tensor

# shape_str and check_boxes lived here first; other modules still import them from here
from coursekit.validators import (
    check_boxes,
    number_pair,
    require_floating,
    require_integer,
    shape_str,
)

__all__ = [
    "batched_nms", "box_area", "box_iou", "check_boxes", "clip_boxes_to_image", "nms",
    "nms_loop", "remove_small_boxes", "shape_str",
]

# nms settles blocks of _BLOCK boxes and computes IoU in pieces of at most _BUDGET values
# (128 KB: the pieces stay in cache and below torch's parallel grain, so a busy machine's
# thread wake-ups do not stall them)
_BLOCK = 128
_BUDGET = 1 << 15


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
        Tensor[N], float32 for float16 / bfloat16 boxes. Same as
        ``torchvision.ops.box_area``.
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
        there too), float32 for float16 / bfloat16 boxes as there; unlike torchvision,
        the intersection's sides are computed in float32 too, not in half precision.
    """
    check_boxes(boxes1, "boxes1")
    check_boxes(boxes2, "boxes2")
    return _iou(_upcast(boxes1), _upcast(boxes2))


def _iou(boxes1: Tensor, boxes2: Tensor) -> Tensor:
    """``box_iou`` without checks: Tensor[N, M]."""
    return _iou_columns(boxes1.t(), boxes2.t())


def _iou_columns(c1: Tensor, c2: Tensor) -> Tensor:
    """IoU from coordinate rows ``c1``: Tensor[4, N] and ``c2``: Tensor[4, M]; Tensor[N, M]."""
    x1, y1, x2, y2 = c1[:, :, None]  # (N, 1) each
    u1, v1, u2, v2 = c2  # (M,) each
    area1, area2 = (x2 - x1) * (y2 - y1), (u2 - u1) * (v2 - v1)  # (N, 1), (M,)
    w = (torch.min(x2, u2) - torch.max(x1, u1)).clamp_(min=0)  # (N, M) intersection width
    h = (torch.min(y2, v2) - torch.max(y1, v1)).clamp_(min=0)
    inter = w.mul_(h)
    return inter / (area1 + area2 - inter)


def _overlaps(c1: Tensor, c2: Tensor, iou_threshold: float) -> Tensor:
    """``IoU > iou_threshold`` from coordinate rows, bool Tensor[N, M] (``nms``'s test).

    The same operations as ``_iou_columns``, done in place (no autograd): each
    temporary Tensor[N, M] is written once.
    """
    x1, y1, x2, y2 = c1[:, :, None]  # (N, 1) each
    u1, v1, u2, v2 = c2  # (M,) each
    area1, area2 = (x2 - x1) * (y2 - y1), (u2 - u1) * (v2 - v1)
    inter = torch.min(x2, u2).sub_(torch.max(x1, u1)).clamp_(min=0)  # (N, M) width
    inter.mul_(torch.min(y2, v2).sub_(torch.max(y1, v1)).clamp_(min=0))  # times height
    union = torch.add(area1, area2).sub_(inter)
    return inter.div_(union) > iou_threshold


def _check_nms_args(boxes: object, scores: object, iou_threshold: object) -> None:
    check_boxes(boxes, floating=True)
    require_floating(scores, "scores", "a floating-point Tensor[N]")
    if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
        raise ValueError(f"scores must be Tensor[N] with N = {boxes.shape[0]} (one per box), "
                         f"got {shape_str(scores)}")
    if scores.device != boxes.device:
        raise ValueError(f"scores must be on boxes' device {boxes.device}, got {scores.device}")
    if not isinstance(iou_threshold, numbers.Real) or isinstance(iou_threshold, bool):
        raise TypeError(f"iou_threshold must be a float, got {iou_threshold!r}")


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression, computed in a few matrix steps (Cluster-NMS).

    Greedy NMS (``nms_loop``) keeps box ``j`` (in score order) if and only if no *kept*
    box before it overlaps it: ``keep[j] = not any_{i<j} keep[i] and IoU[i, j] > t``.
    That rule has one solution, and it can be found without a loop over boxes: start
    from "keep all" and apply the rule to every box at once until nothing changes
    (Cluster-NMS; Bolya et al., YOLACT++; Zheng et al., 2020)::

        B = triu(IoU > t, diagonal=1)            # B[i, j]: i would drop j (i before j)
        repeat: keep = not any_i (B[i, j] and keep[i])    until keep is stable

    After step ``s`` the first ``s`` boxes are settled (box ``j`` only looks at boxes
    before it), so the loop ends; on real detections it takes a handful of steps. The
    result is exactly greedy NMS. Memory and time: boxes are taken in blocks of
    ``_BLOCK`` in score order; a block settles itself against its own IoU block, then only
    its *kept* boxes are compared with the later boxes still alive, dropping those they
    overlap, in pieces of at most ``_BUDGET`` IoU values (never N x N).

    Args:
        boxes: Tensor[N, 4] floating point, (x1, y1, x2, y2).
        scores: Tensor[N] floating point.
        iou_threshold: drop boxes with IoU > iou_threshold.

    Returns:
        int64 Tensor[K]: indices into ``boxes``, by decreasing score (a stable sort: equal
        scores keep their input order). IoU is computed in float32 for float16 / bfloat16
        boxes. Same as ``torchvision.ops.nms`` and ``nms_loop`` (order and ties
        included); tested in tests/detection/test_boxes.py.
    """
    _check_nms_args(boxes, scores, iou_threshold)
    n = boxes.shape[0]
    order = torch.sort(scores, descending=True, stable=True).indices  # (N,) best first
    ranked = _upcast(boxes.detach()).t().index_select(1, order)  # (4, N) x1 y1 x2 y2, by score
    keep = torch.ones(n, dtype=torch.bool, device=boxes.device)
    position = torch.arange(_BLOCK, device=boxes.device)
    later = position[:, None] < position[None, :]  # (B, B) upper triangle: i before j
    for start in range(0, n, _BLOCK):
        stop = min(start + _BLOCK, n)
        mine = ranked[:, start:stop]  # (4, b)
        drops = _overlaps(mine, mine, iou_threshold) & later[:stop - start, :stop - start]
        keep[start:stop] = _settle(drops, keep[start:stop])  # the block's greedy result
        kept = mine.index_select(1, torch.nonzero(keep[start:stop]).flatten())  # (4, k)
        alive = torch.nonzero(keep[stop:]).flatten() + stop  # later boxes not dropped yet
        if kept.shape[1] == 0 or len(alive) == 0:
            continue
        for piece in alive.split(max(1, _BUDGET // kept.shape[1])):  # IoU pieces
            overlapped = _overlaps(ranked.index_select(1, piece), kept, iou_threshold)  # (p, k)
            keep[piece] = ~overlapped.any(dim=1)
    return order.index_select(0, torch.nonzero(keep).flatten())


def _settle(drops: Tensor, keep: Tensor) -> Tensor:
    """Greedy keep flags of a block: iterate ``keep = start & ~any_i(drops[i] & keep[i])``.

    ``drops``: bool Tensor[b, b], upper triangular; ``keep``: bool Tensor[b], the boxes
    not dropped by earlier blocks. Converges in at most b steps (usually a few).
    """
    start = keep
    for _ in range(len(keep) + 1):
        dropped = (drops & keep[:, None]).any(dim=0)  # (b,) overlapped by a kept box before
        new = start & ~dropped
        if torch.equal(new, keep):
            break
        keep = new
    return keep


def nms_loop(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy NMS as the lecture says it: keep the best box, drop its overlaps, repeat.

    One Python step per kept box: the best remaining box is kept, and every remaining
    box with ``IoU > iou_threshold`` against it is dropped (``IoU`` NaN, two empty boxes,
    drops nothing). Memory O(N). Same arguments and result as ``nms`` and
    ``torchvision.ops.nms``; slower, the version to read.
    """
    _check_nms_args(boxes, scores, iou_threshold)
    remaining = torch.sort(scores, descending=True, stable=True).indices  # best first
    kept = []
    while len(remaining) > 0:
        best, rest = remaining[0], remaining[1:]
        kept.append(best)
        iou = box_iou(boxes[best][None], boxes[rest])[0]  # (len(rest),)
        remaining = rest[~(iou > iou_threshold)]
    if not kept:
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    return torch.stack(kept)


def batched_nms(boxes: Tensor, scores: Tensor, idxs: Tensor, iou_threshold: float) -> Tensor:
    """NMS per category ``idxs``: boxes of different categories never suppress each other.

    The coordinate-offset trick: shift every box of category ``c`` by
    ``c * (max coordinate - min(min coordinate, 0) + 1)`` so boxes of different categories
    cannot overlap, then run one ``nms`` (coordinates in at least float32).

    Args:
        boxes: Tensor[N, 4], scores: Tensor[N], idxs: int64 Tensor[N] category of each box.
        iou_threshold: as in ``nms``.

    Returns:
        int64 Tensor[K]: kept indices by decreasing score. Same as
        ``torchvision.ops.batched_nms`` for boxes with coordinates >= 0; with negative
        coordinates torchvision's offset ``max + 1`` can let a box suppress one of another
        category (found by tests/properties/test_props_detection.py), ours cannot.
    """
    check_boxes(boxes, floating=True)
    require_integer(idxs, "idxs", "an integer Tensor[N]")
    if idxs.shape != (boxes.shape[0],):
        raise ValueError(f"idxs must be an integer Tensor[N] with N = {boxes.shape[0]}, "
                         f"got {shape_str(idxs)}")
    if boxes.numel() == 0:
        _check_nms_args(boxes, scores, iou_threshold)
        return torch.empty(0, dtype=torch.long, device=boxes.device)
    boxes = _upcast(boxes)
    # span > max - min: torchvision's max + 1 when no coordinate is negative; with negative
    # ones max + 1 is too small and a box could suppress one of another category
    low = boxes.min().clamp(max=0)
    offsets = idxs.to(boxes) * (boxes.max() - low + torch.tensor(1).to(boxes))  # (N,)
    return nms(boxes + offsets[:, None], scores, iou_threshold)


def clip_boxes_to_image(boxes: Tensor, size: tuple[int, int]) -> Tensor:
    """Clamp x to ``[0, width]`` and y to ``[0, height]``.

    Args:
        boxes: Tensor[N, 4]; size: ``(height, width)`` of the image.

    Returns:
        Tensor[N, 4] in ``boxes``' dtype (integer boxes with a non-integer size: floating
        point, as torch's ``clamp`` makes them). Same as ``torchvision.ops.clip_boxes_to_image``.
    """
    check_boxes(boxes)
    if not isinstance(size, (tuple, list)):
        raise TypeError(f"size must be (height, width), got {size!r}")
    height, width = number_pair(size, "size", positive=False)
    # an int size stays an int, so integer boxes keep their dtype (as in torchvision)
    height, width = (int(s) if isinstance(s, numbers.Integral) else v
                     for s, v in zip(size, (height, width), strict=True))
    x = boxes[:, 0::2].clamp(min=0, max=width)  # (N, 2)
    y = boxes[:, 1::2].clamp(min=0, max=height)
    return torch.stack((x, y), dim=2).reshape(boxes.shape)  # (N, 2, 2) -> (N, 4) x1 y1 x2 y2


def remove_small_boxes(boxes: Tensor, min_size: float) -> Tensor:
    """Indices of the boxes whose width and height are both ``>= min_size``.

    Args:
        boxes: Tensor[N, 4]; min_size: float.

    Returns:
        int64 Tensor[K]. Same as ``torchvision.ops.remove_small_boxes`` (widths in at
        least float32 for float16 / bfloat16 boxes).
    """
    boxes = _upcast(check_boxes(boxes))
    if not isinstance(min_size, numbers.Real) or isinstance(min_size, bool):
        raise TypeError(f"min_size must be a number, got {min_size!r}")
    ws, hs = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    return torch.where((ws >= min_size) & (hs >= min_size))[0]
