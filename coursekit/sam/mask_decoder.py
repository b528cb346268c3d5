"""SAM's mask decoder: three masks and their confidences per prompt, in milliseconds.

Lecture: *Segment Anything* — "for ambiguous prompts corresponding to more than one
object, compute multiple valid masks with confidence scores". A click on a shirt may
mean the shirt, the person or the whole group: the decoder answers with three masks
(whole / part / subpart, say) and a predicted IoU for each.

How: learned **output tokens** are put before the prompt tokens — one IoU token and
``num_multimask_outputs + 1`` mask tokens (token 0 for a single unambiguous mask,
tokens 1..3 for the three ambiguous ones)::

    tokens = [iou, mask_0, mask_1, mask_2, mask_3, prompt tokens...]   Tensor[B, 5 + N, D]
    src    = image embedding + dense prompt embedding                    Tensor[B, D, h, w]
    tokens, src = TwoWayTransformer(src, pe, tokens)
    up     = 2 transposed convs (2×2, stride 2): src -> Tensor[B, D/8, 4h, 4w]
             (+ the image's pixel features, when the model has our ``PixelSkip``)
    mask_i = MLP_i(mask token i) · up        (a hypernetwork: the token writes the
                                              weights of a 1×1 conv over ``up``)
    iou    = MLP(iou token)                  Tensor[B, 4]

``multimask_output=True`` returns masks 1..3 (an ambiguous prompt, one click);
``False`` returns mask 0 (several clicks, or a box). The transposed convolutions are
``UpConv2d`` modules that call our own ``coursekit.upsampling.conv_transpose2d``.

Same parameter names and arithmetic as segment-anything's ``MaskDecoder``; tested in
tests/sam/test_mask_decoder.py.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from coursekit.sam.common import MLP, LayerNorm2d, UpConv2d
from coursekit.sam.transformer import TwoWayTransformer
from coursekit.validators import positive_int, require_dim, shape_str


class MaskDecoder(nn.Module):
    """(image embedding, PE, sparse and dense prompt embeddings) -> (mask logits, IoU).

    ``transformer_dim`` D must equal the transformer's embedding dimension and be a
    multiple of 8; ``iou_head_depth`` / ``iou_head_hidden_dim`` size the IoU MLP.
    """

    def __init__(self, *, transformer_dim: int, transformer: TwoWayTransformer,
                 num_multimask_outputs: int = 3, activation: type[nn.Module] = nn.GELU,
                 iou_head_depth: int = 3, iou_head_hidden_dim: int = 64) -> None:
        super().__init__()
        D = positive_int(transformer_dim, "transformer_dim")
        if D % 8:
            raise ValueError(f"transformer_dim must be a multiple of 8, got {D}")
        if not isinstance(transformer, nn.Module):
            raise TypeError(f"transformer must be a TwoWayTransformer, got "
                            f"{type(transformer).__name__}")
        if getattr(transformer, "embedding_dim", D) != D:
            raise ValueError(f"transformer.embedding_dim must equal transformer_dim={D}, "
                             f"got {transformer.embedding_dim}")
        self.transformer_dim = D
        self.transformer = transformer
        self.num_multimask_outputs = positive_int(num_multimask_outputs, "num_multimask_outputs")
        self.iou_token = nn.Embedding(1, D)
        self.num_mask_tokens = num_multimask_outputs + 1
        self.mask_tokens = nn.Embedding(self.num_mask_tokens, D)
        self.output_upscaling = nn.Sequential(
            UpConv2d(in_channels=D, out_channels=D // 4),  # (B, D/4, 2h, 2w)
            LayerNorm2d(num_channels=D // 4),
            activation(),
            UpConv2d(in_channels=D // 4, out_channels=D // 8),  # (B, D/8, 4h, 4w)
            activation(),
        )
        self.output_hypernetworks_mlps = nn.ModuleList(
            MLP(input_dim=D, hidden_dim=D, output_dim=D // 8, num_layers=3)
            for _ in range(self.num_mask_tokens)
        )
        self.iou_prediction_head = MLP(input_dim=D, hidden_dim=iou_head_hidden_dim,
                                       output_dim=self.num_mask_tokens,
                                       num_layers=positive_int(iou_head_depth, "iou_head_depth"))

    def forward(self, image_embeddings: Tensor, image_pe: Tensor,
                sparse_prompt_embeddings: Tensor, dense_prompt_embeddings: Tensor,
                multimask_output: bool, pixel_features: Tensor | None = None,
                ) -> tuple[Tensor, Tensor]:
        """Predict masks for B prompts on one image (or B images, one prompt each).

        Args:
            image_embeddings: Tensor[1 or B, D, h, w] from the image encoder (one image
                shared by all B prompts, or one image per prompt).
            image_pe: Tensor[1, D, h, w], ``PromptEncoder.get_dense_pe()``.
            sparse_prompt_embeddings: Tensor[B, N, D]; dense_prompt_embeddings:
                Tensor[B, D, h, w] (both from the prompt encoder).
            multimask_output: True: masks 1..3 (ambiguous prompt); False: mask 0.
            pixel_features: Tensor[1 or B, D/8, 4h, 4w] from a ``PixelSkip`` (ours, not
                SAM's), added to the upscaled image side before the hypernetwork; or None.

        Returns:
            mask logits Tensor[B, 3 or 1, 4h, 4w] and predicted IoU Tensor[B, 3 or 1].
        """
        if not isinstance(multimask_output, bool):
            raise TypeError(f"multimask_output must be a bool, got {multimask_output!r}")
        masks, iou_pred = self.predict_masks(image_embeddings, image_pe,
                                             sparse_prompt_embeddings, dense_prompt_embeddings,
                                             pixel_features)
        keep = slice(1, None) if multimask_output else slice(0, 1)
        return masks[:, keep], iou_pred[:, keep]  # (B, 3|1, 4h, 4w), (B, 3|1)

    def predict_masks(self, image_embeddings: Tensor, image_pe: Tensor,
                      sparse_prompt_embeddings: Tensor,
                      dense_prompt_embeddings: Tensor,
                      pixel_features: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """All ``num_mask_tokens`` masks and IoUs: Tensor[B, M, 4h, 4w], Tensor[B, M]."""
        B = self._check(image_embeddings, image_pe, sparse_prompt_embeddings,
                        dense_prompt_embeddings, pixel_features)
        output_tokens = torch.cat([self.iou_token.weight, self.mask_tokens.weight])  # (1+M, D)
        output_tokens = output_tokens.unsqueeze(0).expand(B, -1, -1)  # (B, 1+M, D)
        tokens = torch.cat((output_tokens, sparse_prompt_embeddings), dim=1)  # (B, 1+M+N, D)
        src = image_embeddings.expand(B, -1, -1, -1) + dense_prompt_embeddings  # (B, D, h, w)
        pos_src = image_pe.expand(B, -1, -1, -1)  # (B, D, h, w)
        b, c, h, w = src.shape
        hs, src = self.transformer(src, pos_src, tokens)  # (B, 1+M+N, D), (B, hw, D)
        iou_token_out = hs[:, 0, :]  # (B, D)
        mask_tokens_out = hs[:, 1:1 + self.num_mask_tokens, :]  # (B, M, D)
        src = src.transpose(1, 2).reshape(b, c, h, w)  # (B, D, h, w)
        upscaled = self.output_upscaling(src)  # (B, D/8, 4h, 4w)
        if pixel_features is not None:  # ours: the pixels' own features, once per image
            upscaled = upscaled + pixel_features  # (B, D/8, 4h, 4w), broadcast over prompts
        hyper_in = torch.stack([mlp(mask_tokens_out[:, i, :]) for i, mlp
                                in enumerate(self.output_hypernetworks_mlps)], dim=1)  # (B, M, D/8)
        b, c, h, w = upscaled.shape
        masks = (hyper_in @ upscaled.view(b, c, h * w)).view(b, -1, h, w)  # (B, M, 4h, 4w)
        iou_pred = self.iou_prediction_head(iou_token_out)  # (B, M)
        return masks, iou_pred

    def _check(self, image_embeddings, image_pe, sparse, dense, pixel=None) -> int:
        D = self.transformer_dim
        require_dim(sparse, "sparse_prompt_embeddings", 3, f"Tensor[B, N, {D}]")
        B = sparse.shape[0]
        if sparse.shape[2] != D:
            raise ValueError(f"sparse_prompt_embeddings must be Tensor[B, N, {D}], "
                             f"got {shape_str(sparse)}")
        require_dim(image_embeddings, "image_embeddings", 4, f"Tensor[1 or {B}, {D}, h, w]")
        if image_embeddings.shape[0] not in (1, B) or image_embeddings.shape[1] != D:
            raise ValueError(f"image_embeddings must be Tensor[1 or {B}, {D}, h, w] (one image "
                             f"for all B={B} prompts, or one per prompt), "
                             f"got {shape_str(image_embeddings)}")
        h, w = image_embeddings.shape[2:]
        require_dim(image_pe, "image_pe", 4, f"Tensor[1, {D}, {h}, {w}]")
        if tuple(image_pe.shape) != (1, D, h, w):
            raise ValueError(f"image_pe must be Tensor[1, {D}, {h}, {w}], "
                             f"got {shape_str(image_pe)}")
        require_dim(dense, "dense_prompt_embeddings", 4, f"Tensor[{B}, {D}, {h}, {w}]")
        if tuple(dense.shape) != (B, D, h, w):
            raise ValueError(f"dense_prompt_embeddings must be Tensor[{B}, {D}, {h}, {w}], "
                             f"got {shape_str(dense)}")
        if pixel is not None:
            expected = f"Tensor[1 or {B}, {D // 8}, {4 * h}, {4 * w}]"
            require_dim(pixel, "pixel_features", 4, expected)
            if pixel.shape[0] not in (1, B) or tuple(pixel.shape[1:]) != (D // 8, 4 * h, 4 * w):
                raise ValueError(f"pixel_features must be {expected} (the masks' grid), "
                                 f"got {shape_str(pixel)}")
        return B
