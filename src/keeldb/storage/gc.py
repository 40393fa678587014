"""Garbage collection: delete files that no retained manifest version needs.

Run only after a manifest commit is durable (and at open, after recovery chose its
version), never before: deleting first and committing second is how a crash loses the
only copy of a row. What is kept:
- every segment and delete file named by a retained manifest version;
- every log numbered at or after the smallest checkpoint among retained versions
  (the older version's replay needs them if the newest one were ever unreadable);
- the current log and anything newer (writes in flight).
Everything else in the collection's directory that looks like ours is removed, including
``.tmp`` leftovers of interrupted renames.
"""

from __future__ import annotations

import os
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from pathlib import Path

from keeldb.storage.crash import crash_point
from keeldb.storage.filenames import is_data_file, is_tmp, parse_log_name
from keeldb.storage.fs import fsync_dir, unlink
from keeldb.storage.manifest import Manifest, list_versions, manifest_path


@dataclass(frozen=True)
class KeepSet:
    """What the retained manifest versions need: their files, and every log from the oldest
    checkpoint among them on. One definition for the local GC and the object-store GC
    (``cluster/store.py``), so the two can never disagree on what is garbage."""

    files: frozenset[str]
    logs_from: int
    versions: frozenset[int]

    @classmethod
    def of(cls, retained: Iterable[Manifest]) -> KeepSet:
        retained = list(retained)
        return cls(
            files=frozenset().union(*(m.files() for m in retained)),
            logs_from=min((m.log_checkpoint for m in retained), default=0),
            versions=frozenset(m.version for m in retained),
        )

    def keeps_log(self, number: int, active_log: int) -> bool:
        """The current log and anything newer hold writes in flight; older ones are kept
        while a retained version's replay starts at or before them."""
        return number >= self.logs_from or number >= active_log


def collect_garbage(
    directory: Path,
    wal_dir: Path,
    retained: Iterable[Manifest],
    active_log: int,
    in_progress: Collection[str] = (),
    *,
    at_open: bool = False,
) -> list[str]:
    """``in_progress``: files a flush, compaction or index build is writing and has not
    committed yet; no manifest names them, but they are not garbage.

    ``.tmp`` files are removed only ``at_open``: while the collection runs, a ``.tmp`` is a
    manifest commit in flight on another thread (GC runs outside the lock that serialises
    commits), and unlinking it between its fsync and its rename failed that commit. Only a
    crash leaves a ``.tmp`` behind, and a crash is always followed by an open."""
    keep = KeepSet.of(retained)
    doomed: list[Path] = []
    for name in os.listdir(directory):
        p = directory / name
        if is_tmp(name):
            if at_open:
                doomed.append(p)
        elif is_data_file(name) and name not in keep.files and name not in in_progress:
            doomed.append(p)
    for v in list_versions(directory):
        if keep.versions and v not in keep.versions and v < max(keep.versions):
            doomed.append(manifest_path(directory, v))
    for name in os.listdir(wal_dir):
        n = parse_log_name(name)
        if n is not None and not keep.keeps_log(n, active_log):
            doomed.append(wal_dir / name)
    removed = []
    for i, p in enumerate(sorted(doomed)):
        try:
            unlink(p)
        except FileNotFoundError:
            continue
        removed.append(p.name)
        if i == 0:
            crash_point("gc.during")
    if removed:
        fsync_dir(directory)
        fsync_dir(wal_dir)
    return removed
