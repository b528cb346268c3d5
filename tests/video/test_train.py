"""Training and evaluation of the lesson-11 video models; the shipped checkpoints' quality."""

import pytest
import torch
from torch import nn
from torch.testing import assert_close

from coursekit.checkpoints import checkpoint_dir, read_manifest
from coursekit.data.video import MOTION_PAIRS, NUM_ACTIONS, render_videos
from coursekit.validators import count_parameters
from coursekit.video import clip_starts, predict_video
from coursekit.video.train import (
    HELD_OUT,
    MODELS,
    PARTNER,
    RECIPE,
    build_model,
    evaluate_clips,
    load_video_model,
    render_clip_bank,
    reverse_clips,
    to_float,
    train_video,
    video_probs,
)

SHIPPED = read_manifest(checkpoint_dir())
F64 = torch.float64


def test_partner_by_hand():
    assert PARTNER.tolist() == [0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9]
    for a, b in MOTION_PAIRS:
        assert PARTNER[a] == b and PARTNER[b] == a


def test_a_reversed_clip_is_a_clip_of_the_partner_class():
    frames = torch.arange(0, 16, 2)  # a clip at half the frame rate
    left = render_videos([4, 5], 32, 24, actions=[3, 7], frames=frames)
    clips, labels = reverse_clips(left.video, left.label)
    # frame t of the reversed clip is frame 14 - t of the video: the partner's frame 9 + t
    right = render_videos([4, 5], 32, 24, actions=[4, 8], frames=frames + 9)
    assert labels.tolist() == [4, 8]
    assert torch.equal(clips, right.video)


def test_clip_bank_is_made_of_rendered_clips():
    clips, labels = render_clip_bank(range(10, 16), size=32, num_frames=24, clip_len=4,
                                     stride=3, seed=1)
    assert clips.shape == (6, 4, 3, 32, 32) and clips.dtype == torch.uint8
    assert labels.tolist() == [s % NUM_ACTIONS for s in range(10, 16)]
    again, _ = render_clip_bank(range(10, 16), size=32, num_frames=24, clip_len=4, stride=3,
                                seed=1)
    assert torch.equal(clips, again)
    full = render_videos(range(10, 16), 32, 24).video  # (6, 24, 3, H, W)
    for i in range(6):  # each clip is 4 frames, 3 apart, of its video (to the byte)
        starts = [s for s in range(24 - 9) if torch.equal(
            (full[i, s:s + 10:3] * 255).round().to(torch.uint8), clips[i])]
        assert starts, i
        s = starts[0]
        assert_close(to_float(clips[i]), full[i, s:s + 10:3], atol=0.5 / 255 + 1e-6, rtol=0)


class Fixed(nn.Module):
    """Scores that put the class in the clip's first pixel value on top."""

    def forward(self, clips):
        pred = clips[:, 0, 0, 0, 0].round().long()  # (N,)
        return torch.nn.functional.one_hot(pred, NUM_ACTIONS).to(clips.dtype)


def test_evaluate_clips_by_hand():
    labels = torch.tensor([0, 1, 2, 3, 4, 5, 6, 7])
    pred = torch.tensor([0, 1, 0, 3, 3, 5, 6, 7])  # 2 / 3 appearance, 4 / 5 motion right
    clips = torch.zeros(8, 2, 3, 4, 4)
    clips[:, 0, 0, 0, 0] = pred.float()
    m = evaluate_clips(Fixed(), clips, labels, batch_size=3)
    assert_close(m["acc"], 6 / 8) and assert_close(m["acc_appearance"], 2 / 3)
    assert_close(m["acc_motion"], 4 / 5)


def test_video_probs_is_predict_video_per_video():
    torch.manual_seed(0)
    model = build_model("video_cnn3d").double().eval()
    videos = torch.rand(3, 20, 3, 32, 32, dtype=F64)
    with torch.no_grad():
        batched = video_probs(model, videos, 8, 3, stride=2)
        for v in range(3):
            assert_close(batched[v].double(), predict_video(model, videos[v], 8, 3, stride=2),
                         rtol=1e-6, atol=1e-7)
    assert_close(batched.sum(1), torch.ones(3, dtype=batched.dtype))


