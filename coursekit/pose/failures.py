"""Where a pose estimator fails, found by measurement: the worst-scored persons and why.

For each ground-truth person of a set of scenes, ``pose_failures`` takes the best OKS
(``oks.py``) of any person the model detected with ``score >= score_threshold``; the persons
below ``max_oks`` are the failures, worst first. Each failure is tagged from the ground
truth with what makes it hard:

* ``"occluded"`` — at least ``min_hidden`` keypoints are labelled but hidden (v = 1: another
  object is in front);
* ``"cut off"`` — some keypoint lies outside the image (v = 0);
* ``"crossing limbs"`` — an arm or leg crosses another limb, its own or another person's
  (``crossing_limbs``): the heatmaps of two limbs meet where they cross;
* ``"persons overlap"`` — another person's box overlaps this one's (box IoU > 0.1);
* ``"not detected"`` — no detection's box has IoU >= 0.5 with the person's.

Tested in tests/pose/test_failures.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from coursekit.detection import box_iou
from coursekit.pose.coco_keypoints import COCO_KEYPOINT_NAMES, check_keypoints
from coursekit.pose.keypoint_rcnn import PERSON_ID
from coursekit.pose.oks import oks
from coursekit.validators import describe

__all__ = ["LIMBS", "PoseFailure", "crossing_limbs", "pose_failures"]

_K = {name: k for k, name in enumerate(COCO_KEYPOINT_NAMES)}
LIMBS: tuple[tuple[int, int], ...] = tuple(
    (_K[a], _K[b]) for a, b in (
        ("left_shoulder", "left_elbow"), ("left_elbow", "left_wrist"),
        ("right_shoulder", "right_elbow"), ("right_elbow", "right_wrist"),
        ("left_hip", "left_knee"), ("left_knee", "left_ankle"),
        ("right_hip", "right_knee"), ("right_knee", "right_ankle"),
    )
)
"""The 8 limb segments of the arms and legs (0-based keypoint pairs) checked for crossings."""


class PoseFailure(NamedTuple):
    """One badly estimated person (``pose_failures``)."""

    image: int  # index of the scene
    person: int  # row of the person in the scene's keypoints
    oks: float  # best OKS of a kept person detection, 0 when there is none
    detection: int  # row of that detection in the image's predictions, -1 when none
    reasons: tuple[str, ...]  # what makes it hard (module docstring)


def _cross(p1: Tensor, p2: Tensor, q1: Tensor, q2: Tensor) -> Tensor:
    """Whether segments p1-p2 and q1-q2 cross properly (Tensor[..., 2] each -> bool [...])."""

    def orient(a: Tensor, b: Tensor, c: Tensor) -> Tensor:  # sign of the turn a -> b -> c
        return torch.sign((b[..., 0] - a[..., 0]) * (c[..., 1] - a[..., 1])
                          - (b[..., 1] - a[..., 1]) * (c[..., 0] - a[..., 0]))

    return ((orient(p1, p2, q1) * orient(p1, p2, q2) < 0)
            & (orient(q1, q2, p1) * orient(q1, q2, p2) < 0))


def crossing_limbs(keypoints: Tensor) -> Tensor:
    """bool Tensor[P]: does one of a person's ``LIMBS`` cross another limb in the image?

    ``keypoints`` Tensor[P, 17, 3]: all the persons of **one** image. Person p's limbs are
    compared with its own other limbs (those without a common joint) and with every limb of
    the other persons; a limb counts when both its ends are labelled (v > 0). Segments that
    only touch (an end on the other segment) do not count as crossing.
    """
    check_keypoints(keypoints, "keypoints", num_keypoints=len(COCO_KEYPOINT_NAMES))
    kp = keypoints.detach().to(torch.float64)
    P, L = kp.shape[0], len(LIMBS)
    limbs = torch.tensor(LIMBS, device=kp.device)  # (L, 2)
    ends = kp[:, limbs]  # (P, L, 2, 3)
    seg = ends[..., :2].reshape(P * L, 2, 2)  # (P L, 2 ends, xy)
    ok = (ends[..., 2] > 0).all(-1).reshape(P * L)  # (P L,) both ends labelled
    owner = torch.arange(P, device=kp.device).repeat_interleave(L)  # (P L,)
    joint = limbs.repeat(P, 1)  # (P L, 2)
    shares = (joint[:, None, :, None] == joint[None, :, None, :]).flatten(2).any(-1)
    apart = (owner[:, None] != owner[None, :]) | ~shares  # (P L, P L): no common joint
    cross = _cross(seg[:, None, 0], seg[:, None, 1], seg[None, :, 0], seg[None, :, 1])
    hit = cross & apart & ok[:, None] & ok[None, :]  # (P L, P L)
    return hit.any(1).reshape(P, L).any(1)


def pose_failures(scenes: Sequence, predictions: Sequence[dict[str, Tensor]],
                  score_threshold: float = 0.5, max_oks: float = 0.5,
                  min_hidden: int = 2) -> list[PoseFailure]:
    """The ground-truth persons whose best OKS is below ``max_oks``, worst first.

    Args:
        scenes: ShapesWorld ``Scene`` s (``keypoints`` Tensor[P, 17, 3], ``person_index``,
            ``boxes``, ``masks``; the OKS area is the person's mask area).
        predictions: per scene ``{"boxes", "labels" (category ids), "scores",
            "keypoints" Tensor[D, 17, 3]}`` (``model.predict``'s output).
        score_threshold: detections scored below it are ignored.
        max_oks: a person whose best OKS is below it is a failure.
        min_hidden: how many hidden keypoints (v = 1) make a person ``"occluded"``.

    Returns:
        ``PoseFailure`` s sorted by OKS (then scene, person).
    """
    if not isinstance(scenes, Sequence) or not isinstance(predictions, Sequence):
        raise TypeError(f"scenes and predictions must be lists, got {describe(scenes)} and "
                        f"{describe(predictions)}")
    if len(scenes) != len(predictions):
        raise ValueError(f"predictions must have one dict per scene ({len(scenes)}), "
                         f"got {len(predictions)}")
    failures = []
    for i, (scene, pred) in enumerate(zip(scenes, predictions, strict=True)):
        if not isinstance(pred, dict) or "keypoints" not in pred:
            raise ValueError(f"predictions[{i}] must be a dict with 'boxes', 'labels', "
                             f"'scores' and 'keypoints', got {describe(pred)}")
        gt = scene.keypoints.detach().cpu().double()  # (P, 17, 3)
        if len(gt) == 0:
            continue
        rows = scene.person_index.cpu()
        gt_boxes = scene.boxes[rows].detach().cpu().double()  # (P, 4)
        area = scene.masks[rows].flatten(1).sum(1).cpu().double()  # (P,)
        keep = ((pred["labels"].cpu() == PERSON_ID)
                & (pred["scores"].detach().cpu() >= score_threshold))
        kept = torch.nonzero(keep).flatten()
        dt = pred["keypoints"].detach().cpu().double()[kept]  # (D, 17, 3)
        dt_boxes = pred["boxes"].detach().cpu().double()[kept]
        sim = oks(gt, dt, area.clamp(min=1), gt_boxes=gt_boxes)  # (P, D)
        best, which = (sim.max(1) if len(kept) else
                       (torch.zeros(len(gt), dtype=torch.float64), torch.full((len(gt),), -1)))
        detected = ((box_iou(gt_boxes, dt_boxes) >= 0.5).any(1) if len(kept) else
                    torch.zeros(len(gt), dtype=torch.bool))
        overlap = box_iou(gt_boxes, gt_boxes).fill_diagonal_(0).gt(0.1).any(1)  # (P,)
        crossing = crossing_limbs(gt)
        hidden = (gt[..., 2] == 1).sum(1)
        outside = (gt[..., 2] == 0).any(1)
        for p in range(len(gt)):
            if float(best[p]) >= max_oks:
                continue
            reasons = []
            if int(hidden[p]) >= min_hidden:
                reasons.append("occluded")
            if bool(outside[p]):
                reasons.append("cut off")
            if bool(crossing[p]):
                reasons.append("crossing limbs")
            if bool(overlap[p]):
                reasons.append("persons overlap")
            if not bool(detected[p]):
                reasons.append("not detected")
            det = int(kept[which[p]]) if len(kept) else -1
            failures.append(PoseFailure(i, p, float(best[p]), det, tuple(reasons)))
    return sorted(failures, key=lambda f: (f.oks, f.image, f.person))
