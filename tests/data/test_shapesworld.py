"""ShapesWorld: the scene contract, determinism, geometry by hand, occlusion, flow, devices."""

import dataclasses
import hashlib
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from scene_contract import expected_fields

from coursekit.data import (
    CATEGORIES,
    NUM_CLASSES,
    STUFF_IDS,
    THING_IDS,
    Scene,
    category_id,
    category_name,
    render_batch,
    render_scene,
)
from coursekit.data import layout as lay
from coursekit.data.draw import _disk, _polygon, _primitives, _rasterise, paint_things
from coursekit.data.persons import _capsule, part_uv

DENSE = ["image", "semantic", "instance_ids", "parts", "uv", "depth", "next_image", "flow",
         "flow_valid"]
LISTS = ["boxes", "labels", "masks", "iscrowd", "keypoints", "person_index"]


@pytest.fixture(scope="module")
def batch():
    """40 scenes with many persons and crowds, so every branch is drawn."""
    return render_batch(range(40), 64, num_things=(3, 6), p_person=0.5, p_crowd=0.5)


def _grid(h, w):
    """Pixel-centre grids X [1, 1, w], Y [1, h, 1]."""
    return (torch.arange(w) + 0.5).view(1, 1, w), (torch.arange(h) + 0.5).view(1, h, 1)


# ---------------------------------------------------------------- hand-computed cases


def test_categories_by_hand():
    names = ["sky", "grass", "water", "wall", "circle", "square", "triangle", "person"]
    assert [c["name"] for c in CATEGORIES] == names
    assert [c["id"] for c in CATEGORIES] == list(range(8)) and NUM_CLASSES == 8
    assert THING_IDS == [4, 5, 6, 7] and STUFF_IDS == [0, 1, 2, 3]
    assert category_id("person") == 7 and category_name(5) == "square"


def test_disk_by_hand():
    # Disk of radius 1 centred on the corner (2, 2): the pixel centres (1.5 | 2.5, 1.5 | 2.5)
    # are at distance sqrt(0.5) < 1, the next ones at sqrt(0.5^2 + 1.5^2) > 1. With a rim of
    # 0.75 pixel the inner radius is 0.25, so all four are rim pixels.
    X, Y = _grid(4, 4)
    inside, rim = _disk(X, Y, torch.tensor(2.0), torch.tensor(2.0), torch.tensor(1.0), 0.75)
    expected = torch.tensor([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]],
                            dtype=torch.bool)
    assert torch.equal(inside[0], expected) and torch.equal(rim[0], expected)
    inside, _ = _disk(X, Y, torch.tensor(2.0), torch.tensor(2.0), torch.tensor(-1.0), 0.75)
    assert not inside.any()  # r <= 0: empty


def test_polygon_by_hand():
    X, Y = _grid(4, 4)
    square = torch.tensor([[[1.0, 1.0], [3.0, 1.0], [3.0, 3.0], [1.0, 3.0]]])  # clockwise
    d = _polygon(X, Y, square)
    inside = torch.tensor([[0, 0, 0, 0], [0, 1, 1, 0], [0, 1, 1, 0], [0, 0, 0, 0]],
                          dtype=torch.bool)
    assert torch.equal(d[0] >= 0, inside)
    assert d[0, 1, 1].item() == 0.5  # centre (1.5, 1.5) is 0.5 from the nearest edges
    # Triangle (0,0) (4,0) (0,4): inside iff x + y <= 4 for pixel centres (x, y).
    tri = torch.tensor([[[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]]])
    expected = torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0], [1, 1, 0, 0], [1, 0, 0, 0]],
                            dtype=torch.bool)
    assert torch.equal(_polygon(X, Y, tri)[0] >= 0, expected)


