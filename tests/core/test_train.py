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
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[1.0, -2.0, 0.5]]), atol=2e-2, rtol=0)


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
        fit(model_b, stopping_batch, loss_fn, steps=40, lr=1e-2, state_path=state, save_every=10, progress=False)
    model_c, _, _ = _problem()
    fit(model_c, batch_fn, loss_fn, steps=40, lr=1e-2, state_path=state, save_every=10, progress=False)
    torch.testing.assert_close(model_c.weight, model_a.weight)


def test_bad_arguments():
    model, batch_fn, loss_fn = _problem()
    with pytest.raises(ValueError, match="steps must be a positive int"):
        fit(model, batch_fn, loss_fn, steps=0)
    with pytest.raises(ValueError, match="lr must be > 0"):
        fit(model, batch_fn, loss_fn, steps=1, lr=0)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module"):
        fit("model", batch_fn, loss_fn, steps=1)


def test_divergence_is_reported():
    model, batch_fn, _ = _problem()
    with pytest.raises(FloatingPointError, match="loss became nan at step 0"):
        fit(model, batch_fn, lambda m, b: m(b[0]).sum() * float("nan"), steps=3, progress=False)
