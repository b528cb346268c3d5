import json

import pytest
import torch

from coursekit import checkpoints as ck


def _ckpt():
    model = torch.nn.Linear(3, 2)
    return model, {"model": model.state_dict(), "config": {"in": 3, "out": 2}, "history": {"loss": [1.0, 0.5]}}


def test_round_trip_and_manifest(tmp_path):
    model, ckpt = _ckpt()
    path = ck.save_pretrained("tiny", ckpt, command="coursekit train tiny", seed=0, metrics={"acc": 0.5}, directory=tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["tiny"]["sha256"] == ck.sha256_file(path)
    assert manifest["tiny"]["size"] == path.stat().st_size
    assert manifest["tiny"]["metrics"] == {"acc": 0.5}
    other = torch.nn.Linear(3, 2)
    ck.load_pretrained("tiny", other, directory=tmp_path)
    x = torch.randn(4, 3)
    torch.testing.assert_close(other(x), model(x))
    loaded = ck.load_pretrained("tiny", directory=tmp_path)
    assert loaded["config"] == {"in": 3, "out": 2}


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


def test_interrupted_save_keeps_previous(tmp_path, monkeypatch):
    _, ckpt = _ckpt()
    path = ck.save_pretrained("tiny", ckpt, command="c", seed=0, directory=tmp_path)
    before = path.read_bytes()

    def boom(obj, handle):
        handle.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(ck.torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        ck.save_pretrained("tiny", ckpt, command="c", seed=1, directory=tmp_path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []
    ck.verify("tiny", tmp_path)


@pytest.mark.parametrize("name", ["", "a b", "../x"])
def test_bad_name(tmp_path, name):
    with pytest.raises(ValueError, match="name must be a short identifier"):
        ck.save_pretrained(name, {}, command="c", seed=0, directory=tmp_path)


def test_bad_model_type(tmp_path):
    _, ckpt = _ckpt()
    ck.save_pretrained("tiny", ckpt, command="c", seed=0, directory=tmp_path)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        ck.load_pretrained("tiny", model="not a model", directory=tmp_path)


def test_shipped_manifest_verifies():
    """Every checkpoint the repository ships matches its manifest entry."""
    for name in ck.read_manifest():
        ck.verify(name)
