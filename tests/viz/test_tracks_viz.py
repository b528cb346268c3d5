"""Track pictures: id colours, trails, the strip of frames and the animation."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Rectangle  # noqa: E402

from coursekit.viz import palette  # noqa: E402
from coursekit.viz.tracks import (  # noqa: E402
    animate_tracks,
    animation_html,
    id_colors,
    plot_track_strip,
    track_trails,
)


def frame(ids, boxes):
    return torch.tensor(ids, dtype=torch.long), torch.tensor(boxes, dtype=torch.float32)


TRACKS = [frame([1, 3], [[0, 0, 4, 4], [10, 10, 12, 14]]),
          frame([1], [[2, 0, 6, 4]]),
          frame([3, 1], [[10, 12, 12, 16], [4, 2, 8, 6]])]
IMAGES = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def test_id_colors_are_fixed_by_the_id():
    assert torch.equal(id_colors(torch.tensor([3, 1])), palette(4)[[3, 1]])
    # the same id, the same colour, whatever else is in the frame
    assert torch.equal(id_colors(torch.tensor([2]))[0], id_colors(torch.tensor([7, 2]))[1])
    assert id_colors(torch.zeros(0, dtype=torch.long)).shape == (0, 3)


def test_track_trails_by_hand():
    trails = track_trails(TRACKS, 2, trail=3)
    assert list(trails) == [1, 3]
    assert trails[1].tolist() == [[2, 2], [4, 2], [6, 4]]
    assert trails[3].tolist() == [[11, 12], [11, 14]]  # not in frame 1
    assert track_trails(TRACKS, 2, trail=1)[1].tolist() == [[6, 4]]
    assert list(track_trails(TRACKS, 1, trail=5)) == [1]


def test_strip_draws_every_box_in_its_id_colour():
    fig = plot_track_strip(IMAGES, TRACKS, frames=[0, 2], trail=3)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 2
    for ax, f in zip(axes, [0, 2], strict=True):
        rects = [p for p in ax.patches if isinstance(p, Rectangle)]
        ids, boxes = TRACKS[f]
        assert len(rects) == len(ids)
        for r, b, c in zip(rects, boxes.tolist(), id_colors(ids).numpy(), strict=True):
            assert (r.get_x(), r.get_y(), r.get_width(), r.get_height()) == \
                (b[0], b[1], b[2] - b[0], b[3] - b[1])
            assert np.allclose(r.get_edgecolor()[:3], c)
        assert ax.get_title() == f"frame {f}"
    legend = fig.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["id 1", "id 3"]
    plt.close(fig)
    fig = plot_track_strip(IMAGES, TRACKS)  # default: every frame of a short video
    assert len([ax for ax in fig.axes if ax.images]) == 3
    plt.close(fig)


def test_animation_is_small_html():
    anim = animate_tracks(IMAGES, TRACKS, trail=2)
    html = animation_html(anim, dpi=30)
    assert html.count("data:image/png;base64") == 3
    assert len(html) < 100_000


def test_bad_input():
    with pytest.raises(ValueError, match="images and tracks must have the same number"):
        plot_track_strip(IMAGES[:2], TRACKS)
    with pytest.raises(ValueError, match=r"frames must hold ints in \[0, 2\]"):
        plot_track_strip(IMAGES, TRACKS, frames=[3])
    with pytest.raises(ValueError, match=r"tracks\[0\]: ids and boxes must have the same"):
        plot_track_strip(IMAGES[:1], [frame([1, 2], [[0, 0, 1, 1]])])
    with pytest.raises(ValueError, match=r"tracks\[0\] boxes must be Tensor\[N, 4\]"):
        track_trails([(torch.tensor([1]), torch.zeros(1, 3))], 0)
    # a repeated id drew two trails under one colour (regression: the same checks as tracking)
    with pytest.raises(ValueError, match=r"tracks\[0\] ids must be unique within a frame, "
                                         r"got \[1, 1\]"):
        track_trails([(torch.tensor([1, 1]), torch.zeros(2, 4))], 0)
    with pytest.raises(TypeError, match=r"tracks\[0\] scores must be a floating-point Tensor\[K\]"):
        track_trails([(torch.tensor([1]), torch.zeros(1, 4), torch.tensor([1]))], 0)
    with pytest.raises(ValueError, match="frame must be < 3"):
        track_trails(TRACKS, 3)
    with pytest.raises(TypeError, match="ids must be an integer Tensor"):
        id_colors(torch.tensor([1.0]))
    with pytest.raises(ValueError, match="ids must be >= 0"):
        id_colors(torch.tensor([-1]))
    with pytest.raises(ValueError, match=r"images must be a float Tensor\[T, 3, H, W\]"):
        animate_tracks(IMAGES[:, :1], TRACKS)
