"""Nearest-neighbour upsampling and "bed of nails": the two parameter-free copies.

Lecture: *In-network upsampling: nearest neighbor*, "copy values from neighboring
cells"::

    1 2        1 1 2 2
    3 4   ->   1 1 2 2        out[i, j] = x[floor(i / s), floor(j / s)]
               3 3 4 4
               3 3 4 4

"Bed of nails" keeps each value once, in the top-left corner of its s×s block, and
puts zeros elsewhere (the unpooling one gets from max unpooling when the maximum
is always in the corner).

The small argument checks shared by the whole ``coursekit.upsampling`` package
(``require_4d``, ``int_pair``) live here, in the first module of the lesson.
"""

from __future__ import annotations

import torch
from torch import Tensor


def shape_str(t: Tensor) -> str:
    """``Tensor[2, 3, 4]`` — how error messages name a tensor's shape."""
    return "Tensor[" + ", ".join(str(s) for s in t.shape) + "]"


def require_4d(t: object, name: str) -> Tensor:
    """Raise unless ``t`` is a 4-D tensor ``Tensor[N, C, H, W]``."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be a Tensor[N, C, H, W], got {type(t).__name__}")
    if t.dim() != 4:
        raise ValueError(f"{name} must be Tensor[N, C, H, W] (4-D), got {shape_str(t)}")
    return t


def int_pair(value: object, name: str, minimum: int = 1) -> tuple[int, int]:
    """``2 -> (2, 2)``, ``(2, 3) -> (2, 3)``; integers ``>= minimum`` only."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in pair):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return pair  # type: ignore[return-value]


def nearest_upsample(x: Tensor, scale_factor: int | tuple[int, int]) -> Tensor:
    """Copy every pixel into an s×s block: ``out[i, j] = x[floor(i / sh), floor(j / sw)]``.

    Args:
        x: Tensor[N, C, H, W].
        scale_factor: int ``s`` or ``(sh, sw)``, positive integers.

    Returns:
        Tensor[N, C, H * sh, W * sw], same device and dtype as ``x``.

    Same as ``F.interpolate(x, scale_factor=s, mode="nearest")`` for integer factors
    (forward and backward); tested in tests/upsampling/test_nearest.py.
    """
    require_4d(x, "x")
    sh, sw = int_pair(scale_factor, "scale_factor")
    H, W = x.shape[-2:]
    rows = torch.arange(H * sh, device=x.device) // sh  # (H*sh,) source row of each output row
    cols = torch.arange(W * sw, device=x.device) // sw  # (W*sw,)
    return x[:, :, rows[:, None], cols[None, :]]  # (N, C, H*sh, W*sw)


def bed_of_nails_upsample(x: Tensor, scale_factor: int | tuple[int, int]) -> Tensor:
    """Each value in the top-left corner of its s×s block, zeros elsewhere ("bed of nails").

    ``out[sh*i, sw*j] = x[i, j]`` and ``out = 0`` at every other position::

        1 2        1 0 2 0
        3 4   ->   0 0 0 0
                   3 0 4 0
                   0 0 0 0

    Args:
        x: Tensor[N, C, H, W].
        scale_factor: int ``s`` or ``(sh, sw)``, positive integers.

    Returns:
        Tensor[N, C, H * sh, W * sw]. Equals ``max_unpool2d`` with every index in the
        top-left corner of its window, and ``conv_transpose2d`` with stride s and an
        s×s filter that is 1 in its top-left corner and 0 elsewhere; tested
        (hand-computed) in tests/upsampling/test_nearest.py.
    """
    require_4d(x, "x")
    sh, sw = int_pair(scale_factor, "scale_factor")
    N, C, H, W = x.shape
    out = x.new_zeros(N, C, H * sh, W * sw)  # (N, C, H*sh, W*sw)
    out[:, :, ::sh, ::sw] = x
    return out
