"""Argument checks shared by the dense-prediction functions (on top of coursekit.validators)."""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.validators import require_bool, require_floating, shape_str


def check_pair(pred: Tensor, target: Tensor, mask: Tensor | None, *, names=("pred", "target"),
               channels: int | None = None) -> Tensor:
    """Validate pred/target/mask and return a bool mask broadcast to pred's pixels."""
    for name, t in zip(names, (pred, target), strict=True):
        require_floating(t, name)
    if pred.shape != target.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, "
                         f"got {shape_str(pred)} and {shape_str(target)}")
    if channels is not None and (pred.dim() < 3 or pred.shape[-3] != channels):
        raise ValueError(f"{names[0]} must be Tensor[..., {channels}, H, W], "
                         f"got {shape_str(pred)}")
    pixel_shape = pred.shape if channels is None else pred.shape[:-3] + pred.shape[-2:]
    if mask is None:
        return torch.ones(pixel_shape, dtype=torch.bool, device=pred.device)
    require_bool(mask, "mask", hint=" (True where a pixel counts)")
    if mask.shape != pixel_shape:
        expected = "Tensor[" + ", ".join(str(s) for s in pixel_shape) + "]"
        raise ValueError(f"mask must be {expected} (one value per pixel), got {shape_str(mask)}")
    return mask


def accumulation_dtype(*tensors: Tensor) -> torch.dtype:
    """The dtype sums are taken in: the tensors' common dtype, at least float32."""
    dtype = torch.float32
    for t in tensors:
        dtype = torch.promote_types(dtype, t.dtype)
    return dtype
