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

from coursekit.validators import describe, positive_int, require_integer, require_tensor

__all__ = ["class_weights_from_frequency", "pixel_cross_entropy"]

REDUCTIONS = ("mean", "sum", "none")


def _check_ignore_index(ignore_index: object) -> int:
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
    return ignore_index


def _check_values(target: Tensor, num_classes: int, ignore_index: int) -> None:
    """Raise ``ValueError`` unless every value of ``target`` is a class id or ``ignore_index``."""
    bad = (target != ignore_index) & ((target < 0) | (target >= num_classes))
    if bool(bad.any()):
        value = target[bad][0].item()
        raise ValueError(f"target values must be in [0, {num_classes}) or "
                         f"ignore_index={ignore_index}, got {value}")


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
    ``logits``: float16, bfloat16, float32 or float64 (computed in at least float32,
    returned in ``logits``' dtype); ``target``: int64 class ids; ``weight``: a float
    Tensor[C] or None. Same as ``F.cross_entropy(logits, target, weight,
    ignore_index=..., reduction=...)`` (tests/segmentation/test_losses.py, incl. gradcheck).
    """
    expected = "a float Tensor[N, C, H, W]"
    require_tensor(logits, "logits", expected)
    if logits.dim() != 4:
        raise ValueError(f"logits must be {expected}, got {describe(logits)}")
    if not logits.is_floating_point():
        raise TypeError(f"logits must be {expected} (float16, bfloat16, float32 or float64), "
                        f"got {describe(logits)}")
    n, c, h, w = logits.shape
    require_tensor(target, "target", f"an int64 Tensor[N, H, W] = Tensor[{n}, {h}, {w}]")
    if tuple(target.shape) != (n, h, w):
        raise ValueError(f"target must be Tensor[N, H, W] = Tensor[{n}, {h}, {w}] to match logits, "
                         f"got {describe(target)}")
    if target.dtype != torch.int64:
        raise TypeError(f"target must be an int64 Tensor of class ids, got {describe(target)}")
    ignore_index = _check_ignore_index(ignore_index)
    _check_values(target, c, ignore_index)
    if weight is not None:
        require_tensor(weight, "weight", f"None or a float Tensor[C] = Tensor[{c}]")
        if tuple(weight.shape) != (c,):
            raise ValueError(f"weight must be None or Tensor[C] = Tensor[{c}], "
                             f"got {describe(weight)}")
        if not weight.is_floating_point():
            raise TypeError(f"weight must be a float Tensor[{c}] (float16, bfloat16, float32 or "
                            f"float64), got {describe(weight)}")
    if not isinstance(reduction, str):
        raise TypeError(f"reduction must be a str ('mean', 'sum' or 'none'), "
                        f"got {describe(reduction)}")
    if reduction not in REDUCTIONS:
        raise ValueError(f"reduction must be 'mean', 'sum' or 'none', got {reduction!r}")

    # reduced precision: log-softmax and sums in float32, the result in logits' dtype
    work = logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits
    log_probs = work - torch.logsumexp(work, dim=1, keepdim=True)  # (N, C, H, W), stable
    valid = target != ignore_index  # (N, H, W)
    safe = torch.where(valid, target, torch.zeros_like(target))  # any class id where ignored
    nll = -log_probs.gather(1, safe.unsqueeze(1)).squeeze(1)  # (N, H, W)
    if weight is not None:
        w = weight.to(device=work.device, dtype=work.dtype)[safe]  # (N, H, W)
    else:
        w = torch.ones_like(nll)
    w = w * valid
    loss = nll * w  # ignored pixels: 0
    if reduction == "none":
        return loss.to(logits.dtype)
    if reduction == "sum":
        return loss.sum().to(logits.dtype)
    return (loss.sum() / w.sum()).to(logits.dtype)


def class_weights_from_frequency(
    target: Tensor, num_classes: int, ignore_index: int = 255
) -> Tensor:
    """Median-frequency balancing weights (Eigen & Fergus 2015, SegNet): Tensor[num_classes].

    For ``target`` Tensor[N, H, W] (or Tensor[H, W]) of integer class ids (any integer dtype):
    ``freq_c = (pixels of class c) / (pixels of the images where c is present)``,
    ``weight_c = median(freq over present classes) / freq_c``; classes that never
    occur get weight 0. Ignored pixels count nowhere. Rare classes get weights > 1.
    Returns float32 on ``target``'s device. Pass the result as ``weight=`` to
    ``pixel_cross_entropy``. Hand-checked in tests/segmentation/test_losses.py.
    """
    num_classes = positive_int(num_classes, "num_classes")
    expected = "an integer Tensor[N, H, W] or Tensor[H, W] of class ids"
    require_integer(target, "target", expected)
    if target.dim() not in (2, 3):
        raise ValueError(f"target must be {expected}, got {describe(target)}")
    ignore_index = _check_ignore_index(ignore_index)
    _check_values(target, num_classes, ignore_index)
    hw = target.shape[-2] * target.shape[-1]
    target = target.reshape(-1, hw).long()  # (N, HW)
    valid = target != ignore_index  # (N, HW)
    safe = torch.where(valid, target, torch.full_like(target, num_classes))  # ignored -> extra bin
    offsets = torch.arange(len(target), device=target.device).unsqueeze(1) * (num_classes + 1)
    counts = torch.bincount((safe + offsets).flatten(), minlength=len(target) * (num_classes + 1))
    exact = torch.float32 if target.device.type == "mps" else torch.float64  # MPS has no float64
    counts = counts.reshape(len(target), num_classes + 1)[:, :num_classes].to(exact)  # (N, C)
    image_pixels = valid.sum(1, keepdim=True).to(exact)  # (N, 1)
    present = counts > 0
    class_pixels = counts.sum(0)  # (C,)
    pixels_where_present = (image_pixels * present).sum(0)  # (C,)
    freq = class_pixels / pixels_where_present.clamp(min=1)
    seen = class_pixels > 0
    weights = torch.zeros(num_classes, dtype=exact, device=target.device)
    if bool(seen.any()):
        weights[seen] = torch.quantile(freq[seen], 0.5) / freq[seen]
    return weights.float()
