"""RoI Align on a feature pyramid: each box is read from the level that suits its size.

Lecture: *Mask R-CNN — RoI Align* on an FPN. A box of side ``s = sqrt(w h)`` is
assigned to level::

    k = clamp( floor(k0 + log2(s / s0) + 1e-6), k_min, k_max )

(``s0`` the canonical box size, read at level ``k0``; level ``k`` has stride ``2^k``),
then cropped with ``roi_align`` (coursekit.detection) at that level's
``spatial_scale = 2^-k``. Same rule as torchvision's ``MultiScaleRoIAlign`` /
``LevelMapper`` (there ``s0 = 224``, ``k0 = 4`` for 800-pixel images; our images are
64 pixels). ``aligned=True`` shifts the sampling grid by half a pixel (Detectron2's
ROIAlignV2, ``roi_align(..., aligned=True)``); the default ``False`` is torchvision's and
the shipped ``maskrcnn``'s. Tested in tests/instance/test_mask_rcnn.py.
"""

from __future__ import annotations

import math
from collections import OrderedDict

import torch
from torch import Tensor, nn

from coursekit.detection.boxes import box_area
from coursekit.detection.roi_align import roi_align
from coursekit.validators import boxes_to_rois


def map_levels(boxes: Tensor, k_min: int, k_max: int, canonical_scale: float = 224.0,
               canonical_level: int = 4, eps: float = 1e-6) -> Tensor:
    """Pyramid level of each box (``0`` = level ``k_min``): int64 Tensor[K] from boxes Tensor[K, 4].

    ``floor(k0 + log2(sqrt(area) / s0) + eps)`` clamped to ``[k_min, k_max]``, minus ``k_min``;
    same as torchvision's ``LevelMapper``.
    """
    s = torch.sqrt(box_area(boxes))
    target = torch.floor(canonical_level + torch.log2(s / canonical_scale) + eps)
    return (target.clamp(min=k_min, max=k_max) - k_min).to(torch.int64)


class MultiScaleRoIAlign(nn.Module):
    """RoI Align each box at its own pyramid level.

    ``MultiScaleRoIAlign(strides, output_size, sampling_ratio=2, canonical_scale,
    canonical_level, aligned=False)``; ``forward(features, boxes)``: ``features`` the FPN's
    ordered dict of Tensor[B, C, H_l, W_l] with strides ``strides`` (powers of 2, fine to
    coarse), ``boxes`` a list of B Tensor[K_b, 4] in image pixels -> Tensor[sum K_b, C,
    output_size, output_size] in the boxes' order.
    """

    def __init__(self, strides: tuple[int, ...], output_size: int, sampling_ratio: int = 2,
                 canonical_scale: float = 32.0, canonical_level: int = 2,
                 aligned: bool = False) -> None:
        super().__init__()
        levels = [math.log2(s) for s in strides]
        if any(k != int(k) for k in levels) or list(levels) != sorted(levels):
            raise ValueError(f"strides must be increasing powers of 2, got {strides!r}")
        self.strides = tuple(int(s) for s in strides)
        self.k_min, self.k_max = int(levels[0]), int(levels[-1])
        self.output_size, self.sampling_ratio = output_size, sampling_ratio
        self.canonical_scale, self.canonical_level = canonical_scale, canonical_level
        self.aligned = bool(aligned)  # half-pixel shift of RoI Align (Detectron2's ROIAlignV2)

    def forward(self, features: OrderedDict[str, Tensor], boxes: list[Tensor]) -> Tensor:
        feats = list(features.values())
        if len(feats) != len(self.strides):
            raise ValueError(f"features must have {len(self.strides)} levels (strides "
                             f"{self.strides}), got {len(feats)}")
        first = feats[0]
        rois = boxes_to_rois(boxes, "boxes", like=first).to(first.dtype)  # (K, 5): image, x1..y2
        C, S = first.shape[1], self.output_size
        if len(feats) == 1:
            return roi_align(first, rois, S, 1.0 / self.strides[0], self.sampling_ratio,
                             self.aligned)
        level = map_levels(rois[:, 1:], self.k_min, self.k_max, self.canonical_scale,
                           self.canonical_level)  # (K,)
        out = first.new_zeros(len(rois), C, S, S)
        for k, (feat, stride) in enumerate(zip(feats, self.strides, strict=True)):
            idx = torch.where(level == k)[0]
            if len(idx):
                # (K_k, C, S, S) at level k
                out[idx] = roi_align(feat, rois[idx], S, 1.0 / stride, self.sampling_ratio,
                                     self.aligned)
        return out
