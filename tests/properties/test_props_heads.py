"""Property tests (hypothesis) for coursekit.heads: cubify, the Chamfer distance, the mesh
helpers (edges, packing, vert_align), the voxel loss and the caption tokens.

Drawn: occupancy grids of 1..4 cells a side (empty, full, one cell thick, random), point clouds
of 1..20 points, padded clouds, meshes (0 vertices included), RoI feature maps (1 x 1
included), vertices outside the box, token sentences of 0..MAX_LEN words; dtypes. References:
cubify's faces, corners, edges and orientation recounted cell by cell in Python (and the
enclosed volume, with trimesh's as well where trimesh is importable), the literal
``chamfer_distance_loop`` in float64, ``F.grid_sample`` and
``F.binary_cross_entropy_with_logits``. Checked on every device this machine has; seeded
(``derandomize=True``).
"""

import itertools
from collections import Counter

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds
from torch.testing import assert_close

from coursekit.heads import (
    chamfer_distance,
    chamfer_distance_loop,
    cubify,
    decode,
    encode,
    exposed_faces,
    mesh_edges,
    pack_meshes,
    vert_align,
    voxel_loss,
)
from coursekit.heads.captions import BOS, EOS, MAX_LEN, PAD, VOCAB, WORDS
from coursekit.heads.cubify import FACE_DIRECTIONS

try:
    import trimesh
except ImportError:  # the volume is still checked by our own formula
    trimesh = None


# ------------------------------------------------------------------------------------ cubify
def random_grid(seed, N, shape, kind):
    """bool Tensor[N, D, H, W]: empty, full, one cell thick along a random axis, or random."""
    g = gen(seed)
    if kind == "empty":
        return torch.zeros(N, *shape, dtype=torch.bool)
    if kind == "full":
        return torch.ones(N, *shape, dtype=torch.bool)
    occ = torch.rand(N, *shape, generator=g) < float(torch.rand(1, generator=g)) * 0.8 + 0.1
    if kind == "slab":  # a single layer (holes allowed): every cell is on both sides
        axis = int(torch.randint(1, 4, (1,), generator=g))
        layer = int(torch.randint(0, occ.shape[axis], (1,), generator=g))
        keep = torch.zeros_like(occ)
        keep.select(axis, layer).fill_(True)
        occ = occ & keep
    return occ


def reference_quads(occ):
    """The exposed cell faces, by hand: (cell (d, h, w), axis, sign) for an occupied cell
    whose neighbour across the face is empty or outside the grid (axis 0 = x = w)."""
    D, H, W = occ.shape
    quads = []
    for d, h, w in itertools.product(range(D), range(H), range(W)):
        if not occ[d, h, w]:
            continue
        for axis, sign in FACE_DIRECTIONS:
            nb = [w, h, d]
            nb[axis] += sign
            x, y, z = nb
            if not (0 <= x < W and 0 <= y < H and 0 <= z < D) or not occ[z, y, x]:
                quads.append(((w, h, d), axis, sign))
    return quads


def quad_corners(cell, axis, sign):
    """The four lattice corners (x, y, z) of one cell face."""
    other = [a for a in range(3) if a != axis]
    out = set()
    for a, b in itertools.product((0, 1), repeat=2):
        c = list(cell)
        c[axis] += sign > 0
        c[other[0]] += a
        c[other[1]] += b
        out.add(tuple(c))
    return out


def lattice_edges(shape):
    """(p, axis) for every edge p -> p + e_axis of the (W + 1) x (H + 1) x (D + 1) lattice."""
    D, H, W = shape
    for p in itertools.product(range(W + 1), range(H + 1), range(D + 1)):
        for axis in range(3):
            if p[axis] < (W, H, D)[axis]:
                yield p, axis


def occupied(occ, x, y, z):
    D, H, W = occ.shape
    return 0 <= x < W and 0 <= y < H and 0 <= z < D and bool(occ[z, y, x])


def ring_changes(occ, p, axis):
    """How many faces meet along the lattice edge p -> p + e_axis: the occupancy changes
    around the ring of the four cells that share it (0, 2 or 4)."""
    b, c = (a for a in range(3) if a != axis)
    ring = []
    for db, dc in ((-1, -1), (0, -1), (0, 0), (-1, 0)):
        q = list(p)
        q[b] += db
        q[c] += dc
        ring.append(occupied(occ, *q))
    return sum(ring[i] != ring[i - 1] for i in range(4))


