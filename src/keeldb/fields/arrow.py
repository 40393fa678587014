"""Arrow columns as numpy, without pandas."""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def numpy_of(col: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """A column as numpy: zero-copy for null-free fixed-width columns, object array otherwise.

    Not ``to_numpy()``: pyarrow imports pandas (0.4 s) the first time that is called when
    pandas is installed, which would dominate a reopen.
    """
    if isinstance(col, pa.ChunkedArray):
        col = col.combine_chunks() if col.num_chunks != 1 else col.chunk(0)
    if col.null_count == 0 and (pa.types.is_integer(col.type) or pa.types.is_floating(col.type)):
        dtype = np.dtype(col.type.to_pandas_dtype())
        return np.frombuffer(col.buffers()[1], dtype=dtype, count=len(col), offset=col.offset * dtype.itemsize)
    return np.array(col.to_pylist(), dtype=object)
