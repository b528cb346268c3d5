"""The COCO person-keypoint schema, in one place: names, skeleton, flip pairs, OKS sigmas.

Lecture: *Human pose estimation* — "represent the pose of a human by locating a set of
17 keypoints": nose, left / right eye, ear, shoulder, elbow, wrist, hip, knee, ankle.
A person's keypoints are a ``Tensor[17, 3]`` of ``(x, y, v)`` in COCO order, ``v`` the
visibility flag: 0 = not labelled (then ``x = y = 0``), 1 = labelled but hidden,
2 = labelled and visible. "Left" is the **person's** left: on a person facing the camera
it is on the image's right.

The constants are tuples (shared, so not to be changed in place); their values and order
are those of COCO's ``person_keypoints`` annotation file, torchvision's reference training
scripts (``references/detection/transforms.py``) and pycocotools (``COCOeval``). Tested in
tests/pose/test_coco_keypoints.py. Imports only torch and coursekit.validators, so any
module (the data generator too) can import it.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.validators import describe, require_tensor, shape_str

__all__ = [
    "COCO_FLIP_INDEX",
    "COCO_KEYPOINT_NAMES",
    "COCO_SIGMAS",
    "COCO_SKELETON",
    "COCO_SKELETON_0BASED",
    "NUM_KEYPOINTS",
    "check_keypoints",
]

COCO_KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
"""The 17 COCO person keypoints, in COCO order (index k is row k of a ``Tensor[17, 3]``)."""

NUM_KEYPOINTS = len(COCO_KEYPOINT_NAMES)  # 17

COCO_SKELETON: tuple[tuple[int, int], ...] = (
    (16, 14), (14, 12), (17, 15), (15, 13), (12, 13), (6, 12), (7, 13), (6, 7), (6, 8),
    (7, 9), (8, 10), (9, 11), (2, 3), (1, 2), (1, 3), (2, 4), (3, 5), (4, 6), (5, 7),
)  # fmt: skip
"""COCO's person skeleton: 19 limbs as pairs of **1-based** keypoint indices, exactly as in
the ``skeleton`` field of COCO's json (so ``(16, 14)`` joins left ankle and left knee)."""

COCO_SKELETON_0BASED: tuple[tuple[int, int], ...] = tuple(
    (a - 1, b - 1) for a, b in COCO_SKELETON
)
"""``COCO_SKELETON`` with 0-based indices, the rows of a ``Tensor[17, 3]``."""

COCO_FLIP_INDEX: tuple[int, ...] = (0, 2, 1, 4, 3, 6, 5, 8, 7, 10, 9, 12, 11, 14, 13, 16, 15)
"""Keypoint ``k`` of a horizontally flipped person is keypoint ``COCO_FLIP_INDEX[k]`` of the
original: left and right swap (the nose stays). torchvision's ``flip_inds``."""

COCO_SIGMAS: tuple[float, ...] = tuple(
    s / 10.0
    for s in (0.26, 0.25, 0.25, 0.35, 0.35, 0.79, 0.79, 0.72, 0.72, 0.62, 0.62,
              1.07, 1.07, 0.87, 0.87, 0.89, 0.89)
)
"""COCO's per-keypoint OKS constants ``sigma_k`` (pycocotools' ``kpt_oks_sigmas``, computed
the same way, ``array([.26, ...]) / 10.0``, so the floats are identical). ``sigma_k`` is
the standard deviation of human annotators' clicks for keypoint k, relative to the object's
scale: small for eyes (0.025), large for hips (0.107)."""


def check_keypoints(keypoints: object, name: str = "keypoints",
                    num_keypoints: int | None = None) -> Tensor:
    """Raise unless ``keypoints`` is a real ``Tensor[N, K, 3]`` of ``(x, y, v)``.

    ``num_keypoints`` fixes K (e.g. 17); ``None`` accepts any ``K >= 1``. A wrong type
    (not a tensor, a bool or complex tensor) is a ``TypeError``, a wrong shape a
    ``ValueError``; both name the argument and describe what came.
    """
    k = "K" if num_keypoints is None else str(num_keypoints)
    expected = f"Tensor[N, {k}, 3] (x, y, visibility)"
    require_tensor(keypoints, name, f"a {expected}")
    if keypoints.is_complex() or keypoints.dtype == torch.bool:
        raise TypeError(f"{name} must be a real {expected}, got {describe(keypoints)}")
    if (keypoints.dim() != 3 or keypoints.shape[2] != 3 or keypoints.shape[1] == 0
            or (num_keypoints is not None and keypoints.shape[1] != num_keypoints)):
        raise ValueError(f"{name} must be {expected}, got {shape_str(keypoints)}")
    return keypoints
