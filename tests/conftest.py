"""Shared test setup.

Hypothesis profiles: ``default`` keeps the suite inside CI's budget; ``HYPOTHESIS_PROFILE=long``
runs many more examples for a bug hunt (``pytest tests/test_model.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, settings
from pymilvus import MilvusClient

from tests.server_util import KeelServer

settings.register_profile("default", deadline=None)
settings.register_profile(
    "long",
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


# -- fixtures for the server test modules (a module may define its own instead) --------------


@pytest.fixture(scope="module")
def server() -> Iterator[KeelServer]:
    """One ``keeldb serve`` for a test module. An exception the service did not expect is
    logged with a traceback and answered with code 65535; every failure the tests provoke
    should be an expected one, so the log must hold no traceback."""
    with KeelServer() as s:
        yield s
        err = s.stderr_path.read_text(errors="replace") if s.stderr_path.exists() else ""
    assert "Traceback" not in err, f"the server logged an unexpected exception:\n{err[-3000:]}"


@pytest.fixture(scope="module")
def mc(server: KeelServer) -> Iterator[MilvusClient]:
    c = MilvusClient(uri=server.uri)
    yield c
    c.close()
