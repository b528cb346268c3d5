"""Argument checks shared by every public function of coursekit: one vocabulary.

DESIGN: bad input raises a clear error naming the argument, what was expected
and what came. A wrong *type* (not a tensor, a float tensor where ids are
needed) is a ``TypeError``; a wrong *value* or *shape* is a ``ValueError``.
Every message names a tensor the same way, through :func:`describe`::

    >>> describe(torch.zeros(2, 3))
    'Tensor[2, 3] float32'
    >>> describe([1, 2])
    'list'

Tested in tests/core/test_validators.py.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "boxes_to_rois",
    "check_boxes",
    "check_frames",
    "count_parameters",
    "describe",
    "int_pair",
    "number_pair",
    "positive_int",
    "require_bool",
    "require_dim",
    "require_floating",
    "require_integer",
    "require_tensor",
    "shape_str",
]


def shape_str(t: object) -> str:
    """``Tensor[2, 3, 4]`` for a tensor, the type's name for anything else."""
    if isinstance(t, Tensor):
        return "Tensor[" + ", ".join(str(s) for s in t.shape) + "]"
    return type(t).__name__


def describe(t: object) -> str:
    """``Tensor[2, 3, 4] float32`` for a tensor, the type's name for anything else."""
    if isinstance(t, Tensor):
        return f"{shape_str(t)} {str(t.dtype).replace('torch.', '')}"
    return type(t).__name__


def require_tensor(t: object, name: str, expected: str = "a Tensor") -> Tensor:
    """Raise ``TypeError`` unless ``t`` is a tensor; ``expected`` says which (``Tensor[N, 4]``)."""
    if not isinstance(t, Tensor):
        raise TypeError(f"{name} must be {expected}, got {describe(t)}")
    return t


def require_dim(t: object, name: str, dim: int | tuple[int, ...], expected: str) -> Tensor:
    """A tensor of rank ``dim`` (or one of several ranks); ``expected`` is its shape in words."""
    require_tensor(t, name, expected)
    dims = (dim,) if isinstance(dim, int) else dim
    if t.dim() not in dims:
        raise ValueError(f"{name} must be {expected}, got {shape_str(t)}")
    return t


def require_floating(t: object, name: str, expected: str = "a floating-point Tensor") -> Tensor:
    """A real floating-point tensor (float16, bfloat16, float32, float64)."""
    require_tensor(t, name, expected)
    if not t.is_floating_point():
        raise TypeError(f"{name} must be {expected} (float16, bfloat16, float32 or float64), "
                        f"got {describe(t)}")
    return t


def require_integer(t: object, name: str, expected: str = "an integer Tensor") -> Tensor:
    """An integer tensor (uint8 ... int64), not bool, float or complex."""
    require_tensor(t, name, expected)
    if t.is_floating_point() or t.is_complex() or t.dtype == torch.bool:
        raise TypeError(f"{name} must be {expected} (int64, int32, uint8, ...), got {describe(t)}")
    return t


def require_bool(t: object, name: str, expected: str = "a bool Tensor", hint: str = "") -> Tensor:
    """A bool tensor. Float masks are refused, not silently cast: say ``probs > 0.5`` first."""
    require_tensor(t, name, expected)
    if t.dtype != torch.bool:
        hint = hint or " (threshold soft masks first, e.g. probs > 0.5)"
        raise TypeError(f"{name} must be {expected}{hint}, got {describe(t)}")
    return t


def positive_int(value: object, name: str, minimum: int = 1) -> int:
    """An ``int >= minimum`` (bool refused); ``TypeError`` for a non-int, ``ValueError`` below."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an int, got {value!r}")
    if value < minimum:
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(value)


def int_pair(value: object, name: str, minimum: int = 1) -> tuple[int, int]:
    """``2 -> (2, 2)``, ``(2, 3) -> (2, 3)``; integers ``>= minimum`` only."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(
        isinstance(v, numbers.Integral) and not isinstance(v, bool) for v in pair
    ):
        raise TypeError(f"{name} must be an int or a pair of ints, got {value!r}")
    if any(v < minimum for v in pair):
        what = "positive" if minimum == 1 else f">= {minimum}"
        raise ValueError(f"{name} must be {what}, got {value!r}")
    return int(pair[0]), int(pair[1])


