"""``upsert(..., partial_update=True)``: Milvus's merge mode (2.6.2+).

Each row names its primary key and the fields to change. For a key that is live, the new
version is the current one with those fields replaced -- the dynamic field's keys are
*merged* (new keys added, given keys overwritten, the rest kept), a JSON or ARRAY field is
replaced whole. For a key that is not live (never written, deleted, or expired), the row is
an insert: omitted fields take their default or null, and a field that has neither is
refused with Milvus's message (``fieldSchema(x) has no corresponding fieldData pass in``).

Atomicity comes from where this runs: ``Collection.write_merged`` calls ``merge`` under the
collection's write lock, with a reader of the newest applied rows, and logs the result as
ONE UPSERT record -- one timestamp, visible exactly like a full upsert, and no other write
can change a row between the read of its old values and the new version. The batch then
goes through the same conversion and checks as any write (``rows.columns_to_batch``), so a
partial update of an unknown field, a value of the wrong type or an over-long string
changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from keeldb.engine.rows import MISSING, Batch, columns_to_batch, pk_array
from keeldb.errors import InvalidArgument
from keeldb.fields.json import json_text
from keeldb.schema import DYNAMIC_FIELD, CollectionSchema

RowReader = Callable[[list[Any], list[str]], list[dict[str, Any] | None]]


def rows_to_columns(schema: CollectionSchema, rows: Any) -> tuple[dict[str, list[Any]], list[dict[str, Any]] | None, int]:
    """Row dicts as columns with ``MISSING`` where a row leaves a field out, plus each row's
    dynamic keys; unknown fields are refused here (nothing has been read or written)."""
    if isinstance(rows, Mapping):
        rows = [rows]
    if not isinstance(rows, list | tuple):
        raise InvalidArgument(f"data must be a list of dicts, got {type(rows).__name__}")
    names = [f.name for f in schema.fields]
    declared = set(names)
    dynamic: list[dict[str, Any]] | None = [] if schema.enable_dynamic_field else None
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping):
            raise InvalidArgument(f"row {i} is a {type(r).__name__}, not a dict")
        extra = [k for k in r if k not in declared]
        if DYNAMIC_FIELD in extra:
            raise InvalidArgument(f"row {i}: {DYNAMIC_FIELD!r} is reserved; pass dynamic fields as top-level keys")
        if extra and dynamic is None:
            raise InvalidArgument(
                f"row {i}: unknown field {extra[0]!r} (the collection has no dynamic field): "
                "a partial update may only name fields of the schema"
            )
        if dynamic is not None:
            dynamic.append({k: r[k] for k in extra})
    columns = {n: [r.get(n, MISSING) for r in rows] for n in names if any(n in r for r in rows)}
    return columns, dynamic, len(rows)


def merge(
    schema: CollectionSchema,
    given: Mapping[str, Any],
    n: int,
    dynamic: list[dict[str, Any]] | None,
    read: RowReader,
    **batch_args: Any,
) -> Batch:
    """The full rows of a partial update, as one Batch (see the module docstring).
    ``given``: field -> ``n`` values (``MISSING`` where a row leaves the field out), or a
    whole column object (a numpy array, a scipy matrix, the server's decoded sparse rows),
    which every row gives;
    ``dynamic``: each row's dynamic keys, or None without a dynamic field."""
    pkf = schema.primary
    if pkf.name not in given or any(v is MISSING for v in given[pkf.name]):
        raise InvalidArgument(f"a partial update needs the primary key {pkf.name!r} of every row")
    unknown = set(given) - {f.name for f in schema.fields}
    if unknown:
        raise InvalidArgument(f"unknown field {sorted(unknown)[0]!r}: a partial update may only name fields of the schema")
    keys = pk_array(schema, list(given[pkf.name]))  # wrong key types refused before any read
    if len(set(keys)) != len(keys):
        raise InvalidArgument("a partial update names a primary key twice in one batch")
    names = [f.name for f in schema.fields] + ([DYNAMIC_FIELD] if schema.enable_dynamic_field else [])
    current = read(keys, names)
    columns: dict[str, Any] = {}
    for f in schema.fields:
        if schema.function_output(f.name) is not None:
            # Never carried over: columns_to_batch derives it again from the merged input
            # (and refuses it if the update gives it).
            if f.name in given:
                columns[f.name] = given[f.name]
            continue
        whole = given.get(f.name)
        if whole is not None and not isinstance(whole, list | tuple):
            columns[f.name] = whole  # a column object has no missing rows: pass it on as is
            continue
        col = list(whole) if whole is not None else [MISSING] * n
        for i, v in enumerate(col):
            if v is MISSING:
                cur = current[i]
                if cur is not None:
                    col[i] = cur[f.name]
                elif f.default_value is None and not f.nullable:
                    raise InvalidArgument(
                        f"fieldSchema({f.name}) has no corresponding fieldData pass in: invalid parameter "
                        f"(row {i}: key {keys[i]!r} is not live, so a partial update of it is an insert)"
                    )
        columns[f.name] = col
    meta = None
    if schema.enable_dynamic_field:
        meta = []
        for i in range(n):
            cur = current[i]
            old = json.loads(cur[DYNAMIC_FIELD]) if cur is not None and cur[DYNAMIC_FIELD] else {}
            old.update((dynamic or [{}] * n)[i])
            meta.append(json_text(DYNAMIC_FIELD, old, i))
    # Kept values go back through the same checks as stored values read back: each kind
    # takes its own stored form (JSON text, GEOMETRY WKB, TIMESTAMPTZ datetimes, float
    # vectors as lists, the byte-stored vector types as bytes, sparse vectors as dicts), so
    # nothing kept is re-rounded.
    return columns_to_batch(schema, columns, n, meta=meta, require_pk=True, **batch_args)
