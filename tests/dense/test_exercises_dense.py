"""The lesson-04 graders accept right answers and explain wrong ones."""

import math
from functools import partial

import torch
import torch.nn.functional as F

from coursekit.dense import end_point_error, scale_invariant_loss, warp
from coursekit.exercises.dense import (
    check_end_point_error,
    check_scale_invariant_loss,
    check_scale_invariant_prediction,
    check_warp,
)
from coursekit.upsampling import bilinear_sample


def test_correct_solutions_pass(capsys):
    assert check_scale_invariant_loss(lambda p, t, lam: scale_invariant_loss(p, t, lam=lam))
    assert check_end_point_error(end_point_error)
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2
    assert all(line.startswith("✅ correct") for line in out)


def test_missing_second_term(capsys):
    def first_term_only(p, t, lam):
        return ((p - t) ** 2).flatten(1).mean(1).mean()

    assert not check_scale_invariant_loss(first_term_only)
    assert "second term" in capsys.readouterr().out


def test_whole_batch_as_one_image(capsys):
    def wrong(p, t, lam):
        d = (p - t).flatten()
        return (d**2).mean() - lam * d.mean() ** 2
    assert not check_scale_invariant_loss(wrong)
    assert "per image" in capsys.readouterr().out


def test_squared_epe_and_l1(capsys):
    assert not check_end_point_error(lambda p, t: ((p - t) ** 2).sum(1).mean())
    assert "square root" in capsys.readouterr().out
    assert not check_end_point_error(lambda p, t: (p - t).abs().mean())
    assert "Euclidean" in capsys.readouterr().out


def test_stub_and_exception_are_reported(capsys):
    def stub(p, t):
        raise NotImplementedError("exercise")
    assert not check_end_point_error(stub)
    assert "not implemented yet" in capsys.readouterr().out
    assert not check_scale_invariant_loss(lambda p, t, lam: torch.zeros(3).sum() + p.view(7))
    out = capsys.readouterr().out
    assert out.startswith("❌") and "RuntimeError" in out


def test_checks_leave_the_global_rng_alone(capsys):
    # a check runs inside the student's seeded notebook: it must not shift the random stream
    torch.manual_seed(0)
    before = torch.get_rng_state()
    check_scale_invariant_loss(lambda p, t, lam: scale_invariant_loss(p, t, lam=lam))
    check_end_point_error(end_point_error)
    check_scale_invariant_prediction(predictions())
    check_warp(warp)
    assert torch.equal(torch.get_rng_state(), before)


# ---- predict before you run: the scale-invariant loss of truth × 2 ------------------------

LOG2_SQ = math.log(2) ** 2  # derived: d = ln 2 on the pixels that are doubled, 0 elsewhere


def predictions(**changes):
    answer = {"everywhere": {0: LOG2_SQ, 1: 0.0},  # mean of d², and the variance of a constant
              "left half": {0: LOG2_SQ / 2, 1: LOG2_SQ / 4}}  # variance of ln 2 or 0, 50/50
    for key, value in changes.items():
        case, lam = key.rsplit("_", 1)
        answer[case.replace("_", " ")][int(lam)] = value
    return lambda: answer


def test_si_prediction_accepts_derived_and_rounded_values(capsys):
    assert check_scale_invariant_prediction(predictions()) is True
    rounded = {"everywhere": {0.0: 0.48, 1.0: 0}, "left half": {0.0: 0.24, 1.0: 0.12}}
    assert check_scale_invariant_prediction(lambda: rounded) is True
    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == ("✅ correct: your predictions match the measured losses (×2 everywhere: "
                        "λ = 0 0.4805, λ = 1 0.0000; ×2 left half: λ = 0 0.2402, λ = 1 0.1201)")
    assert len(lines) == 2


def test_si_prediction_explains_wrong_predictions(capsys):
    assert not check_scale_invariant_prediction(predictions(left_half_1=0.0))
    out = capsys.readouterr().out
    assert "×2 left half, λ = 1: you predicted 0.0000, measured 0.1201" in out
    assert "not a factor on half of it" in out
    assert not check_scale_invariant_prediction(predictions(everywhere_1=LOG2_SQ))
    assert "variance of d" in capsys.readouterr().out
    assert not check_scale_invariant_prediction(predictions(everywhere_0=1.0))  # log base 2
    assert "natural logs" in capsys.readouterr().out
    assert not check_scale_invariant_prediction(predictions(left_half_0=LOG2_SQ))
    assert "only half of the pixels are off" in capsys.readouterr().out


