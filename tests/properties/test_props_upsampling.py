"""Property tests (hypothesis) for coursekit.upsampling: every public op against torch.

Each property draws shapes (sizes 1 and empty batches included), factors and dtypes, builds
the tensors from a drawn seed, and checks the op against ``torch.nn.functional`` on every
device this machine has: equal within a tolerance (copies exactly), output shape, dtype and
device following the input, empty inputs giving empty outputs of the right shape or a clear
``ValueError``. Seeded (``derandomize=True``) so that CI sees the same examples every run.

Reduced precision (float16 / bfloat16) uses the rule of tests/upsampling/test_reduced_precision.py:
within ``rtol = eps`` of torch's float32 result on the same rounded inputs, and as close to
torch-in-that-dtype as torch's own float32 result is, plus one ulp at the largest value.
"""

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st
from props import F64, PROPS, on_devices, seeds
from reduced_precision import assert_as_close_as_torch
from torch.testing import assert_close

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
from coursekit.upsampling.bicubic import bicubic_upsample

REDUCED = [torch.float16, torch.bfloat16]
FLOATS = st.sampled_from([torch.float32, F64, *REDUCED])
small = st.integers(1, 6)  # a spatial size: 1 (the edge case) to 6
factors = st.one_of(st.integers(1, 4), st.tuples(st.integers(1, 4), st.integers(1, 4)))


def rand(seed, *shape, dtype=F64, device="cpu", integers=None):
    """Normal values (or integers in [0, integers): ties) from ``seed``, then cast and moved."""
    g = torch.Generator().manual_seed(seed)
    if integers is not None:
        t = torch.randint(0, integers, shape, generator=g).to(F64)
    else:
        t = torch.randn(*shape, generator=g, dtype=F64) * 2
    return t.to(device=device, dtype=dtype)


def assert_follows(out, x, shape):
    assert tuple(out.shape) == tuple(shape), (tuple(out.shape), shape)
    assert out.dtype == x.dtype and out.device == x.device


def assert_matches_torch(ours, ref, ref32):
    """float64 / float32: close to ``ref``; float16 / bfloat16: the module docstring's rule."""
    assert ours.shape == ref.shape and ours.dtype == ref.dtype and ours.device == ref.device
    if ref.dtype not in REDUCED:
        assert_close(ours, ref)
        return
    assert_as_close_as_torch(ours, ref, ref32)


# ----------------------------------------------------------------------- nearest, bed of nails
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2), c=st.integers(1, 3), h=small, w=small, scale=factors,
       dtype=st.sampled_from([torch.float32, torch.float16, torch.bfloat16, torch.uint8]))
def test_nearest_scale_factor_is_torch_exactly(device, seed, n, c, h, w, scale, dtype):
    x = rand(seed, n, c, h, w, dtype=dtype, device=device, integers=100)
    out = nearest_upsample(x, scale)
    sh, sw = (scale, scale) if isinstance(scale, int) else scale
    assert_follows(out, x, (n, c, h * sh, w * sw))
    assert torch.equal(out, F.interpolate(x, scale_factor=scale, mode="nearest"))


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2), h=small, w=small, s=st.integers(1, 5))
def test_nearest_float64_square_factor_is_torch_exactly(device, seed, n, h, w, s):
    # float64 on the CPU: torch's kernel is consistent for (s, s) factors (nearest.py)
    x = rand(seed, n, 2, h, w, device=device)
    assert torch.equal(nearest_upsample(x, s), F.interpolate(x, scale_factor=s, mode="nearest"))


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2), h=small, w=small, ho=st.integers(1, 13),
       wo=st.integers(1, 13))
def test_nearest_size_is_torch_exactly_also_shrinking(device, seed, n, h, w, ho, wo):
    x = rand(seed, n, 2, h, w, dtype=torch.float32, device=device)
    out = nearest_upsample(x, size=(ho, wo))
    assert_follows(out, x, (n, 2, ho, wo))
    assert torch.equal(out, F.interpolate(x, size=(ho, wo), mode="nearest"))


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2), c=st.integers(0, 3), h=st.integers(0, 4),
       w=st.integers(0, 4), scale=factors)
