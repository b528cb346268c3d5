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
    hflip_maps,
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
    assert small_head(uv_weight=3.0).loss_weights["uv"] == 3.0  # DENSEPOSE_CONFIG's key
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


def test_losses_without_rois_keep_the_vertex_embeddings_in_the_graph():
    # regression: with no RoI at all the CSE term still reaches vertex_embeddings (zero
    # gradient, not None), as it does when RoIs have no point
    from coursekit.densepose.cse import body_template

    template = body_template(0.2)
    sizes = {"coarse": 2, "fine": 11, "u": 11, "v": 11, "embedding": 3}
    out = {k: torch.zeros(0, c, 4, 4, requires_grad=True) for k, c in sizes.items()}
    vertices = torch.randn(len(template), 3, requires_grad=True)
    losses = densepose_losses(out, [torch.zeros(0, 4)], [torch.zeros(0, 8, 8, dtype=torch.bool)],
                              [torch.zeros(0, 2, 5)], template=template,
                              vertex_embeddings=vertices)
    assert losses["cse"].item() == 0
    losses["cse"].backward()
    assert vertices.grad is not None and (vertices.grad == 0).all()


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


# ---- densepose_losses: a float64 reference, gradcheck, bad input --------------------------


def _random_case(g, counts=(2, 1), M=6, N=5, size=24, embed=0, dtype=torch.float64):
    """Random maps for ``sum(counts)`` RoIs over ``len(counts)`` images, boxes with real
    corners, masks and part maps per pixel, points inside and outside the boxes (some
    ``I = 0``)."""
    R = sum(counts)
    sizes = {"coarse": 2, "fine": 11, "u": 11, "v": 11, **({"embedding": embed} if embed else {})}
    outputs = {k: torch.randn(R, c, M, M, generator=g, dtype=dtype) for k, c in sizes.items()}
    proposals, masks, parts, points = [], [], [], []
    for k in counts:
        xy = torch.rand(k, 2, generator=g, dtype=dtype) * size / 2
        wh = torch.rand(k, 2, generator=g, dtype=dtype) * size / 3 + 4
        boxes = torch.cat([xy, xy + wh], 1)  # (k, 4)
        proposals.append(boxes)
        parts.append(torch.randint(0, 11, (k, size, size), generator=g))
        masks.append(torch.rand(k, size, size, generator=g) > 0.5)
        t = torch.rand(k, N, 2, generator=g, dtype=dtype)  # position in the box, some outside
        x = boxes[:, None, 0] + (t[..., 0] * 1.2 - 0.1) * (boxes[:, None, 2] - boxes[:, None, 0])
        y = boxes[:, None, 1] + (t[..., 1] * 1.2 - 0.1) * (boxes[:, None, 3] - boxes[:, None, 1])
        part = torch.randint(0, 11, (k, N), generator=g).to(dtype)
        uv = torch.rand(k, N, 2, generator=g, dtype=dtype)
        points.append(torch.cat([x[..., None], y[..., None], part[..., None], uv], -1))
    return outputs, proposals, masks, parts, points


