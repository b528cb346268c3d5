"""Training targets for detectors: match boxes to ground truth by IoU, then sample a balanced batch.

Lecture: *Faster R-CNN / Mask R-CNN training* — every anchor (RPN) or proposal
(box head) is compared with every ground-truth box::

    best IoU >= high            -> foreground, matched to that ground truth
    best IoU <  low             -> background
    low <= best IoU < high      -> ignored (neither)

(RPN: high 0.7, low 0.3, plus each ground truth's best anchors kept as foreground
even under 0.7 — "low-quality matches"; box head: 0.5 / 0.5.) Then a fixed-size
batch per image is sampled with at most a ``positive_fraction`` of foreground, so the
many easy background boxes do not swamp the loss.

Same results as torchvision's ``det_utils.Matcher`` and
``BalancedPositiveNegativeSampler`` (the sampler draws the same ``torch.randperm``
numbers in the same order, so under the same seed it samples the same boxes);
tested in tests/instance/test_mask_rcnn.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.validators import describe, positive_int, require_dim

BELOW_LOW_THRESHOLD = -1
BETWEEN_THRESHOLDS = -2


def match_boxes(iou: Tensor, high_threshold: float, low_threshold: float,
                allow_low_quality_matches: bool = False) -> Tensor:
    """For each box (column), the ground truth (row) it is matched to, or -1 / -2.

    ``matches[j] = argmax_i iou[i, j]`` if that IoU ``>= high_threshold``;
    ``-1`` (background) if ``< low_threshold``; ``-2`` (ignore) in between. With
    ``allow_low_quality_matches`` every box whose IoU with some ground truth equals that
    ground truth's best IoU keeps its match even below ``high_threshold``.

    Args:
        iou: Tensor[G, N], IoU of G ground-truth boxes with N anchors / proposals (G >= 1).

    Returns:
        int64 Tensor[N]. Same as torchvision's ``Matcher(high, low, allow_low_quality_matches)``.
    """
    require_dim(iou, "iou", 2, "Tensor[G, N] (ground truths x boxes)")
    if iou.shape[0] == 0:
        raise ValueError("iou has no rows: there must be at least one ground-truth box to "
                         "match against")
    if not low_threshold <= high_threshold:
        raise ValueError(f"low_threshold must be <= high_threshold, got {low_threshold} and "
                         f"{high_threshold}")
    matched_vals, matches = iou.max(dim=0)  # (N,) best ground truth of each box
    all_matches = matches.clone()
    matches[matched_vals < low_threshold] = BELOW_LOW_THRESHOLD
    matches[(matched_vals >= low_threshold) & (matched_vals < high_threshold)] = BETWEEN_THRESHOLDS
    if allow_low_quality_matches:
        best_per_gt = iou.max(dim=1).values  # (G,)
        # boxes tied for some ground truth's best IoU
        _, keep = torch.where(iou == best_per_gt[:, None])
        matches[keep] = all_matches[keep]
    return matches


def sample_balanced(labels: list[Tensor], batch_size_per_image: int,
                    positive_fraction: float) -> tuple[list[Tensor], list[Tensor]]:
    """At most ``batch_size_per_image`` boxes per image, at most ``positive_fraction`` foreground.

    ``labels[i]``: Tensor[N_i] with ``>= 1`` foreground, ``0`` background, ``-1`` ignore.
    ``num_pos = min(#foreground, int(batch_size_per_image * positive_fraction))``,
    ``num_neg = min(#background, batch_size_per_image - num_pos)``, each drawn uniformly
    with ``torch.randperm``.

    Returns:
        (positive masks, negative masks): two lists of uint8 Tensor[N_i]. Same as
        torchvision's ``BalancedPositiveNegativeSampler`` (same random draws).
    """
    if not isinstance(labels, (list, tuple)):
        raise TypeError(f"labels must be a list with one Tensor[N_i] per image, "
                        f"got {describe(labels)}")
    for i, t in enumerate(labels):
        require_dim(t, f"labels[{i}]", 1, "Tensor[N_i]")
    positive_int(batch_size_per_image, "batch_size_per_image")
    if not 0.0 <= positive_fraction <= 1.0:
        raise ValueError(f"positive_fraction must be in [0, 1], got {positive_fraction!r}")
    pos_masks, neg_masks = [], []
    for labels_i in labels:
        positive = torch.where(labels_i >= 1)[0]
        negative = torch.where(labels_i == 0)[0]
        num_pos = min(positive.numel(), int(batch_size_per_image * positive_fraction))
        num_neg = min(negative.numel(), batch_size_per_image - num_pos)
        pos_idx = positive[torch.randperm(positive.numel(), device=positive.device)[:num_pos]]
        neg_idx = negative[torch.randperm(negative.numel(), device=negative.device)[:num_neg]]
        pos_mask = torch.zeros_like(labels_i, dtype=torch.uint8)
        neg_mask = torch.zeros_like(labels_i, dtype=torch.uint8)
        pos_mask[pos_idx] = 1
        neg_mask[neg_idx] = 1
        pos_masks.append(pos_mask)
        neg_masks.append(neg_mask)
    return pos_masks, neg_masks
