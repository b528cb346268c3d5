"""scripts/lab really opens JupyterLab on the lessons: loopback only, token required."""

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.skipif(
    not (Path(sys.prefix) / "bin" / "jupyter").exists(), reason="JupyterLab is in the [lab] extra"
)
def test_scripts_lab_serves_the_lessons_with_a_token(tmp_path):
    # lessons/student/ is written (or kept: never overwritten) and is where JupyterLab opens
    port = _free_port()
    env = dict(os.environ, COURSEKIT_VENV=sys.prefix, JUPYTER_RUNTIME_DIR=str(tmp_path))
    proc = subprocess.Popen(
        ["bash", str(REPO / "scripts" / "lab"), "--no-browser", f"--port={port}"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    lines: queue.Queue = (
        queue.Queue()
    )  # read in a thread: a silent Jupyter must not block past the deadline
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout], daemon=True).start()
    try:
        url, seen, deadline = None, [], time.time() + 120
        while url is None and time.time() < deadline:
            try:
                line = lines.get(timeout=1)
            except queue.Empty:
                if proc.poll() is not None:
                    break
                continue
            seen.append(line)
            match = re.search(rf"http://127\.0\.0\.1:{port}/lab\?token=([0-9a-f]+)", line)
            url = match and match.group(0)
        assert url, "scripts/lab printed no tokenised URL:\n" + "".join(seen[-30:])
        token = url.split("token=")[1]
        base = f"http://127.0.0.1:{port}"
        for _ in range(60):  # the URL may be printed a moment before the socket accepts
            try:
                listing = (
                    urllib.request.urlopen(f"{base}/api/contents?token={token}", timeout=10)
                    .read()
                    .decode()
                )
                break
            except urllib.error.URLError:
                time.sleep(0.5)
        else:
            pytest.fail(f"JupyterLab printed {url} but does not answer")
        assert "00_tour.ipynb" in listing and "05_instances.ipynb" in listing
        student = urllib.request.urlopen(f"{base}/api/contents/student?token={token}",
                                         timeout=10).read().decode()
        assert '"00_tour.ipynb"' in student, "scripts/lab writes the students' notebooks"
        assert "your notebooks: lessons/student/" in "".join(seen)
        with pytest.raises(urllib.error.HTTPError) as refused:  # no token, no lessons
            urllib.request.urlopen(urllib.request.Request(f"{base}/api/contents"), timeout=10)
        assert refused.value.code in (401, 403)
        assert "status      all good" in "".join(seen), "scripts/lab runs coursekit doctor first"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
