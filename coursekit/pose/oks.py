"""Object Keypoint Similarity (OKS): COCO's IoU for keypoints.

Lecture: *Human pose estimation* — a predicted pose is scored against a ground-truth
person by how close each predicted keypoint lands, relative to the person's size and to
how precisely humans can click that keypoint at all::

    OKS = sum_k exp(-d_k^2 / (2 s^2 kappa_k^2)) [v_k > 0]  /  sum_k [v_k > 0]

``d_k`` the distance between predicted and true keypoint k, ``s^2`` the person's area
(segment area in pixels), ``kappa_k = 2 sigma_k`` with ``sigma_k`` COCO's per-keypoint
constant (``COCO_SIGMAS``), and only labelled keypoints (``v_k > 0``) counted. Each term
is an unnormalised Gaussian in pixels: 1 on the spot, ``exp(-1/2) = 0.61`` at
``d = kappa_k * s``. OKS is in [0, 1] and plays the role IoU plays for boxes and masks:
COCO's keypoint AP counts a detection as a hit when its OKS >= 0.5, ..., 0.95.

A ground truth with **no** labelled keypoint (COCO has some; they are "ignore" in the
evaluation) gets pycocotools' fallback: each d_k is the distance from the predicted keypoint
to the region twice the size of the gt box around it (``[x - w, x + 2w] × [y - h, y + 2h]``
for the box ``(x, y, w, h)``; 0 inside it), averaged over all K. That needs the gt boxes:
pass ``gt_boxes``.

Same as pycocotools' ``COCOeval.computeOks`` (transposed: rows are ground truths);
tested in tests/pose/test_oks.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from coursekit.pose.coco_keypoints import COCO_SIGMAS, check_keypoints
from coursekit.validators import check_boxes, describe, require_dim, shape_str

__all__ = ["oks"]

EPS = 2.220446049250313e-16  # np.spacing(1): pycocotools adds it to the area
CHUNK_ELEMENTS = 2**22  # at most this many (gt, detection, keypoint) terms at once


def oks(gt_keypoints: Tensor, dt_keypoints: Tensor, area: Tensor,
        sigmas: Sequence[float] | Tensor = COCO_SIGMAS, *,
        gt_boxes: Tensor | None = None) -> Tensor:
    """OKS between every ground-truth person and every detected pose.

    Args:
        gt_keypoints: Tensor[G, K, 3] (x, y, v) ground truths; only ``v > 0`` keypoints count.
        dt_keypoints: Tensor[D, K, 3] (x, y, score or v) detections; the third column is
            ignored (COCO scores every predicted keypoint).
        area: Tensor[G] > 0, each ground truth's area in pixels (its segment area, COCO's
            ``area`` field, not the box's).
        sigmas: K positive floats (default ``COCO_SIGMAS``, K = 17).
        gt_boxes: Tensor[G, 4] (x1, y1, x2, y2) ground-truth boxes, keyword-only; needed
            only when some ground truth has no labelled keypoint (the box fallback above).
            The course's boxes are xyxy; COCO's json ``bbox`` ``(x, y, w, h)`` is
            ``(x, y, x + w, y + h)`` here.

    Returns:
        Tensor[G, D] of OKS in [0, 1], in the keypoints' (promoted) floating dtype, float32
        for integer keypoints; computed in at least float32. Same as
        ``COCOeval.computeOks(...).T`` (which is Tensor[D, G]) for the same detections.
        Memory is bounded: the detections are processed in chunks.
    """
    check_keypoints(gt_keypoints, "gt_keypoints")
    K = gt_keypoints.shape[1]
    check_keypoints(dt_keypoints, "dt_keypoints", num_keypoints=K)
    G, D = gt_keypoints.shape[0], dt_keypoints.shape[0]
    require_dim(area, "area", 1, "Tensor[G] (one area per ground truth)")
    if area.is_complex() or area.dtype == torch.bool:
        raise TypeError(f"area must be a real Tensor[G], got {describe(area)}")
    if area.shape[0] != G:
        raise ValueError(f"area must be Tensor[G] with G = {G} (one per gt_keypoints row), "
                         f"got {shape_str(area)}")
    if bool((area <= 0).any()) or bool(area.isnan().any()):
        raise ValueError(f"area must be > 0 (the ground truths' areas in pixels), "
                         f"got {area.tolist() if area.numel() <= 8 else describe(area)}")
    out_dtype = torch.promote_types(gt_keypoints.dtype, dt_keypoints.dtype)
    if not out_dtype.is_floating_point:
        out_dtype = torch.float32
    acc = torch.promote_types(out_dtype, torch.float32)
    device = gt_keypoints.device
    sig = _sigmas(sigmas, K, acc, device)
    labelled = gt_keypoints[..., 2] > 0  # (G, K)
    unlabelled = ~labelled.any(1)  # (G,) persons that need the box fallback
    if gt_boxes is not None:
        check_boxes(gt_boxes, "gt_boxes")
        if gt_boxes.shape[0] != G:
            raise ValueError(f"gt_boxes must be Tensor[G, 4] with G = {G}, "
                             f"got {shape_str(gt_boxes)}")
    elif bool(unlabelled.any()):
        i = int(unlabelled.nonzero()[0, 0])
        raise ValueError(f"gt_keypoints[{i}] has no labelled keypoint (all v = 0): COCO then "
                         f"measures the distance to its box; pass gt_boxes=Tensor[G, 4]")

    gt = gt_keypoints.to(acc)
    dt = dt_keypoints.to(acc)
    var = (sig * 2) ** 2  # (K,) kappa_k^2 = (2 sigma_k)^2
    denom = area.to(acc) + EPS  # (G,) s^2
    counted = unlabelled[:, None] | labelled  # (G, K): all K for the fallback, else labelled
    count = counted.sum(1).to(acc)  # (G,)
    if gt_boxes is not None:
        b = gt_boxes.to(acc)
        w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]  # (G,)
        x0, x1 = (b[:, 0] - w)[:, None, None], (b[:, 0] + w * 2)[:, None, None]  # (G, 1, 1)
        y0, y1 = (b[:, 1] - h)[:, None, None], (b[:, 1] + h * 2)[:, None, None]
    out = gt.new_zeros(G, D)
    step = max(1, CHUNK_ELEMENTS // max(1, G * K))
    for start in range(0, D, step):
        xd = dt[None, start:start + step, :, 0]  # (1, d, K)
        yd = dt[None, start:start + step, :, 1]
        dx = xd - gt[:, None, :, 0]  # (G, d, K)
        dy = yd - gt[:, None, :, 1]
        if gt_boxes is not None:  # distance to the doubled box where no keypoint is labelled
            fx = (x0 - xd).clamp(min=0) + (xd - x1).clamp(min=0)  # (G, d, K)
            fy = (y0 - yd).clamp(min=0) + (yd - y1).clamp(min=0)
            dx = torch.where(unlabelled[:, None, None], fx, dx)
            dy = torch.where(unlabelled[:, None, None], fy, dy)
        e = (dx**2 + dy**2) / var / denom[:, None, None] / 2  # (G, d, K) d^2 / (2 s^2 kappa^2)
        terms = torch.where(counted[:, None, :], torch.exp(-e), 0.0)  # (G, d, K)
        out[:, start:start + step] = terms.sum(2) / count[:, None]
    return out.to(out_dtype)


def _sigmas(sigmas: object, K: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """``sigmas`` as a Tensor[K] of positive floats."""
    if isinstance(sigmas, Tensor):
        if sigmas.is_complex() or sigmas.dtype == torch.bool:
            raise TypeError(f"sigmas must be real numbers, got {describe(sigmas)}")
        sig = sigmas.to(dtype=dtype, device=device)
    elif isinstance(sigmas, Sequence) and not isinstance(sigmas, str):
        try:
            sig = torch.tensor([float(s) for s in sigmas], dtype=dtype, device=device)
        except (TypeError, ValueError) as err:
            raise TypeError(f"sigmas must be a sequence of numbers, got {sigmas!r}") from err
    else:
        raise TypeError(f"sigmas must be a Tensor[K] or a sequence of K floats, "
                        f"got {describe(sigmas)}")
    if sig.dim() != 1 or sig.shape[0] != K:
        raise ValueError(f"sigmas must hold K = {K} values (one per keypoint), "
                         f"got {shape_str(sig) if isinstance(sigmas, Tensor) else len(sig)}")
    if not bool((sig > 0).all()):
        raise ValueError(f"sigmas must be > 0, got {sig.tolist()}")
    return sig
