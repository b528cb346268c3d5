"""Lesson 10's graders: a correct answer passes, wrong ones fail with the right hint."""

import torch

from coursekit.exercises.sam import (
    check_hardest_class_prediction,
    check_min_over_3_loss,
    check_stability_score,
)
from coursekit.sam.loss import dice_loss, sigmoid_focal_loss


def _per_mask(logits, gt):
    t = gt[:, None].expand_as(logits).to(logits.dtype)
    return 20 * sigmoid_focal_loss(logits, t).mean(dim=(-2, -1)) + dice_loss(logits, t)


def test_min_over_3_loss_correct(capsys):
    assert check_min_over_3_loss(lambda logits, gt: _per_mask(logits, gt).amin(dim=1).mean())
    assert "✅" in capsys.readouterr().out


def test_min_over_3_loss_wrong_answers(capsys):
    assert not check_min_over_3_loss(lambda logits, gt: _per_mask(logits, gt).mean())
    out = capsys.readouterr().out
    assert "❌" in out and "you averaged the 3 masks" in out
    assert not check_min_over_3_loss(lambda logits, gt: _per_mask(logits, gt).amax(1).mean())
    assert "min, not max" in capsys.readouterr().out
    assert not check_min_over_3_loss(lambda logits, gt: _per_mask(logits, gt).amin(1).sum())
    assert "do not sum" in capsys.readouterr().out
    assert not check_min_over_3_loss(lambda logits, gt: _per_mask(logits, gt).amin(1))
    assert "scalar" in capsys.readouterr().out

    def unsolved(logits, gt):
        raise NotImplementedError
    assert not check_min_over_3_loss(unsolved)
    assert "not implemented yet" in capsys.readouterr().out


def test_stability_score_correct_and_wrong(capsys):
    def mine(logits, t, off):
        return (logits > t + off).sum(dim=(-2, -1)) / (logits > t - off).sum(dim=(-2, -1))

    assert check_stability_score(mine)
    assert "✅" in capsys.readouterr().out
    assert not check_stability_score(lambda lg, t, o: mine(lg, t, -o))
    assert "numerator" in capsys.readouterr().out
    assert not check_stability_score(
        lambda lg, t, o: (lg >= t + o).sum(dim=(-2, -1)) / (lg >= t - o).sum(dim=(-2, -1)))
    assert "strictly" in capsys.readouterr().out
    assert not check_stability_score(lambda lg, t, o: mine(lg, t, o).sum())
    assert "one per mask" in capsys.readouterr().out


def test_stability_score_hand_case():
    """On the grader's ramp -4..3, t=0, offset 1: 2 columns > 1 over 4 columns > -1."""
    ramp = torch.arange(-4.0, 4.0).repeat(4, 1)[None]
    assert ((ramp > 1).sum() / (ramp > -1).sum()).item() == 0.5


def test_hardest_class_prediction(capsys):
    measured = {"circle": 0.91, "person": 0.72, "square": 0.88}
    assert check_hardest_class_prediction(
        lambda: {"hardest": "Person", "beats_chance": True}, measured, 0.62)
    assert "✅" in capsys.readouterr().out
    assert not check_hardest_class_prediction(
        lambda: {"hardest": "circle", "beats_chance": True}, measured, 0.62)
    assert "differs on hardest" in capsys.readouterr().out
    assert not check_hardest_class_prediction(
        lambda: {"hardest": "person", "beats_chance": True}, measured, 0.30)
    assert "differs on beats_chance" in capsys.readouterr().out
    assert not check_hardest_class_prediction(lambda: "person", measured, 0.62)
    assert "must be a dict" in capsys.readouterr().out
    tied = {"circle": 0.87, "crowd": 0.5084, "person": 0.5032}  # the previous model, 24 scenes
    for answer in ("person", "crowd"):  # 0.005 apart: a tie, either is right
        assert check_hardest_class_prediction(
            lambda a=answer: {"hardest": a, "beats_chance": True}, tied, 0.82)
    assert "crowd within 0.02 counts too" in capsys.readouterr().out
    assert not check_hardest_class_prediction(
        lambda: {"hardest": "crowd", "beats_chance": True},
        {"crowd": 0.53, "person": 0.50}, 0.82)  # 0.03 apart: not a tie
