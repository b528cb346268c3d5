"""Video classification with a 3D CNN: 3D convolutions and pooling fuse time slowly.

Lecture: *Video classification: 3D CNN* — use 3D versions of convolution and pooling
to slowly fuse temporal information over the course of the network. A
``K_t x K_h x K_w`` kernel slides over time as well as space, so each layer widens the
temporal receptive field a little (3 frames, then 5, ...), as it widens the spatial one::

    [N, T, C, H, W] --transpose--> [N, C, T, H, W]
      --Conv3d 3x3x3--> MaxPool3d 1x2x2 (space only) --Conv3d 3x3x3--> MaxPool3d 2x2x2
      --Conv3d 3x3x3--> global average over (T, H, W) --Linear--> [N, L]

Unlike the fusion models it works for any number of frames ``T >= 2``.

Clips are ``Tensor[N, T, C, H, W]`` (transposed inside to the ``[N, C, T, H, W]``
layout that ``torch.nn.Conv3d`` reads); scores ``Tensor[N, L]`` (logits).
Tested in tests/video/test_models.py.
"""

from __future__ import annotations

from torch import Tensor, nn

from coursekit.validators import describe, positive_int
from coursekit.video._checks import CLIPS, check_clips

__all__ = ["CNN3D", "conv3d_block"]


def conv3d_block(in_channels: int, out_channels: int) -> nn.Sequential:
    """3x3x3 convolution (padding 1, no bias), 3D batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv3d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.BatchNorm3d(out_channels),
        nn.ReLU(inplace=True),
    )


class CNN3D(nn.Module):
    """A small C3D-style network: three 3x3x3 conv blocks, pooling, a linear classifier.

    Args:
        num_classes: L.
        in_channels: C (3).
        width: channels of the first conv (then 2 width, 4 width).
    """

    def __init__(self, *, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        self.num_classes = positive_int(num_classes, "num_classes")
        self.in_channels = positive_int(in_channels, "in_channels")
        width = positive_int(width, "width")
        self.features = nn.Sequential(
            conv3d_block(in_channels, width),
            nn.MaxPool3d((1, 2, 2)),  # (N, w, T, H/2, W/2): no pooling in time yet
            conv3d_block(width, 2 * width),
            nn.MaxPool3d(2),  # (N, 2w, T/2, H/4, W/4)
            conv3d_block(2 * width, 4 * width),
            nn.AdaptiveAvgPool3d(1),
            nn.Flatten(1),  # (N, 4w)
        )
        self.classifier = nn.Linear(4 * width, num_classes)

    def forward(self, clips: Tensor) -> Tensor:
        """``Tensor[N, T, C, H, W] -> Tensor[N, L]`` (T >= 2, H, W >= 4)."""
        check_clips(clips, in_channels=self.in_channels)
        if clips.shape[1] < 2 or min(clips.shape[3:]) < 4:
            raise ValueError(f"clips must be {CLIPS} with T >= 2 and H, W >= 4 (one 2x2x2 "
                             f"pooling after a 1x2x2 one), got {describe(clips)}")
        x = clips.transpose(1, 2)  # (N, C, T, H, W): channels first for Conv3d
        return self.classifier(self.features(x))  # (N, L)
