"""Our COCO-style AP against pycocotools' COCOeval (every precision / recall value), and by hand."""

import numpy as np
import pytest
import torch

from coursekit.instance import average_precision, evaluate_coco_style
from coursekit.instance.ap import (
    IOU_THRESHOLDS,
    RECALL_THRESHOLDS,
    accumulate,
    box_iou_xywh,
    evaluate_image,
    linspace,
    mask_iou,
    match_image,
    precision_envelope,
    sample_at_recalls,
    summarize,
)

pytest.importorskip("pycocotools")
from pycocotools import mask as mask_utils  # noqa: E402

from coursekit.instance.coco_eval import coco_evaluate, to_coco_ground_truth  # noqa: E402

# The IoUs are bit for bit pycocotools' (exact pixel counts, the same float64 division) and
# the precision arithmetic is COCOeval's, so the results agree to rounding, not to 1e-3.
TOL = 1e-12
AREAS = {"all": None, "small": (0.0, 32.0**2), "medium": (32.0**2, 96.0**2),
         "large": (96.0**2, 1e10)}  # COCO's area ranges: APs, APm, APl


def rect_masks(boxes, H, W):
    ys, xs = torch.arange(H)[:, None], torch.arange(W)[None]
    b = boxes.round().long()[:, :, None, None]  # (N, 4, 1, 1)
    return (ys >= b[:, 1]) & (ys < b[:, 3]) & (xs >= b[:, 0]) & (xs < b[:, 2])


def synthetic(n_images, seed, size=32, categories=3, jitter=0.6, side=10.0):
    """Random ground truths (some crowd) and predictions: jittered copies, wrong labels, FPs."""
    g = torch.Generator().manual_seed(seed)
    corner = size - side - 2
    preds, gts = [], []
    for _ in range(n_images):
        G = int(torch.randint(0, 6, (1,), generator=g))
        xy = torch.rand(G, 2, generator=g) * corner
        wh = torch.rand(G, 2, generator=g) * side + 2
        gt_boxes = torch.cat([xy, (xy + wh).clamp(max=size)], 1).round()
        gt_labels = torch.randint(0, categories, (G,), generator=g)
        keep = torch.rand(G, generator=g) < 0.8
        boxes = gt_boxes[keep] + torch.randn(int(keep.sum()), 4, generator=g) * jitter
        labels = gt_labels[keep].clone()
        flip = torch.rand(len(labels), generator=g) < 0.1
        labels[flip] = torch.randint(0, categories, (int(flip.sum()),), generator=g)
        F = int(torch.randint(0, 4, (1,), generator=g))
        fxy = torch.rand(F, 2, generator=g) * corner
        fwh = torch.rand(F, 2, generator=g) * side + 1
        boxes = torch.cat([boxes, torch.cat([fxy, fxy + fwh], 1)])
        boxes = torch.cat([boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2] + 0.5)], 1)
        labels = torch.cat([labels, torch.randint(0, categories, (F,), generator=g)])
        preds.append({"boxes": boxes, "labels": labels,
                      "scores": torch.rand(len(boxes), generator=g),
                      "masks": rect_masks(boxes, size, size)})
        gts.append({"boxes": gt_boxes, "labels": gt_labels,
                    "masks": rect_masks(gt_boxes, size, size),
                    "iscrowd": torch.rand(G, generator=g) < 0.15})
    return preds, gts


def differences(ours, ref):
    """Largest |ours - pycocotools| over every number: AP, AP50, AP75, AP per category, and
    each category's precision[t, r] and recall[t] (categories matched by label; a category
    only pycocotools lists must have no ground truth there: all -1)."""
    worst = max(abs(ours[k] - ref[k]) for k in ("ap", "ap50", "ap75"))
    assert ours["ap_per_category"].keys() == ref["ap_per_category"].keys()
    for c, v in ours["ap_per_category"].items():
        worst = max(worst, abs(v - ref["ap_per_category"][c]))
    for k, c in enumerate(ref["categories"]):
        if c in ours["categories"]:
            i = ours["categories"].index(c)
            worst = max(worst, (ours["precision"][:, :, i] - ref["precision"][:, :, k]).abs().max(),
                        (ours["recall"][:, i] - ref["recall"][:, k]).abs().max())
        else:
            assert bool((ref["precision"][:, :, k] == -1).all()), c
    assert set(ours["categories"]) <= set(ref["categories"])
    return float(worst)


