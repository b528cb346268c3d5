"""Property tests (hypothesis) for the metrics: segmentation (confusion matrix, IoU, mIoU,
pixel accuracy, boundary band) and panoptic quality.

Drawn: label maps of any shape (empty ones included) and integer dtype, with ignored pixels;
random panoptic ground truths (stuff, things, crowd, void, listed-but-absent segments) and
predictions made from them. References: numpy's ``histogram2d`` and boolean masks for the
segmentation metrics, a pixel loop for the band, and panopticapi's loops
(``panoptic_quality_loop``) for PQ; plus the invariants of the definitions. Checked on every
device this machine has; seeded (``derandomize=True``).
"""

import math

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from props import PROPS, assert_pq_equal, on_devices, seeds
from torch.testing import assert_close

from coursekit.panoptic import panoptic_quality, panoptic_quality_loop
from coursekit.segmentation import (
    boundary_band,
    confusion_matrix,
    iou_from_confusion,
    iou_per_class,
    mean_iou,
    pixel_accuracy,
)

shapes = st.one_of(st.tuples(st.integers(0, 12)),
                   st.tuples(st.integers(0, 2), st.integers(0, 6), st.integers(0, 6)))
id_dtypes = st.sampled_from([torch.int64, torch.int32, torch.int16, torch.uint8])
IGNORE = 255


def label_maps(seed, shape, num_classes, p_ignore, device, dtype=torch.int64):
    g = torch.Generator().manual_seed(seed)
    target = torch.randint(0, num_classes, shape, generator=g)
    target[torch.rand(shape, generator=g) < p_ignore] = IGNORE
    pred = torch.where(torch.rand(shape, generator=g) < 0.5, target.clamp(max=num_classes - 1),
                       torch.randint(0, num_classes, shape, generator=g))
    return pred.to(device, dtype), target.to(device, dtype)


def iou_with_masks(pred, target, num_classes):
    """IoU per class from boolean masks in float64: the definition, class by class."""
    valid = target != IGNORE
    ious = []
    for c in range(num_classes):
        p, t = (pred == c) & valid, (target == c) & valid
        union = int((p | t).sum())
        ious.append(int((p & t).sum()) / union if union else math.nan)
    return torch.tensor(ious, dtype=torch.float64)


# ----------------------------------------------------------------------- segmentation
@on_devices
@PROPS
@given(seed=seeds, shape=shapes, num_classes=st.integers(1, 6),
       p_ignore=st.sampled_from([0.0, 0.2, 1.0]), dtype=id_dtypes)
def test_confusion_matrix_and_iou_are_the_references(device, seed, shape, num_classes, p_ignore,
                                                     dtype):
    pred, target = label_maps(seed, shape, num_classes, p_ignore, device, dtype)
    matrix = confusion_matrix(pred, target, num_classes)
    assert matrix.shape == (num_classes, num_classes) and matrix.dtype == torch.int64
    assert matrix.device == pred.device
    valid = target != IGNORE
    hist, _, _ = np.histogram2d(target[valid].cpu().numpy(), pred[valid].cpu().numpy(),
                                bins=num_classes, range=[[0, num_classes], [0, num_classes]])
    assert np.array_equal(matrix.cpu().numpy(), hist.astype(np.int64))
    assert int(matrix.sum()) == int(valid.sum())
    expected = iou_with_masks(pred.cpu().long(), target.cpu().long(), num_classes)
    ious = iou_per_class(pred, target, num_classes)
    assert ious.dtype == torch.float64 and ious.device == pred.device
    assert_close(ious.cpu(), expected, equal_nan=True)
    real = ious[~ious.isnan()]
    assert bool(((real >= 0) & (real <= 1)).all())
    miou = mean_iou(pred, target, num_classes)
    accuracy = pixel_accuracy(pred, target, num_classes)
    if int(valid.sum()) == 0:  # nothing to score (empty, or every pixel ignored): NaN
        assert math.isnan(miou) and math.isnan(accuracy)
    else:
        assert miou == pytest.approx(float(np.nanmean(expected.numpy())))
        assert accuracy == pytest.approx(float((pred == target)[valid].double().mean()))


