"""The two-way transformer of SAM's mask decoder: tokens and image attend to each other.

Lecture: *Segment Anything: architecture* — the light decoder that runs per prompt.
Its queries are a handful of tokens (the output tokens + the prompt tokens, N ≈ 7);
its keys are the h·w image tokens. Each of ``depth`` blocks does four steps::

    1. self-attention of the tokens                  (tokens + their PE as q and k)
    2. cross-attention  token -> image               (tokens ask the image)
    3. MLP on the tokens
    4. cross-attention  image -> token               (every image token reads the prompts)

each followed by a residual sum and a LayerNorm (post-norm); then one more token ->
image attention. "Two-way": the image embedding is updated too (step 4), which is
what the mask decoder later upsamples. The positional encodings (the prompt encoder's
Fourier features) are re-added to the queries and keys at every attention, never to
the values. The cross-attentions project q, k, v to ``D / attention_downsample_rate``
channels: cost O(N · h·w · D / rate), cheap enough to run per click.

Same parameter names and arithmetic as segment-anything's ``TwoWayTransformer``;
tested in tests/sam/test_transformer.py.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from coursekit.sam.common import MLPBlock
from coursekit.validators import positive_int, require_dim, shape_str


class Attention(nn.Module):
    """Multi-head attention whose q, k, v live in ``D / downsample_rate`` channels.

    ``out_proj(softmax(q_h k_h^T / sqrt(d_h)) v_h)`` with the heads recombined;
    q Tensor[B, Nq, D], k and v Tensor[B, Nk, D] -> Tensor[B, Nq, D].
    """

    def __init__(self, *, embedding_dim: int, num_heads: int, downsample_rate: int = 1) -> None:
        super().__init__()
        positive_int(embedding_dim, "embedding_dim")
        positive_int(num_heads, "num_heads")
        positive_int(downsample_rate, "downsample_rate")
        self.embedding_dim = embedding_dim
        self.internal_dim = embedding_dim // downsample_rate
        self.num_heads = num_heads
        if self.internal_dim == 0 or self.internal_dim % num_heads:
            raise ValueError(f"num_heads must divide embedding_dim // downsample_rate, got "
                             f"num_heads={num_heads}, embedding_dim={embedding_dim}, "
                             f"downsample_rate={downsample_rate}")
        self.q_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.k_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.v_proj = nn.Linear(embedding_dim, self.internal_dim)
        self.out_proj = nn.Linear(self.internal_dim, embedding_dim)

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        B, Nq, _ = q.shape
        nh = self.num_heads
        q = self.q_proj(q).reshape(B, Nq, nh, -1).transpose(1, 2)  # (B, nh, Nq, dh)
        k = self.k_proj(k).reshape(B, k.shape[1], nh, -1).transpose(1, 2)  # (B, nh, Nk, dh)
        v = self.v_proj(v).reshape(B, v.shape[1], nh, -1).transpose(1, 2)  # (B, nh, Nk, dh)
        attn = q @ k.permute(0, 1, 3, 2) / math.sqrt(q.shape[-1])  # (B, nh, Nq, Nk)
        attn = torch.softmax(attn, dim=-1)
        out = (attn @ v).transpose(1, 2).reshape(B, Nq, self.internal_dim)  # (B, Nq, D/rate)
        return self.out_proj(out)  # (B, Nq, D)


class TwoWayAttentionBlock(nn.Module):
    """Self-attn (tokens), cross-attn token->image, MLP (tokens), cross-attn image->token.

    The first block skips the PE in its self-attention (the tokens are their own PE
    there, and the residual is dropped: ``queries = self_attn(queries)``).
    """

    def __init__(self, *, embedding_dim: int, num_heads: int, mlp_dim: int = 128,
                 activation: type[nn.Module] = nn.ReLU, attention_downsample_rate: int = 2,
                 skip_first_layer_pe: bool = False) -> None:
        super().__init__()
        D, rate = embedding_dim, attention_downsample_rate
        self.self_attn = Attention(embedding_dim=D, num_heads=num_heads)
        self.norm1 = nn.LayerNorm(D)
        self.cross_attn_token_to_image = Attention(embedding_dim=D, num_heads=num_heads,
                                                   downsample_rate=rate)
        self.norm2 = nn.LayerNorm(D)
        self.mlp = MLPBlock(embedding_dim=D, mlp_dim=mlp_dim, act=activation)
        self.norm3 = nn.LayerNorm(D)
        self.norm4 = nn.LayerNorm(D)
        self.cross_attn_image_to_token = Attention(embedding_dim=D, num_heads=num_heads,
                                                   downsample_rate=rate)
        self.skip_first_layer_pe = skip_first_layer_pe

    def forward(self, queries: Tensor, keys: Tensor, query_pe: Tensor,
                key_pe: Tensor) -> tuple[Tensor, Tensor]:
        """queries Tensor[B, N, D], keys Tensor[B, hw, D] (+ their PE) -> the same two shapes."""
        if self.skip_first_layer_pe:  # 1. self-attention of the tokens
            queries = self.self_attn(q=queries, k=queries, v=queries)
        else:
            q = queries + query_pe
            queries = queries + self.self_attn(q=q, k=q, v=queries)
        queries = self.norm1(queries)  # (B, N, D)
        q, k = queries + query_pe, keys + key_pe  # 2. tokens ask the image
        queries = self.norm2(queries + self.cross_attn_token_to_image(q=q, k=k, v=keys))
        queries = self.norm3(queries + self.mlp(queries))  # 3. MLP on the tokens
        q = queries + query_pe  # 4. every image token reads the tokens (keys: unchanged)
        keys = self.norm4(keys + self.cross_attn_image_to_token(q=k, k=q, v=queries))
        return queries, keys  # (B, N, D), (B, hw, D)


class TwoWayTransformer(nn.Module):
    """``depth`` two-way blocks + a final token -> image attention and LayerNorm.

    (image_embedding Tensor[B, D, h, w], image_pe Tensor[B, D, h, w], point_embedding
    Tensor[B, N, D]) -> (tokens Tensor[B, N, D], image tokens Tensor[B, h·w, D]).
    """

    def __init__(self, *, depth: int = 2, embedding_dim: int = 64, num_heads: int = 4,
                 mlp_dim: int = 128, activation: type[nn.Module] = nn.ReLU,
                 attention_downsample_rate: int = 2) -> None:
        super().__init__()
        positive_int(depth, "depth")
        positive_int(mlp_dim, "mlp_dim")
        self.depth, self.embedding_dim = depth, embedding_dim
        self.num_heads, self.mlp_dim = num_heads, mlp_dim
        self.layers = nn.ModuleList(
            TwoWayAttentionBlock(embedding_dim=embedding_dim, num_heads=num_heads,
                                 mlp_dim=mlp_dim, activation=activation,
                                 attention_downsample_rate=attention_downsample_rate,
                                 skip_first_layer_pe=i == 0)
            for i in range(depth)
        )
        self.final_attn_token_to_image = Attention(embedding_dim=embedding_dim,
                                                   num_heads=num_heads,
                                                   downsample_rate=attention_downsample_rate)
        self.norm_final_attn = nn.LayerNorm(embedding_dim)

    def forward(self, image_embedding: Tensor, image_pe: Tensor,
                point_embedding: Tensor) -> tuple[Tensor, Tensor]:
        D = self.embedding_dim
        require_dim(image_embedding, "image_embedding", 4, f"Tensor[B, {D}, h, w]")
        B, C, h, w = image_embedding.shape
        if C != D:
            raise ValueError(f"image_embedding must be Tensor[B, {D}, h, w], "
                             f"got {shape_str(image_embedding)}")
        require_dim(image_pe, "image_pe", 4, f"Tensor[{B}, {D}, {h}, {w}]")
        if image_pe.shape != image_embedding.shape:
            raise ValueError(f"image_pe must be Tensor[{B}, {D}, {h}, {w}] (the shape of "
                             f"image_embedding), got {shape_str(image_pe)}")
        require_dim(point_embedding, "point_embedding", 3, f"Tensor[{B}, N, {D}]")
        if point_embedding.shape[0] != B or point_embedding.shape[2] != D:
            raise ValueError(f"point_embedding must be Tensor[{B}, N, {D}], "
                             f"got {shape_str(point_embedding)}")
        keys = image_embedding.flatten(2).permute(0, 2, 1)  # (B, hw, D) image tokens
        key_pe = image_pe.flatten(2).permute(0, 2, 1)  # (B, hw, D)
        queries = point_embedding  # (B, N, D)
        for layer in self.layers:
            queries, keys = layer(queries=queries, keys=keys, query_pe=point_embedding,
                                  key_pe=key_pe)
        q, k = queries + point_embedding, keys + key_pe  # the last word: tokens ask the image
        queries = self.norm_final_attn(queries + self.final_attn_token_to_image(q=q, k=k, v=keys))
        return queries, keys  # (B, N, D), (B, hw, D)
