"""Turning the rows a user passes (a list of dicts, as Milvus takes them) into one columnar batch.

All validation happens here, before a timestamp is taken or a byte is logged, which is what
makes a batch all-or-nothing: either every row converts, or the call fails and nothing has
changed. Conversion is column-wise (numpy / pyarrow) wherever the data allows; the per-row
Python that remains is the type check of each value, which pyarrow alone would do too
loosely (it turns ``True`` into ``1`` and ``"3"`` into an error message nobody can read).
"""

from __future__ import annotations

import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from keeldb.errors import InvalidArgument
from keeldb.schema import (
    DYNAMIC_FIELD,
    FLOAT_TYPES,
    INT_RANGES,
    INTEGER_TYPES,
    PARTITION_FIELD,
    CollectionSchema,
    DataType,
    FieldSchema,
)

MAX_BATCH_ROWS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024  # beyond this a single log record gets unwieldy
MISSING: Any = object()  # a value the row did not give (not the same as None)


@dataclass
class Batch:
    """One write's rows: a table of every schema column (vectors included, no ``$ts``)."""

    table: pa.Table
    pks: list[Any]
    vectors: dict[str, np.ndarray]

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def vector_column(arr: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1), type=pa.float32()), arr.shape[1])


def vectors_of(col: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """Zero-copy (when the column is one chunk) view of a vector column as an (n, dim) array."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    flat = col.flatten() if col.offset else col.values
    return numpy_of(flat).reshape(-1, dim)


def numpy_of(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A column as numpy: zero-copy for null-free fixed-width columns, object array otherwise.

    Not ``to_numpy()``: pyarrow imports pandas (0.4 s) the first time that is called when
    pandas is installed, which would dominate a reopen.
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if col.null_count == 0 and (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        dtype = np.dtype(col.type.to_pandas_dtype())
        return np.frombuffer(col.buffers()[1], dtype=dtype, count=len(col), offset=col.offset * dtype.itemsize)
    return np.array(col.to_pylist(), dtype=object)


def encode_table(table: pa.Table) -> bytes:
    """A table as an Arrow IPC stream: the payload of a log record."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def decode_table(payload: bytes | memoryview) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()


def batch_from_table(schema: CollectionSchema, table: pa.Table) -> Batch:
    pk = schema.primary.name
    vectors = {f.name: vectors_of(table[f.name], f.dim or 0) for f in schema.vector_fields}
    return Batch(table, table[pk].to_pylist(), vectors)


def _type_error(f: FieldSchema, value: Any, row: int) -> InvalidArgument:
    return InvalidArgument(
        f"row {row}: field {f.name!r} expects {f.dtype.name}, got {type(value).__name__} {value!r:.60}"
    )


def _convert_scalar(f: FieldSchema, values: list[Any]) -> pa.Array:
    """Check and convert one scalar column; ``None`` entries are nulls (already allowed)."""
    t = f.dtype
    if t == DataType.BOOL:
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, bool | np.bool_):
                raise _type_error(f, v, i)
        return pa.array(values, type=pa.bool_())
    if t in INTEGER_TYPES:
        # Fast path: a column of plain ints (bool is its own type, so it is not let through).
        kinds = set(map(type, values))
        for i, v in enumerate(values if not kinds <= {int, type(None)} else ()):
            if v is not None and (isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer)):
                raise _type_error(f, v, i)
        lo, hi = INT_RANGES[t]
        present = [v for v in values if v is not None]
        if present and (min(present) < lo or max(present) > hi):
            # Name the row as every other row error does, so a bad value in a big batch is findable.
            i, bad = next((i, v) for i, v in enumerate(values) if v is not None and not lo <= v <= hi)
            raise InvalidArgument(f"row {i}: field {f.name!r}: {bad} is out of range for {t.name}")
        return pa.array(values, type=f.arrow_type)
    if t in FLOAT_TYPES:
        # Fast path: plain ints and floats, all finite, checked in one numpy pass. Anything
        # else goes through the per-value loop, which names the offending row.
        fast = set(map(type, values)) <= {int, float, type(None)}
        if fast:
            try:
                present = np.asarray([v for v in values if v is not None], dtype=np.float64)
                fast = bool(np.isfinite(present).all())
            except OverflowError:  # an int beyond float64
                fast = False
        for i, v in enumerate(values if not fast else ()):
            if v is not None:
                # np.number would admit complex, which math.isfinite cannot take.
                if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
                    raise _type_error(f, v, i)
                try:
                    finite = math.isfinite(v)
                except OverflowError:  # an int beyond float64 (10**400) used to escape as OverflowError
                    finite = False
                if not finite:
                    raise InvalidArgument(
                        f"row {i}: field {f.name!r}: NaN, infinity and values beyond {t.name} range "
                        "are not allowed"
                    )
        arr = pa.array([None if v is None else float(v) for v in values], type=pa.float64())
        if t == DataType.FLOAT:
            # Values beyond float32 range become inf on the cast: reject them, naming the row
            # (and without numpy's overflow RuntimeWarning leaking to the caller).
            with np.errstate(over="ignore"):
                finite = np.isfinite(arr.to_numpy(zero_copy_only=False).astype(np.float32, copy=False))
            bad_rows = np.flatnonzero(~finite & ~np.asarray(arr.is_null()))
            if bad_rows.size:
                i = int(bad_rows[0])
                raise InvalidArgument(f"row {i}: field {f.name!r}: {values[i]!r} is out of range for FLOAT")
            arr = arr.cast(pa.float32())
        return arr
    if t == DataType.VARCHAR:
        limit = f.max_length or 0
        if not set(map(type, values)) <= {str, type(None)}:
            for i, v in enumerate(values):
                if v is not None and not isinstance(v, str):
                    raise _type_error(f, v, i)
        for i, v in enumerate(values):
            if v is None:
                continue
            if len(v) * 4 > limit and len(v.encode("utf-8")) > limit:
                raise InvalidArgument(
                    f"row {i}: field {f.name!r}: string of {len(v.encode('utf-8'))} bytes exceeds "
                    f"max_length {limit}"
                )
        return pa.array(values, type=pa.string())
    if t == DataType.JSON:
        return pa.array(
            [None if v is None else _json_text(f.name, v, i, str_is_json=True) for i, v in enumerate(values)],
            type=pa.string(),
        )
    raise InvalidArgument(f"field {f.name!r}: unsupported type {t.name}")


