"""The region proposal network (RPN): anchors -> objectness + box deltas -> NMS -> proposals.

Lecture: *Faster R-CNN* (the first stage of Mask R-CNN). At every position of
every FPN level, ``A`` anchors (``coursekit.detection.anchors``); a small conv head
predicts for each anchor an **objectness** logit and a box transform
``(dx, dy, dw, dh)`` (``coursekit.detection.box_coder``). Proposals = decoded
anchors, the top-scoring ones per level, clipped, NMS'd (per level) and cut to
``post_nms_top_n``. Training targets: anchors matched to ground truth by IoU
(0.7 / 0.3 with low-quality matches, ``matching.match_boxes``), 256 sampled per image
(half foreground at most), losses::

    L_rpn = BCE(objectness[sampled], label[sampled])
          + smooth_l1(deltas[positive], targets[positive], beta=1/9, sum) / #sampled

Same structure and losses as torchvision's ``RegionProposalNetwork`` / ``RPNHead``
(``rpn.anchor_generator``, ``rpn.head``); tested in tests/instance/test_mask_rcnn.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit.detection import (
    anchors_for_image,
    batched_nms,
    box_iou,
    clip_boxes_to_image,
    decode_boxes,
    encode_boxes,
    remove_small_boxes,
)
from coursekit.instance.matching import (
    BELOW_LOW_THRESHOLD,
    BETWEEN_THRESHOLDS,
    match_boxes,
    sample_balanced,
)


class AnchorGenerator(nn.Module):
    """``sizes[l] × aspect_ratios[l]`` anchors at every cell of level ``l`` (no parameters)."""

    def __init__(self, sizes: Sequence[Sequence[float]],
                 aspect_ratios: Sequence[Sequence[float]]) -> None:
        super().__init__()
        self.sizes = tuple(tuple(s) for s in sizes)
        self.aspect_ratios = tuple(tuple(r) for r in aspect_ratios)

    def num_anchors_per_location(self) -> list[int]:
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios, strict=True)]

    def forward(self, image_size: tuple[int, int], feature_maps: list[Tensor]) -> Tensor:
        """All anchors of one image, Tensor[sum_l H_l W_l A_l, 4] (the same for every image)."""
        ref = feature_maps[0]
        shapes = [tuple(f.shape[-2:]) for f in feature_maps]
        return anchors_for_image(image_size, shapes, self.sizes, self.aspect_ratios,
                                 dtype=ref.dtype, device=ref.device)


class RPNHead(nn.Module):
    """3 × 3 conv + ReLU shared by all levels, then 1 × 1 convs to ``A`` logits, ``4A`` deltas."""

    def __init__(self, in_channels: int, num_anchors: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(in_channels, in_channels, 3, padding=1),
                                  nn.ReLU(inplace=True))
        self.cls_logits = nn.Conv2d(in_channels, num_anchors, 1)
        self.bbox_pred = nn.Conv2d(in_channels, num_anchors * 4, 1)
        for layer in self.modules():
            if isinstance(layer, nn.Conv2d):
                nn.init.normal_(layer.weight, std=0.01)
                nn.init.zeros_(layer.bias)

    def forward(self, features: list[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        """Per level: objectness Tensor[B, A, H, W] and deltas Tensor[B, 4A, H, W]."""
        hidden = [self.conv(f) for f in features]
        return [self.cls_logits(h) for h in hidden], [self.bbox_pred(h) for h in hidden]


def flatten_predictions(objectness: list[Tensor], deltas: list[Tensor]) -> tuple[Tensor, Tensor]:
    """Levels' maps -> Tensor[B, N] logits, Tensor[B, N, 4] deltas (rows ordered as anchors)."""
    flat_obj, flat_deltas = [], []
    for obj, dlt in zip(objectness, deltas, strict=True):
        B, A, H, W = obj.shape
        flat_obj.append(obj.permute(0, 2, 3, 1).reshape(B, -1))  # (B, H * W * A)
        dlt = dlt.view(B, A, 4, H, W).permute(0, 3, 4, 1, 2)  # (B, H, W, A, 4)
        flat_deltas.append(dlt.reshape(B, -1, 4))  # (B, H * W * A, 4)
    return torch.cat(flat_obj, 1), torch.cat(flat_deltas, 1)


def rpn_loss(objectness: Tensor, pred_bbox_deltas: Tensor, labels: list[Tensor],
             regression_targets: list[Tensor], batch_size_per_image: int = 256,
             positive_fraction: float = 0.5) -> tuple[Tensor, Tensor]:
    """(objectness loss, box loss) on a balanced sample of anchors.

    Args:
        objectness: Tensor[B * N] logits; pred_bbox_deltas: Tensor[B * N, 4].
        labels: per image Tensor[N] of 1 (object), 0 (background), -1 (ignore).
        regression_targets: per image Tensor[N, 4] (``encode_boxes(matched gt, anchors)``).

    Returns:
        Same as torchvision's ``RegionProposalNetwork.compute_loss`` (same sampler draws).
    """
    pos, neg = sample_balanced(labels, batch_size_per_image, positive_fraction)
    sampled_pos = torch.where(torch.cat(pos))[0]
    sampled = torch.cat([sampled_pos, torch.where(torch.cat(neg))[0]])
    label, target = torch.cat(labels), torch.cat(regression_targets)
    box_loss = F.smooth_l1_loss(pred_bbox_deltas[sampled_pos], target[sampled_pos], beta=1 / 9,
                                reduction="sum") / sampled.numel()
    objectness_loss = F.binary_cross_entropy_with_logits(objectness.flatten()[sampled],
                                                         label[sampled])
    return objectness_loss, box_loss


