"""Write the students' versions of the lessons: solutions out, checks kept.

Lines between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` (nbgrader's
markers) become ``raise NotImplementedError("exercise: ...")`` at the same
indentation, and outputs are cleared. A student's work is never overwritten:
a notebook is (re)written only when it does not exist or its cells are
unchanged since it was generated; ``force=True`` replaces it but first keeps a
timestamped backup.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import shutil
import time
from pathlib import Path

import nbformat

BEGIN = "### BEGIN SOLUTION"
END = "### END SOLUTION"
STUB = 'raise NotImplementedError("exercise: write your solution here")'


def strip_solutions(source: str) -> str:
    """Replace each solution block in one cell's source by a stub."""
    if not isinstance(source, str):
        raise TypeError(f"source must be a str (a cell's source), got {type(source).__name__}")
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped.startswith(BEGIN):
            if inside:
                raise ValueError(f"nested {BEGIN!r} in cell:\n{source}")
            inside = True
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}{STUB}")
        elif stripped.startswith(END):
            if not inside:
                raise ValueError(f"{END!r} without {BEGIN!r} in cell:\n{source}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN!r} without {END!r} in cell:\n{source}")
    return "\n".join(out)


def cells_digest(nb) -> str:
    """sha256 of the cells' types and sources: what a student would change."""
    payload = json.dumps([[c["cell_type"], "".join(c["source"])] for c in nb.cells])
    return hashlib.sha256(payload.encode()).hexdigest()


def student_version(nb):
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = strip_solutions(cell.source)
            cell.outputs = []
            cell.execution_count = None
    nb.metadata["coursekit"] = {"student": True, "generated_sha256": cells_digest(nb)}
    return nb


def write_student_notebooks(
    lessons: Path, out: Path | None = None, force: bool = False
) -> list[str]:
    """Write ``out/NN_name.ipynb`` for each lesson; one line per notebook says what happened.

    ``lessons`` must be an existing folder (``ValueError`` otherwise); ``force`` a bool.
    A replaced notebook's backup gets a fresh name, never overwriting an older backup.
    """
    if not isinstance(force, bool):
        raise TypeError(f"force must be a bool, got {force!r}")
    lessons = Path(lessons)
    if not lessons.is_dir():
        raise ValueError(f"lessons must be a folder of NN_name.ipynb lessons, got {str(lessons)!r}")
    out = Path(out) if out is not None else lessons / "student"
    out.mkdir(parents=True, exist_ok=True)
    lines = []
    for path in sorted(lessons.glob("[0-9][0-9]_*.ipynb")):
        target = out / path.name
        new = student_version(nbformat.read(path, as_version=4))
        if target.exists():
            old = nbformat.read(target, as_version=4)
            generated = old.metadata.get("coursekit", {}).get("generated_sha256")
            if cells_digest(old) == cells_digest(new):
                lines.append(f"up to date   {target}")
                continue
            if generated != cells_digest(old):  # the student changed it
                if not force:
                    lines.append(f"kept (yours) {target}  (changed since generated; "
                                 f"--force backs it up and replaces it)")
                    continue
                stamp = time.strftime("%Y%m%d-%H%M%S")
                backup = target.with_name(f"{target.stem}.backup-{stamp}{target.suffix}")
                k = 1
                while backup.exists():  # two backups within one second: keep both
                    backup = target.with_name(f"{target.stem}.backup-{stamp}-{k}{target.suffix}")
                    k += 1
                shutil.copy2(target, backup)
                lines.append(f"backed up    {target} -> {backup.name}")
        nbformat.write(new, target)
        lines.append(f"wrote        {target}")
    return lines


def solution_blocks(source: str) -> list[str]:
    """The solution blocks of a cell (for tests)."""
    return re.findall(rf"{re.escape(BEGIN)}(.*?){re.escape(END)}", source, flags=re.S)
