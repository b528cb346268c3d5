"""Property tests (hypothesis) for coursekit.video, its single layers: the clip log-probability
of a single-frame model and the I3D inflation of one weight, convolution, normalisation or
pooling (``test_props_video_tracking.py`` inflates whole networks on constant videos).

Drawn: batches (0 included), frame counts (1 included), class counts, kernels in time and space,
strides, paddings, dilations and groups, max / average / adaptive pools, batch and instance
norms, videos that change in time; dtypes. References: the formulas written out (the softmax
averaged in float64; by linearity an inflated convolution is the mean over its time window of
the 2D one, a pool of the window's max or mean pooled in 2D, a norm in eval mode the 2D norm on
each frame). Checked on every device this machine has; seeded (``derandomize=True``).
"""

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds
from torch import nn
from torch.testing import assert_close

from coursekit.video import (
    average_log_probs,
    inflate_batchnorm,
    inflate_conv,
    inflate_pool,
    inflate_weight,
)


def tolerance(dtype, device):
    if dtype == F64:
        return {"rtol": 1e-10, "atol": 1e-10}
    if device == "cuda":  # cuDNN may convolve in TF32
        return {"rtol": 5e-3, "atol": 5e-3}
    return {"rtol": 1e-4, "atol": 1e-5}


def random_video(seed, n, c, t, hw, device, dtype):
    return torch.randn(n, c, t, *hw, generator=gen(seed), dtype=F64).to(device, dtype)


def time_windows(video, size, stride, padding):
    """The frames each output frame sees: list of Tensor[N, C, size, H, W] (zero padding)."""
    padded = F.pad(video, (0, 0, 0, 0, padding, padding))  # (N, C, T + 2p, H, W)
    count = (padded.shape[2] - size) // stride + 1
    return [padded[:, :, i * stride: i * stride + size] for i in range(max(count, 0))]


# ------------------------------------------------------------------------ clip log-probs
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 3), t=st.integers(1, 6), classes=st.integers(1, 5),
       dtype=floats)
def test_average_log_probs_is_the_mean_softmax(device, seed, n, t, classes, dtype):
    logits = (torch.randn(n, t, classes, generator=gen(seed), dtype=F64) * 5).to(device, dtype)
    out = average_log_probs(logits)
    assert out.shape == (n, classes) and out.dtype == dtype and out.device == logits.device
    expected = logits.to(F64).softmax(2).mean(1).log()
    assert_close(out.to(F64), expected, **tolerance(dtype, "cpu"))
    assert_close(out.exp().sum(1), torch.ones(n, dtype=dtype, device=device))  # a distribution
    perm = torch.randperm(t, generator=gen(seed))
    assert_close(average_log_probs(logits[:, perm]), out)  # the order of frames is irrelevant
    if t == 1:
        assert_close(out, logits[:, 0].log_softmax(1))


# ----------------------------------------------------------------------------- weights
@on_devices
@PROPS
@given(seed=seeds, o=st.integers(0, 3), i=st.integers(1, 3), k=st.tuples(st.integers(1, 3),
       st.integers(1, 3)), time_size=st.integers(1, 4), dtype=floats)
def test_inflate_weight_repeats_and_divides(device, seed, o, i, k, time_size, dtype):
    w2d = torch.randn(o, i, *k, generator=gen(seed), dtype=F64).to(device, dtype)
    w3d = inflate_weight(w2d, time_size)
    assert w3d.shape == (o, i, time_size, *k) and w3d.dtype == dtype and w3d.device == w2d.device
    for t in range(time_size):
        assert_close(w3d[:, :, t], w2d / time_size)
    assert_close(w3d.sum(2), w2d)  # the same response to a constant video


# ---------------------------------------------------------------------------- convolution
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2), groups=st.integers(1, 2), k=st.sampled_from([1, 2, 3]),
       stride=st.integers(1, 2), dilation=st.integers(1, 2), bias=st.booleans(),
       time_size=st.integers(1, 3), time_stride=st.integers(1, 2), time_padding=st.integers(0, 1),
       t=st.integers(0, 4), hw=st.tuples(st.integers(3, 6), st.integers(3, 6)), dtype=floats)
