"""Property tests (hypothesis) for coursekit.instance's ``average_precision`` (one category,
one IoU threshold, COCO's 101-point interpolation).

Drawn: detection counts (0 included), scores with ties, which are true positives, which are
ignored, ground-truth counts (at least the true positives), recall grids. References: COCO's
``accumulate`` written out in numpy (stable sort by score, cumulative TP / FP, the precision
envelope, read at the first recall >= r) and the invariants: AP in [0, 1], 1 when every
ground truth is found before any false positive, 0 with no true positive, ignored detections
change nothing. Checked on every device this machine has; seeded (``derandomize=True``).
"""

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds

from coursekit.instance import average_precision


def coco_ap(scores, matched, num_gt, ignored, recall_thresholds):
    """COCOeval.accumulate for one (category, area, IoU) slice, averaged over recalls."""
    keep = ~ignored
    order = np.argsort(-scores[keep], kind="mergesort")
    tp = np.cumsum(matched[keep][order]).astype(float)
    fp = np.cumsum(~matched[keep][order]).astype(float)
    recall = tp / num_gt
    precision = tp / (tp + fp + np.spacing(1))
    for i in range(len(precision) - 1, 0, -1):  # the envelope, right to left
        precision[i - 1] = max(precision[i - 1], precision[i])
    at = np.searchsorted(recall, recall_thresholds, side="left")
    return float(np.mean([precision[i] if i < len(precision) else 0.0 for i in at]))


def random_detections(seed, d, p_tp, p_ignore, device, dtype):
    g = gen(seed)
    scores = (torch.randint(0, 6, (d,), generator=g) / 5).to(device, dtype)  # ties on purpose
    matched = (torch.rand(d, generator=g) < p_tp).to(device)
    ignored = (torch.rand(d, generator=g) < p_ignore).to(device)
    return scores, matched, ignored


recall_grids = st.sampled_from([None, [0.0, 0.5, 1.0], [0.3], list(np.linspace(0, 1, 11))])


@on_devices
@PROPS
@given(seed=seeds, d=st.integers(0, 15), p_tp=st.sampled_from([0.0, 0.5, 1.0]),
       p_ignore=st.sampled_from([0.0, 0.3]), extra_gt=st.integers(0, 4), grid=recall_grids,
       dtype=floats)
def test_average_precision_is_coco_accumulate(device, seed, d, p_tp, p_ignore, extra_gt, grid,
                                              dtype):
    scores, matched, ignored = random_detections(seed, d, p_tp, p_ignore, device, dtype)
    num_gt = int((matched & ~ignored).sum()) + extra_gt
    if num_gt == 0:
        with pytest.raises(ValueError, match="num_gt must be a positive int"):
            average_precision(scores, matched, num_gt, ignored)
        return
    kwargs = {} if grid is None else {"recall_thresholds": grid}
    ap = average_precision(scores, matched, num_gt, ignored, **kwargs)
    assert isinstance(ap, float) and 0 <= ap <= 1
    grid = np.linspace(0, 1, 101) if grid is None else np.array(grid)
    ref = coco_ap(scores.cpu().to(F64).numpy(), matched.cpu().numpy(), num_gt,
                  ignored.cpu().numpy(), grid)
    assert ap == pytest.approx(ref, abs=1e-12)
    # dropping the ignored detections changes nothing
    keep = ~ignored
    assert average_precision(scores[keep], matched[keep], num_gt, **kwargs) == pytest.approx(ap)


@PROPS
@given(seed=seeds, tp=st.integers(1, 8), fp=st.integers(0, 8))
def test_average_precision_extremes(seed, tp, fp):
    # every ground truth found, all true positives scored above all false ones: AP = 1;
    # the same detections with no true positive: AP = 0
    scores = torch.rand(tp + fp, generator=gen(seed)) + (torch.arange(tp + fp) < tp)
    matched = torch.arange(tp + fp) < tp
    assert average_precision(scores, matched, tp) == pytest.approx(1.0)  # COCO: tp / (n + eps)
    assert average_precision(scores, torch.zeros_like(matched), tp) == 0.0
    assert average_precision(scores[:0], matched[:0], tp) == 0.0  # no detection at all
    # more ground truth than found can only lower it
    assert average_precision(scores, matched, tp + 1) < 0.999
