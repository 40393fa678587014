"""Named crash points: the places where a `kill -9` is most interesting.

Every step of a commit that makes data durable, visible or invisible calls ``crash_point``
with a name from ``CRASH_POINTS``. In production this is one dictionary lookup. When the
environment variable ``KEELDB_CRASH_AT`` names a point (optionally ``name:N`` to die on the
N-th hit, counting from 1; ``name@thread:N`` to count only the hits on the thread named
``thread``), the process sends itself SIGKILL there: no ``finally`` blocks, no buffered
writes flushed. A count over every thread says which commit it lands on only as long as the
background threads (index builds, compactions) interleave with the foreground the same way,
which a loaded machine changes; counted on one thread, the N-th hit is the same step of the
same job in every run (a thread's commits are sequential). The kernel's page cache survives a SIGKILL, though; with
``KEELDB_FAULTS=power-cut`` the point cuts the power instead (``storage/powercut.py``):
everything not yet fsynced is lost too.

The crash-matrix test (``tests/test_crash_matrix.py``) iterates over ``CRASH_POINTS``, so a
point added here is tested automatically, and a point used in the code but missing here
fails loudly (``crash_point`` rejects unknown names).
"""

from __future__ import annotations

import os
import signal
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from keeldb.storage.powercut import Tracker

CRASH_POINTS: dict[str, str] = {
    # write-ahead log (storage/log_writer.py)
    "wal.before_append": "a write has its timestamp but nothing of it is in the log yet",
    "wal.after_append": "the record is in the OS page cache but not fsynced",
    "wal.before_fsync": "group commit is about to fsync the log",
    "wal.after_fsync": "the record is durable but the caller has not been acknowledged",
    # flush (engine/collection.py)
    "flush.after_rotate": "the growing segment is frozen and new writes go to the next log",
    "flush.after_segment_write": "segment files written, not yet fsynced",
    "flush.after_segment_fsync": "segment files durable, the manifest does not name them yet",
    # manifest commit (storage/manifest.py, through engine/versions.py's log_and_apply)
    "manifest.before_rename": "the new manifest is fsynced under its temporary name",
    "manifest.after_rename": "the new manifest is in place; the directory is not yet fsynced",
    # compaction (engine/compaction.py)
    "compaction.after_write": "the merged segment is written and fsynced, no manifest names it",
    "compaction.after_commit": "the manifest swapped inputs for output; memory not yet swapped",
    # index build (engine/index_builder.py)
    "index.after_write": "a segment's index file is written and fsynced, no manifest names it",
    "index.after_commit": "the manifest names the index; the segment in memory does not use it yet",
    # garbage collection (storage/gc.py)
    "gc.during": "garbage collection has deleted some, not all, obsolete files",
    # recovery (engine/recovery.py)
    "recovery.during_replay": "recovery has replayed part of the log tail",
    # schema change (engine/collection.py's change_schema: one catalog commit)
    "schema.before_commit": "a schema change is validated; its catalog commit has not started",
    "schema.after_commit": "the catalog names the new schema; memory still reads with the old one",
    # catalog (storage/catalog.py)
    "catalog.before_rename": "a catalog change is fsynced under its temporary name",
    "catalog.after_rename": "a catalog change is in place; the directory is not yet fsynced",
}

_ENV = "KEELDB_CRASH_AT"
_FAULTS_ENV = "KEELDB_FAULTS"
_lock = threading.Lock()
_hits: dict[str, int] = {}


def _target() -> tuple[str, str, int] | None:
    """(point, thread name or "" for any thread, hit number) of ``KEELDB_CRASH_AT``."""
    spec = os.environ.get(_ENV)
    if not spec:
        return None
    name, _, nth = spec.partition(":")
    name, _, thread = name.partition("@")
    return name, thread, int(nth) if nth else 1


def crash_point(name: str) -> None:
    """Die here (SIGKILL, or a power cut when armed) if ``KEELDB_CRASH_AT`` names this point
    and its hit count is due."""
    if name not in CRASH_POINTS:
        raise AssertionError(f"unknown crash point {name!r}: add it to CRASH_POINTS")
    target = _target()
    if target is None or target[0] != name:
        return
    if target[1] and threading.current_thread().name != target[1]:
        return
    with _lock:
        _hits[name] = _hits.get(name, 0) + 1
        due = _hits[name] >= target[2]
    if due:
        tracker = power_tracker()
        if tracker is not None:
            tracker.cut()
        os.kill(os.getpid(), signal.SIGKILL)


# -- I/O faults that are not crashes ------------------------------------------------------
#
# ``KEELDB_FAULTS`` is a comma-separated list, read once per process:
#   disk-full       every segment-file write raises ENOSPC, so flushes fail (the log is
#                   untouched: writes keep working until a flush is attempted)
#   slow-fsync=MS   every fsync sleeps MS milliseconds first
#   power-cut       file operations are tracked (storage/powercut.py), and an armed crash
#                   point or SIGUSR1 loses everything not yet fsynced (power-cut=tear: keeps a
#                   random part of it; power-cut=tear:SEED, reproducibly)
# The chaos command arms these in the server it starts; tests arm them directly.

_faults: dict[str, str] | None = None


def _armed() -> dict[str, str]:
    global _faults
    if _faults is None:
        spec = os.environ.get(_FAULTS_ENV, "")
        _faults = {}
        for item in filter(None, (x.strip() for x in spec.split(","))):
            name, _, value = item.partition("=")
            _faults[name] = value
    return _faults


def before_fsync() -> None:
    ms = _armed().get("slow-fsync")
    if ms:
        import time

        time.sleep(int(ms) / 1000)


def before_segment_write() -> None:
    if "disk-full" in _armed():
        import errno

        raise OSError(errno.ENOSPC, "No space left on device (injected: KEELDB_FAULTS=disk-full)")


_power: Any = None  # the power-cut tracker, once made
_power_made = False


def power_tracker() -> Tracker | None:
    """The power-cut tracker when ``KEELDB_FAULTS`` arms ``power-cut``, else None. Made once
    per process; made in the main thread it also takes SIGUSR1 as "cut the power now"."""
    global _power, _power_made
    with _lock:
        if not _power_made:
            _power_made = True
            spec = _armed().get("power-cut")
            if spec is not None:
                from keeldb.storage.powercut import from_spec

                _power = from_spec(spec)
                if threading.current_thread() is threading.main_thread():
                    signal.signal(signal.SIGUSR1, lambda *_: _power.cut())
    return _power