def number_pair(value: object, name: str, positive: bool = True) -> tuple[float, float]:
    """``1.5 -> (1.5, 1.5)``, ``(2, 3.0) -> (2.0, 3.0)``; real numbers, positive if asked."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(
        isinstance(v, numbers.Real) and not isinstance(v, bool) for v in pair
    ):
        raise TypeError(f"{name} must be a number or a pair of numbers, got {value!r}")
    if positive and not all(v > 0 for v in pair):
        raise ValueError(f"{name} must be positive, got {value!r}")
    return float(pair[0]), float(pair[1])


def check_boxes(boxes: object, name: str = "boxes", floating: bool = False) -> Tensor:
    """Raise unless ``boxes`` is a ``Tensor[N, 4]`` (x1, y1, x2, y2), floating point if asked."""
    require_tensor(boxes, name, "a Tensor[N, 4] (x1, y1, x2, y2)")
    if boxes.dim() != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{name} must be Tensor[N, 4] (x1, y1, x2, y2), got {shape_str(boxes)}")
    if boxes.is_complex() or boxes.dtype == torch.bool:
        raise TypeError(f"{name} must hold real numbers, got {describe(boxes)}")
    if floating and not boxes.is_floating_point():
        raise TypeError(f"{name} must be a floating-point Tensor[N, 4], got {describe(boxes)}")
    return boxes


FRAME = "(ids: Tensor[K], boxes: Tensor[K, 4])"


def check_frames(frames: object, name: str) -> list[tuple[Tensor, Tensor]]:
    """A sequence with one ``(ids, boxes)`` (or ``(ids, boxes, scores)``) per frame.

    ids: integer Tensor[K], unique within the frame; boxes: Tensor[K, 4] (x1, y1, x2, y2);
    scores: float Tensor[K]. Returns the ``(ids, boxes)`` pairs. Tracking and its pictures
    (``coursekit.tracking``, ``coursekit.viz.tracks``) both take frames in this form.
    """
    if isinstance(frames, (str, bytes, Tensor)) or not isinstance(frames, Sequence):
        raise TypeError(f"{name} must be a list with one {FRAME} per frame, "
                        f"got {describe(frames)}")
    out = []
    for f, frame in enumerate(frames):
        where = f"{name}[{f}]"
        if not isinstance(frame, (tuple, list)) or len(frame) not in (2, 3):
            raise TypeError(f"{where} must be a pair {FRAME}, got {describe(frame)}"
                            + (f" of length {len(frame)}" if isinstance(frame, (tuple, list))
                               else ""))
        ids, boxes = frame[0], frame[1]
        require_integer(ids, f"{where} ids", "an integer Tensor[K]")
        if ids.dim() != 1:
            raise ValueError(f"{where} ids must be Tensor[K], got {shape_str(ids)}")
        check_boxes(boxes, f"{where} boxes")
        if boxes.shape[0] != ids.shape[0]:
            raise ValueError(f"{where}: ids and boxes must have the same length K, got ids "
                             f"{describe(ids)} and boxes {describe(boxes)}")
        if len(frame) == 3:
            scores = frame[2]
            require_floating(scores, f"{where} scores", "a floating-point Tensor[K]")
            if scores.shape != ids.shape:
                raise ValueError(f"{where} scores must be Tensor[K] with K = {len(ids)}, got "
                                 f"{describe(scores)}")
        if torch.unique(ids).numel() != ids.numel():
            raise ValueError(f"{where} ids must be unique within a frame, got {ids.tolist()}")
        out.append((ids, boxes))
    return out


def boxes_to_rois(boxes: object, name: str = "boxes", like: Tensor | None = None) -> Tensor:
    """``Tensor[K, 5]`` (batch index, x1, y1, x2, y2) from either accepted form.

    ``boxes`` is ``Tensor[K, 5]`` already, or a list with one ``Tensor[L_i, 4]`` per
    image (torchvision's two forms). ``like`` (a feature map) sets dtype and device
    of an empty result.
    """
    if isinstance(boxes, Tensor):
        if boxes.dim() != 2 or boxes.shape[1] != 5:
            raise ValueError(f"{name} must be Tensor[K, 5] or list of Tensor[L, 4], "
                             f"got {shape_str(boxes)}")
        if not boxes.is_floating_point():
            raise TypeError(f"{name} must be floating point, got {describe(boxes)}")
        return boxes
    if isinstance(boxes, Sequence) and not isinstance(boxes, str):
        parts = []
        for i, b in enumerate(boxes):
            check_boxes(b, f"{name}[{i}]", floating=True)
            parts.append(torch.cat([b.new_full((b.shape[0], 1), float(i)), b], dim=1))
        if parts:
            return torch.cat(parts)
        dtype = like.dtype if like is not None else torch.float32
        device = like.device if like is not None else None
        return torch.zeros(0, 5, dtype=dtype, device=device)
    raise TypeError(f"{name} must be Tensor[K, 5] or list of Tensor[L, 4], got {describe(boxes)}")


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters of ``model`` (only those with ``requires_grad`` if asked)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
