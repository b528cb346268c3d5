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
    assert_close(nearest_upsample(LECTURE, size=4), expected)
    assert_close(nearest_upsample(LECTURE, size=(4, 4)), expected)


def test_size_by_hand():
    x = torch.tensor([[10.0, 20.0, 30.0]]).view(1, 1, 1, 3)
    # 3 -> 5 columns: floor(j * 3 / 5) = 0, 0, 1, 1, 2; 3 -> 2: floor(j * 3 / 2) = 0, 1
    assert nearest_upsample(x, size=(1, 5)).flatten().tolist() == [10, 10, 20, 20, 30]
    assert nearest_upsample(x, size=(2, 2)).tolist() == [[[[10, 20], [10, 20]]]]


def test_float32_rounding_of_one_over_s_by_hand():
    """Torch rounds 1/41 to float32: output 41 reads floor(41 * 0.024390243) = 0, not 1."""
    x = torch.tensor([5.0, 7.0]).view(1, 1, 1, 2)
    out = nearest_upsample(x, (1, 41))[0, 0, 0]  # (82,)
    assert out[:42].eq(5).all() and out[42:].eq(7).all()  # 42 copies of the first value
    assert torch.equal(out, F.interpolate(x, scale_factor=(1, 41), mode="nearest")[0, 0, 0])
    # the exact rule floor(i / s) would give 41 copies; torch's (and ours) gives 42
    assert int((torch.arange(82) // 41 == 0).sum()) == 41


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


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16,
                                   torch.uint8])
def test_every_integer_scale_factor_1_to_64_matches_torch(dtype):
    """Exact equality with torch for s = 1..64 (41, 47, 55, ... round differently from i // s).

    float64: torch's CPU kernel computes the index in float64 but, when one axis keeps its
    size and the tensor is small, some shapes take a float32 path (e.g. (41, 1) on
    Tensor[1, 2, 3, 5]); we follow its float64 arithmetic and compare on (s, s).
    """
    for shape in [(1, 2, 3, 5), (2, 1, 7, 2), (1, 1, 1, 13), (1, 2, 16, 16)]:
        x = torch.randperm(torch.Size(shape).numel()).view(shape).to(dtype)  # distinct values
        for s in range(1, 65):
            scales = [s] if dtype == torch.float64 else [s, (1, s), (s, 1)]
            for scale in scales:
                ref = F.interpolate(x, scale_factor=scale, mode="nearest")
                ours = nearest_upsample(x, scale)
                assert ours.dtype == dtype and torch.equal(ours, ref), (shape, scale)


def test_every_integer_scale_factor_backward_matches_torch():
    """float32 (torch's CPU float64 backward uses float32 indices for s = 41, 47, ... while its
    forward uses float64 ones, so it is not the adjoint of its own forward there; ours is:
    gradcheck below)."""
    x = torch.randn(1, 2, 3, 5, requires_grad=True)
    for s in range(1, 65):
        for scale in ((s, s), (s, s + 1), (1, s)):
            ours = nearest_upsample(x, scale)
            ref = F.interpolate(x, scale_factor=scale, mode="nearest")
            g = torch.randn_like(ref)
            assert_close(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(ref, x, g)[0])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_size_matches_torch_for_many_sizes(dtype):
    """Every output size from 1 to 3 * in + 2 (down- and upsampling), exact, forward."""
    for n in (1, 2, 3, 7, 13, 24, 45):
        x = torch.randperm(2 * n).view(1, 2, 1, n).to(dtype).expand(1, 2, 3, n).contiguous()
        for o in range(1, 3 * n + 3):
            ref = F.interpolate(x, size=(3, o), mode="nearest")
            assert torch.equal(nearest_upsample(x, size=(3, o)), ref), (n, o)


# The FPN's top-down sizes (odd images: 53 -> 27 -> 14 -> 7) and other 2x-ish resizes.
FPN_SIZES = [((7, 7), (14, 14)), ((14, 7), (27, 14)), ((27, 14), (53, 27)), ((35, 27), (70, 53)),
             ((8, 8), (16, 16)), ((5, 9), (10, 17)), ((9, 5), (3, 2))]


