"""DensePose annotations on ShapesWorld persons, the IUV image, and the part metrics.

Lecture: *Dense correspondences (DensePose) annotations* — annotators cannot click on a
3D body model for every pixel of every person, so COCO-DensePose was collected in two
tasks:

* **task 1, part segmentation**: each person is painted with body-part regions (a dense
  map, like a mask per part);
* **task 2, marking correspondences**: points are **sampled** inside those regions (about
  100 per person) and, for each point, the annotator clicks the same point on a rendered
  body model, which gives its part index ``I`` and its chart coordinates ``(U, V)``.

ShapesWorld persons already carry the answers (``scene.parts``, ``scene.uv``: a part index
``1..10`` and a ``(U, V)`` chart per pixel; ``coursekit.data.persons``), so both tasks are
simulated exactly: ``person_parts`` is task 1 for each person (the parts map cut to the
person's visible mask) and ``sample_points`` is task 2 (``num_points`` pixels of the person
drawn at random, each with ``(x, y, I, U, V)``). ``iuv_image`` is DensePose's IUV picture.

Metrics: ``part_confusion`` (11 classes: 0 = not this person, 1..10 the parts) ->
``part_iou`` (IoU per part, and their mean, the **part mIoU**) and ``uv_error`` (mean
``|U - U*|`` and ``|V - V*|`` on the pixels whose part is right). Tested in
tests/densepose/test_parts.py.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.data.shapesworld import PART_NAMES, Scene
from coursekit.segmentation.metrics import confusion_matrix, iou_from_confusion
from coursekit.validators import (
    describe,
    positive_int,
    require_bool,
    require_dim,
    require_floating,
    require_integer,
    shape_str,
)

__all__ = ["NUM_PARTS", "PART_NAMES", "PART_SYMMETRIES", "annotate_scene", "iuv_image",
           "part_confusion", "part_iou", "person_parts", "sample_points", "uv_error"]

NUM_PARTS = len(PART_NAMES) - 1  # 10 body parts; class 0 is the background
# The part each part becomes in the mirror image: left and right swap (DensePose's
# POINT_LABEL_SYMMETRIES for its 24 parts); background, head and torso stay.
PART_SYMMETRIES = tuple(
    PART_NAMES.index(n.removesuffix("_left") + "_right" if n.endswith("_left")
                     else n.removesuffix("_right") + "_left" if n.endswith("_right") else n)
    for n in PART_NAMES)
POINT_FIELDS = ("x", "y", "part", "u", "v")  # columns of an annotated point


def _check_chart(parts: Tensor, uv: Tensor, names: tuple[str, str] = ("parts", "uv"),
                 ) -> tuple[int, int]:
    p, c = names
    require_integer(parts, p, "an int64 Tensor[H, W] of part indices 0..10")
    require_dim(parts, p, 2, "Tensor[H, W] of part indices 0..10")
    require_floating(uv, c, "a float Tensor[2, H, W] (U, V)")
    H, W = parts.shape
    if uv.shape != (2, H, W):
        raise ValueError(f"{c} must be Tensor[2, {H}, {W}] like {p}, got {shape_str(uv)}")
    return H, W


def person_parts(parts: Tensor, masks: Tensor) -> Tensor:
    """Task 1 for each person: int64 Tensor[P, H, W], the part map inside each visible mask.

    Args:
        parts: int64 Tensor[H, W], the scene's part index per pixel (0 = no person).
        masks: bool Tensor[P, H, W], the persons' visible masks.

    Returns:
        ``parts`` where ``masks[p]`` is set, 0 elsewhere (another person's pixels are 0).
    """
    require_integer(parts, "parts", "an int64 Tensor[H, W] of part indices 0..10")
    require_dim(parts, "parts", 2, "Tensor[H, W] of part indices 0..10")
    require_bool(masks, "masks", f"a bool Tensor[P, {parts.shape[0]}, {parts.shape[1]}]")
    if masks.dim() != 3 or masks.shape[1:] != parts.shape:
        raise ValueError(f"masks must be Tensor[P, {parts.shape[0]}, {parts.shape[1]}] like "
                         f"parts, got {shape_str(masks)}")
    return torch.where(masks, parts[None], torch.zeros_like(parts[None]))  # (P, H, W)


def sample_points(parts: Tensor, uv: Tensor, mask: Tensor, num_points: int = 100,
                  generator: torch.Generator | None = None) -> Tensor:
    """Task 2 for one person: ``num_points`` annotated points, float32 Tensor[num_points, 5].

    Draws ``min(num_points, n)`` of the ``n`` person pixels (``mask & parts > 0``) without
    replacement (``torch.randperm`` with ``generator``); each row is ``(x, y, I, U, V)``: the
    pixel's centre ``(j + 0.5, i + 0.5)`` in image pixels, its part index ``I`` (1..10)
    and its chart ``(U, V)``. Rows past ``n`` are zeros (``I = 0``: no point).
    """
    H, W = _check_chart(parts, uv)
    require_bool(mask, "mask", f"a bool Tensor[{H}, {W}]")
    if mask.shape != (H, W):
        raise ValueError(f"mask must be Tensor[{H}, {W}] like parts, got {shape_str(mask)}")
    num_points = positive_int(num_points, "num_points")
    i, j = torch.nonzero(mask & (parts > 0), as_tuple=True)  # (n,) each
    order = torch.randperm(len(i), generator=generator)[:num_points].to(i.device)
    i, j = i[order], j[order]
    out = uv.new_zeros(num_points, 5, dtype=torch.float32)
    k = len(i)
    out[:k, 0] = j.float() + 0.5
    out[:k, 1] = i.float() + 0.5
    out[:k, 2] = parts[i, j].float()
    out[:k, 3:] = uv[:, i, j].T.float()
    return out


def annotate_scene(scene: Scene, num_points: int = 100, seed: int = 0) -> dict[str, Tensor]:
    """Both annotation tasks for every person of a ``Scene``.

    Returns ``{"boxes": Tensor[P, 4], "masks": bool Tensor[P, H, W], "parts": int64
    Tensor[P, H, W] (task 1, ``person_parts``), "points": Tensor[P, num_points, 5] (task 2,
    ``sample_points``)}``, persons in ``scene.person_index`` order; the points of scene
    ``s`` are drawn with ``torch.Generator().manual_seed(seed * 1_000_003 + s)``.
    """
    rows = scene.person_index
    masks = scene.masks[rows]  # (P, H, W)
    g = torch.Generator().manual_seed(seed * 1_000_003 + int(scene.seed))
    points = [sample_points(scene.parts, scene.uv, m, num_points, g) for m in masks]
    stacked = (torch.stack(points) if points
               else scene.uv.new_zeros(0, positive_int(num_points, "num_points"), 5))
    return {"boxes": scene.boxes[rows].float(), "masks": masks,
            "parts": person_parts(scene.parts, masks), "points": stacked}


def iuv_image(parts: Tensor, uv: Tensor) -> Tensor:
    """DensePose's IUV picture: Tensor[3, H, W] = ``(I / 10, U, V)`` on person pixels, 0 elsewhere.

    Detectron2 writes the same three channels as ``(I, 255 U, 255 V)`` bytes; here they are
    scaled to [0, 1] so the result shows as an RGB image (red: the part, green: U, blue: V).
    """
    _check_chart(parts, uv)
    if parts.numel() and (int(parts.min()) < 0 or int(parts.max()) > NUM_PARTS):
        raise ValueError(f"parts must hold part indices 0..{NUM_PARTS}, got values from "
                         f"{int(parts.min())} to {int(parts.max())}")
    on = (parts > 0).to(uv.dtype)
    return torch.stack([parts.to(uv.dtype) / NUM_PARTS, uv[0] * on, uv[1] * on])


def part_confusion(pred: Tensor, target: Tensor) -> Tensor:
    """int64 Tensor[11, 11]: ``M[t, p]`` pixels of true part ``t`` predicted as ``p`` (0 = none).

    ``pred``, ``target``: integer tensors of the same shape with values 0..10; the
    segmentation lesson's ``confusion_matrix`` with 11 classes (nothing ignored).
    """
    require_integer(pred, "pred", "an integer Tensor of part indices 0..10")
    require_integer(target, "target", "an integer Tensor of part indices 0..10")
    if pred.shape != target.shape:
        raise ValueError(f"pred must have target's shape {shape_str(target)}, "
                         f"got {shape_str(pred)}")
    return confusion_matrix(pred, target, NUM_PARTS + 1, ignore_index=-1)


def part_iou(confusion: Tensor) -> tuple[Tensor, float]:
    """(IoU of each part 1..10 as Tensor[10], their mean: the part mIoU) from ``part_confusion``.

    Class 0 (not this person) counts in the other classes' false positives and negatives
    but is not averaged; a part that never occurs in truth or prediction is NaN and skipped
    by the mean.
    """
    require_integer(confusion, "confusion", "an int64 Tensor[11, 11] (part_confusion)")
    if confusion.shape != (NUM_PARTS + 1, NUM_PARTS + 1):
        raise ValueError(f"confusion must be Tensor[11, 11] (part_confusion), "
                         f"got {describe(confusion)}")
    iou = iou_from_confusion(confusion)[1:]  # (10,)
    present = ~torch.isnan(iou)
    return iou, float(iou[present].mean()) if bool(present.any()) else float("nan")


def uv_error(pred_parts: Tensor, pred_uv: Tensor, parts: Tensor,
             uv: Tensor) -> tuple[Tensor, int]:
    """Summed ``(|U - U*|, |V - V*|)`` Tensor[2] (float64) and the pixel count they cover.

    Only pixels where the predicted part is right and is a body part
    (``pred_parts == parts > 0``) count: a U, V value means nothing on the wrong part.
    ``pred_parts``, ``parts``: integer Tensor[H, W]; ``pred_uv``, ``uv``: Tensor[2, H, W].
    Divide the sum by the count for the mean error (sums add up over persons).
    """
    _check_chart(parts, uv)
    _check_chart(pred_parts, pred_uv, ("pred_parts", "pred_uv"))
    if pred_parts.shape != parts.shape:
        raise ValueError(f"pred_parts, pred_uv must be shaped like parts, uv "
                         f"({shape_str(parts)}, {shape_str(uv)}), got {shape_str(pred_parts)}, "
                         f"{shape_str(pred_uv)}")
    right = (pred_parts == parts) & (parts > 0)  # (H, W)
    diff = (pred_uv.double() - uv.double()).abs()[:, right]  # (2, n)
    return diff.sum(1), int(right.sum())
