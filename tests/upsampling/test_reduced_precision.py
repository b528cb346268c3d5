"""float16 / bfloat16: every upsampling op against torch in that dtype.

Coordinates, weights and sums are float32 inside our functions; the output is rounded to
the input's dtype once. The tolerances, with ``eps = torch.finfo(dtype).eps`` (float16
2**-10, bfloat16 2**-7, one unit in the last place at 1.0):

* against torch in float32 (float64 for the transposed convolution, which cuDNN may
  run in TF32) on the same (already rounded) inputs, ``ref32``: within
  ``rtol = eps, atol = 1e-4`` (half an ulp of rounding plus float32 noise);
* against torch in the reduced dtype, ``ref``: ``max |ours - ref| <= max |ref32 - ref| +
  eps * max |ref32|``, i.e. as close to torch-in-that-dtype as torch's own float32 result
  is, plus one ulp at the largest value.

Copies (nearest, bed of nails, max pooling and unpooling) are exact: ``torch.equal``.
Before the fix, bilinear 256 -> 512 columns in bfloat16 was off by 1.5 (coordinates in
bfloat16 cannot even hold the integer 257).
"""

import pytest
import torch
import torch.nn.functional as F
from reduced_precision import assert_as_close_as_torch

from coursekit.upsampling import (
    bed_of_nails_upsample,
    bilinear_sample,
    bilinear_upsample,
    bilinear_upsample_loop,
    conv_transpose2d,
    conv_transpose2d_loop,
    conv_transpose2d_steps,
    max_pool2d_with_indices,
    max_unpool2d,
    nearest_upsample,
)

DTYPES = [torch.float16, torch.bfloat16]


def rand(*shape, dtype, device="cpu"):
    return (torch.randn(*shape) * 2).to(device, dtype)


