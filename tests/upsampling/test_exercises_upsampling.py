"""The lesson 02 graders: pass our implementations, fail wrong ones with a useful hint."""

import torch
import torch.nn.functional as F

from coursekit.exercises.upsampling import (
    check_bilinear_upsample,
    check_conv_transpose2d,
    check_nearest_upsample,
)
from coursekit.upsampling import (
    bed_of_nails_upsample,
    bilinear_upsample,
    bilinear_upsample_loop,
    conv_transpose2d,
    conv_transpose2d_loop,
    nearest_upsample,
)


def verdict(capsys, check, fn):
    """Run a check; return (result, the printed line) and make sure it printed exactly one line."""
    result = check(fn)
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
