"""Property tests (hypothesis) for coursekit.sam, the rest of its ops: the box around a mask,
the clean-up of small holes and islands, and SAM's training loss.

Drawn: batches of masks (0 and leading dims included), image sides (1 included), masks empty,
full and scattered, area thresholds (0 included), output-mask counts, logits and IoU
predictions, hard and soft ground truth; dtypes. References: segment-anything 1.0
(``utils.amg.batched_mask_to_box``), 8-connected components found by a flood fill written
out here (segment-anything's ``remove_small_regions`` needs OpenCV), the loss's parts
(``sigmoid_focal_loss``, ``dice_loss``, ``mask_iou``) and the invariants: the box holds the
mask, holes only add and islands only remove pixels, the loss is >= 0 and ~0 at a perfect,
confident prediction. Checked on every device this machine has; seeded (``derandomize=True``).
"""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds
from test_props_sam import batches
from torch.testing import assert_close

from coursekit.sam import dice_loss, mask_iou, mask_to_box, remove_small_regions, sam_loss
from coursekit.sam import sigmoid_focal_loss as focal

amg = pytest.importorskip("segment_anything.utils.amg")

sides = st.integers(1, 9)


def random_masks(seed, shape, kind):
    """bool Tensor[shape]: random with density drawn per call, or all empty / all full."""
    g = gen(seed)
    if kind in ("empty", "full"):
        return torch.full(shape, kind == "full")
    return torch.rand(shape, generator=g) < float(torch.rand(1, generator=g))


# ------------------------------------------------------------------------------ mask_to_box
@on_devices
@PROPS
@given(seed=seeds, batch=batches, hw=st.tuples(st.integers(0, 9), sides),
       kind=st.sampled_from(["random", "random", "empty", "full"]))
def test_mask_to_box_is_segment_anything_and_holds_the_mask(device, seed, batch, hw, kind):
    masks = random_masks(seed, (*batch, *hw), kind).to(device)
    box = mask_to_box(masks)
    assert box.shape == (*batch, 4) and box.dtype == torch.int64 and box.device == masks.device
    if len(batch) >= 1 and masks.numel():  # segment-anything wants [C, H, W] or more, H, W > 0
        assert torch.equal(box.cpu(), amg.batched_mask_to_box(masks.cpu()))
    H, W = hw
    ys = torch.arange(H, device=device)[:, None]
    xs = torch.arange(W, device=device)[None, :]
    b = box[..., None, None]  # (..., 4, 1, 1)
    inside = (xs >= b[..., 0, :, :]) & (xs <= b[..., 2, :, :]) \
        & (ys >= b[..., 1, :, :]) & (ys <= b[..., 3, :, :])  # (..., H, W)
    assert bool((~masks | inside).all())  # every mask pixel lies in its box
    nonempty = masks.flatten(-2).any(-1) if masks.numel() else torch.zeros(batch, dtype=bool)
    edges = masks.any(-1), masks.any(-2)  # the box is tight: its edge rows / columns are used
    for idx in torch.nonzero(nonempty.cpu()).tolist():
        x1, y1, x2, y2 = box[tuple(idx)].tolist()
        rows, cols = edges[0][tuple(idx)], edges[1][tuple(idx)]
        assert rows[y1] and rows[y2] and cols[x1] and cols[x2]
    assert bool((box[~nonempty.to(device)] == 0).all())  # empty: (0, 0, 0, 0)


# ---------------------------------------------------------------------- remove_small_regions
def components(image):
    """8-connected components of a bool ndarray-like list: a list of sets of (y, x)."""
    H, W = len(image), len(image[0]) if len(image) else 0
    seen, found = set(), []
    for y in range(H):
        for x in range(W):
            if not image[y][x] or (y, x) in seen:
                continue
            stack, part = [(y, x)], set()
            seen.add((y, x))
            while stack:
                cy, cx = stack.pop()
                part.add((cy, cx))
                for ny in range(max(cy - 1, 0), min(cy + 2, H)):
                    for nx in range(max(cx - 1, 0), min(cx + 2, W)):
                        if image[ny][nx] and (ny, nx) not in seen:
                            seen.add((ny, nx))
                            stack.append((ny, nx))
            found.append(part)
    return found


