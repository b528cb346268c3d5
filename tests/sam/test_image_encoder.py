"""ImageEncoderViT against segment-anything's, random weights copied into ours."""

import pytest
import torch
from segment_anything.modeling import image_encoder as ref_ie
from torch.testing import assert_close

from coursekit.sam import ImageEncoderViT
from coursekit.sam.image_encoder import (
    Attention,
    add_decomposed_rel_pos,
    get_rel_pos,
    window_partition,
    window_unpartition,
)

TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


def _pair(sa, dtype, device, **overrides):
    cfg = dict(sa.REF_ENCODER, **overrides)
    ref = sa.randomize(ref_ie.ImageEncoderViT(**cfg), std=0.1).to(device, dtype)
    ours = ImageEncoderViT(**cfg).to(device, dtype).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    return ref, ours


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_matches_reference_at_reference_size(sa, dtype, device):
    ref, ours = _pair(sa, dtype, device)
    x = torch.randn(1, 3, 256, 256, dtype=dtype, device=device)
    with torch.no_grad():
        y = ours(x)
        assert y.shape == (1, 64, 16, 16)  # C x H/16 x W/16
        assert_close(y, ref(x), rtol=0, atol=TOL[dtype])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("window_size, globals_", [(3, (1,)), (5, ()), (0, ())])
def test_relative_position_and_padded_windows(sa, dtype, window_size, globals_):
    """use_rel_pos (random tables), windows that do not tile the grid (padding), all global."""
    cfg = dict(img_size=64, patch_size=8, embed_dim=32, depth=2, num_heads=2, out_chans=16,
               use_rel_pos=True, window_size=window_size, global_attn_indexes=globals_)
    ref = sa.randomize(ref_ie.ImageEncoderViT(**cfg), std=0.2).to(dtype)
    ours = ImageEncoderViT(**cfg).to(dtype).eval()
    ours.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64, dtype=dtype)
    with torch.no_grad():
        assert_close(ours(x), ref(x), rtol=0, atol=TOL[dtype])


def test_window_partition_hand_computed():
    x = torch.arange(9.0).view(1, 3, 3, 1)  # 3 x 3 grid, windows of 2: padded to 4 x 4
    windows, pad_hw = window_partition(x, 2)
    assert pad_hw == (4, 4) and windows.shape == (4, 2, 2, 1)
    assert windows[0, ..., 0].tolist() == [[0, 1], [3, 4]]
    assert windows[1, ..., 0].tolist() == [[2, 0], [5, 0]]  # right window, zero padding
    assert windows[3, ..., 0].tolist() == [[8, 0], [0, 0]]
    assert_close(window_unpartition(windows, 2, pad_hw, (3, 3)), x)


def test_window_functions_match_reference():
    x = torch.randn(2, 7, 5, 3, dtype=torch.float64)
    w, pad = window_partition(x, 3)
    w_ref, pad_ref = ref_ie.window_partition(x, 3)
    assert pad == pad_ref
    assert_close(w, w_ref, rtol=0, atol=0)
    assert_close(window_unpartition(w, 3, pad, (7, 5)),
                 ref_ie.window_unpartition(w_ref, 3, pad_ref, (7, 5)), rtol=0, atol=0)


def test_get_rel_pos_hand_computed():
    table = torch.arange(5.0)[:, None]  # 2 * 3 - 1 offsets, -2 .. 2, one channel
    R = get_rel_pos(3, 3, table)[..., 0]
    # R[i, j] = table[i - j + 2]: offset 0 on the diagonal
    assert R.tolist() == [[2, 1, 0], [3, 2, 1], [4, 3, 2]]
    assert_close(get_rel_pos(3, 3, table), ref_ie.get_rel_pos(3, 3, table))


def test_decomposed_rel_pos_matches_reference():
    q = torch.randn(4, 6, 8, dtype=torch.float64)  # B*heads, 2 x 3 tokens, head dim 8
    attn = torch.randn(4, 6, 6, dtype=torch.float64)
    rh, rw = torch.randn(3, 8, dtype=torch.float64), torch.randn(5, 8, dtype=torch.float64)
    assert_close(add_decomposed_rel_pos(attn, q, rh, rw, (2, 3), (2, 3)),
                 ref_ie.add_decomposed_rel_pos(attn, q, rh, rw, (2, 3), (2, 3)))


def test_attention_of_one_token_is_its_value():
    """softmax over a single key is 1: the output is proj(v) whatever q and k are."""
    attn = Attention(dim=4, num_heads=2).double()
    x = torch.randn(3, 1, 1, 4, dtype=torch.float64)
    v = attn.qkv(x)[..., 8:]  # the value third of the qkv projection
    assert_close(attn(x), attn.proj(v))


def test_gradcheck():
    enc = ImageEncoderViT(img_size=16, patch_size=4, embed_dim=8, depth=2, num_heads=2,
                          out_chans=4, use_rel_pos=True, window_size=3,
                          global_attn_indexes=(1,)).double()
    for p in enc.parameters():  # non-zero relative positions and position embedding
        p.data.add_(0.1 * torch.randn_like(p))
    x = torch.randn(1, 3, 16, 16, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(enc, (x,), atol=1e-6, fast_mode=True)


def test_bad_inputs():
    enc = ImageEncoderViT(img_size=32, patch_size=8, embed_dim=8, depth=1, num_heads=2,
                          out_chans=4)
    with pytest.raises(ValueError, match=r"x must be Tensor\[B, 3, 32, 32\].*Tensor\[1, 3, 31"):
        enc(torch.zeros(1, 3, 31, 32))
    with pytest.raises(TypeError, match="x must be"):
        enc("image")
    with pytest.raises(ValueError, match="img_size must be a multiple of patch_size"):
        ImageEncoderViT(img_size=30, patch_size=8)
    with pytest.raises(ValueError, match="num_heads must divide"):
        ImageEncoderViT(embed_dim=10, num_heads=4)
    with pytest.raises(ValueError, match="global_attn_indexes"):
        ImageEncoderViT(depth=2, global_attn_indexes=(2,))
    with pytest.raises(ValueError, match="window_size must be >= 0"):
        ImageEncoderViT(window_size=-1)
    with pytest.raises(ValueError, match="rel_pos must have"):
        get_rel_pos(3, 3, torch.zeros(4, 2))
