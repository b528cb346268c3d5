"""Train the caption head and the mesh head on the FROZEN Mask R-CNN trunk; evaluate; load.

The lesson's point: the detector (lesson 05's shipped ``maskrcnn``: backbone + FPN, RPN,
box and mask heads) stays exactly as it is — ``requires_grad = False``, eval mode — and a
new head learns a new task from its RoI features alone. Both heads train on the
ground-truth boxes of 64-pixel ShapesWorld scenes (training seeds from 0, held-out seeds
from ``HELD_OUT_START``); their checkpoints hold the head only.

    coursekit train captioner     # -> runs/captioner/captioner.pt
    coursekit train meshrcnn      # -> runs/meshrcnn/meshrcnn.pt
    coursekit install-checkpoint runs/captioner
    trunk, head = load_maskrcnn(), load_captioner()

* captioner: step ``s`` renders scenes ``s B .. s B + B - 1``, captions every non-crowd
  thing (``captions.caption_things``) and trains ``CaptionHead`` with teacher forcing.
  Evaluation: greedy captions of the things of held-out scenes, word and exact accuracy,
  beside the position-wise majority caption of the training captions.
* meshrcnn: the whole, unoccluded shapes (``shapes3d.whole_shapes``) of ``RECIPES["meshrcnn"]
  ["scenes"]`` scenes without persons or crowds; their RoI features are computed once by
  the frozen trunk, with the voxel targets (``grid``³) and points on the true surface
  (cubified ``fine``³ targets). ``MeshHead`` trains on random batches of them.
  Evaluation: voxel IoU and the Chamfer distance to the true surface of the cubified and
  of the refined meshes, on held-out shapes.

Tested in tests/heads/test_train.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from coursekit.heads.captions import caption_things, encode
from coursekit.heads.chamfer import chamfer_distance, sample_points_from_meshes
from coursekit.heads.dense_captioning import (
    CaptionHead,
    ContextRoIAlign,
    caption_accuracy,
    majority_caption,
)
from coursekit.heads.mesh import MeshHead
from coursekit.heads.shapes3d import surface_points, voxel_targets, whole_shapes
from coursekit.instance.mask_rcnn import MaskRCNN
from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.validators import count_parameters

__all__ = ["HELD_OUT_START", "RECIPES", "build_caption_head", "build_mesh_head",
           "caption_batch", "evaluate_captioner", "evaluate_meshrcnn", "frozen_trunk",
           "load_captioner", "load_meshrcnn", "mesh_dataset", "trunk_features",
           "train_captioner", "train_meshrcnn"]

HELD_OUT_START = 3_000_000  # as lessons 05 and 07: never a training seed
SIZE = 64
RECIPES: dict[str, dict[str, Any]] = {
    "captioner": {"steps": 800, "batch_size": 16, "lr": 2e-3, "weight_decay": 1e-4,
                  "warmup": 30, "code": 256, "embed": 64, "hidden": 256},
    "meshrcnn": {"steps": 1200, "batch_size": 16, "lr": 3e-3, "weight_decay": 1e-4,
                 "warmup": 20, "scenes": 1500, "grid": 12, "fine": 36, "points": 600,
                 "num_points": 300, "dim": 64, "hidden": 64, "graph_convs": 3},
}  # fmt: skip


def frozen_trunk(device: torch.device | str = "cpu") -> MaskRCNN:
    """Lesson 05's shipped Mask R-CNN, eval mode, every parameter ``requires_grad = False``."""
    from coursekit.instance.train import load_maskrcnn

    trunk = load_maskrcnn(device=device)
    for p in trunk.parameters():
        p.requires_grad_(False)
    return trunk.eval()


@torch.no_grad()
def trunk_features(trunk: MaskRCNN, images: Tensor):
    """The frozen trunk's feature pyramid of images Tensor[B, 3, H, W] (no gradient)."""
    return trunk.backbone(trunk.transform(images))


def _pool(trunk: MaskRCNN, size: int, sampling_ratio: int = 2) -> MultiScaleRoIAlign:
    cfg = trunk.config
    return MultiScaleRoIAlign(trunk.backbone.strides, size, sampling_ratio,
                              canonical_scale=cfg["canonical_scale"],
                              canonical_level=cfg["canonical_level"],
                              aligned=cfg["pooler_aligned"])


