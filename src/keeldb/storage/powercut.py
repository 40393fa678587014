"""Power loss, simulated: what a machine that loses power mid-run leaves on disk.

A SIGKILL loses the process's memory but not the kernel's page cache, so after one every
byte the process wrote is still there, fsynced or not: a missing fsync is invisible to
every crash test that kills processes. A power cut loses the page cache too. This module
makes the difference testable, as LazyFS does for Jepsen, but inside keeldb: every file
operation of keeldb goes through ``storage/fs.py``, which, when the fault is armed,
reports it here first, and a *power cut* rolls the files back to what the last fsyncs made
durable before the process dies.

The model (docs/crash-safety.md, "What we assume of the system underneath"; pessimistic,
like LazyFS's):

- a file's bytes are durable up to its last ``fsync``/``fdatasync``: what was written after
  it is lost. With ``tear``, a random prefix of the lost bytes survives instead and, half the
  time, one page of that prefix reads back as zeros (pages reach the disk in any order);
- a change of a directory entry — create, rename, unlink, mkdir, rmdir — is durable once the
  directory is fsynced; until then a power cut undoes it (a rename moves back, an unlinked
  file comes back with its durable bytes, a created name goes away). A directory fsync makes
  every earlier change in that directory durable at once;
- what is on disk when the process starts is durable (it survived whatever came before).

How: the ``Tracker`` keeps, per file (by inode), how many of its bytes are durable — and a
copy of the durable bytes when they are about to be destroyed (truncated, overwritten,
replaced by a rename, unlinked) before that is durable — and the directory changes not yet
durable, in order. Memory grows with what is not yet durable, nothing else.

A power cut (a crash point armed while the fault is on, or ``SIGUSR1``) must not race the
process's other threads: one could append to the log, fault on a truncated memory map or
answer a client while the files are being rolled back. So the cut takes the tracker's lock
(no tracked operation can start), writes the undo plan to a temporary directory, starts a
helper process (this file run as a script: standard library only) and stops the whole
process with SIGSTOP. The helper waits until every thread is stopped, applies the plan and
SIGKILLs the process — so whoever waits for the process sees it die of SIGKILL, and the next
open meets exactly what a power loss could have left.

Armed with ``KEELDB_FAULTS=power-cut`` (or ``power-cut=tear``, ``power-cut=tear:SEED``),
parsed by ``storage/crash.py``; when it is not armed ``fs.py`` calls the OS directly and
nothing here runs.
"""

from __future__ import annotations

import fcntl
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

PAGE = 4096
PLAN = "plan.json"


@dataclass
class _File:
    """What of one file (inode) a power cut keeps."""

    durable: int  # bytes [0, durable) are durable as they are on disk now
    saved: bytes | None = None  # set when the durable bytes were overwritten: exactly these are durable
    path: str = ""  # where the inode was last seen


@dataclass
class _DirOp:
    """A directory change not yet durable, and how to undo it."""

    kind: str  # create | rename | unlink | mkdir | rmdir
    dir: str  # the directory whose fsync makes it durable
    path: str  # the name created, removed, or renamed to
    src: str = ""  # rename: the old name
    blob: bytes | None = None  # unlink / rename over a file: the durable bytes it had

    def undo(self, blobs: list[bytes]) -> list[list[Any]]:
        """Plan actions that undo this change (a blob is referred to by its index)."""
        def restore() -> list[list[Any]]:
            if self.blob is None:
                return []
            blobs.append(self.blob)
            return [["write", self.path, len(blobs) - 1]]

        if self.kind == "create":
            return [["remove", self.path]]
        if self.kind == "rename":
            return [["rename", self.path, self.src], *restore()]
        if self.kind == "unlink":
            return restore()
        if self.kind == "mkdir":
            return [["rmtree", self.path]]
        if self.kind == "rmdir":
            return [["mkdir", self.path]]
        raise AssertionError(self.kind)


