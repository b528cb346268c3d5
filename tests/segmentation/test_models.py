"""FCN and U-Net: shapes, size, overfitting one batch, checkpoint round-trip, quick trainers."""

import pytest
import torch

from coursekit.checkpoints import load_pretrained, read_manifest, save_pretrained
from coursekit.segmentation.fcn import FCN, count_parameters
from coursekit.segmentation.losses import pixel_cross_entropy
from coursekit.segmentation.unet import UNet

MODELS = {"fcn": FCN, "unet": UNet}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("size", [(16, 16), (32, 48), (64, 64)])
def test_output_shape(name, size):
    model = MODELS[name](num_classes=5, width=8).eval()
    assert model(torch.rand(2, 3, *size)).shape == (2, 5, *size)


def test_unet_regression_heads_and_features():
    depth = UNet(width=8, out_channels=1).eval()
    flow = UNet(width=8, depth=2, in_channels=6, out_channels=2).eval()
    assert depth(torch.rand(1, 3, 24, 24)).shape == (1, 1, 24, 24)
    assert flow(torch.rand(1, 6, 12, 20)).shape == (1, 2, 12, 20)
    assert depth.forward_features(torch.rand(1, 3, 16, 16)).shape == (1, 8, 16, 16)
    assert UNet(norm="group", width=8)(torch.rand(1, 3, 8, 8)).shape == (1, 8, 8, 8)


def test_parameter_counts():
    # hand count for the smallest U-Net (width 1, depth 1, 1 class, no norm):
    # enc0 = (3*9+1) + (9+1), enc1 = (9+1)*2 + (2*2*9+2), up = 2*1*4+1,
    # dec = (2*9+1) + (9+1), head = 1+1
    tiny = UNet(num_classes=1, width=1, depth=1, norm="none")
    assert count_parameters(tiny) == 38 + 58 + 9 + 29 + 2
    # and the smallest FCN (channels 1, 2): stem = (3*9+1) + (9+1),
    # down = (1*2*9+2) + (2*2*9+2), up = 4x4 transposed (2*1*16+1) + (9+1), head = 1+1
    fcn = FCN(num_classes=1, width=1, depth=1, norm="none")
    assert count_parameters(fcn) == 38 + (20 + 38) + (33 + 10) + 2
    assert count_parameters(FCN()) <= 2_000_000
    assert count_parameters(UNet()) <= 2_000_000
    # the shared vocabulary: one count_parameters, importable where lessons 03 / 04 look for it
    import coursekit.segmentation
    import coursekit.validators

    assert coursekit.segmentation.count_parameters is coursekit.validators.count_parameters


def test_no_skips_in_fcn_but_skips_in_unet():
    fcn = FCN(width=4, depth=2)  # channels 4, 8, 16 -> decoder sees only what it upsamples
    assert [stage[0].in_channels for stage in fcn.up] == [16, 8]
    unet = UNet(width=4, depth=2)  # decoder blocks see upsampled + skip, concatenated
    assert [block[0][0].in_channels for block in unet.decoder] == [8 + 8, 4 + 4]


def _toy_batch():
    """Two 32x32 images of 8x8 class blocks, each class its own colour plus noise."""
    gen = torch.Generator().manual_seed(0)
    blocks = torch.randint(0, 4, (2, 4, 4), generator=gen)
    target = blocks.repeat_interleave(8, 1).repeat_interleave(8, 2)  # (2, 32, 32)
    colours = torch.rand(4, 3, generator=gen)
    image = colours[target].permute(0, 3, 1, 2) + 0.1 * torch.randn(2, 3, 32, 32, generator=gen)
    return image, target


