"""Sliding window vs fully convolutional: the same classifier, two ways to run it.

The lecture's first idea for segmentation: cut a patch centred at every pixel
and classify its centre. ``PatchClassifier`` is such a classifier: a few 3x3
convolutions *without padding* and a 1x1 convolution to class scores, so a
P x P patch (P = its receptive field, 1 + 2L) shrinks to a single 1x1 output.

* ``sliding_window_segment``: the literal way, one patch per pixel (H*W
  forward passes, overlapping patches recompute the same features).
* ``fcn_segment``: the *same weights* run once over the whole padded image;
  a convolution already slides, so the output map is identical (test:
  tests/segmentation/test_sliding_window.py) and far faster
  (``time_sliding_vs_fcn``, reported by ``coursekit bench segmentation``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit.segmentation.receptive_field import receptive_field
from coursekit.validators import describe, positive_int, require_tensor

__all__ = ["PatchClassifier", "fcn_segment", "sliding_window_segment", "time_sliding_vs_fcn"]

PADDING_MODES = ("reflect", "zeros", "replicate")


class PatchClassifier(nn.Module):
    """Classify the centre pixel of a P x P patch, P = 1 + 2 * num_layers.

    ``num_layers`` 3x3 convolutions (no padding, ReLU) then a 1x1 convolution to
    ``num_classes``. Input Tensor[N, in_channels, H, W] ->
    Tensor[N, num_classes, H - P + 1, W - P + 1]; on a P x P patch the output is 1 x 1.
    """

    def __init__(
        self, *, num_classes: int = 8, in_channels: int = 3, width: int = 16, num_layers: int = 10
    ) -> None:
        super().__init__()
        num_classes = positive_int(num_classes, "num_classes")
        in_channels = positive_int(in_channels, "in_channels")
        width = positive_int(width, "width")
        num_layers = positive_int(num_layers, "num_layers")
        layers: list[nn.Module] = []
        channels = in_channels
        for _ in range(num_layers):
            layers += [nn.Conv2d(channels, width, 3), nn.ReLU()]
            channels = width
        layers.append(nn.Conv2d(channels, num_classes, 1))
        self.net = nn.Sequential(*layers)
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.patch_size = receptive_field(num_layers, 3)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)  # (N, num_classes, H - P + 1, W - P + 1)


def _check(model: nn.Module, image: Tensor, padding_mode: str) -> tuple[Tensor, bool, int]:
    """Validate; return (image as [N, C, H, W], whether a batch dim was added, patch size P)."""
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be an nn.Module (e.g. PatchClassifier), got {describe(model)}")
    patch = getattr(model, "patch_size", None)
    if isinstance(patch, bool) or not isinstance(patch, int):
        raise TypeError(f"model.patch_size must be an odd int (the classifier's receptive field), "
                        f"got {patch!r}")
    if patch < 1 or patch % 2 == 0:
        raise ValueError(f"model.patch_size must be an odd int (the classifier's receptive field), "
                         f"got {patch!r}")
    expected = "a float Tensor[C, H, W] or Tensor[N, C, H, W]"
    require_tensor(image, "image", expected)
    if image.dim() not in (3, 4):
        raise ValueError(f"image must be {expected}, got {describe(image)}")
    if not image.is_floating_point():
        raise TypeError(f"image must be {expected} (float16, bfloat16, float32 or float64), "
                        f"got {describe(image)}")
    if not isinstance(padding_mode, str):
        raise TypeError(f"padding_mode must be a str ('reflect', 'zeros' or 'replicate'), "
                        f"got {describe(padding_mode)}")
    if padding_mode not in PADDING_MODES:
        raise ValueError(f"padding_mode must be 'reflect', 'zeros' or 'replicate', "
                         f"got {padding_mode!r}")
    if min(image.shape[-2:]) < 1:
        raise ValueError(f"image must have H, W >= 1 (one score per pixel), got {describe(image)}")
    single = image.dim() == 3
    image = image.unsqueeze(0) if single else image
    if padding_mode == "reflect" and min(image.shape[-2:]) <= patch // 2:
        raise ValueError(f"reflect padding needs H, W > {patch // 2} (half the patch), "
                         f"got {tuple(image.shape[-2:])}")
    return image, single, patch


def _pad(image: Tensor, half: int, padding_mode: str) -> Tensor:
    mode = "constant" if padding_mode == "zeros" else padding_mode
    return F.pad(image, (half, half, half, half), mode=mode)  # (N, C, H + P - 1, W + P - 1)


@torch.no_grad()
def sliding_window_segment(
    model: nn.Module, image: Tensor, batch_size: int = 1024, padding_mode: str = "reflect"
) -> Tensor:
    """Class scores per pixel by classifying one P x P patch per pixel: the slow, literal way.

    ``image`` Tensor[C, H, W] or Tensor[N, C, H, W] -> scores Tensor[(N,) K, H, W].
    The image is padded by P // 2 (``padding_mode``), ``F.unfold`` cuts the patches
    (each centred at its pixel) a strip of rows at a time, and the model classifies them
    ``batch_size`` at a time, so memory holds about ``max(batch_size, W)`` patches, not
    all N*H*W. Identical to ``fcn_segment`` (tested).
    """
    image, single, patch = _check(model, image, padding_mode)
    batch_size = positive_int(batch_size, "batch_size")
    n, c, h, w = image.shape
    padded = _pad(image, patch // 2, padding_mode)  # (N, C, H + P - 1, W + P - 1)
    rows = max(1, batch_size // w)  # output rows per strip (_check: W >= 1)
    scores = []
    for i in range(n):
        for top in range(0, h, rows):
            bottom = min(h, top + rows)
            strip = padded[i : i + 1, :, top : bottom + patch - 1]  # (1, C, r + P - 1, W + P - 1)
            patches = F.unfold(strip, patch)[0]  # (C*P*P, r*W), row-major pixels
            patches = patches.t().reshape(-1, c, patch, patch)  # (r*W, C, P, P)
            for j in range(0, len(patches), batch_size):
                scores.append(model(patches[j : j + batch_size]).flatten(1))  # (b, K)
    if not scores:  # an empty batch: the model on no patches still says K
        scores.append(model(padded.new_zeros(0, c, patch, patch)).flatten(1))  # (0, K)
    k = scores[0].shape[1]
    out = torch.cat(scores).reshape(n, h, w, k).permute(0, 3, 1, 2)  # (N, K, H, W)
    return out[0] if single else out


@torch.no_grad()
def fcn_segment(model: nn.Module, image: Tensor, padding_mode: str = "reflect") -> Tensor:
    """The same classifier run once, fully convolutionally, over the padded image.

    ``image`` Tensor[C, H, W] or Tensor[N, C, H, W] -> scores Tensor[(N,) K, H, W];
    equal to ``sliding_window_segment`` (tests/segmentation/test_sliding_window.py).
    """
    image, single, patch = _check(model, image, padding_mode)
    out = model(_pad(image, patch // 2, padding_mode))  # (N, K, H, W)
    return out[0] if single else out


def _median_time(fn, repeat: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def time_sliding_vs_fcn(
    sizes: Sequence[int] = (32, 64, 128),
    model: nn.Module | None = None,
    *,
    repeat: int = 3,
    threads: int | None = 2,
) -> list[dict[str, float]]:
    """Time both ways on a random image of each size; one row per size.

    Each row: ``{"size", "sliding_s", "fcn_s", "speedup", "max_abs_diff"}`` (median
    of ``repeat`` runs; ``threads`` sets ``torch.set_num_threads`` for the
    measurement and restores it after; ``None`` leaves it). The default model is
    ``PatchClassifier()`` with seed-0 random weights (timing does not need training).
    """
    if not isinstance(sizes, Sequence) or isinstance(sizes, str) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in sizes
    ):
        raise TypeError(f"sizes must be a non-empty sequence of ints > 8, got {sizes!r}")
    if not sizes or not all(s > 8 for s in sizes):
        raise ValueError(f"sizes must be a non-empty sequence of ints > 8, got {sizes!r}")
    repeat = positive_int(repeat, "repeat")
    if threads is not None:
        threads = positive_int(threads, "threads")
    if model is None:
        generator_state = torch.random.get_rng_state()
        torch.manual_seed(0)
        model = PatchClassifier().eval()
        torch.random.set_rng_state(generator_state)
    old_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    rows = []
    try:
        for size in sizes:
            image = torch.rand(3, size, size, generator=torch.Generator().manual_seed(size))
            slow = sliding_window_segment(model, image)
            fast = fcn_segment(model, image)
            sliding_s = _median_time(
                lambda image=image: sliding_window_segment(model, image), repeat
            )
            fcn_s = _median_time(lambda image=image: fcn_segment(model, image), max(repeat, 5))
            rows.append({"size": size, "sliding_s": sliding_s, "fcn_s": fcn_s,
                         "speedup": sliding_s / fcn_s,
                         "max_abs_diff": (slow - fast).abs().max().item()})
    finally:
        torch.set_num_threads(old_threads)
    return rows
