"""How good is a promptable segmenter? Single clicks, the IoU head's choice, more clicks.

The protocol of the SAM paper (§7.1) on held-out ShapesWorld scenes, for every thing:

* the first click is the pixel farthest from the object's boundary (``center_click``);
* **best of 3**: the IoU of the best of the three masks with the object (an oracle picks:
  it measures whether a right answer is among the three);
* **IoU-head pick**: how often the mask with the highest predicted IoU is the best one,
  against chance 1/3, and the IoU of the mask it picks;
* **interactive**: each next click is the centre of the largest error (``error_region_click``:
  foreground where the object is missed, background where the mask spills), with all
  clicks so far and the previous low-resolution logits as prompts and one output mask;
  the mean IoU after 1, 3 and 5 clicks (click 1: the IoU head's pick);
* **box**: the object's tight box as the prompt, one output mask (the paper's other
  prompt), which says no more than "this object, this big": no part-or-whole ambiguity;
* **where it is lost**: best of 3 over the objects whose visible region is one piece and
  over those in several pieces, mostly cut by occluders (``count_pieces``).

Tested in tests/sam/test_evaluate.py.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from coursekit.sam.automatic import mask_to_box
from coursekit.sam.data import center_click, error_region_click
from coursekit.sam.loss import mask_iou
from coursekit.sam.predictor import SamPredictor
from coursekit.sam.sam import Sam
from coursekit.validators import describe, require_bool, require_dim

__all__ = ["box_ious", "count_pieces", "evaluate_sam", "interactive_ious"]


@torch.no_grad()
def interactive_ious(predictor: SamPredictor, gt_masks: Tensor, clicks: int = 5
                     ) -> dict[str, Tensor]:
    """Simulated clicking on each of G objects of the predictor's current image.

    Args:
        predictor: a ``SamPredictor`` after ``set_image``.
        gt_masks: bool Tensor[G, H, W] in the image's pixels.
        clicks: the number of simulated clicks (>= 1).

    Returns:
        ``{"three": Tensor[G, 3] IoUs of the 3 masks of click 1, "predicted": Tensor[G, 3]
        the IoU head's scores, "clicks": Tensor[G, clicks] the IoU after each click}``.
    """
    if not isinstance(predictor, SamPredictor):
        raise TypeError(f"predictor must be a SamPredictor, got {describe(predictor)}")
    G = len(gt_masks)
    coords = torch.stack([center_click(m) for m in gt_masks])[:, None]  # (G, 1, 2)
    labels = torch.ones(G, 1, dtype=torch.long)
    masks, scores, low = predictor.predict_batch(coords, labels)  # (G, 3, H, W)
    three = mask_iou(masks, gt_masks[:, None].expand_as(masks).to(masks.device)).cpu()
    pick = scores.argmax(dim=1)  # (G,)
    rows = torch.arange(G)
    pred = masks[rows, pick]  # (G, H, W)
    ious = [three[rows, pick.cpu()]]
    prev = low[rows, pick][:, None]  # (G, 1, 4h, 4w)
    for _ in range(clicks - 1):
        pt, lb = error_region_click(pred.cpu(), gt_masks.cpu())
        coords = torch.cat([coords, pt[:, None]], dim=1)
        labels = torch.cat([labels, lb[:, None]], dim=1)
        masks, _, low = predictor.predict_batch(coords, labels, mask_input=prev,
                                                multimask_output=False)
        pred, prev = masks[:, 0], low
        ious.append(mask_iou(pred.cpu(), gt_masks.cpu()))
    return {"three": three, "predicted": scores.cpu(), "clicks": torch.stack(ious, dim=1)}


def count_pieces(mask: Tensor) -> int:
    """The number of 8-connected pieces of a bool Tensor[H, W] (0 for an empty mask).

    Two pixels touching at a corner are one piece: a person's diagonal limb is drawn that way.
    """
    require_bool(mask, "mask", "a bool Tensor[H, W]")
    require_dim(mask, "mask", 2, "a bool Tensor[H, W]")
    return int(ndimage.label(mask.cpu().numpy(), structure=np.ones((3, 3)))[1])


@torch.no_grad()
def box_ious(predictor: SamPredictor, gt_masks: Tensor) -> Tensor:
    """IoU of the one mask a box prompt gives, for each of G objects: Tensor[G] float32.

    The box is each object's tight box in pixel edges (x1, y1, x2 + 1, y2 + 1);
    ``predictor``: after ``set_image``; ``gt_masks``: bool Tensor[G, H, W], none empty.
    """
    if not isinstance(predictor, SamPredictor):
        raise TypeError(f"predictor must be a SamPredictor, got {describe(predictor)}")
    require_bool(gt_masks, "gt_masks", "a bool Tensor[G, H, W]")
    require_dim(gt_masks, "gt_masks", 3, "a bool Tensor[G, H, W]")
    if not gt_masks.flatten(1).any(dim=1).all():
        raise ValueError("gt_masks must not hold an empty mask (it has no box)")
    boxes = mask_to_box(gt_masks.cpu()).float() + torch.tensor([0.0, 0.0, 1.0, 1.0])  # (G, 4)
    masks, _, _ = predictor.predict_batch(None, None, boxes, multimask_output=False)
    return mask_iou(masks[:, 0].cpu(), gt_masks.cpu())


def evaluate_sam(model: Sam, seeds: Iterable[int], *, size: int = 128, clicks: int = 5,
                 include_crowd: bool = True) -> dict[str, float]:
    """The metrics above over the things of the scenes ``seeds`` (rendered at ``size``).

    Returns ``{"miou_best_of_3", "miou_click1", "miou_click3", "miou_click5" (up to
    ``clicks``), "pick_rate" (IoU head picks a mask as good as the best, over the objects
    whose 3 masks do not all have the same IoU), "chance": 1/3,
    "objects": G, "best_of_3_<category>" (the best-of-3 mIoU of each category; a crowd
    group is "crowd"), "miou_box" and "box_<category>" (box prompts), "miou_one_piece"
    and "miou_in_pieces" (best of 3 by ``count_pieces`` == 1 or > 1; NaN for none),
    "in_pieces" (how many objects are in pieces)}``, floats rounded to 4 decimals.
    """
    from coursekit.data.shapesworld import category_name, render_batch

    if not isinstance(model, Sam):
        raise TypeError(f"model must be a coursekit.sam.Sam, got {describe(model)}")
    seeds = list(seeds)
    scenes = render_batch(seeds, size=size)
    predictor = SamPredictor(model)
    three, predicted, per_click, names, boxed, pieces = [], [], [], [], [], []
    for j in range(len(seeds)):
        keep = torch.ones(len(scenes.masks[j]), dtype=torch.bool)
        if not include_crowd:
            keep = ~scenes.iscrowd[j]
        gt = scenes.masks[j][keep]
        names += ["crowd" if c else category_name(int(k)) for k, c
                  in zip(scenes.labels[j][keep].tolist(), scenes.iscrowd[j][keep].tolist(),
                         strict=True)]
        if len(gt) == 0:
            continue
        predictor.set_image(scenes.image[j])
        out = interactive_ious(predictor, gt, clicks)
        boxed.append(box_ious(predictor, gt))
        pieces += [count_pieces(m) for m in gt]
        three.append(out["three"])
        predicted.append(out["predicted"])
        per_click.append(out["clicks"])
    three_t, pred_t, clicks_t = torch.cat(three), torch.cat(predicted), torch.cat(per_click)
    picked = three_t.gather(1, pred_t.argmax(dim=1, keepdim=True))[:, 0]
    best = three_t.amax(dim=1)
    differ = three_t.amax(dim=1) > three_t.amin(dim=1)  # a choice to make (not a 3-way tie)
    hits = (picked >= best - 1e-6)[differ].float()
    metrics = {"miou_best_of_3": best.mean().item(),
               "pick_rate": hits.mean().item() if len(hits) else float("nan"),
               "chance": 1 / 3, "objects": float(len(best))}
    for c in sorted({1, 3, 5, clicks}):
        if c <= clicks:
            metrics[f"miou_click{c}"] = clicks_t[:, c - 1].mean().item()
    box_t = torch.cat(boxed)
    metrics["miou_box"] = box_t.mean().item()
    for name in sorted(set(names)):
        rows = torch.tensor([n == name for n in names])
        metrics[f"best_of_3_{name}"] = best[rows].mean().item()
        metrics[f"box_{name}"] = box_t[rows].mean().item()
    split = torch.tensor(pieces) > 1
    metrics["miou_one_piece"] = best[~split].mean().item()
    metrics["miou_in_pieces"] = best[split].mean().item()
    metrics["in_pieces"] = float(split.sum())
    return {k: round(v, 4) for k, v in metrics.items()}
