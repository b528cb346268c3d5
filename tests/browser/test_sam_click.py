"""Lesson 10's click widget in a real browser: click on the figure, the mask changes.

Opens lesson 10's setup cells and its widget cell (``%matplotlib widget``, ipympl) in
JupyterLab in Chromium, runs them, clicks on the figure, then shift-clicks, and checks what
a user sees: the status line under the figure (updated by the kernel's click callback) and
the canvas pixels (the mask redrawn). Needs Debian's Chromium at /usr/bin/chromium and the
Python playwright package (never ``playwright install``); skipped with one clear reason
otherwise, as tests/browser/test_jupyterlab.py. Screenshots go to $COURSEKIT_ARTIFACTS
(default: a temporary folder).
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
LESSON = "10_segment_anything.ipynb"
WIDGET_CELL = "clicker = sam_click_widget("
SETUP_CELLS = ("sam = load_sam()", "scene = render_scene(")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not Path(CHROMIUM).exists(),
                       reason="no Chromium at /usr/bin/chromium (apt-get install chromium)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def widget_notebook() -> dict:
    """Lesson 10 reduced to its setup cells and the widget cell, outputs cleared."""
    nb = json.loads((REPO / "lessons" / LESSON).read_text(encoding="utf-8"))
    keep = []
    for cell in nb["cells"]:
        src = "".join(cell["source"])
        if cell["cell_type"] == "code" and (any(s in src for s in SETUP_CELLS)
                                            or WIDGET_CELL in src):
            cell["outputs"], cell["execution_count"] = [], None
            keep.append(cell)
    nb["cells"] = keep
    return nb


def test_widget_notebook_has_the_cells():
    cells = ["".join(c["source"]) for c in widget_notebook()["cells"]]
    assert len(cells) == 3 and WIDGET_CELL in cells[-1] and "%matplotlib widget" in cells[-1]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    settings = tmp_path_factory.mktemp("lab-settings")
    notify = settings / "@jupyterlab" / "apputils-extension"
    notify.mkdir(parents=True)
    (notify / "notification.jupyterlab-settings").write_text(
        json.dumps({"fetchNews": "false", "checkForUpdates": False}))
    workdir = tmp_path_factory.mktemp("lab-lessons")
    (workdir / LESSON).write_text(json.dumps(widget_notebook()), encoding="utf-8")
    port = _free_port()
    env = dict(os.environ, JUPYTERLAB_SETTINGS_DIR=str(settings),
               JUPYTERLAB_WORKSPACES_DIR=str(settings / "ws"), OMP_NUM_THREADS="1")
    env.pop("MPLBACKEND", None)
    cmd = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
           f"--port={port}", "--ServerApp.ip=127.0.0.1", "--IdentityProvider.token=",
           "--ServerApp.password=", f"--notebook-dir={workdir}", "--LabApp.news_url=None"]
    proc = subprocess.Popen(cmd, env=env, cwd=str(REPO), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
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


def _wait_idle(page, seconds: float) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        busy = page.locator(".jp-InputPrompt:has-text('[*]')").count()
        idle = page.locator(".jp-Notebook-ExecutionIndicator[data-status='idle']").count()
        if busy == 0 and idle:
            return True
        page.wait_for_timeout(500)
    return False


def _status(page) -> str:
    return page.locator(".sam-status").first.inner_text()


def _wait_status(page, text: str, seconds: float = 60) -> str:
    deadline = time.time() + seconds
    while time.time() < deadline:
        current = _status(page)
        if text in current:
            return current
        page.wait_for_timeout(300)
    return _status(page)


def _canvas_pixels(page) -> str:
    return page.evaluate(
        "() => document.querySelector('.jupyter-matplotlib-canvas-div canvas').toDataURL()")


def test_click_on_the_figure_changes_the_mask(lab, tmp_path):
    from playwright.sync_api import sync_playwright

    artifacts = Path(os.environ.get("COURSEKIT_ARTIFACTS", tmp_path))
    artifacts.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.goto(f"{lab}/lab/tree/{LESSON}?reset", timeout=60_000)
        page.wait_for_selector(".jp-Notebook .jp-Cell", timeout=60_000)
        page.wait_for_timeout(3_000)
        select = page.locator(".jp-Dialog button:has-text('Select')")
        if select.count():
            select.first.click()
        page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']",
                               timeout=60_000)
        page.click(".lm-MenuBar-itemLabel:text-is('Run')", timeout=10_000)
        page.click(".lm-Menu-itemLabel:text-is('Run All Cells')", timeout=10_000)
        page.wait_for_timeout(2_000)
        if not _wait_idle(page, 240):
            page.screenshot(path=str(artifacts / "sam-timeout.png"))
            pytest.fail("lesson 10's widget cells did not finish within 240 s")
        errors = page.locator('.jp-OutputArea-output[data-mime-type='
                              '"application/vnd.jupyter.stderr"]:has-text("Error")')
        assert errors.count() == 0, errors.first.inner_text()
        canvas = page.locator(".jupyter-matplotlib-canvas-div canvas").first
        canvas.wait_for(timeout=60_000)
        canvas.scroll_into_view_if_needed()
        page.wait_for_timeout(1_500)
        page.screenshot(path=str(artifacts / "sam-before.png"))
        assert "click on an object" in _status(page)
        before = _canvas_pixels(page)
        box = canvas.bounding_box()
        x, y = box["x"] + 0.45 * box["width"], box["y"] + 0.55 * box["height"]
        page.mouse.click(x, y)
        status = _wait_status(page, "1 point (1 foreground)")
        page.wait_for_timeout(1_500)
        page.screenshot(path=str(artifacts / "sam-after-click.png"))
        assert "1 point (1 foreground)" in status, status
        after = _canvas_pixels(page)
        assert after != before, "the figure did not redraw after the click"
        page.keyboard.down("Shift")
        page.mouse.click(box["x"] + 0.2 * box["width"], box["y"] + 0.25 * box["height"])
        page.keyboard.up("Shift")
        status = _wait_status(page, "2 points (1 foreground)")
        page.wait_for_timeout(1_500)
        page.screenshot(path=str(artifacts / "sam-after-shift-click.png"))
        assert "2 points (1 foreground)" in status, status
        assert _canvas_pixels(page) != after
        browser.close()
