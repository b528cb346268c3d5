"""Max unpooling: max pooling remembers *where* the maximum was, unpooling puts it back.

Lecture: *In-network upsampling: "max unpooling"* — "Max pooling: remember which
position had the max", "Max unpooling: place into remembered positions", and "pair
each downsampling layer with an upsampling layer"::

    1 2 6 3                            0 0 6 0
    3 5 2 1   max pool    5 6   unpool   0 5 0 0
    1 2 2 1   -------->   7 8   ------>  0 0 0 0
    7 3 4 8   (remember                  7 0 0 8
               positions)

(in a network the unpooled values are the decoder's, not the pooled ones).
Indices are flat positions ``h * W + w`` inside each input plane, as in torch.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.upsampling.nearest import NCHW
from coursekit.validators import describe, int_pair, require_dim, shape_str


def max_pool2d_with_indices(
    x: Tensor, kernel_size: int | tuple[int, int], stride: int | tuple[int, int] | None = None,
) -> tuple[Tensor, Tensor]:
    """Max pooling that also returns where each maximum came from.

    ``y[n, c, i, j] = max over the window x[n, c, i*sh : i*sh + kh, j*sw : j*sw + kw]`` and
    ``indices[n, c, i, j] = h * W + w`` of that maximum (the first one in row-major scan
    order when there are ties, like torch).

    Args:
        x: Tensor[N, C, H, W].
        kernel_size: int or (kh, kw), positive.
        stride: int or (sh, sw), positive; ``None`` means ``kernel_size``.

    Returns:
        (y, indices): Tensor[N, C, H_out, W_out] and int64 Tensor[N, C, H_out, W_out] with
        ``H_out = (H - kh) // sh + 1`` (no padding, floor mode). Same as
        ``F.max_pool2d(x, kernel_size, stride, return_indices=True)`` (forward and
        backward); tested in tests/upsampling/test_unpool.py.
    """
    require_dim(x, "x", 4, NCHW)
    kh, kw = int_pair(kernel_size, "kernel_size")
    sh, sw = int_pair(kernel_size if stride is None else stride, "stride")
    N, C, H, W = x.shape
    if kh > H or kw > W:
        raise ValueError(f"kernel_size {(kh, kw)} is larger than the input plane {(H, W)} "
                         f"of x {shape_str(x)}")
    windows = x.unfold(2, kh, sh).unfold(3, kw, sw)  # (N, C, Ho, Wo, kh, kw), a view
    Ho, Wo = windows.shape[2:4]
    y, k = windows.reshape(N, C, Ho, Wo, kh * kw).max(dim=-1)  # first max on ties; k in [0, kh*kw)
    rows = torch.arange(Ho, device=x.device)[:, None] * sh + k // kw  # (N, C, Ho, Wo) input row
    cols = torch.arange(Wo, device=x.device) * sw + k % kw  # (N, C, Ho, Wo) input column
    return y, rows * W + cols


def max_unpool2d(x: Tensor, indices: Tensor, kernel_size: int | tuple[int, int],
                 stride: int | tuple[int, int] | None = None,
                 output_size: tuple[int, ...] | list[int] | None = None) -> Tensor:
    """Place each value at its remembered position, zeros everywhere else.

    ``out[n, c].flatten()[indices[n, c, i, j]] = x[n, c, i, j]``.

    Args:
        x: Tensor[N, C, H, W] (e.g. a decoder's feature map).
        indices: int64 Tensor[N, C, H, W] from ``max_pool2d_with_indices``.
        kernel_size, stride: those of the pooling (stride ``None`` means ``kernel_size``).
        output_size: ``(H_out, W_out)`` or ``(N, C, H_out, W_out)``; default
            ``((H - 1) * sh + kh, (W - 1) * sw + kw)``. Must lie strictly between
            ``default - stride`` and ``default + stride`` (torch's rule), which recovers an
            input size that floor-mode pooling rounded down.

    Returns:
        Tensor[N, C, H_out, W_out]. Same as ``F.max_unpool2d`` (forward and backward);
        tested in tests/upsampling/test_unpool.py. When pooling windows overlap
        (stride < kernel) two values may remember the same position; which one lands
        there is unspecified, as in torch (its CPU loop keeps the last, CUDA any).
    """
    require_dim(x, "x", 4, NCHW)
    if not isinstance(indices, Tensor) or indices.dtype != torch.long:
        raise TypeError("indices must be an int64 Tensor (from max_pool2d_with_indices), "
                        f"got {describe(indices)}")
    if indices.shape != x.shape:
        raise ValueError(f"indices must have the shape of x {shape_str(x)}, "
                         f"got {shape_str(indices)}")
    kh, kw = int_pair(kernel_size, "kernel_size")
    sh, sw = int_pair(kernel_size if stride is None else stride, "stride")
    N, C, H, W = x.shape
    default = ((H - 1) * sh + kh, (W - 1) * sw + kw)
    if output_size is None:
        Ho, Wo = default
    else:
        size = tuple(output_size)
        if len(size) == 4:
            size = size[2:]
        if len(size) != 2 or not all(isinstance(s, int) for s in size):
            raise ValueError("output_size must be (H_out, W_out) or (N, C, H_out, W_out), "
                             f"got {output_size!r}")
        for d, (s, base, st) in enumerate(zip(size, default, (sh, sw), strict=True)):
            if not base - st < s < base + st:
                raise ValueError(f"output_size {output_size!r} is inconsistent with x "
                                 f"{shape_str(x)}, kernel_size and stride: dim {d} must be "
                                 f"strictly between {base - st} and {base + st}")
        Ho, Wo = size
    if indices.numel() and (int(indices.min()) < 0 or int(indices.max()) >= Ho * Wo):
        raise ValueError(f"indices must lie in [0, H_out * W_out) = [0, {Ho * Wo}), got values "
                         f"in [{int(indices.min())}, {int(indices.max())}]")
    out = x.new_zeros(N, C, Ho * Wo)  # (N, C, Ho*Wo) flat output planes
    out = out.scatter(2, indices.reshape(N, C, H * W), x.reshape(N, C, H * W))
    return out.view(N, C, Ho, Wo)
