"""Pasting: put each predicted ``M × M`` mask back into the image, inside its box.

Lecture: *Mask R-CNN* — the mask head predicts a small ``28 × 28`` mask in the
box's own frame; at test time it is **resized to the box and pasted** into an
image-sized canvas (then thresholded at 0.5). torchvision's recipe, which this
file follows step by step:

1. pad the mask by ``padding`` pixels of 0 on every side: ``(M + 2p) × (M + 2p)``, so
   the resized mask fades to 0 at the box's edge instead of stopping abruptly;
2. grow the box about its centre by the same factor ``s = (M + 2p) / M`` and truncate
   its corners to integers (``.to(int64)``, towards zero): ``(x0, y0, x1, y1)``;
3. resize the padded mask to the integer box size ``h × w = (y1 - y0 + 1) × (x1 - x0 + 1)``
   with bilinear interpolation (``align_corners=False``; lesson 02);
4. write it at rows ``y0..y1`` and columns ``x0..x1``, clipped to the image.

Step 3 + 4 for image pixel ``(y, x)`` inside the box is one bilinear read of the
padded mask at ``src_y = (y - y0 + 0.5) · (M + 2p) / h - 0.5`` (clamped at 0), likewise
``src_x``: ``paste_masks_in_image`` does all masks and pixels at once with
``bilinear_sample``; ``paste_masks_in_image_loop`` is the literal per-mask version with
``bilinear_upsample`` and slicing. Both equal torchvision's
``roi_heads.paste_masks_in_image``; tested in tests/instance/test_paste.py.

``aligned=True`` is Detectron2's paste instead (``_do_paste_mask``): no padding, no integer
box; the ``M × M`` mask covers the box ``[x0, x1] × [y0, y1]`` exactly and image pixel
``(y, x)`` — centre ``(y + 0.5, x + 0.5)`` — reads the mask bilinearly at
``src_x = (x + 0.5 - x0) · M / (x1 - x0) - 0.5`` (likewise ``src_y``), zero outside the mask.
It inverts ``project_masks_on_boxes(..., aligned=True)``: a box-shaped mask comes back
where it was, which torchvision's pair of conventions misses by half a pixel.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.detection.boxes import check_boxes, shape_str
from coursekit.upsampling.bilinear import bilinear_sample, bilinear_upsample


def _check(masks: object, boxes: object, img_shape: object, padding: object, aligned: object = False) -> tuple[int, int]:
    if not isinstance(masks, Tensor):
        raise TypeError(f"masks must be a Tensor[N, 1, M, M], got {type(masks).__name__}")
    if masks.dim() != 4 or masks.shape[1] != 1 or masks.shape[2] != masks.shape[3]:
        raise ValueError(f"masks must be Tensor[N, 1, M, M] (one square mask per box), got {shape_str(masks)}")
    if not masks.is_floating_point():
        raise TypeError(f"masks must be a floating-point tensor (probabilities), got dtype {masks.dtype}")
    check_boxes(boxes, "boxes", floating=True)
    if boxes.shape[0] != masks.shape[0]:  # type: ignore[union-attr]
        raise ValueError(f"masks and boxes must have the same count N, got {shape_str(masks)} "
                         f"and {shape_str(boxes)}")  # type: ignore[arg-type]
    if boxes.device != masks.device:  # type: ignore[union-attr]
        raise ValueError(f"masks and boxes must be on the same device, got {masks.device} and {boxes.device}")  # type: ignore[union-attr]
    ok = isinstance(img_shape, (tuple, list, torch.Size)) and len(img_shape) == 2 and all(
        isinstance(v, int) and not isinstance(v, bool) for v in img_shape)
    if not ok or min(img_shape) <= 0:  # type: ignore[type-var,arg-type]
        raise ValueError(f"img_shape must be (height, width), two positive ints, got {img_shape!r}")
    if isinstance(padding, bool) or not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be an int >= 0, got {padding!r}")
    if not isinstance(aligned, bool):
        raise TypeError(f"aligned must be a bool, got {aligned!r}")
    return int(img_shape[0]), int(img_shape[1])  # type: ignore[index]


def expand_boxes(boxes: Tensor, scale: float) -> Tensor:
    """Grow each box about its centre by ``scale``: Tensor[N, 4] -> Tensor[N, 4] (same dtype)."""
    w_half = (boxes[:, 2] - boxes[:, 0]) * 0.5 * scale
    h_half = (boxes[:, 3] - boxes[:, 1]) * 0.5 * scale
    x_c = (boxes[:, 2] + boxes[:, 0]) * 0.5
    y_c = (boxes[:, 3] + boxes[:, 1]) * 0.5
    return torch.stack([x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half], dim=1)


def _padded_masks_and_boxes(masks: Tensor, boxes: Tensor, padding: int) -> tuple[Tensor, Tensor]:
    """Steps 1 and 2: the padded masks Tensor[N, 1, M + 2p, M + 2p] and integer boxes int64 Tensor[N, 4]."""
    M = masks.shape[-1]
    scale = float(M + 2 * padding) / M
    padded = F.pad(masks, (padding,) * 4)  # (N, 1, M + 2p, M + 2p), zeros around
    return padded, expand_boxes(boxes, scale).to(torch.int64)  # truncation towards zero, as torchvision


def paste_masks_in_image(masks: Tensor, boxes: Tensor, img_shape: tuple[int, int], padding: int = 1,
                         aligned: bool = False) -> Tensor:
    """Paste ``N`` box-frame masks into ``N`` image-sized canvases (all at once).

    For image pixel ``(y, x)`` and integer expanded box ``(x0, y0, x1, y1)`` with
    ``h = max(y1 - y0 + 1, 1)``, ``w = max(x1 - x0 + 1, 1)``::

        out[n, 0, y, x] = bilinear(padded[n], src_y, src_x)   if y0 <= y <= y1 and x0 <= x <= x1, else 0
        src_y = max(0, (y - y0 + 0.5) · (M + 2p) / h - 0.5)    (likewise src_x with w)

    which is "resize the padded mask to h × w, then paste it at (y0, x0)" (module docstring).

    Args:
        masks: Tensor[N, 1, M, M] floating point (probabilities, usually after a sigmoid).
        boxes: Tensor[N, 4] xyxy in image pixels, floating point.
        img_shape: ``(H, W)`` of the image.
        padding: zero pixels added around each mask before resizing (torchvision: 1).
        aligned: ``True`` for Detectron2's half-pixel-exact paste (module docstring);
            ``padding`` is then not used.

    Returns:
        Tensor[N, 1, H, W] in ``masks``' dtype; differentiable w.r.t. ``masks``. Same as
        ``torchvision.models.detection.roi_heads.paste_masks_in_image`` (``aligned=False``)
        and as Detectron2's ``grid_sample`` paste (``aligned=True``); tested in
        tests/instance/test_paste.py.
    """
    H, W = _check(masks, boxes, img_shape, padding, aligned)
    N = masks.shape[0]
    if N == 0:
        return masks.new_zeros(0, 1, H, W)
    if aligned:
        return _paste_aligned(masks, boxes, H, W)
    padded, box = _padded_masks_and_boxes(masks, boxes, padding)  # (N, 1, Mp, Mp), (N, 4) int64
    Mp = padded.shape[-1]
    w = (box[:, 2] - box[:, 0] + 1).clamp(min=1)  # (N,) integer box size
    h = (box[:, 3] - box[:, 1] + 1).clamp(min=1)
    ys = torch.arange(H, device=masks.device)  # (H,)
    xs = torch.arange(W, device=masks.device)  # (W,)
    inside_y = (ys >= box[:, 1:2]) & (ys <= box[:, 3:4])  # (N, H)
    inside_x = (xs >= box[:, 0:1]) & (xs <= box[:, 2:3])  # (N, W)
    # F.interpolate's source coordinate: (dst + 0.5) * (in / out) - 0.5, clamped at 0
    src_y = ((ys - box[:, 1:2]).to(masks.dtype) + 0.5) * (Mp / h.to(masks.dtype))[:, None] - 0.5  # (N, H)
    src_x = ((xs - box[:, 0:1]).to(masks.dtype) + 0.5) * (Mp / w.to(masks.dtype))[:, None] - 0.5  # (N, W)
    src_y, src_x = src_y.clamp(min=0), src_x.clamp(min=0)
    index = torch.arange(N, device=masks.device)[:, None, None]  # (N, 1, 1): mask n reads its own padded mask
    values = bilinear_sample(padded, src_y[:, :, None], src_x[:, None, :], index)  # (N, H, W, 1)
    inside = (inside_y[:, :, None] & inside_x[:, None, :]).unsqueeze(-1)  # (N, H, W, 1)
    return (values * inside).permute(0, 3, 1, 2)  # (N, 1, H, W)


def _paste_aligned(masks: Tensor, boxes: Tensor, H: int, W: int) -> Tensor:
    """Detectron2's paste: pixel centres read the box-covering mask bilinearly, zeros outside it."""
    N, M = masks.shape[0], masks.shape[-1]
    dtype = torch.promote_types(masks.dtype, torch.float32)  # half precision cannot hold pixel centres like 601.5
    framed = F.pad(masks.to(dtype), (1, 1, 1, 1))  # (N, 1, M + 2, M + 2): one ring of zeros = "zero outside the mask"
    boxes = boxes.to(dtype)
    size = (boxes[:, 2:] - boxes[:, :2]).clamp(min=torch.finfo(dtype).eps)  # (N, 2) box width, height
    centres_y = torch.arange(H, device=masks.device, dtype=dtype) + 0.5  # (H,)
    centres_x = torch.arange(W, device=masks.device, dtype=dtype) + 0.5  # (W,)
    src_y = (centres_y - boxes[:, 1:2]) * (M / size[:, 1:2]) - 0.5 + 1  # (N, H), +1 for the ring
    src_x = (centres_x - boxes[:, 0:1]) * (M / size[:, 0:1]) - 0.5 + 1  # (N, W)
    src_y, src_x = src_y.clamp(0, M + 1), src_x.clamp(0, M + 1)  # beyond the ring everything is 0
    index = torch.arange(N, device=masks.device)[:, None, None]  # (N, 1, 1)
    values = bilinear_sample(framed, src_y[:, :, None], src_x[:, None, :], index)  # (N, H, W, 1)
    return values.permute(0, 3, 1, 2).to(masks.dtype)  # (N, 1, H, W)