@on_devices
@PROPS
@given(seed=seeds, shape=shapes, num_classes=st.integers(1, 6))
def test_metrics_symmetric_and_perfect(device, seed, shape, num_classes):
    pred, target = label_maps(seed, shape, num_classes, 0.0, device)
    # without ignored pixels, truth and prediction swap roles: the matrix transposes and
    # the IoU of each class stays
    assert torch.equal(confusion_matrix(target, pred, num_classes),
                       confusion_matrix(pred, target, num_classes).t())
    assert_close(iou_per_class(target, pred, num_classes), iou_per_class(pred, target, num_classes),
                 equal_nan=True)
    # a perfect prediction: IoU 1 for the classes present, NaN for the others
    perfect = iou_per_class(target, target, num_classes)
    present = torch.bincount(target.flatten().cpu(), minlength=num_classes) > 0
    assert bool((perfect.cpu()[present] == 1).all()) and bool(perfect.cpu()[~present].isnan().all())
    if target.numel():
        assert pixel_accuracy(target, target, num_classes) == 1.0
        assert mean_iou(target, target, num_classes) == 1.0


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(1, 4), hw=st.tuples(st.integers(0, 6), st.integers(0, 6)),
       num_classes=st.integers(1, 5))
def test_confusion_matrices_add_up_to_the_dataset(device, seed, n, hw, num_classes):
    pred, target = label_maps(seed, (n, *hw), num_classes, 0.2, device)
    total = sum(confusion_matrix(p, t, num_classes) for p, t in zip(pred, target, strict=True))
    assert torch.equal(total, confusion_matrix(pred, target, num_classes))
    assert_close(iou_from_confusion(total), iou_per_class(pred, target, num_classes),
                 equal_nan=True)
    assert_close(iou_from_confusion(total.double() / 3), iou_from_confusion(total),
                 equal_nan=True)  # counts as floats (averaged matrices): the same IoU


def test_iou_from_averaged_confusion_by_hand():
    # the bug the property above found: union.clamp(min=1) divided 1/3 by 1 instead of 1/3
    # class 0: TP 2/4, FN 1/4 (truth 0 predicted 1): IoU 2/3; class 1: FP 1/4, no TP: IoU 0
    averaged = torch.tensor([[2.0, 1.0], [0.0, 0.0]]) / 4
    assert_close(iou_from_confusion(averaged), torch.tensor([2 / 3, 0.0], dtype=torch.float64))
    assert_close(iou_from_confusion(torch.tensor([[1.0]]) / 3),
                 torch.tensor([1.0], dtype=torch.float64))


def band_with_loops(target, width):
    t = target.cpu().long().reshape(-1, *target.shape[-2:]).numpy()
    out = np.zeros(t.shape, dtype=bool)
    for n, y, x in np.ndindex(*t.shape):
        if t[n, y, x] == IGNORE:
            continue
        window = t[n, max(0, y - width):y + width + 1, max(0, x - width):x + width + 1]
        out[n, y, x] = bool(((window != IGNORE) & (window != t[n, y, x])).any())
    return torch.from_numpy(out).reshape(target.shape)


@on_devices
@PROPS
@given(seed=seeds, shape=st.one_of(st.tuples(st.integers(1, 7), st.integers(1, 7)),
                                   st.tuples(st.integers(0, 2), st.integers(1, 6),
                                             st.integers(1, 6))),
       width=st.integers(1, 3), num_classes=st.integers(1, 3), dtype=id_dtypes)
def test_boundary_band_is_the_loop(device, seed, shape, width, num_classes, dtype):
    _, target = label_maps(seed, shape, num_classes, 0.15, device, dtype)
    band = boundary_band(target, width)
    assert band.dtype == torch.bool and band.shape == target.shape and band.device == target.device
    assert torch.equal(band.cpu(), band_with_loops(target, width))
    assert not bool(band[target == IGNORE].any())  # ignored pixels are never in the band


# ----------------------------------------------------------------------------- panoptic
CATEGORIES = {1: {"isthing": 0}, 2: {"isthing": 0}, 3: {"isthing": 1}, 4: {"isthing": 1}}


