"""Which default values Milvus accepts for which field type.

Milvus checks the *protobuf slot* a default arrives in (``ValueField``'s oneof: bool_data,
int_data, long_data, float_data, double_data, string_data) against the field's type, and
refuses any other: an ``int_data`` default on an INT8, INT16 or INT32 field, ``long_data``
on INT64, ``float_data`` on FLOAT, and so on (rootcoord's ``checkFieldSchema``). pymilvus
picks the slot from the Python value (``orm/types.py``: ``infer_dtype_by_scalar_data``):
``int`` goes to long_data, so ``default_value=1`` on an INT8 field is refused by Milvus,
and a plain ``float`` on a FLOAT field goes to float_data and is accepted.

The server checks the slot it received; the embedded client infers it from the Python
value the way pymilvus would (``slot_of_python``), with one relaxation: a plain ``int`` is
taken for an INT8/INT16/INT32 field (pymilvus would send it as long_data, which Milvus then
refuses; over the wire that refusal stands). Every other mismatch -- a string, bool or
float into an integer field, an int into FLOAT, any default on JSON or ARRAY -- is refused
in Milvus's words by both paths.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument

# Milvus's names: schemapb.DataType's enum names for fields, and the names its error
# message gives the slots.
MILVUS_TYPE_NAMES = {
    DataType.BOOL: "Bool",
    DataType.INT8: "Int8",
    DataType.INT16: "Int16",
    DataType.INT32: "Int32",
    DataType.INT64: "Int64",
    DataType.FLOAT: "Float",
    DataType.DOUBLE: "Double",
    DataType.STRING: "String",
    DataType.VARCHAR: "VarChar",
    DataType.ARRAY: "Array",
    DataType.JSON: "JSON",
    DataType.GEOMETRY: "Geometry",
    DataType.TEXT: "Text",
    DataType.TIMESTAMPTZ: "Timestamptz",
    DataType.BINARY_VECTOR: "BinaryVector",
    DataType.FLOAT_VECTOR: "FloatVector",
    DataType.FLOAT16_VECTOR: "Float16Vector",
    DataType.BFLOAT16_VECTOR: "BFloat16Vector",
    DataType.SPARSE_FLOAT_VECTOR: "SparseFloatVector",
    DataType.INT8_VECTOR: "Int8Vector",
}
SLOT_NAMES = {
    "bool_data": "DataType_Bool",
    "int_data": "DataType_Int",
    "long_data": "DataType_Int64",
    "float_data": "DataType_Float",
    "double_data": "DataType_Double",
    "string_data": "DataType_VarChar",
    "bytes_data": "DataType_Bytes",
    "timestamptz_data": "DataType_Timestamptz",
}
_ALLOWED = {
    DataType.BOOL: {"bool_data"},
    DataType.INT8: {"int_data"},
    DataType.INT16: {"int_data"},
    DataType.INT32: {"int_data"},
    DataType.INT64: {"long_data"},
    DataType.FLOAT: {"float_data"},
    DataType.DOUBLE: {"double_data"},
    DataType.VARCHAR: {"string_data"},
    DataType.TIMESTAMPTZ: {"string_data", "timestamptz_data"},
    DataType.GEOMETRY: {"string_data"},
}


def slot_of_python(value: Any, dtype: DataType) -> str | None:
    """The ValueField slot pymilvus would send ``value`` in for a field of ``dtype``."""
    if isinstance(value, bool | np.bool_):
        return "bool_data"
    if isinstance(value, np.float32) or (isinstance(value, float) and dtype == DataType.FLOAT):
        return "float_data"
    if isinstance(value, float | np.floating):
        return "double_data"
    if isinstance(value, np.int8 | np.int16 | np.int32):
        return "int_data"
    if isinstance(value, int | np.integer):
        if type(value) is int and dtype in (DataType.INT8, DataType.INT16, DataType.INT32):
            return "int_data"  # the embedded relaxation (module docstring)
        return "long_data"
    if isinstance(value, str):
        return "string_data"
    return None


def check_slot(name: str, dtype: DataType, slot: str | None) -> None:
    """InvalidArgument (Milvus's words) unless a default in ``slot`` fits the field."""
    allowed = _ALLOWED.get(dtype)
    if allowed is None:
        raise InvalidArgument(f"type not support default_value, type:{MILVUS_TYPE_NAMES.get(dtype, dtype.name)}")
    if slot not in allowed:
        raise InvalidArgument(
            f"type ({MILVUS_TYPE_NAMES[dtype]}) of field ({name}) is not equal to the "
            f"type({SLOT_NAMES.get(slot or '', 'DataType_None')}) of default_value"
        )


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value the schema stores (JSON in the catalog)."""
    return value.item() if isinstance(value, np.generic) else value