def test_inflated_conv_is_the_window_mean_of_the_2d_conv(device, seed, n, groups, k, stride,
                                                         dilation, bias, time_size, time_stride,
                                                         time_padding, t, hw, dtype):
    torch.manual_seed(seed)
    conv2d = nn.Conv2d(2 * groups, 2 * groups, k, stride=stride, padding=k // 2,
                       dilation=dilation, groups=groups, bias=bias).to(device, dtype)
    conv3d = inflate_conv(conv2d, time_size, time_stride=time_stride, time_padding=time_padding)
    assert isinstance(conv3d, nn.Conv3d) and conv3d.weight.dtype == dtype
    assert conv3d.weight.device == conv2d.weight.device
    video = random_video(seed, n, 2 * groups, time_size + t, hw, device, dtype)
    with torch.no_grad():
        out = conv3d(video)
        windows = time_windows(video, time_size, time_stride, time_padding)
        expected = [torch.stack([F.conv2d(w[:, :, j], conv2d.weight, None, stride, k // 2,
                                          dilation, groups) for j in range(time_size)]).mean(0)
                    + (conv2d.bias[:, None, None] if bias else 0) for w in windows]
    assert out.shape[2] == len(windows)
    for frame, exp in zip(out.unbind(2), expected, strict=True):
        assert_close(frame, exp, **tolerance(dtype, device))


# --------------------------------------------------------------------------- normalisation
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(1, 3), c=st.integers(1, 3), t=st.integers(1, 4),
       kind=st.sampled_from(["batch", "instance"]), dtype=floats)
def test_inflated_norm_in_eval_is_the_2d_norm_per_frame(device, seed, n, c, t, kind, dtype):
    g = gen(seed)
    if kind == "batch":
        norm2d = nn.BatchNorm2d(c, eps=1e-3, momentum=0.3)
        with torch.no_grad():
            norm2d.running_mean.copy_(torch.randn(c, generator=g))
            norm2d.running_var.copy_(torch.rand(c, generator=g) + 0.5)
            norm2d.weight.copy_(torch.randn(c, generator=g))
            norm2d.bias.copy_(torch.randn(c, generator=g))
    else:
        norm2d = nn.InstanceNorm2d(c, affine=True)
    norm2d = norm2d.to(device, dtype).eval()
    norm3d = inflate_batchnorm(norm2d).eval()
    expected_type = nn.BatchNorm3d if kind == "batch" else nn.InstanceNorm3d
    assert isinstance(norm3d, expected_type)
    assert norm3d.eps == norm2d.eps and norm3d.momentum == norm2d.momentum
    for name, value in norm2d.state_dict().items():
        assert torch.equal(norm3d.state_dict()[name], value)
    video = random_video(seed, n, c, t, (3, 4), device, dtype)
    with torch.no_grad():
        out = norm3d(video)
        if kind == "batch":  # running statistics: frame by frame
            expected = torch.stack([norm2d(video[:, :, j]) for j in range(t)], 2)
        else:  # statistics of each instance over (T, H, W): on a constant video, the image's
            video = video[:, :, :1].expand(-1, -1, t, -1, -1)
            out = norm3d(video)
            expected = norm2d(video[:, :, 0]).unsqueeze(2).expand(-1, -1, t, -1, -1)
    assert out.shape == video.shape and out.dtype == dtype
    assert_close(out, expected, **tolerance(dtype, device))


# ------------------------------------------------------------------------------- pooling
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2),
       kind=st.sampled_from(["max", "avg", "adaptive max", "adaptive avg"]), k=st.integers(1, 3),
       stride=st.integers(1, 2), time_size=st.integers(1, 3), time_stride=st.integers(1, 2),
       t=st.integers(0, 4), dtype=floats)
def test_inflated_pool_is_the_2d_pool_of_the_window(device, seed, n, kind, k, stride, time_size,
                                                    time_stride, t, dtype):
    pool2d = {"max": nn.MaxPool2d(k, stride), "avg": nn.AvgPool2d(k, stride),
              "adaptive max": nn.AdaptiveMaxPool2d((2, 1)),
              "adaptive avg": nn.AdaptiveAvgPool2d((2, 1))}[kind]
    pool3d = inflate_pool(pool2d, time_size, time_stride=time_stride)
    video = random_video(seed, n, 2, time_size + t, (5, 4), device, dtype)
    out = pool3d(video)
    if kind.startswith("adaptive"):  # pooled over all of time
        reduce_time = video.amax(2) if kind == "adaptive max" else video.mean(2)
        assert out.shape == (n, 2, 1, 2, 1)
        assert_close(out[:, :, 0], pool2d(reduce_time), **tolerance(dtype, device))
        return
    windows = time_windows(video, time_size, time_stride, 0)
    assert out.shape[2] == len(windows) and out.dtype == dtype and out.device == video.device
    for frame, w in zip(out.unbind(2), windows, strict=True):
        reduce_time = w.amax(2) if kind == "max" else w.mean(2)  # (N, C, H, W)
        assert_close(frame, pool2d(reduce_time), **tolerance(dtype, device))
