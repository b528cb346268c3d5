"""Keypoints <-> heatmaps: the training targets and the decoding of Mask R-CNN's keypoint head.

Lecture: *Mask R-CNN: keypoint estimation* — "add more heads": besides the box and the
mask, a head predicts, for each detected person (RoI) and each of the K = 17 keypoints, a
``56 × 56`` heatmap over the box. Training treats it as **classification over the 56²
cells**: the target of keypoint k is the one cell that holds it (a one-hot mask), trained
with a softmax cross-entropy over all cells; only labelled keypoints inside the box count.

* ``keypoints_to_heatmap`` — keypoints in image pixels -> the index of their cell in the
  RoI's ``heatmap_size × heatmap_size`` grid (the cross-entropy target), and which are valid.
* ``heatmaps_to_keypoints`` — predicted heatmaps -> keypoints in image pixels: each map is
  resized to its box (bicubic, ``coursekit.upsampling.bicubic``), its arg max cell is the
  keypoint, taken at the cell's centre (Heckbert 1990: ``continuous = discrete + 0.5``).

Both have exactly torchvision's semantics (``torchvision.models.detection.roi_heads``:
``keypoints_to_heatmap``, ``heatmaps_to_keypoints``); tested against them in
tests/pose/test_heatmaps.py. Coordinates are continuous image coordinates: pixel ``(i, j)``
covers ``[j, j + 1) × [i, i + 1)``, its centre is ``(j + 0.5, i + 0.5)``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.pose.coco_keypoints import check_keypoints
from coursekit.upsampling.bicubic import bicubic_upsample
from coursekit.validators import check_boxes, positive_int, require_dim, require_floating, shape_str

__all__ = ["heatmaps_to_keypoints", "keypoints_to_heatmap"]


def _check_rois(rois: object, n: int) -> Tensor:
    """``rois`` Tensor[n, 4] floating point with ``x2 > x1`` and ``y2 > y1``."""
    check_boxes(rois, "rois", floating=True)
    if rois.shape[0] != n:
        raise ValueError(f"rois must have one row per person of keypoints (N = {n}), "
                         f"got {shape_str(rois)}")
    bad = (rois[:, 2] <= rois[:, 0]) | (rois[:, 3] <= rois[:, 1])
    if bool(bad.any()):
        i = int(bad.nonzero()[0, 0])
        raise ValueError(f"rois must have x2 > x1 and y2 > y1 (x1, y1, x2, y2), got row {i}: "
                         f"{rois[i].tolist()}")
    return rois


def keypoints_to_heatmap(keypoints: Tensor, rois: Tensor,
                         heatmap_size: int) -> tuple[Tensor, Tensor]:
    """The heatmap cell of each keypoint in its RoI: Mask R-CNN's keypoint targets.

    With ``s = heatmap_size / (x2 - x1)``, the cell column is ``floor((x - x1) * s)`` (and the
    row likewise with y): the box is cut into ``heatmap_size`` equal columns and a keypoint
    falls in one. A keypoint exactly on the box's right (bottom) edge ``x == x2`` goes to the
    last column (row), not one past it. The target is the flattened index
    ``row * heatmap_size + col``; it is **valid** when the keypoint is labelled (``v > 0``) and
    its cell is inside the grid (the keypoint lies in the box), and is 0 where not valid.

    Args:
        keypoints: Tensor[N, K, 3] (x, y, v) in image pixels, one row per RoI (the keypoints
            of the ground-truth person matched to it).
        rois: Tensor[N, 4] (x1, y1, x2, y2) in image pixels, floating point, non-empty boxes.
        heatmap_size: side of the square heatmap (torchvision: 56).

    Returns:
        (targets, valid): int64 Tensor[N, K] each; ``targets`` in ``[0, heatmap_size²)``,
        ``valid`` 0 / 1 (int64 as torchvision returns it; ``valid.bool()`` to select).
        Same as torchvision's ``keypoints_to_heatmap`` on the same inputs (for float16 /
        bfloat16 inputs, on the inputs cast to float32: we compute in at least float32).
    """
    check_keypoints(keypoints, "keypoints")
    heatmap_size = positive_int(heatmap_size, "heatmap_size")
    _check_rois(rois, keypoints.shape[0])
    keypoints = keypoints.to(torch.promote_types(keypoints.dtype, torch.float32))
    rois = rois.to(torch.promote_types(rois.dtype, torch.float32))

    offset_x, offset_y = rois[:, 0, None], rois[:, 1, None]  # (N, 1)
    scale_x = heatmap_size / (rois[:, 2, None] - rois[:, 0, None])  # (N, 1) cells per pixel
    scale_y = heatmap_size / (rois[:, 3, None] - rois[:, 1, None])
    x, y = keypoints[..., 0], keypoints[..., 1]  # (N, K)

    col = ((x - offset_x) * scale_x).floor().long()  # (N, K)
    row = ((y - offset_y) * scale_y).floor().long()
    col = torch.where(x == rois[:, 2, None], heatmap_size - 1, col)  # right edge: last column
    row = torch.where(y == rois[:, 3, None], heatmap_size - 1, row)  # bottom edge: last row

    inside = (col >= 0) & (row >= 0) & (col < heatmap_size) & (row < heatmap_size)
    valid = (inside & (keypoints[..., 2] > 0)).long()  # (N, K)
    targets = (row * heatmap_size + col) * valid  # (N, K) flattened cell index, 0 if not valid
    return targets, valid


def heatmaps_to_keypoints(maps: Tensor, rois: Tensor) -> tuple[Tensor, Tensor]:
    """Keypoints in image pixels from per-RoI heatmaps: Mask R-CNN's keypoint decoding.

    For RoI r with width ``w = max(x2 - x1, 1)`` and height ``h = max(y2 - y1, 1)``, each of
    its K maps is resized by bicubic interpolation to ``ceil(h) × ceil(w)`` (one cell per
    pixel, roughly); the arg max cell ``(i, j)`` (the first one in row-major order on a tie)
    gives the keypoint at its centre, scaled back to the box::

        x = x1 + (j + 0.5) * w / ceil(w),    y = y1 + (i + 0.5) * h / ceil(h),    v = 1

    and its score is the resized map's value there. Not differentiable (an arg max).
    A box smaller than the heatmap shrinks the map (bicubic without smoothing samples it), so
    a peak one cell wide can fall between the samples: the head must predict smooth maps.
    The RoIs are processed one at a time (each has its own size), so memory stays at one
    RoI's ``K × ceil(h) × ceil(w)`` resized maps.

    Args:
        maps: Tensor[R, K, H, W] floating point: the head's heatmaps (logits), per RoI.
        rois: Tensor[R, 4] (x1, y1, x2, y2), floating point: the boxes they were predicted in.

    Returns:
        (keypoints, scores): Tensor[R, K, 3] (x, y, 1) in ``rois``' dtype promoted to at
        least float32 (torchvision: float32), and Tensor[R, K] in ``maps``' dtype. The
        resize and the arg max run in at least float32 (a float16 map is not rounded to
        float16 before the arg max, which would create ties). Same as torchvision's
        ``heatmaps_to_keypoints`` (up to float32 rounding of its float32 outputs).
    """
    require_floating(maps, "maps", "a floating-point Tensor[R, K, H, W]")
    require_dim(maps, "maps", 4, "Tensor[R, K, H, W] (one heatmap per RoI and keypoint)")
    if maps.shape[1] == 0 or maps.shape[2] == 0 or maps.shape[3] == 0:
        raise ValueError(f"maps must have K, H, W >= 1, got {shape_str(maps)}")
    check_boxes(rois, "rois", floating=True)
    if rois.shape[0] != maps.shape[0]:
        raise ValueError(f"rois must have one row per heatmap set of maps ({maps.shape[0]}), "
                         f"got {shape_str(rois)}")
    R, K = maps.shape[:2]
    acc_xy = torch.promote_types(rois.dtype, torch.float32)
    acc_map = torch.promote_types(maps.dtype, torch.float32)
    rois = rois.to(acc_xy)
    widths = (rois[:, 2] - rois[:, 0]).clamp(min=1)  # (R,)
    heights = (rois[:, 3] - rois[:, 1]).clamp(min=1)
    widths_ceil, heights_ceil = widths.ceil(), heights.ceil()

    keypoints = rois.new_zeros(R, K, 3)
    scores = maps.new_zeros(R, K)
    sizes = torch.stack([heights_ceil, widths_ceil], dim=1).long().tolist()  # one sync
    ks = torch.arange(K, device=maps.device)
    for r, (h, w) in enumerate(sizes):
        roi_map = bicubic_upsample(maps[r, :, None].to(acc_map), size=(h, w))[:, 0]  # (K, h, w)
        pos = roi_map.reshape(K, -1).argmax(dim=1)  # (K,) first maximum, row-major
        x_int, y_int = pos % w, pos // w  # column, row of the winning cell
        keypoints[r, :, 0] = (x_int.to(acc_xy) + 0.5) * (widths[r] / w) + rois[r, 0]
        keypoints[r, :, 1] = (y_int.to(acc_xy) + 0.5) * (heights[r] / h) + rois[r, 1]
        keypoints[r, :, 2] = 1
        scores[r] = roi_map[ks, y_int, x_int].to(maps.dtype)
    return keypoints, scores
