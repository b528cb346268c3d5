"""Action tubes: linking a tracker's boxes by id and labelling the motion, by hand."""

import pytest
import torch

from coursekit.tracking import TUBE_ACTIONS, action_tubes, motion_label, tube_label_accuracy

F64 = torch.float64


def boxes_at(xs, w=4.0):
    return torch.tensor([[x, 0.0, x + w, 4.0] for x in xs], dtype=F64)


def test_motion_label_by_hand():
    t = torch.arange(5)
    assert motion_label(t, boxes_at([0, 2, 4, 6, 8])) == ("moving right", 2.0)
    assert motion_label(t, boxes_at([8, 7, 6, 5, 4])) == ("moving left", -1.0)
    label, vx = motion_label(t, boxes_at([3, 3.1, 2.9, 3, 3.1]))
    assert label == "standing still" and abs(vx) < 0.1
    # frames need not be consecutive: 6 px over frames 0 -> 3 is 2 px per frame
    assert motion_label(torch.tensor([0, 3]), boxes_at([0, 6])) == ("moving right", 2.0)
    # a box cut by the image border: its right edge stops at 64, its left edge keeps moving
    cut = torch.tensor([[56.0, 0, 64, 4], [57, 0, 64, 4], [58, 0, 64, 4], [59, 0, 64, 4]])
    assert motion_label(torch.arange(4), cut) == ("moving right", 1.0)
    assert motion_label(torch.tensor([7]), boxes_at([1])) == ("standing still", 0.0)
    assert motion_label(t, boxes_at([0, 0.2, 0.4, 0.6, 0.8]), still_speed=0.1)[0] == \
        "moving right"
    assert TUBE_ACTIONS == ("standing still", "moving left", "moving right")


def test_least_squares_slope_vs_numpy():
    np = pytest.importorskip("numpy")
    g = torch.Generator().manual_seed(0)
    for _ in range(10):
        t = torch.sort(torch.randperm(30, generator=g)[:8]).values
        x1 = torch.randn(8, generator=g, dtype=F64) * 3 + 0.7 * t
        b = torch.stack([x1, torch.zeros(8, dtype=F64), x1 + 5, torch.ones(8, dtype=F64)], 1)
        _, vx = motion_label(t, b)
        assert vx == pytest.approx(np.polyfit(t.numpy(), x1.numpy(), 1)[0], abs=1e-9)


def frame(ids, xs):
    return torch.tensor(ids, dtype=torch.long), boxes_at(xs).reshape(-1, 4)


TRACKS = [frame([1, 2], [0, 20]), frame([1, 2], [1, 20]), frame([1], [2]),
          frame([1, 3], [3, 40]), frame([2, 3], [20, 38])]


def test_action_tubes_by_hand():
    tubes = action_tubes(TRACKS, min_length=2)
    assert [t.track_id for t in tubes] == [1, 2, 3]
    one, two, three = tubes
    assert one.frames.tolist() == [0, 1, 2, 3] and one.boxes[:, 0].tolist() == [0, 1, 2, 3]
    assert (one.label, one.speed) == ("moving right", 1.0) and len(one) == 4
    assert two.frames.tolist() == [0, 1, 4] and two.label == "standing still"
    assert (three.label, three.speed) == ("moving left", -2.0)
    assert [t.track_id for t in action_tubes(TRACKS, min_length=3)] == [1, 2]


def test_tube_label_accuracy_by_hand():
    gt = [frame([5, 6], [0, 40]), frame([5, 6], [1, 38]), frame([5, 6], [2, 36])]
    velocity = torch.zeros(6, 2)
    velocity[4, 0], velocity[5, 0] = 1.0, -2.0  # ids 5 and 6
    pred = [frame([1, 2], [0, 40]), frame([1, 2], [1, 40]), frame([1, 2], [2, 40])]
    tubes = action_tubes(pred, min_length=2)  # 1 moving right (right), 2 still (wrong)
    assert tube_label_accuracy(tubes, gt, velocity) == (0.5, 2)
    away = action_tubes([frame([9], [60])] * 3, min_length=2)  # overlaps nothing: wrong
    assert tube_label_accuracy(away, gt, velocity) == (0.0, 1)
    acc, n = tube_label_accuracy([], gt, velocity)
    assert n == 0 and acc != acc  # NaN


def test_bad_input():
    t = torch.arange(3)
    with pytest.raises(ValueError, match="frames and boxes must have the same length L"):
        motion_label(t, boxes_at([0, 1]))
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\]"):
        motion_label(t, torch.zeros(3, 5))
    with pytest.raises(TypeError, match="frames must be an integer Tensor"):
        motion_label(t.double(), boxes_at([0, 1, 2]))
    with pytest.raises(ValueError, match="frames must hold at least one frame"):
        motion_label(t[:0], torch.zeros(0, 4, dtype=F64))
    with pytest.raises(ValueError, match="still_speed must be > 0"):
        motion_label(t, boxes_at([0, 1, 2]), still_speed=0)
    with pytest.raises(ValueError, match=r"tracks\[0\]: ids and boxes must have the same"):
        action_tubes([(torch.tensor([1, 2]), boxes_at([0]))])
    with pytest.raises(ValueError, match="min_length must be positive"):
        action_tubes(TRACKS, min_length=0)
    with pytest.raises(ValueError, match=r"gt_velocity must be Tensor\[N, 2\]"):
        tube_label_accuracy([], TRACKS, torch.zeros(3, 3))
    with pytest.raises(ValueError, match="tube 1 names frame 2, but gt has 2 frames"):
        tube_label_accuracy(action_tubes(TRACKS), TRACKS[:2], torch.zeros(3, 2))
