"""Shared test setup.

Hypothesis profiles: ``default`` keeps the suite inside CI's budget; ``HYPOTHESIS_PROFILE=long``
runs many more examples for a bug hunt (``pytest tests/test_model.py``).
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

settings.register_profile("default", deadline=None)
settings.register_profile(
    "long",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))
