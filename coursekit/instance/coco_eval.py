"""The same AP via pycocotools: export predictions in COCO's results format and run ``COCOeval``.

The reference for ``ap.evaluate_coco_style``. pycocotools is a test extra
(``pip install coursekit[test]``), so it is imported inside the functions only.

* ``to_coco_results(predictions, image_ids)`` — one ``{"image_id", "category_id", "score",
  "bbox" [x, y, w, h] or "segmentation" (compressed RLE)}`` per detection;
  ``category_id = label + 1`` (``coursekit.data.coco``'s convention: train id + 1).
* ``to_coco_ground_truth(ground_truths)`` — a COCO instances dict from per-image dicts
  (for synthetic cases; ShapesWorld scenes use ``coursekit.data.coco.to_coco``).
* ``coco_evaluate(predictions, coco_gt, iou_type)`` -> ``{"ap", "ap50", "ap75",
  "ap_per_category", "categories", "precision", "recall"}``, the same keys as
  ``evaluate_coco_style``.

Masks must be bool, as in ``evaluate_coco_style`` (RLE encoding would truncate floats).
Tested in tests/instance/test_ap.py.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch
from torch import Tensor

from coursekit.instance.ap import check_entries, summarize


def _rle(mask: Tensor) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.detach().cpu().numpy().astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def to_coco_results(predictions: list[dict[str, Tensor]], image_ids: list[int],
                    iou_type: str = "segm", category_offset: int = 1) -> list[dict[str, Any]]:
    """COCO results list: one dict per detection (``category_id = label + category_offset``)."""
    predictions = check_entries(predictions, "predictions", iou_type, True)
    if len(image_ids) != len(predictions):
        raise ValueError(f"image_ids must have one id per prediction dict ({len(predictions)}), "
                         f"got {len(image_ids)}")
    results = []
    for image_id, pred in zip(image_ids, predictions, strict=True):
        boxes = pred["boxes"].detach().cpu()
        xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).tolist()  # boxes' dtype
        labels, scores = pred["labels"].tolist(), pred["scores"].tolist()
        for k, (label, score) in enumerate(zip(labels, scores, strict=True)):
            entry = {"image_id": int(image_id), "category_id": int(label) + category_offset,
                     "score": float(score)}
            if iou_type == "segm":  # no "bbox": loadRes would take the box area as the area
                entry["segmentation"] = _rle(pred["masks"][k])
            else:
                entry["bbox"] = xywh[k]
            results.append(entry)
    return results


def to_coco_ground_truth(ground_truths: list[dict[str, Tensor]],
                         image_size: tuple[int, int] | None = None,
                         category_offset: int = 1) -> dict[str, Any]:
    """A COCO instances dict (images 1..N) from per-image ``{"boxes", "labels", "masks"?, ...}``.

    Optional keys ``iscrowd`` and ``area``; without ``area`` an annotation's area is its
    mask's pixel count, else its box's area.
    """
    ground_truths = check_entries(ground_truths, "ground_truths", "bbox", False)
    images, annotations, labels = [], [], set()
    for i, gt in enumerate(ground_truths):
        masks = gt.get("masks")
        H, W = masks.shape[-2:] if masks is not None else image_size or (1, 1)
        images.append({"id": i + 1, "height": int(H), "width": int(W)})
        boxes = gt["boxes"].detach().cpu()
        crowd = gt.get("iscrowd", torch.zeros(len(boxes), dtype=torch.bool))
        for k in range(len(boxes)):
            x1, y1, x2, y2 = boxes[k].tolist()
            if "area" in gt:
                area = float(gt["area"][k])
            elif masks is not None:
                area = float(masks[k].sum())
            else:
                area = (x2 - x1) * (y2 - y1)
            category = int(gt["labels"][k]) + category_offset
            ann = {"id": len(annotations) + 1, "image_id": i + 1, "category_id": category,
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "area": area, "iscrowd": int(crowd[k])}
            if masks is not None:
                ann["segmentation"] = _rle(masks[k])
            annotations.append(ann)
            labels.add(category)
    return {"images": images, "annotations": annotations,
            "categories": [{"id": c, "name": str(c)} for c in sorted(labels)]}


def coco_evaluate(predictions: list[dict[str, Tensor]], coco_gt: dict[str, Any],
                  iou_type: str = "segm", area_range: tuple[float, float] | None = None,
                  max_dets: int = 100, category_offset: int = 1) -> dict[str, Any]:
    """AP, AP50, AP75, AP per category and the precision / recall arrays from ``COCOeval``.

    ``predictions[i]`` belongs to ``coco_gt["images"][i]``. One area range (default
    COCO's "all", ``[0, 1e10]``) and one ``max_dets`` (default 100), as in
    ``evaluate_coco_style``. ``categories`` are labels (``category_id - category_offset``)
    of every category in ``coco_gt``; ``precision`` is Tensor[T, R, K] float64 and
    ``recall`` Tensor[T, K] (``-1`` where a category has no ground truth).
    """
    if iou_type not in ("segm", "bbox"):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', got {iou_type!r}")
    image_ids = [img["id"] for img in coco_gt["images"]]
    results = to_coco_results(predictions, image_ids, iou_type, category_offset)
    has_gt = any(not a.get("iscrowd", 0) for a in coco_gt["annotations"])
    return run_cocoeval(coco_gt, results, iou_type, area_range, max_dets, category_offset,
                        has_gt=has_gt)


def run_cocoeval(coco_gt: dict[str, Any], results: list[dict], iou_type: str,
                 area_range: tuple[float, float] | None, max_dets: int, category_offset: int,
                 *, has_gt: bool, cat_ids: list[int] | None = None,
                 kpt_oks_sigmas: Any = None) -> dict[str, Any]:
    """Run pycocotools' ``COCOeval`` on one area range and one ``max_dets``; our result dict.

    Shared by ``coco_evaluate`` (masks, boxes) and ``coursekit.pose.evaluate`` (keypoints).
    ``has_gt`` says whether any ground truth counts (no detection then gives AP 0, else -1).
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    image_ids = [img["id"] for img in coco_gt["images"]]
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = COCO()
        gt.dataset = coco_gt
        gt.createIndex()
        if not results:  # loadRes cannot take an empty list: no detection means AP 0
            value = 0.0 if has_gt else -1.0
            return {"ap": value, "ap50": value, "ap75": value, "ap_per_category": {},
                    "categories": [], "precision": torch.zeros(10, 101, 0, dtype=torch.float64),
                    "recall": torch.zeros(10, 0, dtype=torch.float64)}
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, iou_type)
        evaluator.params.imgIds = image_ids
        if cat_ids is not None:
            evaluator.params.catIds = cat_ids
        if kpt_oks_sigmas is not None:
            evaluator.params.kpt_oks_sigmas = np.asarray(kpt_oks_sigmas)
        evaluator.params.areaRng = [list(area_range) if area_range is not None else [0.0, 1e10]]
        evaluator.params.areaRngLbl = ["all"]
        evaluator.params.maxDets = [max_dets]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = torch.from_numpy(evaluator.eval["precision"][:, :, :, 0, 0].copy())  # (T, R, K)
    recall = torch.from_numpy(evaluator.eval["recall"][:, :, 0, 0].copy())  # (T, K)
    categories = [int(c) - category_offset for c in evaluator.params.catIds]
    return {**summarize(precision, categories), "categories": categories,
            "precision": precision, "recall": recall}
