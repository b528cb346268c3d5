"""The lesson 02 graders: pass correct answers, fail wrong ones with a useful hint."""

import pytest
import torch
import torch.nn.functional as F

from coursekit.exercises.upsampling import (
    check_bilinear_upsample,
    check_checkerboard_prediction,
    check_conv_transpose2d,
    check_nearest_upsample,
    check_nearest_weight,
    check_overlap_counts,
    overlap_counts_reference,
)
from coursekit.upsampling import (
    bed_of_nails_upsample,
    bilinear_upsample,
    bilinear_upsample_loop,
    conv_transpose2d,
    conv_transpose2d_loop,
    nearest_upsample,
)


def verdict(capsys, check, *args):
    """Run a check; return (result, the printed line) and make sure it printed exactly one line."""
    result = check(*args)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1, lines
    return result, lines[0]


def not_implemented(*args, **kwargs):
    raise NotImplementedError


# ------------------------------------------------------------------------------------- nearest
def test_nearest_accepts_ours(capsys):
    ok, line = verdict(capsys, check_nearest_upsample, nearest_upsample)
    assert ok is True and line.startswith("✅ correct: nearest_upsample equals F.interpolate")


def test_nearest_spots_bed_of_nails(capsys):
    ok, line = verdict(capsys, check_nearest_upsample, bed_of_nails_upsample)
    assert ok is False
    assert line.startswith("❌ x Tensor[1, 1, 2, 2], scale_factor=2: values differ at [0, 0, 0, 1]")
    assert "hint: you kept zeros between the copies" in line


def test_nearest_wrong_shape(capsys):
    ok, line = verdict(capsys, check_nearest_upsample, lambda x, s: x.repeat_interleave(s, dim=3))
    assert ok is False
    assert "wrong shape (got Tensor[1, 1, 2, 4], expected Tensor[1, 1, 4, 4])" in line
    assert "hint: each input pixel becomes an s×s block" in line


def test_nearest_tiled_instead_of_blocks(capsys):
    ok, line = verdict(capsys, check_nearest_upsample, lambda x, s: x.repeat(1, 1, s, s))
    assert ok is False and "values differ at [0, 0, 0, 1] (got 2.0000, expected 1.0000)" in line
    assert "hint: every output pixel copies one input pixel" in line


def test_nearest_exception_and_non_tensor_are_reported(capsys):
    ok, line = verdict(capsys, check_nearest_upsample, lambda x, s: x[5])
    assert ok is False and "your function raised IndexError: index 5 is out of bounds" in line
    ok, line = verdict(capsys, check_nearest_upsample, lambda x, s: x.tolist())
    assert ok is False and "your function returned list, expected a Tensor" in line
    ok, line = verdict(capsys, check_nearest_upsample, not_implemented)
    assert ok is False
    assert "not implemented yet" in line and "hint: write your code in the exercise cell" in line


# ------------------------------------------------------------------------------------ bilinear
def test_bilinear_accepts_ours_and_the_loop(capsys):
    ok, line = verdict(capsys, check_bilinear_upsample, bilinear_upsample)
    assert ok is True
    assert line.startswith("✅ correct: bilinear_upsample equals F.interpolate(mode='bilinear'")
    ok, _ = verdict(capsys, check_bilinear_upsample, bilinear_upsample_loop)
    assert ok is True


def test_bilinear_spots_align_corners_true(capsys):
    ok, line = verdict(capsys, check_bilinear_upsample,
                       lambda x, size: bilinear_upsample(x, size, align_corners=True))
    assert ok is False
    assert line.startswith("❌ x Tensor[1, 1, 2, 2], size=(4, 4): values differ at [0, 0, 0, 1]")
    assert "hint: your output matches align_corners=True" in line


def test_bilinear_spots_nearest(capsys):
    ok, line = verdict(capsys, check_bilinear_upsample,
                       lambda x, size: F.interpolate(x, size=size, mode="nearest"))
    assert ok is False and "hint: your output is nearest-neighbour" in line


