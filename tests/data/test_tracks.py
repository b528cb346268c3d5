"""Tracking sequences: ground truth consistent with the pixels, events, determinism, export."""

import pytest
import torch

from coursekit.data import render_scene
from coursekit.data.tracks import (
    TrackSequence,
    render_sequence,
    render_sequences,
    sequence_events,
)
from coursekit.tracking import from_mot_lines, mot_metrics


@pytest.fixture(scope="module")
def seqs():
    return render_sequences(range(8), 16)


def test_ground_truth_matches_the_masks(seqs):
    for s in seqs:
        assert s.images.shape == (16, 3, 64, 64) and s.images.dtype == torch.float32
        assert 0 <= float(s.images.min()) and float(s.images.max()) <= 1
        for t in range(len(s)):
            ids, boxes, masks = s.ids[t], s.boxes[t], s.masks[t]
            assert ids.tolist() == sorted(set(ids.tolist()))
            assert boxes.shape == (len(ids), 4) and masks.shape == (len(ids), 64, 64)
            assert (masks.sum(0) <= 1).all()  # each pixel shows at most one thing
            assert masks.flatten(1).any(1).all()  # every listed thing has a visible pixel
            for box, m in zip(boxes, masks, strict=True):  # tight box, pixel edges
                ys, xs = torch.nonzero(m, as_tuple=True)
                expected = [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
                assert box.tolist() == [float(v) for v in expected]
            assert s.labels[t].tolist() == s.categories[ids - 1].tolist()
            vis = s.visibility[t]
            assert ((vis > 0) & (vis <= 1)).all()
            # a thing hidden in part by another thing is not in full view
            assert (vis[s.occluded[t]] < 1).all()


def test_things_move_at_their_velocity():
    s = render_sequence(7, 30, num_things=1)
    (vx, vy), = s.velocity.tolist()
    # while in full view, the box moves by (vx, vy) per frame up to the pixel grid
    full = [t for t in range(len(s)) if len(s.ids[t]) and float(s.visibility[t][0]) > 0.97
            and 0 < float(s.boxes[t][0, 0]) and float(s.boxes[t][0, 2]) < 64]
    assert len(full) >= 5
    a, b = full[0], full[-1]
    moved = (s.boxes[b][0] - s.boxes[a][0]).tolist()
    assert moved[0] == pytest.approx(vx * (b - a), abs=1.5)
    assert moved[2] == pytest.approx(vx * (b - a), abs=1.5)
    assert moved[1] == pytest.approx(vy * (b - a), abs=1.5)


def test_the_stuff_is_the_scene_of_the_same_seed():
    s = render_sequence(5, 4, num_things=(3, 6))
    scene = render_scene(5, num_things=(3, 6), p_crowd=0.0)
    free = (scene.instance_ids == 0) & ~s.masks[0].any(0)  # no thing in either
    assert free.sum() > 1000
    assert torch.equal(s.images[0][:, free], scene.image[:, free])
    for t in range(1, 4):  # the stuff does not move
        free_t = free & ~s.masks[t].any(0)
        assert torch.equal(s.images[t][:, free_t], s.images[0][:, free_t])


def test_every_kind_of_event_happens():
    total = {}
    for s in render_sequences(range(100, 116), 24):
        for k, v in sequence_events(s).items():
            total[k] = total.get(k, 0) + v
    assert set(total) == {"entries", "exits", "occlusions", "disappearances", "crossings"}
    assert total["entries"] >= 8 and total["exits"] >= 4 and total["crossings"] >= 16
    assert total["occlusions"] >= 16


def _fake(ids_per_frame, centres):
    """A TrackSequence whose frame t holds ids_per_frame[t] with box centres centres[t]."""
    T = len(ids_per_frame)
    boxes = [torch.tensor([[c - 2, 0, c + 2, 4] for c in cs], dtype=torch.float32).reshape(-1, 4)
             for cs in centres]
    ids = [torch.tensor(i, dtype=torch.long) for i in ids_per_frame]
    return TrackSequence(
        images=torch.zeros(T, 3, 8, 8), ids=ids, boxes=boxes,
        labels=[torch.full_like(i, 4) for i in ids],
        masks=[torch.zeros(len(i), 8, 8, dtype=torch.bool) for i in ids],
        visibility=[torch.ones(len(i)) for i in ids],
        occluded=[torch.tensor([k == 2 and t == 1 for k in i], dtype=torch.bool)
                  for t, i in enumerate(ids_per_frame)],
        velocity=torch.zeros(3, 2), categories=torch.full((3,), 4), seed=0, size=8)


def test_events_by_hand():
    # id 1 in every frame, left to right; id 2 from frame 1, crosses id 1 between frames 1
    # and 2, hidden in frame 3, gone after frame 4; id 3 only in frame 0 (exits)
    seq = _fake([[1, 3], [1, 2], [1, 2], [1], [1, 2], [1]],
                [[0, 9], [1, 5], [2, 1], [3], [4, 0], [5]])
    assert sequence_events(seq) == {"entries": 1, "exits": 2, "occlusions": 1,
                                    "disappearances": 1, "crossings": 1}


def test_deterministic_and_batch_independent():
    a = render_sequences([11, 12], 6)
    b = render_sequence(12, 6)
    c = render_sequence(12, 6)
    for x, y in ((a[1], b), (b, c)):
        assert torch.equal(x.images, y.images)
        for t in range(6):
            assert torch.equal(x.ids[t], y.ids[t]) and torch.equal(x.boxes[t], y.boxes[t])
            assert torch.equal(x.masks[t], y.masks[t])
    assert not torch.equal(a[0].images, a[1].images)


def test_frames_and_mot_export(seqs):
    s = seqs[2]
    frames = s.frames()
    assert [f[0].tolist() for f in frames] == [i.tolist() for i in s.ids]
    back = from_mot_lines(s.mot_lines(), num_frames=len(s))
    for (i1, b1), (i2, b2) in zip(frames, back, strict=True):
        assert torch.equal(i1, i2) and torch.allclose(b1, b2)
    m = mot_metrics(frames, back)
    assert m["mota"] == 1.0 and m["idf1"] == 1.0
    half = s.frames(min_visibility=0.5)
    assert all(len(h[0]) <= len(f[0]) for h, f in zip(half, frames, strict=True))
    assert sum(len(h[0]) for h in half) < sum(len(f[0]) for f in frames)


def test_devices(device):
    cpu = render_sequence(4, 5)
    other = render_sequence(4, 5, device=device)
    assert other.images.device.type == device.type
    assert torch.allclose(other.images.cpu(), cpu.images, atol=1e-5)
    for t in range(5):
        assert torch.equal(other.ids[t].cpu(), cpu.ids[t])
        assert torch.equal(other.boxes[t].cpu(), cpu.boxes[t])
    moved = cpu.to(device)
    assert moved.masks[0].device.type == device.type


def test_sizes_and_persons():
    s = render_sequence(1, 3, size=96, num_things=4, p_person=1.0)
    assert s.images.shape == (3, 3, 96, 96)
    assert set(s.categories.tolist()) == {7}


def test_no_things():
    s = render_sequence(2, 3, num_things=0)
    assert s.num_objects == 0 and s.velocity.shape == (0, 2)
    assert all(len(i) == 0 and b.shape == (0, 4) and m.shape == (0, 64, 64)
               for i, b, m in zip(s.ids, s.boxes, s.masks, strict=True))
    assert sequence_events(s)["entries"] == 0


def test_bad_input():
    with pytest.raises(ValueError, match=r"num_frames must be in \[1, 512\]"):
        render_sequence(0, 513)
    with pytest.raises(ValueError, match="num_frames must be positive"):
        render_sequence(0, 0)
    with pytest.raises(TypeError, match="num_frames must be an int"):
        render_sequence(0, 2.5)
    with pytest.raises(ValueError, match="seed must be an int in"):
        render_sequence(-1)
    with pytest.raises(ValueError, match="num_things must be"):
        render_sequence(0, 4, num_things=13)
    with pytest.raises(TypeError, match="seeds must be a non-empty sequence"):
        render_sequences("abc")
    with pytest.raises(ValueError, match="size must be an int in"):
        render_sequence(0, 4, size=16)
