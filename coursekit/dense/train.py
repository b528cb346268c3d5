"""Train the lesson-04 models: U-Nets that regress depth and optical flow.

The network is the segmentation U-Net of lesson 03 with a different head:
one output channel (log depth) or two (dx, dy), and for flow six input
channels (both frames stacked). Only the loss changes:

* depth: ``scale_invariant_loss`` on log depth (λ = 0.5, Eigen et al.);
* flow: the end-point error itself.

``coursekit train depth`` / ``coursekit train flow`` write a run folder
(``runs/depth/``, ``runs/flow/``); ``coursekit install-checkpoint runs/depth`` replaces
the shipped checkpoint with it (keeping a backup). Lessons load the shipped ones with
``load_dense_model``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import torch

from coursekit.checkpoints import load_pretrained
from coursekit.data.shapesworld import render_batch
from coursekit.dense.depth import depth_metrics, scale_invariant_loss
from coursekit.dense.flow import end_point_error, flow_metrics
from coursekit.segmentation.unet import UNet
from coursekit.train import fit, run_dir_for, save_run

HELD_OUT = 2_000_000  # held-out seeds start here (training uses 0, 1, 2, ...)
CONFIGS = {
    "depth": {"in_channels": 3, "out_channels": 1, "width": 16, "depth": 3},
    "flow": {"in_channels": 6, "out_channels": 2, "width": 16, "depth": 3},
}


def build(name: str) -> UNet:
    if name not in CONFIGS:
        raise ValueError(f"name must be one of {sorted(CONFIGS)}, got {name!r}")
    return UNet(**CONFIGS[name])


def inputs_for(name: str, batch) -> torch.Tensor:
    """The network input: the image, or both frames stacked for flow.

    Tensor[B, 3, H, W] for depth, Tensor[B, 6, H, W] for flow.
    """
    return batch.image if name == "depth" else torch.cat([batch.image, batch.next_image], dim=1)


@torch.no_grad()
def predict(name: str, model: torch.nn.Module, batch) -> torch.Tensor:
    """Depth Tensor[B, H, W] (metres, exp of the predicted log) or flow Tensor[B, 2, H, W]."""
    model.eval()
    out = model(inputs_for(name, batch))
    return out[:, 0].exp() if name == "depth" else out


def evaluate(
    name: str, model: torch.nn.Module, seeds, size: int = 64, batch_size: int = 64
) -> dict[str, float]:
    """Depth: AbsRel, RMSE, δ1 ... ; flow: EPE (all pixels and moving pixels).

    For flow also the EPEs of predicting zero motion, for comparison.

    Predictions of every batch are gathered first and the metrics computed once over
    all pixels, so RMSE (a root of a mean) and EPE on moving pixels are exact for the
    whole set, not averages of per-batch values.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds must name at least one scene, got an empty sequence")
    device = next(model.parameters()).device
    preds, truths = [], []
    for start in range(0, len(seeds), batch_size):
        batch = render_batch(seeds[start:start + batch_size], size=size, device=device)
        preds.append(predict(name, model, batch))
        truths.append(batch.depth if name == "depth" else batch.flow)
    pred, truth = torch.cat(preds), torch.cat(truths)  # depth (S, H, W), flow (S, 2, H, W)
    if name == "depth":
        return depth_metrics(pred, truth)
    m = flow_metrics(pred, truth)
    m["epe_zero_flow"] = flow_metrics(torch.zeros_like(truth), truth)["epe"]
    moving = truth.norm(dim=1) > 0  # (S, H, W): pixels of things that move
    m["epe_moving"] = flow_metrics(pred, truth, moving)["epe"]
    m["epe_moving_zero_flow"] = flow_metrics(torch.zeros_like(truth), truth, moving)["epe"]
    return m


def _loss(name: str):
    def loss_fn(model, batch):
        out = model(inputs_for(name, batch))
        if name == "depth":
            return scale_invariant_loss(out[:, 0], batch.depth.log(), lam=0.5)
        return end_point_error(out, batch.flow)
    return loss_fn


def train_dense(name: str, out_dir: str | os.PathLike | None, seed: int, quick: bool, *,
                steps: int = 1500, batch_size: int = 32, size: int = 64) -> dict[str, float]:
    """Train the depth or flow U-Net from scratch into a run folder; return its metrics.

    Writes ``<run>/<name>.pt`` and its ``manifest.json`` entry, where ``<run>`` is
    ``out_dir`` or ``./runs/<name>`` (never the shipped folder). ``quick=True``: 5 steps,
    evaluated on 32 held-out scenes (a smoke test, marked ``quick`` in the manifest).
    Under ``torchrun`` only rank 0 saves.
    """
    run_dir = run_dir_for(name, out_dir, quick)
    torch.manual_seed(seed)
    model = build(name)
    steps = 5 if quick else steps

    def batch_fn(step):
        first = seed * 10_000_000 + step * batch_size
        return render_batch(range(first, first + batch_size), size=size)

    start = time.perf_counter()
    history = fit(model, batch_fn, _loss(name), steps=steps, lr=3e-3, warmup=min(50, steps),
                  log_every=max(1, steps // 50), desc=f"train {name}")
    minutes = (time.perf_counter() - start) / 60
    metrics = evaluate(name, model, range(HELD_OUT, HELD_OUT + (32 if quick else 256)), size=size)
    metrics["train_minutes"] = minutes
    checkpoint = {"model": model.state_dict(), "config": CONFIGS[name], "history": history,
                  "metrics": metrics}
    save_run(name, checkpoint, out_dir=run_dir, seed=seed, quick=quick, metrics=metrics)
    return metrics


def train_depth(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
    """Train the depth U-Net; see ``train_dense``."""
    return train_dense("depth", out_dir, seed, quick)


def train_flow(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
    """Train the flow U-Net; see ``train_dense``."""
    return train_dense("flow", out_dir, seed, quick)


def load_dense_model(name: str, directory: Path | None = None) -> tuple[UNet, dict]:
    """The shipped depth or flow U-Net and its checkpoint (history, metrics).

    ``directory`` loads a training run instead (``runs/depth``), sha256-checked too.
    """
    checkpoint = load_pretrained(name, directory=directory)
    model = UNet(**checkpoint["config"])
    model.load_state_dict(checkpoint["model"])
    return model.eval(), checkpoint