@on_devices
@PROPS
@given(seed=seeds, hw=st.tuples(st.integers(0, 8), st.integers(0, 8)),
       kind=st.sampled_from(["random", "random", "random", "empty", "full"]),
       area=st.sampled_from([0, 1, 2, 3.5, 6, 100]), mode=st.sampled_from(["holes", "islands"]))
def test_remove_small_regions_is_the_component_rule(device, seed, hw, kind, area, mode):
    mask = random_masks(seed, hw, kind).to(device)
    out, changed = remove_small_regions(mask, area, mode)
    assert out.shape == mask.shape and out.dtype == torch.bool and out.device == mask.device
    grid = mask.cpu().tolist()
    working = [[v != (mode == "holes") for v in row] for row in grid]
    parts = components(working)  # raster order, as the labelling numbers them
    small = [p for p in parts if len(p) < area]
    expected = mask.cpu().clone()
    if mode == "holes":
        for p in small:
            for y, x in p:
                expected[y, x] = True
        assert bool((out | ~mask).all())  # never removes a pixel
    elif small:
        for p in small:
            for y, x in p:
                expected[y, x] = False
        if len(small) == len(parts):  # all small: the largest (the first one) stays
            largest = max(parts, key=len)
            for y, x in largest:
                expected[y, x] = True
        assert bool((mask | ~out).all())  # never adds a pixel
    assert changed == bool(small)
    assert torch.equal(out.cpu(), expected)
    # a second pass finds nothing more to do, unless every island was small
    if mode == "holes" or len(small) < len(parts):
        assert torch.equal(remove_small_regions(out, area, mode)[0], out)


# -------------------------------------------------------------------------------- sam_loss
@on_devices
@PROPS
@given(seed=seeds, b=st.integers(1, 3), c=st.sampled_from([1, 3]), hw=st.tuples(sides, sides),
       soft=st.booleans(), kind=st.sampled_from(["random", "random", "empty", "full"]),
       dtype=floats)
def test_sam_loss_is_its_parts(device, seed, b, c, hw, soft, kind, dtype):
    g = gen(seed)
    logits = (torch.randn(b, c, *hw, generator=g, dtype=F64) * 3).to(device, dtype)
    iou_pred = torch.rand(b, c, generator=g, dtype=F64).to(device, dtype)
    gt = random_masks(seed, (b, *hw), kind).to(device)
    if soft:
        gt = (gt.to(F64) * torch.rand(b, *hw, generator=g, dtype=F64).to(device)).to(dtype)
    out = sam_loss(logits, iou_pred, gt)
    for value in (out.loss, out.mask_loss, out.iou_loss):
        assert value.shape == () and value.dtype == dtype and value.device == logits.device
        assert float(value) >= 0
    assert out.best.shape == (b,) and bool(((out.best >= 0) & (out.best < c)).all())
    target = gt[:, None].expand(b, c, *hw).to(dtype)
    per_mask = 20 * focal(logits, target).mean((-2, -1)) + dice_loss(logits, target)  # (b, c)
    assert torch.equal(out.best, per_mask.argmin(1))
    assert_close(out.mask_loss, per_mask.min(1).values.mean())
    hard = (gt if gt.dtype == torch.bool else gt >= 0.5)[:, None].expand(b, c, *hw)
    real = mask_iou(logits > 0, hard, dtype=dtype)
    assert_close(out.iou_loss, ((iou_pred - real) ** 2).mean())
    assert_close(out.loss, out.mask_loss + out.iou_loss)


@PROPS
@given(seed=seeds, b=st.integers(1, 3), c=st.sampled_from([1, 3]), hw=st.tuples(sides, sides),
       dtype=floats)
def test_sam_loss_is_zero_at_a_perfect_prediction(seed, b, c, hw, dtype):
    gt = random_masks(seed, (b, *hw), "random")
    logits = (gt[:, None].expand(b, c, *hw).to(dtype) * 2 - 1) * 50  # certain and right
    out = sam_loss(logits, torch.ones(b, c, dtype=dtype), gt, dice_weight=0.0)
    assert float(out.loss) == pytest.approx(0, abs=1e-6)  # dice's +1 smoothing: weight 0
    assert float(out.iou_loss) == 0
    wrong = sam_loss(-logits, torch.ones(b, c, dtype=dtype), gt, dice_weight=0.0)
    assert float(wrong.loss) > 1  # certain and wrong everywhere