def _reference_losses(outputs, proposals, masks, parts, points, template=None, vertices=None,
                      temperature=1.0):
    """The same losses written out: torchvision's RoI Align for the dense targets,
    ``F.grid_sample`` for the point reads, ``F.cross_entropy`` / ``F.smooth_l1_loss``."""
    from torchvision.ops import roi_align as tv_roi_align

    M = outputs["coarse"].shape[-1]
    boxes = torch.cat(proposals)
    rois = torch.cat([torch.cat([torch.full((len(b), 1), i, dtype=b.dtype), b], 1)
                      for i, b in enumerate(proposals)])  # (R, 5) for an image batch
    image = torch.cat([torch.full((len(b),), i) for i, b in enumerate(proposals)])
    mask_stack = torch.cat(masks).to(boxes.dtype)[:, None]  # (R, 1, H, W): RoI r reads row r
    own = torch.cat([torch.arange(len(boxes), dtype=boxes.dtype)[:, None], boxes], 1)
    fg = tv_roi_align(mask_stack, own, M, 1.0, -1, True)[:, 0] >= 0.5  # (R, M, M)
    onehot = F.one_hot(torch.cat(parts), 11).permute(0, 3, 1, 2).to(boxes.dtype)
    dense = tv_roi_align(onehot, own, M, 1.0, 2, True).argmax(1)  # (R, M, M)
    assert rois.shape == own.shape and image.shape == (len(boxes),)
    out = {"coarse": F.cross_entropy(outputs["coarse"], fg.long()),
           "segm": F.cross_entropy(outputs["fine"], dense)}
    reads, rows = [], []
    for r in range(len(boxes)):
        x1, y1, x2, y2 = boxes[r].tolist()
        for x, y, part, u, v in torch.cat(points)[r].tolist():
            if part == 0 or not (x1 <= x <= x2 and y1 <= y <= y2):
                continue
            grid = torch.tensor([[[[2 * (x - x1) / (x2 - x1) - 1, 2 * (y - y1) / (y2 - y1) - 1]]]],
                                dtype=boxes.dtype)
            maps = {k: F.grid_sample(t[r:r + 1], grid, align_corners=False,
                                     padding_mode="border")[0, :, 0, 0]
                    for k, t in outputs.items()}
            reads.append(maps)
            rows.append((int(part), u, v))
    part = torch.tensor([p for p, _, _ in rows])
    fine = torch.stack([m["fine"] for m in reads])  # (n, 11)
    u_hat = torch.stack([m["u"][p] for m, (p, _, _) in zip(reads, rows, strict=True)])
    v_hat = torch.stack([m["v"][p] for m, (p, _, _) in zip(reads, rows, strict=True)])
    u_true = torch.tensor([u for _, u, _ in rows], dtype=boxes.dtype)
    v_true = torch.tensor([v for _, _, v in rows], dtype=boxes.dtype)
    out["parts"] = F.cross_entropy(fine, part)
    out["uv"] = (F.smooth_l1_loss(u_hat, u_true, beta=0.1)
                 + F.smooth_l1_loss(v_hat, v_true, beta=0.1))
    if vertices is not None:
        e = torch.stack([m["embedding"] for m in reads])  # (n, E)
        target = template.nearest_vertex(part, torch.stack([u_true, v_true], 1))
        logits = -((e[:, None, :] - vertices[None]) ** 2).sum(-1) / temperature  # (n, V)
        out["cse"] = F.cross_entropy(logits, target)
    return out, len(rows)


@pytest.mark.parametrize(("counts", "M", "N"), [((2, 1), 6, 5), ((1,), 4, 8), ((3, 2), 8, 12)])
def test_losses_random_against_a_written_out_reference(counts, M, N):
    from coursekit.densepose.cse import body_template

    g = torch.Generator().manual_seed(sum(counts) * 100 + M)
    outputs, proposals, masks, parts, points = _random_case(g, counts, M, N, embed=3)
    template = body_template(0.1)
    vertices = torch.randn(len(template), 3, generator=g, dtype=torch.float64)
    ours = densepose_losses(outputs, proposals, masks, points, gt_parts=parts,
                            template=template, vertex_embeddings=vertices, temperature=0.7)
    ref, n = _reference_losses(outputs, proposals, masks, parts, points, template, vertices,
                               temperature=0.7)
    assert n >= 2  # points were read (others fall outside their box or have I = 0)
    assert set(ours) == set(ref) == {"coarse", "segm", "parts", "uv", "cse"}
    for k in ref:
        assert ours[k].dtype == torch.float64
        torch.testing.assert_close(ours[k], ref[k], rtol=1e-10, atol=1e-12, msg=k)


def test_losses_gradcheck_float64():
    from coursekit.densepose.cse import body_template

    g = torch.Generator().manual_seed(3)
    outputs, proposals, masks, parts, points = _random_case(g, (1, 1), M=3, N=2, embed=2)
    # 3 points, all inside their boxes on real parts (the smooth-L1 kink at |d| = 0.1 is
    # far: the maps are N(0, 1), the targets in [0, 1])
    for pts, box in zip(points, proposals, strict=True):
        pts[0, :, 0] = box[0, 0] + torch.tensor([0.3, 0.7], dtype=torch.float64) * (box[0, 2]
                                                                                    - box[0, 0])
        pts[0, :, 1] = box[0, 1] + torch.tensor([0.6, 0.2], dtype=torch.float64) * (box[0, 3]
                                                                                    - box[0, 1])
        pts[0, :, 2] = torch.tensor([3.0, 9.0])
    points[1][0, 1, 2] = 0  # I = 0: not a point
    template = body_template(0.2)
    vertices = torch.randn(len(template), 2, generator=g, dtype=torch.float64)
    names = list(outputs)

    def total(*tensors):
        maps = dict(zip(names, tensors[:-1], strict=True))
        losses = densepose_losses(maps, proposals, masks, points, gt_parts=parts,
                                  template=template, vertex_embeddings=tensors[-1])
        return torch.stack(list(losses.values()))  # (5,)

    inputs = [outputs[k].requires_grad_(True) for k in names] + [vertices.requires_grad_(True)]
    assert len(sample_at_points(torch.cat([outputs["fine"]]), torch.cat(proposals),
                                torch.cat(points))[1]) == 3
    assert torch.autograd.gradcheck(total, inputs)