def test_capsule_by_hand():
    # Segment (1, 2) -> (5, 2), radius 1, on a 4 x 7 grid: rows 1-2 (|dy| = 0.5) from
    # x = 1 - sqrt(0.75) to 5 + sqrt(0.75), i.e. columns 0-5; rows 0 and 3 (|dy| = 1.5) are out.
    X, Y = _grid(4, 7)
    seg = torch.tensor([1.0, 2.0, 1.0, 0.0, 4.0, 1.0])  # a, unit direction, length, r
    d2, t, s = _capsule(X, Y, seg)
    expected = torch.zeros(4, 7, dtype=torch.bool)
    expected[1:3, 0:6] = True
    assert torch.equal(d2[0] <= 1.0, expected)
    assert d2[0, 1, 0].item() == 0.5  # pixel (1, 0): t = -0.5 -> nearest point is a: 0.25 + 0.25
    # U along the limb, V across: the centre (3.5, 2.5) is at t = 2.5 of 4 and s = -0.5 of
    # r = 1.
    uv = part_uv(torch.tensor([2]), torch.tensor([3.5]), torch.tensor([2.5]), seg[None])
    torch.testing.assert_close(uv[:, 0], torch.tensor([2.5 / 4, 0.25]))


def test_ground_depth_by_hand():
    # Camera 1.6 m high, focal 64 px: the row 20 px below the horizon is 1.6 * 64 / 20 = 5.12 m
    # away.
    depth = lay.ground_depth(torch.tensor([42.5]), torch.tensor([22.5]), 64)
    torch.testing.assert_close(depth, torch.tensor([5.12]))
    far = lay.ground_depth(torch.tensor([22.6]), torch.tensor([22.5]), 64)
    assert far.item() == pytest.approx(lay.MAX_GROUND_DEPTH)  # clamped near the horizon


def test_coco_schema_is_the_pose_packages():
    # one copy of the COCO keypoint schema: the data package's names are aliases of the
    # objects in coursekit.pose.coco_keypoints, and the COCO export writes them
    import coursekit.data as data
    from coursekit.data import persons
    from coursekit.data.coco import coco_categories
    from coursekit.pose import coco_keypoints as ck

    assert persons.KEYPOINT_NAMES is ck.COCO_KEYPOINT_NAMES is data.KEYPOINT_NAMES
    assert persons.SKELETON is ck.COCO_SKELETON is data.SKELETON
    assert KEYPOINT_NAMES_BY_HAND == list(data.KEYPOINT_NAMES)
    person = coco_categories()[-1]
    assert person["keypoints"] == list(ck.COCO_KEYPOINT_NAMES)
    assert person["skeleton"] == [list(p) for p in ck.COCO_SKELETON]
    assert person["skeleton"][0] == [16, 14]  # 1-based, as in COCO's json


KEYPOINT_NAMES_BY_HAND = [
    "nose", "left_eye", "right_eye", "left_ear", "right_ear", "left_shoulder",
    "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hip",
    "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
]