@on_devices
@PROPS
@given(seed=seeds, N=st.integers(1, 2),
       shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
       kind=st.sampled_from(["empty", "full", "slab", "random", "random"]),
       dtype=st.sampled_from([torch.float32, F64, torch.bool]))
def test_cubify_counts_topology_and_orientation(device, seed, N, shape, kind, dtype):
    occ = random_grid(seed, N, shape, kind)
    if dtype == torch.bool:
        voxels = occ
    else:  # probabilities on either side of the threshold
        p = torch.rand(N, *shape, generator=gen(seed + 1), dtype=F64) * 0.45
        voxels = torch.where(occ, 1 - p, p).to(dtype)
    voxels = voxels.to(device)
    verts, faces = cubify(voxels)
    exposed = exposed_faces(occ.to(device))
    assert exposed.shape == (6, N, *shape) and len(verts) == len(faces) == N
    D, H, W = shape
    size = torch.tensor([W, H, D], dtype=F64)
    for n in range(N):
        v, f = verts[n], faces[n]
        assert v.dtype == (torch.float32 if dtype == torch.bool else dtype)
        assert f.dtype == torch.int64 and v.device == f.device == voxels.device
        assert v.shape[1:] == (3,) and f.shape[1:] == (3,)
        quads = reference_quads(occ[n])
        corners = set().union(*(quad_corners(*q) for q in quads)) if quads else set()
        assert int(exposed[:, n].sum()) == len(quads)
        assert len(f) == 2 * len(quads) and len(v) == len(corners)
        if not quads:
            continue
        lattice = (v.cpu().double() + 1) / 2 * size  # back to corner indices
        assert_close(lattice, lattice.round(), rtol=0, atol=1e-5)
        pts = [tuple(int(a) for a in row) for row in lattice.round().long().tolist()]
        assert len(set(pts)) == len(pts) and set(pts) == corners  # merged, no duplicate
        assert bool(((v >= -1) & (v <= 1)).all())
        assert int(f.min()) >= 0 and int(f.max()) < len(v)
        # closed: each directed edge has its reverse; faces per edge = changes around it
        directed = Counter()
        for a, b, c in f.tolist():
            directed.update([(a, b), (b, c), (c, a)])
        assert all(directed[(b, a)] == k for (a, b), k in directed.items())
        undirected = Counter({tuple(sorted(e)): 0 for e in directed})
        for (a, b), k in directed.items():
            undirected[tuple(sorted((a, b)))] += k
        expected = {}
        for a, b in undirected:
            pa, pb = pts[a], pts[b]
            step = [j - i for i, j in zip(pa, pb, strict=True)]
            if sorted(map(abs, step)) == [0, 0, 1]:  # a lattice edge
                axis = [abs(s) for s in step].index(1)
                start = pa if step[axis] > 0 else pb
                expected[(a, b)] = ring_changes(occ[n], start, axis)
            else:  # the diagonal of one square: its two triangles
                assert sorted(map(abs, step)) == [0, 1, 1]
                expected[(a, b)] = 2
        assert dict(undirected) == expected
        # every lattice edge where faces meet is in the mesh
        index = {p: i for i, p in enumerate(pts)}
        for p, axis in lattice_edges(shape):
            if ring_changes(occ[n], p, axis):
                q = tuple(c + (a == axis) for a, c in enumerate(p))
                assert p in index and q in index
                assert tuple(sorted((index[p], index[q]))) in undirected
        # outward: just in front of each triangle is empty, just behind it is solid
        tri = lattice.round()[f.cpu()]  # (F, 3, 3) lattice coordinates
        normal = torch.linalg.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
        normal = normal / normal.norm(dim=1, keepdim=True)
        centre = tri.mean(1)
        for sign, solid in ((1, False), (-1, True)):
            probe = (centre + sign * 0.25 * normal).floor().long().tolist()
            assert all(occupied(occ[n], *c) == solid for c in probe)
        # the enclosed volume (divergence theorem) is the cells' volume
        world = v.cpu().double()[f.cpu()]
        volume = torch.linalg.det(world).sum() / 6
        cells = int(occ[n].sum()) * 8 / (D * H * W)
        assert_close(volume, torch.tensor(cells, dtype=F64), rtol=1e-6, atol=1e-6)
        if trimesh is not None:
            mesh = trimesh.Trimesh(v.cpu().double().numpy(), f.cpu().numpy(), process=False)
            assert mesh.is_winding_consistent
            assert abs(mesh.volume - cells) < 1e-6
            manifold = all(k == 2 for k in undirected.values())
            assert mesh.is_watertight == manifold


