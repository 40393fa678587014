"""File-system primitives with the durability rules spelled out.

POSIX only promises that data reaches the disk after ``fsync`` of the file, and that a new
name (create or rename) reaches the disk after ``fsync`` of the *directory* holding it.
Forgetting the second is the classic way to lose a file that was "written and fsynced".
Every helper here does both, so callers cannot forget.

Every file operation keeldb's storage makes — open for writing, write, truncate, fsync,
rename, unlink, mkdir, rmdir, a library writing a file itself — goes through a function
here, so that the simulated power cut (``storage/powercut.py``, armed with
``KEELDB_FAULTS=power-cut``) sees all of them. When it is not armed each function is the
plain system call behind one ``is None`` test.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from keeldb.errors import DatabaseLocked, StorageError
from keeldb.storage.crash import before_fsync, power_tracker
from keeldb.storage.filenames import tmp_name

PathLike = str | os.PathLike[str]
# The power-cut tracker when KEELDB_FAULTS arms it, else None (read once, at import).
_power = power_tracker()

# -- the system calls, seen by the power-cut tracker when it is armed ------------------------


def open_for_write(path: PathLike, flags: int = os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode: int = 0o644) -> int:
    return os.open(path, flags, mode) if _power is None else _power.open(path, flags, mode)


def write_all(fd: int, data: bytes | memoryview) -> None:
    """Write all of ``data`` (``os.write`` may write less than asked)."""
    if _power is not None:
        _power.write(fd, data)
        return
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def truncate(fd: int, size: int) -> None:
    if _power is None:
        os.ftruncate(fd, size)
    else:
        _power.truncate(fd, size)


def sync_fd(fd: int, *, data_only: bool = False) -> None:
    """fsync (``data_only``: fdatasync) an open file."""
    before_fsync()
    if _power is not None:
        _power.fsync(fd, data_only=data_only)
    elif data_only:
        os.fdatasync(fd)
    else:
        os.fsync(fd)


def replace(src: PathLike, dst: PathLike) -> None:
    if _power is None:
        os.replace(src, dst)
    else:
        _power.replace(src, dst)


def unlink(path: PathLike) -> None:
    if _power is None:
        os.unlink(path)
    else:
        _power.unlink(path)


def mkdir(path: PathLike) -> None:
    if _power is None:
        os.mkdir(path)
    else:
        _power.mkdir(path)


def rmtree(path: PathLike) -> None:
    """``shutil.rmtree(path, ignore_errors=True)``, one tracked unlink / rmdir at a time when
    the power-cut tracker is armed (so a cut can bring back what a drop had not made durable)."""
    if _power is None:
        shutil.rmtree(path, ignore_errors=True)
        return
    for top, dirs, files in os.walk(path, topdown=False):
        for name in files:
            try:
                _power.unlink(os.path.join(top, name))
            except OSError:
                pass
        for name in dirs:
            try:
                _power.rmdir(os.path.join(top, name))
            except OSError:
                pass
    try:
        _power.rmdir(path)
    except OSError:
        pass


@contextmanager
def written_by_library(path: PathLike) -> Iterator[None]:
    """Around a library writing ``path`` itself (FAISS writes its index files): the power-cut
    tracker notes the file and holds its lock meanwhile, so a cut never sees half a write."""
    if _power is None:
        yield
        return
    with _power.lock:
        p, existed = _power.begin_external(path)
        try:
            yield
        finally:
            _power.end_external(p, existed)


# -- durable files -----------------------------------------------------------------------------


def fsync_dir(path: Path) -> None:
    """Make the directory entries (creates, renames, unlinks) in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        before_fsync()
        if _power is None:
            os.fsync(fd)
        else:
            _power.fsync_dir(fd, path)
    finally:
        os.close(fd)


def write_durable(path: Path, data: bytes | memoryview) -> None:
    """Create ``path`` with ``data`` and fsync it (not its directory: the caller batches that)."""
    fd = open_for_write(path)
    try:
        write_all(fd, data)
        sync_fd(fd)
    finally:
        os.close(fd)


def fsync_file(path: Path) -> None:
    """fsync a file some library wrote (FAISS writes its own index files)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        sync_fd(fd)
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
    replace(tmp, path)
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
            mkdir(d)
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
