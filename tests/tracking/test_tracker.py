"""Tracker (SORT): births, deaths and matching by hand; a plain numpy SORT as the reference."""

import itertools

import numpy as np
import pytest
import torch
from torch.testing import assert_close

from coursekit.tracking import Tracker, match_boxes, mot_metrics

F64 = torch.float64


def box(x, y, w=4.0, h=2.0):
    return [x, y, x + w, y + h]


def dets(*boxes, dtype=F64):
    return torch.tensor(boxes, dtype=dtype).reshape(-1, 4)


# ---- matching ---------------------------------------------------------------------------


def test_match_boxes_by_hand():
    # sort.py runs the Hungarian algorithm on raw IoU: it would take (0, 1) + (1, 0) = 0.58
    # over (0, 0) = 0.5, then drop both pairs (< 0.3) and match nothing
    rows, cols = match_boxes(torch.tensor([[0.5, 0.29], [0.29, 0.0]]), 0.3)
    assert (rows.tolist(), cols.tolist()) == ([0], [0])
    # among valid pairs the total IoU is maximised: 0.8 + 0.8 beats 0.9 alone
    rows, cols = match_boxes(torch.tensor([[0.9, 0.8], [0.8, 0.1]]), 0.3)
    assert (rows.tolist(), cols.tolist()) == ([0, 1], [1, 0])
    rows, cols = match_boxes(torch.tensor([[float("nan"), 0.2]]), 0.3)
    assert rows.numel() == cols.numel() == 0


def brute_force_best(iou, threshold):
    """The largest total IoU over every one-to-one set of pairs with IoU >= threshold."""
    d, m = iou.shape
    best = 0.0
    for perm in itertools.permutations(range(max(d, m)), d):  # detection i -> track perm[i]
        total = sum(iou[i, j] for i, j in enumerate(perm) if j < m and iou[i, j] >= threshold)
        best = max(best, total)
    return best


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (2, 4), (5, 5)])
def test_match_boxes_vs_brute_force(shape, device):
    g = torch.Generator().manual_seed(shape[0] * 7 + shape[1])
    for _ in range(20):
        iou = torch.rand(shape, generator=g, dtype=F64) * (torch.rand(shape, generator=g) < 0.6)
        rows, cols = match_boxes(iou.to(device), 0.3)
        assert rows.device == iou.to(device).device
        assert len(set(rows.tolist())) == len(rows) and len(set(cols.tolist())) == len(cols)
        got = iou[rows.cpu(), cols.cpu()]
        assert (got >= 0.3).all()
        assert float(got.sum()) == pytest.approx(brute_force_best(iou.numpy(), 0.3), abs=1e-12)


# ---- births, deaths, hand-checked boxes -------------------------------------------------


def test_one_object_by_hand():
    tracker = Tracker()
    ids, boxes = tracker.update(dets(box(0, 0)))
    assert ids.tolist() == [1] and boxes.tolist() == [box(0, 0)]  # born, reported at once
    ids, boxes = tracker.update(dets(box(2, 0)))
    # predicted at rest (0, 0); the correction moves the centre by 2 * 10011 / 10012
    shift = 2 * 10011 / 10012
    assert ids.tolist() == [1]
    assert_close(boxes, dets(box(shift, 0)), rtol=1e-14, atol=1e-14)
    for t in range(2, 8):
        ids, boxes = tracker.update(dets(box(2 * t, 0)))
        assert ids.tolist() == [1]
    assert_close(boxes, dets(box(14, 0)), rtol=0, atol=0.05)  # the velocity is learnt
    assert len(tracker) == 1


def test_birth_needs_min_hits_after_the_first_frames():
    tracker = Tracker(min_hits=3)
    seen = []
    for t in range(10):
        boxes = [box(0, 0)] + ([box(50, 50)] if t >= 4 else [])  # a second object from frame 5
        ids, _ = tracker.update(dets(*boxes))
        seen.append(ids.tolist())
    # frames 1-3: everything is reported; object 2, born in frame 5, is matched in frames
    # 6, 7, 8: its streak reaches min_hits = 3 in frame 8
    assert seen == [[1]] * 7 + [[1, 2]] * 3


@pytest.mark.parametrize("max_age, gap, same_id", [(1, 1, True), (1, 2, False), (2, 2, True),
                                                   (3, 4, False)])
