"""I3D inflation: weights, convs, pools, batch norm, whole networks; the constant-video identity.

The reference is the 2D layer itself (torch): on a constant video every output frame of the
inflated layer must equal the 2D layer's output on the image; on any video an inflated conv
is the mean over its time window of the 2D conv of each frame.
"""

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.autograd import gradcheck
from torch.testing import assert_close

from coursekit.video import (
    I3D,
    InceptionBlock,
    TinyInception,
    build_i3d,
    inflate_batchnorm,
    inflate_conv,
    inflate_network,
    inflate_pool,
    inflate_weight,
)
from coursekit.video.inflate import (
    ReplicateTimeAvgPool3d,
    ReplicateTimeConv3d,
    ReplicateTimeMaxPool3d,
)

F64 = torch.float64
TOL = {torch.float32: dict(rtol=1e-5, atol=1e-5), F64: dict(rtol=1e-12, atol=1e-12)}


def constant_video(image, T):
    """``Tensor[N, C, H, W] -> Tensor[N, C, T, H, W]``: every frame is ``image``."""
    return image.unsqueeze(2).expand(-1, -1, T, -1, -1).contiguous()


def frames(out):
    """``Tensor[N, C, T, H, W]`` -> list of its T frames."""
    return list(out.unbind(2))


def randomise_bn(module):
    """Give every batch norm random statistics and affine parameters (eval mode)."""
    for m in module.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return module.eval()


# ---- weights ----------------------------------------------------------------------------


def test_inflate_weight_by_hand():
    w = torch.tensor([[[[2.0, 4.0]]]])  # [O=1, I=1, 1, 2]
    w3 = inflate_weight(w, 2)
    assert w3.shape == (1, 1, 2, 1, 2)
    assert w3.tolist() == [[[[[1.0, 2.0]], [[1.0, 2.0]]]]]  # copied twice, halved


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, F64])
@pytest.mark.parametrize("t", [1, 3, 4])
def test_inflate_weight_sums_back(dtype, t, device):
    w = torch.randn(5, 3, 3, 2, dtype=dtype, device=device)
    w3 = inflate_weight(w, t)
    assert w3.dtype == dtype and w3.device == w.device
    assert w3.shape == (5, 3, t, 3, 2)
    expected = (w.double() / t).unsqueeze(2).expand(-1, -1, t, -1, -1)
    assert_close(w3.double(), expected.to(dtype).double(), rtol=0, atol=0)


def test_inflate_weight_gradcheck():
    w = torch.randn(2, 2, 3, 3, dtype=F64, requires_grad=True)
    assert gradcheck(lambda x: inflate_weight(x, 3), (w,))


def test_inflate_weight_bad_input():
    with pytest.raises(ValueError, match=r"weight2d must be Tensor\[O, I, kh, kw\]"):
        inflate_weight(torch.zeros(2, 3, 3), 3)
    with pytest.raises(TypeError, match="weight2d"):
        inflate_weight(torch.zeros(2, 3, 3, 3, dtype=torch.long), 3)
    for bad in (0, -2):
        with pytest.raises(ValueError, match="time_size must be positive"):
            inflate_weight(torch.zeros(2, 3, 3, 3), bad)
    with pytest.raises(TypeError, match="time_size"):
        inflate_weight(torch.zeros(2, 3, 3, 3), 2.0)


# ---- convolutions -----------------------------------------------------------------------

CONVS = [
    dict(in_channels=3, out_channels=4, kernel_size=3, padding=1),
    dict(in_channels=4, out_channels=6, kernel_size=(3, 5), stride=2, padding=(1, 2)),
    dict(in_channels=4, out_channels=4, kernel_size=3, dilation=2, groups=2, bias=False),
    dict(in_channels=2, out_channels=5, kernel_size=1),
]


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("spec", CONVS)
@pytest.mark.parametrize("t", [1, 2, 3])
def test_inflated_conv_on_a_constant_video(spec, t, dtype, device):
    conv2d = nn.Conv2d(**spec).to(device=device, dtype=dtype)
    conv3d = inflate_conv(conv2d, t)
    assert type(conv3d) is nn.Conv3d
    assert conv3d.kernel_size == (t, *conv2d.kernel_size)
    image = torch.randn(2, spec["in_channels"], 11, 12, device=device, dtype=dtype)
    with torch.no_grad():
        expected = conv2d(image)
        out = conv3d(constant_video(image, 6))
    assert out.shape[2] == 6 - t + 1  # no padding in time: t - 1 frames fewer
    for frame in frames(out):
        assert_close(frame, expected, **TOL[dtype])


