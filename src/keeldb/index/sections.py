"""keeldb's own index file layout, shared by the sparse index (``idx-<id>.sparse``) and the
text-match index (``idx-<id>.text``): an 8-byte magic, a checksummed JSON header naming
typed arrays, then the arrays at 64-byte-aligned offsets, so that a reader memory-maps the
file and views each array in place, without a copy (docs/formats.md, "Sparse index file"
and "Text-match index file", give the bytes).

Why not numpy's ``.npz``: a zip archive cannot be memory-mapped. Why not Arrow IPC: the
arrays are plain fixed-width vectors of different lengths, which a table does not hold.
"""

from __future__ import annotations

import json
import os
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keeldb.errors import CorruptionError
from keeldb.storage.crash import before_segment_write
from keeldb.storage.fs import file_crc32, open_for_write, sync_fd, write_all

ALIGN = 64
MMAP = os.environ.get("KEELDB_INDEX_MMAP", "1") != "0"


def write(path: Path, magic: bytes, header: Mapping[str, Any], layout: Sequence[tuple[str, str]],
          arrays: Mapping[str, np.ndarray]) -> tuple[int, int]:  # fmt: skip
    """Write and fsync ``arrays`` (name -> array, stored in ``layout``'s order and numpy
    dtypes) under ``magic`` and ``header`` (which gains ``sections``); return (size, crc32).
    The caller fsyncs the directory (``NewFiles.publish``)."""
    before_segment_write()
    data = {name: np.ascontiguousarray(arrays[name], dtype=dt) for name, dt in layout}
    sections = [{"name": name, "dtype": dt, "count": len(data[name]), "offset": 10**15} for name, dt in layout]
    head_obj = {**header, "sections": sections}
    # The sections' offsets depend on the header's length and the length on the offsets:
    # measure the header with placeholder offsets wider than any real one, then pad the
    # real header to that length with spaces (which JSON ignores).
    head_len = len(_json(head_obj))
    offset = _align(16 + head_len)
    for sec in sections:
        sec["offset"] = offset
        offset = _align(offset + sec["count"] * np.dtype(sec["dtype"]).itemsize)
    blob = _json(head_obj)
    blob += b" " * (head_len - len(blob))
    head = magic + len(blob).to_bytes(4, "little") + zlib.crc32(blob).to_bytes(4, "little") + blob
    fd = open_for_write(path)  # storage/fs: the power-cut tracker sees every byte
    try:
        write_all(fd, head)
        pos = len(head)
        for sec in sections:
            raw = memoryview(data[sec["name"]]).cast("B")
            write_all(fd, b"\0" * (int(sec["offset"]) - pos))
            write_all(fd, raw)
            pos = int(sec["offset"]) + len(raw)
        sync_fd(fd)
    finally:
        os.close(fd)
    return file_crc32(path)


def read(
    path: Path, magic: bytes, version: int, what: str, *, mmap: bool | None = None
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """(header, name -> array) of a file ``write`` wrote, the arrays viewing a memory map of
    it, or read into memory: as ``mmap`` says (an index's ``mmap.enabled``), else as
    KEELDB_INDEX_MMAP says (default: mapped). Refused as corrupt: a wrong magic, header
    checksum or version, a section past the end. The caller has verified the file's size
    and CRC against the manifest."""
    mapped = MMAP if mmap is None else mmap
    raw: Any = np.memmap(path, dtype=np.uint8, mode="r") if mapped else np.fromfile(path, dtype=np.uint8)
    if bytes(raw[:8]) != magic:
        raise CorruptionError(f"{path}: not a keeldb {what} (magic {bytes(raw[:8])!r})")
    n = int.from_bytes(bytes(raw[8:12]), "little")
    blob = bytes(raw[16 : 16 + n])
    if zlib.crc32(blob) != int.from_bytes(bytes(raw[12:16]), "little"):
        raise CorruptionError(f"{path}: {what} header checksum mismatch")
    header = json.loads(blob)
    if header.get("version") != version:
        raise CorruptionError(f"{path}: {what} version {header.get('version')} is not {version}")
    arrays = {}
    for sec in header["sections"]:
        dt = np.dtype(sec["dtype"])
        start, count = int(sec["offset"]), int(sec["count"])
        if start + count * dt.itemsize > len(raw):
            raise CorruptionError(f"{path}: section {sec['name']} runs past the end of the file")
        arrays[sec["name"]] = raw[start : start + count * dt.itemsize].view(dt)
    return header, arrays


def _json(obj: Any) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN
