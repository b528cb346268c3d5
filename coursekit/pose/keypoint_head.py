"""The Mask R-CNN keypoint head: RoI features -> one 56 × 56 heatmap per keypoint.

Lecture: *Mask R-CNN: keypoint estimation* — one more head on the RoI features, which
predicts, for each of the K = 17 keypoints, a "mask" whose target is a **single pixel**:
the cell of a ``56 × 56`` grid over the box that holds the keypoint
(``keypoints_to_heatmap``). For every person RoI::

    Tensor[R, D, 14, 14] --num_convs 3×3 convs + ReLU--> [R, dim, 14, 14]        (convs)
        --transposed conv 4×4, stride 2--> [R, K, 28, 28]          (predictor.deconv)
        --bilinear 2× upsample--> [R, K, 56, 56] heatmap logits       (predictor)

The transposed conv is lesson 02's ``conv_transpose2d`` inside a module
(``ConvTranspose2d``: ``nn.ConvTranspose2d``'s parameters, our operation) and the
upsample is lesson 02's ``bilinear_upsample``.

The loss (``keypointrcnn_loss``) treats each keypoint as a classification over the
``56² = 3136`` cells: a softmax over the cells, cross-entropy against the keypoint's cell,
averaged over every **valid** (labelled, inside its RoI) keypoint of every RoI::

    L_kp = mean_{(r, k) valid} -log softmax(logits[r, k].flatten())[target[r, k]]

At test time ``heatmaps_to_keypoints`` decodes each map into a keypoint in image pixels
(its arg max, after a bicubic resize to the box). Same layout, loss and decoding as
torchvision's ``KeypointRCNNHeads`` + ``KeypointRCNNPredictor`` + ``keypointrcnn_loss``
(there: 8 convs of 512 channels); tested in tests/pose/test_keypoint_head.py.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit.instance.heads import RoIHead, head_convs
from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.pose.coco_keypoints import NUM_KEYPOINTS, check_keypoints
from coursekit.pose.heatmaps import heatmaps_to_keypoints, keypoints_to_heatmap
from coursekit.upsampling import bilinear_upsample, conv_transpose2d
from coursekit.validators import (
    check_boxes,
    describe,
    positive_int,
    require_dim,
    require_floating,
    shape_str,
)

__all__ = ["ConvTranspose2d", "KeypointHead", "KeypointPredictor", "keypointrcnn_loss"]


class ConvTranspose2d(nn.Module):
    """``nn.ConvTranspose2d`` (groups 1, dilation 1) computed by our ``conv_transpose2d``.

    Same parameters (``weight`` Tensor[C_in, C_out, k, k], ``bias`` Tensor[C_out]), state-dict
    keys, default initialisation and output as ``nn.ConvTranspose2d(in_channels,
    out_channels, kernel_size, stride, padding)``; tested against it in
    tests/pose/test_keypoint_head.py (forward and gradients).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int = 0, bias: bool = True) -> None:
        super().__init__()
        self.in_channels = positive_int(in_channels, "in_channels")
        self.out_channels = positive_int(out_channels, "out_channels")
        self.kernel_size = positive_int(kernel_size, "kernel_size")
        self.stride = positive_int(stride, "stride")
        self.padding = positive_int(padding, "padding", minimum=0)
        k = self.kernel_size
        self.weight = nn.Parameter(torch.empty(in_channels, out_channels, k, k))
        self.bias = nn.Parameter(torch.empty(out_channels)) if bias else None
        # nn.ConvTranspose2d's default: fan_in is computed from weight.size(1) * k * k
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))
        if self.bias is not None:
            bound = 1 / math.sqrt(out_channels * k * k)
            nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        """Tensor[N, C_in, H, W] -> Tensor[N, C_out, (H - 1) s - 2 p + k, (W - 1) s - 2 p + k]."""
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class KeypointPredictor(nn.Module):
    """Feature maps -> K heatmaps at 4× the resolution: a 2× transposed conv, then 2× bilinear.

    ``KeypointPredictor(in_channels, num_keypoints=17)``: ``deconv`` is a 4 × 4 stride-2
    transposed conv (padding 1: exactly 2× the size) to ``num_keypoints`` channels, then
    ``bilinear_upsample(scale_factor=2)``; torchvision's ``KeypointRCNNPredictor``.
    """

    def __init__(self, in_channels: int, num_keypoints: int = NUM_KEYPOINTS) -> None:
        super().__init__()
        positive_int(in_channels, "in_channels")
        self.num_keypoints = positive_int(num_keypoints, "num_keypoints")
        self.deconv = ConvTranspose2d(in_channels, num_keypoints, 4, stride=2, padding=1)
        nn.init.kaiming_normal_(self.deconv.weight, mode="fan_out", nonlinearity="relu")
        nn.init.zeros_(self.deconv.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Tensor[R, in_channels, S, S] -> heatmap logits Tensor[R, K, 4S, 4S]."""
        x = self.deconv(x)  # (R, K, 2S, 2S)
        return bilinear_upsample(x, scale_factor=2)  # (R, K, 4S, 4S)


class KeypointHead(RoIHead):
    """K × 56 × 56: one heatmap per keypoint, a ``coursekit.instance`` extra head.

    ``KeypointHead(roi_pool, in_channels, num_keypoints=17, dim=64, num_convs=4,
    labels=None, loss_weight=1.0)``. ``roi_pool`` crops ``S × S`` RoI features (``S = 14``
    gives 56 × 56 maps); ``labels``: the class indices that have keypoints (the person's),
    ``None`` for every class. Plug it in with
    ``build_mask_rcnn(extra_heads={"keypoints": head})``: it then trains on the positive
    proposals of those classes against the matched ground truth's ``"keypoints"``
    (Tensor[G, K, 3] per image in the targets, one row per box) and adds ``"keypoints"``
    Tensor[D, K, 3] (x, y, 1) in image pixels and ``"keypoints_scores"`` Tensor[D, K] (the
    heatmap's value at the arg max) to each detection.

    Submodules (torchvision's names in brackets): ``convs`` (``keypoint_head``), ``predictor``
    (``keypoint_predictor``); ``roi_pool`` (``keypoint_roi_pool``).
    """

    target_keys = ("keypoints",)

    def __init__(self, roi_pool: MultiScaleRoIAlign, in_channels: int,
                 num_keypoints: int = NUM_KEYPOINTS, dim: int = 64, num_convs: int = 4,
                 labels: Sequence[int] | None = None, loss_weight: float = 1.0) -> None:
        super().__init__(roi_pool, labels)
        self.in_channels = positive_int(in_channels, "in_channels")
        self.num_keypoints = positive_int(num_keypoints, "num_keypoints")
        positive_int(dim, "dim")
        positive_int(num_convs, "num_convs", minimum=0)
        if isinstance(loss_weight, bool) or not isinstance(loss_weight, (int, float)):
            raise TypeError(f"loss_weight must be a float, got {describe(loss_weight)}")
        if not loss_weight > 0:
            raise ValueError(f"loss_weight must be > 0, got {loss_weight!r}")
        self.loss_weight = float(loss_weight)
        self.convs = head_convs(in_channels, dim, num_convs)
        self.predictor = KeypointPredictor(dim if num_convs else in_channels, num_keypoints)

    def forward(self, x: Tensor) -> Tensor:
        """RoI features Tensor[R, in_channels, S, S] -> heatmap logits Tensor[R, K, 4S, 4S]."""
        expected = f"Tensor[R, {self.in_channels}, S, S] (RoI features)"
        require_dim(x, "x", 4, expected)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must be {expected}, got {shape_str(x)}")
        x = self.convs(x)  # (R, dim, S, S)
        return self.predictor(x)  # (R, K, 4S, 4S)

    def loss(self, outputs: Tensor, proposals: list[Tensor],
             targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """``{"loss_keypoint": loss_weight * keypointrcnn_loss(...)}`` on the matched keypoints."""
        gt = [t["keypoints"] for t in targets]
        matched = [torch.arange(len(p), device=outputs.device) for p in proposals]
        return {"loss_keypoint": self.loss_weight * keypointrcnn_loss(outputs, proposals, gt,
                                                                      matched)}

    def predict(self, outputs: Tensor, boxes: list[Tensor],
                labels: list[Tensor]) -> dict[str, Tensor]:
        """``{"keypoints": Tensor[D, K, 3], "keypoints_scores": Tensor[D, K]}`` (decoded maps)."""
        rois = torch.cat(boxes) if boxes else outputs.new_zeros(0, 4)
        keypoints, scores = heatmaps_to_keypoints(outputs, rois)  # (D, K, 3), (D, K)
        return {"keypoints": keypoints, "keypoints_scores": scores}


def keypointrcnn_loss(keypoint_logits: Tensor, proposals: list[Tensor],
                      gt_keypoints: list[Tensor], keypoint_matched_idxs: list[Tensor]) -> Tensor:
    """Cross-entropy over the ``H × W`` cells of each valid keypoint's heatmap (module docstring).

    Args:
        keypoint_logits: Tensor[N, K, H, H] (square maps), the RoIs of all images in order.
        proposals: per image Tensor[R_i, 4] xyxy, the RoIs (``sum R_i = N``).
        gt_keypoints: per image Tensor[G_i, K, 3] (x, y, v), ground-truth keypoints.
        keypoint_matched_idxs: per image int64 Tensor[R_i], the ground truth each RoI is
            matched to (a row of ``gt_keypoints[i]``).

    Returns:
        The mean cross-entropy over valid keypoints (``keypoints_to_heatmap``: labelled and
        inside the RoI), a scalar; ``0 * sum(logits)`` (still connected to the graph) when
        there is none. Same as torchvision's ``keypointrcnn_loss``; the softmax runs in at
        least float32 (as ``F.cross_entropy`` on a reduced-precision input does on the CPU).
    """
    require_floating(keypoint_logits, "keypoint_logits", "a floating-point Tensor[N, K, H, H]")
    require_dim(keypoint_logits, "keypoint_logits", 4, "Tensor[N, K, H, H]")
    N, K, H, W = keypoint_logits.shape
    if H != W or H == 0:
        raise ValueError(f"keypoint_logits must be Tensor[N, K, H, H] (square heatmaps), "
                         f"got {shape_str(keypoint_logits)}")
    for name, value in (("proposals", proposals), ("gt_keypoints", gt_keypoints),
                        ("keypoint_matched_idxs", keypoint_matched_idxs)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list with one Tensor per image, "
                            f"got {describe(value)}")
    if not len(proposals) == len(gt_keypoints) == len(keypoint_matched_idxs):
        raise ValueError(f"proposals, gt_keypoints and keypoint_matched_idxs need one entry per "
                         f"image, got {len(proposals)}, {len(gt_keypoints)} and "
                         f"{len(keypoint_matched_idxs)}")
    for i, rois in enumerate(proposals):
        check_boxes(rois, f"proposals[{i}]", floating=True)
    if sum(len(p) for p in proposals) != N:
        raise ValueError(f"proposals must hold N = {N} boxes in all (one per row of "
                         f"keypoint_logits), got {[describe(p) for p in proposals]}")
    heatmaps, valid = [], []
    for i, (rois, gt, idx) in enumerate(zip(proposals, gt_keypoints, keypoint_matched_idxs,
                                            strict=True)):
        require_dim(idx, f"keypoint_matched_idxs[{i}]", 1, f"int64 Tensor[{len(rois)}]")
        if idx.shape[0] != rois.shape[0]:
            raise ValueError(f"keypoint_matched_idxs[{i}] must have one index per proposal "
                             f"({rois.shape[0]}), got {shape_str(idx)}")
        if len(rois) == 0:
            continue
        kp = check_keypoints(gt, f"gt_keypoints[{i}]", num_keypoints=K)[idx]  # (R_i, K, 3)
        targets, ok = keypoints_to_heatmap(kp, rois, H)  # (R_i, K) each
        heatmaps.append(targets.reshape(-1))
        valid.append(ok.reshape(-1))
    if not heatmaps:
        return keypoint_logits.sum() * 0
    keypoint_targets = torch.cat(heatmaps)  # (N K,)
    rows = torch.where(torch.cat(valid) > 0)[0]
    if len(rows) == 0:
        return keypoint_logits.sum() * 0
    logits = keypoint_logits.reshape(N * K, H * W)[rows]  # (V, H W)
    acc = torch.promote_types(logits.dtype, torch.float32)
    loss = F.cross_entropy(logits.to(acc), keypoint_targets[rows])
    return loss.to(keypoint_logits.dtype)
