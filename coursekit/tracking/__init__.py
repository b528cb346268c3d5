"""Detection + tracking in video (lecture: *Spatio-temporal detection and tracking*).

* ``BoxKalmanFilter``, ``kalman_predict``, ``kalman_update``, ``box_to_measurement``,
  ``measurement_to_box`` — SORT's constant-velocity Kalman filter on boxes (kalman.py)
* ``Tracker``, ``match_boxes`` — SORT: predict, Hungarian matching on IoU, update,
  birth and death of tracks (tracker.py)
* ``mot_metrics``, ``combine_metrics`` — MOTA, MOTP, IDF1, identity switches, ... as
  py-motmetrics, per sequence and over several (metrics.py)
* ``to_mot_lines``, ``from_mot_lines`` — MOTChallenge text files (motchallenge.py)
* ``detect_frames``, ``noisy_detections``, ``run_tracker`` — per-frame detections from a
  detector or from noisy ground truth, and a tracker run over them (detections.py)
* ``ActionTube``, ``action_tubes``, ``motion_label``, ``tube_label_accuracy`` — tubes of
  boxes linked over time with an action label (tube.py)

A frame's tracks are ``(ids: int64 Tensor[K], boxes: Tensor[K, 4])``, boxes
``(x1, y1, x2, y2)``; a sequence is a list with one such pair per frame.
"""

from coursekit.tracking.detections import detect_frames, noisy_detections, run_tracker
from coursekit.tracking.kalman import (
    BoxKalmanFilter,
    box_to_measurement,
    kalman_predict,
    kalman_update,
    measurement_to_box,
)
from coursekit.tracking.metrics import check_frames, combine_metrics, mot_metrics
from coursekit.tracking.motchallenge import from_mot_lines, to_mot_lines
from coursekit.tracking.tracker import Tracker, match_boxes
from coursekit.tracking.tube import (
    TUBE_ACTIONS,
    ActionTube,
    action_tubes,
    motion_label,
    tube_label_accuracy,
)

__all__ = [
    "TUBE_ACTIONS",
    "ActionTube",
    "BoxKalmanFilter",
    "Tracker",
    "action_tubes",
    "box_to_measurement",
    "check_frames",
    "combine_metrics",
    "detect_frames",
    "from_mot_lines",
    "kalman_predict",
    "kalman_update",
    "match_boxes",
    "measurement_to_box",
    "mot_metrics",
    "motion_label",
    "noisy_detections",
    "run_tracker",
    "to_mot_lines",
    "tube_label_accuracy",
]
