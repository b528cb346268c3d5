"""Graders for the instance-segmentation exercises: Mask R-CNN's mask targets and mask pasting.

Each ``check_*(fn)`` calls the student's function on a few fixed cases, compares
with ``coursekit.instance`` (itself tested against torchvision), prints one verdict
line (✅ / ❌ with a hint) and returns whether it passed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from coursekit.detection import roi_align
from coursekit.exercises.verdict import report, run_student
from coursekit.instance.paste import paste_masks_in_image
from coursekit.instance.targets import project_masks_on_boxes
from coursekit.validators import shape_str


def _close(result: object, expected: Tensor) -> bool:
    return (isinstance(result, Tensor) and result.shape == expected.shape
            and torch.allclose(result.detach().double().cpu(), expected.double(), atol=1e-6,
                               rtol=1e-5))


def check_project_masks_on_boxes(fn: Callable) -> bool:
    """Grade ``fn(gt_masks, boxes, matched_idxs, M) -> Tensor[P, M, M]``.

    ``gt_masks``: Tensor[G, H, W]; ``boxes``: Tensor[P, 4]; ``matched_idxs``: Tensor[P];
    ``M``: int.
    """
    g = torch.Generator().manual_seed(3)
    half = torch.zeros(1, 4, 4, dtype=torch.bool)
    half[:, :, :2] = True  # left half of the image is the object
    masks = torch.rand(3, 16, 16, generator=g) > 0.5
    xy = torch.rand(5, 2, generator=g, dtype=torch.float64) * 10
    boxes = torch.cat([xy, xy + torch.rand(5, 2, generator=g, dtype=torch.float64) * 6 + 1], 1)
    cases = [
        # rows [1, .5, 0, 0]
        (half, torch.tensor([[0.0, 0, 4, 4]], dtype=torch.float64), torch.tensor([0]), 4),
        (masks, boxes, torch.tensor([2, 0, 1, 2, 0]), 7),
    ]
    for gt_masks, b, idx, M in cases:
        # torchvision's targets (aligned=False), whatever the library's default
        expected = project_masks_on_boxes(gt_masks, b, idx, M, aligned=False)
        result, error = run_student(fn, gt_masks.clone(), b.clone(), idx.clone(), M)
        if error:
            return report(False, "project_masks_on_boxes", error)
        if not isinstance(result, Tensor) or result.shape != expected.shape:
            return report(False, f"project_masks_on_boxes should return {shape_str(expected)} "
                                 f"(P, M, M), got {shape_str(result)}",
                          "one M x M target per box; drop the channel dim with [:, 0]")
        if _close(result, expected):
            continue
        rois = torch.cat([idx.double()[:, None], b], 1)
        soft = gt_masks[:, None].double()
        wrong_index = torch.cat([torch.arange(len(b)).double()[:, None] % len(gt_masks), b],
                                1)
        if _close(result, roi_align(soft, rois, (M, M), 1.0, -1, True)[:, 0]):
            hint = "torchvision's targets use roi_align with aligned=False (the default)"
        elif len(b) > 1 and _close(result,
                                   roi_align(soft, wrong_index, (M, M), 1.0, -1, False)[:, 0]):
            hint = ("box p reads the mask matched_idxs[p]: put matched_idxs in the first column "
                    "of the RoIs")
        elif _close(result.double(), (expected > 0.5).double()):
            hint = "keep the soft RoI Align values in [0, 1]; do not threshold the targets"
        else:
            hint = ("crop with RoI Align on the masks as a 1-channel image: "
                    "roi_align(gt_masks[:, None].float(), "
                    "rois, (M, M), 1.0) with rois = (matched_idxs, x1, y1, x2, y2)")
        return report(False, f"project_masks_on_boxes gives wrong values for M = {M}", hint)
    return report(True, "project_masks_on_boxes matches torchvision's mask targets on every case")


def check_paste_masks(fn: Callable) -> bool:
    """Grade ``fn(masks, boxes, img_shape) -> Tensor[N, 1, H, W]`` (padding 1).

    ``masks``: Tensor[N, 1, M, M]; ``boxes``: Tensor[N, 4]; ``img_shape``: (H, W).
    """
    g = torch.Generator().manual_seed(4)
    xy = torch.rand(4, 2, generator=g, dtype=torch.float64) * 20 - 2
    cases = [
        # padded [0 1 1 0] per axis, box grown to (0, 0, 4, 4): 5 pixels with profile
        # [0, .7, 1, .7, 0]
        (torch.ones(1, 1, 2, 2, dtype=torch.float64),
         torch.tensor([[1.0, 1, 3, 3]], dtype=torch.float64), (6, 6)),
        (torch.rand(4, 1, 6, 6, generator=g, dtype=torch.float64),
         torch.cat([xy, xy + torch.rand(4, 2, generator=g, dtype=torch.float64) * 10 + 3], 1),
         (20, 24)),
    ]
    for masks, boxes, img_shape in cases:
        # torchvision's paste (aligned=False), whatever the library's default
        expected = paste_masks_in_image(masks, boxes, img_shape, aligned=False)
        result, error = run_student(fn, masks.clone(), boxes.clone(), img_shape)
        if error:
            return report(False, "paste_masks_in_image", error)
        if not isinstance(result, Tensor) or result.shape != expected.shape:
            return report(False, f"paste_masks_in_image should return {shape_str(expected)} "
                                 f"(N, 1, H, W), got {shape_str(result)}",
                          "one image-sized canvas per mask, zeros outside the box")
        if _close(result, expected):
            continue
        if _close(result, paste_masks_in_image(masks, boxes, img_shape, aligned=True)):
            hint = ("that is Detectron2's half-pixel-exact paste (aligned=True); this exercise "
                    "asks for "
                    "torchvision's: pad, grow the box, round it to integers, resize, write")
        elif _close(result,
                    paste_masks_in_image(masks, boxes, img_shape, padding=0, aligned=False)):
            hint = ("pad the mask with 1 pixel of zeros first and grow the box about its centre "
                    "by (M + 2) / M")
        elif _close(result.double(), (expected >= 0.5).double()):
            hint = "return the pasted probabilities; thresholding at 0.5 comes afterwards"
        else:
            hint = ("integer box = expanded box .to(int64); resize the padded mask to "
                    "(y1 - y0 + 1, x1 - x0 + 1) with "
                    "bilinear, align_corners=False; write it at rows y0..y1, columns x0..x1, "
                    "clipped to the image")
        return report(False, f"paste_masks_in_image gives wrong values for {len(masks)} mask(s)",
                      hint)
    return report(True, "paste_masks_in_image matches torchvision's pasting on every case")
