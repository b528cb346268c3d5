"""Sam (the wiring, pre/post-processing) and build_sam_tiny against segment-anything's Sam."""

import copy

import pytest
import torch
import torch.nn.functional as F
from torch.testing import assert_close

from coursekit.sam import Sam, build_sam_tiny
from coursekit.validators import count_parameters


def test_state_dict_keys_and_shapes_equal_reference(sa):
    ref = sa.ref_sam()
    ours = build_sam_tiny(**sa.TINY_AS_REF)
    assert {k: v.shape for k, v in ours.state_dict().items()} == {
        k: v.shape for k, v in ref.state_dict().items()}


def test_preprocess_matches_reference(sam_pair):
    ref, ours = sam_pair
    x = torch.randint(0, 256, (2, 3, 200, 256)).float()  # 0..255, not square: padded
    out = ours.preprocess(x / 255)  # ours takes [0, 1] images
    assert out.shape == (2, 3, 256, 256)
    assert_close(out, ref.preprocess(x), rtol=0, atol=1e-5)
    assert (out[:, :, 200:] == 0).all()  # padding at the bottom, after normalising


def test_preprocess_hand_computed(sa):
    ours = build_sam_tiny(**sa.TINY_AS_REF)
    x = torch.tensor([0.485, 0.456 + 0.224, 0.406 - 2 * 0.225]).view(1, 3, 1, 1)
    out = ours.preprocess(x)
    assert_close(out[0, :, 0, 0], torch.tensor([0.0, 1.0, -2.0]))  # (x - mean) / std


@pytest.mark.parametrize("input_size, original_size", [((256, 256), (256, 256)),
                                                       ((192, 256), (150, 200)),
                                                       ((256, 128), (512, 256))])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_postprocess_matches_reference(sam_pair, input_size, original_size, dtype):
    ref, ours = (copy.deepcopy(m).to(dtype) for m in sam_pair)
    masks = torch.randn(2, 3, 64, 64, dtype=dtype)
    out = ours.postprocess_masks(masks, input_size, original_size)
    assert out.shape == (2, 3, *original_size)
    tol = 1e-5 if dtype == torch.float32 else 1e-12
    assert_close(out, ref.postprocess_masks(masks, input_size, original_size), rtol=0, atol=tol)


def test_postprocess_hand_computed(sa):
    """A constant logit map stays constant; a left/right step is crossed in the middle."""
    ours = build_sam_tiny(**sa.TINY_AS_REF)
    const = torch.full((1, 1, 64, 64), 3.0)
    assert_close(ours.postprocess_masks(const, (256, 256), (100, 80)),
                 torch.full((1, 1, 100, 80), 3.0))
    step = torch.zeros(1, 1, 64, 64)
    step[..., 32:] = 1.0
    out = ours.postprocess_masks(step, (256, 256), (256, 256))[0, 0, 0]
    assert out[:126].eq(0).all() and out[130:].eq(1).all()  # 4x: the step at columns 126-129
    assert_close(out[126:130], torch.tensor([0.125, 0.375, 0.625, 0.875]))


