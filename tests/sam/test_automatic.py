"""Automatic mask generation against segment-anything's utils.amg and SamAutomaticMaskGenerator.

segment-anything's ``remove_small_regions`` needs OpenCV, which is not installed: a stand-in
``cv2`` module provides ``connectedComponentsWithStats`` (8-connectivity) — a plain
breadth-first search for the unit test, ``scipy.ndimage.label`` for the generator test —
so that segment-anything's own rule (which components to fill or drop) is the reference.
"""

import copy
import sys
import types
from collections import deque

import numpy as np
import pytest
import torch
from scipy import ndimage
from segment_anything.utils import amg
from torch import nn
from torch.testing import assert_close

from coursekit.sam import (
    AutomaticMaskGenerator,
    build_point_grid,
    mask_to_box,
    remove_small_regions,
    stability_score,
)


def test_point_grid_hand_computed():
    grid = build_point_grid(2)
    assert grid.tolist() == [[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]]
    assert build_point_grid(1).tolist() == [[0.5, 0.5]]
    assert build_point_grid(3, dtype=torch.float32).dtype == torch.float32


def test_point_grid_equals_reference_bit_for_bit():
    for n in range(1, 101):
        assert torch.equal(build_point_grid(n), torch.from_numpy(amg.build_point_grid(n)))


def test_stability_score_hand_computed():
    logits = torch.tensor([[3.0, 0.5], [-0.5, -3.0]])
    # > +1: one pixel; > -1: three pixels
    assert_close(stability_score(logits, 0.0, 1.0), torch.tensor(1 / 3))
    # threshold -1 +- 1: > 0 two pixels, > -2 three pixels
    assert_close(stability_score(logits, -1.0, 1.0), torch.tensor(2 / 3))
    assert stability_score(torch.full((2, 2), -5.0), 0.0, 1.0).isnan()  # empty union


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_stability_score_matches_reference(dtype, device):
    logits = torch.randn(4, 3, 20, 30, dtype=dtype, device=device) * 3
    for t, off in [(0.0, 1.0), (0.5, 0.25), (-1.0, 2.0)]:
        assert_close(stability_score(logits, t, off),
                     amg.calculate_stability_score(logits, t, off), rtol=0, atol=1e-7)


def test_mask_to_box_hand_computed():
    m = torch.zeros(2, 5, 6, dtype=torch.bool)
    m[0, 1:3, 2:5] = True  # rows 1-2, columns 2-4
    assert mask_to_box(m).tolist() == [[2, 1, 4, 2], [0, 0, 0, 0]]  # inclusive max; empty


def test_mask_to_box_matches_reference(device):
    masks = torch.rand(3, 4, 9, 11, device=device) > 0.97
    masks[0, 0] = False
    assert torch.equal(mask_to_box(masks), amg.batched_mask_to_box(masks))
    assert torch.equal(mask_to_box(masks[1, 2]), amg.batched_mask_to_box(masks[1, 2]))


def _bfs_components(image, connectivity):
    """OpenCV's connectedComponentsWithStats, by breadth-first search: labels in raster order."""
    assert connectivity == 8
    H, W = image.shape
    labels = np.zeros((H, W), dtype=np.int32)
    areas = [int((image == 0).sum())]
    for y in range(H):
        for x in range(W):
            if image[y, x] and not labels[y, x]:
                k = len(areas)
                labels[y, x], queue, area = k, deque([(y, x)]), 0
                while queue:
                    cy, cx = queue.popleft()
                    area += 1
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            ny, nx = cy + dy, cx + dx
                            if 0 <= ny < H and 0 <= nx < W and image[ny, nx] and not labels[ny, nx]:
                                labels[ny, nx] = k
                                queue.append((ny, nx))
                areas.append(area)
    stats = np.zeros((len(areas), 5), dtype=np.int32)
    stats[:, -1] = areas
    return len(areas), labels, stats, None


def _scipy_components(image, connectivity):
    labels, n = ndimage.label(image, structure=np.ones((3, 3)))
    stats = np.zeros((n + 1, 5), dtype=np.int64)
    stats[:, -1] = np.bincount(labels.ravel(), minlength=n + 1)
    return n + 1, labels, stats, None


@pytest.fixture
def fake_cv2(monkeypatch):
    def install(components):
        monkeypatch.setitem(sys.modules, "cv2", types.SimpleNamespace(
            connectedComponentsWithStats=components))
    return install


def test_remove_small_regions_hand_computed():
    m = torch.zeros(6, 8, dtype=torch.bool)
    m[0:4, 0:4] = True  # a 16-pixel square ...
    m[1, 1] = False  # ... with a 1-pixel hole
    m[5, 7] = True  # a 1-pixel island
    m[4, 4] = True  # touches the square diagonally: same component (8-connectivity)
    filled, changed = remove_small_regions(m, 2, "holes")
    assert changed and filled[1, 1] and filled.sum() == m.sum() + 1
    cleaned, changed = remove_small_regions(filled, 2, "islands")
    assert changed and not cleaned[5, 7] and cleaned[4, 4] and cleaned.sum() == filled.sum() - 1
    same, changed = remove_small_regions(cleaned, 2, "islands")
    assert not changed and same is cleaned
    dots = torch.zeros(5, 5, dtype=torch.bool)
    dots[0, 0] = dots[3, 3] = dots[3, 4] = True  # every island small: the largest is kept
    kept, _ = remove_small_regions(dots, 10, "islands")
    assert kept.nonzero().tolist() == [[3, 3], [3, 4]]


