"""Human pose estimation (lecture: *Human pose estimation*, *Mask R-CNN: keypoint estimation*).

* ``COCO_KEYPOINT_NAMES``, ``COCO_SKELETON``, ``COCO_FLIP_INDEX``, ``COCO_SIGMAS`` — the
  COCO person-keypoint schema (coco_keypoints.py)
* ``keypoints_to_heatmap``, ``heatmaps_to_keypoints`` — keypoint head targets and decoding,
  as torchvision's Keypoint R-CNN (heatmaps.py; bicubic resize from
  ``coursekit.upsampling.bicubic``)
* ``oks`` — Object Keypoint Similarity, as pycocotools' ``computeOks`` (oks.py)
* ``flip_keypoints``, ``flip_boxes``, ``hflip`` — left-right flip that swaps left and right
  keypoints; ``mirror_index`` checks a left <-> right swap table (flip.py)
* ``KeypointHead``, ``keypointrcnn_loss`` — RoI features -> K × 56 × 56 heatmaps, a
  cross-entropy over the cells (keypoint_head.py), plugged into lesson 05's Mask R-CNN as
  an extra head
* ``build_keypoint_rcnn``, ``describe_keypoint_stages``, ``compare_with_torchvision``,
  ``keypoint_heatmaps`` — the joint box + mask + keypoint model (keypoint_rcnn.py);
  ``train_keypointrcnn``,
  ``load_keypointrcnn`` (train.py)
* ``keypoint_similarity``, ``evaluate_keypoints``, ``coco_keypoint_evaluate``,
  ``evaluate_keypointrcnn`` — keypoint AP: lesson 05's AP with OKS (evaluate.py)
* ``pose_failures``, ``crossing_limbs`` — the worst-scored persons and why (failures.py)

The model names are imported on first use, so that ``coursekit.data`` can import the COCO
schema from here without loading the detector.
"""

from coursekit.pose.coco_keypoints import (
    COCO_FLIP_INDEX,
    COCO_KEYPOINT_NAMES,
    COCO_SIGMAS,
    COCO_SKELETON,
    COCO_SKELETON_0BASED,
    NUM_KEYPOINTS,
    check_keypoints,
)
from coursekit.pose.flip import Flipped, flip_boxes, flip_keypoints, hflip, mirror_index
from coursekit.pose.heatmaps import heatmaps_to_keypoints, keypoints_to_heatmap
from coursekit.pose.oks import oks

# name -> module of coursekit.pose, imported on first use
_LAZY = {
    "KeypointHead": "keypoint_head", "keypointrcnn_loss": "keypoint_head",
    "build_keypoint_rcnn": "keypoint_rcnn", "compare_with_torchvision": "keypoint_rcnn",
    "describe_keypoint_stages": "keypoint_rcnn", "keypoint_heatmaps": "keypoint_rcnn",
    "keypoint_similarity": "evaluate",
    "evaluate_keypoints": "evaluate", "coco_keypoint_evaluate": "evaluate",
    "evaluate_keypointrcnn": "evaluate", "train_keypointrcnn": "train",
    "load_keypointrcnn": "train", "pose_failures": "failures", "crossing_limbs": "failures",
    "PoseFailure": "failures",
}

__all__ = [
    "COCO_FLIP_INDEX",
    "COCO_KEYPOINT_NAMES",
    "COCO_SIGMAS",
    "COCO_SKELETON",
    "COCO_SKELETON_0BASED",
    "NUM_KEYPOINTS",
    "Flipped",
    "check_keypoints",
    "flip_boxes",
    "flip_keypoints",
    "heatmaps_to_keypoints",
    "hflip",
    "keypoints_to_heatmap",
    "mirror_index",
    "oks",
    *sorted(_LAZY),
]


def __getattr__(name: str):
    if name in _LAZY:  # keeps `import coursekit.pose` (and coursekit.data) light
        import importlib

        return getattr(importlib.import_module(f"coursekit.pose.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'coursekit.pose' has no attribute {name!r}")
