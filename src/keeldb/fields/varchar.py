"""VARCHAR: UTF-8 strings of at most ``max_length`` bytes (Milvus counts bytes, not
characters)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields.base import FieldKind

if TYPE_CHECKING:
    import numpy as np

    from keeldb.schema import FieldSchema

MAX_VARCHAR_LENGTH = 65535


class Varchar(FieldKind):
    dtypes = (DataType.VARCHAR,)

    def check_field(self, f: FieldSchema) -> None:
        # Milvus's words (proxy's ValidateField)
        if f.max_length is None:
            raise InvalidArgument(f"type param(max_length) should be specified for the field({f.name})")
        if (
            not isinstance(f.max_length, int)
            or isinstance(f.max_length, bool)
            or not 1 <= f.max_length <= MAX_VARCHAR_LENGTH
        ):
            raise InvalidArgument(
                f"the maximum length specified for the field({f.name}) should be in (0, {MAX_VARCHAR_LENGTH}], "
                f"but got {f.max_length} instead: invalid parameter"
            )

    def arrow_type(self, f: FieldSchema) -> pa.DataType:
        return pa.string()

    def check_value(self, f: FieldSchema, value: Any) -> Any:
        if not isinstance(value, str):
            raise InvalidArgument(f"field {f.name!r} expects VARCHAR, got {type(value).__name__}")
        assert f.max_length is not None
        if len(value.encode("utf-8")) > f.max_length:
            raise InvalidArgument(
                f"field {f.name!r}: length of varchar field {f.name} exceeds max length "
                f"({len(value.encode('utf-8'))} bytes, max_length {f.max_length})"
            )
        return value

    def column(self, f: FieldSchema, values: Sequence[Any] | np.ndarray) -> pa.Array:
        limit = f.max_length or 0
        if not set(map(type, values)) <= {str, type(None)}:
            for i, v in enumerate(values):
                if v is not None and not isinstance(v, str):
                    raise self.type_error(f, v, i)
        for i, v in enumerate(values):
            # A character is at most 4 bytes: only strings that could be too long are encoded.
            if v is not None and len(v) * 4 > limit and len(v.encode("utf-8")) > limit:
                raise InvalidArgument(
                    f"row {i}: field {f.name!r}: length of varchar field {f.name} exceeds max length "
                    f"({len(v.encode('utf-8'))} bytes, max_length {limit})"
                )
        return pa.array(list(values), type=pa.string())
