"""SORT: a simple online tracker built from a detector's boxes (Bewley et al., 2016).

Lecture: *Spatio-temporal detection and tracking* — detect objects of interest in
every frame and track them over time. SORT links per-frame detections into tracks
with nothing but boxes. For every new frame::

    1. predict   each track's box in this frame (Kalman filter, coursekit.tracking.kalman)
    2. match     detections to predicted boxes: Hungarian algorithm maximising the total
                 IoU over pairs with IoU >= iou_threshold
    3. update    matched tracks with their detection (Kalman correction)
    4. birth     an unmatched detection starts a new track (a new id); it is reported
                 once it has been matched in min_hits consecutive frames (every track is
                 reported in the first min_hits frames of the video)
    5. death     a track unmatched for more than max_age frames is deleted

A track is reported only in the frames where it was matched (its corrected box).

Difference from the reference ``sort.py``: it runs the Hungarian algorithm on the raw
IoU and drops the pairs below the threshold afterwards; here pairs below the threshold
are excluded first, so a weak pair never takes the place of a valid one. The two agree
whenever each detection overlaps at most one track above the threshold (``sort.py``'s
own shortcut). IoU is ``coursekit.detection.box_iou``; the matching is
``scipy.optimize.linear_sum_assignment``.

Tested in tests/tracking/test_tracker.py.
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment
from torch import Tensor

from coursekit.detection import box_iou
from coursekit.tracking.kalman import BoxKalmanFilter
from coursekit.validators import check_boxes, describe, positive_int, require_floating

__all__ = ["Tracker", "match_boxes"]


def match_boxes(iou: Tensor, iou_threshold: float) -> tuple[Tensor, Tensor]:
    """Pairs ``(rows, cols)`` maximising the summed IoU among pairs with IoU >= threshold.

    Args:
        iou: Tensor[D, M] (detections x tracks); NaN counts as no overlap.
        iou_threshold: the least IoU of a pair.

    Returns:
        two int64 Tensor[K] on iou's device, rows ascending.
    """
    require_floating(iou, "iou", "a floating-point Tensor[D, M]")
    if not isinstance(iou_threshold, numbers.Real) or isinstance(iou_threshold, bool):
        raise TypeError(f"iou_threshold must be a float, got {iou_threshold!r}")
    if iou.dim() != 2:
        raise ValueError(f"iou must be Tensor[D, M], got {describe(iou)}")
    empty = torch.zeros(0, dtype=torch.long, device=iou.device)
    if iou.numel() == 0:
        return empty, empty
    gain = iou.detach().double().cpu().numpy()
    valid = gain >= iou_threshold  # NaN -> False
    if not valid.any():
        return empty, empty
    gain = np.where(valid, gain, 0.0)  # a pair below the threshold is worth no pair
    rows, cols = linear_sum_assignment(gain, maximize=True)
    keep = valid[rows, cols]
    return (torch.as_tensor(rows[keep], dtype=torch.long, device=iou.device),
            torch.as_tensor(cols[keep], dtype=torch.long, device=iou.device))


class Tracker:
    """SORT-style multi-object tracker: ``ids, boxes = tracker.update(detections)`` per frame.

    Args:
        max_age: a track unmatched for more than this many frames is deleted (SORT: 1).
        min_hits: matches in a row before a new track is reported (SORT: 3).
        iou_threshold: least IoU between a detection and a predicted box (SORT: 0.3).
        min_score: with ``scores`` given, detections scoring below it are ignored.

    Ids start at 1 (MOTChallenge's convention) and are never reused. Call ``update``
    once per frame, with an empty ``Tensor[0, 4]`` when nothing is detected.
    """

    def __init__(self, *, max_age: int = 1, min_hits: int = 3, iou_threshold: float = 0.3,
                 min_score: float | None = None) -> None:
        self.max_age = positive_int(max_age, "max_age", minimum=0)
        self.min_hits = positive_int(min_hits, "min_hits", minimum=0)
        if not isinstance(iou_threshold, numbers.Real) or isinstance(iou_threshold, bool):
            raise TypeError(f"iou_threshold must be a float, got {iou_threshold!r}")
        if not 0 < iou_threshold <= 1:
            raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold!r}")
        self.iou_threshold = float(iou_threshold)
        if min_score is not None and (not isinstance(min_score, numbers.Real)
                                      or isinstance(min_score, bool)):
            raise TypeError(f"min_score must be a float or None, got {min_score!r}")
        self.min_score = min_score
        self.kf = BoxKalmanFilter()
        self.reset()

    def reset(self) -> None:
        """Forget every track; the next frame is frame 1 and ids start at 1 again."""
        self.frame_count = 0
        self.next_id = 1
        self.ids: list[int] = []
        self.mean: Tensor | None = None  # (M, 7) Kalman states of the live tracks
        self.cov: Tensor | None = None  # (M, 7, 7)
        self.hits: list[int] = []  # matches so far
        self.hit_streak: list[int] = []  # matches in consecutive frames
        self.time_since_update: list[int] = []  # frames since the last match
        # (ids Tensor[M], boxes Tensor[M, 4]): where step 1 of the last frame predicted them
        self.last_prediction: tuple[Tensor, Tensor] | None = None

    def __len__(self) -> int:
        """Number of live tracks (reported or not)."""
        return len(self.ids)

    def _check(self, boxes: object, scores: object) -> tuple[Tensor, Tensor | None]:
        check_boxes(boxes, floating=True)
        if scores is None:
            return boxes, None
        require_floating(scores, "scores", "a floating-point Tensor[K] (one per box)")
        if scores.dim() != 1 or scores.shape[0] != boxes.shape[0]:
            raise ValueError(f"scores must be Tensor[K] with K = {boxes.shape[0]} (one per box), "
                             f"got {describe(scores)}")
        return boxes, scores

    def update(self, boxes: Tensor, scores: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Take one frame's detections; return the tracks reported in this frame.

        Args:
            boxes: Tensor[K, 4] detections (x1, y1, x2, y2), floating point.
            scores: optional Tensor[K] (used with ``min_score``).

        Returns:
            (ids: int64 Tensor[J] ascending, boxes: Tensor[J, 4] in ``boxes``' dtype and
            device): the Kalman-corrected box of every reported track.
        """
        boxes, scores = self._check(boxes, scores)
        if scores is not None and self.min_score is not None:
            boxes = boxes[scores >= self.min_score]
        if self.mean is None:
            wide = torch.promote_types(boxes.dtype, torch.float32)
            self.mean = boxes.new_zeros((0, 7), dtype=wide)
            self.cov = boxes.new_zeros((0, 7, 7), dtype=wide)
        dets = boxes.to(dtype=self.mean.dtype, device=self.mean.device)  # (K, 4)
        self.frame_count += 1

        # 1. predict every track into this frame
        if self.ids:
            self.mean, self.cov = self.kf.predict(self.mean, self.cov)
            self.hit_streak = [0 if t > 0 else h
                               for h, t in zip(self.hit_streak, self.time_since_update,
                                               strict=True)]
            self.time_since_update = [t + 1 for t in self.time_since_update]
            predicted = self.kf.to_boxes(self.mean)  # (M, 4)
            ok = ~predicted.isnan().any(dim=1)
            if not bool(ok.all()):  # a degenerate box: drop the track (as sort.py)
                self._keep(ok)
                predicted = predicted[ok]
        else:
            predicted = dets.new_zeros((0, 4))
        self.last_prediction = (torch.as_tensor(self.ids, dtype=torch.long),
                                predicted.to(boxes.dtype).to(boxes.device))

        # 2. match detections (rows) to tracks (columns)
        rows, cols = match_boxes(box_iou(dets, predicted), self.iou_threshold)

        # 3. update matched tracks
        if rows.numel():
            m, c = self.kf.update(self.mean[cols], self.cov[cols], dets[rows])
            self.mean, self.cov = self.mean.index_copy(0, cols, m), self.cov.index_copy(0, cols, c)
            for j in cols.tolist():
                self.time_since_update[j] = 0
                self.hits[j] += 1
                self.hit_streak[j] += 1

        # 4. birth: every unmatched detection starts a track
        new = torch.ones(dets.shape[0], dtype=torch.bool, device=dets.device)
        new[rows] = False
        if bool(new.any()):
            m, c = self.kf.initiate(dets[new])
            self.mean, self.cov = torch.cat([self.mean, m]), torch.cat([self.cov, c])
            k = m.shape[0]
            self.ids += list(range(self.next_id, self.next_id + k))
            self.next_id += k
            self.hits += [0] * k
            self.hit_streak += [0] * k
            self.time_since_update += [0] * k

        # report the tracks matched (or born) in this frame that are confirmed
        early = self.frame_count <= self.min_hits
        report = [i for i in range(len(self.ids)) if self.time_since_update[i] < 1
                  and (self.hit_streak[i] >= self.min_hits or early)]
        index = torch.as_tensor(report, dtype=torch.long, device=self.mean.device)
        out_ids = torch.as_tensor([self.ids[i] for i in report], dtype=torch.long)
        out_boxes = self.kf.to_boxes(self.mean[index])  # (J, 4)

        # 5. death
        alive = torch.as_tensor([t <= self.max_age for t in self.time_since_update],
                                dtype=torch.bool)
        if not bool(alive.all()):
            self._keep(alive.to(self.mean.device))
        return out_ids.to(boxes.device), out_boxes.to(dtype=boxes.dtype, device=boxes.device)

    def _keep(self, keep: Tensor) -> None:
        """Keep the tracks where ``keep`` (bool Tensor[M]) is True."""
        flags = keep.tolist()
        self.mean, self.cov = self.mean[keep], self.cov[keep]
        for name in ("ids", "hits", "hit_streak", "time_since_update"):
            setattr(self, name, [v for v, f in zip(getattr(self, name), flags, strict=True) if f])
