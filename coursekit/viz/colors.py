"""Colours: a deterministic palette, label maps to RGB, the ShapesWorld category colours.

Every function returns float tensors in [0, 1] (RGB, channels first for images) on the
device of its input. ``hsv_to_rgb`` and ``rgb_to_hsv`` are written out in torch so nothing
leaves the device. ``CATEGORY_COLORS`` are the colours ShapesWorld draws each category in,
so a label map looks like the scene it labels (one palette for the whole course).
Tested in tests/viz/test_colors.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from numbers import Real

import torch
from torch import Tensor

from coursekit.validators import (
    describe,
    positive_int,
    require_integer,
    require_tensor,
    shape_str,
)

__all__ = ["CATEGORY_COLORS", "hsv_to_rgb", "label_colors", "palette", "rgb_to_hsv"]

FLOAT_DTYPES = "float16, bfloat16, float32 or float64"

GOLDEN_RATIO_CONJUGATE = 0.618033988749895

# One colour per ShapesWorld category id (coursekit.data.shapesworld.CATEGORIES): the colour
# ShapesWorld draws it in (coursekit/data/layout.py), so scenes and label maps agree.
# Stuff: the typical rendered colour of its textured pixels (between their median and mean
# over 400 scenes). Shapes: their fill colour (layout.SHAPE_RGB; each shape is jittered by
# +-0.08 and has a darker rim). Persons wear clothes of many colours; theirs is a skin tone
# (layout.SKIN_RGB[1]): every person's head and hands are skin. tests/viz/test_colors.py
# renders scenes and checks each class's pixels against this table.
CATEGORY_COLORS = torch.tensor(
    [
        [0.50, 0.69, 0.92],  # 0 sky: light blue
        [0.24, 0.50, 0.17],  # 1 grass: green
        [0.17, 0.35, 0.62],  # 2 water: deep blue
        [0.48, 0.45, 0.40],  # 3 wall: grey-brown
        [0.88, 0.18, 0.15],  # 4 circle: red
        [0.55, 0.22, 0.78],  # 5 square: violet
        [0.98, 0.72, 0.12],  # 6 triangle: amber
        [0.87, 0.65, 0.48],  # 7 person: skin
    ]
)  # (8, 3)


def _check_image(image: object, name: str = "image") -> Tensor:
    """Raise unless ``image`` is a float Tensor[3, H, W] (``TypeError`` / ``ValueError``)."""
    require_tensor(image, name, "a float Tensor[3, H, W]")
    if image.dim() != 3 or image.shape[0] != 3:
        raise ValueError(f"{name} must be Tensor[3, H, W], got {describe(image)}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a float tensor ({FLOAT_DTYPES}) with values in [0, 1], "
                        f"got {describe(image)}")
    return image


def _check_integer(t: Tensor, name: str, expected: str) -> Tensor:
    """``TypeError`` unless ``t`` holds integers (not float, bool or complex); the shared
    ``validators.require_integer`` under the name overlay.py imports."""
    return require_integer(t, name, expected)


def _check_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, got {value!r}")
    return value


def _check_real(value: object, name: str) -> float:
    """A real number (a one-element real tensor is accepted too) as a float."""
    if isinstance(value, Tensor) and value.numel() == 1 and not value.is_complex() \
            and value.dtype != torch.bool:
        return float(value)
    if isinstance(value, bool) or not isinstance(value, Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    return float(value)


def hsv_to_rgb(hsv: Tensor) -> Tensor:
    """Convert Tensor[..., 3] of (hue, saturation, value) in [0, 1] to RGB Tensor[..., 3].

    Closed form: for channel offsets n = 5 (R), 3 (G), 1 (B),
    ``k = (n + 6 h) mod 6`` and ``c = v - v s clamp(min(k, 4 - k), 0, 1)``.
    Same as ``matplotlib.colors.hsv_to_rgb`` (tested in tests/viz/test_colors.py).
    """
    require_tensor(hsv, "hsv", "a float Tensor[..., 3]")
    if hsv.dim() < 1 or hsv.shape[-1] != 3:
        raise ValueError(f"hsv must be Tensor[..., 3], got {describe(hsv)}")
    if not hsv.is_floating_point():
        raise TypeError(f"hsv must be a float Tensor[..., 3] ({FLOAT_DTYPES}) with values in "
                        f"[0, 1], got {describe(hsv)}")
    h, s, v = hsv.unbind(-1)  # each (...)
    n = torch.tensor([5.0, 3.0, 1.0], dtype=hsv.dtype, device=hsv.device)  # (3,)
    k = torch.remainder(n + 6.0 * h.unsqueeze(-1), 6.0)  # (..., 3)
    ramp = torch.minimum(k, 4.0 - k).clamp(0.0, 1.0)  # (..., 3)
    return v.unsqueeze(-1) * (1.0 - s.unsqueeze(-1) * ramp)  # (..., 3)


def rgb_to_hsv(rgb: Tensor) -> Tensor:
    """Convert Tensor[..., 3] of (red, green, blue) in [0, 1] to (hue, saturation, value).

    ``v = max``, ``s = (max - min) / max`` (0 for black), and the hue in [0, 1) from the
    channel that is largest: ``((g - b) / d) / 6`` for red, ``(2 + (b - r) / d) / 6`` for
    green, ``(4 + (r - g) / d) / 6`` for blue, ``d = max - min`` (0 for greys), modulo 1.
    Same as ``matplotlib.colors.rgb_to_hsv``; the inverse of ``hsv_to_rgb``.
    """
    require_tensor(rgb, "rgb", "a float Tensor[..., 3]")
    if rgb.dim() < 1 or rgb.shape[-1] != 3:
        raise ValueError(f"rgb must be Tensor[..., 3], got {describe(rgb)}")
    if not rgb.is_floating_point():
        raise TypeError(f"rgb must be a float Tensor[..., 3] ({FLOAT_DTYPES}) with values in "
                        f"[0, 1], got {describe(rgb)}")
    r, g, b = rgb.unbind(-1)  # each (...)
    v = rgb.amax(-1)
    d = v - rgb.amin(-1)
    safe = torch.where(d > 0, d, torch.ones_like(d))
    hue = torch.where(b == v, 4 + (r - g) / safe,
                      torch.where(g == v, 2 + (b - r) / safe, (g - b) / safe))
    hue = torch.where(d > 0, torch.remainder(hue / 6, 1.0), torch.zeros_like(d))
    sat = torch.where(v > 0, d / torch.where(v > 0, v, torch.ones_like(v)), torch.zeros_like(v))
    return torch.stack([hue, sat, v], dim=-1)  # (..., 3)


def palette(n: int, seed: int = 0, *, device: torch.device | str | None = None) -> Tensor:
    """``n`` distinct, deterministic colours as Tensor[n, 3] in [0, 1].

    Hue of colour k: ``frac(0.1 seed + k / phi)`` (golden-ratio steps spread the hues
    evenly for any n); saturation alternates 0.85 / 0.6 and value cycles 0.95 / 0.8 / 0.65
    so that neighbours also differ in brightness.
    """
    n = positive_int(n, "n", minimum=0)
    seed = _check_int(seed, "seed")
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
        if not colors.is_floating_point():
            raise TypeError(f"{name} must be a float Tensor[N, 3] with values in [0, 1], "
                            f"got {describe(colors)}")
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
            f"{name} must be None, Tensor[N, 3] or a list of (r, g, b), got {describe(colors)}"
        )
    if out.dim() == 1 and out.shape[0] == 3:
        out = out.expand(n, 3)
    if out.dim() != 2 or out.shape[1] != 3 or out.shape[0] < n:
        raise ValueError(
            f"{name} must be Tensor[{n}, 3] (one colour per object) or Tensor[3], "
            f"got {shape_str(out)}"
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
    require_tensor(labels, "labels", "an integer Tensor[H, W] of class ids")
    if labels.dim() != 2:
        raise ValueError(f"labels must be Tensor[H, W] of class ids, got {describe(labels)}")
    _check_integer(labels, "labels", "an integer tensor")
    num_classes = positive_int(num_classes, "num_classes")
    ignore_index = _check_int(ignore_index, "ignore_index")
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
