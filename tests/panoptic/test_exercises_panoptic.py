"""The panoptic graders accept right answers and explain wrong ones."""

import torch

from coursekit.exercises.panoptic import (
    check_match_segments,
    check_panoptic_fusion,
    check_panoptic_quality,
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
