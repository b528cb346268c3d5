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

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor

from coursekit.validators import int_pair, require_dim, shape_str

Pair = tuple[int, int]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for float16 / bfloat16 (and float64 for float64): anchors are computed there."""
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise TypeError(f"dtype must be a floating-point torch.dtype, got {dtype!r}")
    return torch.promote_types(dtype, torch.float32)


def generate_anchors(scales: Sequence[float], aspect_ratios: Sequence[float],
                     dtype: torch.dtype = torch.float32,
                     device: torch.device | str = "cpu") -> Tensor:
    """Zero-centred anchors, ratio-major: row ``i * len(scales) + j`` is ratio i, scale j.

    Args:
        scales: anchor sizes (square root of the area), e.g. ``(32, 64)``.
        aspect_ratios: height / width ratios, e.g. ``(0.5, 1.0, 2.0)``.
        dtype, device: of the result. A float16 / bfloat16 result is computed in float32
            and rounded once at the end.

    Returns:
        Tensor[A, 4] xyxy, rounded to integers (``torch.round``: halves to even). Same as
        ``AnchorGenerator.generate_anchors(scales, aspect_ratios)`` (in float32 for half
        precision, then cast).
    """
    for name, values in (("scales", scales), ("aspect_ratios", aspect_ratios)):
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) \
                or len(values) == 0 or not all(
                    isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values):
            raise TypeError(f"{name} must be a non-empty sequence of numbers, got {values!r}")
        if any(not v > 0 for v in values):
            raise ValueError(f"{name} must be positive, got {values!r}")
    work = _compute_dtype(dtype)
    scales_t = torch.as_tensor(scales, dtype=work, device=device)  # (S,)
    ratios = torch.as_tensor(aspect_ratios, dtype=work, device=device)  # (R,)
    h_ratios = torch.sqrt(ratios)
    w_ratios = 1 / h_ratios
    ws = (w_ratios[:, None] * scales_t[None, :]).reshape(-1)  # (R * S,)
    hs = (h_ratios[:, None] * scales_t[None, :]).reshape(-1)
    return (torch.stack([-ws, -hs, ws, hs], dim=1) / 2).round().to(dtype)  # (A, 4)


def grid_anchors(feature_size: Pair, stride: Pair, cell_anchors: Tensor) -> Tensor:
    """Shift the cell anchors to every feature-map position.

    Args:
        feature_size: ``(H, W)`` of the feature map.
        stride: ``(stride_h, stride_w)`` in image pixels per feature cell.
        cell_anchors: Tensor[A, 4] zero-centred anchors (``generate_anchors``).

    Returns:
        Tensor[H * W * A, 4] in ``cell_anchors``' dtype: row ``(y * W + x) * A + a`` is
        anchor ``a`` centred at ``(x * stride_w, y * stride_h)``. Same as
        ``AnchorGenerator.grid_anchors``; the sums are float32 for float16 / bfloat16
        anchors (a bfloat16 sum would round the shift first: ``x = 300`` is not a
        bfloat16 number).
    """
    H, W = int_pair(feature_size, "feature_size", minimum=0)
    sh, sw = int_pair(stride, "stride", minimum=0)
    require_dim(cell_anchors, "cell_anchors", 2, "Tensor[A, 4]")
    if cell_anchors.shape[1] != 4:
        raise ValueError(f"cell_anchors must be Tensor[A, 4], got {shape_str(cell_anchors)}")
    device = cell_anchors.device
    work = torch.promote_types(cell_anchors.dtype, torch.float32) \
        if cell_anchors.is_floating_point() else cell_anchors.dtype
    shifts_x = torch.arange(W, dtype=torch.int64, device=device) * sw  # (W,)
    shifts_y = torch.arange(H, dtype=torch.int64, device=device) * sh  # (H,)
    shift_y, shift_x = torch.meshgrid(shifts_y, shifts_x, indexing="ij")  # (H, W) each
    shift_x, shift_y = shift_x.reshape(-1), shift_y.reshape(-1)
    shifts = torch.stack((shift_x, shift_y, shift_x, shift_y), dim=1).to(work)  # (H * W, 4)
    anchors = shifts[:, None, :] + cell_anchors.to(work)[None, :, :]  # (H * W, A, 4)
    return anchors.reshape(-1, 4).to(cell_anchors.dtype)


def anchors_for_image(image_size: Pair, feature_sizes: Sequence[Pair],
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
        dtype, device: of the result (computed in float32 for float16 / bfloat16).

    Returns:
        Tensor[sum_l H_l * W_l * A_l, 4], levels concatenated. Same as
        ``AnchorGenerator(sizes, aspect_ratios)(image_list, feature_maps)[0]``.
    """
    image_h, image_w = int_pair(image_size, "image_size")
    for name, seq in (("feature_sizes", feature_sizes), ("sizes", sizes),
                      ("aspect_ratios", aspect_ratios)):
        if isinstance(seq, (str, bytes)) or not isinstance(seq, Sequence):
            raise TypeError(f"{name} must be a sequence with one entry per level, got {seq!r}")
    if not (len(feature_sizes) == len(sizes) == len(aspect_ratios)):
        raise ValueError(f"feature_sizes, sizes and aspect_ratios need one entry per level, got "
                         f"{len(feature_sizes)}, {len(sizes)} and {len(aspect_ratios)}")
    work = _compute_dtype(dtype)
    levels = []
    per_level = zip(feature_sizes, sizes, aspect_ratios, strict=True)
    for level, (size, scales, ratios) in enumerate(per_level):
        h, w = int_pair(size, f"feature_sizes[{level}]")
        cell = generate_anchors(scales, ratios, dtype=work, device=device)
        levels.append(grid_anchors((h, w), (image_h // h, image_w // w), cell))
    return torch.cat(levels).to(dtype)
