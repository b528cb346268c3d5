"""Tracks in pictures: a strip of frames with boxes in id colours and trails, and an animation.

A track's colour is fixed by its id (``id_colors``: ``palette`` entry number ``id``), so
the same object has the same colour in every frame and in every figure; a change of
colour on one object *is* an identity switch. The trail is the path of the box centre
over the last ``trail`` frames.

* ``id_colors(ids)`` — Tensor[K, 3] colours of track ids.
* ``track_trails(tracks, frame, trail)`` — the centre paths drawn at one frame.
* ``plot_track_strip(images, tracks, frames)`` — a matplotlib figure, one panel per frame.
* ``animate_tracks(images, tracks)`` — a ``matplotlib.animation.FuncAnimation``;
  ``animation_html(anim)`` makes the self-contained HTML a notebook shows (``to_jshtml``).

Tested in tests/viz/test_tracks_viz.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from coursekit.validators import (
    check_frames,
    describe,
    positive_int,
    require_dim,
    require_integer,
)
from coursekit.viz.colors import palette
from coursekit.viz.grid import to_numpy_image

if TYPE_CHECKING:
    from matplotlib.animation import FuncAnimation
    from matplotlib.figure import Figure

__all__ = ["animate_tracks", "animation_html", "id_colors", "plot_track_strip",
           "track_trails"]


def id_colors(ids: Tensor) -> Tensor:
    """The colour of each track id: ``palette(max_id + 1)[ids]`` as float Tensor[K, 3].

    ``palette``'s colour k does not depend on how many colours are asked for, so an id
    keeps its colour across frames and figures. ids: integer Tensor[K] of ids >= 0.
    """
    require_integer(ids, "ids", "an integer Tensor[K] of track ids")
    require_dim(ids, "ids", 1, "an integer Tensor[K] of track ids")
    if ids.numel() and int(ids.min()) < 0:
        raise ValueError(f"ids must be >= 0, got {ids.tolist()}")
    n = int(ids.max()) + 1 if ids.numel() else 0
    return palette(n, device=ids.device)[ids]


def _check_images(images: object, num_frames: int) -> Tensor:
    require_dim(images, "images", 4, "a float Tensor[T, 3, H, W] (the frames)")
    if images.shape[1] != 3 or not images.is_floating_point():
        raise ValueError(f"images must be a float Tensor[T, 3, H, W], got {describe(images)}")
    if images.shape[0] != num_frames:
        raise ValueError(f"images and tracks must have the same number of frames, got "
                         f"{images.shape[0]} images and {num_frames} frames of tracks")
    return images


def track_trails(tracks: Sequence, frame: int, trail: int = 8) -> dict[int, Tensor]:
    """The path of each id shown in ``frame``: its box centres in the frames
    ``frame - trail + 1 ... frame`` where it was reported.

    Returns:
        ``{id: Tensor[L, 2] (x, y)}`` for the ids present in ``frame``, oldest point first
        (L >= 1: the last point is the centre in ``frame``).
    """
    pairs = check_frames(tracks, "tracks")
    frame = positive_int(frame, "frame", minimum=0)
    if frame >= len(pairs):
        raise ValueError(f"frame must be < {len(pairs)} (the number of frames), got {frame}")
    trail = positive_int(trail, "trail")
    now = set(pairs[frame][0].tolist())
    paths: dict[int, list[Tensor]] = {i: [] for i in now}
    for t in range(max(0, frame - trail + 1), frame + 1):
        ids, boxes = pairs[t]
        centres = torch.stack([(boxes[:, 0] + boxes[:, 2]) / 2,
                               (boxes[:, 1] + boxes[:, 3]) / 2], 1)  # (K, 2)
        for i, c in zip(ids.tolist(), centres, strict=True):
            if i in now:
                paths[i].append(c)
    return {i: torch.stack(p) for i, p in sorted(paths.items())}


def _draw_frame(ax, image: Tensor, tracks: list, frame: int, trail: int, title: str) -> list:
    """Draw one frame on ``ax``: the image, boxes and trails; returns the artists."""
    from matplotlib.patches import Rectangle

    ids, boxes = tracks[frame]
    colours = id_colors(ids).cpu().numpy()
    artists = [ax.imshow(to_numpy_image(image), interpolation="nearest")]
    for i, (x1, y1, x2, y2), c in zip(ids.tolist(), boxes.tolist(), colours, strict=True):
        artists.append(ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False,
                                              edgecolor=c, linewidth=1.5)))
        artists.append(ax.text(x1, y1 - 0.5, str(i), color="white", fontsize=7, va="bottom",
                               bbox=dict(facecolor=c, edgecolor="none", pad=0.5)))
    for i, path in track_trails(tracks, frame, trail).items():
        c = id_colors(torch.tensor([i]))[0].numpy()
        p = path.detach().cpu().double().numpy()
        artists += ax.plot(p[:, 0], p[:, 1], "-", color=c, linewidth=1.2)
        artists += ax.plot(p[-1:, 0], p[-1:, 1], "o", color=c, markersize=2.5)
    ax.set_xlim(-0.5, image.shape[2] - 0.5)
    ax.set_ylim(image.shape[1] - 0.5, -0.5)
    ax.set_axis_off()
    ax.set_title(title, fontsize=8)
    return artists


def _legend(fig, tracks: list) -> None:
    from matplotlib.patches import Patch

    all_ids = sorted({i for ids, _ in tracks for i in ids.tolist()})
    if not all_ids:
        return
    colours = id_colors(torch.tensor(all_ids)).numpy()
    fig.legend(handles=[Patch(color=c, label=f"id {i}") for i, c in zip(all_ids, colours,
                                                                         strict=True)],
               loc="lower center", ncol=min(len(all_ids), 8), fontsize=7, frameon=False,
               bbox_to_anchor=(0.5, 0.0))


def plot_track_strip(images: Tensor, tracks: Sequence, frames: Sequence[int] | None = None,
                     trail: int = 8, scale: float = 1.6, title: str | None = None) -> Figure:
    """A row of frames with every track's box, id and trail in its id colour, and a legend.

    Args:
        images: Tensor[T, 3, H, W]; tracks: one ``(ids, boxes)`` per frame (a tracker's
            output or the ground truth).
        frames: which frames to show (default: 6 evenly spaced).
        trail: frames of centre path drawn behind each box.
        scale: inches per panel.

    Returns:
        the Figure (close it with ``plt.close(fig)``).
    """
    import matplotlib.pyplot as plt

    pairs = check_frames(tracks, "tracks")
    images = _check_images(images, len(pairs))
    T = len(pairs)
    if frames is None:
        frames = sorted({round(k * (T - 1) / 5) for k in range(6)}) if T > 1 else [0]
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Sequence) or not frames:
        raise TypeError(f"frames must be a non-empty list of frame numbers, got "
                        f"{describe(frames)}")
    for f in frames:
        if isinstance(f, bool) or not isinstance(f, int) or not 0 <= f < T:
            raise ValueError(f"frames must hold ints in [0, {T - 1}], got {list(frames)}")
    trail = positive_int(trail, "trail")
    n = len(frames)
    fig, axes = plt.subplots(1, n, figsize=(scale * n, scale + 0.45), squeeze=False)
    for ax, f in zip(axes[0], frames, strict=True):
        _draw_frame(ax, images[f], pairs, f, trail, f"frame {f}")
    _legend(fig, pairs)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    return fig


def animate_tracks(images: Tensor, tracks: Sequence, trail: int = 8, interval: int = 200,
                   scale: float = 2.2) -> FuncAnimation:
    """A ``FuncAnimation`` of the video with the tracks drawn (one animation frame per frame).

    Keep it small for a notebook: few frames, small ``scale`` (inches); ``animation_html``
    embeds every frame as a PNG.
    """
    import matplotlib.pyplot as plt
    from matplotlib.animation import FuncAnimation

    pairs = check_frames(tracks, "tracks")
    images = _check_images(images, len(pairs))
    trail = positive_int(trail, "trail")
    interval = positive_int(interval, "interval")
    fig, ax = plt.subplots(figsize=(scale, scale))

    def draw(f: int) -> list:
        ax.clear()
        return _draw_frame(ax, images[f], pairs, f, trail, f"frame {f}")

    anim = FuncAnimation(fig, draw, frames=len(pairs), interval=interval, blit=False)
    plt.close(fig)  # the animation keeps the figure; do not also show it as a still
    return anim


def animation_html(anim: FuncAnimation, dpi: int = 60) -> str:
    """The animation as self-contained HTML (``to_jshtml``, played once, PNG frames at
    ``dpi``): ``IPython.display.HTML(animation_html(anim))`` shows it in a notebook."""
    import matplotlib as mpl

    dpi = positive_int(dpi, "dpi")
    with mpl.rc_context({"savefig.dpi": dpi, "animation.embed_limit": 8.0}):
        return anim.to_jshtml(default_mode="once")
