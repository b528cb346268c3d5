"""Automatic mask generation: prompt SAM with a grid of points, keep the good masks.

Lecture: *Segment Anything: dataset* — in the last stage of the data engine SAM labelled
11 million images by itself: a regular grid of foreground points (32 × 32) is fed as
prompts, each point gives three masks, and only confident, stable, non-duplicate
masks are kept::

    points   build_point_grid(n): cell centres of an n × n grid, batched
    masks    SamPredictor.predict_batch (encoder once, decoder per batch)
    filter   predicted IoU > pred_iou_thresh
             stability_score >= stability_score_thresh: the IoU of the masks obtained
             by thresholding the logits at +offset and at −offset (a stable mask
             barely changes)
    dedupe   box NMS (our coursekit.detection.nms) on the masks' boxes, scored by IoU
    clean    optional: fill small holes, drop small islands (connected components)

Same algorithm and numbers as segment-anything's ``SamAutomaticMaskGenerator`` with
one crop (``crop_n_layers=0``); ``build_point_grid`` and ``stability_score`` equal its
``utils.amg`` functions. Tested in tests/sam/test_automatic.py.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from coursekit.detection import nms
from coursekit.sam.predictor import SamPredictor
from coursekit.sam.sam import Sam
from coursekit.validators import (
    describe,
    positive_int,
    require_bool,
    require_dim,
    require_floating,
    shape_str,
)


def build_point_grid(n_per_side: int, *, dtype: torch.dtype = torch.float64,
                     device: torch.device | str | None = None) -> Tensor:
    """The centres of an n × n grid of equal cells of [0, 1]²: Tensor[n², 2] of (x, y).

    One side: ``1/(2n), 3/(2n), ..., 1 − 1/(2n)``; x varies fastest (row-major). Computed
    as ``numpy.linspace`` does (``start + i · step``, the last point set to ``1 − 1/(2n)``),
    so it equals segment-anything's ``build_point_grid`` bit for bit in float64.
    """
    n = positive_int(n_per_side, "n_per_side")
    offset = 1 / (2 * n)
    step = ((1 - offset) - offset) / max(n - 1, 1)  # numpy: (stop - start) / (num - 1)
    side = torch.arange(n, dtype=torch.float64) * step + offset
    if n > 1:
        side[-1] = 1 - offset  # (n,)
    xs, ys = side[None, :].expand(n, n), side[:, None].expand(n, n)  # (n, n) each
    return torch.stack([xs, ys], dim=-1).reshape(-1, 2).to(dtype=dtype, device=device)


def stability_score(mask_logits: Tensor, mask_threshold: float,
                    threshold_offset: float) -> Tensor:
    """IoU of the masks thresholded at ``t + offset`` and at ``t − offset``: Tensor[...].

    ``#(logits > t + offset) / #(logits > t − offset)`` over the last two axes (the first
    mask lies inside the second, so the intersection is the first and the union the
    second). Tensor[..., H, W] floating -> Tensor[...] of torch's default dtype (float32),
    NaN where the union is empty, as segment-anything's ``calculate_stability_score``
    (whose counts are int16 per row; here int64). Not differentiable (counts).
    """
    require_floating(mask_logits, "mask_logits", "a floating-point Tensor[..., H, W]")
    if mask_logits.dim() < 2:
        raise ValueError(f"mask_logits must be Tensor[..., H, W], got {shape_str(mask_logits)}")
    t, off = _real(mask_threshold, "mask_threshold"), _real(threshold_offset, "threshold_offset")
    intersections = (mask_logits > t + off).sum(dim=(-2, -1))  # (...,) int64
    unions = (mask_logits > t - off).sum(dim=(-2, -1))  # (...,)
    return intersections / unions


def mask_to_box(masks: Tensor) -> Tensor:
    """The box around each mask: bool Tensor[..., H, W] -> int64 Tensor[..., 4].

    ``(x_min, y_min, x_max, y_max)`` with the max *inclusive* (the last pixel's index,
    not one past it); an empty mask gives ``(0, 0, 0, 0)``. Same as segment-anything's
    ``batched_mask_to_box``.
    """
    require_bool(masks, "masks", "a bool Tensor[..., H, W]")
    if masks.dim() < 2:
        raise ValueError(f"masks must be Tensor[..., H, W], got {shape_str(masks)}")
    H, W = masks.shape[-2:]
    if masks.numel() == 0:
        return torch.zeros(*masks.shape[:-2], 4, dtype=torch.long, device=masks.device)
    rows, cols = masks.any(dim=-1), masks.any(dim=-2)  # (..., H), (..., W)
    ys = torch.arange(H, device=masks.device)
    xs = torch.arange(W, device=masks.device)
    y_max = torch.where(rows, ys, -1).amax(dim=-1)  # (...,)
    y_min = torch.where(rows, ys, H).amin(dim=-1)
    x_max = torch.where(cols, xs, -1).amax(dim=-1)
    x_min = torch.where(cols, xs, W).amin(dim=-1)
    box = torch.stack([x_min, y_min, x_max, y_max], dim=-1)  # (..., 4)
    return torch.where(rows.any(dim=-1, keepdim=True), box, 0)


def remove_small_regions(mask: Tensor, area_thresh: float, mode: str) -> tuple[Tensor, bool]:
    """Fill small holes or remove small islands of a mask: (new mask, whether it changed).

    Connected components use 8-connectivity (``scipy.ndimage.label``). ``mode="holes"``:
    components of the background smaller than ``area_thresh`` pixels are filled;
    ``mode="islands"``: components of the mask smaller than it are removed (if all are,
    the largest is kept). bool Tensor[H, W] -> bool Tensor[H, W] on the same device.
    Same rule as segment-anything's ``utils.amg.remove_small_regions`` (which uses OpenCV).
    """
    require_bool(mask, "mask", "a bool Tensor[H, W]")
    require_dim(mask, "mask", 2, "a bool Tensor[H, W]")
    area = _real(area_thresh, "area_thresh")
    if mode not in ("holes", "islands"):
        raise ValueError(f"mode must be 'holes' or 'islands', got {mode!r}")
    holes = mode == "holes"
    working = mask.cpu().numpy() ^ holes  # the background's components if holes
    regions, n = ndimage.label(working, structure=np.ones((3, 3), dtype=bool))  # 0 = not working
    sizes = np.bincount(regions.ravel(), minlength=n + 1)[1:]  # (n,) size of component 1..n
    small = sizes < area
    if not small.any():
        return mask, False
    if holes:  # the mask (label 0 of the working image) plus the small background parts
        keep = np.concatenate([[True], small])
    else:  # the large islands; if none, the largest
        keep = np.concatenate([[False], ~small])
        if not keep.any():
            keep[int(np.argmax(sizes)) + 1] = True
    return torch.from_numpy(keep[regions]).to(mask.device), True


class AutomaticMaskGenerator:
    """Segment everything: ``generate(image)`` -> a list of mask records (see ``generate``).

    Arguments as segment-anything's ``SamAutomaticMaskGenerator`` (one crop layer):
    ``points_per_side`` n (n² points), ``points_per_batch`` prompts per decoder call,
    ``pred_iou_thresh`` and ``stability_score_thresh`` (a filter is off at 0),
    ``stability_score_offset``, ``box_nms_thresh``, ``min_mask_region_area`` (0: no
    clean-up).
    """

    def __init__(self, model: Sam, *, points_per_side: int = 16, points_per_batch: int = 64,
                 pred_iou_thresh: float = 0.88, stability_score_thresh: float = 0.95,
                 stability_score_offset: float = 1.0, box_nms_thresh: float = 0.7,
                 min_mask_region_area: int = 0) -> None:
        self.predictor = SamPredictor(model)
        self.points_per_side = positive_int(points_per_side, "points_per_side")
        self.points_per_batch = positive_int(points_per_batch, "points_per_batch")
        self.pred_iou_thresh = _real(pred_iou_thresh, "pred_iou_thresh")
        self.stability_score_thresh = _real(stability_score_thresh, "stability_score_thresh")
        self.stability_score_offset = _real(stability_score_offset, "stability_score_offset")
        self.box_nms_thresh = _real(box_nms_thresh, "box_nms_thresh")
        self.min_mask_region_area = positive_int(min_mask_region_area, "min_mask_region_area",
                                                 minimum=0)

    @torch.no_grad()
    def generate(self, image: Tensor) -> list[dict]:
        """All masks of one image, by decreasing predicted IoU (NMS order).

        Args:
            image: Tensor[3, H, W], floating point in [0, 1] or uint8.

        Returns:
            one dict per mask: ``segmentation`` bool Tensor[H, W], ``area`` (pixels),
            ``bbox`` [x, y, w, h] (w = x_max − x_min, inclusive max, as segment-anything),
            ``predicted_iou``, ``stability_score``, ``point_coords`` [[x, y]] (the prompt),
            ``crop_box`` [0, 0, W, H].
        """
        predictor = self.predictor
        predictor.set_image(image)  # the encoder, once
        H, W = predictor.original_size
        points = build_point_grid(self.points_per_side, device=predictor.device)
        points = points * points.new_tensor([W, H])  # (n², 2) pixels of the original image
        kept = {"low_res": [], "iou": [], "stability": [], "boxes": [], "points": []}
        for start in range(0, len(points), self.points_per_batch):
            batch = self._process_batch(points[start:start + self.points_per_batch])
            for key, value in batch.items():
                kept[key].append(value)
        data = {key: torch.cat(values) for key, values in kept.items()}
        keep = nms(data["boxes"].float(), data["iou"], self.box_nms_thresh)  # (K,) best first
        data = {key: value[keep] for key, value in data.items()}
        masks = self._masks(data["low_res"])  # (K, H, W) bool, only the kept ones
        if self.min_mask_region_area > 0 and len(masks):
            masks, data = self._remove_small_regions(masks, data)
        predictor.reset_image()
        return [
            {"segmentation": masks[i], "area": int(masks[i].sum()),
             "bbox": _xywh(data["boxes"][i]), "predicted_iou": float(data["iou"][i]),
             "point_coords": [data["points"][i].tolist()],
             "stability_score": float(data["stability"][i]), "crop_box": [0, 0, W, H]}
            for i in range(len(masks))
        ]

    def _process_batch(self, points: Tensor) -> dict[str, Tensor]:
        """Prompts Tensor[b, 2] -> the surviving masks' low-res logits, scores, boxes, points."""
        predictor, threshold = self.predictor, self.predictor.model.mask_threshold
        labels = torch.ones(len(points), 1, dtype=torch.long, device=points.device)
        logits, iou, low_res = predictor.predict_batch(points[:, None, :], labels,
                                                       return_logits=True)  # (b, 3, H, W)
        points = points.repeat_interleave(logits.shape[1], dim=0)  # (3b, 2): one per mask
        logits, iou, low_res = logits.flatten(0, 1), iou.flatten(0, 1), low_res.flatten(0, 1)
        keep = torch.ones_like(iou, dtype=torch.bool)  # (3b,)
        if self.pred_iou_thresh > 0:
            keep &= iou > self.pred_iou_thresh
        stability = stability_score(logits, threshold, self.stability_score_offset)  # (3b,)
        if self.stability_score_thresh > 0:
            keep &= stability >= self.stability_score_thresh
        boxes = mask_to_box(logits[keep] > threshold)  # (k, 4)
        return {"low_res": low_res[keep], "iou": iou[keep], "stability": stability[keep],
                "boxes": boxes, "points": points[keep]}

    def _masks(self, low_res: Tensor) -> Tensor:
        """Full-resolution bool masks of the kept low-res logits, a batch at a time."""
        p = self.predictor
        H, W = p.original_size
        out = torch.zeros(len(low_res), H, W, dtype=torch.bool, device=low_res.device)
        for s in range(0, len(low_res), self.points_per_batch):
            chunk = low_res[s:s + self.points_per_batch, None]  # (b, 1, 4h, 4w)
            logits = p.model.postprocess_masks(chunk, p.input_size, p.original_size)
            out[s:s + len(chunk)] = logits[:, 0] > p.model.mask_threshold
        return out

    def _remove_small_regions(self, masks: Tensor, data: dict[str, Tensor]):
        """Fill holes, drop islands; NMS again, preferring masks that did not change."""
        area = self.min_mask_region_area
        new_masks, scores = [], []
        for mask in masks:
            mask, changed_holes = remove_small_regions(mask, area, "holes")
            mask, changed_islands = remove_small_regions(mask, area, "islands")
            new_masks.append(mask)
            scores.append(0.0 if (changed_holes or changed_islands) else 1.0)
        masks = torch.stack(new_masks)  # (K, H, W)
        boxes = mask_to_box(masks)  # (K, 4)
        scores_t = torch.tensor(scores, device=masks.device)
        keep = nms(boxes.float(), scores_t, self.box_nms_thresh)
        data = {key: value[keep] for key, value in data.items()}
        data["boxes"] = boxes[keep]
        return masks[keep], data


def _xywh(box: Tensor) -> list:
    x1, y1, x2, y2 = box.tolist()
    return [x1, y1, x2 - x1, y2 - y1]


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {describe(value)}")
    if value != value:  # NaN compares false with everything: every threshold would pass
        raise ValueError(f"{name} must be a number, got NaN")
    return float(value)
