"""Colour dense predictions: optical flow on the Middlebury colour wheel, depth by a colormap.

Tested in tests/viz/test_dense_viz.py.
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor

from coursekit.validators import describe, positive_int, require_tensor
from coursekit.viz.colors import FLOAT_DTYPES, _check_real

__all__ = ["depth_to_color", "flow_to_color", "flow_wheel_legend", "make_colorwheel"]

# Segment lengths of the wheel (Baker et al., "A Database and Evaluation Methodology for
# Optical Flow", ICCV 2007): red-yellow, yellow-green, green-cyan, cyan-blue, blue-magenta,
# magenta-red; chosen so that perceptually similar hues get similar arc lengths.
RY, YG, GC, CB, BM, MR = 15, 6, 4, 11, 13, 6


def make_colorwheel() -> Tensor:
    """The 55 colours of the Middlebury flow wheel as Tensor[55, 3] in [0, 255].

    Each segment ramps one channel linearly, ``floor(255 i / n)`` for i = 0..n-1, while
    the others are held at 0 or 255. Same as ``torchvision.utils._make_colorwheel``.
    """

    def up(n: int) -> Tensor:
        return torch.floor(255 * torch.arange(n) / n)

    def seg(n: int, r: int | str, g: int | str, b: int | str) -> Tensor:  # 0, 255, "up" or "down"
        chan = [
            up(n) if c == "up" else 255 - up(n) if c == "down" else torch.full((n,), float(c))
            for c in (r, g, b)
        ]
        return torch.stack(chan, dim=1)  # (n, 3)

    return torch.cat(
        [
            seg(RY, 255, "up", 0),
            seg(YG, "down", 255, 0),
            seg(GC, 0, 255, "up"),
            seg(CB, 0, "down", 255),
            seg(BM, "up", 0, 255),
            seg(MR, 255, 0, "down"),
        ]
    )  # (55, 3)


def flow_to_color(flow: Tensor, max_flow: float | None = None) -> Tensor:
    """Colour a flow field: Tensor[(N,) 2, H, W] of (dx, dy) -> Tensor[(N,) 3, H, W].

    Hue = direction, saturation = magnitude (Baker et al. 2007):
    ``(u, v) = flow / (max_flow or max |flow| + eps)`` (the max over the whole batch),
    ``a = atan2(-v, -u) / pi`` in [-1, 1], ``fk = (a + 1) / 2 * 54`` picks a fractional
    position on the 55-colour wheel, the colour is interpolated linearly between
    ``wheel[floor(fk)]`` and the next, then ``col = 1 - r (1 - col)`` with ``r = |(u, v)|``
    (white at zero flow). Where r > 1 (only possible with ``max_flow``) the full colour
    is dimmed to 0.75 of itself. Output is float in [0, 1] (no 8-bit rounding), in
    ``flow``'s dtype (float16 / bfloat16 are computed in float32).
    Same as ``torchvision.utils.flow_to_image`` and the ``flow_vis`` package up to that
    rounding (tested against both in tests/viz/test_dense_viz.py).
    """
    expected = "a float Tensor[2, H, W] or Tensor[N, 2, H, W] (dx, dy)"
    require_tensor(flow, "flow", expected)
    if flow.dim() not in (3, 4) or flow.shape[-3] != 2:
        raise ValueError(
            f"flow must be Tensor[2, H, W] or Tensor[N, 2, H, W] (dx, dy), got {describe(flow)}"
        )
    if not flow.is_floating_point():
        raise TypeError(f"flow must be a float tensor ({FLOAT_DTYPES}), got {describe(flow)}")
    if max_flow is not None:
        max_flow = _check_real(max_flow, "max_flow")
        if not max_flow > 0:
            raise ValueError(f"max_flow must be positive or None, got {max_flow}")
    dtype = flow.dtype
    if dtype in (torch.float16, torch.bfloat16):
        flow = flow.float()  # angles and blending in float32, the result in the input's dtype
    auto = max_flow is None
    if auto:
        max_flow = flow.pow(2).sum(-3).sqrt().max() if flow.numel() else 1.0
    uv = flow / (max_flow + torch.finfo(flow.dtype).eps)  # (..., 2, H, W)
    u, v = uv.unbind(-3)  # each (..., H, W)
    wheel = make_colorwheel().to(device=flow.device, dtype=flow.dtype) / 255  # (55, 3)
    ncols = wheel.shape[0]
    rad = torch.sqrt(u * u + v * v)
    if auto:  # r <= 1 by construction; rounding can give 1 + 1 ulp at the fastest pixel
        rad = rad.clamp(max=1)
    a = torch.atan2(-v, -u) / torch.pi
    fk = (a + 1) / 2 * (ncols - 1)  # (..., H, W) in [0, 54]
    k0 = fk.floor().long()
    k1 = torch.where(k0 + 1 == ncols, 0, k0 + 1)
    f = (fk - k0).unsqueeze(-1)  # (..., H, W, 1)
    col = (1 - f) * wheel[k0] + f * wheel[k1]  # (..., H, W, 3)
    r = rad.unsqueeze(-1)
    col = torch.where(r <= 1, 1 - r * (1 - col), 0.75 * col)
    return col.movedim(-1, -3).contiguous().to(dtype)  # (..., 3, H, W)


def flow_wheel_legend(size: int = 64, background: float = 1.0) -> Tensor:
    """The colour wheel as a Tensor[3, size, size] legend: pixel (x, y) shows the colour of
    flow (x - c, y - c) with c the centre and the inscribed circle as ``max_flow``;
    pixels outside the circle are ``background``. Right = red, down = orange-yellow,
    left = cyan-blue, up = violet, as in ``flow_to_color``.
    """
    size = positive_int(size, "size", minimum=2)
    background = _check_real(background, "background")
    c = (size - 1) / 2
    coords = torch.arange(size, dtype=torch.float32) - c  # (size,)
    flow = torch.stack(torch.meshgrid(coords, coords, indexing="xy"))  # (2, size, size): (dx, dy)
    img = flow_to_color(flow, max_flow=c + 0.5)
    outside = flow.pow(2).sum(0).sqrt() > c + 0.5  # (size, size)
    return torch.where(outside, torch.full_like(img, background), img)


@functools.lru_cache(maxsize=16)
def _colormap_lut(cmap: str) -> Tensor:
    """A matplotlib colormap's lookup table as Tensor[N, 3] (float64, CPU)."""
    import matplotlib  # only when asked: keeps ``import coursekit.viz`` cheap
    import numpy as np

    try:
        colormap = matplotlib.colormaps[cmap]
    except KeyError as err:
        raise ValueError(
            f"cmap must name a matplotlib colormap such as 'magma' or 'viridis', got {cmap!r}"
        ) from err
    lut = colormap(np.arange(colormap.N))[:, :3]  # (N, 3) RGB in [0, 1]
    return torch.from_numpy(np.ascontiguousarray(lut, dtype=np.float64))


