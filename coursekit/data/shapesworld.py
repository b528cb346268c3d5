"""ShapesWorld: procedural scenes with every annotation the course needs, rendered in torch.

``render_scene(seed)`` returns a ``Scene``: the picture, semantic classes, instances
(boxes, labels, visible masks, iscrowd), 17 COCO keypoints per person, DensePose-style
body parts with a (U, V) chart, depth, and a second frame with its optical flow.
``render_batch(seeds)`` renders many at once (the fast path) and ``render_scene(s)`` is
exactly ``render_batch([s]).scene(0)``. The random layout is in ``layout.py``, the
drawing in ``draw.py``, the stick figures in ``persons.py``.

Conventions (the scene contract in DESIGN.md):

* ``CATEGORIES`` ids are the train ids stored in ``semantic``: 0 sky, 1 grass, 2 water,
  3 wall (stuff), 4 circle, 5 square, 6 triangle, 7 person (things). Every pixel shows
  some stuff or thing, so there is no background class; ``IGNORE = 255`` is reserved for
  losses and transforms and never appears in a rendered scene (crowd pixels carry their
  category, circle). COCO exports use ``category_id = id + 1``.
* Pixel ``(i, j)`` covers ``[j, j + 1) x [i, i + 1)``; its centre is ``(j + 0.5, i + 0.5)``.
  Boxes are pixel edges: ``x1 = min col, x2 = max col + 1``. A keypoint ``(x, y)`` lies in
  pixel ``(floor(y), floor(x))``.
* Instances are numbered far to near (the drawing order): where things overlap, the one
  with the larger instance id is in front. ``masks`` are the visible parts; a thing that is
  completely hidden is not an instance. ``parts`` values are ``PART_NAMES``.
* Frame 2: the stuff is static, each thing moves by its own integer velocity (at most
  ``3 * size / 64`` pixels), so ``flow`` is exact; ``flow_valid`` marks the frame-1 pixels
  still visible, at ``p + flow[p]``, in frame 2.

``difficulty="hard"`` renders harder scenes with the same fields and the same guarantees:
more things (6-12 by default), smaller (x 0.55-0.9), many standing in front of each other,
each with a stripe or checker texture that moves with it; then a lighting gain and gradient
(``image = gain * (1 + a * ramp) * colour``, the same in both frames) and Gaussian sensor
noise (sigma 0.04, new in each frame), clipped to [0, 1]. So ``next_image`` warped by
``flow`` equals ``image`` only up to the noise and the lighting ramp (the geometry, masks
and flow stay exact). ``difficulty="easy"`` (the default) is today's scenes, bit for bit.

Tested in tests/data/test_shapesworld.py.
"""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass, fields

import torch
from torch import Tensor

from coursekit.data import layout as lay
from coursekit.data.draw import draw_stuff, paint_things
from coursekit.data.persons import (
    DRAW_PARTS,
    KEYPOINT_NAMES,
    PART_NAMES,
    SKELETON,
    keypoint_visibility,
    uv_map,
)
from coursekit.validators import describe

CATEGORIES = [
    {"id": 0, "name": "sky", "isthing": 0}, {"id": 1, "name": "grass", "isthing": 0},
    {"id": 2, "name": "water", "isthing": 0}, {"id": 3, "name": "wall", "isthing": 0},
    {"id": 4, "name": "circle", "isthing": 1}, {"id": 5, "name": "square", "isthing": 1},
    {"id": 6, "name": "triangle", "isthing": 1}, {"id": 7, "name": "person", "isthing": 1},
]
NUM_CLASSES = len(CATEGORIES)
THING_IDS = [c["id"] for c in CATEGORIES if c["isthing"]]
STUFF_IDS = [c["id"] for c in CATEGORIES if not c["isthing"]]
IGNORE = 255
MIN_SIZE, MAX_SIZE = 32, 512
DIFFICULTIES = {"easy": (2, 5), "hard": (6, 12)}  # difficulty -> default num_things
__all__ = ["CATEGORIES", "NUM_CLASSES", "THING_IDS", "STUFF_IDS", "IGNORE", "KEYPOINT_NAMES",
           "SKELETON", "PART_NAMES", "Scene", "SceneBatch", "render_scene", "render_batch",
           "category_id", "category_name"]


