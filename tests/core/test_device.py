import pytest
import torch

from coursekit.device import describe_device, pick_device


def test_cpu_when_asked():
    assert pick_device("cpu") == torch.device("cpu")


def test_env_override(monkeypatch):
    monkeypatch.setenv("COURSEKIT_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")


def test_default_order(monkeypatch):
    monkeypatch.delenv("COURSEKIT_DEVICE", raising=False)
    expected = "cuda" if torch.cuda.is_available() else ("mps" if torch.backends.mps.is_available() else "cpu")
    assert pick_device().type == expected


def test_bad_name_names_the_source(monkeypatch):
    monkeypatch.setenv("COURSEKIT_DEVICE", "banana")
    with pytest.raises(ValueError, match="COURSEKIT_DEVICE must name a torch device"):
        pick_device()
    with pytest.raises(ValueError, match="prefer must name a torch device"):
        pick_device("banana")


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error when CUDA is missing")
def test_unavailable_cuda_is_a_clear_error():
    with pytest.raises(ValueError, match="CUDA is not available"):
        pick_device("cuda")


def test_describe():
    assert describe_device(torch.device("cpu")).startswith("cpu (")
