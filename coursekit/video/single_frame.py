"""Video classification with a single-frame CNN: classify frames alone, average probabilities.

Lecture: *Video classification: single-frame CNN* — train a normal 2D CNN to classify
video frames independently, and at test time average the predicted probabilities::

    p(class | clip) = 1/T * sum_t softmax(f(frame_t))

"Often a very strong baseline", and it reuses well-understood image architectures. It
cannot see motion: the frames of a clip played backwards are the same frames, so the
prediction is the same (tests/video/test_models.py checks exactly that).

Clips are ``Tensor[N, T, C, H, W]`` (frames second, as ``coursekit.video.tensors``).
Every video model of this package returns class *scores* ``Tensor[N, L]`` whose softmax
is its class probabilities; here the scores are ``log p(class | clip)``, so
``F.cross_entropy(model(clips), labels)`` trains it like the others.

Tested in tests/video/test_models.py.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from coursekit.validators import positive_int, require_dim, require_floating, shape_str
from coursekit.video._checks import check_clips

__all__ = ["SingleFrameCNN", "average_log_probs", "conv_block", "frame_encoder"]


def conv_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3 convolution (padding 1, no bias), batch norm, ReLU: the unit of the 2D models."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


def frame_encoder(in_channels: int = 3, width: int = 16) -> nn.Sequential:
    """Image -> feature vector: ``Tensor[B, C, H, W] -> Tensor[B, 4 * width]``.

    Three conv blocks (width, 2 width, 4 width channels), 2x2 max pooling between them,
    then global average pooling.
    """
    in_channels = positive_int(in_channels, "in_channels")
    width = positive_int(width, "width")
    return nn.Sequential(
        conv_block(in_channels, width),
        nn.MaxPool2d(2),  # (B, w, H/2, W/2)
        conv_block(width, 2 * width),
        nn.MaxPool2d(2),  # (B, 2w, H/4, W/4)
        conv_block(2 * width, 4 * width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(1),  # (B, 4w)
    )


def average_log_probs(frame_logits: Tensor) -> Tensor:
    """``log(1/T * sum_t softmax(frame_logits[:, t]))``: the log of the averaged probabilities.

    Args:
        frame_logits: Tensor[N, T, L], class scores of every frame.

    Returns:
        Tensor[N, L], computed stably as ``logsumexp_t(log_softmax) - log T``.
    """
    require_dim(frame_logits, "frame_logits", 3, "Tensor[N, T, L]")
    require_floating(frame_logits, "frame_logits", "a floating-point Tensor[N, T, L]")
    if frame_logits.shape[1] == 0:  # log(1/0): no frame to average
        raise ValueError("frame_logits must have at least one frame (T >= 1), got "
                         f"{shape_str(frame_logits)}")
    log_p = frame_logits.log_softmax(dim=2)  # (N, T, L)
    return log_p.logsumexp(dim=1) - math.log(frame_logits.shape[1])  # (N, L)


class SingleFrameCNN(nn.Module):
    """A 2D CNN applied to every frame; the clip's prediction averages frame probabilities.

    Args:
        num_classes: L.
        in_channels: C of the frames (3).
        width: channels of the first conv (the encoder has width, 2 width, 4 width).
    """

    def __init__(self, *, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.num_classes = positive_int(num_classes, "num_classes")
        self.in_channels = positive_int(in_channels, "in_channels")
        self.encoder = frame_encoder(in_channels, width)
        self.classifier = nn.Linear(4 * width, num_classes)

    def frame_logits(self, clips: Tensor) -> Tensor:
        """Class scores of each frame alone: ``Tensor[N, T, C, H, W] -> Tensor[N, T, L]``.

        Train on these with the clip's label repeated over frames, or on ``forward``.
        """
        check_clips(clips, in_channels=self.in_channels)
        N, T = clips.shape[:2]
        frames = clips.flatten(0, 1)  # (N*T, C, H, W): frames are independent images
        logits = self.classifier(self.encoder(frames))  # (N*T, L)
        return logits.view(N, T, -1)  # (N, T, L)

    def forward(self, clips: Tensor) -> Tensor:
        """``Tensor[N, T, C, H, W] -> Tensor[N, L]``: log of the frame-averaged probabilities."""
        return average_log_probs(self.frame_logits(clips))