def test_no_import_cycle():
    # coursekit.data and coursekit.viz import coursekit.pose.coco_keypoints, which imports
    # only torch, coursekit.validators and coursekit.upsampling: any first import works,
    # and none of them pulls in a model package
    code = (
        "import importlib, sys\n"
        "orders = [['coursekit.data'], ['coursekit.data.persons'], ['coursekit.data.coco'],\n"
        "          ['coursekit.viz'], ['coursekit.viz.overlay', 'coursekit.data'],\n"
        "          ['coursekit.pose', 'coursekit.data', 'coursekit.viz']]\n"
        "for order in orders:\n"
        "    for name in [m for m in sys.modules if m.startswith('coursekit')]:\n"
        "        del sys.modules[name]\n"
        "    for name in order:\n"
        "        importlib.import_module(name)\n"
        "    heavy = sorted(m for m in sys.modules if m.split('.')[:2][-1] in\n"
        "                   ('instance', 'segmentation', 'detection', 'panoptic'))\n"
        "    assert not heavy, (order, heavy)\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


# ---------------------------------------------------------------- the contract


@pytest.mark.parametrize("difficulty", ["easy", "hard"])
@pytest.mark.parametrize("size", [32, 64, 96])
def test_contract_shapes_and_dtypes(size, difficulty):
    """The same fields, shapes and dtypes for easy and hard scenes."""
    s = render_scene(3, size, p_person=1.0, p_crowd=1.0, difficulty=difficulty)
    H = W = size
    N, P = len(s.labels), len(s.person_index)
    expected = expected_fields(H, W, N, P)
    for name, (shape, dtype) in expected.items():
        t = getattr(s, name)
        assert tuple(t.shape) == shape and t.dtype == dtype, (name, t.shape, t.dtype)
    assert [f.name for f in dataclasses.fields(Scene)] == DENSE[:3] + LISTS[:4] + [
        "keypoints", "person_index", "parts", "uv", "depth", "next_image", "flow",
        "flow_valid", "seed", "size"]
    assert P >= 1 and s.seed == 3 and s.size == size
    assert N >= (6 if difficulty == "hard" else 1)
    assert 0 <= s.image.min() and s.image.max() <= 1
    assert 0 <= s.next_image.min() and s.next_image.max() <= 1
    # never 255 in a rendered scene
    assert set(s.semantic.unique().tolist()) <= set(range(NUM_CLASSES))


def test_determinism():
    a, b = render_scene(11), render_scene(11)
    for f in dataclasses.fields(Scene):
        same = torch.equal(torch.as_tensor(getattr(a, f.name)), torch.as_tensor(getattr(b, f.name)))
        assert same, f.name
    c = render_scene(12)
    assert not torch.equal(a.image, c.image) and not torch.equal(a.semantic, c.semantic)


def test_render_scene_equals_render_batch():
    b = render_batch([7, 123, 5], 64)
    assert len(b) == 3 and b.seeds == [7, 123, 5]
    for i, seed in enumerate([7, 123, 5]):
        one, alone = b.scene(i), render_scene(seed)
        for name in DENSE + LISTS:
            assert torch.equal(getattr(one, name), getattr(alone, name)), (seed, name)
    assert torch.equal(render_batch([123]).scene(0).image, render_scene(123).image)
    # a tensor of seeds works too
    assert torch.equal(render_batch(torch.tensor([7, 123, 5])).image, b.image)


@pytest.fixture(scope="module")
def hard_batch():
    """24 hard scenes (clutter, occlusion, texture, noise, light): the same contract."""
    return render_batch(range(24), 64, p_person=0.5, p_crowd=0.5, difficulty="hard")


@pytest.mark.parametrize("scenes", ["batch", "hard_batch"])
def test_semantic_instances_masks_boxes(scenes, request):
    batch = request.getfixturevalue(scenes)
    for i in range(len(batch)):
        s = batch.scene(i)
        assert ((s.instance_ids > 0) == torch.isin(s.semantic, torch.tensor(THING_IDS))).all()
        assert torch.equal(s.masks.any(0), s.instance_ids > 0)
        assert set(s.labels.tolist()) <= set(THING_IDS)
        for k, m in enumerate(s.masks):
            assert m.any() and (s.instance_ids[m] == k + 1).all()
            assert (s.semantic[m] == s.labels[k]).all()
            ys, xs = torch.nonzero(m, as_tuple=True)
            # pixel edges
            assert s.boxes[k].tolist() == [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]
            assert s.depth[m].unique().numel() == 1  # one depth per thing
        assert (s.labels[s.iscrowd] == category_id("circle")).all()
    assert sum(int(c.sum()) for c in batch.iscrowd) >= 5  # crowds do occur


def test_keypoints(batch):
    for i in range(len(batch)):
        s = batch.scene(i)
        assert (s.labels[s.person_index] == category_id("person")).all()
        for row, kp in zip(s.person_index.tolist(), s.keypoints, strict=True):
            x, y, v = kp.unbind(-1)
            assert set(v.unique().tolist()) <= {0.0, 1.0, 2.0}
            on = v > 0
            assert ((x[on] >= 0) & (x[on] < s.size) & (y[on] >= 0) & (y[on] < s.size)).all()
            assert (x[~on] == 0).all() and (y[~on] == 0).all()
            seen = s.instance_ids[y[on].long(), x[on].long()]
            # v = 1: a thing drawn after the person (instances are numbered far to near) covers it.
            assert torch.equal(v[on] == 1, seen > row + 1)
    v = torch.cat([k[..., 2].flatten() for k in batch.keypoints])
    assert (v == 2).sum() > 100 and (v == 1).sum() > 0


def test_depth_occlusion(batch):
    for i in range(0, len(batch), 3):
        s = batch.scene(i)
        stuff = render_scene(s.seed, 64, num_things=0, p_crowd=0.0)  # same layout, no things
        thing = s.instance_ids > 0
        assert (stuff.instance_ids == 0).all()
        assert torch.equal(stuff.semantic[~thing], s.semantic[~thing])
        # things in front of the stuff they cover
        assert (s.depth[thing] < stuff.depth[thing]).all()
        assert torch.equal(s.depth[~thing], stuff.depth[~thing])
        for m in s.masks:
            assert s.depth[m].unique().numel() == 1  # one depth per thing
        sky = stuff.semantic == 0
        assert (stuff.depth[sky] == lay.SKY_DEPTH).all()
        assert (stuff.depth[~sky] < lay.SKY_DEPTH).all()


def test_overlapping_things_show_the_nearest():
    """Draw each thing of a layout alone (its full mask); where several overlap, the visible one
    is nearest."""
    L = lay.sample_layout(list(range(12)), 64, 4, 6, 0.5, 0.5)
    slot = paint_things(L, torch.device("cpu"))[0] >> 4  # (B, H, W): the slot drawn on top, + 1
    overlaps = 0
    for r in range(L.kind.shape[1]):
        alone = dataclasses.replace(L, active=L.active & (torch.arange(L.kind.shape[1]) == r))
        full = (paint_things(alone, torch.device("cpu"))[0] >> 4) > 0  # (B, H, W)
        depths = torch.cat([torch.zeros(len(L.depth), 1, dtype=torch.float64), L.depth], 1)
        winner_depth = depths.gather(1, slot.flatten(1).long())
        covered = full.flatten(1) & (slot.flatten(1) != r + 1)
        overlaps += int(covered.sum())
        own = L.depth[:, r, None].expand_as(winner_depth)
        assert (winner_depth[covered] <= own[covered]).all()
        # covered only by slots drawn later
        assert (slot.flatten(1)[full.flatten(1)] >= r + 1).all()
    assert overlaps > 0


@pytest.mark.parametrize("size", [32, 64, 101])
def test_windows_hold_their_primitives(size):
    """Each primitive is drawn in a small window: 4 more pixels on every side add nothing."""
    L = lay.sample_layout(list(range(40)), size, 4, 8, 0.5, 0.8)
    for g in _primitives(L):
        geo = g["geo"].float()
        counts = []
        for grow in (0, 4):
            ar = torch.arange(g["n"] + 2 * grow)
            X = (g["origin"][:, 0, None, None] - grow + ar + 0.5).float()
            Y = (g["origin"][:, 1, None, None] - grow + ar[:, None] + 0.5).float()
            counts.append(_rasterise(g["type"], geo, X, Y, 0.75)[0].sum((1, 2)))
        assert torch.equal(counts[0], counts[1]) and (counts[0] > 0).any(), g["type"]


def test_parts_and_uv(batch):
    person = batch.semantic == category_id("person")
    assert torch.equal(batch.parts > 0, person)  # parts exactly on person pixels
    assert batch.parts.max() <= 10
    assert set(batch.parts[person].unique().tolist()) == set(range(1, 11))
    assert batch.uv.min() >= 0 and batch.uv.max() <= 1
    assert (batch.uv.permute(1, 0, 2, 3)[:, ~person] == 0).all()
    assert batch.uv[:, 0][person].std() > 0.2 and batch.uv[:, 1][person].std() > 0.2


def test_flow_warps_frame2_onto_frame1(batch):
    """Sample frame 2 at p + flow[p] with grid_sample: it equals frame 1 wherever flow_valid."""
    B, _, H, W = batch.image.shape
    ys, xs = torch.meshgrid(torch.arange(H) + 0.5, torch.arange(W) + 0.5, indexing="ij")
    gx = (xs + batch.flow[:, 0]) / W * 2 - 1
    gy = (ys + batch.flow[:, 1]) / H * 2 - 1
    warped = F.grid_sample(batch.next_image, torch.stack([gx, gy], -1), align_corners=False)
    err = (warped - batch.image).abs().amax(1)  # (B, H, W)
    assert err[batch.flow_valid].max() < 1e-5
    assert batch.flow_valid.float().mean() > 0.8
    thing = batch.instance_ids > 0
    flow = batch.flow.permute(1, 0, 2, 3)  # (2, B, H, W)
    assert (flow[:, ~thing] == 0).all()  # static background
    assert (flow.abs() <= lay.max_speed(64)).all() and (flow[:, thing] != 0).any()
    assert torch.equal(flow, flow.round())  # integer velocities: the warp is exact
    assert not torch.equal(batch.image, batch.next_image)


def test_stuff_textures_and_regions(batch):
    stuff = batch.semantic < 4
    for c in STUFF_IDS:
        assert (batch.semantic == c).any()  # sky, grass, water and wall all appear
    for c in (0, 1):  # textured, not flat
        assert batch.image.permute(1, 0, 2, 3)[:, batch.semantic == c].std(1).min() > 0.02
    assert stuff.any()


def test_crowd_and_counts():
    b = render_batch(range(20), 64, num_things=3, p_person=0.0, p_crowd=1.0)
    for labels, crowd in zip(b.labels, b.iscrowd, strict=True):
        assert len(labels) <= 4 and crowd.sum() <= 1
    assert sum(int(c.sum()) for c in b.iscrowd) >= 15  # a crowd in (almost) every scene
    assert all(7 not in lab.tolist() for lab in b.labels)  # p_person = 0
    empty = render_scene(0, 64, num_things=0, p_crowd=0.0)
    assert len(empty.labels) == 0 and empty.masks.shape == (0, 64, 64)
    assert empty.keypoints.shape == (0, 17, 3)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**40), size=st.sampled_from([32, 48, 64]))
