"""Property tests (hypothesis) for coursekit.data (ShapesWorld's ``render_scene`` /
``render_batch``, the COCO run-length encoding and the panoptic ids of a scene) and
coursekit.panoptic (``panoptic_fusion``, ``PQStat``, ``SemanticFPNHead``); ``panoptic_quality``
itself is in test_props_metrics.py.

Drawn: 1..3 seeds, sizes 32..64 (odd ones too), easy and hard scenes, 0..4 things, no / some /
only persons and crowds; binary masks of 0..9 x 0..9 pixels (empty ones included) as bool or
integers; fusion inputs of 0..5 instances (empty masks, ties in score, overlaps, masks over
ignored or thing pixels), semantic maps as int64 / int32 / uint8 labels with ignored pixels or
as logits, every threshold from 0 to 1; perturbed predictions of rendered scenes; FPN levels of
1..8 pixels (odd sizes). References: the scene contract of shapesworld.py checked field by
field (tight boxes recomputed from the masks, masks from ``instance_ids``, frame 2 read at
``p + flow``), rendering twice and scene by scene; ``pycocotools.mask`` for the RLE (where
importable); a pixel loop of the fusion heuristic written from fusion.py's docstring; one
``PQStat.update`` on the batch, ``panoptic_quality`` and ``panoptic_quality_loop`` for the
accumulated counts. Checked on every device this machine has; seeded (``derandomize=True``).
"""

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, assert_pq_equal, gen, on_devices, seeds
from scene_contract import expected_fields
from torch.testing import assert_close

from coursekit.data import (
    IGNORE,
    NUM_CLASSES,
    THING_IDS,
    Scene,
    SceneBatch,
    category_id,
    render_batch,
    render_scene,
)
from coursekit.data import layout as lay
from coursekit.data.coco import (
    STUFF_SEGMENT_OFFSET,
    decode_rle,
    encode_rle,
    panoptic_ids,
    rle_from_string,
    rle_to_string,
)
from coursekit.panoptic import (
    SHAPESWORLD_CATEGORIES,
    PQStat,
    SemanticFPNHead,
    panoptic_fusion,
    panoptic_quality,
    panoptic_quality_loop,
)

try:
    from pycocotools import mask as coco_mask
except ImportError:  # the round trips are still checked
    coco_mask = None

scene_seeds = st.integers(0, 2**40)
scene_sizes = st.one_of(st.sampled_from([32, 64]), st.integers(32, 64))
difficulties = st.sampled_from(["easy", "easy", "hard"])
num_things = st.one_of(st.integers(0, 4), st.tuples(st.integers(0, 2), st.integers(2, 4)))
probabilities = st.sampled_from([0.0, 0.35, 1.0])
PERSON = category_id("person")


# ------------------------------------------------------------------------------- ShapesWorld
TENSOR_FIELDS = list(expected_fields(1, 1, 0, 0))


def assert_same_scene(a, b, exact=True):
    for name in TENSOR_FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        if exact or not x.is_floating_point():
            assert torch.equal(x.cpu(), y.cpu()), name
        else:
            assert_close(x.cpu(), y.cpu(), rtol=1e-5, atol=1e-5, msg=name)
    assert a.seed == b.seed and a.size == b.size


@on_devices
@PROPS
@given(seeds_=st.lists(scene_seeds, min_size=1, max_size=3), size=scene_sizes,
       difficulty=difficulties, things=num_things, p_person=probabilities,
       p_crowd=probabilities)
