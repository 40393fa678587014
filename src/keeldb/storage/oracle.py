"""The timestamp oracle: one monotonic clock for every write, surviving restarts.

A timestamp is Milvus's hybrid form: ``physical_ms << 18 | logical``. The oracle persists a
*reserved* physical bound ahead of time (3 s, like Milvus's TSO window): it never hands out
a physical part at or beyond what is durably reserved, and after a restart it starts at the
reserved bound. So timestamps keep increasing across restarts even if the wall clock went
backwards, at the cost of one small fsynced write every few seconds.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from keeldb.errors import CorruptionError
from keeldb.storage.framed import encode_framed, read_framed
from keeldb.storage.fs import atomic_replace

LOGICAL_BITS = 18
LOGICAL_MASK = (1 << LOGICAL_BITS) - 1
RESERVE_MS = 3000
MAGIC = b"KEELTSO1"


def compose(physical_ms: int, logical: int) -> int:
    return (physical_ms << LOGICAL_BITS) | logical


def physical_ms(ts: int) -> int:
    return ts >> LOGICAL_BITS


class TimestampOracle:
    def __init__(self, path: Path) -> None:
        self.path = path
        reserved = 0
        if path.exists():
            try:
                reserved = int(read_framed(MAGIC, path)["reserved_ms"])
            except (CorruptionError, KeyError, ValueError) as e:
                raise CorruptionError(f"timestamp oracle {path}: {e}") from e
        self._lock = threading.Lock()
        self._physical = max(reserved, self._now())
        self._logical = 0
        self._reserved = reserved
        self._last = compose(self._physical, 0)

    @staticmethod
    def _now() -> int:
        return time.time_ns() // 1_000_000

    def _reserve(self, upto: int) -> None:
        atomic_replace(self.path, encode_framed(MAGIC, {"reserved_ms": upto}))
        self._reserved = upto

    def next(self) -> int:
        """A timestamp greater than every one handed out before, in this life or an earlier."""
        return self.next_block(1)

    def next_block(self, n: int) -> int:
        """Reserve ``n`` consecutive timestamps and return the last one; the block is
        ``range(last - n + 1, last + 1)`` (used for auto_id keys as well as for writes)."""
        with self._lock:
            now = self._now()
            if now > self._physical:
                self._physical, self._logical = now, n - 1
            else:
                self._logical += n
            if self._logical > LOGICAL_MASK:
                self._physical += self._logical >> LOGICAL_BITS
                self._logical &= LOGICAL_MASK
            if self._physical >= self._reserved:
                self._reserve(self._physical + RESERVE_MS)
            self._last = compose(self._physical, self._logical)
            return self._last

    def observe(self, ts: int) -> None:
        """Make sure later timestamps exceed ``ts`` (one seen in a log during recovery)."""
        with self._lock:
            if ts >= self._last:
                self._physical, self._logical = physical_ms(ts), ts & LOGICAL_MASK
                self._last = ts

    def last(self) -> int:
        return self._last
