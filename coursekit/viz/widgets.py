"""Lesson widgets: a slider moves, a pure drawing function draws that state.

* lesson 01: ``draw_receptive_field`` / ``receptive_field_widget`` — pick a depth and an
  output pixel, see which input pixels can change it (``receptive_field_map``);
* lesson 02: ``draw_transposed_conv_step(s)`` / ``transposed_conv_widget`` — a transposed
  convolution one input pixel at a time (``conv_transpose2d_steps``); ``draw_number_grids``.

Every ``draw_*`` returns a Figure outside pyplot (nothing to close; a notebook shows it as a
cell's last value). A widget is an ``ipywidgets.VBox`` of sliders and an ``Output`` that keeps
``.state`` (the drawn arguments), ``.figure`` and ``.draws`` (a counter) after each redraw, so
tests/viz/test_widgets.py sets a slider's ``.value`` and checks what was drawn, no browser.
ipywidgets (the ``[lab]`` extra) is imported only when a widget is built.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import torch
from matplotlib import colormaps
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from torch import Tensor, nn

from coursekit.segmentation.receptive_field import receptive_field_map, receptive_field_of
from coursekit.upsampling import conv_transpose2d_steps
from coursekit.validators import describe, int_pair, positive_int, require_tensor
from coursekit.viz.grid import to_numpy_image

__all__ = [
    "conv_stack", "draw_number_grids", "draw_receptive_field", "draw_transposed_conv_step",
    "draw_transposed_conv_steps", "receptive_field_widget", "spatial_prefix",
    "transposed_conv_widget",
]  # fmt: skip

SPATIAL = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


class LessonFigure(Figure):
    """A Figure outside pyplot that a notebook shows as PNG, even before pyplot's inline display."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, format="png", bbox_inches="tight")
        return buffer.getvalue()


