"""MOTChallenge text files: one line per box, ``frame,id,x,y,w,h,conf,-1,-1,-1``.

The MOTChallenge benchmark (and SORT's output) store a tracking result as text, one
comma-separated line per box with 1-based frame numbers and boxes as top-left corner,
width and height::

    1,1,10.00,20.00,30.00,40.00,1,-1,-1,-1
    1,2,50.00,60.00,10.00,10.00,1,-1,-1,-1
    2,1,12.00,21.00,30.00,40.00,1,-1,-1,-1

The numbers are written and read as they are. MOTChallenge's own files count pixels from
1 (py-motmetrics' loader subtracts 1 from x and y of ground truth and results alike, and
SORT writes its boxes back in the coordinates it read), so keep both files in one
convention and the metrics do not change.

``to_mot_lines`` writes the per-frame ``(ids, boxes)`` that ``Tracker.update`` returns and
``mot_metrics`` reads; ``from_mot_lines`` reads them back (ground-truth files, whose
columns 8-9 are class and visibility, too: only the first seven are read).
Tested in tests/tracking/test_motchallenge.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import torch
from torch import Tensor

from coursekit.validators import check_frames, describe, positive_int

__all__ = ["from_mot_lines", "to_mot_lines"]


def _fmt(value: float, decimals: int | None) -> str:
    return repr(float(value)) if decimals is None else f"{value:.{decimals}f}"


def to_mot_lines(frames: Sequence, first_frame: int = 1, decimals: int | None = 2) -> list[str]:
    """MOTChallenge lines for one ``(ids, boxes)`` or ``(ids, boxes, scores)`` per frame.

    Args:
        frames: as ``mot_metrics``' ``pred``; boxes (x1, y1, x2, y2).
        first_frame: number of the first frame (MOTChallenge counts from 1).
        decimals: digits after the point (SORT writes 2); None writes each float in
            full (``repr``), so that reading the lines back gives the same numbers.

    Returns:
        list of str without newlines, frame by frame, boxes in the given order; the
        confidence is the score, or 1 without scores.
    """
    pairs = check_frames(frames, "frames")
    first_frame = positive_int(first_frame, "first_frame", minimum=0)
    if decimals is not None:
        decimals = positive_int(decimals, "decimals", minimum=0)
    lines = []
    for f, ((ids, boxes), frame) in enumerate(zip(pairs, frames, strict=True)):
        if len(frame) == 3:  # scores, checked by check_frames
            confs = [_fmt(s, decimals) for s in frame[2].tolist()]
        else:
            confs = ["1"] * ids.shape[0]
        for i, (x1, y1, x2, y2), conf in zip(ids.tolist(), boxes.tolist(), confs,
                                             strict=True):
            xywh = ",".join(_fmt(v, decimals) for v in (x1, y1, x2 - x1, y2 - y1))
            lines.append(f"{first_frame + f},{i},{xywh},{conf},-1,-1,-1")
    return lines


def from_mot_lines(lines: str | Iterable[str], num_frames: int | None = None,
                   first_frame: int = 1, with_scores: bool = False,
                   dtype: torch.dtype = torch.float32) -> list[tuple[Tensor, ...]]:
    """Per-frame ``(ids, boxes)`` (``(ids, boxes, scores)`` if ``with_scores``) from lines.

    Args:
        lines: the file's text, or its lines (blank lines are skipped).
        num_frames: frames to return (default: up to the last frame named); frames
            without a line are empty (``Tensor[0]``, ``Tensor[0, 4]``).
        first_frame: the number of the first frame.
        with_scores: also return the 7th column (conf; 1 when absent).
        dtype: of boxes and scores.

    Returns:
        list with one tuple per frame; ids int64, boxes (x1, y1, x2, y2).
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    first_frame = positive_int(first_frame, "first_frame", minimum=0)
    rows: dict[int, list[tuple[int, list[float], float]]] = {}
    last = first_frame - 1
    for n, line in enumerate(lines, start=1):
        if not isinstance(line, str):
            raise TypeError(f"lines must be str, got {describe(line)} on line {n}")
        if not line.strip():
            continue
        cols = [c.strip() for c in line.split(",")]
        try:
            if len(cols) < 6:
                raise ValueError
            frame, ident = int(float(cols[0])), int(float(cols[1]))
            x, y, w, h = (float(c) for c in cols[2:6])
            conf = float(cols[6]) if len(cols) > 6 else 1.0
        except ValueError:
            raise ValueError(f"lines: line {n} must be 'frame,id,x,y,w,h[,conf,...]' with "
                             f"numbers, got {line!r}") from None
        if frame < first_frame:
            raise ValueError(f"lines: line {n} names frame {frame}, before first_frame = "
                             f"{first_frame}")
        rows.setdefault(frame, []).append((ident, [x, y, x + w, y + h], conf))
        last = max(last, frame)
    count = last - first_frame + 1 if num_frames is None else \
        positive_int(num_frames, "num_frames", minimum=0)
    out = []
    for f in range(first_frame, first_frame + count):
        r = rows.get(f, [])
        ids = torch.tensor([i for i, _, _ in r], dtype=torch.long)
        boxes = torch.tensor([b for _, b, _ in r], dtype=dtype).reshape(-1, 4)
        scores = torch.tensor([c for _, _, c in r], dtype=dtype)
        out.append((ids, boxes, scores) if with_scores else (ids, boxes))
    return out
