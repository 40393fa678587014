"""A collection's schema changing under live data: rows written before the change are read
with the new schema.

A schema change (``add_collection_field``, ``alter_collection_field``) is ONE catalog
commit (``engine/database.py``); nothing already on disk is rewritten. Segment files and
log records written before an added field existed simply lack its column, so whatever reads
them goes through ``conform``: the missing column is filled with the field's default (or
null), exactly the value Milvus returns for rows that predate an added field. That is done
where tables enter memory -- a segment file at recovery (``SealedSegment``), a log record
at replay or on a replica (``rows.batch_from_table``) -- and, at the change itself, to the
segments already in memory (``apply``), under the collection's locks, so every snapshot
taken after the change reads every row with the new column and none before it sees it.
Compaction then writes merged segments with the column present, and the old files go.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import TYPE_CHECKING

import pyarrow as pa

from keeldb.schema import DYNAMIC_FIELD, CollectionSchema, FieldSchema
from keeldb.storage.segment_file import TS_COLUMN

if TYPE_CHECKING:
    from keeldb.engine.memstate import MemState


def filler(f: FieldSchema, n: int) -> pa.Array:
    """``n`` copies of the field's default, or ``n`` nulls."""
    if f.default_value is None:
        return pa.nulls(n, type=f.arrow_type)
    if n == 0:
        return pa.array([], type=f.arrow_type)
    return pa.repeat(f.kind.column(f, [f.default_value])[0], n)


def conform(table: pa.Table, schema: CollectionSchema, exclude: Collection[str] = ()) -> pa.Table:
    """``table`` with every column ``schema`` has, in schema order: columns a row batch or
    segment file predates are added (default or null). A table that already fits is
    returned as it is (the common case costs one schema comparison). ``$ts``, present in
    segment files, stays first; columns in ``exclude`` (a growing segment's chunks keep
    their vectors elsewhere) are left out of the target."""
    target = pa.schema([f for f in schema.arrow_schema() if f.name not in exclude])
    if TS_COLUMN in table.column_names:
        target = pa.schema([pa.field(TS_COLUMN, pa.int64(), nullable=False), *target])
    if table.schema.names == target.names:
        return table
    n = table.num_rows
    cols = []
    for field in target:
        if field.name in table.column_names:
            cols.append(table.column(field.name))
        elif field.name == DYNAMIC_FIELD:  # the dynamic field turned on later: no keys yet
            cols.append(pa.repeat(pa.scalar("{}"), n))
        else:
            f = schema.field(field.name)
            assert f is not None, f"column {field.name} missing and not a schema field"
            cols.append(filler(f, n))
    return pa.Table.from_arrays(cols, schema=target)


def apply(mem: MemState, schema: CollectionSchema) -> None:
    """Make every segment in memory read with ``schema`` (caller holds the collection's
    flush and write locks, so no flush, compaction swap or write runs meanwhile). A reader
    that took its snapshot before keeps its views, which hold the old tables."""
    with mem.lock:
        mem.schema = schema
        segs = [*mem.sealed.values(), mem.growing]
        if mem.frozen is not None:  # pragma: no cover - the flush lock excludes a frozen segment
            segs.append(mem.frozen)
        for seg in segs:
            seg.adopt_schema(schema, conform)
