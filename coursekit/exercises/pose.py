"""Graders for lesson 07's exercises: keypoint-head targets, OKS, and the flip index.

* ``check_keypoints_to_heatmap(fn)`` — derive the cell of a keypoint in its RoI's
  ``heatmap_size × heatmap_size`` grid, with the box-edge and invalid cases
  (compared with ``coursekit.pose.keypoints_to_heatmap``, itself equal to torchvision's).
* ``check_oks(fn)`` — OKS of one detected pose against one ground-truth person
  (compared with ``coursekit.pose.oks``, itself equal to pycocotools').
* ``check_flip_ap_prediction(fn)`` — "predict before you run": the keypoint AP of perfect
  poses flipped back **without** the flip index, measured by ``measure_flip_ap``.

Each ``check_*(fn)`` calls the student's function on fixed cases, prints one verdict line
(✅ / ❌ with a hint, never the solution) and returns whether it passed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from coursekit.exercises.verdict import report, run_student
from coursekit.pose.coco_keypoints import COCO_FLIP_INDEX, COCO_SIGMAS, NUM_KEYPOINTS
from coursekit.pose.flip import flip_keypoints
from coursekit.pose.heatmaps import keypoints_to_heatmap
from coursekit.pose.oks import oks
from coursekit.validators import describe, shape_str

__all__ = ["FLIP_SEEDS", "check_flip_ap_prediction", "check_keypoints_to_heatmap", "check_oks",
           "measure_flip_ap"]


# ---- exercise 1: the keypoint head's targets ------------------------------------------------

def _heatmap_cases() -> list[tuple[str, Tensor, Tensor, int]]:
    """(label, keypoints Tensor[N, K, 3], rois Tensor[N, 4], heatmap_size)."""
    # box 28 px wide and 14 px tall: 2 cells per pixel across, 4 down, in a 56 x 56 grid
    roi = torch.tensor([[10.0, 20.0, 38.0, 34.0]], dtype=torch.float64)
    hand = torch.tensor([[[17.3, 25.6, 2],    # inside: column 14, row 22
                          [10.0, 20.0, 2],    # the top-left corner: cell (0, 0)
                          [38.0, 27.0, 2],    # on the right edge x = x2: the last column
                          [24.0, 34.0, 1],    # on the bottom edge y = y2: the last row
                          [38.0, 34.0, 2],    # the bottom-right corner
                          [9.9, 25.0, 2],     # just left of the box: not valid
                          [20.0, 34.2, 2],    # just below it: not valid
                          [20.0, 25.0, 0]]],  # not labelled: not valid
                        dtype=torch.float64)  # fmt: skip
    g = torch.Generator().manual_seed(7)
    xy = torch.rand(6, 2, generator=g, dtype=torch.float64) * 40
    rois = torch.cat([xy, xy + torch.rand(6, 2, generator=g, dtype=torch.float64) * 30 + 5], 1)
    kp = torch.rand(6, NUM_KEYPOINTS, 3, generator=g, dtype=torch.float64) * 80 - 5
    kp[..., 2] = torch.randint(0, 3, (6, NUM_KEYPOINTS), generator=g).double()
    kp[0, 3, 0], kp[1, 4, 1] = rois[0, 2], rois[1, 3]  # two more keypoints on an edge
    kp[2, 5, :2] = rois[2, 2:]
    return [("the hand-made case (box (10, 20, 38, 34), 56 x 56)", hand, roi, 56),
            ("6 random RoIs and 17 keypoints each, 56 x 56", kp, rois, 56),
            ("the same RoIs with a 7 x 7 grid", kp, rois, 7)]


def _as_long(t: object) -> Tensor | None:
    if not isinstance(t, Tensor) or t.is_complex() or t.is_floating_point() and not bool(
            (t == t.round()).all()):
        return None
    return t.detach().cpu().long()


def _cells(keypoints: Tensor, rois: Tensor, size: int, edge: bool = True, floor: bool = True,
           row_major: bool = True, use_v: bool = True) -> tuple[Tensor, Tensor]:
    """``keypoints_to_heatmap`` with one of the usual mistakes switched on (for the hints)."""
    rounding = torch.floor if floor else torch.round
    sx = size / (rois[:, 2, None] - rois[:, 0, None])
    sy = size / (rois[:, 3, None] - rois[:, 1, None])
    col = rounding((keypoints[..., 0] - rois[:, 0, None]) * sx).long()
    row = rounding((keypoints[..., 1] - rois[:, 1, None]) * sy).long()
    if edge:
        col = torch.where(keypoints[..., 0] == rois[:, 2, None], size - 1, col)
        row = torch.where(keypoints[..., 1] == rois[:, 3, None], size - 1, row)
    valid = (col >= 0) & (row >= 0) & (col < size) & (row < size)
    if use_v:
        valid &= keypoints[..., 2] > 0
    index = row * size + col if row_major else col * size + row
    return index * valid, valid.long()


def _heatmap_hint(keypoints: Tensor, rois: Tensor, size: int, targets: Tensor,
                  valid: Tensor) -> str:
    """Name the likely mistake from the student's (targets, valid)."""
    mistakes = [
        ({"edge": False}, "look at a keypoint exactly on the box's right or bottom edge "
                          "(x = x2): floor((x - x1) * size / w) = size there, one past the "
                          "grid; it belongs to the last column (row)"),
        ({"floor": False}, "a keypoint belongs to the cell it falls in: floor, not round"),
        ({"row_major": False}, "the flattened index is row * size + column (row-major), "
                               "not column * size + row"),
        ({"use_v": False}, "a keypoint with v = 0 is not labelled: it is never a valid target"),
    ]
    for kwargs, hint in mistakes:
        t, v = _cells(keypoints, rois, size, **kwargs)
        if torch.equal(targets, t) and torch.equal(valid, v):
            return hint
    exp_t, exp_v = keypoints_to_heatmap(keypoints, rois, size)
    if not torch.equal(valid, exp_v):
        return ("a keypoint is valid only when labelled (v > 0) and its cell is inside the "
                "grid: 0 <= column < size and 0 <= row < size, the box's edges included")
    if not torch.equal(targets * valid, exp_t):
        return ("column = floor((x - x1) * size / (x2 - x1)): measure from the box's corner, "
                "in cells of the box's own width (and height for the row)")
    return "where the keypoint is not valid, its target should be 0"


