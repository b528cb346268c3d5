"""coursekit.detection.boxes against torchvision.ops (float64, random and hand-computed cases)."""

import pytest
import torch
import torchvision.ops as tv
from torch.testing import assert_close

from coursekit.detection import (
    batched_nms,
    box_area,
    box_iou,
    clip_boxes_to_image,
    nms,
    remove_small_boxes,
)


def random_boxes(n, size=100.0, max_wh=40.0, dtype=torch.float64):
    xy = torch.rand(n, 2, dtype=dtype) * size
    wh = torch.rand(n, 2, dtype=dtype) * max_wh + 0.5
    return torch.cat([xy, xy + wh], dim=1)


# ---- box_area, box_iou -------------------------------------------------------------

def test_hand_computed_area_and_iou():
    a = torch.tensor([[0.0, 0.0, 1.0, 1.0]])
    b = torch.tensor([[0.5, 0.0, 1.5, 1.0], [0.0, 0.0, 1.0, 1.0], [2.0, 2.0, 3.0, 3.0]])
    assert_close(box_area(torch.tensor([[1.0, 2.0, 3.0, 5.0]])), torch.tensor([6.0]))
    # half-overlapping unit squares: inter 1/2, union 3/2; identical: 1; disjoint: 0
    assert_close(box_iou(a, b), torch.tensor([[1 / 3, 1.0, 0.0]]))


@pytest.mark.parametrize("n, m", [(0, 3), (1, 1), (5, 7), (40, 30)])
def test_iou_and_area_match_torchvision(n, m):
    b1, b2 = random_boxes(n), random_boxes(m)
    assert_close(box_area(b1), tv.box_area(b1))
    assert_close(box_iou(b1, b2), tv.box_iou(b1, b2))


def test_iou_integer_and_half_boxes_match_torchvision():
    b1 = random_boxes(6).round().long()
    b2 = random_boxes(4).round().long()
    assert_close(box_iou(b1, b2), tv.box_iou(b1, b2))
    h1, h2 = random_boxes(6).half(), random_boxes(4).half()
    assert_close(box_iou(h1, h2), tv.box_iou(h1, h2))


def test_iou_gradcheck():
    b1 = random_boxes(3).requires_grad_()
    b2 = random_boxes(4).requires_grad_()
    assert torch.autograd.gradcheck(box_iou, (b1, b2))


def test_iou_bad_input():
    with pytest.raises(ValueError, match=r"boxes1 must be Tensor\[N, 4\].*got Tensor\[3, 5\]"):
        box_iou(torch.zeros(3, 5), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="boxes2 must be a Tensor"):
        box_iou(torch.zeros(3, 4), [[0, 0, 1, 1]])


def test_iou_on_device(device):
    b1, b2 = random_boxes(5), random_boxes(6)
    out = box_iou(b1.to(device), b2.to(device))
    assert out.device.type == device.type
    assert_close(out.cpu(), tv.box_iou(b1, b2))


# ---- nms, batched_nms --------------------------------------------------------------

def test_nms_hand_computed():
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # box 3 (0.95) is kept first; box 0 is identical to it (IoU 1), box 1 has IoU 81/119 with it
    assert nms(boxes, scores, 0.5).tolist() == [3, 2]
    assert nms(boxes, scores, 0.7).tolist() == [3, 1, 2]
    assert nms(boxes, scores, 1.0).tolist() == [3, 0, 1, 2]  # only IoU > 1 is dropped: nothing


@pytest.mark.parametrize("n", [1, 10, 200])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nms_matches_torchvision(n, threshold, dtype):
    boxes = random_boxes(n, dtype=dtype)
    scores = torch.rand(n, dtype=dtype)
    assert torch.equal(nms(boxes, scores, threshold), tv.nms(boxes, scores, threshold))


@pytest.mark.parametrize("seed", range(5))
def test_nms_ties_and_duplicates_match_torchvision(seed):
    torch.manual_seed(seed)
    boxes = random_boxes(60, size=30.0)
    boxes[10:20] = boxes[:10]  # exact duplicates
    boxes[20:23, 2] = boxes[20:23, 0]  # zero-width boxes (IoU 0/0 = NaN with each other)
    scores = torch.randint(0, 4, (60,)).double()  # many equal scores
    out = nms(boxes, scores, 0.4)
    assert out.dtype == torch.int64
    assert torch.equal(out, tv.nms(boxes, scores, 0.4))


def test_nms_empty():
    out = nms(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert out.shape == (0,) and out.dtype == torch.int64


@pytest.mark.parametrize("n", [0, 1, 50, 1200])  # 1200 boxes: torchvision's per-class loop path
def test_batched_nms_matches_torchvision(n):
    boxes = random_boxes(n)
    scores = torch.rand(n, dtype=torch.float64)
    idxs = torch.randint(0, 4, (n,))
    assert torch.equal(batched_nms(boxes, scores, idxs, 0.5), tv.batched_nms(boxes, scores, idxs, 0.5))


def test_batched_nms_hand_computed():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    # the same box three times: only categories separate them
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]


def test_nms_bad_input():
    with pytest.raises(ValueError, match=r"scores must be Tensor\[N\] with N = 3"):
        nms(torch.zeros(3, 4), torch.zeros(2), 0.5)
    with pytest.raises(TypeError, match="boxes must be a floating-point tensor"):
        nms(torch.zeros(3, 4, dtype=torch.long), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\]"):
        nms(torch.zeros(3, 4, 1), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r"idxs must be an integer Tensor\[N\] with N = 3"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(3), 0.5)


def test_nms_on_device(device):
    boxes, scores = random_boxes(80), torch.rand(80, dtype=torch.float64)
    out = nms(boxes.to(device), scores.to(device), 0.5)
    assert out.device.type == device.type
    assert torch.equal(out.cpu(), tv.nms(boxes, scores, 0.5))


# ---- clip_boxes_to_image, remove_small_boxes ---------------------------------------

def test_clip_and_remove_small_hand_computed():
    boxes = torch.tensor([[-5.0, 2.0, 30.0, 12.0], [1.0, 1.0, 1.5, 9.0]])
    assert_close(clip_boxes_to_image(boxes, (10, 20)), torch.tensor([[0.0, 2, 20, 10], [1, 1, 1.5, 9]]))
    assert remove_small_boxes(boxes, 1.0).tolist() == [0]


@pytest.mark.parametrize("n", [0, 7, 100])
def test_clip_and_remove_small_match_torchvision(n):
    boxes = random_boxes(n, size=120.0) - 20
    assert_close(clip_boxes_to_image(boxes, (60, 90)), tv.clip_boxes_to_image(boxes, (60, 90)))
    assert torch.equal(remove_small_boxes(boxes, 15.0), tv.remove_small_boxes(boxes, 15.0))


def test_clip_gradcheck():
    boxes = (random_boxes(4) - 30).requires_grad_()
    assert torch.autograd.gradcheck(lambda b: clip_boxes_to_image(b, (50, 60)), (boxes,))


def test_clip_and_remove_bad_input():
    with pytest.raises(TypeError, match=r"size must be \(height, width\)"):
        clip_boxes_to_image(torch.zeros(2, 4), 10)
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\]"):
        remove_small_boxes(torch.zeros(4), 1.0)


def test_clip_on_device(device):
    boxes = random_boxes(5) - 20
    out = clip_boxes_to_image(boxes.to(device), (30, 40))
    assert_close(out.cpu(), tv.clip_boxes_to_image(boxes, (30, 40)))
