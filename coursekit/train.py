"""One small training loop for every model in the course, and where a run writes.

``fit`` runs ``steps`` optimisation steps of AdamW with a cosine learning
rate, shows a tqdm bar, records the loss curve, and (with ``state_path``)
saves its state atomically every ``save_every`` steps so a stopped run
resumes where it left off. Launched under ``torchrun`` (``WORLD_SIZE`` set)
it wraps the model in DistributedDataParallel and each rank draws its own
batches, so a class can scale a model out on an existing machine.

A training run writes only its **run folder**: ``runs/NAME/`` under the current
directory, or the ``out_dir`` given (``coursekit train NAME --out DIR``), never the
shipped ``data/checkpoints/``. ``run_dir_for`` picks the folder (and refuses the
shipped one), ``save_run`` writes ``NAME.pt`` and its manifest entry there (rank 0
only), ``state_path_for`` names the resumable state. A run replaces a shipped
checkpoint only through ``coursekit install-checkpoint runs/NAME``.

Tested in tests/core/test_train.py and tests/core/test_train_runs.py.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from coursekit.checkpoints import (
    atomic_torch_save,
    checkpoint_dir,
    is_shipped_dir,
    read_manifest,
    save_pretrained,
)
from coursekit.validators import describe, positive_int

BatchFn = Callable[[int], Any]
LossFn = Callable[[torch.nn.Module, Any], torch.Tensor]
RUNS = "runs"  # default parent of run folders, relative to the current directory


def distributed_rank() -> tuple[int, int]:
    """(rank, world_size), initialising the process group under torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), world


def process_rank() -> int:
    """This process's rank (0 when not distributed), without starting a process group."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", "0"))


def finish_distributed() -> None:
    """Under torchrun: wait for every rank, then close the process group (no-op otherwise)."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()


def run_dir_for(name: str, out_dir: str | os.PathLike | None = None, quick: bool = False) -> Path:
    """The folder a run of ``name`` writes: ``out_dir``, else ``./runs/NAME``.

    Raises ``ValueError`` for the shipped checkpoint folder (or a folder inside it), and
    for a ``quick`` run that would replace a full run's checkpoint in the same folder.
    """
    if out_dir is not None and not isinstance(out_dir, (str, os.PathLike)):
        raise TypeError(f"out_dir must be a path (str or os.PathLike) or None, "
                        f"got {describe(out_dir)}")
    path = Path(out_dir) if out_dir is not None else Path.cwd() / RUNS / name
    shipped = checkpoint_dir().resolve()
    resolved = path.resolve()
    if is_shipped_dir(path) or shipped in resolved.parents:
        raise ValueError(
            f"out_dir must be a run folder, not the shipped checkpoint folder {shipped}; "
            f"train into runs/{name} (the default) and replace the shipped checkpoint with "
            f"`coursekit install-checkpoint runs/{name}`"
        )
    entry = read_manifest(path).get(name)
    if quick and entry is not None and entry.get("quick") is False:
        raise ValueError(
            f"out_dir {path} holds a full run of {name!r} that a --quick run would replace; "
            f"install or move it first, or give the smoke test its own --out folder"
        )
    return path


def recipe_key(*parts: Any) -> str:
    """10 hex digits naming a recipe (``state_path_for``'s ``key``): the sha256 of the parts
    as JSON with sorted keys, so a changed recipe, config or step count never resumes an old
    state, and the same recipe always finds its own."""
    return hashlib.sha256(json.dumps(list(parts), sort_keys=True).encode()).hexdigest()[:10]


def state_path_for(run_dir: str | os.PathLike, name: str, seed: int, key: str) -> Path:
    """Where a run keeps its resumable state: ``<run>/<name>.seed<seed>.<key>.state.pt``.

    ``key`` identifies the recipe (a hash), so a changed recipe does not resume an old state.
    """
    return Path(run_dir) / f"{name}.seed{seed}.{key}.state.pt"


def save_run(
    name: str,
    checkpoint: dict[str, Any],
    *,
    out_dir: str | os.PathLike | None,
    seed: int,
    quick: bool,
    metrics: dict[str, float] | None = None,
    command: str | None = None,
) -> Path | None:
    """Write a finished run: ``<run>/<name>.pt`` and its manifest entry, atomically.

    Only rank 0 writes (under torchrun the other ranks return ``None``). The entry
    records sha256, size, ``command`` (default ``coursekit train NAME``), seed, metrics
    and ``quick``.
    """
    if process_rank() != 0:
        return None
    return save_pretrained(name, checkpoint, command=command or f"coursekit train {name}",
                           seed=seed, metrics=metrics, quick=quick,
                           directory=run_dir_for(name, out_dir))


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
    Only rank 0 writes ``state_path``.
    """
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    steps = positive_int(steps, "steps")
    if isinstance(lr, bool) or not isinstance(lr, numbers.Real):
        raise TypeError(f"lr must be a float, got {describe(lr)}")
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
    bar = tqdm(range(start, steps), desc=desc, disable=progress is False or rank != 0,
               initial=start, total=steps, leave=False)
    for step in bar:
        for group in optimizer.param_groups:
            group["lr"] = cosine_lr(step, steps, lr, warmup)
        loss = loss_fn(net, batch_fn(step))
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss became {loss.item()} at step {step}; lower lr (now {lr})")
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
        due = (step + 1) % save_every == 0 or step + 1 == steps
        if state_path is not None and rank == 0 and due:
            state = {"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                     "history": history, "step": step + 1}
            atomic_torch_save(state, state_path)
    bar.close()
    model.eval()
    return history