@pytest.mark.parametrize("spec", CONVS)
def test_inflated_conv_averages_the_2d_conv_over_its_window(spec, device):
    # on any video: conv3d(x)[t] = mean over tau < K_t of conv2d(x[t + tau]), bias included
    t = 3
    conv2d = nn.Conv2d(**spec).to(device=device, dtype=F64)
    conv3d = inflate_conv(conv2d, t, time_stride=2)
    video = torch.randn(2, spec["in_channels"], 9, 8, 10, device=device, dtype=F64)
    with torch.no_grad():
        out = conv3d(video)
        per_frame = torch.stack([conv2d(video[:, :, k]) for k in range(9)], dim=2)
    expected = torch.stack([per_frame[:, :, s:s + t].mean(2) for s in range(0, 9 - t + 1, 2)], 2)
    assert_close(out, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_time_padding_zeros_vs_replicate(dtype, device):
    conv2d = nn.Conv2d(3, 4, 3, padding=1).to(device=device, dtype=dtype)
    image = torch.randn(1, 3, 8, 8, device=device, dtype=dtype)
    video = constant_video(image, 5)
    zeros = inflate_conv(conv2d, 3, time_padding=1)
    replicate = inflate_conv(conv2d, 3, time_padding=1, time_padding_mode="replicate")
    assert isinstance(replicate, ReplicateTimeConv3d) and isinstance(replicate, nn.Conv3d)
    with torch.no_grad():
        expected = conv2d(image)
        out_z, out_r = zeros(video), replicate(video)
    assert out_z.shape[2] == out_r.shape[2] == 5  # "same" length
    for k in range(5):
        assert_close(out_r[:, :, k], expected, **TOL[dtype])  # every frame
    for k in (1, 2, 3):
        assert_close(out_z[:, :, k], expected, **TOL[dtype])  # frames away from the ends
    for k in (0, 4):
        assert (out_z[:, :, k] - expected).abs().max() > 1e-3  # the ends see zeros


def test_inflated_conv_keeps_training_state():
    conv2d = nn.Conv2d(2, 3, 3).double()
    conv2d.weight.requires_grad_(False)
    conv2d.eval()
    conv3d = inflate_conv(conv2d, 3)
    assert conv3d.weight.dtype == F64
    assert not conv3d.weight.requires_grad and conv3d.bias.requires_grad
    assert not conv3d.training


def test_inflate_conv_bad_input():
    with pytest.raises(TypeError, match="conv2d must be a torch.nn.Conv2d, got Conv1d"):
        inflate_conv(nn.Conv1d(2, 3, 3), 3)
    with pytest.raises(ValueError, match="time_size must be positive"):
        inflate_conv(nn.Conv2d(2, 3, 3), 0)
    with pytest.raises(ValueError, match="time_padding must be >= 0"):
        inflate_conv(nn.Conv2d(2, 3, 3), 3, time_padding=-1)
    with pytest.raises(ValueError, match="time_padding_mode"):
        inflate_conv(nn.Conv2d(2, 3, 3), 3, time_padding_mode="reflect")
    with pytest.raises(ValueError, match="numeric zero padding"):
        inflate_conv(nn.Conv2d(2, 3, 3, padding="same"), 3)
    with pytest.raises(ValueError, match="numeric zero padding"):
        inflate_conv(nn.Conv2d(2, 3, 3, padding=1, padding_mode="reflect"), 3)


# ---- pooling ----------------------------------------------------------------------------

POOLS = [
    nn.MaxPool2d(2),
    nn.MaxPool2d(3, stride=2, padding=1),
    nn.MaxPool2d(3, stride=1, padding=1, dilation=1, ceil_mode=True),
    nn.AvgPool2d(2),
    nn.AvgPool2d(3, stride=2, padding=1),
    nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False, ceil_mode=True),
    nn.AvgPool2d(2, divisor_override=3),
]


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("pool2d", POOLS, ids=repr)
@pytest.mark.parametrize("t, mode", [(1, "zeros"), (3, "zeros"), (3, "replicate")])
def test_inflated_pool_on_a_constant_video(pool2d, t, mode, dtype, device):
    pad = t // 2 if mode == "replicate" else 0
    pool3d = inflate_pool(pool2d, t, time_padding=pad, time_padding_mode=mode)
    image = torch.randn(2, 3, 9, 10, device=device, dtype=dtype)
    expected = pool2d(image)
    out = pool3d(constant_video(image, 5))
    assert out.shape[2] == 5 - t + 1 + 2 * pad
    for frame in frames(out):
        assert_close(frame, expected, **TOL[dtype])