def test_empty_inputs_give_empty_copies(device, seed, n, c, h, w, scale):
    # zero images, channels, rows or columns: an empty output of the right shape (torch's
    # F.interpolate refuses C, H or W = 0; a copy of nothing is well defined)
    assume(0 in (n, c, h, w))
    x = rand(seed, n, c, h, w, dtype=torch.float32, device=device)
    sh, sw = (scale, scale) if isinstance(scale, int) else scale
    for out in (nearest_upsample(x, scale), bed_of_nails_upsample(x, scale)):
        assert_follows(out, x, (n, c, h * sh, w * sw))


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2), c=st.integers(1, 3), h=small, w=small, scale=factors,
       dtype=FLOATS)
def test_bed_of_nails_is_unpooling_and_a_transposed_convolution(device, seed, n, c, h, w, scale,
                                                                dtype):
    x = rand(seed, n, c, h, w, dtype=dtype, device=device)
    sh, sw = (scale, scale) if isinstance(scale, int) else scale
    out = bed_of_nails_upsample(x, scale)
    assert_follows(out, x, (n, c, h * sh, w * sw))
    assert torch.equal(out[:, :, ::sh, ::sw], x)
    corners = torch.zeros(h * sh, w * sw, dtype=torch.bool, device=device)
    corners[::sh, ::sw] = True
    assert bool((out[..., ~corners] == 0).all())
    # = max unpooling with every index in the top-left corner of its window
    rows = torch.arange(h, device=device)[:, None] * sh
    cols = torch.arange(w, device=device)[None, :] * sw
    idx = (rows * (w * sw) + cols).expand(n, c, h, w)
    assert torch.equal(max_unpool2d(x, idx, (sh, sw)), out)
    # = a transposed convolution with stride s and a corner filter, channel by channel
    weight = torch.zeros(c, c, sh, sw, dtype=dtype, device=device)
    weight[range(c), range(c), 0, 0] = 1
    assert torch.equal(conv_transpose2d(x, weight, stride=(sh, sw)), out)


# ---------------------------------------------------------------------------------- bilinear
resizes = st.one_of(
    st.builds(lambda ho, wo: dict(size=(ho, wo)), st.integers(1, 12), st.integers(1, 12)),
    st.builds(lambda s: dict(scale_factor=s), st.sampled_from([0.5, 1.0, 1.5, 1.7, 2.0, 3.0])),
    st.builds(lambda a, b: dict(scale_factor=(a, b)), st.sampled_from([0.6, 1.0, 2.0, 2.5]),
              st.sampled_from([0.75, 1.0, 1.3, 3.0])),
)


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2), h=small, w=small, resize=resizes,
       align_corners=st.booleans(), dtype=FLOATS)
def test_bilinear_upsample_is_torch(device, seed, n, h, w, resize, align_corners, dtype):
    # the reference is torch on the CPU: an axis whose size a scale factor does not change is
    # copied there (floor(3 * 1.3) = 3), on CUDA only when both axes keep their size
    x = rand(seed, n, 2, h, w, dtype=dtype, device=device)
    args = dict(mode="bilinear", align_corners=align_corners, **resize)
    try:
        ref = F.interpolate(x.cpu(), **args)
    except RuntimeError:  # torch: an empty output (0.5 * 1 pixel)
        with pytest.raises(ValueError, match="scale_factor .* gives an empty output"):
            bilinear_upsample(x, align_corners=align_corners, **resize)
        return
    ours = bilinear_upsample(x, align_corners=align_corners, **resize)
    assert_follows(ours, x, ref.shape)
    ref32 = F.interpolate(x.cpu().double(), **args) if dtype in REDUCED else None
    assert_matches_torch(ours.cpu(), ref, ref32)


@PROPS
@given(seed=seeds, h=st.integers(1, 4), w=st.integers(1, 4), ho=st.integers(1, 6),
       wo=st.integers(1, 6), align_corners=st.booleans())
