"""The click-to-segment widget's callback, without a browser (coursekit/viz/sam_widget.py)."""

from types import SimpleNamespace

import matplotlib
import pytest
import torch

matplotlib.use("Agg")

from coursekit.data.shapesworld import render_scene  # noqa: E402
from coursekit.sam import SamPredictor, build_sam_tiny  # noqa: E402
from coursekit.viz.sam_widget import SamClicker, draw_sam_clicks, sam_click_widget  # noqa: E402


@pytest.fixture(scope="module")
def predictor():
    torch.manual_seed(0)
    model = build_sam_tiny(img_size=64, encoder_embed_dim=32, encoder_depth=2,
                           encoder_global_attn_indexes=(1,)).eval()
    return SamPredictor(model)


@pytest.fixture
def clicker(predictor):
    predictor.reset_image()
    return sam_click_widget(predictor, render_scene(0, size=64).image)


def _event(clicker, x, y, button=1, key=None, modifiers=(), dblclick=False):
    return SimpleNamespace(inaxes=clicker.ax, xdata=x, ydata=y, button=button, key=key,
                           modifiers=set(modifiers), dblclick=dblclick)


def test_click_adds_a_foreground_point_and_redraws(clicker, predictor):
    draws = clicker.draws
    state = clicker.on_press(_event(clicker, 20.0, 30.0))
    assert state["points"] == [(20.0, 30.0)] and state["labels"] == [1]
    assert len(state["scores"]) == 3  # one click: 3 masks, the most confident shown
    masks, scores, _ = predictor.predict(point_coords=[[20.0, 30.0]], point_labels=[1])
    assert torch.equal(clicker.mask, masks[scores.argmax()])
    assert state["area"] == int(masks[scores.argmax()].sum())
    assert clicker.draws == draws + 1
    assert state["status"].startswith("1 point (1 foreground)")
    assert clicker.widget is not None and clicker._label.value == state["status"]


def test_shift_click_adds_a_background_point(clicker, predictor):
    clicker.on_press(_event(clicker, 20.0, 30.0))
    logits = clicker.logits
    state = clicker.on_press(_event(clicker, 40.0, 10.0, modifiers=("shift",)))
    assert state["labels"] == [1, 0] and len(state["scores"]) == 1
    masks, _, _ = predictor.predict(point_coords=[[20.0, 30.0], [40.0, 10.0]],
                                    point_labels=[1, 0], mask_input=logits[None],
                                    multimask_output=False)
    assert torch.equal(clicker.mask, masks[0])
    assert clicker.on_press(_event(clicker, 5.0, 5.0, button=3))["labels"] == [1, 0, 0]
    assert clicker.on_press(_event(clicker, 5.0, 6.0, key="shift"))["labels"][-1] == 0
    assert "4 points (1 foreground)" in clicker.status


def test_double_click_resets_and_outside_clicks_are_ignored(clicker):
    clicker.on_press(_event(clicker, 20.0, 30.0))
    assert clicker.on_press(_event(clicker, 1.0, 1.0, dblclick=True))["points"] == []
    assert clicker.mask is None
    outside = SimpleNamespace(inaxes=None, xdata=None, ydata=None, button=1, key=None)
    assert clicker.on_press(outside) is None


def test_replay_equals_clicking(clicker, predictor):
    states = clicker.replay([(20.0, 30.0, 1), (40.0, 10.0, 0)])
    mask = clicker.mask.clone()
    again = sam_click_widget(predictor, clicker.image)
    again.click(20.0, 30.0)
    again.click(40.0, 10.0, background=True)
    assert torch.equal(again.mask, mask) and states[-1] == again.state()
    fig = draw_sam_clicks(clicker.image, mask, clicker.points, clicker.labels, title="x")
    assert len(fig.axes[0].lines) == 2  # the two clicks


def test_bad_inputs(clicker, predictor):
    with pytest.raises(ValueError, match="point_coords must lie inside the image"):
        clicker.click(100.0, 5.0)
    with pytest.raises(TypeError, match="x must be a number"):
        clicker.click("1", 5.0)
    with pytest.raises(ValueError, match=r"clicks must be \(x, y, label\) triples"):
        clicker.replay([(1.0, 2.0)])
    with pytest.raises(ValueError, match="label must be 1 .* or 0"):
        clicker.replay([(1.0, 2.0, 2)])
    with pytest.raises(TypeError, match="predictor must be a coursekit.sam.SamPredictor"):
        SamClicker(object(), clicker.image, clicker.figure)