def assert_same_as_pycocotools(ours, ref):
    worst = differences(ours, ref)
    assert worst <= TOL, f"ours and pycocotools differ by {worst:.3g}"


def test_thresholds_are_numpy_linspace_bit_for_bit():
    assert IOU_THRESHOLDS == np.linspace(0.5, 0.95, 10).tolist()
    assert RECALL_THRESHOLDS == np.linspace(0.0, 1.0, 101).tolist()
    assert linspace(0.0, 1.0, 3) == [0.0, 0.5, 1.0]


# ---- by hand: 2 ground truths, 3 predictions ----------------------------------------------
# A = (0, 0, 10, 10), B = (20, 20, 30, 30). p1 (score .9) on A with IoU .92, p2 (.8) on
# nothing, p3 (.7) on B with IoU .78. Precision / recall after each: 1 / .5, .5 / .5, 2/3 / 1.
# Interpolated precision: 1 for r <= .5 (51 of the 101 points), 2/3 for r > .5 (50 points):
# AP50 = (51 + 50 * 2/3) / 101 = 253/303. For t in .8 .. .9 p3 is a false positive: 51/101.
# At .95 both are: 0. AP = (6 * 253/303 + 3 * 51/101 + 0) / 10 = 1977/3030.

HAND_GT = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]),
            "labels": torch.tensor([1, 1])}]
HAND_PRED = [{"boxes": torch.tensor([[0.0, 0, 10, 9.2], [40, 40, 50, 50], [20, 20, 30, 27.8]]),
              "labels": torch.tensor([1, 1, 1]), "scores": torch.tensor([0.9, 0.8, 0.7])}]


def test_hand_computed_average_precision():
    ap = average_precision(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([True, False, True]),
                           num_gt=2)
    assert ap == pytest.approx(253 / 303, abs=1e-12)
    # an ignored detection counts neither way; scores are sorted first
    ap = average_precision(torch.tensor([0.7, 0.95, 0.8, 0.9]),
                           torch.tensor([True, True, False, True]), 2,
                           ignored=torch.tensor([False, True, False, False]))
    assert ap == pytest.approx(253 / 303, abs=1e-12)
    assert average_precision(torch.zeros(0), torch.zeros(0, dtype=torch.bool), 3) == 0.0


def test_hand_computed_envelope_and_101_point_sampling():
    # precision .5, 1, 2/3 at recalls .5, .5, 1 -> envelope 1, 1, 2/3; r <= .5 reads the first
    # point with recall >= r (1), .5 < r <= 1 reads 2/3, a recall never reached reads 0
    precision = torch.tensor([0.5, 1.0, 2 / 3], dtype=torch.float64)
    assert precision_envelope(precision).tolist() == [1.0, 1.0, 2 / 3]
    recall = torch.tensor([0.5, 0.5, 1.0], dtype=torch.float64)
    read = sample_at_recalls(recall, precision_envelope(precision), [0.0, 0.5, 0.51, 1.0])
    assert read.tolist() == [1.0, 1.0, 2 / 3, 2 / 3]
    read = sample_at_recalls(recall[:2], precision[:2], [0.25, 0.75])
    assert read.tolist() == [0.5, 0.0]


