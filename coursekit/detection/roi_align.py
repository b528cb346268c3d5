"""RoI Align: crop a fixed-size feature from a box, without rounding the box to the grid.

Lecture: *Mask R-CNN — RoI Align* — divide the (unrounded) box into
``ph × pw`` bins, sample the feature map at a regular grid of points inside each
bin with **bilinear interpolation**, and average::

    out[k, c, i, j] = 1/(gh·gw) Σ_{a<gh} Σ_{b<gw} f_c( y1 + (i + (a + ½)/gh)·bin_h ,
                                                     x1 + (j + (b + ½)/gw)·bin_w )

where ``bin_h = roi_h / ph`` and ``f_c(y, x)`` is the bilinear formula of lesson 02,
``f(y, x) = Σ_{p,q} f(p, q)·max(0, 1-|y-p|)·max(0, 1-|x-q|)``. RoI Pool (``roi_pool.py``)
rounds the box and the bins to integers instead — the misalignment RoI Align removes.

Two versions, equal to each other and to ``torchvision.ops.roi_align``
(tested in tests/detection/test_roi_align.py):

* ``roi_align_loop`` reads the formula literally: for each RoI and each sample offset
  ``(a, b)``, ``coursekit.upsampling.bilinear.bilinear_sample`` (the very function behind
  ``bilinear_upsample``) reads that sample in every bin, and the bins add it up.
* ``roi_align`` expands the bilinear formula: every sample is 4 pixels with weights
  ``(1-ly)(1-lx), (1-ly)lx, ly(1-lx), ly·lx``, so a bin is a weighted sum of pixel
  vectors, a *bag* of ``4·gh·gw`` (pixel, weight) pairs. ``F.embedding_bag`` adds each
  bag's weighted rows of the ``(N·H·W, C)`` feature table without ever holding
  samples × channels values: memory is bounded by the output, time by the samples.
"""

from __future__ import annotations

import math
import numbers

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.upsampling.bilinear import bilinear_sample
from coursekit.validators import (
    boxes_to_rois,
    describe,
    int_pair,
    require_dim,
    require_floating,
)

# at most this many (pixel, weight) pairs are built in one step of roi_align
_BUDGET = 1 << 20
# RoIs with different adaptive grids are padded together while this costs < 1.5x the pairs
_PADDING = 1.5


