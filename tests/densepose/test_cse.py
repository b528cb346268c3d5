"""Continuous surface embeddings (coursekit/densepose/cse.py)."""

import math

import pytest
import torch

from coursekit.data.persons import part_uv
from coursekit.densepose.cse import (
    _PART_ROW,
    SurfaceEmbedding,
    body_template,
    chance_accuracy,
    correspondence_accuracy,
    cse_loss,
    nearest_vertices,
    transfer_texture,
)

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def test_cse_loss_hand_values():
    e = torch.tensor([[0.0, 0.0]])
    v = torch.tensor([[0.0, 0.0], [1.0, 0.0]])
    # logits (0, -1): -log(1 / (1 + e^-1))
    assert cse_loss(e, v, torch.tensor([0])).item() == pytest.approx(math.log(1 + math.exp(-1)))
    # the far vertex: -log(e^-1 / (1 + e^-1)) = 1 + log(1 + e^-1)
    assert cse_loss(e, v, torch.tensor([1])).item() == pytest.approx(
        1 + math.log(1 + math.exp(-1)))
    # temperature 0.5 doubles the logits: (0, -2)
    assert cse_loss(e, v, torch.tensor([0]), temperature=0.5).item() == pytest.approx(
        math.log(1 + math.exp(-2)))
    # squared distance: a vertex at distance 2 has logit -4; mean over two points
    e2 = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    v2 = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    one = math.log(1 + math.exp(-4))
    assert cse_loss(e2, v2, torch.tensor([0, 1])).item() == pytest.approx(one, rel=1e-5)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("shape", [(7, 5, 3), (20, 9, 16)])
def test_cse_loss_random_against_a_loop(device, shape):
    N, V, D = shape
    g = torch.Generator().manual_seed(N)
    e = torch.randn(N, D, generator=g, dtype=torch.float64).to(device)
    v = torch.randn(V, D, generator=g, dtype=torch.float64).to(device)
    t = torch.randint(0, V, (N,), generator=g).to(device)
    total = 0.0
    for n in range(N):
        scores = [-sum((e[n, d] - v[k, d]).item() ** 2 for d in range(D)) / 0.7
                  for k in range(V)]
        top = max(scores)
        log_z = top + math.log(sum(math.exp(s - top) for s in scores))
        total += log_z - scores[int(t[n])]
    assert cse_loss(e, v, t, temperature=0.7).item() == pytest.approx(total / N, rel=1e-10)


def test_cse_loss_gradcheck():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(4, 3, generator=g, dtype=torch.float64, requires_grad=True)
    v = torch.randn(6, 3, generator=g, dtype=torch.float64, requires_grad=True)
    t = torch.tensor([0, 5, 2, 2])
    assert torch.autograd.gradcheck(lambda a, b: cse_loss(a, b, t, 0.5), (e, v))


def test_cse_loss_empty_keeps_the_graph():
    e = torch.zeros(0, 3, requires_grad=True)
    v = torch.randn(4, 3, requires_grad=True)
    loss = cse_loss(e, v, torch.zeros(0, dtype=torch.int64))
    loss.backward()
    assert loss.item() == 0 and v.grad is not None


def test_cse_loss_bad_inputs():
    e, v = torch.randn(3, 4), torch.randn(5, 4)
    t = torch.tensor([0, 1, 4])
    with pytest.raises(ValueError, match="same width D.*Tensor\\[3, 4\\].*Tensor\\[5, 8\\]"):
        cse_loss(e, torch.randn(5, 8), t)
    with pytest.raises(ValueError, match="target_vertices must be vertex indices in \\[0, 5\\)"):
        cse_loss(e, v, torch.tensor([0, 1, 5]))
    with pytest.raises(ValueError, match="target_vertices"):
        cse_loss(e, v, torch.tensor([-1, 1, 2]))
    with pytest.raises(ValueError, match="target_vertices must be Tensor\\[3\\]"):
        cse_loss(e, v, torch.tensor([0, 1]))
    with pytest.raises(TypeError, match="target_vertices"):
        cse_loss(e, v, t.float())
    with pytest.raises(TypeError, match="pixel_embeddings"):
        cse_loss(e.long(), v, t)
    with pytest.raises(ValueError, match="pixel_embeddings"):
        cse_loss(e[None], v, t)
    with pytest.raises(ValueError, match="temperature must be > 0"):
        cse_loss(e, v, t, temperature=0.0)


def test_nearest_vertices_hand_case():
    v = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 3.0]])
    e = torch.tensor([[0.9, 0.2], [0.1, 2.0], [-1.0, -1.0]])
    assert nearest_vertices(e, v).tolist() == [1, 2, 0]


def test_body_template_structure():
    t = body_template()
    assert len(t) == 248
    counts = torch.bincount(t.parts, minlength=11).tolist()
    assert counts[0] == 0 and all(c > 0 for c in counts[1:])
    assert (t.parts.diff() >= 0).all()  # grouped by part
    # left and right parts are mirror images in x
    for left, right in [(3, 4), (5, 6), (7, 8), (9, 10)]:
        a, b = t.positions[t.parts == left], t.positions[t.parts == right]
        mirrored = b * torch.tensor([-1.0, 1.0], dtype=b.dtype)
        assert len(a) == len(b) and torch.cdist(a, mirrored).min(1).values.max() < 1e-9
    d = t.distances()
    assert torch.allclose(d, d.T) and (d.diagonal() == 0).all()
    # every vertex is its own nearest vertex
    assert torch.equal(t.nearest_vertex(t.parts, t.uv), torch.arange(len(t)))


