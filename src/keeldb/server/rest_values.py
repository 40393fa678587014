"""JSON values of the REST API <-> the messages the gRPC handlers take and give.

Incoming rows become an ``InsertRequest`` / ``UpsertRequest`` through pymilvus's own row
packer (``Prepare.row_insert_param``), fed the field list pymilvus derives from the
collection's ``DescribeCollection`` reply: the message is the one a pymilvus client sends
for the same rows, so the server checks it on the path every gRPC insert takes. JSON has no
bytes and no integer map keys, so a few values are first put in the form pymilvus takes
(binary and byte vectors, sparse vectors). Search data become a ``PlaceholderGroup``.

Outgoing ``FieldData`` columns become rows as Milvus's REST handler renders them
(``buildQueryResp``): int64 as numbers, or as strings when the request says
``Accept-Type-Allow-Int64: false``; the dynamic field's keys merged into the row; byte
vectors as base64 text (Go's encoding of ``[]byte``); sparse vectors as
``{"index": value}``; a search hit's primary key as ``id`` and its score as ``distance``.
"""

from __future__ import annotations

import base64
import binascii
import json
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymilvus.client.abstract import CollectionSchema as PymilvusSchema
from pymilvus.client.prepare import Prepare
from pymilvus.grpc_gen import common_pb2, schema_pb2

DT = schema_pb2.DataType


class BadValue(Exception):
    """A JSON value that cannot be what its field or parameter needs (the message says
    which); the REST layer answers it with Milvus's code for the request part."""


# -- rows in ----------------------------------------------------------------------------


def fields_info(describe: Any) -> tuple[list[dict[str, Any]], bool]:
    """pymilvus's view of a collection (its ``describe_collection`` dict): the fields and
    whether the dynamic field is on."""
    d = PymilvusSchema(raw=describe).dict()
    return d["fields"], bool(d.get("enable_dynamic_field", False))


def _bytes_value(name: str, v: Any) -> bytes:
    if isinstance(v, str):
        try:
            return base64.b64decode(v, validate=True)
        except (binascii.Error, ValueError):
            raise BadValue(f"field {name}: a binary vector is base64 text or a list of bytes (0-255)") from None
    if isinstance(v, list) and all(isinstance(x, int) and 0 <= x <= 255 for x in v):
        return bytes(v)
    raise BadValue(f"field {name}: a binary vector is base64 text or a list of bytes (0-255)")


def _sparse_value(name: str, v: Any) -> dict[int, float]:
    if isinstance(v, dict) and set(v) >= {"indices", "values"} and len(v) == 2:
        pairs = zip(v["indices"], v["values"], strict=False)
    elif isinstance(v, dict):
        pairs = v.items()  # type: ignore[assignment]
    else:
        raise BadValue(f"field {name}: a sparse vector is an object of index: value")
    try:
        return {int(k): float(x) for k, x in pairs}
    except (TypeError, ValueError):
        raise BadValue(f"field {name}: sparse vector indices are integers and values numbers") from None


