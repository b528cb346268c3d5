"""Property tests (hypothesis) for the last public functions without one: crossing limbs
(coursekit.pose), category and action names, tracking sequences, their events and action
videos (coursekit.data), part / UV / panoptic colours and track trails (coursekit.viz) and
the frame checks of coursekit.tracking.

Drawn: persons (0 included) with keypoints anywhere on coarse and fine grids (shared joints,
touching and collinear limbs) or as jittered stick figures, apart or overlapping, with
unlabelled ends; category ids and action names in and out of range,
values of the wrong type; seed lists (1 to 3, repeats and seeds up to 2**63 - 1, as lists,
tuples and tensors), sequence lengths and video lengths from 1 / 2 frames, 0 to 3 things,
actions, frame subsets (repeats included); random track presence with gaps, ties of box
centres and occlusion flags; part, UV and segment maps of 0 to 6 pixels a side, segment
dicts with keys missing from the map and 13 things of one category (the variants wrap),
border colours; tracks with empty frames, (ids, boxes, scores) triples, trails from 1 frame;
frame lists corrupted in one place; dtypes. References: a brute-force exact segment
intersection in fractions (``crossing_limbs``), the tables ``CATEGORIES`` / ``ACTIONS``,
single-seed renders and full-video slices, reversed partner videos, the background scene and
boxes and centres recomputed from the masks, per-pixel loops with ``palette`` / matplotlib's
HSV conversion and ``INSTANCE_VARIANTS`` (colours), a loop over the tracks (trails and
events) and the documented error messages. Checked on every device this machine has where
a function takes tensors; seeded (``derandomize=True``).
"""

import dataclasses
import re
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from matplotlib import colors as mcolors
from props import F64, PROPS, floats, gen, on_devices, seeds
from torch.testing import assert_close

from coursekit.data import (
    ACTIONS,
    CATEGORIES,
    NUM_ACTIONS,
    NUM_CLASSES,
    action_id,
    category_id,
    category_name,
    render_scene,
    render_sequence,
    render_sequences,
    render_videos,
    sequence_events,
)
from coursekit.data.tracks import TrackSequence
from coursekit.data.video import MOTION_PAIRS
from coursekit.pose import COCO_KEYPOINT_NAMES, crossing_limbs
from coursekit.tracking import check_frames
from coursekit.viz import (
    CATEGORY_COLORS,
    palette,
    panoptic_colors,
    parts_colors,
    segment_boundaries,
    track_trails,
    uv_colors,
)
from coursekit.viz.overlay import INSTANCE_VARIANTS

RENDERS = settings(PROPS, max_examples=8)  # each example renders a few small videos
sides = st.integers(0, 6)
big_seeds = st.one_of(st.integers(0, 50), st.integers(0, 2**63 - 1))
int_dtypes = st.sampled_from([torch.uint8, torch.int32, torch.int64])


def tol(dtype):
    return {"rtol": 0, "atol": 0} if dtype == F64 else {"rtol": 1e-6, "atol": 1e-6}


# ====================================================================== crossing_limbs
_NAME = {n: k for k, n in enumerate(COCO_KEYPOINT_NAMES)}
ARM_LEG = [(_NAME[f"{side}_{a}"], _NAME[f"{side}_{b}"]) for side in ("left", "right")
           for a, b in (("shoulder", "elbow"), ("elbow", "wrist"), ("hip", "knee"),
                        ("knee", "ankle"))]


def proper_crossing(p1, p2, q1, q2) -> bool:
    """Segments p1-p2 and q1-q2 (pairs of Fractions) meet in one point inside both."""
    r = (p2[0] - p1[0], p2[1] - p1[1])
    s = (q2[0] - q1[0], q2[1] - q1[1])
    denom = r[0] * s[1] - r[1] * s[0]
    if denom == 0:  # parallel, collinear or a point: no single crossing point
        return False
    w = (q1[0] - p1[0], q1[1] - p1[1])
    t = (w[0] * s[1] - w[1] * s[0]) / denom  # p1 + t r = q1 + u s
    u = (w[0] * r[1] - w[1] * r[0]) / denom
    return 0 < t < 1 and 0 < u < 1


