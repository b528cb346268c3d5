"""Test-wide settings: seeded, single-threaded, float64 references."""

import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
# reference helpers shared by tests in several folders (pytest runs with --import-mode=importlib)
sys.path.insert(0, str(Path(__file__).parent / "references"))

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def _devices():
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


DEVICES = _devices()


@pytest.fixture(params=DEVICES)
def device(request):
    """Every device this machine has: cpu always, cuda when present."""
    return torch.device(request.param)



# tests that start JupyterLab (and most of them Chromium): one worker runs them all, in turn
BROWSER_GROUP = ("tests/browser/", "tests/core/test_lab_script.py")


def pytest_xdist_make_scheduler(config, log):
    """How scripts/test's two workers (``-n 2 --dist loadscope``) share the suite.

    Each file is one unit of work: a lesson's cells share one kernel under nbval, and a
    module's fixtures are built once. Every test that opens JupyterLab goes to the same
    worker, so at most one browser is open at a time (the suite's memory budget: a browser
    with its server and kernel is about 1.3 GB). (xdist's own ``--dist loadgroup`` would say
    this with markers, but xdist 3.8 under this pytest does not keep a group together.)
    """
    if config.getvalue("dist") != "loadscope":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FileScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "browser" if path.startswith(BROWSER_GROUP) else path

    return FileScheduling(config, log)
