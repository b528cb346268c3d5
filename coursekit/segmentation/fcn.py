"""An encoder-decoder with downsampling and upsampling inside, no skips: ``EncoderDecoder``.

The lecture's answer to "receptive field grows only as 1 + 2L" and "convolution
at full resolution is expensive": downsample inside the network (stride-2
convolutions, here to 1/8 of the input), think at low resolution, then upsample
back with learned transposed convolutions (``nn.ConvTranspose2d``, whose
from-scratch version is ``coursekit.upsampling.conv_transpose2d``), one upsampling
stage per downsampling stage, and predict class scores at every pixel. This is the
DeconvNet / SegNet family of encoder-decoders, *not* Long et al.'s FCN (that one,
FCN-32s/16s/8s, is ``coursekit.segmentation.fcn_xs``). Without skip connections the
fine detail lost by downsampling must be re-invented by the decoder, so boundaries
blur; U-Net (``coursekit.segmentation.unet``) fixes that.
Tested in tests/segmentation/test_models.py.

``FCN`` is the same class under its old name, kept so that existing code
(``from coursekit.segmentation import FCN``, lesson 01) keeps working; the shipped
checkpoint of this network is still called ``"fcn"`` (``load_segmentation_model("fcn")``).

    x (N, 3, H, W) -> stem (w, H) -> down x depth (H / 2^depth)
      -> up x depth (ConvTranspose 4x4, stride 2) -> 1x1 conv -> (N, classes, H, W)
"""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from coursekit.validators import count_parameters, describe, positive_int, require_tensor

__all__ = ["FCN", "EncoderDecoder", "conv_norm_relu", "count_parameters"]

NORMS = ("batch", "group", "none")


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(next(g for g in (8, 4, 2, 1) if channels % g == 0), channels)
    return nn.Identity()


def conv_norm_relu(
    in_channels: int, out_channels: int, *, stride: int = 1, norm: str = "batch"
) -> nn.Sequential:
    """3x3 convolution (padding 1) -> BatchNorm / GroupNorm / nothing -> ReLU."""
    check_model_args(in_channels=in_channels, out_channels=out_channels, stride=stride, norm=norm)
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=norm == "none"),
        _norm(norm, out_channels),
        nn.ReLU(inplace=True),
    )


def check_model_args(**kwargs: Any) -> None:
    """Every int argument a positive int (``TypeError`` / ``ValueError``), ``norm`` one of NORMS.

    ``None`` is accepted for any int argument (``UNet``'s ``out_channels``).
    """
    for name, value in kwargs.items():
        if name == "norm":
            if not isinstance(value, str):
                raise TypeError(f"norm must be a str ('batch', 'group' or 'none'), "
                                f"got {describe(value)}")
            if value not in NORMS:
                raise ValueError(f"norm must be 'batch', 'group' or 'none', got {value!r}")
        elif value is not None:
            positive_int(value, name)


def check_input(x: object, in_channels: int, multiple: int) -> None:
    """Raise unless ``x`` is a float Tensor[N, in_channels, H, W].

    H and W must be divisible by ``multiple``. Not a tensor or not floating point:
    ``TypeError``; wrong shape: ``ValueError``.
    """
    expected = f"a float Tensor[N, {in_channels}, H, W]"
    require_tensor(x, "x", expected)
    if x.dim() != 4 or x.shape[1] != in_channels:
        raise ValueError(f"x must be {expected}, got {describe(x)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be {expected} (float16, bfloat16, float32 or float64), "
                        f"got {describe(x)}")
    if x.shape[-2] % multiple or x.shape[-1] % multiple:
        raise ValueError(f"x height and width must be divisible by {multiple} (2^depth), "
                         f"got {tuple(x.shape[-2:])}")


class EncoderDecoder(nn.Module):
    """Encoder-decoder without skip connections (DeconvNet / SegNet style; alias ``FCN``).

    Tensor[N, in_channels, H, W] -> class scores Tensor[N, num_classes, H, W].

    ``depth`` stride-2 stages take the input to 1/2^depth resolution (channels
    width, 2 width, 4 width, capped at 4 width), ``depth`` transposed
    convolutions (kernel 4, stride 2, padding 1: exactly x2) bring it back.
    H and W must be divisible by 2^depth. ``config`` holds the constructor
    arguments (for checkpoints).
    """

    def __init__(
        self,
        *,
        num_classes: int = 8,
        width: int = 32,
        in_channels: int = 3,
        depth: int = 3,
        norm: str = "batch",
    ) -> None:
        super().__init__()
        check_model_args(num_classes=num_classes, width=width, in_channels=in_channels,
                         depth=depth, norm=norm)
        self.config = {"num_classes": num_classes, "width": width, "in_channels": in_channels,
                       "depth": depth, "norm": norm}
        channels = [min(width * 2**i, 4 * width) for i in range(depth + 1)]  # w, 2w, 4w, 4w, ...
        self.stem = nn.Sequential(conv_norm_relu(in_channels, width, norm=norm),
                                  conv_norm_relu(width, width, norm=norm))
        self.down = nn.ModuleList(
            nn.Sequential(conv_norm_relu(c_in, c_out, stride=2, norm=norm),
                          conv_norm_relu(c_out, c_out, norm=norm))
            for c_in, c_out in zip(channels[:-1], channels[1:], strict=True)
        )
        self.up = nn.ModuleList(
            nn.Sequential(
                nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=norm == "none"),
                _norm(norm, c_out),
                nn.ReLU(inplace=True),
                conv_norm_relu(c_out, c_out, norm=norm),
            )
            for c_in, c_out in zip(channels[:0:-1], channels[-2::-1], strict=True)
        )
        self.head = nn.Conv2d(width, num_classes, 1)
        self.factor = 2**depth

    def forward(self, x: Tensor) -> Tensor:
        check_input(x, self.config["in_channels"], self.factor)
        x = self.stem(x)  # (N, w, H, W)
        for stage in self.down:
            x = stage(x)  # (N, c, H / 2^i, W / 2^i)
        for stage in self.up:
            x = stage(x)  # (N, c', 2h, 2w): no skip, only what the low-resolution code remembers
        return self.head(x)  # (N, num_classes, H, W)


# The old name, kept for compatibility: lesson 01, train.py and user code import `FCN`.
# Long et al.'s FCN is ``coursekit.segmentation.fcn_xs.FCNxs``.
FCN = EncoderDecoder
