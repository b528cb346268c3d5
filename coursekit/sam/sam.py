"""The Segment Anything model: image encoder + prompt encoder + mask decoder (lesson 10).

Lecture: *Segment Anything: architecture* — a heavy image encoder, run once per image,
and a light prompt encoder + mask decoder, run per prompt, so that interaction is
real-time::

    image [B, 3, H, W] in [0, 1]
      --preprocess: (x - mean) / std, pad to S × S-->      [B, 3, S, S]
      --ImageEncoderViT (once per image)-->                [B, C, S/P, S/P]   C = D
      (--PixelSkip, ours, optional, once per image-->      [B, D/8, 4S/P, 4S/P])
    prompts (points, boxes, masks) --PromptEncoder-->      sparse [B, N, D], dense [B, D, h, w]
      --MaskDecoder (per prompt)-->                        logits [B, 3, 4h, 4w], IoU [B, 3]
      --postprocess_masks: bilinear to S × S, crop the padding, bilinear to H × W

``build_sam_tiny`` wires the three components at course size. Same state_dict keys
and arithmetic as segment-anything's ``Sam`` (there the pixel mean and std are in
0–255 units; here in 0–1, the course's image range); the bilinear resizing is our
``coursekit.upsampling.bilinear_upsample``. Tested in tests/sam/test_sam.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from coursekit.sam.image_encoder import ImageEncoderViT
from coursekit.sam.mask_decoder import MaskDecoder
from coursekit.sam.pixel_skip import PixelSkip
from coursekit.sam.prompt_encoder import PromptEncoder
from coursekit.sam.transformer import TwoWayTransformer
from coursekit.upsampling import bilinear_upsample
from coursekit.validators import int_pair, require_dim, require_floating, shape_str

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class Sam(nn.Module):
    """Image encoder + prompt encoder + mask decoder, with pixel normalisation.

    ``mask_threshold = 0.0``: a pixel is in the mask when its logit is > 0.
    """

    mask_threshold: float = 0.0

    def __init__(self, *, image_encoder: ImageEncoderViT, prompt_encoder: PromptEncoder,
                 mask_decoder: MaskDecoder, pixel_mean: Sequence[float] = IMAGENET_MEAN,
                 pixel_std: Sequence[float] = IMAGENET_STD,
                 pixel_skip: PixelSkip | None = None) -> None:
        super().__init__()
        for name, module, cls in (("image_encoder", image_encoder, ImageEncoderViT),
                                  ("prompt_encoder", prompt_encoder, PromptEncoder),
                                  ("mask_decoder", mask_decoder, MaskDecoder)):
            if not isinstance(module, cls):
                raise TypeError(f"{name} must be a {cls.__name__}, got {type(module).__name__}")
        S = image_encoder.img_size
        if tuple(prompt_encoder.input_image_size) != (S, S):
            raise ValueError(f"prompt_encoder.input_image_size must be ({S}, {S}) (the image "
                             f"encoder's img_size), got {prompt_encoder.input_image_size}")
        if prompt_encoder.embed_dim != mask_decoder.transformer_dim:
            raise ValueError(f"prompt_encoder.embed_dim ({prompt_encoder.embed_dim}) must equal "
                             f"mask_decoder.transformer_dim ({mask_decoder.transformer_dim})")
        if pixel_skip is not None:
            if not isinstance(pixel_skip, PixelSkip):
                raise TypeError(f"pixel_skip must be a PixelSkip or None, got "
                                f"{type(pixel_skip).__name__}")
            P = image_encoder.patch_embed.proj.kernel_size[0]
            want = (mask_decoder.transformer_dim // 8, P // 4)
            if (pixel_skip.out_chans, pixel_skip.stride) != want or P % 4:
                raise ValueError(f"pixel_skip must have out_chans={want[0]} (D/8) and "
                                 f"stride={P / 4:g} (patch size / 4, an integer), got "
                                 f"{pixel_skip.out_chans} and {pixel_skip.stride}")
        self.image_encoder = image_encoder
        self.prompt_encoder = prompt_encoder
        self.mask_decoder = mask_decoder
        self.pixel_skip = pixel_skip
        self.register_buffer("pixel_mean", torch.tensor(pixel_mean).view(-1, 1, 1), False)
        self.register_buffer("pixel_std", torch.tensor(pixel_std).view(-1, 1, 1), False)

    @property
    def device(self) -> torch.device:
        return self.pixel_mean.device

    @property
    def img_size(self) -> int:
        """S: the square input size of the image encoder."""
        return self.image_encoder.img_size

    def preprocess(self, x: Tensor) -> Tensor:
        """Tensor[B, 3, h, w] in [0, 1], h, w <= S -> normalised and padded Tensor[B, 3, S, S]."""
        S = self.img_size
        require_floating(x, "x", f"a floating-point Tensor[B, 3, h, w] with h, w <= {S}")
        require_dim(x, "x", 4, f"Tensor[B, 3, h, w] with h, w <= {S}")
        h, w = x.shape[-2:]
        if x.shape[1] != 3 or h > S or w > S:
            raise ValueError(f"x must be Tensor[B, 3, h, w] with h, w <= {S} (resize the "
                             f"longest side first), got {shape_str(x)}")
        x = (x - self.pixel_mean) / self.pixel_std  # (B, 3, h, w)
        return F.pad(x, (0, S - w, 0, S - h))  # (B, 3, S, S), zeros at the bottom / right

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor | None]:
        """Preprocessed Tensor[B, 3, S, S] -> the embedding Tensor[B, D, S/P, S/P] and the
        pixel features Tensor[B, D/8, 4S/P, 4S/P] (None without a pixel skip): the once-per-
        image work."""
        pixels = None if self.pixel_skip is None else self.pixel_skip(x)
        return self.image_encoder(x), pixels

    def without_pixel_skip(self) -> Sam:
        """The same model minus our pixel skip: SAM's architecture exactly, sharing this
        model's modules (so segment-anything's classes can load its weights)."""
        twin = Sam(image_encoder=self.image_encoder, prompt_encoder=self.prompt_encoder,
                   mask_decoder=self.mask_decoder, pixel_mean=self.pixel_mean.flatten().tolist(),
                   pixel_std=self.pixel_std.flatten().tolist())
        return twin.to(device=self.device, dtype=self.pixel_mean.dtype).train(self.training)

    def postprocess_masks(self, masks: Tensor, input_size: tuple[int, int],
                          original_size: tuple[int, int]) -> Tensor:
        """Mask logits Tensor[B, C, 4h, 4w] -> Tensor[B, C, H, W] of the original image.

        Bilinear to S × S, crop the padding (the resized image is ``input_size``), then
        bilinear to ``original_size`` (our ``bilinear_upsample``, align_corners=False).
        """
        require_floating(masks, "masks", "a floating-point Tensor[B, C, h, w]")
        require_dim(masks, "masks", 4, "Tensor[B, C, h, w]")
        S = self.img_size
        in_h, in_w = int_pair(input_size, "input_size")
        if in_h > S or in_w > S:
            raise ValueError(f"input_size must be at most ({S}, {S}), got {input_size!r}")
        out_size = int_pair(original_size, "original_size")
        masks = bilinear_upsample(masks, size=(S, S))  # (B, C, S, S), a new tensor
        masks = masks[..., :in_h, :in_w]  # (B, C, in_h, in_w): the padding removed
        if out_size == (in_h, in_w):  # resizing to the same size copies: skip the work
            return masks.contiguous()
        return bilinear_upsample(masks, size=out_size)  # (B, C, H, W)

    def forward(self, images: Tensor, points: tuple[Tensor, Tensor] | None = None,
                boxes: Tensor | None = None, mask_inputs: Tensor | None = None,
                multimask_output: bool = True) -> tuple[Tensor, Tensor]:
        """B images with one prompt each (a training batch), differentiable.

        Args:
            images: Tensor[B, 3, h, w] in [0, 1], h, w <= S (prompt coordinates are its pixels).
            points: (Tensor[B, N, 2], Tensor[B, N]) or None; boxes: Tensor[B, 4] or None;
            mask_inputs: Tensor[B, 1, 4·S/P, 4·S/P] logits or None (see ``PromptEncoder``).

        Returns:
            low-resolution mask logits Tensor[B, 3 or 1, 4·S/P, 4·S/P] (of the padded
            input) and predicted IoUs Tensor[B, 3 or 1].
        """
        embeddings, pixels = self.encode(self.preprocess(images))  # (B, C, h, w), ...
        sparse, dense = self.prompt_encoder(points, boxes, mask_inputs)
        if sparse.shape[0] != embeddings.shape[0]:
            raise ValueError(f"give one prompt per image: {embeddings.shape[0]} images, "
                             f"{sparse.shape[0]} prompts")
        skip = () if pixels is None else (pixels,)  # SAM's call without a pixel skip
        return self.mask_decoder(embeddings, self.prompt_encoder.get_dense_pe(), sparse, dense,
                                 multimask_output, *skip)


def build_sam_tiny(*, img_size: int = 128, patch_size: int = 8, encoder_embed_dim: int = 128,
                   encoder_depth: int = 6, encoder_num_heads: int = 4,
                   encoder_window_size: int = 4,
                   encoder_global_attn_indexes: tuple[int, ...] = (2, 5),
                   use_rel_pos: bool = True, prompt_embed_dim: int = 64,
                   mask_in_chans: int = 16, decoder_depth: int = 2, decoder_num_heads: int = 4,
                   decoder_mlp_dim: int = 256, iou_head_hidden_dim: int = 64,
                   norm_eps: float = 1e-6, pixel_skip: bool = False) -> Sam:
    """A course-size SAM: the three components wired as segment-anything's ``_build_sam``.

    The image encoder's output channels equal the prompt embedding dimension D, and its
    grid ``img_size // patch_size`` is the prompt encoder's ``image_embedding_size``;
    the masks come out at 4× that grid. The defaults (128 × 128 input, 16 × 16 grid,
    64 × 64 masks) fit ShapesWorld scenes; the tiny parity configuration of
    tests/sam is ``build_sam_tiny(img_size=256, patch_size=16, encoder_embed_dim=96,
    encoder_depth=2, encoder_window_size=4, encoder_global_attn_indexes=(1,),
    mask_in_chans=8, decoder_mlp_dim=128)``. ``pixel_skip=True`` adds our ``PixelSkip``
    (not in segment-anything, so such a model has no reference to load into).
    """
    grid = img_size // patch_size
    image_encoder = ImageEncoderViT(
        img_size=img_size, patch_size=patch_size, embed_dim=encoder_embed_dim,
        depth=encoder_depth, num_heads=encoder_num_heads, out_chans=prompt_embed_dim,
        use_rel_pos=use_rel_pos, window_size=encoder_window_size,
        global_attn_indexes=tuple(encoder_global_attn_indexes), norm_eps=norm_eps,
    )
    prompt_encoder = PromptEncoder(embed_dim=prompt_embed_dim, image_embedding_size=(grid, grid),
                                   input_image_size=(img_size, img_size),
                                   mask_in_chans=mask_in_chans)
    transformer = TwoWayTransformer(depth=decoder_depth, embedding_dim=prompt_embed_dim,
                                    num_heads=decoder_num_heads, mlp_dim=decoder_mlp_dim)
    mask_decoder = MaskDecoder(transformer_dim=prompt_embed_dim, transformer=transformer,
                               num_multimask_outputs=3, iou_head_depth=3,
                               iou_head_hidden_dim=iou_head_hidden_dim)
    if not isinstance(pixel_skip, bool):
        raise TypeError(f"pixel_skip must be a bool, got {pixel_skip!r}")
    skip = PixelSkip(out_chans=prompt_embed_dim // 8, stride=max(1, patch_size // 4))
    return Sam(image_encoder=image_encoder, prompt_encoder=prompt_encoder,
               mask_decoder=mask_decoder, pixel_skip=skip if pixel_skip else None)
