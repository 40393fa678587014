"""Segments in memory: the growing one that takes writes, and sealed ones loaded from files.

Every row version carries two timestamps: ``ts`` (when it was written) and ``deleted_at``
(the timestamp of the first delete or overwrite of its key after it, or ``NEVER``). A reader
at snapshot time S sees exactly the rows with ``ts <= S < deleted_at``: the brief's MVCC rule
"visible iff ts <= S and no delete has ts < del_ts <= S", folded into one comparison per row.

``deleted_at`` is the only thing that changes after a row is written. It only ever goes from
``NEVER`` to a timestamp newer than every reader's S that existed at that moment, so a reader
can look at it without a lock: a concurrent change can never alter what that reader sees.
The same argument makes a reader that holds an older copy of a growing segment's arrays
(before they were reallocated) correct.
"""

from __future__ import annotations

import bisect
import json
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa

from keeldb.engine import schema_change
from keeldb.engine.rows import Batch, numpy_of
from keeldb.fields import VectorKind
from keeldb.index.base import VectorIndex
from keeldb.index.params import IndexSpec, is_scalar_spec, text_analyzer_params
from keeldb.schema import CollectionSchema
from keeldb.storage.segment_file import TS_COLUMN
from keeldb.text import Analyzer, build_analyzer
from keeldb.text.postings import Postings, build_postings

NEVER = np.iinfo(np.int64).max


def _vector_kind(f: Any) -> VectorKind:
    kind = f.kind
    assert isinstance(kind, VectorKind)
    return kind


class SegmentView:
    """A consistent, read-only view of the first ``num_rows`` rows of a segment.

    Implements the expression evaluator's ``ColumnSource`` protocol.
    """

    def __init__(
        self,
        segment: Segment,
        num_rows: int,
        ts: np.ndarray,
        deleted_at: np.ndarray,
        vectors: dict[str, Any],
        chunks: Sequence[pa.Table],
    ) -> None:
        self.segment = segment
        self.num_rows = num_rows
        self.ts = ts
        self.deleted_at = deleted_at
        self._vectors = vectors
        self._chunks = chunks
        self._json: dict[str, list[Any]] = {}
        # Versions written at or before this are expired (collection TTL, engine/ttl.py);
        # set by the snapshot that made this view, 0 without a TTL.
        self.expire_before = 0

    def visible(self, snapshot_ts: int) -> np.ndarray:
        mask = (self.ts <= snapshot_ts) & (self.deleted_at > snapshot_ts)
        if self.expire_before:
            mask &= self.ts > self.expire_before
        return mask

    def all_visible(self, snapshot_ts: int) -> bool:
        """Whether every row of this view is visible at ``snapshot_ts``, answered without
        looking at the rows (a sealed segment nobody has deleted from since ``snapshot_ts``)."""
        if self.expire_before and self.segment.min_ts() <= self.expire_before:
            return False
        return self.segment.all_visible(snapshot_ts) and self.num_rows == self.segment.num_rows

    def count_visible(self, snapshot_ts: int) -> int:
        return int(np.count_nonzero(self.visible(snapshot_ts)))

    def column(self, name: str) -> pa.ChunkedArray:
        # Build from the arrays inside each table's column: handing pa.chunked_array a list
        # of ChunkedArrays makes it convert them element by element (100 ms for 100k rows).
        pieces = [arr for c in self._chunks for arr in c.column(name).chunks]
        return pa.chunked_array(pieces, type=self.segment.arrow_schema.field(name).type)

    def json_objects(self, name: str) -> list[Any]:
        cached = self.segment.json_cache(name, self.num_rows)
        if cached is not None:
            return cached
        if name not in self._json:
            self._json[name] = [None if s is None else json.loads(s) for s in self.column(name).to_pylist()]
            self.segment.store_json_cache(name, self.num_rows, self._json[name])
        return self._json[name]

    def vectors(self, field: str) -> Any:
        """The field's searchable form (``VectorKind.from_arrow``): an (n, width) array for
        the dense types, ``SparseRows`` for sparse vectors."""
        return self._vectors[field]

    def take(self, rows: np.ndarray, names: Sequence[str]) -> dict[str, list[Any]]:
        """Values of ``names`` at ``rows``, as Python lists (vectors in pymilvus's shapes:
        ``VectorKind.values_at``)."""
        out: dict[str, list[Any]] = {}
        idx = None
        pk_cache = self.segment.cached_pks()
        for name in names:
            if name in self._vectors:
                f = self.segment.schema.field(name)
                assert f is not None and isinstance(f.kind, VectorKind)
                out[name] = f.kind.values_at(f, self._vectors[name], rows)
            elif pk_cache is not None and name == self.segment.schema.primary.name:
                out[name] = pk_cache[rows].tolist()  # the search hot path: ids only
            else:
                idx = pa.array(rows, type=pa.int64()) if idx is None else idx
                out[name] = self.column(name).take(idx).to_pylist()
        return out


