"""Tests for coursekit/viz/colors.py: hsv_to_rgb, rgb_to_hsv, palette, label_colors,
CATEGORY_COLORS (against the colours ShapesWorld draws)."""

import matplotlib.colors
import numpy as np
import pytest
import torch
from torch.testing import assert_close

from coursekit.data import CATEGORIES, render_batch
from coursekit.data import layout as lay
from coursekit.viz import CATEGORY_COLORS, hsv_to_rgb, label_colors, palette
from coursekit.viz.colors import rgb_to_hsv


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
    sky, grass, water, wall, circle, square, triangle, person = CATEGORY_COLORS
    assert sky[2] > sky[0] and water[2] > water[0] and water[2] > water[1]  # blues
    assert grass[1] > grass[0] and grass[1] > grass[2]  # green
    assert wall.max() - wall.min() < 0.2 and wall[0] >= wall[2]  # greyish, a little brown
    # the colours ShapesWorld draws the shapes in: red circles, violet squares, amber
    # triangles (the square and triangle colours were once swapped in the label maps)
    assert circle[0] > 0.8 and circle[1] < 0.3 and circle[2] < 0.3
    assert square[2] > square[0] > square[1]  # violet: blue > red > green
    assert triangle[0] > triangle[1] > triangle[2]  # amber: red > green > blue
    assert person[0] > person[1] > person[2] > 0.3  # skin


@pytest.fixture(scope="module")
def drawn():
    """ShapesWorld's own pixels: 160 scenes at 64 x 64 with persons and crowds."""
    return render_batch(range(500, 660), 64, p_person=0.5, p_crowd=0.3)


def test_category_colors_match_the_drawn_colours(drawn):
    # The mean colour of each class's pixels is nearer its own palette colour than any other
    # class's. Persons wear clothes of every colour; their palette colour is their skin, so
    # they are compared by their skin pixels (head and lower arms).
    pixels = drawn.image.permute(1, 0, 2, 3)  # (3, B, H, W)
    skin = (drawn.parts == 1) | (drawn.parts == 5) | (drawn.parts == 6)
    for c in CATEGORIES:
        where = skin if c["name"] == "person" else drawn.semantic == c["id"]
        assert int(where.sum()) > 1000, c["name"]
        mean = pixels[:, where].double().mean(1)  # (3,)
        dist = (CATEGORY_COLORS.double() - mean).norm(dim=1)  # (8,)
        assert int(dist.argmin()) == c["id"], (c["name"], mean.tolist(), dist.tolist())
        if c["name"] == "person":  # four skin tones: the palette's is one of them
            own = (pixels[:, where] - CATEGORY_COLORS[7][:, None]).abs().amax(0) < 0.01
            assert own.float().mean() > 0.1
        else:  # close to the typical drawn colour (the per-channel median) itself
            median = pixels[:, where].double().median(1).values
            assert float((CATEGORY_COLORS[c["id"]].double() - median).norm()) < 0.1, c["name"]


