"""oks: by hand and vs pycocotools' COCOeval.computeOks (incl. gts with no labelled keypoint)."""

import importlib
import math

import pytest
import torch
from coco_reference import coco_oks
from torch.autograd import gradcheck
from torch.testing import assert_close

from coursekit.pose import COCO_SIGMAS, oks

oks_module = importlib.import_module("coursekit.pose.oks")  # the package's `oks` is the function

F64 = torch.float64


def random_case(G, D, generator=None, K=17):
    centre = torch.rand(G, 1, 2, dtype=F64) * 400 + 50
    gt_xy = centre + torch.randn(G, K, 2, dtype=F64) * 30
    v = torch.randint(0, 3, (G, K)).to(F64)
    v[0, :] = 0  # a ground truth with no labelled keypoint: the box fallback
    if G > 1:
        v[1, :] = 2
    gt_xy = torch.where(v[..., None] > 0, gt_xy, torch.zeros_like(gt_xy))  # COCO: v = 0 -> 0, 0
    gt = torch.cat([gt_xy, v[..., None]], dim=2)
    lo = centre[:, 0] - 60 + torch.rand(G, 2, dtype=F64) * 10
    boxes = torch.cat([lo, lo + 80 + torch.rand(G, 2, dtype=F64) * 60], dim=1)  # (G, 4)
    area = 500 + torch.rand(G, dtype=F64) * 8000
    pick = torch.randint(0, G, (D,))
    dt_xy = gt_xy[pick] + torch.randn(D, K, 2, dtype=F64) * 15
    dt_xy[pick == 0] = centre[0] + torch.randn(int((pick == 0).sum()), K, 2, dtype=F64) * 120
    dt = torch.cat([dt_xy, torch.rand(D, K, 1, dtype=F64)], dim=2)
    return gt, dt, area, boxes


# ------------------------------------------------------------------------------------ by hand
def test_oks_by_hand_one_keypoint():
    # sigma = 0.1 -> kappa^2 = 0.04; area 100: e = d^2 / 0.04 / 100 / 2 = d^2 / 8
    gt = torch.tensor([[[10.0, 10.0, 2.0]]], dtype=F64)
    dt = torch.tensor([[[10.0, 10.0, 1.0]], [[12.0, 10.0, 1.0]], [[10.0, 6.0, 1.0]]], dtype=F64)
    out = oks(gt, dt, torch.tensor([100.0], dtype=F64), sigmas=[0.1])
    assert out.shape == (1, 3)
    assert_close(out, torch.tensor([[1.0, math.exp(-0.5), math.exp(-2.0)]], dtype=F64))


def test_oks_by_hand_only_labelled_keypoints_count():
    # 3 keypoints, the middle one unlabelled (v = 0): it is ignored wherever the detection puts
    # it; the mean is over the 2 labelled ones: (exp(0) + exp(-e)) / 2
    gt = torch.tensor([[[0.0, 0.0, 2.0], [0.0, 0.0, 0.0], [4.0, 0.0, 1.0]]], dtype=F64)
    dt = torch.tensor([[[0.0, 0.0, 1.0], [99.0, 99.0, 1.0], [4.0, 3.0, 1.0]]], dtype=F64)
    sig = (0.1, 0.2, 0.25)  # keypoint 2: kappa^2 = 0.25; area 18: e = 9 / 0.25 / 18 / 2 = 1
    out = oks(gt, dt, torch.tensor([18.0], dtype=F64), sigmas=sig)
    assert_close(out, torch.tensor([[(1 + math.exp(-1.0)) / 2]], dtype=F64))


def test_oks_by_hand_box_fallback():
    # no labelled keypoint: distance to the box doubled around it, [x - w, x + 2w]:
    # box (0, 0, 10, 10) -> region [-10, 20]^2; a keypoint at (25, 5) is 5 px out, (0, 0) in
    gt = torch.zeros(1, 2, 3, dtype=F64)
    dt = torch.tensor([[[25.0, 5.0, 1.0], [0.0, 0.0, 1.0]]], dtype=F64)
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]], dtype=F64)
    sig = (0.5, 0.5)  # kappa^2 = 1; area 12.5: e = 25 / 1 / 12.5 / 2 = 1; mean over all K = 2
    out = oks(gt, dt, torch.tensor([12.5], dtype=F64), sigmas=sig, gt_boxes=box)
    assert_close(out, torch.tensor([[(math.exp(-1.0) + 1.0) / 2]], dtype=F64))


def test_coco_sigmas_give_the_lecture_scale():
    # a keypoint kappa * s away from its truth scores exp(-1/2), whatever the keypoint
    area = torch.tensor([2500.0], dtype=F64)  # s = 50
    gt = torch.zeros(1, 17, 3, dtype=F64)
    gt[..., 2] = 2
    for k, sigma in enumerate(COCO_SIGMAS):
        dt = gt.clone()
        dt[0, :, 0] = 2 * sigma * 50.0 * (torch.arange(17) == k)
        expected = (16 + math.exp(-0.5)) / 17
        assert_close(oks(gt, dt, area), torch.tensor([[expected]], dtype=F64))


