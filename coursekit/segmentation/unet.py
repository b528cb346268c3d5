"""U-Net: the FCN's encoder-decoder plus skip connections (Ronneberger et al. 2015).

Each decoder stage upsamples with a 2x2 stride-2 transposed convolution (the trainable
``nn.ConvTranspose2d``; tests/segmentation/test_models.py checks it equals our
``coursekit.upsampling.conv_transpose2d``),
*concatenates* the encoder features of the same resolution (the skip: fine
detail the bottleneck lost), and runs two 3x3 convolutions. The head is a 1x1
convolution to ``out_channels``: class scores for segmentation (the default,
``num_classes``), 1 channel for depth, 2 for optical flow (coursekit.dense).
Tested in tests/segmentation/test_models.py.

    x (N, in, H, W) -> enc0 (w, H) -> pool+enc1 (2w, H/2) -> ...
      -> bottleneck (w 2^depth, H/2^depth)
      -> up + cat(enc_{depth-1}) -> ... -> up + cat(enc0) -> 1x1 -> (N, out, H, W)
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from coursekit.segmentation.fcn import check_input, check_model_args, conv_norm_relu

__all__ = ["UNet", "double_conv"]


def double_conv(in_channels: int, out_channels: int, *, norm: str = "batch") -> nn.Sequential:
    """Two (3x3 conv -> norm -> ReLU): U-Net's basic block, resolution unchanged."""
    return nn.Sequential(conv_norm_relu(in_channels, out_channels, norm=norm),
                         conv_norm_relu(out_channels, out_channels, norm=norm))


class UNet(nn.Module):
    """U-Net: Tensor[N, in_channels, H, W] -> Tensor[N, out_channels or num_classes, H, W].

    Keyword-only arguments: ``width`` channels at full resolution, doubled at
    each of ``depth`` max-pool downsamplings (H, W must be divisible by 2^depth);
    ``out_channels`` overrides ``num_classes`` for regression heads; ``norm`` is
    ``"batch"``, ``"group"`` or ``"none"``. ``config`` holds the constructor
    arguments (for checkpoints). ``forward_features`` returns the last decoder
    features Tensor[N, width, H, W] for other heads.
    """

    def __init__(
        self,
        *,
        num_classes: int = 8,
        width: int = 16,
        depth: int = 3,
        in_channels: int = 3,
        out_channels: int | None = None,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_model_args(num_classes=num_classes, width=width, depth=depth,
                         in_channels=in_channels, out_channels=out_channels, norm=norm)
        self.config = {"num_classes": num_classes, "width": width, "depth": depth,
                       "in_channels": in_channels, "out_channels": out_channels, "norm": norm}
        channels = [width * 2**i for i in range(depth + 1)]  # w, 2w, 4w, ...
        self.encoder = nn.ModuleList([double_conv(in_channels, width, norm=norm)])
        self.encoder.extend(double_conv(c, 2 * c, norm=norm) for c in channels[:-1])
        self.pool = nn.MaxPool2d(2)
        self.upsample = nn.ModuleList(
            nn.ConvTranspose2d(2 * c, c, 2, stride=2) for c in reversed(channels[:-1])
        )
        self.decoder = nn.ModuleList(
            double_conv(2 * c, c, norm=norm) for c in reversed(channels[:-1])
        )
        self.head = nn.Conv2d(width, out_channels if out_channels is not None else num_classes, 1)
        self.factor = 2**depth

    def forward_features(self, x: Tensor) -> Tensor:
        """Decoder features at full resolution: Tensor[N, width, H, W]."""
        check_input(x, self.config["in_channels"], self.factor)
        skips = []
        for i, block in enumerate(self.encoder):
            x = block(x if i == 0 else self.pool(x))  # (N, w 2^i, H / 2^i, W / 2^i)
            skips.append(x)
        skips.pop()  # the bottleneck is not a skip
        for up, block in zip(self.upsample, self.decoder, strict=True):
            x = up(x)  # (N, c, 2h, 2w)
            x = torch.cat([x, skips.pop()], dim=1)  # (N, 2c, 2h, 2w): upsampled + skip
            x = block(x)  # (N, c, 2h, 2w)
        return x

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.forward_features(x))  # (N, out, H, W)
