"""Shipped model weights: ``data/checkpoints/*.pt`` plus ``manifest.json``.

``load_pretrained(name)`` checks the file's sha256 against the manifest, then
loads it with ``torch.load(weights_only=True)`` (plain tensors and Python
containers only, never pickled code). ``save_pretrained`` writes atomically:
a temporary file in the same folder, then ``os.replace``, so an interrupted
run leaves the previous checkpoint intact.

The folder is ``data/checkpoints/`` in the repository, reached through the
symlink ``coursekit/_checkpoints``; the wheel ships the files themselves as
package data in ``coursekit/_checkpoints/`` (see pyproject.toml), and
``COURSEKIT_CHECKPOINTS`` points elsewhere if you want.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

MANIFEST = "manifest.json"
ENV_VAR = "COURSEKIT_CHECKPOINTS"


class CheckpointError(RuntimeError):
    """A checkpoint is unknown, missing or does not match its manifest entry."""


def checkpoint_dir() -> Path:
    """The folder holding ``manifest.json`` and the ``*.pt`` files."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    # In a checkout coursekit/_checkpoints is a symlink to data/checkpoints; the wheel
    # carries the files themselves there (package data).
    return Path(__file__).resolve().parent / "_checkpoints"


def sha256_file(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: Path | None = None) -> dict[str, dict[str, Any]]:
    path = (directory or checkpoint_dir()) / MANIFEST
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _atomic_write_bytes(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_torch_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` to a temporary file, then rename over ``path``."""
    _atomic_write_bytes(Path(path), lambda handle: torch.save(obj, handle))


def save_pretrained(
    name: str,
    checkpoint: dict[str, Any],
    *,
    command: str,
    seed: int,
    metrics: dict[str, float] | None = None,
    directory: Path | None = None,
) -> Path:
    """Write ``<name>.pt`` atomically and record it in the manifest.

    ``checkpoint`` is a dict of tensors and plain Python values, usually
    ``{"model": state_dict, "config": {...}, "history": {...}}``.
    """
    if not name or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name must be a short identifier like 'unet', got {name!r}")
    if not isinstance(checkpoint, dict):
        raise TypeError(f"checkpoint must be a dict, got {type(checkpoint).__name__}")
    directory = Path(directory) if directory is not None else checkpoint_dir()
    path = directory / f"{name}.pt"
    atomic_torch_save(checkpoint, path)
    manifest = read_manifest(directory)
    manifest[name] = {
        "file": path.name,
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "command": command,
        "seed": seed,
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "created": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__.split("+")[0],
    }
    text = json.dumps(dict(sorted(manifest.items())), indent=2) + "\n"
    _atomic_write_bytes(directory / MANIFEST, lambda handle: handle.write(text.encode()))
    return path


def verify(name: str, directory: Path | None = None) -> Path:
    """Return the checkpoint's path after checking its size and sha256."""
    directory = Path(directory) if directory is not None else checkpoint_dir()
    manifest = read_manifest(directory)
    if name not in manifest:
        known = ", ".join(sorted(manifest)) or "none"
        raise CheckpointError(f"unknown checkpoint name {name!r}; known: {known} (train one with `coursekit train NAME`)")
    entry = manifest[name]
    path = directory / entry["file"]
    if not path.exists():
        raise CheckpointError(f"checkpoint file {path} is missing; run `coursekit train {name}`")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"checkpoint file {path} is corrupt or changed: sha256 {digest[:12]}… "
            f"does not match the manifest's {entry['sha256'][:12]}…; restore it (git checkout) "
            f"or retrain with `coursekit train {name}`"
        )
    return path


def load_pretrained(
    name: str,
    model: torch.nn.Module | None = None,
    *,
    map_location: str | torch.device = "cpu",
    directory: Path | None = None,
) -> Any:
    """Load shipped weights by name, sha256-checked, with ``weights_only=True``.

    With ``model`` given, its state is loaded (strictly) and the model is
    returned; otherwise the checkpoint dict is returned.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {type(name).__name__}")
    path = verify(name, directory)
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if model is None:
        return checkpoint
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    model.load_state_dict(checkpoint["model"])
    return model
