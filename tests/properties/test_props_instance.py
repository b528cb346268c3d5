"""Property tests (hypothesis) for coursekit.instance: pasting, mask targets and the mask loss.

Drawn: counts (0 included), mask sides, image sizes (1 included), boxes of any size, some of
zero width or height, some outside the image; dtypes. References: torchvision's Mask R-CNN
(``aligned=False``), Detectron2's ``grid_sample`` paste and ``torchvision.ops.roi_align(...,
aligned=True)`` (``aligned=True``), and the literal ``_loop`` twin. Checked on every device
this machine has; seeded (``derandomize=True``).
"""

import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, on_devices, seeds
from torch.testing import assert_close
from torchvision.models.detection import roi_heads as tv
from torchvision.ops import roi_align as tv_roi_align

from coursekit.instance import (
    mask_rcnn_loss,
    paste_masks_in_image,
    paste_masks_in_image_loop,
    project_masks_on_boxes,
)

REDUCED = [torch.float16, torch.bfloat16]
image_sizes = st.tuples(st.integers(1, 20), st.integers(1, 20))


def random_boxes(seed, n, H, W, device, dtype=F64, min_size=0.0, overlap=True):
    """Tensor[n, 4] xyxy with sides in [min_size, min_size + 15); about one in ten with zero
    width or height (if min_size = 0). ``overlap``: every box meets the image (torchvision's
    paste slices the canvas and fails on a box entirely outside); else some lie outside."""
    g = torch.Generator().manual_seed(seed)
    wh = torch.rand(n, 2, generator=g, dtype=F64) * 15 + min_size
    if min_size == 0:
        wh[torch.rand(n, 2, generator=g) < 0.1] = 0
    if overlap:  # the top-left corner inside the image, or at most the box's size before it
        xy = torch.rand(n, 2, generator=g, dtype=F64) * (torch.tensor([W, H]) + wh) - wh
        xy = torch.minimum(xy, torch.tensor([W - 1.0, H - 1.0], dtype=F64))
    else:
        xy = torch.rand(n, 2, generator=g, dtype=F64) * (torch.tensor([W, H]) + 40) - 20
    return torch.cat([xy, xy + wh], 1).to(device, dtype)


def detectron2_paste(masks, boxes, H, W):
    """Detectron2's ``_do_paste_mask`` (whole image): ``grid_sample`` at pixel centres."""
    x0, y0, x1, y1 = boxes[:, 0:1], boxes[:, 1:2], boxes[:, 2:3], boxes[:, 3:4]  # (N, 1) each
    img_y = torch.arange(H, dtype=masks.dtype, device=masks.device) + 0.5
    img_x = torch.arange(W, dtype=masks.dtype, device=masks.device) + 0.5
    gy = ((img_y - y0) / (y1 - y0) * 2 - 1)[:, :, None].expand(-1, H, W)  # (N, H, W)
    gx = ((img_x - x0) / (x1 - x0) * 2 - 1)[:, None, :].expand(-1, H, W)
    grid = torch.stack([gx, gy], dim=3)  # (N, H, W, 2)
    return F.grid_sample(masks, grid, align_corners=False)  # (N, 1, H, W)


# ------------------------------------------------------------------------------------ paste
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 5), m=st.integers(1, 8), size=image_sizes,
       padding=st.integers(0, 2), dtype=st.sampled_from([torch.float32, F64]))
def test_paste_unaligned_is_torchvision_and_the_loop(device, seed, n, m, size, padding, dtype):
    H, W = size
    masks = torch.rand(n, 1, m, m, generator=torch.Generator().manual_seed(seed), dtype=F64)
    masks = masks.to(device, dtype)
    boxes = random_boxes(seed, n, H, W, device, dtype)
    out = paste_masks_in_image(masks, boxes, (H, W), padding, aligned=False)
    assert out.shape == (n, 1, H, W) and out.dtype == dtype and out.device == masks.device
    assert_close(out, tv.paste_masks_in_image(masks, boxes, (H, W), padding))
    assert_close(paste_masks_in_image_loop(masks, boxes, (H, W), padding), out)


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 5), m=st.integers(1, 8), size=image_sizes,
       overlap=st.booleans(), threshold=st.sampled_from([None, 0.2, 0.5]))
def test_paste_aligned_is_detectron2(device, seed, n, m, size, overlap, threshold):
    H, W = size
    masks = torch.rand(n, 1, m, m, generator=torch.Generator().manual_seed(seed), dtype=F64)
    masks = masks.to(device)
    boxes = random_boxes(seed, n, H, W, device, min_size=0.25, overlap=overlap)
    probs = paste_masks_in_image(masks, boxes, (H, W))
    assert probs.shape == (n, 1, H, W) and probs.dtype == F64 and probs.device == masks.device
    assert_close(probs, detectron2_paste(masks, boxes, H, W))
    if threshold is not None:
        out = paste_masks_in_image(masks, boxes, (H, W), threshold=threshold)
        assert out.dtype == torch.bool and out.shape == (n, 1, H, W)
        assert torch.equal(out, probs >= threshold)


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 4), m=st.integers(1, 8), size=image_sizes,
       aligned=st.booleans(), dtype=st.sampled_from(REDUCED))