@pytest.mark.parametrize("name", sorted(MODELS))
def test_models_are_small(name):
    model = build_model(name)
    assert count_parameters(model) < 200_000  # < 1 MB of float32 weights
    clips = torch.rand(2, RECIPE["clip_len"], 3, RECIPE["size"], RECIPE["size"])
    with torch.no_grad():
        assert model.eval()(clips).shape == (2, NUM_ACTIONS)


def test_quick_run_round_trip(tmp_path):
    metrics = train_video("video_single_frame", tmp_path, 0, True)
    assert 0 <= metrics["acc"] <= 1 and metrics["parameters"] > 0
    model, checkpoint = load_video_model("video_single_frame", directory=tmp_path)
    assert checkpoint["metrics"] == metrics and checkpoint["curve"]["step"][-1] == 4
    fresh = build_model("video_single_frame")
    fresh.load_state_dict(checkpoint["model"])
    clips = torch.rand(2, 8, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(model(clips), fresh.eval()(clips))
    assert read_manifest(tmp_path)["video_single_frame"]["quick"] is True


def test_bad_input():
    with pytest.raises(ValueError, match="name must be one of"):
        build_model("lstm")
    with pytest.raises(ValueError, match="name must be one of"):
        load_video_model("lstm")
    with pytest.raises(ValueError, match=r"clips must be Tensor\[N, T, C, H, W\]"):
        reverse_clips(torch.rand(8, 3, 4, 4), torch.zeros(8, dtype=torch.long))
    with pytest.raises(ValueError, match=r"labels must be an int64 Tensor\[N = 2\]"):
        reverse_clips(torch.rand(2, 8, 3, 4, 4), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match=r"videos must be Tensor\[V, F, C, H, W\]"):
        video_probs(build_model("video_cnn3d"), torch.rand(20, 3, 32, 32), 8, 2)


# ---- the shipped models ----------------------------------------------------------------------

needs_all = pytest.mark.skipif(not all(n in SHIPPED for n in MODELS),
                               reason="the video checkpoints are not installed")


@pytest.fixture(scope="module")
def held_out():
    """The centred clip of 66 held-out videos (6 per class)."""
    start = clip_starts(RECIPE["num_frames"], RECIPE["clip_len"], 1, RECIPE["stride"])
    frames = start + torch.arange(RECIPE["clip_len"]) * RECIPE["stride"]
    b = render_videos(range(HELD_OUT, HELD_OUT + 66), RECIPE["size"], RECIPE["num_frames"],
                      frames=frames)
    return b.video, b.label


@needs_all
def test_shipped_checkpoints_are_small():
    for name in MODELS:
        assert SHIPPED[name]["size"] < 2_000_000, name
        assert SHIPPED[name]["quick"] is False, name


@needs_all
def test_shipped_motion_classes_need_time(held_out):
    acc = {}
    for name in ("video_single_frame", "video_early_fusion", "video_cnn3d"):
        model, _ = load_video_model(name)
        acc[name] = evaluate_clips(model, *held_out)
    single = acc["video_single_frame"]
    assert single["acc_appearance"] >= 0.8  # appearance: one frame is enough
    assert single["acc_motion"] <= 0.35  # about chance within each pair
    for name in ("video_early_fusion", "video_cnn3d"):  # the issue asks + 30 points
        assert acc[name]["acc_motion"] >= single["acc_motion"] + 0.3, (name, acc)


@needs_all
def test_shipped_i3d_starts_from_its_2d_network():
    model, checkpoint = load_video_model("video_i3d")
    curve = checkpoint["curve"]
    scratch = load_video_model("video_i3d_scratch")[1]["curve"]
    assert curve["step"] == scratch["step"]
    # inflated from a network trained on frames: ahead on appearance from the first step
    assert curve["acc_appearance"][0] > scratch["acc_appearance"][0] + 0.3
