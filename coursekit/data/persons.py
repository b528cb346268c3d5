"""Stick-figure persons for ShapesWorld: 17 COCO keypoints, 10 body parts, a (U, V) chart.

A person is a head disk plus thick segments ("capsules") between joints, facing the
camera, so the person's LEFT side is on the image's RIGHT (the COCO convention).
The body model is written in units of the person's height ``h``, with the origin at
the pelvis, x to the image's right and y down (image coordinates).

Each body part is a capsule (a thick segment; the head is one of length 0, a disk),
rasterised on a coordinate grid: ``X`` holds the x of every pixel centre (``j + 0.5``),
``Y`` the y (``i + 0.5``). The rasteriser uses only ``+ - *`` and comparisons, so CPU and
CUDA give the same pixels. Tested in tests/data/test_shapesworld.py.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from coursekit.pose.coco_keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON

# The COCO person-keypoint schema lives in coursekit.pose.coco_keypoints (one copy for the
# whole course); these are the same objects under the names the data package always used.
KEYPOINT_NAMES = COCO_KEYPOINT_NAMES
"""The 17 COCO person keypoints, in COCO order (``coursekit.pose.COCO_KEYPOINT_NAMES``)."""

SKELETON = COCO_SKELETON
"""COCO's person skeleton: pairs of 1-based keypoint indices, as in the COCO json
(``coursekit.pose.COCO_SKELETON``)."""

PART_NAMES = [
    "background", "head", "torso", "upper_arm_left", "upper_arm_right", "lower_arm_left",
    "lower_arm_right", "upper_leg_left", "upper_leg_right", "lower_leg_left", "lower_leg_right",
]
"""``parts`` values: 0 background, 1 head, 2 torso, 3/4 upper arm L/R, 5/6 lower arm L/R,
7/8 upper leg L/R, 9/10 lower leg L/R (L/R = the person's left/right)."""

# Joints of the body model (rows of the ``joints`` tensor).
NECK, PELVIS, HEAD = 0, 1, 2
L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST = 3, 4, 5, 6, 7, 8
L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE = 9, 10, 11, 12, 13, 14
NUM_JOINTS = 15

HEAD_RADIUS = 0.095  # x h; head centre at y = -0.405 h, so the top of the head is at -0.5 h
ARM_RADIUS, LEG_RADIUS, TORSO_RADIUS = 0.038, 0.048, 0.085  # x h
UPPER_ARM, LOWER_ARM, UPPER_LEG, LOWER_LEG, TORSO = 0.16, 0.15, 0.24, 0.23, 0.29  # lengths, x h
MIN_LIMB_RADIUS = 0.75  # pixels: a joint's pixel is always covered by its own limb

# (part id, proximal joint, distal joint, radius): drawn in this order, far parts first.
LIMBS = [
    (9, L_KNEE, L_ANKLE, LEG_RADIUS), (10, R_KNEE, R_ANKLE, LEG_RADIUS),
    (7, L_HIP, L_KNEE, LEG_RADIUS), (8, R_HIP, R_KNEE, LEG_RADIUS),
    (2, NECK, PELVIS, TORSO_RADIUS),
    (3, L_SHOULDER, L_ELBOW, ARM_RADIUS), (4, R_SHOULDER, R_ELBOW, ARM_RADIUS),
    (5, L_ELBOW, L_WRIST, ARM_RADIUS), (6, R_ELBOW, R_WRIST, ARM_RADIUS),
]
HEAD_PART = 1

# Face keypoints as offsets from the head centre (x h): nose, eyes, ears.
FACE = [(0.0, 0.02), (0.035, -0.015), (-0.035, -0.015), (0.075, 0.0), (-0.075, 0.0)]
# The other 12 keypoints sit on joints, in COCO order.
KEYPOINT_JOINTS = [L_SHOULDER, R_SHOULDER, L_ELBOW, R_ELBOW, L_WRIST, R_WRIST,
                   L_HIP, R_HIP, L_KNEE, R_KNEE, L_ANKLE, R_ANKLE]


def _limb_dir(angle: Tensor, side: float) -> Tensor:
    """Unit vector at ``angle`` radians from straight down, turned outward on ``side`` (+1 left)."""
    return torch.stack([side * torch.sin(angle), torch.cos(angle)], dim=-1)


def person_joints(h: Tensor, pose: Tensor) -> Tensor:
    """Joint positions of the stick figure, relative to the pelvis, in pixels.

    Args:
        h: Tensor[T] person heights in pixels (float64).
        pose: Tensor[T, 8] angles in radians: upper arm from straight down (L, R), elbow
            bend added to it (L, R), upper leg outward (L, R), knee bend (L, R).

    Returns:
        Tensor[T, 15, 2] (x, y) of NECK, PELVIS, HEAD, shoulders, elbows, wrists, hips,
        knees and ankles (left before right); the head row is the head disk's centre.
    """
    T = h.shape[0]
    j = h.new_zeros(T, NUM_JOINTS, 2)
    j[:, NECK] = h.new_tensor([0.0, -TORSO])
    j[:, HEAD] = h.new_tensor([0.0, -0.5 + HEAD_RADIUS])
    for side, sh, el, wr, hip, kn, an, k in [
        (1.0, L_SHOULDER, L_ELBOW, L_WRIST, L_HIP, L_KNEE, L_ANKLE, 0),
        (-1.0, R_SHOULDER, R_ELBOW, R_WRIST, R_HIP, R_KNEE, R_ANKLE, 1),
    ]:
        j[:, sh] = h.new_tensor([0.11 * side, -0.28])
        j[:, el] = j[:, sh] + UPPER_ARM * _limb_dir(pose[:, 0 + k], side)
        j[:, wr] = j[:, el] + LOWER_ARM * _limb_dir(pose[:, 0 + k] + pose[:, 2 + k], side)
        j[:, hip] = h.new_tensor([0.06 * side, 0.0])
        j[:, kn] = j[:, hip] + UPPER_LEG * _limb_dir(pose[:, 4 + k], side)
        j[:, an] = j[:, kn] + LOWER_LEG * _limb_dir(pose[:, 4 + k] + pose[:, 6 + k], side)
    return j * h[:, None, None]  # (T, 15, 2)


def limb_radii(h: Tensor) -> Tensor:
    """Tensor[T, 10] radius in pixels of head (column 0) and of each entry of ``LIMBS``."""
    fractions = h.new_tensor([HEAD_RADIUS] + [r for *_, r in LIMBS])
    radii = h[:, None] * fractions  # (T, 10)
    radii[:, 1:] = radii[:, 1:].clamp(min=MIN_LIMB_RADIUS)
    return radii


def person_keypoints(joints: Tensor, h: Tensor) -> Tensor:
    """Tensor[T, 17, 2]: the COCO keypoints (x, y) of figures with ``joints`` Tensor[T, 15, 2]."""
    face = joints[:, HEAD, None, :] + h[:, None, None] * h.new_tensor(FACE)  # (T, 5, 2)
    return torch.cat([face, joints[:, KEYPOINT_JOINTS]], dim=1)  # (T, 17, 2)


def person_segments(joints: Tensor, radii: Tensor) -> Tensor:
    """The 10 parts of each figure as capsules, in drawing order ``DRAW_PARTS``.

    Args:
        joints: Tensor[T, 15, 2] absolute joint positions; radii: Tensor[T, 10] (``limb_radii``).

    Returns:
        Tensor[T, 10, 6]: (ax, ay, dx, dy, length, r) with ``a`` the proximal joint and
        ``d`` the unit direction towards the distal one. The head is a capsule of length 0
        at the head centre pointing down, i.e. a disk.
    """
    segs = []
    for k, (_, ja, jb, _) in enumerate(LIMBS):
        a, b = joints[:, ja], joints[:, jb]
        length = torch.linalg.vector_norm(b - a, dim=-1)
        d = (b - a) / length.clamp(min=1e-9)[:, None]
        segs.append(torch.cat([a, d, length[:, None], radii[:, k + 1, None]], dim=-1))
    head = joints[:, HEAD]
    down = head.new_tensor([0.0, 1.0]).expand_as(head)
    segs.append(torch.cat([head, down, torch.zeros_like(head[:, :1]), radii[:, 0, None]], dim=-1))
    return torch.stack(segs, dim=1)  # (T, 10, 6)


DRAW_PARTS = [pid for pid, *_ in LIMBS] + [HEAD_PART]
"""Part id of each row of ``person_segments``: far parts first, the head last."""


def _capsule(X: Tensor, Y: Tensor, seg: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """Squared distance to a thick segment, and the along / across coordinates of each point.

    ``seg`` [..., 6] holds (ax, ay, dx, dy, length, r) (see ``person_segments``); X and Y
    broadcast against ``seg[..., 0]`` (e.g. X [T, 1, W], Y [T, H, 1], seg [T, 1, 1, 6]).
    With ``p - a = (px, py)``: ``t = px dx + py dy`` runs along the segment,
    ``s = px dy - py dx`` across it, and the squared distance to the segment is
    ``(t - clamp(t, 0, length))^2 + s^2``; the point is inside when that is ``<= r^2``.
    Only ``+ - *`` and comparisons: exact on every device.

    Returns:
        (dist2, t, s), broadcast to the common shape.
    """
    ax, ay, dx, dy, length = seg.unbind(-1)[:5]
    px, py = X - ax, Y - ay
    t = px * dx + py * dy
    s = px * dy - py * dx
    tc = torch.minimum(t.clamp(min=0.0), length)
    return (t - tc) * (t - tc) + s * s, t, s


def part_uv(part: Tensor, X: Tensor, Y: Tensor, seg: Tensor) -> Tensor:
    """DensePose-style chart of points (X, Y) [M] on part ``part`` [M] with capsule ``seg`` [M, 6].

    Limbs and torso: U = clamp(t, 0, L) / L from the proximal joint (0) to the distal one (1),
    V = (1 + s / r) / 2 across the limb. Head (a disk): U = (y - cy + r) / 2r from the top of
    the head, V = (x - cx + r) / 2r from its image-left side. Both clamped to [0, 1].

    Returns:
        Tensor[2, M] (U, V).
    """
    _, t, s = _capsule(X, Y, seg)
    length, r = seg[:, 4], seg[:, 5]
    u_limb = torch.minimum(t.clamp(min=0.0), length) / length.clamp(min=1e-6)
    u_head = (t + r) / (2 * r)
    u = torch.where(part == HEAD_PART, u_head, u_limb)
    v = (s / r + 1) * 0.5
    return torch.stack([u, v]).clamp(0.0, 1.0)


def uv_map(segments: Tensor, code: Tensor, parts: Tensor, size: int) -> Tensor:
    """Tensor[B, 2, HW]: the (U, V) chart at the person pixels (``parts > 0``), 0 elsewhere.

    ``segments`` [B, K, 10, 6] (``person_segments`` of each slot), ``code`` [B, HW] the painted
    ``(slot + 1) << 4 | k`` (k = the part's row in ``segments``), ``parts`` [B, HW].
    """
    B, HW = code.shape
    b, p = torch.nonzero(parts > 0, as_tuple=True)  # only the person pixels, (M,)
    c = code[b, p].long()
    seg = segments[b, (c >> 4) - 1, c & 15]  # (M, 6)
    X, Y = (p % size).float() + 0.5, (p // size).float() + 0.5
    uv = torch.zeros(B, HW, 2, device=code.device)
    uv[b, p] = part_uv(parts[b, p], X, Y, seg).T
    return uv.transpose(1, 2).contiguous()


def keypoint_visibility(xy: Tensor, slot: Tensor, size: int) -> Tensor:
    """Tensor[B, K, 17, 3] (x, y, v) from keypoints ``xy`` [B, K, 17, 2] of every slot and the
    rendered slot map ``slot`` [B, HW] (0 = stuff, r + 1 = slot r; slots drawn far to near).

    v = 0 when the keypoint is outside the image (x = y = 0 then), 1 when its pixel shows a
    thing drawn after this person (nearer, or as near), else 2 (COCO's visibility flags).
    """
    B, K = xy.shape[:2]
    inside = ((xy >= 0) & (xy < size)).all(-1)
    ij = xy.floor().long().clamp(0, size - 1)
    winner = slot.gather(1, (ij[..., 1] * size + ij[..., 0]).view(B, -1)).view(B, K, 17)
    rank = torch.arange(1, K + 1, device=slot.device)[None, :, None]
    v = torch.where(inside, torch.where(winner > rank, 1.0, 2.0), 0.0)
    return torch.cat([xy * (v > 0)[..., None], v[..., None]], dim=-1)


def segment_window(size: int) -> list[int]:
    """Side of the square window each row of ``person_segments`` fits in, for persons of
    height at most ``0.5 * size`` (the largest ShapesWorld allows)."""
    h = 0.5 * size
    length = {2: TORSO, 3: UPPER_ARM, 4: UPPER_ARM, 5: LOWER_ARM, 6: LOWER_ARM,
              7: UPPER_LEG, 8: UPPER_LEG, 9: LOWER_LEG, 10: LOWER_LEG}
    lengths = [length[pid] for pid, *_ in LIMBS] + [0.0]
    radii = [r for *_, r in LIMBS] + [HEAD_RADIUS]
    return [math.ceil(length * h + 2 * max(r * h, MIN_LIMB_RADIUS)) + 3
            for length, r in zip(lengths, radii, strict=True)]
