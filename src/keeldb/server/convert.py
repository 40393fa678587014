"""Translation between Milvus's protobuf messages and keeldb's Python values.

Everything here is shape-shifting only — no storage rules, no validation beyond what the
wire format itself needs (a column's length, a vector's dimension); the engine's own checks
(``engine.rows``) apply to data that arrives over the wire exactly as to embedded calls.
What pymilvus sends and reads is documented in docs/research/pymilvus-wire.md; the
section numbers below refer to it.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import numpy as np
from pymilvus.grpc_gen import common_pb2, schema_pb2

from keeldb.engine.query import Output
from keeldb.engine.rows import MISSING
from keeldb.errors import InvalidArgument, KeelError
from keeldb.schema import DYNAMIC_FIELD, CollectionSchema, DataType, FieldSchema
from keeldb.server import vectors

# merr code -> legacy ErrorCode enum (§3): pymilvus checks both, and has_collection /
# list_indexes / describe_index look at the legacy one. 109 (schema mismatch) must map to
# legacy SchemaMismatch (62): that, not the code, is what makes pymilvus refresh its
# schema cache and retry.
_LEGACY = {100: 4, 101: 1, 109: 62, 200: 15, 700: 25, 800: 1, 1100: 5}


def status(err: BaseException | None = None) -> common_pb2.Status:
    if err is None:
        return common_pb2.Status()
    if isinstance(err, KeelError):
        code, reason = err.code, err.message
    else:
        code, reason = 65535, f"internal error: {type(err).__name__}: {err}"
    st = common_pb2.Status(code=code, error_code=_LEGACY.get(code, 1), reason=reason)
    if isinstance(err, InvalidArgument):
        st.extra_info["is_input_error"] = "true"
    return st


def kv(pairs: Sequence[common_pb2.KeyValuePair]) -> dict[str, str]:
    return {p.key: p.value for p in pairs}


def parse_param(value: str) -> Any:
    """Index / search parameters arrive as strings ("8", "64", '{"ef": 64}', "L2")."""
    try:
        return json.loads(value)
    except ValueError:
        return value


# -- schemas (§5) ---------------------------------------------------------------------


def _default_from_proto(v: schema_pb2.ValueField) -> Any:
    which = v.WhichOneof("data")
    return getattr(v, which) if which else None


def _default_to_proto(f: FieldSchema) -> schema_pb2.ValueField | None:
    v = f.default_value
    if v is None:
        return None
    t = f.dtype
    if t == DataType.BOOL:
        return schema_pb2.ValueField(bool_data=v)
    if t in (DataType.INT8, DataType.INT16, DataType.INT32):
        return schema_pb2.ValueField(int_data=v)
    if t == DataType.INT64:
        return schema_pb2.ValueField(long_data=v)
    if t == DataType.FLOAT:
        return schema_pb2.ValueField(float_data=v)
    if t == DataType.DOUBLE:
        return schema_pb2.ValueField(double_data=v)
    if t == DataType.VARCHAR:
        return schema_pb2.ValueField(string_data=v)
    return None


def schema_from_proto(ps: schema_pb2.CollectionSchema) -> CollectionSchema:
    s = CollectionSchema(
        auto_id=ps.autoID, enable_dynamic_field=ps.enable_dynamic_field, description=ps.description
    )
    for pf in ps.fields:
        if pf.is_dynamic:
            raise InvalidArgument("cannot explicitly set a field as a dynamic field")
        params = kv(pf.type_params)
        kwargs: dict[str, Any] = {"is_primary": pf.is_primary_key, "description": pf.description}
        if pf.autoID:
            kwargs["auto_id"] = True
        if pf.nullable:
            kwargs["nullable"] = True
        for key in ("dim", "max_length"):
            if key in params:
                try:
                    kwargs[key] = int(params[key])
                except ValueError:
                    raise InvalidArgument(f"field {pf.name!r}: {key} must be an integer") from None
        default = _default_from_proto(pf.default_value) if pf.HasField("default_value") else None
        if default is not None:
            kwargs["default_value"] = default
        s.add_field(pf.name, int(pf.data_type), **kwargs)
    return s


def schema_to_proto(name: str, s: CollectionSchema) -> schema_pb2.CollectionSchema:
    """Milvus leaves ``$meta`` and system fields out of the schema it describes (§5); so do
    we, or pymilvus would try to fill ``$meta`` as a user field on every insert."""
    out = schema_pb2.CollectionSchema(
        name=name, description=s.description, autoID=s.auto_id, enable_dynamic_field=s.enable_dynamic_field
    )
    for i, f in enumerate(s.fields):
        pf = out.fields.add(
            fieldID=100 + i,
            name=f.name,
            is_primary_key=f.is_primary,
            description=f.description,
            data_type=int(f.dtype),
            autoID=f.auto_id,
            nullable=f.nullable,
        )
        if f.dim is not None:
            pf.type_params.add(key="dim", value=str(f.dim))
        if f.max_length is not None:
            pf.type_params.add(key="max_length", value=str(f.max_length))
        d = _default_to_proto(f)
        if d is not None:
            pf.default_value.CopyFrom(d)
    return out


# -- incoming columns (§9) ------------------------------------------------------------

_SCALAR_SLOT = {
    DataType.BOOL: "bool_data",
    DataType.INT8: "int_data",
    DataType.INT16: "int_data",
    DataType.INT32: "int_data",
    DataType.INT64: "long_data",
    DataType.FLOAT: "float_data",
    DataType.DOUBLE: "double_data",
    DataType.VARCHAR: "string_data",
    DataType.JSON: "json_data",
}


def _expand(values: list[Any], valid: Sequence[bool], n: int, name: str) -> list[Any]:
    """Nullable and default-valued columns arrive compact: only the valid values, plus one
    validity flag per row. Rows marked invalid become MISSING (default, or null)."""
    if not valid:
        if len(values) != n:
            raise InvalidArgument(f"field {name!r} has {len(values)} values for {n} rows")
        return values
    if len(valid) != n:
        raise InvalidArgument(f"field {name!r} has {len(valid)} validity flags for {n} rows")
    if len(values) == n:  # some clients send dense columns with placeholders
        return [v if ok else MISSING for v, ok in zip(values, valid, strict=True)]
    if len(values) != sum(valid):
        raise InvalidArgument(f"field {name!r}: {len(values)} values for {sum(valid)} valid rows")
    it = iter(values)
    return [next(it) if ok else MISSING for ok in valid]


def columns_from_proto(
    schema: CollectionSchema, fields_data: Sequence[schema_pb2.FieldData], n: int
) -> tuple[dict[str, Any], list[str] | None]:
    cols: dict[str, Any] = {}
    meta: list[str] | None = None
    for fd in fields_data:
        if fd.is_dynamic or fd.field_name == DYNAMIC_FIELD:
            texts = [b.decode("utf-8", "replace") for b in fd.scalars.json_data.data]
            meta = [t if t is not MISSING else "{}" for t in _expand(texts, fd.valid_data, n, DYNAMIC_FIELD)]
            continue
        f = schema.field(fd.field_name)
        if f is None:
            if schema.enable_dynamic_field:
                raise InvalidArgument(f"field {fd.field_name!r} is not in the schema; send it inside $meta")
            raise InvalidArgument(f"unknown field {fd.field_name!r} (the collection has no dynamic field)")
        if int(fd.type) != int(f.dtype):
            raise InvalidArgument(
                f"field {f.name!r} is {f.dtype.name} but the request sends {DataType(int(fd.type)).name}"
            )
        if f.kind.is_vector and f.dtype != DataType.FLOAT_VECTOR:
            cols[f.name] = vectors.column_from_proto(f, fd, n)
            continue
        if f.dtype == DataType.FLOAT_VECTOR:
            if fd.vectors.dim != f.dim:
                raise InvalidArgument(
                    f"vector field {f.name!r} has dimension {fd.vectors.dim} in the request, the collection's is {f.dim}"
                )
            flat = np.asarray(fd.vectors.float_vector.data, dtype=np.float32)
            if flat.size != n * (f.dim or 0):
                raise InvalidArgument(f"vector field {f.name!r} has {flat.size} floats for {n} rows of {f.dim}")
            cols[f.name] = flat.reshape(n, f.dim or 0)
            continue
        slot = _SCALAR_SLOT[f.dtype]
        raw = list(getattr(fd.scalars, slot).data)
        if f.dtype == DataType.JSON:
            try:
                raw = [json.loads(b) for b in raw]
            except ValueError as e:
                raise InvalidArgument(f"field {f.name!r} holds invalid JSON: {e}") from None
        cols[f.name] = _expand(raw, fd.valid_data, n, f.name)
    return cols, meta


# -- outgoing columns (§11, §12) -------------------------------------------------------


def _scalar_field(f: FieldSchema, values: list[Any]) -> schema_pb2.FieldData:
    fd = schema_pb2.FieldData(type=int(f.dtype), field_name=f.name)
    slot = _SCALAR_SLOT[f.dtype]
    arr = getattr(fd.scalars, slot)
    arr.SetInParent()  # an empty column must still say which kind it is
    nulls = any(v is None for v in values)
    placeholder: Any = {
        "bool_data": False,
        "string_data": "",
        "json_data": b"",
    }.get(slot, 0)
    if f.dtype == DataType.JSON:
        data = [placeholder if v is None else json.dumps(v).encode() for v in values]
    else:
        data = [placeholder if v is None else v for v in values]
    arr.data.extend(data)
    if nulls or f.nullable:
        fd.valid_data.extend(v is not None for v in values)
    return fd


def _vector_field(f: FieldSchema, values: list[Any]) -> schema_pb2.FieldData:
    fd = schema_pb2.FieldData(type=int(f.dtype), field_name=f.name)
    fd.vectors.dim = f.dim or 0
    fd.vectors.float_vector.SetInParent()
    if values:
        fd.vectors.float_vector.data.extend(np.asarray(values, dtype=np.float32).reshape(-1).tolist())
    return fd


def fields_to_proto(
    schema: CollectionSchema, out: Output, rows: Sequence[dict[str, Any]], pk_first: bool
) -> tuple[list[schema_pb2.FieldData], list[str]]:
    """Row dicts (as the engine returns them) -> one FieldData per column, plus the
    ``output_fields`` list that tells pymilvus which dynamic keys to pull out of ``$meta``."""
    names = list(out.fields)
    pk = schema.primary.name
    if pk_first and pk not in names:
        names.insert(0, pk)
    fields = []
    for name in names:
        f = schema.field(name)
        assert f is not None
        values = [r.get(name) for r in rows]
        if f.dtype == DataType.FLOAT_VECTOR:
            fields.append(_vector_field(f, values))
        elif f.kind.is_vector:
            fields.append(vectors.field_to_proto(f, values))
        else:
            fields.append(_scalar_field(f, values))
    output_names = list(names)
    if out.with_dynamic:
        declared = {f.name for f in schema.fields}
        meta = schema_pb2.FieldData(type=int(DataType.JSON), field_name=DYNAMIC_FIELD, is_dynamic=True)
        meta.scalars.json_data.SetInParent()
        meta.scalars.json_data.data.extend(
            json.dumps({k: v for k, v in r.items() if k not in declared}).encode() for r in rows
        )
        fields.append(meta)
        output_names += [DYNAMIC_FIELD] if out.dynamic is None else list(out.dynamic)
    return fields, output_names


def ids_to_proto(schema: CollectionSchema, ids: Sequence[Any]) -> schema_pb2.IDs:
    out = schema_pb2.IDs()
    if schema.primary.dtype == DataType.INT64:
        out.int_id.SetInParent()
        out.int_id.data.extend(ids)
    else:
        out.str_id.SetInParent()
        out.str_id.data.extend(ids)
    return out


def count_to_proto(n: int) -> schema_pb2.FieldData:
    fd = schema_pb2.FieldData(type=int(DataType.INT64), field_name="count(*)")
    fd.scalars.long_data.data.append(n)
    return fd