def crossing_reference(kp: torch.Tensor) -> list[bool]:
    xy = [[(Fraction(float(x)), Fraction(float(y))) for x, y in person[:, :2].tolist()]
          for person in kp.cpu().double()]
    seen = (kp[..., 2] > 0).cpu().tolist()
    out = []
    for p in range(len(xy)):
        hit = False
        for a, b in ARM_LEG:
            if not (seen[p][a] and seen[p][b]):
                continue
            for q in range(len(xy)):
                for c, d in ARM_LEG:
                    if not (seen[q][c] and seen[q][d]):
                        continue
                    if q == p and {a, b} & {c, d}:  # own limbs with a common joint
                        continue
                    hit = hit or proper_crossing(xy[p][a], xy[p][b], xy[q][c], xy[q][d])
        out.append(hit)
    return out


# a standing stick figure (x, y in quarter pixels, COCO order): no limb crosses another
FIGURE = torch.tensor([[10, 4], [11, 3], [9, 3], [12, 4], [8, 4], [12, 10], [8, 10], [16, 12],
                       [4, 12], [20, 10], [0, 10], [11, 20], [9, 20], [13, 26], [7, 26],
                       [14, 32], [6, 32]])


@on_devices
@PROPS
@given(seed=seeds, persons=st.integers(0, 4), steps=st.sampled_from([2, 5, 64, 4096]),
       jitter=st.sampled_from([None, 0, 1, 3, 8]), p_seen=st.sampled_from([0.5, 0.9, 1.0]),
       dtype=floats)
def test_crossing_limbs_is_an_exact_segment_intersection(device, seed, persons, steps, jitter,
                                                         p_seen, dtype):
    g = gen(seed)
    # coordinates k / 4 on a grid: exact in float32, and the orientations exact in float64;
    # anywhere on a grid of `steps` (jitter None), or stick figures placed at random (apart or
    # overlapping) with their joints moved by up to `jitter` quarter pixels
    if jitter is None:
        xy = torch.randint(0, steps, (persons, 17, 2), generator=g)
    else:
        xy = (FIGURE + torch.randint(0, 48, (persons, 1, 2), generator=g)
              + torch.randint(-jitter, jitter + 1, (persons, 17, 2), generator=g))
    xy = xy.double() / 4
    v = torch.where(torch.rand(persons, 17, generator=g) < p_seen,
                    torch.randint(1, 3, (persons, 17), generator=g), 0)
    kp = torch.cat([xy, v[..., None].double()], -1).to(device, dtype)
    out = crossing_limbs(kp)
    assert out.dtype == torch.bool and out.shape == (persons,) and out.device == kp.device
    assert out.tolist() == crossing_reference(kp)


# ================================================================= names of categories
@PROPS
@given(cid=st.integers(-20, 30), name=st.text(max_size=12),
       wrong=st.sampled_from([None, 2.0, "person", True, b"sky", [3], torch.tensor(3)]))
def test_category_name_round_trips_and_names_the_argument(cid, name, wrong):
    names = [c["name"] for c in CATEGORIES]
    assert len(set(names)) == NUM_CLASSES
    for k in range(NUM_CLASSES):  # every id, and numpy integers too
        assert category_name(k) == names[k] == category_name(np.int64(k))
        assert category_id(category_name(k)) == k
    if 0 <= cid < NUM_CLASSES:
        assert category_name(cid) == names[cid]
    else:
        with pytest.raises(ValueError, match=rf"^id must be a category id in \[0, 7\], "
                                             rf"got {cid}$"):
            category_name(cid)
    with pytest.raises(TypeError, match="^id must be an int category id"):
        category_name(wrong)
    if name not in names:
        with pytest.raises(ValueError, match=r"^name must be one of \[.*got "
                                             + re.escape(repr(name))):
            category_id(name)


