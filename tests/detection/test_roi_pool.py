"""roi_pool against torchvision.ops.roi_pool; roi_pool_misalignment against roi_pool itself."""

import importlib

import pytest
import torch
import torchvision.ops as tv
from torch.testing import assert_close

from coursekit.detection import roi_pool, roi_pool_misalignment

roi_pool_module = importlib.import_module("coursekit.detection.roi_pool")


def random_rois(k, n_images, size, dtype=torch.float64):
    xy = torch.rand(k, 2, dtype=dtype) * size * 1.4 - 0.3 * size
    wh = torch.rand(k, 2, dtype=dtype) * size * 0.8
    wh[: k // 6, 0] = 0
    return torch.cat([torch.randint(0, n_images, (k, 1)).to(dtype), xy, xy + wh], dim=1)


def test_hand_computed():
    image = torch.arange(16.0).reshape(1, 1, 4, 4)  # value = 4 y + x
    # pixels 0..3 in both axes, bins of 2 x 2 pixels: the maximum is each bin's bottom-right pixel
    out = roi_pool(image, torch.tensor([[0.0, 0, 0, 3, 3]]), 2)
    assert_close(out[0, 0], torch.tensor([[5.0, 7.0], [13.0, 15.0]]))
    # (1, 1, 5, 5) * 0.5 = (0.5, 0.5, 2.5, 2.5) rounds half away from zero to pixels 1..3: max 15
    # (rounding halves to even, as torch.round does, would give pixels 0..2 and 10)
    assert roi_pool(image, torch.tensor([[0.0, 1, 1, 5, 5]]), 1, spatial_scale=0.5).item() == 15.0


@pytest.mark.parametrize("budget", [1 << 20, 100])  # 100: one RoI, one window row at a time
@pytest.mark.parametrize("output_size, spatial_scale, size", [
    (1, 1.0, (9, 11)), (2, 0.5, (10, 12)), ((3, 5), 0.25, (7, 6)), (7, 0.5, (12, 9)),
])
def test_forward_and_backward_match_torchvision(monkeypatch, budget, output_size,
                                                spatial_scale, size):
    monkeypatch.setattr(roi_pool_module, "_BUDGET", budget)
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    rois = random_rois(14, 2, max(size) / spatial_scale)
    ours = roi_pool(x, rois, output_size, spatial_scale)
    theirs = tv.roi_pool(x, rois, output_size, spatial_scale)
    assert_close(ours, theirs)
    upstream = torch.randn_like(ours)
    assert_close(torch.autograd.grad(ours, x, upstream)[0],
                 torch.autograd.grad(theirs, x, upstream)[0])


@pytest.mark.parametrize("budget", [1 << 20, 10])  # 10: window rows one by one
def test_ties_send_the_gradient_to_the_first_maximum_like_torchvision(monkeypatch, budget):
    monkeypatch.setattr(roi_pool_module, "_BUDGET", budget)
    x = torch.zeros(1, 1, 6, 6, dtype=torch.float64, requires_grad=True)  # every value ties
    rois = torch.tensor([[0.0, 0, 0, 5, 5], [0, 1, 2, 4, 4]], dtype=torch.float64)
    ours, theirs = roi_pool(x, rois, 2), tv.roi_pool(x, rois, 2)
    assert_close(torch.autograd.grad(ours.sum(), x)[0], torch.autograd.grad(theirs.sum(), x)[0])


def test_one_huge_box_matches_torchvision():
    x = torch.randn(1, 3, 200, 180)
    rois = torch.tensor([[0.0, 0.0, 0.0, 5000.0, 5000.0], [0.0, 100.0, 60.0, 700.0, 900.0]])
    assert_close(roi_pool(x, rois, 7, 0.25), tv.roi_pool(x, rois, 7, 0.25))


def test_one_huge_box_memory_is_bounded(peak_memory_mb):
    # The case "roi_pool" of conftest.MEMORY_CASES: 5000 px at 1/4 on a 256 x 256 map, bins
    # of 179 x 179 cells. The old code read every bin's whole window at once (49 x 179^2 x
    # 32 channels = 50M values): 386 MB measured with this probe. Slabs of window rows hold
    # at most _BUDGET values: 45 MB measured.
    assert peak_memory_mb["roi_pool"] < 150


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_matches_torchvision_in_float32(dtype):
    # A maximum is exact in any dtype and the bin edges are computed in float32, so the
    # result equals torchvision's on the same values in float32: tolerance 0, gradient too.
    x = torch.randn(2, 3, 20, 24).to(dtype).requires_grad_()
    rois = random_rois(12, 2, 160.0, dtype=torch.float32)
    ours = roi_pool(x, rois, (4, 3), 0.125)
    x32 = x.detach().float().requires_grad_()
    theirs = tv.roi_pool(x32, rois, (4, 3), 0.125)
    assert ours.dtype == dtype
    assert_close(ours, theirs.to(dtype), rtol=0, atol=0)
    upstream = torch.randn(ours.shape).to(dtype)
    assert_close(torch.autograd.grad(ours, x, upstream)[0],
                 torch.autograd.grad(theirs, x32, upstream.float())[0].to(dtype), rtol=0, atol=0)


def test_float32_and_list_of_boxes_match_torchvision():
    x = torch.randn(2, 4, 16, 20)
    boxes = [random_rois(5, 1, 64.0)[:, 1:].float(), random_rois(6, 1, 64.0)[:, 1:].float()]
    assert_close(roi_pool(x, boxes, (5, 4), 0.25), tv.roi_pool(x, boxes, (5, 4), 0.25))


def test_gradcheck():
    # distinct values: one maximum per bin
    x = torch.randn(1, 2, 6, 7, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.3, 0.2, 5.1, 4.7], [0, -1.2, 1.1, 3.2, 6.3]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: roi_pool(t, rois, 2), (x,))