@pytest.mark.parametrize("name", list(MODELS))
def test_overfits_one_batch(name):
    torch.manual_seed(0)
    model = MODELS[name](num_classes=4, width=8, depth=2)
    image, target = _toy_batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(60):
        loss = pixel_cross_entropy(model(image), target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 5


@pytest.mark.parametrize("name", list(MODELS))
def test_checkpoint_round_trip(name, tmp_path):
    model = MODELS[name](width=8).eval()
    with torch.no_grad():
        model(torch.rand(2, 3, 16, 16))  # BatchNorm buffers stay at their init in eval; fine
    checkpoint = {"model": model.state_dict(), "config": model.config, "history": {},
                  "metrics": {}}
    save_pretrained(name, checkpoint, command="test", seed=0, directory=tmp_path)
    checkpoint = load_pretrained(name, directory=tmp_path)
    rebuilt = MODELS[name](**checkpoint["config"])
    rebuilt.load_state_dict(checkpoint["model"])
    rebuilt.eval()
    x = torch.rand(2, 3, 32, 32)
    assert torch.equal(model(x), rebuilt(x))


@pytest.mark.parametrize("name", list(MODELS))
def test_device(device, name):
    # the reference: the same weights run by torch in float64 on the CPU
    torch.manual_seed(0)
    model = MODELS[name](width=4, depth=2).eval()
    x = torch.rand(2, 3, 8, 12, dtype=torch.float64)
    with torch.no_grad():
        ref = model.double()(x)
        out = model.float().to(device)(x.float().to(device))
    assert out.device.type == device.type and out.dtype == torch.float32
    torch.testing.assert_close(out.cpu().double(), ref, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("make, x, error, match", [
    (UNet, torch.rand(3, 16, 16), ValueError,
     r"x must be a float Tensor\[N, 3, H, W\], got Tensor\[3, 16, 16\] float32"),
    (UNet, torch.rand(1, 4, 16, 16), ValueError, r"x must be .*got Tensor\[1, 4, 16, 16\]"),
    (FCN, torch.zeros(1, 3, 16, 16, dtype=torch.uint8), TypeError,
     r"x must be a float Tensor\[N, 3, H, W\] \(float16, bfloat16, float32 or float64\), "
     r"got Tensor\[1, 3, 16, 16\] uint8"),
    (FCN, [[0.0]], TypeError, r"x must be a float Tensor\[N, 3, H, W\], got list"),
    (FCN, torch.rand(1, 3, 20, 16), ValueError, r"divisible by 8 \(2\^depth\), got \(20, 16\)"),
])
def test_bad_input(make, x, error, match):
    with pytest.raises(error, match=match):
        make()(x)


def test_blocks_by_hand_and_bad_input():
    from coursekit.segmentation.fcn import conv_norm_relu
    from coursekit.segmentation.unet import double_conv

    block = conv_norm_relu(1, 1, norm="none")
    with torch.no_grad():
        block[0].weight.fill_(1.0)
        block[0].bias.fill_(-2.0)
    x = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
    # every 3x3 window (zero padding) of this 2x2 image holds both ones: 2 - 2 = 0, ReLU 0
    assert torch.equal(block(x), torch.zeros(1, 1, 2, 2))
    assert block(x - 1).abs().sum() == 0 and block(x + 1).min() == 4  # 6 - 2 after ReLU
    assert isinstance(double_conv(3, 4, norm="group")[0][1], torch.nn.GroupNorm)
    with pytest.raises(ValueError, match="stride must be positive, got 0"):
        conv_norm_relu(1, 1, stride=0)
    with pytest.raises(TypeError, match="out_channels must be an int, got 2.5"):
        double_conv(1, 2.5)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("kwargs, error, match", [
    ({"width": 0}, ValueError, "width must be positive, got 0"),
    ({"width": 8.0}, TypeError, "width must be an int, got 8.0"),
    ({"depth": True}, TypeError, "depth must be an int, got True"),
    ({"num_classes": -1}, ValueError, "num_classes must be positive, got -1"),
    ({"norm": "layer"}, ValueError, "norm must be 'batch', 'group' or 'none', got 'layer'"),
    ({"norm": None}, TypeError, r"norm must be a str \('batch', 'group' or 'none'\), got NoneType"),
])
def test_bad_constructor_arguments(name, kwargs, error, match):
    with pytest.raises(error, match=match):
        MODELS[name](**kwargs)
    with pytest.raises(TypeError):
        MODELS[name](8)  # keyword-only constructor
    with pytest.raises(ValueError, match="out_channels must be positive, got 0"):
        UNet(out_channels=0)


def _has_shapesworld():
    try:
        from coursekit.data.shapesworld import render_batch  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.slow
@pytest.mark.skipif(not _has_shapesworld(), reason="coursekit.data.shapesworld is not available")
@pytest.mark.parametrize("name", ["fcn", "unet"])
def test_quick_trainer_writes_only_into_out_dir(name, tmp_path):
    from coursekit.checkpoints import checkpoint_dir
    from coursekit.segmentation.train import load_segmentation_model, train_fcn, train_unet

    shipped_before = read_manifest(checkpoint_dir())
    metrics = (train_fcn if name == "fcn" else train_unet)(tmp_path, 0, True)
    assert set(metrics) == {"miou", "pixel_acc"} and 0 <= metrics["miou"] <= 1
    assert (tmp_path / f"{name}.pt").exists()
    entry = read_manifest(tmp_path)[name]
    assert entry["command"] == f"coursekit train {name}"
    assert entry["metrics"]["miou"] == pytest.approx(metrics["miou"])
    model = load_segmentation_model(name, directory=tmp_path)
    assert model(torch.rand(1, 3, 64, 64)).shape == (1, 8, 64, 64)
    assert read_manifest(checkpoint_dir()) == shipped_before


def test_trainable_transposed_convs_equal_our_op():
    # UNet and the encoder-decoder upsample with nn.ConvTranspose2d (a trainable layer); it
    # computes exactly our from-scratch conv_transpose2d with the same weights
    import torch.nn as tnn

    from coursekit.segmentation import EncoderDecoder, UNet
    from coursekit.upsampling import conv_transpose2d

    torch.manual_seed(0)
    for model in (UNet(width=4, depth=2), EncoderDecoder(width=4, depth=2)):
        layers = [m for m in model.modules() if isinstance(m, tnn.ConvTranspose2d)]
        assert layers
        for layer in layers:
            x = torch.randn(2, layer.in_channels, 5, 6, dtype=torch.float64)
            layer = layer.double()
            ours = conv_transpose2d(x, layer.weight, layer.bias, stride=layer.stride,
                                    padding=layer.padding)
            torch.testing.assert_close(ours, layer(x))
