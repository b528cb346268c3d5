"""Graders for the video-classification exercises (lesson 11).

* ``check_batch_bytes(fn)`` — derive the memory of a training batch of clips.
* ``check_single_frame_prediction(fn, measured)`` — predict, before running, the accuracy
  of the single-frame CNN on the motion-only classes; compared with the measurement.
* ``check_inflate_weight(fn)`` — inflate a 2D conv weight to 3D (I3D); graded against
  ``coursekit.video.inflate_weight`` and the constant-video identity.

Each prints one verdict line (✅ / ❌ with a hint, never the solution) and returns whether
it passed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F

from coursekit.exercises.verdict import report, run_student
from coursekit.validators import describe, shape_str
from coursekit.video.inflate import inflate_weight


def check_batch_bytes(fn: Callable) -> bool:
    """Grade ``fn(batch, frames, height, width, bytes_per_value)``: the bytes of a batch of
    ``batch`` RGB clips of ``frames`` frames of ``height x width`` pixels."""
    cases = [(1, 16, 112, 112, 1), (32, 8, 32, 32, 4), (8, 16, 112, 112, 4), (3, 5, 7, 11, 2)]
    for n, t, h, w, b in cases:
        expected = n * t * 3 * h * w * b
        result, error = run_student(fn, n, t, h, w, b)
        if error:
            return report(False, "batch_bytes", error)
        if isinstance(result, bool) or not isinstance(result, numbers.Real):
            return report(False, f"return a number of bytes, got {describe(result)}",
                          "multiply the sizes of the batch's dimensions")
        if result == expected:
            continue
        what = f"batch_bytes({n}, {t}, {h}, {w}, {b}) = {result}, expected {expected}"
        if result * 3 == expected:
            hint = "every pixel has 3 values (R, G, B)"
        elif result * b == expected:
            hint = "each value takes bytes_per_value bytes (4 for float32)"
        elif result * n == expected:
            hint = "the batch holds `batch` clips"
        else:
            hint = "a batch is a Tensor[N, T, 3, H, W]: count its values, times their size"
        return report(False, what, hint)
    return report(True, "batch_bytes: N x T x 3 x H x W x bytes per value on every case")


def check_single_frame_prediction(fn: Callable, measured: float, chance: float,
                                  tolerance: float = 0.1) -> bool:
    """Compare ``fn() -> float`` (a predicted accuracy in [0, 1]) with ``measured``.

    ``measured``: the single-frame CNN's accuracy on the motion-only classes;
    ``chance``: one over the number of motion-only classes. Passes within ``tolerance``.
    """
    prediction, error = run_student(fn)
    if error:
        return report(False, "prediction", error)
    if isinstance(prediction, bool) or not isinstance(prediction, numbers.Real) \
            or not 0 <= float(prediction) <= 1 or math.isnan(float(prediction)):
        return report(False, f"predict an accuracy in [0, 1], got {prediction!r}",
                      "e.g. 0.5 for one right answer in two")
    p = float(prediction)
    summary = (f"you predicted {p:.4f}, the single-frame CNN measured {measured:.4f} on the "
               f"motion-only classes (chance {chance:.4f})")
    if abs(p - measured) <= tolerance:
        return report(True, summary)
    if p > measured:
        hint = ("a class and its partner are the same videos played backwards: the set of "
                "frames is the same, so what can an average over frames tell apart?")
    else:
        hint = "it is not below guessing: can it tell anything apart from one frame?"
    return report(False, summary, hint)


def check_inflate_weight(fn: Callable) -> bool:
    """Grade ``fn(weight2d: Tensor[O, I, kh, kw], time_size) -> Tensor[O, I, time_size, kh,
    kw]`` against ``inflate_weight``, and on a constant video against the 2D conv."""
    g = torch.Generator().manual_seed(0)
    for shape, t in (((4, 3, 3, 3), 3), ((2, 5, 1, 1), 5), ((6, 2, 5, 3), 2)):
        w2 = torch.randn(shape, dtype=torch.float64, generator=g)
        expected = inflate_weight(w2, t)
        result, error = run_student(fn, w2.clone(), t)
        if error:
            return report(False, "inflate_weight", error)
        if not isinstance(result, torch.Tensor) or result.shape != expected.shape:
            return report(False, f"inflate_weight(Tensor{list(shape)}, {t}) must be "
                                 f"{shape_str(expected)}, got {shape_str(result)}",
                          "a new time axis goes after the two channel axes (O, I, T, kh, kw)")
        result = result.to(torch.float64)
        if torch.allclose(result, expected, rtol=1e-9, atol=1e-12):
            continue
        image = torch.randn(1, shape[1], 8, 8, dtype=torch.float64, generator=g)
        video = image[:, :, None].expand(-1, -1, t + 2, -1, -1)  # a constant video
        out2d = F.conv2d(image, w2)
        out3d = F.conv3d(video, result)[:, :, 0]
        what = f"inflate_weight(Tensor{list(shape)}, {t}) differs from the I3D initialisation"
        if torch.allclose(out3d, t * out2d, rtol=1e-9, atol=1e-9):
            hint = (f"on a constant video your 3D conv gives {t} x the 2D output: "
                    "divide by the time size")
        elif not torch.allclose(result.sum(2), w2, rtol=1e-9, atol=1e-12):
            hint = "every time slice is the 2D kernel divided by time_size (they sum to it)"
        else:
            hint = "all time slices must be equal: repeat the 2D kernel over time"
        return report(False, what, hint)
    return report(True, "inflate_weight: the I3D initialisation on every case (and a constant "
                        "video gives the 2D output)")