@pytest.mark.parametrize("mode", ["holes", "islands"])
def test_remove_small_regions_matches_reference(fake_cv2, mode):
    fake_cv2(_bfs_components)
    g = torch.Generator().manual_seed(0)
    for trial in range(12):
        mask = torch.rand(14, 17, generator=g) > (0.3 + 0.04 * trial)
        for area in [1, 3, 6, 40]:
            ours, changed = remove_small_regions(mask, area, mode)
            ref, ref_changed = amg.remove_small_regions(mask.numpy(), area, mode)
            assert changed == ref_changed
            assert torch.equal(ours, torch.as_tensor(ref))


class _ClickPromptEncoder(nn.Module):
    """Stand-in prompt encoder: the sparse "embedding" is the first point (x, y) itself."""

    mask_input_size = (64, 64)

    def get_dense_pe(self):
        return torch.zeros(1, 1, 16, 16)

    def forward(self, points, boxes, masks):
        return points[0][:, :1].float(), torch.zeros(len(points[0]), 1, 16, 16)


class _DiscDecoder(nn.Module):
    """Stand-in decoder: around the click, four discs of different radii and sharpness,
    one with a far island and one with a hole (64 x 64 logits of a 256 x 256 input)."""

    def forward(self, image_embeddings, image_pe, sparse_prompt_embeddings,
                dense_prompt_embeddings, multimask_output):
        xy = sparse_prompt_embeddings[:, 0] / 4 - 0.5  # (B, 2) low-res pixel
        ys, xs = torch.meshgrid(torch.arange(64.0), torch.arange(64.0), indexing="ij")
        dist = ((xs - xy[:, 0, None, None]) ** 2 + (ys - xy[:, 1, None, None]) ** 2).sqrt()
        radius = torch.tensor([9.0, 5.0, 11.0, 17.0]).view(1, 4, 1, 1)
        sharp = torch.tensor([1.0, 3.0, 0.6, 2.0]).view(1, 4, 1, 1)
        logits = (radius - dist[:, None]) * sharp  # (B, 4, 64, 64)
        island = (dist[:, None] - 30).abs() < 1.2
        logits[:, 1:2] = torch.where(island & (xs < 32), 4.0, logits[:, 1:2])
        logits[:, 3:4] = torch.where(dist[:, None] < 1.6, -4.0, logits[:, 3:4])  # a hole
        k = torch.arange(4.0).view(1, 4)
        iou = 0.6 + 0.35 * torch.sin(0.13 * xy[:, :1] + 0.07 * xy[:, 1:] + k)  # (B, 4)
        keep = slice(1, None) if multimask_output else slice(0, 1)
        return logits[:, keep], iou[:, keep]


def _disc_models(sam_pair):
    ref, ours = (copy.deepcopy(m) for m in sam_pair)
    for model in (ref, ours):
        model.prompt_encoder = _ClickPromptEncoder()
        model.mask_decoder = _DiscDecoder()
    return ref, ours


def _compare(records, ref_records):
    assert len(records) == len(ref_records) > 0
    for r, e in zip(records, ref_records, strict=True):
        assert torch.equal(r["segmentation"], torch.from_numpy(e["segmentation"]))
        assert r["area"] == e["area"] and r["bbox"] == e["bbox"]
        assert r["crop_box"] == e["crop_box"]
        assert r["point_coords"] == e["point_coords"]
        assert r["predicted_iou"] == pytest.approx(e["predicted_iou"], abs=1e-6)
        assert r["stability_score"] == pytest.approx(e["stability_score"], abs=1e-6)


@pytest.fixture(scope="module")
def image():
    g = torch.Generator().manual_seed(7)
    return torch.randint(0, 256, (3, 256, 256), generator=g, dtype=torch.uint8)


@pytest.mark.parametrize("settings", [
    dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, box_nms_thresh=0.7),
    dict(pred_iou_thresh=0.6, stability_score_thresh=0.8, box_nms_thresh=0.5),
    dict(pred_iou_thresh=0.3, stability_score_thresh=0.5, box_nms_thresh=0.9,
         min_mask_region_area=300),
])
def test_generator_matches_reference(sam_pair, image, fake_cv2, settings):
    """Grid, batches, IoU / stability filters, boxes, NMS, clean-up: the same records."""
    fake_cv2(_scipy_components)
    ref, ours = _disc_models(sam_pair)
    args = dict(points_per_side=4, points_per_batch=6, **settings)
    ref_records = amg_ref(ref, **args).generate(image.permute(1, 2, 0).numpy())
    records = AutomaticMaskGenerator(ours, **args).generate(image)
    _compare(records, ref_records)
    assert all(r["area"] == int(r["segmentation"].sum()) for r in records)
    if settings.get("min_mask_region_area"):  # the clean-up changed some masks
        raw = AutomaticMaskGenerator(ours, **dict(args, min_mask_region_area=0)).generate(image)
        cleaned = {tuple(r["bbox"]) + (r["area"],) for r in records}
        assert cleaned != {tuple(r["bbox"]) + (r["area"],) for r in raw}


