"""The SA-1B data engine, simulated in its three stages on ShapesWorld (lesson 10).

Lecture: *Segment Anything: dataset* — SA-1B (1.1 B masks on 11 M licensed,
privacy-respecting images) was not drawn by hand: a model-in-the-loop **data engine**
made it, in three stages (Kirillov et al., 2023, §4):

1. **assisted-manual**: annotators click foreground / background points and SAM draws
   the mask, in real time (encoder once per image, decoder per click); they label the
   prominent objects;
2. **semi-automatic**: confident masks are filled in automatically, annotators add the
   objects that were missed (more diverse, less prominent masks);
3. **fully automatic**: a 32 × 32 grid of points prompts the model, and only confident,
   stable, non-duplicate masks are kept (``AutomaticMaskGenerator``).

``simulate_data_engine`` plays the three stages on ShapesWorld scenes with the tiny SAM:
the annotator is simulated (``evaluate.interactive_ious``: a click at the centre of the
largest error, until the mask reaches ``target_iou`` or ``max_clicks``), and every
mask's quality is its IoU with the ground-truth segment it matches best (objects, stuff
regions, persons' parts, crowd circles). ``SA1B_PUBLISHED`` holds the paper's figures
for each stage, to set beside ours. Tested in tests/sam/test_data_engine.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor

from coursekit.sam.automatic import AutomaticMaskGenerator
from coursekit.sam.data import Segments, crowd_circle_ids, scene_segments
from coursekit.sam.evaluate import interactive_ious
from coursekit.sam.loss import mask_iou
from coursekit.sam.predictor import SamPredictor
from coursekit.sam.sam import Sam
from coursekit.validators import describe, positive_int

__all__ = ["SA1B_PUBLISHED", "STAGES", "all_segments", "best_match_iou", "simulate_data_engine"]

STAGES = ("assisted-manual", "semi-automatic", "fully automatic")

SA1B_PUBLISHED: dict[str, dict[str, Any]] = {
    "assisted-manual": {"images": 120_000, "masks": 4_300_000,
                        "masks_per_image": "20 -> 44", "seconds_per_mask": "34 -> 14"},
    "semi-automatic": {"images": 180_000, "masks": 5_900_000,
                       "masks_per_image": "44 -> 72", "seconds_per_mask": "34"},
    "fully automatic": {"images": 11_000_000, "masks": 1_100_000_000,
                        "masks_per_image": "~100", "seconds_per_mask": "0",
                        "quality": "94% of masks have IoU > 0.9 with a professional fix"},
}
"""SA-1B's figures per stage (Kirillov et al., 2023, §4-5): images, masks, masks per image
(start -> end of the stage), annotation seconds per mask, and the automatic masks' quality."""


def all_segments(seg: Segments) -> tuple[Tensor, Tensor]:
    """Every valid answer in one scene: (bool Tensor[M, H, W], kind int64 Tensor[M]).

    ``seg`` from ``data.scene_segments``. kind 0: a thing (instance mask), 1: a stuff
    region, 2: a part of a thing (a person's body part, one circle of a crowd).
    """
    if not isinstance(seg, Segments):
        raise TypeError(f"seg must be a coursekit.sam.data.Segments, got {describe(seg)}")
    subs = [seg.sub == s for s in seg.sub.unique().tolist() if s > 0]
    masks = [seg.objects] + ([torch.stack(subs)] if subs else [])
    kind = torch.cat([torch.where(seg.is_thing, 0, 1), torch.full((len(subs),), 2)])
    return torch.cat(masks), kind


def best_match_iou(masks: Tensor, segments: Tensor) -> Tensor:
    """For each mask, the IoU with the segment it matches best: Tensor[K] (0 if none).

    ``masks``: bool Tensor[K, H, W]; ``segments``: bool Tensor[M, H, W].
    """
    if len(masks) == 0 or len(segments) == 0:
        return torch.zeros(len(masks))
    K, M = len(masks), len(segments)
    ious = mask_iou(masks[:, None].expand(K, M, *masks.shape[1:]),
                    segments[None].expand(K, M, *segments.shape[1:]))  # (K, M)
    return ious.amax(dim=1)


