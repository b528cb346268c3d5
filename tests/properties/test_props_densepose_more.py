"""Property tests (hypothesis) for the rest of coursekit.densepose: the head's losses,
pasting its maps into the image, carrying a mirror image's maps back (``hflip_maps``), the
two simulated annotation tasks (``sample_points``,
``person_parts``, ``annotate_scene``), the CSE metrics (``correspondence_accuracy``,
``chance_accuracy``), ``transfer_texture`` and the template (``body_template``).

Drawn: image counts and RoIs per image (0 included), map sizes and image sizes (1 pixel
included), point counts (0 included), part counts, embedding widths, boxes over the image
edge, of zero size or on pixel edges, mask densities (empty masks included), person counts
(0 included), vertex counts (1 included), radii (ties with the distances included), template
spacings, integer and float dtypes. References: the formulas written out in float64 one
element at a time (cross-entropy, smooth-L1 with ``beta = 0.1`` on the true part's channel,
``-log softmax(-||e - v||^2 / t)``, the nearest same-part vertex, the mean colour per
vertex), ``torchvision.ops.roi_align`` for the dense targets, ``F.grid_sample`` for the
bilinear reads, pixel loops for the masks and the boxes' pixels, the docstring's
``torch.randperm`` draw, the expectation over every possible guess (brute force), the
docstring's vertex counts; plus the invariants (order of RoIs and points does not matter,
a constant map pastes as the constant, points are distinct pixels of their person, the
template's distances are a metric). Checked on every device this machine has; seeded
(``derandomize=True``).
"""

import functools
import itertools
import math
from fractions import Fraction

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds
from torch.testing import assert_close
from torchvision.ops import roi_align as tv_roi_align

from coursekit.data import render_scene
from coursekit.data.persons import DRAW_PARTS, HEAD_PART
from coursekit.densepose import (
    NUM_PARTS,
    annotate_scene,
    body_template,
    chance_accuracy,
    correspondence_accuracy,
    densepose_losses,
    hflip_maps,
    paste_in_image,
    person_parts,
    sample_points,
    transfer_texture,
)

TEMPLATE = body_template(0.2)  # 40 vertices: the CSE term's template, built once
BETA = 0.1  # the smooth-L1 of U, V
AMBIGUOUS = 1e-4  # a dense target this close to a tie could round either way in float32


def cross_entropy_reference(logits, targets):
    """``mean_n log sum_k exp z_nk - z_n,t_n``, one row at a time (lists, float64)."""
    total = 0.0
    for z, t in zip(logits, targets, strict=True):
        top = max(z)
        total += top + math.log(sum(math.exp(x - top) for x in z)) - z[t]
    return total / len(logits)


def smooth_l1_reference(d):
    return 0.5 * d * d / BETA if abs(d) < BETA else abs(d) - 0.5 * BETA


def nearest_vertex_reference(part, u, v):
    """The template vertex of part ``part`` nearest the chart point, by a loop."""
    pos = TEMPLATE.chart_to_body(torch.tensor([part]), torch.tensor([[u, v]], dtype=F64))[0]
    best, best_d = -1, math.inf
    for k, (q, kp) in enumerate(zip(TEMPLATE.positions.tolist(), TEMPLATE.parts.tolist())):
        d = math.hypot(q[0] - float(pos[0]), q[1] - float(pos[1]))
        if kp == part and d < best_d:
            best, best_d = k, d
    return best


# --------------------------------------------------------------------------- the losses
def random_losses_case(seed, counts, M, N, P, hw, E, dtype):
    """Maps, RoIs (some over the image edge), masks, part maps and points (a quarter
    outside their box, some exactly on a corner, some with ``I = 0``), all float
    values already rounded to ``dtype`` (kept in float64 on the CPU)."""
    g = gen(seed)
    H, W = hw
    R = sum(counts)
    sizes = {"coarse": 2, "fine": P + 1, "u": P + 1, "v": P + 1}
    if E:
        sizes["embedding"] = E
    outputs = {k: torch.randn(R, c, M, M, generator=g, dtype=F64) for k, c in sizes.items()}
    proposals, masks, parts, points = [], [], [], []
    scale = torch.tensor([W, H], dtype=F64)
    for k in counts:
        xy = torch.rand(k, 2, generator=g, dtype=F64) * scale - 1
        boxes = torch.cat([xy, xy + 0.5 + torch.rand(k, 2, generator=g, dtype=F64) * scale], 1)
        boxes = boxes.to(dtype).double()
        proposals.append(boxes)
        masks.append(torch.rand(k, H, W, generator=g) < 0.5)
        parts.append(torch.randint(0, P + 1, (k, H, W), generator=g))
        # none within 1e-3 box widths of an edge (float32 could round it across), but some
        # exactly on the near or the far corner (kept)
        t = torch.rand(k, N, 2, generator=g, dtype=F64) * 1.5 - 0.25
        t = t + (t.abs() < 1e-3) * 2e-3 - ((t - 1).abs() < 1e-3) * 2e-3
        pxy = boxes[:, None, :2] + t * (boxes[:, None, 2:] - boxes[:, None, :2])
        corner = torch.rand(k, N, 1, generator=g)
        pxy = torch.where(corner < 0.1, boxes[:, None, :2].expand(k, N, 2), pxy)
        pxy = torch.where(corner > 0.9, boxes[:, None, 2:].expand(k, N, 2), pxy)
        part = torch.randint(0, P + 1, (k, N, 1), generator=g).to(F64)
        uv = torch.rand(k, N, 2, generator=g, dtype=F64)
        points.append(torch.cat([pxy, part, uv], 2).to(dtype).double())
    outputs = {k: t.to(dtype).double() for k, t in outputs.items()}
    return outputs, proposals, masks, parts, points