def test_invariants_hypothesis(seed, size):
    s = render_scene(seed, size)
    assert torch.equal(s.masks.any(0), s.instance_ids > 0)
    assert 0 <= s.image.min() and s.image.max() <= 1
    assert torch.equal(s.parts > 0, s.semantic == 7)
    for k, m in enumerate(s.masks):
        assert (s.semantic[m] == s.labels[k]).all()


# The frozen reference for every device: what the CPU renders for seeds 0-5 (p_person 0.6,
# p_crowd 0.5) at the time the lessons' outputs were committed. Lessons depend on the same
# seeds giving the same scenes: integer fields must match bit for bit (sha256 of their bytes),
# float fields to 1e-6 relative (their float64 sums; "to 1e-6 on every device").
FROZEN_INTEGER_SHA256 = {
    "semantic": "96f29e89b804ef76", "instance_ids": "7986348d2d3d9438",
    "parts": "641384a1af5e413c", "flow_valid": "a5ae64b3e7b05b86", "labels": "d3be1e30afcd4d98",
    "masks": "91dd78cd557ef0e8", "iscrowd": "8f4af28758073dd3",
    "person_index": "ed336b34384863b2",
}
FROZEN_FLOAT_SUMS = {
    "image": 35632.893215976655, "uv": 2214.863690884784, "depth": 1064641.317325592,
    "next_image": 35663.939503997564, "flow": 1374.0, "boxes": 2824.0,
    "keypoints": 13668.06626355648,
}


