"""Tests for coursekit/viz/overlay.py: masks, boxes, keypoints, panoptic / parts / UV colours."""

import math

import pytest
import torch
from torch.testing import assert_close
from torchvision.utils import draw_bounding_boxes, draw_segmentation_masks

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

RED, GREEN, BLUE = (1.0, 0.0, 0.0), (0.0, 1.0, 0.0), (0.0, 0.0, 1.0)


# ---------------------------------------------------------------- overlay_masks


def test_overlay_masks_hand_computed():
    # (3, 1, 2): two pixels, (0.2, 0.6, 1.0) and (0.4, 0.8, 0.0)
    image = torch.tensor([[[0.2, 0.4]], [[0.6, 0.8]], [[1.0, 0.0]]], dtype=torch.float64)
    masks = torch.tensor([[[True, False]], [[True, True]]])  # both on pixel 0, mask 1 on pixel 1
    out = overlay_masks(image, masks, colors=torch.tensor([RED, BLUE]), alpha=0.25)
    # the last mask wins: both pixels blend with blue, out = 0.75 img + 0.25 colour
    expected = torch.tensor([[[0.15, 0.30]], [[0.45, 0.60]], [[1.0, 0.25]]], dtype=torch.float64)
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
    image = torch.rand(3, 6, 5)
    masks = torch.rand(2, 6, 5) < 0.5
    out = overlay_masks(image.to(device), masks.to(device))
    assert out.device.type == device.type
    assert_close(out.cpu(), overlay_masks(image, masks, colors=palette(2)))
    assert torch.equal(overlay_masks(image, masks[:0]), image)  # no masks: unchanged