def paste_masks_in_image_loop(masks: Tensor, boxes: Tensor, img_shape: tuple[int, int],
                              padding: int = 1) -> Tensor:
    """``paste_masks_in_image`` written as the recipe reads, one mask at a time (for teaching).

    For each mask: resize the padded mask to the integer box size with
    ``bilinear_upsample`` (step 3), then copy the part that falls inside the image into
    a zero canvas with slicing (step 4). Same result as ``paste_masks_in_image``.
    """
    H, W = _check(masks, boxes, img_shape, padding)
    padded, box = _padded_masks_and_boxes(masks, boxes, padding)
    canvases = []
    for mask, (x0, y0, x1, y1) in zip(padded, box.tolist()):
        w, h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
        resized = bilinear_upsample(mask[None], size=(h, w))[0, 0]  # (h, w): the mask at box resolution
        canvas = masks.new_zeros(H, W)
        top, bottom = max(y0, 0), min(y1 + 1, H)  # rows of the box that lie in the image
        left, right = max(x0, 0), min(x1 + 1, W)
        if bottom > top and right > left:
            canvas[top:bottom, left:right] = resized[top - y0:bottom - y0, left - x0:right - x0]
        canvases.append(canvas)
    return torch.stack(canvases)[:, None] if canvases else masks.new_zeros(0, 1, H, W)
