"""Test-wide settings: seeded, single-threaded, float64 references.

torch is imported by the fixtures, not here: under xdist the controller process loads this
file too, only to schedule, and need not hold torch's ~0.3 GB."""

import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
# reference helpers shared by tests in several folders (pytest runs with --import-mode=importlib)
sys.path.insert(0, str(Path(__file__).parent / "references"))


@pytest.fixture(autouse=True)
def _seed():
    import torch

    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield


def _devices() -> list[str]:
    import torch

    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def pytest_generate_tests(metafunc):
    """``device``: every device this machine has, cpu always, cuda when present."""
    own = any(m.args and "device" in m.args[0]  # the test parametrises device itself
              for m in metafunc.definition.iter_markers("parametrize"))
    if "device" in metafunc.fixturenames and not own:
        metafunc.parametrize("device", _devices(), indirect=True)


@pytest.fixture
def device(request):
    """A ``torch.device`` (parametrised by ``pytest_generate_tests``)."""
    import torch

    return torch.device(request.param)


# tests that start JupyterLab (and most of them Chromium), the two-rank DDP run (two more torch
# processes) and the student versions of the lessons: one worker runs them all, in turn, so
# that no two of them overlap. (Lesson 07's student version run beside lesson 07's browser
# test stalled for ~300 s, its kernel's threads all waiting for the GIL behind a zmq receive.)
BROWSER_GROUP = ("tests/browser/", "tests/core/test_lab_script.py", "tests/core/test_ddp.py",
                 "tests/lessons/test_student_notebooks.py")


def pytest_xdist_make_scheduler(config, log):
    """How scripts/test's two workers (``-n 2 --dist loadscope``) share the suite.

    Each file is one unit of work: a lesson's cells share one kernel under nbval, and a
    module's fixtures are built once. Every test that opens JupyterLab goes to the same
    worker, with the DDP test, so at most one of them runs at a time (the suite's memory
    budget: a browser with its server and kernel is about 1.3 GB PSS, the two DDP ranks
    1.4 GB; they overlapped in a measured run). (xdist's own ``--dist loadgroup`` would say
    this with markers, but xdist 3.8 under this pytest does not keep a group together.)
    """
    if config.getvalue("dist") != "loadscope":
        return None
    # xdist would start the files with the most tests first, leaving the browser group (few
    # tests, minutes each) for last, on one worker, while the other idles: keep the collection
    # order instead, which starts with tests/browser
    config.option.loadscopereorder = False
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "browser" if path.startswith(BROWSER_GROUP) else path

    return FileScheduling(config, log)


# ------------------------------------------------------------------ memory, file by file
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """``COURSEKIT_MEMLOG=DIR``: one line per test file per worker in DIR/<worker>.tsv: the
    file, this process's peak RSS while it ran and its RSS after (MB). Linux only."""
    log_dir = os.environ.get("COURSEKIT_MEMLOG")
    path = str(item.path)
    first = getattr(pytest_runtest_protocol, "_file", None) != path
    if log_dir and first:
        pytest_runtest_protocol._file = path
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM, the peak RSS
        except OSError:
            pass
    yield
    if log_dir and (nextitem is None or str(nextitem.path) != path):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        rel = os.path.relpath(path)
        with open(Path(log_dir) / f"{worker}.tsv", "a") as f:
            f.write(f"{rel}\t{_status_kb('VmHWM') // 1024}\t{_status_kb('VmRSS') // 1024}\n")
