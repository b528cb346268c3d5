"""Panoptic quality: PQ = SQ × RQ, per category, then averaged over All / Things / Stuff.

Lecture (Kirillov et al., *Panoptic Segmentation*, CVPR 2019). A predicted segment and a
ground-truth segment of the **same category** match when their IoU is **> 0.5**; segments
of one image do not overlap, so such a match is unique. Per category, with the matched
pairs TP, the unmatched predictions FP and the unmatched ground truths FN::

    PQ = sum_{(p, g) in TP} IoU(p, g) / (|TP| + |FP| / 2 + |FN| / 2)
       = [sum IoU / |TP|]  ×  [|TP| / (|TP| + |FP| / 2 + |FN| / 2)]
       =        SQ (segmentation quality)  ×  RQ (recognition quality, an F1 score)

PQ is averaged over the categories that appear (TP + FP + FN > 0): ``n`` of them.
Two special regions, as in COCO:

* **void** pixels (id ``void_id`` in either map) are not part of any segment: the IoU of a
  pair leaves out the prediction's pixels that fall on ground-truth void;
* **crowd** ground-truth segments (``iscrowd = 1``) match nothing and are not FN; an
  unmatched prediction that lies mostly (> 0.5 of its area) on void plus the crowd region
  of its own category is not an FP.

``panoptic_quality`` is vectorised (one joint histogram of (gt segment, predicted segment)
per image); ``panoptic_quality_loop`` is panopticapi's ``pq_compute_single_core`` written
literally with dicts and loops; ``PQStat`` accumulates TP / FP / FN / IoU per category over
many images, as ``pq_compute`` does. Same semantics as panopticapi's ``pq_compute``
(PQ reported in [0, 1], not in percent); tested in tests/panoptic/test_quality.py.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor

__all__ = ["PQStat", "panoptic_quality", "panoptic_quality_loop"]

GROUPS = (("All", None), ("Things", True), ("Stuff", False))


def _describe(x: object) -> str:
    return f"Tensor{list(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__


def _check_categories(categories: object) -> dict[int, bool]:
    """``{category_id: {"isthing": 0/1}}`` -> ``{category_id: isthing}``."""
    if not isinstance(categories, Mapping) or not categories:
        raise TypeError(f"categories must be a non-empty dict {{category_id: {{'isthing': 0 or 1}}}}, "
                        f"got {type(categories).__name__}")
    out = {}
    for cid, info in categories.items():
        if not isinstance(info, Mapping) or "isthing" not in info:
            raise ValueError(f"categories[{cid!r}] must be a dict with an 'isthing' key, got {info!r}")
        out[int(cid)] = bool(info["isthing"])
    return out


def _check_ids(name: str, ids: object) -> Tensor:
    if not isinstance(ids, Tensor) or ids.dim() != 2 or ids.is_floating_point() or ids.is_complex() or ids.dtype == torch.bool:
        raise ValueError(f"{name} must be an integer Tensor[H, W] of segment ids, got {_describe(ids)}")
    if ids.numel() and int(ids.min()) < 0:
        raise ValueError(f"{name} must hold segment ids >= 0, got {int(ids.min())}")
    return ids


def _check_segments(name: str, segments: object, categories: dict[int, bool], void_id: int) -> list[dict]:
    if not isinstance(segments, Sequence) or isinstance(segments, (str, bytes)):
        raise TypeError(f"{name} must be a list of dicts {{'id', 'category_id'}}, got {type(segments).__name__}")
    seen = set()
    for k, seg in enumerate(segments):
        if not isinstance(seg, Mapping) or "id" not in seg or "category_id" not in seg:
            raise ValueError(f"{name}[{k}] must be a dict with 'id' and 'category_id', got {seg!r}")
        if int(seg["id"]) == void_id:
            raise ValueError(f"{name}[{k}] has id {int(seg['id'])}, which is void_id: void is not a segment")
        if int(seg["id"]) in seen:
            raise ValueError(f"{name} lists segment id {int(seg['id'])} twice")
        seen.add(int(seg["id"]))
        if int(seg["category_id"]) not in categories:
            raise ValueError(f"{name}[{k}] has category_id {int(seg['category_id'])}, which is not in categories "
                             f"{sorted(categories)}")
    return list(segments)


def _segment_index(name: str, ids: Tensor, segment_ids: Tensor, void_id: int) -> Tensor:
    """Tensor[H, W] of indices into ``segment_ids`` (len S); void pixels get S."""
    S = len(segment_ids)
    order = torch.argsort(segment_ids)
    sorted_ids = segment_ids[order]
    flat = ids.reshape(-1).to(torch.int64)
    pos = torch.searchsorted(sorted_ids, flat).clamp(max=max(S - 1, 0))  # (H*W,)
    found = sorted_ids[pos] == flat if S else torch.zeros_like(flat, dtype=torch.bool)
    void = flat == void_id
    unknown = ~found & ~void
    if bool(unknown.any()):
        seg = int(flat[unknown][0])
        listing = "pred_segments" if name == "pred_ids" else "gt_segments"
        raise ValueError(f"{name} contains segment id {seg}, which {listing} does not list (and is not void_id)")
    index = torch.where(found, order[pos] if S else pos, torch.full_like(pos, S))
    return index.view(ids.shape)


def _check_image(pred_ids: object, pred_segments: object, gt_ids: object, gt_segments: object,
                 categories: object, void_id: object) -> tuple[Tensor, list[dict], Tensor, list[dict], int]:
    """The checks every PQ function makes on one image's arguments (messages name the argument)."""
    isthing = _check_categories(categories)
    if isinstance(void_id, bool) or not isinstance(void_id, numbers.Integral):
        raise TypeError(f"void_id must be an int, got {type(void_id).__name__}")
    if void_id < 0:
        raise ValueError(f"void_id must be >= 0, got {void_id}")
    void_id = int(void_id)
    pred_ids, gt_ids = _check_ids("pred_ids", pred_ids), _check_ids("gt_ids", gt_ids)
    if pred_ids.shape != gt_ids.shape:
        raise ValueError(f"pred_ids and gt_ids must have the same shape [H, W], got "
                         f"{list(pred_ids.shape)} and {list(gt_ids.shape)}")
    pred_segments = _check_segments("pred_segments", pred_segments, isthing, void_id)
    gt_segments = _check_segments("gt_segments", gt_segments, isthing, void_id)
    return pred_ids, pred_segments, gt_ids, gt_segments, void_id


