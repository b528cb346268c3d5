"""RoI Pool: the Fast R-CNN crop, with the box and its bins rounded to the pixel grid.

Lecture: *RoI Pool vs RoI Align* — RoI Pool snaps the box to integer feature
cells, cuts it into ``ph × pw`` bins whose edges are rounded again (floor for
the start, ceil for the end), and max-pools each bin::

    x1' = round(x1·s)  x2' = round(x2·s)          (s = spatial_scale)
    roi_w = max(x2' - x1' + 1, 1)                 (pixels x1' .. x2', both included)
    bin j covers columns [x1' + floor(j·roi_w/pw), x1' + ceil((j+1)·roi_w/pw))
    out[k, c, i, j] = max of the bin (0 if the bin is empty after clipping to the image)

Both roundings move the bins away from where the box really is —
``roi_pool_misalignment`` measures by how much; RoI Align (``roi_align.py``) fixes
it with bilinear sampling. ``roi_pool`` equals ``torchvision.ops.roi_pool``
(forward and backward); tested in tests/detection/test_roi_pool.py.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor

from coursekit.detection.roi_align import check_roi_args

# at most this many window values (cells × channels) are read at once
_BUDGET = 1 << 20


def _round_half_away(t: Tensor) -> Tensor:
    """C's ``round``: halves go away from zero (``torch.round`` sends them to even)."""
    return torch.where(t >= 0, torch.floor(t + 0.5), torch.ceil(t - 0.5))


def _bin_edges(rois: Tensor, pooled: tuple[int, int], spatial_scale: float,
               size: tuple[int, int]):
    """Integer bin edges: (start, end) of rows, Tensor[K, ph] each, then of columns, [K, pw]."""
    edges = []
    for axis, (lo, hi) in enumerate(((2, 4), (1, 3))):  # rows from y1, y2; columns from x1, x2
        n_bins, limit = pooled[axis], size[axis]
        start = _round_half_away(rois[:, lo] * spatial_scale)  # (K,)
        end = _round_half_away(rois[:, hi] * spatial_scale)
        length = (end - start + 1).clamp(min=1)
        bin_size = length / n_bins  # (K,) in the input's dtype (>= float32), as the kernel
        p = torch.arange(n_bins, dtype=rois.dtype, device=rois.device)
        lo_edge = torch.floor(p[None, :] * bin_size[:, None]) + start[:, None]  # (K, n_bins)
        hi_edge = torch.ceil((p[None, :] + 1) * bin_size[:, None]) + start[:, None]
        edges.append((lo_edge.clamp(0, limit).long(), hi_edge.clamp(0, limit).long()))
    return edges


