"""Data and brute-force answers for the vector types beyond FLOAT_VECTOR, shared by the
embedded, server and Milvus Lite tests: each type's rows in the forms pymilvus takes, and
exact top-k computed independently of keeldb (numpy / scipy), to check searches against."""

from __future__ import annotations

from typing import Any

import ml_dtypes
import numpy as np
import scipy.sparse as sp

from keeldb import DataType

DIM = 16
SPARSE_DIMS = 400  # dimensions used by the generated sparse rows (indices spread up to 2^32-2)


def dense(n: int, seed: int, dtype: DataType) -> np.ndarray:
    """n rows of the type's storage dtype (binary: packed bytes, DIM bits)."""
    rng = np.random.default_rng(seed)
    if dtype == DataType.BINARY_VECTOR:
        return rng.integers(0, 256, (n, DIM // 8)).astype(np.uint8)
    if dtype == DataType.INT8_VECTOR:
        return rng.integers(-128, 128, (n, DIM)).astype(np.int8)
    x = rng.standard_normal((n, DIM)).astype(np.float32)
    if dtype == DataType.FLOAT16_VECTOR:
        return x.astype(np.float16)
    if dtype == DataType.BFLOAT16_VECTOR:
        return x.astype(ml_dtypes.bfloat16)
    return x


def sparse(n: int, seed: int, nnz: int = 12, empty_every: int = 0) -> sp.csr_matrix:
    """n sparse rows with ``nnz`` nonzeros each over SPARSE_DIMS dimensions (Zipf-like: low
    dimensions are common), a few mapped to very large indices; every ``empty_every``-th row
    empty."""
    rng = np.random.default_rng(seed)
    rows, cols, vals = [], [], []
    for i in range(n):
        if empty_every and i % empty_every == 0:
            continue
        d = np.unique(np.minimum(rng.zipf(1.3, nnz * 2), SPARSE_DIMS) - 1)[:nnz]
        rows += [i] * len(d)
        cols += d.tolist()
        vals += rng.random(len(d)).astype(np.float32).tolist()
    m = sp.csr_matrix((vals, (rows, cols)), shape=(n, SPARSE_DIMS), dtype=np.float32)
    m.sort_indices()
    return m


def big_index(d: int) -> int:
    """Dimensions as a sparse vector's indices: spread over uint32, up to 2^32 - 2."""
    return d if d < SPARSE_DIMS - 3 else 2**32 - 2 - (SPARSE_DIMS - 1 - d)


def widened(m: sp.csr_matrix) -> sp.csr_matrix:
    """``m`` with its columns at their ``big_index`` positions (2^32 - 1 columns)."""
    cols = np.array([big_index(int(c)) for c in range(m.shape[1])], dtype=np.int64)
    out = sp.csr_matrix((m.data, cols[m.indices], m.indptr.astype(np.int64)), shape=(m.shape[0], 2**32 - 1))
    out.sort_indices()
    return out


def sparse_dicts(m: sp.csr_matrix) -> list[dict[int, float]]:
    out = []
    for i in range(m.shape[0]):
        a, b = m.indptr[i], m.indptr[i + 1]
        out.append({big_index(int(c)): float(v) for c, v in zip(m.indices[a:b], m.data[a:b], strict=True)})
    return out


def as_float(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32)


def dense_distances(base: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """(nq, n) distances as Milvus reports them."""
    b, qq = base.astype(np.float64), q.astype(np.float64)
    if metric == "L2":
        return ((qq[:, None, :] - b[None, :, :]) ** 2).sum(-1)
    if metric == "COSINE":
        b = b / np.maximum(np.linalg.norm(b, axis=1, keepdims=True), 1e-30)
        qq = qq / np.maximum(np.linalg.norm(qq, axis=1, keepdims=True), 1e-30)
    return qq @ b.T


def bit_distances(base: np.ndarray, q: np.ndarray, metric: str) -> np.ndarray:
    """(nq, n) HAMMING or JACCARD distances of packed bit vectors, from unpacked bits."""
    bb = np.unpackbits(base, axis=1).astype(bool)
    qb = np.unpackbits(q, axis=1).astype(bool)
    inter = (qb[:, None, :] & bb[None]).sum(-1)
    union = (qb[:, None, :] | bb[None]).sum(-1)
    if metric == "HAMMING":
        return (qb[:, None, :] ^ bb[None]).sum(-1).astype(np.float64)
    return np.where(union == 0, 0.0, 1 - inter / np.maximum(union, 1))


def top_k(dist: np.ndarray, ids: np.ndarray, k: int, larger_better: bool) -> list[list[tuple[int, float]]]:
    """Each query's best k (id, distance), ties by id."""
    out = []
    for row in dist:
        key = -row if larger_better else row
        order = np.lexsort((ids, key))[:k]
        out.append([(int(ids[i]), float(row[i])) for i in order])
    return out


def sparse_top_k(base: sp.csr_matrix, ids: np.ndarray, q: sp.csr_matrix, k: int) -> list[list[tuple[int, float]]]:
    """Brute-force sparse IP top-k with scipy, over the rows with a positive score."""
    scores = (q @ base.T).toarray()
    out = []
    for s in scores:
        cand = np.flatnonzero(s > 0)  # a hit has a positive score
        order = np.lexsort((ids[cand], -s[cand]))[:k]
        out.append([(int(ids[cand[i]]), float(s[cand[i]])) for i in order])
    return out


def same_hits(got: list[dict[str, Any]], want: list[tuple[int, float]], truth: dict[int, float], tol: float = 1e-4) -> None:
    """A search answer is an exact top-k: the same distances in order as the brute force's,
    each hit's id at the distance the brute force gives it (``truth``: id -> distance), no
    id twice. (Ids may differ from ``want`` only where distances tie.)"""
    assert len(got) == len(want), (got, want)
    assert np.allclose([h["distance"] for h in got], [d for _, d in want], rtol=tol, atol=tol), (got, want)
    for h in got:
        assert h["id"] in truth and abs(truth[h["id"]] - h["distance"]) <= tol * max(1.0, abs(h["distance"])), h
    assert len({h["id"] for h in got}) == len(got)