def build_caption_head(trunk: MaskRCNN, **overrides: Any) -> CaptionHead:
    """A fresh ``CaptionHead`` reading ``trunk``'s pyramid (box + neighbourhood, 7 × 7)."""
    r = {**RECIPES["captioner"], **overrides}
    pool = ContextRoIAlign(_pool(trunk, 7), image_size=SIZE)
    return CaptionHead(pool, 2 * trunk.config["fpn_channels"], 7, code=r["code"],
                       embed=r["embed"], hidden=r["hidden"])


def build_mesh_head(trunk: MaskRCNN, **overrides: Any) -> MeshHead:
    """A fresh ``MeshHead`` reading ``trunk``'s pyramid (``grid × grid`` RoI features)."""
    r = {**RECIPES["meshrcnn"], **overrides}
    return MeshHead(_pool(trunk, r["grid"]), trunk.config["fpn_channels"], r["grid"],
                    dim=r["dim"], hidden=r["hidden"], graph_convs=r["graph_convs"],
                    num_points=r["num_points"])


def caption_batch(seeds, device: torch.device | str = "cpu"):
    """``(images, boxes, tokens, sentences)`` of scenes ``seeds``: per image the captioned things.

    ``boxes``: list of Tensor[K_i, 4]; ``tokens``: list of int64 Tensor[K_i, MAX_LEN + 2];
    ``sentences``: list of lists of str.
    """
    from coursekit.data.shapesworld import render_batch

    scenes = render_batch(list(seeds), SIZE)
    boxes, tokens, sentences = [], [], []
    for j in range(len(scenes)):
        scene = scenes.scene(j)
        rows, text = caption_things(scene)
        boxes.append(scene.boxes[rows].float().to(device))
        tokens.append(encode(text, device))
        sentences.append(text)
    return scenes.image.to(device), boxes, tokens, sentences


def _save(name: str, model: nn.Module, config: dict, history: dict, seconds: float,
          metrics: dict, out_dir, seed: int, quick: bool, steps: int) -> None:
    from coursekit.checkpoints import checkpoint_dir, read_manifest
    from coursekit.train import save_run

    weights = {k: v.detach().cpu().float() if v.is_floating_point() else v.cpu()
               for k, v in model.state_dict().items()}
    checkpoint = {
        "model": weights, "config": config,
        "history": {**history, "train_seconds": seconds, "steps": steps,
                    "trunk": "maskrcnn",
                    "trunk_sha256": read_manifest(checkpoint_dir())["maskrcnn"]["sha256"]},
        "metrics": {**metrics, "parameters": count_parameters(model, trainable_only=True)},
    }
    save_run(name, checkpoint, out_dir=out_dir, seed=seed, quick=quick,
             metrics={**metrics, "train_seconds": seconds})


