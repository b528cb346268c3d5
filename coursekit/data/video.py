"""ShapesWorld videos: one actor doing one action over a ShapesWorld background.

``render_videos(seeds)`` returns a ``VideoBatch``: ``video`` float32 ``[B, T, 3, H, W]``
(frames second, as ``coursekit.video``), an action ``label`` per video, and the actor's
``mask`` and box in every frame. The scene is
drawn by the ShapesWorld renderer: the background is scene ``seed``'s stuff
(``draw.draw_stuff``, so where the actor is not, every frame equals
``render_scene(seed, num_things=0, p_crowd=0).image``), and the actor is painted in every
frame by ``draw.paint_things`` from a per-frame ``Layout`` (its colours from
``layout._palette``, a person's limbs from ``persons``).

Actions (``ACTIONS``, label = index):

* appearance classes — ``ball`` (a circle), ``person`` (a stick figure), ``crowd`` (a
  cluster of circles). The actor tells them apart in any single frame; it moves with one
  of the motions below at random (left / right, grow / shrink, approach / recede).
* motion-only classes — a square or a triangle that ``move_left`` / ``move_right``,
  ``rotate_cw`` / ``rotate_ccw`` (clockwise on screen or anticlockwise), ``grow`` /
  ``shrink`` (in place), ``approach`` / ``recede`` (moving down the picture and growing,
  or up and shrinking). The two classes of a pair (``MOTION_PAIRS``) are the same videos
  played backwards: ``render_videos([s], actions=[move_right])`` is exactly
  ``render_videos([s], actions=[move_left])`` with its frames reversed. So the frames of a
  pair's videos have the same distribution, and no single frame, nor any average over
  frames, can tell them apart: a single-frame model is at chance within a pair.

Each video has ``num_frames`` frames (48 by default, "the raw video": long, high frame
rate); the action does not fill it: the actor pauses once, for 30-60% of the video (at a
random place), and moves at a constant rate in the other frames. A short clip may fall in
the pause and show no motion, which is why averaging over several clips at test time helps
(``coursekit.video.predict_video``). ``frames=`` renders only some frames (the clips a
training step needs), bit for bit the same as slicing the full video.

Deterministic per seed: the background is scene ``seed``'s, the rest comes from a second
generator per seed (as ``layout.hard_uniforms``). The default action is
``seed % NUM_ACTIONS``, so any ``NUM_ACTIONS`` consecutive seeds hold every class once.
Sizes 32-64 px are the usual ones (clips for training at 32).

Tested in tests/data/test_video.py.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from coursekit.data import layout as lay
from coursekit.data import persons
from coursekit.data.draw import draw_stuff, paint_things
from coursekit.validators import describe, positive_int

__all__ = [
    "ACTIONS", "APPEARANCE_ACTIONS", "MOTION_ACTIONS", "MOTION_PAIRS", "NUM_ACTIONS",
    "VideoBatch", "action_id", "render_videos",
]

ACTIONS = ["ball", "person", "crowd", "move_left", "move_right", "rotate_cw", "rotate_ccw",
           "grow", "shrink", "approach", "recede"]
NUM_ACTIONS = len(ACTIONS)
APPEARANCE_ACTIONS = [0, 1, 2]  # told apart by what the actor looks like
MOTION_ACTIONS = list(range(3, NUM_ACTIONS))  # told apart only by how it moves
MOTION_PAIRS = [(3, 4), (5, 6), (7, 8), (9, 10)]  # each pair: the same videos, reversed
MIN_SIZE, MAX_SIZE = 32, 128

# Motions: 0 translate in x, 1 rotate, 2 scale in place, 3 approach (down and bigger).
_MOTION = {3: 0, 5: 1, 7: 2, 9: 3}  # the forward class of each pair
_REVERSED = {4, 6, 8, 10}  # classes whose videos are their partner's, backwards
N_VIDEO = 10 + lay.N_SLOT + lay.N_CROWD  # uniforms per video
VIDEO_SEED_MUL, VIDEO_SEED_ADD = 2862933555777941757, 3037000493  # seed -> actor stream
R_SHAPE = 0.105  # x size: a square's / triangle's / ball's radius at scale 1
R_CROWD = 0.035  # x size: one crowd circle's radius at scale 1
H_PERSON = 0.3  # x size: a person's height at scale 1
SCALE = (0.6, 1.4)  # scale range of every actor (a constant, or swept by grow / approach)
SHIFT = 0.45  # x size: how far move_left / move_right travel
DROP = 0.25  # x size: how far approach / recede travel down / up
TURN = (4.0, 5.0)  # radians a rotation turns over the video
PAUSE = (0.3, 0.6)  # fraction of the video the actor stands still


@dataclass
class VideoBatch:
    """B videos of T frames (all frames, or the ``frames`` asked for)."""

    video: Tensor  # float32 [B, T, 3, H, W] in [0, 1]
    label: Tensor  # int64 [B] action id (ACTIONS)
    mask: Tensor  # bool [B, T, H, W] the actor's pixels (elsewhere: the background scene)
    boxes: Tensor  # float32 [B, T, 4] xyxy pixel edges around the actor, per frame
    frames: Tensor  # int64 [B, T] frame index of each rendered frame in the full video
    seeds: list[int]
    size: int
    num_frames: int  # length of the full videos

    def __len__(self) -> int:
        return len(self.seeds)

    @property
    def motion_only(self) -> Tensor:
        """bool [B]: the videos whose action is a motion-only class."""
        return self.label >= MOTION_ACTIONS[0]


def action_id(name: str) -> int:
    """Label of the action called ``name`` (``action_id("rotate_cw") == 5``)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (an action name such as 'grow'), got {name!r}")
    if name not in ACTIONS:
        raise ValueError(f"name must be one of {ACTIONS}, got {name!r}")
    return ACTIONS.index(name)