# ---------------------------------------------------------------------------- bilinear
BILINEAR = [  # (input shape, resize)
    ((1, 2, 4, 256), dict(size=(8, 512))),  # 256 -> 512 columns (was off by 1.5 in bfloat16)
    ((1, 1, 2, 1024), dict(size=(4, 2048))),  # 1024 -> 2048 columns (was off by 0.5 in float16)
    ((1, 1, 300, 3), dict(scale_factor=(2, 1))),  # rows 300 -> 600
    ((2, 3, 16, 16), dict(scale_factor=2)),
    ((2, 3, 16, 16), dict(scale_factor=1.7)),
    ((1, 2, 5, 7), dict(size=(9, 13))),
    ((1, 2, 33, 17), dict(size=(12, 40))),  # down in one axis, up in the other
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape, resize", BILINEAR)
@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_upsample(dtype, shape, resize, align_corners, device):
    x = rand(*shape, dtype=dtype, device=device)
    ours = bilinear_upsample(x, align_corners=align_corners, **resize)
    ref = F.interpolate(x, mode="bilinear", align_corners=align_corners, **resize)
    ref32 = F.interpolate(x.float(), mode="bilinear", align_corners=align_corners, **resize)
    assert_as_close_as_torch(ours, ref, ref32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bilinear_upsample_backward(dtype):
    x = rand(2, 3, 8, 300, dtype=dtype).requires_grad_()
    ours = bilinear_upsample(x, size=(16, 600))
    ref = F.interpolate(x, size=(16, 600), mode="bilinear")
    x32 = x.detach().float().requires_grad_()
    ref32 = F.interpolate(x32, size=(16, 600), mode="bilinear")
    g = rand(*ref.shape, dtype=dtype)
    (g_ours,) = torch.autograd.grad(ours, x, g)
    (g_ref,) = torch.autograd.grad(ref, x, g)
    (g_ref32,) = torch.autograd.grad(ref32, x32, g.float())
    assert_as_close_as_torch(g_ours, g_ref, g_ref32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_bilinear_upsample_loop(dtype):
    x = rand(1, 2, 3, 40, dtype=dtype)
    ours = bilinear_upsample_loop(x, size=(5, 81))
    ref = F.interpolate(x, size=(5, 81), mode="bilinear")
    assert_as_close_as_torch(ours, ref, F.interpolate(x.float(), size=(5, 81), mode="bilinear"))


def grid_sample_at(input, y, x):
    """F.grid_sample in input's dtype at pixel coordinates (align_corners=True, border)."""
    N, C, H, W = input.shape
    grid = torch.stack([x / (W - 1) * 2 - 1, y / (H - 1) * 2 - 1], dim=-1).to(input.dtype)
    out = F.grid_sample(input, grid.view(1, 1, -1, 2).expand(N, 1, -1, 2), mode="bilinear",
                        padding_mode="border", align_corners=True)  # (N, C, 1, P)
    return out[0, :, 0].t()  # (P, C) of image 0


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("coordinate_dtype", [torch.float32, "same"])
def test_bilinear_sample(dtype, coordinate_dtype):
    img = rand(1, 3, 20, 400, dtype=dtype)
    cdt = dtype if coordinate_dtype == "same" else coordinate_dtype
    y = (torch.rand(500) * 21 - 0.5).to(cdt)
    x = (torch.rand(500) * 401 - 0.5).to(cdt)
    img.requires_grad_()
    img32 = img.detach().float().requires_grad_()
    ours = bilinear_sample(img, y, x)  # (P, C)
    ref = grid_sample_at(img, y, x)
    ref32 = grid_sample_at(img32, y.float(), x.float())
    assert_as_close_as_torch(ours, ref, ref32)
    g = rand(*ref.shape, dtype=dtype)  # backward: the scatter-add of 4 weights per sample
    (g_ours,) = torch.autograd.grad(ours, img, g)
    (g_ref,) = torch.autograd.grad(ref, img, g)
    (g_ref32,) = torch.autograd.grad(ref32, img32, g.float())
    assert_as_close_as_torch(g_ours, g_ref, g_ref32)


# ----------------------------------------------------------------- copies: exact equality
@pytest.mark.parametrize("dtype", DTYPES)
def test_nearest_and_bed_of_nails_are_exact(dtype, device):
    x = rand(2, 3, 5, 300, dtype=dtype, device=device)
    for scale in (2, 3, (1, 41), (5, 2)):
        ref = F.interpolate(x, scale_factor=scale, mode="nearest")
        assert torch.equal(nearest_upsample(x, scale), ref)
    assert torch.equal(nearest_upsample(x, size=(9, 611)),
                       F.interpolate(x, size=(9, 611), mode="nearest"))
    nails = bed_of_nails_upsample(x, 2)
    assert nails.dtype == dtype and torch.equal(nails[:, :, ::2, ::2], x)
    corners = torch.zeros(10, 600, dtype=torch.bool, device=device)
    corners[::2, ::2] = True
    assert torch.equal(nails, F.interpolate(x, scale_factor=2, mode="nearest") * corners)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel_size, stride", [(2, None), (3, 2), ((2, 3), (1, 2))])
def test_max_pool_and_unpool_are_exact(dtype, kernel_size, stride, device):
    x = rand(2, 3, 9, 11, dtype=dtype, device=device)
    y, idx = max_pool2d_with_indices(x, kernel_size, stride)
    y_ref, idx_ref = F.max_pool2d(x, kernel_size, stride, return_indices=True)
    assert y.dtype == dtype and torch.equal(y, y_ref) and torch.equal(idx, idx_ref)
    if stride is None:  # non-overlapping windows: every position is remembered once
        out = max_unpool2d(y, idx, kernel_size, stride, output_size=x.shape[-2:])
        ref = F.max_unpool2d(y_ref, idx_ref, kernel_size, stride, output_size=x.shape[-2:])
        assert out.dtype == dtype and torch.equal(out, ref)


# --------------------------------------------------------------------- transposed conv
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("kernel, stride, padding, output_padding",
                         [((3, 3), 2, 1, 1), ((4, 4), 2, 1, 0), ((2, 3), (2, 3), 0, (1, 2))])
def test_conv_transpose2d(dtype, kernel, stride, padding, output_padding, device):
    x = rand(2, 16, 9, 10, dtype=dtype, device=device)
    w = (torch.randn(16, 8, *kernel) / 8).to(device, dtype)
    b = torch.randn(8).to(device, dtype)
    args = (stride, padding, output_padding)
    ours = conv_transpose2d(x, w, b, *args)
    ref = F.conv_transpose2d(x, w, b, *args)
    ref32 = F.conv_transpose2d(x.double(), w.double(), b.double(), *args).float()
    assert_as_close_as_torch(ours, ref, ref32)
    assert_as_close_as_torch(conv_transpose2d_loop(x, w, b, *args), ref, ref32)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_transpose2d_backward(dtype):
    x = rand(2, 8, 6, 7, dtype=dtype).requires_grad_()
    w = (torch.randn(8, 4, 3, 3) / 8).to(dtype).requires_grad_()
    ours = conv_transpose2d(x, w, None, 2, 1, 1)
    ref = F.conv_transpose2d(x, w, None, 2, 1, 1)
    x32 = x.detach().float().requires_grad_()
    w32 = w.detach().float().requires_grad_()
    ref32 = F.conv_transpose2d(x32, w32, None, 2, 1, 1)
    g = rand(*ref.shape, dtype=dtype)
    for ours_g, ref_g, ref32_g in zip(torch.autograd.grad(ours, (x, w), g),
                                      torch.autograd.grad(ref, (x, w), g),
                                      torch.autograd.grad(ref32, (x32, w32), g.float()),
                                      strict=True):
        assert_as_close_as_torch(ours_g, ref_g, ref32_g)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_transpose2d_steps(dtype):
    x = rand(1, 4, 3, 3, dtype=dtype)
    w = (torch.randn(4, 2, 3, 3) / 4).to(dtype)
    *_, (_, _, running) = conv_transpose2d_steps(x, w, stride=2)
    ref = F.conv_transpose2d(x, w, stride=2)
    assert_as_close_as_torch(running, ref, F.conv_transpose2d(x.float(), w.float(), stride=2))
