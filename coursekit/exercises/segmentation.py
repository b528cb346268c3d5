"""Graders for the segmentation lessons (01 sliding window / FCN, 03 FCN and U-Net).

* ``check_receptive_field(fn)``: ``fn(num_layers, kernel_size=3[, stride=1]) -> int``
* ``check_pixel_cross_entropy(fn)``:
  ``fn(logits Tensor[N, C, H, W], target Tensor[N, H, W]) -> scalar``,
  pixels with target 255 ignored
* ``check_mean_iou(fn)``:
  ``fn(pred Tensor[N, H, W], target Tensor[N, H, W], num_classes) -> float``,
  pixels with target 255 ignored, classes absent from both left out
* ``check_boundary_band(fn)``: ``fn(target Tensor[N, H, W], width) -> bool Tensor[N, H, W]``,
  the pixels within ``width`` (square window) of a pixel with another label; 255 ignored
  (= ``boundary_band``)
* ``check_class_weight_prediction(prediction, plain, weighted)``: "predict before you run" —
  ``prediction() -> {"triangle": "up" | "down" | "same", "person": ...}``, the direction
  in which each class's IoU moves when the same short training uses median-frequency
  class weights, compared with the lesson's measured IoUs per class

Each prints one verdict line (``report``) and returns ``True`` / ``False``;
the student's exceptions are reported, never raised, and no solution is shown.
Tested in tests/segmentation/test_exercises_segmentation.py.
"""

from __future__ import annotations

import inspect
import math
import numbers
from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from coursekit.exercises.verdict import report, run_student
from coursekit.segmentation.metrics import boundary_band, mean_iou
from coursekit.validators import describe, shape_str

__all__ = [
    "check_boundary_band",
    "check_class_weight_prediction",
    "check_mean_iou",
    "check_pixel_cross_entropy",
    "check_receptive_field",
]


def _accepts(fn: Callable, name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def _as_float(value: object) -> float | None:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):
        return None


def check_receptive_field(fn: Callable) -> bool:
    """Grade ``fn(num_layers, kernel_size=3, stride=1)``: the receptive field of stacked convs."""
    stages = [("3x3 convolutions", [((L,), {}) for L in (1, 2, 3, 5, 10)],
               "each extra 3x3 layer lets an output pixel see one more pixel on every side")]
    if _accepts(fn, "kernel_size"):
        cases = [((L,), {"kernel_size": k}) for L in (1, 3) for k in (1, 5, 7)]
        stages.append(("other kernel sizes", cases,
                       "a k x k layer adds (k - 1) / 2 pixels on each side, k - 1 in total"))
    if _accepts(fn, "stride"):
        cases = [((L,), {"kernel_size": 3, "stride": s}) for L in (1, 2, 4) for s in (2, 3)]
        stages.append(("strided layers", cases,
                       "after a stride-s layer, one step of the next layer moves s input pixels"))
    for what, cases, hint in stages:
        for args, kwargs in cases:
            got, error = run_student(fn, *args, **kwargs)
            if error:
                return report(False, f"receptive field for {what}: {error}", hint)
            k, s, L = kwargs.get("kernel_size", 3), kwargs.get("stride", 1), args[0]
            expected = 1 + (k - 1) * sum(s**i for i in range(L))
            if _as_float(got) != expected:
                call = ", ".join([str(L)] + [f"{key}={v}" for key, v in kwargs.items()])
                return report(False, f"receptive field for {what}: fn({call}) returned {got!r}, "
                                     "which is not right",
                              hint + "; try drawing a 1-D chain of layers")
    checked = ", ".join(what for what, _, _ in stages)
    return report(True, f"receptive field matches for {checked}")


def _ce_case(
    seed: int, scale: float = 3.0, ignore: float = 0.0
) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, 5, 6, 7, generator=gen, dtype=torch.float64) * scale
    target = torch.randint(0, 5, (2, 6, 7), generator=gen)
    if ignore:
        target[torch.rand(2, 6, 7, generator=gen) < ignore] = 255
    return logits, target


def check_pixel_cross_entropy(fn: Callable) -> bool:
    """Grade ``fn(logits, target)``: mean per-pixel cross-entropy, target 255 ignored.

    The reference is ``F.cross_entropy(logits, target, ignore_index=255)``.
    """
    stages = [
        ("per-pixel cross-entropy", _ce_case(0),
         "per pixel the loss is logsumexp over the classes (dim 1) minus "
         "the true class's logit; then average over all pixels of all images"),
        ("large logits (numerical stability)", _ce_case(1, scale=1000.0),
         "exp(1000) overflows: use "
         "torch.logsumexp or subtract the per-pixel maximum before exponentiating"),
        ("ignored pixels (target 255)", _ce_case(2, ignore=0.3),
         "leave pixels whose target is 255 out of "
         "both the sum and the count of the mean"),
    ]
    for what, (logits, target), hint in stages:
        logits = logits.clone().requires_grad_(True)
        got, error = run_student(fn, logits, target.clone())
        if error:
            return report(False, f"{what}: {error}", hint)
        expected = F.cross_entropy(logits.detach(), target, ignore_index=255)
        if not isinstance(got, torch.Tensor) or got.numel() != 1:
            return report(False, f"{what}: expected a scalar tensor, got {shape_str(got)}",
                          "reduce to one number (the mean)")
        value = float(got.detach())
        if not math.isclose(value, float(expected), rel_tol=1e-5, abs_tol=1e-6):
            return report(False, f"{what}: got {value:.4f}, which is not the right loss", hint)
        if not got.requires_grad:
            return report(False, f"{what}: the value is right but no gradient flows back to the "
                                 "logits",
                          "stay in torch operations (no .item(), numpy or torch.no_grad) so "
                          "training can backpropagate")
    return report(True, "per-pixel cross-entropy matches F.cross_entropy "
                        "(incl. large logits and ignored pixels)")


