"""coursekit.detection.boxes against torchvision.ops (float64, random and hand-computed cases)."""

import importlib

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
    nms_loop,
    remove_small_boxes,
)

boxes_module = importlib.import_module("coursekit.detection.boxes")
NMS = pytest.mark.parametrize("fn", [nms, nms_loop], ids=["cluster", "loop"])
HALF = pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])


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


def test_iou_integer_boxes_match_torchvision():
    b1 = random_boxes(6).round().long()
    b2 = random_boxes(4).round().long()
    assert_close(box_iou(b1, b2), tv.box_iou(b1, b2))


@HALF
def test_iou_and_area_half_precision_match_torchvision_in_float32(dtype):
    # Half-precision boxes: areas, sides and IoU are float32, as torchvision returns them.
    # Reference: torchvision on the same values in float32; tolerance 0 (identical).
    # (torchvision's own half path subtracts x2 - x1 in half precision first.)
    b1, b2 = random_boxes(30, size=400.0).to(dtype), random_boxes(20, size=400.0).to(dtype)
    ours = box_iou(b1, b2)
    assert ours.dtype == torch.float32
    assert_close(ours, tv.box_iou(b1.float(), b2.float()), rtol=0, atol=0)
    assert_close(box_area(b1), tv.box_area(b1.float()), rtol=0, atol=0)


def test_iou_gradcheck():
    b1 = random_boxes(3).requires_grad_()
    b2 = random_boxes(4).requires_grad_()
    assert torch.autograd.gradcheck(box_iou, (b1, b2))


def test_iou_bad_input():
    with pytest.raises(ValueError, match=r"boxes1 must be Tensor\[N, 4\].*got Tensor\[3, 5\]"):
        box_iou(torch.zeros(3, 5), torch.zeros(2, 4))
    with pytest.raises(TypeError, match=r"boxes2 must be a Tensor\[N, 4\].*got list"):
        box_iou(torch.zeros(3, 4), [[0, 0, 1, 1]])
    with pytest.raises(TypeError, match="boxes must hold real numbers, got Tensor\\[2, 4\\] bool"):
        box_area(torch.zeros(2, 4, dtype=torch.bool))


def test_iou_on_device(device):
    b1, b2 = random_boxes(5).to(device), random_boxes(6).to(device)
    out = box_iou(b1, b2)
    assert out.device.type == device.type
    assert_close(out, tv.box_iou(b1, b2))  # torchvision on the same device


# ---- nms, nms_loop, batched_nms ----------------------------------------------------

