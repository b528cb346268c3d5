"""PromptEncoder and PositionEmbeddingRandom against segment-anything's.

segment-anything casts point coordinates to float32 inside ``forward_with_coords`` (and
builds its dense grid in float32), so it cannot run in float64; our float64 encoder is
compared with its float32 output at float32 tolerance.
"""

import math

import pytest
import torch
from torch.testing import assert_close

from coursekit.sam import PositionEmbeddingRandom, PromptEncoder


def _pair(sa, device="cpu"):
    ref = sa.randomize(sa.ref.PromptEncoder(**sa.REF_PROMPT)).to(device)
    ours = PromptEncoder(**sa.REF_PROMPT).to(device).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)  # incl. the Gaussian matrix buffer
    return ref, ours


def _prompts(kind, B=3, N=4, device="cpu"):
    g = torch.Generator().manual_seed(1)
    coords = (torch.rand(B, N, 2, generator=g) * 256).to(device)
    labels = torch.randint(0, 2, (B, N), generator=g).to(device)
    labels[0, -1] = -1  # an explicit padding point
    xy = torch.rand(B, 2, generator=g) * 200
    boxes = torch.cat([xy, xy + torch.rand(B, 2, generator=g) * 50], dim=1).to(device)
    masks = torch.randn(B, 1, 64, 64, generator=g).to(device)
    return {
        "points": ((coords, labels), None, None),
        "points+box": ((coords, labels), boxes, None),
        "box": (None, boxes, None),
        "mask": (None, None, masks),
        "points+box+mask": ((coords, labels), boxes, masks),
        "none": (None, None, None),
    }[kind]


@pytest.mark.parametrize("kind", ["points", "points+box", "box", "mask", "points+box+mask",
                                  "none"])
def test_matches_reference(sa, kind, device):
    ref, ours = _pair(sa, device)
    args = _prompts(kind, device=device)
    with torch.no_grad():
        sparse, dense = ours(*args)
        sparse_ref, dense_ref = ref(*args)
    assert sparse.shape == sparse_ref.shape and dense.shape == dense_ref.shape
    assert_close(sparse, sparse_ref, rtol=0, atol=1e-5)
    assert_close(dense, dense_ref, rtol=0, atol=1e-5)
    assert_close(ours.get_dense_pe(), ref.get_dense_pe(), rtol=0, atol=1e-5)


@pytest.mark.parametrize("kind", ["points", "points+box+mask"])
def test_float64_against_reference_float32(sa, kind):
    ref, ours = _pair(sa)
    ours = ours.double()
    args = _prompts(kind)
    args64 = tuple(None if a is None else
                   (a[0].double(), a[1]) if isinstance(a, tuple) else a.double() for a in args)
    with torch.no_grad():
        sparse, dense = ours(*args64)
        sparse_ref, dense_ref = ref(*args)
    assert sparse.dtype == dense.dtype == torch.float64
    assert_close(sparse, sparse_ref.double(), rtol=0, atol=1e-5)
    if args[2] is None:
        assert_close(dense, dense_ref.double(), rtol=0, atol=0)  # no_mask_embed, copied
    else:  # the mask path has no coordinates: segment-anything runs it in float64 too
        with torch.no_grad():
            dense_ref64 = ref.double().mask_downscaling(args64[2])
        assert_close(dense, dense_ref64, rtol=0, atol=1e-12)


def test_fourier_features_hand_computed():
    pe = PositionEmbeddingRandom(num_pos_feats=2)
    with torch.no_grad():  # G = [[0.25, 0], [0, 0.5]]: x -> first frequency, y -> second
        pe.positional_encoding_gaussian_matrix.copy_(torch.tensor([[0.25, 0.0], [0.0, 0.5]]))
    # pixel (x, y) = (3, 1) of a 4 x 8 (H x W) image: normalised (3/8, 1/4)
    out = pe.forward_with_coords(torch.tensor([[[3.0, 1.0]]]), (4, 8))[0, 0]
    a = 2 * math.pi * (2 * 3 / 8 - 1) * 0.25  # 2π (2x − 1) G
    b = 2 * math.pi * (2 * 1 / 4 - 1) * 0.5
    assert_close(out, torch.tensor([math.sin(a), math.sin(b), math.cos(a), math.cos(b)]))
    grid = pe((2, 2))  # cell centres 0.25, 0.75 on each axis
    assert grid.shape == (4, 2, 2)
    a = 2 * math.pi * (2 * 0.75 - 1) * 0.25  # column 1: x = 0.75
    b = 2 * math.pi * (2 * 0.25 - 1) * 0.5  # row 0: y = 0.25
    assert_close(grid[:, 0, 1], torch.tensor([math.sin(a), math.sin(b), math.cos(a),
                                              math.cos(b)]))