def simulate_data_engine(model: Sam, seeds: Iterable[int], *, size: int = 128,
                         max_clicks: int = 5, target_iou: float = 0.9,
                         points_per_side: int = 16, semi_iou_thresh: float = 0.9
                         ) -> list[dict[str, float]]:
    """Run the three stages on the scenes ``seeds``; one row of statistics per stage.

    * assisted-manual: every thing is annotated by simulated clicks;
    * semi-automatic: the automatic generator's masks with predicted IoU above
      ``semi_iou_thresh`` are filled in; then every segment (things, stuff, parts) that
      none of them matches with IoU >= 0.5 is annotated by clicks;
    * fully automatic: the generator alone (``points_per_side``² points, default filters).

    Each row: ``stage``, ``images``, ``masks``, ``masks_per_image``, ``clicks_per_mask``
    (human clicks, automatic masks count 0), ``mean_iou`` (each mask against its best
    ground-truth segment), ``share_iou_90`` (share of masks with that IoU > 0.9).
    """
    from coursekit.data.shapesworld import render_batch

    if not isinstance(model, Sam):
        raise TypeError(f"model must be a coursekit.sam.Sam, got {describe(model)}")
    max_clicks = positive_int(max_clicks, "max_clicks")
    seeds = list(seeds)
    scenes = render_batch(seeds, size=size)
    segs = scene_segments(scenes, crowd_circle_ids(seeds, size))
    predictor = SamPredictor(model)
    generator = AutomaticMaskGenerator(model, points_per_side=points_per_side)
    semi = AutomaticMaskGenerator(model, points_per_side=points_per_side,
                                  pred_iou_thresh=semi_iou_thresh)
    stats = {stage: {"masks": 0, "clicks": 0, "ious": []} for stage in STAGES}

    def annotate(stage: str, gt: Tensor) -> None:
        if len(gt) == 0:
            return
        per_click = interactive_ious(predictor, gt, max_clicks)["clicks"]  # (G, clicks)
        reached = per_click >= target_iou
        first = torch.where(reached.any(dim=1), reached.float().argmax(dim=1), max_clicks - 1)
        stats[stage]["clicks"] += int((first + 1).sum())
        stats[stage]["masks"] += len(gt)
        stats[stage]["ious"].append(per_click.gather(1, first[:, None])[:, 0])

    for j in range(len(seeds)):
        image = scenes.image[j]
        segments, kind = all_segments(segs[j])
        predictor.set_image(image)
        annotate("assisted-manual", segments[kind == 0])
        # semi-automatic: confident masks first, then the annotator adds what they missed
        auto = _stack([r["segmentation"] for r in semi.generate(image)], image)
        stats["semi-automatic"]["masks"] += len(auto)
        stats["semi-automatic"]["ious"].append(best_match_iou(auto, segments))
        covered = best_match_iou(segments, auto) >= 0.5 if len(auto) else \
            torch.zeros(len(segments), dtype=torch.bool)
        predictor.set_image(image)
        annotate("semi-automatic", segments[~covered])
        full = _stack([r["segmentation"] for r in generator.generate(image)], image)
        stats["fully automatic"]["masks"] += len(full)
        stats["fully automatic"]["ious"].append(best_match_iou(full, segments))
    rows = []
    for stage in STAGES:
        s = stats[stage]
        ious = torch.cat(s["ious"]) if s["ious"] else torch.zeros(0)
        n = max(s["masks"], 1)
        rows.append({"stage": stage, "images": len(seeds), "masks": s["masks"],
                     "masks_per_image": s["masks"] / len(seeds),
                     "clicks_per_mask": s["clicks"] / n,
                     "mean_iou": float(ious.mean()) if len(ious) else 0.0,
                     "share_iou_90": float((ious > 0.9).float().mean()) if len(ious) else 0.0})
    return rows


def _stack(masks: list[Tensor], image: Tensor) -> Tensor:
    if masks:
        return torch.stack(masks).cpu()
    return torch.zeros(0, *image.shape[-2:], dtype=torch.bool)