def _key(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


def _real(path: str | os.PathLike[str]) -> str:
    return os.path.realpath(path)


@dataclass
class Tracker:
    """The durable state of every file keeldb touched in this process (see the module doc).
    ``fs.py`` calls one method per file operation, which does the operation itself under
    ``lock`` after noting what a power cut must undo."""

    tear: bool = False
    seed: int | None = None
    lock: threading.RLock = field(default_factory=threading.RLock)
    files: dict[tuple[int, int], _File] = field(default_factory=dict)
    pending: list[_DirOp] = field(default_factory=list)

    # -- bookkeeping ------------------------------------------------------------------------

    def _file(self, st: os.stat_result, path: str) -> _File:
        """The record of an inode; one seen for the first time is durable as it is."""
        f = self.files.get(_key(st))
        if f is None:
            f = self.files[_key(st)] = _File(durable=st.st_size)
        if path:
            f.path = path
        return f

    def _durable_bytes(self, f: _File, path: str) -> bytes:
        if f.saved is not None:
            return f.saved
        with open(path, "rb") as fh:
            return fh.read(f.durable)

    def _save(self, f: _File, path: str) -> None:
        """The durable bytes are about to be destroyed: keep a copy."""
        if f.saved is None and f.durable:
            f.saved = self._durable_bytes(f, path)

    def _created(self, path: str) -> None:
        self.pending.append(_DirOp("create", os.path.dirname(path), path))

    # -- file data --------------------------------------------------------------------------

    def open(self, path: str | os.PathLike[str], flags: int, mode: int) -> int:
        p = _real(path)
        with self.lock:
            try:
                st = os.stat(p)
            except FileNotFoundError:
                st = None
            if st is not None:
                f = self._file(st, p)
                if flags & os.O_TRUNC:
                    self._save(f, p)
            fd = os.open(p, flags, mode)
            if st is None:
                self.files[_key(os.fstat(fd))] = _File(durable=0, path=p)
                self._created(p)
            return fd

    def write(self, fd: int, data: bytes | memoryview) -> None:
        with self.lock:
            st = os.fstat(fd)
            f = self._file(st, "")
            append = fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_APPEND
            pos = st.st_size if append else os.lseek(fd, 0, os.SEEK_CUR)
            if pos < f.durable and f.path:  # an overwrite of durable bytes (keeldb only appends)
                self._save(f, f.path)
            view = memoryview(data)
            while view:
                n = os.write(fd, view)
                view = view[n:]

    def truncate(self, fd: int, size: int) -> None:
        with self.lock:
            f = self._file(os.fstat(fd), "")
            if size < f.durable:
                self._save(f, f.path)
            os.ftruncate(fd, size)

    def fsync(self, fd: int, *, data_only: bool = False) -> None:
        """Bytes written before the call are durable after it (not those written meanwhile
        by another thread: a real fsync promises no more)."""
        with self.lock:
            st = os.fstat(fd)
            f = self._file(st, "")
        (os.fdatasync if data_only else os.fsync)(fd)
        with self.lock:
            f.durable = max(f.durable, st.st_size) if f.saved is None else st.st_size
            f.saved = None

    # -- directories ------------------------------------------------------------------------

    def fsync_dir(self, fd: int, path: str | os.PathLike[str]) -> None:
        d = _real(path)
        with self.lock:
            covered = [op for op in self.pending if op.dir == d]
        os.fsync(fd)
        with self.lock:
            gone = {id(op) for op in covered}
            # An rmdir made durable takes every pending change inside the directory with it.
            dead = [op.path + os.sep for op in covered if op.kind == "rmdir"]
            self.pending = [
                op for op in self.pending if id(op) not in gone and not op.path.startswith(tuple(dead))
            ]

    def replace(self, src: str | os.PathLike[str], dst: str | os.PathLike[str]) -> None:
        s, d = _real(src), _real(dst)
        if os.path.dirname(s) != os.path.dirname(d):
            raise AssertionError(f"power-cut model: rename across directories ({s} -> {d}) is not modelled")
        with self.lock:
            blob = None
            try:
                st = os.stat(d)
            except FileNotFoundError:
                pass
            else:
                blob = self._durable_bytes(self._file(st, d), d)
            self.pending.append(_DirOp("rename", os.path.dirname(d), d, src=s, blob=blob))
            moved = os.stat(s)
            os.replace(s, d)
            self._file(moved, d)

    def unlink(self, path: str | os.PathLike[str]) -> None:
        p = _real(path)
        with self.lock:
            st = os.lstat(p)  # FileNotFoundError as os.unlink would raise it
            f = self._file(st, p)
            self.pending.append(_DirOp("unlink", os.path.dirname(p), p, blob=self._durable_bytes(f, p)))
            os.unlink(p)
            f.path = ""

    def mkdir(self, path: str | os.PathLike[str], mode: int = 0o777) -> None:
        p = _real(path)
        with self.lock:
            os.mkdir(p, mode)
            self.pending.append(_DirOp("mkdir", os.path.dirname(p), p))

    def rmdir(self, path: str | os.PathLike[str]) -> None:
        p = _real(path)
        with self.lock:
            os.rmdir(p)
            self.pending.append(_DirOp("rmdir", os.path.dirname(p), p))

    def begin_external(self, path: str | os.PathLike[str]) -> tuple[str, bool]:
        """A library is about to write ``path`` itself (FAISS writes its index files): note
        what the write destroys or creates. The caller holds ``lock`` until ``end_external``."""
        p = _real(path)
        try:
            st = os.stat(p)
        except FileNotFoundError:
            return p, False
        self._save(self._file(st, p), p)
        return p, True

    def end_external(self, p: str, existed: bool) -> None:
        try:
            st = os.stat(p)
        except FileNotFoundError:
            return
        if existed:
            self._file(st, p)
        else:
            self.files[_key(st)] = _File(durable=0, path=p)
            self._created(p)

    # -- the cut ------------------------------------------------------------------------------

    def plan(self) -> tuple[list[list[Any]], list[bytes]]:
        """What to do to the files so they hold only what is durable: first every file's
        bytes, at its current name; then the directory changes, newest first."""
        rng = random.Random(self.seed)
        blobs: list[bytes] = []
        actions: list[list[Any]] = []
        for key, f in self.files.items():
            if not f.path:
                continue
            try:
                st = os.stat(f.path)
            except FileNotFoundError:
                continue
            if _key(st) != key:
                continue  # the name now holds another file (its own record covers it)
            if f.saved is not None:
                blobs.append(f.saved)
                actions.append(["write", f.path, len(blobs) - 1])
            elif st.st_size > f.durable:
                keep = f.durable
                if self.tear:
                    keep += rng.randint(0, st.st_size - f.durable)
                actions.append(["truncate", f.path, keep])
                if self.tear and keep > f.durable and rng.random() < 0.5:
                    first, last = f.durable // PAGE, (keep - 1) // PAGE
                    page = rng.randint(first, last)
                    start = max(page * PAGE, f.durable)
                    actions.append(["zero", f.path, start, min(keep, (page + 1) * PAGE) - start])
        for op in reversed(self.pending):
            actions.extend(op.undo(blobs))
        return actions, blobs

    def cut(self) -> NoReturn:
        """Lose power now (see the module doc); never returns."""
        self.lock.acquire()  # never released: no tracked operation starts again
        actions, blobs = self.plan()
        where = tempfile.mkdtemp(prefix="keeldb-powercut-")
        for i, b in enumerate(blobs):
            with open(os.path.join(where, str(i)), "wb") as fh:
                fh.write(b)
        with open(os.path.join(where, PLAN), "w") as fh:
            json.dump(actions, fh)
        try:
            subprocess.Popen(
                [sys.executable, "-I", "-S", os.path.abspath(__file__), where, str(os.getpid())],
                stdin=subprocess.DEVNULL,
                close_fds=True,
            )
        except OSError:
            apply_plan(where)  # no helper: roll back in place (other threads may still run)
            os.kill(os.getpid(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGSTOP)
        time.sleep(60)  # the helper SIGKILLs this process; if it never does:
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")


def from_spec(value: str) -> Tracker:
    """``power-cut`` (value ""), ``power-cut=tear`` or ``power-cut=tear:SEED``."""
    mode, _, seed = value.partition(":")
    if mode not in ("", "tear"):
        raise ValueError(f"KEELDB_FAULTS: power-cut={value!r}: expected power-cut, power-cut=tear or power-cut=tear:SEED")
    return Tracker(tear=mode == "tear", seed=int(seed) if seed else None)


# -- the helper: applies a plan to a stopped process's files, then kills it ---------------------


def apply_plan(where: str) -> None:
    with open(os.path.join(where, PLAN)) as fh:
        actions = json.load(fh)
    for action in actions:
        kind, path, *args = action
        if kind == "truncate":
            os.truncate(path, args[0])
        elif kind == "zero":
            with open(path, "r+b") as fh:
                fh.seek(args[0])
                fh.write(bytes(args[1]))
        elif kind == "write":
            shutil.copyfile(os.path.join(where, str(args[0])), path)
        elif kind == "remove":
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            elif os.path.lexists(path):
                os.unlink(path)
        elif kind == "rmtree":
            shutil.rmtree(path, ignore_errors=True)
        elif kind == "rename":
            if os.path.lexists(path):
                os.replace(path, args[0])
        elif kind == "mkdir":
            os.makedirs(path, exist_ok=True)
        else:
            raise ValueError(f"unknown plan action {action!r}")


def _all_stopped(pid: int) -> bool:
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return True
    for t in tasks:
        try:
            with open(f"/proc/{pid}/task/{t}/stat") as fh:
                state = fh.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, IndexError):
            continue
        if state not in ("T", "t", "Z", "X"):
            return False
    return True


def _helper(where: str, pid: int) -> None:
    deadline = time.monotonic() + 10
    while not _all_stopped(pid) and time.monotonic() < deadline:
        time.sleep(0.002)
    try:
        apply_plan(where)
    finally:
        shutil.rmtree(where, ignore_errors=True)
        os.kill(pid, signal.SIGKILL)


if __name__ == "__main__":
    _helper(sys.argv[1], int(sys.argv[2]))
