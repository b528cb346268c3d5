"""Tests for coursekit/viz/overlay.py: masks, boxes, keypoints, panoptic / parts / UV colours."""

import math
from collections import Counter

import pytest
import torch
from torch.testing import assert_close
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

import coursekit.pose.coco_keypoints as coco_keypoints
import coursekit.viz.overlay as overlay_module
from coursekit.viz import (
    CATEGORY_COLORS,
    COCO_SKELETON_0BASED,
    draw_boxes,
    draw_keypoints,
    overlay_masks,
    palette,
    panoptic_colors,
    parts_colors,
    uv_colors,
)
from coursekit.viz.overlay import instance_colors, segment_boundaries

RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)
IMAGE = torch.rand(3, 4, 4)
MASK = torch.zeros(1, 4, 4, dtype=torch.bool)


# ---------------------------------------------------------------- overlay_masks


def test_overlay_masks_hand_computed():
    # (3, 1, 2): two pixels, (0.2, 0.6, 1.0) and (0.4, 0.8, 0.0)
    image = torch.tensor([[[0.2, 0.4]], [[0.6, 0.8]], [[1.0, 0.0]]], dtype=torch.float64)
    # both on pixel 0, mask 1 on pixel 1
    masks = torch.tensor([[[True, False]], [[True, True]]])
    out = overlay_masks(image, masks, colors=torch.tensor([RED, BLUE]), alpha=0.25)
    # the last mask wins: both pixels blend with blue, out = 0.75 img + 0.25 colour
    expected = torch.tensor([[[0.15, 0.30]], [[0.45, 0.60]], [[1.0, 0.25]]],
                            dtype=torch.float64)
    assert_close(out, expected)
    only_first = overlay_masks(image, masks[:1], colors=[RED], alpha=0.25)
    expected = torch.tensor([[[0.4, 0.4]], [[0.45, 0.8]], [[0.75, 0.0]]], dtype=torch.float64)
    assert_close(only_first, expected)


@pytest.mark.parametrize(
    "shape,alpha", [((3, 5, 7), 0.5), ((4, 16, 9), 0.8), ((1, 2, 3), 0.0), ((2, 6, 6), 1.0)]
)
def test_overlay_masks_matches_torchvision_without_overlap(shape, alpha):
    n, h, w = shape
    image = torch.rand(3, h, w, dtype=torch.float64)
    owner = torch.randint(0, n + 1, (h, w))  # n = no mask: masks do not overlap
    masks = torch.stack([owner == k for k in range(n)])
    colours = [tuple(int(v) for v in torch.randint(0, 256, (3,))) for _ in range(n)]
    expected = draw_segmentation_masks(image, masks, alpha=alpha, colors=colours)
    out = overlay_masks(
        image, masks, colors=torch.tensor(colours, dtype=torch.float64) / 255, alpha=alpha
    )
    assert_close(out, expected)


def test_overlay_masks_gradcheck():
    image = torch.rand(3, 4, 5, dtype=torch.float64, requires_grad=True)
    masks = torch.rand(3, 4, 5) < 0.4
    colors = torch.rand(3, 3, dtype=torch.float64)
    assert torch.autograd.gradcheck(
        lambda img: overlay_masks(img, masks, colors, alpha=0.3), (image,)
    )


def test_overlay_masks_default_colours_and_device(device):
    # reference: torchvision's draw_segmentation_masks on the same device (masks apart)
    image = torch.rand(3, 6, 5, device=device)
    owner = torch.randint(0, 3, (6, 5), device=device)
    masks = torch.stack([owner == k for k in range(2)])  # 2 = no mask
    colours = [(255, 0, 0), (30, 144, 255)]  # torchvision takes 8-bit colours
    out = overlay_masks(image, masks, torch.tensor(colours, device=device) / 255)
    assert out.device.type == device.type
    assert_close(out, draw_segmentation_masks(image, masks, alpha=0.5, colors=colours))
    assert torch.equal(overlay_masks(image, masks[:0]), image)  # no masks: unchanged
    # the default colours are palette(N)
    assert_close(overlay_masks(image, masks), overlay_masks(image, masks, palette(2)))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_overlay_masks_reduced_precision_blends_in_float32(dtype):
    image = torch.rand(3, 6, 7, dtype=torch.float64).to(dtype)
    masks = torch.rand(2, 6, 7) < 0.5
    colors = torch.rand(2, 3, dtype=torch.float64)
    out = overlay_masks(image, masks, colors, alpha=0.3)
    assert out.dtype == dtype
    exact = overlay_masks(image.double(), masks, colors.to(dtype).double(), alpha=0.3)
    assert_close(out.double(), exact.to(dtype).double(), rtol=0, atol=0)  # one rounding


