"""Vector search over a snapshot, as a pipeline of four stages.

(a) **selection**, per segment: the rows the search may return — MVCC visibility at the
    snapshot AND the partition selector AND the filter (``query.selection``, the same rule
    queries use). It is applied *before* ranking, so a filtered search returns k hits
    whenever at least k rows qualify, and a deleted or overwritten version never ranks;
(b) **candidates**, per segment: the executor for the searched field's kind turns (segment
    view, selection, request) into each query's best candidates in that segment
    (``executor.py``; dense float vectors through an index or exactly, ``dense_search.py``);
(c) **merge**: every segment's candidates into each query's top offset + limit, then the
    offset is cut;
(d) **materialise**: the hits' ids and output fields.

Rankers and grouping (``hybrid.py``) sit between (c) and (d): they take each query's merged
hits from ``collect`` -- distances and (view, row) handles -- fetch what they need (primary
keys, a group or decay field), and hand the hits they keep to ``materialise``.
Everything stays vectorised per segment; Python loops only over queries and returned hits.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from keeldb.engine.binary_search import BinarySearch
from keeldb.engine.bm25 import METRIC as BM25
from keeldb.engine.bm25 import BM25Search
from keeldb.engine.dense_search import DenseSearch, prepare_queries
from keeldb.engine.executor import (
    Candidates,
    FieldExecutor,
    SearchRequest,
    SegmentSearch,
    larger_is_better,
)
from keeldb.engine.expr import Filter
from keeldb.engine.query import Output, Selector, fetch_columns, materialize, selection
from keeldb.engine.segment import Segment, SegmentView
from keeldb.engine.snapshot import Snapshot
from keeldb.engine.sparse_search import SparseSearch
from keeldb.engine.visibility import visible_mask
from keeldb.errors import InvalidArgument
from keeldb.fields import vector_kind_of
from keeldb.fields.float_vector import float_queries
from keeldb.index.params import SearchKnobs, search_knobs
from keeldb.schema import DataType

__all__ = [
    "EXECUTORS", "MAX_TOPK", "SearchRequest", "SoleSegmentSearch", "check", "collect", "materialise", "parse_queries",
    "plain", "recalls", "reusable_executor", "search", "sole_segment_search",
]  # fmt: skip

MAX_TOPK = 16384
Hits = list[tuple[np.ndarray, np.ndarray, np.ndarray]]  # per query: (distances, views, rows)

# The executor for each searchable field kind: a module implementing
# executor.SegmentSearch, and one line here.
EXECUTORS: dict[DataType, FieldExecutor] = {
    DataType.FLOAT_VECTOR: DenseSearch,
    DataType.FLOAT16_VECTOR: DenseSearch,
    DataType.BFLOAT16_VECTOR: DenseSearch,
    DataType.INT8_VECTOR: DenseSearch,
    DataType.BINARY_VECTOR: BinarySearch,
    DataType.SPARSE_FLOAT_VECTOR: SparseSearch,
}


def search(
    snap: Snapshot,
    req: SearchRequest,
    flt: Filter | None,
    out: Output,
    pk: str,
    extra: Selector | None = None,
) -> list[list[dict[str, Any]]]:
    check(req)
    return materialise(snap, out, pk, collect(snap, req, flt, extra))


def collect(
    snap: Snapshot, req: SearchRequest, flt: Filter | None, extra: Selector | None = None,
    plan: SegmentSearch | None = None,
) -> Hits:
    """Stages (a) to (c): each query's hits in rank order, as (distances, views, rows), from
    ``offset`` to ``offset + limit``. Not bounded by MAX_TOPK (a grouped search asks for as
    many as it needs; ``search`` checks the caller's limit). ``plan``: the request already
    prepared by its executor (``prepare``), when the caller keeps one."""
    if plan is None:
        plan = _executor(snap, req)(req)
    cands: list[Candidates] = []
    for vi, view in enumerate(snap.views):
        if view.num_rows == 0:
            continue
        mask, nsel = _selection(view, snap.ts, flt, extra)  # (a)
        if nsel == 0:
            continue
        cands.append(plan.candidates(view, vi, mask, nsel))  # (b)
    if not cands:
        empty = np.zeros(0, dtype=np.int64)
        return [(np.zeros(0, dtype=np.float32), empty, empty) for _ in range(plan.nq)]
    return _merge(cands, plan.nq, req)  # (c)


def reusable_executor(snap: Snapshot, req: SearchRequest) -> FieldExecutor | None:
    """The executor of ``req``'s field kind, checked against ``snap``'s schema, for later
    requests that differ from ``req`` only in their queries and snapshot (a caller keeping
    it skips the checks and the knobs' parsing per search); None for BM25, whose executor
    is bound to one snapshot's statistics."""
    executor = _executor(snap, req)
    if executor is DenseSearch or executor is BinarySearch:
        return functools.partial(executor, knobs=search_knobs(req.params, req.want))
    if executor in EXECUTORS.values():
        return executor
    return None


def _selection(view: SegmentView, ts: int, flt: Filter | None, extra: Selector | None) -> tuple[np.ndarray | None, int]:
    """(mask, selected rows) for one segment: without a filter or a partition selection, a
    sealed segment's visibility mask comes from its cache (``visibility.py``)."""
    if flt is None and extra is None:
        if view.all_visible(ts):  # a sealed segment nobody deleted from: no mask at all
            return None, view.num_rows
        cached = visible_mask(view, ts)
        if cached is not None:
            return cached
    mask = selection(view, ts, flt, extra)
    return mask, (view.num_rows if mask is None else int(np.count_nonzero(mask)))


def check(req: SearchRequest) -> None:
    """The caller's limit, offset and range bounds: InvalidArgument if out of bounds."""
    # Type checks first: a str offset or radius used to escape as TypeError / numpy's
    # UFuncTypeError from the comparisons below instead of InvalidArgument.
    for name, v in (("limit", req.limit), ("offset", req.offset)):
        if isinstance(v, bool) or not isinstance(v, int | np.integer):
            raise InvalidArgument(f"{name} must be an integer, got {v!r}")
    for name, bound in (("radius", req.radius), ("range_filter", req.range_filter)):
        if bound is not None and (
            isinstance(bound, bool)
            or not isinstance(bound, int | float | np.integer | np.floating)
            or not math.isfinite(bound)
        ):
            raise InvalidArgument(f"{name} must be a finite number, got {bound!r}")
    if not 1 <= req.limit <= MAX_TOPK:
        raise InvalidArgument(f"limit (top-k) must be in [1, {MAX_TOPK}], got {req.limit}")
    if req.offset < 0 or req.offset + req.limit > MAX_TOPK:
        raise InvalidArgument(f"offset + limit must be in [1, {MAX_TOPK}]")


def _executor(snap: Snapshot, req: SearchRequest) -> FieldExecutor:
    """The executor for the searched field's kind, after checking the metric is one the
    kind has (a snapshot without a schema is taken to search dense float vectors, the only
    kind there was before executors)."""
    name = req.field
    dtype = DataType.FLOAT_VECTOR
    if snap.schema is not None:
        f = snap.schema.field(name)
        if f is None:
            raise InvalidArgument(f"field {name!r} does not exist in the collection")
        dtype = f.dtype
    executor = EXECUTORS.get(dtype)
    if executor is None:
        raise InvalidArgument(f"field {name!r} ({dtype.name}) cannot be searched")
    bm25_field = snap.schema is not None and snap.schema.bm25_input(name) is not None
    if bm25_field != (req.metric == BM25):
        raise InvalidArgument(
            "must use BM25 metric type when searching against BM25 Function output field" if bm25_field
            else f"metric type BM25 applies to the output field of a BM25 function only; {name!r} is not one"
        )
    if bm25_field:  # scored with statistics of the whole snapshot, not segment by segment
        return lambda r: BM25Search(r, snap)
    metrics = vector_kind_of(dtype).metrics
    if req.metric not in metrics:
        raise InvalidArgument(
            f"metric type {req.metric} not found or not supported for {dtype.name}, supported: [{' '.join(metrics)}]"
        )
    return executor




def _merge(cands: list[Candidates], nq: int, req: SearchRequest) -> Hits:
    """Each query's hits in rank order, from ``offset`` to ``offset + limit``."""
    if len(cands) == 1 and cands[0].ranked and req.offset == 0 and cands[0].key.shape[1] <= req.want:
        c = cands[0]  # one segment's index answer, complete and in rank order: as it is
        if nq == 1:
            return [(c.dist[0], c.view[0], c.row[0])]
        return list(zip(c.dist, c.view, c.row, strict=True))
    if len(cands) == 1:  # one segment (the common case of a big collection): no merge
        keys, dists, views, rowsx = cands[0].key, cands[0].dist, cands[0].view, cands[0].row
    else:
        keys = np.concatenate([c.key for c in cands], axis=1)
        dists = np.concatenate([c.dist for c in cands], axis=1)
        views = np.concatenate([c.view for c in cands], axis=1)
        rowsx = np.concatenate([c.row for c in cands], axis=1)
    if not (len(cands) == 1 and req.offset == 0 and keys.shape[1] <= req.want and (keys[:, 1:] >= keys[:, :-1]).all()):
        # (Skipped for one index's answer already in rank order, what FAISS returns: a
        # stable sort would leave it as it is.)
        order = np.argsort(keys, axis=1, kind="stable")[:, req.offset : req.want]
        # Gathered for all queries at once (plain fancy indexing: np.take_along_axis costs
        # more than a 1-query HNSW walk's tenth); the per-query work left is slicing rows.
        at = (np.arange(nq)[:, None], order)
        keys, dists, views, rowsx = keys[at], dists[at], views[at], rowsx[at]
    found = np.isfinite(keys)
    if found.all():
        return list(zip(dists, views, rowsx, strict=True))
    return [(dists[qi, f], views[qi, f], rowsx[qi, f]) for qi, f in enumerate(found)]


def materialise(snap: Snapshot, out: Output, pk: str, hits: Hits) -> list[list[dict[str, Any]]]:
    """Stage (d): every query's hits as pymilvus-shaped dicts. The rows of all queries are fetched in
    ONE ``materialize`` call and split afterwards: per query, its fixed cost was half of a
    100-query batch's time above FAISS's own."""
    if not hits:
        return []
    if len(hits) == 1:  # one query (the commonest call): nothing to join
        dists, views, rows = hits[0][0].tolist(), hits[0][1], hits[0][2]
    else:
        views = np.concatenate([v for _, v, _ in hits])
        rows = np.concatenate([r for _, _, r in hits])
        dists = np.concatenate([d for d, _, _ in hits]).tolist()
    results: list[list[dict[str, Any]]] = []
    at = 0
    if not out.with_dynamic and (not out.fields or out.fields == (pk,)):
        # Ids only (the commonest search, with or without asking for the primary key): only
        # the ids are fetched, and no row dicts are assembled only to be emptied again (half
        # of a 1-query search's own time).
        ids = _ids(snap, views, rows, pk)
        with_pk = bool(out.fields)
        for d, _, _ in hits:
            end = at + len(d)
            pairs = zip(ids[at:end], dists[at:end], strict=True)
            if with_pk:
                results.append([{"id": i, "distance": x, "entity": {pk: i}} for i, x in pairs])
            else:
                results.append([{"id": i, "distance": x, "entity": {}} for i, x in pairs])
            at = end
        return results
    ents = materialize(snap, out, pk, views, rows, include_pk=True)
    keep_pk = pk in out.fields
    for d, _, _ in hits:
        found = []
        for j in range(at, at + len(d)):
            ent = ents[j]
            found.append({"id": ent[pk] if keep_pk else ent.pop(pk), "distance": dists[j], "entity": ent})
        results.append(found)
        at += len(d)
    return results


def plain(snap: Snapshot, req: SearchRequest, plan: SegmentSearch, out: Output, pk: str) -> list[list[dict[str, Any]]]:
    """``materialise(collect(...))`` for a search without filter or partition selection
    (``plan``: the request prepared by its executor). When the snapshot's only rows are one
    sealed segment, visible whole -- every big collection right after a flush or a
    compaction -- and its index answers every query completely, the hits are built from
    the index's answer directly: no mask, no merge, no regrouping by segment."""
    only = None
    for vi, view in enumerate(snap.views):
        if view.num_rows:
            if only is not None:
                only = None
                break
            only = (vi, view)
    if (
        only is not None
        and req.offset == 0
        and not out.with_dynamic
        and out.fields in ((), (pk,))
        and only[1].all_visible(snap.ts)
        and (pks := only[1].segment.cached_pks()) is not None
    ):
        vi, view = only
        c = plan.candidates(view, vi, None, view.num_rows)
        if c.ranked and c.key.shape[1] <= req.want:
            rows = [] if out.fields else None
            dists = c.dist.tolist()
            results: list[list[dict[str, Any]]] = []
            for ids, ds in zip(pks[c.row].tolist(), dists, strict=True):
                if rows is None:
                    results.append([{"id": i, "distance": x, "entity": {}} for i, x in zip(ids, ds, strict=True)])
                else:
                    results.append([{"id": i, "distance": x, "entity": {pk: i}} for i, x in zip(ids, ds, strict=True)])
            return results
        return materialise(snap, out, pk, _merge([c], plan.nq, req))
    return materialise(snap, out, pk, collect(snap, req, None, None, plan))


_MIN = np.minimum.reduce  # (ndarray.min goes through a Python wrapper first)


class SoleSegmentSearch:
    """``plain`` for a dense field when the newest state's only rows are one sealed
    segment, all visible (``Collection.sole_segment``; every big collection after a flush
    or a compaction): the queries go straight to the segment's index and the hits are
    built from its answer, with no snapshot, no request and no executor made per call.
    Made once per kept search plan (client.py ``_PlainSearch``), for requests without a
    filter, partitions, offset, range or cursor, asking for ids only.

    ``__call__`` answers None whenever the general path must decide -- no index usable on
    the segment (not built yet, another metric, covering other rows), the segment no
    bigger than the page (searched exactly), or an index answer with an empty slot (the
    exact fix-up of ``dense_search._indexed``) -- and the caller takes that path, so the
    answer is always the one ``plain`` gives."""

    __slots__ = ("field", "metric", "want", "knobs", "pk", "_bound")

    def __init__(self, req: SearchRequest, knobs: SearchKnobs, pk: str | None) -> None:
        """``pk``: the primary key's name when the hits' entities carry it, else None."""
        self.field = req.field
        self.metric = req.metric
        self.want = req.want
        self.knobs = knobs
        self.pk = pk
        # (index, its search bound to this request's k and knobs): replaced whole when the
        # segment's index object changes (a rebuild, another segment).
        self._bound: tuple[Any, Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]] | None = None

    def _search(self, ann: Any) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
        bound = self._bound  # one read: another thread may replace it
        if bound is not None and bound[0] is ann:
            return bound[1]
        make = getattr(ann, "searcher", None)  # FAISS indexes have it (index/faiss_index.py)
        if make is not None:
            run = make(self.want, self.knobs)
        else:
            want, knobs = self.want, self.knobs

            def run(q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
                return ann.search(q, want, knobs, None)  # type: ignore[no-any-return]

        self._bound = (ann, run)
        return run

    def __call__(self, seg: Segment, queries: np.ndarray) -> list[list[dict[str, Any]]] | None:
        ann = seg.indexes.get(self.field)
        n = seg.num_rows
        if ann is None or ann.spec.metric != self.metric or ann.ntotal != n or n <= self.want:
            return None
        pks = seg.cached_pks()
        if pks is None:
            return None
        d, rows = self._search(ann)(prepare_queries(queries, self.metric))
        if _MIN(rows, axis=None) < 0:
            return None
        pk = self.pk
        if pk is None:
            return [
                [{"id": i, "distance": x, "entity": {}} for i, x in zip(ids, ds, strict=True)]
                for ids, ds in zip(pks[rows].tolist(), d.tolist(), strict=True)
            ]
        return [
            [{"id": i, "distance": x, "entity": {pk: i}} for i, x in zip(ids, ds, strict=True)]
            for ids, ds in zip(pks[rows].tolist(), d.tolist(), strict=True)
        ]


def sole_segment_search(executor: FieldExecutor, req: SearchRequest, pk: str | None) -> SoleSegmentSearch | None:
    """The sole-segment path of a kept plain search whose executor is ``executor`` (from
    ``reusable_executor``): dense fields only (binary, sparse and BM25 take ``plain``)."""
    if isinstance(executor, functools.partial) and executor.func is DenseSearch:
        return SoleSegmentSearch(req, executor.keywords["knobs"], pk)
    return None


def _ids(snap: Snapshot, views: np.ndarray, rows: np.ndarray, pk: str) -> list[Any]:
    """The primary keys at (view, row) pairs, in order."""
    if len(rows) and (sum(1 for v in snap.views if v.num_rows) == 1 or (views == views[0]).all()):  # one segment
        return snap.views[int(views[0])].take(rows, [pk])[pk]
    return fetch_columns(snap, views, rows, [pk])[pk]


def recalls(snap: Snapshot, req: SearchRequest, flt: Filter | None, extra: Selector | None, hits: Hits) -> list[float]:
    """Each query's recall (``enable_recall_calculation``): the share of the exact answer's
    hits -- the same request searched exactly, as an iterator cursor at the best possible
    score makes every executor do -- that ``hits`` (its answer through the indexes) found.
    A hit tied with the exact answer's boundary counts as found: which of several rows at
    one distance is returned is not a recall loss."""
    cursor = req.after
    if cursor is None:
        cursor = math.inf if larger_is_better(req.metric) else -math.inf
    exact = collect(snap, replace(req, after=cursor), flt, extra)
    out = []
    for (d, v, r), (ed, ev, er) in zip(hits, exact, strict=True):
        if not len(er):
            out.append(1.0)
            continue
        truth = set(zip(ev.tolist(), er.tolist(), strict=True))
        lo, hi = float(min(ed[0], ed[-1])), float(max(ed[0], ed[-1]))
        tol = 1e-6 * max(1.0, abs(lo), abs(hi))
        found = sum(
            1 for x, key in zip(d.tolist(), zip(v.tolist(), r.tolist(), strict=True), strict=True)
            if key in truth or lo - tol <= x <= hi + tol
        )  # fmt: skip
        out.append(min(found, len(er)) / len(er))
    return out


def parse_queries(data: Any, dim: int) -> np.ndarray:
    """Float query vectors (FLOAT_VECTOR's ``VectorKind.queries``)."""
    return float_queries(data, dim)
