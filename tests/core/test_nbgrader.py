"""The lessons as an nbgrader course: split cells, metadata, and a real generate + autograde."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.exercises.nbgrader import (
    nbgrader_source,
    split_answer_and_check,
    write_nbgrader_course,
)

LESSONS = Path(__file__).resolve().parents[2] / "lessons"

CELL = """def my_fn(x):
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION


ok = check_double(my_fn)
print(ok)"""


def test_split_by_hand():
    answer, check = split_answer_and_check(CELL)
    assert answer == "def my_fn(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n" \
                     "    ### END SOLUTION\n"
    assert check == "ok = check_double(my_fn)\nprint(ok)"
    assert split_answer_and_check("x = 1") == ("x = 1", "")


def test_nbgrader_source_marks_and_splits():
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# L"), nbformat.v4.new_code_cell("x = 1"),
                nbformat.v4.new_code_cell(CELL),
                nbformat.v4.new_code_cell("def p():\n    ### BEGIN SOLUTION\n    return 1\n"
                                          "    ### END SOLUTION"),
                nbformat.v4.new_code_cell("y = 2\ncheck_p(p);")]
    nb.cells[2].outputs = [nbformat.v4.new_output("stream", text="✅ correct\n")]
    out = nbgrader_source(nb, "01_demo")
    meta = [c.metadata.get("nbgrader") for c in out.cells]
    assert [m and (m["grade_id"], m["solution"], m["grade"], m.get("points")) for m in meta] == [
        None, None, ("01_demo_1_answer", True, False, None), ("01_demo_1_check", False, True, 1),
        ("01_demo_2_answer", True, False, None), ("01_demo_3_check", False, True, 1)]
    assert all(m["locked"] == m["grade"] for m in meta if m)
    assert out.cells[3].source.startswith("ok = check_double")
    assert all(c.outputs == [] for c in out.cells if c.cell_type == "code")
    assert nb.cells[2].outputs  # the lesson itself is not changed


def test_bad_input():
    with pytest.raises(ValueError, match="lesson must be an id"):
        nbgrader_source(nbformat.v4.new_notebook(), "01 demo")
    with pytest.raises(TypeError, match="source must be a str"):
        split_answer_and_check(None)


def test_report_raises_only_under_nbgrader(monkeypatch, capsys):
    from coursekit.exercises.verdict import report  # (it loads torch: not at collection)

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    assert report(False, "wrong", "hint") is False
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    assert report(True, "fine") is True
    with pytest.raises(AssertionError, match="exercise check failed: wrong"):
        report(False, "wrong", "hint")
    assert capsys.readouterr().out.count("❌ wrong — hint: hint") == 2


@pytest.mark.slow
def test_generate_assignment_and_autograde_lesson_02(tmp_path):
    pytest.importorskip("nbgrader")
    from nbgrader.api import Gradebook

    lessons, course = tmp_path / "lessons", tmp_path / "course"
    lessons.mkdir()
    name = "02_upsampling"  # a light kernel: the cli lane runs beside the student versions
    shutil.copy(LESSONS / f"{name}.ipynb", lessons)
    [source] = write_nbgrader_course(lessons, course)
    checks = sum(bool(c.metadata.get("nbgrader", {}).get("grade"))
                 for c in nbformat.read(source, as_version=4).cells)
    assert checks >= 3

    def nbgrader(*args):
        env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent),
                                                      os.environ.get("PATH", "")]))
        proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env,
                              capture_output=True, text=True, timeout=900)  # (it runs alembic)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    nbgrader("generate_assignment", name, "--force")
    release = course / "release" / name / f"{name}.ipynb"
    assert "### BEGIN SOLUTION" not in release.read_text()
    for student, notebook in (("alice", release), ("bob", source)):  # not done / solved
        target = course / "submitted" / student / name
        target.mkdir(parents=True)
        shutil.copy(notebook, target / f"{name}.ipynb")
    nbgrader("autograde", name, "--force", "--create")
    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        alice = gb.find_submission(name, "alice")
        bob = gb.find_submission(name, "bob")
        assert (alice.score, alice.max_score) == (0, checks)
        assert (bob.score, bob.max_score) == (checks, checks)