def dense_targets(outputs, proposals, masks, parts):
    """torchvision's RoI Align (aligned) of the masks (>= 0.5) and of the one-hot part maps
    (arg max). Where a target is within ``AMBIGUOUS`` of a tie the pixel's logits are made
    equal (in place), so that its cross-entropy does not depend on how the tie rounds."""
    M = outputs["coarse"].shape[-1]
    P1 = outputs["fine"].shape[1]
    boxes = torch.cat(proposals)
    own = torch.cat([torch.arange(len(boxes), dtype=F64)[:, None], boxes], 1)  # RoI r: row r
    soft = tv_roi_align(torch.cat(masks).to(F64)[:, None], own, M, 1.0, -1, True)[:, 0]
    tie = (soft - 0.5).abs() < AMBIGUOUS  # (R, M, M)
    outputs["coarse"][:, 1][tie] = outputs["coarse"][:, 0][tie]
    onehot = F.one_hot(torch.cat(parts), P1).permute(0, 3, 1, 2).to(F64)
    share = tv_roi_align(onehot, own, M, 1.0, 2, True)  # (R, P + 1, M, M)
    top2 = share.topk(min(2, P1), dim=1).values
    tie = (top2[:, 0] - top2[:, -1]).abs() < AMBIGUOUS  # (R, M, M)
    fine = outputs["fine"].permute(0, 2, 3, 1)  # a view: (R, M, M, P + 1)
    fine[tie] = fine[tie][:, :1].expand(-1, P1)
    return (soft >= 0.5).long(), share.argmax(1)


def losses_reference(outputs, proposals, points, fg, dense, vertices, temperature):
    """The five terms, one pixel and one point at a time in float64."""

    def per_pixel(t):  # Tensor[R, C, M, M] -> R M M rows of C logits
        return t.permute(0, 2, 3, 1).reshape(-1, t.shape[1]).tolist()

    ref = {
        "coarse": cross_entropy_reference(per_pixel(outputs["coarse"]), fg.flatten().tolist()),
        "segm": cross_entropy_reference(per_pixel(outputs["fine"]), dense.flatten().tolist()),
    }
    boxes, pts = torch.cat(proposals), torch.cat(points)  # (R, 4), (R, N, 5)
    M = outputs["coarse"].shape[-1]
    reads, rows = [], []
    for r in range(len(boxes)):
        x1, y1, x2, y2 = boxes[r].tolist()
        for x, y, part, u, v in pts[r].tolist():
            gx, gy = (x - x1) / (x2 - x1) * M, (y - y1) / (y2 - y1) * M
            if part == 0 or not (0 <= gx <= M and 0 <= gy <= M):
                continue
            grid = torch.tensor([[[[gx / M * 2 - 1, gy / M * 2 - 1]]]], dtype=F64)
            reads.append(
                {
                    k: F.grid_sample(
                        t[r : r + 1],
                        grid,
                        mode="bilinear",
                        padding_mode="border",
                        align_corners=False,
                    )[0, :, 0, 0]
                    for k, t in outputs.items()
                }
            )
            rows.append((int(part), u, v))
    if not rows:
        return ref, 0
    ref["parts"] = cross_entropy_reference(
        [m["fine"].tolist() for m in reads], [p for p, _, _ in rows]
    )
    ref["uv"] = sum(
        smooth_l1_reference(float(m["u"][p]) - u) for m, (p, u, _) in zip(reads, rows, strict=True)
    ) / len(rows) + sum(
        smooth_l1_reference(float(m["v"][p]) - v) for m, (p, _, v) in zip(reads, rows, strict=True)
    ) / len(rows)
    if vertices is not None:
        targets = [nearest_vertex_reference(p, u, v) for p, u, v in rows]
        logits = [
            [
                -sum((a - b) ** 2 for a, b in zip(m["embedding"].tolist(), vk, strict=True))
                / temperature
                for vk in vertices.tolist()
            ]
            for m in reads
        ]
        ref["cse"] = cross_entropy_reference(logits, targets)
    return ref, len(rows)