def category_name(id: int) -> str:
    """Name of the category with train id ``id`` (``category_name(7) == "person"``)."""
    if isinstance(id, bool) or not isinstance(id, numbers.Integral):
        raise TypeError(f"id must be an int category id in [0, {NUM_CLASSES - 1}], got {id!r}")
    if not 0 <= id < NUM_CLASSES:
        raise ValueError(f"id must be a category id in [0, {NUM_CLASSES - 1}], got {id!r}")
    return CATEGORIES[int(id)]["name"]


def category_id(name: str) -> int:
    """Train id of the category called ``name`` (``category_id("person") == 7``)."""
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (a category name such as 'person'), got {name!r}")
    for c in CATEGORIES:
        if c["name"] == name:
            return c["id"]
    raise ValueError(f"name must be one of {[c['name'] for c in CATEGORIES]}, got {name!r}")


@dataclass
class Scene:
    """One rendered scene; N things (``masks`` are their visible parts), P of them persons."""

    image: Tensor  # float32 [3, H, W] in [0, 1]
    semantic: Tensor  # int64 [H, W] category id per pixel
    instance_ids: Tensor  # int64 [H, W] 0 = no thing, k = row k - 1 of boxes/labels/masks
    boxes: Tensor  # float32 [N, 4] xyxy, tight around the visible mask, pixel edges
    labels: Tensor  # int64 [N]
    masks: Tensor  # bool [N, H, W]
    iscrowd: Tensor  # bool [N]
    keypoints: Tensor  # float32 [P, 17, 3] (x, y, v): v 0 outside the image, 1 occluded, 2 visible
    person_index: Tensor  # int64 [P]: row of each person in boxes/labels/masks
    parts: Tensor  # int64 [H, W] 0 background, 1..10 body part (PART_NAMES)
    uv: Tensor  # float32 [2, H, W] in [0, 1], 0 where parts == 0
    depth: Tensor  # float32 [H, W]
    next_image: Tensor  # float32 [3, H, W], frame 2
    flow: Tensor  # float32 [2, H, W] (dx, dy): pixel p of frame 1 is at p + flow[p] in frame 2
    flow_valid: Tensor  # bool [H, W]: p is still visible in frame 2 (not occluded, not off-image)
    seed: int
    size: int

    def to(self, device: torch.device | str) -> Scene:
        """The same scene with every tensor on ``device``."""
        return Scene(**{f.name: _to(getattr(self, f.name), device) for f in fields(self)})


@dataclass
class SceneBatch:
    """B scenes: dense fields stacked on dim 0, per-instance fields as lists of length B."""

    image: Tensor  # [B, 3, H, W]
    semantic: Tensor  # [B, H, W]
    instance_ids: Tensor  # [B, H, W]
    parts: Tensor  # [B, H, W]
    uv: Tensor  # [B, 2, H, W]
    depth: Tensor  # [B, H, W]
    next_image: Tensor  # [B, 3, H, W]
    flow: Tensor  # [B, 2, H, W]
    flow_valid: Tensor  # [B, H, W]
    boxes: list[Tensor]
    labels: list[Tensor]
    masks: list[Tensor]
    iscrowd: list[Tensor]
    keypoints: list[Tensor]
    person_index: list[Tensor]
    seeds: list[int]
    size: int

    def __len__(self) -> int:
        return len(self.seeds)

    def scene(self, i: int) -> Scene:
        """The ``i``-th scene as a ``Scene`` (views of the stacked tensors)."""
        dense = ["image", "semantic", "instance_ids", "parts", "uv", "depth", "next_image", "flow",
                 "flow_valid"]
        lists = ["boxes", "labels", "masks", "iscrowd", "keypoints", "person_index"]
        return Scene(**{k: getattr(self, k)[i] for k in dense + lists}, seed=self.seeds[i],
                     size=self.size)

    def to(self, device: torch.device | str) -> SceneBatch:
        """The same batch with every tensor on ``device``."""
        return SceneBatch(**{f.name: _to(getattr(self, f.name), device) for f in fields(self)})


def _to(x, device):
    if isinstance(x, Tensor):
        return x.to(device)
    if isinstance(x, list):
        return [_to(t, device) for t in x]
    return x


