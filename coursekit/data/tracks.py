"""ShapesWorld tracking sequences: things with ids that move, enter, leave, hide and cross.

Lecture: *Spatio-temporal detection and tracking* — detect objects of interest in frames
1 ... N and track them over time. ``render_sequence(seed)`` makes such a video, with the
ground truth a tracker is scored against: in every frame, the id, box and mask of each
visible thing.

How a sequence is made (deterministic per seed, the same on every device):

* The scene is ``render_scene(seed, num_things=...)``'s layout without the crowd: the same
  stuff (sky, grass, pond, wall; static), and the same things with their kinds, sizes and
  colours. Each thing then moves at a constant velocity ``(vx, vy)`` pixels per frame
  (speed 0.5-1.5 px per frame at size 64, mostly sideways; 15 % stand still), drawn from
  a second random stream of the seed.
* Entries and exits: 40 % of the moving things start outside the image and enter across
  its left or right edge during the first half of the video; a thing that reaches the
  far edge leaves. A thing wholly outside the image is not drawn.
* Crossings: with two things or more, one pair is made to cross: the second moves
  towards the first, on nearly the same ground row, and meets it at a random frame in the
  middle third. Other crossings happen by chance.
* The motion scales with ``num_frames`` (entries fall in the first half, the crossing in
  the middle third), so the same seed with another length is another video.
* Occlusion: each frame is painted far to near (the thing whose base is lower on the
  screen is nearer, as in ShapesWorld scenes), so a nearer thing hides the part of a
  farther thing behind it; a small thing can vanish completely for a few frames.

Ground truth per frame (``TrackSequence``): ``ids`` (1, 2, ... in order of first
appearance; an id is never reused), ``boxes`` (x1, y1, x2, y2) tight around the visible
pixels (pixel edges, as ``Scene.boxes``), ``labels`` (category ids), ``masks`` (visible
pixels), ``visibility`` (visible pixels / pixels of the whole thing, in [0, 1]) and ``occluded``
(another thing hides part of it). A thing with no visible pixel is not in the frame.
``seq.frames()`` is the ``[(ids, boxes), ...]`` that ``coursekit.tracking.mot_metrics``
and ``to_mot_lines`` (MOTChallenge text files; ``seq.mot_lines()``) read.

Tested in tests/data/test_tracks.py.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from coursekit.data import layout as lay
from coursekit.data.draw import draw_stuff, paint_things
from coursekit.data.shapesworld import _check, _tables
from coursekit.validators import positive_int

__all__ = ["MAX_FRAMES", "TrackSequence", "render_sequence", "render_sequences",
           "sequence_events"]

MAX_FRAMES = 512
TRACK_SEED_MUL, TRACK_SEED_ADD = 2862933555777941757, 3037000493  # seed -> motion stream
N_MOTION = 8  # uniforms per thing slot
SPEED = (0.5, 1.5)  # pixels per frame at size 64 (x size / 64)
MAX_VY = 0.2  # |vy| at most this, pixels per frame at size 64
P_STILL, P_ENTER = 0.15, 0.4
CROSS_DY = 3.0  # the crossing pair's base rows differ by at most this (pixels at 64)


@dataclass
class TrackSequence:
    """T frames of one tracking sequence; per-frame lists hold the K_t things visible in t.

    Objects are numbered by id (1 ... N); ``velocity[n]`` and ``categories[n]`` belong to
    id ``n + 1``.
    """

    images: Tensor  # float32 [T, 3, H, W] in [0, 1]
    ids: list[Tensor]  # T x int64 [K_t], ascending
    boxes: list[Tensor]  # T x float32 [K_t, 4] xyxy, tight around the visible pixels
    labels: list[Tensor]  # T x int64 [K_t] category ids (coursekit.data.CATEGORIES)
    masks: list[Tensor]  # T x bool [K_t, H, W] visible pixels
    visibility: list[Tensor]  # T x float32 [K_t] visible pixels / the whole thing's pixels
    occluded: list[Tensor]  # T x bool [K_t]: another thing hides some of its pixels
    velocity: Tensor  # float32 [N, 2] (vx, vy) pixels per frame, constant
    categories: Tensor  # int64 [N]
    seed: int
    size: int

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def num_frames(self) -> int:
        return self.images.shape[0]

    @property
    def num_objects(self) -> int:
        """N: the number of ids (things visible in at least one frame)."""
        return self.categories.shape[0]

    def frames(self, min_visibility: float = 0.0) -> list[tuple[Tensor, Tensor]]:
        """``[(ids, boxes), ...]`` per frame, as ``mot_metrics`` reads ground truth.

        ``min_visibility``: keep only things with ``visibility >= min_visibility``.
        """
        out = []
        for ids, boxes, vis in zip(self.ids, self.boxes, self.visibility, strict=True):
            keep = vis >= min_visibility
            out.append((ids[keep], boxes[keep]))
        return out

    def mot_lines(self) -> list[str]:
        """The ground truth as MOTChallenge lines ``frame,id,x,y,w,h,1,-1,-1,-1``."""
        from coursekit.tracking.motchallenge import to_mot_lines  # data does not need tracking

        return to_mot_lines(self.frames())

    def to(self, device: torch.device | str) -> TrackSequence:
        """The same sequence with every tensor on ``device``."""
        def move(x):
            if isinstance(x, Tensor):
                return x.to(device)
            return [t.to(device) for t in x] if isinstance(x, list) else x

        return TrackSequence(**{f.name: move(getattr(self, f.name)) for f in fields(self)})


def _take(L: lay.Layout, index: Tensor) -> lay.Layout:
    """The layout of scenes ``index`` (Tensor[B'] int64): every per-scene tensor indexed."""
    return dataclasses.replace(L, **{
        f.name: getattr(L, f.name)[index] for f in fields(L)
        if isinstance(getattr(L, f.name), Tensor)})


def _geometry_boxes(L: lay.Layout) -> Tensor:
    """Tensor[B, K, 4] (x_lo, y_lo, x_hi, y_hi) around each slot's drawn primitives."""
    c = L.circle
    circle = torch.stack([c[..., 0] - c[..., 2], c[..., 1] - c[..., 2],
                          c[..., 0] + c[..., 2], c[..., 1] + c[..., 2]], -1)
    p = L.polygon  # a triangle's 4th vertex repeats its 1st
    polygon = torch.cat([p.amin(-2), p.amax(-2)], -1)
    s = L.segments  # (B, K, 10, 6): (ax, ay, dx, dy, length, r)
    a, b, r = s[..., 0:2], s[..., 0:2] + s[..., 2:4] * s[..., 4:5], s[..., 5:6]
    person = torch.cat([torch.minimum(a, b).sub(r).amin(-2),
                        torch.maximum(a, b).add(r).amax(-2)], -1)
    kind = L.kind[..., None]
    out = torch.where(kind == lay.PERSON, person, polygon)
    return torch.where(kind == lay.CIRCLE, circle, out)


def _motion_uniforms(seeds: list[int], k: int) -> Tensor:
    """Tensor[B, K, N_MOTION] float64 from the seed's motion stream (independent of the
    layout's)."""
    out = []
    for s in seeds:
        g = torch.Generator().manual_seed((s * TRACK_SEED_MUL + TRACK_SEED_ADD) % 2**64)
        out.append(torch.rand(lay.MAX_THINGS + 1, N_MOTION, generator=g, dtype=torch.float64))
    return torch.stack(out)[:, :k]


def _trajectories(L: lay.Layout, seeds: list[int], T: int) -> tuple[Tensor, Tensor]:
    """Per slot the start displacement ``d0`` [B, K, 2] and velocity ``v`` [B, K, 2]: the
    slot's geometry in frame t is the layout's shifted by ``d0 + t v``."""
    B, K = L.kind.shape
    S, s = float(L.size), L.size / 64
    w = _motion_uniforms(seeds, K)  # (B, K, 8)
    box = _geometry_boxes(L)  # (B, K, 4)
    cx, hw = (box[..., 0] + box[..., 2]) / 2, (box[..., 2] - box[..., 0]) / 2
    still = w[..., 1] < P_STILL
    speed = torch.where(still, 0.0, s * (SPEED[0] + (SPEED[1] - SPEED[0]) * w[..., 0]))
    vx = torch.where(w[..., 2] < 0.5, -speed, speed)
    vy = torch.where(still, 0.0, s * MAX_VY * (2 * w[..., 3] - 1))
    enter = (w[..., 4] < P_ENTER) & ~still
    t_in = (1 + (w[..., 5] * (T // 2)).floor()).clamp(max=max(1, T - 1))
    x_in = torch.where(vx > 0, -hw + 1, S + hw - 1)  # one pixel inside at frame t_in
    x0 = torch.where(enter, x_in - vx * t_in, S * (0.1 + 0.8 * w[..., 5]))  # centre at t = 0
    dy0 = torch.zeros_like(x0)
    for b in range(B):  # one crossing pair per sequence: b2 meets b1 at frame t_c
        act = torch.nonzero(L.active[b]).squeeze(1)
        if act.numel() < 2:
            continue
        i, j = act[torch.argsort(w[b, act, 6])[:2]].tolist()
        t_c = T * (0.3 + 0.4 * float(w[b, i, 7]))
        sp = float(speed[b, j]) if float(speed[b, j]) > 0 else s * sum(SPEED) / 2
        xi = float(x0[b, i] + vx[b, i] * t_c)
        vx[b, j] = -sp if xi < float(x0[b, j]) else sp  # towards i's place at t_c
        x0[b, j] = xi - float(vx[b, j]) * t_c
        vy[b, j] = vy[b, i]
        dy0[b, j] = float(box[b, i, 3] - box[b, j, 3]) + s * CROSS_DY * (2 * float(w[b, j, 7]) - 1)
    return torch.stack([x0 - cx, dy0], -1), torch.stack([vx, vy], -1)


SLOT_FIELDS = ("active", "kind", "depth", "velocity", "palette", "circle", "polygon",
               "segments", "keypoints", "crowd")


def _shift(L: lay.Layout, d: Tensor) -> dict[str, Tensor]:
    """The geometry fields of L moved by ``d`` (Tensor[B, K, 2] float64)."""
    return {"circle": torch.cat([L.circle[..., :2] + d, L.circle[..., 2:]], -1),
            "polygon": L.polygon + d[..., None, :],
            "segments": torch.cat([L.segments[..., :2] + d[..., None, :],
                                   L.segments[..., 2:]], -1),
            "keypoints": L.keypoints + d[..., None, :]}


def _sort_slots(L: lay.Layout, depth: Tensor) -> tuple[lay.Layout, Tensor]:
    """Re-order every scene's slots far to near by ``depth`` (inactive first), as
    ``layout.sample_layout``; returns the layout and ``order`` [B, K] (new -> old slot)."""
    order = torch.sort(torch.where(L.active, depth, float("inf")), dim=1, descending=True,
                       stable=True).indices
    new = {"depth": depth}
    for name in SLOT_FIELDS:
        t = new.get(name, getattr(L, name))
        idx = order.view(*order.shape, *([1] * (t.dim() - 2))).expand(-1, -1, *t.shape[2:])
        new[name] = t.gather(1, idx)
    return dataclasses.replace(L, **new), order


def _pixel_counts(code: Tensor, order: Tensor, K: int) -> Tensor:
    """Tensor[B, K]: pixels of each original slot in the painted ``code`` maps [B, H, W]."""
    B = code.shape[0]
    slot = (code.view(B, -1) >> 4).long()  # (B, HW) 0 stuff, r + 1 frame slot r
    orig = torch.cat([order.new_full((B, 1), K), order.to(code.device)], 1).gather(1, slot)
    counts = torch.bincount((torch.arange(B, device=code.device)[:, None] * (K + 1)
                             + orig).flatten(), minlength=B * (K + 1))
    return counts.view(B, K + 1)[:, :K].cpu()


def render_sequences(
    seeds: Sequence[int] | range | Tensor,
    num_frames: int = 24,
    size: int = 64,
    *,
    num_things: tuple[int, int] | int = (3, 6),
    p_person: float = 0.35,
    device: torch.device | str | None = None,
) -> list[TrackSequence]:
    """Render one tracking sequence per seed, all frames of all sequences at once.

    Args:
        seeds: non-empty sequence of ints in [0, 2**63) (or an integer Tensor[B]).
        num_frames: T in [1, MAX_FRAMES].
        size: image side in [32, 512]; the shipped detector is trained at 64.
        num_things: things in the sequence (int or inclusive (min, max) in [0, 12]).
        p_person: probability that a thing is a person (the others are shapes).
        device: where the tensors go (random numbers are drawn on the CPU).

    Returns:
        list of ``TrackSequence`` (module docstring).
    """
    seeds, lo, hi = _check(seeds, size, num_things, p_person, 0.0)
    T = positive_int(num_frames, "num_frames")
    if T > MAX_FRAMES:
        raise ValueError(f"num_frames must be in [1, {MAX_FRAMES}], got {num_frames!r}")
    device = torch.device("cpu" if device is None else device)
    L0 = lay.sample_layout(seeds, int(size), lo, hi, float(p_person), 0.0)
    B, K = L0.kind.shape
    S = int(size)
    d0, vel = _trajectories(L0, seeds, T)  # (B, K, 2) each
    t = torch.arange(T, dtype=torch.float64)
    d = d0[:, None] + t[None, :, None, None] * vel[:, None]  # (B, T, K, 2)
    box = _geometry_boxes(L0)[:, None] + d.repeat(1, 1, 1, 2)  # (B, T, K, 4)
    in_view = (box[..., 0] < S) & (box[..., 2] > 0) & (box[..., 1] < S) & (box[..., 3] > 0)
    active = L0.active[:, None] & in_view  # (B, T, K)
    d = torch.where(active[..., None], d, 0.0)  # things out of view stay home (not drawn)
    depth = 0.97 * lay.ground_depth(box[..., 3], L0.horizon[:, None, None], S)

    # the frames: scene b * T + t
    frame_scene = torch.arange(B).repeat_interleave(T)
    Lf = _take(L0, frame_scene)
    Lf = dataclasses.replace(Lf, active=active.flatten(0, 1), **_shift(Lf, d.flatten(0, 1)),
                             velocity=torch.zeros_like(Lf.velocity))
    Lf, order = _sort_slots(Lf, depth.flatten(0, 1))
    stuff = {k: v.repeat_interleave(T, 0) for k, v in draw_stuff(L0, device).items()}
    code, _ = paint_things(Lf, device)  # (BT, S, S)
    HW = S * S
    cls, code_f = stuff["cls"].view(B * T, HW), code.view(B * T, HW)
    k1 = torch.maximum(code_f, cls).long()
    tab = _tables(Lf, device)
    thing = (code_f > 0).float()[:, None]
    image = (tab["rgb"].gather(2, k1[:, None].expand(-1, 3, -1))
             * (stuff["shade"].view(B * T, 1, HW) * (1 - thing) + thing)
             + stuff["light"].view(B * T, 1, HW) * (1 - thing)).view(B, T, 3, S, S)

    # every thing alone: in its frame (for occlusion) and centred (its whole area)
    pairs = torch.nonzero(active.flatten(0, 1))  # (M, 2): frame, original slot
    one = torch.zeros(pairs.shape[0], K, dtype=torch.bool)
    one[torch.arange(pairs.shape[0]), pairs[:, 1]] = True
    alone = dataclasses.replace(_take(Lf, pairs[:, 0]), active=one.gather(1, order[pairs[:, 0]]))
    alone_px = torch.zeros(B * T, K, dtype=torch.long)
    if pairs.numel():
        alone_code, _ = paint_things(alone, device)
        alone_px[pairs[:, 0], pairs[:, 1]] = (alone_code > 0).flatten(1).sum(1).cpu()
    box0 = _geometry_boxes(L0)
    centre = torch.stack([S / 2 - (box0[..., 0] + box0[..., 2]) / 2,
                          S / 2 - (box0[..., 1] + box0[..., 3]) / 2], -1).round()
    slots = torch.arange(K)
    whole = _take(L0, torch.arange(B).repeat_interleave(K))
    whole = dataclasses.replace(whole, active=(slots[None] == slots[:, None]).repeat(B, 1),
                                **_shift(whole, centre.repeat_interleave(K, 0)))
    whole_code, _ = paint_things(whole, device)
    whole_px = (whole_code > 0).flatten(1).sum(1).cpu().view(B, K).float()

    visible = _pixel_counts(code, order, K).view(B, T, K)
    alone_px = alone_px.view(B, T, K)
    slot_map = (code.view(B * T, HW) >> 4).long()
    orig_map = torch.cat([order.new_full((B * T, 1), K), order.to(device)], 1).gather(1, slot_map)
    orig_map = orig_map.view(B, T, S, S)  # original slot per pixel, K where stuff
    return [_sequence(b, seeds[b], S, L0, visible[b], alone_px[b], whole_px[b], vel[b],
                      image[b], orig_map[b]) for b in range(B)]


def _sequence(b: int, seed: int, S: int, L0: lay.Layout, visible: Tensor, alone: Tensor,
              whole: Tensor, vel: Tensor, images: Tensor, orig_map: Tensor) -> TrackSequence:
    """One ``TrackSequence`` from the batch's per-slot counts (CPU [T, K]) and maps."""
    T, K = visible.shape
    device = images.device
    seen = visible > 0  # (T, K)
    first = torch.where(seen.any(0), seen.float().argmax(0), T)  # (K,) first visible frame
    slots = [k for k in sorted(range(K), key=lambda k: (int(first[k]), k)) if first[k] < T]
    id_of = {k: n + 1 for n, k in enumerate(slots)}
    label = torch.tensor(lay.KIND_LABEL)[L0.kind[b]]  # (K,)
    xs = torch.arange(S, device=device)
    out = {"ids": [], "boxes": [], "labels": [], "masks": [], "visibility": [], "occluded": []}
    for t in range(T):
        ks = [k for k in slots if seen[t, k]]
        ks.sort(key=lambda k: id_of[k])
        masks = orig_map[t][None] == torch.tensor(ks, dtype=torch.long, device=device)[:, None,
                                                                                     None]
        cols, rows = masks.any(1), masks.any(2)  # (K_t, W), (K_t, H)
        big = torch.tensor(S, device=device)
        boxes = torch.stack([torch.where(cols, xs, big).amin(1), torch.where(rows, xs, big).amin(1),
                             torch.where(cols, xs + 1, 0).amax(1),
                             torch.where(rows, xs + 1, 0).amax(1)], 1).float()
        out["ids"].append(torch.tensor([id_of[k] for k in ks], dtype=torch.long, device=device))
        out["boxes"].append(boxes.reshape(-1, 4))
        out["labels"].append(label[ks].to(device))
        out["masks"].append(masks)
        # subpixel positions change a thing's pixel count by a few %: the larger count is
        # its whole area, so a thing in full view has visibility 1
        area = torch.maximum(whole[ks], alone[t, ks].float())
        out["visibility"].append((visible[t, ks].float() / area).to(device))
        out["occluded"].append((visible[t, ks] < alone[t, ks]).to(device))
    return TrackSequence(images=images, **out,
                         velocity=vel[slots].float().to(device).reshape(-1, 2),
                         categories=label[slots].to(device), seed=seed, size=S)


def render_sequence(
    seed: int,
    num_frames: int = 24,
    size: int = 64,
    *,
    num_things: tuple[int, int] | int = (3, 6),
    p_person: float = 0.35,
    device: torch.device | str | None = None,
) -> TrackSequence:
    """The tracking sequence number ``seed`` (deterministic); arguments as
    ``render_sequences``. Exactly ``render_sequences([seed], ...)[0]``."""
    return render_sequences([seed], num_frames, size, num_things=num_things,
                            p_person=p_person, device=device)[0]


def sequence_events(seq: TrackSequence) -> dict[str, int]:
    """What happens in a sequence, counted from its ground truth.

    Returns:
        ``entries``: ids first seen after frame 0; ``exits``: ids last seen before the last
        frame; ``occlusions``: ids partly hidden by another thing in some frame;
        ``disappearances``: gaps of one frame or more in which an id is not visible at all,
        between two frames where it is (hidden completely); ``crossings``: pairs of ids
        whose box centres swap their left-right order while both are visible.
    """
    T = len(seq)
    where: dict[int, list[int]] = {}
    cx: dict[int, dict[int, float]] = {}
    occluded: set[int] = set()
    for t in range(T):
        ids = seq.ids[t].tolist()
        centres = ((seq.boxes[t][:, 0] + seq.boxes[t][:, 2]) / 2).tolist()
        for i, c, o in zip(ids, centres, seq.occluded[t].tolist(), strict=True):
            where.setdefault(i, []).append(t)
            cx.setdefault(i, {})[t] = c
            if o:
                occluded.add(i)
    gaps = sum(sum(b - a > 1 for a, b in zip(f[:-1], f[1:], strict=True)) for f in where.values())
    crossings = 0
    ids = sorted(where)
    for n, i in enumerate(ids):
        for j in ids[n + 1:]:
            common = sorted(set(cx[i]) & set(cx[j]))
            signs = {(cx[i][t] > cx[j][t]) - (cx[i][t] < cx[j][t]) for t in common}
            crossings += {-1, 1} <= signs
    return {"entries": sum(f[0] > 0 for f in where.values()),
            "exits": sum(f[-1] < T - 1 for f in where.values()),
            "occlusions": len(occluded), "disappearances": int(gaps), "crossings": crossings}
