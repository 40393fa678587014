"""Searches whose answer is more than one search's top-k: hybrid search (several searches
fused by a ranker), a search reranked by a function, and grouping search.

Everything here runs on ONE snapshot handed in by the caller: every sub-search of a hybrid
search sees the same rows (MVCC), so a row deleted or overwritten between two sub-searches
cannot be fused from two versions, or found by one search and missed by the other.

The stages of ``search.py`` are reused: ``collect`` gives each query's hits as (distance,
view, row); the hits' primary keys (and the group / decay field) are fetched for just those
rows; ``rankers.py`` turns the per-search lists into one; ``materialise`` reads the output
fields of the hits that are kept. A (view, row) is one row version, and at one snapshot a
primary key has one visible version, so the primary key identifies a hit across searches.

**Grouping** (``group_by_field``): the best ``limit`` groups, each with up to
``group_size`` hits, group by group, groups ranked by their best hit. keeldb's grouped
search is exact with respect to the index's candidates: it asks the per-field search for
more hits (x4 each round) until the first ``offset + limit`` groups are each full or the
candidates are exhausted, so a group is never returned short while it has rows left.
Milvus's ``strict_group_size`` asks its approximate grouping to try harder to fill groups;
keeldb's groups are always filled when the data allows, so both settings give the same
answer for a plain search. After a ranker (hybrid search) grouping follows Milvus's
``newGroupingIDScores`` (``rankers.group_fused``), where ``strict_group_size`` drops groups
that stayed short.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from keeldb.engine import boost as boosting
from keeldb.engine import rankers
from keeldb.engine.expr import Filter, parse_filter
from keeldb.engine.query import Selector, fetch_columns
from keeldb.engine.search import MAX_TOPK, Hits, SearchRequest, check, collect
from keeldb.engine.snapshot import Snapshot
from keeldb.errors import InvalidArgument
from keeldb.fields.defaults import MILVUS_TYPE_NAMES
from keeldb.schema import CollectionSchema, DataType

__all__ = [
    "Grouping",
    "Route",
    "boosted",
    "check_boost",
    "check_grouping",
    "check_ranker",
    "grouped",
    "ranked",
]

MAX_REQUESTS = 1024  # Milvus's limit on the searches of one hybrid search
# Field types a search can be grouped by (Milvus 2.6: integers, bool, varchar).
GROUPABLE = frozenset(
    {DataType.BOOL, DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.VARCHAR}
)
# Field types a decay ranker reads (Milvus: "only support numeric field").
DECAYABLE = frozenset(
    {DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64, DataType.FLOAT, DataType.DOUBLE}
)


@dataclass(frozen=True)
class Route:
    """One search of a hybrid search: its request (``limit`` = its own top-k, offset 0),
    its filter, and the rows it may see besides (partitions)."""

    req: SearchRequest
    flt: Filter | None
    extra: Selector | None = None


@dataclass(frozen=True)
class Grouping:
    field: str
    size: int = 1
    strict: bool = False
    scorer: str = "max"  # how a group's score is made after a ranker: max, sum, avg


def check_grouping(schema: CollectionSchema, g: Grouping, limit: int) -> None:
    """InvalidArgument unless ``g`` groups by a scalar field Milvus groups by."""
    f = schema.field(g.field)
    if f is None:
        raise InvalidArgument(f"groupBy field({g.field}) not found in schema")
    if f.dtype not in GROUPABLE:
        raise InvalidArgument(f"unsupported data type {f.dtype.name} for group by operator")
    if isinstance(g.size, bool) or not isinstance(g.size, int) or g.size < 1:
        raise InvalidArgument(f"group_size must be a positive integer, got {g.size!r}")
    if limit * g.size > MAX_TOPK:
        raise InvalidArgument(
            f"limit * group_size must be at most {MAX_TOPK}, got {limit} * {g.size}"
        )
    if g.scorer not in rankers.GROUP_SCORERS:
        raise InvalidArgument(f"input group scorer type: {g.scorer} is not supported!")


def check_ranker(schema: CollectionSchema, ranker: rankers.Ranker, n_routes: int) -> None:
    """Refuse, before any search runs, a ranker that cannot apply to these searches."""
    if isinstance(ranker, rankers.Weighted) and len(ranker.weights) != n_routes:
        raise InvalidArgument(
            f"the length of weights param mismatch with ann search requests: invalid parameter"
            f"[expected={n_routes}][actual={len(ranker.weights)}]"
        )
    if isinstance(ranker, rankers.Decay):
        f = schema.field(ranker.field)
        if f is None:
            raise rankers.RankerError(f"Function input field not found: {ranker.field}")
        if f.dtype not in DECAYABLE:
            # Milvus's words, its spelling included: clients match on them.
            raise rankers.RankerError(
                f"Decay rerank: unsupported input field type:{MILVUS_TYPE_NAMES.get(f.dtype, f.dtype.name)}, "
                "only support numberic field"
            )
        if f.nullable:
            raise rankers.RankerError(f"Function input field cannot be nullable: field {f.name}")


def _with_ef(req: SearchRequest, k: int) -> SearchRequest:
    """``req`` asking for ``k`` hits; an explicit HNSW ``ef`` is raised to ``k`` (it must be
    at least the top-k)."""
    params = dict(req.params)
    if "ef" in params:
        try:
            params["ef"] = max(int(params["ef"]), k)
        except (TypeError, ValueError):
            pass  # left for the executor to refuse
    return replace(req, limit=k, offset=0, params=params)


def _pick_groups(values: list[Any], need: int, size: int) -> tuple[list[list[int]], bool]:
    """Hit positions per group (groups in order of their best hit, each its best ``size``),
    and whether the first ``need`` groups are all full."""
    buckets: dict[Hashable, list[int]] = {}
    for pos, v in enumerate(values):
        members = buckets.setdefault(v, [])
        if len(members) < size:
            members.append(pos)
    groups = list(buckets.values())
    full = len(groups) >= need and all(len(g) >= size for g in groups[:need])
    return groups, full


def grouped(snap: Snapshot, route: Route, g: Grouping, limit: int, offset: int) -> Hits:
    """A grouped search: per query, the groups from ``offset`` to ``offset + limit``, each
    with its best ``g.size`` hits, group by group (see the module doc for why it is exact)."""
    check(replace(route.req, limit=limit, offset=offset))
    need = offset + limit
    total = sum(v.num_rows for v in snap.views)
    k = max(1, min(need * g.size * 2, total))
    while True:
        hits = collect(snap, _with_ef(route.req, k), route.flt, route.extra)
        out: Hits = []
        done = True
        for dist, views, rows in hits:
            values = fetch_columns(snap, views, rows, [g.field])[g.field]
            groups, full = _pick_groups(values, need, g.size)
            exhausted = len(rows) < k or k >= total
            done = done and (full or exhausted)
            pos = np.array([p for grp in groups[offset:need] for p in grp], dtype=np.int64)
            out.append((dist[pos], views[pos], rows[pos]))
        if done:
            return out
        k = min(k * 4, total)


def ranked(
    snap: Snapshot,
    routes: Sequence[Route],
    ranker: rankers.Ranker,
    *,
    pk: str,
    limit: int,
    offset: int = 0,
    round_decimal: int = -1,
    grouping: Grouping | None = None,
) -> Hits:
    """Several searches (or one) fused by ``ranker``: per query, the hits from ``offset`` to
    ``offset + limit`` with their fused scores (rounded to ``round_decimal`` places unless
    it is -1), best first."""
    if not 1 <= len(routes) <= MAX_REQUESTS:
        raise InvalidArgument(
            f"a hybrid search takes 1 to {MAX_REQUESTS} search requests, got {len(routes)}"
        )
    check(SearchRequest(field="", queries=None, metric="", limit=limit, offset=offset))
    if snap.schema is not None:
        check_ranker(snap.schema, ranker, len(routes))
    for r in routes:
        check(r.req)
    per_route: list[Hits] = []
    for r in routes:
        if grouping is not None:
            per_route.append(grouped(snap, r, grouping, r.req.limit, 0))
        else:
            per_route.append(collect(snap, r.req, r.flt, r.extra))
    nqs = {len(h) for h in per_route}
    if len(nqs) != 1:
        raise InvalidArgument(
            f"every search request of a hybrid search must have the same nq, got {sorted(nqs)}"
        )
    extra_fields = [
        f for f in (getattr(ranker, "field", None), grouping.field if grouping else None) if f
    ]
    results: Hits = []
    for qi in range(nqs.pop()):
        lists: list[rankers.RouteHits] = []
        where: dict[Hashable, tuple[int, int]] = {}
        seen: dict[Hashable, dict[str, Any]] = {}
        for r, hits in zip(routes, per_route, strict=True):
            dist, views, rows = hits[qi]
            got = fetch_columns(snap, views, rows, [pk, *extra_fields])
            keys = got[pk]
            for i, key in enumerate(keys):
                if key not in where:
                    where[key] = (int(views[i]), int(rows[i]))
                    seen[key] = {f: got[f][i] for f in extra_fields}
            lists.append(rankers.RouteHits(keys, dist.tolist(), r.req.metric))
        decay_values = (
            {k: v[ranker.field] for k, v in seen.items()}
            if isinstance(ranker, rankers.Decay)
            else None
        )
        scores, descending = rankers.fuse(ranker, lists, decay_values)
        if grouping is not None:
            keep = rankers.group_fused(
                scores, {k: v[grouping.field] for k, v in seen.items()}, limit=limit, offset=offset,
                group_size=grouping.size, strict=grouping.strict, scorer=grouping.scorer,
            )  # fmt: skip
        else:
            keep = rankers.order(scores, descending)[offset : offset + limit]
        results.append(
            (
                np.array(
                    [rankers.round_score(scores[k], round_decimal) for k in keep], dtype=np.float64
                ),
                np.array([where[k][0] for k in keep], dtype=np.int64),
                np.array([where[k][1] for k in keep], dtype=np.int64),
            )
        )
    return results


def _go_type(dtype: DataType) -> str:
    """A data type as Milvus's Go ``DataType.String()`` spells it (Int32, VarChar, ...)."""
    special = {DataType.VARCHAR: "VarChar", DataType.JSON: "JSON"}
    return special.get(dtype) or "".join(p.capitalize() for p in dtype.name.split("_"))


