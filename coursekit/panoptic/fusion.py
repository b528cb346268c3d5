"""Panoptic fusion: an instance segmentation (things) + a semantic segmentation (stuff) -> one panoptic map.

Lecture (Kirillov et al., *Panoptic Segmentation* and *Panoptic Feature Pyramid Networks*,
CVPR 2019): a panoptic answer gives every pixel a category and, for things, an instance.
The simple heuristic that turns the two outputs of Panoptic FPN into one, in order:

1. sort the detected instances by score, best first, and stop below ``score_threshold``;
2. paste their masks one by one; pixels already taken stay with the earlier (better)
   instance, and an instance more than ``overlap_threshold`` of whose mask is already taken
   is dropped (it mostly repeats a better detection);
3. fill the pixels still empty with the **stuff** classes of the semantic map (its thing
   classes are ignored: things come from the instance branch); a stuff region smaller than
   ``stuff_area_threshold`` pixels is dropped;
4. whatever is left is void (id 0).

Same as Detectron2's ``combine_semantic_and_instance_outputs`` (where the semantic head's
class 0 stands for "any thing"; here the thing categories ``thing_ids`` play that part);
tested in tests/panoptic/test_fusion.py.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection, Mapping

import torch
from torch import Tensor

from coursekit.data.shapesworld import THING_IDS

__all__ = ["panoptic_fusion"]


def _describe(x: object) -> str:
    return f"Tensor{list(x.shape)} {x.dtype}" if isinstance(x, Tensor) else type(x).__name__


def _check_threshold(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    return float(value)


def panoptic_fusion(instances: Mapping[str, Tensor], semantic: Tensor, *, overlap_threshold: float = 0.5,
                    stuff_area_threshold: int = 16, score_threshold: float = 0.5,
                    thing_ids: Collection[int] = tuple(THING_IDS), ignore_index: int = 255) -> tuple[Tensor, list[dict]]:
    """Combine instance and semantic predictions into a panoptic segmentation.

    Args:
        instances: ``{"scores": Tensor[D], "labels": int Tensor[D] (category ids), "masks":
            bool Tensor[D, H, W]}``, e.g. ``MaskRCNN.predict(image, score_threshold=0)``.
        semantic: class logits Tensor[C, H, W] (float; argmax over C) or class ids Tensor[H, W] (int).
        overlap_threshold: drop an instance when more than this fraction of its mask is already taken.
        stuff_area_threshold: drop a stuff region with fewer pixels than this (Detectron2: 4096 on
            800-pixel COCO images, 0.4 % of the image; 16 pixels is 0.4 % of a 64 × 64 scene).
        score_threshold: ignore instances whose score is below this.
        thing_ids: semantic classes that are things (their semantic pixels are never used as stuff).
        ignore_index: a label in an integer ``semantic`` map that means "no class": void.

    Returns:
        ``(ids, segments)``: ids int64 Tensor[H, W] of segment ids (0 = void), segments numbered
        1, 2, ... things first (best score first) then stuff (by class id). Each segment is
        ``{"id", "category_id", "isthing": True, "score", "instance_id"}`` for a thing
        (``instance_id`` indexes ``instances``) or ``{"id", "category_id", "isthing": False,
        "area"}`` for stuff.
    """
    if not isinstance(instances, Mapping) or not all(k in instances for k in ("scores", "labels", "masks")):
        raise TypeError(f"instances must be a dict with 'scores', 'labels' and 'masks', got "
                        f"{type(instances).__name__}" + (f" with keys {sorted(instances)}" if isinstance(instances, Mapping) else ""))
    if not isinstance(semantic, Tensor) or not ((semantic.dim() == 3 and semantic.is_floating_point())
                                                or (semantic.dim() == 2 and not semantic.is_floating_point())):
        raise ValueError(f"semantic must be float logits Tensor[C, H, W] or integer labels Tensor[H, W], "
                         f"got {_describe(semantic)}")
    labels_map = semantic.argmax(0) if semantic.dim() == 3 else semantic  # (H, W)
    H, W = labels_map.shape
    scores, labels, masks = instances["scores"], instances["labels"], instances["masks"]
    if not isinstance(masks, Tensor) or masks.dim() != 3 or masks.shape[1:] != (H, W):
        raise ValueError(f"instances['masks'] must be Tensor[D, {H}, {W}] (the semantic map's size), got {_describe(masks)}")
    D = masks.shape[0]
    for name, value in (("scores", scores), ("labels", labels)):
        if not isinstance(value, Tensor) or value.shape != (D,):
            raise ValueError(f"instances['{name}'] must be Tensor[{D}] (one per mask), got {_describe(value)}")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(f"instances['labels'] must be an integer Tensor of category ids, got {_describe(labels)}")
    if isinstance(thing_ids, (str, bytes)) or not isinstance(thing_ids, Collection) or not all(
            isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in thing_ids):
        raise TypeError(f"thing_ids must be a collection of int category ids, got {thing_ids!r}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
    overlap_threshold = _check_threshold("overlap_threshold", overlap_threshold)
    stuff_area_threshold = _check_threshold("stuff_area_threshold", stuff_area_threshold)
    score_threshold = _check_threshold("score_threshold", score_threshold)

    device = labels_map.device
    ids = torch.zeros(H, W, dtype=torch.int64, device=device)
    masks = masks.to(device=device, dtype=torch.bool)
    segments: list[dict] = []
    order = torch.argsort(-scores.detach(), stable=True).tolist()  # in the scores' own dtype: no false ties
    score_list, label_list = scores.tolist(), labels.tolist()
    for k in order:  # paste things, best first
        if score_list[k] < score_threshold:
            break
        mask = masks[k]  # (H, W)
        area = int(mask.sum())
        if area == 0:
            continue
        taken = int((mask & (ids > 0)).sum())
        if taken / area > overlap_threshold:
            continue  # mostly hidden behind better instances
        ids[mask & (ids == 0)] = len(segments) + 1
        segments.append({"id": len(segments) + 1, "isthing": True, "score": score_list[k],
                         "category_id": int(label_list[k]), "instance_id": k})
    labels_map = labels_map.to(torch.int64)  # so any class id (and ignore_index) fits
    things = torch.tensor(sorted({int(t) for t in thing_ids}), dtype=torch.int64, device=device)
    free = (ids == 0) & ~torch.isin(labels_map, things) & (labels_map != ignore_index)  # (H, W) pixels stuff may take
    stuff, counts = torch.unique(labels_map[free], return_counts=True)  # (S,), (S,)
    for c, area in zip(stuff.tolist(), counts.tolist()):  # then stuff, by class id
        if area < stuff_area_threshold:
            continue  # too small to trust: void
        ids[free & (labels_map == c)] = len(segments) + 1
        segments.append({"id": len(segments) + 1, "isthing": False, "category_id": int(c), "area": int(area)})
    return ids, segments