# ------------------------------------------------------------------------------ vs pycocotools
@pytest.mark.parametrize("G, D", [(1, 1), (2, 5), (4, 20), (6, 13)])
def test_oks_matches_pycocotools(G, D):
    gt, dt, area, boxes = random_case(G, D)
    ours = oks(gt, dt, area, gt_boxes=boxes)
    ref = coco_oks(gt, dt, area, boxes)
    assert ours.shape == (G, D) and ours.dtype == F64
    assert_close(ours, ref, rtol=0, atol=1e-12)
    assert (ref > 0.05).any() and (ref < 0.95).any()  # informative values


def test_oks_matches_pycocotools_without_boxes_when_all_labelled():
    gt, dt, area, boxes = random_case(4, 9)
    gt, area, boxes = gt[1:], area[1:], boxes[1:]  # drop the unlabelled one
    gt[..., 2] = gt[..., 2].clamp(min=1)
    gt[..., :2] = torch.where(gt[..., :2] == 0, 100.0, gt[..., :2])
    assert_close(oks(gt, dt, area), coco_oks(gt, dt, area, boxes), rtol=0, atol=1e-12)


def test_oks_chunked_equals_unchunked(monkeypatch):
    gt, dt, area, boxes = random_case(3, 20)
    full = oks(gt, dt, area, gt_boxes=boxes)
    monkeypatch.setattr(oks_module, "CHUNK_ELEMENTS", 3 * 17 * 3)  # 3 detections at a time
    assert_close(oks(gt, dt, area, gt_boxes=boxes), full, rtol=0, atol=0)


def test_oks_on_device(device):
    gt, dt, area, boxes = random_case(3, 8)
    ref = coco_oks(gt, dt, area, boxes)
    ours = oks(gt.to(device), dt.to(device), area.to(device), gt_boxes=boxes.to(device))
    assert ours.device.type == torch.device(device).type
    assert_close(ours.cpu(), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_oks_reduced_precision(dtype):
    # computed in float32 from the rounded inputs, rounded once at the end
    gt, dt, area, boxes = random_case(3, 10)
    gt_r, dt_r = gt.to(dtype), dt.to(dtype)
    ours = oks(gt_r, dt_r, area.float(), gt_boxes=boxes.float())
    assert ours.dtype == dtype
    ref = coco_oks(gt_r.double(), dt_r.double(), area.float().double(), boxes.float().double())
    eps = torch.finfo(dtype).eps
    assert_close(ours.double(), ref, rtol=eps, atol=max(eps, 1e-6))


def test_oks_empty():
    gt, dt, area, boxes = random_case(2, 3)
    assert oks(gt, dt[:0], area, gt_boxes=boxes).shape == (2, 0)
    assert oks(gt[:0], dt, area[:0], gt_boxes=boxes[:0]).shape == (0, 3)


def test_oks_gradcheck():
    gt, dt, area, boxes = random_case(2, 3, K=5)
    sig = COCO_SIGMAS[:5]
    dt_xy = dt[..., :2].clone().requires_grad_(True)
    score = dt[..., 2:]

    def f(xy):
        return oks(gt, torch.cat([xy, score], dim=2), area, sig, gt_boxes=boxes)

    assert gradcheck(f, (dt_xy,))


def test_oks_bad_inputs():
    gt, dt, area, boxes = random_case(2, 3)
    with pytest.raises(ValueError, match=r"gt_keypoints must be Tensor\[N, K, 3\].*\[2, 17, 2\]"):
        oks(gt[..., :2], dt, area, gt_boxes=boxes)
    with pytest.raises(ValueError, match=r"dt_keypoints must be Tensor\[N, 17, 3\].*\[3, 5, 3\]"):
        oks(gt, dt[:, :5], area, gt_boxes=boxes)
    with pytest.raises(TypeError, match="dt_keypoints must be a Tensor"):
        oks(gt, dt.tolist(), area, gt_boxes=boxes)
    with pytest.raises(ValueError, match=r"area must be Tensor\[G\].*got Tensor\[2, 1\]"):
        oks(gt, dt, area[:, None], gt_boxes=boxes)
    with pytest.raises(ValueError, match=r"area must be Tensor\[G\] with G = 2.*Tensor\[3\]"):
        oks(gt, dt, torch.ones(3, dtype=F64), gt_boxes=boxes)
    with pytest.raises(ValueError, match=r"area must be > 0.*\[100.0, 0.0\]"):
        oks(gt, dt, torch.tensor([100.0, 0.0], dtype=F64), gt_boxes=boxes)
    with pytest.raises(ValueError, match=r"area must be > 0.*-5.0"):
        oks(gt, dt, torch.tensor([-5.0, 1.0], dtype=F64), gt_boxes=boxes)
    with pytest.raises(ValueError, match=r"gt_keypoints\[0\] has no labelled keypoint.*gt_boxes="):
        oks(gt, dt, area)
    with pytest.raises(ValueError, match=r"gt_boxes must be Tensor\[G, 4\] with G = 2"):
        oks(gt, dt, area, gt_boxes=boxes[:1])
    with pytest.raises(ValueError, match="sigmas must hold K = 17 values.*got 16"):
        oks(gt, dt, area, COCO_SIGMAS[:16], gt_boxes=boxes)
    with pytest.raises(ValueError, match="sigmas must be > 0"):
        oks(gt, dt, area, (0.0,) + COCO_SIGMAS[1:], gt_boxes=boxes)
    with pytest.raises(TypeError, match="sigmas must be a Tensor"):
        oks(gt, dt, area, 0.1, gt_boxes=boxes)
