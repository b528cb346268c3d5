"""Tests for coursekit/viz/dense.py: the Middlebury flow colour wheel and depth colouring."""

import matplotlib
import numpy as np
import pytest
import torch
from torch.testing import assert_close
from torchvision.utils import _make_colorwheel, flow_to_image

from coursekit.viz import depth_to_color, flow_to_color, flow_wheel_legend, make_colorwheel

# ---------------------------------------------------------------- flow_vis, transcribed
# The well-known numpy implementation (Tom Runia's flow_vis, after the Middlebury C code),
# written out here as the reference: uint8 output, epsilon 1e-5, dim where |flow| > 1.


def np_make_colorwheel():
    RY, YG, GC, CB, BM, MR = 15, 6, 4, 11, 13, 6
    ncols = RY + YG + GC + CB + BM + MR
    colorwheel = np.zeros((ncols, 3))
    col = 0
    colorwheel[0:RY, 0] = 255
    colorwheel[0:RY, 1] = np.floor(255 * np.arange(0, RY) / RY)
    col = col + RY
    colorwheel[col : col + YG, 0] = 255 - np.floor(255 * np.arange(0, YG) / YG)
    colorwheel[col : col + YG, 1] = 255
    col = col + YG
    colorwheel[col : col + GC, 1] = 255
    colorwheel[col : col + GC, 2] = np.floor(255 * np.arange(0, GC) / GC)
    col = col + GC
    colorwheel[col : col + CB, 1] = 255 - np.floor(255 * np.arange(CB) / CB)
    colorwheel[col : col + CB, 2] = 255
    col = col + CB
    colorwheel[col : col + BM, 2] = 255
    colorwheel[col : col + BM, 0] = np.floor(255 * np.arange(0, BM) / BM)
    col = col + BM
    colorwheel[col : col + MR, 2] = 255 - np.floor(255 * np.arange(MR) / MR)
    colorwheel[col : col + MR, 0] = 255
    return colorwheel


def np_flow_uv_to_colors(u, v):
    flow_image = np.zeros((u.shape[0], u.shape[1], 3), np.uint8)
    colorwheel = np_make_colorwheel()
    ncols = colorwheel.shape[0]
    rad = np.sqrt(np.square(u) + np.square(v))
    a = np.arctan2(-v, -u) / np.pi
    fk = (a + 1) / 2 * (ncols - 1)
    k0 = np.floor(fk).astype(np.int32)
    k1 = k0 + 1
    k1[k1 == ncols] = 0
    f = fk - k0
    for i in range(colorwheel.shape[1]):
        tmp = colorwheel[:, i]
        col0 = tmp[k0] / 255.0
        col1 = tmp[k1] / 255.0
        col = (1 - f) * col0 + f * col1
        idx = rad <= 1
        col[idx] = 1 - rad[idx] * (1 - col[idx])
        col[~idx] = col[~idx] * 0.75
        flow_image[:, :, i] = np.floor(255 * col)
    return flow_image


def np_flow_to_color(flow_uv):  # flow_uv: [H, W, 2]
    u, v = flow_uv[:, :, 0], flow_uv[:, :, 1]
    rad_max = np.max(np.sqrt(np.square(u) + np.square(v)))
    epsilon = 1e-5
    return np_flow_uv_to_colors(u / (rad_max + epsilon), v / (rad_max + epsilon))


ONE_STEP = 1 / 255 + 1e-4  # the references floor to 8 bits; we do not


# ---------------------------------------------------------------- colour wheel


