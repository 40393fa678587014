"""SPARSE_FLOAT_VECTOR: a row is a set of (dimension, weight) pairs, dimensions in
[0, 2^32 - 2], weights finite non-negative float32 (Milvus's rules: 2^32 - 1 is reserved,
and "Milvus does not currently support sparse vector with negative values" — its IP metric is
not defined for them). An empty row is allowed (it can be stored and read back; it matches
no query). The schema field takes no ``dim``.

Every input form pymilvus accepts is taken: a dict ``{dimension: weight}``, a list of
``(dimension, weight)`` pairs, a scipy sparse row (a 1 x D matrix or array, or a 1-d sparse
array), and for a whole column a scipy sparse matrix of n rows; over the wire the rows
arrive as Milvus's packed bytes (``server.vectors``). Pairs are sorted by dimension; a
dimension given twice is refused, as Milvus refuses it.

Storage is an Arrow ``map<uint32, float32>`` column. Its buffers are exactly CSR — offsets
(the row pointer), keys (dimensions), items (weights) — so a memory-mapped segment file is
read as :class:`SparseRows` without a copy, and the inverted index (``index/sparse_index.py``)
is built from it with scipy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.base import VectorKind

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema

MAX_INDEX = 2**32 - 2  # 2^32 - 1 is reserved by Milvus's sparse format
ARROW_TYPE = pa.map_(pa.uint32(), pa.float32())
_PAIR = np.dtype([("i", "<u4"), ("v", "<f4")])  # Milvus's packed row: (uint32, float32) pairs


@dataclass(frozen=True)
class SparseRows:
    """n sparse rows as CSR arrays: row i is ``indices[indptr[i]:indptr[i+1]]`` (sorted,
    distinct dimensions, uint32) with weights ``data[...]`` (float32)."""

    indptr: np.ndarray  # n + 1 offsets (int32 or int64), indptr[0] == 0
    indices: np.ndarray  # uint32
    data: np.ndarray  # float32

    def __len__(self) -> int:
        return len(self.indptr) - 1

    @property
    def nnz(self) -> int:
        return int(self.indptr[-1])

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = int(self.indptr[i]), int(self.indptr[i + 1])
        return self.indices[a:b], self.data[a:b]

    def prefix(self, n: int) -> SparseRows:
        end = int(self.indptr[n])
        return SparseRows(self.indptr[: n + 1], self.indices[:end], self.data[:end])

    def take(self, rows: np.ndarray) -> SparseRows:
        rows = np.asarray(rows, dtype=np.int64)
        starts, ends = self.indptr[rows].astype(np.int64), self.indptr[rows + 1].astype(np.int64)
        lens = ends - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lens, out=indptr[1:])
        pos = np.repeat(starts - indptr[:-1], lens) + np.arange(int(indptr[-1]))
        return SparseRows(indptr, self.indices[pos], self.data[pos])

    def to_dicts(self) -> list[dict[int, float]]:
        idx, val = self.indices.tolist(), self.data.tolist()
        bounds = self.indptr.tolist()
        return [dict(zip(idx[a:b], val[a:b], strict=True)) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]

    def row_bytes(self, i: int) -> bytes:
        """Row i in Milvus's packed form: (uint32 dimension, float32 weight) pairs."""
        idx, val = self.row(i)
        out = np.empty(len(idx), dtype=_PAIR)
        out["i"], out["v"] = idx, val
        return out.tobytes()

    def pruned(self, ratio: float | None) -> SparseRows:
        """Each row without its smallest ``ratio`` share of weights (Milvus's
        ``drop_ratio_search``: int(ratio x nonzeros) of them, the smallest first)."""
        if not ratio or not self.nnz:
            return self
        keep = []
        for i in range(len(self)):
            a, b = int(self.indptr[i]), int(self.indptr[i + 1])
            n_drop = int(ratio * (b - a))
            kept = np.argsort(self.data[a:b], kind="stable")[n_drop:]
            keep.append(a + np.sort(kept))
        pos = np.concatenate(keep) if keep else np.empty(0, dtype=np.int64)
        indptr = np.zeros(len(self) + 1, dtype=np.int64)
        np.cumsum([len(k) for k in keep], out=indptr[1:])
        return SparseRows(indptr, self.indices[pos], self.data[pos])

    def row_sums(self) -> np.ndarray:
        """Each row's sum of weights, float64 (a BM25 row's length)."""
        row_of = np.repeat(np.arange(len(self), dtype=np.int64), np.diff(self.indptr.astype(np.int64)))
        return np.bincount(row_of, weights=self.data[: self.nnz].astype(np.float64), minlength=len(self))

    def matches(self, dims: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The stored pairs whose dimension is one of ``dims`` (sorted, distinct), by a scan
        of every pair: (their positions in ``indices`` / ``data``, the matching position in
        ``dims``, their rows), in storage order — by row, then dimension."""
        if not len(dims) or not self.nnz:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty, empty
        idx = self.indices[: self.nnz]
        pos = np.searchsorted(dims, idx)
        pos[pos == len(dims)] = 0
        hit = np.flatnonzero(dims[pos] == idx)
        return hit, pos[hit], np.searchsorted(self.indptr, hit, side="right") - 1

    def scores(self, dims: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Exact inner products with one query (sorted ``dims``, ``weights``), by a scan of
        every stored pair: (rows with a positive score — sharing a dimension with the query
        where both weights are nonzero —, their scores as float64), rows ascending.
        O(nonzeros); what an unindexed segment is searched with."""
        hit, at, row_of = self.matches(dims)
        if not hit.size:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float64)
        contrib = self.data[hit].astype(np.float64) * weights[at]
        rows, inv = np.unique(row_of, return_inverse=True)
        scores = np.bincount(inv, weights=contrib, minlength=len(rows))
        positive = scores > 0
        return rows[positive].astype(np.int64), scores[positive]

    @staticmethod
    def concat(parts: Sequence[SparseRows]) -> SparseRows:
        if not parts:
            return empty_rows()
        sizes = [p.nnz for p in parts]
        offsets = np.cumsum([0, *sizes[:-1]])
        indptr = np.concatenate([[0]] + [p.indptr[1:].astype(np.int64) + o for p, o in zip(parts, offsets, strict=True)])
        return SparseRows(
            indptr.astype(np.int64),
            np.concatenate([p.indices[: p.nnz] for p in parts]).astype(np.uint32, copy=False),
            np.concatenate([p.data[: p.nnz] for p in parts]).astype(np.float32, copy=False),
        )