def test_losses_bad_input_names_the_argument():
    g = torch.Generator().manual_seed(0)
    outputs, proposals, masks, parts, points = _random_case(g, (2, 1), M=4, N=3)
    kw = {"gt_parts": parts}
    densepose_losses(outputs, proposals, masks, points, **kw)  # fits
    with pytest.raises(ValueError, match=r"gt_masks\[0\] must be Tensor\[2, H, W\] \(one mask "
                                         r"per proposal of image 0\), got Tensor\[3, 24, 24\]"):
        densepose_losses(outputs, proposals, [torch.cat([masks[0], masks[1]]), masks[1]], points,
                         **kw)
    with pytest.raises(ValueError, match=r"gt_masks, gt_points need one entry per image|"
                                         r"need one entry per image, got proposals 2, gt_masks 1"):
        densepose_losses(outputs, proposals, masks[:1], points, **kw)
    with pytest.raises(TypeError, match=r"gt_masks\[1\] must be a bool"):
        densepose_losses(outputs, proposals, [masks[0], masks[1].long()], points, **kw)
    bad = [p.clone() for p in points]
    bad[1][0, 0, 2] = 11  # part 11 of a 10-part model: was a raw IndexError from cross_entropy
    with pytest.raises(ValueError, match=r"gt_points\[1\] part indices \(column 2, I\) must be "
                                         r"whole numbers 0\.\.10.*got values from .* to 11"):
        densepose_losses(outputs, proposals, masks, bad, **kw)
    bad[1][0, 0, 2] = 2.5
    with pytest.raises(ValueError, match=r"gt_points\[1\] part indices"):
        densepose_losses(outputs, proposals, masks, bad, **kw)
    with pytest.raises(ValueError, match=r"gt_points\[0\] must be Tensor\[2, N, 5\]"):
        densepose_losses(outputs, proposals, masks, [points[0][:, :, :4], points[1]], **kw)
    with pytest.raises(TypeError, match=r"gt_points\[0\] must be a float"):
        densepose_losses(outputs, proposals, masks, [points[0].long(), points[1]], **kw)
    with pytest.raises(ValueError, match=r"gt_parts\[0\] must hold part indices 0\.\.10"):
        densepose_losses(outputs, proposals, masks, points, gt_parts=[parts[0] + 11, parts[1]])
    with pytest.raises(ValueError, match=r"proposals must hold R = 3 boxes"):
        densepose_losses(outputs, [proposals[0], proposals[1][:0]], [masks[0], masks[1][:0]],
                         [points[0], points[1][:0]], gt_parts=[parts[0], parts[1][:0]])
    with pytest.raises(ValueError, match=r"outputs must hold"):
        densepose_losses({"coarse": outputs["coarse"]}, proposals, masks, points)
    with pytest.raises(ValueError, match=r'outputs\["u"\] must be Tensor\[3, C, 4, 4\]'):
        densepose_losses({**outputs, "u": outputs["u"][:, :, :2]}, proposals, masks, points)
    with pytest.raises(ValueError, match="template must be given with vertex_embeddings"):
        densepose_losses({**outputs, "embedding": outputs["u"][:, :2]}, proposals, masks,
                         points, vertex_embeddings=torch.zeros(5, 2, dtype=torch.float64))


# ---- gradchecks of the readers ----------------------------------------------------------