def depth_to_color(
    depth: Tensor, vmin: float | None = None, vmax: float | None = None, cmap: str = "magma"
) -> Tensor:
    """Colour a depth map Tensor[H, W] -> Tensor[3, H, W]; near = bright.

    ``t = clamp((depth - vmin) / (vmax - vmin), 0, 1)``, then the colour is
    ``lut[min(floor((1 - t) N), N - 1)]`` with ``lut`` the colormap's N-entry table, exactly
    how ``matplotlib.colormaps[cmap](1 - t)`` looks a float up. ``vmin`` / ``vmax`` default
    to the min / max of the finite depths; non-finite depths are black. The result has
    ``depth``'s dtype (float16 / bfloat16 are looked up in float32).
    """
    require_tensor(depth, "depth", "a float Tensor[H, W]")
    if depth.dim() != 2:
        raise ValueError(f"depth must be a float Tensor[H, W], got {describe(depth)}")
    if not depth.is_floating_point():
        raise TypeError(f"depth must be a float Tensor[H, W] ({FLOAT_DTYPES}), "
                        f"got {describe(depth)}")
    vmin = None if vmin is None else _check_real(vmin, "vmin")
    vmax = None if vmax is None else _check_real(vmax, "vmax")
    if not isinstance(cmap, str):
        raise TypeError(f"cmap must be the name of a matplotlib colormap (a str), "
                        f"got {describe(cmap)}")
    dtype = depth.dtype
    if dtype in (torch.float16, torch.bfloat16):
        depth = depth.float()
    finite = torch.isfinite(depth)  # (H, W)
    values = depth[finite]
    lo = (
        float(values.min())
        if vmin is None and values.numel()
        else (vmin if vmin is not None else 0.0)
    )
    hi = (
        float(values.max())
        if vmax is None and values.numel()
        else (vmax if vmax is not None else 1.0)
    )
    if hi < lo:
        raise ValueError(f"vmax must be >= vmin, got vmin={lo}, vmax={hi}")
    lut = _colormap_lut(cmap).to(device=depth.device, dtype=depth.dtype)  # (N, 3)
    n = lut.shape[0]
    safe = torch.where(finite, depth, torch.full_like(depth, lo))
    t = ((safe - lo) / max(hi - lo, 1e-12)).clamp(0, 1)  # (H, W), 0 = near
    idx = ((1 - t) * n).floor().long().clamp(0, n - 1)  # (H, W)
    out = torch.where(finite.unsqueeze(-1), lut[idx], torch.zeros_like(lut[idx]))  # (H, W, 3)
    return out.permute(2, 0, 1).contiguous().to(dtype)