def empty_rows(n: int = 0) -> SparseRows:
    return SparseRows(np.zeros(n + 1, dtype=np.int64), np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.float32))


def from_packed(rows: Sequence[bytes], name: str) -> SparseRows:
    """Rows in Milvus's packed form (the wire's ``SparseFloatArray.contents``), checked."""
    for i, b in enumerate(rows):
        if len(b) % 8:
            raise InvalidArgument(
                f"row {i}: sparse vector field {name!r}: invalid data length in sparse float vector: {len(b)}"
            )
    indptr = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(b) // 8 for b in rows], out=indptr[1:])
    pairs = np.frombuffer(b"".join(rows), dtype=_PAIR)
    return _checked_csr(indptr, pairs["i"].astype(np.int64), pairs["v"].astype(np.float64), name)


def parse_rows(values: Any, name: str) -> SparseRows:
    """User values (a column: a sequence of rows, or a scipy sparse matrix) as checked rows."""
    if _is_scipy(values):
        return _from_scipy_matrix(values, name)
    if isinstance(values, SparseRows):
        return values
    return _checked([_row_pairs(v, i, name) for i, v in enumerate(values)], name)


def _is_scipy(v: Any) -> bool:
    mod = type(v).__module__
    return mod.startswith("scipy.sparse") and hasattr(v, "tocsr") and hasattr(v, "shape")


def _from_scipy_matrix(m: Any, name: str) -> SparseRows:
    if len(m.shape) != 2:
        raise InvalidArgument(f"sparse vector field {name!r}: a scipy sparse column must be 2-d (rows x dims)")
    csr = m.tocsr()
    csr.sum_duplicates()  # the matrix's own meaning of a repeated (row, column)
    return _checked_csr(
        csr.indptr.astype(np.int64), csr.indices.astype(np.int64), np.asarray(csr.data, dtype=np.float64), name
    )


