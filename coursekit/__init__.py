"""coursekit: visual perception beyond classification, every concept from scratch in PyTorch.

Importing the package is cheap; each topic lives in its own subpackage
(``coursekit.upsampling``, ``coursekit.segmentation``, ...).
"""

__version__ = "0.1.0"

from coursekit.device import pick_device  # noqa: E402
from coursekit.seed import seed_everything  # noqa: E402

__all__ = ["__version__", "pick_device", "seed_everything"]
