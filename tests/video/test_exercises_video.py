"""The lesson-11 graders accept right answers and explain wrong ones."""

import torch

from coursekit.exercises.video import (
    check_batch_bytes,
    check_inflate_weight,
    check_single_frame_prediction,
)


def verdict(capsys):
    return capsys.readouterr().out.strip()


def stub(*args):
    raise NotImplementedError("exercise: write your solution here")


# ---- batch bytes ---------------------------------------------------------------------------

def test_batch_bytes_accepts_correct_solution(capsys):
    assert check_batch_bytes(lambda n, t, h, w, b: n * t * 3 * h * w * b) is True
    assert verdict(capsys).startswith("✅ correct: batch_bytes")


def test_batch_bytes_explains_wrong_solutions(capsys):
    assert check_batch_bytes(lambda n, t, h, w, b: n * t * h * w * b) is False
    out = verdict(capsys)
    assert out.startswith("❌") and "(R, G, B)" in out and "expected 602112" in out
    assert check_batch_bytes(lambda n, t, h, w, b: n * t * 3 * h * w) is False
    assert "bytes_per_value" in verdict(capsys)
    assert check_batch_bytes(lambda n, t, h, w, b: t * 3 * h * w * b) is False
    assert "`batch` clips" in verdict(capsys)
    assert check_batch_bytes(lambda n, t, h, w, b: "a lot") is False
    assert "return a number" in verdict(capsys)
    assert check_batch_bytes(stub) is False
    assert "not implemented yet" in verdict(capsys)


# ---- single-frame prediction ---------------------------------------------------------------

def test_prediction_accepts_a_close_prediction(capsys):
    assert check_single_frame_prediction(lambda: 0.125, measured=0.15, chance=0.125) is True
    out = verdict(capsys)
    assert out.startswith("✅") and "0.1250" in out and "0.1500" in out


def test_prediction_explains_wrong_predictions(capsys):
    assert check_single_frame_prediction(lambda: 0.9, measured=0.15, chance=0.125) is False
    assert "played backwards" in verdict(capsys)
    assert check_single_frame_prediction(lambda: 0.0, measured=0.15, chance=0.125) is False
    assert "not below guessing" in verdict(capsys)
    assert check_single_frame_prediction(lambda: 12.5, measured=0.15, chance=0.125) is False
    assert "in [0, 1]" in verdict(capsys)
    assert check_single_frame_prediction(stub, measured=0.15, chance=0.125) is False
    assert "not implemented yet" in verdict(capsys)


# ---- inflate_weight ------------------------------------------------------------------------

def test_inflate_accepts_correct_solution(capsys):
    def inflate(w, t):
        return w.unsqueeze(2).repeat(1, 1, t, 1, 1) / t

    assert check_inflate_weight(inflate) is True
    assert verdict(capsys).startswith("✅ correct: inflate_weight")


def test_inflate_explains_wrong_solutions(capsys):
    assert check_inflate_weight(lambda w, t: w.unsqueeze(2).repeat(1, 1, t, 1, 1)) is False
    out = verdict(capsys)
    assert out.startswith("❌") and "divide by the time size" in out
    assert check_inflate_weight(lambda w, t: w.unsqueeze(0).repeat(t, 1, 1, 1, 1) / t) is False
    assert "(O, I, T, kh, kw)" in verdict(capsys)

    def first_slice_only(w, t):
        out = torch.zeros(*w.shape[:2], t, *w.shape[2:], dtype=w.dtype)
        out[:, :, 0] = w
        return out

    assert check_inflate_weight(first_slice_only) is False
    assert "all time slices must be equal" in verdict(capsys)
    assert check_inflate_weight(stub) is False
    assert "not implemented yet" in verdict(capsys)
