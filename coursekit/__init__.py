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


def __getattr__(name: str):
    """``coursekit.pick_device`` / ``coursekit.seed_everything``, imported on first use, so
    that ``import coursekit.exercises.student`` (the student notebooks, grading, the test
    drivers) does not load torch's ~0.5 GB."""
    if name == "pick_device":
        from coursekit.device import pick_device

        return pick_device
    if name == "seed_everything":
        from coursekit.seed import seed_everything

        return seed_everything
    raise AttributeError(f"module 'coursekit' has no attribute {name!r}")