def _fit(name, head, batch_fn, loss_fn, recipe, steps, out_dir, seed, quick):
    from coursekit.train import fit, recipe_key, run_dir_for, state_path_for

    run_dir = run_dir_for(name, out_dir, quick)
    state = state_path_for(run_dir, name, seed, recipe_key(recipe, steps))
    start = time.perf_counter()
    history = fit(head, batch_fn, loss_fn, steps=steps, lr=recipe["lr"],
                  weight_decay=recipe["weight_decay"],
                  warmup=min(recipe["warmup"], steps // 10),
                  state_path=None if quick else state, save_every=50,
                  desc=f"train {name}", progress=False if quick else None)
    return history, time.perf_counter() - start, state


# ----------------------------------------------------------------------------- captioner


@torch.no_grad()
def evaluate_captioner(trunk: MaskRCNN, head: CaptionHead, seeds,
                       baseline: Tensor | None = None, chunk: int = 32) -> dict[str, float]:
    """Greedy captions of the things of scenes ``seeds`` (ground-truth boxes) vs the truth.

    Returns ``word_acc``, ``exact_acc``, ``n`` and, with ``baseline`` (a Tensor[1, L] caption
    said for every thing, e.g. ``majority_caption``), ``baseline_word_acc`` and
    ``baseline_exact_acc``.
    """
    head.eval()
    seeds = list(seeds)
    predicted, reference = [], []
    device = next(trunk.parameters()).device
    for i in range(0, len(seeds), chunk):
        images, boxes, tokens, _ = caption_batch(seeds[i:i + chunk], device)
        feats = trunk_features(trunk, images)
        predicted.append(head.generate(head(head.roi_pool(feats, boxes))))
        reference.append(torch.cat(tokens))
    pred, ref = torch.cat(predicted), torch.cat(reference)
    acc = caption_accuracy(pred, ref)
    out = {"word_acc": acc["word"], "exact_acc": acc["exact"], "n": acc["n"]}
    if baseline is not None:
        base = caption_accuracy(baseline.expand(len(ref), -1), ref)
        out.update(baseline_word_acc=base["word"], baseline_exact_acc=base["exact"])
    return out


def train_captioner(out_dir: str | os.PathLike | None, seed: int,
                    quick: bool) -> dict[str, float]:
    """Train the caption head on the frozen trunk (``RECIPES["captioner"]``); return metrics.

    ``quick=True``: 3 steps of 2 scenes, evaluated on 4 held-out scenes (a smoke test).
    The full run evaluates on 300 held-out scenes against the majority caption of the
    captions of 500 training scenes.
    """
    from coursekit.device import pick_device
    from coursekit.seed import seed_everything

    name, recipe = "captioner", RECIPES["captioner"]
    steps, batch_size = (3, 2) if quick else (recipe["steps"], recipe["batch_size"])
    seed_everything(seed)
    device = pick_device()
    trunk = frozen_trunk(device)
    head = build_caption_head(trunk).to(device)

    def batch_fn(step: int):
        images, boxes, tokens, _ = caption_batch(
            range(step * batch_size, (step + 1) * batch_size), device)
        return trunk_features(trunk, images), boxes, tokens

    def loss_fn(net: nn.Module, batch) -> Tensor:
        feats, boxes, tokens = batch
        codes = net(net.roi_pool(feats, boxes))
        return net.loss(codes, boxes, [{"captions": t} for t in tokens])["loss_caption"]

    history, seconds, state = _fit(name, head, batch_fn, loss_fn, recipe, steps, out_dir,
                                   seed, quick)
    n_eval = 4 if quick else 300
    train_tokens = torch.cat(caption_batch(range(8 if quick else 500))[2])
    baseline = majority_caption(train_tokens)
    metrics = evaluate_captioner(trunk, head,
                                 range(HELD_OUT_START, HELD_OUT_START + n_eval),
                                 baseline.to(device))
    config = {k: recipe[k] for k in ("code", "embed", "hidden")}
    _save(name, head, {**config, "baseline": baseline[0].tolist()}, history, seconds, metrics,
          out_dir, seed, quick, steps)
    state.unlink(missing_ok=True)
    return metrics


def load_captioner(trunk: MaskRCNN | None = None, *, directory: Path | None = None,
                   device: str | torch.device = "cpu") -> CaptionHead:
    """The shipped caption head (``captioner.pt``, sha256-checked), eval mode.

    ``trunk``: the frozen Mask R-CNN it reads (default ``frozen_trunk()``). The majority
    caption of the training captions is ``head.baseline`` (Tensor[1, L]).
    """
    from coursekit.checkpoints import load_pretrained

    checkpoint = load_pretrained("captioner", directory=directory)
    cfg = checkpoint["config"]
    head = build_caption_head(trunk if trunk is not None else frozen_trunk(),
                              **{k: cfg[k] for k in ("code", "embed", "hidden")})
    head.load_state_dict(checkpoint["model"])
    head.baseline = torch.tensor(cfg["baseline"], dtype=torch.long)[None]
    return head.to(device).eval()


# ----------------------------------------------------------------------------- meshrcnn


@torch.no_grad()
def mesh_dataset(trunk: MaskRCNN, head: MeshHead, seeds, fine: int, num_points: int,
                 chunk: int = 64) -> dict[str, Tensor]:
    """RoI features, boxes, voxel targets and true-surface points of the whole shapes of ``seeds``.

    Scenes without persons or crowds; returns ``{"features": [K, C, G, G], "boxes":
    [K, 4], "labels": [K], "voxels": bool [K, G, G, G], "points": [K, num_points, 3],
    "images": [K] index of the scene in ``seeds``}``.
    """
    from coursekit.data.shapesworld import render_batch

    seeds = list(seeds)
    g = torch.Generator().manual_seed(0)
    out: dict[str, list[Tensor]] = {k: [] for k in ("features", "boxes", "labels", "voxels",
                                                    "points", "images")}
    device = next(trunk.parameters()).device
    for i in range(0, len(seeds), chunk):
        scenes = render_batch(seeds[i:i + chunk], SIZE, p_person=0.0, p_crowd=0.0)
        feats = trunk_features(trunk, scenes.image.to(device))
        boxes = []
        for j in range(len(scenes)):
            scene = scenes.scene(j)
            rows = whole_shapes(scene)
            boxes.append(scene.boxes[rows].float().to(device))
            if len(rows) == 0:
                continue
            out["boxes"].append(scene.boxes[rows].float())
            out["labels"].append(scene.labels[rows])
            out["voxels"].append(voxel_targets(scene, rows, head.grid))
            out["points"].append(surface_points(voxel_targets(scene, rows, fine), num_points, g))
            out["images"].append(torch.full((len(rows),), i + j))
        out["features"].append(head.roi_pool(feats, boxes).cpu())
    return {k: torch.cat(v) for k, v in out.items()}


@torch.no_grad()
def evaluate_meshrcnn(head: MeshHead, data: dict[str, Tensor],
                      num_points: int = 1000) -> dict[str, float]:
    """Voxel IoU and Chamfer distances (cubified vs refined) on a ``mesh_dataset``.

    Points: ``num_points`` sampled on each predicted mesh (seeded) against ``data["points"]``;
    the mean over shapes of the Chamfer distance (box frame, ``[-1, 1]³``).
    """
    head.eval()
    outputs = head(data["features"])
    probs = outputs["voxels"].sigmoid()
    pred, true = probs > 0.5, data["voxels"]
    iou = ((pred & true).flatten(1).sum(1) / (pred | true).flatten(1).sum(1).clamp(min=1))
    (verts, faces), (refined, _) = head.meshes(outputs)
    g = torch.Generator().manual_seed(1)
    result = {"voxel_iou": float(iou.mean()), "n": float(len(true))}
    for key, vs in (("chamfer_cubified", verts), ("chamfer_refined", refined)):
        pts = torch.stack([sample_points_from_meshes(v, f, num_points, g)
                           for v, f in zip(vs, faces, strict=True)])
        result[key] = float(chamfer_distance(pts, data["points"].to(pts.dtype)))
    return result


def train_meshrcnn(out_dir: str | os.PathLike | None, seed: int,
                   quick: bool) -> dict[str, float]:
    """Train the mesh head on the frozen trunk (``RECIPES["meshrcnn"]``); return its metrics.

    ``quick=True``: 3 steps on the shapes of 8 scenes, evaluated on those of 8 held-out
    scenes. The full run evaluates on the whole shapes of 300 held-out scenes.
    """
    from coursekit.device import pick_device
    from coursekit.seed import seed_everything

    name, recipe = "meshrcnn", RECIPES["meshrcnn"]
    steps, batch_size = (3, 4) if quick else (recipe["steps"], recipe["batch_size"])
    seed_everything(seed)
    device = pick_device()
    trunk = frozen_trunk(device)
    head = build_mesh_head(trunk).to(device)
    data = mesh_dataset(trunk, head, range(8 if quick else recipe["scenes"]), recipe["fine"],
                        recipe["points"])
    count = len(data["boxes"])

    def batch_fn(step: int):
        pick = torch.randperm(count, generator=torch.Generator().manual_seed(
            seed * 1_000_003 + step))[:batch_size]
        return {k: data[k][pick].to(device) for k in ("features", "voxels", "points")}

    def loss_fn(net: nn.Module, batch) -> Tensor:
        outputs = net(batch["features"])
        target = [{"voxels": batch["voxels"], "points": batch["points"]}]
        return sum(net.loss(outputs, [batch["features"].new_zeros(0, 4)], target).values())

    history, seconds, state = _fit(name, head, batch_fn, loss_fn, recipe, steps, out_dir,
                                   seed, quick)
    held = mesh_dataset(trunk, head, range(HELD_OUT_START, HELD_OUT_START + (8 if quick else
                                                                              300)),
                        recipe["fine"], recipe["points"])
    metrics = evaluate_meshrcnn(head, {k: v.to(device) for k, v in held.items()})
    metrics["train_shapes"] = float(count)
    config = {k: recipe[k] for k in ("grid", "dim", "hidden", "graph_convs", "num_points")}
    _save(name, head, config, history, seconds, metrics, out_dir, seed, quick, steps)
    state.unlink(missing_ok=True)
    return metrics


def load_meshrcnn(trunk: MaskRCNN | None = None, *, directory: Path | None = None,
                  device: str | torch.device = "cpu") -> MeshHead:
    """The shipped mesh head (``meshrcnn.pt``, sha256-checked), eval mode, on ``trunk``."""
    from coursekit.checkpoints import load_pretrained

    checkpoint = load_pretrained("meshrcnn", directory=directory)
    head = build_mesh_head(trunk if trunk is not None else frozen_trunk(),
                           **checkpoint["config"])
    head.load_state_dict(checkpoint["model"])
    return head.to(device).eval()
