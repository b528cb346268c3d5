"""The mesh head: edges of a cube by hand, graph convolution against a dense adjacency
matrix, vert-align against grid_sample, gradchecks, the refinement starts as the identity,
voxel loss against BCE, the head's outputs, losses and meshes, plugged into Mask R-CNN,
bad input."""

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from coursekit.heads.cubify import cubify
from coursekit.heads.mesh import (
    GraphConv,
    MeshHead,
    MeshRefinementStage,
    mesh_edges,
    pack_meshes,
    vert_align,
    voxel_loss,
)
from coursekit.instance.mask_rcnn import build_mask_rcnn
from coursekit.instance.pooler import MultiScaleRoIAlign

F64 = torch.float64


def test_edges_of_a_cube_and_packing():
    verts, faces = cubify(torch.ones(1, 1, 1, 1))
    edges = mesh_edges(faces[0])
    assert edges.shape == (18, 2)  # 12 cube edges + 6 face diagonals
    assert bool((edges[:, 0] < edges[:, 1]).all())
    assert mesh_edges(torch.tensor([[0, 1, 2], [2, 1, 0]])).tolist() == [[0, 1], [0, 2], [1, 2]]
    v, f, mesh = pack_meshes([verts[0], verts[0]], [faces[0], faces[0]])
    assert v.shape == (16, 3) and f.shape == (24, 3)
    assert torch.equal(f[12:], faces[0] + 8) and mesh.tolist() == [0] * 8 + [1] * 8


def test_graph_conv_equals_dense_adjacency():
    g = GraphConv(4, 3).double()
    f = torch.randn(5, 4, dtype=F64)
    edges = torch.tensor([[0, 1], [1, 2], [2, 3], [0, 4]])
    A = torch.zeros(5, 5, dtype=F64)
    A[edges[:, 0], edges[:, 1]] = 1
    A[edges[:, 1], edges[:, 0]] = 1
    expected = g.w0(f) + A @ g.w1(f)  # W0 f_i + sum over neighbours of W1 f_j
    assert_close(g(f, edges), expected)
    f.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x: g(x, edges), (f,))


def test_vert_align_equals_grid_sample(device):
    feats = torch.randn(2, 3, 5, 6, dtype=F64, device=device)
    verts = (torch.rand(7, 3, dtype=F64, device=device) * 2.4 - 1.2)  # some outside the box
    mesh = torch.tensor([0, 1, 1, 0, 1, 0, 0], device=device)
    ours = vert_align(feats, verts, mesh)  # (7, 3)
    ref = torch.stack([
        F.grid_sample(feats[m:m + 1], verts[i, :2].view(1, 1, 1, 2), mode="bilinear",
                      padding_mode="border", align_corners=False)[0, :, 0, 0]
        for i, m in enumerate(mesh.tolist())])
    assert_close(ours, ref)
    x = feats.clone().requires_grad_(True)
    inside = (torch.rand(4, 3, dtype=F64, device=device) * 1.2 - 0.6).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a, b: vert_align(a, b, mesh[:4]), (x, inside))


def test_refinement_starts_as_identity_and_moves_when_trained():
    stage = MeshRefinementStage(6, hidden=8, num_convs=2)
    verts, faces = cubify(torch.ones(2, 2, 2, 2))
    feats = torch.randn(2, 6, 4, 4)
    out = stage(feats, verts, faces)
    assert [o.shape for o in out] == [v.shape for v in verts]
    assert all(torch.equal(o, v) for o, v in zip(out, verts, strict=True))
    target = [v * 0.5 for v in verts]  # learn to shrink the cube
    opt = torch.optim.Adam(stage.parameters(), 1e-2)
    for _ in range(60):
        loss = sum(((o - t) ** 2).mean() for o, t in zip(stage(feats, verts, faces), target,
                                                         strict=True))
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.01


def test_voxel_loss_equals_bce():
    logits = torch.randn(2, 3, 3, 3, dtype=F64, requires_grad=True)
    target = torch.rand(2, 3, 3, 3) > 0.5
    expected = -(target * F.logsigmoid(logits) + ~target * F.logsigmoid(-logits)).mean()
    assert_close(voxel_loss(logits, target), expected)
    assert torch.autograd.gradcheck(lambda x: voxel_loss(x, target), (logits,))


def small_head(**kwargs):
    return MeshHead(MultiScaleRoIAlign((2, 4, 8), 8), 6, grid=8, dim=8, hidden=8,
                    graph_convs=2, num_points=50, **kwargs)


