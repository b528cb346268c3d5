"""The DensePose head: RoI features -> per pixel fg/bg, the body part, and U, V on that part.

Lecture: *Dense correspondences (DensePose)* — one more head on Mask R-CNN's RoI features
(``coursekit.instance.heads``). For each person RoI, on an ``M × M`` grid over its box::

    Tensor[R, D, S, S] --num_convs 3×3 convs + ReLU--> [R, dim, S, S]             (convs)
        --transposed conv 4×4, stride 2--> [R, 2 + 3 (P + 1) + E, 2S, 2S]      (predictor)
        = coarse [R, 2]    foreground / background
          fine   [R, P + 1] the part (P = 10 ShapesWorld parts; 0 = background)
          u, v   [R, P + 1] U and V *for every part* (each part has its own chart)
          embedding [R, E]  continuous surface embedding (cse.py)

Losses (``densepose_losses``), as DensePose R-CNN:

* coarse: per-pixel cross-entropy against the person's mask cropped to the box (task 1);
* segm: per-pixel cross-entropy of the fine logits against the person's part map cropped to
  the box (task 1's part segmentation; DensePose trains its 15-channel coarse
  segmentation, 14 parts + background, on these maps);
* fine parts: cross-entropy **at the annotated points** (task 2), the logits read at each
  point's position by bilinear interpolation;
* U, V: smooth-L1 at the annotated points, on the channel of the **true part** only; the
  other parts' charts say nothing about this point;
* CSE: ``cse_loss`` at the points against the template vertex of their ``(I, U, V)``.

At test time (``decode_iuv``) a pixel is a body pixel where the coarse map says
foreground, its part is the fine arg max over parts 1..P, and its U, V are read from that
part's channels. ``paste_in_image`` carries the ``M × M`` maps into the image (Detectron2's
pixel grid, as lesson 05's ``paste_masks_in_image(aligned=True)``). ``compare_with_detectron2``
prints this head beside Detectron2's DensePose head. Tested in tests/densepose/test_uv_head.py.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit.densepose.cse import SurfaceEmbedding, body_template, cse_loss
from coursekit.densepose.parts import NUM_PARTS, PART_SYMMETRIES
from coursekit.detection.roi_align import roi_align
from coursekit.instance.heads import RoIHead, head_convs
from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.instance.targets import project_masks_on_boxes
from coursekit.pose.flip import mirror_index
from coursekit.upsampling import bilinear_sample
from coursekit.validators import (
    check_boxes,
    describe,
    positive_int,
    require_dim,
    require_floating,
    require_integer,
    require_tensor,
    shape_str,
)

__all__ = ["DensePoseHead", "DensePosePredictor", "compare_with_detectron2", "decode_iuv",
           "densepose_losses", "hflip_maps", "paste_in_image", "sample_at_points"]

OUTPUTS = ("coarse", "fine", "u", "v", "embedding")
DEFAULT_LOSS_WEIGHTS = {"coarse": 1.0, "segm": 1.0, "parts": 1.0, "uv": 10.0, "cse": 0.5}


class DensePosePredictor(nn.Module):
    """One 4 × 4 stride-2 transposed conv to all outputs: ``2 + 3 (P + 1) + E`` channels.

    ``forward`` splits them into ``{"coarse", "fine", "u", "v", "embedding"}``.
    """

    def __init__(self, in_channels: int, num_parts: int = NUM_PARTS, embed_dim: int = 16) -> None:
        super().__init__()
        self.num_parts = positive_int(num_parts, "num_parts")
        self.embed_dim = positive_int(embed_dim, "embed_dim", minimum=0)
        self.sizes = [2, num_parts + 1, num_parts + 1, num_parts + 1, embed_dim]
        self.deconv = nn.ConvTranspose2d(positive_int(in_channels, "in_channels"),
                                         sum(self.sizes), 4, stride=2, padding=1)
        nn.init.normal_(self.deconv.weight, std=0.01)  # outputs start near 0
        nn.init.zeros_(self.deconv.bias)

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        y = self.deconv(x)  # (R, 2 + 3 (P + 1) + E, 2S, 2S)
        return dict(zip(OUTPUTS, y.split(self.sizes, dim=1), strict=True))


class DensePoseHead(RoIHead):
    """DensePose + CSE on the RoI features of persons, a ``coursekit.instance`` extra head.

    ``DensePoseHead(roi_pool, in_channels, num_parts=10, dim=64, num_convs=4,
    embed_dim=16, spacing=0.03, temperature=1.0, labels=None, loss_weights=None)``:
    ``roi_pool`` crops ``S × S`` features (``S = 28`` gives ``56 × 56`` outputs); ``labels``
    the person class index; ``spacing`` the template's vertex spacing (``body_template``),
    one learnable ``embed_dim`` vector per vertex in ``vertex_embeddings``. Trains on the
    matched ground truth's ``"masks"`` (bool Tensor[G, H, W]), ``"parts"`` (int64
    Tensor[G, H, W], task 1: ``parts.person_parts``) and ``"densepose"`` points (Tensor[G, N,
    5] rows ``(x, y, I, U, V)``, ``I = 0``: no point; task 2: ``parts.sample_points``).
    ``predict`` adds ``densepose_coarse``, ``_fine``, ``_u``, ``_v``, ``_embedding``: the raw
    ``M × M`` maps of each detection (``decode_iuv`` / ``paste_in_image`` read them).
    """

    target_keys = ("masks", "densepose", "parts")

    def __init__(self, roi_pool: MultiScaleRoIAlign, in_channels: int,
                 num_parts: int = NUM_PARTS, dim: int = 64, num_convs: int = 4,
                 embed_dim: int = 16, spacing: float = 0.03, temperature: float = 1.0,
                 labels: Sequence[int] | None = None,
                 loss_weights: dict[str, float] | None = None) -> None:
        super().__init__(roi_pool, labels)
        self.in_channels = positive_int(in_channels, "in_channels")
        positive_int(dim, "dim")
        positive_int(num_convs, "num_convs", minimum=0)
        unknown = set(loss_weights or {}) - set(DEFAULT_LOSS_WEIGHTS)
        if unknown:
            raise ValueError(f"loss_weights has unknown keys {sorted(unknown)}; "
                             f"known: {sorted(DEFAULT_LOSS_WEIGHTS)}")
        self.loss_weights = {**DEFAULT_LOSS_WEIGHTS, **(loss_weights or {})}
        self.temperature = float(temperature)
        self.convs = head_convs(in_channels, dim, num_convs)
        self.predictor = DensePosePredictor(dim if num_convs else in_channels, num_parts,
                                            embed_dim)
        self.template = body_template(spacing)  # plain tensors, rebuilt (not in the state)
        self.vertex_embeddings = SurfaceEmbedding(len(self.template), max(embed_dim, 1))

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        """RoI features Tensor[R, in_channels, S, S] -> the maps, each Tensor[R, C, 2S, 2S]."""
        expected = f"Tensor[R, {self.in_channels}, S, S] (RoI features)"
        require_dim(x, "x", 4, expected)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x must be {expected}, got {shape_str(x)}")
        return self.predictor(self.convs(x))

    def loss(self, outputs: dict[str, Tensor], proposals: list[Tensor],
             targets: list[dict[str, Tensor]]) -> dict[str, Tensor]:
        """The five weighted losses ``loss_densepose_{coarse, segm, parts, uv, cse}``."""
        losses = densepose_losses(
            outputs, proposals, [t["masks"] for t in targets],
            [t["densepose"] for t in targets], gt_parts=[t["parts"] for t in targets],
            template=self.template,
            vertex_embeddings=self.vertex_embeddings() if self.predictor.embed_dim else None,
            temperature=self.temperature)
        return {f"loss_densepose_{k}": self.loss_weights[k] * v for k, v in losses.items()}

    def predict(self, outputs: dict[str, Tensor], boxes: list[Tensor],
                labels: list[Tensor]) -> dict[str, Tensor]:
        """``{"densepose_<name>": Tensor[D, C, M, M]}`` for each of the five maps."""
        return {f"densepose_{k}": v for k, v in outputs.items()}


def sample_at_points(maps: Tensor, boxes: Tensor, points: Tensor) -> tuple[Tensor, Tensor]:
    """Read RoI maps at annotated points: ``(values Tensor[n, C], points Tensor[n, 5])``.

    Args:
        maps: Tensor[R, C, M, M], one map per box (on the box's ``M × M`` grid).
        boxes: Tensor[R, 4] xyxy, the boxes the maps cover.
        points: Tensor[R, N, 5], rows ``(x, y, I, U, V)`` in image pixels (``I = 0``: none).

    A point at ``(x, y)`` sits at grid position ``((x - x1) / w M, (y - y1) / h M)``; cell
    ``j`` covers ``[j, j + 1)`` with its centre at ``j + 0.5`` (Detectron2's grid), so the
    value is ``bilinear_sample`` at index ``position - 0.5``. Only points with ``I > 0``
    inside their box are kept (``n`` of them, box by box).
    """
    require_floating(maps, "maps", "a float Tensor[R, C, M, M]")
    require_dim(maps, "maps", 4, "Tensor[R, C, M, M]")
    R, C, M, M2 = maps.shape
    if M != M2:
        raise ValueError(f"maps must be square, Tensor[R, C, M, M], got {shape_str(maps)}")
    check_boxes(boxes, "boxes", floating=True)
    require_floating(points, "points", "a float Tensor[R, N, 5] (x, y, I, U, V)")
    if len(boxes) != R or points.dim() != 3 or points.shape[0] != R or points.shape[2] != 5:
        raise ValueError(f"boxes and points must be Tensor[{R}, 4] and Tensor[{R}, N, 5] "
                         f"(one row per map), got {shape_str(boxes)} and {shape_str(points)}")
    x1, y1, x2, y2 = boxes.to(maps.dtype)[:, None, :].unbind(-1)  # (R, 1) each
    px, py = points[..., 0].to(maps.dtype), points[..., 1].to(maps.dtype)  # (R, N)
    gx = (px - x1) / (x2 - x1).clamp(min=1e-6) * M  # (R, N) grid position
    gy = (py - y1) / (y2 - y1).clamp(min=1e-6) * M
    keep = (points[..., 2] > 0) & (gx >= 0) & (gx <= M) & (gy >= 0) & (gy <= M)
    r, n = torch.nonzero(keep, as_tuple=True)
    values = bilinear_sample(maps, gy[r, n] - 0.5, gx[r, n] - 0.5, batch_index=r)  # (n, C)
    return values, points[r, n]


def densepose_losses(outputs: dict[str, Tensor], proposals: list[Tensor],
                     gt_masks: list[Tensor], gt_points: list[Tensor],
                     gt_parts: list[Tensor] | None = None, template=None,
                     vertex_embeddings: Tensor | None = None,
                     temperature: float = 1.0) -> dict[str, Tensor]:
    """DensePose's losses (module docstring) -> ``{"coarse", "segm", "parts", "uv", "cse"}``.

    Args:
        outputs: the head's maps, each Tensor[R, C, M, M] over all images' RoIs in order.
        proposals: per image Tensor[R_i, 4], the RoIs.
        gt_masks: per image bool Tensor[R_i, H, W], each RoI's matched person mask.
        gt_points: per image Tensor[R_i, N, 5], each RoI's matched annotated points.
        gt_parts: per image int64 Tensor[R_i, H, W], each RoI's part map (task 1); without
            it ``"segm"`` is left out.
        template, vertex_embeddings: the CSE template (``BodyTemplate``) and Tensor[V, E];
            without them ``"cse"`` is left out.

    ``parts``: mean cross-entropy of the fine logits at the points; ``uv``: mean over the
    points of ``smooth_l1(U) + smooth_l1(V)`` (``beta = 0.1``) on the true part's channel.
    A batch without points gives zeros that keep the graph. Arguments that do not fit (a
    mask, point or part map count other than the image's proposals, a part index outside
    ``0..P``, ``vertex_embeddings`` without ``template``) raise an error naming them.
    """
    _check_loss_inputs(outputs, proposals, gt_masks, gt_points, gt_parts, template,
                       vertex_embeddings)
    coarse = outputs["coarse"]
    R, _, M, _ = coarse.shape
    zero = sum(v.sum() for v in outputs.values()) * 0
    if R == 0:
        return {"coarse": zero, **({"segm": zero} if gt_parts is not None else {}),
                "parts": zero, "uv": zero,
                **({"cse": zero + (vertex_embeddings.sum() * 0).to(zero.dtype)}  # in the graph
                   if vertex_embeddings is not None else {})}
    targets = [project_masks_on_boxes(m, p.to(coarse.dtype), torch.arange(len(p),
                                      device=p.device), M, aligned=True)
               for p, m in zip(proposals, gt_masks, strict=True) if len(p)]
    fg = (torch.cat(targets) >= 0.5).long()  # (R, M, M)
    acc = torch.promote_types(coarse.dtype, torch.float32)  # at least float32 (float16 maps)
    losses = {"coarse": F.cross_entropy(coarse.to(acc), fg).to(coarse.dtype)}
    if gt_parts is not None:
        dense = [_project_parts(t, p.to(coarse.dtype), M, outputs["fine"].shape[1])
                 for p, t in zip(proposals, gt_parts, strict=True) if len(p)]
        losses["segm"] = F.cross_entropy(outputs["fine"].to(acc), torch.cat(dense)).to(
            coarse.dtype)
    boxes = torch.cat(proposals).to(coarse.dtype)  # (R, 4)
    points = torch.cat(list(gt_points)).to(coarse.dtype)  # (R, N, 5)
    names = ["fine", "u", "v"] + (["embedding"] if vertex_embeddings is not None else [])
    sizes = [outputs[k].shape[1] for k in names]
    stacked = torch.cat([outputs[k] for k in names], dim=1)  # one bilinear read for all maps
    values, pts = sample_at_points(stacked, boxes, points)  # (n, C), (n, 5)
    if len(pts) == 0:
        losses.update({"parts": zero, "uv": zero})
        if vertex_embeddings is not None:
            losses["cse"] = zero + (vertex_embeddings.sum() * 0).to(zero.dtype)
        return losses
    read = dict(zip(names, values.split(sizes, dim=1), strict=True))
    part = pts[:, 2].long()  # (n,) true part 1..P
    losses["parts"] = F.cross_entropy(read["fine"].to(acc), part).to(coarse.dtype)
    rows = torch.arange(len(part), device=part.device)
    u_hat, v_hat = read["u"][rows, part], read["v"][rows, part]  # the true part's chart only
    losses["uv"] = (F.smooth_l1_loss(u_hat, pts[:, 3], beta=0.1)
                    + F.smooth_l1_loss(v_hat, pts[:, 4], beta=0.1))
    if vertex_embeddings is not None:
        target = template.nearest_vertex(part, pts[:, 3:].double())  # (n,)
        losses["cse"] = cse_loss(read["embedding"], vertex_embeddings, target.to(part.device),
                                 temperature)
    return losses


def _check_loss_inputs(outputs: dict[str, Tensor], proposals: list[Tensor],
                       gt_masks: list[Tensor], gt_points: list[Tensor],
                       gt_parts: list[Tensor] | None, template,
                       vertex_embeddings: Tensor | None) -> None:
    """``densepose_losses``' arguments: one entry per image, one row per proposal, part
    indices that exist (``ValueError`` / ``TypeError`` naming the argument)."""
    if not isinstance(outputs, dict):
        raise TypeError(f"outputs must be a dict of the head's maps, got {describe(outputs)}")
    needed = OUTPUTS[:4] + (("embedding",) if vertex_embeddings is not None else ())
    missing = [k for k in needed if k not in outputs]
    if missing:
        raise ValueError(f"outputs must hold {needed}, got keys {sorted(outputs)}")
    for name in needed:
        require_floating(outputs[name], f'outputs["{name}"]', "a float Tensor[R, C, M, M]")
        require_dim(outputs[name], f'outputs["{name}"]', 4, "Tensor[R, C, M, M]")
    coarse = outputs["coarse"]
    R, _, M, M2 = coarse.shape
    if coarse.shape[1] != 2 or M != M2:
        raise ValueError(f'outputs["coarse"] must be Tensor[R, 2, M, M], got {shape_str(coarse)}')
    for name in needed[1:]:
        t = outputs[name]
        if t.shape[0] != R or t.shape[2:] != (M, M):
            raise ValueError(f'outputs["{name}"] must be Tensor[{R}, C, {M}, {M}] like '
                             f'outputs["coarse"], got {shape_str(t)}')
    P1 = outputs["fine"].shape[1]  # parts + background
    if outputs["u"].shape[1] != P1 or outputs["v"].shape[1] != P1:
        raise ValueError(f'outputs["u"] and outputs["v"] must have the {P1} channels of '
                         f'outputs["fine"], got {shape_str(outputs["u"])} and '
                         f'{shape_str(outputs["v"])}')
    lists = {"proposals": proposals, "gt_masks": gt_masks, "gt_points": gt_points}
    if gt_parts is not None:
        lists["gt_parts"] = gt_parts
    for name, value in lists.items():
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{name} must be a list with one Tensor per image, "
                            f"got {describe(value)}")
    if len({len(v) for v in lists.values()}) != 1:
        raise ValueError(f"{', '.join(lists)} need one entry per image, got "
                         + ", ".join(f"{k} {len(v)}" for k, v in lists.items()))
    for i, p in enumerate(proposals):
        check_boxes(p, f"proposals[{i}]")
    if sum(len(p) for p in proposals) != R:
        raise ValueError(f"proposals must hold R = {R} boxes in all (one per RoI of outputs), "
                         f"got {[describe(p) for p in proposals]}")
    for i, (p, m, pts) in enumerate(zip(proposals, gt_masks, gt_points, strict=True)):
        k = len(p)
        require_tensor(m, f"gt_masks[{i}]", f"a bool Tensor[{k}, H, W]")
        if m.dim() != 3 or len(m) != k:
            raise ValueError(f"gt_masks[{i}] must be Tensor[{k}, H, W] (one mask per proposal "
                             f"of image {i}), got {describe(m)}")
        if not (m.dtype == torch.bool or m.is_floating_point()):
            raise TypeError(f"gt_masks[{i}] must be a bool (or soft float) Tensor[{k}, H, W], "
                            f"got {describe(m)}")
        require_floating(pts, f"gt_points[{i}]", f"a float Tensor[{k}, N, 5] (x, y, I, U, V)")
        if pts.dim() != 3 or len(pts) != k or pts.shape[2] != 5:
            raise ValueError(f"gt_points[{i}] must be Tensor[{k}, N, 5] (x, y, I, U, V; one row "
                             f"of points per proposal of image {i}), got {shape_str(pts)}")
        part = pts[..., 2]
        if part.numel() and (bool((part != part.round()).any()) or int(part.min()) < 0
                             or int(part.max()) > P1 - 1):
            raise ValueError(f"gt_points[{i}] part indices (column 2, I) must be whole numbers "
                             f"0..{P1 - 1} (0: no point; outputs[\"fine\"] has {P1} channels), "
                             f"got values from {float(part.min()):g} to {float(part.max()):g}")
        if gt_parts is not None:
            t = gt_parts[i]
            require_integer(t, f"gt_parts[{i}]", f"an int64 Tensor[{k}, H, W] of part indices")
            if t.dim() != 3 or len(t) != k:
                raise ValueError(f"gt_parts[{i}] must be Tensor[{k}, H, W] (one part map per "
                                 f"proposal of image {i}), got {shape_str(t)}")
            if t.numel() and (int(t.min()) < 0 or int(t.max()) > P1 - 1):
                raise ValueError(f"gt_parts[{i}] must hold part indices 0..{P1 - 1}, got values "
                                 f"from {int(t.min())} to {int(t.max())}")
    if vertex_embeddings is not None:
        if template is None:
            raise ValueError("template must be given with vertex_embeddings (the CSE target "
                             "of a point is the template's vertex nearest its (I, U, V))")
        require_floating(vertex_embeddings, "vertex_embeddings", "a float Tensor[V, E]")
        if vertex_embeddings.dim() != 2 or len(vertex_embeddings) != len(template) or \
                vertex_embeddings.shape[1] != outputs["embedding"].shape[1]:
            raise ValueError(f"vertex_embeddings must be Tensor[{len(template)}, "
                             f"{outputs['embedding'].shape[1]}] (one row per template vertex, "
                             f"as wide as outputs[\"embedding\"]), "
                             f"got {shape_str(vertex_embeddings)}")


def _project_parts(parts: Tensor, boxes: Tensor, M: int, num_classes: int) -> Tensor:
    """int64 Tensor[R, M, M]: each box's part map on the box's M × M grid (RoI Align of the
    one-hot map, Detectron2's grid, then the arg max)."""
    onehot = F.one_hot(parts.long(), num_classes).permute(0, 3, 1, 2).to(boxes.dtype)
    rois = torch.cat([torch.arange(len(boxes), device=boxes.device, dtype=boxes.dtype)[:, None],
                      boxes], dim=1)  # (R, 5)
    return roi_align(onehot, rois, M, 1.0, 2, True).argmax(1)  # (R, M, M)


def decode_iuv(coarse: Tensor, fine: Tensor, u: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
    """Maps -> ``(parts int64 Tensor[..., H, W], uv Tensor[..., 2, H, W])``.

    ``coarse`` Tensor[..., 2, H, W], ``fine``, ``u``, ``v`` Tensor[..., P + 1, H, W]: the
    part is ``1 + argmax(fine[1:])`` where ``coarse`` says foreground (channel 1 > channel
    0), else 0; U and V are that part's channels, clamped to [0, 1] (0 on background).
    """
    for name, t in (("coarse", coarse), ("fine", fine), ("u", u), ("v", v)):
        require_floating(t, name, "a float Tensor[..., C, H, W]")
    if coarse.dim() < 3 or coarse.shape[-3] != 2:
        raise ValueError(f"coarse must be Tensor[..., 2, H, W], got {shape_str(coarse)}")
    if fine.shape != u.shape or fine.shape != v.shape or fine.shape[-2:] != coarse.shape[-2:]:
        raise ValueError(f"fine, u, v must be Tensor[..., P + 1, H, W] on coarse's grid, got "
                         f"{shape_str(fine)}, {shape_str(u)}, {shape_str(v)}")
    fg = coarse[..., 1, :, :] > coarse[..., 0, :, :]
    part = fine[..., 1:, :, :].argmax(-3) + 1  # (..., H, W)
    parts = torch.where(fg, part, torch.zeros_like(part))
    index = part.unsqueeze(-3)
    uv = torch.cat([u.gather(-3, index), v.gather(-3, index)], dim=-3).clamp(0, 1)
    return parts, uv * fg.unsqueeze(-3).to(uv.dtype)


def hflip_maps(outputs: dict[str, Tensor],
               symmetries: Sequence[int] = PART_SYMMETRIES) -> dict[str, Tensor]:
    """The head's maps for a mirrored image, carried back onto the original image.

    ``outputs``: ``{"coarse", "fine", "u", "v"[, "embedding"]}``, each Tensor[R, C, M, M],
    computed on the **horizontally flipped** image for the flipped boxes. Returned: the same
    maps as the original image's boxes see them (Detectron2's DensePose flip test-time
    augmentation, ``densepose_chart_predictor_output_hflip``):

    * every map's columns are reversed (column ``j`` of a flipped box is column
      ``M - 1 - j`` of the box);
    * ``fine``, ``u`` and ``v``: channel ``k`` comes from channel ``symmetries[k]`` (a
      mirrored left arm looks like a right arm; ``PART_SYMMETRIES``);
    * ``v`` becomes ``1 - v``: V runs across a limb, from one side to the other
      (``(1 + s / r) / 2``, ``s`` the signed distance from its axis), and the mirror swaps
      the sides; U runs along the limb (or down the head) and stays.

    ``embedding`` (if present) is left out: a mirrored pixel's embedding points to the
    mirror vertex, and undoing that needs a vertex symmetry, not a channel permutation.
    """
    if not isinstance(outputs, dict):
        raise TypeError(f"outputs must be a dict of the head's maps, got {describe(outputs)}")
    missing = [k for k in OUTPUTS[:4] if k not in outputs]
    if missing:
        raise ValueError(f"outputs must hold {OUTPUTS[:4]}, got keys {sorted(outputs)}")
    for name in OUTPUTS[:4]:
        require_floating(outputs[name], f'outputs["{name}"]', "a float Tensor[R, C, M, M]")
        require_dim(outputs[name], f'outputs["{name}"]', 4, "Tensor[R, C, M, M]")
    P1 = outputs["fine"].shape[1]
    if outputs["u"].shape != outputs["fine"].shape or outputs["v"].shape != outputs["fine"].shape:
        raise ValueError(f'outputs["u"] and outputs["v"] must be shaped like outputs["fine"] '
                         f'{shape_str(outputs["fine"])}, got {shape_str(outputs["u"])} and '
                         f'{shape_str(outputs["v"])}')
    index = mirror_index(symmetries, P1, outputs["fine"].device, name="symmetries",
                         what='channel of outputs["fine"]')
    out = {k: outputs[k].flip(-1) for k in OUTPUTS[:4]}
    for k in ("fine", "u", "v"):
        out[k] = out[k].index_select(1, index)
    out["v"] = 1 - out["v"]
    return out


def paste_in_image(maps: Tensor, boxes: Tensor, image_size: tuple[int, int]) -> tuple[Tensor,
                                                                                      Tensor]:
    """``M × M`` RoI maps -> image-sized maps ``(Tensor[D, C, H, W], inside bool Tensor[D, H, W])``.

    Every image pixel whose centre lies in box ``d`` reads map ``d`` bilinearly at its grid
    index ``(y + 0.5 - y1) / h M - 0.5`` (Detectron2's pixel grid); pixels outside the box
    are 0 and ``inside`` False.
    """
    require_floating(maps, "maps", "a float Tensor[D, C, M, M]")
    require_dim(maps, "maps", 4, "Tensor[D, C, M, M]")
    check_boxes(boxes, "boxes", floating=True)
    D, C, M, _ = maps.shape
    if len(boxes) != D:
        raise ValueError(f"boxes must be Tensor[{D}, 4] (one per map), got {shape_str(boxes)}")
    H, W = (positive_int(n, "image_size") for n in image_size)
    b = boxes.to(maps.dtype)
    x1, y1, x2, y2 = (c[:, None, None] for c in b.unbind(1))  # (D, 1, 1)
    cy = torch.arange(H, device=maps.device, dtype=maps.dtype)[None, :, None] + 0.5  # (1, H, 1)
    cx = torch.arange(W, device=maps.device, dtype=maps.dtype)[None, None, :] + 0.5  # (1, 1, W)
    gy = (cy - y1) / (y2 - y1).clamp(min=1e-6) * M - 0.5  # (D, H, 1)
    gx = (cx - x1) / (x2 - x1).clamp(min=1e-6) * M - 0.5  # (D, 1, W)
    inside = (cy >= y1) & (cy < y2) & (cx >= x1) & (cx < x2)  # (D, H, W)
    index = torch.arange(D, device=maps.device)[:, None, None]
    out = bilinear_sample(maps, gy, gx, batch_index=index)  # (D, H, W, C)
    out = out.permute(0, 3, 1, 2) * inside[:, None].to(maps.dtype)  # (D, C, H, W)
    return out, inside


# Detectron2's DensePose R-CNN head (DensePoseV1ConvXHead + DensePoseChartPredictor, config
# densepose_rcnn_R_50_FPN_s1x): 256-channel FPN features, ROIAlignV2 28 × 28 (sampling 2),
# 8 convs 3 × 3 of 512, one 4 × 4 stride-2 transposed conv per output, then bilinear × 2.
DETECTRON2 = {"in_channels": 256, "pool": 28, "convs": 8, "dim": 512, "parts": 24,
              "coarse": 2, "up": 2}


def compare_with_detectron2(head: DensePoseHead) -> str:
    """A text table: our head beside Detectron2's DensePose head (no import; its published
    structure, parameters counted from it)."""
    d2 = DETECTRON2
    S = head.roi_pool.output_size
    convs = [m for m in head.convs if isinstance(m, nn.Conv2d)]
    dim = convs[0].out_channels if convs else head.in_channels
    P = head.predictor.num_parts
    E = head.predictor.embed_dim
    conv_params = sum(p.numel() for p in head.convs.parameters())
    pred_params = sum(p.numel() for p in head.predictor.parameters())
    d2_conv = (d2["in_channels"] * d2["dim"] * 9 + d2["dim"]
               + (d2["convs"] - 1) * (d2["dim"] * d2["dim"] * 9 + d2["dim"]))
    d2_out = d2["coarse"] + 3 * (d2["parts"] + 1)
    d2_pred = d2["dim"] * d2_out * 16 + d2_out
    rows = [
        ("stage", "ours (coursekit)", "Detectron2 DensePose R-CNN"),
        ("input", f"FPN level, {head.in_channels} channels", "FPN level, 256 channels"),
        ("RoI Align", f"{S}×{S}, aligned (ROIAlignV2)", "28×28, ROIAlignV2, sampling 2"),
        ("head convs", f"{len(convs)} × conv3×3 {dim} + ReLU ({conv_params:,} params)",
         f"8 × conv3×3 512 + ReLU ({d2_conv:,} params)"),
        ("upsampling", f"deconv 4×4 s2 -> {2 * S}×{2 * S}",
         "deconv 4×4 s2 -> 56×56, bilinear ×2 -> 112×112"),
        ("coarse segm.", "2 (person / background)", "2 (or 15: 14 coarse parts + bg)"),
        ("fine parts I", f"{P + 1} ({P} parts + bg)", "25 (24 parts + bg)"),
        ("U, V", f"{P + 1} + {P + 1} (a chart per part)", "25 + 25 (a chart per part)"),
        ("predictor", f"{pred_params:,} params ({E}-d CSE embedding too)",
         f"{d2_pred:,} params"),
        ("CSE", f"{E}-d per pixel, {len(head.template)} template vertices",
         "16-d per pixel, one per SMPL vertex (6890)"),
        ("dense loss", "CE fg/bg + CE parts on task 1 maps", "CE segm. on task 1 maps (weight 5)"),
        ("point losses", "CE I; smooth-L1 U,V of the true part",
         "CE I (weight 1); smooth-L1 U,V of the true part (0.01)"),
    ]
    widths = [max(len(r[i]) for r in rows) for i in range(2)]
    return "\n".join(f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]}" for r in rows)