def roi_pool(input: Tensor, boxes: Tensor | list[Tensor], output_size: int | tuple[int, int],
             spatial_scale: float = 1.0) -> Tensor:
    """Max-pool each RoI into ``ph × pw`` integer bins (the formula in the module docstring).

    Vectorised: every bin is read through a window of the largest bin size, with the
    cells beyond the bin's end masked out. Memory is bounded: chunks of RoIs, and within a
    chunk slabs of window rows, hold at most ``_BUDGET`` values (or one window row); a
    slab's maximum replaces the running one only if strictly larger, so the first
    maximum (row by row) wins, as in the kernel.

    Args:
        input: Tensor[N, C, H, W], floating point.
        boxes: Tensor[K, 5] ``(batch_index, x1, y1, x2, y2)`` or a list of Tensor[L, 4].
        output_size: ``ph`` or ``(ph, pw)``.
        spatial_scale: feature-map pixels per box unit.

    Returns:
        Tensor[K, C, ph, pw] in ``input``'s dtype (bin edges, and the gradient's sums, in at
        least float32); the gradient goes to the first maximum of each bin (row by row), as in
        ``torchvision.ops.roi_pool``, which it equals.
    """
    rois, (ph, pw) = check_roi_args(input, boxes, output_size, spatial_scale)
    N, C, H, W = input.shape
    K = rois.shape[0]
    if K == 0:
        return input.new_zeros(0, C, ph, pw)
    (hs, he), (ws, we) = _bin_edges(rois, (ph, pw), spatial_scale, (H, W))
    features = input.to(rois.dtype)  # float32 for half: gradients add up in float32
    wh = max(int((he - hs).max()), 1)  # the largest bin, in rows and in columns
    ww = max(int((we - ws).max()), 1)
    dx = torch.arange(ww, device=input.device)
    per_row = max(1, C * ph * pw * ww)  # values of one window row of one RoI
    pieces = []
    for chunk in torch.arange(K, device=input.device).split(max(1, _BUDGET // (per_row * wh))):
        cols = ws[chunk, :, None] + dx  # (n, pw, ww)
        col_in = cols < we[chunk, :, None]  # (n, pw, ww)
        b = rois[chunk, 0].long()[:, None, None, None, None]
        best, seen = None, None
        step = max(1, _BUDGET // (len(chunk) * per_row))  # window rows per slab
        for top in range(0, wh, step):
            rows = hs[chunk, :, None] + torch.arange(top, min(top + step, wh),
                                                     device=input.device)  # (n, ph, r)
            in_bin = (rows < he[chunk, :, None])[:, :, :, None, None] & col_in[:, None, None]
            window = features[b, :, rows.clamp(max=H - 1)[:, :, :, None, None],
                           cols.clamp(max=W - 1)[:, None, None]]  # (n, ph, r, pw, ww, C)
            window = window.masked_fill(~in_bin[..., None], float("-inf"))
            window = window.permute(0, 5, 1, 3, 2, 4).flatten(-2)  # (n, C, ph, pw, r * ww)
            part = window.max(dim=-1).values  # (n, C, ph, pw), first maximum row by row
            best = part if best is None else torch.where(part > best, part, best)
            found = in_bin.any(dim=2).any(dim=-1)  # (n, ph, pw): a cell of the bin was read
            seen = found if seen is None else seen | found
        pieces.append(best.masked_fill(~seen[:, None], 0.0))  # empty bins (clipped away): 0
    return torch.cat(pieces).to(input.dtype)


class Misalignment(NamedTuple):
    """Where RoI Pool's bins are versus where the box's bins really are, in feature pixels.

    ``true_bins`` / ``pooled_bins``: Tensor[ph, pw, 4] xyxy, with pixel ``i`` covering
    ``[i, i + 1)``; ``max_error``: the largest distance between a true and a pooled bin
    edge (feature pixels); ``max_error_image``: the same in box (image) units.
    """

    true_bins: Tensor
    pooled_bins: Tensor
    max_error: float
    max_error_image: float


def roi_pool_misalignment(box: Tensor | tuple[float, float, float, float],
                          output_size: int | tuple[int, int],
                          spatial_scale: float = 1.0) -> Misalignment:
    """How far RoI Pool's quantised bins are from the true bins of ``box`` (the lesson's picture).

    The true bins split the box ``(x1, y1, x2, y2)·spatial_scale`` evenly; the pooled
    bins are the integer cell ranges ``roi_pool`` actually maximises over.

    Args:
        box: ``(x1, y1, x2, y2)`` in image units, a sequence or Tensor[4].
        output_size: ``ph`` or ``(ph, pw)``.
        spatial_scale: feature-map pixels per image unit.

    Returns:
        ``Misalignment(true_bins, pooled_bins, max_error, max_error_image)`` (float64).
        Bins are not clipped to an image. Tested against ``roi_pool`` itself in
        tests/detection/test_roi_pool.py.
    """
    try:
        box = torch.as_tensor(box, dtype=torch.float64)
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"box must be (x1, y1, x2, y2) numbers, got {box!r}") from err
    if box.shape != (4,):
        raise ValueError(f"box must be (x1, y1, x2, y2), got shape {tuple(box.shape)}")
    big = 1 << 30  # no clipping
    rois = torch.cat([box.new_zeros(1), box])[None]  # (1, 5)
    _, (ph, pw) = check_roi_args(box.new_zeros(1, 1, 1, 1), rois, output_size, spatial_scale)
    (hs, he), (ws, we) = _bin_edges(rois, (ph, pw), spatial_scale, (big, big))
    pooled = torch.stack(torch.broadcast_tensors(
        ws[0][None, :], hs[0][:, None], we[0][None, :], he[0][:, None]), -1)  # (ph, pw, 4)
    x1, y1, x2, y2 = (box * spatial_scale).tolist()
    ys = torch.linspace(y1, y2, ph + 1, dtype=torch.float64)  # true bin edges
    xs = torch.linspace(x1, x2, pw + 1, dtype=torch.float64)
    true = torch.stack(torch.broadcast_tensors(
        xs[None, :-1], ys[:-1, None], xs[None, 1:], ys[1:, None]), -1)  # (ph, pw, 4)
    error = float((pooled.to(torch.float64) - true).abs().max())
    return Misalignment(true, pooled.to(torch.float64), error, error / spatial_scale)