def test_head_outputs_losses_and_meshes():
    h = small_head()
    x = torch.randn(3, 6, 8, 8)
    out = h(x)
    assert out["voxels"].shape == (3, 8, 8, 8) and out["features"] is x
    voxels = torch.zeros(3, 8, 8, 8, dtype=torch.bool)
    voxels[:, 2:6, 2:6, 2:6] = True
    points = torch.rand(3, 40, 3) - 0.5
    losses = h.loss(out, [], [{"voxels": voxels, "points": points}])
    assert set(losses) == {"loss_voxel", "loss_chamfer"}
    sum(losses.values()).backward()
    assert h.refine.offset.weight.grad is not None and h.predictor.weight.grad is not None
    (verts, faces), (refined, faces2) = h.meshes(h(x))
    assert len(verts) == 3 and all(len(f) >= 12 for f in faces)  # never empty
    assert faces2 is faces and [r.shape for r in refined] == [v.shape for v in verts]
    assert h.predict(out, [], [])["voxels"].shape == (3, 8, 8, 8)


def test_loss_refines_the_predicted_voxels_not_the_true_ones():
    """As at test time: row 0 predicts one cell (8 vertices), row 1 predicts nothing and
    falls back to its true 2 × 2 × 2 block (26 vertices); no gradient reaches the voxels
    through the refinement."""
    h = small_head()
    seen = []
    refine = h.refine.forward
    h.refine.forward = lambda f, v, fc: seen.append([len(t) for t in v]) or refine(f, v, fc)
    x = torch.randn(2, 6, 8, 8)
    logits = torch.full((2, 8, 8, 8), -10.0, requires_grad=True)
    with torch.no_grad():
        logits[0, 1, 1, 1] = 10.0
    voxels = torch.zeros(2, 8, 8, 8, dtype=torch.bool)
    voxels[:, 2:4, 2:4, 2:4] = True
    losses = h.loss({"voxels": logits, "features": x}, [],
                    [{"voxels": voxels, "points": torch.rand(2, 30, 3) - 0.5}])
    assert seen == [[8, 26]]
    losses["loss_chamfer"].backward()
    assert logits.grad is None and h.refine.offset.weight.grad is not None


