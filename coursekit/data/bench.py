"""``coursekit bench shapesworld``: how many ShapesWorld scenes per second ``render_batch`` makes.

One row per image size (64 and 128), batches of 256 and 64 scenes, on the CPU with
2 threads (the course's laptop), and one for the hard setting at 64 x 64
(``difficulty="hard"``: 6-12 textured things, lighting and noise). The requirement is
>= 1000 scenes/s at 64 x 64 (easy). Each repeat renders new seeds, so nothing is cached;
the row reports the median.
There is no reference implementation to compare with (``reference`` is "-").

On a machine whose cores are busy with other work, OpenMP's default busy-waiting makes any
2-thread torch code many times slower; ``OMP_WAIT_POLICY=PASSIVE`` (set before Python starts)
avoids that. The note reports the load average so such runs can be recognised.
"""

from __future__ import annotations

import os
import statistics
import time

import torch

from coursekit.data.shapesworld import render_batch


def _throughput(size: int, batch: int, repeat: int, difficulty: str = "easy") -> float:
    """Median scenes per second of ``render_batch`` over ``repeat`` fresh batches (after warmup)."""
    render_batch(range(batch), size, difficulty=difficulty)
    rates = []
    for r in range(repeat):
        seeds = range((r + 1) * batch, (r + 2) * batch)
        start = time.perf_counter()
        render_batch(seeds, size, difficulty=difficulty)
        rates.append(batch / (time.perf_counter() - start))
    return statistics.median(rates)


def bench(quick: bool) -> list[dict]:
    """Rows ``{"benchmark", "ours", "reference", "ratio", "note"}``: 64x64 and 128x128 scenes,
    and hard 64x64 scenes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rows = []
        for size, batch, difficulty in ((64, 256, "easy"), (128, 64, "easy"), (64, 256, "hard")):
            rate = _throughput(size, batch, 3 if quick else 9, difficulty)
            slow = size == 64 and difficulty == "easy" and rate < 1000
            flag = " — BELOW 1000 scenes/s" if slow else ""
            load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
            name = f"ShapesWorld render_batch {size}x{size}"
            rows.append({"benchmark": name + (" hard" if difficulty == "hard" else ""),
                         "ours": f"{rate:.0f} scenes/s", "reference": "-", "ratio": None,
                         "note": f"batch {batch}, CPU, 2 threads, all annotations and frame 2; "
                                 f"load avg {load:.1f}{flag}"})
        return rows
    finally:
        torch.set_num_threads(threads)
