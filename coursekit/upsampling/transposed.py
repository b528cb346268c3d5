"""Transposed convolution: learnable upsampling.

Lecture: *Learnable upsampling* — a convolution with stride 2 is "learnable
downsampling"; can we use stride < 1 for learnable upsampling? A 3×3 convolution
transpose with stride 2 maps a 2×2 input to a 4×4 (5×5 before cropping) output:

* the output has copies of the filter weighted by the input,
* stride 2: move 2 pixels in the output for each pixel in the input,
* sum at overlaps.

It is exactly the gradient of a strided convolution with respect to its input
(tests/upsampling/test_transposed.py checks it with ``torch.autograd.grad``), which
is why it has many names:

* deconvolution
* upconvolution
* fractionally strided convolution
* backward strided convolution
* **transposed convolution** (the convolution's matrix, transposed)
"""

from __future__ import annotations

from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.upsampling.nearest import NCHW
from coursekit.validators import describe, int_pair, require_dim, require_floating, shape_str


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                     output_padding: int | tuple[int, int] = 0) -> Tensor:
    """Transposed convolution: sum of filter copies weighted by the input, then crop.

    ``full[n, o, i*sh + a, j*sw + b] += sum_c x[n, c, i, j] * weight[c, o, a, b]`` for every
    input position ``(i, j)``; the output is ``full`` with ``padding`` rows/columns cropped
    from each side, plus ``bias[o]``. Output size
    ``H_out = (H - 1) * sh - 2 * ph + kH + oph`` (and the same for W).

    One matrix product gives every weighted copy, ``copies[n, o, a, b, i, j]``; the copies
    are then added into the output ("sum at overlaps"): tap by tap on a strided grid for
    a small filter, in ``ceil(kH / sh) * ceil(kW / sw)`` shifted blocks for a large one (4
    additions for FCN's 64×64 kernel at stride 32). A loop over the filter, not over pixels.

    Args:
        x: Tensor[N, C_in, H, W], floating point.
        weight: Tensor[C_in, C_out, kH, kW] (the layout of ``nn.ConvTranspose2d.weight``),
            same dtype and device as ``x``.
        bias: Tensor[C_out] or None.
        stride: int or pair, >= 1.
        padding: int or pair, >= 0: how much to crop from each side of the full output.
        output_padding: int or pair, >= 0 and smaller than stride: extra rows/columns at
            the bottom/right (to reach an exact size when the forward conv rounded down).

    Returns:
        Tensor[N, C_out, H_out, W_out] in ``x``'s dtype; products and sums are float32 for a
        float16 / bfloat16 input (rounded once at the end, as torch accumulates). Same as
        ``F.conv_transpose2d`` with groups=1, dilation=1 (forward and backward); tested in
        tests/upsampling/test_transposed.py and test_reduced_precision.py.
    """
    (sh, sw), (ph, pw), (Hf, Wf) = _check(x, weight, bias, stride, padding, output_padding)
    N, Ci, H, W = x.shape
    _, Co, kH, kW = weight.shape
    acc = torch.promote_types(x.dtype, torch.float32)  # accumulate in float32 at least
    # every weighted copy at once: copies[n, o, a, b, i, j] = sum_c x[n, c, i, j] * w[c, o, a, b]
    copies = weight.to(acc).reshape(Ci, Co * kH * kW).t() @ x.to(acc).reshape(N, Ci, H * W)
    copies = copies.view(N, Co, kH, kW, H, W)  # (N, Co, kH, kW, H, W)
    if kH * kW <= 16:  # small filter: add each tap (a, b) of all copies on its strided grid
        full = x.new_zeros(N, Co, Hf, Wf, dtype=acc)  # (N, Co, Hf, Wf)
        for a in range(kH):  # tap (a, b) of copy (i, j) lands on (i*sh + a, j*sw + b)
            rows = slice(a, a + (H - 1) * sh + 1, sh)
            for b in range(kW):
                full[:, :, rows, b:b + (W - 1) * sw + 1:sw] += copies[:, :, a, b]
    else:  # large filter (FCN's 64x64): few shifted blocks instead of kH * kW additions
        full = _add_blocks(copies, sh, sw, Hf, Wf)
    out = full[:, :, ph:Hf - ph, pw:Wf - pw]  # crop padding: (N, Co, H_out, W_out)
    if bias is not None:
        out = out + bias.to(acc).view(1, Co, 1, 1)
    return out.to(x.dtype).contiguous()


