"""Model weights: the shipped ``data/checkpoints/`` and the run folders training writes.

Two kinds of folder hold checkpoints, in the same format (``NAME.pt`` files plus a
``manifest.json`` that records each file's sha256, size, command, seed and metrics):

* the **shipped folder** ``checkpoint_dir()``: ``data/checkpoints/`` in the repository,
  reached through the symlink ``coursekit/_checkpoints``; the wheel ships the files
  themselves as package data there (see pyproject.toml); ``COURSEKIT_CHECKPOINTS``
  points elsewhere if you want. Lessons load from it with ``load_pretrained(name)``.
* a **run folder** (``runs/NAME/`` by default): what ``coursekit train NAME`` writes,
  through ``save_pretrained(..., directory=run)``. Its manifest entry also records
  ``quick`` (a smoke-test run). ``load_pretrained(name, directory=run)`` loads from it
  with the same sha256 check.

Training never writes the shipped folder. Replacing a shipped checkpoint is an explicit
act, ``coursekit install-checkpoint runs/NAME`` (``install_checkpoint``): it refuses a
``--quick`` run, copies the checkpoint in, updates ``manifest.json`` and keeps the old
file and its old manifest entry in ``backup/NAME-<timestamp>.pt`` / ``.json``.

Every write is atomic: a temporary file in the same folder, flushed to disk, then
``os.replace``, so an interrupted or failing save leaves the previous file intact.
``load_pretrained`` checks the sha256 first, then loads with
``torch.load(weights_only=True)`` (plain tensors and Python containers, never pickled code).

Tested in tests/core/test_checkpoints.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple

import torch

from coursekit.validators import describe

MANIFEST = "manifest.json"
ENV_VAR = "COURSEKIT_CHECKPOINTS"
BACKUP = "backup"  # sub-folder of the shipped folder for replaced checkpoints (not package data)


class CheckpointError(RuntimeError):
    """A checkpoint is unknown, missing, differs from its manifest entry or cannot be installed."""


class Installed(NamedTuple):
    """What ``install_checkpoint`` did: the new file, and the backups of what it replaced."""

    path: Path
    backup: Path | None  # the previous checkpoint, or None when there was none
    backup_entry: Path | None  # the previous manifest entry (JSON), or None


def checkpoint_dir() -> Path:
    """The shipped folder holding ``manifest.json`` and the ``*.pt`` files."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env)
    # In a checkout coursekit/_checkpoints is a symlink to data/checkpoints; the wheel
    # carries the files themselves there (package data).
    return Path(__file__).resolve().parent / "_checkpoints"


def is_shipped_dir(directory: str | os.PathLike) -> bool:
    """True when ``directory`` is the shipped folder (symlinks resolved)."""
    return Path(directory).resolve() == checkpoint_dir().resolve()


