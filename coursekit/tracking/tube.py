"""Spatio-temporal detection: action tubes — boxes linked over time, with an action label.

Lecture: *Spatio-temporal detection and tracking* — detect objects of interest in frames
1 ... N and follow them: the output for one object is a **tube**, its box in every frame
where it is seen, and spatio-temporal *action* detection labels the tube with what the
object does.

Here the tubes are a tracker's ids: ``action_tubes(tracks)`` collects, for every id, the
frames it was reported in and its boxes there. The label comes from a deliberately simple
rule on the tube's motion, not from a learnt classifier: fit straight lines
``x(t) = a + v t`` to the box's left edge and to its right edge by least squares, take
the faster of the two slopes as ``vx`` (a box cut by the image border or by an occluder
shrinks from one side, and its other edge still moves with the object), and call the tube

    ``"standing still"``  if ``|vx| < still_speed`` (pixels per frame),
    ``"moving left"``     if ``vx <= -still_speed``,
    ``"moving right"``    if ``vx >= still_speed``.

A real system would classify a tube's pixels with a video network (lesson 11); the rule
only works because ShapesWorld things move at constant velocity. ``tube_label_accuracy``
scores the labels against the ground truth's velocities. Tested in
tests/tracking/test_tube.py.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from coursekit.detection import box_iou
from coursekit.validators import (
    check_boxes,
    check_frames,
    describe,
    positive_int,
    require_dim,
    require_integer,
)

__all__ = ["TUBE_ACTIONS", "ActionTube", "action_tubes", "motion_label", "tube_label_accuracy"]

TUBE_ACTIONS = ("standing still", "moving left", "moving right")


@dataclass
class ActionTube:
    """One tube: ``boxes[i]`` is the object's box in frame ``frames[i]``."""

    track_id: int
    frames: Tensor  # int64 [L], ascending
    boxes: Tensor  # [L, 4] xyxy
    label: str  # one of TUBE_ACTIONS
    speed: float  # vx, the fitted horizontal velocity, pixels per frame

    def __len__(self) -> int:
        return self.frames.shape[0]


