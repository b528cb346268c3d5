from pathlib import Path

import pytest
import torch

from coursekit.train import cosine_lr, fit


def _problem():
    torch.manual_seed(0)
    x = torch.randn(64, 3)
    y = x @ torch.tensor([[1.0], [-2.0], [0.5]]) + 0.3
    model = torch.nn.Linear(3, 1)

    def loss_fn(m, batch):
        xb, yb = batch
        return torch.nn.functional.mse_loss(m(xb), yb)

    return model, (lambda step: (x, y)), loss_fn


def test_fit_learns_a_line():
    model, batch_fn, loss_fn = _problem()
    history = fit(model, batch_fn, loss_fn, steps=300, lr=5e-2, log_every=50, progress=False)
    assert history["step"] == [50, 100, 150, 200, 250, 300]
    assert history["loss"][-1] < 1e-3 < history["loss"][0]
    expected = torch.tensor([[1.0, -2.0, 0.5]])
    torch.testing.assert_close(model.weight.detach(), expected, atol=2e-2, rtol=0)


def test_cosine_lr_hand_values():
    assert cosine_lr(0, 100, 1.0) == pytest.approx(1.0)
    assert cosine_lr(50, 100, 1.0) == pytest.approx(0.05 + 0.95 * 0.5)
    assert cosine_lr(100, 100, 1.0) == pytest.approx(0.05)
    assert cosine_lr(0, 100, 1.0, warmup=10) == pytest.approx(0.1)


def test_resume_gives_the_same_result(tmp_path):
    model_a, batch_fn, loss_fn = _problem()
    fit(model_a, batch_fn, loss_fn, steps=40, lr=1e-2, progress=False)
    model_b, _, _ = _problem()
    state = tmp_path / "run.state.pt"
    with pytest.raises(RuntimeError, match="stop"):
        def stopping_batch(step):
            if step == 25:
                raise RuntimeError("stop")
            return batch_fn(step)
        fit(model_b, stopping_batch, loss_fn, steps=40, lr=1e-2, state_path=state,
            save_every=10, progress=False)
    assert torch.load(state, weights_only=True)["step"] == 20  # the last save before the stop
    model_c, _, _ = _problem()
    fit(model_c, batch_fn, loss_fn, steps=40, lr=1e-2, state_path=state, save_every=10,
        progress=False)
    torch.testing.assert_close(model_c.weight, model_a.weight)


def test_bad_arguments():
    model, batch_fn, loss_fn = _problem()
    with pytest.raises(ValueError, match="steps must be positive, got 0"):
        fit(model, batch_fn, loss_fn, steps=0)
    with pytest.raises(TypeError, match="steps must be an int, got 2.5"):
        fit(model, batch_fn, loss_fn, steps=2.5)
    with pytest.raises(ValueError, match="lr must be > 0"):
        fit(model, batch_fn, loss_fn, steps=1, lr=0)
    with pytest.raises(TypeError, match="lr must be a float, got str"):
        fit(model, batch_fn, loss_fn, steps=1, lr="0.1")
    with pytest.raises(TypeError, match="model must be a torch.nn.Module, got str"):
        fit("model", batch_fn, loss_fn, steps=1)


def test_divergence_is_reported():
    model, batch_fn, _ = _problem()
    with pytest.raises(FloatingPointError, match="loss became nan at step 0"):
        fit(model, batch_fn, lambda m, b: m(b[0]).sum() * float("nan"), steps=3,
            progress=False)


# --- where a run writes ------------------------------------------------------------------


def test_run_dir_defaults_to_runs_name_under_the_cwd(tmp_path, monkeypatch):
    from coursekit.train import run_dir_for

    monkeypatch.chdir(tmp_path)
    assert run_dir_for("unet") == tmp_path / "runs" / "unet"
    assert run_dir_for("unet", tmp_path / "elsewhere") == tmp_path / "elsewhere"
    assert run_dir_for("unet", "rel") == Path("rel")
    assert not (tmp_path / "runs").exists()  # choosing a folder creates nothing


def test_run_dir_refuses_the_shipped_folder(tmp_path, monkeypatch):
    from coursekit.checkpoints import ENV_VAR, checkpoint_dir
    from coursekit.train import run_dir_for

    with pytest.raises(ValueError, match="not the shipped checkpoint folder.*install-checkpoint"):
        run_dir_for("unet", checkpoint_dir())
    shipped = tmp_path / "shipped"
    (shipped / "sub").mkdir(parents=True)
    monkeypatch.setenv(ENV_VAR, str(shipped))
    with pytest.raises(ValueError, match="out_dir must be a run folder"):
        run_dir_for("unet", shipped / "sub")
    with pytest.raises(TypeError, match="out_dir must be a path .* got int"):
        run_dir_for("unet", 5)


def test_a_quick_run_does_not_replace_a_full_one(tmp_path):
    from coursekit.checkpoints import save_pretrained
    from coursekit.train import run_dir_for

    save_pretrained("unet", {"model": {}}, command="c", seed=0, directory=tmp_path, quick=False)
    with pytest.raises(ValueError, match="holds a full run of 'unet' that a --quick run would"):
        run_dir_for("unet", tmp_path, quick=True)
    assert run_dir_for("unet", tmp_path, quick=False) == tmp_path  # a full run may retrain it
    save_pretrained("fcn", {"model": {}}, command="c", seed=0, directory=tmp_path, quick=True)
    assert run_dir_for("fcn", tmp_path, quick=True) == tmp_path


def test_state_path_is_in_the_run_folder(tmp_path):
    from coursekit.train import state_path_for

    assert state_path_for(tmp_path, "unet", 3, "abc") == tmp_path / "unet.seed3.abc.state.pt"


def test_save_run_writes_on_rank_0_only(tmp_path, monkeypatch):
    from coursekit.checkpoints import load_pretrained, read_manifest
    from coursekit.train import process_rank, save_run

    model, _, _ = _problem()
    checkpoint = {"model": model.state_dict()}
    monkeypatch.setenv("RANK", "1")
    assert process_rank() == 1
    assert save_run("tiny", checkpoint, out_dir=tmp_path, seed=0, quick=True) is None
    assert list(tmp_path.iterdir()) == []
    monkeypatch.setenv("RANK", "0")
    path = save_run("tiny", checkpoint, out_dir=tmp_path, seed=2, quick=True,
                    metrics={"loss": 0.25})
    assert path == tmp_path / "tiny.pt"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "tiny.pt"]
    entry = read_manifest(tmp_path)["tiny"]
    assert (entry["command"], entry["seed"], entry["quick"]) == ("coursekit train tiny", 2, True)
    assert entry["metrics"] == {"loss": 0.25}
    loaded = load_pretrained("tiny", directory=tmp_path)["model"]
    torch.testing.assert_close(loaded["weight"], model.weight.detach())


def test_recipe_key_by_hand():
    import hashlib
    import json

    from coursekit.train import recipe_key

    expected = hashlib.sha256(json.dumps([{"a": 1, "b": 2}, 5], sort_keys=True).encode())
    assert recipe_key({"b": 2, "a": 1}, 5) == expected.hexdigest()[:10]  # key order is irrelevant
    assert len(recipe_key()) == 10 and recipe_key(1) != recipe_key(2)
    with pytest.raises(TypeError, match="not JSON serializable"):
        recipe_key(object())  # a recipe must be plain data
