"""Multi-object tracking metrics: CLEAR-MOT (MOTA, MOTP) and the identity measures (IDF1).

Lecture: *Spatio-temporal detection and tracking* — a tracker must find the objects in
every frame *and* keep their identities. Two families of metrics measure that.

**CLEAR-MOT** (Bernardin and Stiefelhagen, 2008) matches ground truth and predictions
frame by frame. A pair may match when ``IoU >= iou_threshold``; its distance is
``1 - IoU``. In each frame:

1. a ground-truth object keeps the prediction it was last matched to, if that one is
   present and still overlaps enough (this is what makes identities "sticky");
2. the remaining objects and predictions are matched by the Hungarian algorithm
   (most pairs first, then the least total distance);
3. a match whose object was last matched to a *different* prediction is an identity
   switch (IDSW); unmatched objects are misses (FN), unmatched predictions false
   positives (FP). With GT the number of ground-truth boxes over all frames::

    MOTA = 1 - (FN + FP + IDSW) / GT
    MOTP = mean over matches of (1 - IoU)      (a distance: lower is better, as
                                               py-motmetrics reports it; MOTChallenge
                                               prints 1 - MOTP, a mean IoU)

**IDF1** (Ristani et al., 2016) matches whole trajectories instead: each ground-truth
id is paired with at most one predicted id (a global bipartite matching) so as to
maximise IDTP, the number of frames in which paired ids overlap with
``IoU >= iou_threshold``. Then ``IDFN = GT - IDTP``, ``IDFP = PRED - IDTP`` and::

    IDF1 = 2 IDTP / (GT + PRED)

Same numbers as py-motmetrics 1.4.0 (``MOTAccumulator`` fed ``1 - IoU`` with NaN where
``IoU < iou_threshold``, then ``metrics.create().compute``), including its choice
among equally good matchings; tested in tests/tracking/test_metrics.py.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from coursekit.detection import box_iou
from coursekit.validators import check_frames, describe

__all__ = ["check_frames", "combine_metrics", "mot_metrics"]

def _lsa(costs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-cost matching with NaN = forbidden, as py-motmetrics' scipy solver.

    Forbidden pairs get a cost larger than any feasible matching could add up to, so the
    most pairs are matched first; then they are dropped from the result.
    """
    valid = np.isfinite(costs)
    if not valid.any():
        return np.zeros(0, dtype=int), np.zeros(0, dtype=int)
    if not valid.all():
        c = np.abs(costs[valid]).max() + 1
        costs = np.where(valid, costs, 2 * min(costs.shape) * c + 1)
    rows, cols = linear_sum_assignment(costs)
    keep = valid[rows, cols]
    return rows[keep], cols[keep]


def _divide(a: float, b: float) -> float:
    """``a / b`` with numpy's rules for 0 (``x / 0 = inf``, ``0 / 0 = nan``), as motmetrics."""
    if b == 0:
        return math.nan if a == 0 else math.copysign(math.inf, a)
    return a / b


