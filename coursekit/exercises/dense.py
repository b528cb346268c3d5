"""Graders for lesson 04 (depth and optical flow).

* ``check_scale_invariant_loss(fn)``: ``fn(pred_log, target_log, lam)`` with Tensor[N, H, W]
  log depths, compared with Eigen's ``1/n Σ d² − λ/n² (Σ d)²`` averaged over images.
* ``check_end_point_error(fn)``: ``fn(flow_pred, flow_true)`` with Tensor[N, 2, H, W],
  compared with ``mean ‖f − f*‖₂`` over all pixels.

One verdict line each (✅ / ❌ with a hint), a bool returned, never an exception
from the student's code.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from coursekit.exercises.verdict import report, run_student


def _scalar(got: object) -> float | None:
    if isinstance(got, Tensor) and got.numel() == 1:
        return float(got.detach().cpu())
    if isinstance(got, float | int):
        return float(got)
    return None


def _reference_si(pred: Tensor, target: Tensor, lam: float) -> float:
    d = (pred - target).flatten(1)  # (N, n)
    n = d.shape[1]
    return float(((d**2).sum(1) / n - lam * d.sum(1) ** 2 / n**2).mean())


def check_scale_invariant_loss(fn: Callable) -> bool:
    """Grade ``fn(pred_log, target_log, lam)``."""
    g = torch.Generator().manual_seed(4)
    for lam in (0.0, 0.5, 1.0):
        pred = torch.randn(3, 5, 6, generator=g, dtype=torch.float64)
        target = torch.randn(3, 5, 6, generator=g, dtype=torch.float64)
        got, error = run_student(fn, pred.clone(), target.clone(), lam)
        if error is not None:
            return report(False, f"lam={lam}: {error}",
                          "read the error message and the line it points to")
        value = _scalar(got)
        if value is None:
            return report(False, f"lam={lam}: expected a scalar (a 0-d Tensor), "
                                 f"got {type(got).__name__}",
                          "reduce over pixels, then average over the images of the batch")
        expected = _reference_si(pred, target, lam)
        if abs(value - expected) > 1e-6 * max(1.0, abs(expected)):
            hint = "d is log(pred) - log(target) per pixel; n counts the pixels of ONE image"
            whole_batch = _reference_si(pred.reshape(1, -1), target.reshape(1, -1), lam)
            if abs(value - whole_batch) < 1e-9:
                hint = ("compute the loss per image (n = H·W) and then average over images, "
                        "not over the whole batch at once")
            elif lam != 0 and abs(value - _reference_si(pred, target, 0.0)) < 1e-9:
                hint = "the second term −λ/n² (Σ d)² is missing"
            return report(False, f"lam={lam}: got {value:.4f}, expected {expected:.4f}", hint)
    # own stream: never touch the global RNG
    pred = torch.randn(2, 4, 4, generator=g, dtype=torch.float64)
    shifted, _ = run_student(fn, pred + 1.7, pred, 1.0)
    if _scalar(shifted) is None or abs(_scalar(shifted)) > 1e-9:
        return report(False, "with λ = 1 a prediction off by a constant log factor must cost 0",
                      "check the sign and the 1/n² of the second term")
    return report(True, "scale-invariant loss for λ = 0, 0.5, 1, "
                        "and exactly scale invariant at λ = 1")


def check_end_point_error(fn: Callable) -> bool:
    """Grade ``fn(flow_pred, flow_true)``."""
    hand_pred = torch.zeros(1, 2, 1, 2, dtype=torch.float64)
    hand_true = torch.tensor([[[[3.0, 0.0]], [[4.0, 0.0]]]], dtype=torch.float64)
    g = torch.Generator().manual_seed(5)
    cases = [("hand case (3, 4) vs 0", hand_pred, hand_true, 2.5)]
    a = torch.randn(2, 2, 5, 7, generator=g, dtype=torch.float64)
    b = torch.randn(2, 2, 5, 7, generator=g, dtype=torch.float64)
    cases.append(("random 2×2×5×7", a, b, float(torch.linalg.vector_norm(a - b, dim=1).mean())))
    for label, p, t, expected in cases:
        got, error = run_student(fn, p.clone(), t.clone())
        if error is not None:
            return report(False, f"{label}: {error}",
                          "read the error message and the line it points to")
        value = _scalar(got)
        if value is None:
            return report(False, f"{label}: expected a scalar, got {type(got).__name__}",
                          "average over all pixels")
        if abs(value - expected) > 1e-6:
            hint = "the error of one pixel is the length sqrt(dx² + dy²) of the difference vector"
            if abs(value - float(((p - t) ** 2).sum(1).mean())) < 1e-9:
                hint = ("take the square root per pixel before averaging (a distance, not a "
                        "squared distance)")
            elif abs(value - float((p - t).abs().mean())) < 1e-9:
                hint = ("combine dx and dy into one Euclidean length per pixel, not an average of "
                        "|dx| and |dy|")
            return report(False, f"{label}: got {value:.4f}, expected {expected:.4f}", hint)
    return report(True, "end-point error = mean Euclidean length of the flow difference")
