"""Committed lessons: executed in order, outputs kept, no widget state, exercises well formed."""

import json
import re
from pathlib import Path

import pytest

from coursekit.exercises.student import BEGIN, END, solution_blocks, strip_solutions

LESSONS = Path(__file__).resolve().parents[2] / "lessons"
NOTEBOOKS = sorted(LESSONS.glob("[0-9][0-9]_*.ipynb"))


def _load(path):
    return json.loads(path.read_text(encoding="utf-8"))


def test_lessons_folder_holds_only_what_a_student_needs():
    # authoring notes live in docs/, nbval's sanitize file in tests/lessons/
    tracked = {p.name for p in LESSONS.iterdir() if not p.name.startswith(".")}
    extra = tracked - {p.name for p in NOTEBOOKS} - {"student"}
    assert not extra, f"lessons/ should hold only the NN_name.ipynb lessons, found {extra}"


def test_lessons_exist_and_are_numbered():
    assert NOTEBOOKS, "no lessons found"
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(len(numbers))), (
        f"lessons must be numbered 00, 01, ... without gaps: {numbers}")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_executed_in_order_with_outputs(path):
    nb = _load(path)
    code = [c for c in nb["cells"] if c["cell_type"] == "code"]
    counts = [c.get("execution_count") for c in code if c["source"]]
    assert counts, f"{path.name} has no code"
    assert None not in counts, (
        f"{path.name} has unexecuted cells: run scripts/execute_lessons.py {path}")
    assert counts == list(range(1, len(counts) + 1)), (
        f"{path.name} was not executed top to bottom once: {counts}")
    assert any(c.get("outputs") for c in code), f"{path.name} has no outputs"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_widget_state_or_errors(path):
    nb = _load(path)
    assert "widgets" not in nb.get("metadata", {}), (
        f"{path.name} carries widget state (metadata.widgets)")
    kernel = nb["metadata"].get("kernelspec", {}).get("name")
    assert kernel == "python3", f"{path.name} needs kernelspec python3"
    for cell in nb["cells"]:
        for out in cell.get("outputs", []):
            assert out.get("output_type") != "error", f"{path.name} saved with an error output"
            assert "application/vnd.jupyter.widget-state+json" not in out.get("data", {})


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_exercises_are_graded_and_strippable(path):
    nb = _load(path)
    sources = ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]
    blocks = [b for s in sources for b in solution_blocks(s)]
    text = "\n".join(sources)
    assert blocks, f"{path.name} has no exercise ({BEGIN} ... {END})"
    assert re.search(r"check_\w+\(", text), f"{path.name} has no coursekit.exercises check_* call"
    for s in sources:
        stripped = strip_solutions(s)
        assert BEGIN not in stripped and END not in stripped


def test_strip_solutions_hand_case():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return x + 1\n    ### END SOLUTION\ncheck(f)"
    stub = '    raise NotImplementedError("exercise: write your solution here")'
    assert strip_solutions(src) == f"def f(x):\n{stub}\ncheck(f)"


@pytest.mark.parametrize("src, msg", [("### BEGIN SOLUTION\nx", "without"),
                                      ("### END SOLUTION", "without"),
                                      ("### BEGIN SOLUTION\n### BEGIN SOLUTION", "nested")])
def test_strip_solutions_bad_markers(src, msg):
    with pytest.raises(ValueError, match=msg):
        strip_solutions(src)
