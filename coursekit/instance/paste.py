"""Pasting: put each predicted ``M × M`` mask back into the image, inside its box.

Lecture: *Mask R-CNN* — the mask head predicts a small ``28 × 28`` mask in the
box's own frame; at test time it is **resized to the box and pasted** into an
image-sized canvas (then thresholded at 0.5). Two conventions exist:

``aligned=True`` (the default; Detectron2's ``_do_paste_mask``, and what the shipped
Mask R-CNN uses): the ``M × M`` mask covers the box ``[x0, x1] × [y0, y1]`` exactly, and
image pixel ``(y, x)`` — centre ``(y + 0.5, x + 0.5)`` — reads the mask bilinearly at::

    src_x = (x + 0.5 - x0) · M / (x1 - x0) - 0.5        (likewise src_y)

zero outside the mask. It inverts ``project_masks_on_boxes(..., aligned=True)``: a
box-shaped mask comes back where it was.

``aligned=False`` is torchvision's ``roi_heads.paste_masks_in_image``, step by step:

1. pad the mask by ``padding`` pixels of 0 on every side: ``(M + 2p) × (M + 2p)``, so
   the resized mask fades to 0 at the box's edge instead of stopping abruptly;
2. grow the box about its centre by the same factor ``s = (M + 2p) / M`` and truncate
   its corners to integers (``.to(int64)``, towards zero): ``(x0, y0, x1, y1)``;
3. resize the padded mask to the integer box size ``h × w = (y1 - y0 + 1) × (x1 - x0 + 1)``
   with bilinear interpolation (``align_corners=False``; lesson 02);
4. write it at rows ``y0..y1`` and columns ``x0..x1``, clipped to the image.

Steps 3 + 4 for image pixel ``(y, x)`` inside the box are one bilinear read of the padded
mask at ``src_y = max(0, (y - y0 + 0.5) · (M + 2p) / h - 0.5)``, likewise ``src_x``. With
the two conventions paired (targets and paste) torchvision's misses by half a pixel.

**Bilinear interpolation is separable**: reading a mask ``m`` at the rows ``src_y`` and
columns ``src_x`` of a whole grid is ``Ry · m · Rxᵀ``, where row ``y`` of ``Ry`` (H × M)
holds the two weights ``1 - f`` and ``f`` of ``src_y[y]`` (zero rows outside the box).
``paste_masks_in_image`` pastes every mask that way with two batched matrix products,
a few masks at a time, so memory stays at the output plus a fixed budget;
``paste_masks_in_image_loop`` is torchvision's recipe written literally, one mask at a
time with ``bilinear_upsample`` and slicing. Tested in tests/instance/test_paste.py
(against torchvision and Detectron2's ``grid_sample`` paste).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.upsampling.bilinear import bilinear_upsample
from coursekit.validators import check_boxes, int_pair, positive_int, require_floating, shape_str

# at most this many values (masks × pixels, or masks × rows × mask side) are computed at
# once besides the output: 2**22 float32 values = 16 MiB
BUDGET = 1 << 22


def _check(masks: object, boxes: object, img_shape: object, padding: object,
           aligned: object = True, threshold: object = None) -> tuple[int, int]:
    require_floating(masks, "masks", "a floating-point Tensor[N, 1, M, M] (probabilities)")
    if masks.dim() != 4 or masks.shape[1] != 1 or masks.shape[2] != masks.shape[3]:
        raise ValueError("masks must be Tensor[N, 1, M, M] (one square mask per box), "
                         f"got {shape_str(masks)}")
    check_boxes(boxes, "boxes", floating=True)
    if boxes.shape[0] != masks.shape[0]:
        raise ValueError(f"masks and boxes must have the same count N, got "
                         f"{shape_str(masks)} and {shape_str(boxes)}")
    if boxes.device != masks.device:
        raise ValueError(f"masks and boxes must be on the same device, got {masks.device} "
                         f"and {boxes.device}")
    if not isinstance(img_shape, (tuple, list, torch.Size)):
        raise TypeError(f"img_shape must be (height, width), two positive ints, got {img_shape!r}")
    if len(img_shape) != 2:
        raise ValueError(f"img_shape must be (height, width), two positive ints, got {img_shape!r}")
    H, W = int_pair(img_shape, "img_shape")
    positive_int(padding, "padding", minimum=0)
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned must be a bool, got {aligned!r}")
    if threshold is not None and (isinstance(threshold, bool)
                                  or not isinstance(threshold, (int, float))):
        raise TypeError(f"threshold must be a number or None, got {threshold!r}")
    return H, W


def expand_boxes(boxes: Tensor, scale: float) -> Tensor:
    """Grow each box about its centre by ``scale``: Tensor[N, 4] -> Tensor[N, 4] (same dtype)."""
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    return torch.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], dim=1)


def _padded_masks_and_boxes(masks: Tensor, boxes: Tensor, padding: int) -> tuple[Tensor, Tensor]:
    """Steps 1, 2: padded masks Tensor[N, 1, M + 2p, M + 2p], integer boxes int64 Tensor[N, 4]."""
    M = masks.shape[-1]
    scale = float(M + 2 * padding) / M
    padded = F.pad(masks, (padding,) * 4)  # (N, 1, M + 2p, M + 2p), zeros around
    return padded, expand_boxes(boxes, scale).to(torch.int64)  # truncated towards 0, as torchvision


def _interpolation_matrix(src: Tensor, inside: Tensor, size: int) -> Tensor:
    """Bilinear weights Tensor[N, L, size] of reading ``size`` samples at positions ``src``.

    ``src``: Tensor[N, L] real positions (clamped to ``[0, size - 1]`` as
    ``F.interpolate`` does); row ``l`` gets ``1 - f`` at ``floor(src)`` and ``f`` at
    ``floor(src) + 1`` (the last sample at the edge), ``f = src - floor(src)``; rows where
    ``inside`` (bool Tensor[N, L]) is False are 0.
    """
    src = src.clamp(0, size - 1)
    low = src.floor()
    frac = (src - low) * inside  # (N, L), 0 outside
    low = low.long()
    high = (low + 1).clamp(max=size - 1)
    weights = src.new_zeros(*src.shape, size)  # (N, L, size)
    weights.scatter_add_(2, low[..., None], (inside - frac)[..., None])  # 1 - f inside, else 0
    weights.scatter_add_(2, high[..., None], frac[..., None])
    return weights


def _sources(masks: Tensor, boxes: Tensor, H: int, W: int, padding: int, aligned: bool,
             dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The grid to read from and, per mask, where each image row / column reads it.

    Returns ``grid`` Tensor[N, S, S], ``src_y`` Tensor[N, H], ``src_x`` Tensor[N, W] and
    ``inside_y`` / ``inside_x`` (same shapes, in ``dtype``: 1 where the pixel is pasted).
    """
    device = masks.device
    if aligned:  # Detectron2: pixel centres read the box-covering mask, zeros around it
        M = masks.shape[-1]
        grid = F.pad(masks.to(dtype), (1, 1, 1, 1))[:, 0]  # (N, M + 2, M + 2): a ring of zeros
        boxes = boxes.to(dtype)  # half precision cannot hold pixel centres like 601.5
        size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=torch.finfo(dtype).eps)  # (N, 2) w, h
        centres_y = torch.arange(H, device=device, dtype=dtype) + 0.5  # (H,)
        centres_x = torch.arange(W, device=device, dtype=dtype) + 0.5  # (W,)
        src_y = (centres_y - boxes[:, 1:2]) * (M / size[:, 1:2]) - 0.5 + 1  # (N, H); +1: ring
        src_x = (centres_x - boxes[:, 0:1]) * (M / size[:, 0:1]) - 0.5 + 1  # (N, W)
        ones = src_y.new_ones(())
        return grid, src_y, src_x, ones.expand_as(src_y), ones.expand_as(src_x)
    padded, box = _padded_masks_and_boxes(masks.to(dtype), boxes, padding)  # steps 1, 2
    Mp = padded.shape[-1]
    w = (box[:, 2] - box[:, 0] + 1).clamp(min=1).to(dtype)  # (N,) integer box size
    h = (box[:, 3] - box[:, 1] + 1).clamp(min=1).to(dtype)
    ys = torch.arange(H, device=device)  # (H,)
    xs = torch.arange(W, device=device)  # (W,)
    inside_y = ((ys >= box[:, 1:2]) & (ys <= box[:, 3:4])).to(dtype)  # (N, H)
    inside_x = ((xs >= box[:, 0:1]) & (xs <= box[:, 2:3])).to(dtype)  # (N, W)
    # F.interpolate's source coordinate: (dst + 0.5) * (in / out) - 0.5, clamped at 0
    src_y = ((ys - box[:, 1:2]).to(dtype) + 0.5) * (Mp / h)[:, None] - 0.5  # (N, H)
    src_x = ((xs - box[:, 0:1]).to(dtype) + 0.5) * (Mp / w)[:, None] - 0.5  # (N, W)
    return padded[:, 0], src_y, src_x, inside_y, inside_x


