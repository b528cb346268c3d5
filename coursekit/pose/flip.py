"""Horizontal flip of an image with its annotations: the pose-aware data augmentation.

Lecture: *Human pose estimation* — keypoints have a side. Mirroring a picture of a person
turns their left wrist into something that looks like a right wrist, so a flipped
training image must also **swap the left and right keypoints** (``COCO_FLIP_INDEX``), not
just mirror their x: otherwise the network is taught that a left wrist can be on either
side and it can no longer tell them apart.

Convention (stated, since it differs between libraries): x is a **continuous** image
coordinate, pixel column j covers ``[j, j + 1)`` and its centre is ``j + 0.5`` (as
ShapesWorld's keypoints and boxes, Mask R-CNN and torchvision's detection reference
scripts use them). The mirror of x in an image of width W is then ``W - x`` for keypoints
and box edges alike (column j <-> column W - 1 - j). torchvision's ``tv_tensors.KeyPoints``
(and COCO's json, whose keypoints are integer pixel indices; detectron2 adds 0.5 when it
loads them) use pixel *indices* instead, whose mirror is ``W - 1 - x``: add 0.5 to such
coordinates before and subtract it after.

Same as torchvision's reference training transform ``RandomHorizontalFlip``
(``references/detection/transforms.py``, ``_flip_coco_person_keypoints``) for image,
boxes, masks and keypoints; tested in tests/pose/test_flip.py.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from coursekit.pose.coco_keypoints import COCO_FLIP_INDEX, check_keypoints
from coursekit.validators import check_boxes, require_tensor, shape_str

__all__ = ["Flipped", "flip_boxes", "flip_keypoints", "hflip", "mirror_index"]


def flip_keypoints(keypoints: Tensor, width: float,
                   flip_index: Sequence[int] | Tensor = COCO_FLIP_INDEX) -> Tensor:
    """Mirror keypoints left-right in an image ``width`` pixels wide, swapping left / right.

    Keypoint k of the result is keypoint ``flip_index[k]`` of the input with
    ``x -> width - x``; ``y`` and ``v`` are kept. Keypoints with ``v == 0`` become
    ``(0, 0, 0)`` (COCO's convention for unlabelled keypoints, as torchvision's reference
    transform does), so flipping twice gives back any COCO-conformant input.

    Args:
        keypoints: Tensor[N, K, 3] (x, y, v), continuous coordinates (see the module).
        width: the image width W in pixels (> 0).
        flip_index: K indices, a permutation that is its own inverse (default
            ``COCO_FLIP_INDEX``, K = 17).

    Returns:
        A new Tensor[N, K, 3], ``keypoints``' dtype and device.
    """
    check_keypoints(keypoints, "keypoints")
    width = _width(width)
    K = keypoints.shape[1]
    index = mirror_index(flip_index, K, keypoints.device)
    out = keypoints[:, index]  # (N, K, 3) left <-> right
    out[..., 0] = width - out[..., 0]
    return torch.where(out[..., 2:] == 0, torch.zeros_like(out), out)  # v = 0 -> (0, 0, 0)


def flip_boxes(boxes: Tensor, width: float) -> Tensor:
    """Mirror ``boxes`` Tensor[N, 4] (x1, y1, x2, y2) left-right: ``(W - x2, y1, W - x1, y2)``.

    Same as torchvision's ``horizontal_flip_bounding_boxes`` (XYXY). Returns a new tensor of
    ``boxes``' dtype, so integer boxes need a whole-number ``width``.
    """
    check_boxes(boxes, "boxes")
    width = _width(width)
    if not boxes.is_floating_point() and not float(width).is_integer():
        raise ValueError(f"width must be a whole number for integer boxes ({boxes.dtype}), got "
                         f"{width!r}: W - x would be truncated")
    out = boxes.clone()
    out[:, 0], out[:, 2] = width - boxes[:, 2], width - boxes[:, 0]
    return out


class Flipped(NamedTuple):
    """What ``hflip`` returns; a field is ``None`` where nothing was given."""

    image: Tensor
    keypoints: Tensor | None
    boxes: Tensor | None
    masks: Tensor | None


def hflip(image: Tensor, keypoints: Tensor | None = None, boxes: Tensor | None = None,
          masks: Tensor | None = None,
          flip_index: Sequence[int] | Tensor = COCO_FLIP_INDEX) -> Flipped:
    """Flip ``image`` left-right with whatever annotations are given, consistently.

    Args:
        image: Tensor[..., H, W] (e.g. [3, H, W]), any dtype; its W is the width used.
        keypoints: Tensor[N, K, 3] (x, y, v) or None (see ``flip_keypoints``).
        boxes: Tensor[M, 4] (x1, y1, x2, y2) or None (see ``flip_boxes``).
        masks: Tensor[M, H, W] or None; same H, W as the image.
        flip_index: the left / right permutation of the keypoints (default COCO's).

    Returns:
        ``Flipped(image, keypoints, boxes, masks)``: new tensors, ``None`` for what was not
        given; e.g. ``out = hflip(img, keypoints=kps); out.image, out.keypoints``. Flipping
        twice gives the inputs back (COCO-conformant keypoints).
    """
    require_tensor(image, "image", "a Tensor[..., H, W]")
    if image.dim() < 2:
        raise ValueError(f"image must be Tensor[..., H, W] (2-D or more), got {shape_str(image)}")
    H, W = image.shape[-2:]
    if masks is not None:
        require_tensor(masks, "masks", "a Tensor[M, H, W]")
        if masks.dim() != 3 or tuple(masks.shape[-2:]) != (H, W):
            raise ValueError(f"masks must be Tensor[M, {H}, {W}] (the image's H, W), "
                             f"got {shape_str(masks)}")
    return Flipped(
        image=image.flip(-1),
        keypoints=None if keypoints is None else flip_keypoints(keypoints, W, flip_index),
        boxes=None if boxes is None else flip_boxes(boxes, W),
        masks=None if masks is None else masks.flip(-1),
    )


def _width(width: object) -> float:
    if isinstance(width, bool) or not isinstance(width, numbers.Real):
        raise TypeError(f"width must be a number (the image width in pixels), got {width!r}")
    if not width > 0:
        raise ValueError(f"width must be > 0, got {width!r}")
    return float(width) if not isinstance(width, int) else width


def mirror_index(index: object, K: int, device: torch.device | str = "cpu", *,
                 name: str = "flip_index", what: str = "keypoint") -> Tensor:
    """``index`` as an int64 Tensor[K] on ``device``, checked to be a mirror's swap table.

    Entry ``k`` is the ``what`` (keypoint, part channel) that ``k`` becomes in the mirror
    image. A mirror applied twice is the identity, so the table must be a permutation of
    ``0..K-1`` that is its own inverse (``index[index[k]] == k``: left <-> right, the
    middle ones to themselves). Errors name the argument as ``name``. Used by
    ``flip_keypoints`` and by DensePose's ``hflip_maps``.
    """
    if isinstance(index, Tensor):
        out = index.to(device)
    elif isinstance(index, Sequence) and not isinstance(index, str):
        if not all(isinstance(i, int) and not isinstance(i, bool) for i in index):
            raise TypeError(f"{name} must be a sequence of ints, got {index!r}")
        out = torch.tensor(list(index), dtype=torch.long, device=device)
    else:
        raise TypeError(f"{name} must be a sequence of K ints, got {index!r}")
    if out.is_floating_point() or out.is_complex() or out.dtype == torch.bool:
        raise TypeError(f"{name} must hold integers, got dtype {out.dtype}")
    out = out.long()
    if out.dim() != 1 or out.shape[0] != K:
        raise ValueError(f"{name} must hold K = {K} indices (one per {what}), "
                         f"got {out.shape[0] if out.dim() == 1 else shape_str(out)}")
    ok = bool((out >= 0).all()) and bool((out < K).all())
    if not ok or not bool((out[out] == torch.arange(K, device=out.device)).all()):
        raise ValueError(f"{name} must be a permutation of 0..{K - 1} that is its own "
                         f"inverse (left <-> right), got {out.tolist()}")
    return out
