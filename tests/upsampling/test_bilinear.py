"""bilinear_sample (vs F.grid_sample and by hand) and bilinear_upsample (vs F.interpolate)."""

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck
from torch.testing import assert_close

from coursekit.upsampling import bilinear_sample, bilinear_upsample, bilinear_upsample_loop

LECTURE = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64).view(1, 1, 2, 2)


def grid_sample_reference(input, y, x, batch_index):
    """Sample with F.grid_sample (align_corners=True maps -1..1 to pixel 0..W-1, border clamps)."""
    N, C, H, W = input.shape
    grid = torch.stack([x / (W - 1) * 2 - 1, y / (H - 1) * 2 - 1], dim=-1)  # (P, 2) as (gx, gy)
    out = F.grid_sample(input, grid.expand(N, 1, -1, 2), mode="bilinear", padding_mode="border",
                        align_corners=True)  # (N, C, 1, P)
    return out[batch_index, :, 0, torch.arange(len(y))]  # (P, C)


# ----------------------------------------------------------------------------- bilinear_sample
def test_sample_by_hand():
    img = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64).view(1, 1, 2, 2)
    y = torch.tensor([0.5, 0.0, 0.75, -0.3, 1.5, 5.0, 1.0], dtype=torch.float64)
    x = torch.tensor([0.5, 0.25, 0.0, -2.0, 0.5, 5.0, 1.0], dtype=torch.float64)
    # (0.5, 0.5): mean of all four; (0, .25): 1*.75 + 2*.25; (.75, 0): 1*.25 + 3*.75;
    # (-0.3, -2) clamps to (0, 0); (1.5, .5): last row, 3*.5 + 4*.5; (5, 5) and (1, 1): 4
    expected = torch.tensor([2.5, 1.25, 2.5, 1.0, 3.5, 4.0, 4.0], dtype=torch.float64).view(7, 1)
    assert_close(bilinear_sample(img, y, x), expected)


def test_sample_batch_index_and_broadcast_shape_by_hand():
    img = torch.stack([LECTURE[0], 10 * LECTURE[0]])  # (2, 1, 2, 2)
    img = torch.cat([img, -img], dim=1)  # (2, 2, 2, 2): channel 1 is minus channel 0
    y = torch.tensor([[0.0], [0.5]], dtype=torch.float64)  # (2, 1)
    x = torch.tensor([[0.0, 1.0, 0.5]], dtype=torch.float64)  # (1, 3)
    b = torch.tensor([1, 0]).view(2, 1, 1)  # (2, 1, 1)
    out = bilinear_sample(img, y, x, b)
    assert out.shape == (2, 2, 3, 2)  # (*S, C)
    expected_b1 = torch.tensor([[10.0, 20.0, 15.0], [20.0, 30.0, 25.0]], dtype=torch.float64)
    expected_b0 = expected_b1 / 10
    assert_close(out[0, ..., 0], expected_b1)
    assert_close(out[1, ..., 0], expected_b0)
    assert_close(out[..., 1], -out[..., 0])


@pytest.mark.parametrize("shape", [(1, 1, 2, 2), (2, 3, 5, 7), (3, 4, 6, 2)])
def test_sample_matches_grid_sample(shape):
    N, C, H, W = shape
    img = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    P = 50
    y = torch.rand(P, dtype=torch.float64) * (H + 2) - 1.5  # also outside the image
    x = torch.rand(P, dtype=torch.float64) * (W + 2) - 1.5
    y[:4] = torch.tensor([0.0, H - 1.0, H - 0.5, -0.5], dtype=torch.float64)  # the edge rules
    b = torch.randint(0, N, (P,))
    ours = bilinear_sample(img, y, x, b)
    ref = grid_sample_reference(img, y, x, b)
    assert_close(ours, ref)
    g = torch.randn_like(ref)
    assert_close(torch.autograd.grad(ours, img, g)[0], torch.autograd.grad(ref, img, g)[0])


