"""BINARY_VECTOR: ``dim`` bits a row (``dim`` a multiple of 8), packed 8 to a byte as
Milvus and FAISS pack them, stored as an Arrow ``fixed_size_list<uint8>[dim / 8]``.

A row is given as its ``dim / 8`` bytes (``bytes``, a uint8 array, or a list of byte values,
as pymilvus's ``bytes(value)`` takes it). Metrics HAMMING (differing bits) and JACCARD
(1 - |a AND b| / |a OR b|); indexes BIN_FLAT and BIN_IVF_FLAT.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.base import VectorKind
from keeldb.fields.dense import DenseVectorKind, queries_list

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema

MAX_BINARY_DIM = 32768 * 8  # Milvus's limit: the float limit, in bits
_POP8 = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount_rows(x: np.ndarray) -> np.ndarray:
    """Set bits per row of a (..., bytes) uint8 array, as int32 (numpy >= 2 has a popcount
    ufunc, used 8 bytes at a time where the row allows; older numpy a byte table)."""
    if hasattr(np, "bitwise_count"):
        if x.shape[-1] % 8 == 0 and x.flags.c_contiguous:
            return np.bitwise_count(x.view(np.uint64)).sum(axis=-1, dtype=np.int32)
        return np.bitwise_count(x).sum(axis=-1, dtype=np.int32)
    return _POP8[x].sum(axis=-1, dtype=np.int32)


def bit_distances(q: np.ndarray, rows: np.ndarray, metric: str, row_bits: np.ndarray | None = None) -> np.ndarray:
    """Exact distances (float32) of one packed query (bytes,) to packed rows (n, bytes).
    HAMMING: popcount(q XOR row). JACCARD: 1 - |q AND row| / |q OR row|, with the union as
    |q| + |row| - |q AND row| (``row_bits``: the rows' popcounts, if already known); two
    all-zero vectors are at distance 0, as scipy's ``jaccard`` has it."""
    rows = np.ascontiguousarray(rows)
    if metric == "HAMMING":
        return popcount_rows(np.bitwise_xor(rows, q)).astype(np.float32)
    inter = popcount_rows(np.bitwise_and(rows, q))
    bits = popcount_rows(rows) if row_bits is None else row_bits
    union = bits + int(popcount_rows(q[None, :])[0]) - inter
    return np.where(union == 0, 0.0, 1.0 - inter / np.maximum(union, 1)).astype(np.float32)


class BinaryVector(DenseVectorKind):
    dtypes = (DataType.BINARY_VECTOR,)
    milvus_name = "BinaryVector"
    storage = np.dtype(np.uint8)
    element = pa.uint8()
    metrics = ("HAMMING", "JACCARD")
    default_metric = "HAMMING"
    index_types = ("BIN_FLAT", "BIN_IVF_FLAT", "AUTOINDEX")

    def width(self, f: FieldSchema) -> int:
        assert f.dim is not None
        return f.dim // 8

    def check_field(self, f: FieldSchema) -> None:
        dim = f.dim
        if not isinstance(dim, int) or isinstance(dim, bool) or dim % 8:
            # Milvus's own words, which its test suite checks.
            raise InvalidArgument(
                f"invalid dimension: {dim} of field {f.name}. binary vector dimension should be multiple of 8."
            )
        if not 8 <= dim <= MAX_BINARY_DIM:
            raise InvalidArgument(
                f"invalid dimension: {dim} of field {f.name}. binary vector dimension should be in range "
                f"8 ~ {MAX_BINARY_DIM}"
            )
        VectorKind.check_field(self, f)

    def from_values(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Rows as sequences of byte values (``bytes(value)``, as pymilvus converts them)."""
        self.refuse_kinds(f, values, f"{self.width(f)} bytes")
        rows = []
        for i, v in enumerate(values):
            try:
                rows.append(bytes(np.asarray(v, dtype=np.int64).tolist() if isinstance(v, np.ndarray) else v))
            except (TypeError, ValueError) as e:
                raise InvalidArgument(f"row {i}: vector field {f.name!r} (BINARY_VECTOR) takes {self.width(f)} bytes: {e}") from None
        arr = self.byte_rows(f, rows)
        return arr if arr is not None else np.empty((0, self.width(f)), dtype=np.uint8)

    def queries(self, f: FieldSchema, data: Any) -> np.ndarray:
        """Packed uint8 query vectors, (nq, dim / 8)."""
        return self.vectors(f, queries_list(data))