class PQStat:
    """TP, FP, FN and the sum of matched IoUs per category, accumulated over images.

    ``stat.update(pred_ids, pred_segments, gt_ids, gt_segments, categories)`` adds one image;
    ``stat.summary(categories)`` gives ``{"All"/"Things"/"Stuff": {"pq", "sq", "rq", "n"},
    "per_class": {category_id: {"pq", "sq", "rq"}}}`` as panopticapi's ``pq_compute``.
    ``stat.per_category`` maps category_id -> ``{"tp", "fp", "fn", "iou"}``.
    """

    def __init__(self) -> None:
        self.per_category: dict[int, dict[str, float]] = {}

    def _add(self, cid: int, key: str, value: float) -> None:
        entry = self.per_category.setdefault(cid, {"tp": 0, "fp": 0, "fn": 0, "iou": 0.0})
        entry[key] += value

    def __iadd__(self, other: PQStat) -> PQStat:
        for cid, entry in other.per_category.items():
            for key, value in entry.items():
                self._add(cid, key, value)
        return self

    def update(self, pred_ids: Tensor, pred_segments: Sequence[Mapping], gt_ids: Tensor,
               gt_segments: Sequence[Mapping], categories: Mapping, void_id: int = 0) -> PQStat:
        """Match the segments of one image and add its TP / FP / FN / IoU; returns ``self``."""
        pred_ids, pred_segments, gt_ids, gt_segments, void_id = _check_image(
            pred_ids, pred_segments, gt_ids, gt_segments, categories, void_id)
        device = gt_ids.device
        pred_ids = pred_ids.to(device)

        def table(segments: list[dict], key: str, default: int | None = None) -> Tensor:
            return torch.tensor([int(s.get(key, default) if default is not None else s[key]) for s in segments],
                                dtype=torch.int64, device=device)

        p_id, p_cat = table(pred_segments, "id"), table(pred_segments, "category_id")  # (P,), (P,)
        g_id, g_cat = table(gt_segments, "id"), table(gt_segments, "category_id")  # (G,), (G,)
        g_crowd = table(gt_segments, "iscrowd", 0) == 1  # (G,)
        P, G = len(p_id), len(g_id)
        p_index = _segment_index("pred_ids", pred_ids, p_id, void_id)  # (H, W) in [0, P]
        g_index = _segment_index("gt_ids", gt_ids, g_id, void_id)  # (H, W) in [0, G]
        joint = torch.bincount((g_index * (P + 1) + p_index).reshape(-1), minlength=(G + 1) * (P + 1))
        inter = joint.view(G + 1, P + 1)  # (G + 1, P + 1): last row gt void, last column pred void
        p_area = inter.sum(0)[:P]  # (P,) every pixel of the prediction, void included
        g_area = inter.sum(1)[:G]  # (G,)
        on_void = inter[G, :P]  # (P,) prediction pixels on ground-truth void
        absent = (p_area == 0).nonzero().flatten()
        if len(absent):
            raise ValueError(f"pred_segments lists segment id {int(p_id[absent[0]])}, which pred_ids does not contain")
        i = inter[:G, :P].double()  # (G, P)
        union = p_area[None].double() + g_area[:, None].double() - i - on_void[None].double()
        iou = torch.where(i > 0, i / union.clamp(min=1), torch.zeros_like(i))  # (G, P)
        candidate = (g_cat[:, None] == p_cat[None]) & ~g_crowd[:, None] & (i > 0)
        match = candidate & (iou > 0.5)  # (G, P): at most one True per row and per column
        g_matched, p_matched = match.any(1), match.any(0)

        # one crowd segment per category (the last listed, as panopticapi's dict keeps it)
        crowd_of = {int(c): k for k, c in enumerate(g_cat.tolist()) if bool(g_crowd[k])}
        crowd_row = torch.tensor([crowd_of.get(int(c), G) for c in p_cat.tolist()], dtype=torch.int64, device=device)
        crowd_inter = torch.where(crowd_row < G, inter[crowd_row, torch.arange(P, device=device)],
                                  torch.zeros_like(on_void)) if P else on_void  # (P,)
        ignored = (on_void + crowd_inter).double() / p_area.double().clamp(min=1) > 0.5  # (P,)

        tp_cat = g_cat[g_matched].tolist()
        tp_iou = iou[match].tolist()  # row-major: the same order as the matched gt rows
        for cid, value in zip(tp_cat, tp_iou):
            self._add(cid, "tp", 1)
            self._add(cid, "iou", value)
        for cid in g_cat[~g_matched & ~g_crowd].tolist():
            self._add(cid, "fn", 1)
        for cid in p_cat[~p_matched & ~ignored].tolist():
            self._add(cid, "fp", 1)
        return self

    def average(self, categories: Mapping, isthing: bool | None = None) -> tuple[dict, dict]:
        """Mean PQ / SQ / RQ over the categories (of one kind) that appear; and the per-category values."""
        kinds = _check_categories(categories)
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
            pq, sq, rq = pq + per_class[cid]["pq"], sq + per_class[cid]["sq"], rq + per_class[cid]["rq"]
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


