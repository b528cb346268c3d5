"""Human pose estimation (lecture: *Human pose estimation*, *Mask R-CNN: keypoint estimation*).

* ``COCO_KEYPOINT_NAMES``, ``COCO_SKELETON``, ``COCO_FLIP_INDEX``, ``COCO_SIGMAS`` — the
  COCO person-keypoint schema (coco_keypoints.py)
* ``keypoints_to_heatmap``, ``heatmaps_to_keypoints`` — keypoint head targets and decoding,
  as torchvision's Keypoint R-CNN (heatmaps.py; bicubic resize from
  ``coursekit.upsampling.bicubic``)
* ``oks`` — Object Keypoint Similarity, as pycocotools' ``computeOks`` (oks.py)
* ``flip_keypoints``, ``flip_boxes``, ``hflip`` — left-right flip that swaps left and right
  keypoints (flip.py)
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
from coursekit.pose.flip import Flipped, flip_boxes, flip_keypoints, hflip
from coursekit.pose.heatmaps import heatmaps_to_keypoints, keypoints_to_heatmap
from coursekit.pose.oks import oks

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
    "oks",
]
