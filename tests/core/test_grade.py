"""coursekit grade: a report card from a student's notebooks, never touching their files.

On a real lesson: tests/browser/test_new_user.py solves lesson 03 in JupyterLab and grades it
(all passed); tests/lessons/test_student_notebooks.py runs every untouched student version
(every check "not implemented yet")."""

import json

import nbformat
import pytest

from coursekit.cli import main
from coursekit.exercises.grade import grade, grade_notebook, report_card

CHECK = '''from coursekit.exercises.verdict import report, run_student


def check_double(fn):
    got, err = run_student(fn, 3)
    if err:
        return report(False, err, "write your function")
    return report(got == 6, f"double(3) = {got} (expected 6)", "multiply by 2")'''


def _notebook(tmp_path, cells, name="01_demo.ipynb"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(CHECK)] + [nbformat.v4.new_code_cell(c) for c in cells]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def test_each_status_by_hand(tmp_path):
    path = _notebook(tmp_path, [
        "def good(x):\n    return 2 * x\n\n\ncheck_double(good);",
        "def bad(x):\n    return x + 2\n\n\ncheck_double(bad);",
        "def todo(x):\n    raise NotImplementedError('exercise')\n\n\ncheck_double(todo);",
        "raise NotImplementedError('exercise: write your solution here')\ncheck_double(good);",
        "1 / 0\ncheck_double(good);",
    ])
    before = path.read_bytes()
    results = grade_notebook(path, timeout=120)
    assert path.read_bytes() == before  # the student's file is never written
    assert [r["status"] for r in results] == [
        "passed", "failed", "not attempted", "not attempted", "failed"]
    assert {r["check"] for r in results} == {"check_double"}
    assert results[1]["hint"] == "multiply by 2"
    assert "ZeroDivisionError" in results[4]["hint"]
    assert [r["cell"] for r in results] == ["1", "2", "3", "4", "5"]


def test_time_limit_marks_the_rest_not_run(tmp_path):
    path = _notebook(tmp_path, ["import time\ntime.sleep(4)",
                                "check_double(lambda x: 2 * x);"])
    results = grade_notebook(path, timeout=1)
    assert [r["status"] for r in results] == ["not run"]


def test_report_card_and_cli_json(tmp_path, capsys):
    _notebook(tmp_path, ["check_double(lambda x: 2 * x);"], name="01_a.ipynb")
    _notebook(tmp_path, ["check_double(lambda x: x);"], name="02_b.ipynb")
    assert main(["grade", str(tmp_path), "--json", "--timeout", "120"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert [(r["lesson"], r["status"]) for r in results] == [("01_a", "passed"),
                                                             ("02_b", "failed")]
    card = report_card(results)
    assert "01_a                         1 exercises: 1 passed, 0 failed" in card
    assert card.splitlines()[-1].startswith("total                        2 exercises: "
                                            "1 passed, 1 failed, 0 not attempted, 0 not run")


@pytest.mark.parametrize("paths, match", [
    ("no_such.ipynb", "paths must name .ipynb notebooks"),
    (".", "no NN_name.ipynb notebooks"),
])
def test_bad_paths(tmp_path, monkeypatch, paths, match):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=match):
        grade(paths)


def test_bad_timeout(tmp_path):
    path = _notebook(tmp_path, [])
    with pytest.raises(ValueError, match="timeout"):
        grade_notebook(path, timeout=0)


def test_cli_bad_path_is_a_clear_error(tmp_path, capsys):
    assert main(["grade", str(tmp_path / "missing.ipynb")]) == 2
    assert "paths must name" in capsys.readouterr().err
