"""The timestamp oracle: one monotonic clock for every write, surviving restarts.

A timestamp is Milvus's hybrid form: ``physical_ms << 18 | logical``. The oracle persists a
*reserved* physical bound ahead of time (3 s, like Milvus's TSO window): it never hands out
a physical part at or beyond what is durably reserved, and after a restart it starts at the
reserved bound. So timestamps keep increasing across restarts even if the wall clock went
backwards, at the cost of one small fsynced write every few seconds.

Where the bound lives is a ``ReservationStore``: a file in the embedded case; in cluster
mode an etcd key (``cluster/oracle.py``), where every reservation is a compare-and-swap
that starts past every earlier one, so nodes get disjoint windows and a shard's next writer
always stamps later than its previous one.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Protocol

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


class ReservationStore(Protocol):
    """Where the oracle's reserved bound lives: a file for one process, etcd for a cluster."""

    def load(self) -> int:
        """The bound reserved so far (0 if none)."""
        ...

    def reserve(self, physical: int, window: int) -> tuple[int, int]:
        """Durably reserve physical milliseconds [start, end) with start >= ``physical`` and
        beyond every earlier reservation; return (start, end)."""
        ...


class FileReservation:
    """The embedded case: one process owns the directory, so its reservations never overlap
    anyone else's; the file only carries the bound across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> int:
        if not self.path.exists():
            return 0
        try:
            return int(read_framed(MAGIC, self.path)["reserved_ms"])
        except (CorruptionError, KeyError, ValueError) as e:
            raise CorruptionError(f"timestamp oracle {self.path}: {e}") from e

    def reserve(self, physical: int, window: int) -> tuple[int, int]:
        atomic_replace(self.path, encode_framed(MAGIC, {"reserved_ms": physical + window}))
        return physical, physical + window


class TimestampOracle:
    def __init__(self, store: Path | ReservationStore) -> None:
        self.store: ReservationStore = FileReservation(store) if isinstance(store, Path) else store
        reserved = self.store.load()
        self._lock = threading.Lock()
        self._physical = max(reserved, self._now())
        self._logical = 0
        self._reserved = reserved
        self._last = compose(self._physical, 0)

    @staticmethod
    def _now() -> int:
        return time.time_ns() // 1_000_000

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
                start, self._reserved = self.store.reserve(self._physical, RESERVE_MS)
                if start > self._physical:
                    # A shared store (etcd) handed out a window beyond ours: another node
                    # reserved up to there, so this block starts past everything it gave.
                    self._physical, self._logical = start, n - 1
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
