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

Same numbers as torchvision's ``project_masks_on_boxes`` and ``maskrcnn_loss``
(``torchvision/models/detection/roi_heads.py``); tested in tests/instance/test_targets.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.detection.boxes import check_boxes, shape_str
from coursekit.detection.roi_align import roi_align


def _describe(t: object) -> str:
    return shape_str(t) if isinstance(t, Tensor) else type(t).__name__


def check_masks(masks: object, name: str = "gt_masks") -> Tensor:
    """Raise unless ``masks`` is a Tensor[G, H, W] (bool, integer or floating point)."""
    if not isinstance(masks, Tensor):
        raise TypeError(f"{name} must be a Tensor[G, H, W], got {type(masks).__name__}")
    if masks.dim() != 3:
        raise ValueError(f"{name} must be Tensor[G, H, W] (one H x W mask per instance), got {shape_str(masks)}")
    if masks.is_complex():
        raise TypeError(f"{name} must hold real numbers or bools, got dtype {masks.dtype}")
    return masks


def check_matched_idxs(matched_idxs: object, num_boxes: int, num_masks: int, name: str = "matched_idxs") -> Tensor:
    """Raise unless ``matched_idxs`` is an integer Tensor[P] with values in ``[0, num_masks)``."""
    if not isinstance(matched_idxs, Tensor) or matched_idxs.is_floating_point() or matched_idxs.dtype == torch.bool:
        got = f"{_describe(matched_idxs)} of dtype {matched_idxs.dtype}" if isinstance(matched_idxs, Tensor) \
            else type(matched_idxs).__name__
        raise TypeError(f"{name} must be an int64 Tensor[P] (the ground-truth row of each box), got {got}")
    if matched_idxs.shape != (num_boxes,):
        raise ValueError(f"{name} must be Tensor[P] with P = {num_boxes} (one per box), got {shape_str(matched_idxs)}")
    if num_boxes and (int(matched_idxs.min()) < 0 or int(matched_idxs.max()) >= num_masks):
        bad = matched_idxs[(matched_idxs < 0) | (matched_idxs >= num_masks)][0].item()
        raise ValueError(f"{name} must index the G = {num_masks} ground-truth masks, i.e. lie in "
                         f"[0, {num_masks}), got {bad}")
    return matched_idxs


def project_masks_on_boxes(gt_masks: Tensor, boxes: Tensor, matched_idxs: Tensor, M: int,
                           aligned: bool = False) -> Tensor:
    """Mask targets: crop each box's matched ground-truth mask and resize it to ``M × M``.

    ``target[p] = roi_align(gt_masks[:, None], (matched_idxs[p], *boxes[p]), (M, M),
    spatial_scale=1, sampling_ratio=-1, aligned=aligned)`` — RoI Align on the mask (lesson
    05): bilinear samples of the 0/1 mask averaged in each of the ``M × M`` bins, so a
    target pixel on the object's edge gets a fraction between 0 and 1.

    ``aligned=False`` is torchvision's Mask R-CNN: the box's corner ``x`` is read as the
    *centre* of pixel ``x``, so the crop sits half a pixel down and right of the box.
    ``aligned=True`` uses Detectron2's sampling grid (``BitMasks.crop_and_resize``): pixel ``i``
    covers ``[i, i + 1)`` and the ``M × M`` grid covers the box exactly. (Detectron2 then
    thresholds the targets at 0.5; we keep them soft, as torchvision does.) Pair it with
    ``paste_masks_in_image(..., aligned=True)`` and a box-shaped mask survives the round trip.

    Args:
        gt_masks: Tensor[G, H, W] ground-truth masks of one image (bool, int or float).
        boxes: Tensor[P, 4] floating point, the (positive) proposals, xyxy in image pixels.
        matched_idxs: int64 Tensor[P], the row of ``gt_masks`` each proposal is matched to.
        M: output side (28 in Mask R-CNN).
        aligned: half-pixel convention of the crop (above); ``False`` as torchvision.

    Returns:
        Tensor[P, M, M] in ``boxes``' dtype. Same as torchvision's
        ``roi_heads.project_masks_on_boxes`` (``aligned=False``) and as
        ``torchvision.ops.roi_align(..., aligned=True)`` on the masks (``aligned=True``);
        tested in tests/instance/test_targets.py.
    """
    check_masks(gt_masks)
    check_boxes(boxes, "boxes", floating=True)
    check_matched_idxs(matched_idxs, boxes.shape[0], gt_masks.shape[0])
    if isinstance(M, bool) or not isinstance(M, int):
        raise TypeError(f"M must be a positive int (the target side, e.g. 28), got {M!r}")
    if M <= 0:
        raise ValueError(f"M must be a positive int (the target side, e.g. 28), got {M}")
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned must be a bool, got {aligned!r}")
    if gt_masks.device != boxes.device:
        raise ValueError(f"gt_masks and boxes must be on the same device, got {gt_masks.device} and {boxes.device}")
    rois = torch.cat([matched_idxs.to(boxes)[:, None], boxes], dim=1)  # (P, 5): (mask row, x1, y1, x2, y2)
    if gt_masks.shape[0] == 0:  # no ground truth: then there are no boxes either (checked above)
        return boxes.new_zeros(0, M, M)
    masks = gt_masks[:, None].to(boxes.dtype)  # (G, 1, H, W): each mask is an "image" of one channel
    return roi_align(masks, rois, (M, M), 1.0, aligned=aligned)[:, 0]  # (P, M, M)


