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
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2

from keeldb.engine.query import Output
from keeldb.engine.rows import MISSING
from keeldb.errors import InvalidArgument, KeelError
from keeldb.fields import defaults, timestamptz
from keeldb.schema import (
    DYNAMIC_FIELD,
    CollectionSchema,
    DataType,
    FieldSchema,
    Function,
)
from keeldb.server import vectors
from keeldb.text import Token, canonical, token_hash

# merr code -> legacy ErrorCode enum (§3): pymilvus checks both, and has_collection /
# list_indexes / describe_index look at the legacy one. 109 (schema mismatch) must map to
# legacy SchemaMismatch (62): that, not the code, is what makes pymilvus refresh its
# schema cache and retry.
_LEGACY = {100: 4, 101: 1, 104: 1, 109: 62, 200: 15, 700: 25, 800: 1, 1100: 5}


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


def _default_from_proto(name: str, dtype: DataType, v: schema_pb2.ValueField) -> Any:
    """A default as Milvus checks it: the ValueField slot must fit the field's type
    (``fields/defaults.py``); an int_data default comes back as an int32-width value."""
    which = v.WhichOneof("data")
    if not which:
        return None
    defaults.check_slot(name, dtype, which)
    value = getattr(v, which)
    return np.int32(value) if which == "int_data" else value


def _default_to_proto(f: FieldSchema, tz: str = "UTC") -> schema_pb2.ValueField | None:
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
    if t in (DataType.VARCHAR, DataType.GEOMETRY):
        return schema_pb2.ValueField(string_data=v)
    if t == DataType.TIMESTAMPTZ:  # as text in the collection's zone, as Milvus describes it
        (text,) = timestamptz.format_micros([timestamptz.parse(v)], tz)
        return schema_pb2.ValueField(string_data=text)
    return None


def schema_from_proto(ps: schema_pb2.CollectionSchema) -> CollectionSchema:
    """A CreateCollection schema. BM25 functions are taken (checked at create, as embedded);
    other function types and struct-array fields are refused here, at the call that
    introduces them (keeldb computes no other function and stores no structs)."""
    if len(ps.struct_array_fields):
        raise InvalidArgument(f"struct array field {ps.struct_array_fields[0].name!r} is not supported by keeldb")
    s = CollectionSchema(
        auto_id=ps.autoID, enable_dynamic_field=ps.enable_dynamic_field, description=ps.description
    )
    for pf in ps.fields:
        if pf.is_dynamic:
            raise InvalidArgument("cannot explicitly set a field as a dynamic field")
        s.add_field(pf.name, int(pf.data_type), **field_args_from_proto(pf))
    for pfn in ps.functions:
        s.add_function(
            Function(pfn.name, int(pfn.type), list(pfn.input_field_names), list(pfn.output_field_names),
                     pfn.description, kv(pfn.params))
        )  # fmt: skip
    return s


def field_args_from_proto(pf: schema_pb2.FieldSchema) -> dict[str, Any]:
    """A FieldSchema message as ``add_field`` arguments (also AddCollectionField's field)."""
    params = kv(pf.type_params)
    kwargs: dict[str, Any] = {"is_primary": pf.is_primary_key, "description": pf.description}
    for flag, key in ((pf.autoID, "auto_id"), (pf.nullable, "nullable"), (pf.is_partition_key, "is_partition_key"),
                      (pf.is_clustering_key, "is_clustering_key")):  # fmt: skip
        if flag:
            kwargs[key] = True
    for key in ("dim", "max_length", "max_capacity"):
        if key in params:
            try:
                kwargs[key] = int(params[key])
            except ValueError:
                raise InvalidArgument(f"field {pf.name!r}: {key} must be an integer") from None
    for key in ("mmap_enabled", "mmap.enabled"):
        if key in params:
            kwargs["mmap_enabled"] = params[key].strip().lower() == "true"
    kwargs.update(text_field_args(pf.name, params))
    if pf.data_type == DataType.ARRAY:
        kwargs["element_type"] = int(pf.element_type)
    if pf.HasField("default_value"):
        default = _default_from_proto(pf.name, DataType(int(pf.data_type)), pf.default_value)
        if default is not None:
            kwargs["default_value"] = default
    return kwargs


def text_field_args(name: str, params: dict[str, Any]) -> dict[str, Any]:
    """enable_analyzer / enable_match ("true"/"false", as pymilvus sends a bool) and the
    analyzer params (JSON text; ``FieldSchema`` parses and builds them)."""
    out: dict[str, Any] = {}
    for key in ("enable_analyzer", "enable_match"):
        if key in params:
            value = params[key].strip().lower()
            if value not in ("true", "false"):
                raise InvalidArgument(f"field {name!r}: {key} must be true or false, got {params[key]!r}")
            out[key] = value == "true"
    for key in ("analyzer_params", "multi_analyzer_params"):
        if key in params:
            out[key] = params[key]
    return out