def _row_pairs(v: Any, row: int, name: str) -> tuple[np.ndarray, np.ndarray]:
    """One row's (dimensions, weights) as int64 / float64 arrays, unsorted, unchecked."""
    try:
        if isinstance(v, Mapping):
            keys, vals = list(v.keys()), list(v.values())
        elif _is_scipy(v):
            coo = v.tocoo()
            if len(coo.shape) == 1:
                return np.asarray(coo.coords[0], dtype=np.int64), np.asarray(coo.data, dtype=np.float64)
            if coo.shape[0] != 1:
                raise InvalidArgument(f"row {row}: sparse vector field {name!r}: a scipy row must have 1 row, got {coo.shape[0]}")
            return np.asarray(coo.col, dtype=np.int64), np.asarray(coo.data, dtype=np.float64)
        elif isinstance(v, list | tuple) and all(isinstance(p, list | tuple) and len(p) == 2 for p in v):
            keys, vals = [p[0] for p in v], [p[1] for p in v]
        else:
            raise InvalidArgument(
                f"row {row}: sparse vector field {name!r} takes a dict {{dimension: weight}}, a list of "
                f"(dimension, weight) pairs or a scipy sparse row, got {type(v).__name__}"
            )
        for k in keys:
            if isinstance(k, bool | np.bool_) or not isinstance(k, int | np.integer):
                raise InvalidArgument(f"row {row}: sparse vector field {name!r}: dimension {k!r} is not an integer")
        for x in vals:
            if isinstance(x, bool | np.bool_) or not isinstance(x, int | float | np.integer | np.floating):
                raise InvalidArgument(f"row {row}: sparse vector field {name!r}: weight {x!r:.40} is not a number")
        if any(not -(2**63) <= int(k) < 2**63 for k in keys):
            raise InvalidArgument(f"row {row}: sparse vector field {name!r}: invalid index: must be in [0, {MAX_INDEX}]")
        return np.asarray(keys, dtype=np.int64).reshape(-1), np.asarray(vals, dtype=np.float64).reshape(-1)
    except OverflowError:
        raise InvalidArgument(f"row {row}: sparse vector field {name!r}: a weight is out of range") from None


def _checked(parts: list[tuple[np.ndarray, np.ndarray]], name: str) -> SparseRows:
    """Rows given as (dimensions, weights) arrays each, checked (see ``_checked_csr``)."""
    n = len(parts)
    lens = np.fromiter((len(k) for k, _ in parts), dtype=np.int64, count=n)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lens, out=indptr[1:])
    if n == 0 or indptr[-1] == 0:
        return SparseRows(indptr, np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.float32))
    keys = np.concatenate([k for k, _ in parts])
    vals = np.concatenate([v for _, v in parts])
    return _checked_csr(indptr, keys, vals, name)


def _checked_csr(indptr: np.ndarray, keys: np.ndarray, vals: np.ndarray, name: str) -> SparseRows:
    """Sort each row's pairs by dimension and check Milvus's rules, naming the first bad row."""
    n = len(indptr) - 1
    if indptr[-1] == 0:
        return SparseRows(indptr, np.empty(0, dtype=np.uint32), np.empty(0, dtype=np.float32))
    row_of = np.repeat(np.arange(n), np.diff(indptr))
    order = np.lexsort((keys, row_of))
    keys, vals = keys[order], vals[order]

    def first(bad: np.ndarray) -> int:
        return int(row_of[np.flatnonzero(bad)[0]])

    bad = (keys < 0) | (keys > MAX_INDEX)
    if bad.any():
        raise InvalidArgument(
            f"row {first(bad)}: sparse vector field {name!r}: invalid index in sparse float vector: must be "
            f"less than 2^32-1 and not negative"
        )
    same = np.zeros(len(keys), dtype=bool)
    same[1:] = (keys[1:] == keys[:-1]) & (row_of[1:] == row_of[:-1])
    if same.any():
        raise InvalidArgument(
            f"row {first(same)}: sparse vector field {name!r}: unsorted or same indices in sparse float vector "
            "(a dimension is given twice)"
        )
    with np.errstate(over="ignore", invalid="ignore"):
        data = vals.astype(np.float32)
    bad = ~np.isfinite(data)
    if bad.any():
        raise InvalidArgument(
            f"row {first(bad)}: sparse vector field {name!r}: a weight is NaN, infinite or beyond float32 range"
        )
    bad = data < 0
    if bad.any():
        raise InvalidArgument(
            f"row {first(bad)}: sparse vector field {name!r}: negative value in sparse float vector "
            "(Milvus supports non-negative weights only)"
        )
    return SparseRows(indptr, keys.astype(np.uint32), data)


def to_arrow(rows: SparseRows) -> pa.MapArray:
    if rows.nnz >= 2**31:
        raise InvalidArgument(f"{rows.nnz} sparse nonzeros in one batch or segment: the limit is 2^31 - 1")
    return pa.MapArray.from_arrays(
        pa.array(rows.indptr.astype(np.int32), type=pa.int32()),
        pa.array(rows.indices, type=pa.uint32()),
        pa.array(rows.data, type=pa.float32()),
    )


