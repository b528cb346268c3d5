"""Property tests (hypothesis) for coursekit.tracking, the rest of its ops: MOTChallenge lines
written and read back, the simulated detector, the motion label of a tube, the tube-label
accuracy and the metrics of several sequences together.

Drawn: sequences (0 objects and empty frames included, as in test_props_video_tracking.py),
noise levels, drop rates and false-box rates (0 and 1 included), velocities well away from the
still / moving threshold, frame numbers with gaps; dtypes. References: the lines parsed back,
least squares written out in numpy float64, ``mot_metrics`` on the sequences put end to end
(ids kept apart), and the invariants: no noise and no drop gives the ground truth back, the
same seed the same detections, a tracker that is the ground truth labels every tube right.
Checked on every device this machine has; seeded (``derandomize=True``).
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds
from test_props_video_tracking import random_sequence
from torch.testing import assert_close

from coursekit.tracking import (
    TUBE_ACTIONS,
    action_tubes,
    combine_metrics,
    from_mot_lines,
    mot_metrics,
    motion_label,
    noisy_detections,
    to_mot_lines,
    tube_label_accuracy,
)

sequences = {"n": st.integers(0, 4), "T": st.integers(1, 6),
             "seen": st.sampled_from([0.0, 0.5, 1.0])}


def assert_metrics_equal(ours, ref):
    """Two ``mot_metrics`` dicts agree, key by key (NaN where both are NaN)."""
    assert ours.keys() == ref.keys()
    for key, value in ref.items():
        a, b = float(ours[key]), float(value)
        assert (math.isnan(a) and math.isnan(b)) or a == pytest.approx(b, rel=1e-9, abs=1e-12), key


def on(frames, device):
    return [tuple(x.to(device) for x in frame) for frame in frames]


# ------------------------------------------------------------------------ MOTChallenge
@on_devices
@PROPS
@given(seed=seeds, **sequences, first=st.integers(0, 3), scores=st.booleans(), dtype=floats)
def test_mot_lines_round_trip(device, seed, n, T, seen, first, scores, dtype):
    _, pred = random_sequence(seed, n, T, seen, F64)
    frames = [(i, b, torch.rand(len(i), generator=gen(seed), dtype=F64)) if scores else (i, b)
              for i, b in pred]
    lines = to_mot_lines(on(frames, device), first_frame=first, decimals=None)
    assert len(lines) == sum(len(f[0]) for f in frames)
    assert all(len(line.split(",")) >= 7 for line in lines)
    back = from_mot_lines("\n".join(lines), num_frames=T, first_frame=first, with_scores=True,
                          dtype=dtype)
    assert len(back) == T
    for (ids, boxes, conf), frame in zip(back, frames, strict=True):
        assert ids.dtype == torch.int64 and boxes.dtype == conf.dtype == dtype
        assert boxes.shape == (len(frame[0]), 4)
        assert torch.equal(ids, frame[0])  # the given order
        tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == F64 else {}
        assert_close(boxes, frame[1].to(dtype), **tol)  # through x, y, w, h
        assert_close(conf, frame[2].to(dtype) if scores else torch.ones_like(conf), **tol)
    # two decimals, as SORT writes them: within half a hundredth of each x, y, w, h
    rounded = from_mot_lines(to_mot_lines(frames, first_frame=first), num_frames=T,
                             first_frame=first, dtype=F64)
    for (_, boxes), frame in zip(rounded, frames, strict=True):
        assert bool(((boxes - frame[1]).abs() <= 0.011).all())


# --------------------------------------------------------------------- simulated detector
@on_devices
@PROPS
@given(seed=seeds, **sequences, sigma=st.sampled_from([0.0, 0.05, 0.5]),
       p_drop=st.sampled_from([0.0, 0.3, 1.0]), false_rate=st.sampled_from([0.0, 2.0]),
       dtype=floats)
def test_noisy_detections_are_jittered_thinned_ground_truth(device, seed, n, T, seen, sigma,
                                                            p_drop, false_rate, dtype):
    gt, _ = random_sequence(seed, n, T, seen, dtype)
    gt = on(gt, device)
    kwargs = {"sigma": sigma, "p_drop": p_drop, "false_rate": false_rate, "image_size": 64,
              "seed": seed}
    dets = noisy_detections(gt, **kwargs)
    assert len(dets) == T
    again = noisy_detections(gt, **kwargs)
    for d, d2, (ids, boxes) in zip(dets, again, gt, strict=True):
        assert d.dtype == boxes.dtype and d.device == boxes.device and d.shape[1:] == (4,)
        assert torch.equal(d, d2)  # the same seed, the same detections
        assert bool((d[:, 2] >= d[:, 0] + 1 - 1e-3).all() & (d[:, 3] >= d[:, 1] + 1 - 1e-3).all())
        if false_rate == 0:
            assert len(d) <= len(ids)
        if p_drop == 0 and false_rate == 0:
            assert len(d) == len(ids)
            if sigma == 0:
                assert_close(d, boxes)  # no noise: the ground truth (every box is >= 1 wide)
        if p_drop == 1 and false_rate == 0:
            assert len(d) == 0


# ------------------------------------------------------------------------- motion label
@on_devices
@PROPS
@given(seed=seeds, length=st.integers(1, 8), vx=st.sampled_from([-3.0, -1.0, -0.5, 0.0, 0.1,
                                                                 0.5, 2.0]),
       gaps=st.booleans(), dtype=floats)
def test_motion_label_is_the_least_squares_slope(device, seed, length, vx, gaps, dtype):
    g = gen(seed)
    steps = torch.randint(1, 4, (length,), generator=g) if gaps else torch.ones(length).long()
    frames = steps.cumsum(0) + 5  # ascending frame numbers, maybe with gaps
    x1 = 20 + vx * frames.to(F64) + torch.randn(length, generator=g, dtype=F64) * 0.01
    width = 10 + torch.randn(length, generator=g, dtype=F64) * 0.01
    boxes = torch.stack([x1, torch.zeros(length, dtype=F64), x1 + width,
                         torch.full((length,), 5.0, dtype=F64)], 1).to(device, dtype)
    label, speed = motion_label(frames.to(device), boxes)
    assert label in TUBE_ACTIONS and isinstance(speed, float)
    if length == 1:
        assert (label, speed) == ("standing still", 0.0)
        return
    t = frames.numpy().astype(float)
    b = boxes.cpu().double().numpy()
    slopes = [np.polyfit(t, b[:, c], 1)[0] for c in (0, 2)]
    expected = slopes[0] if abs(slopes[0]) >= abs(slopes[1]) else slopes[1]
    assert speed == pytest.approx(expected, abs=1e-3 if dtype == torch.float32 else 1e-9)
    assert abs(speed - vx) < 0.05
    assert label == ("standing still" if abs(vx) < 0.3 else
                     "moving left" if vx < 0 else "moving right")


# ----------------------------------------------------------------------- tube accuracy
@PROPS
@given(seed=seeds, n=st.integers(1, 4), T=st.integers(3, 8), dtype=floats)
def test_the_ground_truth_as_tracks_labels_every_tube_right(seed, n, T, dtype):
    g = gen(seed)
    vx = torch.tensor([-2.0, -0.6, 0.0, 0.1, 0.7, 3.0], dtype=F64)[
        torch.randint(0, 6, (n,), generator=g)]  # (n,) well away from still_speed = 0.3
    velocity = torch.stack([vx, torch.zeros(n, dtype=F64)], 1)  # (n, 2)
    start = torch.rand(n, 2, generator=g, dtype=F64) * 40 + torch.arange(n)[:, None] * 60
    gt = []
    for t in range(T):
        xy = start + velocity * t
        gt.append((torch.arange(1, n + 1), torch.cat([xy, xy + 12], 1).to(dtype)))
    tubes = action_tubes(gt)
    assert len(tubes) == n
    accuracy, count = tube_label_accuracy(tubes, gt, velocity)
    assert (accuracy, count) == (1.0, n)
    # the same tubes judged against flipped velocities: only the still ones stay right
    flipped, _ = tube_label_accuracy(tubes, gt, -velocity)
    assert flipped == pytest.approx(float((vx.abs() < 0.3).sum()) / n)
    empty, none = tube_label_accuracy([], gt, velocity)
    assert math.isnan(empty) and none == 0


# --------------------------------------------------------------------- combined metrics
@PROPS
@given(seed=seeds, first=st.fixed_dictionaries(sequences), second=st.fixed_dictionaries(sequences))
def test_combine_metrics_is_the_sequences_end_to_end(seed, first, second):
    gt1, pred1 = random_sequence(seed, **first, dtype=F64)
    gt2, pred2 = random_sequence(seed + 1, **second, dtype=F64)
    r1, r2 = mot_metrics(gt1, pred1), mot_metrics(gt2, pred2)
    shift = [(ids + 10_000, boxes) for ids, boxes in gt2]  # ids kept apart
    shift_pred = [(ids + 10_000, boxes) for ids, boxes in pred2]
    together = mot_metrics(gt1 + shift, pred1 + shift_pred)
    assert_metrics_equal(combine_metrics([r1, r2]), together)
    assert_metrics_equal(combine_metrics([r1]), r1)
