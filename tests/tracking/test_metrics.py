"""mot_metrics: hand-worked sequences and random ones against py-motmetrics 1.4.0 (fed as in
tests/references/mot_reference.py)."""

import math

import pytest
import torch

from coursekit.tracking import mot_metrics

mm = pytest.importorskip("motmetrics")
from mot_reference import NAMES, motmetrics_reference  # noqa: E402

F64 = torch.float64

def assert_same(ours, ref):
    for key in NAMES:
        a, b = float(ours[key]), ref[key]
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-12, abs=1e-12), \
            f"{key}: ours {a}, py-motmetrics {b}"


def frame(ids, boxes):
    return torch.tensor(ids, dtype=torch.long), torch.tensor(boxes, dtype=F64).reshape(-1, 4)


A = [0.0, 0.0, 10.0, 10.0]
B = [50.0, 50.0, 60.0, 70.0]
FAR = [200.0, 200.0, 210.0, 210.0]


# ---- hand-worked cases ------------------------------------------------------------------


def test_perfect_tracking():
    gt = [frame([1, 2], [A, B])] * 3
    pred = [frame([10, 20], [A, B])] * 3
    m = mot_metrics(gt, pred)
    assert (m["mota"], m["motp"], m["idf1"]) == (1.0, 0.0, 1.0)
    assert (m["id_switches"], m["fp"], m["fn"], m["tp"]) == (0, 0, 0, 6)
    assert_same(m, motmetrics_reference(gt, pred))


def test_a_miss_fragments_the_track():
    gt = [frame([1], [A])] * 4
    pred = [frame([10], [A]), frame([10], [A]), frame([], []), frame([10], [A])]
    m = mot_metrics(gt, pred)
    assert (m["fn"], m["fp"], m["id_switches"]) == (1, 0, 0)
    assert m["mota"] == 1 - 1 / 4
    assert m["idtp"] == 3 and m["idf1"] == pytest.approx(2 * 3 / (4 + 3))
    assert m["fragmentations"] == 1  # tracked, lost, tracked again
    assert_same(m, motmetrics_reference(gt, pred))


def test_a_false_positive():
    gt = [frame([1], [A])] * 2
    pred = [frame([10, 99], [A, FAR]), frame([10], [A])]
    m = mot_metrics(gt, pred)
    assert (m["fp"], m["fn"], m["id_switches"]) == (1, 0, 0)
    assert m["mota"] == 0.5  # 1 - 1 / 2
    assert m["idf1"] == pytest.approx(2 * 2 / (2 + 3))
    assert m["precision"] == pytest.approx(2 / 3)
    assert_same(m, motmetrics_reference(gt, pred))


def test_an_identity_switch():
    gt = [frame([1], [A])] * 4
    pred = [frame([10], [A])] * 2 + [frame([11], [A])] * 2
    m = mot_metrics(gt, pred)
    assert (m["id_switches"], m["fp"], m["fn"], m["tp"]) == (1, 0, 0, 4)
    assert m["mota"] == 0.75
    # IDF1: object 1 pairs with one id only, 10 or 11: 2 of its 4 frames are right
    assert (m["idtp"], m["idfn"], m["idfp"]) == (2, 2, 2)
    assert m["idf1"] == 0.5
    assert_same(m, motmetrics_reference(gt, pred))


def test_motp_is_the_mean_distance():
    gt = [frame([1], [A])] * 2
    pred = [frame([10], [[0, 0, 10, 8]]), frame([10], [[0, 0, 10, 6]])]  # IoU 0.8, 0.6
    m = mot_metrics(gt, pred)
    assert m["motp"] == pytest.approx((0.2 + 0.4) / 2, abs=1e-15)
    strict = mot_metrics(gt, pred, iou_threshold=0.7)  # the second pair no longer matches
    assert (strict["fn"], strict["fp"]) == (1, 1)
    assert strict["motp"] == pytest.approx(0.2, abs=1e-15)
    assert_same(strict, motmetrics_reference(gt, pred, 0.7))


