"""Run the suite as five pytest lanes in two phases, one slot per core: scripts/test calls it.

    python scripts/test_lanes.py [PYTEST OPTION ...]

* phase 1, two slots side by side:
  * slot 1: lane ``unit`` (every in-process test file), then lane ``cli`` (the files that
    start a fresh Python with torch: the CLI, the wheel, these lanes, nbgrader, and
    ``scripts/lab``'s JupyterLab);
  * slot 2: lane ``lessons`` (the 13 lessons under nbval, the notebook hygiene), then lane
    ``students`` (the student versions, ``coursekit grade``);
* phase 2, one slot, nothing beside it: lane ``ranks`` (the tests that start two torchrun
  ranks: DDP's equal weights, and training runs under torchrun), then lane ``browser``
  (JupyterLab in Chromium; its kernels get 2 threads).

Why phases: the memory budget (3 GB PSS for the whole tree). JupyterLab, Chromium and a
lesson's kernel take 1.5-2.3 GB together; beside the unit lane's pytest (up to 1.2 GB PSS)
and one of its subprocesses (a fresh Python with torch, 0.4-1.0 GB) the last run peaked at
3.8 GB. So nothing runs beside the browser, and the subprocess tests run beside one kernel,
not beside the unit lane's pytest. Two torchrun ranks and their launcher take 1.2-1.4 GB;
beside the cli lane's pytest and a student kernel they peaked at 3.06 GB, so they run alone
too. The phases also keep a kernel of the students lane away from the browser's kernels:
twice a notebook there stalled ~300 s while a browser test ran.

Why not xdist: each xdist worker collects (imports) the whole suite, about 1.2 GB RSS
before its first test. A lane collects only its own files, and the kernel lanes never import
torch while they collect (``coursekit`` loads it with the first topic), so their drivers
stay ~0.1 GB.

Every lane streams to this terminal, each line prefixed with its lane; the last line adds
them up as ``tests: N passed, N failed, N skipped`` (errors count as failed). Exit status: 0
when every lane passes, else the first non-zero status. Options (``-x``, ``-k EXPR``,
``--durations=N``) go to every lane; arguments that name tests (``tests/dense``,
``lessons/03_fcn_unet.ipynb``) run just those, in one pytest process.
``COURSEKIT_TEST_LANES=1`` runs the lanes one after the other in one slot (slower, less
memory).
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

# the lanes other than ``unit`` (paths from the root); the unit lane is every other test file
LANES = {
    "cli": (  # a fresh Python with torch per test: beside one kernel, never beside the unit lane
        "tests/core/test_cli.py",
        "tests/core/test_wheel.py",
        "tests/core/test_test_lanes.py",
        "tests/core/test_nbgrader.py",
        "tests/core/test_lab_script.py",  # scripts/lab's JupyterLab, without a browser
    ),
    "lessons": (  # a kernel at a time: the lessons under nbval
        "lessons",
        "tests/lessons/test_notebook_hygiene.py",
    ),
    "ranks": (  # two torchrun ranks and their launcher (1.2-1.4 GB): nothing beside them
        "tests/core/test_ddp.py",
        "tests/core/test_train_runs.py",
    ),
    "students": (  # a kernel at a time: the student versions, coursekit grade
        "tests/lessons/test_student_notebooks.py",
        "tests/core/test_grade.py",
    ),
    "browser": (  # JupyterLab (in Chromium): alone, in the second phase
        "tests/browser",
    ),
}
# what a lane's processes get on top of scripts/test's environment: the browser lane runs
# alone, so its notebook kernels may use both cores
LANE_ENV = {"browser": {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2"}}
# the lanes whose pytest only drives kernels, JupyterLab or Chromium: they collect without torch
KERNEL_LANES = ("lessons", "students", "browser")
# phases run one after the other; a phase's slots run side by side (one per core), each slot's
# lanes one after the other. The two slots of phase 1 take about as long as each other.
PHASES = (
    (("unit", "cli"), ("lessons", "students")),
    (("ranks", "browser"),),
)
NBVAL = ["--nbval", "--nbval-current-env",
         "--nbval-sanitize-with", "tests/lessons/sanitize.cfg", "--ignore=lessons/student"]
COUNTS = ("passed", "failed", "skipped", "errors", "error", "xfailed", "xpassed")


def lane_commands(extra: list[str]) -> dict[str, list[str]]:
    """``{lane: argv}``: one pytest command line per lane."""
    pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
    listed = [p for paths in LANES.values() for p in paths]
    ignores = [f"--ignore={p}" for p in listed if p.startswith("tests/")]
    commands = {"unit": [*pytest, "tests", *ignores, *extra]}
    for name, paths in LANES.items():
        nbval = NBVAL if "lessons" in paths else []
        commands[name] = [*pytest, *paths, *nbval, *extra]
    return commands


def summary_counts(line: str) -> dict[str, int]:
    """``{"passed": 3, "failed": 1, ...}`` from pytest's closing line."""
    found = {}
    for n, word in re.findall(r"(\d+) (\w+)", line):
        if word in COUNTS:
            word = "errors" if word == "error" else word
            found[word] = found.get(word, 0) + int(n)
    return found


