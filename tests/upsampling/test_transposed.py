"""conv_transpose2d == F.conv_transpose2d == the input-gradient of a strided F.conv2d."""

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck
from torch.testing import assert_close

from coursekit.upsampling import (
    bed_of_nails_upsample,
    conv_transpose2d,
    conv_transpose2d_loop,
    conv_transpose2d_steps,
    nearest_upsample,
)

LECTURE = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64).view(1, 1, 2, 2)
ONES = torch.ones(1, 1, 3, 3, dtype=torch.float64)


def test_lecture_example_by_hand():
    # 3×3 filter of ones, stride 2: copies weighted 1, 2, 3, 4 at (0,0), (0,2), (2,0), (2,2),
    # summed
    expected = torch.tensor([[1.0, 1, 3, 2, 2],
                             [1, 1, 3, 2, 2],
                             [4, 4, 10, 6, 6],
                             [3, 3, 7, 4, 4],
                             [3, 3, 7, 4, 4]], dtype=torch.float64).view(1, 1, 5, 5)
    assert_close(conv_transpose2d(LECTURE, ONES, stride=2), expected)
    # padding=1 crops one row/column from each side: the lecture's 2×2 -> 4×4 needs
    # output_padding=1
    assert_close(conv_transpose2d(LECTURE, ONES, stride=2, padding=1), expected[:, :, 1:4, 1:4])
    four = conv_transpose2d(LECTURE, ONES, stride=2, padding=1, output_padding=1)
    assert four.shape == (1, 1, 4, 4)
    assert_close(four[:, :, :3, :3], expected[:, :, 1:4, 1:4])
    assert_close(four[:, :, 3], torch.tensor([[[3.0, 7, 4, 4]]], dtype=torch.float64))


def test_bias_and_channels_by_hand():
    x = torch.tensor([1.0, 10.0], dtype=torch.float64).view(1, 2, 1, 1)  # one pixel, two channels
    # (C_in=2, C_out=1, 1, 2)
    w = torch.tensor([[[[1.0, 2.0]]], [[[3.0, 4.0]]]], dtype=torch.float64)
    out = conv_transpose2d(x, w, torch.tensor([0.5], dtype=torch.float64))
    assert_close(out, torch.tensor([[[[1 + 30 + 0.5, 2 + 40 + 0.5]]]], dtype=torch.float64))


CONFIGS = [  # (kernel, stride, padding, output_padding)
    ((3, 3), 1, 0, 0), ((3, 3), 2, 0, 0), ((3, 3), 2, 1, 1), ((4, 4), 2, 1, 0),
    ((2, 3), (2, 3), (0, 1), (1, 2)),
    ((1, 1), 3, 0, 2), ((5, 2), (1, 2), (2, 0), (0, 1)), ((3, 3), 3, 1, 0),
]


@pytest.mark.parametrize("shape", [(1, 1, 2, 2), (2, 3, 4, 5)])
@pytest.mark.parametrize("kernel,stride,padding,output_padding", CONFIGS)
@pytest.mark.parametrize("with_bias", [False, True])
def test_matches_torch_forward_and_backward(shape, kernel, stride, padding, output_padding,
                                            with_bias):
    N, Ci, H, W = shape
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    w = torch.randn(Ci, 4, *kernel, dtype=torch.float64, requires_grad=True)
    b = torch.randn(4, dtype=torch.float64, requires_grad=True) if with_bias else None
    ours = conv_transpose2d(x, w, b, stride, padding, output_padding)
    ref = F.conv_transpose2d(x, w, b, stride, padding, output_padding)
    assert_close(ours, ref)
    g = torch.randn_like(ref)
    inputs = (x, w) if b is None else (x, w, b)
    grads = torch.autograd.grad(ours, inputs, g)
    for got, expected in zip(grads, torch.autograd.grad(ref, inputs, g), strict=True):
        assert_close(got, expected)


@pytest.mark.parametrize("kernel,stride,padding,output_padding", CONFIGS)
def test_is_the_gradient_of_a_strided_convolution(kernel, stride, padding, output_padding):
    """"Backward strided convolution": conv_transpose2d(y, w) = d<conv2d(x, w), y>/dx."""
    y = torch.randn(2, 3, 4, 5, dtype=torch.float64)  # the conv's output, transposed conv's input
    # conv2d: (C_out=3, C_in=2); transposed: (C_in=3, C_out=2)
    w = torch.randn(3, 2, *kernel, dtype=torch.float64)
    out = conv_transpose2d(y, w, None, stride, padding, output_padding)
    # a conv input of that size
    x = torch.zeros(2, 2, *out.shape[-2:], dtype=torch.float64, requires_grad=True)
    conv = F.conv2d(x, w, stride=stride, padding=padding)
    assert conv.shape == y.shape
    (grad_x,) = torch.autograd.grad(conv, x, grad_outputs=y)
    assert_close(out, grad_x)


@pytest.mark.parametrize("kernel,stride,padding,output_padding", CONFIGS[:5])
def test_loop_equals_vectorised(kernel, stride, padding, output_padding):
    x = torch.randn(2, 3, 3, 4, dtype=torch.float64)
    w = torch.randn(3, 2, *kernel, dtype=torch.float64)
    b = torch.randn(2, dtype=torch.float64)
    assert_close(conv_transpose2d_loop(x, w, b, stride, padding, output_padding),
                 conv_transpose2d(x, w, b, stride, padding, output_padding))