class Segment(ABC):
    """Common state: identity, schema, and a cache of parsed JSON columns."""

    def __init__(self, sid: int, schema: CollectionSchema) -> None:
        self.sid = sid
        self.schema = schema
        self.arrow_schema = schema.arrow_schema()
        self.vector_names = [f.name for f in schema.vector_fields]
        self._json_cache: dict[str, tuple[int, list[Any]]] = {}
        self.num_rows = 0
        # The oldest deleted_at ever stamped on a row here, lowered before the stamp is
        # written. A reader that sees a stale (higher) value can only miss stamps newer than
        # any snapshot it holds (the module doc's argument), so the shortcut it enables in
        # ``all_visible`` never shows a row that is deleted at the reader's snapshot.
        self.min_stamped = NEVER
        # Per vector field, the committed ANN index over this segment's rows (sealed only);
        # per enable_match field, its committed text-match index.
        # Replaced whole, never mutated: a search holds whichever one it picked up.
        self.indexes: dict[str, VectorIndex] = {}
        # The delete mask's version: bumped by ``mark_deleted`` AFTER it wrote its stamps, so
        # a reader that reads it before scanning ``deleted_at`` and finds it unchanged later
        # knows no stamp has landed since (besides those of a delete still being applied,
        # which are newer than any snapshot that could see them).
        self.stamps = 0
        # What readers derive from this segment's immutable rows and keep for the next read
        # (BM25's per-segment statistics, engine/bm25_stats.py), keyed by their owner. Each
        # entry is replaced whole, never mutated in place.
        self.read_cache: dict[Any, Any] = {}
        # Per enable_match field, the text-match postings a filter built in memory when no
        # index file was there yet (sealed), or the growing segment's token table, extended
        # as rows arrive (engine/text_match.py).
        self.text_tables: dict[str, Any] = {}

    def json_cache(self, name: str, n: int) -> list[Any] | None:
        hit = self._json_cache.get(name)
        return hit[1] if hit and hit[0] == n else None

    def store_json_cache(self, name: str, n: int, values: list[Any]) -> None:
        self._json_cache[name] = (n, values)

    def squared_norms(self, field: str) -> np.ndarray | None:
        """Per-row squared norms of a vector field, when cached (sealed segments only)."""
        return None

    def all_visible(self, snapshot_ts: int) -> bool:
        return False

    def min_ts(self) -> int:
        """The oldest version's timestamp (a TTL check's shortcut; growing: unknown, 0)."""
        return 0

    def cached_pks(self) -> np.ndarray | None:
        """The primary keys as one numpy array, where the segment keeps one (sealed)."""
        return None

    def note_stamp(self, ts: int | np.ndarray) -> None:
        low = int(np.min(ts)) if isinstance(ts, np.ndarray) else ts
        if low < self.min_stamped:
            self.min_stamped = low

    def adopt_schema(self, schema: CollectionSchema, conform: Callable[..., pa.Table]) -> None:
        """Read with ``schema`` from now on (``engine/schema_change.py``)."""
        self.schema = schema
        self.arrow_schema = schema.arrow_schema()

    @abstractmethod
    def mark_deleted(self, rows: np.ndarray, ts: int | np.ndarray) -> None: ...

    @abstractmethod
    def view(self) -> SegmentView: ...


