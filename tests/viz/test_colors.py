"""Tests for coursekit/viz/colors.py: hsv_to_rgb, palette, label_colors, CATEGORY_COLORS."""

import matplotlib.colors
import pytest
import torch
from torch.testing import assert_close

from coursekit.viz import CATEGORY_COLORS, hsv_to_rgb, label_colors, palette


def test_hsv_to_rgb_hand_computed():
    hsv = torch.tensor(
        [
            [0.0, 1.0, 1.0],  # red
            [1 / 6, 1.0, 1.0],  # yellow
            [1 / 3, 1.0, 1.0],  # green
            [2 / 3, 1.0, 1.0],  # blue
            [0.0, 0.0, 0.5],  # grey
            [0.5, 0.5, 0.8],  # cyan at half saturation: (v(1-s), v, v)
        ],
        dtype=torch.float64,
    )
    expected = torch.tensor(
        [[1, 0, 0], [1, 1, 0], [0, 1, 0], [0, 0, 1], [0.5, 0.5, 0.5], [0.4, 0.8, 0.8]],
        dtype=torch.float64,
    )
    assert_close(hsv_to_rgb(hsv), expected)


@pytest.mark.parametrize("shape", [(7, 3), (4, 5, 3), (3,)])
def test_hsv_to_rgb_matches_matplotlib(shape):
    hsv = torch.rand(shape, dtype=torch.float64)
    expected = torch.from_numpy(matplotlib.colors.hsv_to_rgb(hsv.numpy()))
    assert_close(hsv_to_rgb(hsv), expected)


def test_palette_hand_computed_first_colours():
    # k = 0: hue 0, s 0.85, v 0.95 -> (v, v(1-s), v(1-s)); k = 1: hue 0.618..., s 0.6, v 0.8
    expected0 = torch.tensor([0.95, 0.95 * 0.15, 0.95 * 0.15])
    expected1 = torch.from_numpy(
        matplotlib.colors.hsv_to_rgb([0.618033988749895, 0.6, 0.8])
    ).float()
    colours = palette(2)
    assert_close(colours[0], expected0)
    assert_close(colours[1], expected1)


def test_palette_deterministic_distinct_in_range():
    colours = palette(24)
    assert colours.shape == (24, 3) and colours.dtype == torch.float32
    assert torch.equal(colours, palette(24))
    assert torch.equal(palette(5), colours[:5])  # a prefix does not change with n
    assert colours.min() >= 0 and colours.max() <= 1
    dist = torch.cdist(colours, colours) + 10 * torch.eye(24)
    assert dist.min() > 0.05  # no two colours alike
    assert not torch.equal(palette(4, seed=1), palette(4, seed=0))
    assert palette(0).shape == (0, 3)


def test_category_colors_are_distinct_and_fit_their_names():
    assert CATEGORY_COLORS.shape == (8, 3)
    assert CATEGORY_COLORS.min() >= 0 and CATEGORY_COLORS.max() <= 1
    dist = torch.cdist(CATEGORY_COLORS, CATEGORY_COLORS) + 10 * torch.eye(8)
    assert dist.min() > 0.25
    sky, grass, water, wall = CATEGORY_COLORS[:4]
    assert sky[2] > sky[0] and water[2] > water[0] and water[2] > water[1]  # blues
    assert grass[1] > grass[0] and grass[1] > grass[2]  # green
    assert wall.max() - wall.min() < 0.2 and wall[0] >= wall[2]  # greyish, a little brown


def test_label_colors_hand_computed():
    labels = torch.tensor([[0, 1], [255, 2]])
    colors = torch.tensor([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6], [0.7, 0.8, 0.9]])
    out = label_colors(labels, 3, colors=colors)
    expected = torch.tensor(
        [
            [[0.1, 0.4], [0.0, 0.7]],  # red channel
            [[0.2, 0.5], [0.0, 0.8]],  # green
            [[0.3, 0.6], [0.0, 0.9]],  # blue
        ]
    )
    assert_close(out, expected)


@pytest.mark.parametrize("shape", [(5, 7), (16, 3), (1, 1)])
def test_label_colors_matches_per_pixel_lookup(shape):
    labels = torch.randint(0, 8, shape)
    labels[torch.rand(shape) < 0.2] = 255
    out = label_colors(labels, 8)
    for i in range(shape[0]):
        for j in range(shape[1]):
            c = int(labels[i, j])
            expected = torch.zeros(3) if c == 255 else CATEGORY_COLORS[c]
            assert_close(out[:, i, j], expected)
    # more than 8 classes: the palette
    big = torch.randint(0, 12, shape)
    assert_close(label_colors(big, 12), palette(12)[big].permute(2, 0, 1))


def test_label_colors_device(device):
    labels = torch.randint(0, 8, (6, 5))
    out = label_colors(labels.to(device), 8)
    assert out.device.type == device.type
    assert_close(out.cpu(), label_colors(labels, 8))
    assert palette(3, device=device).device.type == device.type


def test_bad_inputs():
    with pytest.raises(ValueError, match=r"labels must be Tensor\[H, W\].*Tensor\[1, 2, 2\]"):
        label_colors(torch.zeros(1, 2, 2, dtype=torch.long), 3)
    with pytest.raises(TypeError, match="labels must be an integer tensor"):
        label_colors(torch.zeros(2, 2), 3)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*got 5"):
        label_colors(torch.tensor([[0, 5]]), 3)
    with pytest.raises(ValueError, match="num_classes must be a positive int"):
        label_colors(torch.tensor([[0]]), 0)
    with pytest.raises(ValueError, match=r"colors must be Tensor\[3, 3\]"):
        label_colors(torch.tensor([[0]]), 3, colors=torch.rand(2, 3))
    with pytest.raises(ValueError, match=r"hsv must be Tensor\[\.\.\., 3\]"):
        hsv_to_rgb(torch.rand(4, 2))
    with pytest.raises(ValueError, match="n must be a non-negative int"):
        palette(-1)
