"""Train Panoptic FPN's semantic branch on the shipped Mask R-CNN's frozen FPN; load; score PQ.

Panoptic FPN shares one backbone + FPN between two branches. We already have a trained
instance branch, the shipped ``maskrcnn`` (lesson 05), so only the **semantic branch**
(``SemanticFPNHead``, ~65 k parameters) is trained here: the Mask R-CNN trunk stays frozen
and runs under ``no_grad`` on every batch (nothing is precomputed), and the head learns
per-pixel cross-entropy on ShapesWorld's semantic maps (all 8 categories, as our U-Net).
Step ``s`` uses scene seeds ``s * B .. s * B + B - 1``; scoring uses Mask R-CNN's held-out
seeds ``HELD_OUT_START = 3_000_000`` on, where neither branch has trained.

The checkpoint holds only the head's weights and config; the config names its trunk
(``"trunk": "maskrcnn"``) and the trunk checkpoint's sha256, so ``load_panoptic_fpn``
refuses a trunk other than the one the head was trained on.

    coursekit train panopticfpn          # -> runs/panopticfpn/panopticfpn.pt (+ manifest)
    coursekit install-checkpoint runs/panopticfpn
    model = load_panoptic_fpn()          # PanopticFPN: shipped Mask R-CNN + trained head
    evaluate_panoptic_fpn(model, range(3_000_000, 3_000_050))["All"]["pq"]

Tested in tests/panoptic/test_panoptic_fpn_train.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from coursekit.instance.train import HELD_OUT_START
from coursekit.panoptic.panoptic_fpn import PanopticFPN
from coursekit.validators import count_parameters

__all__ = ["HELD_OUT_START", "RECIPE", "evaluate_panoptic_fpn", "load_panoptic_fpn",
           "train_panoptic_fpn"]

NAME = "panopticfpn"
TRUNK = "maskrcnn"
RECIPE: dict[str, Any] = {"steps": 200, "batch_size": 16, "lr": 1e-2, "channels": 32,
                          "num_classes": 8, "size": 64}


def _trunk(directory: str | os.PathLike | None = None,
           device: str | torch.device = "cpu") -> tuple[nn.Module, str]:
    """The Mask R-CNN trunk (eval mode, frozen) and its checkpoint's sha256."""
    from coursekit.checkpoints import read_manifest, verify
    from coursekit.instance.train import load_maskrcnn

    verify(TRUNK, directory)  # sha256 against the manifest
    digest = read_manifest(directory)[TRUNK]["sha256"]
    model = load_maskrcnn(directory=None if directory is None else Path(directory), device=device)
    model.requires_grad_(False)
    return model, digest


def load_panoptic_fpn(*, directory: str | os.PathLike | None = None,
                      trunk_directory: str | os.PathLike | None = None,
                      device: str | torch.device = "cpu") -> PanopticFPN:
    """The shipped Panoptic FPN: the shipped ``maskrcnn`` + the trained semantic head, in eval.

    ``directory`` loads the head from a training run (``runs/panopticfpn``);
    ``trunk_directory`` the Mask R-CNN from another folder. Raises ``CheckpointError``
    when the trunk's sha256 differs from the one the head was trained on.
    """
    from coursekit.checkpoints import CheckpointError, load_pretrained

    checkpoint = load_pretrained(NAME, directory=directory)
    config = checkpoint["config"]
    trunk, digest = _trunk(trunk_directory, device)
    if digest != config["trunk_sha256"]:
        raise CheckpointError(
            f"the {NAME} head was trained on {config['trunk']} sha256 "
            f"{config['trunk_sha256'][:12]}…, but that checkpoint is now {digest[:12]}…; "
            f"retrain it with `coursekit train {NAME}` and "
            f"`coursekit install-checkpoint runs/{NAME}`")
    model = PanopticFPN(trunk, num_classes=config["num_classes"], channels=config["channels"])
    model.semantic_head.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


@torch.no_grad()
def evaluate_panoptic_fpn(model: PanopticFPN, seeds: Iterable[int], size: int = 64,
                          batch_size: int = 25) -> dict[str, Any]:
    """PQ (All / Things / Stuff, per class) and semantic mIoU of ``model`` on scenes ``seeds``.

    Both branches run on one backbone pass; their outputs go through ``panoptic_fusion``
    (its defaults), scored by ``panoptic_quality`` against ``panoptic_ids(scene)``.
    Returns ``panoptic_quality``'s dict plus ``"miou"``.
    """
    from coursekit.data.coco import panoptic_ids
    from coursekit.data.shapesworld import render_batch
    from coursekit.panoptic import SHAPESWORLD_CATEGORIES
    from coursekit.panoptic.fusion import panoptic_fusion
    from coursekit.panoptic.quality import panoptic_quality
    from coursekit.segmentation.metrics import confusion_matrix, iou_from_confusion

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one scene, got an empty sequence")
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    num_classes = model.semantic_head.predictor.out_channels
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    pred_ids, pred_segments, gt_ids, gt_segments = [], [], [], []
    for i in range(0, len(seeds), batch_size):
        scenes = render_batch(seeds[i : i + batch_size], size=size, device=device)
        detections, logits = model(scenes.image)  # per image dicts, (B, K, H, W)
        matrix += confusion_matrix(logits.argmax(1), scenes.semantic, num_classes)
        for k, (det, lg) in enumerate(zip(detections, logits, strict=True)):
            ids, segments = panoptic_fusion(det, lg)
            pred_ids.append(ids)
            pred_segments.append(segments)
            gt = panoptic_ids(scenes.scene(k))
            gt_ids.append(gt[0])
            gt_segments.append(gt[1])
    model.train(was_training)
    result = panoptic_quality(pred_ids, pred_segments, gt_ids, gt_segments,
                              SHAPESWORLD_CATEGORIES)
    result["miou"] = float(torch.nanmean(iou_from_confusion(matrix)))
    return result


