"""The pattern of lessons 05-09 in one table: one trunk, many heads on its RoI features.

``heads_table(trunk, caption_head, mesh_head)`` lists the shared trunk and every head the
course plugs into it — Mask R-CNN's mask head (lesson 05), the keypoint head (07,
``coursekit.pose``), the DensePose head (08, ``coursekit.densepose``, when that package
is installed) and this lesson's caption and mesh heads — with their parameters, loss,
training target and how they were trained. ``format_table(rows)`` prints it.
Tested in tests/heads/test_table.py.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from coursekit.validators import count_parameters

__all__ = ["format_table", "heads_table"]


def _count(module: nn.Module | None) -> str:
    return "-" if module is None else f"{count_parameters(module):,}"


def _keypoint_head() -> nn.Module | None:
    try:
        from coursekit.pose.keypoint_rcnn import build_keypoint_rcnn
    except ImportError:
        return None
    return build_keypoint_rcnn().roi_heads.extra_heads["keypoints"]


def _densepose_head(trunk: nn.Module) -> nn.Module | None:
    try:
        from coursekit.densepose.train import build_densepose_head
    except ImportError:
        return None
    try:
        return build_densepose_head(dict(trunk.config))
    except (TypeError, ValueError, KeyError):  # another version of its builder
        return None


def heads_table(trunk: nn.Module, caption_head: nn.Module | None = None,
                mesh_head: nn.Module | None = None) -> list[dict[str, Any]]:
    """One row per part: ``{"part", "parameters", "loss", "target", "trained"}``.

    ``trunk``: the Mask R-CNN (``coursekit.instance``) whose backbone + FPN, RPN and box
    head every head shares; heads not given (or not installed) show ``-`` parameters.
    """
    rh = trunk.roi_heads
    box = nn.ModuleList([trunk.backbone, trunk.rpn, rh.box_head, rh.box_predictor])
    dp = _densepose_head(trunk)
    frozen = "here, trunk frozen"
    return [
        {"part": "trunk: backbone+FPN, RPN, box head", "parameters": _count(box),
         "loss": "objectness BCE, class CE, box regression",
         "target": "boxes, classes", "trained": "lesson 05"},
        {"part": "mask head", "parameters": _count(rh.mask_head),
         "loss": "per-pixel BCE, 28x28", "target": "masks", "trained": "lesson 05, with trunk"},
        {"part": "keypoint head", "parameters": _count(_keypoint_head()),
         "loss": "softmax CE over 56x56 cells", "target": "17 keypoints (persons)",
         "trained": "lesson 07, with trunk"},
        {"part": "DensePose head", "parameters": _count(dp),
         "loss": "fg/bg CE + part CE (map, points) + smooth-L1 U,V + CSE CE",
         "target": "masks, parts, (I,U,V) points (persons)",
         "trained": "lesson 08, trunk frozen" if dp is not None
         else "lesson 08 (not installed)"},
        {"part": "caption head", "parameters": _count(caption_head),
         "loss": "next-word CE (teacher forcing)", "target": "captions", "trained": frozen},
        {"part": "mesh head (voxels + refinement)", "parameters": _count(mesh_head),
         "loss": "voxel BCE + Chamfer", "target": "G^3 voxels, surface points",
         "trained": frozen},
    ]


def format_table(rows: list[dict[str, Any]]) -> str:
    """The rows of ``heads_table`` as aligned text, one line per row under a header."""
    keys = ["part", "parameters", "loss", "target", "trained"]
    widths = {k: max(len(k), *(len(str(r[k])) for r in rows)) for k in keys}
    lines = ["  ".join(f"{k:<{widths[k]}}" for k in keys).rstrip()]
    for r in rows:
        lines.append("  ".join(f"{r[k]!s:>{widths[k]}}" if k == "parameters" else
                               f"{r[k]!s:<{widths[k]}}" for k in keys).rstrip())
    return "\n".join(lines)
