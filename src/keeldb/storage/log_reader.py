"""Reads a log file back, record by record, stopping at the first record that fails to verify.

What is after a bad record cannot be trusted to be a record boundary, so the reader does
not try to resynchronise; it reports where the good prefix ends and how many bytes follow
it, and the caller (recovery) decides: a torn tail of the newest log is cut, anything
earlier is corruption.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from keeldb.storage.fs import open_for_write, sync_fd, truncate
from keeldb.storage.log_format import HEADER, HEADER_SIZE, MAX_RECORD, record_crc


@dataclass(frozen=True)
class Record:
    rtype: int
    ts: int
    payload: memoryview
    offset: int  # where the record starts
    end: int  # where the next one starts


@dataclass
class ReadResult:
    records: list[Record]
    good_bytes: int  # length of the verified prefix
    file_bytes: int
    reason: str = ""  # why reading stopped early, "" if the file ended cleanly

    @property
    def dropped_bytes(self) -> int:
        return self.file_bytes - self.good_bytes


def iter_records(data: memoryview) -> Iterator[Record | str]:
    """Yield verified records, then (if the data does not end cleanly) one reason string."""
    pos = 0
    size = len(data)
    while pos < size:
        if size - pos < HEADER_SIZE:
            yield f"truncated header at offset {pos} ({size - pos} of {HEADER_SIZE} bytes)"
            return
        length, crc, rtype, ts = HEADER.unpack_from(data, pos)
        if length > MAX_RECORD:
            yield f"implausible length {length} at offset {pos}"
            return
        body_start = pos + HEADER_SIZE
        end = body_start + length
        if end > size:
            yield f"truncated record at offset {pos} ({size - body_start} of {length} payload bytes)"
            return
        payload = data[body_start:end]
        if record_crc(length, rtype, ts, payload) != crc:
            yield f"checksum mismatch in record at offset {pos}"
            return
        yield Record(rtype, ts, payload, pos, end)
        pos = end


def read_log(path: Path) -> ReadResult:
    with open(path, "rb") as f:
        data = memoryview(f.read())
    records: list[Record] = []
    reason = ""
    good = 0
    for item in iter_records(data):
        if isinstance(item, str):
            reason = item
            break
        records.append(item)
        good = item.end
    return ReadResult(records, good, len(data), reason)


def truncate_log(path: Path, size: int) -> None:
    """Cut a torn tail off so the next recovery does not meet it again, and make it stick."""
    fd = open_for_write(path, os.O_WRONLY)
    try:
        truncate(fd, size)
        sync_fd(fd)
    finally:
        os.close(fd)
