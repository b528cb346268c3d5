"""coursekit: visual perception beyond classification, every concept from scratch in PyTorch.

Importing the package is cheap (torch loads with the first topic); each topic lives in
its own subpackage (``coursekit.upsampling``, ``coursekit.segmentation``, ...).
"""

__version__ = "0.1.0"

import os as _os

# OpenMP threads that busy-wait make torch 10-20x slower when another process holds
# the other core (a laptop, a shared CI machine); passive waiting costs nothing here.
# It only takes effect if torch has not been imported yet; set it yourself to override.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

__all__ = ["__version__", "pick_device", "seed_everything"]
# imported on first use, so that ``import coursekit.exercises.student`` (the student
# notebooks, grading, the test drivers) does not load torch's ~0.5 GB
_LAZY = {"pick_device": "device", "seed_everything": "seed"}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f"coursekit.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'coursekit' has no attribute {name!r}")
