"""The lessons as an nbgrader course: ``coursekit nbgrader --out COURSE``.

nbgrader (``pip install coursekit[classroom]``) wants each exercise as two cells: an
**autograded answer** (a solution cell whose ``### BEGIN SOLUTION`` / ``### END SOLUTION``
block it replaces with a stub) and **autograder tests** (a locked cell that fails when the
answer is wrong). Our lessons keep the solution and its ``check_*`` call in one cell, which
reads better and keeps nbval's outputs in place; ``nbgrader_source(nb, lesson)`` splits each
such cell in two at the first line that calls a check, and marks the cells with nbgrader's
metadata (schema 3; one point per check cell, ids ``<lesson>_<k>_answer`` / ``_check``).
``write_nbgrader_course(lessons, course)`` writes ``course/source/NN_name/NN_name.ipynb``
for every lesson plus an ``nbgrader_config.py``: then ``nbgrader generate_assignment``,
``nbgrader autograde`` and the formgrader work as usual.

Under ``nbgrader autograde`` / ``validate`` (the ``NBGRADER_EXECUTION`` environment variable
that nbgrader sets), a check that fails raises ``AssertionError`` after printing its verdict
(``verdict.report``), so the check cell scores 0; in a lesson it only prints.

Tested in tests/core/test_nbgrader.py.
"""

from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import nbformat

from coursekit.exercises.student import BEGIN, END

__all__ = ["nbgrader_source", "split_answer_and_check", "write_nbgrader_course"]

_CHECK_LINE = re.compile(r"^[\w\s,=]*\bcheck_\w+\s*\(")  # a top-level line calling a check
_CHECK = re.compile(r"(?<!def )\bcheck_\w+\s*\(")


def split_answer_and_check(source: str) -> tuple[str, str]:
    """``(answer, check)``: the cell's source before and from the first top-level check call
    after its last solution block. ``check`` is ``""`` when the cell has no such call."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a str (a cell's source), got {type(source).__name__}")
    lines = source.splitlines()
    end = max((i for i, line in enumerate(lines) if line.strip().startswith(END)), default=-1)
    for i in range(end + 1, len(lines)):
        if _CHECK_LINE.match(lines[i]):
            return "\n".join(lines[:i]).rstrip() + "\n", "\n".join(lines[i:])
    return source, ""


def _meta(kind: str, grade_id: str) -> dict:
    base = {"grade_id": grade_id, "schema_version": 3, "task": False}
    if kind == "answer":
        return {**base, "grade": False, "solution": True, "locked": False}
    return {**base, "grade": True, "solution": False, "locked": True, "points": 1}


def nbgrader_source(nb, lesson: str):
    """A copy of lesson ``nb`` in nbgrader's source form (outputs cleared, cells marked)."""
    if not isinstance(lesson, str) or not re.fullmatch(r"[A-Za-z0-9_]+", lesson):
        raise ValueError(f"lesson must be an id of letters, digits and _, got {lesson!r}")
    out = copy.deepcopy(nb)
    cells, k = [], 0
    for cell in out.cells:
        if cell.cell_type != "code":
            cells.append(cell)
            continue
        cell.outputs, cell.execution_count = [], None
        has_answer, has_check = BEGIN in cell.source, bool(_CHECK.search(cell.source))
        if has_answer:
            answer, check = split_answer_and_check(cell.source)
            k += 1
            cell.source = answer
            cell.metadata["nbgrader"] = _meta("answer", f"{lesson}_{k}_answer")
            cells.append(cell)
            if check:
                cells.append(nbformat.v4.new_code_cell(
                    check, metadata={"nbgrader": _meta("check", f"{lesson}_{k}_check")}))
        elif has_check:
            k += 1
            cell.metadata["nbgrader"] = _meta("check", f"{lesson}_{k}_check")
            cells.append(cell)
        else:
            cells.append(cell)
    out.cells = cells
    return out


CONFIG = '''c = get_config()  # noqa: F821 - nbgrader's config loader provides it
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = "sqlite:///" + {db!r}
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.Execute.timeout = 300
# waits in 1 s slices: a lost zmq wakeup otherwise stalls a cell until the timeout
c.AsyncKernelManager.client_class = "coursekit.exercises.kernel.PatientKernelClient"
'''


def write_nbgrader_course(lessons: str | os.PathLike, course: str | os.PathLike) -> list[Path]:
    """Write ``course/source/NN_name/NN_name.ipynb`` for each lesson with exercises, and
    ``course/nbgrader_config.py``; return the notebooks written."""
    lessons, course = Path(lessons), Path(course)
    notebooks = sorted(lessons.glob("[0-9][0-9]_*.ipynb"))
    if not notebooks:
        raise ValueError(f"lessons must be a folder of NN_name.ipynb lessons, got "
                         f"{str(lessons)!r} (none found)")
    written = []
    for path in notebooks:
        nb = nbformat.read(path, as_version=4)
        if not any(c.cell_type == "code" and BEGIN in c.source for c in nb.cells):
            continue
        target = course / "source" / path.stem / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nbgrader_source(nb, path.stem), target)
        written.append(target)
    root = course.resolve()
    (course / "nbgrader_config.py").write_text(
        CONFIG.format(root=str(root), db=str(root / "gradebook.db")))
    return written
