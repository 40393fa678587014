"""TIMESTAMPTZ: an instant, given as ISO 8601 text, stored as microseconds since the Unix
epoch in UTC (an Arrow ``timestamp[us, tz=UTC]`` column), returned as RFC 3339 text in the
reader's time zone.

The accepted spellings are Milvus 2.6's (``pkg/util/timestamptz``: Go layouts), not
Python's ``fromisoformat``, which also takes date-only and basic-format strings Milvus
refuses:

- with an offset: ``2025-05-01T23:59:59+08:00``, ``...Z``, fractions up to nanoseconds
  (kept to the microsecond); with a space instead of ``T`` also ``+08`` and ``Z``;
- without one ("naive"): ``2025-05-01T23:59:59`` or ``2025-05-01 23:59:59[.fff]``, read in
  the collection's ``timezone`` property (default UTC), or the call's ``timezone``.

Offsets must lie in [-12:00, +14:00]. Output is Go's ``RFC3339Nano`` of the instant in the
requested zone: ``2024-12-31T16:00:00Z`` in UTC, ``2025-01-01T00:00:00+08:00`` in
Asia/Shanghai, trailing zeros of the fraction dropped. Time zone names are IANA names
(``zoneinfo``: the system's database, or the ``tzdata`` package where there is none).
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pyarrow as pa

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.base import FieldKind

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema

DEFAULT_TIMEZONE = "UTC"
ARROW_TYPE = pa.timestamp("us", tz="UTC")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MAX_OFFSET_S = 14 * 3600
MIN_OFFSET_S = -12 * 3600

# Go layouts of ParseTimeTz, as one regex: date, T or space, time, optional fraction, and
# an offset (required form depends on the separator: see _parse).
_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})([T ])(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:\d{2}|[+-]\d{2})?$"
)

# The collection's (or the call's) zone for naive strings; set around a batch's conversion
# by the write path, and by readers that format values.
_zone: contextvars.ContextVar[str] = contextvars.ContextVar("keeldb_timezone", default=DEFAULT_TIMEZONE)


class default_timezone:  # noqa: N801 - used as a function: ``with default_timezone(tz):``
    """The zone naive values are read in, for the ``with`` block. A class rather than a
    ``contextlib`` generator: every search enters one, and the generator's machinery cost
    a tenth of a 1-query search's own time."""

    __slots__ = ("_name", "_token")

    def __init__(self, name: str | None) -> None:
        self._name = name or DEFAULT_TIMEZONE

    def __enter__(self) -> None:
        self._token = _zone.set(self._name)

    def __exit__(self, *exc: object) -> None:
        _zone.reset(self._token)


@lru_cache(maxsize=256)
def zone(name: str) -> ZoneInfo:
    """An IANA time zone, or InvalidArgument with Milvus's message."""
    if not isinstance(name, str) or not name or name.startswith(("/", ".")) or ".." in name:
        raise InvalidArgument(f"unknown or invalid IANA Time Zone ID: {name}")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise InvalidArgument(f"unknown or invalid IANA Time Zone ID: {name}") from None


def check_timezone(name: Any) -> str:
    zone(name)
    return name


def parse(text: Any, tz_name: str | None = None) -> int:
    """Microseconds since the epoch (UTC) of an ISO 8601 string, as Milvus parses it."""
    if isinstance(text, datetime):
        dt = text if text.tzinfo is not None else text.replace(tzinfo=zone(tz_name or _zone.get()))
        return _micros(dt)
    if not isinstance(text, str):
        raise InvalidArgument(f"TIMESTAMPTZ value must be an ISO 8601 string, got {type(text).__name__}")
    m = _ISO.match(text)
    if m is None:
        raise InvalidArgument(f"invalid timestamp string: '{text}'. Does not match any known format")
    y, mo, d, sep, h, mi, s, frac, off = m.groups()
    # Go's layouts: with 'T' the offset is Z or +hh:mm (RFC 3339); with a space also +hh.
    if off is not None and sep == "T" and len(off) == 3:
        raise InvalidArgument(f"invalid timestamp string: '{text}'. Does not match any known format")
    micro = int((frac or "0").ljust(9, "0")[:6])
    try:
        naive = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), micro)
    except ValueError:
        raise InvalidArgument(f"invalid timestamp string: '{text}'. Does not match any known format") from None
    if off is None:
        return _micros(naive.replace(tzinfo=zone(tz_name or _zone.get())))
    if off == "Z":
        return _micros(naive.replace(tzinfo=UTC))
    sign = -1 if off[0] == "-" else 1
    hh, mm = int(off[1:3]), int(off[4:6]) if len(off) > 3 else 0
    seconds = sign * (hh * 3600 + mm * 60)
    if not MIN_OFFSET_S <= seconds <= MAX_OFFSET_S:
        raise InvalidArgument(f"UTC offset hour {sign * hh} is out of the valid range [-12, 14]")
    return _micros(naive.replace(tzinfo=timezone(timedelta(seconds=seconds))))


