"""Longest-side resizing and prompt scaling against segment-anything's ResizeLongestSide."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from segment_anything.utils.transforms import ResizeLongestSide
from torch.testing import assert_close

from coursekit.sam.transforms import (
    apply_boxes,
    apply_coords,
    preprocess_shape,
    resize_longest_side,
)


def test_preprocess_shape_hand_computed():
    assert preprocess_shape(100, 200, 128) == (64, 128)
    assert preprocess_shape(3, 5, 128) == (77, 128)  # 3 * 25.6 = 76.8 -> 77 (half up)
    assert preprocess_shape(64, 64, 128) == (128, 128)


def test_preprocess_shape_matches_reference():
    rng = np.random.default_rng(0)
    for h, w, s in rng.integers(1, 700, size=(300, 3)):
        h, w, s = int(h), int(w), int(s)
        assert preprocess_shape(h, w, s) == ResizeLongestSide.get_preprocess_shape(h, w, s)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_coords_and_boxes_match_reference(dtype):
    t = ResizeLongestSide(256)
    coords = torch.rand(3, 5, 2, dtype=torch.float64) * 300
    boxes = torch.rand(4, 4, dtype=torch.float64) * 300
    for size in [(300, 200), (120, 256), (256, 256)]:
        # float32 coordinates of a few hundred pixels: 1 ulp is 3e-5, so a relative tolerance
        tol = dict(rtol=2e-7, atol=1e-5) if dtype == torch.float32 else dict(rtol=0, atol=1e-12)
        out = apply_coords(coords.to(dtype), size, 256)
        assert out.dtype == dtype
        assert_close(out, torch.from_numpy(t.apply_coords(coords.numpy(), size)).to(dtype),
                     **tol)
        assert_close(apply_boxes(boxes.to(dtype), size, 256),
                     torch.from_numpy(t.apply_boxes(boxes.numpy(), size)).to(dtype), **tol)


def test_coords_hand_computed():
    # 100 x 200 image, long side 128: scale 0.64 on both axes
    out = apply_coords(torch.tensor([[50.0, 25.0]]), (100, 200), 128)
    assert_close(out, torch.tensor([[32.0, 16.0]]))


def test_resize_longest_side():
    image = torch.rand(1, 3, 100, 150, dtype=torch.float64)
    out = resize_longest_side(image, 256)
    assert out.shape == (1, 3, 171, 256)  # 100 * 256 / 150 = 170.67 -> 171
    assert_close(out, F.interpolate(image, size=(171, 256), mode="bilinear",
                                    align_corners=False), rtol=0, atol=1e-12)
    same = torch.rand(1, 3, 256, 64)
    assert resize_longest_side(same, 256) is same  # nothing to do


def test_gradcheck():
    coords = torch.rand(2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda c: apply_coords(c, (10, 20), 40), (coords,))
    image = torch.rand(1, 1, 3, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: resize_longest_side(x, 6), (image,))


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"coords must be Tensor\[..., 2\]"):
        apply_coords(torch.zeros(3, 3), (10, 10), 16)
    with pytest.raises(TypeError, match="coords must be a floating-point"):
        apply_coords(torch.zeros(3, 2, dtype=torch.long), (10, 10), 16)
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[B, 4\]"):
        apply_boxes(torch.zeros(3, 2), (10, 10), 16)
    with pytest.raises(ValueError, match="original_size must be positive"):
        apply_coords(torch.zeros(3, 2), (0, 10), 16)
    with pytest.raises(ValueError, match="long_side_length must be positive"):
        preprocess_shape(10, 10, 0)
    with pytest.raises(ValueError, match=r"image must be Tensor\[B, C, H, W\]"):
        resize_longest_side(torch.zeros(3, 10, 10), 16)
