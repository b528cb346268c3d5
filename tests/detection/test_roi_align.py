"""roi_align and roi_align_loop against torchvision.ops.roi_align: forward and input gradient."""

import importlib

import pytest
import torch
import torchvision.ops as tv
from torch.testing import assert_close

from coursekit.detection import roi_align, roi_align_loop

roi_align_module = importlib.import_module("coursekit.detection.roi_align")
BOTH = pytest.mark.parametrize("fn", [roi_align, roi_align_loop], ids=["fast", "loop"])


def ramp(h=4, w=4):
    """f(y, x) = x + 1 as Tensor[1, 1, h, w]: bilinear interpolation of it is exact."""
    return (torch.arange(w, dtype=torch.float64) + 1).expand(1, 1, h, w).contiguous()


def random_rois(k, n_images, size, dtype=torch.float64):
    """Boxes inside, partly outside and fully outside an image of `size` units, some empty."""
    xy = torch.rand(k, 2, dtype=dtype) * size * 1.4 - 0.3 * size
    wh = torch.rand(k, 2, dtype=dtype) * size * 0.8
    wh[: k // 6, 0] = 0  # degenerate: zero width
    batch = torch.randint(0, n_images, (k, 1)).to(dtype)
    return torch.cat([batch, xy, xy + wh], dim=1)


# ---- hand-computed ------------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("box, output_size, sampling_ratio, aligned, expected", [
    # aligned: x from 0.5 to 2.5, samples at x = 1 and 2, values 2 and 3
    ((1, 0, 3, 4), 1, 2, True, [[2.5]]),
    ((1, 0, 3, 4), (1, 2), 1, True, [[2.0, 3.0]]),
    # adaptive grid: ceil(3 / 1) = 3 samples per axis at x = 0.5, 1.5, 2.5
    ((0, 0, 3, 3), 1, -1, False, [[2.5]]),
    # x = -0.5 is inside [-1, W] and clamps to column 0
    ((-1, 0, 0, 4), 1, 1, False, [[1.0]]),
    # x = -7 < -1 contributes 0
    ((-10, 0, -4, 4), 1, 1, False, [[0.0]]),
    # samples at x = -2 (counts 0) and x = 0 (value 1), rows y = 1 and 3: (0 + 1 + 0 + 1) / 4
    ((-3, 0, 1, 4), 1, 2, False, [[0.5]]),
])
def test_hand_computed_on_ramp(fn, box, output_size, sampling_ratio, aligned, expected):
    rois = torch.tensor([[0.0, *box]], dtype=torch.float64)
    out = fn(ramp(), rois, output_size, sampling_ratio=sampling_ratio, aligned=aligned)
    assert_close(out[0, 0], torch.tensor(expected, dtype=torch.float64))


@BOTH
def test_hand_computed_2d(fn):
    image = (10 * torch.arange(4.0)[:, None] + torch.arange(4.0))[None, None].double()  # 10 y + x
    rois = torch.tensor([[0.0, 0, 0, 4, 4]], dtype=torch.float64)
    # aligned: bins of 2 x 2 pixels, one sample at each bin centre (0.5 or 2.5 in pixel indices)
    out = fn(image, rois, 2, sampling_ratio=1, aligned=True)
    assert_close(out[0, 0], torch.tensor([[5.5, 7.5], [25.5, 27.5]], dtype=torch.float64))


# ---- against torchvision ------------------------------------------------------------

CASES = [(1, 1.0, (9, 11)), (2, 0.5, (10, 12)), ((3, 5), 0.25, (7, 6)), (7, 0.5, (12, 9))]


