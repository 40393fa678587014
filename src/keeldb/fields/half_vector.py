"""FLOAT16_VECTOR and BFLOAT16_VECTOR: ``dim`` 2-byte floats a row (numpy ``float16``;
``ml_dtypes.bfloat16``, the numpy dtype Milvus's own Python tests use).

Stored at 2 bytes a value, on disk and in memory: FLOAT16 as an Arrow
``fixed_size_list<halffloat>``, BFLOAT16 as ``fixed_size_list<uint16>`` holding the bfloat16
bit patterns (Arrow has no bfloat16 type). Searching converts to float32 only a block of
rows at a time (exact search) or a query (indexes: FAISS's ``QT_fp16`` / ``QT_bf16`` scalar
quantizers keep 2-byte codes and decode on the fly).

Values are taken in every form pymilvus sends or accepts: numpy arrays of the type, the
row's raw little-endian bytes, and lists / float32 arrays of numbers (pymilvus sends those
as float32, and Milvus converts them) — rounded to the type, refused if they overflow it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.dense import DenseVectorKind, queries_list
from keeldb.fields.float_vector import HALF_INDEX_TYPES, FloatVector, float_queries

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema

_FLOATS = FloatVector()


class _HalfVector(DenseVectorKind):
    index_types = HALF_INDEX_TYPES

    def from_values(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        if not isinstance(values, np.ndarray) and any(
            isinstance(v, bytes | bytearray | memoryview) or (isinstance(v, np.ndarray) and v.dtype == self.storage)
            for v in values
        ):
            # A mix of forms in one batch: row by row (rare; the uniform cases are above).
            return np.stack([self.vectors(f, [v])[0] for v in values])
        floats = _FLOATS.vectors(f, values)  # shape, element kinds, finiteness as float32
        with np.errstate(over="ignore"):
            return floats.astype(self.storage)

    def check_values(self, f: FieldSchema, arr: np.ndarray) -> None:
        finite = np.isfinite(arr.astype(np.float32)).all(axis=1)
        if not finite.all():
            row = int(np.flatnonzero(~finite)[0])
            raise InvalidArgument(
                f"row {row}: vector field {f.name!r} contains NaN, infinity or a value beyond "
                f"{f.dtype.name.removesuffix('_VECTOR').lower()} range"
            )

    def queries(self, f: FieldSchema, data: Any) -> np.ndarray:
        """Float32 queries: the type's own arrays or bytes (decoded exactly), or numbers."""
        if isinstance(data, np.ndarray) and data.dtype == self.storage and data.ndim == 2:
            # The batch as one array (the usual form of a numpy caller's queries): checked
            # whole, not split into rows and stacked again (a tenth of a 1-query search).
            return self.vectors(f, data).astype(np.float32)
        rows = queries_list(data)
        if all(isinstance(v, np.ndarray) and v.dtype == self.storage for v in rows) or all(
            isinstance(v, bytes | bytearray | memoryview) for v in rows
        ):
            return self.vectors(f, rows).astype(np.float32)
        return float_queries(rows, self.width(f))  # NaN and infinity refused there


class Float16Vector(_HalfVector):
    dtypes = (DataType.FLOAT16_VECTOR,)
    milvus_name = "Float16Vector"
    storage = np.dtype(np.float16)
    element = pa.float16()


class _Bfloat16Dtype:
    """``BFloat16Vector.storage``, imported on first use: ``import ml_dtypes`` costs ~0.6 s
    of CPU (its extension registers every type it has), which every keeldb process — each
    crash-test child, each server start — paid whether or not it had a BFLOAT16 field."""

    def __get__(self, obj: object, owner: type | None = None) -> np.dtype:
        import ml_dtypes

        return np.dtype(ml_dtypes.bfloat16)


class BFloat16Vector(_HalfVector):
    dtypes = (DataType.BFLOAT16_VECTOR,)
    milvus_name = "BFloat16Vector"
    storage = _Bfloat16Dtype()  # type: ignore[assignment]
    element = pa.uint16()  # the bfloat16 bit patterns
