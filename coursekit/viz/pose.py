"""Lesson 07's pictures: skeletons, keypoint-head targets and decoding, OKS and its widget.

* ``SIDE_COLORS``, ``keypoint_side``, ``limb_side`` — the person's left (blue), right
  (orange) and centre (white): the colours every skeleton of the course is drawn in;
* ``show_image``, ``draw_skeleton``, ``skeleton_legend`` — a skeleton on matplotlib axes, in
  continuous image coordinates (pixel ``(i, j)`` covers ``[j, j + 1) × [i, i + 1)``, the
  convention of ShapesWorld's keypoints), joints visible (filled) or hidden (hollow);
* ``draw_pose`` — one person with the 17 keypoint names;
* ``draw_heatmap_targets`` — a keypoint head's targets: one hot cell per keypoint in a
  ``56 × 56`` grid over each RoI (``coursekit.pose.keypoints_to_heatmap``);
* ``draw_heatmap_decoding`` — a heatmap, its bicubic resize to the box, the arg max in image
  pixels (``coursekit.pose.heatmaps_to_keypoints``);
* ``oks_terms``, ``draw_oks``, ``oks_widget`` — move one predicted keypoint and see each
  keypoint's similarity and the OKS change (``coursekit.pose.oks``);
* ``draw_oks_falloff`` — a keypoint's similarity against the pixel error: why an ankle may
  be farther off than an eye (``COCO_SIGMAS``);
* ``draw_flip`` — a left-right flip with and without ``COCO_FLIP_INDEX``;
* ``draw_pose_gallery`` — scenes with masks and skeletons (predictions, failures).

Every ``draw_*`` returns a Figure outside pyplot (``LessonFigure``: nothing to close; a
notebook shows it as a cell's last value or with ``display``). The widget is an
``ipywidgets.VBox`` that keeps ``.state``, ``.figure`` and ``.draws`` of its last redraw
(``coursekit.viz.widgets``), and ``draw_oks``'s figure keeps ``.oks`` and ``.terms``, so
tests/viz/test_pose_viz.py moves a slider and checks the number, no browser.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Circle, Patch, Rectangle
from torch import Tensor

from coursekit.pose.coco_keypoints import (
    COCO_FLIP_INDEX,
    COCO_KEYPOINT_NAMES,
    COCO_SIGMAS,
    COCO_SKELETON_0BASED,
    check_keypoints,
)
from coursekit.pose.flip import flip_keypoints
from coursekit.pose.heatmaps import heatmaps_to_keypoints, keypoints_to_heatmap
from coursekit.pose.oks import oks
from coursekit.upsampling.bicubic import bicubic_upsample
from coursekit.validators import check_boxes, describe, require_tensor, shape_str
from coursekit.viz.colors import CATEGORY_COLORS, _check_image
from coursekit.viz.grid import to_numpy_image
from coursekit.viz.overlay import instance_colors, overlay_masks
from coursekit.viz.widgets import LessonFigure, _interactive

__all__ = [
    "SIDE_COLORS", "draw_flip", "draw_heatmap_decoding", "draw_heatmap_targets", "draw_oks",
    "draw_oks_falloff", "draw_pose", "draw_pose_gallery", "draw_skeleton", "keypoint_side",
    "limb_side", "oks_terms", "oks_widget", "show_image", "skeleton_legend",
]  # fmt: skip

SIDE_COLORS: dict[str, tuple[float, float, float]] = {
    "left": (0.16, 0.56, 1.0),  # the person's left: blue
    "right": (1.0, 0.5, 0.05),  # the person's right: orange
    "centre": (1.0, 1.0, 1.0),  # nose, and limbs that join the two sides: white
}


def keypoint_side(k: int) -> str:
    """``"left"``, ``"right"`` or ``"centre"`` for COCO keypoint ``k`` (0-based)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 0 <= k < len(COCO_KEYPOINT_NAMES):
        raise ValueError(f"k must be a keypoint index in [0, {len(COCO_KEYPOINT_NAMES)}), "
                         f"got {k!r}")
    name = COCO_KEYPOINT_NAMES[k]
    return "left" if name.startswith("left_") else "right" if name.startswith("right_") else \
        "centre"