def test_sample_without_channels_is_empty_like_grid_sample():
    """C = 0: nothing to read; an empty (*S, 0) result, as F.grid_sample gives [N, 0, ...]."""
    image = torch.zeros(2, 0, 3, 4, dtype=torch.float64)
    y = torch.tensor([[0.5, 1.0], [2.0, 0.0]], dtype=torch.float64)
    x = torch.tensor([[1.5, 3.0], [0.0, 2.5]], dtype=torch.float64)
    out = bilinear_sample(image, y, x, torch.tensor([[0], [1]]))
    assert out.shape == (2, 2, 0) and out.dtype == torch.float64
    grid = torch.stack([x / 3 * 2 - 1, y / 2 * 2 - 1], -1)[:, None]  # (2, 1, 2, 2)
    ref = F.grid_sample(image, grid, align_corners=True)  # (2, 0, 1, 2)
    assert ref.numel() == 0 and ref.shape[1] == out.shape[-1]


def test_sample_gradcheck():
    img = torch.randn(2, 3, 4, 5, dtype=torch.float64, requires_grad=True)
    y = torch.tensor([0.3, 2.7, -0.4, 3.0, 3.6], dtype=torch.float64)
    x = torch.tensor([1.2, 0.1, 4.0, 2.5, -1.0], dtype=torch.float64)
    b = torch.tensor([0, 1, 1, 0, 1])
    assert gradcheck(lambda t: bilinear_sample(t, y, x, b), (img,))
    # and w.r.t. the coordinates, away from the integer grid and the edges
    yc = torch.tensor([0.3, 2.6, 1.4], dtype=torch.float64, requires_grad=True)
    xc = torch.tensor([1.2, 0.1, 3.7], dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda a, c: bilinear_sample(img.detach(), a, c), (yc, xc))


def test_sample_bad_inputs():
    img = torch.randn(2, 3, 4, 5)
    y = torch.zeros(6)
    with pytest.raises(ValueError,
                       match=r"input must be Tensor\[N, C, H, W\] \(4-D\), got Tensor\[3, 4, 5\]"):
        bilinear_sample(img[0], y, y)
    with pytest.raises(TypeError, match=r"input must be Tensor\[N, C, H, W\] \(4-D\), got list"):
        bilinear_sample([[0.0]], y, y)
    with pytest.raises(TypeError, match=r"y must be a floating-point Tensor \(float16, bfloat16, "
                                        r"float32 or float64\), got Tensor\[6\] int64"):
        bilinear_sample(img, y.long(), y)
    with pytest.raises(TypeError, match="x must be a floating-point Tensor, got list"):
        bilinear_sample(img, y, [0.0])
    with pytest.raises(TypeError, match=r"batch_index must be an int64 Tensor or None, "
                                        r"got Tensor\[6\] float32"):
        bilinear_sample(img, y, y, y)
    with pytest.raises(ValueError, match=r"y, x and batch_index must broadcast together, "
                                         r"got shapes \(6,\), \(4,\)"):
        bilinear_sample(img, y, torch.zeros(4))
    with pytest.raises(ValueError, match=r"input must have H, W >= 1, got Tensor\[2, 3, 0, 5\]"):
        bilinear_sample(img[:, :, :0], y, y)


# --------------------------------------------------------------------------- bilinear_upsample
def test_upsample_lecture_example_by_hand():
    # align_corners=False, 2 -> 4: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (clamped to 1)
    expected = torch.tensor([[1.0, 1.25, 1.75, 2.0],
                             [1.5, 1.75, 2.25, 2.5],
                             [2.5, 2.75, 3.25, 3.5],
                             [3.0, 3.25, 3.75, 4.0]], dtype=torch.float64).view(1, 1, 4, 4)
    assert_close(bilinear_upsample(LECTURE, scale_factor=2), expected)
    # align_corners=True, 2 -> 4: sources 0, 1/3, 2/3, 1
    t = 1 / 3
    expected = torch.tensor([[1.0, 1 + t, 2 - t, 2.0],
                             [2 - t, 2.0, 2 + t, 3 - t],
                             [2 + t, 3 - t, 3.0, 3 + t],
                             [3.0, 3 + t, 4 - t, 4.0]], dtype=torch.float64).view(1, 1, 4, 4)
    assert_close(bilinear_upsample(LECTURE, size=4, align_corners=True), expected)


