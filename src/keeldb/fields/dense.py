"""What every fixed-width vector type shares: FLOAT, FLOAT16, BFLOAT16, INT8 and BINARY
vectors are ``width`` elements of one numpy dtype a row.

Stored as an Arrow ``fixed_size_list<element>[width]``, so a segment's vectors are one
contiguous (rows x width) block that is memory-mapped and viewed as numpy without a copy, at
the element's own size: 2 bytes a value for the half-precision types, 1 for INT8, one bit
for BINARY — never widened to float32 on disk or in memory. What differs per type (the
element, its width, how user values are checked, Milvus's rules) is in the type's module.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pyarrow as pa

from keeldb.errors import InvalidArgument
from keeldb.fields.base import VectorKind

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema

MAX_DIM = 32768
# Milvus's AUTOINDEX / no-index default for the float types; binary and sparse override it.
DENSE_METRICS = ("L2", "IP", "COSINE")


def fixed_column(arr: np.ndarray, element: pa.DataType) -> pa.FixedSizeListArray:
    """An (n, width) array as an Arrow fixed-size-list column of ``element`` (bfloat16,
    which Arrow has no type for, travels as its uint16 bit patterns)."""
    flat = np.ascontiguousarray(arr).reshape(-1)
    if flat.dtype.itemsize == 2 and element == pa.uint16():
        flat = flat.view(np.uint16)
    return pa.FixedSizeListArray.from_arrays(pa.array(flat, type=element), arr.shape[1])


def fixed_vectors(col: pa.ChunkedArray | pa.Array, width: int, dtype: np.dtype) -> np.ndarray:
    """Zero-copy (when the column is one chunk) view of a fixed-size-list column as an
    (n, width) array of ``dtype``."""
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    values = col.flatten() if col.offset else col.values
    n = len(values)
    if n == 0:
        return np.empty((0, width), dtype=dtype)
    itemsize = np.dtype(dtype).itemsize
    flat = np.frombuffer(values.buffers()[1], dtype=dtype, count=n, offset=values.offset * itemsize)
    return flat.reshape(-1, width)


class DenseBuffer:
    """A growing segment's fixed-width vectors: one array that doubles in capacity. A view
    is a slice of the array it was taken from; growth swaps in a new array (old rows copied
    first), so a reader holding an older slice stays correct."""

    def __init__(self, dtype: np.dtype, width: int, element: pa.DataType, capacity: int) -> None:
        self.arr = np.empty((capacity, width), dtype=dtype)
        self.element = element

    def append(self, start: int, vectors: np.ndarray) -> None:
        need = start + len(vectors)
        if need > len(self.arr):
            grown = np.empty((max(need, 2 * len(self.arr)), self.arr.shape[1]), dtype=self.arr.dtype)
            grown[:start] = self.arr[:start]
            self.arr = grown
        self.arr[start:need] = vectors

    def view(self, n: int) -> np.ndarray:
        return self.arr[:n]

    def to_arrow(self, n: int) -> pa.Array:
        return fixed_column(self.arr[:n], self.element)


class DenseVectorKind(VectorKind):
    """A fixed-width vector type. Subclasses name the stored numpy dtype and Arrow element,
    Milvus's rules, and how user values become an (n, width) array of that dtype."""

    storage: ClassVar[np.dtype]  # numpy dtype of one stored element
    element: ClassVar[pa.DataType]  # Arrow type of one stored element
    metrics = DENSE_METRICS
    default_metric = "COSINE"
    # pymilvus returns these types' values as the raw bytes of the row (search results) —
    # FLOAT_VECTOR as a list of floats.
    as_bytes: ClassVar[bool] = True

    def width(self, f: FieldSchema) -> int:
        """Elements a row: the dimension, except for BINARY (8 dimensions a byte)."""
        assert f.dim is not None
        return f.dim

    def check_field(self, f: FieldSchema) -> None:
        # Milvus's range and words (proxy validateDimension): 2 ~ 32768.
        if not isinstance(f.dim, int) or isinstance(f.dim, bool):
            raise InvalidArgument(f"field {f.name!r}: dim must be an integer in [2, {MAX_DIM}], got {f.dim!r}")
        if f.dim <= 1:
            raise InvalidArgument(f"invalid dimension: {f.dim}. should be in range 2 ~ {MAX_DIM} (field {f.name!r}, got {f.dim})")
        if f.dim > MAX_DIM:
            raise InvalidArgument(
                f"invalid dimension: {f.dim} of field {f.name}. float vector dimension should be in range 2 ~ {MAX_DIM} "
                f"(field {f.name!r}, got {f.dim})"
            )
        super().check_field(f)

    def arrow_type(self, f: FieldSchema) -> pa.DataType:
        return pa.list_(self.element, self.width(f))

    def from_vectors(self, f: FieldSchema, vectors: np.ndarray) -> pa.Array:
        return fixed_column(vectors, self.element)

    def from_arrow(self, f: FieldSchema, col: pa.ChunkedArray | pa.Array) -> np.ndarray:
        return fixed_vectors(col, self.width(f), self.storage)

    def new_buffer(self, f: FieldSchema, capacity: int) -> DenseBuffer:
        return DenseBuffer(self.storage, self.width(f), self.element, capacity)

    def values_at(self, f: FieldSchema, vectors: np.ndarray, rows: np.ndarray) -> list[Any]:
        picked = vectors[rows]
        if not self.as_bytes:
            return picked.tolist()
        return [r.tobytes() for r in np.ascontiguousarray(picked)]

    # -- checked conversion of user values (shared by the byte-stored types) ---------------

    def vectors(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """An (n, width) array of the stored dtype: the type's own numpy arrays and raw bytes
        (what pymilvus sends) as they are, anything else through ``from_values``; then the
        type's value check."""
        arr = self.typed_array(f, values)
        if arr is None:
            arr = self.byte_rows(f, values)
        if arr is None:
            arr = self.from_values(f, values)
        self.check_values(f, arr)
        return arr

    def from_values(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> np.ndarray:
        """Rows in any other form the type takes (lists of numbers, ...), or InvalidArgument."""
        raise InvalidArgument(f"vector field {f.name!r}: values must be {self.width(f)}-element vectors")

    def check_values(self, f: FieldSchema, arr: np.ndarray) -> None:  # noqa: B027 - most types have none
        """Rules on the stored values themselves (finite floats, ...), naming the first bad row."""

    def byte_rows(self, f: FieldSchema, values: Sequence[Any]) -> np.ndarray | None:
        """Rows given as raw bytes (what pymilvus sends for these types), as an (n, width)
        array; None if the rows are not all bytes-like. A wrong length names the row."""
        if isinstance(values, np.ndarray) or not len(values) or not all(isinstance(v, bytes | bytearray | memoryview) for v in values):
            return None
        size = self.width(f) * np.dtype(self.storage).itemsize
        for i, v in enumerate(values):
            if len(v) != size:
                raise InvalidArgument(
                    f"row {i}: vector field {f.name!r} ({f.dtype.name}, dim {f.dim}) needs {size} bytes a "
                    f"row, got {len(v)}"
                )
        flat = np.frombuffer(b"".join(bytes(v) for v in values), dtype=self.storage)
        return flat.reshape(len(values), self.width(f)).copy()

    def typed_array(self, f: FieldSchema, values: Any) -> np.ndarray | None:
        """``values`` already as numpy of the stored dtype: one (n, width) array, or a list
        of (width,) arrays. None otherwise; a wrong shape names the row."""
        if isinstance(values, np.ndarray) and values.dtype == self.storage:
            if values.ndim != 2 or values.shape[1] != self.width(f):
                raise InvalidArgument(
                    f"vector field {f.name!r} needs rows of {self.width(f)} {self.storage} values, "
                    f"got an array of shape {values.shape}"
                )
            return values
        if isinstance(values, np.ndarray) or not len(values) or not all(isinstance(v, np.ndarray) and v.dtype == self.storage for v in values):
            return None
        for i, v in enumerate(values):
            if v.shape != (self.width(f),):
                raise InvalidArgument(
                    f"row {i}: vector field {f.name!r} needs {self.width(f)} values, got shape {v.shape}"
                )
        return np.stack(values)

    def refuse_kinds(self, f: FieldSchema, values: Sequence[Any], what: str) -> None:
        """None, strings and dicts are never vectors: name the row."""
        for i, v in enumerate(values):
            if v is None or isinstance(v, str | Mapping):
                raise InvalidArgument(f"row {i}: vector field {f.name!r} needs {what}, got {type(v).__name__}")


def queries_list(data: Any) -> list[Any]:
    """Search input as a list of query vectors: one vector (a flat list, bytes, a 1-d
    array) becomes a list of one."""
    if isinstance(data, np.ndarray):
        return list(data) if data.ndim == 2 else [data] if data.ndim == 1 else _bad_queries()
    if isinstance(data, bytes | bytearray | memoryview):
        return [data]
    if not isinstance(data, Sequence) or isinstance(data, str) or len(data) == 0:
        return _bad_queries()
    first = data[0]
    if isinstance(first, int | float | np.integer | np.floating) and not isinstance(first, bool):
        return [data]
    return list(data)


def _bad_queries() -> list[Any]:
    raise InvalidArgument("data must be a non-empty list of query vectors")
