"""Mask R-CNN's mask targets and mask loss.

Lecture: *Mask R-CNN — example training targets* — for every positive proposal,
the target is the proposal's matched ground-truth mask **cropped to the proposal
box and resized to M × M** (28 × 28). The crop-and-resize is RoI Align run on the
binary mask itself::

    target[p] = roi_align(gt_masks[matched_idxs[p]], boxes[p], (M, M))      # values in [0, 1]

The mask head predicts one M × M mask per class (``C × 28 × 28``); the loss is
binary cross-entropy **only on the channel of the ground-truth class**, so the
classes do not compete for pixels (the classification is the box head's job)::

    L_mask = mean_{p, i, j} BCE( sigmoid(logits[p, label_p, i, j]), target[p, i, j] )

**RoI Align on a one-channel image is separable.** Bin ``(i, j)`` averages bilinear
reads at sample rows ``y_a`` and columns ``x_b``; a read's weight is a row weight times a
column weight, and a sample outside the image is dropped when its row *or* its column
is, so::

    target[p] = Ay[p] · mask · Ax[p]ᵀ
    Ay[p, i, r] = 1/gh · Σ_a valid(y_a) · (bilinear weight of row r at y_a)

(likewise ``Ax``): two small matrix products on the window of the mask that the box
covers, instead of ``M² · gh · gw`` four-pixel reads. ``project_masks_on_boxes`` computes
it that way (a few boxes at a time, memory bounded by ``BUDGET``); its test compares it
with ``roi_align`` itself.

``aligned=True`` (the default) is Detectron2's pixel grid, the one the shipped model
uses; ``aligned=False`` is torchvision's. Same numbers as torchvision's
``project_masks_on_boxes`` and ``maskrcnn_loss`` (``torchvision/models/detection/roi_heads.py``)
with ``aligned=False``, and as ``torchvision.ops.roi_align(..., aligned=True)`` on the
masks with ``aligned=True``; tested in tests/instance/test_targets.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.validators import (
    check_boxes,
    describe,
    positive_int,
    require_dim,
    require_integer,
    require_tensor,
    shape_str,
)

# at most this many mask pixels (boxes × window rows × window columns) are gathered at once
BUDGET = 1 << 22


def check_masks(masks: object, name: str = "gt_masks") -> Tensor:
    """Raise unless ``masks`` is a bool Tensor[G, H, W] (or floating point: soft masks).

    Integer masks are refused (is 255 "object"?): convert 0/1 masks with ``masks.bool()``.
    """
    require_dim(masks, name, 3, "Tensor[G, H, W] (one H x W mask per instance)")
    if masks.dtype != torch.bool and not masks.is_floating_point():
        raise TypeError(f"{name} must be a bool Tensor[G, H, W] (binary masks; floating point "
                        f"for soft masks), got {describe(masks)}; convert 0/1 masks with .bool()")
    return masks


def check_matched_idxs(matched_idxs: object, num_boxes: int, num_masks: int,
                       name: str = "matched_idxs") -> Tensor:
    """Raise unless ``matched_idxs`` is an integer Tensor[P] with values in ``[0, num_masks)``."""
    require_integer(matched_idxs, name, "an int64 Tensor[P] (the ground-truth row of each box)")
    if matched_idxs.shape != (num_boxes,):
        raise ValueError(f"{name} must be Tensor[P] with P = {num_boxes} (one per box), "
                         f"got {shape_str(matched_idxs)}")
    bad = (matched_idxs < 0) | (matched_idxs >= num_masks)
    if num_boxes and bool(bad.any()):
        raise ValueError(f"{name} must index the G = {num_masks} ground-truth masks, i.e. lie in "
                         f"[0, {num_masks}), got {matched_idxs[bad][0].item()}")
    return matched_idxs


def _check_devices(gt_masks: Tensor, boxes: Tensor, matched_idxs: Tensor,
                   where: str = "") -> None:
    if gt_masks.device != boxes.device or matched_idxs.device != boxes.device:
        names = ", ".join(n + where for n in ("gt_masks", "boxes", "matched_idxs"))
        raise ValueError(f"{names} must be on one device, got {gt_masks.device}, "
                         f"{boxes.device} and {matched_idxs.device}")


def _axis(start: Tensor, length: Tensor, M: int, G: int,
          size: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """RoI Align's samples along one axis for P boxes, as torchvision places them.

    Bin ``i`` of ``M`` has ``g = ceil(length / M)`` samples (``G = max g``) at
    ``start + i·bin + (a + ½)·bin / g``; a sample outside ``[-1, size]`` counts 0, and each
    one reads pixels ``low = floor(y)`` and ``low + 1`` (clamped to the edge) with weights
    ``1 - f`` and ``f``, divided by ``g``. Returns ``index`` int64 Tensor[P, M, 2G] (the pixels
    read, counted from ``origin``), ``weight`` Tensor[P, M, 2G], and the window each box
    reads: ``origin`` and ``extent`` int64 Tensor[P].
    """
    bin_size = length / M  # (P,)
    grid = torch.ceil(bin_size).clamp(min=0)  # (P,) samples per bin (adaptive sampling_ratio)
    i = torch.arange(M, dtype=start.dtype, device=start.device)[None, :, None]  # (1, M, 1)
    a = torch.arange(G, dtype=start.dtype, device=start.device)[None, None, :] + 0.5  # (1, 1, G)
    g, b, s = grid[:, None, None], bin_size[:, None, None], start[:, None, None]  # (P, 1, 1)
    points = (s + i * b) + (a * b) / g.clamp(min=1)  # (P, M, G), same operations as roi_align
    valid = (points >= -1) & (points <= size) & (a < g)  # the padding samples (a >= g) too
    points = torch.where(valid, points, 0.0).clamp(0, size - 1)
    low = points.floor()
    frac = points - low  # weight of `low + 1`; the whole weight stays on the edge pixel
    scale = valid / g.clamp(min=1)  # (P, M, G): 1 / g for a counted sample, else 0
    # every sample lies in [start, start + length): the window holds all pixels read
    origin = start.clamp(0, size - 1).floor()  # (P,)
    end = ((start + length).clamp(0, size - 1).floor() + 2).clamp(max=size - 1)
    extent = (end - origin + 1).clamp(min=1).long()
    low = low - origin[:, None, None]
    index = torch.cat([low, (low + 1).clamp(max=size - 1 - origin[:, None, None])], 2).long()
    weight = torch.cat([(1 - frac) * scale, frac * scale], 2)  # (P, M, 2G)
    return index, weight, origin.long(), extent


def _weights(index: Tensor, weight: Tensor, size: int) -> Tensor:
    """Ay Tensor[P, M, size]: the samples' weights summed per pixel of the window."""
    P, M, _ = index.shape
    out = weight.new_zeros(P, M, size)
    return out.scatter_add_(2, index.clamp(0, size - 1), weight)  # (P, M, size)