def call_losses(outputs, proposals, masks, parts, points, vertices, temperature, device, dtype):
    """``densepose_losses`` on ``device`` in ``dtype``, maps and embeddings requiring grad."""
    on = {k: t.to(device, dtype, copy=True).requires_grad_() for k, t in outputs.items()}
    v = None if vertices is None else vertices.to(device, dtype, copy=True).requires_grad_()
    losses = densepose_losses(
        on,
        [p.to(device, dtype) for p in proposals],
        [m.to(device) for m in masks],
        [p.to(device, dtype) for p in points],
        gt_parts=[p.to(device) for p in parts],
        template=TEMPLATE if v is not None else None,
        vertex_embeddings=v,
        temperature=temperature,
    )
    return losses, on, v


loss_cases = {
    "seed": seeds,
    "counts": st.lists(st.integers(0, 2), min_size=1, max_size=3),
    "M": st.integers(1, 4),
    "N": st.integers(0, 5),
    "P": st.integers(1, 4),
    "hw": st.tuples(st.integers(1, 8), st.integers(1, 8)),
    "E": st.integers(0, 3),
    "dtype": floats,
}


@on_devices
@PROPS
@given(**loss_cases, temperature=st.sampled_from([0.5, 1.0, 2.0]))
def test_densepose_losses_are_the_formulas(
    device, seed, counts, M, N, P, hw, E, dtype, temperature
):
    outputs, proposals, masks, parts, points = random_losses_case(
        seed, counts, M, N, P, hw, E, dtype
    )
    R = sum(counts)
    vertices = torch.randn(len(TEMPLATE), E, generator=gen(seed + 1), dtype=F64) if E else None
    if vertices is not None:
        vertices = vertices.to(dtype).double()
    if R:
        fg, dense = dense_targets(outputs, proposals, masks, parts)  # may tie some logits
    losses, on, v = call_losses(
        outputs, proposals, masks, parts, points, vertices, temperature, device, dtype
    )
    names = {"coarse", "segm", "parts", "uv"} | ({"cse"} if E else set())
    assert set(losses) == names
    for value in losses.values():
        assert value.shape == () and value.dtype == dtype and value.device == on["coarse"].device
    sum(losses.values()).backward()  # every term stays in the graph, even when 0
    grads = [t.grad for t in on.values()] + ([v.grad] if E else [])
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    if R == 0:  # no RoI: every term 0, nothing to learn
        assert all(value.item() == 0 for value in losses.values())
        assert all(bool((g == 0).all()) for g in grads)
        return
    ref, n = losses_reference(outputs, proposals, points, fg, dense, vertices, temperature)
    if n == 0:  # no point read: the point terms are 0 and send no gradient to the point maps
        assert all(losses[k].item() == 0 for k in names - {"coarse", "segm"})
        assert bool((on["u"].grad == 0).all()) and bool((on["v"].grad == 0).all())
    tol = 1e-10 if dtype == F64 else 1e-4
    for k, value in ref.items():
        assert_close(
            losses[k].double().cpu(), torch.tensor(value, dtype=F64), rtol=tol, atol=tol, msg=k
        )
    assert all(losses[k].item() >= 0 for k in names)  # cross-entropies and smooth-L1s