def test_death_after_max_age(max_age, gap, same_id):
    tracker = Tracker(max_age=max_age, min_hits=1)
    for t in range(5):
        ids, _ = tracker.update(dets(box(2 * t, 0)))
    for _ in range(gap):  # the object is not detected: its track coasts
        ids, _ = tracker.update(dets())
        assert ids.numel() == 0
    ids, _ = tracker.update(dets(box(2 * (5 + gap), 0)))
    # a coasting track is reported again at once (min_hits = 1); a new track is born with
    # no hits, so (as in sort.py) it is reported from its first match, one frame later
    assert ids.tolist() == ([1] if same_id else [])
    ids, _ = tracker.update(dets(box(2 * (6 + gap), 0)))
    assert ids.tolist() == ([1] if same_id else [2])


def test_crossing_objects_keep_their_ids():
    tracker = Tracker()
    gt, pred = [], []
    for t in range(30):
        a, b = box(2.0 * t, 0, 10, 10), box(58 - 2.0 * t, 3, 10, 10)  # they cross at t ~ 14
        gt.append((torch.tensor([1, 2]), dets(a, b)))
        pred.append(tracker.update(dets(a, b)))
    m = mot_metrics(gt, pred)
    assert m["id_switches"] == 0 and m["mota"] == 1.0 and m["idf1"] == 1.0


def test_min_score_drops_weak_detections():
    tracker = Tracker(min_score=0.5)
    ids, boxes = tracker.update(dets(box(0, 0), box(20, 0)), torch.tensor([0.9, 0.2], dtype=F64))
    assert ids.tolist() == [1] and boxes.tolist() == [box(0, 0)]


def test_reset_and_empty_frames():
    tracker = Tracker()
    ids, boxes = tracker.update(dets())
    assert ids.shape == (0,) and boxes.shape == (0, 4) and ids.dtype == torch.long
    tracker.update(dets(box(0, 0)))
    tracker.reset()
    assert len(tracker) == 0
    assert tracker.update(dets(box(0, 0)))[0].tolist() == [1]  # ids start again


# ---- the reference: SORT written plainly in numpy ---------------------------------------


class NumpySort:
    """Bewley et al.'s SORT with per-track numpy Kalman filters and brute-force matching."""

    F = np.eye(7) + np.eye(7, k=4)
    H = np.eye(4, 7)
    R = np.diag([1.0, 1.0, 10.0, 10.0])
    Q = np.diag([1.0, 1.0, 1.0, 1.0, 0.01, 0.01, 1e-4])
    P0 = np.diag([10.0] * 4 + [1e4] * 3)

    def __init__(self, max_age, min_hits, iou_threshold):
        self.max_age, self.min_hits, self.thr = max_age, min_hits, iou_threshold
        self.tracks, self.frame, self.next_id = [], 0, 1

    @staticmethod
    def z(b):
        w, h = b[2] - b[0], b[3] - b[1]
        return np.array([b[0] + w / 2, b[1] + h / 2, w * h, w / h])

    @staticmethod
    def box(x):
        w = np.sqrt(x[2] * x[3])
        h = x[2] / w
        return np.array([x[0] - w / 2, x[1] - h / 2, x[0] + w / 2, x[1] + h / 2])

    @staticmethod
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)

    def update(self, detections):
        self.frame += 1
        for tr in self.tracks:
            if tr["x"][2] + tr["x"][6] <= 0:
                tr["x"][6] = 0.0
            tr["x"] = self.F @ tr["x"]
            tr["P"] = self.F @ tr["P"] @ self.F.T + self.Q
            if tr["since"] > 0:
                tr["streak"] = 0
            tr["since"] += 1
        predicted = [self.box(tr["x"]) for tr in self.tracks]
        iou = np.array([[self.iou(d, p) for p in predicted] for d in detections])
        iou = iou.reshape(len(detections), len(predicted))
        best, pairs = -1.0, []
        d, m = iou.shape
        for perm in itertools.permutations(range(max(d, m)), d):
            chosen = [(i, j) for i, j in enumerate(perm) if j < m and iou[i, j] >= self.thr]
            total = sum(iou[i, j] for i, j in chosen)
            if total > best + 1e-12:
                best, pairs = total, chosen
        for i, j in pairs:
            tr = self.tracks[j]
            S = self.H @ tr["P"] @ self.H.T + self.R
            K = tr["P"] @ self.H.T @ np.linalg.inv(S)
            tr["x"] = tr["x"] + K @ (self.z(detections[i]) - self.H @ tr["x"])
            tr["P"] = (np.eye(7) - K @ self.H) @ tr["P"]
            tr["since"], tr["streak"] = 0, tr["streak"] + 1
        matched = {i for i, _ in pairs}
        for i in range(d):
            if i not in matched:
                x = np.concatenate([self.z(detections[i]), np.zeros(3)])
                self.tracks.append(dict(id=self.next_id, x=x, P=self.P0.copy(), since=0,
                                        streak=0))
                self.next_id += 1
        out = [(tr["id"], self.box(tr["x"])) for tr in self.tracks if tr["since"] < 1 and (
            tr["streak"] >= self.min_hits or self.frame <= self.min_hits)]
        self.tracks = [tr for tr in self.tracks if tr["since"] <= self.max_age]
        return [i for i, _ in out], np.array([b for _, b in out]).reshape(-1, 4)