def test_hand_computed_steps():
    # step 1 on the hand case (IoU .92 with A for p1, none for p2, .78 with B for p3), then
    # steps 2-4: at t = .5 AP 253/303 and recall 1; at t = .8 p3 misses: 51/101 and recall .5
    ious = [[0.92, 0.0], [0.0, 0.0], [0.0, 0.78]]
    result = evaluate_image(ious, [0.9, 0.8, 0.7], [False, False], [False, False],
                            [False, False, False])
    assert result["matched"][0] == [True, False, True] and result["num_gt"] == 2
    assert result["matched"][6] == [True, False, False]  # t = 0.8
    precision, recall = accumulate([result])  # (10, 101), (10,)
    assert precision[0].mean().item() == pytest.approx(253 / 303, abs=1e-12)
    assert precision[6].mean().item() == pytest.approx(51 / 101, abs=1e-12)
    assert recall.tolist()[:7] == [1.0] * 6 + [0.5]
    summary = summarize(precision[:, :, None], [1])
    assert summary["ap"] == pytest.approx(1977 / 3030, abs=1e-12)
    assert summary["ap_per_category"] == {1: summary["ap"]}
    # an unmatched detection outside the area range is ignored, not a false positive
    outside = evaluate_image(ious, [0.9, 0.8, 0.7], [False, False], [False, False],
                             [False, True, False])
    assert outside["ignored"][0] == [False, True, False]
    assert accumulate([outside])[0][0].mean().item() == pytest.approx(1.0)
    # no ground truth: -1, as COCOeval
    nothing = evaluate_image([[]], [0.5], [], [], [False])
    assert accumulate([nothing])[0].eq(-1).all() and accumulate([nothing])[1].eq(-1).all()


def test_hand_computed_boxes():
    result = evaluate_coco_style(HAND_PRED, HAND_GT, "bbox")
    assert result["ap50"] == pytest.approx(253 / 303, abs=1e-12)
    assert result["ap75"] == pytest.approx(253 / 303, abs=1e-12)  # IoU .78 >= .75
    assert result["ap"] == pytest.approx(1977 / 3030, abs=1e-12)
    coco = coco_evaluate(HAND_PRED, to_coco_ground_truth(HAND_GT, image_size=(64, 64)), "bbox")
    assert coco["ap"] == pytest.approx(1977 / 3030, abs=1e-12)
    assert_same_as_pycocotools(result, coco)


def test_hand_computed_crowd_region_is_ignored():
    gt = [{**HAND_GT[0], "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30],
                                                [40, 40, 60, 60]]),
           "labels": torch.tensor([1, 1, 1]), "iscrowd": torch.tensor([False, False, True])}]
    # p2 lies inside the crowd region: |p2 ∩ crowd| / |p2| = 1, matched to the crowd: ignored
    result = evaluate_coco_style(HAND_PRED, gt, "bbox")
    assert result["ap50"] == pytest.approx((51 + 50) / 101)  # precision 1 up to recall 1
    # without the crowd flag the region is a third ground truth: p2's IoU 100/400 < .5 -> FP
    plain = evaluate_coco_style(HAND_PRED, [{**gt[0], "iscrowd": torch.zeros(3, dtype=torch.bool)}],
                                "bbox")
    assert plain["ap50"] < result["ap50"]


def test_hand_computed_greedy_matching():
    # two detections on one ground truth: the best-scoring takes it, the other is a false
    # positive; a crowd ground truth (last) can take several
    assert match_image([[0.9, 0.0], [0.8, 0.6]], [False, True], [False, True], 0.5) == (
        [True, True], [False, True])
    assert match_image([[0.9], [0.8]], [False], [False], 0.5) == ([True, False], [False, False])


