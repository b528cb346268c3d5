"""PQStat: TP, FP, FN and summed IoU per category, accumulated over images, then averaged.

Per category, with the matched pairs TP, the unmatched predictions FP and the unmatched
ground truths FN (Kirillov et al., *Panoptic Segmentation*, CVPR 2019)::

    SQ = sum IoU / |TP|,   RQ = |TP| / (|TP| + |FP| / 2 + |FN| / 2),   PQ = SQ × RQ

The counts of all images are summed per category first; PQ, SQ and RQ are then averaged
over the categories that appear (TP + FP + FN > 0), for All, Things and Stuff. Same as
panopticapi's ``PQStat`` / ``pq_average``; tested in tests/panoptic/test_quality.py.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from torch import Tensor

from coursekit.panoptic._checks import check_categories

__all__ = ["GROUPS", "PQStat"]

GROUPS = (("All", None), ("Things", True), ("Stuff", False))


class PQStat:
    """TP, FP, FN and the sum of matched IoUs per category, accumulated over images.

    ``stat.update(pred_ids, pred_segments, gt_ids, gt_segments, categories)`` adds one image
    (or a batch, as ``panoptic_quality`` takes them); ``stat.summary(categories)`` gives
    ``{"All"/"Things"/"Stuff": {"pq", "sq", "rq", "n"}, "per_class": {category_id: {"pq",
    "sq", "rq"}}}`` as panopticapi's ``pq_compute``. ``stat.per_category`` maps
    category_id -> ``{"tp", "fp", "fn", "iou"}``.
    """

    def __init__(self) -> None:
        self.per_category: dict[int, dict[str, float]] = {}

    def add(self, cid: int, tp: int = 0, fp: int = 0, fn: int = 0, iou: float = 0.0) -> None:
        """Add counts (and a sum of IoUs) to category ``cid``."""
        entry = self.per_category.setdefault(cid, {"tp": 0, "fp": 0, "fn": 0, "iou": 0.0})
        entry["tp"] += tp
        entry["fp"] += fp
        entry["fn"] += fn
        entry["iou"] += iou

    def __iadd__(self, other: PQStat) -> PQStat:
        for cid, entry in other.per_category.items():
            self.add(cid, **entry)
        return self

    def update(self, pred_ids: Tensor | Sequence[Tensor], pred_segments: Sequence,
               gt_ids: Tensor | Sequence[Tensor], gt_segments: Sequence, categories: Mapping,
               void_id: int = 0) -> PQStat:
        """Match the segments of one image (or a batch) and add its TP / FP / FN / IoU.

        Arguments as ``panoptic_quality``; returns ``self``.
        """
        from coursekit.panoptic.quality import match_counts  # quality.py builds on PQStat

        self += match_counts(pred_ids, pred_segments, gt_ids, gt_segments, categories, void_id)
        return self

    def average(self, categories: Mapping, isthing: bool | None = None) -> tuple[dict, dict]:
        """Mean PQ / SQ / RQ over the categories (of one kind) that appear; per-category values."""
        kinds = check_categories(categories)
        pq = sq = rq = 0.0
        n = 0
        per_class = {}
        for cid, thing in kinds.items():
            if isthing is not None and thing != isthing:
                continue
            e = self.per_category.get(cid, {"tp": 0, "fp": 0, "fn": 0, "iou": 0.0})
            tp, fp, fn, iou = e["tp"], e["fp"], e["fn"], e["iou"]
            if tp + fp + fn == 0:
                per_class[cid] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
                continue
            n += 1
            denom = tp + 0.5 * fp + 0.5 * fn
            per_class[cid] = {"pq": iou / denom, "sq": iou / tp if tp else 0.0, "rq": tp / denom}
            pq += per_class[cid]["pq"]
            sq += per_class[cid]["sq"]
            rq += per_class[cid]["rq"]
        if n == 0:  # panopticapi divides by zero here; we report zeros with n = 0
            return {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}, per_class
        return {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}, per_class

    def summary(self, categories: Mapping) -> dict:
        """``{"All", "Things", "Stuff": {"pq", "sq", "rq", "n"}, "per_class": {...}}``."""
        results = {}
        for name, isthing in GROUPS:
            results[name], per_class = self.average(categories, isthing)
            if name == "All":
                results["per_class"] = per_class
        return results