def _iou_case(
    seed: int, num_classes: int, ignore: float = 0.0, absent: tuple[int, ...] = ()
):
    gen = torch.Generator().manual_seed(seed)
    present = torch.tensor([c for c in range(num_classes) if c not in absent])
    target = present[torch.randint(0, len(present), (3, 8, 8), generator=gen)]
    pred = target.clone()
    flip = torch.rand(3, 8, 8, generator=gen) < 0.4
    pred[flip] = present[torch.randint(0, len(present), (int(flip.sum()),), generator=gen)]
    if ignore:
        target[torch.rand(3, 8, 8, generator=gen) < ignore] = 255
    return pred, target, num_classes


def check_mean_iou(fn: Callable) -> bool:
    """Grade ``fn(pred, target, num_classes)``: mIoU over the present classes, 255 ignored."""
    stages = [
        ("every class present", _iou_case(0, 4),
         "for each class IoU = TP / (TP + FP + FN) with boolean masks "
         "pred == c and target == c; mIoU is the mean of the per-class IoUs (not of pixels)"),
        ("a class absent from pred and target", _iou_case(1, 5, absent=(2,)),
         "a class that is in neither "
         "pred nor target has IoU 0/0: leave it out of the mean instead of counting 0 or NaN"),
        ("ignored pixels (target 255)", _iou_case(2, 4, ignore=0.3),
         "pixels whose target is 255 count "
         "nowhere: not as true positives, not as false positives of the predicted class"),
    ]
    for what, (pred, target, num_classes), hint in stages:
        got, error = run_student(fn, pred.clone(), target.clone(), num_classes)
        if error:
            return report(False, f"{what}: {error}", hint)
        value = _as_float(got)
        if value is None:
            return report(False, f"{what}: expected a number, got {type(got).__name__}",
                          "return one float, the mean IoU")
        expected = mean_iou(pred, target, num_classes)
        if not math.isclose(value, expected, rel_tol=1e-6, abs_tol=1e-9):
            return report(False, f"{what}: got {value:.4f}, which is not the right mIoU", hint)
    return report(True, "mean IoU matches (incl. absent classes and ignored pixels)")


def _band_case(seed: int, ignore: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    target = torch.zeros(2, 10, 12, dtype=torch.int64)
    target[:, 5:] = 1  # a horizontal edge
    for n in range(2):  # a rectangle of another class somewhere
        y, x = torch.randint(1, 5, (2,), generator=gen).tolist()
        target[n, y:y + 4, x:x + 5] = 2 + n
    target[:, 2:9, 10] = 4  # a 1-pixel-thin line, like a stick figure's limb
    target[:, 8, 2] = 5  # a 1-pixel speck
    if ignore:
        target[torch.rand(2, 10, 12, generator=gen) < ignore] = 255
    return target


def check_boundary_band(fn: Callable) -> bool:
    """Grade ``fn(target, width)``: bool mask of the pixels within ``width`` of a label edge.

    The reference is ``boundary_band``.
    """
    stages = [
        ("width 1", _band_case(0), (1,),
         "a pixel is in the band when one of its 8 neighbours (diagonals too) "
         "has another label; both sides of an edge are marked, the image border is not an edge"),
        ("wider bands (width 2 and 3)", _band_case(1), (2, 3),
         "with width w look at the whole (2w + 1) x (2w + 1) "
         "window around the pixel, not only at the pixels exactly w away"),
        ("ignored pixels (target 255)", _band_case(2, ignore=0.2), (1, 2),
         "a pixel labelled 255 is never in "
         "the band, and a 255 neighbour is not 'another label' (pad the image with 255 too)"),
    ]
    for what, target, widths, hint in stages:
        for width in widths:
            got, error = run_student(fn, target.clone(), width)
            if error:
                return report(False, f"{what}: {error}", hint)
            if not isinstance(got, torch.Tensor) or tuple(got.shape) != tuple(target.shape):
                return report(False, f"{what}: expected a {shape_str(target)} like target, "
                                     f"got {shape_str(got)}",
                              "return one True/False per pixel")
            if got.is_floating_point() and not bool(((got == 0) | (got == 1)).all()):
                return report(False, f"{what}: expected True/False per pixel, got other values",
                              "return a bool mask")
            expected = boundary_band(target, width)
            wrong = int((got.bool() != expected).sum())
            if wrong:
                return report(False, f"{what}: width {width}: {wrong} of {target.numel()} pixels "
                                     "are wrong", hint)
    return report(True, "boundary band matches for widths 1, 2, 3 "
                        "(incl. the image border and ignored pixels)")


# ---- predict before you run: median-frequency class weights in a short training ----------

CLASS_NAMES = ("sky", "grass", "water", "wall", "circle", "square", "triangle", "person")
DIRECTIONS = ("up", "down", "same")
SAME_WITHIN = 0.02  # an IoU change smaller than this is "same"


def _iou_list(values: object, name: str) -> list[float]:
    """IoU per ShapesWorld class (Tensor[8] or a sequence of 8 numbers) as floats."""
    expected = f"the IoU per class, a Tensor[{len(CLASS_NAMES)}] or {len(CLASS_NAMES)} numbers"
    if isinstance(values, torch.Tensor):
        if values.dim() != 1 or values.numel() != len(CLASS_NAMES) or values.is_complex():
            raise ValueError(f"{name} must be {expected}, got {describe(values)}")
        values = values.tolist()
    elif not isinstance(values, Sequence) or isinstance(values, str):
        raise TypeError(f"{name} must be {expected}, got {describe(values)}")
    if len(values) != len(CLASS_NAMES):
        raise ValueError(f"{name} must be {expected}, got {len(values)} values")
    out = []
    for v in values:
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name} must be {expected}, got an element {describe(v)}")
        out.append(float(v))
    return out


