"""A checksummed container for small metadata files (manifest versions, catalog, oracle).

    +----------+----------+----------+------------------+
    | magic    | length   | crc32    | body (UTF-8 JSON)|
    | 8 bytes  | u32 LE   | u32 LE   | `length` bytes   |
    +----------+----------+----------+------------------+

JSON because these files are small, rarely written, and worth reading with ``cat`` during an
incident; the frame because a file that parses is not necessarily a file that was written
whole.
"""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path
from typing import Any

from keeldb.errors import CorruptionError

_HEAD = struct.Struct("<8sII")


def encode_framed(magic: bytes, body: dict[str, Any]) -> bytes:
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    return _HEAD.pack(magic, len(data), zlib.crc32(data)) + data


def decode_framed(magic: bytes, raw: bytes, what: str) -> dict[str, Any]:
    if len(raw) < _HEAD.size:
        raise CorruptionError(f"{what}: file too short ({len(raw)} bytes)")
    m, length, crc = _HEAD.unpack_from(raw)
    if m != magic:
        raise CorruptionError(f"{what}: bad magic {m!r}")
    data = raw[_HEAD.size :]
    if len(data) != length:
        raise CorruptionError(f"{what}: length {len(data)} != recorded {length}")
    if zlib.crc32(data) != crc:
        raise CorruptionError(f"{what}: checksum mismatch")
    return json.loads(data)


def read_framed(magic: bytes, path: Path) -> dict[str, Any]:
    return decode_framed(magic, path.read_bytes(), str(path))
