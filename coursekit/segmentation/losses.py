"""Per-pixel cross-entropy, written out, and class weights from label frequencies.

The lecture: "Loss function is per-pixel cross-entropy". For logits ``z`` at one
pixel with true class ``y``:

    loss = -log softmax(z)_y = logsumexp(z) - z_y

averaged over the pixels that are not ``ignore_index``; with class weights
``w`` the mean is weighted: ``sum_i w[y_i] loss_i / sum_i w[y_i]``
(torch's semantics). Same as ``torch.nn.functional.cross_entropy``;
tested in tests/segmentation/test_losses.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["class_weights_from_frequency", "pixel_cross_entropy"]


def _describe(t: object) -> str:
    if isinstance(t, Tensor):
        return f"Tensor[{', '.join(map(str, t.shape))}] {str(t.dtype).replace('torch.', '')}"
    return type(t).__name__


def _check_target(target: object, num_classes: int, ignore_index: int, name: str = "target") -> Tensor:
    if not isinstance(target, Tensor) or target.dtype != torch.int64:
        raise TypeError(f"{name} must be an int64 Tensor of class ids, got {_describe(target)}")
    bad = (target != ignore_index) & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        value = target[bad][0].item()
        raise ValueError(f"{name} values must be in [0, {num_classes}) or ignore_index={ignore_index}, got {value}")
    return target


def pixel_cross_entropy(
    logits: Tensor,
    target: Tensor,
    weight: Tensor | None = None,
    ignore_index: int = 255,
    reduction: str = "mean",
) -> Tensor:
    """Per-pixel cross-entropy of ``logits`` Tensor[N, C, H, W] against ``target`` Tensor[N, H, W].

    ``loss[n, h, w] = weight[t] * (logsumexp_c logits[n, c, h, w] - logits[n, t, h, w])``
    with ``t = target[n, h, w]``; pixels equal to ``ignore_index`` give 0 and do
    not count. ``reduction``: ``"none"`` -> Tensor[N, H, W], ``"sum"``, or
    ``"mean"`` = sum / (sum of the weights of counted pixels), NaN if none count.
    Same as ``F.cross_entropy(logits, target, weight, ignore_index=..., reduction=...)``
    (tests/segmentation/test_losses.py, incl. gradcheck).
    """
    if not isinstance(logits, Tensor) or logits.dim() != 4 or not logits.is_floating_point():
        raise ValueError(f"logits must be a float Tensor[N, C, H, W], got {_describe(logits)}")
    n, c, h, w = logits.shape
    if not isinstance(target, Tensor) or tuple(target.shape) != (n, h, w):
        raise ValueError(f"target must be Tensor[N, H, W] = Tensor[{n}, {h}, {w}] to match logits, got {_describe(target)}")
    _check_target(target, c, ignore_index)
    if weight is not None and (not isinstance(weight, Tensor) or tuple(weight.shape) != (c,)):
        raise ValueError(f"weight must be None or Tensor[C] = Tensor[{c}], got {_describe(weight)}")
    if reduction not in ("mean", "sum", "none"):
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

    log_probs = logits - torch.logsumexp(logits, dim=1, keepdim=True)  # (N, C, H, W), stable log-softmax
    valid = target != ignore_index  # (N, H, W)
    safe = torch.where(valid, target, torch.zeros_like(target))  # any class id where ignored
    nll = -log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)  # (N, H, W)
    w = weight.to(logits.dtype)[safe] if weight is not None else torch.ones_like(nll)  # (N, H, W)
    w = w * valid
    loss = nll * w  # ignored pixels: 0
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / w.sum()


def class_weights_from_frequency(target: Tensor, num_classes: int, ignore_index: int = 255) -> Tensor:
    """Median-frequency balancing weights (Eigen & Fergus 2015, SegNet): Tensor[num_classes].

    For ``target`` Tensor[N, H, W] (or Tensor[H, W]):
    ``freq_c = (pixels of class c) / (pixels of the images where c is present)``,
    ``weight_c = median(freq over present classes) / freq_c``; classes that never
    occur get weight 0. Ignored pixels count nowhere. Rare classes get weights > 1.
    Pass the result as ``weight=`` to ``pixel_cross_entropy``. Hand-checked in
    tests/segmentation/test_losses.py.
    """
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if not isinstance(target, Tensor) or target.dim() not in (2, 3):
        raise ValueError(f"target must be Tensor[N, H, W] or Tensor[H, W] of class ids, got {_describe(target)}")
    _check_target(target, num_classes, ignore_index)
    target = target.reshape(-1, target.shape[-2] * target.shape[-1]) if target.dim() == 3 else target.reshape(1, -1)
    valid = target != ignore_index  # (N, HW)
    safe = torch.where(valid, target, torch.full_like(target, num_classes))  # ignored -> extra bin
    offsets = torch.arange(len(target), device=target.device).unsqueeze(1) * (num_classes + 1)
    counts = torch.bincount((safe + offsets).flatten(), minlength=len(target) * (num_classes + 1))
    counts = counts.reshape(len(target), num_classes + 1)[:, :num_classes].double()  # (N, C) pixels per image
    image_pixels = valid.sum(1, keepdim=True).double()  # (N, 1)
    present = counts > 0
    class_pixels = counts.sum(0)  # (C,)
    pixels_where_present = (image_pixels * present).sum(0)  # (C,)
    freq = class_pixels / pixels_where_present.clamp(min=1)
    seen = class_pixels > 0
    weights = torch.zeros(num_classes, dtype=torch.float64, device=target.device)
    if bool(seen.any()):
        weights[seen] = torch.quantile(freq[seen], 0.5) / freq[seen]
    return weights.float()
