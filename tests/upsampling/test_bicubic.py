"""cubic_kernel (by hand) and bicubic_upsample (by hand and vs F.interpolate(mode="bicubic"))."""

import random

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck
from torch.testing import assert_close

from coursekit.upsampling.bicubic import bicubic_upsample, cubic_kernel

F64 = torch.float64


# -------------------------------------------------------------------------------- cubic_kernel
def test_cubic_kernel_by_hand():
    s = torch.tensor([0.0, 0.5, -0.5, 1.0, 1.5, -1.5, 2.0, 2.5, -3.0], dtype=F64)
    # |s| <= 1: (a + 2)|s|^3 - (a + 3)|s|^2 + 1 with a = -0.75:  W(.5) = 1.25/8 - 2.25/4 + 1
    # 1 < |s| < 2: a|s|^3 - 5a|s|^2 + 8a|s| - 4a:  W(1.5) = a (3.375 - 11.25 + 12 - 4) = a / 8
    expected = torch.tensor([1.0, 0.59375, 0.59375, 0.0, -0.09375, -0.09375, 0.0, 0.0, 0.0],
                            dtype=F64)
    assert_close(cubic_kernel(s), expected, rtol=0, atol=0)
    # Keys' recommended a = -0.5: W(0.5) = 1.5/8 - 2.5/4 + 1, W(1.5) = -0.5 / 8
    assert_close(cubic_kernel(s[1:3], a=-0.5), torch.tensor([0.5625, 0.5625], dtype=F64))
    assert_close(cubic_kernel(s[4:5], a=-0.5), torch.tensor([-0.0625], dtype=F64))


def test_cubic_kernel_partition_of_unity():
    t = torch.rand(100, dtype=F64)
    total = sum(cubic_kernel(t - k) for k in range(-2, 4))  # the 4 (6) taps around t
    assert_close(total, torch.ones_like(t))


def test_cubic_kernel_bad_inputs():
    with pytest.raises(TypeError, match=r"s must be a floating-point Tensor, got list"):
        cubic_kernel([0.5])
    with pytest.raises(TypeError, match=r"s must be .*got Tensor\[2\] int64"):
        cubic_kernel(torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="a must be a float"):
        cubic_kernel(torch.zeros(2), a="x")


# ---------------------------------------------------------------------------- bicubic_upsample
def test_bicubic_by_hand_align_corners():
    # 1 x 4 -> 1 x 7, align_corners: src = dst * 3 / 6 = dst / 2. Integer points read their
    # pixel; half-way points weigh the 4 neighbours (-3/32, 19/32, 19/32, -3/32), the index
    # clamped at the border: dst 1 reads (x0, x0, x1, x2) = (1, 1, 2, 4) -> 1.3125.
    x = torch.tensor([1.0, 2.0, 4.0, 8.0], dtype=F64).view(1, 1, 1, 4)
    expected = torch.tensor([1.0, 1.3125, 2.0, 2.71875, 4.0, 6.1875, 8.0], dtype=F64)
    out = bicubic_upsample(x, size=(1, 7), align_corners=True)
    assert_close(out.view(-1), expected, rtol=0, atol=1e-15)


def test_bicubic_by_hand_overshoot():
    # A step 0, 0, 1, 1 doubled (align_corners=False): the negative lobes of the kernel
    # undershoot before the step and overshoot after it (bilinear never leaves [0, 1]).
    # dst 3: src = 3.5 / 2 - 0.5 = 1.25, k = 1, t = 0.25: weights W(1.25), W(.25), W(.75),
    # W(1.75) on pixels 0, 1, 2, 3 = (0, 0, 1, 1): W(.75) + W(1.75).
    x = torch.tensor([0.0, 0.0, 1.0, 1.0], dtype=F64).view(1, 1, 1, 4)
    out = bicubic_upsample(x, size=(1, 8)).view(-1)
    a = -0.75
    w075 = (a + 2) * 0.75**3 - (a + 3) * 0.75**2 + 1
    w175 = a * 1.75**3 - 5 * a * 1.75**2 + 8 * a * 1.75 - 4 * a
    assert_close(out[3], torch.tensor(w075 + w175, dtype=F64))
    assert out.min() < 0 and out.max() > 1
    assert_close(out, out.flip(0).neg() + 1)  # the step is antisymmetric about its middle


def test_bicubic_constant_stays_constant():
    x = torch.full((2, 3, 5, 4), 2.5, dtype=F64)
    assert_close(bicubic_upsample(x, size=(13, 3)), torch.full((2, 3, 13, 3), 2.5, dtype=F64))


def _random_case(rng):
    H, W = rng.randint(1, 12), rng.randint(1, 12)
    align = rng.random() < 0.5
    if rng.random() < 0.5:
        return (H, W), dict(size=(rng.randint(1, 30), rng.randint(1, 30)), align_corners=align)
    while True:  # up and down; keep the output non-empty
        sf = (rng.uniform(0.3, 3.5), rng.uniform(0.3, 3.5))
        if int(H * sf[0]) >= 1 and int(W * sf[1]) >= 1:
            return (H, W), dict(scale_factor=sf, align_corners=align)


