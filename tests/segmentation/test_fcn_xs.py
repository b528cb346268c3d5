"""FCN-32s/16s/8s: fully connected -> convolution, bilinear-initialised upsampling, skips."""

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from coursekit.segmentation.fcn_xs import FCNxs, LearnedUpsample, bilinear_kernel, fc_to_conv


def test_bilinear_kernel_by_hand():
    # size 4 (factor 2): the 1-D line is (1 - |i - 1.5| / 2) = 1/4, 3/4, 3/4, 1/4
    line = torch.tensor([0.25, 0.75, 0.75, 0.25])
    torch.testing.assert_close(bilinear_kernel(4), line[:, None] * line[None, :])
    # size 3 (factor 2, odd): centre 1 -> 1/2, 1, 1/2
    line = torch.tensor([0.5, 1.0, 0.5])
    torch.testing.assert_close(bilinear_kernel(3), line[:, None] * line[None, :])
    assert bilinear_kernel(4, dtype=torch.float64).dtype == torch.float64


@pytest.mark.parametrize("factor", [2, 4, 8, 32])
def test_learned_upsample_starts_as_bilinear(factor):
    # away from the border, the bilinear-initialised transposed conv is F.interpolate(bilinear)
    torch.manual_seed(factor)
    x = torch.rand(2, 3, 5, 6, dtype=torch.float64)
    up = LearnedUpsample(3, factor).double()
    ours = up(x)
    ref = F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)
    assert ours.shape == ref.shape == (2, 3, 5 * factor, 6 * factor)
    m = factor  # one input cell of border
    torch.testing.assert_close(ours[..., m:-m, m:-m], ref[..., m:-m, m:-m])
    # and it is the reference transposed convolution with the same weight
    torch.testing.assert_close(
        ours, F.conv_transpose2d(x, up.weight, stride=factor, padding=factor // 2))


def test_learned_upsample_gradcheck():
    up = LearnedUpsample(2, 2).double()
    x = torch.rand(1, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(up, (x,))  # input gradient
    up.weight.requires_grad_(True)
    weight_grad = torch.autograd.grad(up(x.detach()).square().sum(), up.weight)[0]
    w = up.weight.detach().clone().requires_grad_(True)
    ref = F.conv_transpose2d(x.detach(), w, stride=2, padding=1).square().sum()
    torch.testing.assert_close(weight_grad, torch.autograd.grad(ref, w)[0])  # weight gradient


def test_fc_to_conv_same_numbers():
    torch.manual_seed(0)
    linear = nn.Linear(4 * 3 * 3, 5).double()
    conv = fc_to_conv(linear, in_channels=4, kernel_size=3)
    block = torch.rand(2, 4, 3, 3, dtype=torch.float64)
    torch.testing.assert_close(conv(block).flatten(1), linear(block.flatten(1)))
    # on a larger map: one classifier output per 3x3 window, each the linear layer's answer
    big = torch.rand(1, 4, 6, 7, dtype=torch.float64)
    out = conv(big)
    assert out.shape == (1, 5, 4, 5)
    window = big[:, :, 2:5, 1:4]
    torch.testing.assert_close(out[:, :, 2, 1], linear(window.flatten(1)))


def test_fc_to_conv_bad_input():
    with pytest.raises(TypeError, match="linear must be an nn.Linear"):
        fc_to_conv(nn.Conv2d(1, 1, 1), 1, 1)
    with pytest.raises(ValueError, match=r"in_features must be in_channels \* kh \* kw"):
        fc_to_conv(nn.Linear(10, 2), in_channels=4, kernel_size=3)
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair of ints, got 3.0"):
        fc_to_conv(nn.Linear(36, 2), in_channels=4, kernel_size=3.0)
    with pytest.raises(ValueError, match=r"kernel_size must be positive, got \(3, 0\)"):
        fc_to_conv(nn.Linear(36, 2), in_channels=4, kernel_size=(3, 0))
    # a pair gives a rectangular window: in_features = 4 * 2 * 3
    assert fc_to_conv(nn.Linear(24, 2), in_channels=4, kernel_size=(2, 3)).kernel_size == (2, 3)


@pytest.mark.parametrize("variant", ["32s", "16s", "8s"])
def test_shapes_and_skips_start_at_zero(variant):
    torch.manual_seed(0)
    model = FCNxs(variant=variant, width=4).eval()
    x = torch.rand(2, 3, 64, 96)
    assert model(x).shape == (2, 8, 64, 96)
    if variant != "32s":  # zero-initialised skip scores: at init the 16s/8s nets see no pool4/3
        assert model.score_pool4.weight.abs().sum() == 0
    coarse = FCNxs(variant="32s", width=4).eval()
    assert model.stride == int(variant[:-1]) and coarse.stride == 32


def test_bad_input_and_variant():
    with pytest.raises(ValueError, match="variant must be one of"):
        FCNxs(variant="4s")
    with pytest.raises(TypeError, match="variant must be a str"):
        FCNxs(variant=8)
    with pytest.raises(TypeError, match="width must be an int, got 4.0"):
        FCNxs(width=4.0)
    with pytest.raises(ValueError, match="divisible by 32"):
        FCNxs(width=4)(torch.rand(1, 3, 48, 64))


def test_overfit_one_batch():
    torch.manual_seed(0)
    model = FCNxs(variant="8s", width=8)
    x = torch.rand(2, 3, 32, 32)
    target = (x[:, 0] > 0.5).long()  # a pixel-level pattern only the skips can place
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(60):
        loss = F.cross_entropy(model(x), target)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first


def test_kernel_and_upsample_bad_input():
    with pytest.raises(ValueError, match="size must be positive"):
        bilinear_kernel(0)
    with pytest.raises(TypeError, match="size must be an int"):
        bilinear_kernel(2.0)
    with pytest.raises(ValueError, match="factor must be positive"):
        LearnedUpsample(3, 0)
    with pytest.raises(ValueError, match="channels must be positive"):
        LearnedUpsample(0, 2)
