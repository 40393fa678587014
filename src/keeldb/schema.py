"""Collection schemas, in the shape ``pymilvus`` users already write.

``DataType`` has pymilvus's members with pymilvus's numeric values, so a ``pymilvus.DataType``
passed to keeldb is understood (both are ``int`` underneath) and a schema written for one
works for the other. The schema is persisted in the catalog as plain JSON (``to_dict``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import pyarrow as pa

from keeldb import names
from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields import FieldKind, defaults, float_vector, kind_of, supported, varchar
from keeldb.text import Analyzer, MultiAnalyzer, build_analyzer, build_multi_analyzer, parse_params

MAX_DIM = float_vector.MAX_DIM
MAX_VARCHAR_LENGTH = varchar.MAX_VARCHAR_LENGTH
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
DYNAMIC_FIELD = "$meta"
PARTITION_FIELD = "$partition"  # hidden int64 column: the id of the row's partition
DEFAULT_PARTITION = "_default"


def check_name(kind: str, name: Any) -> str:
    """Names become expression identifiers and catalog keys: keep them to one safe shape.
    Collections, aliases, fields, partitions and databases follow Milvus's rules and words
    (``keeldb.names``); other names (indexes, functions) the same shape in our words."""
    checker = _MILVUS_NAME_CHECKS.get(kind)
    if checker is not None:
        return checker(name)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidArgument(
            f"invalid {kind} name {name!r}: use a letter or underscore, then letters, digits "
            "or underscores, at most 255 characters"
        )
    return name


_MILVUS_NAME_CHECKS = {
    "collection": names.check_collection_name,
    "alias": lambda n: names.check_collection_name(n, "alias"),
    "field": names.check_field_name,
    "partition": names.check_partition_name,
    "database": names.check_database_name,
}


def _to_datatype(dtype: Any) -> DataType:
    try:
        return DataType(int(dtype))
    except (TypeError, ValueError):
        raise InvalidArgument(f"unknown data type {dtype!r}") from None


@dataclass
class FieldSchema:
    name: str
    dtype: DataType
    is_primary: bool = False
    auto_id: bool = False
    dim: int | None = None
    max_length: int | None = None
    nullable: bool = False
    default_value: Any = None
    description: str = ""
    element_type: DataType | None = None  # ARRAY: the elements' type
    max_capacity: int | None = None  # ARRAY: at most this many elements a row
    is_partition_key: bool = False
    is_clustering_key: bool = False
    mmap_enabled: bool | None = None  # kept and shown (describe_collection); keeldb always maps files
    # VARCHAR text analysis (Milvus 2.6): the analyzer a BM25 function and text_match use.
    # The params are kept as the dicts they parse to, and validated (built) when
    # enable_analyzer is set, as Milvus validates them.
    enable_analyzer: bool | None = None
    enable_match: bool | None = None
    analyzer_params: dict[str, Any] | None = None
    multi_analyzer_params: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        check_name("field", self.name)
        self.dtype = _to_datatype(self.dtype)
        if self.dtype == DataType.STRING:
            raise InvalidArgument("string data type not supported yet, please use VarChar type instead")
        if self.dtype not in supported():
            raise InvalidArgument(f"field {self.name!r}: data type {self.dtype.name} is not supported")
        if self.element_type is not None:
            self.element_type = _to_datatype(self.element_type)
        kind = kind_of(self.dtype)
        kind.check_field(self)
        if self.is_primary:
            if self.dtype not in (DataType.INT64, DataType.VARCHAR):
                raise InvalidArgument("the primary key must be INT64 or VARCHAR")
            if self.nullable:
                raise InvalidArgument("primary field not support null")
            if self.default_value is not None:
                raise InvalidArgument("primary field not support default_value")
        elif self.auto_id:
            raise InvalidArgument("The auto_id can only be specified on the primary key field")
        if self.is_partition_key:
            # Milvus's rules and words (proxy's validatePartitionKey)
            if self.is_primary:
                raise InvalidArgument("the partition key field must not be primary field")
            if self.nullable:
                raise InvalidArgument("partition key field not support nullable: invalid parameter")
            if self.dtype not in (DataType.INT64, DataType.VARCHAR):
                raise InvalidArgument("the data type of partition key should be Int64 or VarChar")
        if self.default_value is not None:
            self.default_value = kind.check_value(self, defaults.plain(self.default_value))
        self._check_text()

    def _check_text(self) -> None:
        """enable_analyzer / enable_match / analyzer params: VARCHAR only; match needs the
        analyzer; the params must build (Milvus's messages where it has one)."""
        for key in ("analyzer_params", "multi_analyzer_params"):
            value = getattr(self, key)
            if value is not None:
                setattr(self, key, parse_params(value))  # pymilvus sends them as JSON text
        for key in ("enable_analyzer", "enable_match"):
            value = getattr(self, key)
            if value is not None and not isinstance(value, bool):
                raise InvalidArgument(f"field {self.name!r}: {key} must be a boolean, got {value!r}")
        text_keys = [k for k in ("enable_analyzer", "enable_match", "analyzer_params", "multi_analyzer_params")
                     if getattr(self, k) not in (None, False)]  # fmt: skip
        if text_keys and self.dtype != DataType.VARCHAR:
            raise InvalidArgument(
                f"field {self.name!r}: {text_keys[0]} applies to VARCHAR fields only, not {self.dtype.name}"
            )
        if self.enable_match and not self.enable_analyzer:
            # Milvus's words (ctokenizer.ValidateTextSchema)
            raise InvalidArgument(
                f"field {self.name} is set to enable match or bm25 function but not enable analyzer"
            )
        if self.analyzer_params is not None and self.multi_analyzer_params is not None:
            raise InvalidArgument(
                f"field {self.name!r}: analyzer_params and multi_analyzer_params cannot be set together"
            )
        if self.enable_analyzer:
            _ = self.analyzer  # built now: bad params are refused at the call that brings them

    @property
    def analyzer(self) -> Analyzer | MultiAnalyzer:
        """The field's analyzer (built once, cached by its params); a MultiAnalyzer picks one
        per row by its ``by_field``. The standard analyzer when no params are given."""
        if self.multi_analyzer_params is not None:
            return build_multi_analyzer(self.multi_analyzer_params)
        return build_analyzer(self.analyzer_params)

    @property
    def kind(self) -> FieldKind:
        return kind_of(self.dtype)

    @property
    def arrow_type(self) -> pa.DataType:
        return kind_of(self.dtype).arrow_type(self)

    def to_dict(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.dim is not None:
            params["dim"] = self.dim
        if self.max_length is not None:
            params["max_length"] = self.max_length
        if self.max_capacity is not None:
            params["max_capacity"] = self.max_capacity
        if self.mmap_enabled is not None:
            params["mmap_enabled"] = self.mmap_enabled
        for key in ("enable_analyzer", "enable_match", "analyzer_params", "multi_analyzer_params"):
            if getattr(self, key) is not None:
                params[key] = getattr(self, key)
        out: dict[str, Any] = {
            "name": self.name,
            "description": self.description,
            "type": self.dtype,
            "params": params,
        }
        if self.is_primary:
            out["is_primary"] = True
        if self.auto_id:
            out["auto_id"] = True
        if self.nullable:
            out["nullable"] = True
        if self.default_value is not None:
            out["default_value"] = self.default_value
        if self.element_type is not None:
            out["element_type"] = self.element_type
        if self.is_partition_key:
            out["is_partition_key"] = True
        if self.is_clustering_key:
            out["is_clustering_key"] = True
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FieldSchema:
        params = d.get("params", {})
        element_type = d.get("element_type")
        return cls(
            name=d["name"],
            dtype=DataType(int(d["type"])),
            is_primary=d.get("is_primary", False),
            auto_id=d.get("auto_id", False),
            dim=params.get("dim"),
            max_length=params.get("max_length"),
            nullable=d.get("nullable", False),
            default_value=d.get("default_value"),
            description=d.get("description", ""),
            element_type=None if element_type is None else DataType(int(element_type)),
            max_capacity=params.get("max_capacity"),
            is_partition_key=d.get("is_partition_key", False),
            is_clustering_key=d.get("is_clustering_key", False),
            mmap_enabled=params.get("mmap_enabled"),
            enable_analyzer=params.get("enable_analyzer"),
            enable_match=params.get("enable_match"),
            analyzer_params=params.get("analyzer_params"),
            multi_analyzer_params=params.get("multi_analyzer_params"),
        )


class CollectionSchema:
    """A list of fields plus collection-wide flags, built like ``pymilvus.CollectionSchema``."""

    def __init__(
        self,
        fields: list[FieldSchema] | None = None,
        *,
        auto_id: bool = False,
        enable_dynamic_field: bool = False,
        description: str = "",
        functions: list[Any] | None = None,
        **_: Any,
    ) -> None:
        self.fields: list[FieldSchema] = []
        self.functions: list[Function] = []
        self.auto_id = auto_id
        self.enable_dynamic_field = enable_dynamic_field
        self.description = description
        for f in fields or []:
            self._append(f)
        for fn in functions or []:
            self.add_function(fn)

    def add_field(self, field_name: str, datatype: Any, **kwargs: Any) -> CollectionSchema:
        """Mirror of ``pymilvus.CollectionSchema.add_field``; returns self for chaining.
        A default value is checked the way Milvus checks what pymilvus sends for it
        (``fields/defaults.py``)."""
        self._append(field_from_kwargs(field_name, datatype, kwargs, collection_auto_id=self.auto_id))
        return self

    def add_function(self, function: Any) -> CollectionSchema:
        """pymilvus's ``add_function`` (a keeldb or pymilvus ``Function``). BM25 is the one
        function keeldb computes; any other type is refused here, at the call that brings
        it, rather than stored in a schema whose outputs would never fill. The function's
        fields are checked against the schema at ``validate`` (create_collection), as
        Milvus checks them, since fields may still be added after it."""
        self.functions.append(function_from_any(function))
        return self

    def _append(self, f: FieldSchema) -> None:
        if any(g.name == f.name for g in self.fields):
            raise InvalidArgument(f"duplicated field name {f.name} found")
        if f.is_partition_key and self.partition_key is not None:
            raise InvalidArgument(
                f"there are more than one partition key, field name = {self.partition_key.name}, {f.name}"
            )
        if f.is_clustering_key and any(g.is_clustering_key for g in self.fields):
            raise InvalidArgument(f"there are more than one clustering key, field name = {f.name}")
        self.fields.append(f)

    # -- lookups -------------------------------------------------------------------------

    @property
    def primary(self) -> FieldSchema:
        for f in self.fields:
            if f.is_primary:
                return f
        raise InvalidArgument("the schema has no primary key field")

    @property
    def partition_key(self) -> FieldSchema | None:
        return next((f for f in self.fields if f.is_partition_key), None)

    @property
    def vector_fields(self) -> list[FieldSchema]:
        return [f for f in self.fields if kind_of(f.dtype).is_vector]

    def field(self, name: str) -> FieldSchema | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def function_output(self, name: str) -> Function | None:
        """The function whose output field is ``name`` (None for a field the user writes)."""
        return next((fn for fn in self.functions if name in fn.output_field_names), None)

    def bm25_input(self, output_name: str) -> FieldSchema | None:
        """The analyzed VARCHAR field a BM25 output field is derived from (None when
        ``output_name`` is no BM25 output)."""
        fn = self.function_output(output_name)
        if fn is None or fn.type != FunctionType.BM25:
            return None
        return self.field(fn.input_field_names[0])

    def validate(self) -> None:
        primaries = [f for f in self.fields if f.is_primary]
        if len(primaries) != 1:
            raise InvalidArgument(f"a schema needs exactly one primary key field, got {len(primaries)}")
        if not self.vector_fields:
            # Milvus's words (its test suite checks them).
            raise InvalidArgument("schema does not contain vector field: invalid parameter")
        if self.primary.auto_id:
            self.auto_id = True
        self.check_analyzers()
        check_functions(self)

    def check_analyzers(self) -> None:
        """A multi-language analyzer's ``by_field`` must be a VARCHAR field of this schema."""
        for f in self.fields:
            if not f.enable_analyzer or f.multi_analyzer_params is None:
                continue
            by = f.multi_analyzer_params.get("by_field")
            g = self.field(by) if isinstance(by, str) else None
            if g is None or g.dtype != DataType.VARCHAR:
                raise InvalidArgument(
                    f"field {f.name!r}: multi_analyzer_params by_field {by!r} must name a VARCHAR field of the schema"
                )

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema of a batch: every declared field, ``$meta`` if dynamic, and the
        hidden ``$partition`` id."""
        cols = [pa.field(f.name, f.arrow_type, nullable=f.nullable) for f in self.fields]
        if self.enable_dynamic_field:
            cols.append(pa.field(DYNAMIC_FIELD, pa.string()))
        cols.append(pa.field(PARTITION_FIELD, pa.int64(), nullable=False))
        return pa.schema(cols)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "auto_id": self.auto_id,
            "description": self.description,
            "enable_dynamic_field": self.enable_dynamic_field,
            "fields": [f.to_dict() for f in self.fields],
        }
        if self.functions:  # absent otherwise: catalogs written before functions read the same
            out["functions"] = [fn.to_dict() for fn in self.functions]
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollectionSchema:
        s = cls(
            auto_id=d.get("auto_id", False),
            enable_dynamic_field=d.get("enable_dynamic_field", False),
            description=d.get("description", ""),
        )
        for fd in d["fields"]:
            s._append(FieldSchema.from_dict(fd))
        for fn in d.get("functions", []):
            s.functions.append(Function.from_dict(fn))
        return s


FIELD_ARGS = (
    "is_primary", "auto_id", "dim", "max_length", "nullable", "default_value", "description",
    "element_type", "max_capacity", "is_partition_key", "is_clustering_key", "mmap_enabled",
    "enable_analyzer", "enable_match", "analyzer_params", "multi_analyzer_params",
)  # fmt: skip


def field_from_kwargs(name: str, datatype: Any, kwargs: dict[str, Any], *, collection_auto_id: bool = False) -> FieldSchema:
    """A field as ``add_field`` / ``add_collection_field`` take it (pymilvus's keyword
    names): unknown arguments are refused, never dropped; a default is checked against the
    type the way Milvus checks pymilvus's ValueField slot."""
    unknown = set(kwargs) - set(FIELD_ARGS)
    if unknown:
        raise InvalidArgument(f"add_field: unsupported arguments {sorted(unknown)}")
    args = {k: v for k, v in kwargs.items() if k in FIELD_ARGS}
    if args.get("is_primary") and collection_auto_id and "auto_id" not in args:
        args["auto_id"] = True
    dtype = _to_datatype(datatype)
    default = args.get("default_value")
    if default is not None:
        defaults.check_slot(name, dtype, defaults.slot_of_python(default, dtype))
    return FieldSchema(name, dtype, **args)


class FunctionType(IntEnum):
    """pymilvus's ``FunctionType`` (the same numbers, so either enum is understood)."""

    UNKNOWN = 0
    BM25 = 1
    TEXTEMBEDDING = 2
    RERANK = 3
    MINHASH = 4


def _names(value: Any, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"the {what} field names of a function must be a string or a list of strings")
    return list(value)


class Function:
    """A schema function, built like ``pymilvus.Function``. keeldb computes BM25 (text ->
    term frequencies, ``engine/bm25.py``); the others are refused when added."""

    def __init__(
        self,
        name: str,
        function_type: Any,
        input_field_names: str | Sequence[str],
        output_field_names: str | Sequence[str] | None = None,
        description: str = "",
        params: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise InvalidArgument(f"the name of a function must be a string, got {name!r}")
        if not isinstance(description, str):
            raise InvalidArgument("the description of a function must be a string")
        try:
            self.type = FunctionType(int(function_type))
        except (TypeError, ValueError):
            raise InvalidArgument(f"unknown function type {function_type!r}") from None
        self.name = name
        self.description = description
        self.input_field_names = _names(input_field_names, "input")
        self.output_field_names = _names(output_field_names, "output")
        if params is not None and not isinstance(params, dict):
            raise InvalidArgument("the params of a function must be a dictionary")
        self.params: dict[str, Any] = dict(params or {})

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "type": int(self.type),
            "input_field_names": list(self.input_field_names),
            "output_field_names": list(self.output_field_names),
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Function:
        return cls(d["name"], d["type"], d["input_field_names"], d["output_field_names"], d.get("description", ""),
                   d.get("params") or {})  # fmt: skip

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Function) and self.to_dict() == other.to_dict()

    def __repr__(self) -> str:
        return f"Function({self.to_dict()!r})"


def function_from_any(function: Any) -> Function:
    """A keeldb ``Function``, or anything with pymilvus's Function attributes (a pymilvus
    ``Function``, the server's FunctionSchema message); a type other than BM25 is refused."""
    if not isinstance(function, Function):
        ftype = getattr(function, "type", None)
        if ftype is None:
            raise InvalidArgument(f"not a schema function: {function!r}")
        function = Function(
            getattr(function, "name", ""),
            ftype,
            list(getattr(function, "input_field_names", []) or []),
            list(getattr(function, "output_field_names", []) or []),
            getattr(function, "description", "") or "",
            dict(getattr(function, "params", {}) or {}),
        )
    if function.type != FunctionType.BM25:
        raise unsupported_function(function)
    return function


def unsupported_function(function: Any) -> InvalidArgument:
    """The refusal of a schema function keeldb does not compute (TEXT_EMBEDDING calls a
    model provider, RERANK belongs to search, MINHASH is not built): refused at the call
    that introduces it, never stored with an output that would stay empty."""
    ftype = getattr(function, "type", None)
    names = {FunctionType.TEXTEMBEDDING: "TextEmbedding", FunctionType.RERANK: "Rerank", FunctionType.MINHASH: "MinHash"}
    try:
        kind = names.get(FunctionType(int(ftype)), FunctionType(int(ftype)).name)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        kind = getattr(ftype, "name", None) or str(ftype)
    name = getattr(function, "name", "")
    return InvalidArgument(f"schema function {name!r} of type {kind} is not supported by keeldb (only BM25 is)")


def check_functions(schema: CollectionSchema) -> None:
    """Milvus's checks of a schema's functions (its proxy's ``validateFunction``, with its
    messages): names, inputs and outputs present and distinct; a BM25 function takes no
    params, reads exactly one VARCHAR field with ``enable_analyzer`` and writes exactly one
    SPARSE_FLOAT_VECTOR field; no field is the output of two functions; an output is never
    the primary key, a partition or clustering key, or nullable; an input is never nullable."""
    used_outputs: set[str] = set()
    used_names: set[str] = set()
    for fn in schema.functions:
        name = fn.name
        if not name:
            raise InvalidArgument("function name cannot be empty")
        check_name("function", name)
        if not fn.input_field_names:
            raise InvalidArgument(f"function input field names cannot be empty, function: {name}")
        if not fn.output_field_names:
            raise InvalidArgument(f"function output field names cannot be empty, function: {name}")
        for i in fn.input_field_names:
            if fn.input_field_names.count(i) > 1:
                raise InvalidArgument(
                    f"each function input field should be used exactly once in the same function, function: {name}, input field: {i}"
                )
        for o in fn.output_field_names:
            if o in fn.input_field_names:
                raise InvalidArgument(
                    f"a single field cannot be both input and output in the same function, function: {name}, field: {o}"
                )
            if fn.output_field_names.count(o) > 1:
                raise InvalidArgument(
                    f"each function output field should be used exactly once in the same function, function: {name}, output field: {o}"
                )
        if fn.params:
            raise InvalidArgument("BM25 function accepts no params")
        if name in used_names:
            raise InvalidArgument(f"duplicate function name: {name}")
        used_names.add(name)
        inputs = [_function_field(schema, name, i, "input") for i in fn.input_field_names]
        if len(inputs) != 1 or inputs[0].dtype != DataType.VARCHAR:
            raise InvalidArgument(
                f"BM25 function input field must be a VARCHAR field, got {len(inputs)} field with type {_milvus_type(inputs[0])}"
            )
        if not inputs[0].enable_analyzer:
            raise InvalidArgument("BM25 function input field must set enable_analyzer to true")
        outputs = []
        for o in fn.output_field_names:
            f = _function_field(schema, name, o, "output")
            if f.is_primary:
                raise InvalidArgument(f"function output field cannot be primary key: function {name}, field {o}")
            if f.is_partition_key or f.is_clustering_key:
                raise InvalidArgument(
                    f"function output field cannot be partition key or clustering key: function {name}, field {o}"
                )
            if o in used_outputs:
                raise InvalidArgument(f"duplicate function output field: function {name}, field {o}")
            used_outputs.add(o)
            outputs.append(f)
        if len(outputs) != 1:
            raise InvalidArgument(f"BM25 function only need 1 output field, but got {len(outputs)}")
        if outputs[0].dtype != DataType.SPARSE_FLOAT_VECTOR:
            raise InvalidArgument(
                f"BM25 function output field must be a SparseFloatVector field, but got {_milvus_type(outputs[0])}"
            )


def _function_field(schema: CollectionSchema, function: str, name: str, role: str) -> FieldSchema:
    """A function's input or output field, which must exist and not be nullable (Milvus's
    messages)."""
    f = schema.field(name)
    if f is None:
        raise InvalidArgument(f"function {role} field not found: {name}")
    if f.nullable:
        raise InvalidArgument(f"function {role} field cannot be nullable: function {function}, field {name}")
    return f


def _milvus_type(f: FieldSchema) -> str:
    """A data type as Milvus's messages name it (VarChar, SparseFloatVector, ...)."""
    special = {DataType.VARCHAR: "VarChar", DataType.JSON: "JSON", DataType.TIMESTAMPTZ: "Timestamptz"}
    return getattr(f.kind, "milvus_name", None) or special.get(f.dtype) or f.dtype.name.title()


METRICS = ("L2", "IP", "COSINE")
# Milvus's default metric, wherever none is named: an index defined without one, and a
# search on a field that has no index and names none.
DEFAULT_METRIC = "COSINE"
INDEX_TYPES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "AUTOINDEX")


@dataclass
class IndexParam:
    field_name: str
    index_type: str = "AUTOINDEX"
    index_name: str = ""
    metric_type: str = ""  # "" until checked against the field: its type's default metric
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "field_name": self.field_name,
            "index_type": self.index_type,
            "index_name": self.index_name or self.field_name,
            "metric_type": self.metric_type,
            "params": dict(self.params),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IndexParam:
        """An index definition as the catalog stores it (``to_dict``)."""
        return cls(
            field_name=d["field_name"],
            index_type=d["index_type"],
            index_name=d.get("index_name") or d["field_name"],
            metric_type=d["metric_type"],
            params=dict(d.get("params") or {}),
        )


class IndexParams:
    """Mirror of ``pymilvus.milvus_client.IndexParams``: a list built by ``add_index``."""

    def __init__(self) -> None:
        self._indexes: list[IndexParam] = []

    def add_index(
        self,
        field_name: str,
        index_type: str = "",
        index_name: str = "",
        metric_type: str = "",
        params: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        extra = dict(params or {})
        extra.update(kwargs)
        self._indexes.append(
            IndexParam(
                field_name=field_name,
                index_type=(index_type or "AUTOINDEX").upper(),
                index_name=index_name,
                metric_type=(metric_type or "").upper(),
                params=extra,
            )
        )

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._indexes)

    def __len__(self) -> int:
        return len(self._indexes)


def index_param_from_any(p: Any) -> IndexParam:
    """Accept our IndexParam or anything with pymilvus's IndexParam attributes."""
    if isinstance(p, IndexParam):
        return p
    metric = getattr(p, "metric_type", "") or ""
    params = dict(getattr(p, "params", {}) or {})
    if not metric and hasattr(p, "to_dict"):
        # pymilvus's IndexParam has no metric_type/params attributes: it flattens metric_type
        # and the index params into one config dict. Reading only the attributes silently
        # turned an L2 index into COSINE and dropped its params.
        configs = {k: v for k, v in dict(p.to_dict()).items() if k not in ("field_name", "index_name", "index_type")}
        metric = configs.pop("metric_type", "") or ""
        params = {**dict(configs.pop("params", {}) or {}), **configs}
    return IndexParam(
        field_name=p.field_name,
        index_type=(getattr(p, "index_type", "") or "AUTOINDEX").upper(),
        index_name=getattr(p, "index_name", "") or "",
        metric_type=(metric or "").upper(),
        params=params,
    )