class SealedSegment(Segment):
    """An immutable segment whose columns come from a (memory-mapped) segment file."""

    def __init__(
        self,
        sid: int,
        schema: CollectionSchema,
        table: pa.Table,
        deleted_at: np.ndarray | None = None,
    ) -> None:
        super().__init__(sid, schema)
        table = schema_change.conform(table, schema)  # a file older than an added field
        self.num_rows = table.num_rows
        self.ts = numpy_of(table[TS_COLUMN])
        self.deleted_at = np.full(self.num_rows, NEVER, dtype=np.int64) if deleted_at is None else deleted_at
        self.vectors = {f.name: _vector_kind(f).from_arrow(f, table[f.name]) for f in schema.vector_fields}
        self.file_table = table  # every column as in the file (memory-mapped), for compaction
        self.table = table.drop_columns([TS_COLUMN, *self.vector_names])
        self._pk_cache: np.ndarray | None = None
        self._pk_order: np.ndarray | None = None
        self._norms: dict[str, np.ndarray] = {}
        self._text_lock = threading.Lock()
        self.max_ts = int(self.ts.max()) if self.num_rows else 0
        self._min_ts: int | None = None
        stamped = self.deleted_at[self.deleted_at != NEVER]
        if stamped.size:
            self.note_stamp(stamped)

    def all_visible(self, snapshot_ts: int) -> bool:
        return self.max_ts <= snapshot_ts < self.min_stamped

    def min_ts(self) -> int:
        if self._min_ts is None:
            self._min_ts = int(self.ts.min()) if self.num_rows else 0
        return self._min_ts

    def adopt_schema(self, schema: CollectionSchema, conform: Callable[..., pa.Table]) -> None:
        super().adopt_schema(schema, conform)
        self.file_table = conform(self.file_table, schema)
        self.table = self.file_table.drop_columns([TS_COLUMN, *self.vector_names])

    def index_input(self, field: str, spec: IndexSpec) -> Any:
        """What an index keyed ``field`` is built from: a vector field's searchable form; for
        a scalar index, its field's column; for a text-match index, the field's postings (``text_postings``: shared with a filter
        that needs them before the file exists, so the text is tokenized once)."""
        if field in self.vectors:
            return self.vectors[field]
        if is_scalar_spec(spec):  # a scalar index: the field's column as stored
            return self.table.column(spec.build["field"])
        return self.text_postings(field, build_analyzer(text_analyzer_params(spec)))

    def text_postings(self, field: str, analyzer: Analyzer) -> Postings:
        """The text-match postings of ``field`` built in memory from the segment's text,
        once (a second caller waits for the first: the index builder and a filter may both
        want them right after a flush). Kept until the committed index file replaces them
        (``drop_text_postings``). The field's analyzer never changes (Milvus has no way to
        alter it), so the postings are keyed by the field alone."""
        memo = self.text_tables.get(field)
        if memo is None:
            with self._text_lock:
                memo = self.text_tables.get(field)
                if memo is None:
                    memo = self.text_tables[field] = build_postings(self.table.column(field).to_pylist(), analyzer)
        return memo  # type: ignore[no-any-return]

    def drop_text_postings(self, field: str) -> None:
        self.text_tables.pop(field, None)

    def pk_numpy(self) -> np.ndarray:
        if self._pk_cache is None:
            self._pk_cache = numpy_of(self.table[self.schema.primary.name])
        return self._pk_cache

    def cached_pks(self) -> np.ndarray:
        return self.pk_numpy()

    def mark_deleted(self, rows: np.ndarray, ts: int | np.ndarray) -> None:
        self.note_stamp(ts)
        self.deleted_at[rows] = ts
        self.stamps += 1

    def squared_norms(self, field: str) -> np.ndarray | None:
        """float32 vectors only: other types are widened a block at a time when scanned,
        and their norms computed there (a cache would cost 4 bytes a row for nothing)."""
        cached = self._norms.get(field)
        if cached is None:
            v = self.vectors[field]
            if not isinstance(v, np.ndarray) or v.dtype != np.float32:
                return None
            cached = self._norms[field] = np.einsum("ij,ij->i", v, v)
        return cached

    def pk_order(self) -> np.ndarray:
        """Row indices in primary-key order (built once: the segment never changes)."""
        if self._pk_order is None:
            self._pk_order = np.argsort(self.pk_numpy(), kind="stable")
        return self._pk_order

    def view(self) -> SegmentView:
        return SegmentView(self, self.num_rows, self.ts, self.deleted_at, self.vectors, [self.table])


