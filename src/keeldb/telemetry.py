"""Events of the engine that an operator watches: how long flushes, compactions, index
builds and recoveries take, how many bytes each group commit of the log made durable.

The engine reports them here by name; whoever wants them installs a sink (the server's
``/metrics``, ``keeldb.server.metrics``). With no sink installed -- the embedded client --
an event costs one empty-list check, and the engine never imports a metrics library.
A failing sink is dropped from the event, never raised into the engine.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, TypeVar

Sink = Callable[[str, float], None]
F = TypeVar("F", bound=Callable[..., Any])

# Event names (the values are seconds unless the name says otherwise).
FLUSH = "flush"
COMPACTION = "compaction"
INDEX_BUILD = "index_build"
RECOVERY = "recovery"
WAL_SYNC_BYTES = "wal_sync_bytes"  # bytes one group commit made durable

_sinks: list[Sink] = []


def add_sink(sink: Sink) -> None:
    if sink not in _sinks:
        _sinks.append(sink)


def remove_sink(sink: Sink) -> None:
    if sink in _sinks:
        _sinks.remove(sink)


def observe(event: str, value: float) -> None:
    for sink in list(_sinks):
        try:
            sink(event, value)
        except Exception:  # noqa: BLE001, S110 - metrics must never break a write
            pass


def timed(event: str) -> Callable[[F], F]:
    """Report how long each call of the decorated function took (also when it raised)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            if not _sinks:
                return fn(*args, **kwargs)
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                observe(event, time.perf_counter() - start)

        return run  # type: ignore[return-value]

    return wrap
