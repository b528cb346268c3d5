"""LayerNorm2d, MLPBlock, MLP and UpConv2d against segment-anything / torch."""

import math

import pytest
import torch
from segment_anything.modeling.common import LayerNorm2d as RefLayerNorm2d
from segment_anything.modeling.common import MLPBlock as RefMLPBlock
from segment_anything.modeling.mask_decoder import MLP as RefMLP
from torch import nn
from torch.testing import assert_close

from coursekit.sam import MLP, LayerNorm2d, MLPBlock, UpConv2d


def test_layer_norm_2d_hand_computed():
    ln = LayerNorm2d(num_channels=2, eps=0.0)
    x = torch.tensor([[[[1.0]], [[3.0]]]])  # two channels at one pixel: mean 2, std 1
    assert_close(ln(x), torch.tensor([[[[-1.0]], [[1.0]]]]))
    with torch.no_grad():
        ln.weight.copy_(torch.tensor([2.0, 3.0]))
        ln.bias.copy_(torch.tensor([0.5, -0.5]))
    assert_close(ln(x), torch.tensor([[[[-1.5]], [[2.5]]]]))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_layer_norm_2d_matches_reference(sa, dtype, device):
    ref = sa.randomize(RefLayerNorm2d(6)).to(device, dtype)
    ours = LayerNorm2d(num_channels=6).to(device, dtype)
    ours.load_state_dict(ref.state_dict())
    x = torch.randn(2, 6, 5, 7, dtype=dtype, device=device)
    assert_close(ours(x), ref(x), rtol=0, atol=1e-6 if dtype == torch.float32 else 1e-12)


def test_mlps_match_reference(sa):
    block = sa.randomize(RefMLPBlock(8, 16)).double()
    ours = MLPBlock(embedding_dim=8, mlp_dim=16).double()
    ours.load_state_dict(block.state_dict())
    x = torch.randn(3, 4, 8, dtype=torch.float64)
    assert_close(ours(x), block(x), rtol=0, atol=1e-12)
    mlp = sa.randomize(RefMLP(8, 12, 5, 3)).double()
    ours_mlp = MLP(input_dim=8, hidden_dim=12, output_dim=5, num_layers=3).double()
    ours_mlp.load_state_dict(mlp.state_dict())
    assert_close(ours_mlp(x), mlp(x), rtol=0, atol=1e-12)


def test_mlp_hand_computed():
    mlp = MLP(input_dim=1, hidden_dim=1, output_dim=1, num_layers=2)
    with torch.no_grad():
        mlp.layers[0].weight.fill_(-1.0)
        mlp.layers[0].bias.fill_(0.0)
        mlp.layers[1].weight.fill_(2.0)
        mlp.layers[1].bias.fill_(1.0)
    # relu(-x) * 2 + 1: the ReLU sits between the layers, not after the last one
    assert_close(mlp(torch.tensor([[3.0], [-3.0]])), torch.tensor([[1.0], [7.0]]))


def test_layers_gradcheck():
    x = torch.randn(1, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    ln = LayerNorm2d(num_channels=3).double()
    assert torch.autograd.gradcheck(ln, (x,))
    t = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(MLP(input_dim=4, hidden_dim=3, output_dim=2,
                                        num_layers=3).double(), (t,))


def test_up_conv_hand_computed():
    """One input pixel: the output is the filter times that pixel, plus the bias."""
    up = UpConv2d(in_channels=1, out_channels=1)
    with torch.no_grad():
        up.weight.copy_(torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]]))
        up.bias.fill_(0.5)
    x = torch.tensor([[[[2.0, -1.0]]]])  # two pixels, copies placed 2 apart, no overlap
    expected = torch.tensor([[[[2.5, 4.5, -0.5, -1.5], [6.5, 8.5, -2.5, -3.5]]]])
    assert_close(up(x), expected)


@pytest.mark.parametrize("k, s", [(2, 2), (3, 2), (2, 1)])
def test_up_conv_equals_conv_transpose2d(k, s, device):
    torch.manual_seed(3)
    ref = nn.ConvTranspose2d(6, 4, k, stride=s)
    torch.manual_seed(3)
    ours = UpConv2d(in_channels=6, out_channels=4, kernel_size=k, stride=s)
    # same initialisation, draw for draw, and the same state_dict keys
    assert_close(ours.weight, ref.weight, rtol=0, atol=0)
    assert_close(ours.bias, ref.bias, rtol=0, atol=0)
    ref, ours = ref.to(device, torch.float64), ours.to(device, torch.float64)
    x = torch.randn(2, 6, 5, 3, dtype=torch.float64, device=device, requires_grad=True)
    y_ref, y = ref(x), ours(x)
    assert_close(y, y_ref, rtol=0, atol=1e-12)
    g = torch.randn_like(y)
    grads_ref = torch.autograd.grad(y_ref, (x, ref.weight, ref.bias), g)
    grads = torch.autograd.grad(y, (x, ours.weight, ours.bias), g)
    for a, b in zip(grads, grads_ref, strict=True):
        assert_close(a, b, rtol=0, atol=1e-12)


def test_up_conv_init_bounds():
    up = UpConv2d(in_channels=64, out_channels=16)
    bound = 1 / math.sqrt(16 * 2 * 2)  # fan_in of a transposed conv: C_out * k * k
    assert up.bias.abs().max() <= bound
    assert up.weight.abs().max() <= bound  # kaiming_uniform(a=sqrt(5)) = 1/sqrt(fan_in)


def test_up_conv_gradcheck():
    up = UpConv2d(in_channels=2, out_channels=3).double()
    x = torch.randn(1, 2, 2, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(up, (x,))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"x must be Tensor\[B, 4, H, W\], got Tensor\[1, 3, 2"):
        UpConv2d(in_channels=4, out_channels=2)(torch.zeros(1, 3, 2, 2))
    with pytest.raises(TypeError, match="x must be"):
        UpConv2d(in_channels=4, out_channels=2)([1.0])
    with pytest.raises(ValueError, match="out_channels must be positive"):
        UpConv2d(in_channels=4, out_channels=0)
    with pytest.raises(TypeError, match="num_channels must be an int"):
        LayerNorm2d(num_channels=2.0)
    with pytest.raises(ValueError, match="num_layers must be positive"):
        MLP(input_dim=2, hidden_dim=2, output_dim=2, num_layers=0)
    with pytest.raises(TypeError):
        LayerNorm2d(4)  # keyword-only
