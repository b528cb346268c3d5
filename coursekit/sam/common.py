"""Small layers every SAM component shares: ``LayerNorm2d``, ``MLPBlock``, ``MLP``, ``UpConv2d``.

Same parameter names and arithmetic as segment-anything's ``modeling/common.py``
(``LayerNorm2d``, ``MLPBlock``) and ``mask_decoder.MLP``, so their ``state_dict`` loads
into ours unchanged. ``UpConv2d`` is the learnable upsampling of the mask decoder
(lecture: *learnable upsampling*, lesson 02), computed by our own
``coursekit.upsampling.conv_transpose2d``. Tested in tests/sam/test_common.py.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from coursekit.upsampling import conv_transpose2d
from coursekit.validators import positive_int, require_dim, shape_str


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of every pixel: Tensor[B, C, H, W] -> the same shape.

    ``y = weight * (x - mean_c(x)) / sqrt(var_c(x) + eps) + bias`` with the mean and the
    (biased) variance taken over ``C`` at each pixel (ConvNeXt's / detectron2's layer).
    """

    def __init__(self, *, num_channels: int, eps: float = 1e-6) -> None:
        super().__init__()
        positive_int(num_channels, "num_channels")
        self.weight = nn.Parameter(torch.ones(num_channels))
        self.bias = nn.Parameter(torch.zeros(num_channels))
        self.eps = float(eps)

    def forward(self, x: Tensor) -> Tensor:
        u = x.mean(1, keepdim=True)  # (B, 1, H, W)
        s = (x - u).pow(2).mean(1, keepdim=True)  # (B, 1, H, W)
        x = (x - u) / torch.sqrt(s + self.eps)  # (B, C, H, W)
        return self.weight[:, None, None] * x + self.bias[:, None, None]


class MLPBlock(nn.Module):
    """``lin2(act(lin1(x)))``: the transformer's feed-forward block, Tensor[..., D] -> same."""

    def __init__(self, *, embedding_dim: int, mlp_dim: int,
                 act: type[nn.Module] = nn.GELU) -> None:
        super().__init__()
        positive_int(embedding_dim, "embedding_dim")
        positive_int(mlp_dim, "mlp_dim")
        self.lin1 = nn.Linear(embedding_dim, mlp_dim)
        self.lin2 = nn.Linear(mlp_dim, embedding_dim)
        self.act = act()

    def forward(self, x: Tensor) -> Tensor:
        return self.lin2(self.act(self.lin1(x)))  # (..., D) -> (..., mlp_dim) -> (..., D)


class MLP(nn.Module):
    """``num_layers`` linear layers with ReLU between them: Tensor[..., in] -> Tensor[..., out].

    The hypernetwork MLPs and the IoU head of the mask decoder (MaskFormer's MLP).
    """

    def __init__(self, *, input_dim: int, hidden_dim: int, output_dim: int,
                 num_layers: int) -> None:
        super().__init__()
        for name, value in (("input_dim", input_dim), ("hidden_dim", hidden_dim),
                            ("output_dim", output_dim), ("num_layers", num_layers)):
            positive_int(value, name)
        self.num_layers = num_layers
        h = [hidden_dim] * (num_layers - 1)
        self.layers = nn.ModuleList(
            nn.Linear(n, k) for n, k in zip([input_dim] + h, h + [output_dim], strict=True)
        )

    def forward(self, x: Tensor) -> Tensor:
        for i, layer in enumerate(self.layers):
            x = layer(x) if i == self.num_layers - 1 else F.relu(layer(x))
        return x


class UpConv2d(nn.Module):
    """Learnable ``stride``× upsampling: a transposed convolution with our own operator.

    Holds ``weight`` Tensor[C_in, C_out, k, k] and ``bias`` Tensor[C_out] (the names,
    layout and initialisation of ``nn.ConvTranspose2d``, so its ``state_dict`` loads
    unchanged) and calls ``coursekit.upsampling.conv_transpose2d``: every input pixel
    adds a copy of the filter weighted by its values, ``stride`` pixels apart in the
    output, summed at overlaps (with ``k = stride = 2`` the copies tile the output
    without overlap). Tensor[B, C_in, H, W] -> Tensor[B, C_out, (H-1)·s + k, (W-1)·s + k].
    Equal to ``nn.ConvTranspose2d(C_in, C_out, k, stride=s)`` (tests/sam/test_common.py).
    """

    def __init__(self, *, in_channels: int, out_channels: int, kernel_size: int = 2,
                 stride: int = 2) -> None:
        super().__init__()
        positive_int(in_channels, "in_channels")
        positive_int(out_channels, "out_channels")
        positive_int(kernel_size, "kernel_size")
        self.stride = positive_int(stride, "stride")
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels, kernel_size,
                                               kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        # nn.ConvTranspose2d's initialisation (its fan_in is weight.shape[1] * k * k)
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        bound = 1 / math.sqrt(out_channels * kernel_size * kernel_size)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        expected = f"Tensor[B, {self.weight.shape[0]}, H, W]"
        require_dim(x, "x", 4, expected)
        if x.shape[1] != self.weight.shape[0]:
            raise ValueError(f"x must be {expected}, got {shape_str(x)}")
        k = self.weight.shape[-1]
        if k == self.stride and self.weight.shape[-2] == k and x.dtype == self.weight.dtype \
                and x.is_floating_point() and x.dtype not in (torch.float16, torch.bfloat16):
            # kernel = stride: the filter copies tile the output without overlap, so the
            # "sum at overlaps" is a plain rearrangement of one product (fast path)
            B, _, H, W = x.shape
            Co = self.weight.shape[1]
            Ci = self.weight.shape[0]
            y = self.weight.reshape(Ci, Co * k * k).t() @ x.reshape(B, Ci, H * W)  # (B, Co·k², HW)
            y = y.view(B, Co, k, k, H, W).permute(0, 1, 4, 2, 5, 3)  # (B, Co, H, k, W, k)
            return y.reshape(B, Co, H * k, W * k) + self.bias[:, None, None]  # (B, Co, kH, kW)
        return conv_transpose2d(x, self.weight, self.bias, stride=self.stride)  # (B, Co, sH, sW)
