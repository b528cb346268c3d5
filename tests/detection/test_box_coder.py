"""encode_boxes / decode_boxes against torchvision's BoxCoder (float64)."""

import math

import pytest
import torch
from torch.testing import assert_close
from torchvision.models.detection._utils import BoxCoder

from coursekit.detection import decode_boxes, encode_boxes


def random_boxes(n, dtype=torch.float64):
    xy = torch.rand(n, 2, dtype=dtype) * 100
    return torch.cat([xy, xy + torch.rand(n, 2, dtype=dtype) * 50 + 1], dim=1)


def test_hand_computed_encode_and_decode():
    proposal = torch.tensor([[0.0, 0.0, 10.0, 10.0]])  # centre (5, 5), size 10 x 10
    target = torch.tensor([[5.0, 5.0, 15.0, 25.0]])  # centre (10, 15), size 10 x 20
    expected = torch.tensor([[0.5, 1.0, 0.0, math.log(2.0)]])
    assert_close(encode_boxes(target, proposal), expected)
    assert_close(encode_boxes(target, proposal, (10.0, 10.0, 5.0, 5.0)), expected * torch.tensor([10, 10, 5, 5]))
    assert_close(decode_boxes(expected, proposal), target)


@pytest.mark.parametrize("n", [0, 1, 17])
@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0), (2.0, 3.0, 0.5, 4.0)])
def test_match_torchvision_box_coder(n, weights):
    reference, proposals = random_boxes(n), random_boxes(n)
    coder = BoxCoder(weights)
    assert_close(encode_boxes(reference, proposals, weights), coder.encode_single(reference, proposals))
    codes = torch.randn(n, 4 * 3, dtype=torch.float64)  # 3 codes per box, e.g. one per class
    assert_close(decode_boxes(codes, proposals, weights), coder.decode_single(codes, proposals))


def test_decode_clamps_large_sizes_like_torchvision():
    boxes = random_boxes(4)
    codes = torch.tensor([[0.0, 0.0, 20.0, -3.0]], dtype=torch.float64).repeat(4, 1)
    out = decode_boxes(codes, boxes, bbox_xform_clip=2.0)
    assert_close(out, BoxCoder((1.0, 1.0, 1.0, 1.0), bbox_xform_clip=2.0).decode_single(codes, boxes))
    widths = boxes[:, 2] - boxes[:, 0]
    assert_close(out[:, 2] - out[:, 0], widths * math.exp(2.0))


def test_decode_casts_boxes_to_codes_dtype():
    boxes = random_boxes(5).float()
    codes = torch.randn(5, 4, dtype=torch.float64)
    out = decode_boxes(codes, boxes)
    assert out.dtype == torch.float64
    assert_close(out, BoxCoder((1.0, 1.0, 1.0, 1.0)).decode_single(codes, boxes))


def test_round_trip():
    reference, proposals = random_boxes(30), random_boxes(30)
    weights = (10.0, 10.0, 5.0, 5.0)
    assert_close(decode_boxes(encode_boxes(reference, proposals, weights), proposals, weights), reference)


def test_gradcheck():
    reference = random_boxes(3).requires_grad_()
    proposals = random_boxes(3).requires_grad_()
    codes = (0.1 * torch.randn(3, 4, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda r, p: encode_boxes(r, p, (10.0, 10.0, 5.0, 5.0)), (reference, proposals))
    assert torch.autograd.gradcheck(decode_boxes, (codes, proposals))


def test_bad_input():
    with pytest.raises(ValueError, match=r"proposals must be Tensor\[N, 4\].*got Tensor\[2, 3\]"):
        encode_boxes(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="reference_boxes and proposals must have the same N"):
        encode_boxes(torch.zeros(2, 4), torch.zeros(3, 4))
    with pytest.raises(ValueError, match=r"rel_codes must be Tensor\[N, 4 \* k\] with N = 2, got Tensor\[2, 5\]"):
        decode_boxes(torch.zeros(2, 5), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="weights must be a tuple of 4 floats"):
        encode_boxes(torch.zeros(2, 4), torch.zeros(2, 4), weights=(1.0, 1.0, 1.0))


def test_on_device(device):
    reference, proposals = random_boxes(6), random_boxes(6)
    codes = encode_boxes(reference.to(device), proposals.to(device), (10.0, 10.0, 5.0, 5.0))
    assert codes.device.type == device.type
    assert_close(codes.cpu(), BoxCoder((10.0, 10.0, 5.0, 5.0)).encode_single(reference, proposals))
    assert_close(decode_boxes(codes, proposals.to(device), (10.0, 10.0, 5.0, 5.0)).cpu(), reference)
