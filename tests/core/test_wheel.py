"""A plain `pip install .` (a wheel, outside the repository) finds the shipped checkpoints."""

import json
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_ships_checkpoints(tmp_path):
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(REPO),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    wheel = next((tmp_path / "dist").glob("coursekit-*.whl"))
    target = tmp_path / "site"
    inst = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        capture_output=True,
        text=True,
    )
    assert inst.returncode == 0, inst.stderr
    manifest = json.loads((REPO / "data" / "checkpoints" / "manifest.json").read_text())
    code = (
        "import json, coursekit.checkpoints as ck; d = ck.checkpoint_dir(); "
        "assert 'site' in str(d), d; m = ck.read_manifest(); [ck.verify(n) for n in m]; "
        "print(json.dumps(sorted(m)))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"},
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == sorted(manifest)
