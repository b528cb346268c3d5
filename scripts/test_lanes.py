"""Run the suite as two pytest processes side by side, one per core: scripts/test calls it.

    python scripts/test_lanes.py [PYTEST OPTION ...]

* lane ``kernels``: everything that starts another Python, one at a time: the lessons under
  nbval (a kernel each), the student versions, JupyterLab in Chromium, the DDP ranks, the
  CLI and packaging tests. Its own process collects only these files, so it stays small.
* lane ``unit``: every other test file, in this process's child, in collection order.

Why not xdist: each xdist worker collects (imports) the whole suite, about 1.2 GB RSS
before its first test, and both sat beside the lesson kernels; two lanes that each collect
only their own files keep the suite under its memory budget (README, "The test suite").

Both lanes stream to this terminal, each line prefixed with its lane; the last line adds
them up as ``tests: N passed, N failed, N skipped`` (errors count as failed). Exit status: 0
when both lanes pass, else the first non-zero status. Options (``-x``, ``-k EXPR``,
``--durations=N``) go to both lanes. ``COURSEKIT_TEST_LANES=1`` runs the two lanes one
after the other instead.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# the lane that starts kernels, browsers and other Pythons (paths relative to the root)
KERNEL_LANE = (
    "lessons",
    "tests/browser",
    "tests/lessons",
    "tests/core/test_lab_script.py",
    "tests/core/test_ddp.py",
    "tests/core/test_nbgrader.py",
    "tests/core/test_grade.py",
    "tests/core/test_no_network.py",
    "tests/core/test_train_runs.py",
    "tests/core/test_wheel.py",
    "tests/core/test_cli.py",
)
NBVAL = ["--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", "tests/lessons/sanitize.cfg", "--ignore=lessons/student"]
COUNTS = ("passed", "failed", "skipped", "errors", "error", "xfailed", "xpassed")


def lane_commands(extra: list[str]) -> dict[str, list[str]]:
    """``{lane: argv}``: the two pytest command lines."""
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist"]
    ignores = [f"--ignore={p}" for p in KERNEL_LANE if p.startswith("tests/")]
    return {
        "kernels": [*pytest, *KERNEL_LANE, *NBVAL, *extra],
        "unit": [*pytest, "tests", *ignores, *extra],
    }


def summary_counts(line: str) -> dict[str, int]:
    """``{"passed": 3, "failed": 1, ...}`` from pytest's closing line."""
    found = {}
    for n, word in re.findall(r"(\d+) (\w+)", line):
        if word in COUNTS:
            word = "errors" if word == "error" else word
            found[word] = found.get(word, 0) + int(n)
    return found


def _pump(name: str, proc: subprocess.Popen, last: dict[str, str], lock: threading.Lock):
    width = len("kernels")
    assert proc.stdout is not None
    for line in proc.stdout:
        if re.search(r"\d+ (passed|failed|error|skipped|deselected)", line) and " in " in line:
            last[name] = line
        with lock:
            sys.stdout.write(f"[{name:>{width}}] {line}")
            sys.stdout.flush()


def run(extra: list[str], *, parallel: bool = True) -> int:
    os.chdir(ROOT)
    commands = lane_commands(extra)
    last: dict[str, str] = {}
    lock = threading.Lock()
    statuses: dict[str, int] = {}
    start = time.perf_counter()
    order = list(commands)
    running: list[tuple[str, subprocess.Popen, threading.Thread]] = []
    for name in order:
        print(f"==> lane {name}: {shlex.join(commands[name][1:])}", flush=True)
        proc = subprocess.Popen(commands[name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1, env={**os.environ, "COURSEKIT_LANE": name})
        pump = threading.Thread(target=_pump, args=(name, proc, last, lock), daemon=True)
        pump.start()
        running.append((name, proc, pump))
        if not parallel:
            statuses[name] = proc.wait()
            pump.join()
    for name, proc, pump in running:
        statuses[name] = proc.wait()
        pump.join()
        print(f"==> lane {name} ended with status {statuses[name]} "
              f"after {time.perf_counter() - start:.0f} s", flush=True)
    total = {k: 0 for k in ("passed", "failed", "skipped", "errors")}
    for name in order:
        for k, v in summary_counts(last.get(name, "")).items():
            total[k] = total.get(k, 0) + v
    for name in order:
        print(f"==> lane {name}: {last.get(name, '(no summary line)').strip()}")
    minutes, seconds = divmod(int(time.perf_counter() - start), 60)
    print(f"==> both lanes: {minutes}:{seconds:02d} wall")
    # the plain closing line CI reads: errors (a fixture or collection failed) count as failed
    print(f"tests: {total['passed']} passed, {total['failed'] + total['errors']} failed, "
          f"{total['skipped']} skipped")
    # 5: a lane whose tests were all deselected (-k) is not a failure while the other ran some
    ran = [s for s in statuses.values() if s != 5]
    if not ran:
        return 5
    bad = [s for s in ran if s != 0]
    return bad[0] if bad else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], parallel=os.environ.get("COURSEKIT_TEST_LANES", "2") != "1"))
