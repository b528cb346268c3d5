"""Pictures for lesson 09: captions beside their boxes, voxels and meshes in 3D axes.

* ``draw_captions(ax, image, boxes, captions, labels)``: the image with its boxes in the
  category colours (``coursekit.viz.CATEGORY_COLORS``) and each caption in a column to
  the right, joined to its box by a line (captions never cover the picture).
* ``plot_voxels(ax, voxels)`` and ``plot_mesh(ax, verts, faces)``: matplotlib 3D axes
  (``projection="3d"``); rotatable in JupyterLab with ``%matplotlib widget`` (ipympl),
  static with the inline backend. Axes: x right, y down (image rows), z depth, all in the
  box frame ``[-1, 1]³``.

matplotlib is imported inside the functions. Tested in tests/heads/test_plots.py.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from coursekit.heads.cubify import check_mesh
from coursekit.validators import check_boxes, describe, require_bool, require_dim

__all__ = ["draw_captions", "plot_mesh", "plot_voxels"]


def _colour(label: int) -> tuple[float, float, float]:
    from coursekit.viz import CATEGORY_COLORS

    return tuple(float(c) for c in CATEGORY_COLORS[int(label)])  # type: ignore[return-value]


def draw_captions(ax: Any, image: Tensor, boxes: Tensor, captions: list[str],
                  labels: Tensor | None = None, fontsize: float = 8.0) -> list[Any]:
    """Show ``image`` Tensor[3, H, W] with ``boxes`` Tensor[K, 4] and their ``captions``.

    ``labels``: int64 Tensor[K] category ids (box and text colours); ``None``: white.
    Captions are listed top to bottom in the order of their boxes' centres. Returns the
    text artists (one per caption).
    """
    require_dim(image, "image", 3, "Tensor[3, H, W]")
    boxes = check_boxes(boxes, "boxes")
    if not isinstance(captions, (list, tuple)) or len(captions) != len(boxes):
        raise ValueError(f"captions must be a list with one str per box ({len(boxes)}), got "
                         f"{describe(captions)} of length {len(captions) if isinstance(captions, (list, tuple)) else '-'}")  # noqa: E501
    from matplotlib.patches import Rectangle

    H, W = image.shape[-2:]
    ax.imshow(image.detach().permute(1, 2, 0).clamp(0, 1).cpu().numpy(),
              extent=(0, W, H, 0))
    order = torch.argsort((boxes[:, 1] + boxes[:, 3]).cpu()).tolist()
    step = H / max(1, len(order))
    texts = []
    for slot, k in enumerate(order):
        x1, y1, x2, y2 = boxes[k].tolist()
        colour = _colour(labels[k]) if labels is not None else (1.0, 1.0, 1.0)
        ax.add_patch(Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, edgecolor=colour,
                               linewidth=1.5))
        ty = (slot + 0.5) * step
        ax.plot([x2, W + 2], [(y1 + y2) / 2, ty], color=colour, linewidth=0.8)
        texts.append(ax.text(W + 3, ty, captions[k], va="center", fontsize=fontsize,
                             bbox={"facecolor": colour, "alpha": 0.35, "edgecolor": "none"}))
    ax.set_xlim(0, W * 2.9)
    ax.set_ylim(H, 0)
    ax.axis("off")
    return texts


def plot_voxels(ax: Any, voxels: Tensor, color: Any = (0.55, 0.7, 0.9),
                title: str | None = None) -> Any:
    """Draw occupied cells of ``voxels`` bool Tensor[D, H, W] (z, y, x) on a 3D axis."""
    require_bool(voxels, "voxels", "a bool Tensor[D, H, W] (z, y, x)",
                 " (threshold occupancies first, e.g. probs > 0.5)")
    require_dim(voxels, "voxels", 3, "a bool Tensor[D, H, W] (z, y, x)")
    occ = voxels.cpu().permute(2, 1, 0).numpy()  # (x, y, z) for ax.voxels
    D, H, W = voxels.shape
    import numpy as np

    x, y, z = np.meshgrid(np.linspace(-1, 1, W + 1), np.linspace(-1, 1, H + 1),
                          np.linspace(-1, 1, D + 1), indexing="ij")
    ax.voxels(x, y, z, occ, facecolors=color, edgecolors=(0.2, 0.2, 0.2, 0.3), linewidth=0.3)
    _axes(ax, title)
    return ax


def plot_mesh(ax: Any, verts: Tensor, faces: Tensor, color: Any = (0.95, 0.6, 0.3),
              title: str | None = None, alpha: float = 0.9) -> Any:
    """Draw a triangle mesh (``verts`` Tensor[V, 3], ``faces`` int64 Tensor[F, 3]) on a 3D axis.

    Each triangle is shaded by how much it faces the light (its outward normal), so the
    winding shows: a face wound inwards would look dark.
    """
    check_mesh(verts, faces)
    from mpl_toolkits.mplot3d.art3d import Poly3DCollection

    tri = verts.detach().cpu().double()[faces.cpu()]  # (F, 3, 3)
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    normal = normal / normal.norm(dim=1, keepdim=True).clamp(min=1e-12)
    light = torch.tensor([0.4, -0.5, -0.75], dtype=torch.float64)
    light = light / light.norm()
    shade = 0.35 + 0.65 * (normal @ light).clamp(min=0)  # (F,)
    base = torch.tensor(color[:3], dtype=torch.float64)
    colours = (base[None] * shade[:, None]).clamp(0, 1).numpy()
    poly = Poly3DCollection(tri.numpy(), facecolors=colours, edgecolors=(0, 0, 0, 0.15),
                            linewidths=0.2, alpha=alpha)
    ax.add_collection3d(poly)
    _axes(ax, title)
    return poly


def _axes(ax: Any, title: str | None) -> None:
    ax.set_xlim(-1, 1)
    ax.set_ylim(-1, 1)
    ax.set_zlim(-1, 1)
    ax.set_box_aspect((1, 1, 1))
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("z")
    ax.view_init(elev=-150, azim=-60)  # y pointing down, as in the image
    ax.tick_params(labelsize=6)
    if title:
        ax.set_title(title, fontsize=9)
