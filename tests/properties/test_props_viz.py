"""Property tests (hypothesis) for coursekit.viz: colour conversions, colour maps for depth,
flow and labels, palettes, mask overlays, segment boundaries and image grids.

Drawn: leading dims (0 included), image sides (1 included), depths with constant, infinite and
NaN values, flows (zero included), label maps with ignored pixels, segment maps with thin parts,
mask counts (0 included) and overlaps, palette sizes (0 included), grids of 1 to 9 images;
dtypes. References: matplotlib 3 (``colors.hsv_to_rgb`` / ``rgb_to_hsv``, ``colormaps``),
torchvision (``utils.flow_to_image``, ``_make_colorwheel``, ``make_grid``) and the
invariants: colours in [0, 1], hsv <-> rgb round trips, a palette's colour k does not depend
on its length, every segment keeps a pixel. Checked on every device this machine has; seeded
(``derandomize=True``).
"""

import matplotlib
import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from matplotlib import colors as mcolors
from props import F64, PROPS, floats, gen, on_devices, seeds
from test_props_sam import batches
from torch.testing import assert_close
from torchvision.utils import _make_colorwheel, flow_to_image, make_grid

from coursekit.viz import (
    CATEGORY_COLORS,
    depth_to_color,
    flow_to_color,
    hsv_to_rgb,
    id_colors,
    image_grid,
    instance_colors,
    label_colors,
    make_colorwheel,
    overlay_masks,
    palette,
    rgb_to_hsv,
    segment_boundaries,
    to_numpy_image,
)

sides = st.integers(1, 8)
image_sizes = st.tuples(sides, sides)


def in_unit_range(t):
    return bool(((t >= 0) & (t <= 1)).all())


# ----------------------------------------------------------------------------- hsv <-> rgb
@on_devices
@PROPS
@given(seed=seeds, batch=batches, greys=st.booleans(), dtype=floats)
def test_hsv_rgb_are_matplotlib_and_round_trip(device, seed, batch, greys, dtype):
    rgb = torch.rand(*batch, 3, generator=gen(seed), dtype=F64)
    if greys:  # r = g = b: hue and saturation 0
        rgb = rgb[..., :1].expand_as(rgb).clone()
    rgb = rgb.to(device, dtype)
    hsv = rgb_to_hsv(rgb)
    assert hsv.shape == rgb.shape and hsv.dtype == dtype and hsv.device == rgb.device
    assert in_unit_range(hsv)
    tol = {"rtol": 1e-12, "atol": 1e-12} if dtype == F64 else {"rtol": 1e-5, "atol": 1e-5}
    if rgb.numel():  # matplotlib wants at least one colour
        ref = torch.from_numpy(mcolors.rgb_to_hsv(rgb.cpu().double().numpy()))
        assert_close(hsv.cpu().double(), ref, **tol)
        back_ref = torch.from_numpy(mcolors.hsv_to_rgb(hsv.cpu().double().numpy()))
        assert_close(hsv_to_rgb(hsv).cpu().double(), back_ref, **tol)
    back = hsv_to_rgb(hsv)
    assert back.dtype == dtype and in_unit_range(back)
    assert_close(back, rgb, **tol)


# ----------------------------------------------------------------------------------- depth
@on_devices
@PROPS
@given(seed=seeds, hw=st.tuples(st.integers(0, 8), sides),
       kind=st.sampled_from(["random", "random", "constant", "with inf and nan"]),
       limits=st.sampled_from([None, (1.0, 3.0)]), cmap=st.sampled_from(["magma", "viridis"]),
       dtype=floats)
def test_depth_to_color_is_matplotlib(device, seed, hw, kind, limits, cmap, dtype):
    g = gen(seed)
    depth = torch.rand(hw, generator=g, dtype=F64) * 4
    if kind == "constant":
        depth = torch.full(hw, 2.5, dtype=F64)
    elif kind == "with inf and nan":
        bad = torch.tensor([float("inf"), float("-inf"), float("nan")], dtype=F64)
        pick = torch.rand(hw, generator=g) < 0.3
        depth = torch.where(pick, bad[torch.randint(0, 3, hw, generator=g)], depth)
    depth = depth.to(device, dtype)
    vmin, vmax = limits or (None, None)
    out = depth_to_color(depth, vmin, vmax, cmap)
    assert out.shape == (3, *hw) and out.dtype == dtype and out.device == depth.device
    assert in_unit_range(out)
    finite = depth.isfinite()
    assert bool((out[:, ~finite] == 0).all())  # non-finite: black
    if not bool(finite.any()):
        return
    d = depth.cpu().double()
    lo = vmin if vmin is not None else float(d[finite.cpu()].min())
    hi = vmax if vmax is not None else float(d[finite.cpu()].max())
    if hi > lo:
        t = ((d - lo) / (hi - lo)).clamp(0, 1).nan_to_num(0).numpy()
        ref = torch.from_numpy(matplotlib.colormaps[cmap](1 - t)[..., :3]).permute(2, 0, 1)
        assert_close(out.cpu().double()[:, finite.cpu()], ref[:, finite.cpu()], rtol=0,
                     atol=1e-6)
    else:  # one depth: one colour
        assert bool((out[:, finite] == out[:, finite][:, :1]).all())