def test_postprocess_at_the_encoder_size_copies_and_never_aliases():
    """Masks already S x S and an S x S image: no resizing, but a new tensor."""
    ours = build_sam_tiny(img_size=64, patch_size=4, encoder_embed_dim=16, encoder_depth=1,
                          encoder_global_attn_indexes=(0,))
    logits = torch.randn(2, 3, 64, 64)
    out = ours.postprocess_masks(logits, (64, 64), (64, 64))
    assert torch.equal(out, logits) and out.data_ptr() != logits.data_ptr()
    assert torch.equal(ours.postprocess_masks(logits, (64, 50), (64, 50)), logits[..., :50])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_forward_batch_matches_reference(sam_pair, dtype):
    """B images, one prompt each: our differentiable forward vs the reference, image by image.

    (segment-anything's prompt encoder runs in float32 only: its tokens are float32.)
    """
    ref32 = sam_pair[0]
    ref, ours = (copy.deepcopy(m).to(dtype) for m in sam_pair)
    images = torch.rand(2, 3, 256, 256, dtype=dtype)
    boxes = torch.tensor([[10.0, 20.0, 100.0, 200.0], [50.0, 60.0, 70.0, 80.0]], dtype=dtype)
    masks, iou = ours(images, boxes=boxes, multimask_output=True)
    assert masks.shape == (2, 3, 64, 64) and iou.shape == (2, 3)
    with torch.no_grad():
        for b in range(2):
            emb = ref.image_encoder(ref.preprocess(images[b:b + 1] * 255))
            sparse, dense = ref32.prompt_encoder(None, boxes[b:b + 1].float(), None)
            m, i = ref.mask_decoder(emb, ref32.prompt_encoder.get_dense_pe().to(dtype),
                                    sparse.to(dtype), dense.to(dtype), True)
            assert_close(masks[b:b + 1].detach(), m, rtol=0, atol=1e-5)
            assert_close(iou[b:b + 1].detach(), i, rtol=0, atol=1e-5)


def test_forward_is_differentiable(sa):
    ours = build_sam_tiny(img_size=32, patch_size=8, encoder_embed_dim=16, encoder_depth=2,
                          encoder_window_size=2, encoder_global_attn_indexes=(1,),
                          prompt_embed_dim=16, mask_in_chans=4, decoder_depth=1,
                          decoder_mlp_dim=16, iou_head_hidden_dim=8)
    images = torch.rand(2, 3, 32, 32)
    points = (torch.rand(2, 1, 2) * 32, torch.ones(2, 1, dtype=torch.long))
    masks, iou = ours(images, points=points, multimask_output=False)
    (masks.mean() + iou.mean()).backward()
    grads = {n: p.grad for n, p in ours.named_parameters()}
    assert grads["image_encoder.patch_embed.proj.weight"].abs().sum() > 0
    assert grads["mask_decoder.output_upscaling.0.weight"].abs().sum() > 0
    assert grads["prompt_encoder.point_embeddings.1.weight"].abs().sum() > 0


def test_build_sam_tiny_default_sizes():
    sam = build_sam_tiny()
    assert count_parameters(sam) <= 2_000_000  # DESIGN: lesson models <= 2 M parameters
    assert sam.img_size == 128 and sam.prompt_encoder.image_embedding_size == (16, 16)
    assert sam.prompt_encoder.mask_input_size == (64, 64)
    with torch.no_grad():
        emb = sam.image_encoder(sam.preprocess(torch.rand(1, 3, 128, 96)))
    assert emb.shape == (1, 64, 16, 16)


def test_bad_inputs(sa):
    ours = build_sam_tiny(**sa.TINY_AS_REF)
    with pytest.raises(ValueError, match=r"x must be Tensor\[B, 3, h, w\] with h, w <= 256"):
        ours.preprocess(torch.zeros(1, 3, 300, 20))
    with pytest.raises(TypeError, match="x must be a floating-point"):
        ours.preprocess(torch.zeros(1, 3, 20, 20, dtype=torch.uint8))
    with pytest.raises(ValueError, match="input_size must be at most"):
        ours.postprocess_masks(torch.zeros(1, 1, 64, 64), (300, 200), (300, 200))
    with pytest.raises(ValueError, match="give one prompt per image"):
        ours(torch.zeros(2, 3, 256, 256), boxes=torch.zeros(3, 4))
    with pytest.raises(TypeError, match="image_encoder must be a ImageEncoderViT"):
        Sam(image_encoder=F, prompt_encoder=ours.prompt_encoder, mask_decoder=ours.mask_decoder)
    with pytest.raises(ValueError, match="input_image_size must be"):
        Sam(image_encoder=build_sam_tiny().image_encoder, prompt_encoder=ours.prompt_encoder,
            mask_decoder=ours.mask_decoder)
