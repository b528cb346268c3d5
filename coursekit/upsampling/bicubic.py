"""Bicubic interpolation: ``cubic_kernel`` (Keys' cubic) and ``bicubic_upsample``.

Lecture: *In-network upsampling* — bilinear interpolation uses the 2 closest neighbours
in x and y with the "tent" weight ``max(0, 1 - |s|)``; bicubic uses the **4** closest
neighbours in each axis (a 4×4 window) with Keys' cubic convolution kernel (Keys 1981)::

    W(s) = (a + 2)|s|^3 - (a + 3)|s|^2 + 1         for |s| <= 1
    W(s) = a|s|^3 - 5a|s|^2 + 8a|s| - 4a           for 1 < |s| < 2
    W(s) = 0                                       otherwise

    f(x, y) = sum_{i, j} f(i, j) * W(x - j) * W(y - i)

with ``a = -0.75`` as torch uses (OpenCV's value; Keys' paper recommends -0.5). The
weights of the 4 neighbours sum to 1, but some are negative: the result can overshoot
the input's range (a sharper picture than bilinear, with faint "ringing" at edges).
Mask R-CNN's keypoint head (torchvision) resizes each 56×56 heatmap to its box with this
interpolation before taking the arg max (``coursekit.pose.heatmaps_to_keypoints``).

Border rule (torch's): neighbours outside the image read the nearest border pixel (the
index is clamped to ``[0, n - 1]``); unlike bilinear, the source coordinate itself is not
clamped to ``>= 0`` first, so the weights near a border are those of the unclamped point.

Reduced precision: source coordinates, weights and sums are float32 for a float16 /
bfloat16 input (float64 for float64); only the output is rounded to the input's dtype.
Tested in tests/upsampling/test_bicubic.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.upsampling.bilinear import resize_arguments
from coursekit.validators import require_dim, require_floating

NCHW = "Tensor[N, C, H, W] (4-D)"
A = -0.75
"""The cubic kernel's free parameter, as in torch (``get_cubic_upsample_coefficients``)."""

__all__ = ["A", "bicubic_upsample", "cubic_kernel"]


def cubic_kernel(s: Tensor, a: float = A) -> Tensor:
    """Keys' cubic convolution kernel ``W(s)`` (see the module docstring), elementwise.

    ``W(0) = 1``, ``W(±1) = W(±2) = 0`` (an interpolation: integer points read their own
    pixel), ``W`` is 0 for ``|s| >= 2`` and ``sum_k W(t - k) = 1`` for every ``t``.

    Args:
        s: floating-point Tensor of any shape: distances in pixels.
        a: the kernel's parameter (torch: -0.75).

    Returns:
        Tensor like ``s``. Written in torch's Horner order (``cubic_convolution1/2`` in
        ATen's UpSample.h) so that float32 weights round as torch's do.
    """
    require_floating(s, "s")
    if isinstance(a, bool) or not isinstance(a, (int, float)):
        raise TypeError(f"a must be a float, got {a!r}")
    s = s.abs()
    near = ((a + 2) * s - (a + 3)) * s * s + 1  # |s| <= 1
    far = ((a * s - 5 * a) * s + 8 * a) * s - 4 * a  # 1 < |s| < 2
    return torch.where(s <= 1, near, torch.where(s < 2, far, torch.zeros_like(s)))


def bicubic_upsample(x: Tensor, size: int | tuple[int, int] | None = None,
                     scale_factor: float | tuple[float, float] | None = None,
                     align_corners: bool = False) -> Tensor:
    """Resize ``x`` by bicubic interpolation (4×4 neighbours, Keys' kernel, ``a = -0.75``).

    Output pixel ``(i, j)`` reads the input at the source point ``(sy_i, sx_j)`` with
    ``src = (dst + 0.5) * ratio - 0.5`` (``align_corners=False``; ``ratio = 1 / scale_factor``
    when ``scale_factor`` is given, else ``in / out``, as torch does; **not** clamped to
    ``>= 0``) or ``src = dst * (in - 1) / (out - 1)`` (``align_corners=True``). With
    ``k = floor(src)`` and ``t = src - k`` its value is

        ``sum_{m, n = -1..2} x[clamp(ky + m), clamp(kx + n)] * W(t_y - m) * W(t_x - n)``

    (indices clamped into the image: the border pixel is repeated). The weight is a
    product, so this is ``out = A_y @ x @ A_x.T`` with a matrix ``A`` per axis holding the
    4 weights of each output row (weights of a clamped index add up); building ``A`` is
    the whole algorithm, the matrix products do the rest (and the backward pass).

    Same as ``F.interpolate(x, size, scale_factor, mode="bicubic",
    align_corners=align_corners)``, forward and backward. One device rule of torch's is
    copied too: on CUDA torch returns the input unchanged when neither size changes (even
    if ``scale_factor`` is not 1); on the CPU it interpolates.

    Args:
        x: Tensor[N, C, H, W], floating point.
        size: ``H_out`` or ``(H_out, W_out)``; exactly one of ``size`` / ``scale_factor``.
        scale_factor: float or pair of floats > 0; ``H_out = floor(H * scale_factor)``.
        align_corners: see above.

    Returns:
        Tensor[N, C, H_out, W_out] in ``x``'s dtype (coordinates, weights and sums in
        float32 for float16 / bfloat16, float64 for float64). Tested against
        ``F.interpolate`` in tests/upsampling/test_bicubic.py.
    """
    (Ho, Wo), ys, xs = _source_coordinates(x, size, scale_factor, align_corners)
    H, W = x.shape[-2:]
    if x.device.type == "cuda" and (Ho, Wo) == (H, W):
        return x.clone()  # torch's CUDA kernel copies when no size changes
    A_y = _interpolation_matrix(ys, H)  # (Ho, H), float32 or float64
    A_x = _interpolation_matrix(xs, W)  # (Wo, W)
    out = A_y @ (x.to(A_x.dtype) @ A_x.t())  # (N, C, H, W) -> (N, C, H, Wo) -> (N, C, Ho, Wo)
    return out.to(x.dtype)