def _micros(dt: datetime) -> int:
    delta = dt - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_micros(values: Sequence[int | None], tz_name: str | None = None) -> list[str | None]:
    """RFC3339Nano text of each instant in ``tz_name`` (default: the current zone)."""
    name = tz_name or _zone.get()
    if name == "UTC":
        return _format_utc(values)
    tz = zone(name)
    out: list[str | None] = []
    for v in values:
        if v is None:
            out.append(None)
            continue
        local = (_EPOCH + timedelta(microseconds=int(v))).astimezone(tz)
        off = local.utcoffset() or timedelta(0)
        body = _trim(local.strftime("%Y-%m-%dT%H:%M:%S"), local.microsecond)
        total = int(off.total_seconds())
        if total == 0:  # Go's "Z07:00" writes Z for a zero offset, whatever the zone
            out.append(body + "Z")
        else:
            sign = "-" if total < 0 else "+"
            total = abs(total)
            out.append(f"{body}{sign}{total // 3600:02d}:{total % 3600 // 60:02d}")
    return out


def _format_utc(values: Sequence[int | None]) -> list[str | None]:
    present = [i for i, v in enumerate(values) if v is not None]
    out: list[str | None] = [None] * len(values)
    if not present:
        return out
    arr = np.array([values[i] for i in present], dtype=np.int64).astype("datetime64[us]")
    texts = np.datetime_as_string(arr, unit="us")  # 2024-12-31T16:00:00.000000
    for i, t in zip(present, texts.tolist(), strict=True):
        body, _, frac = t.partition(".")
        frac = frac.rstrip("0")
        out[i] = f"{body}.{frac}Z" if frac else body + "Z"
    return out


def _trim(body: str, micro: int) -> str:
    if not micro:
        return body
    return f"{body}.{micro:06d}".rstrip("0")


def micros_of(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    """A TIMESTAMPTZ column as int64 microseconds (a zero-copy cast)."""
    return col.cast(pa.int64())


class Timestamptz(FieldKind):
    dtypes = (DataType.TIMESTAMPTZ,)

    def arrow_type(self, f: FieldSchema) -> pa.DataType:
        return ARROW_TYPE

    def check_value(self, f: FieldSchema, value: Any) -> Any:
        """A default: kept as given (re-read in the collection's zone when it is used);
        refused here if it does not parse."""
        if not isinstance(value, str):
            raise InvalidArgument(f"field {f.name!r}: a TIMESTAMPTZ default must be an ISO 8601 string")
        parse(value)
        return value

    def column(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> pa.Array:
        tz_name = _zone.get()
        cache: dict[Any, int] = {}
        out: list[int | None] = []
        for i, v in enumerate(values):
            if v is None:
                out.append(None)
                continue
            hit = cache.get(v) if isinstance(v, str) else None
            if hit is None:
                try:
                    hit = parse(v, tz_name)
                except InvalidArgument as e:
                    raise InvalidArgument(f"row {i}: field {f.name!r}: {e.message}") from None
                if isinstance(v, str):
                    cache[v] = hit
            out.append(hit)
        return pa.array(out, type=pa.int64()).cast(ARROW_TYPE)

    def output(self, f: FieldSchema, values: list[Any]) -> list[Any]:
        micros = [None if v is None else _as_micros(v) for v in values]
        return format_micros(micros)


def _as_micros(v: Any) -> int:
    if isinstance(v, datetime):
        return _micros(v if v.tzinfo is not None else v.replace(tzinfo=UTC))
    return int(v)
