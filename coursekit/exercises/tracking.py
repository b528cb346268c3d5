"""Graders for lesson 12 (Lab 3: detection and tracking in video).

* ``check_transition_matrix(fn)``: derive SORT's 7 x 7 constant-velocity matrix ``F``
  from the 1-D case, compared with ``BoxKalmanFilter().F``.
* ``check_hand_mota(fn)``: "compute before you run" — FN, FP, identity switches and MOTA
  of the small case ``hand_case()`` worked by hand, compared with ``mot_metrics``.
* ``check_max_age_prediction(fn)``: "predict, then measure" — identity switches when an
  object is hidden for ``GAP`` frames, with ``max_age`` 1 and 5, compared with
  ``measure_occlusion_switches`` (the tracker run on that case).

Each ``check_*(fn)`` calls the student's function, prints one verdict line (✅ / ❌ with a
hint, never the answer) and returns whether it passed.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import torch
from torch import Tensor

from coursekit.exercises.verdict import report, run_student
from coursekit.tracking.kalman import BoxKalmanFilter
from coursekit.tracking.metrics import mot_metrics
from coursekit.tracking.tracker import Tracker
from coursekit.validators import describe, shape_str

__all__ = ["GAP", "check_hand_mota", "check_max_age_prediction", "check_transition_matrix",
           "hand_case", "measure_occlusion_switches", "occlusion_detections"]

GAP = 3  # frames in which the object of the max_age exercise is hidden


def check_transition_matrix(fn: Callable) -> bool:
    """Grade ``fn() -> Tensor[7, 7]``: ``F`` with ``x_next = F x`` for the state
    ``(cx, cy, s, r, vx, vy, vs)`` (SORT: the aspect ratio r has no velocity)."""
    expected = BoxKalmanFilter().F
    got, error = run_student(fn)
    if error:
        return report(False, "transition matrix F", error)
    if not isinstance(got, Tensor) or tuple(got.shape) != (7, 7):
        return report(False, f"F should be a Tensor[7, 7], got {shape_str(got)}",
                      "one row and one column per state entry (cx, cy, s, r, vx, vy, vs)")
    F = got.detach().double().cpu()
    if torch.equal(F, expected):
        return report(True, "F adds each velocity to its quantity once per frame")
    if torch.equal(F, expected.T):
        hint = "row i of F says how the NEW entry i is made from the old ones (x_next = F x)"
    elif torch.equal(F, torch.eye(7, dtype=torch.float64)):
        hint = "with F = I nothing moves: where does cx go in one frame at velocity vx?"
    elif not torch.equal(F.diagonal(), torch.ones(7, dtype=torch.float64)):
        hint = "every entry keeps its old value (1 on the diagonal), velocities included"
    elif float(F[3, 4:].abs().sum()) > 0 or float(F[3].sum()) != 1:
        hint = "the aspect ratio r has no velocity in SORT's state: its row is plain"
    else:
        hint = "like the 1-D [[1, 1], [0, 1]]: cx += vx, cy += vy, s += vs"
    return report(False, "F is not SORT's constant-velocity matrix", hint)


def _box(x: float, y: float = 0.0, w: float = 4.0, h: float = 4.0) -> list[float]:
    return [x, y, x + w, y + h]


def _frame(ids: list[int], boxes: list[list[float]]) -> tuple[Tensor, Tensor]:
    return (torch.tensor(ids, dtype=torch.long),
            torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4))


def hand_case() -> tuple[list, list]:
    """The small case of ``check_hand_mota``: ``(gt, pred)``, 4 frames, two objects.

    Object 1 walks right, object 2 stands still far away. The tracker's id 11 follows
    object 1 except in frame 2 (no box: a miss) and frame 3 (id 13 instead: a switch);
    id 12 follows object 2; in frame 1 a box (id 14) covers nothing (a false positive).
    Each true pair overlaps with IoU 1.
    """
    gt = [_frame([1, 2], [_box(0), _box(40)]), _frame([1, 2], [_box(2), _box(40)]),
          _frame([1, 2], [_box(4), _box(40)]), _frame([1, 2], [_box(6), _box(40)])]
    pred = [_frame([11, 12], [_box(0), _box(40)]),
            _frame([11, 12, 14], [_box(2), _box(40), _box(20, 20)]),
            _frame([12], [_box(40)]),
            _frame([13, 12], [_box(6), _box(40)])]
    return gt, pred


def check_hand_mota(fn: Callable) -> bool:
    """Grade ``fn() -> {"fn": int, "fp": int, "id_switches": int, "mota": float}``,
    worked out by hand for ``hand_case()`` (MOTA within 1e-3)."""
    gt, pred = hand_case()
    m = mot_metrics(gt, pred)
    got, error = run_student(fn)
    if error:
        return report(False, "hand-worked MOTA", error)
    keys = ("fn", "fp", "id_switches", "mota")
    if not isinstance(got, dict) or any(k not in got for k in keys):
        return report(False, f"return a dict with keys {list(keys)}, got {describe(got)}"
                             + (f" with keys {sorted(got)}" if isinstance(got, dict) else ""),
                      "e.g. {'fn': 0, 'fp': 0, 'id_switches': 0, 'mota': 1.0}")
    if any(isinstance(got[k], bool) or not isinstance(got[k], numbers.Real) for k in keys):
        return report(False, f"the four values must be numbers, got {got}")
    wrong = [k for k in keys[:3] if got[k] != m[k]]
    if wrong:
        hints = {"fn": "a miss is a ground-truth box that no predicted box is matched to",
                 "fp": "a false positive is a predicted box matched to no ground-truth box",
                 "id_switches": "a switch is a ground-truth object matched to a different "
                                "predicted id than the last time it was matched (a frame "
                                "in between without a match does not reset it)"}
        return report(False, f"{', '.join(wrong)} not right (got "
                             + ", ".join(f"{k} = {got[k]}" for k in wrong) + ")",
                      hints[wrong[0]])
    total = sum(len(ids) for ids, _ in gt)
    if not math.isclose(float(got["mota"]), m["mota"], abs_tol=1e-3):
        return report(False, f"the counts are right but MOTA = {float(got['mota']):.4f} is not",
                      f"MOTA = 1 - (FN + FP + IDSW) / GT, with GT = {total} ground-truth boxes "
                      f"over all frames")
    return report(True, f"FN = {m['fn']}, FP = {m['fp']}, IDSW = {m['id_switches']}, "
                        f"MOTA = {m['mota']:.4f}")


def occlusion_detections(gap: int = GAP, frames: int = 14) -> tuple[list, list[Tensor]]:
    """One object walking right at 1 px per frame, not detected in ``gap`` frames from
    frame 5 on (it is behind something). Returns ``(gt, detections)``: the ground truth
    counts it only where it is detected (it is hidden otherwise)."""
    gt, dets = [], []
    for t in range(frames):
        hidden = 5 <= t < 5 + gap
        box = [_box(10.0 + t, 10.0, 8.0, 16.0)] if not hidden else []
        gt.append(_frame([1] * len(box), box))
        dets.append(torch.tensor(box, dtype=torch.float64).reshape(-1, 4))
    return gt, dets


def measure_occlusion_switches(max_age: int, gap: int = GAP) -> int:
    """Identity switches of ``Tracker(max_age=max_age, min_hits=1)`` on
    ``occlusion_detections(gap)``."""
    gt, dets = occlusion_detections(gap)
    tracker = Tracker(max_age=max_age, min_hits=1)
    pred = [tracker.update(d) for d in dets]
    return mot_metrics(gt, pred)["id_switches"]


def check_max_age_prediction(fn: Callable) -> bool:
    """Grade a prediction ``fn() -> {1: n1, 5: n5}``: the identity switches when the object
    of ``occlusion_detections`` is hidden for ``GAP`` frames, with ``max_age`` 1 and 5."""
    got, error = run_student(fn)
    if error:
        return report(False, "your prediction", error)
    if not isinstance(got, dict) or set(got) != {1, 5} or any(
            isinstance(v, bool) or not isinstance(v, numbers.Integral) for v in got.values()):
        return report(False, f"return a dict {{1: switches, 5: switches}} of ints, got "
                             f"{describe(got)}" + (f" {got}" if isinstance(got, dict) else ""),
                      "keys are the max_age values 1 and 5")
    measured = {a: measure_occlusion_switches(a) for a in (1, 5)}
    what = (f"you predicted {got[1]} and {got[5]} switches for max_age 1 and 5, measured "
            f"{measured[1]} and {measured[5]}")
    if got == measured:
        return report(True, what)
    if got[1] != measured[1]:
        hint = (f"max_age = 1 deletes a track after more than 1 frame without a match; the "
                f"object is gone for {GAP}: which id does it get when it comes back?")
    else:
        hint = (f"with max_age = 5 the track survives {GAP} missed frames, and the Kalman "
                f"filter keeps moving its box at the learnt velocity")
    return report(False, what, hint)