def _pump(name: str, proc: subprocess.Popen, last: dict[str, str], lock: threading.Lock):
    width = max(map(len, ("unit", *LANES)))
    assert proc.stdout is not None
    for line in proc.stdout:
        if re.search(r"\d+ (passed|failed|error|skipped|deselected)", line) and " in " in line:
            last[name] = line
        with lock:
            sys.stdout.write(f"[{name:>{width}}] {line}")
            sys.stdout.flush()


def named_paths(extra: list[str]) -> list[str]:
    """The arguments that name a test file or folder (``tests/dense``, ``a.py::test_x``)."""
    return [a for a in extra if not a.startswith("-") and (ROOT / a.split("::")[0]).exists()]


def _run_slot(lanes: tuple[str, ...], commands: dict[str, list[str]], statuses: dict[str, int],
              last: dict[str, str], lock: threading.Lock, start: float) -> None:
    for name in lanes:
        with lock:
            print(f"==> lane {name}: {shlex.join(commands[name][1:])}", flush=True)
        proc = subprocess.Popen(commands[name], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True, bufsize=1, env={**os.environ, **LANE_ENV.get(name, {}),
                                     "COURSEKIT_LANE": name})
        _pump(name, proc, last, lock)
        statuses[name] = proc.wait()
        with lock:
            print(f"==> lane {name} ended with status {statuses[name]} after "
                  f"{time.perf_counter() - start:.0f} s", flush=True)


def stall_report(folder: str | None) -> list[str]:
    """Lines naming the kernels that ran past the stall watch (scripts/nonet/sitecustomize.py
    writes their stacks to ``folder``); the empty files of the others are removed."""
    if not folder or not Path(folder).is_dir():
        return []
    lines = []
    for f in sorted(Path(folder).glob("kernel-*.txt")):
        if f.stat().st_size == 0:
            f.unlink()
        else:
            lines.append(f"==> a notebook kernel ran past the stall watch; its stacks: {f}")
    return lines


def run(extra: list[str], *, parallel: bool = True) -> int:
    os.chdir(ROOT)
    if named_paths(extra):  # ``scripts/test tests/dense -x``: just those, in one process
        pytest = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]
        return subprocess.call([*pytest, *NBVAL, *extra])
    commands = lane_commands(extra)
    order = [lane for phase in PHASES for slot in phase for lane in slot]
    phases = PHASES if parallel else ((tuple(order),),)
    last: dict[str, str] = {}
    statuses: dict[str, int] = {}
    lock = threading.Lock()
    start = time.perf_counter()
    for phase in phases:
        threads = [threading.Thread(target=_run_slot, args=(slot, commands, statuses, last,
                                                             lock, start)) for slot in phase]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    total = {k: 0 for k in ("passed", "failed", "skipped", "errors")}
    for name in order:
        for k, v in summary_counts(last.get(name, "")).items():
            total[k] = total.get(k, 0) + v
        print(f"==> lane {name}: {last.get(name, '(no summary line)').strip()}")
    for line in stall_report(os.environ.get("COURSEKIT_STALL_DUMP")):
        print(line)
    minutes, seconds = divmod(int(time.perf_counter() - start), 60)
    print(f"==> all lanes: {minutes}:{seconds:02d} wall")
    # the plain closing line CI reads: errors (a fixture or collection failed) count as failed
    print(f"tests: {total['passed']} passed, {total['failed'] + total['errors']} failed, "
          f"{total['skipped']} skipped")
    # 5: a lane whose tests were all deselected (-k) is not a failure while another ran some
    ran = [statuses.get(lane, 1) for lane in order if statuses.get(lane, 1) != 5]
    if not ran:
        return 5
    bad = [s for s in ran if s != 0]
    return bad[0] if bad else 0


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:], parallel=os.environ.get("COURSEKIT_TEST_LANES", "2") != "1"))
