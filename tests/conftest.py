"""Test-wide settings: seeded, single-threaded, float64 references."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield


def _devices():
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices.append("cuda")
    return devices


DEVICES = _devices()


@pytest.fixture(params=DEVICES)
def device(request):
    """Every device this machine has: cpu always, cuda when present."""
    return torch.device(request.param)