def limb_side(a: int, b: int) -> str:
    """A limb's side: that of its ends when they agree, else ``"centre"`` (shoulders, hips)."""
    side_a, side_b = keypoint_side(a), keypoint_side(b)
    return side_a if side_a == side_b else "centre"


# where draw_skeleton writes a name, in points from the keypoint (x mirrored for the right
# side): the nose below, the eyes above, the ears above and out, the rest beside
_NAME_OFFSETS = {0: (0, -16), 1: (8, 22), 2: (8, 22), 3: (22, 10), 4: (22, 10)}


def _keypoints(keypoints: object, name: str = "keypoints") -> np.ndarray:
    """One person Tensor[17, 3] (or Tensor[1, 17, 3]) -> float64 array [17, 3]."""
    require_tensor(keypoints, name, "a Tensor[17, 3] (x, y, v) of one person")
    kp = keypoints[None] if keypoints.dim() == 2 else keypoints
    check_keypoints(kp, name, num_keypoints=len(COCO_KEYPOINT_NAMES))
    if kp.shape[0] != 1:
        raise ValueError(f"{name} must be Tensor[17, 3] (one person), got {shape_str(keypoints)}")
    return kp[0].detach().to("cpu", torch.float64).numpy()


def _image(image: object, name: str = "image") -> np.ndarray:
    return to_numpy_image(_check_image(image, name))


def show_image(ax: Axes, image: Tensor | np.ndarray) -> Axes:
    """Show ``image`` (Tensor[3, H, W] or array [H, W(, 3)]) so that a point ``(x, y)`` in
    continuous coordinates lands where it is: ``extent = (0, W, H, 0)``; axes off."""
    array = _image(image) if isinstance(image, Tensor) else np.asarray(image)
    H, W = array.shape[:2]
    ax.imshow(array, extent=(0, W, H, 0), interpolation="nearest")
    ax.set(xlim=(0, W), ylim=(H, 0))
    ax.set_axis_off()
    return ax


def draw_skeleton(ax: Axes, keypoints: Tensor, *, names: bool = False, color: object = None,
                  linewidth: float = 2.0, markersize: float = 5.0) -> Axes:
    """Draw one person's skeleton on ``ax`` (continuous image coordinates, see ``show_image``).

    ``keypoints`` Tensor[17, 3] (x, y, v). A limb (``COCO_SKELETON_0BASED``) is drawn when both
    its ends are labelled (v > 0), in ``SIDE_COLORS`` of its side (or ``color`` for all); a
    joint is a dot, filled when visible (v = 2), hollow when hidden (v = 1), absent when not
    labelled (v = 0). ``names=True`` writes each labelled keypoint's name beside it, the
    person's left keypoints to the image's right. Returns ``ax``.
    """
    kp = _keypoints(keypoints)
    labelled = kp[:, 2] > 0
    for a, b in COCO_SKELETON_0BASED:
        if labelled[a] and labelled[b]:
            c = SIDE_COLORS[limb_side(a, b)] if color is None else color
            ax.plot(kp[[a, b], 0], kp[[a, b], 1], "-", color=c, lw=linewidth,
                    solid_capstyle="round", zorder=3)
    for k in np.flatnonzero(labelled):
        c = SIDE_COLORS[keypoint_side(int(k))] if color is None else color
        visible = kp[k, 2] > 1
        ax.plot(kp[k, 0], kp[k, 1], "o", ms=markersize, mec="black", mew=0.8, zorder=4,
                mfc=c if visible else "none", color=c)
        if names:
            side = keypoint_side(int(k))
            dx = {"left": 1, "right": -1, "centre": 0}[side]
            offset = _NAME_OFFSETS.get(int(k), (14, 0))  # points; the face's names spread out
            ax.annotate(COCO_KEYPOINT_NAMES[k], (kp[k, 0], kp[k, 1]), fontsize=7,
                        xytext=(offset[0] * dx, offset[1]), textcoords="offset points",
                        ha={1: "left", -1: "right", 0: "center"}[dx], va="center",
                        color="black", zorder=5,
                        bbox={"boxstyle": "round,pad=0.15", "fc": SIDE_COLORS[side],
                              "ec": "none", "alpha": 0.85},
                        arrowprops={"arrowstyle": "-", "color": "black", "lw": 0.5})
    return ax