RESIZES = [dict(scale_factor=2), dict(scale_factor=3), dict(scale_factor=1.7),
           dict(scale_factor=(2, 0.5)), dict(scale_factor=(1.25, 2.6)), dict(size=(9, 13)),
           dict(size=4), dict(size=(1, 3))]


@pytest.mark.parametrize("shape", [(1, 1, 2, 2), (2, 3, 5, 7), (1, 2, 1, 4)])
@pytest.mark.parametrize("resize", RESIZES)
@pytest.mark.parametrize("align_corners", [False, True])
def test_upsample_matches_interpolate(shape, resize, align_corners):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    ours = bilinear_upsample(x, align_corners=align_corners, **resize)
    ref = F.interpolate(x, mode="bilinear", align_corners=align_corners, **resize)
    assert_close(ours, ref)
    g = torch.randn_like(ref)
    assert_close(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(ref, x, g)[0])


def test_upsample_float32_matches_interpolate():
    x = torch.randn(2, 4, 16, 16)
    for kw in (dict(scale_factor=2), dict(size=(23, 40)), dict(scale_factor=1.5)):
        assert_close(bilinear_upsample(x, **kw), F.interpolate(x, mode="bilinear", **kw))


def test_unchanged_axis_is_copied_like_torch_cpu():
    x = torch.randn(1, 2, 4, 3, dtype=torch.float64)
    out = bilinear_upsample(x, scale_factor=(1.5, 1.2))  # W: floor(3 * 1.2) = 3 keeps its size
    assert out.shape == (1, 2, 6, 3)
    assert_close(out, F.interpolate(x, scale_factor=(1.5, 1.2), mode="bilinear"))
    assert_close(out[:, :, 0], x[:, :, 0])  # row source -1/6 clamps to 0, columns untouched
    # row 1 reads the source row 1.5 / 1.5 - 0.5 = 0.5
    assert_close(out[:, :, 1], 0.5 * x[:, :, 0] + 0.5 * x[:, :, 1])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_both_axes_unchanged_is_a_copy_like_torch(dtype):
    """Same size out: the values of x (torch computes the same), a new tensor, and the
    identity's gradient; by scale factor (floor(5.5) = 5, floor(4.8) = 4), the same values."""
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64).to(dtype)
    for kwargs in (dict(size=(5, 4)), dict(scale_factor=(1.1, 1.2))):
        out = bilinear_upsample(x, **kwargs)
        wide = x.to(torch.promote_types(dtype, torch.float32))  # torch has no CPU half path
        ref = F.interpolate(wide, mode="bilinear", **kwargs).to(dtype)
        assert torch.equal(out, x) and torch.equal(out, ref) and out.data_ptr() != x.data_ptr()
    leaf = torch.randn(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: bilinear_upsample(t, size=3), (leaf,))


@pytest.mark.parametrize("align_corners", [False, True])
def test_upsample_is_bilinear_sample_at_the_source_points(align_corners):
    """The separable matrices compute exactly the 4-neighbour formula (same as RoI Align)."""
    x = torch.randn(2, 3, 5, 6, dtype=torch.float64)
    Ho, Wo = 11, 9
    out = bilinear_upsample(x, size=(Ho, Wo), align_corners=align_corners)
    dst_y = torch.arange(Ho, dtype=torch.float64)
    dst_x = torch.arange(Wo, dtype=torch.float64)
    if align_corners:
        sy, sx = dst_y * (5 - 1) / (Ho - 1), dst_x * (6 - 1) / (Wo - 1)
    else:
        sy, sx = (dst_y + 0.5) * 5 / Ho - 0.5, (dst_x + 0.5) * 6 / Wo - 0.5
    b = torch.arange(2).view(2, 1, 1)
    sampled = bilinear_sample(x, sy.view(1, Ho, 1), sx.view(1, 1, Wo), b)
    assert_close(out, sampled.permute(0, 3, 1, 2))