def _is_int(value: object) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _check(
    seeds, size, num_things, p_person, p_crowd, difficulty="easy"
) -> tuple[list[int], int, int]:
    """Validate the public arguments; return (seeds, lo, hi).

    A wrong type is a ``TypeError``, a wrong value a ``ValueError``.
    """
    if not isinstance(difficulty, str):
        raise TypeError(f"difficulty must be a str, one of {sorted(DIFFICULTIES)}, "
                        f"got {describe(difficulty)}")
    if difficulty not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {sorted(DIFFICULTIES)}, got {difficulty!r}")
    if num_things is None:
        num_things = DIFFICULTIES[difficulty]
    if isinstance(seeds, Tensor):
        if seeds.dim() != 1 or seeds.is_floating_point() or seeds.is_complex() \
                or seeds.dtype == torch.bool:
            raise TypeError(f"seeds must be a sequence of ints or an integer Tensor[B], "
                            f"got {describe(seeds)}")
        seeds = seeds.tolist()
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, (Sequence, range)):
        raise TypeError(f"seeds must be a non-empty sequence of ints, got {seeds!r:.80}")
    if len(seeds) == 0:
        raise ValueError(f"seeds must be a non-empty sequence of ints, got {seeds!r:.80}")
    for i, s in enumerate(seeds):
        if not _is_int(s):
            raise TypeError(f"seed must be an int in [0, 2**63), got seeds[{i}] = {s!r}")
        if not 0 <= s < 2**63:
            raise ValueError(f"seed must be an int in [0, 2**63), got seeds[{i}] = {s!r}")
    if not _is_int(size):
        raise TypeError(f"size must be an int in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    if not MIN_SIZE <= size <= MAX_SIZE:
        raise ValueError(f"size must be an int in [{MIN_SIZE}, {MAX_SIZE}], got {size!r}")
    expected = f"an int or (min, max) with 0 <= min <= max <= {lay.MAX_THINGS}"
    n = (num_things, num_things) if _is_int(num_things) else num_things
    if not isinstance(n, (tuple, list)) or len(n) != 2 or not all(_is_int(k) for k in n):
        raise TypeError(f"num_things must be {expected}, got {num_things!r}")
    if not 0 <= n[0] <= n[1] <= lay.MAX_THINGS:
        raise ValueError(f"num_things must be {expected}, got {num_things!r}")
    for name, p in (("p_person", p_person), ("p_crowd", p_crowd)):
        if isinstance(p, bool) or not isinstance(p, numbers.Real):
            raise TypeError(f"{name} must be a probability in [0, 1] (a float), got {p!r}")
        if not 0 <= p <= 1:
            raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
    return [int(s) for s in seeds], int(n[0]), int(n[1])


def render_batch(
    seeds: Sequence[int] | range | Tensor,
    size: int = 64,
    *,
    num_things: tuple[int, int] | int | None = None,
    p_person: float = 0.35,
    p_crowd: float = 0.15,
    device: torch.device | str | None = None,
    difficulty: str = "easy",
) -> SceneBatch:
    """Render one scene per seed, all at once; see ``render_scene`` for the arguments.

    ``seeds``: a non-empty sequence (or range, or integer Tensor[B]) of ints in [0, 2**63).
    Returns a ``SceneBatch``: image [B, 3, H, W], semantic / instance_ids / parts [B, H, W]
    int64, uv [B, 2, H, W], depth [B, H, W], next_image [B, 3, H, W], flow [B, 2, H, W],
    flow_valid [B, H, W]; boxes, labels, masks, iscrowd, keypoints, person_index as lists.
    """
    seeds, lo, hi = _check(seeds, size, num_things, p_person, p_crowd, difficulty)
    device = torch.device("cpu" if device is None else device)
    L = lay.sample_layout(seeds, int(size), lo, hi, float(p_person), float(p_crowd),
                          hard=difficulty == "hard")
    B, K = L.kind.shape
    S, HW = int(size), int(size) ** 2
    stuff = draw_stuff(L, device)
    code, code2 = (c.view(B, HW) for c in paint_things(L, device))  # uint8 (slot + 1) << 4 | shade
    cls = stuff["cls"].view(B, HW)

    # Each pixel looks its values up in per-scene tables [B, (K + 1) * 16]: row cls (0-3) for
    # stuff, row code = (slot + 1) * 16 + shade (>= 16) for a thing.
    k1, k2 = torch.maximum(code, cls).long(), torch.maximum(code2, cls).long()
    t = _tables(L, device)

    def colour(k: Tensor, code: Tensor) -> Tensor:
        thing = (code > 0).float()  # textures on the stuff only: shade exactly 1, light 0 on things
        shade = stuff["shade"].view(B, 1, HW) * (1 - thing[:, None]) + thing[:, None]
        light = stuff["light"].view(B, 1, HW) * (1 - thing[:, None])
        return t["rgb"].gather(2, k[:, None].expand(B, 3, HW)) * shade + light

    image, next_image = colour(k1, code), colour(k2, code2)  # (B, 3, HW)
    if L.texture is not None:
        image, next_image = _hard_look(L, t, (k1, k2), (image, next_image))
    semantic = t["label"].gather(1, k1)
    depth = stuff["depth"].view(B, HW) * (code == 0) + t["depth"].gather(1, k1)
    flow = t["velocity"].gather(2, k1[:, None].expand(B, 2, HW))  # (B, 2, HW)
    parts = t["part"].gather(1, k1)
    slot = (code >> 4).long()  # (B, HW): 0 stuff, r + 1 slot r

    # Flow validity: frame 2 at p + flow[p] shows the same slot as p. The frame-2 slot map
    # is padded with 255 so that off-image targets never match.
    m = lay.max_speed(S)
    pad = torch.full((B, S + 2 * m, S + 2 * m), 255, dtype=torch.uint8, device=device)
    pad[:, m : m + S, m : m + S] = (code2 >> 4).view(B, S, S)
    pix = torch.arange(HW, device=device)
    base = (pix // S + m) * (S + 2 * m) + pix % S + m  # (HW,) p in the padded map
    target = base + t["shift"].gather(1, k1)  # shift = vy * (S + 2m) + vx
    flow_valid = pad.view(B, -1).gather(1, target) == (code >> 4)

    # Instances: the slots with at least one visible pixel, numbered far to near.
    scene_slot = torch.arange(B, device=device)[:, None] * (K + 1) + slot  # (B, HW)
    counts = torch.bincount(scene_slot.flatten(), minlength=B * (K + 1))
    present = counts.view(B, K + 1)[:, 1:] > 0  # (B, K)
    number = torch.cumsum(present.long(), 1) * present
    number = torch.cat([number.new_zeros(B, 1), number], 1)  # (B, K + 1): 0 for the stuff
    instance_ids = number.repeat_interleave(16, dim=1).gather(1, k1)
    kp = L.keypoints.to(device=device, dtype=torch.float32)
    keypoints = keypoint_visibility(kp, slot, S)  # (B, K, 17, 3)
    lists = _instances(L, slot, present, keypoints)
    uv = uv_map(L.segments.to(device=device, dtype=torch.float32), code, parts, S)
    return SceneBatch(
        image=image.view(B, 3, S, S), semantic=semantic.view(B, S, S),
        instance_ids=instance_ids.view(B, S, S), parts=parts.view(B, S, S),
        uv=uv.view(B, 2, S, S), depth=depth.view(B, S, S),
        next_image=next_image.view(B, 3, S, S), flow=flow.view(B, 2, S, S),
        flow_valid=flow_valid.view(B, S, S),
        **lists, seeds=seeds, size=S,
    )


def _tables(L: lay.Layout, device: torch.device) -> dict[str, Tensor]:
    """Per-scene lookup tables with (K + 1) * 16 rows: rows 0-3 the stuff classes, row
    (r + 1) * 16 + shade the slot r drawn with that shade. rgb [B, 3, T], label [B, T],
    depth [B, T] (0 for stuff), velocity [B, 2, T] (0 for stuff), part [B, T], and shift
    [B, T] (the velocity as an offset in the flow-validity map)."""
    B, K = L.kind.shape
    P = lay.PALETTE
    rgb = torch.zeros(B, K + 1, P, 3, dtype=torch.float64)
    rgb[:, 0, :4], rgb[:, 1:] = L.stuff_rgb, L.palette
    label = torch.zeros(B, K + 1, P, dtype=torch.long)
    label[:, 0, :4] = torch.arange(4)
    label[:, 1:] = torch.tensor(lay.KIND_LABEL)[L.kind][..., None]
    depth = torch.zeros(B, K + 1, P, dtype=torch.float64)
    depth[:, 1:] = L.depth[..., None]
    vel = torch.zeros(B, K + 1, P, 2, dtype=torch.long)
    vel[:, 1:] = L.velocity[:, :, None, :]
    shift = vel[..., 1] * (L.size + 2 * lay.max_speed(L.size)) + vel[..., 0]
    part = torch.zeros(B, K + 1, P, dtype=torch.long)
    part[:, 1:, : len(DRAW_PARTS)] = torch.tensor(DRAW_PARTS) * ((L.kind == lay.PERSON)[..., None])

    def dev(x: Tensor) -> Tensor:
        return x.to(device=device, dtype=torch.float32 if x.is_floating_point() else x.dtype)

    out = {"rgb": dev(rgb.view(B, -1, 3).transpose(1, 2)), "label": dev(label.view(B, -1)),
           "depth": dev(depth.view(B, -1)),
           "velocity": dev(vel.view(B, -1, 2).transpose(1, 2).float()),
           "part": dev(part.view(B, -1)), "shift": dev(shift.view(B, -1))}
    if L.texture is not None:  # the hard setting: each slot's texture (contrast 0 on the stuff)
        kind, period, phase, contrast = L.texture.unbind(-1)  # (B, K) each
        # stripes along a x + b y: (a, b) = (1, 0), (0, 1), (1, 1), (1, -1); the checker is
        # the stripes along x, xor the same along y
        a = torch.tensor([1.0, 0.0, 1.0, 1.0, 1.0], dtype=torch.float64)[kind.long()]
        b = torch.tensor([0.0, 1.0, 1.0, -1.0, 0.0], dtype=torch.float64)[kind.long()]
        checker = (kind == lay.TEXTURE_KINDS - 1).double()
        tex = torch.zeros(B, K + 1, P, 6, dtype=torch.float64)
        tex[:, 1:] = torch.stack([a, b, checker, period, phase, contrast], -1)[:, :, None, :]
        out["texture"] = dev(tex.view(B, -1, 6).transpose(1, 2))  # (B, 6, T)
    return out


def _hard_look(
    L: lay.Layout, t: dict[str, Tensor], ks: tuple[Tensor, Tensor],
    images: tuple[Tensor, Tensor],
) -> tuple[Tensor, Tensor]:
    """The hard setting's texture, lighting and noise on both frames (B, 3, HW) each.

    A thing's pixel is darkened by ``contrast`` on the dark bands of its texture: stripes
    ``(a x + b y + phase) mod 2 period >= period`` (and for the checker, xor the same in y).
    The bands are computed on integer pixel coordinates taken in frame 1, i.e.
    ``p - velocity`` in frame 2, so a texture moves exactly with its thing (all values are
    small integers, exact in float32). Then
    ``image = clamp(gain * (1 + a * ramp(p)) * image + sigma * noise, 0, 1)`` with the ramp
    ``(x / S - 1/2) cos(angle) + (y / S - 1/2) sin(angle)`` over pixel centres.
    """
    B, _, HW = images[0].shape
    S, device = L.size, images[0].device
    out = []
    for frame, (k, image) in enumerate(zip(ks, images, strict=True)):
        n, p = torch.nonzero(k >= 16, as_tuple=True)  # the thing pixels (M,): scene, pixel
        row = k[n, p]  # (M,) their table rows
        a, b, checker, period, phase, contrast = t["texture"][n, :, row].unbind(1)  # (M,)
        x, y = (p % S).float(), (p // S).float()  # integer pixel coordinates
        if frame:  # frame-1 coordinates of the thing's pixel
            vel = t["velocity"][n, :, row]  # (M, 2)
            x, y = x - vel[:, 0], y - vel[:, 1]
        dark = torch.remainder(a * x + b * y + phase, 2 * period) >= period
        dark ^= (checker > 0) & (torch.remainder(y + phase, 2 * period) >= period)
        image = image.clone()
        image[n, :, p] = image[n, :, p] * (1 - contrast * dark)[:, None]  # (M, 3)
        out.append(image)
    gain, amp, angle = L.lighting.to(torch.float64).unbind(-1)  # (B,) each
    centre = (torch.arange(S, dtype=torch.float64) + 0.5) / S - 0.5  # (S,)
    ramp = (torch.cos(angle)[:, None, None] * centre[None, None, :]
            + torch.sin(angle)[:, None, None] * centre[None, :, None])  # (B, S, S)
    light = (gain[:, None, None] * (1 + amp[:, None, None] * ramp)).view(B, 1, HW)
    light = light.to(device=device, dtype=torch.float32)
    sigma, clip = lay.HARD_NOISE_SIGMA, lay.HARD_NOISE_CLIP
    noise = L.pixel_noise.to(device).view(B, 2, 3, HW)
    return tuple((light * img + sigma * noise[:, f].clamp(-clip, clip)).clamp(0.0, 1.0)
                 for f, img in enumerate(out))


def _instances(
    L: lay.Layout, slot: Tensor, present: Tensor, keypoints: Tensor
) -> dict[str, list[Tensor]]:
    """The per-instance lists (boxes, labels, masks, iscrowd, keypoints, person_index), built
    for the whole batch at once and split per scene."""
    B, K = present.shape
    S, device = L.size, slot.device
    pixel = torch.arange(S * S, device=device)
    xs, ys = (pixel % S).expand(B, -1), (pixel // S).expand(B, -1)  # (B, HW)
    edges = []
    for coord, reduce, init, off in ((xs, "amin", S, 0), (ys, "amin", S, 0),
                                     (xs, "amax", -1, 1), (ys, "amax", -1, 1)):
        e = torch.full((B, K + 1), init, device=device).scatter_reduce(1, slot, coord, reduce)
        edges.append(e[:, 1:] + off)
    boxes = torch.stack(edges, -1).float()  # (B, K, 4) xyxy, pixel edges
    present_cpu = present.cpu()
    sizes = present_cpu.sum(1).tolist()
    kind = L.kind[present_cpu]  # (M,) far to near within each scene
    is_person = kind == lay.PERSON
    masks = slot[:, None, :] == torch.arange(1, K + 1, device=device)[None, :, None]  # (B, K, HW)
    start = torch.cumsum(torch.tensor([0] + sizes[:-1]), 0)
    start = start.repeat_interleave(torch.tensor(sizes), output_size=len(kind))
    local = torch.arange(len(kind)) - start  # row of each instance in its scene
    # the scene of each instance
    per_scene = torch.arange(B).repeat_interleave(torch.tensor(sizes), output_size=len(kind))
    person_sizes = torch.bincount(per_scene[is_person], minlength=B).tolist()
    flat = {
        "boxes": boxes[present], "labels": torch.tensor(lay.KIND_LABEL)[kind].to(device),
        "masks": masks[present].view(-1, S, S), "iscrowd": (kind == lay.CROWD).to(device),
    }
    out = {k: list(v.split(sizes)) for k, v in flat.items()}
    out["keypoints"] = list(keypoints[present][is_person.to(device)].split(person_sizes))
    out["person_index"] = list(local[is_person].to(device).split(person_sizes))
    return out


def render_scene(
    seed: int,
    size: int = 64,
    *,
    num_things: tuple[int, int] | int | None = None,
    p_person: float = 0.35,
    p_crowd: float = 0.15,
    device: torch.device | str | None = None,
    difficulty: str = "easy",
) -> Scene:
    """Render the ShapesWorld scene number ``seed`` (deterministic: same seed, same tensors).

    Args:
        seed: int >= 0. size: image side in [32, 512] (64, 96, 128 are the usual ones).
        num_things: number of things (shapes and persons), an int or an inclusive (min, max)
            range in [0, 12]; a crowd group may come on top. Default: (2, 5) easy,
            (6, 12) hard. p_person: probability that a thing is a person. p_crowd:
            probability of one crowd group (iscrowd) of 4-8 circles.
        device: where the tensors go (random numbers are always drawn on the CPU).
        difficulty: ``"easy"`` (the default) or ``"hard"``: clutter, occlusion, textured
            things, lighting and noise (see the module docstring). A seed's stuff is the same
            in both.

    Raises ``TypeError`` for an argument of the wrong type, ``ValueError`` for one out of range.

    Returns:
        ``Scene`` with the fields of the scene contract (see the module docstring).
    """
    batch = render_batch([seed], size, num_things=num_things, p_person=p_person,
                         p_crowd=p_crowd, device=device, difficulty=difficulty)
    return batch.scene(0)
