"""A tiny Mask R-CNN: transform -> backbone + FPN -> RPN -> RoI heads (box, mask) -> pasted masks.

Lecture: *Mask R-CNN* = Faster R-CNN + a mask head. The stages, with the names
torchvision's ``MaskRCNN`` uses (``describe_stages`` prints both side by side)::

    transform            normalise the image                        (ImageNormalize)
    backbone.body        CNN, features at strides 2, 4, 8           (SmallCNN)
    backbone.fpn         feature pyramid, 64 channels per level     (FeaturePyramidNetwork)
    rpn.anchor_generator anchors at every position of every level   (AnchorGenerator)
    rpn.head             objectness + box deltas per anchor         (RPNHead)
    roi_heads.box_*      RoI Align 7×7 -> 2 FC -> classes + deltas  (BoxHead, BoxPredictor)
    roi_heads.mask_*     RoI Align 14×14 -> convs -> 2× deconv -> C×28×28  (MaskHead)

``build_mask_rcnn(**config)`` wires them (≈1.2 M parameters by default, for 64 × 64
ShapesWorld images; ``extra_heads={"keypoints": head}`` plugs in more per-RoI heads,
``heads.RoIHead``, the way ``coursekit.pose`` adds its keypoint head);
``model(images, targets)`` returns the losses in training, and in eval the same
detections as ``model.predict(images, score_threshold=0.0)``: ShapesWorld category ids and
bool image-sized masks (``MaskRCNN``'s docstring). ``count_parameters`` is
``coursekit.validators.count_parameters``. Tested in tests/instance/test_mask_rcnn.py
and tests/instance/test_heads.py.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from coursekit.instance.backbone import BackboneWithFPN
from coursekit.instance.box_head import BoxHead, BoxPredictor
from coursekit.instance.heads import RoIHead
from coursekit.instance.mask_head import MaskHead
from coursekit.instance.paste import paste_masks_in_image
from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.instance.roi_heads import RoIHeads
from coursekit.instance.rpn import AnchorGenerator, RegionProposalNetwork, RPNHead
from coursekit.validators import count_parameters, require_dim, shape_str

__all__ = ["DEFAULT_CONFIG", "STAGES", "ImageNormalize", "MaskRCNN", "build_mask_rcnn",
           "count_parameters", "describe_stages", "pyramid_strides"]

DEFAULT_CONFIG: dict[str, Any] = {
    "thing_ids": [4, 5, 6, 7],  # ShapesWorld categories -> classes 1..4 (0 = background)
    "widths": [32, 64, 96], "stem": 24, "fpn_channels": 64,
    "anchor_sizes": [[8, 12], [16, 24], [32, 48]], "aspect_ratios": [0.5, 1.0, 2.0],
    "representation": 256, "mask_dim": 32, "mask_convs": 3,
    "canonical_scale": 32.0, "canonical_level": 2,
    "box_sampling_ratio": 2, "mask_sampling_ratio": 1,
    "rpn_batch_size_per_image": 256,
    "rpn_pre_nms_top_n": [200, 100], "rpn_post_nms_top_n": [100, 50],
    "box_batch_size_per_image": 64, "detections_per_img": 50,
    # Detectron2's pixel grid for mask targets and pasting (torchvision's: False); see
    # targets.py.
    "mask_aligned": True,
    # RoI Align of the box and mask poolers: the shipped maskrcnn keeps torchvision's
    # aligned=False; True is Detectron2's ROIAlignV2 (the keypoint model uses it)
    "pooler_aligned": False,
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
    """``(image - mean) / std`` per channel (torchvision's transform also resizes; not ours)."""

    def __init__(self, mean: tuple[float, ...] = (0.5, 0.5, 0.5),
                 std: tuple[float, ...] = (0.25, 0.25, 0.25)) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def forward(self, images: Tensor) -> Tensor:
        return (images - self.mean) / self.std


class MaskRCNN(nn.Module):
    """``MaskRCNN(transform, backbone, rpn, roi_heads, thing_ids)``; see the module docstring.

    One output vocabulary for ``model(images)`` (eval) and ``model.predict(image)``: per
    image ``{"boxes": Tensor[D, 4] xyxy in pixels, "labels": int64 Tensor[D] ShapesWorld
    category ids (``thing_ids``, as ``coursekit.data.CATEGORIES``), "scores": Tensor[D],
    "masks": bool Tensor[D, H, W]}`` (image-sized, pasted and thresholded), best first,
    plus one ``Tensor[D, ...]`` per output of each extra head (``roi_heads.extra_heads``,
    e.g. ``"keypoints"``; zero rows for the detections a head does not run on).
    Training targets use torchvision's class indices ``1..len(thing_ids)`` instead.
    """

    def __init__(self, transform: ImageNormalize, backbone: BackboneWithFPN,
                 rpn: RegionProposalNetwork, roi_heads: RoIHeads, thing_ids: list[int],
                 config: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.transform, self.backbone = transform, backbone
        self.rpn, self.roi_heads = rpn, roi_heads
        self.thing_ids = list(thing_ids)
        self.config = dict(config or {})

    def forward(self, images: Tensor, targets: list[dict[str, Tensor]] | None = None):
        """Training (``targets`` given): dict of 5 losses. Eval: one dict per image.

        Args:
            images: Tensor[B, 3, H, W] in [0, 1].
            targets: per image ``{"boxes": Tensor[G, 4] xyxy, "labels": int64 Tensor[G] in
                [1, num_classes), "masks": bool Tensor[G, H, W]}`` (torchvision's format).

        Returns:
            losses ``{"loss_objectness", "loss_rpn_box_reg", "loss_classifier",
            "loss_box_reg", "loss_mask"}`` (and the extra heads' losses, which need their
            ``target_keys`` in ``targets``, e.g. ``"keypoints"``), or per image the
            detections the heads keep (score > ``roi_heads.score_thresh``) in the class
            docstring's vocabulary, masks thresholded at 0.5 — the same as
            ``predict(images, score_threshold=0.0)``.
        """
        require_dim(images, "images", 4, "Tensor[B, 3, H, W]")
        if images.shape[1] != 3:
            raise ValueError(f"images must be Tensor[B, 3, H, W], got {shape_str(images)}")
        if targets is not None and len(targets) != images.shape[0]:
            raise ValueError(f"targets must have one dict per image ({images.shape[0]}), "
                             f"got {len(targets)}")
        return self._run(images, targets)

    def _run(self, images: Tensor, targets: list[dict[str, Tensor]] | None = None,
             score_threshold: float = 0.0, mask_threshold: float = 0.5):
        image_size = (int(images.shape[-2]), int(images.shape[-1]))
        features = self.backbone(self.transform(images))
        proposals, rpn_losses = self.rpn(image_size, list(features.values()), targets)
        detections, roi_losses = self.roi_heads(features, proposals, image_size, targets)
        if targets is not None:
            return {**rpn_losses, **roi_losses}
        return self.postprocess(detections, image_size, score_threshold, mask_threshold)

    def postprocess(self, detections: list[dict[str, Tensor]], image_size: tuple[int, int],
                    score_threshold: float = 0.0,
                    mask_threshold: float = 0.5) -> list[dict[str, Tensor]]:
        """``roi_heads``' detections -> the class docstring's vocabulary.

        Keeps ``score >= score_threshold``, maps class index ``c`` to ``thing_ids[c - 1]``
        and pastes the ``28 × 28`` probabilities (with ``roi_heads.mask_aligned``'s
        convention) into bool masks ``>= mask_threshold`` of ``image_size``.
        """
        out = []
        for det in detections:
            keep = det["scores"] >= score_threshold  # before pasting: paste only what is kept
            category = torch.tensor(self.thing_ids, device=det["labels"].device)
            masks = paste_masks_in_image(det["masks"][keep], det["boxes"][keep], image_size,
                                         aligned=self.roi_heads.mask_aligned,
                                         threshold=mask_threshold)  # (D, 1, H, W) bool
            kept = {"boxes": det["boxes"][keep], "labels": category[det["labels"][keep] - 1],
                    "scores": det["scores"][keep], "masks": masks[:, 0]}
            kept.update({k: v[keep] for k, v in det.items() if k not in kept})  # extra heads
            out.append(kept)
        return out

    @torch.no_grad()
    def predict(self, image: Tensor, score_threshold: float = 0.5,
                mask_threshold: float = 0.5) -> dict[str, Tensor] | list[dict[str, Tensor]]:
        """Detections of one image Tensor[3, H, W] (or a list of dicts for Tensor[B, 3, H, W]).

        The class docstring's vocabulary (same keys, labels and masks as ``model(images)``
        in eval), keeping detections with ``score >= score_threshold``; masks are the pasted
        probabilities ``>= mask_threshold``. Runs in eval mode and restores the mode.
        """
        require_dim(image, "image", (3, 4), "Tensor[3, H, W] or Tensor[B, 3, H, W]")
        if image.shape[-3] != 3:
            raise ValueError(f"image must be Tensor[3, H, W] or Tensor[B, 3, H, W], "
                             f"got {shape_str(image)}")
        was_training = self.training
        self.eval()
        param = next(self.parameters())
        batch = (image[None] if image.dim() == 3 else image).to(param.device, param.dtype)
        try:
            out = self._run(batch, None, score_threshold, mask_threshold)
        finally:
            self.train(was_training)
        return out[0] if image.dim() == 3 else out


def build_mask_rcnn(*, extra_heads: dict[str, RoIHead] | None = None,
                    **overrides: Any) -> MaskRCNN:
    """A fresh tiny Mask R-CNN; keyword arguments override ``DEFAULT_CONFIG`` entries.

    ``extra_heads``: ``{name: RoIHead}`` more per-RoI heads (``heads.py``), e.g.
    ``{"keypoints": KeypointHead(...)}`` from ``coursekit.pose``; their ``roi_pool`` must
    read this model's pyramid: strides ``pyramid_strides(widths)`` (``(2, 4, 8)`` by default).
    """
    unknown = set(overrides) - set(DEFAULT_CONFIG)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; "
                         f"known: {sorted(DEFAULT_CONFIG)}")
    cfg = {**DEFAULT_CONFIG, **overrides}
    num_classes = len(cfg["thing_ids"]) + 1
    backbone = BackboneWithFPN(cfg["widths"], cfg["stem"], cfg["fpn_channels"])
    sizes = cfg["anchor_sizes"]
    anchors = AnchorGenerator(sizes, [cfg["aspect_ratios"]] * len(sizes))
    if len(sizes) != len(backbone.strides):
        raise ValueError(f"anchor_sizes needs one entry per level ({len(backbone.strides)}), "
                         f"got {sizes}")
    pre, post = cfg["rpn_pre_nms_top_n"], cfg["rpn_post_nms_top_n"]  # (training, testing)
    rpn_head = RPNHead(cfg["fpn_channels"], anchors.num_anchors_per_location()[0])
    rpn = RegionProposalNetwork(anchors, rpn_head,
                                batch_size_per_image=cfg["rpn_batch_size_per_image"],
                                pre_nms_top_n={"training": pre[0], "testing": pre[1]},
                                post_nms_top_n={"training": post[0], "testing": post[1]})
    pool = {"canonical_scale": cfg["canonical_scale"], "canonical_level": cfg["canonical_level"],
            "aligned": cfg["pooler_aligned"]}
    roi_heads = RoIHeads(
        MultiScaleRoIAlign(backbone.strides, 7, cfg["box_sampling_ratio"], **pool),
        BoxHead(cfg["fpn_channels"] * 7 * 7, cfg["representation"]),
        BoxPredictor(cfg["representation"], num_classes),
        MultiScaleRoIAlign(backbone.strides, 14, cfg["mask_sampling_ratio"], **pool),
        MaskHead(cfg["fpn_channels"], num_classes, cfg["mask_dim"], cfg["mask_convs"]),
        batch_size_per_image=cfg["box_batch_size_per_image"],
        detections_per_img=cfg["detections_per_img"],
        mask_aligned=cfg["mask_aligned"],
        extra_heads=extra_heads,
    )
    return MaskRCNN(ImageNormalize(), backbone, rpn, roi_heads, cfg["thing_ids"], config=cfg)


def pyramid_strides(widths: list[int] | None = None) -> tuple[int, ...]:
    """The FPN's strides for backbone ``widths`` (default ``DEFAULT_CONFIG``'s): ``2, 4, 8, ...``.

    Same as ``build_mask_rcnn(widths=widths).backbone.strides``, without building it.
    """
    n = len(DEFAULT_CONFIG["widths"] if widths is None else widths)
    return tuple(2 ** (i + 1) for i in range(n))


def describe_stages(model: nn.Module,
                    stages: list[tuple[str, str, str]] | None = None) -> list[str]:
    """One line per Mask R-CNN stage: ``"stage: path ClassName (N params)"``.

    Works on ours and on torchvision's ``maskrcnn_resnet50_fpn`` (each has the stages
    under the paths in ``STAGES``), so the two can be printed side by side. ``stages``:
    another list of ``(stage, torchvision's path, our path)`` (default ``STAGES``; e.g.
    with a keypoint head's stages added, ``coursekit.pose.keypoint_rcnn``).
    """
    ours = isinstance(model, MaskRCNN)
    lines = []
    for stage, tv_path, our_path in STAGES if stages is None else stages:
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