def _project(gt_masks: Tensor, boxes: Tensor, matched_idxs: Tensor, M: int,
             aligned: bool) -> Tensor:
    """``project_masks_on_boxes`` after its checks: ``Ay · mask · Axᵀ`` a chunk at a time."""
    P, (H, W) = boxes.shape[0], gt_masks.shape[1:]
    if P == 0:  # (with no ground truth there are no boxes either: checked)
        return boxes.new_zeros(0, M, M)
    dtype = torch.promote_types(boxes.dtype, torch.float32)  # coordinates and sums in >= fp32
    b = boxes.detach().to(dtype) - (0.5 if aligned else 0.0)  # (P, 4); aligned: centres at i + .5
    size = b[:, 2:] - b[:, :2]  # (P, 2) roi width, height
    if not aligned:
        size = size.clamp(min=1.0)  # torchvision's legacy RoI Align: at least one pixel
    gw, gh = (max(int(g), 1) for g in torch.ceil(size / M).clamp(min=0).amax(0).tolist())
    y_index, y_weight, top, rows = _axis(b[:, 1], size[:, 1], M, gh, H)  # (P, M, 2 gh), ...
    x_index, x_weight, left, cols = _axis(b[:, 0], size[:, 0], M, gw, W)  # (P, M, 2 gw), ...
    masks = gt_masks if gt_masks.dtype == torch.bool else gt_masks.to(dtype)
    rows_list, cols_list = rows.tolist(), cols.tolist()  # window sizes per box

    def chunk(k: Tensor | slice, h: int, w: int) -> Tensor:
        """Targets of boxes ``k``, reading windows of ``h × w`` pixels: Tensor[n, M, M]."""
        r = (top[k, None] + torch.arange(h, device=boxes.device)).clamp(max=H - 1)  # (n, h)
        c = (left[k, None] + torch.arange(w, device=boxes.device)).clamp(max=W - 1)  # (n, w)
        flat = (matched_idxs[k, None, None] * H + r[:, :, None]) * W + c[:, None, :]
        window = masks.take(flat).to(dtype)  # (n, h, w): each box's part of its mask
        ay = _weights(y_index[k], y_weight[k], h)  # (n, M, h)
        ax = _weights(x_index[k], x_weight[k], w)  # (n, M, w)
        return ay @ window @ ax.transpose(1, 2)  # (n, M, M)

    h, w = max(rows_list), max(cols_list)
    if P * h * w <= BUDGET:  # the usual case: one chunk
        return chunk(slice(None), h, w).to(boxes.dtype)
    out = boxes.new_empty(P, M, M)
    order = sorted(range(P), key=lambda p: rows_list[p] * cols_list[p])  # similar windows
    start = 0
    while start < P:  # chunks of boxes whose padded windows fit in BUDGET pixels
        stop, h, w = start, 0, 0
        while stop < P:
            nh, nw = max(h, rows_list[order[stop]]), max(w, cols_list[order[stop]])
            if stop > start and (stop - start + 1) * nh * nw > BUDGET:
                break
            h, w, stop = nh, nw, stop + 1
        k = torch.tensor(order[start:stop], device=boxes.device)  # (n,) boxes of this chunk
        out[k] = chunk(k, h, w).to(out.dtype)
        start = stop
    return out


