"""A collection's catalog entry, typed, and the catalog protocol the engine depends on.

Two catalogs implement :class:`Catalog`: a file per data directory (``storage/catalog.py``)
and one etcd key per cluster (``cluster/catalog.py``). Both store :class:`CollectionEntry`
values and change only through ``commit``, so the rules of a catalog change (atomic, durable
before it is visible, a create never overwrites a racing one) live in one method each.

Entries are immutable values, replaced whole (``dataclasses.replace``): a reader holding an
entry (the per-call ``peek``) never sees it change under it, and nobody needs a copy.
The JSON form (``to_dict``/``from_dict``) is the ``CATALOG`` body of docs/formats.md;
``from_dict`` reads every entry written since the catalog existed (keys added later have
defaults).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Protocol

from keeldb.datatype import DataType
from keeldb.engine import index_properties, ttl
from keeldb.errors import InvalidArgument
from keeldb.index.params import (
    IndexSpec,
    index_spec,
    parse_json_path,
    scalar_index_spec,
    text_match_spec,
)
from keeldb.schema import (
    DEFAULT_METRIC,
    DEFAULT_PARTITION,
    DYNAMIC_FIELD,
    CollectionSchema,
    IndexParam,
)


@dataclass(frozen=True, eq=False)
class CollectionEntry:
    """What the catalog knows about one collection. ``partitions`` maps partition names to
    ids (every collection has ``_default``, id 0); ``loaded`` is ``load_collection`` (every
    partition, also those created later), ``loaded_partitions`` the ids ``load_partitions``
    named otherwise; ``created_ts`` is the oracle timestamp of the create (pymilvus's
    schema cache key)."""

    id: int
    schema: CollectionSchema
    indexes: tuple[IndexParam, ...] = ()
    loaded: bool = False
    loaded_partitions: tuple[int, ...] = ()
    partitions: Mapping[str, int] = field(default_factory=lambda: {DEFAULT_PARTITION: 0})
    next_partition_id: int = 1
    properties: Mapping[str, Any] = field(default_factory=dict)
    created_ts: int = 0
    consistency_level: int = 2  # as created (Milvus's enum: 0 Strong, 1 Session, 2 Bounded, 3 Eventually)

    def __post_init__(self) -> None:
        # Read-only views and tuples, so "immutable" holds for what callers can reach too.
        object.__setattr__(self, "indexes", tuple(self.indexes))
        object.__setattr__(self, "loaded_partitions", tuple(self.loaded_partitions))
        object.__setattr__(self, "partitions", MappingProxyType(dict(self.partitions)))
        object.__setattr__(self, "properties", MappingProxyType(dict(self.properties)))

    def __eq__(self, other: object) -> bool:
        """Equal when the catalog would store the same JSON (schemas compare by value)."""
        return isinstance(other, CollectionEntry) and self.to_dict() == other.to_dict()

    __hash__ = None  # type: ignore[assignment]  # equal values, mutable parts: not hashable

    # -- load state -----------------------------------------------------------------------

    @property
    def visible_partitions(self) -> set[int]:
        """Partition ids that reads see: every partition after ``load_collection``, the
        ones ``load_partitions`` named otherwise, none when released."""
        if self.loaded:
            return set(self.partitions.values())
        return set(self.loaded_partitions)

    @property
    def is_loaded(self) -> bool:
        """Whether reads are allowed at all (some partition is loaded)."""
        return self.loaded or bool(self.loaded_partitions)

    @property
    def ttl_seconds(self) -> int:
        """``collection.ttl.seconds`` (0: rows never expire)."""
        return ttl.parse(self.properties.get(ttl.PROPERTY, 0))

    @property
    def timezone(self) -> str:
        """The zone TIMESTAMPTZ values without an offset are read in, and returned in."""
        return str(self.properties.get("timezone") or "UTC")

    # -- indexes --------------------------------------------------------------------------

    def index_on(self, field_name: str) -> IndexParam | None:
        return next((i for i in self.indexes if i.field_name == field_name), None)

    def index_named(self, index_name: str) -> IndexParam | None:
        return next((i for i in self.indexes if i.index_name == index_name), None)

    def search_metric(self, field_name: str, asked: str | None = None) -> str:
        """The metric a search of ``field_name`` ranks by: the one it asks for, else its
        index's, else Milvus's default. (A search asking for another metric than its index
        has is refused by the caller; this only resolves the name.)"""
        index = self.index_on(field_name)
        if not asked and index is None and self.schema.bm25_input(field_name) is not None:
            return "BM25"  # a BM25 function's output is ranked by BM25 only
        if not asked and index is None:
            # No index and no metric named: the data type's default (COSINE for the float
            # types, HAMMING for binary, IP for sparse vectors).
            f = self.schema.field(field_name)
            kind = f.kind if f is not None else None
            return getattr(kind, "default_metric", DEFAULT_METRIC)
        return (asked or (index.metric_type if index is not None else "") or DEFAULT_METRIC).upper()

    def index_specs(self) -> dict[str, IndexSpec]:
        """Key -> how its segments' indexes are built: each vector index created (keyed by
        its field), each scalar index (``scalar_key``), and the
        text-match index of every ``enable_match`` VARCHAR field (Milvus builds it without
        create_index; a field with multi-language analyzers has none, text_match refuses
        it). A definition the current code cannot build (checked at create_index, so only
        possible for a catalog written by other code) means exact search for that field,
        not an error."""
        specs = {
            f.name: text_match_spec(f.analyzer_params or {})
            for f in self.schema.fields
            if f.enable_match and f.enable_analyzer and f.multi_analyzer_params is None
        }
        for i in self.indexes:
            target = index_target(self.schema, i)
            if target is None:
                continue
            t = target
            try:
                if t.is_vector:
                    key, spec = t.field, index_spec(i.index_type, i.metric_type, t.dim, t.params, t.dtype)
                else:
                    key = scalar_key(i)
                    spec = scalar_index_spec(
                        i.index_type, t.field, t.dtype, t.element_type, t.params, is_primary=t.is_primary
                    )
            except InvalidArgument:
                continue
            specs[key] = replace(spec, mmap=index_properties.mmap_of(i.params))  # how its files open
        return specs

    def index_key(self, i: IndexParam) -> str:
        """The key of ``i``'s per-segment indexes (in ``index_specs``, the manifest and each
        segment's ``indexes``): the field's name for a vector index, ``scalar_key`` for a
        scalar one (a JSON field may hold several, one per path)."""
        target = index_target(self.schema, i)
        return i.field_name if target is None or target.is_vector else scalar_key(i)

    # -- the JSON form ----------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "schema": self.schema.to_dict(),
            "indexes": [i.to_dict() for i in self.indexes],
            "loaded": self.loaded,
            "loaded_partitions": list(self.loaded_partitions),
            "partitions": dict(self.partitions),
            "next_partition_id": self.next_partition_id,
            "properties": dict(self.properties),
            "created_ts": self.created_ts,
            "consistency_level": self.consistency_level,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> CollectionEntry:
        """An entry as any keeldb wrote it: ``partitions``, ``next_partition_id`` and
        ``loaded_partitions`` appear only once partitions were used, ``created_ts``,
        ``properties`` and ``consistency_level`` may be missing in early catalogs."""
        return cls(
            id=int(d["id"]),
            schema=CollectionSchema.from_dict(d["schema"]),
            indexes=tuple(IndexParam.from_dict(i) for i in d.get("indexes") or ()),
            loaded=bool(d.get("loaded", False)),
            loaded_partitions=tuple(int(p) for p in d.get("loaded_partitions") or ()),
            partitions={str(n): int(p) for n, p in (d.get("partitions") or {DEFAULT_PARTITION: 0}).items()},
            next_partition_id=int(d.get("next_partition_id", 1)),
            properties=dict(d.get("properties") or {}),
            created_ts=int(d.get("created_ts", 0)),
            consistency_level=int(d.get("consistency_level", 2)),
        )


@dataclass(frozen=True)
class IndexTarget:
    """What an index is built on: a field's name and types, and the index's parameters."""

    field: str
    dtype: DataType
    params: dict[str, Any]
    element_type: DataType | None = None
    is_primary: bool = False
    is_vector: bool = False
    dim: int = 0


def index_target(schema: CollectionSchema, i: IndexParam) -> IndexTarget | None:
    """The field an index is built on, and the parameters it is built with. Usually the
    index's own field and params; but on a collection with a dynamic field, Milvus takes a
    JSON path index on a name the schema does not have (``field_name="my_json"``,
    ``json_path="my_json['a']"``) as one on that key of the dynamic field: it is built
    on ``$meta`` at ``$meta["my_json"]["a"]``, which is where a filter ``my_json["a"]``
    looks. The index keeps the name the user gave (describe_index shows it). None: no
    such field."""
    f = schema.field(i.field_name)
    if f is not None:
        return IndexTarget(
            f.name, f.dtype, dict(i.params), f.element_type, f.is_primary, f.kind.is_vector, f.dim or 0
        )
    if not is_dynamic_key_index(schema, i):
        return None
    steps = parse_json_path(i.field_name, i.params.get("json_path", i.field_name))
    path = DYNAMIC_FIELD + "".join(f"[{json.dumps(s)}]" for s in (i.field_name, *steps))
    return IndexTarget(DYNAMIC_FIELD, DataType.JSON, {**i.params, "json_path": path})


def is_dynamic_key_index(schema: CollectionSchema, i: IndexParam) -> bool:
    """An index on a key of the dynamic field (see ``index_target``)."""
    return (
        schema.enable_dynamic_field
        and schema.field(i.field_name) is None
        and ("json_path" in i.params or "json_cast_type" in i.params)
    )


def json_index_name(schema: CollectionSchema, i: IndexParam) -> str:
    """Milvus's default name of a JSON path index: the field and the path's steps joined
    by '/' (``my_json/a/b``; ``$meta/my_json/a/b`` on a key of the dynamic field), so that
    several unnamed indexes on one JSON field at different paths get distinct names."""
    steps = parse_json_path(i.field_name, i.params.get("json_path", i.field_name))
    head = [DYNAMIC_FIELD] if is_dynamic_key_index(schema, i) else []
    return "/".join([*head, i.field_name, *(str(s) for s in steps)])


def scalar_key(i: IndexParam) -> str:
    """``field#index_name``: '#' is in no field or index name, so the key never collides
    with a vector field's or a text-match index's (keyed by the field's name alone)."""
    return f"{i.field_name}#{i.index_name or i.field_name}"


class Catalog(Protocol):
    """Which collections exist. ``get``/``snapshot``/``names`` see every committed change
    (also other nodes'); ``peek`` is the per-call read path and may answer from memory."""

    def snapshot(self) -> dict[str, CollectionEntry]: ...

    def get(self, name: str) -> CollectionEntry | None: ...

    def peek(self, name: str) -> CollectionEntry | None:
        """The entry as this process knows it; a cluster catalog re-reads etcd when its copy
        lacks ``name`` (or has it not loaded), refreshing the other members too, so
        ``extra()`` right after a missed peek is current (``DatabaseScope.key`` relies on
        it to resolve an alias made through another node)."""
        ...

    def names(self) -> list[str]: ...

    def allocate_id(self) -> int: ...

    def commit(
        self, changes: Mapping[str, CollectionEntry | None], *, new: Collection[str] = (),
        extra: Callable[[Mapping[str, Any], Mapping[str, CollectionEntry]], Mapping[str, Any]] | None = None,
    ) -> Mapping[str, Any]:  # fmt: skip
        """Apply ``{name: entry}`` (``None`` removes) atomically and durably; every name in
        ``new`` must not exist yet (InvalidArgument otherwise), checked in the same step.
        ``extra(members, collections after)``: the catalog's other members (databases,
        aliases, access) changed in the same commit; pure (an etcd catalog may run it
        again on a newer state); it may raise, and then nothing changes. Returns them."""
        ...

    def extra(self, fresh: bool = False) -> Mapping[str, Any]:
        """The other members as last committed; a cluster catalog answers from a copy at
        most a second old unless ``fresh``."""
        ...
