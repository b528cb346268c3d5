import os
import random

import numpy as np
import pytest
import torch

from coursekit.seed import seed_everything


def test_seeds_every_library_like_its_own_seed_call():
    # references: each library's own generator seeded with the same number
    seed_everything(3)
    assert random.random() == random.Random(3).random()
    assert np.random.rand() == np.random.RandomState(3).rand()
    assert torch.equal(torch.rand(3), torch.rand(3, generator=torch.Generator().manual_seed(3)))
    assert os.environ["PYTHONHASHSEED"] == "3"


def test_returns_generator_seeded():
    g = seed_everything(5)
    reference = torch.Generator().manual_seed(5)
    assert torch.equal(torch.rand(4, generator=g), torch.rand(4, generator=reference))


def test_deterministic_switches_torch_to_deterministic_kernels():
    before = torch.are_deterministic_algorithms_enabled()
    try:
        seed_everything(0, deterministic=True)
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.use_deterministic_algorithms(before)


@pytest.mark.parametrize("kwargs, exc, msg", [
    ({"seed": -1}, ValueError, r"seed must be in \[0, 2\*\*32\), got -1"),
    ({"seed": 2**32}, ValueError, "seed must be in"),
    ({"seed": 1.5}, TypeError, "seed must be an int, got float"),
    ({"seed": True}, TypeError, "seed must be an int, got bool"),
    ({"seed": 1, "deterministic": 1}, TypeError, "deterministic must be a bool, got 1"),
])
def test_bad_seed(kwargs, exc, msg):
    with pytest.raises(exc, match=msg):
        seed_everything(**kwargs)
