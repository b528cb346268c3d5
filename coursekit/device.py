"""Pick the device the course runs on: ``cuda``, else ``mps``, else ``cpu``.

``COURSEKIT_DEVICE`` overrides the choice (``cpu``, ``cuda``, ``cuda:1``, ``mps``).
"""

from __future__ import annotations

import os

import torch

ENV_VAR = "COURSEKIT_DEVICE"


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def pick_device(prefer: str | torch.device | None = None) -> torch.device:
    """Return the best available device.

    Order: ``prefer`` argument, then the ``COURSEKIT_DEVICE`` environment
    variable, then ``cuda``, ``mps``, ``cpu``. An explicit request for a
    device that is not available raises ``ValueError`` naming where it came from;
    ``prefer`` that is neither None, a str nor a ``torch.device`` is a ``TypeError``.
    """
    if prefer is not None and not isinstance(prefer, str | torch.device):
        raise TypeError(f"prefer must be None, a str such as 'cuda' or a torch.device, "
                        f"got {type(prefer).__name__}")
    source, wanted = "prefer", prefer
    if wanted is None:
        source, wanted = ENV_VAR, os.environ.get(ENV_VAR) or None
    if wanted is not None:
        try:
            device = torch.device(wanted)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"{source} must name a torch device such as 'cpu' or 'cuda', "
                             f"got {wanted!r}") from err
        if device.type == "cuda" and not torch.cuda.is_available():
            raise ValueError(f"{source}={wanted!r} but CUDA is not available on this machine")
        if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
            raise ValueError(f"{source}={wanted!r} but this machine has "
                             f"{torch.cuda.device_count()} CUDA device(s)")
        if device.type == "mps" and not _mps_available():
            raise ValueError(f"{source}={wanted!r} but MPS is not available on this machine")
        return device
    if torch.cuda.is_available():
        return torch.device("cuda")
    if _mps_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | str | None = None) -> str:
    """One line naming the device, e.g. ``cpu (2 threads)`` or ``cuda (NVIDIA H100)``.

    ``device``: None (the one ``pick_device`` picks), a str or a ``torch.device``.
    """
    if device is not None and not isinstance(device, str | torch.device):
        raise TypeError(f"device must be None, a str or a torch.device, "
                        f"got {type(device).__name__}")
    try:
        device = pick_device() if device is None else torch.device(device)
    except RuntimeError as err:
        raise ValueError(f"device must name a torch device such as 'cpu' or 'cuda', "
                         f"got {device!r}") from err
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