def test_render_batch_contract_determinism_and_scenes(device, seeds_, size, difficulty, things,
                                                     p_person, p_crowd):
    kw = {"num_things": things, "p_person": p_person, "p_crowd": p_crowd,
          "difficulty": difficulty}
    batch = render_batch(seeds_, size, device=device, **kw)
    assert isinstance(batch, SceneBatch) and len(batch) == len(seeds_)
    assert batch.seeds == seeds_ and batch.size == size
    lo, hi = (things, things) if isinstance(things, int) else things
    for i, seed in enumerate(seeds_):
        scene = batch.scene(i)
        N, P = len(scene.labels), len(scene.person_index)
        for name, (shape, dtype) in expected_fields(size, size, N, P).items():
            t = getattr(scene, name)
            assert tuple(t.shape) == shape and t.dtype == dtype, (name, t.shape, t.dtype)
            assert t.device.type == device, name
        # at most hi things, plus a crowd group of 4-8 circles (occluded things may vanish)
        assert N <= hi + (8 if p_crowd else 0)
        if p_person == 0:
            assert P == 0
        # a scene on its own is the same scene (the batch is only the fast path)
        assert_same_scene(scene, render_scene(seed, size, device=device, **kw))
    # the same seeds again: the same tensors, bit for bit; seeds as a Tensor too
    for again in (render_batch(seeds_, size, device=device, **kw),
                  render_batch(torch.tensor(seeds_), size, device=device, **kw)):
        for i in range(len(seeds_)):
            assert_same_scene(batch.scene(i), again.scene(i))
    if device != "cpu":  # integer fields bit for bit, colours and depths up to rounding
        cpu = render_batch(seeds_, size, **kw)
        for i in range(len(seeds_)):
            assert_same_scene(batch.scene(i), cpu.scene(i), exact=False)
        moved = batch.to("cpu")
        assert all(t.device.type == "cpu" for t in (moved.image, *moved.masks))


def tight_box(mask):
    ys, xs = torch.nonzero(mask, as_tuple=True)
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1)]


@PROPS
@given(seed=scene_seeds, size=scene_sizes, difficulty=difficulties, things=num_things,
       p_person=probabilities, p_crowd=probabilities)
def test_scene_annotations_agree(seed, size, difficulty, things, p_person, p_crowd):
    s = render_scene(seed, size, num_things=things, p_person=p_person, p_crowd=p_crowd,
                     difficulty=difficulty)
    N = len(s.labels)
    # instances: masks are the pixels of instance_ids k + 1, non-empty, disjoint, of their
    # label in the semantic map; instance_ids > 0 exactly on thing classes
    assert int(s.instance_ids.min()) >= 0 and int(s.instance_ids.max()) <= N
    assert int(s.semantic.min()) >= 0 and int(s.semantic.max()) < NUM_CLASSES  # never IGNORE
    assert torch.equal(s.instance_ids > 0, torch.isin(s.semantic, torch.tensor(THING_IDS)))
    assert set(s.labels.tolist()) <= set(THING_IDS)
    for k in range(N):
        m = s.masks[k]
        assert torch.equal(m, s.instance_ids == k + 1) and bool(m.any())
        assert bool((s.semantic[m] == s.labels[k]).all())
        # boxes: pixel edges around the visible mask, tight on all four sides
        assert s.boxes[k].tolist() == tight_box(m)
        assert s.depth[m].unique().numel() == 1  # one depth per thing
        assert s.flow[:, m].unique(dim=1).shape[1] == 1  # one velocity per thing
    assert bool((s.labels[s.iscrowd] == category_id("circle")).all())
    # persons: person_index lists the rows labelled person, with 17 keypoints each
    assert s.person_index.tolist() == torch.nonzero(s.labels == PERSON).flatten().tolist()
    x, y, v = s.keypoints.unbind(-1)
    assert set(v.unique().tolist()) <= {0.0, 1.0, 2.0}
    on = v > 0
    assert bool(((x[on] >= 0) & (x[on] < size) & (y[on] >= 0) & (y[on] < size)).all())
    assert bool((x[~on] == 0).all()) and bool((y[~on] == 0).all())
    # body parts and the (U, V) chart exactly on person pixels
    assert torch.equal(s.parts > 0, s.semantic == PERSON) and int(s.parts.max()) <= 10
    assert bool(((s.uv >= 0) & (s.uv <= 1)).all()) and bool((s.uv[:, s.parts == 0] == 0).all())
    # pictures in [0, 1], positive depths
    for image in (s.image, s.next_image):
        assert bool(((image >= 0) & (image <= 1)).all())
    assert bool((s.depth > 0).all())
    # flow: integer, 0 on the static stuff, at most max_speed; flow_valid pixels land inside
    # frame 2 and (easy scenes: no noise, no lighting) show the same colour there
    assert torch.equal(s.flow, s.flow.round())
    assert bool((s.flow[:, s.instance_ids == 0] == 0).all())
    assert int(s.flow.abs().max()) <= lay.max_speed(size)
    ys, xs = torch.nonzero(s.flow_valid, as_tuple=True)
    ty, tx = ys + s.flow[1, ys, xs].long(), xs + s.flow[0, ys, xs].long()
    assert bool(((ty >= 0) & (ty < size) & (tx >= 0) & (tx < size)).all())
    if difficulty == "easy":
        assert_close(s.next_image[:, ty, tx], s.image[:, ys, xs], rtol=0, atol=1e-6)
    # the panoptic ground truth: every pixel in exactly one listed segment
    ids, segments = panoptic_ids(s)
    assert ids.shape == (size, size) and ids.dtype == torch.int64
    listed = [seg["id"] for seg in segments]
    assert len(set(listed)) == len(listed) and set(ids.unique().tolist()) == set(listed)
    assert sum(seg["area"] for seg in segments) == size * size
    for seg in segments:
        m = ids == seg["id"]
        assert seg["area"] == int(m.sum()) > 0
        x1, y1, x2, y2 = tight_box(m)
        assert seg["bbox"] == [x1, y1, x2 - x1, y2 - y1]
        if seg["id"] < STUFF_SEGMENT_OFFSET:  # thing segment k is instance k
            k = seg["id"] - 1
            assert torch.equal(m, s.masks[k]) and seg["category_id"] == int(s.labels[k])
            assert seg["iscrowd"] == int(s.iscrowd[k])
        else:
            assert torch.equal(m, (s.semantic == seg["category_id"]) & (s.instance_ids == 0))
            assert seg["id"] == STUFF_SEGMENT_OFFSET + seg["category_id"] and not seg["iscrowd"]