def project_masks_on_boxes(gt_masks: Tensor, boxes: Tensor, matched_idxs: Tensor, M: int,
                           aligned: bool = True) -> Tensor:
    """Mask targets: crop each box's matched ground-truth mask and resize it to ``M × M``.

    ``target[p] = roi_align(gt_masks[:, None], (matched_idxs[p], *boxes[p]), (M, M),
    spatial_scale=1, sampling_ratio=-1, aligned=aligned)`` — RoI Align on the mask (lesson
    05): bilinear samples of the 0/1 mask averaged in each of the ``M × M`` bins, so a
    target pixel on the object's edge gets a fraction between 0 and 1. Computed as
    ``Ay · mask · Axᵀ`` on the box's window (module docstring).

    ``aligned=True`` (default) uses Detectron2's sampling grid (``BitMasks.crop_and_resize``):
    pixel ``i`` covers ``[i, i + 1)`` and the ``M × M`` grid covers the box exactly.
    (Detectron2 then thresholds the targets at 0.5; we keep them soft, as torchvision does.)
    Pair it with ``paste_masks_in_image(..., aligned=True)`` (also the default) and a
    box-shaped mask survives the round trip. ``aligned=False`` is torchvision's Mask R-CNN:
    the box's corner ``x`` is read as the *centre* of pixel ``x``, so the crop sits half a
    pixel down and right of the box.

    Args:
        gt_masks: bool Tensor[G, H, W], the ground-truth masks of one image (floating point
            is accepted as soft masks; integer masks are refused: ``.bool()`` them).
        boxes: Tensor[P, 4] floating point, the (positive) proposals, xyxy in image pixels.
        matched_idxs: int64 Tensor[P], the row of ``gt_masks`` each proposal is matched to.
        M: output side (28 in Mask R-CNN).
        aligned: half-pixel convention of the crop (above).

    Returns:
        Tensor[P, M, M] in ``boxes``' dtype (computed in at least float32), differentiable
        w.r.t. floating-point ``gt_masks``. Same as torchvision's
        ``roi_heads.project_masks_on_boxes`` (``aligned=False``) and as
        ``torchvision.ops.roi_align(..., aligned=True)`` on the masks (``aligned=True``);
        tested in tests/instance/test_targets.py.
    """
    check_masks(gt_masks)
    check_boxes(boxes, "boxes", floating=True)
    check_matched_idxs(matched_idxs, boxes.shape[0], gt_masks.shape[0])
    M = positive_int(M, "M")
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned must be a bool, got {aligned!r}")
    _check_devices(gt_masks, boxes, matched_idxs)
    return _project(gt_masks, boxes, matched_idxs, M, aligned)


