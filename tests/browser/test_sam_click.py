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
import time

import pytest
from browser_lab import (
    LESSONS,
    artifacts_dir,
    chromium_page,
    jupyterlab,
    needs_chromium,
    no_errors,
    open_notebook,
    run_all,
)

LESSON = "10_segment_anything.ipynb"
WIDGET_CELL = "clicker = sam_click_widget("
SETUP_CELLS = ("sam = load_sam()", "scene = render_scene(")

pytestmark = [pytest.mark.browser, needs_chromium]


def widget_notebook() -> dict:
    """Lesson 10 reduced to its setup cells and the widget cell, outputs cleared."""
    nb = json.loads((LESSONS / LESSON).read_text(encoding="utf-8"))
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
    workdir = tmp_path_factory.mktemp("lab-lessons")
    (workdir / LESSON).write_text(json.dumps(widget_notebook()), encoding="utf-8")
    with jupyterlab(workdir, tmp_path_factory.mktemp("lab-settings")) as url:
        yield url


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
    artifacts = artifacts_dir(tmp_path)
    with chromium_page() as page:
        open_notebook(page, lab, LESSON)
        run_all(page, 240, "lesson 10's widget cells", artifacts / "sam-timeout.png")
        no_errors(page)
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
