"""Export ShapesWorld scenes to COCO: instances + keypoints JSON, and COCO panoptic (JSON + PNG).

Category ids: COCO ids start at 1, so ``category_id = id + 1`` where ``id`` is the train id
of ``shapesworld.CATEGORIES`` (sky 1 ... wall 4, circle 5, square 6, triangle 7,
person 8).
The instances file lists the 4 thing categories; the person category carries the 17
keypoint names and the skeleton (``coursekit.pose.coco_keypoints``, the course's one copy
of the COCO schema). Masks are run-length encoded by our own encoder
(``encode_rle``: column-major, runs starting with zeros, as pycocotools does; optionally
compressed into COCO's string form). Crowds are annotated ``iscrowd = 1``.

Panoptic: every pixel belongs to one segment; thing segment ``k`` is instance ``k`` (1..N),
stuff segment ids are ``STUFF_SEGMENT_OFFSET + train id``; the PNG stores
``id = R + 256 G + 256^2 B`` (as panopticapi). Read back with pycocotools / panopticapi in
tests/data/test_coco.py.
"""

from __future__ import annotations

import json
import numbers
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from coursekit.data.shapesworld import CATEGORIES, Scene, SceneBatch
from coursekit.pose.coco_keypoints import COCO_KEYPOINT_NAMES, COCO_SKELETON
from coursekit.validators import describe, positive_int, require_tensor

STUFF_SEGMENT_OFFSET = 1000


def encode_rle(mask: Tensor, compressed: bool = False) -> dict:
    """Run-length encode a binary mask Tensor[H, W] the COCO way.

    ``mask``: bool, or an integer dtype (uint8 like pycocotools) where nonzero is 1;
    float masks are refused (threshold them first). The mask is read column by column
    (Fortran order); ``counts`` alternates runs of 0s and 1s, starting with 0s (a leading
    run of length 0 if the first pixel is 1). Same as
    ``pycocotools.mask.encode(np.asfortranarray(mask))`` (``compressed=True`` gives its
    string ``counts``); tested in tests/data/test_coco.py.
    """
    require_tensor(mask, "mask", "a bool Tensor[H, W]")
    if mask.dim() != 2:
        raise ValueError(f"mask must be Tensor[H, W], got {describe(mask)}")
    if mask.is_floating_point() or mask.is_complex():
        raise TypeError(f"mask must be a bool (or integer 0/1) Tensor[H, W]; threshold soft masks "
                        f"first, e.g. probs > 0.5; got {describe(mask)}")
    if not isinstance(compressed, bool):
        raise TypeError(f"compressed must be a bool, got {compressed!r}")
    H, W = mask.shape
    flat = mask.detach().bool().t().reshape(-1).cpu()  # column-major
    starts = torch.nonzero(flat[1:] != flat[:-1]).squeeze(1) + 1  # where a new run starts
    bounds = torch.cat([torch.tensor([0]), starts, torch.tensor([flat.numel()])])
    counts = (bounds[1:] - bounds[:-1]).tolist() if flat.numel() else [0]  # pycocotools: [0]
    if flat.numel() and bool(flat[0]):
        counts = [0] + counts
    return {"counts": rle_to_string(counts) if compressed else counts, "size": [int(H), int(W)]}


def rle_to_string(counts: Sequence[int]) -> str:
    """COCO's compressed RLE string: each count (minus the one two places back, from the
    fourth on) in 5-bit groups, low first, 0x20 marking "more", each + 48 as a character."""
    if isinstance(counts, str | bytes) or not isinstance(counts, Sequence) or not all(
        isinstance(c, numbers.Integral) and not isinstance(c, bool) for c in counts
    ):
        raise TypeError(f"counts must be a list of ints (run lengths), got {describe(counts)}")
    out = []
    for i, x in enumerate(counts):
        x = int(x) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = x != -1 if c & 0x10 else x != 0
            out.append(chr((c | 0x20 if more else c) + 48))
    return "".join(out)


def rle_from_string(s: str) -> list[int]:
    """Inverse of ``rle_to_string``."""
    if not isinstance(s, str):
        raise TypeError(f"s must be a str (COCO's compressed counts), got {describe(s)}")
    counts: list[int] = []
    p = 0
    while p < len(s):
        x, k, more = 0, 0, True
        while more:
            c = ord(s[p]) - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p, k = p + 1, k + 1
            if not more and c & 0x10:
                x |= -1 << (5 * k)
        counts.append(x + (counts[-2] if len(counts) > 2 else 0))
    return counts