# ------------------------------------------------------------------------------------- RLE
@pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # pycocotools
@PROPS
@given(seed=seeds, hw=st.tuples(st.integers(0, 9), st.integers(0, 9)),
       p=st.sampled_from([0.0, 0.1, 0.5, 0.9, 1.0]),
       dtype=st.sampled_from([torch.bool, torch.uint8, torch.int64]))
def test_rle_round_trips_and_is_pycocotools(seed, hw, p, dtype):
    mask = torch.rand(hw, generator=gen(seed)) < p
    raw = mask.to(dtype) * (3 if dtype == torch.int64 else 1)  # nonzero is 1
    rle = encode_rle(raw)
    counts = rle["counts"]
    assert rle["size"] == list(hw) and sum(counts) == hw[0] * hw[1]
    assert all(c > 0 for c in counts[1:])  # runs alternate; only the first (0s) may be empty
    assert torch.equal(decode_rle(rle), mask)
    # column-major runs: the mask read in Fortran order
    runs = np.repeat(np.arange(len(counts)) % 2, counts).astype(bool)
    assert np.array_equal(runs, mask.t().reshape(-1).numpy())
    packed = encode_rle(raw, compressed=True)
    assert packed["size"] == rle["size"] and rle_from_string(packed["counts"]) == counts
    assert rle_to_string(counts) == packed["counts"] and torch.equal(decode_rle(packed), mask)
    if coco_mask is not None and hw[0] and hw[1]:
        ref = coco_mask.encode(np.asfortranarray(mask.numpy().astype(np.uint8)))
        assert packed["counts"] == ref["counts"].decode() and packed["size"] == ref["size"]
        assert np.array_equal(coco_mask.decode(dict(packed, counts=packed["counts"].encode())),
                              mask.numpy())


@PROPS
@given(hw=st.sampled_from([(0, 0), (0, 4), (5, 0)]), compressed=st.booleans())
def test_rle_of_a_mask_without_pixels_is_pycocotools(hw, compressed):
    rle = encode_rle(torch.zeros(hw, dtype=torch.bool), compressed=compressed)
    assert rle["counts"] == ("0" if compressed else [0])  # pycocotools: b'0'


