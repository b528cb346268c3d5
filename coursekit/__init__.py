"""coursekit: visual perception beyond classification, every concept from scratch in PyTorch.

Importing the package is cheap; each topic lives in its own subpackage
(``coursekit.upsampling``, ``coursekit.segmentation``, ...).
"""

__version__ = "0.1.0"

import os as _os

# OpenMP threads that busy-wait make torch 10-20x slower when another process holds
# the other core (a laptop, a shared CI machine); passive waiting costs nothing here.
# It only takes effect if torch has not been imported yet; set it yourself to override.
_os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from coursekit.device import pick_device  # noqa: E402
from coursekit.seed import seed_everything  # noqa: E402

__all__ = ["__version__", "pick_device", "seed_everything"]