def test_category_colors_label_a_scene_like_the_scene(drawn):
    # Colour each pixel of the picture by its nearest palette colour: a shape's pixels come
    # out as its own class far more often than as any other (the rims are darker, so not all).
    pixels = drawn.image.permute(0, 2, 3, 1).reshape(-1, 3)  # (P, 3)
    nearest = torch.cdist(pixels, CATEGORY_COLORS).argmin(1).view(drawn.semantic.shape)
    for name in ("circle", "square", "triangle", "grass", "sky"):
        cid = next(c["id"] for c in CATEGORIES if c["name"] == name)
        votes = torch.bincount(nearest[drawn.semantic == cid], minlength=8)
        assert int(votes.argmax()) == cid and votes[cid] > 0.6 * votes.sum(), (name, votes)
    # the fill colours of the renderer are the palette's shape colours
    for name, rgb in zip(("circle", "square", "triangle"), lay.SHAPE_RGB, strict=True):
        cid = next(c["id"] for c in CATEGORIES if c["name"] == name)
        assert_close(CATEGORY_COLORS[cid], torch.tensor(rgb), rtol=0, atol=0.005)


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
    # references on each device: a plain table lookup (torch indexing), matplotlib's hsv_to_rgb
    labels = torch.randint(0, 8, (6, 5))
    labels[0, 0] = 255
    out = label_colors(labels.to(device), 8)
    assert out.device.type == device.type
    table = torch.cat([CATEGORY_COLORS, torch.zeros(1, 3)]).to(device)  # row 8: ignored, black
    assert_close(out, table[torch.where(labels == 255, 8, labels).to(device)].permute(2, 0, 1))
    hsv = torch.rand(4, 3, dtype=torch.float64)
    rgb = hsv_to_rgb(hsv.to(device))
    assert rgb.device.type == device.type
    assert_close(rgb.cpu(), torch.from_numpy(matplotlib.colors.hsv_to_rgb(hsv.numpy())))
    colours = palette(3, device=device)
    assert colours.device.type == device.type
    k = np.arange(3)  # the documented formula, through matplotlib
    hsv = np.stack([(k * 0.618033988749895) % 1.0, np.where(k % 2 == 0, 0.85, 0.6),
                    np.array([0.95, 0.8, 0.65])[k % 3]], -1)
    assert_close(colours.cpu(), torch.from_numpy(matplotlib.colors.hsv_to_rgb(hsv)).float())


def test_rgb_to_hsv_hand_computed():
    rgb = torch.tensor(
        [
            [1.0, 0.0, 0.0],  # red: hue 0
            [1.0, 1.0, 0.0],  # yellow: 1/6
            [0.0, 0.5, 0.5],  # dark cyan: 1/2, s 1, v 0.5
            [0.4, 0.8, 0.8],  # cyan at half saturation
            [0.5, 0.5, 0.5],  # grey: hue 0, s 0
            [0.0, 0.0, 0.0],  # black: s 0
            [0.8, 0.2, 0.4],  # red largest, b > g: (g - b) / d = -1/3 -> hue 1 - 1/18
        ],
        dtype=torch.float64,
    )
    expected = torch.tensor(
        [[0, 1, 1], [1 / 6, 1, 1], [0.5, 1, 0.5], [0.5, 0.5, 0.8], [0, 0, 0.5], [0, 0, 0],
         [1 - 1 / 18, 0.75, 0.8]],
        dtype=torch.float64,
    )
    assert_close(rgb_to_hsv(rgb), expected)


@pytest.mark.parametrize("shape", [(7, 3), (4, 5, 3), (3,)])
def test_rgb_to_hsv_matches_matplotlib_and_inverts_hsv_to_rgb(shape):
    rgb = torch.rand(shape, dtype=torch.float64)
    expected = torch.from_numpy(matplotlib.colors.rgb_to_hsv(rgb.numpy()))
    assert_close(rgb_to_hsv(rgb), expected)
    assert_close(hsv_to_rgb(rgb_to_hsv(rgb)), rgb)
    ties = torch.tensor([[0.3, 0.3, 0.1], [0.2, 0.6, 0.6], [0.7, 0.1, 0.7]], dtype=torch.float64)
    assert_close(rgb_to_hsv(ties), torch.from_numpy(matplotlib.colors.rgb_to_hsv(ties.numpy())))


def test_rgb_to_hsv_device(device):
    # reference: matplotlib on the CPU copy
    rgb = torch.rand(5, 3)
    out = rgb_to_hsv(rgb.to(device))
    assert out.device.type == device.type and out.dtype == torch.float32
    expected = torch.from_numpy(matplotlib.colors.rgb_to_hsv(rgb.double().numpy())).float()
    assert_close(out.cpu(), expected)


def test_rgb_to_hsv_gradcheck():
    # away from the kinks: distinct channels, each a different one largest
    rgb = torch.tensor([[0.8, 0.3, 0.1], [0.2, 0.7, 0.4], [0.3, 0.1, 0.9]], dtype=torch.float64)
    assert torch.autograd.gradcheck(rgb_to_hsv, (rgb.requires_grad_(),))


