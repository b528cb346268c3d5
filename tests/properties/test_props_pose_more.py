"""Property tests (hypothesis) for coursekit.pose, the rest of its ops: the keypoint check,
left-right flips of boxes, keypoints, images and masks, OKS between prediction dicts and the
Keypoint R-CNN loss.

Drawn: counts (0 included), keypoint counts (1 included), image sides (1 included), boxes and
keypoints in and around the image (some unlabelled), heatmap sides, RoI-to-ground-truth
matchings; dtypes. References: torchvision's ``keypointrcnn_loss``, ``oks`` (itself checked
against pycocotools in test_props_pose.py) and the invariants: a flip twice is the identity,
a flipped keypoint still lies on its pixel, a perfect heatmap costs nothing. Checked on every
device this machine has; seeded (``derandomize=True``).
"""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, on_devices, seeds
from test_props_pose import random_keypoints, random_people, random_rois
from torch.testing import assert_close
from torchvision.models.detection import roi_heads as tv

from coursekit.pose import (
    COCO_FLIP_INDEX,
    check_keypoints,
    flip_boxes,
    flip_keypoints,
    hflip,
    keypoint_similarity,
    keypointrcnn_loss,
    keypoints_to_heatmap,
    oks,
)

counts = st.integers(0, 5)


def self_inverse_permutation(seed, k):
    """A random involution of range(k): random disjoint pairs swapped, the rest fixed."""
    order = torch.randperm(k, generator=gen(seed)).tolist()
    index = list(range(k))
    for a, b in zip(order[0::2], order[1::2], strict=False):
        if (a + b) % 2:  # about half of the drawn pairs
            index[a], index[b] = b, a
    return index


def coco_conformant(kps):
    """Unlabelled keypoints (v = 0) at (0, 0), as COCO stores them."""
    return torch.where(kps[..., 2:] == 0, torch.zeros_like(kps), kps)


# ---------------------------------------------------------------------------- the check
@PROPS
@given(shape=st.lists(st.integers(0, 4), min_size=1, max_size=4), k=st.sampled_from([None, 3]),
       dtype=st.sampled_from([torch.float32, F64, torch.int64, torch.bool]))
def test_check_keypoints_accepts_exactly_n_k_3(shape, k, dtype):
    kps = torch.zeros(shape, dtype=dtype)
    good_shape = len(shape) == 3 and shape[2] == 3 and shape[1] >= 1 and k in (None, shape[1])
    if dtype == torch.bool:
        with pytest.raises(TypeError, match="keypoints must be a real Tensor"):
            check_keypoints(kps, num_keypoints=k)
    elif good_shape:
        assert check_keypoints(kps, num_keypoints=k) is kps  # returned as it came
    else:
        with pytest.raises(ValueError, match=r"kp must be Tensor\[N, .*got Tensor\["):
            check_keypoints(kps, "kp", num_keypoints=k)


# ---------------------------------------------------------------------------------- flips
@on_devices
@PROPS
@given(seed=seeds, n=counts, width=st.sampled_from([1, 7, 64.5]), dtype=floats)
def test_flip_boxes_mirrors_and_is_an_involution(device, seed, n, width, dtype):
    boxes = random_rois(seed, n, device, dtype, max_size=10.0)
    out = flip_boxes(boxes, width)
    assert out.shape == (n, 4) and out.dtype == dtype and out.device == boxes.device
    assert out is not boxes
    assert torch.equal(out[:, [1, 3]], boxes[:, [1, 3]])
    assert_close(out[:, 2] - out[:, 0], boxes[:, 2] - boxes[:, 0])  # widths kept
    assert_close(out[:, 0] + boxes[:, 2], torch.full_like(out[:, 0], width))
    assert_close(flip_boxes(out, width), boxes)


@on_devices
@PROPS
@given(seed=seeds, n=counts, k=st.integers(1, 17), width=st.sampled_from([1, 9, 120.5]),
       dtype=floats)
def test_flip_keypoints_twice_is_the_identity(device, seed, n, k, width, dtype):
    rois = random_rois(seed, n, device, dtype, max_size=20.0)
    kps = coco_conformant(random_keypoints(seed, rois, k))
    index = self_inverse_permutation(seed, k)
    out = flip_keypoints(kps, width, index)
    assert out.shape == (n, k, 3) and out.dtype == dtype and out.device == kps.device
    assert_close(flip_keypoints(out, width, index), kps)
    labelled = kps[:, index, 2] > 0  # keypoint j of the result is keypoint index[j]
    assert torch.equal(out[..., 2], kps[:, index, 2])
    assert_close(out[..., 0][labelled], (width - kps[:, index, 0])[labelled])
    assert bool((out[~labelled] == 0).all())


@on_devices
@PROPS
@given(seed=seeds, n=counts, m=counts, hw=st.tuples(st.integers(1, 9), st.integers(1, 9)),
       dtype=st.sampled_from([torch.float32, F64, torch.uint8]))
