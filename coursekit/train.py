"""One small training loop for every model in the course.

``fit`` runs ``steps`` optimisation steps of Adam with a cosine learning
rate, shows a tqdm bar, records the loss curve, and (with ``state_path``)
saves its state atomically every ``save_every`` steps so a stopped run
resumes where it left off. Launched under ``torchrun`` (``WORLD_SIZE`` set)
it wraps the model in DistributedDataParallel and each rank draws its own
batches, so a class can scale a model out on an existing machine.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from coursekit.checkpoints import atomic_torch_save

BatchFn = Callable[[int], Any]
LossFn = Callable[[torch.nn.Module, Any], torch.Tensor]


def distributed_rank() -> tuple[int, int]:
    """(rank, world_size), initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def cosine_lr(step: int, steps: int, lr: float, warmup: int = 0) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 5% of ``lr``."""
    if warmup and step < warmup:
        return lr * (step + 1) / warmup
    progress = (step - warmup) / max(1, steps - warmup)
    return lr * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def fit(
    model: torch.nn.Module,
    batch_fn: BatchFn,
    loss_fn: LossFn,
    *,
    steps: int,
    lr: float = 2e-3,
    weight_decay: float = 0.0,
    warmup: int = 0,
    clip_grad: float | None = 5.0,
    state_path: str | os.PathLike | None = None,
    save_every: int = 100,
    log_every: int = 10,
    desc: str = "train",
    progress: bool | None = None,
) -> dict[str, list[float]]:
    """Train ``model`` in place and return its history ``{"step": [...], "loss": [...]}``.

    ``batch_fn(step)`` returns the batch for that step (already on the model's
    device); ``loss_fn(model, batch)`` returns a scalar loss. Pass
    ``progress=False`` to hide the bar (``None``: hide when not a terminal or notebook).
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not isinstance(steps, int) or steps <= 0:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    rank, world = distributed_rank()
    net = model
    if world > 1:
        net = torch.nn.parallel.DistributedDataParallel(model)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    history: dict[str, list[float]] = {"step": [], "loss": []}
    start = 0
    if state_path is not None and Path(state_path).exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history = {k: list(v) for k, v in state["history"].items()}
        start = int(state["step"])
    model.train()
    running, count = 0.0, 0
    bar = tqdm(range(start, steps), desc=desc, disable=progress is False or rank != 0, initial=start, total=steps, leave=False)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        loss = loss_fn(net, batch_fn(step))
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss became {loss.item()} at step {step}; lower lr (now {lr})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if clip_grad is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip_grad)
        optimizer.step()
        running += loss.item()
        count += 1
        if (step + 1) % log_every == 0 or step + 1 == steps:
            history["step"].append(step + 1)
            history["loss"].append(running / count)
            bar.set_postfix(loss=f"{running / count:.4f}")
            running, count = 0.0, 0
        if state_path is not None and rank == 0 and ((step + 1) % save_every == 0 or step + 1 == steps):
            atomic_torch_save(
                {"model": model.state_dict(), "optimizer": optimizer.state_dict(), "history": history, "step": step + 1},
                state_path,
            )
    bar.close()
    model.eval()
    return history