@BOTH
@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2])
def test_forward_and_backward_match_torchvision(fn, aligned, sampling_ratio):
    for output_size, spatial_scale, (H, W) in CASES:
        x = torch.randn(2, 3, H, W, dtype=torch.float64, requires_grad=True)
        rois = random_rois(14, 2, max(H, W) / spatial_scale)
        ours = fn(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
        theirs = tv.roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
        assert_close(ours, theirs)
        upstream = torch.randn_like(ours)
        (g_ours,) = torch.autograd.grad(ours, x, upstream)
        (g_theirs,) = torch.autograd.grad(theirs, x, upstream)
        assert_close(g_ours, g_theirs)


@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_loop_is_bit_identical_to_torchvision_in_float64(sampling_ratio):
    # the loop adds the samples in the kernel's order: not one bit differs
    x = torch.randn(2, 3, 12, 9, dtype=torch.float64)
    rois = random_rois(20, 2, 24.0)
    ours = roi_align_loop(x, rois, 3, 0.5, sampling_ratio, True)
    assert torch.equal(ours, tv.roi_align(x, rois, 3, 0.5, sampling_ratio, True))


@BOTH
def test_float32_and_list_of_boxes_match_torchvision(fn):
    x = torch.randn(3, 4, 16, 20)
    boxes = [random_rois(5, 1, 64.0)[:, 1:].float(), torch.zeros(0, 4),
             random_rois(7, 1, 64.0)[:, 1:].float()]
    ours = fn(x, boxes, (5, 4), 0.25, 2, True)
    assert ours.dtype == torch.float32
    assert_close(ours, tv.roi_align(x, boxes, (5, 4), 0.25, 2, True))


@pytest.mark.parametrize("budget, padding", [(200, 1.5), (3000, 1.0), (1 << 20, 100.0)])
def test_chunks_and_offset_slabs_match_torchvision(monkeypatch, budget, padding):
    # A small budget splits RoIs into chunks and each bin's samples into many slabs;
    # padding 1.0 puts only equal grids together, 100 pads every RoI to the largest grid.
    monkeypatch.setattr(roi_align_module, "_BUDGET", budget)
    monkeypatch.setattr(roi_align_module, "_PADDING", padding)
    x = torch.randn(2, 2, 20, 20, dtype=torch.float64, requires_grad=True)
    rois = random_rois(40, 2, 80.0)  # adaptive grids from 0 up to 9 samples per axis
    for ratio in (-1, 3):
        ours = roi_align(x, rois, 3, 1.0, ratio, False)
        theirs = tv.roi_align(x, rois, 3, 1.0, ratio, False)
        assert_close(ours, theirs)
        upstream = torch.randn_like(ours)
        assert_close(torch.autograd.grad(ours, x, upstream)[0],
                     torch.autograd.grad(theirs, x, upstream)[0])


def test_one_huge_box_matches_torchvision():
    # 5000 px at 1/4: 1250 feature px, 179 x 179 adaptive samples per bin (32 041 per bin)
    x = torch.randn(1, 3, 64, 64)
    rois = torch.tensor([[0.0, 0.0, 0.0, 5000.0, 5000.0], [0.0, 100.0, 60.0, 4000.0, 900.0]])
    assert_close(roi_align(x, rois, 7, 0.25, -1, False), tv.roi_align(x, rois, 7, 0.25, -1, False))


def test_one_huge_box_memory_is_bounded(peak_memory_mb):
    # The case "roi_align" of conftest.MEMORY_CASES: one 5000-px box at 1/4, adaptive, 32
    # channels. The old code held every sample x channel of the RoI at once (49 bins x
    # 179^2 samples x 32 = 50M values): 701 MB measured with this probe. Now at most
    # _BUDGET (pixel, weight) pairs exist at a time: 58 MB measured.
    assert peak_memory_mb["roi_align"] < 150


def test_peak_memory_probe_sees_torch_allocations(peak_memory_mb):
    assert peak_memory_mb["probe"] > 150  # a 200 MB tensor shows: the probe is not blind


def test_loop_uses_the_bilinear_sample_of_lesson_02(monkeypatch):
    calls = []
    original = roi_align_module.bilinear_sample

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(roi_align_module, "bilinear_sample", spy)
    roi_align_loop(ramp(), torch.tensor([[0.0, 0, 0, 3, 3]], dtype=torch.float64), 2)
    assert len(calls) == 4  # one call per sample offset: 2 x 2 adaptive samples


@BOTH
def test_box_dtype_is_cast_to_input_dtype(fn):
    # torchvision's kernel refuses mixed dtypes; we cast the boxes (exact: float32 -> float64)
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    rois = random_rois(4, 1, 8.0).float()
    assert_close(fn(x, rois, 2), tv.roi_align(x, rois.double(), 2))


@BOTH
def test_no_boxes(fn):
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    out = fn(x, torch.zeros(0, 5, dtype=torch.float64), (2, 3))
    assert out.shape == (0, 3, 2, 3)
    assert out.shape == tv.roi_align(x, torch.zeros(0, 5, dtype=torch.float64), (2, 3)).shape


@BOTH
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_gradcheck(fn, sampling_ratio):
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.3, 0.2, 4.1, 3.7], [0, -1.2, 1.1, 2.2, 6.3]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: fn(t, rois, 2, 1.0, sampling_ratio, True), (x,))


# ---- reduced precision --------------------------------------------------------------

