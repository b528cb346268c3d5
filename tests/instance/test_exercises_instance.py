"""The instance-segmentation graders accept right answers and explain wrong ones.

The exercises ask for torchvision's targets and paste (``aligned=False``), whatever the
library's default, so the library functions are passed with ``aligned=False`` spelled out.
"""

from functools import partial

import torch
import torch.nn.functional as F
from torchvision.models.detection import roi_heads as tv

from coursekit.detection import roi_align
from coursekit.exercises.instance import (
    _paste_read_at,
    check_paste_masks,
    check_paste_masks_aligned,
    check_project_masks_on_boxes,
    check_round_trip_shift,
    measure_round_trip_shift,
)
from coursekit.instance import (
    paste_masks_in_image,
    paste_masks_in_image_loop,
    project_masks_on_boxes,
)
from coursekit.upsampling import bilinear_sample


def verdict(capsys):
    return capsys.readouterr().out.strip()


def stub(*args):
    raise NotImplementedError("exercise: write your solution here")


# ---- project_masks_on_boxes -------------------------------------------------------------

targets = partial(project_masks_on_boxes, aligned=False)
paste = partial(paste_masks_in_image, aligned=False)


def test_targets_accepts_correct_solutions(capsys):
    assert check_project_masks_on_boxes(targets) is True
    assert check_project_masks_on_boxes(tv.project_masks_on_boxes) is True
    assert verdict(capsys).startswith("✅ correct: project_masks_on_boxes")


def targets_aligned(masks, boxes, idx, M):
    rois = torch.cat([idx.to(boxes)[:, None], boxes], 1)
    return roi_align(masks[:, None].to(boxes), rois, (M, M), 1.0, -1, True)[:, 0]


def targets_ignoring_matched_idxs(masks, boxes, idx, M):
    index = (torch.arange(len(boxes)) % len(masks)).to(boxes)
    rois = torch.cat([index[:, None], boxes], 1)
    return roi_align(masks[:, None].to(boxes), rois, (M, M), 1.0)[:, 0]


def test_targets_explains_wrong_solutions(capsys):
    assert check_project_masks_on_boxes(targets_aligned) is False
    assert "aligned=False" in verdict(capsys)
    assert check_project_masks_on_boxes(targets_ignoring_matched_idxs) is False
    assert "matched_idxs in the first column" in verdict(capsys)
    assert check_project_masks_on_boxes(lambda m, b, i, M: (targets(m, b, i, M) > 0.5).float()) \
        is False
    assert "do not threshold" in verdict(capsys)
    assert check_project_masks_on_boxes(lambda m, b, i, M: targets(m, b, i, M)[:, None]) is False
    line = verdict(capsys)
    assert "should return Tensor[1, 4, 4] (P, M, M), got Tensor[1, 1, 4, 4]" in line
    assert check_project_masks_on_boxes(lambda m, b, i, M: targets(m, b, i, M) * 0.5) is False
    assert "crop with RoI Align" in verdict(capsys)
    assert check_project_masks_on_boxes(targets(*_tiny_case())) is False  # a result, not the fn
    assert "expected your function, got Tensor[1, 4, 4] float64" in verdict(capsys)


def _tiny_case():
    half = torch.zeros(1, 4, 4, dtype=torch.bool)
    half[:, :, :2] = True
    return half, torch.tensor([[0.0, 0, 4, 4]], dtype=torch.float64), torch.tensor([0]), 4


def test_targets_reports_exceptions_and_stubs(capsys):
    assert check_project_masks_on_boxes(stub) is False
    assert "not implemented yet" in verdict(capsys)
    assert check_project_masks_on_boxes(lambda m, b, i, M: m @ b) is False
    assert "your function raised RuntimeError" in verdict(capsys)


# ---- paste_masks_in_image ---------------------------------------------------------------

def test_paste_accepts_correct_solutions(capsys):
    assert check_paste_masks(paste) is True
    assert check_paste_masks(paste_masks_in_image_loop) is True
    assert check_paste_masks(tv.paste_masks_in_image) is True
    assert verdict(capsys).startswith("✅ correct: paste_masks_in_image")


