"""Anchors: the reference boxes a region proposal network scores and regresses.

Lecture: *Faster R-CNN* — at every position of a feature map, place ``A``
anchors of fixed sizes and aspect ratios; the RPN predicts for each one an
objectness score and a box transform (see ``box_coder.py``).

* ``generate_anchors(scales, aspect_ratios)`` — the ``A = len(scales) * len(aspect_ratios)``
  zero-centred cell anchors: for ratio ``r = h / w`` and scale ``s`` (the square
  root of the area), ``h = sqrt(r) * s``, ``w = s / sqrt(r)``, box
  ``round((-w/2, -h/2, w/2, h/2))``.
* ``grid_anchors(feature_size, stride, cell_anchors)`` — every cell anchor shifted
  to ``(x * stride_w, y * stride_h)`` for every feature-map cell ``(y, x)``.
* ``anchors_for_image`` — both, over several feature maps, as
  ``AnchorGenerator.forward`` does.

Same numbers and order as ``torchvision.models.detection.anchor_utils.AnchorGenerator``;
tested in tests/detection/test_anchors.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from coursekit.detection.boxes import shape_str


def generate_anchors(scales: Sequence[float], aspect_ratios: Sequence[float],
                     dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> Tensor:
    """Zero-centred anchors, ratio-major: row ``i * len(scales) + j`` is ``(aspect_ratios[i], scales[j])``.

    Args:
        scales: anchor sizes (square root of the area), e.g. ``(32, 64)``.
        aspect_ratios: height / width ratios, e.g. ``(0.5, 1.0, 2.0)``.

    Returns:
        Tensor[A, 4] xyxy, rounded to integers (``torch.round``: halves to even). Same as
        ``AnchorGenerator.generate_anchors(scales, aspect_ratios)``.
    """
    for name, values in (("scales", scales), ("aspect_ratios", aspect_ratios)):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise TypeError(f"{name} must be a non-empty sequence of numbers, got {values!r}")
        if any(not v > 0 for v in values):
            raise ValueError(f"{name} must be positive, got {values!r}")
    scales_t = torch.as_tensor(scales, dtype=dtype, device=device)  # (S,)
    ratios = torch.as_tensor(aspect_ratios, dtype=dtype, device=device)  # (R,)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales_t[None, :]).reshape(-1)  # (R * S,)
    hs = (h_ratios[:, None] * scales_t[None, :]).reshape(-1)
    return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round()  # (A, 4)


def grid_anchors(feature_size: tuple[int, int], stride: tuple[int, int], cell_anchors: Tensor) -> Tensor:
    """Shift the cell anchors to every feature-map position.

    Args:
        feature_size: ``(H, W)`` of the feature map.
        stride: ``(stride_h, stride_w)`` in image pixels per feature cell.
        cell_anchors: Tensor[A, 4] zero-centred anchors (``generate_anchors``).

    Returns:
        Tensor[H * W * A, 4]: row ``(y * W + x) * A + a`` is anchor ``a`` centred at
        ``(x * stride_w, y * stride_h)``. Same as ``AnchorGenerator.grid_anchors``.
    """
    for name, pair in (("feature_size", feature_size), ("stride", stride)):
        if not isinstance(pair, (tuple, list)) or len(pair) != 2 or not all(
                isinstance(v, int) and not isinstance(v, bool) for v in pair):
            raise TypeError(f"{name} must be a pair of ints, got {pair!r}")
        if any(v < 0 for v in pair):
            raise ValueError(f"{name} must be non-negative, got {pair!r}")
    if not isinstance(cell_anchors, Tensor) or cell_anchors.dim() != 2 or cell_anchors.shape[1] != 4:
        got = shape_str(cell_anchors) if isinstance(cell_anchors, Tensor) else type(cell_anchors).__name__
        raise ValueError(f"cell_anchors must be Tensor[A, 4], got {got}")
    (H, W), (sh, sw) = feature_size, stride
    device = cell_anchors.device
    shifts_x = torch.arange(W, dtype=torch.int64, device=device) * sw  # (W,)
    shifts_y = torch.arange(H, dtype=torch.int64, device=device) * sh  # (H,)
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")  # (H, W) each
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1)  # (H * W, 4)
    return (shifts[:, None, :] + cell_anchors[None, :, :]).reshape(-1, 4)  # (H * W * A, 4)


def anchors_for_image(image_size: tuple[int, int], feature_sizes: Sequence[tuple[int, int]],
                      sizes: Sequence[Sequence[float]], aspect_ratios: Sequence[Sequence[float]],
                      dtype: torch.dtype = torch.float32,
                      device: torch.device | str = "cpu") -> Tensor:
    """All anchors of one image over several feature maps (e.g. the levels of an FPN).

    The stride of level ``l`` is ``image_size // feature_sizes[l]`` (integer division,
    per axis); level ``l`` uses ``sizes[l]`` and ``aspect_ratios[l]``.

    Args:
        image_size: ``(H_img, W_img)`` of the (padded) image batch.
        feature_sizes: one ``(H, W)`` per level.
        sizes, aspect_ratios: one sequence per level.

    Returns:
        Tensor[sum_l H_l * W_l * A_l, 4], levels concatenated. Same as
        ``AnchorGenerator(sizes, aspect_ratios)(image_list, feature_maps)[0]``.
    """
    if not (len(feature_sizes) == len(sizes) == len(aspect_ratios)):
        raise ValueError(f"feature_sizes, sizes and aspect_ratios need one entry per level, got "
                         f"{len(feature_sizes)}, {len(sizes)} and {len(aspect_ratios)}")
    levels = []
    for (h, w), scales, ratios in zip(feature_sizes, sizes, aspect_ratios):
        stride = (int(image_size[0]) // h, int(image_size[1]) // w)
        cell = generate_anchors(scales, ratios, dtype=dtype, device=device)
        levels.append(grid_anchors((h, w), stride, cell))
    return torch.cat(levels)
