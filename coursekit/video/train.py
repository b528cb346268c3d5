"""Train and evaluate the lesson-11 video classifiers on ShapesWorld action videos.

Every model sees the same data (``coursekit.data.video``): clips of ``clip_len = 8``
frames taken every ``stride = 3`` frames (a lower frame rate) from 48-frame videos at
32 x 32 pixels (a low resolution), one random clip per training video, rendered once
into a bank of ``train_videos`` clips at the start of a run. A batch draws clips from
the bank and plays half of them backwards: a reversed clip of a motion class is exactly a
clip of its partner class (``MOTION_PAIRS``: left <-> right, clockwise <-> anticlockwise,
grow <-> shrink, approach <-> recede), and an appearance class stays itself, so this
augmentation is free and exact (:func:`reverse_clips`).

Models (``coursekit train NAME``, one name per shipped checkpoint):

* ``video_single_frame`` — ``SingleFrameCNN``: a 2D CNN per frame, probabilities averaged
* ``video_late_fusion`` / ``video_early_fusion`` — ``LateFusion`` / ``EarlyFusion``
* ``video_cnn3d`` — ``CNN3D``: 3D convolutions and pooling
* ``video_i3d`` — I3D: a ``TinyInception`` image classifier first trained on single frames
  (``pretrain_steps``), then inflated (``build_i3d(net2d=...)``) and fine-tuned on clips
* ``video_i3d_scratch`` — the same I3D network trained on clips from a random start, for
  the same number of clip steps (the comparison of the lesson)

Steps of batches of 32 clips: 400 (single-frame, both fusions), 600 (the 3D CNN, which
learns motion more slowly), 200 (both I3D runs, after 150 steps of 2D pre-training on batches
of 128 frames for ``video_i3d``). Every run records the held-out clip accuracy every
``probe_every`` steps (``curve`` in the checkpoint: accuracy per training step), and at
the end evaluates held-out videos (seeds from ``HELD_OUT``, never trained on): clip accuracy
on the centred clip of each video, on all classes, on the appearance classes and on the
motion-only classes
(:func:`evaluate_clips`), and video accuracy with 1, 2, 4, 8 clips averaged
(:func:`video_accuracy`, the same as ``predict_video`` per video).

    coursekit train video_cnn3d              # -> runs/video_cnn3d/video_cnn3d.pt
    coursekit install-checkpoint runs/video_cnn3d
    model, checkpoint = load_video_model("video_cnn3d")

Tested in tests/video/test_train.py.
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from coursekit.checkpoints import load_pretrained
from coursekit.data.video import MOTION_ACTIONS, MOTION_PAIRS, NUM_ACTIONS, render_videos
from coursekit.train import fit, run_dir_for, save_run
from coursekit.validators import count_parameters, describe, positive_int
from coursekit.video.build import build_video_classifier
from coursekit.video.i3d import TinyInception, build_i3d
from coursekit.video.tensors import clip_starts, sample_clips

__all__ = [
    "HELD_OUT", "MODELS", "PARTNER", "RECIPE", "accuracies", "build_model", "evaluate_clips",
    "load_video_model", "predict_clips", "render_clip_bank", "reverse_clips", "train_video",
    "video_accuracy", "video_probs",
]

HELD_OUT = 5_000_000  # held-out video seeds start here (training seeds are below)
RECIPE: dict[str, Any] = {
    "size": 32, "num_frames": 48, "clip_len": 8, "stride": 3, "train_videos": 2048,
    "batch_size": 32, "steps": 400, "lr": 3e-3, "weight_decay": 1e-4, "warmup": 20,
    "probe_every": 25, "probe_videos": 110, "eval_videos": 330, "video_eval_videos": 110,
    "num_clips": (1, 2, 4, 8),
}  # fmt: skip
# name -> (kind for build_video_classifier, width, recipe changes)
MODELS: dict[str, tuple[str, int, dict[str, Any]]] = {
    "video_single_frame": ("single_frame", 16, {}),
    "video_late_fusion": ("late_fusion", 16, {}),
    "video_early_fusion": ("early_fusion", 16, {}),
    "video_cnn3d": ("cnn3d", 16, {"steps": 600}),
    "video_i3d": ("i3d", 16, {"steps": 200, "pretrain_steps": 150, "pretrain_batch": 128}),
    "video_i3d_scratch": ("i3d", 16, {"steps": 200}),
}
PARTNER = torch.arange(NUM_ACTIONS)  # the class a reversed clip belongs to
for _a, _b in MOTION_PAIRS:
    PARTNER[_a], PARTNER[_b] = _b, _a


def build_model(name: str) -> nn.Module:
    """The untrained network of ``MODELS[name]`` (11 classes, 8 frames)."""
    if name not in MODELS:
        raise ValueError(f"name must be one of {sorted(MODELS)}, got {name!r}")
    kind, width, _ = MODELS[name]
    return build_video_classifier(kind, num_classes=NUM_ACTIONS, num_frames=RECIPE["clip_len"],
                                  width=width)


def reverse_clips(clips: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
    """Clips played backwards and their labels: ``(clips.flip(1), PARTNER[labels])``.

    clips: Tensor[N, T, C, H, W]; labels: int64 Tensor[N] (action ids).
    """
    if not isinstance(clips, Tensor) or clips.dim() != 5:
        raise ValueError(f"clips must be Tensor[N, T, C, H, W], got {describe(clips)}")
    if not isinstance(labels, Tensor) or labels.shape != clips.shape[:1] \
            or labels.is_floating_point():
        raise ValueError(f"labels must be an int64 Tensor[N = {clips.shape[0]}], "
                         f"got {describe(labels)}")
    return clips.flip(1), PARTNER.to(labels.device)[labels]


def render_clip_bank(seeds, *, size: int, num_frames: int, clip_len: int, stride: int,
                     seed: int = 0, chunk: int = 256) -> tuple[Tensor, Tensor]:
    """One clip per video, from a random start: (clips uint8 [N, T, 3, H, W], labels [N]).

    The starts come from ``clip_starts(..., mode="random")`` with a generator seeded by
    ``seed``; only the clip's frames are rendered. Stored as bytes (``round(255 x)``) to
    keep the bank small; :func:`to_float` gives the float clips back.
    """
    seeds = list(seeds)
    g = torch.Generator().manual_seed(seed)
    starts = clip_starts(num_frames, clip_len, len(seeds), stride, mode="random", generator=g)
    frames = starts[:, None] + torch.arange(clip_len) * stride  # (N, T)
    clips, labels = [], []
    for i in range(0, len(seeds), chunk):
        batch = render_videos(seeds[i:i + chunk], size, num_frames, frames=frames[i:i + chunk])
        clips.append((batch.video * 255).round().to(torch.uint8))
        labels.append(batch.label)
    return torch.cat(clips), torch.cat(labels)


def to_float(clips: Tensor) -> Tensor:
    """uint8 clips of a bank -> float32 in [0, 1]."""
    return clips.float() / 255


def _centre_clips(seeds, recipe: dict[str, Any]) -> tuple[Tensor, Tensor]:
    """The centred clip (``mode="uniform"``, one clip) of each video: (float clips, labels)."""
    F_, T, s = recipe["num_frames"], recipe["clip_len"], recipe["stride"]
    start = clip_starts(F_, T, 1, s, mode="uniform")
    batch = render_videos(list(seeds), recipe["size"], F_, frames=start + torch.arange(T) * s)
    return batch.video, batch.label


def accuracies(pred: Tensor, labels: Tensor) -> dict[str, float]:
    """``{"acc", "acc_appearance", "acc_motion"}``: the fraction of ``pred == labels`` over all
    items, the appearance classes and the motion-only classes (int Tensor[N] each)."""
    motion = labels >= MOTION_ACTIONS[0]
    right = (pred == labels).double()
    return {"acc": right.mean().item(), "acc_appearance": right[~motion].mean().item(),
            "acc_motion": right[motion].mean().item()}


@torch.no_grad()
def predict_clips(model: nn.Module, clips: Tensor, batch_size: int = 128) -> Tensor:
    """Predicted class of each clip ``Tensor[N, T, C, H, W] -> int64 Tensor[N]`` (eval mode)."""
    model.eval()
    return torch.cat([model(clips[i:i + batch_size]).argmax(1)
                      for i in range(0, len(clips), batch_size)])


def evaluate_clips(model: nn.Module, clips: Tensor, labels: Tensor,
                   batch_size: int = 128) -> dict[str, float]:
    """Clip accuracy: all classes, appearance classes, motion-only classes (model in eval)."""
    return accuracies(predict_clips(model, clips, batch_size), labels)


@torch.no_grad()
def video_probs(model: nn.Module, videos: Tensor, clip_len: int, num_clips: int,
                stride: int = 1) -> Tensor:
    """Test-time clip averaging for a batch of videos ``Tensor[V, F, C, H, W]`` -> ``[V, L]``.

    Each row is ``predict_video(model, videos[v], clip_len, num_clips, stride)``: the mean
    of the softmax over ``num_clips`` evenly spaced clips (all clips in one batch).
    """
    if not isinstance(videos, Tensor) or videos.dim() != 5:
        raise ValueError(f"videos must be Tensor[V, F, C, H, W], got {describe(videos)}")
    num_clips = positive_int(num_clips, "num_clips")
    clips = torch.cat([sample_clips(v, clip_len, num_clips, stride) for v in videos])
    scores = model(clips)  # (V * K, L)
    return scores.float().softmax(1).view(len(videos), num_clips, -1).mean(1)  # (V, L)


def video_accuracy(model: nn.Module, videos: Tensor, labels: Tensor, clip_len: int,
                   num_clips: int, stride: int = 1) -> dict[str, float]:
    """Video accuracy with ``num_clips`` clips averaged: all / appearance / motion-only."""
    model.eval()
    return accuracies(video_probs(model, videos, clip_len, num_clips, stride).argmax(1), labels)


def _evaluate(model: nn.Module, recipe: dict[str, Any], quick: bool) -> dict[str, float]:
    n = 22 if quick else recipe["eval_videos"]
    clips, labels = _centre_clips(range(HELD_OUT, HELD_OUT + n), recipe)
    metrics = evaluate_clips(model, clips, labels)
    nv = 11 if quick else recipe["video_eval_videos"]
    batch = render_videos(range(HELD_OUT, HELD_OUT + nv), recipe["size"], recipe["num_frames"])
    for k in recipe["num_clips"]:
        acc = video_accuracy(model, batch.video, batch.label, recipe["clip_len"], k,
                             recipe["stride"])
        metrics.update({f"video{k}_{key}": v for key, v in acc.items()})
    return metrics


def _pretrain_2d(net2d: nn.Module, bank: tuple[Tensor, Tensor], recipe: dict[str, Any],
                 steps: int, seed: int) -> dict[str, list[float]]:
    """Train the image network on single frames of the bank's clips (label = the video's)."""
    clips, labels = bank
    frames = clips.flatten(0, 1)  # (N * T, 3, H, W) uint8
    frame_labels = labels.repeat_interleave(clips.shape[1])
    g = torch.Generator().manual_seed(seed + 1)

    def batch_fn(step: int) -> tuple[Tensor, Tensor]:
        idx = torch.randint(0, len(frames), (recipe["pretrain_batch"],), generator=g)
        return to_float(frames[idx]), frame_labels[idx]

    return fit(net2d, batch_fn, lambda m, b: F.cross_entropy(m(b[0]), b[1]), steps=steps,
               lr=recipe["lr"], weight_decay=recipe["weight_decay"], warmup=recipe["warmup"],
               log_every=max(1, steps // 20), desc="pretrain 2D on frames")


def train_video(name: str, out_dir: str | os.PathLike | None, seed: int,
                quick: bool) -> dict[str, float]:
    """Train ``MODELS[name]`` into a run folder; return its held-out metrics.

    Writes ``<run>/<name>.pt`` (``model`` state, ``config``, ``history``, ``curve``,
    ``metrics``, and for ``video_i3d`` the 2D network it was inflated from, ``model2d``)
    and its manifest entry. ``quick=True``: a smoke test (a few steps, a tiny bank).
    """
    if name not in MODELS:
        raise ValueError(f"name must be one of {sorted(MODELS)}, got {name!r}")
    run_dir = run_dir_for(name, out_dir, quick)
    kind, width, changes = MODELS[name]
    recipe = {**RECIPE, **changes}
    if quick:
        recipe.update(train_videos=44, steps=4, probe_every=2, probe_videos=11)
        if "pretrain_steps" in recipe:
            recipe["pretrain_steps"] = 2
    torch.manual_seed(seed)
    start = time.perf_counter()
    bank = render_clip_bank(range(seed * 1_000_000, seed * 1_000_000 + recipe["train_videos"]),
                            size=recipe["size"], num_frames=recipe["num_frames"],
                            clip_len=recipe["clip_len"], stride=recipe["stride"], seed=seed)
    render_seconds = time.perf_counter() - start
    extra: dict[str, Any] = {}
    if "pretrain_steps" in recipe:
        net2d = TinyInception(num_classes=NUM_ACTIONS, width=width)
        extra["history2d"] = _pretrain_2d(net2d, bank, recipe, recipe["pretrain_steps"], seed)
        extra["model2d"] = copy.deepcopy(net2d.state_dict())
        model = build_i3d(num_classes=NUM_ACTIONS, width=width, net2d=net2d)
    else:
        model = build_model(name)
    probe = _centre_clips(range(HELD_OUT, HELD_OUT + recipe["probe_videos"]), recipe)
    curve: dict[str, list[float]] = {"step": [], "acc": [], "acc_motion": [],
                                     "acc_appearance": []}

    def record(step: int) -> None:
        m = evaluate_clips(model, *probe)
        model.train()
        curve["step"].append(step)
        for key in ("acc", "acc_motion", "acc_appearance"):
            curve[key].append(m[key])

    g = torch.Generator().manual_seed(seed + 2)
    clips_u8, labels = bank

    def batch_fn(step: int) -> tuple[Tensor, Tensor]:
        if step % recipe["probe_every"] == 0:
            record(step)  # held-out accuracy before this step (the curve of the lesson)
        idx = torch.randint(0, len(labels), (recipe["batch_size"],), generator=g)
        clips, y = to_float(clips_u8[idx]), labels[idx]
        back = torch.rand(len(idx), generator=g) < 0.5
        rev, rev_y = reverse_clips(clips[back], y[back])
        clips[back], y[back] = rev, rev_y
        return clips, y

    history = fit(model, batch_fn, lambda m, b: F.cross_entropy(m(b[0]), b[1]),
                  steps=recipe["steps"], lr=recipe["lr"], weight_decay=recipe["weight_decay"],
                  warmup=recipe["warmup"], log_every=max(1, recipe["steps"] // 50),
                  desc=f"train {name}")
    record(recipe["steps"])
    minutes = (time.perf_counter() - start) / 60
    metrics = _evaluate(model, recipe, quick)
    metrics.update(train_minutes=minutes, render_seconds=render_seconds,
                   parameters=float(count_parameters(model)))
    config = {"kind": kind, "width": width, "num_classes": NUM_ACTIONS,
              "num_frames": recipe["clip_len"]}
    checkpoint = {"model": model.state_dict(), "config": config, "recipe": recipe,
                  "history": history, "curve": curve, "metrics": metrics, **extra}
    save_run(name, checkpoint, out_dir=run_dir, seed=seed, quick=quick, metrics=metrics)
    return metrics


def load_video_model(name: str, directory: Path | None = None) -> tuple[nn.Module, dict]:
    """The shipped model ``name`` (eval mode) and its checkpoint (curve, metrics, recipe).

    ``directory`` loads a training run instead (``runs/video_cnn3d``), sha256-checked too.
    """
    if name not in MODELS:
        raise ValueError(f"name must be one of {sorted(MODELS)}, got {name!r}")
    checkpoint = load_pretrained(name, directory=directory)
    c = checkpoint["config"]
    model = build_video_classifier(c["kind"], num_classes=c["num_classes"],
                                   num_frames=c["num_frames"], width=c["width"])
    model.load_state_dict(checkpoint["model"])
    return model.eval(), checkpoint


def _trainer(name: str):
    def train(out_dir: str | os.PathLike | None, seed: int, quick: bool) -> dict[str, float]:
        return train_video(name, out_dir, seed, quick)
    train.__name__ = f"train_{name}"
    train.__doc__ = f"Train ``{name}``; see ``train_video``."
    return train


train_video_single_frame = _trainer("video_single_frame")
train_video_late_fusion = _trainer("video_late_fusion")
train_video_early_fusion = _trainer("video_early_fusion")
train_video_cnn3d = _trainer("video_cnn3d")
train_video_i3d = _trainer("video_i3d")
train_video_i3d_scratch = _trainer("video_i3d_scratch")