def test_bilinear_spots_missing_clamp(capsys):
    def no_clamp(x, size):
        """Bilinear with negative source coordinates extrapolated instead of clamped."""
        H, W = x.shape[-2:]
        ys = (torch.arange(size[0], dtype=x.dtype) + 0.5) * H / size[0] - 0.5
        xs = (torch.arange(size[1], dtype=x.dtype) + 0.5) * W / size[1] - 0.5
        def matrix(src, n):
            i0 = src.floor().clamp(0, n - 2).long() if n > 1 else torch.zeros_like(src).long()
            t = src - i0
            A = torch.zeros(len(src), n, dtype=x.dtype)
            A[torch.arange(len(src)), i0] += 1 - t
            A[torch.arange(len(src)), (i0 + 1).clamp(max=n - 1)] += t
            return A
        return matrix(ys, H) @ x @ matrix(xs, W).t()

    ok, line = verdict(capsys, check_bilinear_upsample, no_clamp)
    assert ok is False and "hint: only the border is wrong" in line


def test_bilinear_wrong_shape_and_generic_hint(capsys):
    ok, line = verdict(capsys, check_bilinear_upsample,
                       lambda x, size: bilinear_upsample(x, size=(size[1], size[0])))
    assert ok is False
    assert "wrong shape (got Tensor[2, 3, 13, 9], expected Tensor[2, 3, 9, 13])" in line
    assert "hint: the output is Tensor[N, C, H_out, W_out]" in line
    ok, line = verdict(capsys, check_bilinear_upsample,
                       lambda x, size: 2 * bilinear_upsample(x, size=size))
    assert ok is False
    assert "hint: each output pixel is a weighted sum of its 4 nearest input pixels" in line


# ---------------------------------------------------------------------------------- transposed
def test_conv_transpose_accepts_ours_and_the_loop(capsys):
    ok, line = verdict(capsys, check_conv_transpose2d, conv_transpose2d)
    assert ok is True
    assert line == ("✅ correct: conv_transpose2d equals F.conv_transpose2d on 4 cases "
                    "(strides 1, 2, 3)")
    ok, _ = verdict(capsys, check_conv_transpose2d, conv_transpose2d_loop)
    assert ok is True


def test_conv_transpose_spots_overwrite(capsys):
    def overwrite(x, weight, stride=1):
        N, _, H, W = x.shape
        _, Co, kH, kW = weight.shape
        out = x.new_zeros(N, Co, (H - 1) * stride + kH, (W - 1) * stride + kW)
        for i in range(H):
            for j in range(W):
                out[:, :, i * stride:i * stride + kH, j * stride:j * stride + kW] = \
                    (x[:, :, i, j, None, None, None] * weight).sum(1)
        return out

    ok, line = verdict(capsys, check_conv_transpose2d, overwrite)
    assert ok is False
    assert line.startswith("❌ x Tensor[1, 1, 2, 2], weight Tensor[1, 1, 3, 3],"
                           " stride=2: values differ")
    assert "hint: values differ where copies overlap" in line


def test_conv_transpose_spots_flipped_filter_and_swapped_channels(capsys):
    ok, line = verdict(capsys, check_conv_transpose2d,
                       lambda x, weight, stride=1: conv_transpose2d(
                           x, weight.flip(-1, -2), stride=stride))
    assert ok is False and "hint: your filter copies are flipped" in line
    ok, line = verdict(capsys, check_conv_transpose2d,
                       lambda x, weight, stride=1: conv_transpose2d(
                           x, weight.transpose(0, 1), stride=stride))
    assert ok is False and "hint: you swapped the channel axes" in line


def test_conv_transpose_wrong_shape_and_exception(capsys):
    ok, line = verdict(capsys, check_conv_transpose2d,
                       lambda x, weight, stride=1: conv_transpose2d(
                           x, weight, stride=stride, padding=1))
    assert ok is False
    assert "wrong shape (got Tensor[1, 1, 3, 3], expected Tensor[1, 1, 5, 5])" in line
    assert "hint: with stride s and a kH×kW filter the output has (H - 1) * s + kH rows" in line
    ok, line = verdict(capsys, check_conv_transpose2d,
                       lambda x, weight, stride=1: F.conv2d(x, weight, stride=stride))
    assert ok is False and "your function raised RuntimeError" in line


# ------------------------------------------------------------- nearest as a transposed conv
def nearest_weight(channels, scale_factor):
    weight = torch.zeros(channels, channels, scale_factor, scale_factor)
    weight[range(channels), range(channels)] = 1.0
    return weight