def sha256_file(path: str | os.PathLike) -> str:
    """The hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_manifest(directory: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """The manifest of ``directory`` (default: the shipped folder); ``{}`` when there is none."""
    path = Path(directory if directory is not None else checkpoint_dir()) / MANIFEST
    if not path.exists():
        return {}
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def _manifest_text(manifest: dict[str, dict[str, Any]]) -> str:
    return json.dumps(dict(sorted(manifest.items())), indent=2) + "\n"


def _stage(path: Path, write: Callable[[BinaryIO], Any]) -> Path:
    """Write a temporary sibling of ``path`` with ``write(handle)``, flushed to disk; return it.

    On any failure (an exception, Ctrl-C) the temporary file is removed and the error
    propagates; ``path`` itself is never touched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; checkpoints are read by everyone (wheel, lab)
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _atomic_write_bytes(path: Path, write: Callable[[BinaryIO], Any]) -> None:
    tmp = _stage(path, write)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _copy_from(source: Path) -> Callable[[BinaryIO], None]:
    def write(handle: BinaryIO) -> None:
        with open(source, "rb") as src:
            shutil.copyfileobj(src, handle, 1 << 20)

    return write


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
    directory: str | os.PathLike,
    quick: bool = False,
) -> Path:
    """Write ``<directory>/<name>.pt`` atomically and record it in ``<directory>/manifest.json``.

    ``checkpoint`` is a dict of tensors and plain Python values, usually
    ``{"model": state_dict, "config": {...}, "history": {...}}``. ``directory`` is a
    run folder (``runs/NAME``); the shipped folder is refused: replace a shipped
    checkpoint with ``install_checkpoint`` (``coursekit install-checkpoint``), which
    keeps a backup. ``quick`` marks a smoke-test run, which ``install_checkpoint`` refuses.
    """
    if not isinstance(name, str) or not name.replace("_", "").replace("-", "").isalnum():
        raise ValueError(f"name must be a short identifier like 'unet', got {name!r}")
    if not isinstance(checkpoint, dict):
        raise TypeError(f"checkpoint must be a dict, got {describe(checkpoint)}")
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"directory must be a path (str or os.PathLike), got {describe(directory)}")
    directory = Path(directory)
    if is_shipped_dir(directory):
        raise ValueError(
            f"directory must be a run folder, not the shipped checkpoint folder {directory}; "
            f"save into runs/{name} and install it with `coursekit install-checkpoint runs/{name}`"
        )
    path = directory / f"{name}.pt"
    atomic_torch_save(checkpoint, path)
    manifest = read_manifest(directory)
    manifest[name] = {
        "file": path.name,
        "sha256": sha256_file(path),
        "size": path.stat().st_size,
        "command": command,
        "seed": seed,
        "quick": bool(quick),
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "created": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__.split("+")[0],
    }
    text = _manifest_text(manifest)
    _atomic_write_bytes(directory / MANIFEST, lambda handle: handle.write(text.encode()))
    return path


def verify(name: str, directory: str | os.PathLike | None = None) -> Path:
    """Return the checkpoint's path after checking its sha256 against the manifest."""
    directory = Path(directory) if directory is not None else checkpoint_dir()
    manifest = read_manifest(directory)
    if name not in manifest:
        known = ", ".join(sorted(manifest)) or "none"
        raise CheckpointError(
            f"unknown checkpoint name {name!r} in {directory}; known: {known} "
            f"(train one with `coursekit train NAME`)"
        )
    entry = manifest[name]
    path = directory / entry["file"]
    if not path.exists():
        raise CheckpointError(f"checkpoint file {path} is missing; run `coursekit train {name}`")
    digest = sha256_file(path)
    if digest != entry["sha256"]:
        raise CheckpointError(
            f"checkpoint file {path} is corrupt or changed: sha256 {digest[:12]}… "
            f"does not match the manifest's {entry['sha256'][:12]}…; restore it (git checkout, "
            f"or a copy in {directory / BACKUP}) or retrain with `coursekit train {name}` "
            f"and `coursekit install-checkpoint runs/{name}`"
        )
    return path


