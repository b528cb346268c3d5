"""scripts/test_lanes.py: the lanes cover every test file exactly once, the browser runs
alone, and their closing lines add up."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("test_lanes", REPO / "scripts" / "test_lanes.py")
lanes = importlib.util.module_from_spec(spec)
spec.loader.exec_module(lanes)


def test_every_lane_path_exists():
    missing = [p for paths in lanes.LANES.values() for p in paths if not (REPO / p).exists()]
    assert not missing, missing
    in_phases = [lane for phase in lanes.PHASES for slot in phase for lane in slot]
    assert sorted(in_phases) == sorted(["unit", *lanes.LANES])  # each lane once


def test_nothing_runs_beside_the_browser_the_ranks_or_the_unit_lanes_subprocesses():
    """The memory budget's rules: JupyterLab and Chromium alone, and the two torchrun ranks
    alone (each lane in a phase of one slot); the unit lane's pytest never beside the lane of
    tests that start a fresh Python with torch."""
    for phase in lanes.PHASES:
        here = [lane for slot in phase for lane in slot]
        for alone in ("browser", "ranks"):
            if alone in here:
                assert len(phase) == 1, phase
        slot_of = {lane: i for i, slot in enumerate(phase) for lane in slot}
        if "unit" in slot_of and "cli" in slot_of:
            assert slot_of["unit"] == slot_of["cli"], phase


def _files(paths):
    out = set()
    for p in paths:
        p = REPO / p
        out |= {f for f in p.rglob("test_*.py")} if p.is_dir() else {p}
    return {f.relative_to(REPO).as_posix() for f in out if "student" not in f.parts}


def test_the_lanes_split_the_test_files():
    commands = lanes.lane_commands([])
    ignored = {a.split("=", 1)[1] for a in commands["unit"] if a.startswith("--ignore=")}
    per_lane = {"unit": _files(["tests"]) - _files(ignored)}
    for name, paths in lanes.LANES.items():
        per_lane[name] = _files(a for a in commands[name] if a in paths)
    everything = _files(["tests"])
    assert sum(map(len, per_lane.values())) == len(everything)  # no file in two lanes
    assert set().union(*per_lane.values()) == everything
    assert "tests/core/test_ddp.py" in per_lane["ranks"]
    assert "tests/core/test_train_runs.py" in per_lane["ranks"]
    assert "tests/core/test_cli.py" in per_lane["cli"]
    assert "tests/browser/test_sam_click.py" in per_lane["browser"]
    assert "tests/core/test_lab_script.py" in per_lane["cli"]
    assert set(lanes.LANE_ENV) <= set(lanes.LANES)
    assert "tests/dense/test_flow.py" in per_lane["unit"]
    assert "--nbval" in commands["lessons"] and "lessons" in commands["lessons"]
    for name in ("unit", "cli", "students", "ranks", "browser"):
        assert "--nbval" not in commands[name], name


def test_the_kernel_lanes_collect_without_torch():
    """Their drivers stay small: nothing they import at collection loads torch."""
    for name in lanes.KERNEL_LANES:
        paths = lanes.LANES[name]
        code = ("import sys, pytest; pytest.main(['-q', '--collect-only', '-p', 'no:cacheprovider',"
                f" *{[p for p in paths if p != 'lessons']!r}]);"
                " print('TORCH', 'torch' in sys.modules)")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             cwd=REPO, timeout=300)
        assert "TORCH False" in out.stdout, (name, out.stdout[-2000:])


@pytest.mark.parametrize("line, counts", [
    ("==== 3 passed, 1 skipped in 2.0s ====", {"passed": 3, "skipped": 1}),
    ("== 2 failed, 10 passed, 1 error in 9.1s ==", {"failed": 2, "passed": 10, "errors": 1}),
    ("45 passed, 367 deselected in 13.70s", {"passed": 45}),
    ("", {}),
])
def test_summary_counts_by_hand(line, counts):
    assert lanes.summary_counts(line) == counts


def _two_lane_run(tmp_path, unit_test: str, students_test: str, lane_env: dict | None = None):
    """scripts/test_lanes.py on a folder with one test file per lane (unit: tests/, students:
    lessons/), the two lanes side by side; the finished process."""
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_unit.py").write_text(unit_test)
    (tmp_path / "lessons").mkdir()
    (tmp_path / "lessons" / "test_students.py").write_text(students_test)
    code = (f"import sys; sys.path.insert(0, {str(REPO / 'scripts')!r}); import test_lanes as t;"
            f" t.ROOT = __import__('pathlib').Path({str(tmp_path)!r});"
            " t.LANES = {'students': ('lessons',)}; t.NBVAL = [];"
            f" t.LANE_ENV = {lane_env or {}!r};"
            " t.PHASES = ((('unit',), ('students',)),);"
            " sys.exit(t.run(['-q']))")
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)


def test_a_failing_lane_fails_the_run(tmp_path):
    """A one-test suite per lane: the failure's status comes back, and the totals add up."""
    out = _two_lane_run(tmp_path, "def test_ok():\n    pass\n",
                        "def test_bad():\n    assert False\n")
    assert out.returncode == 1, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "tests: 1 passed, 1 failed, 0 skipped"
    assert "[students]" in out.stdout and "[    unit]" in out.stdout


def test_named_paths_pick_out_test_arguments():
    assert lanes.named_paths(["-x", "tests/dense", "-k", "warp"]) == ["tests/dense"]
    assert lanes.named_paths(["tests/core/test_seed.py::test_x", "--durations=5"]) == [
        "tests/core/test_seed.py::test_x"]
    assert lanes.named_paths(["-x", "-k", "not slow", "no/such/dir"]) == []


def test_stall_report_names_dumps_and_drops_empty_files(tmp_path):
    (tmp_path / "kernel-1.txt").write_text("")
    (tmp_path / "kernel-2.txt").write_text("Thread 0x1 (most recent call first):\n")
    assert lanes.stall_report(str(tmp_path)) == [
        f"==> a notebook kernel ran past the stall watch; its stacks: {tmp_path / 'kernel-2.txt'}"]
    assert sorted(f.name for f in tmp_path.iterdir()) == ["kernel-2.txt"]
    assert lanes.stall_report(None) == [] and lanes.stall_report(str(tmp_path / "no")) == []


def test_a_lane_gets_its_own_environment(tmp_path):
    """LANE_ENV reaches that lane's tests (and their kernels), and no other lane's."""
    out = _two_lane_run(
        tmp_path, "import os\ndef test_plain():\n    assert 'LANE_MARK' not in os.environ\n",
        "import os\ndef test_marked():\n    assert os.environ['LANE_MARK'] == 'yes'\n",
        lane_env={"students": {"LANE_MARK": "yes"}})
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stdout.strip().splitlines()[-1] == "tests: 2 passed, 0 failed, 0 skipped"