def test_bad_input():
    x = torch.randn(1, 1, 4, 4)
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[K, 5\] or list of "
                                         r"Tensor\[L, 4\], got Tensor\[2, 4\]"):
        roi_pool(x, torch.zeros(2, 4), 2)
    with pytest.raises(TypeError, match=r"input must be a floating-point Tensor\[N, C, H, W\]"):
        roi_pool(x.int(), torch.zeros(1, 5), 2)
    with pytest.raises(ValueError, match="output_size must be positive"):
        roi_pool(x, torch.zeros(1, 5), (2, -1))
    with pytest.raises(ValueError, match=r"box must be \(x1, y1, x2, y2\), got shape \(5,\)"):
        roi_pool_misalignment(torch.zeros(5), 2)
    with pytest.raises(TypeError, match=r"box must be \(x1, y1, x2, y2\) numbers"):
        roi_pool_misalignment(("a", 1, 2, 3), 2)


def test_on_device(device):
    x = torch.randn(2, 3, 10, 10, dtype=torch.float64, device=device, requires_grad=True)
    rois = random_rois(8, 2, 20.0).to(device)
    out = roi_pool(x, rois, 3, 0.5)
    reference = tv.roi_pool(x, rois, 3, 0.5)  # torchvision on the same device
    assert out.device.type == device.type
    assert_close(out, reference)
    upstream = torch.randn_like(out)
    assert_close(torch.autograd.grad(out, x, upstream)[0],
                 torch.autograd.grad(reference, x, upstream)[0])


# ---- the misalignment helper ---------------------------------------------------------

def test_misalignment_hand_computed():
    # x: 0.3 -> 0, 10.2 -> 10: pixels 0..10 (11 wide), bins [0, 6) and [5, 11)
    #    vs true [0.3, 5.25), [5.25, 10.2)
    # y: pixels 0..10 too, bins [0, 6) and [5, 11) vs true [0, 5), [5, 10): off by 1
    m = roi_pool_misalignment((0.3, 0.0, 10.2, 10.0), 2)
    assert_close(m.pooled_bins[0, 0], torch.tensor([0.0, 0.0, 6.0, 6.0], dtype=torch.float64))
    assert_close(m.true_bins[1, 1], torch.tensor([5.25, 5.0, 10.2, 10.0], dtype=torch.float64))
    assert m.max_error == pytest.approx(1.0)
    m = roi_pool_misalignment((0.3, 0.0, 10.2, 10.0), 2, spatial_scale=0.5)
    assert m.max_error_image == pytest.approx(2 * m.max_error)


@pytest.mark.parametrize("box, output_size, scale", [((1.2, 0.7, 9.6, 7.4), 3, 1.0),
                                                     ((3, 2, 21, 15), (2, 4), 0.5)])
def test_misalignment_bins_are_the_cells_roi_pool_reads(box, output_size, scale):
    H = W = 12
    one_hot = torch.eye(H * W, dtype=torch.float64).reshape(H * W, 1, H, W)  # n lights pixel n
    rois = torch.tensor([[n, *box] for n in range(H * W)], dtype=torch.float64)
    # (H * W, ph, pw): 1 where the bin covers pixel n
    seen = roi_pool(one_hot, rois, output_size, scale)[:, 0]
    bins = roi_pool_misalignment(box, output_size, scale).pooled_bins.long()  # (ph, pw, 4)
    ys, xs = torch.arange(H).repeat_interleave(W), torch.arange(W).repeat(H)
    inside = ((xs[:, None, None] >= bins[..., 0]) & (xs[:, None, None] < bins[..., 2])
              & (ys[:, None, None] >= bins[..., 1]) & (ys[:, None, None] < bins[..., 3]))
    assert torch.equal(seen == 1, inside)
