"""Keypoint AP: lesson 05's AP with OKS, by hand and equal to pycocotools' COCOeval
(iouType="keypoints") on random cases and on ShapesWorld scenes."""

import math

import pytest
import torch

from coursekit.instance import evaluate_coco_style
from coursekit.pose import COCO_SIGMAS, oks
from coursekit.pose.evaluate import (
    coco_keypoint_evaluate,
    evaluate_keypoints,
    keypoint_similarity,
    to_coco_keypoint_ground_truth,
)

pytest.importorskip("pycocotools")


def person(x, y, w=20.0, h=40.0, labelled=17):
    """A ground-truth person: box, keypoints spread over it, the first ``labelled`` with v=2."""
    kp = torch.zeros(17, 3, dtype=torch.float64)
    kp[:, 0] = x + torch.rand(17, dtype=torch.float64) * w
    kp[:, 1] = y + torch.rand(17, dtype=torch.float64) * h
    kp[:labelled, 2] = 2
    kp[labelled:] = 0
    return torch.tensor([x, y, x + w, y + h], dtype=torch.float64), kp


def random_case(n_images=6, seed=0):
    """Ground truths (some unlabelled, some crowd, two categories) and noisy detections."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    preds, gts = [], []
    for _ in range(n_images):
        G = int(torch.randint(0, 4, (), generator=g))
        boxes, kps, labels = [], [], []
        for _ in range(G):
            xy = torch.rand(2, generator=g) * 60
            labelled = int(torch.randint(0, 18, (), generator=g))  # 0: ignored by COCO
            b, k = person(float(xy[0]), float(xy[1]), labelled=labelled)
            boxes.append(b)
            kps.append(k)
            labels.append(int(torch.randint(0, 2, (), generator=g)))
        gt = {"boxes": torch.stack(boxes) if G else torch.zeros(0, 4, dtype=torch.float64),
              "labels": torch.tensor(labels, dtype=torch.int64),
              "keypoints": torch.stack(kps) if G else torch.zeros(0, 17, 3, dtype=torch.float64),
              "area": torch.rand(G, generator=g, dtype=torch.float64) * 500 + 50,
              "iscrowd": torch.rand(G, generator=g) < 0.15}
        # detections: noisy copies of some ground truths, plus strays
        rows = [i for i in range(G) if float(torch.rand((), generator=g)) < 0.8]
        D = len(rows) + int(torch.randint(0, 3, (), generator=g))
        dk = torch.rand(D, 17, 3, generator=g, dtype=torch.float64) * 80
        db = torch.rand(D, 4, generator=g, dtype=torch.float64) * 40
        db[:, 2:] += db[:, :2] + 5
        dl = torch.randint(0, 2, (D,), generator=g)
        for d, i in enumerate(rows):
            noise = torch.randn(17, 2, generator=g, dtype=torch.float64) * float(
                torch.rand((), generator=g)) * 4
            dk[d, :, :2] = gt["keypoints"][i, :, :2] + noise
            db[d], dl[d] = gt["boxes"][i], gt["labels"][i]
        dk[:, :, 2] = 1
        preds.append({"boxes": db, "labels": dl, "keypoints": dk,
                      "scores": torch.rand(D, generator=g, dtype=torch.float64)})
        gts.append(gt)
    return preds, gts


def test_keypoint_ap_by_hand():
    # one person with only the nose labelled: OKS = exp(-d^2 / (2 area kappa^2)), kappa =
    # 2 * 0.026. Put the detection where OKS = 0.62: a hit at thresholds 0.5, 0.55, 0.6 only,
    # so AP = 3 / 10 (precision 1 at every recall at those three thresholds, 0 at the rest)
    box, kp = person(10.0, 10.0, labelled=1)
    area = 400.0
    d = math.sqrt(-math.log(0.62) * 2 * area * (2 * COCO_SIGMAS[0]) ** 2)
    dt = kp.clone()
    dt[0, 0] += d
    gts = [{"boxes": box[None], "labels": torch.tensor([1]), "keypoints": kp[None],
            "area": torch.tensor([area], dtype=torch.float64)}]
    preds = [{"boxes": box[None], "labels": torch.tensor([1]), "keypoints": dt[None],
              "scores": torch.tensor([0.9])}]
    assert keypoint_similarity(preds[0], gts[0]).item() == pytest.approx(0.62, abs=1e-12)
    ours = evaluate_keypoints(preds, gts)
    assert ours["ap"] == pytest.approx(0.3, abs=1e-12)
    assert ours["ap50"] == pytest.approx(1.0, abs=1e-12) and ours["ap75"] == 0.0
    ref = coco_keypoint_evaluate(preds, to_coco_keypoint_ground_truth(gts))
    assert ref["ap"] == pytest.approx(0.3, abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_keypoint_ap_equals_pycocotools(seed):
    preds, gts = random_case(seed=seed)
    coco_gt = to_coco_keypoint_ground_truth(gts)
    for area_range, max_dets in [(None, 20), ((100.0, 400.0), 20), (None, 2)]:
        ours = evaluate_keypoints(preds, gts, area_range, max_dets)
        ref = coco_keypoint_evaluate(preds, coco_gt, area_range, max_dets)
        assert ours["categories"] == ref["categories"]
        torch.testing.assert_close(ours["precision"], ref["precision"], atol=1e-12, rtol=0)
        torch.testing.assert_close(ours["recall"], ref["recall"], atol=1e-12, rtol=0)
        for key in ("ap", "ap50", "ap75"):
            assert ours[key] == pytest.approx(ref[key], abs=1e-12), (key, area_range, max_dets)


def test_keypoint_ap_on_shapesworld_scenes_equals_pycocotools():
    from coursekit.data.coco import to_coco
    from coursekit.data.shapesworld import render_batch

    batch = render_batch(list(range(40, 52)), size=64, p_person=0.7)
    g = torch.Generator().manual_seed(0)
    preds, gts = [], []
    for j in range(len(batch)):
        rows = batch.person_index[j]
        kp = batch.keypoints[j]
        gts.append({"boxes": batch.boxes[j][rows], "labels": batch.labels[j][rows],
                    "masks": batch.masks[j][rows], "iscrowd": batch.iscrowd[j][rows],
                    "keypoints": kp})
        noisy = kp.clone()
        noisy[..., :2] += torch.randn(kp.shape[:-1] + (2,), generator=g) * 0.7
        noisy[..., 2] = 1
        preds.append({"boxes": gts[-1]["boxes"], "labels": gts[-1]["labels"],
                      "keypoints": noisy, "scores": torch.rand(len(rows), generator=g)})
    assert sum(len(p["labels"]) for p in preds) >= 5
    ours = evaluate_keypoints(preds, gts)
    ref = coco_keypoint_evaluate(preds, to_coco([batch.scene(j) for j in range(len(batch))]))
    assert 0.1 < ours["ap"] < 0.99
    assert ours["ap"] == pytest.approx(ref["ap"], abs=1e-12)
    exact = [{**p, "keypoints": gt["keypoints"]} for p, gt in zip(preds, gts, strict=True)]
    assert evaluate_keypoints(exact, gts)["ap"] == 1.0


def test_keypoint_similarity_is_oks_transposed():
    preds, gts = random_case(seed=7)
    for pred, gt in zip(preds, gts, strict=True):
        if len(gt["labels"]) and len(pred["labels"]) and bool((gt["keypoints"][..., 2] > 0)
                                                               .any(1).all()):
            expected = oks(gt["keypoints"], pred["keypoints"], gt["area"]).T
            torch.testing.assert_close(keypoint_similarity(pred, gt), expected)


def test_keypoint_ap_bad_input():
    preds, gts = random_case(n_images=2, seed=1)
    with pytest.raises(ValueError, match="iou_type must be 'segm' or 'bbox', or 'keypoints' "
                                         "with similarity=.*got 'keypoints' without similarity"):
        evaluate_coco_style(preds, gts, "keypoints")
    with pytest.raises(TypeError, match=r"similarity must be a function \(pred, gt\)"):
        evaluate_coco_style(preds, gts, "keypoints", similarity="oks")
    with pytest.raises(ValueError, match="similarity is for iou_type='keypoints' only"):
        evaluate_coco_style(preds, gts, "bbox", similarity=keypoint_similarity)
    with pytest.raises(ValueError, match="iou_type must be .*, got 'oks'"):
        evaluate_coco_style(preds, gts, "oks")
    no_kp = [{k: v for k, v in p.items() if k != "keypoints"} for p in preds]
    with pytest.raises(ValueError, match=r"predictions\[0\] must be a dict with keys"):
        evaluate_keypoints(no_kp, gts)
    flat = [{**p, "keypoints": p["keypoints"][..., :2]} for p in preds]
    with pytest.raises(ValueError, match=r"predictions\[0\]\['keypoints'\] must be "
                                         r"Tensor\[N, K, 3\]"):
        evaluate_keypoints(flat, gts)
    full = [p for p, gt in zip(preds, gts, strict=True) if len(p["labels"]) and len(gt["labels"])]
    pairs = [gt for p, gt in zip(preds, gts, strict=True)
             if len(p["labels"]) and len(gt["labels"])]
    with pytest.raises(ValueError, match=r"similarity must return Tensor\[D, G\]"):
        evaluate_coco_style(full, pairs, "keypoints",
                            similarity=lambda p, g: torch.zeros(1, 1, 1))
