"""I3D: an Inception image network inflated to a video network.

Lecture: *Inflating 2D networks to 3D* ("Inception Block: Inflated") — I3D takes an
image architecture built from Inception blocks and replaces each 2D conv / pool with a
3D one (``coursekit.video.inflate``). An Inception block runs four branches side by
side and concatenates their channels::

    x -> 1x1 conv -----------------------\\
    x -> 1x1 conv -> 3x3 conv -------------> concat over channels
    x -> 1x1 conv -> 5x5 conv ------------/
    x -> 3x3 max pool (stride 1) -> 1x1 conv

Inflated, each ``k x k`` becomes ``K_t x k x k``; with "same" padding in time the four
branches keep the video's length, so their outputs still concatenate.

``TinyInception`` is a small 2D image classifier (stem, one Inception block, global
pooling, linear) and :class:`I3D` wraps its inflated copy so that it reads clips
``Tensor[N, T, C, H, W]`` like the other video models of this package.
Tested in tests/video/test_inflate.py.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from coursekit.validators import describe, positive_int
from coursekit.video._checks import check_clips
from coursekit.video.inflate import inflate_network

__all__ = ["I3D", "InceptionBlock", "TinyInception", "build_i3d"]


def _conv_bn_relu(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class InceptionBlock(nn.Module):
    """GoogLeNet's Inception block (Szegedy et al., 2015), 2D: four branches, concatenated.

    Output channels: ``ch1x1 + ch3x3 + ch5x5 + pool_proj``; spatial size kept.
    """

    def __init__(self, in_channels: int, *, ch1x1: int, ch3x3red: int, ch3x3: int,
                 ch5x5red: int, ch5x5: int, pool_proj: int) -> None:
        super().__init__()
        for v, n in ((in_channels, "in_channels"), (ch1x1, "ch1x1"), (ch3x3red, "ch3x3red"),
                     (ch3x3, "ch3x3"), (ch5x5red, "ch5x5red"), (ch5x5, "ch5x5"),
                     (pool_proj, "pool_proj")):
            positive_int(v, n)
        self.out_channels = ch1x1 + ch3x3 + ch5x5 + pool_proj
        self.branch1 = _conv_bn_relu(in_channels, ch1x1, 1)
        self.branch2 = nn.Sequential(_conv_bn_relu(in_channels, ch3x3red, 1),
                                     _conv_bn_relu(ch3x3red, ch3x3, 3))
        self.branch3 = nn.Sequential(_conv_bn_relu(in_channels, ch5x5red, 1),
                                     _conv_bn_relu(ch5x5red, ch5x5, 5))
        self.branch4 = nn.Sequential(nn.MaxPool2d(3, stride=1, padding=1),
                                     _conv_bn_relu(in_channels, pool_proj, 1))

    def forward(self, x: Tensor) -> Tensor:
        """``Tensor[N, C, H, W] -> Tensor[N, C', H, W]`` (or 5D once inflated)."""
        branches = [self.branch1(x), self.branch2(x), self.branch3(x), self.branch4(x)]
        return torch.cat(branches, dim=1)  # channels are dim 1 in 2D and in 3D


class TinyInception(nn.Module):
    """A small image classifier: conv stem, max pool, one Inception block, pool, linear.

    ``Tensor[N, C, H, W] -> Tensor[N, L]``; ``width`` scales every layer.
    """

    def __init__(self, *, num_classes: int, in_channels: int = 3, width: int = 16) -> None:
        super().__init__()
        positive_int(num_classes, "num_classes")
        w = positive_int(width, "width")
        self.stem = nn.Sequential(_conv_bn_relu(in_channels, w, 3),
                                  nn.MaxPool2d(3, stride=2, padding=1))  # (N, w, H/2, W/2)
        self.inception = InceptionBlock(w, ch1x1=w, ch3x3red=w, ch3x3=2 * w,
                                        ch5x5red=w // 2 or 1, ch5x5=w // 2 or 1,
                                        pool_proj=w // 2 or 1)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(1),
                                  nn.Linear(self.inception.out_channels, num_classes))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.inception(self.stem(x)))


class I3D(nn.Module):
    """A 2D network inflated (``inflate_network``), reading clips ``Tensor[N, T, C, H, W]``.

    Args:
        net2d: the image network (``Tensor[N, C, H, W] -> Tensor[N, L]``); not modified.
        time_size, pool_time_size, time_padding, time_padding_mode: as in
            ``inflate_network`` (defaults here: "same" padding, so any T works).
    """

    def __init__(self, net2d: nn.Module, *, time_size: int = 3,
                 pool_time_size: int | None = None, time_padding: str = "same",
                 time_padding_mode: str = "zeros") -> None:
        super().__init__()
        if not isinstance(net2d, nn.Module):
            raise TypeError(f"net2d must be a torch.nn.Module, got {describe(net2d)}")
        self.net = inflate_network(net2d, time_size, pool_time_size=pool_time_size,
                                   time_padding=time_padding,
                                   time_padding_mode=time_padding_mode)
        first = next((m for m in self.net.modules() if isinstance(m, nn.Conv3d)), None)
        self.in_channels = None if first is None else first.in_channels

    def forward(self, clips: Tensor) -> Tensor:
        """``Tensor[N, T, C, H, W] -> Tensor[N, L]``."""
        check_clips(clips, in_channels=self.in_channels)
        return self.net(clips.transpose(1, 2))  # (N, C, T, H, W) for the 3D layers


def build_i3d(*, num_classes: int, in_channels: int = 3, width: int = 16,
              time_size: int = 3, net2d: nn.Module | None = None) -> I3D:
    """An inflated :class:`TinyInception` (or the given pre-trained ``net2d``)."""
    if net2d is None:
        net2d = TinyInception(num_classes=num_classes, in_channels=in_channels, width=width)
    return I3D(net2d, time_size=time_size)
