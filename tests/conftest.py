"""Test-wide settings: seeded, single-threaded, float64 references.

torch is imported by the fixtures, not here: a test file that never touches torch (the
browser tests) leaves its lane's process without torch's ~0.3 GB."""

import os
import sys
import time
from pathlib import Path

import pytest

os.environ.setdefault("OMP_NUM_THREADS", "1")
# reference helpers shared by tests in several folders (pytest runs with --import-mode=importlib)
sys.path.insert(0, str(Path(__file__).parent / "references"))


@pytest.fixture(autouse=True)
def _seed():
    """One thread, seed 0, for every test whose module uses torch (imported at its top, so
    loaded when the test runs); a test that never imports torch does not load it here."""
    torch = sys.modules.get("torch")
    if torch is not None:
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


# ------------------------------------------------------------------ memory, file by file
def _status_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field):
                return int(line.split()[1])
    return 0


def _trim() -> None:
    """Hand the memory that the last test file freed back to the system (glibc keeps it)."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    """After each test file (a lesson under nbval too): ``_trim``. ``COURSEKIT_MEMLOG=DIR``:
    one line per test file per lane in DIR/<lane>.tsv: the file, this process's peak RSS
    while it ran, its RSS after (MB) and the seconds it took. Linux only."""
    log_dir = os.environ.get("COURSEKIT_MEMLOG")
    path = str(item.path)
    first = getattr(pytest_runtest_protocol, "_file", None) != path
    last = nextitem is None or str(nextitem.path) != path
    if log_dir and first:
        pytest_runtest_protocol._file = path
        pytest_runtest_protocol._start = time.perf_counter()
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # resets VmHWM, the peak RSS
        except OSError:
            pass
    yield
    if last:
        _trim()  # ~150 MB less RSS in the unit lane, ~3 % more time
    if log_dir and last:
        lane = os.environ.get("COURSEKIT_LANE", "main")
        rel = os.path.relpath(path)
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        with open(Path(log_dir) / f"{lane}.tsv", "a") as f:
            seconds = time.perf_counter() - pytest_runtest_protocol._start
            f.write(f"{rel}\t{_status_kb('VmHWM') // 1024}\t{_status_kb('VmRSS') // 1024}"
                    f"\t{seconds:.1f}\n")