def skeleton_legend(hidden: bool = True) -> list:
    """Legend handles: the three sides' colours and, with ``hidden``, visible / hidden joints."""
    handles = [Line2D([], [], color=SIDE_COLORS[s], lw=3, label=f"person's {s}")
               for s in ("left", "right")]
    handles.append(Line2D([], [], color=SIDE_COLORS["centre"], lw=3, label="centre",
                          path_effects=None))
    if hidden:
        handles += [Line2D([], [], ls="", marker="o", mfc="0.6", mec="black", label="visible"),
                    Line2D([], [], ls="", marker="o", mfc="none", mec="black",
                           label="hidden (v = 1)")]
    return handles


def _legend(fig: Figure, handles: list, ncol: int | None = None) -> None:
    leg = fig.legend(handles=handles, loc="lower center", ncol=ncol or len(handles),
                     fontsize=8, frameon=True, facecolor="0.55")
    leg.get_frame().set_edgecolor("none")


def draw_pose(image: Tensor, keypoints: Tensor, box: Tensor | None = None,
              title: str = "") -> Figure:
    """One person's 17 keypoints, named, with the skeleton, on ``image`` Tensor[3, H, W].

    ``box`` (x1, y1, x2, y2) zooms on the person (with a margin for the names).
    """
    array = _image(image)
    fig = LessonFigure(figsize=(7.5, 6.2), layout="constrained")
    ax = fig.subplots()
    show_image(ax, array)
    draw_skeleton(ax, keypoints, names=True, markersize=7, linewidth=3)
    if box is not None:
        check_boxes(box[None] if isinstance(box, Tensor) and box.dim() == 1 else box, "box")
        x1, y1, x2, y2 = (float(v) for v in box.reshape(-1)[:4])
        H, W = array.shape[:2]
        m = 0.35 * max(x2 - x1, y2 - y1)
        ax.set(xlim=(max(0, x1 - m), min(W, x2 + m)), ylim=(min(H, y2 + 0.2 * m),
                                                           max(0, y1 - 0.2 * m)))
    ax.set_title(title, fontsize=10)
    _legend(fig, skeleton_legend())
    fig.get_layout_engine().set(rect=(0, 0.07, 1, 0.93))
    return fig


# ---- the keypoint head's targets ------------------------------------------------------------

def draw_heatmap_targets(image: Tensor, keypoints: Tensor, rois: Tensor, heatmap_size: int = 56,
                         titles: Sequence[str] | None = None) -> Figure:
    """Top: the image, the person's keypoints and the RoIs; below: each RoI's targets.

    ``keypoints`` Tensor[17, 3] of one person, ``rois`` Tensor[R, 4]. For each RoI the
    ``heatmap_size²`` grid shows the hot cell of every valid keypoint
    (``keypoints_to_heatmap``), in its side's colour; a keypoint outside the RoI has none.
    The figure keeps ``.targets`` and ``.valid`` (int64 Tensor[R, 17] each).
    """
    array = _image(image)
    kp = torch.as_tensor(_keypoints(keypoints))
    check_boxes(rois, "rois", floating=True)
    R = rois.shape[0]
    rois64 = rois.detach().to("cpu", torch.float64)
    targets, valid = keypoints_to_heatmap(kp[None].expand(R, -1, -1), rois64, heatmap_size)
    colours = [plt_colour(f"C{r}") for r in range(R)]
    fig = LessonFigure(figsize=(2.6 * (R + 1), 3.3), layout="constrained")
    axes = fig.subplots(1, R + 1)
    show_image(axes[0], array)
    draw_skeleton(axes[0], kp, markersize=3, linewidth=1.2)
    for r in range(R):
        x1, y1, x2, y2 = rois64[r].tolist()
        axes[0].add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec=colours[r],
                                    lw=2, ls="--"))
    axes[0].set_title("person and RoIs", fontsize=9)
    for r in range(R):
        grid = np.full((heatmap_size, heatmap_size, 3), 0.12)
        for k in range(kp.shape[0]):
            if valid[r, k]:
                i, j = divmod(int(targets[r, k]), heatmap_size)
                grid[i, j] = SIDE_COLORS[keypoint_side(k)]
        ax = axes[r + 1]
        ax.imshow(grid, interpolation="nearest")
        for side in ax.spines.values():
            side.set(color=colours[r], lw=3, ls="--")
        ax.set(xticks=[0, heatmap_size - 1], yticks=[0, heatmap_size - 1])
        ax.tick_params(labelsize=7)
        n = int(valid[r].sum())
        default = f"RoI {r}: {n} of {kp.shape[0]} keypoints valid"
        ax.set_title(titles[r] if titles else default, fontsize=9)
    fig.targets, fig.valid = targets, valid
    return fig


