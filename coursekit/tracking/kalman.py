"""A constant-velocity Kalman filter on boxes, as SORT uses it (Bewley et al., 2016).

Lecture: *Spatio-temporal detection and tracking* — detect objects in every frame and
link them over time. Between frames a tracker *predicts* where each object will be and
then *corrects* the prediction with the detection it is matched to. SORT does both with
a Kalman filter whose state is a box and its velocity::

    state x = (cx, cy, s, r, vx, vy, vs)     centre, area s = w * h, aspect r = w / h
    measurement z = (cx, cy, s, r)           from a detected box (box_to_measurement)

    predict:  x <- F x                       F adds the velocities: cx += vx, cy += vy, s += vs
              P <- F P F^T + Q               (r is assumed constant)
    update:   y = z - H x                    innovation (H keeps the first four entries)
              S = H P H^T + R                its covariance
              K = P H^T S^-1                 Kalman gain
              x <- x + K y
              P <- (I - K H) P (I - K H)^T + K R K^T      (Joseph form, as filterpy)

SORT's noise settings (``BoxKalmanFilter``): ``R = diag(1, 1, 10, 10)``, initial
``P = diag(10, 10, 10, 10, 1e4, 1e4, 1e4)`` (the unseen velocities are very uncertain),
``Q = diag(1, 1, 1, 1, 0.01, 0.01, 1e-4)``; and before predicting, a velocity that would
make the area negative is set to 0.

``kalman_predict`` / ``kalman_update`` are the general equations, batched over N filters
(``mean: Tensor[N, D]``, ``cov: Tensor[N, D, D]``) and differentiable.
Tested in tests/tracking/test_kalman.py: by hand, against the textbook equations in numpy,
and against filterpy when it is installed.
"""

from __future__ import annotations

import torch
from torch import Tensor

from coursekit.validators import check_boxes, describe, require_dim, require_floating, shape_str

__all__ = [
    "BoxKalmanFilter",
    "box_to_measurement",
    "kalman_predict",
    "kalman_update",
    "measurement_to_box",
]


def _wide(t: Tensor) -> Tensor:
    return t.to(torch.promote_types(t.dtype, torch.float32))


def box_to_measurement(boxes: Tensor) -> Tensor:
    """``(x1, y1, x2, y2) -> (cx, cy, s, r)``: centre, area ``w * h`` and aspect ``w / h``.

    Args:
        boxes: Tensor[N, 4] floating point.

    Returns:
        Tensor[N, 4] in at least float32.
    """
    boxes = _wide(check_boxes(boxes, floating=True))
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return torch.stack([boxes[:, 0] + w / 2, boxes[:, 1] + h / 2, w * h, w / h], dim=1)


def measurement_to_box(z: Tensor) -> Tensor:
    """``(cx, cy, s, r, ...) -> (x1, y1, x2, y2)`` with ``w = sqrt(s r)``, ``h = s / w``.

    Args:
        z: Tensor[N, 4] measurements or Tensor[N, 7] states (the first four are read).

    Returns:
        Tensor[N, 4] in z's dtype (NaN where ``s * r < 0``).
    """
    require_dim(z, "z", 2, "Tensor[N, 4] or Tensor[N, 7] (cx, cy, s, r, ...)")
    require_floating(z, "z", "a floating-point Tensor[N, 4]")
    if z.shape[1] < 4:
        raise ValueError(f"z must be Tensor[N, 4] or Tensor[N, 7], got {shape_str(z)}")
    cx, cy, s, r = z[:, 0], z[:, 1], z[:, 2], z[:, 3]
    w = torch.sqrt(s * r)
    h = s / w
    return torch.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dim=1)


def _check_gaussian(mean: object, cov: object) -> tuple[int, int]:
    require_dim(mean, "mean", 2, "Tensor[N, D]")
    require_floating(mean, "mean", "a floating-point Tensor[N, D]")
    require_dim(cov, "cov", 3, "Tensor[N, D, D]")
    n, d = mean.shape
    if tuple(cov.shape) != (n, d, d):
        raise ValueError(f"cov must be Tensor[N, D, D] = Tensor[{n}, {d}, {d}] to match mean "
                         f"{shape_str(mean)}, got {shape_str(cov)}")
    return n, d


def _check_matrix(m: object, name: str, rows: int | None, cols: int) -> Tensor:
    require_dim(m, name, 2, f"a Tensor[{rows or 'M'}, {cols}]")
    if (rows is not None and m.shape[0] != rows) or m.shape[1] != cols:
        raise ValueError(f"{name} must be Tensor[{rows or 'M'}, {cols}], got {shape_str(m)}")
    return m


def kalman_predict(mean: Tensor, cov: Tensor, F: Tensor, Q: Tensor) -> tuple[Tensor, Tensor]:
    """``x <- F x``, ``P <- F P F^T + Q`` for N filters at once.

    Args:
        mean: Tensor[N, D]; cov: Tensor[N, D, D]; F, Q: Tensor[D, D].

    Returns:
        (mean, cov) predicted, same shapes.
    """
    _, d = _check_gaussian(mean, cov)
    _check_matrix(F, "F", d, d)
    _check_matrix(Q, "Q", d, d)
    mean = mean @ F.T  # (N, D)
    cov = F @ cov @ F.T + Q  # (N, D, D)
    return mean, cov