def paste_masks_in_image(masks: Tensor, boxes: Tensor, img_shape: tuple[int, int],
                         padding: int = 1, aligned: bool = True,
                         threshold: float | None = None) -> Tensor:
    """Paste ``N`` box-frame masks into ``N`` image-sized canvases.

    For mask ``n`` and image pixel ``(y, x)``::

        out[n, 0, y, x] = Σ_{i, j} Ry[n, y, i] · mask[n, i, j] · Rx[n, x, j]

    with ``Ry``, ``Rx`` the bilinear weights of ``src_y``, ``src_x`` (module docstring) —
    "resize the mask to the box, then paste it". Computed a few masks at a time so that
    memory is the output plus ``BUDGET`` values, however many masks and pixels.

    Args:
        masks: Tensor[N, 1, M, M] floating point (probabilities, usually after a sigmoid).
        boxes: Tensor[N, 4] xyxy in image pixels, floating point, on ``masks``' device.
        img_shape: ``(H, W)`` of the image.
        padding: zero pixels added around each mask before resizing (``aligned=False``
            only; torchvision: 1).
        aligned: ``True`` (default): Detectron2's half-pixel-exact paste, the convention of
            the shipped Mask R-CNN and of ``project_masks_on_boxes``' default.
            ``False``: torchvision's paste.
        threshold: if given, return the bool masks ``pasted >= threshold`` instead of the
            probabilities (as Detectron2's ``paste_masks_in_image``); memory is then the
            bool output plus the budget.

    Returns:
        Tensor[N, 1, H, W] in ``masks``' dtype (computed in at least float32),
        differentiable w.r.t. ``masks``; bool if ``threshold`` is given. Same as
        ``torchvision.models.detection.roi_heads.paste_masks_in_image`` with
        ``aligned=False`` and as Detectron2's ``grid_sample`` paste with ``aligned=True``;
        tested in tests/instance/test_paste.py.
    """
    H, W = _check(masks, boxes, img_shape, padding, aligned, threshold)
    N = masks.shape[0]
    out_dtype = torch.bool if threshold is not None else masks.dtype
    out = torch.empty(N, H, W, dtype=out_dtype, device=masks.device)  # every value is written
    if N == 0:
        return out[:, None]
    dtype = torch.promote_types(masks.dtype, torch.float32)  # coordinates and sums in >= fp32
    grid, src_y, src_x, inside_y, inside_x = _sources(masks, boxes, H, W, padding, aligned, dtype)
    S = grid.shape[-1]
    needs_grad = torch.is_grad_enabled() and masks.requires_grad and threshold is None
    direct = dtype == out_dtype and not needs_grad  # the product can be written into `out`
    per_mask = (H + W) * S * 2 + (0 if direct else H * W)  # values held per mask of a chunk
    step = max(1, BUDGET // per_mask)
    for start in range(0, N, step):
        n = slice(start, start + step)
        rows = _interpolation_matrix(src_y[n], inside_y[n], S) @ grid[n]  # (n, H, S)
        cols = _interpolation_matrix(src_x[n], inside_x[n], S).transpose(1, 2)  # (n, S, W)
        if direct:
            torch.bmm(rows, cols, out=out[n])  # (n, H, W), straight into the output
        elif threshold is not None:
            torch.ge(rows @ cols, threshold, out=out[n])
        else:
            out[n] = (rows @ cols).to(out_dtype)  # (n, H, W); autograd records the copy
    return out[:, None]  # (N, 1, H, W)


def paste_masks_in_image_loop(masks: Tensor, boxes: Tensor, img_shape: tuple[int, int],
                              padding: int = 1) -> Tensor:
    """torchvision's paste written as the recipe reads, one mask at a time (for teaching).

    For each mask: resize the padded mask to the integer box size with
    ``bilinear_upsample`` (step 3), then copy the part that falls inside the image into
    a zero canvas with slicing (step 4). Same result as
    ``paste_masks_in_image(..., aligned=False)`` (torchvision's convention).
    """
    H, W = _check(masks, boxes, img_shape, padding)
    padded, box = _padded_masks_and_boxes(masks, boxes, padding)
    canvases = []
    for mask, (x0, y0, x1, y1) in zip(padded, box.tolist(), strict=True):
        w, h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
        resized = bilinear_upsample(mask[None], size=(h, w))[0, 0]  # (h, w): at box resolution
        canvas = masks.new_zeros(H, W)
        top, bottom = max(y0, 0), min(y1 + 1, H)  # rows of the box that lie in the image
        left, right = max(x0, 0), min(x1 + 1, W)
        if bottom > top and right > left:
            canvas[top:bottom, left:right] = resized[top - y0:bottom - y0, left - x0:right - x0]
        canvases.append(canvas)
    return torch.stack(canvases)[:, None] if canvases else masks.new_zeros(0, 1, H, W)
