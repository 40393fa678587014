"""ORDER BY for query and search: Milvus 2.6/3.0's ``order_by_fields``.

pymilvus sends one string, ``"price:desc,name"`` (its ``order_by_fields=[{"field": "price",
"order": "desc"}, ...]`` joined), in a query's ``query_params`` or a search's
``search_params``. Each item is ``field[:direction[:nulls]]``: direction ``asc`` (the
default), ``desc``, ``ascending`` or ``descending``; nulls ``nulls_first`` or ``nulls_last``,
by default last when ascending and first when descending (PostgreSQL's rule, Milvus's
``orderby.ParseOrderByFields``). Nulls keep their place whatever the direction.

Sortable: bool (false < true), the integers, float, double and varchar (compared by code
point, i.e. UTF-8 bytes). Vectors, arrays, JSON, geometry and timestamptz fields are refused.

**Query** (Milvus sorts in segcore, then merges): every matching row is ranked by the keys,
ties by primary key -- the order a query returns without ``order_by`` -- so the answer is
deterministic; then ``offset`` / ``limit``. Milvus requires a limit ("ORDER BY requires
explicit limit") and refuses iterators; only schema fields may be named.

**Search** (Milvus's proxy ``orderByOperator``, after the search): the ``offset + limit``
best hits by score are re-sorted by the keys with a stable sort (hits that tie keep their
score order), then ``offset`` / ``limit`` applied. A grouped search sorts whole groups by
their first hit. A search may also name a dynamic key (``age``) or a path inside a JSON
field or the dynamic field (``meta["price"]``, ``user["profile"]["score"]``): a missing key
or JSON null is null; numbers compare as numbers, strings as strings, booleans as booleans,
and values of different JSON types by their JSON text, as Milvus compares ``gjson`` raws --
which amounts to strings < numbers < arrays < booleans < objects.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keeldb.engine.expr import Filter
from keeldb.engine.query import (
    COUNT,
    Selector,
    check_window,
    fetch_columns,
    materialize,
    resolve_output,
    select,
)
from keeldb.engine.snapshot import Snapshot
from keeldb.errors import InvalidArgument
from keeldb.schema import DYNAMIC_FIELD, CollectionSchema, DataType

__all__ = ["SORTABLE", "OrderKey", "order_hits", "order_rows", "ordered_query", "parse_order_by", "spec_text"]

Hits = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per query: (distances, views, rows)
Path = tuple[str | int, ...]

SORTABLE = frozenset(
    {
        DataType.BOOL, DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64,
        DataType.FLOAT, DataType.DOUBLE, DataType.VARCHAR,
    }
)  # fmt: skip
_DIRECTIONS = {"": True, "asc": True, "ascending": True, "desc": False, "descending": False}
_NULLS = {"nulls_first": True, "nulls_last": False}
_STEP = re.compile(r"\[\s*(?:\"((?:[^\"\\]|\\.)*)\"|(-?\d+))\s*\]")


@dataclass(frozen=True)
class OrderKey:
    """One sort key: a schema field, or a ``path`` inside a JSON field / the dynamic field."""

    field: str
    path: Path = ()
    ascending: bool = True
    nulls_first: bool = False

    @property
    def is_json(self) -> bool:
        return bool(self.path)


def spec_text(spec: Any) -> str:
    """The embedded client's forms as the one string pymilvus sends: a list of
    ``{"field": ..., "order": ...}`` dicts or of ``"field:dir"`` strings, or that string."""
    if spec is None:
        return ""
    if isinstance(spec, str):
        return spec
    if not isinstance(spec, list | tuple):
        raise InvalidArgument(f"order_by_fields must be a list of {{'field', 'order'}} dicts, got {spec!r}")
    items = []
    for item in spec:
        if isinstance(item, str):
            items.append(item)
        elif isinstance(item, dict):
            field = item.get("field")
            if not isinstance(field, str) or not field.strip():
                raise InvalidArgument("Invalid order_by_fields item: 'field' key is required and cannot be empty")
            order = item.get("order", "asc")
            if not isinstance(order, str):
                raise _bad_direction(repr(order), field)
            items.append(f"{field}:{order}")
        else:
            raise InvalidArgument(
                f"Invalid order_by_fields item format, expect dict with 'field' and 'order' keys, got {type(item)}"
            )
    return ",".join(items)


def parse_order_by(spec: Any, schema: CollectionSchema, *, search: bool) -> tuple[OrderKey, ...]:
    """The keys of ``spec`` (see ``spec_text``), checked against ``schema``; InvalidArgument
    names the first bad item. ``search`` also admits dynamic keys and JSON paths."""
    keys: list[OrderKey] = []
    for item in spec_text(spec).split(","):
        item = item.strip()
        if not item:
            continue
        parts = [p.strip() for p in _split_colons(item)]
        name = parts[0]
        if not name:
            raise InvalidArgument("empty field name in order_by_fields")
        if len(parts) > 3:
            raise InvalidArgument(
                f"invalid order_by item '{item}': expected field[:asc|desc[:nulls_first|nulls_last]]"
            )
        direction = parts[1].lower() if len(parts) > 1 else ""
        if direction not in _DIRECTIONS:
            raise _bad_direction(f"'{parts[1]}'", name)
        ascending = _DIRECTIONS[direction]
        nulls_first = not ascending
        if len(parts) > 2:
            nulls = parts[2].lower()
            if nulls not in _NULLS:
                raise InvalidArgument(f"invalid null ordering '{parts[2]}', must be 'nulls_first' or 'nulls_last'")
            nulls_first = _NULLS[nulls]
        field, path = _resolve(name, schema, search)
        keys.append(OrderKey(field, path, ascending, nulls_first))
    return tuple(keys)


def _bad_direction(direction: str, field: str) -> InvalidArgument:
    return InvalidArgument(f"invalid order direction {direction} for field '{field}', must be 'asc' or 'desc'")


def _split_colons(item: str) -> list[str]:
    """``item`` split at the colons outside brackets (``meta["a:b"]:desc``)."""
    parts, depth, start, quoted = [], 0, 0, False
    for i, ch in enumerate(item):
        if ch == '"' and depth and (i == 0 or item[i - 1] != "\\"):
            quoted = not quoted
        elif quoted:
            continue
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        elif ch == ":" and depth == 0:
            parts.append(item[start:i])
            start = i + 1
    parts.append(item[start:])
    return parts


def _resolve(name: str, schema: CollectionSchema, search: bool) -> tuple[str, Path]:
    """(column, JSON path) of an order-by field name; Milvus's messages for bad names."""
    f = schema.field(name)
    if f is not None:
        if f.dtype not in SORTABLE or schema.bm25_input(name) is not None:
            json_hint = search and f.dtype == DataType.JSON
            hint = '; for JSON fields use path syntax like field["key"]' if json_hint else ""
            raise InvalidArgument(
                f"order_by field '{name}' has type {f.dtype.name} which is not sortable; supported types: "
                f"bool, int8/16/32/64, float, double, varchar{hint}"
            )
        return name, ()
    if not search:
        raise InvalidArgument(f"order_by field '{name}' does not exist in collection schema")
    base, bracket, rest = name.partition("[")
    base = base.strip()
    path = _path(name, "[" + rest) if bracket else ()
    bf = schema.field(base)
    if bf is not None:
        if not bracket:  # unreachable: a schema name without brackets matched above
            raise InvalidArgument(f"order_by field '{name}' does not exist in collection schema")
        if bf.dtype != DataType.JSON:
            raise InvalidArgument(f"order_by field '{name}' has brackets but is not a JSON type")
        return base, path
    if schema.enable_dynamic_field:
        if base == DYNAMIC_FIELD and path:
            return DYNAMIC_FIELD, path
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", base):
            raise InvalidArgument(f"invalid dynamic field key '{base}' in order_by field '{name}'")
        return DYNAMIC_FIELD, (base, *path)
    if bracket:
        raise InvalidArgument(f"order_by field '{base}' not found in schema and no dynamic field available")
    raise InvalidArgument(f"order_by field '{name}' does not exist in collection schema")


