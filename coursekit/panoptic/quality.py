"""Panoptic quality: PQ = SQ × RQ, per category, then averaged over All / Things / Stuff.

Lecture (Kirillov et al., *Panoptic Segmentation*, CVPR 2019). A predicted segment and a
ground-truth segment of the **same category** match when their IoU is **> 0.5**; segments
of one image do not overlap, so such a match is unique. Per category, with the matched
pairs TP, the unmatched predictions FP and the unmatched ground truths FN::

    PQ = sum_{(p, g) in TP} IoU(p, g) / (|TP| + |FP| / 2 + |FN| / 2)
       = [sum IoU / |TP|]  ×  [|TP| / (|TP| + |FP| / 2 + |FN| / 2)]
       =        SQ (segmentation quality)  ×  RQ (recognition quality, an F1 score)

PQ is averaged over the categories that appear (TP + FP + FN > 0): ``n`` of them.
Two special regions, as in COCO:

* **void** pixels (id ``void_id`` in either map) are not part of any segment: the IoU of a
  pair leaves out the prediction's pixels that fall on ground-truth void;
* **crowd** ground-truth segments (``iscrowd = 1``) match nothing and are not FN; an
  unmatched prediction that lies mostly (> 0.5 of its area) on void plus the crowd region
  of its own category is not an FP.

Vectorised: every pixel of every image becomes one (gt segment, predicted segment) pair,
and one ``torch.bincount`` over the pairs of a whole batch of images gives every
intersection at once, in a table with one row per gt segment (and one void row per image)
and one column per predicted segment of that row's image (and a void column). Areas are
the table's row and column sums, IoUs come from the table, and the per-category TP / FP /
FN / IoU sums are ``bincount`` s again: no loop over pixels, pairs or segments.

Same semantics as panopticapi's ``pq_compute`` (PQ reported in [0, 1], not in percent),
whose loops are written out in ``panoptic_quality_loop`` (quality_loop.py); ``PQStat``
(pq_stat.py) accumulates the counts over images. Tested in tests/panoptic/test_quality.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence

import torch
from torch import Tensor

from coursekit.panoptic import _checks
from coursekit.panoptic.pq_stat import PQStat
from coursekit.panoptic.quality_loop import panoptic_quality_loop

__all__ = ["PQStat", "match_counts", "panoptic_quality", "panoptic_quality_loop"]

MAX_PIXELS = 1 << 22  # pixels per histogram: bounds the per-pixel temporaries of a batch
MAX_TABLE = 1 << 22  # entries of one batch's (gt segment, pred segment) table


def panoptic_quality(pred_ids: Tensor | Sequence[Tensor], pred_segments: Sequence,
                     gt_ids: Tensor | Sequence[Tensor], gt_segments: Sequence,
                     categories: Mapping[int, Mapping], void_id: int = 0) -> dict:
    """Panoptic quality PQ = SQ × RQ of a predicted panoptic segmentation.

    Args:
        pred_ids, gt_ids: integer Tensor[H, W] of segment ids (``void_id`` = no segment), or,
            for many images, Tensor[B, H, W] or a list of Tensor[H, W] (sizes may differ).
        pred_segments, gt_segments: list of ``{"id", "category_id"}`` per image (a list of
            such lists for many images); gt segments may carry ``"iscrowd"`` (default 0).
            Every non-void id in a map must be listed, and every listed pred id must appear.
        categories: ``{category_id: {"isthing": 0 or 1}}``.
        void_id: the id of unlabelled pixels in both maps (panopticapi: 0).

    Returns:
        ``{"All" / "Things" / "Stuff": {"pq", "sq", "rq", "n"}, "per_class": {category_id:
        {"pq", "sq", "rq"}}}``, values in [0, 1]; TP / FP / FN / IoU are summed per category
        over all images before averaging. Same as panopticapi's ``pq_compute``, except that a
        group with no category present gives zeros (n = 0) instead of dividing by zero.
    """
    return match_counts(pred_ids, pred_segments, gt_ids, gt_segments, categories,
                        void_id).summary(categories)


def match_counts(pred_ids: Tensor | Sequence[Tensor], pred_segments: Sequence,
                 gt_ids: Tensor | Sequence[Tensor], gt_segments: Sequence,
                 categories: Mapping[int, Mapping], void_id: int = 0) -> PQStat:
    """TP / FP / FN / summed IoU per category of one image or a batch, as a ``PQStat``."""
    kinds = _checks.check_categories(categories)
    void_id = _checks.check_void_id(void_id)
    images, batched = _checks.as_images(pred_ids, pred_segments, gt_ids, gt_segments)
    checked = [_checks.check_image(*image, kinds, void_id, b if batched else None)
               for b, image in enumerate(images)]
    cat_index = {cid: k for k, cid in enumerate(kinds)}
    counts = torch.zeros(4, len(kinds), dtype=torch.float64)  # (4, K): tp, fp, fn, sum of IoUs
    for group in _groups(checked):
        counts += _count(checked, group, cat_index, void_id, batched)
    stat = PQStat()
    for cid, (tp, fp, fn, iou) in zip(kinds, counts.T.tolist(), strict=True):
        if tp + fp + fn:
            stat.add(cid, tp=int(tp), fp=int(fp), fn=int(fn), iou=iou)
    return stat


def _groups(checked: list[tuple]) -> Iterator[list[int]]:
    """Consecutive images whose pixels and table fit MAX_PIXELS and MAX_TABLE (>= 1 image each)."""
    group: list[int] = []
    pixels = rows = cols = 0
    for b, (pred_ids, pred, _, gt) in enumerate(checked):
        p, r, c = pred_ids.numel(), rows + len(gt.ids) + 1, max(cols, len(pred.ids) + 2)
        if group and (pixels + p > MAX_PIXELS or (r + 1) * c > MAX_TABLE):
            yield group
            group, pixels, r, c = [], 0, len(gt.ids) + 1, len(pred.ids) + 2
        group.append(b)
        pixels, rows, cols = pixels + p, r, c
    yield group


def _lookup(ids: Tensor, sizes: list[int], span: int, table_ids: list[int],
            table_values: list[int], missing: int, dtype: torch.dtype) -> Tensor:
    """Per pixel, ``table_values[j]`` where its (image b, id) is ``table_ids[j] = b * span + id``,
    else ``missing``: Tensor[N] of ``dtype``.

    ``ids``: the n = len(sizes) maps flattened and joined, Tensor[N] of ids in [0, span). A
    dense look-up table of the n * span keys when that is not much more than the pixels,
    else a binary search in the sorted ``table_ids``.
    """
    n, device = len(sizes), ids.device
    keys = torch.tensor(table_ids, dtype=torch.int64, device=device)
    values = torch.tensor(table_values, dtype=dtype, device=device)
    dense = n * span <= max(2 * ids.numel(), 1 << 16)
    if dense and len(set(sizes)) == 1:  # maps of one size: image b reads row b of the table
        lut = torch.full((n, span), missing, dtype=dtype, device=device)  # (n, span)
        lut.view(-1)[keys] = values
        return lut.gather(1, ids.view(n, sizes[0])).view(-1)  # (n, H * W) -> (N,)
    if n > 1:  # image b's id -> b * span + id, a key of its own
        offsets = torch.arange(0, n * span, span, device=device)  # (n,)
        ids = ids + offsets.repeat_interleave(torch.tensor(sizes, device=device),
                                              output_size=ids.numel())  # (N,)
    if dense:
        lut = torch.full((n * span,), missing, dtype=dtype, device=device)  # (n * span,)
        lut[keys] = values
        return lut.index_select(0, ids)  # a plain gather: faster than lut[ids] on the CPU
    keys, order = torch.sort(keys)
    pos = torch.searchsorted(keys, ids).clamp_(max=len(table_ids) - 1)  # (N,)
    return torch.where(keys[pos] == ids, values[order][pos], missing)


def _count(checked: list[tuple], group: list[int], cat_index: dict[int, int], void_id: int,
           batched: bool) -> Tensor:
    """Tensor[4, K] float64: TP, FP, FN and the sum of matched IoUs per category, for ``group``."""
    def explain() -> None:  # the histogram found a bad id: say which image and which id
        for b in group:
            _checks.check_values(*checked[b], void_id, b if batched else None)
        raise AssertionError("panoptic_quality: a bad segment id was found, then not")

    device = checked[group[0]][2].device
    preds = [checked[b][1] for b in group]
    gts = [checked[b][3] for b in group]
    pred_flat = torch.cat([checked[b][0].to(device).reshape(-1) for b in group]).long()  # (N,)
    gt_flat = torch.cat([checked[b][2].to(device).reshape(-1) for b in group]).long()  # (N,)
    lo = hi = 0
    if pred_flat.numel():
        lo_p, hi_p, lo_g, hi_g = torch.stack([*pred_flat.aminmax(), *gt_flat.aminmax()]).tolist()
        lo, hi = min(lo_p, lo_g), max(hi_p, hi_g)
    if lo < 0:
        explain()
    span = max(hi, void_id, *(i for s in preds + gts for i in s.ids)) + 1  # ids lie in [0, span)
    if len(group) > 1 and len(group) * span >= 1 << 62:  # keys b * span + id would overflow
        return sum(_count(checked, [b], cat_index, void_id, batched) for b in group)
    sizes = [checked[b][0].numel() for b in group]
    inter = _intersections(pred_flat, gt_flat, sizes, preds, gts, void_id, span, explain)
    return _tally(inter, preds, gts, cat_index, void_id, explain)


def _intersections(pred_flat: Tensor, gt_flat: Tensor, sizes: list[int], preds: list, gts: list,
                   void_id: int, span: int, explain: Callable) -> Tensor:
    """The joint histogram of a group of n images: Tensor[R', P + 1] int64, on the CPU.

    Rows: image b's gt segments in their listed order, then its void row (R' rows in all).
    Columns: the predicted segments of the row's image in their listed order (P at most),
    then void. ``pred_flat``, ``gt_flat``: the n maps flattened and joined, Tensor[N].
    """
    P = max(len(s.ids) for s in preds)
    C = P + 2  # column P + 1: a pred id that pred_segments does not list
    R = sum(len(s.ids) + 1 for s in gts) + 1  # the last row: a gt id not listed
    p_keys = [b * span + i for b, s in enumerate(preds) for i in (*s.ids, void_id)]
    p_cols = [c for s in preds for c in (*range(len(s.ids)), P)]
    g_keys = [b * span + i for b, s in enumerate(gts) for i in (*s.ids, void_id)]
    g_rows = list(range(0, (R - 1) * C, C))  # row r -> r * C: a pair's bin is then row + col
    dtype = torch.int32 if R * C < 1 << 31 else torch.int64  # bins: int32 halves the traffic
    col = _lookup(pred_flat, sizes, span, p_keys, p_cols, C - 1, dtype)  # (N,) in [0, C)
    row = _lookup(gt_flat, sizes, span, g_keys, g_rows, (R - 1) * C, dtype)  # (N,) row * C
    joint = torch.bincount(row.add_(col), minlength=R * C).view(R, C).cpu()  # (R, C)
    if bool(joint[R - 1].any()) or bool(joint[:, C - 1].any()):
        explain()  # an id that its list does not hold
    return joint[:R - 1, :C - 1]


def _tally(inter: Tensor, preds: list, gts: list, cat_index: dict[int, int], void_id: int,
           explain: Callable) -> Tensor:
    """TP, FP, FN and summed IoU per category from the joint histogram: Tensor[4, K] float64.

    Everything here is one entry per row, per column or per (row, column) of ``inter``
    (Tensor[R', P + 1]): small, on the CPU.
    """
    n, K, P = len(preds), len(cat_index), inter.shape[1] - 1
    row_img = torch.repeat_interleave(torch.arange(n), torch.tensor([len(s.ids) + 1 for s in gts]))
    void_rows = torch.tensor([len(s.ids) + 1 for s in gts]).cumsum(0) - 1  # (n,)
    g_id = torch.tensor([i for s in gts for i in (*s.ids, void_id)])  # (R',)
    g_cat = torch.tensor([c for s in gts for c in (*(cat_index[i] for i in s.category_ids), -1)])
    g_crowd = torch.tensor([c == 1 for s in gts for c in (*s.iscrowd, 0)])  # (R',)
    p_cat = torch.tensor([[cat_index[c] for c in s.category_ids] + [-2] * (P + 1 - len(s.ids))
                          for s in preds]).view(n, P + 1)  # (n, P + 1); -2: no segment

    p_area = torch.zeros(n, P + 1, dtype=torch.int64).index_add_(0, row_img, inter)  # (n, P + 1)
    if bool(((p_cat >= 0) & (p_area == 0)).any()):
        explain()  # a listed prediction with no pixel
    on_void = inter[void_rows]  # (n, P + 1) prediction pixels on ground-truth void
    g_area = inter.sum(1)  # (R',)
    union = p_area[row_img] + g_area[:, None] - inter - on_void[row_img]  # (R', P + 1)
    same = (g_cat[:, None] == p_cat[row_img]) & ~g_crowd[:, None]  # (R', P + 1)
    match = same & (2 * inter > union)  # IoU > 0.5: at most one per row and per column
    rows, cols = match.nonzero(as_tuple=True)
    for key in (g_id, row_img):  # matches by image, then gt id: the order of panopticapi's sum
        order = torch.argsort(key[rows], stable=True)
        rows, cols = rows[order], cols[order]
    iou = inter[rows, cols].double() / union[rows, cols].double()  # (TP,)
    tp_cat = g_cat[rows]
    g_matched = torch.zeros(len(g_cat), dtype=torch.bool)
    g_matched[rows] = True
    p_matched = torch.zeros(n, P + 1, dtype=torch.bool)
    p_matched[row_img[rows], cols] = True
    fn_cat = g_cat[~g_matched & ~g_crowd & (g_cat >= 0)]

    # an unmatched prediction is ignored when most of it lies on void plus the crowd region
    # of its own category (the last crowd segment listed, as panopticapi's dict keeps it)
    crowd_rows = g_crowd.nonzero().flatten()
    crowd_of = torch.full((n * K,), -1, dtype=torch.int64).scatter_reduce_(
        0, row_img[crowd_rows] * K + g_cat[crowd_rows], crowd_rows, "amax")  # (n * K,)
    crowd_row = crowd_of[torch.arange(n)[:, None] * K + p_cat.clamp(min=0)]  # (n, P + 1)
    on_crowd = torch.where(crowd_row >= 0, inter[crowd_row.clamp(min=0), torch.arange(P + 1)], 0)
    ignored = 2 * (on_void + on_crowd) > p_area  # (n, P + 1)
    fp_cat = p_cat[(p_cat >= 0) & ~p_matched & ~ignored]

    return torch.stack([torch.bincount(tp_cat, minlength=K).double(),
                        torch.bincount(fp_cat, minlength=K).double(),
                        torch.bincount(fn_cat, minlength=K).double(),
                        torch.bincount(tp_cat, weights=iou, minlength=K).double()])  # (4, K)
