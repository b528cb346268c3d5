"""Lesson 01 graders: fully connected -> convolution, and the 'how does the saving scale' guess."""

import pytest
import torch
from torch import nn

from coursekit.exercises.sliding_window import check_fc_to_conv, check_saving_prediction
from coursekit.segmentation.fcn_xs import fc_to_conv


def verdict(capsys, check, *args):
    """Run a check; return (result, the printed line); it must print exactly one line."""
    result = check(*args)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    return result, lines[0]


def by_hand(linear, in_channels, kernel_size):
    """What a student writes: a k×k convolution holding the Linear's rows as filters."""
    conv = nn.Conv2d(in_channels, linear.out_features, kernel_size, bias=linear.bias is not None)
    with torch.no_grad():
        conv.weight.copy_(linear.weight.view(linear.out_features, in_channels, kernel_size,
                                             kernel_size))
        if linear.bias is not None:
            conv.bias.copy_(linear.bias)
    return conv  # float32 even for a float64 Linear: the grader must cope


def with_weight(make_weight, bias=True):
    """A wrong conversion whose weight is ``make_weight(linear.weight, out, C, k)``."""
    def convert(linear, in_channels, kernel_size):
        out = linear.out_features
        conv = nn.Conv2d(in_channels, out, kernel_size, bias=bias and linear.bias is not None)
        conv = conv.double()
        with torch.no_grad():
            conv.weight.copy_(make_weight(linear.weight, out, in_channels, kernel_size))
            if conv.bias is not None:
                conv.bias.copy_(linear.bias)
        return conv
    return convert


SUCCESS = ("✅ correct: fc_to_conv matches coursekit's on 4 random layers, and the converted "
           "patch classifier run once over a whole image equals its sliding window")


# ------------------------------------------------------------------------------- fc_to_conv
def test_accepts_the_reference_and_a_hand_written_float32_conversion(capsys):
    ok, line = verdict(capsys, check_fc_to_conv, fc_to_conv)
    assert ok is True and line == SUCCESS
    ok, line = verdict(capsys, check_fc_to_conv, by_hand)
    assert ok is True and line == SUCCESS


def test_spots_channels_last_reshape(capsys):
    wrong = with_weight(lambda w, o, c, k: w.view(o, k, k, c).permute(0, 3, 1, 2))
    ok, line = verdict(capsys, check_fc_to_conv, wrong)
    assert ok is False
    assert line.startswith("❌ Linear(3*5*5 -> 16), kernel_size=5, input Tensor[2, 3, 5, 5]: "
                           "wrong values")
    assert "hint: torch.flatten orders a C×k×k block channel first" in line


def test_spots_transposed_and_flipped_kernels(capsys):
    ok, line = verdict(capsys, check_fc_to_conv,
                       with_weight(lambda w, o, c, k: w.view(o, c, k, k).transpose(-1, -2)))
    assert ok is False and "hint: rows and columns of the kernel are swapped" in line
    ok, line = verdict(capsys, check_fc_to_conv,
                       with_weight(lambda w, o, c, k: w.view(o, c, k, k).flip(-1, -2)))
    assert ok is False and "hint: your kernel is flipped" in line


def test_spots_missing_bias(capsys):
    ok, line = verdict(capsys, check_fc_to_conv,
                       with_weight(lambda w, o, c, k: w.view(o, c, k, k), bias=False))
    assert ok is False and "hint: the weights are right but the Linear's bias is missing" in line


