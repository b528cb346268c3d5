"""segment-anything 1.0 as the reference: its modules at small sizes, random weights.

The sizes are those of /work/shared/REFERENCES.md. segment-anything initialises many
parameters to 0 or 1 (position embeddings, LayerNorms, relative positions), which would
hide mistakes, so ``randomize`` draws every parameter from N(0, std²) first; then
``ours.load_state_dict(ref.state_dict())`` copies them — the parameter names are the
same, so no mapping is needed.
"""

from types import SimpleNamespace

import pytest
import torch

sam_ref = pytest.importorskip("segment_anything")
from segment_anything import modeling as ref  # noqa: E402

from coursekit.sam import build_sam_tiny  # noqa: E402

REF_ENCODER = dict(img_size=256, patch_size=16, embed_dim=96, depth=2, num_heads=4,
                   out_chans=64, window_size=4, global_attn_indexes=(1,))
REF_PROMPT = dict(embed_dim=64, image_embedding_size=(16, 16), input_image_size=(256, 256),
                  mask_in_chans=8)
REF_TRANSFORMER = dict(depth=2, embedding_dim=64, mlp_dim=128, num_heads=4)
REF_DECODER = dict(transformer_dim=64, num_multimask_outputs=3, iou_head_depth=3,
                   iou_head_hidden_dim=64)
# our build_sam_tiny at the same sizes (segment-anything's defaults: no relative position,
# torch's LayerNorm epsilon)
TINY_AS_REF = dict(img_size=256, patch_size=16, encoder_embed_dim=96, encoder_depth=2,
                   encoder_num_heads=4, encoder_window_size=4, encoder_global_attn_indexes=(1,),
                   use_rel_pos=False, prompt_embed_dim=64, mask_in_chans=8, decoder_depth=2,
                   decoder_num_heads=4, decoder_mlp_dim=128, iou_head_hidden_dim=64,
                   norm_eps=1e-5)


def randomize(module: torch.nn.Module, std: float = 0.2, seed: int = 0) -> torch.nn.Module:
    """Every parameter ~ N(0, std²) (LayerNorm weights ~ 1 + N(0, std²)), seeded."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = torch.randn(p.shape, generator=g, dtype=torch.float64) * std
            base = 1.0 if ("norm" in name or "neck.1" in name or "neck.3" in name
                           or "downscaling.1" in name or "downscaling.4" in name
                           or "upscaling.1" in name) and name.endswith("weight") else 0.0
            p.copy_(base + noise)
    return module.eval()


def ref_sam(std: float = 0.2, seed: int = 0, **encoder_overrides):
    """segment-anything's ``Sam`` at the reference sizes, randomised."""
    enc = dict(REF_ENCODER, **encoder_overrides)
    model = ref.Sam(
        image_encoder=ref.ImageEncoderViT(**enc),
        prompt_encoder=ref.PromptEncoder(**REF_PROMPT),
        mask_decoder=ref.MaskDecoder(transformer=ref.TwoWayTransformer(**REF_TRANSFORMER),
                                     **REF_DECODER),
    )
    return randomize(model, std, seed)


def our_sam_like(reference, **overrides):
    """Our ``build_sam_tiny`` at the reference sizes with the reference's weights."""
    ours = build_sam_tiny(**dict(TINY_AS_REF, **overrides))
    ours.load_state_dict(reference.state_dict(), strict=True)
    return ours.eval()


@pytest.fixture(scope="session")
def sam_pair():
    """(reference Sam, our Sam) with the same random weights, float32; do not modify them
    (``copy.deepcopy`` before ``.to(dtype)``)."""
    reference = ref_sam(std=0.1)
    return reference, our_sam_like(reference)


@pytest.fixture
def sa():
    """The reference package and the builders above."""
    return SimpleNamespace(ref=ref, pkg=sam_ref, randomize=randomize, ref_sam=ref_sam,
                           our_sam_like=our_sam_like, REF_ENCODER=REF_ENCODER,
                           REF_PROMPT=REF_PROMPT, REF_TRANSFORMER=REF_TRANSFORMER,
                           REF_DECODER=REF_DECODER, TINY_AS_REF=TINY_AS_REF)
