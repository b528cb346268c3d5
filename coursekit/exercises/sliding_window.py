"""Graders for lesson 01 (sliding window vs FCN): fully connected -> convolution, and a prediction.

* ``check_fc_to_conv(fn)``: ``fn(linear, in_channels, kernel_size) -> module`` must turn an
  ``nn.Linear`` that reads a flattened ``in_channels × k × k`` block into a module (an
  ``nn.Conv2d``) that gives the same numbers on that block and one answer per window on a
  larger map. Compared with ``coursekit.segmentation.fcn_xs.fc_to_conv`` on random layers,
  then a whole fully connected patch classifier ``Flatten, Linear, ReLU, Linear`` is
  converted with ``fn`` and run once over an image: it must equal the classifier's sliding
  window.
* ``check_saving_prediction(prediction, measured)``: the student's predicted factor by which
  the FCN's saving in multiply-adds grows when the patch side goes from 13 to 25, against the
  ``measured`` factor.

Each prints one verdict line (``report``) and returns ``True`` / ``False``; the student's
exceptions are reported, never raised, and no solution is shown.
Tested in tests/segmentation/test_exercises_sliding_window.py.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit.exercises.verdict import report, run_student
from coursekit.segmentation.fcn_xs import fc_to_conv
from coursekit.validators import describe, shape_str

__all__ = ["check_fc_to_conv", "check_saving_prediction"]

# (in_channels, kernel_size, out_features, bias): a first layer, one without bias, a 1×1 layer
LAYERS = ((3, 5, 16, True), (4, 3, 7, False), (16, 1, 8, True), (2, 4, 6, True))


def _linear(in_channels: int, k: int, out: int, bias: bool) -> nn.Linear:
    torch.manual_seed(1000 * in_channels + 10 * k + out)
    return nn.Linear(in_channels * k * k, out, bias=bias).double()


def _rand(*shape: int) -> Tensor:
    gen = torch.Generator().manual_seed(sum(shape) * 7919 + len(shape))
    return torch.rand(*shape, generator=gen, dtype=torch.float64)


def _apply(module: object, x: Tensor) -> tuple[Tensor | None, str | None]:
    """Run the student's module in float64 on a copy; (output, None) or (None, what went wrong)."""
    if not callable(module):
        return None, f"your function returned {describe(module)}, expected an nn.Conv2d"
    try:
        module = copy.deepcopy(module)
        if isinstance(module, nn.Module):
            module = module.double()
        with torch.no_grad():
            out = module(x)
    except Exception as err:  # noqa: BLE001 - the student's module may raise anything
        return None, f"calling the module you returned raised {type(err).__name__}: {err}"
    if not isinstance(out, Tensor):
        return None, f"the module you returned gave {describe(out)}, expected a Tensor"
    return out, None


def _diagnose(got: Tensor, x: Tensor, linear: nn.Linear, c: int, k: int) -> str:
    """A hint for a converted layer whose numbers are wrong."""
    out = linear.out_features
    w = linear.weight.detach()
    b = None if linear.bias is None else linear.bias.detach()
    wrong = {
        "channels_last": w.view(out, k, k, c).permute(0, 3, 1, 2),
        "transposed": w.view(out, c, k, k).transpose(-1, -2),
        "flipped": w.view(out, c, k, k).flip(-1, -2),
    }
    for name, weight in wrong.items():
        candidate = F.conv2d(x, weight, b)
        if got.shape == candidate.shape and torch.allclose(got, candidate):
            return {
                "channels_last": ("torch.flatten orders a C×k×k block channel first, then "
                                  "rows, then columns: reshape the weight in that order"),
                "transposed": "rows and columns of the kernel are swapped",
                "flipped": ("your kernel is flipped: nn.Conv2d does not flip (it correlates), "
                            "so the weights go in as they are"),
            }[name]
    right = w.view(out, c, k, k)
    if b is not None and torch.allclose(got, F.conv2d(x, right, None)):
        return "the weights are right but the Linear's bias is missing"
    if b is not None and torch.allclose(got, F.conv2d(x, right, None) + 2 * b.view(1, -1, 1, 1)):
        return "the bias is added twice"
    return ("on one C×k×k patch your module must give exactly linear(patch.flatten(1)): "
            "weight row o of the Linear is filter o of the convolution")


