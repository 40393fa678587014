"""BOOL, the integers and the floats: fixed-width Arrow columns, checked strictly.

Strictly means more than pyarrow would: it turns ``True`` into ``1`` for an integer column
and ``"3"`` into an error message nobody can read, and lets a float64 value overflow float32
into infinity. The fast paths cover the common case (a column of plain ints or floats) in
one vectorised pass; the per-value loops run only to name the offending row.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.base import FieldKind

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema

INTEGER_TYPES = frozenset({DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64})
FLOAT_TYPES = frozenset({DataType.FLOAT, DataType.DOUBLE})
INT_RANGES = {
    DataType.INT8: (-(2**7), 2**7 - 1),
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
}
FLOAT32_MAX = 3.4028234663852886e38
_ARROW = {
    DataType.BOOL: pa.bool_(),
    DataType.INT8: pa.int8(),
    DataType.INT16: pa.int16(),
    DataType.INT32: pa.int32(),
    DataType.INT64: pa.int64(),
    DataType.FLOAT: pa.float32(),
    DataType.DOUBLE: pa.float64(),
}


class _Fixed(FieldKind):
    def arrow_type(self, f: FieldSchema) -> pa.DataType:
        return _ARROW[f.dtype]


class Bool(_Fixed):
    dtypes = (DataType.BOOL,)

    def check_value(self, f: FieldSchema, value: Any) -> Any:
        if not isinstance(value, bool):
            raise InvalidArgument(f"field {f.name!r} expects BOOL, got {type(value).__name__}")
        return value

    def column(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> pa.Array:
        for i, v in enumerate(values):
            if v is not None and not isinstance(v, bool | np.bool_):
                raise self.type_error(f, v, i)
        return pa.array(values, type=pa.bool_())


class Integer(_Fixed):
    dtypes = tuple(sorted(INTEGER_TYPES))

    def check_value(self, f: FieldSchema, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"field {f.name!r} expects {f.dtype.name}, got {type(value).__name__}")
        lo, hi = INT_RANGES[f.dtype]
        if not lo <= value <= hi:
            raise InvalidArgument(f"field {f.name!r}: {value} is out of range for {f.dtype.name}")
        return value

    def column(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> pa.Array:
        values = list(values)
        # Fast path: a column of plain ints (bool is its own type, so it is not let through).
        kinds = set(map(type, values))
        for i, v in enumerate(values if not kinds <= {int, type(None)} else ()):
            if v is not None and (isinstance(v, bool | np.bool_) or not isinstance(v, int | np.integer)):
                raise self.type_error(f, v, i)
        lo, hi = INT_RANGES[f.dtype]
        present = [v for v in values if v is not None]
        if present and (min(present) < lo or max(present) > hi):
            # Name the row as every other row error does, so a bad value in a big batch is findable.
            i, bad = next((i, v) for i, v in enumerate(values) if v is not None and not lo <= v <= hi)
            raise InvalidArgument(f"row {i}: field {f.name!r}: {bad} is out of range for {f.dtype.name}")
        return pa.array(values, type=_ARROW[f.dtype])


class Floating(_Fixed):
    dtypes = (DataType.FLOAT, DataType.DOUBLE)

    def check_value(self, f: FieldSchema, value: Any) -> Any:
        t = f.dtype
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidArgument(f"field {f.name!r} expects {t.name}, got {type(value).__name__}")
        try:
            finite = math.isfinite(value)
        except OverflowError:  # an int beyond float64 (10**400) must be InvalidArgument too
            finite = False
        if not finite:
            raise InvalidArgument(f"field {f.name!r}: NaN, infinity and values beyond {t.name} range are not allowed")
        if t == DataType.FLOAT and abs(value) > FLOAT32_MAX:
            # Otherwise the default is accepted here and every row that falls back on it fails.
            raise InvalidArgument(f"field {f.name!r}: {value!r} is out of range for FLOAT")
        return float(value)

    def column(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> pa.Array:
        t = f.dtype
        values = list(values)
        # Fast path: plain ints and floats, all finite, checked in one numpy pass. Anything
        # else goes through the per-value loop, which names the offending row.
        fast = set(map(type, values)) <= {int, float, type(None)}
        if fast:
            try:
                present = np.asarray([v for v in values if v is not None], dtype=np.float64)
                fast = bool(np.isfinite(present).all())
            except OverflowError:  # an int beyond float64
                fast = False
        for i, v in enumerate(values if not fast else ()):
            if v is not None:
                # np.number would admit complex, which math.isfinite cannot take.
                if isinstance(v, bool | np.bool_) or not isinstance(v, int | float | np.integer | np.floating):
                    raise self.type_error(f, v, i)
                try:
                    finite = math.isfinite(v)
                except OverflowError:  # an int beyond float64 (10**400) used to escape as OverflowError
                    finite = False
                if not finite:
                    raise InvalidArgument(
                        f"row {i}: field {f.name!r}: NaN, infinity and values beyond {t.name} range "
                        "are not allowed"
                    )
        arr = pa.array([None if v is None else float(v) for v in values], type=pa.float64())
        if t == DataType.FLOAT:
            # Values beyond float32 range become inf on the cast: reject them, naming the row
            # (and without numpy's overflow RuntimeWarning leaking to the caller).
            with np.errstate(over="ignore"):
                finite_rows = np.isfinite(arr.to_numpy(zero_copy_only=False).astype(np.float32, copy=False))
            bad_rows = np.flatnonzero(~finite_rows & ~np.asarray(arr.is_null()))
            if bad_rows.size:
                i = int(bad_rows[0])
                raise InvalidArgument(f"row {i}: field {f.name!r}: {values[i]!r} is out of range for FLOAT")
            arr = arr.cast(pa.float32())
        return arr