def plt_colour(name: str) -> tuple[float, float, float]:
    """An RGB tuple for a matplotlib colour name (``"C0"``...)."""
    from matplotlib.colors import to_rgb

    return to_rgb(name)


# ---- decoding a heatmap ---------------------------------------------------------------------

LOGIT_RANGE = 15.0  # draw_heatmap_decoding colours the logits within this of the maximum

def draw_heatmap_decoding(image: Tensor, heatmap: Tensor, roi: Tensor,
                          truth: Tensor | None = None, name: str = "keypoint") -> Figure:
    """One keypoint's heatmap decoded: the map, its bicubic resize to the box, the result.

    ``heatmap`` Tensor[S, S] (logits over the RoI), ``roi`` Tensor[4] (x1, y1, x2, y2);
    ``truth`` an optional (x, y) to mark. Left: the ``S × S`` map; middle: resized to
    ``ceil(h) × ceil(w)`` (one cell per box pixel) with the arg max; right: the image with
    the decoded keypoint (``heatmaps_to_keypoints``) and the truth. Colour bars give the
    logits, the top ``LOGIT_RANGE`` of them (lower ones are all dark). The figure keeps
    ``.keypoint`` Tensor[3] (x, y, 1).
    """
    array = _image(image)
    require_tensor(heatmap, "heatmap", "a floating-point Tensor[S, S]")
    if heatmap.dim() != 2 or not heatmap.is_floating_point():
        raise ValueError(f"heatmap must be a floating-point Tensor[S, S], got {describe(heatmap)}")
    check_boxes(roi[None] if isinstance(roi, Tensor) and roi.dim() == 1 else roi, "roi",
                floating=True)
    maps = heatmap.detach().to("cpu", torch.float32)
    box = roi.detach().reshape(1, 4).to("cpu", torch.float64)
    decoded, _ = heatmaps_to_keypoints(maps[None, None], box)  # (1, 1, 3)
    x1, y1, x2, y2 = box[0].tolist()
    w, h = max(x2 - x1, 1.0), max(y2 - y1, 1.0)
    resized = bicubic_upsample(maps[None, None], size=(math.ceil(h), math.ceil(w)))[0, 0]
    i, j = divmod(int(resized.argmax()), resized.shape[1])
    fig = LessonFigure(figsize=(11, 3.6), layout="constrained")
    axes = fig.subplots(1, 3)
    S = maps.shape[0]
    top = float(maps.max())
    shade = {"cmap": "viridis", "interpolation": "nearest", "vmin": top - LOGIT_RANGE, "vmax": top}
    im = axes[0].imshow(maps.numpy(), **shade)
    fig.colorbar(im, ax=axes[0], shrink=0.8, label=f"logit (the top {LOGIT_RANGE:g})")
    si, sj = divmod(int(maps.argmax()), S)
    axes[0].plot(sj, si, "r+", ms=12, mew=2)
    axes[0].set_title(f"{name}: {S}×{S} heatmap", fontsize=9)
    im = axes[1].imshow(resized.numpy(), **shade)
    fig.colorbar(im, ax=axes[1], shrink=0.8, label=f"logit (the top {LOGIT_RANGE:g})")
    axes[1].plot(j, i, "r+", ms=12, mew=2)
    axes[1].set_title(f"bicubic resize to the box: {resized.shape[0]}×{resized.shape[1]}\n"
                      f"arg max cell (row {i}, column {j})", fontsize=9)
    show_image(axes[2], array)
    axes[2].add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, ec="white", lw=1.5,
                                ls="--"))
    x, y = decoded[0, 0, :2].tolist()
    axes[2].plot(x, y, "r+", ms=14, mew=2.5, label=f"decoded ({x:.1f}, {y:.1f})")
    if truth is not None:
        tx, ty = (float(v) for v in truth[:2])
        axes[2].plot(tx, ty, "o", mfc="none", mec="yellow", ms=10, mew=2,
                     label=f"truth ({tx:.1f}, {ty:.1f})")
    m = 0.25 * max(w, h)
    H, W = array.shape[:2]
    axes[2].set(xlim=(max(0, x1 - m), min(W, x2 + m)), ylim=(min(H, y2 + m), max(0, y1 - m)))
    axes[2].legend(fontsize=7, loc="lower right", framealpha=0.8)
    axes[2].set_title("in image pixels: box corner + (cell + 0.5) × box / cells", fontsize=9)
    fig.keypoint = decoded[0, 0]
    return fig