def test_hflip_is_consistent_and_an_involution(device, seed, n, m, hw, dtype):
    g = gen(seed)
    H, W = hw
    image = (torch.rand(3, H, W, generator=g) * 255).to(device, dtype)
    xy = torch.rand(n, 17, 2, generator=g, dtype=F64) * torch.tensor([W, H]) * 0.999
    v = torch.randint(0, 3, (n, 17, 1), generator=g).to(F64)
    kps = coco_conformant(torch.cat([xy, v], 2)).to(device)
    boxes = random_rois(seed, m, device, F64, max_size=5.0)
    masks = (torch.rand(m, H, W, generator=g) < 0.5).to(device)
    out = hflip(image, keypoints=kps, boxes=boxes, masks=masks)
    assert torch.equal(out.image, image.flip(-1)) and out.image.dtype == dtype
    assert torch.equal(out.masks, masks.flip(-1)) and out.boxes.shape == (m, 4)
    assert out.keypoints.shape == (n, 17, 3) and out.keypoints.device == kps.device
    # a labelled keypoint lies on the same pixel value before and after
    c = (xy[..., 0].floor().long(), xy[..., 1].floor().long())
    flipped = out.keypoints[..., :2].cpu()
    fc = (flipped[..., 0].floor().long(), flipped[..., 1].floor().long())
    for i, j in zip(*torch.nonzero(kps[..., 2].cpu() > 0, as_tuple=True), strict=True):
        before = image[:, c[1][i, j], c[0][i, j]]
        k = COCO_FLIP_INDEX[int(j)]  # keypoint j is keypoint k of the flipped pose
        after = out.image[:, fc[1][i, k], fc[0][i, k]]
        assert torch.equal(before, after)
    again = hflip(out.image, keypoints=out.keypoints, boxes=out.boxes, masks=out.masks)
    assert torch.equal(again.image, image) and torch.equal(again.masks, masks)
    assert_close(again.keypoints, kps) and assert_close(again.boxes, boxes)
    assert hflip(image).keypoints is None and hflip(image).boxes is None


# ------------------------------------------------------------------------------------ OKS
@on_devices
@PROPS
@given(seed=seeds, G=st.integers(0, 4), D=st.integers(0, 5), dtype=floats)
def test_keypoint_similarity_is_oks_transposed(device, seed, G, D, dtype):
    gt, dt, area, boxes = random_people(seed, G, D)
    gt, dt, area, boxes = (t.to(device, dtype) for t in (gt, dt, area, boxes))
    sim = keypoint_similarity({"keypoints": dt}, {"keypoints": gt, "area": area, "boxes": boxes})
    assert sim.shape == (D, G) and sim.dtype == F64 and sim.device == gt.device
    assert_close(sim, oks(gt.to(F64), dt.to(F64), area.to(F64), gt_boxes=boxes.to(F64)).T)
    assert bool(((sim >= 0) & (sim <= 1)).all())


# ----------------------------------------------------------------------- Keypoint R-CNN loss
def loss_inputs(seed, images, k, size, device, dtype):
    """Per image (R_i RoIs, G_i people): logits, proposals, keypoints, matched indices."""
    g = gen(seed)
    proposals, gts, matched = [], [], []
    for i, (r, n_gt) in enumerate(images):
        rois = random_rois(seed + i, r, device, dtype, min_size=2.0, max_size=30.0)
        proposals.append(rois)
        gts.append(random_keypoints(seed + i, rois[torch.arange(n_gt) % max(r, 1)]
                                    if r else random_rois(seed, n_gt, device, dtype), k))
        matched.append(torch.randint(0, max(n_gt, 1), (r,), generator=g).to(device))
    n = sum(r for r, _ in images)
    logits = torch.randn(n, k, size, size, generator=g, dtype=F64).to(device, dtype)
    return logits, proposals, gts, matched


rcnn_images = st.lists(st.tuples(st.integers(0, 3), st.integers(1, 3)), min_size=1, max_size=3)


@on_devices
@PROPS
@given(seed=seeds, images=rcnn_images, k=st.integers(1, 4), size=st.integers(1, 7), dtype=floats)
def test_keypointrcnn_loss_is_torchvision(device, seed, images, k, size, dtype):
    logits, proposals, gts, matched = loss_inputs(seed, images, k, size, device, dtype)
    logits.requires_grad_(True)
    ours = keypointrcnn_loss(logits, proposals, gts, matched)
    assert ours.shape == () and ours.dtype == dtype and ours.device == logits.device
    ref = tv.keypointrcnn_loss(logits, proposals, gts, matched)
    assert_close(ours, ref.to(dtype))
    assert float(ours.detach()) >= 0
    ours.backward()  # connected to the graph, even with no valid keypoint
    assert logits.grad is not None and logits.grad.shape == logits.shape


@PROPS
@given(seed=seeds, images=rcnn_images, k=st.integers(1, 4), size=st.integers(1, 7))
def test_keypointrcnn_loss_is_zero_at_perfect_heatmaps(seed, images, k, size):
    logits, proposals, gts, matched = loss_inputs(seed, images, k, size, "cpu", F64)
    targets = [keypoints_to_heatmap(gt[idx], rois, size)[0]
               for gt, rois, idx in zip(gts, proposals, matched, strict=True)]
    cells = torch.cat(targets)  # (N, K): the cell of each keypoint
    perfect = F.one_hot(cells, size * size).to(F64).view(-1, k, size, size) * 200
    assert float(keypointrcnn_loss(perfect, proposals, gts, matched)) == pytest.approx(0, abs=1e-12)