def test_colorwheel_hand_computed_and_references():
    wheel = make_colorwheel()
    assert wheel.shape == (55, 3)
    # segment starts: red, yellow, green, cyan, blue, magenta
    starts = {
        0: (255, 0, 0),
        15: (255, 255, 0),
        21: (0, 255, 0),
        25: (0, 255, 255),
        36: (0, 0, 255),
        49: (255, 0, 255),
    }
    for k, rgb in starts.items():
        assert wheel[k].tolist() == list(rgb)
    assert wheel[1].tolist() == [255, 17, 0]  # floor(255 / 15) = 17
    assert wheel[54].tolist() == [255, 0, 43]  # 255 - floor(255 * 5 / 6) = 255 - 212
    assert_close(wheel, _make_colorwheel())
    assert_close(wheel.double(), torch.from_numpy(np_make_colorwheel()))


# ---------------------------------------------------------------- flow_to_color


def test_flow_to_color_hand_computed():
    # (2, 1, 4): four pixels with flow (1, 0), (0.5, 0), (0, 1), (0, 0)
    flow = torch.tensor([[[1.0, 0.5, 0.0, 0.0]], [[0.0, 0.0, 1.0, 0.0]]], dtype=torch.float64)
    out = flow_to_color(flow)  # max |flow| = 1
    # (1, 0) at max magnitude: angle 0 -> fk = 0 -> wheel[0] = red
    assert_close(out[:, 0, 0], torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64))
    # (0.5, 0): half magnitude -> 1 - 0.5 (1 - red) = (1, 0.5, 0.5)
    assert_close(out[:, 0, 1], torch.tensor([1.0, 0.5, 0.5], dtype=torch.float64))
    # (0, 1) points down: a = atan2(-1, 0) / pi = -0.5 -> fk = 13.5, between wheel[13] and [14]
    g = (np.floor(255 * 13 / 15) + np.floor(255 * 14 / 15)) / 2 / 255  # (221 + 238) / 2 / 255
    assert_close(out[:, 0, 2], torch.tensor([1.0, g, 0.0], dtype=torch.float64))
    # zero flow -> white
    assert_close(out[:, 0, 3], torch.ones(3, dtype=torch.float64))
    # beyond max_flow: the full colour dimmed to 0.75
    out = flow_to_color(flow, max_flow=0.25)
    assert_close(out[:, 0, 0], torch.tensor([0.75, 0.0, 0.0], dtype=torch.float64))


@pytest.mark.parametrize("shape", [(5, 7), (16, 16), (1, 9), (33, 20)])
def test_flow_to_color_matches_flow_vis_transcription(shape):
    flow = torch.randn(2, *shape, dtype=torch.float64) * 3
    expected = (
        torch.from_numpy(np_flow_to_color(flow.permute(1, 2, 0).numpy())).permute(2, 0, 1) / 255.0
    )
    assert_close(flow_to_color(flow), expected.double(), atol=ONE_STEP, rtol=0)
    # with a max_flow below the largest flow some pixels take the dimmed branch
    u, v = (flow / 2.0).numpy()
    expected = torch.from_numpy(np_flow_uv_to_colors(u, v)).permute(2, 0, 1) / 255.0
    assert_close(flow_to_color(flow, max_flow=2.0), expected.double(), atol=ONE_STEP, rtol=0)


@pytest.mark.parametrize("shape", [(2, 6, 7), (3, 2, 11, 5)])
def test_flow_to_color_matches_torchvision(shape):
    flow = torch.randn(shape) * 5
    expected = flow_to_image(flow).float() / 255  # uint8, max over the whole batch
    assert_close(flow_to_color(flow), expected, atol=ONE_STEP, rtol=0)


def test_flow_to_color_fastest_pixel_is_never_dimmed():
    # normalised by its own max, |flow| / (max + eps) is 1 + 1.2e-7 at this float32 pixel (eps
    # is below the ulp of max); it used to take the r > 1 branch: 0.75 x its colour,
    # (0.75, 0.15, 0) instead of (1, 0.2, 0)
    flow = torch.tensor([9.281625747680664, 3.378152370452881])[:, None, None]
    flow = torch.cat([flow, torch.zeros(2, 1, 1)], 2)  # (2, 1, 2): that pixel and a still one
    out = flow_to_color(flow)[:, 0, 0]
    assert_close(out, torch.tensor([1.0, 0.2, 0.0]), rtol=0, atol=1e-3)


