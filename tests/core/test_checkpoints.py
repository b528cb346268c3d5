import json

import pytest
import torch

from coursekit import checkpoints as ck


def _ckpt():
    model = torch.nn.Linear(3, 2)
    history = {"loss": [1.0, 0.5]}
    return model, {"model": model.state_dict(), "config": {"in": 3, "out": 2}, "history": history}


def _files(directory):
    """{relative path: bytes} of every file below ``directory``."""
    return {str(p.relative_to(directory)): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


def test_round_trip_and_manifest(tmp_path):
    model, ckpt = _ckpt()
    path = ck.save_pretrained("tiny", ckpt, command="coursekit train tiny", seed=0,
                              metrics={"acc": 0.5}, directory=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["tiny"]["sha256"] == ck.sha256_file(path)
    assert manifest["tiny"]["size"] == path.stat().st_size
    assert manifest["tiny"]["metrics"] == {"acc": 0.5}
    assert manifest["tiny"]["quick"] is False
    other = torch.nn.Linear(3, 2)
    ck.load_pretrained("tiny", other, directory=tmp_path)
    x = torch.randn(4, 3)
    torch.testing.assert_close(other(x), model(x))
    loaded = ck.load_pretrained("tiny", directory=tmp_path)
    assert loaded["config"] == {"in": 3, "out": 2}


def test_sha256_file_hand_value(tmp_path):
    path = tmp_path / "abc"
    path.write_bytes(b"abc")
    assert ck.sha256_file(path) == (
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")


def test_quick_flag_is_recorded(tmp_path):
    _, ckpt = _ckpt()
    ck.save_pretrained("tiny", ckpt, command="c", seed=3, directory=tmp_path, quick=True)
    entry = ck.read_manifest(tmp_path)["tiny"]
    assert entry["quick"] is True and entry["seed"] == 3 and entry["command"] == "c"


def test_save_pretrained_needs_a_directory_and_refuses_the_shipped_one(tmp_path, monkeypatch):
    _, ckpt = _ckpt()
    with pytest.raises(TypeError, match="directory"):
        ck.save_pretrained("tiny", ckpt, command="c", seed=0)
    with pytest.raises(TypeError, match="directory must be a path .* got int"):
        ck.save_pretrained("tiny", ckpt, command="c", seed=0, directory=3)
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    monkeypatch.setenv(ck.ENV_VAR, str(shipped))
    with pytest.raises(ValueError, match="not the shipped checkpoint folder.*install-checkpoint"):
        ck.save_pretrained("tiny", ckpt, command="c", seed=0, directory=shipped)
    assert list(shipped.iterdir()) == []


def test_unknown_name_is_clear(tmp_path):
    with pytest.raises(ck.CheckpointError, match="unknown checkpoint name 'nope'.*coursekit train"):
        ck.load_pretrained("nope", directory=tmp_path)


def test_corrupt_file_is_detected_not_loaded(tmp_path):
    _, ckpt = _ckpt()
    path = ck.save_pretrained("tiny", ckpt, command="c", seed=0, directory=tmp_path)
    data = bytearray(path.read_bytes())
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ck.CheckpointError, match=r"tiny\.pt is corrupt or changed: sha256"):
        ck.load_pretrained("tiny", directory=tmp_path)


def test_missing_file(tmp_path):
    _, ckpt = _ckpt()
    path = ck.save_pretrained("tiny", ckpt, command="c", seed=0, directory=tmp_path)
    path.unlink()
    with pytest.raises(ck.CheckpointError, match="is missing"):
        ck.verify("tiny", tmp_path)


def test_weights_only_refuses_code(tmp_path):
    """A checkpoint holding arbitrary Python objects is refused by weights_only=True."""
    import argparse

    _, ckpt = _ckpt()
    ckpt["evil"] = argparse.Namespace(code="anything")
    path = ck.save_pretrained("evil", ckpt, command="c", seed=0, directory=tmp_path)
    assert path.exists()
    with pytest.raises(Exception, match="[Ww]eights only load failed|Unsupported global"):
        ck.load_pretrained("evil", directory=tmp_path)


def _partial_then_interrupt(obj, handle):
    handle.write(b"partial")
    raise KeyboardInterrupt


def test_interrupted_save_keeps_previous(tmp_path, monkeypatch):
    _, ckpt = _ckpt()
    ck.save_pretrained("tiny", ckpt, command="c", seed=0, directory=tmp_path)
    before = _files(tmp_path)
    monkeypatch.setattr(ck.torch, "save", _partial_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        ck.save_pretrained("tiny", ckpt, command="c", seed=1, directory=tmp_path)
    assert _files(tmp_path) == before  # no .tmp left, checkpoint and manifest unchanged
    ck.verify("tiny", tmp_path)


@pytest.mark.parametrize("name", ["", "a b", "../x"])
def test_bad_name(tmp_path, name):
    with pytest.raises(ValueError, match="name must be a short identifier"):
        ck.save_pretrained(name, {}, command="c", seed=0, directory=tmp_path)


def test_bad_argument_types(tmp_path):
    _, ckpt = _ckpt()
    ck.save_pretrained("tiny", ckpt, command="c", seed=0, directory=tmp_path)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        ck.load_pretrained("tiny", model="not a model", directory=tmp_path)
    with pytest.raises(TypeError, match="name must be a str, got int"):
        ck.load_pretrained(3, directory=tmp_path)
    with pytest.raises(TypeError, match="checkpoint must be a dict, got list"):
        ck.save_pretrained("tiny", [], command="c", seed=0, directory=tmp_path)
    with pytest.raises(TypeError, match="run_dir must be a path .* got NoneType"):
        ck.install_checkpoint(None, directory=tmp_path)


def test_shipped_manifest_verifies():
    """Every checkpoint the repository ships matches its manifest entry."""
    for name in ck.read_manifest():
        ck.verify(name)


# --- install_checkpoint: the one way a run replaces a shipped checkpoint -----------------


def _shipped_and_run(tmp_path, *, quick=False, with_previous=True):
    """A shipped folder (``tiny`` and ``other``, or only ``other``) and a run folder of ``tiny``."""
    shipped, run = tmp_path / "shipped", tmp_path / "runs" / "tiny"
    shipped.mkdir()
    torch.manual_seed(1)
    if with_previous:
        ck.save_pretrained("tiny", _ckpt()[1], command="old", seed=0, directory=shipped)
    ck.save_pretrained("other", _ckpt()[1], command="other", seed=0, directory=shipped)
    torch.manual_seed(2)
    ck.save_pretrained("tiny", _ckpt()[1], command="coursekit train tiny", seed=5,
                       metrics={"acc": 0.75}, directory=run, quick=quick)
    return shipped, run


def test_install_replaces_and_keeps_a_backup(tmp_path):
    shipped, run = _shipped_and_run(tmp_path)
    old_bytes = (shipped / "tiny.pt").read_bytes()
    old_manifest = ck.read_manifest(shipped)
    done = ck.install_checkpoint(run, directory=shipped)
    assert done.path == shipped / "tiny.pt"
    assert done.path.read_bytes() == (run / "tiny.pt").read_bytes() != old_bytes
    manifest = ck.read_manifest(shipped)
    assert manifest["tiny"] == ck.read_manifest(run)["tiny"]  # the run's entry, verbatim
    assert manifest["tiny"]["metrics"] == {"acc": 0.75} and manifest["tiny"]["seed"] == 5
    assert manifest["other"] == old_manifest["other"]  # other models untouched
    assert done.backup.parent == shipped / "backup" and done.backup.name.startswith("tiny-")
    assert done.backup.read_bytes() == old_bytes
    assert json.loads(done.backup_entry.read_text()) == {"tiny": old_manifest["tiny"]}
    assert not [p for p in shipped.rglob("*") if p.name.endswith(".tmp")]
    ck.verify("tiny", shipped)
    ck.verify("other", shipped)
    # a second install of the same run keeps a second, distinct backup
    again = ck.install_checkpoint(run, "tiny", directory=shipped)
    assert again.backup != done.backup
    assert again.backup.read_bytes() == (run / "tiny.pt").read_bytes()


def test_install_without_a_previous_checkpoint(tmp_path):
    shipped, run = _shipped_and_run(tmp_path, with_previous=False)
    done = ck.install_checkpoint(run, directory=shipped)
    assert done.backup is None and done.backup_entry is None
    assert not (shipped / "backup").exists()
    ck.verify("tiny", shipped)


def test_install_refuses_a_quick_run(tmp_path):
    shipped, run = _shipped_and_run(tmp_path, quick=True)
    before = _files(shipped)
    with pytest.raises(ck.CheckpointError, match=r"refusing to install .*tiny\.pt.*--quick run"):
        ck.install_checkpoint(run, directory=shipped)
    assert _files(shipped) == before


def test_install_refuses_a_run_that_does_not_say_whether_it_was_quick(tmp_path):
    shipped, run = _shipped_and_run(tmp_path)
    manifest = ck.read_manifest(run)
    del manifest["tiny"]["quick"]
    (run / "manifest.json").write_text(json.dumps(manifest))
    before = _files(shipped)
    with pytest.raises(ck.CheckpointError, match="does not record whether it was a --quick run"):
        ck.install_checkpoint(run, directory=shipped)
    assert _files(shipped) == before


def test_install_refuses_a_changed_run_file(tmp_path):
    shipped, run = _shipped_and_run(tmp_path)
    data = bytearray((run / "tiny.pt").read_bytes())
    data[-3] ^= 0xFF
    (run / "tiny.pt").write_bytes(bytes(data))
    before = _files(shipped)
    with pytest.raises(ck.CheckpointError, match="corrupt or changed"):
        ck.install_checkpoint(run, directory=shipped)
    assert _files(shipped) == before


def test_install_refuses_what_is_not_a_run(tmp_path):
    shipped, run = _shipped_and_run(tmp_path)
    with pytest.raises(ck.CheckpointError, match="does not exist"):
        ck.install_checkpoint(tmp_path / "nowhere", directory=shipped)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ck.CheckpointError, match="not a training run: it has no manifest.json"):
        ck.install_checkpoint(tmp_path / "empty", directory=shipped)
    with pytest.raises(ck.CheckpointError, match="is the shipped checkpoint folder itself"):
        ck.install_checkpoint(shipped, directory=shipped)
    with pytest.raises(ck.CheckpointError, match="unknown checkpoint name 'nope'"):
        ck.install_checkpoint(run, "nope", directory=shipped)


def test_install_needs_a_name_when_the_run_holds_several(tmp_path):
    shipped, run = _shipped_and_run(tmp_path)
    ck.save_pretrained("second", _ckpt()[1], command="c", seed=0, directory=run)
    with pytest.raises(ck.CheckpointError, match=r"holds several models \(second, tiny\).*--name"):
        ck.install_checkpoint(run, directory=shipped)
    assert ck.install_checkpoint(run, "tiny", directory=shipped).path == shipped / "tiny.pt"


def test_interrupted_copy_leaves_the_shipped_folder_alone(tmp_path, monkeypatch):
    shipped, run = _shipped_and_run(tmp_path)
    before = _files(shipped)

    def copy_half(src, dst, length=0):
        dst.write(src.read(100))
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.shutil, "copyfileobj", copy_half)
    with pytest.raises(KeyboardInterrupt):
        ck.install_checkpoint(run, directory=shipped)
    assert _files(shipped) == before


def test_failed_manifest_commit_restores_the_previous_checkpoint(tmp_path, monkeypatch):
    shipped, run = _shipped_and_run(tmp_path)
    before = _files(shipped)
    real_replace = ck.os.replace

    def replace(src, dst):
        if str(dst).endswith("manifest.json") and "shipped" in str(dst):
            raise OSError("disk full")
        return real_replace(src, dst)

    monkeypatch.setattr(ck.os, "replace", replace)
    with pytest.raises(OSError, match="disk full"):
        ck.install_checkpoint(run, directory=shipped)
    after = _files(shipped)
    backups = {k for k in after if k.startswith("backup")}
    assert {k: v for k, v in after.items() if k not in backups} == before
    assert len(backups) == 2  # the backup of the old file and entry stays: harmless, dated
    monkeypatch.undo()
    ck.verify("tiny", shipped)
