"""What the engine needs from a per-segment index, and which implementation serves a type.

The engine (the collection, the index builder, search) imports this module and nothing
below it: it builds, saves, loads and searches indexes through ``VectorIndex`` and the
registry, and never names FAISS. A new index kind — a sparse inverted index, a scalar
index — is then a new module implementing ``IndexKind`` plus one line in ``_KINDS``, not new
branches in the collection or in search.

The contract every kind keeps (docs/crash-safety.md, "An index build"):

- labels are the segment's row numbers, and the index covers *every* row of its segment,
  live or not: visibility and filters are the engine's business, passed to ``search`` as a
  bitmap of the rows that may be returned;
- an index is derived data: ``save`` writes and fsyncs one file and returns its (size,
  CRC-32); ``load`` opens a file whose size and CRC the caller has verified; a file that
  does not load raises (the engine then searches the segment exactly);
- a search never returns a row outside the bitmap, and returns -1 labels where it found
  fewer than k; the engine then answers that query exactly, so a short index answer costs
  speed, never hits.

Implementations are imported on first use: FAISS takes a good part of a second to import,
and a process that never builds or loads an index (a client of ``keeldb chaos``, a
collection without ANN indexes) should not pay for it.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from keeldb.index import params as P
from keeldb.index.params import ANN_TYPES, BINARY_TYPES, SPARSE_TYPES, IndexSpec, SearchKnobs


class VectorIndex(Protocol):
    """One segment's index over one vector field. Immutable once built or loaded: a search
    holds whichever index object it picked up, and a rebuild replaces the object."""

    spec: IndexSpec
    ntotal: int  # rows covered: equal to the segment's rows, or the index is not used

    def save(self, path: Path) -> tuple[int, int]:
        """Write and fsync the index file; return (size, crc32). The caller fsyncs the dir."""
        ...

    def search(
        self, q: Any, k: int, knobs: SearchKnobs, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (distances, rows) per query, shape (nq, k), each query's best first (as
        FAISS returns them: a complete answer is used as it is, engine/dense_search.py);
        rows are -1 where fewer than k allowed rows were found. ``allowed``: the rows that may be returned as a
        little-endian packed bitmap (``np.packbits(mask, bitorder="little")``), or None
        for every row."""
        ...

    def range_search(
        self, q: Any, radius: float, knobs: SearchKnobs, allowed: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Every allowed row within ``radius`` (L2, HAMMING, JACCARD: distance < radius;
        IP/COSINE: similarity > radius), as (lims, distances, rows): query i's hits are
        ``[lims[i], lims[i + 1])``."""
        ...


class IndexKind(Protocol):
    """An implementation: how to build an index over a segment's vectors and open a saved
    one. ``file_ext`` names its files (``idx-<id>.<file_ext>``)."""

    file_ext: str

    def build(self, spec: IndexSpec, vectors: Any) -> VectorIndex:
        """``vectors``: the segment's searchable form (``VectorKind.from_arrow``)."""
        ...

    def load(self, spec: IndexSpec, path: Path) -> VectorIndex: ...


# index type -> "module:attribute" of its IndexKind: FAISS for the float types (FLAT too,
# though on float32 vectors it needs no file: IndexSpec.needs_file), FAISS's binary indexes
# for BINARY_VECTOR, keeldb's inverted index for SPARSE_FLOAT_VECTOR, keeldb's positional
# postings for the text match of a VARCHAR field (not a vector index: it is read by the
# filter, never searched). AUTOINDEX is resolved
# by the field's data type (``IndexSpec.vector``).
_FAISS = "keeldb.index.faiss_index:FAISS"
_BINARY = "keeldb.index.faiss_binary:BINARY"
_SPARSE = "keeldb.index.sparse_index:SPARSE"
_KINDS: dict[str, str] = {
    **{t: _FAISS for t in ("FLAT", *ANN_TYPES, "AUTOINDEX")},
    **{t: _BINARY for t in BINARY_TYPES},
    **{t: _SPARSE for t in SPARSE_TYPES},
    P.TEXT_MATCH: "keeldb.index.text_index:TEXT",  # an enable_match VARCHAR field's postings
    # Scalar indexes, read by filters (never searched): sorted terms + posting lists, and
    # NGRAM's grams. AUTOINDEX on a scalar field is resolved by ``scalar_index_spec``.
    **{t: f"keeldb.index.scalar_index:{t}" for t in ("STL_SORT", "INVERTED", "BITMAP", "TRIE")},
    "NGRAM": "keeldb.index.ngram_index:NGRAM",
}
# json_cast_type "JSON" (INVERTED / AUTOINDEX on a JSON field): every value below the path.
_JSON_FLAT = "keeldb.index.json_flat:JSON_FLAT"
_AUTOINDEX = {"binary": _BINARY, "sparse": _SPARSE}
_loaded: dict[str, IndexKind] = {}


def index_kind(spec: IndexSpec) -> IndexKind:
    """The implementation that builds and loads indexes of ``spec``'s type."""
    where = _AUTOINDEX.get(spec.vector) if spec.index_type == "AUTOINDEX" else None
    if spec.vector == "scalar" and spec.build.get("cast") == "JSON":
        where = _JSON_FLAT
    where = where or _KINDS.get(spec.index_type)
    if where is None:
        raise KeyError(f"no index implementation for type {spec.index_type!r}")
    kind = _loaded.get(where)
    if kind is None:
        module, _, attr = where.partition(":")
        kind = _loaded[where] = getattr(importlib.import_module(module), attr)
    return kind


def in_bitmap(allowed: np.ndarray | None, rows: np.ndarray) -> np.ndarray:
    """Which of ``rows`` a little-endian packed bitmap (``VectorIndex.search``'s
    ``allowed``) lets through; every row for None. For implementations that score
    candidates themselves instead of passing the bitmap to FAISS."""
    if allowed is None:
        return np.ones(len(rows), dtype=bool)
    return ((allowed[rows >> 3] >> (rows & 7).astype(np.uint8)) & 1).astype(bool)


def build_index(spec: IndexSpec, vectors: Any) -> VectorIndex:
    """Build an index over ``vectors`` (row i gets label i)."""
    return index_kind(spec).build(spec, vectors)


def load_index(spec: IndexSpec, path: Path) -> VectorIndex:
    """Open a saved index whose size and CRC the caller has verified."""
    return index_kind(spec).load(spec, path)
