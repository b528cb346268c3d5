"""Colours: a deterministic palette, label maps to RGB, the ShapesWorld category colours.

Every function returns float tensors in [0, 1] (RGB, channels first for images) on the
device of its input. ``hsv_to_rgb`` is written out in torch so nothing leaves the device.
Tested in tests/viz/test_colors.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

__all__ = ["CATEGORY_COLORS", "hsv_to_rgb", "label_colors", "palette"]

GOLDEN_RATIO_CONJUGATE = 0.618033988749895

# One colour per ShapesWorld category id (coursekit.data.shapesworld.CATEGORIES):
# stuff in calm natural colours, things in bright, clearly different ones.
CATEGORY_COLORS = torch.tensor(
    [
        [0.53, 0.81, 0.98],  # 0 sky: light sky blue
        [0.30, 0.66, 0.25],  # 1 grass: green
        [0.10, 0.33, 0.72],  # 2 water: deep blue
        [0.55, 0.48, 0.42],  # 3 wall: grey-brown
        [0.93, 0.11, 0.14],  # 4 circle: red
        [1.00, 0.84, 0.00],  # 5 square: yellow
        [0.58, 0.25, 0.86],  # 6 triangle: violet
        [1.00, 0.42, 0.71],  # 7 person: pink
    ]
)  # (8, 3)


def _shape(t: object) -> str:
    """``Tensor[3, 4, 2]`` for a tensor, the type name otherwise (for error messages)."""
    if isinstance(t, Tensor):
        return f"Tensor[{', '.join(str(s) for s in t.shape)}]"
    return type(t).__name__


def _check_image(image: object, name: str = "image") -> Tensor:
    """Raise unless ``image`` is a floating-point Tensor[3, H, W]."""
    if not isinstance(image, Tensor):
        raise TypeError(f"{name} must be a float Tensor[3, H, W], got {_shape(image)}")
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"{name} must be Tensor[3, H, W], got {_shape(image)}")
    if not image.is_floating_point():
        raise TypeError(
            f"{name} must be a float tensor with values in [0, 1], got dtype {image.dtype}"
        )
    return image


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Convert Tensor[..., 3] of (hue, saturation, value) in [0, 1] to RGB Tensor[..., 3].

    Closed form: for channel offsets n = 5 (R), 3 (G), 1 (B),
    ``k = (n + 6 h) mod 6`` and ``c = v - v s clamp(min(k, 4 - k), 0, 1)``.
    Same as ``matplotlib.colors.hsv_to_rgb`` (tested in tests/viz/test_colors.py).
    """
    if not isinstance(hsv, Tensor) or hsv.dim() < 1 or hsv.shape[-1] != 3:
        raise ValueError(f"hsv must be Tensor[..., 3], got {_shape(hsv)}")
    h, s, v = hsv.unbind(-1)  # each (...)
    n = torch.tensor([5.0, 3.0, 1.0], dtype=hsv.dtype, device=hsv.device)  # (3,)
    k = torch.remainder(n + 6.0 * h.unsqueeze(-1), 6.0)  # (..., 3)
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)  # (..., 3)
    return v.unsqueeze(-1) * (1.0 - s.unsqueeze(-1) * ramp)  # (..., 3)


def palette(n: int, seed: int = 0, *, device: torch.device | str | None = None) -> Tensor:
    """``n`` distinct, deterministic colours as Tensor[n, 3] in [0, 1].

    Hue of colour k: ``frac(0.1 seed + k / phi)`` (golden-ratio steps spread the hues
    evenly for any n); saturation alternates 0.85 / 0.6 and value cycles 0.95 / 0.8 / 0.65
    so that neighbours also differ in brightness.
    """
    if not isinstance(n, int) or isinstance(n, bool) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    k = torch.arange(n, dtype=torch.float64, device=device)  # (n,)
    hue = torch.remainder(0.1 * seed + k * GOLDEN_RATIO_CONJUGATE, 1.0)
    sat = torch.where(k.remainder(2) == 0, 0.85, 0.6)
    val = torch.tensor([0.95, 0.8, 0.65], dtype=torch.float64, device=device)[k.long() % 3]
    return hsv_to_rgb(torch.stack([hue, sat, val], dim=-1)).float()  # (n, 3)


def _parse_colors(colors: object, n: int, like: Tensor, name: str = "colors") -> Tensor:
    """Colours for ``n`` objects as Tensor[n, 3] with ``like``'s dtype and device.

    ``None`` -> ``palette(n)``; one colour (Tensor[3] or a 3-tuple) -> repeated;
    Tensor[M, 3] or a list of 3-tuples with M >= n -> the first n.
    """
    if colors is None:
        out = palette(n, device=like.device)
    elif isinstance(colors, Tensor):
        out = colors
    elif isinstance(colors, Sequence) and not isinstance(colors, str):
        if len(colors) == 3 and all(isinstance(c, (int, float)) for c in colors):
            out = torch.tensor(colors, dtype=torch.float64)
        else:
            try:
                out = torch.tensor([list(c) for c in colors], dtype=torch.float64).reshape(-1, 3)
            except (TypeError, ValueError, RuntimeError) as err:
                raise ValueError(
                    f"{name} must be Tensor[N, 3] or a list of (r, g, b) in [0, 1], got {colors!r}"
                ) from err
    else:
        raise TypeError(
            f"{name} must be None, Tensor[N, 3] or a list of (r, g, b), got {_shape(colors)}"
        )
    if out.dim() == 1 and out.shape[0] == 3:
        out = out.expand(n, 3)
    if out.dim() != 2 or out.shape[1] != 3 or out.shape[0] < n:
        raise ValueError(
            f"{name} must be Tensor[{n}, 3] (one colour per object) or Tensor[3], got {_shape(out)}"
        )
    return out[:n].to(dtype=like.dtype, device=like.device)


def label_colors(
    labels: Tensor,
    num_classes: int,
    ignore_index: int = 255,
    colors: Tensor | None = None,
) -> Tensor:
    """Colour a label map: Tensor[H, W] of ints in [0, num_classes) -> Tensor[3, H, W].

    ``out[:, i, j] = colors[labels[i, j]]``; pixels equal to ``ignore_index`` are black.
    Default colours: ``CATEGORY_COLORS`` when ``num_classes <= 8`` (ShapesWorld ids),
    else ``palette(num_classes)``. Labels outside the range raise ``ValueError``.
    """
    if not isinstance(labels, Tensor) or labels.dim() != 2:
        raise ValueError(f"labels must be Tensor[H, W] of class ids, got {_shape(labels)}")
    if labels.is_floating_point() or labels.dtype == torch.bool:
        raise TypeError(f"labels must be an integer tensor, got dtype {labels.dtype}")
    if not isinstance(num_classes, int) or num_classes <= 0:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if colors is None:
        colors = (
            CATEGORY_COLORS[:num_classes]
            if num_classes <= len(CATEGORY_COLORS)
            else palette(num_classes)
        )
    table = _parse_colors(colors, num_classes, torch.empty(0, device=labels.device), name="colors")
    ignore = labels == ignore_index  # (H, W)
    bad = ~ignore & ((labels < 0) | (labels >= num_classes))
    if bool(bad.any()):
        raise ValueError(
            f"labels must lie in [0, {num_classes}) or equal ignore_index={ignore_index}, "
            f"got {int(labels[bad][0])}"
        )
    table = torch.cat([table, table.new_zeros(1, 3)])  # (C + 1, 3): last row black
    idx = torch.where(ignore, num_classes, labels).long()  # (H, W)
    return table[idx].permute(2, 0, 1).contiguous()  # (3, H, W)
