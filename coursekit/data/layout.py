"""Random layout of a ShapesWorld scene: where the stuff and the things go.

Every scene draws one fixed-length vector of uniforms from ``torch.Generator().manual_seed(seed)``
on the CPU, so a seed always gives the same scene, whatever the batch or the device.
The fixed slots of that vector are turned into a ``Layout`` (CPU tensors, float64
geometry) with vectorised torch over the batch; ``shapesworld.render_batch`` draws it.
The stuff part of a seed's layout does not depend on ``num_things``, ``p_person`` or
``p_crowd``, so ``render_scene(seed, num_things=0, p_crowd=0)`` shows the stuff alone.

The camera: horizon row ``yh``, focal length ``size`` pixels, height ``CAM_HEIGHT`` m above a
flat ground, so a ground pixel at row ``y`` lies at depth ``CAM_HEIGHT * size / (y - yh)``
(clamped to ``MAX_GROUND_DEPTH``); the sky is at ``SKY_DEPTH``. A thing stands on the
ground at its lowest row ``y_base``; its pixel size shrinks with that depth. Its depth is
``0.97 *`` the least stuff depth over its bounding box, so things are always in front of
the stuff they overlap.

The hard setting (``hard=True``) draws a second, independent stream of numbers per seed
(``hard_uniforms``) and changes the layout only through it: things are smaller (each scaled
by ``HARD_SCALE``), many stand next to an earlier thing so that they overlap
(``HARD_P_CLUSTER``), each carries a stripe or checker texture, and the scene gets a lighting
gain and gradient and per-pixel sensor noise (applied in ``shapesworld.render_batch``). The
first stream is the same, so a seed's stuff (horizon, wall, pond, colours) is the same in
both settings.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from coursekit.data import persons

CAM_HEIGHT, SKY_DEPTH, MAX_GROUND_DEPTH = 1.6, 100.0, 80.0
MAX_THINGS, MAX_CROWD = 12, 8  # thing slots; circles in a crowd
NOISE_COARSE, NOISE_FINE = 5, 11  # texture noise grids (per scene, size-independent)
N_SCENE, N_NOISE, N_CROWD, N_SLOT = 32, NOISE_COARSE**2 + NOISE_FINE**2, 32, 24
N_UNIFORMS = N_SCENE + N_NOISE + N_CROWD + MAX_THINGS * N_SLOT
SHAPE_RADIUS, PERSON_HEIGHT, CROWD_RADIUS = (0.035, 0.15), (0.28, 0.5), (0.03, 0.05)  # x size
CROWD_SPACING = 2.15  # distance between neighbouring crowd circles, in radii
# colours per thing ("shades"): shapes 0 fill, 1 rim; persons 0-9 = DRAW_PARTS;
# crowd 0-7 fills, 8-15 rims
PALETTE = 16

CIRCLE, SQUARE, TRIANGLE, PERSON, CROWD = 0, 1, 2, 3, 4  # thing kinds
KIND_LABEL = [4, 5, 6, 7, 4]  # kind -> category id (a crowd is a group of circles)

# The hard setting: its own uniforms per seed (a scene block, then one block per thing slot
# and one for the crowd), then the sensor noise of both frames.
N_HARD_SCENE, N_HARD_SLOT = 8, 12
N_HARD = N_HARD_SCENE + (MAX_THINGS + 1) * N_HARD_SLOT
HARD_SEED_MUL, HARD_SEED_ADD = 6364136223846793005, 1442695040888963407  # seed -> 2nd stream
HARD_SCALE = (0.55, 0.9)  # each thing's size x this, then at least the minimums below
HARD_MIN_RADIUS, HARD_MIN_HEIGHT = 0.028, 0.2  # x size (1.8 px radius, 12.8 px tall at 64)
HARD_P_CLUSTER = 0.6  # probability that a thing stands next to an earlier one
HARD_CLUSTER_DX, HARD_CLUSTER_DT = 0.14, 0.1  # offset range (uniform units) from that one
HARD_TEXTURE_CONTRAST = (0.15, 0.45)  # a texture darkens its dark bands by this fraction
HARD_GAIN, HARD_GRADIENT = (0.55, 1.15), 0.5  # light: gain x (1 + amplitude x ramp)
HARD_NOISE_SIGMA, HARD_NOISE_CLIP = 0.04, 3.0  # Gaussian sensor noise, clipped at 3 sigma
TEXTURE_KINDS = 5  # stripes along x, along y, along x + y, along x - y; a checker

STUFF_RGB = [(0.38, 0.62, 0.92), (0.30, 0.62, 0.22), (0.16, 0.38, 0.72), (0.62, 0.58, 0.52)]
SHAPE_RGB = [(0.88, 0.18, 0.15), (0.55, 0.22, 0.78), (0.98, 0.72, 0.12)]
SKIN_RGB = [(0.96, 0.80, 0.66), (0.87, 0.65, 0.48), (0.68, 0.46, 0.32), (0.45, 0.30, 0.20)]
SHIRT_RGB = [(0.95, 0.95, 0.95), (0.20, 0.60, 0.95), (0.95, 0.35, 0.55),
             (0.10, 0.75, 0.70), (0.98, 0.55, 0.10), (0.95, 0.90, 0.20)]
TROUSERS_RGB = [(0.15, 0.20, 0.45), (0.25, 0.25, 0.28), (0.45, 0.32, 0.20), (0.10, 0.10, 0.12)]


@dataclass
class Layout:
    """Everything random about a batch of B scenes with K thing slots, as CPU tensors.

    Slots are sorted far to near (inactive slots first), so drawing them in order is the
    painter's algorithm. Geometry is in pixels, float64.
    """

    size: int
    horizon: Tensor  # [B]
    wall: Tensor  # [B, 4] integer pixel edges x0, x1, y0, y1 (x0 == x1: no wall)
    pond: Tensor  # [B, 4] centre x, centre y, semi-axes a, b (a == 0: no pond)
    stuff_rgb: Tensor  # [B, 4, 3] sky, grass, water, wall colours
    wave_phase: Tensor  # [B]
    clouds: Tensor  # [B] cloud threshold in the noise
    noise_coarse: Tensor  # [B, 5, 5]
    noise_fine: Tensor  # [B, 11, 11]
    active: Tensor  # [B, K] bool
    kind: Tensor  # [B, K] int64 (CIRCLE ... CROWD)
    depth: Tensor  # [B, K]
    velocity: Tensor  # [B, K, 2] int64 pixels per frame
    palette: Tensor  # [B, K, 16, 3]
    circle: Tensor  # [B, K, 3] cx, cy, r
    polygon: Tensor  # [B, K, 4, 2] vertices, clockwise on screen (a triangle uses the first 3)
    segments: Tensor  # [B, K, 10, 6] a person's parts as capsules (persons.person_segments)
    keypoints: Tensor  # [B, K, 17, 2]
    crowd: Tensor  # [B, K, 8, 3] cx, cy, r of each circle (r < 0: unused)
    # the hard setting only (None otherwise):
    texture: Tensor | None = None  # [B, K, 4] kind, period, phase (pixels), contrast
    lighting: Tensor | None = None  # [B, 3] gain, gradient amplitude, gradient angle
    pixel_noise: Tensor | None = None  # [B, 2, 3, size, size] float32 standard normal


def max_speed(size: int) -> int:
    """Largest |vx| or |vy| of a thing between the two frames, in pixels (3 at size 64)."""
    return max(1, round(3 * size / 64))


def ground_depth(y: Tensor, horizon: Tensor, size: int) -> Tensor:
    """Depth of the ground plane at row ``y``: ``CAM_HEIGHT * size / (y - horizon)``, clamped."""
    return (CAM_HEIGHT * size) / (y - horizon).clamp(min=CAM_HEIGHT * size / MAX_GROUND_DEPTH)


def uniforms(seeds: Sequence[int]) -> Tensor:
    """Tensor[B, N_UNIFORMS] float64: one independent generator per seed, on the CPU."""
    return torch.stack(
        [torch.rand(N_UNIFORMS, generator=torch.Generator().manual_seed(s), dtype=torch.float64)
         for s in seeds]
    )


def hard_uniforms(seeds: Sequence[int], size: int) -> tuple[Tensor, Tensor]:
    """The hard setting's random numbers, from a second generator per seed (on the CPU).

    Its seed is ``(seed * HARD_SEED_MUL + HARD_SEED_ADD) mod 2**64`` (a bijection, so each
    scene has its own stream). Returns (Tensor[B, N_HARD] float64 uniforms, Tensor[B, 2, 3,
    size, size] float32 standard normal: the sensor noise of frame 1 and frame 2).
    """
    us, noise = [], []
    for s in seeds:
        g = torch.Generator().manual_seed((s * HARD_SEED_MUL + HARD_SEED_ADD) % 2**64)
        us.append(torch.rand(N_HARD, generator=g, dtype=torch.float64))
        noise.append(torch.randn(2, 3, size, size, generator=g))
    return torch.stack(us), torch.stack(noise)


def _hard_things(v: Tensor, h: Tensor, base_lo: Tensor) -> Tensor:
    """Clutter and occlusion: ``v`` (Tensor[B, K, N_SLOT]) with some things moved next to an
    earlier one. Slot r >= 1 is, with probability ``HARD_P_CLUSTER``, placed at the column
    and ground position of a random earlier slot (all earlier slots are active), plus a small
    offset, so the two overlap. ``h``: Tensor[B, K, N_HARD_SLOT]; ``base_lo`` [B, K]."""
    v = v.clone()
    B, K = v.shape[:2]
    rows = torch.arange(B)
    t = base_lo + (1 - base_lo) * v[..., 3]  # (B, K) where the thing stands, in [base_lo, 1]
    for r in range(1, K):
        anchor = (h[:, r, 1] * r).long().clamp(max=r - 1)  # (B,)
        near = h[:, r, 0] < HARD_P_CLUSTER
        x = (v[rows, anchor, 2] + HARD_CLUSTER_DX * (h[:, r, 2] - 0.5)).clamp(0, 1)
        tr = (t[rows, anchor] + HARD_CLUSTER_DT * (h[:, r, 3] - 0.5)).clamp(0, 1)
        v3 = ((tr - base_lo[:, r]) / (1 - base_lo[:, r])).clamp(0, 1)
        v[:, r, 2] = torch.where(near, x, v[:, r, 2])
        v[:, r, 3] = torch.where(near, v3, v[:, r, 3])
        t[:, r] = base_lo[:, r] + (1 - base_lo[:, r]) * v[:, r, 3]
    return v


def _hard_texture(h: Tensor) -> Tensor:
    """Tensor[..., 4] (kind, period, phase, contrast) from slot uniforms ``h`` [..., N_HARD_SLOT]:
    one of ``TEXTURE_KINDS`` patterns, bands 2-4 pixels wide, contrast in
    ``HARD_TEXTURE_CONTRAST``."""
    kind = (h[..., 5] * TEXTURE_KINDS).floor().clamp(max=TEXTURE_KINDS - 1)
    period = 2 + (h[..., 6] * 3).floor().clamp(max=2)
    phase = (h[..., 7] * 2 * period).floor()
    lo, hi = HARD_TEXTURE_CONTRAST
    return torch.stack([kind, period, phase, lo + (hi - lo) * h[..., 8]], -1)


def _pick(table: list, u: Tensor) -> Tensor:
    """Rows of ``table`` chosen uniformly by ``u`` in [0, 1): Tensor[..., 3]."""
    t = torch.tensor(table, dtype=torch.float64)
    return t[(u * len(table)).long().clamp(max=len(table) - 1)]


def _rotate(xy: Tensor, angle: Tensor) -> Tensor:
    """Rotate points ``xy`` [..., V, 2] by ``angle`` [...] (radians, clockwise on screen)."""
    c, s = torch.cos(angle)[..., None], torch.sin(angle)[..., None]
    return torch.stack([c * xy[..., 0] - s * xy[..., 1], s * xy[..., 0] + c * xy[..., 1]], dim=-1)


def _scene_stuff(u: Tensor, size: int) -> dict:
    """Horizon, wall, pond, colours and textures from the scene block of the uniforms."""
    S = float(size)
    horizon = S * (0.3 + 0.2 * u[:, 0])
    has_wall = u[:, 2] < 0.55
    wx = S * u[:, 3]
    half = 0.5 * S * (0.2 + 0.25 * u[:, 4])
    wy1 = horizon + S * (0.03 + 0.17 * u[:, 6])
    wall = torch.stack(
        [wx - half, wx + half, wy1 - S * (0.15 + 0.2 * u[:, 5]), wy1], -1
    ).round().clamp(0, S)
    wall[~has_wall] = 0.0
    has_pond = u[:, 7] < 0.5
    a = S * (0.15 + 0.2 * u[:, 10]) * has_pond
    pond = torch.stack([S * u[:, 8], horizon + (S - horizon) * (0.3 + 0.6 * u[:, 9]),
                        a, a * (0.25 + 0.2 * u[:, 11])], -1)
    base = torch.tensor(STUFF_RGB, dtype=torch.float64)
    stuff_rgb = (base + 0.1 * (u[:, 12:24].view(-1, 4, 3) - 0.5)).clamp(0, 1)
    return dict(horizon=horizon, wall=wall, pond=pond, stuff_rgb=stuff_rgb,
                wave_phase=u[:, 24], clouds=0.45 + 0.3 * u[:, 25])


def _thing_geometry(
    v: Tensor, horizon: Tensor, size: int, base_lo: Tensor, scale: Tensor | None = None
) -> dict:
    """Geometry of every kind for every slot (``v``: Tensor[B, K, N_SLOT] uniforms).

    All kinds are computed for all slots (cheap: a few thousand rows); ``sample_layout``
    keeps the one each slot is. Every thing touches the row ``y_base`` from above.
    ``scale`` (Tensor[B, K], the hard setting) shrinks shapes and persons.
    """
    S, hz = float(size), horizon[:, None]
    y_base = hz + (1.08 * S - hz) * (base_lo + (1 - base_lo) * v[..., 3])  # (B, K)
    g = (y_base - hz) / CAM_HEIGHT  # pixels per metre at that depth
    x = S * (0.04 + 0.92 * v[..., 2])
    r = ((0.3 + 0.35 * v[..., 4]) * g).clamp(SHAPE_RADIUS[0] * S, SHAPE_RADIUS[1] * S)
    if scale is not None:
        r = (r * scale).clamp(min=HARD_MIN_RADIUS * S)
    circle = torch.stack([x, y_base - r, r], -1)
    square = torch.tensor([[-1, -1], [1, -1], [1, 1], [-1, 1]], dtype=torch.float64) * 0.9
    tri = torch.tensor([[0, -1], [0.866, 0.5], [-0.866, 0.5], [0, -1]], dtype=torch.float64) * 1.2
    angle = v[..., 5] - 0.5  # up to +-0.5 rad (29 degrees)
    polys = [_rotate(p * r[..., None, None], angle) for p in (square, tri)]  # (B, K, 4, 2) each
    polys = [p + torch.stack([x, y_base], -1)[..., None, :] - torch.stack(
        [torch.zeros_like(x), p[..., 1].amax(-1)], -1)[..., None, :] for p in polys]
    h = ((1.45 + 0.4 * v[..., 4]) * g).clamp(PERSON_HEIGHT[0] * S, PERSON_HEIGHT[1] * S)
    if scale is not None:
        h = (h * scale).clamp(min=HARD_MIN_HEIGHT * S)
    lo = torch.tensor([0.15, -1.2, 0.03, -0.35], dtype=torch.float64).repeat_interleave(2)
    hi = torch.tensor([2.6, 1.2, 0.45, 0.25], dtype=torch.float64).repeat_interleave(2)
    pose = lo + (hi - lo) * v[..., 11:19]
    joints = persons.person_joints(h.flatten(), pose.flatten(0, 1))
    joints = joints.view(*h.shape, persons.NUM_JOINTS, 2)
    radii = persons.limb_radii(h.flatten()).view(*h.shape, 10)
    feet = (joints[..., [persons.L_ANKLE, persons.R_ANKLE], 1] + radii[..., 1:3]).amax(-1)
    joints = joints + torch.stack([x, y_base - feet], -1)[..., None, :]
    keypoints = persons.person_keypoints(joints.flatten(0, 1), h.flatten()).view(*h.shape, 17, 2)
    segments = persons.person_segments(joints.flatten(0, 1), radii.flatten(0, 1))
    segments = segments.view(*h.shape, 10, 6)
    return dict(y_base=y_base, circle=circle, square=polys[0], triangle=polys[1], joints=joints,
                radii=radii, keypoints=keypoints, segments=segments)


def _crowd_geometry(c: Tensor, horizon: Tensor, size: int) -> dict:
    """A tight cluster of 4-8 small touching circles (one iscrowd instance) from crowd block ``c``.

    The centres sit on a hexagonal lattice of spacing ``CROWD_SPACING`` radii (the centre point
    and random ones of its 12 nearest neighbours), so the circles never overlap.
    """
    S = float(size)
    y_base = horizon + (1.08 * S - horizon) * (0.15 + 0.85 * c[:, 3])
    rho = (0.22 * (y_base - horizon) / CAM_HEIGHT).clamp(
        CROWD_RADIUS[0] * S, CROWD_RADIUS[1] * S
    )  # (B,)
    k = torch.arange(6, dtype=torch.float64)
    ring1 = torch.stack([torch.cos(k * math.pi / 3), torch.sin(k * math.pi / 3)], -1)
    ring2 = 3**0.5 * torch.stack(
        [torch.cos((k + 0.5) * math.pi / 3), torch.sin((k + 0.5) * math.pi / 3)], -1
    )
    lattice = torch.cat([ring1, ring2])  # (12, 2) at distance >= 1 from each other and from 0
    pick = torch.argsort(c[:, 8:20], dim=1)[:, : MAX_CROWD - 1]  # random neighbours, (B, 7)
    offsets = torch.cat(
        [torch.zeros(c.shape[0], 1, 2, dtype=torch.float64), lattice[pick]], dim=1
    )  # (B, 8, 2)
    offsets = _rotate(offsets, 2 * math.pi * c[:, 20]) * (CROWD_SPACING * rho)[:, None, None]
    used = torch.arange(MAX_CROWD) < (4 + (5 * c[:, 1]).long())[:, None]
    cx = S * (0.08 + 0.84 * c[:, 2])[:, None] + offsets[..., 0]
    cy = offsets[..., 1]
    cy = cy + (y_base - rho)[:, None] - torch.where(used, cy, -math.inf).amax(-1, keepdim=True)
    r = torch.where(used, rho[:, None], -1.0)
    return dict(y_base=y_base, circles=torch.stack([cx, cy, r], -1))  # (B, 8, 3)


def _palette(v: Tensor, kind: Tensor, crowd_u: Tensor) -> Tensor:
    """Tensor[B, K + 1, 16, 3]: the colours of each slot, indexed by the pixel's shade."""
    B, K = kind.shape
    pal = torch.zeros(B, K + 1, PALETTE, 3, dtype=torch.float64)
    fill = (
        torch.tensor(SHAPE_RGB, dtype=torch.float64)[kind.clamp(max=2)]
        + 0.16 * (v[..., 6:9] - 0.5)
    ).clamp(0, 1)
    pal[:, :K, 0], pal[:, :K, 1] = fill, 0.55 * fill  # shapes: fill and outline
    skin, shirt = _pick(SKIN_RGB, v[..., 19]), _pick(SHIRT_RGB, v[..., 20])
    trousers = _pick(TROUSERS_RGB, v[..., 21])
    by_part = {1: skin, 2: shirt, 3: shirt, 4: shirt, 5: skin, 6: skin, 7: trousers, 8: trousers,
               9: 0.8 * trousers, 10: 0.8 * trousers}
    # shade k = the k-th part drawn
    person = torch.stack([by_part[p] for p in persons.DRAW_PARTS], dim=2)
    is_person = (kind == PERSON)[..., None, None]
    pal[:, :K, :10] = torch.where(is_person, person, pal[:, :K, :10])
    shade = 0.75 + 0.35 * crowd_u[:, :MAX_CROWD, None]  # one colour per crowd circle
    crowd = (torch.tensor(SHAPE_RGB[0], dtype=torch.float64) * shade).clamp(0, 1)
    pal[:, K, :MAX_CROWD], pal[:, K, MAX_CROWD:] = crowd, 0.55 * crowd  # fill, outline
    return pal