def random_panoptic(seed, H, W):
    """(pred_ids, pred_segments, gt_ids, gt_segments) of one image, int64 on the CPU."""
    rng = np.random.default_rng(seed)
    k = int(rng.integers(1, 6))
    gt_ids_pool = rng.permutation(np.arange(1, 30))[:k]
    gt = np.zeros((H, W), np.int64)
    if H and W:  # segments: rectangles painted over a stuff background, some void
        gt[:] = gt_ids_pool[0]
        for sid in gt_ids_pool[1:]:
            y, x = rng.integers(0, H), rng.integers(0, W)
            gt[y:y + rng.integers(1, H + 1), x:x + rng.integers(1, W + 1)] = sid
        gt[rng.random((H, W)) < 0.1] = 0
    gt_segments = []
    for i, sid in enumerate(gt_ids_pool.tolist()):
        cat = int(rng.choice([1, 2])) if i == 0 else int(rng.choice([1, 2, 3, 4]))
        crowd = int(CATEGORIES[cat]["isthing"] == 1 and rng.random() < 0.3)
        gt_segments.append({"id": sid, "category_id": cat, "iscrowd": crowd})
    # listed but absent segments stay (an FN, as in panopticapi); a prediction: the gt, shifted,
    # noisy, with extra segments, renumbered, with some categories changed
    pred = np.roll(gt, (int(rng.integers(-1, 2)), int(rng.integers(-1, 2))), axis=(0, 1))
    noise = rng.random((H, W)) < 0.15
    pred[noise] = rng.choice(np.concatenate([[0], gt_ids_pool, [40, 41]]), size=int(noise.sum()))
    old = sorted(set(np.unique(pred).tolist()) - {0})
    new = rng.permutation(np.arange(1, 100))[:len(old)]
    out = np.zeros_like(pred)
    gt_cat = {s["id"]: s["category_id"] for s in gt_segments}
    pred_segments = []
    for o, n in zip(old, new.tolist(), strict=True):
        out[pred == o] = n
        cat = gt_cat.get(o, int(rng.choice([3, 4])))
        if rng.random() < 0.15:
            cat = int(rng.choice(list(CATEGORIES)))
        pred_segments.append({"id": n, "category_id": cat})
    return torch.from_numpy(out), pred_segments, torch.from_numpy(gt), gt_segments


panoptic_images = st.lists(st.tuples(seeds, st.integers(0, 8), st.integers(1, 8)), min_size=1,
                           max_size=3)


@on_devices
@PROPS
@given(images=panoptic_images, dtype=st.sampled_from([torch.int64, torch.int32, torch.uint8]))
def test_panoptic_quality_is_the_loop(device, images, dtype):
    data = [random_panoptic(seed, H, W) for seed, H, W in images]
    on_device = [(p.to(device, dtype), ps, g.to(device, dtype), gs) for p, ps, g, gs in data]
    batch = [list(x) for x in zip(*on_device, strict=True)]
    ours = panoptic_quality(*batch, CATEGORIES)
    assert_pq_equal(ours, panoptic_quality_loop(*[list(x) for x in zip(*data, strict=True)],
                                                CATEGORIES))
    for values in ours["per_class"].values():  # PQ = SQ x RQ, each in [0, 1]
        assert all(0 <= v <= 1 for v in values.values())
        assert values["pq"] == pytest.approx(values["sq"] * values["rq"], abs=1e-12)
    # one image at a time, and the same maps transposed (PQ does not see geometry)
    for image in on_device:
        ref = panoptic_quality_loop(*image, CATEGORIES)
        assert_pq_equal(panoptic_quality(*image, CATEGORIES), ref)
        p, ps, g, gs = image
        assert_pq_equal(panoptic_quality(p.t(), ps, g.t(), gs, CATEGORIES), ref)


@on_devices
@PROPS
@given(seed=seeds, H=st.integers(1, 8), W=st.integers(1, 8), shift=st.integers(1, 1000))
def test_panoptic_quality_renumbering_and_perfect_prediction(device, seed, H, W, shift):
    pred, pred_seg, gt, gt_seg = random_panoptic(seed, H, W)
    ref = panoptic_quality(pred.to(device), pred_seg, gt.to(device), gt_seg, CATEGORIES)
    # segment ids are names: shifting every non-void id changes nothing
    def renumber(ids, segments):
        return (torch.where(ids == 0, 0, ids + shift).to(device),
                [dict(s, id=s["id"] + shift) for s in segments])
    assert_pq_equal(panoptic_quality(*renumber(pred, pred_seg), *renumber(gt, gt_seg),
                                     CATEGORIES), ref)
    # the ground truth's present segments as the prediction: PQ = SQ = RQ = 1 wherever a
    # category is counted
    present = set(gt.unique().tolist())
    gt_seg = [s for s in gt_seg if s["id"] in present]
    as_pred = [{"id": s["id"], "category_id": s["category_id"]} for s in gt_seg]
    r = panoptic_quality(gt.to(device), as_pred, gt.to(device), gt_seg, CATEGORIES)
    counted = {s["category_id"] for s in gt_seg if not s["iscrowd"]}
    for cid in counted:
        assert r["per_class"][cid] == {"pq": 1.0, "sq": 1.0, "rq": 1.0}
    assert r["All"]["n"] == len(counted)
    for name in ("All", "Things", "Stuff"):
        assert r[name]["pq"] == (1.0 if r[name]["n"] else 0.0)