@pytest.mark.parametrize("in_size, out_size", FPN_SIZES)
def test_size_matches_torch_forward_and_backward_float64(in_size, out_size):
    x = torch.randn(2, 3, *in_size, dtype=torch.float64, requires_grad=True)
    ours = nearest_upsample(x, size=out_size)
    ref = F.interpolate(x, size=out_size, mode="nearest")
    assert torch.equal(ours, ref)
    g = torch.randn_like(ref)
    assert_close(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(ref, x, g)[0])


@pytest.mark.parametrize("scale", [2, (2, 3)])
def test_bed_of_nails_keeps_values_and_sum(scale):
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    out = bed_of_nails_upsample(x, scale)
    sh, sw = (scale, scale) if isinstance(scale, int) else scale
    assert out.shape == (2, 3, 4 * sh, 5 * sw)
    assert_close(out[:, :, ::sh, ::sw], x)
    assert_close(out.sum(), x.sum())
    assert int((out != 0).sum()) == x.numel()


def test_bed_of_nails_is_torch_nearest_masked_to_the_corners():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    corners = torch.zeros(8, 15, dtype=torch.bool)
    corners[::2, ::3] = True
    expected = F.interpolate(x, scale_factor=(2, 3), mode="nearest") * corners
    assert_close(bed_of_nails_upsample(x, (2, 3)), expected)


def test_gradcheck():
    x = torch.randn(2, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: nearest_upsample(t, (2, 3)), (x,))
    assert gradcheck(lambda t: nearest_upsample(t, size=(5, 3)), (x,))
    assert gradcheck(lambda t: nearest_upsample(t, (1, 41)), (x,))
    assert gradcheck(lambda t: bed_of_nails_upsample(t, 2), (x,))


@pytest.mark.parametrize("fn", [nearest_upsample, bed_of_nails_upsample])
def test_bad_inputs(fn):
    x = torch.randn(1, 2, 3, 3)
    expected = r"x must be Tensor\[N, C, H, W\] \(4-D\), got Tensor\[2, 3, 3\]"
    with pytest.raises(ValueError, match=expected):
        fn(x[0], 2)
    with pytest.raises(TypeError, match=r"x must be Tensor\[N, C, H, W\] \(4-D\), got list"):
        fn([[1.0]], 2)
    with pytest.raises(ValueError, match="scale_factor must be positive, got 0"):
        fn(x, 0)
    with pytest.raises(ValueError, match=r"scale_factor must be positive, got \(2, -1\)"):
        fn(x, (2, -1))
    with pytest.raises(TypeError, match="scale_factor must be an int or a pair of ints, got 1.5"):
        fn(x, 1.5)
    with pytest.raises(TypeError,
                       match=r"scale_factor must be an int or a pair of ints, got \(2,\)"):
        fn(x, (2,))


def test_bad_size():
    x = torch.randn(1, 2, 3, 3)
    with pytest.raises(ValueError, match="give exactly one of scale_factor and size, got both"):
        nearest_upsample(x, 2, size=6)
    with pytest.raises(ValueError, match="give exactly one of scale_factor and size, got neither"):
        nearest_upsample(x)
    with pytest.raises(ValueError, match=r"size must be positive, got \(0, 3\)"):
        nearest_upsample(x, size=(0, 3))
    with pytest.raises(TypeError, match=r"size must be an int or a pair of ints, got \(2.5, 3\)"):
        nearest_upsample(x, size=(2.5, 3))


def test_device_and_dtype_follow_input(device):
    for dtype in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64):
        x = (torch.randn(2, 3, 4, 5, device=device) * 100).to(dtype)
        out = nearest_upsample(x, 2)
        assert out.device == x.device and out.dtype == dtype
        assert torch.equal(out, F.interpolate(x.double(), scale_factor=2, mode="nearest").to(dtype))
        for s in (41, 47, 55):  # the float32 rounding, on this device, against torch there
            if dtype in (torch.float32, torch.float16, torch.bfloat16):
                ref = F.interpolate(x, scale_factor=(1, s), mode="nearest")
                assert torch.equal(nearest_upsample(x, (1, s)), ref)
        sized = nearest_upsample(x, size=(7, 9))
        assert sized.device == x.device and sized.dtype == dtype
        if dtype in (torch.float32, torch.float16, torch.bfloat16):
            assert torch.equal(sized, F.interpolate(x, size=(7, 9), mode="nearest"))
        nails = bed_of_nails_upsample(x, 2)
        assert nails.device == x.device and nails.dtype == dtype
        assert torch.equal(nails[:, :, ::2, ::2], x)
