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
    if torch.cuda.is_available():
        expected = "cuda"
    else:
        expected = "mps" if torch.backends.mps.is_available() else "cpu"
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


def test_prefer_wins_over_the_environment(monkeypatch):
    monkeypatch.setenv("COURSEKIT_DEVICE", "banana")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")


def test_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="prefer must be None, a str such as 'cuda' or a "
                                        "torch.device, got float"):
        pick_device(1.5)
    with pytest.raises(TypeError, match="device must be None, a str or a torch.device, got int"):
        describe_device(0)
    with pytest.raises(ValueError, match="device must name a torch device"):
        describe_device("banana")


def test_missing_cuda_index_is_a_clear_error():
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    with pytest.raises(ValueError, match="CUDA"):
        pick_device(f"cuda:{count}")


def test_describe():
    assert describe_device(torch.device("cpu")) == f"cpu ({torch.get_num_threads()} threads)"
    assert describe_device("cpu") == describe_device(torch.device("cpu"))