def test_bilinear_loop_is_the_fast_version(seed, h, w, ho, wo, align_corners):
    x = rand(seed, 1, 2, h, w)
    assert_close(bilinear_upsample_loop(x, size=(ho, wo), align_corners=align_corners),
                 bilinear_upsample(x, size=(ho, wo), align_corners=align_corners))


def grid_sample_at(input, y, x, b):
    """F.grid_sample (align_corners=True, border) at pixel coordinates: Tensor[P, C]."""
    N, C, H, W = input.shape
    gx = x / (W - 1) * 2 - 1 if W > 1 else torch.zeros_like(x)  # size 1: every point reads 0
    gy = y / (H - 1) * 2 - 1 if H > 1 else torch.zeros_like(y)
    grid = torch.stack([gx, gy], -1).to(input.dtype).view(1, 1, -1, 2).expand(N, 1, -1, 2)
    every = F.grid_sample(input, grid, mode="bilinear", padding_mode="border",
                          align_corners=True)[:, :, 0]  # (N, C, P): each point in each image
    return every[b, :, torch.arange(len(b), device=b.device)]  # (P, C)


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(1, 3), c=st.integers(1, 3), h=small, w=small,
       points=st.tuples(st.integers(0, 3), st.integers(0, 4)), dtype=FLOATS)
def test_bilinear_sample_is_grid_sample(device, seed, n, c, h, w, points, dtype):
    img = rand(seed, n, c, h, w, dtype=dtype, device=device)
    g = torch.Generator().manual_seed(seed + 1)
    y = (torch.rand(points, generator=g, dtype=F64) * (h + 3) - 2).to(device)  # some outside
    x = (torch.rand(points, generator=g, dtype=F64) * (w + 3) - 2).to(device)
    b = torch.randint(0, n, points, generator=g).to(device)
    out = bilinear_sample(img, y, x, b)
    assert_follows(out, img, (*points, c))  # (*S, C), also for S with a 0
    flat = (y.flatten(), x.flatten(), b.flatten())
    if dtype in REDUCED:
        ref = grid_sample_at(img, *flat)
        ref32 = grid_sample_at(img.double(), *flat)
        assert_matches_torch(out.view(-1, c), ref, ref32)
    else:
        assert_close(out.view(-1, c), grid_sample_at(img, *flat))


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2), h=small, w=small, ho=st.integers(1, 12),
       wo=st.integers(1, 12), align_corners=st.booleans())
def test_bicubic_upsample_is_torch(device, seed, n, h, w, ho, wo, align_corners):
    x = rand(seed, n, 2, h, w, device=device)
    out = bicubic_upsample(x, size=(ho, wo), align_corners=align_corners)
    assert_follows(out, x, (n, 2, ho, wo))
    assert_close(out, F.interpolate(x, size=(ho, wo), mode="bicubic",
                                    align_corners=align_corners))


# ------------------------------------------------------------------------- pooling, unpooling
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2), c=st.integers(1, 3), h=small, w=small,
       kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       stride=st.one_of(st.none(), st.tuples(st.integers(1, 3), st.integers(1, 3))),
       dtype=FLOATS, ties=st.booleans())