def _path(name: str, text: str) -> Path:
    steps: list[str | int] = []
    pos = 0
    while pos < len(text):
        m = _STEP.match(text, pos)
        if m is None:
            raise InvalidArgument(f"invalid JSON path in order_by field '{name}'")
        steps.append(json.loads(f'"{m.group(1)}"') if m.group(1) is not None else int(m.group(2)))
        pos = m.end()
    if not steps:
        raise InvalidArgument(f"invalid JSON path in order_by field '{name}'")
    return tuple(steps)


# -- query ----------------------------------------------------------------------------------


def ordered_query(
    snap: Snapshot,
    schema: CollectionSchema,
    flt: Filter | None,
    output_fields: Sequence[str] | None,
    keys: Sequence[OrderKey],
    limit: int | None,
    offset: int = 0,
    extra: Selector | None = None,
) -> list[dict[str, Any]]:
    """``query.query`` with ``order_by_fields``: the matching rows ranked by ``keys`` (ties
    by primary key), then ``offset`` / ``limit`` (which Milvus requires)."""
    if limit is None:
        raise InvalidArgument("ORDER BY requires explicit limit")
    check_window(limit, offset)
    if output_fields is not None and [n.strip() for n in output_fields if isinstance(n, str)] == [COUNT]:
        raise InvalidArgument(
            f"ORDER BY field '{keys[0].field}' is not valid: when using GROUP BY or aggregates, "
            "ORDER BY can only reference GROUP BY columns. Valid targets are: []"
        )
    out = resolve_output(schema, output_fields)
    pk = schema.primary.name
    parts = select(snap, flt, extra)
    if not parts or not limit:
        return []
    views, rows = order_rows(snap, keys, pk, parts, offset, limit)
    return materialize(snap, out, pk, views, rows, include_pk=True)



