"""Turning the rows a user passes (a list of dicts, as Milvus takes them) into one columnar batch.

All validation happens here, before a timestamp is taken or a byte is logged, which is what
makes a batch all-or-nothing: either every row converts, or the call fails and nothing has
changed. Conversion is column-wise (numpy / pyarrow) wherever the data allows; the per-row
Python that remains is the type check of each value, which pyarrow alone would do too
loosely (it turns ``True`` into ``1`` and ``"3"`` into an error message nobody can read).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from keeldb.engine import bm25_function, schema_change
from keeldb.errors import InvalidArgument
from keeldb.fields import VectorKind
from keeldb.fields.arrow import numpy_of
from keeldb.fields.float_vector import vector_column, vectors_of
from keeldb.fields.json import json_text
from keeldb.schema import DYNAMIC_FIELD, PARTITION_FIELD, CollectionSchema, DataType

MAX_BATCH_ROWS = 100_000
MAX_BATCH_BYTES = 256 * 1024 * 1024  # beyond this a single log record gets unwieldy
MISSING: Any = object()  # a value the row did not give (not the same as None)
# Re-exported for the engine modules that read stored columns.
__all__ = ["MISSING", "Batch", "numpy_of", "vector_column", "vectors_of"]


@dataclass
class Batch:
    """One write's rows: a table of every schema column (vectors included, no ``$ts``)."""

    table: pa.Table
    pks: list[Any]
    vectors: dict[str, Any]  # per vector field, its searchable form (VectorKind.vectors)

    @property
    def num_rows(self) -> int:
        return self.table.num_rows


def encode_table(table: pa.Table) -> bytes:
    """A table as an Arrow IPC stream: the payload of a log record."""
    sink = io.BytesIO()
    with pa.ipc.new_stream(sink, table.schema) as w:
        w.write_table(table)
    return sink.getvalue()


def decode_table(payload: bytes | memoryview) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(payload)).read_all()


def batch_from_table(schema: CollectionSchema, table: pa.Table) -> Batch:
    """A logged batch back as a Batch, read with the current schema (a record logged before
    a field was added lacks its column: ``schema_change.conform`` fills it)."""
    table = schema_change.conform(table, schema)
    pk = schema.primary.name
    vectors = {f.name: f.kind.from_arrow(f, table[f.name]) for f in schema.vector_fields}  # type: ignore[attr-defined]
    return Batch(table, table[pk].to_pylist(), vectors)


def rows_to_batch(
    schema: CollectionSchema,
    rows: Any,
    *,
    require_pk: bool,
    auto_ids: Iterable[int] | None = None,
    partition_id: int = 0,
    route: Callable[[pa.Array], np.ndarray] | None = None,
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
            meta.append(json_text(DYNAMIC_FIELD, {k: r[k] for k in extra}, i))
        elif meta is not None:
            meta.append("{}")
    columns = {
        f.name: [r.get(f.name, MISSING) for r in rows]
        for f in schema.fields
        if not (f.is_primary and use_auto)
    }
    return columns_to_batch(
        schema, columns, n, meta=meta, require_pk=require_pk, auto_ids=auto_ids, partition_id=partition_id,
        route=route,
    )  # fmt: skip


def columns_to_batch(
    schema: CollectionSchema,
    values_by_field: Mapping[str, Sequence[Any] | np.ndarray],
    n: int,
    *,
    meta: list[str] | None,
    require_pk: bool,
    auto_ids: Iterable[int] | None = None,
    partition_id: int = 0,
    route: Callable[[pa.Array], np.ndarray] | None = None,
) -> Batch:
    """The column-wise half of ``rows_to_batch``, also used by the gRPC server, which
    receives columns. Each value list has ``n`` entries; ``MISSING`` or ``None`` entries take
    the field's default or null; a field absent from ``values_by_field`` is all missing.
    ``meta`` is the dynamic field's JSON text per row (already checked to be objects).
    ``route``: with a partition key, each row's partition id from its key column (every
    row's ``$partition`` is ``partition_id`` otherwise). Auto ids on a VARCHAR key are the
    allocated numbers as text, as Milvus generates them."""
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
    vectors: dict[str, Any] = {}
    derived = [f for f in schema.fields if schema.function_output(f.name) is not None]
    for f in schema.fields:
        if f in derived:
            given = values_by_field.get(f.name)
            if given is not None and (not isinstance(given, list | tuple) or any(v is not MISSING for v in given)):
                # pymilvus's words; Milvus refuses it too: a function's output is computed
                raise InvalidArgument(f"Attempt to insert an unexpected function output field `{f.name}` to collection")
            columns[f.name] = None  # keeps the schema's column order; filled below
            continue
        if f.is_primary and use_auto:
            ids = list(auto_ids or [])
            if len(ids) != n:
                raise InvalidArgument("internal: auto_id allocation size mismatch")
            columns[f.name] = pa.array(ids if f.dtype == DataType.INT64 else [str(i) for i in ids], type=f.arrow_type)
            continue
        given = values_by_field.get(f.name)
        values: list[Any] | np.ndarray = [MISSING] * n if given is None else given
        # A whole column may be an array-like (a numpy array; for a sparse vector field a
        # scipy sparse matrix or SparseRows): it has no holes to fill with defaults.
        array_like = not isinstance(values, list | tuple)
        count = values.shape[0] if hasattr(values, "shape") else len(values)
        if count != n:
            raise InvalidArgument(f"field {f.name!r} has {count} values for {n} rows")
        if not array_like:
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
        kind = f.kind
        if isinstance(kind, VectorKind):
            vectors[f.name] = kind.vectors(f, values)
            columns[f.name] = kind.from_vectors(f, vectors[f.name])
        else:
            columns[f.name] = kind.column(f, list(values))

    for f in derived:  # every input column is converted (defaults applied) by now
        vectors[f.name] = bm25_function.derive(schema, f.name, columns)
        columns[f.name] = f.kind.from_vectors(f, vectors[f.name])  # type: ignore[attr-defined]
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
    key = schema.partition_key
    if route is not None and key is not None:
        columns[PARTITION_FIELD] = pa.array(route(columns[key.name]), type=pa.int64())
    else:
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
