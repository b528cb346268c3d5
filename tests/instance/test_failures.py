"""instance_failures: found / merged / missed on hand cases, random vs a loop, errors."""

import pytest
import torch

from coursekit.instance.failures import FOUND, MERGED, MISSED, instance_failures


def _box_mask(h, w, y0, y1, x0, x1):
    m = torch.zeros(h, w, dtype=torch.bool)
    m[y0:y1, x0:x1] = True
    return m


def test_hand_case_found_merged_missed():
    # three squares of class 4: A and B side by side, C far away; class 5 square D
    a, b = _box_mask(20, 20, 2, 6, 2, 6), _box_mask(20, 20, 2, 6, 6, 10)
    c, d = _box_mask(20, 20, 14, 18, 14, 18), _box_mask(20, 20, 14, 18, 2, 6)
    gt = torch.stack([a, b, c, d])
    gt_labels = torch.tensor([4, 4, 4, 5])
    # detection 0 covers A and B together (IoU 0.5 with each: 16 / 32 -> not found at 0.6);
    # detection 1 finds C exactly; detection 2 is D's pixels with the wrong class;
    # detection 3 is in empty space
    pred = torch.stack([a | b, c, d, _box_mask(20, 20, 10, 12, 10, 12)])
    pred_labels = torch.tensor([4, 4, 6, 4])
    out = instance_failures(pred, pred_labels, gt, gt_labels, iou_threshold=0.6)
    assert out["status"] == [MERGED, MERGED, FOUND, MISSED]
    assert out["extra"].tolist() == [False, False, True, True]
    assert out["iou"][0, 0].item() == pytest.approx(0.5)
    assert out["coverage"][0, :2].tolist() == [1.0, 1.0]
    # at IoU 0.5 the merged detection "finds" A and B (both 0.5): found, not merged
    out = instance_failures(pred, pred_labels, gt, gt_labels, iou_threshold=0.5)
    assert out["status"][:2] == [FOUND, FOUND]


def test_empty_detections_all_missed():
    gt = _box_mask(8, 8, 0, 4, 0, 4)[None]
    none = torch.zeros(0, 8, 8, dtype=torch.bool)
    out = instance_failures(none, torch.zeros(0, dtype=torch.int64), gt, torch.tensor([4]))
    assert out["status"] == [MISSED]
    assert out["extra"].shape == (0,)


def test_random_against_loop():
    g = torch.Generator().manual_seed(0)
    pred = torch.rand(7, 12, 12, generator=g) > 0.5
    gt = torch.rand(5, 12, 12, generator=g) > 0.6
    pl, gl = torch.randint(0, 2, (7,), generator=g), torch.randint(0, 2, (5,), generator=g)
    out = instance_failures(pred, pl, gt, gl, iou_threshold=0.3)
    for k in range(5):
        ious = [(pred[i] & gt[k]).sum().item() / (pred[i] | gt[k]).sum().item() for i in range(7)]
        found = any(iou >= 0.3 and pl[i] == gl[k] for i, iou in enumerate(ious))
        cov = [[(pred[i] & gt[j]).sum().item() / gt[j].sum().item() for j in range(5)]
               for i in range(7)]
        merged = any(cov[i][k] >= 0.5 and sum(c >= 0.5 for c in cov[i]) >= 2 for i in range(7))
        assert out["status"][k] == (FOUND if found else MERGED if merged else MISSED)
        torch.testing.assert_close(out["iou"][:, k], torch.tensor(ious, dtype=torch.float32))


@pytest.mark.parametrize("kwargs, error, match", [
    ({"pred_masks": torch.zeros(1, 4, 4)}, TypeError, "pred_masks"),
    ({"gt_masks": torch.zeros(4, 4, dtype=torch.bool)}, ValueError, "gt_masks"),
    ({"gt_labels": torch.tensor([1, 2])}, ValueError, "gt_labels"),
    ({"pred_labels": torch.tensor([1.0])}, TypeError, "pred_labels"),
    ({"gt_masks": torch.zeros(1, 5, 4, dtype=torch.bool)}, ValueError, "same H, W"),
    ({"iou_threshold": 0.0}, ValueError, "iou_threshold"),
])
def test_bad_input(kwargs, error, match):
    args = {"pred_masks": torch.zeros(1, 4, 4, dtype=torch.bool), "pred_labels": torch.tensor([1]),
            "gt_masks": torch.zeros(1, 4, 4, dtype=torch.bool), "gt_labels": torch.tensor([1])}
    args.update(kwargs)
    with pytest.raises(error, match=match):
        instance_failures(**args)