def mot_metrics(gt: Sequence, pred: Sequence, iou_threshold: float = 0.5) -> dict:
    """CLEAR-MOT and identity metrics of a tracker's output ``pred`` against ``gt``.

    Args:
        gt: one ``(ids: Tensor[K], boxes: Tensor[K, 4])`` per frame, boxes (x1, y1, x2, y2).
        pred: the tracker's output, one ``(ids, boxes)`` per frame (same number of frames).
        iou_threshold: least IoU for a ground-truth box and a predicted box to match.

    Returns:
        dict of floats: ``mota``, ``motp`` (mean ``1 - IoU`` of the matches), ``idf1``,
        ``idp``, ``idr``, ``precision``, ``recall``; and ints: ``id_switches``, ``fp``,
        ``fn``, ``tp`` (matches, switches included), ``num_objects`` (ground-truth boxes),
        ``num_predictions``, ``idtp``, ``idfp``, ``idfn``, ``fragmentations``,
        ``mostly_tracked``, ``partially_tracked``, ``mostly_lost``, ``num_frames``,
        ``num_unique_objects``. Ratios over nothing are NaN (``x / 0 = inf``) as in
        py-motmetrics, whose names are: mota, motp, idf1, idp, idr, precision, recall,
        num_switches, num_false_positives, num_misses, num_detections, num_objects,
        num_predictions, idtp, idfp, idfn, num_fragmentations, mostly_tracked,
        partially_tracked, mostly_lost, num_frames, num_unique_objects.
    """
    gt_frames = check_frames(gt, "gt")
    pred_frames = check_frames(pred, "pred")
    if len(gt_frames) != len(pred_frames):
        raise ValueError(f"gt and pred must have the same number of frames, got "
                         f"{len(gt_frames)} and {len(pred_frames)}")
    if not isinstance(iou_threshold, numbers.Real) or isinstance(iou_threshold, bool):
        raise TypeError(f"iou_threshold must be a float, got {iou_threshold!r}")
    if not 0 < iou_threshold <= 1:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")

    last_match: dict[int, int] = {}  # object id -> prediction id it was last matched to
    sum_dist, matches, switches, fps, fns = 0.0, 0, 0, 0, 0
    history: dict[int, list[bool]] = {}  # object id -> tracked? in each frame it appears
    obj_frames: dict[int, int] = {}  # frames in which each id appears (for IDF1)
    hyp_frames: dict[int, int] = {}
    pair_frames: dict[tuple[int, int], int] = {}  # frames where a pair may match
    for (g_ids, g_boxes), (p_ids, p_boxes) in zip(gt_frames, pred_frames, strict=True):
        oids, hids = g_ids.tolist(), p_ids.tolist()
        iou = box_iou(g_boxes.detach().double().cpu(), p_boxes.detach().double().cpu())
        iou = torch.nan_to_num(iou, nan=0.0).numpy()  # (G, P); two empty boxes: no overlap
        dist = np.where(iou >= iou_threshold, 1.0 - iou, np.nan)  # (G, P) as motmetrics
        for o in oids:
            obj_frames[o] = obj_frames.get(o, 0) + 1
        for h in hids:
            hyp_frames[h] = hyp_frames.get(h, 0) + 1
        for i, j in zip(*np.nonzero(np.isfinite(dist)), strict=True):
            key = (oids[i], hids[j])
            pair_frames[key] = pair_frames.get(key, 0) + 1

        o_done = np.zeros(len(oids), dtype=bool)
        h_done = np.zeros(len(hids), dtype=bool)
        if oids and hids:
            # 1. keep last frame's correspondences that are still valid
            h_index = {h: j for j, h in enumerate(hids)}
            for i, o in enumerate(oids):
                j = h_index.get(last_match.get(o))
                if j is not None and not h_done[j] and np.isfinite(dist[i, j]):
                    o_done[i] = h_done[j] = True
                    sum_dist += dist[i, j]
                    matches += 1
            # 2. Hungarian on the rest; a changed partner is an identity switch
            rest = dist.copy()
            rest[o_done, :] = np.nan
            rest[:, h_done] = np.nan
            for i, j in zip(*_lsa(rest), strict=True):
                o, h = oids[i], hids[j]
                if o in last_match and last_match[o] != h:
                    switches += 1
                else:
                    matches += 1
                last_match[o] = h
                o_done[i] = h_done[j] = True
                sum_dist += rest[i, j]
        fns += int((~o_done).sum())
        fps += int((~h_done).sum())
        for o, done in zip(oids, o_done.tolist(), strict=True):
            history.setdefault(o, []).append(done)

    num_objects = sum(obj_frames.values())
    num_predictions = sum(hyp_frames.values())
    tp = matches + switches

    # IDF1: the pairing of ids that maximises the frames where paired ids overlap
    o_list, h_list = sorted(obj_frames), sorted(hyp_frames)
    idtp = 0
    if o_list and h_list and pair_frames:
        o_pos = {o: r for r, o in enumerate(o_list)}
        h_pos = {h: c for c, h in enumerate(h_list)}
        overlap = np.zeros((len(o_list), len(h_list)))
        for (o, h), n in pair_frames.items():
            overlap[o_pos[o], h_pos[h]] = n
        rows, cols = linear_sum_assignment(overlap, maximize=True)
        idtp = int(overlap[rows, cols].sum())
    idfn, idfp = num_objects - idtp, num_predictions - idtp

    # fragmentations: tracked -> missed, between an object's first and last tracked frame
    fragmentations, mt, pt, ml = 0, 0, 0, 0
    for seq in history.values():
        ratio = sum(seq) / len(seq)
        mt += ratio >= 0.8
        pt += 0.2 <= ratio < 0.8
        ml += ratio < 0.2
        if any(seq):
            first = seq.index(True)
            last = len(seq) - 1 - seq[::-1].index(True)
            span = seq[first:last + 1]
            fragmentations += sum(a and not b for a, b in zip(span[:-1], span[1:], strict=True))

    return {
        "mota": 1.0 - _divide(fns + switches + fps, num_objects),
        "motp": _divide(sum_dist, tp),
        "idf1": _divide(2 * idtp, num_objects + num_predictions),
        "idp": _divide(idtp, idtp + idfp),
        "idr": _divide(idtp, idtp + idfn),
        "precision": _divide(tp, tp + fps),
        "recall": _divide(tp, num_objects),
        "id_switches": switches,
        "fp": fps,
        "fn": fns,
        "tp": tp,
        "num_objects": num_objects,
        "num_predictions": num_predictions,
        "idtp": idtp,
        "idfp": idfp,
        "idfn": idfn,
        "fragmentations": int(fragmentations),
        "mostly_tracked": int(mt),
        "partially_tracked": int(pt),
        "mostly_lost": int(ml),
        "num_frames": len(gt_frames),
        "num_unique_objects": len(obj_frames),
    }


