"""cubify: hand cases (counts, coordinates, winding), closed and consistently oriented
meshes checked with trimesh, no face between two occupied cells on random grids, bad input."""

import pytest
import torch
import trimesh

from coursekit.heads.cubify import FACE_DIRECTIONS, cubify, exposed_faces, is_closed


def grid(shape, cells):
    v = torch.zeros(1, *shape)
    for c in cells:
        v[(0, *c)] = 1.0
    return v


def as_trimesh(verts, faces):
    return trimesh.Trimesh(verts.double().numpy(), faces.numpy(), process=False)


HAND = [
    ("one cell", grid((1, 1, 1), [(0, 0, 0)]), 8, 12),
    ("two face-adjacent cells", grid((1, 1, 2), [(0, 0, 0), (0, 0, 1)]), 12, 20),
    ("2x2x2 block", torch.ones(1, 2, 2, 2), 26, 48),
]


@pytest.mark.parametrize("name, voxels, n_verts, n_faces", HAND)
def test_hand_counts_closed_and_outward(name, voxels, n_verts, n_faces):
    verts, faces = cubify(voxels)
    assert (len(verts[0]), len(faces[0])) == (n_verts, n_faces)
    mesh = as_trimesh(verts[0], faces[0])
    assert mesh.is_watertight and mesh.is_winding_consistent
    assert is_closed(faces[0])
    assert not is_closed(faces[0][1:])  # a hole
    flipped = faces[0].clone()
    flipped[0] = flipped[0, [0, 2, 1]]
    assert not is_closed(flipped)  # one face wound the wrong way
    # outward winding: the enclosed volume is positive and equals the cells' volume
    cell = 8.0 / voxels[0].numel()  # the grid fills [-1, 1]^3
    assert mesh.volume == pytest.approx(cell * float(voxels.sum()))


def test_one_cell_is_the_cube_corners_wound_outwards():
    verts, faces = cubify(torch.ones(1, 1, 1, 1))
    corners = {tuple(v) for v in verts[0].tolist()}
    assert corners == {(x, y, z) for x in (-1.0, 1.0) for y in (-1.0, 1.0) for z in (-1.0, 1.0)}
    tri = verts[0][faces[0]]  # (12, 3, 3)
    normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    centre = tri.mean(1)
    assert bool(((normal * centre).sum(1) > 0).all())  # every normal points away from 0
    # each face is axis-aligned: its normal is along the axis where its corners agree
    assert bool((normal.abs().max(1).values == normal.abs().sum(1)).all())


def test_coordinates_follow_the_grid_axes():
    # one occupied cell at (z, y, x) = (0, 1, 2) of a 2 x 3 x 4 grid: x in [0, 0.5] etc.
    verts, _ = cubify(grid((2, 3, 4), [(0, 1, 2)]))
    v = verts[0]
    assert v[:, 0].min() == 0.0 and v[:, 0].max() == 0.5  # x: cells of width 2/4
    assert torch.allclose(v[:, 1].min(), torch.tensor(-1 / 3)) and torch.allclose(
        v[:, 1].max(), torch.tensor(1 / 3))  # y: cells of height 2/3
    assert v[:, 2].min() == -1.0 and v[:, 2].max() == 0.0  # z: cells of depth 1


def directed_edges(faces):
    e = torch.cat([faces[:, [0, 1]], faces[:, [1, 2]], faces[:, [2, 0]]])
    return e


