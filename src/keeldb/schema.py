"""Collection schemas, in the shape ``pymilvus`` users already write.

``DataType`` has pymilvus's members with pymilvus's numeric values, so a ``pymilvus.DataType``
passed to keeldb is understood (both are ``int`` underneath) and a schema written for one
works for the other. The schema is persisted in the catalog as plain JSON (``to_dict``).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import pyarrow as pa

from keeldb.errors import InvalidArgument

MAX_DIM = 32768
MAX_VARCHAR_LENGTH = 65535
NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,254}$")
DYNAMIC_FIELD = "$meta"
PARTITION_FIELD = "$partition"  # hidden int64 column: the id of the row's partition
DEFAULT_PARTITION = "_default"
FLOAT32_MAX = 3.4028234663852886e38


class DataType(IntEnum):
    NONE = 0
    BOOL = 1
    INT8 = 2
    INT16 = 3
    INT32 = 4
    INT64 = 5
    FLOAT = 10
    DOUBLE = 11
    STRING = 20
    VARCHAR = 21
    ARRAY = 22
    JSON = 23
    GEOMETRY = 24
    TEXT = 25
    TIMESTAMPTZ = 26
    BINARY_VECTOR = 100
    FLOAT_VECTOR = 101
    FLOAT16_VECTOR = 102
    BFLOAT16_VECTOR = 103
    SPARSE_FLOAT_VECTOR = 104
    INT8_VECTOR = 105
    UNKNOWN = 999


SUPPORTED = {
    DataType.BOOL,
    DataType.INT8,
    DataType.INT16,
    DataType.INT32,
    DataType.INT64,
    DataType.FLOAT,
    DataType.DOUBLE,
    DataType.VARCHAR,
    DataType.JSON,
    DataType.FLOAT_VECTOR,
}
INTEGER_TYPES = {DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64}
FLOAT_TYPES = {DataType.FLOAT, DataType.DOUBLE}
INT_RANGES = {
    DataType.INT8: (-(2**7), 2**7 - 1),
    DataType.INT16: (-(2**15), 2**15 - 1),
    DataType.INT32: (-(2**31), 2**31 - 1),
    DataType.INT64: (-(2**63), 2**63 - 1),
}


def check_name(kind: str, name: Any) -> str:
    """Names become directory names and expression identifiers: keep them to one safe shape."""
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise InvalidArgument(
            f"invalid {kind} name {name!r}: use a letter or underscore, then letters, digits "
            "or underscores, at most 255 characters"
        )
    return name


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

    def __post_init__(self) -> None:
        check_name("field", self.name)
        self.dtype = _to_datatype(self.dtype)
        if self.dtype not in SUPPORTED:
            raise InvalidArgument(f"field {self.name!r}: data type {self.dtype.name} is not supported")
        if self.dtype == DataType.FLOAT_VECTOR:
            if not isinstance(self.dim, int) or isinstance(self.dim, bool) or not 1 <= self.dim <= MAX_DIM:
                raise InvalidArgument(
                    f"field {self.name!r}: dim must be an integer in [1, {MAX_DIM}], got {self.dim!r}"
                )
            if self.nullable or self.default_value is not None:
                raise InvalidArgument(f"vector field {self.name!r} cannot be nullable or have a default")
        if self.dtype == DataType.VARCHAR:
            if self.max_length is None:
                raise InvalidArgument(f"VARCHAR field {self.name!r} needs max_length")
            if (
                not isinstance(self.max_length, int)
                or isinstance(self.max_length, bool)
                or not 1 <= self.max_length <= MAX_VARCHAR_LENGTH
            ):
                raise InvalidArgument(
                    f"field {self.name!r}: max_length must be in [1, {MAX_VARCHAR_LENGTH}]"
                )
        if self.is_primary:
            if self.dtype not in (DataType.INT64, DataType.VARCHAR):
                raise InvalidArgument("the primary key must be INT64 or VARCHAR")
            if self.nullable or self.default_value is not None:
                raise InvalidArgument("the primary key cannot be nullable or have a default")
            if self.auto_id and self.dtype != DataType.INT64:
                raise InvalidArgument("auto_id needs an INT64 primary key")
        if self.default_value is not None:
            self.default_value = validate_scalar(self, self.default_value)

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.dtype, self.dim)

    def to_dict(self) -> dict[str, Any]:
        params: dict[str, Any] = {}
        if self.dim is not None:
            params["dim"] = self.dim
        if self.max_length is not None:
            params["max_length"] = self.max_length
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
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FieldSchema:
        params = d.get("params", {})
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
        )


def arrow_type(dtype: DataType, dim: int | None = None) -> pa.DataType:
    match dtype:
        case DataType.BOOL:
            return pa.bool_()
        case DataType.INT8:
            return pa.int8()
        case DataType.INT16:
            return pa.int16()
        case DataType.INT32:
            return pa.int32()
        case DataType.INT64:
            return pa.int64()
        case DataType.FLOAT:
            return pa.float32()
        case DataType.DOUBLE:
            return pa.float64()
        case DataType.VARCHAR | DataType.JSON:
            return pa.string()
        case DataType.FLOAT_VECTOR:
            assert dim is not None
            return pa.list_(pa.float32(), dim)
    raise InvalidArgument(f"data type {dtype!r} is not supported")


def validate_scalar(f: FieldSchema, value: Any) -> Any:
    """Check one non-null scalar value against its field; return it in canonical form.

    Used for defaults and for the row path's slow error messages; the bulk of a batch is
    converted column-wise in ``engine.rows``.
    """
    t = f.dtype
    if t == DataType.BOOL:
        if not isinstance(value, bool):
            raise InvalidArgument(f"field {f.name!r} expects BOOL, got {type(value).__name__}")
        return value
    if t in INTEGER_TYPES:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidArgument(f"field {f.name!r} expects {t.name}, got {type(value).__name__}")
        lo, hi = INT_RANGES[t]
        if not lo <= value <= hi:
            raise InvalidArgument(f"field {f.name!r}: {value} is out of range for {t.name}")
        return value
    if t in FLOAT_TYPES:
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
    if t == DataType.VARCHAR:
        if not isinstance(value, str):
            raise InvalidArgument(f"field {f.name!r} expects VARCHAR, got {type(value).__name__}")
        assert f.max_length is not None
        if len(value.encode("utf-8")) > f.max_length:
            raise InvalidArgument(
                f"field {f.name!r}: string of {len(value.encode('utf-8'))} bytes exceeds "
                f"max_length {f.max_length}"
            )
        return value
    if t == DataType.JSON:
        return value
    raise InvalidArgument(f"field {f.name!r} cannot take a scalar value")


class CollectionSchema:
    """A list of fields plus collection-wide flags, built like ``pymilvus.CollectionSchema``."""

    def __init__(
        self,
        fields: list[FieldSchema] | None = None,
        *,
        auto_id: bool = False,
        enable_dynamic_field: bool = False,
        description: str = "",
        **_: Any,
    ) -> None:
        self.fields: list[FieldSchema] = []
        self.auto_id = auto_id
        self.enable_dynamic_field = enable_dynamic_field
        self.description = description
        for f in fields or []:
            self._append(f)

    def add_field(self, field_name: str, datatype: Any, **kwargs: Any) -> CollectionSchema:
        """Mirror of ``pymilvus.CollectionSchema.add_field``; returns self for chaining."""
        known = {"is_primary", "auto_id", "dim", "max_length", "nullable", "default_value", "description"}
        unknown = set(kwargs) - known - {"is_partition_key", "is_clustering_key", "mmap_enabled"}
        if unknown:
            raise InvalidArgument(f"add_field: unsupported arguments {sorted(unknown)}")
        args = {k: v for k, v in kwargs.items() if k in known}
        if args.get("is_primary") and self.auto_id and "auto_id" not in args:
            args["auto_id"] = True
        self._append(FieldSchema(field_name, _to_datatype(datatype), **args))
        return self

    def _append(self, f: FieldSchema) -> None:
        if any(g.name == f.name for g in self.fields):
            raise InvalidArgument(f"duplicate field name {f.name!r}")
        self.fields.append(f)

    # -- lookups -------------------------------------------------------------------------

    @property
    def primary(self) -> FieldSchema:
        for f in self.fields:
            if f.is_primary:
                return f
        raise InvalidArgument("the schema has no primary key field")

    @property
    def vector_fields(self) -> list[FieldSchema]:
        return [f for f in self.fields if f.dtype == DataType.FLOAT_VECTOR]

    def field(self, name: str) -> FieldSchema | None:
        for f in self.fields:
            if f.name == name:
                return f
        return None

    def validate(self) -> None:
        primaries = [f for f in self.fields if f.is_primary]
        if len(primaries) != 1:
            raise InvalidArgument(f"a schema needs exactly one primary key field, got {len(primaries)}")
        if not self.vector_fields:
            raise InvalidArgument("a schema needs at least one FLOAT_VECTOR field")
        if self.primary.auto_id:
            self.auto_id = True

    def arrow_schema(self) -> pa.Schema:
        """The Arrow schema of a batch: every declared field, ``$meta`` if dynamic, and the
        hidden ``$partition`` id."""
        cols = [pa.field(f.name, f.arrow_type, nullable=f.nullable) for f in self.fields]
        if self.enable_dynamic_field:
            cols.append(pa.field(DYNAMIC_FIELD, pa.string()))
        cols.append(pa.field(PARTITION_FIELD, pa.int64(), nullable=False))
        return pa.schema(cols)

    def to_dict(self) -> dict[str, Any]:
        return {
            "auto_id": self.auto_id,
            "description": self.description,
            "enable_dynamic_field": self.enable_dynamic_field,
            "fields": [f.to_dict() for f in self.fields],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollectionSchema:
        s = cls(
            auto_id=d.get("auto_id", False),
            enable_dynamic_field=d.get("enable_dynamic_field", False),
            description=d.get("description", ""),
        )
        for fd in d["fields"]:
            s._append(FieldSchema.from_dict(fd))
        return s


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
    metric_type: str = DEFAULT_METRIC
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
                metric_type=(metric_type or DEFAULT_METRIC).upper(),
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
        metric_type=(metric or DEFAULT_METRIC).upper(),
        params=params,
    )
