"""``keeldb.Client``: the embedded database behind ``pymilvus.MilvusClient``'s interface.

Method names, argument names and return shapes follow ``pymilvus.MilvusClient`` so that
code moves between the two by changing one constructor. Where Milvus's behaviour is
observable (error codes, default output fields, load state before a search) we follow
Milvus rather than Milvus Lite. This module is only translation: validation of rows lives in
``engine.rows``, storage rules in ``engine.collection``.
"""

from __future__ import annotations

import contextlib
import functools
import json
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from enum import Enum
from typing import Any, TypeVar, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keeldb.access.calls import AccessCalls, AccessStore
from keeldb.engine import (
    bm25,
    bm25_function,
    database,
    namespace,
    partial_update,
    partition_key,
    schema_admin,
)
from keeldb.engine import index_properties as _index_properties
from keeldb.engine import properties as _properties
from keeldb.engine.boost import Boost
from keeldb.engine.catalog import (
    CollectionEntry,
    index_target,
    is_dynamic_key_index,
    json_index_name,
)
from keeldb.engine.collection import DEFAULT_AUTO_FLUSH_BYTES, Collection, Snapshot
from keeldb.engine.database import ReadCall
from keeldb.engine.executor import FieldExecutor
from keeldb.engine.expr import parse_filter
from keeldb.engine.hybrid import (
    Grouping,
    Route,
    boosted,
    check_boost,
    check_grouping,
    grouped,
    ranked,
    round_hits,
)
from keeldb.engine.ordering import OrderKey, order_hits, ordered_query, parse_order_by
from keeldb.engine.query import Output, Selector, pk_selector, query, resolve_output, select
from keeldb.engine.query import count as count_rows
from keeldb.engine.rankers import (
    RRF,
    Decay,
    Ranker,
    RankerError,
    Weighted,
    ranker_from_functions,
    ranker_from_legacy,
)
from keeldb.engine.rows import columns_to_batch, pk_array, rows_to_batch
from keeldb.engine.search import (
    MAX_TOPK,
    SearchRequest,
    SoleSegmentSearch,
    check,
    collect,
    materialise,
    recalls,
    reusable_executor,
    sole_segment_search,
)
from keeldb.engine.search import plain as plain_search
from keeldb.engine.segment import SegmentView
from keeldb.errors import (
    ClientClosed,
    CollectionNotLoaded,
    IndexNotFound,
    InvalidArgument,
    PartitionNotFound,
    PartitionNotLoaded,
)
from keeldb.fields import VectorKind
from keeldb.fields.timestamptz import check_timezone, default_timezone
from keeldb.index.params import SEARCH_PARAMS, index_spec, scalar_index_spec
from keeldb.schema import (
    DEFAULT_METRIC,
    PARTITION_FIELD,
    CollectionSchema,
    DataType,
    FieldSchema,
    IndexParam,
    IndexParams,
    check_name,
    index_param_from_any,
)
from keeldb.text import AnalyzerResult, MultiAnalyzer, Token, build_analyzer


class LoadState(Enum):
    """pymilvus's ``LoadState`` members."""

    NotExist = "NotExist"
    NotLoad = "NotLoad"
    Loading = "Loading"
    Loaded = "Loaded"

    def __repr__(self) -> str:
        return f"<LoadState: {self.value}>"

    def __str__(self) -> str:
        return self.value


# Search and query parameters keeldb does not implement. Grouping would change results, and
# ignoring it would return plausible wrong answers (ungrouped rows), so it is refused until
# implemented: by the embedded client's keyword arguments and by the server's request
# parameters alike. A query's ``group_by_field(s)`` would be an aggregation; a search's
# ``group_by_field`` is grouping search, which keeldb runs (engine/hybrid.py); several
# grouping fields are not. ``order_by_fields`` (and pymilvus's alias ``order_by``) runs
# (engine/ordering.py).
UNSUPPORTED_READ_PARAMS = ("group_by_field", "group_by_fields")
SEARCH_UNSUPPORTED = (
    "group_by_fields",
    "function_chains",
    "search_aggregation",
    "highlighter",
)


class SearchResult(list[list[dict[str, Any]]]):
    """What ``search`` and ``hybrid_search`` return, shaped as pymilvus's ``SearchResult``:
    one list of hits per query, plus ``extra`` -- ``{"cost": n}``, n the entities the
    search ran over (what Milvus hands its cost hook as the related count, and the cost it
    reports in the status's ``report_value``; 0 is not reported, as Milvus skips it) -- and
    ``recalls``: each query's recall with ``enable_recall_calculation``, else None."""

    def __init__(self, hits: list[list[dict[str, Any]]], cost: int, recalls: list[float] | None = None) -> None:
        super().__init__(hits)
        self.extra: dict[str, Any] = {"cost": cost} if cost > 0 else {}
        self.recalls = recalls


class QueryResult(list[dict[str, Any]]):
    """What ``query`` returns, shaped as pymilvus's: the rows, plus ``extra``: ``{"cost": n}``,
    n the entities the query ran over (0 when none)."""

    def __init__(self, rows: list[dict[str, Any]], cost: int) -> None:
        super().__init__(rows)
        self.extra: dict[str, Any] = {"cost": cost}


SEARCH_HINTS = ("iterative_filter",)  # keeldb filters exactly whichever strategy is hinted


def check_hints(hints: Any) -> None:
    """Milvus's search ``hints``: ``iterative_filter`` is taken (keeldb's filtered search
    already returns exactly the filter's best hits); any other is refused as Milvus does."""
    if hints not in (None, "") and hints not in SEARCH_HINTS:
        raise InvalidArgument(f"Create Plan by expr failed:  => hints: {hints} not supported")


def refuse_unsupported(
    params: Mapping[str, Any], keys: tuple[str, ...] = UNSUPPORTED_READ_PARAMS
) -> None:
    """InvalidArgument if ``params`` sets any of ``keys`` (blank = unset)."""
    for key in keys:
        value = params.get(key)
        if value.strip() if isinstance(value, str) else value:
            raise InvalidArgument(f"{key} is not supported by keeldb")


def _partition_names(names: Any) -> list[str]:
    if names in (None, "", [], ()):
        return []
    names = [names] if isinstance(names, str) else list(names)
    if not all(isinstance(n, str) for n in names):
        raise InvalidArgument("partition names must be strings")
    return names


def _partition_ids(entry: CollectionEntry, names: Any, *, read: bool = False, validate: bool = True) -> list[int]:
    """The ids of partitions named by a call. Milvus's words for one that does not exist
    differ: a read (search, query, hybrid search) says "partition name X not found" (65535),
    partition management "partition not found[partition=X]" (200); load_partitions looks
    names up without checking them first (``validate=False``), the others refuse an invalid
    name as such."""
    parts = entry.partitions
    out = []
    for n in _partition_names(names):
        if n not in parts:
            if validate:
                check_name("partition", n)
            if read:
                raise PartitionNotFound(f"partition name {n} not found", code=65535)
            raise PartitionNotFound(f"partition not found[partition={n}]")
        out.append(parts[n])
    return out


def _read_partitions(entry: CollectionEntry, names: Any) -> Selector | None:
    """The rows a read may see: the named partitions, each of which must be loaded, or, with
    no names, every loaded partition (Milvus reads only what is loaded). A partition-key
    collection's partitions cannot be named (Milvus refuses it)."""
    if entry.schema.partition_key is not None and _partition_names(names):
        raise InvalidArgument(partition_key.REFUSAL)
    loaded = entry.visible_partitions
    named = _partition_ids(entry, names, read=True)
    for n, pid in zip(_partition_names(names), named, strict=True):
        if pid not in loaded:
            raise PartitionNotLoaded(f"partition not loaded[partition={n}]")
    if named:
        return _partition_selector(named)
    if set(entry.partitions.values()) <= loaded:
        return None  # everything is loaded: no partition filter at all
    return _partition_selector(sorted(loaded))


def _partition_selector(ids: list[int]) -> Selector | None:
    if not ids:
        return None
    values = pa.array(ids, type=pa.int64())

    def sel(view: SegmentView) -> np.ndarray:
        return np.asarray(pc.is_in(view.column(PARTITION_FIELD), value_set=values), dtype=bool)

    return sel


def _all_of(*selectors: Selector | None) -> Selector | None:
    chosen = [s for s in selectors if s is not None]
    if not chosen:
        return None
    if len(chosen) == 1:
        return chosen[0]

    def sel(view: SegmentView) -> np.ndarray:
        mask = chosen[0](view)
        for s in chosen[1:]:
            mask &= s(view)
        return mask

    return sel


def _key_selector(entry: CollectionEntry, flt: Any) -> Selector | None:
    """A partition-key read whose filter pins the key reads only those keys' partitions."""
    key = entry.schema.partition_key
    if key is None or flt is None:
        return None
    pinned = flt.pinned(key.name)
    if pinned is None:
        return None
    return _partition_selector(partition_key.partitions_of(len(entry.partitions), pinned[1])) or _nothing


def _nothing(view: SegmentView) -> np.ndarray:
    return np.zeros(view.num_rows, dtype=bool)


def _check_isolation(entry: CollectionEntry, flt: Any) -> None:
    """``partitionkey.isolation``: a search must pin exactly one partition-key value with
    '==' (Milvus serves each key's partition on its own then)."""
    key = entry.schema.partition_key
    if key is None or not _properties.isolated(entry.properties):
        return
    pinned = None if flt is None else flt.pinned(key.name)
    if pinned is None:
        raise InvalidArgument(
            "partition key not found in expr or the expr is invalid when validating partition key isolation"
        )
    if pinned[0] != "==" or len(pinned[1]) != 1:
        raise InvalidArgument("partition key isolation does not support IN")


def _timezone(entry: CollectionEntry, asked: Any) -> str:
    """The zone of a read: the call's ``timezone``, else the collection's."""
    return check_timezone(asked) if asked else entry.timezone


_M = TypeVar("_M", bound=Callable[..., Any])


def _validates_collection_name(method: _M) -> _M:
    """Milvus checks the collection's name before it looks it up on these calls (1100
    "Invalid collection name: ...", not 100 "collection not found"); on the others
    (search, hybrid_search, create_index, rename, alter properties) it looks at once and
    answers not found -- the suite of Milvus's own tests holds both, call by call."""

    @functools.wraps(method)
    def checked(self: Any, *args: Any, **kwargs: Any) -> Any:
        check_name("collection", args[0] if args else kwargs.get("collection_name"))
        return method(self, *args, **kwargs)

    return cast(_M, checked)