def test_overlay_masks_bad_inputs():
    image = torch.rand(3, 4, 4)
    with pytest.raises(ValueError, match=r"masks must be Tensor\[N, 4, 4\].*Tensor\[2, 4, 5\]"):
        overlay_masks(image, torch.zeros(2, 4, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"masks must be Tensor\[N, 4, 4\].*Tensor\[4, 4\]"):
        overlay_masks(image, torch.zeros(4, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match="masks must be a bool tensor"):
        overlay_masks(image, torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match=r"alpha must lie in \[0, 1\], got 1.5"):
        overlay_masks(image, torch.zeros(1, 4, 4, dtype=torch.bool), alpha=1.5)
    with pytest.raises(ValueError, match=r"image must be Tensor\[3, H, W\].*Tensor\[1, 3, 4, 4\]"):
        overlay_masks(image[None], torch.zeros(1, 4, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"colors must be Tensor\[2, 3\]"):
        overlay_masks(image, torch.zeros(2, 4, 4, dtype=torch.bool), colors=torch.rand(1, 3))


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


@pytest.mark.parametrize("size,width", [((12, 9), 1), ((20, 31), 2), ((25, 16), 3), ((7, 7), 1)])
def test_draw_boxes_matches_torchvision(size, width):
    # torchvision (PIL) truncates corners to ints and draws `width` lines inwards; PIL draws
    # outside the box when a side is shorter than 2 * width, so the boxes here are not.
    h, w = size
    n = 4
    x0, y0 = torch.randint(0, w, (n,)), torch.randint(0, h, (n,))
    x1 = x0 + 2 * width + torch.randint(0, w, (n,))
    y1 = y0 + 2 * width + torch.randint(0, h, (n,))
    boxes = torch.stack([x0, y0, x1, y1], 1).double() + 0.99 * torch.rand(n, 4, dtype=torch.float64)
    image = torch.rand(3, h, w, dtype=torch.float64).mul(255).round().div(255)  # survives uint8
    colours = [tuple(int(v) for v in torch.randint(0, 256, (3,))) for _ in range(n)]
    expected = draw_bounding_boxes(image, boxes, colors=colours, width=width)
    out = draw_boxes(
        image, boxes, colors=torch.tensor(colours, dtype=torch.float64) / 255, width=width
    )
    assert_close(out, expected)


def test_draw_boxes_device(device):
    image = torch.rand(3, 10, 12)
    boxes = torch.tensor([[1.0, 2.0, 8.0, 7.0], [-2.0, 3.0, 20.0, 12.0]])
    out = draw_boxes(image.to(device), boxes.to(device), width=2)
    assert out.device.type == device.type
    assert_close(out.cpu(), draw_boxes(image, boxes, colors=palette(2), width=2))


def test_draw_boxes_bad_inputs():
    image = torch.rand(3, 4, 4)
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\].*Tensor\[2, 5\]"):
        draw_boxes(image, torch.zeros(2, 5))
    with pytest.raises(ValueError, match="x0 <= x1 and y0 <= y1"):
        draw_boxes(image, torch.tensor([[3.0, 0.0, 1.0, 2.0]]))
    with pytest.raises(ValueError, match="width must be a positive int, got 0"):
        draw_boxes(image, torch.zeros(1, 4), width=0)
    with pytest.raises(TypeError, match="image must be a float tensor"):
        draw_boxes(torch.zeros(3, 4, 4, dtype=torch.uint8), torch.zeros(1, 4))


# ---------------------------------------------------------------- draw_keypoints


def test_coco_skeleton_is_the_standard_one():
    coco_1based = [[16, 14], [14, 12], [17, 15], [15, 13], [12, 13], [6, 12], [7, 13], [6, 7], [6, 8], [7, 9],
                   [8, 10], [9, 11], [2, 3], [1, 2], [1, 3], [2, 4], [3, 5], [4, 6], [5, 7]]  # fmt: skip
    assert [list(e) for e in COCO_SKELETON_0BASED] == [[a - 1, b - 1] for a, b in coco_1based]


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
        t = 0.0 if l2 == 0 else min(max(((px - a[0]) * ab[0] + (py - a[1]) * ab[1]) / l2, 0.0), 1.0)
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
    kps = torch.rand(p, 17, 3, dtype=torch.float64) * torch.tensor([w, h, 1.0], dtype=torch.float64)
    kps[..., :2] = kps[..., :2].mul(4).round().div(4)  # quarter pixels: no ties lost to rounding
    kps[..., 2] = torch.randint(0, 3, (p, 17)).double()
    image = torch.rand(3, h, w, dtype=torch.float64)
    colors = torch.rand(p, 3, dtype=torch.float64)
    out = draw_keypoints(image, kps, radius=radius, colors=colors, width=width)
    expected = _keypoints_per_pixel(image, kps, COCO_SKELETON_0BASED, radius, colors, width)
    assert_close(out, expected)


def test_draw_keypoints_device(device):
    image = torch.rand(3, 16, 16)
    kps = torch.cat([torch.rand(1, 17, 2) * 16, torch.full((1, 17, 1), 2.0)], dim=-1)
    out = draw_keypoints(image.to(device), kps.to(device))
    assert out.device.type == device.type
    assert_close(out.cpu(), draw_keypoints(image, kps, colors=palette(1)))


def test_draw_keypoints_bad_inputs():
    image = torch.rand(3, 8, 8)
    with pytest.raises(
        ValueError, match=r"keypoints must be Tensor\[P, K, 3\].*Tensor\[1, 17, 2\]"
    ):
        draw_keypoints(image, torch.zeros(1, 17, 2))
    with pytest.raises(ValueError, match=r"keypoints must be Tensor\[P, K, 3\].*Tensor\[17, 3\]"):
        draw_keypoints(image, torch.zeros(17, 3))
    with pytest.raises(
        ValueError, match=r"skeleton must hold 0-based pairs of keypoint indices in \[0, 5\)"
    ):
        draw_keypoints(image, torch.zeros(1, 5, 3))  # the COCO skeleton needs 17 joints
    with pytest.raises(ValueError, match="radius must be >= 0"):
        draw_keypoints(image, torch.zeros(1, 17, 3), radius=-1)


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
    s1 = -(0.15 + 0.5 * 0.618033988749895)  # second circle: darker, c (1 + s)
    assert_close(out[:, 0, 0], sky)
    assert_close(out[:, 2, 2], wall)
    assert_close(out[:, 0, 2], circle)  # first circle: its category colour
    assert_close(out[:, 2, 1], circle)
    assert_close(out[:, 1, 0], circle * (1 + s1))
    assert_close(out[:, 2, 0], square)  # first square
    assert_close(out[:, 1, 2], torch.zeros(3))  # void
    # third instance: s_2 = +(0.15 + 0.5 frac(2 / phi)) -> towards white
    out = panoptic_colors(torch.tensor([[3]]), {1: 4, 2: 4, 3: 4})
    s2 = 0.15 + 0.5 * ((2 * 0.618033988749895) % 1)
    assert_close(out[:, 0, 0], circle + s2 * (1 - circle))


def test_panoptic_colors_without_categories_and_device(device):
    ids = torch.tensor([[0, 3], [5, 3]])
    out = panoptic_colors(ids.to(device))
    assert out.device.type == device.type
    table = palette(6)
    expected = torch.stack([torch.zeros(3), table[3], table[5], table[3]], dim=1).reshape(3, 2, 2)
    assert_close(out.cpu(), expected)
    assert_close(panoptic_colors(ids.to(device), {3: 1, 5: 6}).cpu()[:, 0, 1], CATEGORY_COLORS[1])


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


def test_panoptic_parts_uv_bad_inputs():
    with pytest.raises(ValueError, match=r"segment_ids must be an integer Tensor\[H, W\]"):
        panoptic_colors(torch.zeros(2, 2))
    with pytest.raises(
        ValueError, match=r"category_of_segment\[3\] must be a category id in \[0, 8\), got 9"
    ):
        panoptic_colors(torch.zeros(2, 2, dtype=torch.long), {3: 9})
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 4\)"):
        parts_colors(torch.tensor([[0, 4]]), num_parts=3)
    with pytest.raises(
        ValueError, match=r"uv must be a float Tensor\[2, H, W\].*Tensor\[3, 2, 2\]"
    ):
        uv_colors(torch.zeros(3, 2, 2), torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match=r"parts must be Tensor\[2, 2\] like uv"):
        uv_colors(torch.zeros(2, 2, 2), torch.zeros(3, 2, dtype=torch.long))
