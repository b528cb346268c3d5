"""SORT's Kalman filter: one predict / update step by hand, the textbook equations in numpy,
filterpy when it is installed, gradcheck and bad input."""

import numpy as np
import pytest
import torch
from torch.autograd import gradcheck
from torch.testing import assert_close

from coursekit.tracking import (
    BoxKalmanFilter,
    box_to_measurement,
    kalman_predict,
    kalman_update,
    measurement_to_box,
)

F64 = torch.float64


def test_box_measurement_by_hand():
    box = torch.tensor([[0.0, 0.0, 4.0, 2.0]], dtype=F64)
    z = box_to_measurement(box)
    assert z.tolist() == [[2.0, 1.0, 8.0, 2.0]]  # centre (2, 1), area 8, aspect 4 / 2
    assert measurement_to_box(z).tolist() == box.tolist()
    state = torch.cat([z, torch.tensor([[5.0, 6.0, 7.0]], dtype=F64)], 1)
    assert measurement_to_box(state).tolist() == box.tolist()  # velocities are not read


@pytest.mark.parametrize("dtype", [torch.float16, torch.float32, F64])
def test_box_measurement_round_trip(dtype, device):
    xy = torch.rand(20, 2, device=device) * 100
    boxes = torch.cat([xy, xy + 1 + torch.rand(20, 2, device=device) * 50], 1).to(dtype)
    z = box_to_measurement(boxes)
    assert z.dtype == (torch.float32 if dtype == torch.float16 else dtype)
    b = boxes.double()  # the reference in float64 (the product is taken in >= float32)
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    assert_close(z.double(), torch.stack([b[:, 0] + w / 2, b[:, 1] + h / 2, w * h, w / h], 1),
                 rtol=1e-6, atol=1e-6)
    tol = dict(rtol=1e-12, atol=1e-10) if dtype == F64 else dict(rtol=1e-5, atol=1e-4)
    assert_close(measurement_to_box(z), boxes.to(z.dtype), **tol)


def test_one_step_by_hand():
    # a box at rest, predicted one frame and corrected by a box moved 1 pixel right
    kf = BoxKalmanFilter()
    mean, cov = kf.initiate(torch.tensor([[0.0, 0.0, 4.0, 2.0]], dtype=F64))
    assert mean.tolist() == [[2.0, 1.0, 8.0, 2.0, 0.0, 0.0, 0.0]]
    assert torch.diagonal(cov[0]).tolist() == [10.0] * 4 + [1e4] * 3
    mean, cov = kf.predict(mean, cov)
    assert mean.tolist() == [[2.0, 1.0, 8.0, 2.0, 0.0, 0.0, 0.0]]  # zero velocity: no move
    # P' = F P F^T + Q: position 10 + 1e4 (from the velocity) + 1, cross term 1e4
    assert cov[0, 0, 0].item() == 10011.0 and cov[0, 0, 4].item() == 1e4
    assert cov[0, 4, 4].item() == pytest.approx(1e4 + 0.01, abs=1e-9)
    assert cov[0, 3, 3].item() == 11.0  # the aspect has no velocity
    mean, cov = kf.update(mean, cov, torch.tensor([[1.0, 0.0, 5.0, 2.0]], dtype=F64))
    # cx: innovation 1, S = 10011 + R = 10012, gains 10011 / 10012 (cx) and 1e4 / 10012 (vx)
    expected = torch.tensor([[2 + 10011 / 10012, 1.0, 8.0, 2.0, 1e4 / 10012, 0.0, 0.0]],
                            dtype=F64)
    assert_close(mean, expected, rtol=1e-14, atol=1e-14)
    assert cov[0, 0, 0].item() == pytest.approx(10011 / 10012, rel=1e-12)  # (1 - K) P
    assert cov[0, 0, 4].item() == pytest.approx(1e4 / 10012, rel=1e-12)
    assert cov[0, 4, 4].item() == pytest.approx(1e4 + 0.01 - 1e8 / 10012, rel=1e-12)
    assert cov[0, 2, 2].item() == pytest.approx(10011 * 10 / 10021, rel=1e-12)  # R_s = 10
    assert cov[0, 3, 3].item() == pytest.approx(11 * 10 / 21, rel=1e-12)


def test_area_never_predicted_negative():
    kf = BoxKalmanFilter()
    mean = torch.tensor([[5.0, 5.0, 4.0, 1.0, 1.0, 1.0, -10.0]], dtype=F64)
    cov = kf.P0.unsqueeze(0).clone()
    new, _ = kf.predict(mean, cov)
    assert new.tolist() == [[6.0, 6.0, 4.0, 1.0, 1.0, 1.0, 0.0]]  # vs zeroed, s kept


def numpy_predict(x, P, F, Q):
    return F @ x, F @ P @ F.T + Q


def numpy_update(x, P, z, H, R):
    """The textbook equations with an explicit inverse and the short covariance form."""
    S = H @ P @ H.T + R
    K = P @ H.T @ np.linalg.inv(S)
    x = x + K @ (z - H @ x)
    P = (np.eye(len(x)) - K @ H) @ P
    return x, P


def random_spd(n, d, gen):
    a = torch.randn(n, d, d, dtype=F64, generator=gen)
    return a @ a.transpose(1, 2) + d * torch.eye(d, dtype=F64)


