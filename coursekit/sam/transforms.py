"""Resize the longest side of an image to the encoder's size, and move prompts with it.

SAM's image encoder takes one square size S. An image of H × W is resized so that its
longest side is S (the other side ``int(side · S / max(H, W) + 0.5)``), then padded at
the bottom and right to S × S (``Sam.preprocess``). Prompt coordinates are scaled by the
same factors. Same arithmetic as segment-anything's ``ResizeLongestSide``, except that
the image is resized with our ``coursekit.upsampling.bilinear_upsample`` (no
antialiasing; segment-anything resizes a uint8 image with PIL). Tested in
tests/sam/test_transforms.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.upsampling import bilinear_upsample
from coursekit.validators import int_pair, positive_int, require_dim, require_floating, shape_str


def preprocess_shape(old_h: int, old_w: int, long_side_length: int) -> tuple[int, int]:
    """(H, W) -> (new_h, new_w) with ``max(new_h, new_w) = long_side_length``.

    ``scale = S / max(H, W)``; each side is ``int(side · scale + 0.5)`` (rounded half up),
    as segment-anything's ``ResizeLongestSide.get_preprocess_shape``.
    """
    old_h, old_w = int_pair((old_h, old_w), "(old_h, old_w)")
    long_side_length = positive_int(long_side_length, "long_side_length")
    scale = long_side_length * 1.0 / max(old_h, old_w)
    return int(old_h * scale + 0.5), int(old_w * scale + 0.5)


def resize_longest_side(image: Tensor, long_side_length: int) -> Tensor:
    """Tensor[B, C, H, W] floating -> Tensor[B, C, new_h, new_w] (``preprocess_shape``), bilinear.

    An image already of that size is returned unchanged.
    """
    require_floating(image, "image", "a floating-point Tensor[B, C, H, W]")
    require_dim(image, "image", 4, "Tensor[B, C, H, W]")
    size = preprocess_shape(image.shape[-2], image.shape[-1], long_side_length)
    if size == tuple(image.shape[-2:]):
        return image
    return bilinear_upsample(image, size=size)


def apply_coords(coords: Tensor, original_size: tuple[int, int],
                 long_side_length: int) -> Tensor:
    """Pixel coordinates Tensor[..., 2] (x, y) in the original image -> in the resized image.

    ``x · new_w / W``, ``y · new_h / H``; computed in at least float32, returned in that dtype.
    """
    require_floating(coords, "coords", "a floating-point Tensor[..., 2]")
    if coords.dim() == 0 or coords.shape[-1] != 2:
        raise ValueError(f"coords must be Tensor[..., 2] (x, y), got {shape_str(coords)}")
    old_h, old_w = int_pair(original_size, "original_size")
    new_h, new_w = preprocess_shape(old_h, old_w, long_side_length)
    acc = torch.promote_types(coords.dtype, torch.float32)
    scale = torch.tensor([new_w / old_w, new_h / old_h], dtype=acc, device=coords.device)
    return coords.to(acc) * scale  # (..., 2)


def apply_boxes(boxes: Tensor, original_size: tuple[int, int], long_side_length: int) -> Tensor:
    """Boxes Tensor[B, 4] (x1, y1, x2, y2) in the original image -> in the resized image."""
    require_floating(boxes, "boxes", "a floating-point Tensor[B, 4]")
    if boxes.dim() != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be Tensor[B, 4] (x1, y1, x2, y2), got {shape_str(boxes)}")
    corners = apply_coords(boxes.reshape(-1, 2, 2), original_size, long_side_length)
    return corners.reshape(-1, 4)  # (B, 4)