@PROPS
@given(name=st.one_of(st.text(max_size=12), st.sampled_from(ACTIONS).map(str.upper),
                      st.sampled_from(ACTIONS).map(lambda a: a + " ")),
       wrong=st.sampled_from([None, 3, 0, 1.5, b"grow", ["ball"], ("ball",)]))
def test_action_id_round_trips_and_names_the_argument(name, wrong):
    assert len(set(ACTIONS)) == NUM_ACTIONS
    for k, a in enumerate(ACTIONS):
        assert action_id(a) == k and type(action_id(a)) is int
    if name in ACTIONS:
        assert ACTIONS[action_id(name)] == name
    else:
        with pytest.raises(ValueError, match=r"^name must be one of \[.*got "
                                             + re.escape(repr(name)) + "$"):
            action_id(name)
    with pytest.raises(TypeError, match=r"^name must be a str .*got " + re.escape(repr(wrong))):
        action_id(wrong)


# ============================================================== tracking sequences
def assert_same_sequence(a: TrackSequence, b: TrackSequence, exact: bool) -> None:
    for f in dataclasses.fields(TrackSequence):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, list):
            assert len(x) == len(y), f.name
            for s, t in zip(x, y, strict=True):
                assert s.dtype == t.dtype and torch.equal(s.cpu(), t.cpu()), f.name
        elif isinstance(x, torch.Tensor):
            assert x.dtype == y.dtype and x.shape == y.shape, f.name
            if exact or f.name != "images":
                assert torch.equal(x.cpu(), y.cpu()), f.name
            else:
                assert_close(x.cpu(), y.cpu(), atol=1e-5, rtol=0)
        else:
            assert x == y, f.name


@on_devices
@RENDERS
@given(seed_list=st.lists(big_seeds, min_size=1, max_size=3), num_frames=st.integers(1, 4),
       size=st.sampled_from([32, 37]),
       num_things=st.one_of(st.integers(0, 3), st.tuples(st.integers(0, 1), st.integers(1, 3))),
       p_person=st.sampled_from([0.0, 0.35, 1.0]),
       form=st.sampled_from([list, tuple, torch.tensor]))
def test_render_sequences_is_render_sequence_seed_by_seed(device, seed_list, num_frames, size,
                                                          num_things, p_person, form):
    kw = {"num_things": num_things, "p_person": p_person}
    batch = render_sequences(form(seed_list), num_frames, size, device=device, **kw)
    assert isinstance(batch, list) and len(batch) == len(seed_list)
    again = render_sequences(list(seed_list), num_frames, size, device=device, **kw)
    for b, s in enumerate(seed_list):
        one = render_sequence(s, num_frames, size, **kw)  # on the CPU
        assert one.seed == s and one.size == size and len(one) == num_frames
        assert one.images.shape == (num_frames, 3, size, size)
        assert batch[b].images.device.type == torch.device(device).type
        assert_same_sequence(batch[b], one, exact=torch.device(device).type == "cpu")
        assert_same_sequence(batch[b], again[b], exact=True)  # deterministic


# ================================================================= sequence_events
def events_reference(T: int, frames_of: dict, centre: dict, occluded: set) -> dict:
    """Counts from ``frames_of`` {id: set of frames}, ``centre`` {(id, t): x}, ``occluded``."""
    entries = exits = gaps = crossings = 0
    for frames in frames_of.values():
        first, last = min(frames), max(frames)
        entries += first > 0
        exits += last < T - 1
        for t in range(first + 1, last + 1):  # a gap starts where the id goes missing
            gaps += (t not in frames) and (t - 1 in frames)
    ids = sorted(frames_of)
    for n, i in enumerate(ids):
        for j in ids[n + 1:]:
            both = frames_of[i] & frames_of[j]
            left = any(centre[i, t] < centre[j, t] for t in both)
            right = any(centre[i, t] > centre[j, t] for t in both)
            crossings += left and right
    return {"entries": entries, "exits": exits, "occlusions": len(occluded),
            "disappearances": gaps, "crossings": crossings}


