"""Panoptic FPN: one backbone + FPN, two branches: Mask R-CNN (things), a semantic head (stuff).

Lecture (Kirillov, Girshick, He, Dollár, *Panoptic Feature Pyramid Networks*, CVPR 2019).
Instead of running an instance segmenter and a semantic segmenter side by side, Panoptic
FPN shares the expensive part: the **backbone with its feature pyramid**. On top sit

* the **instance branch**: Mask R-CNN's RPN and RoI heads (boxes, classes, masks) on the
  pyramid levels, exactly as before;
* the **semantic branch**: from every pyramid level, a few (3 × 3 conv, GroupNorm, ReLU,
  2× bilinear upsample) stages bring the features to the finest level's resolution (1/4
  of the image in the paper), the levels are **summed**, a 1 × 1 conv gives class logits,
  and a final bilinear upsample returns to the image size. It predicts the stuff classes
  plus one "thing" class (here: every category, as our U-Net does).

The upsampling is lesson 02's ``bilinear_upsample`` (``size=`` the next level's size,
``align_corners=False``), the same as ``F.interpolate(mode="bilinear")`` up to float32
rounding (tested). The two losses are added (with a weight) and trained together; at
test time the two outputs are merged by ``panoptic_fusion``. ``PanopticFPN(mask_rcnn,
num_classes)`` builds the semantic branch on the FPN of one of our ``MaskRCNN`` models;
``coursekit.panoptic.train`` trains it on the shipped Mask R-CNN's frozen FPN
(``coursekit train panopticfpn``) and ``load_panoptic_fpn()`` loads the result. Tested in
tests/panoptic/test_panoptic_fpn.py and tests/panoptic/test_panoptic_fpn_train.py.
"""

from __future__ import annotations

from torch import Tensor, nn

from coursekit.upsampling.bilinear import bilinear_upsample
from coursekit.validators import describe, shape_str

__all__ = ["PanopticFPN", "SemanticFPNHead"]


class SemanticFPNHead(nn.Module):
    """FPN levels ``{"0": [B, C, H/s0, W/s0], ...}`` (finest first) -> Tensor[B, classes, H, W]."""

    def __init__(self, *, in_channels: int, num_levels: int, num_classes: int,
                 channels: int = 32) -> None:
        super().__init__()
        if channels % 8:
            raise ValueError(f"channels must be a multiple of 8 (GroupNorm with 8 groups), "
                             f"got {channels}")

        def stage(cin: int) -> nn.Sequential:
            return nn.Sequential(nn.Conv2d(cin, channels, 3, padding=1, bias=False),
                                 nn.GroupNorm(8, channels), nn.ReLU())

        # level i needs i upsampling stages (at least one conv) to reach the finest level
        self.scale_heads = nn.ModuleList(
            nn.ModuleList([stage(in_channels if j == 0 else channels) for j in range(max(i, 1))])
            for i in range(num_levels)
        )
        self.predictor = nn.Conv2d(channels, num_classes, 1)

    def forward(self, features: dict[str, Tensor], image_size: tuple[int, int]) -> Tensor:
        levels = list(features.values())
        if len(levels) != len(self.scale_heads):
            raise ValueError(f"features must have {len(self.scale_heads)} levels (finest first), "
                             f"got {len(levels)}")
        out = None
        for i, (x, convs) in enumerate(zip(levels, self.scale_heads, strict=True)):
            for j, conv in enumerate(convs):
                x = conv(x)
                if i > 0:  # 2× per stage; the last stage lands on the finest level's size
                    size = tuple(levels[i - j - 1].shape[-2:])  # odd sizes round per level
                    x = bilinear_upsample(x, size=size, align_corners=False)  # (B, ch, ~2h, ~2w)
            out = x if out is None else out + x  # (B, ch, H/s0, W/s0): the levels summed
        logits = self.predictor(out)  # (B, num_classes, H/s0, W/s0)
        return bilinear_upsample(logits, size=image_size, align_corners=False)  # (B, K, H, W)


class PanopticFPN(nn.Module):
    """A ``MaskRCNN`` (shared backbone + FPN, instance branch) plus a ``SemanticFPNHead``.

    ``model(images)`` (eval) -> ``(detections, semantic_logits)``: per image ``{"boxes",
    "labels" (category ids), "scores", "masks" (bool Tensor[D, H, W])}`` as
    ``MaskRCNN.predict`` gives them, and Tensor[B, num_classes, H, W]; the backbone runs
    once for both branches.
    """

    def __init__(self, mask_rcnn: nn.Module, num_classes: int, channels: int = 32) -> None:
        super().__init__()
        self.mask_rcnn = mask_rcnn
        backbone = mask_rcnn.backbone
        self.semantic_head = SemanticFPNHead(in_channels=backbone.out_channels,
                                             num_levels=len(backbone.strides),
                                             num_classes=num_classes, channels=channels)

    def forward(self, images: Tensor) -> tuple[list[dict[str, Tensor]], Tensor]:
        m = self.mask_rcnn
        if not isinstance(images, Tensor):
            raise TypeError(f"images must be Tensor[B, 3, H, W], got {describe(images)}")
        if images.dim() != 4 or images.shape[1] != 3:
            raise ValueError(f"images must be Tensor[B, 3, H, W], got {shape_str(images)}")
        image_size = (int(images.shape[-2]), int(images.shape[-1]))
        features = m.backbone(m.transform(images))  # computed once, used by both branches
        semantic = self.semantic_head(features, image_size)  # (B, num_classes, H, W)
        proposals, _ = m.rpn(image_size, list(features.values()), None)
        detections, _ = m.roi_heads(features, proposals, image_size, None)
        # as MaskRCNN.predict(score_threshold=0): category ids, masks pasted and thresholded
        return m.postprocess(detections, image_size), semantic