@pytest.mark.parametrize("seed", range(4))
def test_random_grids_have_no_interior_faces_and_balanced_edges(seed):
    g = torch.Generator().manual_seed(seed)
    voxels = torch.rand(2, 4, 5, 3, generator=g)
    occ = voxels > 0.5
    verts, faces = cubify(voxels)
    for n in range(2):
        tri = verts[n][faces[n]].double()
        normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        centre = tri.mean(1)
        size = torch.tensor([3, 5, 4], dtype=torch.float64)  # cells along x, y, z
        inside = centre - normal / normal.norm(dim=1, keepdim=True) * (1 / size)
        outside = centre + normal / normal.norm(dim=1, keepdim=True) * (1 / size)

        def cell_occupied(p, size=size, grid=occ[n]):
            idx = torch.floor((p + 1) / 2 * size).long()  # (F, 3) x, y, z cells
            ok = ((idx >= 0) & (idx < size.long())).all(1)
            out = torch.zeros(len(p), dtype=torch.bool)
            i = idx[ok]
            out[ok] = grid[i[:, 2], i[:, 1], i[:, 0]]
            return out

        assert bool(cell_occupied(inside).all())  # behind each face: an occupied cell
        assert not bool(cell_occupied(outside).any())  # in front: empty (no interior face)
        # closed and consistently oriented: every directed edge appears as often reversed
        e = directed_edges(faces[n])
        key = e[:, 0] * 10_000 + e[:, 1]
        rev = e[:, 1] * 10_000 + e[:, 0]
        assert torch.equal(torch.sort(key).values, torch.sort(rev).values)
        assert is_closed(faces[n])
        # and as many triangles as twice the exposed faces; vertices shared (no duplicates)
        assert len(faces[n]) == 2 * int(exposed_faces(occ[n:n + 1]).sum())
        assert len(torch.unique(verts[n], dim=0)) == len(verts[n])


def test_a_solid_ball_is_watertight():
    c = (torch.arange(8) + 0.5) / 4 - 1
    ball = (c.view(8, 1, 1) ** 2 + c.view(1, 8, 1) ** 2 + c.view(1, 1, 8) ** 2) <= 0.8
    verts, faces = cubify(ball[None].float())
    mesh = as_trimesh(verts[0], faces[0])
    assert mesh.is_watertight and mesh.is_winding_consistent and mesh.volume > 0


def test_threshold_and_dtypes(device):
    voxels = torch.tensor([[[[0.2, 0.5, 0.9]]]], device=device, dtype=torch.float64)
    verts, faces = cubify(voxels, threshold=0.5)  # > 0.5: only the last cell
    assert (len(verts[0]), len(faces[0])) == (8, 12)
    assert verts[0].dtype == torch.float64 and verts[0].device.type == torch.device(device).type
    assert faces[0].dtype == torch.int64
    verts, faces = cubify(voxels, threshold=0.1)
    assert (len(verts[0]), len(faces[0])) == (16, 28)
    verts, faces = cubify(voxels > 0.8)  # bool grids: True is occupied
    assert (len(verts[0]), len(faces[0])) == (8, 12) and verts[0].dtype == torch.float32


def test_empty_grid_gives_an_empty_mesh():
    verts, faces = cubify(torch.zeros(2, 3, 3, 3))
    assert [v.shape for v in verts] == [(0, 3), (0, 3)]
    assert [f.shape for f in faces] == [(0, 3), (0, 3)]


def test_exposed_faces_directions():
    occ = torch.zeros(1, 1, 1, 2, dtype=torch.bool)
    occ[..., 0] = True  # one cell with an empty neighbour at +x
    e = exposed_faces(occ)[:, 0, 0, 0, 0]  # (6,) faces of the cell
    assert e.tolist() == [True] * 6
    occ[..., 1] = True
    e = exposed_faces(occ)[:, 0, 0, 0]  # (6, 2)
    plus_x, minus_x = FACE_DIRECTIONS.index((0, 1)), FACE_DIRECTIONS.index((0, -1))
    assert e[plus_x].tolist() == [False, True] and e[minus_x].tolist() == [True, False]


@pytest.mark.parametrize("voxels, err, match", [
    (torch.zeros(3, 3, 3), ValueError, r"voxels must be .*Tensor\[N, D, H, W\].*Tensor\[3, 3, 3\]"),
    (torch.zeros(1, 2, 2, 2, dtype=torch.long), TypeError, "voxels must be .*int64"),
    ([[1.0]], TypeError, "voxels must be"),
])
def test_bad_voxels(voxels, err, match):
    with pytest.raises(err, match=match):
        cubify(voxels)


def test_bad_threshold():
    with pytest.raises(TypeError, match="threshold must be a float"):
        cubify(torch.zeros(1, 1, 1, 1), threshold="0.5")
