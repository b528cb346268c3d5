"""``coursekit train`` writes a run folder and never the shipped checkpoints.

The reviewer's reproduction: ``coursekit train unet --quick`` (a smoke test) replaced
``data/checkpoints/unet.pt`` and its manifest entry, under ``torchrun`` too. These tests
train the cheapest models quickly in a temporary working directory, so the repository's
``runs/`` stays untouched, and compare the sha256 of every shipped file before and after.
"""

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from coursekit import cli
from coursekit.checkpoints import checkpoint_dir, load_pretrained, read_manifest, sha256_file

REPO = Path(__file__).resolve().parents[2]


def shipped_digests() -> dict[str, str]:
    """sha256 of every file below the shipped checkpoint folder (backups included)."""
    root = checkpoint_dir().resolve()
    return {str(p.relative_to(root)): sha256_file(p)
            for p in sorted(root.rglob("*")) if p.is_file()}


def files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture
def in_tmp_cwd(tmp_path, monkeypatch):
    """Run in an empty temporary directory; PYTHONHASHSEED restored (seed_everything sets it)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONHASHSEED", os.environ.get("PYTHONHASHSEED", "0"))
    repo_runs = (REPO / "runs").exists()
    before = shipped_digests()
    yield tmp_path
    assert shipped_digests() == before, "data/checkpoints changed"
    assert (REPO / "runs").exists() == repo_runs, "the repository's runs/ was written"


def test_quick_train_writes_runs_name_and_leaves_the_shipped_checkpoints_alone(in_tmp_cwd, capsys):
    shipped_unet = read_manifest()["unet"]
    assert cli.main(["train", "unet", "--quick"]) == 0
    out = capsys.readouterr().out
    run = in_tmp_cwd / "runs" / "unet"
    assert sorted(p.name for p in in_tmp_cwd.rglob("*") if p.is_file()) == [
        "manifest.json", "unet.pt"]
    entry = read_manifest(run)["unet"]
    assert entry["quick"] is True and entry["seed"] == 0 and entry["file"] == "unet.pt"
    assert entry["sha256"] == sha256_file(run / "unet.pt") != shipped_unet["sha256"]
    assert entry["size"] == (run / "unet.pt").stat().st_size
    assert set(entry["metrics"]) == {"miou", "pixel_acc"}
    assert read_manifest()["unet"] == shipped_unet
    assert out.count("trained unet: miou=") == 1
    assert "wrote runs/unet/unet.pt and its entry in runs/unet/manifest.json" in out
    assert "install-checkpoint refuses it" in out
    checkpoint = load_pretrained("unet", directory=run)  # sha256-checked, weights_only
    assert checkpoint["history"]["steps"] == 3 and checkpoint["history"]["world_size"] == 1

    # installing a smoke test is refused, and says why
    assert cli.main(["install-checkpoint", "runs/unet"]) == 2
    err = capsys.readouterr().err
    assert "refusing to install" in err and "--quick run" in err
    assert read_manifest()["unet"] == shipped_unet


def test_out_dir_is_the_run_folder_and_the_shipped_one_is_refused(in_tmp_cwd, capsys):
    assert cli.main(["train", "unet", "--quick", "--out", str(checkpoint_dir())]) == 2
    assert "not the shipped checkpoint folder" in capsys.readouterr().err
    assert not (in_tmp_cwd / "runs").exists()


def _partial_then_fail(obj, handle):
    handle.write(b"PK\x03\x04 half a zip")
    raise OSError("no space left on device")


def test_a_save_that_fails_midway_leaves_the_previous_run_intact(in_tmp_cwd, monkeypatch):
    from coursekit import checkpoints
    from coursekit.segmentation.train import train_unet

    run = in_tmp_cwd / "runs" / "unet"
    checkpoints.save_pretrained("unet", {"model": {}}, command="earlier", seed=1,
                                directory=run, quick=True)
    before = files(run)
    monkeypatch.setattr(checkpoints.torch, "save", _partial_then_fail)
    with pytest.raises(OSError, match="no space left"):
        train_unet(None, 0, True)  # None: the default run folder, runs/unet
    assert files(run) == before  # no half-written unet.pt, no .tmp, manifest unchanged
    assert read_manifest(run)["unet"]["command"] == "earlier"


@pytest.mark.parametrize("name", ["fcn", "unet", "depth", "flow", "maskrcnn", "sam"])
def test_an_interrupted_training_writes_no_checkpoint(name, in_tmp_cwd, monkeypatch):
    """Ctrl-C during training: the run folder gets no checkpoint and no manifest entry."""
    import coursekit.dense.train
    import coursekit.train
    from coursekit.registry import TRAINERS

    calls = []

    def interrupted_fit(model, batch_fn, loss_fn, **kwargs):
        calls.append(kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(coursekit.train, "fit", interrupted_fit)
    monkeypatch.setattr(coursekit.dense.train, "fit", interrupted_fit)
    with pytest.raises(KeyboardInterrupt):
        cli._resolve(TRAINERS[name])(None, 0, False)
    assert len(calls) == 1
    state = calls[0].get("state_path")
    if state is not None:  # resumable state lives in the run folder, not in /tmp
        assert Path(state).parent == in_tmp_cwd / "runs" / name
    assert [p for p in in_tmp_cwd.rglob("*") if p.is_file()] == []


# --- torchrun: only rank 0 writes and reports ---------------------------------------------

# Imported by each rank (PYTHONPATH): an audit hook logs every file a rank opens for writing
# below WATCH, into LOG.<rank>, so the test sees which rank wrote what.
WRITE_LOGGER = '''
import os, sys
_WATCH, _LOG = os.environ["CK_WATCH"], os.environ["CK_LOG"]
_WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT

def _hook(event, args):
    if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
        return
    path = os.path.abspath(os.fsdecode(args[0]))
    flags = args[2] if isinstance(args[2], int) else 0
    if path.startswith(_WATCH) and flags & _WRITE:
        with open(f"{_LOG}.{os.environ.get('RANK', '-')}", "a") as log:
            log.write(path + "\\n")

sys.addaudithook(_hook)
'''


@pytest.mark.slow
def test_torchrun_two_ranks_write_and_report_once(tmp_path):
    pytest.importorskip("torch.distributed.run")
    hook = tmp_path / "hook"
    hook.mkdir()
    (hook / "sitecustomize.py").write_text(textwrap.dedent(WRITE_LOGGER))
    work, out = tmp_path / "work", tmp_path / "work" / "smoke"
    work.mkdir()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TQDM_DISABLE": "1", "CUDA_VISIBLE_DEVICES": "",
           "COURSEKIT_DEVICE": "cpu", "PYTHONPATH": os.pathsep.join([str(hook), str(REPO)]),
           "CK_WATCH": str(tmp_path / "work"), "CK_LOG": str(tmp_path / "writes")}
    before = shipped_digests()
    start = time.perf_counter()
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               "--nproc_per_node", "2", "-m", "coursekit.cli",
               "train", "unet", "--quick", "--out", str(out)]
    proc = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - start
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert shipped_digests() == before, "data/checkpoints changed"
    assert proc.stdout.count("trained unet: miou=") == 1, proc.stdout  # only rank 0 reports
    assert proc.stdout.count("wrote ") == 1, proc.stdout
    # one set of files, all written by rank 0
    assert sorted(p.name for p in work.rglob("*") if p.is_file()) == ["manifest.json", "unet.pt"]
    logs = sorted(p.name for p in tmp_path.glob("writes.*"))
    assert logs == ["writes.0"], logs
    written = [Path(line) for line in (tmp_path / "writes.0").read_text().splitlines()]
    assert written and all(p.parent == out for p in written), written
    names = [p.name for p in written]  # temporary files, renamed over the final names
    assert any(n.startswith(".unet.pt.") for n in names), names
    assert any(n.startswith(".manifest.json.") for n in names), names
    checkpoint = load_pretrained("unet", directory=out)
    assert checkpoint["history"]["world_size"] == 2  # it really ran on two ranks
    assert read_manifest(out)["unet"]["quick"] is True
    print(f"torchrun --nproc_per_node 2 quick unet: {seconds:.1f} s")
