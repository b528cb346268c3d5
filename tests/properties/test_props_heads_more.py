"""Property tests (hypothesis) for coursekit.heads, the rest of its public ops: the majority
caption, the captions of a scene's things, and the 3D targets (extrude, voxel_targets,
whole_shapes, surface_points).

Drawn: token rows (0 rows, 0 columns, 1 column, encoded sentences, all rows alike, random
VOCAB indices from a few values so that ties are common), int64 / int32 tokens; scenes of
0..6 things (captions: square images at 32, 64 and 96 pixels, boxes at the size threshold and
at the context's reach, crowds, persons with painted shirts, things hidden behind later
ones; whole shapes and voxel targets: non-square images, boxes on the border and against
each other, boxes on quarter pixels, masks that fill the box, part of it, anything, nothing);
silhouettes on 1..12-cell grids, each one extruded as every category, cube depths on and
between cell centres; occupancy grids of 1..4 cells a side (empty, full, one cell thick,
random), each as bool, float32 and float64 occupancies (on and just above the threshold);
dtypes.
References: the majority vote per position recounted with ``collections.Counter`` (ties to
the smallest token id, as tests/heads/test_dense_captioning.py states); the captions, the
whole shapes and the extrusion rewritten as slow Python loops from the module docstrings
(cell centres as exact fractions, the shirt as the nearest named colour to the median of the
torso's pixels); the silhouettes of ``voxel_targets`` from torchvision's ``roi_align``
(aligned), their depth a brute-force test of every voxel centre; the extruded prisms' volume
(base x height) and winding by trimesh where it is importable; surface points within a
rounding error of a face between an occupied and an empty cell. Checked on every device this
machine has; seeded (``derandomize=True``).
"""

import itertools
import math
from collections import Counter
from fractions import Fraction
from types import SimpleNamespace

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds
from test_props_heads import occupied, random_grid
from torch.testing import assert_close
from torchvision.ops import roi_align

from coursekit.data.layout import SHIRT_RGB
from coursekit.heads import (
    caption_things,
    cubify,
    encode,
    extrude,
    majority_caption,
    surface_points,
    voxel_targets,
    whole_shapes,
)
from coursekit.heads.captions import (
    BOS,
    CONTEXT,
    EOS,
    MAX_LEN,
    PAD,
    SHIRT_COLOURS,
    SIZE_THRESHOLD,
    VOCAB,
    WORDS,
)

try:
    import trimesh
except ImportError:  # the volume is still checked cell by cell
    trimesh = None

CATEGORY = {4: "circle", 5: "square", 6: "triangle", 7: "person"}
COLOUR = {4: "red", 5: "purple", 6: "gold"}


def randint(g, low, high):
    """One integer in [low, high) from ``g``."""
    return int(torch.randint(low, high, (1,), generator=g))


# ---------------------------------------------------------------------------- majority caption
def majority_loop(rows, L):
    """The docstring, position by position: <bos>, the commonest token (ties: the smallest
    id), <pad> after the first <eos>."""
    out = [BOS] if L else []
    for j in range(1, L):
        counts = Counter(row[j] for row in rows)
        top = max(counts.values())
        out.append(min(t for t, c in counts.items() if c == top))
    if EOS in out:
        end = out.index(EOS)
        out[end + 1:] = [PAD] * (L - end - 1)
    return out


@on_devices
@PROPS
@given(seed=seeds, K=st.sampled_from([3, 1, 2, 4, 5, 6, 0]), L=st.sampled_from(range(MAX_LEN + 3)),
       kind=st.sampled_from(["sentences", "few tokens", "few tokens", "all alike"]),
       dtype=st.sampled_from([torch.int64, torch.int32]))
