"""Click to segment (lesson 10): each click runs only SAM's decoder; the mask redraws.

``sam_click_widget(predictor, image)`` returns a ``SamClicker``: a matplotlib figure of
the image with the current mask and the clicks, and an ipywidgets ``VBox`` (``.widget``)
of the figure's canvas and a status line. With ``%matplotlib widget`` (ipympl) the canvas
is live in JupyterLab: **click** adds a foreground point, **shift-click** (or a right
click) a background point, **double-click** starts over; the predictor's decoder runs on
the cached embedding and the mask redraws.

The click handler is a plain Python method: ``clicker.click(x, y, background=False)``
adds a point, predicts and redraws, and returns what it drew; ``on_press(event)`` only
reads a matplotlib ``MouseEvent`` and calls it. ``replay(clicks)`` runs a list of clicks
without a mouse (the lesson's nbval-checked cell), and ``draw_sam_clicks`` draws a state
as a static figure. Tested in tests/viz/test_sam_widget.py (the callback, no browser) and
tests/browser/test_sam_click.py (a real click in JupyterLab).
"""

from __future__ import annotations

import numbers
from collections.abc import Iterable

import numpy as np
import torch
from matplotlib.figure import Figure
from torch import Tensor

from coursekit.validators import describe
from coursekit.viz.grid import to_numpy_image

__all__ = ["SamClicker", "draw_sam_clicks", "sam_click_widget"]

MASK_RGB = (0.12, 0.47, 0.71)  # the course's first instance colour (matplotlib tab:blue)
FOREGROUND, BACKGROUND = "#2ca02c", "#d62728"  # green +, red x


class SamClicker:
    """The state of a click-to-segment session on one image (see the module docstring).

    Attributes: ``points`` list of (x, y), ``labels`` list of 1 / 0, ``mask`` bool Tensor[H, W]
    or None, ``scores`` the last predicted IoUs, ``status`` the text shown, ``figure``,
    ``widget`` (an ipywidgets VBox when ipywidgets is installed, else None), ``draws`` the
    number of redraws.
    """

    def __init__(self, predictor, image: Tensor, figure: Figure) -> None:
        from coursekit.sam.predictor import SamPredictor

        if not isinstance(predictor, SamPredictor):
            raise TypeError(f"predictor must be a coursekit.sam.SamPredictor, "
                            f"got {describe(predictor)}")
        if not isinstance(image, Tensor) or image.dim() != 3 or image.shape[0] != 3:
            raise ValueError(f"image must be Tensor[3, H, W] in [0, 1], got {describe(image)}")
        self.predictor = predictor
        if not predictor.is_image_set:
            predictor.set_image(image)  # the encoder, once
        self.image = image
        self.figure = figure
        self.ax = figure.add_axes((0, 0, 1, 0.92))
        self.points: list[tuple[float, float]] = []
        self.labels: list[int] = []
        self.mask: Tensor | None = None
        self.scores: Tensor | None = None
        self.logits: Tensor | None = None
        self.draws = 0
        self.status = "click on an object (shift-click: background)"
        self.widget = None
        self._label = None
        self.redraw()
        figure.canvas.mpl_connect("button_press_event", self.on_press)

    def reset(self) -> dict:
        """Forget the clicks (the embedding stays cached)."""
        self.points, self.labels = [], []
        self.mask = self.scores = self.logits = None
        self.status = "click on an object (shift-click: background)"
        self.redraw()
        return self.state()

    def click(self, x: float, y: float, background: bool = False) -> dict:
        """Add a point at pixel (x, y) (foreground, or background), predict, redraw.

        One point: the 3 masks of an ambiguous click, the one with the highest predicted
        IoU shown; more points: one mask, with the previous logits as the mask prompt.
        Raises ``ValueError`` for a point outside the image (from ``predict``).
        """
        for name, v in (("x", x), ("y", y)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"{name} must be a number (pixels), got {describe(v)}")
        if not isinstance(background, bool):
            raise TypeError(f"background must be a bool, got {describe(background)}")
        points = self.points + [(float(x), float(y))]
        labels = self.labels + [0 if background else 1]
        multimask = len(points) == 1
        mask_input = None if multimask or self.logits is None else self.logits[None]
        masks, scores, low = self.predictor.predict(point_coords=points, point_labels=labels,
                                                    mask_input=mask_input,
                                                    multimask_output=multimask)
        best = int(scores.argmax())
        self.points, self.labels = points, labels
        self.mask, self.scores, self.logits = masks[best].cpu(), scores.cpu(), low[best]
        n = len(points)
        conf = ", ".join(f"{s:.2f}" for s in self.scores.tolist())
        self.status = (f"{n} point{'s' if n > 1 else ''} ({sum(labels)} foreground): "
                       f"mask {int(self.mask.sum())} px, predicted IoU {conf}")
        self.redraw()
        return self.state()

    def on_press(self, event) -> dict | None:
        """matplotlib ``button_press_event`` -> ``click`` (shift / right button: background)."""
        if event.inaxes is not self.ax or event.xdata is None:
            return None
        if getattr(event, "dblclick", False):
            return self.reset()
        modifiers = getattr(event, "modifiers", None) or ()
        background = "shift" in modifiers or event.key == "shift" or event.button == 3
        H, W = self.image.shape[-2:]
        x = min(max(float(event.xdata), 0.0), float(W))
        y = min(max(float(event.ydata), 0.0), float(H))
        return self.click(x, y, background=bool(background))

    def replay(self, clicks: Iterable[tuple[float, float, int]]) -> list[dict]:
        """Run clicks (x, y, label 1 foreground / 0 background) without a mouse; their states."""
        out = []
        for click in clicks:
            if len(click) != 3:
                raise ValueError(f"clicks must be (x, y, label) triples, got {click!r}")
            x, y, label = click
            if label not in (0, 1):
                raise ValueError(f"a click's label must be 1 (foreground) or 0 "
                                 f"(background), got {label!r}")
            out.append(self.click(x, y, background=label == 0))
        return out

    def state(self) -> dict:
        """What is drawn: points, labels, mask area, predicted IoUs, status."""
        return {"points": list(self.points), "labels": list(self.labels),
                "area": 0 if self.mask is None else int(self.mask.sum()),
                "scores": [] if self.scores is None else self.scores.tolist(),
                "status": self.status}

    def redraw(self) -> None:
        """Draw image, mask and clicks on the axes; update the status line."""
        _draw(self.ax, self.image, self.mask, self.points, self.labels)
        self.ax.set_title(self.status, fontsize=8)
        if self._label is not None:
            self._label.value = self.status
        self.figure.canvas.draw_idle()
        self.draws += 1


