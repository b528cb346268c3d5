"""panoptic_quality against a literal port of panopticapi's evaluation (pq_compute)."""

from collections import defaultdict

import numpy as np
import pytest
import torch

from coursekit.data import render_scene
from coursekit.data.coco import panoptic_ids
from coursekit.panoptic import (
    SHAPESWORLD_CATEGORIES,
    PQStat,
    panoptic_quality,
    panoptic_quality_loop,
    quality,
)

# ---- the reference: panopticapi/evaluation.py (PQStatCat, PQStat, pq_compute_single_core),
# ported literally. Reading PNGs / JSON is replaced by arrays and lists; the rest is the
# original's logic line by line. It imports nothing from coursekit.

OFFSET = 256 * 256 * 256
VOID = 0


class PQStatCat:
    def __init__(self):
        self.iou = 0.0
        self.tp = 0
        self.fp = 0
        self.fn = 0

    def __iadd__(self, pq_stat_cat):
        self.iou += pq_stat_cat.iou
        self.tp += pq_stat_cat.tp
        self.fp += pq_stat_cat.fp
        self.fn += pq_stat_cat.fn
        return self


class RefPQStat:
    def __init__(self):
        self.pq_per_cat = defaultdict(PQStatCat)

    def __getitem__(self, i):
        return self.pq_per_cat[i]

    def __iadd__(self, pq_stat):
        for label, pq_stat_cat in pq_stat.pq_per_cat.items():
            self.pq_per_cat[label] += pq_stat_cat
        return self

    def pq_average(self, categories, isthing):
        pq, sq, rq, n = 0, 0, 0, 0
        per_class_results = {}
        for label, label_info in categories.items():
            if isthing is not None:
                cat_isthing = label_info["isthing"] == 1
                if isthing != cat_isthing:
                    continue
            iou = self.pq_per_cat[label].iou
            tp = self.pq_per_cat[label].tp
            fp = self.pq_per_cat[label].fp
            fn = self.pq_per_cat[label].fn
            if tp + fp + fn == 0:
                per_class_results[label] = {"pq": 0.0, "sq": 0.0, "rq": 0.0}
                continue
            n += 1
            pq_class = iou / (tp + 0.5 * fp + 0.5 * fn)
            sq_class = iou / tp if tp != 0 else 0
            rq_class = tp / (tp + 0.5 * fp + 0.5 * fn)
            per_class_results[label] = {"pq": pq_class, "sq": sq_class, "rq": rq_class}
            pq += pq_class
            sq += sq_class
            rq += rq_class
        return {"pq": pq / n, "sq": sq / n, "rq": rq / n, "n": n}, per_class_results