@PROPS
@given(seed=seeds, T=st.integers(1, 7), N=st.integers(0, 5),
       p_present=st.sampled_from([0.3, 0.7, 1.0]))
def test_sequence_events_count_a_drawn_ground_truth(seed, T, N, p_present):
    g = gen(seed)
    present = torch.rand(T, N, generator=g) < p_present
    centres = torch.randint(0, 4, (T, N), generator=g).float()  # ties are frequent
    hidden = torch.rand(T, N, generator=g) < 0.15
    ids, boxes, occ = [], [], []
    for t in range(T):
        ks = torch.nonzero(present[t]).flatten()
        ids.append(ks + 1)
        c = centres[t, ks]
        boxes.append(torch.stack([c - 1, torch.zeros_like(c), c + 1, torch.ones_like(c)], 1))
        occ.append(hidden[t, ks])
    seq = TrackSequence(
        images=torch.zeros(T, 3, 1, 1), ids=ids, boxes=boxes,
        labels=[torch.full_like(i, 4) for i in ids],
        masks=[torch.zeros(len(i), 1, 1, dtype=torch.bool) for i in ids],
        visibility=[torch.ones(len(i)) for i in ids], occluded=occ,
        velocity=torch.zeros(N, 2), categories=torch.full((N,), 4), seed=seed, size=1)
    frames_of = {n + 1: {t for t in range(T) if present[t, n]} for n in range(N)}
    frames_of = {i: f for i, f in frames_of.items() if f}
    centre = {(n + 1, t): float(centres[t, n]) for n in range(N) for t in range(T)}
    occluded = {n + 1 for n in range(N) if bool((present[:, n] & hidden[:, n]).any())}
    events = sequence_events(seq)
    assert all(type(v) is int and v >= 0 for v in events.values())
    assert events == events_reference(T, frames_of, centre, occluded)


@RENDERS
@given(seed=big_seeds, num_frames=st.integers(1, 6), num_things=st.integers(0, 4))
def test_sequence_events_of_a_render_match_its_masks(seed, num_frames, num_things):
    seq = render_sequence(seed, num_frames, 32, num_things=num_things)
    frames_of, centre, occluded = {}, {}, set()
    for t in range(num_frames):
        assert seq.ids[t].tolist() == sorted(set(seq.ids[t].tolist()))
        for i, m, box, o in zip(seq.ids[t].tolist(), seq.masks[t], seq.boxes[t],
                                seq.occluded[t].tolist(), strict=True):
            ys, xs = torch.nonzero(m, as_tuple=True)
            assert len(xs)  # a thing in the frame has a visible pixel
            tight = [int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1]
            assert box.tolist() == tight
            frames_of.setdefault(i, set()).add(t)
            centre[i, t] = (tight[0] + tight[2]) / 2
            if o:
                occluded.add(i)
    assert sorted(frames_of) == list(range(1, seq.num_objects + 1))
    assert sequence_events(seq) == events_reference(num_frames, frames_of, centre, occluded)


# =================================================================== action videos
@st.composite
def video_args(draw):
    seed_list = draw(st.lists(big_seeds, min_size=1, max_size=3))
    B, F = len(seed_list), draw(st.integers(2, 6))
    actions = draw(st.one_of(st.none(), st.lists(st.integers(0, NUM_ACTIONS - 1),
                                                  min_size=B, max_size=B)))
    kind = draw(st.sampled_from(["all", "shared", "per video"]))
    T = draw(st.integers(1, 4))
    frames = None
    if kind == "shared":
        frames = torch.tensor(draw(st.lists(st.integers(0, F - 1), min_size=T, max_size=T)))
    elif kind == "per video":
        frames = torch.tensor(draw(st.lists(st.lists(st.integers(0, F - 1), min_size=T,
                                                     max_size=T), min_size=B, max_size=B)))
    return seed_list, F, actions, frames


