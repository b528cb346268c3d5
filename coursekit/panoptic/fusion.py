"""Panoptic fusion: instance segmentation (things) + semantic segmentation (stuff) -> one map.

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

Masks must be bool (a soft mask cast to bool would turn every probability > 0 into a thing
pixel); ``mask_threshold`` binarises soft masks explicitly. Same as Detectron2's
``combine_semantic_and_instance_outputs`` (where the semantic head's class 0 stands for "any
thing"; here the thing categories ``thing_ids`` play that part); tested in
tests/panoptic/test_fusion.py.
"""

from __future__ import annotations

import numbers
from collections.abc import Collection, Mapping

import torch
from torch import Tensor

from coursekit.data.shapesworld import THING_IDS
from coursekit.validators import (
    describe,
    require_bool,
    require_dim,
    require_integer,
    require_tensor,
    shape_str,
)

__all__ = ["panoptic_fusion"]


def _number(name: str, value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a number, got {value!r}")
    return float(value)


def _check_semantic(semantic: object) -> Tensor:
    """Float logits Tensor[C, H, W] or integer class ids Tensor[H, W] -> class ids Tensor[H, W]."""
    expected = "float logits Tensor[C, H, W] or integer labels Tensor[H, W]"
    require_dim(semantic, "semantic", (2, 3), expected)
    if semantic.dim() == 3 and not semantic.is_floating_point():  # labels with a batch dim?
        raise ValueError(f"semantic must be {expected}, got {describe(semantic)}")
    if semantic.dim() == 3:
        return semantic.argmax(0)
    return require_integer(semantic, "semantic", "integer labels Tensor[H, W] (or float logits "
                           "Tensor[C, H, W])")


def _check_instances(instances: object, H: int, W: int,
                     mask_threshold: float | None) -> tuple[Tensor, Tensor, Tensor]:
    """``(scores Tensor[D], labels int Tensor[D], masks bool Tensor[D, H, W])``."""
    if not isinstance(instances, Mapping) or not all(
            k in instances for k in ("scores", "labels", "masks")):
        keys = f" with keys {sorted(instances)}" if isinstance(instances, Mapping) else ""
        raise TypeError("instances must be a dict with 'scores', 'labels' and 'masks', "
                        f"got {describe(instances)}{keys}")
    scores, labels, masks = instances["scores"], instances["labels"], instances["masks"]
    expected = f"Tensor[D, {H}, {W}] (the semantic map's size)"
    require_tensor(masks, "instances['masks']", "a bool " + expected)
    if masks.dim() != 3 or masks.shape[1:] != (H, W):
        raise ValueError(f"instances['masks'] must be {expected}, got {shape_str(masks)}")
    if mask_threshold is None:
        require_bool(masks, "instances['masks']", f"a bool Tensor[D, {H}, {W}]",
                     hint=" (threshold soft masks first, e.g. probs >= 0.5, or pass "
                          "mask_threshold=0.5)")
    elif masks.dtype != torch.bool:
        if masks.is_complex():
            raise TypeError(f"instances['masks'] must be real, got {describe(masks)}")
        masks = masks >= mask_threshold  # (D, H, W) bool, as Mask R-CNN's paste thresholds
    D = masks.shape[0]
    for name, value in (("scores", scores), ("labels", labels)):
        require_tensor(value, f"instances['{name}']", f"a Tensor[{D}] (one per mask)")
        if value.shape != (D,):
            raise ValueError(f"instances['{name}'] must be Tensor[{D}] (one per mask), "
                             f"got {shape_str(value)}")
    require_integer(labels, "instances['labels']", "an integer Tensor of category ids")
    return scores, labels, masks


def panoptic_fusion(instances: Mapping[str, Tensor], semantic: Tensor, *,
                    overlap_threshold: float = 0.5, stuff_area_threshold: int = 16,
                    score_threshold: float = 0.5, thing_ids: Collection[int] = tuple(THING_IDS),
                    ignore_index: int = 255,
                    mask_threshold: float | None = None) -> tuple[Tensor, list[dict]]:
    """Combine instance and semantic predictions into a panoptic segmentation.

    Args:
        instances: ``{"scores": Tensor[D], "labels": int Tensor[D] (category ids), "masks":
            bool Tensor[D, H, W]}``, e.g. ``MaskRCNN.predict(image, score_threshold=0)``.
        semantic: class logits Tensor[C, H, W] (float; argmax over C) or class ids
            Tensor[H, W] (int).
        overlap_threshold: drop an instance when more than this fraction of its mask is
            already taken.
        stuff_area_threshold: drop a stuff region with fewer pixels than this (Detectron2:
            4096 on 800-pixel COCO images, 0.4 % of the image; 16 pixels is 0.4 % of a
            64 × 64 scene).
        score_threshold: ignore instances whose score is below this.
        thing_ids: semantic classes that are things (their semantic pixels are never used as
            stuff).
        ignore_index: a label in an integer ``semantic`` map that means "no class": void.
        mask_threshold: ``None`` (default): masks must be bool, a float mask is a
            ``TypeError``; a number: masks that are not bool become ``masks >= mask_threshold``.

    Returns:
        ``(ids, segments)``: ids int64 Tensor[H, W] of segment ids (0 = void), segments
        numbered 1, 2, ... things first (best score first) then stuff (by class id). Each
        segment is ``{"id", "category_id", "isthing": True, "score", "instance_id"}`` for a
        thing (``instance_id`` indexes ``instances``) or ``{"id", "category_id", "isthing":
        False, "area"}`` for stuff.
    """
    labels_map = _check_semantic(semantic)  # (H, W)
    H, W = labels_map.shape
    if mask_threshold is not None:
        mask_threshold = _number("mask_threshold", mask_threshold)
    scores, labels, masks = _check_instances(instances, H, W, mask_threshold)
    if isinstance(thing_ids, (str, bytes)) or not isinstance(thing_ids, Collection) or not all(
            isinstance(t, numbers.Integral) and not isinstance(t, bool) for t in thing_ids):
        raise TypeError(f"thing_ids must be a collection of int category ids, got {thing_ids!r}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, numbers.Integral):
        raise TypeError(f"ignore_index must be an int, got {ignore_index!r}")
    overlap_threshold = _number("overlap_threshold", overlap_threshold)
    stuff_area_threshold = _number("stuff_area_threshold", stuff_area_threshold)
    score_threshold = _number("score_threshold", score_threshold)

    device = labels_map.device
    ids = torch.zeros(H, W, dtype=torch.int64, device=device)
    masks = masks.to(device)
    segments: list[dict] = []
    # sorted in the scores' own dtype: no false ties
    order = torch.argsort(-scores.detach(), stable=True).tolist()
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
    # (H, W): the pixels stuff may take
    free = (ids == 0) & ~torch.isin(labels_map, things) & (labels_map != ignore_index)
    stuff, counts = torch.unique(labels_map[free], return_counts=True)  # (S,), (S,)
    for c, area in zip(stuff.tolist(), counts.tolist(), strict=True):  # then stuff, by class id
        if area < stuff_area_threshold:
            continue  # too small to trust: void
        ids[free & (labels_map == c)] = len(segments) + 1
        segments.append({"id": len(segments) + 1, "isthing": False, "category_id": int(c),
                         "area": int(area)})
    return ids, segments