def test_flow_to_color_batch_uses_global_max():
    flow = torch.randn(3, 2, 4, 5, dtype=torch.float64)
    out = flow_to_color(flow)
    assert out.shape == (3, 3, 4, 5)
    max_flow = float(flow.pow(2).sum(1).sqrt().max())
    assert_close(out[1], flow_to_color(flow[1], max_flow=max_flow))


def test_flow_wheel_legend_hand_computed():
    legend = flow_wheel_legend(5)  # centre c = 2, circle radius 2.5 = max_flow
    assert legend.shape == (3, 5, 5)
    assert_close(legend[:, 2, 2], torch.ones(3))  # zero flow: white
    assert_close(legend[:, 2, 4], torch.tensor([1.0, 0.2, 0.2]))  # flow (2, 0): r = 0.8, red
    assert_close(legend[:, 0, 0], torch.ones(3))  # corner outside the circle: background
    assert_close(flow_wheel_legend(5, background=0.0)[:, 0, 0], torch.zeros(3))


def test_flow_device(device):
    # reference: torchvision's flow_to_image on the same device (8-bit, max over the batch)
    flow = torch.randn(2, 2, 6, 5) * 3
    out = flow_to_color(flow.to(device))
    assert out.device.type == device.type and out.dtype == torch.float32
    ref = flow_to_image(flow.to(device)).float() / 255
    assert ref.device.type == device.type
    assert_close(out, ref, atol=ONE_STEP, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_flow_and_depth_reduced_precision(dtype):
    # computed in float32, returned in the input's dtype: within one rounding of the float64
    flow = torch.randn(2, 7, 9, dtype=torch.float64) * 3
    out = flow_to_color(flow.to(dtype))
    assert out.dtype == dtype
    expected = flow_to_color(flow.to(dtype).double())
    assert (out.double() - expected).abs().max() <= torch.finfo(dtype).eps
    depth = torch.rand(6, 5, dtype=torch.float64) * 4 + 1
    colour = depth_to_color(depth.to(dtype))
    assert colour.dtype == dtype
    assert_close(colour.double(), depth_to_color(depth.to(dtype).double()).to(dtype).double())


# ---------------------------------------------------------------- depth_to_color


def test_depth_to_color_hand_computed():
    lut = matplotlib.colormaps["magma"](np.arange(256))[:, :3]
    depth = torch.tensor([[1.0, 3.0], [5.0, float("nan")]], dtype=torch.float64)
    out = depth_to_color(depth)  # vmin 1, vmax 5 from the finite values
    assert_close(out[:, 0, 0], torch.from_numpy(lut[255]))  # nearest: brightest end
    assert_close(out[:, 1, 0], torch.from_numpy(lut[0]))  # farthest: darkest end
    assert_close(out[:, 0, 1], torch.from_numpy(lut[128]))  # t = 0.5 -> floor(0.5 * 256)
    assert_close(out[:, 1, 1], torch.zeros(3, dtype=torch.float64))  # nan: black
    # explicit range clamps: depth 3 with vmin = 4 counts as nearest
    assert_close(depth_to_color(depth, vmin=4.0, vmax=6.0)[:, 0, 1], torch.from_numpy(lut[255]))


@pytest.mark.parametrize("shape,cmap", [((7, 9), "magma"), ((16, 3), "viridis"), ((4, 4), "gray")])
def test_depth_to_color_matches_matplotlib(shape, cmap):
    depth = torch.rand(shape, dtype=torch.float64) * 10 + 0.5
    lo, hi = float(depth.min()), float(depth.max())
    t = ((depth - lo) / (hi - lo)).clamp(0, 1).numpy()
    expected = torch.from_numpy(matplotlib.colormaps[cmap](1 - t)[..., :3]).permute(2, 0, 1)
    assert_close(depth_to_color(depth, cmap=cmap), expected)
    t = ((depth - 2.0) / 6.0).clamp(0, 1).numpy()
    expected = torch.from_numpy(matplotlib.colormaps[cmap](1 - t)[..., :3]).permute(2, 0, 1)
    assert_close(depth_to_color(depth, vmin=2.0, vmax=8.0, cmap=cmap), expected)


def test_depth_device(device):
    # reference: matplotlib's colormap on the CPU (float64)
    depth = torch.rand(5, 6, dtype=torch.float64) * 4
    out = depth_to_color(depth.float().to(device))
    assert out.device.type == device.type and out.dtype == torch.float32
    lo, hi = float(depth.min()), float(depth.max())
    t = ((depth - lo) / (hi - lo)).clamp(0, 1).numpy()
    expected = torch.from_numpy(matplotlib.colormaps["magma"](1 - t)[..., :3]).permute(2, 0, 1)
    assert_close(out.cpu().double(), expected, rtol=0, atol=1e-6)


@pytest.mark.parametrize("fn, args, kwargs, error, match", [
    (flow_to_color, (torch.zeros(3, 4, 4),), {}, ValueError,
     r"flow must be Tensor\[2, H, W\] or Tensor\[N, 2, H, W\] \(dx, dy\), "
     r"got Tensor\[3, 4, 4\] float32"),
    (flow_to_color, (torch.zeros(4, 4),), {}, ValueError, r"flow must be .*Tensor\[4, 4\]"),
    (flow_to_color, (torch.zeros(2, 4, 4, dtype=torch.long),), {}, TypeError,
     r"flow must be a float tensor \(float16, bfloat16, float32 or float64\), "
     r"got Tensor\[2, 4, 4\] int64"),
    (flow_to_color, ([[0.0]],), {}, TypeError, "flow must be a float Tensor.*got list"),
    (flow_to_color, (torch.zeros(2, 4, 4),), {"max_flow": 0.0}, ValueError,
     "max_flow must be positive or None, got 0.0"),
    (flow_to_color, (torch.zeros(2, 4, 4),), {"max_flow": "4"}, TypeError,
     "max_flow must be a real number, got '4'"),
    (flow_wheel_legend, (1,), {}, ValueError, "size must be >= 2, got 1"),
    (flow_wheel_legend, (8.0,), {}, TypeError, "size must be an int, got 8.0"),
    (depth_to_color, (torch.zeros(1, 4, 4),), {}, ValueError,
     r"depth must be a float Tensor\[H, W\], got Tensor\[1, 4, 4\] float32"),
    (depth_to_color, (torch.zeros(4, 4, dtype=torch.long),), {}, TypeError,
     r"depth must be a float Tensor\[H, W\] \(float16, .*got Tensor\[4, 4\] int64"),
    (depth_to_color, (torch.rand(4, 4),), {"cmap": "no-such-map"}, ValueError,
     "cmap must name a matplotlib colormap"),
    (depth_to_color, (torch.rand(4, 4),), {"cmap": None}, TypeError,
     r"cmap must be the name of a matplotlib colormap \(a str\), got NoneType"),
    (depth_to_color, (torch.rand(4, 4),), {"vmin": 2.0, "vmax": 1.0}, ValueError,
     "vmax must be >= vmin"),
    (depth_to_color, (torch.rand(4, 4),), {"vmin": "0"}, TypeError,
     "vmin must be a real number, got '0'"),
])
def test_dense_bad_inputs(fn, args, kwargs, error, match):
    with pytest.raises(error, match=match):
        fn(*args, **kwargs)


def test_flow_to_color_gradcheck():
    # differentiable in the flow (between wheel entries; fixed max_flow, radii below 1)
    flow = (torch.rand(2, 3, 4, dtype=torch.float64) - 0.5) * 2
    assert torch.autograd.gradcheck(lambda f: flow_to_color(f, max_flow=2.0),
                                    (flow.requires_grad_(),))
