"""``coursekit bench sam``: encoder once, decoder per click, automatic masks; vs segment-anything.

Rows (the shipped tiny SAM, ``load_sam``; random weights if it is not installed yet):

* the image encoder on one ShapesWorld scene at the model's size (``set_image``), ours vs
  segment-anything's ``SamPredictor`` with the same weights;
* one click (``predict``: prompt encoder + mask decoder + resizing the masks), ours vs
  segment-anything's;
* the lecture's point in one number: decoder time per prompt ÷ encoder time (target
  <= 1/20, and the decoder <= 10 ms on a CPU);
* the decoder per prompt when 64 prompts go through it at once (``predict_batch``, as
  the automatic mask generator does), and that over the encoder;
* the same asymmetry in arithmetic (``click_flops``: torch's ``FlopCounterMode`` counts
  the matmuls and convolutions): it does not depend on the machine, while the decoder's
  milliseconds are mostly the per-operation cost of ~300 small operations;
* automatic masks for one scene (16 × 16 points), ours vs ``SamAutomaticMaskGenerator``.

segment-anything is imported here only, to compare.
"""

from __future__ import annotations

import numpy as np
import torch

from coursekit.bench import time_call
from coursekit.sam.automatic import AutomaticMaskGenerator
from coursekit.sam.predictor import SamPredictor
from coursekit.sam.sam import Sam, build_sam_tiny
from coursekit.validators import describe


def _row(name: str, ours: float, reference: float | None, note: str) -> dict:
    return {"benchmark": name, "ours": f"{ours * 1e3:.1f} ms",
            "reference": "-" if reference is None else f"{reference * 1e3:.1f} ms",
            "ratio": None if reference is None else ours / reference, "note": note}


def _shipped():
    from coursekit.sam.train import SAM_CONFIG, load_sam

    try:
        return load_sam(), "shipped weights"
    except (FileNotFoundError, KeyError, ValueError):
        torch.manual_seed(0)
        return build_sam_tiny(**SAM_CONFIG).eval(), "random weights (not shipped)"


def reference_sam(ours: Sam):
    """segment-anything's ``Sam`` wired like our model ``ours`` (its sizes read off its
    modules), with ``ours``'s weights loaded strictly; in eval mode."""
    from functools import partial

    from segment_anything import modeling as ref

    if not isinstance(ours, Sam):
        raise TypeError(f"ours must be a coursekit.sam.Sam, got {describe(ours)}")
    if ours.pixel_skip is not None:
        raise ValueError("ours has a pixel skip (ours, not SAM's): segment-anything has no "
                         "such module to load it into; pass ours.without_pixel_skip()")
    enc, dec = ours.image_encoder, ours.mask_decoder
    S, P = enc.img_size, enc.patch_embed.proj.kernel_size[0]
    blocks = enc.blocks
    image_encoder = ref.ImageEncoderViT(
        img_size=S, patch_size=P, embed_dim=blocks[0].norm1.normalized_shape[0],
        depth=len(blocks), num_heads=blocks[0].attn.num_heads,
        out_chans=ours.prompt_encoder.embed_dim, qkv_bias=True,
        norm_layer=partial(torch.nn.LayerNorm, eps=blocks[0].norm1.eps),
        use_rel_pos=blocks[0].attn.use_rel_pos,
        window_size=max(b.window_size for b in blocks),
        global_attn_indexes=tuple(i for i, b in enumerate(blocks) if b.window_size == 0))
    pe = ours.prompt_encoder
    prompt_encoder = ref.PromptEncoder(embed_dim=pe.embed_dim,
                                       image_embedding_size=tuple(pe.image_embedding_size),
                                       input_image_size=tuple(pe.input_image_size),
                                       mask_in_chans=pe.mask_downscaling[0].out_channels * 4)
    t = dec.transformer
    transformer = ref.TwoWayTransformer(depth=len(t.layers), embedding_dim=t.embedding_dim,
                                        num_heads=t.num_heads, mlp_dim=t.mlp_dim)
    mask_decoder = ref.MaskDecoder(
        transformer_dim=dec.transformer_dim, transformer=transformer,
        num_multimask_outputs=dec.num_multimask_outputs, iou_head_depth=3,
        iou_head_hidden_dim=dec.iou_prediction_head.layers[0].out_features)
    model = ref.Sam(image_encoder=image_encoder, prompt_encoder=prompt_encoder,
                    mask_decoder=mask_decoder)
    model.load_state_dict(ours.state_dict(), strict=True)
    return model.to(ours.device).eval()


