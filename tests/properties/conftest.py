"""The hypothesis settings every property test here uses: the same 25 examples every run
(derandomized, no example database), no deadline (CI machines are slow and shared); and
props.py (shared names) made importable (pytest runs with --import-mode=importlib)."""

import sys
from pathlib import Path

from hypothesis import HealthCheck, settings

sys.path.insert(0, str(Path(__file__).parent))

settings.register_profile(
    "coursekit-properties", max_examples=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow])
