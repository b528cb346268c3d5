"""The panoptic graders accept right answers and explain wrong ones."""

import torch

from coursekit.exercises.panoptic import (
    check_components,
    check_components_prediction,
    check_match_segments,
    check_merged_pq,
    check_panoptic_fusion,
    check_panoptic_quality,
    components_reference,
)
from coursekit.panoptic import panoptic_fusion


def verdict(capsys):
    return capsys.readouterr().out.strip()


def stub(*args):
    raise NotImplementedError("exercise: write your solution here")


# ---- PQ from matches -------------------------------------------------------------------------

def pq_from_matches(ious, num_fp, num_fn):
    tp = len(ious)
    denom = tp + 0.5 * num_fp + 0.5 * num_fn
    sq = float(ious.sum()) / tp if tp else 0.0
    rq = tp / denom if denom else 0.0
    return sq * rq, sq, rq


def test_pq_accepts_correct_solution(capsys):
    assert check_panoptic_quality(pq_from_matches) is True
    assert verdict(capsys).startswith("✅ correct: panoptic_quality")


def test_pq_explains_wrong_solutions(capsys):
    def full_fp_fn(ious, fp, fn):
        tp = len(ious)
        sq = float(ious.sum()) / tp if tp else 0.0
        rq = tp / (tp + fp + fn) if tp + fp + fn else 0.0
        return sq * rq, sq, rq

    assert check_panoptic_quality(full_fp_fn) is False
    assert "FP/2 + FN/2" in verdict(capsys)

    def sum_not_mean(ious, fp, fn):
        _, sq, rq = pq_from_matches(ious, fp, fn)
        return float(ious.sum()) * rq, float(ious.sum()), rq

    assert check_panoptic_quality(sum_not_mean) is False
    assert "mean IoU" in verdict(capsys)

    def nan_when_no_tp(ious, fp, fn):
        tp = len(ious)
        sq = float(ious.sum()) / tp if tp else float("nan")
        rq = tp / (tp + 0.5 * fp + 0.5 * fn)
        return sq * rq, sq, rq

    assert check_panoptic_quality(nan_when_no_tp) is False
    assert "no TP" in verdict(capsys)

    def sum_pq(ious, fp, fn):
        _, sq, rq = pq_from_matches(ious, fp, fn)
        return sq + rq, sq, rq

    assert check_panoptic_quality(sum_pq) is False
    assert "PQ = SQ × RQ" in verdict(capsys)
    assert check_panoptic_quality(lambda i, fp, fn: 0.5) is False
    assert "three numbers" in verdict(capsys)


def test_pq_reports_exceptions_and_stubs(capsys):
    assert check_panoptic_quality(stub) is False
    assert "not implemented yet" in verdict(capsys)
    assert check_panoptic_quality(lambda i, fp, fn: 1 / 0) is False
    assert "your function raised ZeroDivisionError" in verdict(capsys)


# ---- matching --------------------------------------------------------------------------------

def match_segments(pred_ids, pred_segments, gt_ids, gt_segments, strict=True, same_category=True):
    out = {}
    for g in gt_segments:
        for p in pred_segments:
            if same_category and g["category_id"] != p["category_id"]:
                continue
            gm, pm = gt_ids == g["id"], pred_ids == p["id"]
            iou = float((gm & pm).sum() / (gm | pm).sum())
            if iou > 0.5 or (not strict and iou >= 0.5):
                out[(g["id"], p["id"])] = iou
    return out


def test_match_accepts_correct_solution(capsys):
    assert check_match_segments(match_segments) is True
    assert verdict(capsys).startswith("✅ correct: match_segments")


def test_match_explains_wrong_solutions(capsys):
    assert check_match_segments(lambda *a: match_segments(*a, same_category=False)) is False
    assert "same category_id" in verdict(capsys)
    assert check_match_segments(lambda *a: match_segments(*a, strict=False)) is False
    assert "IoU > 0.5, strictly" in verdict(capsys)
    def half_iou(*a):
        return {k: v / 2 for k, v in match_segments(*a).items()}

    assert check_match_segments(half_iou) is False
    assert "counted in pixels" in verdict(capsys)
    assert check_match_segments(lambda *a: {}) is False
    assert "wrong matches" in verdict(capsys)
    assert check_match_segments(lambda *a: [1]) is False
    assert "return a dict" in verdict(capsys)