def _bbox(kind: Tensor, geo: dict, crowd: Tensor) -> Tensor:
    """Tensor[B, K + 1, 4] (x_lo, x_hi, y_lo, y_hi) of each slot's thing."""
    c = geo["circle"]
    boxes = [torch.stack([c[..., 0] - c[..., 2], c[..., 0] + c[..., 2],
                          c[..., 1] - c[..., 2], c[..., 1] + c[..., 2]], -1)]
    for p in (geo["square"], geo["triangle"]):
        boxes.append(torch.stack([p[..., 0].amin(-1), p[..., 0].amax(-1),
                                  p[..., 1].amin(-1), p[..., 1].amax(-1)], -1))
    j, r = geo["joints"], geo["radii"].amax(-1, keepdim=True)
    boxes.append(torch.stack([(j[..., 0] - r).amin(-1), (j[..., 0] + r).amax(-1),
                              (j[..., 1] - r).amin(-1), (j[..., 1] + r).amax(-1)], -1))
    box = torch.stack(boxes, dim=2).gather(2, kind[..., None, None].expand(-1, -1, 1, 4)).squeeze(2)
    used = crowd[..., 2:] > 0
    lo, hi = crowd[..., :2] - crowd[..., 2:], crowd[..., :2] + crowd[..., 2:]
    lo, hi = torch.where(used, lo, math.inf).amin(1), torch.where(used, hi, -math.inf).amax(1)
    crowd_box = torch.stack([lo[:, 0], hi[:, 0], lo[:, 1], hi[:, 1]], -1)  # (B, 4)
    return torch.cat([box, crowd_box[:, None]], dim=1)


