"""INT8_VECTOR: ``dim`` signed bytes a row (Milvus 2.6), stored as an Arrow
``fixed_size_list<int8>``: one byte a value on disk and in memory.

Milvus builds only HNSW on it (metrics L2, IP, COSINE) and searches it with int8 query
vectors; distances are computed on the integer values, exactly. Values come as numpy int8
arrays or the row's raw bytes (what pymilvus sends), or — embedded — as lists of integers
in [-128, 127]; anything else (floats, out-of-range integers) is refused, naming the row.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.dense import DenseVectorKind, queries_list

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema


class Int8Vector(DenseVectorKind):
    dtypes = (DataType.INT8_VECTOR,)
    milvus_name = "Int8Vector"
    storage = np.dtype(np.int8)
    element = pa.int8()
    index_types = ("HNSW", "AUTOINDEX")

    def from_values(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        self.refuse_kinds(f, values, f"{self.width(f)} integers in [-128, 127]")
        rows = [self.vectors(f, [v])[0] if isinstance(v, bytes | bytearray | memoryview) else v for v in values]
        try:
            raw = np.asarray(rows)
        except (TypeError, ValueError):  # ragged rows
            raw = np.empty(0)
        if raw.ndim != 2 or raw.shape[1] != self.width(f):
            for i, v in enumerate(rows):
                n = len(v) if hasattr(v, "__len__") else None
                if n != self.width(f):
                    raise InvalidArgument(
                        f"row {i}: vector field {f.name!r} has dimension {n}, the collection's is {f.dim}"
                    )
            raise InvalidArgument(f"vector field {f.name!r}: values must be lists of {f.dim} integers")
        if raw.dtype.kind not in "iu":
            row = next(
                (i for i, v in enumerate(rows) if not all(isinstance(x, int | np.integer) and not isinstance(x, bool | np.bool_) for x in v)),
                0,
            )
            raise InvalidArgument(
                f"row {row}: vector field {f.name!r} (INT8_VECTOR) takes integers in [-128, 127], "
                f"got {raw.dtype.name} values"
            )
        bad = ((raw < -128) | (raw > 127)).any(axis=1)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            raise InvalidArgument(f"row {row}: vector field {f.name!r}: a value is out of range for INT8")
        return raw.astype(np.int8)

    def queries(self, f: FieldSchema, data: Any) -> np.ndarray:
        """Float32 copies of int8 query vectors (exact): int8 arrays, bytes or integers."""
        rows = queries_list(data)
        try:
            return self.vectors(f, rows).astype(np.float32)
        except InvalidArgument as e:
            raise InvalidArgument(f"INT8_VECTOR field {f.name!r} is searched with int8 vectors: {e}") from None
