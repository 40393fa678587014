"""FLOAT_VECTOR: ``dim`` float32 values a row, stored as an Arrow fixed-size list so that a
segment's vectors are one contiguous (rows x dim) float32 block, memory-mapped and handed to
numpy and FAISS without a copy."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.dense import MAX_DIM, DenseVectorKind, fixed_column, fixed_vectors

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema

__all__ = ["MAX_DIM", "FloatVector", "float_queries", "vector_column", "vectors_of"]
# The float index types keeldb builds (index/params.py maps them to FAISS).
FLOAT_INDEX_TYPES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "HNSW_SQ", "HNSW_PQ", "HNSW_PRQ",
                     "IVF_RABITQ", "SCANN", "AUTOINDEX")  # fmt: skip
# FLOAT16 / BFLOAT16: the HNSW variants over codes, not (yet) RaBitQ or ScaNN
HALF_INDEX_TYPES = tuple(t for t in FLOAT_INDEX_TYPES if t not in ("IVF_RABITQ", "SCANN"))


def vector_column(arr: np.ndarray) -> pa.FixedSizeListArray:
    return fixed_column(arr.astype(np.float32, copy=False), pa.float32())


def vectors_of(col: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """Zero-copy (when the column is one chunk) view of a vector column as an (n, dim) array."""
    return fixed_vectors(col, dim, np.dtype(np.float32))


def float_queries(data: Any, dim: int) -> np.ndarray:
    """Query vectors: a list of vectors (or one vector, or an (nq, dim) array), as float32."""
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
    if not _ALL(np.isfinite(arr), axis=None):
        raise InvalidArgument("query vectors contain NaN or infinity")
    return arr


_ALL = np.logical_and.reduce  # (ndarray.all goes through a Python wrapper first: every search calls this)


class FloatVector(DenseVectorKind):
    dtypes = (DataType.FLOAT_VECTOR,)
    milvus_name = "FloatVector"
    storage = np.dtype(np.float32)
    element = pa.float32()
    index_types = FLOAT_INDEX_TYPES
    as_bytes = False

    def queries(self, f: FieldSchema, data: Any) -> np.ndarray:
        return float_queries(data, self.width(f))

    def vectors(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        for i, v in enumerate(values):
            if v is None or isinstance(v, str | bytes | Mapping):
                raise InvalidArgument(f"row {i}: vector field {f.name!r} needs a list of {f.dim} floats")
        # Convert with numpy's own dtype inference first and check the kind: converting
        # straight to float32 silently accepted strings ("1.5" -> 1.5) as vector elements, and
        # reported a scalar or nested "vector" as having dimension "irregular" with no row.
        # (Booleans stay accepted as 0/1, as pymilvus does: numpy promotes them silently in a
        # mixed batch anyway.)
        try:
            raw = np.asarray(values)
        except (TypeError, ValueError):  # ragged rows
            raise self._row_error(f, values) from None
        if raw.ndim != 2 or raw.shape[1] != f.dim or raw.dtype.kind not in "biuf":
            raise self._row_error(f, values)
        with np.errstate(over="ignore", invalid="ignore"):
            arr = raw.astype(np.float32, copy=False)
        finite = np.isfinite(arr).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise InvalidArgument(
                f"row {row}: vector field {f.name!r} contains NaN, infinity or a value beyond float32 range"
            )
        return arr

    def _row_error(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> InvalidArgument:
        """The first row that is not a list of ``dim`` numbers (slow path, errors only)."""
        for i, v in enumerate(values):
            try:
                n = len(v)
            except TypeError:
                return InvalidArgument(
                    f"row {i}: vector field {f.name!r} needs a list of {f.dim} floats, got {type(v).__name__}"
                )
            if n != f.dim:
                return InvalidArgument(
                    f"row {i}: vector field {f.name!r} has dimension {n}, the collection's is {f.dim}"
                )
            for x in v:
                if not isinstance(x, int | float | np.integer | np.floating | np.bool_):
                    return InvalidArgument(
                        f"row {i}: vector field {f.name!r}: element {x!r:.40} is a {type(x).__name__}, "
                        "not a number"
                    )
        return InvalidArgument(f"vector field {f.name!r}: values must be lists of {f.dim} numbers")
