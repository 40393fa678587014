"""Where one collection's durable state lives: the engine's storage interface.

A collection needs four things from durable storage, and nothing else:

- **the manifest**: load the newest committed version, commit the next one atomically;
- **files**: segment, delete and index files are written into a local working directory
  first, then *published* (made durable where they live) before a manifest names them, and
  a committed file can be asked for by name (``local``), wherever it lives;
- **the log**: a writer for log number *n* (append, group-commit ``sync``, ``end``), and a
  replay of every record after a checkpoint;
- **garbage collection** of what no retained manifest needs.

``LocalStore`` (this module) keeps everything in one directory: the embedded engine, whose
crash-safety argument is docs/crash-safety.md. ``keeldb.cluster.store.ClusterStore`` keeps
the manifest in etcd and files and log in object storage (docs/cluster.md). The engine
(``keeldb.engine.collection``) is the same code over either.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from keeldb.errors import CorruptionError
from keeldb.storage.filenames import data_file_name, log_name, parse_log_name
from keeldb.storage.fs import fsync_dir, makedirs_durable
from keeldb.storage.gc import collect_garbage
from keeldb.storage.log_reader import Record, read_log, truncate_log
from keeldb.storage.log_writer import LogWriter
from keeldb.storage.manifest import Manifest, ManifestStore, list_versions

log = logging.getLogger(__name__)


class Log(Protocol):
    """A log being written: ``append`` is cheap, ``sync`` is group commit, ``end`` says no
    record will follow (the flush that rotated it away calls it after the last sync)."""

    number: int
    _error: Exception | None

    @property
    def synced(self) -> int: ...

    def append(self, rtype: int, ts: int, payload: bytes) -> int: ...

    def sync(self, upto: int | None = None) -> None: ...

    def end(self) -> None: ...

    def close(self) -> None: ...


@dataclass
class Replay:
    """What a replay found, for the recovery report."""

    logs: list[str] = field(default_factory=list)
    records: int = 0
    torn_tail: str = ""
    bytes_dropped: int = 0
    next_log: int = 1  # the number the collection's next log gets


class CollectionStore(Protocol):
    dir: Path  # the local working directory: files are written here before ``publish``
    skipped: list[str]  # manifest versions that did not verify (for the report)

    def load(self) -> tuple[Manifest, list[Manifest]]: ...

    def commit(self, manifest: Manifest) -> None: ...

    def next_version(self, current: Manifest) -> int: ...

    def file_name(self, kind: str, fid: int, ext: str) -> str: ...

    def publish(self, names: Iterable[str]) -> None: ...

    def local(self, name: str) -> Path: ...

    def open_log(self, number: int) -> Log: ...

    def replay(self, checkpoint: int, apply: Callable[[Record], None], out: Replay) -> None: ...

    def collect_garbage(
        self, retained: list[Manifest], active_log: int, in_progress: Collection[str], *, at_open: bool = False
    ) -> list[str]: ...


class LocalStore:
    """Everything in one directory: ``MANIFEST-*``, ``seg-*``/``del-*``/``idx-*`` files and
    ``wal/*.log``. Durability is fsync; atomicity is rename."""

    def __init__(self, directory: Path) -> None:
        self.dir = directory
        self.wal_dir = directory / "wal"
        makedirs_durable(self.wal_dir)
        self._manifests = ManifestStore(directory)
        self.skipped = self._manifests.skipped

    def load(self) -> tuple[Manifest, list[Manifest]]:
        return self._manifests.load()

    def commit(self, manifest: Manifest) -> None:
        self._manifests.commit(manifest)

    def next_version(self, current: Manifest) -> int:
        # Past any version on disk, even one that failed to verify: never reuse its name.
        return max([current.version, *list_versions(self.dir)]) + 1

    def file_name(self, kind: str, fid: int, ext: str) -> str:
        return data_file_name(kind, fid, ext)

    def publish(self, names: Iterable[str]) -> None:
        # write_table / VectorIndex.save fsynced each file; its directory entry needs one too.
        fsync_dir(self.dir)

    def local(self, name: str) -> Path:
        return self.dir / name

    def open_log(self, number: int) -> LogWriter:
        w = LogWriter(self.wal_dir, number)
        fsync_dir(self.wal_dir)  # the new log's name must survive a crash before its first sync
        return w

    def replay(self, checkpoint: int, apply: Callable[[Record], None], out: Replay) -> None:
        """Every record of every log at or after ``checkpoint``, in order. A torn tail is cut
        off only from the last log that holds records: damage followed by later records is
        not a crash's torn write but corruption, and skipping it would lose acknowledged
        writes."""
        numbers = sorted(n for n in map(parse_log_name, os.listdir(self.wal_dir)) if n is not None)
        tail = [n for n in numbers if n >= checkpoint]
        for i, number in enumerate(tail):
            path = self.wal_dir / log_name(number)
            result = read_log(path)
            if result.reason:
                if i != len(tail) - 1 and any(
                    (self.wal_dir / log_name(m)).stat().st_size for m in tail[i + 1 :]
                ):
                    raise CorruptionError(
                        f"{path}: {result.reason}, and later logs hold records: refusing to "
                        "skip acknowledged writes"
                    )
                out.torn_tail = f"{path.name}: {result.reason}"
                out.bytes_dropped += result.dropped_bytes
                log.warning("recovery cut %d bytes off %s: %s", result.dropped_bytes, path, result.reason)
                truncate_log(path, result.good_bytes)
            for rec in result.records:
                apply(rec)
                out.records += 1
            out.logs.append(path.name)
        out.next_log = max([checkpoint, *numbers]) + 1 if (numbers or checkpoint) else 1

    def collect_garbage(
        self, retained: list[Manifest], active_log: int, in_progress: Collection[str], *, at_open: bool = False
    ) -> list[str]:
        return collect_garbage(self.dir, self.wal_dir, retained, active_log, in_progress, at_open=at_open)