@pytest.mark.parametrize("fn, args, kwargs, error, match", [
    (overlay_masks, (IMAGE, torch.zeros(2, 4, 5, dtype=torch.bool)), {}, ValueError,
     r"masks must be Tensor\[N, 4, 4\] \(image size\), got Tensor\[2, 4, 5\] bool"),
    (overlay_masks, (IMAGE, torch.zeros(4, 4, dtype=torch.bool)), {}, ValueError,
     r"masks must be Tensor\[N, 4, 4\].*Tensor\[4, 4\]"),
    (overlay_masks, (IMAGE, torch.zeros(1, 4, 4)), {}, TypeError,
     r"masks must be a bool tensor \(threshold soft masks first, e.g. probs > 0.5\), "
     r"got Tensor\[1, 4, 4\] float32"),
    (overlay_masks, (IMAGE, [[True]]), {}, TypeError, "masks must be a bool Tensor.*got list"),
    (overlay_masks, (IMAGE, MASK), {"alpha": 1.5}, ValueError,
     r"alpha must lie in \[0, 1\], got 1.5"),
    (overlay_masks, (IMAGE, MASK), {"alpha": None}, TypeError,
     "alpha must be a real number, got None"),
    (overlay_masks, (IMAGE[None], MASK), {}, ValueError,
     r"image must be Tensor\[3, H, W\], got Tensor\[1, 3, 4, 4\] float32"),
    (overlay_masks, (IMAGE.tolist(), MASK), {}, TypeError,
     r"image must be a float Tensor\[3, H, W\], got list"),
    (overlay_masks, (torch.zeros(3, 4, 4, dtype=torch.uint8), MASK), {}, TypeError,
     r"image must be a float tensor \(float16, bfloat16, float32 or float64\) with values in "
     r"\[0, 1\], got Tensor\[3, 4, 4\] uint8"),
    (overlay_masks, (IMAGE, MASK.expand(2, 4, 4)), {"colors": torch.rand(1, 3)}, ValueError,
     r"colors must be Tensor\[2, 3\]"),
])
def test_overlay_masks_bad_inputs(fn, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(*args, **kwargs)


# ---------------------------------------------------------------- draw_boxes


def test_draw_boxes_hand_computed():
    image = torch.zeros(3, 5, 6)
    out = draw_boxes(image, torch.tensor([[1.0, 1.0, 4.0, 3.0]]), colors=[RED])
    expected_red = torch.tensor(
        [
            [0, 0, 0, 0, 0, 0],
            [0, 1, 1, 1, 1, 0],
            [0, 1, 0, 0, 1, 0],
            [0, 1, 1, 1, 1, 0],
            [0, 0, 0, 0, 0, 0],
        ],
        dtype=torch.float32,
    )
    assert_close(out[0], expected_red)
    assert out[1:].abs().sum() == 0
    # partly outside (clipped), fractional corners floor to pixels, width 2 grows inwards
    out = draw_boxes(image, torch.tensor([[-3.0, -2.5, 3.7, 2.2]]), colors=[GREEN], width=2)
    expected_green = torch.tensor(
        [
            [0, 0, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [1, 1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0, 0],
            [0, 0, 0, 0, 0, 0],
        ],
        dtype=torch.float32,
    )  # box columns -3..3, rows -3..2; its inside shrunk by 2 is columns -1..1, rows -1..0
    assert_close(out[1], expected_green)
    # entirely outside: nothing drawn; overlapping boxes: the later one is on top
    assert torch.equal(draw_boxes(image, torch.tensor([[7.0, 0.0, 9.0, 2.0]])), image)
    out = draw_boxes(
        image, torch.tensor([[0.0, 0.0, 2.0, 2.0], [2.0, 0.0, 4.0, 2.0]]), colors=[RED, BLUE]
    )
    assert_close(out[:, 1, 2], torch.tensor(BLUE))
    assert_close(out[:, 1, 0], torch.tensor(RED))


@pytest.mark.parametrize("size,width",
                         [((12, 9), 1), ((20, 31), 2), ((25, 16), 3), ((7, 7), 1)])
def test_draw_boxes_matches_torchvision(size, width):
    # torchvision (PIL) truncates corners to ints and draws `width` lines inwards; PIL draws
    # outside the box when a side is shorter than 2 * width, so the boxes here are not.
    h, w = size
    n = 4
    x0, y0 = torch.randint(0, w, (n,)), torch.randint(0, h, (n,))
    x1 = x0 + 2 * width + torch.randint(0, w, (n,))
    y1 = y0 + 2 * width + torch.randint(0, h, (n,))
    boxes = torch.stack([x0, y0, x1, y1], 1).double()
    boxes = boxes + 0.99 * torch.rand(n, 4, dtype=torch.float64)
    # values that survive uint8
    image = torch.rand(3, h, w, dtype=torch.float64).mul(255).round().div(255)
    colours = [tuple(int(v) for v in torch.randint(0, 256, (3,))) for _ in range(n)]
    expected = draw_bounding_boxes(image, boxes, colors=colours, width=width)
    out = draw_boxes(
        image, boxes, colors=torch.tensor(colours, dtype=torch.float64) / 255, width=width
    )
    assert_close(out, expected)


def test_draw_boxes_device(device):
    # reference: torchvision's draw_bounding_boxes (PIL, on the CPU)
    image = torch.rand(3, 10, 12, dtype=torch.float64).mul(255).round().div(255)
    boxes = torch.tensor([[1.0, 2.0, 8.0, 7.0], [0.0, 3.0, 11.0, 9.0]], dtype=torch.float64)
    out = draw_boxes(image.to(device), boxes.to(device), width=2)
    assert out.device.type == device.type
    colours = [tuple(round(255 * v) for v in c) for c in palette(2).tolist()]
    expected = draw_bounding_boxes(image, boxes, colors=colours, width=2)
    assert_close(out.cpu(), expected, atol=1 / 255, rtol=0)  # torchvision's colours are 8-bit


def test_many_boxes_and_joints_are_drawn_a_chunk_at_a_time(monkeypatch):
    # memory bounded by CHUNK_ELEMENTS masks-pixels, not boxes x pixels; the result is the same
    image = torch.rand(3, 9, 11, dtype=torch.float64)
    xy = torch.rand(40, 2, dtype=torch.float64) * 10
    boxes = torch.cat([xy, xy + torch.rand(40, 2, dtype=torch.float64) * 6], 1)
    kps = torch.cat([torch.rand(3, 17, 2, dtype=torch.float64) * 10,
                     torch.full((3, 17, 1), 2.0, dtype=torch.float64)], -1)
    whole = draw_boxes(image, boxes, width=2), draw_keypoints(image, kps)
    sizes = []
    real_top = overlay_module._top

    def recording_top(masks_of, n, H, W, device):
        def recorded(lo, hi):
            masks = masks_of(lo, hi)
            sizes.append(masks.numel())
            return masks
        return real_top(recorded, n, H, W, device)

    monkeypatch.setattr(overlay_module, "CHUNK_ELEMENTS", 3 * 9 * 11)  # 3 masks at a time
    monkeypatch.setattr(overlay_module, "_top", recording_top)
    chunked = draw_boxes(image, boxes, width=2), draw_keypoints(image, kps)
    assert max(sizes) <= 3 * 9 * 11 and len(sizes) > 14  # 40 boxes in 14 chunks, then joints
    assert_close(chunked[0], whole[0], rtol=0, atol=0)
    assert_close(chunked[1], whole[1], rtol=0, atol=0)


BOXES = torch.zeros(1, 4)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((IMAGE, torch.zeros(2, 5)), {}, ValueError,
     r"boxes must be Tensor\[N, 4\] \(x1, y1, x2, y2\), got Tensor\[2, 5\]"),
    ((IMAGE, [[0, 0, 1, 1]]), {}, TypeError, r"boxes must be a Tensor\[N, 4\].*got list"),
    ((IMAGE, torch.zeros(1, 4, dtype=torch.bool)), {}, TypeError,
     "boxes must hold real numbers, got Tensor"),
    ((IMAGE, torch.tensor([[3.0, 0.0, 1.0, 2.0]])), {}, ValueError, "x0 <= x1 and y0 <= y1"),
    ((IMAGE, BOXES), {"width": 0}, ValueError, "width must be positive, got 0"),
    ((IMAGE, BOXES), {"width": 1.5}, TypeError, "width must be an int, got 1.5"),
    ((torch.zeros(3, 4, 4, dtype=torch.uint8), BOXES), {}, TypeError,
     "image must be a float tensor"),
])
def test_draw_boxes_bad_inputs(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        draw_boxes(*args, **kwargs)


# ---------------------------------------------------------------- draw_keypoints


def test_coco_skeleton_is_the_standard_one():
    coco_1based = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7],
                   [6, 8], [7, 9], [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5],
                   [4, 6], [5, 7]]  # fmt: skip
    assert [list(e) for e in COCO_SKELETON_0BASED] == [[a - 1, b - 1] for a, b in coco_1based]
    # one copy of the COCO schema for the course: the pose package's own object
    assert COCO_SKELETON_0BASED is coco_keypoints.COCO_SKELETON_0BASED
    assert overlay_module.COCO_SKELETON_0BASED is coco_keypoints.COCO_SKELETON_0BASED