def test_steps_add_one_weighted_copy_at_a_time():
    x = torch.randn(2, 3, 2, 3, dtype=torch.float64)
    w = torch.randn(3, 4, 3, 3, dtype=torch.float64)
    steps = list(conv_transpose2d_steps(x, w, stride=2))
    assert [pos for pos, _, _ in steps] == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1), (1, 2)]
    previous = torch.zeros(2, 4, 5, 7, dtype=torch.float64)
    for (i, j), copy, running in steps:
        # the filter weighted by the input pixel
        assert_close(copy, (x[:, :, i, j, None, None, None] * w).sum(1))
        delta = running - previous
        assert_close(delta[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3], copy)  # placed at (2i, 2j) ...
        delta[:, :, 2 * i:2 * i + 3, 2 * j:2 * j + 3] = 0
        assert not delta.any()  # ... and nowhere else
        previous = running
    assert_close(steps[-1][2], F.conv_transpose2d(x, w, stride=2))


def test_nearest_and_bed_of_nails_are_fixed_transposed_convolutions():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    eye = torch.eye(3, dtype=torch.float64).view(3, 3, 1, 1)  # channel c -> channel c
    ones = torch.ones(2, 2, dtype=torch.float64)
    assert_close(conv_transpose2d(x, eye * ones, stride=2), nearest_upsample(x, 2))
    corner = torch.zeros(2, 2, dtype=torch.float64)
    corner[0, 0] = 1
    assert_close(conv_transpose2d(x, eye * corner, stride=2), bed_of_nails_upsample(x, 2))


def test_gradcheck():
    x = torch.randn(1, 2, 3, 2, dtype=torch.float64, requires_grad=True)
    w = torch.randn(2, 3, 3, 2, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda *t: conv_transpose2d(*t, stride=2, padding=1, output_padding=1),
                     (x, w, b))
    assert gradcheck(lambda *t: conv_transpose2d(*t, stride=(1, 3)), (x, w))


def test_bad_inputs():
    x = torch.randn(1, 3, 4, 4)
    w = torch.randn(3, 2, 3, 3)
    with pytest.raises(ValueError,
                       match=r"x must be Tensor\[N, C, H, W\] \(4-D\), got Tensor\[3, 4, 4\]"):
        conv_transpose2d(x[0], w)
    with pytest.raises(TypeError, match=r"x must be a floating-point Tensor\[N, C_in, H, W\] "
                                        r"\(float16, bfloat16, float32 or float64\), got "
                                        r"Tensor\[1, 3, 4, 4\] int64"):
        conv_transpose2d(x.long(), w)
    with pytest.raises(ValueError, match=r"weight must be Tensor\[C_in=3, C_out, kH, kW\] "
                                         r".* got Tensor\[2, 3, 3, 3\]"):
        conv_transpose2d(x, w.transpose(0, 1))
    with pytest.raises(ValueError, match=r"weight must be Tensor\[C_in=3, C_out, kH, kW\] "
                                         r".* got Tensor\[3, 2, 3\]"):
        conv_transpose2d(x, w[..., 0])
    with pytest.raises(TypeError, match=r"weight must be Tensor\[C_in=3, C_out, kH, kW\] "
                                        r".* got list"):
        conv_transpose2d(x, [1.0])
    with pytest.raises(TypeError, match="weight must have the dtype and device of x"):
        conv_transpose2d(x, w.double())
    with pytest.raises(ValueError,
                       match=r"bias must be Tensor\[C_out=2\] or None, got Tensor\[3\]"):
        conv_transpose2d(x, w, torch.zeros(3))
    with pytest.raises(ValueError, match="stride must be positive, got 0"):
        conv_transpose2d(x, w, stride=0)
    with pytest.raises(ValueError, match=r"stride must be positive, got \(2, -1\)"):
        conv_transpose2d(x, w, stride=(2, -1))
    with pytest.raises(ValueError, match="padding must be >= 0, got -1"):
        conv_transpose2d(x, w, padding=-1)
    with pytest.raises(ValueError, match="output_padding must be smaller than stride, got "
                                         "output_padding=2 and stride=2"):
        conv_transpose2d(x, w, stride=2, output_padding=2)
    with pytest.raises(ValueError, match="output_padding must be smaller than stride"):
        conv_transpose2d(x, w, output_padding=1)
    with pytest.raises(ValueError, match="padding=3 crops the whole output"):
        conv_transpose2d(x, w, padding=3)
    with pytest.raises(TypeError, match="stride must be an int or a pair of ints, got 1.5"):
        conv_transpose2d(x, w, stride=1.5)
    with pytest.raises(ValueError, match=r"weight must be Tensor\[C_in=3"):
        next(conv_transpose2d_steps(x, w[:2], stride=2))


def test_device_and_dtype_follow_input(device):
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(2, 3, 4, 5, dtype=dtype, device=device)
        w = torch.randn(3, 2, 3, 3, dtype=dtype, device=device)
        b = torch.randn(2, dtype=dtype, device=device)
        out = conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
        assert out.device == x.device and out.dtype == dtype
        assert_close(out, F.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1))
        *_, running = list(conv_transpose2d_steps(x, w, 2))[-1]
        assert running.device == x.device and running.dtype == dtype