def click_flops(predictor: SamPredictor, image, click, label) -> tuple[int, int]:
    """(FLOPs of ``set_image(image)``, FLOPs of one ``predict``) as counted by torch's
    ``FlopCounterMode`` (2 per multiply-add of matmuls and convolutions)."""
    from torch.utils.flop_counter import FlopCounterMode

    if not isinstance(predictor, SamPredictor):
        raise TypeError(f"predictor must be a coursekit.sam.SamPredictor, "
                        f"got {describe(predictor)}")
    with FlopCounterMode(display=False) as counter:
        predictor.set_image(image)
    encoder = counter.get_total_flops()
    with FlopCounterMode(display=False) as counter:
        predictor.predict(point_coords=click, point_labels=label)
    return encoder, counter.get_total_flops()


@torch.no_grad()
def bench(quick: bool = False) -> list[dict]:
    """Time ours against segment-anything; one row per case (median of several runs)."""
    from segment_anything import SamAutomaticMaskGenerator
    from segment_anything import SamPredictor as RefPredictor

    from coursekit.data.shapesworld import render_scene

    repeat = 3 if quick else 9
    model, weights = _shipped()
    image = render_scene(3_000_000, size=model.img_size).image
    uint8 = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    ours = SamPredictor(model)
    ref_model = reference_sam(model)
    ref = RefPredictor(ref_model)
    click, label = [[40.0, 30.0]], [1]
    enc = time_call(lambda: ours.set_image(image), repeat=repeat)
    enc_ref = time_call(lambda: ref.set_image(uint8), repeat=repeat)
    ours.set_image(image)
    ref.set_image(uint8)
    dec = time_call(lambda: ours.predict(point_coords=click, point_labels=label),
                    repeat=3 * repeat)
    dec_ref = time_call(lambda: ref.predict(point_coords=np.array(click),
                                            point_labels=np.array(label)), repeat=3 * repeat)
    rows = [
        _row(f"SAM image encoder, once per image ({model.img_size} px)", enc, enc_ref, weights),
        _row("SAM decoder per click (prompt encoder + decoder + resize)", dec, dec_ref, weights),
        {"benchmark": "SAM decoder ÷ encoder (target <= 1/20, decoder <= 10 ms)",
         "ours": f"{dec / enc:.3f}", "reference": f"{dec_ref / enc_ref:.3f}", "ratio": None,
         "note": f"1/{enc / dec:.1f} ours, 1/{enc_ref / dec_ref:.1f} segment-anything"},
    ]
    # the same decoder over 64 prompts at once (the automatic generator's batches): the
    # per-operation cost is paid once per batch, not once per prompt
    g = torch.Generator().manual_seed(0)
    many = torch.rand(64, 1, 2, generator=g) * model.img_size  # (64, 1, 2) clicks
    ones = torch.ones(64, 1, dtype=torch.long)
    batch = time_call(lambda: ours.predict_batch(many, ones), repeat=repeat) / 64
    ref_many = torch.as_tensor(ref.transform.apply_coords(many.numpy(), ref.original_size))
    batch_ref = time_call(lambda: ref.predict_torch(ref_many, ones), repeat=repeat) / 64
    rows += [
        _row("SAM decoder per prompt, 64 prompts in one batch", batch, batch_ref, weights),
        {"benchmark": "SAM decoder per prompt in a batch of 64 ÷ encoder",
         "ours": f"{batch / enc:.4f}", "reference": f"{batch_ref / enc_ref:.4f}",
         "ratio": None,
         "note": f"1/{enc / batch:.0f} ours, 1/{enc_ref / batch_ref:.0f} segment-anything"},
    ]
    enc_flops, dec_flops = click_flops(ours, image, click, label)
    rows.append({"benchmark": "SAM arithmetic: encoder ÷ decoder per click (FLOPs)",
                 "ours": f"{enc_flops / dec_flops:.0f}×", "reference": "-", "ratio": None,
                 "note": f"encoder {enc_flops / 1e9:.2f} GFLOP, decoder "
                         f"{dec_flops / 1e6:.1f} MFLOP (matmuls and convolutions)"})
    n = 8 if quick else 16
    gen = AutomaticMaskGenerator(model, points_per_side=n)
    gen_ref = SamAutomaticMaskGenerator(ref_model, points_per_side=n)
    count = len(gen.generate(image))
    auto = time_call(lambda: gen.generate(image), repeat=max(3, repeat // 3))
    auto_ref = time_call(lambda: gen_ref.generate(uint8), repeat=max(3, repeat // 3))
    rows.append(_row(f"automatic masks per image ({n}×{n} points)", auto, auto_ref,
                     f"{count} masks, {weights}"))
    return rows
