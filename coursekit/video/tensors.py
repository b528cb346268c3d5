"""Video tensors: their size, their two layouts, and short clips sampled from them.

Lecture: *Video understanding* — a video is a sequence of images, a 4D tensor
``T x 3 x H x W`` (or ``3 x T x H x W``). Videos are big: at ~30 frames per second
and 3 bytes per pixel, one minute of uncompressed video takes::

    bytes = frames * height * width * channels * bytes_per_value
    SD  (640 x 480):   1800 * 640 * 480 * 3   = 1,658,880,000 B  ~ 1.5 GB
    HD  (1920 x 1080): 1800 * 1920 * 1080 * 3 = 11,197,440,000 B ~ 10 GB

The lecture counts in binary units (1 KB = 1024 B, 1 GB = 1024**3 B), which is how a
clip of T = 16 frames at H = W = 112 is "588 KB": 16 * 112 * 112 * 3 = 602,112 B =
588 * 1024 B exactly. :func:`format_bytes` prints sizes that way.

The solution is to train on short **clips** at a low frame rate (keep every
``stride``-th frame) and low resolution, and at test time to run the model on several
clips of the video and average the predicted probabilities (:func:`predict_video`).

Layouts: this course stores a video as ``Tensor[T, 3, H, W]`` (a stack of images, a
batch of clips ``Tensor[N, T, 3, H, W]``); ``torch.nn.Conv3d`` wants channels first,
``Tensor[N, 3, T, H, W]``. :func:`tchw_to_cthw` and :func:`cthw_to_tchw` convert.

Tested in tests/video/test_tensors.py.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from coursekit.validators import describe, positive_int, require_dim, require_tensor, shape_str

__all__ = [
    "clip_starts",
    "cthw_to_tchw",
    "format_bytes",
    "predict_video",
    "sample_clips",
    "tchw_to_cthw",
    "video_size_bytes",
]

_UNITS = ("B", "KB", "MB", "GB", "TB", "PB")


def video_size_bytes(frames: int, height: int, width: int, channels: int = 3,
                     bytes_per_value: int = 1) -> int:
    """Bytes of an uncompressed video: ``frames * height * width * channels * bytes_per_value``.

    Args:
        frames: number of frames T (one minute at 30 fps: ``30 * 60``).
        height, width: frame size in pixels.
        channels: values per pixel (3 for RGB).
        bytes_per_value: 1 for uint8, 4 for float32.

    Returns:
        int. ``video_size_bytes(16, 112, 112) == 602112`` (588 KB, the lecture's clip).
    """
    sizes = [positive_int(v, n) for v, n in ((frames, "frames"), (height, "height"),
                                             (width, "width"), (channels, "channels"),
                                             (bytes_per_value, "bytes_per_value"))]
    total = 1
    for s in sizes:
        total *= s
    return total


def format_bytes(num_bytes: int, digits: int = 1) -> str:
    """``602112 -> '588.0 KB'``: binary units as the lecture counts them (1 KB = 1024 B)."""
    n = positive_int(num_bytes, "num_bytes", minimum=0)
    digits = positive_int(digits, "digits", minimum=0)
    value, unit = float(n), 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    if unit == 0:
        return f"{n} B"
    return f"{value:.{digits}f} {_UNITS[unit]}"


def tchw_to_cthw(video: Tensor) -> Tensor:
    """``Tensor[T, C, H, W] -> Tensor[C, T, H, W]`` (and ``[N, T, C, H, W] -> [N, C, T, H, W]``).

    The second layout is what ``torch.nn.Conv3d`` reads. Returns a view (no copy).
    """
    video = require_dim(video, "video", (4, 5), "Tensor[T, C, H, W] or Tensor[N, T, C, H, W]")
    return video.transpose(-4, -3)


def cthw_to_tchw(video: Tensor) -> Tensor:
    """``Tensor[C, T, H, W] -> Tensor[T, C, H, W]`` (and with a batch dimension); a view."""
    video = require_dim(video, "video", (4, 5), "Tensor[C, T, H, W] or Tensor[N, C, T, H, W]")
    return video.transpose(-4, -3)


def clip_starts(num_frames: int, clip_len: int, num_clips: int = 1, stride: int = 1,
                mode: str = "uniform", generator: torch.Generator | None = None) -> Tensor:
    """First frame of each clip: int64 Tensor[num_clips].

    A clip keeps ``clip_len`` frames, every ``stride``-th one (a lower frame rate: 30 fps
    with ``stride=6`` is 5 fps), so it spans ``span = (clip_len - 1) * stride + 1`` frames
    and can start at ``0 ... num_frames - span``.

    * ``mode="random"`` (training): starts drawn uniformly (with ``generator``).
    * ``mode="uniform"`` (testing): evenly spaced from the first to the last possible
      start, ``floor(i * (num_frames - span) / (num_clips - 1))``; one clip is centred.
    """
    num_frames = positive_int(num_frames, "num_frames")
    clip_len = positive_int(clip_len, "clip_len")
    num_clips = positive_int(num_clips, "num_clips")
    stride = positive_int(stride, "stride")
    if mode not in ("uniform", "random"):
        raise ValueError(f"mode must be 'uniform' or 'random', got {mode!r}")
    span = (clip_len - 1) * stride + 1
    if span > num_frames:
        raise ValueError(f"a clip of clip_len={clip_len} frames at stride={stride} spans {span} "
                         f"frames, more than the video's num_frames={num_frames}")
    last = num_frames - span
    if mode == "random":
        return torch.randint(0, last + 1, (num_clips,), generator=generator)
    if num_clips == 1:
        return torch.tensor([last // 2])
    return torch.arange(num_clips) * last // (num_clips - 1)  # exact integer arithmetic


def sample_clips(video: Tensor, clip_len: int, num_clips: int = 1, stride: int = 1,
                 mode: str = "uniform", generator: torch.Generator | None = None) -> Tensor:
    """Clips of ``clip_len`` frames taken every ``stride`` frames from one video.

    Args:
        video: Tensor[T, C, H, W].
        clip_len, num_clips, stride, mode, generator: as in :func:`clip_starts`
            (``"random"`` for training, ``"uniform"`` for test-time averaging).

    Returns:
        Tensor[num_clips, clip_len, C, H, W]: clip ``k`` is
        ``video[starts[k] : starts[k] + span : stride]``, a batch for a video model.
    """
    video = require_dim(video, "video", 4, "Tensor[T, C, H, W] (one video)")
    starts = clip_starts(video.shape[0], clip_len, num_clips, stride, mode, generator)
    offsets = torch.arange(clip_len) * stride  # (clip_len,)
    index = (starts[:, None] + offsets[None, :]).to(video.device)  # (num_clips, clip_len)
    return video[index]  # (num_clips, clip_len, C, H, W)


def predict_video(model: nn.Module, video: Tensor, clip_len: int, num_clips: int,
                  stride: int = 1) -> Tensor:
    """Test-time clip averaging: mean of ``softmax(model(clip))`` over evenly spaced clips.

    Args:
        model: maps clips ``Tensor[K, clip_len, C, H, W]`` to class scores ``Tensor[K, L]``.
        video: Tensor[T, C, H, W].
        clip_len, num_clips, stride: as in :func:`sample_clips` with ``mode="uniform"``.

    Returns:
        Tensor[L]: class probabilities of the video (they sum to 1). The model runs as it
        is: call ``model.eval()`` first, and wrap the call in ``torch.no_grad()`` to test.
    """
    if not isinstance(model, nn.Module) and not callable(model):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    require_tensor(video, "video", "Tensor[T, C, H, W]")
    clips = sample_clips(video, clip_len, num_clips, stride, mode="uniform")
    scores = model(clips)  # (num_clips, L)
    if not isinstance(scores, Tensor) or scores.dim() != 2 or scores.shape[0] != num_clips:
        raise ValueError(f"model must return Tensor[K, L] with K = {num_clips} clips, "
                         f"got {shape_str(scores)}")
    wide = scores.to(torch.promote_types(scores.dtype, torch.float32))  # accumulate >= fp32
    return wide.softmax(dim=1).mean(dim=0).to(scores.dtype)  # (L,)
