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
from torch import Tensor

from coursekit.upsampling.nearest import int_pair, require_4d, shape_str


def conv_transpose2d(x: Tensor, weight: Tensor, bias: Tensor | None = None,
                     stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                     output_padding: int | tuple[int, int] = 0) -> Tensor:
    """Transposed convolution: sum of filter copies weighted by the input, then crop.

    ``full[n, o, i*sh + a, j*sw + b] += sum_c x[n, c, i, j] * weight[c, o, a, b]`` for every
    input position ``(i, j)``; the output is ``full`` with ``padding`` rows/columns cropped
    from each side, plus ``bias[o]``. Output size
    ``H_out = (H - 1) * sh - 2 * ph + kH + oph`` (and the same for W).

    Args:
        x: Tensor[N, C_in, H, W].
        weight: Tensor[C_in, C_out, kH, kW] (the layout of ``nn.ConvTranspose2d.weight``).
        bias: Tensor[C_out] or None.
        stride: int or pair, >= 1.
        padding: int or pair, >= 0: how much to crop from each side of the full output.
        output_padding: int or pair, >= 0 and smaller than stride: extra rows/columns at
            the bottom/right (to reach an exact size when the forward conv rounded down).

    Returns:
        Tensor[N, C_out, H_out, W_out]. Same as ``F.conv_transpose2d`` with groups=1,
        dilation=1 (forward and backward); tested in tests/upsampling/test_transposed.py.
    """
    (sh, sw), (ph, pw), (Hf, Wf) = _check(x, weight, bias, stride, padding, output_padding)
    N, Ci, H, W = x.shape
    _, Co, kH, kW = weight.shape
    # every weighted copy at once: copies[n, o, a, b, i, j] = sum_c x[n, c, i, j] * weight[c, o, a, b]
    copies = torch.einsum("nchw,coab->noabhw", x, weight)  # (N, Co, kH, kW, H, W)
    # tap (a, b) of copy (i, j) lands on (i*sh + a, j*sw + b) of the full output: sum at overlaps
    rows = torch.arange(kH, device=x.device)[:, None, None, None] \
        + sh * torch.arange(H, device=x.device)[:, None]  # (kH, 1, H, 1)
    cols = torch.arange(kW, device=x.device)[:, None, None] + sw * torch.arange(W, device=x.device)  # (kW, 1, W)
    where = (rows * Wf + cols).reshape(-1)  # (kH*kW*H*W,) flat positions in the full output
    full = x.new_zeros(N, Co, Hf * Wf).index_add(2, where, copies.reshape(N, Co, -1))  # (N, Co, Hf*Wf)
    full = full.view(N, Co, Hf, Wf)
    out = full[:, :, ph:Hf - ph, pw:Wf - pw]  # crop padding: (N, Co, H_out, W_out)
    return out.contiguous() if bias is None else out + bias.view(1, Co, 1, 1)


def conv_transpose2d_steps(x: Tensor, weight: Tensor,
                           stride: int | tuple[int, int] = 1) -> Iterator[tuple[tuple[int, int], Tensor, Tensor]]:
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
    running = x.new_zeros(N, Co, Hf, Wf)
    for i in range(H):
        for j in range(W):
            copy = torch.einsum("nc,coab->noab", x[:, :, i, j], weight)  # (N, Co, kH, kW)
            running = running.clone()
            running[:, :, i * sh:i * sh + kH, j * sw:j * sw + kW] += copy
            yield (i, j), copy, running


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
    full = x.new_zeros(N, Co, Hf, Wf)
    for i in range(H):
        for j in range(W):
            copy = torch.einsum("nc,coab->noab", x[:, :, i, j], weight)  # (N, Co, kH, kW)
            full[:, :, i * sh:i * sh + kH, j * sw:j * sw + kW] += copy
    out = full[:, :, ph:Hf - ph, pw:Wf - pw]
    return out if bias is None else out + bias.view(1, Co, 1, 1)


def _check(x, weight, bias, stride, padding, output_padding):
    """Validate; return (stride, padding, full uncropped output size)."""
    require_4d(x, "x")
    if not isinstance(weight, Tensor) or weight.dim() != 4 or weight.shape[0] != x.shape[1] \
            or min(weight.shape[2:]) < 1:
        got = shape_str(weight) if isinstance(weight, Tensor) else type(weight).__name__
        raise ValueError(f"weight must be Tensor[C_in={x.shape[1]}, C_out, kH, kW] (C_in = x.shape[1] "
                         f"for x {shape_str(x)}), got {got}")
    if weight.dtype != x.dtype or weight.device != x.device:
        raise TypeError(f"weight must have the dtype and device of x ({x.dtype}, {x.device}), "
                        f"got ({weight.dtype}, {weight.device})")
    Co = weight.shape[1]
    if bias is not None and (not isinstance(bias, Tensor) or tuple(bias.shape) != (Co,)):
        got = shape_str(bias) if isinstance(bias, Tensor) else type(bias).__name__
        raise ValueError(f"bias must be Tensor[C_out={Co}] or None, got {got}")
    sh, sw = int_pair(stride, "stride", minimum=1)
    ph, pw = int_pair(padding, "padding", minimum=0)
    oph, opw = int_pair(output_padding, "output_padding", minimum=0)
    if oph >= sh or opw >= sw:
        raise ValueError(f"output_padding must be smaller than stride, got output_padding={output_padding!r} "
                         f"and stride={stride!r}")
    kH, kW = weight.shape[-2:]
    H, W = x.shape[-2:]
    Hf, Wf = (H - 1) * sh + kH + oph, (W - 1) * sw + kW + opw
    if Hf - 2 * ph <= 0 or Wf - 2 * pw <= 0:
        raise ValueError(f"padding={padding!r} crops the whole output: (H - 1) * stride - 2 * padding + kH "
                         f"+ output_padding = {(Hf - 2 * ph, Wf - 2 * pw)} for x {shape_str(x)} and "
                         f"weight {shape_str(weight)}")
    return (sh, sw), (ph, pw), (Hf, Wf)