def mask_rcnn_loss(mask_logits: Tensor, proposals: list[Tensor], gt_masks: list[Tensor],
                   gt_labels: list[Tensor], matched_idxs: list[Tensor],
                   aligned: bool = True) -> Tensor:
    """Binary cross-entropy of the mask logits on the ground-truth class's channel only.

    ``L = mean BCE_with_logits(mask_logits[p, label_p], project_masks_on_boxes(...)[p])``
    over the positive proposals ``p`` of all images and all ``M × M`` pixels, where
    ``label_p = gt_labels[matched_idxs[p]]``. The other ``C - 1`` channels get no
    gradient: one mask per class, the loss only on the GT class. No proposals: ``0``
    (still connected to ``mask_logits``).

    Args:
        mask_logits: Tensor[P, C, M, M], the mask head's output for the positive proposals
            of all images, concatenated in image order.
        proposals: list of Tensor[P_i, 4] (one per image), ``sum P_i = P``.
        gt_masks: list of bool Tensor[G_i, H_i, W_i]; gt_labels: list of int64 Tensor[G_i]
            (class index in ``[0, C)``, the channel of ``mask_logits``).
        matched_idxs: list of int64 Tensor[P_i], the ground-truth row of each proposal.
        aligned: the targets' half-pixel convention (``project_masks_on_boxes``); ``True``
            (default) as the shipped model, ``False`` as torchvision.

    Returns:
        scalar Tensor. Same as ``torchvision.models.detection.roi_heads.maskrcnn_loss``
        (with ``aligned=False``); tested in tests/instance/test_targets.py.
    """
    require_tensor(mask_logits, "mask_logits", "a Tensor[P, C, M, M]")
    if mask_logits.dim() != 4 or mask_logits.shape[2] != mask_logits.shape[3]:
        raise ValueError(f"mask_logits must be Tensor[P, C, M, M], got {shape_str(mask_logits)}")
    lists = {"proposals": proposals, "gt_masks": gt_masks, "gt_labels": gt_labels,
             "matched_idxs": matched_idxs}
    for name, value in lists.items():
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list with one Tensor per image, "
                            f"got {describe(value)}")
    if not len(proposals) == len(gt_masks) == len(gt_labels) == len(matched_idxs):
        raise ValueError("proposals, gt_masks, gt_labels and matched_idxs need one entry per "
                         "image, got " + ", ".join(str(len(v)) for v in lists.values()))
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned must be a bool, got {aligned!r}")
    P, C, M = mask_logits.shape[0], mask_logits.shape[1], mask_logits.shape[-1]
    if sum(len(p) for p in proposals) != P:
        raise ValueError(f"mask_logits has P = {P} rows but the proposals hold "
                         f"{sum(len(p) for p in proposals)} boxes; they must be the same")
    labels, targets = [], []
    for i, (masks, boxes, gt_label, idxs) in enumerate(
            zip(gt_masks, proposals, gt_labels, matched_idxs, strict=True)):
        G = len(check_masks(masks, f"gt_masks[{i}]"))
        require_integer(gt_label, f"gt_labels[{i}]", "an int64 Tensor[G]")
        if gt_label.shape != (G,):
            raise ValueError(f"gt_labels[{i}] must be Tensor[G] with G = {G} (one label per "
                             f"mask), got {shape_str(gt_label)}")
        if G and not (0 <= int(gt_label.min()) and int(gt_label.max()) < C):
            raise ValueError(f"gt_labels[{i}] must be class indices in [0, C) = [0, {C}) "
                             f"(channels of mask_logits), got {gt_label.tolist()}")
        check_boxes(boxes, f"proposals[{i}]", floating=True)
        check_matched_idxs(idxs, len(boxes), G, f"matched_idxs[{i}]")
        _check_devices(masks, boxes, idxs, f"[{i}]")
        labels.append(gt_label[idxs])  # (P_i,) class of each proposal's ground truth
        targets.append(_project(masks, boxes, idxs, M, aligned))  # (P_i, M, M), checked above
    if P == 0:  # BCE's mean of nothing is NaN; keep the graph instead
        return mask_logits.sum() * 0
    label = torch.cat(labels).to(mask_logits.device)  # (P,)
    target = torch.cat(targets).to(mask_logits)  # (P, M, M)
    rows = torch.arange(P, device=mask_logits.device)
    chosen = mask_logits[rows, label]  # (P, M, M): the GT class's channel
    return F.binary_cross_entropy_with_logits(chosen, target)

