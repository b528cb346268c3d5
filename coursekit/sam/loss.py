"""SAM's training loss: focal + dice (20:1) on the best of the three masks, + IoU regression.

Lecture: *Segment Anything* — an ambiguous click has several right answers, so the
decoder returns three masks; training must not punish it for giving the *other*
valid answer. SAM's rule (Kirillov et al., 2023, §3 and appendix A):

* the mask loss of each output is ``20 · focal + 1 · dice`` against the ground truth;
* only the **minimum** of the three losses is back-propagated (each output is free
  to specialise: whole, part, subpart);
* the IoU head learns, by mean-squared error, the real IoU of each predicted mask
  (logits > 0) with the ground truth (here for every output mask, the target
  detached), which ranks the three masks at test time.

Our option (``other_masks``), not SAM's: an ambiguous click trains on *both* its answers
at once (a part and its whole), each matched to its own output at the least total cost,
the way DETR matches predictions to objects. SAM draws one answer per click and relies on
a billion masks for the three outputs to specialise; with a small budget both answers
say directly that the three masks must hold both readings.

``sigmoid_focal_loss`` is the same as ``torchvision.ops.sigmoid_focal_loss``
(``reduction="none"``); ``dice_loss`` is ``1 − (2 Σ p·t + 1) / (Σ p + Σ t + 1)`` with
``p = sigmoid(logits)`` (DETR's smoothing). Tested in tests/sam/test_loss.py.
"""

from __future__ import annotations

import numbers
from typing import NamedTuple

import torch
from torch import Tensor
from torch.nn import functional as F

from coursekit.validators import describe, require_bool, require_dim, require_floating, shape_str


class SamLoss(NamedTuple):
    """``loss = mask_loss + iou_weight · iou_loss``; ``best``: int64 Tensor[B], the mask trained
    (with two answers: the one matched to the drawn answer)."""

    loss: Tensor
    mask_loss: Tensor
    iou_loss: Tensor
    best: Tensor


def sigmoid_focal_loss(inputs: Tensor, targets: Tensor, alpha: float = 0.25,
                       gamma: float = 2.0) -> Tensor:
    """Per-element focal loss: ``α_t · (1 − p_t)^γ · BCE(inputs, targets)``.

    ``p_t = p`` where the target is 1, ``1 − p`` where 0 (``p = sigmoid(inputs)``);
    ``α_t = α`` / ``1 − α`` likewise (``alpha < 0``: no weighting). Easy pixels (p_t near
    1) are down-weighted by ``(1 − p_t)^γ``. Tensor[...] logits and targets in [0, 1] of the
    same shape -> Tensor[...]; at least float32 inside, the input's dtype out. Same as
    ``torchvision.ops.sigmoid_focal_loss(inputs, targets, alpha, gamma, reduction="none")``.
    """
    require_floating(inputs, "inputs", "a floating-point Tensor of logits")
    require_floating(targets, "targets", "a floating-point Tensor of targets in [0, 1]")
    if targets.shape != inputs.shape:
        raise ValueError(f"targets must have the shape of inputs {shape_str(inputs)}, "
                         f"got {shape_str(targets)}")
    alpha, gamma = _real(alpha, "alpha"), _real(gamma, "gamma")
    acc = torch.promote_types(inputs.dtype, torch.float32)
    x, t = inputs.to(acc), targets.to(acc)
    p = torch.sigmoid(x)
    ce = F.binary_cross_entropy_with_logits(x, t, reduction="none")
    p_t = p * t + (1 - p) * (1 - t)
    loss = ce * ((1 - p_t) ** gamma)
    if alpha >= 0:
        loss = (alpha * t + (1 - alpha) * (1 - t)) * loss
    return loss.to(inputs.dtype)