def roi_align(input: Tensor, boxes: Tensor | list[Tensor], output_size: int | tuple[int, int],
              spatial_scale: float = 1.0, sampling_ratio: int = -1,
              aligned: bool = False) -> Tensor:
    """RoI Align: bilinear samples (lesson 02's formula) on a grid inside each bin, averaged.

    For RoI ``k`` with box ``(x1, y1, x2, y2)`` on image ``b``:

    * coordinates are multiplied by ``spatial_scale`` (and shifted by ``-0.5`` when
      ``aligned``, so that pixel ``i``'s centre is at ``i + 0.5`` in box coordinates);
      when not ``aligned`` the RoI width and height are clamped to at least 1;
    * each of the ``ph × pw`` bins is ``bin_h = roi_h / ph`` by ``bin_w = roi_w / pw``;
    * a bin is sampled at ``gh × gw`` points ``y1 + i·bin_h + (a + 0.5)·bin_h / gh``
      (likewise x) with ``gh = sampling_ratio`` if ``> 0``, else ``ceil(roi_h / ph)``
      (adaptive, per RoI; 0 samples give 0);
    * a sample with ``y < -1``, ``y > H``, ``x < -1`` or ``x > W`` contributes 0; the
      others are read by bilinear interpolation with clamp-to-edge (``bilinear_sample``'s
      rule: ``y`` clamped to ``[0, H - 1]``, rows ``floor(y)`` and ``min(floor(y) + 1, H - 1)``);
    * the bin's value is the sum of its samples divided by ``max(gh·gw, 1)``.

    Each bin is a bag of (pixel, bilinear weight) pairs summed by ``F.embedding_bag``.
    RoIs go in chunks of similar grids (sorted by ``(gh, gw)`` when adaptive), padded to
    the chunk's largest grid with weight-0 samples (``_PADDING``), at most ``_BUDGET``
    pairs a chunk. A RoI above the budget alone has its sample offsets ``(a, b)`` taken in
    slabs whose sums are added, so a 5000-pixel box with adaptive sampling (~10^6 samples
    per bin) costs time, not memory: a step holds ``_BUDGET`` pairs and one output chunk.

    Reduced precision: box coordinates, sample points, weights and the sums are float32
    for a float16 / bfloat16 ``input``; the result is rounded to ``input``'s dtype.

    Args:
        input: Tensor[N, C, H, W], floating point.
        boxes: Tensor[K, 5] rows ``(batch_index, x1, y1, x2, y2)``, or a list of N
            Tensor[L_n, 4] (the boxes of image n), floating point. Cast to ``input``'s
            dtype (to float32 for a float16 / bfloat16 ``input``).
        output_size: ``ph`` or ``(ph, pw)``.
        spatial_scale: feature-map pixels per box unit (e.g. 1/16 for a stride-16 map).
        sampling_ratio: samples per bin and axis; ``<= 0`` means adaptive.
        aligned: shift boxes by -0.5 pixel (Detectron2's RoIAlign); False is legacy.

    Returns:
        Tensor[K, C, ph, pw] in ``input``'s dtype, differentiable w.r.t. ``input`` (not
        ``boxes``, as in torchvision). Forward and backward equal
        ``torchvision.ops.roi_align`` and ``roi_align_loop``; tested in
        tests/detection/test_roi_align.py.
    """
    rois, (ph, pw) = check_roi_args(input, boxes, output_size, spatial_scale)
    N, C, H, W = input.shape
    K = rois.shape[0]
    y1, x1, bin_h, bin_w, grids = _geometry(rois, (ph, pw), spatial_scale, sampling_ratio,
                                            aligned)
    if K == 0 or C == 0:
        return input.new_zeros(K, C, ph, pw)
    table = input.permute(0, 2, 3, 1).reshape(-1, C).to(rois.dtype)  # (N*H*W, C) pixel rows
    row_start = rois[:, 0].long() * (H * W)  # (K,) first row of each RoI's image
    if sampling_ratio > 0:  # one grid for all
        order = torch.arange(K, device=input.device)
    else:
        key = grids[:, 0] * (int(grids[:, 1].max()) + 1) + grids[:, 1]  # sort by (gh, gw)
        order = torch.argsort(key, stable=True)  # similar grids side by side
    pieces = []
    for chunk in _chunks(grids[order].tolist(), ph * pw * 4):
        rois_k = order[chunk[0]:chunk[1]]  # (n,) RoIs of this chunk
        g = grids[rois_k]  # (n, 2) samples per axis of each RoI
        gh, gw = max(int(g[:, 0].max()), 1), max(int(g[:, 1].max()), 1)  # padded grid
        ys, valid_y = _sample_points(y1[rois_k], bin_h[rois_k], ph, g[:, 0], gh, H)
        xs, valid_x = _sample_points(x1[rois_k], bin_w[rois_k], pw, g[:, 1], gw, W)
        rows, wy = _neighbours(ys, valid_y, H)  # (n, ph, gh, 2): pixel rows, weights
        cols, wx = _neighbours(xs, valid_x, W)  # (n, pw, gw, 2)
        rows = rows * W + row_start[rois_k, None, None, None]  # rows of the pixel table
        count_h, count_w = g.clamp(min=1).to(wy.dtype)[:, None, None, None].unbind(-1)
        pieces.append(_sum_bags(table, rows, wy / count_h, cols, wx / count_w))  # averages
    out = torch.cat(pieces) if len(pieces) > 1 else pieces[0]  # (K, ph, pw, C), sorted
    if sampling_ratio <= 0:
        out = out.index_select(0, torch.argsort(order))  # back to the RoIs' order
    return out.permute(0, 3, 1, 2).to(input.dtype, memory_format=torch.contiguous_format)


def _chunks(grids: list[list[int]], pairs_per_sample: int) -> list[tuple[int, int]]:
    """Split RoIs (sorted by grid) into ranges computed together, padded to their largest grid.

    A range of RoIs padded to its largest ``(gh, gw)`` holds ``n · pairs_per_sample · gh · gw``
    (pixel, weight) pairs: at most ``_BUDGET``, and at most ``_PADDING`` times the pairs of
    the RoIs' own grids. A RoI that alone is larger gets a range of its own
    (``_sum_bags`` then slabs its sample offsets).
    """
    ranges, start, top_h, top_w, real = [], 0, 1, 1, 0
    for k, (gh, gw) in enumerate(grids):
        h, w = max(top_h, gh, 1), max(top_w, gw, 1)
        padded = (k + 1 - start) * h * w
        if k > start and (padded * pairs_per_sample > _BUDGET
                          or padded > _PADDING * (real + max(gh * gw, 1))):
            ranges.append((start, k))
            start, h, w, real = k, max(gh, 1), max(gw, 1), 0
        top_h, top_w, real = h, w, real + max(gh * gw, 1)
    ranges.append((start, len(grids)))
    return ranges