@pytest.mark.parametrize("pool2d", POOLS, ids=repr)
def test_inflated_pool_vs_2d_pool_per_frame(pool2d, device):
    # max pooling commutes with the max over time; average pooling with the mean over time
    video = torch.randn(2, 3, 7, 9, 10, device=device, dtype=F64)
    out = inflate_pool(pool2d, 3, time_stride=2)(video)
    per_frame = torch.stack([pool2d(video[:, :, k]) for k in range(7)], dim=2)
    windows = [per_frame[:, :, s:s + 3] for s in (0, 2, 4)]
    if isinstance(pool2d, nn.MaxPool2d):
        expected = torch.stack([w.amax(2) for w in windows], 2)
    else:
        expected = torch.stack([w.mean(2) for w in windows], 2)
    assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_replicate_pools_are_3d_pools():
    assert isinstance(inflate_pool(nn.MaxPool2d(2), 3, time_padding=1,
                                   time_padding_mode="replicate"), ReplicateTimeMaxPool3d)
    avg = inflate_pool(nn.AvgPool2d(2), 3, time_padding=1, time_padding_mode="replicate")
    assert isinstance(avg, ReplicateTimeAvgPool3d) and isinstance(avg, nn.AvgPool3d)


@pytest.mark.parametrize("pool2d", [nn.AdaptiveAvgPool2d(1), nn.AdaptiveAvgPool2d((2, 3)),
                                    nn.AdaptiveMaxPool2d(2)], ids=repr)
def test_inflated_adaptive_pool_pools_all_of_time(pool2d):
    image = torch.randn(2, 3, 9, 10, dtype=F64)
    out = inflate_pool(pool2d, 3)(constant_video(image, 4))
    assert out.shape[2] == 1
    assert_close(out[:, :, 0], pool2d(image), rtol=1e-12, atol=1e-12)


def test_inflate_pool_bad_input():
    with pytest.raises(TypeError, match="pool2d must be a torch.nn.MaxPool2d.*got LPPool2d"):
        inflate_pool(nn.LPPool2d(2, 2), 3)
    with pytest.raises(ValueError, match="time_size must be positive"):
        inflate_pool(nn.MaxPool2d(2), 0)
    with pytest.raises(ValueError, match=r"time_padding must be at most time_size // 2 = 1"):
        inflate_pool(nn.MaxPool2d(2), 3, time_padding=2)


# ---- batch norm -------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("training", [False, True])
def test_inflated_batchnorm_on_a_constant_video(training, dtype, device):
    bn2d = randomise_bn(nn.BatchNorm2d(4).to(device=device, dtype=dtype)).train(training)
    bn3d = inflate_batchnorm(bn2d)
    assert isinstance(bn3d, nn.BatchNorm3d) and bn3d.training == training
    for key, value in bn2d.state_dict().items():
        assert torch.equal(bn3d.state_dict()[key], value)
    image = torch.randn(3, 4, 5, 6, device=device, dtype=dtype)
    expected = bn2d(image)  # training mode: batch statistics over (N, H, W)
    out = bn3d(constant_video(image, 3))  # ... and over (N, T, H, W): the same
    for frame in frames(out):
        assert_close(frame, expected, **TOL[dtype])
    if training:
        assert_close(bn3d.running_mean, bn2d.running_mean, **TOL[dtype])


def test_inflate_batchnorm_bad_input():
    with pytest.raises(TypeError, match="bn2d must be a torch.nn.BatchNorm2d"):
        inflate_batchnorm(nn.BatchNorm1d(3))


# ---- whole networks ---------------------------------------------------------------------


