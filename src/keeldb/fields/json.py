"""JSON fields (and the dynamic field's per-row object): compact JSON text in a string
column, parsed again when read or filtered."""

from __future__ import annotations

import json
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
