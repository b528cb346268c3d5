"""Draw annotations onto an image tensor: masks, boxes, keypoints, panoptic / part / UV maps.

Images are float Tensor[3, H, W] in [0, 1]; every function returns a new tensor on the
input's device and never modifies its input. Pixel (row i, column j) has its centre at
(x, y) = (j, i), the convention of PIL and ``torchvision.utils``.
Tested in tests/viz/test_overlay.py.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence

import torch
from torch import Tensor

from coursekit.pose.coco_keypoints import COCO_SKELETON_0BASED
from coursekit.validators import (
    check_boxes,
    describe,
    positive_int,
    require_bool,
    require_tensor,
)
from coursekit.viz.colors import (
    CATEGORY_COLORS,
    FLOAT_DTYPES,
    _check_image,
    _check_integer,
    _check_real,
    _parse_colors,
    hsv_to_rgb,
    label_colors,
    palette,
    rgb_to_hsv,
)

__all__ = [
    "COCO_SKELETON_0BASED",
    "INSTANCE_VARIANTS",
    "draw_boxes",
    "draw_keypoints",
    "instance_colors",
    "overlay_masks",
    "panoptic_colors",
    "parts_colors",
    "segment_boundaries",
    "uv_colors",
]

# COCO_SKELETON_0BASED (the 19 limbs of the COCO person skeleton, 0-based keypoint indices)
# comes from coursekit.pose.coco_keypoints, the one place the COCO schema is written down;
# it is re-exported here (and by coursekit.viz) for draw_keypoints' callers.

# How the k-th instance of a category is coloured (k mod 12): (hue shift, saturation factor,
# shade). Row 0 is the category colour itself. Chosen by a farthest-point search so that
# the 12 variants of every ShapesWorld thing colour are at least 0.2 apart in RGB
# (tests/viz/test_instance_colors.py), with the hue within 0.06 (22 degrees) of the class's
# and none paler than 40% of the way to white (white is the usual border colour).
INSTANCE_VARIANTS: tuple[tuple[float, float, float], ...] = (
    (0.00, 1.0, 0.00), (0.00, 1.6, -0.60), (0.06, 0.5, 0.40), (0.00, 0.5, -0.40),
    (-0.02, 1.6, -0.25), (0.06, 1.6, -0.20), (-0.06, 1.6, 0.15), (0.06, 0.5, -0.25),
    (0.06, 1.6, 0.05), (0.06, 1.6, 0.40), (0.04, 0.5, -0.60), (-0.06, 0.5, 0.10),
)  # fmt: skip


CHUNK_ELEMENTS = 2**22  # masks of at most this many pixels exist at once (4 MB as bool)


def _top(
    masks_of: Callable[[int, int], Tensor], n: int, H: int, W: int, device: torch.device
) -> Tensor:
    """(H, W) int64: 1 + the index of the last of ``n`` masks covering each pixel, 0 if none.

    ``masks_of(lo, hi)`` returns the bool masks ``lo..hi-1`` as Tensor[hi - lo, H, W]; they
    are made a chunk at a time, so memory is bounded by ``CHUNK_ELEMENTS``, not n * H * W.
    """
    top = torch.zeros(H, W, dtype=torch.long, device=device)
    step = max(1, CHUNK_ELEMENTS // max(1, H * W))
    for lo in range(0, n, step):
        hi = min(n, lo + step)
        rank = torch.arange(lo + 1, hi + 1, device=device)  # (c,)
        top = torch.maximum(top, (masks_of(lo, hi) * rank[:, None, None]).amax(0))  # (H, W)
    return top


def _blend(image: Tensor, top: Tensor, colors: Tensor, alpha: float = 1.0) -> Tensor:
    """``out = (1 - alpha) * image + alpha * colors[top - 1]`` where ``top > 0``, image elsewhere.

    float16 / bfloat16 images are blended in float32; the result has ``image``'s dtype.
    """
    if colors.shape[0] == 0:
        return image.clone()
    work = image.float() if image.dtype in (torch.float16, torch.bfloat16) else image
    colour = colors.to(work.dtype)[(top - 1).clamp(min=0)].permute(2, 0, 1)  # (3, H, W)
    return torch.where(top > 0, (1 - alpha) * work + alpha * colour, work).to(image.dtype)


def _paint(image: Tensor, masks: Tensor, colors: Tensor, alpha: float = 1.0) -> Tensor:
    """Blend colour k into the pixels of masks[k]; where masks overlap the last one wins.

    image (3, H, W), masks (N, H, W) bool, colors (N, 3):
    ``out = (1 - alpha) * image + alpha * colors[top]`` on covered pixels, image elsewhere.
    """
    H, W = image.shape[1:]
    top = _top(lambda lo, hi: masks[lo:hi], masks.shape[0], H, W, masks.device)
    return _blend(image, top.to(image.device), colors, alpha)


def overlay_masks(
    image: Tensor, masks: Tensor, colors: Tensor | None = None, alpha: float = 0.5
) -> Tensor:
    """Alpha-blend coloured masks onto an image.

    image Tensor[3, H, W], masks Tensor[N, H, W] bool, colors Tensor[N, 3] (default
    ``palette(N)``). On pixels of mask k: ``out = (1 - alpha) * image + alpha * colors[k]``;
    elsewhere ``out = image``. Where masks overlap the last mask wins (draw order).
    Same as ``torchvision.utils.draw_segmentation_masks`` for non-overlapping masks
    (torchvision paints overlaps black). Differentiable in image (gradcheck in the test).
    """
    image = _check_image(image)
    expected = f"a bool Tensor[N, {image.shape[1]}, {image.shape[2]}] (image size)"
    require_tensor(masks, "masks", expected)
    if masks.dim() != 3 or masks.shape[1:] != image.shape[1:]:
        raise ValueError(f"masks must be Tensor[N, {image.shape[1]}, {image.shape[2]}] "
                         f"(image size), got {describe(masks)}")
    require_bool(masks, "masks", "a bool tensor")
    alpha = _check_real(alpha, "alpha")
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1], got {alpha}")
    colors = _parse_colors(colors, masks.shape[0], image)  # (N, 3)
    return _paint(image, masks.to(image.device), colors, alpha)


def draw_boxes(
    image: Tensor, boxes: Tensor, colors: Tensor | None = None, width: int = 1
) -> Tensor:
    """Draw rectangle outlines ``width`` pixels thick, growing inwards from the box edge.

    image Tensor[3, H, W], boxes Tensor[N, 4] as (x0, y0, x1, y1) pixel coordinates.
    A box covers columns floor(x0)..floor(x1) and rows floor(y0)..floor(y1) inclusive;
    its outline is that rectangle minus the one shrunk by ``width`` on every side.
    Parts outside the image are clipped. Same pixels as
    ``torchvision.utils.draw_bounding_boxes`` (PIL) for boxes with non-negative corners.
    """
    image = _check_image(image)
    check_boxes(boxes, "boxes")
    width = positive_int(width, "width")
    if bool(((boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])).any()):
        raise ValueError("boxes must be (x0, y0, x1, y1) with x0 <= x1 and y0 <= y1")
    colors = _parse_colors(colors, boxes.shape[0], image)  # (N, 3)
    H, W = image.shape[1:]
    x0, y0, x1, y1 = boxes.to(image.device).floor().long().unbind(1)  # each (N,)
    xs = torch.arange(W, device=image.device)[None, None, :]  # (1, 1, W)
    ys = torch.arange(H, device=image.device)[None, :, None]  # (1, H, 1)

    def inside(lo: int, hi: int, shrink: int) -> Tensor:  # (c, H, W): boxes lo..hi-1, shrunk
        in_x = (xs >= x0[lo:hi, None, None] + shrink) & (xs <= x1[lo:hi, None, None] - shrink)
        in_y = (ys >= y0[lo:hi, None, None] + shrink) & (ys <= y1[lo:hi, None, None] - shrink)
        return in_x & in_y

    def outlines(lo: int, hi: int) -> Tensor:  # (c, H, W)
        return inside(lo, hi, 0) & ~inside(lo, hi, width)

    return _blend(image, _top(outlines, boxes.shape[0], H, W, image.device), colors)


def _segments_top(a: Tensor, b: Tensor, H: int, W: int, max_dist: float) -> Tensor:
    """(H, W): 1 + the last segment a[s]-b[s] within ``max_dist`` of each pixel centre, or 0."""
    return _top(lambda lo, hi: _near_segments(a[lo:hi], b[lo:hi], H, W, max_dist),
                a.shape[0], H, W, a.device)


def _near_segments(a: Tensor, b: Tensor, H: int, W: int, max_dist: float) -> Tensor:
    """(S, H, W) bool: pixel centres within ``max_dist`` of segment a[s]-b[s] (a, b: (S, 2))."""
    xs = torch.arange(W, device=a.device, dtype=a.dtype)[None, None, :]  # (1, 1, W)
    ys = torch.arange(H, device=a.device, dtype=a.dtype)[None, :, None]  # (1, H, 1)
    ax, ay = a[:, 0, None, None], a[:, 1, None, None]  # (S, 1, 1)
    dx, dy = (b - a)[:, 0, None, None], (b - a)[:, 1, None, None]  # (S, 1, 1)
    length2 = dx * dx + dy * dy
    t = ((xs - ax) * dx + (ys - ay) * dy) / length2.clamp(min=1e-12)  # projection on the line
    t = torch.where(length2 > 0, t.clamp(0, 1), torch.zeros_like(t))  # (S, H, W) on the segment
    ex, ey = xs - (ax + t * dx), ys - (ay + t * dy)
    return ex * ex + ey * ey <= max_dist * max_dist


def _skeleton_edges(skeleton: object) -> Tensor:
    """Tensor[E, 2] int64 from a list of (k1, k2) pairs of ints (or an integer Tensor[E, 2])."""
    expected = "a list of 0-based (k1, k2) pairs of ints"
    try:
        edges = torch.as_tensor(skeleton if isinstance(skeleton, Tensor) else list(skeleton))
    except (TypeError, ValueError, RuntimeError) as err:
        raise TypeError(f"skeleton must be {expected}, got {skeleton!r:.80}") from err
    if edges.numel() == 0:
        return edges.new_zeros(0, 2, dtype=torch.long)
    if edges.is_floating_point() or edges.is_complex() or edges.dtype == torch.bool:
        raise TypeError(f"skeleton must be {expected}, got {describe(edges)}")
    if edges.dim() != 2 or edges.shape[1] != 2:
        raise ValueError(f"skeleton must be {expected}, got {describe(edges)}")
    return edges.long()


def draw_keypoints(
    image: Tensor,
    keypoints: Tensor,
    skeleton: Sequence[tuple[int, int]] = COCO_SKELETON_0BASED,
    radius: float = 1,
    colors: Tensor | None = None,
    width: float = 1,
) -> Tensor:
    """Draw each person's skeleton lines, then its joints as dots.

    image Tensor[3, H, W], keypoints Tensor[P, K, 3] of (x, y, visibility), skeleton a
    list of 0-based (k1, k2) pairs (default ``COCO_SKELETON_0BASED``), colors Tensor[P, 3].
    A joint is drawn when v > 0; a limb when both its ends are. Line: pixel centres within
    ``width / 2`` of the segment, in the person's colour. Dot: pixel centres within
    ``radius + 0.5`` of the joint (radius 0 = one pixel), in the colour brightened halfway
    to white. Tested against a per-pixel loop and hand-drawn cases.
    """
    image = _check_image(image)
    require_tensor(keypoints, "keypoints", "a Tensor[P, K, 3] (x, y, visibility)")
    if keypoints.dim() != 3 or keypoints.shape[2] != 3:
        raise ValueError(
            f"keypoints must be Tensor[P, K, 3] (x, y, visibility), got {describe(keypoints)}"
        )
    if keypoints.is_complex() or keypoints.dtype == torch.bool:
        raise TypeError(f"keypoints must hold real numbers (float or integer), "
                        f"got {describe(keypoints)}")
    P, K = keypoints.shape[:2]
    edges = _skeleton_edges(skeleton).to(image.device)  # (E, 2)
    if edges.numel() and (int(edges.min()) < 0 or int(edges.max()) >= K):
        raise ValueError(
            f"skeleton must hold 0-based pairs of keypoint indices in [0, {K}), "
            f"got {list(skeleton)}"
        )
    radius, width = _check_real(radius, "radius"), _check_real(width, "width")
    if radius < 0 or width <= 0:
        raise ValueError(f"radius must be >= 0 and width > 0, got radius={radius}, width={width}")
    colors = _parse_colors(colors, P, image)  # (P, 3)
    H, W = image.shape[1:]
    # coordinates in at least float32, even for a float16 / bfloat16 image
    coords = torch.promote_types(image.dtype, torch.float32)
    kp = keypoints.to(device=image.device, dtype=coords)
    xy, visible = kp[..., :2], kp[..., 2] > 0  # (P, K, 2), (P, K)

    a, b = xy[:, edges[:, 0]], xy[:, edges[:, 1]]  # (P, E, 2)
    on = visible[:, edges[:, 0]] & visible[:, edges[:, 1]]  # (P, E)
    person = torch.arange(P, device=image.device)[:, None].expand_as(on)  # (P, E)
    lines = _segments_top(a[on], b[on], H, W, width / 2)  # (H, W), chunked over the S lines
    out = _blend(image, lines, colors[person[on]])

    dots = _segments_top(xy[visible], xy[visible], H, W, radius + 0.5)  # (H, W), J joints
    person = torch.arange(P, device=image.device)[:, None].expand_as(visible)  # (P, K)
    return _blend(out, dots, 0.5 * (colors[person[visible]] + 1))


def _vary(colour: Tensor, rank: Tensor) -> Tensor:
    """The ``rank[i]``-th variant of ``colour[i]``: colour (N, 3) float, rank (N,) int -> (N, 3).

    With ``(dh, m, s) = INSTANCE_VARIANTS[rank mod 12]`` and ``(h, S, V)`` the colour in HSV:
    ``c = hsv_to_rgb(h + dh mod 1, min(1, m S), V)``, then ``c + s (1 - c)`` if s > 0 (towards
    white), ``c (1 + s)`` if s <= 0 (towards black). Rank 0 is the colour itself.
    """
    work = colour.float() if colour.dtype in (torch.float16, torch.bfloat16) else colour
    table = torch.tensor(INSTANCE_VARIANTS, dtype=work.dtype, device=work.device)  # (12, 3)
    rank = rank.to(work.device).long()
    dh, m, s = table[rank % len(INSTANCE_VARIANTS)].unbind(-1)  # (N,) each
    h, sat, val = rgb_to_hsv(work).unbind(-1)
    c = hsv_to_rgb(torch.stack([torch.remainder(h + dh, 1.0), (m * sat).clamp(max=1.0), val], -1))
    s = s[:, None]
    out = torch.where(s > 0, c + s * (1 - c), c * (1 + s))  # (N, 3)
    return torch.where((rank == 0)[:, None], work, out).to(colour.dtype)


def _check_category_colors(category_colors: object) -> Tensor:
    require_tensor(category_colors, "category_colors", "a float Tensor[K, 3] in [0, 1]")
    if category_colors.dim() != 2 or category_colors.shape[1] != 3:
        raise ValueError(f"category_colors must be Tensor[K, 3], got {describe(category_colors)}")
    if not category_colors.is_floating_point():
        raise TypeError(f"category_colors must be a float Tensor[K, 3] in [0, 1] "
                        f"({FLOAT_DTYPES}), got {describe(category_colors)}")
    return category_colors


def instance_colors(labels: Tensor, category_colors: Tensor = CATEGORY_COLORS) -> Tensor:
    """One colour per instance, in its category's hue: labels Tensor[N] -> colours Tensor[N, 3].

    The k-th instance of a category (k = 0, 1, ... in the order of ``labels``) gets the k-th
    variant of its category colour c, exactly as ``panoptic_colors`` colours the k-th thing
    segment: with ``(dh, m, s) = INSTANCE_VARIANTS[k mod 12]``, c's hue turned by dh, its
    saturation times m (at most 1), then ``c + s (1 - c)`` if s > 0 (towards white) or
    ``c (1 + s)`` otherwise (towards black); k = 0 is c itself. Masks and boxes drawn with
    these colours (``overlay_masks``, ``draw_boxes``) show the class by hue and tell up to
    12 instances of one class apart (0.2 apart in RGB or more for the ShapesWorld things).
    Tested against ``panoptic_colors`` in tests/viz/test_instance_colors.py.

    Args:
        labels: integer Tensor[N] of category ids in ``[0, len(category_colors))``.
        category_colors: Tensor[K, 3] in [0, 1] (default ``CATEGORY_COLORS``).

    Returns:
        float Tensor[N, 3] in ``category_colors``' dtype, on ``labels``' device.
    """
    expected = "an integer Tensor[N] of category ids"
    require_tensor(labels, "labels", expected)
    if labels.dim() != 1:
        raise ValueError(f"labels must be {expected}, got {describe(labels)}")
    _check_integer(labels, "labels", expected)
    _check_category_colors(category_colors)
    K = category_colors.shape[0]
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= K):
        bad = labels[(labels < 0) | (labels >= K)][0].item()
        raise ValueError(f"labels must be category ids in [0, {K}) (rows of category_colors), "
                         f"got {bad}")
    labels = labels.long()
    same = labels[:, None] == labels[None, :]  # (N, N)
    rank = torch.tril(same, diagonal=-1).sum(1)  # (N,) earlier instances of the same category
    colour = category_colors[labels.to(category_colors.device)]  # (N, 3)
    return _vary(colour, rank).to(labels.device)


def segment_boundaries(segment_ids: Tensor) -> Tensor:
    """A 1-pixel line between segments that never erases a thin part: Tensor[H, W] -> bool.

    For each pair of 4-neighbours ``p`` (left or above) and ``q`` (right or below) with
    different ids, one of the two pixels is marked: the one whose segment has more pixels
    (``q`` on a tie), unless it is *thin* along that axis (its two neighbours along it both
    belong to other segments, or lie outside the image), then the other one, unless it is
    thin too, then neither. A segment all of whose pixels got marked is unmarked. So the
    line runs on the side of the larger segment (usually the stuff), a 1-pixel-wide limb
    keeps its pixels (a straight one may lose its end pixels, a diagonal one none) and
    every segment keeps at least one pixel. (Marking every pixel that differs from its
    left or upper neighbour instead erases every 1-pixel-wide vertical limb.)
    """
    require_tensor(segment_ids, "segment_ids", "an integer Tensor[H, W]")
    if segment_ids.dim() != 2:
        raise ValueError(f"segment_ids must be an integer Tensor[H, W], "
                         f"got {describe(segment_ids)}")
    _check_integer(segment_ids, "segment_ids", "an integer Tensor[H, W]")
    ids = segment_ids
    marks = torch.zeros(ids.shape, dtype=torch.bool, device=ids.device)  # (H, W)
    if ids.numel() == 0:
        return marks
    _, inverse = torch.unique(ids, return_inverse=True)  # (H, W) segment index per pixel
    area = torch.bincount(inverse.flatten())[inverse]  # (H, W) pixels of each pixel's segment
    for axis in (1, 0):  # left | right pairs, then above | below pairs
        n = ids.shape[axis]
        if n < 2:
            continue
        differ = ids.narrow(axis, 1, n - 1) != ids.narrow(axis, 0, n - 1)  # (pairs)
        same_before = torch.zeros_like(marks)
        same_after = torch.zeros_like(marks)
        same_before.narrow(axis, 1, n - 1).copy_(~differ)
        same_after.narrow(axis, 0, n - 1).copy_(~differ)
        thin = ~same_before & ~same_after  # (H, W) both neighbours along the axis differ
        p_ok, q_ok = ~thin.narrow(axis, 0, n - 1), ~thin.narrow(axis, 1, n - 1)
        prefer_q = area.narrow(axis, 1, n - 1) >= area.narrow(axis, 0, n - 1)
        mark_q = differ & q_ok & (prefer_q | ~p_ok)
        mark_p = differ & p_ok & (~prefer_q | ~q_ok)
        marks.narrow(axis, 1, n - 1).logical_or_(mark_q)
        marks.narrow(axis, 0, n - 1).logical_or_(mark_p)
    kept = torch.bincount(inverse[~marks], minlength=int(inverse.max()) + 1)  # (S,)
    return marks & (kept[inverse] > 0)


def panoptic_colors(
    segment_ids: Tensor,
    category_of_segment: dict[int, int] | None = None,
    thing_categories: Collection[int] = (4, 5, 6, 7),
    category_colors: Tensor = CATEGORY_COLORS,
    *,
    border_color: Tensor | Sequence[float] | None = None,
) -> Tensor:
    """Colour a panoptic map Tensor[H, W] of segment ids -> Tensor[3, H, W].

    With ``category_of_segment`` ({segment id: category id}): a stuff segment gets its
    category colour c; the k-th thing segment of a category (k = 0, 1, ... by segment id
    among the dict's keys) gets the k-th variant of c, as ``instance_colors`` (hue turned,
    saturation scaled, shaded towards white or black by ``INSTANCE_VARIANTS[k mod 12]``;
    k = 0 is c). Segments not in the dict (void) are black. Without it: segment id s gets
    ``palette(max id + 1)[s]`` and id 0 (void) and negative ids (e.g. -1, "ignore") are
    black. ``border_color`` (an (r, g, b)):
    draw ``segment_boundaries`` in that colour (none by default); thin limbs stay visible.
    """
    require_tensor(segment_ids, "segment_ids", "an integer Tensor[H, W]")
    if segment_ids.dim() != 2:
        raise ValueError(f"segment_ids must be an integer Tensor[H, W], "
                         f"got {describe(segment_ids)}")
    _check_integer(segment_ids, "segment_ids", "an integer Tensor[H, W]")
    _check_category_colors(category_colors)
    border = None
    if border_color is not None:
        expected = "one colour, an (r, g, b) in [0, 1] or a float Tensor[3]"
        if isinstance(border_color, Tensor) and border_color.shape != (3,):
            raise ValueError(f"border_color must be {expected}, got {describe(border_color)}")
        if not isinstance(border_color, Tensor) and (
                not isinstance(border_color, Sequence) or len(border_color) != 3):
            raise TypeError(f"border_color must be {expected}, got {border_color!r:.80}")
        border = _parse_colors(border_color, 1, torch.empty(0, device=segment_ids.device),
                               name="border_color")[0]  # (3,)
    rgb = _panoptic_rgb(segment_ids, category_of_segment, thing_categories, category_colors)
    if border is None:
        return rgb
    edge = segment_boundaries(segment_ids)  # (H, W)
    return torch.where(edge, border.to(rgb.dtype)[:, None, None], rgb)


def _panoptic_rgb(
    segment_ids: Tensor,
    category_of_segment: dict[int, int] | None,
    thing_categories: Collection[int],
    category_colors: Tensor,
) -> Tensor:
    """``panoptic_colors`` without the borders: Tensor[3, H, W]."""
    ids, inverse = torch.unique(segment_ids, return_inverse=True)  # (S,), (H, W)
    if category_of_segment is None:
        table = palette(int(ids.max()) + 1 if ids.numel() else 1, device=segment_ids.device)
        table[0] = 0.0
        table = table[ids.clamp(min=0).long()] * (ids >= 0)[:, None]  # (S, 3); uint8 ids too
        return table[inverse].permute(2, 0, 1).contiguous()
    if not isinstance(category_of_segment, dict):
        raise TypeError(
            f"category_of_segment must be a dict {{segment id: category id}}, "
            f"got {describe(category_of_segment)}"
        )
    rank: dict[int, int] = {}  # segment id -> its index among things of its category
    seen: dict[int, int] = {}
    for seg in sorted(category_of_segment):
        cat = category_of_segment[seg]
        if isinstance(cat, bool) or not isinstance(cat, int):
            raise TypeError(f"category_of_segment[{seg}] must be an int category id, got {cat!r}")
        if not 0 <= cat < len(category_colors):
            raise ValueError(
                f"category_of_segment[{seg}] must be a category id in "
                f"[0, {len(category_colors)}), got {cat}"
            )
        rank[seg], seen[cat] = seen.get(cat, 0), seen.get(cat, 0) + 1
    cats, ranks, known = [], [], []
    for seg in ids.tolist():
        cat = category_of_segment.get(seg)
        known.append(cat is not None)
        cats.append(0 if cat is None else cat)
        ranks.append(rank[seg] if cat is not None and cat in thing_categories else 0)
    colour = category_colors.float().cpu()[torch.tensor(cats, dtype=torch.long)]  # (S, 3)
    table = _vary(colour, torch.tensor(ranks, dtype=torch.long))
    table = table * torch.tensor(known)[:, None]  # void: black
    return table.to(segment_ids.device)[inverse].permute(2, 0, 1).contiguous()  # (3, H, W)


def parts_colors(parts: Tensor, num_parts: int) -> Tensor:
    """Colour a body-part map Tensor[H, W] (0 = background, 1..num_parts) -> Tensor[3, H, W].

    Background is black; part p gets ``palette(num_parts, seed=3)[p - 1]``. Other values
    raise ``ValueError``.
    """
    require_tensor(parts, "parts", "an integer Tensor[H, W] of part ids")
    if parts.dim() != 2:
        raise ValueError(f"parts must be Tensor[H, W] of part ids, got {describe(parts)}")
    _check_integer(parts, "parts", "an integer tensor")
    num_parts = positive_int(num_parts, "num_parts")
    bad = (parts < 0) | (parts > num_parts)
    if bool(bad.any()):
        raise ValueError(f"parts must lie in [0, {num_parts}] (0 = background), "
                         f"got {int(parts[bad][0])}")
    table = torch.cat([torch.zeros(1, 3), palette(num_parts, seed=3)])  # (num_parts + 1, 3)
    return label_colors(parts, num_parts + 1, ignore_index=0, colors=table)  # 0: black


def uv_colors(uv: Tensor, parts: Tensor, background: Tensor | None = None) -> Tensor:
    """Show a DensePose chart: Tensor[2, H, W] (U, V) in [0, 1] -> Tensor[3, H, W].

    On person pixels (parts > 0): ``(R, G, B) = (U, V, 0)``; elsewhere ``background``
    (Tensor[3, H, W], default black).
    """
    require_tensor(uv, "uv", "a float Tensor[2, H, W]")
    if uv.dim() != 3 or uv.shape[0] != 2:
        raise ValueError(f"uv must be a float Tensor[2, H, W], got {describe(uv)}")
    if not uv.is_floating_point():
        raise TypeError(f"uv must be a float Tensor[2, H, W] ({FLOAT_DTYPES}), got {describe(uv)}")
    expected = f"Tensor[{uv.shape[1]}, {uv.shape[2]}] like uv"
    require_tensor(parts, "parts", f"an integer {expected}")
    if parts.shape != uv.shape[1:]:
        raise ValueError(f"parts must be {expected}, got {describe(parts)}")
    _check_integer(parts, "parts", f"an integer {expected}")
    if background is None:
        background = uv.new_zeros(3, *uv.shape[1:])
    elif _check_image(background, "background").shape[1:] != uv.shape[1:]:
        raise ValueError(
            f"background must be Tensor[3, {uv.shape[1]}, {uv.shape[2]}], "
            f"got {describe(background)}"
        )
    chart = torch.cat([uv, torch.zeros_like(uv[:1])])  # (3, H, W)
    return torch.where(parts.to(uv.device) > 0, chart, background.to(uv))