def amg_ref(model, **kwargs):
    from segment_anything import SamAutomaticMaskGenerator
    return SamAutomaticMaskGenerator(model, **kwargs)


def test_generator_with_the_random_network_matches_reference(sam_pair, image):
    """The real (random) network end to end: a 2 x 2 grid, no filters."""
    ref, ours = sam_pair
    args = dict(points_per_side=2, points_per_batch=3, pred_iou_thresh=0.0,
                stability_score_thresh=0.0)
    records = AutomaticMaskGenerator(ours, **args).generate(image)
    ref_records = amg_ref(ref, **args).generate(image.permute(1, 2, 0).numpy())
    assert len(records) == len(ref_records) > 0
    for r, e in zip(records, ref_records, strict=True):
        assert r["bbox"] == e["bbox"] and r["point_coords"] == e["point_coords"]
        assert r["predicted_iou"] == pytest.approx(e["predicted_iou"], abs=1e-5)
        differ = (r["segmentation"] != torch.from_numpy(e["segmentation"])).sum()
        assert differ <= 2  # logits within 1e-5: only pixels at the threshold may differ


def test_generator_filters_and_nms_hand_checked(sam_pair, image):
    """With the disc decoder: thresholds hold, masks are boxes' NMS survivors, best first."""
    _, ours = _disc_models(sam_pair)
    gen = AutomaticMaskGenerator(ours, points_per_side=4, pred_iou_thresh=0.5,
                                 stability_score_thresh=0.7, box_nms_thresh=0.6)
    records = gen.generate(image)
    ious = [r["predicted_iou"] for r in records]
    assert ious == sorted(ious, reverse=True)
    assert all(r["predicted_iou"] > 0.5 and r["stability_score"] >= 0.7 for r in records)
    boxes = torch.tensor([r["bbox"] for r in records], dtype=torch.float32)
    boxes[:, 2:] += boxes[:, :2]
    from coursekit.detection import box_iou
    overlap = box_iou(boxes, boxes) - torch.eye(len(boxes))
    assert (overlap <= 0.6).all()
    for r in records:
        assert mask_to_box(r["segmentation"]).tolist() == [
            r["bbox"][0], r["bbox"][1], r["bbox"][0] + r["bbox"][2], r["bbox"][1] + r["bbox"][3]]
    assert not gen.predictor.is_image_set  # the embedding is dropped after generate
    strict = AutomaticMaskGenerator(ours, points_per_side=2, pred_iou_thresh=0.99,
                                    min_mask_region_area=10)
    assert strict.generate(image) == []  # nothing passes: an empty list, no error


def test_bad_inputs(sam_pair):
    with pytest.raises(ValueError, match="n_per_side must be positive"):
        build_point_grid(0)
    with pytest.raises(TypeError, match="n_per_side must be an int"):
        build_point_grid(2.0)
    with pytest.raises(TypeError, match="mask_logits must be a floating-point"):
        stability_score(torch.zeros(3, 3, dtype=torch.bool), 0.0, 1.0)
    with pytest.raises(ValueError, match=r"mask_logits must be Tensor\[..., H, W\]"):
        stability_score(torch.zeros(3), 0.0, 1.0)
    with pytest.raises(TypeError, match="threshold_offset must be a real number"):
        stability_score(torch.zeros(3, 3), 0.0, None)
    with pytest.raises(TypeError, match="masks must be a bool"):
        mask_to_box(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="mode must be 'holes' or 'islands'"):
        remove_small_regions(torch.zeros(3, 3, dtype=torch.bool), 2, "gaps")
    with pytest.raises(ValueError, match="area_thresh must be a number, got NaN"):
        remove_small_regions(torch.zeros(3, 3, dtype=torch.bool), float("nan"), "holes")
    with pytest.raises(ValueError, match="pred_iou_thresh must be a number, got NaN"):
        AutomaticMaskGenerator(sam_pair[1], pred_iou_thresh=float("nan"))
    with pytest.raises(ValueError, match=r"mask must be a bool Tensor\[H, W\]"):
        remove_small_regions(torch.zeros(1, 3, 3, dtype=torch.bool), 2, "holes")
    with pytest.raises(ValueError, match="points_per_side must be positive"):
        AutomaticMaskGenerator(sam_pair[1], points_per_side=0)
    with pytest.raises(ValueError, match="min_mask_region_area must be >= 0"):
        AutomaticMaskGenerator(sam_pair[1], min_mask_region_area=-1)
    with pytest.raises(TypeError, match="sam_model must be a coursekit.sam.Sam"):
        AutomaticMaskGenerator(object())