def test_nearest_weight_accepts_the_diagonal_block_filter(capsys):
    ok, line = verdict(capsys, check_nearest_weight, nearest_weight)
    assert ok is True
    assert line == ("✅ correct: conv_transpose2d with your weight and stride s is nearest "
                    "upsampling (3 cases)")
    # float64 or integer-valued float16 weights are fine too
    ok, _ = verdict(capsys, check_nearest_weight,
                    lambda c, s: nearest_weight(c, s).to(torch.float16))
    assert ok is True


def test_nearest_weight_spots_mixed_channels(capsys):
    ok, line = verdict(capsys, check_nearest_weight, lambda c, s: torch.ones(c, c, s, s))
    assert ok is False
    assert line.startswith("❌ channels=3, scale_factor=2: conv_transpose2d(x, your weight, "
                           "stride=2) gives values differ")
    assert "hint: every output channel sums all input channels" in line


def test_nearest_weight_spots_average_bed_of_nails_and_wrong_size(capsys):
    ok, line = verdict(capsys, check_nearest_weight, lambda c, s: nearest_weight(c, s) / s**2)
    assert ok is False and "hint: every output pixel receives exactly one copy" in line

    def nails(c, s):
        weight = torch.zeros(c, c, s, s)
        weight[range(c), range(c), 0, 0] = 1.0
        return weight

    ok, line = verdict(capsys, check_nearest_weight, nails)
    assert ok is False and "hint: that is bed of nails" in line
    ok, line = verdict(capsys, check_nearest_weight, lambda c, s: nearest_weight(c, s + 1))
    assert ok is False
    assert "wrong shape (got Tensor[2, 1, 7, 9], expected Tensor[2, 1, 6, 8])" in line
    assert "hint: with stride s and a k×k filter the output has (H - 1) * s + k rows" in line


def test_nearest_weight_spots_bad_layouts_and_errors(capsys):
    ok, line = verdict(capsys, check_nearest_weight, lambda c, s: torch.ones(s, s))
    assert ok is False
    assert "the weight must be Tensor[C_in, C_out, kH, kW] = Tensor[1, 1, kH, kW], " \
           "got Tensor[2, 2] float32" in line
    ok, line = verdict(capsys, check_nearest_weight,
                       lambda c, s: nearest_weight(c, s).long())
    assert ok is False and "the weight must be a float tensor, got Tensor[1, 1, 2, 2] int64" in line
    ok, line = verdict(capsys, check_nearest_weight, lambda c, s: None)
    assert ok is False and "your function returned None (is the `return` missing?)" in line
    ok, line = verdict(capsys, check_nearest_weight, lambda c, s: [[1.0]])
    assert ok is False and "your function returned list, expected the weight Tensor" in line
    ok, line = verdict(capsys, check_nearest_weight, not_implemented)
    assert ok is False and "not implemented yet" in line


def test_nearest_weight_generic_hint(capsys):
    ok, line = verdict(capsys, check_nearest_weight, lambda c, s: nearest_weight(c, s).flip(-1) * 2)
    assert ok is False and "hint: each input pixel should become an s×s block" in line


# ---------------------------------------------------------------------------- overlap counts
def counts_by_loop(kernel_size, stride, length):
    counts = [0] * ((length - 1) * stride + kernel_size)
    for i in range(length):
        for t in range(kernel_size):
            counts[i * stride + t] += 1
    return counts  # a list is accepted too


def test_overlap_counts_accepts_a_loop_and_the_reference(capsys):
    ok, line = verdict(capsys, check_overlap_counts, counts_by_loop)
    assert ok is True
    assert line == "✅ correct: overlap counts match a transposed convolution of ones on 6 cases"
    ok, _ = verdict(capsys, check_overlap_counts, overlap_counts_reference)
    assert ok is True


def test_overlap_counts_by_hand():
    # k = 3, s = 2, 3 inputs: copies at 0-2, 2-4, 4-6 -> 1 1 2 1 2 1 1
    assert overlap_counts_reference(3, 2, 3).tolist() == [1, 1, 2, 1, 2, 1, 1]
    assert overlap_counts_reference(4, 2, 3).tolist() == [1, 1, 2, 2, 2, 2, 1, 1]