# ---- OKS --------------------------------------------------------------------------------------

def oks_terms(gt_keypoints: Tensor, dt_keypoints: Tensor, area: float,
              sigmas: Sequence[float] = COCO_SIGMAS) -> Tensor:
    """Each keypoint's similarity ``exp(-d_k² / (2 s² κ_k²))`` for one person, float64 Tensor[K].

    ``gt_keypoints``, ``dt_keypoints`` Tensor[K, 3]; ``area`` the person's area s² (> 0).
    Keypoint k's term is ``oks`` of that keypoint alone (NaN where the truth is not labelled,
    which OKS does not count), so ``oks`` is the mean of the terms that are not NaN.
    """
    gt = torch.as_tensor(_keypoints(gt_keypoints, "gt_keypoints"))
    dt = torch.as_tensor(_keypoints(dt_keypoints, "dt_keypoints"))
    area_t = torch.tensor([float(area)], dtype=torch.float64)
    terms = torch.full((gt.shape[0],), float("nan"), dtype=torch.float64)
    for k in range(gt.shape[0]):
        if gt[k, 2] > 0:
            terms[k] = oks(gt[None, k:k + 1], dt[None, k:k + 1], area_t, [sigmas[k]])[0, 0]
    return terms


def _moved(gt: Tensor, keypoint: int, dx: float, dy: float) -> Tensor:
    dt = gt.clone()
    dt[keypoint, 0] += dx
    dt[keypoint, 1] += dy
    return dt


def _keypoint_index(keypoint: int | str) -> int:
    if isinstance(keypoint, str):
        if keypoint not in COCO_KEYPOINT_NAMES:
            raise ValueError(f"keypoint must be one of {COCO_KEYPOINT_NAMES}, got {keypoint!r}")
        return COCO_KEYPOINT_NAMES.index(keypoint)
    keypoint_side(keypoint)  # validates the index
    return keypoint


