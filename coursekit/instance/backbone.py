"""A tiny backbone with a feature pyramid network (FPN), for 64 × 64 ShapesWorld images.

Lecture: *Mask R-CNN* — "backbone + FPN" is the first stage: a CNN computes
feature maps at several strides, and the FPN gives every level the same number
of channels and the semantics of the coarsest one::

    C_l = body stage l                       (strides 2, 4, 8 here; 4..32 in torchvision)
    P_top = out_conv(lateral(C_top))
    P_l  = out_conv(lateral(C_l) + nearest_upsample(inner_{l+1}, 2×))   (top-down pathway)

Small objects are then read from the fine levels and large ones from the coarse
levels (``pooler.MultiScaleRoIAlign``). Same structure as torchvision's
``BackboneWithFPN`` (``body`` + ``fpn``), with a few-layer CNN instead of a ResNet-50
and GroupNorm instead of frozen BatchNorm; tested in tests/instance/test_mask_rcnn.py and
tests/instance/test_backbone.py. The top-down 2× upsampling is lesson 02's
``nearest_upsample`` (``size=`` the finer level's size, which is exactly 2× except on odd
image sizes), equal to the ``F.interpolate(mode="nearest")`` of torchvision's FPN.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import Tensor, nn

from coursekit.upsampling.nearest import nearest_upsample
from coursekit.validators import describe, shape_str


def conv_block(in_channels: int, out_channels: int, stride: int = 1) -> nn.Sequential:
    """3 × 3 conv (stride 1 or 2) + GroupNorm + ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False),
        nn.GroupNorm(min(8, out_channels), out_channels),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    """The body: a stem, then one stage per level, each halving the resolution.

    ``SmallCNN(widths=(32, 64, 96), stem=24)`` maps Tensor[B, 3, H, W] to an ordered dict
    ``{"0": Tensor[B, 32, H/2, W/2], "1": Tensor[B, 64, H/4, W/4],
    "2": Tensor[B, 96, H/8, W/8]}``
    (torchvision's ``IntermediateLayerGetter`` returns the same kind of dict).
    """

    def __init__(self, widths: Sequence[int] = (32, 64, 96), stem: int = 24) -> None:
        super().__init__()
        self.widths = tuple(int(w) for w in widths)
        self.stem = conv_block(3, stem)
        stages, previous = [], stem
        for width in self.widths:
            stages.append(nn.Sequential(conv_block(previous, width, stride=2),
                                        conv_block(width, width)))
            previous = width
        self.stages = nn.ModuleList(stages)

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        x = self.stem(x)  # (B, stem, H, W)
        out: OrderedDict[str, Tensor] = OrderedDict()
        for i, stage in enumerate(self.stages):
            x = stage(x)  # (B, widths[i], H / 2^(i+1), W / 2^(i+1))
            out[str(i)] = x
        return out


class FeaturePyramidNetwork(nn.Module):
    """Lateral 1 × 1 convs, a top-down pathway with 2× nearest upsampling, 3 × 3 output convs.

    ``FeaturePyramidNetwork(in_channels_list, out_channels)``: an ordered dict of
    Tensor[B, in_channels_list[l], H_l, W_l] (fine to coarse) -> an ordered dict of
    Tensor[B, out_channels, H_l, W_l]. Same computation as
    ``torchvision.ops.FeaturePyramidNetwork`` (without its extra max-pool level); the
    top-down step is ``nearest_upsample(inner, size=lateral.shape[-2:])``, torch's
    ``F.interpolate(inner, size=..., mode="nearest")`` to the bit.
    """

    def __init__(self, in_channels_list: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.in_channels_list = tuple(int(c) for c in in_channels_list)
        self.inner_blocks = nn.ModuleList(nn.Conv2d(c, out_channels, 1) for c in in_channels_list)
        self.layer_blocks = nn.ModuleList(nn.Conv2d(out_channels, out_channels, 3, padding=1)
                                          for _ in in_channels_list)
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_uniform_(module.weight, a=1)
                nn.init.zeros_(module.bias)

    def forward(self, x: OrderedDict[str, Tensor]) -> OrderedDict[str, Tensor]:
        self._check(x)
        names, feats = list(x.keys()), list(x.values())
        inner = self.inner_blocks[-1](feats[-1])  # the coarsest level
        results = [self.layer_blocks[-1](inner)]
        for idx in range(len(feats) - 2, -1, -1):
            lateral = self.inner_blocks[idx](feats[idx])  # (B, out, H_l, W_l)
            top_down = nearest_upsample(inner, size=tuple(lateral.shape[-2:]))  # (B, out, H_l, W_l)
            inner = lateral + top_down
            results.insert(0, self.layer_blocks[idx](inner))
        return OrderedDict(zip(names, results, strict=True))

    def _check(self, x: object) -> None:
        expected = (f"a dict of {len(self.in_channels_list)} Tensor[B, C_l, H_l, W_l] with "
                    f"C_l = {list(self.in_channels_list)}, finest first")
        if not isinstance(x, dict):
            raise TypeError(f"x must be {expected}, got {describe(x)}")
        got = "{" + ", ".join(f"{k!r}: {describe(v)}" for k, v in x.items()) + "}"
        if not all(isinstance(f, Tensor) for f in x.values()):
            raise TypeError(f"x must be {expected}, got {got}")
        if len(x) != len(self.in_channels_list) or any(f.dim() != 4 for f in x.values()):
            raise ValueError(f"x must be {expected}, got {got}")
        for (name, f), c in zip(x.items(), self.in_channels_list, strict=True):
            if f.shape[1] != c:
                raise ValueError(f"x[{name!r}] must have {c} channels, got {shape_str(f)}")


class BackboneWithFPN(nn.Module):
    """``body`` (SmallCNN) then ``fpn``: ``out_channels`` channels and one stride per level."""

    def __init__(self, widths: Sequence[int] = (32, 64, 96), stem: int = 24,
                 out_channels: int = 64) -> None:
        super().__init__()
        self.body = SmallCNN(widths, stem)
        self.fpn = FeaturePyramidNetwork(widths, out_channels)
        self.out_channels = out_channels
        self.strides = tuple(2 ** (i + 1) for i in range(len(widths)))  # (2, 4, 8)

    def forward(self, x: Tensor) -> OrderedDict[str, Tensor]:
        """Tensor[B, 3, H, W] -> ``{"0": Tensor[B, out, H/2, W/2], ...}``, one per stride."""
        return self.fpn(self.body(x))
