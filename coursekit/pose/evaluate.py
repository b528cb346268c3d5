"""Keypoint AP: lesson 05's COCO AP with OKS in place of IoU, ours and pycocotools'.

Lecture: *Human pose estimation* — a detected person is a true positive at threshold t
when its OKS with an unmatched ground-truth person is ``>= t``; the rest of COCO's AP is
unchanged (greedy matching by score, precision–recall, 101-point interpolation, mean over
``t = 0.5, ..., 0.95``). So there is one AP, ``coursekit.instance.evaluate_coco_style``,
given ``similarity=keypoint_similarity`` (OKS, ``oks.py``):

* ``keypoint_similarity(pred, gt)`` — OKS Tensor[D, G] between one image's detected poses
  and its ground-truth persons (float64, COCO's sigmas, area = the segment's area);
* ``evaluate_keypoints(predictions, ground_truths)`` — keypoint AP, AP50, AP75 (ours);
* ``coco_keypoint_evaluate(predictions, coco_gt)`` — the same through pycocotools'
  ``COCOeval(iouType="keypoints")`` (pycocotools is imported inside, a test extra);
* ``evaluate_keypointrcnn(model, seeds)`` — keypoint, mask and box AP of the joint model
  on ShapesWorld scenes, ours and pycocotools'.

As COCO's keypoint evaluation: at most 20 detections per image (``max_dets=20``), a ground
truth without labelled keypoints is ignored. Tested in tests/pose/test_keypoint_eval.py
(ours equal to pycocotools to 1e-12 on random cases).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import torch
from torch import Tensor

from coursekit.instance.ap import check_entries, evaluate_coco_style
from coursekit.pose.coco_keypoints import COCO_KEYPOINT_NAMES, COCO_SIGMAS
from coursekit.pose.keypoint_rcnn import PERSON_ID
from coursekit.pose.oks import oks

__all__ = ["KEYPOINT_MAX_DETS", "coco_keypoint_evaluate", "evaluate_keypointrcnn",
           "evaluate_keypoints", "keypoint_similarity", "to_coco_keypoint_ground_truth",
           "to_coco_keypoint_results"]

KEYPOINT_MAX_DETS = 20  # COCOeval's maxDets for iouType="keypoints"


def keypoint_similarity(pred: dict[str, Tensor], gt: dict[str, Tensor],
                        sigmas: Sequence[float] | Tensor = COCO_SIGMAS) -> Tensor:
    """OKS float64 Tensor[D, G] between ``pred["keypoints"]`` and ``gt["keypoints"]``.

    ``gt["area"]`` Tensor[G] (the segment area; ``evaluate_coco_style`` fills it in),
    ``gt["boxes"]`` for COCO's fallback when a person has no labelled keypoint. Computed in
    float64, as pycocotools' ``computeOks`` (transposed: rows are detections here).
    """
    dt = pred["keypoints"].detach().double().cpu()
    gt_kp = gt["keypoints"].detach().double().cpu()
    if len(dt) == 0 or len(gt_kp) == 0:
        return torch.zeros(len(dt), len(gt_kp), dtype=torch.float64)
    area = gt["area"].detach().double().cpu()
    boxes = gt["boxes"].detach().double().cpu()
    return oks(gt_kp, dt, area, sigmas, gt_boxes=boxes).T  # (D, G)


def evaluate_keypoints(predictions: list[dict[str, Tensor]],
                       ground_truths: list[dict[str, Tensor]],
                       area_range: tuple[float, float] | None = None,
                       max_dets: int = KEYPOINT_MAX_DETS) -> dict[str, Any]:
    """Keypoint AP (OKS thresholds 0.5:0.95), AP50, AP75 per category and in all.

    ``evaluate_coco_style(predictions, ground_truths, "keypoints", area_range, max_dets,
    similarity=keypoint_similarity)``: per image, predictions ``{"boxes", "labels",
    "scores", "keypoints": Tensor[D, K, 3]}`` and ground truths ``{"boxes", "labels",
    "keypoints": Tensor[G, K, 3], "masks" or "area", optional "iscrowd"}``. The same
    numbers as ``coco_keypoint_evaluate`` (pycocotools).
    """
    return evaluate_coco_style(predictions, ground_truths, "keypoints", area_range, max_dets,
                               similarity=keypoint_similarity)


def to_coco_keypoint_results(predictions: list[dict[str, Tensor]], image_ids: list[int],
                             category_offset: int = 1) -> list[dict[str, Any]]:
    """COCO keypoint results: ``{"image_id", "category_id", "keypoints" [x, y, v, ...],
    "score"}`` per detection (``category_id = label + category_offset``)."""
    predictions = check_entries(predictions, "predictions", "keypoints", True)
    if len(image_ids) != len(predictions):
        raise ValueError(f"image_ids must have one id per prediction dict ({len(predictions)}), "
                         f"got {len(image_ids)}")
    results = []
    for image_id, pred in zip(image_ids, predictions, strict=True):
        keypoints = pred["keypoints"].detach().double().cpu()
        for k, (label, score) in enumerate(zip(pred["labels"].tolist(), pred["scores"].tolist(),
                                               strict=True)):
            results.append({"image_id": int(image_id), "category_id": int(label) + category_offset,
                            "keypoints": keypoints[k].flatten().tolist(), "score": float(score)})
    return results


def to_coco_keypoint_ground_truth(ground_truths: list[dict[str, Tensor]],
                                  image_size: tuple[int, int] = (64, 64),
                                  category_offset: int = 1) -> dict[str, Any]:
    """A COCO person-keypoints dict (images 1..N) from per-image ground-truth dicts.

    ``{"boxes", "labels", "keypoints": Tensor[G, K, 3], optional "area", "iscrowd",
    "masks"}``; each annotation gets ``keypoints`` (flattened) and ``num_keypoints``, each
    category the keypoint names. For synthetic cases (ShapesWorld scenes use
    ``coursekit.data.coco.to_coco``).
    """
    from coursekit.instance.coco_eval import to_coco_ground_truth

    ground_truths = check_entries(ground_truths, "ground_truths", "keypoints", False)
    coco = to_coco_ground_truth(ground_truths, image_size, category_offset)
    rows = [kp for gt in ground_truths for kp in gt["keypoints"].detach().double().cpu()]
    for ann, kp in zip(coco["annotations"], rows, strict=True):  # same order: image, row
        ann["keypoints"] = kp.flatten().tolist()
        ann["num_keypoints"] = int((kp[:, 2] > 0).sum())
    K = rows[0].shape[0] if rows else len(COCO_KEYPOINT_NAMES)
    names = list(COCO_KEYPOINT_NAMES) if K == len(COCO_KEYPOINT_NAMES) else [
        str(k) for k in range(K)]
    for category in coco["categories"]:
        category["keypoints"] = names
    return coco


def coco_keypoint_evaluate(predictions: list[dict[str, Tensor]], coco_gt: dict[str, Any],
                           area_range: tuple[float, float] | None = None,
                           max_dets: int = KEYPOINT_MAX_DETS,
                           category_offset: int = 1) -> dict[str, Any]:
    """Keypoint AP from pycocotools' ``COCOeval(iouType="keypoints")``, COCO's 17 sigmas.

    ``predictions[i]`` (``{"boxes", "labels", "scores", "keypoints"}``) belongs to
    ``coco_gt["images"][i]``; the categories evaluated are those of ``coco_gt`` that have
    ``keypoints`` (ShapesWorld: the person). One area range (default ``[0, 1e10]``) and one
    ``max_dets`` (default 20), as ``evaluate_keypoints``. Returns its keys: ``ap``,
    ``ap50``, ``ap75``, ``ap_per_category``, ``categories``, ``precision`` Tensor[T, R, K],
    ``recall`` Tensor[T, K].
    """
    from coursekit.instance.coco_eval import run_cocoeval

    image_ids = [img["id"] for img in coco_gt["images"]]
    results = to_coco_keypoint_results(predictions, image_ids, category_offset)
    cat_ids = [c["id"] for c in coco_gt["categories"] if c.get("keypoints")]
    if not cat_ids:
        raise ValueError("coco_gt has no category with keypoints (a 'keypoints' list of names)")
    results = [r for r in results if r["category_id"] in cat_ids]
    has_gt = any(not a.get("iscrowd", 0) and a.get("num_keypoints", 0) > 0
                 for a in coco_gt["annotations"] if a["category_id"] in cat_ids)
    return run_cocoeval(coco_gt, results, "keypoints", area_range, max_dets, category_offset,
                        has_gt=has_gt, cat_ids=cat_ids, kpt_oks_sigmas=COCO_SIGMAS)


@torch.no_grad()
def evaluate_keypointrcnn(model: torch.nn.Module, seeds: Iterable[int], size: int = 96,
                          batch_size: int = 25, pycocotools: bool = True,
                          predictions: Sequence[dict[str, Tensor]] | None = None,
                          ) -> dict[str, float]:
    """Keypoint AP (persons, OKS) and mask / box AP (all things) on ShapesWorld ``seeds``.

    Keys ``kp_ap``, ``kp_ap50``, ``kp_ap75``, ``mask_ap*``, ``box_ap*`` (ours) and, when
    pycocotools is installed, the same prefixed ``coco_`` (``COCOeval``), plus
    ``eval_scenes``. Every detection the model keeps (score > 0.05) is scored, its keypoints
    with the box's score (as torchvision's COCO evaluation does); masks at ``>= 0.5``.
    ``predictions``: the model's outputs for these scenes, one dict per seed, from
    ``model.predict(images, score_threshold=0.0)``; given, they are scored instead of
    running the model again (a lesson that also shows them predicts once).
    """
    from coursekit.data.shapesworld import render_batch

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one scene, got an empty sequence")
    if predictions is not None and len(predictions) != len(seeds):
        raise ValueError(f"predictions must hold one dict per seed ({len(seeds)}), "
                         f"got {len(predictions)}")
    device = next(model.parameters()).device
    preds, gts, kp_preds, kp_gts, scenes = [], [], [], [], []
    for i in range(0, len(seeds), batch_size):
        batch = render_batch(seeds[i:i + batch_size], size=size)
        outputs = (model.predict(batch.image.to(device), score_threshold=0.0)
                   if predictions is None else predictions[i:i + batch_size])
        for j, out in enumerate(outputs):
            out = {k: v.cpu() for k, v in out.items()}
            preds.append({k: out[k] for k in ("boxes", "labels", "scores", "masks")})
            person = out["labels"] == PERSON_ID
            kp_preds.append({k: out[k][person] for k in ("boxes", "labels", "scores",
                                                           "keypoints")})
            gt = {"boxes": batch.boxes[j], "labels": batch.labels[j], "masks": batch.masks[j],
                  "iscrowd": batch.iscrowd[j]}
            gts.append(gt)
            rows = batch.person_index[j]
            kp_gts.append({**{k: v[rows] for k, v in gt.items()},
                           "keypoints": batch.keypoints[j]})
            scenes.append(batch.scene(j))
    metrics: dict[str, float] = {}
    ours = evaluate_keypoints(kp_preds, kp_gts)
    metrics.update({"kp_ap": ours["ap"], "kp_ap50": ours["ap50"], "kp_ap75": ours["ap75"]})
    for kind, prefix in (("segm", "mask"), ("bbox", "box")):
        ours = evaluate_coco_style(preds, gts, kind)
        metrics.update({f"{prefix}_ap": ours["ap"], f"{prefix}_ap50": ours["ap50"],
                        f"{prefix}_ap75": ours["ap75"]})
    if pycocotools:
        try:
            from coursekit.data.coco import to_coco
            from coursekit.instance.coco_eval import coco_evaluate

            coco_gt = to_coco(scenes)
            ref = coco_keypoint_evaluate(kp_preds, coco_gt)
            metrics.update({"coco_kp_ap": ref["ap"], "coco_kp_ap50": ref["ap50"],
                            "coco_kp_ap75": ref["ap75"]})
            for kind, prefix in (("segm", "mask"), ("bbox", "box")):
                ref = coco_evaluate(preds, coco_gt, kind)
                metrics.update({f"coco_{prefix}_ap": ref["ap"],
                                f"coco_{prefix}_ap50": ref["ap50"],
                                f"coco_{prefix}_ap75": ref["ap75"]})
        except ImportError:  # pycocotools is a test extra
            pass
    metrics["eval_scenes"] = float(len(seeds))
    return metrics