def _is_int(v: object) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _check_seeds(seeds: object) -> list[int]:
    if isinstance(seeds, Tensor):
        if seeds.dim() != 1 or seeds.is_floating_point() or seeds.dtype == torch.bool:
            raise TypeError(f"seeds must be a sequence of ints or an integer Tensor[B], "
                            f"got {describe(seeds)}")
        seeds = seeds.tolist()
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (Sequence, range)):
        raise TypeError(f"seeds must be a non-empty sequence of ints, got {describe(seeds)}")
    if len(seeds) == 0:
        raise ValueError("seeds must be a non-empty sequence of ints, got an empty one")
    for i, s in enumerate(seeds):
        if not _is_int(s):
            raise TypeError(f"seed must be an int in [0, 2**63), got seeds[{i}] = {s!r}")
        if not 0 <= s < 2**63:
            raise ValueError(f"seed must be an int in [0, 2**63), got seeds[{i}] = {s!r}")
    return [int(s) for s in seeds]


def _check_int_tensor(x: object, name: str, expected: str) -> Tensor:
    if isinstance(x, (list, tuple, range)):
        if not all(_is_int(v) for v in x):
            raise TypeError(f"{name} must be {expected}, got a {type(x).__name__} with non-ints")
        x = torch.tensor(list(x), dtype=torch.long)
    if not isinstance(x, Tensor) or x.is_floating_point() or x.dtype == torch.bool \
            or x.is_complex():
        raise TypeError(f"{name} must be {expected}, got {describe(x)}")
    return x.long().cpu()


