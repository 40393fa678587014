"""The manifest: the only authority on which persisted files make up a collection.

Each version is a whole description (not a delta): the segment files, the delete files and
the log checkpoint, i.e. the number of the first log whose records are NOT yet in any
segment. A flush adds its segment and moves the checkpoint in one version, so after a crash
every row is in exactly one of {a segment named by the manifest, a log at or after the
checkpoint} — never both, never neither (the Milvus double-count incident in reverse).

Versions are files ``MANIFEST-<version>``, each committed by write-temp / fsync / rename /
fsync-dir. Recovery picks the newest one that verifies. The two newest are retained, with
every file either of them needs, so that a newest version damaged on the medium can fall
back to its predecessor without losing an acknowledged write.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from keeldb.errors import CorruptionError
from keeldb.storage.crash import crash_point
from keeldb.storage.filenames import manifest_name, parse_manifest_name
from keeldb.storage.framed import encode_framed, read_framed
from keeldb.storage.fs import atomic_replace

MAGIC = b"KEELMAN1"
RETAINED = 2
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class FileEntry:
    """A segment file or a delete file, with what is needed to verify it on load."""

    id: int
    file: str
    rows: int
    bytes: int
    crc32: int
    max_ts: int = 0

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class IndexEntry:
    """An ANN index file over one segment's vector field. ``spec`` is the index definition
    it was built with (``IndexSpec.key``): a file built for another definition is ignored."""

    segment: int
    field: str
    spec: str
    file: str
    bytes: int
    crc32: int

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class ManifestEdit:
    """What one commit changes (LevelDB's ``VersionEdit``): files added and dropped, and
    the new log checkpoint if it moves. A flush adds a segment and a delete file and moves
    the checkpoint; a compaction drops its inputs and adds its outputs; an index build adds
    one index entry. ``Manifest.apply`` turns an edit into the next version."""

    add_segments: tuple[FileEntry, ...] = ()
    drop_segments: frozenset[int] = frozenset()
    add_deletes: tuple[FileEntry, ...] = ()
    drop_deletes: frozenset[int] = frozenset()
    add_indexes: tuple[IndexEntry, ...] = ()
    log_checkpoint: int | None = None  # None: unchanged


@dataclass(frozen=True)
class Manifest:
    version: int = 0
    log_checkpoint: int = 0  # first log number whose records are not in any segment
    next_id: int = 1  # next segment / delete-file id
    segments: tuple[FileEntry, ...] = ()
    deletes: tuple[FileEntry, ...] = ()
    indexes: tuple[IndexEntry, ...] = ()
    extra: dict[str, Any] = field(default_factory=dict)  # room for later versions

    def files(self) -> set[str]:
        return {e.file for e in self.segments} | {e.file for e in self.deletes} | {e.file for e in self.indexes}

    def apply(self, edit: ManifestEdit, *, version: int, next_id: int) -> Manifest:
        """The version after ``edit`` (LevelDB's ``VersionSet::Builder``): a pure function,
        so what a commit writes can be checked without files or threads.

        Dropped entries go first, added ones are appended (the order a listing shows). An
        index entry lives only as long as its segment: entries for segments the new
        version no longer names are dropped with them (a compaction's inputs), and an added
        entry replaces the one for the same (segment, field) (a rebuilt index)."""
        segments = tuple(e for e in self.segments if e.id not in edit.drop_segments) + edit.add_segments
        deletes = tuple(e for e in self.deletes if e.id not in edit.drop_deletes) + edit.add_deletes
        live = {e.id for e in segments}
        replaced = {(e.segment, e.field) for e in edit.add_indexes}
        indexes = tuple(
            e for e in self.indexes if e.segment in live and (e.segment, e.field) not in replaced
        ) + edit.add_indexes
        return replace(
            self,
            version=version,
            log_checkpoint=self.log_checkpoint if edit.log_checkpoint is None else edit.log_checkpoint,
            next_id=next_id,
            segments=segments,
            deletes=deletes,
            indexes=indexes,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "log_checkpoint": self.log_checkpoint,
            "next_id": self.next_id,
            "segments": [e.to_dict() for e in self.segments],
            "deletes": [e.to_dict() for e in self.deletes],
            "indexes": [e.to_dict() for e in self.indexes],
            "extra": self.extra,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Manifest:
        return cls(
            version=d["version"],
            log_checkpoint=d["log_checkpoint"],
            next_id=d["next_id"],
            segments=tuple(FileEntry(**e) for e in d["segments"]),
            deletes=tuple(FileEntry(**e) for e in d["deletes"]),
            indexes=tuple(IndexEntry(**e) for e in d.get("indexes", ())),
            extra=d.get("extra", {}),
        )


def manifest_path(directory: Path, version: int) -> Path:
    return directory / manifest_name(version)


def list_versions(directory: Path) -> list[int]:
    return sorted(v for v in map(parse_manifest_name, os.listdir(directory)) if v is not None)


class ManifestStore:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.skipped: list[str] = []  # newer versions that failed to verify (reported)

    def load(self) -> tuple[Manifest, list[Manifest]]:
        """Return (newest valid version, all retained valid versions newest first)."""
        valid: list[Manifest] = []
        for v in reversed(list_versions(self.directory)):
            path = manifest_path(self.directory, v)
            try:
                m = Manifest.from_dict(read_framed(MAGIC, path))
            except (CorruptionError, ValueError, KeyError, TypeError) as e:
                if not valid:
                    self.skipped.append(f"{path.name}: {e}")
                    log.error("manifest %s does not verify (%s); falling back", path, e)
                continue
            valid.append(m)
        if not valid:
            if self.skipped:
                raise CorruptionError(
                    f"no manifest in {self.directory} verifies: {'; '.join(self.skipped)}"
                )
            return Manifest(), []
        return valid[0], valid[:RETAINED]

    def commit(self, m: Manifest) -> None:
        """Make version ``m`` durable and current, atomically.

        After this returns, recovery will choose ``m`` (or a later version). If the process
        dies inside, recovery chooses either ``m`` or its predecessor, both complete.
        """
        atomic_replace(
            manifest_path(self.directory, m.version),
            encode_framed(MAGIC, m.to_dict()),
            before_rename=lambda: crash_point("manifest.before_rename"),
            after_rename=lambda: crash_point("manifest.after_rename"),
        )
