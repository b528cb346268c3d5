"""PixelSkip (ours, not SAM's): the image's pixels at the masks' resolution, once per image."""

import math

import pytest
import torch
from torch.nn import functional as F
from torch.testing import assert_close

from coursekit.sam import (
    MaskDecoder,
    PixelSkip,
    Sam,
    SamPredictor,
    TwoWayTransformer,
    build_sam_tiny,
)
from coursekit.sam.bench import reference_sam
from coursekit.sam.data import crowd_circle_ids, sample_prompts, scene_segments
from coursekit.sam.train import interactive_loss

SMALL = dict(img_size=32, patch_size=4, encoder_embed_dim=32, encoder_depth=2,
             encoder_global_attn_indexes=(1,), prompt_embed_dim=32, decoder_mlp_dim=64)


def test_hand_computed_centre_taps():
    """Both kernels a single centre tap of 1 on channel 0: out = GELU(x) on channel 0."""
    skip = PixelSkip(out_chans=2, hidden=2)
    with torch.no_grad():
        for conv in (skip.conv1, skip.conv2):
            conv.weight.zero_()
            conv.bias.zero_()
            conv.weight[0, 0, 1, 1] = 1.0
    x = torch.zeros(1, 3, 4, 4)
    x[0, 0, 1, 2], x[0, 0, 3, 0], x[0, 1, 0, 0] = 1.0, -2.0, 5.0  # channel 1 is ignored
    out = skip(x)
    expected = torch.zeros(1, 2, 4, 4)
    expected[0, 0, 1, 2] = 0.5 * (1 + math.erf(1 / math.sqrt(2)))  # GELU(1) = 0.8413
    expected[0, 0, 3, 0] = -2.0 * 0.5 * (1 + math.erf(-2 / math.sqrt(2)))  # GELU(-2) = -0.0455
    assert_close(out, expected)
    assert out[0, 0, 1, 2].item() == pytest.approx(0.841345, abs=1e-6)


def test_matches_functional_convolutions_float64(device):
    torch.manual_seed(0)
    skip = PixelSkip(out_chans=4, stride=2, hidden=5).double().to(device)
    torch.nn.init.normal_(skip.conv2.weight)  # away from its zero start
    x = torch.randn(2, 3, 8, 8, dtype=torch.float64, device=device)
    h = F.gelu(F.conv2d(x, skip.conv1.weight, skip.conv1.bias, stride=2, padding=1))
    ref = F.conv2d(h, skip.conv2.weight, skip.conv2.bias, padding=1)
    out = skip(x)
    assert out.shape == (2, 4, 4, 4) and out.device == x.device and out.dtype == torch.float64
    assert_close(out, ref, rtol=0, atol=1e-12)


def test_gradcheck():
    torch.manual_seed(1)
    skip = PixelSkip(out_chans=2, hidden=3).double()
    torch.nn.init.normal_(skip.conv2.weight)
    x = torch.randn(1, 3, 4, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(skip, (x,))


def _decoder(dtype=torch.float64):
    torch.manual_seed(2)
    dec = MaskDecoder(transformer_dim=32,
                      transformer=TwoWayTransformer(depth=1, embedding_dim=32, num_heads=2,
                                                    mlp_dim=32)).to(dtype).eval()
    g = torch.Generator().manual_seed(3)

    def r(*shape):
        return torch.randn(*shape, generator=g, dtype=dtype)

    return dec, (r(1, 32, 4, 4), r(1, 32, 4, 4), r(3, 2, 32), r(3, 32, 4, 4)), r(1, 4, 16, 16)


def test_decoder_adds_the_pixel_features_before_the_hypernetwork():
    """Reference: SAM's decoder whose upscaling is followed by + pixel features."""
    dec, args, pix = _decoder()
    with torch.no_grad():
        ours = dec(*args, True, pix)
        plain = dec(*args, True)
        upscaling = dec.output_upscaling
        dec.output_upscaling = torch.nn.Sequential(upscaling, _Add(pix))
        ref = dec(*args, True)
    assert_close(ours, ref, rtol=0, atol=1e-12)
    assert (ours[0] - plain[0]).abs().max() > 1e-3  # the masks moved...
    assert_close(ours[1], plain[1], rtol=0, atol=1e-12)  # ...the IoU head did not


class _Add(torch.nn.Module):
    def __init__(self, t):
        super().__init__()
        self.t = t

    def forward(self, x):
        return x + self.t


def test_decoder_gradcheck_through_pixel_features():
    dec, args, pix = _decoder()
    pix = pix[..., :16, :16].clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda p: dec(*args, False, p)[0], (pix,))


