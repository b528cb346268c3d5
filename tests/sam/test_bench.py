"""The bench's reference model: segment-anything's classes wired as our shipped config."""

import math

import pytest
import torch
from torch.testing import assert_close

pytest.importorskip("segment_anything")

from coursekit.sam import SamPredictor, build_sam_tiny  # noqa: E402
from coursekit.sam.bench import reference_sam  # noqa: E402
from coursekit.sam.train import SAM_CONFIG  # noqa: E402


def test_reference_sam_loads_the_shipped_config_strictly_and_agrees():
    from segment_anything import SamPredictor as RefPredictor

    torch.manual_seed(0)
    ours = build_sam_tiny(**SAM_CONFIG).eval()
    with torch.no_grad():
        for p in ours.parameters():
            p.add_(torch.randn_like(p) * 0.05)  # no zero-initialised parameter left
    ref = reference_sam(ours)
    image = (torch.rand(3, ours.img_size, ours.img_size) * 255).to(torch.uint8)
    a, b = SamPredictor(ours), RefPredictor(ref)
    a.set_image(image)
    b.set_image(image.permute(1, 2, 0).numpy())
    _, iou_a, low_a = a.predict(point_coords=[[20.0, 30.0]], point_labels=[1])
    _, iou_b, low_b = b.predict(point_coords=torch.tensor([[20.0, 30.0]]).numpy(),
                                point_labels=torch.tensor([1]).numpy())
    assert_close(low_a, torch.from_numpy(low_b), rtol=0, atol=1e-4)
    assert_close(iou_a, torch.from_numpy(iou_b), rtol=0, atol=1e-5)


def test_reference_sam_refuses_what_is_not_our_sam():
    with pytest.raises(TypeError, match="ours must be a coursekit.sam.Sam, got dict"):
        reference_sam(SAM_CONFIG)


def encoder_flops_by_hand(img_size, patch_size, width, depth, n_global, out_chans=64):
    """2 FLOPs per multiply-add: T tokens of width D, 4 x 4 windows, C output channels."""
    g = img_size // patch_size
    T, D, P, C = g * g, width, patch_size, out_chans
    patches = 2 * T * (3 * P * P) * D
    linear = 2 * T * 12 * D * D  # qkv 3 D^2, projection D^2, MLP 2 x 4 D^2 per token

    def attention(keys):  # q k^T and attn v, + the relative positions (rows, columns)
        return 4 * T * keys * D + 4 * T * math.isqrt(keys) * D

    blocks = (depth - n_global) * (linear + attention(4 * 4)) + n_global * (linear + attention(T))
    neck = 2 * T * D * C + 2 * T * 9 * C * C  # 1 x 1 then 3 x 3 convolution
    dense_pe = 2 * T * 2 * (C // 2)  # the Fourier features of the grid, cached with it
    return patches + blocks + neck + dense_pe


def test_click_flops_counts_a_hand_computed_model_and_the_shipped_asymmetry():
    from coursekit.sam.bench import click_flops
    from coursekit.sam.train import SAM_CONFIG as config

    torch.manual_seed(0)
    model = build_sam_tiny(**config).eval()
    predictor = SamPredictor(model)
    image = torch.rand(3, model.img_size, model.img_size)
    encoder, decoder = click_flops(predictor, image, [[20.0, 30.0]], [1])
    assert encoder == encoder_flops_by_hand(
        model.img_size, config["patch_size"], config["encoder_embed_dim"],
        config["encoder_depth"], len(config["encoder_global_attn_indexes"]))
    # the shipped design: the encoder does >= 15x the arithmetic of a click (18x; 309x with
    # the 12-block, 256-wide encoder); the decoder's CPU time is mostly per-operation cost
    assert encoder >= 15 * decoder > 0
    assert predictor.is_image_set  # click_flops leaves the image set


def test_click_flops_of_the_twelve_block_encoder_by_hand():
    """12 blocks of 256 (4 global), as trained in the session that measured it (README)."""
    from coursekit.sam.bench import click_flops

    config = dict(img_size=64, patch_size=4, encoder_embed_dim=256, encoder_depth=12,
                  encoder_num_heads=8, encoder_global_attn_indexes=(2, 5, 8, 11))
    predictor = SamPredictor(build_sam_tiny(**config).eval())
    encoder, decoder = click_flops(predictor, torch.rand(3, 64, 64), [[20.0, 30.0]], [1])
    assert encoder == encoder_flops_by_hand(64, 4, 256, 12, 4) == 5_192_581_120
    assert decoder == 16_815_360 and round(encoder / decoder) == 309  # 16.8 MFLOP a click


def test_click_flops_bad_input_names_the_argument():
    from coursekit.sam.bench import click_flops

    with pytest.raises(TypeError, match="predictor must be a coursekit.sam.SamPredictor"):
        click_flops(build_sam_tiny(img_size=32, encoder_embed_dim=16, encoder_depth=1,
                                   encoder_global_attn_indexes=(0,)), None, [[1.0, 1.0]], [1])
