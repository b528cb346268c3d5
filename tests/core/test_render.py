"""coursekit render: a static site with every lesson page, its figures, and working links."""

import base64
from pathlib import Path

import nbformat
import pytest

from coursekit.cli import main
from coursekit.render import lesson_title, render_site, site_problems

LESSONS = Path(__file__).resolve().parents[2] / "lessons"
PNG = base64.b64encode(bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000010000000108060000001f15c489"
    "0000000d49444154789c6360f8cfc0f01f0005000201e2b3a3f10000000049454e44ae426082")).decode()


def _lessons(tmp_path):
    folder = tmp_path / "lessons"
    folder.mkdir()
    for stem, title, link in (("00_a", "Lesson 00 — A", "[next](01_b.ipynb)"),
                              ("01_b", "Lesson 01 — B", "[back](00_a.ipynb#Top)")):
        nb = nbformat.v4.new_notebook()
        cell = nbformat.v4.new_code_cell("plot()")
        cell.outputs = [nbformat.v4.new_output("display_data", data={"image/png": PNG,
                                                                     "text/plain": "<Figure>"})]
        nb.cells = [nbformat.v4.new_markdown_cell(f"# {title}\n\nSee {link}."), cell]
        nbformat.write(nb, folder / f"{stem}.ipynb")
    (folder / "AUTHORING.md").write_text("not a lesson")
    return folder


def test_hand_built_site(tmp_path):
    lessons = _lessons(tmp_path)
    written = render_site(lessons, tmp_path / "site")
    assert [p.name for p in written] == ["index.html", "00_a.html", "01_b.html"]
    assert site_problems(tmp_path / "site", lessons) == []
    a = (tmp_path / "site" / "00_a.html").read_text()
    assert 'href="01_b.html"' in a and "01_b.ipynb" not in a  # lesson links point to pages
    assert a.count(f"data:image/png;base64,{PNG}") == 1  # the figure is embedded
    index = (tmp_path / "site" / "index.html").read_text()
    assert "00 — Lesson 00 — A" in index and 'href="01_b.html"' in index
    # break it: a missing page and a dead link are reported
    (tmp_path / "site" / "01_b.html").unlink()
    problems = site_problems(tmp_path / "site", lessons)
    assert "01_b.html: missing" in problems
    assert "00_a.html: link to 01_b.html does not resolve" in problems


def test_lesson_title():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_markdown_cell("## Two\ntext")]
    assert lesson_title(nb) == "Two"
    assert lesson_title(nbformat.v4.new_notebook()) == "untitled"


def test_bad_folder(tmp_path):
    with pytest.raises(ValueError, match="lessons must be a folder"):
        render_site(tmp_path, tmp_path / "site")


@pytest.mark.slow
def test_the_course_renders(tmp_path, capsys):
    assert main(["render", "--out", str(tmp_path / "site")]) == 0
    assert "problem" not in capsys.readouterr().err
    pages = sorted(p.name for p in (tmp_path / "site").glob("*.html"))
    lessons = sorted(f"{p.stem}.html" for p in LESSONS.glob("[0-9][0-9]_*.ipynb"))
    assert pages == sorted(["index.html", *lessons])