def test_majority_caption_is_the_vote_per_position(device, seed, K, L, kind, dtype):
    g = gen(seed)
    if kind == "sentences":  # encoded captions of a few words: <eos> where they end
        words = [WORDS[randint(g, 0, 4)] for _ in range(4)]
        batch = [" ".join(words[randint(g, 0, 4)] for _ in range(randint(g, 0, MAX_LEN + 1)))
                 for _ in range(K)]
        tokens = encode(batch)[:, :L]
    else:  # any VOCAB index (<pad>, <bos>, <eos> too) from a handful: ties are common
        pool = torch.randperm(len(VOCAB), generator=g)[:randint(g, 1, 4)]
        pool[0] = EOS if torch.rand(1, generator=g) < 0.5 else pool[0]
        tokens = pool[torch.randint(0, len(pool), (K, L), generator=g)]
        if kind == "all alike" and K:
            tokens = tokens[:1].expand(K, L).clone()
    tokens = tokens.to(device, dtype)
    if K == 0:
        with pytest.raises(ValueError, match="at least one caption"):
            majority_caption(tokens)
        return
    out = majority_caption(tokens)
    assert out.shape == (1, L) and out.dtype == dtype and out.device == tokens.device
    assert out[0].tolist() == majority_loop(tokens.tolist(), L)
    if kind == "all alike" and L:  # everyone says the same: so does the majority
        ref = tokens[0].clone()
        ref[0] = BOS
        ends = (ref == EOS).nonzero()
        if len(ends):
            ref[int(ends[0]) + 1:] = PAD
        assert torch.equal(out[0], ref)