def _as_images(pred_ids, pred_segments, gt_ids, gt_segments) -> list[tuple]:
    """One image (Tensor[H, W] ids, list of dicts) or many (lists of those, or Tensor[B, H, W])."""
    single = isinstance(pred_ids, Tensor) and pred_ids.dim() == 2
    if single:
        return [(pred_ids, pred_segments, gt_ids, gt_segments)]
    if isinstance(pred_ids, Tensor) and pred_ids.dim() == 3:
        pred_ids = list(pred_ids)
    if isinstance(gt_ids, Tensor) and gt_ids.dim() == 3:
        gt_ids = list(gt_ids)
    if not isinstance(pred_ids, (list, tuple)):
        raise ValueError(f"pred_ids must be Tensor[H, W], Tensor[B, H, W] or a list of Tensor[H, W], "
                         f"got {_describe(pred_ids)}")
    for name, value in (("gt_ids", gt_ids), ("pred_segments", pred_segments), ("gt_segments", gt_segments)):
        if not isinstance(value, (list, tuple)) or len(value) != len(pred_ids):
            got = f"{type(value).__name__} of length {len(value)}" if isinstance(value, (list, tuple)) else _describe(value)
            raise ValueError(f"{name} must be a list with one entry per image ({len(pred_ids)}) when pred_ids is a "
                             f"list, got {got}")
    if not pred_ids:
        raise ValueError("pred_ids must hold at least one image, got an empty list")
    return list(zip(pred_ids, pred_segments, gt_ids, gt_segments))


def panoptic_quality(pred_ids: Tensor | Sequence[Tensor], pred_segments: Sequence, gt_ids: Tensor | Sequence[Tensor],
                     gt_segments: Sequence, categories: Mapping[int, Mapping], void_id: int = 0) -> dict:
    """Panoptic quality PQ = SQ × RQ of a predicted panoptic segmentation.

    Args:
        pred_ids, gt_ids: integer Tensor[H, W] of segment ids (``void_id`` = no segment), or,
            for many images, Tensor[B, H, W] or a list of Tensor[H, W] (sizes may differ).
        pred_segments, gt_segments: list of ``{"id", "category_id"}`` per image (a list of
            such lists for many images); gt segments may carry ``"iscrowd"`` (default 0).
            Every non-void id in a map must be listed, and every listed pred id must appear.
        categories: ``{category_id: {"isthing": 0 or 1}}``.
        void_id: the id of unlabelled pixels in both maps (panopticapi: 0).

    Returns:
        ``{"All" / "Things" / "Stuff": {"pq", "sq", "rq", "n"}, "per_class": {category_id:
        {"pq", "sq", "rq"}}}``, values in [0, 1]; TP / FP / FN / IoU are summed per category
        over all images before averaging. Same as panopticapi's ``pq_compute``, except that a
        group with no category present gives zeros (n = 0) instead of dividing by zero.
    """
    stat = PQStat()
    for pred, pred_seg, gt, gt_seg in _as_images(pred_ids, pred_segments, gt_ids, gt_segments):
        stat.update(pred, pred_seg, gt, gt_seg, categories, void_id)
    return stat.summary(categories)