def paste_align_corners(masks, boxes, img_shape):
    """torchvision's recipe, but resized with align_corners=True."""
    from coursekit.instance.paste import expand_boxes

    M = masks.shape[-1]
    padded, box = F.pad(masks, (1, 1, 1, 1)), expand_boxes(boxes, (M + 2) / M).to(torch.int64)
    out = masks.new_zeros(len(masks), 1, *img_shape)
    for k, (x0, y0, x1, y1) in enumerate(box.tolist()):
        w, h = max(x1 - x0 + 1, 1), max(y1 - y0 + 1, 1)
        resized = F.interpolate(padded[k:k + 1], size=(h, w), mode="bilinear",
                                align_corners=True)[0, 0]
        top, left = max(y0, 0), max(x0, 0)
        bottom, right = min(y1 + 1, img_shape[0]), min(x1 + 1, img_shape[1])
        out[k, 0, top:bottom, left:right] = resized[top - y0:bottom - y0, left - x0:right - x0]
    return out


def test_paste_explains_wrong_solutions(capsys):
    assert check_paste_masks(lambda m, b, s: paste(m, b, s, padding=0)) is False
    assert "pad the mask with 1 pixel" in verdict(capsys)
    assert check_paste_masks(lambda m, b, s: (paste(m, b, s) >= 0.5).double()) is False
    assert "thresholding at 0.5 comes afterwards" in verdict(capsys)
    assert check_paste_masks(lambda m, b, s: paste(m, b, s)[:, 0]) is False
    assert "should return Tensor[1, 1, 6, 6] (N, 1, H, W), got Tensor[1, 6, 6]" in verdict(capsys)
    assert check_paste_masks(paste_align_corners) is False
    assert "align_corners=False" in verdict(capsys)
    assert check_paste_masks(lambda m, b, s: paste_masks_in_image(m, b, s, aligned=True)) is False
    assert "Detectron2's half-pixel-exact paste" in verdict(capsys)


def test_paste_reports_exceptions_and_stubs(capsys):
    assert check_paste_masks(stub) is False
    assert "not implemented yet" in verdict(capsys)


# ---- find the bug: Detectron2's paste (aligned=True) ------------------------------------

def lesson_paste(masks, boxes, img_shape, pixel_centre=0.5):
    """The lesson's Detectron2-style paste; pixel_centre=0 is the bug the lesson plants."""
    N, _, M, _ = masks.shape
    H, W = img_shape
    ring = F.pad(masks, (1, 1, 1, 1))  # zeros around each mask
    x1, y1, x2, y2 = boxes[:, :, None, None].unbind(1)
    rows = torch.arange(H, dtype=masks.dtype)[:, None] + pixel_centre
    cols = torch.arange(W, dtype=masks.dtype)[None, :] + pixel_centre
    v = (rows - y1) * M / (y2 - y1) - 0.5
    u = (cols - x1) * M / (x2 - x1) - 0.5
    return bilinear_sample(ring, v + 1, u + 1, torch.arange(N)[:, None, None]).permute(0, 3, 1, 2)


def detectron2_paste(masks, boxes, img_shape):
    """Detectron2's _do_paste_mask: grid_sample at pixel centres, zeros outside."""
    H, W = img_shape
    x1, y1, x2, y2 = boxes.unbind(1)
    gx = (torch.arange(W, dtype=masks.dtype) + 0.5 - x1[:, None]) / (x2 - x1)[:, None] * 2 - 1
    gy = (torch.arange(H, dtype=masks.dtype) + 0.5 - y1[:, None]) / (y2 - y1)[:, None] * 2 - 1
    grid = torch.stack([gx[:, None, :].expand(-1, H, -1), gy[:, :, None].expand(-1, -1, W)], 3)
    return F.grid_sample(masks, grid, align_corners=False)


def test_paste_aligned_accepts_correct_solutions(capsys):
    assert check_paste_masks_aligned(lesson_paste) is True
    assert check_paste_masks_aligned(detectron2_paste) is True
    assert check_paste_masks_aligned(partial(paste_masks_in_image, aligned=True)) is True
    lines = verdict(capsys).splitlines()
    assert len(lines) == 3
    assert all(line.startswith("✅ correct: the paste is exact") for line in lines)


