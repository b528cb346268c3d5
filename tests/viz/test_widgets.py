"""Tests for coursekit/viz/widgets.py: the pure drawing functions and the widgets' callbacks
(no browser)."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import nn
from torch.testing import assert_close

from coursekit.segmentation import PatchClassifier, receptive_field_of
from coursekit.viz.widgets import (
    conv_stack,
    draw_number_grids,
    draw_receptive_field,
    draw_transposed_conv_step,
    draw_transposed_conv_steps,
    receptive_field_widget,
    spatial_prefix,
    transposed_conv_widget,
)

X = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
ONES = torch.ones(3, 3)
# the lecture's 2x2 input, a 3x3 filter of ones, stride 2: copies at (0,0), (0,2), (2,0), (2,2),
# summed
HAND_FULL = torch.tensor([[1, 1, 3, 2, 2],
                          [1, 1, 3, 2, 2],
                          [4, 4, 10, 6, 6],
                          [3, 3, 7, 4, 4],
                          [3, 3, 7, 4, 4]], dtype=torch.float64)  # fmt: skip


def _image(ax) -> np.ndarray:
    return np.asarray(ax.images[0].get_array())


def _red_box(ax) -> Rectangle:
    return next(p for p in ax.patches if isinstance(p, Rectangle))


# ---------------------------------------------------------------- receptive field


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_conv_stack_keeps_size_and_has_rf_1_plus_2L(depth):
    net = conv_stack(depth)
    assert net(torch.zeros(1, 1, 9, 11)).shape == (1, 1, 9, 11)
    assert receptive_field_of(net)["size"] == 1 + 2 * depth


def test_spatial_prefix_truncates_a_chain():
    model = PatchClassifier(num_layers=4)  # 4 3x3 convs + a 1x1 conv
    assert sum(isinstance(m, nn.Conv2d) for m in spatial_prefix(model)) == 5
    prefix = spatial_prefix(model, 2)
    assert [type(m) for m in prefix] == [nn.Conv2d, nn.ReLU, nn.Conv2d, nn.ReLU]
    assert receptive_field_of(prefix)["size"] == 5


def test_draw_receptive_field_hand_case():
    # 2 layers of 3x3 (padding 1) on 16x16: output pixel (5, 7) sees rows 3..7, columns 5..9
    fig = draw_receptive_field(2, 5, 7, input_size=16)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    shown = _image(fig.axes[0])
    lit = np.abs(shown - 0.15).sum(-1) > 1e-6  # base is grey 0.15 without an image
    expected = np.zeros((16, 16), dtype=bool)
    expected[3:8, 5:10] = True
    np.testing.assert_array_equal(lit, expected)
    box = _red_box(fig.axes[0])  # the dashed square: side 5 centred on pixel (5, 7)
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (4.5, 2.5, 5, 5)
    assert "receptive field 5×5" in fig.axes[0].get_title()
    assert "pixel (5, 7)" in fig.axes[1].get_title()


def test_draw_receptive_field_of_a_strided_model_aligns_the_output():
    # size 1 + 2 + 2 * 2 = 8, jump 2
    model = nn.Sequential(nn.Conv2d(1, 1, 3), nn.MaxPool2d(2), nn.Conv2d(1, 1, 3))
    fig = draw_receptive_field(model, 1, 2, input_size=12)
    geometry = receptive_field_of(model)
    assert (geometry["size"], geometry["jump"], geometry["start"]) == (8, 2, 4.0)
    assert "output 3×3" in fig.axes[1].get_title()  # 12 -> 10 -> 5 -> 3
    # output pixel 0 is centred over input position start - 0.5 = 3.5, each output pixel is
    # 2 input pixels wide
    assert fig.axes[1].images[0].get_extent() == [2.5, 8.5, 8.5, 2.5]
    lit = np.abs(_image(fig.axes[0]) - 0.15).sum(-1) > 1e-6
    rows, cols = np.nonzero(lit)
    # 8x8 around (2 + 2*1, 4 + 2*2) + 3.5
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (2, 9, 4, 11)


def test_draw_receptive_field_with_an_image_and_a_prefix():
    image = torch.rand(3, 20, 20)
    fig = draw_receptive_field(PatchClassifier(num_layers=4), 0, 0, depth=3, image=image)
    assert "input 20×20: receptive field 7×7" in fig.axes[0].get_title()
    assert "output 14×14 after 3 layers" in fig.axes[1].get_title()


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((2, 16, 0), {"input_size": 16}, ValueError,
     r"\(out_y, out_x\) must lie in the 16x16 output, got \(16, 0\)"),
    ((2, 1.0, 0), {"input_size": 16}, TypeError,
     r"out_y must be an int \(an output pixel\), got 1.0"),
    (("deep", 0, 0), {}, TypeError, "model_or_depth must be an nn.Module or an int, got str"),
    ((2, 0, 0), {"depth": 0}, ValueError, "depth must be positive, got 0"),
    ((2, 0, 0), {"depth": 2.0}, TypeError, "depth must be an int, got 2.0"),
    ((2, 0, 0), {"input_size": (16, 0)}, ValueError, r"input_size must be positive, got \(16, 0\)"),
    ((2, 0, 0), {"input_size": "16"}, TypeError, "input_size must be an int or a pair of ints"),
    ((2, 0, 0), {"image": torch.rand(1, 8, 8)}, ValueError,
     r"image must be Tensor\[3, H, W\] or None, got Tensor\[1, 8, 8\] float32"),
    ((2, 0, 0), {"image": np.zeros((3, 8, 8))}, TypeError,
     r"image must be a float Tensor\[3, H, W\] or None, got ndarray"),
    ((nn.Sequential(nn.Conv2d(1, 1, 3)), 0, 0), {"depth": 2}, ValueError,
     r"depth must be an int in \[1, 1\]"),
    ((nn.Sequential(nn.Conv2d(1, 1, 3)), 0, 0), {"depth": "1"}, TypeError,
     r"depth must be an int in \[1, 1\] .*got '1'"),
])
def test_draw_receptive_field_bad_input(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        draw_receptive_field(*args, **kwargs)


def test_draw_receptive_field_depth_replaces_the_int():
    fig = draw_receptive_field(2, 8, 8, depth=3, input_size=16)
    assert "receptive field 7×7" in fig.axes[0].get_title()
    assert "after 3 layers" in fig.axes[1].get_title()


def test_draw_receptive_field_device(device):
    model = conv_stack(2).to(device)
    fig = draw_receptive_field(model, 4, 4, input_size=9)
    lit = np.abs(_image(fig.axes[0]) - 0.15).sum(-1) > 1e-6
    assert lit.sum() == 25


def test_receptive_field_widget_redraws_on_slider_change(capsys):
    pytest.importorskip("ipywidgets")
    widget = receptive_field_widget(3, input_size=16, max_depth=6)
    depth, out_y, out_x = widget.children[:3]
    assert widget.draws == 1 and widget.state == {"depth": 3, "out_y": 8, "out_x": 8}
    assert "receptive field 7×7" in widget.figure.axes[0].get_title()
    depth.value = 5
    assert widget.draws == 2 and widget.state["depth"] == 5
    assert "receptive field 11×11" in widget.figure.axes[0].get_title()
    out_x.value = 2
    assert widget.draws == 3 and widget.state == {"depth": 5, "out_y": 8, "out_x": 2}
    assert capsys.readouterr().out == ""  # nothing printed outside a notebook


def test_receptive_field_widget_shrinks_the_pixel_sliders_with_depth():
    pytest.importorskip("ipywidgets")
    widget = receptive_field_widget(PatchClassifier(num_layers=3), input_size=16)
    depth, out_y, out_x = widget.children[:3]
    assert depth.max == 4 and out_y.max == 9  # 16 - 7 + 1 = 10 output rows after 3 3x3 layers
    out_y.value = 9
    depth.value = 1  # 14 output rows
    assert out_y.max == 13 and widget.state == {"depth": 1, "out_y": 9, "out_x": 5}
    depth.value = 3
    assert out_y.max == 9 and widget.state["out_y"] == 9


def test_receptive_field_widget_bad_max_depth():
    pytest.importorskip("ipywidgets")
    with pytest.raises(ValueError, match="max_depth must be an int >= model_or_depth=4, got 2"):
        receptive_field_widget(4, max_depth=2)
    with pytest.raises(TypeError, match="max_depth must be an int >= model_or_depth=4, got 6.0"):
        receptive_field_widget(4, max_depth=6.0)


@pytest.mark.parametrize("fn, args, error, match", [
    (conv_stack, (0,), ValueError, "depth must be positive, got 0"),
    (conv_stack, (2, 4), ValueError, "kernel_size must be a positive odd int, got 4"),
    (conv_stack, (2, 3.0), TypeError, "kernel_size must be an int, got 3.0"),
    (spatial_prefix, ("net",), TypeError, "model must be an nn.Module, got str"),
    (spatial_prefix, (PatchClassifier(num_layers=2), 4), ValueError,
     r"depth must be an int in \[1, 3\]"),
])
def test_conv_stack_and_prefix_bad_input(fn, args, error, match):
    with pytest.raises(error, match=match):
        fn(*args)


# ---------------------------------------------------------------- transposed convolution


def test_transposed_conv_steps_hand_case():
    fig = draw_transposed_conv_steps(X, ONES, 2)
    assert len(fig.axes) == 8  # 2 rows x 4 input pixels
    # bottom right: the sum of all copies
    assert_close(torch.from_numpy(_image(fig.axes[7])), HAND_FULL)
    alone = np.zeros((5, 5))
    alone[2:5, 0:3] = 3.0  # copy 3: x[1, 0] = 3 times the filter, placed at (1 * 2, 0 * 2)
    np.testing.assert_array_equal(_image(fig.axes[2]), alone)
    box = _red_box(fig.axes[2])
    assert (box.get_x(), box.get_y(), box.get_width(), box.get_height()) == (-0.5, 1.5, 3, 3)


@pytest.mark.parametrize("stride, shape, kernel",
                         [(1, (3, 2), (2, 2)), (2, (2, 3), (3, 3)), (3, (2, 2), (2, 4))])
def test_transposed_conv_step_matches_torch(stride, shape, kernel):
    x = torch.randn(*shape, dtype=torch.float64)
    weight = torch.randn(*kernel, dtype=torch.float64)
    n = shape[0] * shape[1]
    last = draw_transposed_conv_step(x, weight, stride, n)
    expected = F.conv_transpose2d(x[None, None], weight[None, None], stride=stride)[0, 0]
    assert_close(torch.from_numpy(_image(last.axes[3])), expected)
    assert_close(torch.from_numpy(_image(last.axes[2])), x[-1, -1] * weight)  # the last copy


def test_transposed_conv_step_panels_and_titles():
    fig = draw_transposed_conv_step(X[None, None], ONES[None, None], 2, 3)
    assert len(fig.axes) == 4
    assert "pixel (1, 0)" in fig.axes[0].get_title() and "3 × filter" in fig.axes[2].get_title()
    partial = HAND_FULL.clone()
    partial[2:, 2:] -= 4.0  # without copy 4 (x[1, 1] = 4 at rows 2..4, columns 2..4)
    assert_close(torch.from_numpy(_image(fig.axes[3])), partial)


@pytest.mark.parametrize("args, error, match", [
    ((torch.ones(2, 2, 2), ONES, 2, 1), ValueError,
     r"x must be Tensor\[H, W\] or Tensor\[1, 1, H, W\] \(one channel\), "
     r"got Tensor\[2, 2, 2\] float32"),
    (([[1.0]], ONES, 2, 1), TypeError, r"x must be a real Tensor\[H, W\] .*got list"),
    ((X, torch.ones(2, 1, 3, 3), 2, 1), ValueError, r"weight must be Tensor\[kH, kW\]"),
    ((X, ONES, 0, 1), ValueError, "stride must be positive, got 0"),
    ((X, ONES, 2.0, 1), TypeError, "stride must be an int, got 2.0"),
    ((X, ONES, 2, 5), ValueError,
     r"step must be an int in \[1, 4\] \(one per input pixel\), got 5"),
    ((X, ONES, 2, 1.0), TypeError, r"step must be an int in \[1, 4\] .*got 1.0"),
])
def test_transposed_conv_bad_input(args, error, match):
    with pytest.raises(error, match=match):
        draw_transposed_conv_step(*args)


def test_transposed_conv_device(device):
    fig = draw_transposed_conv_step(X.to(device), ONES.to(device), 2, 4)
    assert_close(torch.from_numpy(_image(fig.axes[3])), HAND_FULL)


def test_transposed_conv_widget_redraws_on_slider_change():
    pytest.importorskip("ipywidgets")
    widget = transposed_conv_widget(X, ONES, 2)
    slider = widget.children[0]
    assert (slider.min, slider.max, slider.value) == (1, 4, 1)
    assert widget.draws == 1 and widget.state == {"step": 1}
    slider.value = 4
    assert widget.draws == 2 and widget.state == {"step": 4}
    assert_close(torch.from_numpy(_image(widget.figure.axes[3])), HAND_FULL)


def test_figures_show_themselves_as_png_without_pyplot():
    fig = draw_number_grids([X, 2 * X], ["x", "2x"], [(0, 0, 1, 2), None])
    assert fig._repr_png_()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [ax.get_title() for ax in fig.axes] == ["x", "2x"]
    np.testing.assert_array_equal(_image(fig.axes[1]), 2 * X.numpy())
    with pytest.raises(ValueError, match=r"titles must have one entry per grid \(2\), got 1"):
        draw_number_grids([X, X], ["x"])
    with pytest.raises(ValueError, match="grids must be a non-empty list"):
        draw_number_grids([])
    with pytest.raises(TypeError, match="grids must be a non-empty list of Tensor.*got Tensor"):
        draw_number_grids(X)
    with pytest.raises(TypeError, match="titles must be None or a list .*got str"):
        draw_number_grids([X, X], "xy")