def panoptic_quality_loop(pred_ids: Tensor | Sequence[Tensor], pred_segments: Sequence,
                          gt_ids: Tensor | Sequence[Tensor], gt_segments: Sequence,
                          categories: Mapping[int, Mapping], void_id: int = 0) -> dict:
    """The slow, literal version: panopticapi's ``pq_compute_single_core`` with numpy and loops.

    Same arguments and result as ``panoptic_quality``; gt areas are counted from ``gt_ids``
    (panopticapi reads them from the JSON, which holds the same numbers).
    """
    kinds = _check_categories(categories)
    stats: dict[int, dict[str, float]] = {}

    def stat(cid: int) -> dict[str, float]:
        return stats.setdefault(cid, {"tp": 0, "fp": 0, "fn": 0, "iou": 0.0})

    for pred, pred_seg, gt, gt_seg in _as_images(pred_ids, pred_segments, gt_ids, gt_segments):
        pred, pred_seg, gt, gt_seg, void_id = _check_image(pred, pred_seg, gt, gt_seg, categories, void_id)
        known = torch.tensor([int(el["id"]) for el in gt_seg] + [void_id], device=gt.device)
        if not bool(torch.isin(gt, known).all()):  # panopticapi reads gt areas from the JSON instead
            unknown = int(gt[~torch.isin(gt, known)][0])
            raise ValueError(f"gt_ids contains segment id {unknown}, which gt_segments does not list (and is not void_id)")
        if gt.numel() == 0:
            continue  # an empty image has no segments
        pan_pred = pred.cpu().numpy().astype(np.int64)
        pan_gt = gt.cpu().numpy().astype(np.int64)
        gt_segms = {int(el["id"]): dict(el, area=0) for el in gt_seg}
        pred_segms = {int(el["id"]): dict(el) for el in pred_seg}
        for label, count in zip(*np.unique(pan_gt, return_counts=True)):
            if int(label) in gt_segms:
                gt_segms[int(label)]["area"] = int(count)
        pred_labels_set = set(pred_segms)
        for label, count in zip(*np.unique(pan_pred, return_counts=True)):
            if int(label) not in pred_segms:
                if label == void_id:
                    continue
                raise ValueError(f"pred_ids contains segment id {int(label)}, which pred_segments does not list")
            pred_segms[int(label)]["area"] = int(count)
            pred_labels_set.remove(int(label))
        if pred_labels_set:
            raise ValueError(f"pred_segments lists segment id {min(pred_labels_set)}, which pred_ids does not contain")

        offset = int(max(pan_pred.max(), void_id)) + 1
        gt_pred_map = {}
        for label, intersection in zip(*np.unique(pan_gt * offset + pan_pred, return_counts=True)):
            gt_pred_map[(int(label) // offset, int(label) % offset)] = int(intersection)

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
                stat(gt_segms[gt_label]["category_id"])["tp"] += 1
                stat(gt_segms[gt_label]["category_id"])["iou"] += iou
                gt_matched.add(gt_label)
                pred_matched.add(pred_label)

        crowd_labels_dict = {}
        for gt_label, gt_info in gt_segms.items():
            if gt_label in gt_matched:
                continue
            if gt_info.get("iscrowd", 0) == 1:  # crowd segments are ignored
                crowd_labels_dict[gt_info["category_id"]] = gt_label
                continue
            stat(gt_info["category_id"])["fn"] += 1

        for pred_label, pred_info in pred_segms.items():
            if pred_label in pred_matched:
                continue
            intersection = gt_pred_map.get((void_id, pred_label), 0)  # on void
            if pred_info["category_id"] in crowd_labels_dict:  # plus on a crowd of its category
                intersection += gt_pred_map.get((crowd_labels_dict[pred_info["category_id"]], pred_label), 0)
            if intersection / pred_info["area"] > 0.5:
                continue
            stat(pred_info["category_id"])["fp"] += 1

    result = PQStat()
    result.per_category = stats
    return result.summary({cid: {"isthing": int(t)} for cid, t in kinds.items()})
