"""Continuous surface embeddings (CSE): a vector per surface point, a vector per pixel.

Lecture: *Neverova et al., Continuous Surface Embeddings* (NeurIPS 2020). DensePose's
charts cut the body into parts, each with its own ``(U, V)`` square, so a point's
"address" jumps at every seam and a new body model needs new charts. CSE instead gives
every **vertex** ``k`` of a template surface a learnable vector ``v_k`` in ``R^D`` and
trains a head to output a vector ``e`` in the same space for every **pixel**. The pixel's
surface point is the vertex whose vector is closest:

    p(k | e) = softmax_k( -||e - v_k||^2 / temperature ),      vertex(e) = argmin_k ||e - v_k||

and the loss at an annotated point with true vertex ``k*`` is the cross-entropy
``-log p(k* | e)`` (``cse_loss``, mean over points; Detectron2's ``EmbeddingLoss`` with
``temperature = EMBEDDING_DIST_GAUSS_SIGMA``).

Here the template is ShapesWorld's own body model (``coursekit.data.persons``) in a
canonical pose, arms and legs spread, height 1 (``body_template``): vertices on a grid of
each part's chart, their positions in body coordinates, and the Euclidean distances
between those positions as the surface distance (the paper uses geodesic distances on a
3D mesh; a flat front-facing body makes the two close). Correspondences between two
persons go through the template (``transfer_texture``); ``correspondence_accuracy``
counts predicted vertices within a radius of the truth, beside ``chance_accuracy``.
Tested in tests/densepose/test_cse.py.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit.data.persons import DRAW_PARTS, HEAD_PART, HEAD_RADIUS, LIMBS, person_joints
from coursekit.data.persons import person_segments as _person_segments
from coursekit.validators import (
    describe,
    positive_int,
    require_dim,
    require_floating,
    require_integer,
    shape_str,
)

__all__ = ["CANONICAL_POSE", "BodyTemplate", "SurfaceEmbedding", "body_template",
           "chance_accuracy", "correspondence_accuracy", "cse_loss", "nearest_vertices",
           "squared_distances", "transfer_texture"]

# upper arms 0.9 rad out from straight down, legs 0.2 rad out, elbows and knees straight
CANONICAL_POSE = (0.9, 0.9, 0.0, 0.0, 0.2, 0.2, 0.0, 0.0)
CHUNK = 4096  # rows of pixels per block when comparing with every vertex


@dataclass
class BodyTemplate:
    """The template surface: ``V`` vertices of the canonical body (``body_template``).

    ``positions`` float64 Tensor[V, 2] (x, y) in body heights, pelvis at 0; ``parts``
    int64 Tensor[V] (1..10); ``uv`` float64 Tensor[V, 2], the vertex's chart coordinates;
    ``segments`` float64 Tensor[10, 6], the canonical capsules (``person_segments`` rows,
    indexed by ``part_row[part]``).
    """

    positions: Tensor
    parts: Tensor
    uv: Tensor
    segments: Tensor
    spacing: float

    def __len__(self) -> int:
        return len(self.positions)

    def distances(self) -> Tensor:
        """float64 Tensor[V, V]: the body-coordinate distance between every two vertices."""
        diff = self.positions[:, None, :] - self.positions[None, :, :]  # (V, V, 2)
        return torch.linalg.vector_norm(diff, dim=-1)

    def chart_to_body(self, parts: Tensor, uv: Tensor) -> Tensor:
        """Body-coordinate positions Tensor[N, 2] of chart points ``(parts [N], uv [N, 2])``.

        The inverse of ``coursekit.data.persons.part_uv`` on the canonical capsule of each
        part: along the part ``t = U L`` (the head: ``t = (2U - 1) r``), across it
        ``s = (2V - 1) r``, position ``a + t d + s (d_y, -d_x)``.
        """
        require_integer(parts, "parts", "an int64 Tensor[N] of part indices 1..10")
        require_floating(uv, "uv", "a float Tensor[N, 2] (U, V)")
        if parts.dim() != 1 or uv.shape != (len(parts), 2):
            raise ValueError(f"parts, uv must be Tensor[N], Tensor[N, 2], got "
                             f"{shape_str(parts)}, {shape_str(uv)}")
        if len(parts) and (int(parts.min()) < 1 or int(parts.max()) > 10):
            raise ValueError(f"parts must hold body parts 1..10, got values from "
                             f"{int(parts.min())} to {int(parts.max())}")
        row = torch.tensor(_PART_ROW, device=parts.device)[parts]  # (N,)
        seg = self.segments.to(uv.device)[row]  # (N, 6)
        ax, ay, dx, dy, length, r = seg.unbind(-1)
        u, v = uv.double().unbind(-1)
        t = torch.where(parts == HEAD_PART, (2 * u - 1) * r, u * length)
        s = (2 * v - 1) * r
        return torch.stack([ax + t * dx + s * dy, ay + t * dy - s * dx], dim=-1)

    def nearest_vertex(self, parts: Tensor, uv: Tensor) -> Tensor:
        """int64 Tensor[N]: the vertex of the same part nearest to each chart point.

        This turns DensePose's ``(I, U, V)`` annotations into CSE's target vertices.
        """
        pos = self.chart_to_body(parts, uv)  # (N, 2)
        verts = self.positions.to(pos.device)
        out = []
        for start in range(0, len(pos), CHUNK):
            d = torch.cdist(pos[start:start + CHUNK], verts)  # (n, V)
            other = parts[start:start + CHUNK, None] != self.parts.to(parts.device)[None]
            out.append(d.masked_fill(other, math.inf).argmin(1))
        return torch.cat(out) if out else parts.new_zeros(0)


_PART_ROW = [0] * 11  # part index -> row of person_segments (DRAW_PARTS order)
for _row, _part in enumerate(DRAW_PARTS):
    _PART_ROW[_part] = _row


def body_template(spacing: float = 0.03) -> BodyTemplate:
    """ShapesWorld's body in ``CANONICAL_POSE`` (height 1), with vertices every ~``spacing``.

    Each part's ``(U, V)`` square gets a grid of cell centres, ``round(length / spacing)``
    along and ``round(2 r / spacing)`` across (at least 2 each); the head keeps the cells
    of its ``round(2 r / spacing)``-square grid that fall inside its disk. With the default
    0.03 that is 248 vertices.
    """
    if isinstance(spacing, bool) or not isinstance(spacing, numbers.Real) or not spacing > 0:
        raise ValueError(f"spacing must be a number > 0, got {spacing!r}")
    h = torch.ones(1, dtype=torch.float64)
    joints = person_joints(h, torch.tensor([CANONICAL_POSE], dtype=torch.float64))
    radii = torch.tensor([[HEAD_RADIUS] + [r for *_, r in LIMBS]], dtype=torch.float64)
    segments = _person_segments(joints, radii)[0]  # (10, 6) in DRAW_PARTS order
    parts, uvs = [], []
    for row, part in enumerate(DRAW_PARTS):
        length, r = float(segments[row, 4]), float(segments[row, 5])
        if part == HEAD_PART:
            n = max(2, round(2 * r / spacing))
            nu = nv = n
        else:
            nu, nv = max(2, round(length / spacing)), max(2, round(2 * r / spacing))
        u = (torch.arange(nu, dtype=torch.float64) + 0.5) / nu
        v = (torch.arange(nv, dtype=torch.float64) + 0.5) / nv
        grid = torch.stack(torch.meshgrid(u, v, indexing="ij"), -1).reshape(-1, 2)  # (nu nv, 2)
        if part == HEAD_PART:
            grid = grid[((2 * grid - 1) ** 2).sum(1) <= 1]
        parts.append(torch.full((len(grid),), part, dtype=torch.int64))
        uvs.append(grid)
    order = torch.cat(parts).argsort(stable=True)  # vertices grouped by part 1..10
    template = BodyTemplate(torch.zeros(0, 2), torch.cat(parts)[order], torch.cat(uvs)[order],
                            segments, float(spacing))
    template.positions = template.chart_to_body(template.parts, template.uv)
    return template


def squared_distances(a: Tensor, b: Tensor) -> Tensor:
    """``||a_i - b_k||^2`` Tensor[N, V] for a Tensor[N, D], b Tensor[V, D] (exact, no expansion)."""
    return (a[:, None, :] - b[None, :, :]).pow(2).sum(-1)


def _check_embeddings(pixel_embeddings: object, vertex_embeddings: object) -> tuple[Tensor, Tensor]:
    require_floating(pixel_embeddings, "pixel_embeddings", "a float Tensor[N, D]")
    require_dim(pixel_embeddings, "pixel_embeddings", 2, "Tensor[N, D]")
    require_floating(vertex_embeddings, "vertex_embeddings", "a float Tensor[V, D]")
    require_dim(vertex_embeddings, "vertex_embeddings", 2, "Tensor[V, D]")
    if pixel_embeddings.shape[1] != vertex_embeddings.shape[1]:
        raise ValueError(f"pixel_embeddings and vertex_embeddings must have the same width D, "
                         f"got pixel_embeddings {shape_str(pixel_embeddings)} and "
                         f"vertex_embeddings {shape_str(vertex_embeddings)}")
    if len(vertex_embeddings) == 0:
        raise ValueError(f"vertex_embeddings must hold at least one vertex, "
                         f"got {shape_str(vertex_embeddings)}")
    return pixel_embeddings, vertex_embeddings


def cse_loss(pixel_embeddings: Tensor, vertex_embeddings: Tensor, target_vertices: Tensor,
             temperature: float = 1.0) -> Tensor:
    """Mean cross-entropy of the softmax over vertices of ``-||e - v||^2 / temperature``.

    Args:
        pixel_embeddings: Tensor[N, D], one embedding per annotated point.
        vertex_embeddings: Tensor[V, D], one per template vertex.
        target_vertices: int64 Tensor[N] in ``[0, V)``, each point's true vertex.
        temperature: > 0; smaller makes the softmax sharper.

    Returns:
        ``mean_n -log softmax_k(-||e_n - v_k||^2 / temperature)[target_n]``, a scalar in the
        embeddings' dtype (computed in at least float32); ``0 * sum`` (still in the graph)
        when ``N = 0``.
    """
    e, v = _check_embeddings(pixel_embeddings, vertex_embeddings)
    require_integer(target_vertices, "target_vertices", f"an int64 Tensor[{len(e)}]")
    if target_vertices.shape != (len(e),):
        raise ValueError(f"target_vertices must be Tensor[{len(e)}] (one per row of "
                         f"pixel_embeddings), got {shape_str(target_vertices)}")
    if len(e) and (int(target_vertices.min()) < 0 or int(target_vertices.max()) >= len(v)):
        raise ValueError(f"target_vertices must be vertex indices in [0, {len(v)}), got values "
                         f"from {int(target_vertices.min())} to {int(target_vertices.max())}")
    if isinstance(temperature, bool) or not isinstance(temperature, numbers.Real):
        raise TypeError(f"temperature must be a float, got {describe(temperature)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature!r}")
    if len(e) == 0:
        return (e.sum() + v.sum()) * 0
    acc = torch.promote_types(torch.promote_types(e.dtype, v.dtype), torch.float32)
    logits = -squared_distances(e.to(acc), v.to(acc)) / temperature  # (N, V)
    return F.cross_entropy(logits, target_vertices.long()).to(e.dtype)


@torch.no_grad()
def nearest_vertices(pixel_embeddings: Tensor, vertex_embeddings: Tensor) -> Tensor:
    """int64 Tensor[N]: for each pixel embedding, the vertex with the closest embedding."""
    e, v = _check_embeddings(pixel_embeddings, vertex_embeddings)
    out = [squared_distances(e[s:s + CHUNK].float(), v.float()).argmin(1)
           for s in range(0, len(e), CHUNK)]
    return torch.cat(out) if out else torch.zeros(0, dtype=torch.int64, device=e.device)


def _check_vertices(vertices: Tensor, name: str, distances: Tensor) -> Tensor:
    require_integer(vertices, name, "an int64 Tensor[N] of vertex indices")
    require_dim(vertices, name, 1, "Tensor[N] of vertex indices")
    V = len(distances)
    if len(vertices) and (int(vertices.min()) < 0 or int(vertices.max()) >= V):
        raise ValueError(f"{name} must be vertex indices in [0, {V}), got values from "
                         f"{int(vertices.min())} to {int(vertices.max())}")
    return vertices


def _check_distances(distances: Tensor) -> Tensor:
    require_floating(distances, "distances", "a float Tensor[V, V] (BodyTemplate.distances)")
    if distances.dim() != 2 or distances.shape[0] != distances.shape[1]:
        raise ValueError(f"distances must be Tensor[V, V], got {shape_str(distances)}")
    return distances


def correspondence_accuracy(pred_vertices: Tensor, true_vertices: Tensor, distances: Tensor,
                            radius: float) -> float:
    """Fraction of points whose predicted vertex lies within ``radius`` of the true one.

    ``distances``: Tensor[V, V] (``BodyTemplate.distances()``); the vertices: int64
    Tensor[N]. NaN when ``N = 0``.
    """
    _check_distances(distances)
    _check_vertices(pred_vertices, "pred_vertices", distances)
    _check_vertices(true_vertices, "true_vertices", distances)
    if pred_vertices.shape != true_vertices.shape:
        raise ValueError(f"pred_vertices must be shaped like true_vertices "
                         f"{shape_str(true_vertices)}, got {shape_str(pred_vertices)}")
    if len(true_vertices) == 0:
        return float("nan")
    d = distances[true_vertices.to(distances.device), pred_vertices.to(distances.device)]
    return float((d <= radius).double().mean())


def chance_accuracy(true_vertices: Tensor, distances: Tensor, radius: float) -> float:
    """``correspondence_accuracy`` of a guess drawn uniformly from all ``V`` vertices.

    For each point, the fraction of vertices within ``radius`` of its true vertex; the mean
    over points (its expectation, computed exactly).
    """
    _check_distances(distances)
    _check_vertices(true_vertices, "true_vertices", distances)
    if len(true_vertices) == 0:
        return float("nan")
    near = (distances <= radius).double().mean(1)  # (V,) chance for each true vertex
    return float(near[true_vertices.to(distances.device)].mean())


def transfer_texture(source_vertices: Tensor, source_colors: Tensor, target_vertices: Tensor,
                     distances: Tensor) -> Tensor:
    """Colours Tensor[N_t, C] for target pixels, carried from source pixels through the template.

    1. each vertex's texture is the mean colour of the source pixels mapped to it
       (``source_vertices`` int64 Tensor[N_s], ``source_colors`` Tensor[N_s, C]);
    2. a vertex no source pixel reached takes the texture of the nearest vertex that has one
       (``distances`` Tensor[V, V]);
    3. each target pixel takes its vertex's texture (``target_vertices`` int64 Tensor[N_t]).
    """
    _check_distances(distances)
    _check_vertices(source_vertices, "source_vertices", distances)
    _check_vertices(target_vertices, "target_vertices", distances)
    require_floating(source_colors, "source_colors", "a float Tensor[N_s, C]")
    if source_colors.dim() != 2 or len(source_colors) != len(source_vertices):
        raise ValueError(f"source_colors must be Tensor[{len(source_vertices)}, C] (one row "
                         f"per source vertex), got {shape_str(source_colors)}")
    if len(source_vertices) == 0:
        raise ValueError("source_vertices must hold at least one pixel")
    V, C = len(distances), source_colors.shape[1]
    dev = source_colors.device
    total = source_colors.new_zeros(V, C).index_add_(0, source_vertices.to(dev), source_colors)
    count = source_colors.new_zeros(V).index_add_(0, source_vertices.to(dev),
                                                  torch.ones_like(source_colors[:, 0]))
    has = count > 0
    texture = total / count.clamp(min=1)[:, None]  # (V, C)
    d = distances.to(dev).masked_fill(~has[None, :], math.inf)  # (V, V): only textured ones
    # a vertex without texture reads its nearest textured vertex; a textured one keeps its own
    # (even when another textured vertex is at distance 0 from it)
    nearest = torch.where(has, torch.arange(V, device=dev), d.argmin(1))
    texture = texture[nearest]
    return texture[target_vertices.to(dev)]


class SurfaceEmbedding(nn.Module):
    """The learnable vertex embeddings ``v_k``: ``SurfaceEmbedding(num_vertices, dim)``.

    ``weight`` Tensor[V, D], initialised from N(0, 1) with a fixed seed (so a fresh model is
    reproducible); ``forward()`` returns it.
    """

    def __init__(self, num_vertices: int, dim: int = 16, seed: int = 0) -> None:
        super().__init__()
        self.num_vertices = positive_int(num_vertices, "num_vertices")
        self.dim = positive_int(dim, "dim")
        g = torch.Generator().manual_seed(seed)
        self.weight = nn.Parameter(torch.randn(num_vertices, dim, generator=g))

    def forward(self) -> Tensor:
        return self.weight

    def extra_repr(self) -> str:
        return f"{self.num_vertices}, {self.dim}"
