"""The four video model families: shapes, sizes, what each can see of time, overfitting."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck
from torch.testing import assert_close

from coursekit.validators import count_parameters
from coursekit.video import (
    CNN3D,
    VIDEO_MODELS,
    EarlyFusion,
    LateFusion,
    SingleFrameCNN,
    average_log_probs,
    build_video_classifier,
)

F64 = torch.float64


def build(kind, T=8, width=16, num_classes=6):
    return build_video_classifier(kind, num_classes=num_classes, num_frames=T, width=width)


@pytest.mark.parametrize("kind", VIDEO_MODELS)
@pytest.mark.parametrize("T, size", [(8, 32), (16, 48)])
def test_shapes_and_size(kind, T, size):
    model = build(kind, T).eval()
    assert count_parameters(model) < 500_000
    with torch.no_grad():
        out = model(torch.rand(2, T, 3, size, size))
    assert out.shape == (2, 6)
    assert out.isfinite().all()


# ---- single frame -----------------------------------------------------------------------


def test_average_log_probs_by_hand():
    # frame 1: p = (1/2, 1/2); frame 2: p = (3/4, 1/4); average (5/8, 3/8)
    logits = torch.tensor([[[0.0, 0.0], [math.log(3.0), 0.0]]], dtype=F64)
    out = average_log_probs(logits)
    assert_close(out.exp(), torch.tensor([[5 / 8, 3 / 8]], dtype=F64))


@pytest.mark.parametrize("shape", [(1, 1, 3), (4, 7, 5), (2, 16, 10)])
def test_average_log_probs_vs_direct(shape, device):
    logits = torch.randn(shape, dtype=F64, device=device) * 5
    expected = logits.softmax(dim=2).mean(dim=1).log()
    assert_close(average_log_probs(logits), expected, rtol=1e-12, atol=1e-12)


def test_average_log_probs_gradcheck():
    logits = torch.randn(2, 3, 4, dtype=F64, requires_grad=True)
    assert gradcheck(average_log_probs, (logits,))


def test_average_log_probs_without_frames_names_the_argument():
    # T = 0 used to end in log(0): "ValueError: math domain error"
    with pytest.raises(ValueError,
                       match=r"frame_logits must have at least one frame .*Tensor\[2, 0, 4\]"):
        average_log_probs(torch.zeros(2, 0, 4))


def test_single_frame_is_the_frame_average():
    model = SingleFrameCNN(num_classes=4, width=4).double().eval()
    clips = torch.rand(3, 5, 3, 8, 8, dtype=F64)
    with torch.no_grad():
        per_frame = torch.stack([model.classifier(model.encoder(clips[:, t])) for t in range(5)],
                                dim=1)  # (N, T, L): each frame alone
        assert_close(model.frame_logits(clips), per_frame, rtol=1e-12, atol=1e-12)
        assert_close(model(clips).exp(), per_frame.softmax(2).mean(1), rtol=1e-12, atol=1e-12)


def test_only_single_frame_is_blind_to_motion():
    # a clip and the same clip backwards (a square moving right / left) have the same frames
    clips = torch.zeros(2, 8, 3, 16, 16, dtype=F64)
    for t in range(8):
        clips[:, t, :, 6:10, t + 2:t + 6] = 1.0
    clips[1] = clips[0].flip(0)
    for kind in VIDEO_MODELS:
        model = build(kind, T=8, width=4).double().eval()
        with torch.no_grad():
            right, left = model(clips)
        if kind in ("single_frame", "i3d"):
            # I3D too, as inflated: its kernels are the same at every time step
            assert_close(right, left, rtol=1e-12, atol=1e-12)
        else:
            assert (right - left).abs().max() > 1e-6, kind


def test_i3d_sees_motion_once_its_kernels_differ_in_time():
    clips = torch.zeros(2, 8, 3, 16, 16, dtype=F64)
    for t in range(8):
        clips[:, t, :, 6:10, t + 2:t + 6] = 1.0
    clips[1] = clips[0].flip(0)
    model = build("i3d", T=8, width=4).double().eval()
    with torch.no_grad():
        conv = model.net.stem[0][0]  # Conv3d 3x3x3
        conv.weight[:, :, 0] *= 2.0  # as training might: the first time step counts more
        right, left = model(clips)
    assert (right - left).abs().max() > 1e-6


# ---- early and late fusion --------------------------------------------------------------


def test_early_fusion_first_conv_sums_over_frames():
    model = EarlyFusion(num_classes=3, num_frames=4, width=5).double().eval()
    clips = torch.rand(2, 4, 3, 8, 8, dtype=F64)
    conv = model.features[0][0]  # Conv2d(4 * 3 -> 5)
    out = conv(clips.flatten(1, 2))
    # channel t * C + c of the folded input is channel c of frame t
    expected = sum(F.conv2d(clips[:, t], conv.weight[:, 3 * t:3 * t + 3], padding=1)
                   for t in range(4))
    assert_close(out, expected, rtol=1e-12, atol=1e-12)


def test_late_fusion_concatenates_frames_in_order():
    model = LateFusion(num_classes=3, num_frames=4, width=4, hidden=8).double().eval()
    clips = torch.rand(2, 4, 3, 8, 8, dtype=F64)
    seen = {}
    model.mlp.register_forward_hook(lambda m, inp, out: seen.setdefault("x", inp[0]))
    with torch.no_grad():
        model(clips)
        expected = torch.cat([model.encoder(clips[:, t]) for t in range(4)], dim=1)
    assert seen["x"].shape == (2, 4 * 16)
    assert_close(seen["x"], expected, rtol=1e-12, atol=1e-12)


# ---- 3D CNN -----------------------------------------------------------------------------


def test_cnn3d_reads_frames_second_and_any_length():
    model = CNN3D(num_classes=3, width=4).double().eval()
    clips = torch.rand(2, 6, 3, 8, 8, dtype=F64)
    with torch.no_grad():
        first = model.features[0][0](clips.transpose(1, 2))  # Conv3d on (N, C, T, H, W)
        expected = F.conv3d(clips.permute(0, 2, 1, 3, 4), model.features[0][0].weight, padding=1)
        assert_close(first, expected, rtol=1e-12, atol=1e-12)
        for T in (2, 5, 12):
            assert model(torch.rand(1, T, 3, 8, 8, dtype=F64)).shape == (1, 3)


def test_models_gradcheck():
    clips = torch.rand(1, 2, 1, 4, 4, dtype=F64, requires_grad=True)
    for model in (SingleFrameCNN(num_classes=2, in_channels=1, width=1),
                  CNN3D(num_classes=2, in_channels=1, width=1)):
        model = model.double().eval()
        assert gradcheck(model, (clips,), atol=1e-6)


# ---- training ---------------------------------------------------------------------------


@pytest.mark.parametrize("kind", VIDEO_MODELS)
def test_overfits_one_batch(kind):
    torch.manual_seed(0)
    model = build(kind, T=4, width=8, num_classes=3)
    clips = torch.rand(6, 4, 3, 12, 12)
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    first = None
    for _ in range(30):
        loss = F.cross_entropy(model(clips), labels)
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():  # batch statistics, as in training
        assert (model(clips).argmax(1) == labels).all(), kind
    assert loss.item() < 0.1 * first


# ---- bad input --------------------------------------------------------------------------


@pytest.mark.parametrize("kind", VIDEO_MODELS)
def test_bad_clips(kind):
    model = build(kind, T=8)
    with pytest.raises(ValueError, match=r"clips must be Tensor\[N, T, C, H, W\].*\[8, 3, 16"):
        model(torch.rand(8, 3, 16, 16))
    with pytest.raises(TypeError, match="clips must be"):
        model(torch.zeros(2, 8, 3, 16, 16, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"C = 3 channels.*transpose"):
        model(torch.rand(2, 3, 8, 16, 16))


@pytest.mark.parametrize("cls", [EarlyFusion, LateFusion])
def test_fusion_needs_its_number_of_frames(cls):
    model = cls(num_classes=2, num_frames=8)
    with pytest.raises(ValueError, match=r"T = 8 frames.*Tensor\[2, 16, 3, 16, 16\]"):
        model(torch.rand(2, 16, 3, 16, 16))


def test_bad_builds():
    with pytest.raises(ValueError, match="kind must be one of"):
        build_video_classifier("lstm", num_classes=2, num_frames=8)
    with pytest.raises(ValueError, match="num_frames"):
        build_video_classifier("cnn3d", num_classes=2, num_frames=0)
    with pytest.raises(ValueError, match="num_classes"):
        SingleFrameCNN(num_classes=0)
    with pytest.raises(ValueError, match=r"T >= 2"):
        CNN3D(num_classes=2)(torch.rand(1, 1, 3, 8, 8))