def kalman_update(mean: Tensor, cov: Tensor, z: Tensor, H: Tensor,
                  R: Tensor) -> tuple[Tensor, Tensor]:
    """Correct N predictions with their measurements ``z`` (Joseph-form covariance).

    Args:
        mean: Tensor[N, D]; cov: Tensor[N, D, D]; z: Tensor[N, M];
        H: Tensor[M, D] (measurement = H x); R: Tensor[M, M] (measurement noise).

    Returns:
        (mean, cov) updated, same shapes as the inputs.
    """
    n, d = _check_gaussian(mean, cov)
    _check_matrix(H, "H", None, d)
    m = H.shape[0]
    _check_matrix(R, "R", m, m)
    require_dim(z, "z", 2, f"Tensor[N, M] = Tensor[{n}, {m}]")
    if tuple(z.shape) != (n, m):
        raise ValueError(f"z must be Tensor[N, M] = Tensor[{n}, {m}] (one measurement per "
                         f"filter), got {shape_str(z)}")
    y = z - mean @ H.T  # (N, M) innovation
    PHt = cov @ H.T  # (N, D, M)
    S = H @ PHt + R  # (N, M, M)
    K = torch.linalg.solve(S, PHt.transpose(1, 2)).transpose(1, 2)  # (N, D, M) = P H^T S^-1
    mean = mean + (K @ y.unsqueeze(2)).squeeze(2)  # (N, D)
    I_KH = torch.eye(d, dtype=cov.dtype, device=cov.device) - K @ H  # (N, D, D)
    cov = I_KH @ cov @ I_KH.transpose(1, 2) + K @ R @ K.transpose(1, 2)
    return mean, cov


class BoxKalmanFilter:
    """SORT's constant-velocity model for boxes: 7 state entries, 4 measured.

    ``F``, ``H``, ``Q``, ``R`` and ``P0`` are plain tensors (float64 on the CPU; each call
    moves them to its input's dtype and device), so a lesson can print or change them.
    """

    def __init__(self) -> None:
        f64 = torch.float64
        self.F = torch.eye(7, dtype=f64)
        self.F[0, 4] = self.F[1, 5] = self.F[2, 6] = 1.0  # cx += vx, cy += vy, s += vs
        self.H = torch.eye(4, 7, dtype=f64)
        self.R = torch.diag(torch.tensor([1.0, 1.0, 10.0, 10.0], dtype=f64))
        self.P0 = torch.diag(torch.tensor([10.0] * 4 + [1e4] * 3, dtype=f64))
        self.Q = torch.diag(torch.tensor([1.0] * 4 + [0.01] * 3, dtype=f64))
        self.Q[6, 6] = 1e-4

    @staticmethod
    def _like(m: Tensor, ref: Tensor) -> Tensor:
        return m.to(dtype=ref.dtype, device=ref.device)

    def initiate(self, boxes: Tensor) -> tuple[Tensor, Tensor]:
        """New filters at detected boxes, at rest: ``(mean Tensor[N, 7], cov Tensor[N, 7, 7])``.

        In at least float32, on the boxes' device.
        """
        z = box_to_measurement(boxes)  # (N, 4)
        mean = torch.cat([z, torch.zeros_like(z[:, :3])], dim=1)  # (N, 7): zero velocity
        cov = self._like(self.P0, z).expand(z.shape[0], 7, 7).clone()
        return mean, cov

    def predict(self, mean: Tensor, cov: Tensor) -> tuple[Tensor, Tensor]:
        """One frame ahead; a velocity that would make the area ``s`` negative is zeroed."""
        _check_gaussian(mean, cov)
        if mean.shape[1] != 7:
            raise ValueError(f"mean must be Tensor[N, 7] (SORT's state), got {shape_str(mean)}")
        shrink = (mean[:, 2] + mean[:, 6]) <= 0  # (N,)
        mean = torch.cat([mean[:, :6], torch.where(shrink, 0.0, mean[:, 6])[:, None]], dim=1)
        return kalman_predict(mean, cov, self._like(self.F, mean), self._like(self.Q, mean))

    def update(self, mean: Tensor, cov: Tensor, boxes: Tensor) -> tuple[Tensor, Tensor]:
        """Correct each filter with its detected box ``boxes[i]``: Tensor[N, 4]."""
        z = box_to_measurement(boxes).to(mean.dtype)
        if z.shape[0] != mean.shape[0]:
            raise ValueError(f"boxes must be Tensor[N, 4] with N = {mean.shape[0]} (one per "
                             f"filter), got {describe(boxes)}")
        return kalman_update(mean, cov, z, self._like(self.H, mean), self._like(self.R, mean))

    @staticmethod
    def to_boxes(mean: Tensor) -> Tensor:
        """The boxes ``(x1, y1, x2, y2)`` of states ``Tensor[N, 7]``."""
        return measurement_to_box(mean)