def test_overfit_voxels():
    torch.manual_seed(0)
    h = small_head()
    x = torch.randn(2, 6, 8, 8)
    voxels = torch.zeros(2, 8, 8, 8, dtype=torch.bool)
    voxels[0, 1:7, 1:7, 1:7] = True
    voxels[1, 3:5] = True
    opt = torch.optim.Adam(h.parameters(), 1e-2)
    for _ in range(80):
        loss = voxel_loss(h(x)["voxels"], voxels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert torch.equal(h(x)["voxels"] > 0, voxels)


def test_plugs_into_mask_rcnn_as_an_extra_head():
    head = MeshHead(MultiScaleRoIAlign((2, 4, 8), 8), 64, grid=8, dim=8, hidden=8,
                    graph_convs=1, num_points=20, labels=[1, 2, 3])
    model = build_mask_rcnn(extra_heads={"mesh": head})
    box = torch.tensor([[10.0, 10, 30, 30]])
    target = {"boxes": box, "labels": torch.tensor([1]),
              "masks": torch.zeros(1, 64, 64, dtype=torch.bool),
              "voxels": torch.ones(1, 8, 8, 8, dtype=torch.bool),
              "points": torch.rand(1, 30, 3) * 2 - 1}
    target["masks"][0, 10:30, 10:30] = True
    model.train()
    losses = model(torch.rand(1, 3, 64, 64), [target])
    assert {"loss_voxel", "loss_chamfer"} <= set(losses)
    model.eval()
    out = model(torch.rand(1, 3, 64, 64))[0]
    assert out["voxels"].shape == (len(out["boxes"]), 8, 8, 8)


def test_bad_input():
    h = small_head()
    with pytest.raises(ValueError, match=r"x must be Tensor\[R, 6, 8, 8\].*Tensor\[1, 6, 4, 4\]"):
        h(torch.zeros(1, 6, 4, 4))
    with pytest.raises(ValueError, match=r"targets must have the shape of logits"):
        voxel_loss(torch.zeros(1, 2, 2, 2), torch.zeros(1, 2, 2, 3))
    with pytest.raises(ValueError, match=r"targets must be .*Tensor\[N, D, H, W\]"):
        voxel_loss(torch.zeros(1, 2, 2, 2), torch.zeros(2, 2, 2))
    with pytest.raises(ValueError, match="mesh must index the 1 RoIs"):
        vert_align(torch.zeros(1, 2, 3, 3), torch.zeros(2, 3), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"verts must be a floating-point Tensor\[V, 3\]"):
        vert_align(torch.zeros(1, 2, 3, 3), torch.zeros(2, 2), torch.tensor([0, 0]))
    with pytest.raises(ValueError, match="mesh 0 faces must index the 8 vertices"):
        verts, faces = cubify(torch.ones(1, 1, 1, 1))
        pack_meshes(verts, [faces[0] + 1])
    with pytest.raises(ValueError, match="targets voxels must have an occupied cell"):
        out = h(torch.zeros(1, 6, 8, 8))
        h.loss(out, [], [{"voxels": torch.zeros(1, 8, 8, 8, dtype=torch.bool),
                          "points": torch.zeros(1, 5, 3)}])


def test_graph_conv_hand_case_and_bad_input():
    g = GraphConv(1, 1).double()
    with torch.no_grad():
        g.w0.weight.fill_(2.0)
        g.w1.weight.fill_(1.0)
        g.w0.bias.zero_()
        g.w1.bias.zero_()
    f = torch.tensor([[1.0], [10.0], [100.0]], dtype=F64)
    # path 0 - 1 - 2: f_i' = 2 f_i + sum of the neighbours
    assert g(f, torch.tensor([[0, 1], [1, 2]])).flatten().tolist() == [12.0, 121.0, 210.0]
    with pytest.raises(ValueError, match=r"f must be a floating-point Tensor\[V, 1\] "
                                         r"\(in_features\), got Tensor\[3, 2\]"):
        g(f.repeat(1, 2), torch.tensor([[0, 1]]))
    with pytest.raises(TypeError, match="f must be a floating-point"):
        g(f.long(), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match=r"edges must hold vertex indices in \[0, 3\) \(the rows "
                                         r"of f\), got values from 0 to 3"):
        g(f, torch.tensor([[0, 3]]))
    with pytest.raises(ValueError, match=r"edges must hold vertex indices in \[0, 3\)"):
        g(f, torch.tensor([[-1, 2]]))
    with pytest.raises(ValueError, match=r"edges must be an int64 Tensor\[E, 2\], "
                                         r"got Tensor\[1, 3\]"):
        g(f, torch.tensor([[0, 1, 2]]))
    with pytest.raises(TypeError, match="edges must be an int64"):
        g(f, torch.tensor([[0.0, 1.0]]))


def test_mesh_edges_bad_input():
    with pytest.raises(ValueError, match=r"faces must be an int64 Tensor\[F, 3\], "
                                         r"got Tensor\[2, 4\]"):
        mesh_edges(torch.zeros(2, 4, dtype=torch.long))
    with pytest.raises(TypeError, match="faces must be an int64"):
        mesh_edges(torch.zeros(2, 3))
    with pytest.raises(ValueError, match="faces must hold vertex indices >= 0"):
        mesh_edges(torch.tensor([[0, 1, -1]]))
    assert mesh_edges(torch.zeros(0, 3, dtype=torch.long)).shape == (0, 2)


def test_refinement_stage_gradcheck():
    torch.manual_seed(0)
    stage = MeshRefinementStage(3, hidden=4, num_convs=2).double()
    torch.nn.init.normal_(stage.offset.weight, std=0.3)  # trained: the offset is no longer 0
    verts, faces = cubify(torch.ones(2, 1, 1, 1, dtype=F64))
    verts = [verts[0] * 0.6, verts[1] * 0.4 + 0.1]  # inside the box: vert-align is smooth there
    feats = torch.randn(2, 3, 4, 4, dtype=F64, requires_grad=True)
    v0, v1 = (v.clone().requires_grad_(True) for v in verts)

    def refined(x, a, b):
        return torch.cat(stage(x, [a, b], faces))

    assert torch.autograd.gradcheck(refined, (feats, v0, v1))


def test_refinement_stage_bad_input():
    stage = MeshRefinementStage(6, hidden=8, num_convs=1)
    verts, faces = cubify(torch.ones(1, 1, 1, 1))
    with pytest.raises(ValueError, match=r"features must be Tensor\[R, 6, S, S\] \(in_channels\)"):
        stage(torch.zeros(1, 5, 4, 4), verts, faces)
    with pytest.raises(ValueError, match=r"verts must hold one mesh per RoI \(2\), got 1"):
        stage(torch.zeros(2, 6, 4, 4), verts, faces)
    with pytest.raises(TypeError, match="verts must be a list"):
        stage(torch.zeros(1, 6, 4, 4), verts[0], faces)


def test_graph_conv_edges_must_be_an_integer_matrix():
    from coursekit.heads.mesh import GraphConv

    conv = GraphConv(3, 2)
    f = torch.zeros(4, 3)
    with pytest.raises(TypeError, match="edges must be an int64 Tensor"):
        conv(f, torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"edges must be an int64 Tensor\[E, 2\]"):
        conv(f, torch.tensor([0, 1]))