def dice_loss(mask_logits: Tensor, targets: Tensor, smooth: float = 1.0) -> Tensor:
    """Soft dice loss per mask: ``1 − (2 Σ p·t + s) / (Σ p + Σ t + s)`` over the last two axes.

    ``p = sigmoid(mask_logits)``; Tensor[..., H, W] logits and targets in [0, 1] ->
    Tensor[...]. 0 for a perfect, confident prediction; near 1 for no overlap.
    """
    require_floating(mask_logits, "mask_logits", "a floating-point Tensor[..., H, W]")
    require_floating(targets, "targets", "a floating-point Tensor[..., H, W] in [0, 1]")
    if mask_logits.dim() < 2:
        raise ValueError(f"mask_logits must be Tensor[..., H, W], got {shape_str(mask_logits)}")
    if targets.shape != mask_logits.shape:
        raise ValueError(f"targets must have the shape of mask_logits "
                         f"{shape_str(mask_logits)}, got {shape_str(targets)}")
    smooth = _real(smooth, "smooth")
    acc = torch.promote_types(mask_logits.dtype, torch.float32)
    p, t = torch.sigmoid(mask_logits.to(acc)), targets.to(acc)
    numerator = 2 * (p * t).sum(dim=(-2, -1)) + smooth  # (...,)
    denominator = p.sum(dim=(-2, -1)) + t.sum(dim=(-2, -1)) + smooth
    return (1 - numerator / denominator).to(mask_logits.dtype)


def mask_iou(masks: Tensor, targets: Tensor, *, dtype: torch.dtype = torch.float32) -> Tensor:
    """IoU of bool masks Tensor[..., H, W] with bool targets of the same shape: Tensor[...].

    ``|A ∩ B| / |A ∪ B|`` from integer counts, divided in ``dtype``. Two empty masks have
    IoU 1 (they agree).
    """
    require_bool(masks, "masks", "a bool Tensor[..., H, W]")
    require_bool(targets, "targets", "a bool Tensor[..., H, W]")
    if masks.dim() < 2 or targets.shape != masks.shape:
        raise ValueError(f"masks and targets must be Tensor[..., H, W] of one shape, got "
                         f"{shape_str(masks)} and {shape_str(targets)}")
    inter = (masks & targets).sum(dim=(-2, -1))
    union = (masks | targets).sum(dim=(-2, -1))
    return torch.where(union > 0, inter.to(dtype) / union.clamp(min=1).to(dtype), 1.0)


