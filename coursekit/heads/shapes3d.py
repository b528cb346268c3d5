"""ShapesWorld things in 3D: voxel targets for the Mesh R-CNN head.

Lecture: *Mesh R-CNN* predicts a 3D shape per detected object. ShapesWorld's shapes are
flat, so we give each one a 3D body by **extruding** its silhouette along the depth axis
``z`` with a profile that depends on the category::

    circle   -> sphere   occupied where the silhouette is and |z| <= sqrt(1 - x² - y²)
    square   -> cube     occupied where the silhouette is and |z| <= s / w
    triangle -> prism    occupied where the silhouette is and |z| <= 1/2

in the **box frame**: the object's box spans ``x, y ∈ [-1, 1]`` and ``z`` has the same unit
as ``x`` (``s`` is the square's side, ``sqrt(mask area)``, ``w`` the box width, so the cube's
depth equals its side). The silhouette is the thing's mask cropped to the box on a
``G × G`` grid (RoI Align, as Mask R-CNN's mask targets: ``project_masks_on_boxes``, > 0.5);
the target is a bool grid ``[G (z = depth), G (y), G (x)]``, the layout ``cubify`` reads.

``whole_shapes`` picks the things whose silhouette is the whole object: shapes (not
persons, not crowds) whose box touches no other thing's box and not the image border, so
nothing hides a part of them. ``surface_points`` samples the "true" surface: points on
the cubified ``4 G``-resolution target (the staircase is then 4 × finer than the head's).
Tested in tests/heads/test_shapes3d.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.heads._checks import check_scene
from coursekit.heads.chamfer import sample_points_from_meshes
from coursekit.heads.cubify import cubify
from coursekit.instance.targets import project_masks_on_boxes
from coursekit.validators import (
    check_boxes,
    describe,
    positive_int,
    require_bool,
    require_dim,
    require_integer,
    shape_str,
)

__all__ = ["PRISM_HALF_DEPTH", "SHAPE_IDS", "extrude", "surface_points", "voxel_targets",
           "whole_shapes"]

SHAPE_IDS = (4, 5, 6)  # circle, square, triangle (coursekit.data.CATEGORIES)
PRISM_HALF_DEPTH = 0.5


def whole_shapes(scene) -> Tensor:
    """int64 Tensor[K] on the scene's device: rows of ``scene.boxes`` that are whole,
    unoccluded shapes (module docstring)."""
    check_scene(scene)
    boxes = scene.boxes.float().cpu()
    H, W = scene.image.shape[-2:]
    labels, crowd = scene.labels.cpu(), scene.iscrowd.cpu()
    keep = []
    for r in range(len(boxes)):
        if crowd[r] or int(labels[r]) not in SHAPE_IDS:
            continue
        x1, y1, x2, y2 = boxes[r].tolist()
        if x1 <= 0 or y1 <= 0 or x2 >= W or y2 >= H:
            continue
        others = torch.cat([boxes[:r], boxes[r + 1:]])
        touch = ((others[:, 0] <= x2) & (others[:, 2] >= x1) & (others[:, 1] <= y2)
                 & (others[:, 3] >= y1))
        if not bool(touch.any()):
            keep.append(r)
    return torch.tensor(keep, dtype=torch.long, device=scene.boxes.device)


def extrude(silhouettes: Tensor, labels: Tensor, cube_depth: Tensor | None = None) -> Tensor:
    """bool Tensor[K, G, G, G] (z, y, x): the silhouettes extruded by category (docstring).

    Args:
        silhouettes: bool Tensor[K, G, G] (y, x), each shape's mask on the box grid.
        labels: int64 Tensor[K] category ids in ``SHAPE_IDS`` (4 circle, 5 square,
            6 triangle).
        cube_depth: Tensor[K] the half depth ``s / w`` of each square (ignored for the
            others); ``None``: 1.
    """
    require_bool(silhouettes, "silhouettes", "a bool Tensor[K, G, G]")
    require_dim(silhouettes, "silhouettes", 3, "a bool Tensor[K, G, G]")
    K, G, G2 = silhouettes.shape
    if G != G2:
        raise ValueError(f"silhouettes must be square grids Tensor[K, G, G], "
                         f"got {shape_str(silhouettes)}")
    require_dim(labels, "labels", 1, f"an int64 Tensor[{K}] of category ids")
    if labels.shape[0] != K or not bool(torch.isin(labels.cpu(), torch.tensor(SHAPE_IDS)).all()):
        raise ValueError(f"labels must be Tensor[{K}] of shape category ids {SHAPE_IDS}, "
                         f"got {labels.tolist()!r:.80}")
    device = silhouettes.device
    c = (torch.arange(G, device=device, dtype=torch.float32) * 2 + 1) / G - 1  # cell centres
    z, y, x = c.view(G, 1, 1), c.view(1, G, 1), c.view(1, 1, G)
    r2 = x**2 + y**2  # outside the unit disk no z is in the ball: half depth -1
    sphere = torch.where(r2 <= 1, (1 - r2).sqrt(), -1.0).expand(G, G, G)  # (G, G, G)
    depth = torch.ones(K, device=device) if cube_depth is None else cube_depth.to(device).float()
    half = torch.where(
        (labels == 4).view(K, 1, 1, 1), sphere,
        torch.where((labels == 5).view(K, 1, 1, 1), depth.view(K, 1, 1, 1),
                    torch.full((), PRISM_HALF_DEPTH, device=device)))  # (K, G, G, G)
    return silhouettes[:, None] & (z.abs() <= half)


def voxel_targets(scene, rows: Tensor, grid: int = 16) -> Tensor:
    """bool Tensor[K, grid, grid, grid]: the 3D targets of ``scene``'s things ``rows``.

    ``rows``: int64 Tensor[K], rows of ``scene.boxes`` that are shapes (categories
    ``SHAPE_IDS``; ``whole_shapes`` picks the unoccluded ones).
    """
    N = check_scene(scene, masks=True)
    grid = positive_int(grid, "grid")
    require_integer(rows, "rows", f"an int64 Tensor[K] of rows of scene.boxes (0..{N - 1})")
    require_dim(rows, "rows", 1, f"an int64 Tensor[K] of rows of scene.boxes (0..{N - 1})")
    if len(rows) and (int(rows.min()) < 0 or int(rows.max()) >= N):
        raise ValueError(f"rows must index the {N} boxes of the scene (0..{N - 1}), got values "
                         f"from {int(rows.min())} to {int(rows.max())}")
    rows = rows.to(scene.boxes.device)
    cats = scene.labels[rows].cpu()
    bad = ~torch.isin(cats, torch.tensor(SHAPE_IDS))
    if bool(bad.any()):
        raise ValueError(f"rows must be shapes (categories {SHAPE_IDS}), got row "
                         f"{int(rows[bad][0])} of category {int(cats[bad][0])}")
    boxes = check_boxes(scene.boxes[rows].float(), "boxes")
    labels = scene.labels[rows]
    masks = scene.masks[rows]
    sil = project_masks_on_boxes(masks, boxes, torch.arange(len(rows), device=masks.device),
                                 grid, aligned=True) > 0.5  # (K, G, G)
    side = masks.flatten(1).sum(1).float().sqrt()
    width = (boxes[:, 2] - boxes[:, 0]).clamp(min=1)
    return extrude(sil, labels, (side / width).clamp(max=1.0))


def surface_points(targets_fine: Tensor, num_points: int,
                   generator: torch.Generator | None = None) -> Tensor:
    """Tensor[K, num_points, 3]: points on the cubified fine targets (the "true" surfaces).

    ``targets_fine``: bool (or occupancy) Tensor[K, D, H, W], e.g. ``voxel_targets`` at a
    finer grid; an empty grid gives zeros.
    """
    expected = "a bool Tensor[K, D, H, W] of voxel targets"
    require_dim(targets_fine, "targets_fine", 4, expected)
    if not (targets_fine.dtype == torch.bool or targets_fine.is_floating_point()):
        raise TypeError(f"targets_fine must be {expected} (or float occupancies), "
                        f"got {describe(targets_fine)}")
    num_points = positive_int(num_points, "num_points")
    verts, faces = cubify(targets_fine)  # float32 points for bool targets, else their dtype
    if len(verts) == 0:
        return torch.zeros(0, num_points, 3, device=targets_fine.device,
                           dtype=torch.float32 if targets_fine.dtype == torch.bool
                           else targets_fine.dtype)
    out = []
    for v, f in zip(verts, faces, strict=True):
        if len(f) == 0:
            out.append(v.new_zeros(num_points, 3))
        else:
            out.append(sample_points_from_meshes(v, f, num_points, generator))
    return torch.stack(out)
