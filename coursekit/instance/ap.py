"""COCO-style average precision for boxes and masks, written out (our own ``COCOeval``).

Lecture: *Instance segmentation — evaluation*. For one category and one IoU
threshold ``t``, in four named steps:

1. ``match_image`` — per image, sort the detections by score and walk them greedily:
   each one takes the **unmatched** ground truth with the highest IoU ``>= t`` (a crowd
   region may take any number of detections, and a match to a crowd region or to an
   ignored ground truth is ignored: neither true nor false positive); a detection left
   unmatched is a false positive;
2. ``accumulate`` — pool the detections of all images, sort by score, and trace precision
   ``TP / (TP + FP)`` against recall ``TP / #GT`` (``#GT``: non-ignored ground truths);
3. ``precision_envelope`` — make precision non-increasing: ``p(r) = max_{r' >= r} p(r')``;
4. ``sample_at_recalls`` — read it at the 101 recalls ``0, 0.01, ..., 1`` (0 beyond the
   last recall reached)::

       AP_t = 1/101 Σ_{r ∈ {0, .01, …, 1}} p_interp(r)

AP = mean over the 10 thresholds ``t = 0.5, 0.55, …, 0.95`` and over the categories
(AP50, AP75: one threshold). IoU of masks: ``|d ∩ g| / |d ∪ g|``; with a crowd
region: ``|d ∩ g| / |d|``. Same numbers as pycocotools' ``COCOeval`` (maxDets 100,
optional area range), down to its precision and recall arrays; tested in
tests/instance/test_ap.py against pycocotools (``coco_eval.py``) and by hand.

The same AP scores **keypoints** (``iou_type="keypoints"``): only the similarity changes,
OKS in place of IoU, passed in as ``similarity`` (``coursekit.pose`` passes its ``oks``;
this package does not import it). As COCOeval does for keypoints, a ground truth without
any labelled keypoint is ignored, and a detection's area is that of its keypoints'
bounding box. Tested against pycocotools (``iouType="keypoints"``) in
tests/pose/test_keypoint_eval.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from coursekit.validators import describe, positive_int, require_bool, require_dim, shape_str

EPS = 2.220446049250313e-16  # np.spacing(1), as COCOeval
# at most this many mask pixels (masks × pixels) are converted to numbers at once
BUDGET = 1 << 22


def linspace(start: float, stop: float, num: int) -> list[float]:
    """``numpy.linspace(start, stop, num)`` bit for bit: ``i * step + start``, last = stop."""
    step = (stop - start) / (num - 1)
    return [i * step + start for i in range(num - 1)] + [stop]


IOU_THRESHOLDS = linspace(0.5, 0.95, 10)
RECALL_THRESHOLDS = linspace(0.0, 1.0, 101)
IOU_TYPES = ("segm", "bbox", "keypoints")

# (one image's prediction dict, its ground-truth dict with "area") -> Tensor[D, G]
Similarity = Callable[[dict[str, Tensor], dict[str, Tensor]], Tensor]


# ---- IoU -----------------------------------------------------------------------------------

def box_iou_xywh(dt: Tensor, gt: Tensor, iscrowd: Tensor) -> Tensor:
    """IoU Tensor[D, G] of xyxy boxes computed as COCO does: on (x, y, w, h) in float64.

    With a crowd ground truth: ``|d ∩ g| / |d|``. Same as ``pycocotools.mask.iou`` on boxes.
    """
    d = torch.cat([dt[:, :2], dt[:, 2:] - dt[:, :2]], 1).double()  # (D, 4) x, y, w, h
    g = torch.cat([gt[:, :2], gt[:, 2:] - gt[:, :2]], 1).double()  # (w, h in the input dtype)
    w = (torch.minimum(d[:, None, 0] + d[:, None, 2], g[None, :, 0] + g[None, :, 2])
         - torch.maximum(d[:, None, 0], g[None, :, 0])).clamp(min=0)
    h = (torch.minimum(d[:, None, 1] + d[:, None, 3], g[None, :, 1] + g[None, :, 3])
         - torch.maximum(d[:, None, 1], g[None, :, 1])).clamp(min=0)
    inter = w * h  # (D, G)
    area_d, area_g = d[:, 2] * d[:, 3], g[:, 2] * g[:, 3]
    union = torch.where(iscrowd[None, :], area_d[:, None],
                        area_d[:, None] + area_g[None, :] - inter)
    return torch.where(inter > 0, inter / union, torch.zeros_like(inter))


def mask_iou(dt: Tensor, gt: Tensor, iscrowd: Tensor) -> Tensor:
    """IoU Tensor[D, G] of bool masks Tensor[D, H, W], Tensor[G, H, W]; crowd: ``|d ∩ g| / |d|``.

    Pixel counts are exact (0/1 products summed in float32 blocks of at most ``2**24``
    pixels, added in float64), so the IoU is bit for bit pycocotools' ``mask.iou``.
    """
    require_bool(dt, "dt", "a bool Tensor[D, H, W]")
    require_bool(gt, "gt", "a bool Tensor[G, H, W]")
    d, g = dt.flatten(1), gt.flatten(1)  # (D, HW), (G, HW)
    exact = torch.float32 if d.device.type == "mps" else torch.float64  # MPS has no float64
    inter = torch.zeros(len(d), len(g), dtype=exact, device=d.device)
    area_d = torch.zeros(len(d), dtype=exact, device=d.device)
    area_g = torch.zeros(len(g), dtype=exact, device=d.device)
    step = min(max(1, BUDGET // max(len(d) + len(g), 1)), 1 << 24)  # pixels per block
    for start in range(0, d.shape[1], step):
        block = slice(start, start + step)
        db, gb = d[:, block].float(), g[:, block].float()  # 0/1, (D, b) and (G, b)
        inter += (db @ gb.T).to(exact)  # (D, G) exact counts
        area_d += db.sum(1).to(exact)  # counts below 2**24 are exact in float32
        area_g += gb.sum(1).to(exact)
    union = torch.where(iscrowd[None, :], area_d[:, None],
                        area_d[:, None] + area_g[None, :] - inter)
    return torch.where(union > 0, inter / union.clamp(min=1e-300), torch.zeros_like(inter))


# ---- step 1: match per image and category --------------------------------------------------

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


def evaluate_image(ious: list[list[float]], scores: list[float], gt_ignore: list[bool],
                   gt_crowd: list[bool], dt_outside: list[bool],
                   thresholds: Sequence[float] = IOU_THRESHOLDS) -> dict[str, Any]:
    """Step 1 for one image and category, at every IoU threshold.

    Args:
        ious: ``ious[d][g]``, detections sorted by score (best first, at most ``max_dets``),
            ground truths sorted non-ignored first.
        scores: the detections' scores, in that order.
        gt_ignore, gt_crowd: per ground truth (crowd, or outside the area range).
        dt_outside: per detection, its area is outside the area range (an unmatched
            detection there is ignored rather than a false positive).

    Returns:
        ``{"scores": [D], "matched": [T][D] bools, "ignored": [T][D] bools,
        "num_gt": non-ignored ground truths}`` — COCOeval's ``evaluateImg``.
    """
    matched, ignored = [], []
    if isinstance(dt_outside, Tensor):  # Python bools: iterating a tensor makes a tensor each
        dt_outside = dt_outside.tolist()
    for threshold in thresholds:
        m, i = match_image(ious, gt_ignore, gt_crowd, threshold)
        matched.append(m)
        ignored.append([ig or (not hit and out)
                        for ig, hit, out in zip(i, m, dt_outside, strict=True)])
    return {"scores": list(scores), "matched": matched, "ignored": ignored,
            "num_gt": sum(not g for g in gt_ignore)}


# ---- steps 2-4: accumulate, precision envelope, 101-point sampling -------------------------

def precision_envelope(precision: Tensor) -> Tensor:
    """Step 3: ``p(r) = max_{r' >= r} p(r')`` along the last dim (non-increasing)."""
    return precision.flip(-1).cummax(-1).values.flip(-1)


def sample_at_recalls(recall: Tensor, precision: Tensor,
                      recall_thresholds: Sequence[float] = RECALL_THRESHOLDS) -> Tensor:
    """Step 4: the precision at the first point whose recall is ``>= r``, for each ``r``.

    ``recall``, ``precision``: Tensor[..., D] (recall non-decreasing); returns
    Tensor[..., R], 0 where the recall ``r`` is never reached (COCOeval's ``q``).
    """
    thresholds = torch.tensor(list(recall_thresholds), dtype=recall.dtype, device=recall.device)
    thresholds = thresholds.expand(*recall.shape[:-1], -1).contiguous()  # (..., R)
    if recall.shape[-1] == 0:  # no detection: no recall is reached
        return torch.zeros_like(thresholds)
    index = torch.searchsorted(recall.contiguous(), thresholds, side="left")  # (..., R)
    padded = torch.cat([precision, precision.new_zeros(*precision.shape[:-1], 1)], -1)
    return padded.gather(-1, index)  # index D (not reached) reads the appended 0


def accumulate(results: list[dict[str, Any]],
               recall_thresholds: Sequence[float] = RECALL_THRESHOLDS) -> tuple[Tensor, Tensor]:
    """Step 2 (+ 3, 4) for one category: precision Tensor[T, R] and recall Tensor[T].

    ``results``: ``evaluate_image`` of every image (image order). Detections of all images
    are pooled and sorted by score (stable, as COCOeval's mergesort); ``TP``/``FP`` are
    cumulative counts, ignored detections count neither way. No ground truth: both ``-1``.
    """
    T, R = len(results[0]["matched"]) if results else len(IOU_THRESHOLDS), len(recall_thresholds)
    num_gt = sum(r["num_gt"] for r in results)
    if num_gt == 0:
        return torch.full((T, R), -1.0, dtype=torch.float64), torch.full((T,), -1.0,
                                                                        dtype=torch.float64)
    scores = torch.tensor([s for r in results for s in r["scores"]], dtype=torch.float64)
    matched = torch.tensor([[m for r in results for m in r["matched"][t]] for t in range(T)],
                           dtype=torch.bool).view(T, -1)  # (T, D)
    ignored = torch.tensor([[i for r in results for i in r["ignored"][t]] for t in range(T)],
                           dtype=torch.bool).view(T, -1)
    order = torch.sort(-scores, stable=True).indices  # best first, ties in image order
    matched, ignored = matched[:, order], ignored[:, order]
    tp_sum = (matched & ~ignored).double().cumsum(1)  # (T, D) true positives so far
    fp_sum = (~matched & ~ignored).double().cumsum(1)  # false positives so far
    recall = tp_sum / num_gt
    precision = tp_sum / (fp_sum + tp_sum + EPS)  # (T, D)
    # ignored detections leave the counts unchanged: their columns repeat the previous
    # point, which changes neither the envelope nor the first point reaching a recall
    read = sample_at_recalls(recall, precision_envelope(precision), recall_thresholds)  # (T, R)
    last = recall[:, -1] if recall.shape[1] else recall.new_zeros(T)
    return read, last


def average_precision(scores: Tensor, matched: Tensor, num_gt: int, ignored: Tensor | None = None,
                      recall_thresholds: Sequence[float] = RECALL_THRESHOLDS) -> float:
    """101-point interpolated AP of one category at one IoU threshold (steps 2-4).

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
    require_dim(scores, "scores", 1, "Tensor[D]")
    require_bool(matched, "matched", f"a bool Tensor[D] with D = {len(scores)} (one per score)")
    if matched.shape != scores.shape:
        raise ValueError(f"matched must be a bool Tensor[D] with D = {len(scores)} (one per "
                         f"score), got {shape_str(matched)}")
    if ignored is None:
        ignored = torch.zeros_like(matched)
    require_bool(ignored, "ignored", f"a bool Tensor[D] with D = {len(scores)} or None")
    if ignored.shape != scores.shape:
        raise ValueError(f"ignored must be a bool Tensor[D] with D = {len(scores)}, "
                         f"got {shape_str(ignored)}")
    if isinstance(num_gt, bool) or not isinstance(num_gt, int):
        raise TypeError(f"num_gt must be a positive int, got {num_gt!r}")
    if num_gt <= 0:
        raise ValueError(f"num_gt must be a positive int (AP is undefined without ground "
                         f"truth), got {num_gt!r}")
    result = {"scores": scores.double().cpu().tolist(), "matched": [matched.cpu().tolist()],
              "ignored": [ignored.cpu().tolist()], "num_gt": num_gt}
    precision, _ = accumulate([result], recall_thresholds)  # (1, R)
    return float(precision.mean())


# ---- the whole evaluation ------------------------------------------------------------------

def check_entries(entries: object, name: str, iou_type: str,
                  needs_scores: bool) -> list[dict[str, Tensor]]:
    """Raise unless ``entries`` is a list of per-image dicts with consistent tensors.

    Keys ``boxes`` Tensor[N, 4], ``labels`` Tensor[N], ``scores`` Tensor[N] (if
    ``needs_scores``), ``masks`` bool Tensor[N, H, W] (``iou_type == "segm"``; checked
    whenever present), ``keypoints`` Tensor[N, K, 3] (``iou_type == "keypoints"``; checked
    whenever present), optional ``iscrowd`` bool Tensor[N] and ``area`` Tensor[N].
    """
    if not isinstance(entries, (list, tuple)):
        raise TypeError(f"{name} must be a list with one dict per image, got {describe(entries)}")
    keys = ["boxes", "labels"] + (["scores"] if needs_scores else [])
    keys += {"segm": ["masks"], "keypoints": ["keypoints"]}.get(iou_type, [])
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or any(k not in entry for k in keys):
            got = sorted(entry) if isinstance(entry, dict) else describe(entry)
            raise ValueError(f"{name}[{i}] must be a dict with keys {keys}, got {got}")
        where = f"{name}[{i}]"
        labels = require_dim(entry["labels"], f"{where}['labels']", 1, "Tensor[N]")
        n = len(labels)
        boxes = require_dim(entry["boxes"], f"{where}['boxes']", 2, f"Tensor[N, 4] with N = {n}")
        if boxes.shape != (n, 4):
            raise ValueError(f"{where}['boxes'] must be Tensor[N, 4] with N = {n} (one per "
                             f"label), got {shape_str(boxes)}")
        for k in [k for k in ("scores", "masks", "keypoints", "iscrowd", "area") if k in entry]:
            want = {"masks": "Tensor[N, H, W]", "keypoints": "Tensor[N, K, 3]"}.get(k, "Tensor[N]")
            value = require_dim(entry[k], f"{where}['{k}']", 1 if want == "Tensor[N]" else 3,
                                f"{want} with N = {n}")
            if len(value) != n or (k == "keypoints" and value.shape[2] != 3):
                raise ValueError(f"{where}['{k}'] must be {want} with N = {n}, "
                                 f"got {shape_str(value)}")
            if k == "masks":  # a float mask would get a soft IoU here, truncated by pycocotools
                require_bool(value, f"{where}['masks']", f"a bool Tensor[N, H, W] with N = {n}")
            if k == "iscrowd":
                require_bool(value, f"{where}['iscrowd']", f"a bool Tensor[N] with N = {n}")
    return list(entries)  # type: ignore[arg-type]


def _image_inputs(pred: dict[str, Tensor], gt: dict[str, Tensor], iou_type: str,
                  lo: float, hi: float, similarity: Similarity | None = None) -> dict[str, list]:
    """One image's IoU (or OKS) matrix (all detections × all ground truths) and attributes."""
    pred_labels, gt_labels = pred["labels"].cpu(), gt["labels"].cpu()
    crowd = gt.get("iscrowd", torch.zeros(len(gt_labels), dtype=torch.bool)).cpu()
    gt_area = _gt_area(gt)
    ignore = crowd | (gt_area < lo) | (gt_area > hi)
    if iou_type == "keypoints":  # OKS; COCOeval ignores a person without labelled keypoints
        assert similarity is not None
        ious = _similarity_matrix(similarity, pred, {**gt, "area": gt_area})
        ignore |= ~(gt["keypoints"][..., 2] > 0).any(1).cpu()
        kp = pred["keypoints"].double().cpu()  # (D, K, 3)
        if kp.shape[1]:  # the keypoints' bounding box, as pycocotools' loadRes
            span = kp[..., :2].amax(1) - kp[..., :2].amin(1)  # (D, 2)
            dt_area = span[:, 0] * span[:, 1]
        else:
            dt_area = kp.new_zeros(len(kp))
    elif iou_type == "segm":
        dt_masks, gt_masks = pred["masks"].cpu(), gt["masks"].cpu()
        ious = mask_iou(dt_masks, gt_masks, crowd)
        dt_area = dt_masks.flatten(1).sum(1).double()
    else:
        boxes = pred["boxes"].cpu()
        ious = box_iou_xywh(boxes, gt["boxes"].cpu(), crowd)
        wh = (boxes[:, 2:] - boxes[:, :2]).double()  # COCO's bbox area: w * h
        dt_area = wh[:, 0] * wh[:, 1]
    return {"ious": ious.tolist(), "scores": pred["scores"].double().cpu().tolist(),
            "dt_labels": pred_labels.tolist(), "gt_labels": gt_labels.tolist(),
            "gt_crowd": crowd.tolist(), "gt_ignore": ignore.tolist(),
            "dt_outside": ((dt_area < lo) | (dt_area > hi)).tolist()}


def _gt_area(gt: dict[str, Tensor]) -> Tensor:
    """float64 Tensor[G]: ``area`` if given, else mask pixels, else box area (as COCO's json)."""
    if "area" in gt:
        return gt["area"].double().cpu()
    if "masks" in gt:
        return gt["masks"].flatten(1).sum(1).double().cpu()
    b = gt["boxes"].double().cpu()
    return (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])


def _similarity_matrix(similarity: Similarity, pred: dict[str, Tensor],
                       gt: dict[str, Tensor]) -> Tensor:
    """``similarity(pred, gt)`` checked to be a real Tensor[D, G] (float64 on the CPU)."""
    D, G = len(pred["labels"]), len(gt["labels"])
    if D == 0 or G == 0:
        return torch.zeros(D, G, dtype=torch.float64)
    out = similarity(pred, gt)
    if not isinstance(out, Tensor) or out.shape != (D, G):
        raise ValueError(f"similarity must return Tensor[D, G] = Tensor[{D}, {G}] (detections "
                         f"× ground truths), got {shape_str(out)}")
    return out.detach().double().cpu()


def _evaluate_category(image: dict[str, list], category: int,
                       max_dets: int) -> dict[str, Any] | None:
    """``evaluate_image`` for one category of one image (``None`` if it has neither kind)."""
    g = [j for j, c in enumerate(image["gt_labels"]) if c == category]
    d = [i for i, c in enumerate(image["dt_labels"]) if c == category]
    if not g and not d:
        return None
    g.sort(key=lambda j: image["gt_ignore"][j])  # non-ignored first (stable)
    d.sort(key=lambda i: -image["scores"][i])  # best first (stable)
    d = d[:max_dets]
    ious = [[image["ious"][i][j] for j in g] for i in d]
    return evaluate_image(ious, [image["scores"][i] for i in d],
                          [image["gt_ignore"][j] for j in g], [image["gt_crowd"][j] for j in g],
                          [image["dt_outside"][i] for i in d])


def evaluate_coco_style(predictions: list[dict[str, Tensor]],
                        ground_truths: list[dict[str, Tensor]], iou_type: str = "segm",
                        area_range: tuple[float, float] | None = None,
                        max_dets: int = 100,
                        similarity: Similarity | None = None) -> dict[str, Any]:
    """COCO AP, AP50 and AP75 of instance predictions, per the module docstring.

    Args:
        predictions: one dict per image: ``boxes`` Tensor[D, 4] xyxy, ``scores`` Tensor[D],
            ``labels`` int64 Tensor[D], and for ``"segm"`` ``masks`` bool Tensor[D, H, W].
        ground_truths: one dict per image: ``boxes`` Tensor[G, 4], ``labels`` Tensor[G],
            ``masks`` bool Tensor[G, H, W] (``"segm"``), optional ``iscrowd`` bool Tensor[G]
            and ``area`` Tensor[G] (default: mask pixels if masks are given, else box area).
        iou_type: ``"segm"`` (mask IoU), ``"bbox"``, or ``"keypoints"`` (``similarity``,
            OKS; both dicts then need ``keypoints`` Tensor[N, K, 3]).
        area_range: ``(min, max)`` area; ground truths outside are ignored, as are unmatched
            detections outside (COCO's "small/medium/large"); ``None``: all.
        max_dets: detections kept per image and category, best first (COCO uses 20 for
            keypoints).
        similarity: for ``"keypoints"`` only, and required there: ``similarity(pred, gt)``
            -> Tensor[D, G] for one image's dicts (``gt`` with its ``area`` filled in), e.g.
            ``coursekit.pose.keypoint_similarity`` (OKS).

    Returns:
        ``{"ap", "ap50", "ap75", "ap_per_category": {label: AP}, "categories": [K labels],
        "precision": Tensor[T, R, K], "recall": Tensor[T, K]}``: ``precision[t, r, k]`` is
        category ``categories[k]``'s interpolated precision at IoU threshold ``t`` and recall
        ``r`` (``-1`` for a category without non-ignored ground truth; AP numbers are ``-1``
        when no category has any), as COCOeval's ``eval["precision"]`` and ``eval["recall"]``
        for one area range and one ``max_dets``. Tested in tests/instance/test_ap.py.
    """
    valid_types = ("iou_type must be 'segm' or 'bbox', or 'keypoints' with similarity= an OKS "
                   "function (e.g. coursekit.pose.keypoint_similarity)")
    if iou_type not in IOU_TYPES or (iou_type == "keypoints" and similarity is None):
        missing = " without similarity" if iou_type == "keypoints" else ""
        raise ValueError(f"{valid_types}, got {iou_type!r}{missing}")
    if iou_type == "keypoints" and not callable(similarity):
        raise TypeError(f"similarity must be a function (pred, gt) -> Tensor[D, G], "
                        f"got {describe(similarity)}")
    if iou_type != "keypoints" and similarity is not None:
        raise ValueError(f"similarity is for iou_type='keypoints' only, got iou_type "
                         f"{iou_type!r}")
    predictions = check_entries(predictions, "predictions", iou_type, True)
    ground_truths = check_entries(ground_truths, "ground_truths", iou_type, False)
    if len(predictions) != len(ground_truths):
        raise ValueError(f"predictions and ground_truths need one entry per image, got "
                         f"{len(predictions)} and {len(ground_truths)}")
    max_dets = positive_int(max_dets, "max_dets")
    lo, hi = area_range if area_range is not None else (0.0, 1e10)
    categories = sorted({int(c) for gt in ground_truths for c in gt["labels"].tolist()})
    per_category: dict[int, list[dict[str, Any]]] = {c: [] for c in categories}
    for pred, gt in zip(predictions, ground_truths, strict=True):  # step 1, image by image
        image = _image_inputs(pred, gt, iou_type, lo, hi, similarity)
        for c in set(image["gt_labels"]) | (set(image["dt_labels"]) & set(categories)):
            result = _evaluate_category(image, c, max_dets)
            if result is not None:
                per_category[c].append(result)
    T, R = len(IOU_THRESHOLDS), len(RECALL_THRESHOLDS)
    precision = torch.full((T, R, len(categories)), -1.0, dtype=torch.float64)
    recall = torch.full((T, len(categories)), -1.0, dtype=torch.float64)
    for k, c in enumerate(categories):  # steps 2-4, category by category
        precision[:, :, k], recall[:, k] = accumulate(per_category[c])
    return {**summarize(precision, categories), "categories": categories,
            "precision": precision, "recall": recall}


def summarize(precision: Tensor, categories: list[int]) -> dict[str, Any]:
    """AP (all thresholds), AP50, AP75 and AP per category from precision Tensor[T, R, K].

    Means over the entries ``> -1``, as COCOeval's ``summarize``; ``-1`` if there are none.
    """
    def mean(p: Tensor) -> float:
        valid = p[p > -1]
        return float(valid.mean()) if valid.numel() else -1.0

    t50 = IOU_THRESHOLDS.index(0.5)
    t75 = min(range(len(IOU_THRESHOLDS)), key=lambda t: abs(IOU_THRESHOLDS[t] - 0.75))
    per_category = {c: mean(precision[:, :, k]) for k, c in enumerate(categories)}
    return {"ap": mean(precision), "ap50": mean(precision[t50]), "ap75": mean(precision[t75]),
            "ap_per_category": {c: v for c, v in per_category.items() if v > -1}}