def train_panoptic_fpn(out_dir: str | os.PathLike | None, seed: int, quick: bool, *,
                       steps: int | None = None, trunk_directory: str | os.PathLike | None = None,
                       progress: bool | None = None) -> dict[str, float]:
    """Train the semantic head on the frozen shipped Mask R-CNN into a run folder.

    Writes ``<run>/panopticfpn.pt`` (the head's weights, its config with the trunk's name
    and sha256, history, metrics) and its manifest entry; ``<run>`` is ``out_dir`` or
    ``./runs/panopticfpn``. ``quick=True``: 3 steps of 4 scenes, scored on 4 held-out
    scenes (a smoke test). The full recipe (``RECIPE``) is scored on 50 held-out scenes.
    Returns ``{"pq", "pq_things", "pq_stuff", "miou"}``.
    """
    from coursekit.data.shapesworld import render_batch
    from coursekit.device import pick_device
    from coursekit.seed import seed_everything
    from coursekit.segmentation.losses import pixel_cross_entropy
    from coursekit.train import fit, process_rank, recipe_key, run_dir_for, save_run, state_path_for

    run_dir = run_dir_for(NAME, out_dir, quick)
    batch_size = 4 if quick else RECIPE["batch_size"]
    steps = steps if steps is not None else 3 if quick else RECIPE["steps"]
    seed_everything(seed)
    device = pick_device()
    trunk, digest = _trunk(trunk_directory, device)
    model = PanopticFPN(trunk, num_classes=RECIPE["num_classes"],
                        channels=RECIPE["channels"]).to(device)
    head = model.semantic_head

    def batch_fn(step: int) -> tuple[Tensor, Tensor, dict[str, Tensor]]:
        first = step * batch_size  # scene seeds 0, 1, 2, ... never repeat
        scenes = render_batch(list(range(first, first + batch_size)), size=RECIPE["size"],
                              device=device)
        with torch.no_grad():  # the frozen trunk: no graph, no gradients
            features = trunk.backbone(trunk.transform(scenes.image))  # {"0": (B, 64, 32, 32), ..}
        return scenes.image, scenes.semantic, features

    def loss_fn(net: nn.Module, batch: tuple[Tensor, Tensor, dict[str, Tensor]]) -> Tensor:
        image, target, features = batch
        return pixel_cross_entropy(net(features, tuple(image.shape[-2:])), target)

    state = state_path_for(run_dir, NAME, seed, recipe_key(RECIPE, steps, batch_size, digest))
    start = time.perf_counter()
    history = fit(head, batch_fn, loss_fn, steps=steps, lr=RECIPE["lr"],
                  warmup=min(20, steps // 10), state_path=None if quick else state,
                  save_every=100, desc=f"train {NAME}", progress=False if quick else progress)
    seconds = time.perf_counter() - start
    eval_seeds = range(HELD_OUT_START, HELD_OUT_START + (4 if quick else 50))
    result = evaluate_panoptic_fpn(model, eval_seeds)
    metrics = {"pq": result["All"]["pq"], "pq_things": result["Things"]["pq"],
               "pq_stuff": result["Stuff"]["pq"], "miou": result["miou"]}
    if process_rank() != 0:
        return metrics
    checkpoint = {
        "model": {k: v.detach().cpu().float() for k, v in head.state_dict().items()},
        "config": {"num_classes": RECIPE["num_classes"], "channels": RECIPE["channels"],
                   "in_channels": trunk.backbone.out_channels,
                   "num_levels": len(trunk.backbone.strides),
                   "trunk": TRUNK, "trunk_sha256": digest},
        "history": {**history, "train_seconds": seconds, "steps": steps,
                    "batch_size": batch_size},
        "metrics": {**metrics, "parameters": count_parameters(head),
                    "eval_scenes": len(eval_seeds)},
    }
    save_run(NAME, checkpoint, out_dir=run_dir, seed=seed, quick=quick, metrics=metrics)
    state.unlink(missing_ok=True)
    return metrics
