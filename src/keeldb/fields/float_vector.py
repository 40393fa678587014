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
from keeldb.fields.arrow import numpy_of
from keeldb.fields.base import VectorKind

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema

MAX_DIM = 32768


def vector_column(arr: np.ndarray) -> pa.FixedSizeListArray:
    return pa.FixedSizeListArray.from_arrays(pa.array(arr.reshape(-1), type=pa.float32()), arr.shape[1])


def vectors_of(col: pa.ChunkedArray | pa.Array, dim: int) -> np.ndarray:
    """Zero-copy (when the column is one chunk) view of a vector column as an (n, dim) array."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    flat = col.flatten() if col.offset else col.values
    return numpy_of(flat).reshape(-1, dim)


class FloatVector(VectorKind):
    dtypes = (DataType.FLOAT_VECTOR,)

    def check_field(self, f: FieldSchema) -> None:
        if not isinstance(f.dim, int) or isinstance(f.dim, bool) or not 1 <= f.dim <= MAX_DIM:
            raise InvalidArgument(f"field {f.name!r}: dim must be an integer in [1, {MAX_DIM}], got {f.dim!r}")
        super().check_field(f)

    def arrow_type(self, f: FieldSchema) -> pa.DataType:
        assert f.dim is not None
        return pa.list_(pa.float32(), f.dim)

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

    def from_vectors(self, f: FieldSchema, vectors: np.ndarray) -> pa.Array:
        return vector_column(vectors)

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