@pytest.mark.parametrize("fn, args, kwargs, error, match", [
    (rgb_to_hsv, (torch.rand(4, 2),), {}, ValueError,
     r"rgb must be Tensor\[\.\.\., 3\], got Tensor\[4, 2\] float32"),
    (rgb_to_hsv, (torch.ones(4, 3, dtype=torch.uint8),), {}, TypeError,
     r"rgb must be a float Tensor\[\.\.\., 3\] .*got Tensor\[4, 3\] uint8"),
    (rgb_to_hsv, ([1.0, 0.0, 0.0],), {}, TypeError, "rgb must be a float Tensor.*got list"),
    (label_colors, (torch.zeros(1, 2, 2, dtype=torch.long), 3), {}, ValueError,
     r"labels must be Tensor\[H, W\] of class ids, got Tensor\[1, 2, 2\] int64"),
    (label_colors, (torch.zeros(2, 2), 3), {}, TypeError,
     r"labels must be an integer tensor \(int64, int32, uint8, \.\.\.\), "
     r"got Tensor\[2, 2\] float32"),
    (label_colors, ([[0, 1]], 3), {}, TypeError, "labels must be an integer Tensor.*got list"),
    (label_colors, (torch.tensor([[0, 5]]), 3), {}, ValueError,
     r"labels must lie in \[0, 3\) or equal ignore_index=255, got 5"),
    (label_colors, (torch.tensor([[0]]), 0), {}, ValueError, "num_classes must be positive, got 0"),
    (label_colors, (torch.tensor([[0]]), 3.0), {}, TypeError,
     "num_classes must be an int, got 3.0"),
    (label_colors, (torch.tensor([[0]]), 3), {"ignore_index": None}, TypeError,
     "ignore_index must be an int, got None"),
    (label_colors, (torch.tensor([[0]]), 3), {"colors": torch.rand(2, 3)}, ValueError,
     r"colors must be Tensor\[3, 3\] \(one colour per object\) or Tensor\[3\], "
     r"got Tensor\[2, 3\]"),
    (label_colors, (torch.tensor([[0]]), 3), {"colors": torch.ones(3, 3, dtype=torch.uint8)},
     TypeError, r"colors must be a float Tensor\[N, 3\] .*got Tensor\[3, 3\] uint8"),
    (label_colors, (torch.tensor([[0]]), 3), {"colors": "red"}, TypeError,
     r"colors must be None, Tensor\[N, 3\] or a list of \(r, g, b\), got str"),
    (hsv_to_rgb, (torch.rand(4, 2),), {}, ValueError,
     r"hsv must be Tensor\[\.\.\., 3\], got Tensor\[4, 2\] float32"),
    (hsv_to_rgb, (torch.ones(4, 3, dtype=torch.long),), {}, TypeError,
     r"hsv must be a float Tensor\[\.\.\., 3\] .*got Tensor\[4, 3\] int64"),
    (hsv_to_rgb, ([0.0, 1.0, 1.0],), {}, TypeError, "hsv must be a float Tensor.*got list"),
    (palette, (-1,), {}, ValueError, "n must be >= 0, got -1"),
    (palette, (2.0,), {}, TypeError, "n must be an int, got 2.0"),
    (palette, (2, 0.5), {}, TypeError, "seed must be an int, got 0.5"),
])
def test_bad_inputs(fn, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(*args, **kwargs)


def test_hsv_to_rgb_gradcheck():
    # away from the kinks of the ramp (k = 0, 1, 3, 4, 6): hues off the multiples of 1/6
    hsv = torch.tensor([[0.05, 0.7, 0.8], [0.4, 0.3, 0.9], [0.9, 0.5, 0.6]], dtype=torch.float64)
    assert torch.autograd.gradcheck(hsv_to_rgb, (hsv.requires_grad_(),))