@NMS
def test_nms_hand_computed(fn):
    boxes = torch.tensor([[0.0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # box 3 (0.95) is kept first; box 0 is identical to it (IoU 1), box 1 has IoU 81/119 with it
    assert fn(boxes, scores, 0.5).tolist() == [3, 2]
    assert fn(boxes, scores, 0.7).tolist() == [3, 1, 2]
    assert fn(boxes, scores, 1.0).tolist() == [3, 0, 1, 2]  # only IoU > 1 is dropped: nothing


@NMS
def test_nms_chain_is_greedy_not_one_shot(fn):
    # Each box overlaps only its neighbours (IoU 0.6), scores fall along the chain. Greedy:
    # 0 drops 1, so 2 survives and drops 3, ...: every other box. A one-shot "drop every box
    # some better box overlaps" would keep only box 0; Cluster-NMS iterates to the greedy one.
    boxes = torch.tensor([[4.0 * i, 0, 4.0 * i + 10, 10] for i in range(9)])  # IoU 6/14 ...
    boxes[:, 2] = boxes[:, 0] + 16  # width 16, shift 4: IoU(i, i+1) = 12/20 = 0.6, i+2: 8/24
    scores = torch.linspace(1.0, 0.1, 9)
    assert fn(boxes, scores, 0.5).tolist() == [0, 2, 4, 6, 8]
    assert torch.equal(fn(boxes, scores, 0.5), tv.nms(boxes, scores, 0.5))


@NMS
@pytest.mark.parametrize("n", [1, 10, 200])
@pytest.mark.parametrize("threshold", [0.0, 0.3, 0.5, 0.8])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_nms_matches_torchvision(fn, n, threshold, dtype):
    boxes = random_boxes(n, dtype=dtype)
    scores = torch.rand(n, dtype=dtype)
    assert torch.equal(fn(boxes, scores, threshold), tv.nms(boxes, scores, threshold))


@NMS
@pytest.mark.parametrize("seed", range(5))
def test_nms_ties_and_duplicates_match_torchvision(fn, seed):
    torch.manual_seed(seed)
    boxes = random_boxes(60, size=30.0)
    boxes[10:20] = boxes[:10]  # exact duplicates
    boxes[20:23, 2] = boxes[20:23, 0]  # zero-width boxes (IoU 0/0 = NaN with each other)
    scores = torch.randint(0, 4, (60,)).double()  # many equal scores
    out = fn(boxes, scores, 0.4)
    assert out.dtype == torch.int64
    assert torch.equal(out, tv.nms(boxes, scores, 0.4))


@pytest.mark.parametrize("block, budget", [(16, 16 * 16), (16, 16 * 70), (128, 1 << 15)])
def test_nms_blocks_and_pieces_match_torchvision(monkeypatch, block, budget):
    # small blocks and IoU pieces of a few boxes; long chains of overlaps cross block borders
    monkeypatch.setattr(boxes_module, "_BLOCK", block)
    monkeypatch.setattr(boxes_module, "_BUDGET", budget)
    torch.manual_seed(0)
    chain = torch.tensor([[3.0 * i, 0, 3.0 * i + 10, 10] for i in range(150)])
    boxes = torch.cat([random_boxes(500, size=150.0), chain.double()])
    scores = torch.cat([torch.rand(500, dtype=torch.float64), torch.linspace(1, 0, 150).double()])
    for threshold in (0.3, 0.5, 0.7):
        assert torch.equal(nms(boxes, scores, threshold), tv.nms(boxes, scores, threshold))


@NMS
def test_nms_empty(fn):
    out = fn(torch.zeros(0, 4), torch.zeros(0), 0.5)
    assert out.shape == (0,) and out.dtype == torch.int64


@NMS
@HALF
def test_nms_half_precision_matches_torchvision_in_float32(fn, dtype):
    # IoU in float32 on the half-precision values; torchvision's CPU nms has no half kernel,
    # so the reference is torchvision on the same values in float32: identical indices.
    boxes = random_boxes(300, size=300.0).to(dtype)
    scores = torch.rand(300).to(dtype)  # rounding makes ties: the stable order decides
    for threshold in (0.3, 0.6):
        expected = tv.nms(boxes.float(), scores.float(), threshold)
        assert torch.equal(fn(boxes, scores, threshold), expected)


def clustered_detections(n=10_000, objects=300):
    """``n`` boxes, ~n / objects jittered copies of each object's box (a detector's output)."""
    g = torch.Generator().manual_seed(0)
    centres = torch.rand(objects, 2, generator=g) * 1000
    sizes = torch.rand(objects, 2, generator=g) * 60 + 10
    noise = torch.randn(n, 2, 2, generator=g)
    copies = -(-n // objects)
    c = centres.repeat_interleave(copies, 0)[:n] + 3 * noise[:, 0]
    s = sizes.repeat_interleave(copies, 0)[:n] * (1 + 0.1 * noise[:, 1])
    return torch.cat([c - s / 2, c + s / 2], 1), torch.rand(n, generator=g)


def test_nms_on_10k_detections_matches_torchvision():
    boxes, scores = clustered_detections()
    assert torch.equal(nms(boxes, scores, 0.5), tv.nms(boxes, scores, 0.5))


def test_nms_memory_is_bounded(peak_memory_mb):
    # The case "nms" of conftest.MEMORY_CASES: 10 000 such detections. The old code built
    # the 10k x 10k IoU matrix and its (N, N, 2) intermediates: 3434 MB measured with this
    # probe; blocks hold at most _BUDGET IoU values: 18 MB measured.
    assert peak_memory_mb["nms"] < 150


@pytest.mark.parametrize("n", [0, 1, 50, 1200])  # 1200 boxes: torchvision's per-class loop
def test_batched_nms_matches_torchvision(n):
    boxes = random_boxes(n)
    scores = torch.rand(n, dtype=torch.float64)
    idxs = torch.randint(0, 4, (n,))
    expected = tv.batched_nms(boxes, scores, idxs, 0.5)
    assert torch.equal(batched_nms(boxes, scores, idxs, 0.5), expected)


@HALF
def test_batched_nms_half_precision_matches_torchvision_in_float32(dtype):
    # the category offsets are added in float32: in bfloat16, 3 * (max + 1) + x would be
    # rounded to a multiple of 2 or 4 and change the IoUs
    boxes = random_boxes(200, size=300.0).to(dtype)
    scores, idxs = torch.rand(200).to(dtype), torch.randint(0, 5, (200,))
    expected = tv.batched_nms(boxes.float(), scores.float(), idxs, 0.5)
    assert torch.equal(batched_nms(boxes, scores, idxs, 0.5), expected)


def test_batched_nms_hand_computed():
    boxes = torch.tensor([[0.0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]])
    scores = torch.tensor([0.9, 0.8, 0.7])
    # the same box three times: only categories separate them
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0]), 0.5).tolist() == [0, 1]


@NMS
def test_nms_bad_input(fn):
    with pytest.raises(ValueError, match=r"scores must be Tensor\[N\] with N = 3.*Tensor\[2\]"):
        fn(torch.zeros(3, 4), torch.zeros(2), 0.5)
    with pytest.raises(TypeError, match=r"scores must be a floating-point Tensor\[N\].*int64"):
        fn(torch.zeros(3, 4), torch.zeros(3, dtype=torch.long), 0.5)
    with pytest.raises(TypeError, match=r"boxes must be a floating-point Tensor\[N, 4\], "
                                        r"got Tensor\[3, 4\] int64"):
        fn(torch.zeros(3, 4, dtype=torch.long), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\]"):
        fn(torch.zeros(3, 4, 1), torch.zeros(3), 0.5)
    with pytest.raises(TypeError, match="iou_threshold must be a float, got '0.5'"):
        fn(torch.zeros(3, 4), torch.zeros(3), "0.5")


def test_batched_nms_bad_input():
    with pytest.raises(TypeError, match=r"idxs must be an integer Tensor\[N\].*float32"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(3), 0.5)
    with pytest.raises(ValueError, match=r"idxs must be an integer Tensor\[N\] with N = 3, "
                                         r"got Tensor\[2\]"):
        batched_nms(torch.zeros(3, 4), torch.zeros(3), torch.zeros(2, dtype=torch.long), 0.5)


@NMS
def test_nms_on_device(fn, device):
    boxes = random_boxes(80).to(device)
    scores = torch.rand(80, dtype=torch.float64, device=device)
    out = fn(boxes, scores, 0.5)
    assert out.device.type == device.type
    assert torch.equal(out, tv.nms(boxes, scores, 0.5))  # torchvision on the same device
    idxs = torch.randint(0, 3, (80,), device=device)
    assert torch.equal(batched_nms(boxes, scores, idxs, 0.5),
                       tv.batched_nms(boxes, scores, idxs, 0.5))


# ---- clip_boxes_to_image, remove_small_boxes ---------------------------------------

def test_clip_and_remove_small_hand_computed():
    boxes = torch.tensor([[-5.0, 2.0, 30.0, 12.0], [1.0, 1.0, 1.5, 9.0]])
    expected = torch.tensor([[0.0, 2, 20, 10], [1, 1, 1.5, 9]])
    assert_close(clip_boxes_to_image(boxes, (10, 20)), expected)
    assert remove_small_boxes(boxes, 1.0).tolist() == [0]


@pytest.mark.parametrize("n", [0, 7, 100])
def test_clip_and_remove_small_match_torchvision(n):
    boxes = random_boxes(n, size=120.0) - 20
    assert_close(clip_boxes_to_image(boxes, (60, 90)), tv.clip_boxes_to_image(boxes, (60, 90)))
    assert torch.equal(remove_small_boxes(boxes, 15.0), tv.remove_small_boxes(boxes, 15.0))


@HALF
def test_clip_and_remove_small_half_precision(dtype):
    # clipping only compares (exact in any dtype); widths are taken in float32
    boxes = (random_boxes(100, size=400.0) - 20).to(dtype)
    clipped = clip_boxes_to_image(boxes, (300, 350))
    assert clipped.dtype == dtype
    assert_close(clipped, tv.clip_boxes_to_image(boxes.float(), (300, 350)).to(dtype),
                 rtol=0, atol=0)
    assert torch.equal(remove_small_boxes(boxes, 15.0), tv.remove_small_boxes(boxes.float(), 15.0))


def test_clip_gradcheck():
    boxes = (random_boxes(4) - 30).requires_grad_()
    assert torch.autograd.gradcheck(lambda b: clip_boxes_to_image(b, (50, 60)), (boxes,))


def test_clip_and_remove_bad_input():
    with pytest.raises(TypeError, match=r"size must be \(height, width\)"):
        clip_boxes_to_image(torch.zeros(2, 4), 10)
    with pytest.raises(TypeError, match="size must be a number or a pair of numbers"):
        clip_boxes_to_image(torch.zeros(2, 4), ("10", 20))
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\]"):
        remove_small_boxes(torch.zeros(4), 1.0)
    with pytest.raises(TypeError, match="min_size must be a number"):
        remove_small_boxes(torch.zeros(2, 4), None)


def test_clip_and_remove_on_device(device):
    boxes = (random_boxes(5) - 20).to(device)
    out = clip_boxes_to_image(boxes, (30, 40))
    assert out.device.type == device.type
    assert_close(out, tv.clip_boxes_to_image(boxes, (30, 40)))
    assert torch.equal(remove_small_boxes(boxes, 8.0), tv.remove_small_boxes(boxes, 8.0))
