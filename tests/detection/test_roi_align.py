"""roi_align against torchvision.ops.roi_align: forward and input gradient, float64."""

import importlib

import pytest
import torch
import torchvision.ops as tv
from torch.testing import assert_close

from coursekit.detection import roi_align

roi_align_module = importlib.import_module("coursekit.detection.roi_align")


def ramp(h=4, w=4):
    """f(y, x) = x + 1 as Tensor[1, 1, h, w]: bilinear interpolation of it is exact."""
    return (torch.arange(w, dtype=torch.float64) + 1).expand(1, 1, h, w).contiguous()


def random_rois(k, n_images, size, dtype=torch.float64):
    """Boxes inside, partly outside and fully outside an image of `size` box units, some zero-width."""
    xy = torch.rand(k, 2, dtype=dtype) * size * 1.4 - 0.3 * size
    wh = torch.rand(k, 2, dtype=dtype) * size * 0.8
    wh[: k // 6, 0] = 0  # degenerate: zero width
    batch = torch.randint(0, n_images, (k, 1)).to(dtype)
    return torch.cat([batch, xy, xy + wh], dim=1)


# ---- hand-computed ------------------------------------------------------------------

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
def test_hand_computed_on_ramp(box, output_size, sampling_ratio, aligned, expected):
    rois = torch.tensor([[0.0, *box]], dtype=torch.float64)
    out = roi_align(ramp(), rois, output_size, sampling_ratio=sampling_ratio, aligned=aligned)
    assert_close(out[0, 0], torch.tensor(expected, dtype=torch.float64))


def test_hand_computed_2d():
    image = (10 * torch.arange(4.0)[:, None] + torch.arange(4.0))[None, None].double()  # f = 10 y + x
    rois = torch.tensor([[0.0, 0, 0, 4, 4]], dtype=torch.float64)
    # aligned: bins of 2 x 2 pixels, one sample at each bin centre (0.5 or 2.5 in pixel indices)
    out = roi_align(image, rois, 2, sampling_ratio=1, aligned=True)
    assert_close(out[0, 0], torch.tensor([[5.5, 7.5], [25.5, 27.5]], dtype=torch.float64))


# ---- against torchvision ------------------------------------------------------------

@pytest.mark.parametrize("aligned", [False, True])
@pytest.mark.parametrize("sampling_ratio", [-1, 0, 1, 2])
def test_forward_and_backward_match_torchvision(aligned, sampling_ratio):
    for output_size, spatial_scale, (H, W) in [(1, 1.0, (9, 11)), (2, 0.5, (10, 12)),
                                                ((3, 5), 0.25, (7, 6)), (7, 0.5, (12, 9))]:
        x = torch.randn(2, 3, H, W, dtype=torch.float64, requires_grad=True)
        rois = random_rois(14, 2, max(H, W) / spatial_scale)
        ours = roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
        theirs = tv.roi_align(x, rois, output_size, spatial_scale, sampling_ratio, aligned)
        assert_close(ours, theirs)
        upstream = torch.randn_like(ours)
        (g_ours,) = torch.autograd.grad(ours, x, upstream)
        (g_theirs,) = torch.autograd.grad(theirs, x, upstream)
        assert_close(g_ours, g_theirs)


def test_float32_and_list_of_boxes_match_torchvision():
    x = torch.randn(3, 4, 16, 20)
    boxes = [random_rois(5, 1, 64.0)[:, 1:].float(), torch.zeros(0, 4), random_rois(7, 1, 64.0)[:, 1:].float()]
    ours = roi_align(x, boxes, (5, 4), 0.25, 2, True)
    assert ours.dtype == torch.float32
    assert_close(ours, tv.roi_align(x, boxes, (5, 4), 0.25, 2, True))


def test_large_boxes_and_many_chunks(monkeypatch):
    monkeypatch.setattr(roi_align_module, "_BUDGET", 500)  # a few RoIs per chunk
    x = torch.randn(2, 2, 20, 20, dtype=torch.float64)
    rois = random_rois(40, 2, 80.0)  # adaptive grids from 0 up to 9 samples per axis
    assert_close(roi_align(x, rois, 3, 1.0, -1, False), tv.roi_align(x, rois, 3, 1.0, -1, False))


def test_uses_the_bilinear_sample_of_lesson_02(monkeypatch):
    calls = []
    original = roi_align_module.bilinear_sample

    def spy(*args, **kwargs):
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(roi_align_module, "bilinear_sample", spy)
    roi_align(ramp(), torch.tensor([[0.0, 0, 0, 3, 3]], dtype=torch.float64), 2)
    assert calls


def test_box_dtype_is_cast_to_input_dtype():
    # torchvision's kernel refuses mixed dtypes; we cast the boxes (exact here: float32 -> float64)
    x = torch.randn(1, 2, 8, 8, dtype=torch.float64)
    rois = random_rois(4, 1, 8.0).float()
    assert_close(roi_align(x, rois, 2), tv.roi_align(x, rois.double(), 2))


def test_no_boxes():
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64)
    out = roi_align(x, torch.zeros(0, 5, dtype=torch.float64), (2, 3))
    assert out.shape == (0, 3, 2, 3)
    assert out.shape == tv.roi_align(x, torch.zeros(0, 5, dtype=torch.float64), (2, 3)).shape


