"""Figures and data helpers shared by the benchmark scripts (imported as ``_common``: the
scripts run with ``benchmarks/`` first on ``sys.path``). How they print is ``_report``;
their command line is ``_cli``; measurements in child processes are ``_workers``."""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

TOP_K = 10
# The search-time settings swept, cheap first: IVF's nprobe, HNSW's ef.
NPROBE_SWEEP = (1, 2, 4, 8, 16, 32, 64, 128)
EF_SWEEP = (16, 32, 64, 128, 256, 512)


def machine_info() -> dict[str, Any]:
    """What a reader needs to judge the figures: CPU, memory, load, Python, numpy."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = round(int(line.split()[1]) / 1024**2, 1)
    except (OSError, ValueError):
        pass
    try:
        load: tuple[float, float, float] | None = os.getloadavg()
    except OSError:
        load = None
    return {
        "cpu_count": os.cpu_count(),
        "cpu_model": model or platform.processor(),
        "memory_gib": mem,
        "loadavg_at_end": load,
        "platform": platform.platform(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "numpy": np.__version__,
    }


def json_default(obj: Any) -> Any:
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def figure(value: float | None, error: str | None = None, **detail: Any) -> dict[str, Any]:
    """One figure of a results table: its value (None if it could not be measured), why
    not (or what was wrong with it), and whatever explains it."""
    return {"value": value, "error": error, "detail": detail}


def error_text(exc: BaseException, limit: int = 600) -> str:
    """One line for the report; a server's refusal keeps its code and message only."""
    code, message = getattr(exc, "code", None), getattr(exc, "message", None)
    if message is not None and code is not None:
        text = f"server said (code {code}): {message}"
    else:
        text = f"{type(exc).__name__}: {exc}".strip()
    return text if len(text) < limit else text[:limit] + "..."


def recall_at_k(got: Sequence[Sequence[int]] | np.ndarray, truth: np.ndarray) -> float:
    """Mean over queries of |returned ids & true top-k| / k."""
    k = truth.shape[1]
    hits = sum(
        len(set(np.asarray(g)[:k].tolist()) & set(t.tolist()))
        for g, t in zip(got, truth, strict=True)
    )
    return hits / (k * len(truth)) if len(truth) else float("nan")


def package_version(dist: str, module: Any = None) -> str:
    """``module.__version__``, else the installed distribution's version, else "unknown"
    (keeldb run from a checkout with PYTHONPATH=src is not an installed distribution)."""
    v = getattr(module, "__version__", None)
    if v:
        return str(v)
    try:
        from importlib.metadata import version

        return version(dist)
    except Exception:  # noqa: BLE001 - a missing version must not stop the benchmark
        return "unknown"