class RegionProposalNetwork(nn.Module):
    """Anchors, head, proposal filtering and (in training) the RPN losses."""

    def __init__(self, anchor_generator: AnchorGenerator, head: RPNHead, *,
                 fg_iou_thresh: float = 0.7, bg_iou_thresh: float = 0.3,
                 batch_size_per_image: int = 256, positive_fraction: float = 0.5,
                 pre_nms_top_n: dict[str, int] | None = None,
                 post_nms_top_n: dict[str, int] | None = None, nms_thresh: float = 0.7,
                 score_thresh: float = 0.0, min_size: float = 1e-3) -> None:
        super().__init__()
        self.anchor_generator, self.head = anchor_generator, head
        self.fg_iou_thresh, self.bg_iou_thresh = fg_iou_thresh, bg_iou_thresh
        self.batch_size_per_image, self.positive_fraction = batch_size_per_image, positive_fraction
        self._pre = pre_nms_top_n or {"training": 300, "testing": 150}
        self._post = post_nms_top_n or {"training": 150, "testing": 75}
        self.nms_thresh, self.score_thresh, self.min_size = nms_thresh, score_thresh, min_size

    def assign_targets(self, anchors: Tensor,
                       targets: list[dict[str, Tensor]]) -> tuple[list[Tensor], list[Tensor]]:
        """Per image: labels Tensor[N] (1 / 0 / -1 ignore) and regression targets Tensor[N, 4]."""
        labels, regression = [], []
        for t in targets:
            gt = t["boxes"].to(anchors)
            if len(gt) == 0:  # no object: every anchor is background
                labels.append(anchors.new_zeros(len(anchors)))
                regression.append(anchors.new_zeros(len(anchors), 4))
                continue
            iou = box_iou(gt, anchors)  # (G, N)
            matched = match_boxes(iou, self.fg_iou_thresh, self.bg_iou_thresh, True)  # (N,)
            label = (matched >= 0).to(anchors.dtype)
            label[matched == BELOW_LOW_THRESHOLD] = 0.0
            label[matched == BETWEEN_THRESHOLDS] = -1.0
            labels.append(label)
            regression.append(encode_boxes(gt[matched.clamp(min=0)], anchors))
        return labels, regression

    def filter_proposals(self, proposals: Tensor, objectness: Tensor, image_size: tuple[int, int],
                         level_sizes: list[int]) -> list[Tensor]:
        """Top ``pre_nms_top_n`` per level, clip, drop tiny / low boxes, NMS per level, keep
        ``post_nms_top_n``."""
        mode = "training" if self.training else "testing"
        B = proposals.shape[0]
        objectness = objectness.detach()  # (B, N)
        levels = torch.cat([torch.full((n,), i, dtype=torch.int64, device=proposals.device)
                            for i, n in enumerate(level_sizes)])  # (N,)
        top, offset = [], 0
        for n in level_sizes:
            k = min(self._pre[mode], n)
            top.append(objectness[:, offset:offset + n].topk(k, dim=1).indices + offset)  # (B, k)
            offset += n
        top_idx = torch.cat(top, 1)  # (B, K)
        rows = torch.arange(B, device=proposals.device)[:, None]
        scores = objectness[rows, top_idx].sigmoid()  # (B, K)
        boxes, lvl = proposals[rows, top_idx], levels[top_idx]  # (B, K, 4), (B, K)
        result = []
        for b_boxes, b_scores, b_lvl in zip(boxes, scores, lvl, strict=True):
            b_boxes = clip_boxes_to_image(b_boxes, image_size)
            keep = remove_small_boxes(b_boxes, self.min_size)
            keep = keep[b_scores[keep] >= self.score_thresh]
            b_boxes, b_scores, b_lvl = b_boxes[keep], b_scores[keep], b_lvl[keep]
            keep = batched_nms(b_boxes, b_scores, b_lvl, self.nms_thresh)[: self._post[mode]]
            result.append(b_boxes[keep])
        return result

    def forward(self, image_size: tuple[int, int], features: list[Tensor],
                targets: list[dict[str, Tensor]] | None = None,
                ) -> tuple[list[Tensor], dict[str, Tensor]]:
        """Proposals (list of B Tensor[K_b, 4]); with targets also the losses.

        Losses: ``{"loss_objectness", "loss_rpn_box_reg"}``.
        """
        objectness, deltas = self.head(features)
        anchors = self.anchor_generator(image_size, features)  # (N, 4)
        level_sizes = [o[0].numel() for o in objectness]  # A_l * H_l * W_l
        obj, dlt = flatten_predictions(objectness, deltas)  # (B, N), (B, N, 4)
        B, N = obj.shape
        proposals = decode_boxes(dlt.detach().reshape(-1, 4), anchors.repeat(B, 1)).view(B, N, 4)
        boxes = self.filter_proposals(proposals, obj, image_size, level_sizes)
        losses: dict[str, Tensor] = {}
        if targets is not None:
            labels, regression = self.assign_targets(anchors, targets)
            loss_obj, loss_box = rpn_loss(obj.reshape(-1), dlt.reshape(-1, 4), labels, regression,
                                          self.batch_size_per_image, self.positive_fraction)
            losses = {"loss_objectness": loss_obj, "loss_rpn_box_reg": loss_box}
        return boxes, losses
