"""``coursekit render``: the whole course as a static HTML site, offline.

Each executed lesson ``lessons/NN_name.ipynb`` becomes ``NN_name.html`` through nbconvert's
HTML exporter (JupyterLab's look, figures and animations embedded in the page, so a page is
one self-contained file); ``index.html`` is the table of contents (each lesson's title, the
first line of its first heading). Every page gets a navigation bar (contents, previous,
next), and links between lessons (``03_fcn_unet.ipynb``) are rewritten to the pages
(``03_fcn_unet.html``). Nothing is fetched while rendering; the pages load MathJax from its
CDN when viewed online (the formulas stay readable as TeX offline).

``render_site(lessons, out)`` returns the paths written; ``site_problems(out)`` lists what is
missing or broken in a rendered site (an empty list when every lesson page and image is there
and every internal link resolves), which the test and ``coursekit render`` check.

Tested in tests/core/test_render.py.
"""

from __future__ import annotations

import html
import os
import re
from pathlib import Path

import nbformat

__all__ = ["lesson_title", "render_site", "site_problems"]

_LESSON = re.compile(r"\b(\d\d_[A-Za-z0-9_]+)\.ipynb\b")
_HREF = re.compile(r"""(?:href|src)=["']([^"'#]+)(?:#[^"']*)?["']""")


def lesson_title(nb) -> str:
    """The first markdown heading's text, without the leading #s (or "untitled")."""
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            for line in cell.source.splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return "untitled"


def _nav(index: int, pages: list[tuple[str, str]]) -> str:
    links = ['<a href="index.html">contents</a>']
    if index > 0:
        stem, title = pages[index - 1]
        links.append(f'<a href="{stem}.html">← {html.escape(title)}</a>')
    if index + 1 < len(pages):
        stem, title = pages[index + 1]
        links.append(f'<a href="{stem}.html">{html.escape(title)} →</a>')
    return ('<nav class="coursekit-nav" style="padding:0.6em 1em;font-family:sans-serif;'
            'border-bottom:1px solid #ddd">' + " · ".join(links) + "</nav>")


def render_site(lessons: str | os.PathLike, out: str | os.PathLike) -> list[Path]:
    """Write ``out/index.html`` and one page per ``lessons/NN_name.ipynb``; return the paths."""
    from nbconvert import HTMLExporter

    lessons, out = Path(lessons), Path(out)
    notebooks = sorted(lessons.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise ValueError(f"lessons must be a folder of NN_name.ipynb lessons, got "
                         f"{str(lessons)!r} (none found)")
    out.mkdir(parents=True, exist_ok=True)
    read = [(p.stem, nbformat.read(p, as_version=4)) for p in notebooks]
    pages = [(stem, lesson_title(nb)) for stem, nb in read]
    known = {stem for stem, _ in pages}
    exporter = HTMLExporter(template_name="lab")
    written = []
    for k, (stem, nb) in enumerate(read):
        body, _ = exporter.from_notebook_node(nb)
        body = _LESSON.sub(lambda m: f"{m.group(1)}.html" if m.group(1) in known
                           else m.group(0), body)
        nav = _nav(k, pages)
        body = re.sub(r"(<body[^>]*>)", lambda m, nav=nav: m.group(1) + nav, body, count=1)
        page = out / f"{stem}.html"
        page.write_text(body, encoding="utf-8")
        written.append(page)
    items = "\n".join(f'<li><a href="{stem}.html">{stem[:2]} — {html.escape(title)}</a></li>'
                      for stem, title in pages)
    index = out / "index.html"
    index.write_text(
        "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>coursekit lessons</title>"
        "</head>\n<body style=\"font-family:sans-serif;max-width:50em;margin:2em auto\">\n"
        "<h1>coursekit — visual perception beyond classification</h1>\n"
        f"<ol start=\"0\">\n{items}\n</ol>\n</body></html>\n", encoding="utf-8")
    return [index, *written]


def site_problems(out: str | os.PathLike,
                  lessons: str | os.PathLike | None = None) -> list[str]:
    """What is wrong with a rendered site: missing pages, missing figures, dead local links.

    With ``lessons``, each lesson must have its page, and each page as many embedded images
    as its notebook has image outputs.
    """
    out = Path(out)
    problems = []
    if not (out / "index.html").is_file():
        return [f"{out / 'index.html'} is missing"]
    if lessons is not None:
        for path in sorted(Path(lessons).glob("[0-9][0-9]_*.ipynb")):
            page = out / f"{path.stem}.html"
            if not page.is_file():
                problems.append(f"{page.name}: missing")
                continue
            nb = nbformat.read(path, as_version=4)
            images = sum("image/png" in o.get("data", {}) for c in nb.cells
                         if c.cell_type == "code" for o in c.get("outputs", []))
            shown = page.read_text(encoding="utf-8").count("data:image/png;base64,")
            if shown < images:
                problems.append(f"{page.name}: {shown} images embedded, the notebook has {images}")
    for page in sorted(out.glob("*.html")):
        for target in _HREF.findall(page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("//"):
                continue  # http:, https:, data:, mailto:, ... are not local files
            if not (page.parent / target).is_file():
                problems.append(f"{page.name}: link to {target} does not resolve")
    return problems