@on_devices
@RENDERS
@given(args=video_args(), size=st.sampled_from([32, 35]))
def test_render_videos_is_single_seed_renders_and_slices(device, args, size):
    seed_list, F, actions, frames = args
    out = render_videos(seed_list, size, F, actions=actions, frames=frames, device=device)
    B = len(seed_list)
    label = [s % NUM_ACTIONS for s in seed_list] if actions is None else actions
    index = (torch.arange(F).expand(B, F) if frames is None
             else frames.expand(B, -1) if frames.dim() == 1 else frames)
    T = index.shape[1]
    assert out.video.shape == (B, T, 3, size, size) and out.video.dtype == torch.float32
    assert out.video.device.type == torch.device(device).type
    assert out.label.tolist() == label and out.frames.tolist() == index.tolist()
    assert out.seeds == seed_list and out.size == size and out.num_frames == F
    exact = torch.device(device).type == "cpu"
    again = render_videos(seed_list, size, F, actions=actions, frames=frames, device=device)
    assert torch.equal(again.video, out.video) and torch.equal(again.mask, out.mask)
    for b, s in enumerate(seed_list):
        one = render_videos([s], size, F, actions=[label[b]], frames=index[b:b + 1])
        full = render_videos([s], size, F, actions=[label[b]])
        for ref in (one.video[0], full.video[0][index[b]]):  # a render, a slice
            assert_close(out.video[b].cpu(), ref, **({"rtol": 0, "atol": 0} if exact
                                                     else {"rtol": 0, "atol": 1e-6}))
        assert torch.equal(out.mask[b].cpu(), one.mask[0])
        assert torch.equal(out.mask[b].cpu(), full.mask[0][index[b]])
        background = render_scene(s, size, num_things=0, p_crowd=0.0).image
        for t in range(T):
            m = out.mask[b, t].cpu()
            assert bool(m.any())  # the actor is in every frame
            ys, xs = torch.nonzero(m, as_tuple=True)
            assert out.boxes[b, t].tolist() == [int(xs.min()), int(ys.min()),
                                                int(xs.max()) + 1, int(ys.max()) + 1]
            assert_close(out.video[b, t].cpu()[:, ~m], background[:, ~m], rtol=0,
                         atol=0 if exact else 1e-6)


@RENDERS
@given(seed=big_seeds, pair=st.sampled_from(MOTION_PAIRS), F=st.integers(2, 6))
def test_render_videos_partner_classes_are_reversed(seed, pair, F):
    forward, backward = (render_videos([seed], 32, F, actions=[a]) for a in pair)
    assert torch.equal(backward.video[0], forward.video[0].flip(0))
    assert torch.equal(backward.mask[0], forward.mask[0].flip(0))


# ========================================================== part, UV, panoptic colours
@on_devices
@PROPS
@given(seed=seeds, hw=st.tuples(sides, sides), num_parts=st.integers(1, 30), dtype=int_dtypes)
def test_parts_colors_is_a_per_pixel_palette_lookup(device, seed, hw, num_parts, dtype):
    parts = torch.randint(0, num_parts + 1, hw, generator=gen(seed)).to(device, dtype)
    out = parts_colors(parts, num_parts)
    assert out.shape == (3, *hw) and out.device == parts.device and out.is_floating_point()
    table = palette(num_parts, seed=3)
    ref = torch.zeros(3, *hw)
    for i in range(hw[0]):
        for j in range(hw[1]):
            p = int(parts[i, j])
            if p > 0:
                ref[:, i, j] = table[p - 1]
    assert_close(out.cpu().float(), ref, rtol=0, atol=0)


