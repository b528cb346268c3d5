"""Graders for lesson 02 (in-network upsampling): nearest, bilinear, transposed convolution,
checkerboard artefacts.

Each ``check_*(fn)`` calls the student's function on a few small float64 cases, compares
with torch (the reference the lesson names) and prints exactly one line, ✅ or ❌ with a
hint; it returns True / False and never raises because of the student's code.

* ``check_nearest_upsample(fn)``: ``fn(x, scale_factor)`` with an int ``scale_factor``,
  compared with ``F.interpolate(x, scale_factor=s, mode="nearest")``.
* ``check_bilinear_upsample(fn)``: ``fn(x, size=(H_out, W_out))``, compared with
  ``F.interpolate(x, size, mode="bilinear", align_corners=False)``.
* ``check_conv_transpose2d(fn)``: ``fn(x, weight, stride=s)`` with weight
  Tensor[C_in, C_out, kH, kW], no padding, no bias, compared with ``F.conv_transpose2d``.
* ``check_nearest_weight(fn)``: ``fn(channels, scale_factor) -> weight`` such that
  ``F.conv_transpose2d(x, weight, stride=scale_factor)`` is nearest upsampling.
* ``check_overlap_counts(fn)``: ``fn(kernel_size, stride, length)`` -> how many filter copies
  a 1-D transposed convolution (no padding) adds at each output position, compared with
  ``F.conv_transpose1d`` of ones with ones.
* ``check_checkerboard_prediction(prediction, outputs)``: a predicted ``(name, period)`` of
  the upsampler in ``outputs`` (each applied to a constant image) that shows a checkerboard.

Tested in tests/upsampling/test_exercises_upsampling.py.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.exercises.verdict import report, run_student
from coursekit.validators import describe, shape_str


def _difference(got: object, expected: Tensor) -> str | None:
    """None when ``got`` equals ``expected``, else what differs (type, shape or first value)."""
    if not isinstance(got, Tensor):
        return f"your function returned {type(got).__name__}, expected a Tensor"
    if got.shape != expected.shape:
        return f"wrong shape (got {shape_str(got)}, expected {shape_str(expected)})"
    got = got.detach().to("cpu", torch.float64)
    close = torch.isclose(got, expected, rtol=1e-5, atol=1e-6)
    if bool(close.all()):
        return None
    where = [int(i) for i in torch.nonzero(~close)[0]]
    return (f"values differ at {where} (got {got[tuple(where)].item():.4f}, "
            f"expected {expected[tuple(where)].item():.4f}); "
            f"{int((~close).sum())} of {close.numel()} differ")


def _same(got: object, other: Tensor) -> bool:
    return isinstance(got, Tensor) and _difference(got, other) is None


def _grade(fn: Callable, cases: list, what: str, shape_hint: str, diagnose: Callable) -> bool:
    """Run every case ``(label, args, kwargs, expected)``; report the first failure."""
    for label, args, kwargs, expected in cases:
        # the student may write into the inputs: give them copies
        copies = [a.clone() if isinstance(a, Tensor) else a for a in args]
        got, error = run_student(fn, *copies, **kwargs)
        if error is not None:
            if error.startswith("not implemented"):
                hint = "write your code in the exercise cell, run it, then run this check again"
            else:
                hint = "read the error message and the line it points to"
            return report(False, f"{label}: {error}", hint)
        problem = _difference(got, expected)
        if problem is None:
            continue
        if not isinstance(got, Tensor):
            hint = "return the output tensor (not a list or None)"
        elif problem.startswith("wrong shape"):
            hint = shape_hint
        else:
            try:
                hint = diagnose(got.detach().to("cpu", torch.float64), args, kwargs)
            except Exception:  # noqa: BLE001 - a diagnosis must never crash the check
                hint = shape_hint
        return report(False, f"{label}: {problem}", hint)
    return report(True, what)


def _lecture_image() -> Tensor:
    return torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64).view(1, 1, 2, 2)


def _random(*shape: int) -> Tensor:
    gen = torch.Generator().manual_seed(sum(shape) * 7919 + len(shape))
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def check_nearest_upsample(fn: Callable) -> bool:
    """Grade ``fn(x, scale_factor) -> Tensor[N, C, H*s, W*s]`` against F.interpolate (nearest)."""
    cases = []
    for x, s in ((_lecture_image(), 2), (_random(2, 3, 3, 4), 3), (_random(1, 2, 4, 2), 1)):
        expected = F.interpolate(x, scale_factor=s, mode="nearest")
        cases.append((f"x {shape_str(x)}, scale_factor={s}", (x, s), {}, expected))

    def diagnose(got, args, kwargs):
        x, s = args
        nails = torch.zeros_like(got)
        nails[:, :, ::s, ::s] = x
        if _same(got, nails):
            return ("you kept zeros between the copies (that is 'bed of nails'); nearest fills "
                    "the whole s×s block")
        return ("every output pixel copies one input pixel: find which input row and column its "
                "s×s block comes from")

    return _grade(fn, cases, "nearest_upsample equals F.interpolate(mode='nearest') on 3 cases",
                  "each input pixel becomes an s×s block: the output is Tensor[N, C, H * s, W * s]",
                  diagnose)


def check_bilinear_upsample(fn: Callable) -> bool:
    """Grade ``fn(x, size=(H_out, W_out))`` against F.interpolate(bilinear, align_corners=False)."""
    cases = []
    for x, size in ((_lecture_image(), (4, 4)), (_random(2, 3, 5, 7), (9, 13)),
                    (_random(1, 2, 4, 4), (8, 8))):
        expected = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        cases.append((f"x {shape_str(x)}, size={size}", (x,), {"size": size}, expected))

    def diagnose(got, args, kwargs):
        x, size = args[0], kwargs["size"]
        if _same(got, F.interpolate(x, size=size, mode="bilinear", align_corners=True)):
            return ("your output matches align_corners=True (corner pixels pinned together); "
                    "with align_corners=False pixel centres sit at i + 0.5 when you map output "
                    "to input coordinates")
        if _same(got, F.interpolate(x, size=size, mode="nearest")):
            return ("your output is nearest-neighbour: weight the two closest pixels by "
                    "max(0, 1 - distance)")
        expected = F.interpolate(x, size=size, mode="bilinear", align_corners=False)
        wrong = ~torch.isclose(got, expected, rtol=1e-5, atol=1e-6)
        if not wrong[:, :, 1:-1, 1:-1].any():
            return ("only the border is wrong: a source coordinate below 0 is clamped to 0, and "
                    "at the last row/column there is no next neighbour (all the weight goes to "
                    "the last pixel)")
        return ("each output pixel is a weighted sum of its 4 nearest input pixels with weights "
                "max(0, 1 - |x - j|) * max(0, 1 - |y - i|); check how output coordinates map to "
                "input coordinates")

    return _grade(fn, cases,
                  "bilinear_upsample equals F.interpolate(mode='bilinear', align_corners=False) "
                  "on 3 cases",
                  "the output is Tensor[N, C, H_out, W_out] with (H_out, W_out) = size", diagnose)


def _overwrite_conv_transpose(x: Tensor, weight: Tensor, stride: int) -> Tensor:
    """A wrong transposed convolution whose copies overwrite instead of summing (for a hint)."""
    N, _, H, W = x.shape
    _, Co, kH, kW = weight.shape
    out = x.new_zeros(N, Co, (H - 1) * stride + kH, (W - 1) * stride + kW)
    for i in range(H):
        for j in range(W):
            out[:, :, i * stride:i * stride + kH, j * stride:j * stride + kW] = \
                torch.einsum("nc,coab->noab", x[:, :, i, j], weight)
    return out


def check_conv_transpose2d(fn: Callable) -> bool:
    """Grade ``fn(x, weight, stride=s)`` (no padding, no bias) against F.conv_transpose2d."""
    cases = []
    ones = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    for x, weight, s in ((_lecture_image(), ones, 2),
                         (_random(2, 3, 3, 4), _random(3, 3, 3, 3), 2),
                         (_random(1, 2, 3, 3), _random(2, 4, 2, 3), 1),
                         (_random(2, 3, 2, 3), _random(3, 2, 2, 2), 3)):
        expected = F.conv_transpose2d(x, weight, stride=s)
        label = f"x {shape_str(x)}, weight {shape_str(weight)}, stride={s}"
        cases.append((label, (x, weight), {"stride": s}, expected))

    def diagnose(got, args, kwargs):
        x, weight = args
        s = kwargs["stride"]
        if _same(got, F.conv_transpose2d(x, weight.flip(-1, -2), stride=s)):
            return ("your filter copies are flipped: a transposed convolution places the filter "
                    "as it is")
        square = weight.shape[0] == weight.shape[1]  # else swapping the axes cannot run
        if square and _same(got, F.conv_transpose2d(x, weight.transpose(0, 1), stride=s)):
            return "you swapped the channel axes: weight is Tensor[C_in, C_out, kH, kW]"
        if _same(got, _overwrite_conv_transpose(x, weight, s)):
            return ("values differ where copies overlap: the copies are summed at overlaps, "
                    "not overwritten")
        return ("each input value scales a copy of the filter (summed over input channels), "
                "placed stride pixels apart in the output; overlapping copies add up")

    return _grade(fn, cases,
                  "conv_transpose2d equals F.conv_transpose2d on 4 cases (strides 1, 2, 3)",
                  "with stride s and a kH×kW filter the output has (H - 1) * s + kH rows and "
                  "(W - 1) * s + kW columns",
                  diagnose)


# ------------------------------------------------------------------ nearest as a transposed conv
def _weight_problem(weight: object, channels: int) -> str | None:
    if weight is None:
        return "your function returned None (is the `return` missing?), expected the weight Tensor"
    if not isinstance(weight, Tensor):
        return f"your function returned {describe(weight)}, expected the weight Tensor"
    if weight.dim() != 4 or tuple(weight.shape[:2]) != (channels, channels):
        return (f"the weight must be Tensor[C_in, C_out, kH, kW] = Tensor[{channels}, {channels}, "
                f"kH, kW], got {describe(weight)}")
    if not weight.is_floating_point():
        return f"the weight must be a float tensor, got {describe(weight)}"
    return None


def check_nearest_weight(fn: Callable) -> bool:
    """Grade ``fn(channels, scale_factor) -> weight``: the filter with which
    ``F.conv_transpose2d(x, weight, stride=scale_factor)`` is nearest-neighbour upsampling."""
    for channels, s in ((1, 2), (3, 2), (2, 3)):
        x = _random(2, channels, 3, 4)
        expected = F.interpolate(x, scale_factor=s, mode="nearest")
        label = f"channels={channels}, scale_factor={s}"
        weight, error = run_student(fn, channels, s)
        if error is not None:
            hint = ("write your code in the exercise cell, run it, then run this check again"
                    if error.startswith("not implemented")
                    else "read the error message and the line it points to")
            return report(False, f"{label}: {error}", hint)
        problem = _weight_problem(weight, channels)
        if problem is not None:
            return report(False, f"{label}: {problem}",
                          "conv_transpose2d's weight holds one kH×kW filter per (input channel, "
                          "output channel) pair")
        weight = weight.detach().to("cpu", torch.float64)
        got = F.conv_transpose2d(x, weight, stride=s)
        problem = _difference(got, expected)
        if problem is None:
            continue
        what = f"{label}: conv_transpose2d(x, your weight, stride={s}) gives {problem}"
        if problem.startswith("wrong shape"):
            hint = ("with stride s and a k×k filter the output has (H - 1) * s + k rows; "
                    "nearest needs H * s")
        else:
            eye = torch.eye(channels, dtype=torch.float64)[:, :, None, None]
            block = torch.ones(s, s, dtype=torch.float64)
            nails = torch.zeros(s, s, dtype=torch.float64)
            nails[0, 0] = 1
            if bool((weight * (1 - eye)).ne(0).any()):
                hint = ("every output channel sums all input channels: each output channel must "
                        "copy only its own input channel (zero filters off the channel diagonal)")
            elif _same(got, F.conv_transpose2d(x, eye * nails, stride=s)):
                hint = ("that is bed of nails (one copy per block, zeros elsewhere): nearest fills "
                        "the whole s×s block")
            elif weight.shape[-2:] == block.shape and _same(got * s * s, expected):
                hint = ("every output pixel receives exactly one copy, so the copy must carry the "
                        "value itself (weights 1), not an average")
            else:
                hint = ("each input pixel should become an s×s block of its own value: which "
                        "filter, copied at every input pixel s pixels apart, draws that?")
        return report(False, what, hint)
    return report(True, "conv_transpose2d with your weight and stride s is nearest upsampling "
                        "(3 cases)")


# ---------------------------------------------------------------------------- uneven overlap
def overlap_counts_reference(kernel_size: int, stride: int, length: int) -> Tensor:
    """How many filter copies a 1-D transposed convolution (no padding) adds at each output
    position: ``conv_transpose1d`` of ones with a kernel of ones, Tensor[(length - 1) s + k]."""
    ones = torch.ones(1, 1, length, dtype=torch.float64)
    return F.conv_transpose1d(ones, torch.ones(1, 1, kernel_size, dtype=torch.float64),
                              stride=stride)[0, 0]


def check_overlap_counts(fn: Callable) -> bool:
    """Grade ``fn(kernel_size, stride, length)``: filter copies per output position (1-D)."""
    for k, s, n in ((3, 2, 5), (4, 2, 5), (1, 2, 4), (5, 3, 4), (2, 2, 3), (6, 4, 3)):
        label = f"kernel_size={k}, stride={s}, length={n}"
        got, error = run_student(fn, k, s, n)
        if error is not None:
            hint = ("write your code in the exercise cell, run it, then run this check again"
                    if error.startswith("not implemented")
                    else "read the error message and the line it points to")
            return report(False, f"{label}: {error}", hint)
        expected = overlap_counts_reference(k, s, n)
        try:
            counts = torch.as_tensor(got, dtype=torch.float64).flatten()
        except (TypeError, ValueError, RuntimeError):
            return report(False, f"{label}: your function returned {describe(got)}, expected a "
                                 "1-D tensor of counts", "return one count per output position")
        if counts.numel() != expected.numel():
            return report(False, f"{label}: got {counts.numel()} counts, expected "
                                 f"{expected.numel()}",
                          "a transposed convolution without padding has (length - 1) * stride "
                          "+ kernel_size output positions")
        if torch.equal(counts, expected):
            continue
        shown = ", ".join(f"{v:g}" for v in counts.tolist()[:12])
        if bool((counts <= 1).all()):
            hint = "copies can overlap: one position may be covered by several copies"
        elif bool((counts == counts[0]).all()):
            hint = ("not every position receives the same number of copies: look at the ends, "
                    "and at the middle when the stride does not divide the kernel size")
        else:
            hint = ("copy i covers output positions i * stride ... i * stride + kernel_size - 1: "
                    "count, for each position, how many of these ranges contain it")
        return report(False, f"{label}: got [{shown}{', ...' if counts.numel() > 12 else ''}], "
                             "which is not right", hint)
    return report(True, "overlap counts match a transposed convolution of ones on 6 cases")


def _key(name: object) -> str:
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def _interior(t: Tensor, margin: int) -> Tensor:
    t = t.detach().to("cpu", torch.float64)
    return t[..., margin:t.shape[-2] - margin, margin:t.shape[-1] - margin]


def _period(t: Tensor, longest: int = 8) -> int | None:
    """Smallest p such that ``t`` repeats every p pixels along both axes (None if none <= 8)."""
    for p in range(1, longest + 1):
        if p < t.shape[-1] and p < t.shape[-2] and \
                torch.allclose(t[..., p:, :], t[..., :-p, :]) and \
                torch.allclose(t[..., :, p:], t[..., :, :-p]):
            return p
    return None


def check_checkerboard_prediction(prediction: object, outputs: dict, margin: int = 4) -> bool:
    """Grade a prediction ``(name, period)`` of which upsampling shows a checkerboard.

    ``prediction``: a pair, or a function of no arguments returning one; ``outputs``:
    ``{name: Tensor[..., H, W]}``, each upsampler applied to a constant image. Inside a border
    of ``margin`` pixels, an output with ``(max - min) / mean > 1e-6`` has a checkerboard; its
    period is the smallest p with which it repeats along both axes.
    """
    if not isinstance(outputs, dict) or not outputs or \
            not all(isinstance(v, Tensor) and v.dim() >= 2 for v in outputs.values()):
        raise TypeError(f"outputs must be a non-empty dict {{name: Tensor[..., H, W]}}, "
                        f"got {describe(outputs)}")
    if callable(prediction):
        prediction, error = run_student(prediction)
        if error is not None:
            hint = ("write your prediction in the exercise cell, run it, then run this check "
                    "again" if error.startswith("not implemented")
                    else "return a pair (name, period)")
            return report(False, f"prediction: {error}", hint)
    names = ", ".join(repr(n) for n in outputs)
    if not isinstance(prediction, tuple | list) or len(prediction) != 2:
        return report(False, f"prediction: expected a pair (name, period), got "
                             f"{describe(prediction)}", f"e.g. return {next(iter(outputs))!r}, 3")
    name, period = prediction
    keys = {_key(n): n for n in outputs}
    chosen = keys.get(_key(name))
    if chosen is None:
        return report(False, f"prediction: {name!r} is not one of {names}",
                      "name the upsampler exactly as in the experiment")
    measured = {}
    for n, out in outputs.items():
        inner = _interior(out, margin)
        mean = float(inner.mean())
        spread = float(inner.max() - inner.min()) / (abs(mean) if mean else 1.0)
        measured[n] = (spread, _period(inner))
    boards = [n for n, (spread, _) in measured.items() if spread > 1e-6]
    found = ", ".join(f"{n} (period {measured[n][1]})" for n in boards) or "none"
    if chosen not in boards:
        return report(False, f"you predicted {chosen!r}, but it is uniform inside; measured "
                             f"checkerboard: {found}",
                      "count the filter copies that land on each output pixel along one axis: "
                      "they are the same everywhere only when the stride divides the kernel size")
    true_period = measured[chosen][1]
    if isinstance(period, bool) or not isinstance(period, int | float) or period != true_period:
        return report(False, f"{chosen!r} is right, but its pattern repeats every {true_period} "
                             f"pixels, not {period!r}",
                      "the copies start every stride pixels, so the overlap pattern repeats with "
                      "the stride")
    return report(True, f"{chosen!r} is the checkerboard ((max - min) / mean = "
                        f"{measured[chosen][0]:.2f} inside), period {true_period}: its copies "
                        "overlap unevenly")
