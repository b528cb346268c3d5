"""Run a command and report the peak memory of its whole process tree.

    .venv/bin/python scripts/peak_memory.py [--every 1.0] -- scripts/test

Samples every ``--every`` seconds the command and all its descendants (pytest, its notebook
kernels, JupyterLab, Chromium's processes) and prints, when the command ends:

* peak PSS: the sum of each process's proportional set size, i.e. its private memory plus
  its share of the pages it shares with the others. This is the tree's real footprint (what
  it costs the machine), and the figure the README's memory budget is judged on;
* peak RSS sum: the sum of resident set sizes. It counts every shared page (the torch
  library in each kernel, Chromium's shared memory) once per process, so it overstates;
* which processes made up the PSS peak. Under ``scripts/test`` each is labelled with its
  lane (``pytest@unit``, ``kernel@browser``, ``python@unit`` for a test's subprocess).

Exit status: the command's. Reading PSS needs /proc/PID/smaps_rollup (Linux); elsewhere the
PSS columns show the RSS.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

import psutil


def _label(p: psutil.Process) -> str:
    try:
        cmd = p.cmdline()
        name = p.name()
    except psutil.Error:  # it ended between two reads
        return "?"
    text = " ".join(cmd)
    label = (cmd[0].rsplit("/", 1)[-1] if cmd else name)[:20]
    # "-m pytest", not "pytest": a test's subprocess often has /tmp/pytest-of-... in its argv
    for key, kind in (("ipykernel", "kernel"), ("chromium", "chromium"),
                      ("jupyter-lab", "jupyterlab"), ("jupyter lab", "jupyterlab"),
                      ("-m pytest", "pytest"), ("torchrun", "torchrun")):
        if key in text:
            label = kind
            break
    # scripts/test_lanes.py gives each lane's pytest COURSEKIT_LANE; its children inherit it
    try:
        lane = p.environ().get("COURSEKIT_LANE")
    except (psutil.Error, AttributeError):  # ended, not ours to read, or a stand-in
        lane = None
    return f"{label}@{lane}" if lane else label


def sample(root: psutil.Process) -> tuple[int, int, dict[str, int]]:
    """(PSS sum, RSS sum, PSS by kind of process) of ``root`` and its descendants, in bytes."""
    try:
        procs = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0, {}
    pss = rss = 0
    kinds: dict[str, int] = {}
    for p in procs:
        try:
            info = p.memory_full_info()
            p_pss = getattr(info, "pss", info.rss)
            rss += info.rss
        except psutil.Error:
            continue
        pss += p_pss
        kind = _label(p)
        kinds[kind] = kinds.get(kind, 0) + p_pss
    return pss, rss, kinds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--every", type=float, default=1.0, help="seconds between samples")
    parser.add_argument("--log", help="also write one line per sample to this file: seconds, "
                        "PSS MB in all, then MB by kind of process")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    start = time.time()
    proc = subprocess.Popen(command)
    root = psutil.Process(proc.pid)
    peak_pss = peak_rss = 0
    at_peak: dict[str, int] = {}
    when = 0.0
    log = open(args.log, "w") if args.log else None  # noqa: SIM115 (closed below)
    while proc.poll() is None:
        pss, rss, kinds = sample(root)
        if log:
            parts = " ".join(f"{k}={v / 2**20:.0f}" for k, v in sorted(kinds.items()))
            log.write(f"{time.time() - start:.0f} {pss / 2**20:.0f} {parts}\n")
            log.flush()
        if pss > peak_pss:
            peak_pss, at_peak, when = pss, kinds, time.time() - start
        peak_rss = max(peak_rss, rss)
        time.sleep(args.every)
    if log:
        log.close()
    mb = 2**20
    biggest = sorted(at_peak.items(), key=lambda kv: -kv[1])
    parts = ", ".join(f"{k} {v / mb:.0f}" for k, v in biggest)
    print(f"==> {time.time() - start:.0f} s; peak PSS {peak_pss / mb:.0f} MB at {when:.0f} s "
          f"({parts}); peak RSS sum {peak_rss / mb:.0f} MB", file=sys.stderr)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
