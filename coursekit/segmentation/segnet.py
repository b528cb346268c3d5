"""SegNet: every downsampling layer paired with an upsampling layer (Badrinarayanan et al. 2017).

The lecture pairs each max pooling in the encoder with a **max unpooling** in the
decoder: the pooling remembers *which* element of each window was the maximum, and
the unpooling puts the decoder's value back at exactly that position (zeros
elsewhere), so fine positions survive the bottleneck without a skip of features.
Convolutions after each unpooling fill in the zeros. Both halves use our
from-scratch ``max_pool2d_with_indices`` / ``max_unpool2d`` (lesson 02).
Tested in tests/segmentation/test_segnet.py.

    x (N, 3, H, W) -> [convs, pool 2×2 (remember indices)] × depth   (H / 2^depth)
      -> [unpool with the same indices, convs] × depth -> 1×1 -> (N, K, H, W)
"""

from __future__ import annotations

from torch import Tensor, nn

from coursekit.segmentation.fcn import check_input, check_model_args, conv_norm_relu
from coursekit.upsampling.unpool import max_pool2d_with_indices, max_unpool2d

__all__ = ["SegNet"]


class SegNet(nn.Module):
    """Encoder-decoder with pooling indices: Tensor[N, 3, H, W] -> Tensor[N, K, H, W].

    ``depth`` stages of (two 3×3 conv-norm-ReLU, 2×2 max pool with indices); channels
    ``w, 2w, 4w, ...``; the decoder mirrors them with ``max_unpool2d``. H and W must be
    divisible by 2^depth. ``config`` holds the constructor arguments.
    """

    def __init__(self, *, num_classes: int = 8, width: int = 16, depth: int = 3,
                 in_channels: int = 3, norm: str = "batch") -> None:
        super().__init__()
        check_model_args(num_classes=num_classes, width=width, depth=depth,
                         in_channels=in_channels, norm=norm)
        self.config = {"num_classes": num_classes, "width": width, "depth": depth,
                       "in_channels": in_channels, "norm": norm}
        channels = [in_channels] + [width * 2**i for i in range(depth)]  # in, w, 2w, 4w
        self.encoder = nn.ModuleList(
            nn.Sequential(conv_norm_relu(c_in, c_out, norm=norm),
                          conv_norm_relu(c_out, c_out, norm=norm))
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        outs = [width] + channels[1:-1]  # decoder stage i ends with the channels of encoder i-1
        self.decoder = nn.ModuleList(
            nn.Sequential(conv_norm_relu(c_in, c_in, norm=norm),
                          conv_norm_relu(c_in, c_out, norm=norm))
            for c_in, c_out in zip(channels[:0:-1], outs[::-1], strict=True)
        )
        self.head = nn.Conv2d(width, num_classes, 1)
        self.factor = 2**depth

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.config["in_channels"], self.factor)
        remembered = []
        for block in self.encoder:
            x, indices = max_pool2d_with_indices(block(x), 2)  # (N, c, h/2, w/2) + argmax positions
            remembered.append(indices)
        for block in self.decoder:
            x = max_unpool2d(x, remembered.pop(), 2)  # (N, c, 2h, 2w): values back where they were
            x = block(x)  # (N, c', 2h, 2w)
        return self.head(x)  # (N, K, H, W)
