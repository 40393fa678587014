"""ARRAY: up to ``max_capacity`` values of one scalar ``element_type`` a row, stored as an
Arrow list column, so a segment's arrays are two flat buffers (offsets and values) that
filters (``array_contains``, ``tags[0]``, ``array_length``) read with numpy, never row by row.

Milvus's rules: the element type is BOOL, an integer, FLOAT, DOUBLE or VARCHAR (with its own
``max_length``); ``max_capacity`` is in (0, 4096]; the array itself may be null (nullable
field), its elements may not; an ARRAY has no default value and is never a primary or
partition key. Each element is checked by the element type's own kind, so an array of INT8
refuses 300 exactly as an INT8 field does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.base import FieldKind

if TYPE_CHECKING:
    from keeldb.schema import FieldSchema

MAX_CAPACITY = 4096
ELEMENT_TYPES = (
    DataType.BOOL,
    DataType.INT8,
    DataType.INT16,
    DataType.INT32,
    DataType.INT64,
    DataType.FLOAT,
    DataType.DOUBLE,
    DataType.VARCHAR,
)


def element_field(f: FieldSchema) -> FieldSchema:
    """The pseudo-field each element is checked against (same name, the element type)."""
    from keeldb.schema import FieldSchema  # the schema module imports this one

    assert f.element_type is not None
    return FieldSchema(f.name, f.element_type, max_length=f.max_length)


class Array(FieldKind):
    dtypes = (DataType.ARRAY,)

    def check_field(self, f: FieldSchema) -> None:
        et = f.element_type
        if et is None or int(et) == DataType.NONE:
            raise InvalidArgument(f"element data type None is not valid for field {f.name!r}: ARRAY needs element_type")
        try:
            et = DataType(int(et))
        except ValueError:
            raise InvalidArgument(f"field {f.name!r}: unknown element type {et!r}") from None
        if et not in ELEMENT_TYPES:
            raise InvalidArgument(f"element type {et.name} is not supported for ARRAY field {f.name!r}")
        f.element_type = et
        cap = f.max_capacity
        if cap is None:
            raise InvalidArgument(f"type param(max_capacity) should be specified for array field {f.name!r}")
        if isinstance(cap, bool) or not isinstance(cap, int) or not 0 < cap <= MAX_CAPACITY:
            raise InvalidArgument(
                f"the maximum capacity specified for a Array should be in (0, {MAX_CAPACITY}], got {cap!r}"
            )
        if et == DataType.VARCHAR:
            if f.max_length is None:
                raise InvalidArgument(f"type param(max_length) should be specified for the field({f.name})")
            element_field(f)  # checks max_length's range
        if f.is_partition_key or f.is_primary:
            raise InvalidArgument(f"ARRAY field {f.name!r} cannot be a primary or partition key")

    def arrow_type(self, f: FieldSchema) -> pa.DataType:
        elem = element_field(f)
        return pa.list_(elem.kind.arrow_type(elem))

    def check_value(self, f: FieldSchema, value: Any) -> Any:
        raise InvalidArgument("type not support default_value, type:Array")

    def column(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> pa.Array:
        assert f.max_capacity is not None
        elem = element_field(f)
        cap = f.max_capacity
        offsets = np.zeros(len(values) + 1, dtype=np.int32)
        nulls = np.zeros(len(values), dtype=bool)
        flat: list[Any] = []
        for i, v in enumerate(values):
            if v is None:
                nulls[i] = True
            else:
                if isinstance(v, str | bytes | Mapping) or not hasattr(v, "__len__"):
                    raise InvalidArgument(
                        f"row {i}: field {f.name!r} expects an ARRAY of {elem.dtype.name}, got {type(v).__name__} {v!r:.60}"
                    )
                if len(v) > cap:
                    raise InvalidArgument(
                        f"row {i}: field {f.name!r}: the length ({len(v)}) of the array exceeds max_capacity ({cap})"
                    )
                flat.extend(v.tolist() if isinstance(v, np.ndarray) else v)
            offsets[i + 1] = len(flat)
        try:
            if any(x is None for x in flat):
                raise InvalidArgument("array elements cannot be null")
            flat_arr = elem.kind.column(elem, flat)
        except InvalidArgument as e:
            raise self._row_error(f, elem, values, e) from None
        mask = pa.array(nulls) if nulls.any() else None
        return pa.ListArray.from_arrays(pa.array(offsets), flat_arr, type=self.arrow_type(f), mask=mask)

    @staticmethod
    def _row_error(f: FieldSchema, elem: FieldSchema, values: Sequence[Any], err: InvalidArgument) -> InvalidArgument:
        """The first row whose elements fail the element type's check (slow path, errors only)."""
        for i, v in enumerate(values):
            if v is None:
                continue
            items = v.tolist() if isinstance(v, np.ndarray) else list(v)
            if any(x is None for x in items):
                return InvalidArgument(f"row {i}: field {f.name!r}: array elements cannot be null")
            try:
                elem.kind.column(elem, items)
            except InvalidArgument as e:
                detail = e.message.split(": ", 1)[-1] if e.message.startswith("row ") else e.message
                if "exceeds max length" in detail:  # Milvus's words for an over-long string element
                    detail = f'length of Array array field "{f.name}" exceeds max length: {detail}'
                return InvalidArgument(f"row {i}: field {f.name!r} (ARRAY of {elem.dtype.name}): {detail}")
        return err