@pytest.mark.parametrize("dtype, atol", [(torch.float64, 1e-12), (torch.float32, 1e-4)])
def test_bicubic_matches_interpolate_random(dtype, atol, device):
    rng = random.Random(0)
    for _ in range(60):
        (H, W), kw = _random_case(rng)
        x = torch.randn(2, 3, H, W, dtype=dtype, device=device, requires_grad=True)
        ours = bicubic_upsample(x, **kw)
        ref = F.interpolate(x, mode="bicubic", **kw)
        assert ours.shape == ref.shape and ours.dtype == dtype
        assert_close(ours, ref, rtol=0, atol=atol,
                     msg=lambda m, kw=kw, H=H, W=W: f"{H, W, kw}: {m}")
        g = torch.randn_like(ref)
        assert_close(torch.autograd.grad(ours, x, g)[0], torch.autograd.grad(ref, x, g)[0],
                     rtol=0, atol=atol * 10)


@pytest.mark.parametrize("align_corners", [False, True])
def test_bicubic_matches_interpolate_shapes(align_corners, device):
    # the lesson's cases: x2, x4, a 56 x 56 heatmap to a box, shrinking, 1-pixel axes
    cases = [((4, 4), dict(scale_factor=2)), ((5, 7), dict(scale_factor=(4, 2.5))),
             ((56, 56), dict(size=(93, 41))), ((9, 11), dict(size=(4, 3))),
             ((1, 6), dict(size=(3, 1))), ((7, 1), dict(size=(1, 5))),
             ((3, 5), dict(scale_factor=(1.2, 1.1)))]  # sizes kept (CUDA copies, CPU does not)
    for (H, W), kw in cases:
        x = torch.randn(1, 2, H, W, dtype=F64, device=device)
        ref = F.interpolate(x, mode="bicubic", align_corners=align_corners, **kw)
        assert_close(bicubic_upsample(x, align_corners=align_corners, **kw), ref,
                     rtol=0, atol=1e-12)


def test_bicubic_gradcheck():
    x = torch.randn(1, 2, 4, 5, dtype=F64, requires_grad=True)
    assert gradcheck(lambda t: bicubic_upsample(t, size=(7, 3)), (x,))
    assert gradcheck(lambda t: bicubic_upsample(t, scale_factor=1.7, align_corners=True), (x,))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_bicubic_reduced_precision(dtype, device):
    rng = random.Random(1)
    for _ in range(20):
        (H, W), kw = _random_case(rng)
        x = torch.randn(2, 3, H, W, device=device).to(dtype)
        ours = bicubic_upsample(x, **kw)
        assert ours.dtype == dtype
        # coordinates, weights and sums in float32, rounded once: torch's float32 result,
        # rounded to the dtype (within one rounding step of it)
        ref32 = F.interpolate(x.float(), mode="bicubic", **kw)
        eps = torch.finfo(dtype).eps
        assert_close(ours.float(), ref32, rtol=eps, atol=eps)
        ref = F.interpolate(x, mode="bicubic", **kw)  # torch in the dtype itself
        assert_close(ours.float(), ref.float(), rtol=4 * eps, atol=4 * eps)


def test_bicubic_reduced_precision_far_coordinates():
    # a 1 x 600 row upsampled to 1 x 1500: in bfloat16 the column 300 is not a number, so
    # coordinates in the input's dtype would read the wrong pixels; ours stay float32
    x = torch.linspace(0, 1, 600).view(1, 1, 1, 600)
    ours = bicubic_upsample(x.bfloat16(), size=(1, 1500)).float()
    ref = F.interpolate(x.bfloat16().float(), size=(1, 1500), mode="bicubic")
    assert_close(ours, ref, rtol=2**-8, atol=2**-8)


def test_bicubic_bad_inputs():
    x = torch.randn(1, 1, 3, 3)
    with pytest.raises(TypeError, match=r"x must be a floating-point Tensor\[N, C, H, W\]"):
        bicubic_upsample(x.long(), size=4)
    with pytest.raises(TypeError, match="x must be .*got list"):
        bicubic_upsample([1.0], size=4)
    with pytest.raises(ValueError, match=r"x must be Tensor\[N, C, H, W\].*got Tensor\[3, 3\]"):
        bicubic_upsample(x[0, 0], size=4)
    with pytest.raises(ValueError, match=r"x must have H, W >= 1, got Tensor\[1, 1, 0, 3\]"):
        bicubic_upsample(torch.zeros(1, 1, 0, 3), size=4)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor, got both"):
        bicubic_upsample(x, size=4, scale_factor=2)
    with pytest.raises(ValueError, match="exactly one of size and scale_factor, got neither"):
        bicubic_upsample(x)
    with pytest.raises(ValueError, match="size must be positive"):
        bicubic_upsample(x, size=(0, 4))
    with pytest.raises(TypeError, match="size must be an int or a pair of ints"):
        bicubic_upsample(x, size=2.5)
    with pytest.raises(ValueError, match="scale_factor must be positive"):
        bicubic_upsample(x, scale_factor=-1.0)
    with pytest.raises(ValueError, match="gives an empty output"):
        bicubic_upsample(x, scale_factor=0.2)
    with pytest.raises(TypeError, match="align_corners must be a bool"):
        bicubic_upsample(x, size=4, align_corners=1)


def test_bicubic_meta_device_shapes():
    x = torch.empty(2, 3, 5, 7, device="meta")
    for kw in (dict(size=(9, 4)), dict(scale_factor=2.5), dict(scale_factor=(0.5, 3))):
        ref = F.interpolate(torch.zeros(2, 3, 5, 7), mode="bicubic", **kw)
        out = bicubic_upsample(x, **kw)
        assert out.device.type == "meta" and out.shape == ref.shape