@pytest.mark.parametrize("resize", [dict(scale_factor=2), dict(size=(5, 3)),
                                    dict(scale_factor=(1.5, 2.5))])
@pytest.mark.parametrize("align_corners", [False, True])
def test_loop_equals_vectorised(resize, align_corners):
    x = torch.randn(2, 2, 3, 4, dtype=torch.float64)
    assert_close(bilinear_upsample_loop(x, align_corners=align_corners, **resize),
                 bilinear_upsample(x, align_corners=align_corners, **resize))


def test_upsample_gradcheck():
    x = torch.randn(1, 2, 3, 4, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: bilinear_upsample(t, scale_factor=2), (x,))
    assert gradcheck(lambda t: bilinear_upsample(t, size=(5, 7), align_corners=True), (x,))


def test_upsample_bad_inputs():
    x = torch.randn(1, 2, 3, 4)
    with pytest.raises(ValueError,
                       match=r"x must be Tensor\[N, C, H, W\] \(4-D\), got Tensor\[2, 3, 4\]"):
        bilinear_upsample(x[0], scale_factor=2)
    with pytest.raises(ValueError, match="give exactly one of size and scale_factor, got both"):
        bilinear_upsample(x, size=4, scale_factor=2)
    with pytest.raises(ValueError, match="give exactly one of size and scale_factor, got neither"):
        bilinear_upsample(x)
    with pytest.raises(ValueError, match="scale_factor must be positive, got -2"):
        bilinear_upsample(x, scale_factor=-2)
    with pytest.raises(ValueError, match=r"scale_factor 0.1 gives an empty output \(0, 0\)"):
        bilinear_upsample(x, scale_factor=0.1)
    with pytest.raises(ValueError, match=r"size must be positive, got \(0, 3\)"):
        bilinear_upsample(x, size=(0, 3))
    with pytest.raises(TypeError, match="size must be an int or a pair of ints, got 2.5"):
        bilinear_upsample(x, size=2.5)
    with pytest.raises(TypeError, match=r"scale_factor must be a number or a pair of numbers, "
                                        r"got '2'"):
        bilinear_upsample(x, scale_factor="2")
    with pytest.raises(TypeError, match=r"x must be a floating-point Tensor\[N, C, H, W\] "
                                        r"\(float16, bfloat16, float32 or float64\), "
                                        r"got Tensor\[1, 2, 3, 4\] int64"):
        bilinear_upsample(x.long(), scale_factor=2)
    with pytest.raises(TypeError,
                       match=r"x must be a floating-point Tensor\[N, C, H, W\], got list"):
        bilinear_upsample([[1.0]], scale_factor=2)
    with pytest.raises(TypeError, match="align_corners must be a bool"):
        bilinear_upsample(x, scale_factor=2, align_corners=None)


def test_device_and_dtype_follow_input(device):
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(2, 3, 4, 5, dtype=dtype, device=device)
        out = bilinear_upsample(x, scale_factor=2)
        assert out.device == x.device and out.dtype == dtype
        assert_close(out, F.interpolate(x, scale_factor=2, mode="bilinear"))
        y = torch.rand(7, dtype=dtype, device=device) * 4
        s = bilinear_sample(x, y, y, torch.ones(7, dtype=torch.long, device=device))
        assert s.device == x.device and s.dtype == dtype and s.shape == (7, 3)