# ------------------------------------------------------------------------------------ fusion
def fusion_loop(scores, labels, masks, semantic, overlap, stuff_area, score_threshold,
                thing_ids, ignore_index, H, W):
    """fusion.py's docstring, a pixel at a time in plain Python (lists of lists, H x W)."""
    D = len(scores)
    ids = [[0] * W for _ in range(H)]
    segments = []
    for k in sorted(range(D), key=lambda k: -scores[k]):  # stable: ties keep their order
        if scores[k] < score_threshold:
            break
        pixels = [(y, x) for y in range(H) for x in range(W) if masks[k][y][x]]
        if not pixels:
            continue
        if sum(ids[y][x] > 0 for y, x in pixels) / len(pixels) > overlap:
            continue
        for y, x in pixels:
            if ids[y][x] == 0:
                ids[y][x] = len(segments) + 1
        segments.append({"id": len(segments) + 1, "isthing": True, "score": scores[k],
                         "category_id": labels[k], "instance_id": k})
    regions = {}
    for y in range(H):
        for x in range(W):
            c = semantic[y][x]
            if ids[y][x] == 0 and c not in thing_ids and c != ignore_index:
                regions.setdefault(c, []).append((y, x))
    for c in sorted(regions):
        if len(regions[c]) < stuff_area:
            continue
        for y, x in regions[c]:
            ids[y][x] = len(segments) + 1
        segments.append({"id": len(segments) + 1, "isthing": False, "category_id": c,
                         "area": len(regions[c])})
    return torch.tensor(ids, dtype=torch.int64).view(H, W), segments


def random_fusion_inputs(seed, D, H, W, score_dtype, tie_scores):
    g = gen(seed)
    masks = torch.zeros(D, H, W, dtype=torch.bool)
    for k in range(D):
        if H and W:
            y0, x0 = (int(torch.randint(0, s, (1,), generator=g)) for s in (H, W))
            y1, x1 = (int(torch.randint(a + 1, s + 1, (1,), generator=g))
                      for a, s in ((y0, H), (x0, W)))
            masks[k, y0:y1, x0:x1] = True
            masks[k] &= torch.rand(H, W, generator=g) < 0.85
        if torch.rand(1, generator=g) < 0.15:
            masks[k] = False  # an empty mask: skipped
    scores = torch.rand(D, generator=g, dtype=F64)
    if tie_scores:
        scores = (scores * 4).round() / 4  # ties, and scores of exactly 0, 0.5 and 1
    labels = torch.randint(4, 8, (D,), generator=g)
    semantic = torch.randint(0, NUM_CLASSES, (H, W), generator=g)
    semantic[torch.rand(H, W, generator=g) < 0.1] = IGNORE
    return {"scores": scores.to(score_dtype), "labels": labels, "masks": masks}, semantic


thresholds = st.sampled_from([0.0, 0.3, 0.5, 0.99, 1.0])
fusion_sizes = st.tuples(st.integers(0, 5), st.integers(0, 7), st.integers(0, 7))


@on_devices
@PROPS
@given(seed=seeds, dhw=fusion_sizes, overlap=thresholds,
       stuff_area=st.sampled_from([0, 1, 3, 16]), score_threshold=thresholds,
       tie_scores=st.booleans(), thing_ids=st.sampled_from([tuple(THING_IDS), (), (1, 5, 6)]),
       score_dtype=st.sampled_from([torch.float32, F64]),
       label_dtype=st.sampled_from([torch.int64, torch.int32]),
       semantic_dtype=st.sampled_from([torch.int64, torch.int32, torch.uint8]))