# ---------------------------------------------------------------------------------- chamfer
@on_devices
@PROPS
@given(seed=seeds, N=st.integers(1, 2), P=st.integers(1, 20), Q=st.integers(1, 20),
       D=st.sampled_from([1, 2, 3]), dtype=floats)
def test_chamfer_is_the_loop_symmetric_and_zero_on_itself(device, seed, N, P, Q, D, dtype):
    g = gen(seed)
    x = torch.randn(N, P, D, generator=g, dtype=F64)
    y = torch.randn(N, Q, D, generator=g, dtype=F64) * 1.5 + 0.3
    if P == Q and torch.rand(1, generator=g) < 0.2:
        y = x[:, torch.randperm(P, generator=g)]  # the same cloud in another order
    xd, yd = x.to(device, dtype), y.to(device, dtype)
    out = chamfer_distance(xd, yd)
    assert out.shape == () and out.dtype == dtype and out.device == xd.device
    ref = chamfer_distance_loop(xd.double().cpu(), yd.double().cpu())
    tol = 1e-10 if dtype == F64 else 1e-4
    assert_close(out.double().cpu(), torch.as_tensor(ref, dtype=F64), rtol=tol, atol=tol)
    assert out.item() >= 0
    assert_close(chamfer_distance(yd, xd), out, rtol=tol, atol=tol)
    assert_close(chamfer_distance(xd, xd).double().cpu(), torch.zeros((), dtype=F64),
                 rtol=0, atol=tol)


@PROPS
@given(seed=seeds, sizes=st.lists(st.tuples(st.integers(1, 8), st.integers(1, 8)), min_size=1,
                                  max_size=3), dtype=floats)
def test_chamfer_with_lengths_ignores_the_padding(seed, sizes, dtype):
    g = gen(seed)
    P, Q = max(p for p, _ in sizes), max(q for _, q in sizes)
    x = torch.randn(len(sizes), P, 3, generator=g, dtype=F64).to(dtype) * 100  # garbage pad
    y = torch.randn(len(sizes), Q, 3, generator=g, dtype=F64).to(dtype) * 100
    x[:, :, 0] /= 100
    y[:, :, 0] /= 100
    lx = torch.tensor([p for p, _ in sizes])
    ly = torch.tensor([q for _, q in sizes])
    out = chamfer_distance(x, y, lx, ly)
    each = [chamfer_distance(x[i:i + 1, :p], y[i:i + 1, :q]) for i, (p, q) in enumerate(sizes)]
    assert_close(out, torch.stack(each).mean())


