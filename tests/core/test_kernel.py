"""coursekit.exercises.kernel: waiting for a kernel's messages in slices, so that a lost
zmq wakeup costs at most one slice instead of the whole time limit."""

import asyncio
import time
from pathlib import Path
from queue import Empty

import nbformat
import pytest
from traitlets.utils.importstring import import_item

from coursekit.exercises.kernel import (
    PatientChannel,
    PatientKernelClient,
    PatientKernelManager,
    notebook_client,
    wait_in_slices,
)


def test_slices_by_hand():
    """Three empty slices, then the message: four calls, each at most one slice long."""
    asked = []

    async def get_msg(timeout):
        asked.append(timeout)
        if len(asked) <= 3:
            raise Empty
        return "reply"

    assert asyncio.run(wait_in_slices(get_msg, None, step=0.25)) == "reply"
    assert asked == [0.25, 0.25, 0.25, 0.25]


def test_the_callers_timeout_is_kept():
    asked = []

    async def never(timeout):
        asked.append(timeout)
        await asyncio.sleep(timeout)
        raise Empty

    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(wait_in_slices(never, 0.2, step=0.05))
    took = time.monotonic() - start
    assert 0.2 <= took < 1.0, took
    assert len(asked) >= 4 and all(t <= 0.05 for t in asked)
    assert asked[-1] < 0.05 or took >= 0.2  # the last slice is what was left
    asked.clear()
    with pytest.raises(Empty):  # a zero timeout: one immediate look, as poll(0)
        asyncio.run(wait_in_slices(never, 0, step=0.05))
    assert asked == [0.0]


def test_a_lost_wakeup_costs_one_slice_not_the_timeout():
    """The bug's model: a poll that started before the message came only sees it when its
    own timeout ends. One long wait takes the whole timeout; slices take about one slice."""
    arrives = time.monotonic() + 0.05

    async def edge_lost(timeout):
        await asyncio.sleep(timeout)  # never woken early
        if time.monotonic() >= arrives:
            return "reply"
        raise Empty

    start = time.monotonic()
    assert asyncio.run(edge_lost(2.0)) == "reply"
    assert time.monotonic() - start >= 2.0
    arrives = time.monotonic() + 0.05
    start = time.monotonic()
    assert asyncio.run(wait_in_slices(edge_lost, 2.0, step=0.05)) == "reply"
    assert time.monotonic() - start < 0.5


def test_bad_step():
    async def get_msg(timeout):
        return "reply"

    with pytest.raises(ValueError, match="step must be > 0 seconds, got 0"):
        asyncio.run(wait_in_slices(get_msg, 1.0, step=0))


def test_notebook_client_runs_a_notebook_on_patient_channels(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 6 * 7"),
                                         nbformat.v4.new_code_cell("print(x, end='')")])
    client = notebook_client(nb, timeout=60, path=str(tmp_path))
    assert client.kernel_manager_class is PatientKernelManager
    seen = {}

    def on_start(notebook):
        seen["shell"] = type(client.kc.shell_channel)
        seen["iopub"] = type(client.kc.iopub_channel)

    client.on_notebook_start = on_start
    client.execute()
    assert nb.cells[1].outputs[0]["text"] == "42"
    assert seen == {"shell": PatientChannel, "iopub": PatientChannel}


def test_nbgrader_config_names_the_patient_client(tmp_path):
    from coursekit.exercises.nbgrader import write_nbgrader_course

    write_nbgrader_course(Path(__file__).resolve().parents[2] / "lessons", tmp_path)
    config = (tmp_path / "nbgrader_config.py").read_text()
    line = next(x for x in config.splitlines() if x.startswith("c.AsyncKernelManager.client_class"))
    assert import_item(line.split("=", 1)[1].strip().strip('"')) is PatientKernelClient
