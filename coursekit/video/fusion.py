"""Video classification by fusing frames late (after the CNN) or early (in its first conv).

Lecture: *Video classification: Late fusion* — get the high-level appearance of each
frame and combine them: run a 2D CNN on each frame, concatenate the features and feed
them to an MLP (the encoder can be pre-trained on images)::

    late:  [N, T, C, H, W] --2D CNN per frame--> [N, T, D] --concat--> [N, T*D] --MLP--> [N, L]

*Early fusion* ("2D CNN") compares frames with the very first conv layer, and after
that it is a normal 2D CNN: time is folded into the channels of the first conv::

    early: [N, T, C, H, W] --reshape--> [N, T*C, H, W] --Conv2d(T*C -> width)--> 2D CNN --> [N, L]

Both see the order of the frames (unlike the single-frame CNN), but both need the
number of frames ``T`` when they are built: the MLP's input and the first conv's
channels depend on it. Early fusion mixes time in one step; late fusion only at the top.

Clips are ``Tensor[N, T, C, H, W]``; scores ``Tensor[N, L]`` (logits).
Tested in tests/video/test_models.py.
"""

from __future__ import annotations

from torch import Tensor, nn

from coursekit.validators import positive_int
from coursekit.video._checks import check_clips
from coursekit.video.single_frame import conv_block, frame_encoder

__all__ = ["EarlyFusion", "LateFusion"]


class LateFusion(nn.Module):
    """Per-frame 2D CNN features (``4 * width`` each), concatenated over time, then an MLP.

    Args:
        num_classes: L.
        num_frames: T, fixed by the MLP's input size ``T * 4 * width``.
        in_channels: C (3).
        width: channels of the encoder's first conv.
        hidden: width of the MLP's hidden layer.
    """

    def __init__(self, *, num_classes: int, num_frames: int, in_channels: int = 3,
                 width: int = 16, hidden: int = 64) -> None:
        super().__init__()
        self.num_classes = positive_int(num_classes, "num_classes")
        self.num_frames = positive_int(num_frames, "num_frames")
        self.in_channels = positive_int(in_channels, "in_channels")
        hidden = positive_int(hidden, "hidden")
        self.encoder = frame_encoder(in_channels, width)
        self.mlp = nn.Sequential(
            nn.Linear(num_frames * 4 * width, hidden),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, num_classes),
        )

    def forward(self, clips: Tensor) -> Tensor:
        """``Tensor[N, T, C, H, W] -> Tensor[N, L]``."""
        check_clips(clips, in_channels=self.in_channels, num_frames=self.num_frames)
        N, T = clips.shape[:2]
        features = self.encoder(clips.flatten(0, 1))  # (N*T, D): each frame alone
        return self.mlp(features.view(N, -1))  # (N, T*D) concatenated in time order -> (N, L)


class EarlyFusion(nn.Module):
    """Time folded into the channels of the first conv (``T * C`` in), then a 2D CNN.

    Args:
        num_classes: L.
        num_frames: T, fixed by the first conv's ``T * C`` input channels.
        in_channels: C (3).
        width: output channels of the first conv (then 2 width, 4 width).
    """

    def __init__(self, *, num_classes: int, num_frames: int, in_channels: int = 3,
                 width: int = 16) -> None:
        super().__init__()
        self.num_classes = positive_int(num_classes, "num_classes")
        self.num_frames = positive_int(num_frames, "num_frames")
        self.in_channels = positive_int(in_channels, "in_channels")
        width = positive_int(width, "width")
        self.features = nn.Sequential(
            conv_block(num_frames * in_channels, width),  # every frame meets every other here
            nn.MaxPool2d(2),
            conv_block(width, 2 * width),
            nn.MaxPool2d(2),
            conv_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),  # (N, 4w)
        )
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, clips: Tensor) -> Tensor:
        """``Tensor[N, T, C, H, W] -> Tensor[N, L]``; channel ``t * C + c`` is frame t's c."""
        check_clips(clips, in_channels=self.in_channels, num_frames=self.num_frames)
        stacked = clips.flatten(1, 2)  # (N, T*C, H, W)
        return self.classifier(self.features(stacked))  # (N, L)
