"""scripts/peak_memory.py labels each process of the tree by what it is."""

import importlib.util
from pathlib import Path

import psutil
import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("peak_memory", REPO / "scripts" / "peak_memory.py")
peak_memory = importlib.util.module_from_spec(spec)
spec.loader.exec_module(peak_memory)


class FakeProcess:
    def __init__(self, cmd, name="python3", gone=False):
        self.cmd, self._name, self.gone = cmd, name, gone

    def cmdline(self):
        if self.gone:
            raise psutil.NoSuchProcess(1)
        return self.cmd

    def name(self):
        return self._name


@pytest.mark.parametrize("cmd, name, label", [
    (["python", "-m", "ipykernel_launcher", "-f", "k.json"], "python", "kernel"),
    (["/usr/lib/chromium/chromium", "--type=renderer"], "chromium", "chromium"),
    (["python", "-m", "pytest", "tests"], "python", "pytest"),
    # a test's subprocess with a pytest temp path in its argv is not pytest
    (["/venv/bin/python", "/tmp/pytest-of-root/pytest-3/t0/ddp_fit.py"], "python", "python"),
    (["/venv/bin/python", "-m", "nbgrader", "autograde"], "python", "python"),
    ([], "kworker", "kworker"),  # no command line: the process name, not a stale label
])
def test_labels_by_hand(cmd, name, label):
    assert peak_memory._label(FakeProcess(cmd, name)) == label


class LaneProcess(FakeProcess):
    def __init__(self, cmd, environ):
        super().__init__(cmd)
        self._environ = environ

    def environ(self):
        if self._environ is None:
            raise psutil.AccessDenied(1)
        return self._environ


@pytest.mark.parametrize("cmd, environ, label", [
    (["python", "-m", "pytest", "tests"], {"COURSEKIT_LANE": "unit"}, "pytest@unit"),
    (["python", "-m", "ipykernel_launcher"], {"COURSEKIT_LANE": "browser"}, "kernel@browser"),
    (["/venv/bin/python", "-c", "import torch"], {"COURSEKIT_LANE": "unit"}, "python@unit"),
    (["python", "-m", "pytest", "tests"], {}, "pytest"),  # outside the lanes
    (["python", "-m", "pytest", "tests"], None, "pytest"),  # environ not readable
])
def test_labels_name_the_lane(cmd, environ, label):
    assert peak_memory._label(LaneProcess(cmd, environ)) == label


def test_a_process_that_ended_is_a_question_mark():
    assert peak_memory._label(FakeProcess([], gone=True)) == "?"
