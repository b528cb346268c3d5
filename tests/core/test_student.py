import time

import nbformat
import pytest

from coursekit.exercises.student import strip_solutions, write_student_notebooks


def _lesson(folder, body="    return x + 1"):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Lesson"),
                nbformat.v4.new_code_cell(f"def f(x):\n    ### BEGIN SOLUTION\n{body}\n"
                                          "    ### END SOLUTION\ncheck_f(f)")]
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="✅ correct\n")]
    nbformat.write(nb, folder / "01_demo.ipynb")


def test_writes_stub_and_clears_outputs(tmp_path):
    _lesson(tmp_path)
    lines = write_student_notebooks(tmp_path)
    assert lines[0].startswith("wrote")
    nb = nbformat.read(tmp_path / "student" / "01_demo.ipynb", as_version=4)
    code = nb.cells[1]
    assert "return x + 1" not in code.source
    assert 'raise NotImplementedError("exercise' in code.source and "check_f(f)" in code.source
    assert code.outputs == []


def test_never_overwrites_student_work(tmp_path):
    _lesson(tmp_path)
    write_student_notebooks(tmp_path)
    target = tmp_path / "student" / "01_demo.ipynb"
    nb = nbformat.read(target, as_version=4)
    nb.cells[1].source = nb.cells[1].source.replace(
        "raise NotImplementedError", "return x + 1  # mine\n    raise NotImplementedError")
    nbformat.write(nb, target)
    mine = target.read_text()
    _lesson(tmp_path, body="    return 1 + x")  # the teacher changes the lesson
    lines = write_student_notebooks(tmp_path)
    assert lines[0].startswith("kept (yours)")
    assert target.read_text() == mine
    lines = write_student_notebooks(tmp_path, force=True)
    assert lines[0].startswith("backed up") and lines[1].startswith("wrote")
    backups = list((tmp_path / "student").glob("01_demo.backup-*.ipynb"))
    assert len(backups) == 1 and backups[0].read_text() == mine


def test_unchanged_generated_notebook_is_refreshed(tmp_path):
    _lesson(tmp_path)
    write_student_notebooks(tmp_path)
    assert write_student_notebooks(tmp_path)[0].startswith("up to date")
    _lesson(tmp_path, body="    return 1 + x")
    # the student's copy is untouched since generated and the stub text is the same: nothing to do
    assert write_student_notebooks(tmp_path)[0].startswith("up to date")
    nb = nbformat.read(tmp_path / "01_demo.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_markdown_cell("new text"))
    nbformat.write(nb, tmp_path / "01_demo.ipynb")
    assert write_student_notebooks(tmp_path)[0].startswith("wrote")


def test_two_forced_replacements_keep_both_backups(tmp_path, monkeypatch):
    monkeypatch.setattr(time, "strftime", lambda fmt: "20250101-120000")  # the same second
    _lesson(tmp_path)
    write_student_notebooks(tmp_path)
    target = tmp_path / "student" / "01_demo.ipynb"
    for k, body in enumerate(["    return 1 + x", "    return x + 2"]):
        nb = nbformat.read(target, as_version=4)
        nb.cells[1].source += f"\n# mine {k}"
        nbformat.write(nb, target)
        _lesson(tmp_path, body=body)
        lines = write_student_notebooks(tmp_path, force=True)
        assert lines[0].startswith("backed up")
    backups = sorted((tmp_path / "student").glob("01_demo.backup-*.ipynb"))
    assert [b.name for b in backups] == ["01_demo.backup-20250101-120000-1.ipynb",
                                         "01_demo.backup-20250101-120000.ipynb"]
    assert "# mine 0" in backups[1].read_text() and "# mine 1" in backups[0].read_text()


def test_bad_markers_name_the_problem(tmp_path):
    _lesson(tmp_path, body="    ### BEGIN SOLUTION")
    with pytest.raises(ValueError, match="nested"):
        write_student_notebooks(tmp_path)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="lessons must be a folder of NN_name.ipynb lessons"):
        write_student_notebooks(tmp_path / "missing")
    with pytest.raises(TypeError, match="force must be a bool, got 'yes'"):
        write_student_notebooks(tmp_path, force="yes")
    with pytest.raises(TypeError, match=r"source must be a str \(a cell's source\), got list"):
        strip_solutions(["def f(x):"])
