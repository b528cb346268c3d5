"""Video tensors: the lecture's sizes, layouts, clip sampling and test-time averaging."""

import pytest
import torch
from torch.autograd import gradcheck
from torch.testing import assert_close

from coursekit.video import (
    SingleFrameCNN,
    clip_starts,
    cthw_to_tchw,
    format_bytes,
    predict_video,
    sample_clips,
    tchw_to_cthw,
    video_size_bytes,
)

F64 = torch.float64
MINUTE_AT_30_FPS = 30 * 60


# ---- sizes -----------------------------------------------------------------------------


def test_lecture_clip_is_588_kb():
    # T = 16, H = W = 112, 3 bytes per pixel: 16 * 112 * 112 * 3 = 602112 B = 588 * 1024 B
    n = video_size_bytes(16, 112, 112)
    assert n == 602112 == 588 * 1024
    assert format_bytes(n) == "588.0 KB"


def test_lecture_sd_and_hd_minutes():
    sd = video_size_bytes(MINUTE_AT_30_FPS, 480, 640)
    hd = video_size_bytes(MINUTE_AT_30_FPS, 1080, 1920)
    assert sd == 1_658_880_000  # 1800 * 640 * 480 * 3
    assert hd == 11_197_440_000  # 1800 * 1920 * 1080 * 3
    # the lecture's "~1.5 GB" and "~10 GB" per minute are binary gigabytes
    assert round(sd / 2**30, 1) == 1.5
    assert round(hd / 2**30) == 10
    assert format_bytes(sd) == "1.5 GB"
    assert format_bytes(hd) == "10.4 GB"


@pytest.mark.parametrize("shape", [(1, 1, 1), (5, 7, 3), (16, 32, 48)])
@pytest.mark.parametrize("dtype", [torch.uint8, torch.float16, torch.float32, torch.float64])
def test_size_equals_a_tensors_storage(shape, dtype):
    t, h, w = shape
    video = torch.zeros(t, 3, h, w, dtype=dtype)  # the reference: what torch allocates
    itemsize = video.element_size()
    assert video_size_bytes(t, h, w, 3, itemsize) == video.numel() * itemsize
    assert video_size_bytes(t, h, w, channels=1, bytes_per_value=itemsize) * 3 == \
        video.numel() * itemsize


def test_format_bytes_units():
    assert format_bytes(0) == "0 B"
    assert format_bytes(1023) == "1023 B"
    assert format_bytes(1024) == "1.0 KB"
    assert format_bytes(3 * 2**20, digits=2) == "3.00 MB"
    assert format_bytes(5 * 2**50) == "5.0 PB"


@pytest.mark.parametrize("args, name", [((0, 112, 112), "frames"), ((16, -1, 112), "height"),
                                        ((16, 112, 0), "width")])
def test_size_bad_values(args, name):
    with pytest.raises(ValueError, match=name):
        video_size_bytes(*args)


def test_size_bad_types():
    with pytest.raises(TypeError, match="frames"):
        video_size_bytes(16.0, 112, 112)
    with pytest.raises(ValueError, match="bytes_per_value"):
        video_size_bytes(16, 112, 112, bytes_per_value=0)
    with pytest.raises(ValueError, match="num_bytes"):
        format_bytes(-1)


# ---- layouts ----------------------------------------------------------------------------


def test_layouts_by_hand():
    video = torch.arange(2 * 3 * 1 * 1).view(2, 3, 1, 1)  # T = 2 frames of 3 channels
    cthw = tchw_to_cthw(video)
    assert cthw.shape == (3, 2, 1, 1)
    assert cthw[:, :, 0, 0].tolist() == [[0, 3], [1, 4], [2, 5]]  # channel c, frame t
    assert torch.equal(cthw_to_tchw(cthw), video)


@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (2, 4, 3, 5, 6)])
def test_layouts_vs_permute(shape, device):
    video = torch.randn(shape, device=device)
    dims = list(range(video.dim()))
    dims[-4], dims[-3] = dims[-3], dims[-4]
    assert torch.equal(tchw_to_cthw(video), video.permute(*dims))
    assert torch.equal(cthw_to_tchw(tchw_to_cthw(video)), video)
    assert tchw_to_cthw(video).data_ptr() == video.data_ptr()  # a view


def test_layouts_bad_rank():
    with pytest.raises(ValueError, match=r"video must be Tensor\[T, C, H, W\].*Tensor\[3, 4, 5\]"):
        tchw_to_cthw(torch.zeros(3, 4, 5))
    with pytest.raises(TypeError, match="video"):
        cthw_to_tchw([1, 2])


# ---- clips ------------------------------------------------------------------------------


