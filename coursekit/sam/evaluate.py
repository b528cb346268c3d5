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
  the mean IoU after 1, 3 and 5 clicks (click 1: the IoU head's pick).

Tested in tests/sam/test_evaluate.py.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from coursekit.sam.data import center_click, error_region_click
from coursekit.sam.loss import mask_iou
from coursekit.sam.predictor import SamPredictor
from coursekit.sam.sam import Sam
from coursekit.validators import describe

__all__ = ["evaluate_sam", "interactive_ious"]


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


def evaluate_sam(model: Sam, seeds: Iterable[int], *, size: int = 128, clicks: int = 5,
                 include_crowd: bool = True) -> dict[str, float]:
    """The metrics above over the things of the scenes ``seeds`` (rendered at ``size``).

    Returns ``{"miou_best_of_3", "miou_click1", "miou_click3", "miou_click5" (up to
    ``clicks``), "pick_rate" (IoU head picks a mask as good as the best, over the objects
    whose 3 masks do not all have the same IoU), "chance": 1/3,
    "objects": G, "best_of_3_<category>" (the best-of-3 mIoU of each category; a crowd
    group is "crowd")}``, floats rounded to 4 decimals.
    """
    from coursekit.data.shapesworld import category_name, render_batch

    if not isinstance(model, Sam):
        raise TypeError(f"model must be a coursekit.sam.Sam, got {describe(model)}")
    seeds = list(seeds)
    scenes = render_batch(seeds, size=size)
    predictor = SamPredictor(model)
    three, predicted, per_click, names = [], [], [], []
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
    for name in sorted(set(names)):
        rows = torch.tensor([n == name for n in names])
        metrics[f"best_of_3_{name}"] = best[rows].mean().item()
    return {k: round(v, 4) for k, v in metrics.items()}
