"""Inflating 2D networks to 3D (I3D, Carreira and Zisserman, 2017).

Lecture: *Inflating 2D networks to 3D* — take a 2D CNN architecture and replace each
2D ``K_h x K_w`` conv / pool layer with a 3D ``K_t x K_h x K_w`` version. The weights of
the 2D conv initialise the 3D conv: copy them ``K_t`` times in time and divide by ``K_t``::

    W3[o, i, tau, y, x] = W2[o, i, y, x] / K_t          for tau = 0 ... K_t - 1

This gives the same result as the 2D conv on a "constant" video (every frame the same
image ``I``): each output frame sums ``K_t`` equal terms ``(W2 / K_t) * I``, which is
``W2 * I``. Max pooling over equal frames, batch norm of a constant video and average
pooling keep that identity too, so a whole inflated network gives the 2D network's
output on a constant video (tests/video/test_inflate.py checks it to 1e-12 in float64).

One caveat is padding in time. With ``time_padding=0`` (the default) every output frame
sees only real frames, the identity holds everywhere, and each layer shortens the video
by ``K_t - 1`` frames. With ``time_padding = K_t // 2`` the length is kept (I3D's "SAME"
padding) but the first and last frames see zeros beyond the ends, so there the identity
only holds with ``time_padding_mode="replicate"`` (repeat the end frames instead).

Layouts: 3D layers read channels first, ``Tensor[N, C, T, H, W]``. Only *modules* are
inflated: a ``forward`` that calls ``F.max_pool2d`` or reshapes to 4 dimensions itself
needs rewriting by hand.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit.validators import describe, positive_int, require_dim, require_floating

__all__ = [
    "ReplicateTimeAvgPool3d",
    "ReplicateTimeConv3d",
    "ReplicateTimeMaxPool3d",
    "inflate_batchnorm",
    "inflate_conv",
    "inflate_network",
    "inflate_pool",
    "inflate_weight",
]

_MODES = ("zeros", "replicate")


class _ReplicateTime:
    """Pad time by repeating the first and last frames ``time_pad`` times, then run the layer."""

    time_pad: int

    def forward(self, x: Tensor) -> Tensor:
        if self.time_pad:
            x = F.pad(x, (0, 0, 0, 0, self.time_pad, self.time_pad), mode="replicate")
        return super().forward(x)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, time_pad={self.time_pad} (replicate)"


class ReplicateTimeConv3d(_ReplicateTime, nn.Conv3d):
    """``nn.Conv3d`` whose temporal padding repeats the end frames (spatial padding: zeros)."""

    def __init__(self, *args, time_pad: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.time_pad = time_pad


class ReplicateTimeMaxPool3d(_ReplicateTime, nn.MaxPool3d):
    """``nn.MaxPool3d`` whose temporal padding repeats the end frames."""

    def __init__(self, *args, time_pad: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.time_pad = time_pad


class ReplicateTimeAvgPool3d(_ReplicateTime, nn.AvgPool3d):
    """``nn.AvgPool3d`` whose temporal padding repeats the end frames."""

    def __init__(self, *args, time_pad: int = 0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.time_pad = time_pad


def inflate_weight(weight2d: Tensor, time_size: int) -> Tensor:
    """I3D initialisation: ``Tensor[O, I, kh, kw] -> Tensor[O, I, time_size, kh, kw]``.

    The 2D kernel repeated ``time_size`` times along a new time axis, divided by
    ``time_size``. Differentiable; output in ``weight2d``'s dtype and device.
    """
    require_dim(weight2d, "weight2d", 4, "Tensor[O, I, kh, kw] (a Conv2d weight)")
    require_floating(weight2d, "weight2d", "a floating-point Tensor[O, I, kh, kw]")
    t = positive_int(time_size, "time_size")
    wide = weight2d.to(torch.promote_types(weight2d.dtype, torch.float32))
    repeated = wide.unsqueeze(2).expand(-1, -1, t, -1, -1)  # (O, I, t, kh, kw)
    return (repeated / t).to(weight2d.dtype)


def _time_args(time_size: object, time_stride: object, time_padding: object,
               time_padding_mode: object) -> tuple[int, int, int, str]:
    t = positive_int(time_size, "time_size")
    s = positive_int(time_stride, "time_stride")
    p = positive_int(time_padding, "time_padding", minimum=0)
    if time_padding_mode not in _MODES:
        raise ValueError(f"time_padding_mode must be 'zeros' or 'replicate', "
                         f"got {time_padding_mode!r}")
    return t, s, p, time_padding_mode


def inflate_conv(conv2d: nn.Conv2d, time_size: int, *, time_stride: int = 1,
                 time_padding: int = 0, time_padding_mode: str = "zeros") -> nn.Conv3d:
    """A ``Conv3d`` with kernel ``(time_size, kh, kw)`` initialised from ``conv2d``.

    Stride, padding, dilation and groups in space are those of ``conv2d``; in time they
    are ``time_stride``, ``time_padding`` and 1. The weight is :func:`inflate_weight`, the
    bias is copied. ``time_padding_mode="replicate"`` returns a
    :class:`ReplicateTimeConv3d` (a ``Conv3d`` that repeats the end frames).

    On a constant video ``x[:, :, t] = image`` the output frames equal
    ``conv2d(image)`` (all of them for ``time_padding=0`` or replicate mode).
    """
    if not isinstance(conv2d, nn.Conv2d):
        raise TypeError(f"conv2d must be a torch.nn.Conv2d, got {describe(conv2d)}")
    t, s, p, mode = _time_args(time_size, time_stride, time_padding, time_padding_mode)
    if isinstance(conv2d.padding, str) or conv2d.padding_mode != "zeros":
        raise ValueError("conv2d must have numeric zero padding to be inflated, got "
                         f"padding={conv2d.padding!r}, padding_mode={conv2d.padding_mode!r}")
    w2 = conv2d.weight
    kwargs = dict(kernel_size=(t, *conv2d.kernel_size), stride=(s, *conv2d.stride),
                  dilation=(1, *conv2d.dilation), groups=conv2d.groups,
                  bias=conv2d.bias is not None, device=w2.device, dtype=w2.dtype)
    if mode == "zeros":
        conv3d = nn.Conv3d(conv2d.in_channels, conv2d.out_channels,
                           padding=(p, *conv2d.padding), **kwargs)
    else:
        conv3d = ReplicateTimeConv3d(conv2d.in_channels, conv2d.out_channels,
                                     padding=(0, *conv2d.padding), time_pad=p, **kwargs)
    with torch.no_grad():
        conv3d.weight.copy_(inflate_weight(w2.detach(), t))
        if conv2d.bias is not None:
            conv3d.bias.copy_(conv2d.bias)
    conv3d.weight.requires_grad_(w2.requires_grad)
    if conv2d.bias is not None:
        conv3d.bias.requires_grad_(conv2d.bias.requires_grad)
    return conv3d.train(conv2d.training)


def inflate_pool(pool2d: nn.Module, time_size: int, *, time_stride: int = 1,
                 time_padding: int = 0, time_padding_mode: str = "zeros") -> nn.Module:
    """The 3D version of a 2D pooling layer: kernel ``(time_size, kh, kw)``.

    * ``MaxPool2d`` -> ``MaxPool3d``, ``AvgPool2d`` -> ``AvgPool3d`` with the 2D layer's
      spatial kernel, stride, padding (and dilation, ceil_mode, count_include_pad); in
      time ``time_size``, ``time_stride``, ``time_padding``. A ``divisor_override`` ``D``
      becomes ``D * time_size``, so a constant video still gives the 2D result.
    * ``AdaptiveAvgPool2d((h, w))`` / ``AdaptiveMaxPool2d`` -> the 3D one with output
      ``(1, h, w)``: pooled over all of time (``time_size`` and the rest are ignored).
    """
    if not isinstance(pool2d, (nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d,
                               nn.AdaptiveMaxPool2d)):
        raise TypeError("pool2d must be a torch.nn.MaxPool2d, AvgPool2d, AdaptiveAvgPool2d or "
                        f"AdaptiveMaxPool2d, got {describe(pool2d)}")
    t, s, p, mode = _time_args(time_size, time_stride, time_padding, time_padding_mode)
    if isinstance(pool2d, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        out = pool2d.output_size
        out = (out, out) if not isinstance(out, (tuple, list)) else tuple(out)
        if isinstance(pool2d, nn.AdaptiveAvgPool2d):
            return nn.AdaptiveAvgPool3d((1, *out))
        return nn.AdaptiveMaxPool3d((1, *out), return_indices=pool2d.return_indices)
    if mode == "zeros" and p > t // 2:
        raise ValueError(f"time_padding must be at most time_size // 2 = {t // 2} for "
                         f"pooling (as torch requires), got {p}")

    def pair(v: object) -> tuple:
        return tuple(v) if isinstance(v, (tuple, list)) else (v, v)

    kernel = (t, *pair(pool2d.kernel_size))
    stride = (s, *pair(pool2d.stride if pool2d.stride is not None else pool2d.kernel_size))
    time_pad = p if mode == "zeros" else 0
    padding = (time_pad, *pair(pool2d.padding))
    extra = {} if mode == "zeros" else {"time_pad": p}
    if isinstance(pool2d, nn.MaxPool2d):
        cls = nn.MaxPool3d if mode == "zeros" else ReplicateTimeMaxPool3d
        return cls(kernel, stride, padding, dilation=(1, *pair(pool2d.dilation)),
                   return_indices=pool2d.return_indices, ceil_mode=pool2d.ceil_mode, **extra)
    divisor = pool2d.divisor_override
    cls = nn.AvgPool3d if mode == "zeros" else ReplicateTimeAvgPool3d
    return cls(kernel, stride, padding, ceil_mode=pool2d.ceil_mode,
               count_include_pad=pool2d.count_include_pad,
               divisor_override=None if divisor is None else divisor * t, **extra)


def inflate_batchnorm(bn2d: nn.Module) -> nn.Module:
    """``BatchNorm2d -> BatchNorm3d`` (``InstanceNorm2d -> InstanceNorm3d``), same state.

    Weight, bias, running mean / variance, eps and momentum are copied. A constant video's
    statistics over ``(N, T, H, W)`` equal the image's over ``(N, H, W)``.
    """
    if isinstance(bn2d, nn.BatchNorm2d):
        cls = nn.BatchNorm3d
    elif isinstance(bn2d, nn.InstanceNorm2d):
        cls = nn.InstanceNorm3d
    else:
        raise TypeError(f"bn2d must be a torch.nn.BatchNorm2d or InstanceNorm2d, "
                        f"got {describe(bn2d)}")
    ref = next(iter(bn2d.state_dict().values()), None)
    factory = {} if ref is None else {"device": ref.device, "dtype": ref.dtype}
    bn3d = cls(bn2d.num_features, eps=bn2d.eps, momentum=bn2d.momentum, affine=bn2d.affine,
               track_running_stats=bn2d.track_running_stats, **factory)
    bn3d.load_state_dict(bn2d.state_dict())
    return bn3d.train(bn2d.training)


def _inflate_leaf(module: nn.Module, time_size: int, pool_time_size: int, same: bool,
                  mode: str) -> nn.Module | None:
    """The 3D replacement of one module, or None when it is not a 2D layer."""
    if isinstance(module, nn.Conv2d):
        return inflate_conv(module, time_size, time_padding=time_size // 2 if same else 0,
                            time_padding_mode=mode)
    if isinstance(module, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
        return inflate_pool(module, 1)
    if isinstance(module, (nn.MaxPool2d, nn.AvgPool2d)):
        return inflate_pool(module, pool_time_size,
                            time_padding=pool_time_size // 2 if same else 0,
                            time_padding_mode=mode)
    if isinstance(module, (nn.BatchNorm2d, nn.InstanceNorm2d)):
        return inflate_batchnorm(module)
    if isinstance(module, nn.Dropout2d):
        return nn.Dropout3d(module.p, module.inplace).train(module.training)
    if type(module).__name__.endswith("2d"):
        raise TypeError(f"inflate_network cannot inflate {type(module).__name__} (it knows "
                        "Conv2d, MaxPool2d, AvgPool2d, Adaptive{Avg,Max}Pool2d, BatchNorm2d, "
                        "InstanceNorm2d, Dropout2d)")
    return None


def _inflate_children(module: nn.Module, *args) -> None:
    for name, child in module.named_children():
        new = _inflate_leaf(child, *args)
        if new is None:
            _inflate_children(child, *args)
        else:
            setattr(module, name, new)


def inflate_network(module2d: nn.Module, time_size: int, *, pool_time_size: int | None = None,
                    time_padding: str = "valid", time_padding_mode: str = "zeros") -> nn.Module:
    """A 3D copy of a 2D network: every 2D layer inside replaced by its inflated version.

    Args:
        module2d: a network of modules (left unchanged; a deep copy is inflated).
        time_size: ``K_t`` of every convolution.
        pool_time_size: ``K_t`` of every max / average pooling (default ``time_size``);
            temporal strides are 1. Adaptive pools pool over all of time.
        time_padding: ``"valid"`` (no padding in time: the constant-video identity on
            every frame, each layer shortens the video by ``K_t - 1``) or ``"same"``
            (``K_t // 2`` frames on each side: the length is kept for odd ``K_t``).
        time_padding_mode: ``"zeros"`` (I3D) or ``"replicate"`` (end frames repeated).

    Returns:
        An ``nn.Module`` reading ``Tensor[N, C, T, H, W]``. Layers that are not 2D
        (``Linear``, ``ReLU``, ``Flatten``, ``GroupNorm``, containers, ``torch.cat`` on
        channels) work on 5D tensors unchanged; an unknown ``*2d`` module is an error.
    """
    if not isinstance(module2d, nn.Module):
        raise TypeError(f"module2d must be a torch.nn.Module, got {describe(module2d)}")
    t = positive_int(time_size, "time_size")
    tp = t if pool_time_size is None else positive_int(pool_time_size, "pool_time_size")
    if time_padding not in ("valid", "same"):
        raise ValueError(f"time_padding must be 'valid' or 'same', got {time_padding!r}")
    if time_padding_mode not in _MODES:
        raise ValueError(f"time_padding_mode must be 'zeros' or 'replicate', "
                         f"got {time_padding_mode!r}")
    args = (t, tp, time_padding == "same", time_padding_mode)
    root = _inflate_leaf(module2d, *args)
    if root is not None:
        return root
    module3d = copy.deepcopy(module2d)
    _inflate_children(module3d, *args)
    return module3d
