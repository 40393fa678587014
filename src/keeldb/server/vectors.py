"""The vector types other than FLOAT_VECTOR on Milvus's wire, as pymilvus 3.x sends and
reads them (pymilvus ``client/entity_helper.py``, ``prepare.py``, ``field_data_extractors.py``):

| type | FieldData slot (insert, and results) | search placeholder |
|---|---|---|
| BINARY_VECTOR | ``vectors.binary_vector``: rows' dim/8 bytes back to back | BinaryVector, one row's bytes a value |
| FLOAT16_VECTOR | ``vectors.float16_vector``: 2 bytes a value; or ``float_vector`` (pymilvus sends lists and float32 arrays that way, Milvus converts) | Float16Vector, or FloatVector |
| BFLOAT16_VECTOR | ``vectors.bfloat16_vector``, or ``float_vector`` (as above) | BFloat16Vector, or FloatVector |
| INT8_VECTOR | ``vectors.int8_vector``: 1 byte a value | Int8Vector |
| SPARSE_FLOAT_VECTOR | ``vectors.sparse_float_vector``: ``contents`` (a row each: (uint32, float32) pairs, little-endian), ``dim`` (largest index + 1) | SparseFloatVector, a row each |

What pymilvus makes of results: byte-stored vectors come back as the row's ``bytes`` (in a
one-element list from ``query``), sparse rows as ``{index: value}`` dicts. Values are
checked by the field kinds exactly as embedded inserts are.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pymilvus.grpc_gen import common_pb2, schema_pb2

from keeldb.errors import InvalidArgument
from keeldb.fields import vector_kind_of
from keeldb.fields.dense import DenseVectorKind
from keeldb.fields.sparse_vector import SparseRows, from_packed
from keeldb.schema import DataType, FieldSchema

# The FieldData slot of each type's values, and its search placeholder.
SLOTS = {
    DataType.BINARY_VECTOR: "binary_vector",
    DataType.FLOAT16_VECTOR: "float16_vector",
    DataType.BFLOAT16_VECTOR: "bfloat16_vector",
    DataType.INT8_VECTOR: "int8_vector",
    DataType.SPARSE_FLOAT_VECTOR: "sparse_float_vector",
}
PLACEHOLDERS = {
    DataType.FLOAT_VECTOR: common_pb2.PlaceholderType.FloatVector,
    DataType.BINARY_VECTOR: common_pb2.PlaceholderType.BinaryVector,
    DataType.FLOAT16_VECTOR: common_pb2.PlaceholderType.Float16Vector,
    DataType.BFLOAT16_VECTOR: common_pb2.PlaceholderType.BFloat16Vector,
    DataType.INT8_VECTOR: common_pb2.PlaceholderType.Int8Vector,
    DataType.SPARSE_FLOAT_VECTOR: common_pb2.PlaceholderType.SparseFloatVector,
}
_HALF = (DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR)


def column_from_proto(f: FieldSchema, fd: schema_pb2.FieldData, n: int) -> Any:
    """One incoming column of a non-float vector field, in a form its kind takes."""
    if f.dtype == DataType.SPARSE_FLOAT_VECTOR:
        contents = list(fd.vectors.sparse_float_vector.contents)
        if len(contents) != n:
            raise InvalidArgument(f"sparse vector field {f.name!r} has {len(contents)} rows for {n} rows")
        return from_packed(contents, f.name)
    if fd.vectors.dim != f.dim:
        raise InvalidArgument(
            f"vector field {f.name!r} has dimension {fd.vectors.dim} in the request, the collection's is {f.dim}"
        )
    kind = vector_kind_of(f.dtype)
    assert f.dim is not None and isinstance(kind, DenseVectorKind)
    if f.dtype in _HALF and fd.vectors.WhichOneof("data") == "float_vector":
        flat = np.asarray(fd.vectors.float_vector.data, dtype=np.float32)
        if flat.size != n * f.dim:
            raise InvalidArgument(f"vector field {f.name!r} has {flat.size} floats for {n} rows of {f.dim}")
        return flat.reshape(n, f.dim)
    raw = getattr(fd.vectors, SLOTS[f.dtype])
    storage, width = kind.storage, kind.width(f)
    if len(raw) != n * width * storage.itemsize:
        raise InvalidArgument(
            f"vector field {f.name!r} ({f.dtype.name}, dim {f.dim}) has {len(raw)} bytes for {n} rows: "
            f"{n * width * storage.itemsize} bytes needed ({width * storage.itemsize} a row)"
        )
    return np.frombuffer(raw, dtype=storage).reshape(n, width).copy()


def field_to_proto(f: FieldSchema, values: list[Any]) -> schema_pb2.FieldData:
    """An outgoing column of a non-float vector field. ``values`` are what the engine
    returns (bytes, or ``[bytes]`` as the embedded ``query`` returns them; dicts)."""
    fd = schema_pb2.FieldData(type=int(f.dtype), field_name=f.name)
    if f.dtype == DataType.SPARSE_FLOAT_VECTOR:
        out = fd.vectors.sparse_float_vector
        out.SetInParent()
        kind = vector_kind_of(f.dtype)
        rows: SparseRows = kind.vectors(f, values)
        out.contents.extend(rows.row_bytes(i) for i in range(len(rows)))
        out.dim = int(rows.indices.max()) + 1 if rows.nnz else 0
        return fd
    fd.vectors.dim = f.dim or 0
    raw = [v[0] if isinstance(v, list) else v for v in values]
    setattr(fd.vectors, SLOTS[f.dtype], b"".join(raw))
    return fd


def search_texts(placeholder_group: bytes) -> list[str]:
    """Search texts (a BM25 function's output field is searched with text): pymilvus sends
    them as a VarChar placeholder of UTF-8 bytes."""
    group = common_pb2.PlaceholderGroup()
    try:
        group.ParseFromString(placeholder_group)
    except Exception:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise InvalidArgument("malformed placeholder group") from None
    if len(group.placeholders) != 1 or not group.placeholders[0].values:
        raise InvalidArgument("expected exactly one placeholder of query texts")
    ph = group.placeholders[0]
    if ph.type != common_pb2.PlaceholderType.VarChar:
        raise InvalidArgument("the output field of a BM25 function is searched with text (a list of strings), not vectors")
    try:
        return [bytes(v).decode("utf-8") for v in ph.values]
    except UnicodeDecodeError:
        raise InvalidArgument("query text must be UTF-8") from None


def search_queries(placeholder_group: bytes, f: FieldSchema) -> Any:
    """Search vectors (a serialized PlaceholderGroup) for field ``f``, as the embedded
    ``search`` takes them (float32 rows, each row's bytes, or sparse rows). The
    placeholder's type must be the field's (a FloatVector placeholder is also taken for
    FLOAT16 / BFLOAT16 fields, as pymilvus sends lists that way)."""
    group = common_pb2.PlaceholderGroup()
    try:
        group.ParseFromString(placeholder_group)
    except Exception:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise InvalidArgument("malformed placeholder group") from None
    if len(group.placeholders) != 1:
        raise InvalidArgument("expected exactly one placeholder of query vectors")
    ph = group.placeholders[0]
    if not ph.values:
        raise InvalidArgument("no query vectors")
    want = PLACEHOLDERS.get(f.dtype)
    floats = ph.type == common_pb2.PlaceholderType.FloatVector
    if ph.type != want and not (floats and f.dtype in _HALF):
        got = common_pb2.PlaceholderType.Name(ph.type) if ph.type in common_pb2.PlaceholderType.values() else ph.type
        raise InvalidArgument(
            f"vector type must be the same, field {f.name} - {vector_kind_of(f.dtype).milvus_name}, "
            f"search info type - {got}"
        )
    if f.dtype == DataType.SPARSE_FLOAT_VECTOR:
        return from_packed(list(ph.values), f.name)
    if floats:
        assert f.dim is not None
        for v in ph.values:
            if len(v) != 4 * f.dim:
                raise InvalidArgument(f"query vector has dimension {len(v) // 4}, the field's is {f.dim}")
        return np.frombuffer(b"".join(ph.values), dtype="<f4").reshape(len(ph.values), f.dim)
    return list(ph.values)  # each a row's bytes: the kind checks their length
