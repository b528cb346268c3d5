"""Property tests (hypothesis) for coursekit.detection: every public op against torchvision.

Boxes are drawn with integer or real corners, some of zero width or height, some duplicated,
some partly outside the image; scores with ties. Checked on every device this machine has:
equal to ``torchvision.ops`` (NMS indices exactly), output shape / dtype / device following
the input, empty inputs giving empty outputs, and the invariants of the definitions (IoU
symmetric, a box's IoU with itself 1, NMS a score-sorted subset whose kept boxes do not
overlap, encode then decode gives the box back). Seeded (``derandomize=True``).
"""

import math

import pytest
import torch
import torchvision.ops as tv
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, on_devices, seeds
from torch.testing import assert_close
from torchvision.models.detection._utils import BoxCoder
from torchvision.models.detection.anchor_utils import AnchorGenerator
from torchvision.models.detection.image_list import ImageList

from coursekit.detection import (
    anchors_for_image,
    batched_nms,
    box_area,
    box_iou,
    clip_boxes_to_image,
    decode_boxes,
    encode_boxes,
    generate_anchors,
    grid_anchors,
    nms,
    nms_loop,
    remove_small_boxes,
    roi_align,
    roi_align_loop,
    roi_pool,
)

REDUCED = [torch.float16, torch.bfloat16]
counts = st.integers(0, 12)  # 0: the empty case
thresholds = st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0])