def load_pretrained(
    name: str,
    model: torch.nn.Module | None = None,
    *,
    map_location: str | torch.device = "cpu",
    directory: str | os.PathLike | None = None,
) -> Any:
    """Load weights by name, sha256-checked, with ``weights_only=True``.

    From the shipped folder by default; ``directory`` may name another folder with a
    manifest, such as a training run (``load_pretrained("unet", directory="runs/unet")``).
    With ``model`` given, its state is loaded (strictly) and the model is returned;
    otherwise the checkpoint dict is returned.
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {describe(name)}")
    if model is not None and not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {describe(model)}")
    path = verify(name, directory)
    checkpoint = torch.load(path, map_location=map_location, weights_only=True)
    if model is None:
        return checkpoint
    model.load_state_dict(checkpoint["model"])
    return model


def _backup_stem(backup_dir: Path, name: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    stem, n = f"{name}-{stamp}", 1
    while (backup_dir / f"{stem}.pt").exists() or (backup_dir / f"{stem}.json").exists():
        stem, n = f"{name}-{stamp}-{n}", n + 1
    return stem


def install_checkpoint(
    run_dir: str | os.PathLike,
    name: str | None = None,
    *,
    directory: str | os.PathLike | None = None,
) -> Installed:
    """Copy a finished training run's checkpoint into the shipped folder, keeping a backup.

    ``run_dir`` is what ``coursekit train NAME`` wrote (``runs/NAME``): ``NAME.pt`` and a
    ``manifest.json`` entry; ``name`` is needed only when it holds several models.
    ``directory`` is the shipped folder (default ``checkpoint_dir()``).

    Refuses (``CheckpointError``) a ``--quick`` run, a run whose file does not match
    its sha256, and a run that is the shipped folder itself. The old ``NAME.pt`` and its
    old manifest entry go to ``<directory>/backup/NAME-<timestamp>.pt`` and ``.json``.
    Both new files are written to temporary files first; the two renames that commit
    them come last and the first is undone if the second fails, so a failure or Ctrl-C
    leaves the previous checkpoint and manifest in place.
    """
    if not isinstance(run_dir, (str, os.PathLike)):
        raise TypeError(f"run_dir must be a path (str or os.PathLike), got {describe(run_dir)}")
    run_dir = Path(run_dir)
    dest = Path(directory) if directory is not None else checkpoint_dir()
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder {run_dir} does not exist; make one with "
                              f"`coursekit train NAME` (it writes runs/NAME)")
    if run_dir.resolve() == dest.resolve():
        raise CheckpointError(f"run folder {run_dir} is the shipped checkpoint folder itself")
    runs = read_manifest(run_dir)
    if not runs:
        raise CheckpointError(f"{run_dir} is not a training run: it has no {MANIFEST} "
                              f"(make one with `coursekit train NAME`)")
    if name is None:
        if len(runs) != 1:
            raise CheckpointError(f"{run_dir} holds several models ({', '.join(sorted(runs))}); "
                                  f"say which with --name")
        name = next(iter(runs))
    source = verify(name, run_dir)
    entry = dict(runs[name])
    if entry.get("quick") is not False:
        why = ("is a --quick run (a smoke test" if entry.get("quick")
               else "does not record whether it was a --quick run (made by an older coursekit")
        raise CheckpointError(
            f"refusing to install {source}: it {why}), not a model for the lessons; "
            f"train it fully with `coursekit train {name}` and install that run"
        )
    target = dest / f"{name}.pt"
    manifest = read_manifest(dest)
    old_entry = manifest.get(name)
    entry["file"] = target.name
    manifest[name] = entry
    text = _manifest_text(manifest)

    staged: list[Path] = []
    try:
        new_pt = _stage(target, _copy_from(source))
        staged.append(new_pt)
        if sha256_file(new_pt) != entry["sha256"]:
            raise CheckpointError(f"{source} changed while it was being copied; try again")
        new_manifest = _stage(dest / MANIFEST, lambda handle: handle.write(text.encode()))
        staged.append(new_manifest)
        backup = backup_entry = None
        if target.exists() or old_entry is not None:
            backup_dir = dest / BACKUP
            backup_dir.mkdir(parents=True, exist_ok=True)
            stem = _backup_stem(backup_dir, name)
            if target.exists():
                backup = backup_dir / f"{stem}.pt"
                _atomic_write_bytes(backup, _copy_from(target))
            backup_entry = backup_dir / f"{stem}.json"
            record = _manifest_text({name: old_entry} if old_entry is not None else {})
            _atomic_write_bytes(backup_entry, lambda handle: handle.write(record.encode()))
        # commit: two renames; undo the first if the second fails
        os.replace(new_pt, target)
        try:
            os.replace(new_manifest, dest / MANIFEST)
        except BaseException:
            if backup is not None:
                _atomic_write_bytes(target, _copy_from(backup))
            else:
                target.unlink(missing_ok=True)
            raise
    finally:
        for tmp in staged:
            tmp.unlink(missing_ok=True)
    return Installed(target, backup, backup_entry)
