"""A new user's whole path on lesson 03: the student version in JupyterLab, the three
exercises solved by typing into their cells in Chromium, saved, and ``coursekit grade``
reporting them passed.

The student notebooks are written by the same function as ``coursekit student`` (which
``scripts/lab`` calls, tests/core/test_lab_script.py); the server is the test's own, on a
temporary folder, so the user's ``lessons/student/`` is never touched. What the student
types is the teacher's solution without its nbgrader markers, entered as text (no key
events, so the editor does not re-indent it). Screenshots go to $COURSEKIT_ARTIFACTS.
"""

from __future__ import annotations

import time

import nbformat
import pytest
from browser_lab import (
    LESSONS,
    artifacts_dir,
    chromium_page,
    jupyterlab,
    needs_chromium,
    open_notebook,
    run_all,
    shut_down_kernels,
    wait_idle,
)

from coursekit.cli import main
from coursekit.exercises.student import BEGIN, END, write_student_notebooks

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

LESSON = "03_fcn_unet.ipynb"
EXERCISES = ("def my_mean_iou", "def my_boundary_band", "def my_prediction")


def _typed_solutions() -> list[str]:
    """Each exercise cell as the student would type it: the teacher's, markers removed."""
    nb = nbformat.read(LESSONS / LESSON, as_version=4)
    out = []
    for head in EXERCISES:
        cell = next(c for c in nb.cells if c.cell_type == "code" and head in c.source)
        out.append("\n".join(line for line in cell.source.splitlines()
                             if BEGIN not in line and END not in line))
    return out


def _cell(page, head: str):
    return page.locator(".jp-CodeCell", has=page.locator(
        f".jp-InputArea-editor:has-text('{head}')")).first


def test_new_user_solves_lesson_03_in_the_browser_and_grade_passes(tmp_path, capsys):
    work = tmp_path / "lessons"
    work.mkdir()
    lines = write_student_notebooks(LESSONS, work / "student")  # = `coursekit student`
    path = work / "student" / LESSON
    assert path.exists() and any(LESSON in line for line in lines)
    before = path.stat().st_mtime_ns
    shots = artifacts_dir(tmp_path)
    with jupyterlab(work, tmp_path / "lab-settings") as lab, chromium_page() as page:
        open_notebook(page, lab, f"student/{LESSON}")
        run_all(page, 300, "lesson 03, student version", shots / "new-user-timeout.png")
        for head, solution in zip(EXERCISES, _typed_solutions(), strict=True):
            cell = _cell(page, head)
            cell.scroll_into_view_if_needed()
            cell.locator(".cm-content").click()
            page.keyboard.press("Control+a")  # the cell's text, in the editor
            page.keyboard.insert_text(solution)
            page.keyboard.press("Shift+Enter")
            page.wait_for_timeout(500)
            wait_idle(page, 60, head, shots / "new-user-cell-timeout.png")
        # exercise 3's check is in the next cell (it trains two small U-Nets): run it too
        page.keyboard.press("Shift+Enter")
        page.wait_for_timeout(500)
        wait_idle(page, 120, "the class-weight check", shots / "new-user-check-timeout.png")
        page.screenshot(path=str(shots / "new-user-solved.png"))
        for head in (*EXERCISES[:2], "check_class_weight_prediction(my_prediction"):
            output = _cell(page, head).locator(".jp-OutputArea").inner_text()
            assert "correct" in output, f"{head}: {output}"
        page.keyboard.press("Control+s")
        deadline = time.time() + 30
        while path.stat().st_mtime_ns == before and time.time() < deadline:
            page.wait_for_timeout(500)
        assert path.stat().st_mtime_ns != before, "the notebook was not saved"
        shut_down_kernels(lab)
    saved = path.read_bytes()
    assert main(["grade", str(path), "--timeout", "300"]) == 0
    card = capsys.readouterr().out
    assert "3 exercises: 3 passed, 0 failed" in card, card
    assert path.read_bytes() == saved  # grading never writes the student's file
