"""JSON fields (and the dynamic field's per-row object): compact JSON text in a string
column, parsed again when read or filtered."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.base import FieldKind

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema

_NO_KEY: Any = object()


def _json_default(o: Any) -> Any:
    # pymilvus converts numpy scalars and arrays inside JSON values; so do we.
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def json_text(name: str, value: Any, row: int, *, str_is_json: bool = False) -> str:
    """A JSON value as compact text. As in pymilvus, a ``str`` given for a JSON *field*
    (``str_is_json``) is JSON text -- ``'{"a": 1}'`` is stored as the object and read back as
    a dict, and ``'hello'`` is an error -- and an object's keys must be strings (json.dumps
    would silently turn ``{1: 2}`` into ``{"1": 2}``)."""
    try:
        if str_is_json and isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, Mapping):
            bad = next((k for k in value if not isinstance(k, str)), _NO_KEY)
            if bad is not _NO_KEY:
                raise TypeError(f"keys must be strings, got {type(bad).__name__} {bad!r:.40}")
        return json.dumps(value, allow_nan=False, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidArgument(f"row {row}: field {name!r} is not valid JSON: {e}") from None


class Json(FieldKind):
    dtypes = (DataType.JSON,)

    def arrow_type(self, f: FieldSchema) -> pa.DataType:
        return pa.string()

    def check_value(self, f: FieldSchema, value: Any) -> Any:
        raise InvalidArgument("type not support default_value, type:JSON")  # Milvus's refusal

    def column(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> pa.Array:
        return pa.array(
            [None if v is None else json_text(f.name, v, i, str_is_json=True) for i, v in enumerate(values)],
            type=pa.string(),
        )


_MISSING = object()


def walk_path(obj: object, path: tuple[str | int, ...]) -> object:
    """A JSON path's value in a parsed document (None when missing): a missing key, a bad
    index or a wrong container gives None. An integer step indexes an array or, like a JSON
    pointer ``/0``, looks up key ``"0"``. Filters (engine/expr.py) and JSON-path scalar
    indexes (index/scalar_index.py) walk the same way, so an index answers as the scan."""
    for step in path:
        if type(obj) is dict:
            obj = obj.get(step if type(step) is str else str(step), _MISSING)
        elif type(obj) is list and type(step) is int:
            obj = obj[step] if 0 <= step < len(obj) else _MISSING
        else:
            return None
        if obj is _MISSING:
            return None
    return obj


# -- json_cast_function ---------------------------------------------------------------------------

# Milvus's cast functions for JSON-path indexes (its JsonCastFunction): the values of a path
# as the index and the filter see them. STRING_TO_DOUBLE keeps numbers (JSON bools are not
# numbers) and parses strings as C++'s std::stod does; what does not parse is no value.
JSON_CAST_FUNCTIONS = ("STRING_TO_DOUBLE",)
_STOD = re.compile(
    r"[ \t\n\v\f\r]*([+-]?)(?:0[xX]([0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)([pP][+-]?[0-9]+)?"
    r"|((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|([iI][nN][fF](?:[iI][nN][iI][tT][yY])?|[nN][aA][nN](?:\([0-9A-Za-z_]*\))?))"
)
_MIN_NORMAL = 2.2250738585072014e-308


def string_to_double(s: str) -> float | None:
    """``std::stod(s)``, or None where it throws: leading whitespace skipped, the longest
    prefix that strtod reads taken (``"12abc"`` is 12.0, hex floats, ``inf``, ``nan``),
    nothing readable -> None, a finite number out of double's range (overflow, or underflow
    to zero or a subnormal, where glibc's strtod reports ERANGE) -> None."""
    m = _STOD.match(s)
    if m is None:
        return None
    sign, hexm, hexp, dec, word = m.groups()
    if word is not None:
        return float(sign + ("nan" if word[0] in "nN" else "inf"))
    if dec is not None:
        v = float(sign + dec)
        nonzero = any(ch in "123456789" for ch in dec.split("e")[0].split("E")[0])
    else:
        v = float.fromhex(f"{sign}0x{hexm}{hexp or ''}")
        nonzero = any(ch not in "0." for ch in hexm)
    if v in (float("inf"), float("-inf")) or (nonzero and abs(v) < _MIN_NORMAL):
        return None
    return v


def cast_values(vals: list[object], function: str) -> list[object]:
    """Each path value through ``function`` (``JSON_CAST_FUNCTIONS``): STRING_TO_DOUBLE maps
    strings to their double (or None), keeps numbers, and drops everything else."""
    if function != "STRING_TO_DOUBLE":  # pragma: no cover - index/params.py refuses others
        raise ValueError(f"unknown json_cast_function {function!r}")
    out: list[object] = []
    for v in vals:
        t = type(v)
        out.append(v if t is int or t is float else string_to_double(v) if t is str else None)  # type: ignore[arg-type]
    return out
