"""The DensePose head, its losses, decoding and pasting (coursekit/densepose/uv_head.py)."""

import pytest
import torch
import torch.nn.functional as F

from coursekit.densepose.train import build_densepose_head, build_densepose_rcnn, densepose_batch
from coursekit.densepose.uv_head import (
    DensePoseHead,
    compare_with_detectron2,
    decode_iuv,
    densepose_losses,
    paste_in_image,
    sample_at_points,
)
from coursekit.instance.mask_rcnn import DEFAULT_CONFIG, build_mask_rcnn
from coursekit.instance.paste import paste_masks_in_image
from coursekit.instance.pooler import MultiScaleRoIAlign

TRUNK = {**DEFAULT_CONFIG}


def small_head(**kw) -> DensePoseHead:
    torch.manual_seed(0)
    return build_densepose_head(TRUNK, dim=16, num_convs=2, **kw)


def test_forward_shapes_and_bad_input():
    head = small_head()
    out = head(torch.randn(3, 64, 14, 14))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "coarse": (3, 2, 28, 28), "fine": (3, 11, 28, 28), "u": (3, 11, 28, 28),
        "v": (3, 11, 28, 28), "embedding": (3, 16, 28, 28)}
    with pytest.raises(ValueError, match="x must be Tensor\\[R, 64, S, S\\]"):
        head(torch.randn(3, 32, 14, 14))
    with pytest.raises(ValueError, match="loss_weights has unknown keys"):
        DensePoseHead(MultiScaleRoIAlign((2, 4, 8), 14), 64, loss_weights={"mask": 1.0})


def test_sample_at_points_reads_cell_centres():
    maps = torch.arange(2 * 3 * 4 * 4, dtype=torch.float64).view(2, 3, 4, 4)
    boxes = torch.tensor([[0.0, 0, 4, 4], [10.0, 20, 18, 28]], dtype=torch.float64)
    pts = torch.zeros(2, 3, 5, dtype=torch.float64)
    pts[0, 0] = torch.tensor([2.5, 1.5, 3, 0.1, 0.2])  # cell (row 1, col 2) of box 0
    pts[0, 1] = torch.tensor([9.0, 1.5, 3, 0.1, 0.2])  # outside box 0: dropped
    pts[1, 0] = torch.tensor([11.0, 27.0, 5, 0.3, 0.4])  # box 1 cell (3, 0) centre: 11, 27
    pts[1, 2] = torch.tensor([12.0, 22.0, 0, 0.0, 0.0])  # I = 0: no point
    values, kept = sample_at_points(maps, boxes, pts)
    assert kept[:, 2].tolist() == [3, 5]
    assert torch.equal(values[0], maps[0, :, 1, 2]) and torch.equal(values[1], maps[1, :, 3, 0])


def test_sample_at_points_interpolates_bilinearly():
    maps = torch.zeros(1, 1, 2, 2, dtype=torch.float64)
    maps[0, 0, 0, 1] = 4.0
    pts = torch.tensor([[[1.0, 0.5, 1, 0, 0]]], dtype=torch.float64)  # between cells (0,0), (0,1)
    values, _ = sample_at_points(maps, torch.tensor([[0.0, 0, 2, 2]], dtype=torch.float64), pts)
    assert values.item() == pytest.approx(2.0)


def test_paste_in_image_equals_detectron2_paste():
    g = torch.Generator().manual_seed(0)
    maps = torch.rand(4, 1, 28, 28, generator=g, dtype=torch.float64)
    xy = torch.rand(4, 2, generator=g, dtype=torch.float64) * 40
    boxes = torch.cat([xy, xy + torch.rand(4, 2, generator=g, dtype=torch.float64) * 40 + 5], 1)
    ours, inside = paste_in_image(maps, boxes, (64, 80))
    ref = paste_masks_in_image(maps, boxes, (64, 80), aligned=True)  # (4, 1, 64, 80)
    # the same values where both read between cell centres; in the outer half cell
    # Detectron2 fades to 0 (zero padding), we keep the edge cell's value (clamped)
    cy = torch.arange(64, dtype=torch.float64)[None, :, None] + 0.5
    cx = torch.arange(80, dtype=torch.float64)[None, None, :] + 0.5
    x1, y1, x2, y2 = (c[:, None, None] for c in boxes.unbind(1))
    gy, gx = (cy - y1) / (y2 - y1) * 28 - 0.5, (cx - x1) / (x2 - x1) * 28 - 0.5
    core = (gy >= 0) & (gy <= 27) & (gx >= 0) & (gx <= 27)  # (4, 64, 80)
    assert core.sum() > 1000 and (core <= inside).all()
    assert torch.allclose(ours[:, 0][core], ref[:, 0][core], atol=1e-12)
    assert (ours[:, 0][~inside] == 0).all()



