"""Graders for the detection exercises: box IoU, non-maximum suppression, RoI Align.

Each ``check_*(fn)`` calls the student's function on a few fixed cases, compares
with ``coursekit.detection`` (itself tested against torchvision), prints one
verdict line (✅ / ❌ with a hint) and returns whether it passed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from coursekit.detection import box_iou, nms, roi_align
from coursekit.exercises.verdict import report, run_student
from coursekit.validators import shape_str


def _close(result: object, expected: Tensor) -> bool:
    return (isinstance(result, Tensor) and result.shape == expected.shape
            and torch.allclose(result.double(), expected.double(), atol=1e-6, rtol=1e-5,
                               equal_nan=True))


def _fmt(t: Tensor) -> str:
    return "[" + ", ".join(f"{v:.4f}" for v in t.flatten()[:3].tolist()) + "]"


def _boxes(n: int, generator: torch.Generator) -> Tensor:
    xy = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 20
    size = torch.rand(n, 2, generator=generator, dtype=torch.float64) * 10 + 1
    return torch.cat([xy, xy + size], 1)


def check_box_iou(fn: Callable) -> bool:
    """Grade ``fn(boxes1: Tensor[N, 4], boxes2: Tensor[M, 4]) -> Tensor[N, M]``."""
    g = torch.Generator().manual_seed(0)
    cases = [
        (torch.tensor([[0.0, 0, 1, 1]], dtype=torch.float64),  # half overlap, same box, far apart
         torch.tensor([[0.5, 0, 1.5, 1], [0, 0, 1, 1], [5, 5, 6, 6]], dtype=torch.float64)),
        (_boxes(5, g), _boxes(4, g)),
    ]
    for boxes1, boxes2 in cases:
        expected = box_iou(boxes1, boxes2)
        result, error = run_student(fn, boxes1.clone(), boxes2.clone())
        if error:
            return report(False, "box_iou", error)
        if not isinstance(result, Tensor) or result.shape != expected.shape:
            return report(False, f"box_iou should return {shape_str(expected)} (N, M), "
                                 f"got {shape_str(result)}",
                          "compare every pair: broadcast boxes1[:, None, :] against "
                          "boxes2[None, :, :]")
        if _close(result, expected):
            continue
        area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
        area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
        inter = expected * (area1[:, None] + area2) / (1 + expected)  # from IoU = i / (a1 + a2 - i)
        if _close(result, inter / (area1[:, None] + area2)):
            hint = "the union counts the overlap once: area1 + area2 - intersection"
        elif (result < 0).any() or not _close(result[expected == 0], expected[expected == 0]):
            hint = "boxes that do not overlap have intersection 0: clamp its width and height at 0"
        else:
            hint = ("IoU = intersection / union, intersection = "
                    "(min x2 - max x1) * (min y2 - max y1)")
        return report(False, f"box_iou gives wrong values, e.g. {_fmt(result)} instead of "
                             f"{_fmt(expected)}", hint)
    return report(True, "box_iou matches the reference on every case")


def check_nms(fn: Callable) -> bool:
    """Grade ``fn(boxes: Tensor[N, 4], scores: Tensor[N], iou_threshold: float) -> Tensor[K]``.

    The result holds the kept indices.
    """
    g = torch.Generator().manual_seed(1)
    cases = [
        (torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]],
                      dtype=torch.float64),
         torch.tensor([0.9, 0.8, 0.7, 0.95], dtype=torch.float64), 0.5),
        # IoU exactly 0.5: both kept, since only IoU > threshold is dropped
        (torch.tensor([[0.0, 0, 3, 1], [1, 0, 4, 1]], dtype=torch.float64),
         torch.tensor([0.6, 0.9], dtype=torch.float64), 0.5),
        (_boxes(30, g), torch.rand(30, generator=g, dtype=torch.float64), 0.3),
    ]
    for boxes, scores, threshold in cases:
        expected = nms(boxes, scores, threshold)
        result, error = run_student(fn, boxes.clone(), scores.clone(), threshold)
        if error:
            return report(False, "nms", error)
        try:
            got = [int(i) for i in result]
        except (TypeError, ValueError):
            return report(False, "nms should return a Tensor of box indices, "
                                 f"got {type(result).__name__}",
                          "collect the kept indices and return torch.tensor(kept)")
        want = expected.tolist()
        if got == want:
            continue
        order = torch.sort(scores, descending=True, stable=True).indices.tolist()
        if sorted(got) == sorted(want):
            hint = "return the kept boxes in decreasing score order"
        elif len(boxes) == 2 and len(got) == 1:
            hint = "drop a box only when its IoU is strictly greater than iou_threshold"
        elif [order[i] for i in got if 0 <= i < len(order)] == want:
            hint = "return indices into the original boxes, not positions in the sorted order"
        else:
            hint = ("sort by score, keep the best box, drop every box with IoU > iou_threshold "
                    "with it, repeat")
        return report(False, f"nms kept {got[:8]} but the reference keeps {want[:8]}", hint)
    return report(True, "nms matches the reference on every case")


def check_roi_align(fn: Callable) -> bool:
    """Grade ``fn(input, boxes, output_size, spatial_scale, sampling_ratio, aligned)``.

    ``boxes``: Tensor[K, 5] (batch index, x1, y1, x2, y2).
    """
    g = torch.Generator().manual_seed(2)
    # f(y, x) = x + 1
    ramp = (torch.arange(4, dtype=torch.float64) + 1).expand(1, 1, 4, 4).contiguous()
    features = torch.randn(2, 3, 10, 12, generator=g, dtype=torch.float64)
    xy = torch.rand(6, 2, generator=g, dtype=torch.float64) * 20 - 2
    rois = torch.cat([torch.tensor([0, 1, 0, 1, 1, 0.0], dtype=torch.float64)[:, None], xy,
                      xy + torch.rand(6, 2, generator=g, dtype=torch.float64) * 8], 1)
    cases = [  # (input, boxes, output_size, spatial_scale, sampling_ratio, aligned)
        (ramp, torch.tensor([[0.0, 1, 0, 3, 4]], dtype=torch.float64), 1, 1.0, 2, True),
        (features, rois, 3, 0.5, 2, True),
        (features, rois, (2, 4), 0.5, -1, False),
    ]
    for inp, boxes, size, scale, ratio, aligned in cases:
        expected = roi_align(inp, boxes, size, scale, ratio, aligned)
        result, error = run_student(fn, inp.clone(), boxes.clone(), size, scale, ratio, aligned)
        if error:
            return report(False, "roi_align", error)
        what = (f"roi_align(output_size={size}, spatial_scale={scale}, "
                f"sampling_ratio={ratio}, aligned={aligned})")
        if not isinstance(result, Tensor) or result.shape != expected.shape:
            return report(False, f"{what} should return {shape_str(expected)}, "
                                 f"got {shape_str(result)}",
                          "one output per box: Tensor[K, C, ph, pw]")
        if _close(result, expected):
            continue
        if _close(result, roi_align(inp, boxes, size, scale, ratio, not aligned)):
            hint = ("aligned=True shifts the scaled box by -0.5 pixel; aligned=False clamps its "
                    "size to >= 1")
        elif ratio <= 0:
            hint = ("with sampling_ratio <= 0 use ceil(roi_height / ph) x ceil(roi_width / pw) "
                    "samples per bin")
        else:
            hint = ("multiply the box by spatial_scale, sample each bin at "
                    "bin_start + (i + 0.5) * bin / grid, "
                    "interpolate bilinearly, average (samples outside [-1, H] count as 0)")
        return report(False, f"{what} gives wrong values", hint)
    return report(True, "roi_align matches the reference on every case")