def _speed(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a float > 0 (pixels per frame), got {value!r}")
    if not value > 0:
        raise ValueError(f"{name} must be > 0 (pixels per frame), got {value!r}")
    return float(value)


def motion_label(frames: Tensor, boxes: Tensor, still_speed: float = 0.3) -> tuple[str, float]:
    """The action of one tube from its motion: ``(label, vx)`` (module docstring).

    Args:
        frames: int Tensor[L] frame numbers (L >= 2 for a velocity; one frame is "still").
        boxes: Tensor[L, 4] (x1, y1, x2, y2), the box in each of those frames.
        still_speed: below this |vx| (pixels per frame) the object stands still.

    Returns:
        (one of ``TUBE_ACTIONS``, vx as a float): of the least-squares slopes of x1 and of x2
        against the frame number, the larger in magnitude (x1's on a tie).
    """
    require_integer(frames, "frames", "an integer Tensor[L] (frame numbers)")
    require_dim(frames, "frames", 1, "an integer Tensor[L] (frame numbers)")
    check_boxes(boxes, "boxes")
    if frames.shape[0] == 0:
        raise ValueError("frames must hold at least one frame (a tube of length L >= 1), "
                         f"got {describe(frames)}")
    if boxes.shape[0] != frames.shape[0]:
        raise ValueError(f"frames and boxes must have the same length L, got frames "
                         f"{describe(frames)} and boxes {describe(boxes)}")
    still_speed = _speed(still_speed, "still_speed")
    t = frames.detach().double().cpu()
    b = boxes.detach().double().cpu()
    dt = t - t.mean()
    denom = float((dt * dt).sum())
    if denom == 0:
        vx = 0.0
    else:  # the slopes of the left and right edges; the faster one is the object's
        v1, v2 = (float((dt * (b[:, c] - b[:, c].mean())).sum()) / denom for c in (0, 2))
        vx = v1 if abs(v1) >= abs(v2) else v2
    if abs(vx) < still_speed:
        return TUBE_ACTIONS[0], vx
    return (TUBE_ACTIONS[1] if vx < 0 else TUBE_ACTIONS[2]), vx


def action_tubes(tracks: Sequence, min_length: int = 3,
                 still_speed: float = 0.3) -> list[ActionTube]:
    """Link a tracker's output into one labelled tube per id.

    Args:
        tracks: one ``(ids, boxes)`` per frame (``run_tracker``'s output).
        min_length: ids seen in fewer frames give no tube (too short to tell a motion).
        still_speed: as ``motion_label``.

    Returns:
        list of ``ActionTube``, by id.
    """
    frames = check_frames(tracks, "tracks")
    min_length = positive_int(min_length, "min_length")
    still_speed = _speed(still_speed, "still_speed")
    seen: dict[int, tuple[list[int], list[Tensor]]] = {}
    for t, (ids, boxes) in enumerate(frames):
        for i, box in zip(ids.tolist(), boxes, strict=True):
            seen.setdefault(i, ([], []))
            seen[i][0].append(t)
            seen[i][1].append(box)
    tubes = []
    for i in sorted(seen):
        ts, bs = seen[i]
        if len(ts) < min_length:
            continue
        f = torch.tensor(ts, dtype=torch.long)
        b = torch.stack(bs)  # (L, 4)
        label, vx = motion_label(f, b, still_speed)
        tubes.append(ActionTube(track_id=i, frames=f.to(b.device), boxes=b, label=label,
                                speed=vx))
    return tubes


def tube_label_accuracy(tubes: Sequence[ActionTube], gt: Sequence, gt_velocity: Tensor,
                        iou_threshold: float = 0.5,
                        still_speed: float = 0.3) -> tuple[float, int]:
    """Fraction of tubes whose label is the true action of the object they follow.

    Each tube is assigned the ground-truth id it overlaps (IoU >= ``iou_threshold``) in the
    most frames; the true action is ``motion_label``'s rule on that id's true velocity
    ``gt_velocity[id - 1, 0]``. A tube that overlaps no object counts as wrong.

    Args:
        tubes: ``action_tubes``' output. gt: one ``(ids, boxes)`` per frame, ids 1 ... N.
        gt_velocity: Tensor[N, 2] (vx, vy) per id (``TrackSequence.velocity``).

    Returns:
        (accuracy, number of tubes); accuracy is NaN without tubes.
    """
    frames = check_frames(gt, "gt")
    require_dim(gt_velocity, "gt_velocity", 2, "Tensor[N, 2] (vx, vy) per id")
    if gt_velocity.shape[1] != 2:
        raise ValueError(f"gt_velocity must be Tensor[N, 2], got {describe(gt_velocity)}")
    still_speed = _speed(still_speed, "still_speed")
    correct = 0
    for tube in tubes:
        votes: dict[int, int] = {}
        for t, box in zip(tube.frames.tolist(), tube.boxes, strict=True):
            if t >= len(frames):
                raise ValueError(f"tube {tube.track_id} names frame {t}, but gt has "
                                 f"{len(frames)} frames")
            ids, boxes = frames[t]
            if not ids.numel():
                continue
            iou = box_iou(box[None].double().cpu(), boxes.double().cpu())[0]
            j = int(iou.argmax())
            if float(iou[j]) >= iou_threshold:
                votes[int(ids[j])] = votes.get(int(ids[j]), 0) + 1
        if not votes:
            continue
        best = max(sorted(votes), key=lambda k: votes[k])
        vx = float(gt_velocity[best - 1, 0])
        truth = TUBE_ACTIONS[0] if abs(vx) < still_speed else TUBE_ACTIONS[1 if vx < 0 else 2]
        correct += truth == tube.label
    n = len(tubes)
    return (correct / n if n else float("nan")), n
