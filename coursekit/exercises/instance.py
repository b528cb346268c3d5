"""Graders for the instance-segmentation exercises: Mask R-CNN's mask targets and mask pasting.

* ``check_project_masks_on_boxes(fn)``, ``check_paste_masks(fn)``: torchvision's targets and
  paste (``aligned=False``), compared with ``coursekit.instance``.
* ``check_paste_masks_aligned(fn)``: "find the bug" — Detectron2's paste
  (``aligned=True``), given half a pixel off.
* ``check_round_trip_shift(fn)``: "predict before you run" — how far a mask moves when it
  is cropped with torchvision's convention and pasted with Detectron2's; measured on a disc.

Each ``check_*(fn)`` calls the student's function on a few fixed cases, compares
with ``coursekit.instance`` (itself tested against torchvision), prints one verdict
line (✅ / ❌ with a hint) and returns whether it passed.
"""

from __future__ import annotations

import numbers
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from coursekit.detection import roi_align
from coursekit.exercises.verdict import report, run_student
from coursekit.instance.paste import paste_masks_in_image
from coursekit.instance.targets import project_masks_on_boxes
from coursekit.upsampling import bilinear_sample
from coursekit.validators import describe, shape_str


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


# ---- find the bug: Detectron2's paste, half a pixel off ------------------------------------

def _paste_read_at(masks: Tensor, boxes: Tensor, img_shape: tuple[int, int],
                   pixel_offset: float, mask_offset: float) -> Tensor:
    """Paste that reads mask position ``(x + pixel_offset - x1) M / w + mask_offset``.

    Zeros around the mask, bilinear; (0.5, -0.5) is Detectron2's paste (``aligned=True``).
    Returns Tensor[N, 1, H, W].
    """
    N, _, M, _ = masks.shape
    H, W = img_shape
    ring = F.pad(masks, (1, 1, 1, 1))  # (N, 1, M + 2, M + 2)
    x1, y1, x2, y2 = boxes[:, :, None, None].unbind(1)  # (N, 1, 1) each
    rows = torch.arange(H, dtype=masks.dtype)[:, None]  # (H, 1)
    cols = torch.arange(W, dtype=masks.dtype)[None, :]  # (1, W)
    v = (rows + pixel_offset - y1) * M / (y2 - y1) + mask_offset  # (N, H, 1)
    u = (cols + pixel_offset - x1) * M / (x2 - x1) + mask_offset  # (N, 1, W)
    batch = torch.arange(N)[:, None, None]
    return bilinear_sample(ring, v + 1, u + 1, batch).permute(0, 3, 1, 2)  # (N, 1, H, W)


def check_paste_masks_aligned(fn: Callable) -> bool:
    """Grade ``fn(masks, boxes, img_shape) -> Tensor[N, 1, H, W]``: Detectron2's paste.

    ``masks``: Tensor[N, 1, M, M]; ``boxes``: Tensor[N, 4]; ``img_shape``: (H, W). Compared
    with ``paste_masks_in_image(..., aligned=True)``, the exact inverse of
    ``project_masks_on_boxes(..., aligned=True)``.
    """
    g = torch.Generator().manual_seed(8)
    xy = torch.rand(4, 2, generator=g, dtype=torch.float64) * 16 - 2
    cases = [
        # a 2 x 2 mask of ones on the box (1, 1, 3, 3) fills exactly pixels 1-2
        ("a mask of ones on the box (1, 1, 3, 3)", torch.ones(1, 1, 2, 2, dtype=torch.float64),
         torch.tensor([[1.0, 1, 3, 3]], dtype=torch.float64), (5, 5)),
        ("4 random masks and boxes", torch.rand(4, 1, 6, 6, generator=g, dtype=torch.float64),
         torch.cat([xy, xy + torch.rand(4, 2, generator=g, dtype=torch.float64) * 10 + 3], 1),
         (20, 24)),
    ]
    results = []
    for label, masks, boxes, img_shape in cases:
        expected = paste_masks_in_image(masks, boxes, img_shape, aligned=True)
        result, error = run_student(fn, masks.clone(), boxes.clone(), img_shape)
        if error:
            return report(False, f"{label}: {error}",
                          "read the error message and the line it points to")
        if not isinstance(result, Tensor) or result.shape != expected.shape:
            return report(False, f"{label}: expected {shape_str(expected)} (N, 1, H, W), "
                                 f"got {describe(result)}",
                          "one image-sized canvas per mask, zeros outside the box")
        results.append(result)
    wrong = [k for k, (case, result) in enumerate(zip(cases, results, strict=True))
             if not _close(result, paste_masks_in_image(*case[1:], aligned=True))]
    if not wrong:
        return report(True, "the paste is exact: a mask of ones fills its box, and it matches "
                            "paste_masks_in_image(aligned=True)")
    label, masks, boxes, img_shape = cases[wrong[0]]
    got = results[wrong[0]].detach().double().cpu()
    if wrong[0] == 0:
        row = ", ".join(f"{v:.2f}" for v in got[0, 0, 2].tolist())
        what = f"{label}: row 2 is [{row}], expected [0.00, 1.00, 1.00, 0.00, 0.00]"
    else:
        diff = (got - paste_masks_in_image(masks, boxes, img_shape, aligned=True)).abs().max()
        what = f"{label}: max |yours − expected| = {diff:.2f}"
    # name the mistake from the random case: there the mask and image grids differ in scale
    _, masks, boxes, img_shape = cases[-1]
    result = results[-1]

    def read_at(pixel_offset: float, mask_offset: float) -> Tensor:
        return _paste_read_at(masks, boxes, img_shape, pixel_offset, mask_offset)

    expected = paste_masks_in_image(masks, boxes, img_shape, aligned=True)
    if _close(result, read_at(0.0, -0.5)):
        hint = ("still half a pixel off: image pixel x covers [x, x + 1); which point of it "
                "should read the mask?")
    elif _close(result, read_at(1.0, -0.5)):
        hint = "now it is half a pixel off the other way: add the half pixel only once"
    elif _close(result, read_at(0.5, 0.0)) or _close(result, read_at(0.0, 0.0)):
        hint = ("mask pixel j covers [j, j + 1) of the mask's own grid, and bilinear_sample "
                "puts its value at j: count that half pixel too")
    elif _close(result, paste_masks_in_image(masks, boxes, img_shape, aligned=False)):
        hint = ("that is torchvision's paste (aligned=False); fix the given Detectron2-style "
                "paste instead")
    elif _close(result.double(), (expected >= 0.5).double()):
        hint = "return the pasted probabilities; thresholding at 0.5 comes afterwards"
    else:
        hint = ("start from the given function and change as little as you can: the mask "
                "of ones must fill exactly its box")
    return report(False, what, hint)


