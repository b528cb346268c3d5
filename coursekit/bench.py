"""``coursekit bench``: ours vs the reference, side by side in one process.

Every topic registers a ``bench(quick) -> list[row]`` in ``coursekit.registry.BENCHES``;
a row is ``{"benchmark", "ours", "reference", "ratio", "note"}``. ``--lessons``
also executes every lesson from a fresh kernel (as nbval does) and reports its
wall time, and the table ends with this process's peak memory.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from pathlib import Path

import torch

from coursekit.registry import BENCHES
from coursekit.validators import positive_int

Row = dict


def time_call(fn, *, repeat: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds (after ``warmup`` calls)."""
    if not callable(fn):
        raise TypeError(f"fn must be a function to time, got {type(fn).__name__}")
    repeat = positive_int(repeat, "repeat")
    warmup = positive_int(warmup, "warmup", minimum=0)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    times.sort()
    return times[len(times) // 2]


def peak_rss_mb() -> float:
    """Peak resident memory of this process and its finished children, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024 / 1024
    return max(own, children) * scale


def time_lessons(lessons: Path, timeout: int = 600) -> list[Row]:
    """Run each lesson from a fresh kernel with 2 threads; one row per lesson."""
    import nbformat

    from coursekit.exercises.kernel import notebook_client

    rows = []
    total = 0.0
    for path in sorted(lessons.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        client = notebook_client(nb, timeout=timeout, path=str(lessons))
        start = time.perf_counter()
        client.execute()
        seconds = time.perf_counter() - start
        total += seconds
        rows.append({"benchmark": f"lesson {path.stem}", "ours": f"{seconds:.1f} s",
                     "reference": "≤ 90 s", "ratio": None,
                     "note": "fresh kernel, CPU" if seconds <= 90 else "OVER BUDGET"})
    rows.append({"benchmark": "all lessons", "ours": f"{total:.1f} s", "reference": "≤ 720 s",
                 "ratio": None, "note": f"{len(rows)} notebooks"})
    return rows


def format_table(rows: list[Row], markdown: bool) -> str:
    header = ["benchmark", "ours", "reference", "ours/ref", "note"]
    body = [[r["benchmark"], str(r["ours"]), str(r["reference"]),
             "" if r.get("ratio") is None else f"{r['ratio']:.2f}×", r.get("note", "")]
            for r in rows]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cells) + " |" for cells in body]
        return "\n".join(lines)
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h)
              for i, h in enumerate(header)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), fmt.format(*("-" * w for w in widths))]
    return "\n".join(lines + [fmt.format(*b) for b in body])


def run_benchmarks(
    names: list[str] | None = None,
    quick: bool = False,
    markdown: bool = False,
    lessons: bool = False,
) -> int:
    from coursekit.cli import _resolve, lessons_dir
    from coursekit.device import describe_device

    os.environ.setdefault("OMP_NUM_THREADS", "2")
    torch.set_num_threads(min(2, os.cpu_count() or 1))
    unknown = sorted(set(names or []) - set(BENCHES))
    if unknown:
        print(f"error: unknown benchmark(s) {unknown}; known: {sorted(BENCHES)}", file=sys.stderr)
        return 2
    rows: list[Row] = []
    for name in names or list(BENCHES):
        rows.extend(_resolve(BENCHES[name])(quick))
    if lessons:
        rows.extend(time_lessons(lessons_dir()))
    rows.append({"benchmark": "peak memory (RSS)", "ours": f"{peak_rss_mb():.0f} MB",
                 "reference": "≤ 3000 MB", "ratio": None, "note": "this process and its kernels"})
    print(f"device: {describe_device(torch.device('cpu'))}; torch {torch.__version__}")
    print(format_table(rows, markdown))
    return 0