def test_iou_equal_to_the_threshold_matches():
    gt = [frame([1], [A])]
    pred = [frame([10], [[0, 0, 10, 5]])]  # IoU exactly 0.5
    assert mot_metrics(gt, pred)["tp"] == 1
    assert mot_metrics(gt, pred, iou_threshold=0.51)["tp"] == 0


def test_previous_correspondences_are_kept():
    # frame 2: a per-frame Hungarian would give object 1 to prediction 20 (IoU 1.0) and
    # count a switch; CLEAR-MOT keeps 1 <-> 10 while their IoU (2/3) is above threshold
    A2 = [2.0, 0.0, 12.0, 10.0]  # IoU(A, A2) = 80 / 120
    gt = [frame([1], [A]), frame([1, 2], [A, A2])]
    pred = [frame([10], [A]), frame([10, 20], [A2, A])]
    m = mot_metrics(gt, pred)
    assert m["id_switches"] == 0
    assert m["motp"] == pytest.approx((0 + 1 / 3 + 1 / 3) / 3)
    assert m["idf1"] == 1.0  # 1 <-> 10 in 2 frames, 2 <-> 20 in 1 frame
    assert_same(m, motmetrics_reference(gt, pred))


def test_a_returning_object_matched_to_a_new_id_is_a_switch():
    gt = [frame([1], [A]), frame([], []), frame([1], [A])]
    pred = [frame([10], [A]), frame([], []), frame([11], [A])]
    m = mot_metrics(gt, pred)
    assert m["id_switches"] == 1
    assert_same(m, motmetrics_reference(gt, pred))


def test_empty_sequences():
    empty = [frame([], [])] * 3
    m = mot_metrics(empty, empty)
    assert math.isnan(m["mota"]) and math.isnan(m["motp"]) and math.isnan(m["idf1"])
    assert m["num_frames"] == 3
    only_fp = mot_metrics(empty, [frame([5], [A])] * 3)
    assert only_fp["fp"] == 3 and only_fp["mota"] == -math.inf
    assert_same(only_fp, motmetrics_reference(empty, [frame([5], [A])] * 3))
    only_fn = mot_metrics([frame([5], [A])] * 3, empty)
    assert only_fn["mota"] == 0.0 and only_fn["idf1"] == 0.0
    assert_same(only_fn, motmetrics_reference([frame([5], [A])] * 3, empty))


# ---- random sequences -------------------------------------------------------------------


def random_sequence(seed):
    """Objects moving in straight lines, seen 85% of the time; predictions are noisy copies
    that are sometimes lost, sometimes change id, plus false positives, in random order."""
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 8, (1,), generator=g))
    T = int(torch.randint(5, 25, (1,), generator=g))
    pos = torch.rand(n, 2, generator=g, dtype=F64) * 60
    vel = torch.randn(n, 2, generator=g, dtype=F64) * 2
    size = 8 + torch.rand(n, 2, generator=g, dtype=F64) * 8
    hyp = torch.arange(n) + 100
    gt, pred = [], []
    for t in range(T):
        boxes = torch.cat([pos + vel * t, pos + vel * t + size], 1)
        seen = torch.rand(n, generator=g) < 0.85
        gt.append((torch.arange(n)[seen], boxes[seen]))
        if torch.rand(1, generator=g) < 0.15:
            hyp[int(torch.randint(0, n, (1,), generator=g))] = 200 + t  # a new id
        kept = seen & (torch.rand(n, generator=g) < 0.85)
        k = int(kept.sum())
        noisy = boxes[kept] + torch.randn(k, 4, generator=g, dtype=F64) * 2.5
        noisy[:, 2:] = torch.maximum(noisy[:, 2:], noisy[:, :2] + 1)
        nf = int(torch.randint(0, 3, (1,), generator=g))
        corner = torch.rand(nf, 2, generator=g, dtype=F64) * 60
        ids = torch.cat([hyp[kept], torch.arange(nf) + 1000 + 10 * t])
        order = torch.randperm(k + nf, generator=g)
        pred.append((ids[order], torch.cat([noisy, torch.cat([corner, corner + 10], 1)])[order]))
    return gt, pred


