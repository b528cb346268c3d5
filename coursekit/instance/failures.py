"""Why an object was not found: each ground-truth instance is *found*, *merged* or *missed*.

``instance_failures(pred_masks, pred_labels, gt_masks, gt_labels, iou_threshold=0.5)`` sorts
the ground-truth objects of one image by what the detector did with them:

* **found** — some detection of the same class has mask IoU ``>= iou_threshold`` with it;
* **merged** — not found, but one detection covers at least half of it *and* at least half of
  another ground-truth object: the detector drew one mask over two (or more) things;
* **missed** — neither: no detection, or only detections in the wrong place or of the wrong
  class.

A detection that finds nothing and merges nothing is **extra** (a false positive). Coverage
is ``|d ∩ g| / |g|``, the fraction of the object's pixels inside the detection. Lesson 05
uses it on ``difficulty="hard"`` scenes, where crowded, overlapping things make the tiny Mask
R-CNN both merge neighbours and miss small, occluded things.

Tested in tests/instance/test_failures.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.validators import describe, require_bool, require_dim, require_integer

__all__ = ["FOUND", "MERGED", "MISSED", "instance_failures"]

FOUND, MERGED, MISSED = "found", "merged", "missed"


def _check(masks: object, labels: object, name: str) -> tuple[Tensor, Tensor]:
    require_dim(masks, f"{name}_masks", 3, "a bool Tensor[N, H, W]")
    require_bool(masks, f"{name}_masks", "a bool Tensor[N, H, W]")
    require_dim(labels, f"{name}_labels", 1, "an integer Tensor[N]")
    require_integer(labels, f"{name}_labels", "an integer Tensor[N]")
    if len(labels) != len(masks):
        raise ValueError(f"{name}_labels must have one label per mask ({len(masks)}), "
                         f"got {describe(labels)}")
    return masks, labels


def instance_failures(pred_masks: Tensor, pred_labels: Tensor, gt_masks: Tensor,
                      gt_labels: Tensor, iou_threshold: float = 0.5) -> dict[str, object]:
    """Classify each ground-truth object of one image as found, merged or missed.

    ``pred_masks`` bool ``Tensor[D, H, W]`` with ``pred_labels`` ``Tensor[D]`` (the detections
    kept, e.g. score >= 0.5), ``gt_masks`` bool ``Tensor[G, H, W]`` with ``gt_labels``
    ``Tensor[G]`` (crowd regions left out). Returns ``{"status": list[str] of length G (FOUND,
    MERGED or MISSED), "extra": bool Tensor[D] (detections that neither found nor merged an
    object), "iou": Tensor[D, G] mask IoU, "coverage": Tensor[D, G] = |d ∩ g| / |g|}``.
    """
    pred_masks, pred_labels = _check(pred_masks, pred_labels, "pred")
    gt_masks, gt_labels = _check(gt_masks, gt_labels, "gt")
    if pred_masks.shape[1:] != gt_masks.shape[1:]:
        raise ValueError(f"pred_masks and gt_masks must have the same H, W, got "
                         f"{describe(pred_masks)} and {describe(gt_masks)}")
    if isinstance(iou_threshold, bool) or not isinstance(iou_threshold, int | float) \
            or not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be a number in (0, 1], got {iou_threshold!r}")
    d = pred_masks.flatten(1).float()  # (D, HW)
    g = gt_masks.flatten(1).float()  # (G, HW)
    inter = d @ g.T  # (D, G) pixels in both
    d_area, g_area = d.sum(1), g.sum(1)
    union = d_area[:, None] + g_area[None, :] - inter
    iou = torch.where(union > 0, inter / union.clamp(min=1), torch.zeros_like(inter))
    coverage = torch.where(g_area > 0, inter / g_area.clamp(min=1), torch.zeros_like(inter))
    same = pred_labels[:, None] == gt_labels[None, :]  # (D, G)
    finds = (iou >= iou_threshold) & same  # detection d finds object g
    covers = coverage >= 0.5  # detection d covers at least half of g
    merger = covers.sum(1) >= 2  # detections that cover two or more objects
    found = finds.any(0)
    merged = ~found & (covers & merger[:, None]).any(0)
    status = [FOUND if f else MERGED if m else MISSED
              for f, m in zip(found.tolist(), merged.tolist(), strict=True)]
    extra = ~finds.any(1) & ~(covers & merger[:, None] & ~found[None, :]).any(1)
    return {"status": status, "extra": extra, "iou": iou, "coverage": coverage}
