"""JupyterLab in a real browser: open lesson 00, Run All, no error, a figure shows.

Needs Debian's Chromium at /usr/bin/chromium and the Python playwright package
(never `playwright install`). Skipped with one clear reason when absent.
Screenshots go to $COURSEKIT_ARTIFACTS (default: a temporary folder).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
REPO = Path(__file__).resolve().parents[2]
LESSON = "00_tour.ipynb"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="no Chromium at /usr/bin/chromium (apt-get install chromium)",
    ),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    settings = tmp_path_factory.mktemp("lab-settings")
    notify = settings / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True)
    (notify / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False})
    )
    workdir = tmp_path_factory.mktemp("lab-lessons")
    nb = json.loads((REPO / "lessons" / LESSON).read_text(encoding="utf-8"))
    for cell in nb[
        "cells"
    ]:  # start clean, so everything seen afterwards was computed in the browser
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
    (workdir / LESSON).write_text(json.dumps(nb), encoding="utf-8")
    port = _free_port()
    env = dict(
        os.environ,
        JUPYTERLAB_SETTINGS_DIR=str(settings),
        JUPYTERLAB_WORKSPACES_DIR=str(settings / "ws"),
        OMP_NUM_THREADS="1",
    )
    env.pop("MPLBACKEND", None)  # the kernel must use the inline backend to show figures
    cmd = [
        sys.executable,
        "-m",
        "jupyter",
        "lab",
        "--no-browser",
        "--allow-root",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        f"--notebook-dir={workdir}",
        "--LabApp.news_url=None",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    for _ in range(120):
        try:
            urllib.request.urlopen(url + "/api/status", timeout=1)
            break
        except OSError:
            time.sleep(0.5)
    else:
        proc.terminate()
        pytest.fail("JupyterLab did not start within 60 s")
    yield url
    proc.terminate()
    proc.wait(timeout=20)


def test_lesson_00_runs_in_jupyterlab(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    artifacts = Path(os.environ.get("COURSEKIT_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{lab}/lab/tree/{LESSON}?reset", timeout=60_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_timeout(3_000)
        select = page.locator(".jp-Dialog button:has-text('Select')")
        if select.count():  # the kernel chooser, shown on some first opens
            select.first.click()
        page.wait_for_selector(
            ".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000
        )
        page.screenshot(path=str(artifacts / "lab-opened.png"))
        assert page.locator(".jp-OutputArea-output img").count() == 0
        page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=10_000)
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=10_000)
        page.wait_for_timeout(2_000)
        deadline = time.time() + 150
        while time.time() < deadline:
            busy = page.locator(".jp-InputPrompt:has-text('[*]')").count()
            idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count()
            if busy == 0 and idle:
                break
            page.wait_for_timeout(1_000)
        else:
            page.screenshot(path=str(artifacts / "lab-timeout.png"))
            pytest.fail("lesson 00 did not finish within 150 s in JupyterLab")
        page.screenshot(path=str(artifacts / "lab-ran.png"), full_page=True)
        errors = page.locator(
            '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]:has-text("Error")'
        )
        assert errors.count() == 0, errors.first.inner_text()
        assert page.locator(".jp-OutputArea-output img").count() >= 2, "expected the tour's figures"
        prompts = [
            t.strip() for t in page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()
        ]
        code_cells = sum(
            1
            for c in json.loads((REPO / "lessons" / LESSON).read_text())["cells"]
            if c["cell_type"] == "code"
        )
        assert prompts[:code_cells] == [f"[{i}]:" for i in range(1, code_cells + 1)], prompts
        browser.close()