def check_fc_to_conv(fn: Callable) -> bool:
    """Grade ``fn(linear, in_channels, kernel_size) -> nn.Conv2d`` (fully connected -> conv)."""
    for c, k, out, bias in LAYERS:
        linear = _linear(c, k, out, bias)
        label = f"Linear({c}*{k}*{k} -> {out}{'' if bias else ', bias=False'}), kernel_size={k}"
        got, error = run_student(fn, copy.deepcopy(linear), c, k)
        if error is not None:
            hint = ("write your code in the exercise cell, run it, then run this check again"
                    if error.startswith("not implemented")
                    else "read the error message and the line it points to")
            return report(False, f"{label}: {error}", hint)
        reference = fc_to_conv(linear, c, k)
        for x in (_rand(2, c, k, k), _rand(1, c, k + 3, k + 5)):
            result, problem = _apply(got, x)
            if problem is not None:
                return report(False, f"{label}: {problem}",
                              f"return an nn.Conv2d({c}, {out}, kernel_size={k}) whose weights "
                              "come from the Linear layer")
            with torch.no_grad():
                expected = reference(x)
            if result.shape != expected.shape:
                return report(False, f"{label}, input {shape_str(x)}: wrong shape (got "
                                     f"{shape_str(result)}, expected {shape_str(expected)})",
                              "a k×k convolution with out_features output channels, no padding "
                              "and stride 1: one output per k×k window")
            if not torch.allclose(result.detach(), expected, rtol=1e-5, atol=1e-6):
                return report(False, f"{label}, input {shape_str(x)}: wrong values",
                              _diagnose(result.detach(), x, linear, c, k))
    return _check_whole_classifier(fn)


def _check_whole_classifier(fn: Callable) -> bool:
    """Convert Flatten, Linear, ReLU, Linear with ``fn``; compare with its sliding window."""
    torch.manual_seed(7)
    c, p, hidden, classes = 3, 5, 12, 4
    fc = nn.Sequential(nn.Flatten(), nn.Linear(c * p * p, hidden), nn.ReLU(),
                       nn.Linear(hidden, classes)).double()
    image = _rand(2, c, 11, 13)
    with torch.no_grad():
        patches = F.unfold(image, p)  # (2, C*P*P, 7*9): one flattened window per position
        windows = fc(patches.transpose(1, 2).reshape(-1, c * p * p))  # (2*63, K)
        expected = windows.view(2, -1, classes).transpose(1, 2).reshape(2, classes, 7, 9)
    what = "the converted classifier Flatten, Linear, ReLU, Linear"
    first, error = run_student(fn, copy.deepcopy(fc[1]), c, p)
    if error is None:
        second, error = run_student(fn, copy.deepcopy(fc[3]), hidden, 1)
    if error is not None:
        return report(False, f"{what}: {error}", "read the error message")
    try:
        net = nn.Sequential(first, nn.ReLU(), second)
    except TypeError as err:
        return report(False, f"{what}: {err}", "return nn.Module objects (nn.Conv2d)")
    got, problem = _apply(net, image)
    if problem is None and got.shape != expected.shape:
        problem = f"wrong shape (got {shape_str(got)}, expected {shape_str(expected)})"
    if problem is None and not torch.allclose(got, expected, rtol=1e-5, atol=1e-6):
        problem = "its score map differs from the fully connected classifier's sliding window"
    if problem is not None:
        return report(False, f"{what} on an image {shape_str(image)}: {problem}",
                      "the first Linear becomes a P×P convolution, the second a 1×1 one")
    return report(True, f"fc_to_conv matches coursekit's on {len(LAYERS)} random layers, and the "
                        "converted patch classifier run once over a whole image equals its "
                        "sliding window")


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError, RuntimeError):
        return None
    return number if math.isfinite(number) else None


def _shown(value: object) -> str:
    """A short value as its repr ('four', True), anything else described (Tensor[2] float32)."""
    text = repr(value)
    return text if isinstance(value, str | int | float | bool) and len(text) <= 40 \
        else describe(value)


def check_saving_prediction(prediction: object, measured: float) -> bool:
    """Grade a predicted growth factor of the FCN's saving (patch side 13 -> 25).

    ``prediction``: a number, or a function of no arguments returning one; ``measured``: the
    factor the lesson measured. A prediction within a factor 1.5 of it passes (the P² rule
    gives (25 / 13)² ≈ 3.7; small-network effects push the measurement a little higher).
    """
    measured_value = _number(measured)
    if measured_value is None or measured_value <= 0:
        raise ValueError(f"measured must be a positive number, got {_shown(measured)}")
    if callable(prediction):
        prediction, error = run_student(prediction)
        if error is not None:
            hint = ("write your prediction in the exercise cell, run it, then run this check "
                    "again" if error.startswith("not implemented") else "return one number")
            return report(False, f"prediction: {error}", hint)
    guess = _number(prediction)
    if guess is None or guess <= 0:
        return report(False, f"prediction: expected a positive number, got {_shown(prediction)}",
                      "return the factor as a number, e.g. 3.0 for 'three times larger'")
    seen = f"you predicted ×{guess:.1f}, measured ×{measured_value:.2f}"
    if abs(math.log(guess / measured_value)) <= math.log(1.5):
        return report(True, f"{seen}: the saving grows like P² (the side of the window squared)")
    if guess < measured_value:
        hint = ("the wasted work is not one number per window: every layer recomputes about "
                "(P - 2l)² outputs per window, so the waste grows with the window's area")
    else:
        hint = ("the sliding window's work per pixel grows like P³ (L ≈ P/2 layers of about P² "
                "outputs each), but the FCN also gets deeper: its work grows like L ≈ P/2")
    return report(False, f"{seen}: not within a factor 1.5", hint)
