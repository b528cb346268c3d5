"""Prompts, targets and simulated clicks on ShapesWorld (coursekit/sam/data.py)."""

import pytest
import torch

from coursekit.data.shapesworld import render_batch
from coursekit.sam.data import (
    center_click,
    center_pixel,
    crowd_circle_ids,
    error_region_click,
    sample_prompts,
    scene_segments,
)

SEEDS = [3, 10, 18, 28]  # each has a crowd group at 128 px


@pytest.fixture(scope="module")
def scenes():
    return render_batch(SEEDS, size=128)


def test_crowd_circles_cover_exactly_the_crowd(scenes):
    ids = crowd_circle_ids(SEEDS, 128)
    for j in range(len(SEEDS)):
        crowd = scenes.masks[j][scenes.iscrowd[j]]
        assert len(crowd) == 1
        assert torch.equal(ids[j] > 0, crowd[0])
        assert 4 <= len(ids[j].unique()) - 1 <= 8  # 4-8 circles, some may be hidden


def test_segments_answers_are_part_or_whole(scenes):
    segs = scene_segments(scenes, crowd_circle_ids(SEEDS, 128))
    j = 0
    seg = segs[j]
    person = [k for k, lab in enumerate(scenes.labels[j].tolist()) if lab == 7][0]
    ys, xs = (scenes.masks[j][person] & (scenes.parts[j] == 2)).nonzero(as_tuple=True)  # torso
    answers = seg.answers(int(ys[0]), int(xs[0]))
    assert len(answers) == 2
    assert torch.equal(answers[1], scenes.masks[j][person])
    assert torch.equal(answers[0], (scenes.parts[j] == 2) & scenes.masks[j][person])
    crowd = int(scenes.iscrowd[j].nonzero()[0, 0])
    ys, xs = scenes.masks[j][crowd].nonzero(as_tuple=True)
    small, whole = seg.answers(int(ys[0]), int(xs[0]))
    assert torch.equal(whole, scenes.masks[j][crowd]) and (small & ~whole).sum() == 0
    assert 0 < small.sum() < whole.sum()
    sky = (scenes.semantic[j] == 0).nonzero()[0]
    assert len(seg.answers(int(sky[0]), int(sky[1]))) == 1
    assert seg.is_thing.sum() == len(scenes.masks[j])


def test_sample_prompts_click_inside_target_and_box_around_it(scenes):
    segs = scene_segments(scenes, crowd_circle_ids(SEEDS, 128))
    g = torch.Generator().manual_seed(0)
    pb = sample_prompts(segs, 8, g, box_noise=0.0)
    assert pb.points.shape == (32, 2) and pb.targets.shape == (32, 128, 128)
    for p, box, t in zip(pb.points, pb.boxes, pb.targets, strict=True):
        ys, xs = t.nonzero(as_tuple=True)
        assert box.tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
        # the click lies in the whole object; in the target unless it is its part's whole
        assert t.any()
        x, y = int(p[0]), int(p[1])
        assert 0 <= x < 128 and 0 <= y < 128
    assert pb.ambiguous.any() and not pb.ambiguous.all()
    # the other answer: the target itself where the click has one, else part <-> whole
    differ = (pb.others != pb.targets).flatten(1).any(dim=1)
    assert torch.equal(differ, pb.ambiguous)
    for t, o, a in zip(pb.targets, pb.others, pb.ambiguous, strict=True):
        if a:  # one of the two lies inside the other
            inner, outer = (t, o) if t.sum() < o.sum() else (o, t)
            assert not (inner & ~outer).any()
    again = sample_prompts(segs, 8, torch.Generator().manual_seed(0), box_noise=0.0)
    assert torch.equal(again.points, pb.points) and torch.equal(again.targets, pb.targets)


def test_center_pixel_hand_computed():
    m = torch.zeros(7, 9, dtype=torch.bool)
    m[1:6, 2:7] = True  # a 5 x 5 square: the centre pixel (3, 4) is 3 from the boundary
    assert center_pixel(m) == (3, 4)
    assert center_click(m).tolist() == [4.0, 3.0]
    full = torch.ones(5, 5, dtype=torch.bool)  # the image border counts as boundary
    assert center_pixel(full) == (2, 2)
    assert center_pixel(torch.ones(3, 5, dtype=torch.bool)) == (1, 1)  # ties: the first
    with pytest.raises(ValueError, match="mask must have at least one True pixel"):
        center_pixel(torch.zeros(3, 3, dtype=torch.bool))
    with pytest.raises(TypeError, match="mask must be a bool"):
        center_pixel(torch.zeros(3, 3))


def test_error_region_click_hand_computed():
    target = torch.zeros(2, 8, 8, dtype=torch.bool)
    target[:, 2:6, 2:6] = True
    pred = torch.zeros_like(target)
    pred[0] = target[0]
    pred[0, :, 6:] = True  # spills over on the right: a background click there
    pred[1, 2:6, 2:4] = True  # misses the right half: a foreground click there
    pts, labels = error_region_click(pred, target)
    assert labels.tolist() == [0, 1]
    assert pts[0, 0] >= 6 and pts[1, 0] >= 4 and 2 <= pts[1, 1] < 6
    perfect, lab = error_region_click(target, target)  # no error: click the target's centre
    assert lab.tolist() == [1, 1] and target[0, int(perfect[0, 1]), int(perfect[0, 0])]
    g = torch.Generator().manual_seed(1)
    pts, labels = error_region_click(pred, target, g)
    for b in range(2):
        x, y = int(pts[b, 0]), int(pts[b, 1])
        assert (pred[b] ^ target[b])[y, x] and labels[b] == int(target[b, y, x])


def test_error_region_click_bad_input():
    t = torch.zeros(1, 4, 4, dtype=torch.bool)
    with pytest.raises(TypeError, match="pred must be a bool"):
        error_region_click(t.float(), t)
    with pytest.raises(ValueError, match=r"target must have the shape of pred"):
        error_region_click(t, torch.zeros(1, 4, 5, dtype=torch.bool))
    with pytest.raises(TypeError, match="scenes must be a SceneBatch"):
        scene_segments([1, 2])
