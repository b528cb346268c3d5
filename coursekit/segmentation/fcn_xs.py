"""FCN-32s, FCN-16s, FCN-8s: Long, Shelhamer and Darrell's fully convolutional network (2015).

The paper's two steps, at ShapesWorld scale:

1. **Fully connected layers become convolutions.** A classifier ends in fully
   connected layers that need a fixed-size input. A fully connected layer reading a
   ``C × k × k`` block is the same as a ``k × k`` convolution with the same weights
   reshaped to ``Tensor[out, C, k, k]`` (``fc_to_conv``); slid over a larger image it
   gives one class score vector per position: a coarse score map.
2. **Upsample the coarse scores inside the network.** After five 2×2 max pools the
   scores are at stride 32. *FCN-32s* brings them back with one transposed convolution
   (kernel 64, stride 32) initialised to bilinear interpolation. *FCN-16s* first
   upsamples ×2, **adds** a 1×1 class prediction made from pool4 (stride 16), then
   upsamples ×16; *FCN-8s* adds pool3's prediction too (stride 8) before ×8. The skip
   predictions start at zero, so each variant starts out as the coarser one.

U-Net (``unet.py``) also uses skips, but it *concatenates* encoder features and
keeps convolving; FCN *adds* per-class scores. Every transposed convolution here is
``coursekit.upsampling.conv_transpose2d`` (our from-scratch op) with a learnable
weight. Tested in tests/segmentation/test_fcn_xs.py.

    x (N, 3, 64, 64) -> 5 × (convs, 2×2 max pool) -> pool3 (s 8), pool4 (s 16), pool5 (s 32)
      -> fc6 (3×3 conv) -> fc7 (1×1) -> score (N, K, 2, 2)
      32s: up ×32                       -> (N, K, 64, 64)
      16s: up ×2 + score(pool4), up ×16 -> (N, K, 64, 64)
       8s: up ×2 + score(pool4), up ×2 + score(pool3), up ×8
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from coursekit.segmentation.fcn import check_input, check_model_args, conv_norm_relu
from coursekit.upsampling.transposed import conv_transpose2d
from coursekit.validators import describe, int_pair, positive_int

__all__ = ["FCNxs", "LearnedUpsample", "bilinear_kernel", "fc_to_conv"]

VARIANTS = {"32s": 32, "16s": 16, "8s": 8}


def bilinear_kernel(size: int, *, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> Tensor:
    """The ``size × size`` kernel of bilinear interpolation for an upsampling factor ``size // 2``.

    ``k[a, b] = (1 - |a - c| / f) (1 - |b - c| / f)`` with ``f = ceil(size / 2)`` and
    centre ``c = f - 1`` (odd size) or ``f - 0.5`` (even size): the FCN authors'
    ``upsample_filt``. As a transposed convolution with stride ``f`` and padding
    ``f // 2`` it equals bilinear upsampling by ``f`` away from the image border.
    """
    size = positive_int(size, "size")
    factor = (size + 1) // 2
    centre = factor - 1 if size % 2 == 1 else factor - 0.5
    og = torch.arange(size, dtype=torch.float64, device=device)
    line = 1 - (og - centre).abs() / factor  # (size,)
    return (line[:, None] * line[None, :]).to(dtype)  # (size, size)


def fc_to_conv(
    linear: nn.Linear, in_channels: int, kernel_size: int | tuple[int, int]
) -> nn.Conv2d:
    """The convolution that computes ``linear`` at every position of a feature map.

    ``linear`` reads a flattened ``Tensor[N, in_channels * kh * kw]`` (the flatten of a
    ``C × kh × kw`` block, row-major as ``torch.flatten``). The result is an
    ``nn.Conv2d(in_channels, out_features, (kh, kw))`` whose weight is
    ``linear.weight.view(out, C, kh, kw)``: on a ``C × kh × kw`` input it gives exactly
    ``linear``'s output (as ``Tensor[N, out, 1, 1]``); on a larger input, one output per
    window position.
    """
    if not isinstance(linear, nn.Linear):
        raise TypeError(f"linear must be an nn.Linear, got {describe(linear)}")
    in_channels = positive_int(in_channels, "in_channels")
    kh, kw = int_pair(kernel_size, "kernel_size")
    if linear.in_features != in_channels * kh * kw:
        raise ValueError(f"linear.in_features must be in_channels * kh * kw = {in_channels} * {kh}"
                         f" * {kw} = {in_channels * kh * kw}, got {linear.in_features}")
    conv = nn.Conv2d(in_channels, linear.out_features, (kh, kw), bias=linear.bias is not None)
    conv = conv.to(device=linear.weight.device, dtype=linear.weight.dtype)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.view(linear.out_features, in_channels, kh, kw))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv


class LearnedUpsample(nn.Module):
    """Per-class upsampling by ``factor``: a transposed convolution initialised to bilinear.

    Weight ``Tensor[C, C, 2f, 2f]`` (stride ``f``, padding ``f // 2``: exactly ×f), the
    bilinear kernel on the class diagonal and zeros elsewhere, learnable (the paper
    learns the ×2 steps and fixes the last one; here all learn). Runs our
    ``conv_transpose2d``.
    """

    def __init__(self, channels: int, factor: int) -> None:
        super().__init__()
        channels, factor = positive_int(channels, "channels"), positive_int(factor, "factor")
        weight = torch.zeros(channels, channels, 2 * factor, 2 * factor)
        weight[range(channels), range(channels)] = bilinear_kernel(2 * factor)
        self.weight = nn.Parameter(weight)  # (C_in, C_out, 2f, 2f), ConvTranspose2d's layout
        self.factor = factor

    def forward(self, x: Tensor) -> Tensor:
        f = self.factor
        return conv_transpose2d(x, self.weight, stride=f, padding=f // 2)  # (N, C, f h, f w)


class FCNxs(nn.Module):
    """FCN-32s / FCN-16s / FCN-8s: Tensor[N, 3, H, W] -> class scores Tensor[N, K, H, W].

    A small VGG-like trunk (five stages of 3×3 convolutions and 2×2 max pooling,
    channels ``w, 2w, 4w, 8w, 8w``), ``fc6`` as a 3×3 convolution and ``fc7`` as a
    1×1 convolution (the classifier's fully connected layers, convolutionalised), a
    1×1 class scorer, then the ``variant``'s upsampling path. H and W must be
    divisible by 32. ``config`` holds the constructor arguments (for checkpoints).
    """

    def __init__(self, *, variant: str = "8s", num_classes: int = 8, width: int = 16,
                 in_channels: int = 3, norm: str = "batch") -> None:
        super().__init__()
        if not isinstance(variant, str):
            raise TypeError(f"variant must be a str, one of {sorted(VARIANTS)}, "
                            f"got {describe(variant)}")
        if variant not in VARIANTS:
            raise ValueError(f"variant must be one of {sorted(VARIANTS)}, got {variant!r}")
        check_model_args(num_classes=num_classes, width=width, in_channels=in_channels, norm=norm)
        self.config = {"variant": variant, "num_classes": num_classes, "width": width,
                       "in_channels": in_channels, "norm": norm}
        channels = [width, 2 * width, 4 * width, 8 * width, 8 * width]
        stages, c_in = [], in_channels
        for i, c in enumerate(channels):
            layers = [conv_norm_relu(c_in, c, norm=norm)]
            if i >= 1:
                layers.append(conv_norm_relu(c, c, norm=norm))
            layers.append(nn.MaxPool2d(2))
            stages.append(nn.Sequential(*layers))
            c_in = c
        self.stages = nn.ModuleList(stages)  # outputs: pool1 (s 2) ... pool5 (s 32)
        self.fc6 = conv_norm_relu(channels[-1], 16 * width, norm=norm)  # "fc6" as a 3×3 conv
        self.fc7 = nn.Sequential(nn.Conv2d(16 * width, 16 * width, 1), nn.ReLU(inplace=True))
        self.score = nn.Conv2d(16 * width, num_classes, 1)
        self.stride = VARIANTS[variant]
        if self.stride <= 16:
            self.score_pool4 = nn.Conv2d(channels[3], num_classes, 1)
            self.up_pool4 = LearnedUpsample(num_classes, 2)
        if self.stride <= 8:
            self.score_pool3 = nn.Conv2d(channels[2], num_classes, 1)
            self.up_pool3 = LearnedUpsample(num_classes, 2)
        for name in ("score_pool4", "score_pool3"):
            if hasattr(self, name):  # skip predictions start at zero: the coarser net first
                nn.init.zeros_(getattr(self, name).weight)
                nn.init.zeros_(getattr(self, name).bias)
        self.up_final = LearnedUpsample(num_classes, self.stride)

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.config["in_channels"], 32)
        pools = []
        for stage in self.stages:
            x = stage(x)  # (N, c_i, H / 2^(i+1), W / 2^(i+1))
            pools.append(x)
        scores = self.score(self.fc7(self.fc6(x)))  # (N, K, H/32, W/32)
        if self.stride <= 16:
            scores = self.up_pool4(scores) + self.score_pool4(pools[3])  # (N, K, H/16, W/16)
        if self.stride <= 8:
            scores = self.up_pool3(scores) + self.score_pool3(pools[2])  # (N, K, H/8, W/8)
        return self.up_final(scores)  # (N, K, H, W)
