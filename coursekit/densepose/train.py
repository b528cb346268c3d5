"""Train the DensePose head on the shipped Mask R-CNN's frozen features; build and load the model.

"Add more heads": the trunk (backbone + FPN, RPN, box and mask heads) is lesson 05's
shipped ``maskrcnn``, frozen; only the new head learns. Each step renders ``batch_size``
scenes at ``RECIPE["size"]`` pixels with more persons than usual (``p_person``), simulates
the two annotation tasks (``parts.annotate_scene``: the persons' masks and 100 points
each), runs the frozen backbone, crops RoI features on the ground-truth person boxes
(jittered by up to ``jitter`` of their size, so the head also copes with detected boxes)
and minimises ``DensePoseHead.loss``. Step ``s`` uses seeds ``s * B .. s * B + B - 1``;
evaluation uses held-out seeds from ``HELD_OUT_START`` (``evaluate.py``).

    coursekit train densepose           # -> runs/densepose/densepose.pt (the head only)
    coursekit install-checkpoint runs/densepose
    model = load_densepose()            # shipped maskrcnn + the head, eval mode
    model.predict(render_scene(3_000_000, size=96).image)  # + "densepose_*" maps

Tested in tests/densepose/test_train.py.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from coursekit.densepose.parts import annotate_scene
from coursekit.densepose.uv_head import DensePoseHead
from coursekit.instance.mask_rcnn import MaskRCNN, build_mask_rcnn, pyramid_strides
from coursekit.instance.pooler import MultiScaleRoIAlign
from coursekit.validators import count_parameters

__all__ = ["DENSEPOSE_CONFIG", "HELD_OUT_START", "PERSON_ID", "RECIPE", "build_densepose_head",
           "build_densepose_rcnn", "densepose_batch", "load_densepose", "load_densepose_head",
           "train_densepose"]

PERSON_ID = 7  # ShapesWorld's person category
HELD_OUT_START = 3_000_000  # as lessons 05 and 07: never a training seed
RECIPE: dict[str, Any] = {
    "steps": 16000, "batch_size": 8, "lr": 2e-3, "weight_decay": 1e-4, "warmup": 50,
    "size": 96, "p_person": 0.6, "num_points": 100, "jitter": 0.06,
}  # fmt: skip
DENSEPOSE_CONFIG: dict[str, Any] = {
    "pool": 14, "sampling_ratio": 2, "canonical_scale": 48.0, "dim": 192, "num_convs": 8,
    "embed_dim": 16, "spacing": 0.03, "temperature": 1.0, "uv_weight": 10.0,
}  # fmt: skip


def build_densepose_head(trunk_config: dict[str, Any], **overrides: Any) -> DensePoseHead:
    """A fresh ``DensePoseHead`` for a trunk with ``trunk_config`` (``MaskRCNN.config``).

    Keywords override ``DENSEPOSE_CONFIG``; its RoI Align reads the trunk's pyramid with
    ``aligned=True`` and the person class's index as its label.
    """
    unknown = set(overrides) - set(DENSEPOSE_CONFIG)
    if unknown:
        raise ValueError(f"unknown config keys {sorted(unknown)}; "
                         f"known: {sorted(DENSEPOSE_CONFIG)}")
    cfg = {**DENSEPOSE_CONFIG, **overrides}
    pool = MultiScaleRoIAlign(pyramid_strides(trunk_config["widths"]), cfg["pool"],
                              cfg["sampling_ratio"], canonical_scale=cfg["canonical_scale"],
                              canonical_level=trunk_config["canonical_level"], aligned=True)
    head = DensePoseHead(pool, trunk_config["fpn_channels"], dim=cfg["dim"],
                         num_convs=cfg["num_convs"], embed_dim=cfg["embed_dim"],
                         spacing=cfg["spacing"], temperature=cfg["temperature"],
                         loss_weights={"uv": cfg["uv_weight"]},
                         labels=[trunk_config["thing_ids"].index(PERSON_ID) + 1])
    head.config = cfg
    return head


def build_densepose_rcnn(trunk_config: dict[str, Any], head: DensePoseHead) -> MaskRCNN:
    """Lesson 05's Mask R-CNN (``trunk_config``) with ``head`` plugged in as ``"densepose"``."""
    return build_mask_rcnn(extra_heads={"densepose": head}, **trunk_config)


def _shipped_trunk() -> tuple[MaskRCNN, str]:
    from coursekit.checkpoints import checkpoint_dir, read_manifest
    from coursekit.instance.train import load_maskrcnn

    return load_maskrcnn(), read_manifest(checkpoint_dir())["maskrcnn"]["sha256"]


def load_densepose_head(*, directory: Path | None = None,
                        device: str | torch.device = "cpu") -> DensePoseHead:
    """The shipped DensePose head alone (``data/checkpoints/densepose.pt``), eval mode."""
    from coursekit.checkpoints import load_pretrained
    from coursekit.instance.train import load_maskrcnn

    checkpoint = load_pretrained("densepose", directory=directory)
    head = build_densepose_head(load_maskrcnn().config, **checkpoint["config"])
    head.load_state_dict(checkpoint["model"])
    return head.to(device).eval()


def load_densepose(*, directory: Path | None = None,
                   device: str | torch.device = "cpu") -> MaskRCNN:
    """The shipped Mask R-CNN with the shipped DensePose head plugged in, in eval mode.

    Both checkpoints are sha256-checked; ``directory`` loads the head from a training run.
    """
    trunk, _ = _shipped_trunk()
    head = load_densepose_head(directory=directory)
    model = build_densepose_rcnn(trunk.config, head)
    missing, unexpected = model.load_state_dict(trunk.state_dict(), strict=False)
    if unexpected or any(not k.startswith("roi_heads.extra_heads.") for k in missing):
        raise RuntimeError(f"the shipped maskrcnn does not fit: {missing}, {unexpected}")
    model.roi_heads.extra_heads["densepose"].load_state_dict(head.state_dict())
    return model.to(device).eval()


