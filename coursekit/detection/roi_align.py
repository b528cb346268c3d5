"""RoI Align: crop a fixed-size feature from a box, without rounding the box to the grid.

Lecture: *Mask R-CNN — RoI Align* — divide the (unrounded) box into
``ph × pw`` bins, sample the feature map at a regular grid of points inside each
bin with **bilinear interpolation**, and average::

    out[k, c, i, j] = 1/(gh·gw) Σ_{a<gh} Σ_{b<gw} f_c( y1 + (i + (a + ½)/gh)·bin_h ,
                                                     x1 + (j + (b + ½)/gw)·bin_w )

where ``bin_h = roi_h / ph`` and ``f_c(y, x)`` is the bilinear formula of lesson 02,
``f(y, x) = Σ_{p,q} f(p, q)·max(0, 1-|y-p|)·max(0, 1-|x-q|)``. RoI Pool (``roi_pool.py``)
rounds the box and the bins to integers instead — the misalignment RoI Align removes.

The bilinear sampling is ``coursekit.upsampling.bilinear.bilinear_sample``, the very
function behind ``bilinear_upsample``; this file adds only the sample points, the
"outside ``[-1, H]`` counts as 0" rule and the average. Same as
``torchvision.ops.roi_align``; tested in tests/detection/test_roi_align.py.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from coursekit.detection.boxes import shape_str
from coursekit.upsampling.bilinear import bilinear_sample

# at most this many sampled values (samples × channels) are held at once
_BUDGET = 1 << 19


def roi_align(input: Tensor, boxes: Tensor | list[Tensor], output_size: int | tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """RoI Align is bilinear sampling (the same formula as bilinear upsampling in lesson 02) at a regular grid of points inside each bin, averaged.

    For RoI ``k`` with box ``(x1, y1, x2, y2)`` on image ``b``:

    * coordinates are multiplied by ``spatial_scale`` (and shifted by ``-0.5`` when
      ``aligned``, so that pixel ``i``'s centre is at ``i + 0.5`` in box coordinates);
      when not ``aligned`` the RoI width and height are clamped to at least 1;
    * each of the ``ph × pw`` bins is ``bin_h = roi_h / ph`` by ``bin_w = roi_w / pw``;
    * a bin is sampled at ``gh × gw`` points ``y1 + i·bin_h + (a + 0.5)·bin_h / gh``
      (likewise x) with ``gh = sampling_ratio`` if ``> 0``, else ``ceil(roi_h / ph)``
      (adaptive, per RoI; 0 samples give 0);
    * a sample with ``y < -1``, ``y > H``, ``x < -1`` or ``x > W`` contributes 0; the
      others are read by bilinear interpolation with clamp-to-edge (``bilinear_sample``);
    * the bin's value is the sum of its samples divided by ``max(gh·gw, 1)``.

    No Python loop over RoIs, bins or samples: the number of samples varies per RoI
    (adaptive grid), so RoIs that share the same grid ``(gh, gw)`` are computed together
    as one batch (a single group when ``sampling_ratio > 0``), in chunks of at most
    ``_BUDGET`` sampled values to bound memory.

    Args:
        input: Tensor[N, C, H, W], floating point.
        boxes: Tensor[K, 5] rows ``(batch_index, x1, y1, x2, y2)``, or a list of N
            Tensor[L_n, 4] (the boxes of image n). Cast to ``input``'s dtype.
        output_size: ``ph`` or ``(ph, pw)``.
        spatial_scale: feature-map pixels per box unit (e.g. 1/16 for a stride-16 map).
        sampling_ratio: samples per bin and axis; ``<= 0`` means adaptive.
        aligned: shift boxes by -0.5 pixel (Detectron2's RoIAlign); False is legacy.

    Returns:
        Tensor[K, C, ph, pw], differentiable w.r.t. ``input`` (not ``boxes``, as in
        torchvision). Forward and backward equal ``torchvision.ops.roi_align``; tested in
        tests/detection/test_roi_align.py.
    """
    rois, (ph, pw) = check_roi_args(input, boxes, output_size, spatial_scale)
    if not isinstance(sampling_ratio, int) or isinstance(sampling_ratio, bool):
        raise TypeError(f"sampling_ratio must be an int (<= 0 means adaptive), got {sampling_ratio!r}")
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned must be a bool, got {aligned!r}")
    N, C, H, W = input.shape
    K = rois.shape[0]
    if K == 0:
        return input.new_zeros(0, C, ph, pw)
    features = input.contiguous(memory_format=torch.channels_last)  # channels of a pixel side by side

    # box in feature-map coordinates, (K,) each
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale - offset for i in range(1, 5))
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    if sampling_ratio > 0:
        grids = torch.full((K, 2), sampling_ratio, dtype=torch.long, device=input.device)
    else:
        grids = torch.stack([torch.ceil(roi_h / ph), torch.ceil(roi_w / pw)], 1).clamp(min=0).long()  # (K, 2)

    pieces, order = [], []
    keys, inverse = torch.unique(grids, dim=0, return_inverse=True)  # distinct (gh, gw)
    for g, (gh, gw) in enumerate(keys.tolist()):
        members = torch.nonzero(inverse == g).flatten()
        if gh == 0 or gw == 0:  # an empty RoI (aligned, zero size): no samples, output 0
            pieces.append(input.new_zeros(len(members), ph, pw, C))
            order.append(members)
            continue
        per_roi = ph * gh * pw * gw * C
        for chunk in members.split(max(1, _BUDGET // per_roi)):
            pieces.append(_align_bins(features, rois[chunk, 0].long(), y1[chunk], x1[chunk],
                                      roi_h[chunk] / ph, roi_w[chunk] / pw, (ph, pw), (gh, gw)))
            order.append(chunk)
    out = torch.cat(pieces)[torch.argsort(torch.cat(order))]  # (K, ph, pw, C), back in the RoIs' order
    return out.permute(0, 3, 1, 2).contiguous()  # (K, C, ph, pw)


def _align_bins(features: Tensor, batch: Tensor, y1: Tensor, x1: Tensor, bin_h: Tensor, bin_w: Tensor,
                pooled: tuple[int, int], grid: tuple[int, int]) -> Tensor:
    """RoI Align for n RoIs that share one sampling grid ``(gh, gw)``; returns Tensor[n, ph, pw, C]."""
    (ph, pw), (gh, gw) = pooled, grid
    H, W = features.shape[-2:]
    y, valid_y = _sample_points(y1, bin_h, ph, gh, H)  # (n, ph, gh)
    x, valid_x = _sample_points(x1, bin_w, pw, gw, W)  # (n, pw, gw)
    values = bilinear_sample(features, y[:, :, None, :, None], x[:, None, :, None, :],
                             batch[:, None, None, None, None])  # (n, ph, pw, gh, gw, C)
    values = values.flatten(3, 4)  # (n, ph, pw, gh * gw, C)
    if bool(valid_y.all() and valid_x.all()):  # the usual case: every sample counts
        out = values.mean(dim=3)  # (n, ph, pw, C)
    else:  # samples outside [-1, H] x [-1, W] count as 0, but the bin still divides by gh * gw
        valid = valid_y[:, :, None, :, None] & valid_x[:, None, :, None, :]  # (n, ph, pw, gh, gw)
        weight = valid.to(features.dtype).flatten(3)[:, :, :, None, :] / (gh * gw)  # (n, ph, pw, 1, gh * gw)
        out = (weight @ values)[:, :, :, 0]  # (n, ph, pw, C): weighted average of each bin's samples
    return out


def _sample_points(start: Tensor, bin_size: Tensor, pooled: int, grid: int, size: int) -> tuple[Tensor, Tensor]:
    """Sample coordinates along one axis, Tensor[n, pooled, grid], and whether each lies in [-1, size]."""
    p = torch.arange(pooled, dtype=start.dtype, device=start.device)[None, :, None]  # (1, pooled, 1)
    a = torch.arange(grid, dtype=start.dtype, device=start.device)[None, None, :] + 0.5  # (1, 1, grid)
    start, bin_size = start[:, None, None], bin_size[:, None, None]  # (n, 1, 1)
    points = (start + p * bin_size) + (a * bin_size) / grid  # bin start + (a + 0.5) * bin / grid
    valid = (points >= -1) & (points <= size)
    return torch.where(valid, points, 0.0), valid  # invalid points (even NaN) read pixel 0, weight 0


def check_roi_args(input: Tensor, boxes: Tensor | list[Tensor], output_size: int | tuple[int, int],
                   spatial_scale: float) -> tuple[Tensor, tuple[int, int]]:
    """Validate the arguments shared by roi_align and roi_pool; return (rois Tensor[K, 5], (ph, pw)).

    ``rois`` is detached, in ``input``'s dtype and on its device, with batch indices
    checked to be integers in ``[0, N)``.
    """
    if not isinstance(input, Tensor):
        raise TypeError(f"input must be a Tensor[N, C, H, W], got {type(input).__name__}")
    if input.dim() != 4:
        raise ValueError(f"input must be Tensor[N, C, H, W] (4-D), got {shape_str(input)}")
    if not input.is_floating_point():
        raise TypeError(f"input must be a floating-point tensor, got dtype {input.dtype}")
    expected = "boxes must be Tensor[K, 5] or list of Tensor[L, 4], got "
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(expected + shape_str(boxes))
        rois = boxes
    elif isinstance(boxes, (list, tuple)):
        for i, b in enumerate(boxes):
            if not isinstance(b, Tensor) or b.dim() != 2 or b.shape[1] != 4:
                got = shape_str(b) if isinstance(b, Tensor) else type(b).__name__
                raise ValueError(expected + f"{got} at index {i} of the list")
        if len(boxes) > input.shape[0]:
            raise ValueError(f"boxes is a list of {len(boxes)} tensors but input has only "
                             f"N = {input.shape[0]} images")
        if len(boxes) == 0:
            rois = input.new_zeros(0, 5)
        else:
            rois = torch.cat([torch.cat([b.new_full((len(b), 1), i), b], 1).to(input.dtype)
                              for i, b in enumerate(boxes)])
    else:
        raise TypeError(expected + type(boxes).__name__)
    if rois.device != input.device:
        raise ValueError(f"boxes must be on input's device {input.device}, got {rois.device}")
    rois = rois.detach().to(input.dtype)
    if len(rois):
        index = rois[:, 0]
        bad = (index < 0) | (index >= input.shape[0]) | (index != index.floor())
        if bad.any():
            raise ValueError(f"boxes[:, 0] (batch index) must be integers in [0, N) = [0, {input.shape[0]}), "
                             f"got {index[bad][0].item()}")
    pair = tuple(output_size) if isinstance(output_size, (tuple, list)) else (output_size, output_size)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"output_size must be an int or a pair of ints, got {output_size!r}")
    if any(v <= 0 for v in pair):
        raise ValueError(f"output_size must be positive, got {output_size!r}")
    if not isinstance(spatial_scale, (int, float)) or isinstance(spatial_scale, bool) \
            or not math.isfinite(spatial_scale) or spatial_scale <= 0:
        raise ValueError(f"spatial_scale must be a positive number, got {spatial_scale!r}")
    return rois, pair  # type: ignore[return-value]