@on_devices
@PROPS
@given(**loss_cases)
def test_densepose_losses_ignore_the_order_of_images_rois_and_points(
    device, seed, counts, M, N, P, hw, E, dtype
):
    outputs, proposals, masks, parts, points = random_losses_case(
        seed, counts, M, N, P, hw, E, dtype
    )
    vertices = torch.randn(len(TEMPLATE), E, generator=gen(seed + 1), dtype=F64) if E else None
    g = gen(seed + 2)
    # images in another order, and each image's RoIs (with their maps, masks, part maps and
    # points) in another order; each RoI's points shuffled too
    starts = [sum(counts[:i]) for i in range(len(counts))]
    order = torch.randperm(len(counts), generator=g).tolist()
    rows, perm = [], {}
    for i in order:
        perm[i] = torch.randperm(counts[i], generator=g)
        rows += (starts[i] + perm[i]).tolist()
    shuffle = [torch.rand(counts[i], N, generator=g).argsort(1) for i in range(len(counts))]

    def moved(per_image):
        return [per_image[i][perm[i]] for i in order]

    points2 = [
        pts.gather(1, s[..., None].expand(-1, -1, 5))
        for pts, s in zip(points, shuffle, strict=True)
    ]
    rows = torch.tensor(rows, dtype=torch.int64)
    args = (vertices, 1.0, device, dtype)
    first, _, _ = call_losses(outputs, proposals, masks, parts, points, *args)
    second, _, _ = call_losses(
        {k: t[rows] for k, t in outputs.items()},
        moved(proposals),
        moved(masks),
        moved(parts),
        moved(points2),
        *args,
    )
    assert set(first) == set(second)
    tol = 1e-12 if dtype == F64 else 1e-5
    for k in first:
        assert_close(second[k], first[k], rtol=tol, atol=tol, msg=k)


# ------------------------------------------------------------------------- paste_in_image
def random_boxes(g, D, H, W):
    """Boxes over the image edges, some of zero width or height, some snapped to half
    pixels (pixel centres exactly on their edges)."""
    xy = torch.rand(D, 2, generator=g, dtype=F64) * torch.tensor([W + 2, H + 2]) - 2
    wh = torch.rand(D, 2, generator=g, dtype=F64) * torch.tensor([W + 1, H + 1])
    wh = torch.where(torch.rand(D, 2, generator=g) < 0.15, 0.0, wh)
    boxes = torch.cat([xy, xy + wh], 1)
    snap = torch.rand(D, 1, generator=g) < 0.4
    return torch.where(snap, (boxes * 2).round() / 2, boxes)


def inside_reference(boxes, H, W):
    """bool Tensor[D, H, W]: the pixels whose centre (j + 0.5, i + 0.5) lies in the box
    ``[x1, x2) x [y1, y2)``, pixel by pixel."""
    out = torch.zeros(len(boxes), H, W, dtype=torch.bool)
    for d, (x1, y1, x2, y2) in enumerate(boxes.tolist()):
        for i in range(H):
            for j in range(W):
                out[d, i, j] = x1 <= j + 0.5 < x2 and y1 <= i + 0.5 < y2
    return out


paste_cases = {
    "seed": seeds,
    "D": st.integers(0, 3),
    "C": st.integers(1, 3),
    "M": st.integers(1, 5),
    "hw": st.tuples(st.integers(1, 8), st.integers(1, 8)),
    "dtype": floats,
}


@on_devices
@PROPS
@given(**paste_cases)
def test_paste_in_image_is_grid_sample_inside_the_box(device, seed, D, C, M, hw, dtype):
    g = gen(seed)
    H, W = hw
    boxes = random_boxes(g, D, H, W).to(dtype)
    maps = torch.randn(D, C, M, M, generator=g, dtype=F64).to(dtype)
    out, inside = paste_in_image(maps.to(device), boxes.to(device), hw)
    assert out.shape == (D, C, H, W) and out.dtype == dtype and out.device.type == device
    assert inside.shape == (D, H, W) and inside.dtype == torch.bool
    ref_inside = inside_reference(boxes.double(), H, W)
    assert torch.equal(inside.cpu(), ref_inside)
    assert bool((out.movedim(1, -1)[~inside] == 0).all())  # 0 outside the box
    if not bool(ref_inside.any()):
        return
    # F.grid_sample (align_corners=False, border) at the normalised box coordinates of each
    # pixel centre: 2 (c - x1) / w - 1
    b = boxes.double()
    w, h = (b[:, 2] - b[:, 0]).clamp(min=1e-12), (b[:, 3] - b[:, 1]).clamp(min=1e-12)
    cx = torch.arange(W, dtype=F64) + 0.5
    cy = torch.arange(H, dtype=F64) + 0.5
    gx = ((cx[None] - b[:, :1]) / w[:, None] * 2 - 1)[:, None, :].expand(D, H, W)
    gy = ((cy[None] - b[:, 1:2]) / h[:, None] * 2 - 1)[:, :, None].expand(D, H, W)
    ref = F.grid_sample(
        maps.double(),
        torch.stack([gx, gy], -1),
        mode="bilinear",
        padding_mode="border",
        align_corners=False,
    )
    tol = 1e-10 if dtype == F64 else 1e-4
    on = ref_inside[:, None].expand(D, C, H, W)
    assert_close(out.cpu().double()[on], ref[on], rtol=tol, atol=tol)