@PROPS
@given(seed=seeds, P=st.integers(1, 5), Q=st.integers(1, 5))
def test_chamfer_gradcheck(seed, P, Q):
    g = gen(seed)
    x = torch.randn(1, P, 3, generator=g, dtype=F64, requires_grad=True)
    y = torch.randn(1, Q, 3, generator=g, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(chamfer_distance, (x, y))


# ------------------------------------------------------------------------------ mesh helpers
def random_faces(g, V, F_):
    if V < 3:
        return torch.zeros(0, 3, dtype=torch.long)
    return torch.stack([torch.randperm(V, generator=g)[:3] for _ in range(F_)]) if F_ else \
        torch.zeros(0, 3, dtype=torch.long)


@on_devices
@PROPS
@given(seed=seeds, V=st.integers(0, 8), F_=st.integers(0, 10))
def test_mesh_edges_lists_each_undirected_edge_once(device, seed, V, F_):
    faces = random_faces(gen(seed), V, F_).to(device)
    edges = mesh_edges(faces)
    assert edges.dtype == torch.int64 and edges.device == faces.device and edges.shape[1:] == (2,)
    ref = sorted({tuple(sorted((a, b))) for f in faces.tolist()
                  for a, b in ((f[0], f[1]), (f[1], f[2]), (f[2], f[0]))})
    assert [tuple(e) for e in edges.tolist()] == ref  # sorted, i < j, each once


@on_devices
@PROPS
@given(seed=seeds, N=st.integers(1, 2),
       shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
       kind=st.sampled_from(["empty", "full", "slab", "random"]))
def test_mesh_edges_of_cubify_meshes(device, seed, N, shape, kind):
    # each edge of a cubified surface is in two triangles, or in four where two cells touch
    # along that edge only (the other two around it empty): E = 3F / 2 - (such edges)
    occ = random_grid(seed, N, shape, kind)
    verts, faces = cubify(occ.to(device))
    for n, f in enumerate(faces):
        pinched = sum(ring_changes(occ[n], p, axis) == 4 for p, axis in lattice_edges(shape))
        assert 2 * len(mesh_edges(f)) == 3 * len(f) - 2 * pinched


@on_devices
@PROPS
@given(seed=seeds, sizes=st.lists(st.tuples(st.integers(0, 6), st.integers(0, 5)), min_size=1,
                                  max_size=4), dtype=floats)
def test_pack_meshes_offsets(device, seed, sizes, dtype):
    g = gen(seed)
    verts = [torch.randn(V, 3, generator=g, dtype=F64).to(device, dtype) for V, _ in sizes]
    faces = [random_faces(g, V, F_).to(device) for V, F_ in sizes]
    packed_v, packed_f, mesh = pack_meshes(verts, faces)
    counts = [len(v) for v in verts]
    assert packed_v.shape == (sum(counts), 3) and packed_v.dtype == dtype
    assert packed_f.shape == (sum(len(f) for f in faces), 3) and packed_f.dtype == torch.int64
    assert mesh.dtype == torch.int64 and mesh.tolist() == [i for i, c in enumerate(counts)
                                                           for _ in range(c)]
    start_v = start_f = 0
    for i, (v, f) in enumerate(zip(verts, faces, strict=True)):
        assert torch.equal(packed_v[start_v:start_v + len(v)], v)
        block = packed_f[start_f:start_f + len(f)]
        assert torch.equal(block - start_v, f)
        assert bool((mesh[block] == i).all())  # each face stays in its own mesh
        start_v += len(v)
        start_f += len(f)


@on_devices
@PROPS
@given(seed=seeds, R=st.integers(1, 3), C=st.integers(1, 4),
       S=st.tuples(st.integers(1, 6), st.integers(1, 6)), V=st.integers(0, 10), dtype=floats)
def test_vert_align_is_grid_sample(device, seed, R, C, S, V, dtype):
    g = gen(seed)
    features = torch.randn(R, C, *S, generator=g, dtype=F64).to(device, dtype)
    verts = (torch.rand(V, 3, generator=g, dtype=F64) * 2.6 - 1.3).to(device, dtype)  # some out
    mesh = torch.randint(0, R, (V,), generator=g).to(device)
    out = vert_align(features, verts, mesh)
    assert out.shape == (V, C) and out.dtype == dtype and out.device == features.device
    grid = verts[:, None, None, :2].double()  # (V, 1, 1, 2) (x, y) in [-1, 1] across the box
    ref = F.grid_sample(features[mesh].double(), grid, mode="bilinear", padding_mode="border",
                        align_corners=False)[:, :, 0, 0]
    tol = 1e-10 if dtype == F64 else 1e-5
    assert_close(out.double(), ref, rtol=tol, atol=tol)


@on_devices
@PROPS
@given(seed=seeds, R=st.integers(0, 3),
       shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
       soft=st.booleans(), dtype=floats)
def test_voxel_loss_is_bce_with_logits(device, seed, R, shape, soft, dtype):
    g = gen(seed)
    logits = (torch.randn(R, *shape, generator=g, dtype=F64) * 4).to(device, dtype)
    logits.requires_grad_()
    targets = torch.rand(R, *shape, generator=g, dtype=F64)
    targets = (targets if soft else targets > 0.5).to(device)
    if soft:
        targets = targets.to(dtype)
    loss = voxel_loss(logits, targets)
    assert loss.shape == () and loss.dtype == dtype and loss.device == logits.device
    if R == 0:
        assert loss.item() == 0
    else:
        ref = F.binary_cross_entropy_with_logits(logits.detach().double(), targets.double())
        tol = 1e-12 if dtype == F64 else 1e-5
        assert_close(loss.detach().double(), ref, rtol=tol, atol=tol)
    loss.backward()  # in the graph, even when empty
    assert bool(torch.isfinite(logits.grad).all())


# --------------------------------------------------------------------------------- captions
sentences = st.lists(st.lists(st.sampled_from(WORDS), max_size=MAX_LEN).map(" ".join),
                     max_size=5)


@on_devices
@PROPS
@given(batch=sentences)
def test_encode_decode_round_trip(device, batch):
    tokens = encode(batch, device)
    assert tokens.shape == (len(batch), MAX_LEN + 2) and tokens.dtype == torch.int64
    assert tokens.device.type == device
    assert decode(tokens) == batch
    for row, s in zip(tokens.tolist(), batch, strict=True):
        n = len(s.split())
        assert row[0] == BOS and row[n + 1] == EOS and all(t == PAD for t in row[n + 2:])
        assert all(t not in (PAD, BOS, EOS) for t in row[1:n + 1])


@on_devices
@PROPS
@given(seed=seeds, batch=sentences.filter(len), dtype=floats)
def test_caption_loss_is_the_mean_negative_log_likelihood(device, seed, batch, dtype):
    """Next-word cross-entropy over the non-<pad> targets, recounted as logsumexp - logit."""
    from coursekit.heads import caption_loss

    tokens = encode(batch, device)
    R, L = tokens.shape
    logits = torch.randn(R, L - 1, len(VOCAB), generator=gen(seed), dtype=dtype).to(device)
    loss = caption_loss(logits, tokens)
    assert loss.dtype == dtype and loss.device.type == device
    terms = [float(torch.logsumexp(logits[r, t].double(), 0) - logits[r, t, tokens[r, t + 1]])
             for r in range(R) for t in range(L - 1) if int(tokens[r, t + 1]) != PAD]
    expected = sum(terms) / len(terms)
    tol = 1e-9 if dtype == F64 else 1e-4
    assert abs(float(loss) - expected) <= tol * max(1.0, abs(expected))


@PROPS
@given(pred=sentences, ref=sentences)
def test_caption_accuracy_recounts_words_and_positions(pred, ref):
    """Word accuracy = matching (position, word) pairs over reference words; exact = equal
    sentences; position_accuracy's counts = references with at least i words."""
    from coursekit.heads import caption_accuracy, position_accuracy

    n = min(len(pred), len(ref))
    pred, ref = pred[:n], ref[:n]
    p, r = encode(pred, "cpu"), encode(ref, "cpu")
    out = caption_accuracy(p, r)
    pw, rw = [s.split() for s in pred], [s.split() for s in ref]
    total = sum(map(len, rw))
    right = sum(a == b for ps, rs in zip(pw, rw, strict=True) for a, b in zip(ps, rs))
    assert out["n"] == n
    if total:
        assert abs(out["word"] - right / total) < 1e-12
    if n:
        assert abs(out["exact"] - sum(a == b for a, b in zip(pred, ref, strict=True)) / n) < 1e-12
        assert caption_accuracy(r, r)["exact"] == 1.0
    for i, acc, count in position_accuracy(p, r):
        assert count == sum(len(words) >= i for words in rw) and 0.0 <= acc <= 1.0


def _in_some_triangle(points: torch.Tensor, tri: torch.Tensor, tol: float) -> torch.Tensor:
    """bool Tensor[S]: each point lies in (the plane and the inside of) one of the triangles."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]  # (F, 3)
    v0, v1, v2 = b - a, c - a, points[:, None] - a  # (F, 3), (F, 3), (S, F, 3)
    d00, d01, d11 = (v0 * v0).sum(-1), (v0 * v1).sum(-1), (v1 * v1).sum(-1)
    d20, d21 = (v2 * v0).sum(-1), (v2 * v1).sum(-1)
    den = d00 * d11 - d01 * d01
    v = (d11 * d20 - d01 * d21) / den
    w = (d00 * d21 - d01 * d20) / den
    u = 1 - v - w
    back = u[..., None] * a + v[..., None] * b + w[..., None] * c  # the point rebuilt
    near = (back - points[:, None]).norm(dim=-1) <= tol
    inside = (u >= -tol) & (v >= -tol) & (w >= -tol) & near
    return inside.any(dim=1)


@on_devices
@PROPS
@given(seed=seeds, F_=st.integers(1, 4), S=st.integers(1, 20), dtype=floats)
def test_sampled_points_lie_on_the_mesh(device, seed, F_, S, dtype):
    from coursekit.heads import sample_points_from_meshes

    g = gen(seed)
    verts = torch.randn(3 * F_, 3, generator=g, dtype=dtype).to(device)
    faces = torch.arange(3 * F_, device=device).reshape(F_, 3)
    points = sample_points_from_meshes(verts, faces, S,
                                       generator=torch.Generator(device).manual_seed(seed))
    assert points.shape == (S, 3) and points.dtype == dtype and points.device.type == device
    tol = 1e-9 if dtype == F64 else 1e-3
    assert bool(_in_some_triangle(points.double(), verts[faces].double(), tol).all())