def pq_compute_single_core(annotation_set, categories):
    """``annotation_set``: (gt_ann, pred_ann) pairs, each with ``"png"`` (the id array, as rgb2id
    gives it) and ``"segments_info"`` (gt segments carry their ``area``, as in COCO's JSON)."""
    pq_stat = RefPQStat()
    for gt_ann, pred_ann in annotation_set:
        pan_gt = gt_ann["png"].astype(np.uint32)
        pan_pred = pred_ann["png"].astype(np.uint32)
        gt_segms = {el["id"]: el for el in gt_ann["segments_info"]}
        pred_segms = {el["id"]: el for el in pred_ann["segments_info"]}

        # predicted segments area calculation + prediction sanity checks
        pred_labels_set = set(el["id"] for el in pred_ann["segments_info"])
        labels, labels_cnt = np.unique(pan_pred, return_counts=True)
        for label, label_cnt in zip(labels, labels_cnt, strict=True):
            if label not in pred_segms:
                if label == VOID:
                    continue
                raise KeyError(f"segment with ID {label} is presented in PNG and not presented "
                               "in JSON.")
            pred_segms[label]["area"] = label_cnt
            pred_labels_set.remove(label)
            if pred_segms[label]["category_id"] not in categories:
                raise KeyError(f"segment with ID {label} has unknown category_id")
        if len(pred_labels_set) != 0:
            raise KeyError(f"segment IDs {list(pred_labels_set)} are presented in JSON and not "
                           "presented in PNG.")

        # confusion matrix calculation
        pan_gt_pred = pan_gt.astype(np.uint64) * OFFSET + pan_pred.astype(np.uint64)
        gt_pred_map = {}
        labels, labels_cnt = np.unique(pan_gt_pred, return_counts=True)
        for label, intersection in zip(labels, labels_cnt, strict=True):
            gt_id = label // OFFSET
            pred_id = label % OFFSET
            gt_pred_map[(gt_id, pred_id)] = intersection

        # count all matched pairs
        gt_matched = set()
        pred_matched = set()
        for label_tuple, intersection in gt_pred_map.items():
            gt_label, pred_label = label_tuple
            if gt_label not in gt_segms:
                continue
            if pred_label not in pred_segms:
                continue
            if gt_segms[gt_label]["iscrowd"] == 1:
                continue
            if gt_segms[gt_label]["category_id"] != pred_segms[pred_label]["category_id"]:
                continue
            union = (pred_segms[pred_label]["area"] + gt_segms[gt_label]["area"] - intersection
                     - gt_pred_map.get((VOID, pred_label), 0))
            iou = intersection / union
            if iou > 0.5:
                pq_stat[gt_segms[gt_label]["category_id"]].tp += 1
                pq_stat[gt_segms[gt_label]["category_id"]].iou += iou
                gt_matched.add(gt_label)
                pred_matched.add(pred_label)

        # count false negatives
        crowd_labels_dict = {}
        for gt_label, gt_info in gt_segms.items():
            if gt_label in gt_matched:
                continue
            # crowd segments are ignored
            if gt_info["iscrowd"] == 1:
                crowd_labels_dict[gt_info["category_id"]] = gt_label
                continue
            pq_stat[gt_info["category_id"]].fn += 1

        # count false positives
        for pred_label, pred_info in pred_segms.items():
            if pred_label in pred_matched:
                continue
            # intersection of the segment with VOID
            intersection = gt_pred_map.get((VOID, pred_label), 0)
            # plus intersection with corresponding CROWD region if it exists
            if pred_info["category_id"] in crowd_labels_dict:
                intersection += gt_pred_map.get(
                    (crowd_labels_dict[pred_info["category_id"]], pred_label), 0)
            # predicted segment is ignored if more than half of the segment correspond to VOID
            # and CROWD regions
            if intersection / pred_info["area"] > 0.5:
                continue
            pq_stat[pred_info["category_id"]].fp += 1
    return pq_stat


def pq_compute(images, categories):
    """pq_compute's averaging over All / Things / Stuff, on the ported single core."""
    annotation_set = []
    for pred_ids, pred_segments, gt_ids, gt_segments in images:
        gt_png = gt_ids.cpu().numpy()
        gt_info = [dict(s, iscrowd=s.get("iscrowd", 0), area=int((gt_png == s["id"]).sum()))
                   for s in gt_segments]
        pred_info = [dict(s) for s in pred_segments]
        annotation_set.append(({"png": gt_png, "segments_info": gt_info},
                               {"png": pred_ids.cpu().numpy(), "segments_info": pred_info}))
    pq_stat = pq_compute_single_core(annotation_set, categories)
    results = {}
    for name, isthing in [("All", None), ("Things", True), ("Stuff", False)]:
        try:
            results[name], per_class_results = pq_stat.pq_average(categories, isthing=isthing)
        except ZeroDivisionError:  # no category of this kind appears; ours reports zeros with n = 0
            results[name] = {"pq": 0.0, "sq": 0.0, "rq": 0.0, "n": 0}
        if name == "All":
            results["per_class"] = per_class_results
    return results


# ---- helpers ---------------------------------------------------------------------------------

CATS = {0: {"isthing": 0}, 1: {"isthing": 0}, 4: {"isthing": 1}, 5: {"isthing": 1}}