@pytest.mark.parametrize("n, d, m", [(1, 7, 4), (5, 4, 2), (3, 6, 6)])
def test_general_filter_vs_numpy(n, d, m, device):
    gen = torch.Generator().manual_seed(d * 10 + m)
    mean = torch.randn(n, d, dtype=F64, generator=gen)
    cov = random_spd(n, d, gen)
    F = torch.randn(d, d, dtype=F64, generator=gen)
    Q = random_spd(1, d, gen)[0]
    H = torch.randn(m, d, dtype=F64, generator=gen)
    R = random_spd(1, m, gen)[0]
    z = torch.randn(n, m, dtype=F64, generator=gen)
    args = [t.to(device) for t in (mean, cov, F, Q, H, R, z)]
    pm, pc = kalman_predict(*args[:4])
    um, uc = kalman_update(pm, pc, args[6], args[4], args[5])
    for i in range(n):
        x, P = numpy_predict(mean[i].numpy(), cov[i].numpy(), F.numpy(), Q.numpy())
        assert_close(pm[i].cpu(), torch.from_numpy(x), rtol=1e-12, atol=1e-12)
        assert_close(pc[i].cpu(), torch.from_numpy(P), rtol=1e-12, atol=1e-12)
        x, P = numpy_update(x, P, z[i].numpy(), H.numpy(), R.numpy())
        assert_close(um[i].cpu(), torch.from_numpy(x), rtol=1e-9, atol=1e-9)
        assert_close(uc[i].cpu(), torch.from_numpy(P), rtol=1e-9, atol=1e-9)


def test_box_filter_vs_filterpy():
    kalman = pytest.importorskip("filterpy.kalman")
    kf = BoxKalmanFilter()
    gen = torch.Generator().manual_seed(3)
    boxes = torch.tensor([[10.0, 20.0, 30.0, 60.0]], dtype=F64)
    ref = kalman.KalmanFilter(dim_x=7, dim_z=4)  # set up as sort.py does
    ref.F, ref.H = kf.F.numpy().copy(), kf.H.numpy().copy()
    ref.R[2:, 2:] *= 10.0
    ref.P[4:, 4:] *= 1000.0
    ref.P *= 10.0
    ref.Q[-1, -1] *= 0.01
    ref.Q[4:, 4:] *= 0.01
    ref.x[:4] = box_to_measurement(boxes).numpy().reshape(4, 1)
    mean, cov = kf.initiate(boxes)
    for _ in range(10):
        mean, cov = kf.predict(mean, cov)
        ref.predict()
        boxes = boxes + torch.tensor([[2.0, 1.0, 2.5, 1.0]], dtype=F64) \
            + torch.randn(1, 4, dtype=F64, generator=gen)
        mean, cov = kf.update(mean, cov, boxes)
        ref.update(box_to_measurement(boxes).numpy().reshape(4, 1))
        assert_close(mean[0], torch.from_numpy(ref.x[:, 0]), rtol=1e-10, atol=1e-10)
        assert_close(cov[0], torch.from_numpy(ref.P), rtol=1e-10, atol=1e-8)


def test_gradcheck():
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(2, 3, dtype=F64, generator=gen, requires_grad=True)
    cov = random_spd(2, 3, gen).requires_grad_()
    F = torch.randn(3, 3, dtype=F64, generator=gen, requires_grad=True)
    Q = random_spd(1, 3, gen)[0].requires_grad_()
    H = torch.randn(2, 3, dtype=F64, generator=gen, requires_grad=True)
    R = random_spd(1, 2, gen)[0].requires_grad_()
    z = torch.randn(2, 2, dtype=F64, generator=gen, requires_grad=True)
    assert gradcheck(kalman_predict, (mean, cov, F, Q))
    assert gradcheck(kalman_update, (mean, cov, z, H, R))
    boxes = torch.tensor([[1.0, 2.0, 5.0, 9.0]], dtype=F64, requires_grad=True)
    assert gradcheck(box_to_measurement, (boxes,))


def test_bad_input():
    mean, cov = torch.zeros(2, 7), torch.eye(7).expand(2, 7, 7)
    eye = torch.eye(7)
    with pytest.raises(ValueError, match=r"cov must be Tensor\[N, D, D\] = Tensor\[2, 7, 7\]"):
        kalman_predict(mean, torch.eye(7).expand(3, 7, 7), eye, eye)
    with pytest.raises(ValueError, match=r"F must be Tensor\[7, 7\]"):
        kalman_predict(mean, cov, torch.eye(6), eye)
    with pytest.raises(TypeError, match="mean must be"):
        kalman_predict(torch.zeros(2, 7, dtype=torch.long), cov, eye, eye)
    with pytest.raises(ValueError, match=r"z must be Tensor\[N, M\] = Tensor\[2, 4\]"):
        kalman_update(mean, cov, torch.zeros(3, 4), torch.eye(4, 7), torch.eye(4))
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\]"):
        box_to_measurement(torch.zeros(3, 5))
    with pytest.raises(TypeError, match="boxes must be a floating-point"):
        box_to_measurement(torch.zeros(3, 4, dtype=torch.long))
    kf = BoxKalmanFilter()
    with pytest.raises(ValueError, match=r"boxes must be Tensor\[N, 4\] with N = 2"):
        kf.update(mean.double(), cov.double(), torch.zeros(1, 4, dtype=F64))
    with pytest.raises(ValueError, match=r"mean must be Tensor\[N, 7\]"):
        kf.predict(torch.zeros(2, 4), torch.eye(4).expand(2, 4, 4))