def test_draw_keypoints_hand_computed():
    image = torch.zeros(3, 7, 7)
    kps = torch.tensor([[[1.0, 1.0, 2.0], [5.0, 1.0, 2.0], [5.0, 5.0, 1.0]]])  # (1, 3, 3)
    out = draw_keypoints(image, kps, skeleton=[(0, 1), (1, 2)], radius=0, colors=[RED])
    # lines: row 1 columns 1..5 and column 5 rows 1..5 in red (1, 0, 0);
    # dots: the three joints in red brightened halfway to white (1, 0.5, 0.5)
    expected_r = torch.zeros(7, 7)
    expected_r[1, 1:6] = 1
    expected_r[1:6, 5] = 1
    expected_g = torch.zeros(7, 7)
    expected_g[1, 1] = expected_g[1, 5] = expected_g[5, 5] = 0.5
    assert_close(out[0], expected_r)
    assert_close(out[1], expected_g)
    assert_close(out[2], expected_g)
    # joint 2 invisible: no dot there and no limb to it; radius 1 dots are 3 x 3
    kps[0, 2, 2] = 0
    out = draw_keypoints(image, kps, skeleton=[(0, 1), (1, 2)], radius=1, colors=[RED])
    expected_g = torch.zeros(7, 7)
    expected_g[0:3, 0:3] = 0.5
    expected_g[0:3, 4:7] = 0.5
    assert_close(out[1], expected_g)
    expected_r = torch.zeros(7, 7)
    expected_r[0:3, 0:7] = 1
    expected_r[0, 3] = expected_r[2, 3] = 0  # between the dots only the 1-pixel line
    assert_close(out[0], expected_r)