def _json_default(o: Any) -> Any:
    # pymilvus converts numpy scalars and arrays inside JSON values; so do we.
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    raise TypeError(f"Object of type {type(o).__name__} is not JSON serializable")


def _json_text(name: str, value: Any, row: int, *, str_is_json: bool = False) -> str:
    """A JSON value as compact text. As in pymilvus, a ``str`` given for a JSON *field*
    (``str_is_json``) is JSON text -- ``'{"a": 1}'`` is stored as the object and read back as
    a dict, and ``'hello'`` is an error -- and an object's keys must be strings (json.dumps
    would silently turn ``{1: 2}`` into ``{"1": 2}``)."""
    try:
        if str_is_json and isinstance(value, str):
            value = json.loads(value)
        if isinstance(value, Mapping):
            bad = next((k for k in value if not isinstance(k, str)), MISSING)
            if bad is not MISSING:
                raise TypeError(f"keys must be strings, got {type(bad).__name__} {bad!r:.40}")
        return json.dumps(value, allow_nan=False, separators=(",", ":"), default=_json_default)
    except (TypeError, ValueError, RecursionError) as e:
        raise InvalidArgument(f"row {row}: field {name!r} is not valid JSON: {e}") from None


def _convert_vectors(f: FieldSchema, values: list[Any]) -> np.ndarray:
    for i, v in enumerate(values):
        if v is None or isinstance(v, str | bytes | Mapping):
            raise InvalidArgument(f"row {i}: vector field {f.name!r} needs a list of {f.dim} floats")
    # Convert with numpy's own dtype inference first and check the kind: converting straight
    # to float32 silently accepted strings ("1.5" -> 1.5) as vector elements, and reported a
    # scalar or nested "vector" as having dimension "irregular" with no row. (Booleans stay
    # accepted as 0/1, as pymilvus does: numpy promotes them silently in a mixed batch anyway.)
    try:
        raw = np.asarray(values)
    except (TypeError, ValueError):  # ragged rows
        raise _vector_row_error(f, values) from None
    if raw.ndim != 2 or raw.shape[1] != f.dim or raw.dtype.kind not in "biuf":
        raise _vector_row_error(f, values)
    with np.errstate(over="ignore", invalid="ignore"):
        arr = raw.astype(np.float32, copy=False)
    finite = np.isfinite(arr).all(axis=1)
    if not finite.all():
        row = int(np.flatnonzero(~finite)[0])
        raise InvalidArgument(
            f"row {row}: vector field {f.name!r} contains NaN, infinity or a value beyond float32 range"
        )
    return arr


