"""Tests for coursekit/viz/pose.py: skeleton colours, targets, decoding, OKS widget (no browser)."""

import math

import numpy as np
import pytest
import torch
from matplotlib.figure import Figure
from matplotlib.patches import Circle
from torch.testing import assert_close

from coursekit.pose import (
    COCO_FLIP_INDEX,
    COCO_KEYPOINT_NAMES,
    COCO_SIGMAS,
    COCO_SKELETON_0BASED,
    heatmaps_to_keypoints,
    keypoints_to_heatmap,
    oks,
)
from coursekit.viz.pose import (
    SIDE_COLORS,
    draw_flip,
    draw_heatmap_decoding,
    draw_heatmap_targets,
    draw_oks,
    draw_oks_falloff,
    draw_pose,
    draw_pose_gallery,
    draw_skeleton,
    keypoint_side,
    limb_side,
    oks_terms,
    oks_widget,
    show_image,
)

IMAGE = torch.rand(3, 48, 64, generator=torch.Generator().manual_seed(0))


def person(x0: float = 30.0, y0: float = 8.0) -> torch.Tensor:
    """17 keypoints on a vertical line, all visible except the right ankle (hidden)."""
    kp = torch.zeros(17, 3, dtype=torch.float64)
    kp[:, 0] = x0 + torch.tensor([0, 1, -1, 2, -2, 3, -3, 5, -5, 6, -6, 2, -2, 2, -2, 2, -2])
    kp[:, 1] = y0 + torch.arange(17, dtype=torch.float64) * 2
    kp[:, 2] = 2
    kp[16, 2] = 1
    return kp


def test_sides_by_hand():
    assert [keypoint_side(k) for k in range(3)] == ["centre", "left", "right"]
    assert keypoint_side(15) == "left" and keypoint_side(16) == "right"
    assert limb_side(15, 13) == "left"  # left ankle - left knee
    assert limb_side(5, 6) == "centre"  # the shoulders' line joins the sides
    for k in range(17):  # the flip index swaps the sides, the nose stays
        flipped = keypoint_side(COCO_FLIP_INDEX[k])
        assert flipped == {"left": "right", "right": "left", "centre": "centre"}[keypoint_side(k)]
    with pytest.raises(ValueError, match="k must be a keypoint index"):
        keypoint_side(17)


def test_draw_skeleton_draws_labelled_limbs_and_joints():
    fig = Figure()
    ax = fig.subplots()
    show_image(ax, IMAGE)
    assert ax.images[0].get_extent() == [0, 64, 48, 0]  # continuous coordinates
    kp = person()
    kp[0, 2] = 0  # the nose not labelled: its joint and the two limbs to it are missing
    draw_skeleton(ax, kp, names=True)
    limbs = [line for line in ax.lines if line.get_linestyle() == "-"]
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    expected = sum(1 for a, b in COCO_SKELETON_0BASED if a != 0 and b != 0)
    assert len(limbs) == expected and len(dots) == 16
    colours = {tuple(np.round(line.get_color(), 3)) for line in limbs}
    assert colours == {tuple(np.round(c, 3)) for c in SIDE_COLORS.values()}
    hollow = [d for d in dots if d.get_markerfacecolor() == "none"]
    assert len(hollow) == 1 and hollow[0].get_xdata()[0] == kp[16, 0]  # v = 1
    assert sorted(t.get_text() for t in ax.texts) == sorted(COCO_KEYPOINT_NAMES[1:])
    with pytest.raises(ValueError, match="keypoints must be"):
        draw_skeleton(ax, torch.zeros(16, 3))
    with pytest.raises(TypeError, match="keypoints must be a Tensor"):
        draw_skeleton(ax, [[0, 0, 2]] * 17)


def test_draw_pose_names_every_keypoint():
    fig = draw_pose(IMAGE, person(), torch.tensor([20.0, 8, 40, 42]), title="p")
    assert isinstance(fig, Figure)
    assert len(fig.axes[0].texts) == 17
    assert fig.legends  # the sides' legend


