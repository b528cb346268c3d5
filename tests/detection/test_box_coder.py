"""encode_boxes / decode_boxes against torchvision's BoxCoder (float64)."""

import math

import pytest
import torch
from torch.testing import assert_close
from torchvision.models.detection._utils import BoxCoder

from coursekit.detection import decode_boxes, encode_boxes

FASTER_RCNN = (10.0, 10.0, 5.0, 5.0)


def random_boxes(n, dtype=torch.float64, size=100.0):
    xy = torch.rand(n, 2, dtype=dtype) * size
    return torch.cat([xy, xy + torch.rand(n, 2, dtype=dtype) * 50 + 1], dim=1)


def test_hand_computed_encode_and_decode():
    proposal = torch.tensor([[0.0, 0.0, 10.0, 10.0]])  # centre (5, 5), size 10 x 10
    target = torch.tensor([[5.0, 5.0, 15.0, 25.0]])  # centre (10, 15), size 10 x 20
    expected = torch.tensor([[0.5, 1.0, 0.0, math.log(2.0)]])
    assert_close(encode_boxes(target, proposal), expected)
    assert_close(encode_boxes(target, proposal, FASTER_RCNN),
                 expected * torch.tensor(FASTER_RCNN))
    assert_close(decode_boxes(expected, proposal), target)


@pytest.mark.parametrize("n", [0, 1, 17])
@pytest.mark.parametrize("weights", [(1.0, 1.0, 1.0, 1.0), FASTER_RCNN, (2.0, 3.0, 0.5, 4.0)])
def test_match_torchvision_box_coder(n, weights):
    reference, proposals = random_boxes(n), random_boxes(n)
    coder = BoxCoder(weights)
    assert_close(encode_boxes(reference, proposals, weights),
                 coder.encode_single(reference, proposals))
    codes = torch.randn(n, 4 * 3, dtype=torch.float64)  # 3 codes per box, e.g. one per class
    assert_close(decode_boxes(codes, proposals, weights), coder.decode_single(codes, proposals))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_matches_torchvision_in_float32(dtype):
    # Reference: BoxCoder in float32 on the same (half-precision) values, cast to dtype.
    # We compute in float32 and round once: rtol = eps(dtype) (fp16 9.8e-4, bf16 7.8e-3),
    # atol = 1e-5. Boxes up to 800 px: bf16 has 2-px steps there, centres must not be
    # taken in bf16.
    reference, proposals = random_boxes(50, size=800.0), random_boxes(50, size=800.0)
    reference, proposals = reference.to(dtype), proposals.to(dtype)
    coder = BoxCoder(FASTER_RCNN)
    tol = {"rtol": torch.finfo(dtype).eps, "atol": 1e-5}
    ours = encode_boxes(reference, proposals, FASTER_RCNN)
    assert ours.dtype == dtype
    theirs = coder.encode_single(reference.float(), proposals.float())
    assert_close(ours, theirs.to(dtype), **tol)
    codes = torch.randn(50, 8).to(dtype)
    decoded = decode_boxes(codes, proposals, FASTER_RCNN)
    assert decoded.dtype == dtype
    assert_close(decoded, coder.decode_single(codes.float(), proposals.float()).to(dtype), **tol)


def test_decode_clamps_large_sizes_like_torchvision():
    boxes = random_boxes(4)
    codes = torch.tensor([[0.0, 0.0, 20.0, -3.0]], dtype=torch.float64).repeat(4, 1)
    out = decode_boxes(codes, boxes, bbox_xform_clip=2.0)
    reference = BoxCoder((1.0, 1.0, 1.0, 1.0), bbox_xform_clip=2.0).decode_single(codes, boxes)
    assert_close(out, reference)
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
    codes = encode_boxes(reference, proposals, FASTER_RCNN)
    assert_close(decode_boxes(codes, proposals, FASTER_RCNN), reference)


def test_gradcheck():
    reference = random_boxes(3).requires_grad_()
    proposals = random_boxes(3).requires_grad_()
    codes = (0.1 * torch.randn(3, 4, dtype=torch.float64)).requires_grad_()
    assert torch.autograd.gradcheck(lambda r, p: encode_boxes(r, p, FASTER_RCNN),
                                    (reference, proposals))
    assert torch.autograd.gradcheck(decode_boxes, (codes, proposals))


def test_bad_input():
    with pytest.raises(ValueError, match=r"proposals must be Tensor\[N, 4\].*got Tensor\[2, 3\]"):
        encode_boxes(torch.zeros(2, 4), torch.zeros(2, 3))
    with pytest.raises(ValueError, match="reference_boxes and proposals must have the same N"):
        encode_boxes(torch.zeros(2, 4), torch.zeros(3, 4))
    with pytest.raises(TypeError, match=r"reference_boxes must be a floating-point Tensor\[N, 4\]"):
        encode_boxes(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4))
    with pytest.raises(ValueError, match=r"rel_codes must be Tensor\[N, 4 \* k\] with N = 2, "
                                         r"got Tensor\[2, 5\]"):
        decode_boxes(torch.zeros(2, 5), torch.zeros(2, 4))
    with pytest.raises(TypeError, match=r"rel_codes must be a floating-point Tensor\[N, 4 \* k\]"):
        decode_boxes(torch.zeros(2, 4, dtype=torch.long), torch.zeros(2, 4))
    with pytest.raises(TypeError, match="weights must be a tuple of 4 floats"):
        encode_boxes(torch.zeros(2, 4), torch.zeros(2, 4), weights=(1.0, 1.0, 1.0))
    with pytest.raises(ValueError, match="weights must be positive"):
        decode_boxes(torch.zeros(2, 4), torch.zeros(2, 4), weights=(1.0, 0.0, 1.0, 1.0))
    with pytest.raises(TypeError, match="bbox_xform_clip must be a number"):
        decode_boxes(torch.zeros(2, 4), torch.zeros(2, 4), bbox_xform_clip="4")


def test_on_device(device):
    reference, proposals = random_boxes(6).to(device), random_boxes(6).to(device)
    coder = BoxCoder(FASTER_RCNN)
    codes = encode_boxes(reference, proposals, FASTER_RCNN)
    assert codes.device.type == device.type
    assert_close(codes, coder.encode_single(reference, proposals))  # on the same device
    decoded = decode_boxes(codes, proposals, FASTER_RCNN)
    assert_close(decoded, coder.decode_single(codes, proposals))
    assert_close(decoded, reference)
