"""The dense-correspondence graders accept right answers and explain wrong ones."""

import torch
import torch.nn.functional as F

from coursekit.densepose import cse_loss
from coursekit.densepose.uv_head import hflip_maps
from coursekit.exercises import (
    check_chance_prediction,
    check_cse_loss,
    check_hflip,
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


# ---- carrying the mirror's maps back (find the bug) -----------------------------------------

def classmates_hflip(outputs):
    out = {k: outputs[k].flip(-1) for k in ("coarse", "fine", "u", "v")}
    out["v"] = 1 - out["v"]
    return out


def test_hflip_accepts_correct_solutions(capsys):
    def written_out(outputs):
        swap = [0, 1, 2, 4, 3, 6, 5, 8, 7, 10, 9]
        out = {"coarse": outputs["coarse"].flip(3)}
        for k in ("fine", "u", "v"):
            out[k] = outputs[k][:, swap].flip(3)
        out["v"] = 1 - out["v"]
        return out

    assert check_hflip(written_out) is True
    assert check_hflip(hflip_maps) is True
    assert verdict(capsys).startswith("✅ correct: columns reversed, left and right swapped")


def test_hflip_explains_wrong_ones(capsys):
    def keeps_v(outputs):
        out = hflip_maps(outputs)
        out["v"] = 1 - out["v"]
        return out

    def rows(outputs):
        out = {k: v.flip(-2) for k, v in hflip_maps({k: v.flip(-1) for k, v in
                                                     outputs.items()}).items()}
        return out

    def shape(outputs):
        return {k: v[:, :, :2] for k, v in hflip_maps(outputs).items()}

    def coarse_only(outputs):
        return {**outputs, "coarse": outputs["coarse"].flip(-1)}

    cases = [(coarse_only, "swap the left and right part channels"),
             (classmates_hflip, "still the classmate's version"), (keeps_v, "1 - V"),
             (rows, "the columns (the last dimension), not the rows"),
             (shape, "never changes a shape"),
             (lambda o: o["fine"], "return a dict"), (stub, "not implemented yet")]
    for fn, hint in cases:
        assert check_hflip(fn) is False
        out = verdict(capsys)
        assert out.startswith("❌") and hint in out, out