@BOTH
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_half_precision_matches_torchvision_in_float32(fn, dtype, sampling_ratio):
    # Reference: torchvision in float32 on the same (half-precision) values, rounded to
    # dtype. We compute in float32 and round once, so the two differ by at most one unit
    # in the last place: rtol = eps(dtype) (fp16 9.8e-4, bf16 7.8e-3), atol = 1e-5.
    # Box coordinates stay float32: a bf16 box edge at 300.7 would be read as 300.
    x = torch.randn(2, 3, 20, 24).to(dtype).requires_grad_()
    rois = random_rois(12, 2, 160.0, dtype=torch.float32)
    rois[:, 1:] += 0.37  # not representable in bf16 above 64: must not be rounded
    ours = fn(x, rois, (4, 3), 0.125, sampling_ratio, True)
    x32 = x.detach().float().requires_grad_()
    theirs = tv.roi_align(x32, rois, (4, 3), 0.125, sampling_ratio, True)
    assert ours.dtype == dtype
    tol = {"rtol": torch.finfo(dtype).eps, "atol": 1e-5}
    assert_close(ours, theirs.to(dtype), **tol)
    upstream = torch.randn(ours.shape).to(dtype)
    (g_ours,) = torch.autograd.grad(ours, x, upstream)
    (g_theirs,) = torch.autograd.grad(theirs, x32, upstream.float())
    assert g_ours.dtype == dtype
    assert_close(g_ours, g_theirs.to(dtype), **tol)


# ---- bad input ----------------------------------------------------------------------

@BOTH
def test_bad_input(fn):
    x = torch.randn(2, 3, 8, 8)
    rois = torch.tensor([[0.0, 1, 1, 4, 4]])
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[K, 5\] or list of "
                                         r"Tensor\[L, 4\], got Tensor\[3, 4, 2\]"):
        fn(x, torch.zeros(3, 4, 2), 2)
    with pytest.raises(ValueError, match=r"boxes\[1\] must be Tensor\[N, 4\].*got Tensor\[2, 5\]"):
        fn(x, [torch.zeros(1, 4), torch.zeros(2, 5)], 2)
    with pytest.raises(TypeError, match=r"boxes must be floating point, got Tensor\[1, 5\] int64"):
        fn(x, rois.long(), 2)
    with pytest.raises(TypeError, match="boxes must be Tensor.*got str"):
        fn(x, "boxes", 2)
    with pytest.raises(ValueError, match=r"batch index\) must be integers in \[0, N\) = \[0, 2\), "
                                         r"got 2.0"):
        fn(x, torch.tensor([[2.0, 1, 1, 4, 4]]), 2)
    with pytest.raises(ValueError, match="list of 3 tensors but input has only N = 2"):
        fn(x, [torch.zeros(1, 4)] * 3, 2)
    with pytest.raises(ValueError, match="output_size must be positive, got 0"):
        fn(x, rois, 0)
    with pytest.raises(TypeError, match="output_size must be an int or a pair of ints"):
        fn(x, rois, 2.5)
    with pytest.raises(ValueError, match=r"input must be Tensor\[N, C, H, W\] \(4-D\), "
                                         r"got Tensor\[3, 8, 8\]"):
        fn(x[0], rois, 2)
    with pytest.raises(TypeError, match=r"input must be a floating-point Tensor\[N, C, H, W\]"):
        fn(x.long(), rois, 2)
    with pytest.raises(TypeError, match="sampling_ratio must be an int"):
        fn(x, rois, 2, sampling_ratio=1.5)
    with pytest.raises(ValueError, match="spatial_scale must be a positive number, got 0.0"):
        fn(x, rois, 2, spatial_scale=0.0)
    with pytest.raises(TypeError, match="spatial_scale must be a positive number, got str"):
        fn(x, rois, 2, spatial_scale="1/16")
    with pytest.raises(TypeError, match="aligned must be a bool"):
        fn(x, rois, 2, aligned=1)


def test_sampling_ratio_zero_is_adaptive_like_torchvision():
    x = torch.randn(1, 2, 12, 12, dtype=torch.float64)
    rois = random_rois(6, 1, 12.0)
    adaptive = roi_align(x, rois, 3, sampling_ratio=0)
    assert_close(adaptive, roi_align(x, rois, 3, sampling_ratio=-1))
    assert_close(adaptive, tv.roi_align(x, rois, 3, sampling_ratio=0))


@BOTH
def test_on_device(fn, device):
    x = torch.randn(2, 3, 10, 10, dtype=torch.float64, device=device, requires_grad=True)
    rois = random_rois(8, 2, 20.0).to(device)
    out = fn(x, rois, 3, 0.5, -1, True)
    reference = tv.roi_align(x, rois, 3, 0.5, -1, True)  # torchvision on the same device
    assert out.device.type == device.type
    assert_close(out, reference)
    upstream = torch.randn_like(out)
    assert_close(torch.autograd.grad(out, x, upstream)[0],
                 torch.autograd.grad(reference, x, upstream)[0])