def _sha256(tensors):
    digest = hashlib.sha256()
    for t in tensors:
        t = t.cpu().contiguous()
        digest.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()[:16]


def test_device(device):
    out = render_batch(range(6), 64, p_person=0.6, p_crowd=0.5, device=device)
    assert out.image.device.type == device.type and out.boxes[0].device.type == device.type
    for name, expected in FROZEN_INTEGER_SHA256.items():
        value = getattr(out, name)
        assert _sha256(value if isinstance(value, list) else [value]) == expected, name
    for name, expected in FROZEN_FLOAT_SUMS.items():
        value = getattr(out, name)
        value = value if isinstance(value, list) else [value]
        total = sum(float(t.double().sum()) for t in value)
        assert total == pytest.approx(expected, rel=1e-6), name
    # and torch references on the device itself: grid_sample warps frame 2 onto frame 1,
    # the boxes bound the masks
    H = W = 64
    ys, xs = torch.meshgrid(torch.arange(H, device=device) + 0.5,
                            torch.arange(W, device=device) + 0.5, indexing="ij")
    grid = torch.stack([(xs + out.flow[:, 0]) / W * 2 - 1, (ys + out.flow[:, 1]) / H * 2 - 1], -1)
    warped = F.grid_sample(out.next_image, grid, align_corners=False)
    assert (warped - out.image).abs().amax(1)[out.flow_valid].max() < 1e-5
    for i in range(len(out)):
        s = out.scene(i)
        assert torch.equal(s.masks.any(0), s.instance_ids > 0)
        for k, m in enumerate(s.masks):
            ys, xs = torch.nonzero(m, as_tuple=True)
            edges = torch.stack([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1]).float()
            assert torch.equal(s.boxes[k], edges)
    s = render_scene(2).to(device)
    assert s.masks.device.type == device.type and s.seed == 2
    assert out.to("cpu").scene(1).image.device.type == "cpu"


