"""Shared by the browser tests: JupyterLab on a folder of notebooks, Chromium driven by
playwright (Debian's /usr/bin/chromium, never `playwright install`), and the few steps every
test takes (open a notebook, Run All, wait, look for errors, screenshots)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
LESSONS = REPO / "lessons"
needs_chromium = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="no Chromium at /usr/bin/chromium (apt-get install chromium)")
ERRORS = ('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
          ':has-text("Error")')


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cleared(nb: dict) -> dict:
    """The notebook without outputs: everything seen in the browser is computed there."""
    for cell in nb["cells"]:
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    return nb


def artifacts_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("COURSEKIT_ARTIFACTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


@contextmanager
def jupyterlab(workdir: Path, settings: Path):
    """Serve ``workdir`` on a free loopback port (no token: the port is private to the test)."""
    notify = settings / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True, exist_ok=True)
    (notify / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    port = _free_port()
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(settings / "ws"), OMP_NUM_THREADS="1")
    env.pop("MPLBACKEND", None)  # the kernel must use the inline backend to show figures
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
           f"--port={port}", "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=",
           "--ServerApp.password=", f"--notebook-dir={workdir}", "--LabApp.news_url=None",
           "--ServerApp.disable_check_xsrf=True"]  # lets the test stop kernels over REST
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                urllib.request.urlopen(url + "/api/status", timeout=1)
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not start within 60 s")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=20)


@contextmanager
def chromium_page():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            yield browser.new_page(viewport={"width": 1400, "height": 1000})
        finally:
            browser.close()


def open_notebook(page, lab: str, name: str) -> None:
    page.goto(f"{lab}/lab/tree/{name}?reset", timeout=60_000)
    page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
    page.wait_for_timeout(3_000)
    select = page.locator(".jp-Dialog button:has-text('Select')")
    if select.count():  # the kernel chooser, shown on some first opens
        select.first.click()
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                           timeout=60_000)


def wait_idle(page, seconds: float, what: str, shot: Path) -> None:
    deadline = time.time() + seconds
    while time.time() < deadline:
        busy = page.locator(".jp-InputPrompt:has-text('[*]')").count()
        idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count()
        if busy == 0 and idle:
            return
        page.wait_for_timeout(1_000)
    page.screenshot(path=str(shot))
    pytest.fail(f"{what} did not finish within {seconds:.0f} s in JupyterLab")


def run_all(page, seconds: float, what: str, shot: Path) -> None:
    page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=10_000)
    page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=10_000)
    page.wait_for_timeout(2_000)
    wait_idle(page, seconds, what, shot)


def shut_down_kernels(lab: str) -> int:
    """Stop every kernel of the server (each opened notebook keeps one): a test that opens
    several lessons must not hold them all in memory at once. Returns how many it stopped."""
    kernels = json.loads(urllib.request.urlopen(f"{lab}/api/kernels", timeout=10).read())
    for kernel in kernels:
        request = urllib.request.Request(f"{lab}/api/kernels/{kernel['id']}", method="DELETE")
        urllib.request.urlopen(request, timeout=30)
    return len(kernels)


def no_errors(page) -> None:
    errors = page.locator(ERRORS)
    assert errors.count() == 0, errors.first.inner_text()