def _sum_bags(table: Tensor, rows: Tensor, wy: Tensor, cols: Tensor, wx: Tensor) -> Tensor:
    """Weighted sum of the pixels of each bin's samples; Tensor[n, ph, pw, C].

    ``rows, wy``: Tensor[n, ph, gh, 2], the two pixel rows (table row index of column 0)
    and weights of each sample row ``a``; ``cols, wx``: Tensor[n, pw, gw, 2]. Bin ``(i, j)``
    is the bag of pixels ``rows[i, a, u] + cols[j, b, v]`` with weights
    ``wy[i, a, u]·wx[j, b, v]``. One ``embedding_bag`` per slab of ``A × B`` offsets
    ``(a, b)`` (``n·ph·pw·4·A·B <= _BUDGET`` pairs); the slabs' sums are added.
    """
    n, ph, gh, _ = rows.shape
    pw, gw, C = cols.shape[1], cols.shape[2], table.shape[1]
    B = min(gw, max(1, _BUDGET // (n * ph * pw * 4)))  # column offsets per slab
    A = min(gh, max(1, _BUDGET // (n * ph * pw * 4 * B)))  # row offsets per slab
    total = None
    for a in range(0, gh, A):
        r = rows[:, :, a:a + A].reshape(n, ph, 1, -1, 1)  # (n, ph, 1, 2A, 1)
        u = wy[:, :, a:a + A].reshape(n, ph, 1, -1, 1)
        for b in range(0, gw, B):
            c = cols[:, :, b:b + B].reshape(n, 1, pw, 1, -1)  # (n, 1, pw, 1, 2B)
            v = wx[:, :, b:b + B].reshape(n, 1, pw, 1, -1)
            bags, weights = (r + c).view(n * ph * pw, -1), (u * v).view(n * ph * pw, -1)
            part = F.embedding_bag(bags, table, per_sample_weights=weights, mode="sum")
            total = part if total is None else total + part  # (n * ph * pw, C)
    return total.view(n, ph, pw, C)


def _neighbours(points: Tensor, valid: Tensor, size: int) -> tuple[Tensor, Tensor]:
    """The two pixels each coordinate reads and their weights: Tensor[..., 2] each.

    ``bilinear_sample``'s edge rule: clamp to ``[0, size - 1]``; pixels ``floor(p)`` with
    weight ``1 - (p - floor(p))`` and ``min(floor(p) + 1, size - 1)`` with ``p - floor(p)``;
    an invalid coordinate (outside ``[-1, size]``) has both weights 0.
    """
    p = points.clamp(0, size - 1)
    low = p.floor()
    frac = p - low  # weight of the next pixel
    low = low.long()
    high = (low + 1).clamp(max=size - 1)
    weights = torch.stack([1 - frac, frac], dim=-1) * valid[..., None]
    return torch.stack([low, high], dim=-1), weights


def roi_align_loop(input: Tensor, boxes: Tensor | list[Tensor],
                   output_size: int | tuple[int, int], spatial_scale: float = 1.0,
                   sampling_ratio: int = -1, aligned: bool = False) -> Tensor:
    """RoI Align read literally: for each RoI and sample offset, ``bilinear_sample`` every bin.

    Same arguments, result and rules as ``roi_align``. For RoI ``k`` and offset
    ``(a, b)`` the ``ph × pw`` sample points (one per bin) are read with lesson 02's
    ``bilinear_sample``, samples outside ``[-1, H] × [-1, W]`` are zeroed, and the bins
    add them up; the sums are divided by ``gh·gw``. Samples are added one offset at a
    time in the order of torchvision's kernel, so results match it bit for bit in
    float64. Slow (one ``bilinear_sample`` call per RoI and offset) but bounded in
    memory by one RoI's output: the version to read, and a check on ``roi_align``.
    """
    rois, (ph, pw) = check_roi_args(input, boxes, output_size, spatial_scale)
    N, C, H, W = input.shape
    y1, x1, bin_h, bin_w, grids = _geometry(rois, (ph, pw), spatial_scale, sampling_ratio,
                                            aligned)
    features = input.to(rois.dtype)  # float32 for float16 / bfloat16
    out = []
    for k, (gh, gw) in enumerate(grids.tolist()):
        image = rois[k, 0].long()
        ys, valid_y = _sample_points(y1[k:k + 1], bin_h[k:k + 1], ph, grids[k:k + 1, 0], gh,
                                     H)  # (1, ph, gh)
        xs, valid_x = _sample_points(x1[k:k + 1], bin_w[k:k + 1], pw, grids[k:k + 1, 1], gw,
                                     W)  # (1, pw, gw)
        total = features.new_zeros(ph, pw, C)
        for a in range(gh):
            for b in range(gw):
                y, x = ys[0, :, a, None], xs[0, None, :, b]  # (ph, 1) rows, (1, pw) columns
                values = bilinear_sample(features, y, x, image)  # (ph, pw, C): one per bin
                valid = valid_y[0, :, a, None] & valid_x[0, None, :, b]  # (ph, pw)
                total = total + values * valid[:, :, None]
        out.append(total / max(gh * gw, 1))
    if not out:
        return input.new_zeros(0, C, ph, pw)
    return torch.stack(out).permute(0, 3, 1, 2).contiguous().to(input.dtype)  # (K, C, ph, pw)


def _geometry(rois: Tensor, pooled: tuple[int, int], spatial_scale: float,
              sampling_ratio: object, aligned: object):
    """Box start, bin size and samples per axis of each RoI, in feature-map pixels.

    Returns ``y1, x1, bin_h, bin_w`` (Tensor[K] each) and ``grids``, int64 Tensor[K, 2]
    of ``(gh, gw)``.
    """
    if not isinstance(sampling_ratio, numbers.Integral) or isinstance(sampling_ratio, bool):
        raise TypeError(f"sampling_ratio must be an int (<= 0 means adaptive), "
                        f"got {sampling_ratio!r}")
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned must be a bool, got {aligned!r}")
    offset = 0.5 if aligned else 0.0
    x1, y1, x2, y2 = (rois[:, i] * spatial_scale - offset for i in range(1, 5))  # (K,) each
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    bin_h, bin_w = roi_h / pooled[0], roi_w / pooled[1]
    if sampling_ratio > 0:
        grids = torch.full((len(rois), 2), int(sampling_ratio), device=rois.device)
    else:
        grids = torch.stack([torch.ceil(bin_h), torch.ceil(bin_w)], 1)  # (K, 2) adaptive
        grids = grids.nan_to_num(0).clamp(min=0).long()
    return y1, x1, bin_h, bin_w, grids


def _sample_points(start: Tensor, bin_size: Tensor, pooled: int, grid: Tensor, padded: int,
                   size: int) -> tuple[Tensor, Tensor]:
    """Sample coordinates along one axis, Tensor[n, pooled, padded], and whether they count.

    RoI ``k`` has ``grid[k]`` samples per bin; the offsets ``a >= grid[k]`` (padding) and
    the points outside ``[-1, size]`` do not count.
    """
    p = torch.arange(pooled, dtype=start.dtype, device=start.device)[None, :, None]  # (1, P, 1)
    a = torch.arange(padded, device=start.device)[None, None, :]  # (1, 1, G) offsets
    g = grid[:, None, None]  # (n, 1, 1)
    start, bin_size = start[:, None, None], bin_size[:, None, None]  # (n, 1, 1)
    # bin start + (a + 0.5)·bin / g
    points = (start + p * bin_size) + ((a + 0.5) * bin_size) / g.clamp(min=1)
    valid = (points >= -1) & (points <= size) & (a < g)
    return torch.where(valid, points, 0.0), valid  # invalid points (even NaN) get weight 0


def check_roi_args(input: Tensor, boxes: Tensor | list[Tensor], output_size: int | tuple[int, int],
                   spatial_scale: float) -> tuple[Tensor, tuple[int, int]]:
    """Validate the arguments shared by roi_align and roi_pool; return (rois, (ph, pw)).

    ``rois`` is a detached Tensor[K, 5] on ``input``'s device, in ``input``'s dtype or
    float32 for a float16 / bfloat16 ``input`` (box coordinates stay at least float32),
    with batch indices checked to be integers in ``[0, N)``.
    """
    require_dim(input, "input", 4, "Tensor[N, C, H, W] (4-D)")
    require_floating(input, "input", "a floating-point Tensor[N, C, H, W]")
    if isinstance(boxes, (list, tuple)) and len(boxes) > input.shape[0]:
        raise ValueError(f"boxes is a list of {len(boxes)} tensors but input has only "
                         f"N = {input.shape[0]} images")
    rois = boxes_to_rois(boxes, "boxes", like=input)
    if rois.device != input.device:
        raise ValueError(f"boxes must be on input's device {input.device}, got {rois.device}")
    rois = rois.detach().to(torch.promote_types(input.dtype, torch.float32))
    if len(rois):
        index = rois[:, 0]
        bad = (index < 0) | (index >= input.shape[0]) | (index != index.floor())
        if bad.any():
            raise ValueError(f"boxes[:, 0] (batch index) must be integers in [0, N) = "
                             f"[0, {input.shape[0]}), got {index[bad][0].item()}")
    pair = int_pair(output_size, "output_size")
    if not isinstance(spatial_scale, numbers.Real) or isinstance(spatial_scale, bool):
        raise TypeError(f"spatial_scale must be a positive number, got {describe(spatial_scale)}")
    if not math.isfinite(spatial_scale) or spatial_scale <= 0:
        raise ValueError(f"spatial_scale must be a positive number, got {spatial_scale!r}")
    return rois, pair
