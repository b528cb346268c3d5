"""Tests for coursekit/viz/grid.py: image_grid (vs torchvision make_grid), show,
to_numpy_image."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from torch.testing import assert_close
from torchvision.utils import make_grid

from coursekit.viz import image_grid, show, to_numpy_image


def test_image_grid_hand_computed():
    a = torch.full((3, 1, 1), 0.2, dtype=torch.float64)
    b = torch.full((3, 1, 1), 0.7, dtype=torch.float64)
    c = torch.full((3, 1, 1), 0.4, dtype=torch.float64)
    grid = image_grid([a, b, c], nrow=2, padding=1, pad_value=1.0)
    # 2 columns, 2 rows of 1x1 images with 1 pixel of padding around each
    expected = torch.tensor(
        [
            [1.0, 1.0, 1.0, 1.0, 1.0],
            [1.0, 0.2, 1.0, 0.7, 1.0],
            [1.0, 1.0, 1.0, 1.0, 1.0],
            [1.0, 0.4, 1.0, 1.0, 1.0],
            [1.0, 1.0, 1.0, 1.0, 1.0],
        ],
        dtype=torch.float64,
    )
    assert_close(grid, expected.expand(3, 5, 5))


@pytest.mark.parametrize(
    "n,c,h,w,nrow,padding,pad_value",
    [
        (5, 3, 4, 6, 2, 2, 1.0),
        (8, 3, 3, 3, 8, 0, 0.0),
        (7, 1, 5, 2, 3, 1, 0.5),
        (3, 3, 6, 4, 10, 3, 0.25),
        (2, 3, 2, 2, 1, 2, 1.0),
    ],
)
def test_image_grid_matches_make_grid(n, c, h, w, nrow, padding, pad_value):
    images = torch.rand(n, c, h, w, dtype=torch.float64)
    expected = make_grid(images, nrow=nrow, padding=padding, pad_value=pad_value)
    assert_close(image_grid(images, nrow=nrow, padding=padding, pad_value=pad_value), expected)
    assert_close(
        image_grid(list(images), nrow=nrow, padding=padding, pad_value=pad_value), expected
    )


def test_image_grid_single_image_like_make_grid():
    image = torch.rand(1, 3, 4, 5, dtype=torch.float64)
    assert_close(image_grid(image, nrow=4), make_grid(image, nrow=4))
    assert_close(image_grid(image, nrow=4), image[0])


def test_image_grid_device(device):
    # reference: torchvision's make_grid on the same device
    images = torch.rand(4, 3, 5, 5, device=device)
    out = image_grid(images, nrow=3)
    assert out.device.type == device.type
    assert_close(out, make_grid(images, nrow=3, pad_value=1.0))  # our default pad is white


IMAGES = torch.rand(2, 3, 4, 4)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((IMAGES,), {"nrow": 0}, ValueError, "nrow must be positive, got 0"),
    ((IMAGES,), {"nrow": 2.0}, TypeError, "nrow must be an int, got 2.0"),
    ((IMAGES[0],), {"nrow": 2}, ValueError,
     r"images must be Tensor\[N, C, H, W\] with N >= 1 and C in \(1, 3\), "
     r"got Tensor\[3, 4, 4\] float32"),
    ((IMAGES[:, :2],), {"nrow": 2}, ValueError,
     r"images must be Tensor\[N, C, H, W\].*Tensor\[2, 2, 4, 4\]"),
    (([torch.rand(3, 4, 4), torch.rand(3, 5, 4)],), {"nrow": 2}, ValueError,
     r"list of Tensor\[C, H, W\] of one size"),
    (([],), {"nrow": 2}, ValueError, "images must be .*non-empty list.*got an empty list"),
    (("images",), {"nrow": 2}, TypeError, "images must be .*got str"),
    (([IMAGES[0], "x"],), {"nrow": 2}, TypeError, "images must be .*got list"),
    ((IMAGES,), {"nrow": 2, "padding": -1}, ValueError, "padding must be >= 0, got -1"),
    ((IMAGES,), {"pad_value": "white"}, TypeError, "pad_value must be a real number"),
])
def test_image_grid_bad_inputs(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        image_grid(*args, **kwargs)


def test_to_numpy_image():
    t = torch.tensor([[[0.5, 2.0]], [[0.1, -1.0]], [[0.0, 0.3]]],
                     dtype=torch.float64)  # (3, 1, 2)
    arr = to_numpy_image(t)
    assert arr.shape == (1, 2, 3) and arr.dtype == np.float32
    expected = [[[0.5, 0.1, 0.0], [1.0, 0.0, 0.3]]]  # clipped to [0, 1]
    np.testing.assert_allclose(arr, expected, rtol=1e-6)
    grey = to_numpy_image(torch.tensor([[0.25, 0.75]]))
    np.testing.assert_allclose(grey, [[[0.25] * 3, [0.75] * 3]])
    with pytest.raises(ValueError, match=r"t must be Tensor\[3, H, W\].*Tensor\[2, 4, 4\]"):
        to_numpy_image(torch.zeros(2, 4, 4))
    with pytest.raises(TypeError, match=r"t must be a Tensor\[3, H, W\] .*got ndarray"):
        to_numpy_image(np.zeros((4, 4, 3)))


def test_show_makes_titled_panels():
    images = [torch.rand(3, 8, 8), torch.rand(8, 8),
              np.random.default_rng(0).random((8, 8, 3))]
    fig = show(images, titles=["a", "b", "c"], ncols=2)
    try:
        assert isinstance(fig, Figure)
        axes = fig.axes
        assert len(axes) == 4  # 2 x 2, the last one empty
        assert [ax.get_title() for ax in axes[:3]] == ["a", "b", "c"]
        assert all(not ax.axison for ax in axes)
        assert len(axes[3].images) == 0 and all(len(ax.images) == 1 for ax in axes[:3])
        np.testing.assert_allclose(axes[0].images[0].get_array(), to_numpy_image(images[0]))
    finally:
        plt.close(fig)
    fig = show(torch.rand(3, 3, 4, 6))  # a batch: one row
    try:
        assert len(fig.axes) == 3
    finally:
        plt.close(fig)


def test_show_bad_inputs():
    with pytest.raises(ValueError, match=r"titles must have one entry per image \(2\), got 1"):
        show([torch.rand(3, 4, 4)] * 2, titles=["x"])
    with pytest.raises(TypeError, match="titles must be None or a list of str, got str"):
        show([torch.rand(3, 4, 4)] * 2, titles="ab")
    with pytest.raises(ValueError, match="ncols must be positive, got 0"):
        show([torch.rand(3, 4, 4)], ncols=0)
    with pytest.raises(ValueError, match="scale must be positive, got -1.0"):
        show([torch.rand(3, 4, 4)], scale=-1)
    with pytest.raises(ValueError, match="images must be a Tensor or a non-empty list"):
        show([])
    with pytest.raises(TypeError, match="images must be a Tensor or a non-empty list"):
        show(None)


def test_image_grid_gradcheck():
    images = torch.rand(3, 3, 2, 2, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: image_grid(x, nrow=2, padding=1), (images,))