def order_rows(
    snap: Snapshot,
    keys: Sequence[OrderKey],
    pk: str,
    parts: list[tuple[int, np.ndarray]],
    offset: int,
    limit: int,
) -> tuple[np.ndarray, np.ndarray]:
    """(views, rows) of the matching rows (``parts``: per view, its selected rows) ranked by
    ``keys`` then primary key, from ``offset`` to ``offset + limit``. Arrow sorts all of them,
    or for a small page selects the first ``offset + limit`` (with the primary key last the
    order is total, so the unstable selection is exact)."""
    assert all(not k.is_json for k in keys), "queries order by schema fields only"
    view_of = np.concatenate([np.full(rows.size, i, dtype=np.int64) for i, rows in parts])
    row_of = np.concatenate([rows for _, rows in parts])
    cols: dict[str, Any] = {}
    sort_keys: list[tuple[str, str]] = []
    for j, k in enumerate(keys):
        col = _column(snap, k.field, parts)
        if col.null_count:
            cols[f"n{j}"] = pc.is_null(col)
            sort_keys.append((f"n{j}", "descending" if k.nulls_first else "ascending"))
        cols[f"k{j}"] = col
        sort_keys.append((f"k{j}", "ascending" if k.ascending else "descending"))
    cols["pk"] = _column(snap, pk, parts)
    sort_keys.append(("pk", "ascending"))
    table = pa.table(cols)
    end = offset + limit
    if end * 40 <= table.num_rows:  # a heap of `end` beats the sort up to ~n/40 (1M rows: 25k)
        order = pc.select_k_unstable(table, end, sort_keys=sort_keys)
    else:
        order = pc.sort_indices(table, sort_keys=sort_keys)
    idx = order.to_numpy()[offset:end]
    return view_of[idx], row_of[idx]


