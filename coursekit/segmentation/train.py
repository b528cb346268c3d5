"""Train FCN and U-Net on ShapesWorld, evaluate mIoU, load the shipped weights.

Training scenes are rendered on the fly: step ``s`` uses scene seeds
``s * B .. s * B + B - 1`` (never the same picture twice); evaluation uses the
held-out seeds from ``HELD_OUT_START = 1_000_000`` on. The loss is
``pixel_cross_entropy`` and the loop is ``coursekit.train.fit``.

    coursekit train unet          # -> runs/unet/unet.pt (+ manifest entry)
    coursekit install-checkpoint runs/unet   # replace the shipped one (keeps a backup)
    model = load_segmentation_model("unet")  # the shipped weights
    evaluate_segmentation(model, range(1_000_000, 1_000_064))["miou"]

Tested in tests/segmentation/test_models.py (quick runs into a temporary folder)
and tests/segmentation/test_shipped_segmentation.py (the shipped checkpoints).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from coursekit.segmentation.fcn import FCN
from coursekit.segmentation.fcn_xs import FCNxs
from coursekit.segmentation.losses import pixel_cross_entropy
from coursekit.segmentation.metrics import confusion_matrix, iou_from_confusion
from coursekit.segmentation.segnet import SegNet
from coursekit.segmentation.unet import UNet
from coursekit.validators import count_parameters, require_dim

__all__ = ["HELD_OUT_START", "build_model", "evaluate_segmentation", "load_segmentation_model",
           "predict", "train_fcn", "train_fcn16s", "train_fcn32s", "train_fcn8s",
           "train_segmentation", "train_segnet", "train_unet", "train_unet_short"]

HELD_OUT_START = 1_000_000
MODELS: dict[str, type[nn.Module]] = {"fcn": FCN, "unet": UNet, "unet_short": UNet,
                                      "fcn32s": FCNxs, "fcn16s": FCNxs, "fcn8s": FCNxs,
                                      "segnet": SegNet}
# name -> model config and training recipe (full run; quick runs shrink steps and batch).
RECIPES: dict[str, dict[str, Any]] = {
    "fcn": {"config": {"num_classes": 8, "width": 32, "depth": 3},
            "steps": 1200, "batch_size": 24, "lr": 3e-3},
    "unet": {"config": {"num_classes": 8, "width": 16, "depth": 3},
             "steps": 1000, "batch_size": 24, "lr": 3e-3},
    # Long et al.'s FCN at three output strides, and SegNet (max unpooling): same recipe each
    **{f"fcn{s}": {"config": {"variant": s, "num_classes": 8, "width": 16},
                   "steps": 500, "batch_size": 12, "lr": 3e-3} for s in ("32s", "16s", "8s")},
    "segnet": {"config": {"num_classes": 8, "width": 16, "depth": 3},
               "steps": 500, "batch_size": 12, "lr": 3e-3},
    # the U-Net on the FCN-xs / SegNet recipe, for a like-for-like comparison (lesson 03)
    "unet_short": {"config": {"num_classes": 8, "width": 16, "depth": 3},
                   "steps": 500, "batch_size": 12, "lr": 3e-3},
}


def build_model(name: str, config: dict[str, Any] | None = None) -> nn.Module:
    """A fresh model from a name (a key of ``MODELS``, e.g. ``"unet"``) and its kwargs."""
    if name not in MODELS:
        raise ValueError(f"name must be one of {sorted(MODELS)}, got {name!r}")
    return MODELS[name](**(RECIPES[name]["config"] if config is None else config))


def _model_device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


@torch.no_grad()
def predict(model: nn.Module, image: Tensor) -> Tensor:
    """Class id per pixel: ``argmax`` of the logits.

    Tensor[(N,) 3, H, W] -> int64 Tensor[(N,) H, W].
    """
    require_dim(image, "image", (3, 4), "Tensor[3, H, W] or Tensor[N, 3, H, W]")
    was_training = model.training
    model.eval()
    batch = image.unsqueeze(0) if image.dim() == 3 else image
    labels = model(batch.to(_model_device(model))).argmax(1)  # (N, H, W)
    model.train(was_training)
    return labels[0] if image.dim() == 3 else labels


@torch.no_grad()
def evaluate_segmentation(
    model: nn.Module,
    seeds: Iterable[int],
    size: int = 64,
    batch_size: int = 64,
    num_classes: int = 8,
) -> dict[str, Any]:
    """mIoU, IoU per class and pixel accuracy of ``model`` on the ShapesWorld scenes ``seeds``.

    The confusion matrices of all batches are summed first (dataset mIoU, not a
    mean of per-image mIoUs). Returns ``{"miou": float, "iou": list[float]
    (NaN for a class absent everywhere), "pixel_acc": float, "confusion": Tensor[C, C]}``.
    """
    from coursekit.data.shapesworld import render_batch

    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ValueError("seeds must name at least one scene, got an empty sequence")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    device = _model_device(model)
    matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)
    for i in range(0, len(seeds), batch_size):
        scenes = render_batch(seeds[i : i + batch_size], size=size, device=device)
        matrix += confusion_matrix(predict(model, scenes.image), scenes.semantic, num_classes)
    iou = iou_from_confusion(matrix)
    return {"miou": float(torch.nanmean(iou)), "iou": iou.tolist(),
            "pixel_acc": float(matrix.diagonal().sum() / matrix.sum()), "confusion": matrix.cpu()}


def load_segmentation_model(
    name: str, *, directory: Path | None = None, device: str | torch.device = "cpu"
) -> nn.Module:
    """A shipped model with its weights (sha256-checked), in eval mode.

    ``name``: a key of ``MODELS`` — ``"fcn"`` (the encoder-decoder without skips,
    ``EncoderDecoder``), ``"unet"``, and lesson 03's ``"fcn32s"``, ``"fcn16s"``, ``"fcn8s"``
    (``FCNxs``), ``"segnet"`` and ``"unet_short"``.

    ``directory`` loads a training run instead (``runs/unet``), with the same check.
    """
    from coursekit.checkpoints import load_pretrained

    checkpoint = load_pretrained(name, directory=directory)
    model = build_model(name, checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    return model.to(device).eval()


def train_segmentation(
    name: str,
    out_dir: str | os.PathLike | None,
    seed: int,
    quick: bool,
    *,
    steps: int | None = None,
    progress: bool | None = None,
) -> dict[str, float]:
    """Train ``name`` (``"fcn"`` / ``"unet"``) from scratch into a run folder; return its metrics.

    Writes ``<run>/<name>.pt``, its ``manifest.json`` entry and, while training, the
    resumable state, where ``<run>`` is ``out_dir`` or ``./runs/<name>`` (never the
    shipped folder: install a run with ``coursekit install-checkpoint``). ``seed``
    seeds the weights; the training scenes are the same for every seed.
    ``quick=True``: 3 steps of 4 scenes, evaluated on 8 held-out scenes (a smoke test,
    marked ``quick`` in the manifest); ``steps`` overrides the recipe's number of steps.
    Under ``torchrun`` each rank draws different scenes and only rank 0 saves.
    """
    from coursekit.data.shapesworld import render_batch
    from coursekit.device import pick_device
    from coursekit.seed import seed_everything
    from coursekit.train import (
        distributed_rank,
        fit,
        recipe_key,
        run_dir_for,
        save_run,
        state_path_for,
    )

    if name not in RECIPES:
        raise ValueError(f"name must be one of {sorted(RECIPES)}, got {name!r}")
    run_dir = run_dir_for(name, out_dir, quick)
    recipe = RECIPES[name]
    batch_size = 4 if quick else recipe["batch_size"]
    steps = steps if steps is not None else 3 if quick else recipe["steps"]
    seed_everything(seed)
    rank, world = distributed_rank()
    device = pick_device()
    if device.type == "cuda" and world > 1:
        device = torch.device("cuda", rank % torch.cuda.device_count())
    model = build_model(name).to(device)

    def batch_fn(step: int) -> tuple[Tensor, Tensor]:
        first = (step * world + rank) * batch_size  # scene seeds 0, 1, 2, ... never repeat
        scenes = render_batch(list(range(first, first + batch_size)), size=64, device=device)
        return scenes.image, scenes.semantic  # (B, 3, 64, 64), (B, 64, 64)

    def loss_fn(net: nn.Module, batch: tuple[Tensor, Tensor]) -> Tensor:
        image, target = batch
        return pixel_cross_entropy(net(image), target)

    run_id = recipe_key(recipe, steps, batch_size, world)
    state = state_path_for(run_dir, name, seed, run_id)  # resume a stopped run
    start = time.perf_counter()
    history = fit(model, batch_fn, loss_fn, steps=steps, lr=recipe["lr"],
                  warmup=min(50, steps // 10), state_path=None if quick else state,
                  save_every=100, desc=f"train {name}", progress=False if quick else progress)
    seconds = time.perf_counter() - start
    eval_seeds = range(HELD_OUT_START, HELD_OUT_START + (8 if quick else 256))
    result = evaluate_segmentation(model, eval_seeds)
    metrics = {"miou": result["miou"], "pixel_acc": result["pixel_acc"]}
    if rank != 0:
        return metrics
    weights = {k: v.detach().cpu().float() if v.is_floating_point() else v.cpu()
               for k, v in model.state_dict().items()}
    checkpoint = {
        "model": weights,
        "config": dict(model.config),
        "history": {**history, "train_seconds": seconds, "steps": steps,
                    "batch_size": batch_size, "world_size": world},
        "metrics": {**metrics, "iou": result["iou"],
                    "parameters": count_parameters(model, trainable_only=True),
                    "eval_scenes": len(eval_seeds)},
    }
    save_run(name, checkpoint, out_dir=run_dir, seed=seed, quick=quick, metrics=metrics)
    state.unlink(missing_ok=True)
    return metrics


def train_fcn(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
    """Train the encoder-decoder without skips (shipped as ``fcn``); see ``train_segmentation``."""
    return train_segmentation("fcn", out_dir, seed, quick)


def train_fcn32s(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
    """Train Long et al.'s FCN-32s (one x32 upsampling); see ``train_segmentation``."""
    return train_segmentation("fcn32s", out_dir, seed, quick)


def train_fcn16s(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
    """Train FCN-16s (pool4 scores added at stride 16); see ``train_segmentation``."""
    return train_segmentation("fcn16s", out_dir, seed, quick)


def train_fcn8s(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
    """Train FCN-8s (pool4 and pool3 scores added); see ``train_segmentation``."""
    return train_segmentation("fcn8s", out_dir, seed, quick)


def train_segnet(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
    """Train SegNet (max unpooling with the encoder's indices); see ``train_segmentation``."""
    return train_segmentation("segnet", out_dir, seed, quick)


def train_unet_short(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
    """Train the U-Net on the shorter FCN-xs recipe (500 steps x 12); see ``train_segmentation``."""
    return train_segmentation("unet_short", out_dir, seed, quick)


def train_unet(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
    """Train the U-Net on ShapesWorld; see ``train_segmentation``."""
    return train_segmentation("unet", out_dir, seed, quick)
