"""A tiny Mask R-CNN: transform -> backbone + FPN -> RPN -> RoI heads (box + mask) -> pasted masks.

Lecture: *Mask R-CNN* = Faster R-CNN + a mask head. The stages, with the names
torchvision's ``MaskRCNN`` uses (``describe_stages`` prints both side by side)::

    transform            normalise the image                        (ImageNormalize)
    backbone.body        CNN, features at strides 2, 4, 8           (SmallCNN)
    backbone.fpn         feature pyramid, 64 channels per level     (FeaturePyramidNetwork)
    rpn.anchor_generator anchors at every position of every level   (AnchorGenerator)
    rpn.head             objectness + box deltas per anchor         (RPNHead)
    roi_heads.box_*      RoI Align 7×7 -> 2 FC -> classes + deltas  (BoxHead, BoxPredictor)
    roi_heads.mask_*     RoI Align 14×14 -> convs -> 2× deconv -> C × 28 × 28  (MaskHead)

``build_mask_rcnn(**config)`` wires them (≈1.2 M parameters by default, for 64 × 64
ShapesWorld images); ``model(images, targets)`` returns the losses in training and
torchvision-style detections in eval; ``model.predict(image)`` is the friendly call.
Tested in tests/instance/test_mask_rcnn.py.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from coursekit.detection.boxes import shape_str
from coursekit.instance.backbone import BackboneWithFPN
from coursekit.instance.box_head import BoxHead, BoxPredictor
from coursekit.instance.mask_head import MaskHead
from coursekit.instance.paste import paste_masks_in_image
from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.instance.roi_heads import RoIHeads
from coursekit.instance.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead

DEFAULT_CONFIG: dict[str, Any] = {
    "thing_ids": [4, 5, 6, 7],  # ShapesWorld categories -> classes 1..4 (0 = background)
    "widths": [32, 64, 96], "stem": 24, "fpn_channels": 64,
    "anchor_sizes": [[8, 12], [16, 24], [32, 48]], "aspect_ratios": [0.5, 1.0, 2.0],
    "representation": 256, "mask_dim": 32, "mask_convs": 3,
    "canonical_scale": 32.0, "canonical_level": 2, "box_sampling_ratio": 2, "mask_sampling_ratio": 1,
    "rpn_batch_size_per_image": 256, "rpn_pre_nms_top_n": [200, 100], "rpn_post_nms_top_n": [100, 50],
    "box_batch_size_per_image": 64, "detections_per_img": 50,
    # Detectron2's pixel grid for mask targets and pasting (torchvision's: False); see targets.py.
    # The feature poolers keep RoI Align's aligned=False (Detectron2's ROIAlignV2 aligns them too).
    "mask_aligned": True,
}  # fmt: skip

# (stage, where torchvision keeps it, where we keep it)
STAGES = [
    ("transform", "transform", "transform"),
    ("backbone body", "backbone.body", "backbone.body"),
    ("feature pyramid", "backbone.fpn", "backbone.fpn"),
    ("anchors", "rpn.anchor_generator", "rpn.anchor_generator"),
    ("RPN head", "rpn.head", "rpn.head"),
    ("box RoI Align", "roi_heads.box_roi_pool", "roi_heads.box_roi_pool"),
    ("box head", "roi_heads.box_head", "roi_heads.box_head"),
    ("box predictor", "roi_heads.box_predictor", "roi_heads.box_predictor"),
    ("mask RoI Align", "roi_heads.mask_roi_pool", "roi_heads.mask_roi_pool"),
    ("mask head convs", "roi_heads.mask_head", "roi_heads.mask_head.convs"),
    ("mask predictor", "roi_heads.mask_predictor", "roi_heads.mask_head.predictor"),
]


class ImageNormalize(nn.Module):
    """``(image - mean) / std`` per channel (torchvision's transform also resizes; we keep 64 × 64)."""

    def __init__(self, mean: tuple[float, ...] = (0.5, 0.5, 0.5), std: tuple[float, ...] = (0.25, 0.25, 0.25)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        return (images - self.mean) / self.std


class MaskRCNN(nn.Module):
    """``MaskRCNN(transform, backbone, rpn, roi_heads, thing_ids)``; see the module docstring."""

    def __init__(self, transform: ImageNormalize, backbone: BackboneWithFPN, rpn: RegionProposalNetwork,
                 roi_heads: RoIHeads, thing_ids: list[int], config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.transform, self.backbone, self.rpn, self.roi_heads = transform, backbone, rpn, roi_heads
        self.thing_ids = list(thing_ids)
        self.config = dict(config or {})

    def forward(self, images: Tensor, targets: list[dict[str, Tensor]] | None = None):
        """Training (``targets`` given): dict of 5 losses. Eval: one dict per image.

        Args:
            images: Tensor[B, 3, H, W] in [0, 1].
            targets: per image ``{"boxes": Tensor[G, 4] xyxy, "labels": int64 Tensor[G] in
                [1, num_classes), "masks": Tensor[G, H, W]}`` (torchvision's format).

        Returns:
            losses ``{"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg",
            "loss_mask"}``, or per image ``{"boxes": [D, 4], "labels": [D], "scores": [D],
            "masks": [D, 1, H, W] probabilities}``, as torchvision's ``MaskRCNN``.
        """
        if not isinstance(images, Tensor) or images.dim() != 4 or images.shape[1] != 3:
            got = shape_str(images) if isinstance(images, Tensor) else type(images).__name__
            raise ValueError(f"images must be Tensor[B, 3, H, W], got {got}")
        if targets is not None and len(targets) != images.shape[0]:
            raise ValueError(f"targets must have one dict per image ({images.shape[0]}), got {len(targets)}")
        image_size = (int(images.shape[-2]), int(images.shape[-1]))
        features = self.backbone(self.transform(images))
        proposals, rpn_losses = self.rpn(image_size, list(features.values()), targets)
        detections, roi_losses = self.roi_heads(features, proposals, image_size, targets)
        if targets is not None:
            return {**rpn_losses, **roi_losses}
        for det in detections:
            det["masks"] = paste_masks_in_image(det["masks"], det["boxes"], image_size,
                                                aligned=self.roi_heads.mask_aligned)  # (D, 1, H, W)
        return detections

    @torch.no_grad()
    def predict(self, image: Tensor, score_threshold: float = 0.5, mask_threshold: float = 0.5) -> dict[str, Tensor] | list:
        """Detections of one image Tensor[3, H, W] (or a list of dicts for Tensor[B, 3, H, W]).

        Returns ``{"boxes": Tensor[D, 4] xyxy, "labels": int64 Tensor[D] (ShapesWorld category ids),
        "scores": Tensor[D], "masks": bool Tensor[D, H, W]}``, detections with
        ``score >= score_threshold``, best first; masks are the pasted probabilities ``>= mask_threshold``.
        """
        if not isinstance(image, Tensor) or image.dim() not in (3, 4) or image.shape[-3] != 3:
            got = shape_str(image) if isinstance(image, Tensor) else type(image).__name__
            raise ValueError(f"image must be Tensor[3, H, W] or Tensor[B, 3, H, W], got {got}")
        was_training = self.training
        self.eval()
        param = next(self.parameters())
        batch = (image[None] if image.dim() == 3 else image).to(param.device, param.dtype)
        ids = torch.tensor([0] + self.thing_ids, device=param.device)
        out = []
        for det in self(batch):
            keep = det["scores"] >= score_threshold
            out.append({"boxes": det["boxes"][keep], "labels": ids[det["labels"][keep]],
                        "scores": det["scores"][keep], "masks": det["masks"][keep, 0] >= mask_threshold})
        self.train(was_training)
        return out[0] if image.dim() == 3 else out


def build_mask_rcnn(**overrides: Any) -> MaskRCNN:
    """A fresh tiny Mask R-CNN; keyword arguments override ``DEFAULT_CONFIG`` entries."""
    unknown = set(overrides) - set(DEFAULT_CONFIG)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; known: {sorted(DEFAULT_CONFIG)}")
    cfg = {**DEFAULT_CONFIG, **overrides}
    num_classes = len(cfg["thing_ids"]) + 1
    backbone = BackboneWithFPN(cfg["widths"], cfg["stem"], cfg["fpn_channels"])
    anchors = AnchorGenerator(cfg["anchor_sizes"], [cfg["aspect_ratios"]] * len(cfg["anchor_sizes"]))
    if len(cfg["anchor_sizes"]) != len(backbone.strides):
        raise ValueError(f"anchor_sizes needs one entry per level ({len(backbone.strides)}), got {cfg['anchor_sizes']}")
    pre, post = cfg["rpn_pre_nms_top_n"], cfg["rpn_post_nms_top_n"]  # (training, testing)
    rpn = RegionProposalNetwork(anchors, RPNHead(cfg["fpn_channels"], anchors.num_anchors_per_location()[0]),
                                batch_size_per_image=cfg["rpn_batch_size_per_image"],
                                pre_nms_top_n={"training": pre[0], "testing": pre[1]},
                                post_nms_top_n={"training": post[0], "testing": post[1]})
    pool = {"canonical_scale": cfg["canonical_scale"], "canonical_level": cfg["canonical_level"]}
    roi_heads = RoIHeads(
        MultiScaleRoIAlign(backbone.strides, 7, cfg["box_sampling_ratio"], **pool),
        BoxHead(cfg["fpn_channels"] * 7 * 7, cfg["representation"]),
        BoxPredictor(cfg["representation"], num_classes),
        MultiScaleRoIAlign(backbone.strides, 14, cfg["mask_sampling_ratio"], **pool),
        MaskHead(cfg["fpn_channels"], num_classes, cfg["mask_dim"], cfg["mask_convs"]),
        batch_size_per_image=cfg["box_batch_size_per_image"], detections_per_img=cfg["detections_per_img"],
        mask_aligned=cfg["mask_aligned"],
    )
    return MaskRCNN(ImageNormalize(), backbone, rpn, roi_heads, cfg["thing_ids"], config=cfg)


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe_stages(model: nn.Module) -> list[str]:
    """One line per Mask R-CNN stage: ``"stage: path ClassName (N params)"``.

    Works on ours and on torchvision's ``maskrcnn_resnet50_fpn`` (each has the stages
    under the paths in ``STAGES``), so the two can be printed side by side.
    """
    ours = isinstance(model, MaskRCNN)
    lines = []
    for stage, tv_path, our_path in STAGES:
        path = our_path if ours else tv_path
        module: Any = model
        for name in path.split("."):
            module = getattr(module, name, None)
        if module is None:
            lines.append(f"{stage}: {path} missing")
        else:
            n = sum(p.numel() for p in module.parameters())
            lines.append(f"{stage}: {path} {type(module).__name__} ({n:,} params)")
    return lines