@PROPS
@given(seed=seeds, hw=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       num_parts=st.integers(1, 12), bad=st.sampled_from([-3, -2, -1, 1, 2, 100]))
def test_parts_colors_refuses_part_ids_outside_the_range(seed, hw, num_parts, bad):
    g = gen(seed)
    parts = torch.randint(0, num_parts + 1, hw, generator=g)
    value = bad if bad < 0 else num_parts + bad
    parts.view(-1)[torch.randint(0, parts.numel(), (1,), generator=g)] = value
    message = rf"parts must lie in \[0, {num_parts}\] \(0 = background\), got {value}"
    with pytest.raises(ValueError, match=message):
        parts_colors(parts, num_parts)


@on_devices
@PROPS
@given(seed=seeds, hw=st.tuples(sides, sides), dtype=floats, parts_dtype=int_dtypes,
       background=st.sampled_from([None, torch.float32, F64]))
def test_uv_colors_is_u_v_0_on_person_pixels(device, seed, hw, dtype, parts_dtype, background):
    g = gen(seed)
    uv = torch.rand(2, *hw, generator=g, dtype=F64).to(device, dtype)
    low = 0 if parts_dtype == torch.uint8 else -2
    parts = torch.randint(low, 4, hw, generator=g).to(device, parts_dtype)
    bg = (None if background is None
          else torch.rand(3, *hw, generator=g, dtype=F64).to(device, background))
    out = uv_colors(uv, parts, bg)
    assert out.shape == (3, *hw) and out.dtype == dtype and out.device == uv.device
    uv_c, parts_c = uv.cpu(), parts.cpu()
    bg_c = None if bg is None else bg.cpu().to(dtype)
    ref = torch.zeros(3, *hw, dtype=dtype)
    for i in range(hw[0]):
        for j in range(hw[1]):
            if int(parts_c[i, j]) > 0:
                ref[0, i, j], ref[1, i, j] = uv_c[0, i, j], uv_c[1, i, j]
            elif bg_c is not None:
                ref[:, i, j] = bg_c[:, i, j]
    assert_close(out.cpu(), ref, rtol=0, atol=0)


def variant_reference(colour: np.ndarray, k: int) -> np.ndarray:
    """The k-th variant of ``colour`` as the docstrings write it (matplotlib HSV, float64)."""
    if k == 0:
        return colour
    dh, m, s = INSTANCE_VARIANTS[k % len(INSTANCE_VARIANTS)]
    h, sat, val = mcolors.rgb_to_hsv(colour)
    c = mcolors.hsv_to_rgb([(h + dh) % 1.0, min(1.0, m * sat), val])
    return c + s * (1 - c) if s > 0 else c * (1 + s)


@on_devices
@PROPS
@given(seed=seeds, hw=st.tuples(sides, sides), num_ids=st.integers(1, 16),
       named=st.booleans(), own_colors=st.one_of(st.none(), floats),
       num_categories=st.integers(1, 9), border=st.sampled_from([None, (1.0, 1.0, 1.0),
                                                                 (0.2, 0.4, 0.6)]),
       dtype=int_dtypes)