def check_keypoints_to_heatmap(fn: Callable) -> bool:
    """Grade ``fn(keypoints, rois, heatmap_size) -> (targets, valid)``.

    ``keypoints`` Tensor[N, K, 3] (x, y, v), ``rois`` Tensor[N, 4], ``heatmap_size`` int;
    ``targets`` int64 Tensor[N, K] (``row * size + column``, 0 where not valid), ``valid``
    Tensor[N, K] of 0 / 1 (or bool). Compared with ``coursekit.pose.keypoints_to_heatmap``.
    """
    for label, keypoints, rois, size in _heatmap_cases():
        exp_t, exp_v = keypoints_to_heatmap(keypoints, rois, size)
        result, error = run_student(fn, keypoints.clone(), rois.clone(), size)
        if error:
            return report(False, f"{label}: {error}", "read the error and the line it points to")
        if not isinstance(result, tuple | list) or len(result) != 2:
            return report(False, f"{label}: expected a pair (targets, valid), "
                                 f"got {describe(result)}",
                          "return targets, valid")
        targets, valid = (_as_long(t) for t in result)
        if targets is None or valid is None or targets.shape != exp_t.shape or \
                valid.shape != exp_v.shape:
            return report(False, f"{label}: expected two integer tensors of shape "
                                 f"{shape_str(exp_t)} (N, K), got {describe(result[0])} and "
                                 f"{describe(result[1])}",
                          "one cell index and one 0/1 flag per keypoint of each RoI")
        if torch.equal(targets, exp_t) and torch.equal(valid, exp_v):
            continue
        hint = _heatmap_hint(keypoints, rois, size, targets, valid)
        n = int(((targets != exp_t) | (valid != exp_v)).sum())
        return report(False, f"{label}: {n} of {exp_t.numel()} keypoints get a wrong target "
                             f"or flag", hint)
    return report(True, "keypoints_to_heatmap gives torchvision's targets on every case, "
                        "the box edges included")


