"""``coursekit grade``: run a student's notebooks headless and print a report card.

Each notebook is read, run from a fresh kernel in its own folder (in memory: the student's
files are never written), cell by cell until a time limit per notebook, errors allowed so
that one broken cell does not hide the later exercises. A **grader cell** is a code cell
that calls a ``check_*`` function of ``coursekit.exercises``; its verdict lines (✅ / ❌,
``verdict.report``) give one result per check:

* ``passed`` — the check printed ✅;
* ``not attempted`` — the check said "not implemented yet", or the cell stopped on the
  ``raise NotImplementedError`` that ``coursekit student`` leaves in place of a solution;
* ``failed`` — the check printed ❌ (its hint is kept), or the cell raised another error;
* ``not run`` — the notebook hit its time limit before the cell.

``grade(paths, timeout=300.0)`` returns one dict per exercise: ``{"lesson", "cell", "check",
"status", "hint"}``; ``report_card(results)`` formats them as a table with a summary per
lesson; ``coursekit grade --json`` prints the dicts for a class's spreadsheet.

Tested in tests/core/test_grade.py.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat

__all__ = ["STATUSES", "grade", "grade_notebook", "report_card"]

STATUSES = ("passed", "failed", "not attempted", "not run")
_CHECK = re.compile(r"(?<!def )\b(check_\w+)\s*\(")  # a call, not a definition
_NOT_DONE = "not implemented yet"


def _notebooks(paths: str | os.PathLike | list[str | os.PathLike]) -> list[Path]:
    items = [paths] if isinstance(paths, str | os.PathLike) else list(paths)
    out: list[Path] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            found = sorted(path.glob("[0-9][0-9]_*.ipynb"))
            if not found:
                raise ValueError(f"paths: no NN_name.ipynb notebooks in the folder {str(path)!r}")
            out += found
        elif path.suffix == ".ipynb" and path.is_file():
            out.append(path)
        else:
            raise ValueError(f"paths must name .ipynb notebooks or folders of them, got "
                             f"{str(path)!r} (missing, or not a notebook)")
    return out


def _stdout(cell) -> str:
    return "".join(o.get("text", "") for o in cell.get("outputs", [])
                   if o.get("output_type") == "stream" and o.get("name") == "stdout")


def _error(cell) -> tuple[str, str] | None:
    for o in cell.get("outputs", []):
        if o.get("output_type") == "error":
            return o.get("ename", ""), o.get("evalue", "")
    return None


def _results_of_cell(lesson: str, index: int, cell, ran: bool) -> list[dict[str, str]]:
    checks = _CHECK.findall(cell.source)
    base = {"lesson": lesson, "cell": str(index)}
    if not ran:
        return [{**base, "check": c, "status": "not run", "hint": "time limit reached"}
                for c in checks]
    verdicts = [line for line in _stdout(cell).splitlines() if line[:1] in ("✅", "❌")]
    results = []
    for k, check in enumerate(checks):
        if k < len(verdicts):
            line = verdicts[k]
            if line.startswith("✅"):
                status, hint = "passed", ""
            elif _NOT_DONE in line:
                status, hint = "not attempted", ""
            else:
                status = "failed"
                hint = line.split(" — hint: ", 1)[1] if " — hint: " in line else line[1:].strip()
        else:  # the cell stopped before this check spoke
            error = _error(cell)
            if error is not None and error[0] == "NotImplementedError":
                status, hint = "not attempted", ""
            elif error is not None:
                status, hint = "failed", f"the cell raised {error[0]}: {error[1][:200]}"
            else:
                status, hint = "failed", "the check printed no verdict"
        results.append({**base, "check": check, "status": status, "hint": hint})
    return results


def grade_notebook(path: str | os.PathLike, timeout: float = 300.0,
                   kernel_name: str = "python3") -> list[dict[str, str]]:
    """Run one notebook (never written back) and return one result per exercise check."""
    from coursekit.exercises.kernel import notebook_client

    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise ValueError(f"timeout must be a positive number of seconds, got {timeout!r}")
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = notebook_client(nb, timeout=int(timeout) + 1, path=str(path.parent.resolve()),
                             kernel_name=kernel_name, allow_errors=True)
    start, ran = time.monotonic(), set()
    with client.setup_kernel():
        for index, cell in enumerate(nb.cells):
            if cell.cell_type != "code":
                continue
            if time.monotonic() - start > timeout:
                break
            try:
                client.execute_cell(cell, index)
            except Exception:  # noqa: BLE001 - a cell timing out counts as not run
                break
            ran.add(index)
    results = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code" and _CHECK.search(cell.source):
            results += _results_of_cell(path.stem, index, cell, index in ran)
    return results


def grade(paths: str | os.PathLike | list[str | os.PathLike], timeout: float = 300.0,
          kernel_name: str = "python3") -> list[dict[str, str]]:
    """Grade notebooks (files, or folders of ``NN_name.ipynb``): one dict per exercise check."""
    results: list[dict[str, str]] = []
    for path in _notebooks(paths):
        results += grade_notebook(path, timeout=timeout, kernel_name=kernel_name)
    return results


def report_card(results: list[dict[str, str]]) -> str:
    """A text table: one line per check, then a summary line per lesson and in total."""
    mark = {"passed": "✅", "failed": "❌", "not attempted": "·", "not run": "⏱"}
    lines = [f"{'lesson':<28} {'exercise':<34} {'status':<14} hint"]
    for r in results:
        lines.append(f"{r['lesson']:<28} {r['check']:<34} {mark[r['status']]} "
                     f"{r['status']:<12} {r['hint']}".rstrip())
    lines.append("")
    lessons = list(dict.fromkeys(r["lesson"] for r in results))
    for lesson in [*lessons, None]:
        rows = [r for r in results if lesson is None or r["lesson"] == lesson]
        counts = ", ".join(f"{sum(r['status'] == s for r in rows)} {s}" for s in STATUSES)
        lines.append(f"{lesson or 'total':<28} {len(rows)} exercises: {counts}")
    return "\n".join(lines)
