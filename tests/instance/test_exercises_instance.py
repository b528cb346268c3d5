"""The instance-segmentation graders accept right answers and explain wrong ones.

The exercises ask for torchvision's targets and paste (``aligned=False``), whatever the
library's default, so the library functions are passed with ``aligned=False`` spelled out.
"""

from functools import partial

import torch
import torch.nn.functional as F
from torchvision.models.detection import roi_heads as tv

from coursekit.detection import roi_align
from coursekit.exercises.instance import check_paste_masks, check_project_masks_on_boxes
from coursekit.instance import (
    paste_masks_in_image,
    paste_masks_in_image_loop,
    project_masks_on_boxes,
)


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