# ------------------------------------------------------------------------------------ flow
def test_make_colorwheel_is_torchvision():
    wheel = make_colorwheel()
    assert wheel.shape == (55, 3)
    assert torch.equal(wheel, _make_colorwheel().to(wheel.dtype))
    assert bool(((wheel >= 0) & (wheel <= 255)).all())


@on_devices
@PROPS
@given(seed=seeds, batch=st.sampled_from([(), (0,), (1,), (3,)]), hw=image_sizes,
       zero=st.booleans(), max_flow=st.sampled_from([None, 2.0]), dtype=floats)
def test_flow_to_color_is_torchvision(device, seed, batch, hw, zero, max_flow, dtype):
    flow = torch.randn(*batch, 2, *hw, generator=gen(seed), dtype=F64) * 3 * (not zero)
    flow = flow.to(device, dtype)
    out = flow_to_color(flow, max_flow)
    assert out.shape == (*batch, 3, *hw) and out.dtype == dtype and out.device == flow.device
    assert in_unit_range(out)
    if zero:
        assert bool((out == 1).all())  # no motion: white
    if max_flow is None and flow.numel() and not zero:
        # the fastest pixel has r = 1: its full wheel colour, one channel 0 and one 1
        speed = flow.pow(2).sum(-3)  # (..., H, W)
        fastest = out.movedim(-3, -1)[speed == speed.max()].double()  # (F, 3)
        assert_close(fastest.amin(-1), torch.zeros_like(fastest[:, 0]), rtol=0, atol=1e-3)
        assert_close(fastest.amax(-1), torch.ones_like(fastest[:, 0]), rtol=0, atol=1e-3)
        # torchvision normalises by the max too (and rounds to uint8); at the fastest pixel
        # its 1 - r (1 - col) may be -1e-7, floored and wrapped to 255: compared elsewhere
        ref = flow_to_image(flow.cpu().float()).double() / 255
        slower = (speed < speed.max()).cpu().unsqueeze(-3).expand_as(ref)
        assert_close(out.cpu().double()[slower], ref[slower], rtol=0, atol=1.01 / 255)


# ------------------------------------------------------------------- labels and palettes
@PROPS
@given(n=st.integers(0, 40), m=st.integers(0, 40), seed=st.integers(0, 5))
def test_palette_colour_k_does_not_depend_on_its_length(n, m, seed):
    colours = palette(n, seed)
    assert colours.shape == (n, 3) and colours.dtype == torch.float32 and in_unit_range(colours)
    k = min(n, m)
    assert torch.equal(colours[:k], palette(m, seed)[:k])
    assert len(torch.unique(colours, dim=0)) == n  # distinct
    assert torch.equal(colours, palette(n, seed))  # deterministic


@on_devices
@PROPS
@given(seed=seeds, k=st.integers(0, 12), top=st.integers(0, 30))
def test_id_colors_are_the_palette_entries(device, seed, k, top):
    ids = torch.randint(0, top + 1, (k,), generator=gen(seed)).to(device)
    out = id_colors(ids)
    assert out.shape == (k, 3) and out.device == ids.device and out.is_floating_point()
    assert torch.equal(out.cpu(), palette(top + 1)[ids.cpu()])
    if k:  # an id's colour does not depend on the other ids shown with it
        assert torch.equal(id_colors(ids[:1]), out[:1])


@on_devices
@PROPS
@given(seed=seeds, hw=st.tuples(st.integers(0, 6), st.integers(0, 6)), classes=st.integers(1, 12),
       p_ignore=st.sampled_from([0.0, 0.3]), custom=st.booleans())
def test_label_colors_looks_colours_up(device, seed, hw, classes, p_ignore, custom):
    g = gen(seed)
    labels = torch.randint(0, classes, hw, generator=g)
    labels[torch.rand(hw, generator=g) < p_ignore] = 255
    colors = torch.rand(classes, 3, generator=g) if custom else None
    out = label_colors(labels.to(device), classes, colors=colors)
    assert out.shape == (3, *hw) and out.device.type == device and in_unit_range(out)
    table = colors if custom else (CATEGORY_COLORS[:classes] if classes <= 8
                                   else palette(classes))
    valid = labels != 255
    assert_close(out.cpu()[:, valid], table[labels[valid]].T.to(out.dtype))
    assert bool((out.cpu()[:, ~valid] == 0).all())  # ignored: black
    if labels.numel():
        bad = labels.clone()
        bad.view(-1)[0] = classes  # one past the last class
        with pytest.raises(ValueError):
            label_colors(bad, classes)


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 20))
def test_instance_colors_vary_their_category_colour(device, seed, n):
    labels = torch.randint(0, len(CATEGORY_COLORS), (n,), generator=gen(seed)).to(device)
    out = instance_colors(labels)
    assert out.shape == (n, 3) and out.device == labels.device and in_unit_range(out)
    for c in labels.unique().tolist():
        mine = out[labels == c]  # its instances, in order
        assert_close(mine[0].cpu(), CATEGORY_COLORS[c].to(mine.dtype))  # the first: the colour
        shown = mine[:12]  # up to 12 instances of one category are told apart
        assert len(torch.unique(shown, dim=0)) == len(shown)