@on_devices
@PROPS
@given(**paste_cases)
def test_paste_in_image_of_a_constant_map_is_the_constant_on_the_box(
    device, seed, D, C, M, hw, dtype
):
    g = gen(seed)
    H, W = hw
    boxes = random_boxes(g, D, H, W).to(dtype)
    value = torch.randn(D, C, generator=g, dtype=F64).to(dtype)
    maps = value[:, :, None, None].expand(D, C, M, M).contiguous()
    out, inside = paste_in_image(maps.to(device), boxes.to(device), hw)
    ref_inside = inside_reference(boxes.double(), H, W)
    assert torch.equal(inside.cpu(), ref_inside)
    ref = value[:, :, None, None] * ref_inside[:, None].to(dtype)  # (D, C, H, W)
    assert out.dtype == dtype and out.device.type == device
    assert_close(out.cpu(), ref)
    assert bool((out.cpu()[~ref_inside[:, None].expand(D, C, H, W)] == 0).all())


# ------------------------------------------------------------------------- hflip_maps
@on_devices
@PROPS
@given(seed=seeds, R=st.integers(0, 3), M=st.integers(1, 4), parts=st.integers(1, 5),
       dtype=floats)
def test_hflip_maps_element_by_element(device, seed, R, M, parts, dtype):
    """``out[k][r, c, i, j] = in[k][r, sym[c], i, M - 1 - j]`` (``1 -`` that for ``v``; no
    channel swap for ``coarse``), for a random mirror table ``sym`` of ``parts + 1`` channels
    (random pairs swapped, the rest fixed: a permutation that is its own inverse), one element
    at a time; dtype and device kept."""
    g = gen(seed)
    order = torch.randperm(parts + 1, generator=g)
    pairs = order[: int(torch.randint(0, (parts + 1) // 2 + 1, (1,), generator=g)) * 2]
    swap = torch.arange(parts + 1)
    swap[pairs[0::2]], swap[pairs[1::2]] = pairs[1::2], pairs[0::2]
    sym = swap.tolist()
    sizes = {"coarse": 2, "fine": parts + 1, "u": parts + 1, "v": parts + 1}
    maps = {k: torch.randn(R, c, M, M, generator=g, dtype=F64).to(dtype) for k, c in sizes.items()}
    out = hflip_maps({k: v.to(device) for k, v in maps.items()}, symmetries=sym)
    assert sorted(out) == sorted(sizes)
    for k, c in sizes.items():
        assert out[k].shape == (R, c, M, M) and out[k].dtype == dtype
        assert out[k].device.type == device
        got = out[k].cpu()
        for r, ch, i, j in itertools.product(range(R), range(c), range(M), range(M)):
            src = maps[k][r, ch if k == "coarse" else sym[ch], i, M - 1 - j]
            assert got[r, ch, i, j] == (1 - src if k == "v" else src)


# ---------------------------------------------------------------- task 2: sample_points
def sample_reference(parts, uv, mask, num_points, g):
    """The docstring: the person pixels in row-major order, ``torch.randperm`` with ``g``
    picks ``min(num_points, n)`` of them, each row ``(j + 0.5, i + 0.5, I, U, V)`` in
    float32; zero rows after them."""
    parts, uv, mask = parts.cpu().tolist(), uv.cpu().float().tolist(), mask.cpu().tolist()
    pixels = [
        (i, j) for i, row in enumerate(parts) for j, p in enumerate(row) if p > 0 and mask[i][j]
    ]
    order = torch.randperm(len(pixels), generator=g).tolist()[:num_points]
    rows = [
        [j + 0.5, i + 0.5, parts[i][j], uv[0][i][j], uv[1][i][j]]
        for i, j in (pixels[k] for k in order)
    ]
    rows += [[0.0] * 5] * (num_points - len(rows))
    return torch.tensor(rows, dtype=torch.float32).view(num_points, 5)


def random_chart(g, H, W, p_background, dtype):
    parts = torch.randint(1, NUM_PARTS + 1, (H, W), generator=g)
    parts[torch.rand(H, W, generator=g) < p_background] = 0
    return parts, torch.rand(2, H, W, generator=g, dtype=F64).to(dtype)


@on_devices
@PROPS
@given(
    seed=seeds,
    hw=st.tuples(st.integers(0, 6), st.integers(0, 6)),
    num_points=st.integers(1, 30),
    density=st.sampled_from([0.0, 0.3, 0.8, 1.0]),
    p_background=st.sampled_from([0.0, 0.5]),
    dtype=floats,
)
def test_sample_points_draws_distinct_pixels_of_the_person(
    device, seed, hw, num_points, density, p_background, dtype
):
    g = gen(seed)
    parts, uv = random_chart(g, *hw, p_background, dtype)
    mask = torch.rand(hw, generator=g) < density
    args = (parts.to(device), uv.to(device), mask.to(device), num_points)
    pts = sample_points(*args, generator=gen(seed + 1))
    assert pts.shape == (num_points, 5) and pts.dtype == torch.float32
    assert pts.device.type == device
    person = mask & (parts > 0)
    n = min(num_points, int(person.sum()))
    real = pts[:n].cpu()
    assert bool((real[:, 2] > 0).all()) and bool((pts[n:] == 0).all())
    j, i = (real[:, 0] - 0.5).long(), (real[:, 1] - 0.5).long()
    assert torch.equal(real[:, 0], j + 0.5) and torch.equal(real[:, 1], i + 0.5)  # centres
    assert bool(person[i, j].all())  # pixels of the person, with their true I, U, V
    assert torch.equal(real[:, 2], parts[i, j].float())
    assert torch.equal(real[:, 3:], uv.float()[:, i, j].T)
    assert len(set(zip(i.tolist(), j.tolist(), strict=True))) == n  # distinct pixels
    if num_points >= int(person.sum()):  # every person pixel, once
        assert sorted(torch.stack([i, j], 1).tolist()) == person.nonzero().tolist()
    assert torch.equal(sample_points(*args, generator=gen(seed + 1)), pts)  # seeded
    assert torch.equal(pts.cpu(), sample_reference(parts, uv, mask, num_points, gen(seed + 1)))


# ----------------------------------------------------------------- task 1: person_parts
@on_devices
@PROPS
@given(
    seed=seeds,
    P=st.integers(0, 4),
    hw=st.tuples(st.integers(0, 6), st.integers(0, 6)),
    density=st.sampled_from([0.0, 0.4, 1.0]),
    int_dtype=st.sampled_from([torch.int64, torch.int32, torch.uint8]),
)
def test_person_parts_is_the_parts_inside_each_mask(device, seed, P, hw, density, int_dtype):
    g = gen(seed)
    parts = torch.randint(0, NUM_PARTS + 1, hw, generator=g).to(int_dtype)
    masks = torch.rand(P, *hw, generator=g) < density
    out = person_parts(parts.to(device), masks.to(device))
    assert out.shape == (P, *hw) and out.dtype == int_dtype and out.device.type == device
    ref = torch.zeros(P, *hw, dtype=int_dtype)
    for p in range(P):
        for i in range(hw[0]):
            for j in range(hw[1]):
                if masks[p, i, j]:
                    ref[p, i, j] = parts[i, j]
    assert torch.equal(out.cpu(), ref)


# ------------------------------------------------------------------------ annotate_scene
@on_devices
@PROPS
@given(
    scene_seed=st.integers(0, 10_000),
    seed=st.integers(0, 1000),
    num_points=st.integers(1, 40),
    p_person=st.sampled_from([0.0, 0.6, 1.0]),
)
def test_annotate_scene_is_both_tasks_for_every_person(
    device, scene_seed, seed, num_points, p_person
):
    scene = render_scene(scene_seed, 32, num_things=(0, 3), p_person=p_person, device=device)
    ann = annotate_scene(scene, num_points, seed)
    rows = scene.person_index.tolist()
    P = len(rows)
    assert set(ann) == {"boxes", "masks", "parts", "points"}
    assert ann["boxes"].shape == (P, 4) and ann["boxes"].dtype == torch.float32
    assert ann["points"].shape == (P, num_points, 5) and ann["points"].dtype == torch.float32
    assert ann["parts"].shape == (P, 32, 32) and ann["parts"].dtype == torch.int64
    assert all(t.device == scene.parts.device for t in ann.values())
    assert torch.equal(ann["boxes"].cpu(), scene.boxes.cpu()[rows].float())
    assert torch.equal(ann["masks"].cpu(), scene.masks.cpu()[rows])
    masks, parts = ann["masks"].cpu(), scene.parts.cpu()
    assert torch.equal(ann["parts"].cpu(), parts[None] * masks)  # task 1
    # task 2: one generator for the scene, the persons drawn one after the other
    g = torch.Generator().manual_seed(seed * 1_000_003 + scene_seed)
    for p in range(P):
        ref = sample_reference(parts, scene.uv, masks[p], num_points, g)
        assert torch.equal(ann["points"][p].cpu(), ref)
        real = ref[ref[:, 2] > 0]
        i, j = real[:, 1].long(), real[:, 0].long()
        assert bool(masks[p][i, j].all())  # every point on its own person
        assert len(real) == min(num_points, int((masks[p] & (parts > 0)).sum()))


# --------------------------------------------------------------------- the CSE metrics
def random_distances(g, V, dtype):
    """A symmetric Tensor[V, V] with a zero diagonal in quarter steps (exact in float32, so
    the radii below tie with some distances)."""
    d = torch.randint(0, 8, (V, V), generator=g).to(F64) / 4
    d = (d + d.T).fill_diagonal_(0)
    return d.to(dtype)


radii = st.sampled_from([-0.25, 0.0, 0.25, 0.5, 1.0, 1.75, 2.5, 10.0])


@on_devices
@PROPS
@given(
    seed=seeds,
    V=st.integers(1, 6),
    N=st.integers(0, 8),
    radius=radii,
    tie=st.booleans(),
    dtype=floats,
)
def test_correspondence_accuracy_counts_distances_within_the_radius(
    device, seed, V, N, radius, tie, dtype
):
    g = gen(seed)
    d = random_distances(g, V, dtype)
    true = torch.randint(0, V, (N,), generator=g)
    pred = torch.where(
        torch.rand(N, generator=g) < 0.3, true, torch.randint(0, V, (N,), generator=g)
    )
    if tie and N:  # the radius is exactly the first point's distance: it counts
        radius = float(d[true[0], pred[0]])
    acc = correspondence_accuracy(pred.to(device), true.to(device), d.to(device), radius)
    same = correspondence_accuracy(true.to(device), true.to(device), d.to(device), radius)
    assert isinstance(acc, float) and isinstance(same, float)
    if N == 0:
        assert math.isnan(acc) and math.isnan(same)
        return
    dl = d.tolist()
    hits = sum(dl[t][p] <= radius for t, p in zip(true.tolist(), pred.tolist(), strict=True))
    assert_close(acc, hits / N, rtol=0, atol=1e-15)
    assert same == (1.0 if radius >= 0 else 0.0)  # every vertex is at distance 0 of itself


@on_devices
@PROPS
@given(
    seed=seeds,
    V=st.integers(1, 5),
    N=st.integers(0, 3),
    radius=radii,
    tie=st.booleans(),
    dtype=floats,
)
def test_chance_accuracy_is_the_mean_over_every_guess(device, seed, V, N, radius, tie, dtype):
    g = gen(seed)
    d = random_distances(g, V, dtype)
    true = torch.randint(0, V, (N,), generator=g)
    if tie and N:  # the radius is exactly a distance from the first point's vertex
        radius = float(d[true[0], (true[0] + 1) % V])
    chance = chance_accuracy(true.to(device), d.to(device), radius)
    assert isinstance(chance, float)
    if N == 0:
        assert math.isnan(chance)
        return
    # brute force: the exact mean of the accuracy over all V^N equally likely guesses
    dl, tl = d.tolist(), true.tolist()
    guesses = list(itertools.product(range(V), repeat=N))
    total = sum(
        Fraction(sum(dl[t][p] <= radius for t, p in zip(tl, guess, strict=True)), N)
        for guess in guesses
    )
    assert_close(chance, float(total / len(guesses)), rtol=1e-12, atol=1e-15)
    if N <= 2:  # and the same mean of the library's own accuracy
        accs = [
            correspondence_accuracy(
                torch.tensor(guess, device=device), true.to(device), d.to(device), radius
            )
            for guess in guesses
        ]
        assert_close(chance, sum(accs) / len(accs), rtol=1e-12, atol=1e-15)


@on_devices
@PROPS
@given(
    seed=seeds,
    V=st.integers(1, 6),
    Ns=st.integers(1, 8),
    Nt=st.integers(0, 6),
    C=st.integers(1, 3),
    grid=st.sampled_from([2, 3, 1000]),
    dtype=floats,
)
def test_transfer_texture_takes_the_nearest_textured_vertex(
    device, seed, V, Ns, Nt, C, grid, dtype
):
    g = gen(seed)
    # vertices on a small integer grid: repeated positions and tied distances
    pos = torch.randint(0, grid, (V, 2), generator=g).tolist()
    d = torch.tensor([[math.hypot(a[0] - b[0], a[1] - b[1]) for b in pos] for a in pos], dtype=F64)
    source = torch.randint(0, V, (Ns,), generator=g)
    colors = torch.randn(Ns, C, generator=g, dtype=F64).to(dtype)
    target = torch.randint(0, V, (Nt,), generator=g)
    out = transfer_texture(source.to(device), colors.to(device), target.to(device), d.to(device))
    assert out.shape == (Nt, C) and out.dtype == dtype and out.device.type == device
    # each vertex's texture: the mean colour of its source pixels, in float64
    sums = {}
    for k, c in zip(source.tolist(), colors.double().tolist(), strict=True):
        sums.setdefault(k, []).append(c)
    mean = {k: torch.tensor(cs, dtype=F64).mean(0) for k, cs in sums.items()}
    tol = 1e-12 if dtype == F64 else 1e-5
    for n, t in enumerate(target.tolist()):
        if t in mean:  # reached by the source: its own mean colour
            assert_close(out[n].cpu().double(), mean[t], rtol=tol, atol=tol)
        else:  # else the colour of one of the nearest textured vertices
            near = min(float(d[t, k]) for k in mean)
            candidates = [mean[k] for k in mean if float(d[t, k]) == near]
            best = min(candidates, key=lambda m: float((out[n].cpu().double() - m).abs().max()))
            assert_close(out[n].cpu().double(), best, rtol=tol, atol=tol)


# ------------------------------------------------------------------------ body_template
@functools.lru_cache
def cached_template(spacing):
    return body_template(spacing)


def docstring_counts(template, spacing):
    """Vertices per part 1..10 from the docstring: a ``round(L / s)`` by ``round(2 r / s)``
    grid (at least 2 each) of cell centres; the head's ``round(2 r / s)`` square grid cut to
    its disk ``(2U - 1)^2 + (2V - 1)^2 <= 1``."""
    counts = [0] * (NUM_PARTS + 1)
    for part, (*_, length, r) in zip(DRAW_PARTS, template.segments.tolist(), strict=True):
        n = max(2, round(2 * r / spacing))
        if part == HEAD_PART:
            cells = [((a + 0.5) / n, (b + 0.5) / n) for a in range(n) for b in range(n)]
            counts[part] = sum((2 * u - 1) ** 2 + (2 * v - 1) ** 2 <= 1 for u, v in cells)
        else:
            counts[part] = max(2, round(length / spacing)) * n
    return counts


@PROPS
@given(spacing=st.sampled_from([0.03, 0.05, 0.08, 0.1, 0.15, 0.2, 0.35, 0.5, 1.0, 3.0]), seed=seeds)
def test_body_template_is_a_grid_on_each_part_with_a_metric(spacing, seed):
    t = cached_template(spacing)
    V = len(t)
    assert t.positions.shape == (V, 2) and t.positions.dtype == F64
    assert t.parts.shape == (V,) and t.parts.dtype == torch.int64
    assert t.uv.shape == (V, 2) and t.uv.dtype == F64
    assert torch.bincount(t.parts, minlength=NUM_PARTS + 1).tolist() == docstring_counts(t, spacing)
    if spacing == 0.03:
        assert V == 248  # the docstring's default count
    # every part 1..10 present, grouped in order; U, V cell centres strictly inside (0, 1)
    assert set(t.parts.tolist()) == set(range(1, NUM_PARTS + 1))
    assert bool((t.parts.diff() >= 0).all())
    assert bool(((t.uv > 0) & (t.uv < 1)).all())
    # each vertex lies on its own part: within r of the part's segment (the head: its disk)
    segments = dict(zip(DRAW_PARTS, t.segments.tolist(), strict=True))
    positions = t.positions.tolist()
    for (x, y), part in zip(positions, t.parts.tolist(), strict=True):
        assert segment_distance(x, y, segments[part]) <= segments[part][5] + 1e-12, (part, x, y)
    # every vertex is its own nearest vertex of its part
    assert torch.equal(t.nearest_vertex(t.parts, t.uv), torch.arange(V))
    # the distances: Euclidean, symmetric, zero on the diagonal, a metric on sampled triples
    d = t.distances()
    assert d.shape == (V, V) and d.dtype == F64
    assert torch.equal(d, d.T) and bool((d.diagonal() == 0).all()) and bool((d >= 0).all())
    g = gen(seed)
    a, b, c = torch.randint(0, V, (3, 200), generator=g).tolist()
    for i, j, k in zip(a, b, c, strict=True):
        (xi, yi), (xj, yj) = positions[i], positions[j]
        assert math.isclose(float(d[i, j]), math.hypot(xi - xj, yi - yj), abs_tol=1e-12)
        assert float(d[i, k]) <= float(d[i, j]) + float(d[j, k]) + 1e-12


def segment_distance(x, y, seg):
    """Distance from (x, y) to the segment ``a + t d``, ``t`` in ``[0, length]``."""
    ax, ay, dx, dy, length, _ = seg
    t = min(max((x - ax) * dx + (y - ay) * dy, 0.0), length)
    return math.hypot(x - ax - t * dx, y - ay - t * dy)
