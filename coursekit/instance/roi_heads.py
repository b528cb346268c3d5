"""The second stage of Mask R-CNN: box head and mask head on RoI Align features.

Training (per image): add the ground-truth boxes to the proposals, match by IoU
(>= 0.5 foreground, else background), sample ``batch_size_per_image`` proposals
(at most 25 % foreground), then

* box head on all sampled proposals -> ``fastrcnn_loss`` (classes + box deltas);
* mask head on the **foreground** ones only -> ``mask_rcnn_loss`` (BCE on the GT
  class's channel against the RoI-Aligned GT mask, ``targets.py``).

Testing: box head -> ``postprocess_detections`` -> mask head on the detections ->
``sigmoid`` of the predicted class's channel, ``Tensor[D, 1, 28, 28]``, pasted into
the image by ``MaskRCNN``. Same flow as torchvision's ``RoIHeads`` (module names
``box_roi_pool``, ``box_head``, ``box_predictor``, ``mask_roi_pool``, ``mask_head``);
tested in tests/instance/test_mask_rcnn.py.

**Extra heads** (``extra_heads={"keypoints": head}``, each a ``heads.RoIHead``): in
training each gets the positive proposals of its classes, their RoI features (its own
``roi_pool``) and the matched rows of its ``target_keys``, and adds its losses; in testing
each runs on the detections of its classes and adds its per-detection outputs (zero rows
for the other detections). torchvision wires its keypoint head into ``RoIHeads`` by hand
(``keypoint_roi_pool``, ``keypoint_head``, ``keypoint_predictor``); here every further head
plugs in the same way. Tested in tests/instance/test_heads.py.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import Tensor, nn

from coursekit.detection import box_iou, encode_boxes
from coursekit.instance.box_head import (
    BOX_WEIGHTS,
    BoxHead,
    BoxPredictor,
    fastrcnn_loss,
    postprocess_detections,
)
from coursekit.instance.heads import RESERVED_KEYS, RoIHead
from coursekit.instance.mask_head import MaskHead
from coursekit.instance.matching import match_boxes, sample_balanced
from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.instance.targets import mask_rcnn_loss
from coursekit.validators import describe


class RoIHeads(nn.Module):
    """Box and mask heads with their training-sample selection and test-time post-processing."""

    def __init__(self, box_roi_pool: MultiScaleRoIAlign, box_head: BoxHead,
                 box_predictor: BoxPredictor, mask_roi_pool: MultiScaleRoIAlign,
                 mask_head: MaskHead, *, fg_iou_thresh: float = 0.5, bg_iou_thresh: float = 0.5,
                 batch_size_per_image: int = 128, positive_fraction: float = 0.25,
                 score_thresh: float = 0.05, nms_thresh: float = 0.5, detections_per_img: int = 50,
                 mask_aligned: bool = True, extra_heads: dict[str, RoIHead] | None = None,
                 ) -> None:
        super().__init__()
        # half-pixel convention of mask targets and pasting (targets.py); True: Detectron2's
        self.mask_aligned = mask_aligned
        self.box_roi_pool, self.box_head, self.box_predictor = box_roi_pool, box_head, box_predictor
        self.mask_roi_pool, self.mask_head = mask_roi_pool, mask_head
        self.fg_iou_thresh, self.bg_iou_thresh = fg_iou_thresh, bg_iou_thresh
        self.batch_size_per_image, self.positive_fraction = batch_size_per_image, positive_fraction
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img
        self.extra_heads = nn.ModuleDict()  # empty: no state-dict keys (shipped checkpoints)
        for name, head in (extra_heads or {}).items():
            self.add_head(name, head)

    def add_head(self, name: str, head: RoIHead) -> None:
        """Plug in one more per-RoI head under ``name`` (``heads.py``)."""
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"extra head name must be an identifier string, got {name!r}")
        if not isinstance(head, RoIHead):
            raise TypeError(f"extra head {name!r} must be a coursekit.instance.heads.RoIHead, "
                            f"got {describe(head)}")
        if name in self.extra_heads:
            raise ValueError(f"extra head {name!r} is already plugged in")
        self.extra_heads[name] = head

    def select_training_samples(self, proposals: list[Tensor], targets: list[dict[str, Tensor]]):
        """Sampled proposals, their matched GT rows, labels and box regression targets.

        Each is a list with one tensor per image.
        """
        # the ground-truth boxes are proposals too
        proposals = [torch.cat([p, t["boxes"].to(p)])
                     for p, t in zip(proposals, targets, strict=True)]
        matched_idxs, labels = [], []
        for p, t in zip(proposals, targets, strict=True):
            gt_boxes, gt_labels = t["boxes"].to(p), t["labels"]
            if len(gt_boxes) == 0:  # background image: every proposal is background
                matched_idxs.append(torch.zeros(len(p), dtype=torch.int64, device=p.device))
                labels.append(torch.zeros(len(p), dtype=torch.int64, device=p.device))
                continue
            iou = box_iou(gt_boxes, p)  # (G, P)
            matched = match_boxes(iou, self.fg_iou_thresh, self.bg_iou_thresh)  # (P,)
            label = gt_labels[matched.clamp(min=0)].clone()
            label[matched == -1] = 0  # background
            label[matched == -2] = -1  # ignored
            matched_idxs.append(matched.clamp(min=0))
            labels.append(label)
        pos, neg = sample_balanced(labels, self.batch_size_per_image, self.positive_fraction)
        regression = []
        for i, (p, t) in enumerate(zip(proposals, targets, strict=True)):
            keep = torch.where(pos[i] | neg[i])[0]
            proposals[i], matched_idxs[i] = p[keep], matched_idxs[i][keep]
            labels[i] = labels[i][keep]
            gt_boxes = t["boxes"].to(p) if len(t["boxes"]) else p.new_zeros(1, 4)
            regression.append(encode_boxes(gt_boxes[matched_idxs[i]], proposals[i], BOX_WEIGHTS))
        return proposals, matched_idxs, labels, regression

    def forward(self, features: OrderedDict[str, Tensor], proposals: list[Tensor],
                image_size: tuple[int, int], targets: list[dict[str, Tensor]] | None = None,
                ) -> tuple[list[dict[str, Tensor]], dict[str, Tensor]]:
        """Detections (eval) or losses (training), per the module docstring.

        Eval detections per image: ``{"boxes": Tensor[D, 4], "labels": int64 Tensor[D]``
        class indices ``>= 1``, ``"scores": Tensor[D], "masks": Tensor[D, 1, 28, 28]``
        probabilities of the predicted class}``, plus each extra head's outputs (one row per
        detection); ``MaskRCNN`` pastes the masks and maps the labels to category ids.
        Training losses: ``loss_classifier``, ``loss_box_reg``, ``loss_mask`` and the extra
        heads' (each needs its ``target_keys`` in ``targets``).
        """
        losses: dict[str, Tensor] = {}
        if targets is not None:
            sampled = self.select_training_samples(proposals, targets)
            proposals, matched_idxs, labels, regression = sampled
        box_features = self.box_head(self.box_roi_pool(features, proposals))  # (R, representation)
        class_logits, box_regression = self.box_predictor(box_features)  # (R, C), (R, 4 C)
        detections: list[dict[str, Tensor]] = []
        if targets is not None:
            loss_classifier, loss_box_reg = fastrcnn_loss(class_logits, box_regression, labels,
                                                          regression)
            losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
            # mask branch: foreground proposals only
            positive = [torch.where(label > 0)[0] for label in labels]
            mask_proposals = [p[k] for p, k in zip(proposals, positive, strict=True)]
            mask_matched = [m[k] for m, k in zip(matched_idxs, positive, strict=True)]
            mask_features = self.mask_roi_pool(features, mask_proposals)  # (P, D, 14, 14)
            mask_logits = self.mask_head(mask_features)  # (P, C, 28, 28)
            losses["loss_mask"] = mask_rcnn_loss(
                mask_logits, mask_proposals, [t["masks"] for t in targets],
                [t["labels"] for t in targets], mask_matched, self.mask_aligned)
            for name, head in self.extra_heads.items():
                self._add_losses(losses, self._head_losses(name, head, features, proposals,
                                                           matched_idxs, labels, targets))
            return detections, losses
        boxes, scores, classes = postprocess_detections(
            class_logits, box_regression, proposals, image_size, self.score_thresh,
            self.nms_thresh, self.detections_per_img)
        mask_logits = self.mask_head(self.mask_roi_pool(features, boxes))  # (D, C, 28, 28)
        label = torch.cat(classes)
        rows = torch.arange(len(label), device=label.device)
        probs = mask_logits[rows, label].sigmoid()[:, None]  # (D, 1, 28, 28): the class's mask
        counts = [len(b) for b in boxes]
        per_image = probs.split(counts)
        for b, s, c, m in zip(boxes, scores, classes, per_image, strict=True):
            detections.append({"boxes": b, "labels": c, "scores": s, "masks": m})
        for name, head in self.extra_heads.items():
            outputs = self._head_outputs(name, head, features, boxes, classes)
            for key, value in outputs.items():
                for det, part in zip(detections, value.split(counts), strict=True):
                    det[key] = part
        return detections, losses

    @staticmethod
    def _add_losses(losses: dict[str, Tensor], new: dict[str, Tensor]) -> None:
        for key, value in new.items():
            if key in losses:
                raise ValueError(f"an extra head returned the loss {key!r}, which is taken")
            losses[key] = value

    def _head_losses(self, name: str, head: RoIHead, features: OrderedDict[str, Tensor],
                     proposals: list[Tensor], matched_idxs: list[Tensor], labels: list[Tensor],
                     targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """One extra head in training: its positive proposals, features and matched targets."""
        chosen = [torch.where(head.applies_to(label))[0] for label in labels]
        head_proposals = [p[k] for p, k in zip(proposals, chosen, strict=True)]
        head_targets = []
        for i, (t, m, k) in enumerate(zip(targets, matched_idxs, chosen, strict=True)):
            rows = {}
            for key in head.target_keys:
                if key not in t:
                    raise ValueError(f"targets[{i}] has no {key!r}, which the extra head "
                                     f"{name!r} trains on; got keys {sorted(t)}")
                if len(t[key]) != len(t["boxes"]):
                    raise ValueError(f"targets[{i}][{key!r}] must have one row per box "
                                     f"({len(t['boxes'])}), got {describe(t[key])}")
                rows[key] = t[key][m[k]] if len(t[key]) else t[key].new_zeros(
                    len(k), *t[key].shape[1:])  # no ground truth: no positive either
            head_targets.append(rows)
        outputs = head(head.roi_pool(features, head_proposals))  # on (P, C, S, S) features
        out = head.loss(outputs, head_proposals, head_targets)
        bad = [k for k in out if not k.startswith("loss_")]
        if bad:
            raise ValueError(f"extra head {name!r} returned losses {bad}; names must start "
                             f"with 'loss_'")
        return out

    def _head_outputs(self, name: str, head: RoIHead, features: OrderedDict[str, Tensor],
                      boxes: list[Tensor], classes: list[Tensor]) -> dict[str, Tensor]:
        """One extra head in testing: outputs for every detection (zeros where it does not run)."""
        chosen = [torch.where(head.applies_to(c))[0] for c in classes]
        head_boxes = [b[k] for b, k in zip(boxes, chosen, strict=True)]
        head_labels = [c[k] for c, k in zip(classes, chosen, strict=True)]
        outputs = head(head.roi_pool(features, head_boxes))
        predicted = head.predict(outputs, head_boxes, head_labels)
        total, offsets = sum(len(b) for b in boxes), 0
        rows = []  # where each chosen detection sits among all detections
        for b, k in zip(boxes, chosen, strict=True):
            rows.append(k + offsets)
            offsets += len(b)
        rows_all = torch.cat(rows)  # (sum of chosen,) one list entry per image
        full = {}
        for key, value in predicted.items():
            if key in RESERVED_KEYS:
                raise ValueError(f"extra head {name!r} returned the output {key!r}, one of "
                                 f"the trunk's own keys {RESERVED_KEYS}")
            if len(value) != len(rows_all):
                raise ValueError(f"extra head {name!r} returned {key!r} with {len(value)} "
                                 f"rows for {len(rows_all)} detections")
            full[key] = value.new_zeros(total, *value.shape[1:])
            full[key][rows_all] = value
        return full
