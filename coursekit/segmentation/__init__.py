"""Semantic segmentation: label every pixel with a class.

* ``sliding_window`` — classify a patch per pixel vs the same weights run fully convolutionally
* ``receptive_field`` — 1 + 2L by formula, by walking a network, by gradients
* ``losses`` — per-pixel cross-entropy (= ``F.cross_entropy``), median-frequency class weights
* ``metrics`` — confusion matrix, IoU per class, mIoU, pixel accuracy
* ``fcn`` / ``unet`` — encoder-decoder without and with skip connections (``EncoderDecoder``,
  also importable under its old name ``FCN``; ``UNet``)
* ``fcn_xs`` / ``segnet`` — Long et al.'s FCN-32s/16s/8s (``FCNxs``) and SegNet (max unpooling)
* ``train`` — trainers on ShapesWorld, ``evaluate_segmentation``, ``load_segmentation_model``
"""

from coursekit.segmentation.fcn import FCN, EncoderDecoder, count_parameters
from coursekit.segmentation.fcn_xs import FCNxs
from coursekit.segmentation.losses import class_weights_from_frequency, pixel_cross_entropy
from coursekit.segmentation.metrics import (
    boundary_band,
    confusion_matrix,
    iou_from_confusion,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)
from coursekit.segmentation.receptive_field import (
    measure_receptive_field,
    receptive_field,
    receptive_field_map,
    receptive_field_of,
)
from coursekit.segmentation.segnet import SegNet
from coursekit.segmentation.sliding_window import (
    PatchClassifier,
    fcn_segment,
    sliding_window_segment,
    time_sliding_vs_fcn,
)
from coursekit.segmentation.train import (
    HELD_OUT_START,
    build_model,
    evaluate_segmentation,
    load_segmentation_model,
    predict,
    train_segmentation,
)
from coursekit.segmentation.unet import UNet

__all__ = [
    "FCN",
    "HELD_OUT_START",
    "EncoderDecoder",
    "FCNxs",
    "PatchClassifier",
    "SegNet",
    "UNet",
    "boundary_band",
    "build_model",
    "class_weights_from_frequency",
    "confusion_matrix",
    "count_parameters",
    "evaluate_segmentation",
    "fcn_segment",
    "iou_from_confusion",
    "iou_per_class",
    "load_segmentation_model",
    "mean_iou",
    "measure_receptive_field",
    "pixel_accuracy",
    "pixel_cross_entropy",
    "predict",
    "receptive_field",
    "receptive_field_map",
    "receptive_field_of",
    "sliding_window_segment",
    "time_sliding_vs_fcn",
    "train_segmentation",
]
