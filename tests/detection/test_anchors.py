"""Anchors against torchvision's AnchorGenerator (run on a dummy ImageList)."""

import pytest
import torch
from torch.testing import assert_close
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from coursekit.detection import anchors_for_image, generate_anchors, grid_anchors

# Anchors are rounded to integers, so there is no gradient to check.


def reference_anchors(sizes, ratios, image_size, feature_sizes, dtype=torch.float32,
                      device="cpu"):
    """torchvision's AnchorGenerator on a dummy batch of two images: (anchors, generator)."""
    generator = AnchorGenerator(sizes, ratios)
    images = ImageList(torch.zeros(2, 3, *image_size, dtype=dtype, device=device),
                       [image_size, image_size])
    features = [torch.zeros(2, 4, h, w, dtype=dtype, device=device) for h, w in feature_sizes]
    return generator(images, features), generator


def test_hand_computed_cell_anchors():
    # ratio h/w = 0.5: w = 32 sqrt(2) = 45.25, h = 32 / sqrt(2) = 22.63 -> half 22.63, 11.31
    expected = torch.tensor([[-23.0, -11.0, 23.0, 11.0], [-16.0, -16.0, 16.0, 16.0],
                             [-11.0, -23.0, 11.0, 23.0]])
    assert_close(generate_anchors((32,), (0.5, 1.0, 2.0)), expected)


def test_hand_computed_grid():
    cell = torch.tensor([[-1.0, -2.0, 1.0, 2.0]])
    out = grid_anchors((2, 3), (4, 5), cell)  # centres x in {0, 5, 10}, y in {0, 4}, row by row
    centres = [(0, 0), (5, 0), (10, 0), (0, 4), (5, 4), (10, 4)]
    expected = torch.tensor([[x - 1.0, y - 2.0, x + 1.0, y + 2.0] for x, y in centres])
    assert_close(out, expected)


LEVELS = pytest.mark.parametrize("sizes, ratios", [
    (((32,),), ((1.0,),)),
    (((32, 64, 128),), ((0.5, 1.0, 2.0),)),
    (((16, 24), (48,), (96, 100)), ((0.5, 1.0), (1.0, 3.0, 0.25), (2.0,))),
])


@LEVELS
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_match_torchvision_anchor_generator(sizes, ratios, dtype):
    image_size = (64, 96)
    # the last level: a stride that does not divide the image
    feature_sizes = [(16, 24), (8, 12), (3, 5)][: len(sizes)]
    expected, generator = reference_anchors(sizes, ratios, image_size, feature_sizes, dtype)
    assert len(expected) == 2
    ours = anchors_for_image(image_size, feature_sizes, sizes, ratios, dtype=dtype)
    assert ours.dtype == dtype
    assert_close(ours, expected[0])
    for level, (s, r) in enumerate(zip(sizes, ratios, strict=True)):
        assert_close(generate_anchors(s, r, dtype=dtype), generator.cell_anchors[level].to(dtype))
    strides = [(image_size[0] // h, image_size[1] // w) for h, w in feature_sizes]
    per_level = generator.grid_anchors([list(f) for f in feature_sizes], strides)
    for (s, r), size, stride, theirs in zip(zip(sizes, ratios, strict=True), feature_sizes,
                                            strides, per_level, strict=True):
        assert_close(grid_anchors(size, stride, generate_anchors(s, r, dtype=dtype)), theirs)


@LEVELS
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_is_float32_rounded_once(sizes, ratios, dtype):
    # Reference: torchvision's AnchorGenerator in float32, cast to dtype; tolerance 0.
    # Large images: in bfloat16 a centre x = 300 + 23 is not representable, and adding in
    # bfloat16 (torchvision's half path) would round the shift and the sum separately.
    image_size = (640, 960)
    feature_sizes = [(160, 240), (80, 120), (30, 50)][: len(sizes)]
    expected, generator = reference_anchors(sizes, ratios, image_size, feature_sizes)
    ours = anchors_for_image(image_size, feature_sizes, sizes, ratios, dtype=dtype)
    assert ours.dtype == dtype
    assert_close(ours, expected[0].to(dtype), rtol=0, atol=0)
    cell = generate_anchors(sizes[0], ratios[0], dtype=dtype)
    assert_close(cell, generator.cell_anchors[0].to(dtype), rtol=0, atol=0)
    one_level = AnchorGenerator((sizes[0],), (ratios[0],))
    one_level.cell_anchors = [a.float() for a in one_level.cell_anchors]
    theirs = one_level.grid_anchors([list(feature_sizes[0])], [(4, 4)])[0]
    assert_close(grid_anchors(feature_sizes[0], (4, 4), cell), theirs.to(dtype), rtol=0, atol=0)


def test_bad_input():
    with pytest.raises(TypeError, match="scales must be a non-empty sequence"):
        generate_anchors((), (1.0,))
    with pytest.raises(TypeError, match="scales must be a non-empty sequence of numbers"):
        generate_anchors(("32",), (1.0,))
    with pytest.raises(ValueError, match="aspect_ratios must be positive"):
        generate_anchors((32,), (0.0, 1.0))
    with pytest.raises(TypeError, match="dtype must be a floating-point torch.dtype"):
        generate_anchors((32,), (1.0,), dtype=torch.int64)
    with pytest.raises(TypeError, match="feature_size must be an int or a pair of ints"):
        grid_anchors((2.5, 3), (4, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError, match="stride must be >= 0"):
        grid_anchors((2, 3), (-4, 4), torch.zeros(1, 4))
    with pytest.raises(ValueError, match=r"cell_anchors must be Tensor\[A, 4\], got Tensor\[4\]"):
        grid_anchors((2, 3), (4, 4), torch.zeros(4))
    with pytest.raises(TypeError, match=r"cell_anchors must be Tensor\[A, 4\], got list"):
        grid_anchors((2, 3), (4, 4), [[0, 0, 1, 1]])
    with pytest.raises(ValueError, match="one entry per level"):
        anchors_for_image((32, 32), [(4, 4)], ((16,),), ((1.0,), (2.0,)))
    with pytest.raises(ValueError, match=r"feature_sizes\[0\] must be positive"):
        anchors_for_image((32, 32), [(0, 4)], ((16,),), ((1.0,),))


def test_on_device(device):
    sizes, ratios = ((32, 64),), ((0.5, 1.0),)
    expected, _ = reference_anchors(sizes, ratios, (24, 32), [(3, 4)], device=device)
    out = anchors_for_image((24, 32), [(3, 4)], sizes, ratios, device=device)
    assert out.device.type == device.type
    assert_close(out, expected[0])  # torchvision's generator on the same device
    cell = generate_anchors(sizes[0], ratios[0], device=device)
    assert_close(grid_anchors((3, 4), (8, 8), cell), expected[0])