def sample_layout(
    seeds: Sequence[int], size: int, lo: int, hi: int, p_person: float, p_crowd: float,
    hard: bool = False,
) -> Layout:
    """Turn each seed's uniforms into a ``Layout`` with ``hi`` thing slots plus one crowd slot.

    ``hard=True``: smaller, clustered, textured things, lighting and noise (module docstring).
    """
    u = uniforms(seeds)
    B = len(seeds)
    scene, noise = u[:, :N_SCENE], u[:, N_SCENE : N_SCENE + N_NOISE]
    c = u[:, N_SCENE + N_NOISE : N_SCENE + N_NOISE + N_CROWD]
    v = u[:, N_SCENE + N_NOISE + N_CROWD :].view(B, MAX_THINGS, N_SLOT)[:, :hi]  # (B, K, N_SLOT)
    stuff = _scene_stuff(scene, size)
    horizon = stuff["horizon"]

    count = lo + (scene[:, 1] * (hi - lo + 1)).long().clamp(max=hi - lo)
    is_person = v[..., 0] < p_person
    kind = torch.where(is_person, PERSON, (v[..., 1] * 3).long().clamp(max=2))  # (B, K)
    base_lo = torch.where(is_person, 0.4, 0.15)
    extra: dict = {}
    if hard:
        hu, sensor = hard_uniforms(seeds, size)
        hs = hu[:, N_HARD_SCENE:].view(B, MAX_THINGS + 1, N_HARD_SLOT)
        hs = torch.cat([hs[:, :hi], hs[:, MAX_THINGS:]], dim=1)  # (B, K + 1, N_HARD_SLOT)
        v = _hard_things(v, hs[:, :hi], base_lo)
        scale = HARD_SCALE[0] + (HARD_SCALE[1] - HARD_SCALE[0]) * hs[:, :hi, 4]
        geo = _thing_geometry(v, horizon, size, base_lo, scale)
        gain = HARD_GAIN[0] + (HARD_GAIN[1] - HARD_GAIN[0]) * hu[:, 0]
        extra = dict(lighting=torch.stack([gain, HARD_GRADIENT * hu[:, 1],
                                           2 * math.pi * hu[:, 2]], -1),
                     pixel_noise=sensor)
    else:
        geo = _thing_geometry(v, horizon, size, base_lo)
    crowd = _crowd_geometry(c, horizon, size)
    kind = torch.cat([kind, torch.full((B, 1), CROWD)], dim=1)  # (B, K + 1)
    active = torch.cat([torch.arange(hi) < count[:, None], (c[:, 0] < p_crowd)[:, None]], dim=1)

    box = _bbox(kind[:, :hi], geo, crowd["circles"])  # (B, K + 1, 4)
    y_base = torch.cat([geo["y_base"], crowd["y_base"][:, None]], dim=1)
    wall = stuff["wall"][:, None]  # (B, 1, 4)
    on_wall = (
        (box[..., 0] < wall[..., 1]) & (box[..., 1] > wall[..., 0])
        & (box[..., 2] < wall[..., 3]) & (box[..., 3] > wall[..., 2])
    )
    on_wall &= wall[..., 1] > wall[..., 0]  # x0 == x1: no wall
    least = ground_depth(y_base, horizon[:, None], size)
    wall_depth = ground_depth(wall[..., 3], horizon[:, None], size)
    least = torch.where(on_wall, torch.minimum(least, wall_depth), least)
    depth = 0.97 * least

    vmax = max_speed(size)
    vel_u = torch.cat([v[..., 9:11], c[:, None, 5:7]], dim=1)
    velocity = (vel_u * (2 * vmax + 1)).long().clamp(max=2 * vmax) - vmax  # (B, K + 1, 2)
    pad = torch.zeros(B, 1, dtype=torch.float64)
    polygon = torch.where((kind[:, :hi] == SQUARE)[..., None, None], geo["square"], geo["triangle"])
    slot = dict(
        kind=kind, depth=depth, velocity=velocity,
        palette=_palette(v, kind[:, :hi], c[:, 24:32]),
        circle=torch.cat([geo["circle"], pad[..., None].expand(-1, -1, 3)], 1),
        polygon=torch.cat([polygon, pad[..., None, None].expand(-1, -1, 4, 2)], 1),
        segments=torch.cat([geo["segments"], pad[..., None, None].expand(-1, -1, 10, 6)], 1),
        keypoints=torch.cat([geo["keypoints"], pad[..., None, None].expand(-1, -1, 17, 2)], 1),
        crowd=torch.cat([torch.zeros(B, hi, MAX_CROWD, 3, dtype=torch.float64),
                         crowd["circles"][:, None]], 1),
    )
    if hard:
        slot["texture"] = _hard_texture(hs)  # (B, K + 1, 4)
    # Painter's order: inactive slots first, then far to near (stable, so ties keep slot order).
    order = torch.sort(
        torch.where(active, depth, math.inf), dim=1, descending=True, stable=True
    ).indices
    for name, t in slot.items():
        idx = order.view(B, -1, *([1] * (t.dim() - 2))).expand(-1, -1, *t.shape[2:])
        slot[name] = t.gather(1, idx)
    return Layout(
        size=size, active=active.gather(1, order), **slot,
        noise_coarse=noise[:, : NOISE_COARSE**2].view(B, NOISE_COARSE, NOISE_COARSE),
        noise_fine=noise[:, NOISE_COARSE**2 :].view(B, NOISE_FINE, NOISE_FINE), **stuff,
        **extra,
    )
