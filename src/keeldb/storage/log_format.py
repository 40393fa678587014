"""The write-ahead log's record framing (specified byte by byte in docs/formats.md).

A log file is a sequence of records, nothing else:

    +----------+----------+------+----------+-----------------+
    | length   | crc32    | type | ts       | payload         |
    | u32 LE   | u32 LE   | u8   | u64 LE   | `length` bytes  |
    +----------+----------+------+----------+-----------------+

``crc32`` (zlib's CRC-32) covers length, type, ts and payload, so a torn write, a bit flip
in the header or in the body, and a length that points past the end of the file are all
detected the same way: the record does not verify, and the log ends there.
"""

from __future__ import annotations

import struct
import zlib
from enum import IntEnum

HEADER = struct.Struct("<IIBQ")  # length, crc, type, ts
HEADER_SIZE = HEADER.size  # 17
_CRC_PREFIX = struct.Struct("<I")
_CRC_BODY = struct.Struct("<BQ")
MAX_RECORD = 1 << 31  # a record larger than this is treated as corruption


class RecordType(IntEnum):
    INSERT = 1
    UPSERT = 2
    DELETE = 3


def record_crc(length: int, rtype: int, ts: int, payload: bytes | memoryview) -> int:
    crc = zlib.crc32(_CRC_PREFIX.pack(length))
    crc = zlib.crc32(_CRC_BODY.pack(rtype, ts), crc)
    return zlib.crc32(payload, crc)


def encode_record(rtype: int, ts: int, payload: bytes) -> bytes:
    length = len(payload)
    return HEADER.pack(length, record_crc(length, rtype, ts, payload), rtype, ts) + payload