def assert_results_close(ours, ref, atol=0.0):
    """Equal, by default to the last bit: the IoUs are summed in panopticapi's order."""
    for name in ("All", "Things", "Stuff"):
        assert ours[name]["n"] == ref[name]["n"], name
        for key in ("pq", "sq", "rq"):
            assert ours[name][key] == pytest.approx(float(ref[name][key]), abs=atol), (name, key)
    for cid, values in ref["per_class"].items():
        for key in ("pq", "sq", "rq"):
            got = ours["per_class"][cid][key]
            assert got == pytest.approx(float(values[key]), abs=atol), (cid, key)


def random_image(rng, size=16, p_void=0.5, p_crowd=0.5):
    """A random ground truth (stuff halves, rectangles of things, some crowd and void) and a
    prediction made from it by shifting, relabelling, adding and dropping segments."""
    H = W = size
    top = np.arange(H)[:, None] < rng.integers(3, H - 3)
    gt = np.where(top, 1000, 1001) * np.ones((1, W), np.int64)
    gt_segments = [{"id": 1000, "category_id": 0}, {"id": 1001, "category_id": 1}]
    for k in range(1, rng.integers(2, 7)):
        y, x = rng.integers(0, H - 3), rng.integers(0, W - 3)
        h, w = rng.integers(2, 8), rng.integers(2, 8)
        gt[y:y + h, x:x + w] = k
    if rng.random() < p_void:
        y, x = rng.integers(0, H - 2), rng.integers(0, W - 2)
        gt[y:y + rng.integers(1, 6), x:x + rng.integers(1, 6)] = 0
    present = set(np.unique(gt).tolist())
    gt_segments = [s for s in gt_segments if s["id"] in present]
    for k in sorted(present - {0, 1000, 1001}):
        crowd = int(rng.random() < p_crowd * 0.4)
        gt_segments.append({"id": k, "category_id": int(rng.choice([4, 5])), "iscrowd": crowd})
    for s in gt_segments:
        s.setdefault("iscrowd", 0)

    pred = np.roll(gt, (int(rng.integers(-1, 2)), int(rng.integers(-1, 2))), axis=(0, 1))
    noise = rng.random((H, W)) < 0.08
    pred[noise] = np.roll(pred, 1, axis=1)[noise]
    for _ in range(rng.integers(0, 3)):  # extra predicted things
        y, x = rng.integers(0, H - 2), rng.integers(0, W - 2)
        pred[y:y + rng.integers(1, 6), x:x + rng.integers(1, 6)] = int(rng.integers(50, 60))
    if rng.random() < 0.5:  # unlabelled prediction pixels
        y, x = rng.integers(0, H - 2), rng.integers(0, W - 2)
        pred[y:y + rng.integers(1, 4), x:x + rng.integers(1, 4)] = 0
    gt_cat = {s["id"]: s["category_id"] for s in gt_segments}
    old = sorted(set(np.unique(pred).tolist()) - {0})
    new_ids = rng.permutation(np.arange(1, 4 * len(old) + 1))[:len(old)]  # renumber
    out = np.zeros_like(pred)
    pred_segments = []
    for o, n in zip(old, new_ids.tolist(), strict=True):
        out[pred == o] = n
        cat = gt_cat.get(o, int(rng.choice([4, 5])))
        if rng.random() < 0.15:
            cat = int(rng.choice(list(CATS)))  # a wrong class now and then
        pred_segments.append({"id": n, "category_id": cat})
    return torch.from_numpy(out), pred_segments, torch.from_numpy(gt), gt_segments


# ---- hand-computed cases ---------------------------------------------------------------------