def test_decode_iuv_hand_case():
    coarse = torch.tensor([[[0.0, 0.0]], [[1.0, -1.0]]])  # (2, 1, 2): pixel 0 fg, pixel 1 bg
    fine = torch.zeros(3, 1, 2)
    fine[2, 0, 0] = 5.0  # part 2 at pixel 0
    fine[0, 0, 0] = 9.0  # background channel is never the answer on a foreground pixel
    u = torch.zeros(3, 1, 2)
    v = torch.zeros(3, 1, 2)
    u[2, 0, 0], v[2, 0, 0] = 0.25, 1.5  # V clamped to 1
    u[1, 0, 0] = 0.9  # another part's chart: ignored
    parts, uv = decode_iuv(coarse, fine, u, v)
    assert parts.tolist() == [[2, 0]]
    assert uv[:, 0, 0].tolist() == [0.25, 1.0] and (uv[:, 0, 1] == 0).all()
    with pytest.raises(ValueError, match="coarse must be"):
        decode_iuv(fine, fine, u, v)


def _one_roi_outputs(requires_grad=True):
    out = {"coarse": torch.zeros(1, 2, 4, 4), "fine": torch.zeros(1, 11, 4, 4),
           "u": torch.zeros(1, 11, 4, 4), "v": torch.zeros(1, 11, 4, 4)}
    return {k: v.requires_grad_(requires_grad) for k, v in out.items()}


def test_losses_hand_values_and_only_the_true_part_chart():
    out = _one_roi_outputs()
    box = [torch.tensor([[0.0, 0, 4, 4]])]
    mask = torch.zeros(1, 4, 4, dtype=torch.bool)
    mask[0, :2] = True
    pts = torch.zeros(1, 2, 5)
    pts[0, 0] = torch.tensor([0.5, 0.5, 3, 0.5, 0.05])  # part 3 at cell (0, 0)
    pts[0, 1] = torch.tensor([1.5, 1.5, 7, 0.2, 0.0])  # part 7 at cell (1, 1)
    losses = densepose_losses(out, box, [mask], [pts])
    # all logits 0: CE = log 2 (coarse), log 11 (parts)
    assert losses["coarse"].item() == pytest.approx(torch.log(torch.tensor(2.0)).item())
    assert losses["parts"].item() == pytest.approx(torch.log(torch.tensor(11.0)).item())
    # smooth-L1 (beta 0.1) of predictions 0: U errors 0.5, 0.2 -> 0.45, 0.15; V 0.05, 0 ->
    # 0.5 * 0.05^2 / 0.1 = 0.0125, 0
    expected = (0.45 + 0.15) / 2 + (0.0125 + 0.0) / 2
    assert losses["uv"].item() == pytest.approx(expected)
    losses["uv"].backward()
    grad = out["u"].grad[0]  # (11, 4, 4)
    touched = {c for c in range(11) if grad[c].abs().sum() > 0}
    assert touched == {3, 7}  # the annotated points' true parts only


def test_losses_match_a_dense_cross_entropy_on_the_mask():
    g = torch.Generator().manual_seed(0)
    out = {k: v.detach().normal_(generator=g) for k, v in _one_roi_outputs(False).items()}
    box = [torch.tensor([[0.0, 0, 4, 4]])]
    mask = torch.rand(1, 4, 4, generator=g) > 0.5
    losses = densepose_losses(out, box, [mask], [torch.zeros(1, 3, 5)])
    ref = F.cross_entropy(out["coarse"], mask.long())  # box = image: the target is the mask
    assert losses["coarse"].item() == pytest.approx(ref.item(), rel=1e-6)
    assert losses["parts"].item() == 0 and losses["uv"].item() == 0


