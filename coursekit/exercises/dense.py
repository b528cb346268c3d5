"""Graders for lesson 04 (depth and optical flow).

* ``check_scale_invariant_loss(fn)``: ``fn(pred_log, target_log, lam)`` with Tensor[N, H, W]
  log depths, compared with Eigen's ``1/n Σ d² − λ/n² (Σ d)²`` averaged over images.
* ``check_end_point_error(fn)``: ``fn(flow_pred, flow_true)`` with Tensor[N, 2, H, W],
  compared with ``mean ‖f − f*‖₂`` over all pixels.
* ``check_scale_invariant_prediction(fn)``: "predict before you run" — ``fn()`` returns
  the losses (λ = 0 and 1) the student derived for a prediction that is the truth times 2
  everywhere, and on the left half only; the grader measures them and compares.
* ``check_warp(fn)``: "find the bug" — ``fn(frame2, flow)`` must be the backward warp
  ``frame2(p + f(p))``, compared with ``coursekit.dense.warp``.

One verdict line each (✅ / ❌ with a hint), a bool returned, never an exception
from the student's code.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor

from coursekit.dense import scale_invariant_loss, warp
from coursekit.exercises.verdict import report, run_student
from coursekit.validators import describe, shape_str


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


# ---- predict before you run: the scale-invariant loss of a scaled prediction ---------------

CASES = ("everywhere", "left half")


def _measured_losses() -> dict[str, dict[float, float]]:
    """D for a prediction = truth × 2 everywhere, and on the left half only, λ = 0 and 1."""
    g = torch.Generator().manual_seed(6)
    truth = torch.randn(1, 8, 8, generator=g, dtype=torch.float64)  # any log depth will do
    everywhere = truth + math.log(2)
    left = truth.clone()
    left[..., :4] += math.log(2)  # columns 0-3 of 8: half of the pixels
    # rounded to 1e-12 so that a float error of -1e-17 prints as 0.0000, not -0.0000
    return {case: {lam: round(float(scale_invariant_loss(pred, truth, lam=lam)), 12) + 0.0
                   for lam in (0.0, 1.0)}
            for case, pred in zip(CASES, (everywhere, left), strict=True)}


def _si_hint(case: str, lam: float, value: float) -> str:
    log2 = math.log(2)
    if case == "everywhere" and lam == 0.0:
        if abs(value - math.log10(2) ** 2) < 1e-3 or abs(value - 1.0) < 1e-3:
            return "the logs are natural logs: d = ln y − ln y*"
        return "λ = 0 is the mean of d²; what is d = log y − log y* where y = 2 y*?"
    if case == "everywhere":
        return ("λ = 1 is the variance of d: with the same d on every pixel, "
                "how far is each d_i from the mean of d?")
    if lam == 0.0:
        if abs(value - log2**2) < 1e-3:
            return "only half of the pixels are off; the other half have d = 0"
        return "λ = 0 is the mean of d² over all pixels: half of them have d = log 2, half d = 0"
    if abs(value) < 1e-3:
        return ("λ = 1 forgives one factor shared by the whole image, not a factor on half of "
                "it: d is log 2 on half of the pixels and 0 on the others — its variance?")
    return "λ = 1: 1/n Σ d² − (1/n Σ d)², the variance of a d that is log 2 or 0 half the time"


def check_scale_invariant_prediction(fn: Callable) -> bool:
    """Grade a prediction ``fn() -> {"everywhere": {0: D, 1: D}, "left half": {0: D, 1: D}}``.

    The scale-invariant loss ``D`` (λ = 0 and λ = 1) of a prediction that is the truth
    times 2 on every pixel, and of one that is the truth times 2 on the left half of the
    image only (natural logs). The grader measures both with ``scale_invariant_loss`` and
    accepts a prediction within 0.005 (two decimals are enough).
    """
    got, error = run_student(fn)
    if error is not None:
        return report(False, f"your prediction: {error}",
                      "return the dict of the four losses you derived")
    measured = _measured_losses()
    expected = ('{"everywhere": {0: D, 1: D}, "left half": {0: D, 1: D}} '
                "with numbers for λ = 0 and λ = 1")
    if not isinstance(got, dict) or set(got) != set(CASES) or not all(
            isinstance(got[c], dict) and {0, 1} <= set(got[c]) for c in CASES):
        return report(False, f"the prediction should be {expected}, got {describe(got)}",
                      "keep the keys of the template and fill in four numbers")
    for case in CASES:
        for lam in (0.0, 1.0):
            value = got[case][lam]
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                return report(False, f"×2 {case}, λ = {lam:g}: expected a number, "
                                     f"got {describe(value)}", "a float such as 0.25")
            truth = measured[case][lam]
            if abs(float(value) - truth) > 0.005:
                return report(False, f"×2 {case}, λ = {lam:g}: you predicted {float(value):.4f}, "
                                     f"measured {truth:.4f}", _si_hint(case, lam, float(value)))
    summary = "; ".join(f"×2 {case}: λ = 0 {measured[case][0.0]:.4f}, λ = 1 "
                        f"{measured[case][1.0]:.4f}" for case in CASES)
    return report(True, f"your predictions match the measured losses ({summary})")


# ---- find the bug: a backward warp ---------------------------------------------------------

def _swap(flow: Tensor) -> Tensor:
    return flow.flip(1)  # (dy, dx) instead of (dx, dy)


def _inside(flow: Tensor) -> Tensor:
    """Tensor[N, 1, H, W] bool: p + flow(p) lies inside the image (no border clamping)."""
    _, _, H, W = flow.shape
    xs = torch.arange(W, dtype=flow.dtype) + flow[:, 0]
    ys = torch.arange(H, dtype=flow.dtype)[:, None] + flow[:, 1]
    return ((xs >= 0) & (xs <= W - 1) & (ys >= 0) & (ys <= H - 1))[:, None]


def check_warp(fn: Callable) -> bool:
    """Grade ``fn(frame2: Tensor[N, C, H, W], flow: Tensor[N, 2, H, W]) -> Tensor[N, C, H, W]``.

    The backward warp ``out(p) = frame2(p + flow(p))`` read bilinearly, positions outside
    the image clamped to the border; compared with ``coursekit.dense.warp``.
    """
    ramp = torch.arange(4, dtype=torch.float64).view(1, 1, 1, 4)  # frame2(x) = x
    right = torch.zeros(1, 2, 1, 4, dtype=torch.float64)
    right[:, 0] = 1.0  # every point moves one pixel right: frame1(x) = frame2(x + 1)
    g = torch.Generator().manual_seed(7)
    frames = torch.rand(2, 3, 6, 7, generator=g, dtype=torch.float64)
    flows = torch.rand(2, 2, 6, 7, generator=g, dtype=torch.float64) * 5 - 2.5
    cases = [("a ramp frame2(x) = x moving right by 1 px", ramp, right),
             ("random frames, flows in [-2.5, 2.5] px", frames, flows)]
    results = []
    for label, frame2, flow in cases:
        expected = warp(frame2, flow)
        got, error = run_student(fn, frame2.clone(), flow.clone())
        if error is not None:
            return report(False, f"{label}: {error}",
                          "read the error message and the line it points to")
        if not isinstance(got, Tensor) or got.shape != expected.shape:
            return report(False, f"{label}: expected {shape_str(expected)}, got {describe(got)}",
                          "one warped frame per input frame, channels kept: Tensor[N, C, H, W]")
        results.append(got.detach().to(torch.float64))
    wrong = [k for k, ((_, frame2, flow), got) in enumerate(zip(cases, results, strict=True))
             if not torch.allclose(got, warp(frame2, flow), atol=1e-6)]
    if wrong:
        label, frame2, flow = cases[wrong[0]]
        got, expected = results[wrong[0]], warp(frame2, flow)
        what = (f"{label}: got [" + ", ".join(f"{v:.2f}" for v in got.flatten()[:4].tolist())
                + ", ...], expected ["
                + ", ".join(f"{v:.2f}" for v in expected.flatten()[:4].tolist()) + ", ...]")
        # name the mistake from the random case: there every kind of mistake shows
        _, frame2, flow = cases[-1]
        got, expected = results[-1], warp(frame2, flow)
        inside = _inside(flow).expand_as(got)
        if torch.allclose(got, warp(frame2, -flow), atol=1e-6):
            hint = ("this reads frame 2 at p − f(p), where the point came from; the point seen "
                    "at p in frame 1 is at p + f(p) in frame 2")
        elif torch.allclose(got, warp(frame2, _swap(flow)), atol=1e-6):
            hint = "flow[:, 0] is dx (along the columns, x) and flow[:, 1] is dy (along the rows)"
        elif torch.allclose(got[inside], expected[inside], atol=1e-6):
            hint = ("right inside the image; a position outside it reads the nearest border "
                    "pixel (clamp it to [0, W − 1] × [0, H − 1])")
        else:
            hint = ("read frame 2 at (x + dx, y + dy) with bilinear interpolation, pixel "
                    "centres at integer coordinates")
        return report(False, what, hint)
    return report(True, "the warp reads frame 2 at p + f(p), same as coursekit.dense.warp")
