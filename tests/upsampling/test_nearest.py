"""nearest_upsample == F.interpolate(mode="nearest"); bed_of_nails_upsample by hand."""

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck
from torch.testing import assert_close

from coursekit.upsampling import bed_of_nails_upsample, nearest_upsample

LECTURE = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).view(1, 1, 2, 2)


def test_nearest_lecture_example_by_hand():
    expected = torch.tensor([[1.0, 1, 2, 2],
                             [1, 1, 2, 2],
                             [3, 3, 4, 4],
                             [3, 3, 4, 4]]).view(1, 1, 4, 4)
    assert_close(nearest_upsample(LECTURE, 2), expected)


def test_bed_of_nails_lecture_example_by_hand():
    expected = torch.tensor([[1.0, 0, 2, 0],
                             [0, 0, 0, 0],
                             [3, 0, 4, 0],
                             [0, 0, 0, 0]]).view(1, 1, 4, 4)
    assert_close(bed_of_nails_upsample(LECTURE, 2), expected)


def test_bed_of_nails_non_square_factor_by_hand():
    x = torch.tensor([[5.0, 6.0]]).view(1, 1, 1, 2)
    expected = torch.tensor([[5.0, 0, 0, 6, 0, 0],
                             [0, 0, 0, 0, 0, 0]]).view(1, 1, 2, 6)
    assert_close(bed_of_nails_upsample(x, (2, 3)), expected)


@pytest.mark.parametrize("shape", [(1, 1, 1, 1), (2, 3, 4, 5), (1, 4, 7, 3)])
@pytest.mark.parametrize("scale", [1, 2, 3, (2, 3), (1, 4)])
def test_nearest_matches_torch_forward_and_backward(shape, scale):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    ours = nearest_upsample(x, scale)
    ref = F.interpolate(x, scale_factor=scale, mode="nearest")
    assert_close(ours, ref)
    g = torch.randn_like(ref)
    (gx_ours,) = torch.autograd.grad(ours, x, g)
    (gx_ref,) = torch.autograd.grad(ref, x, g)
    assert_close(gx_ours, gx_ref)


@pytest.mark.parametrize("scale", [2, (3, 1)])
def test_bed_of_nails_keeps_values_and_sum(scale):
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    out = bed_of_nails_upsample(x, scale)
    sh, sw = (scale, scale) if isinstance(scale, int) else scale
    assert out.shape == (2, 3, 4 * sh, 5 * sw)
    assert_close(out[:, :, ::sh, ::sw], x)
    assert_close(out.sum(), x.sum())
    assert int((out != 0).sum()) == x.numel()


def test_gradcheck():
    x = torch.randn(2, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: nearest_upsample(t, (2, 3)), (x,))
    assert gradcheck(lambda t: bed_of_nails_upsample(t, 2), (x,))


@pytest.mark.parametrize("fn", [nearest_upsample, bed_of_nails_upsample])
def test_bad_inputs(fn):
    x = torch.randn(1, 2, 3, 3)
    with pytest.raises(ValueError, match=r"x must be Tensor\[N, C, H, W\] \(4-D\), got Tensor\[2, 3, 3\]"):
        fn(x[0], 2)
    with pytest.raises(TypeError, match="x must be a Tensor"):
        fn([[1.0]], 2)
    with pytest.raises(ValueError, match="scale_factor must be positive, got 0"):
        fn(x, 0)
    with pytest.raises(ValueError, match=r"scale_factor must be positive, got \(2, -1\)"):
        fn(x, (2, -1))
    with pytest.raises(TypeError, match="scale_factor must be an int or a pair of ints, got 1.5"):
        fn(x, 1.5)
    with pytest.raises(TypeError, match=r"scale_factor must be an int or a pair of ints, got \(2,\)"):
        fn(x, (2,))


def test_device_and_dtype_follow_input(device):
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(2, 3, 4, 5, dtype=dtype, device=device)
        out = nearest_upsample(x, 2)
        assert out.device == x.device and out.dtype == dtype
        assert_close(out, F.interpolate(x, scale_factor=2, mode="nearest"))
        nails = bed_of_nails_upsample(x, 2)
        assert nails.device == x.device and nails.dtype == dtype
        assert_close(nails[:, :, ::2, ::2], x)