def from_arrow(col: pa.ChunkedArray | pa.Array) -> SparseRows:
    """Zero-copy (one chunk) CSR view of a stored ``map<uint32, float32>`` column."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if len(col) == 0:
        return empty_rows()
    offsets = col.offsets.to_numpy(zero_copy_only=True)
    a, b = int(offsets[0]), int(offsets[-1])
    keys = col.keys.to_numpy(zero_copy_only=True)[a:b]
    items = col.items.to_numpy(zero_copy_only=True)[a:b]
    return SparseRows(offsets - a if a else offsets, keys, items)


class SparseBuffer:
    """A growing segment's sparse rows: CSR arrays that double in capacity (rows and
    nonzeros separately). A view slices the arrays it was taken from; growth swaps in new
    arrays, so a reader's older view stays correct."""

    def __init__(self, capacity: int) -> None:
        self.indptr = np.zeros(capacity + 1, dtype=np.int64)
        self.indices = np.empty(max(16, capacity * 8), dtype=np.uint32)
        self.data = np.empty(max(16, capacity * 8), dtype=np.float32)

    def append(self, start: int, rows: SparseRows) -> None:
        n = len(rows)
        base = int(self.indptr[start])
        end = base + rows.nnz
        if start + n + 1 > len(self.indptr):
            grown = np.zeros(max(start + n + 1, 2 * len(self.indptr)), dtype=np.int64)
            grown[: start + 1] = self.indptr[: start + 1]
            self.indptr = grown
        if end > len(self.indices):
            cap = max(end, 2 * len(self.indices))
            idx, dat = np.empty(cap, dtype=np.uint32), np.empty(cap, dtype=np.float32)
            idx[:base], dat[:base] = self.indices[:base], self.data[:base]
            self.indices, self.data = idx, dat
        self.indices[base:end] = rows.indices[: rows.nnz]
        self.data[base:end] = rows.data[: rows.nnz]
        self.indptr[start + 1 : start + n + 1] = base + rows.indptr[1:]

    def view(self, n: int) -> SparseRows:
        indptr = self.indptr[: n + 1]
        end = int(indptr[-1])
        return SparseRows(indptr, self.indices[:end], self.data[:end])

    def to_arrow(self, n: int) -> pa.Array:
        return to_arrow(self.view(n))


class SparseFloatVector(VectorKind):
    dtypes = (DataType.SPARSE_FLOAT_VECTOR,)
    milvus_name = "SparseFloatVector"
    metrics = ("IP", "BM25")  # BM25 only on a BM25 function's output (checked by the client)
    default_metric = "IP"
    index_types = ("SPARSE_INVERTED_INDEX", "SPARSE_WAND", "AUTOINDEX")

    def check_field(self, f: FieldSchema) -> None:
        if f.dim is not None:
            raise InvalidArgument(f"dim should not be specified for sparse vector field {f.name}")
        super().check_field(f)

    def arrow_type(self, f: FieldSchema) -> pa.DataType:
        return ARROW_TYPE

    def vectors(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> SparseRows:
        if not _is_scipy(values) and not isinstance(values, SparseRows):
            for i, v in enumerate(values):
                if v is None:
                    raise InvalidArgument(f"row {i}: sparse vector field {f.name!r} is None")
        return parse_rows(values, f.name)

    def from_vectors(self, f: FieldSchema, vectors: SparseRows) -> pa.Array:
        return to_arrow(vectors)

    def from_arrow(self, f: FieldSchema, col: pa.ChunkedArray | pa.Array) -> SparseRows:
        return from_arrow(col)

    def new_buffer(self, f: FieldSchema, capacity: int) -> SparseBuffer:
        return SparseBuffer(capacity)

    def values_at(self, f: FieldSchema, vectors: SparseRows, rows: np.ndarray) -> list[Any]:
        return vectors.take(rows).to_dicts()

    def queries(self, f: FieldSchema, data: Any) -> SparseRows:
        if isinstance(data, Mapping):
            data = [data]
        if _is_scipy(data) or isinstance(data, SparseRows):
            return parse_rows(data, f.name)
        if not isinstance(data, Sequence) or isinstance(data, str | bytes) or len(data) == 0:
            raise InvalidArgument("data must be a non-empty list of sparse query vectors")
        return parse_rows(data, f.name)


def top_k(rows: np.ndarray, scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The k best (rows, scores): score descending, ties by row ascending (the tie rule of
    every sparse and BM25 search)."""
    if len(rows) > 4 * k:
        part = np.argpartition(-scores, k - 1)[:k]
        cut = scores[part].min()
        pick = np.flatnonzero(scores >= cut)  # every row tied at the cut, for the tie rule
        rows, scores = rows[pick], scores[pick]
    order = np.lexsort((rows, -scores))[:k]
    return rows[order], scores[order]