@pytest.mark.parametrize("seed", range(3))
def test_ious_are_pycocotools_bit_for_bit(seed):
    preds, gts = synthetic(4, seed, size=48, side=20.0)
    for pred, gt in zip(preds, gts, strict=True):
        crowd = gt["iscrowd"]
        dt_rle = [mask_utils.encode(np.asfortranarray(m.numpy().astype(np.uint8)))
                  for m in pred["masks"]]
        gt_rle = [mask_utils.encode(np.asfortranarray(m.numpy().astype(np.uint8)))
                  for m in gt["masks"]]
        ref = mask_utils.iou(dt_rle, gt_rle, crowd.numpy().astype(np.uint8).tolist())
        ours = mask_iou(pred["masks"], gt["masks"], crowd)
        assert np.array_equal(ours.numpy(), np.asarray(ref).reshape(ours.shape))
        xywh = lambda b: torch.cat([b[:, :2], b[:, 2:] - b[:, :2]], 1).double().numpy()  # noqa
        ref = mask_utils.iou(xywh(pred["boxes"]), xywh(gt["boxes"]), crowd.numpy().tolist())
        ours = box_iou_xywh(pred["boxes"], gt["boxes"], crowd)
        assert np.array_equal(ours.numpy(), np.asarray(ref).reshape(ours.shape))


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
@pytest.mark.parametrize("area", ["all", "small"])
def test_matches_pycocotools_per_category(seed, iou_type, area):
    preds, gts = synthetic(12, seed, jitter=0.6 if seed % 2 else 1.5)
    ours = evaluate_coco_style(preds, gts, iou_type, area_range=AREAS[area])
    ref = coco_evaluate(preds, to_coco_ground_truth(gts), iou_type, area_range=AREAS[area])
    assert len(ref["categories"]) == 3 and ours["categories"] == ref["categories"]
    assert ours["precision"].shape == (10, 101, 3) and ours["recall"].shape == (10, 3)
    assert_same_as_pycocotools(ours, ref)


@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
@pytest.mark.parametrize("area", ["small", "medium", "large"])
def test_aps_apm_apl_match_pycocotools(iou_type, area):
    # objects 2 to 152 pixels wide on 160 x 160 images: all three area ranges are used
    preds, gts = synthetic(12, 21, size=160, side=150.0, jitter=3.0)
    ours = evaluate_coco_style(preds, gts, iou_type, area_range=AREAS[area])
    ref = coco_evaluate(preds, to_coco_ground_truth(gts), iou_type, area_range=AREAS[area])
    assert ours["ap"] > 0  # each range holds ground truth
    assert_same_as_pycocotools(ours, ref)


def test_max_dets_matches_pycocotools():
    preds, gts = synthetic(8, 11)
    for max_dets in (1, 3):
        ours = evaluate_coco_style(preds, gts, "segm", max_dets=max_dets)
        ref = coco_evaluate(preds, to_coco_ground_truth(gts), "segm", max_dets=max_dets)
        assert_same_as_pycocotools(ours, ref)


def test_one_flipped_detection_is_caught():
    """Swap the scores of two detections next to each other in a category's ranking: the AP
    moves by far less than the former tolerance (1e-3), which let it pass, and far more than
    TOL, so the comparisons above catch it."""
    preds, gts = synthetic(40, 5)
    ref = coco_evaluate(preds, to_coco_ground_truth(gts), "segm")
    assert_same_as_pycocotools(evaluate_coco_style(preds, gts, "segm"), ref)
    detections = [(float(s), i, k, int(c)) for i, p in enumerate(preds)
                  for k, (s, c) in enumerate(zip(p["scores"], p["labels"], strict=True))]
    ranking = sorted(detections, reverse=True)
    delta = 0.0
    for (_, i, k, c), (_, j, m, d) in zip(ranking, ranking[1:], strict=False):
        if c != d:  # neighbours in one category's ranking
            continue
        flipped = [{**p, "scores": p["scores"].clone()} for p in preds]
        flipped[i]["scores"][k] = preds[j]["scores"][m]
        flipped[j]["scores"][m] = preds[i]["scores"][k]
        ours = evaluate_coco_style(flipped, gts, "segm")
        delta = max(abs(ours[key] - ref[key]) for key in ("ap", "ap50", "ap75"))
        if 0 < delta < 1e-3:  # a true and a false positive swapped; a small change
            break
    assert 1e-9 < delta < 1e-3, delta
    for key in ("ap", "ap50", "ap75"):  # the former test: passes although a detection moved
        assert ours[key] == pytest.approx(ref[key], abs=1e-3)
    with pytest.raises(AssertionError, match="ours and pycocotools differ by"):
        assert_same_as_pycocotools(ours, ref)


