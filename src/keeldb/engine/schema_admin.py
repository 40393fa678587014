"""The checks of a collection's definition calls, with Milvus 2.6's rules and words:
``add_collection_field``, ``alter_collection_field``, the consistency level a collection
is created with, and what ``describe_collection`` reports. Each returns the new value (a
schema, properties, ...) for ``engine/database.py`` to commit; nothing here changes state.
"""

from __future__ import annotations

from typing import Any

from keeldb.engine.catalog import CollectionEntry
from keeldb.errors import InvalidArgument
from keeldb.fields import timestamptz
from keeldb.fields.varchar import MAX_VARCHAR_LENGTH
from keeldb.schema import DYNAMIC_FIELD, CollectionSchema, DataType, field_from_kwargs
from keeldb.text import canonical

MAX_FIELDS = 64
VECTOR_TYPES = frozenset(
    {DataType.FLOAT_VECTOR, DataType.BINARY_VECTOR, DataType.FLOAT16_VECTOR, DataType.BFLOAT16_VECTOR,
     DataType.SPARSE_FLOAT_VECTOR, DataType.INT8_VECTOR}
)  # fmt: skip
CONSISTENCY_LEVELS = {"Strong": 0, "Session": 1, "Bounded": 2, "Eventually": 3, "Customized": 4}
ALTERABLE_FIELD_PARAMS = ("max_length", "max_capacity", "mmap_enabled", "mmap.enabled", "description")


def consistency_level(value: Any) -> int:
    """pymilvus's spellings of a consistency level (name or number) as Milvus's enum."""
    if value is None or value == "":
        return CONSISTENCY_LEVELS["Bounded"]  # pymilvus's default
    if isinstance(value, int) and not isinstance(value, bool) and value in CONSISTENCY_LEVELS.values():
        return value
    if isinstance(value, str):
        for name, level in CONSISTENCY_LEVELS.items():
            if value.lower() == name.lower():
                return level
    raise InvalidArgument(f"invalid consistency level {value!r}; use one of {list(CONSISTENCY_LEVELS)}")


def level_name(level: int) -> str:
    return next(n for n, v in CONSISTENCY_LEVELS.items() if v == level)


def normalize_time_defaults(schema: CollectionSchema, tz: str) -> None:
    """TIMESTAMPTZ defaults are read in the collection's zone when given without an offset
    and kept as UTC RFC 3339 text (Milvus keeps them as UTC microseconds)."""
    for f in schema.fields:
        if f.dtype == DataType.TIMESTAMPTZ and isinstance(f.default_value, str):
            (f.default_value,) = timestamptz.format_micros([timestamptz.parse(f.default_value, tz)], "UTC")


def schema_copy(schema: CollectionSchema) -> CollectionSchema:
    return CollectionSchema.from_dict(schema.to_dict())


def with_added_field(e: CollectionEntry, name: str, data_type: Any, desc: str, kwargs: dict[str, Any]) -> CollectionSchema:
    """The schema after ``add_collection_field`` (Milvus's ``validateAddFieldRequest``)."""
    schema = e.schema
    if schema.field(name) is not None:
        raise InvalidArgument(f"duplicate field name: {name}: invalid parameter")
    if name == DYNAMIC_FIELD:
        raise InvalidArgument(f"not support to add system field, field name = {name}")
    if len(schema.fields) >= MAX_FIELDS:
        raise InvalidArgument(f"The number of fields has reached the maximum value {MAX_FIELDS}")
    kwargs = dict(kwargs)
    for key in ("timeout",):
        kwargs.pop(key, None)
    try:
        vector = DataType(int(data_type)) in VECTOR_TYPES
    except (TypeError, ValueError):
        vector = False
    if vector:
        raise InvalidArgument(f"not support to add vector field, field name = {name}")
    if kwargs.get("is_primary"):
        raise InvalidArgument(f"not support to add pk field, field name = {name}")
    if kwargs.get("is_partition_key"):
        raise InvalidArgument(f"not support to add partition key field, field name  = {name}")
    if kwargs.get("is_clustering_key") and any(f.is_clustering_key for f in schema.fields):
        raise InvalidArgument(f"already has another clutering key field, field name: {name}")
    if not kwargs.get("nullable"):
        # Milvus: rows written before the field existed must read something, and only a
        # nullable field can promise that for every reader (a default is shown on top).
        raise InvalidArgument(f"added field must be nullable, please check it, field name = {name}")
    if desc:
        kwargs.setdefault("description", desc)
    f = field_from_kwargs(name, data_type, kwargs)
    if f.kind.is_vector:
        raise InvalidArgument(f"not support to add vector field, field name = {name}")
    new = schema_copy(schema)
    new._append(f)  # noqa: SLF001 - the schema's one way to add a checked field
    new.check_analyzers()
    normalize_time_defaults(new, e.timezone)
    return new


