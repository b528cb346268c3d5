"""Argument checks shared by the two PQ implementations (quality.py and quality_loop.py).

Both make the same checks, so a bad argument gives the same error whichever is called.
Messages name the argument (``pred_ids[2]`` for the third image of a batch), what was
expected and what came, through coursekit.validators. Wrong type: ``TypeError``; wrong
value or shape: ``ValueError``. Tested in tests/panoptic/test_quality.py.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import NamedTuple

from torch import Tensor

from coursekit.validators import describe, require_dim, require_integer, shape_str

IDS = "an integer Tensor[H, W] of segment ids"


class Segments(NamedTuple):
    """The columns of one image's list of segment dicts, read once."""

    ids: list[int]
    category_ids: list[int]
    iscrowd: list[int]


def check_categories(categories: object) -> dict[int, bool]:
    """``{category_id: {"isthing": 0/1}}`` -> ``{category_id: isthing}``."""
    if not isinstance(categories, Mapping) or not categories:
        raise TypeError("categories must be a non-empty dict {category_id: {'isthing': 0 or 1}}, "
                        f"got {describe(categories)}")
    out = {}
    for cid, info in categories.items():
        if not isinstance(info, Mapping) or "isthing" not in info:
            raise ValueError(f"categories[{cid!r}] must be a dict with an 'isthing' key, "
                             f"got {info!r}")
        out[int(cid)] = bool(info["isthing"])
    return out


def check_void_id(void_id: object) -> int:
    if isinstance(void_id, bool) or not isinstance(void_id, numbers.Integral):
        raise TypeError(f"void_id must be an int, got {describe(void_id)}")
    if void_id < 0:
        raise ValueError(f"void_id must be >= 0, got {void_id}")
    return int(void_id)


def check_ids(name: str, ids: object) -> Tensor:
    """Type and rank of an id map (its values are checked where the pixels are read)."""
    require_integer(ids, name, IDS)
    return require_dim(ids, name, 2, IDS)


def check_segments(name: str, segments: object, categories: Mapping[int, bool],
                   void_id: int) -> Segments:
    """A list of ``{"id", "category_id"}`` (+ ``"iscrowd"``), ids unique and not void."""
    if not isinstance(segments, Sequence) or isinstance(segments, (str, bytes)):
        raise TypeError(f"{name} must be a list of dicts {{'id', 'category_id'}}, "
                        f"got {describe(segments)}")
    ids, cats, crowd = [], [], []
    for k, seg in enumerate(segments):
        if not isinstance(seg, Mapping) or "id" not in seg or "category_id" not in seg:
            raise ValueError(f"{name}[{k}] must be a dict with 'id' and 'category_id', got {seg!r}")
        ids.append(int(seg["id"]))
        cats.append(int(seg["category_id"]))
        crowd.append(int(seg.get("iscrowd", 0)))
        if ids[-1] == void_id:
            raise ValueError(f"{name}[{k}] has id {ids[-1]}, which is void_id: "
                             "void is not a segment")
        if cats[-1] not in categories:
            raise ValueError(f"{name}[{k}] has category_id {cats[-1]}, which is not in categories "
                             f"{sorted(categories)}")
    if len(set(ids)) != len(ids):
        seen: set[int] = set()
        twice = next(i for i in ids if i in seen or seen.add(i))
        raise ValueError(f"{name} lists segment id {twice} twice")
    return Segments(ids, cats, crowd)


def as_images(pred_ids: object, pred_segments: object, gt_ids: object,
              gt_segments: object) -> tuple[list[tuple], bool]:
    """One image (Tensor[H, W] ids, list of dicts) or many (lists of those, or Tensor[B, H, W]).

    Returns ``([(pred_ids, pred_segments, gt_ids, gt_segments), ...], batched)``.
    """
    if isinstance(pred_ids, Tensor) and pred_ids.dim() != 3:
        return [(pred_ids, pred_segments, gt_ids, gt_segments)], False
    if isinstance(pred_ids, Tensor):
        pred_ids = list(pred_ids)
    if isinstance(gt_ids, Tensor) and gt_ids.dim() == 3:
        gt_ids = list(gt_ids)
    if not isinstance(pred_ids, (list, tuple)):
        raise TypeError("pred_ids must be Tensor[H, W], Tensor[B, H, W] or a list of Tensor[H, W], "
                        f"got {describe(pred_ids)}")
    if not pred_ids:
        raise ValueError("pred_ids must hold at least one image, got an empty list")
    for name, value in (("gt_ids", gt_ids), ("pred_segments", pred_segments),
                        ("gt_segments", gt_segments)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list with one entry per image ({len(pred_ids)}) "
                            f"when pred_ids holds many images, got {describe(value)}")
        if len(value) != len(pred_ids):
            raise ValueError(f"{name} must be a list with one entry per image ({len(pred_ids)}) "
                             f"when pred_ids holds many images, got {len(value)} entries")
    return list(zip(pred_ids, pred_segments, gt_ids, gt_segments, strict=True)), True


def check_image(pred_ids: object, pred_segments: object, gt_ids: object, gt_segments: object,
                categories: Mapping[int, bool], void_id: int,
                index: int | None = None) -> tuple[Tensor, Segments, Tensor, Segments]:
    """The checks every PQ function makes on one image (``index``: its place in a batch)."""
    at = "" if index is None else f"[{index}]"
    pred_ids, gt_ids = check_ids(f"pred_ids{at}", pred_ids), check_ids(f"gt_ids{at}", gt_ids)
    if pred_ids.shape != gt_ids.shape:
        raise ValueError(f"pred_ids{at} and gt_ids{at} must have the same shape [H, W], got "
                         f"{shape_str(pred_ids)} and {shape_str(gt_ids)}")
    pred = check_segments(f"pred_segments{at}", pred_segments, categories, void_id)
    gt = check_segments(f"gt_segments{at}", gt_segments, categories, void_id)
    return pred_ids, pred, gt_ids, gt


def negative_id(name: str, value: int) -> ValueError:
    return ValueError(f"{name} must hold segment ids >= 0, got {value}")


def unlisted_id(name: str, value: int) -> ValueError:
    listing = name.replace("_ids", "_segments")
    return ValueError(f"{name} contains segment id {value}, which {listing} does not list "
                      "(and is not void_id)")


def absent_id(name: str, value: int) -> ValueError:
    ids = name.replace("_segments", "_ids")
    return ValueError(f"{name} lists segment id {value}, which {ids} does not contain")


def check_values(pred_ids: Tensor, pred: Segments, gt_ids: Tensor, gt: Segments, void_id: int,
                 index: int | None = None) -> None:
    """The pixel checks of one image: ids >= 0, every id listed (or void), every listed pred there.

    The vectorised PQ runs this only once its batched histogram has found a problem, to say
    which image and which id; the loop makes the same checks inline, as panopticapi does.
    """
    at = "" if index is None else f"[{index}]"
    for name, ids, segments in (("gt_ids", gt_ids, gt), ("pred_ids", pred_ids, pred)):
        present = ids.unique().tolist()
        if present and present[0] < 0:
            raise negative_id(name + at, present[0])
        unknown = sorted(set(present) - set(segments.ids) - {void_id})
        if unknown:
            raise unlisted_id(name + at, unknown[0])
    absent = sorted(set(pred.ids) - set(pred_ids.unique().tolist()))
    if absent:
        raise absent_id("pred_segments" + at, absent[0])
