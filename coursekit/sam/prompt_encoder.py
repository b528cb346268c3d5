"""SAM's prompt encoder: points, boxes and masks -> tokens and a dense map (lesson 10).

Lecture: *Segment Anything: promptable segmentation* — "the model can be queried by a
variety of input prompts": points (foreground or background clicks), a box, a rough
mask. Each becomes something the mask decoder can read:

* **sparse** prompts become tokens of size D: a point is the random-Fourier encoding
  of its position plus a learned vector for its label (foreground / background); a box
  is two tokens, its top-left and bottom-right corners, each with its own learned
  vector; with points and no box one "not a point" padding token is appended (label
  −1: no position, only ``not_a_point_embed``), as SAM was trained;
* a **dense** mask prompt (low-resolution logits, 4× the embedding size) is shrunk
  to the embedding grid by a small conv stack (2×2 stride 2, twice, then 1×1); without
  one, every pixel gets the learned ``no_mask_embed``.

Positions are encoded with random Fourier features (Tancik et al., 2020;
``PositionEmbeddingRandom``): for ``p`` in [0, 1]², ``pe(p) = [sin(2π (2p−1) G),
cos(2π (2p−1) G)]`` with a fixed Gaussian matrix G (2 × D/2). ``get_dense_pe`` encodes
every cell centre of the embedding grid the same way, so image tokens and prompt
tokens share one coordinate code.

Same parameter names and arithmetic as segment-anything's ``PromptEncoder``; tested in
tests/sam/test_prompt_encoder.py.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from coursekit.sam.common import LayerNorm2d
from coursekit.validators import (
    describe,
    int_pair,
    positive_int,
    require_dim,
    require_floating,
    require_tensor,
    shape_str,
)


class PositionEmbeddingRandom(nn.Module):
    """Random Fourier features: points in [0, 1]² -> Tensor[..., 2 · num_pos_feats].

    ``positional_encoding_gaussian_matrix`` (a buffer, 2 × num_pos_feats, ``scale`` ×
    N(0, 1)) is drawn once and never trained. Coordinates and the products are at least
    float32; the output has the buffer's dtype.
    """

    def __init__(self, *, num_pos_feats: int = 32, scale: float | None = None) -> None:
        super().__init__()
        positive_int(num_pos_feats, "num_pos_feats")
        scale = 1.0 if scale is None or scale <= 0.0 else float(scale)
        self.register_buffer("positional_encoding_gaussian_matrix",
                             scale * torch.randn((2, num_pos_feats)))

    def _pe_encoding(self, coords: Tensor) -> Tensor:
        """Tensor[..., 2] in [0, 1] -> Tensor[..., 2 · num_pos_feats]: [sin, cos] of 2π(2p−1)G."""
        G = self.positional_encoding_gaussian_matrix
        acc = torch.promote_types(G.dtype, torch.float32)
        coords = 2 * coords.to(acc) - 1  # (..., 2) in [-1, 1]
        coords = 2 * math.pi * (coords @ G.to(acc))  # (..., F)
        return torch.cat([torch.sin(coords), torch.cos(coords)], dim=-1).to(G.dtype)  # (..., 2F)

    def forward(self, size: tuple[int, int]) -> Tensor:
        """Encoding of every cell centre of an h × w grid: Tensor[2F, h, w]."""
        h, w = int_pair(size, "size")
        G = self.positional_encoding_gaussian_matrix
        acc = torch.promote_types(G.dtype, torch.float32)
        y = (torch.arange(h, device=G.device, dtype=acc) + 0.5) / h  # (h,) cell centres
        x = (torch.arange(w, device=G.device, dtype=acc) + 0.5) / w  # (w,)
        grid = torch.stack(torch.broadcast_tensors(x[None, :], y[:, None]), dim=-1)  # (h, w, 2)
        return self._pe_encoding(grid).permute(2, 0, 1)  # (2F, h, w)

    def forward_with_coords(self, coords_input: Tensor, image_size: tuple[int, int]) -> Tensor:
        """Pixel coordinates (x, y) Tensor[B, N, 2] in an image of (H, W) -> Tensor[B, N, 2F]."""
        H, W = image_size
        scale = coords_input.new_tensor([W, H], dtype=torch.promote_types(
            coords_input.dtype, torch.float32))
        return self._pe_encoding(coords_input.to(scale.dtype) / scale)  # (B, N, 2F)


class PromptEncoder(nn.Module):
    """Points / boxes / masks -> (sparse Tensor[B, N, D], dense Tensor[B, D, h, w]).

    ``image_embedding_size = (h, w)`` is the encoder's grid, ``input_image_size = (H, W)``
    the padded model input (prompt coordinates are pixels of it), ``mask_in_chans`` the
    hidden width of the mask downscaler. ``point_embeddings`` holds four learned vectors:
    0 background point, 1 foreground point, 2 box top-left, 3 box bottom-right.
    """

    def __init__(self, *, embed_dim: int = 64, image_embedding_size: tuple[int, int] = (16, 16),
                 input_image_size: tuple[int, int] = (256, 256), mask_in_chans: int = 8,
                 activation: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        positive_int(embed_dim, "embed_dim")
        if embed_dim % 2:
            raise ValueError(f"embed_dim must be even (sin and cos halves), got {embed_dim}")
        positive_int(mask_in_chans, "mask_in_chans", minimum=4)
        if mask_in_chans % 4:
            raise ValueError(f"mask_in_chans must be a multiple of 4, got {mask_in_chans}")
        self.embed_dim = embed_dim
        self.image_embedding_size = int_pair(image_embedding_size, "image_embedding_size")
        self.input_image_size = int_pair(input_image_size, "input_image_size")
        self.pe_layer = PositionEmbeddingRandom(num_pos_feats=embed_dim // 2)
        self.num_point_embeddings = 4  # background / foreground point + 2 box corners
        self.point_embeddings = nn.ModuleList(nn.Embedding(1, embed_dim) for _ in range(4))
        self.not_a_point_embed = nn.Embedding(1, embed_dim)
        h, w = self.image_embedding_size
        self.mask_input_size = (4 * h, 4 * w)
        self.mask_downscaling = nn.Sequential(
            nn.Conv2d(1, mask_in_chans // 4, kernel_size=2, stride=2),  # 4h -> 2h
            LayerNorm2d(num_channels=mask_in_chans // 4),
            activation(),
            nn.Conv2d(mask_in_chans // 4, mask_in_chans, kernel_size=2, stride=2),  # 2h -> h
            LayerNorm2d(num_channels=mask_in_chans),
            activation(),
            nn.Conv2d(mask_in_chans, embed_dim, kernel_size=1),  # (B, D, h, w)
        )
        self.no_mask_embed = nn.Embedding(1, embed_dim)

    def get_dense_pe(self) -> Tensor:
        """The encoding of every cell of the image embedding: Tensor[1, D, h, w]."""
        return self.pe_layer(self.image_embedding_size).unsqueeze(0)

    def _embed_points(self, points: Tensor, labels: Tensor, pad: bool) -> Tensor:
        """Tensor[B, N, 2] pixels (x, y), Tensor[B, N] in {-1, 0, 1} -> Tensor[B, N(+1), D]."""
        points = points + 0.5  # to the centre of the pixel
        if pad:  # the "not a point" token that SAM saw in training when there was no box
            points = torch.cat([points, points.new_zeros(points.shape[0], 1, 2)], dim=1)
            labels = torch.cat([labels, labels.new_full((labels.shape[0], 1), -1)], dim=1)
        pe = self.pe_layer.forward_with_coords(points, self.input_image_size)  # (B, N, D)
        labels = labels[..., None]  # (B, N, 1)
        bg, fg = self.point_embeddings[0].weight, self.point_embeddings[1].weight  # (1, D)
        out = torch.where(labels == -1, self.not_a_point_embed.weight, pe)  # no position
        out = out + torch.where(labels == 0, bg, 0.0) + torch.where(labels == 1, fg, 0.0)
        return out  # (B, N, D)

    def _embed_boxes(self, boxes: Tensor) -> Tensor:
        """Tensor[B, 4] (x1, y1, x2, y2) -> two corner tokens Tensor[B, 2, D]."""
        corners = (boxes + 0.5).reshape(-1, 2, 2)  # (B, 2, 2): top-left, bottom-right
        pe = self.pe_layer.forward_with_coords(corners, self.input_image_size)  # (B, 2, D)
        corner_embed = torch.cat([self.point_embeddings[2].weight,
                                  self.point_embeddings[3].weight])  # (2, D)
        return pe + corner_embed

    def forward(self, points: tuple[Tensor, Tensor] | None, boxes: Tensor | None,
                masks: Tensor | None) -> tuple[Tensor, Tensor]:
        """Embed the prompts of B independent queries.

        Args:
            points: (coords Tensor[B, N, 2] floating, pixels (x, y) of the padded input;
                labels Tensor[B, N] with 1 foreground, 0 background, -1 padding) or None.
            boxes: Tensor[B, 4] floating (x1, y1, x2, y2) pixels, or None.
            masks: Tensor[B, 1, 4h, 4w] floating (mask logits), or None.

        Returns:
            sparse Tensor[B, N', D] (N' = N + 1 padding point if no box, + 2 corners per
            box) and dense Tensor[B, D, h, w]. With no prompt at all, B = 1 and N' = 0.
        """
        bs = self._check(points, boxes, masks)
        weight = self.no_mask_embed.weight  # (1, D)
        sparse = [weight.new_empty(bs, 0, self.embed_dim)]
        if points is not None:
            sparse.append(self._embed_points(points[0], points[1], pad=boxes is None))
        if boxes is not None:
            sparse.append(self._embed_boxes(boxes))
        sparse_embeddings = torch.cat(sparse, dim=1)  # (B, N', D)
        if masks is not None:
            dense_embeddings = self.mask_downscaling(masks)  # (B, D, h, w)
        else:
            h, w = self.image_embedding_size
            dense_embeddings = weight.reshape(1, -1, 1, 1).expand(bs, -1, h, w)  # (B, D, h, w)
        return sparse_embeddings, dense_embeddings

    def _check(self, points, boxes, masks) -> int:
        """Validate the prompts; return the number of queries B."""
        sizes = {}
        if points is not None:
            if not isinstance(points, (tuple, list)) or len(points) != 2:
                raise TypeError(f"points must be a pair (coords Tensor[B, N, 2], labels "
                                f"Tensor[B, N]) or None, got {describe(points)}")
            coords, labels = points
            require_floating(coords, "points[0] (coords)", "a floating-point Tensor[B, N, 2]")
            if coords.dim() != 3 or coords.shape[-1] != 2:
                raise ValueError(f"points[0] (coords) must be Tensor[B, N, 2], "
                                 f"got {shape_str(coords)}")
            require_tensor(labels, "points[1] (labels)", "a Tensor[B, N]")
            if tuple(labels.shape) != tuple(coords.shape[:2]):
                raise ValueError(f"points[1] (labels) must be Tensor[{coords.shape[0]}, "
                                 f"{coords.shape[1]}] (one per point), got {shape_str(labels)}")
            if labels.numel() and not ((labels == -1) | (labels == 0) | (labels == 1)).all():
                raise ValueError(f"points[1] (labels) must hold 1 (foreground), 0 (background) "
                                 f"or -1 (padding), got values {labels.unique().tolist()}")
            sizes["points"] = coords.shape[0]
        if boxes is not None:
            require_floating(boxes, "boxes", "a floating-point Tensor[B, 4]")
            require_dim(boxes, "boxes", 2, "Tensor[B, 4] (x1, y1, x2, y2)")
            if boxes.shape[1] != 4:
                raise ValueError(f"boxes must be Tensor[B, 4] (x1, y1, x2, y2), "
                                 f"got {shape_str(boxes)}")
            sizes["boxes"] = boxes.shape[0]
        if masks is not None:
            h, w = self.mask_input_size
            expected = f"Tensor[B, 1, {h}, {w}] (4x the image embedding)"
            require_floating(masks, "masks", f"a floating-point {expected}")
            if masks.dim() != 4 or tuple(masks.shape[1:]) != (1, h, w):
                raise ValueError(f"masks must be {expected}, got {shape_str(masks)}")
            sizes["masks"] = masks.shape[0]
        if len(set(sizes.values())) > 1:
            raise ValueError(f"points, boxes and masks must have the same batch size B, "
                             f"got {sizes}")
        return next(iter(sizes.values())) if sizes else 1
