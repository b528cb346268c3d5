"""Depth estimation as per-pixel regression: the scale-invariant loss and the standard metrics.

A single image does not tell how far away the world is, only its shape: a toy
house up close looks like a real one far away. Eigen et al. (NIPS 2014) train
with a loss that forgives a global scale. With ``d_i = log y_i - log y*_i``
over the n valid pixels::

    D(y, y*) = 1/n Σ d_i²  −  λ/n² (Σ d_i)²

λ = 0 is the plain mean squared log error, λ = 1 is fully scale invariant
(multiplying every prediction by the same factor adds a constant to every
d_i and leaves D unchanged), and the paper trains with λ = 0.5.

Metrics (Eigen et al.; every depth paper reports them): AbsRel = mean |y − y*| / y*,
SqRel = mean (y − y*)² / y*, RMSE, RMSE(log), and the threshold accuracies
δ_k = fraction of pixels with max(y/y*, y*/y) < 1.25^k for k = 1, 2, 3.

Reduced precision: differences, sums and metrics are computed in float32 at least (a
float16 / bfloat16 sum over 4096 pixels would lose most of its digits); the loss comes
back in the inputs' dtype, the metrics as Python floats.

Tested in tests/dense/test_depth.py against a literal loop and hand-computed values, and
in float16 / bfloat16 in tests/dense/test_reduced_precision.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.dense._checks import accumulation_dtype, check_pair
from coursekit.validators import shape_str


def scale_invariant_loss(pred_log: Tensor, target_log: Tensor, mask: Tensor | None = None,
                         lam: float = 0.5) -> Tensor:
    """Eigen's scale-invariant log loss, averaged over the images of a batch.

    Args:
        pred_log: Tensor[N, H, W] (or [H, W]) predicted log depth.
        target_log: same shape, true log depth.
        mask: optional bool Tensor of the same shape; False pixels are ignored.
        lam: λ in [0, 1].
    Returns:
        scalar Tensor: mean over images of ``1/n Σ d² − λ/n² (Σ d)²``, in the inputs' dtype
        (computed in float32 at least).
    """
    if not 0.0 <= float(lam) <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    valid = check_pair(pred_log, target_log, mask, names=("pred_log", "target_log"))
    if pred_log.dim() not in (2, 3):
        raise ValueError(f"pred_log must be Tensor[N, H, W] or Tensor[H, W], "
                         f"got {shape_str(pred_log)}")
    out_dtype = torch.promote_types(pred_log.dtype, target_log.dtype)
    acc = accumulation_dtype(pred_log, target_log)
    if pred_log.dim() == 2:
        pred_log, target_log, valid = pred_log[None], target_log[None], valid[None]
    d = (pred_log.to(acc) - target_log.to(acc)) * valid  # (N, H, W), 0 where ignored
    n = valid.flatten(1).sum(1).clamp(min=1).to(acc)  # (N,)
    sum_d = d.flatten(1).sum(1)
    sum_d2 = (d * d).flatten(1).sum(1)
    return (sum_d2 / n - lam * sum_d**2 / n**2).mean().to(out_dtype)


def scale_invariant_loss_loop(pred_log: Tensor, target_log: Tensor, lam: float = 0.5) -> float:
    """The same formula, one pixel at a time (for reading, not for training)."""
    total = 0.0
    preds = pred_log.reshape(-1, *pred_log.shape[-2:])  # (N, H, W)
    targets = target_log.reshape(-1, *target_log.shape[-2:])
    for p_img, t_img in zip(preds, targets, strict=True):
        ds = [float(p) - float(t) for p, t in zip(p_img.flatten(), t_img.flatten(), strict=True)]
        n = len(ds)
        total += sum(d * d for d in ds) / n - lam * sum(ds) ** 2 / n**2
    return total / preds.shape[0]


def depth_metrics(pred: Tensor, target: Tensor, mask: Tensor | None = None) -> dict[str, float]:
    """AbsRel, SqRel, RMSE, RMSE(log) and δ<1.25, δ<1.25², δ<1.25³ over valid pixels.

    Args:
        pred, target: Tensor[...] of positive depths (same shape).
        mask: optional bool Tensor of the same shape.

    Computed in float32 at least (float64 for float64 inputs).
    """
    valid = check_pair(pred, target, mask)
    if not bool(valid.any()):
        raise ValueError("mask selects no pixel: depth metrics need at least one valid pixel")
    acc = accumulation_dtype(pred, target)
    p, t = pred[valid].to(acc), target[valid].to(acc)  # (P,) each
    if bool((p <= 0).any()) or bool((t <= 0).any()):
        raise ValueError("pred and target must be positive depths on the valid pixels "
                         "(take exp of a log-depth prediction)")
    ratio = torch.maximum(p / t, t / p)
    return {
        "abs_rel": float(((p - t).abs() / t).mean()),
        "sq_rel": float(((p - t) ** 2 / t).mean()),
        "rmse": float(((p - t) ** 2).mean().sqrt()),
        "rmse_log": float(((p.log() - t.log()) ** 2).mean().sqrt()),
        "delta1": float((ratio < 1.25).to(acc).mean()),
        "delta2": float((ratio < 1.25**2).to(acc).mean()),
        "delta3": float((ratio < 1.25**3).to(acc).mean()),
    }