def test_panoptic_fusion_is_the_pixel_loop(device, seed, dhw, overlap, stuff_area,
                                           score_threshold, tie_scores, thing_ids, score_dtype,
                                           label_dtype, semantic_dtype):
    instances, semantic = random_fusion_inputs(seed, *dhw, score_dtype, tie_scores)
    instances["labels"] = instances["labels"].to(label_dtype)
    kw = {"overlap_threshold": overlap, "stuff_area_threshold": stuff_area,
          "score_threshold": score_threshold, "thing_ids": thing_ids}
    on_device = {k: v.to(device) for k, v in instances.items()}
    ids, segments = panoptic_fusion(on_device, semantic.to(device, semantic_dtype), **kw)
    assert ids.shape == semantic.shape and ids.dtype == torch.int64
    assert ids.device == semantic.to(device).device
    ref_ids, ref_segments = fusion_loop(
        instances["scores"].tolist(), instances["labels"].tolist(), instances["masks"].tolist(),
        semantic.tolist(), overlap, stuff_area, score_threshold, set(thing_ids), IGNORE,
        *semantic.shape)
    assert torch.equal(ids.cpu(), ref_ids) and segments == ref_segments
    # the invariants, from the result alone: segments numbered 1..n, things (best score
    # first) before stuff (by class id), every non-void pixel in a listed segment
    ids = ids.cpu()
    assert [s["id"] for s in segments] == list(range(1, len(segments) + 1))
    things = [s for s in segments if s["isthing"]]
    assert segments[:len(things)] == things
    assert [s["score"] for s in things] == sorted((s["score"] for s in things), reverse=True)
    stuff = [s["category_id"] for s in segments[len(things):]]
    assert stuff == sorted(set(stuff))
    assert set(ids.unique().tolist()) <= {0} | {s["id"] for s in segments}
    masks, labels = instances["masks"], instances["labels"]
    claimed = torch.zeros(semantic.shape, dtype=torch.bool)  # pixels of better instances
    for s in things:
        k = s["instance_id"]
        assert s["category_id"] == int(labels[k]) and s["score"] >= score_threshold
        # a thing keeps its instance's class, only inside its mask, and exactly the pixels of
        # its mask that no better instance took
        assert torch.equal(ids == s["id"], masks[k] & ~claimed)
        claimed |= masks[k]
        if overlap < 1:  # kept means some of its mask was still free
            assert bool((ids == s["id"]).any())
    for s in segments[len(things):]:
        region = ids == s["id"]
        assert s["area"] == int(region.sum()) >= max(stuff_area, 1)
        assert s["category_id"] not in thing_ids and s["category_id"] != IGNORE
        assert bool((semantic[region] == s["category_id"]).all())
    # ignored semantic pixels and semantic things are void unless an instance covers them
    assert bool((ids[(semantic == IGNORE) & ~claimed] == 0).all())
    for t in thing_ids:
        assert bool((ids[(semantic == t) & ~claimed] == 0).all())


@on_devices
@PROPS
@given(seed=seeds, dhw=fusion_sizes, overlap=thresholds, stuff_area=st.sampled_from([0, 2, 16]),
       mask_threshold=st.sampled_from([0.0, 0.25, 0.5, 1.0]))
def test_panoptic_fusion_invariances(device, seed, dhw, overlap, stuff_area, mask_threshold):
    instances, semantic = random_fusion_inputs(seed, *dhw, F64, tie_scores=False)
    semantic[semantic == IGNORE] = 0  # labels a logit map can give
    kw = {"overlap_threshold": overlap, "stuff_area_threshold": stuff_area,
          "score_threshold": 0.3}
    on_device = {k: v.to(device) for k, v in instances.items()}
    ids, segments = panoptic_fusion(on_device, semantic.to(device), **kw)
    # logits: their argmax is the label map
    g = gen(seed + 1)
    logits = torch.rand(NUM_CLASSES, *semantic.shape, generator=g, dtype=F64)
    logits.scatter_(0, semantic[None], 2.0)
    got = panoptic_fusion(on_device, logits.to(device, torch.float32), **kw)
    assert torch.equal(got[0], ids) and got[1] == segments
    # the instances in another order (distinct scores): the same map, instance_id renamed
    D = len(instances["scores"])
    perm = torch.randperm(D, generator=g)
    permuted = {k: v[perm].to(device) for k, v in instances.items()}
    got = panoptic_fusion(permuted, semantic.to(device), **kw)
    assert torch.equal(got[0], ids)
    renamed = [dict(s, instance_id=int(perm[s["instance_id"]])) if s["isthing"] else s
               for s in got[1]]
    assert renamed == segments
    # soft masks with mask_threshold: the same as the bool masks ``probs >= mask_threshold``
    probs = torch.rand(instances["masks"].shape, generator=g, dtype=F64)
    soft = dict(instances, masks=probs.to(device, torch.float32))
    hard = dict(instances, masks=(probs.to(torch.float32) >= mask_threshold).to(device))
    a = panoptic_fusion(soft, semantic.to(device), mask_threshold=mask_threshold, **kw)
    b = panoptic_fusion(hard, semantic.to(device), **kw)
    assert torch.equal(a[0], b[0]) and a[1] == b[1]


