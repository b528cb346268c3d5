"""TwoWayTransformer (and its Attention) against segment-anything's."""

import math

import pytest
import torch
from segment_anything.modeling import transformer as ref_tr
from torch.testing import assert_close

from coursekit.sam import TwoWayTransformer
from coursekit.sam.transformer import Attention

TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("rate, n_tokens", [(2, 7), (1, 1), (4, 9)])
def test_matches_reference(sa, dtype, rate, n_tokens, device):
    cfg = dict(sa.REF_TRANSFORMER, attention_downsample_rate=rate)
    ref = sa.randomize(ref_tr.TwoWayTransformer(**cfg)).to(device, dtype)
    ours = TwoWayTransformer(**cfg).to(device, dtype).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    image = torch.randn(3, 64, 16, 16, dtype=dtype, device=device)
    pe = torch.randn(3, 64, 16, 16, dtype=dtype, device=device)
    tokens = torch.randn(3, n_tokens, 64, dtype=dtype, device=device)
    with torch.no_grad():
        q, k = ours(image, pe, tokens)
        q_ref, k_ref = ref(image, pe, tokens)
    assert q.shape == (3, n_tokens, 64) and k.shape == (3, 256, 64)
    assert_close(q, q_ref, rtol=0, atol=TOL[dtype])
    assert_close(k, k_ref, rtol=0, atol=TOL[dtype])


def test_attention_hand_computed():
    """Identity projections, one head: softmax(q k^T / sqrt(d)) v by hand."""
    attn = Attention(embedding_dim=2, num_heads=1).double()
    with torch.no_grad():
        for lin in (attn.q_proj, attn.k_proj, attn.v_proj, attn.out_proj):
            lin.weight.copy_(torch.eye(2))
            lin.bias.zero_()
    q = torch.tensor([[[1.0, 0.0]]], dtype=torch.float64)
    k = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]], dtype=torch.float64)
    v = torch.tensor([[[10.0, 0.0], [0.0, 10.0]]], dtype=torch.float64)
    w = torch.softmax(torch.tensor([1.0, 0.0], dtype=torch.float64) / math.sqrt(2), 0)
    assert_close(attn(q, k, v), (w[0] * v[0, 0] + w[1] * v[0, 1])[None, None])


def test_attention_downsample_rate_shrinks_projections():
    attn = Attention(embedding_dim=64, num_heads=4, downsample_rate=2)
    assert attn.q_proj.weight.shape == (32, 64) and attn.out_proj.weight.shape == (64, 32)
    ref = ref_tr.Attention(64, 4, downsample_rate=2)
    assert {k: v.shape for k, v in attn.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()}


def test_image_tokens_are_updated_two_way(sa):
    """Step 4 (image -> token attention) makes the image tokens depend on the prompts."""
    ours = sa.randomize(TwoWayTransformer(**sa.REF_TRANSFORMER)).double()
    image = torch.randn(1, 64, 4, 4, dtype=torch.float64)
    pe = torch.randn(1, 64, 4, 4, dtype=torch.float64)
    t1, t2 = torch.randn(2, 1, 3, 64, dtype=torch.float64)
    with torch.no_grad():
        _, k1 = ours(image, pe, t1)
        _, k2 = ours(image, pe, t2)
    assert (k1 - k2).abs().max() > 1e-3


def test_gradcheck():
    tr = TwoWayTransformer(depth=2, embedding_dim=8, num_heads=2, mlp_dim=8).double()
    image = torch.randn(1, 8, 2, 3, dtype=torch.float64, requires_grad=True)
    pe = torch.randn(1, 8, 2, 3, dtype=torch.float64)
    tokens = torch.randn(1, 3, 8, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda i, t: tr(i, pe, t), (image, tokens), fast_mode=True)


def test_bad_inputs():
    tr = TwoWayTransformer(depth=1, embedding_dim=8, num_heads=2, mlp_dim=8)
    image, pe, tokens = torch.zeros(2, 8, 3, 3), torch.zeros(2, 8, 3, 3), torch.zeros(2, 4, 8)
    with pytest.raises(ValueError, match=r"image_embedding must be Tensor\[B, 8, h, w\]"):
        tr(torch.zeros(2, 6, 3, 3), pe, tokens)
    with pytest.raises(ValueError, match=r"image_pe must be Tensor\[2, 8, 3, 3\]"):
        tr(image, torch.zeros(2, 8, 3, 4), tokens)
    with pytest.raises(ValueError, match=r"point_embedding must be Tensor\[2, N, 8\]"):
        tr(image, pe, torch.zeros(1, 4, 8))
    with pytest.raises(ValueError, match="point_embedding must be"):
        tr(image, pe, torch.zeros(2, 4))
    with pytest.raises(ValueError, match="num_heads must divide"):
        TwoWayTransformer(embedding_dim=64, num_heads=3)
    with pytest.raises(ValueError, match="num_heads must divide"):
        Attention(embedding_dim=8, num_heads=4, downsample_rate=4)