def _arguments(seeds, size, num_frames, actions, frames):
    seeds = _check_seeds(seeds)
    B = len(seeds)
    if not _is_int(size):
        raise TypeError(f"size must be an int in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an int in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    F = positive_int(num_frames, "num_frames", minimum=2)
    if actions is None:
        label = torch.tensor([s % NUM_ACTIONS for s in seeds], dtype=torch.long)
    else:
        expected = f"B = {B} action ids in [0, {NUM_ACTIONS - 1}] (a list or int Tensor[B])"
        label = _check_int_tensor(actions, "actions", expected)
        if label.shape != (B,):
            raise ValueError(f"actions must be {expected}, got {describe(label)}")
        if ((label < 0) | (label >= NUM_ACTIONS)).any():
            raise ValueError(f"actions must be {expected}, got {label.tolist()}")
    if frames is None:
        index = torch.arange(F).expand(B, F)
    else:
        expected = f"frame indices in [0, {F - 1}], an int Tensor[T] or Tensor[B = {B}, T]"
        index = _check_int_tensor(frames, "frames", expected)
        if index.dim() == 1:
            index = index.expand(B, -1)
        if index.dim() != 2 or index.shape[0] != B or index.shape[1] == 0:
            raise ValueError(f"frames must be {expected}, got {describe(index)}")
        if ((index < 0) | (index >= F)).any():
            raise ValueError(f"frames must be {expected}, got values from {int(index.min())} "
                             f"to {int(index.max())}")
    return seeds, int(size), F, label, index


def _uniforms(seeds: list[int]) -> Tensor:
    """Tensor[B, N_VIDEO] float64 from each video's own generator (not the scene's)."""
    return torch.stack([
        torch.rand(N_VIDEO, dtype=torch.float64, generator=torch.Generator().manual_seed(
            (s * VIDEO_SEED_MUL + VIDEO_SEED_ADD) % 2**64)) for s in seeds])


def _progress(u: Tensor, F: int) -> Tensor:
    """Tensor[B, F] in [0, 1]: how far the action has got at each frame.

    The actor stands still for one pause of ``PAUSE`` x F frames starting at a random frame
    and moves at a constant rate otherwise: progress 0 at frame 0, 1 at frame F - 1.
    """
    length = (F * (PAUSE[0] + (PAUSE[1] - PAUSE[0]) * u[:, 1])).floor().clamp(max=F - 2)
    start = (u[:, 0] * (F - length)).floor().clamp(max=F - 1 - length)  # first paused step
    steps = torch.arange(F - 1, dtype=torch.float64)  # step t goes from frame t to t + 1
    moving = ((steps < start[:, None]) | (steps >= (start + length)[:, None])).double()
    done = torch.cat([moving.new_zeros(len(u), 1), moving.cumsum(1)], dim=1)  # (B, F)
    return done / done[:, -1:]


def _backwards(u: Tensor, label: Tensor) -> Tensor:
    """bool [B]: the videos that play their forward video backwards (frame t shows its frame
    F - 1 - t): the second class of each pair, and a random half of the appearance videos."""
    appearance = label < MOTION_ACTIONS[0]
    return torch.tensor([int(k) in _REVERSED for k in label]) | (appearance & (u[:, 3] < 0.5))


def _trajectory(u: Tensor, label: Tensor, q: Tensor, S: int) -> dict[str, Tensor]:
    """The actor's pose at forward-video progress ``q`` (Tensor[B, T] in [0, 1]).

    Returns x, y (centre, pixels), scale and angle (radians, clockwise), each [B, T].
    """
    motion = torch.tensor([_MOTION.get(int(k), _MOTION.get(int(k) - 1, -1)) for k in label])
    appearance = motion < 0
    motion = torch.where(appearance, torch.tensor([0, 2, 3])[(u[:, 2] * 3).long().clamp(max=2)],
                         motion)  # appearance actors: left / right, grow / shrink, approach
    lo, hi = SCALE
    fixed_scale = lo + (hi - lo) * u[:, 4, None]  # (B, 1)
    angle0 = 2 * math.pi * u[:, 5, None]
    x0 = S * (0.22 + 0.56 * u[:, 6, None])  # centre of a still actor
    y0 = S * (0.3 + 0.4 * u[:, 7, None])
    turn = TURN[0] + (TURN[1] - TURN[0]) * u[:, 8, None]
    m = motion[:, None]
    x = torch.where(m == 0, S * (0.78 - (0.56 - SHIFT) * u[:, 6, None] - SHIFT * q), x0)
    y = torch.where(m == 3, S * (0.3 + (0.4 - DROP) * u[:, 7, None] + DROP * q), y0)
    scale = torch.where((m == 2) | (m == 3), lo + (hi - lo) * q, fixed_scale)
    angle = torch.where(m == 1, angle0 + turn * q, angle0)
    return {"x": x, "y": y, "scale": scale, "angle": angle}


def _actor_layout(bg: lay.Layout, u: Tensor, label: Tensor, pose: dict[str, Tensor]) -> lay.Layout:
    """A ``Layout`` of B * T one-actor scenes (slot 0: shape or person, slot 1: crowd).

    Stuff fields are the clip's, repeated per frame (``paint_things`` reads only the
    things); the actor's geometry is that frame's pose.
    """
    B, T = pose["x"].shape
    S = bg.size
    v, c = u[:, 10:10 + lay.N_SLOT], u[:, 10 + lay.N_SLOT:]  # a thing slot's / crowd's uniforms
    kind = _actor_kind(u, label)  # (B,)
    square = kind == lay.SQUARE
    x, y, s, a = (pose[k].reshape(-1) for k in ("x", "y", "scale", "angle"))  # (B*T,)
    centre = torch.stack([x, y], -1)  # (B*T, 2)
    rep = torch.arange(B).repeat_interleave(T)  # clip of each frame

    r = R_SHAPE * S * s
    circle = torch.stack([x, y, r], -1)  # (B*T, 3)
    sq = torch.tensor([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=torch.float64) * 0.9
    tri = torch.tensor([[0, -1], [0.866, 0.5], [-0.866, 0.5], [0, -1]], dtype=torch.float64)
    template = torch.where(square[rep, None, None], sq, tri * 1.2)  # (B*T, 4, 2)
    polygon = lay._rotate(template * r[:, None, None], a) + centre[:, None, :]
    h = H_PERSON * S * s
    limbs = 0.15 + 2.45 * v[rep, 11:13], -1.2 + 2.4 * v[rep, 13:15]  # arms out, elbows
    legs = 0.03 + 0.42 * v[rep, 15:17], -0.35 + 0.6 * v[rep, 17:19]  # legs apart, knees
    joints = persons.person_joints(h, torch.cat([*limbs, *legs], 1)) + centre[:, None, :]
    segments = persons.person_segments(joints, persons.limb_radii(h))  # (B*T, 10, 6)
    ring = lay._crowd_geometry(c, bg.horizon, S)["circles"]  # (B, 8, 3)
    used = ring[..., 2:] > 0
    mid = (ring[..., :2] * used).sum(1, keepdim=True) / used.sum(1, keepdim=True)
    offsets = (ring[..., :2] - mid) / ring[:, :1, 2:]  # in crowd radii, (B, 8, 2)
    rho = R_CROWD * S * s[:, None, None]
    crowd = torch.cat([centre[:, None, :] + offsets[rep] * rho,
                       torch.where(used[rep], rho, -1.0)], -1)  # (B*T, 8, 3)

    def two(t: Tensor) -> Tensor:  # slot 0 = the actor, slot 1 = the crowd slot
        return torch.stack([t, torch.zeros_like(t)], 1)

    kinds = torch.stack([kind, torch.full_like(kind, lay.CROWD)], 1)  # (B, 2)
    active = torch.stack([label != 2, label == 2], 1)
    stuff = {f.name: getattr(bg, f.name)[rep] for f in dataclasses.fields(bg)
             if f.name in ("horizon", "wall", "pond", "stuff_rgb", "wave_phase", "clouds",
                           "noise_coarse", "noise_fine")}
    crowd_slots = torch.stack([torch.zeros_like(crowd), crowd], 1)  # (B*T, 2, 8, 3)
    return lay.Layout(
        size=S, **stuff, active=active[rep], kind=kinds[rep],
        depth=torch.ones(B * T, 2, dtype=torch.float64),
        velocity=torch.zeros(B * T, 2, 2, dtype=torch.long),
        palette=torch.zeros(B * T, 2, lay.PALETTE, 3, dtype=torch.float64),  # colours: later
        circle=two(circle), polygon=two(polygon), segments=two(segments),
        keypoints=torch.zeros(B * T, 2, 17, 2, dtype=torch.float64), crowd=crowd_slots)


def render_videos(
    seeds: Sequence[int] | range | Tensor,
    size: int = 32,
    num_frames: int = 48,
    *,
    actions: Sequence[int] | Tensor | None = None,
    frames: Tensor | Sequence[int] | None = None,
    device: torch.device | str | None = None,
) -> VideoBatch:
    """Render one action video per seed (deterministic: same seed, same video).

    Args:
        seeds: a non-empty sequence (or range, or integer Tensor[B]) of ints in [0, 2**63).
        size: frame side in pixels, in [32, 128].
        num_frames: F, the length of the full videos (>= 2).
        actions: the action id of each video (default ``seed % NUM_ACTIONS``).
        frames: which frames to render, int Tensor[T] (the same for every video) or
            Tensor[B, T], values in [0, F - 1] (default: all F); e.g. a clip every other
            frame, ``torch.arange(0, 16, 2)``.
        device: where the frames are drawn and returned (numbers are drawn on the CPU).

    Returns:
        ``VideoBatch``: video float32 [B, T, 3, size, size] in [0, 1], label int64 [B],
        frames int64 [B, T], seeds, size, num_frames.

    Raises ``TypeError`` for an argument of the wrong type, ``ValueError`` for a wrong value.
    """
    seeds, S, F, label, index = _arguments(seeds, size, num_frames, actions, frames)
    device = torch.device("cpu" if device is None else device)
    B, T = index.shape
    bg = lay.sample_layout(seeds, S, 0, 0, 0.0, 0.0)  # scene `seed`'s stuff, no things
    u = _uniforms(seeds)
    forward_index = torch.where(_backwards(u, label)[:, None], F - 1 - index, index)
    q = _progress(u, F).gather(1, forward_index)  # (B, T) progress of each rendered frame
    pose = _trajectory(u, label, q, S)
    code = paint_things(_actor_layout(bg, u, label, pose), device)[0]  # (B*T, S, S) uint8
    stuff = draw_stuff(bg, device)
    rgb = bg.stuff_rgb.to(device=device, dtype=torch.float32)  # (B, 4, 3)
    cls = stuff["cls"].long().view(B, 1, S * S).expand(B, 3, S * S)
    background = rgb.transpose(1, 2).gather(2, cls) * stuff["shade"].view(B, 1, -1) \
        + stuff["light"].view(B, 1, -1)  # (B, 3, HW), as render_batch colours the stuff
    code = code.view(B, T, S * S).long()
    palette = _actor_palette(u, label).to(device=device, dtype=torch.float32)  # (B, 2 * 16, 3)
    row = ((code >> 4) - 1).clamp(min=0) * lay.PALETTE + (code & 15)  # (B, T, HW)
    actor = palette.transpose(1, 2)[:, None].expand(B, T, 3, -1).gather(
        3, row[:, :, None].expand(B, T, 3, S * S))  # (B, T, 3, HW)
    mask = code > 0  # (B, T, HW)
    video = torch.where(mask[:, :, None], actor, background[:, None])
    return VideoBatch(video=video.view(B, T, 3, S, S), label=label.to(device),
                      mask=mask.view(B, T, S, S), boxes=_boxes(mask.view(B, T, S, S)),
                      frames=index.to(device), seeds=seeds, size=S, num_frames=F)


def _boxes(mask: Tensor) -> Tensor:
    """float32 [B, T, 4] (x1, y1, x2, y2) pixel edges of each frame's mask [B, T, H, W]."""
    S = mask.shape[-1]
    ar = torch.arange(S, device=mask.device)
    cols, rows = mask.any(2), mask.any(3)  # (B, T, W), (B, T, H)

    def edges(m: Tensor) -> tuple[Tensor, Tensor]:
        lo = torch.where(m, ar, S).amin(-1)
        return lo, torch.where(m, ar + 1, 0).amax(-1)

    (x1, x2), (y1, y2) = edges(cols), edges(rows)
    return torch.stack([x1, y1, x2, y2], -1).float()


def _actor_palette(u: Tensor, label: Tensor) -> Tensor:
    """Tensor[B, 2 * 16, 3] float64: the colours of slot 0 (shape or person), then the crowd."""
    pal = lay._palette(u[:, None, 10:10 + lay.N_SLOT], _actor_kind(u, label)[:, None],
                       u[:, 10 + lay.N_SLOT + 24:])  # (B, 2, 16, 3)
    return pal.flatten(1, 2)


def _actor_kind(u: Tensor, label: Tensor) -> Tensor:
    """int64 [B]: the layout kind of each video's actor (slot 0; the crowd uses slot 1)."""
    square = u[:, 9] < 0.5
    kind = torch.where(label == 0, lay.CIRCLE, torch.where(square, lay.SQUARE, lay.TRIANGLE))
    return torch.where(label == 1, lay.PERSON, kind)