def mask_rcnn_loss(mask_logits: Tensor, proposals: list[Tensor], gt_masks: list[Tensor],
                   gt_labels: list[Tensor], matched_idxs: list[Tensor], aligned: bool = False) -> Tensor:
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
        gt_masks: list of Tensor[G_i, H_i, W_i]; gt_labels: list of int64 Tensor[G_i]
            (class index in ``[0, C)``, the channel of ``mask_logits``).
        matched_idxs: list of int64 Tensor[P_i], the ground-truth row of each proposal.
        aligned: the targets' half-pixel convention (``project_masks_on_boxes``).

    Returns:
        scalar Tensor. Same as ``torchvision.models.detection.roi_heads.maskrcnn_loss``;
        tested in tests/instance/test_targets.py.
    """
    if not isinstance(mask_logits, Tensor) or mask_logits.dim() != 4 or mask_logits.shape[2] != mask_logits.shape[3]:
        raise ValueError(f"mask_logits must be Tensor[P, C, M, M], got {_describe(mask_logits)}")
    lists = {"proposals": proposals, "gt_masks": gt_masks, "gt_labels": gt_labels, "matched_idxs": matched_idxs}
    for name, value in lists.items():
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list with one Tensor per image, got {type(value).__name__}")
    if not len(proposals) == len(gt_masks) == len(gt_labels) == len(matched_idxs):
        raise ValueError("proposals, gt_masks, gt_labels and matched_idxs need one entry per image, got "
                         + ", ".join(str(len(v)) for v in lists.values()))
    P, C, M = mask_logits.shape[0], mask_logits.shape[1], mask_logits.shape[-1]
    if sum(len(p) for p in proposals) != P:
        raise ValueError(f"mask_logits has P = {P} rows but the proposals hold "
                         f"{sum(len(p) for p in proposals)} boxes; they must be the same")
    labels, targets = [], []
    for i, (masks, boxes, gt_label, idxs) in enumerate(zip(gt_masks, proposals, gt_labels, matched_idxs)):
        if not isinstance(gt_label, Tensor) or gt_label.shape != (len(check_masks(masks, f"gt_masks[{i}]")),):
            raise ValueError(f"gt_labels[{i}] must be Tensor[G] with G = {len(masks)} (one label per mask), "
                             f"got {_describe(gt_label)}")
        if len(gt_label) and (int(gt_label.min()) < 0 or int(gt_label.max()) >= C):
            raise ValueError(f"gt_labels[{i}] must be class indices in [0, C) = [0, {C}) (channels of "
                             f"mask_logits), got {gt_label.tolist()}")
        check_matched_idxs(idxs, len(check_boxes(boxes, f"proposals[{i}]", floating=True)), len(masks),
                           f"matched_idxs[{i}]")
        labels.append(gt_label[idxs])  # (P_i,) class of each proposal's ground truth
        targets.append(project_masks_on_boxes(masks, boxes, idxs, M, aligned))  # (P_i, M, M)
    if P == 0:  # BCE's mean of nothing is NaN; keep the graph instead
        return mask_logits.sum() * 0
    label = torch.cat(labels).to(mask_logits.device)  # (P,)
    target = torch.cat(targets).to(mask_logits)  # (P, M, M)
    chosen = mask_logits[torch.arange(P, device=mask_logits.device), label]  # (P, M, M): the GT class's channel
    return F.binary_cross_entropy_with_logits(chosen, target)
