"""Shared by the benchmark smoke tests: which systems to run, and the child's environment."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def peer_systems() -> list[str]:
    """keeldb always; Milvus Lite only when it is installed (it is an optional extra)."""
    systems = ["keeldb"]
    try:
        import milvus_lite  # noqa: F401
    except ImportError:
        pass
    else:
        systems.append("milvus-lite")
    return systems


def bench_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p)
    return env