def test_paste_aligned_explains_wrong_solutions(capsys):
    assert check_paste_masks_aligned(partial(lesson_paste, pixel_centre=0.0)) is False  # the bug
    line = verdict(capsys)
    assert "row 2 is [0.00, 0.50, 1.00, 0.50, 0.00], expected [0.00, 1.00, 1.00" in line
    assert "still half a pixel off" in line
    assert check_paste_masks_aligned(partial(lesson_paste, pixel_centre=1.0)) is False
    assert "half a pixel off the other way" in verdict(capsys)
    assert check_paste_masks_aligned(paste) is False  # torchvision's
    assert "that is torchvision's paste" in verdict(capsys)
    assert check_paste_masks_aligned(lambda m, b, s: (lesson_paste(m, b, s) >= 0.5).double()) \
        is False
    line = verdict(capsys)
    assert "4 random masks and boxes: max |yours − expected| = 0.50" in line
    assert "thresholding at 0.5 comes afterwards" in line
    assert check_paste_masks_aligned(lambda m, b, s: lesson_paste(m, b, s)[:, 0]) is False
    assert "expected Tensor[1, 1, 5, 5] (N, 1, H, W), got Tensor[1, 5, 5]" in verdict(capsys)


def test_paste_aligned_reports_exceptions_and_stubs(capsys):
    assert check_paste_masks_aligned(stub) is False
    assert "not implemented yet" in verdict(capsys)
    assert check_paste_masks_aligned(lambda m, b, s: m @ b) is False
    assert "your function raised RuntimeError" in verdict(capsys)


def test_paste_read_at_is_detectron2s_paste_in_float64():
    g = torch.Generator().manual_seed(0)
    masks = torch.rand(5, 1, 7, 7, generator=g, dtype=torch.float64)
    xy = torch.rand(5, 2, generator=g, dtype=torch.float64) * 30 - 5
    boxes = torch.cat([xy, xy + torch.rand(5, 2, generator=g, dtype=torch.float64) * 20 + 2], 1)
    ours = _paste_read_at(masks, boxes, (32, 40), 0.5, -0.5)
    torch.testing.assert_close(ours, detectron2_paste(masks, boxes, (32, 40)), rtol=0, atol=1e-12)


# ---- predict before you run: torchvision's crop + Detectron2's paste ----------------------

def test_round_trip_shift_is_half_a_pixel_up_left():
    # derived: torchvision's crop reads bin j at x1 + (j + 1/2) w/M as a pixel *centre*, half
    # a pixel right of (and below) the aligned crop; Detectron2's paste inverts the aligned crop
    dx, dy = measure_round_trip_shift(crop_aligned=False, paste_aligned=True)
    assert abs(dx + 0.5) < 0.03 and abs(dy + 0.5) < 0.03
    dx, dy = measure_round_trip_shift(crop_aligned=True, paste_aligned=True)
    assert abs(dx) < 0.05 and abs(dy) < 0.05  # the matched pair: no shift (up to resampling)


def test_round_trip_shift_accepts_correct_predictions(capsys):
    assert check_round_trip_shift(lambda: (-0.5, -0.5)) is True
    assert check_round_trip_shift(lambda: [-0.4, -0.6]) is True  # within 0.15 px
    lines = verdict(capsys).splitlines()
    assert lines[0] == ("✅ correct: you predicted (dx, dy) = (-0.50, -0.50) px, "
                        "measured (-0.50, -0.50) px")
    assert len(lines) == 2


def test_round_trip_shift_explains_wrong_predictions(capsys):
    assert check_round_trip_shift(lambda: (0.5, 0.5)) is False
    assert "wrong direction" in verdict(capsys)
    assert check_round_trip_shift(lambda: (0.0, 0.0)) is False
    assert "torchvision's crop does" in verdict(capsys)
    assert check_round_trip_shift(lambda: (-1.0, -1.0)) is False
    assert "only one of the two steps is off" in verdict(capsys)
    assert check_round_trip_shift(lambda: (-0.5, 0.5)) is False
    assert "one axis at a time" in verdict(capsys)
    assert check_round_trip_shift(lambda: -0.5) is False
    assert "should be a pair of numbers (dx, dy), got float" in verdict(capsys)
    assert check_round_trip_shift(lambda: (True, -0.5)) is False
    assert "pair of numbers" in verdict(capsys)
    assert check_round_trip_shift(stub) is False
    assert "not implemented yet" in verdict(capsys)
    assert check_round_trip_shift((-0.5, -0.5)) is False  # the answer, not a function
    assert "expected your function" in verdict(capsys)
