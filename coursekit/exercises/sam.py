"""Graders for lesson 10's exercises (Segment Anything).

* ``check_min_over_3_loss(fn)``: SAM's ambiguity-aware mask loss — ``20 · focal + dice``
  per output mask, only the minimum over the 3 masks, averaged over prompts; compared with
  ``coursekit.sam.sam_loss`` (itself tested against torchvision's focal loss).
* ``check_stability_score(fn)``: the automatic generator's stability score, compared with
  ``coursekit.sam.stability_score`` (= segment-anything's ``calculate_stability_score``).
* ``check_hardest_class_prediction(fn, per_class)``: "predict before you run" — which
  category gets the lowest single-click best-of-3 IoU, and whether the IoU head picks the
  best mask more often than chance; compared with the lesson's measurement.

Each ``check_*`` prints one verdict line (✅ / ❌ with a hint) and returns whether it passed.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from coursekit.exercises.verdict import report, run_student
from coursekit.sam.automatic import stability_score
from coursekit.sam.loss import dice_loss, sam_loss, sigmoid_focal_loss
from coursekit.validators import shape_str

__all__ = ["check_hardest_class_prediction", "check_min_over_3_loss", "check_stability_score"]


def _scalar_close(result: object, expected: Tensor) -> bool:
    return (isinstance(result, Tensor) and result.numel() == 1
            and torch.allclose(result.detach().double().reshape(()).cpu(),
                               expected.double(), atol=1e-6, rtol=1e-5))


def _loss_cases() -> list[tuple[Tensor, Tensor]]:
    g = torch.Generator().manual_seed(10)
    gt = torch.zeros(1, 4, 4, dtype=torch.bool)
    gt[0, 1:3, 1:3] = True  # a 2 x 2 square
    right = torch.where(gt[0], 8.0, -8.0)  # confident and right
    logits = torch.stack([torch.zeros(4, 4), right, -right])[None].double()  # (1, 3, 4, 4)
    rand = torch.randn(4, 3, 8, 8, generator=g, dtype=torch.float64) * 3
    return [(logits, gt), (rand, torch.rand(4, 8, 8, generator=g) > 0.6)]


def check_min_over_3_loss(fn: Callable) -> bool:
    """Grade ``fn(mask_logits Tensor[B, 3, H, W], gt_masks bool Tensor[B, H, W]) -> scalar``."""
    for logits, gt in _loss_cases():
        expected = sam_loss(logits, torch.zeros(logits.shape[:2], dtype=logits.dtype),
                            gt).mask_loss
        result, error = run_student(fn, logits.clone(), gt.clone())
        if error:
            return report(False, "min-over-3 loss", error)
        if not isinstance(result, Tensor) or result.numel() != 1:
            return report(False, f"the loss should be a scalar Tensor, got {shape_str(result)}",
                          "average over the prompts after taking the minimum over the masks")
        if _scalar_close(result, expected):
            continue
        target = gt[:, None].expand_as(logits).double()
        per_mask = (20 * sigmoid_focal_loss(logits, target).mean(dim=(-2, -1))
                    + dice_loss(logits, target))  # (B, 3)
        if _scalar_close(result, per_mask.mean()):
            hint = "you averaged the 3 masks: keep only the best (smallest) loss per prompt"
        elif _scalar_close(result, per_mask.amax(dim=1).mean()):
            hint = "the best mask is the one with the smallest loss (min, not max)"
        elif _scalar_close(result, per_mask.amin(dim=1).sum()):
            hint = "average over the prompts (mean), do not sum"
        elif _scalar_close(result, (sigmoid_focal_loss(logits, target).mean(dim=(-2, -1))
                                    + 20 * dice_loss(logits, target)).amin(dim=1).mean()):
            hint = "the weights are 20 for focal and 1 for dice (20:1), not the other way"
        else:
            hint = ("per mask: 20 · (focal loss averaged over the pixels) + dice loss; "
                    "then the minimum over the 3 masks, then the mean over prompts")
        return report(False, f"min-over-3 loss: expected {expected.item():.4f}, "
                             f"got {float(result):.4f}", hint)
    return report(True, "min-over-3 loss: only the best of the 3 masks is trained")


def check_stability_score(fn: Callable) -> bool:
    """Grade ``fn(mask_logits Tensor[..., H, W], mask_threshold, offset) -> Tensor[...]``."""
    g = torch.Generator().manual_seed(11)
    ramp = torch.arange(-4.0, 4.0).repeat(4, 1)[None]  # (1, 4, 8): a soft edge
    cases = [(ramp, 0.0, 1.0), (torch.randn(2, 3, 9, 9, generator=g) * 4, 0.5, 2.0)]
    for logits, t, off in cases:
        expected = stability_score(logits, t, off)
        result, error = run_student(fn, logits.clone(), t, off)
        if error:
            return report(False, "stability score", error)
        if not isinstance(result, Tensor) or result.shape != expected.shape:
            return report(False, f"stability score should be {shape_str(expected)} (one per "
                                 f"mask), got {shape_str(result)}",
                          "sum the pixels over the last two axes")
        got = result.detach().double().cpu()
        if torch.allclose(got, expected.double(), atol=1e-6):
            continue
        inv = (logits > t - off).sum(dim=(-2, -1)) / (logits > t + off).sum(dim=(-2, -1))
        ge = (logits >= t + off).sum(dim=(-2, -1)) / (logits >= t - off).sum(dim=(-2, -1))
        if torch.allclose(got, inv.double(), atol=1e-6):
            hint = ("the mask thresholded higher (t + offset) is the smaller one: it is the "
                    "intersection, the numerator")
        elif torch.allclose(got, ge.double(), atol=1e-6):
            hint = "a pixel is in the mask when its logit is > the threshold (strictly)"
        else:
            hint = ("count the pixels above t + offset and above t - offset; "
                    "the score is their ratio (an IoU, since one mask contains the other)")
        return report(False, f"stability score: expected {expected.flatten()[:3].tolist()}..., "
                             f"got {got.flatten()[:3].tolist()}...", hint)
    return report(True, "stability score: the IoU of the masks at t + offset and t - offset")


HARDEST_TIE = 0.02  # best-of-3 mIoU this close to the lowest counts as the hardest too


def check_hardest_class_prediction(fn: Callable, per_class: dict[str, float],
                                   pick_rate: float) -> bool:
    """Compare a prediction ``fn() -> {"hardest": category name, "beats_chance": bool}``
    with the measurement: ``per_class`` maps category names to single-click best-of-3 mIoU,
    ``pick_rate`` is how often the IoU head picks the best mask (chance: 1/3)."""
    prediction, error = run_student(fn)
    if error:
        return report(False, "prediction", error)
    if not isinstance(prediction, dict) or not {"hardest", "beats_chance"} <= set(prediction):
        return report(False, "prediction must be a dict with the keys 'hardest' and "
                             "'beats_chance'", "e.g. {'hardest': 'square', 'beats_chance': True}")
    low = min(per_class.values())
    # within HARDEST_TIE of the lowest is a tie on 24 scenes: either answer is right
    tied = sorted(k for k, v in per_class.items() if v <= low + HARDEST_TIE)
    hardest = min(per_class, key=per_class.get)
    beats = pick_rate > 1 / 3
    table = ", ".join(f"{k} {v:.4f}" for k, v in per_class.items())
    others = [k for k in tied if k != hardest]
    tie = f" ({' and '.join(others)} within {HARDEST_TIE} counts too)" if others else ""
    summary = (f"measured best-of-3 mIoU {table}; hardest: {hardest}{tie}; IoU head picks the "
               f"best mask {pick_rate:.4f} of the time (chance 0.3333)")
    wrong = []
    if str(prediction["hardest"]).strip().lower() not in tied:
        wrong.append("hardest")
    if bool(prediction["beats_chance"]) != beats:
        wrong.append("beats_chance")
    if not wrong:
        return report(True, f"prediction matches the measurement: {summary}")
    return report(False, f"prediction differs on {', '.join(wrong)}: {summary}",
                  "the decoder's masks are decoded from one token per 4 x 4 pixels: which "
                  "objects have thin parts or many pieces for their area?")
