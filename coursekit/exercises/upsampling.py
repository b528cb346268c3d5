"""Graders for lesson 02 (in-network upsampling): nearest, bilinear, transposed convolution.

Each ``check_*(fn)`` calls the student's function on a few small float64 cases, compares
with torch (the reference the lesson names) and prints exactly one line, ✅ or ❌ with a
hint; it returns True / False and never raises because of the student's code.

* ``check_nearest_upsample(fn)``: ``fn(x, scale_factor)`` with an int ``scale_factor``,
  compared with ``F.interpolate(x, scale_factor=s, mode="nearest")``.
* ``check_bilinear_upsample(fn)``: ``fn(x, size=(H_out, W_out))``, compared with
  ``F.interpolate(x, size, mode="bilinear", align_corners=False)``.
* ``check_conv_transpose2d(fn)``: ``fn(x, weight, stride=s)`` with weight
  Tensor[C_in, C_out, kH, kW], no padding, no bias, compared with ``F.conv_transpose2d``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.exercises.verdict import report, run_student
from coursekit.validators import shape_str


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
