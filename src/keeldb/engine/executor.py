"""The per-field stage of a search: what an executor is given and what it returns.

Search (``search.py``) is a pipeline: selection → per-field executor → merge → materialise.
The executor is the part that depends on what kind of field is searched. It is handed one
segment at a time with the rows the search may return (MVCC visibility, partitions and the
filter already applied) and returns that segment's best candidates per query; it never sees
a deleted version or a filtered-out row, and never needs to know about the others.

An executor is a factory keyed by the field's ``DataType`` (``search.EXECUTORS``): called
with the request, it checks and prepares it once (parameters, normalised queries) and
returns a ``SegmentSearch`` the pipeline calls per segment: dense vectors (float, float16,
bfloat16, int8) in ``dense_search.py``, binary vectors in ``binary_search.py``, sparse
vectors in ``sparse_search.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from keeldb.engine.segment import SegmentView


@dataclass(frozen=True)
class SearchRequest:
    field: str
    queries: Any  # the field kind's query form (VectorKind.queries): (nq, dim) float32, ...
    metric: str
    limit: int
    offset: int = 0
    radius: float | None = None
    range_filter: float | None = None
    after: float | None = None  # iterator cursor: only hits strictly worse than this
    params: dict[str, Any] = field(default_factory=dict)  # nprobe, ef (Milvus's names)

    @property
    def want(self) -> int:
        """Hits each segment must offer: the page and everything before it."""
        return self.offset + self.limit


@dataclass
class Candidates:
    """One segment's best candidates per query, shape (nq, m) each; key = +inf marks an
    empty slot (fewer hits than m)."""

    key: np.ndarray  # sort key, ascending is better (a distance, or -similarity)
    dist: np.ndarray  # the distance reported to the caller
    view: np.ndarray  # index of the segment view in the snapshot
    row: np.ndarray  # row in that view
    # Every slot filled and each query's candidates already in rank order (an index's
    # top-k as FAISS returns it, sorted): one segment's candidates then need no merge.
    ranked: bool = False


class SegmentSearch(Protocol):
    """One request, prepared for one field kind."""

    nq: int

    def candidates(self, view: SegmentView, vi: int, mask: np.ndarray | None, nsel: int) -> Candidates:
        """The best ``want`` candidates of view ``vi`` per query, among the rows ``mask``
        selects (None: every row; ``nsel`` of them are selected, never 0)."""
        ...


FieldExecutor = Callable[[SearchRequest], SegmentSearch]

# Similarities rank larger first; distances (L2, HAMMING, JACCARD) smaller first.
LARGER_IS_BETTER = frozenset({"IP", "COSINE", "BM25"})


def larger_is_better(metric: str) -> bool:
    return metric in LARGER_IS_BETTER