def test_match_reports_stubs(capsys):
    assert check_match_segments(stub) is False
    assert "not implemented yet" in verdict(capsys)


# ---- fusion ----------------------------------------------------------------------------------

def test_fusion_accepts_correct_solution(capsys):
    assert check_panoptic_fusion(panoptic_fusion) is True
    assert verdict(capsys).startswith("✅ correct: panoptic_fusion")


def test_fusion_explains_wrong_solutions(capsys):
    assert check_panoptic_fusion(lambda i, s: panoptic_fusion(i, s, overlap_threshold=1.0)) is False
    assert "already taken" in verdict(capsys)
    assert check_panoptic_fusion(lambda i, s: panoptic_fusion(i, s, score_threshold=0.0)) is False
    assert "below 0.5" in verdict(capsys)
    assert check_panoptic_fusion(
        lambda i, s: panoptic_fusion(i, s, stuff_area_threshold=0)) is False
    assert "fewer than 16" in verdict(capsys)
    assert check_panoptic_fusion(lambda i, s: panoptic_fusion(i, s, thing_ids=())) is False
    assert "only stuff classes" in verdict(capsys)
    assert check_panoptic_fusion(lambda i, s: (torch.zeros_like(s), [])) is False
    assert "paste instances by decreasing score" in verdict(capsys)
    assert check_panoptic_fusion(lambda i, s: s) is False
    assert "return (ids, segments)" in verdict(capsys)


def test_fusion_reports_stubs(capsys):
    assert check_panoptic_fusion(stub) is False
    assert "not implemented yet" in verdict(capsys)


# ---- one segment for several objects ---------------------------------------------------------

def merged_pq(areas, strict=True, union_iou=False, fn_all=False):
    n, best, total = len(areas), float(areas.max()), float(areas.sum())
    iou = best / total
    if iou > 0.5 or (not strict and iou >= 0.5):
        iou = 1.0 if union_iou else iou
        num_fn = n if fn_all else n - 1
        rq = 1 / (1 + 0.5 * num_fn)
        return iou * rq, iou, rq
    return 0.0, 0.0, 0.0


def test_merged_pq_hand_computed_cases():
    # [300, 100]: IoU 300/400 = 0.75 with the big one, the small one an FN: PQ 0.75 / 1.5
    assert merged_pq(torch.tensor([300.0, 100.0])) == (0.5, 0.75, 1 / 1.5)
    assert merged_pq(torch.tensor([100.0, 100.0])) == (0.0, 0.0, 0.0)  # IoU 0.5: no match


def test_merged_pq_accepts_correct_solution(capsys):
    assert check_merged_pq(merged_pq) is True
    assert verdict(capsys).startswith("✅ correct: merged_pq")


def test_merged_pq_explains_wrong_solutions(capsys):
    assert check_merged_pq(lambda a: merged_pq(a, strict=False)) is False
    assert "strictly" in verdict(capsys)
    assert check_merged_pq(lambda a: merged_pq(a, union_iou=True)) is False
    assert "union's area" in verdict(capsys)
    assert check_merged_pq(lambda a: merged_pq(a, fn_all=True)) is False
    assert "FN = N - 1" in verdict(capsys)

    def no_rq(areas):
        pq, sq, rq = merged_pq(areas)
        return sq, sq, 1.0 if sq else 0.0

    assert check_merged_pq(no_rq) is False
    assert "false negative" in verdict(capsys)
    assert check_merged_pq(lambda a: (1.0, 1.0, 1.0)) is False
    assert "wrong (pq, sq, rq)" in verdict(capsys)
    assert check_merged_pq(stub) is False
    assert "not implemented yet" in verdict(capsys)


# ---- semantic map + connected components -----------------------------------------------------