@PROPS
@given(seed=seeds, dhw=st.tuples(st.integers(1, 4), st.integers(1, 6), st.integers(1, 6)))
def test_panoptic_fusion_keeps_a_hidden_instance_only_at_overlap_threshold_1(seed, dhw):
    """Detectron2's heuristic, kept exactly: an instance is dropped when MORE than
    ``overlap_threshold`` of it is taken, so at 1.0 a wholly hidden one is still listed, as a
    segment with no pixel (panopticapi would refuse such a prediction, and so does our
    ``panoptic_quality``); at the default 0.5 every listed segment has pixels."""
    instances, semantic = random_fusion_inputs(seed, *dhw, F64, tie_scores=False)
    masks = instances["masks"].clone()
    masks[0, 0, 0] = True  # a repeat of instance 0, scored just below it: no pixel left
    instances = {"scores": torch.cat([instances["scores"] * 0.5 + 0.5, torch.tensor([0.5])]),
                 "labels": torch.cat([instances["labels"], instances["labels"][:1]]),
                 "masks": torch.cat([masks, masks[:1]])}
    ids, segments = panoptic_fusion(instances, semantic, score_threshold=0.0)
    assert {s["id"] for s in segments} <= set(ids.unique().tolist())
    ids, segments = panoptic_fusion(instances, semantic, overlap_threshold=1.0,
                                    score_threshold=0.0)
    hidden = [s for s in segments if s.get("instance_id") == len(masks)]
    assert len(hidden) == 1 and hidden[0]["id"] not in ids.unique().tolist()


# ------------------------------------------------------------------------------------ PQStat
def perturbed_prediction(scene, g, stuff_area):
    """A plausible Panoptic FPN output for ``scene``: its instances shifted, some dropped or
    relabelled, random scores; its semantic map with noise."""
    D = len(scene.labels)
    shift = [int(s) for s in torch.randint(-2, 3, (2,), generator=g)]
    masks = scene.masks.roll(shift, dims=(1, 2))
    labels = scene.labels.clone()
    relabel = torch.rand(D, generator=g) < 0.2
    labels[relabel] = torch.randint(4, 8, (int(relabel.sum()),), generator=g)
    keep = torch.rand(D, generator=g) < 0.85
    instances = {"scores": torch.rand(D, generator=g)[keep], "labels": labels[keep],
                 "masks": masks[keep]}
    semantic = scene.semantic.clone()
    noise = torch.rand(semantic.shape, generator=g) < 0.1
    semantic[noise] = torch.randint(0, NUM_CLASSES, (int(noise.sum()),), generator=g)
    return panoptic_fusion(instances, semantic, stuff_area_threshold=stuff_area,
                           score_threshold=0.2)


def assert_stats_equal(a, b):
    assert a.per_category.keys() == b.per_category.keys()
    for cid, entry in a.per_category.items():
        other = b.per_category[cid]
        assert [entry[k] for k in ("tp", "fp", "fn")] == [other[k] for k in ("tp", "fp", "fn")]
        assert entry["iou"] == pytest.approx(other["iou"], abs=1e-12)


@on_devices
@PROPS
@given(seed=seeds, scene_seeds_=st.lists(scene_seeds, min_size=1, max_size=3),
       stuff_area=st.sampled_from([0, 4, 16]))
def test_pq_stat_accumulates_images(device, seed, scene_seeds_, stuff_area):
    g = gen(seed)
    batch = render_batch(scene_seeds_, 32, p_crowd=0.5)
    images = []
    for i in range(len(batch)):
        scene = batch.scene(i)
        pred_ids, pred_segments = perturbed_prediction(scene, g, stuff_area)
        gt_ids, gt_segments = panoptic_ids(scene)
        images.append((pred_ids.to(device), pred_segments, gt_ids.to(device), gt_segments))
    cats = SHAPESWORLD_CATEGORIES
    total, backwards = PQStat(), PQStat()
    for image in images:
        total += PQStat().update(*image, cats)
    for image in reversed(images):
        backwards.update(*image, cats)
    as_batch = PQStat().update(*[list(x) for x in zip(*images, strict=True)], cats)
    assert_stats_equal(total, as_batch)
    assert_stats_equal(backwards, as_batch)
    for entry in as_batch.per_category.values():  # counts, and IoUs > 0.5 each
        assert min(entry["tp"], entry["fp"], entry["fn"]) >= 0
        assert 0.5 * entry["tp"] <= entry["iou"] <= entry["tp"] + 1e-12
    summary = as_batch.summary(cats)
    batched = [list(x) for x in zip(*images, strict=True)]
    assert_pq_equal(summary, panoptic_quality(*batched, cats))
    cpu = [[t.cpu() if isinstance(t, torch.Tensor) else t for t in x] for x in batched]
    assert_pq_equal(summary, panoptic_quality_loop(*cpu, cats))