def _draw(ax, image: Tensor, mask: Tensor | None, points, labels) -> None:
    ax.clear()
    ax.imshow(to_numpy_image(image.cpu()))
    if mask is not None:
        overlay = np.zeros((*mask.shape, 4))
        overlay[..., :3] = MASK_RGB
        overlay[..., 3] = mask.numpy() * 0.55
        ax.imshow(overlay)
    for (x, y), label in zip(points, labels, strict=True):
        ax.plot(x, y, marker="P" if label else "X", color=FOREGROUND if label else BACKGROUND,
                markersize=10, markeredgecolor="white")
    ax.set_axis_off()


def sam_click_widget(predictor, image: Tensor, *, figsize: tuple[float, float] = (4.2, 4.6)
                     ) -> SamClicker:
    """A ``SamClicker`` on ``image`` in a pyplot figure (live with ``%matplotlib widget``).

    Display ``clicker.widget`` (the canvas and a status line) in a notebook. The figure is
    made with pyplot's current backend, outside the inline display (``plt.ioff``).
    """
    import matplotlib.pyplot as plt

    with plt.ioff():
        fig = plt.figure(figsize=figsize)
    clicker = SamClicker(predictor, image, fig)
    try:
        import ipywidgets as w
    except ImportError:  # pragma: no cover - the [lab] extra
        return clicker
    label = w.HTML(value=clicker.status)
    label.add_class("sam-status")
    clicker._label = label
    items = [fig.canvas] if isinstance(fig.canvas, w.DOMWidget) else []
    clicker.widget = w.VBox(items + [label])
    return clicker


def draw_sam_clicks(image: Tensor, mask: Tensor | None, points, labels, *, title: str = "",
                    ax=None) -> Figure | None:
    """A static picture of one state: image, mask (blue), clicks (+ green, x red).

    Returns a new ``LessonFigure`` (or draws on ``ax`` and returns None).
    """
    if ax is None:
        from coursekit.viz.widgets import LessonFigure

        fig = LessonFigure(figsize=(3.2, 3.4))
        ax = fig.add_subplot()
        _draw(ax, image, None if mask is None else torch.as_tensor(mask).cpu(), points, labels)
        ax.set_title(title, fontsize=8)
        return fig
    _draw(ax, image, None if mask is None else torch.as_tensor(mask).cpu(), points, labels)
    ax.set_title(title, fontsize=8)
    return None
