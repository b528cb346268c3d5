"""DensePose annotations and part metrics (coursekit/densepose/parts.py)."""

import pytest
import torch

from coursekit.data import render_scene
from coursekit.densepose.parts import (
    NUM_PARTS,
    PART_NAMES,
    PART_SYMMETRIES,
    annotate_scene,
    iuv_image,
    part_confusion,
    part_iou,
    person_parts,
    sample_points,
    uv_error,
)


def _chart():
    parts = torch.tensor([[0, 1, 1], [0, 2, 3], [4, 0, 0]])
    uv = torch.stack([torch.arange(9.0).view(3, 3) / 10, torch.arange(9.0).view(3, 3) / 20])
    return parts, uv * (parts > 0)


def test_sample_points_hand_case():
    parts, uv = _chart()
    mask = torch.tensor([[True, True, False], [True, True, True], [False, False, False]])
    pts = sample_points(parts, uv, mask, num_points=6, generator=torch.Generator().manual_seed(0))
    assert pts.shape == (6, 5)
    # person pixels: (0, 1) part 1, (1, 1) part 2, (1, 2) part 3 -> 3 points, 3 empty rows
    real = pts[pts[:, 2] > 0]
    assert len(real) == 3 and (pts[3:] == 0).all()
    got = sorted((float(x), float(y)) for x, y in real[:, :2])
    assert got == [(1.5, 0.5), (1.5, 1.5), (2.5, 1.5)]
    for x, y, part, u, v in real.tolist():
        i, j = int(y), int(x)
        assert part == parts[i, j] and u == pytest.approx(float(uv[0, i, j]))
        assert v == pytest.approx(float(uv[1, i, j]))


