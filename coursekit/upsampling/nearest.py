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

Argument checks come from ``coursekit.validators`` (``require_dim``, ``int_pair``), the
vocabulary every module of the library shares.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.validators import int_pair, require_dim

__all__ = ["bed_of_nails_upsample", "nearest_upsample"]

NCHW = "Tensor[N, C, H, W] (4-D)"  # how every upsampling function names its 4-D input


def _source_index(n_in: int, n_out: int, scale_factor: int | None, like: Tensor) -> Tensor:
    """int64 Tensor[n_out]: the input row (or column) each output row copies, as torch picks it.

    ``src = min(floor(dst * scale), n_in - 1)`` with ``scale = 1 / scale_factor`` when a
    scale factor is given, else ``n_in / n_out``. ``i / s`` is exact on paper but not in
    floating point, and torch rounds its own way: the scale and the product are float32
    numbers (``(float)(1.0 / s)``, ``(float)n_in / n_out``), so for ``s = 41`` the output
    row 41 reads row ``floor(41 * float32(1 / 41)) = floor(0.99999994) = 0``, not 1.
    We reproduce that arithmetic (``F.interpolate(mode="nearest")`` on CUDA for every
    dtype, on the CPU for float32, float16, bfloat16 and uint8: equal for every factor
    1..64 and every size tested). For a float64 tensor on the CPU torch computes in
    float64 (then rounds the product to float32 before the floor), and so do we; its
    CPU kernel is not consistent there (a small tensor whose other axis keeps its size
    may take its float32 path, and its backward always does), so float64 agrees with
    torch's forward for ``(s, s)`` factors and most sizes, not for every shape. An axis
    whose size does not change is copied as it is.
    """
    if n_out == n_in:
        return torch.arange(n_out, device=like.device)
    cpu_double = like.dtype == torch.float64 and like.device.type == "cpu"
    dtype = torch.float64 if cpu_double else torch.float32
    if scale_factor is not None:
        scale = torch.tensor(1.0 / scale_factor, dtype=dtype)  # (float)(1.0 / s)
    else:
        scale = torch.tensor(n_in, dtype=dtype) / n_out  # (float)n_in / n_out, rounded once
    dst = torch.arange(n_out, dtype=dtype, device=like.device)  # exact below 2**24
    src = (dst * scale.to(like.device)).to(torch.float32)  # (n_out,) torch's floorf(...) argument
    return src.floor().long().clamp(max=n_in - 1)


def nearest_upsample(x: Tensor, scale_factor: int | tuple[int, int] | None = None,
                     size: int | tuple[int, int] | None = None) -> Tensor:
    """Copy every pixel into an s×s block: ``out[i, j] = x[floor(i / sh), floor(j / sw)]``.

    Args:
        x: Tensor[N, C, H, W], any dtype (values are only copied).
        scale_factor: int ``s`` or ``(sh, sw)``, positive integers; output
            Tensor[N, C, H * sh, W * sw].
        size: ``H_out`` or ``(H_out, W_out)``, positive ints, instead of ``scale_factor``
            (give exactly one): ``out[i, j] = x[floor(i * H / H_out), floor(j * W / W_out)]``,
            which also shrinks when ``H_out < H``.

    Returns:
        Tensor[N, C, H_out, W_out], same device and dtype as ``x``.

    Same as ``F.interpolate(x, size, scale_factor, mode="nearest")`` with integer
    factors, forward and backward, including torch's float32 rounding of ``i / s``
    (``_source_index``); tested in tests/upsampling/test_nearest.py for every
    scale factor 1..64 and many sizes.
    """
    require_dim(x, "x", 4, NCHW)
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of scale_factor and size, got "
                         + ("both" if size is not None else "neither"))
    H, W = x.shape[-2:]
    if size is not None:
        Ho, Wo = int_pair(size, "size")
        rows = _source_index(H, Ho, None, x)  # (H_out,) source row of each output row
        cols = _source_index(W, Wo, None, x)  # (W_out,)
    else:
        sh, sw = int_pair(scale_factor, "scale_factor")
        rows = _source_index(H, H * sh, sh, x)  # (H*sh,)
        cols = _source_index(W, W * sw, sw, x)  # (W*sw,)
    return x[:, :, rows[:, None], cols[None, :]]  # (N, C, H_out, W_out)


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
    require_dim(x, "x", 4, NCHW)
    sh, sw = int_pair(scale_factor, "scale_factor")
    N, C, H, W = x.shape
    out = x.new_zeros(N, C, H * sh, W * sw)  # (N, C, H*sh, W*sw)
    out[:, :, ::sh, ::sw] = x
    return out
