"""The dense-correspondence graders accept right answers and explain wrong ones."""

import torch
import torch.nn.functional as F

from coursekit.densepose import cse_loss
from coursekit.exercises import (
    check_chance_prediction,
    check_cse_loss,
    check_uv_loss,
    measure_template_chance,
)
from coursekit.exercises.densepose import reference_uv_loss


def verdict(capsys):
    return capsys.readouterr().out.strip()


def stub(*args):
    raise NotImplementedError("exercise: write your solution here")


# ---- cse_loss ------------------------------------------------------------------------------

def written_cse_loss(e, v, t, temperature):
    logits = -((e[:, None, :] - v[None, :, :]) ** 2).sum(-1) / temperature
    return -logits.log_softmax(1)[torch.arange(len(t)), t].mean()


def test_cse_loss_accepts_correct_solutions(capsys):
    assert check_cse_loss(cse_loss) is True
    assert check_cse_loss(written_cse_loss) is True
    assert verdict(capsys).startswith("✅ correct: cse_loss")


def test_cse_loss_explains_wrong_ones(capsys):
    cases = [
        (lambda e, v, t, T: F.cross_entropy(torch.cdist(e, v) ** 2 / T, t), "minus the squared"),
        (lambda e, v, t, T: F.cross_entropy(-torch.cdist(e, v) / T, t), "squared distance"),
        (lambda e, v, t, T: F.cross_entropy(-torch.cdist(e, v) ** 2 * T, t), "divide the logits"),
        (lambda e, v, t, T: F.cross_entropy(-torch.cdist(e, v) ** 2 / T, t, reduction="sum"),
         "average over the points"),
        (lambda e, v, t, T: torch.tensor(0.0), "logits[n, k]"),
        (lambda e, v, t, T: [1.0], "scalar float tensor"),
        (stub, "not implemented yet"),
    ]
    for fn, hint in cases:
        assert check_cse_loss(fn) is False
        out = verdict(capsys)
        assert out.startswith("❌") and hint in out, out


# ---- the U, V loss (find the bug) ------------------------------------------------------------

def classmates_uv_loss(u_read, v_read, parts, u_true, v_true):
    return (F.smooth_l1_loss(u_read, u_true[:, None].expand_as(u_read), beta=0.1)
            + F.smooth_l1_loss(v_read, v_true[:, None].expand_as(v_read), beta=0.1))


def fixed_uv_loss(u_read, v_read, parts, u_true, v_true):
    u_hat = u_read.gather(1, parts[:, None])[:, 0]
    v_hat = v_read.gather(1, parts[:, None])[:, 0]
    return (F.smooth_l1_loss(u_hat, u_true, beta=0.1)
            + F.smooth_l1_loss(v_hat, v_true, beta=0.1))


def test_uv_loss_accepts_correct_solutions(capsys):
    assert check_uv_loss(fixed_uv_loss) is True
    assert check_uv_loss(reference_uv_loss) is True
    assert verdict(capsys).startswith("✅ correct: only the true part")


def test_uv_loss_explains_wrong_ones(capsys):
    def no_beta(u_read, v_read, parts, u_true, v_true):
        rows = torch.arange(len(parts))
        return (F.smooth_l1_loss(u_read[rows, parts], u_true)
                + F.smooth_l1_loss(v_read[rows, parts], v_true))

    def u_only(u_read, v_read, parts, u_true, v_true):
        rows = torch.arange(len(parts))
        return F.smooth_l1_loss(u_read[rows, parts], u_true, beta=0.1)

    cases = [(classmates_uv_loss, "still the classmate's loss"), (no_beta, "beta=0.1"),
             (u_only, "channel of its own part"), (stub, "not implemented yet"),
             (lambda *a: 3, "scalar float tensor")]
    for fn, hint in cases:
        assert check_uv_loss(fn) is False
        out = verdict(capsys)
        assert out.startswith("❌") and hint in out, out


# ---- predicting the chance level ---------------------------------------------------------------

def test_chance_prediction(capsys):
    measured = measure_template_chance(0.015)
    coarse = measure_template_chance(0.03)
    assert abs(measured - coarse) < 0.1 * coarse  # the point of the exercise
    assert check_chance_prediction(lambda: coarse) is True
    assert verdict(capsys).startswith("✅ correct: you predicted")
    for guess, hint in [(coarse / 4, "4 times as many inside"), (coarse * 4, "does not get better"),
                        (0.5, "share of the body's surface")]:
        assert check_chance_prediction(lambda g=guess: g) is False
        out = verdict(capsys)
        assert out.startswith("❌") and hint in out, out
    assert check_chance_prediction(stub) is False
    assert "not implemented yet" in verdict(capsys)
    assert check_chance_prediction(lambda: "0.04") is False
    assert "should be a number" in verdict(capsys)
