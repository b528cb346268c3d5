"""Chamfer distance: a hand case, random clouds against the brute-force loop (float64),
padded clouds with lengths, gradcheck; points sampled on a mesh lie on it; bad input."""

import pytest
import torch
from torch.testing import assert_close

from coursekit.heads.chamfer import (
    chamfer_distance,
    chamfer_distance_loop,
    sample_points_from_meshes,
)
from coursekit.heads.cubify import cubify

F64 = torch.float64


def test_hand_case():
    x = torch.tensor([[[0.0, 0, 0], [2.0, 0, 0]]])
    y = torch.tensor([[[0.0, 1, 0]]])
    # x -> y: (1 + 5) / 2 = 3; y -> x: 1 (nearest is the origin); total 4
    assert chamfer_distance(x, y).item() == pytest.approx(4.0)
    assert chamfer_distance(x, x).item() == 0.0


@pytest.mark.parametrize("N, P, Q", [(1, 5, 7), (3, 9, 4), (2, 1, 6)])
def test_random_equals_brute_force(N, P, Q, device):
    x = torch.randn(N, P, 3, dtype=F64)
    y = torch.randn(N, Q, 3, dtype=F64)
    ours = chamfer_distance(x.to(device), y.to(device))
    assert ours.device.type == torch.device(device).type and ours.dtype == F64
    assert_close(ours.cpu(), torch.as_tensor(chamfer_distance_loop(x, y), dtype=F64))


def test_lengths_equal_cropped_clouds():
    x, y = torch.randn(2, 6, 3, dtype=F64), torch.randn(2, 5, 3, dtype=F64)
    xl, yl = torch.tensor([4, 6]), torch.tensor([5, 2])
    both = chamfer_distance(x, y, xl, yl)
    one = [chamfer_distance(x[i:i + 1, :xl[i]], y[i:i + 1, :yl[i]]) for i in range(2)]
    assert_close(both, (one[0] + one[1]) / 2)


def test_blocks_give_the_same_value(monkeypatch):
    import coursekit.heads.chamfer as module

    x, y = torch.randn(1, 50, 3, dtype=F64), torch.randn(1, 30, 3, dtype=F64)
    whole = chamfer_distance(x, y)
    monkeypatch.setattr(module, "_CHUNK", 7)  # many blocks of x's points
    assert_close(chamfer_distance(x, y), whole)


def test_gradcheck():
    x = torch.randn(2, 5, 3, dtype=F64, requires_grad=True)
    y = torch.randn(2, 4, 3, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(chamfer_distance, (x, y))


def test_float32_sums():
    x, y = torch.randn(1, 20, 3), torch.randn(1, 10, 3)
    assert_close(chamfer_distance(x, y).double(), chamfer_distance(x.double(), y.double()),
                 rtol=1e-5, atol=1e-6)


def test_sampled_points_lie_on_the_mesh_and_follow_the_vertices():
    verts, faces = cubify(torch.ones(1, 1, 1, 1, dtype=F64))  # the cube [-1, 1]^3
    g = torch.Generator().manual_seed(0)
    v = verts[0].clone().requires_grad_(True)
    p = sample_points_from_meshes(v, faces[0], 500, g)
    assert p.shape == (500, 3)
    on_surface = (p.detach().abs().max(1).values - 1).abs() < 1e-12
    assert bool(on_surface.all())
    # uniform over the 6 equal faces: each side gets about 1/6 of the points
    side = p.detach().abs().argmax(1) * 2 + (p.detach().gather(1, p.detach().abs().argmax(
        1, keepdim=True))[:, 0] > 0).long()
    counts = torch.bincount(side, minlength=6).double() / 500
    assert bool(((counts - 1 / 6).abs() < 0.07).all())
    p.sum().backward()  # differentiable in the vertices: barycentric weights sum to 1
    assert_close(v.grad.sum(0), torch.full((3,), 500.0, dtype=F64))
    # the same generator seed gives the same points
    again = sample_points_from_meshes(verts[0], faces[0], 500, torch.Generator().manual_seed(0))
    assert torch.equal(again, p.detach())


def test_bad_input():
    x = torch.zeros(2, 3, 3)
    with pytest.raises(ValueError, match=r"x must be .*Tensor\[N, P, D\].*Tensor\[3, 3\]"):
        chamfer_distance(torch.zeros(3, 3), x)
    with pytest.raises(ValueError, match="same N and D"):
        chamfer_distance(x, torch.zeros(1, 3, 3))
    with pytest.raises(TypeError, match="y must be a floating-point"):
        chamfer_distance(x, torch.zeros(2, 3, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="x_lengths must be"):
        chamfer_distance(x, x, x_lengths=torch.tensor([0, 3]))
    with pytest.raises(TypeError, match="y_lengths must be"):
        chamfer_distance(x, x, y_lengths=[3, 3])
    verts, faces = cubify(torch.ones(1, 1, 1, 1))
    with pytest.raises(ValueError, match="faces must index the 8 vertices"):
        sample_points_from_meshes(verts[0], faces[0] + 5, 10)
    with pytest.raises(ValueError, match="num_samples"):
        sample_points_from_meshes(verts[0], faces[0], 0)
    with pytest.raises(ValueError, match="zero area"):
        sample_points_from_meshes(torch.zeros(8, 3), faces[0], 10)


def test_sample_points_from_meshes_gradcheck():
    """The points are a fixed barycentric mix of their face's corners (the face choice and
    the weights come from the generator), so they are differentiable in the vertices."""
    verts = torch.tensor([[0.0, 0, 0], [1.2, 0.1, 0], [0.2, 0.9, 0.1], [0.3, 0.2, 1.1]],
                         dtype=F64, requires_grad=True)
    faces = torch.tensor([[0, 2, 1], [0, 1, 3], [1, 2, 3], [0, 3, 2]])  # a tetrahedron

    def points(v):
        return sample_points_from_meshes(v, faces, 12, torch.Generator().manual_seed(3))

    assert torch.autograd.gradcheck(points, (verts,))