def random_boxes(seed, n, dtype=F64, device="cpu", integer=False, low=0.0, span=20.0,
                 size=10.0):
    """Tensor[n, 4] xyxy: corners in [low, low + span), sides in [0, size); about one box in
    five has zero width or height and one in five repeats an earlier box."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=F64) * span + low
    wh = torch.rand(n, 2, generator=g, dtype=F64) * size
    if integer:
        xy, wh = xy.floor(), wh.floor()
    wh[torch.rand(n, 2, generator=g) < 0.1] = 0  # degenerate: zero width or height
    boxes = torch.cat([xy, xy + wh], 1)
    if n > 1:
        repeat = torch.rand(n, generator=g) < 0.2  # exact duplicates of box 0
        boxes[repeat] = boxes[0].clone()
    return boxes.to(device=device, dtype=dtype)


def random_scores(seed, n, device="cpu", dtype=F64, ties=False):
    g = torch.Generator().manual_seed(seed + 7)
    scores = torch.randint(0, 4, (n,), generator=g).to(F64) if ties else \
        torch.rand(n, generator=g, dtype=F64)
    return scores.to(device=device, dtype=dtype)


boxes_kinds = st.fixed_dictionaries({"integer": st.booleans(),
                                     "low": st.sampled_from([0.0, -15.0])})


# ------------------------------------------------------------------------------ area and IoU
@on_devices
@PROPS
@given(seed=seeds, n=counts, m=counts, kind=boxes_kinds,
       dtype=st.sampled_from([torch.float32, F64, torch.int64]))
def test_box_area_and_iou_are_torchvision(device, seed, n, m, kind, dtype):
    b1 = random_boxes(seed, n, dtype, device, **kind)
    b2 = random_boxes(seed + 1, m, dtype, device, **kind)
    area = box_area(b1)
    assert area.shape == (n,) and area.device == b1.device
    assert_close(area, tv.box_area(b1))
    iou = box_iou(b1, b2)
    ref = tv.box_iou(b1, b2)
    assert iou.shape == (n, m) and iou.dtype == ref.dtype and iou.device == b1.device
    assert_close(iou, ref, equal_nan=True)  # two empty boxes: 0 / 0 in both


@on_devices
@PROPS
@given(seed=seeds, n=counts, m=counts, kind=boxes_kinds,
       dtype=st.sampled_from([torch.float32, F64, *REDUCED]))
def test_box_iou_invariants(device, seed, n, m, kind, dtype):
    b1 = random_boxes(seed, n, dtype, device, **kind)
    b2 = random_boxes(seed + 1, m, dtype, device, **kind)
    iou = box_iou(b1, b2)
    assert iou.dtype == torch.promote_types(dtype, torch.float32)  # float32 for half boxes
    assert_close(iou, box_iou(b2, b1).t(), equal_nan=True, rtol=0, atol=0)  # symmetric
    real = iou[~iou.isnan()]
    assert bool(((real >= 0) & (real <= 1)).all())
    # NaN only for two empty boxes
    empty1, empty2 = box_area(b1) == 0, box_area(b2) == 0
    assert torch.equal(iou.isnan(), empty1[:, None] & empty2[None, :])
    # a box with itself: 1 unless it is empty
    self_iou = box_iou(b1, b1).diagonal()
    assert bool((self_iou[~empty1] == 1).all()) and bool(self_iou[empty1].isnan().all())
    # half precision: the float32 IoU of the same (rounded) values
    if dtype in REDUCED:
        assert_close(iou, tv.box_iou(b1.float(), b2.float()), equal_nan=True, rtol=0, atol=0)


# ------------------------------------------------------------------------------------- NMS
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 40), kind=boxes_kinds, threshold=thresholds,
       ties=st.booleans(), dtype=st.sampled_from([torch.float32, F64, *REDUCED]))
def test_nms_is_torchvision_and_greedy(device, seed, n, kind, threshold, ties, dtype):
    boxes = random_boxes(seed, n, dtype, device, **kind)
    scores = random_scores(seed, n, device, dtype, ties)
    keep = nms(boxes, scores, threshold)
    assert keep.dtype == torch.int64 and keep.device == boxes.device and keep.dim() == 1
    # the reference: torchvision on the CPU (a stable sort: ties in input order), in float32
    # for half precision (its CPU kernel has none; we compute IoU in float32 too)
    work = torch.promote_types(dtype, torch.float32)
    expected = tv.nms(boxes.cpu().to(work), scores.cpu().to(work), threshold)
    assert torch.equal(keep.cpu(), expected)  # order and ties included
    assert torch.equal(nms_loop(boxes, scores, threshold), keep)
    # a subset, each index once, by decreasing score
    assert len(set(keep.tolist())) == len(keep) and bool(((keep >= 0) & (keep < n)).all())
    assert bool((scores[keep][1:] <= scores[keep][:-1]).all())
    # kept boxes do not overlap each other; every dropped box overlaps a kept one before it
    iou = box_iou(boxes, boxes)
    kept_iou = iou[keep][:, keep].triu(1)
    assert not bool((kept_iou > threshold).any())
    dropped = torch.ones(n, dtype=torch.bool, device=boxes.device)
    dropped[keep] = False
    position = torch.full((n,), n, device=boxes.device)
    position[torch.sort(scores, descending=True, stable=True).indices] = torch.arange(
        n, device=boxes.device)  # rank of each box in the greedy order
    for j in torch.nonzero(dropped).flatten().tolist():
        before = keep[position[keep] < position[j]]
        assert bool((iou[before, j] > threshold).any()), j


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 30), classes=st.integers(1, 4), threshold=thresholds,
       integer=st.booleans(), ties=st.booleans())
def test_batched_nms_is_torchvision_and_per_class(device, seed, n, classes, threshold, integer,
                                                   ties):
    boxes = random_boxes(seed, n, F64, device, integer=integer)
    scores = random_scores(seed, n, device, ties=ties)
    idxs = torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(seed)).to(device)
    keep = batched_nms(boxes, scores, idxs, threshold)
    assert keep.dtype == torch.int64 and keep.device == boxes.device
    assert torch.equal(keep.cpu(), tv.batched_nms(boxes.cpu(), scores.cpu(), idxs.cpu(), threshold))
    # boxes of different classes never suppress each other: one NMS per class, merged
    per_class = set()
    for c in range(classes):
        members = torch.nonzero(idxs == c).flatten()
        per_class |= set(members[nms(boxes[members], scores[members], threshold)].tolist())
    assert set(keep.tolist()) == per_class


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(1, 30), classes=st.integers(2, 4), threshold=thresholds)
def test_batched_nms_classes_never_suppress_each_other_negative_coordinates(device, seed, n,
                                                                            classes, threshold):
    # boxes left of / above the image (negative corners, as before clipping), small ones
    boxes = random_boxes(seed, n, F64, device, integer=True, low=-30.0, span=34.0, size=4.0)
    scores = random_scores(seed, n, device)
    idxs = torch.randint(0, classes, (n,), generator=torch.Generator().manual_seed(seed)).to(device)
    keep = batched_nms(boxes, scores, idxs, threshold)
    per_class = set()
    for c in range(classes):
        members = torch.nonzero(idxs == c).flatten()
        per_class |= set(members[nms(boxes[members], scores[members], threshold)].tolist())
    assert set(keep.tolist()) == per_class


# ------------------------------------------------------------------- clipping, small boxes
@on_devices
@PROPS
@given(seed=seeds, n=counts, size=st.tuples(st.integers(1, 30), st.integers(1, 30)),
       real_size=st.booleans(), min_size=st.sampled_from([0.0, 1.0, 2.5, 5.0]),
       dtype=st.sampled_from([torch.float32, F64, torch.int64, torch.int32]))
def test_clip_and_remove_small_are_torchvision(device, seed, n, size, real_size, min_size, dtype):
    boxes = random_boxes(seed, n, dtype, device, integer=True, low=-15.0, span=45.0)
    if real_size:  # (12.5, 30.5): integer boxes become floating point, as in torchvision
        size = (size[0] + 0.5, size[1] + 0.5)
    clipped = clip_boxes_to_image(boxes, size)
    ref = tv.clip_boxes_to_image(boxes, size)
    assert clipped.shape == boxes.shape and clipped.device == boxes.device
    assert clipped.dtype == ref.dtype and (real_size or clipped.dtype == dtype)
    assert torch.equal(clipped, ref)
    assert torch.equal(clip_boxes_to_image(clipped, size), clipped)  # idempotent
    assert torch.equal(remove_small_boxes(boxes, min_size), tv.remove_small_boxes(boxes, min_size))


# ------------------------------------------------------------------------ box coding
weights_st = st.sampled_from([(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0), (2.0, 3.0, 0.5, 4.0)])


def positive_boxes(seed, n, device, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=F64) * 100 - 20
    return torch.cat([xy, xy + torch.rand(n, 2, generator=g, dtype=F64) * 40 + 0.5],
                     1).to(device, dtype)


@on_devices
@PROPS
@given(seed=seeds, n=counts, k=st.integers(1, 3), weights=weights_st,
       dtype=st.sampled_from([torch.float32, F64, *REDUCED]))
def test_encode_decode_are_torchvision_box_coder(device, seed, n, k, weights, dtype):
    gt, proposals = positive_boxes(seed, n, device, dtype), positive_boxes(seed + 1, n, device,
                                                                           dtype)
    coder = BoxCoder(weights)
    work = torch.promote_types(dtype, torch.float32)  # half precision is computed in float32
    codes = encode_boxes(gt, proposals, weights)
    assert codes.shape == (n, 4) and codes.dtype == dtype and codes.device == gt.device
    ref = coder.encode_single(gt.to(work), proposals.to(work)).to(dtype)
    assert_close(codes, ref)
    rel = (torch.randn(n, 4 * k, generator=torch.Generator().manual_seed(seed), dtype=F64)
           .to(device, dtype))
    out = decode_boxes(rel, proposals, weights)
    assert out.shape == (n, 4 * k) and out.dtype == dtype and out.device == gt.device
    assert_close(out, coder.decode_single(rel.to(work), proposals.to(work)).to(dtype))


@on_devices
@PROPS
@given(seed=seeds, n=counts, weights=weights_st)
def test_decode_inverts_encode(device, seed, n, weights):
    gt, proposals = positive_boxes(seed, n, device), positive_boxes(seed + 1, n, device)
    codes = encode_boxes(gt, proposals, weights)
    # sizes within a factor 81 of each other: |log ratio| < log(1000 / 16), no clipping
    assert_close(decode_boxes(codes, proposals, weights), gt)
    assert_close(encode_boxes(proposals, proposals, weights), torch.zeros_like(proposals))


# -------------------------------------------------------------------------------- anchors
scales_st = st.lists(st.sampled_from([8.0, 16.0, 24.0, 32.0, 45.0, 64.0]), min_size=1,
                     max_size=3, unique=True)
ratios_st = st.lists(st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0, 3.0]), min_size=1, max_size=3,
                     unique=True)


@on_devices
@PROPS
@given(scales=scales_st, ratios=ratios_st, dtype=st.sampled_from([torch.float32, F64]))
def test_generate_anchors_is_torchvision(device, scales, ratios, dtype):
    ours = generate_anchors(scales, ratios, dtype=dtype, device=device)
    ref = AnchorGenerator().generate_anchors(scales, ratios, dtype=dtype,
                                             device=torch.device(device))
    assert ours.shape == (len(scales) * len(ratios), 4) and ours.dtype == dtype
    assert ours.device.type == torch.device(device).type
    assert torch.equal(ours, ref)


@on_devices
@PROPS
@given(feature=st.tuples(st.integers(0, 5), st.integers(0, 5)),
       stride=st.tuples(st.integers(1, 16), st.integers(1, 16)), scales=scales_st,
       ratios=ratios_st, dtype=st.sampled_from([torch.float32, F64, *REDUCED]))
def test_grid_anchors_layout(device, feature, stride, scales, ratios, dtype):
    cell = generate_anchors(scales, ratios, dtype=dtype, device=device)
    out = grid_anchors(feature, stride, cell)
    H, W = feature
    A = len(cell)
    assert out.shape == (H * W * A, 4) and out.dtype == dtype and out.device == cell.device
    y, x = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    shift = torch.stack([x * stride[1], y * stride[0]] * 2, -1).reshape(-1, 1, 4)  # (H W, 1, 4)
    expected = (shift.to(F64) + cell.cpu().to(F64)).reshape(-1, 4)  # row (y W + x) A + a
    assert_close(out.cpu().to(F64), expected.to(dtype).to(F64), rtol=0, atol=0)


@on_devices
@PROPS
@given(image=st.tuples(st.integers(8, 64), st.integers(8, 64)),
       levels=st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6), scales_st, ratios_st),
                       min_size=1, max_size=3),
       dtype=st.sampled_from([torch.float32, F64]))
def test_anchors_for_image_is_torchvision_anchor_generator(device, image, levels, dtype):
    feature_sizes = [(h, w) for h, w, _, _ in levels]
    sizes = tuple(tuple(s) for _, _, s, _ in levels)
    ratios = tuple(tuple(r) for _, _, _, r in levels)
    ours = anchors_for_image(image, feature_sizes, sizes, ratios, dtype=dtype, device=device)
    images = ImageList(torch.zeros(1, 3, *image, dtype=dtype, device=device), [image])
    features = [torch.zeros(1, 1, h, w, dtype=dtype, device=device) for h, w in feature_sizes]
    ref = AnchorGenerator(sizes, ratios)(images, features)[0]
    assert ours.dtype == dtype and ours.device.type == torch.device(device).type
    assert torch.equal(ours, ref)


# -------------------------------------------------------------------- RoI Align, RoI Pool
def random_rois(seed, k, n, h, w, device, dtype=F64):
    """Tensor[k, 5] (batch index, box): boxes around and partly outside an h x w map, some
    empty, some reversed-free (x2 >= x1)."""
    g = torch.Generator().manual_seed(seed)
    boxes = random_boxes(seed, k, F64, "cpu", low=-3.0, span=max(h, w) + 3.0, size=8.0)
    index = torch.randint(0, n, (k, 1), generator=g).to(F64)
    return torch.cat([index, boxes], 1).to(device, dtype)


roi_args = dict(seed=seeds, n=st.integers(1, 2), c=st.integers(0, 3), h=st.integers(1, 7),
                w=st.integers(1, 7), k=st.integers(0, 6),
                out=st.tuples(st.integers(1, 4), st.integers(1, 4)),
                scale=st.sampled_from([1.0, 0.5, 0.25, 2.0]))


@on_devices
@PROPS
@given(**roi_args, sampling=st.integers(-1, 3), aligned=st.booleans())
def test_roi_align_is_torchvision(device, seed, n, c, h, w, k, out, scale, sampling, aligned):
    x = torch.randn(n, c, h, w, dtype=F64, generator=torch.Generator().manual_seed(seed))
    x = x.to(device)
    rois = random_rois(seed, k, n, h / scale, w / scale, device)
    ours = roi_align(x, rois, out, scale, sampling, aligned)
    assert ours.shape == (k, c, *out) and ours.dtype == x.dtype and ours.device == x.device
    assert_close(ours, tv.roi_align(x, rois, out, scale, sampling, aligned))
    if k and c:
        assert_close(roi_align_loop(x, rois, out, scale, sampling, aligned), ours)
    # the list form: one Tensor[L, 4] per image, in image order
    order = torch.argsort(rois[:, 0], stable=True)
    as_list = [rois[rois[:, 0] == i, 1:] for i in range(n)]
    assert_close(roi_align(x, as_list, out, scale, sampling, aligned), ours[order])


@on_devices
@PROPS
@given(**roi_args, sampling=st.integers(-1, 2), aligned=st.booleans(),
       dtype=st.sampled_from(REDUCED))
def test_roi_align_reduced_precision(device, seed, n, c, h, w, k, out, scale, sampling, aligned,
                                     dtype):
    # computed in float32 from the rounded inputs, rounded once: within an ulp of torchvision
    # in float32 (its CPU kernel has no bfloat16)
    x = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed)).to(device, dtype)
    rois = random_rois(seed, k, n, h / scale, w / scale, device, torch.float32)
    ours = roi_align(x, rois, out, scale, sampling, aligned)
    assert ours.dtype == dtype and ours.shape == (k, c, *out)
    ref = tv.roi_align(x.float(), rois, out, scale, sampling, aligned)
    eps = torch.finfo(dtype).eps
    assert_close(ours.float(), ref, rtol=eps, atol=1e-5)


@on_devices
@PROPS
@given(**roi_args, dtype=st.sampled_from([torch.float32, F64]))
def test_roi_pool_is_torchvision(device, seed, n, c, h, w, k, out, scale, dtype):
    x = torch.randn(n, c, h, w, generator=torch.Generator().manual_seed(seed)).to(device, dtype)
    rois = random_rois(seed, k, n, h / scale, w / scale, device, dtype)
    ours = roi_pool(x, rois, out, scale)
    assert ours.shape == (k, c, *out) and ours.dtype == dtype and ours.device == x.device
    assert torch.equal(ours, tv.roi_pool(x, rois, out, scale))


@PROPS
@given(seed=seeds, scale=st.sampled_from([0.0, -1.0, math.inf, math.nan]))
def test_roi_ops_refuse_a_bad_spatial_scale(seed, scale):
    x = torch.randn(1, 2, 4, 4)
    rois = random_rois(seed, 3, 1, 4, 4, "cpu", torch.float32)
    for fn in (roi_align, roi_pool):
        with pytest.raises(ValueError, match="spatial_scale must be a positive number"):
            fn(x, rois, 2, scale)


# ------------------------------------- the two bugs these properties found, by hand
def test_batched_nms_negative_coordinates_by_hand():
    # class 1's only box (-6, -6, -5, -5) shifted by torchvision's max + 1 = 6 lands exactly on
    # class 0's box (0, 0, 1, 1) and was suppressed by it; with span max - min + 1 it is kept
    boxes = torch.tensor([[0.0, 0, 1, 1], [-6, -6, -5, -5], [4, 4, 5, 5]])
    scores, idxs = torch.tensor([0.9, 0.8, 0.1]), torch.tensor([0, 1, 0])
    assert batched_nms(boxes, scores, idxs, 0.5).tolist() == [0, 1, 2]


def test_clip_integer_boxes_stay_integer_by_hand():
    boxes = torch.tensor([[-3, 2, 40, 9]])
    out = clip_boxes_to_image(boxes, (8, 30))  # (height, width)
    assert out.dtype == torch.int64 and out.tolist() == [[0, 2, 30, 8]]