# ---- exercise 2: OKS --------------------------------------------------------------------------

def _oks_cases() -> list[tuple[str, Tensor, Tensor, float]]:
    """(label, gt Tensor[17, 3], dt Tensor[17, 3], area)."""
    gt = torch.zeros(NUM_KEYPOINTS, 3, dtype=torch.float64)
    gt[:, 0] = torch.arange(NUM_KEYPOINTS, dtype=torch.float64) * 2 + 10
    gt[:, 1] = 30.0
    gt[:, 2] = 2
    dt = gt.clone()
    dt[9, 0] += 3.0  # the left wrist 3 px off
    g = torch.Generator().manual_seed(11)
    gt2 = torch.rand(NUM_KEYPOINTS, 3, generator=g, dtype=torch.float64) * 60
    gt2[:, 2] = torch.tensor([2, 0, 1, 2, 2, 0, 2, 1, 2, 2, 0, 2, 2, 1, 2, 0, 2],
                             dtype=torch.float64)
    dt2 = gt2 + torch.randn(NUM_KEYPOINTS, 3, generator=g, dtype=torch.float64) * 2
    return [("one keypoint 3 px off, area 400", gt, dt, 400.0),
            ("random pose with unlabelled keypoints, area 900", gt2, dt2, 900.0),
            ("the same pose, area 2500", gt2, dt2 * 1.02, 2500.0)]


def _oks_variant(gt: Tensor, dt: Tensor, area: float, kappa_factor: float = 2.0,
                 all_k: bool = False, scale_power: float = 2.0, half: bool = True) -> float:
    sig = torch.tensor(COCO_SIGMAS, dtype=torch.float64)
    d2 = ((dt[:, :2] - gt[:, :2]) ** 2).sum(1)
    s2 = area if scale_power == 2.0 else math.sqrt(area)
    e = torch.exp(-d2 / ((2.0 if half else 1.0) * s2 * (kappa_factor * sig) ** 2))
    counted = torch.ones_like(e, dtype=torch.bool) if all_k else gt[:, 2] > 0
    return float(e[counted].sum() / (NUM_KEYPOINTS if all_k else counted.sum()))


def check_oks(fn: Callable) -> bool:
    """Grade ``fn(gt, dt, area) -> float``: OKS of one pose ``dt`` Tensor[17, 3] against one
    ground truth ``gt`` Tensor[17, 3] of area ``area`` (COCO's sigmas), within 1e-6."""
    for label, gt, dt, area in _oks_cases():
        expected = float(oks(gt[None], dt[None], torch.tensor([area], dtype=torch.float64))[0, 0])
        result, error = run_student(fn, gt.clone(), dt.clone(), area)
        if error:
            return report(False, f"{label}: {error}", "read the error and the line it points to")
        if isinstance(result, Tensor) and result.numel() == 1:
            result = float(result)
        if isinstance(result, bool) or not isinstance(result, numbers.Real):
            return report(False, f"{label}: expected a number, got {describe(result)}",
                          "return the OKS as a float (or a one-element tensor)")
        got = float(result)
        if abs(got - expected) <= 1e-6:
            continue
        variants = [
            ({"kappa_factor": 1.0}, "κ_k is twice COCO's σ_k: κ_k = 2 σ_k"),
            ({"all_k": True}, "average over the labelled keypoints only (v > 0), not all 17"),
            ({"scale_power": 1.0}, "s² is the area itself (in px²); do not take its root"),
            ({"half": False}, "the exponent is d² / (2 s² κ²): keep the 2"),
        ]
        hint = "OKS = mean over labelled k of exp(-d_k² / (2 s² κ_k²)), κ_k = 2 σ_k, s² = area"
        for kwargs, text in variants:
            if abs(got - _oks_variant(gt, dt, area, **kwargs)) <= 1e-6:
                hint = text
                break
        return report(False, f"{label}: your OKS {got:.4f}, expected {expected:.4f}", hint)
    return report(True, "OKS matches COCO's (pycocotools') definition on every case")


