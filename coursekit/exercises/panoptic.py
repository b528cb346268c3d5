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
        unpacked = _unpack_answer(result, ids)
        if isinstance(unpacked, bool):
            return unpacked
        got_ids, got = unpacked
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


# ---- merged objects: what PQ does to a segment that covers several objects -------------------

def _merged_reference(areas: list[float]) -> tuple[float, float, float]:
    """One predicted segment exactly covering the union of ``areas`` (disjoint objects)."""
    total, best = sum(areas), max(areas)
    if best / total > 0.5:  # matches the largest object only; the others are FN
        return _pq_sq_rq([best / total], 0, len(areas) - 1)
    return _pq_sq_rq([], 1, len(areas))  # matches nothing: one FP, every object an FN


MERGED_CASES = [[100], [100, 100], [300, 100], [50, 30, 20], [60, 25, 15], [10, 10, 10, 10],
                [90, 10]]


def check_merged_pq(fn: Callable) -> bool:
    """Grade ``fn(areas: Tensor[N]) -> (pq, sq, rq)``: N disjoint objects of one category, one
    predicted segment that covers exactly their union, nothing else predicted."""
    for areas in MERGED_CASES:
        expected = _merged_reference(areas)
        result, error = run_student(fn, torch.tensor(areas, dtype=torch.float64))
        if error:
            return report(False, "merged_pq", error)
        values = _as_floats(result)
        if values is None:
            return report(False, f"return three numbers (pq, sq, rq), got {type(result).__name__}",
                          "return pq, sq, rq as a tuple of floats")
        if all(math.isclose(v, e, abs_tol=1e-6) for v, e in zip(values, expected, strict=True)):
            continue
        total, best, n = sum(areas), max(areas), len(areas)
        what = (f"wrong (pq, sq, rq) for objects of {areas} pixels: got "
                f"({values[0]:.4f}, {values[1]:.4f}, {values[2]:.4f})")
        if best / total == 0.5 and values[0] > 0:
            hint = "a match needs IoU > 0.5, strictly: exactly half is not a match"
        elif best / total > 0.5 and math.isclose(values[1], 1.0, abs_tol=1e-6) and n > 1:
            hint = ("the merged segment is larger than any one object: its IoU with an object "
                    "is that object's area over the union's area")
        elif best / total > 0.5 and math.isclose(values[0], values[1], abs_tol=1e-6) and n > 1:
            hint = "only one object can be matched: every other object is a false negative"
        elif best / total > 0.5 and math.isclose(values[2], 1 / (1 + 0.5 * n), abs_tol=1e-6):
            hint = "the matched object is a TP, not also an FN: FN = N - 1"
        elif best / total <= 0.5 and values[0] > 0:
            hint = ("with IoU <= 0.5 for every object the merged segment matches nothing: "
                    "no TP, so PQ = SQ = RQ = 0")
        else:
            hint = ("find which object (if any) the merged segment matches with IoU > 0.5, then "
                    "count TP, FP, FN as for any category")
        return report(False, what, hint)
    return report(True, "merged_pq: one segment for N objects matches at most one of them")


# ---- semantic map + connected components: a panoptic baseline ---------------------------------

THING_IDS = (4, 5, 6, 7)
STUFF_IDS = (0, 1, 2, 3)


def components_reference(semantic: Tensor, connectivity: int = 8,
                         stuff_area_threshold: int = 16) -> tuple[Tensor, list[dict]]:
    """Semantic map Tensor[H, W] -> (ids, segments): one segment per connected component of
    each thing class (``connectivity`` 8: pixels touching at an edge or a corner; 4: at an
    edge), one per stuff class with at least ``stuff_area_threshold`` pixels; rest void."""
    from scipy import ndimage

    structure = None if connectivity == 4 else [[1, 1, 1], [1, 1, 1], [1, 1, 1]]
    labels = semantic.cpu().numpy()
    ids = torch.zeros(semantic.shape, dtype=torch.int64)
    segments: list[dict] = []
    for c in THING_IDS:
        components, n = ndimage.label(labels == c, structure=structure)
        components = torch.from_numpy(components).long()
        for j in range(1, n + 1):
            segments.append({"id": len(segments) + 1, "category_id": c})
            ids[components == j] = len(segments)
    for c in STUFF_IDS:
        region = torch.from_numpy(labels == c)
        if int(region.sum()) >= stuff_area_threshold:
            segments.append({"id": len(segments) + 1, "category_id": c})
            ids[region] = len(segments)
    return ids, segments


def _same_partition(got_ids: Tensor, got_cat: dict[int, int], ids: Tensor,
                    cat: dict[int, int]) -> bool:
    """Same segments (pixel sets) with the same categories, whatever the ids; void is id 0."""
    if not torch.equal(got_ids == 0, ids == 0):
        return False
    pairs = torch.stack([got_ids[ids > 0], ids[ids > 0]], 1).unique(dim=0)  # (S, 2)
    if len(pairs) != len(pairs[:, 0].unique()) or len(pairs) != len(pairs[:, 1].unique()):
        return False
    return all(got_cat.get(int(g)) == cat[int(r)] for g, r in pairs.tolist())


