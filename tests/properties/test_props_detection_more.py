"""Property tests (hypothesis) for coursekit.detection's RoI Pool picture,
``roi_pool_misalignment``: the true bins against the cells RoI Pool really maximises over.

Drawn: boxes (sub-cell, zero-size and large), output sizes (1 included), spatial scales;
``box`` as a tuple or a tensor of any float dtype. References: ``torchvision.ops.roi_pool``
itself (on a feature map whose largest value in any rectangle is its bottom-right cell, the
pooled value names the bin's last cell) and the even split of the box written out. Seeded
(``derandomize=True``).
"""

import torch
import torchvision.ops as tv
from hypothesis import given
from hypothesis import strategies as st
from props import F64, PROPS, floats, gen, seeds
from torch.testing import assert_close

from coursekit.detection import roi_pool_misalignment

output_sizes = st.one_of(st.integers(1, 7), st.tuples(st.integers(1, 7), st.integers(1, 7)))
scales = st.sampled_from([1.0, 0.5, 0.25, 0.125])


@PROPS
@given(seed=seeds, size=output_sizes, scale=scales, as_tensor=st.booleans(), dtype=floats)
def test_roi_pool_misalignment_is_roi_pool(seed, size, scale, as_tensor, dtype):
    g = gen(seed)
    xy = torch.rand(2, generator=g, dtype=F64) * 40
    wh = torch.rand(2, generator=g, dtype=F64) * 40 * (torch.rand(1, generator=g) < 0.9)
    box = torch.cat([xy, xy + wh]).to(dtype)  # zero-size one time in ten
    out = roi_pool_misalignment(box if as_tensor else tuple(box.tolist()), size, scale)
    ph, pw = (size, size) if isinstance(size, int) else size
    assert out.true_bins.shape == out.pooled_bins.shape == (ph, pw, 4)
    assert out.true_bins.dtype == out.pooled_bins.dtype == F64
    # the true bins split the scaled box evenly, edge to edge
    x1, y1, x2, y2 = (box.to(F64) * scale).tolist()
    t = out.true_bins
    assert_close(t[0, 0, :2], torch.tensor([x1, y1], dtype=F64))
    assert_close(t[-1, -1, 2:], torch.tensor([x2, y2], dtype=F64))
    assert_close(t[..., 2] - t[..., 0], torch.full((ph, pw), (x2 - x1) / pw, dtype=F64))
    assert_close(t[..., 3] - t[..., 1], torch.full((ph, pw), (y2 - y1) / ph, dtype=F64))
    # the pooled bins are whole cells, and the ones roi_pool maximises over
    p = out.pooled_bins
    assert torch.equal(p, p.round())
    side = 96  # larger than any box: no bin is clipped
    ramp = torch.arange(side, dtype=F64)
    feature = (ramp[:, None] * side + ramp[None, :])[None, None]  # (1, 1, side, side): y*side + x
    pooled = tv.roi_pool(feature, torch.cat([box.new_zeros(1), box]).to(F64)[None], (ph, pw),
                         scale)[0, 0]  # (ph, pw)
    nonempty = (p[..., 2] > p[..., 0]) & (p[..., 3] > p[..., 1])
    last = (p[..., 3] - 1) * side + (p[..., 2] - 1)  # the bin's bottom-right cell
    assert torch.equal(pooled[nonempty], last[nonempty])
    assert bool((pooled[~nonempty] == 0).all())  # an empty bin pools to 0
    # the reported error is the largest edge offset, in cells and in image units
    assert out.max_error == float((p - t).abs().max()) >= 0
    assert out.max_error_image == out.max_error / scale
