"""Optical flow as per-pixel regression: end-point error and warping.

Flow is a 2-vector per pixel, ``flow[:, y, x] = (dx, dy)``: the point seen at
pixel (x, y) in frame 1 is at (x + dx, y + dy) in frame 2. So reading frame 2
at the displaced positions rebuilds frame 1 (a *backward warp*)::

    frame1(x, y) ≈ frame2(x + dx, y + dy)

everywhere the point is visible in both frames. ``warp`` does that read with
the course's own bilinear sampler (``coursekit.upsampling.bilinear_sample``,
lesson 02), so a flow field can be checked without ground truth: warp and
compare. The end-point error (EPE) is the mean Euclidean distance between the
predicted and the true flow vectors, ``mean ‖f − f*‖₂``, the standard flow metric.

Same as ``F.grid_sample(frame2, grid, padding_mode="border")`` with the grid built
from the flow: with ``align_corners=False`` and ``grid = (2 (x + dx) + 1) / W - 1`` it
is exact; with ``align_corners=True`` and ``grid = 2 (x + dx) / (W - 1) - 1`` equal up
to float rounding (the normalisation does not cancel exactly). Tested in
tests/dense/test_flow.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.dense._checks import check_pair, shape_str
from coursekit.upsampling.bilinear import bilinear_sample


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Backward-warp ``image`` (frame 2) by ``flow`` so it lines up with frame 1.

    Args:
        image: Tensor[N, C, H, W] (or [C, H, W]).
        flow: Tensor[N, 2, H, W] (or [2, H, W]), (dx, dy) in pixels.
    Returns:
        Tensor like ``image``: ``out[n, :, y, x] = image[n, :, y + dy, x + dx]`` sampled
        bilinearly, positions outside the image clamped to the border.
    """
    if not isinstance(image, Tensor) or image.dim() not in (3, 4):
        raise ValueError(f"image must be Tensor[N, C, H, W] or Tensor[C, H, W], got {shape_str(image)}")
    squeeze = image.dim() == 3
    if squeeze:
        image = image[None]
        if isinstance(flow, Tensor) and flow.dim() == 3:
            flow = flow[None]
    n, _, h, w = image.shape
    if not isinstance(flow, Tensor) or flow.shape != (n, 2, h, w):
        raise ValueError(f"flow must be Tensor[{n}, 2, {h}, {w}] to match image {shape_str(image)}, got {shape_str(flow)}")
    ys = torch.arange(h, device=image.device, dtype=flow.dtype).view(1, h, 1)
    xs = torch.arange(w, device=image.device, dtype=flow.dtype).view(1, 1, w)
    y = (ys + flow[:, 1]).clamp(0, h - 1)  # (N, H, W)
    x = (xs + flow[:, 0]).clamp(0, w - 1)
    batch = torch.arange(n, device=image.device).view(n, 1, 1)
    out = bilinear_sample(image, y, x, batch).permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    return out[0] if squeeze else out


def end_point_error(flow_pred: Tensor, flow_true: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean end-point error ``mean ‖f − f*‖₂`` over valid pixels (differentiable).

    Args:
        flow_pred, flow_true: Tensor[N, 2, H, W] (or [2, H, W]).
        mask: optional bool Tensor[N, H, W] (or [H, W]).
    """
    valid = check_pair(flow_pred, flow_true, mask, names=("flow_pred", "flow_true"), channels=2)
    diff = flow_pred - flow_true
    epe = (diff.pow(2).sum(dim=-3) + 1e-12).sqrt()  # (..., H, W); eps keeps the gradient finite at 0
    count = valid.sum().clamp(min=1)
    return (epe * valid).sum() / count


def flow_metrics(flow_pred: Tensor, flow_true: Tensor, mask: Tensor | None = None) -> dict[str, float]:
    """EPE and the share of pixels within 1, 3 and 5 pixels of the truth."""
    valid = check_pair(flow_pred, flow_true, mask, names=("flow_pred", "flow_true"), channels=2)
    epe = (flow_pred - flow_true).pow(2).sum(dim=-3).sqrt()[valid]
    if epe.numel() == 0:
        raise ValueError("mask selects no pixel: flow metrics need at least one valid pixel")
    return {"epe": float(epe.mean()), "1px": float((epe < 1).double().mean()),
            "3px": float((epe < 3).double().mean()), "5px": float((epe < 5).double().mean())}