class GrowingSegment(Segment):
    """The in-memory segment that appends take. Arrays grow by doubling; scalar columns are
    kept as the list of per-batch Arrow tables so that an append never copies old rows."""

    def __init__(self, sid: int, schema: CollectionSchema, capacity: int = 1024) -> None:
        super().__init__(sid, schema)
        self.num_rows = 0
        self.nbytes = 0
        self._ts = np.empty(capacity, dtype=np.int64)
        self._deleted_at = np.full(capacity, NEVER, dtype=np.int64)
        self._vectors = {f.name: _vector_kind(f).new_buffer(f, capacity) for f in schema.vector_fields}
        self._chunks: list[pa.Table] = []
        self._chunk_ends: list[int] = []

    def _grow(self, need: int) -> None:
        cap = len(self._ts)
        if need <= cap:
            return
        new_cap = max(need, cap * 2)
        ts = np.empty(new_cap, dtype=np.int64)
        ts[: self.num_rows] = self._ts[: self.num_rows]
        deleted = np.full(new_cap, NEVER, dtype=np.int64)
        deleted[: self.num_rows] = self._deleted_at[: self.num_rows]
        # Swap in whole new arrays; readers holding the old ones stay correct (see module doc).
        # The vector buffers grow by themselves, the same way.
        self._ts, self._deleted_at = ts, deleted

    def append(self, batch: Batch, ts: int) -> int:
        """Append a batch's rows with timestamp ``ts``; return the first new row's index."""
        start = self.num_rows
        n = batch.num_rows
        self._grow(start + n)
        self._ts[start : start + n] = ts
        for name, vecs in batch.vectors.items():
            self._vectors[name].append(start, vecs)
        self._chunks.append(batch.table.drop_columns(self.vector_names))
        self._chunk_ends.append(start + n)
        self.nbytes += batch.table.nbytes
        self.num_rows = start + n  # published last: a view never sees a half-appended batch
        return start

    def mark_deleted(self, rows: np.ndarray, ts: int | np.ndarray) -> None:
        self.note_stamp(ts)
        self._deleted_at[rows] = ts
        self.stamps += 1

    def adopt_schema(self, schema: CollectionSchema, conform: Callable[..., pa.Table]) -> None:
        super().adopt_schema(schema, conform)
        self._chunks = [conform(c, schema, exclude=self.vector_names) for c in self._chunks]

    def view(self) -> SegmentView:
        n = self.num_rows
        return SegmentView(
            self,
            n,
            self._ts[:n],
            self._deleted_at[:n],
            {k: v.view(n) for k, v in self._vectors.items()},
            # Only whole batches below n: an append in progress may have added its chunk
            # already but publishes num_rows last.
            self._chunks[: bisect.bisect_right(self._chunk_ends, n)],
        )

    def pk_numpy(self) -> np.ndarray:
        return numpy_of(self.view().column(self.schema.primary.name))

    def to_table(self) -> pa.Table:
        """The whole segment as one table in segment-file column order (``$ts`` first)."""
        n = self.num_rows
        scalars = pa.concat_tables(self._chunks) if self._chunks else self.arrow_schema.empty_table()
        cols: list[pa.Array | pa.ChunkedArray] = [pa.array(self._ts[:n], type=pa.int64())]
        fields = [pa.field(TS_COLUMN, pa.int64(), nullable=False)]
        for f in self.arrow_schema:
            if f.name in self._vectors:
                cols.append(self._vectors[f.name].to_arrow(n))
            else:
                cols.append(scalars[f.name])
            fields.append(f)
        return pa.Table.from_arrays(cols, schema=pa.schema(fields)).combine_chunks()

    @property
    def deleted_at(self) -> np.ndarray:
        return self._deleted_at[: self.num_rows]
