"""Run notebooks with nbclient without the ~300 s stalls of a missed zmq wakeup.

nbclient waits for a cell's reply with one ``poll(timeout)`` on an asyncio zmq socket.
asyncio can only watch zmq's edge-triggered file descriptor; if that edge is lost, pyzmq's
poll sleeps until its timeout, then checks the socket, finds the reply and returns it: no
error, just a cell that "took" the whole time limit. That is the likeliest cause of the
stalls we saw about once per full test run on a busy 2-core machine (pyzmq 27): a notebook
run through nbclient with a 300 s limit (student versions, nbgrader) sat ~300 s with its
kernel idle, then passed; nbval, whose client polls zmq directly, never stalled. No stall
was caught in the act after this fix (see ``scripts/test``'s stall watch).

``PatientKernelClient``'s channels wait in slices of ``POLL_SLICE`` seconds instead: each
slice ends in a real ``zmq_poll`` that sees a waiting message, so a lost edge costs at most
one slice, and the caller's timeout is kept. ``notebook_client(nb, ...)`` is an nbclient
``NotebookClient`` that uses it; ``coursekit grade``, ``coursekit bench --lessons``,
``scripts/execute_lessons.py`` and the student-version tests run through it, and the
nbgrader course's config names it (``coursekit.exercises.nbgrader``).

Tested in tests/core/test_kernel.py.
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from jupyter_client.manager import AsyncKernelManager
from nbclient import NotebookClient
from traitlets import DottedObjectName, Type

__all__ = ["POLL_SLICE", "PatientChannel", "PatientKernelClient", "PatientKernelManager",
           "notebook_client", "wait_in_slices"]

POLL_SLICE = 1.0  # seconds: the most a lost wakeup can cost


async def wait_in_slices(get_msg, timeout: float | None, step: float = POLL_SLICE) -> Any:
    """``await get_msg(timeout=t)`` with ``t <= step`` until a message comes or ``timeout``
    seconds (None: forever) have passed; then ``queue.Empty``, as one long wait would."""
    if step <= 0:
        raise ValueError(f"step must be > 0 seconds, got {step!r}")
    deadline = None if timeout is None else time.monotonic() + max(timeout, 0.0)
    while True:
        left = None if deadline is None else deadline - time.monotonic()
        try:
            return await get_msg(timeout=step if left is None else max(0.0, min(step, left)))
        except Empty:
            if left is not None and left <= step:
                raise


class PatientChannel(AsyncZMQSocketChannel):
    """An asyncio zmq channel whose ``get_msg`` waits in slices (``wait_in_slices``)."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        return await wait_in_slices(super().get_msg, timeout)


class PatientKernelClient(AsyncKernelClient):
    """``AsyncKernelClient`` with patient shell, iopub, stdin and control channels."""

    shell_channel_class = Type(PatientChannel)  # type: ignore[assignment]
    iopub_channel_class = Type(PatientChannel)  # type: ignore[assignment]
    stdin_channel_class = Type(PatientChannel)  # type: ignore[assignment]
    control_channel_class = Type(PatientChannel)  # type: ignore[assignment]


class PatientKernelManager(AsyncKernelManager):
    """``AsyncKernelManager`` whose clients are ``PatientKernelClient``."""

    client_class = DottedObjectName("coursekit.exercises.kernel.PatientKernelClient")
    client_factory = Type(PatientKernelClient)


def notebook_client(nb, *, timeout: int, path: str, **kwargs: Any) -> NotebookClient:
    """nbclient's ``NotebookClient`` for ``nb`` run in folder ``path`` (cell time limit
    ``timeout`` seconds, kernel ``python3`` unless ``kernel_name`` is given), on patient
    channels; other keywords go to ``NotebookClient``."""
    kwargs.setdefault("kernel_name", "python3")
    return NotebookClient(nb, timeout=timeout, kernel_manager_class=PatientKernelManager,
                          resources={"metadata": {"path": str(path)}}, **kwargs)
