"""Box regression targets: encode a box relative to an anchor / proposal, and decode it back.

Lecture: *R-CNN / Faster R-CNN* — the network does not predict box coordinates
directly; it predicts a **transform** of a reference box ``p`` (an anchor or a
proposal) into the target box ``g``::

    dx = wx * (gx - px) / pw        dy = wy * (gy - py) / ph
    dw = ww * log(gw / pw)          dh = wh * log(gh / ph)

with centres ``x = x1 + 0.5 * w`` and sizes ``w = x2 - x1`` (no "+1"), and
``(wx, wy, ww, wh)`` fixed weights (``(10, 10, 5, 5)`` in Faster R-CNN's box head).
Decoding inverts it: ``gx = dx / wx * pw + px``, ``gw = exp(dw / ww) * pw``, with
``dw`` clamped at ``log(1000 / 16)`` so ``exp`` cannot blow up.

Same formulas as torchvision's ``BoxCoder.encode_single`` / ``decode_single``
(``torchvision.models.detection._utils``); tested in tests/detection/test_box_coder.py.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import Tensor

from coursekit.validators import check_boxes, require_dim, require_floating, shape_str

DEFAULT_CLIP = math.log(1000.0 / 16)


def _check_weights(weights: object) -> tuple[float, float, float, float]:
    if not isinstance(weights, (tuple, list)) or len(weights) != 4 or not all(
            isinstance(w, numbers.Real) and not isinstance(w, bool) for w in weights):
        raise TypeError(f"weights must be a tuple of 4 floats (wx, wy, ww, wh), got {weights!r}")
    if not all(math.isfinite(w) and w > 0 for w in weights):
        raise ValueError(f"weights must be positive, got {weights!r}")
    return tuple(float(w) for w in weights)  # type: ignore[return-value]


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """float32 for float16 / bfloat16, else ``dtype``: coordinates stay at least float32."""
    return torch.promote_types(dtype, torch.float32)


def _centres_sizes(boxes: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """(ctr_x, ctr_y, width, height), each Tensor[N, 1]."""
    widths = boxes[:, 2:3] - boxes[:, 0:1]
    heights = boxes[:, 3:4] - boxes[:, 1:2]
    return boxes[:, 0:1] + 0.5 * widths, boxes[:, 1:2] + 0.5 * heights, widths, heights


def encode_boxes(reference_boxes: Tensor, proposals: Tensor,
                 weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0)) -> Tensor:
    """Regression targets that turn each proposal into its reference (ground-truth) box.

    Args:
        reference_boxes: Tensor[N, 4] the targets ``g`` (ground-truth boxes), xyxy.
        proposals: Tensor[N, 4] the boxes ``p`` they are encoded against (anchors), xyxy.
        weights: ``(wx, wy, ww, wh)``, positive.

    Returns:
        Tensor[N, 4] of ``(dx, dy, dw, dh)`` (formula in the module docstring), in the
        promoted dtype of the two inputs; computed in float32 for float16 / bfloat16.
        Same as ``BoxCoder(weights).encode_single(reference_boxes, proposals)``.
    """
    check_boxes(reference_boxes, "reference_boxes", floating=True)
    check_boxes(proposals, "proposals", floating=True)
    if reference_boxes.shape[0] != proposals.shape[0]:
        raise ValueError(f"reference_boxes and proposals must have the same N, got "
                         f"{shape_str(reference_boxes)} and {shape_str(proposals)}")
    wx, wy, ww, wh = _check_weights(weights)
    dtype = torch.promote_types(reference_boxes.dtype, proposals.dtype)
    work = _compute_dtype(dtype)
    gx, gy, gw, gh = _centres_sizes(reference_boxes.to(work))  # (N, 1) each
    px, py, pw, ph = _centres_sizes(proposals.to(work))
    dx = wx * (gx - px) / pw
    dy = wy * (gy - py) / ph
    dw = ww * torch.log(gw / pw)
    dh = wh * torch.log(gh / ph)
    return torch.cat((dx, dy, dw, dh), dim=1).to(dtype)  # (N, 4)


def decode_boxes(rel_codes: Tensor, boxes: Tensor,
                 weights: tuple[float, float, float, float] = (1.0, 1.0, 1.0, 1.0),
                 bbox_xform_clip: float = DEFAULT_CLIP) -> Tensor:
    """Apply regression codes to reference boxes: the inverse of ``encode_boxes``.

    Args:
        rel_codes: Tensor[N, 4 * k] of ``(dx, dy, dw, dh)`` per box, ``k`` codes per box
            (e.g. one per class).
        boxes: Tensor[N, 4] reference boxes (anchors / proposals), xyxy.
        weights: ``(wx, wy, ww, wh)``, the ones used to encode.
        bbox_xform_clip: ``dw`` and ``dh`` (after dividing by the weights) are clamped at
            this value before ``exp``.

    Returns:
        Tensor[N, 4 * k] of decoded xyxy boxes, in ``rel_codes``' dtype (computed in
        ``rel_codes``' dtype, float32 for float16 / bfloat16). Same as
        ``BoxCoder(weights, bbox_xform_clip).decode_single(rel_codes, boxes)``.
    """
    check_boxes(boxes, "boxes", floating=True)
    expected = f"Tensor[N, 4 * k] with N = {boxes.shape[0]}"
    require_dim(rel_codes, "rel_codes", 2, expected)
    require_floating(rel_codes, "rel_codes", f"a floating-point {expected}")
    if rel_codes.shape[1] % 4 != 0 or rel_codes.shape[0] != boxes.shape[0]:
        raise ValueError(f"rel_codes must be {expected}, got {shape_str(rel_codes)}")
    wx, wy, ww, wh = _check_weights(weights)
    if not isinstance(bbox_xform_clip, numbers.Real) or isinstance(bbox_xform_clip, bool):
        raise TypeError(f"bbox_xform_clip must be a number, got {bbox_xform_clip!r}")
    work = _compute_dtype(rel_codes.dtype)
    codes = rel_codes.to(work)
    px, py, pw, ph = _centres_sizes(boxes.to(work))  # (N, 1) each
    dx = codes[:, 0::4] / wx  # (N, k)
    dy = codes[:, 1::4] / wy
    dw = (codes[:, 2::4] / ww).clamp(max=bbox_xform_clip)
    dh = (codes[:, 3::4] / wh).clamp(max=bbox_xform_clip)
    ctr_x = dx * pw + px
    ctr_y = dy * ph + py
    half_w = 0.5 * (torch.exp(dw) * pw)
    half_h = 0.5 * (torch.exp(dh) * ph)
    out = torch.stack((ctr_x - half_w, ctr_y - half_h, ctr_x + half_w, ctr_y + half_h),
                      dim=2)  # (N, k, 4)
    return out.flatten(1).to(rel_codes.dtype)  # (N, 4 * k)