def test_sample_at_points_gradcheck():
    g = torch.Generator().manual_seed(4)
    maps = torch.randn(2, 3, 5, 5, generator=g, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[1.0, 2.0, 11.0, 9.0], [4.0, 0.5, 9.5, 12.0]], dtype=torch.float64)
    pts = torch.zeros(2, 3, 5, dtype=torch.float64)
    pts[0, :, :3] = torch.tensor([[3.3, 4.1, 2], [8.7, 7.9, 5], [10.9, 2.2, 1]])
    pts[1, :2, :3] = torch.tensor([[5.1, 3.3, 7], [8.2, 10.1, 4]])
    assert len(sample_at_points(maps, boxes, pts)[0]) == 5
    assert torch.autograd.gradcheck(lambda m: sample_at_points(m, boxes, pts)[0], (maps,))


def test_paste_in_image_gradcheck():
    g = torch.Generator().manual_seed(5)
    maps = torch.randn(2, 2, 4, 4, generator=g, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[1.3, 0.7, 8.2, 6.9], [0.0, 2.5, 5.5, 9.0]], dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda m: paste_in_image(m, boxes, (10, 9))[0], (maps,))


def test_sample_at_points_and_paste_bad_input():
    maps = torch.zeros(2, 3, 4, 4)
    boxes = torch.tensor([[0.0, 0, 4, 4], [1.0, 1, 5, 5]])
    with pytest.raises(ValueError, match=r"boxes and points must be Tensor\[2, 4\] and "
                                         r"Tensor\[2, N, 5\]"):
        sample_at_points(maps, boxes, torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match=r"maps must be square"):
        sample_at_points(torch.zeros(2, 3, 4, 5), boxes, torch.zeros(2, 3, 5))
    with pytest.raises(TypeError, match=r"maps must be a float"):
        sample_at_points(maps.long(), boxes, torch.zeros(2, 3, 5))
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[2, 4\] \(one per map\)"):
        paste_in_image(maps, boxes[:1], (8, 8))
    with pytest.raises(ValueError, match=r"image_size must be positive"):
        paste_in_image(maps, boxes, (0, 8))
    with pytest.raises(ValueError, match=r"maps must be Tensor\[D, C, M, M\]"):
        paste_in_image(maps[0], boxes, (8, 8))


# ---- flip test-time augmentation (hflip_maps) -------------------------------------------