def test_max_pool_and_unpool_are_torch_exactly(device, seed, n, c, h, w, kernel, stride, dtype,
                                               ties):
    x = rand(seed, n, c, h, w, dtype=dtype, device=device, integers=3 if ties else None)
    if kernel[0] > h or kernel[1] > w:  # a window larger than the plane: a clear error
        with pytest.raises(ValueError, match="kernel_size .* is larger than the input plane"):
            max_pool2d_with_indices(x, kernel, stride)
        return
    y, idx = max_pool2d_with_indices(x, kernel, stride)
    y_ref, idx_ref = F.max_pool2d(x, kernel, stride, return_indices=True)
    assert_follows(y, x, y_ref.shape)
    assert idx.dtype == torch.int64 and idx.device == x.device
    assert torch.equal(y, y_ref) and torch.equal(idx, idx_ref)  # first maximum on ties
    # unpooling the pooled values: positions remembered twice (overlapping windows) hold the
    # same value, so the result is defined; the input size is a valid output_size
    for size in (None, x.shape[-2:]):
        try:
            ref = F.max_unpool2d(y_ref, idx_ref, kernel, stride, output_size=size)
        except RuntimeError:  # the default size is smaller than the plane the indices point in
            with pytest.raises(ValueError, match=r"indices must lie in \[0, H_out \* W_out\)"):
                max_unpool2d(y, idx, kernel, stride, output_size=size)
            continue
        out = max_unpool2d(y, idx, kernel, stride, output_size=size)
        assert_follows(out, x, ref.shape)
        assert torch.equal(out, ref)
    # every pooled maximum is back at its place in the input plane
    back = max_unpool2d(y, idx, kernel, stride, output_size=x.shape[-2:])
    assert torch.equal(back.flatten(2).gather(2, idx.flatten(2)), y.flatten(2))


# --------------------------------------------------------------------- transposed convolution
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 2), ci=st.integers(1, 3), co=st.integers(1, 3), h=small,
       w=small, kernel=st.tuples(st.integers(1, 6), st.integers(1, 6)),
       stride=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
       extra=st.tuples(st.integers(0, 3), st.integers(0, 3)), bias=st.booleans(), dtype=FLOATS)
def test_conv_transpose2d_is_torch(device, seed, n, ci, co, h, w, kernel, stride, padding, extra,
                                   bias, dtype):
    # kernels up to 6 x 6: both the tap-by-tap (<= 16 taps) and the block path
    output_padding = (extra[0] % stride[0], extra[1] % stride[1])  # < stride
    x = rand(seed, n, ci, h, w, dtype=dtype, device=device)
    weight = rand(seed + 1, ci, co, *kernel, dtype=dtype, device=device) / ci
    b = rand(seed + 2, co, dtype=dtype, device=device) if bias else None
    args = (stride, padding, output_padding)
    Ho = (h - 1) * stride[0] - 2 * padding[0] + kernel[0] + output_padding[0]
    Wo = (w - 1) * stride[1] - 2 * padding[1] + kernel[1] + output_padding[1]
    if Ho <= 0 or Wo <= 0:  # torch fails too
        with pytest.raises(ValueError, match="padding=.* crops the whole output"):
            conv_transpose2d(x, weight, b, *args)
        return
    ours = conv_transpose2d(x, weight, b, *args)
    assert_follows(ours, x, (n, co, Ho, Wo))
    ref = F.conv_transpose2d(x, weight, b, *args)
    ref64 = F.conv_transpose2d(x.double(), weight.double(), None if b is None else b.double(),
                               *args)
    if dtype in REDUCED:
        assert_matches_torch(ours, ref, ref64)
    else:  # against float64: cuDNN may run float32 in TF32
        assert_close(ours, ref64.to(dtype))
    if h * w <= 16:  # the loop is slow: small inputs only
        assert_close(conv_transpose2d_loop(x, weight, b, *args).double(), ours.double(),
                     rtol=0, atol=1e-2 if dtype in REDUCED else 1e-5)


@PROPS
@given(seed=seeds, n=st.integers(0, 2), ci=st.integers(0, 2), h=st.integers(1, 3),
       w=st.integers(1, 3), kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
       stride=st.tuples(st.integers(1, 3), st.integers(1, 3)))
def test_conv_transpose2d_steps_end_at_the_result(seed, n, ci, h, w, kernel, stride):
    # C_in = 0 too: a sum over no channels is 0 (torch refuses an empty weight)
    x = rand(seed, n, ci, h, w)
    weight = rand(seed + 1, ci, 2, *kernel)
    steps = list(conv_transpose2d_steps(x, weight, stride))
    assert [pos for pos, _, _ in steps] == [(i, j) for i in range(h) for j in range(w)]
    full = conv_transpose2d(x, weight, stride=stride)
    assert_close(steps[-1][2], full)
    if ci == 0:
        assert bool((full == 0).all())