def _interpolation_matrix(src: Tensor, n_in: int) -> Tensor:
    """A[o, i]: the summed cubic weights with which output ``o`` reads input ``i``.

    As torch: ``k = floor(src)`` taken in float32 (ATen's ``floorf``), ``k <= n_in - 1``,
    ``t = clamp(src - k, 0, 1)``; the 4 taps ``k - 1 .. k + 2`` have the weights
    ``W(t + 1), W(t), W(1 - t), W(2 - t)`` and are clamped into ``[0, n_in - 1]``.
    """
    k = src.float().floor().to(src.dtype).clamp(max=n_in - 1)  # (n_out,)
    t = (src - k).clamp(0, 1)
    weights = torch.stack(_cubic_coefficients(t), dim=1)  # (n_out, 4)
    taps = k.long()[:, None] + torch.arange(-1, 3, device=src.device)  # (n_out, 4)
    taps = taps.clamp(0, n_in - 1)  # border pixels repeat
    A = src.new_zeros(src.shape[0], n_in)
    return A.scatter_add_(1, taps, weights)  # (n_out, n_in), rows sum to 1


def _cubic_coefficients(t: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``W(t + 1), W(t), W(1 - t), W(2 - t)`` for ``t`` in [0, 1], each with its own branch
    of the kernel and in torch's order of operations (``get_cubic_upsample_coefficients``)."""
    def near(s):  # |s| <= 1
        return ((A + 2) * s - (A + 3)) * s * s + 1

    def far(s):  # 1 <= |s| <= 2
        return ((A * s - 5 * A) * s + 8 * A) * s - 4 * A

    u = 1 - t
    return far(t + 1), near(t), near(u), far(u + 1)


def _source_coordinates(x: Tensor, size, scale_factor, align_corners: bool):
    """Check the arguments; return ((H_out, W_out), rows Tensor[H_out], cols Tensor[W_out]).

    Coordinates are float32 (float64 for a float64 ``x``), computed with torch's arithmetic:
    ``ratio`` is ``(float)(1.0 / scale_factor)``, ``(float)in / out`` or
    ``(float)(in - 1) / (out - 1)``, then ``(dst + 0.5) * ratio - 0.5`` or ``dst * ratio``.
    """
    require_floating(x, "x", "a floating-point Tensor[N, C, H, W]")
    require_dim(x, "x", 4, NCHW)
    if x.shape[-2] == 0 or x.shape[-1] == 0:
        raise ValueError(f"x must have H, W >= 1, got Tensor[{', '.join(map(str, x.shape))}]")
    in_size, out_size, scales, acc = resize_arguments(x, size, scale_factor, align_corners)
    coords = []
    for n_in, n_out, scale in zip(in_size, out_size, scales, strict=True):
        dst = torch.arange(n_out, dtype=acc, device=x.device)  # exact below 2**24
        if align_corners:
            ratio = torch.tensor(n_in - 1, dtype=acc) / (n_out - 1) if n_out > 1 else 0.0
            coords.append(dst * ratio)
        else:  # torch uses 1 / scale_factor when it is given, else in / out
            ratio = (torch.tensor(1.0 / scale, dtype=acc) if scale is not None
                     else torch.tensor(n_in, dtype=acc) / n_out)
            coords.append((dst + 0.5) * ratio - 0.5)  # not clamped: cubic needs [-1, 0, 1, 2]
    return out_size, coords[0], coords[1]
