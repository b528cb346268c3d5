"""Put images side by side: a tensor grid (like ``torchvision.utils.make_grid``) and a
matplotlib figure of titled panels.

Tested in tests/viz/test_grid.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from coursekit.validators import describe, positive_int, require_tensor
from coursekit.viz.colors import _check_real

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["image_grid", "show", "to_numpy_image"]


def _as_batch(images: Tensor | Sequence[Tensor], name: str = "images") -> Tensor:
    """Tensor[N, C, H, W] (C = 1 or 3) from a batch or a list of same-size Tensor[C, H, W]."""
    expected = "Tensor[N, C, H, W] or a non-empty list of Tensor[C, H, W]"
    if isinstance(images, Sequence) and not isinstance(images, str) and len(images) == 0:
        raise ValueError(f"{name} must be {expected}, got an empty {describe(images)}")
    if isinstance(images, Tensor):
        batch = images
    elif isinstance(images, Sequence) and all(isinstance(t, Tensor) for t in images):
        shapes = {tuple(t.shape) for t in images}
        if len(shapes) != 1 or len(next(iter(shapes))) != 3:
            raise ValueError(
                f"{name} must be a list of Tensor[C, H, W] of one size, got shapes {sorted(shapes)}"
            )
        batch = torch.stack(list(images))
    else:
        raise TypeError(f"{name} must be {expected}, got {describe(images)}")
    if batch.dim() != 4 or batch.shape[1] not in (1, 3) or batch.shape[0] == 0:
        raise ValueError(
            f"{name} must be Tensor[N, C, H, W] with N >= 1 and C in (1, 3), got {describe(batch)}"
        )
    if batch.is_complex():
        raise TypeError(f"{name} must hold real values (float or integer), got {describe(batch)}")
    return batch


def image_grid(
    images: Tensor | Sequence[Tensor],
    nrow: int = 8,
    padding: int = 2,
    pad_value: float = 1.0,
) -> Tensor:
    """Tile images into one Tensor[3, H', W'], ``nrow`` images per row (the last row may be short).

    With ``cols = min(nrow, N)`` and ``rows = ceil(N / cols)``:
    ``H' = rows (H + padding) + padding`` and ``W' = cols (W + padding) + padding``; image k
    sits at row ``k // cols``, column ``k % cols``; the rest is ``pad_value``. One-channel
    images are repeated to three. Same layout as ``torchvision.utils.make_grid(images, nrow,
    padding, normalize=False, pad_value=pad_value)``, including its special case: a single
    image comes back unpadded. Built with one reshape instead of a loop over images.
    """
    batch = _as_batch(images)  # (N, C, H, W)
    nrow = positive_int(nrow, "nrow")
    padding = positive_int(padding, "padding", minimum=0)
    pad_value = _check_real(pad_value, "pad_value")
    batch = batch.expand(-1, 3, -1, -1)  # (N, 3, H, W)
    N, C, H, W = batch.shape
    if N == 1:
        return batch[0].clone()
    cols = min(nrow, N)
    rows = math.ceil(N / cols)
    p = padding
    # each tile: padding on its top and left, then the image; missing tiles stay pad_value
    tiles = batch.new_full((rows * cols, C, H + p, W + p), pad_value)  # (rows*cols, C, H+p, W+p)
    tiles[:N, :, p:, p:] = batch
    grid = tiles.reshape(rows, cols, C, H + p, W + p)
    grid = grid.permute(2, 0, 3, 1, 4)  # (C, rows, H+p, cols, W+p)
    grid = grid.reshape(C, rows * (H + p), cols * (W + p))
    # one more strip of padding at the bottom and the right
    out = batch.new_full((C, grid.shape[1] + p, grid.shape[2] + p), pad_value)
    out[:, : grid.shape[1], : grid.shape[2]] = grid
    return out


def to_numpy_image(t: Tensor) -> np.ndarray:
    """Tensor[3, H, W], Tensor[1, H, W] or Tensor[H, W] in [0, 1] -> float32 ndarray[H, W, 3]
    for ``plt.imshow`` (detached, on the CPU, clipped to [0, 1]; grey repeated to RGB)."""
    require_tensor(t, "t", "a Tensor[3, H, W] or Tensor[H, W]")
    if t.is_complex():
        raise TypeError(f"t must hold real values, got {describe(t)}")
    if t.dim() == 2:
        t = t.unsqueeze(0)
    if t.dim() != 3 or t.shape[0] not in (1, 3):
        raise ValueError(
            f"t must be Tensor[3, H, W], Tensor[1, H, W] or Tensor[H, W], got {describe(t)}"
        )
    t = t.detach().to("cpu", torch.float32).expand(3, -1, -1).clamp(0, 1)
    return t.permute(1, 2, 0).contiguous().numpy()  # (H, W, 3)


def show(
    images: Tensor | Sequence[Tensor | np.ndarray],
    titles: Sequence[str] | None = None,
    ncols: int | None = None,
    scale: float = 2.0,
) -> Figure:
    """A matplotlib figure with one panel per image, axes off, optional titles.

    images: Tensor[N, 3, H, W], one Tensor[3, H, W] / Tensor[H, W], or a list of tensors
    (any size each) or ndarrays [H, W(, 3)]. ``ncols`` defaults to all in one row; each
    panel is ``scale`` inches wide. Returns the Figure (pyplot-managed, so ``plt.show()``
    and notebooks display it; close it with ``plt.close(fig)``).
    """
    import matplotlib.pyplot as plt  # only when drawing: keeps ``import coursekit.viz`` cheap

    if isinstance(images, Tensor):
        panels = list(images) if images.dim() == 4 else [images]
    elif isinstance(images, Sequence) and not isinstance(images, str):
        if not len(images):
            raise ValueError("images must be a Tensor or a non-empty list of images, "
                             "got an empty list")
        panels = list(images)
    else:
        raise TypeError(
            f"images must be a Tensor or a non-empty list of images, got {describe(images)}"
        )
    arrays = [to_numpy_image(p) if isinstance(p, Tensor) else np.asarray(p) for p in panels]
    n = len(arrays)
    if titles is not None:
        if isinstance(titles, str) or not isinstance(titles, Sequence):
            raise TypeError(f"titles must be None or a list of str, got {describe(titles)}")
        if len(titles) != n:
            raise ValueError(f"titles must have one entry per image ({n}), got {len(titles)}")
    ncols = n if ncols is None else positive_int(ncols, "ncols")
    scale = _check_real(scale, "scale")
    if not scale > 0:
        raise ValueError(f"scale must be positive, got {scale}")
    ncols = min(ncols, n)
    nrows = math.ceil(n / ncols)
    height, width = arrays[0].shape[:2]
    extra = 0.3 if titles is not None else 0.0  # room for a title line
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(scale * ncols, (scale * height / width + extra) * nrows),
        squeeze=False,
    )
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < n:
            ax.imshow(
                arrays[k], cmap="gray" if arrays[k].ndim == 2 else None, interpolation="nearest"
            )
            if titles is not None:
                ax.set_title(titles[k], fontsize=9)
    fig.tight_layout()
    return fig