def _keypoints_per_pixel(image, keypoints, skeleton, radius, colors, width):
    """The obvious slow way: visit every pixel, every limb, every joint."""
    out = image.clone()
    h, w = image.shape[1:]

    def dist_to_segment(px, py, a, b):
        ab = (b[0] - a[0], b[1] - a[1])
        l2 = ab[0] ** 2 + ab[1] ** 2
        along = ((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / l2 if l2 else 0.0
        t = min(max(along, 0.0), 1.0)
        return math.hypot(px - a[0] - t * ab[0], py - a[1] - t * ab[1])

    kp = keypoints.tolist()
    for layer in ("lines", "dots"):
        for p, person in enumerate(kp):
            shapes = (
                [(person[i], person[j]) for i, j in skeleton]
                if layer == "lines"
                else [(q, q) for q in person]
            )
            colour = colors[p] if layer == "lines" else 0.5 * (colors[p] + 1)
            reach = width / 2 if layer == "lines" else radius + 0.5
            for a, b in shapes:
                if a[2] <= 0 or b[2] <= 0:
                    continue
                for y in range(h):
                    for x in range(w):
                        if dist_to_segment(x, y, a, b) <= reach + 1e-9:
                            out[:, y, x] = colour
    return out


@pytest.mark.parametrize(
    "size,radius,width", [((20, 24), 1, 1), ((16, 16), 2, 2.5), ((12, 18), 0, 1.5)]
)
def test_draw_keypoints_matches_per_pixel_loop(size, radius, width):
    h, w = size
    p = 2
    scale = torch.tensor([w, h, 1.0], dtype=torch.float64)
    kps = torch.rand(p, 17, 3, dtype=torch.float64) * scale
    # quarter pixels: no ties lost to rounding
    kps[..., :2] = kps[..., :2].mul(4).round().div(4)
    kps[..., 2] = torch.randint(0, 3, (p, 17)).double()
    image = torch.rand(3, h, w, dtype=torch.float64)
    colors = torch.rand(p, 3, dtype=torch.float64)
    out = draw_keypoints(image, kps, radius=radius, colors=colors, width=width)
    expected = _keypoints_per_pixel(image, kps, COCO_SKELETON_0BASED, radius, colors, width)
    assert_close(out, expected)


def test_draw_keypoints_device(device):
    # reference: the per-pixel loop, in float64 on the CPU
    image = torch.rand(3, 16, 16, dtype=torch.float64)
    kps = torch.cat([(torch.rand(1, 17, 2, dtype=torch.float64) * 64).round() / 4,
                     torch.full((1, 17, 1), 2.0, dtype=torch.float64)], dim=-1)
    out = draw_keypoints(image.float().to(device), kps.float().to(device))
    assert out.device.type == device.type and out.dtype == torch.float32
    expected = _keypoints_per_pixel(image, kps, COCO_SKELETON_0BASED, 1, palette(1).double(), 1)
    assert_close(out.cpu().double(), expected, rtol=0, atol=1e-6)


KEYPOINTS = torch.zeros(1, 17, 3)


@pytest.mark.parametrize("args, kwargs, error, match", [
    ((torch.zeros(1, 17, 2),), {}, ValueError,
     r"keypoints must be Tensor\[P, K, 3\] \(x, y, visibility\), got Tensor\[1, 17, 2\]"),
    ((torch.zeros(17, 3),), {}, ValueError,
     r"keypoints must be Tensor\[P, K, 3\].*Tensor\[17, 3\]"),
    ((KEYPOINTS.tolist(),), {}, TypeError, r"keypoints must be a Tensor\[P, K, 3\].*got list"),
    ((KEYPOINTS.bool(),), {}, TypeError, "keypoints must hold real numbers"),
    ((torch.zeros(1, 5, 3),), {}, ValueError,  # the COCO skeleton needs 17 joints
     r"skeleton must hold 0-based pairs of keypoint indices in \[0, 5\)"),
    ((KEYPOINTS,), {"skeleton": [(0.0, 1.0)]}, TypeError,
     r"skeleton must be a list of 0-based \(k1, k2\) pairs of ints"),
    ((KEYPOINTS,), {"skeleton": [(0, 1, 2)]}, ValueError, "skeleton must be a list of 0-based"),
    ((KEYPOINTS,), {"skeleton": [(0, 1), (2,)]}, TypeError, "skeleton must be a list"),
    ((KEYPOINTS,), {"radius": -1}, ValueError, "radius must be >= 0"),
    ((KEYPOINTS,), {"width": "1"}, TypeError, "width must be a real number, got '1'"),
])
def test_draw_keypoints_bad_inputs(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        draw_keypoints(torch.rand(3, 8, 8), *args, **kwargs)


# ---------------------------------------------------------------- panoptic, parts, uv


def test_panoptic_colors_hand_computed():
    ids = torch.tensor([[1, 1, 7], [9, 9, 0], [12, 7, 5]])
    category_of_segment = {1: 0, 5: 3, 7: 4, 9: 4, 12: 5}  # 0 is void; 7, 9 two circles
    out = panoptic_colors(ids, category_of_segment)
    sky, wall, circle, square = (
        CATEGORY_COLORS[0],
        CATEGORY_COLORS[3],
        CATEGORY_COLORS[4],
        CATEGORY_COLORS[5],
    )
    assert_close(out[:, 0, 0], sky)
    assert_close(out[:, 2, 2], wall)
    assert_close(out[:, 0, 2], circle)  # first circle: its category colour
    assert_close(out[:, 2, 1], circle)
    assert_close(out[:, 2, 0], square)  # first square
    assert_close(out[:, 1, 2], torch.zeros(3))  # void
    assert_close(out[:, 1, 0], instance_colors(torch.tensor([4, 4]))[1])  # second circle
    # By hand with an orange circle colour (1, 0.5, 0) (hue 1/12, see test_instance_colors):
    # the 2nd circle (0, 1.6, -0.6) is (0.4, 0.2, 0), the 3rd (0.06, 0.5, 0.4) is
    # (1, 0.958, 0.7); the stuff (sky) keeps its colour whatever its rank.
    colours = CATEGORY_COLORS.double().clone()
    colours[4] = torch.tensor([1.0, 0.5, 0.0], dtype=torch.float64)
    out = panoptic_colors(torch.tensor([[1, 2, 3, 4]]), {1: 4, 2: 4, 3: 4, 4: 0},
                          category_colors=colours)
    expected = torch.tensor([[1.0, 0.5, 0.0], [0.4, 0.2, 0.0], [1.0, 0.958, 0.7],
                             CATEGORY_COLORS[0].tolist()]).T  # (3, 4)
    assert_close(out[:, 0, :], expected)


def test_panoptic_colors_without_categories_and_device(device):
    ids = torch.tensor([[0, 3], [5, 3]])
    out = panoptic_colors(ids.to(device))
    assert out.device.type == device.type
    table = palette(6)
    expected = torch.stack([torch.zeros(3), table[3], table[5], table[3]], dim=1)
    assert_close(out.cpu(), expected.reshape(3, 2, 2))
    named = panoptic_colors(ids.to(device), {3: 1, 5: 6})
    assert named.device.type == device.type
    assert_close(named.cpu()[:, 0, 1], CATEGORY_COLORS[1])
    # negative ids (an "ignore" label) are black like void, as documented
    ignore = panoptic_colors(torch.tensor([[-1, 3]], device=device))
    assert_close(ignore.cpu()[:, 0, 0], torch.zeros(3))
    assert_close(ignore.cpu()[:, 0, 1], palette(4)[3])


def test_parts_and_uv_colors_hand_computed(device):
    parts = torch.tensor([[0, 1], [2, 2]], device=device)
    out = parts_colors(parts, num_parts=24)
    table = palette(24, seed=3)
    assert_close(out[:, 0, 0].cpu(), torch.zeros(3))
    assert_close(out[:, 0, 1].cpu(), table[0])
    assert_close(out[:, 1, 1].cpu(), table[1])
    uv = torch.tensor([[[0.1, 0.2], [0.3, 0.4]], [[0.5, 0.6], [0.7, 0.8]]], device=device)
    out = uv_colors(uv, parts)
    expected = torch.tensor(
        [[[0.0, 0.2], [0.3, 0.4]], [[0.0, 0.6], [0.7, 0.8]], [[0.0, 0.0], [0.0, 0.0]]]
    )
    assert_close(out.cpu(), expected)
    background = torch.full((3, 2, 2), 0.9, device=device)
    assert_close(uv_colors(uv, parts, background)[:, 0, 0].cpu(), torch.full((3,), 0.9))


def test_uint8_segment_ids_and_part_id_minus_one():
    # regression: uint8 ids indexed the palette as a byte mask (wrong colours or an error)
    ids = torch.tensor([[0, 3], [5, 3]])
    assert_close(panoptic_colors(ids.to(torch.uint8)), panoptic_colors(ids))
    # regression: part id -1 was taken for the background (ignore_index=-1), -2 raised
    with pytest.raises(ValueError, match=r"parts must lie in \[0, 2\] \(0 = background\), got -1"):
        parts_colors(torch.tensor([[0, -1]]), 2)


# ---------------------------------------------------------------- segment_boundaries


def _boundaries_loop(ids: torch.Tensor) -> torch.Tensor:
    """The rule of segment_boundaries, pixel pair by pixel pair."""
    H, W = ids.shape
    grid = ids.tolist()
    area = Counter(v for row in grid for v in row)
    marks = [[False] * W for _ in range(H)]

    def at(i, j):
        return grid[i][j] if 0 <= i < H and 0 <= j < W else None  # outside: no segment

    def thin(i, j, di, dj):
        return at(i - di, j - dj) != grid[i][j] and at(i + di, j + dj) != grid[i][j]

    for di, dj in ((0, 1), (1, 0)):
        for i in range(H - di):
            for j in range(W - dj):
                p, q = (i, j), (i + di, j + dj)
                if at(*p) == at(*q):
                    continue
                order = (q, p) if area[at(*q)] >= area[at(*p)] else (p, q)
                for x in order:
                    if not thin(*x, di, dj):
                        marks[x[0]][x[1]] = True
                        break
    for v in area:
        pixels = [(i, j) for i in range(H) for j in range(W) if grid[i][j] == v]
        if all(marks[i][j] for i, j in pixels):
            for i, j in pixels:
                marks[i][j] = False
    return torch.tensor(marks, dtype=torch.bool)


def _naive_boundaries(ids):
    """Every pixel that differs from its left or upper neighbour (what lesson 06 drew)."""
    edge = torch.zeros_like(ids, dtype=torch.bool)
    edge[:, 1:] |= ids[:, 1:] != ids[:, :-1]
    edge[1:, :] |= ids[1:, :] != ids[:-1, :]
    return edge


def test_segment_boundaries_hand_computed():
    # A 1-pixel-wide vertical limb (id 1, column 2) on stuff (id 0): the line runs on the
    # stuff on both sides of it (columns 1 and 3); the limb keeps every pixel.
    ids = torch.zeros(4, 5, dtype=torch.long)
    ids[:, 2] = 1
    expected = torch.zeros(4, 5, dtype=torch.bool)
    expected[:, 1] = expected[:, 3] = True
    assert torch.equal(segment_boundaries(ids), expected)
    assert _naive_boundaries(ids)[:, 2].all()  # the old way painted the whole limb over
    # A lone pixel is never marked: its four neighbours are (a plus).
    ids = torch.zeros(5, 5, dtype=torch.long)
    ids[2, 2] = 7
    expected = torch.zeros(5, 5, dtype=torch.bool)
    expected[2, 1] = expected[2, 3] = expected[1, 2] = expected[3, 2] = True
    assert torch.equal(segment_boundaries(ids), expected)
    # Two halves of equal area: the line goes on the right / lower one (q), one pixel wide.
    ids = torch.tensor([[1, 1, 2, 2], [1, 1, 2, 2]])
    assert torch.equal(segment_boundaries(ids), torch.tensor([[0, 0, 1, 0], [0, 0, 1, 0]]) > 0)
    # 1 x 2 bar (id 3) between lone pixels: pair (0, 1) marks column 1 (the bar is larger and
    # not thin there), pair (2, 3) marks column 2: the bar would vanish, so it keeps both.
    ids = torch.tensor([[1, 3, 3, 2]])
    assert not segment_boundaries(ids).any()
    # segment 1 three pixels long: the pair (2, 3) now marks column 2 (segment 1 is larger),
    # the pair (4, 5) column 4, and the bar keeps column 3
    ids = torch.tensor([[1, 1, 1, 3, 3, 2]])
    assert torch.equal(segment_boundaries(ids), torch.tensor([[0, 0, 1, 0, 1, 0]]) > 0)


def test_thin_limbs_stay_visible_in_panoptic_drawings():
    # A person (segment 1): a torso block, a 1-pixel-wide vertical arm and a 1-pixel-wide
    # diagonal leg, on grass (segment 1001). With borders, every limb pixel keeps the
    # person's colour except at most the end of the straight arm.
    ids = torch.full((10, 10), 1001)
    ids[1:4, 3:6] = 1
    arm = [(r, 4) for r in range(4, 9)]
    leg = [(4 + k, 6 + k) for k in range(4)]
    for r, c in arm + leg:
        ids[r, c] = 1
    cats = {1: 7, 1001: 1}
    plain = panoptic_colors(ids, cats)
    out = panoptic_colors(ids, cats, border_color=(1.0, 1.0, 1.0))
    person = CATEGORY_COLORS[7]
    kept_arm = sum(bool(torch.equal(out[:, r, c], person)) for r, c in arm)
    assert kept_arm >= len(arm) - 1
    assert all(torch.equal(out[:, r, c], person) for r, c in leg)
    assert_close(out, torch.where(segment_boundaries(ids), 1.0, plain))
    assert (out == 1.0).all(0).sum() > 10  # and the borders are drawn
    # the naive rule erases the vertical arm entirely
    naive = torch.where(_naive_boundaries(ids), 1.0, plain)
    assert not any(torch.equal(naive[:, r, c], person) for r, c in arm)
    # a darker, optional style: any colour, also as a tensor
    dark = panoptic_colors(ids, cats, border_color=torch.tensor([0.1, 0.1, 0.1]))
    assert_close(dark, torch.where(segment_boundaries(ids), 0.1, plain))


@pytest.mark.parametrize("shape", [(7, 9), (12, 5), (1, 6), (6, 1)])
def test_segment_boundaries_match_the_loop(shape):
    g = torch.Generator().manual_seed(sum(shape))
    for _ in range(6):
        ids = torch.zeros(shape, dtype=torch.long)
        for k in range(1, 6):  # random rectangles and 1-pixel lines over each other
            h, w = shape
            r0, c0 = int(torch.randint(0, h, (1,), generator=g)), int(
                torch.randint(0, w, (1,), generator=g))
            r1 = r0 + int(torch.randint(1, 4, (1,), generator=g))
            c1 = c0 + int(torch.randint(1, 4, (1,), generator=g))
            ids[r0:r1, c0:c1] = k * 10
        out = segment_boundaries(ids)
        assert torch.equal(out, _boundaries_loop(ids))
        for v in ids.unique():
            assert (~out[ids == v]).any()  # every segment keeps a pixel
        # every marked pixel touches another segment
        pad = torch.nn.functional.pad(ids, (1, 1, 1, 1), value=-1)
        h, w = shape
        touches = ((pad[1:-1, :-2] != ids) & (pad[1:-1, :-2] != -1)) | (
            (pad[1:-1, 2:] != ids) & (pad[1:-1, 2:] != -1)) | (
            (pad[:-2, 1:-1] != ids) & (pad[:-2, 1:-1] != -1)) | (
            (pad[2:, 1:-1] != ids) & (pad[2:, 1:-1] != -1))
        assert not (out & ~touches).any()


def test_segment_boundaries_device(device):
    # reference: the per-pixel loop on the CPU
    g = torch.Generator().manual_seed(3)
    ids = torch.randint(0, 4, (6, 8), generator=g) * 100
    out = segment_boundaries(ids.to(device))
    assert out.device.type == device.type and out.dtype == torch.bool
    assert torch.equal(out.cpu(), _boundaries_loop(ids))
    assert segment_boundaries(torch.zeros(0, 3, dtype=torch.long, device=device)).shape == (0, 3)


IDS = torch.zeros(2, 2, dtype=torch.long)
UV = torch.zeros(2, 2, 2)


@pytest.mark.parametrize("fn, args, error, match", [
    (panoptic_colors, (IDS.float(),), TypeError,
     r"segment_ids must be an integer Tensor\[H, W\] \(int64, .*got Tensor\[2, 2\] float32"),
    (panoptic_colors, (IDS[0],), ValueError,
     r"segment_ids must be an integer Tensor\[H, W\], got Tensor\[2\] int64"),
    (panoptic_colors, (IDS, {3: 9}), ValueError,
     r"category_of_segment\[3\] must be a category id in \[0, 8\), got 9"),
    (panoptic_colors, (IDS, {3: 1.0}), TypeError,
     r"category_of_segment\[3\] must be an int category id, got 1.0"),
    (panoptic_colors, (IDS, [(3, 1)]), TypeError, "category_of_segment must be a dict"),
    (panoptic_colors, (IDS, None, (4,), torch.ones(8, 3, dtype=torch.long)), TypeError,
     r"category_colors must be a float Tensor\[K, 3\]"),
    (parts_colors, (torch.tensor([[0, 4]]), 3), ValueError, r"parts must lie in \[0, 3\]"),
    (parts_colors, (IDS, 0), ValueError, "num_parts must be positive, got 0"),
    (uv_colors, (torch.zeros(3, 2, 2), IDS), ValueError,
     r"uv must be a float Tensor\[2, H, W\], got Tensor\[3, 2, 2\] float32"),
    (uv_colors, (UV.long(), IDS), TypeError,
     r"uv must be a float Tensor\[2, H, W\] \(float16, .*got Tensor\[2, 2, 2\] int64"),
    (uv_colors, (UV, torch.zeros(3, 2, dtype=torch.long)), ValueError,
     r"parts must be Tensor\[2, 2\] like uv, got Tensor\[3, 2\] int64"),
    (uv_colors, (UV, IDS.float()), TypeError, r"parts must be an integer Tensor\[2, 2\] like uv"),
    (uv_colors, (UV, IDS, torch.zeros(3, 3, 3)), ValueError,
     r"background must be Tensor\[3, 2, 2\], got Tensor\[3, 3, 3\] float32"),
    (segment_boundaries, (IDS.float(),), TypeError,
     r"segment_ids must be an integer Tensor\[H, W\] \(int64, .*got Tensor\[2, 2\] float32"),
    (segment_boundaries, (IDS[None],), ValueError,
     r"segment_ids must be an integer Tensor\[H, W\], got Tensor\[1, 2, 2\] int64"),
    (segment_boundaries, ([[0, 1]],), TypeError, "segment_ids must be an integer Tensor.*list"),
])
def test_panoptic_parts_uv_bad_inputs(fn, args, error, match):
    with pytest.raises(error, match=match):
        fn(*args)


@pytest.mark.parametrize("border_color, error, match", [
    ((1.0, 1.0), TypeError, r"border_color must be one colour, an \(r, g, b\) .*got \(1.0, 1.0\)"),
    ("white", TypeError, "border_color must be one colour"),
    (torch.ones(2, 3), ValueError,
     r"border_color must be one colour.*got Tensor\[2, 3\] float32"),
    (torch.ones(3, dtype=torch.long), TypeError, "border_color must be a float Tensor"),
])
def test_panoptic_border_color_bad_inputs(border_color, error, match):
    with pytest.raises(error, match=match):
        panoptic_colors(IDS, {0: 1}, border_color=border_color)