def small_cnn():
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1, bias=False), nn.BatchNorm2d(8), nn.ReLU(),
        nn.AvgPool2d(2), nn.Dropout2d(0.2),
        nn.Sequential(nn.Conv2d(8, 16, 1), nn.ReLU()),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(1), nn.Linear(16, 5),
    )


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_inflated_network_on_a_constant_video(dtype, device):
    net2d = randomise_bn(small_cnn().to(device=device, dtype=dtype))
    before = {k: v.clone() for k, v in net2d.state_dict().items()}
    net3d = inflate_network(net2d, 3)
    assert not any(isinstance(m, (nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d, nn.AvgPool2d))
                   for m in net3d.modules())
    image = torch.rand(2, 3, 16, 16, device=device, dtype=dtype)
    with torch.no_grad():
        expected = net2d(image)
        # "valid" in time: 3 convs and 2 pools of K_t = 3 take 10 frames; 12 leave 2
        out = net3d(constant_video(image, 12))
    assert out.shape == expected.shape == (2, 5)
    assert_close(out, expected, **TOL[dtype])
    for k, v in net2d.state_dict().items():  # the 2D network is untouched
        assert torch.equal(v, before[k])


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_inflated_inception_block(dtype, device):
    block = randomise_bn(InceptionBlock(6, ch1x1=4, ch3x3red=3, ch3x3=5, ch5x5red=2, ch5x5=3,
                                        pool_proj=2).to(device=device, dtype=dtype))
    image = torch.rand(2, 6, 10, 10, device=device, dtype=dtype)
    with torch.no_grad():
        expected = block(image)
        assert expected.shape == (2, 14, 10, 10)
        video = constant_video(image, 7)
        replicate = inflate_network(block, 3, time_padding="same", time_padding_mode="replicate")
        out = replicate(video)
        assert out.shape == (2, 14, 7, 10, 10)  # branches keep T, so they concatenate
        for frame in frames(out):
            assert_close(frame, expected, **TOL[dtype])
        zeros = inflate_network(block, 3, time_padding="same")(video)
        # zero padding: the deepest branches stack two convs of K_t = 3 (a temporal
        # receptive field of 5 frames), so frames 2 ... T - 3 never see the padding
        for k in (2, 3, 4):
            assert_close(zeros[:, :, k], expected, **TOL[dtype])
        assert (zeros[:, :, 0] - expected).abs().max() > 1e-4


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_i3d_on_a_constant_clip_is_the_image_network(dtype):
    net2d = randomise_bn(TinyInception(num_classes=4, width=8).to(dtype))
    i3d = I3D(net2d, time_size=3, time_padding_mode="replicate").eval()
    image = torch.rand(2, 3, 16, 16, dtype=dtype)
    clips = image.unsqueeze(1).expand(-1, 6, -1, -1, -1)  # [N, T, C, H, W], frames equal
    with torch.no_grad():
        assert_close(i3d(clips), net2d(image), **TOL[dtype])
    assert build_i3d(num_classes=4, net2d=net2d).net is not net2d


def test_inflate_network_root_layer_and_errors():
    conv = nn.Conv2d(2, 3, 3)
    assert isinstance(inflate_network(conv, 3), nn.Conv3d)
    with pytest.raises(TypeError, match="cannot inflate ConvTranspose2d"):
        inflate_network(nn.Sequential(nn.ConvTranspose2d(2, 3, 3)), 3)
    with pytest.raises(TypeError, match="module2d must be a torch.nn.Module"):
        inflate_network(lambda x: x, 3)
    with pytest.raises(ValueError, match="time_size must be positive"):
        inflate_network(small_cnn(), 0)
    with pytest.raises(ValueError, match="time_padding must be 'valid' or 'same'"):
        inflate_network(small_cnn(), 3, time_padding=1)
    with pytest.raises(ValueError, match="time_padding_mode"):
        inflate_network(small_cnn(), 3, time_padding_mode="circular")
    with pytest.raises(ValueError, match="pool_time_size must be positive"):
        inflate_network(small_cnn(), 3, pool_time_size=0)


def test_inflated_conv_gradcheck():
    conv3d = inflate_conv(nn.Conv2d(2, 2, 3, padding=1).double(), 2,
                          time_padding=1, time_padding_mode="replicate")
    video = torch.randn(1, 2, 3, 4, 4, dtype=F64, requires_grad=True)
    assert gradcheck(conv3d, (video,))
    # the gradient reaches the 2D weight through inflate_weight
    w = torch.randn(2, 2, 3, 3, dtype=F64, requires_grad=True)
    assert gradcheck(lambda w: F.conv3d(video.detach(), inflate_weight(w, 3)), (w,))