def with_altered_field(e: CollectionEntry, field_name: str, params: dict[str, Any]) -> CollectionSchema:
    """The schema after ``alter_collection_field`` (Milvus's ``alterCollectionFieldTask``)."""
    if not isinstance(params, dict) or not params:
        raise InvalidArgument("field_params must be a non-empty dict")
    new = schema_copy(e.schema)
    f = new.field(field_name)
    if f is None:
        raise InvalidArgument(f"field {field_name} not found in collection")
    for key, value in params.items():
        if key not in ALTERABLE_FIELD_PARAMS:
            raise InvalidArgument(f"{key} does not allow update in collection field param")
        if key in ("mmap_enabled", "mmap.enabled"):
            if e.is_loaded:
                from keeldb.engine.properties import CollectionLoaded

                raise CollectionLoaded("can not alter collection field properties if collection loaded")
            f.mmap_enabled = str(value).strip().lower() == "true"
        elif key == "max_length":
            strings = f.dtype == DataType.VARCHAR or (f.dtype == DataType.ARRAY and f.element_type == DataType.VARCHAR)
            if not strings:
                raise InvalidArgument(f"{field_name} can not modify the maxlength for non-string types")
            n = _int(key, value)
            if n > MAX_VARCHAR_LENGTH:
                raise InvalidArgument(f"{value} exceeds the maximum allowed value {MAX_VARCHAR_LENGTH}")
            f.max_length = n
        elif key == "max_capacity":
            if f.dtype != DataType.ARRAY:
                raise InvalidArgument(f"{field_name} can not modify the maxcapacity for non-array types")
            f.max_capacity = _int(key, value)
        else:
            f.description = str(value)
    rebuilt = CollectionSchema.from_dict(new.to_dict())  # every field rule checked again
    return rebuilt


def _int(key: str, value: Any) -> int:
    try:
        return int(str(value))
    except ValueError:
        raise InvalidArgument(f"{key} should be an integer, but got {type(value).__name__}") from None


def describe_fields(schema: CollectionSchema, tz: str) -> list[dict[str, Any]]:
    fields = []
    for i, f in enumerate(schema.fields):
        d = f.to_dict()
        d["field_id"] = 100 + i
        if schema.function_output(f.name) is not None:
            d["is_function_output"] = True
        d["type"] = f.dtype
        if f.dtype == DataType.TIMESTAMPTZ and isinstance(f.default_value, str):
            (d["default_value"],) = timestamptz.format_micros([timestamptz.parse(f.default_value)], tz)
        if f.element_type is not None:
            d["element_type"] = f.element_type
        _describe_text_params(d["params"])
        fields.append(d)
    return fields


def describe_functions(schema: CollectionSchema) -> list[dict[str, Any]]:
    """The schema's functions as pymilvus's describe_collection shows Milvus's: field ids
    beside the names (the ids ``describe_fields`` gives), function ids from 100."""
    ids = {f.name: 100 + i for i, f in enumerate(schema.fields)}
    return [
        {
            "name": fn.name,
            "id": 100 + i,
            "description": fn.description,
            "type": fn.type,
            "params": dict(fn.params),
            "input_field_names": list(fn.input_field_names),
            "input_field_ids": [ids[n] for n in fn.input_field_names],
            "output_field_names": list(fn.output_field_names),
            "output_field_ids": [ids[n] for n in fn.output_field_names],
        }
        for i, fn in enumerate(schema.functions)
    ]


def _describe_text_params(params: dict[str, Any]) -> None:
    """Analyzer settings as pymilvus's describe_collection shows Milvus's: Milvus keeps the
    type params as the text pymilvus sent ('true', the params' JSON) and returns them so."""
    for key in ("enable_analyzer", "enable_match"):
        if key in params:
            params[key] = "true" if params[key] else "false"
    for key in ("analyzer_params", "multi_analyzer_params"):
        if key in params:
            params[key] = canonical(params[key])