def test_spots_padding_by_the_shape(capsys):
    def padded(linear, in_channels, kernel_size):
        conv = fc_to_conv(linear, in_channels, kernel_size)
        conv.padding = (kernel_size // 2, kernel_size // 2)
        return conv

    ok, line = verdict(capsys, check_fc_to_conv, padded)
    assert ok is False
    assert line.startswith("❌ Linear(3*5*5 -> 16), kernel_size=5, input Tensor[2, 3, 5, 5]: "
                           "wrong shape (got Tensor[2, 16, 5, 5], expected Tensor[2, 16, 1, 1])")
    assert "hint: a k×k convolution with out_features output channels, no padding" in line


def test_reports_returning_the_linear_itself_and_exceptions(capsys):
    ok, line = verdict(capsys, check_fc_to_conv, lambda linear, c, k: linear)
    assert ok is False
    assert "calling the module you returned raised RuntimeError" in line
    assert "hint: return an nn.Conv2d(3, 16, kernel_size=5)" in line
    ok, line = verdict(capsys, check_fc_to_conv,
                       lambda linear, c, k: linear.weight.view(-1, c, k, k))
    assert ok is False and "your function returned Tensor[16, 3, 5, 5] float64" in line
    ok, line = verdict(capsys, check_fc_to_conv, lambda linear, c, k: 1 / 0)
    assert ok is False and "your function raised ZeroDivisionError" in line

    def stub(linear, in_channels, kernel_size):
        raise NotImplementedError("exercise: write your solution here")

    ok, line = verdict(capsys, check_fc_to_conv, stub)
    assert ok is False and "not implemented yet" in line
    assert "hint: write your code in the exercise cell" in line


def test_whole_classifier_stage_catches_a_conversion_that_fails_only_in_a_network(capsys):
    # right on every single layer, but the module it returns changes the input it is given
    class Scaling(nn.Module):
        def __init__(self, conv, factor):
            super().__init__()
            self.conv, self.factor = conv, factor

        def forward(self, x):
            return self.conv(x * self.factor)

    calls = []

    def sneaky(linear, in_channels, kernel_size):
        calls.append(1)
        conv = fc_to_conv(linear, in_channels, kernel_size)
        return conv if len(calls) <= 4 else Scaling(conv, 2.0)  # 4 single layers first

    ok, line = verdict(capsys, check_fc_to_conv, sneaky)
    assert ok is False
    assert line.startswith("❌ the converted classifier Flatten, Linear, ReLU, Linear on an image "
                           "Tensor[2, 3, 11, 13]: its score map differs")


# ------------------------------------------------------------------------------ prediction
@pytest.mark.parametrize("guess", [4.0, 3.7, 5, lambda: 4.0])
def test_prediction_accepts_the_p_squared_rule(capsys, guess):
    ok, line = verdict(capsys, check_saving_prediction, guess, 4.65)
    assert ok is True
    assert line.startswith("✅ correct: you predicted ×")
    assert "measured ×4.65: the saving grows like P²" in line


def test_prediction_rejects_linear_and_cubic_guesses_with_different_hints(capsys):
    ok, line = verdict(capsys, check_saving_prediction, 2.0, 4.65)
    assert ok is False
    assert line.startswith("❌ you predicted ×2.0, measured ×4.65: not within a factor 1.5")
    assert "grows with the window's area" in line
    ok, line = verdict(capsys, check_saving_prediction, lambda: 8, 4.65)
    assert ok is False and "the FCN also gets deeper" in line


def test_prediction_reports_stub_and_non_numbers(capsys):
    def stub():
        raise NotImplementedError("exercise: write your solution here")

    ok, line = verdict(capsys, check_saving_prediction, stub, 4.65)
    assert ok is False and "not implemented yet" in line
    ok, line = verdict(capsys, check_saving_prediction, "four", 4.65)
    assert ok is False and "expected a positive number, got 'four'" in line
    ok, line = verdict(capsys, check_saving_prediction, True, 4.65)
    assert ok is False and "expected a positive number, got True" in line
    ok, line = verdict(capsys, check_saving_prediction, torch.ones(2), 4.65)
    assert ok is False and "expected a positive number, got Tensor[2] float32" in line


def test_prediction_rejects_a_bad_measurement():
    with pytest.raises(ValueError, match="measured must be a positive number, got -1.0"):
        check_saving_prediction(4.0, -1.0)
