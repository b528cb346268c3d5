"""Lesson 09's pictures: captions beside boxes, voxels and meshes on 3D axes (Agg)."""

import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from coursekit.heads.cubify import cubify  # noqa: E402
from coursekit.heads.plots import draw_captions, plot_mesh, plot_voxels  # noqa: E402


def test_draw_captions_places_text_right_of_the_image():
    fig, ax = plt.subplots()
    boxes = torch.tensor([[10.0, 40, 20, 50], [30, 5, 40, 15]])
    texts = draw_captions(ax, torch.rand(3, 64, 64), boxes, ["a", "b"], torch.tensor([4, 7]))
    assert [t.get_text() for t in texts] == ["b", "a"]  # top box first
    assert all(t.get_position()[0] > 64 for t in texts)
    assert len(ax.patches) == 2
    with pytest.raises(ValueError, match="captions must be a list with one str per box"):
        draw_captions(ax, torch.rand(3, 64, 64), boxes, ["a"])
    plt.close(fig)


def test_plot_mesh_and_voxels():
    fig = plt.figure()
    ax = fig.add_subplot(1, 2, 1, projection="3d")
    verts, faces = cubify(torch.ones(1, 2, 2, 2))
    poly = plot_mesh(ax, verts[0], faces[0], title="block")
    assert len(poly.get_facecolor()) == 48
    ax2 = fig.add_subplot(1, 2, 2, projection="3d")
    plot_voxels(ax2, torch.ones(2, 2, 2, dtype=torch.bool))
    assert ax.get_xlim() == (-1.0, 1.0)
    with pytest.raises(ValueError, match="faces must index"):
        plot_mesh(ax, verts[0], faces[0] + 30)
    plt.close(fig)


def test_plot_voxels_bad_input():
    fig = plt.figure()
    ax = fig.add_subplot(projection="3d")
    with pytest.raises(ValueError, match=r"voxels must be a bool Tensor\[D, H, W\] \(z, y, x\), "
                                         r"got Tensor\[1, 2, 2, 2\]"):
        plot_voxels(ax, torch.ones(1, 2, 2, 2, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"voxels must be a bool Tensor\[D, H, W\] \(z, y, x\) "
                                        r"\(threshold occupancies first, e.g. probs > 0.5\)"):
        plot_voxels(ax, torch.rand(2, 2, 2))
    plt.close(fig)