def draw_oks(image: Tensor, gt_keypoints: Tensor, area: float, keypoint: int | str = 9,
             dx: float = 0.0, dy: float = 0.0, box: Tensor | None = None) -> Figure:
    """A prediction equal to the truth except ``keypoint`` moved by ``(dx, dy)`` pixels.

    Left: the person (zoomed on ``box`` if given), each labelled keypoint with a circle of
    radius ``κ_k s`` (``κ_k = 2 σ_k``, ``s = √area``: there its term is ``exp(-1/2) = 0.61``),
    the moved keypoint (red) and its error. Right: every keypoint's term (``oks_terms``) and
    the OKS, their mean over the labelled keypoints. The figure keeps ``.oks`` (float) and
    ``.terms`` (float64 Tensor[17]).
    """
    array = _image(image)
    gt = torch.as_tensor(_keypoints(gt_keypoints, "gt_keypoints"))
    k = _keypoint_index(keypoint)
    if not float(area) > 0:
        raise ValueError(f"area must be > 0 (the person's area in pixels), got {area!r}")
    dt = _moved(gt, k, float(dx), float(dy))
    terms = oks_terms(gt, dt, area)
    value = float(oks(gt[None], dt[None], torch.tensor([float(area)], dtype=torch.float64))[0, 0])
    s = math.sqrt(float(area))
    fig = LessonFigure(figsize=(11, 4.4), layout="constrained")
    ax, bars = fig.subplots(1, 2, width_ratios=[1, 1.5])
    show_image(ax, 0.35 + 0.3 * array)
    draw_skeleton(ax, gt, markersize=3, linewidth=1)
    for j in np.flatnonzero((gt[:, 2] > 0).numpy()):
        radius = 2 * COCO_SIGMAS[j] * s
        ax.add_patch(Circle((float(gt[j, 0]), float(gt[j, 1])), radius, fill=False, lw=1.2,
                            ec=SIDE_COLORS[keypoint_side(int(j))] if j != k else "red"))
    ax.plot([gt[k, 0], dt[k, 0]], [gt[k, 1], dt[k, 1]], "r-", lw=1.5)
    ax.plot(dt[k, 0], dt[k, 1], "rx", ms=10, mew=2.5)
    if box is not None:
        x1, y1, x2, y2 = (float(v) for v in box.reshape(-1)[:4])
        m = 0.15 * max(x2 - x1, y2 - y1)
        H, W = array.shape[:2]
        ax.set(xlim=(max(0, x1 - m), min(W, x2 + m)), ylim=(min(H, y2 + m), max(0, y1 - m)))
    d = math.hypot(dx, dy)
    ax.set_title(f"{COCO_KEYPOINT_NAMES[k]} moved {d:.1f} px; circles: radius κ·s", fontsize=9)
    colours = [SIDE_COLORS[keypoint_side(j)] for j in range(len(terms))]
    heights = torch.nan_to_num(terms, nan=0.0).numpy()
    drawn = bars.bar(range(len(terms)), heights, color=colours, edgecolor="black", lw=0.6)
    drawn[k].set_edgecolor("red")
    drawn[k].set_linewidth(2.0)
    bars.axhline(value, color="red", ls="--", lw=1.2, label=f"OKS = mean = {value:.3f}")
    bars.set_xticks(range(len(terms)), COCO_KEYPOINT_NAMES, rotation=60, ha="right",
                    fontsize=7)
    bars.set(ylim=(0, 1.05), ylabel="exp(−d² / (2 s² κ²))")
    bars.set_facecolor("0.55")
    bars.legend(fontsize=8, loc="lower left")
    bars.set_title(f"each keypoint's similarity; OKS = {value:.3f}", fontsize=9)
    fig.oks, fig.terms = value, terms
    return fig


def oks_widget(image: Tensor, gt_keypoints: Tensor, area: float, keypoint: int | str = 9,
               box: Tensor | None = None, max_shift: float = 10.0):
    """A keypoint menu and ``dx``, ``dy`` sliders (pixels) over ``draw_oks``.

    Returns an ``ipywidgets.VBox`` with ``.state`` (keypoint, dx, dy), ``.figure`` (its
    ``.oks``, ``.terms``) and ``.draws``.
    """
    import ipywidgets as widgets

    k = _keypoint_index(keypoint)
    if isinstance(max_shift, bool) or not isinstance(max_shift, int | float) or max_shift <= 0:
        raise ValueError(f"max_shift must be a positive number of pixels, got {max_shift!r}")
    look = {"style": {"description_width": "90px"}, "layout": widgets.Layout(width="420px")}
    controls = {
        "keypoint": widgets.Dropdown(options=[(n, i) for i, n in enumerate(COCO_KEYPOINT_NAMES)],
                                     value=k, description="keypoint", **look),
        "dx": widgets.FloatSlider(value=0.0, min=-max_shift, max=max_shift, step=0.5,
                                  description="dx (px)", **look),
        "dy": widgets.FloatSlider(value=0.0, min=-max_shift, max=max_shift, step=0.5,
                                  description="dy (px)", **look),
    }
    return _interactive(draw_oks, controls,
                        fixed={"image": image, "gt_keypoints": gt_keypoints, "area": area,
                               "box": box})