def check_boost(
    schema: CollectionSchema,
    boost: boosting.Boost,
    filter_params: dict[str, Any] | None = None,
    timezone: str = "UTC",
) -> list[Filter | None]:
    """Each boost function's filter, parsed against ``schema``, after checking its random
    field (Milvus's CreateSearchScorer): refused before any search runs."""
    out: list[Filter | None] = []
    for fn in boost.functions:
        flt = None
        if fn.filter is not None:
            try:
                flt = parse_filter(fn.filter, schema, filter_params, timezone)
            except InvalidArgument as e:
                raise rankers.RankerError(f"parse expr failed with error: {{{e}}}") from None
        if fn.random and fn.field is not None:
            f = schema.field(fn.field)
            if f is None:
                raise InvalidArgument(
                    f"random seed field not found: field not found[field={fn.field}]"
                )
            if f.dtype != DataType.INT64:
                raise InvalidArgument(
                    f"only support int64 field as random seed, but got {_go_type(f.dtype)}"
                )
        out.append(flt)
    return out


def boosted(
    snap: Snapshot,
    route: Route,
    boost: boosting.Boost,
    filters: Sequence[Filter | None],
    *,
    pk: str,
    limit: int,
    offset: int = 0,
    round_decimal: int = -1,
) -> Hits:
    """A search rescored by a boost ranker (engine/boost.py): per query, its first
    ``offset + limit`` hits, each function's filter evaluated on them, their scores
    combined, re-sorted in the metric's direction (ties: the smaller primary key), and the
    hits from ``offset`` to ``offset + limit`` returned."""
    check(replace(route.req, limit=limit, offset=offset))
    hits = collect(snap, replace(route.req, limit=limit + offset, offset=0), route.flt, route.extra)
    descending = rankers.larger_is_better(route.req.metric)
    fields = list(dict.fromkeys([pk, *(f.field for f in boost.functions if f.random and f.field)]))
    masks: dict[tuple[int, int], np.ndarray] = {}  # (function, view) -> matching rows

    def matches(fi: int, view: int) -> np.ndarray:
        if (fi, view) not in masks:
            masks[fi, view] = filters[fi].evaluate(snap.views[view])  # type: ignore[union-attr]
        return masks[fi, view]

    out: Hits = []
    for dist, views, rows in hits:
        got = fetch_columns(snap, views, rows, fields)
        scored: list[tuple[float, Any, int]] = []
        for i in range(len(rows)):
            values: list[float | None] = []
            for fi, fn in enumerate(boost.functions):
                if filters[fi] is not None and not matches(fi, int(views[i]))[int(rows[i])]:
                    values.append(None)
                    continue
                if not fn.random:
                    values.append(fn.weight)
                    continue
                key = got[fn.field][i] if fn.field else got[pk][i]
                r = np.float32(boosting.hash_to_unit(boosting.key_of(key), fn.seed))
                values.append(float(r * np.float32(fn.weight)))
            scored.append((boost.combine(float(dist[i]), values), got[pk][i], i))
        sign = -1.0 if descending else 1.0
        scored.sort(key=lambda t: (sign * t[0], t[1]))
        page = scored[offset : offset + limit]
        idx = np.array([t[2] for t in page], dtype=np.int64)
        out.append(
            (
                np.array(
                    [rankers.round_score(t[0], round_decimal) for t in page], dtype=np.float64
                ),
                views[idx] if len(idx) else views[:0],
                rows[idx] if len(idx) else rows[:0],
            )
        )
    return out


def round_hits(hits: Hits, decimals: int) -> Hits:
    """``round_decimal`` on a plain search's distances."""
    if decimals == -1:
        return hits
    return [
        (np.array([rankers.round_score(float(d), decimals) for d in dist.tolist()]), v, r)
        for dist, v, r in hits
    ]