def components_torch(semantic, connectivity=8, per_class=False, stuff_min=16):
    """A second, independent way: min-label propagation with max pooling, in torch."""
    H, W = semantic.shape
    ids = torch.zeros_like(semantic)
    segments = []
    kernel = 3
    for c in (4, 5, 6, 7):
        mask = semantic == c
        if not mask.any():
            continue
        if per_class:
            segments.append({"id": len(segments) + 1, "category_id": c})
            ids[mask] = len(segments)
            continue
        big = H * W + 1
        label = torch.where(mask, torch.arange(1, H * W + 1).view(H, W), big).float()
        while True:
            neg = -label[None, None]
            if connectivity == 8:
                pooled = -torch.nn.functional.max_pool2d(neg, kernel, 1, 1)[0, 0]
            else:
                padded = torch.nn.functional.pad(label, (1, 1, 1, 1), value=big)
                pooled = torch.stack([padded[1:-1, 1:-1], padded[:-2, 1:-1], padded[2:, 1:-1],
                                      padded[1:-1, :-2], padded[1:-1, 2:]]).amin(0)
            new = torch.where(mask, torch.minimum(label, pooled), big)
            if torch.equal(new, label):
                break
            label = new
        for v in label[mask].unique().tolist():
            segments.append({"id": len(segments) + 1, "category_id": c})
            ids[label == v] = len(segments)
    for c in (0, 1, 2, 3):
        region = semantic == c
        if int(region.sum()) >= stuff_min:
            segments.append({"id": len(segments) + 1, "category_id": c})
            ids[region] = len(segments)
    return ids, segments


def test_components_reference_hand_computed():
    a = torch.zeros(6, 6, dtype=torch.int64)
    a[0:2, 0:2] = 4
    a[2:4, 2:4] = 4  # touches the first at a corner only
    a[5, 5] = 5
    ids8, seg8 = components_reference(a)
    ids4, seg4 = components_reference(a, connectivity=4)
    assert [s["category_id"] for s in seg8] == [4, 5, 0]
    assert [s["category_id"] for s in seg4] == [4, 4, 5, 0]
    assert int((ids8 == 1).sum()) == 8 and int((ids4 == 1).sum()) == 4
    small, seg = components_reference(torch.full((3, 5), 2))  # 15 stuff pixels < 16: void
    assert seg == [] and int(small.abs().sum()) == 0


def test_components_accepts_correct_solutions(capsys):
    assert check_components(components_reference) is True
    assert verdict(capsys).startswith("✅ correct: components")
    assert check_components(components_torch) is True  # other ids, same segments
    assert verdict(capsys).startswith("✅ correct: components")


def test_components_explains_wrong_solutions(capsys):
    assert check_components(lambda s: components_torch(s, connectivity=4)) is False
    assert "8-connectivity" in verdict(capsys)
    assert check_components(lambda s: components_torch(s, per_class=True)) is False
    assert "split each thing class" in verdict(capsys)
    assert check_components(lambda s: components_torch(s, stuff_min=0)) is False
    assert "fewer than 16" in verdict(capsys)
    assert check_components(lambda s: (torch.zeros_like(s), [])) is False
    assert "segments differ" in verdict(capsys)
    assert check_components(lambda s: s) is False
    assert "return (ids, segments)" in verdict(capsys)
    assert check_components(stub) is False
    assert "not implemented yet" in verdict(capsys)


def _result(things_pq, things_sq, things_rq, per_class_pq):
    return {"Things": {"pq": things_pq, "sq": things_sq, "rq": things_rq},
            "per_class": {k: {"pq": v} for k, v in per_class_pq.items()}}


FUSION = _result(0.84, 0.89, 0.95, {4: 0.90, 5: 0.87, 6: 0.88, 7: 0.72})
COMPONENTS = _result(0.77, 0.93, 0.83, {4: 0.83, 5: 0.81, 6: 0.74, 7: 0.70})


def test_prediction_accepts_the_measured_outcome(capsys):
    right = {"higher": "fusion", "loses_on": "RQ", "class": "triangle"}
    assert check_components_prediction(lambda: right, FUSION, COMPONENTS) is True
    assert "fusion 0.8400 vs components 0.7700" in verdict(capsys)


def test_prediction_explains_a_wrong_guess(capsys):
    wrong = {"higher": "fusion", "loses_on": "SQ", "class": "person"}
    assert check_components_prediction(lambda: wrong, FUSION, COMPONENTS) is False
    out = verdict(capsys)
    assert "differs on loses_on, class" in out and "largest PQ drop: triangle" in out
    assert check_components_prediction(lambda: "fusion", FUSION, COMPONENTS) is False
    assert "must be a dict" in verdict(capsys)
    assert check_components_prediction(stub, FUSION, COMPONENTS) is False
    assert "not implemented yet" in verdict(capsys)