# ground truth          prediction
#  1 1 2 2               1 1 1 0      gt 1 (circle), 2 (square), 3 (sky); 0 is void
#  1 1 2 2               1 1 0 0      pred 1 (circle), 4 (square), 3 (sky)
#  3 3 3 3               3 3 3 4
#  3 3 0 0               3 3 3 3
# circle: gt 1 vs pred 1: inter 4, union 5 + 4 - 4 = 5, IoU 0.8 -> TP; PQ = SQ = 0.8, RQ = 1
# square: gt 2 meets no square (FN), pred 4 lies on sky (FP): PQ = SQ = RQ = 0
# sky: inter 5, union = 7 + 6 - 5 - 2 (pred pixels on void) = 6, IoU 5/6 -> TP:
#   PQ = SQ = 5/6, RQ = 1
# Things: PQ = (0.8 + 0) / 2 = 0.4, SQ 0.4, RQ 0.5; Stuff: 5/6; All: (0.8 + 0 + 5/6) / 3, RQ 2/3
GT = torch.tensor([[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 3, 3], [3, 3, 0, 0]])
PRED = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0], [3, 3, 3, 4], [3, 3, 3, 3]])
GT_SEGMENTS = [{"id": 1, "category_id": 4, "iscrowd": 0},
               {"id": 2, "category_id": 5, "iscrowd": 0},
               {"id": 3, "category_id": 0, "iscrowd": 0}]
PRED_SEGMENTS = [{"id": 1, "category_id": 4}, {"id": 4, "category_id": 5},
                 {"id": 3, "category_id": 0}]
HAND_CATS = {0: {"isthing": 0}, 4: {"isthing": 1}, 5: {"isthing": 1}}


@pytest.mark.parametrize("fn", [panoptic_quality, panoptic_quality_loop])
def test_hand_computed_4x4(fn):
    r = fn(PRED, PRED_SEGMENTS, GT, GT_SEGMENTS, HAND_CATS)
    assert r["per_class"][4] == pytest.approx({"pq": 0.8, "sq": 0.8, "rq": 1.0})
    assert r["per_class"][5] == pytest.approx({"pq": 0.0, "sq": 0.0, "rq": 0.0})
    assert r["per_class"][0] == pytest.approx({"pq": 5 / 6, "sq": 5 / 6, "rq": 1.0})
    assert r["Things"] == pytest.approx({"pq": 0.4, "sq": 0.4, "rq": 0.5, "n": 2})
    assert r["Stuff"] == pytest.approx({"pq": 5 / 6, "sq": 5 / 6, "rq": 1.0, "n": 1})
    mean = (0.8 + 5 / 6) / 3
    assert r["All"] == pytest.approx({"pq": mean, "sq": mean, "rq": 2 / 3, "n": 3})
    assert_results_close(r, pq_compute([(PRED, PRED_SEGMENTS, GT, GT_SEGMENTS)], HAND_CATS))


@pytest.mark.parametrize("fn", [panoptic_quality, panoptic_quality_loop])
def test_lecture_example_one_tp_one_fp_one_fn(fn):
    # one category: a TP with IoU 0.8, one FP, one FN -> SQ 0.8, RQ 1 / (1 + 1/2 + 1/2) = 0.5,
    # PQ 0.4
    gt = torch.tensor([[1, 1, 1, 1, 1, 5, 5, 2]])  # circles 1 and 2 on sky 5
    pred = torch.tensor([[1, 1, 1, 1, 0, 3, 0, 0]])  # pred 1: IoU 4/5; pred 3 on sky; gt 2 missed
    r = fn(pred, [{"id": 1, "category_id": 4}, {"id": 3, "category_id": 4}], gt,
           [{"id": 1, "category_id": 4}, {"id": 2, "category_id": 4}, {"id": 5, "category_id": 0}],
           {0: {"isthing": 0}, 4: {"isthing": 1}})
    assert r["Things"] == pytest.approx({"pq": 0.4, "sq": 0.8, "rq": 0.5, "n": 1})


