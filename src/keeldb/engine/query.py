"""Scalar reads on a snapshot: query, get and count(*), plus the output-field rules they share
with search.

Everything works on a ``Snapshot`` (one timestamp, one list of segment views), so a query
never mixes two moments and never waits for a writer or a flush. Rows are selected with
vectorised masks (MVCC visibility AND the compiled filter); Python only touches the rows
that are returned.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keeldb.engine.expr import Filter
from keeldb.engine.rows import numpy_of
from keeldb.engine.segment import SealedSegment, SegmentView
from keeldb.engine.snapshot import Snapshot
from keeldb.errors import InvalidArgument
from keeldb.fields import FieldKind
from keeldb.schema import DYNAMIC_FIELD, CollectionSchema, DataType

COUNT = "count(*)"
MAX_LIMIT = 16384  # Milvus's quota.maxQueryResultWindow: offset + limit of one query page


@dataclass(frozen=True)
class Output:
    """Which columns to return: schema fields, and dynamic keys (None = all of them)."""

    fields: tuple[str, ...]
    dynamic: tuple[str, ...] | None
    with_dynamic: bool
    # JSON fields among ``fields``: stored as JSON text, returned parsed (Milvus returns a
    # JSON field's value as the dict/list/scalar that was inserted, not as a string).
    json_fields: tuple[str, ...] = ()
    # Fields whose kind returns values in another form than stored (TIMESTAMPTZ as ISO
    # text in the reader's zone, GEOMETRY as WKT): name -> the kind's ``output``.
    converters: tuple[tuple[str, Callable[[list[Any]], list[Any]]], ...] = ()

    @property
    def columns(self) -> list[str]:
        return [*self.fields, DYNAMIC_FIELD] if self.with_dynamic else list(self.fields)


def resolve_output(schema: CollectionSchema, output_fields: Sequence[str] | None) -> Output:
    """Milvus's rules: ``*`` means every field; a name not in the schema is a dynamic key when
    the dynamic field is on, and an error otherwise; ``$meta`` means every dynamic key."""
    if output_fields is not None and (
        isinstance(output_fields, str) or not all(isinstance(n, str) for n in output_fields)
    ):
        raise InvalidArgument("output_fields must be a list of field names")
    fields: list[str] = []
    dynamic: list[str] | None = []
    for name in output_fields or []:
        name = name.strip()
        if name == "*":
            # Milvus's "*" leaves out what cannot be output: a BM25 function's vectors
            fields.extend(f.name for f in schema.fields if schema.bm25_input(f.name) is None)
            dynamic = None
        elif name == DYNAMIC_FIELD and schema.enable_dynamic_field:
            dynamic = None
        elif schema.bm25_input(name) is not None:
            raise InvalidArgument(f"not allowed to retrieve raw data of field {name}")  # Milvus's words
        elif schema.field(name) is not None:
            fields.append(name)
        elif name == COUNT:
            raise InvalidArgument("count(*) cannot be combined with other output fields")
        elif schema.enable_dynamic_field:
            if dynamic is not None:
                dynamic.append(name)
        else:
            raise InvalidArgument(f"output field {name!r} does not exist in the collection")
    fields = list(dict.fromkeys(fields))
    with_dynamic = schema.enable_dynamic_field and (dynamic is None or bool(dynamic))
    json_fields = tuple(n for n in fields if (f := schema.field(n)) is not None and f.dtype == DataType.JSON)
    converters = tuple(
        (f.name, functools.partial(f.kind.output, f))
        for n in fields
        if (f := schema.field(n)) is not None and type(f.kind).output is not FieldKind.output
    )
    return Output(tuple(fields), None if dynamic is None else tuple(dynamic), with_dynamic, json_fields, converters)


def assemble(out: Output, values: dict[str, list[Any]], n: int) -> list[dict[str, Any]]:
    """Column lists -> row dicts, merging dynamic keys at the top level as Milvus does."""
    rows: list[dict[str, Any]] = [{} for _ in range(n)]
    convert = dict(out.converters)
    for name in out.fields:
        col = values[name]
        if name in out.json_fields:
            col = [None if v is None else json.loads(v) for v in col]
        elif name in convert:
            col = convert[name](col)
        for r, v in zip(rows, col, strict=True):
            r[name] = v
    if out.with_dynamic:
        for r, text in zip(rows, values[DYNAMIC_FIELD], strict=True):
            meta = json.loads(text) if text else {}
            if out.dynamic is None:
                for k, v in meta.items():
                    r.setdefault(k, v)
            else:
                for k in out.dynamic:
                    if k in meta:
                        r[k] = meta[k]
    return rows


Selector = Callable[[SegmentView], np.ndarray]


def selection(view: SegmentView, ts: int, flt: Filter | None, extra: Selector | None) -> np.ndarray | None:
    """The rows of ``view`` a read may return: visible at ``ts``, selected by ``extra``
    (partitions, ids) and matching the filter — as a mask, or None for every row.

    None is the common case worth a shortcut: a sealed segment nobody deleted from, read
    without a filter, needs no mask at all (a search then passes no bitmap to its index)."""
    if extra is None and view.all_visible(ts):
        # Every row is live: the filter's answer is the selection (with scalar indexes,
        # read from posting lists without touching the rows).
        return None if flt is None else flt.evaluate(view)
    mask = view.visible(ts)
    if extra is not None:
        mask &= extra(view)
    if flt is not None and mask.any():
        mask &= flt.evaluate(view)
    return mask


def select(snap: Snapshot, flt: Filter | None, extra: Selector | None = None) -> list[tuple[int, np.ndarray]]:
    """For each view, the row indices visible at the snapshot and matching the filter."""
    out = []
    for i, view in enumerate(snap.views):
        if view.num_rows == 0:
            continue
        mask = selection(view, snap.ts, flt, extra)
        rows = np.arange(view.num_rows) if mask is None else np.flatnonzero(mask)
        if rows.size:
            out.append((i, rows))
    return out


def pk_selector(pk_name: str, ids: list[Any]) -> Selector:
    values = pa.array(ids)

    def sel(view: SegmentView) -> np.ndarray:
        col = view.column(pk_name)
        return np.asarray(pc.is_in(col, value_set=values.cast(col.type)).to_numpy(zero_copy_only=False), dtype=bool)

    return sel


def count(snap: Snapshot, flt: Filter | None) -> int:
    if flt is None:
        return snap.live_count()
    # A popcount of each view's selection (index answer AND live rows), no row list.
    total = 0
    for view in snap.views:
        if view.num_rows:
            mask = selection(view, snap.ts, flt, None)
            total += view.num_rows if mask is None else int(np.count_nonzero(mask))
    return total


def query(
    snap: Snapshot,
    schema: CollectionSchema,
    flt: Filter | None,
    output_fields: Sequence[str] | None,
    limit: int | None = None,
    offset: int = 0,
    extra: Selector | None = None,
) -> list[dict[str, Any]]:
    """Matching rows ordered by primary key (what Milvus's merge of sorted results yields),
    then ``offset`` / ``limit`` applied."""
    check_window(limit, offset)
    if output_fields is not None and list(output_fields) == [COUNT]:
        if offset or limit:
            raise InvalidArgument("count(*) does not take limit or offset")
        if extra is None:
            return [{COUNT: count(snap, flt)}]
        return [{COUNT: sum(int(r.size) for _, r in select(snap, flt, extra))}]
    out = resolve_output(schema, output_fields)
    pk = schema.primary.name
    if limit is not None and extra is None and schema.primary.dtype == DataType.INT64:
        bound = (None, True) if flt is None else flt.key_lower_bound(pk)
        if bound is not None:
            view_of, row_of = _key_range_page(snap, pk, bound[0], bound[1], offset + limit)
            return materialize(snap, out, pk, view_of[offset:], row_of[offset:], include_pk=True)
    parts = select(snap, flt, extra)
    if not parts:
        return []
    pks = np.concatenate([numpy_of(snap.views[i].column(pk).take(pa.array(rows))) for i, rows in parts])
    view_of = np.concatenate([np.full(rows.size, i, dtype=np.int64) for i, rows in parts])
    row_of = np.concatenate([rows for _, rows in parts])
    end = None if limit is None else offset + limit
    if end is not None and end < len(pks) // 4 and pks.dtype.kind in "iu":
        # A page of a big result (query_iterator): select the first `end` keys in O(n),
        # sort only those, instead of sorting every match.
        part = np.argpartition(pks, end - 1)[:end] if end else np.empty(0, dtype=np.int64)
        order = part[np.argsort(pks[part], kind="stable")][offset:]
    else:
        order = np.argsort(pks, kind="stable")[offset:end]
    return materialize(snap, out, pk, view_of[order], row_of[order], include_pk=True)


def _key_range_page(
    snap: Snapshot, pk: str, lower: int | None, inclusive: bool, want: int
) -> tuple[np.ndarray, np.ndarray]:
    """The first ``want`` visible rows with key above ``lower``, in key order, reading only
    about ``want`` rows per segment through each segment's key-sorted order — a range scan,
    so paging through N rows costs O(N) in all instead of O(N) per page."""
    keys, views, rows = [], [], []
    for vi, view in enumerate(snap.views):
        if not view.num_rows or not want:
            continue
        seg = view.segment
        pks = numpy_of(view.column(pk)) if not isinstance(seg, SealedSegment) else seg.pk_numpy()
        order = seg.pk_order() if isinstance(seg, SealedSegment) else np.argsort(pks, kind="stable")
        start = 0
        if lower is not None:
            start = int(np.searchsorted(pks[order], lower, side="left" if inclusive else "right"))
        taken: list[np.ndarray] = []
        n_taken = 0
        step = max(want, 1024)
        while start < len(order) and n_taken < want:
            idx = order[start : start + step]
            vis = (view.ts[idx] <= snap.ts) & (view.deleted_at[idx] > snap.ts) & (view.ts[idx] > view.expire_before)
            hit = idx[vis][: want - n_taken]
            taken.append(hit)
            n_taken += hit.size
            start += step
            step *= 2
        if n_taken:
            r = np.concatenate(taken)
            keys.append(pks[r])
            views.append(np.full(r.size, vi, dtype=np.int64))
            rows.append(r)
    if not keys:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    k = np.concatenate(keys)
    first = np.argsort(k, kind="stable")[:want]
    return np.concatenate(views)[first], np.concatenate(rows)[first]


def materialize(
    snap: Snapshot,
    out: Output,
    pk: str,
    view_of: np.ndarray,
    row_of: np.ndarray,
    *,
    include_pk: bool,
) -> list[dict[str, Any]]:
    """Fetch the output columns for (view, row) pairs, preserving their order."""
    n = len(row_of)
    cols = list(dict.fromkeys(([pk] if include_pk else []) + out.columns))
    values = fetch_columns(snap, view_of, row_of, cols)
    fields = tuple(dict.fromkeys(((pk,) if include_pk else ()) + out.fields))
    return assemble(dataclasses.replace(out, fields=fields), values, n)


def fetch_columns(snap: Snapshot, view_of: np.ndarray, row_of: np.ndarray, cols: list[str]) -> dict[str, list[Any]]:
    """The stored values of ``cols`` at (view, row) pairs, in the pairs' order: one ``take``
    per segment the pairs fall in."""
    n = len(row_of)
    values: dict[str, list[Any]] = {c: [None] * n for c in cols}
    if n and (view_of == view_of[0]).all():  # all from one segment: no regrouping
        groups = [(int(view_of[0]), np.arange(n), row_of)]
    else:
        groups = [(int(i), pos, row_of[pos]) for i in np.unique(view_of) for pos in [np.flatnonzero(view_of == i)]]
    for i, pos, rows in groups:
        got = snap.views[i].take(rows, cols)
        for c in cols:
            dest = values[c]
            for p, v in zip(pos.tolist(), got[c], strict=True):
                dest[p] = v
    return values


def check_window(limit: int | None, offset: int) -> None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidArgument(f"limit must be a non-negative integer, got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or offset < 0:
        raise InvalidArgument(
            f"invalid max query result window, offset [{offset}] is invalid, should be gte than 0: "
            f"offset must be a non-negative integer, got {offset!r}"
        )
    if limit is not None and limit + offset > MAX_LIMIT:
        raise InvalidArgument(
            f"invalid max query result window, (offset+limit) should be in range [1, {MAX_LIMIT}], "
            f"but got {limit + offset}"
        )
