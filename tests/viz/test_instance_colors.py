"""instance_colors: one colour per instance in its category's hue (panoptic_colors' shades)."""

import math

import pytest
import torch
from torch.testing import assert_close

from coursekit.viz import CATEGORY_COLORS, panoptic_colors
from coursekit.viz.overlay import instance_colors


def test_hand_computed():
    colors = torch.tensor([[0.2, 0.4, 0.6], [1.0, 0.5, 0.0]], dtype=torch.float64)
    out = instance_colors(torch.tensor([1, 0, 1, 1]), colors)
    frac = lambda k: (k * (math.sqrt(5) - 1) / 2) % 1.0  # noqa: E731
    s1 = -(0.15 + 0.5 * frac(1))  # the 2nd instance of a category: darker, about -0.459
    s2 = 0.15 + 0.5 * frac(2)  # the 3rd: lighter, about +0.268
    expected = torch.tensor([
        [1.0, 0.5, 0.0],  # first category-1 instance: the category colour itself
        [0.2, 0.4, 0.6],  # first category-0 instance
        [1.0 * (1 + s1), 0.5 * (1 + s1), 0.0],  # towards black
        [1.0, 0.5 + s2 * 0.5, s2],  # towards white: c + s (1 - c)
    ], dtype=torch.float64)
    assert_close(out, expected)
    assert out.dtype == torch.float64


def test_equals_panoptic_colors_of_one_pixel_segments():
    # the second, obvious way: paint instance i as segment i + 1 of a 1 x N panoptic map
    g = torch.Generator().manual_seed(0)
    for n in (1, 5, 23):
        labels = torch.randint(0, len(CATEGORY_COLORS), (n,), generator=g)
        ids = torch.arange(1, n + 1)[None, :]  # (1, N)
        category_of = {i + 1: int(c) for i, c in enumerate(labels)}
        reference = panoptic_colors(ids, category_of,
                                    thing_categories=range(len(CATEGORY_COLORS)))  # (3, 1, N)
        assert_close(instance_colors(labels), reference[:, 0, :].T)


def test_float64_reference_and_empty():
    labels = torch.tensor([4, 4, 4, 7, 4])
    assert_close(instance_colors(labels, CATEGORY_COLORS.double()),
                 instance_colors(labels).double())
    assert instance_colors(torch.zeros(0, dtype=torch.long)).shape == (0, 3)


@pytest.mark.parametrize("device", ["cpu"] + (["cuda"] if torch.cuda.is_available() else []))
def test_device_follows_labels(device):
    # reference: the hand formula (first instance: the colour; second: c (1 + s_1))
    out = instance_colors(torch.tensor([5, 5], device=device))
    assert out.device.type == device
    s1 = -(0.15 + 0.5 * ((math.sqrt(5) - 1) / 2 % 1.0))
    assert_close(out.cpu(), torch.stack([CATEGORY_COLORS[5], CATEGORY_COLORS[5] * (1 + s1)]))


@pytest.mark.parametrize("args, error, match", [
    ((torch.zeros(2, 2, dtype=torch.long),), ValueError,
     r"labels must be an integer Tensor\[N\] of category ids, got Tensor\[2, 2\] int64"),
    ((torch.zeros(3),), TypeError,
     r"labels must be an integer Tensor\[N\] of category ids \(int64, .*got Tensor\[3\] float32"),
    (([1, 2],), TypeError, "labels must be an integer Tensor.*got list"),
    ((torch.tensor([1, 9]),), ValueError,
     r"labels must be category ids in \[0, 8\) \(rows of category_colors\), got 9"),
    ((torch.tensor([0]), torch.zeros(4)), ValueError,
     r"category_colors must be Tensor\[K, 3\], got Tensor\[4\] float32"),
    ((torch.tensor([0]), torch.zeros(4, 3, dtype=torch.uint8)), TypeError,
     r"category_colors must be a float Tensor\[K, 3\] in \[0, 1\]"),
])
def test_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        instance_colors(*args)