class Client(AccessCalls, namespace.NamespaceCalls):
    """An embedded keeldb database in the directory ``uri`` (created if missing). Users,
    roles and privileges (``create_user`` ... ``list_privilege_groups``, from AccessCalls)
    are managed here for the server: embedded, the caller owns the directory and no call is
    checked."""

    def __init__(
        self,
        uri: str = "./keeldb_data",
        *,
        auto_flush_bytes: int = DEFAULT_AUTO_FLUSH_BYTES,
        segment_target_bytes: int | None = None,
        compaction_deleted_ratio: float | None = None,
        db_name: str = "",
        **_: Any,
    ) -> None:
        """``segment_target_bytes`` / ``compaction_deleted_ratio``: compaction policy (see
        ``engine/compaction.py``); None keeps the defaults (or the KEELDB_* environment)."""
        path = uri[len("file://") :] if uri.startswith("file://") else uri
        opts: dict[str, Any] = {}
        if segment_target_bytes is not None:
            opts["segment_target_bytes"] = segment_target_bytes
        if compaction_deleted_ratio is not None:
            opts["compaction_deleted_ratio"] = compaction_deleted_ratio
        self._db: database.Database | None = database.acquire(
            path, auto_flush_bytes=auto_flush_bytes, collection_options=opts
        )
        self._borrowed = False
        self._read: ReadCall | None = None
        self._db_name = db_name  # "": the call's database (namespace.current_database)
        self._scopes: dict[str, namespace.DatabaseScope] = {}
        if db_name:
            self.db.check()

    @classmethod
    def over(cls, db: database.Database, read: ReadCall | None = None, db_name: str = "") -> Client:
        """A client over a database opened elsewhere (a cluster node's); ``close`` then
        leaves the database to its owner. ``read``: see ``for_read``."""
        self = cls.__new__(cls)
        self._db = db
        self._borrowed = True
        self._read = read
        self._db_name = db_name
        self._scopes = {}
        return self

    def for_read(self) -> Client:
        """A client for one read call (the gRPC server makes one per search, query and
        statistics call): every collection lookup it makes belongs to that call, so on a
        cluster node with the read role the call is answered by a read replica brought up
        to date once, at its first lookup. Embedded it reads exactly as this client does.
        Use it for that call only, and leave it unclosed (it borrows this client's
        database)."""
        return Client.over(self._database, ReadCall(), self._db_name)

    # -- plumbing -----------------------------------------------------------------------

    def _access_store(self) -> AccessStore:
        return self.db.catalog

    @property
    def _database(self) -> database.Database:
        if self._db is None:
            raise ClientClosed("the client is closed")
        return self._db

    @property
    def db(self) -> namespace.DatabaseScope:
        """The data directory seen from this client's database (``using_database``), or,
        for a client bound to none (the server's), from the current call's."""
        name = self._db_name or namespace.current_database.get()
        scope = self._scopes.get(name)
        if scope is None or scope.database is not self._db:
            scope = self._scopes[name] = namespace.DatabaseScope(self._database, name)
        return scope

    def _coll(self, name: str) -> Collection:
        return self.db.collection(name, self._read)

    def _loaded(self, name: str) -> Collection:
        return self._loaded_entry(name)[0]

    def _loaded_entry(self, name: str) -> tuple[Collection, CollectionEntry]:
        """The open collection and its catalog entry, if reads of it are allowed now."""
        c, e = self.db.collection_and_entry(name, self._read)
        if not e.is_loaded:
            raise CollectionNotLoaded(f"collection not loaded[collection={name}]: call load_collection first")
        return c, e

    def check_loaded(self, collection_name: str) -> None:
        """CollectionNotLoaded (code 101) unless reads of the collection are allowed now,
        CollectionNotFound if it does not exist: what every read checks first."""
        self._loaded(collection_name)

    def collection_entry(self, collection_name: str) -> CollectionEntry:
        """The collection's catalog entry: id, schema, index definitions, partitions, load
        state, creation timestamp. An immutable value; treat what it holds as read-only."""
        return self.db.entry(collection_name)

    def collection_schema(self, collection_name: str) -> CollectionSchema:
        """The schema of the open collection (what reads and writes are checked against)."""
        return self._coll(collection_name).schema

    def alloc_timestamp(self) -> int:
        """A fresh timestamp, later than every one handed out before (AllocTimestamp)."""
        return self.db.oracle.next()

    def last_timestamp(self) -> int:
        """The newest timestamp handed out: every write acknowledged so far is at or below it."""
        return self.db.oracle.last()

    def snapshot(self, collection_name: str, guarantee_ts: int = 0, snapshot_ts: int | None = None) -> Snapshot:
        """A read snapshot of a collection, for callers that need several reads to agree or
        need the snapshot's timestamp (the gRPC server's iterators and consistency levels).

        ``guarantee_ts``: every write logged at or before it is visible (0 = now, i.e. Strong).
        ``snapshot_ts``: read as of that older time instead of the newest state (MVCC)."""
        c = self._coll(collection_name)
        c.catch_up(guarantee_ts if guarantee_ts > 0 else self.db.oracle.last())
        return c.snapshot(snapshot_ts)

    def close(self) -> None:
        if self._db is not None and not self._borrowed:
            database.release(self._db)
        self._db = None

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- schemas and index params -------------------------------------------------------

    @staticmethod
    def create_schema(**kwargs: Any) -> CollectionSchema:
        return CollectionSchema(**kwargs)

    @staticmethod
    def prepare_index_params(field_name: str = "", **kwargs: Any) -> IndexParams:
        p = IndexParams()
        if field_name:
            p.add_index(field_name, **kwargs)
        return p

    # -- collections --------------------------------------------------------------------

    def create_collection(
        self,
        collection_name: str,
        dimension: int | None = None,
        primary_field_name: str = "id",
        id_type: str = "int",
        vector_field_name: str = "vector",
        metric_type: str = DEFAULT_METRIC,
        auto_id: bool = False,
        timeout: float | None = None,
        schema: CollectionSchema | None = None,
        index_params: IndexParams | None = None,
        **kwargs: Any,
    ) -> None:
        check_name("collection", collection_name)
        if schema is None:
            if dimension is None:
                raise InvalidArgument("create_collection needs either dimension (quick setup) or schema")
            schema = CollectionSchema(
                auto_id=auto_id, enable_dynamic_field=kwargs.get("enable_dynamic_field", True)
            )
            if id_type in ("int", DataType.INT64):
                schema.add_field(primary_field_name, DataType.INT64, is_primary=True, auto_id=auto_id)
            elif id_type in ("str", "string", DataType.VARCHAR):
                schema.add_field(
                    primary_field_name,
                    DataType.VARCHAR,
                    is_primary=True,
                    auto_id=auto_id,
                    max_length=kwargs.get("max_length", 65535),
                )
            else:
                raise InvalidArgument(f"id_type must be 'int' or 'string', got {id_type!r}")
            schema.add_field(vector_field_name, DataType.FLOAT_VECTOR, dim=dimension)
            index_params = IndexParams()
            index_params.add_index(vector_field_name, "AUTOINDEX", metric_type=metric_type)
        elif not isinstance(schema, CollectionSchema):
            schema = _schema_from_pymilvus(schema)
        schema.validate()
        indexes = [self._check_index(schema, index_param_from_any(p)) for p in (index_params or [])]
        _check_unique_indexes(indexes)
        key = schema.partition_key
        num_partitions = kwargs.get("num_partitions")
        if key is None and num_partitions not in (None, 0):
            raise InvalidArgument("num_partitions should only be specified with partition key field enabled")
        props = _properties.for_create(kwargs.get("properties"), has_partition_key=key is not None)
        level = schema_admin.consistency_level(kwargs.get("consistency_level"))
        stored = schema_admin.schema_copy(schema)  # the catalog's own copy
        schema_admin.normalize_time_defaults(stored, props[_properties.TIMEZONE])
        if self.db.get(collection_name, resolve=False) is not None:
            existing = self.db.entry(collection_name)
            if existing.schema.to_dict() == stored.to_dict():
                return  # Milvus: creating an identical collection again is a no-op
            raise InvalidArgument(
                f"create duplicate collection with different parameters, collection: {collection_name} "
                "(it already exists with another schema)"
            )
        loaded = bool(indexes) and self._all_vectors_indexed(schema, indexes)
        parts = partition_key.partition_names(partition_key.check_num_partitions(num_partitions)) if key else None
        self.db.create(
            collection_name,
            stored,
            indexes=[IndexParam.from_dict(i.to_dict()) for i in indexes],
            loaded=loaded,
            created_ts=self.db.oracle.next(),
            partitions=parts,
            properties=props,
            consistency_level=level,
        )

    def has_collection(self, collection_name: str, timeout: float | None = None, **_: Any) -> bool:
        return self.db.get(collection_name) is not None

    def list_collections(self, **_: Any) -> list[str]:
        return self.db.names()

    def drop_collection(self, collection_name: str, timeout: float | None = None, **_: Any) -> None:
        self.db.drop(collection_name)

    def rename_collection(self, old_name: str, new_name: str, target_db: str | None = "", **_: Any) -> None:
        """Aliases move with the collection (in the same commit); to ``target_db`` only
        without aliases (Milvus's rule)."""
        self.db.rename(old_name, new_name, target_db or "")

    @_validates_collection_name
    def describe_collection(self, collection_name: str, timeout: float | None = None, **_: Any) -> dict[str, Any]:
        e = self.db.entry(collection_name)
        s = e.schema
        return {
            "collection_name": namespace.split(self.db.key(collection_name))[1],  # the collection an alias names
            "auto_id": s.auto_id,
            "num_shards": 1,
            "description": s.description,
            "fields": schema_admin.describe_fields(s, e.timezone),
            "functions": schema_admin.describe_functions(s),
            "aliases": self.aliases_of(collection_name),
            "collection_id": e.id,
            "consistency_level": e.consistency_level,
            "consistency_level_name": schema_admin.level_name(e.consistency_level),
            "properties": dict(e.properties),
            "num_partitions": len(e.partitions),
            "enable_dynamic_field": s.enable_dynamic_field,
        }

    # -- schema changes and properties --------------------------------------------------

    def add_collection_field(
        self, collection_name: str, field_name: str, data_type: Any, desc: str = "", timeout: float | None = None, **kwargs: Any
    ) -> None:
        """Add a nullable field (optionally with a default) to a live collection: ONE
        durable catalog commit; rows written before it read the default, or null."""
        e = self.db.entry(collection_name)
        self.db.change_schema(collection_name, schema_admin.with_added_field(e, field_name, data_type, desc, kwargs))

    def alter_collection_field(
        self, collection_name: str, field_name: str, field_params: dict[str, Any], timeout: float | None = None, **_: Any
    ) -> None:
        """Change a field's ``max_length``, ``max_capacity``, ``mmap_enabled`` or
        description (what Milvus allows), as one catalog commit."""
        e = self.db.entry(collection_name)
        self.db.change_schema(collection_name, schema_admin.with_altered_field(e, field_name, field_params))

    def drop_collection_field(self, collection_name: str, field_name: str = "", **_: Any) -> None:
        raise InvalidArgument("dropping a field is not supported by keeldb (nor by Milvus 2.6)")

    def add_collection_function(self, collection_name: str, function: Any, **_: Any) -> None:
        """Refused: a function added to a live collection would need its output computed
        for every existing row (a backfill keeldb does not do); declare BM25 functions at
        create_collection."""
        from keeldb.schema import function_from_any

        fn = function_from_any(function)  # a non-BM25 type gets its own refusal
        raise InvalidArgument(
            f"adding function {fn.name!r} to existing collection '{collection_name}' is not supported by keeldb: "
            "declare BM25 functions in the schema at create_collection"
        )

    def alter_collection_function(self, collection_name: str, function_name: str, function: Any = None, **_: Any) -> None:
        raise InvalidArgument(f"altering function {function_name!r} of collection '{collection_name}' is not supported by keeldb")

    def drop_collection_function(self, collection_name: str, function_name: str, **_: Any) -> None:
        raise InvalidArgument(f"dropping function {function_name!r} of collection '{collection_name}' is not supported by keeldb")

    def alter_collection_properties(
        self, collection_name: str, properties: dict[str, Any], timeout: float | None = None, **_: Any
    ) -> None:
        """Set collection properties: ``collection.ttl.seconds`` and ``timezone`` take
        effect at once, ``dynamicfield.enabled=true`` adds the dynamic field; the others
        are kept and shown (engine/properties.py)."""
        e = self.db.entry(collection_name)
        props, dynamic = _properties.altered(
            e.properties, properties, loaded=e.is_loaded,
            has_partition_key=e.schema.partition_key is not None, has_vector_index=bool(e.indexes),
        )  # fmt: skip
        if dynamic:
            if not e.schema.enable_dynamic_field:
                new = schema_admin.schema_copy(e.schema)
                new.enable_dynamic_field = True
                self.db.change_schema(collection_name, new)
            return
        self.db.set_properties(collection_name, props)

    def drop_collection_properties(
        self, collection_name: str, property_keys: list[str], timeout: float | None = None, **_: Any
    ) -> None:
        e = self.db.entry(collection_name)
        self.db.set_properties(collection_name, _properties.dropped(e.properties, property_keys, loaded=e.is_loaded))

    @_validates_collection_name
    def get_collection_stats(self, collection_name: str, timeout: float | None = None, **_: Any) -> dict[str, Any]:
        return {"row_count": self._coll(collection_name).snapshot().live_count()}

    # -- load / release -----------------------------------------------------------------

    @_validates_collection_name
    def load_collection(self, collection_name: str, timeout: float | None = None, **kwargs: Any) -> None:
        """Make the collection readable. Returns once every sealed segment's index is
        committed, so the first searches already use the indexes (pymilvus waits the same
        way); ``_async=True`` returns at once and the indexes arrive in the background."""
        e = self.db.entry(collection_name)
        self._check_loadable(e, collection_name)
        if not e.loaded or e.loaded_partitions:
            self.db.update(collection_name, loaded=True, loaded_partitions=())
        if not kwargs.get("_async"):
            self._coll(collection_name).build_indexes()

    @staticmethod
    def _check_loadable(e: CollectionEntry, name: str) -> None:
        indexed = {i.field_name for i in e.indexes}
        missing = [f.name for f in e.schema.vector_fields if f.name not in indexed]
        if missing:
            raise IndexNotFound(
                f"index not found[collection={name}]: there is no vector index on field {missing}; "
                "create an index before loading"
            )

    @_validates_collection_name
    def release_collection(self, collection_name: str, timeout: float | None = None, **_: Any) -> None:
        e = self.db.entry(collection_name)
        if e.is_loaded:
            self.db.update(collection_name, loaded=False, loaded_partitions=())

    def get_load_state(
        self, collection_name: str, partition_name: str = "", timeout: float | None = None, **_: Any
    ) -> dict[str, LoadState]:
        e = self.db.get(collection_name)
        if e is None:
            return {"state": LoadState.NotExist}
        loaded = e.visible_partitions
        if partition_name:
            pid = e.partitions.get(partition_name)
            if pid is None:
                raise PartitionNotFound(f"partition not found[partition={partition_name}]")
            return {"state": LoadState.Loaded if pid in loaded else LoadState.NotLoad}
        return {"state": LoadState.Loaded if loaded else LoadState.NotLoad}

    def loading_progress(self, collection_name: str) -> int:
        """Percent of the loaded collection's segment rows whose indexes are in use: below
        100 only while the builder is still working on them (a builder that gave up, e.g. on
        a full disk, leaves those segments searched exactly, and a client polling for 100
        must not wait forever)."""
        c = self._loaded(collection_name)
        indexed = pending = 0
        e = self.db.peek(collection_name)
        for i in e.indexes:
            done, todo = c.index_progress(e.index_key(i))
            indexed, pending = indexed + done, pending + todo
        if not pending or not c.index_building:
            return 100
        return min(99, 100 * indexed // (indexed + pending))

    def refresh_load(self, collection_name: str, **_: Any) -> None:
        self._loaded(collection_name)

    # -- indexes ------------------------------------------------------------------------

    def _check_index(self, schema: CollectionSchema, p: IndexParam) -> IndexParam:
        """An index definition checked against its field: for a vector field the index type,
        metric and parameters Milvus allows for the data type (``index.params.index_spec``),
        the metric defaulting to the type's own (COSINE, HAMMING for binary, IP for sparse);
        for a scalar field the kinds Milvus allows on its type (``scalar_index_spec``)."""
        target = index_target(schema, p)
        if target is None:
            raise InvalidArgument(f"cannot create index on non-exist field: {p.field_name}")
        f = schema.field(p.field_name)  # None: a key of the dynamic field (index_target)
        kind = f.kind if f is not None else None
        if f is not None and isinstance(kind, VectorKind):
            bm25_field = schema.bm25_input(f.name) is not None
            metric = p.metric_type or ("BM25" if bm25_field else kind.default_metric)
            if bm25_field and metric != "BM25":
                raise InvalidArgument(
                    f"the output field {f.name!r} of a BM25 function only takes metric type BM25, got {metric}"
                )
            if metric == "BM25" and not bm25_field:
                raise InvalidArgument(
                    f"metric type BM25 applies to the output field of a BM25 function only; {f.name!r} is not one"
                )
            with _index_params_words(p):
                index_spec(p.index_type, metric, f.dim or 0, p.params, f.dtype)  # checks everything
            p = IndexParam(p.field_name, p.index_type, p.index_name, metric, p.params)
        else:
            # A metric type on a scalar index means nothing; Milvus accepts it and keeps it
            # (describe_index shows it), and so does keeldb: nothing ranks by it.
            with _index_params_words(p):
                scalar_index_spec(
                    p.index_type, target.field, target.dtype, target.element_type, target.params,
                    is_primary=target.is_primary,
                )
        if p.index_name:
            check_name("index", p.index_name)
        else:  # Milvus's default: the field's name, or for a JSON path index the path's
            json_index = is_dynamic_key_index(schema, p) or (target.dtype == DataType.JSON and "json_path" in p.params)
            name = json_index_name(schema, p) if json_index else p.field_name
            p = IndexParam(p.field_name, p.index_type, name, p.metric_type, p.params)
        _index_properties.check_values(p.params, f, p)  # mmap.enabled, warmup, ...
        return p

    @staticmethod
    def _all_vectors_indexed(schema: CollectionSchema, indexes: list[IndexParam]) -> bool:
        return all(any(i.field_name == f.name for i in indexes) for f in schema.vector_fields)

    def create_index(
        self, collection_name: str, index_params: IndexParams, timeout: float | None = None, **kwargs: Any
    ) -> None:
        """Define indexes and, as pymilvus does, return once every sealed segment's index is
        built and committed; ``sync=False`` (or ``_async=True``) returns at once and the
        builder works in the background (``wait_for_index`` waits for it later)."""
        e = self.db.entry(collection_name)
        current = list(e.indexes)
        new = [self._check_index(e.schema, index_param_from_any(p)) for p in index_params]
        merged = list(current)
        for p in new:
            same = [c for c in current if _target(c) == _target(p) or c.index_name == p.index_name]
            if same:
                if _definition(same[0]) == _definition(p):
                    continue
                raise InvalidArgument(
                    f"CreateIndex failed: at most one distinct index is allowed per field: {p.field_name!r} already has "
                    f"index {same[0].index_name!r}"
                )
            merged.append(p)
        _check_unique_indexes(merged)
        self.db.update(collection_name, indexes=tuple(IndexParam.from_dict(i.to_dict()) for i in merged))
        if kwargs.get("sync", True) and not kwargs.get("_async"):
            self._coll(collection_name).build_indexes()

    def list_indexes(self, collection_name: str, field_name: str | None = "", **_: Any) -> list[str]:
        e = self.db.entry(collection_name)
        return [i.index_name for i in e.indexes if not field_name or i.field_name == field_name]

    def describe_index(self, collection_name: str, index_name: str, timeout: float | None = None, **_: Any) -> dict[str, Any]:
        e = self.db.entry(collection_name)
        for i in e.indexes:
            if i.index_name == index_name:
                coll = self._coll(collection_name)
                indexed, pending = coll.index_progress(e.index_key(i))
                return {
                    **{k: str(v) for k, v in i.params.items()},
                    "index_type": i.index_type,
                    "metric_type": i.metric_type,
                    "field_name": i.field_name,
                    "index_name": i.index_name,
                    # Row versions held by segments (Milvus counts segment rows too).
                    "total_rows": indexed + pending,
                    "indexed_rows": indexed,
                    "pending_index_rows": pending,
                    # Finished also when the builder gave up with rows pending (they are
                    # searched exactly); InProgress only while a build can still finish.
                    "state": "InProgress" if pending and coll.index_building else "Finished",
                }
        raise IndexNotFound(f"index '{index_name}' does not exist on collection '{collection_name}'")

    def wait_for_index(self, collection_name: str, index_name: str = "", timeout: float | None = None, **_: Any) -> dict[str, Any]:
        """Block until every sealed segment that needs an index has one committed (keeldb
        extension; pymilvus polls ``describe_index`` for the same). Builds in this thread
        what the background builder has not started yet. Returns what was built and the
        index's progress."""
        c = self._coll(collection_name)
        t0 = time.perf_counter()
        built = c.build_indexes()
        e = self.db.peek(collection_name)
        fields = [e.index_key(i) for i in e.indexes if not index_name or i.index_name == index_name]
        progress = {f: c.index_progress(f) for f in fields}
        return {"built": built, "seconds": time.perf_counter() - t0, "pending_rows": sum(p[1] for p in progress.values())}

    def drop_index(self, collection_name: str, index_name: str, timeout: float | None = None, **_: Any) -> None:
        e = self.db.entry(collection_name)
        index = e.index_named(index_name)
        if index is None:
            return  # as Milvus: nothing to drop is a success (the collection must exist)
        target = index_target(e.schema, index)
        if e.is_loaded and (target is None or target.is_vector):
            # A scalar index may go while loaded (filters scan again, as Milvus allows); a
            # vector index may not: loaded searches use it.
            raise InvalidArgument(
                "vector index cannot be dropped on loaded collection; release the collection first"
            )
        self.db.update(collection_name, indexes=tuple(i for i in e.indexes if i.index_name != index_name))

    def alter_index_properties(
        self, collection_name: str, index_name: str, properties: dict[str, Any], timeout: float | None = None, **_: Any
    ) -> None:
        """Set index properties, as Milvus allows on a released collection: ``mmap.enabled``
        opens the index's files memory-mapped or reads them into memory, at once and after
        every restart; ``warmup`` and ``indexoffsetcache.enabled`` are refused (nothing in
        keeldb to act on), other keys are not configurable (engine/index_properties.py).
        ONE catalog commit of the index definition; describe_index shows the property."""
        self._alter_index(collection_name, index_name, properties, None)

    def drop_index_properties(
        self, collection_name: str, index_name: str, property_keys: list[str], timeout: float | None = None, **_: Any
    ) -> None:
        """Remove index properties (``mmap.enabled``: back to the default, memory-mapped
        unless KEELDB_INDEX_MMAP=0); same rules as ``alter_index_properties``."""
        self._alter_index(collection_name, index_name, None, property_keys)

    def _alter_index(
        self, collection_name: str, index_name: str, properties: dict[str, Any] | None, keys: list[str] | None
    ) -> None:
        """Milvus's order: the keys, the collection, the index name, the load state, the
        index, the values; then one commit (``Database.update``), which reopens the open
        index files as the new setting says."""
        _index_properties.check_keys([*(properties or {}), *(keys or [])])
        e = self.db.entry(collection_name)
        if not index_name:
            raise InvalidArgument("index name is empty")
        index = e.index_named(index_name)
        if index is None:
            if e.is_loaded:
                raise _index_properties.loaded_error(collection_name)
            raise IndexNotFound(f"index not found[indexName={index_name}]")
        field = e.schema.field(index.field_name)
        assert field is not None  # an index's field is never dropped before it
        if keys is None:
            params = _index_properties.altered(collection_name, index, field, properties or {}, loaded=e.is_loaded)
        else:
            params = _index_properties.dropped(collection_name, index, keys, loaded=e.is_loaded)
        if params == index.params:
            return
        new = IndexParam(index.field_name, index.index_type, index.index_name, index.metric_type, params)
        self.db.update(collection_name, indexes=tuple(new if i is index else i for i in e.indexes))

    # -- partitions ---------------------------------------------------------------------

    @_validates_collection_name
    def create_partition(self, collection_name: str, partition_name: str, timeout: float | None = None, **_: Any) -> None:
        if self.db.entry(collection_name).schema.partition_key is not None:
            raise InvalidArgument("disable create partition if partition key mode is used")
        self.db.create_partition(collection_name, partition_name)

    @_validates_collection_name
    def drop_partition(self, collection_name: str, partition_name: str, timeout: float | None = None, **_: Any) -> None:
        check_name("partition", partition_name)  # Milvus refuses an invalid name before it looks
        """Deletes the partition's rows (one durable delete) and then the partition itself."""
        if self.db.entry(collection_name).schema.partition_key is not None:
            raise InvalidArgument("disable drop partition if partition key mode is used")
        self.db.drop_partition(collection_name, partition_name)

    @_validates_collection_name
    def has_partition(self, collection_name: str, partition_name: str, timeout: float | None = None, **_: Any) -> bool:
        check_name("partition", partition_name)  # an invalid name is refused, not answered False (Milvus)
        return partition_name in self.db.entry(collection_name).partitions

    @_validates_collection_name
    def list_partitions(self, collection_name: str, timeout: float | None = None, **_: Any) -> list[str]:
        return list(self.db.entry(collection_name).partitions)

    @_validates_collection_name
    def partition_ids(self, collection_name: str) -> dict[str, int]:
        """Partition name -> id (what ShowPartitions reports)."""
        return dict(self.db.entry(collection_name).partitions)

    def get_partition_stats(self, collection_name: str, partition_name: str, timeout: float | None = None, **_: Any) -> dict[str, int]:
        c = self._coll(collection_name)
        sel = _partition_selector(_partition_ids(self.db.entry(collection_name), [partition_name]))
        return {"row_count": sum(int(r.size) for _, r in select(c.snapshot(), None, sel))}

    @_validates_collection_name
    def load_partitions(self, collection_name: str, partition_names: Any = None, **kwargs: Any) -> None:
        """Load some partitions: reads without partition names see only loaded partitions,
        and reads naming an unloaded one are refused (PartitionNotLoaded), as in Milvus."""
        e = self.db.entry(collection_name)
        if e.schema.partition_key is not None:
            raise InvalidArgument("disable load partitions if partition key mode is used")
        ids = _partition_ids(e, partition_names, validate=False)
        if not ids:
            raise InvalidArgument("due to no partition specified: load_partitions needs at least one partition name")
        self._check_loadable(e, collection_name)
        if not e.loaded:
            now = set(e.loaded_partitions)
            if not set(ids) <= now:
                self.db.update(collection_name, loaded_partitions=tuple(sorted(now | set(ids))))
        if not kwargs.get("_async"):
            self._coll(collection_name).build_indexes()

    @_validates_collection_name
    def release_partitions(self, collection_name: str, partition_names: Any = None, **_: Any) -> None:
        """Release some partitions; releasing every loaded one releases the collection."""
        e = self.db.entry(collection_name)
        if e.schema.partition_key is not None:
            raise InvalidArgument("disable release partitions if partition key mode is used")
        ids = set(_partition_ids(e, partition_names))
        if not ids:
            raise InvalidArgument("release_partitions needs at least one partition name")
        now = e.visible_partitions
        if now & ids:
            self.db.update(collection_name, loaded=False, loaded_partitions=tuple(sorted(now - ids)))

    # -- writes -------------------------------------------------------------------------

    @_validates_collection_name
    def insert(
        self,
        collection_name: str,
        data: dict[str, Any] | list[dict[str, Any]],
        timeout: float | None = None,
        partition_name: str | None = "",
        **_: Any,
    ) -> dict[str, Any]:
        return self._write_rows(collection_name, data, partition_name, upsert=False)

    @_validates_collection_name
    def upsert(
        self,
        collection_name: str,
        data: dict[str, Any] | list[dict[str, Any]],
        timeout: float | None = None,
        partition_name: str | None = "",
        **kwargs: Any,
    ) -> dict[str, Any]:
        """``partial_update=True``: only the given fields change (engine/partial_update.py)."""
        if _partial(kwargs):
            c = self._loaded(collection_name)
            given, dynamic, n = partial_update.rows_to_columns(c.schema, data)
            return self._write_partial(collection_name, given, dynamic, n, partition_name)
        return self._write_rows(collection_name, data, partition_name, upsert=True)

    def _placement(self, e: CollectionEntry, partition_name: str | None) -> dict[str, Any]:
        """Where a write's rows go: the named (or default) partition, or, with a partition
        key, each row to its key's partition (naming one is refused, as in Milvus)."""
        if e.schema.partition_key is not None:
            if partition_name:
                raise InvalidArgument(partition_key.REFUSAL)
            n = len(e.partitions)
            return {"partition_id": 0, "route": lambda col: partition_key.route(n, col)}
        return {"partition_id": (_partition_ids(e, partition_name) or [0])[0]}

    def _write_partial(
        self, collection_name: str, given: dict[str, Any], dynamic: list[dict[str, Any]] | None, n: int, partition_name: str | None
    ) -> dict[str, Any]:
        c = self._coll(collection_name)
        e = self.db.peek(collection_name)
        where = self._placement(e, partition_name)
        with default_timezone(e.timezone):
            batch, ts = c.write_merged(
                lambda read: partial_update.merge(c.schema, given, n, dynamic, read, **where),
                partition_id=None if "route" in where else where["partition_id"],
            )
        return {"upsert_count": batch.num_rows, "ids": batch.pks, "cost": 0, "timestamp": ts}

    def _auto_ids(self, c: Collection, n: int, upsert: bool) -> range | None:
        """Keys for an insert under auto_id: a block of oracle timestamps, unique forever."""
        if upsert or not c.schema.primary.auto_id or not n:
            return None
        last = self.db.oracle.next_block(n)
        return range(last - n + 1, last + 1)

    def _write_rows(self, collection_name: str, data: Any, partition_name: str | None, *, upsert: bool) -> dict[str, Any]:
        c = self._coll(collection_name)
        e = self.db.peek(collection_name)
        where = self._placement(e, partition_name)
        rows = [data] if isinstance(data, dict) else data
        auto = self._auto_ids(c, len(rows) if isinstance(rows, list) else 0, upsert)
        with default_timezone(e.timezone):
            batch = rows_to_batch(c.schema, rows, require_pk=upsert, auto_ids=auto, **where)
        c.write(batch, upsert=upsert, partition_id=None if "route" in where else where["partition_id"])
        key = "upsert_count" if upsert else "insert_count"
        return {key: batch.num_rows, "ids": batch.pks, "cost": 0}

    @_validates_collection_name
    def delete(
        self,
        collection_name: str,
        ids: Any = None,
        timeout: float | None = None,
        filter: str | None = None,
        partition_name: str | None = "",
        **kwargs: Any,
    ) -> dict[str, int]:
        n, _ = self.delete_with_timestamp(collection_name, ids, filter, partition_name, **kwargs)
        return {"delete_count": n}

    def delete_with_timestamp(
        self,
        collection_name: str,
        ids: Any = None,
        filter: str | None = None,
        partition_name: str | None = "",
        **kwargs: Any,
    ) -> tuple[int, int]:
        """``delete``, returning (rows deleted, the delete's timestamp): what Milvus's
        MutationResult carries, so that a Session read pinned at it sees the delete."""
        if ids is None:
            ids = kwargs.get("pks")
        c = self._coll(collection_name)
        e = self.db.peek(collection_name)
        if e.schema.partition_key is not None and partition_name:
            raise InvalidArgument(partition_key.REFUSAL)
        part = _partition_selector(_partition_ids(e, partition_name))
        if ids is not None and filter:
            raise InvalidArgument("pass either ids or filter to delete, not both")
        if ids is not None:
            keys = pk_array(c.schema, ids)
            if part is None:
                return c.delete(keys)
            flt = None
            extra = _all_of(part, pk_selector(c.schema.primary.name, keys))
        else:
            # FilterError for a non-string, too
            flt = parse_filter(filter, c.schema, kwargs.get("filter_params"), e.timezone, c.json_casts())
            if flt is None:
                raise InvalidArgument("delete needs ids or a non-empty filter")
            listed = flt.key_list(c.schema.primary.name)
            if listed is not None and part is None:
                # `pk in [...]`: straight to the live-key index, no segment scan.
                return c.delete(pk_array(c.schema, listed))
            extra = part
        pk = c.schema.primary.name

        def pick(snap: Any) -> list[Any]:
            keys: list[Any] = []
            for vi, rows in select(snap, flt, extra):
                keys.extend(snap.views[vi].take(rows, [pk])[pk])
            return keys

        return c.delete(filter_fn=pick)

    def insert_columns(
        self,
        collection_name: str,
        columns: dict[str, Any],
        num_rows: int,
        *,
        dynamic: list[str] | None = None,
        partition_name: str | None = "",
        upsert: bool = False,
        partial_update: bool = False,
    ) -> dict[str, Any]:
        """Column-wise insert (or upsert): ``columns`` maps field names to ``num_rows`` values
        each (a vector field may be an (n, dim) numpy array); ``dynamic`` is each row's
        dynamic fields as JSON object text. The gRPC server's path, and a fast path for
        data that is already columnar. Same checks and same all-or-nothing as ``insert``.
        ``partial_update``: an upsert of only the given columns (``upsert(partial_update=True)``)."""
        c = self._coll(collection_name)
        e = self.db.peek(collection_name)
        if dynamic is not None:
            dynamic = [_json_object_text(t, i) for i, t in enumerate(dynamic)]
        if partial_update:
            self._loaded(collection_name)
            objs = None if dynamic is None else [json.loads(t) for t in dynamic]
            return self._write_partial(collection_name, dict(columns), objs, num_rows, partition_name)
        where = self._placement(e, partition_name)
        auto = self._auto_ids(c, num_rows, upsert)
        with default_timezone(e.timezone):
            batch = columns_to_batch(
                c.schema, columns, num_rows, meta=dynamic, require_pk=upsert, auto_ids=auto, **where
            )
        ts = c.write(batch, upsert=upsert, partition_id=None if "route" in where else where["partition_id"])
        key = "upsert_count" if upsert else "insert_count"
        return {key: batch.num_rows, "ids": batch.pks, "cost": 0, "timestamp": ts}

    # -- text analyzers ------------------------------------------------------------------

    def analyze(
        self,
        texts: list[str],
        analyzer_params: Any = None,
        collection_name: str | None = None,
        field_name: str | None = None,
        analyzer_names: Any = None,
    ) -> list[list[Token]]:
        """The tokens of each text: by ``analyzer_params`` (a dict or its JSON; none = the
        standard analyzer), or by a collection field's analyzer (``collection_name`` +
        ``field_name``; for a multi-language field, ``analyzer_names`` picks per text: one
        name for all, or one per text; none = its default)."""
        if not isinstance(texts, list) or not all(isinstance(t, str) for t in texts):
            raise InvalidArgument("run_analyzer: texts must be a string or a list of strings")
        if collection_name:
            if not field_name:
                raise InvalidArgument("run_analyzer: field_name is required with collection_name")
            f = self.collection_schema(collection_name).field(field_name)
            if f is None:
                raise InvalidArgument(f"field {field_name} not found in collection {collection_name}")
            if not f.enable_analyzer:
                raise InvalidArgument(f"field {field_name} does not enable analyzer")
            analyzer = f.analyzer
        elif field_name:
            raise InvalidArgument("run_analyzer: collection_name is required with field_name")
        else:
            analyzer = build_analyzer(analyzer_params)
        names = [analyzer_names] if isinstance(analyzer_names, str) else list(analyzer_names or [])
        if isinstance(analyzer, MultiAnalyzer):
            if len(names) not in (0, 1, len(texts)):
                raise InvalidArgument(
                    f"run_analyzer: {len(names)} analyzer names for {len(texts)} texts (give one, or one per text)"
                )
            picked = [analyzer.pick(names[0] if len(names) == 1 else names[i] if names else None) for i in range(len(texts))]
            return [a.tokens(t) for a, t in zip(picked, texts, strict=True)]
        if names:
            raise InvalidArgument("run_analyzer: analyzer_names needs a field with multi_analyzer_params")
        return [analyzer.tokens(t) for t in texts]

    def run_analyzer(
        self,
        texts: str | list[str],
        analyzer_params: Any = None,
        with_hash: bool = False,
        with_detail: bool = False,
        collection_name: str | None = None,
        field_name: str | None = None,
        analyzer_names: Any = None,
        timeout: float | None = None,
        **_: Any,
    ) -> AnalyzerResult | list[AnalyzerResult]:
        """pymilvus's ``run_analyzer``: one result for a string, a list for a list. A result's
        ``tokens`` are strings, or dicts with offsets / positions (``with_detail``) and
        Milvus's token hash (``with_hash``)."""
        one = isinstance(texts, str)
        found = self.analyze([texts] if one else texts, analyzer_params, collection_name, field_name, analyzer_names)  # type: ignore[list-item]
        results = [AnalyzerResult(toks, with_hash, with_detail) for toks in found]
        return results[0] if one else results

    @_validates_collection_name
    def compact(self, collection_name: str, timeout: float | None = None, **_: Any) -> int:
        """Merge small segments now (compaction also runs by itself after flushes). Returns
        a job id like pymilvus's; the job has finished when it returns."""
        return self.db.compact(collection_name)

    def get_compaction_state(self, job_id: int, timeout: float | None = None, **_: Any) -> str:
        self.db.compaction_plans(job_id)  # refuses an id this database did not hand out
        return "Completed"

    def compaction_plans(self, job_id: int) -> int:
        """How many merges a compaction job made (GetCompactionState's plan counts)."""
        return self.db.compaction_plans(job_id)

    def flush(self, collection_name: str, timeout: float | None = None, **_: Any) -> int:
        """Seal what was written into segment files; returns the flush timestamp (every
        write at or below it is in committed files; pymilvus's returns None)."""
        return self._coll(collection_name).flush()

    def flushed(self, collection_name: str, ts: int) -> bool:
        """Whether every write at or below ``ts`` is in committed files (GetFlushState)."""
        return self._coll(collection_name).flushed(ts)

    # -- reads --------------------------------------------------------------------------

    @_validates_collection_name
    def query(
        self,
        collection_name: str,
        filter: str = "",
        output_fields: list[str] | None = None,
        timeout: float | None = None,
        ids: Any = None,
        partition_names: list[str] | None = None,
        **kwargs: Any,
    ) -> QueryResult:
        refuse_unsupported(kwargs)
        c = self._loaded(collection_name)
        e = self.db.peek(collection_name)
        part = _read_partitions(e, partition_names)
        if ids is not None and filter:
            raise InvalidArgument("pass either ids or filter to query, not both")
        tz = _timezone(e, kwargs.get("timezone"))
        flt = parse_filter(filter, c.schema, kwargs.get("filter_params"), tz, c.json_casts())
        by_id = pk_selector(c.schema.primary.name, pk_array(c.schema, ids)) if ids is not None else None
        extra = _all_of(part, by_id, _key_selector(e, flt))
        limit = kwargs.get("limit")
        if limit in (None, 0, -1):
            limit = None
        keys = _order_keys(c.schema, kwargs, search=False)
        snap = _read_snapshot(c, kwargs)
        # Milvus applies an offset only together with a limit (pagination); alone it is ignored.
        offset = (kwargs.get("offset", 0) or 0) if limit is not None else 0
        with default_timezone(tz):
            if keys:
                rows = ordered_query(snap, c.schema, flt, output_fields, keys, limit, offset, extra)
            else:
                rows = query(snap, c.schema, flt, output_fields, limit, offset, extra)
        return QueryResult(_query_shapes(c.schema, rows), _rows_in(snap, part))

    @_validates_collection_name
    def get(
        self,
        collection_name: str,
        ids: Any,
        output_fields: list[str] | None = None,
        timeout: float | None = None,
        partition_names: list[str] | None = None,
        **kwargs: Any,
    ) -> list[dict[str, Any]]:
        c = self._loaded(collection_name)
        e = self.db.peek(collection_name)
        part = _read_partitions(e, partition_names)
        keys = pk_array(c.schema, ids)
        if not keys:
            return []
        sel = _all_of(part, pk_selector(c.schema.primary.name, keys))
        with default_timezone(_timezone(e, kwargs.get("timezone"))):
            rows = query(_read_snapshot(c, kwargs), c.schema, None, output_fields, None, 0, sel)
        return _query_shapes(c.schema, rows)

    def count(self, collection_name: str, filter: str = "", **kwargs: Any) -> int:
        """Shortcut for ``query(..., output_fields=["count(*)"])[0]["count(*)"]``."""
        c = self._loaded(collection_name)
        e = self.db.peek(collection_name)
        flt = parse_filter(filter, c.schema, kwargs.get("filter_params"), e.timezone, c.json_casts())
        return count_rows(c.snapshot(), flt)

    def search(
        self,
        collection_name: str,
        data: Any = None,
        filter: str = "",
        limit: int = 10,
        output_fields: list[str] | None = None,
        search_params: dict[str, Any] | None = None,
        timeout: float | None = None,
        partition_names: list[str] | None = None,
        anns_field: str | None = None,
        ranker: Any = None,
        ids: Any = None,
        **kwargs: Any,
    ) -> SearchResult:
        """pymilvus's ``search``. Also: ``ranker`` (a ``Function(function_type=RERANK)`` or
        ``FunctionScore``: rrf, weighted, decay, boost), ``ids`` (search with the stored vectors of
        those primary keys instead of ``data``), ``group_by_field`` / ``group_size`` /
        ``strict_group_size``, ``round_decimal``, ``order_by_fields`` (the best ``offset +
        limit`` hits re-sorted by those fields: engine/ordering.py)."""
        if kwargs:
            refuse_unsupported(kwargs, SEARCH_UNSUPPORTED)
            check_hints(kwargs.get("hints"))
        if search_params:
            check_hints(search_params.get("hints"))
        c, e = self._loaded_entry(collection_name)
        plain = None  # the key of a plain search's checked plan (_PlainSearch)
        if ranker is None and ids is None and not filter and not partition_names and not _ignores_growing(kwargs):
            plain = _plain_key(anns_field, limit, output_fields, search_params, kwargs)
            if plain is not None:
                plan = c.search_plans.get(plain)
                if plan is not None and plan.entry is e and plan.schema is c.schema:
                    return plan.run(c, kwargs.get("snapshot"), data)
        snap = _read_snapshot(c, kwargs)
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidArgument(f"limit must be an integer, got {limit!r}")
        sp = dict(search_params or {})
        offset = kwargs.get("offset", sp.get("offset", 0)) or 0
        tz = _timezone(e, kwargs.get("timezone"))
        spec = _ranker_spec(ranker, hybrid=False)
        grouping = _grouping(kwargs)
        after = kwargs.get("after_distance")
        if isinstance(spec, Boost) and (grouping is not None or after is not None):
            raise InvalidArgument("don't support use segment scorer with group_by or search_iterator")
        if (spec is not None or grouping is not None) and after is not None:
            raise InvalidArgument("Not allowed to do groupBy or rerank when doing iteration")
        keys = _order_keys(c.schema, kwargs, search=True)
        if keys and after is not None:
            raise InvalidArgument("order_by is not supported when using search iterator")
        if keys and spec is not None:
            raise InvalidArgument("order_by and function_score cannot be used together")
        want_recalls = _recall_asked(sp)
        if want_recalls and (spec is not None or grouping is not None or keys):
            raise InvalidArgument(
                "enable_recall_calculation: keeldb computes recalls of plain, filtered and range "
                "searches; not with grouping, a reranker or order_by"
            )
        anns_field = self._anns_field(c.schema, anns_field)
        if ids is not None:
            if data is not None:
                raise InvalidArgument("pass either data or ids to search, not both")
            data = self._vectors_of(c, e, snap, anns_field, ids, partition_names)
        elif data is None:
            raise InvalidArgument("search needs data (query vectors) or ids (primary keys)")
        # A ranker reranks the first offset + limit hits (Milvus), and order_by re-sorts them;
        # grouping asks for more.
        whole = spec is not None or bool(keys)
        route = self._route(
            c, e, anns_field, data, sp, filter, kwargs.get("filter_params"), tz, partition_names,
            limit=limit + offset if whole else limit, offset=0 if whole else offset, after=after,
        )  # fmt: skip
        decimals = _round_decimal(kwargs.get("round_decimal", -1))
        out = resolve_output(c.schema, output_fields)
        pk = c.schema.primary.name
        rec: list[float] | None = None
        with default_timezone(tz):
            if grouping is not None:
                check_grouping(c.schema, grouping, limit)
            if isinstance(spec, Boost):
                filters = check_boost(c.schema, spec, kwargs.get("filter_params"), tz)
                hits = boosted(snap, route, spec, filters, pk=pk, limit=limit, offset=offset,
                               round_decimal=decimals)  # fmt: skip
            elif spec is not None:
                check(replace(route.req, limit=limit, offset=offset))
                hits = ranked(snap, [route], spec, pk=pk, limit=limit, offset=offset,
                              round_decimal=decimals, grouping=grouping)  # fmt: skip
            elif keys:
                check(replace(route.req, limit=limit, offset=offset))
                if grouping is not None:
                    best = grouped(snap, route, grouping, limit + offset, 0)
                else:
                    best = collect(snap, route.req, route.flt, route.extra)
                group = grouping.field if grouping is not None else None
                hits = order_hits(snap, round_hits(best, decimals), keys, offset, limit, group)
            elif grouping is not None:
                hits = round_hits(grouped(snap, route, grouping, limit, offset), decimals)
            else:
                check(route.req)
                found = collect(snap, route.req, route.flt, route.extra)
                if plain is not None and not want_recalls and decimals == -1:
                    _keep_plan(c, e, plain, snap, route, out, pk)
                if want_recalls:
                    rec = recalls(snap, route.req, route.flt, route.extra, found)
                hits = round_hits(found, decimals)
            cost = _rows_in(snap, _read_partitions(e, partition_names))
            return SearchResult(materialise(snap, out, pk, hits), cost, rec)

    def hybrid_search(
        self,
        collection_name: str,
        reqs: list[Any],
        ranker: Any = None,
        limit: int = 10,
        output_fields: list[str] | None = None,
        timeout: float | None = None,
        partition_names: list[str] | None = None,
        **kwargs: Any,
    ) -> SearchResult:
        """pymilvus's ``hybrid_search``: each request (a ``pymilvus.AnnSearchRequest``, or a
        dict with its names: ``data``, ``anns_field``, ``param``, ``limit``, ``expr`` /
        ``filter``, ``expr_params``) is searched on ONE snapshot, and the hits are fused by
        ``ranker`` (``RRFRanker``, ``WeightedRanker``, or a ``Function`` reranker: rrf,
        weighted, decay; default RRF k=60). ``offset``, ``round_decimal``,
        ``group_by_field`` / ``group_size`` / ``strict_group_size`` / ``rank_group_scorer``,
        ``order_by_fields`` (the fused ``offset + limit`` best re-sorted by those fields)."""
        refuse_unsupported(kwargs, SEARCH_UNSUPPORTED)
        c = self._loaded(collection_name)
        e = self.db.peek(collection_name)
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidArgument(f"limit must be an integer, got {limit!r}")
        if not isinstance(reqs, list | tuple) or not reqs:
            raise InvalidArgument("hybrid_search needs a non-empty list of search requests")
        spec = _ranker_spec(ranker, hybrid=True)
        assert spec is not None and not isinstance(spec, Boost)
        grouping = _grouping(kwargs)
        keys = _order_keys(c.schema, kwargs, search=True)
        offset = kwargs.get("offset", 0) or 0
        if isinstance(offset, int) and not isinstance(offset, bool) and limit + offset > MAX_TOPK:
            raise InvalidArgument(
                f"invalid max query result window, (offset+limit) should be in range [1, {MAX_TOPK}], "
                f"but got {limit + offset}"
            )
        _read_partitions(e, partition_names)  # as Milvus: the partitions before the requests
        tz = _timezone(e, kwargs.get("timezone"))
        routes = []
        for i, r in enumerate(reqs):
            a = _ann_request(r, i)
            field = a["anns_field"]
            vf = c.schema.field(field) if isinstance(field, str) else None
            if vf is None or not isinstance(vf.kind, VectorKind):
                raise InvalidArgument(
                    f"failed to create query plan: failed to get field schema by name: fieldName({field}) not found: "
                    f"invalid parameter (search request {i})" if vf is None
                    else f"search request {i}: anns_field {field!r} is not a vector field of the collection"
                )
            routes.append(self._route(
                c, e, field, a["data"], a["param"], a["expr"], a["expr_params"], tz, partition_names,
                limit=a["limit"], offset=0, after=None,
            ))  # fmt: skip
        if grouping is not None:
            check_grouping(c.schema, grouping, limit)
        decimals = _round_decimal(kwargs.get("round_decimal", -1))
        out = resolve_output(c.schema, output_fields)
        snap = _read_snapshot(c, kwargs)  # one snapshot for every request
        pk = c.schema.primary.name
        with default_timezone(tz):
            if keys:
                check(SearchRequest(field="", queries=None, metric="", limit=limit, offset=offset))
                best = ranked(snap, routes, spec, pk=pk, limit=limit + offset, offset=0,
                              round_decimal=decimals, grouping=grouping)  # fmt: skip
                group = grouping.field if grouping is not None else None
                hits = order_hits(snap, best, keys, offset, limit, group)
            else:
                hits = ranked(snap, routes, spec, pk=pk, limit=limit, offset=offset,
                              round_decimal=decimals, grouping=grouping)  # fmt: skip
            # each request ran over the rows: Milvus adds up its sub-searches' counts
            cost = len(routes) * _rows_in(snap, _read_partitions(e, partition_names))
            return SearchResult(materialise(snap, out, pk, hits), cost)

    # -- search plumbing ----------------------------------------------------------------

    @staticmethod
    def _anns_field(schema: CollectionSchema, anns_field: str | None) -> str:
        if anns_field:
            return anns_field
        vfields = schema.vector_fields
        if len(vfields) != 1:
            raise InvalidArgument("the collection has several vector fields: pass anns_field")
        return vfields[0].name

    def _route(
        self,
        c: Collection,
        e: CollectionEntry,
        anns_field: str,
        data: Any,
        search_params: Mapping[str, Any] | None,
        filter: str | None,
        filter_params: Any,
        tz: str,
        partition_names: Any,
        *,
        limit: int,
        offset: int,
        after: float | None,
    ) -> Route:
        """One search's request, filter and partition selection, checked: what ``search``
        runs, and each request of a hybrid search."""
        part = _read_partitions(e, partition_names)
        vf = c.schema.field(anns_field)
        kind = vf.kind if vf is not None else None
        if vf is None or not isinstance(kind, VectorKind):
            raise InvalidArgument(
                f"failed to create query plan: failed to get field schema by name: fieldName({anns_field}) not found: "
                "invalid parameter" if vf is None else f"anns_field {anns_field!r} is not a vector field of the collection"
            )
        if isinstance(limit, bool) or not isinstance(limit, int):
            raise InvalidArgument(f"limit must be an integer, got {limit!r}")
        index = e.index_on(anns_field)
        sp = dict(search_params or {})
        metric = e.search_metric(anns_field, sp.get("metric_type"))
        if c.schema.bm25_input(anns_field) is not None and metric != "BM25":
            raise InvalidArgument("must use BM25 metric type when searching against BM25 Function output field")
        if index is not None and metric != index.metric_type:
            raise InvalidArgument(
                f"metric type not match: search asks for {metric}, the index on {anns_field!r} "
                f"uses {index.metric_type}"
            )
        params = dict(sp.get("params") or {})
        for knob in SEARCH_PARAMS:  # pymilvus also accepts them at the top level
            if knob in sp and knob not in params:
                params[knob] = sp[knob]
        if c.schema.bm25_input(anns_field) is not None:
            if index is not None:
                params = bm25.with_index_params(params, index.params)
            queries = bm25_function.query_rows(c.schema, anns_field, data, params.get("analyzer_name"))
        else:
            queries = kind.queries(vf, data)
        req = SearchRequest(
            field=anns_field,
            queries=queries,
            metric=metric,
            limit=limit,
            offset=offset,
            radius=params.get("radius", sp.get("radius")),
            range_filter=params.get("range_filter", sp.get("range_filter")),
            after=after,
            params={k: v for k, v in params.items() if k in SEARCH_PARAMS},
        )
        flt = parse_filter(filter or "", c.schema, filter_params, tz, c.json_casts())
        _check_isolation(e, flt)
        return Route(req, flt, _all_of(part, _key_selector(e, flt)))

    def _vectors_of(
        self,
        c: Collection,
        e: CollectionEntry,
        snap: Snapshot,
        field: str,
        ids: Any,
        partition_names: Any,
    ) -> list[Any]:
        """Search by primary key: the stored vectors of ``ids`` at the search's snapshot, in
        the order given; a key with no live row is refused (no query is made up)."""
        if isinstance(ids, str | int) and not isinstance(ids, bool):
            ids = [ids]
        keys = pk_array(c.schema, ids)
        if not keys:
            raise InvalidArgument("ids must not be empty")
        pk = c.schema.primary.name
        sel = _all_of(_read_partitions(e, partition_names), pk_selector(pk, keys))
        rows = query(snap, c.schema, None, [field], None, 0, sel)
        found = {r[pk]: r[field] for r in rows}
        missing = [k for k in keys if k not in found]
        if missing:
            raise InvalidArgument(
                f"search by primary key: no live entity with primary key {missing[:10]}"
            )
        return [found[k] for k in keys]

    # -- keeldb extras ------------------------------------------------------------------

    def recovery_report(self, collection_name: str) -> dict[str, Any]:
        """What opening this collection found: manifest version, log records replayed, and
        any torn tail that was cut (with the byte count)."""
        return dict(self._coll(collection_name).report.__dict__)


def _query_shapes(schema: CollectionSchema, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows as pymilvus's ``query`` / ``get`` return them: a BINARY, FLOAT16, BFLOAT16 or
    INT8 vector as a list holding the row's bytes (``[b"..."]``; a search hit's entity has
    the bare ``bytes``, as in pymilvus)."""
    wrapped = [f.name for f in schema.vector_fields if getattr(f.kind, "as_bytes", False)]
    if wrapped and rows:
        for r in rows:
            for name in wrapped:
                if isinstance(r.get(name), bytes):
                    r[name] = [r[name]]
    return rows


@dataclass(frozen=True)
class _PlainSearch:
    """A plain search -- no filter, partitions, ranker, grouping, ordering, range, cursor,
    rounding or recalls; ids only or no output fields -- checked once by the general path
    and kept on the collection under its parameters (``_plain_key``). Valid while the
    catalog entry (index, metric, loaded partitions, properties) and the schema it was
    checked against are the current ones: both are replaced whole on any change. What a
    call still does: read its snapshot, check its query vectors, search, build the hits."""

    entry: CollectionEntry
    schema: CollectionSchema
    field: FieldSchema
    kind: VectorKind
    req: SearchRequest  # queries: those of the call that made the plan (replaced per call)
    executor: FieldExecutor
    out: Output
    pk: str
    sole: SoleSegmentSearch | None  # the path without a snapshot, for dense fields

    def run(self, c: Collection, snap: Snapshot | None, data: Any) -> SearchResult:
        """Search at ``snap``, or (None) at the newest state."""
        if data is None:
            raise InvalidArgument("search needs data (query vectors) or ids (primary keys)")
        if snap is None:
            if self.sole is not None and (found := c.sole_segment()) is not None:
                count, seg = found
                hits = self.sole(seg, self.kind.queries(self.field, data))
                if hits is not None:
                    return SearchResult(hits, count)
            snap = c.snapshot()
        t = self.req  # (a new request, not dataclasses.replace: that cost twice as much)
        req = SearchRequest(t.field, self.kind.queries(self.field, data), t.metric, t.limit, t.offset, params=t.params)
        return SearchResult(plain_search(snap, req, self.executor(req), self.out, self.pk), snap.live_count())


_PLANS_KEPT = 64  # per collection; more distinct parameter sets than this start over


def _keep_plan(c: Collection, e: CollectionEntry, key: tuple[Any, ...], snap: Snapshot, route: Route, out: Output,
               pk: str) -> None:  # fmt: skip
    """Keep a plain search's checked route for the next call with the same parameters."""
    req = route.req
    if route.flt is not None or route.extra is not None or req.radius is not None or req.range_filter is not None:
        return
    if req.after is not None or req.offset or out.with_dynamic or out.fields not in ((), (pk,)):
        return
    vf = c.schema.field(req.field)
    executor = reusable_executor(snap, req)
    if vf is None or not isinstance(vf.kind, VectorKind) or executor is None or c.schema.bm25_input(req.field):
        return
    sole = sole_segment_search(executor, req, pk if out.fields else None)
    if len(c.search_plans) >= _PLANS_KEPT:
        c.search_plans.clear()
    c.search_plans[key] = _PlainSearch(e, c.schema, vf, vf.kind, req, executor, out, pk, sole)


_SCALARS = (str, int, float, bool, type(None))


def _frozen(value: Any) -> Any:
    """``value`` as a hashable key, with every scalar's type (so that ``1``, ``1.0`` and
    ``True`` differ: a plan checked for one must not answer for another); None for
    anything else (numpy scalars, objects: no plan). Flat where it can be: a scalar inside
    a container is its (key,) type and value in place, not a nested call (this runs on
    every plain search)."""
    t = type(value)
    if t is dict:
        items: list[Any] = []
        for k, v in value.items():
            if type(k) is not str:
                return None
            tv = type(v)
            if tv in _SCALARS:
                items.append((k, tv, v))
            else:
                f = _frozen(v)
                if f is None:
                    return None
                items.append((k, f))
        return (dict, *items)
    if t in _SCALARS:
        return (t, value)
    if t is list or t is tuple:
        items = []
        for v in value:
            tv = type(v)
            if tv in _SCALARS:
                items.append((tv, v))
            else:
                f = _frozen(v)
                if f is None:
                    return None
                items.append(f)
        return (t, *items)
    return None


@contextlib.contextmanager
def _index_params_words(p: IndexParam) -> Iterator[None]:
    """An index definition refused in Milvus's frame (its checkers' words are kept inside):
    an unknown type is "invalid parameter[expected=valid index][actual=invalid index type: X]",
    other bad params end "invalid parameter[expected=valid index params][actual=invalid index
    params]", and a json_path that is no path "cannot parse identifier: X"."""
    try:
        yield
    except InvalidArgument as e:
        msg = e.message
        if "json_path" in msg and ("not a path" in msg or "must be a JSON path" in msg):
            raise InvalidArgument(f"cannot parse identifier: {p.params.get('json_path')}: {msg}") from None
        if "index type" in msg and ("unknown" in msg or "invalid" in msg):
            raise InvalidArgument(
                f"invalid parameter[expected=valid index][actual=invalid index type: {p.index_type}]: {msg}"
            ) from None
        raise InvalidArgument(f"{msg}: invalid parameter[expected=valid index params][actual=invalid index params]") from None


def _read_snapshot(c: Collection, kwargs: Mapping[str, Any]) -> Snapshot:
    """What a read sees: the snapshot it was given (the server's, for a consistency level
    or an iterator) or the newest; with ``ignore_growing`` its sealed segments only."""
    snap: Snapshot = kwargs.get("snapshot") or c.snapshot()
    return snap.sealed_only() if _ignores_growing(kwargs) else snap


def _ignores_growing(kwargs: Mapping[str, Any]) -> bool:
    """``ignore_growing`` as given: a bool, or the text pymilvus sends ("True"/"False")."""
    flag = kwargs.get("ignore_growing")
    return flag.strip().lower() == "true" if isinstance(flag, str) else bool(flag)


def _plain_key(anns_field: Any, limit: Any, output_fields: Any, search_params: Any,
               kwargs: Mapping[str, Any]) -> tuple[Any, ...] | None:  # fmt: skip
    """The key a plain search's plan is kept under: every argument but the query data and
    the snapshot (None when one is not a plain value: no plan)."""
    rest = _frozen({k: v for k, v in kwargs.items() if k != "snapshot"}) if kwargs else ()
    key = (_frozen(anns_field), type(limit), limit, _frozen(output_fields), _frozen(search_params), rest)
    return None if type(limit) is not int or None in key else key


def _rows_in(snap: Snapshot, part: Selector | None) -> int:
    """The entities a read ran over: the snapshot's live rows in the partitions it reads."""
    if part is None:
        return snap.live_count()
    return sum(int(rows.size) for _, rows in select(snap, None, part))


def _recall_asked(search_params: Mapping[str, Any]) -> bool:
    """Whether ``enable_recall_calculation`` is set, in the params or beside them (a bool, or
    the text pymilvus sends)."""
    params = search_params.get("params")
    for where in (params if isinstance(params, Mapping) else {}, search_params):
        value = where.get("enable_recall_calculation")
        if value is not None:
            if isinstance(value, str) and value.strip().lower() in ("true", "false"):
                return value.strip().lower() == "true"
            if not isinstance(value, bool):
                raise InvalidArgument(f"enable_recall_calculation must be true or false, got {value!r}")
            return value
    return False


def _partial(kwargs: dict[str, Any]) -> bool:
    """Whether an upsert is a partial update; per-field merge operators are refused."""
    ops = kwargs.get("field_ops")
    if ops:
        names = {getattr(op, "op", op) for op in (ops.values() if isinstance(ops, dict) else ops)}
        if any(str(n).lower() not in ("replace", "0") for n in names):
            raise InvalidArgument(
                "field_ops ARRAY_APPEND / ARRAY_REMOVE are not supported by keeldb; "
                "send the whole new array with partial_update=True"
            )
    return bool(kwargs.get("partial_update"))


def _json_object_text(text: str | bytes, row: int) -> str:
    """Dynamic-field text from the wire: must be one JSON object (no NaN)."""
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except (ValueError, TypeError) as e:
        raise InvalidArgument(f"row {row}: dynamic field is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"row {row}: dynamic field must be a JSON object")
    return text.decode() if isinstance(text, bytes) else text


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not allowed")


def _target(i: IndexParam) -> tuple[str, str]:
    """What an index covers: its field, and for a JSON path index the path (Milvus allows
    one index per path, several per JSON field)."""
    return i.field_name, str(i.params.get("json_path", "")).replace("'", '"').replace(" ", "")


def _definition(p: IndexParam) -> dict[str, Any]:
    """What makes an index the same index: its definition without the properties
    ``alter_index_properties`` may change (a repeated create_index is then a no-op)."""
    return {**p.to_dict(), "params": _index_properties.without_configurable(p.params)}


def _check_unique_indexes(indexes: list[IndexParam]) -> None:
    fields = [_target(i) for i in indexes]
    names = [i.index_name for i in indexes]
    if len(set(fields)) != len(fields) or len(set(names)) != len(names):
        raise InvalidArgument("at most one index per field, with distinct index names")


def _schema_from_pymilvus(schema: Any) -> CollectionSchema:
    """Accept a ``pymilvus.CollectionSchema`` too, so code written for pymilvus works as is.
    What keeldb does not run is refused here, never dropped: schema functions and
    struct-array fields."""
    structs = list(getattr(schema, "struct_fields", None) or [])
    if structs:
        raise InvalidArgument(
            f"struct array field {getattr(structs[0], 'name', '?')!r} is not supported by keeldb"
        )
    s = CollectionSchema(
        auto_id=getattr(schema, "auto_id", False),
        enable_dynamic_field=getattr(schema, "enable_dynamic_field", False),
        description=getattr(schema, "description", ""),
    )
    for f in schema.fields:
        s.add_field(f.name, int(f.dtype), **pymilvus_field_args(f))
    for fn in getattr(schema, "functions", None) or []:
        s.add_function(fn)  # BM25 taken, every other type refused (schema.function_from_any)
    return s


def pymilvus_field_args(f: Any) -> dict[str, Any]:
    """A ``pymilvus.FieldSchema``'s settings as ``add_field`` arguments; its default
    ValueField is checked slot against type as Milvus checks it."""
    from keeldb.fields import defaults

    params = getattr(f, "params", {}) or {}
    kwargs: dict[str, Any] = {"is_primary": getattr(f, "is_primary", False)}
    if getattr(f, "auto_id", False):
        kwargs["auto_id"] = True
    for key in ("dim", "max_length", "max_capacity"):
        if key in params:
            kwargs[key] = int(params[key])
    if "mmap_enabled" in params:
        kwargs["mmap_enabled"] = str(params["mmap_enabled"]).lower() == "true"
    for key in ("enable_analyzer", "enable_match"):
        if key in params:  # pymilvus keeps a bool, or a "true"/"false" string as given
            value = params[key]
            kwargs[key] = value if isinstance(value, bool) else str(value).strip().lower() == "true"
    for key in ("analyzer_params", "multi_analyzer_params"):
        if key in params:  # pymilvus turns a dict into JSON text; FieldSchema parses it back
            kwargs[key] = params[key]
    for key in ("nullable", "is_partition_key", "is_clustering_key"):
        if getattr(f, key, False):
            kwargs[key] = True
    element = getattr(f, "element_type", None)
    if element is not None:
        kwargs["element_type"] = int(element)
    default = getattr(f, "default_value", None)
    if default is not None and not isinstance(default, bool | int | float | str):
        which = default.WhichOneof("data") if hasattr(default, "WhichOneof") else None
        if which is not None:
            defaults.check_slot(f.name, DataType(int(f.dtype)), which)
            value = getattr(default, which)
            default = value if which != "int_data" else np.int32(value)
        else:
            default = None
    if default is not None:
        kwargs["default_value"] = default
    return kwargs


# -- rankers, grouping and hybrid requests as pymilvus passes them ------------------------------


def _ranker_spec(ranker: Any, *, hybrid: bool) -> Ranker | Boost | None:
    """pymilvus's ranker objects (or their dict forms) as an engine ranker: ``RRFRanker`` /
    ``WeightedRanker`` (``.dict()`` = ``{"strategy", "params"}``), a
    ``Function(function_type=RERANK)``, a ``FunctionScore`` (one function, or boost
    functions). None: no reranking for a search, RRF (k=60) for a hybrid search (Milvus's
    default)."""
    if ranker is None:
        return RRF() if hybrid else None
    if isinstance(ranker, RRF | Weighted | Decay | Boost):  # already an engine ranker
        if isinstance(ranker, Boost) and hybrid:
            return ranker_from_functions([({"reranker": "boost"}, ())], {}, hybrid=True)
        return ranker
    if isinstance(ranker, Mapping):
        if "strategy" in ranker:
            return ranker_from_legacy(ranker["strategy"], ranker.get("params") or {})
        return ranker_from_functions(
            [(ranker, ranker.get("input_field_names") or ())], {}, hybrid=hybrid
        )
    functions = getattr(ranker, "functions", None)
    if functions is not None and not hasattr(ranker, "input_field_names"):  # FunctionScore
        return ranker_from_functions(
            [_function_parts(f) for f in functions], dict(getattr(ranker, "params", None) or {}),
            hybrid=hybrid,
        )  # fmt: skip
    if hasattr(ranker, "input_field_names"):  # pymilvus Function
        return ranker_from_functions([_function_parts(ranker)], {}, hybrid=hybrid)
    if hasattr(ranker, "dict"):  # RRFRanker, WeightedRanker
        d = ranker.dict()
        if not hybrid:
            raise RankerError(
                "RRFRanker / WeightedRanker apply to hybrid_search; pass a Function to search"
            )
        return ranker_from_legacy(d.get("strategy"), d.get("params") or {})
    raise InvalidArgument(
        f"ranker must be a Function, FunctionScore, RRFRanker or WeightedRanker, got {ranker!r}"
    )


def _function_parts(f: Any) -> tuple[dict[str, Any], list[str]]:
    """A pymilvus ``Function``'s params and input field names, checked to be a RERANK."""
    if not hasattr(f, "input_field_names"):
        raise InvalidArgument(f"a FunctionScore holds Functions, got {f!r}")
    ftype = getattr(f, "type", None)
    if int(getattr(ftype, "value", ftype) or 0) != 3:  # FunctionType.RERANK
        raise RankerError(f"{getattr(ftype, 'name', ftype)} is not rerank function.")
    return dict(f.params or {}), list(f.input_field_names or ())


def _order_keys(schema: CollectionSchema, kwargs: Mapping[str, Any], *, search: bool) -> tuple[OrderKey, ...]:
    """``order_by_fields`` (or pymilvus's query alias ``order_by``), parsed and checked."""
    spec = kwargs.get("order_by_fields")
    if spec in (None, "", [], ()):
        spec = kwargs.get("order_by")
    return parse_order_by(spec, schema, search=search)


def _grouping(kwargs: Mapping[str, Any]) -> Grouping | None:
    field = kwargs.get("group_by_field")
    if field in (None, ""):
        for key in ("group_size", "strict_group_size"):
            if kwargs.get(key) not in (None, False):
                raise InvalidArgument(f"{key} needs group_by_field")
        return None
    if not isinstance(field, str):
        raise InvalidArgument(f"group_by_field must be a field name, got {field!r}")
    size = kwargs.get("group_size")
    strict = kwargs.get("strict_group_size")
    return Grouping(
        field=field,
        size=1 if size is None else size,
        strict=bool(strict),
        scorer=str(kwargs.get("rank_group_scorer") or "max"),
    )


def _round_decimal(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not -1 <= value <= 6:
        raise InvalidArgument(f"round_decimal must be an integer in [-1, 6], got {value!r}")
    return value


def _ann_request(r: Any, i: int) -> dict[str, Any]:
    """One request of a hybrid search, from a ``pymilvus.AnnSearchRequest`` or a dict."""
    get = r.get if isinstance(r, Mapping) else (lambda k, d=None: getattr(r, k, d))
    anns_field = get("anns_field")
    if anns_field is None:
        raise InvalidArgument(
            f"search request {i} is not an AnnSearchRequest (no anns_field): {r!r}"
        )
    param = get("param") or {}
    if not isinstance(param, Mapping):
        raise InvalidArgument(f"search request {i}: param must be a dict")
    return {
        "anns_field": anns_field,
        "data": get("data"),
        "param": param,
        "limit": get("limit", 10),
        "expr": get("expr") or get("filter") or "",
        "expr_params": get("expr_params"),
    }
