"""ShapesWorld action videos: contract, determinism, the actions themselves, bad input."""

import pytest
import torch
from torch.testing import assert_close

from coursekit.data import render_scene
from coursekit.data import video as vid
from coursekit.data.layout import _rotate
from coursekit.data.video import (
    ACTIONS,
    APPEARANCE_ACTIONS,
    MOTION_ACTIONS,
    MOTION_PAIRS,
    NUM_ACTIONS,
    action_id,
    render_videos,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(scope="module")
def batch():
    return render_videos(range(22), size=32, num_frames=24)


def test_contract(batch):
    B, T, S = 22, 24, 32
    assert batch.video.shape == (B, T, 3, S, S) and batch.video.dtype == torch.float32
    assert batch.video.min() >= 0 and batch.video.max() <= 1
    assert batch.label.tolist() == [s % NUM_ACTIONS for s in range(B)]
    assert batch.mask.shape == (B, T, S, S) and batch.mask.dtype == torch.bool
    assert batch.mask.flatten(2).any(2).all()  # the actor is in every frame
    assert batch.boxes.shape == (B, T, 4)
    assert batch.frames.tolist() == [list(range(T))] * B
    assert len(batch) == B and batch.num_frames == T and batch.size == S
    assert batch.motion_only.tolist() == [s % NUM_ACTIONS >= 3 for s in range(B)]
    assert sorted(APPEARANCE_ACTIONS + MOTION_ACTIONS) == list(range(NUM_ACTIONS))
    assert [ACTIONS[a] for a, _ in MOTION_PAIRS] == ["move_left", "rotate_cw", "grow",
                                                     "approach"]


def test_boxes_by_hand(batch):
    m = batch.mask[5, 3]  # (H, W)
    ys, xs = torch.nonzero(m, as_tuple=True)
    expected = [xs.min().item(), ys.min().item(), xs.max().item() + 1, ys.max().item() + 1]
    assert batch.boxes[5, 3].tolist() == expected


def test_deterministic_and_batch_independent(batch):
    again = render_videos([13, 4], size=32, num_frames=24)
    assert torch.equal(again.video[0], batch.video[13])
    assert torch.equal(again.video[1], batch.video[4])
    assert torch.equal(again.mask[0], batch.mask[13])


def test_background_is_the_shapesworld_scene():
    b = render_videos([7, 30], size=48, num_frames=6)
    for i, seed in enumerate([7, 30]):
        scene = render_scene(seed, size=48, num_things=0, p_crowd=0).image  # (3, H, W)
        bg = ~b.mask[i]  # (T, H, W)
        frames = b.video[i].permute(1, 0, 2, 3)  # (3, T, H, W)
        expected = scene[:, None].expand_as(frames)
        assert torch.equal(frames[:, bg], expected[:, bg])
        assert (frames[:, b.mask[i]] != expected[:, b.mask[i]]).any(0).float().mean() > 0.5


def test_frames_are_slices_of_the_full_video(batch):
    frames = torch.tensor([[0, 2, 4, 6], [10, 12, 14, 16], [23, 0, 5, 5]])
    part = render_videos([3, 8, 10], size=32, num_frames=24, frames=frames)
    for i, seed in enumerate([3, 8, 10]):
        assert torch.equal(part.video[i], batch.video[seed, frames[i]])
    same = render_videos([3, 8], size=32, num_frames=24, frames=torch.arange(0, 8, 2))
    assert torch.equal(same.video, batch.video[[3, 8]][:, 0:8:2])


@pytest.mark.parametrize("pair", MOTION_PAIRS)
def test_pair_is_the_same_video_backwards(pair):
    a, b = pair
    forward = render_videos([5, 6], size=32, num_frames=20, actions=[a, a])
    backward = render_videos([5, 6], size=32, num_frames=20, actions=[b, b])
    assert torch.equal(backward.video, forward.video.flip(1))
    assert backward.label.tolist() == [b, b]
    # so every frame of one is a frame of the other: one frame cannot tell them apart
    assert_close(backward.video.sum(1), forward.video.sum(1), rtol=0, atol=1e-5)


def _centre_and_area(mask):
    """Centroid x, y and area of each frame's mask [T, H, W] (float64)."""
    ys, xs = torch.meshgrid(torch.arange(mask.shape[1]), torch.arange(mask.shape[2]),
                            indexing="ij")
    m = mask.double()
    area = m.sum((1, 2))
    return (m * xs).sum((1, 2)) / area, (m * ys).sum((1, 2)) / area, area


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_actions_do_what_they_say(seed):
    seeds = [seed] * 8
    actions = [action_id(n) for n in ("move_left", "move_right", "grow", "shrink", "approach",
                                      "recede", "rotate_cw", "rotate_ccw")]
    b = render_videos(seeds, size=64, num_frames=16, actions=actions)
    stats = [_centre_and_area(b.mask[i]) for i in range(8)]
    first_last = [[(v[-1] - v[0]).item() for v in s] for s in stats]  # dx, dy, d area
    (lx, _, _), (rx, _, _), (_, _, ga), (_, _, sa), (_, ay, aa), (_, ry, ra) = first_last[:6]
    assert lx < -0.3 * vid.SHIFT * 64 and rx > 0.3 * vid.SHIFT * 64
    assert ga > 0 and sa < 0 and aa > 0 and ra < 0
    assert ay > 5 and ry < -5
    for i in (6, 7):  # rotations stay in place, keep their area (to the pixel grid)
        dx, dy, da = first_last[i]
        assert abs(dx) < 1.5 and abs(dy) < 1.5 and abs(da) < 0.2 * stats[i][2][0]


def test_rotation_sense():
    # on screen (y down) a positive angle turns +x towards +y: clockwise
    p = _rotate(torch.tensor([[1.0, 0.0]], dtype=torch.float64), torch.tensor(0.1,
                                                                            dtype=torch.float64))
    assert p[0, 1] > 0
    u = vid._uniforms([0, 0])
    labels = torch.tensor([action_id("rotate_cw"), action_id("rotate_ccw")])
    assert vid._backwards(u, labels).tolist() == [False, True]  # ccw: cw played backwards
    q = torch.linspace(0, 1, 5, dtype=torch.float64).expand(2, 5)
    pose = vid._trajectory(u, labels, q, 64)
    assert (pose["angle"].diff(dim=1) > 0).all()  # the forward video turns clockwise


def test_the_actor_pauses_once():
    F = 40
    b = render_videos(range(33, 44), size=32, num_frames=F)  # every class once
    u = vid._uniforms(list(range(33, 44)))
    progress = vid._progress(u, F)  # (B, F) of the forward videos
    backwards = vid._backwards(u, b.label)
    for i in range(len(b)):
        paused = progress[i].diff() == 0  # (F - 1,) steps without progress
        paused = paused.flip(0) if backwards[i] else paused
        n = int(paused.sum())
        assert int(F * vid.PAUSE[0]) <= n <= int(F * vid.PAUSE[1]), (i, n)
        assert torch.nonzero(paused.int().diff()).numel() <= 2  # one pause
        still = (b.video[i, 1:] == b.video[i, :-1]).flatten(1).all(1)  # (F - 1,)
        assert still[paused].all()  # in the pause the frames do not change
        assert not still.all()


def test_progress_by_hand():
    # u = 0: the shortest pause (30% of 10 frames: 3 steps) at the start
    p = vid._progress(torch.tensor([[0.0, 0.0]], dtype=torch.float64), 10)
    assert_close(p, torch.tensor([[0, 0, 0, 0, 1 / 6, 2 / 6, 3 / 6, 4 / 6, 5 / 6, 1]],
                                 dtype=torch.float64))
    # u = (1, 1): the longest pause (60%: 6 steps) at the end
    p = vid._progress(torch.tensor([[1.0, 1.0]], dtype=torch.float64), 10)
    assert_close(p, torch.tensor([[0, 1 / 3, 2 / 3, 1, 1, 1, 1, 1, 1, 1]], dtype=torch.float64))


@pytest.mark.parametrize("device", DEVICES)
def test_device(device):
    cpu = render_videos([1, 2], size=32, num_frames=6)
    dev = render_videos([1, 2], size=32, num_frames=6, device=device)
    assert dev.video.device.type == device
    assert_close(dev.video.cpu(), cpu.video, atol=1e-6, rtol=0)


def test_action_id():
    assert action_id("ball") == 0 and action_id("rotate_ccw") == 6
    with pytest.raises(ValueError, match="name must be one of"):
        action_id("swim")
    with pytest.raises(TypeError, match="name must be a str"):
        action_id(3)


def test_bad_input():
    with pytest.raises(ValueError, match="seeds must be a non-empty"):
        render_videos([])
    with pytest.raises(TypeError, match=r"seed must be an int.*seeds\[1\] = 1.5"):
        render_videos([0, 1.5])
    with pytest.raises(TypeError, match="seeds must be"):
        render_videos(torch.rand(3))
    with pytest.raises(ValueError, match=r"size must be an int in \[32, 128\], got 16"):
        render_videos([0], size=16)
    with pytest.raises(ValueError, match="num_frames"):
        render_videos([0], num_frames=1)
    with pytest.raises(ValueError, match=r"actions must be B = 2 action ids.*Tensor\[1\]"):
        render_videos([0, 1], actions=[2])
    with pytest.raises(ValueError, match=r"actions must be .*got \[0, 11\]"):
        render_videos([0, 1], actions=[0, 11])
    with pytest.raises(TypeError, match="actions must be"):
        render_videos([0], actions=torch.tensor([0.5]))
    with pytest.raises(ValueError, match=r"frames must be frame indices in \[0, 9\].*to 10"):
        render_videos([0], num_frames=10, frames=[0, 10])
    with pytest.raises(ValueError, match=r"frames must be .*Tensor\[B = 2, T\].*\[3, 4\]"):
        render_videos([0, 1], num_frames=10, frames=torch.zeros(3, 4, dtype=torch.long))
