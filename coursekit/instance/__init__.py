"""Instance segmentation from scratch: Mask R-CNN's targets, mask head, pasting, a model, COCO AP.

* ``project_masks_on_boxes``, ``mask_rcnn_loss`` — training targets and loss (targets.py)
* ``paste_masks_in_image`` — put the 28 × 28 masks back into the image (paste.py)
* ``MaskHead`` — RoI features -> ``C × 28 × 28``: one mask per class (mask_head.py)
* ``build_mask_rcnn``, ``MaskRCNN``, ``describe_stages`` — the tiny model (mask_rcnn.py,
  with backbone.py, rpn.py, box_head.py, roi_heads.py, pooler.py, matching.py)
* ``evaluate_coco_style``, ``average_precision`` — COCO AP written out (ap.py; pycocotools
  in coco_eval.py); ``train_maskrcnn`` / ``load_maskrcnn`` (train.py, imported lazily)
* ``count_parameters`` — ``coursekit.validators.count_parameters``, re-exported

Masks, pasting and targets default to ``aligned=True`` (Detectron2's half-pixel convention,
the shipped model's); pass ``aligned=False`` for torchvision's. Each is tested against
torchvision / pycocotools in tests/instance/.
"""

from coursekit.instance.ap import average_precision, evaluate_coco_style
from coursekit.instance.mask_head import MaskHead
from coursekit.instance.mask_rcnn import (
    MaskRCNN,
    build_mask_rcnn,
    count_parameters,
    describe_stages,
)
from coursekit.instance.paste import paste_masks_in_image, paste_masks_in_image_loop
from coursekit.instance.targets import mask_rcnn_loss, project_masks_on_boxes

__all__ = [
    "MaskHead", "MaskRCNN", "average_precision", "build_mask_rcnn", "count_parameters",
    "describe_stages", "evaluate_coco_style", "load_maskrcnn", "mask_rcnn_loss",
    "paste_masks_in_image", "paste_masks_in_image_loop", "project_masks_on_boxes",
]


def __getattr__(name: str):
    if name == "load_maskrcnn":  # keeps `import coursekit.instance` light
        from coursekit.instance.train import load_maskrcnn

        return load_maskrcnn
    raise AttributeError(f"module 'coursekit.instance' has no attribute {name!r}")