def _column(snap: Snapshot, name: str, parts: list[tuple[int, np.ndarray]]) -> pa.Array:
    pieces: list[pa.Array] = []
    for i, rows in parts:
        pieces.extend(snap.views[i].column(name).take(pa.array(rows, type=pa.int64())).chunks)
    if not pieces:
        return pa.array([])
    t = pieces[0].type
    return pa.chunked_array([p if p.type == t else p.cast(t) for p in pieces], type=t).combine_chunks()


# -- search ---------------------------------------------------------------------------------


def order_hits(
    snap: Snapshot,
    hits: Hits,
    keys: Sequence[OrderKey],
    offset: int,
    limit: int,
    group_field: str | None = None,
) -> Hits:
    """Each query's hits (best first) stably re-sorted by ``keys``, from ``offset`` to
    ``offset + limit``; with ``group_field`` the hits come group by group and whole groups
    are sorted by their first hit, ``offset`` / ``limit`` counting groups."""
    out: Hits = []
    for dist, views, rows in hits:
        n = len(rows)
        if n == 0:
            out.append((dist, views, rows))
            continue
        names = list(dict.fromkeys([k.field for k in keys] + ([group_field] if group_field else [])))
        got = fetch_columns(snap, views, rows, names)
        values = [_key_values(k, got[k.field]) for k in keys]
        if group_field is None:
            units = [[i] for i in range(n)]
        else:
            units = _runs(got[group_field])
        firsts = [u[0] for u in units]
        order = _stable_order([[v[i] for i in firsts] for v in values], keys)
        pos = np.array([i for u in order[offset : offset + limit] for i in units[u]], dtype=np.int64)
        out.append((dist[pos], views[pos], rows[pos]))
    return out


def _runs(values: list[Any]) -> list[list[int]]:
    """Positions grouped into runs of equal consecutive values (a grouped search's groups)."""
    runs: list[list[int]] = []
    for i, v in enumerate(values):
        if runs and values[runs[-1][0]] == v:
            runs[-1].append(i)
        else:
            runs.append([i])
    return runs


_MISSING = object()


def _key_values(k: OrderKey, stored: list[Any]) -> list[Any]:
    """A key's comparable value per hit, None for null: the stored value, or for a JSON path
    the (type rank, value) of what the path finds (module doc)."""
    if not k.is_json:
        return stored
    out: list[Any] = []
    for text in stored:
        v: Any = _MISSING if text is None else json.loads(text)
        for step in k.path:
            if isinstance(step, str) and isinstance(v, dict):
                v = v.get(step, _MISSING)
            elif isinstance(step, int) and isinstance(v, list) and -len(v) <= step < len(v):
                v = v[step]
            else:
                v = _MISSING
                break
        out.append(None if v is _MISSING or v is None else _json_rank(v))
    return out


def _json_rank(v: Any) -> tuple[int, Any]:
    if isinstance(v, str):
        return (0, v)
    if isinstance(v, bool):
        return (3, v)
    if isinstance(v, int | float):
        return (1, v)
    text = json.dumps(v, separators=(",", ":"), ensure_ascii=False)
    return (2 if isinstance(v, list) else 4, text)


def _stable_order(columns: list[list[Any]], keys: Sequence[OrderKey]) -> list[int]:
    """Positions ordered by the keys, lexicographically, stable: one stable sort per key,
    the last key first. Nulls go first or last whatever the direction."""
    order = list(range(len(columns[0]) if columns else 0))
    for col, k in reversed(list(zip(columns, keys, strict=True))):
        present = [i for i in order if col[i] is not None]
        nulls = [i for i in order if col[i] is None]
        key: Callable[[int], Any] = col.__getitem__
        present.sort(key=key, reverse=not k.ascending)  # reverse keeps ties in order
        order = nulls + present if k.nulls_first else present + nulls
    return order
