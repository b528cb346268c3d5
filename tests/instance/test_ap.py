"""Our COCO-style AP against pycocotools' COCOeval, and by hand."""

import numpy as np
import pytest
import torch

from coursekit.instance import average_precision, evaluate_coco_style
from coursekit.instance.ap import IOU_THRESHOLDS, RECALL_THRESHOLDS, linspace, match_image

pytest.importorskip("pycocotools")
from coursekit.instance.coco_eval import coco_evaluate, to_coco_ground_truth  # noqa: E402


def rect_masks(boxes, H, W):
    ys, xs = torch.arange(H)[:, None], torch.arange(W)[None]
    b = boxes.round().long()
    return ((ys >= b[:, 1, None, None]) & (ys < b[:, 3, None, None])
            & (xs >= b[:, 0, None, None]) & (xs < b[:, 2, None, None]))


def synthetic(n_images, seed, H=32, W=32, categories=3, jitter=0.6):
    """Random ground truths (some crowd) and predictions: jittered copies, wrong labels, false positives."""
    g = torch.Generator().manual_seed(seed)
    preds, gts = [], []
    for _ in range(n_images):
        G = int(torch.randint(0, 6, (1,), generator=g))
        xy = torch.rand(G, 2, generator=g) * 24
        gt_boxes = torch.cat([xy, (xy + torch.rand(G, 2, generator=g) * 10 + 2).clamp(max=32)], 1).round()
        gt_labels = torch.randint(0, categories, (G,), generator=g)
        keep = torch.rand(G, generator=g) < 0.8
        boxes = gt_boxes[keep] + torch.randn(int(keep.sum()), 4, generator=g) * jitter
        labels = gt_labels[keep].clone()
        flip = torch.rand(len(labels), generator=g) < 0.1
        labels[flip] = torch.randint(0, categories, (int(flip.sum()),), generator=g)
        F = int(torch.randint(0, 4, (1,), generator=g))
        fxy = torch.rand(F, 2, generator=g) * 24
        boxes = torch.cat([boxes, torch.cat([fxy, fxy + torch.rand(F, 2, generator=g) * 10 + 1], 1)])
        boxes = torch.cat([boxes[:, :2], torch.maximum(boxes[:, 2:], boxes[:, :2] + 0.5)], 1)
        labels = torch.cat([labels, torch.randint(0, categories, (F,), generator=g)])
        preds.append({"boxes": boxes, "labels": labels, "scores": torch.rand(len(boxes), generator=g),
                      "masks": rect_masks(boxes, H, W)})
        gts.append({"boxes": gt_boxes, "labels": gt_labels, "masks": rect_masks(gt_boxes, H, W),
                    "iscrowd": torch.rand(G, generator=g) < 0.15})
    return preds, gts


def test_thresholds_are_numpy_linspace_bit_for_bit():
    assert IOU_THRESHOLDS == np.linspace(0.5, 0.95, 10).tolist()
    assert RECALL_THRESHOLDS == np.linspace(0.0, 1.0, 101).tolist()
    assert linspace(0.0, 1.0, 3) == [0.0, 0.5, 1.0]


# ---- by hand: 2 ground truths, 3 predictions ----------------------------------------------
# A = (0, 0, 10, 10), B = (20, 20, 30, 30). p1 (score .9) on A with IoU .92, p2 (.8) on nothing,
# p3 (.7) on B with IoU .78. Precision / recall after each: 1 / .5, .5 / .5, 2/3 / 1.
# Interpolated precision: 1 for r <= .5 (51 of the 101 points), 2/3 for r > .5 (50 points):
# AP50 = (51 + 50 * 2/3) / 101 = 253/303. For t in .8 .. .9 p3 is a false positive: 51/101.
# At .95 both are: 0. AP = (6 * 253/303 + 3 * 51/101 + 0) / 10 = 1977/3030.

HAND_GT = [{"boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]]), "labels": torch.tensor([1, 1])}]
HAND_PRED = [{"boxes": torch.tensor([[0.0, 0, 10, 9.2], [40, 40, 50, 50], [20, 20, 30, 27.8]]),
              "labels": torch.tensor([1, 1, 1]), "scores": torch.tensor([0.9, 0.8, 0.7])}]


def test_hand_computed_average_precision():
    ap = average_precision(torch.tensor([0.9, 0.8, 0.7]), torch.tensor([True, False, True]), num_gt=2)
    assert ap == pytest.approx(253 / 303, abs=1e-12)
    # an ignored detection counts neither way; scores are sorted first
    ap = average_precision(torch.tensor([0.7, 0.95, 0.8, 0.9]), torch.tensor([True, True, False, True]), 2,
                           ignored=torch.tensor([False, True, False, False]))
    assert ap == pytest.approx(253 / 303, abs=1e-12)
    assert average_precision(torch.zeros(0), torch.zeros(0, dtype=torch.bool), 3) == 0.0


def test_hand_computed_boxes():
    result = evaluate_coco_style(HAND_PRED, HAND_GT, "bbox")
    assert result["ap50"] == pytest.approx(253 / 303, abs=1e-12)
    assert result["ap75"] == pytest.approx(253 / 303, abs=1e-12)  # IoU .78 >= .75
    assert result["ap"] == pytest.approx(1977 / 3030, abs=1e-12)
    coco = coco_evaluate(HAND_PRED, to_coco_ground_truth(HAND_GT, image_size=(64, 64)), "bbox")
    assert coco["ap"] == pytest.approx(1977 / 3030, abs=1e-12)


def test_hand_computed_crowd_region_is_ignored():
    gt = [{**HAND_GT[0], "boxes": torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 60, 60]]),
           "labels": torch.tensor([1, 1, 1]), "iscrowd": torch.tensor([False, False, True])}]
    # p2 lies inside the crowd region: |p2 ∩ crowd| / |p2| = 1, matched to the crowd -> ignored
    result = evaluate_coco_style(HAND_PRED, gt, "bbox")
    assert result["ap50"] == pytest.approx((51 + 50) / 101)  # precision 1 everywhere up to recall 1
    # without the crowd flag the region is a third ground truth: p2's IoU 100/400 < .5 -> false positive
    plain = evaluate_coco_style(HAND_PRED, [{**gt[0], "iscrowd": torch.zeros(3, dtype=torch.bool)}], "bbox")
    assert plain["ap50"] < result["ap50"]