def schema_to_proto(name: str, s: CollectionSchema, tz: str = "UTC") -> schema_pb2.CollectionSchema:
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
            is_partition_key=f.is_partition_key,
            is_clustering_key=f.is_clustering_key,
        )
        if f.element_type is not None:
            pf.element_type = int(f.element_type)
        for key, value in (("dim", f.dim), ("max_length", f.max_length), ("max_capacity", f.max_capacity)):
            if value is not None:
                pf.type_params.add(key=key, value=str(value))
        if f.mmap_enabled is not None:
            pf.type_params.add(key="mmap.enabled", value="true" if f.mmap_enabled else "false")
        for key in ("enable_analyzer", "enable_match"):
            if getattr(f, key) is not None:
                pf.type_params.add(key=key, value="true" if getattr(f, key) else "false")
        for key in ("analyzer_params", "multi_analyzer_params"):
            if getattr(f, key) is not None:
                pf.type_params.add(key=key, value=canonical(getattr(f, key)))
        d = _default_to_proto(f, tz)
        if d is not None:
            pf.default_value.CopyFrom(d)
        if s.function_output(f.name) is not None:
            pf.is_function_output = True  # pymilvus then leaves it out of inserts
    ids = {f.name: 100 + i for i, f in enumerate(s.fields)}
    for i, fn in enumerate(s.functions):
        pfn = out.functions.add(
            name=fn.name, id=100 + i, description=fn.description, type=int(fn.type),
            input_field_names=fn.input_field_names, input_field_ids=[ids[n] for n in fn.input_field_names],
            output_field_names=fn.output_field_names, output_field_ids=[ids[n] for n in fn.output_field_names],
        )  # fmt: skip
        for key, value in fn.params.items():
            pfn.params.add(key=key, value=str(value))
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
    DataType.TIMESTAMPTZ: "string_data",  # ISO text both ways, as pymilvus sends and reads it
    DataType.GEOMETRY: "geometry_wkt_data",
    DataType.ARRAY: "array_data",
}
# An ARRAY's elements, by element type: the ScalarField slot of each row's cell.
_ELEMENT_SLOT = {k: v for k, v in _SCALAR_SLOT.items() if k not in (DataType.JSON, DataType.ARRAY, DataType.TIMESTAMPTZ, DataType.GEOMETRY)}


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
                    f"vector field {f.name!r} has dimension {fd.vectors.dim} in the request, the collection's is {f.dim}: "
                    f"the length of float data should divide the dim({f.dim})"
                )
            flat = np.asarray(fd.vectors.float_vector.data, dtype=np.float32)
            if flat.size != n * (f.dim or 0):
                raise InvalidArgument(f"vector field {f.name!r} has {flat.size} floats for {n} rows of {f.dim}")
            cols[f.name] = flat.reshape(n, f.dim or 0)
            continue
        slot = _SCALAR_SLOT.get(f.dtype)
        if slot is None:
            raise InvalidArgument(f"field {f.name!r}: data type {f.dtype.name} cannot be sent here")
        raw = list(getattr(fd.scalars, slot).data)
        if f.dtype == DataType.ARRAY:
            assert f.element_type is not None
            elem_slot = _ELEMENT_SLOT[f.element_type]
            raw = [list(getattr(cell, elem_slot).data) for cell in raw]
        elif f.dtype == DataType.GEOMETRY and not raw and len(fd.scalars.geometry_data.data):
            raw = list(fd.scalars.geometry_data.data)  # WKB, which the GEOMETRY kind also takes
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
    if f.dtype == DataType.ARRAY:
        return _array_field(f, fd, values)
    nulls = any(v is None for v in values)
    placeholder: Any = {
        "bool_data": False,
        "string_data": "",
        "geometry_wkt_data": "",
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


def _array_field(f: FieldSchema, fd: schema_pb2.FieldData, values: list[Any]) -> schema_pb2.FieldData:
    """ARRAY results: one ScalarField cell a row in the element type's slot (an empty cell
    for a null row, which ``valid_data`` marks)."""
    assert f.element_type is not None
    out = fd.scalars.array_data
    out.element_type = int(f.element_type)
    slot = _ELEMENT_SLOT[f.element_type]
    for v in values:
        cell = out.data.add()
        getattr(cell, slot).data.extend(v or [])
    if f.nullable or any(v is None for v in values):
        fd.valid_data.extend(v is not None for v in values)
    return fd


def template_values(values: Any) -> dict[str, Any]:
    """``expr_template_values`` (pymilvus's ``filter_params`` on the wire) as Python values."""
    return {name: _template_value(v) for name, v in values.items()}


def _template_value(v: schema_pb2.TemplateValue) -> Any:
    which = v.WhichOneof("val")
    if which is None:
        raise InvalidArgument("a filter template value is empty")
    if which == "array_val":
        return _template_array(v.array_val)
    return getattr(v, which)


def _template_array(a: Any) -> list[Any]:
    which = a.WhichOneof("data")
    if which is None:
        return []
    if which == "array_data":
        return [_template_array(x) for x in a.array_data.data]
    if which == "json_data":
        return [json.loads(x) for x in a.json_data.data]
    return list(getattr(a, which).data)


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


# -- RunAnalyzer ------------------------------------------------------------------------


def analyzer_results(found: list[list[Token]], with_hash: bool, with_detail: bool) -> Any:
    """Tokens as Milvus answers RunAnalyzer: the text always; offsets, position and its
    length only with ``with_detail``; the hash only with ``with_hash`` (as Milvus fills them)."""
    resp = milvus_pb2.RunAnalyzerResponse(status=status())
    for tokens in found:
        r = resp.results.add()
        for t in tokens:
            pt = r.tokens.add(token=t.text)
            if with_detail:
                pt.start_offset, pt.end_offset = t.start_offset, t.end_offset
                pt.position, pt.position_length = t.position, t.position_length
            if with_hash:
                pt.hash = token_hash(t.text)
    return resp
