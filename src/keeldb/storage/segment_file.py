"""Immutable segment files and delete files, as Arrow IPC files.

Arrow's IPC file format is a documented, language-neutral columnar layout that can be
memory-mapped and read without copying, which is what a segment wants: vectors go straight
from the page cache into numpy. What Arrow does not provide is an end-to-end checksum, so
the manifest records each file's size and CRC-32 and ``read_table`` verifies both.

Segment file columns: ``$ts`` (int64, the version's timestamp) followed by the collection's
fields in schema order (the primary key among them) and ``$meta`` for the dynamic field.
Delete file columns: ``pk`` and ``$ts`` — one row per delete, upserts' delete halves
included.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import pyarrow as pa

from keeldb.errors import CorruptionError
from keeldb.storage.crash import before_segment_write
from keeldb.storage.fs import file_crc32, write_durable

TS_COLUMN = "$ts"


def write_table(path: Path, table: pa.Table) -> tuple[int, int]:
    """Write and fsync ``table``; return (size, crc32). The caller fsyncs the directory."""
    before_segment_write()
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table.combine_chunks())
    buf = sink.getvalue()
    write_durable(path, memoryview(buf))
    return buf.size, zlib.crc32(memoryview(buf))


def read_table(path: Path, size: int, crc32: int) -> pa.Table:
    """Memory-map ``path``, verify it against the manifest's record, return its table."""
    verify_file(path, size, crc32)
    return map_table(path)


def map_table(path: Path) -> pa.Table:
    """Memory-map a file this process has just written (and so need not verify): columns
    are served from the page cache, not the heap."""
    return pa.ipc.open_file(pa.memory_map(str(path), "r")).read_all()


def verify_file(path: Path, size: int, crc32: int) -> None:
    """Check a file against the size and CRC-32 the manifest recorded for it."""
    try:
        got_size, got_crc = file_crc32(path)
    except OSError as e:
        raise CorruptionError(f"{path}: named by the manifest but cannot be opened: {e}") from e
    if got_size != size:
        raise CorruptionError(f"{path}: size {got_size} != manifest's {size}")
    if got_crc != crc32:
        raise CorruptionError(f"{path}: checksum mismatch")