# ---------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(size=31), ValueError, "size must be an int in \\[32, 512\\], got 31"),
        (dict(size=513), ValueError, "size must be an int"),
        (dict(size=64.0), TypeError, "size must be an int in \\[32, 512\\], got 64.0"),
        (dict(seed=-1), ValueError,
         "seed must be an int in \\[0, 2\\*\\*63\\), got seeds\\[0\\] = -1"),
        (dict(seed=1.5), TypeError, "seed must be an int"),
        (dict(seed=True), TypeError, "seed must be an int"),
        (dict(num_things=(3, 2)), ValueError, "num_things must be an int or \\(min, max\\)"),
        (dict(num_things=-1), ValueError, "num_things must be"),
        (dict(num_things=(0, 13)), ValueError, "num_things must be"),
        (dict(num_things=(1, 2, 3)), TypeError, "num_things must be"),
        (dict(num_things=2.0), TypeError, "num_things must be .*got 2.0"),
        (dict(p_person=1.5), ValueError, "p_person must be a probability in \\[0, 1\\], got 1.5"),
        (dict(p_person="0.5"), TypeError, "p_person must be a probability .*got '0.5'"),
        (dict(p_crowd=-0.1), ValueError, "p_crowd must be a probability"),
        (dict(p_crowd=float("nan")), ValueError, "p_crowd must be a probability"),
    ],
)
def test_bad_input_render_scene(kwargs, error, match):
    seed = kwargs.pop("seed", 0)
    with pytest.raises(error, match=match):
        render_scene(seed, **kwargs)


@pytest.mark.parametrize(
    "fn, args, error, match",
    [
        (render_batch, ([],), ValueError, "seeds must be a non-empty sequence"),
        (render_batch, ("abc",), TypeError, "seeds must be a non-empty sequence"),
        (render_batch, (7,), TypeError, "seeds must be a non-empty sequence of ints, got 7"),
        (render_batch, ([1, "x"],), TypeError, "seeds\\[1\\] = 'x'"),
        (render_batch, (torch.tensor([1.0, 2.0]),), TypeError,
         "seeds must be a sequence of ints or an integer Tensor\\[B\\], got Tensor\\[2\\] float32"),
        (category_id, ("dog",), ValueError, "name must be one of .* got 'dog'"),
        (category_id, (7,), TypeError, "name must be a str .*got 7"),
        (category_name, (8,), ValueError, "id must be a category id in \\[0, 7\\], got 8"),
        (category_name, ("person",), TypeError, "id must be an int category id .*got 'person'"),
    ],
)
def test_bad_input_others(fn, args, error, match):
    with pytest.raises(error, match=match):
        fn(*args)
