"""max_pool2d_with_indices == F.max_pool2d(return_indices=True); max_unpool2d == F.max_unpool2d."""

import pytest
import torch
import torch.nn.functional as F
from torch.autograd import gradcheck
from torch.testing import assert_close

from coursekit.upsampling import bed_of_nails_upsample, max_pool2d_with_indices, max_unpool2d

LECTURE = torch.tensor([[1.0, 2, 6, 3],
                        [3, 5, 2, 1],
                        [1, 2, 2, 1],
                        [7, 3, 4, 8]]).view(1, 1, 4, 4)


def test_pool_and_unpool_by_hand():
    y, idx = max_pool2d_with_indices(LECTURE, 2)
    assert_close(y, torch.tensor([[5.0, 6], [7, 8]]).view(1, 1, 2, 2))
    # flat positions h * 4 + w: 5 at (1, 1), 6 at (0, 2), 7 at (3, 0), 8 at (3, 3)
    assert idx.tolist() == [[[[5, 2], [12, 15]]]]
    decoder = torch.tensor([[10.0, 20], [30, 40]]).view(1, 1, 2, 2)
    expected = torch.tensor([[0.0, 0, 20, 0],
                             [0, 10, 0, 0],
                             [0, 0, 0, 0],
                             [30, 0, 0, 40]]).view(1, 1, 4, 4)
    assert_close(max_unpool2d(decoder, idx, 2), expected)


def test_ties_take_the_first_max_in_scan_order_by_hand():
    x = torch.tensor([[1.0, 1, 0, 5],
                      [1, 1, 5, 0]]).view(1, 1, 2, 4)
    y, idx = max_pool2d_with_indices(x, 2)
    assert_close(y, torch.tensor([[1.0, 5]]).view(1, 1, 1, 2))
    # the first of the four 1s; the 5 at (0, 3) before the 5 at (1, 2)
    assert idx.tolist() == [[[[0, 3]]]]


def test_overlapping_windows_stride_by_hand():
    x = torch.tensor([[0.0, 9, 1, 2, 3]]).view(1, 1, 1, 5)
    y, idx = max_pool2d_with_indices(x, (1, 3), (1, 2))  # windows [0:3], [2:5]
    assert_close(y, torch.tensor([[9.0, 3]]).view(1, 1, 1, 2))
    assert idx.tolist() == [[[[1, 4]]]]


def pair(v):
    return v if isinstance(v, tuple) else (v, v)


POOLS = [(2, None), (3, None), (3, 2), ((2, 3), (1, 2)), (1, None), ((3, 1), 1)]


@pytest.mark.parametrize("shape", [(1, 1, 4, 4), (2, 3, 7, 6), (2, 2, 9, 5)])
@pytest.mark.parametrize("kernel_size,stride", POOLS)
def test_pool_matches_torch(shape, kernel_size, stride):
    x = torch.randn(*shape, dtype=torch.float64, requires_grad=True)
    y, idx = max_pool2d_with_indices(x, kernel_size, stride)
    y_ref, idx_ref = F.max_pool2d(x, kernel_size, stride, return_indices=True)
    assert_close(y, y_ref)
    assert torch.equal(idx, idx_ref) and idx.dtype == torch.int64
    g = torch.randn_like(y_ref)
    assert_close(torch.autograd.grad(y, x, g)[0], torch.autograd.grad(y_ref, x, g)[0])


@pytest.mark.parametrize("kernel_size,stride", POOLS)
def test_pool_ties_match_torch(kernel_size, stride):
    x = torch.randint(0, 3, (2, 3, 7, 6)).double()  # many ties
    y, idx = max_pool2d_with_indices(x, kernel_size, stride)
    y_ref, idx_ref = F.max_pool2d(x, kernel_size, stride, return_indices=True)
    assert_close(y, y_ref)
    assert torch.equal(idx, idx_ref)


@pytest.mark.parametrize("shape", [(1, 1, 4, 4), (2, 3, 7, 6)])
@pytest.mark.parametrize("kernel_size,stride", POOLS)
@pytest.mark.parametrize("use_output_size", [False, True])
def test_unpool_matches_torch(shape, kernel_size, stride, use_output_size):
    x = torch.randn(*shape, dtype=torch.float64)
    if not use_output_size:  # crop x to the size the pooled map covers, the default output size
        _, idx = F.max_pool2d(x, kernel_size, stride, return_indices=True)
        (kh, kw), (sh, sw) = pair(kernel_size), pair(stride or kernel_size)
        x = x[:, :, :(idx.shape[2] - 1) * sh + kh, :(idx.shape[3] - 1) * sw + kw]
    _, idx = F.max_pool2d(x, kernel_size, stride, return_indices=True)
    values = torch.randn(idx.shape, dtype=torch.float64, requires_grad=True)  # the decoder's values
    size = x.shape[-2:] if use_output_size else None
    ours = max_unpool2d(values, idx, kernel_size, stride, output_size=size)
    ref = F.max_unpool2d(values, idx, kernel_size, stride, output_size=size)
    # Overlapping windows (stride < kernel) can remember the same position twice; which value
    # lands there is unspecified (torch's CPU loop keeps the last, CUDA any): compare the rest,
    # and check that a shared position holds one of its candidates.
    N, C = idx.shape[:2]
    flat = idx.reshape(N, C, -1)
    hits = torch.zeros(N, C, ref[0, 0].numel(), dtype=torch.long)
    hits.scatter_add_(2, flat, torch.ones_like(flat))
    shared = (hits > 1).view_as(ref)
    assert_close(ours[~shared], ref[~shared])
    for n, c, pos in (hits > 1).nonzero().tolist():
        candidates = values.reshape(N, C, -1)[n, c][flat[n, c] == pos]
        assert bool((candidates == ours.reshape(N, C, -1)[n, c, pos]).any())
    g = torch.randn_like(ref)
    assert_close(torch.autograd.grad(ours, values, g)[0], torch.autograd.grad(ref, values, g)[0])


