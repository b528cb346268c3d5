"""SAM's image encoder: a ViT that runs **once per image** (lecture: *real-time interactive*).

Lecture: *Segment Anything: architecture* — a heavy image encoder turns the image into
an embedding once; a light prompt encoder and mask decoder then answer every click on
that embedding (lesson 10 times both). The encoder is a plain Vision Transformer
(ViTDet-style, as segment-anything's ``ImageEncoderViT``)::

    image Tensor[B, 3, S, S]
      -> patch embedding: a P × P conv with stride P      Tensor[B, S/P, S/P, D]
      -> + absolute position embedding (learned)
      -> depth × Block: x + Attn(LN(x)); x + MLP(LN(x))
             most blocks attend inside w × w windows (cost ∝ tokens · w²),
             the blocks in ``global_attn_indexes`` attend over all tokens;
             relative position (decomposed, per axis) added to the attention logits
      -> neck: 1×1 conv, LayerNorm2d, 3×3 conv, LayerNorm2d  Tensor[B, C, S/P, S/P]

With P = 16 the embedding is C × H/16 × W/16. Same parameter names and arithmetic as
segment-anything's ``ImageEncoderViT``; tested in tests/sam/test_image_encoder.py
(random weights copied from it, float32 and float64).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from coursekit.sam.common import LayerNorm2d, MLPBlock
from coursekit.validators import positive_int, require_dim, shape_str


class ImageEncoderViT(nn.Module):
    """Tensor[B, 3, img_size, img_size] (normalised pixels) -> Tensor[B, out_chans, G, G].

    ``G = img_size // patch_size``. Blocks whose index is in ``global_attn_indexes`` use
    global attention; the others attend inside ``window_size`` × ``window_size`` windows
    (``window_size=0``: all global). ``use_rel_pos`` adds decomposed relative position
    embeddings (``rel_pos_h``, ``rel_pos_w`` per block, zeros at initialisation).
    ``norm_eps`` is the blocks' LayerNorm epsilon (torch's 1e-5; SAM's checkpoints: 1e-6).
    """

    def __init__(self, *, img_size: int = 256, patch_size: int = 16, in_chans: int = 3,
                 embed_dim: int = 96, depth: int = 2, num_heads: int = 4,
                 mlp_ratio: float = 4.0, out_chans: int = 64, qkv_bias: bool = True,
                 use_abs_pos: bool = True, use_rel_pos: bool = False, window_size: int = 0,
                 global_attn_indexes: tuple[int, ...] = (), norm_eps: float = 1e-5) -> None:
        super().__init__()
        positive_int(img_size, "img_size")
        positive_int(patch_size, "patch_size")
        positive_int(in_chans, "in_chans")
        positive_int(depth, "depth")
        positive_int(out_chans, "out_chans")
        positive_int(window_size, "window_size", minimum=0)
        _check_heads(embed_dim, num_heads)
        if img_size % patch_size:
            raise ValueError(f"img_size must be a multiple of patch_size, got img_size="
                             f"{img_size}, patch_size={patch_size}")
        if any(not 0 <= i < depth for i in global_attn_indexes):
            raise ValueError(f"global_attn_indexes must be block indexes in [0, depth={depth}), "
                             f"got {tuple(global_attn_indexes)}")
        self.img_size = img_size
        grid = img_size // patch_size
        self.patch_embed = PatchEmbed(patch_size=patch_size, in_chans=in_chans,
                                      embed_dim=embed_dim)
        self.pos_embed: nn.Parameter | None = None
        if use_abs_pos:
            self.pos_embed = nn.Parameter(torch.zeros(1, grid, grid, embed_dim))
        self.blocks = nn.ModuleList(
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                  use_rel_pos=use_rel_pos, norm_eps=norm_eps,
                  window_size=0 if i in global_attn_indexes else window_size,
                  input_size=(grid, grid))
            for i in range(depth)
        )
        self.neck = nn.Sequential(
            nn.Conv2d(embed_dim, out_chans, kernel_size=1, bias=False),
            LayerNorm2d(num_channels=out_chans),
            nn.Conv2d(out_chans, out_chans, kernel_size=3, padding=1, bias=False),
            LayerNorm2d(num_channels=out_chans),
        )

    def forward(self, x: Tensor) -> Tensor:
        S = self.img_size
        expected = f"Tensor[B, {self.patch_embed.proj.in_channels}, {S}, {S}]"
        require_dim(x, "x", 4, expected)
        if tuple(x.shape[1:]) != (self.patch_embed.proj.in_channels, S, S):
            raise ValueError(f"x must be {expected} (pad with Sam.preprocess), "
                             f"got {shape_str(x)}")
        x = self.patch_embed(x)  # (B, G, G, D)
        if self.pos_embed is not None:
            x = x + self.pos_embed  # (B, G, G, D)
        for blk in self.blocks:
            x = blk(x)  # (B, G, G, D)
        return self.neck(x.permute(0, 3, 1, 2))  # (B, D, G, G) -> (B, C, G, G)


class PatchEmbed(nn.Module):
    """Cut the image into P × P patches and embed each linearly: a conv with stride P.

    Tensor[B, C, H, W] -> Tensor[B, H/P, W/P, D] (channels last, one token per patch).
    """

    def __init__(self, *, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 96) -> None:
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        return self.proj(x).permute(0, 2, 3, 1)  # (B, D, H/P, W/P) -> (B, H/P, W/P, D)


class Block(nn.Module):
    """Pre-norm transformer block, windowed (``window_size > 0``) or global attention.

    ``x = x + Attn(LN(x))`` (inside windows: partition, attend, un-partition) then
    ``x = x + MLP(LN(x))``. Tensor[B, H, W, D] -> the same shape.
    """

    def __init__(self, *, dim: int, num_heads: int, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, use_rel_pos: bool = False, window_size: int = 0,
                 input_size: tuple[int, int] = (16, 16), norm_eps: float = 1e-5) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=norm_eps)
        self.attn = Attention(dim=dim, num_heads=num_heads, qkv_bias=qkv_bias,
                              use_rel_pos=use_rel_pos,
                              input_size=input_size if window_size == 0
                              else (window_size, window_size))
        self.norm2 = nn.LayerNorm(dim, eps=norm_eps)
        self.mlp = MLPBlock(embedding_dim=dim, mlp_dim=int(dim * mlp_ratio))
        self.window_size = window_size

    def forward(self, x: Tensor) -> Tensor:
        shortcut = x
        x = self.norm1(x)  # (B, H, W, D)
        if self.window_size > 0:
            H, W = x.shape[1], x.shape[2]
            x, pad_hw = window_partition(x, self.window_size)  # (B * nW, w, w, D)
        x = self.attn(x)
        if self.window_size > 0:
            x = window_unpartition(x, self.window_size, pad_hw, (H, W))  # (B, H, W, D)
        x = shortcut + x
        return x + self.mlp(self.norm2(x))  # (B, H, W, D)


class Attention(nn.Module):
    """Multi-head self-attention over an H × W grid of tokens, with relative position.

    ``softmax(q k^T / sqrt(d) + rel_h + rel_w) v`` per head, where ``rel_h[q, k] =
    q · R_h[y_q - y_k]`` and ``rel_w[q, k] = q · R_w[x_q - x_k]`` (decomposed relative
    position, MViTv2): 2·size − 1 learned vectors per axis instead of one per pair.
    Tensor[B, H, W, D] -> the same shape.
    """

    def __init__(self, *, dim: int, num_heads: int = 4, qkv_bias: bool = True,
                 use_rel_pos: bool = False, input_size: tuple[int, int] = (16, 16)) -> None:
        super().__init__()
        _check_heads(dim, num_heads)
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = head_dim**-0.5
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.use_rel_pos = use_rel_pos
        self.input_size = tuple(input_size)
        if use_rel_pos:
            self.rel_pos_h = nn.Parameter(torch.zeros(2 * input_size[0] - 1, head_dim))
            self.rel_pos_w = nn.Parameter(torch.zeros(2 * input_size[1] - 1, head_dim))

    def forward(self, x: Tensor) -> Tensor:
        B, H, W, D = x.shape
        nh = self.num_heads
        qkv = self.qkv(x).reshape(B, H * W, 3, nh, -1).permute(2, 0, 3, 1, 4)  # (3, B, nh, HW, hd)
        q, k, v = qkv.reshape(3, B * nh, H * W, -1).unbind(0)  # (B*nh, HW, hd) each
        attn = (q * self.scale) @ k.transpose(-2, -1)  # (B*nh, HW, HW)
        if self.use_rel_pos:
            if (H, W) != self.input_size:
                raise ValueError(f"relative position was built for a {self.input_size} grid, "
                                 f"got tokens Tensor[B, {H}, {W}, D]")
            attn = add_decomposed_rel_pos(attn, q, self.rel_pos_h, self.rel_pos_w, (H, W), (H, W))
        attn = attn.softmax(dim=-1)
        x = (attn @ v).view(B, nh, H, W, -1).permute(0, 2, 3, 1, 4).reshape(B, H, W, -1)
        return self.proj(x)  # (B, H, W, D)


def window_partition(x: Tensor, window_size: int) -> tuple[Tensor, tuple[int, int]]:
    """Tensor[B, H, W, C] -> (Tensor[B * nW, w, w, C], (Hp, Wp)), zero-padding to multiples of w.

    Windows are in row-major order, image by image.
    """
    B, H, W, C = x.shape
    w = window_size
    pad_h, pad_w = (w - H % w) % w, (w - W % w) % w
    if pad_h > 0 or pad_w > 0:
        x = F.pad(x, (0, 0, 0, pad_w, 0, pad_h))  # (B, Hp, Wp, C)
    Hp, Wp = H + pad_h, W + pad_w
    x = x.view(B, Hp // w, w, Wp // w, w, C)  # (B, Hp/w, w, Wp/w, w, C)
    windows = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(-1, w, w, C)  # (B*nW, w, w, C)
    return windows, (Hp, Wp)


def window_unpartition(windows: Tensor, window_size: int, pad_hw: tuple[int, int],
                       hw: tuple[int, int]) -> Tensor:
    """Inverse of ``window_partition``: Tensor[B * nW, w, w, C] -> Tensor[B, H, W, C]."""
    (Hp, Wp), (H, W), w = pad_hw, hw, window_size
    B = windows.shape[0] // (Hp * Wp // w // w)
    x = windows.view(B, Hp // w, Wp // w, w, w, -1)  # (B, Hp/w, Wp/w, w, w, C)
    x = x.permute(0, 1, 3, 2, 4, 5).contiguous().view(B, Hp, Wp, -1)  # (B, Hp, Wp, C)
    return x[:, :H, :W, :].contiguous() if (Hp > H or Wp > W) else x


def get_rel_pos(q_size: int, k_size: int, rel_pos: Tensor) -> Tensor:
    """Table Tensor[2·max(q, k) − 1, C] -> Tensor[q, k, C]: ``R[i, j] = rel_pos[i − j + k − 1]``.

    (Query and key sizes differ only with a pooled key; here they are equal, and the
    table always has 2·size − 1 rows because the window size is fixed at construction,
    so segment-anything's resizing of the table is never needed.)
    """
    if rel_pos.shape[0] != 2 * max(q_size, k_size) - 1:
        raise ValueError(f"rel_pos must have 2 * {max(q_size, k_size)} - 1 rows, "
                         f"got {shape_str(rel_pos)}")
    q_coords = torch.arange(q_size, device=rel_pos.device)[:, None] * max(k_size / q_size, 1.0)
    k_coords = torch.arange(k_size, device=rel_pos.device)[None, :] * max(q_size / k_size, 1.0)
    relative = (q_coords - k_coords) + (k_size - 1) * max(q_size / k_size, 1.0)  # (q, k)
    return rel_pos[relative.long()]  # (q, k, C)


def add_decomposed_rel_pos(attn: Tensor, q: Tensor, rel_pos_h: Tensor, rel_pos_w: Tensor,
                           q_size: tuple[int, int], k_size: tuple[int, int]) -> Tensor:
    """attn Tensor[B, qh·qw, kh·kw] + q·R_h[Δy] + q·R_w[Δx], per query and key."""
    (q_h, q_w), (k_h, k_w) = q_size, k_size
    Rh = get_rel_pos(q_h, k_h, rel_pos_h)  # (qh, kh, C)
    Rw = get_rel_pos(q_w, k_w, rel_pos_w)  # (qw, kw, C)
    B, _, dim = q.shape
    r_q = q.reshape(B, q_h, q_w, dim)  # (B, qh, qw, C)
    rel_h = torch.einsum("bhwc,hkc->bhwk", r_q, Rh)  # (B, qh, qw, kh)
    rel_w = torch.einsum("bhwc,wkc->bhwk", r_q, Rw)  # (B, qh, qw, kw)
    attn = attn.view(B, q_h, q_w, k_h, k_w) + rel_h[:, :, :, :, None] + rel_w[:, :, :, None, :]
    return attn.view(B, q_h * q_w, k_h * k_w)


def _check_heads(dim: int, num_heads: int) -> None:
    positive_int(dim, "embed_dim")
    positive_int(num_heads, "num_heads")
    if dim % num_heads:
        raise ValueError(f"num_heads must divide the embedding dimension, got "
                         f"num_heads={num_heads}, dim={dim}")