def _vector_row_error(f: FieldSchema, values: list[Any]) -> InvalidArgument:
    """The first row that is not a list of ``dim`` numbers (slow path, errors only)."""
    for i, v in enumerate(values):
        try:
            n = len(v)
        except TypeError:
            return InvalidArgument(
                f"row {i}: vector field {f.name!r} needs a list of {f.dim} floats, got {type(v).__name__}"
            )
        if n != f.dim:
            return InvalidArgument(
                f"row {i}: vector field {f.name!r} has dimension {n}, the collection's is {f.dim}"
            )
        for x in v:
            if not isinstance(x, int | float | np.integer | np.floating | np.bool_):
                return InvalidArgument(
                    f"row {i}: vector field {f.name!r}: element {x!r:.40} is a {type(x).__name__}, "
                    "not a number"
                )
    return InvalidArgument(f"vector field {f.name!r}: values must be lists of {f.dim} numbers")


def rows_to_batch(
    schema: CollectionSchema,
    rows: Any,
    *,
    require_pk: bool,
    auto_ids: Iterable[int] | None = None,
    partition_id: int = 0,
) -> Batch:
    """Validate ``rows`` against ``schema`` and build a Batch, or raise InvalidArgument.

    ``require_pk``: upserts must name their keys even under ``auto_id`` (an upsert without a
    key would be an insert in disguise). ``auto_ids`` supplies keys for inserts under auto_id.
    """
    if isinstance(rows, Mapping):
        rows = [rows]
    if not isinstance(rows, list | tuple):
        raise InvalidArgument(f"data must be a list of dicts, got {type(rows).__name__}")
    n = len(rows)
    if n > MAX_BATCH_ROWS:
        raise InvalidArgument(f"a batch may hold at most {MAX_BATCH_ROWS} rows, got {n}")
    if not all(type(r) is dict for r in rows):
        for i, r in enumerate(rows):
            if not isinstance(r, Mapping):
                raise InvalidArgument(f"row {i} is a {type(r).__name__}, not a dict")
    pkf = schema.primary
    names = {f.name for f in schema.fields}
    use_auto = pkf.auto_id and not require_pk
    meta: list[str] | None = [] if schema.enable_dynamic_field else None
    for i, r in enumerate(rows):
        extra = r.keys() - names if not names.issuperset(r) else ()
        if DYNAMIC_FIELD in extra:
            raise InvalidArgument(f"row {i}: {DYNAMIC_FIELD!r} is reserved; pass dynamic fields as top-level keys")
        if use_auto and pkf.name in r:
            raise InvalidArgument(f"row {i}: the primary key {pkf.name!r} is auto_id; do not pass it")
        if extra:
            if meta is None:
                raise InvalidArgument(
                    f"row {i}: unknown field {sorted(extra)[0]!r} (the collection has no dynamic field)"
                )
            meta.append(_json_text(DYNAMIC_FIELD, {k: r[k] for k in extra}, i))
        elif meta is not None:
            meta.append("{}")
    columns = {
        f.name: [r.get(f.name, MISSING) for r in rows]
        for f in schema.fields
        if not (f.is_primary and use_auto)
    }
    return columns_to_batch(
        schema, columns, n, meta=meta, require_pk=require_pk, auto_ids=auto_ids, partition_id=partition_id
    )


