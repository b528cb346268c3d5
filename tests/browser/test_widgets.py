"""Every widget of the course, used in a real browser; a student's exercise solved by typing.

Each lesson with a widget is opened in JupyterLab under headless Chromium from cleared
outputs, Run All must finish without an error output, then the test uses the widget (moves a
slider with the keyboard, steps the transposed convolution) and checks that the figure it
draws changed. Screenshots go to $COURSEKIT_ARTIFACTS (default: a temporary folder).
Lesson 10's click widget has its own test (test_sam_click.py); a student solving lesson 03's
exercises by typing, then graded, is test_new_user.py.
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
    shut_down_kernels,
    wait_idle,
)

pytestmark = [pytest.mark.browser, pytest.mark.slow, needs_chromium]

# lesson -> the widget slider to move (its description label) and how many arrow presses
WIDGETS = {
    "01_sliding_window_vs_fcn.ipynb": ("layers", 2),
    "02_upsampling.ipynb": ("step", 3),
    "07_pose.ipynb": ("dx (px)", 6),
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    work = tmp_path_factory.mktemp("widget-lessons")
    for name in WIDGETS:
        nb = json.loads((LESSONS / name).read_text(encoding="utf-8"))
        (work / name).write_text(json.dumps(cleared(nb)), encoding="utf-8")
    with jupyterlab(work, tmp_path_factory.mktemp("lab-settings")) as url:
        yield url


def _figure_src(widget) -> str:
    img = widget.locator(".jp-OutputArea-output img, .widget-output img").last
    img.wait_for(timeout=30_000)
    return img.get_attribute("src") or ""


@pytest.mark.parametrize("name", sorted(WIDGETS))
def test_widget_redraws_in_the_browser(lab, name, tmp_path):
    label, presses = WIDGETS[name]
    shots = artifacts_dir(tmp_path)
    with chromium_page() as page:
        open_notebook(page, lab, name)
        run_all(page, 240, name, shots / f"{name}-timeout.png")
        no_errors(page)
        slider = page.locator(".widget-slider", has=page.locator(f"label:text-is('{label}')"))
        assert slider.count() >= 1, f"no slider labelled {label!r} in {name}"
        widget = page.locator(".jp-OutputArea-output", has=slider.first).first
        widget.scroll_into_view_if_needed()
        before = _figure_src(widget)
        page.screenshot(path=str(shots / f"{name}-before.png"))
        handle = slider.first.locator(".noUi-handle, .ui-slider-handle").first
        handle.focus()
        for _ in range(presses):
            page.keyboard.press("ArrowRight")
            page.wait_for_timeout(300)
        page.wait_for_timeout(1_500)
        wait_idle(page, 60, f"{name} widget", shots / f"{name}-widget-timeout.png")
        after = _figure_src(widget)
        page.screenshot(path=str(shots / f"{name}-after.png"))
        assert after and after != before, f"{name}: the figure did not change"
        no_errors(page)
    assert shut_down_kernels(lab) >= 1  # keeps the suite's memory to one lesson at a time