def test_hand_computed_greedy_matching():
    # two detections on one ground truth: the best-scoring takes it, the other is a false positive;
    # a crowd ground truth (last) can take several
    assert match_image([[0.9, 0.0], [0.8, 0.6]], [False, True], [False, True], 0.5) == ([True, True], [False, True])
    assert match_image([[0.9], [0.8]], [False], [False], 0.5) == ([True, False], [False, False])


@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("iou_type", ["segm", "bbox"])
@pytest.mark.parametrize("area_range", [None, (0.0, 40.0)])
def test_matches_pycocotools(seed, iou_type, area_range):
    preds, gts = synthetic(12, seed, jitter=0.6 if seed % 2 else 1.5)
    ours = evaluate_coco_style(preds, gts, iou_type, area_range=area_range)
    ref = coco_evaluate(preds, to_coco_ground_truth(gts), iou_type, area_range=area_range)
    for key in ("ap", "ap50", "ap75"):
        assert ours[key] == pytest.approx(ref[key], abs=1e-3), key
    assert ours["ap_per_category"].keys() == ref["ap_per_category"].keys()


def test_max_dets_matches_pycocotools():
    preds, gts = synthetic(8, 11)
    ours = evaluate_coco_style(preds, gts, "segm", max_dets=1)
    ref = coco_evaluate(preds, to_coco_ground_truth(gts), "segm", max_dets=1)
    assert ours["ap"] == pytest.approx(ref["ap"], abs=1e-3)


def test_perfect_and_empty_predictions():
    _, gts = synthetic(6, 3)
    perfect = [{**g, "scores": torch.linspace(1, 0.5, len(g["labels"]))} for g in gts]
    assert evaluate_coco_style(perfect, gts)["ap"] == pytest.approx(1.0)
    empty = [{"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long), "scores": torch.zeros(0),
              "masks": torch.zeros(0, 32, 32, dtype=torch.bool)} for _ in gts]
    assert evaluate_coco_style(empty, gts)["ap"] == 0.0
    assert coco_evaluate(empty, to_coco_ground_truth(gts))["ap"] == 0.0
    assert evaluate_coco_style(empty, [{**e, "iscrowd": torch.zeros(0, dtype=torch.bool)} for e in empty])["ap"] == -1.0


def test_bad_input():
    preds, gts = synthetic(2, 0)
    with pytest.raises(ValueError, match="iou_type must be 'segm' or 'bbox'"):
        evaluate_coco_style(preds, gts, "keypoints")
    with pytest.raises(ValueError, match="one entry per image, got 2 and 1"):
        evaluate_coco_style(preds, gts[:1])
    bad = [{**preds[0], "boxes": preds[0]["boxes"][:, :3]}] + preds[1:]
    with pytest.raises(ValueError, match=r"predictions\[0\]\['boxes'\] must be Tensor\[N, 4\]"):
        evaluate_coco_style(bad, gts)
    with pytest.raises(ValueError, match=r"predictions\[1\] must be a dict with keys"):
        evaluate_coco_style([preds[0], {"boxes": preds[1]["boxes"]}], gts)
    with pytest.raises(ValueError, match=r"ground_truths\[0\]\['masks'\] must be Tensor\[N, H, W\]"):
        evaluate_coco_style(preds, [{**gts[0], "masks": gts[0]["masks"][:0]}, gts[1]])
    with pytest.raises(ValueError, match="num_gt must be a positive int"):
        average_precision(torch.zeros(2), torch.zeros(2, dtype=torch.bool), 0)
    with pytest.raises(ValueError, match=r"matched must be a bool Tensor\[D\] with D = 2"):
        average_precision(torch.zeros(2), torch.zeros(3, dtype=torch.bool), 1)


def test_device(device):
    preds, gts = synthetic(6, 7)
    move = lambda entries: [{k: v.to(device) for k, v in e.items()} for e in entries]  # noqa: E731
    assert evaluate_coco_style(move(preds), move(gts)) == evaluate_coco_style(preds, gts)
