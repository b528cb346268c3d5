"""Receptive fields: by formula, by walking a network, and measured with gradients.

The receptive field of an output pixel is the input region that can change it.
For ``L`` stacked convolutions with kernel ``k`` and stride ``s``:

    RF = 1 + sum_l (k_l - 1) * prod_{i<l} s_i            (= 1 + 2L for 3x3, stride 1)

so with stride 1 it grows only linearly with depth (the lecture's "Problem #1"),
and downsampling (stride / pooling) makes it grow geometrically.
``receptive_field_of`` also tracks the *jump* (input pixels between neighbouring
outputs, = prod s) and the *start* (input coordinate of the centre of output
pixel 0). ``measure_receptive_field`` checks the formula without trusting it:
back-propagate from one output pixel and see which input pixels get a gradient.
Tested in tests/segmentation/test_receptive_field.py.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from numbers import Integral

import torch
from torch import Tensor, nn

from coursekit.validators import describe, int_pair, positive_int

__all__ = [
    "measure_receptive_field",
    "receptive_field",
    "receptive_field_map",
    "receptive_field_of",
]


def receptive_field(num_layers: int, kernel_size: int = 3, stride: int = 1) -> int:
    """Receptive field (in input pixels, per side) of ``num_layers`` identical conv layers.

    ``RF = 1 + (k - 1) * (1 + s + s^2 + ... + s^(L-1))``; for stride 1 that is
    ``1 + L (k - 1)``, the lecture's ``1 + 2L`` for 3x3 convolutions.
    Matches ``receptive_field_of`` and the gradient measurement
    (tests/segmentation/test_receptive_field.py).
    """
    num_layers = positive_int(num_layers, "num_layers", minimum=0)
    kernel_size = positive_int(kernel_size, "kernel_size")
    stride = positive_int(stride, "stride")
    return 1 + (kernel_size - 1) * sum(stride**layer for layer in range(num_layers))


def _square(value: int | tuple[int, ...], what: str, minimum: int) -> int:
    """One int from a module attribute that is an int or an (h, w) pair with h == w."""
    h, w = int_pair(value, what, minimum)
    if h != w:
        raise ValueError(f"{what} must be square (same in height and width), got {tuple(value)}")
    return h


def _layer_geometry(module: nn.Module) -> list[tuple[int, int, int]]:
    """(effective kernel, stride, padding) of each spatial layer, in order; skips pointwise ones."""
    if isinstance(module, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
        kind = type(module).__name__
        kernel = _square(module.kernel_size, f"{kind}.kernel_size", 1)
        stride = module.stride if module.stride is not None else kernel
        stride = _square(stride, f"{kind}.stride", 1)
        padding = module.padding
        if isinstance(padding, str):
            raise ValueError(f"padding={padding!r} in {kind} is not supported; use an int")
        padding = _square(padding, f"{kind}.padding", 0)
        dilation = _square(getattr(module, "dilation", 1), f"{kind}.dilation", 1)
        return [(dilation * (kernel - 1) + 1, stride, padding)]
    children = list(module.children())
    if children:
        return [g for child in children for g in _layer_geometry(child)]
    pointwise = (nn.ReLU, nn.LeakyReLU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.BatchNorm2d,
                 nn.GroupNorm, nn.InstanceNorm2d, nn.Identity, nn.Dropout, nn.Dropout2d,
                 nn.Sequential, nn.ModuleList)  # an empty container is the identity
    if isinstance(module, pointwise):
        return []
    raise TypeError(
        f"receptive_field_of walks Conv2d / MaxPool2d / AvgPool2d (and pointwise layers) in order, "
        f"got {type(module).__name__}; pass a list of (kernel, stride) instead"
    )


def receptive_field_of(layers: Sequence[tuple[int, ...]] | nn.Module) -> dict[str, float]:
    """Receptive field ``size``, ``jump`` and ``start`` after a chain of layers.

    ``layers`` is a list of ``(kernel, stride)`` or ``(kernel, stride, padding)``
    tuples, or an ``nn.Module`` whose Conv2d / MaxPool2d / AvgPool2d are applied in
    the order they are registered (an ``nn.Sequential``). Per layer, starting from
    ``size=1, jump=1, start=0.5`` (pixel centres at half-integers, pixel i covers [i, i+1)):

        size  += (k - 1) * jump
        start += ((k - 1) / 2 - p) * jump
        jump  *= s

    so output pixel ``(y, x)`` sees the input square of side ``size`` centred at
    ``start + jump * (y, x)`` (padding can push it outside the image).
    Checked against ``measure_receptive_field`` in tests/segmentation/test_receptive_field.py.
    """
    if isinstance(layers, nn.Module):
        geometry = _layer_geometry(layers)
    elif isinstance(layers, Sequence) and not isinstance(layers, str):
        geometry = []
        for i, layer in enumerate(layers):
            ints = isinstance(layer, tuple | list) and all(
                isinstance(v, int) and not isinstance(v, bool) for v in layer
            )
            if not ints or len(layer) not in (2, 3):
                raise TypeError(f"layers[{i}] must be a (kernel, stride) or "
                                f"(kernel, stride, padding) tuple of ints, got {layer!r}")
            kernel, stride, padding = (*layer, 0) if len(layer) == 2 else layer
            if kernel < 1 or stride < 1 or padding < 0:
                raise ValueError(f"layers[{i}] needs kernel >= 1, stride >= 1, padding >= 0, "
                                 f"got {tuple(layer)}")
            geometry.append((kernel, stride, padding))
    else:
        raise TypeError(f"layers must be a list of (kernel, stride) tuples or an nn.Module, "
                        f"got {describe(layers)}")
    size, jump, start = 1, 1, 0.5
    for kernel, stride, padding in geometry:
        size += (kernel - 1) * jump
        start += ((kernel - 1) / 2 - padding) * jump
        jump *= stride
    return {"size": size, "jump": jump, "start": start}


def _positive_copy(model: nn.Module, dtype: torch.dtype = torch.float64) -> nn.Module:
    """A ``dtype`` copy whose every weight is a positive constant (1 / fan-in) and bias 0.

    All paths then add up, so no gradient cancels; max pooling becomes average
    pooling of the same window (the same region *can* influence the output, but a
    max only passes the gradient to one winner).
    """
    net = copy.deepcopy(model).to(dtype).eval()
    for parent in list(net.modules()):
        for child_name, child in list(parent.named_children()):
            if isinstance(child, nn.MaxPool2d):
                pool = nn.AvgPool2d(child.kernel_size, child.stride, child.padding,
                                    ceil_mode=child.ceil_mode)
                setattr(parent, child_name, pool)
    with torch.no_grad():
        for module in net.modules():
            weight = getattr(module, "weight", None)
            if isinstance(weight, Tensor) and weight.dim() > 1:
                weight.fill_(1.0 / max(1, weight[0].numel()))
            elif isinstance(weight, Tensor):
                weight.fill_(1.0)
            bias = getattr(module, "bias", None)
            if isinstance(bias, Tensor):
                bias.zero_()
    return net


def _in_channels(model: nn.Module) -> int:
    for module in model.modules():
        if isinstance(module, nn.Conv2d | nn.ConvTranspose2d):
            return module.in_channels
    return 1


def receptive_field_map(
    model: nn.Module,
    input_size: int | tuple[int, int],
    out_y: int | None = None,
    out_x: int | None = None,
    *,
    positive: bool = True,
) -> Tensor:
    """|d output[:, :, out_y, out_x] / d input| summed over channels: Tensor[H, W] float.

    With ``positive=True`` (default) a float64 copy (float32 on MPS) of ``model`` with
    positive constant weights is used (see ``_positive_copy``), so the nonzero region is
    the theoretical receptive field and its values show how many paths reach each
    input pixel (a bump, brightest in the middle). With ``positive=False`` the
    model's own weights are used: the *effective* receptive field of a trained net.
    ``input_size``: an int or (H, W). ``out_y, out_x`` default to the centre of the
    output map. Input of ones, on the model's device.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module, got {describe(model)}")
    input_size = int_pair(input_size, "input_size")
    for name, value in (("out_y", out_y), ("out_x", out_x)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, Integral)):
            raise TypeError(f"{name} must be an int or None, got {value!r}")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    exact = torch.float32 if device.type == "mps" else torch.float64  # MPS has no float64
    net = _positive_copy(model, exact) if positive else copy.deepcopy(model).eval()
    dtype = exact if positive or param is None else param.dtype
    x = torch.ones(1, _in_channels(model), *input_size, dtype=dtype, device=device,
                   requires_grad=True)
    y = net(x)  # (1, C, h, w)
    if y.dim() != 4:
        raise ValueError(f"model must map Tensor[N, C, H, W] to Tensor[N, K, h, w], "
                         f"got output of shape {tuple(y.shape)}")
    h, w = y.shape[-2:]
    out_y = h // 2 if out_y is None else out_y
    out_x = w // 2 if out_x is None else out_x
    if not (0 <= out_y < h and 0 <= out_x < w):
        raise ValueError(f"(out_y, out_x) must lie in the {h}x{w} output, got ({out_y}, {out_x})")
    y[0, :, out_y, out_x].sum().backward()
    return x.grad[0].abs().sum(0)  # (H, W)


def measure_receptive_field(
    model: nn.Module, input_size: int | tuple[int, int], pixel: tuple[int, int] | None = None
) -> Tensor:
    """Input pixels that influence output ``pixel`` (default: the centre): Tensor[H, W] bool.

    The nonzero region of ``receptive_field_map(..., positive=True)``. Its
    bounding box has side ``receptive_field_of(model)["size"]`` when the input is
    large enough (tested in tests/segmentation/test_receptive_field.py).
    """
    if pixel is not None and (not isinstance(pixel, tuple | list) or len(pixel) != 2):
        raise TypeError(f"pixel must be None or an (out_y, out_x) pair of ints, got {pixel!r}")
    out_y, out_x = (None, None) if pixel is None else pixel
    return receptive_field_map(model, input_size, out_y, out_x, positive=True) > 0
