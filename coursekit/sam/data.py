"""Prompts and targets for SAM on ShapesWorld, with the scenes' real ambiguity (lesson 10).

Lecture: *Segment Anything* — "for ambiguous prompts corresponding to more than one
object, compute multiple valid masks". ShapesWorld has two honest ambiguities:

* a click on a **person's part** (the torso, an arm) may mean that part or the whole
  person (``Scene.parts``);
* a click on **one circle of a crowd group** (iscrowd) may mean that circle or the
  whole crowd (the circles' outlines come from the scene's layout).

``scene_segments`` lists every answer a click may have: whole objects (things, then the
stuff regions) and, inside them, the parts / circles. ``sample_prompts`` draws training
prompts the way SAM was trained (a point uniformly inside the target, or its box with
noise; an ambiguous click's target drawn among its valid answers), and
``error_region_click`` the next simulated click of interactive training and evaluation:
a point in the region where the prediction is wrong, foreground if it was missed,
background if it was wrongly covered. ``center_click`` is the evaluation's click: the
pixel farthest from the region's boundary. Tested in tests/sam/test_data.py.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy import ndimage
from torch import Tensor

from coursekit.data import layout as lay
from coursekit.data.draw import paint_things
from coursekit.data.shapesworld import STUFF_IDS, SceneBatch, _check
from coursekit.validators import describe, require_bool, require_dim, shape_str

__all__ = ["Segments", "crowd_circle_ids", "scene_segments", "sample_prompts", "center_pixel",
           "error_region_click", "center_click", "PromptBatch"]


def crowd_circle_ids(seeds, size: int, *, num_things=None, p_person: float = 0.35,
                     p_crowd: float = 0.15, difficulty: str = "easy") -> Tensor:
    """Which crowd circle each pixel shows: int64 Tensor[B, H, W], 0 = none, i = circle i.

    Same arguments as ``render_batch`` (the same seeds give the same layout). Each circle
    of a crowd group is drawn with its own shade (``code & 15``: 0-7 fill, 8-15 rim of
    circle 0-7), so its visible pixels are read off the painted code map.
    """
    seeds, lo, hi = _check(seeds, size, num_things, p_person, p_crowd, difficulty)
    L = lay.sample_layout(seeds, int(size), lo, hi, float(p_person), float(p_crowd),
                          hard=difficulty == "hard")
    code, _ = paint_things(L, torch.device("cpu"))  # (B, H, W) uint8
    slot = (code >> 4).long()  # (B, H, W): 0 stuff, r + 1 slot r
    kind = L.kind.gather(1, (slot - 1).clamp(min=0).flatten(1)).view_as(slot)
    crowd = (slot > 0) & (kind == lay.CROWD)
    return torch.where(crowd, (code & 15).long() % lay.MAX_CROWD + 1, 0)


@dataclass
class Segments:
    """Every answer a click on one scene may have.

    ``objects``: bool Tensor[M, H, W], the things (the scene's instance masks, in order)
    then one region per stuff class present; ``is_thing``: bool Tensor[M]; ``sub``: int64
    Tensor[H, W], 0 where a click is unambiguous, else the id of the part / crowd circle
    under it (unique in the scene), so ``sub == sub[y, x]`` is the smaller answer.
    """

    objects: Tensor
    is_thing: Tensor
    sub: Tensor

    def answers(self, y: int, x: int) -> list[Tensor]:
        """The valid masks for a click on pixel (y, x): [sub-part, whole] or [whole]."""
        hit = self.objects[:, y, x].nonzero().flatten()
        if len(hit) == 0:
            return []
        whole = self.objects[int(hit[-1])]
        s = int(self.sub[y, x])
        if s > 0:
            return [self.sub == s, whole]
        return [whole]


def scene_segments(scenes: SceneBatch, circle_ids: Tensor | None = None) -> list[Segments]:
    """``Segments`` of each scene of a batch (``circle_ids``: from ``crowd_circle_ids``)."""
    if not isinstance(scenes, SceneBatch):
        raise TypeError(f"scenes must be a SceneBatch (render_batch), got {describe(scenes)}")
    out = []
    for j in range(len(scenes)):
        masks, inst = scenes.masks[j], scenes.instance_ids[j]
        stuff = [(scenes.semantic[j] == c) & (inst == 0) for c in STUFF_IDS]
        stuff = [m for m in stuff if m.any()]
        objects = torch.cat([masks, torch.stack(stuff)]) if stuff else masks
        is_thing = torch.arange(len(objects)) < len(masks)
        sub = torch.where(scenes.parts[j] > 0, inst * 32 + scenes.parts[j], 0)
        if circle_ids is not None:
            sub = torch.where(circle_ids[j] > 0, inst * 32 + 16 + circle_ids[j], sub)
        out.append(Segments(objects.cpu(), is_thing, sub.cpu()))
    return out


@dataclass
class PromptBatch:
    """K prompts per image for B images, and their targets (the one answer each trains on).

    ``points``: Tensor[B·K, 2] (x, y) of the first click; ``boxes``: Tensor[B·K, 4] xyxy
    (pixel edges, with noise) of the target; ``targets``: bool Tensor[B·K, H, W];
    ``ambiguous``: bool Tensor[B·K], the click had two valid answers; ``others``: bool
    Tensor[B·K, H, W], the click's other valid answer (the target itself where it has one).
    """

    points: Tensor
    boxes: Tensor
    targets: Tensor
    ambiguous: Tensor
    others: Tensor


def sample_prompts(segments: list[Segments], k: int, generator: torch.Generator, *,
                   p_stuff: float = 0.2, p_small: float = 0.5,
                   box_noise: float = 0.05) -> PromptBatch:
    """K training prompts per scene, SAM-style.

    An object is drawn (a stuff region with probability ``p_stuff``, else a thing), a
    click pixel uniformly inside it; if the click is ambiguous the target is the smaller
    answer with probability ``p_small``, else the whole object. The point prompt is that
    click; the box prompt is the target's box (pixel edges) moved by Gaussian noise of
    ``box_noise`` × its side. ``others`` holds the answer not drawn (the target itself for
    an unambiguous click); it draws no random number.
    """
    points, boxes, targets, amb, others = [], [], [], [], []
    for seg in segments:
        things = seg.is_thing.nonzero().flatten()
        stuff = (~seg.is_thing).nonzero().flatten()
        for _ in range(k):
            u = torch.rand(3, generator=generator)
            pool = stuff if (len(things) == 0 or (u[0] < p_stuff and len(stuff))) else things
            m = int(pool[int(u[1] * len(pool))])
            ys, xs = seg.objects[m].nonzero(as_tuple=True)
            i = int(torch.randint(len(ys), (1,), generator=generator))
            y, x = int(ys[i]), int(xs[i])
            s = int(seg.sub[y, x]) if seg.is_thing[m] else 0
            target = other = seg.objects[m]
            if s > 0:
                small = (seg.sub == s) & target
                target, other = (small, target) if u[2] < p_small else (target, small)
            ty, tx = target.nonzero(as_tuple=True)
            box = torch.tensor([tx.min(), ty.min(), tx.max() + 1, ty.max() + 1],
                               dtype=torch.float32)
            side = (box[2:] - box[:2]).repeat(2)
            box = box + box_noise * side * torch.randn(4, generator=generator)
            H, W = target.shape
            box = box.clamp(min=0).minimum(torch.tensor([W, H, W, H], dtype=torch.float32))
            points.append(torch.tensor([x, y], dtype=torch.float32))
            boxes.append(box)
            targets.append(target)
            others.append(other)
            amb.append(s > 0)
    return PromptBatch(torch.stack(points), torch.stack(boxes), torch.stack(targets),
                       torch.tensor(amb), torch.stack(others))


def error_region_click(pred: Tensor, target: Tensor, generator: torch.Generator | None = None
                       ) -> tuple[Tensor, Tensor]:
    """The next simulated click for each prompt: a point in the error region.

    ``pred``, ``target``: bool Tensor[B, H, W]. With a ``generator`` the pixel is uniform in
    ``pred XOR target`` (training); without, it is the error pixel farthest from the error
    region's boundary (evaluation, deterministic). Label 1 (foreground) where the target is
    missed, 0 (background) where the prediction spills over. A prediction without error
    gets a foreground click at the centre of the target. Returns (points Tensor[B, 2]
    (x, y) float32, labels int64 Tensor[B]).
    """
    require_bool(pred, "pred", "a bool Tensor[B, H, W]")
    require_bool(target, "target", "a bool Tensor[B, H, W]")
    require_dim(pred, "pred", 3, "a bool Tensor[B, H, W]")
    if pred.shape != target.shape:
        raise ValueError(f"target must have the shape of pred {shape_str(pred)}, "
                         f"got {shape_str(target)}")
    error = (pred ^ target).cpu()
    tgt = target.cpu()
    points, labels = [], []
    for b in range(len(error)):
        region = error[b] if error[b].any() else tgt[b]
        if not region.any():
            region = torch.ones_like(region)
        if generator is None:
            y, x = center_pixel(region)
        else:
            ys, xs = region.nonzero(as_tuple=True)
            i = int(torch.randint(len(ys), (1,), generator=generator))
            y, x = int(ys[i]), int(xs[i])
        points.append((x, y))
        labels.append(int(tgt[b, y, x]))
    return (torch.tensor(points, dtype=torch.float32, device=pred.device),
            torch.tensor(labels, dtype=torch.int64, device=pred.device))


def center_pixel(mask: Tensor) -> tuple[int, int]:
    """(y, x) of the pixel of a bool Tensor[H, W] farthest from the mask's boundary.

    Euclidean distance transform with the image border counting as boundary; ties go to
    the first pixel in row-major order.
    """
    require_bool(mask, "mask", "a bool Tensor[H, W]")
    require_dim(mask, "mask", 2, "a bool Tensor[H, W]")
    if not mask.any():
        raise ValueError("mask must have at least one True pixel, got an empty mask")
    padded = np.pad(mask.cpu().numpy(), 1)
    dist = ndimage.distance_transform_edt(padded)[1:-1, 1:-1]
    i = int(np.argmax(dist))
    return i // mask.shape[1], i % mask.shape[1]


def center_click(mask: Tensor) -> Tensor:
    """The evaluation's first click on a region: (x, y) of ``center_pixel``, Tensor[2]."""
    y, x = center_pixel(mask)
    return torch.tensor([x, y], dtype=torch.float32)