def test_random_sequences_vs_motmetrics():
    totals = dict.fromkeys(("id_switches", "fragmentations", "fp", "fn", "tp"), 0)
    for seed in range(8):
        gt, pred = random_sequence(seed)
        for threshold in (0.3, 0.5, 0.7):
            ours = mot_metrics(gt, pred, iou_threshold=threshold)
            assert_same(ours, motmetrics_reference(gt, pred, threshold))
            for key in totals:
                totals[key] += ours[key]
    assert all(v > 5 for v in totals.values()), totals  # every event type was exercised


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_devices_and_dtypes_vs_motmetrics(device, dtype):
    gt, pred = random_sequence(100)
    gt_d = [(i.to(device), b.to(device=device, dtype=dtype)) for i, b in gt]
    pred_d = [(i.to(device), b.to(device=device, dtype=dtype)) for i, b in pred]
    assert_same(mot_metrics(gt_d, pred_d), motmetrics_reference(gt_d, pred_d))


# ---- bad input --------------------------------------------------------------------------


def test_bad_input():
    ok = [frame([1], [A])]
    with pytest.raises(ValueError, match="same number of frames, got 1 and 2"):
        mot_metrics(ok, ok * 2)
    with pytest.raises(ValueError, match=r"gt\[0\]: ids and boxes must have the same length K"):
        mot_metrics([(torch.tensor([1, 2]), torch.zeros(1, 4))], ok)
    with pytest.raises(ValueError, match=r"pred\[0\] boxes must be Tensor\[N, 4\].*\[1, 3\]"):
        mot_metrics(ok, [(torch.tensor([1]), torch.zeros(1, 3))])
    with pytest.raises(TypeError, match=r"gt\[0\] ids must be an integer Tensor\[K\]"):
        mot_metrics([(torch.tensor([1.0]), torch.zeros(1, 4))], ok)
    with pytest.raises(ValueError, match=r"gt\[0\] ids must be unique within a frame"):
        mot_metrics([(torch.tensor([1, 1]), torch.zeros(2, 4))], ok)
    with pytest.raises(TypeError, match=r"pred\[0\] must be a pair \(ids"):
        mot_metrics(ok, [torch.zeros(1, 4)])
    with pytest.raises(TypeError, match="gt must be a list with one"):
        mot_metrics(torch.zeros(1, 4), ok)
    with pytest.raises(ValueError, match=r"iou_threshold must be in \(0, 1\]"):
        mot_metrics(ok, ok, iou_threshold=0)
    with pytest.raises(TypeError, match="iou_threshold must be a float"):
        mot_metrics(ok, ok, iou_threshold="0.5")


# ---- several sequences ------------------------------------------------------------------


def test_combine_metrics_is_the_sequences_end_to_end():
    from coursekit.tracking import combine_metrics

    seqs = [random_sequence(seed) for seed in range(20, 25)]
    joined_gt, joined_pred = [], []
    for k, (gt, pred) in enumerate(seqs):  # ids kept apart: + 10000 k
        joined_gt += [(ids + 10000 * k, b) for ids, b in gt]
        joined_pred += [(ids + 10000 * k, b) for ids, b in pred]
    combined = combine_metrics([mot_metrics(gt, pred) for gt, pred in seqs])
    whole = mot_metrics(joined_gt, joined_pred)
    for key, value in whole.items():
        assert combined[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    assert_same(combined, motmetrics_reference(joined_gt, joined_pred))
    with pytest.raises(TypeError, match="results must be a non-empty list"):
        combine_metrics([])
    with pytest.raises(TypeError, match=r"results\[0\] must be a dict returned by mot_metrics"):
        combine_metrics([{"mota": 1.0}])
