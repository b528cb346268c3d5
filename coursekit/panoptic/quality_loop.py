"""The slow, literal PQ: panopticapi's ``pq_compute_single_core``, with numpy, dicts and loops.

The teaching twin of ``panoptic_quality`` (quality.py): per image, ``np.unique`` counts the
area of every segment and of every (gt segment, predicted segment) pair of labels
``gt * offset + pred``; a loop over the pairs finds the matches (same category, IoU > 0.5),
a loop over the gt segments the FN (crowd segments excepted) and a loop over the
predictions the FP (those mostly on void or on a crowd of their category excepted).
``coursekit bench panoptic`` times the two; tests/panoptic/test_quality.py shows that they
agree with a second port of panopticapi, kept in the tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from torch import Tensor

from coursekit.panoptic import _checks
from coursekit.panoptic.pq_stat import PQStat

__all__ = ["panoptic_quality_loop"]


def panoptic_quality_loop(pred_ids: Tensor | Sequence[Tensor], pred_segments: Sequence,
                          gt_ids: Tensor | Sequence[Tensor], gt_segments: Sequence,
                          categories: Mapping[int, Mapping], void_id: int = 0) -> dict:
    """Panoptic quality, panopticapi's way: one image at a time, loops over segments.

    Same arguments, checks and result as ``panoptic_quality``; gt areas are counted from
    ``gt_ids`` (panopticapi reads them from the JSON, which holds the same numbers).
    """
    kinds = _checks.check_categories(categories)
    void_id = _checks.check_void_id(void_id)
    images, batched = _checks.as_images(pred_ids, pred_segments, gt_ids, gt_segments)
    checked = [_checks.check_image(*image, kinds, void_id, b if batched else None)
               for b, image in enumerate(images)]
    stats = PQStat()
    for b, (image, (pred, _, gt, _)) in enumerate(zip(images, checked, strict=True)):
        pred_seg, gt_seg = image[1], image[3]
        at = f"[{b}]" if batched else ""  # which image an error is about
        pan_pred = pred.cpu().numpy().astype(np.int64)
        pan_gt = gt.cpu().numpy().astype(np.int64)
        gt_segms = {int(el["id"]): dict(el, area=0) for el in gt_seg}
        pred_segms = {int(el["id"]): dict(el) for el in pred_seg}

        # gt segments area calculation (panopticapi reads them from the JSON) + sanity checks
        for label, count in zip(*np.unique(pan_gt, return_counts=True), strict=True):
            if label < 0:
                raise _checks.negative_id("gt_ids" + at, int(label))
            if int(label) in gt_segms:
                gt_segms[int(label)]["area"] = int(count)
            elif label != void_id:
                raise _checks.unlisted_id("gt_ids" + at, int(label))

        # predicted segments area calculation + prediction sanity checks
        pred_labels_set = set(pred_segms)
        for label, count in zip(*np.unique(pan_pred, return_counts=True), strict=True):
            if label < 0:
                raise _checks.negative_id("pred_ids" + at, int(label))
            if int(label) not in pred_segms:
                if label == void_id:
                    continue
                raise _checks.unlisted_id("pred_ids" + at, int(label))
            pred_segms[int(label)]["area"] = int(count)
            pred_labels_set.remove(int(label))
        if pred_labels_set:
            raise _checks.absent_id("pred_segments" + at, min(pred_labels_set))

        # confusion matrix calculation
        offset = int(max(pan_pred.max(initial=0), void_id)) + 1
        if (int(pan_gt.max(initial=void_id)) + 1) * offset >= 1 << 63:  # int64 would overflow
            pan_gt = pan_gt.astype(object)  # Python's integers: slow but exact
        gt_pred_map = {}
        pairs, counts = np.unique(pan_gt * offset + pan_pred, return_counts=True)
        for label, intersection in zip(pairs, counts, strict=True):
            gt_pred_map[(int(label) // offset, int(label) % offset)] = int(intersection)

        # count all matched pairs
        gt_matched, pred_matched = set(), set()
        for (gt_label, pred_label), intersection in gt_pred_map.items():
            if gt_label not in gt_segms or pred_label not in pred_segms:
                continue
            if gt_segms[gt_label].get("iscrowd", 0) == 1:
                continue
            if gt_segms[gt_label]["category_id"] != pred_segms[pred_label]["category_id"]:
                continue
            union = (pred_segms[pred_label]["area"] + gt_segms[gt_label]["area"] - intersection
                     - gt_pred_map.get((void_id, pred_label), 0))
            iou = intersection / union
            if iou > 0.5:
                stats.add(gt_segms[gt_label]["category_id"], tp=1, iou=iou)
                gt_matched.add(gt_label)
                pred_matched.add(pred_label)

        # count false negatives
        crowd_labels_dict = {}
        for gt_label, gt_info in gt_segms.items():
            if gt_label in gt_matched:
                continue
            if gt_info.get("iscrowd", 0) == 1:  # crowd segments are ignored
                crowd_labels_dict[gt_info["category_id"]] = gt_label
                continue
            stats.add(gt_info["category_id"], fn=1)

        # count false positives
        for pred_label, pred_info in pred_segms.items():
            if pred_label in pred_matched:
                continue
            intersection = gt_pred_map.get((void_id, pred_label), 0)  # on void
            if pred_info["category_id"] in crowd_labels_dict:  # plus on a crowd of its category
                crowd = crowd_labels_dict[pred_info["category_id"]]
                intersection += gt_pred_map.get((crowd, pred_label), 0)
            if intersection / pred_info["area"] > 0.5:  # mostly void or crowd: ignored
                continue
            stats.add(pred_info["category_id"], fp=1)
    return stats.summary(categories)