def decode_rle(rle: dict) -> Tensor:
    """Tensor[H, W] bool from a COCO RLE dict (``counts`` a list or a compressed string)."""
    if not isinstance(rle, dict) or not {"counts", "size"} <= set(rle):
        raise TypeError(f"rle must be a dict with 'counts' and 'size', got {describe(rle)}")
    H, W = rle["size"]
    counts = rle["counts"]
    counts = rle_from_string(counts) if isinstance(counts, str) else list(counts)
    if sum(counts) != H * W:
        raise ValueError(f"rle counts must add up to H * W = {H * W} pixels, got {sum(counts)}")
    values = torch.arange(len(counts)) % 2 == 1  # runs alternate 0, 1, 0, ...
    return values.repeat_interleave(torch.tensor(counts, dtype=torch.long)).view(W, H).t()


def _scenes(scenes) -> list[Scene]:
    if isinstance(scenes, SceneBatch):
        return [scenes.scene(i) for i in range(len(scenes))]
    if isinstance(scenes, Scene):
        return [scenes]
    expected = "a non-empty sequence of Scene (or a SceneBatch)"
    if not isinstance(scenes, Sequence) or not all(isinstance(s, Scene) for s in scenes):
        got = describe(scenes)
        if isinstance(scenes, Sequence):
            got += " of " + ", ".join(sorted({describe(s) for s in scenes}))
        raise TypeError(f"scenes must be {expected}, got {got}")
    if len(scenes) == 0:
        raise ValueError(f"scenes must be {expected}, got an empty {describe(scenes)}")
    return list(scenes)


def _check_start(image_id_start) -> int:
    return positive_int(image_id_start, "image_id_start", minimum=0)


def _bbox(mask: Tensor) -> list[float]:
    """[x, y, w, h] of a mask in pixel edges (COCO's xywh)."""
    ys, xs = torch.nonzero(mask, as_tuple=True)
    x1, y1 = xs.min().item(), ys.min().item()
    return [float(x1), float(y1), float(xs.max().item() + 1 - x1), float(ys.max().item() + 1 - y1)]


def _image_entry(scene: Scene, image_id: int) -> dict:
    return {"id": image_id, "file_name": f"{image_id:012d}.png", "height": scene.size,
            "width": scene.size, "seed": scene.seed}


def coco_categories(things_only: bool = True) -> list[dict]:
    """COCO category dicts (id = train id + 1); the person one with keypoints and skeleton."""
    cats = []
    for c in CATEGORIES:
        if things_only and not c["isthing"]:
            continue
        if c["name"] == "person":
            supercategory = "person"
        else:
            supercategory = "shape" if c["isthing"] else "stuff"
        entry = {"id": c["id"] + 1, "name": c["name"], "supercategory": supercategory,
                 "isthing": c["isthing"]}
        if c["name"] == "person":
            entry.update(keypoints=list(COCO_KEYPOINT_NAMES),
                         skeleton=[list(p) for p in COCO_SKELETON])
        cats.append(entry)
    return cats


def to_coco(
    scenes: Sequence[Scene] | SceneBatch, *, image_id_start: int = 1, compressed: bool = False
) -> dict:
    """COCO instances (+ person keypoints) dict for ``scenes``; image ids from ``image_id_start``.

    Each thing becomes an annotation with ``segmentation`` (RLE of the visible mask),
    ``area`` (its pixel count), ``bbox`` (xywh), ``iscrowd``; persons add ``keypoints``
    (17 x (x, y, v) flattened) and ``num_keypoints`` (the number with v > 0).
    """
    scenes, start = _scenes(scenes), _check_start(image_id_start)
    images, annotations = [], []
    for i, s in enumerate(scenes):
        images.append(_image_entry(s, start + i))
        person_row = {int(r): p for p, r in enumerate(s.person_index.tolist())}
        for k in range(len(s.labels)):
            mask = s.masks[k].cpu()
            x1, y1, x2, y2 = s.boxes[k].tolist()
            ann = {"id": len(annotations) + 1, "image_id": start + i,
                   "category_id": int(s.labels[k]) + 1,
                   "segmentation": encode_rle(mask, compressed), "area": int(mask.sum()),
                   "bbox": [x1, y1, x2 - x1, y2 - y1], "iscrowd": int(s.iscrowd[k])}
            if k in person_row:
                kp = s.keypoints[person_row[k]].cpu()
                ann["keypoints"] = [v for x, y, vis in kp.tolist()
                                    for v in (float(x), float(y), int(vis))]
                ann["num_keypoints"] = int((kp[:, 2] > 0).sum())
            annotations.append(ann)
    return {"info": {"description": "ShapesWorld (coursekit)", "version": "1.0"}, "licenses": [],
            "images": images, "annotations": annotations, "categories": coco_categories()}


