import pytest
import torch
import torch.nn.functional as F

from coursekit.dense import end_point_error, flow_metrics, warp


def _grid_sample_warp(image, flow):
    n, _, h, w = image.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=flow.dtype), torch.arange(w, dtype=flow.dtype),
                            indexing="ij")
    gx = 2 * (xs + flow[:, 0]) / (w - 1) - 1
    gy = 2 * (ys + flow[:, 1]) / (h - 1) - 1
    grid = torch.stack([gx, gy], -1).to(image.dtype)
    return F.grid_sample(image, grid, mode="bilinear", padding_mode="border", align_corners=True)


def test_hand_computed_shift():
    image = torch.arange(4.0).view(1, 1, 1, 4)  # [0, 1, 2, 3]
    flow = torch.zeros(1, 2, 1, 4)
    flow[:, 0] = 1.0  # every pixel moved one to the right: read frame 2 one to the right
    # the last one clamps to the border
    assert warp(image, flow).flatten().tolist() == [1.0, 2.0, 3.0, 3.0]
    flow[:, 0] = 0.5
    assert warp(image, flow).flatten().tolist() == [0.5, 1.5, 2.5, 3.0]


@pytest.mark.parametrize("shape", [(1, 1, 5, 7), (2, 3, 8, 6), (3, 2, 4, 4)])
def test_matches_grid_sample_float64(shape):
    image = torch.randn(shape, dtype=torch.float64)
    flow = torch.randn(shape[0], 2, *shape[2:], dtype=torch.float64) * 3
    torch.testing.assert_close(warp(image, flow), _grid_sample_warp(image, flow))


def test_gradcheck_image_and_flow():
    image = torch.randn(1, 2, 4, 5, dtype=torch.float64, requires_grad=True)
    # away from the integer kinks
    flow = (torch.rand(1, 2, 4, 5, dtype=torch.float64) * 2 + 0.1).requires_grad_()
    assert torch.autograd.gradcheck(warp, (image, flow))


def test_three_dim_input_and_device(device):
    image, flow = torch.randn(3, 6, 6), torch.randn(2, 6, 6)
    out = warp(image.to(device), flow.to(device))
    assert out.shape == (3, 6, 6) and out.device.type == device.type
    torch.testing.assert_close(out.cpu(), warp(image[None], flow[None])[0])


def test_epe_hand_and_metrics():
    pred = torch.zeros(1, 2, 1, 2)
    true = torch.tensor([[[[3.0, 0.0]], [[4.0, 0.0]]]])
    assert end_point_error(pred, true).item() == pytest.approx(2.5)  # (5 + 0) / 2
    mask = torch.tensor([[[True, False]]])
    assert end_point_error(pred, true, mask).item() == pytest.approx(5.0)
    m = flow_metrics(pred, true)
    assert (m["epe"], m["1px"], m["3px"], m["5px"]) == (pytest.approx(2.5), 0.5, 0.5, 0.5)


def test_epe_against_torch_norm_and_gradcheck():
    a = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    b = torch.randn(2, 2, 5, 5, dtype=torch.float64)
    torch.testing.assert_close(end_point_error(a, b),
                               torch.linalg.vector_norm(a - b, dim=1).mean())
    a.requires_grad_()
    assert torch.autograd.gradcheck(lambda p: end_point_error(p, b), (a,))


Z = torch.zeros


@pytest.mark.parametrize("call, exc, msg", [
    (lambda: warp(Z(1, 3, 4, 4), Z(1, 3, 4, 4)), ValueError,
     r"flow must be Tensor\[1, 2, 4, 4\] to match image Tensor\[1, 3, 4, 4\], "
     r"got Tensor\[1, 3, 4, 4\] float32"),
    (lambda: warp(Z(1, 3, 4, 4), Z(1, 2, 4, 4, dtype=torch.long)), TypeError,
     r"flow must be a floating-point Tensor\[1, 2, 4, 4\] to match image"),
    (lambda: warp(Z(4, 4), Z(2, 4, 4)), ValueError,
     r"image must be Tensor\[N, C, H, W\] or Tensor\[C, H, W\], got Tensor\[4, 4\]"),
    (lambda: warp([[0.0]], Z(2, 4, 4)), TypeError,
     r"image must be a floating-point Tensor\[N, C, H, W\] or Tensor\[C, H, W\], got list"),
    (lambda: end_point_error(Z(1, 3, 2, 2), Z(1, 3, 2, 2)), ValueError,
     r"flow_pred must be Tensor\[..., 2, H, W\], got Tensor\[1, 3, 2, 2\]"),
    (lambda: end_point_error(Z(1, 2, 2, 2), Z(1, 2, 2, 3)), ValueError,
     "flow_pred and flow_true must have the same shape"),
    (lambda: end_point_error(Z(1, 2, 2, 2), Z(1, 2, 2, 2), torch.ones(1, 2, 3, dtype=torch.bool)),
     ValueError, r"mask must be Tensor\[1, 2, 2\] \(one value per pixel\), got Tensor\[1, 2, 3\]"),
    (lambda: flow_metrics(Z(1, 2, 2, 2), Z(1, 2, 2, 2), Z(1, 2, 2, dtype=torch.bool)), ValueError,
     "mask selects no pixel"),
])
def test_bad_input(call, exc, msg):
    with pytest.raises(exc, match=msg):
        call()