def test_crowd_and_void_are_not_false_positives():
    # gt: sky (1) everywhere but a crowd of circles (2) in column 0; pred 2 (circle) covers
    # column 0 (4 px on the crowd) + one sky pixel: 4/5 on crowd -> ignored, not an FP
    gt = torch.ones(4, 4, dtype=torch.int64)
    gt[:, 0] = 2
    pred = torch.ones(4, 4, dtype=torch.int64)
    pred[:, 0] = 2
    pred[0, 1] = 2
    cats = {0: {"isthing": 0}, 4: {"isthing": 1}}
    gt_seg = [{"id": 1, "category_id": 0, "iscrowd": 0}, {"id": 2, "category_id": 4, "iscrowd": 1}]
    pred_seg = [{"id": 1, "category_id": 0}, {"id": 2, "category_id": 4}]
    r = panoptic_quality(pred, pred_seg, gt, gt_seg, cats)
    assert r["Things"]["n"] == 0 and r["per_class"][4] == {"pq": 0.0, "sq": 0.0, "rq": 0.0}
    # sky: 11 / (11 + 12 - 11)
    assert r["Stuff"] == pytest.approx({"pq": 11 / 12, "sq": 11 / 12, "rq": 1.0, "n": 1})
    # not crowd: the same pixels are a TP with IoU 4 / 5
    r = panoptic_quality(pred, pred_seg, gt, [gt_seg[0], dict(gt_seg[1], iscrowd=0)], cats)
    assert r["per_class"][4] == pytest.approx({"pq": 0.8, "sq": 0.8, "rq": 1.0})
    # a prediction mostly on void is ignored; on real stuff it is an FP
    gt_void = gt.clone()
    gt_void[:, 0] = 0
    r = panoptic_quality(pred, pred_seg, gt_void, [gt_seg[0]], cats)
    assert r["Things"]["n"] == 0
    r = panoptic_quality(pred, pred_seg, torch.ones_like(gt), [gt_seg[0]], cats)
    assert r["per_class"][4] == pytest.approx({"pq": 0.0, "sq": 0.0, "rq": 0.0})
    assert r["Things"]["n"] == 1


def test_iou_exactly_half_is_not_a_match():
    gt = torch.tensor([[1, 1, 2, 2]])
    pred = torch.tensor([[1, 1, 1, 1]])  # IoU of gt 1 and pred 1 is 2 / 4 = 0.5: not > 0.5
    r = panoptic_quality(pred, [{"id": 1, "category_id": 4}], gt,
                         [{"id": 1, "category_id": 4}, {"id": 2, "category_id": 0}],
                         {0: {"isthing": 0}, 4: {"isthing": 1}})
    assert r["per_class"][4]["rq"] == 0.0


# ---- against the reference ---------------------------------------------------------------------

@pytest.mark.parametrize("seed", range(12))
def test_random_images_match_panopticapi(seed):
    rng = np.random.default_rng(seed)
    images = [random_image(rng, size=int(rng.integers(8, 24))) for _ in range(4)]
    ref = pq_compute(images, CATS)
    args = [list(x) for x in zip(*images, strict=True)]
    assert_results_close(panoptic_quality(*args, CATS), ref)
    assert_results_close(panoptic_quality_loop(*args, CATS), ref)
    for image in images:  # and one image at a time
        assert_results_close(panoptic_quality(*image, CATS), pq_compute([image], CATS))


def test_pq_stat_accumulates_like_one_call():
    rng = np.random.default_rng(7)
    images = [random_image(rng) for _ in range(5)]
    stat = PQStat()
    for image in images:
        stat.update(*image, CATS)
    halves = PQStat()
    for image in images[:2]:
        halves.update(*image, CATS)
    rest = PQStat()
    for image in images[2:]:
        rest.update(*image, CATS)
    halves += rest
    ref = pq_compute(images, CATS)
    assert_results_close(stat.summary(CATS), ref)
    assert_results_close(halves.summary(CATS), ref, atol=1e-12)  # summed in another order
    batch = PQStat().update(*[list(x) for x in zip(*images, strict=True)], CATS)
    assert_results_close(batch.summary(CATS), ref)


def test_batch_tensor_input():
    rng = np.random.default_rng(3)
    images = [random_image(rng, size=16) for _ in range(3)]
    pred, pred_seg, gt, gt_seg = (list(x) for x in zip(*images, strict=True))
    ours = panoptic_quality(torch.stack(pred), pred_seg, torch.stack(gt), gt_seg, CATS)
    assert_results_close(ours, pq_compute(images, CATS))