def test_perfect_and_empty_predictions():
    _, gts = synthetic(6, 3)
    perfect = [{**g, "scores": torch.linspace(1, 0.5, len(g["labels"]))} for g in gts]
    assert evaluate_coco_style(perfect, gts)["ap"] == pytest.approx(1.0)
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long),
              "scores": torch.zeros(0), "masks": torch.zeros(0, 32, 32, dtype=torch.bool)}
             for _ in gts]
    assert evaluate_coco_style(empty, gts)["ap"] == 0.0
    assert coco_evaluate(empty, to_coco_ground_truth(gts))["ap"] == 0.0
    no_truth = [{**e, "iscrowd": torch.zeros(0, dtype=torch.bool)} for e in empty]
    assert evaluate_coco_style(empty, no_truth)["ap"] == -1.0


def test_bad_input():
    preds, gts = synthetic(2, 0)
    with pytest.raises(ValueError, match="iou_type must be 'segm' or 'bbox'"):
        evaluate_coco_style(preds, gts, "keypoints")
    with pytest.raises(ValueError, match="one entry per image, got 2 and 1"):
        evaluate_coco_style(preds, gts[:1])
    with pytest.raises(TypeError, match="predictions must be a list with one dict per image"):
        evaluate_coco_style(preds[0], gts)
    bad = [{**preds[0], "boxes": preds[0]["boxes"][:, :3]}] + preds[1:]
    with pytest.raises(ValueError, match=r"predictions\[0\]\['boxes'\] must be Tensor\[N, 4\]"):
        evaluate_coco_style(bad, gts)
    with pytest.raises(ValueError, match=r"predictions\[1\] must be a dict with keys"):
        evaluate_coco_style([preds[0], {"boxes": preds[1]["boxes"]}], gts)
    with pytest.raises(ValueError, match=r"ground_truths\[0\]\['masks'\] must be Tensor\[N, H"):
        evaluate_coco_style(preds, [{**gts[0], "masks": gts[0]["masks"][:0]}, gts[1]])
    with pytest.raises(TypeError, match="max_dets must be an int"):
        evaluate_coco_style(preds, gts, max_dets=1.5)
    with pytest.raises(ValueError, match="num_gt must be a positive int"):
        average_precision(torch.zeros(2), torch.zeros(2, dtype=torch.bool), 0)
    with pytest.raises(ValueError, match=r"matched must be a bool Tensor\[D\] with D = 2"):
        average_precision(torch.zeros(2), torch.zeros(3, dtype=torch.bool), 1)
    with pytest.raises(TypeError, match=r"matched must be a bool Tensor\[D\].*Tensor\[2\] int64"):
        average_precision(torch.zeros(2), torch.zeros(2, dtype=torch.long), 1)


@pytest.mark.parametrize("who", ["predictions", "ground_truths"])
def test_float_masks_are_refused(who):
    # a float mask would get a soft IoU here but be truncated to 0/1 by pycocotools' RLE
    preds, gts = synthetic(2, 0)
    entries = {"predictions": preds, "ground_truths": gts}
    entries[who] = [{**e, "masks": e["masks"].float() * 0.9} for e in entries[who]]
    match = rf"{who}\[0\]\['masks'\] must be a bool Tensor\[N, H, W\].*got Tensor\[.*\] float32"
    with pytest.raises(TypeError, match=match):
        evaluate_coco_style(entries["predictions"], entries["ground_truths"], "segm")
    if who == "predictions":
        with pytest.raises(TypeError, match=match):
            coco_evaluate(entries["predictions"], to_coco_ground_truth(gts), "segm")
    with pytest.raises(TypeError, match=r"dt must be a bool Tensor\[D, H, W\]"):
        mask_iou(preds[0]["masks"].float(), gts[0]["masks"], gts[0]["iscrowd"])


def test_device(device):
    # ours on the device; pycocotools on CPU copies
    preds, gts = synthetic(6, 7)
    move = lambda entries: [{k: v.to(device) for k, v in e.items()} for e in entries]  # noqa: E731
    coco_gt = to_coco_ground_truth(gts)
    for iou_type in ("segm", "bbox"):
        assert_same_as_pycocotools(evaluate_coco_style(move(preds), move(gts), iou_type),
                                   coco_evaluate(preds, coco_gt, iou_type))