def test_sample_points_draws_without_replacement_and_is_seeded():
    scene = render_scene(5, size=96, p_person=0.9)
    mask = scene.masks[scene.person_index[0]]
    a = sample_points(scene.parts, scene.uv, mask, 100, torch.Generator().manual_seed(1))
    b = sample_points(scene.parts, scene.uv, mask, 100, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    n = min(100, int((mask & (scene.parts > 0)).sum()))
    assert int((a[:, 2] > 0).sum()) == n
    assert len({(x, y) for x, y in a[:n, :2].tolist()}) == n  # no pixel twice


def test_annotate_scene_matches_the_scene():
    scene = render_scene(11, size=96, p_person=0.9)
    ann = annotate_scene(scene, num_points=50, seed=0)
    P = len(scene.person_index)
    assert ann["points"].shape == (P, 50, 5) and ann["parts"].shape == (P, 96, 96)
    for p in range(P):
        pts = ann["points"][p][ann["points"][p][:, 2] > 0]
        i, j = pts[:, 1].long(), pts[:, 0].long()
        assert ann["masks"][p][i, j].all()  # every point on its own person
        assert torch.equal(pts[:, 2].long(), scene.parts[i, j])
        assert torch.allclose(pts[:, 3:].T, scene.uv[:, i, j])
        assert torch.equal(ann["parts"][p][ann["masks"][p]], scene.parts[ann["masks"][p]])
        assert (ann["parts"][p][~ann["masks"][p]] == 0).all()


def test_person_parts_hand_case():
    parts, _ = _chart()
    masks = torch.zeros(2, 3, 3, dtype=torch.bool)
    masks[0, 0, 1:] = True
    masks[1, 1:, :] = True
    out = person_parts(parts, masks)
    assert out.tolist() == [[[0, 1, 1], [0, 0, 0], [0, 0, 0]], [[0, 0, 0], [0, 2, 3], [4, 0, 0]]]


def test_iuv_image_hand_case():
    parts, uv = _chart()
    img = iuv_image(parts, uv)
    assert img.shape == (3, 3, 3)
    assert img[0, 1, 2] == pytest.approx(3 / NUM_PARTS)
    assert img[1, 1, 2] == pytest.approx(0.5) and img[2, 1, 2] == pytest.approx(0.25)
    assert (img[:, 0, 0] == 0).all()


def test_part_confusion_and_iou_hand_case():
    target = torch.tensor([0, 1, 1, 2, 2, 2])
    pred = torch.tensor([1, 1, 0, 2, 2, 1])
    conf = part_confusion(pred, target)
    assert conf[1, 1] == 1 and conf[0, 1] == 1 and conf[1, 0] == 1 and conf[2, 1] == 1
    ious, miou = part_iou(conf)
    # part 1: TP 1, FP 2 (pixels 0 and 5), FN 1 -> 1/4; part 2: TP 2, FN 1 -> 2/3
    assert ious[0].item() == pytest.approx(0.25) and ious[1].item() == pytest.approx(2 / 3)
    assert torch.isnan(ious[2:]).all()
    assert miou == pytest.approx((0.25 + 2 / 3) / 2)


def test_part_iou_random_against_boolean_masks():
    g = torch.Generator().manual_seed(0)
    pred = torch.randint(0, 11, (500,), generator=g)
    target = torch.randint(0, 11, (500,), generator=g)
    ious, _ = part_iou(part_confusion(pred, target))
    for k in range(1, 11):
        inter = ((pred == k) & (target == k)).sum().item()
        union = ((pred == k) | (target == k)).sum().item()
        assert ious[k - 1].item() == pytest.approx(inter / union)


def test_uv_error_only_on_right_parts():
    parts = torch.tensor([[1, 2], [0, 3]])
    pred_parts = torch.tensor([[1, 3], [0, 3]])
    uv = torch.zeros(2, 2, 2)
    pred_uv = torch.full((2, 2, 2), 0.5)
    pred_uv[0, 1, 1] = 0.1
    total, n = uv_error(pred_parts, pred_uv, parts, uv)
    assert n == 2  # pixel (0, 0) and (1, 1); (0, 1) has the wrong part, (1, 0) is background
    assert total.tolist() == pytest.approx([0.6, 1.0])


def test_bad_inputs():
    parts, uv = _chart()
    with pytest.raises(ValueError, match="uv must be Tensor"):
        sample_points(parts, uv[:1], parts > 0)
    with pytest.raises(TypeError, match="parts"):
        sample_points(parts.float(), uv, parts > 0)
    with pytest.raises(TypeError, match="mask"):
        sample_points(parts, uv, (parts > 0).long())
    with pytest.raises(ValueError, match="num_points"):
        sample_points(parts, uv, parts > 0, num_points=0)
    with pytest.raises(ValueError, match="masks must be"):
        person_parts(parts, torch.ones(2, 4, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="pred must have"):
        part_confusion(parts[:2], parts)
    with pytest.raises(ValueError, match="confusion must be"):
        part_iou(torch.zeros(3, 3, dtype=torch.int64))


def test_uv_error_and_iuv_image_bad_inputs():
    parts, uv = _chart()
    with pytest.raises(ValueError, match=r"pred_uv must be Tensor\[2, 3, 3\] like pred_parts, "
                                         r"got Tensor\[1, 3, 3\]"):
        uv_error(parts, uv[:1], parts, uv)
    with pytest.raises(TypeError, match=r"pred_parts must be an int64 Tensor\[H, W\]"):
        uv_error(parts.float(), uv, parts, uv)
    with pytest.raises(ValueError, match=r"uv must be Tensor\[2, 3, 3\] like parts"):
        uv_error(parts, uv, parts, uv[:, :2])
    with pytest.raises(ValueError, match=r"pred_parts, pred_uv must be shaped like parts, uv"):
        uv_error(parts[:2], uv[:, :2], parts, uv)
    with pytest.raises(TypeError, match=r"uv must be a float Tensor\[2, H, W\]"):
        iuv_image(parts, uv.long())
    with pytest.raises(ValueError, match=r"parts must be Tensor\[H, W\]"):
        iuv_image(parts[None], uv)
    with pytest.raises(ValueError, match=r"parts must hold part indices 0\.\.10, got values "
                                         r"from 0 to 11"):
        iuv_image(parts.masked_fill(parts == 4, 11), uv)


def test_uv_error_random_against_a_loop():
    g = torch.Generator().manual_seed(2)
    for H, W in [(5, 7), (16, 9)]:
        parts = torch.randint(0, 11, (H, W), generator=g)
        pred = torch.where(torch.rand(H, W, generator=g) < 0.6, parts,
                           torch.randint(0, 11, (H, W), generator=g))
        uv, pred_uv = torch.rand(2, 2, H, W, generator=g, dtype=torch.float64)
        total, n = uv_error(pred, pred_uv, parts, uv)
        ref, count = torch.zeros(2, dtype=torch.float64), 0
        for i in range(H):
            for j in range(W):
                if parts[i, j] > 0 and pred[i, j] == parts[i, j]:
                    ref += (pred_uv[:, i, j] - uv[:, i, j]).abs()
                    count += 1
        assert n == count and total.dtype == torch.float64
        torch.testing.assert_close(total, ref)


def test_part_symmetries_swap_left_and_right():
    assert PART_SYMMETRIES == (0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9)
    assert all(PART_SYMMETRIES[PART_SYMMETRIES[k]] == k for k in range(NUM_PARTS + 1))
    assert PART_NAMES[PART_SYMMETRIES[PART_NAMES.index("lower_leg_left")]] == "lower_leg_right"