COUNTS = ("fp", "fn", "id_switches", "tp", "num_objects", "num_predictions", "idtp", "idfp",
          "idfn", "fragmentations", "mostly_tracked", "partially_tracked", "mostly_lost",
          "num_frames", "num_unique_objects")


def combine_metrics(results: Sequence[dict]) -> dict:
    """The metrics of several sequences taken together, from their ``mot_metrics`` dicts.

    The counts add up and the ratios are recomputed from the sums (``MOTA = 1 - (FN + FP
    + IDSW) / GT`` over all sequences, MOTP weighted by matches, ...): the same numbers as
    ``mot_metrics`` on the sequences put end to end with ids kept apart (py-motmetrics'
    ``compute_many(..., generate_overall=True)``).
    """
    if isinstance(results, (str, bytes, dict)) or not isinstance(results, Sequence) \
            or not results:
        raise TypeError(f"results must be a non-empty list of mot_metrics dicts, got "
                        f"{describe(results)}")
    for i, r in enumerate(results):
        if not isinstance(r, dict) or any(k not in r for k in COUNTS + ("motp",)):
            raise TypeError(f"results[{i}] must be a dict returned by mot_metrics, got "
                            f"{describe(r)}")
    total = {k: int(sum(r[k] for r in results)) for k in COUNTS}
    sum_dist = sum(r["motp"] * r["tp"] for r in results if r["tp"])
    n, p, idtp = total["num_objects"], total["num_predictions"], total["idtp"]
    return {
        "mota": 1.0 - _divide(total["fn"] + total["id_switches"] + total["fp"], n),
        "motp": _divide(sum_dist, total["tp"]),
        "idf1": _divide(2 * idtp, n + p),
        "idp": _divide(idtp, idtp + total["idfp"]),
        "idr": _divide(idtp, idtp + total["idfn"]),
        "precision": _divide(total["tp"], total["tp"] + total["fp"]),
        "recall": _divide(total["tp"], n),
        **total,
    }
