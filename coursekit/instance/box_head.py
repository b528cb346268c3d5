"""The box head: RoI Align 7 × 7 -> 2 fully connected layers -> class scores + per-class box deltas.

Lecture: *Faster R-CNN, second stage* — each proposal's ``7 × 7`` RoI feature is
flattened and classified into ``C`` classes (background included); a class-specific
box transform refines the proposal (box coder weights ``(10, 10, 5, 5)``). Loss::

    L_box = cross_entropy(class_logits, labels)
          + smooth_l1(deltas[p, label_p], targets[p], beta=1/9, sum) / #sampled  (foreground p)

At test time: softmax scores, decode every class's box, drop the background, scores
``<= score_thresh`` and tiny boxes, NMS per class, keep the best ``detections_per_img``.

Same as torchvision's ``TwoMLPHead``, ``FastRCNNPredictor``, ``fastrcnn_loss`` and
``RoIHeads.postprocess_detections``; tested in tests/instance/test_mask_rcnn.py.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit.detection import batched_nms, clip_boxes_to_image, decode_boxes, remove_small_boxes

BOX_WEIGHTS = (10.0, 10.0, 5.0, 5.0)


class BoxHead(nn.Module):
    """Tensor[R, C, 7, 7] -> flatten -> fc6 + ReLU -> fc7 + ReLU -> Tensor[R, representation]."""

    def __init__(self, in_features: int, representation: int = 256) -> None:
        super().__init__()
        self.fc6 = nn.Linear(in_features, representation)
        self.fc7 = nn.Linear(representation, representation)

    def forward(self, x: Tensor) -> Tensor:
        x = x.flatten(start_dim=1)  # (R, C * 7 * 7)
        return F.relu(self.fc7(F.relu(self.fc6(x))))  # (R, representation)


class BoxPredictor(nn.Module):
    """Tensor[R, representation] -> logits Tensor[R, C], deltas Tensor[R, 4 C] (C = num_classes)."""

    def __init__(self, in_channels: int, num_classes: int) -> None:
        super().__init__()
        self.cls_score = nn.Linear(in_channels, num_classes)
        self.bbox_pred = nn.Linear(in_channels, num_classes * 4)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        return self.cls_score(x), self.bbox_pred(x)


def fastrcnn_loss(class_logits: Tensor, box_regression: Tensor, labels: list[Tensor],
                  regression_targets: list[Tensor]) -> tuple[Tensor, Tensor]:
    """(classification loss, box loss) of the sampled proposals.

    Args:
        class_logits: Tensor[R, C]; box_regression: Tensor[R, 4 C].
        labels: per image int64 Tensor[R_i] (0 = background); regression_targets: per image
            Tensor[R_i, 4].

    Returns:
        Same as ``torchvision.models.detection.roi_heads.fastrcnn_loss``.
    """
    label = torch.cat(labels, dim=0)  # (R,)
    target = torch.cat(regression_targets, dim=0)  # (R, 4)
    classification_loss = F.cross_entropy(class_logits, label)
    positive = torch.where(label > 0)[0]
    R = class_logits.shape[0]
    box_regression = box_regression.reshape(R, box_regression.size(-1) // 4, 4)  # (R, C, 4)
    box_loss = F.smooth_l1_loss(box_regression[positive, label[positive]], target[positive],
                                beta=1 / 9, reduction="sum") / label.numel()
    return classification_loss, box_loss


def postprocess_detections(class_logits: Tensor, box_regression: Tensor, proposals: list[Tensor],
                           image_size: tuple[int, int], score_thresh: float = 0.05,
                           nms_thresh: float = 0.5, detections_per_img: int = 100,
                           ) -> tuple[list[Tensor], list[Tensor], list[Tensor]]:
    """Boxes Tensor[D, 4], scores Tensor[D], labels int64 Tensor[D] (``>= 1``) per image.

    Same steps as torchvision's ``RoIHeads.postprocess_detections`` (one image size for the batch).
    """
    num_classes = class_logits.shape[-1]
    sizes = [len(p) for p in proposals]
    pred_boxes = decode_boxes(box_regression, torch.cat(proposals), BOX_WEIGHTS)  # (R, 4 C)
    pred_scores = F.softmax(class_logits, -1)  # (R, C)
    all_boxes, all_scores, all_labels = [], [], []
    for boxes, scores in zip(pred_boxes.split(sizes), pred_scores.split(sizes), strict=True):
        boxes = clip_boxes_to_image(boxes.reshape(-1, 4), image_size)
        boxes = boxes.view(-1, num_classes, 4)  # (R_i, C, 4)
        labels = torch.arange(num_classes, device=boxes.device).view(1, -1).expand_as(scores)
        boxes, scores = boxes[:, 1:].reshape(-1, 4), scores[:, 1:].reshape(-1)  # no background
        labels = labels[:, 1:].reshape(-1)  # (R_i * (C - 1),)
        keep = torch.where(scores > score_thresh)[0]  # drop the background column, then low scores
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = remove_small_boxes(boxes, min_size=1e-2)
        boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
        keep = batched_nms(boxes, scores, labels, nms_thresh)[:detections_per_img]  # NMS per class
        all_boxes.append(boxes[keep])
        all_scores.append(scores[keep])
        all_labels.append(labels[keep])
    return all_boxes, all_scores, all_labels