def _component_cases() -> list[Tensor]:
    # two circles touching at an edge, two squares touching only at a corner, a wall speck,
    # a one-pixel-wide person line (diagonal), sky and grass
    a = torch.zeros(12, 12, dtype=torch.int64)  # sky
    a[6:] = 1  # grass
    a[1:4, 1:3], a[1:4, 3:5] = 4, 4  # circles side by side: one component
    a[7:9, 1:3], a[9:11, 3:5] = 5, 5  # squares meeting at a corner
    a[0, 11] = 3  # a single wall pixel: below the stuff area threshold
    for k in range(4):
        a[2 + k, 7 + k] = 7  # a diagonal limb
    a[8:10, 8:10] = 6
    g = torch.Generator().manual_seed(9)
    b = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])[torch.randint(0, 8, (8, 8), generator=g)]
    b = b.repeat_interleave(2, 0).repeat_interleave(3, 1)  # (16, 24) blocks
    b[torch.rand(16, 24, generator=g) < 0.08] = 6  # scattered triangle pixels
    return [a, b]


def check_components(fn: Callable) -> bool:
    """Grade ``fn(semantic: Tensor[H, W]) -> (ids Tensor[H, W], segments)``: the
    8-connected components of each thing class, one segment per stuff class (>= 16 pixels)."""
    for semantic in _component_cases():
        ids, segments = components_reference(semantic)
        result, error = run_student(fn, semantic.clone())
        if error:
            return report(False, "semantic map + connected components", error)
        unpacked = _unpack_answer(result, ids)
        if isinstance(unpacked, bool):
            return unpacked
        got_ids, pairs = unpacked
        got_cat = dict(pairs)
        got_ids = got_ids.long().cpu()
        cat = {s["id"]: s["category_id"] for s in segments}
        if _same_partition(got_ids, got_cat, ids, cat):
            continue

        def same_as(semantic=semantic, got_ids=got_ids, got_cat=got_cat, **kw) -> bool:
            ref, ref_segments = components_reference(semantic, **kw)
            return _same_partition(got_ids, got_cat, ref,
                                   {s["id"]: s["category_id"] for s in ref_segments})

        things = sum(1 for c in got_cat.values() if c in THING_IDS)
        if same_as(connectivity=4):
            hint = ("pixels that touch only at a corner belong to one component too "
                    "(8-connectivity): a thin diagonal limb must not fall apart")
        elif same_as(stuff_area_threshold=0):
            hint = "a stuff class with fewer than 16 pixels is left void (id 0)"
        elif things == len({int(c) for c in semantic.unique()} & set(THING_IDS)):
            hint = ("one segment per thing class merges every object of that class: split each "
                    "thing class into its connected components")
        else:
            hint = ("for each thing class label the connected components of its mask (e.g. "
                    "scipy.ndimage.label), one segment each; one segment per stuff class")
        return report(False, f"the segments differ from the connected components "
                             f"({len(got_cat)} segments, {len(segments)} expected)", hint)
    return report(True, "components: one segment per connected component of each thing class")


def check_components_prediction(fn: Callable, fusion: dict, components: dict) -> bool:
    """Compare a prediction ``fn() -> {"higher": "fusion" | "components", "loses_on": "SQ" |
    "RQ", "class": a thing category name}`` with the measured Things PQ of the two answers
    (``panoptic_quality`` results): which is higher, on which of SQ / RQ the components
    baseline is lower, and the thing class whose PQ drops most from fusion to components."""
    from coursekit.data.shapesworld import CATEGORIES

    prediction, error = run_student(fn)
    if error:
        return report(False, "prediction", error)
    if not isinstance(prediction, dict) or not {"higher", "loses_on", "class"} <= set(prediction):
        return report(False, "prediction must be a dict with the keys 'higher', 'loses_on', "
                             "'class'", "e.g. {'higher': ..., 'loses_on': ..., 'class': ...}")
    name = {c["id"]: c["name"] for c in CATEGORIES}
    f, c = fusion["Things"], components["Things"]
    higher = "fusion" if f["pq"] >= c["pq"] else "components"
    loses_on = "RQ" if c["rq"] - f["rq"] < c["sq"] - f["sq"] else "SQ"
    drop = {name[k]: fusion["per_class"][k]["pq"] - components["per_class"][k]["pq"]
            for k in THING_IDS if k in fusion["per_class"] and k in components["per_class"]}
    worst = max(drop, key=drop.get)
    measured = {"higher": higher, "loses_on": loses_on, "class": worst}
    wrong = [k for k in ("higher", "loses_on", "class")
             if str(prediction[k]).strip().lower() != measured[k].lower()]
    summary = (f"measured Things PQ fusion {f['pq']:.4f} vs components {c['pq']:.4f}; "
               f"components SQ {c['sq']:.4f} vs {f['sq']:.4f}, RQ {c['rq']:.4f} vs {f['rq']:.4f}; "
               f"largest PQ drop: {worst} ({drop[worst]:.4f})")
    if not wrong:
        return report(True, f"prediction matches the measurement: {summary}")
    return report(False, f"prediction differs on {', '.join(wrong)}: {summary}",
                  "a merge costs a match (RQ), not pixels (SQ); compare the per-class table "
                  "and the figure below to see which objects touch most often")


def _unpack_answer(result: object, ids: Tensor) -> tuple[Tensor, list[tuple[int, int]]] | bool:
    """``(ids, [(id, category_id), ...])`` from a student's ``(ids, segments)``, or the
    ``False`` of a printed verdict when the answer has the wrong form."""
    if not isinstance(result, tuple) or len(result) != 2 or not isinstance(result[0], Tensor):
        return report(False, f"return (ids, segments), got {type(result).__name__}",
                      "a Tensor[H, W] of segment ids and the list of segment dicts")
    got_ids, got_segments = result
    if got_ids.shape != ids.shape:
        return report(False, f"ids should be {shape_str(ids)}, got {shape_str(got_ids)}")
    try:
        return got_ids, [(int(s["id"]), int(s["category_id"])) for s in got_segments]
    except (TypeError, KeyError, ValueError):
        return report(False, "each segment must be a dict with 'id' and 'category_id'")
