"""Property tests (hypothesis) for coursekit.pose: heatmap targets and decoding, and OKS.

Drawn: counts (0 included), boxes from sub-pixel to larger than the heatmap, keypoints in,
around and exactly on the edges of their box, some unlabelled, heatmap sizes (1 included) and
dtypes. References: torchvision's Keypoint R-CNN (``keypoints_to_heatmap``,
``heatmaps_to_keypoints``) and pycocotools' ``COCOeval.computeOks``; plus the invariants (a
pose against itself has OKS 1, a decoded one-hot heatmap lands in its cell). Checked on every
device this machine has; seeded (``derandomize=True``).
"""

import torch
from coco_reference import coco_oks
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, on_devices, seeds
from torch.testing import assert_close
from torchvision.models.detection import roi_heads as tv

from coursekit.pose import heatmaps_to_keypoints, keypoints_to_heatmap, oks


def random_rois(seed, n, device, dtype=F64, min_size=0.3, max_size=40.0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g, dtype=F64) * 100
    wh = min_size + torch.rand(n, 2, generator=g, dtype=F64) * (max_size - min_size)
    return torch.cat([xy, xy + wh], 1).to(device, dtype)  # (n, 4)


def random_keypoints(seed, rois, K):
    """Tensor[n, K, 3]: in and around each box (20 % outside), some on its edges and corners."""
    g = torch.Generator().manual_seed(seed + 1)
    r = rois.cpu().to(F64)
    n = r.shape[0]
    u = torch.rand(n, K, generator=g, dtype=F64) * 1.4 - 0.2
    v = torch.rand(n, K, generator=g, dtype=F64) * 1.4 - 0.2
    on_edge = torch.rand(n, K, 2, generator=g)
    u = torch.where(on_edge[..., 0] < 0.15, (on_edge[..., 1] < 0.5).to(F64), u)  # x = x1 or x2
    v = torch.where(on_edge[..., 1] < 0.15, (on_edge[..., 0] < 0.5).to(F64), v)  # y = y1 or y2
    x = r[:, 0, None] + u * (r[:, 2, None] - r[:, 0, None])
    y = r[:, 1, None] + v * (r[:, 3, None] - r[:, 1, None])
    x = torch.where(u == 1, r[:, 2, None], torch.where(u == 0, r[:, 0, None], x))  # exactly
    y = torch.where(v == 1, r[:, 3, None], torch.where(v == 0, r[:, 1, None], y))
    vis = torch.randint(0, 3, (n, K), generator=g).to(F64)
    return torch.stack([x, y, vis], 2).to(rois.device, rois.dtype)


# -------------------------------------------------------------------------- heatmap targets
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 8), k=st.integers(1, 17),
       size=st.sampled_from([1, 2, 3, 7, 14, 56]),
       dtype=st.sampled_from([torch.float32, F64, torch.float16, torch.bfloat16]))
def test_keypoints_to_heatmap_is_torchvision(device, seed, n, k, size, dtype):
    rois = random_rois(seed, n, device, torch.float32 if dtype != F64 else F64).to(dtype)
    rois = rois[(rois[:, 2] > rois[:, 0]) & (rois[:, 3] > rois[:, 1])]  # rounding may close one
    kps = random_keypoints(seed, rois.float() if dtype != F64 else rois, k).to(dtype)
    targets, valid = keypoints_to_heatmap(kps, rois, size)
    n = rois.shape[0]
    assert targets.shape == valid.shape == (n, k)
    assert targets.dtype == valid.dtype == torch.int64 and targets.device == kps.device
    # torchvision on the same values (in float32 for half precision: we compute in float32)
    work = torch.promote_types(dtype, torch.float32)
    ref_t, ref_v = tv.keypoints_to_heatmap(kps.to(work), rois.to(work), size)
    assert torch.equal(targets, ref_t) and torch.equal(valid, ref_v)
    assert bool(((targets >= 0) & (targets < size * size)).all())
    assert bool((targets[valid == 0] == 0).all())
    assert bool((valid[kps[..., 2] == 0] == 0).all())  # unlabelled keypoints never count


# -------------------------------------------------------------------------- decoding
@on_devices
@PROPS
@given(seed=seeds, r=st.integers(0, 4), k=st.integers(1, 5),
       hw=st.tuples(st.integers(1, 14), st.integers(1, 14)))
def test_heatmaps_to_keypoints_is_torchvision(device, seed, r, k, hw):
    # a map of height or width 1 is constant along that axis once resized: its cells tie
    # exactly, and both bicubic resizes break the tie by rounding noise (1e-15) in different
    # cells -- positions are compared for H, W >= 2, the scores (the tied value) always
    maps = torch.randn(r, k, *hw, generator=torch.Generator().manual_seed(seed), dtype=F64)
    maps = maps.to(device)
    rois = random_rois(seed, r, device, F64, max_size=30.0)
    xy, scores = heatmaps_to_keypoints(maps, rois)
    assert xy.shape == (r, k, 3) and scores.shape == (r, k)
    assert xy.dtype == scores.dtype == F64 and xy.device == maps.device
    ref_xy, ref_scores = tv.heatmaps_to_keypoints(maps, rois)  # float32 outputs
    if min(hw) >= 2:
        assert_close(xy, ref_xy.to(F64), rtol=0, atol=1e-4)  # the same cell: float32 rounding
    assert_close(scores, ref_scores.to(F64), rtol=1e-6, atol=1e-6)
    assert bool((xy[..., 2] == 1).all())
    # every keypoint lies inside its box (widened to at least one pixel)
    x1, y1 = rois[:, None, 0], rois[:, None, 1]
    x2 = torch.maximum(rois[:, None, 2], x1 + 1)
    y2 = torch.maximum(rois[:, None, 3], y1 + 1)
    assert bool(((xy[..., 0] >= x1) & (xy[..., 0] <= x2)).all())
    assert bool(((xy[..., 1] >= y1) & (xy[..., 1] <= y2)).all())