# ------------------------------------------------------------------------------ overlays
@on_devices
@PROPS
@given(seed=seeds, n=st.integers(0, 4), hw=image_sizes, alpha=st.sampled_from([0.0, 0.4, 1.0]),
       custom=st.booleans(), dtype=floats)
def test_overlay_masks_blends_and_the_last_mask_wins(device, seed, n, hw, alpha, custom, dtype):
    g = gen(seed)
    image = torch.rand(3, *hw, generator=g, dtype=F64).to(device, dtype)
    masks = (torch.rand(n, *hw, generator=g) < 0.4).to(device)
    colors = torch.rand(n, 3, generator=g, dtype=F64).to(device, dtype) if custom else None
    out = overlay_masks(image, masks, colors, alpha)
    assert out.shape == image.shape and out.dtype == dtype and out.device == image.device
    table = colors if custom else palette(n).to(device, dtype)
    expected = image.clone()
    for k in range(n):  # in draw order: a later mask paints over an earlier one
        blend = (1 - alpha) * image + alpha * table[k][:, None, None]
        expected = torch.where(masks[k], blend, expected)
    assert_close(out, expected)
    assert_close(out[:, ~masks.any(0)], image[:, ~masks.any(0)], rtol=0, atol=0)
    assert in_unit_range(out)


@on_devices
@PROPS
@given(seed=seeds, hw=image_sizes, segments=st.integers(1, 5),
       kind=st.sampled_from(["blobs", "stripes", "noise"]))
def test_segment_boundaries_mark_borders_and_keep_every_segment(device, seed, hw, segments,
                                                                 kind):
    g = gen(seed)
    H, W = hw
    if kind == "blobs":  # the nearest of a few random centres
        centres = torch.rand(segments, 2, generator=g) * torch.tensor([H, W])
        yx = torch.stack(torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij"), -1)
        ids = ((yx[:, :, None] - centres) ** 2).sum(-1).argmin(-1)
    elif kind == "stripes":  # 1-pixel-wide limbs
        ids = (torch.arange(W) % segments).expand(H, W).clone()
    else:
        ids = torch.randint(0, segments, hw, generator=g)
    ids = ids.to(device)
    line = segment_boundaries(ids)
    assert line.shape == ids.shape and line.dtype == torch.bool and line.device == ids.device
    # a marked pixel has a 4-neighbour of another segment
    padded = torch.nn.functional.pad(ids[None, None].double(), (1, 1, 1, 1), value=-1)[0, 0]
    neighbours = torch.stack([padded[:-2, 1:-1], padded[2:, 1:-1], padded[1:-1, :-2],
                              padded[1:-1, 2:]])
    differs = ((neighbours != ids.double()) & (neighbours >= 0)).any(0)
    assert bool((~line | differs).all())
    for s in ids.unique().tolist():  # every segment keeps a pixel
        assert bool((~line[ids == s]).any())
    assert not bool(segment_boundaries(torch.zeros_like(ids)).any())  # one segment: no line


# --------------------------------------------------------------------------------- images
@PROPS
@given(seed=seeds, shape=st.sampled_from([(3,), (1,), ()]), hw=image_sizes, dtype=floats)
def test_to_numpy_image_is_hwc_float32_clipped(seed, shape, hw, dtype):
    t = (torch.rand(*shape, *hw, generator=gen(seed), dtype=F64) * 1.6 - 0.3).to(dtype)
    t.requires_grad_(True)
    out = to_numpy_image(t)
    assert isinstance(out, np.ndarray) and out.shape == (*hw, 3) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 1
    rgb = t.detach().clamp(0, 1).float()
    rgb = rgb.expand(3, *hw) if len(shape) == 0 or shape == (1,) else rgb
    np.testing.assert_array_equal(out, rgb.permute(1, 2, 0).numpy())


@on_devices
@PROPS
@given(seed=seeds, n=st.integers(1, 9), c=st.sampled_from([1, 3]), hw=image_sizes,
       nrow=st.integers(1, 5), padding=st.integers(0, 3), pad_value=st.sampled_from([0.0, 1.0]),
       as_list=st.booleans(), dtype=floats)
def test_image_grid_is_torchvision_make_grid(device, seed, n, c, hw, nrow, padding, pad_value,
                                             as_list, dtype):
    images = torch.rand(n, c, *hw, generator=gen(seed), dtype=F64).to(device, dtype)
    grid = image_grid(list(images) if as_list else images, nrow, padding, pad_value)
    ref = make_grid(images, nrow, padding, normalize=False, pad_value=pad_value)
    assert grid.dtype == dtype and grid.device == images.device and grid.shape[0] == 3
    assert torch.equal(grid, ref)
