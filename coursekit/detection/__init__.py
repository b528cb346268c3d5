"""Detection primitives from scratch: boxes, NMS, box coding, anchors, RoI Pool and RoI Align.

Each function has the name, argument order and semantics of its torchvision
counterpart and is tested against it in tests/detection/.
"""

from coursekit.detection.anchors import anchors_for_image, generate_anchors, grid_anchors
from coursekit.detection.box_coder import decode_boxes, encode_boxes
from coursekit.detection.boxes import (
    batched_nms,
    box_area,
    box_iou,
    clip_boxes_to_image,
    nms,
    nms_loop,
    remove_small_boxes,
)
from coursekit.detection.roi_align import roi_align, roi_align_loop
from coursekit.detection.roi_pool import roi_pool, roi_pool_misalignment

__all__ = [
    "anchors_for_image", "batched_nms", "box_area", "box_iou", "clip_boxes_to_image",
    "decode_boxes", "encode_boxes", "generate_anchors", "grid_anchors", "nms", "nms_loop",
    "remove_small_boxes", "roi_align", "roi_align_loop", "roi_pool", "roi_pool_misalignment",
]
