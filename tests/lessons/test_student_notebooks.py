"""A student who has not done the exercises yet can still run the whole lesson.

Each lesson's student version (solutions replaced by ``raise NotImplementedError``, as
``coursekit student`` writes it) is executed from a fresh kernel: no cell may fail, and
every exercise's check must print its ❌ "not implemented yet" verdict instead of crashing.
"""

from pathlib import Path

import nbformat
import pytest

from coursekit.exercises.student import solution_blocks, student_version

LESSONS = Path(__file__).resolve().parents[2] / "lessons"


def _has_exercises(path: Path) -> bool:
    cells = nbformat.read(path, as_version=4).cells
    return any(solution_blocks(c.source) for c in cells if c.cell_type == "code")


WITH_EXERCISES = [p for p in sorted(LESSONS.glob("[0-9][0-9]_*.ipynb")) if _has_exercises(p)]


@pytest.mark.slow
@pytest.mark.parametrize("path", WITH_EXERCISES, ids=lambda p: p.name)
def test_student_version_runs_and_says_not_implemented(path):
    from coursekit.exercises.kernel import notebook_client

    lesson = nbformat.read(path, as_version=4)
    exercises = sum(len(solution_blocks(c.source)) for c in lesson.cells if c.cell_type == "code")
    nb = student_version(lesson)
    notebook_client(nb, timeout=300, path=str(LESSONS), allow_errors=True).execute()
    errors = [f"cell {i}: {o['ename']}: {o['evalue'][:200]}" for i, c in enumerate(nb.cells)
              for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, f"{path.name} student version fails: {errors}"
    stdout = "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", [])
                     if o.get("name") == "stdout")
    verdicts = [line for line in stdout.splitlines()
                if line.startswith("❌") and "not implemented yet" in line]
    assert len(verdicts) >= exercises, (
        f"{path.name}: {exercises} exercises but {len(verdicts)} 'not implemented' verdicts")