def test_point_tokens_hand_computed(sa):
    _, ours = _pair(sa)
    coords = torch.tensor([[[10.0, 20.0], [30.0, 40.0], [0.0, 0.0]]])
    labels = torch.tensor([[1, 0, -1]])
    with torch.no_grad():
        sparse, dense = ours((coords, labels), None, None)
        pe = ours.pe_layer.forward_with_coords(coords + 0.5, (256, 256))
    assert sparse.shape == (1, 4, 64)  # 3 points + the padding point (no box)
    assert_close(sparse[0, 0], pe[0, 0] + ours.point_embeddings[1].weight[0])  # foreground
    assert_close(sparse[0, 1], pe[0, 1] + ours.point_embeddings[0].weight[0])  # background
    assert_close(sparse[0, 2], ours.not_a_point_embed.weight[0])  # no position at all
    assert_close(sparse[0, 3], ours.not_a_point_embed.weight[0])  # the padding point
    assert_close(dense, ours.no_mask_embed.weight.view(1, 64, 1, 1).expand(1, 64, 16, 16))
    box = torch.tensor([[10.0, 20.0, 30.0, 40.0]])
    with torch.no_grad():
        sparse_box, _ = ours(None, box, None)
    assert sparse_box.shape == (1, 2, 64)  # two corners, no padding point
    assert_close(sparse_box[0, 1], pe[0, 1] + ours.point_embeddings[3].weight[0])


def test_gradcheck():
    ours = PromptEncoder(embed_dim=8, image_embedding_size=(2, 2), input_image_size=(32, 32),
                         mask_in_chans=4).double()
    coords = (torch.rand(2, 2, 2, dtype=torch.float64) * 32).requires_grad_()
    labels = torch.tensor([[1, 0], [0, 1]])
    boxes = torch.tensor([[1.0, 2.0, 20.0, 30.0], [3.0, 4.0, 5.0, 6.0]],
                         dtype=torch.float64, requires_grad=True)
    masks = torch.randn(2, 1, 8, 8, dtype=torch.float64, requires_grad=True)

    def f(c, b, m):
        sparse, dense = ours((c, labels), b, m)
        return sparse, dense

    assert torch.autograd.gradcheck(f, (coords, boxes, masks), fast_mode=True)


def test_bad_inputs(sa):
    _, ours = _pair(sa)
    c, lab = torch.zeros(2, 3, 2), torch.ones(2, 3, dtype=torch.long)
    with pytest.raises(ValueError, match=r"labels\) must be Tensor\[2, 3\].*got Tensor\[2, 2\]"):
        ours((c, lab[:, :2]), None, None)
    with pytest.raises(ValueError, match="labels.*must hold 1.*got values \\[1, 2\\]"):
        ours((c, torch.tensor([[1, 2, 1], [1, 1, 1]])), None, None)
    with pytest.raises(ValueError, match=r"coords\) must be Tensor\[B, N, 2\]"):
        ours((torch.zeros(2, 3, 3), lab), None, None)
    with pytest.raises(TypeError, match=r"coords\) must be a floating-point"):
        ours((c.long(), lab), None, None)
    with pytest.raises(TypeError, match="points must be a pair"):
        ours(c, None, None)
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[B, 4\]"):
        ours(None, torch.zeros(2, 5), None)
    with pytest.raises(ValueError, match=r"masks must be Tensor\[B, 1, 64, 64\]"):
        ours(None, None, torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match="same batch size"):
        ours((c, lab), torch.zeros(3, 4), None)
    with pytest.raises(ValueError, match="embed_dim must be even"):
        PromptEncoder(embed_dim=7)
    with pytest.raises(ValueError, match="mask_in_chans must be a multiple of 4"):
        PromptEncoder(mask_in_chans=6)