@pytest.mark.parametrize("seed", [0, 5, 11])
def test_ground_truth_against_itself_is_perfect(seed):
    scene = render_scene(seed, p_crowd=1.0)
    ids, segments = panoptic_ids(scene)
    r = panoptic_quality(ids, segments, ids, segments, SHAPESWORLD_CATEGORIES)
    for name in ("All", "Things", "Stuff"):
        assert r[name]["pq"] == r[name]["sq"] == r[name]["rq"] == 1.0
    assert r["All"]["n"] == len({s["category_id"] for s in segments if not s["iscrowd"]})


def test_shapesworld_scenes_match_reference():
    scenes = [render_scene(s, p_crowd=0.5) for s in range(6)]
    images = []
    for k, scene in enumerate(scenes):  # prediction: the ground truth of a different scene
        pred_ids, pred_seg = panoptic_ids(scenes[(k + 1) % len(scenes)])
        gt_ids, gt_seg = panoptic_ids(scene)
        pred_seg = [{"id": s["id"], "category_id": s["category_id"]} for s in pred_seg]
        images.append((pred_ids, pred_seg, gt_ids, gt_seg))
    cats = {k: {"isthing": v["isthing"]} for k, v in SHAPESWORLD_CATEGORIES.items()}
    ours = panoptic_quality(*[list(x) for x in zip(*images, strict=True)], cats)
    assert_results_close(ours, pq_compute(images, cats))


def as_batch(images):
    """[(pred_ids, pred_segments, gt_ids, gt_segments), ...] -> four lists, one entry per image."""
    return [list(x) for x in zip(*images, strict=True)]


def renumber(images, new_id):
    """The same images with every segment id i written new_id(i); void (0) stays 0."""
    def remap(ids):
        return torch.where(ids == VOID, VOID, new_id(ids))

    return [(remap(pred), [dict(s, id=new_id(s["id"])) for s in pred_seg],
             remap(gt), [dict(s, id=new_id(s["id"])) for s in gt_seg])
            for pred, pred_seg, gt, gt_seg in images]


def test_device(device):
    r = panoptic_quality(PRED.to(device), PRED_SEGMENTS, GT.to(device), GT_SEGMENTS, HAND_CATS)
    assert r["All"]["rq"] == pytest.approx(2 / 3) and r["Things"]["pq"] == pytest.approx(0.4)


@pytest.mark.parametrize("seed", range(3))
def test_device_matches_reference(device, seed):
    rng = np.random.default_rng(200 + seed)
    images = [random_image(rng, size=int(rng.integers(8, 24))) for _ in range(4)]
    ref = pq_compute(images, CATS)  # on the CPU, with numpy
    on_device = [(p.to(device), ps, g.to(device), gs) for p, ps, g, gs in images]
    assert_results_close(panoptic_quality(*as_batch(on_device), CATS), ref)
    assert_results_close(panoptic_quality_loop(*as_batch(on_device), CATS), ref)


@pytest.mark.parametrize("scale, calls", [(1_000_003, 1), (2 ** 52, 5)])
def test_large_segment_ids(scale, calls, monkeypatch):
    # ids up to 1e9: too many for a look-up table, found by binary search instead; ids near
    # 2 ** 62: image b's keys b * span + id would overflow int64, so one image at a time
    rng = np.random.default_rng(31)
    images = [random_image(rng, size=int(rng.integers(8, 24))) for _ in range(4)]
    counted = []
    count = quality._count
    monkeypatch.setattr(quality, "_count", lambda *a: counted.append(1) or count(*a))
    big = renumber(images, lambda i: i * scale + 7)
    ref = pq_compute(images, CATS)
    # one image at a time, the IoUs are summed image by image: equal to rounding
    assert_results_close(panoptic_quality(*as_batch(big), CATS), ref, atol=1e-12)
    assert len(counted) == calls
    assert_results_close(panoptic_quality_loop(*as_batch(big), CATS), ref)


