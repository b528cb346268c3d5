"""Add more heads: the one interface every extra per-RoI head of Mask R-CNN implements.

Lecture: *Add more heads!* — Mask R-CNN is Faster R-CNN plus one more head on the RoI
features; keypoints (lesson 07), DensePose (08), captions and meshes (09) are each one
more head of the same kind. The trunk (backbone, RPN, box head) is shared; a head only

1. crops its own RoI features with RoI Align (``roi_pool``, e.g. ``14 × 14``),
2. in training, gets the **positive** proposals of the classes it handles (``labels``) with
   the rows of the ground truth they are matched to, and returns its losses;
3. in inference, gets the **detections** of those classes and returns one output row per
   detection, in image coordinates.

So ``coursekit.instance`` never imports a head's package: a head is plugged in from outside,
``build_mask_rcnn(extra_heads={"keypoints": KeypointHead(...)})`` (or
``RoIHeads(..., extra_heads=...)``), the way ``coursekit.pose`` does. ``RoIHeads`` does the
selection and bookkeeping (tested in tests/instance/test_heads.py); a subclass writes
``forward``, ``loss`` and ``predict``::

    class MyHead(RoIHead):
        target_keys = ("keypoints",)          # keys of a target dict it trains on
        def forward(self, x):                 # Tensor[R, C, S, S] -> raw outputs
        def loss(self, outputs, proposals, targets):        # -> {"loss_my": scalar}
        def predict(self, outputs, boxes, labels):          # -> {"my_key": Tensor[D, ...]}
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.validators import describe, require_integer

__all__ = ["RESERVED_KEYS", "RoIHead", "head_convs"]

# detection keys the trunk itself returns; a head's outputs must use other names
RESERVED_KEYS = ("boxes", "labels", "scores", "masks")


def head_convs(in_channels: int, dim: int, num_convs: int) -> nn.Sequential:
    """The body most heads share: ``num_convs`` × (3×3 conv to ``dim`` channels, ReLU), the
    convolutions He-initialised (``fan_out``, as Detectron2's heads) with zero biases."""
    for name, value, low in (("in_channels", in_channels, 1), ("dim", dim, 1),
                             ("num_convs", num_convs, 0)):
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an int >= {low}, got {value!r}")
    layers: list[nn.Module] = []
    for i in range(num_convs):
        layers += [nn.Conv2d(in_channels if i == 0 else dim, dim, 3, padding=1),
                   nn.ReLU(inplace=True)]
    convs = nn.Sequential(*layers)
    for module in convs:
        if isinstance(module, nn.Conv2d):
            nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            nn.init.zeros_(module.bias)
    return convs


class RoIHead(nn.Module):
    """Base class of an extra per-RoI head (module docstring).

    Args:
        roi_pool: the RoI Align that crops this head's features from the feature pyramid
            (``MultiScaleRoIAlign``); ``RoIHeads`` calls it, the head gets its output.
        labels: the class indices (``1..C-1``, torchvision's training labels) the head runs
            on, e.g. the person class for keypoints; ``None``: every foreground class.

    Class attribute ``target_keys``: the keys of a training target dict the head needs;
    ``RoIHeads`` passes those rows of each image's target dict that the head's RoIs are
    matched to (a key must hold one row per ground-truth instance).
    """

    target_keys: tuple[str, ...] = ()

    def __init__(self, roi_pool: MultiScaleRoIAlign, labels: Sequence[int] | None = None) -> None:
        super().__init__()
        if not isinstance(roi_pool, nn.Module):
            raise TypeError(f"roi_pool must be a MultiScaleRoIAlign (an nn.Module), "
                            f"got {describe(roi_pool)}")
        if labels is not None:
            if isinstance(labels, (str, bytes)) or not isinstance(labels, Sequence) or not all(
                    isinstance(c, int) and not isinstance(c, bool) for c in labels):
                raise TypeError(f"labels must be a sequence of class indices (ints) or None, "
                                f"got {labels!r}")
            if not labels or any(c < 1 for c in labels):
                raise ValueError(f"labels must be foreground class indices >= 1 (0 is the "
                                 f"background), got {list(labels)!r}")
        self.roi_pool = roi_pool
        self.labels = None if labels is None else tuple(int(c) for c in labels)

    def applies_to(self, labels: Tensor) -> Tensor:
        """bool Tensor[R]: which RoIs of class indices ``labels`` int64 Tensor[R] this head takes.

        Never the background (0) nor an ignored proposal (-1).
        """
        require_integer(labels, "labels", "an int64 Tensor[R] of class indices")
        keep = labels > 0
        if self.labels is not None:
            wanted = torch.tensor(self.labels, dtype=labels.dtype, device=labels.device)
            keep &= torch.isin(labels, wanted)
        return keep

    def forward(self, x: Tensor):
        """RoI features Tensor[R, C, S, S] -> the head's raw outputs (e.g. logits)."""
        raise NotImplementedError

    def loss(self, outputs, proposals: list[Tensor],
             targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """Training losses (names starting with ``loss_``), scalars.

        Args:
            outputs: ``forward`` of the RoI features of the positive proposals of all images,
                concatenated in image order.
            proposals: per image, Tensor[R_i, 4] xyxy: those proposals.
            targets: per image, ``{key: Tensor[R_i, ...]}`` for each of ``target_keys``: row
                ``r`` is the ground truth proposal ``r`` is matched to.
        """
        raise NotImplementedError

    def predict(self, outputs, boxes: list[Tensor], labels: list[Tensor]) -> dict[str, Tensor]:
        """Inference outputs, one row per detection: ``{key: Tensor[sum D_i, ...]}``.

        ``boxes``, ``labels``: per image, the detections this head runs on (Tensor[D_i, 4]
        xyxy in pixels, int64 Tensor[D_i] class indices); ``outputs`` are ``forward`` of
        their RoI features, concatenated. Keys must not be ``RESERVED_KEYS``. ``RoIHeads``
        gives the detections the head does not run on rows of zeros.
        """
        raise NotImplementedError