def test_segm_loss_is_a_dense_cross_entropy_on_the_part_map():
    g = torch.Generator().manual_seed(1)
    out = {k: v.detach().normal_(generator=g) for k, v in _one_roi_outputs(False).items()}
    parts = torch.randint(0, 11, (1, 4, 4), generator=g)
    box = [torch.tensor([[0.0, 0, 4, 4]])]  # the box is the image: the target is the map
    losses = densepose_losses(out, box, [parts > 0], [torch.zeros(1, 1, 5)], gt_parts=[parts])
    ref = F.cross_entropy(out["fine"], parts)
    assert losses["segm"].item() == pytest.approx(ref.item(), rel=1e-6)
    # a box twice the image's size: each cell of the 4 x 4 grid covers 2 x 2 pixels
    big = torch.randint(0, 11, (1, 8, 8), generator=g)
    big = big[:, ::2, ::2].repeat_interleave(2, 1).repeat_interleave(2, 2)  # 2 x 2 blocks
    losses = densepose_losses(out, [torch.tensor([[0.0, 0, 8, 8]])], [big > 0],
                              [torch.zeros(1, 1, 5)], gt_parts=[big])
    ref = F.cross_entropy(out["fine"], big[:, ::2, ::2])
    assert losses["segm"].item() == pytest.approx(ref.item(), rel=1e-6)


def test_cse_loss_term_uses_template_vertices():
    head = small_head()
    out = head(torch.randn(1, 64, 14, 14))
    box = [torch.tensor([[0.0, 0, 28, 28]])]
    pts = torch.tensor([[[3.5, 4.5, 2, 0.5, 0.5]]])
    losses = head.loss(out, box, [{"masks": torch.zeros(1, 28, 28, dtype=torch.bool),
                                   "densepose": pts,
                                   "parts": torch.zeros(1, 28, 28, dtype=torch.int64)}])
    assert set(losses) == {"loss_densepose_coarse", "loss_densepose_segm",
                           "loss_densepose_parts", "loss_densepose_uv", "loss_densepose_cse"}
    from coursekit.densepose.cse import cse_loss
    from coursekit.upsampling import bilinear_sample

    e = bilinear_sample(out["embedding"], torch.tensor([4.0]), torch.tensor([3.0]))  # (1, 16)
    target = head.template.nearest_vertex(torch.tensor([2]), torch.tensor([[0.5, 0.5]],
                                                                          dtype=torch.float64))
    ref = head.loss_weights["cse"] * cse_loss(e, head.vertex_embeddings(), target)
    assert losses["loss_densepose_cse"].item() == pytest.approx(ref.item(), rel=1e-5)


def test_plugged_into_mask_rcnn_trains_and_predicts():
    head = small_head()
    torch.manual_seed(0)
    model = build_densepose_rcnn(TRUNK, head)
    trunk = build_mask_rcnn(**TRUNK)
    features, boxes, targets, scenes = densepose_batch(trunk, [3, 4], 64, 0.9, 20)
    index = {tid: i + 1 for i, tid in enumerate(TRUNK["thing_ids"])}
    full = []
    for j in range(2):
        rows = scenes.person_index[j]
        pts = torch.zeros(len(scenes.boxes[j]), 20, 5)
        pts[rows] = targets[j]["densepose"]
        parts = torch.zeros(len(scenes.boxes[j]), 64, 64, dtype=torch.int64)
        parts[rows] = targets[j]["parts"]
        full.append({"boxes": scenes.boxes[j], "labels": torch.tensor(
            [index[int(v)] for v in scenes.labels[j]]), "masks": scenes.masks[j],
            "densepose": pts, "parts": parts})
    model.train()
    losses = model(scenes.image, full)
    assert {"loss_densepose_coarse", "loss_densepose_cse", "loss_mask"} <= set(losses)
    model.eval()
    det = model.predict(scenes.image[0], score_threshold=0.0)
    assert det["densepose_fine"].shape == (len(det["boxes"]), 11, 28, 28)


def test_overfits_one_batch():
    head = small_head()
    trunk = build_mask_rcnn(**TRUNK)
    features, boxes, targets, _ = densepose_batch(trunk, [7], 64, 0.9, 30)
    opt = torch.optim.Adam(head.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss = sum(head.loss(head(head.roi_pool(features, boxes)), boxes, targets).values())
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


def test_compare_with_detectron2_table():
    text = compare_with_detectron2(small_head())
    assert "8 × conv3×3 512" in text and "2 × conv3×3 16" in text
    assert "28×28, ROIAlignV2" in text and "25 (24 parts + bg)" in text
    # 256·512·9 + 512 + 7 (512·512·9 + 512) = 1,180,160 + 16,518,656
    assert "(17,698,816 params)" in text