def test_panoptic_colors_is_a_per_pixel_loop(device, seed, hw, num_ids, named, own_colors,
                                             num_categories, border, dtype):
    g = gen(seed)
    ids = torch.randint(0, num_ids, hw, generator=g).to(device, dtype)
    if own_colors is None:
        colors, K = CATEGORY_COLORS, len(CATEGORY_COLORS)
    else:
        K = num_categories
        colors = torch.rand(K, 3, generator=g, dtype=F64).to(own_colors)
    things = {k for k in range(K) if bool(torch.rand(1, generator=g) < 0.6)}
    mapping = None
    if named:  # keys: some ids of the map and some that are not in it; few categories
        keys = [k for k in range(num_ids + 3) if bool(torch.rand(1, generator=g) < 0.8)]
        few = torch.randint(0, K, (2,), generator=g)  # mostly the second: its ranks wrap
        cats = few[(torch.rand(len(keys), generator=g) < 0.85).long()].tolist()
        mapping = dict(zip(keys, cats, strict=True))
    out = panoptic_colors(ids, mapping, things, colors, border_color=border)
    assert out.shape == (3, *hw) and out.device == ids.device and out.is_floating_point()

    flat = ids.cpu().long()
    table = palette(int(flat.max()) + 1 if flat.numel() else 1).double()
    base = colors.double().cpu().float().double().numpy()  # the colours as float32 values
    edge = segment_boundaries(ids).cpu()
    ref = torch.zeros(3, *hw, dtype=F64)
    for i in range(hw[0]):
        for j in range(hw[1]):
            s = int(flat[i, j])
            if border is not None and edge[i, j]:
                ref[:, i, j] = torch.tensor(border, dtype=F64)
            elif mapping is None:
                ref[:, i, j] = table[s] if s > 0 else 0.0
            elif s in mapping:
                cat = mapping[s]
                k = sum(1 for key, c in mapping.items() if c == cat and key < s)
                colour = variant_reference(base[cat], k if cat in things else 0)
                ref[:, i, j] = torch.from_numpy(np.asarray(colour, dtype=np.float64))
    assert_close(out.cpu().double(), ref, rtol=0, atol=1e-5)


# ==================================================================== track trails
@st.composite
def track_lists(draw, min_frames=1, max_frames=6):
    """Frames of (ids, boxes[, scores]) from a seed: 0 to 5 unique ids each, in any order."""
    T = draw(st.integers(min_frames, max_frames))
    g = gen(draw(seeds))
    dtype = draw(floats)
    scores = draw(st.booleans())
    frames = []
    for _ in range(T):
        ids = torch.randperm(6, generator=g)[:int(torch.randint(0, 6, (1,), generator=g))]
        xy = torch.rand(len(ids), 2, generator=g, dtype=F64) * 20
        wh = torch.rand(len(ids), 2, generator=g, dtype=F64) * 5
        boxes = torch.cat([xy, xy + wh], 1).to(dtype)
        frame = (ids, boxes) + ((torch.rand(len(ids), generator=g),) if scores else ())
        frames.append(frame)
    return frames


@on_devices
@PROPS
@given(tracks=track_lists(), where=st.floats(0, 1, exclude_max=True), trail=st.integers(1, 8))
def test_track_trails_is_a_loop_over_the_tracks(device, tracks, where, trail):
    tracks = [tuple(x.to(device) for x in f) for f in tracks]
    T = len(tracks)
    frame = int(where * T)
    out = track_trails(tracks, frame, trail)
    now = tracks[frame][0].tolist()
    assert sorted(out) == sorted(now)
    for i in now:
        ref = []
        for t in range(frame - trail + 1, frame + 1):
            if t < 0:
                continue
            for k, j in enumerate(tracks[t][0].tolist()):
                if j == i:
                    x1, y1, x2, y2 = tracks[t][1][k].tolist()
                    ref.append([(x1 + x2) / 2, (y1 + y2) / 2])
        path = out[i]
        dtype = tracks[frame][1].dtype
        assert path.dtype == dtype and path.device == tracks[frame][1].device
        assert path.shape == (len(ref), 2) and len(ref) >= 1
        assert_close(path.cpu(), torch.tensor(ref, dtype=F64).to(dtype), **tol(dtype))
    with pytest.raises(ValueError, match=rf"^frame must be < {T} .*got {T}$"):
        track_trails(tracks, T, trail)
    with pytest.raises(ValueError, match="^trail must be positive, got 0$"):
        track_trails(tracks, frame, 0)


# ==================================================================== check_frames
names = st.text(st.sampled_from("abcxyz_.[]() 01"), min_size=1, max_size=8)


@on_devices
@PROPS
@given(tracks=track_lists(min_frames=0), outer=st.sampled_from([list, tuple]),
       inner=st.sampled_from([tuple, list]), int_boxes=st.booleans(), name=names)