def _direction(before: float, after: float) -> str:
    if math.isnan(before) or math.isnan(after) or abs(after - before) < SAME_WITHIN:
        return "same"
    return "up" if after > before else "down"


def _weight_hint(name: str, measured: str) -> str:
    if measured == "up" and name == "person":
        return ("a weight is relative, not absolute: person's weight is below 1, but sky's and "
                "grass's are far smaller, so in the weighted loss a person pixel counts several "
                "times a grass pixel instead of the same")
    if measured == "up":
        return ("in a short training the plain loss is mostly sky and grass, so a rare class "
                "is learned last; the weights make each of its pixels count more than a "
                "common class's")
    if measured == "down":
        return ("a heavier class is also predicted more often: more of its true pixels are "
                "found, but the extra false positives count in IoU's denominator too")
    return ("the change is smaller than 0.02: the class was either learned equally well with "
            "both losses or not at all with either")


def check_class_weight_prediction(prediction: object, plain: object, weighted: object) -> bool:
    """Grade a "predict before you run": which way do triangle and person IoU move?

    ``prediction``: a function of no arguments (or its result) returning
    ``{"triangle": d, "person": d}`` with each ``d`` one of ``"up"``, ``"down"``, ``"same"``;
    ``plain`` and ``weighted``: the measured IoU per ShapesWorld class (Tensor[8] or 8
    numbers, class order ``CLASS_NAMES``) after the same short training without and with
    median-frequency class weights. A change smaller than 0.02 counts as ``"same"``.
    Bad ``plain`` / ``weighted`` (the lesson's measurement) raise; a bad prediction is
    reported.
    """
    before, after = _iou_list(plain, "plain"), _iou_list(weighted, "weighted")
    if callable(prediction):
        prediction, error = run_student(prediction)
        if error is not None:
            return report(False, f"your prediction: {error}",
                          'return a dict such as {"triangle": "...", "person": "..."} with '
                          '"up", "down" or "same" for each class')
    asked = ("triangle", "person")
    template = '{"triangle": "up" | "down" | "same", "person": "up" | "down" | "same"}'
    if not isinstance(prediction, dict):
        return report(False, f"the prediction should be {template}, got {describe(prediction)}",
                      "one entry for each of the two classes")
    missing = [name for name in asked if name not in prediction]
    if missing:
        return report(False, f"the prediction has no entry for {', '.join(map(repr, missing))}",
                      f"fill in the template {template}")
    summary = []
    for name in asked:
        guess = prediction[name]
        if not isinstance(guess, str) or guess.strip().lower() not in DIRECTIONS:
            shown = repr(guess) if isinstance(guess, str) and len(guess) <= 20 else describe(guess)
            return report(False, f"{name}: expected 'up', 'down' or 'same', got {shown}",
                          "one of the three words, as a str")
        guess = guess.strip().lower()
        c = CLASS_NAMES.index(name)
        measured = _direction(before[c], after[c])
        seen = f"{name} IoU {before[c]:.2f} -> {after[c]:.2f} ({measured})"
        if guess != measured:
            return report(False, f"you predicted {name} {guess}, measured {seen}",
                          _weight_hint(name, measured))
        summary.append(seen)
    return report(True, f"your prediction matches the measurement: {'; '.join(summary)}")
