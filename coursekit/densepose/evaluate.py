"""Score a DensePose head on held-out persons: part mIoU, U/V error, CSE correspondences.

For each person (a ground-truth box, or the detection matched to it):

* the head's ``M × M`` maps are pasted into the image (``paste_in_image``) and decoded
  (``decode_iuv``) into a part per pixel and ``(U, V)``;
* **part mIoU**: inside the box, the predicted parts against the person's own part map
  (task 1; another person's pixels count as background), one confusion matrix over all
  persons (``parts.part_confusion``), IoU per part 1..10 and their mean;
* **U/V error**: mean ``|U - U*|`` and ``|V - V*|`` on the pixels whose part is right,
  beside two blind baselines on the same pixels (the U/V "chance"): a constant
  ``U = V = 0.5`` (the chart's centre), and each part's mean ``(U, V)`` over those pixels
  (a guess that knows the true part and the held-out average, nothing about the pixel);
* **CSE accuracy**: at the annotated points (task 2) the pixel embedding's nearest vertex
  (``cse.nearest_vertices``) against the true vertex of the point's ``(I, U, V)``: the
  share within ``radius`` body heights (``cse.correspondence_accuracy``), beside a random
  vertex's (``cse.chance_accuracy``); the same for the vertex read from the predicted
  ``(I, U, V)`` (``iuv_accuracy``).

On detected boxes (``boxes="detected"``) a ground-truth person without a detection of IoU
``>= 0.5`` is predicted as background everywhere in its box (it costs IoU), and its points
count as wrong. With ``flip=True`` the head also reads the mirror image's features on the
mirrored boxes (``pose.flip.flip_boxes``), and its maps, carried back by
``uv_head.hflip_maps``, are averaged with the original's (flip test-time augmentation).
Tested in tests/densepose/test_evaluate.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.densepose.cse import chance_accuracy, correspondence_accuracy, nearest_vertices
from coursekit.densepose.parts import NUM_PARTS, part_confusion, part_iou, uv_error
from coursekit.densepose.uv_head import DensePoseHead, decode_iuv, hflip_maps, paste_in_image
from coursekit.detection.boxes import box_iou
from coursekit.pose.flip import flip_boxes

__all__ = ["RADIUS", "densepose_image", "evaluate_densepose", "match_detections",
           "person_results"]

RADIUS = 0.06  # body heights: about 10 cm on a 1.75 m person, DensePose's usual threshold


def densepose_image(head: DensePoseHead, features, boxes: list[Tensor],
                    image_size: tuple[int, int],
                    flipped_features=None) -> list[dict[str, Tensor]]:
    """Run ``head`` on ``boxes`` (per image Tensor[P_i, 4]) and decode each person.

    Returns per image ``{"maps": the head's outputs (Tensor[P_i, C, M, M] each), "parts":
    int64 Tensor[P_i, H, W], "uv": Tensor[P_i, 2, H, W], "inside": bool Tensor[P_i, H, W],
    "embedding": Tensor[P_i, E, H, W]}`` (the maps pasted into the image and decoded).

    ``flipped_features``: the trunk's features of the horizontally flipped images. Given,
    the head also runs on the mirrored boxes there, ``hflip_maps`` carries those maps back,
    and the coarse, part and U, V maps are the mean of the two (flip test-time
    augmentation; the embedding stays the original image's).
    """
    with torch.no_grad():
        outputs = head(head.roi_pool(features, boxes))
        if flipped_features is not None:
            mirrored = [flip_boxes(b, image_size[1]) for b in boxes]
            back = hflip_maps(head(head.roi_pool(flipped_features, mirrored)))
            outputs = {k: (v + back[k]) / 2 if k in back else v for k, v in outputs.items()}
    counts = [len(b) for b in boxes]
    names = ["coarse", "fine", "u", "v"]
    sizes = [outputs[k].shape[1] for k in names]
    out = []
    for i, b in enumerate(boxes):
        lo = sum(counts[:i])
        maps = {k: v[lo:lo + counts[i]] for k, v in outputs.items()}
        stacked = torch.cat([maps[k] for k in names], dim=1)
        pasted, inside = paste_in_image(stacked, b.to(stacked.dtype), image_size)
        coarse, fine, u, v = pasted.split(sizes, dim=1)
        parts, uv = decode_iuv(coarse, fine, u, v)
        parts = parts * inside
        embedding, _ = paste_in_image(maps["embedding"], b.to(stacked.dtype), image_size)
        out.append({"maps": maps, "parts": parts, "uv": uv, "inside": inside,
                    "embedding": embedding})
    return out


def person_results(detections: dict[str, Tensor], image_size: tuple[int, int],
                   person_id: int = 7) -> dict[str, Tensor]:
    """Decode one image's detections (``model.predict`` of a model with the DensePose head).

    Keeps the detections of category ``person_id`` and returns ``{"boxes": Tensor[P, 4],
    "parts": int64 Tensor[P, H, W], "uv": Tensor[P, 2, H, W], "embedding": Tensor[P, E, H,
    W]}`` (each person's maps pasted into the image, 0 outside its box and background), and
    the whole image's ``"image_parts"`` Tensor[H, W] / ``"image_uv"`` Tensor[2, H, W]: on
    each pixel the person with the best score that claims it.
    """
    keep = detections["labels"] == person_id
    boxes = detections["boxes"][keep]
    names = ["coarse", "fine", "u", "v"]
    maps = [detections[f"densepose_{k}"][keep] for k in names]
    sizes = [m.shape[1] for m in maps]
    pasted, inside = paste_in_image(torch.cat(maps, dim=1), boxes, image_size)
    parts, uv = decode_iuv(*pasted.split(sizes, dim=1))
    parts = parts * inside
    embedding, _ = paste_in_image(detections["densepose_embedding"][keep], boxes, image_size)
    image_parts = torch.zeros(image_size, dtype=torch.int64)
    image_uv = torch.zeros(2, *image_size)
    for p in reversed(range(len(boxes))):  # best score last: it wins where persons overlap
        on = parts[p] > 0
        image_parts[on] = parts[p][on]
        image_uv[:, on] = uv[p][:, on]
    return {"boxes": boxes, "parts": parts, "uv": uv, "embedding": embedding,
            "image_parts": image_parts, "image_uv": image_uv}


def match_detections(det_boxes: Tensor, gt_boxes: Tensor, threshold: float = 0.5) -> Tensor:
    """int64 Tensor[G]: for each ground-truth box, the detection matched to it (-1: none).

    Greedy in the detections' order (best score first): each takes the unmatched ground
    truth of highest IoU ``>= threshold``.
    """
    match = torch.full((len(gt_boxes),), -1, dtype=torch.int64)
    if len(det_boxes) == 0 or len(gt_boxes) == 0:
        return match
    iou = box_iou(det_boxes.float().cpu(), gt_boxes.float().cpu())  # (D, G)
    for d in range(len(det_boxes)):
        row = iou[d].clone()
        row[match >= 0] = -1
        g = int(row.argmax())
        if row[g] >= threshold:
            match[g] = d
    return match


def evaluate_densepose(head: DensePoseHead, trunk, seeds: list[int], size: int = 96,
                       p_person: float = 0.6, num_points: int = 100, radius: float = RADIUS,
                       batch_size: int = 16, detected: bool = True,
                       flip: bool = False) -> dict[str, float]:
    """Metrics of ``head`` on the persons of scenes ``seeds`` (module docstring).

    ``trunk``: the Mask R-CNN whose features the head reads (and whose detections it is
    scored on with ``detected=True``, person score >= 0.5). Returns ``miou``, ``iou_<part>``,
    ``u_error``, ``v_error``, ``u_chance``, ``v_chance`` (constant 0.5), ``u_part_mean``,
    ``v_part_mean`` (each part's mean U, V), ``cse_accuracy``, ``iuv_accuracy``, ``chance``
    and ``persons`` on ground-truth boxes, and ``det_miou``, ``det_u_error``, ``det_v_error``,
    ``det_cse_accuracy``, ``det_recall`` on detections. ``flip=True``: each image's mirror
    image runs through the trunk too and the head's maps are averaged with it
    (``densepose_image``'s flip test-time augmentation; the detections are the original
    image's).
    """
    from coursekit.data.shapesworld import PART_NAMES
    from coursekit.densepose.train import PERSON_ID, densepose_batch

    was_training = head.training
    head.eval()
    template = head.template
    distances = template.distances()
    runs = ("gt", "det") if detected else ("gt",)
    conf = {r: torch.zeros(NUM_PARTS + 1, NUM_PARTS + 1, dtype=torch.int64) for r in runs}
    uv_sum = {r: torch.zeros(2, dtype=torch.float64) for r in runs}
    uv_n = dict.fromkeys(runs, 0)
    pred_v = {r: [] for r in (*runs, "iuv")}
    true_v: list[Tensor] = []
    right_parts: list[Tensor] = []  # (n,) the true part of each right pixel (gt boxes)
    right_uv: list[Tensor] = []  # (2, n) its true (U, V)
    found = persons = 0
    for start in range(0, len(seeds), batch_size):
        chunk = list(seeds[start:start + batch_size])
        features, boxes, targets, scenes = densepose_batch(trunk, chunk, size, p_person,
                                                           num_points)
        flipped = None
        if flip:
            param = next(trunk.parameters())
            with torch.no_grad():
                flipped = trunk.backbone(trunk.transform(scenes.image.flip(-1).to(param.device)))
        boxes_by_run = {"gt": boxes}
        matches = []
        if detected:
            with torch.no_grad():
                dets = trunk.predict(scenes.image, score_threshold=0.5)
            det_boxes = []
            for b, det in zip(boxes, dets, strict=True):
                keep = det["labels"] == PERSON_ID
                m = match_detections(det["boxes"][keep], b)
                matches.append(m)
                db = b.clone()
                db[m >= 0] = det["boxes"][keep][m[m >= 0]].to(b.dtype)
                det_boxes.append(db)
            boxes_by_run["det"] = det_boxes
        for run in runs:
            results = densepose_image(head, features, boxes_by_run[run], (size, size), flipped)
            for i, (res, t) in enumerate(zip(results, targets, strict=True)):
                ok = (matches[i] >= 0 if run == "det"
                      else torch.ones(len(t["parts"]), dtype=torch.bool))
                for p in range(len(t["parts"])):
                    truth = t["parts"][p]
                    pred = res["parts"][p] if ok[p] else torch.zeros_like(truth)
                    region = res["inside"][p] | (truth > 0) if ok[p] else (truth > 0)
                    conf[run] += part_confusion(pred[region], truth[region])
                    if ok[p]:
                        s, n = uv_error(pred, res["uv"][p], truth, scenes.uv[i])
                        uv_sum[run] += s
                        uv_n[run] += n
                        if run == "gt":
                            right = (pred == truth) & (truth > 0)  # the pixels uv_error scores
                            right_parts.append(truth[right])
                            right_uv.append(scenes.uv[i][:, right].double())
                dp = t["densepose"]  # (P, N, 5)
                r, n = torch.nonzero(dp[..., 2] > 0, as_tuple=True)  # every annotated point
                pts = dp[r, n]  # (n, 5)
                x = pts[:, 0].long().clamp(0, size - 1)  # points sit on pixel centres
                y = pts[:, 1].long().clamp(0, size - 1)
                seen = res["inside"][r, y, x] & ok[r]
                vertex = nearest_vertices(res["embedding"][r, :, y, x],
                                          head.vertex_embeddings())
                vertex = torch.where(seen, vertex, torch.full_like(vertex, -1))
                if run == "gt":
                    truth_v = template.nearest_vertex(pts[:, 2].long(), pts[:, 3:].double())
                    true_v.append(truth_v)
                    persons += len(t["parts"])
                    ip = res["parts"][r, y, x]  # the vertex of the predicted (I, U, V)
                    iuv_uv = res["uv"][r, :, y, x]
                    iv = torch.full_like(truth_v, -1)
                    on = ip > 0
                    if bool(on.any()):
                        iv[on] = template.nearest_vertex(ip[on], iuv_uv[on].double())
                    pred_v["iuv"].append(iv)
                else:
                    found += int(ok.sum())
                pred_v[run].append(vertex)
    truth_all = torch.cat(true_v)
    metrics: dict[str, float] = {}
    for run in runs:
        prefix = "" if run == "gt" else "det_"
        ious, miou = part_iou(conf[run])
        metrics[f"{prefix}miou"] = miou
        if run == "gt":
            metrics.update({f"iou_{PART_NAMES[k + 1]}": float(ious[k]) for k in range(NUM_PARTS)})
        u, v = (uv_sum[run] / max(uv_n[run], 1)).tolist()
        metrics[f"{prefix}u_error"], metrics[f"{prefix}v_error"] = u, v
        metrics[f"{prefix}cse_accuracy"] = _accuracy(torch.cat(pred_v[run]), truth_all,
                                                     distances, radius)
    blind = _blind_uv_errors(torch.cat(right_parts) if right_parts
                             else torch.zeros(0, dtype=torch.int64),
                             torch.cat(right_uv, dim=1) if right_uv
                             else torch.zeros(2, 0, dtype=torch.float64))
    metrics["u_chance"], metrics["v_chance"] = blind["constant"].tolist()
    metrics["u_part_mean"], metrics["v_part_mean"] = blind["part_mean"].tolist()
    metrics["iuv_accuracy"] = _accuracy(torch.cat(pred_v["iuv"]), truth_all, distances, radius)
    metrics["chance"] = chance_accuracy(truth_all, distances, radius)
    metrics["persons"] = float(persons)
    if detected:
        metrics["det_recall"] = found / max(persons, 1)
    head.train(was_training)
    return metrics


def _blind_uv_errors(parts: Tensor, uv: Tensor) -> dict[str, Tensor]:
    """Mean ``(|U - U*|, |V - V*|)`` Tensor[2] of two guesses that never look at the image.

    ``parts`` int64 Tensor[n] (1..10), ``uv`` float64 Tensor[2, n]: the scored pixels.
    ``"constant"``: ``U = V = 0.5`` everywhere; ``"part_mean"``: each pixel gets the mean
    ``(U, V)`` of its part over these pixels. No pixels: zeros.
    """
    if len(parts) == 0:
        return {"constant": uv.new_zeros(2), "part_mean": uv.new_zeros(2)}
    constant = (uv - 0.5).abs().mean(1)  # (2,)
    sums = uv.new_zeros(2, NUM_PARTS + 1).index_add_(1, parts, uv)  # (2, 11)
    counts = torch.bincount(parts, minlength=NUM_PARTS + 1).to(uv.dtype).clamp(min=1)
    mean = sums / counts  # (2, 11) each part's mean U, V
    part_mean = (uv - mean[:, parts]).abs().mean(1)  # (2,)
    return {"constant": constant, "part_mean": part_mean}


def _accuracy(pred: Tensor, truth: Tensor, distances: Tensor, radius: float) -> float:
    """``correspondence_accuracy`` where a prediction of -1 (no vertex) counts as wrong."""
    valid = pred >= 0
    if not bool(valid.any()):
        return 0.0
    hit = correspondence_accuracy(pred[valid], truth[valid], distances, radius)
    return hit * float(valid.double().mean())