def random_detections(seed, T=25):
    """Objects entering at random times, moving in straight lines, detected 80% of the time
    with noise, sometimes crossing."""
    g = torch.Generator().manual_seed(seed)
    n = int(torch.randint(1, 5, (1,), generator=g))
    start = torch.randint(0, T // 2, (n,), generator=g)
    pos = torch.rand(n, 2, generator=g, dtype=F64) * 80
    vel = torch.randn(n, 2, generator=g, dtype=F64) * 2
    size = 10 + torch.rand(n, 2, generator=g, dtype=F64) * 10
    for t in range(T):
        p = pos + vel * t
        boxes = torch.cat([p, p + size], 1) + torch.randn(n, 4, generator=g, dtype=F64) * 0.7
        seen = (torch.rand(n, generator=g) < 0.8) & (start <= t)
        yield boxes[seen]


@pytest.mark.parametrize("max_age, min_hits, iou_threshold", [(1, 3, 0.3), (3, 1, 0.3),
                                                              (2, 2, 0.5)])
def test_vs_numpy_sort(max_age, min_hits, iou_threshold, device):
    for seed in range(6):
        ours = Tracker(max_age=max_age, min_hits=min_hits, iou_threshold=iou_threshold)
        ref = NumpySort(max_age, min_hits, iou_threshold)
        for detections in random_detections(seed):
            ids, boxes = ours.update(detections.to(device))
            ref_ids, ref_boxes = ref.update(detections.numpy())
            assert ids.device == boxes.device == detections.to(device).device
            assert ids.tolist() == ref_ids
            assert_close(boxes.cpu(), torch.from_numpy(ref_boxes), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32])
def test_reduced_precision_follows_the_input(dtype):
    tracker, ref = Tracker(), NumpySort(1, 3, 0.3)
    for detections in random_detections(1):
        ids, boxes = tracker.update(detections.to(dtype))
        ref_ids, ref_boxes = ref.update(detections.to(dtype).double().numpy())
        assert boxes.dtype == dtype and ids.tolist() == ref_ids
        assert_close(boxes.double(), torch.from_numpy(ref_boxes).to(dtype).double(),
                     rtol=2e-3, atol=0.05)


# ---- bad input --------------------------------------------------------------------------


def test_bad_input():
    tracker = Tracker()
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\].*Tensor\[2, 5\]"):
        tracker.update(torch.zeros(2, 5))
    with pytest.raises(TypeError, match="boxes must be a floating-point"):
        tracker.update(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"scores must be Tensor\[K\] with K = 2"):
        tracker.update(torch.zeros(2, 4), torch.zeros(3))
    with pytest.raises(ValueError, match="max_age must be >= 0"):
        Tracker(max_age=-1)
    with pytest.raises(ValueError, match=r"iou_threshold must be in \(0, 1\]"):
        Tracker(iou_threshold=0.0)
    with pytest.raises(TypeError, match="min_score"):
        Tracker(min_score="high")
    with pytest.raises(TypeError, match="iou must be a floating-point"):
        match_boxes(torch.zeros(2, 2, dtype=torch.long), 0.3)
    with pytest.raises(TypeError, match="iou_threshold must be a float"):
        match_boxes(torch.zeros(2, 2), None)
    with pytest.raises(ValueError, match=r"iou must be Tensor\[D, M\]"):
        match_boxes(torch.zeros(2), 0.3)
