"""MaskHead: RoI features -> C × 28 × 28 from convs, a 2× transposed conv and a 1 × 1 conv."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor

from coursekit.instance import MaskHead
from coursekit.upsampling import conv_transpose2d


def test_one_mask_per_class():
    # class c's 28 x 28 mask comes from row c of the last 1 x 1 conv alone: changing that row
    # changes channel c and no other
    head = MaskHead(8, 4, dim=6, num_convs=1).double()
    x = torch.randn(2, 8, 14, 14, dtype=torch.float64)
    before = head(x)
    with torch.no_grad():
        head.predictor[2].weight[2] += 1.0
        head.predictor[2].bias[2] += 1.0
    after = head(x)
    assert before.shape == (2, 4, 28, 28)
    changed = (after != before).flatten(2).any(-1)  # (R, C)
    assert changed[:, 2].all() and not changed[:, [0, 1, 3]].any()


@pytest.mark.parametrize("num_convs, dim", [(0, 8), (1, 16), (3, 32), (4, 8)])
def test_shapes(num_convs, dim):
    head = MaskHead(64, 5, dim=dim, num_convs=num_convs)
    assert head(torch.randn(3, 64, 14, 14)).shape == (3, 5, 28, 28)  # C x 28 x 28 per RoI
    assert head(torch.randn(0, 64, 14, 14)).shape == (0, 5, 28, 28)
    assert head(torch.randn(2, 64, 7, 7)).shape == (2, 5, 14, 14)  # always 2x the RoI size


def test_hand_computed_tiny_head():
    # no convs, 1 channel: deconv with weight 1 copies each input pixel to a 2 x 2 block, then
    # ReLU, then the 1 x 1 conv scales class c by (c + 1) and adds bias -c
    head = MaskHead(1, 2, dim=1, num_convs=0).double()
    with torch.no_grad():
        head.predictor[0].weight.fill_(1.0)
        head.predictor[0].bias.zero_()
        head.predictor[2].weight.copy_(torch.tensor([1.0, 2.0]).view(2, 1, 1, 1))
        head.predictor[2].bias.copy_(torch.tensor([0.0, -1.0]))
    x = torch.tensor([[[[1.0, -2.0], [3.0, 0.5]]]], dtype=torch.float64)
    relu_up = torch.tensor([[1.0, 1, 0, 0], [1, 1, 0, 0], [3, 3, 0.5, 0.5], [3, 3, 0.5, 0.5]],
                           dtype=torch.float64)
    out = head(x)
    assert_close(out[0, 0], relu_up)
    assert_close(out[0, 1], 2 * relu_up - 1)


def torchvision_head(head):
    """torchvision's MaskRCNNHeads + MaskRCNNPredictor holding ``head``'s weights (float64)."""
    convs = [m for m in head.convs if isinstance(m, torch.nn.Conv2d)]
    width = convs[0].out_channels if convs else head.in_channels
    tv_convs = MaskRCNNHeads(head.in_channels, [c.out_channels for c in convs], 1).double()
    tv_pred = MaskRCNNPredictor(width, head.predictor[0].out_channels, head.num_classes).double()
    with torch.no_grad():
        for tv_block, conv in zip(tv_convs, convs, strict=True):
            tv_block[0].weight.copy_(conv.weight)
            tv_block[0].bias.copy_(conv.bias)
        tv_pred.conv5_mask.load_state_dict(head.predictor[0].state_dict())
        tv_pred.mask_fcn_logits.load_state_dict(head.predictor[2].state_dict())
    return lambda x: tv_pred(tv_convs(x))


def test_same_as_the_lecture_pieces_and_torchvision_layout():
    """The head is: convs + ReLU, our conv_transpose2d (lesson 02), ReLU, 1 × 1 conv — same as
    torchvision's MaskRCNNHeads + MaskRCNNPredictor given the same weights."""
    head = MaskHead(6, 4, dim=5, num_convs=2).double()
    x = torch.randn(3, 6, 14, 14, dtype=torch.float64)
    h = x
    for conv in (head.convs[0], head.convs[2]):
        h = F.relu(F.conv2d(h, conv.weight, conv.bias, padding=1))
    deconv, last = head.predictor[0], head.predictor[2]
    h = F.relu(conv_transpose2d(h, deconv.weight, deconv.bias, stride=2))
    assert_close(head(x), F.conv2d(h, last.weight, last.bias))
    assert_close(head(x), torchvision_head(head)(x))


def test_gradcheck():
    head = MaskHead(2, 3, dim=2, num_convs=1).double()
    x = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(head, (x,))


def test_bad_input():
    expected = r"x must be Tensor\[R, 64, S, S\] \(RoI features\), got Tensor"
    with pytest.raises(ValueError, match=expected + r"\[3, 32, 14, 14\]"):
        MaskHead(64, 5)(torch.randn(3, 32, 14, 14))
    with pytest.raises(ValueError, match=expected + r"\[64, 14, 14\]"):
        MaskHead(64, 5)(torch.randn(64, 14, 14))
    with pytest.raises(ValueError, match="num_classes must be >= 2, got 1"):
        MaskHead(64, 1)
    with pytest.raises(ValueError, match="dim must be positive, got 0"):
        MaskHead(64, 5, dim=0)
    with pytest.raises(TypeError, match="num_convs must be an int, got 2.0"):
        MaskHead(64, 5, num_convs=2.0)


def test_device(device):
    # ours in float32 on the device; torchvision's heads with the same weights in float64 on CPU
    head = MaskHead(8, 3, dim=4)
    x = torch.randn(2, 8, 14, 14)
    reference = torchvision_head(head)(x.double())
    out = head.to(device)(x.to(device))
    assert out.device.type == device.type
    assert_close(out.cpu().double(), reference, atol=1e-4, rtol=1e-4)