def test_si_prediction_reports_bad_answers(capsys):
    assert not check_scale_invariant_prediction(lambda: 0.48)
    assert "got float" in capsys.readouterr().out
    assert not check_scale_invariant_prediction(lambda: {"everywhere": {0: 0.48, 1: 0.0}})
    assert "keep the keys of the template" in capsys.readouterr().out
    assert not check_scale_invariant_prediction(predictions(left_half_0="0.24"))
    assert "×2 left half, λ = 0: expected a number, got str" in capsys.readouterr().out
    assert not check_scale_invariant_prediction(predictions()())  # the dict, not the function
    assert "expected your function" in capsys.readouterr().out
    assert not check_scale_invariant_prediction(lambda: exec("raise NotImplementedError"))
    assert "not implemented yet" in capsys.readouterr().out


# ---- find the bug: the backward warp ------------------------------------------------------

def lesson_warp(frame2, flow, sign=1.0, swap=False):
    """The lesson's warp; sign=-1 is the planted bug (reads where the point came from)."""
    N, _, H, W = frame2.shape
    dx, dy = (flow[:, 1], flow[:, 0]) if swap else (flow[:, 0], flow[:, 1])
    ys = torch.arange(H, dtype=flow.dtype).view(1, H, 1)
    xs = torch.arange(W, dtype=flow.dtype).view(1, 1, W)
    y = (ys + sign * dy).clamp(0, H - 1)
    x = (xs + sign * dx).clamp(0, W - 1)
    return bilinear_sample(frame2, y, x, torch.arange(N).view(N, 1, 1)).permute(0, 3, 1, 2)


def grid_sample_warp(frame2, flow, padding_mode="border"):
    N, _, H, W = frame2.shape
    y, x = torch.meshgrid(torch.arange(H, dtype=flow.dtype), torch.arange(W, dtype=flow.dtype),
                          indexing="ij")
    grid = torch.stack([(2 * (x + flow[:, 0]) + 1) / W - 1, (2 * (y + flow[:, 1]) + 1) / H - 1],
                       dim=-1)
    return F.grid_sample(frame2, grid, mode="bilinear", padding_mode=padding_mode,
                         align_corners=False)


def test_warp_accepts_correct_solutions(capsys):
    assert check_warp(warp)
    assert check_warp(lesson_warp)
    assert check_warp(grid_sample_warp)  # the reference, torch's own sampler
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["✅ correct: the warp reads frame 2 at p + f(p), same as "
                     "coursekit.dense.warp"] * 3


def test_warp_explains_wrong_solutions(capsys):
    assert not check_warp(partial(lesson_warp, sign=-1.0))  # the bug the lesson plants
    out = capsys.readouterr().out
    assert ("a ramp frame2(x) = x moving right by 1 px: got [0.00, 0.00, 1.00, 2.00, ...], "
            "expected [1.00, 2.00, 3.00, 3.00, ...]") in out
    assert "reads frame 2 at p − f(p)" in out
    assert not check_warp(partial(lesson_warp, swap=True))
    assert "flow[:, 0] is dx" in capsys.readouterr().out
    assert not check_warp(partial(grid_sample_warp, padding_mode="zeros"))
    assert "nearest border pixel" in capsys.readouterr().out
    assert not check_warp(lambda frame2, flow: frame2)  # no warp at all
    assert "bilinear interpolation" in capsys.readouterr().out


def test_warp_reports_bad_shapes_and_stubs(capsys):
    assert not check_warp(lambda frame2, flow: warp(frame2, flow)[0])
    assert "expected Tensor[1, 1, 1, 4], got Tensor[1, 1, 4] float64" in capsys.readouterr().out
    assert not check_warp(lambda frame2, flow: exec("raise NotImplementedError"))
    assert "not implemented yet" in capsys.readouterr().out
    assert not check_warp(lambda frame2, flow: frame2 @ flow)
    assert "RuntimeError" in capsys.readouterr().out
