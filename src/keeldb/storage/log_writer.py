"""Appends records to one log file and makes them durable with group commit.

Appends are cheap (a ``write`` into the page cache). Durability comes from ``sync``
(``group_commit.py``): one fdatasync covers every record written before it started, shared
by every writer waiting, and none returns before its own bytes are on disk.

After any I/O error the writer is poisoned: the kernel may already have dropped the dirty
pages that failed to write (the "fsyncgate" lesson from PostgreSQL), so retrying fsync
could report success for data that is gone. The engine must reopen and recover instead.
"""

from __future__ import annotations

import os
from pathlib import Path

from keeldb.errors import StorageError
from keeldb.storage.crash import crash_point
from keeldb.storage.filenames import log_name
from keeldb.storage.fs import open_for_write, sync_fd, truncate, write_all
from keeldb.storage.group_commit import GroupCommit
from keeldb.storage.log_format import encode_record


def log_path(directory: Path, number: int) -> Path:
    return directory / log_name(number)


class LogWriter(GroupCommit):
    def __init__(self, directory: Path, number: int) -> None:
        self.number = number
        self.path = log_path(directory, number)
        self._fd = open_for_write(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
        super().__init__(written=os.fstat(self._fd).st_size)

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
                write_all(self._fd, record)
            except OSError as e:
                try:
                    truncate(self._fd, start)
                except OSError:
                    self._error = StorageError(f"log {self.path} is damaged: {e}")
                raise StorageError(f"cannot append to {self.path}: {e}") from e
            self._written = start + len(record)
            end = self._written
        crash_point("wal.after_append")
        return end

    # sync() is GroupCommit's; one round is one fdatasync of everything written so far.

    def _persist(self, batch: None) -> None:
        crash_point("wal.before_fsync")
        sync_fd(self._fd, data_only=True)
        crash_point("wal.after_fsync")

    def _failure(self, error: BaseException) -> StorageError:
        return StorageError(f"fsync of {self.path} failed: {error}")

    def end(self) -> None:
        """Nothing to do locally: the manifest's checkpoint says which logs are finished.
        (The cluster's log writes an end marker for readers tailing it.)"""

    def close(self) -> None:
        with self._cond:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