def _random_maps(R=2, M=3, seed=6, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return {k: torch.rand(R, c, M, M, generator=g, dtype=dtype)
            for k, c in (("coarse", 2), ("fine", 11), ("u", 11), ("v", 11), ("embedding", 4))}


def test_hflip_maps_hand_case():
    maps = {k: torch.zeros(1, c, 1, 3) for k, c in (("coarse", 2), ("fine", 11), ("u", 11),
                                                     ("v", 11))}
    maps["coarse"][0, 1] = torch.tensor([1.0, 2.0, 3.0])
    maps["fine"][0, 3] = torch.tensor([5.0, 0.0, 0.0])  # a left upper arm on the left column
    maps["u"][0, 3] = torch.tensor([0.25, 0.0, 0.0])
    maps["v"][0, 3] = torch.tensor([0.125, 0.0, 0.0])
    maps["v"][0, 2] = torch.tensor([0.5, 0.75, 1.0])  # the torso keeps its channel
    out = hflip_maps(maps)
    assert sorted(out) == ["coarse", "fine", "u", "v"]  # the embedding is left out
    assert out["coarse"][0, 1, 0].tolist() == [3.0, 2.0, 1.0]
    # ... and becomes a right upper arm (channel 4) on the right column
    assert out["fine"][0, 4, 0].tolist() == [0.0, 0.0, 5.0] and out["fine"][0, 3].abs().sum() == 0
    assert out["u"][0, 4, 0].tolist() == [0.0, 0.0, 0.25]
    assert out["v"][0, 4, 0].tolist() == [1.0, 1.0, 0.875]  # V -> 1 - V
    assert out["v"][0, 2, 0].tolist() == [0.0, 0.25, 0.5]
    assert out["v"][0, 0, 0].tolist() == [1.0, 1.0, 1.0]


def test_hflip_maps_undoes_itself_and_gradcheck():
    maps = _random_maps()
    twice = hflip_maps(hflip_maps(maps))
    for k in twice:
        assert torch.allclose(twice[k], maps[k], atol=1e-15)
    leaves = [maps[k].clone().requires_grad_(True) for k in ("coarse", "fine", "u", "v")]
    assert torch.autograd.gradcheck(
        lambda *t: tuple(hflip_maps(dict(zip(("coarse", "fine", "u", "v"), t))).values()),
        tuple(leaves))


def test_hflip_maps_equals_the_charts_of_the_mirrored_body():
    """Reference: ShapesWorld's own chart (``persons.part_uv``). Each part is a random capsule;
    its mirror image (``x -> W - x``) is the capsule of the mirrored part. A perfect head on
    the mirrored image predicts the mirrored charts; ``hflip_maps`` carries them back onto
    the original charts (float64, every part, the head's disk chart included)."""
    from coursekit.data.persons import part_uv
    from coursekit.densepose.parts import PART_SYMMETRIES

    W = M = 12
    g = torch.Generator().manual_seed(7)
    angle = torch.rand(11, generator=g, dtype=torch.float64) * 6.283
    seg = torch.stack([torch.rand(11, generator=g, dtype=torch.float64) * W,
                       torch.rand(11, generator=g, dtype=torch.float64) * W,
                       angle.cos(), angle.sin(),
                       1 + torch.rand(11, generator=g, dtype=torch.float64) * 5,
                       0.5 + torch.rand(11, generator=g, dtype=torch.float64) * 3], dim=1)
    mirror = seg.clone()
    mirror[:, 0], mirror[:, 2] = W - seg[:, 0], -seg[:, 2]
    c = torch.arange(M, dtype=torch.float64) + 0.5  # pixel centres: box [0, 0, W, W], M = W
    Y, X = torch.meshgrid(c, c, indexing="ij")

    def charts(segments, xs, owner):  # Tensor[2, 11, M, M]: part k's chart from capsule owner[k]
        out = torch.zeros(2, 11, M, M, dtype=torch.float64)
        for k in range(1, 11):
            part = torch.full((M * M,), k)
            s = segments[owner[k]].expand(M * M, 6)
            out[:, k] = part_uv(part, xs.flatten(), Y.flatten(), s).view(2, M, M)
        return out

    original = charts(seg, X, list(range(11)))
    # in the mirror image, part PART_SYMMETRIES[k] is the mirror of part k's capsule
    owner = [PART_SYMMETRIES.index(k) for k in range(11)]
    mirrored = charts(mirror, X, owner)  # read at the mirror image's own pixel centres
    fine = torch.zeros(1, 11, M, M, dtype=torch.float64)
    back = hflip_maps({"coarse": torch.zeros(1, 2, M, M, dtype=torch.float64), "fine": fine,
                       "u": mirrored[None, 0], "v": mirrored[None, 1]})
    assert torch.allclose(back["u"][0, 1:], original[0, 1:], atol=1e-12)
    assert torch.allclose(back["v"][0, 1:], original[1, 1:], atol=1e-12)
    assert 0.1 < float(original[1, 1:].std())  # the charts are not flat


def test_hflip_maps_bad_input_names_the_argument():
    maps = _random_maps()
    with pytest.raises(TypeError, match="outputs must be a dict"):
        hflip_maps([maps["fine"]])
    with pytest.raises(ValueError, match=r"outputs must hold \('coarse', 'fine', 'u', 'v'\)"):
        hflip_maps({k: v for k, v in maps.items() if k != "v"})
    with pytest.raises(ValueError, match=r'outputs\["u"\] and outputs\["v"\] must be shaped'):
        hflip_maps({**maps, "u": maps["u"][:, :5]})
    with pytest.raises(TypeError, match=r'outputs\["fine"\] must be a float'):
        hflip_maps({**maps, "fine": maps["fine"].long()})
    with pytest.raises(ValueError, match=r"symmetries must be a permutation of 0..10"):
        hflip_maps(maps, symmetries=[0, 1, 2, 3, 3, 5, 6, 7, 8, 9, 10])
    # a permutation, but not a mirror's: the arms cycle 3 -> 4 -> 5 -> 3 instead of swapping
    with pytest.raises(ValueError, match=r"symmetries must be .* its own inverse"):
        hflip_maps(maps, symmetries=[0, 1, 2, 4, 5, 3, 6, 7, 8, 9, 10])
    with pytest.raises(ValueError, match=r"symmetries must hold K = 11 indices \(one per "
                                         r'channel of outputs\["fine"\]\)'):
        hflip_maps(maps, symmetries=list(range(10)))
    with pytest.raises(TypeError, match=r"symmetries must hold integers"):
        hflip_maps(maps, symmetries=torch.arange(11.0))
    with pytest.raises(ValueError, match=r'outputs\["coarse"\] must be'):
        hflip_maps({**maps, "coarse": maps["coarse"][0]})
