"""Exact vector search over a snapshot.

The filter (and MVCC visibility) is applied *before* ranking, so a filtered search returns k
hits whenever at least k rows qualify, and a deleted or overwritten version can never rank.
Distances follow Milvus: L2 is the squared Euclidean distance (smaller is closer); IP and
COSINE are similarities (larger is closer). Segments are scanned in row blocks so that the
(nq x block) score matrix stays small whatever the segment size.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from keeldb.engine.collection import Snapshot
from keeldb.engine.expr import Filter
from keeldb.engine.query import Output, Selector, materialize, select
from keeldb.errors import InvalidArgument
from keeldb.schema import METRICS

BLOCK_ROWS = 1 << 17
MAX_TOPK = 16384


@dataclass(frozen=True)
class SearchRequest:
    field: str
    queries: np.ndarray  # (nq, dim) float32
    metric: str
    limit: int
    offset: int = 0
    radius: float | None = None
    range_filter: float | None = None
    after: float | None = None  # iterator cursor: only hits strictly worse than this


def _prepare(q: np.ndarray, metric: str) -> np.ndarray:
    if metric == "COSINE":
        norms = np.linalg.norm(q, axis=1, keepdims=True)
        return q / np.where(norms == 0, 1, norms)
    return q


def _scores(x: np.ndarray, q: np.ndarray, metric: str, x_sq: np.ndarray | None) -> np.ndarray:
    """Distances as Milvus reports them, shape (nq, len(x)). ``x_sq``: the rows' squared
    norms if already known (sealed segments cache them: recomputing them cost more than
    the matrix product itself)."""
    dots = q @ x.T
    if metric == "IP":
        return dots
    xn = np.einsum("ij,ij->i", x, x) if x_sq is None else x_sq
    if metric == "L2":
        qn = np.einsum("ij,ij->i", q, q)
        return np.maximum(qn[:, None] + xn[None, :] - 2 * dots, 0)
    norms = np.sqrt(xn)
    return dots / np.where(norms == 0, 1, norms)[None, :]


def search(
    snap: Snapshot,
    req: SearchRequest,
    flt: Filter | None,
    out: Output,
    pk: str,
    extra: Selector | None = None,
) -> list[list[dict[str, Any]]]:
    if req.metric not in METRICS:
        raise InvalidArgument(f"unknown metric type {req.metric!r}; use one of {METRICS}")
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
    q = _prepare(np.ascontiguousarray(req.queries, dtype=np.float32), req.metric)
    nq = q.shape[0]
    want = req.offset + req.limit
    larger_better = req.metric != "L2"
    best_key: list[np.ndarray] = []  # per block: (nq, <=want) sort keys
    best_dist: list[np.ndarray] = []
    best_view: list[np.ndarray] = []
    best_row: list[np.ndarray] = []
    for vi, rows in select(snap, flt, extra):
        vecs = snap.views[vi].vectors(req.field)
        for b in range(0, rows.size, BLOCK_ROWS):
            r = rows[b : b + BLOCK_ROWS]
            whole = r.size == len(vecs)
            x = vecs if whole else vecs[r]
            sq = snap.views[vi].segment.squared_norms(req.field)
            d = _scores(x, q, req.metric, None if sq is None else (sq if whole else sq[r]))
            key = -d if larger_better else d.copy()
            if req.radius is not None or req.range_filter is not None or req.after is not None:
                keep = _in_range(d, req.radius, req.range_filter, larger_better)
                if req.after is not None:
                    keep &= (d < req.after) if larger_better else (d > req.after)
                key[~keep] = np.inf
            k = min(want, r.size)
            if k < r.size:
                part = np.argpartition(key, k - 1, axis=1)[:, :k]
            else:
                part = np.broadcast_to(np.arange(r.size), (nq, r.size))
            best_key.append(np.take_along_axis(key, part, axis=1))
            best_dist.append(np.take_along_axis(d, part, axis=1))
            best_view.append(np.full(part.shape, vi, dtype=np.int64))
            best_row.append(r[part])
    if not best_key:
        return [[] for _ in range(nq)]
    keys = np.concatenate(best_key, axis=1)
    dists = np.concatenate(best_dist, axis=1)
    views = np.concatenate(best_view, axis=1)
    rowsx = np.concatenate(best_row, axis=1)
    order = np.argsort(keys, axis=1, kind="stable")[:, req.offset : want]
    results: list[list[dict[str, Any]]] = []
    for qi in range(nq):
        o = order[qi]
        o = o[np.isfinite(keys[qi, o])]
        ents = materialize(snap, out, pk, views[qi, o], rowsx[qi, o], include_pk=True)
        hits = []
        for ent, dist in zip(ents, dists[qi, o].tolist(), strict=True):
            ident = ent[pk] if pk in out.fields else ent.pop(pk)
            hits.append({"id": ident, "distance": float(dist), "entity": ent})
        results.append(hits)
    return results


def _in_range(d: np.ndarray, radius: float | None, range_filter: float | None, larger_better: bool) -> np.ndarray:
    """Milvus range search: for L2 keep range_filter <= d < radius; for IP/COSINE keep
    radius < d <= range_filter."""
    ok = np.ones(d.shape, dtype=bool)
    if larger_better:
        if radius is not None:
            ok &= d > radius
        if range_filter is not None:
            ok &= d <= range_filter
    else:
        if radius is not None:
            ok &= d < radius
        if range_filter is not None:
            ok &= d >= range_filter
    return ok


def parse_queries(data: Any, dim: int) -> np.ndarray:
    """Query vectors: a list of vectors (or one vector, or an (nq, dim) array)."""
    if isinstance(data, np.ndarray):
        arr = data.astype(np.float32, copy=False)
    else:
        if not isinstance(data, Sequence) or isinstance(data, str | bytes) or len(data) == 0:
            raise InvalidArgument("data must be a non-empty list of query vectors")
        try:
            arr = np.asarray(data, dtype=np.float32)
        except (TypeError, ValueError):
            raise InvalidArgument("query vectors must be lists of numbers of equal length") from None
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise InvalidArgument("data must be a non-empty list of query vectors")
    if arr.shape[1] != dim:
        raise InvalidArgument(f"query vector has dimension {arr.shape[1]}, the field's is {dim}")
    if not np.isfinite(arr).all():
        raise InvalidArgument("query vectors contain NaN or infinity")
    return arr