def _add_blocks(copies: Tensor, sh: int, sw: int, Hf: int, Wf: int) -> Tensor:
    """Sum the weighted copies into the full output in ceil(kH/sh) * ceil(kW/sw) blocks.

    Tap ``a = m * sh + r`` of copy ``i`` lands on row ``(i + m) * sh + r``. With the taps
    padded to whole strides, all ``sh × sw`` taps of all copies for one block shift
    ``(m_a, m_b)`` land on one contiguous block of the output viewed as
    (rows of strides, sh, columns of strides, sw).
    """
    N, Co, kH, kW, H, W = copies.shape
    Ma, Mb = -(-kH // sh), -(-kW // sw)
    copies = F.pad(copies, (0, 0, 0, 0, 0, Mb * sw - kW, 0, Ma * sh - kH))  # (.., Ma sh, Mb sw, ..)
    copies = copies.view(N, Co, Ma, sh, Mb, sw, H, W)
    Rh, Rw = max(H + Ma - 1, -(-Hf // sh)), max(W + Mb - 1, -(-Wf // sw))  # room for output_padding
    full = copies.new_zeros(N, Co, Rh, sh, Rw, sw)  # the full output, strided view
    for ma in range(Ma):  # sum at overlaps: copies shifted by ma rows and mb columns of strides
        for mb in range(Mb):
            block = copies[:, :, ma, :, mb].permute(0, 1, 4, 2, 5, 3)  # (N, Co, H, sh, W, sw)
            full[:, :, ma:ma + H, :, mb:mb + W, :] += block
    return full.view(N, Co, Rh * sh, Rw * sw)[:, :, :Hf, :Wf]  # (N, Co, Hf, Wf)


def conv_transpose2d_steps(
    x: Tensor, weight: Tensor, stride: int | tuple[int, int] = 1,
) -> Iterator[tuple[tuple[int, int], Tensor, Tensor]]:
    """Yield the transposed convolution one input position at a time (for a slider widget).

    For each input position ``(i, j)`` in row-major order yields
    ``((i, j), copy, running)``: ``copy`` = Tensor[N, C_out, kH, kW], the filter weighted by
    ``x[:, :, i, j]``, and ``running`` = Tensor[N, C_out, H_full, W_full] (a fresh tensor),
    the output after adding that copy at ``(i * sh, j * sw)``. No padding, no bias:
    the last ``running`` is ``conv_transpose2d(x, weight, stride=stride)``.
    """
    (sh, sw), _, (Hf, Wf) = _check(x, weight, None, stride, 0, 0)
    N, Ci, H, W = x.shape
    _, Co, kH, kW = weight.shape
    acc = torch.promote_types(x.dtype, torch.float32)  # sums in float32 at least
    xs, ws = x.to(acc), weight.to(acc)
    running = xs.new_zeros(N, Co, Hf, Wf)
    for i in range(H):
        for j in range(W):
            copy = torch.einsum("nc,coab->noab", xs[:, :, i, j], ws)  # (N, Co, kH, kW)
            running = running.clone()
            running[:, :, i * sh:i * sh + kH, j * sw:j * sw + kW] += copy
            yield (i, j), copy.to(x.dtype), running.to(x.dtype)


def conv_transpose2d_loop(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                          stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                          output_padding: int | tuple[int, int] = 0) -> Tensor:
    """``conv_transpose2d`` as a literal loop over input positions (slow; for teaching).

    For each input pixel, add the filter weighted by that pixel's values at
    ``(i * stride, j * stride)`` in the output; crop ``padding``; add the bias.
    """
    (sh, sw), (ph, pw), (Hf, Wf) = _check(x, weight, bias, stride, padding, output_padding)
    N, Ci, H, W = x.shape
    _, Co, kH, kW = weight.shape
    acc = torch.promote_types(x.dtype, torch.float32)  # sums in float32 at least
    xs, ws = x.to(acc), weight.to(acc)
    full = xs.new_zeros(N, Co, Hf, Wf)
    for i in range(H):
        for j in range(W):
            copy = torch.einsum("nc,coab->noab", xs[:, :, i, j], ws)  # (N, Co, kH, kW)
            full[:, :, i * sh:i * sh + kH, j * sw:j * sw + kW] += copy
    out = full[:, :, ph:Hf - ph, pw:Wf - pw]
    out = out if bias is None else out + bias.to(acc).view(1, Co, 1, 1)
    return out.to(x.dtype)


def _check(x, weight, bias, stride, padding, output_padding):
    """Validate; return (stride, padding, full uncropped output size)."""
    require_floating(x, "x", "a floating-point Tensor[N, C_in, H, W]")
    require_dim(x, "x", 4, NCHW)
    expected = f"Tensor[C_in={x.shape[1]}, C_out, kH, kW] (C_in = x.shape[1] for x {shape_str(x)})"
    if not isinstance(weight, Tensor):
        raise TypeError(f"weight must be {expected}, got {describe(weight)}")
    if weight.dim() != 4 or weight.shape[0] != x.shape[1] or min(weight.shape[2:]) < 1:
        raise ValueError(f"weight must be {expected}, got {shape_str(weight)}")
    if weight.dtype != x.dtype or weight.device != x.device:
        raise TypeError(f"weight must have the dtype and device of x ({x.dtype}, {x.device}), "
                        f"got ({weight.dtype}, {weight.device})")
    Co = weight.shape[1]
    if bias is not None and not isinstance(bias, Tensor):
        raise TypeError(f"bias must be Tensor[C_out={Co}] or None, got {describe(bias)}")
    if bias is not None and tuple(bias.shape) != (Co,):
        raise ValueError(f"bias must be Tensor[C_out={Co}] or None, got {shape_str(bias)}")
    sh, sw = int_pair(stride, "stride", minimum=1)
    ph, pw = int_pair(padding, "padding", minimum=0)
    oph, opw = int_pair(output_padding, "output_padding", minimum=0)
    if oph >= sh or opw >= sw:
        raise ValueError(f"output_padding must be smaller than stride, got "
                         f"output_padding={output_padding!r} and stride={stride!r}")
    kH, kW = weight.shape[-2:]
    H, W = x.shape[-2:]
    Hf, Wf = (H - 1) * sh + kH + oph, (W - 1) * sw + kW + opw
    if Hf - 2 * ph <= 0 or Wf - 2 * pw <= 0:
        raise ValueError(f"padding={padding!r} crops the whole output: (H - 1) * stride "
                         f"- 2 * padding + kH + output_padding = {(Hf - 2 * ph, Wf - 2 * pw)} "
                         f"for x {shape_str(x)} and weight {shape_str(weight)}")
    return (sh, sw), (ph, pw), (Hf, Wf)