def test_fresh_pixel_skip_changes_nothing_and_trains():
    torch.manual_seed(0)
    plain = build_sam_tiny(**SMALL).eval()
    torch.manual_seed(0)
    skipped = build_sam_tiny(**SMALL, pixel_skip=True).eval()
    assert set(skipped.state_dict()) - set(plain.state_dict()) == {
        "pixel_skip.conv1.weight", "pixel_skip.conv1.bias", "pixel_skip.conv2.weight",
        "pixel_skip.conv2.bias"}
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    points = (torch.tensor([[[10.0, 12.0]], [[20.0, 5.0]]]), torch.ones(2, 1, dtype=torch.long))
    with torch.no_grad():
        assert_close(skipped(images, points), plain(images, points), rtol=0, atol=0)
    # one training loss reaches the skip's last convolution (zero at the start)
    from coursekit.data import render_batch

    scenes = render_batch(range(2), size=32)
    g = torch.Generator().manual_seed(0)
    prompts = sample_prompts(scene_segments(scenes, crowd_circle_ids(range(2), 32)), 4, g)
    skipped.train()
    interactive_loss(skipped, scenes.image, prompts, rounds=2, generator=g).backward()
    assert skipped.pixel_skip.conv2.weight.grad.abs().sum() > 0


def test_predictor_caches_pixel_features_and_matches_forward(device):
    torch.manual_seed(0)
    model = build_sam_tiny(**SMALL, pixel_skip=True).to(device).eval()
    torch.nn.init.normal_(model.pixel_skip.conv2.weight)
    image = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(1)).to(device)
    predictor = SamPredictor(model)
    predictor.set_image(image)
    assert predictor.pixel_features.shape == (1, 4, 32, 32)  # D/8 = 4 on the masks' grid
    _, iou, low = predictor.predict(point_coords=[[10.0, 12.0]], point_labels=[1])
    points = (torch.tensor([[[10.0, 12.0]]], device=device),
              torch.ones(1, 1, dtype=torch.long, device=device))
    with torch.no_grad():
        low_ref, iou_ref = model(image[None], points)
    assert_close(low, low_ref[0], rtol=1e-5, atol=1e-5)
    assert_close(iou, iou_ref[0], rtol=1e-5, atol=1e-5)
    predictor.reset_image()
    assert predictor.pixel_features is None


def test_bad_inputs():
    skip = PixelSkip(out_chans=4, stride=2)
    with pytest.raises(ValueError, match="x must be Tensor"):
        skip(torch.zeros(1, 1, 8, 8))
    with pytest.raises(ValueError, match="x must be Tensor.*stride=2"):
        skip(torch.zeros(1, 3, 7, 8))
    with pytest.raises(TypeError, match="x must be"):
        skip(torch.zeros(1, 3, 8, 8, dtype=torch.long))
    with pytest.raises(ValueError, match="stride"):
        PixelSkip(out_chans=4, stride=0)
    dec, args, pix = _decoder()
    with pytest.raises(ValueError, match="pixel_features must be Tensor"):
        dec(*args, True, pix[:, :3])
    with pytest.raises(ValueError, match="pixel_features"):
        dec(*args, True, pix[0])
    model = build_sam_tiny(**SMALL)
    with pytest.raises(ValueError, match="pixel_skip must have out_chans=4"):
        Sam(image_encoder=model.image_encoder, prompt_encoder=model.prompt_encoder,
            mask_decoder=model.mask_decoder, pixel_skip=PixelSkip(out_chans=8))
    with pytest.raises(TypeError, match="pixel_skip must be a PixelSkip"):
        Sam(image_encoder=model.image_encoder, prompt_encoder=model.prompt_encoder,
            mask_decoder=model.mask_decoder, pixel_skip=torch.nn.Identity())
    with pytest.raises(TypeError, match="pixel_skip must be a bool"):
        build_sam_tiny(**SMALL, pixel_skip="yes")
    pytest.importorskip("segment_anything")
    with pytest.raises(ValueError, match="pixel skip"):
        reference_sam(build_sam_tiny(**SMALL, pixel_skip=True))


def test_without_pixel_skip_is_sams_architecture_sharing_the_modules():
    torch.manual_seed(0)
    model = build_sam_tiny(**SMALL, pixel_skip=True).double().eval()
    torch.nn.init.normal_(model.pixel_skip.conv2.weight)
    twin = model.without_pixel_skip()
    assert twin.pixel_skip is None and twin.image_encoder is model.image_encoder
    assert twin.mask_decoder is model.mask_decoder and not twin.training
    assert set(twin.state_dict()) == {k for k in model.state_dict() if "pixel_skip" not in k}
    assert twin.pixel_mean.dtype == torch.float64
    images = torch.rand(1, 3, 32, 32, dtype=torch.float64)
    points = (torch.tensor([[[10.0, 12.0]]], dtype=torch.float64),
              torch.ones(1, 1, dtype=torch.long))
    with torch.no_grad():
        plain = build_sam_tiny(**SMALL).double().eval()
        plain.load_state_dict(twin.state_dict())
        assert_close(twin(images, points), plain(images, points), rtol=0, atol=0)
        assert (twin(images, points)[0] - model(images, points)[0]).abs().max() > 1e-6
    pytest.importorskip("segment_anything")
    reference = reference_sam(twin)  # loads strictly
    assert not hasattr(reference, "pixel_skip")
