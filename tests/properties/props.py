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


def assert_pq_equal(ours: dict, ref: dict, atol: float = 1e-12) -> None:
    """Two panoptic-quality summaries (All / Things / Stuff and per class) agree."""
    for name in ("All", "Things", "Stuff"):
        assert ours[name]["n"] == ref[name]["n"], name
        for key in ("pq", "sq", "rq"):
            assert ours[name][key] == pytest.approx(ref[name][key], abs=atol), (name, key)
    assert ours["per_class"].keys() == ref["per_class"].keys()
    for cid, values in ref["per_class"].items():
        for key in ("pq", "sq", "rq"):
            assert ours["per_class"][cid][key] == pytest.approx(values[key], abs=atol)


def gen(seed: int) -> torch.Generator:
    """A CPU generator seeded with ``seed`` (hypothesis draws the seed)."""
    return torch.Generator().manual_seed(seed)
