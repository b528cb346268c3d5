import random

import numpy as np
import pytest
import torch

from coursekit.seed import seed_everything


def test_same_seed_same_numbers():
    seed_everything(3)
    a = (random.random(), np.random.rand(), torch.rand(3))
    seed_everything(3)
    b = (random.random(), np.random.rand(), torch.rand(3))
    assert a[0] == b[0] and a[1] == b[1]
    assert torch.equal(a[2], b[2])


def test_returns_generator_seeded():
    g = seed_everything(5)
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("bad, exc, msg", [(-1, ValueError, "seed must be in"), (2**32, ValueError, "seed must be in"),
                                          (1.5, TypeError, "seed must be an int"), (True, TypeError, "seed must be an int")])
def test_bad_seed(bad, exc, msg):
    with pytest.raises(exc, match=msg):
        seed_everything(bad)
