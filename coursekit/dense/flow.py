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

Reduced precision: the positions ``x + dx`` are float32 at least (in bfloat16 the column
300 plus a flow of 0.3 is 300), and so are the EPE's sums; ``warp`` and
``end_point_error`` return the inputs' dtype. Tested in float16 / bfloat16 in
tests/dense/test_reduced_precision.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.dense._checks import accumulation_dtype, check_pair
from coursekit.upsampling.bilinear import bilinear_sample
from coursekit.validators import describe, require_floating, shape_str


def warp(image: Tensor, flow: Tensor) -> Tensor:
    """Backward-warp ``image`` (frame 2) by ``flow`` so it lines up with frame 1.

    Args:
        image: Tensor[N, C, H, W] (or [C, H, W]).
        flow: Tensor[N, 2, H, W] (or [2, H, W]), (dx, dy) in pixels.
    Returns:
        Tensor like ``image``: ``out[n, :, y, x] = image[n, :, y + dy, x + dx]`` sampled
        bilinearly, positions outside the image clamped to the border.
    """
    require_floating(image, "image", "a floating-point Tensor[N, C, H, W] or Tensor[C, H, W]")
    if image.dim() not in (3, 4):
        raise ValueError(f"image must be Tensor[N, C, H, W] or Tensor[C, H, W], "
                         f"got {shape_str(image)}")
    squeeze = image.dim() == 3
    if squeeze:
        image = image[None]
        if isinstance(flow, Tensor) and flow.dim() == 3:
            flow = flow[None]
    n, _, h, w = image.shape
    if h == 0 or w == 0:
        raise ValueError(f"image must have H, W >= 1 (a pixel to warp), got {shape_str(image)}")
    expected = f"Tensor[{n}, 2, {h}, {w}] to match image {shape_str(image)}"
    require_floating(flow, "flow", f"a floating-point {expected}")
    if flow.shape != (n, 2, h, w):
        raise ValueError(f"flow must be {expected}, got {describe(flow)}")
    acc = accumulation_dtype(image, flow)  # positions in float32 at least
    ys = torch.arange(h, device=image.device, dtype=acc).view(1, h, 1)
    xs = torch.arange(w, device=image.device, dtype=acc).view(1, 1, w)
    y = (ys + flow[:, 1].to(acc)).clamp(0, h - 1)  # (N, H, W)
    x = (xs + flow[:, 0].to(acc)).clamp(0, w - 1)
    batch = torch.arange(n, device=image.device).view(n, 1, 1)
    out = bilinear_sample(image, y, x, batch).permute(0, 3, 1, 2)  # (N, H, W, C) -> (N, C, H, W)
    return out[0] if squeeze else out


NAMES = ("flow_pred", "flow_true")


def end_point_error(flow_pred: Tensor, flow_true: Tensor, mask: Tensor | None = None) -> Tensor:
    """Mean end-point error ``mean ‖f − f*‖₂`` over valid pixels (differentiable).

    Args:
        flow_pred, flow_true: Tensor[N, 2, H, W] (or [2, H, W]).
        mask: optional bool Tensor[N, H, W] (or [H, W]).

    Returns:
        scalar Tensor in the inputs' dtype (summed in float32 at least).
    """
    valid = check_pair(flow_pred, flow_true, mask, names=NAMES, channels=2)
    acc = accumulation_dtype(flow_pred, flow_true)  # sums in float32 at least
    diff = flow_pred.to(acc) - flow_true.to(acc)  # (..., 2, H, W)
    epe = (diff.pow(2).sum(dim=-3) + 1e-12).sqrt()  # (..., H, W); eps: finite gradient at 0
    count = valid.sum().clamp(min=1)
    out_dtype = torch.promote_types(flow_pred.dtype, flow_true.dtype)
    return ((epe * valid).sum() / count).to(out_dtype)


def flow_metrics(flow_pred: Tensor, flow_true: Tensor,
                 mask: Tensor | None = None) -> dict[str, float]:
    """EPE and the share of pixels within 1, 3 and 5 pixels of the truth (float32 at least)."""
    valid = check_pair(flow_pred, flow_true, mask, names=NAMES, channels=2)
    acc = accumulation_dtype(flow_pred, flow_true)
    epe = (flow_pred.to(acc) - flow_true.to(acc)).pow(2).sum(dim=-3).sqrt()[valid]  # (P,)
    if epe.numel() == 0:
        raise ValueError("mask selects no pixel: flow metrics need at least one valid pixel")
    return {"epe": float(epe.mean()), "1px": float((epe < 1).to(acc).mean()),
            "3px": float((epe < 3).to(acc).mean()), "5px": float((epe < 5).to(acc).mean())}