def test_batches_split_to_bound_memory(monkeypatch):
    # a histogram holds at most MAX_PIXELS pixels and a table MAX_TABLE entries: many groups
    rng = np.random.default_rng(41)
    images = [random_image(rng, size=int(rng.integers(8, 24))) for _ in range(6)]
    monkeypatch.setattr(quality, "MAX_PIXELS", 300)
    monkeypatch.setattr(quality, "MAX_TABLE", 150)
    groups = []
    count = quality._count
    monkeypatch.setattr(quality, "_count", lambda *a: groups.append(a[1]) or count(*a))
    ours = panoptic_quality(*as_batch(images), CATS)
    assert len(groups) > 3 and sum(groups, []) == list(range(6))  # in order, each image once
    # summed group by group, not image by image as panopticapi: equal to rounding
    assert_results_close(ours, pq_compute(images, CATS), atol=1e-12)


def test_empty_image_in_a_batch():
    # an image with no pixels: its listed gt segment is a FN, as in panopticapi
    rng = np.random.default_rng(5)
    empty = (torch.zeros(0, 3, dtype=torch.int64), [], torch.zeros(0, 3, dtype=torch.int64),
             [{"id": 3, "category_id": 4, "iscrowd": 0}])
    for images in ([random_image(rng), empty, random_image(rng)], [empty, empty]):
        ref = pq_compute(images, CATS)
        assert_results_close(panoptic_quality(*as_batch(images), CATS), ref)
        assert_results_close(panoptic_quality_loop(*as_batch(images), CATS), ref)


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int16, torch.int32])
def test_integer_dtypes(dtype):
    rng = np.random.default_rng(9)
    images = renumber([random_image(rng) for _ in range(3)], lambda i: i % 1000 + 100 * (i // 1000))
    ref = pq_compute(images, CATS)
    small = [(p.to(dtype), ps, g.to(dtype), gs) for p, ps, g, gs in images]
    assert_results_close(panoptic_quality(*as_batch(small), CATS), ref)
    assert_results_close(panoptic_quality_loop(*as_batch(small), CATS), ref)


# ---- bad input -------------------------------------------------------------------------------

TWO = dict(pred_ids=[PRED, PRED], gt_ids=[GT, GT], pred_segments=[PRED_SEGMENTS] * 2,
           gt_segments=[GT_SEGMENTS] * 2)


@pytest.mark.parametrize("change, error, match", [
    (dict(pred_ids=PRED.float()), TypeError,
     r"pred_ids must be an integer Tensor\[H, W\] of segment ids \(int64, int32, uint8, \.\.\.\), "
     r"got Tensor\[4, 4\] float32"),
    (dict(gt_ids=GT.bool()), TypeError, r"gt_ids must be an integer Tensor\[H, W\]"),
    (dict(gt_ids=GT[None, None]), ValueError,
     r"gt_ids must be an integer Tensor\[H, W\] of segment ids, got Tensor\[1, 1, 4, 4\]"),
    (dict(gt_ids=GT[:3]), ValueError, r"pred_ids and gt_ids must have the same shape"),
    (dict(pred_ids=PRED - 5), ValueError, r"pred_ids must hold segment ids >= 0, got -5"),
    (dict(pred_segments=PRED_SEGMENTS[:2]), ValueError,
     r"pred_ids contains segment id 3, which pred_segments does not list"),
    (dict(pred_segments=PRED_SEGMENTS + [{"id": 9, "category_id": 4}]), ValueError,
     r"pred_segments lists segment id 9, which pred_ids does not contain"),
    (dict(gt_segments=GT_SEGMENTS[1:]), ValueError,
     r"gt_ids contains segment id 1, which gt_segments does not list"),
    (dict(pred_segments=[{"id": 1}]), ValueError,
     r"pred_segments\[0\] must be a dict with 'id' and 'category_id'"),
    (dict(pred_segments=PRED_SEGMENTS + [{"id": 1, "category_id": 4}]), ValueError,
     r"pred_segments lists segment id 1 twice"),
    (dict(pred_segments=[{"id": 0, "category_id": 4}]), ValueError,
     r"pred_segments\[0\] has id 0, which is void_id"),
    (dict(pred_segments=[dict(s, category_id=7) for s in PRED_SEGMENTS]), ValueError,
     r"pred_segments\[0\] has category_id 7, which is not in categories"),
    (dict(gt_segments="abc"), TypeError, r"gt_segments must be a list of dicts"),
    (dict(categories=[0, 4]), TypeError, r"categories must be a non-empty dict"),
    (dict(categories={0: {}, 4: {"isthing": 1}, 5: {"isthing": 1}}), ValueError,
     r"categories\[0\] must be a dict with an 'isthing'"),
    (dict(void_id=1.5), TypeError, r"void_id must be an int, got float"),
    (dict(void_id=True), TypeError, r"void_id must be an int, got bool"),
    (dict(void_id=-1), ValueError, r"void_id must be >= 0, got -1"),
    (dict(pred_ids="abc"), TypeError,
     r"pred_ids must be Tensor\[H, W\], Tensor\[B, H, W\] or a list"),
    (dict(pred_ids=[PRED, PRED]), TypeError,
     r"gt_ids must be a list with one entry per image \(2\) when pred_ids holds many images, "
     r"got Tensor\[4, 4\] int64"),
    (dict(TWO, gt_ids=[GT]), ValueError,
     r"gt_ids must be a list with one entry per image \(2\) .*, got 1 entries"),
    (dict(pred_ids=[], gt_ids=[], pred_segments=[], gt_segments=[]), ValueError,
     r"pred_ids must hold at least one image, got an empty list"),
    (dict(TWO, pred_segments=[PRED_SEGMENTS, PRED_SEGMENTS[:2]]), ValueError,
     r"pred_ids\[1\] contains segment id 3, which pred_segments\[1\] does not list"),
    (dict(TWO, gt_segments=[GT_SEGMENTS[1:], GT_SEGMENTS]), ValueError,
     r"gt_ids\[0\] contains segment id 1, which gt_segments\[0\] does not list"),
    (dict(TWO, pred_ids=[PRED, PRED - 5]), ValueError, r"pred_ids\[1\] must hold segment ids >= 0"),
    (dict(TWO, pred_segments=[PRED_SEGMENTS, PRED_SEGMENTS + [{"id": 9, "category_id": 4}]]),
     ValueError, r"pred_segments\[1\] lists segment id 9, which pred_ids\[1\] does not contain"),
    (dict(TWO, gt_ids=[GT, GT.float()]), TypeError, r"gt_ids\[1\] must be an integer Tensor"),
    (dict(TWO, gt_segments=[GT_SEGMENTS, [{"id": 1, "category_id": 4}] * 2]), ValueError,
     r"gt_segments\[1\] lists segment id 1 twice"),
])
@pytest.mark.parametrize("fn", [panoptic_quality, panoptic_quality_loop],
                         ids=["vectorised", "loop"])
def test_bad_input(change, error, match, fn):
    args = dict(pred_ids=PRED, pred_segments=PRED_SEGMENTS, gt_ids=GT, gt_segments=GT_SEGMENTS,
                categories=HAND_CATS)
    args.update(change)
    with pytest.raises(error, match=match):
        fn(**args)


@pytest.mark.parametrize("seed", range(4))
def test_another_void_id_gives_the_same_result(seed):
    rng = np.random.default_rng(100 + seed)
    images = [random_image(rng, size=16) for _ in range(3)]
    ref = pq_compute(images, CATS)  # void is 0 here
    moved = []
    for pred, pred_seg, gt, gt_seg in images:  # the same images with void written as 777
        moved.append((torch.where(pred == VOID, 777, pred), pred_seg,
                      torch.where(gt == VOID, 777, gt), gt_seg))
    assert_results_close(panoptic_quality(*as_batch(moved), CATS, void_id=777), ref)
    assert_results_close(panoptic_quality_loop(*as_batch(moved), CATS, void_id=777), ref)
