"""Drawing a ShapesWorld ``Layout``: textured stuff, and things painted far to near.

Stuff is computed on ``[B, H, W]`` grids, most of it per row or per column (the sky, the
ground's depth and stripes are functions of the row only). Things are made of primitives
(disks, convex polygons, capsules), each rasterised in a small window around it, all of
one type at once. Every covered window pixel carries a byte

    code = (slot + 1) << 4 | shade

where slots are sorted far to near and ``shade`` (the colour index inside the thing) grows
with the drawing order inside a thing (a person's legs, then torso, arms, head). Pasting
all windows with one ``scatter_reduce(..., "amax")`` keeps, at each pixel, the code drawn
last: the painter's algorithm as a z-buffer, in one deterministic call. Frame 2 pastes the
same windows shifted by each thing's integer velocity, so the optical flow is exact.

Per-pixel maths uses only ``+ - * /``, comparisons, gathers and a small matmul; sines are
taken in float64 on the CPU; so a scene is the same in every batch and (to 1e-6) on
every device. Tested in tests/data/test_shapesworld.py.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from coursekit.data import layout as lay
from coursekit.data.persons import _capsule, segment_window

SKY, GRASS, WATER, WALL = 0, 1, 2, 3


def _polygon(X: Tensor, Y: Tensor, verts: Tensor) -> Tensor:
    """Signed distance into a convex polygon: ``min_i (e_i x (p - a_i)) / |e_i|``.

    ``verts`` is Tensor[T, V, 2], listed clockwise on screen (x right, y down), so every
    edge ``e_i = a_{i+1} - a_i`` has the inside where the cross product is positive.
    X [T, 1, W], Y [T, H, 1] -> Tensor[T, H, W]; inside where ``>= 0``.
    """
    a = verts
    e = verts.roll(-1, dims=1) - a  # (T, V, 2)
    n = e / torch.sqrt(e[..., :1] * e[..., :1] + e[..., 1:] * e[..., 1:])  # unit edge directions
    dist = None
    for i in range(verts.shape[1]):
        ex, ey = n[:, i, 0, None, None], n[:, i, 1, None, None]
        di = ex * (Y - a[:, i, 1, None, None]) - ey * (X - a[:, i, 0, None, None])  # (T, H, W)
        dist = di if dist is None else torch.minimum(dist, di)
    return dist


def _disk(
    X: Tensor, Y: Tensor, cx: Tensor, cy: Tensor, r: Tensor, rim: float
) -> tuple[Tensor, Tensor]:
    """Pixels of a disk: ``(x - cx)^2 + (y - cy)^2 <= r^2``, and its rim (the outer ``rim`` px).

    X [T, 1, W] and Y [T, H, 1] are pixel centres, cx, cy, r broadcast (e.g. [T, 1, 1]); a
    disk with r <= 0 is empty. Returns (inside, on_rim), bool [T, H, W].
    """
    d2 = (X - cx) * (X - cx) + (Y - cy) * (Y - cy)  # (T, H, W): the x and y parts are separable
    inside = (d2 <= r * r) & (r > 0)
    inner = (r - rim).clamp(min=0.0)
    return inside, inside & (d2 > inner * inner)


def _lerp_matrix(g: int, size: int) -> Tensor:
    """Tensor[size, g] float64: row i holds the bilinear weights of output pixel i on g grid points
    (``align_corners=True``), so ``R @ grid @ R.T`` upsamples a ``[g, g]`` grid."""
    pos = torch.linspace(0, g - 1, size, dtype=torch.float64)
    i0 = pos.floor().long().clamp(max=g - 2)
    R = torch.zeros(size, g, dtype=torch.float64)
    R[torch.arange(size), i0] = 1 - (pos - i0)
    R[torch.arange(size), i0 + 1] = pos - i0
    return R


def _noise(L: lay.Layout, device: torch.device) -> Tensor:
    """Smooth value noise in [0, 1]: 0.6 x a 5 x 5 grid + 0.4 x an 11 x 11 grid, both upsampled
    bilinearly to ``[B, size, size]`` in one block-diagonal matmul (float64 on the CPU: no TF32,
    works on MPS, the same on every device)."""
    B, gc, gf = L.noise_coarse.shape[0], lay.NOISE_COARSE, lay.NOISE_FINE
    R = torch.cat([_lerp_matrix(gc, L.size), _lerp_matrix(gf, L.size)], dim=1)  # (S, gc + gf)
    G = torch.zeros(B, gc + gf, gc + gf, dtype=torch.float64)
    G[:, :gc, :gc], G[:, gc:, gc:] = 0.6 * L.noise_coarse, 0.4 * L.noise_fine
    RG = torch.matmul(R, G)  # (B, S, gc + gf)
    noise = torch.matmul(RG.view(-1, gc + gf), R.T).view(B, L.size, L.size)
    return noise.to(device=device, dtype=torch.float32).clamp(0.0, 1.0)


def draw_stuff(L: lay.Layout, device: torch.device) -> dict[str, Tensor]:
    """The background of every scene, as [B, H, W] maps: ``cls`` (uint8 stuff id), ``depth``,
    and the texture ``shade`` and ``light`` such that ``colour = rgb[cls] * shade + light``.

    Sky above the horizon (whiter near it, with clouds), grass below it (noise and mowing
    stripes every 1.5 m of depth), a water pond (an ellipse, with wave crests) and a brick
    wall (a rectangle standing on the ground). ``shade + light <= 0.99``, so colours stay in [0, 1].
    """
    B, S = L.horizon.shape[0], L.size
    c = torch.arange(S, dtype=torch.float64) + 0.5  # pixel centres
    idx = torch.arange(S)

    def dev(x: Tensor) -> Tensor:
        return x.to(device=device, dtype=torch.float32 if x.is_floating_point() else x.dtype)

    # Per row and per column (float64 on the CPU, [B, S]).
    yh = L.horizon[:, None]
    sky_row = c[None, :] < yh
    ground = lay.ground_depth(c[None, :], yh, S)
    depth_row = torch.where(sky_row, lay.SKY_DEPTH, ground)
    band = (ground / 1.5).floor()
    stripe = torch.where(sky_row, 0.0, band - 2 * (band / 2).floor())
    haze = 0.5 * (c[None, :] / yh) ** 2
    cloud_gain, cloud_bias = torch.where(sky_row, 1 - haze, 0.0), torch.where(sky_row, haze, 0.0)
    x0, x1, y0, y1 = L.wall.long().unbind(-1)
    wall_cols = (idx >= x0[:, None]) & (idx < x1[:, None])
    wall_rows = (idx >= y0[:, None]) & (idx < y1[:, None])
    # bricks of bh x 2 bh pixels, mortar mw wide
    bh, mw = max(2, round(0.07 * S)), max(1, round(0.01 * S))
    rel_y, rel_x = idx - y0[:, None], idx - x0[:, None]
    # odd rows are shifted by half a brick
    mortar_row, odd_row = rel_y % bh < mw, (rel_y // bh) % 2 == 1
    joint_even, joint_odd = rel_x % (2 * bh) < mw, (rel_x + bh) % (2 * bh) < mw
    px, py, pa, pb = L.pond.unbind(-1)
    has_pond = pa > 0
    ex2 = (c[None, :] - px[:, None]) ** 2 / torch.where(has_pond, pa, 1.0)[:, None] ** 2
    ey2 = torch.where(
        has_pond[:, None],
        (c[None, :] - py[:, None]) ** 2 / torch.where(has_pond, pb, 1.0)[:, None] ** 2,
        2.0,
    )
    wave_y = 2 * math.pi * (c[None, :] / (0.07 * S) + L.wave_phase[:, None])  # (B, S)
    wave_x = 0.6 * torch.sin(2 * math.pi * c / (0.3 * S))  # (S,)

    # Full maps, [B, S, S].
    wall = dev(wall_rows)[:, :, None] & dev(wall_cols)[:, None, :]
    pond = (dev(ex2)[:, None, :] + dev(ey2)[:, :, None]) <= 1.0
    below = dev(~sky_row)[:, :, None]
    pond = pond & below
    # sky 0 grass 1 water 2 wall 3
    cls = (below.to(torch.uint8) + pond.to(torch.uint8)) | (wall.to(torch.uint8) * WALL)
    wall_f = wall.to(torch.float32)
    wall_depth = dev(lay.ground_depth(L.wall[:, 3], L.horizon, S))  # (B,)
    depth = torch.lerp(dev(depth_row)[:, :, None].expand(B, S, S),
                       wall_depth[:, None, None].expand(B, S, S), wall_f)

    n = _noise(L, device)
    shade = (0.7 + 0.27 * n) - dev(0.06 * stripe)[:, :, None]  # grass, water, wall
    shade = shade * below.to(torch.float32) + dev(0.98 * sky_row)[:, :, None]  # sky: 0.98
    mortar = wall & (dev(mortar_row)[:, :, None]
                     | (dev(odd_row)[:, :, None] & dev(joint_odd)[:, None, :])
                     | (dev(~odd_row)[:, :, None] & dev(joint_even)[:, None, :]))
    shade = shade * (1.0 - 0.4 * mortar.to(torch.float32))
    cloud = ((n - dev(L.clouds)[:, None, None]) * 5.0).clamp(0.0, 1.0) * 0.85
    light = cloud * dev(cloud_gain)[:, :, None] + dev(cloud_bias)[:, :, None]  # 0 below the horizon
    crest = (dev(wave_y.sin())[:, :, None] * dev(wave_x.cos())
             + dev(wave_y.cos())[:, :, None] * dev(wave_x.sin()))
    crest = (crest + 1.0) * 0.5
    crest = crest * crest
    crest = crest * crest
    light = (light + 0.45 * crest * crest * pond.to(torch.float32)) * (1.0 - wall_f)
    return {"cls": cls, "depth": depth, "shade": shade * (1.0 - light), "light": light}


def _origin(centre: Tensor, n: int) -> Tensor:
    """Tensor[T, 2] int64 top-left corner of the n x n window centred on ``centre`` [T, 2]."""
    return centre.floor().long() - n // 2


def _primitives(L: lay.Layout) -> list[dict]:
    """Every primitive to draw, grouped by type and window size (CPU tensors).

    Each group has ``rows`` (flat slot index b * K + slot), ``origin`` [T, 2], ``n``, the
    geometry, its ``shade`` and the shade offset of its ``rim``. A crowd is 8 disks (unused
    ones have r < 0), a person 10 capsules (the head is a capsule of length 0), shade k for
    the k-th part drawn (``DRAW_PARTS[k]``).
    """
    S = L.size
    act, kind = L.active.flatten(), L.kind.flatten()
    groups = []
    rows = torch.nonzero(act & (kind == lay.CIRCLE)).squeeze(1)
    n = math.ceil(2 * lay.SHAPE_RADIUS[1] * S) + 3
    disk = L.circle.flatten(0, 1)[rows]
    groups.append(dict(type="disk", rows=rows, geo=disk, origin=_origin(disk[:, :2], n), n=n,
                       shade=0, rim=1))
    for k, nv, f in ((lay.SQUARE, 4, 0.9 * 2**0.5), (lay.TRIANGLE, 3, 1.2)):
        rows = torch.nonzero(act & (kind == k)).squeeze(1)
        n = math.ceil(2 * f * lay.SHAPE_RADIUS[1] * S) + 3
        verts = L.polygon.flatten(0, 1)[rows, :nv]
        centre = (verts.amin(1) + verts.amax(1)) * 0.5
        groups.append(dict(type="polygon", rows=rows, geo=verts, origin=_origin(centre, n), n=n,
                           shade=0, rim=1))
    rows = torch.nonzero(act & (kind == lay.CROWD)).squeeze(1)
    n = math.ceil(2 * lay.CROWD_RADIUS[1] * S) + 3
    for i in range(lay.MAX_CROWD):
        disk = L.crowd.flatten(0, 1)[rows, i]
        groups.append(dict(type="disk", rows=rows, geo=disk, origin=_origin(disk[:, :2], n), n=n,
                           shade=i, rim=lay.MAX_CROWD))
    rows = torch.nonzero(act & (kind == lay.PERSON)).squeeze(1)
    for k, n in enumerate(segment_window(S)):
        seg = L.segments.flatten(0, 1)[rows, k]
        centre = seg[:, :2] + seg[:, 2:4] * seg[:, 4:5] * 0.5
        groups.append(dict(type="capsule", rows=rows, geo=seg, origin=_origin(centre, n), n=n,
                           shade=k, rim=0))
    return [g for g in groups if g["rows"].numel() > 0]


def _rasterise(
    kind: str, geo: Tensor, X: Tensor, Y: Tensor, rim: float
) -> tuple[Tensor, Tensor]:
    """(inside, on_rim) bool [T, n, n] of T primitives of one ``kind``.

    The windows are X [T, 1, n] and Y [T, n, 1] (pixel centres).

    ``geo``: "disk" [T, 3] (cx, cy, r; r < 0 draws nothing), "polygon" [T, V, 2] (clockwise
    vertices), "capsule" [T, 6] (``persons.person_segments`` rows; no rim).
    """
    if kind == "disk":
        return _disk(X, Y, geo[:, 0, None, None], geo[:, 1, None, None], geo[:, 2, None, None],
                     rim)
    if kind == "polygon":
        d = _polygon(X, Y, geo)
        return d >= 0, (d >= 0) & (d < rim)
    d2, _, _ = _capsule(X, Y, geo[:, None, None, :])
    r = geo[:, 5, None, None]
    inside = d2 <= r * r
    return inside, torch.zeros_like(inside)


def paint_things(L: lay.Layout, device: torch.device) -> tuple[Tensor, Tensor]:
    """Rasterise every primitive and paste them all with scatter-max, in frame 1 and frame 2.

    Returns:
        (code, code2): Tensor[B, H, W] uint8 each, 0 where no thing is (see the module
        docstring; ``code >> 4`` is the slot + 1, ``code & 15`` the shade).
    """
    B, K = L.kind.shape
    S = L.size
    outline = max(0.75, 0.012 * S)  # shapes get a darker rim this wide (pixels)
    groups = _primitives(L)
    vel = L.velocity.flatten(0, 1)
    no_move = torch.zeros(2, dtype=torch.long)
    lo = min([0] + [int((g["origin"] + torch.minimum(vel[g["rows"]], no_move)).min())
                    for g in groups])
    hi = max([S] + [int((g["origin"] + g["n"] + vel[g["rows"]].clamp(min=0)).max())
                    for g in groups])
    pad = max(-lo, hi - S)  # the canvas is padded so that every window lies inside it
    Sp = S + 2 * pad
    dtype = torch.uint8 if device.type == "cpu" else torch.int32  # atomic max on GPUs wants 32 bits
    canvases = [torch.zeros(B * Sp * Sp, dtype=dtype, device=device) for _ in range(2)]
    index, values, shifts = [], [], []
    for g in groups:
        rows, n = g["rows"], g["n"]
        ar = torch.arange(n, device=device)
        ox = g["origin"][:, 0].to(device)[:, None, None]
        oy = g["origin"][:, 1].to(device)[:, None, None]
        # pixel centres: (T, 1, n), (T, n, 1)
        X, Y = (ox + ar + 0.5).float(), (oy + ar[:, None] + 0.5).float()
        geo = g["geo"].to(device=device, dtype=torch.float32)
        inside, rim = _rasterise(g["type"], geo, X, Y, outline)
        slot = (rows % K + 1).to(device=device, dtype=torch.uint8)[:, None, None]
        shade = g["shade"] + rim.to(torch.uint8) * g["rim"]  # a shape's rim has its own colour
        values.append((inside.to(torch.uint8) * ((slot << 4) + shade)).flatten().to(dtype))
        b = (rows // K).to(device)[:, None, None]
        # (T, n, n) positions on the padded canvases
        index.append((((b * Sp + oy + pad + ar[:, None]) * Sp) + ox + pad + ar).flatten())
        v = vel[rows].to(device)
        shifts.append(((v[:, 1] * Sp + v[:, 0])[:, None, None]).expand(-1, n, n).flatten())
    if groups:
        index_t, values_t = torch.cat(index), torch.cat(values)
        canvases[0].scatter_reduce_(0, index_t, values_t, "amax")
        canvases[1].scatter_reduce_(0, index_t + torch.cat(shifts), values_t, "amax")
    return tuple(cv.view(B, Sp, Sp)[:, pad : pad + S, pad : pad + S].to(torch.uint8).contiguous()
                 for cv in canvases)