# ---- predict before you run: torchvision's crop, Detectron2's paste ------------------------

def _centre(mask: Tensor) -> tuple[float, float]:
    """(x, y) centre of mass of a soft mask Tensor[H, W]."""
    m = mask.double()
    ys = torch.arange(m.shape[0], dtype=torch.float64)
    xs = torch.arange(m.shape[1], dtype=torch.float64)
    total = m.sum()
    return float((m.sum(0) * xs).sum() / total), float((m.sum(1) * ys).sum() / total)


def measure_round_trip_shift(crop_aligned: bool = False,
                             paste_aligned: bool = True) -> tuple[float, float]:
    """``(dx, dy)``: how far a disc's centre of mass moves through crop + paste.

    A disc (radius 7.2 px, 48 × 48 image) is cropped to 28 × 28 with
    ``project_masks_on_boxes(aligned=crop_aligned)`` by a box a few pixels larger than the
    disc, pasted back with ``paste_masks_in_image(aligned=paste_aligned)``, and the centres
    of mass of the pasted probabilities and of the disc are compared (x right, y down).
    """
    yy, xx = torch.meshgrid(torch.arange(48) + 0.5, torch.arange(48) + 0.5, indexing="ij")
    disc = ((xx - 20.3) ** 2 + (yy - 23.7) ** 2 <= 7.2**2)[None]  # (1, 48, 48)
    box = torch.tensor([[10.0, 14.5, 32.0, 35.5]], dtype=torch.float64)  # around the disc
    target = project_masks_on_boxes(disc, box, torch.tensor([0]), 28, aligned=crop_aligned)
    back = paste_masks_in_image(target[:, None], box, (48, 48), aligned=paste_aligned)[0, 0]
    (x0, y0), (x1, y1) = _centre(disc[0]), _centre(back)
    return x1 - x0, y1 - y0


def check_round_trip_shift(fn: Callable) -> bool:
    """Grade a prediction ``fn() -> (dx, dy)``: the shift, in pixels, of a mask cropped with
    torchvision's convention (``project_masks_on_boxes(aligned=False)``) and pasted with
    Detectron2's (``paste_masks_in_image(aligned=True)``). Measured on a disc with
    ``measure_round_trip_shift``; a prediction within 0.15 px per axis passes.
    """
    got, error = run_student(fn)
    if error is not None:
        return report(False, f"your prediction: {error}", "return the (dx, dy) you derived")
    if (not isinstance(got, tuple | list) or len(got) != 2 or any(
            isinstance(v, bool) or not isinstance(v, numbers.Real) for v in got)):
        return report(False, f"the prediction should be a pair of numbers (dx, dy), "
                             f"got {describe(got)}",
                      "pixels, x to the right and y down, e.g. (0.25, 0.0)")
    dx, dy = (float(v) for v in got)
    mx, my = measure_round_trip_shift(False, True)
    what = (f"you predicted (dx, dy) = ({dx:+.2f}, {dy:+.2f}) px, "
            f"measured ({mx:+.2f}, {my:+.2f}) px")
    if abs(dx - mx) <= 0.15 and abs(dy - my) <= 0.15:
        return report(True, what)
    if abs(dx + mx) <= 0.15 and abs(dy + my) <= 0.15:
        hint = ("right amount, wrong direction: inside the target, where does torchvision's "
                "crop put the object, and does the paste move it back?")
    elif abs(dx) <= 0.15 and abs(dy) <= 0.15:
        hint = ("Detectron2's paste adds no shift, but torchvision's crop does: where does it "
                "read bin j, compared with aligned=True?")
    elif abs(abs(dx) - 2 * abs(mx)) <= 0.15 and abs(abs(dy) - 2 * abs(my)) <= 0.15:
        hint = "only one of the two steps is off, and by half a pixel"
    else:
        hint = ("add the shifts of the two steps, one axis at a time: the crop's (section 10) "
                "and the paste's (exact when paired with its own crop)")
    return report(False, what, hint)