def draw_oks_falloff(area: float, keypoints: Sequence[str] = ("left_eye", "nose",
                                                                "left_wrist", "left_hip",
                                                                "left_ankle"),
                     max_distance: float = 8.0) -> Figure:
    """Each named keypoint's similarity against the distance ``d`` (pixels), person area ``s²``.

    ``exp(-d² / (2 s² κ_k²))`` with ``κ_k = 2 σ_k``: a keypoint humans click precisely (an
    eye) falls off fast, a vague one (a hip, an ankle) slowly. Dots mark ``d = κ_k s``.
    """
    if not float(area) > 0:
        raise ValueError(f"area must be > 0 (the person's area in pixels), got {area!r}")
    s = math.sqrt(float(area))
    d = torch.linspace(0, float(max_distance), 161, dtype=torch.float64)
    fig = LessonFigure(figsize=(6.4, 3.6), layout="constrained")
    ax = fig.subplots()
    for n, name in enumerate(keypoints):
        k = _keypoint_index(name)
        kappa = 2 * COCO_SIGMAS[k]
        y = torch.exp(-(d**2) / (2 * area * kappa**2))
        colour = f"C{n}"
        ax.plot(d, y, color=colour, lw=2, label=f"{name}: σ = {COCO_SIGMAS[k]:.3f}, "
                                                  f"κ·s = {kappa * s:.1f} px")
        ax.plot(kappa * s, math.exp(-0.5), "o", color=colour, mec="black")
    ax.set(xlabel="distance d between predicted and true keypoint (pixels)",
           ylabel="similarity of this keypoint", ylim=(0, 1.02), xlim=(0, float(max_distance)))
    ax.set_title(f"one person, area s² = {float(area):.0f} px² (s = {s:.1f} px)", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


# ---- flip -------------------------------------------------------------------------------------

def draw_flip(image: Tensor, keypoints: Tensor, box: Tensor | None = None,
              flip_index: Sequence[int] = COCO_FLIP_INDEX) -> Figure:
    """Three panels: the person, mirrored with the flip index, mirrored without it.

    ``keypoints`` Tensor[17, 3]. The skeleton is coloured by the **labels** (left blue, right
    orange): a person facing the camera has their left on the image's right. Mirrored with
    ``flip_index`` the picture keeps that rule; without it (``x -> W - x`` only) the keypoints
    labelled left land on the image's left. The figure keeps ``.with_index`` and
    ``.without_index`` (Tensor[17, 3] each).
    """
    array = _image(image)
    kp = torch.as_tensor(_keypoints(keypoints))
    W = array.shape[1]
    with_index = flip_keypoints(kp[None], W, flip_index)[0]
    without = flip_keypoints(kp[None], W, list(range(kp.shape[0])))[0]
    fig = LessonFigure(figsize=(10.5, 4.0), layout="constrained")
    axes = fig.subplots(1, 3)
    panels = [(array, kp, "original"), (array[:, ::-1], with_index,
                                        "mirrored, with the flip index"),
              (array[:, ::-1], without, "mirrored, WITHOUT the flip index")]
    for ax, (picture, points, title) in zip(axes, panels, strict=True):
        show_image(ax, picture)
        draw_skeleton(ax, points, markersize=5, linewidth=2)
        if box is not None:
            x1, y1, x2, y2 = (float(v) for v in box.reshape(-1)[:4])
            if picture is not array:
                x1, x2 = W - x2, W - x1
            m = 0.2 * max(x2 - x1, y2 - y1)
            ax.set(xlim=(x1 - m, x2 + m), ylim=(y2 + m, y1 - m))
        ax.set_title(title, fontsize=9)
    _legend(fig, skeleton_legend(hidden=False))
    fig.get_layout_engine().set(rect=(0, 0.08, 1, 0.92))
    fig.with_index, fig.without_index = with_index, without
    return fig


# ---- scenes with masks and skeletons --------------------------------------------------------

def draw_pose_gallery(images: Sequence[Tensor], detections: Sequence[dict[str, Tensor]],
                      titles: Sequence[str] | None = None, ncols: int = 4,
                      truths: Sequence[Tensor | None] | None = None,
                      zoom: Sequence[Tensor | None] | None = None) -> Figure:
    """Scenes with their instance masks (in each class's hue) and persons' skeletons.

    ``detections[i]``: ``{"labels" Tensor[N] (category ids), "masks" bool Tensor[N, H, W],
    optional "keypoints" Tensor[N, 17, 3] (drawn for label 7, the person)}``; ``truths[i]``
    an optional Tensor[P, 17, 3] drawn as thin grey skeletons beneath; ``zoom[i]`` an
    optional box to zoom on. A legend names the categories and the sides.
    """
    from coursekit.data import CATEGORIES

    if not isinstance(images, Sequence) or not isinstance(detections, Sequence):
        raise TypeError(f"images and detections must be lists, got {describe(images)} and "
                        f"{describe(detections)}")
    if len(images) != len(detections) or not images:
        raise ValueError(f"images and detections must be non-empty lists of one length, got "
                         f"{len(images)} and {len(detections)}")
    n = len(images)
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    fig = LessonFigure(figsize=(2.7 * ncols, 2.9 * nrows + 0.5), layout="constrained")
    axes = np.atleast_1d(fig.subplots(nrows, ncols, squeeze=False)).ravel()
    person = next(c["id"] for c in CATEGORIES if c["name"] == "person")
    for i, ax in enumerate(axes):
        ax.set_axis_off()
        if i >= n:
            continue
        image, det = _check_image(images[i], f"images[{i}]"), detections[i]
        labels, masks = det["labels"].cpu(), det["masks"].cpu().bool()
        picture = overlay_masks(image.cpu(), masks, instance_colors(labels), alpha=0.45)
        show_image(ax, picture)
        if truths is not None and truths[i] is not None:
            for kp in truths[i]:
                draw_skeleton(ax, kp, color="0.15", linewidth=3.2, markersize=0)
        if "keypoints" in det:
            for kp, label in zip(det["keypoints"].cpu(), labels.tolist(), strict=True):
                if label == person:
                    draw_skeleton(ax, kp, markersize=2.5, linewidth=1.3)
        if zoom is not None and zoom[i] is not None:  # a square window around the box
            x1, y1, x2, y2 = (float(v) for v in zoom[i].reshape(-1)[:4])
            H, W = image.shape[1:]
            side = min(1.3 * max(x2 - x1, y2 - y1), H, W)
            left = min(max((x1 + x2 - side) / 2, 0), W - side)
            top = min(max((y1 + y2 - side) / 2, 0), H - side)
            ax.set(xlim=(left, left + side), ylim=(top + side, top))
        if titles is not None:
            ax.set_title(titles[i], fontsize=8)
    things = [c for c in CATEGORIES if c["isthing"]]
    handles = [Patch(color=CATEGORY_COLORS[c["id"]].tolist(), label=c["name"]) for c in things]
    handles += skeleton_legend(hidden=False)
    if truths is not None:
        handles.append(Line2D([], [], color="0.15", lw=3, label="ground truth"))
    _legend(fig, handles, ncol=min(len(handles), 8))
    fig.get_layout_engine().set(rect=(0, 0.5 / (2.9 * nrows + 0.5) + 0.03, 1, 0.97))
    return fig