def test_chart_to_body_inverts_part_uv():
    t = body_template()
    g = torch.Generator().manual_seed(0)
    for part in range(1, 11):
        seg = t.segments[_PART_ROW[part]]
        ax, ay, dx, dy, length, r = seg.tolist()
        if part == 1:  # the head: points inside its disk
            along = (torch.rand(200, generator=g, dtype=torch.float64) * 2 - 1) * r
            across = (torch.rand(200, generator=g, dtype=torch.float64) * 2 - 1) * r
            keep = along ** 2 + across ** 2 < r ** 2
            along, across = along[keep], across[keep]
        else:  # limbs and torso: inside the capsule's straight part
            along = torch.rand(50, generator=g, dtype=torch.float64) * length
            across = (torch.rand(50, generator=g, dtype=torch.float64) * 2 - 1) * r * 0.99
        X = ax + along * dx + across * dy
        Y = ay + along * dy - across * dx
        parts = torch.full((len(X),), part, dtype=torch.int64)
        uv = part_uv(parts, X, Y, seg.expand(len(X), 6)).T  # (n, 2)
        back = t.chart_to_body(parts, uv)
        assert torch.allclose(back, torch.stack([X, Y], 1), atol=1e-9)


def test_accuracies_hand_case():
    d = torch.tensor([[0.0, 1.0, 3.0], [1.0, 0.0, 2.0], [3.0, 2.0, 0.0]], dtype=torch.float64)
    pred, true = torch.tensor([1, 2, 2, 0]), torch.tensor([0, 0, 2, 2])
    # distances 1, 3, 0, 3 -> within 1.5: 2 of 4
    assert correspondence_accuracy(pred, true, d, 1.5) == pytest.approx(0.5)
    # within 1.5 of vertex 0: {0, 1} = 2/3; of vertex 2: {2} = 1/3
    assert chance_accuracy(true, d, 1.5) == pytest.approx((2 / 3 + 2 / 3 + 1 / 3 + 1 / 3) / 4)


def test_chance_accuracy_matches_random_guessing():
    t = body_template()
    d = t.distances()
    g = torch.Generator().manual_seed(0)
    true = torch.randint(0, len(t), (200,), generator=g)
    guesses = torch.randint(0, len(t), (200, 400), generator=g)
    hits = (d[true[:, None], guesses] <= 0.06).double().mean().item()
    assert hits == pytest.approx(chance_accuracy(true, d, 0.06), abs=0.01)


def test_transfer_texture_hand_case():
    d = torch.tensor([[0.0, 1.0, 5.0], [1.0, 0.0, 4.0], [5.0, 4.0, 0.0]])
    colors = torch.tensor([[1.0, 0.0], [3.0, 0.0], [0.0, 2.0]])
    source = torch.tensor([0, 0, 2])  # vertex 0: mean (2, 0); vertex 2: (0, 2); 1: none
    out = transfer_texture(source, colors, torch.tensor([1, 2, 0]), d)
    # vertex 1 has no source pixel: it takes its nearest textured vertex, 0
    assert out.tolist() == [[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]]


def test_transfer_texture_keeps_the_own_colour_of_coinciding_textured_vertices():
    # regression: vertices 0 and 1 share a position (distance 0); both have source pixels, so
    # each keeps its own mean colour (the nearest-vertex fallback is only for vertex 2)
    d = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 0.0]])
    colors = torch.tensor([[1.0], [5.0]])
    out = transfer_texture(torch.tensor([0, 1]), colors, torch.tensor([0, 1, 2]), d)
    assert out.tolist() == [[1.0], [5.0], [1.0]]


def test_bad_inputs_of_the_helpers():
    d = torch.zeros(3, 3)
    with pytest.raises(ValueError, match="pred_vertices must be vertex indices"):
        correspondence_accuracy(torch.tensor([3]), torch.tensor([0]), d, 1.0)
    with pytest.raises(ValueError, match="distances must be Tensor\\[V, V\\]"):
        chance_accuracy(torch.tensor([0]), torch.zeros(3, 2), 1.0)
    with pytest.raises(ValueError, match="source_colors must be"):
        transfer_texture(torch.tensor([0, 1]), torch.zeros(3, 3), torch.tensor([0]), d)
    with pytest.raises(ValueError, match="parts must hold body parts"):
        body_template().chart_to_body(torch.tensor([0]), torch.zeros(1, 2))
    with pytest.raises(ValueError, match="spacing"):
        body_template(0)
    assert SurfaceEmbedding(5, 3)().shape == (5, 3)


def test_nearest_vertices_random_against_cdist_and_bad_input():
    g = torch.Generator().manual_seed(7)
    e = torch.randn(40, 5, generator=g, dtype=torch.float64)
    v = torch.randn(13, 5, generator=g, dtype=torch.float64)
    assert torch.equal(nearest_vertices(e, v), torch.cdist(e, v).argmin(1))
    assert nearest_vertices(e[:0], v).shape == (0,)
    with pytest.raises(ValueError, match=r"same width D, got pixel_embeddings Tensor\[40, 5\] "
                                         r"and vertex_embeddings Tensor\[13, 4\]"):
        nearest_vertices(e, v[:, :4])
    with pytest.raises(TypeError, match=r"pixel_embeddings must be a float Tensor\[N, D\]"):
        nearest_vertices(e.long(), v)
    with pytest.raises(ValueError, match=r"vertex_embeddings must be Tensor\[V, D\]"):
        nearest_vertices(e, v[0])
    with pytest.raises(ValueError, match=r"vertex_embeddings must hold at least one vertex"):
        nearest_vertices(e, v[:0])