@PROPS
@given(seed=seeds, n=st.integers(1, 4), size=st.sampled_from([4, 7, 14]))
def test_one_hot_heatmap_decodes_into_its_cell(seed, n, size):
    # encode to a cell, put a peak there, decode: within one cell of the keypoint, for boxes at
    # least as large as the heatmap (a smaller box shrinks the map and may step over the peak)
    rois = random_rois(seed, n, "cpu", F64, min_size=size, max_size=3 * size)
    kps = random_keypoints(seed, rois, 5)
    kps[..., 2] = 2
    targets, valid = keypoints_to_heatmap(kps, rois, size)
    maps = torch.zeros(n, 5, size * size, dtype=F64)
    maps.scatter_(2, targets[..., None], 10.0)
    out, _ = heatmaps_to_keypoints(maps.view(n, 5, size, size), rois)
    cell = torch.stack([rois[:, 2] - rois[:, 0], rois[:, 3] - rois[:, 1]], 1) / size  # (n, 2)
    err = (out[..., :2] - kps[..., :2]).abs() / cell[:, None, :]
    assert bool((err[valid.bool()] <= 1.0).all())


# -------------------------------------------------------------------------------- OKS
def random_people(seed, G, D, K=17):
    g = torch.Generator().manual_seed(seed)
    centre = torch.rand(G, 1, 2, generator=g, dtype=F64) * 300 + 50
    gt_xy = centre + torch.randn(G, K, 2, generator=g, dtype=F64) * 30
    v = torch.randint(0, 3, (G, K), generator=g).to(F64)
    v[torch.rand(G, generator=g) < 0.2] = 0  # people with no labelled keypoint: box fallback
    gt_xy = torch.where(v[..., None] > 0, gt_xy, torch.zeros_like(gt_xy))  # COCO: v = 0 at 0, 0
    gt = torch.cat([gt_xy, v[..., None]], 2)
    lo = centre[:, 0] - 60 + torch.rand(G, 2, generator=g, dtype=F64) * 10
    boxes = torch.cat([lo, lo + 80 + torch.rand(G, 2, generator=g, dtype=F64) * 60], 1)
    area = 300 + torch.rand(G, generator=g, dtype=F64) * 8000
    if G:  # detections around random people, or anywhere when there is nobody
        around = centre[torch.randint(0, G, (D,), generator=g), 0]  # (D, 2)
    else:
        around = torch.full((D, 2), 200.0, dtype=F64)
    dt_xy = around[:, None] + torch.randn(D, K, 2, generator=g, dtype=F64) * 40
    dt = torch.cat([dt_xy, torch.rand(D, K, 1, generator=g, dtype=F64)], 2)
    return gt, dt, area, boxes


@on_devices
@PROPS
@given(seed=seeds, G=st.integers(1, 4), D=st.integers(1, 6), K=st.sampled_from([17, 5, 1]))
def test_oks_is_pycocotools(device, seed, G, D, K):
    gt, dt, area, boxes = random_people(seed, G, D, K)
    sigmas = [0.05 + 0.01 * k for k in range(K)] if K != 17 else None
    args = {} if sigmas is None else {"sigmas": sigmas}
    ours = oks(gt.to(device), dt.to(device), area.to(device), gt_boxes=boxes.to(device), **args)
    assert ours.shape == (G, D) and ours.dtype == F64 and ours.device.type == device
    assert bool(((ours >= 0) & (ours <= 1)).all())
    if sigmas is None:  # pycocotools' computeOks knows the 17 COCO sigmas only
        assert_close(ours.cpu(), coco_oks(gt, dt, area, boxes), rtol=0, atol=1e-12)


@on_devices
@PROPS
@given(seed=seeds, G=st.integers(0, 4), D=st.integers(0, 4),
       dtype=st.sampled_from([torch.float32, F64, torch.float16, torch.bfloat16]))
def test_oks_shapes_and_a_pose_against_itself(device, seed, G, D, dtype):
    gt, dt, area, boxes = random_people(seed, G, D)
    gt[..., 2] = gt[..., 2].clamp(min=1)  # every keypoint labelled: no box needed
    gt, dt = gt.to(device, dtype), dt.to(device, dtype)
    out = oks(gt, dt, area.to(device))
    assert out.shape == (G, D) and out.dtype == dtype and out.device == gt.device
    self_oks = oks(gt, gt, area.to(device)).diagonal()
    assert bool((self_oks == 1).all())  # distance 0 everywhere
