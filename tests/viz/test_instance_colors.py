"""instance_colors: one colour per instance in its category's hue (panoptic_colors' variants)."""

import colorsys

import matplotlib.colors
import pytest
import torch
from torch.testing import assert_close

from coursekit.viz import CATEGORY_COLORS, panoptic_colors
from coursekit.viz.overlay import INSTANCE_VARIANTS, instance_colors


def _variant(colour, k):
    """The documented formula, through Python's colorsys, in float64."""
    dh, m, s = INSTANCE_VARIANTS[k % len(INSTANCE_VARIANTS)]
    if k % len(INSTANCE_VARIANTS) == 0:
        return list(colour)
    h, sat, v = colorsys.rgb_to_hsv(*colour)
    c = colorsys.hsv_to_rgb((h + dh) % 1.0, min(1.0, m * sat), v)
    return [x + s * (1 - x) if s > 0 else x * (1 + s) for x in c]


def test_hand_computed():
    colors = torch.tensor([[0.2, 0.4, 0.6], [1.0, 0.5, 0.0]], dtype=torch.float64)
    out = instance_colors(torch.tensor([1, 0, 1, 1]), colors)
    # (1, 0.5, 0) is hue 1/12 (30 degrees), saturation 1, value 1.
    # 2nd instance of category 1, (dh, m, s) = (0, 1.6, -0.6): same hue, saturation
    # min(1, 1.6) = 1, towards black: x (1 - 0.6) = (0.4, 0.2, 0).
    # 3rd, (0.06, 0.5, 0.4): hue 1/12 + 0.06 (6 h = 0.86), saturation 0.5:
    # (1, 1 - 0.5 (1 - 0.86), 1 - 0.5) = (1, 0.93, 0.5); towards white: x + 0.4 (1 - x).
    assert INSTANCE_VARIANTS[1] == (0.0, 1.6, -0.60)
    assert INSTANCE_VARIANTS[2] == (0.06, 0.5, 0.40)
    expected = torch.tensor([
        [1.0, 0.5, 0.0],  # first category-1 instance: the category colour itself
        [0.2, 0.4, 0.6],  # first category-0 instance
        [0.4, 0.2, 0.0],
        [1.0, 0.958, 0.7],
    ], dtype=torch.float64)
    assert_close(out, expected)
    assert out.dtype == torch.float64


def test_matches_the_formula_in_float64():
    g = torch.Generator().manual_seed(0)
    colors = torch.rand(5, 3, generator=g, dtype=torch.float64)
    labels = torch.randint(0, 5, (40,), generator=g)
    out = instance_colors(labels, colors)
    seen = [0] * 5
    for i, c in enumerate(labels.tolist()):
        assert_close(out[i], torch.tensor(_variant(colors[c].tolist(), seen[c]),
                                          dtype=torch.float64))
        seen[c] += 1


def test_equals_panoptic_colors_of_one_pixel_segments():
    # the second, obvious way: paint instance i as segment i + 1 of a 1 x N panoptic map
    g = torch.Generator().manual_seed(0)
    for n in (1, 5, 23, 40):
        labels = torch.randint(0, len(CATEGORY_COLORS), (n,), generator=g)
        ids = torch.arange(1, n + 1)[None, :]  # (1, N)
        category_of = {i + 1: int(c) for i, c in enumerate(labels)}
        reference = panoptic_colors(ids, category_of,
                                    thing_categories=range(len(CATEGORY_COLORS)))  # (3, 1, N)
        assert_close(instance_colors(labels), reference[:, 0, :].T)


@pytest.mark.parametrize("category", [4, 5, 6, 7])
def test_twelve_instances_of_one_class_are_well_apart(category):
    # Lessons 05 and 06 show up to 12 things of one class: every two of them at least 0.2
    # apart in RGB (the old brightness-only shades came as close as 0.02), all in [0, 1],
    # and each keeps the class's hue within 0.06 (22 degrees).
    colours = instance_colors(torch.full((12,), category)).double()  # (12, 3)
    assert colours.min() >= 0 and colours.max() <= 1
    dist = torch.cdist(colours, colours) + 10 * torch.eye(12, dtype=torch.float64)
    assert dist.min() >= 0.2, float(dist.min())
    hue = torch.from_numpy(matplotlib.colors.rgb_to_hsv(colours.numpy()))[:, 0]
    base = float(matplotlib.colors.rgb_to_hsv(CATEGORY_COLORS[category].double().numpy())[0])
    turn = (hue - base + 0.5).remainder(1.0) - 0.5
    assert turn.abs().max() <= 0.06 + 1e-6
    # none too close to white, the usual colour of segment borders
    assert (colours - 1).norm(dim=1).min() > 0.2
    # the 13th instance repeats the first colour: the table has 12 rows
    more = instance_colors(torch.full((13,), category))
    assert_close(more[12], more[0])


def test_float64_reference_and_empty():
    labels = torch.tensor([4, 4, 4, 7, 4])
    assert_close(instance_colors(labels, CATEGORY_COLORS.double()),
                 instance_colors(labels).double())
    assert instance_colors(torch.zeros(0, dtype=torch.long)).shape == (0, 3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_reduced_precision_colours(dtype):
    # worked in float32, returned in the colours' dtype: one rounding off the float64 result
    labels = torch.tensor([5, 5, 5, 6])
    out = instance_colors(labels, CATEGORY_COLORS.to(dtype))
    assert out.dtype == dtype
    exact = instance_colors(labels, CATEGORY_COLORS.to(dtype).double())
    assert_close(out.double(), exact.to(dtype).double(), rtol=0, atol=0)


def test_device_follows_labels(device):
    # reference: the documented formula through colorsys, in float64 on the CPU
    out = instance_colors(torch.tensor([5, 5], device=device))
    assert out.device.type == device.type
    expected = torch.tensor([_variant(CATEGORY_COLORS[5].tolist(), k) for k in (0, 1)])
    assert_close(out.cpu(), expected.float())


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
