"""JupyterLab in a real browser: open lesson 00, Run All, no error, a figure shows.

Needs Debian's Chromium at /usr/bin/chromium and the Python playwright package
(never `playwright install`). Skipped with one clear reason when absent.
Screenshots go to $COURSEKIT_ARTIFACTS (default: a temporary folder).
"""

from __future__ import annotations

import json

import pytest
from browser_lab import (
    LESSONS,
    artifacts_dir,
    chromium_page,
    cleared,
    jupyterlab,
    needs_chromium,
    no_errors,
    open_notebook,
    run_all,
)

LESSON = "00_tour.ipynb"
pytestmark = [pytest.mark.browser, needs_chromium]


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("lab-lessons")
    nb = json.loads((LESSONS / LESSON).read_text(encoding="utf-8"))
    (workdir / LESSON).write_text(json.dumps(cleared(nb)), encoding="utf-8")
    with jupyterlab(workdir, tmp_path_factory.mktemp("lab-settings")) as url:
        yield url


def test_lesson_00_runs_in_jupyterlab(lab, tmp_path):
    artifacts = artifacts_dir(tmp_path)
    with chromium_page() as page:
        open_notebook(page, lab, LESSON)
        page.screenshot(path=str(artifacts / "lab-opened.png"))
        assert page.locator(".jp-OutputArea-output img").count() == 0
        run_all(page, 150, "lesson 00", artifacts / "lab-timeout.png")
        page.screenshot(path=str(artifacts / "lab-ran.png"), full_page=True)
        no_errors(page)
        assert page.locator(".jp-OutputArea-output img").count() >= 2, "expected the tour's figures"
        prompts = [
            t.strip() for t in page.locator(".jp-CodeCell .jp-InputPrompt").all_text_contents()
        ]
        code_cells = sum(c["cell_type"] == "code"
                         for c in json.loads((LESSONS / LESSON).read_text())["cells"])
        assert prompts[:code_cells] == [f"[{i}]:" for i in range(1, code_cells + 1)], prompts
