"""The suite runs with the network blocked (scripts/nonet/sitecustomize.py via scripts/test)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

NONET = Path(__file__).resolve().parents[2] / "scripts" / "nonet"
PROBE = """
import socket
for host in ("93.184.216.34", "example.com"):
    try:
        socket.create_connection((host, 80), timeout=2)
        print("REACHED", host)
    except OSError as err:
        print("BLOCKED" if "network blocked" in str(err) else f"OTHER {err}", host)
server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(1)
client = socket.create_connection(server.getsockname(), timeout=2)
print("LOOPBACK OK")
"""


def _run(env_extra):
    env = dict(os.environ, PYTHONPATH=str(NONET), **env_extra)
    return subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True,
                          text=True, timeout=60).stdout.splitlines()


def test_guard_blocks_everything_but_loopback():
    assert _run({"COURSEKIT_BLOCK_NETWORK": "1"}) == [
        "BLOCKED 93.184.216.34", "BLOCKED example.com", "LOOPBACK OK"]


def test_this_run_is_blocked_when_scripts_test_runs_it():
    if os.environ.get("COURSEKIT_BLOCK_NETWORK") != "1":
        pytest.skip("the network is blocked when the suite runs through scripts/test")
    assert os.environ.get("COURSEKIT_NETWORK_BLOCKED") == "1"  # the guard loaded here too
    with pytest.raises(OSError, match="network blocked"):
        socket.create_connection(("93.184.216.34", 80), timeout=2)


@pytest.mark.parametrize("argv_tail, dumps", [(["ipykernel_launcher"], True), ([], False)])
def test_stall_watch_dumps_a_kernel_that_runs_too_long(tmp_path, argv_tail, dumps):
    """COURSEKIT_STALL_DUMP: a kernel alive past COURSEKIT_STALL_SECONDS writes its stacks;
    any other process is left alone."""
    env = dict(os.environ, PYTHONPATH=str(NONET), COURSEKIT_STALL_DUMP=str(tmp_path),
               COURSEKIT_STALL_SECONDS="0.5")
    code = "import time\ndef waiting_here():\n    time.sleep(1.5)\nwaiting_here()\n"
    subprocess.run([sys.executable, "-c", code, *argv_tail], env=env, timeout=60, check=True)
    files = list(tmp_path.glob("kernel-*.txt"))
    if not dumps:
        assert files == []
        return
    assert len(files) == 1
    text = files[0].read_text()
    assert "waiting_here" in text and "Thread" in text, text