def test_paste_reduced_precision(device, seed, n, m, size, aligned, dtype):
    # coordinates and sums in float32, rounded once: within an ulp of the float64 paste of the
    # same (rounded) masks, since the values lie in [0, 1]
    H, W = size
    masks = torch.rand(n, 1, m, m, generator=torch.Generator().manual_seed(seed)).to(device, dtype)
    boxes = random_boxes(seed, n, H, W, device, torch.float32, min_size=0.25)
    out = paste_masks_in_image(masks, boxes, (H, W), aligned=aligned)
    assert out.dtype == dtype and out.shape == (n, 1, H, W)
    ref = paste_masks_in_image(masks.double(), boxes.double(), (H, W), aligned=aligned)
    assert_close(out.double(), ref, rtol=0, atol=torch.finfo(dtype).eps)


# ------------------------------------------------------------------------------- targets
@on_devices
@PROPS
@given(seed=seeds, g=st.integers(1, 3), p=st.integers(0, 6), size=image_sizes,
       m=st.integers(1, 8), binary=st.booleans(), dtype=st.sampled_from([torch.float32, F64]))
def test_project_masks_is_torchvision(device, seed, g, p, size, m, binary, dtype):
    H, W = size
    gen = torch.Generator().manual_seed(seed)
    masks = torch.rand(g, H, W, generator=gen, dtype=F64)
    masks = (masks > 0.5) if binary else masks.to(dtype)
    masks = masks.to(device)
    boxes = random_boxes(seed, p, H, W, device, dtype, overlap=False)
    idx = torch.randint(0, g, (p,), generator=gen).to(device)
    unaligned = project_masks_on_boxes(masks, boxes, idx, m, aligned=False)
    assert unaligned.shape == (p, m, m) and unaligned.dtype == dtype
    assert unaligned.device == boxes.device
    assert_close(unaligned, tv.project_masks_on_boxes(masks, boxes, idx, m))
    aligned = project_masks_on_boxes(masks, boxes, idx, m)
    rois = torch.cat([idx[:, None].to(boxes), boxes], 1)
    ref = tv_roi_align(masks[:, None].to(boxes), rois, (m, m), 1.0, aligned=True)[:, 0]
    assert_close(aligned, ref)
    if binary:  # averages of 0 / 1 samples
        assert bool(((aligned >= 0) & (aligned <= 1 + 1e-6)).all())


@PROPS
@given(size=st.tuples(st.integers(4, 16), st.integers(4, 16)), data=st.data(),
       m=st.sampled_from([7, 14, 28]))
def test_aligned_targets_then_paste_give_a_rectangle_back(size, data, m):
    # an axis-aligned rectangle (at least 2 x 2 pixels) whose box is its pixel extent survives
    # project_masks_on_boxes then paste_masks_in_image (both aligned) thresholded at 0.5
    H, W = size
    y0 = data.draw(st.integers(0, H - 2), "y0")
    x0 = data.draw(st.integers(0, W - 2), "x0")
    y1 = data.draw(st.integers(y0 + 2, H), "y1")
    x1 = data.draw(st.integers(x0 + 2, W), "x1")
    gt = torch.zeros(1, H, W, dtype=torch.bool)
    gt[0, y0:y1, x0:x1] = True
    box = torch.tensor([[x0, y0, x1, y1]], dtype=F64)
    target = project_masks_on_boxes(gt, box, torch.tensor([0]), m)
    back = paste_masks_in_image(target[:, None], box, (H, W), threshold=0.5)
    assert torch.equal(back[0, 0], gt[0])


# ---------------------------------------------------------------------------------- loss
@PROPS
@given(seed=seeds, images=st.lists(st.tuples(st.integers(1, 3), st.integers(0, 4)), min_size=1,
                                   max_size=3),
       classes=st.integers(2, 4), m=st.integers(1, 7), size=image_sizes)
def test_mask_rcnn_loss_is_torchvision(seed, images, classes, m, size):
    H, W = size
    gen = torch.Generator().manual_seed(seed)
    proposals, masks, labels, idxs = [], [], [], []
    for k, (g, p) in enumerate(images):
        masks.append(torch.rand(g, H, W, generator=gen) > 0.5)
        proposals.append(random_boxes(seed + k, p, H, W, "cpu", overlap=False))
        labels.append(torch.randint(0, classes, (g,), generator=gen))
        idxs.append(torch.randint(0, g, (p,), generator=gen))
    total = sum(p for _, p in images)
    logits = torch.randn(total, classes, m, m, generator=gen, dtype=F64)
    ours = mask_rcnn_loss(logits, proposals, masks, labels, idxs, aligned=False)
    assert ours.shape == () and ours.dtype == F64
    if total == 0:  # no positive proposal: 0 (torchvision: logits.sum() * 0 as well)
        assert ours.item() == 0.0
    assert_close(ours, tv.maskrcnn_loss(logits, proposals, masks, labels, idxs))
