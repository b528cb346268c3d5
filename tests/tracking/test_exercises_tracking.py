"""Lesson 12's graders: a right answer passes, wrong ones fail with a hint."""

import torch

from coursekit.exercises.tracking import (
    GAP,
    check_hand_mota,
    check_max_age_prediction,
    check_transition_matrix,
    hand_case,
    measure_occlusion_switches,
)
from coursekit.tracking import BoxKalmanFilter, mot_metrics


def verdict(capsys):
    out = capsys.readouterr().out.strip()
    assert out.count("\n") == 0  # one line
    return out


def transition_matrix():
    F = torch.eye(7, dtype=torch.float64)
    for i in range(3):
        F[i, 4 + i] = 1.0  # cx += vx, cy += vy, s += vs
    return F


def test_transition_matrix(capsys):
    assert check_transition_matrix(transition_matrix)
    assert verdict(capsys).startswith("✅")
    assert not check_transition_matrix(lambda: transition_matrix().T)
    assert "row i of F" in verdict(capsys)
    assert not check_transition_matrix(lambda: torch.eye(7))
    assert "nothing moves" in verdict(capsys)
    with_r = transition_matrix()
    with_r[3, 6] = 1.0
    assert not check_transition_matrix(lambda: with_r)
    assert "aspect ratio r" in verdict(capsys)
    assert not check_transition_matrix(lambda: torch.eye(4))
    assert "Tensor[7, 7]" in verdict(capsys)

    def unsolved():
        raise NotImplementedError

    assert not check_transition_matrix(unsolved)
    assert "not implemented" in verdict(capsys)


def test_hand_mota_worked_by_hand(capsys):
    # frames: 0 both matched; 1 both matched + a box on nothing (FP); 2 object 1 missed
    # (FN); 3 object 1 matched to id 13, last matched to 11 (IDSW). GT = 8 boxes.
    gt, pred = hand_case()
    m = mot_metrics(gt, pred)
    assert (m["fn"], m["fp"], m["id_switches"]) == (1, 1, 1) and m["mota"] == 1 - 3 / 8
    right = {"fn": 1, "fp": 1, "id_switches": 1, "mota": 0.625}
    assert check_hand_mota(lambda: right)
    assert "MOTA = 0.6250" in verdict(capsys)
    assert not check_hand_mota(lambda: {**right, "id_switches": 0})
    assert "does not reset it" in verdict(capsys)
    assert not check_hand_mota(lambda: {**right, "mota": 0.75})
    assert "GT = 8" in verdict(capsys)
    assert not check_hand_mota(lambda: {"fn": 1})
    assert "keys" in verdict(capsys)


def test_max_age_prediction(capsys):
    assert GAP == 3
    assert measure_occlusion_switches(1) == 1 and measure_occlusion_switches(5) == 0
    assert check_max_age_prediction(lambda: {1: 1, 5: 0})
    assert "measured 1 and 0" in verdict(capsys)
    assert not check_max_age_prediction(lambda: {1: 0, 5: 0})
    assert "deletes a track" in verdict(capsys)
    assert not check_max_age_prediction(lambda: {1: 1, 5: 1})
    assert "survives" in verdict(capsys)
    assert not check_max_age_prediction(lambda: [1, 0])
    assert "return a dict" in verdict(capsys)


def test_transition_matrix_is_the_filters():
    assert torch.equal(transition_matrix(), BoxKalmanFilter().F)
