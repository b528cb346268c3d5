"""MaskDecoder against segment-anything's (its transposed convs: our conv_transpose2d)."""

import pytest
import torch
from torch.testing import assert_close

from coursekit.sam import MaskDecoder, TwoWayTransformer, UpConv2d

TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


def _pair(sa, dtype=torch.float32, device="cpu"):
    ref = sa.ref.MaskDecoder(transformer=sa.ref.TwoWayTransformer(**sa.REF_TRANSFORMER),
                             **sa.REF_DECODER)
    ref = sa.randomize(ref).to(device, dtype)
    ours = MaskDecoder(transformer=TwoWayTransformer(**sa.REF_TRANSFORMER), **sa.REF_DECODER)
    ours = ours.to(device, dtype).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


def _inputs(B, N, dtype, device="cpu"):
    g = torch.Generator().manual_seed(2)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=torch.float64).to(device, dtype)

    return r(1, 64, 16, 16), r(1, 64, 16, 16), r(B, N, 64), r(B, 64, 16, 16)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("multimask", [True, False])
def test_matches_reference(sa, dtype, multimask, device):
    ref, ours = _pair(sa, dtype, device)
    args = _inputs(3, 2, dtype, device)
    with torch.no_grad():
        masks, iou = ours(*args, multimask_output=multimask)
        masks_ref, iou_ref = ref(*args, multimask_output=multimask)
    C = 3 if multimask else 1
    assert masks.shape == (3, C, 64, 64) and iou.shape == (3, C)  # 4x the 16 x 16 grid
    assert_close(masks, masks_ref, rtol=0, atol=TOL[dtype])
    assert_close(iou, iou_ref, rtol=0, atol=TOL[dtype])


def test_multimask_selects_tokens_1_to_3_or_0(sa):
    _, ours = _pair(sa, torch.float64)
    args = _inputs(2, 3, torch.float64)
    with torch.no_grad():
        all_masks, all_iou = ours.predict_masks(*args)  # 1 + 3 mask tokens
        multi, multi_iou = ours(*args, multimask_output=True)
        single, single_iou = ours(*args, multimask_output=False)
    assert all_masks.shape == (2, 4, 64, 64)
    assert_close(multi, all_masks[:, 1:], rtol=0, atol=0)
    assert_close(multi_iou, all_iou[:, 1:], rtol=0, atol=0)
    assert_close(single, all_masks[:, :1], rtol=0, atol=0)
    assert_close(single_iou, all_iou[:, :1], rtol=0, atol=0)


def test_upscaling_is_our_conv_transpose(sa):
    """The two transposed convs are UpConv2d (coursekit.upsampling.conv_transpose2d)."""
    _, ours = _pair(sa, torch.float64)
    ups = [m for m in ours.output_upscaling if isinstance(m, UpConv2d)]
    assert len(ups) == 2 and [u.stride for u in ups] == [2, 2]
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in ours.modules())


def test_one_image_per_prompt_equals_one_at_a_time(sa):
    """image_embeddings Tensor[B, ...] (a training batch) = B separate decoder calls."""
    _, ours = _pair(sa, torch.float64)
    emb = torch.randn(2, 64, 16, 16, dtype=torch.float64)
    pe, sparse, dense = _inputs(2, 3, torch.float64)[1:]
    with torch.no_grad():
        masks, iou = ours(emb, pe, sparse, dense, multimask_output=True)
        for b in range(2):
            m, i = ours(emb[b:b + 1], pe, sparse[b:b + 1], dense[b:b + 1], True)
            assert_close(masks[b:b + 1], m, rtol=0, atol=1e-12)
            assert_close(iou[b:b + 1], i, rtol=0, atol=1e-12)


def test_hypernetwork_hand_computed(sa):
    """mask_i = MLP_i(token_i) · upscaled embedding: a 1x1 conv whose weights a token writes."""
    _, ours = _pair(sa, torch.float64)
    args = _inputs(1, 2, torch.float64)
    captured = {}
    ours.output_upscaling.register_forward_hook(lambda m, i, o: captured.update(up=o))
    ours.transformer.register_forward_hook(lambda m, i, o: captured.update(hs=o[0]))
    with torch.no_grad():
        masks, iou = ours.predict_masks(*args)
        up, hs = captured["up"], captured["hs"]  # (1, 8, 64, 64), (1, 1 + 4 + N, 64)
        w2 = ours.output_hypernetworks_mlps[2](hs[0, 1 + 2])  # mask token 2 -> 8 weights
        assert_close(masks[0, 2], torch.einsum("c,chw->hw", w2, up[0]))
        assert_close(iou[0], ours.iou_prediction_head(hs[0, 0]))


def test_gradcheck():
    dec = MaskDecoder(transformer_dim=8,
                      transformer=TwoWayTransformer(depth=1, embedding_dim=8, num_heads=2,
                                                    mlp_dim=8),
                      iou_head_hidden_dim=8).double()
    emb = torch.randn(1, 8, 2, 2, dtype=torch.float64, requires_grad=True)
    pe = torch.randn(1, 8, 2, 2, dtype=torch.float64)
    sparse = torch.randn(2, 3, 8, dtype=torch.float64, requires_grad=True)
    dense = torch.randn(2, 8, 2, 2, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda e, s: dec(e, pe, s, dense, True), (emb, sparse),
                                    fast_mode=True)


def test_bad_inputs(sa):
    _, ours = _pair(sa)
    emb, pe, sparse, dense = _inputs(2, 3, torch.float32)
    with pytest.raises(ValueError, match=r"image_embeddings must be Tensor\[1 or 2, 64, h, w\]"):
        ours(emb.expand(3, -1, -1, -1), pe, sparse, dense, True)
    with pytest.raises(ValueError, match=r"dense_prompt_embeddings must be Tensor\[2, 64, 16, 16"):
        ours(emb, pe, sparse, dense[:1], True)
    with pytest.raises(ValueError, match=r"sparse_prompt_embeddings must be Tensor\[B, N, 64\]"):
        ours(emb, pe, sparse[..., :8], dense, True)
    with pytest.raises(ValueError, match=r"image_pe must be Tensor\[1, 64, 16, 16\]"):
        ours(emb, pe[..., :8], sparse, dense, True)
    with pytest.raises(TypeError, match="multimask_output must be a bool"):
        ours(emb, pe, sparse, dense, 1)
    with pytest.raises(ValueError, match="transformer_dim must be a multiple of 8"):
        MaskDecoder(transformer_dim=12,
                    transformer=TwoWayTransformer(embedding_dim=12, num_heads=2))
    with pytest.raises(ValueError, match="transformer.embedding_dim must equal"):
        MaskDecoder(transformer_dim=32, transformer=TwoWayTransformer(embedding_dim=64))
