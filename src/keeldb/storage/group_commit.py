"""Group commit: many writers, one durable operation, nobody acknowledged early.

Both logs use it — the local one (``log_writer.py``: the durable operation is fdatasync)
and the cluster's (``cluster/store.py``: a conditional PUT of everything buffered). The
first caller of ``sync`` that finds the log unsynced becomes the leader: it takes
everything appended so far, makes it durable, and wakes every caller whose record that
covered. Callers arriving meanwhile wait for the *next* round, because the running one may
not include their bytes; one round always covers a waiter, since a leader covers all that
was appended when it started.

After a failure the log is poisoned for good: the local log because the kernel may have
dropped the pages that failed (retrying could report success for data that is gone), the
cluster log because a put with an unknown outcome may or may not own its position. The
engine reopens and recovers instead.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from typing import Any

from keeldb import telemetry
from keeldb.errors import StorageError


class GroupCommit(ABC):
    """Subclasses append under ``_cond`` (advancing ``_written``) and implement the three
    hooks; ``sync`` is the protocol."""

    def __init__(self, written: int = 0) -> None:
        self._cond = threading.Condition()
        self._written = written
        self._synced = written
        self._syncing = False
        self._error: StorageError | None = None

    @property
    def synced(self) -> int:
        return self._synced

    def sync(self, upto: int | None = None) -> None:
        """Return once every byte before ``upto`` (default: all appended) is durable."""
        with self._cond:
            target = self._written if upto is None else upto
            while True:
                if self._error:
                    raise self._error
                if self._synced >= target:
                    return
                if not self._syncing:
                    break
                self._cond.wait()
            self._syncing = True
            covering = self._written
            start = self._synced
            batch = self._take_batch()
        try:
            self._persist(batch)
        except BaseException as e:
            error = self._failure(e)
            with self._cond:
                self._error = error
                self._syncing = False
                self._cond.notify_all()
            raise error from e
        with self._cond:
            self._persisted(batch)
            self._synced = max(self._synced, covering)
            self._syncing = False
            self._cond.notify_all()
        telemetry.observe(telemetry.WAL_SYNC_BYTES, covering - start)

    # -- hooks ------------------------------------------------------------------------------

    def _take_batch(self) -> Any:
        """Under the lock, as the leader starts: what this round makes durable."""
        return None

    @abstractmethod
    def _persist(self, batch: Any) -> None:
        """Outside the lock: make ``batch`` durable, or raise."""

    def _persisted(self, batch: Any) -> None:  # noqa: B027 - an optional hook
        """Under the lock, after ``_persist`` succeeded."""

    def _failure(self, error: BaseException) -> StorageError:
        """The error every caller gets from now on."""
        return error if isinstance(error, StorageError) else StorageError(f"log sync failed: {error!r}")
