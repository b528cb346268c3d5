"""Graders for lesson 09 (more heads): cubify counts, a buggy cubify, the Chamfer distance.

* ``check_cubify_counts(answers)``: "predict before you run" — the number of vertices and
  triangles ``cubify`` gives for the shapes of ``CUBIFY_PUZZLES``, compared with the
  measurement.
* ``check_cubify_bug(grid, axis)``: "find the bug" — ``cubify_buggy`` is ``cubify`` with
  one wrong line; the student gives a voxel grid on which its mesh differs from
  ``cubify``'s and names the axis (``"x"``, ``"y"`` or ``"z"``) whose faces it gets wrong.
* ``check_chamfer(fn)``: the student's Chamfer distance against ``chamfer_distance``.

Each check prints one verdict line (✅ / ❌ with a hint) and returns whether it passed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.exercises.verdict import report, run_student
from coursekit.heads.chamfer import chamfer_distance
from coursekit.heads.cubify import FACE_DIRECTIONS, cubify, mesh_from_faces
from coursekit.validators import describe, shape_str

__all__ = ["CUBIFY_PUZZLES", "check_chamfer", "check_cubify_bug", "check_cubify_counts",
           "cubify_buggy"]


def _grid(shape: tuple[int, int, int], cells: list[tuple[int, int, int]]) -> Tensor:
    v = torch.zeros(1, *shape)
    for c in cells:
        v[(0, *c)] = 1.0
    return v


# name -> voxels Tensor[1, D, H, W]; cells are (z, y, x)
CUBIFY_PUZZLES: dict[str, Tensor] = {
    "bar": _grid((1, 1, 3), [(0, 0, 0), (0, 0, 1), (0, 0, 2)]),  # 3 cells in a row along x
    "L": _grid((1, 2, 2), [(0, 0, 0), (0, 0, 1), (0, 1, 0)]),  # 3 cells in an L, one layer
    "block minus a corner": torch.ones(1, 2, 2, 2).index_put_(
        (torch.tensor([0]), torch.tensor([1]), torch.tensor([1]), torch.tensor([1])),
        torch.tensor([0.0])),  # the 2 × 2 × 2 block without one corner cell
}


def _counts(voxels: Tensor) -> tuple[int, int]:
    verts, faces = cubify(voxels)
    return len(verts[0]), len(faces[0])


def check_cubify_counts(answers: object) -> bool:
    """Grade ``answers``: ``{name: (vertices, triangles)}`` for every ``CUBIFY_PUZZLES`` name.

    ``answers`` may also be a function returning that dict (called here).
    """
    if callable(answers):
        answers, error = run_student(answers)
        if error:
            return report(False, "cubify counts", error)
    if not isinstance(answers, dict):
        return report(False, f"answers must be a dict {{name: (vertices, triangles)}}, got "
                             f"{describe(answers)}")
    missing = [k for k in CUBIFY_PUZZLES if k not in answers]
    if missing:
        return report(False, f"answers has no prediction for {missing}",
                      "one (vertices, triangles) pair per puzzle")
    for name, voxels in CUBIFY_PUZZLES.items():
        got = answers[name]
        if isinstance(got, (list, tuple)) and len(got) == 2 and \
                all(isinstance(g, int) and not isinstance(g, bool) for g in got):
            pass
        else:
            return report(False, f"answers[{name!r}] must be two ints (vertices, triangles), "
                                 f"got {got!r}")
        want = _counts(voxels)
        if tuple(got) != want:
            v_ok, f_ok = got[0] == want[0], got[1] == want[1]
            wrong = ", ".join(w for w, ok in (("vertices", v_ok), ("triangles", f_ok)) if not ok)
            return report(False, f"{name!r}: cubify measures a different number of {wrong} "
                                 f"than your {tuple(got)}",
                          "vertices: the lattice corners touched by an occupied cell, each once; "
                          "triangles: 2 per square between an occupied and an empty cell")
    return report(True, f"all {len(CUBIFY_PUZZLES)} predictions match cubify's meshes")


def cubify_buggy(voxels: Tensor, threshold: float = 0.5) -> tuple[list[Tensor], list[Tensor]]:
    """``cubify`` with one bug (find it): the neighbour test of one axis looks the wrong way."""
    occ = voxels.bool() if voxels.dtype == torch.bool else voxels > threshold
    pad = F.pad(occ.float(), (1, 1, 1, 1, 1, 1)).bool()
    N, D, H, W = occ.shape
    out = []
    for axis, sign in FACE_DIRECTIONS:
        start = [1, 1, 1]
        start[2 - axis] += -sign if axis == 1 else sign
        nb = pad[:, start[0]:start[0] + D, start[1]:start[1] + H, start[2]:start[2] + W]
        out.append(occ & ~nb)
    dtype = voxels.dtype if voxels.is_floating_point() else torch.float32
    return mesh_from_faces(torch.stack(out), dtype)


def _face_set(verts: Tensor, faces: Tensor) -> set:
    tri = verts[faces]  # (F, 3, 3)
    return {tuple(sorted(tuple(round(float(c), 6) for c in p) for p in t)) for t in tri}


def check_cubify_bug(grid: object, axis: object = None) -> bool:
    """Grade a failing case for ``cubify_buggy``: ``grid`` Tensor[1, D, H, W], ``axis`` a str.

    Passes when ``cubify_buggy(grid)`` emits other triangles than ``cubify(grid)`` and
    ``axis`` names the axis whose faces it gets wrong. ``grid`` may also be a function
    returning ``(grid, axis)`` (called here).
    """
    if callable(grid):
        result, error = run_student(grid)
        if error:
            return report(False, "cubify bug", error)
        if not isinstance(result, tuple) or len(result) != 2:
            return report(False, f"your function must return (grid, axis), got "
                                 f"{describe(result)}")
        grid, axis = result
    if not isinstance(grid, Tensor) or grid.dim() != 4 or grid.shape[0] != 1:
        return report(False, f"grid must be voxels Tensor[1, D, H, W], got {shape_str(grid)}")
    if not (grid.is_floating_point() or grid.dtype == torch.bool):
        return report(False, f"grid must be floating point or bool, got {describe(grid)}")
    good, bad = cubify(grid), cubify_buggy(grid)
    same = _face_set(good[0][0], good[1][0]) == _face_set(bad[0][0], bad[1][0])
    if same:
        return report(False, "on this grid cubify_buggy gives the same mesh as cubify",
                      "a single cell never shows the bug: put two cells side by side, along "
                      "each axis in turn, and compare the triangle counts")
    if axis not in ("x", "y", "z"):
        return report(False, f"axis must be 'x', 'y' or 'z', got {axis!r}")
    if axis != "y":
        return report(False, f"your grid shows the bug, but the faces it gets wrong are not "
                             f"along {axis!r}",
                      "look at which faces differ: their normals point along the faulty axis")
    return report(True, "your grid exposes the bug (an interior face emitted, an outer one "
                        "missing) and the axis is right")


def check_chamfer(fn: Callable) -> bool:
    """Grade ``fn(x, y) -> scalar``: the Chamfer distance of Tensor[N, P, 3] and Tensor[N, Q, 3]."""
    g = torch.Generator().manual_seed(9)
    cases = [
        (torch.tensor([[[0.0, 0, 0]]]), torch.tensor([[[1.0, 2, 2]]])),  # 9 + 9 = 18
        (torch.rand(2, 7, 3, generator=g), torch.rand(2, 5, 3, generator=g)),
    ]
    for x, y in cases:
        want = chamfer_distance(x.double(), y.double())
        got, error = run_student(fn, x.clone(), y.clone())
        if error:
            return report(False, "chamfer", error)
        if not isinstance(got, Tensor) or got.numel() != 1:
            return report(False, f"chamfer should return a scalar tensor, got {describe(got)}")
        got = got.detach().double().reshape(())
        if torch.allclose(got, want, rtol=1e-5, atol=1e-7):
            continue
        d2 = ((x.double()[:, :, None] - y.double()[:, None]) ** 2).sum(-1)
        hints = [
            ((d2.sqrt().min(2).values.mean(1) + d2.sqrt().min(1).values.mean(1)).mean(),
             "use squared distances ||p - q||², not distances"),
            (d2.min(2).values.mean(1).mean(), "add the second term: each q to its nearest p"),
            ((d2.min(2).values.sum(1) + d2.min(1).values.sum(1)).mean(),
             "average each term over its points (1/|P|, 1/|Q|), do not sum"),
        ]
        hint = next((h for v, h in hints if torch.allclose(got, v, rtol=1e-5)),
                    "for each point the squared distance to the nearest point of the other "
                    "cloud; mean per cloud; add both; mean over the batch")
        return report(False, f"chamfer: expected {float(want):.4f}, got {float(got):.4f}", hint)
    return report(True, "chamfer distance matches coursekit.heads.chamfer_distance")