def test_unpool_output_size_with_batch_and_channels():
    x = torch.randn(2, 3, 7, 7, dtype=torch.float64)  # floor mode drops the last row and column
    y, idx = max_pool2d_with_indices(x, 2)
    ours = max_unpool2d(y, idx, 2, output_size=(2, 3, 7, 7))
    assert ours.shape == (2, 3, 7, 7)
    assert_close(ours, F.max_unpool2d(y, idx, 2, output_size=x.shape))


def test_bed_of_nails_is_unpooling_with_corner_indices():
    x = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    rows = torch.arange(4).view(4, 1) * 2
    cols = torch.arange(5).view(1, 5) * 2
    # the top-left of each 2×2 block of the 8×10 output
    corner = (rows * 10 + cols).expand(2, 3, 4, 5)
    assert_close(max_unpool2d(x, corner, 2), bed_of_nails_upsample(x, 2))


def test_gradcheck():
    x = torch.randn(1, 2, 5, 6, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: max_pool2d_with_indices(t, 2)[0], (x,))
    assert gradcheck(lambda t: max_pool2d_with_indices(t, 3, (2, 1))[0], (x,))
    _, idx = max_pool2d_with_indices(x.detach(), 2)
    v = torch.randn(idx.shape, dtype=torch.float64, requires_grad=True)
    assert gradcheck(lambda t: max_unpool2d(t, idx, 2, output_size=(5, 6)), (v,))


def test_bad_inputs():
    x = torch.randn(1, 2, 4, 4)
    y, idx = max_pool2d_with_indices(x, 2)
    with pytest.raises(ValueError,
                       match=r"x must be Tensor\[N, C, H, W\] \(4-D\), got Tensor\[2, 4, 4\]"):
        max_pool2d_with_indices(x[0], 2)
    with pytest.raises(ValueError, match="kernel_size must be positive, got 0"):
        max_pool2d_with_indices(x, 0)
    with pytest.raises(ValueError, match=r"stride must be positive, got \(1, -1\)"):
        max_pool2d_with_indices(x, 2, (1, -1))
    with pytest.raises(TypeError, match="kernel_size must be an int or a pair of ints, got 2.0"):
        max_pool2d_with_indices(x, 2.0)
    with pytest.raises(ValueError,
                       match=r"kernel_size \(5, 5\) is larger than the input plane \(4, 4\)"):
        max_pool2d_with_indices(x, 5)
    with pytest.raises(ValueError, match=r"indices must have the shape of x Tensor\[1, 2, 2, 2\], "
                                         r"got Tensor\[1, 2, 1, 2\]"):
        max_unpool2d(y, idx[:, :, :1], 2)
    with pytest.raises(TypeError, match=r"indices must be an int64 Tensor \(from "
                                        r"max_pool2d_with_indices\), "
                                        r"got Tensor\[1, 2, 2, 2\] float32"):
        max_unpool2d(y, idx.float(), 2)
    with pytest.raises(ValueError, match=r"output_size \(6, 4\) is inconsistent .* dim 0 must be "
                                         r"strictly between 2 and 6"):
        max_unpool2d(y, idx, 2, output_size=(6, 4))
    with pytest.raises(ValueError,
                       match=r"output_size must be \(H_out, W_out\) or \(N, C, H_out, W_out\)"):
        max_unpool2d(y, idx, 2, output_size=(4, 4, 4))
    with pytest.raises(ValueError, match=r"indices must lie in \[0, H_out \* W_out\) = \[0, 16\), "
                                         r"got values in \[0, 16\]"):
        max_unpool2d(y, idx.clamp(max=0) + torch.tensor([0, 16]).view(1, 2, 1, 1), 2)
    with pytest.raises(ValueError, match="stride must be positive, got 0"):
        max_unpool2d(y, idx, 2, stride=0)


def test_device_and_dtype_follow_input(device):
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(2, 3, 6, 8, dtype=dtype, device=device)
        y, idx = max_pool2d_with_indices(x, 2)
        y_ref, idx_ref = F.max_pool2d(x, 2, return_indices=True)
        assert y.device == x.device and y.dtype == dtype and idx.device == x.device
        assert_close(y, y_ref)
        assert torch.equal(idx, idx_ref)
        out = max_unpool2d(y, idx, 2)
        assert out.device == x.device and out.dtype == dtype
        assert_close(out, F.max_unpool2d(y_ref, idx_ref, 2))