# ---- exercise 3: predict before you run: flipping without the flip index --------------------

FLIP_SEEDS = range(3_000_000, 3_000_100)  # 100 held-out scenes (HELD_OUT_START)


def measure_flip_ap(flip_index: Sequence[int] = COCO_FLIP_INDEX, seeds: Sequence[int] = FLIP_SEEDS,
                    size: int = 96) -> dict[str, float]:
    """Keypoint AP of perfect poses that went through a flip and back.

    Each ground-truth person of the scenes is mirrored with ``COCO_FLIP_INDEX`` (a perfect
    prediction on the flipped image) and mirrored back with ``flip_index``: with COCO's
    index this gives the truth again, with ``range(17)`` left and right stay swapped.
    Returns ``{"ap", "ap50", "mean_oks"}`` (ours, ``evaluate_keypoints``; mean OKS of each
    person with its own flipped-back pose).
    """
    from coursekit.data.shapesworld import render_batch
    from coursekit.pose.evaluate import evaluate_keypoints

    batch = render_batch(list(seeds), size=size)
    preds, gts, sims = [], [], []
    for j in range(len(batch)):
        rows = batch.person_index[j]
        truth = batch.keypoints[j].double()  # (P, 17, 3)
        back = flip_keypoints(flip_keypoints(truth, size), size, flip_index)
        back[..., 2] = 1  # a prediction names every keypoint
        boxes, labels = batch.boxes[j][rows], batch.labels[j][rows]
        preds.append({"boxes": boxes, "labels": labels, "scores": torch.ones(len(rows)),
                      "keypoints": back})
        masks = batch.masks[j][rows]
        gts.append({"boxes": boxes, "labels": labels, "masks": masks, "keypoints": truth,
                    "iscrowd": batch.iscrowd[j][rows]})
        if len(rows):
            area = masks.flatten(1).sum(1).double()
            sims.append(oks(truth, back, area, gt_boxes=boxes.double()).diagonal())
    result = evaluate_keypoints(preds, gts)
    return {"ap": float(result["ap"]), "ap50": float(result["ap50"]),
            "mean_oks": float(torch.cat(sims).mean())}


def check_flip_ap_prediction(fn: Callable, measured: dict[str, float] | None = None) -> bool:
    """Grade a prediction ``fn() -> float``: the keypoint AP (OKS 0.5:0.95) of perfect poses
    flipped back without the flip index (``measure_flip_ap(range(17))``); a prediction within
    0.1 of the measurement passes. ``measured``: that measurement, if already made."""
    got, error = run_student(fn)
    if error is not None:
        return report(False, f"your prediction: {error}", "return the AP you expect, a number")
    if isinstance(got, bool) or not isinstance(got, numbers.Real) or not 0 <= got <= 1:
        return report(False, f"the prediction should be an AP, a number in [0, 1], "
                             f"got {describe(got)}", "e.g. 0.5")
    if measured is None:
        measured = measure_flip_ap(list(range(NUM_KEYPOINTS)))
    ap = measured["ap"]
    what = f"you predicted AP {float(got):.2f}, measured {ap:.2f}"
    if abs(float(got) - ap) <= 0.1:
        return report(True, what)
    if got > ap:
        hint = ("only the nose keeps its place; compare how far apart a left and a right "
                "keypoint are with κ_k·s, and count how many terms stay near 1")
    else:
        hint = ("some keypoints hardly move when left and right swap: which, and what "
                "OKS does that give?")
    return report(False, what, hint)
