"""Joint instance segmentation and keypoints: the tiny Mask R-CNN with a keypoint head.

Lecture: *Joint Instance Segmentation & Keypoint Estimation* — one trunk (backbone + FPN,
RPN, box head) and three heads on the RoI features, trained together: the box head
classifies and refines every box, the mask head predicts each thing's mask, and the
keypoint head (``keypoint_head.py``) predicts the 17 keypoints of each **person**::

    image -> backbone + FPN -> RPN -> RoI Align 7×7   -> box head       -> classes, boxes
                                    -> RoI Align 14×14 -> mask head      -> C × 28 × 28
                                    -> RoI Align 14×14 -> keypoint head  -> 17 × 56 × 56

It is lesson 05's ``build_mask_rcnn`` with the keypoint head plugged in as an extra head
(``coursekit.instance.heads``), at 96 × 96 pixels (persons about 45 pixels tall, so that
a 56 × 56 heatmap cell is under a pixel), anchors and the pyramid's canonical box size
scaled by 96 / 64, and every RoI Align ``aligned=True`` (Detectron2's ROIAlignV2).
``build_keypoint_rcnn(**config)`` wires it; ``describe_keypoint_stages`` and
``compare_with_torchvision`` print its stages beside torchvision's
``keypointrcnn_resnet50_fpn``. Trained by ``coursekit train keypointrcnn`` (train.py);
``keypoint_heatmaps`` returns the head's raw heatmaps for given boxes (to look at them);
tested in tests/pose/test_keypoint_rcnn.py.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from coursekit.instance.mask_rcnn import (
    DEFAULT_CONFIG,
    STAGES,
    MaskRCNN,
    build_mask_rcnn,
    describe_stages,
    pyramid_strides,
)
from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.pose.coco_keypoints import NUM_KEYPOINTS
from coursekit.pose.keypoint_head import KeypointHead
from coursekit.validators import check_boxes, require_dim, shape_str

__all__ = ["KEYPOINT_CONFIG", "KEYPOINT_STAGES", "PERSON_ID", "build_keypoint_rcnn",
           "compare_with_torchvision", "describe_keypoint_stages", "keypoint_heatmaps"]

PERSON_ID = 7  # ShapesWorld's person category (coursekit.data.CATEGORIES)

# the keypoint head's own settings (the rest are build_mask_rcnn's)
HEAD_DEFAULTS: dict[str, Any] = {
    "keypoint_dim": 64, "keypoint_convs": 4, "keypoint_sampling_ratio": 2,
    "keypoint_loss_weight": 1.0,
}  # fmt: skip

KEYPOINT_CONFIG: dict[str, Any] = {
    **DEFAULT_CONFIG,
    # 96-pixel scenes: boxes 1.5 × those at 64 pixels, so anchors and the pooler's
    # canonical size are 1.5 × lesson 05's (each box reads the same pyramid level)
    "anchor_sizes": [[12, 18], [24, 36], [48, 72]], "canonical_scale": 48.0,
    "pooler_aligned": True, "mask_aligned": True,
    **HEAD_DEFAULTS,
}  # fmt: skip

# (stage, where torchvision keeps it, where we keep it): lesson 05's and the keypoint head's
KEYPOINT_STAGES = STAGES + [
    ("keypoint RoI Align", "roi_heads.keypoint_roi_pool",
     "roi_heads.extra_heads.keypoints.roi_pool"),
    ("keypoint head convs", "roi_heads.keypoint_head", "roi_heads.extra_heads.keypoints.convs"),
    ("keypoint predictor", "roi_heads.keypoint_predictor",
     "roi_heads.extra_heads.keypoints.predictor"),
]


def build_keypoint_rcnn(**overrides: Any) -> MaskRCNN:
    """A fresh Mask R-CNN with box, mask and keypoint heads; keywords override ``KEYPOINT_CONFIG``.

    The keypoint head runs on the person class only (``PERSON_ID`` must be one of
    ``thing_ids``); its RoI Align reads 14 × 14 features with the trunk's pyramid rule and
    ``pooler_aligned``. ``model.config`` holds every setting (a checkpoint rebuilds it with
    ``build_keypoint_rcnn(**config)``).
    """
    unknown = set(overrides) - set(KEYPOINT_CONFIG)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; "
                         f"known: {sorted(KEYPOINT_CONFIG)}")
    cfg = {**KEYPOINT_CONFIG, **overrides}
    if PERSON_ID not in cfg["thing_ids"]:
        raise ValueError(f"thing_ids must include the person category {PERSON_ID}, "
                         f"got {cfg['thing_ids']!r}")
    trunk = {k: v for k, v in cfg.items() if k not in HEAD_DEFAULTS}
    pool = MultiScaleRoIAlign(pyramid_strides(cfg["widths"]), 14, cfg["keypoint_sampling_ratio"],
                              canonical_scale=cfg["canonical_scale"],
                              canonical_level=cfg["canonical_level"],
                              aligned=cfg["pooler_aligned"])
    head = KeypointHead(pool, cfg["fpn_channels"], NUM_KEYPOINTS, dim=cfg["keypoint_dim"],
                        num_convs=cfg["keypoint_convs"],
                        labels=[cfg["thing_ids"].index(PERSON_ID) + 1],
                        loss_weight=cfg["keypoint_loss_weight"])
    model = build_mask_rcnn(extra_heads={"keypoints": head}, **trunk)
    model.config = dict(cfg)
    return model


def describe_keypoint_stages(model: nn.Module) -> list[str]:
    """One line per stage (``KEYPOINT_STAGES``) of ours or torchvision's Keypoint R-CNN.

    ``"stage: path ClassName (N params)"``, or ``"stage: path missing"`` (torchvision's
    ``keypointrcnn_resnet50_fpn`` has no mask head).
    """
    return describe_stages(model, KEYPOINT_STAGES)


def compare_with_torchvision(model: MaskRCNN | None = None) -> str:
    """Our joint model's stages beside torchvision's ``keypointrcnn_resnet50_fpn``, as a table.

    ``model``: ours (default: a fresh ``build_keypoint_rcnn()``). torchvision's is built
    with ``weights=None, weights_backbone=None`` (random weights, nothing downloaded);
    torchvision is imported here only. One row per stage: the stage, our module and its
    parameters, torchvision's, and a last row with the totals.
    """
    from torchvision.models.detection import keypointrcnn_resnet50_fpn

    ours = build_keypoint_rcnn() if model is None else model
    theirs = keypointrcnn_resnet50_fpn(weights=None, weights_backbone=None)

    def cell(line: str) -> str:
        return line.split(": ", 1)[1]

    rows = [("stage", "ours", "torchvision keypointrcnn_resnet50_fpn")]
    for a, b in zip(describe_keypoint_stages(ours), describe_keypoint_stages(theirs),
                    strict=True):
        rows.append((a.split(":")[0], cell(a), cell(b)))
    total = [f"{sum(p.numel() for p in m.parameters()):,} params" for m in (ours, theirs)]
    rows.append(("total", total[0], total[1]))
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}" for r in rows)


@torch.no_grad()
def keypoint_heatmaps(model: MaskRCNN, image: Tensor, boxes: Tensor) -> Tensor:
    """The keypoint head's heatmap logits for ``boxes`` in one image: Tensor[R, 17, 56, 56].

    ``image`` Tensor[3, H, W]; ``boxes`` Tensor[R, 4] (x1, y1, x2, y2) in its pixels (e.g. the
    model's person detections). The same path as inference: backbone + FPN, the head's RoI
    Align (14 × 14), its convs and predictor; ``heatmaps_to_keypoints(maps, boxes)`` decodes
    them to the keypoints ``model.predict`` returns. Runs in eval mode, restores the mode.
    """
    if not isinstance(model, MaskRCNN) or "keypoints" not in model.roi_heads.extra_heads:
        raise TypeError("model must be a MaskRCNN with a keypoint head "
                        "(build_keypoint_rcnn / load_keypointrcnn)")
    require_dim(image, "image", 3, "Tensor[3, H, W]")
    if image.shape[0] != 3:
        raise ValueError(f"image must be Tensor[3, H, W], got {shape_str(image)}")
    check_boxes(boxes, "boxes", floating=True)
    head = model.roi_heads.extra_heads["keypoints"]
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        features = model.backbone(model.transform(image[None].to(param.device, param.dtype)))
        rois = head.roi_pool(features, [boxes.to(param.device, param.dtype)])  # (R, C, 14, 14)
        return head(rois)  # (R, 17, 56, 56)
    finally:
        model.train(was_training)
