import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from coursekit import cli
from coursekit.bench import format_table, time_call
from coursekit.checkpoints import ENV_VAR, save_pretrained
from coursekit.registry import BENCHES

REPO = Path(__file__).resolve().parents[2]


def test_doctor_reports(capsys):
    code = cli.main(["doctor"])
    out = capsys.readouterr().out
    assert "torch" in out and "device" in out and "checkpoints" in out and "lessons" in out
    assert code == 0, out


def test_doctor_names_models_not_trained_yet(capsys, monkeypatch):
    monkeypatch.setitem(cli.TRAINERS, "not-trained-model", "coursekit.segmentation.train:train_fcn")
    assert cli.main(["doctor"]) == 0  # a missing checkpoint is a note, not a failure
    out = capsys.readouterr().out
    assert "missing   not-trained-model" in out and "coursekit train not-trained-model" in out
    assert "coursekit install-checkpoint runs/not-trained-model" in out


def test_train_unknown_name(capsys):
    assert cli.main(["train", "no-such-model"]) == 2
    assert "unknown model 'no-such-model'" in capsys.readouterr().err


def test_train_help_documents_run_folders_and_install(capsys):
    with pytest.raises(SystemExit):
        cli.main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "runs/NAME under the current directory" in text
    assert "never touched" in text and "coursekit install-checkpoint runs/NAME" in text
    with pytest.raises(SystemExit):
        cli.main(["install-checkpoint", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "data/checkpoints/backup/NAME-<timestamp>.pt" in text and "--quick run" in text


def _fake_run(directory, quick):
    model = torch.nn.Linear(2, 1)
    return save_pretrained("tiny", {"model": model.state_dict()}, command="coursekit train tiny",
                           seed=0, metrics={"acc": 0.5}, directory=directory, quick=quick)


def test_install_checkpoint_command(tmp_path, monkeypatch, capsys):
    shipped = tmp_path / "shipped"
    monkeypatch.setenv(ENV_VAR, str(shipped))
    torch.manual_seed(1)
    old = _fake_run(tmp_path / "old", quick=False)
    assert cli.main(["install-checkpoint", str(old.parent)]) == 0  # the first one: no backup
    first = capsys.readouterr().out
    assert f"installed tiny: {shipped / 'tiny.pt'}" in first and "acc=0.5000" in first
    assert "previous" not in first
    torch.manual_seed(2)
    new = _fake_run(tmp_path / "new", quick=False)
    assert cli.main(["install-checkpoint", str(new.parent), "--name", "tiny"]) == 0
    out = capsys.readouterr().out
    assert "previous checkpoint kept in" in out and "previous manifest entry kept in" in out
    assert (shipped / "tiny.pt").read_bytes() == new.read_bytes()
    (backup,) = (shipped / "backup").glob("tiny-*.pt")
    assert backup.read_bytes() == old.read_bytes()


def test_install_checkpoint_command_refuses(tmp_path, monkeypatch, capsys):
    shipped = tmp_path / "shipped"
    monkeypatch.setenv(ENV_VAR, str(shipped))
    quick = _fake_run(tmp_path / "quick", quick=True)
    assert cli.main(["install-checkpoint", str(quick.parent)]) == 2
    assert "--quick run (a smoke test" in capsys.readouterr().err
    assert cli.main(["install-checkpoint", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert not shipped.exists()


def test_bench_unknown_name(capsys):
    assert cli.main(["bench", "--only", "nope"]) == 2
    assert "unknown benchmark" in capsys.readouterr().err


def test_bench_table_format():
    rows = [{"benchmark": "b", "ours": "1 ms", "reference": "2 ms", "ratio": 0.5, "note": "n"}]
    text = format_table(rows, markdown=True)
    assert text.splitlines()[2] == "| b | 1 ms | 2 ms | 0.50× | n |"
    assert "0.50×" in format_table(rows, markdown=False)


def test_time_call_counts():
    calls = []
    assert time_call(lambda: calls.append(1), repeat=3, warmup=2) >= 0
    assert len(calls) == 5


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "coursekit.cli", "doctor"], capture_output=True,
                         text=True, cwd=REPO)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "status      all good" in out.stdout


def test_missing_subcommand_is_usage_error():
    with pytest.raises(SystemExit):
        cli.main([])


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(BENCHES))
def test_every_registered_bench_runs_quick(name):
    # in a child process: a bench allocates hundreds of MB that the allocator does not give
    # back, and the suite's one pytest process would carry them to the end (memory budget)
    code = ("import json, sys; from coursekit.cli import _resolve; "
            "from coursekit.registry import BENCHES; "
            "print(json.dumps(_resolve(BENCHES[sys.argv[1]])(True), default=str))")
    out = subprocess.run([sys.executable, "-c", code, name], capture_output=True, text=True,
                         cwd=REPO, timeout=900)
    assert out.returncode == 0, out.stderr[-3000:]
    rows = json.loads(out.stdout.strip().splitlines()[-1])
    assert rows, f"bench {name!r} returned no rows"
    for row in rows:
        assert {"benchmark", "ours", "reference", "ratio", "note"} <= set(row), row
        assert row["ratio"] is None or row["ratio"] > 0, row
    assert format_table(rows, markdown=True).count("\n") == len(rows) + 1
