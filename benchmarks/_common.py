"""Figures and data helpers shared by the benchmark scripts (imported as ``_common``: the
scripts run with ``benchmarks/`` first on ``sys.path``). How they print is ``_report``;
their command line is ``_cli``; measurements in child processes are ``_workers``."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
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


@dataclass
class Timed:
    """What ``time_calls`` measured: each call's seconds, the queries they answered, the
    complete passes over the batches, and the first pass's answers."""

    latencies: list[float] = field(default_factory=list)
    answered: int = 0
    passes: int = 0
    first: list[Any] = field(default_factory=list)

    @property
    def qps(self) -> float | None:
        total = sum(self.latencies)
        return self.answered / total if total > 0 else None


def time_calls(
    search: Callable[[Any], Any],
    batches: Sequence[Any],
    *,
    min_s: float,
    budget_s: float | None = None,
    min_queries: int = 1,
    max_passes: int | None = None,
    keep: Callable[[Any], Any] = lambda res: res,
) -> Timed:
    """Call ``search`` on each batch (a sized sequence of queries), timing each call alone,
    and repeat the batches until ``min_s`` seconds of calls were timed or ``max_passes``
    passes were made; stop in the middle of a pass once ``budget_s`` has gone by and
    ``min_queries`` were answered. ``keep`` turns a first-pass answer into what is kept, after
    the timer. QPS = queries answered / summed call time: the loop's own work is not timed."""
    out = Timed()
    deadline = None if budget_s is None else time.perf_counter() + budget_s
    while True:
        for b in batches:
            if deadline is not None and out.answered >= min_queries and time.perf_counter() > deadline:
                return out
            t0 = time.perf_counter()
            res = search(b)
            out.latencies.append(time.perf_counter() - t0)
            out.answered += len(b)
            if out.passes == 0:
                out.first.append(keep(res))
        out.passes += 1
        if sum(out.latencies) >= min_s or (max_passes is not None and out.passes >= max_passes):
            return out
