"""Appends records to one log file and makes them durable with group commit.

Appends are cheap (a ``write`` into the page cache). Durability comes from ``sync``: the
first caller that finds the log unsynced becomes the leader, fsyncs everything written so
far, and wakes every caller whose record that fsync covered. Many concurrent writers thus
share one fsync, and none returns before its own bytes are on disk.

After any I/O error the writer is poisoned: the kernel may already have dropped the dirty
pages that failed to write (the "fsyncgate" lesson from PostgreSQL), so retrying fsync
could report success for data that is gone. The engine must reopen and recover instead.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from keeldb.errors import StorageError
from keeldb.storage.crash import before_fsync, crash_point
from keeldb.storage.log_format import encode_record


def log_path(directory: Path, number: int) -> Path:
    return directory / f"{number:012d}.log"


class LogWriter:
    def __init__(self, directory: Path, number: int) -> None:
        self.number = number
        self.path = log_path(directory, number)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._written = os.fstat(self._fd).st_size
        self._synced = self._written
        self._cond = threading.Condition()
        self._syncing = False
        self._error: StorageError | None = None

    @property
    def written(self) -> int:
        return self._written

    @property
    def synced(self) -> int:
        return self._synced

    def append(self, rtype: int, ts: int, payload: bytes) -> int:
        """Write one record; return the file offset just past it (to pass to ``sync``).

        If the write fails part-way (disk full), the partial record is cut off again so the
        log stays a clean sequence of whole records; if even that fails, the writer is
        poisoned and recovery's checksum scan will cut the torn tail.
        """
        crash_point("wal.before_append")
        record = encode_record(rtype, ts, payload)
        with self._cond:
            if self._error:
                raise self._error
            start = self._written
            try:
                view = memoryview(record)
                while view:
                    n = os.write(self._fd, view)
                    view = view[n:]
            except OSError as e:
                try:
                    os.ftruncate(self._fd, start)
                except OSError:
                    self._error = StorageError(f"log {self.path} is damaged: {e}")
                raise StorageError(f"cannot append to {self.path}: {e}") from e
            self._written = start + len(record)
            end = self._written
        crash_point("wal.after_append")
        return end

    def sync(self, upto: int | None = None) -> None:
        """Return once every byte before ``upto`` (default: all written) is on disk."""
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
            # The leader's fsync covers everything appended so far, which includes ``target``
            # (an offset ``append`` returned earlier), so one round always suffices.
            covering = self._written
        try:
            crash_point("wal.before_fsync")
            before_fsync()
            os.fdatasync(self._fd)
            crash_point("wal.after_fsync")
        except OSError as e:
            with self._cond:
                self._error = StorageError(f"fsync of {self.path} failed: {e}")
                self._syncing = False
                self._cond.notify_all()
            raise self._error from e
        with self._cond:
            self._synced = max(self._synced, covering)
            self._syncing = False
            self._cond.notify_all()

    def end(self) -> None:
        """Nothing to do locally: the manifest's checkpoint says which logs are finished.
        (The cluster's log writes an end marker for readers tailing it.)"""

    def close(self) -> None:
        with self._cond:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
