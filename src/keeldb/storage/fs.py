"""File-system primitives with the durability rules spelled out.

POSIX only promises that data reaches the disk after ``fsync`` of the file, and that a new
name (create or rename) reaches the disk after ``fsync`` of the *directory* holding it.
Forgetting the second is the classic way to lose a file that was "written and fsynced".
Every helper here does both, so callers cannot forget.
"""

from __future__ import annotations

import errno
import fcntl
import os
import zlib
from collections.abc import Callable
from pathlib import Path

from keeldb.errors import DatabaseLocked, StorageError
from keeldb.storage.crash import before_fsync
from keeldb.storage.filenames import tmp_name


def fsync_dir(path: Path) -> None:
    """Make the directory entries (creates, renames, unlinks) in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        before_fsync()
        os.fsync(fd)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes | memoryview) -> None:
    """Create ``path`` with ``data`` and fsync it (not its directory: the caller batches that)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]
        before_fsync()
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """fsync a file some library wrote (FAISS writes its own index files)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        before_fsync()
        os.fsync(fd)
    finally:
        os.close(fd)


def file_crc32(path: Path, chunk: int = 8 << 20) -> tuple[int, int]:
    """(size, CRC-32) of a file, read with ``read()`` in chunks.

    Deliberately not through a memory map: pages touched through a mapping count in the
    process's resident memory until the kernel reclaims them, so verifying a 500 MB segment
    through its mapping made the vectors look resident even when no search ever reads them
    (an IVF search reads the index's copy, not the segment's)."""
    crc = size = 0
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(chunk)
        view = memoryview(buf)
        while n := f.readinto(buf):
            crc = zlib.crc32(view[:n], crc)
            size += n
    return size, crc


def atomic_replace(
    path: Path,
    data: bytes,
    *,
    before_rename: Callable[[], None] | None = None,
    after_rename: Callable[[], None] | None = None,
) -> None:
    """Replace ``path`` with ``data`` so that a crash leaves either the old or the new file.

    Steps: write ``path.tmp`` and fsync it; rename over ``path`` (atomic on POSIX); fsync the
    directory so the rename itself is durable. A crash before the rename leaves a stray
    ``.tmp`` (ignored and removed by the next open); after it, the new content.
    The hooks exist for crash points.
    """
    tmp = path.with_name(tmp_name(path.name))
    write_durable(tmp, data)
    if before_rename:
        before_rename()
    os.replace(tmp, path)
    if after_rename:
        after_rename()
    fsync_dir(path.parent)


def makedirs_durable(path: Path) -> None:
    """mkdir -p, then fsync each parent whose entry we created."""
    missing = []
    p = path
    while not p.exists():
        missing.append(p)
        p = p.parent
    for d in reversed(missing):
        try:
            os.mkdir(d)
        except FileExistsError:
            pass
        fsync_dir(d.parent)


class DirectoryLock:
    """An exclusive ``flock`` on ``LOCK`` in the data directory.

    ``flock`` is released by the kernel when the process dies, even by SIGKILL, so a crashed
    process never leaves a stale lock behind, and a second live process gets a clear error
    instead of two writers corrupting one log.
    """

    def __init__(self, directory: Path) -> None:
        self.path = directory / "LOCK"
        try:
            self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except PermissionError:
            raise StorageError(f"cannot open the data directory {directory}: permission denied") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            os.close(self._fd)
            if e.errno in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                holder = self.path.read_text().strip() if self.path.exists() else ""
                raise DatabaseLocked(
                    f"the data directory {directory} is open in another process"
                    + (f" (pid {holder})" if holder.isdigit() else "")
                    + "; stop it or use another directory"
                ) from None
            raise
        os.ftruncate(self._fd, 0)
        os.write(self._fd, f"{os.getpid()}\n".encode())

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1
