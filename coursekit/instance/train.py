"""Train the tiny Mask R-CNN on ShapesWorld things, evaluate mask / box AP, load its weights.

Training scenes are rendered on the fly (step ``s`` uses seeds ``s * B .. s * B + B - 1``)
without crowd groups (a crowd region is one "instance" made of several circles: COCO
ignores detections inside it at test time, so the model is simply not taught about it).
Evaluation uses held-out seeds from ``HELD_OUT_START = 3_000_000`` with the default
scene settings (crowds included, ``iscrowd = 1``), scored by our ``evaluate_coco_style``
and, when pycocotools is installed, by ``COCOeval`` as well.

    coursekit train maskrcnn           # -> runs/maskrcnn/maskrcnn.pt (+ manifest entry)
    coursekit install-checkpoint runs/maskrcnn   # replace the shipped one (keeps a backup)
    model = load_maskrcnn()            # the shipped weights
    model.predict(render_scene(3_000_000).image)   # {"boxes", "labels", "scores", "masks"}

Tested in tests/instance/test_mask_rcnn.py (quick run into a temporary folder) and
tests/instance/test_shipped_maskrcnn.py (the shipped checkpoint).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from coursekit.instance.ap import evaluate_coco_style
from coursekit.instance.mask_rcnn import DEFAULT_CONFIG, MaskRCNN, build_mask_rcnn
from coursekit.validators import count_parameters

__all__ = ["HELD_OUT_START", "RECIPE", "evaluate_maskrcnn", "load_maskrcnn", "targets_from_scenes",
           "train_maskrcnn"]

HELD_OUT_START = 3_000_000
RECIPE: dict[str, Any] = {"steps": 3000, "batch_size": 8, "lr": 2e-3, "weight_decay": 1e-4,
                          "size": 64}


def targets_from_scenes(scenes: Any, thing_ids: list[int], device: torch.device | str | None = None,
                        drop_crowd: bool = True) -> list[dict[str, Tensor]]:
    """torchvision-style targets from a ``SceneBatch``: boxes, labels (index 1..C-1), masks."""
    index = {tid: i + 1 for i, tid in enumerate(thing_ids)}
    targets = []
    per_image = zip(scenes.boxes, scenes.labels, scenes.masks, scenes.iscrowd, strict=True)
    for boxes, labels, masks, crowd in per_image:
        keep = ~crowd if drop_crowd else torch.ones_like(crowd)
        cls = torch.tensor([index[int(v)] for v in labels[keep].tolist()], dtype=torch.int64)
        targets.append({"boxes": boxes[keep].float().to(device), "labels": cls.to(device),
                        "masks": masks[keep].to(device)})
    return targets


def _model_device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def evaluate_maskrcnn(model: MaskRCNN, seeds: Iterable[int], size: int = 64, batch_size: int = 25,
                      pycocotools: bool = True) -> dict[str, float]:
    """Mask and box AP / AP50 / AP75 on ShapesWorld scenes ``seeds``.

    Ours, and the same as ``coco_*`` from pycocotools when it is installed.

    Every detection the model keeps (score > 0.05, at most ``detections_per_img``) is scored,
    as COCO does; masks are the pasted probabilities ``>= 0.5``. Labels are ShapesWorld
    category ids; crowds are ``iscrowd`` ground truth.
    """
    from coursekit.data.shapesworld import render_batch

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one scene, got an empty sequence")
    device = _model_device(model)
    preds, gts, scenes = [], [], []
    for i in range(0, len(seeds), batch_size):
        batch = render_batch(seeds[i:i + batch_size], size=size)
        outputs = model.predict(batch.image.to(device), score_threshold=0.0)
        preds += [{k: v.cpu() for k, v in p.items()} for p in outputs]
        for j in range(len(batch)):
            gts.append({"boxes": batch.boxes[j], "labels": batch.labels[j], "masks": batch.masks[j],
                        "iscrowd": batch.iscrowd[j]})
            scenes.append(batch.scene(j))
    metrics: dict[str, float] = {}
    for kind, prefix in (("segm", "mask"), ("bbox", "box")):
        ours = evaluate_coco_style(preds, gts, kind)
        metrics.update({f"{prefix}_ap": ours["ap"], f"{prefix}_ap50": ours["ap50"],
                        f"{prefix}_ap75": ours["ap75"]})
    if pycocotools:
        try:
            from coursekit.data.coco import to_coco
            from coursekit.instance.coco_eval import coco_evaluate

            coco_gt = to_coco(scenes)
            for kind, prefix in (("segm", "mask"), ("bbox", "box")):
                ref = coco_evaluate(preds, coco_gt, kind)
                metrics.update({f"coco_{prefix}_ap": ref["ap"], f"coco_{prefix}_ap50": ref["ap50"],
                                f"coco_{prefix}_ap75": ref["ap75"]})
        except ImportError:  # pycocotools is a test extra
            pass
    metrics["eval_scenes"] = float(len(seeds))
    return metrics


def load_maskrcnn(*, directory: Path | None = None, device: str | torch.device = "cpu") -> MaskRCNN:
    """The shipped Mask R-CNN (``data/checkpoints/maskrcnn.pt``, sha256-checked), in eval mode.

    ``directory`` loads a training run instead (``runs/maskrcnn``), with the same check.
    """
    from coursekit.checkpoints import load_pretrained

    checkpoint = load_pretrained("maskrcnn", directory=directory)
    # a checkpoint saved before "mask_aligned" existed was trained with torchvision's convention
    model = build_mask_rcnn(**{"mask_aligned": False, **checkpoint["config"]})
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


def train_maskrcnn(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
    """Train the tiny Mask R-CNN from scratch into a run folder; return its metrics.

    Writes ``<run>/maskrcnn.pt``, its ``manifest.json`` entry and, while training, the
    resumable state, where ``<run>`` is ``out_dir`` or ``./runs/maskrcnn`` (never the
    shipped folder: install a run with ``coursekit install-checkpoint``). ``quick=True``:
    3 steps of 2 scenes, evaluated on 4 held-out scenes (a smoke test, marked ``quick``
    in the manifest). The full run (``RECIPE``) evaluates on 200 held-out scenes. Under
    ``torchrun`` only rank 0 saves.
    """
    from coursekit.data.shapesworld import render_batch
    from coursekit.device import pick_device
    from coursekit.seed import seed_everything
    from coursekit.train import fit, process_rank, recipe_key, run_dir_for, save_run, state_path_for

    run_dir = run_dir_for("maskrcnn", out_dir, quick)
    steps, batch_size = (3, 2) if quick else (RECIPE["steps"], RECIPE["batch_size"])
    seed_everything(seed)
    device = pick_device()
    model = build_mask_rcnn().to(device)
    thing_ids = model.thing_ids

    def batch_fn(step: int) -> tuple[Tensor, list[dict[str, Tensor]]]:
        seeds = list(range(step * batch_size, (step + 1) * batch_size))
        scenes = render_batch(seeds, size=RECIPE["size"], p_crowd=0.0)
        return scenes.image.to(device), targets_from_scenes(scenes, thing_ids, device)

    def loss_fn(net: nn.Module, batch: tuple[Tensor, list[dict[str, Tensor]]]) -> Tensor:
        losses = net(*batch)
        return sum(losses.values())  # type: ignore[return-value]

    run_id = recipe_key(RECIPE, DEFAULT_CONFIG, steps, batch_size)
    state = state_path_for(run_dir, "maskrcnn", seed, run_id)  # resume a stopped run
    start = time.perf_counter()
    history = fit(model, batch_fn, loss_fn, steps=steps, lr=RECIPE["lr"],
                  weight_decay=RECIPE["weight_decay"], warmup=min(100, steps // 10),
                  state_path=None if quick else state, save_every=100,
                  desc="train maskrcnn", progress=False if quick else None)
    seconds = time.perf_counter() - start
    eval_seeds = range(HELD_OUT_START, HELD_OUT_START + (4 if quick else 200))
    metrics = evaluate_maskrcnn(model, eval_seeds)
    weights = {k: v.detach().cpu().float() if v.is_floating_point() else v.cpu()
               for k, v in model.state_dict().items()}
    checkpoint = {
        "model": weights,
        "config": dict(model.config),
        "history": {**history, "train_seconds": seconds, "steps": steps, "batch_size": batch_size},
        "metrics": {**metrics, "parameters": count_parameters(model, trainable_only=True)},
    }
    save_run("maskrcnn", checkpoint, out_dir=run_dir, seed=seed, quick=quick, metrics=metrics)
    if process_rank() == 0:
        state.unlink(missing_ok=True)
    return metrics
