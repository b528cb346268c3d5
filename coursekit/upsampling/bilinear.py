"""Bilinear interpolation: ``bilinear_sample`` (the primitive) and ``bilinear_upsample``.

Lecture: *In-network upsampling: bilinear interpolation* — "use two closest
neighbours in x and y to construct linear approximations"::

    f(x, y) = sum_{i, j} f(i, j) * max(0, 1 - |x - j|) * max(0, 1 - |y - i|)

(only the 2×2 pixels around (y, x) have a non-zero weight). "Same algorithm as in
RoI Align": ``coursekit.detection.roi_align`` imports ``bilinear_sample`` from here.

Reduced precision: coordinates, weights and sums are float32 for a float16 / bfloat16
input (float64 for float64), as torch computes them; only the output is rounded to the
input's dtype. In bfloat16 (8 significant bits) the column 300 is not even a number, so
coordinates in the input's dtype would read the wrong pixels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from coursekit.upsampling.nearest import NCHW
from coursekit.validators import (
    describe,
    int_pair,
    number_pair,
    require_dim,
    require_floating,
    shape_str,
)


def bilinear_sample(input: Tensor, y: Tensor, x: Tensor,
                    batch_index: Tensor | None = None) -> Tensor:
    """Read ``input`` at real-valued pixel coordinates with bilinear interpolation.

    ``value = sum_{i, j} f(i, j) * max(0, 1 - |x - j|) * max(0, 1 - |y - i|)`` over the
    four neighbours ``i in {y0, y1}``, ``j in {x0, x1}`` — the lecture's formula, the
    same algorithm as in RoI Align.

    Coordinates are pixel indices (pixel centres at integers). Edges are clamped the
    way ``F.interpolate(align_corners=False)`` and ``torchvision.ops.roi_align`` do it:
    a coordinate < 0 is clamped to 0; ``y0 = floor(y)``, ``y1 = min(y0 + 1, H - 1)``,
    and if ``y0 >= H - 1`` then ``y0 = y1 = H - 1`` and the whole weight goes to that
    row (so the weight of ``y1`` is ``y - y0``, which equals ``max(0, 1 - |y - y1|)``
    away from the edge); the same for x. RoI Align's extra rule ("a sample with
    y < -1 or y > H contributes 0") is not applied here.

    Args:
        input: Tensor[N, C, H, W], floating point.
        y, x: float tensors of row / column coordinates, broadcastable together.
        batch_index: int64 tensor of image indices in ``[0, N)``, broadcastable with
            ``y`` and ``x``; ``None`` means image 0.

    Returns:
        Tensor[*S, C] in ``input``'s dtype, where S is the broadcast shape of ``y``, ``x``
        and ``batch_index``. Coordinates, weights and the sum are at least float32 (a
        float16 / bfloat16 ``input`` is only rounded at the end). Differentiable w.r.t.
        ``input`` (and ``y``, ``x``). Tested in tests/upsampling/test_bilinear.py (against
        ``F.interpolate`` and ``F.grid_sample``).
    """
    require_dim(input, "input", 4, NCHW)
    H, W = input.shape[-2:]
    if H == 0 or W == 0:
        raise ValueError(f"input must have H, W >= 1, got {shape_str(input)}")
    for name, t in (("y", y), ("x", x)):
        require_floating(t, name)
    if batch_index is None:
        batch_index = torch.zeros((), dtype=torch.long, device=input.device)
    elif not isinstance(batch_index, Tensor) or batch_index.dtype != torch.long:
        raise TypeError(f"batch_index must be an int64 Tensor or None, "
                        f"got {describe(batch_index)}")
    try:
        y, x, b = torch.broadcast_tensors(y, x, batch_index)  # (*S,) each
    except RuntimeError as err:
        raise ValueError(f"y, x and batch_index must broadcast together, got shapes "
                         f"{tuple(y.shape)}, {tuple(x.shape)}, "
                         f"{tuple(batch_index.shape)}") from err

    acc = torch.promote_types(input.dtype, torch.float32)  # coordinates and weights
    y = y.to(acc).clamp(0, H - 1)  # clamp to the edge
    x = x.to(acc).clamp(0, W - 1)
    y0 = y.floor().long()
    x0 = x.floor().long()
    y1 = (y0 + 1).clamp(max=H - 1)
    x1 = (x0 + 1).clamp(max=W - 1)
    ly = (y - y0).unsqueeze(-1)  # (*S, 1) weight of row y1: max(0, 1 - |y - y1|), 0 at the edge
    lx = (x - x0).unsqueeze(-1)
    hy, hx = 1 - ly, 1 - lx  # weight of y0, x0: max(0, 1 - |y - y0|)

    # Read the four neighbours from a channels-last copy, one row of C values per pixel:
    # index_select on (N·H·W, C) is much faster (forward and backward) than 4-D fancy indexing.
    # The copy is in acc, so the backward's scatter-add into it also sums in float32.
    C = input.shape[1]
    if C == 0:  # no channel to read (and reshape(-1, 0) below would be ambiguous)
        return input.new_zeros((*y.shape, 0))
    flat = input.permute(0, 2, 3, 1).reshape(-1, C).to(acc)  # (N*H*W, C)
    row0, row1 = (b * H + y0) * W, (b * H + y1) * W  # (*S,) offsets of rows y0, y1

    def pick(offset: Tensor, col: Tensor) -> Tensor:
        values = flat.index_select(0, (offset + col).reshape(-1))  # (prod(S), C)
        return values.view(*y.shape, C)  # (*S, C)

    out = (pick(row0, x0) * (hy * hx) + pick(row0, x1) * (hy * lx)
           + pick(row1, x0) * (ly * hx) + pick(row1, x1) * (ly * lx))  # (*S, C) in acc
    return out.to(input.dtype)


def bilinear_upsample(x: Tensor, size: int | tuple[int, int] | None = None,
                      scale_factor: float | tuple[float, float] | None = None,
                      align_corners: bool = False) -> Tensor:
    """Resize ``x`` by bilinear interpolation.

    Output pixel ``(i, j)`` reads the input at the source point ``(sy_i, sx_j)`` with
    ``src = (dst + 0.5) * ratio - 0.5`` (``align_corners=False``; ``ratio = 1 / scale_factor``
    when ``scale_factor`` is given, else ``in / out``, as torch does), or
    ``src = dst * (in - 1) / (out - 1)`` (``align_corners=True``), and its value is
    ``bilinear_sample(x, sy_i, sx_j)`` (tested). An axis whose size does not change is
    copied as it is, even if ``scale_factor`` is not 1 (``floor(3 * 1.2) = 3``), as torch
    does on the CPU (on CUDA torch does so only when both axes keep their size).

    Computed separably: the weight ``max(0, 1 - |sx - j|) * max(0, 1 - |sy - i|)`` is a
    product, so interpolating along rows then columns is two matrix products,
    ``out = A_y @ x @ A_x.T`` with ``A[o, i] = max(0, 1 - |clamp(src_o, 0, in - 1) - i|)``
    (the lecture's formula, one axis at a time; clamping is the edge rule of
    ``bilinear_sample``). The dense A costs O(in * out) per line — cheap for the
    feature maps of this course, and several times faster on a CPU than gathering
    four neighbours per output pixel.

    Reduced precision: the source points, the matrices A and the products are float32
    for a float16 / bfloat16 ``x`` (torch's accumulation type; float64 for float64), and
    the result is rounded to ``x``'s dtype once, at the end.

    Args:
        x: Tensor[N, C, H, W], floating point.
        size: ``H_out`` or ``(H_out, W_out)``; exactly one of ``size`` / ``scale_factor``.
        scale_factor: float or pair of floats > 0; ``H_out = floor(H * scale_factor)``.
        align_corners: see above.

    Returns:
        Tensor[N, C, H_out, W_out], ``x``'s dtype. Same as ``F.interpolate(x, size,
        scale_factor, mode="bilinear", align_corners=align_corners)`` (forward and
        backward); tested in tests/upsampling/test_bilinear.py and, in float16 /
        bfloat16, tests/upsampling/test_reduced_precision.py.
    """
    (Ho, Wo), ys, xs = _source_coordinates(x, size, scale_factor, align_corners)
    H, W = x.shape[-2:]
    if scale_factor is None and (Ho, Wo) == (H, W):  # the same size: the identity, so a copy
        return x.clone()  # (torch computes it: the same values, but NaN where x is infinite)
    A_y = _interpolation_matrix(ys, H)  # (Ho, H), float32 or float64
    A_x = _interpolation_matrix(xs, W)  # (Wo, W)
    out = A_y @ (x.to(A_x.dtype) @ A_x.t())  # (N, C, H, W) -> (N, C, H, Wo) -> (N, C, Ho, Wo)
    return out.to(x.dtype)


def _interpolation_matrix(src: Tensor, n_in: int) -> Tensor:
    """A[o, i] = max(0, 1 - |clamp(src[o], 0, n_in - 1) - i|): 1-D bilinear weights."""
    src = src.clamp(0, n_in - 1)[:, None]  # (n_out, 1)
    i = torch.arange(n_in, dtype=src.dtype, device=src.device)  # (n_in,)
    return (1 - (src - i).abs()).clamp(min=0)  # (n_out, n_in), rows sum to 1


def bilinear_upsample_loop(x: Tensor, size: int | tuple[int, int] | None = None,
                           scale_factor: float | tuple[float, float] | None = None,
                           align_corners: bool = False) -> Tensor:
    """``bilinear_upsample`` as a literal loop over output pixels (slow; for teaching).

    For every output pixel: find its source point ``(sy, sx)``, clamp it into the image,
    then sum ``f(i, j) * max(0, 1 - |sx - j|) * max(0, 1 - |sy - i|)`` over
    ``i in {floor(sy) - 1, ..., ceil(sy) + 1}``, ``j in {floor(sx) - 1, ..., ceil(sx) + 1}``
    inside the image, exactly as the lecture writes it. Use on small inputs only.
    """
    (Ho, Wo), ys, xs = _source_coordinates(x, size, scale_factor, align_corners)
    N, C, H, W = x.shape
    values = x.to(ys.dtype)  # sums in float32 at least
    out = values.new_zeros(N, C, Ho, Wo)
    for oi, sy in enumerate(ys.clamp(0, H - 1).tolist()):
        for oj, sx in enumerate(xs.clamp(0, W - 1).tolist()):
            for i in range(max(math.floor(sy) - 1, 0), min(math.ceil(sy) + 1, H - 1) + 1):
                for j in range(max(math.floor(sx) - 1, 0), min(math.ceil(sx) + 1, W - 1) + 1):
                    weight = max(0.0, 1 - abs(sx - j)) * max(0.0, 1 - abs(sy - i))
                    out[:, :, oi, oj] += values[:, :, i, j] * weight
    return out.to(x.dtype)


def _source_coordinates(x: Tensor, size, scale_factor, align_corners: bool):
    """Check the arguments; return ((H_out, W_out), rows Tensor[H_out], cols Tensor[W_out]).

    The coordinates are float32 (float64 for a float64 ``x``) and computed with torch's
    arithmetic: ``ratio`` is ``(float)(1.0 / scale_factor)``, ``(float)in / out`` or
    ``(float)(in - 1) / (out - 1)``, then ``(dst + 0.5) * ratio - 0.5`` or ``dst * ratio``.
    """
    in_size, out_size, scales, acc = resize_arguments(x, size, scale_factor, align_corners)
    coords = []
    for n_in, n_out, scale in zip(in_size, out_size, scales, strict=True):
        dst = torch.arange(n_out, dtype=acc, device=x.device)  # exact below 2**24
        if n_out == n_in:  # torch (CPU) leaves an axis whose size does not change as it is
            coords.append(dst)
        elif align_corners:
            ratio = torch.tensor(n_in - 1, dtype=acc) / (n_out - 1) if n_out > 1 else 0.0
            coords.append(dst * ratio)
        else:  # torch uses 1 / scale_factor when it is given, else in / out
            ratio = (torch.tensor(1.0 / scale, dtype=acc) if scale is not None
                     else torch.tensor(n_in, dtype=acc) / n_out)
            coords.append(((dst + 0.5) * ratio - 0.5).clamp(min=0))
    return out_size, coords[0], coords[1]


def resize_arguments(x: Tensor, size, scale_factor, align_corners: bool):
    """Check a resize's arguments as ``F.interpolate`` does; shared by bilinear and bicubic.

    Returns ``(in_size, out_size, scales, acc)``: the input and output (H, W), the scale
    factors (``(None, None)`` when ``size`` is given) and torch's accumulation dtype
    (at least float32).
    """
    require_floating(x, "x", "a floating-point Tensor[N, C, H, W]")
    require_dim(x, "x", 4, NCHW)
    if not isinstance(align_corners, bool):
        raise TypeError(f"align_corners must be a bool, got {align_corners!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError("give exactly one of size and scale_factor, got "
                         + ("both" if size is not None else "neither"))
    in_size = tuple(x.shape[-2:])
    if size is not None:
        out_size = int_pair(size, "size")
        scales = (None, None)
    else:
        scales = number_pair(scale_factor, "scale_factor")
        out_size = tuple(math.floor(n * s) for n, s in zip(in_size, scales, strict=True))
        if any(s <= 0 for s in out_size):
            raise ValueError(f"scale_factor {scale_factor!r} gives an empty output {out_size} "
                             f"for input {in_size}")
    acc = torch.promote_types(x.dtype, torch.float32)  # torch's accumulation type
    return in_size, out_size, scales, acc