def _jitter(boxes: Tensor, amount: float, generator: torch.Generator, size: int) -> Tensor:
    """Move each box side by up to ``amount`` of the box's width / height, inside the image."""
    if amount <= 0 or len(boxes) == 0:
        return boxes
    wh = (boxes[:, 2:] - boxes[:, :2]).repeat(1, 2)  # (P, 4)
    noise = (torch.rand(boxes.shape, generator=generator) * 2 - 1) * amount * wh
    out = (boxes + noise).clamp(0, size)
    out[:, 2:] = torch.maximum(out[:, 2:], out[:, :2] + 2)
    return out


@torch.no_grad()
def densepose_batch(trunk: MaskRCNN, seeds: list[int], size: int, p_person: float,
                    num_points: int, jitter: float = 0.0, seed: int = 0):
    """``(features, boxes, targets, scenes)`` for the persons of scenes ``seeds``.

    ``features``: the frozen trunk's FPN levels; ``boxes``: per image Tensor[P_i, 4], the
    persons' boxes (jittered with ``jitter``); ``targets``: per image ``{"masks", "densepose",
    "parts"}`` (``annotate_scene``).
    """
    from coursekit.data.shapesworld import render_batch

    scenes = render_batch(seeds, size=size, p_crowd=0.0, p_person=p_person)
    param = next(trunk.parameters())
    features = trunk.backbone(trunk.transform(scenes.image.to(param.device)))
    g = torch.Generator().manual_seed(seed * 7_919 + int(seeds[0]))
    boxes, targets = [], []
    for j in range(len(scenes)):
        ann = annotate_scene(scenes.scene(j), num_points, seed)
        boxes.append(_jitter(ann["boxes"], jitter, g, size).to(param.device))
        targets.append({"masks": ann["masks"].to(param.device),
                        "densepose": ann["points"].to(param.device),
                        "parts": ann["parts"].to(param.device)})
    return features, boxes, targets, scenes


def train_densepose(out_dir: str | os.PathLike | None, seed: int,
                    quick: bool) -> dict[str, float]:
    """Train the head into a run folder (``RECIPE``, trunk frozen); return held-out metrics.

    Writes ``<run>/densepose.pt`` (the head's weights and config) and its manifest entry.
    ``quick=True``: 3 steps of 2 scenes, evaluated on 4 held-out scenes. The full run
    evaluates on 100 held-out scenes (``evaluate.evaluate_densepose``): part mIoU, U/V
    error, CSE correspondence accuracy and its chance level, on ground-truth and detected
    boxes; the same with flip test-time augmentation as ``flip_*``.
    """
    from coursekit.densepose.evaluate import evaluate_densepose
    from coursekit.seed import seed_everything
    from coursekit.train import fit, process_rank, recipe_key, run_dir_for, save_run, state_path_for

    name = "densepose"
    run_dir = run_dir_for(name, out_dir, quick)
    steps, batch_size = (3, 2) if quick else (RECIPE["steps"], RECIPE["batch_size"])
    seed_everything(seed)
    trunk, trunk_sha = _shipped_trunk()
    for p in trunk.parameters():
        p.requires_grad_(False)
    head = build_densepose_head(trunk.config)

    def batch_fn(step: int):
        seeds = list(range(step * batch_size, (step + 1) * batch_size))
        features, boxes, targets, _ = densepose_batch(
            trunk, seeds, RECIPE["size"], RECIPE["p_person"], RECIPE["num_points"],
            RECIPE["jitter"], seed)
        return features, boxes, targets

    def loss_fn(net: nn.Module, batch) -> Tensor:
        features, boxes, targets = batch
        losses = net.loss(net(net.roi_pool(features, boxes)), boxes, targets)
        return sum(losses.values())  # type: ignore[return-value]

    run_id = recipe_key(RECIPE, DENSEPOSE_CONFIG, steps, batch_size)
    state = state_path_for(run_dir, name, seed, run_id)
    start = time.perf_counter()
    history = fit(head, batch_fn, loss_fn, steps=steps, lr=RECIPE["lr"],
                  weight_decay=RECIPE["weight_decay"], warmup=min(RECIPE["warmup"], steps // 10),
                  state_path=None if quick else state, save_every=100,
                  desc=f"train {name}", progress=False if quick else None)
    seconds = time.perf_counter() - start
    head.eval()
    eval_seeds = list(range(HELD_OUT_START, HELD_OUT_START + (4 if quick else 100)))
    metrics = evaluate_densepose(head, trunk, eval_seeds, size=RECIPE["size"],
                                 p_person=RECIPE["p_person"])
    flipped = evaluate_densepose(head, trunk, eval_seeds, size=RECIPE["size"],
                                 p_person=RECIPE["p_person"], flip=True)
    metrics.update({f"flip_{k}": v for k, v in flipped.items()
                    if k not in ("persons", "chance", "det_recall")})
    checkpoint = {
        "model": {k: v.detach().cpu() for k, v in head.state_dict().items()},
        "config": dict(head.config),
        "history": {**history, "train_seconds": seconds, "steps": steps,
                    "batch_size": batch_size, "recipe": dict(RECIPE),
                    "trunk_maskrcnn_sha256": trunk_sha},
        "metrics": {**metrics, "parameters": count_parameters(head)},
    }
    metrics = {**metrics, "train_minutes": seconds / 60}
    save_run(name, checkpoint, out_dir=run_dir, seed=seed, quick=quick, metrics=metrics)
    if process_rank() == 0:
        state.unlink(missing_ok=True)
    return metrics