def prepare_rows(rows: Any, fields: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON rows with each vector value in a form pymilvus packs."""
    if not isinstance(rows, list) or not rows:
        raise BadValue("data must be a non-empty list of rows")
    kinds = {f["name"]: f["type"] for f in fields}
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict):
            raise BadValue(f"row {i} is not a JSON object")
        r = dict(row)
        for name, v in row.items():
            t = kinds.get(name)
            if v is None or t is None:
                continue
            if t == DT.BinaryVector:
                r[name] = _bytes_value(name, v)
            elif t == DT.SparseFloatVector:
                r[name] = _sparse_value(name, v)
            elif t == DT.Int8Vector and isinstance(v, list):
                r[name] = np.asarray(v, dtype=np.int8)
            elif t in (DT.Float16Vector, DT.BFloat16Vector) and isinstance(v, str):
                r[name] = _bytes_value(name, v)
        out.append(r)
    return out


def insert_request(
    collection: str, rows: Any, partition: str, describe: Any, upsert: bool, db_name: str
) -> Any:
    """The Insert/UpsertRequest pymilvus would send for ``rows``."""
    fields, dynamic = fields_info(describe)
    prepared = prepare_rows(rows, fields)
    pack = Prepare.row_upsert_param if upsert else Prepare.row_insert_param
    try:
        req = pack(collection, prepared, partition or "", fields, enable_dynamic=dynamic)
    except Exception as e:  # noqa: BLE001 - pymilvus raises its own ParamError / DataNotMatchException
        raise BadValue(getattr(e, "message", None) or str(e)) from None
    if db_name:
        req.db_name = db_name
    return req


# -- search data ----------------------------------------------------------------------


def placeholder_group(data: Any, field: schema_pb2.FieldSchema, text: bool) -> bytes:
    """``data`` (a list of query vectors, or texts for a BM25 output field) as the
    PlaceholderGroup pymilvus sends."""
    if not isinstance(data, list) or not data:
        raise BadValue("data must be a non-empty list of query vectors")
    ph = common_pb2.PlaceholderValue(tag="$0")
    t = field.data_type
    if text:
        if not all(isinstance(x, str) for x in data):
            raise BadValue(f"field {field.name} is searched with texts: data must be a list of strings")
        ph.type = common_pb2.PlaceholderType.VarChar
        ph.values.extend(x.encode("utf-8") for x in data)
    elif t == DT.BinaryVector:
        ph.type = common_pb2.PlaceholderType.BinaryVector
        ph.values.extend(_bytes_value(field.name, x) for x in data)
    elif t == DT.SparseFloatVector:
        ph.type = common_pb2.PlaceholderType.SparseFloatVector
        for x in data:
            pairs = sorted(_sparse_value(field.name, x).items())
            ph.values.append(b"".join(struct.pack("<If", k, v) for k, v in pairs))
    elif t == DT.Int8Vector:
        ph.type = common_pb2.PlaceholderType.Int8Vector
        ph.values.extend(_numbers(field.name, x, np.int8).tobytes() for x in data)
    else:  # float vectors; FLOAT16 / BFLOAT16 are searched with float32 values, as pymilvus sends lists
        ph.type = common_pb2.PlaceholderType.FloatVector
        ph.values.extend(_numbers(field.name, x, np.float32).astype("<f4").tobytes() for x in data)
    return common_pb2.PlaceholderGroup(placeholders=[ph]).SerializeToString()


def _numbers(name: str, v: Any, dtype: Any) -> np.ndarray:
    if not isinstance(v, list) or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in v):
        raise BadValue(f"field {name}: a query vector is a list of numbers")
    return np.asarray(v, dtype=dtype)


def template_values(params: Any) -> dict[str, schema_pb2.TemplateValue]:
    """``exprParams`` as ``expr_template_values`` (Milvus's generateExpressionTemplate)."""
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise BadValue("exprParams must be an object")
    return {k: _template(v, k) for k, v in params.items()}


def _template(v: Any, name: str) -> schema_pb2.TemplateValue:
    if isinstance(v, bool):
        return schema_pb2.TemplateValue(bool_val=v)
    if isinstance(v, int):
        return schema_pb2.TemplateValue(int64_val=v)
    if isinstance(v, float):
        return schema_pb2.TemplateValue(float_val=v)
    if isinstance(v, str):
        return schema_pb2.TemplateValue(string_val=v)
    if isinstance(v, list):
        return schema_pb2.TemplateValue(array_val=_template_array(v, name))
    raise BadValue(f"exprParams {name}: unsupported value {v!r}")


def _template_array(v: list[Any], name: str) -> schema_pb2.TemplateArrayValue:
    out = schema_pb2.TemplateArrayValue()
    kinds = {type(x) for x in v}
    if kinds <= {bool} and v:
        out.bool_data.data.extend(v)
    elif kinds <= {int} and v:
        out.long_data.data.extend(v)
    elif kinds <= {int, float} and v:
        out.double_data.data.extend(float(x) for x in v)
    elif kinds <= {str} and v:
        out.string_data.data.extend(v)
    elif kinds <= {list} and v:
        out.array_data.data.extend(_template_array(x, name) for x in v)
    else:
        out.json_data.data.extend(json.dumps(x).encode() for x in v)
    return out


# -- rows out ---------------------------------------------------------------------------

_SCALARS = {
    DT.Bool: "bool_data", DT.Int8: "int_data", DT.Int16: "int_data", DT.Int32: "int_data",
    DT.Int64: "long_data", DT.Float: "float_data", DT.Double: "double_data",
    DT.VarChar: "string_data", DT.String: "string_data", DT.Timestamptz: "string_data",
    DT.Geometry: "geometry_wkt_data", DT.Text: "string_data",
}  # fmt: skip
_BYTE_VECTORS = {DT.BinaryVector: "binary_vector", DT.Float16Vector: "float16_vector",
                 DT.BFloat16Vector: "bfloat16_vector"}  # fmt: skip


def _column(fd: schema_pb2.FieldData, n: int, int64_numbers: bool) -> list[Any]:
    t = fd.type
    if t in _SCALARS:
        values: list[Any] = list(getattr(fd.scalars, _SCALARS[t]).data)
        if t == DT.Int64 and not int64_numbers:
            values = [str(x) for x in values]
    elif t == DT.JSON:
        values = [json.loads(b) if b else None for b in fd.scalars.json_data.data]
    elif t == DT.Array:
        values = [_array_cell(c) for c in fd.scalars.array_data.data]
    elif t == DT.FloatVector:
        dim = fd.vectors.dim or 1
        flat = fd.vectors.float_vector.data
        values = [list(flat[i * dim : (i + 1) * dim]) for i in range(len(flat) // dim)]
    elif t in _BYTE_VECTORS:
        raw = getattr(fd.vectors, _BYTE_VECTORS[t])
        width = (fd.vectors.dim // 8) if t == DT.BinaryVector else fd.vectors.dim * 2
        values = [base64.b64encode(raw[i * width : (i + 1) * width]).decode() for i in range(len(raw) // max(width, 1))]
    elif t == DT.Int8Vector:
        dim = fd.vectors.dim or 1
        arr = np.frombuffer(fd.vectors.int8_vector, dtype=np.int8)
        values = [arr[i * dim : (i + 1) * dim].tolist() for i in range(len(arr) // dim)]
    elif t == DT.SparseFloatVector:
        values = [_sparse_row(b) for b in fd.vectors.sparse_float_vector.contents]
    else:
        values = [""] * n
    if len(fd.valid_data):
        valid = list(fd.valid_data)
        if len(values) == len(valid):
            values = [v if ok else None for v, ok in zip(values, valid, strict=True)]
        else:  # compact: only the valid rows' values
            it = iter(values)
            values = [next(it) if ok else None for ok in valid]
    return values


def _array_cell(cell: schema_pb2.ScalarField) -> list[Any]:
    which = cell.WhichOneof("data")
    return [] if which is None else list(getattr(cell, which).data)


def _sparse_row(b: bytes) -> dict[str, float]:
    return {str(k): float(np.float32(v)) for k, v in struct.iter_unpack("<If", b)}


def _row_count(fields: Sequence[schema_pb2.FieldData]) -> int:
    for fd in fields:
        if fd.type in _SCALARS:
            return len(getattr(fd.scalars, _SCALARS[fd.type]).data) if not len(fd.valid_data) else len(fd.valid_data)
        if fd.type == DT.JSON:
            return len(fd.scalars.json_data.data)
        if fd.type == DT.Array:
            return len(fd.scalars.array_data.data)
    return len(_column(fields[0], 0, True)) if fields else 0


def rows(
    fields: Sequence[schema_pb2.FieldData], int64_numbers: bool, n: int | None = None
) -> list[dict[str, Any]]:
    """Result columns as row objects (dynamic keys merged in)."""
    if n is None:
        n = _row_count(fields)
    out: list[dict[str, Any]] = [{} for _ in range(n)]
    for fd in fields:
        col = _column(fd, n, int64_numbers)
        if fd.is_dynamic:
            for r, meta in zip(out, col, strict=False):
                if isinstance(meta, dict):
                    r.update(meta)
            continue
        for r, v in zip(out, col, strict=False):
            r[fd.field_name] = v
    return out


def hits(results: schema_pb2.SearchResultData, int64_numbers: bool) -> list[dict[str, Any]]:
    """A search's hits, every query's one after another (Milvus's v2 ``search`` answer):
    the entity's output fields, ``id`` (the primary key) and ``distance`` (the score)."""
    which = results.ids.WhichOneof("id_field")
    ids: list[Any] = list(results.ids.int_id.data) if which == "int_id" else list(results.ids.str_id.data)
    if which == "int_id" and not int64_numbers:
        ids = [str(x) for x in ids]
    out = rows(results.fields_data, int64_numbers, len(ids)) if len(results.fields_data) else [{} for _ in ids]
    for r, pk, score in zip(out, ids, results.scores, strict=False):
        r["id"] = pk
        r["distance"] = score
    return out