# --------------------------------------------------------------------------------- captions
def fake_scene(seed, S, N, dtype):
    """A square scene of N things drawn far to near (masks: the visible parts; things with no
    visible pixel dropped, as ShapesWorld does); persons' torsos painted a shirt colour (plus
    noise), everything else random colours. Returns the scene and each row's shirt index
    (None for shapes and crowds)."""
    g = gen(seed)
    scale = S / 64
    owner = torch.full((S, S), -1, dtype=torch.long)
    boxes, labels, crowd, shirt = [], [], [], []
    for k in range(N):
        is_crowd = bool(torch.rand(1, generator=g) < 0.2)
        crowd.append(is_crowd)
        labels.append([4, 7, 1][randint(g, 0, 3)] if is_crowd else randint(g, 4, 8))
        shirt.append(randint(g, 0, len(SHIRT_RGB)) if labels[-1] == 7 and not is_crowd
                     else None)
        x1, y1 = randint(g, 0, S), randint(g, 0, S)
        w = randint(g, 1, min(S - x1, S // 2) + 1)
        h = randint(g, 1, min(S - y1, S // 2) + 1)
        how = randint(g, 0, 5)
        side = SIZE_THRESHOLD.get(labels[-1], 0) * scale
        if how == 0 and 0 < side == int(side) <= min(S - x1, S - y1):
            w = h = int(side)  # sqrt(w h) on the size threshold
        elif how >= 2 and boxes:  # an earlier box moved by the context's reach (or 1 more)
            x1, y1, x2, y2 = boxes[randint(g, 0, len(boxes))]
            reach = [int(c * scale) + randint(g, 0, 2) for c in CONTEXT]
            axis = randint(g, 0, 2)
            shift = [randint(g, -1, 2), randint(g, -1, 2)]
            shift[axis] = reach[axis] * (1 if torch.rand(1, generator=g) < 0.5 else -1)
            w, h = x2 - x1, y2 - y1
            x1, y1 = x1 + shift[0], y1 + shift[1]
            if not (0 <= x1 <= S - w and 0 <= y1 <= S - h):
                x1, y1 = min(max(x1, 0), S - w), min(max(y1, 0), S - h)
        boxes.append([x1, y1, x1 + w, y1 + h])
        owner[y1:y1 + h, x1:x1 + w] = k
    keep = [k for k in range(N) if crowd[k] or bool((owner == k).any())]
    image = torch.rand(3, S, S, generator=g, dtype=F64)
    parts = torch.zeros(S, S, dtype=torch.long)
    for k in keep:
        if shirt[k] is None:
            continue
        x1, y1, x2, y2 = boxes[k]
        band = torch.zeros(S, S, dtype=torch.long)  # 1 head, 2..4 torso, 7 legs, by thirds
        h = y2 - y1
        band[y1:y2, x1:x2] = 1
        band[y1 + h // 3:y2 - h // 3, x1:x2] = torch.randint(
            2, 5, (h - 2 * (h // 3), x2 - x1), generator=g)
        band[y2 - h // 3:y2, x1:x2] = 7
        mine = owner == k
        parts[mine] = band[mine]
        torso = mine & (band >= 2) & (band <= 4)
        noise = (torch.rand(3, int(torso.sum()), generator=g, dtype=F64) - 0.5) * 0.08
        image[:, torso] = torch.tensor(SHIRT_RGB[shirt[k]], dtype=F64)[:, None] + noise
    scene = SimpleNamespace(
        boxes=torch.tensor([boxes[k] for k in keep], dtype=torch.float32).view(-1, 4),
        labels=torch.tensor([labels[k] for k in keep], dtype=torch.long),
        iscrowd=torch.tensor([crowd[k] for k in keep], dtype=torch.bool),
        masks=torch.stack([owner == k for k in keep]) if keep else
        torch.zeros(0, S, S, dtype=torch.bool),
        parts=parts, image=image.to(dtype))
    return scene, [shirt[k] for k in keep]


def lower_median(values):
    """The median of a list, the lower of the two middle values for an even count (as
    ``torch.median``)."""
    values = sorted(values)
    return values[(len(values) - 1) // 2]


def shirt_loop(scene, r):
    """The nearest named shirt colour to the median colour of the visible torso (or of the
    whole mask when no torso pixel is visible)."""
    image, mask, parts = scene.image.cpu().double(), scene.masks[r].cpu(), scene.parts.cpu()
    H, W = mask.shape
    torso = [(y, x) for y in range(H) for x in range(W)
             if mask[y, x] and int(parts[y, x]) in (2, 3, 4)]
    pixels = torso or [(y, x) for y in range(H) for x in range(W) if mask[y, x]]
    rgb = [lower_median([float(image[c, y, x]) for y, x in pixels]) for c in range(3)]
    dist = [sum((a - b) ** 2 for a, b in zip(rgb, ref, strict=True)) for ref in SHIRT_RGB]
    return SHIRT_COLOURS[dist.index(min(dist))], bool(torso)


@on_devices
@PROPS
@given(seed=seeds, S=st.sampled_from([32, 64, 96]), N=st.sampled_from([4, 5, 3, 2, 1, 0]),
       dtype=floats, pad=st.sampled_from([0, 16]), hide=st.booleans())
def test_caption_things_is_the_docstring_loop(device, seed, S, N, dtype, pad, hide):
    scene, shirts = fake_scene(seed, S, N, dtype)
    if pad:  # a taller image: empty rows below
        scene.image = torch.cat([scene.image, scene.image.new_zeros(3, pad, S)], 1)
        scene.masks = torch.cat([scene.masks, scene.masks.new_zeros(len(scene.masks), pad, S)],
                                1)
        scene.parts = torch.cat([scene.parts, scene.parts.new_zeros(pad, S)], 0)
    persons = [r for r in range(len(scene.labels))
               if int(scene.labels[r]) == 7 and not bool(scene.iscrowd[r])]
    if hide and persons:  # a person with no visible pixel
        scene.masks[persons[0]] = False
    scene = SimpleNamespace(**{k: v.to(device) for k, v in vars(scene).items()})
    rows, sentences = caption_things(scene)
    boxes = scene.boxes.cpu().double().tolist()
    labels, crowd = scene.labels.tolist(), scene.iscrowd.tolist()
    seen = scene.masks.flatten(1).any(1).tolist()
    things = [r for r in range(len(labels)) if not crowd[r] and (labels[r] != 7 or seen[r])]
    assert rows.dtype == torch.int64 and rows.device == scene.boxes.device
    assert rows.tolist() == things
    assert len(sentences) == len(things)
    H, W = S + pad, S
    scale, scale_x, scale_y = math.sqrt(H * W) / 64, W / 64, H / 64
    centre = [((x1 + x2) / 2, (y1 + y2) / 2) for x1, y1, x2, y2 in boxes]
    for r, sentence in zip(things, sentences, strict=True):
        words = sentence.split()
        assert all(w in VOCAB for w in words) and len(words) <= MAX_LEN
        assert encode([sentence])[0, len(words) + 1] == EOS  # it encodes
        cat = labels[r]
        x1, y1, x2, y2 = boxes[r]
        side = math.sqrt((x2 - x1) * (y2 - y1))
        assert words[0] == ("small" if side < SIZE_THRESHOLD[cat] * scale else "big")
        if cat == 7:
            colour, torso_seen = shirt_loop(scene, r)
            assert words[1] == colour
            if torso_seen:  # the painted shirt, whatever the noise
                assert words[1] == SHIRT_COLOURS[shirts[r]]
        else:
            assert words[1] == COLOUR[cat]
        assert words[2] == CATEGORY[cat]
        # the nearest other non-crowd thing within CONTEXT (any of them on a tie)
        near = {}
        for o in things:
            dx, dy = centre[o][0] - centre[r][0], centre[o][1] - centre[r][1]
            if o != r and abs(dx) <= CONTEXT[0] * scale_x and abs(dy) <= CONTEXT[1] * scale_y:
                near[o] = dx * dx + dy * dy
        if not near:
            assert words[3:] == ["alone"]
        else:
            best = min(near.values())
            allowed = [["left" if centre[r][0] < centre[o][0] else "right", "of", "a",
                        CATEGORY[labels[o]]] for o, d in near.items() if d == best]
            assert words[3:] in allowed


# ------------------------------------------------------------------------------ whole shapes
def whole_shapes_loop(boxes, labels, crowd, H, W):
    """Shapes (4, 5, 6), not crowds, inside the image (touching no border) whose box touches
    (closed boxes) no other row's box."""
    keep = []
    for r, (x1, y1, x2, y2) in enumerate(boxes):
        if crowd[r] or labels[r] not in (4, 5, 6):
            continue
        if x1 <= 0 or y1 <= 0 or x2 >= W or y2 >= H:
            continue
        if any(o != r and a1 <= x2 and x1 <= a2 and b1 <= y2 and y1 <= b2
               for o, (a1, b1, a2, b2) in enumerate(boxes)):
            continue
        keep.append(r)
    return keep


@on_devices
@PROPS
@given(seed=seeds, N=st.sampled_from([3, 1, 2, 4, 5, 6, 0]),
       hw=st.tuples(st.integers(4, 32), st.integers(4, 32)),
       dtype=st.sampled_from([torch.float32, F64, torch.int64]))
def test_whole_shapes_is_the_docstring_loop(device, seed, N, hw, dtype):
    g = gen(seed)
    H, W = hw
    boxes = []
    for _ in range(N):  # small boxes; some put on an image border, some against another box
        x1, y1 = randint(g, 0, W), randint(g, 0, H)
        box = [x1, y1, min(W, x1 + randint(g, 1, W // 4 + 1)),
               min(H, y1 + randint(g, 1, H // 4 + 1))]
        how = randint(g, 0, 6)
        if how <= 1:  # on one border (its side of the box kept)
            side = randint(g, 0, 4)
            w, h = box[2] - box[0], box[3] - box[1]
            box = [[0, y1, w, box[3]], [x1, 0, box[2], h], [W - w, y1, W, box[3]],
                   [x1, H - h, box[2], H]][side]
        elif how <= 3 and boxes:  # a 1-pixel box against an earlier box's side or corner
            a1, b1, a2, b2 = boxes[randint(g, 0, len(boxes))]
            x, y = [(a2, b1), (a1 - 1, b1), (a1, b2), (a1, b1 - 1), (a2, b2)][randint(g, 0, 5)]
            x, y = min(max(x, 0), W - 1), min(max(y, 0), H - 1)
            box = [x, y, x + 1, y + 1]
        boxes.append(box)
    boxes = torch.tensor(boxes, dtype=torch.long).view(N, 4)
    labels = torch.tensor([3, 4, 5, 6, 7, 4, 5, 6])[torch.randint(0, 8, (N,), generator=g)]
    crowd = torch.rand(N, generator=g) < 0.2
    scene = SimpleNamespace(boxes=boxes.to(device, dtype), labels=labels.to(device),
                            iscrowd=crowd.to(device), image=torch.zeros(3, H, W, device=device))
    out = whole_shapes(scene)
    assert out.dtype == torch.int64 and out.shape == (len(out),)
    assert out.device == scene.boxes.device
    ref = whole_shapes_loop(boxes.tolist(), labels.tolist(), crowd.tolist(), H, W)
    assert out.tolist() == ref
    # the same boxes in another order: the same things, renumbered
    perm = torch.randperm(N, generator=g)
    shuffled = SimpleNamespace(boxes=scene.boxes[perm.to(device)],
                               labels=scene.labels[perm.to(device)],
                               iscrowd=scene.iscrowd[perm.to(device)], image=scene.image)
    assert sorted(perm[whole_shapes(shuffled).cpu()].tolist()) == ref


# ----------------------------------------------------------------------------------- extrude
def extrude_loop(sil, labels, depth):
    """bool Tensor[K, G, G, G]: the module docstring at every cell centre of the silhouettes
    ``sil`` (bool Tensor[K, G, G]), in exact fractions: a circle's column holds
    the ball x² + y² + z² <= 1, a square's |z| <= its depth, a triangle's |z| <= 1/2."""
    K, G, _ = sil.shape
    sil = sil.tolist()
    c = [Fraction(2 * i + 1, G) - 1 for i in range(G)]
    out = [[[[False] * G for _ in range(G)] for _ in range(G)] for _ in range(K)]
    for k in range(K):
        for (i, z), (j, y), (m, x) in itertools.product(enumerate(c), repeat=3):
            if not sil[k][j][m]:
                continue
            if labels[k] == 4:
                out[k][i][j][m] = x * x + y * y + z * z <= 1
            elif labels[k] == 5:
                out[k][i][j][m] = abs(z) <= Fraction(depth[k])
            else:
                out[k][i][j][m] = abs(z) <= Fraction(1, 2)
    return torch.tensor(out, dtype=torch.bool).view(K, G, G, G)


@on_devices
@PROPS
@given(seed=seeds, K=st.sampled_from([3, 1, 2, 0]), G=st.integers(1, 12),
       fill=st.sampled_from(["full", "random", "random", "empty"]),
       depth_kind=st.sampled_from(["none", "grid", "random"]), dtype=floats)
def test_extrude_is_the_docstring_loop(device, seed, K, G, fill, depth_kind, dtype):
    g = gen(seed)
    sil = torch.rand(K, G, G, generator=g) < (0.6 if fill == "random" else float(fill == "full"))
    if depth_kind == "none":
        depth, cube_depth = [1.0] * K, None
    else:  # on a cell centre or half-way (exact in binary), or anywhere in [0, 1]
        grid = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0], dtype=F64)
        values = grid[torch.randint(0, 5, (K,), generator=g)] if depth_kind == "grid" else \
            torch.rand(K, generator=g, dtype=F64)
        cube_depth = values.to(dtype)
        depth = cube_depth.double().tolist()
        cube_depth = cube_depth.to(device)
    for offset in range(3):  # each silhouette as a circle, a square and a triangle in turn
        labels = (torch.arange(K) + offset) % 3 + 4
        vox = extrude(sil.to(device), labels.to(device), cube_depth)
        assert vox.shape == (K, G, G, G) and vox.dtype == torch.bool
        assert vox.device.type == device
        assert torch.equal(vox.cpu(), extrude_loop(sil, labels.tolist(), depth))
        # symmetric: front and back mirror; mirrored silhouettes give mirrored bodies
        assert torch.equal(vox, vox.flip(1))
        for axis in (-1, -2):
            assert torch.equal(extrude(sil.flip(axis).to(device), labels.to(device),
                                       cube_depth), vox.flip(axis))
        if trimesh is not None:
            check_prism_volumes(vox.cpu(), sil, labels.tolist(), depth)


def check_prism_volumes(vox, sil, labels, depth):
    """The cubified bodies are consistently wound (trimesh); a square's or a triangle's
    encloses base (its silhouette) x height (the depth slices kept)."""
    G = vox.shape[-1]
    verts, faces = cubify(vox)
    for k in range(len(vox)):
        if len(faces[k]) == 0:
            assert not bool(vox[k].any())
            continue
        mesh = trimesh.Trimesh(verts[k].double().numpy(), faces[k].numpy(), process=False)
        assert mesh.is_winding_consistent and mesh.volume > 0
        if labels[k] != 4:
            half = Fraction(1, 2) if labels[k] == 6 else Fraction(depth[k])
            slices = sum(abs(Fraction(2 * i + 1, G) - 1) <= half for i in range(G))
            assert abs(mesh.volume - int(sil[k].sum()) * slices * (2 / G) ** 3) < 1e-5


# ----------------------------------------------------------------------------- voxel targets
@on_devices
@PROPS
@given(seed=seeds, N=st.integers(1, 4), hw=st.tuples(st.integers(4, 12), st.integers(4, 12)),
       grid=st.integers(1, 6), mask_kind=st.sampled_from(["blob", "box", "anywhere", "empty"]),
       quarter=st.booleans())
def test_voxel_targets_are_roi_silhouettes_extruded(device, seed, N, hw, grid, mask_kind,
                                                    quarter):
    g = gen(seed)
    H, W = hw
    step = 4 if quarter else 1  # box corners on quarter pixels (exact in float32) or pixels
    x = torch.randint(0, W * step + 1, (N, 2), generator=g).sort(1).values / step
    y = torch.randint(0, H * step + 1, (N, 2), generator=g).sort(1).values / step
    x[:, 1] = torch.maximum(x[:, 1], x[:, 0] + 1 / step).clamp(max=W)
    y[:, 1] = torch.maximum(y[:, 1], y[:, 0] + 1 / step).clamp(max=H)
    boxes = torch.stack([x[:, 0], y[:, 0], x[:, 1], y[:, 1]], 1).float()
    labels = torch.tensor([4, 5, 6, 7])[(torch.rand(N, generator=g) * 3.6).long()]
    labels[0] = randint(g, 4, 7)  # at least one shape
    ys, xs = torch.arange(H).view(1, H, 1) + 0.5, torch.arange(W).view(1, 1, W) + 0.5
    in_box = ((xs >= boxes[:, 0, None, None]) & (xs <= boxes[:, 2, None, None])
              & (ys >= boxes[:, 1, None, None]) & (ys <= boxes[:, 3, None, None]))
    noise = torch.rand(N, H, W, generator=g) < 0.6
    masks = {"box": in_box, "blob": in_box & noise, "anywhere": noise,
             "empty": torch.zeros(N, H, W, dtype=torch.bool)}[mask_kind]
    shapes = [r for r in range(N) if labels[r] in (4, 5, 6)]
    pick = torch.tensor(shapes)[torch.randperm(len(shapes), generator=g)]
    rows = pick[:randint(g, 1, len(pick) + 1) if torch.rand(1, generator=g) < 0.85 else 0]
    scene = SimpleNamespace(boxes=boxes.to(device), labels=labels.to(device),
                            iscrowd=torch.zeros(N, dtype=torch.bool, device=device),
                            masks=masks.to(device), image=torch.zeros(3, H, W, device=device))
    vox = voxel_targets(scene, rows.to(device), grid)
    K = len(rows)
    assert vox.shape == (K, grid, grid, grid) and vox.dtype == torch.bool
    assert vox.device == scene.masks.device
    # the silhouette: RoI Align (aligned) of the mask over the box, > 1/2; a cube's depth
    # sqrt(mask area) / box width (at most 1); then every voxel centre tested by hand
    rois = torch.cat([rows[:, None].double(), boxes[rows].double()], 1)
    soft = roi_align(masks[:, None].double(), rois, grid, 1.0, -1, aligned=True)[:, 0]
    sil = soft > 0.5
    depth = [min(math.sqrt(int(masks[r].sum())) / max(float(boxes[r, 2] - boxes[r, 0]), 1.0),
                 1.0) for r in rows.tolist()]
    ref = extrude_loop(sil, labels[rows].tolist(), depth)
    clear = ((soft - 0.5).abs() > 1e-5)[:, None].expand_as(ref)  # not on the threshold
    assert torch.equal(vox.cpu()[clear], ref[clear])
    full = extrude_loop(torch.ones_like(sil), labels[rows].tolist(), depth)
    for k, j, m in (~clear[:, 0]).nonzero().tolist():  # on the threshold: empty or the body
        column = vox[k, :, j, m].cpu()
        assert torch.equal(column, full[k, :, j, m]) or not bool(column.any())


# ---------------------------------------------------------------------------- surface points
def on_the_surface(occ, points, tol):
    """Whether each point (x, y, z in [-1, 1]) is within ``tol`` cell of the boundary between
    an occupied cell and an empty one (or the outside): the cells whose closed box holds the
    point are not all alike."""
    D, H, W = occ.shape
    size = (W, H, D)
    out = []
    for p in points.tolist():
        lattice = [(c + 1) / 2 * s for c, s in zip(p, size, strict=True)]
        near = [range(math.floor(c - tol), math.floor(c + tol) + 1) for c in lattice]
        states = {occupied(occ, *cell) for cell in itertools.product(*near)}
        out.append(states == {True, False})
    return out


@on_devices
@PROPS
@given(seed=seeds, K=st.sampled_from([1, 2, 0]),
       shape=st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 4)),
       kind=st.sampled_from(["random", "slab", "full", "random", "empty"]),
       P=st.integers(1, 30))
def test_surface_points_lie_on_the_cubified_surface(device, seed, K, shape, kind, P):
    grid = random_grid(seed, K, shape, kind)
    # occupancies: empty cells 0, 0.2 or on 1/2; occupied ones 0.7, 1 or just above 1/2
    pick = torch.randint(0, 3, grid.shape, generator=gen(seed + 1))
    soft = torch.where(grid, torch.tensor([0.5 + 1e-12, 0.7, 1.0], dtype=F64)[pick],
                       torch.tensor([0.0, 0.2, 0.5], dtype=F64)[pick])

    def make():
        return gen(seed) if device == "cpu" else torch.Generator(device).manual_seed(seed)

    for dtype in (torch.bool, torch.float32, F64):  # every example, every accepted dtype
        targets = grid if dtype == torch.bool else soft.to(dtype)
        occ = targets > 0.5 if dtype != torch.bool else grid  # cubify's rule, in that dtype
        targets = targets.to(device)  # (0.5 + 1e-12 is 0.5 in float32: empty there)
        pts = surface_points(targets, P, make())
        out_dtype = torch.float32 if dtype == torch.bool else dtype
        assert pts.shape == (K, P, 3) and pts.dtype == out_dtype
        assert pts.device == targets.device
        assert torch.equal(surface_points(targets, P, make()), pts)  # the generator decides
        tol = 1e-4 if out_dtype == torch.float32 else 1e-9
        for k in range(K):
            if not bool(occ[k].any()):  # an empty grid gives zeros
                assert_close(pts[k], torch.zeros_like(pts[k]), rtol=0, atol=0)
                continue
            assert bool((pts[k].abs() <= 1 + tol).all())
            assert all(on_the_surface(occ[k], pts[k].cpu().double(), tol))