def columns_to_batch(
    schema: CollectionSchema,
    values_by_field: Mapping[str, Sequence[Any] | np.ndarray],
    n: int,
    *,
    meta: list[str] | None,
    require_pk: bool,
    auto_ids: Iterable[int] | None = None,
    partition_id: int = 0,
) -> Batch:
    """The column-wise half of ``rows_to_batch``, also used by the gRPC server, which
    receives columns. Each value list has ``n`` entries; ``MISSING`` or ``None`` entries take
    the field's default or null; a field absent from ``values_by_field`` is all missing.
    ``meta`` is the dynamic field's JSON text per row (already checked to be objects)."""
    if n > MAX_BATCH_ROWS:
        raise InvalidArgument(f"a batch may hold at most {MAX_BATCH_ROWS} rows, got {n}")
    pkf = schema.primary
    unknown = set(values_by_field) - {f.name for f in schema.fields}
    if unknown:
        raise InvalidArgument(f"unknown field {sorted(unknown)[0]!r}")
    use_auto = pkf.auto_id and not require_pk
    if use_auto and pkf.name in values_by_field:
        raise InvalidArgument(f"the primary key {pkf.name!r} is auto_id; do not pass it")
    if meta is not None and not schema.enable_dynamic_field:
        raise InvalidArgument("the collection has no dynamic field")
    if meta is None and schema.enable_dynamic_field:
        meta = ["{}"] * n
    columns: dict[str, Any] = {}
    vectors: dict[str, np.ndarray] = {}
    for f in schema.fields:
        if f.is_primary and use_auto:
            ids = list(auto_ids or [])
            if len(ids) != n:
                raise InvalidArgument("internal: auto_id allocation size mismatch")
            columns[f.name] = pa.array(ids, type=pa.int64())
            continue
        given = values_by_field.get(f.name)
        values: list[Any] | np.ndarray = [MISSING] * n if given is None else given
        if len(values) != n:
            raise InvalidArgument(f"field {f.name!r} has {len(values)} values for {n} rows")
        if not isinstance(values, np.ndarray):
            missing = [i for i, v in enumerate(values) if v is MISSING or v is None]
            if missing:
                values = list(values)
                if f.default_value is not None:
                    for i in missing:
                        values[i] = f.default_value
                elif f.nullable:
                    for i in missing:
                        values[i] = None
                else:
                    i = missing[0]
                    what = "is missing" if values[i] is MISSING else "is None"
                    raise InvalidArgument(f"row {i}: field {f.name!r} {what} and has no default")
        if f.dtype == DataType.FLOAT_VECTOR:
            vectors[f.name] = _convert_vectors(f, values)
            columns[f.name] = vector_column(vectors[f.name])
        else:
            columns[f.name] = _convert_scalar(f, list(values))

    pks = columns[pkf.name].to_pylist()
    if len(set(pks)) != n:
        # Name both rows, not just the key: in a batch of thousands the key alone is hard to find.
        first: dict[Any, int] = {}
        for i, k in enumerate(pks):
            if k in first:
                raise InvalidArgument(
                    f"primary key {k!r} appears twice in one batch (rows {first[k]} and {i})"
                )
            first[k] = i
    if meta is not None:
        columns[DYNAMIC_FIELD] = pa.array(meta, type=pa.string())
    columns[PARTITION_FIELD] = pa.array(np.full(n, partition_id, dtype=np.int64))
    table = pa.Table.from_arrays(list(columns.values()), schema=schema.arrow_schema())
    if table.nbytes > MAX_BATCH_BYTES:
        raise InvalidArgument(f"batch of {table.nbytes} bytes exceeds the limit of {MAX_BATCH_BYTES}")
    return Batch(table, pks, vectors)


def pk_array(schema: CollectionSchema, ids: Any) -> list[Any]:
    """Validate a list of primary keys given to get/delete."""
    if isinstance(ids, int | str) and not isinstance(ids, bool):
        ids = [ids]
    if not isinstance(ids, list | tuple | np.ndarray):
        raise InvalidArgument(f"ids must be a list of primary keys, got {type(ids).__name__}")
    pkf = schema.primary
    out = []
    for v in ids:
        if isinstance(v, np.integer):
            v = int(v)
        if pkf.dtype == DataType.INT64:
            if isinstance(v, bool) or not isinstance(v, int):
                raise InvalidArgument(f"primary key {v!r} is not an INT64")
        elif not isinstance(v, str):
            raise InvalidArgument(f"primary key {v!r} is not a VARCHAR")
        out.append(v)
    return out