@pytest.mark.parametrize("sampling_ratio", [-1, 2])
def test_gradcheck(sampling_ratio):
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    rois = torch.tensor([[0, 0.3, 0.2, 4.1, 3.7], [0, -1.2, 1.1, 2.2, 6.3]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda t: roi_align(t, rois, 2, 1.0, sampling_ratio, True), (x,))


# ---- bad input ----------------------------------------------------------------------

def test_bad_input():
    x = torch.randn(2, 3, 8, 8)
    rois = torch.tensor([[0.0, 1, 1, 4, 4]])
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[K, 5\] or list of Tensor\[L, 4\], got Tensor\[3, 4, 2\]"):
        roi_align(x, torch.zeros(3, 4, 2), 2)
    with pytest.raises(ValueError, match=r"got Tensor\[2, 5\] at index 1 of the list"):
        roi_align(x, [torch.zeros(1, 4), torch.zeros(2, 5)], 2)
    with pytest.raises(ValueError, match=r"batch index\) must be integers in \[0, N\) = \[0, 2\), got 2.0"):
        roi_align(x, torch.tensor([[2.0, 1, 1, 4, 4]]), 2)
    with pytest.raises(ValueError, match="list of 3 tensors but input has only N = 2"):
        roi_align(x, [torch.zeros(1, 4)] * 3, 2)
    with pytest.raises(ValueError, match="output_size must be positive, got 0"):
        roi_align(x, rois, 0)
    with pytest.raises(TypeError, match="output_size must be an int or a pair of ints"):
        roi_align(x, rois, 2.5)
    with pytest.raises(ValueError, match=r"input must be Tensor\[N, C, H, W\] \(4-D\), got Tensor\[3, 8, 8\]"):
        roi_align(x[0], rois, 2)
    with pytest.raises(TypeError, match="sampling_ratio must be an int"):
        roi_align(x, rois, 2, sampling_ratio=1.5)
    with pytest.raises(ValueError, match="spatial_scale must be a positive number"):
        roi_align(x, rois, 2, spatial_scale=0.0)
    with pytest.raises(TypeError, match="aligned must be a bool"):
        roi_align(x, rois, 2, aligned=1)


def test_sampling_ratio_zero_is_adaptive_like_torchvision():
    x = torch.randn(1, 2, 12, 12, dtype=torch.float64)
    rois = random_rois(6, 1, 12.0)
    assert_close(roi_align(x, rois, 3, sampling_ratio=0), roi_align(x, rois, 3, sampling_ratio=-1))
    assert_close(roi_align(x, rois, 3, sampling_ratio=0), tv.roi_align(x, rois, 3, sampling_ratio=0))


def test_on_device(device):
    x = torch.randn(2, 3, 10, 10, dtype=torch.float64)
    rois = random_rois(8, 2, 20.0)
    out = roi_align(x.to(device), rois.to(device), 3, 0.5, -1, True)
    assert out.device.type == device.type
    assert_close(out.cpu(), tv.roi_align(x, rois, 3, 0.5, -1, True))
