"""Graders for the panoptic exercises: PQ from matches, IoU matching of segments, panoptic fusion.

Each ``check_*(fn)`` calls the student's function on a few fixed cases, compares with
``coursekit.panoptic`` (itself tested against panopticapi and Detectron2), prints one
verdict line (✅ / ❌ with a hint) and returns whether it passed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from coursekit.exercises.verdict import report, run_student
from coursekit.panoptic.fusion import panoptic_fusion
from coursekit.validators import shape_str


def _as_floats(result: object) -> list[float] | None:
    try:
        values = [float(v) for v in result]  # type: ignore[union-attr]
    except (TypeError, ValueError):
        return None
    return values if len(values) == 3 else None


def _pq_sq_rq(ious: list[float], fp: int, fn: int) -> tuple[float, float, float]:
    tp = len(ious)
    denom = tp + 0.5 * fp + 0.5 * fn
    if denom == 0:
        return 0.0, 0.0, 0.0
    sq = sum(ious) / tp if tp else 0.0
    return sum(ious) / denom, sq, tp / denom


def check_panoptic_quality(fn: Callable) -> bool:
    """Grade ``fn(ious: Tensor[TP], num_fp: int, num_fn: int) -> (pq, sq, rq)`` for one category."""
    cases = [([0.8], 1, 1), ([0.9, 0.6, 0.75], 2, 0), ([1.0, 0.55], 0, 3), ([], 2, 1),
             ([0.7], 0, 0)]
    for ious, fp, fn_count in cases:
        expected = _pq_sq_rq(ious, fp, fn_count)
        result, error = run_student(fn, torch.tensor(ious, dtype=torch.float64), fp, fn_count)
        if error:
            return report(False, "panoptic_quality", error)
        values = _as_floats(result)
        if values is None:
            return report(False, f"return three numbers (pq, sq, rq), got {type(result).__name__}",
                          "return pq, sq, rq as a tuple of floats")
        if all(math.isclose(v, e, abs_tol=1e-6) for v, e in zip(values, expected, strict=True)):
            continue
        what = f"wrong (pq, sq, rq) for {len(ious)} TP, {fp} FP, {fn_count} FN"
        tp = len(ious)
        if not ious and any(math.isnan(v) for v in values):
            hint = "with no TP, SQ is 0 (and so is PQ): don't divide by TP = 0"
        elif (tp + fp + fn_count
              and math.isclose(values[2], tp / (tp + fp + fn_count), abs_tol=1e-6)
              and (fp or fn_count)):
            hint = "RQ = TP / (TP + FP/2 + FN/2): each FP and FN counts one half, like an F1 score"
        elif tp and math.isclose(values[1], sum(ious), abs_tol=1e-6) and tp > 1:
            hint = "SQ is the mean IoU of the matches: divide the sum by TP"
        elif math.isclose(values[0], expected[1] + expected[2], abs_tol=1e-6) or not math.isclose(
                values[0], values[1] * values[2], abs_tol=1e-6):
            hint = "PQ = SQ × RQ = sum of IoUs / (TP + FP/2 + FN/2)"
        else:
            hint = "SQ = sum(ious) / TP, RQ = TP / (TP + FP/2 + FN/2), PQ = SQ * RQ"
        return report(False, what, hint)
    return report(True, "panoptic_quality: PQ = SQ × RQ on every case")


def _match_reference(
    pred_ids: Tensor,
    pred_segments: list[dict],
    gt_ids: Tensor,
    gt_segments: list[dict],
    threshold: float = 0.5,
    same_category: bool = True,
) -> dict[tuple[int, int], float]:
    out = {}
    for g in gt_segments:
        for p in pred_segments:
            if same_category and g["category_id"] != p["category_id"]:
                continue
            gm, pm = gt_ids == g["id"], pred_ids == p["id"]
            inter, union = int((gm & pm).sum()), int((gm | pm).sum())
            if union and inter / union > threshold:
                out[(g["id"], p["id"])] = inter / union
    return out


def _match_cases() -> list[tuple]:
    gt = torch.tensor([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 3], [3, 3, 3, 3]])
    pred = torch.tensor([[5, 5, 5, 6], [5, 5, 6, 6], [7, 7, 7, 6], [7, 7, 7, 7]])
    gt_seg = [{"id": 1, "category_id": 4}, {"id": 2, "category_id": 5}, {"id": 3, "category_id": 0}]
    pred_seg = [{"id": 5, "category_id": 4}, {"id": 6, "category_id": 5},
                {"id": 7, "category_id": 0}]
    # gt 1 / pred 5: 4 / 5 = 0.8; gt 2 / pred 6: 3 / 5 = 0.6; gt 3 / pred 7: 7 / 8 = 0.875
    g = torch.Generator().manual_seed(6)
    gt2 = torch.randint(1, 4, (4, 5), generator=g)
    gt2 = gt2.repeat_interleave(3, 0).repeat_interleave(3, 1)  # (12, 15) blocks
    pred2 = gt2.roll(1, 1)  # shifted by one pixel
    pred2[:, :2] = 9  # a new segment on the left
    gt2_seg = [{"id": i, "category_id": [0, 4, 5][i - 1]}
               for i in sorted(set(gt2.flatten().tolist()))]
    pred2_seg = [{"id": i, "category_id": 6 if i == 9 else [0, 4, 5][i - 1]}
                 for i in sorted(set(pred2.flatten().tolist()))]
    half = torch.tensor([[1, 1, 2, 2]])  # IoU exactly 0.5: no match
    return [(pred, pred_seg, gt, gt_seg), (pred2, pred2_seg, gt2, gt2_seg),
            (torch.tensor([[1, 1, 1, 1]]), [{"id": 1, "category_id": 4}], half,
             [{"id": 1, "category_id": 4}, {"id": 2, "category_id": 0}]),
            (torch.tensor([[1, 1, 1, 2]]),
             [{"id": 1, "category_id": 5}, {"id": 2, "category_id": 0}], half,
             [{"id": 1, "category_id": 4}, {"id": 2, "category_id": 0}])]


def check_match_segments(fn: Callable) -> bool:
    """Grade ``fn(pred_ids, pred_segments, gt_ids, gt_segments) -> {(gt_id, pred_id): iou}``.

    The result holds the matches.
    """
    for pred, pred_seg, gt, gt_seg in _match_cases():
        expected = _match_reference(pred, pred_seg, gt, gt_seg)
        result, error = run_student(fn, pred.clone(), [dict(s) for s in pred_seg], gt.clone(),
                                    [dict(s) for s in gt_seg])
        if error:
            return report(False, "match_segments", error)
        if not isinstance(result, dict):
            return report(False, "return a dict {(gt_id, pred_id): iou}, "
                                 f"got {type(result).__name__}",
                          "one entry per matched pair, keyed by the two segment ids")
        try:
            got = {(int(k[0]), int(k[1])): float(v) for k, v in result.items()}
        except (TypeError, ValueError, IndexError):
            return report(False, "the keys must be (gt_id, pred_id) pairs and the values IoUs",
                          "e.g. {(1, 5): 0.8}")
        if got.keys() == expected.keys() and all(
            math.isclose(got[k], v, abs_tol=1e-6) for k, v in expected.items()
        ):
            continue
        any_category = _match_reference(pred, pred_seg, gt, gt_seg, same_category=False)
        if got.keys() == any_category.keys() != expected.keys():
            hint = "a match needs the same category_id on both sides"
        elif got.keys() == {k for k, v in _match_reference(pred, pred_seg, gt, gt_seg,
                                                           0.4999).items()
                            if v >= 0.5} != expected.keys():
            hint = "the rule is IoU > 0.5, strictly: IoU = 0.5 is not a match"
        elif got.keys() == expected.keys():
            hint = ("IoU = |pred ∩ gt| / |pred ∪ gt|, counted in pixels of the masks "
                    "pred_ids == p and gt_ids == g")
        else:
            hint = ("for every gt segment g and predicted segment p of the same category, IoU of "
                    "the masks "
                    "gt_ids == g and pred_ids == p; keep the pairs with IoU > 0.5")
        return report(False, f"match_segments finds the wrong matches ({len(got)} found, "
                             f"{len(expected)} expected)",
                      hint)
    return report(True, "match_segments finds every match with IoU > 0.5 in the same category")


def _fusion_cases() -> list[tuple[dict, Tensor]]:
    g = torch.Generator().manual_seed(11)
    cases = []
    for D in (5, 7):
        masks = torch.zeros(D, 24, 24, dtype=torch.bool)
        for k in range(D):
            y, x = (int(v) for v in torch.randint(0, 16, (2,), generator=g))
            h, w = (int(v) for v in torch.randint(3, 12, (2,), generator=g))
            masks[k, y:y + h, x:x + w] = True
        scores = torch.rand(D, generator=g)
        labels = torch.randint(4, 8, (D,), generator=g)
        classes = torch.tensor([0, 1, 2, 4, 5, 6, 7])[torch.randint(0, 7, (6, 6), generator=g)]
        # (24, 24) blocks, no wall
        semantic = classes.repeat_interleave(4, 0).repeat_interleave(4, 1)
        # a few scattered wall pixels: a small region
        semantic[torch.rand(24, 24, generator=g) < 0.015] = 3
        cases.append(({"scores": scores, "labels": labels, "masks": masks}, semantic))
    return cases


def check_panoptic_fusion(fn: Callable) -> bool:
    """Grade ``fn(instances, semantic_labels) -> (ids Tensor[H, W], segments)``.

    With the default thresholds (overlap 0.5, stuff area 16, score 0.5, things 4..7).
    """
    for instances, semantic in _fusion_cases():
        ids, segments = panoptic_fusion(instances, semantic)
        result, error = run_student(fn, {k: v.clone() for k, v in instances.items()},
                                    semantic.clone())
        if error:
            return report(False, "panoptic_fusion", error)
        if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[0], Tensor):
            return report(False, f"return (ids, segments), got {type(result).__name__}",
                          "a Tensor[H, W] of segment ids and the list of segment dicts")
        got_ids, got_segments = result
        if got_ids.shape != ids.shape:
            return report(False, f"ids should be {shape_str(ids)}, got {shape_str(got_ids)}")
        try:
            got = [(int(s["id"]), int(s["category_id"])) for s in got_segments]
        except (TypeError, KeyError, ValueError):
            return report(False, "each segment must be a dict with 'id' and 'category_id'")
        same_segments = got == [(s["id"], s["category_id"]) for s in segments]
        if torch.equal(got_ids.long().cpu(), ids) and same_segments:
            continue

        def variant(instances=instances, semantic=semantic, **kw):
            return panoptic_fusion(instances, semantic, **kw)[0]

        if torch.equal(got_ids.long().cpu(), variant(overlap_threshold=1.0)):
            hint = ("drop an instance when more than half (overlap_threshold) of its mask is "
                    "already taken")
        elif torch.equal(got_ids.long().cpu(), variant(score_threshold=0.0)):
            hint = "skip instances whose score is below 0.5"
        elif torch.equal(got_ids.long().cpu(), variant(stuff_area_threshold=0)):
            hint = "a stuff region with fewer than 16 free pixels is left void (id 0)"
        elif torch.equal(got_ids.long().cpu(), variant(thing_ids=())):
            hint = ("take only stuff classes (0-3) from the semantic map: things come from the "
                    "instances")
        else:
            hint = ("paste instances by decreasing score, each only on pixels still free; then "
                    "give each stuff "
                    "class's free pixels one new segment; number segments 1, 2, ... in that order")
        return report(False, "panoptic_fusion gives a different panoptic map", hint)
    return report(True, "panoptic_fusion matches Detectron2's fusion on every case")
