"""coursekit: visual perception beyond classification, every concept from scratch in PyTorch.

Importing the package is cheap (torch loads with the first topic); each topic lives in
its own subpackage (``coursekit.upsampling``, ``coursekit.segmentation``, ...).
"""

__version__ = "0.1.0"

import os as _os

# OpenMP threads that busy-wait make torch several times slower when another process
# holds a core (a laptop, a shared CI machine); passive waiting is the robust choice, not a
# free one. Measured on 2 cores, one SAM training step: 0.58 s busy-waiting on a quiet
# machine, 2.33 s beside one busy process; passive 0.89 s and 0.87 s. Small-op code pays
# most on a quiet machine (a SAM click: 2.4 ms busy-waiting, 6.8 ms passive). It only takes
# effect if torch has not been imported yet; set OMP_WAIT_POLICY yourself to override.
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
