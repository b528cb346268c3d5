"""Argument checks shared by the dense-prediction functions."""

from __future__ import annotations

import torch
from torch import Tensor


def shape_str(t: object) -> str:
    return f"Tensor{list(t.shape)}" if isinstance(t, Tensor) else type(t).__name__


def check_pair(pred: Tensor, target: Tensor, mask: Tensor | None, *, names=("pred", "target"),
               channels: int | None = None) -> Tensor:
    """Validate pred/target/mask and return a bool mask broadcast to pred's pixels."""
    for name, t in zip(names, (pred, target)):
        if not isinstance(t, Tensor) or not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point Tensor, got {shape_str(t)}"
                            + (f" of {t.dtype}" if isinstance(t, Tensor) else ""))
    if pred.shape != target.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {shape_str(pred)} and {shape_str(target)}")
    if channels is not None and (pred.dim() < 3 or pred.shape[-3] != channels):
        raise ValueError(f"{names[0]} must be Tensor[..., {channels}, H, W], got {shape_str(pred)}")
    pixel_shape = pred.shape if channels is None else pred.shape[:-3] + pred.shape[-2:]
    if mask is None:
        return torch.ones(pixel_shape, dtype=torch.bool, device=pred.device)
    if not isinstance(mask, Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool Tensor, got {shape_str(mask)}")
    if mask.shape != pixel_shape:
        raise ValueError(f"mask must be Tensor{list(pixel_shape)} (one value per pixel), got {shape_str(mask)}")
    return mask
