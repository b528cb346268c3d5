"""The hypothesis settings every property test here uses: the same 25 examples every run
(derandomized, no example database), no deadline (CI machines are slow and shared)."""

from hypothesis import HealthCheck, settings

settings.register_profile(
    "coursekit-properties", max_examples=25, deadline=None, derandomize=True, database=None,
    suppress_health_check=[HealthCheck.too_slow])
