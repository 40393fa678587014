"""What a collection TTL does to the model: which versions a read may find expired.

Under ``collection.ttl.seconds`` a version written at timestamp W is invisible to a read at
snapshot S once ``physical(S) - physical(W) >= ttl`` (milliseconds; engine/ttl.py, as
Milvus defines it). The checker never learns S, and the server's clock is not the
client's (after a restart keeldb's oracle may run seconds ahead of the wall clock: it
starts past its reserved window). So expiry is judged in the server's own time, bounded
by the write timestamps the server reported:

- a Strong read that started at ``a`` reads at S >= every timestamp acknowledged before
  ``a`` (that is the guarantee the checker holds it to): ``S >= L(a)``;
- a write invoked after the read returned at ``b`` is stamped after S (one oracle,
  monotonic across restarts): ``S <= U(b)``, the smallest such stamp (its physical part
  may equal S's; a later write's logical part is what makes it larger);
- a read pinned at a timestamp reads exactly there;
- a version's W is its write's reported timestamp; a write that reported none was stamped
  within [L(invoke), U(complete)] — or, if its outcome is unknown, before its writer's
  next write (which waited for the restart); the base rows between the smallest and
  largest stamp of the load.

A version is then surely expired for a read when ``L - W_max >= ttl`` and may be expired
when ``U - W_min >= ttl``: the model adds "absent" to the values a key may show in the
second case, and replaces the version by it in the first. With no reported timestamps at
all (Milvus Lite answers 0) nothing is ever surely expired and everything may be: sound,
only loose.

This holds for one timestamp oracle. A keeldb cluster's nodes stamp from separate
reserved windows, so a write to one node may be stamped below a snapshot another node
took before it: ``--workload ttl`` is refused for the cluster target (chaos/runner.py).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable

import numpy as np

from keeldb.chaos.history import OK, UNKNOWN, History, Op

LOGICAL_BITS = 18  # a hybrid timestamp is physical_ms << 18 | logical (Milvus, keeldb)
INF = math.inf

Window = tuple[float, float]  # (earliest, latest) physical milliseconds


def physical(ts: int) -> int:
    return ts >> LOGICAL_BITS


class Expiry:
    """Bounds on the server's time at each read and write of a history, and the TTL test
    that uses them. ``ttl_ms`` 0: no TTL, nothing ever expires."""

    def __init__(self, history: History, ttl_ms: int, base_ts: tuple[int, int] | None) -> None:
        self.ttl_ms = ttl_ms
        stamped = [o for o in history.ops if o.is_write and o.ts]
        acked = sorted((o.complete, physical(o.ts)) for o in stamped if o.outcome == OK and o.complete is not None)
        self._acked_at = np.asarray([t for t, _ in acked], dtype=np.float64)
        self._acked_max = np.maximum.accumulate(np.asarray([p for _, p in acked], dtype=np.float64)) if acked else np.empty(0)
        sent = sorted((o.invoke, physical(o.ts)) for o in stamped)
        self._sent_at = np.asarray([t for t, _ in sent], dtype=np.float64)
        mins = np.asarray([p for _, p in sent], dtype=np.float64)
        self._sent_min = np.minimum.accumulate(mins[::-1])[::-1] if sent else np.empty(0)
        self.base: Window = (physical(base_ts[0]), physical(base_ts[1])) if base_ts else (0.0, INF)
        # Each writer's stamped writes in invoke order: a write of unknown outcome was
        # stamped, if at all, before its writer's next write (the workload's discipline).
        self._by_writer: dict[str, tuple[list[float], list[int]]] = {}
        for o in sorted(stamped, key=lambda o: o.invoke):
            times, stamps = self._by_writer.setdefault(str(o.args.get("by", "")), ([], []))
            times.append(o.invoke)
            stamps.append(physical(o.ts))

    @classmethod
    def of(cls, history: History) -> Expiry | None:
        """The history's TTL as recorded by the runner (``meta["ttl"]``), or None."""
        ttl = history.meta.get("ttl") or {}
        seconds = int(ttl.get("seconds") or 0)
        if seconds <= 0:
            return None
        base = ttl.get("base_ts")
        return cls(history, seconds * 1000, (int(base[0]), int(base[1])) if base else None)

    # -- the server's time --------------------------------------------------------------

    def acked_before(self, t: float) -> float:
        """L(t): the largest stamp acknowledged before ``t`` (0 if none)."""
        i = int(np.searchsorted(self._acked_at, t, side="left"))
        return float(self._acked_max[i - 1]) if i else 0.0

    def sent_after(self, t: float) -> float:
        """U(t): the smallest stamp of a write invoked after ``t`` (inf if none)."""
        i = int(np.searchsorted(self._sent_at, t, side="right"))
        return float(self._sent_min[i]) if i < len(self._sent_min) else INF

    def read(self, start: float, end: float) -> Window:
        """Where the snapshot of a Strong read over [start, end] may lie."""
        return self.acked_before(start), self.sent_after(end)

    @staticmethod
    def pinned(ts: int) -> Window:
        return float(physical(ts)), float(physical(ts))

    def written(self, op: Op | None) -> Window:
        """Where the stamp of the version ``op`` wrote lies (None: the base load)."""
        if op is None:
            return self.base
        if op.ts:
            return float(physical(op.ts)), float(physical(op.ts))
        if op.outcome != UNKNOWN and op.complete is not None:
            hi = self.sent_after(op.complete)
        else:
            hi = self.next_by_writer(op)
        return self.acked_before(op.invoke), hi

    def next_by_writer(self, op: Op) -> float:
        """The stamp of the next write of ``op``'s writer (inf if none): a writer whose call
        ended unknown waits for the restart before its next one, so a request that did land
        was stamped by then (chaos/workload.py), and timestamps only grow."""
        times, stamps = self._by_writer.get(str(op.args.get("by", "")), ([], []))
        i = bisect.bisect_right(times, op.invoke)
        return float(stamps[i]) if i < len(stamps) else INF

    # -- the test ---------------------------------------------------------------------------

    def surely(self, version: Window, read: Window) -> bool:
        """Expired at every snapshot the read may have taken."""
        return read[0] - version[1] >= self.ttl_ms

    def maybe(self, version: Window, read: Window) -> bool:
        """Expired at some snapshot the read may have taken."""
        return read[1] - version[0] >= self.ttl_ms

    def apply(self, values: Iterable[tuple[object, Window]], read: Window, absent: object) -> set[object]:
        """The values a read may show, given the (value, version window) pairs it may find
        held: a surely expired version shows as ``absent``, one that may be, as either."""
        out: set[object] = set()
        for value, version in values:
            if value is absent:
                out.add(value)
            elif self.surely(version, read):
                out.add(absent)
            else:
                out.add(value)
                if self.maybe(version, read):
                    out.add(absent)
        return out
