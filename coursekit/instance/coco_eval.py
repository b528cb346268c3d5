"""The same AP via pycocotools: export predictions in COCO's results format and run ``COCOeval``.

The reference for ``ap.evaluate_coco_style``. pycocotools is a test extra
(``pip install coursekit[test]``), so it is imported inside the functions only.

* ``to_coco_results(predictions, image_ids)`` — one ``{"image_id", "category_id", "score",
  "bbox" [x, y, w, h] or "segmentation" (compressed RLE)}`` per detection;
  ``category_id = label + 1`` (``coursekit.data.coco``'s convention: train id + 1).
* ``to_coco_ground_truth(ground_truths)`` — a COCO instances dict from per-image dicts
  (for synthetic cases; ShapesWorld scenes use ``coursekit.data.coco.to_coco``).
* ``coco_evaluate(predictions, coco_gt, iou_type)`` -> ``{"ap", "ap50", "ap75", "ap_per_category"}``.

Tested in tests/instance/test_ap.py.
"""

from __future__ import annotations

import contextlib
import io
from typing import Any

import numpy as np
import torch
from torch import Tensor

from coursekit.instance.ap import IOU_THRESHOLDS, _check_entries


def _rle(mask: Tensor) -> dict:
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.detach().cpu().numpy().astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def to_coco_results(predictions: list[dict[str, Tensor]], image_ids: list[int], iou_type: str = "segm",
                    category_offset: int = 1) -> list[dict[str, Any]]:
    """COCO results list: one dict per detection (``category_id = label + category_offset``)."""
    predictions = _check_entries(predictions, "predictions", iou_type, True)
    if len(image_ids) != len(predictions):
        raise ValueError(f"image_ids must have one id per prediction dict ({len(predictions)}), got {len(image_ids)}")
    results = []
    for image_id, pred in zip(image_ids, predictions):
        boxes = pred["boxes"].detach().cpu()
        xywh = torch.cat([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1).tolist()  # w, h in the boxes' dtype
        for k, (label, score) in enumerate(zip(pred["labels"].tolist(), pred["scores"].tolist())):
            entry = {"image_id": int(image_id), "category_id": int(label) + category_offset, "score": float(score)}
            if iou_type == "segm":  # no "bbox" then: loadRes would take the box area as the detection's area
                entry["segmentation"] = _rle(pred["masks"][k])
            else:
                entry["bbox"] = xywh[k]
            results.append(entry)
    return results


def to_coco_ground_truth(ground_truths: list[dict[str, Tensor]], image_size: tuple[int, int] | None = None,
                         category_offset: int = 1) -> dict[str, Any]:
    """A COCO instances dict (images 1..N) from per-image ``{"boxes", "labels", "masks", "iscrowd"?, "area"?}``."""
    ground_truths = _check_entries(ground_truths, "ground_truths", "bbox", False)
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
            ann = {"id": len(annotations) + 1, "image_id": i + 1, "category_id": int(gt["labels"][k]) + category_offset,
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "area": area, "iscrowd": int(crowd[k])}
            if masks is not None:
                ann["segmentation"] = _rle(masks[k])
            annotations.append(ann)
            labels.add(int(gt["labels"][k]) + category_offset)
    return {"images": images, "annotations": annotations,
            "categories": [{"id": c, "name": str(c)} for c in sorted(labels)]}


def coco_evaluate(predictions: list[dict[str, Tensor]], coco_gt: dict[str, Any], iou_type: str = "segm",
                  area_range: tuple[float, float] | None = None, max_dets: int = 100,
                  category_offset: int = 1) -> dict[str, Any]:
    """AP, AP50, AP75 (and AP per category, keyed by label) from pycocotools' ``COCOeval``.

    ``predictions[i]`` belongs to ``coco_gt["images"][i]``. One area range (default
    COCO's "all", ``[0, 1e10]``) and one ``max_dets`` (default 100), as in ``evaluate_coco_style``.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if iou_type not in ("segm", "bbox"):
        raise ValueError(f"iou_type must be 'segm' or 'bbox', got {iou_type!r}")
    image_ids = [img["id"] for img in coco_gt["images"]]
    results = to_coco_results(predictions, image_ids, iou_type, category_offset)
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        gt = COCO()
        gt.dataset = coco_gt
        gt.createIndex()
        if not results:  # loadRes cannot take an empty list: no detection means AP 0
            has_gt = any(not a.get("iscrowd", 0) for a in coco_gt["annotations"])
            value = 0.0 if has_gt else -1.0
            return {"ap": value, "ap50": value, "ap75": value, "ap_per_category": {}}
        dt = gt.loadRes(results)
        evaluator = COCOeval(gt, dt, iou_type)
        evaluator.params.imgIds = image_ids
        evaluator.params.areaRng = [list(area_range) if area_range is not None else [0.0, 1e10]]
        evaluator.params.areaRngLbl = ["all"]
        evaluator.params.maxDets = [max_dets]
        evaluator.evaluate()
        evaluator.accumulate()
    precision = evaluator.eval["precision"][:, :, :, 0, 0]  # (T, R, K)
    t50 = int(np.argmin(np.abs(np.array(IOU_THRESHOLDS) - 0.5)))
    t75 = int(np.argmin(np.abs(np.array(IOU_THRESHOLDS) - 0.75)))

    def mean(p: np.ndarray) -> float:
        valid = p[p > -1]
        return float(valid.mean()) if valid.size else -1.0

    per_category = {int(c) - category_offset: mean(precision[:, :, k])
                    for k, c in enumerate(evaluator.params.catIds) if mean(precision[:, :, k]) > -1}
    return {"ap": mean(precision), "ap50": mean(precision[t50]), "ap75": mean(precision[t75]),
            "ap_per_category": per_category}
