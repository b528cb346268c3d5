"""Segment Anything from scratch (lecture: *Segment Anything*, lesson 10).

One file per component, as segment-anything's ``modeling/``:

* ``ImageEncoderViT`` — the heavy ViT, run once per image (image_encoder.py)
* ``PromptEncoder``, ``PositionEmbeddingRandom`` — points, boxes, masks (prompt_encoder.py)
* ``TwoWayTransformer`` — tokens <-> image attention (transformer.py)
* ``MaskDecoder`` — 3 masks + IoU per prompt (mask_decoder.py)
* ``PixelSkip`` — ours, optional: the pixels' features at the masks' grid (pixel_skip.py)
* ``Sam``, ``build_sam_tiny`` — the wiring, pre/post-processing (sam.py)
* ``SamPredictor`` — ``set_image`` once, ``predict`` per prompt (predictor.py)
* ``AutomaticMaskGenerator``, ``build_point_grid``, ``stability_score`` (automatic.py)
* ``sam_loss`` — focal + dice 20:1 on the best of 3 masks, IoU MSE (loss.py)
* training on ShapesWorld's ambiguity (data.py, train.py: ``coursekit train sam``,
  ``load_sam``), evaluation (evaluate.py), the data engine (data_engine.py), prompts
  from other systems (external_prompts.py), ``coursekit bench sam`` (bench.py)

Each is tested against segment-anything 1.0 (random weights copied into ours) in tests/sam.
"""

from coursekit.sam.automatic import (
    AutomaticMaskGenerator,
    build_point_grid,
    mask_to_box,
    remove_small_regions,
    stability_score,
)
from coursekit.sam.common import MLP, LayerNorm2d, MLPBlock, UpConv2d
from coursekit.sam.image_encoder import ImageEncoderViT
from coursekit.sam.loss import SamLoss, dice_loss, mask_iou, sam_loss, sigmoid_focal_loss
from coursekit.sam.mask_decoder import MaskDecoder
from coursekit.sam.pixel_skip import PixelSkip
from coursekit.sam.predictor import SamPredictor
from coursekit.sam.prompt_encoder import PositionEmbeddingRandom, PromptEncoder
from coursekit.sam.sam import Sam, build_sam_tiny
from coursekit.sam.transformer import TwoWayTransformer

__all__ = [
    "MLP",
    "AutomaticMaskGenerator",
    "ImageEncoderViT",
    "LayerNorm2d",
    "MLPBlock",
    "MaskDecoder",
    "PixelSkip",
    "PositionEmbeddingRandom",
    "PromptEncoder",
    "Sam",
    "SamLoss",
    "SamPredictor",
    "TwoWayTransformer",
    "UpConv2d",
    "build_point_grid",
    "build_sam_tiny",
    "dice_loss",
    "mask_iou",
    "mask_to_box",
    "remove_small_regions",
    "sam_loss",
    "sigmoid_focal_loss",
    "stability_score",
]