def test_overlap_counts_spots_constant_and_no_overlap(capsys):
    ok, line = verdict(capsys, check_overlap_counts,
                       lambda k, s, n: torch.full(((n - 1) * s + k,), -(-k // s)))
    assert ok is False
    assert line.startswith("❌ kernel_size=3, stride=2, length=5: got [2, 2, 2, 2, 2, 2, 2, 2, 2, "
                           "2, 2], which is not right")
    assert "hint: not every position receives the same number of copies" in line
    ok, line = verdict(capsys, check_overlap_counts,
                       lambda k, s, n: (torch.tensor(counts_by_loop(k, s, n)) > 0).float())
    assert ok is False and "hint: copies can overlap" in line


def test_overlap_counts_spots_length_shift_and_junk(capsys):
    ok, line = verdict(capsys, check_overlap_counts,
                       lambda k, s, n: torch.ones(n * s + k))
    assert ok is False and "got 13 counts, expected 11" in line
    assert "hint: a transposed convolution without padding has (length - 1) * stride" in line
    ok, line = verdict(capsys, check_overlap_counts,
                       lambda k, s, n: counts_by_loop(k, s, n)[1:] + [0])
    assert ok is False and "hint: copy i covers output positions i * stride" in line
    ok, line = verdict(capsys, check_overlap_counts, lambda k, s, n: "many")
    assert ok is False and "expected a 1-D tensor of counts" in line


# ------------------------------------------------------------------ checkerboard prediction
def constant_outputs():
    flat = torch.ones(1, 1, 8, 8, dtype=torch.float64)

    def ones(k):
        return torch.ones(1, 1, k, k, dtype=torch.float64)

    return {"k=3/s=2": F.conv_transpose2d(flat, ones(3), stride=2, padding=1, output_padding=1),
            "k=4/s=2": F.conv_transpose2d(flat, ones(4), stride=2, padding=1),
            "resize+conv": F.conv2d(F.interpolate(flat, scale_factor=2), ones(3), padding=1)}


def test_checkerboard_prediction_right(capsys):
    ok, line = verdict(capsys, check_checkerboard_prediction, ("k=3/s=2", 2), constant_outputs())
    assert ok is True
    assert line == ("✅ correct: 'k=3/s=2' is the checkerboard ((max - min) / mean = 1.33 inside),"
                    " period 2: its copies overlap unevenly")
    # a function, another spelling of the name, a float period
    ok, _ = verdict(capsys, check_checkerboard_prediction, lambda: ("K = 3, s = 2", 2.0),
                    constant_outputs())
    assert ok is True


def test_checkerboard_prediction_wrong_name_or_period(capsys):
    ok, line = verdict(capsys, check_checkerboard_prediction, ("k=4/s=2", 2), constant_outputs())
    assert ok is False
    assert line.startswith("❌ you predicted 'k=4/s=2', but it is uniform inside; measured "
                           "checkerboard: k=3/s=2 (period 2)")
    assert "they are the same everywhere only when the stride divides the kernel size" in line
    ok, line = verdict(capsys, check_checkerboard_prediction, ("k=3/s=2", 3), constant_outputs())
    assert ok is False
    assert "'k=3/s=2' is right, but its pattern repeats every 2 pixels, not 3" in line
    ok, line = verdict(capsys, check_checkerboard_prediction, ("bilinear", 2), constant_outputs())
    assert ok is False and "'bilinear' is not one of 'k=3/s=2', 'k=4/s=2', 'resize+conv'" in line


def test_checkerboard_period_follows_the_stride(capsys):
    flat = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    outputs = {"k=5/s=3": F.conv_transpose2d(flat, torch.ones(1, 1, 5, 5, dtype=torch.float64),
                                             stride=3)}
    ok, line = verdict(capsys, check_checkerboard_prediction, ("k=5/s=3", 3), outputs)
    assert ok is True and "period 3" in line


def test_checkerboard_prediction_stub_junk_and_bad_outputs(capsys):
    ok, line = verdict(capsys, check_checkerboard_prediction, not_implemented, constant_outputs())
    assert ok is False and "not implemented yet" in line
    ok, line = verdict(capsys, check_checkerboard_prediction, "k=3/s=2", constant_outputs())
    assert ok is False and "expected a pair (name, period), got str" in line
    with pytest.raises(TypeError, match="outputs must be a non-empty dict"):
        check_checkerboard_prediction(("a", 2), {})
