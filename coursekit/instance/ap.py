"""COCO-style average precision for boxes and masks, written out (our own ``COCOeval``).

Lecture: *Instance segmentation — evaluation*. For one category and one IoU
threshold ``t``:

1. per image, sort the detections by score and walk them greedily: each one takes
   the **unmatched** ground truth with the highest IoU ``>= t`` (a crowd region may
   take any number of detections, and a match to a crowd region or to an ignored
   ground truth is ignored: neither true nor false positive); a detection left
   unmatched is a false positive;
2. pool the detections of all images, sort by score, and trace precision
   ``TP / (TP + FP)`` against recall ``TP / #GT`` (``#GT``: non-ignored ground truths);
3. make precision non-increasing (``p(r) = max_{r' >= r} p(r')``) and read it at the
   101 recalls ``0, 0.01, ..., 1`` (0 beyond the last recall reached)::

       AP_t = 1/101 Σ_{r ∈ {0, .01, …, 1}} p_interp(r)

AP = mean over the 10 thresholds ``t = 0.5, 0.55, …, 0.95`` and over the categories
(AP50, AP75: one threshold). IoU of masks: ``|d ∩ g| / |d ∪ g|``; with a crowd
region: ``|d ∩ g| / |d|``. Same numbers as pycocotools' ``COCOeval`` (maxDets 100,
optional area range); tested in tests/instance/test_ap.py against pycocotools
(``coco_eval.py``) and by hand.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from coursekit.detection.boxes import shape_str

EPS = 2.220446049250313e-16  # np.spacing(1), as COCOeval


def linspace(start: float, stop: float, num: int) -> list[float]:
    """``numpy.linspace(start, stop, num)`` bit for bit: ``i * ((stop - start) / (num - 1)) + start``, last = stop."""
    step = (stop - start) / (num - 1)
    return [i * step + start for i in range(num - 1)] + [stop]


IOU_THRESHOLDS = linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = linspace(0.0, 1.0, 101)


def average_precision(scores: Tensor, matched: Tensor, num_gt: int, ignored: Tensor | None = None,
                      recall_thresholds: Sequence[float] = RECALL_THRESHOLDS) -> float:
    """101-point interpolated AP of one category at one IoU threshold.

    Args:
        scores: Tensor[D], the detections' scores (all images pooled).
        matched: bool Tensor[D], whether each detection is a true positive.
        num_gt: number of (non-ignored) ground truths, ``> 0``.
        ignored: optional bool Tensor[D], detections that count neither way.
        recall_thresholds: where precision is read (COCO: 101 points).

    Returns:
        ``mean_r p_interp(r)`` (module docstring). Same as one ``(t, k)`` slice of
        ``COCOeval.accumulate``'s precision array, averaged.
    """
    if not isinstance(scores, Tensor) or scores.dim() != 1:
        raise ValueError(f"scores must be Tensor[D], got {shape_str(scores) if isinstance(scores, Tensor) else type(scores).__name__}")
    if not isinstance(matched, Tensor) or matched.shape != scores.shape:
        got = shape_str(matched) if isinstance(matched, Tensor) else type(matched).__name__
        raise ValueError(f"matched must be a bool Tensor[D] with D = {len(scores)} (one per score), got {got}")
    if isinstance(num_gt, bool) or not isinstance(num_gt, int) or num_gt <= 0:
        raise ValueError(f"num_gt must be a positive int (AP is undefined without ground truth), got {num_gt!r}")
    keep = torch.ones_like(matched, dtype=torch.bool) if ignored is None else ~ignored.bool()
    order = torch.sort(scores.double(), descending=True, stable=True).indices
    tp = matched.bool()[order][keep[order]].double()  # (D',) in score order, ignored ones dropped
    tp_sum, fp_sum = torch.cumsum(tp, 0), torch.cumsum(1 - tp, 0)
    recall = tp_sum / num_gt
    precision = tp_sum / (fp_sum + tp_sum + EPS)
    precision = precision.flip(0).cummax(0).values.flip(0)  # p(r) = max over recalls >= r
    thresholds = torch.tensor(list(recall_thresholds), dtype=torch.float64, device=recall.device)
    idx = torch.searchsorted(recall, thresholds, side="left")  # first point with recall >= r
    read = torch.zeros_like(thresholds)  # recalls never reached read precision 0
    reached = idx < len(precision)
    read[reached] = precision[idx[reached]]
    return float(read.mean())


def box_iou_xywh(dt: Tensor, gt: Tensor, iscrowd: Tensor) -> Tensor:
    """IoU Tensor[D, G] of xyxy boxes computed as COCO does, on (x, y, w, h) in float64; crowd: ``|d ∩ g| / |d|``."""
    d = torch.cat([dt[:, :2], dt[:, 2:] - dt[:, :2]], 1).double()  # (D, 4) x, y, w, h (w in the input dtype)
    g = torch.cat([gt[:, :2], gt[:, 2:] - gt[:, :2]], 1).double()
    w = (torch.minimum(d[:, None, 0] + d[:, None, 2], g[None, :, 0] + g[None, :, 2])
         - torch.maximum(d[:, None, 0], g[None, :, 0])).clamp(min=0)
    h = (torch.minimum(d[:, None, 1] + d[:, None, 3], g[None, :, 1] + g[None, :, 3])
         - torch.maximum(d[:, None, 1], g[None, :, 1])).clamp(min=0)
    inter = w * h  # (D, G)
    area_d, area_g = d[:, 2] * d[:, 3], g[:, 2] * g[:, 3]
    union = torch.where(iscrowd[None, :], area_d[:, None], area_d[:, None] + area_g[None, :] - inter)
    return torch.where(inter > 0, inter / union, torch.zeros_like(inter))


def mask_iou(dt: Tensor, gt: Tensor, iscrowd: Tensor) -> Tensor:
    """IoU Tensor[D, G] of binary masks Tensor[D, H, W], Tensor[G, H, W]; crowd: ``|d ∩ g| / |d|``."""
    d, g = dt.flatten(1).double(), gt.flatten(1).double()  # (D, HW), (G, HW) of 0/1
    inter = d @ g.T  # (D, G) pixel counts, exact in float64
    area_d, area_g = d.sum(1), g.sum(1)
    union = torch.where(iscrowd[None, :], area_d[:, None], area_d[:, None] + area_g[None, :] - inter)
    return torch.where(union > 0, inter / union.clamp(min=1e-300), torch.zeros_like(inter))


def match_image(ious: list[list[float]], gt_ignore: list[bool], gt_crowd: list[bool],
                threshold: float) -> tuple[list[bool], list[bool]]:
    """Greedy COCO matching in one image and category; returns (matched, ignored) per detection.

    ``ious[d][g]`` with detections sorted by score and ground truths sorted non-ignored
    first. A detection takes the best-IoU available ground truth (``>= threshold``),
    preferring non-ignored ones; crowd ground truths can be taken many times.
    """
    taken = [False] * len(gt_ignore)
    matched, ignored = [], []
    for row in ious:
        best, m = min(threshold, 1 - 1e-10), -1
        for g, iou in enumerate(row):
            if taken[g] and not gt_crowd[g]:
                continue
            if m > -1 and not gt_ignore[m] and gt_ignore[g]:
                break  # the ignored ground truths come last: keep the real match
            if iou < best:
                continue
            best, m = iou, g
        if m == -1:
            matched.append(False)
            ignored.append(False)
        else:
            taken[m] = True
            matched.append(True)
            ignored.append(gt_ignore[m])
    return matched, ignored


def _check_entries(entries: object, name: str, iou_type: str, needs_scores: bool) -> list[dict[str, Tensor]]:
    if not isinstance(entries, (list, tuple)):
        raise TypeError(f"{name} must be a list with one dict per image, got {type(entries).__name__}")
    keys = ["boxes", "labels"] + (["scores"] if needs_scores else []) + (["masks"] if iou_type == "segm" else [])
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or any(k not in entry for k in keys):
            raise ValueError(f"{name}[{i}] must be a dict with keys {keys}, got "
                             f"{sorted(entry) if isinstance(entry, dict) else type(entry).__name__}")
        n = len(entry["labels"])
        if not isinstance(entry["boxes"], Tensor) or entry["boxes"].shape != (n, 4):
            raise ValueError(f"{name}[{i}]['boxes'] must be Tensor[N, 4] with N = {n} (one per label), got "
                             f"{shape_str(entry['boxes']) if isinstance(entry['boxes'], Tensor) else type(entry['boxes']).__name__}")
        for k in keys[2:] + [k for k in ("iscrowd", "area") if k in entry]:
            if not isinstance(entry[k], Tensor) or len(entry[k]) != n or (k == "masks" and entry[k].dim() != 3):
                want = "Tensor[N, H, W]" if k == "masks" else "Tensor[N]"
                got = shape_str(entry[k]) if isinstance(entry[k], Tensor) else type(entry[k]).__name__
                raise ValueError(f"{name}[{i}]['{k}'] must be {want} with N = {n}, got {got}")
    return list(entries)  # type: ignore[arg-type]


def evaluate_coco_style(predictions: list[dict[str, Tensor]], ground_truths: list[dict[str, Tensor]],
                        iou_type: str = "segm", area_range: tuple[float, float] | None = None,
                        max_dets: int = 100) -> dict[str, float | dict[int, float]]:
    """COCO AP, AP50 and AP75 of instance predictions, per the module docstring.

    Args:
        predictions: one dict per image: ``boxes`` Tensor[D, 4] xyxy, ``scores`` Tensor[D],
            ``labels`` int64 Tensor[D], and for ``"segm"`` ``masks`` bool Tensor[D, H, W].
        ground_truths: one dict per image: ``boxes`` Tensor[G, 4], ``labels`` Tensor[G],
            ``masks`` Tensor[G, H, W] (``"segm"``), optional ``iscrowd`` bool Tensor[G] and
            ``area`` Tensor[G] (default: mask pixels if masks are given, else box area).
        iou_type: ``"segm"`` (mask IoU) or ``"bbox"``.
        area_range: ``(min, max)`` area; ground truths outside are ignored, as are unmatched
            detections outside (COCO's "small/medium/large"); ``None``: all.
        max_dets: detections kept per image and category, best first.

    Returns:
        ``{"ap", "ap50", "ap75", "ap_per_category": {label: AP}}`` (``-1`` when no category has
        ground truth, as COCOeval). Equal to pycocotools' ``COCOeval`` stats; tested in
        tests/instance/test_ap.py.
    """
    if iou_type not in ("segm", "bbox"):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', got {iou_type!r}")
    predictions = _check_entries(predictions, "predictions", iou_type, True)
    ground_truths = _check_entries(ground_truths, "ground_truths", iou_type, False)
    if len(predictions) != len(ground_truths):
        raise ValueError(f"predictions and ground_truths need one entry per image, got {len(predictions)} and {len(ground_truths)}")
    lo, hi = area_range if area_range is not None else (0.0, 1e10)
    T = len(IOU_THRESHOLDS)
    categories = sorted({int(c) for gt in ground_truths for c in gt["labels"].tolist()})
    pooled = {c: {"scores": [], "matched": [[] for _ in range(T)], "ignored": [[] for _ in range(T)], "num_gt": 0}
              for c in categories}
    for pred, gt in zip(predictions, ground_truths):
        crowd_all = gt.get("iscrowd", torch.zeros(len(gt["labels"]), dtype=torch.bool)).bool().cpu()
        if "area" in gt:
            area_all = gt["area"].double().cpu()
        elif iou_type == "segm" or "masks" in gt:
            area_all = gt["masks"].flatten(1).sum(1).double().cpu()
        else:
            area_all = ((gt["boxes"][:, 2] - gt["boxes"][:, 0]) * (gt["boxes"][:, 3] - gt["boxes"][:, 1])).double().cpu()
        for c in categories:
            g = torch.where(gt["labels"].cpu() == c)[0]
            d = torch.where(pred["labels"].cpu() == c)[0]
            if len(g) == 0 and len(d) == 0:
                continue
            ignore = crowd_all[g] | (area_all[g] < lo) | (area_all[g] > hi)
            g = g[torch.sort(ignore.long(), stable=True).indices]  # non-ignored ground truths first
            ignore, crowd = crowd_all[g] | (area_all[g] < lo) | (area_all[g] > hi), crowd_all[g]
            d = d[torch.sort(-pred["scores"][d].double().cpu(), stable=True).indices][:max_dets]  # best first
            if iou_type == "segm":
                ious = mask_iou(pred["masks"][d].cpu(), gt["masks"][g].cpu(), crowd)
                dt_area = pred["masks"][d].flatten(1).sum(1).double().cpu()
            else:
                ious = box_iou_xywh(pred["boxes"][d].cpu(), gt["boxes"][g].cpu(), crowd)
                wh = (pred["boxes"][d, 2:] - pred["boxes"][d, :2]).double().cpu()
                dt_area = wh[:, 0] * wh[:, 1]
            outside = ((dt_area < lo) | (dt_area > hi)).tolist()
            rows, ig, cr = ious.tolist(), ignore.tolist(), crowd.tolist()
            entry = pooled[c]
            entry["scores"].append(pred["scores"][d].double().cpu())
            entry["num_gt"] += int((~ignore).sum())
            for t, threshold in enumerate(IOU_THRESHOLDS):
                matched, ignored = match_image(rows, ig, cr, threshold)
                entry["matched"][t] += matched
                entry["ignored"][t] += [i or (not m and o) for i, m, o in zip(ignored, matched, outside)]
    per_category: dict[int, list[float]] = {}
    for c, entry in pooled.items():
        if entry["num_gt"] == 0:
            continue  # COCO skips a category without (non-ignored) ground truth
        scores = torch.cat(entry["scores"]) if entry["scores"] else torch.zeros(0, dtype=torch.float64)
        per_category[c] = [average_precision(scores, torch.tensor(entry["matched"][t], dtype=torch.bool),
                                             entry["num_gt"], torch.tensor(entry["ignored"][t], dtype=torch.bool))
                           for t in range(T)]
    if not per_category:
        return {"ap": -1.0, "ap50": -1.0, "ap75": -1.0, "ap_per_category": {}}
    table = torch.tensor(list(per_category.values()), dtype=torch.float64)  # (K, T)
    return {"ap": float(table.mean()), "ap50": float(table[:, 0].mean()), "ap75": float(table[:, 5].mean()),
            "ap_per_category": {c: sum(v) / T for c, v in per_category.items()}}
