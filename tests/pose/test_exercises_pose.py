"""Lesson 07's graders accept right answers and explain wrong ones."""

import torch
from torchvision.models.detection import roi_heads as tv

from coursekit.exercises.pose import (
    check_flip_ap_prediction,
    check_keypoints_to_heatmap,
    check_oks,
    measure_flip_ap,
)
from coursekit.pose import COCO_FLIP_INDEX, COCO_SIGMAS, keypoints_to_heatmap, oks


def verdict(capsys):
    return capsys.readouterr().out.strip()


def stub(*args):
    raise NotImplementedError("exercise: write your solution here")


# ---- keypoints_to_heatmap ---------------------------------------------------------------------

def cells(keypoints, rois, size, edge=True, rounding=torch.floor, row_major=True):
    """A student's version, with switchable mistakes."""
    x1, y1 = rois[:, 0, None], rois[:, 1, None]
    sx = size / (rois[:, 2, None] - x1)
    sy = size / (rois[:, 3, None] - y1)
    col = rounding((keypoints[..., 0] - x1) * sx).long()
    row = rounding((keypoints[..., 1] - y1) * sy).long()
    if edge:
        col = torch.where(keypoints[..., 0] == rois[:, 2, None], size - 1, col)
        row = torch.where(keypoints[..., 1] == rois[:, 3, None], size - 1, row)
    valid = (col >= 0) & (row >= 0) & (col < size) & (row < size) & (keypoints[..., 2] > 0)
    index = row * size + col if row_major else col * size + row
    return index * valid, valid


def test_heatmap_accepts_correct_solutions(capsys):
    assert check_keypoints_to_heatmap(keypoints_to_heatmap) is True
    assert check_keypoints_to_heatmap(tv.keypoints_to_heatmap) is True  # torchvision's
    assert check_keypoints_to_heatmap(cells) is True  # bool valid is fine too
    assert verdict(capsys).startswith("✅ correct: keypoints_to_heatmap")


def test_heatmap_names_the_box_edge(capsys):
    assert check_keypoints_to_heatmap(lambda k, r, s: cells(k, r, s, edge=False)) is False
    out = verdict(capsys)
    assert out.startswith("❌ the hand-made case") and "right or bottom edge" in out


def test_heatmap_names_rounding_and_order(capsys):
    assert check_keypoints_to_heatmap(lambda k, r, s: cells(k, r, s, rounding=torch.round)) \
        is False
    assert "floor, not round" in verdict(capsys)
    assert check_keypoints_to_heatmap(lambda k, r, s: cells(k, r, s, row_major=False)) is False
    assert "row * size + column" in verdict(capsys)


def test_heatmap_names_unlabelled_keypoints(capsys):
    def ignores_v(k, r, s):
        k = k.clone()
        k[..., 2] = 2
        return cells(k, r, s)

    assert check_keypoints_to_heatmap(ignores_v) is False
    assert "v = 0" in verdict(capsys)


def test_heatmap_reports_shapes_and_errors(capsys):
    assert check_keypoints_to_heatmap(stub) is False
    assert "not implemented yet" in verdict(capsys)
    assert check_keypoints_to_heatmap(lambda k, r, s: cells(k, r, s)[0]) is False
    assert "expected a pair" in verdict(capsys)
    assert check_keypoints_to_heatmap(lambda k, r, s: (torch.zeros(3), torch.zeros(3))) is False
    assert "expected two integer tensors" in verdict(capsys)
    assert check_keypoints_to_heatmap(keypoints_to_heatmap(torch.zeros(1, 17, 3),
                                                           torch.tensor([[0.0, 0, 1, 1]]), 4))\
        is False
    assert "expected your function" in verdict(capsys)


# ---- OKS --------------------------------------------------------------------------------------

def my_oks(gt, dt, area, kappa=2.0, all_k=False, root=False, two=2.0):
    sig = torch.tensor(COCO_SIGMAS, dtype=torch.float64) * kappa
    d2 = ((dt[:, :2] - gt[:, :2]) ** 2).sum(1)
    s2 = area**0.5 if root else area
    e = torch.exp(-d2 / (two * s2 * sig**2))
    return float(e.mean() if all_k else e[gt[:, 2] > 0].mean())


def test_oks_accepts_correct_solutions(capsys):
    assert check_oks(my_oks) is True
    assert check_oks(lambda g, d, a: oks(g[None], d[None], torch.tensor([a]))[0, 0]) is True
    assert verdict(capsys).startswith("✅ correct: OKS")


def test_oks_hints_name_the_mistake(capsys):
    cases = [({"kappa": 1.0}, "κ_k = 2 σ_k"), ({"all_k": True}, "labelled keypoints only"),
             ({"root": True}, "do not take its root"), ({"two": 1.0}, "keep the 2")]
    for kwargs, hint in cases:
        assert check_oks(lambda g, d, a, kw=kwargs: my_oks(g, d, a, **kw)) is False
        out = verdict(capsys)
        assert out.startswith("❌") and hint in out, out
        assert "expected 0." in out  # the expected value, never the formula's code


def test_oks_reports_bad_answers(capsys):
    assert check_oks(stub) is False
    assert "not implemented yet" in verdict(capsys)
    assert check_oks(lambda g, d, a: "0.9") is False
    assert "expected a number" in verdict(capsys)
    assert check_oks(lambda g, d, a: torch.ones(2)) is False
    assert "expected a number" in verdict(capsys)


# ---- flip prediction --------------------------------------------------------------------------

def test_measure_flip_ap_with_and_without_the_index():
    seeds = range(3_000_000, 3_000_012)
    right = measure_flip_ap(COCO_FLIP_INDEX, seeds)
    assert right == {"ap": 1.0, "ap50": 1.0, "mean_oks": 1.0}
    wrong = measure_flip_ap(list(range(17)), seeds)
    assert wrong["mean_oks"] < 0.5 and wrong["ap"] < 0.05  # left and right swapped


def test_flip_prediction_grading(capsys):
    measured = {"ap": 0.03, "ap50": 0.05, "mean_oks": 0.13}
    assert check_flip_ap_prediction(lambda: 0.0, measured) is True
    assert verdict(capsys) == "✅ correct: you predicted AP 0.00, measured 0.03"
    assert check_flip_ap_prediction(lambda: 0.5, measured) is False
    assert "only the nose keeps its place" in verdict(capsys)
    assert check_flip_ap_prediction(lambda: 0.0, {"ap": 0.4}) is False
    assert "hardly move" in verdict(capsys)
    assert check_flip_ap_prediction(stub, measured) is False
    assert "not implemented yet" in verdict(capsys)
    assert check_flip_ap_prediction(lambda: 1.5, measured) is False
    assert "a number in [0, 1]" in verdict(capsys)
    assert check_flip_ap_prediction(lambda: True, measured) is False
    assert "a number in [0, 1]" in verdict(capsys)