def conv_stack(depth: int, kernel_size: int = 3, channels: int = 1) -> nn.Sequential:
    """``depth`` convolutions ``kernel_size``×``kernel_size``, stride 1, "same" padding."""
    depth = positive_int(depth, "depth")
    kernel_size = positive_int(kernel_size, "kernel_size")
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd int, got {kernel_size!r}")
    channels = positive_int(channels, "channels")
    return nn.Sequential(*[nn.Conv2d(channels, channels, kernel_size, padding=kernel_size // 2)
                           for _ in range(depth)])


def spatial_prefix(model: nn.Module, depth: int | None = None) -> nn.Sequential:
    """The chain of ``model``'s leaf layers up to its ``depth``-th Conv2d / MaxPool2d / AvgPool2d.

    Leaves are taken in registration order, so this is ``model`` truncated only for
    chain models (``nn.Sequential``, ``PatchClassifier``), not for skip connections.
    ``depth=None`` keeps every layer.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {describe(model)}")
    leaves = [m for m in model.modules() if not list(m.children())]
    spatial = [k for k, m in enumerate(leaves) if isinstance(m, SPATIAL)]  # conv/pool positions
    depth = len(spatial) if depth is None else depth
    expected = f"an int in [1, {len(spatial)}] (the model's conv/pool layers)"
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise TypeError(f"depth must be {expected}, got {depth!r}")
    if not 1 <= depth <= len(spatial):
        raise ValueError(f"depth must be {expected}, got {depth!r}")
    return nn.Sequential(*leaves[:spatial[depth] if depth < len(spatial) else len(leaves)])


def _model_and_size(model_or_depth, depth, input_size, image):
    """Resolve the arguments of ``draw_receptive_field``: (chain, depth, (H, W))."""
    if isinstance(model_or_depth, nn.Module):
        net = spatial_prefix(model_or_depth, depth)
        depth = sum(isinstance(m, SPATIAL) for m in net)
    elif isinstance(model_or_depth, int) and not isinstance(model_or_depth, bool):
        depth = model_or_depth if depth is None else depth
        net = conv_stack(depth)
    else:
        raise TypeError(f"model_or_depth must be an nn.Module or an int, "
                        f"got {describe(model_or_depth)}")
    if image is not None:
        require_tensor(image, "image", "a float Tensor[3, H, W] or None")
        if image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image must be Tensor[3, H, W] or None, got {describe(image)}")
        input_size = tuple(image.shape[-2:])
    size = int_pair(input_size, "input_size")
    return net, depth, size


def _output_size(net: nn.Module, size: tuple[int, int]) -> tuple[int, int]:
    channels = next((m.in_channels for m in net.modules() if isinstance(m, nn.Conv2d)), 1)
    like = next(net.parameters(), torch.zeros(()))
    with torch.no_grad():
        return tuple(net(like.new_zeros(1, channels, *size)).shape[-2:])


def draw_receptive_field(
    model_or_depth: nn.Module | int,
    out_y: int,
    out_x: int,
    *,
    depth: int | None = None,
    input_size: int | tuple[int, int] = 32,
    image: Tensor | None = None,
) -> Figure:
    """Left: the input, lit where output pixel ``(out_y, out_x)`` can change; right: the output.

    ``model_or_depth``: an int L (L 3×3 convolutions with padding 1: receptive field
    ``1 + 2L``; ``depth`` replaces L when given) or a chain model, truncated to its
    first ``depth`` conv/pool layers.
    The light is ``receptive_field_map`` (|gradient| with positive weights: how many
    paths reach each input pixel); the dashed square is ``receptive_field_of``'s
    side ``size`` centred at ``start + jump * (y, x)``. ``image`` Tensor[3, H, W]
    (optional) is drawn underneath and sets ``input_size``.
    """
    net, depth, size = _model_and_size(model_or_depth, depth, input_size, image)
    for name, value in (("out_y", out_y), ("out_x", out_x)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int (an output pixel), got {value!r}")
    h, w = _output_size(net, size)
    if not (0 <= out_y < h and 0 <= out_x < w):
        raise ValueError(f"(out_y, out_x) must lie in the {h}x{w} output, got ({out_y}, {out_x})")
    heat = receptive_field_map(net, size, out_y, out_x).cpu()  # (H, W)
    heat = (heat / heat.max()).numpy()
    if image is not None:
        base = to_numpy_image(image) * 0.45
    else:
        base = np.full((*size, 3), 0.15, dtype=np.float32)
    glow = colormaps["inferno"](0.35 + 0.65 * heat)[..., :3]  # (H, W, 3)
    shown = np.where(heat[..., None] > 0, 0.3 * base + 0.7 * glow, base)
    geometry = receptive_field_of(net)
    side = geometry["size"]
    # the square's centre in imshow coordinates
    cy, cx = (geometry["start"] + geometry["jump"] * v - 0.5 for v in (out_y, out_x))

    fig = LessonFigure(figsize=(9, 4.3), layout="constrained")
    ax_in, ax_out = fig.subplots(1, 2)
    ax_in.imshow(shown, interpolation="nearest")
    ax_in.add_patch(Rectangle((cx - side / 2, cy - side / 2), side, side, fill=False, ec="cyan",
                              ls="--", lw=1.5))
    ax_in.set_title(f"input {size[0]}×{size[1]}: receptive field {side}×{side}", fontsize=10)
    # the output drawn in input coordinates: output pixel k sits over input start + jump * k
    grid = np.full((h, w, 3), 0.8, dtype=np.float32)
    grid[(np.arange(h)[:, None] + np.arange(w)) % 2 == 1] = 0.74  # checkerboard: output pixels
    grid[out_y, out_x] = (0.9, 0.1, 0.1)
    jump, first = geometry["jump"], geometry["start"] - 0.5
    ax_out.imshow(grid, interpolation="nearest",
                  extent=(first - jump / 2, first + jump * (w - 0.5),
                          first + jump * (h - 0.5), first - jump / 2))
    ax_out.set_title(f"output {h}×{w} after {depth} layer{'s' * (depth != 1)}: "
                     f"pixel ({out_y}, {out_x})", fontsize=10)
    for ax in (ax_in, ax_out):
        ax.set(xlim=(-0.5, size[1] - 0.5), ylim=(size[0] - 0.5, -0.5), xticks=[], yticks=[])
    return fig


def _interactive(
    draw: Callable[..., Figure],
    controls: dict,
    fixed: dict | None = None,
    before: Callable | None = None,
):
    """VBox(controls + Output) that redraws ``draw(**fixed, **values)`` on every change.

    ``before(values)`` may adjust the controls (slider ranges) first; it runs with
    redrawing paused. The box keeps ``state``, ``figure`` and ``draws`` of the last redraw.
    """
    import ipywidgets as widgets
    from IPython import get_ipython
    from IPython.display import display

    out = widgets.Output()
    box = widgets.VBox([*controls.values(), out])
    box.state, box.figure, box.draws, box.busy = None, None, 0, False

    def redraw(_change=None):
        if box.busy:  # ``before`` is moving a slider: one redraw, after it
            return
        box.busy = True
        try:
            if before is not None:
                before(controls)
        finally:
            box.busy = False
        values = {name: c.value for name, c in controls.items()}
        fig = draw(**(fixed or {}), **values)
        box.state, box.figure, box.draws = values, fig, box.draws + 1
        if get_ipython() is not None:  # in plain Python (tests) there is nowhere to show it
            out.clear_output(wait=True)
            with out:
                display(fig)

    for control in controls.values():
        control.observe(redraw, names="value")
    redraw()
    return box


def receptive_field_widget(
    model_or_depth: nn.Module | int = 3,
    *,
    input_size: int | tuple[int, int] = 32,
    max_depth: int = 10,
    image: Tensor | None = None,
):
    """Sliders for the depth and the output pixel; draws ``draw_receptive_field``.

    With an int the depth slider runs over stacks of 1..``max_depth`` 3×3 convolutions
    (starting at ``model_or_depth``); with a chain model over its 1..all conv/pool layers.
    Returns an ``ipywidgets.VBox`` (``.state``, ``.figure``, ``.draws``: see the module doc).
    """
    import ipywidgets as widgets

    net, depth, size = _model_and_size(model_or_depth, None, input_size, image)
    top = depth if isinstance(model_or_depth, nn.Module) else max_depth
    if isinstance(top, bool) or not isinstance(top, int):
        raise TypeError(f"max_depth must be an int >= model_or_depth={depth}, got {max_depth!r}")
    if top < depth:
        raise ValueError(f"max_depth must be an int >= model_or_depth={depth}, got {max_depth!r}")
    h, w = _output_size(net, size)
    look = {"style": {"description_width": "110px"}, "layout": widgets.Layout(width="420px")}
    controls = {
        "depth": widgets.IntSlider(value=depth, min=1, max=top, description="layers", **look),
        "out_y": widgets.IntSlider(value=h // 2, min=0, max=h - 1, description="output row",
                                   **look),
        "out_x": widgets.IntSlider(value=w // 2, min=0, max=w - 1, description="output column",
                                   **look),
    }

    def fit_sliders(c):  # deeper unpadded / strided models have smaller outputs
        chain = _model_and_size(model_or_depth, c["depth"].value, size, None)[0]
        oh, ow = _output_size(chain, size)
        for name, n in (("out_y", oh), ("out_x", ow)):
            c[name].value = min(c[name].value, n - 1)
            c[name].max = n - 1

    def draw(depth, out_y, out_x):
        return draw_receptive_field(model_or_depth, out_y, out_x, depth=depth, input_size=size,
                                    image=image)

    return _interactive(draw, controls, before=fit_sliders)


def _plane(t: object, name: str, dims: str) -> Tensor:
    """Tensor[A, B] or Tensor[1, 1, A, B] -> float64 CPU Tensor[A, B]."""
    expected = f"Tensor[{dims}] or Tensor[1, 1, {dims}] (one channel)"
    require_tensor(t, name, f"a real {expected}")
    if t.dim() == 4 and t.shape[:2] == (1, 1):
        t = t[0, 0]
    if t.dim() != 2 or min(t.shape) < 1:
        raise ValueError(f"{name} must be {expected}, got {describe(t)}")
    if t.is_complex():
        raise TypeError(f"{name} must hold real numbers, got {describe(t)}")
    return t.detach().to("cpu", torch.float64)


def _steps(x: object, weight: object, stride: object) -> tuple[Tensor, Tensor, list]:
    """x Tensor[H, W], weight Tensor[kH, kW] (float64, CPU), every ``conv_transpose2d_steps`` step.

    The steps are (input pixel (i, j), weighted copy, output so far), in 2-D.
    """
    x, weight = _plane(x, "x", "H, W"), _plane(weight, "weight", "kH, kW")
    stride = positive_int(stride, "stride")
    steps = conv_transpose2d_steps(x[None, None], weight[None, None], stride)
    return x, weight, [(ij, copy[0, 0], running[0, 0]) for ij, copy, running in steps]


def _numbers(
    ax, values: Tensor, title: str, vmax: float, box: tuple[int, int, int, int] | None = None
) -> None:
    """Numbers in a grid on a shared colour scale; ``box`` = (row, col, rows, cols) outlined red."""
    v = values.numpy()
    ax.imshow(v, cmap="Blues", vmin=min(0.0, float(v.min())), vmax=vmax, interpolation="nearest")
    integers = bool(np.all(v == np.round(v)))
    for (r, c), value in np.ndenumerate(v):
        text = f"{value:.0f}" if integers else f"{value:.2f}"
        ax.text(c, r, text, ha="center", va="center", fontsize=9,
                color="white" if value > 0.6 * vmax else "black")
    # cell borders
    ax.hlines(np.arange(v.shape[0] + 1) - 0.5, -0.5, v.shape[1] - 0.5, color="0.6", lw=0.5)
    ax.vlines(np.arange(v.shape[1] + 1) - 0.5, -0.5, v.shape[0] - 0.5, color="0.6", lw=0.5)
    if box is not None:
        r, c, nr, nc = box
        ax.add_patch(Rectangle((c - 0.5, r - 0.5), nc, nr, fill=False, ec="red", lw=2.5))
    ax.set(xticks=[], yticks=[])
    ax.set_title(title, fontsize=9)


def draw_number_grids(
    grids: list[Tensor],
    titles: list[str] | None = None,
    boxes: list[tuple[int, int, int, int] | None] | None = None,
) -> Figure:
    """Small 2-D tensors side by side as numbered cells on one colour scale (lesson 02).

    ``grids``: Tensor[H, W] each (any sizes); ``boxes``: an optional (row, col, rows, cols)
    per grid, outlined in red. Panel widths follow the grids' widths.
    """
    if not isinstance(grids, list | tuple):
        raise TypeError(f"grids must be a non-empty list of Tensor[H, W], got {describe(grids)}")
    if not grids:
        raise ValueError("grids must be a non-empty list of Tensor[H, W], got an empty list")
    planes = [_plane(g, f"grids[{k}]", "H, W") for k, g in enumerate(grids)]
    for name, extra in (("titles", titles), ("boxes", boxes)):
        if extra is not None and not isinstance(extra, list | tuple):
            raise TypeError(f"{name} must be None or a list with one entry per grid, "
                            f"got {describe(extra)}")
        if extra is not None and len(extra) != len(planes):
            raise ValueError(f"{name} must have one entry per grid ({len(planes)}), "
                             f"got {len(extra)}")
    vmax = max(float(p.max()) for p in planes) or 1.0
    widest = max(p.shape[1] for p in planes)
    width = min(12.0, 0.55 * sum(p.shape[1] for p in planes) + 0.6 * len(planes))
    height = 0.55 * max(p.shape[0] for p in planes) + 0.7
    fig = LessonFigure(figsize=(width, height), layout="constrained")
    ratios = [p.shape[1] / widest for p in planes]
    axes = fig.subplots(1, len(planes), squeeze=False, gridspec_kw={"width_ratios": ratios})[0]
    for k, (ax, plane) in enumerate(zip(axes, planes, strict=True)):
        _numbers(ax, plane, titles[k] if titles else "", vmax, boxes[k] if boxes else None)
    return fig


def draw_transposed_conv_step(x: Tensor, weight: Tensor, stride: int, step: int) -> Figure:
    """One step of a transposed convolution: input pixel, filter, weighted copy, output so far.

    ``x`` Tensor[H, W], ``weight`` Tensor[kH, kW] (or with leading 1, 1 axes); ``step`` in
    ``[1, H*W]`` counts input pixels in row-major order. Step t adds
    ``x[i, j] * weight`` at rows ``i*stride .. i*stride + kH - 1`` (columns likewise) of
    the (H-1)·stride+kH square output (no padding); the last step is ``conv_transpose2d``.
    """
    xs, ws, steps = _steps(x, weight, stride)
    expected = f"an int in [1, {len(steps)}] (one per input pixel)"
    if isinstance(step, bool) or not isinstance(step, int):
        raise TypeError(f"step must be {expected}, got {step!r}")
    if not 1 <= step <= len(steps):
        raise ValueError(f"step must be {expected}, got {step!r}")
    (i, j), copy, running = steps[step - 1]
    kh, kw = ws.shape
    vmax = float(max(steps[-1][2].max(), xs.max(), ws.max(), 1e-12))
    fig = LessonFigure(figsize=(12, 3.8), layout="constrained")
    axes = fig.subplots(1, 4, gridspec_kw={"width_ratios": [xs.shape[1], kw, kw, running.shape[1]]})
    _numbers(axes[0], xs, f"input {xs.shape[0]}×{xs.shape[1]}: pixel ({i}, {j})", vmax,
             (i, j, 1, 1))
    _numbers(axes[1], ws, f"filter {kh}×{kw}", vmax)
    _numbers(axes[2], copy, f"copy = {xs[i, j].item():g} × filter", vmax)
    _numbers(axes[3], running,
             f"output after {step} of {len(steps)} copies\n"
             f"(copy at row {i}·{stride}, col {j}·{stride})",
             vmax, (i * stride, j * stride, kh, kw))
    fig.suptitle(f"transposed convolution, stride {stride}: copies of the filter weighted by the "
                 "input, summed at overlaps", fontsize=10)
    return fig


def draw_transposed_conv_steps(x: Tensor, weight: Tensor, stride: int) -> Figure:
    """Every step at once (for readers without a kernel).

    Top row: each copy in place; bottom row: the running sum.
    """
    _, weight, steps = _steps(x, weight, stride)
    kh, kw = weight.shape
    vmax = float(max(steps[-1][2].max(), 1e-12))
    n = len(steps)
    fig = LessonFigure(figsize=(min(12.0, 2.8 * n), 6.0), layout="constrained")
    axes = fig.subplots(2, n, squeeze=False)
    for t, ((i, j), copy, running) in enumerate(steps):
        alone = torch.zeros_like(running)
        alone[i * stride:i * stride + kh, j * stride:j * stride + kw] = copy
        box = (i * stride, j * stride, kh, kw)
        _numbers(axes[0, t], alone, f"copy {t + 1}: x[{i}, {j}] × filter", vmax, box)
        _numbers(axes[1, t], running, f"output after {t + 1} cop{'ies' if t else 'y'}", vmax, box)
    fig.suptitle(f"transposed convolution, stride {stride}: each input pixel moves the copy "
                 f"{stride} output pixels", fontsize=10)
    return fig


def transposed_conv_widget(x: Tensor, weight: Tensor, stride: int):
    """A ``step`` slider over ``draw_transposed_conv_step``.

    ``.state``, ``.figure``, ``.draws``: see the module doc.
    """
    import ipywidgets as widgets

    n = len(_steps(x, weight, stride)[2])
    controls = {"step": widgets.IntSlider(value=1, min=1, max=n, description="step")}
    return _interactive(draw_transposed_conv_step, controls,
                        fixed={"x": x, "weight": weight, "stride": stride})