def test_check_frames_returns_the_pairs_of_every_documented_form(device, tracks, outer,
                                                                  inner, int_boxes, name):
    frames = outer(inner(x.to(device) for x in f) for f in tracks)
    if int_boxes:  # boxes may hold integers too
        frames = outer(inner([f[0], f[1].round().long(), *f[2:]]) for f in frames)
    out = check_frames(frames, name)
    assert isinstance(out, list) and len(out) == len(frames)
    for (ids, boxes), f in zip(out, frames, strict=True):
        assert ids is f[0] and boxes is f[1]


CORRUPTIONS = {  # what is done to frame f -> (error, whose name the message starts with)
    "a tensor instead of the list": (TypeError, "outer"),
    "a string instead of the list": (TypeError, "outer"),
    "a dict instead of the list": (TypeError, "outer"),
    "a tensor instead of a pair": (TypeError, "frame"),
    "a 1-tuple": (TypeError, "frame"),
    "a 4-tuple": (TypeError, "frame"),
    "ids as a list": (TypeError, "frame"),
    "float ids": (TypeError, "frame"),
    "bool ids": (TypeError, "frame"),
    "ids of shape (K, 1)": (ValueError, "frame"),
    "boxes of shape (K, 3)": (ValueError, "frame"),
    "boxes of shape (4K,)": (ValueError, "frame"),
    "bool boxes": (TypeError, "frame"),
    "boxes as a list": (TypeError, "frame"),
    "one box too many": (ValueError, "frame"),
    "a repeated id": (ValueError, "frame"),
    "integer scores": (TypeError, "frame"),
    "one score too many": (ValueError, "frame"),
    "scores of shape (K, 1)": (ValueError, "frame"),
}


@on_devices
@PROPS
@given(tracks=track_lists(), where=st.floats(0, 1, exclude_max=True),
       corruption=st.sampled_from(sorted(CORRUPTIONS)), name=names)
def test_check_frames_refuses_other_forms_naming_the_argument(device, tracks, where,
                                                               corruption, name):
    frames = [tuple(x.to(device) for x in f) for f in tracks]
    f = int(where * len(frames))
    ids, boxes = frames[f][:2]
    if corruption == "a repeated id":  # needs two ids
        ids = torch.tensor([3, 3], device=device)
        boxes = torch.zeros(2, 4, device=device)
    bad = {
        "a tensor instead of a pair": ids, "a 1-tuple": (ids,),
        "a 4-tuple": (ids, boxes, ids, ids), "ids as a list": (ids.tolist(), boxes),
        "float ids": (ids.float(), boxes), "bool ids": (ids > 2, boxes),
        "ids of shape (K, 1)": (ids[:, None], boxes), "boxes of shape (K, 3)": (ids, boxes[:, :3]),
        "boxes of shape (4K,)": (ids, boxes.flatten()), "bool boxes": (ids, boxes > 2),
        "boxes as a list": (ids, boxes.tolist()),
        "one box too many": (ids, torch.cat([boxes, boxes.new_zeros(1, 4)])),
        "a repeated id": (ids, boxes),
        "integer scores": (ids, boxes, ids.clone()),
        "one score too many": (ids, boxes, boxes.new_zeros(len(ids) + 1)),
        "scores of shape (K, 1)": (ids, boxes, boxes.new_zeros(len(ids), 1)),
    }
    whole = {"a tensor instead of the list": torch.zeros(len(frames), 2),
             "a string instead of the list": "frames", "a dict instead of the list": {0: frames[0]}}
    if corruption in whole:
        frames = whole[corruption]
    else:
        frames[f] = bad[corruption]
    error, whose = CORRUPTIONS[corruption]
    start = re.escape(name if whose == "outer" else f"{name}[{f}]")
    with pytest.raises(error, match="^" + start):
        check_frames(frames, name)
