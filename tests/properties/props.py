"""What every property test file here shares: the hypothesis profile (registered in
conftest.py), the devices to run on, float64 for references, and the seed strategy."""

import pytest
import torch
from hypothesis import settings
from hypothesis import strategies as st

PROPS = settings.get_profile("coursekit-properties")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
on_devices = pytest.mark.parametrize("device", DEVICES)

F64 = torch.float64
seeds = st.integers(0, 2**31 - 1)
floats = st.sampled_from([torch.float32, F64])


def gen(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (hypothesis draws the seed)."""
    return torch.Generator().manual_seed(seed)