def test_heatmap_targets_figure_shows_the_hot_cells():
    kp = person()
    rois = torch.tensor([[20.0, 6, 44, 44], [28.0, 6, 36, 20]])
    fig = draw_heatmap_targets(IMAGE, kp, rois, heatmap_size=8)
    targets, valid = keypoints_to_heatmap(kp[None].expand(2, -1, -1), rois.double(), 8)
    assert torch.equal(fig.targets, targets) and torch.equal(fig.valid, valid)
    assert int(valid[1].sum()) < 17  # the small RoI misses the legs
    for r in range(2):
        grid = np.asarray(fig.axes[r + 1].images[0].get_array())
        lit = np.argwhere((grid != 0.12).any(-1))
        cells = {(int(t) // 8, int(t) % 8) for t, v in zip(targets[r], valid[r], strict=True)
                 if v}
        assert {tuple(c) for c in lit} == cells
    with pytest.raises(ValueError, match="rois must be Tensor"):
        draw_heatmap_targets(IMAGE, kp, torch.zeros(4))


def test_heatmap_decoding_is_heatmaps_to_keypoints():
    maps = torch.randn(56, 56, generator=torch.Generator().manual_seed(1))
    roi = torch.tensor([10.5, 4.0, 37.2, 41.9])
    fig = draw_heatmap_decoding(IMAGE, maps, roi, truth=torch.tensor([20.0, 20.0]))
    expected, _ = heatmaps_to_keypoints(maps[None, None], roi[None].double())
    assert_close(fig.keypoint, expected[0, 0])
    resized = np.asarray(fig.axes[1].images[0].get_array())  # axes: map, resize, image, bars
    assert resized.shape == (math.ceil(41.9 - 4.0), math.ceil(37.2 - 10.5))
    with pytest.raises(ValueError, match="heatmap must be a floating-point Tensor"):
        draw_heatmap_decoding(IMAGE, torch.zeros(1, 56, 56), roi)


def test_oks_terms_and_figure_match_oks():
    gt = person()
    dt = gt.clone()
    dt[9, 0] += 3.0  # left wrist 3 px off
    terms = oks_terms(gt, dt, 400.0)
    kappa = 2 * COCO_SIGMAS[9]
    assert_close(terms[9].item(), math.exp(-9 / (2 * 400 * kappa**2)))  # by hand
    assert bool((terms[:9] == 1).all()) and bool((terms[10:] == 1).all())
    fig = draw_oks(IMAGE, gt, 400.0, "left_wrist", 3.0, 0.0)
    value = oks(gt[None], dt[None], torch.tensor([400.0], dtype=torch.float64))[0, 0].item()
    assert_close(fig.oks, value)
    assert_close(fig.oks, terms.mean().item())
    heights = [bar.get_height() for bar in fig.axes[1].patches]
    assert_close(torch.tensor(heights, dtype=torch.float64), terms)
    circles = [p for p in fig.axes[0].patches if isinstance(p, Circle)]
    assert len(circles) == 17
    assert_close(circles[0].get_radius(), 2 * COCO_SIGMAS[0] * 20.0)  # kappa * s, s = 20


def test_oks_terms_skip_unlabelled():
    gt = person()
    gt[3, 2] = 0
    terms = oks_terms(gt, gt + 1.0, 900.0)
    assert math.isnan(terms[3]) and not bool(terms[[0, 4]].isnan().any())
    value = oks(gt[None], (gt + 1.0)[None], torch.tensor([900.0], dtype=torch.float64))
    assert_close(terms[~terms.isnan()].mean().item(), value[0, 0].item())


def test_oks_widget_callback_moves_the_keypoint():
    pytest.importorskip("ipywidgets")
    box = oks_widget(IMAGE, person(), 400.0, keypoint="left_eye", max_shift=5)
    assert box.draws == 1 and box.state == {"keypoint": 1, "dx": 0.0, "dy": 0.0}
    assert box.figure.oks == 1.0
    keypoint, dx, dy = box.children[:3]
    dx.value = 2.0
    first = box.figure.oks
    assert box.draws == 2 and box.state["dx"] == 2.0
    gt = person()
    moved = gt.clone()
    moved[1, 0] += 2.0
    area = torch.tensor([400.0], dtype=torch.float64)
    assert_close(first, oks(gt[None], moved[None], area)[0, 0].item())
    keypoint.value = 15  # the same 2 px on the left ankle cost far less than on the eye
    assert box.draws == 3 and box.figure.oks > first
    dy.value = -1.5
    moved = gt.clone()
    moved[15, 0] += 2.0
    moved[15, 1] -= 1.5
    assert_close(box.figure.oks, oks(gt[None], moved[None], area)[0, 0].item())
    with pytest.raises(ValueError, match="keypoint must be one of"):
        oks_widget(IMAGE, gt, 400.0, keypoint="left_toe")
    with pytest.raises(ValueError, match="max_shift must be a positive"):
        oks_widget(IMAGE, gt, 400.0, max_shift=0)


def test_draw_oks_bad_inputs():
    with pytest.raises(ValueError, match="area must be > 0"):
        draw_oks(IMAGE, person(), 0.0)
    with pytest.raises(ValueError, match="k must be a keypoint index"):
        draw_oks(IMAGE, person(), 100.0, keypoint=20)
    with pytest.raises(ValueError, match="gt_keypoints must be Tensor"):
        draw_oks(IMAGE, torch.zeros(2, 17, 3), 100.0)
    with pytest.raises(ValueError, match="image must be Tensor"):
        draw_oks(torch.zeros(48, 64), person(), 100.0)


def test_falloff_curves_cross_061_at_kappa_s():
    fig = draw_oks_falloff(400.0, ["left_eye", "left_ankle"], max_distance=10)
    ax = fig.axes[0]
    dots = [line for line in ax.lines if line.get_marker() == "o"]
    assert [d.get_xdata()[0] for d in dots] == pytest.approx(
        [2 * COCO_SIGMAS[1] * 20, 2 * COCO_SIGMAS[15] * 20])
    assert all(d.get_ydata()[0] == pytest.approx(math.exp(-0.5)) for d in dots)
    with pytest.raises(ValueError, match="area must be > 0"):
        draw_oks_falloff(-1.0)


def test_draw_flip_with_and_without_the_index():
    kp = person()
    fig = draw_flip(IMAGE, kp)
    W = IMAGE.shape[2]
    assert_close(fig.with_index[:, 0], W - kp[list(COCO_FLIP_INDEX), 0])
    assert_close(fig.without_index[:, 0], W - kp[:, 0])
    # facing the camera, the left wrist is right of the right wrist; only the index keeps it
    assert kp[9, 0] > kp[10, 0]
    assert fig.with_index[9, 0] > fig.with_index[10, 0]
    assert fig.without_index[9, 0] < fig.without_index[10, 0]


def test_pose_gallery_draws_persons_only():
    masks = torch.zeros(2, 48, 64, dtype=torch.bool)
    masks[0, 5:40, 25:35] = True
    masks[1, 10:20, 5:15] = True
    det = {"labels": torch.tensor([7, 4]), "masks": masks,
           "keypoints": torch.stack([person(), person(10.0)])}
    fig = draw_pose_gallery([IMAGE, IMAGE], [det, det], titles=["a", "b"],
                            truths=[person()[None], None])
    first, second = fig.axes[:2]
    skeleton = len(COCO_SKELETON_0BASED)
    assert len([ln for ln in second.lines if ln.get_linestyle() == "-"]) == skeleton  # person
    assert len([ln for ln in first.lines if ln.get_linestyle() == "-"]) == 2 * skeleton  # + gt
    assert first.get_title() == "a" and fig.legends
    with pytest.raises(ValueError, match="one length"):
        draw_pose_gallery([IMAGE], [det, det])
