"""``coursekit bench video``: ShapesWorld clips per second, and time per clip of each family.

Rows: ``render_videos`` making 8-frame 32 x 32 training clips (every other frame of
48-frame videos, batches of 256, new seeds each repeat), and for each video model of
lesson 11 (``coursekit.video.train.MODELS``, untrained weights: the time does not depend on
them) the inference time per clip on batches of 64 clips, and the training time per clip
(forward, backward, AdamW step) on batches of 32. CPU, 2 threads, medians. There is no
reference implementation to compare with (``reference`` is "-").
"""

from __future__ import annotations

import os
import statistics
import time

import torch
import torch.nn.functional as F

from coursekit.data.video import render_videos
from coursekit.validators import count_parameters
from coursekit.video.train import MODELS, RECIPE, build_model

CLIP = (RECIPE["clip_len"], 3, RECIPE["size"], RECIPE["size"])


def clips_per_second(batch: int = 256, repeat: int = 3) -> float:
    """Median clips per second of ``render_videos`` for training clips (after a warm-up)."""
    frames = torch.arange(RECIPE["clip_len"]) * RECIPE["stride"]
    render_videos(range(batch), RECIPE["size"], RECIPE["num_frames"], frames=frames)
    rates = []
    for r in range(repeat):
        seeds = range((r + 1) * batch, (r + 2) * batch)
        start = time.perf_counter()
        render_videos(seeds, RECIPE["size"], RECIPE["num_frames"], frames=frames)
        rates.append(batch / (time.perf_counter() - start))
    return statistics.median(rates)


def time_per_clip(name: str, train: bool, batch: int, repeat: int = 3) -> float:
    """Median seconds per clip of ``MODELS[name]``: inference (eval, no grad) or a training step."""
    torch.manual_seed(0)
    model = build_model(name)
    clips = torch.rand(batch, *CLIP)
    labels = torch.arange(batch) % model_classes(model)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    model.train(train)
    times = []
    for r in range(repeat + 1):
        start = time.perf_counter()
        if train:
            loss = F.cross_entropy(model(clips), labels)
            opt.zero_grad()
            loss.backward()
            opt.step()
        else:
            with torch.no_grad():
                model(clips)
        if r:  # the first run is a warm-up
            times.append((time.perf_counter() - start) / batch)
    return statistics.median(times)


def model_classes(model: torch.nn.Module) -> int:
    """Number of classes of a lesson-11 model (its last layer's outputs)."""
    last = [m for m in model.modules() if isinstance(m, torch.nn.Linear)][-1]
    return last.out_features


def bench(quick: bool) -> list[dict]:
    """Rows ``{"benchmark", "ours", "reference", "ratio", "note"}``."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    repeat = 1 if quick else 5
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    try:
        rate = clips_per_second(32 if quick else 256, repeat)
        shape = "x".join(str(s) for s in CLIP)
        rows = [{"benchmark": f"ShapesWorld render_videos {shape} clips", "reference": "-",
                 "ours": f"{rate:.0f} clips/s", "ratio": None,
                 "note": f"T x 3 x H x W; CPU, 2 threads; load avg {load:.1f}"}]
        names = list(MODELS)[:2] if quick else [n for n in MODELS if n != "video_i3d_scratch"]
        for name in names:
            infer = time_per_clip(name, False, 4 if quick else 64, repeat)
            step = time_per_clip(name, True, 2 if quick else 32, repeat)
            params = count_parameters(build_model(name))
            rows.append({"benchmark": f"{name} time per clip", "reference": "-", "ratio": None,
                         "ours": f"{infer * 1e3:.2f} ms (train step {step * 1e3:.1f} ms)",
                         "note": f"{params} parameters; {shape} clips; CPU, 2 threads"})
        return rows
    finally:
        torch.set_num_threads(threads)