def test_clip_starts_by_hand():
    # 10 frames, 3 frames at stride 2: a clip spans 5 frames, starts 0 ... 5
    assert clip_starts(10, 3, num_clips=3, stride=2).tolist() == [0, 2, 5]
    assert clip_starts(10, 3, num_clips=6, stride=2).tolist() == [0, 1, 2, 3, 4, 5]
    assert clip_starts(10, 3, num_clips=1, stride=2).tolist() == [2]  # centred
    assert clip_starts(5, 3, num_clips=4, stride=2).tolist() == [0, 0, 0, 0]


def test_sample_clips_by_hand():
    video = torch.arange(10.0).view(10, 1, 1, 1)  # frame t holds the value t
    clips = sample_clips(video, clip_len=3, num_clips=3, stride=2)
    assert clips.shape == (3, 3, 1, 1, 1)
    assert clips.flatten(1).tolist() == [[0, 2, 4], [2, 4, 6], [5, 7, 9]]


@pytest.mark.parametrize("mode", ["uniform", "random"])
@pytest.mark.parametrize("T, clip_len, num_clips, stride", [(30, 8, 4, 3), (16, 16, 2, 1),
                                                           (50, 5, 7, 6)])
def test_sample_clips_vs_slicing(mode, T, clip_len, num_clips, stride, device):
    video = torch.randn(T, 3, 4, 5, dtype=F64, device=device)
    g = torch.Generator().manual_seed(1)
    starts = clip_starts(T, clip_len, num_clips, stride, mode, torch.Generator().manual_seed(1))
    span = (clip_len - 1) * stride + 1
    assert int(starts.min()) >= 0 and int(starts.max()) <= T - span
    clips = sample_clips(video, clip_len, num_clips, stride, mode, generator=g)
    expected = torch.stack([video[s:s + span:stride] for s in starts.tolist()])
    assert clips.device == video.device
    assert torch.equal(clips, expected)


def test_random_clips_cover_the_video():
    starts = clip_starts(20, 4, num_clips=2000, stride=2, mode="random",
                         generator=torch.Generator().manual_seed(0))
    assert set(starts.tolist()) == set(range(20 - 7 + 1))  # every start 0 ... 13 is drawn


def test_sample_clips_gradcheck():
    video = torch.randn(7, 2, 3, 3, dtype=F64, requires_grad=True)
    assert gradcheck(lambda v: sample_clips(v, 3, num_clips=2, stride=2), (video,))


def test_clip_bad_inputs():
    with pytest.raises(ValueError, match=r"clip_len=8 frames at stride=3 spans 22 frames"):
        clip_starts(20, 8, stride=3)
    with pytest.raises(ValueError, match="mode"):
        clip_starts(20, 8, mode="dense")
    with pytest.raises(ValueError, match="num_clips"):
        clip_starts(20, 8, num_clips=0)
    with pytest.raises(ValueError, match=r"video must be Tensor\[T, C, H, W\] \(one video\)"):
        sample_clips(torch.zeros(2, 8, 3, 4, 4), 4)


# ---- test-time averaging ----------------------------------------------------------------


def test_predict_video_by_hand():
    video = torch.arange(6.0).view(6, 1, 1, 1)

    def model(clips):  # scores (0, mean of the clip)
        m = clips.flatten(1).mean(1)
        return torch.stack([torch.zeros_like(m), m], dim=1)

    probs = predict_video(model, video, clip_len=2, num_clips=2, stride=1)
    # clips start at 0 and 4: means 0.5 and 4.5
    p1 = torch.tensor([1.0, torch.e ** 0.5]) / (1 + torch.e ** 0.5)
    p2 = torch.tensor([1.0, torch.e ** 4.5]) / (1 + torch.e ** 4.5)
    assert_close(probs, (p1 + p2) / 2)


@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_predict_video_vs_manual(dtype):
    model = SingleFrameCNN(num_classes=5, width=4).to(dtype).eval()
    video = torch.rand(20, 3, 8, 8, dtype=dtype)
    probs = predict_video(model, video, clip_len=4, num_clips=3, stride=2)
    clips = torch.stack([video[s:s + 7:2] for s in (0, 6, 13)])
    with torch.no_grad():
        expected = model(clips).softmax(1).mean(0)
    assert probs.dtype == dtype
    assert_close(probs.detach(), expected, rtol=1e-6, atol=1e-7)
    assert_close(probs.sum().item(), 1.0, rtol=0, atol=1e-6)


def test_predict_video_bad_model():
    with pytest.raises(ValueError, match=r"model must return Tensor\[K, L\] with K = 2"):
        predict_video(lambda clips: clips.sum(), torch.zeros(8, 3, 2, 2), 2, 2)
    with pytest.raises(TypeError, match="model"):
        predict_video(3, torch.zeros(8, 3, 2, 2), 2, 2)