@PROPS
@given(seed=scene_seeds, size=st.sampled_from([32, 48]), p_crowd=probabilities)
def test_fusion_of_the_ground_truth_is_the_ground_truth(seed, size, p_crowd):
    # the scene's own instances (any scores) and semantic map: the same partition of the
    # pixels as panoptic_ids, segment for segment and with the same categories
    scene = render_scene(seed, size, p_crowd=p_crowd)
    D = len(scene.labels)
    instances = {"scores": torch.rand(D, generator=gen(seed % 2**31)), "labels": scene.labels,
                 "masks": scene.masks}
    ids, segments = panoptic_fusion(instances, scene.semantic, stuff_area_threshold=0,
                                    score_threshold=0.0)
    gt_ids, gt_segments = panoptic_ids(scene)
    pairs = torch.unique(torch.stack([ids.flatten(), gt_ids.flatten()]), dim=1)
    assert pairs.shape[1] == len(segments) == len(gt_segments)  # a bijection of segments
    assert set(pairs[0].tolist()) == {s["id"] for s in segments}
    assert set(pairs[1].tolist()) == {s["id"] for s in gt_segments}
    category = {s["id"]: s["category_id"] for s in segments}
    gt_category = {s["id"]: s["category_id"] for s in gt_segments}
    assert all(category[p] == gt_category[q] for p, q in pairs.t().tolist())


# ---------------------------------------------------------------------------- semantic head
@on_devices
@PROPS
@given(seed=seeds, B=st.integers(1, 2), levels=st.integers(1, 3),
       finest=st.tuples(st.integers(1, 8), st.integers(1, 8)), classes=st.integers(1, 5),
       image=st.tuples(st.integers(1, 20), st.integers(1, 20)),
       dtype=st.sampled_from([torch.float32, F64]))
def test_semantic_fpn_head_shapes_and_batch_independence(device, seed, B, levels, finest,
                                                         classes, image, dtype):
    torch.manual_seed(seed)
    # 16 channels: 2 a group, so that GroupNorm can normalise 1 x 1 maps
    head = SemanticFPNHead(in_channels=4, num_levels=levels, num_classes=classes,
                           channels=16).to(device, dtype).eval()
    g = gen(seed)
    sizes = [finest]
    for _ in range(levels - 1):  # each level half the one before (odd sizes round up)
        sizes.append(tuple((s + 1) // 2 for s in sizes[-1]))
    features = {str(i): torch.randn(B, 4, *hw, generator=g, dtype=F64).to(device, dtype)
                for i, hw in enumerate(sizes)}
    out = head(features, image)
    assert out.shape == (B, classes, *image) and out.dtype == dtype and out.device.type == device
    assert bool(torch.isfinite(out).all())
    tol = {"rtol": 1e-10, "atol": 1e-10} if dtype == F64 else {"rtol": 1e-4, "atol": 1e-5}
    for b in range(B):  # GroupNorm normalises each image on its own
        alone = head({k: v[b:b + 1] for k, v in features.items()}, image)
        assert_close(alone[0], out[b], **tol)
    with pytest.raises(ValueError, match=f"features must have {levels} levels"):
        head({**features, "extra": features["0"]}, image)


def test_scene_dataclass_fields_are_the_contract():
    # the property tests above check every tensor field: none is forgotten
    tensors = [f.name for f in dataclasses.fields(Scene) if f.name not in ("seed", "size")]
    assert sorted(tensors) == sorted(TENSOR_FIELDS)
