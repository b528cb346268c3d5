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

import torch
from torch import Tensor

from coursekit.detection.boxes import check_boxes, shape_str

DEFAULT_CLIP = math.log(1000.0 / 16)


def _check_weights(weights: object) -> tuple[float, float, float, float]:
    if not isinstance(weights, (tuple, list)) or len(weights) != 4:
        raise TypeError(f"weights must be a tuple of 4 floats (wx, wy, ww, wh), got {weights!r}")
    return tuple(float(w) for w in weights)  # type: ignore[return-value]


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
        weights: ``(wx, wy, ww, wh)``.

    Returns:
        Tensor[N, 4] of ``(dx, dy, dw, dh)`` (formula in the module docstring). Same as
        ``BoxCoder(weights).encode_single(reference_boxes, proposals)``.
    """
    check_boxes(reference_boxes, "reference_boxes", floating=True)
    check_boxes(proposals, "proposals", floating=True)
    if reference_boxes.shape[0] != proposals.shape[0]:
        raise ValueError(f"reference_boxes and proposals must have the same N, got "
                         f"{shape_str(reference_boxes)} and {shape_str(proposals)}")
    wx, wy, ww, wh = _check_weights(weights)
    gx, gy, gw, gh = _centres_sizes(reference_boxes)  # (N, 1) each
    px, py, pw, ph = _centres_sizes(proposals)
    dx = wx * (gx - px) / pw
    dy = wy * (gy - py) / ph
    dw = ww * torch.log(gw / pw)
    dh = wh * torch.log(gh / ph)
    return torch.cat((dx, dy, dw, dh), dim=1)  # (N, 4)


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
        Tensor[N, 4 * k] of decoded xyxy boxes, in ``rel_codes``' dtype. Same as
        ``BoxCoder(weights, bbox_xform_clip).decode_single(rel_codes, boxes)``.
    """
    check_boxes(boxes, "boxes", floating=True)
    if not isinstance(rel_codes, Tensor) or rel_codes.dim() != 2 or rel_codes.shape[1] % 4 != 0 \
            or rel_codes.shape[0] != boxes.shape[0]:
        got = shape_str(rel_codes) if isinstance(rel_codes, Tensor) else type(rel_codes).__name__
        raise ValueError(f"rel_codes must be Tensor[N, 4 * k] with N = {boxes.shape[0]}, got {got}")
    wx, wy, ww, wh = _check_weights(weights)
    boxes = boxes.to(rel_codes.dtype)
    px, py, pw, ph = _centres_sizes(boxes)  # (N, 1) each
    dx = rel_codes[:, 0::4] / wx  # (N, k)
    dy = rel_codes[:, 1::4] / wy
    dw = (rel_codes[:, 2::4] / ww).clamp(max=bbox_xform_clip)
    dh = (rel_codes[:, 3::4] / wh).clamp(max=bbox_xform_clip)
    ctr_x = dx * pw + px
    ctr_y = dy * ph + py
    half_w = 0.5 * (torch.exp(dw) * pw)
    half_h = 0.5 * (torch.exp(dh) * ph)
    out = torch.stack((ctr_x - half_w, ctr_y - half_h, ctr_x + half_w, ctr_y + half_h), dim=2)  # (N, k, 4)
    return out.flatten(1)  # (N, 4 * k)