def panoptic_ids(scene: Scene) -> tuple[Tensor, list[dict]]:
    """The panoptic segmentation of a scene: ids Tensor[H, W] int64 and its segments.

    Thing instance k has segment id k; the stuff of train id c has ``STUFF_SEGMENT_OFFSET + c``;
    0 (void) marks ignored pixels. Segments: ``{"id", "category_id" (train id), "iscrowd",
    "area", "bbox"}``, for ``coursekit.panoptic`` and for ``to_coco_panoptic``.
    """
    if not isinstance(scene, Scene):
        raise TypeError(f"scene must be a Scene (render_scene(seed)), got {describe(scene)}")
    sem, inst = scene.semantic.cpu(), scene.instance_ids.cpu()
    ids = torch.where(inst > 0, inst, sem + STUFF_SEGMENT_OFFSET)
    ids = torch.where(sem == 255, 0, ids)
    segments = []
    for k in range(len(scene.labels)):
        m = ids == k + 1
        segments.append({"id": k + 1, "category_id": int(scene.labels[k]),
                         "iscrowd": int(scene.iscrowd[k]), "area": int(m.sum()), "bbox": _bbox(m)})
    for c in sorted(set(sem[inst == 0].tolist()) - {255}):
        m = ids == STUFF_SEGMENT_OFFSET + c
        segments.append({"id": STUFF_SEGMENT_OFFSET + c, "category_id": c, "iscrowd": 0,
                         "area": int(m.sum()), "bbox": _bbox(m)})
    return ids, segments


def to_coco_panoptic(
    scenes: Sequence[Scene] | SceneBatch, out_dir: str | Path, *, image_id_start: int = 1
) -> dict:
    """Write COCO panoptic PNGs to ``out_dir/panoptic/`` and ``out_dir/panoptic.json``.

    Returns the JSON dict.

    PNG pixel = segment id as ``R + 256 G + 256^2 B``; ``segments_info`` holds id,
    category_id (train id + 1), area, bbox (xywh), iscrowd; categories list all 8 with isthing.
    """
    scenes, start = _scenes(scenes), _check_start(image_id_start)
    out = Path(out_dir)
    (out / "panoptic").mkdir(parents=True, exist_ok=True)
    images, annotations = [], []
    for i, s in enumerate(scenes):
        entry = _image_entry(s, start + i)
        ids, segments = panoptic_ids(s)
        a = ids.numpy()
        rgb = np.stack([a % 256, a // 256 % 256, a // 256**2 % 256], -1)  # (H, W, 3)
        rgb = rgb.astype(np.uint8)
        Image.fromarray(rgb).save(out / "panoptic" / entry["file_name"])
        images.append(entry)
        info = [dict(seg, category_id=seg["category_id"] + 1) for seg in segments]
        annotations.append({"image_id": start + i, "file_name": entry["file_name"],
                            "segments_info": info})
    data = {"info": {"description": "ShapesWorld panoptic (coursekit)"}, "licenses": [],
            "images": images, "annotations": annotations,
            "categories": coco_categories(things_only=False)}
    (out / "panoptic.json").write_text(json.dumps(data))
    return data


def save_coco(
    scenes: Sequence[Scene] | SceneBatch, out_dir: str | Path, *, image_id_start: int = 1
) -> dict[str, Path]:
    """Write ``out_dir/images/<id>.png`` (8-bit RGB) and ``out_dir/instances.json`` (``to_coco``).

    Returns ``{"images": folder, "instances": json path}``.
    """
    scenes, start = _scenes(scenes), _check_start(image_id_start)
    out = Path(out_dir)
    (out / "images").mkdir(parents=True, exist_ok=True)
    data = to_coco(scenes, image_id_start=start)
    for s, entry in zip(scenes, data["images"], strict=True):
        pixels = (s.image.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)
        pixels = pixels.permute(1, 2, 0).numpy()  # (H, W, 3)
        Image.fromarray(pixels).save(out / "images" / entry["file_name"])
    (out / "instances.json").write_text(json.dumps(data))
    return {"images": out / "images", "instances": out / "instances.json"}