def sam_loss(mask_logits: Tensor, iou_predictions: Tensor, gt_masks: Tensor, *,
             focal_weight: float = 20.0, dice_weight: float = 1.0, iou_weight: float = 1.0,
             alpha: float = 0.25, gamma: float = 2.0, other_masks: Tensor | None = None
             ) -> SamLoss:
    """SAM's loss for B prompts with C output masks each (C = 3, or 1).

    Args:
        mask_logits: Tensor[B, C, H, W] (the decoder's logits, at the size of ``gt_masks``).
        iou_predictions: Tensor[B, C], the IoU head's output.
        gt_masks: bool Tensor[B, H, W], the one ground-truth mask of each prompt; or a
            floating Tensor[B, H, W] in [0, 1] (a soft mask, e.g. the fraction of each
            low-resolution cell that the full-resolution mask covers; its IoU target
            counts the cells >= 0.5).
        other_masks: ``None`` (SAM's rule), or the *other* valid answer of each prompt,
            like ``gt_masks``, on its device (equal to it where a prompt has one answer);
            needs C >= 2. Where the two differ, both must be among the masks: they are
            matched to two different outputs at the least total cost and the prompt's mask
            loss is the mean of the two matched costs (a 2-target set loss, as DETR
            matches). The IoU head's target stays SAM's: the IoU with ``gt_masks``.

    Returns:
        ``SamLoss(loss, mask_loss, iou_loss, best)``: ``mask_loss`` is the mean over B of
        ``min_c (focal_weight · focal_c + dice_weight · dice_c)`` (focal averaged over the
        pixels), so only the best mask of each prompt receives gradient (with two answers:
        the two matched masks, each with half the weight); ``iou_loss`` the
        mean over B·C of ``(iou_pred − IoU(logits > 0, gt))²``; ``best`` the index of the
        trained mask (with ``other_masks``: the one matched to ``gt_masks``). Scalars in
        the logits' dtype.
    """
    require_floating(mask_logits, "mask_logits", "a floating-point Tensor[B, C, H, W]")
    require_dim(mask_logits, "mask_logits", 4, "Tensor[B, C, H, W]")
    B, C, H, W = mask_logits.shape
    require_floating(iou_predictions, "iou_predictions", f"a floating-point Tensor[{B}, {C}]")
    if tuple(iou_predictions.shape) != (B, C):
        raise ValueError(f"iou_predictions must be Tensor[{B}, {C}] (one per mask), "
                         f"got {shape_str(iou_predictions)}")
    if not isinstance(gt_masks, Tensor) or not (gt_masks.dtype == torch.bool
                                                 or gt_masks.is_floating_point()):
        raise TypeError(f"gt_masks must be a bool (or floating, in [0, 1]) Tensor[{B}, {H}, "
                        f"{W}], got {describe(gt_masks)}")
    if tuple(gt_masks.shape) != (B, H, W):
        raise ValueError(f"gt_masks must be Tensor[{B}, {H}, {W}] (one per prompt, at the "
                         f"logits' size), got {shape_str(gt_masks)}")
    if B == 0 or C == 0:
        raise ValueError(f"mask_logits must hold at least one mask, got {shape_str(mask_logits)}")
    if other_masks is not None:
        if not isinstance(other_masks, Tensor) or other_masks.dtype != gt_masks.dtype:
            raise TypeError(f"other_masks must be a Tensor of gt_masks' dtype "
                            f"({gt_masks.dtype}), got {describe(other_masks)}")
        if other_masks.device != gt_masks.device:
            raise ValueError(f"other_masks must be on gt_masks' device ({gt_masks.device}), "
                             f"got {other_masks.device}")
        if other_masks.shape != gt_masks.shape:
            raise ValueError(f"other_masks must have the shape of gt_masks "
                             f"{shape_str(gt_masks)}, got {shape_str(other_masks)}")
        if C < 2:
            raise ValueError(f"other_masks needs at least 2 output masks to match two answers "
                             f"to, got mask_logits {shape_str(mask_logits)}")
    fw, dw = _real(focal_weight, "focal_weight"), _real(dice_weight, "dice_weight")
    iw = _real(iou_weight, "iou_weight")
    acc = torch.promote_types(mask_logits.dtype, torch.float32)
    logits = mask_logits.to(acc)

    def costs(gt: Tensor) -> Tensor:  # (B, C) mask losses
        target = gt[:, None].expand(B, C, H, W).to(acc)  # (B, C, H, W)
        focal = sigmoid_focal_loss(logits, target, alpha, gamma).mean(dim=(-2, -1))
        return fw * focal + dw * dice_loss(logits, target)

    per_mask = costs(gt_masks)  # (B, C)
    best = per_mask.detach().argmin(dim=1)  # (B,) the mask that is trained
    chosen = per_mask.gather(1, best[:, None])[:, 0]  # (B,)
    if other_masks is not None:
        per_other = costs(other_masks)  # (B, C)
        with torch.no_grad():  # (B, C, C): gt_masks to output i, other_masks to output j
            pair = per_mask[:, :, None] + per_other[:, None, :]
            eye = torch.eye(C, dtype=torch.bool, device=pair.device)
            flat = pair.masked_fill(eye, float("inf")).flatten(1).argmin(dim=1)  # (B,)
        two = (per_mask.gather(1, (flat // C)[:, None])
               + per_other.gather(1, (flat % C)[:, None]))[:, 0] / 2
        differ = (other_masks != gt_masks).flatten(1).any(dim=1)  # (B,) two answers
        chosen = torch.where(differ, two, chosen)
        best = torch.where(differ, flat // C, best)
    mask_loss = chosen.mean()
    hard = gt_masks if gt_masks.dtype == torch.bool else gt_masks >= 0.5
    with torch.no_grad():
        real_iou = mask_iou(logits > 0, hard[:, None].expand(B, C, H, W), dtype=acc)  # (B, C)
    iou_loss = F.mse_loss(iou_predictions.to(acc), real_iou)
    dtype = mask_logits.dtype
    return SamLoss((mask_loss + iw * iou_loss).to(dtype), mask_loss.to(dtype),
                   iou_loss.to(dtype), best)


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    return float(value)
