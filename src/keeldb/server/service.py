"""``MilvusService`` over keeldb: each RPC becomes one call on the embedded ``Client``.

No storage logic lives here, and only ``Client``'s public methods are used: the same
client serves a single directory and a cluster node. The data reads (``READS``) each run on
one ``Client.for_read()``, so a cluster node answers them from a replica caught up once per
call. Every handler runs inside ``_rpc``, which turns any exception
into a ``common.Status`` in the response: an exception escaping a gRPC servicer becomes
status UNKNOWN, which pymilvus retries for minutes (docs/research/pymilvus-wire.md §3).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import threading
import uuid
from collections import OrderedDict
from typing import Any, TypeVar

import grpc
import numpy as np
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc, schema_pb2

from keeldb import __version__
from keeldb.client import SEARCH_UNSUPPORTED, Client, LoadState, check_hints, refuse_unsupported
from keeldb.engine import namespace
from keeldb.engine.executor import larger_is_better
from keeldb.engine.query import COUNT, resolve_output
from keeldb.engine.rankers import RankerError, ranker_from_functions, ranker_from_legacy
from keeldb.engine.search import MAX_TOPK
from keeldb.errors import CollectionNotFound, IndexNotFound, InvalidArgument
from keeldb.schema import IndexParams, check_name
from keeldb.server import access, convert, unimplemented, vectors
from keeldb.server.access_rpc import AccessRPCs
from keeldb.server.deployment_rpc import DeploymentRPCs, Members, standalone
from keeldb.server.namespace_rpc import NamespaceRPCs
from keeldb.server.rpc import rpc as _rpc

log = logging.getLogger(__name__)
R = TypeVar("R")
SERVER_VERSION = f"v2.5.0-keeldb-{__version__}"
_LOAD_STATE = {
    LoadState.NotExist: common_pb2.LoadState.LoadStateNotExist,
    LoadState.NotLoad: common_pb2.LoadState.LoadStateNotLoad,
    LoadState.Loading: common_pb2.LoadState.LoadStateLoading,
    LoadState.Loaded: common_pb2.LoadState.LoadStateLoaded,
}
# The RPCs that read a collection's data. Each handler reads through one
# ``Client.for_read()``; cluster routing answers them on a node with the read role.
READS = frozenset(
    {"Search", "HybridSearch", "Query", "GetCollectionStatistics", "GetPartitionStatistics"}
)


class SchemaMismatch(InvalidArgument):
    """Milvus's ErrCollectionSchemaMismatch (code 109, legacy SchemaMismatch 62): pymilvus
    answers it by dropping its cached schema and retrying once (wire notes §9)."""

    code = 109


class _IteratorCursors:
    """Search-iterator V2 cursors, for ties.

    pymilvus's V2 iterator sends back only ``last_bound``, the score of the last hit it got,
    and the engine then returns hits strictly worse than that. Rows *tied* at exactly that
    score but not yet returned (duplicate vectors, zero vectors) would never be returned.
    So per iterator token we remember which hits we already returned near the bound; the
    next page asks for hits from just before the bound and drops those. A token that is
    unknown (evicted, server restarted) falls back to the strict cursor."""

    CAPACITY = 1024

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_token: OrderedDict[str, tuple[float, dict[Any, float]]] = OrderedDict()

    @staticmethod
    def tolerance(bound: float) -> float:
        # Pages can be computed over different segment/block layouts (a flush between
        # pages), which can move a float32 distance by a few ULPs.
        return 1e-5 * max(1.0, abs(bound))

    def get(self, token: str, bound: float) -> dict[Any, float] | None:
        with self._lock:
            state = self._by_token.get(token)
            if state is None or np.float32(state[0]) != np.float32(bound):
                return None
            self._by_token.move_to_end(token)
            return state[1]

    def put(self, token: str, bound: float, near: dict[Any, float]) -> None:
        with self._lock:
            self._by_token[token] = (bound, near)
            self._by_token.move_to_end(token)
            while len(self._by_token) > self.CAPACITY:
                self._by_token.popitem(last=False)


def _parsed(message: Any, data: bytes, what: str) -> Any:
    """A serialized protobuf field of a request (a schema), or InvalidArgument."""
    out = message()
    try:
        out.ParseFromString(data)
    except Exception:  # noqa: BLE001 - protobuf raises its own DecodeError
        raise InvalidArgument(f"malformed {what}") from None
    return out


def _param_bool(value: str | None) -> bool:
    return (value or "").strip().lower() == "true"


@unimplemented.install  # every other RPC answers Milvus's "service unimplemented" status
class Service(AccessRPCs, NamespaceRPCs, DeploymentRPCs, milvus_pb2_grpc.MilvusServiceServicer):
    def __init__(self, client: Client, members: Members | None = None) -> None:
        """``members``: the nodes serving reads, for GetReplicas and the resource group
        (this server alone by default; the build sets its address once bound)."""
        self.client = client
        self.members = members or standalone("127.0.0.1:19530")
        self._ids = itertools.count(1)
        self._cursors = _IteratorCursors()

    # -- plumbing ---------------------------------------------------------------------

    # -- connection -------------------------------------------------------------------

    @_rpc(milvus_pb2.ConnectResponse)
    def Connect(self, request: Any, context: grpc.ServicerContext) -> Any:
        info = common_pb2.ServerInfo(
            build_tags=SERVER_VERSION, deploy_mode="STANDALONE", build_time="", git_commit=""
        )
        return milvus_pb2.ConnectResponse(status=convert.status(), server_info=info, identifier=next(self._ids))

    @_rpc(milvus_pb2.GetVersionResponse)
    def GetVersion(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.GetVersionResponse(status=convert.status(), version=SERVER_VERSION)

    @_rpc(milvus_pb2.CheckHealthResponse)
    def CheckHealth(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.CheckHealthResponse(status=convert.status(), isHealthy=True)

    @_rpc(milvus_pb2.AllocTimestampResponse)
    def AllocTimestamp(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.AllocTimestampResponse(status=convert.status(), timestamp=self.client.alloc_timestamp())

    # -- collections ------------------------------------------------------------------

    @_rpc(common_pb2.Status)
    def CreateCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        ps = _parsed(schema_pb2.CollectionSchema, request.schema, "collection schema")
        schema = convert.schema_from_proto(ps)
        self.client.create_collection(
            request.collection_name, schema=schema, properties=convert.kv(request.properties),
            consistency_level=int(request.consistency_level), num_partitions=int(request.num_partitions),
        )  # fmt: skip
        return convert.status()

    @_rpc(common_pb2.Status)
    def DropCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.drop_collection(request.collection_name)
        return convert.status()

    @_rpc(milvus_pb2.BoolResponse)
    def HasCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.BoolResponse(status=convert.status(), value=self.client.has_collection(request.collection_name))

    @_rpc(milvus_pb2.DescribeCollectionResponse)
    def DescribeCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.collection_name
        check_name("collection", name)  # Milvus validates first (pymilvus's has_collection asks here too)
        entry = self.client.collection_entry(name)
        created = entry.created_ts
        resp = milvus_pb2.DescribeCollectionResponse(
            status=convert.status(),
            schema=convert.schema_to_proto(name, entry.schema, entry.timezone),
            collectionID=entry.id,
            collection_name=namespace.split(self.client.catalog_key(name))[1],  # an alias's collection
            shards_num=1,
            consistency_level=entry.consistency_level,
            num_partitions=len(self.client.list_partitions(name)),
            created_timestamp=created,
            update_timestamp=created,
            db_name=self.client.db.db_name,
            aliases=self.client.aliases_of(name),
        )
        for key, value in entry.properties.items():
            resp.properties.add(key=key, value=str(value))
        return resp

    @_rpc(common_pb2.Status)
    def AddCollectionField(self, request: Any, context: grpc.ServicerContext) -> Any:
        pf = _parsed(schema_pb2.FieldSchema, request.schema, "field schema")
        args = convert.field_args_from_proto(pf)
        desc = args.pop("description", "")
        self.client.add_collection_field(request.collection_name, pf.name, int(pf.data_type), desc, **args)
        return convert.status()

    @_rpc(milvus_pb2.RunAnalyzerResponse)
    def RunAnalyzer(self, request: Any, context: grpc.ServicerContext) -> Any:
        """pymilvus's run_analyzer: texts as UTF-8 bytes in ``placeholder``; tokens with
        offsets/positions when ``with_detail``, Milvus's token hash when ``with_hash``."""
        try:
            texts = [bytes(b).decode("utf-8") for b in request.placeholder]
        except UnicodeDecodeError:
            raise InvalidArgument("run_analyzer: texts must be UTF-8") from None
        found = self.client.analyze(
            texts, request.analyzer_params or None, request.collection_name or None,
            request.field_name or None, list(request.analyzer_names) or None,
        )  # fmt: skip
        return convert.analyzer_results(found, request.with_hash, request.with_detail)

    @_rpc(common_pb2.Status)
    def AlterCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        """alter_collection_properties and drop_collection_properties (both at once: refused)."""
        name = request.collection_name
        props, keys = convert.kv(request.properties), list(request.delete_keys)
        if props and keys:
            raise InvalidArgument("can not provide properties and deletekeys at the same time")
        if keys:
            self.client.drop_collection_properties(name, keys)
        else:
            self.client.alter_collection_properties(name, props)
        return convert.status()

    @_rpc(common_pb2.Status)
    def AlterCollectionField(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.delete_keys:
            raise InvalidArgument(f"{request.delete_keys[0]} is not allowed to drop in collection field param")
        self.client.alter_collection_field(request.collection_name, request.field_name, convert.kv(request.properties))
        return convert.status()

    @_rpc(milvus_pb2.ShowCollectionsResponse)
    def ShowCollections(self, request: Any, context: grpc.ServicerContext) -> Any:
        names = self.client.list_collections()
        names = access.visible_collections(self.client, names, namespace.current_database.get())
        if request.collection_names:
            names = [n for n in names if n in set(request.collection_names)]
        return milvus_pb2.ShowCollectionsResponse(status=convert.status(), collection_names=names)

    @_rpc(common_pb2.Status)
    def RenameCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.rename_collection(request.oldName, request.newName, request.newDBName)
        return convert.status()

    @_rpc(milvus_pb2.GetCollectionStatisticsResponse)
    def GetCollectionStatistics(self, request: Any, context: grpc.ServicerContext) -> Any:
        n = self.client.for_read().get_collection_stats(request.collection_name)["row_count"]
        resp = milvus_pb2.GetCollectionStatisticsResponse(status=convert.status())
        resp.stats.add(key="row_count", value=str(n))
        return resp

    # -- partitions -------------------------------------------------------------------

    @_rpc(common_pb2.Status)
    def CreatePartition(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.create_partition(request.collection_name, request.partition_name)
        return convert.status()

    @_rpc(common_pb2.Status)
    def DropPartition(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.drop_partition(request.collection_name, request.partition_name)
        return convert.status()

    @_rpc(milvus_pb2.BoolResponse)
    def HasPartition(self, request: Any, context: grpc.ServicerContext) -> Any:
        value = self.client.has_partition(request.collection_name, request.partition_name)
        return milvus_pb2.BoolResponse(status=convert.status(), value=value)

    @_rpc(milvus_pb2.ShowPartitionsResponse)
    def ShowPartitions(self, request: Any, context: grpc.ServicerContext) -> Any:
        parts = self.client.partition_ids(request.collection_name)
        return milvus_pb2.ShowPartitionsResponse(
            status=convert.status(), partition_names=list(parts), partitionIDs=list(parts.values())
        )

    @_rpc(milvus_pb2.GetPartitionStatisticsResponse)
    def GetPartitionStatistics(self, request: Any, context: grpc.ServicerContext) -> Any:
        n = self.client.for_read().get_partition_stats(request.collection_name, request.partition_name)["row_count"]
        resp = milvus_pb2.GetPartitionStatisticsResponse(status=convert.status())
        resp.stats.add(key="row_count", value=str(n))
        return resp

    @_rpc(common_pb2.Status)
    def LoadPartitions(self, request: Any, context: grpc.ServicerContext) -> Any:
        # pymilvus polls GetLoadingProgress until 100, which waits for the index builds.
        self.client.load_partitions(request.collection_name, list(request.partition_names), _async=True)
        return convert.status()

    @_rpc(common_pb2.Status)
    def ReleasePartitions(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.release_partitions(request.collection_name, list(request.partition_names))
        return convert.status()

    # -- indexes (§7) -----------------------------------------------------------------

    @_rpc(common_pb2.Status)
    def CreateIndex(self, request: Any, context: grpc.ServicerContext) -> Any:
        params = convert.kv(request.extra_params)
        nested = params.pop("params", None)
        extra = {k: convert.parse_param(v) for k, v in params.items() if k not in ("index_type", "metric_type")}
        if nested:
            parsed = convert.parse_param(nested)
            if isinstance(parsed, dict):
                extra.update(parsed)
        ip = IndexParams()
        ip.add_index(
            request.field_name,
            index_type=params.get("index_type", ""),
            index_name=request.index_name,
            metric_type=params.get("metric_type", ""),
            params=extra,
        )
        # pymilvus polls DescribeIndex until the state is Finished: build in the background.
        self.client.create_index(request.collection_name, ip, sync=False)
        return convert.status()

    @_rpc(milvus_pb2.DescribeIndexResponse)
    def DescribeIndex(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.collection_name
        names = self.client.list_indexes(name, field_name=request.field_name)
        if request.index_name:
            names = [n for n in names if n == request.index_name]
        if not names:
            raise IndexNotFound(f"index not found[collection={name}]")
        resp = milvus_pb2.DescribeIndexResponse(status=convert.status())
        for n in names:
            d = self.client.describe_index(name, n)
            desc = resp.index_descriptions.add(
                index_name=d["index_name"],
                field_name=d["field_name"],
                indexed_rows=d["indexed_rows"],
                total_rows=d["total_rows"],
                pending_index_rows=d["pending_index_rows"],
                # InProgress while a segment waits for its index: pymilvus's create_index
                # then waits for the build, as it does against Milvus.
                state=common_pb2.IndexState.Value(d["state"]),
            )
            for key in ("index_type", "metric_type"):
                desc.params.add(key=key, value=str(d[key]))
            for key, value in d.items():
                if key not in ("index_type", "metric_type", "index_name", "field_name", "indexed_rows",
                               "total_rows", "pending_index_rows", "state"):
                    desc.params.add(key=key, value=value if isinstance(value, str) else str(value))
        return resp

    @_rpc(common_pb2.Status)
    def AlterIndex(self, request: Any, context: grpc.ServicerContext) -> Any:
        """alter_index_properties (``extra_params``) and drop_index_properties
        (``delete_keys``); both at once is refused, as Milvus's proxy does."""
        props, keys = convert.kv(request.extra_params), list(request.delete_keys)
        if props and keys:
            raise InvalidArgument("cannot provide both DeleteKeys and ExtraParams")
        if keys:
            self.client.drop_index_properties(request.collection_name, request.index_name, keys)
        else:
            self.client.alter_index_properties(request.collection_name, request.index_name, props)
        return convert.status()

    @_rpc(common_pb2.Status)
    def DropIndex(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.collection_name
        index = request.index_name
        if not index:
            matches = self.client.list_indexes(name, field_name=request.field_name)
            if len(matches) != 1:
                raise IndexNotFound(f"index not found[collection={name}]")
            index = matches[0]
        self.client.drop_index(name, index)
        return convert.status()

    # -- load state (§8) --------------------------------------------------------------

    @_rpc(common_pb2.Status)
    def LoadCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        # pymilvus polls GetLoadingProgress until 100, which waits for the index builds.
        self.client.load_collection(request.collection_name, _async=True)
        return convert.status()

    @_rpc(common_pb2.Status)
    def ReleaseCollection(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.release_collection(request.collection_name)
        return convert.status()

    @_rpc(milvus_pb2.GetLoadingProgressResponse)
    def GetLoadingProgress(self, request: Any, context: grpc.ServicerContext) -> Any:
        """100 once searches use every index (the builds after a load or create_index).
        An unloaded collection answers an error rather than 0, so a client polling for
        progress can never wait forever."""
        name = request.collection_name
        state = self.client.get_load_state(name)["state"]
        if state == LoadState.NotExist:
            raise CollectionNotFound(f"collection not found[collection={name}]")
        for p in request.partition_names:
            if self.client.get_load_state(name, partition_name=p)["state"] != LoadState.Loaded:
                raise InvalidArgument(f"partition '{p}' of collection '{name}' is not being loaded")
        if state != LoadState.Loaded:
            raise InvalidArgument(f"collection '{name}' is not being loaded")
        progress = self.client.loading_progress(name)
        return milvus_pb2.GetLoadingProgressResponse(status=convert.status(), progress=progress, refresh_progress=progress)

    @_rpc(milvus_pb2.GetLoadStateResponse)
    def GetLoadState(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.collection_name
        states = [self.client.get_load_state(name, partition_name=p)["state"] for p in request.partition_names]
        state = self.client.get_load_state(name)["state"]
        if state != LoadState.NotExist and states:
            state = LoadState.Loaded if all(s == LoadState.Loaded for s in states) else LoadState.NotLoad
        return milvus_pb2.GetLoadStateResponse(status=convert.status(), state=_LOAD_STATE[state])

    # -- writes (§9) ------------------------------------------------------------------

    def _write(self, request: Any, upsert: bool) -> Any:
        name = request.collection_name
        schema = self.client.collection_schema(name)
        # pymilvus builds rows from its cached schema and sends that schema's
        # update_timestamp. If the collection was dropped and re-created (by another
        # process) the rows may be shaped for the old schema: a value for a now-declared
        # field would land in $meta and the column would silently be NULL. Milvus's proxy
        # answers SchemaMismatch here, and pymilvus refreshes its cache and retries.
        created = self.client.collection_entry(name).created_ts
        if request.schema_timestamp and request.schema_timestamp != created:
            raise SchemaMismatch(f"collection schema mismatch[collection={name}]")
        cols, meta = convert.columns_from_proto(schema, request.fields_data, request.num_rows)
        partial = bool(getattr(request, "partial_update", False))
        if upsert and len(getattr(request, "field_ops", ())):
            if any(op.op != 0 for op in request.field_ops):  # 0 = REPLACE, what partial_update does
                raise InvalidArgument(
                    "field_ops ARRAY_APPEND / ARRAY_REMOVE are not supported by keeldb; "
                    "send the whole new array with partial_update=True"
                )
            partial = True
        if partial:
            # A field the request carries is given for every row: a row it marks invalid
            # sets null (Milvus), it does not keep the old value as a field left out does.
            cols = {k: [None if v is convert.MISSING else v for v in c] if isinstance(c, list) else c
                    for k, c in cols.items()}  # fmt: skip
        res = self.client.insert_columns(
            name, cols, request.num_rows, dynamic=meta, partition_name=request.partition_name, upsert=upsert,
            partial_update=partial,
        )  # fmt: skip
        out = milvus_pb2.MutationResult(
            status=convert.status(),
            IDs=convert.ids_to_proto(schema, res["ids"]),
            succ_index=list(range(request.num_rows)),
            timestamp=res["timestamp"],
        )
        if upsert:
            out.upsert_cnt = request.num_rows
        else:
            out.insert_cnt = request.num_rows
        return out

    @_rpc(milvus_pb2.MutationResult)
    def Insert(self, request: Any, context: grpc.ServicerContext) -> Any:
        return self._write(request, upsert=False)

    @_rpc(milvus_pb2.MutationResult)
    def Upsert(self, request: Any, context: grpc.ServicerContext) -> Any:
        """A full upsert, or with ``partial_update`` a merge of the given fields."""
        return self._write(request, upsert=True)

    @_rpc(milvus_pb2.MutationResult)
    def Delete(self, request: Any, context: grpc.ServicerContext) -> Any:
        """pymilvus turns ``delete(ids=...)`` into ``pk in [...]`` (§9); it is a filter here.
        The reply carries no IDs, or pymilvus would return them instead of the count."""
        n, ts = self.client.delete_with_timestamp(
            request.collection_name, filter=request.expr, partition_name=request.partition_name,
            filter_params=convert.template_values(request.expr_template_values),
        )  # fmt: skip
        return milvus_pb2.MutationResult(status=convert.status(), delete_cnt=n, timestamp=ts)

    @_rpc(milvus_pb2.FlushResponse)
    def Flush(self, request: Any, context: grpc.ServicerContext) -> Any:
        resp = milvus_pb2.FlushResponse(status=convert.status(), db_name=self.client.db.db_name)
        for name in request.collection_names:
            resp.coll_flush_ts[name] = self.client.flush(name)
            # No segment ids: GetFlushState answers from the flush timestamp alone.
            resp.coll_segIDs[name].SetInParent()
        return resp

    @_rpc(milvus_pb2.ManualCompactionResponse)
    def ManualCompaction(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.collection_name or next(
            (n for n in self.client.list_collections() if self.client.collection_entry(n).id == request.collectionID), ""
        )
        job = self.client.compact(name)
        plans = self.client.compaction_plans(job)
        return milvus_pb2.ManualCompactionResponse(status=convert.status(), compactionID=job, compactionPlanCount=plans)

    @_rpc(milvus_pb2.GetCompactionStateResponse)
    def GetCompactionState(self, request: Any, context: grpc.ServicerContext) -> Any:
        """A job runs to completion inside ManualCompaction, so a job this server ran is
        Completed; an id it did not hand out is refused (Client.get_compaction_state)."""
        plans = self.client.compaction_plans(request.compactionID)
        return milvus_pb2.GetCompactionStateResponse(
            status=convert.status(), state=common_pb2.CompactionState.Completed, completedPlanNo=plans
        )

    @_rpc(milvus_pb2.GetFlushStateResponse)
    def GetFlushState(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Flushed when every write of the collection at or below ``flush_ts`` is in
        committed segment files (the Flush reply's timestamp is exactly such a point)."""
        names = [request.collection_name] if request.collection_name else self.client.list_collections()
        flushed = all(self.client.flushed(n, request.flush_ts) for n in names)
        return milvus_pb2.GetFlushStateResponse(status=convert.status(), flushed=flushed)

    @_rpc(milvus_pb2.GetFlushAllStateResponse)
    def GetFlushAllState(self, request: Any, context: grpc.ServicerContext) -> Any:
        flushed = all(self.client.flushed(n, request.flush_all_ts) for n in self.client.list_collections())
        return milvus_pb2.GetFlushAllStateResponse(status=convert.status(), flushed=flushed)

    @_rpc(milvus_pb2.FlushAllResponse)
    def FlushAll(self, request: Any, context: grpc.ServicerContext) -> Any:
        # Each collection is flushed up to its own flush timestamp; all of them up to the
        # smallest, which is what GetFlushAllState will be asked about.
        stamps = [self.client.flush(name) for name in self.client.list_collections()]
        ts = min(stamps) if stamps else self.client.last_timestamp()
        return milvus_pb2.FlushAllResponse(status=convert.status(), flush_all_ts=ts)

    # -- reads (§10-§13) --------------------------------------------------------------

    @staticmethod
    def _snapshot(client: Client, name: str, request: Any, iterator: bool) -> Any:
        """Consistency levels through the guarantee timestamp pymilvus computes (§10):
        0 (Strong) = every write logged so far becomes visible first; a write's timestamp
        (Session, and pymilvus's default) = that write and all before it are visible — an
        acknowledged write always is; 1 or 2 (Eventually, Bounded) = the newest visible
        state, no waiting. Iterators pin the snapshot their first page reported as
        ``session_ts`` and read every later page at it (MVCC), so pages never see a moving
        collection."""
        g = int(request.guarantee_timestamp)
        if iterator and g > 2:
            return client.snapshot(name, guarantee_ts=g, snapshot_ts=g)
        return client.snapshot(name, guarantee_ts=g)

    def _session_ts(self, snap: Any) -> int:
        """The snapshot timestamp iterators pin their pages to. A never-written collection's
        snapshot is at 0, which pymilvus takes for "no snapshot": it warns and pins the
        client's own clock instead, which need not agree with ours. Any current timestamp
        reads the same empty state, so answer the oracle's."""
        return int(snap.ts) or self.client.last_timestamp()

    @_rpc(milvus_pb2.QueryResults)
    def Query(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.collection_name
        templates = convert.template_values(request.expr_template_values)
        params = convert.kv(request.query_params)
        tz = params.get("timezone") or None
        refuse_unsupported(params)
        iterator = _param_bool(params.get("iterator"))
        order = (params.get("order_by_fields") or "").strip()
        if order and iterator:
            raise InvalidArgument("ORDER BY with iterator is not supported")
        client = self.client.for_read()
        schema = client.collection_schema(name)
        client.check_loaded(name)  # the same not-loaded error as embedded
        snap = self._snapshot(client, name, request, iterator)
        requested = list(request.output_fields)
        resp = milvus_pb2.QueryResults(status=convert.status(), collection_name=name, session_ts=self._session_ts(snap))
        resp.primary_field_name = schema.primary.name
        if [n.strip() for n in requested] == [COUNT] and not order:
            rows = client.query(name, filter=request.expr, output_fields=[COUNT], filter_params=templates,
                                partition_names=list(request.partition_names), snapshot=snap, timezone=tz,
                                ignore_growing=params.get("ignore_growing"))
            resp.fields_data.append(convert.count_to_proto(rows[0][COUNT]))
            resp.output_fields.append(COUNT)
            _report_cost(resp.status, rows)
            return resp
        limit = _int_param(params, "limit", 0) or None
        offset = _int_param(params, "offset", 0)
        rows = client.query(
            name, filter=request.expr, output_fields=requested, partition_names=list(request.partition_names),
            limit=limit, offset=offset, snapshot=snap, filter_params=templates, timezone=tz,
            order_by_fields=order, ignore_growing=params.get("ignore_growing"),
        )  # fmt: skip
        out = resolve_output(schema, requested)
        fields, names = convert.fields_to_proto(schema, out, rows, pk_first=True)
        resp.fields_data.extend(fields)
        resp.output_fields.extend(names)
        _report_cost(resp.status, rows)
        return resp

    @_rpc(milvus_pb2.SearchResults)
    def Search(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.collection_name
        templates = convert.template_values(request.expr_template_values)
        if request.sub_reqs:
            raise InvalidArgument("sub_reqs in a SearchRequest are not supported; use HybridSearch")
        _refuse_chains(request)
        client = self.client.for_read()
        schema = client.collection_schema(name)
        sp = convert.kv(request.search_params)
        refuse_unsupported(sp, SEARCH_UNSUPPORTED)
        check_hints(sp.get("hints"))
        params = convert.parse_param(sp.get("params", "{}")) or {}
        if not isinstance(params, dict):
            raise InvalidArgument("search params must be a JSON object")
        field = _anns(schema, sp.get("anns_field") or "")
        by_ids = request.WhichOneof("search_input") == "ids"
        queries = None if by_ids else _queries(schema, field, request.placeholder_group)
        ids = _ids(request.ids) if by_ids else None
        ranker = _function_score(request.function_score) if request.HasField("function_score") else None
        extra = _grouping_params(sp)
        extra["round_decimal"] = _int_param(sp, "round_decimal", -1)
        iterator = _param_bool(sp.get("iterator"))
        # Milvus's parseSearchInfo refuses these with an iterator (V1 and V2 alike).
        if iterator and "group_by_field" in extra:
            raise InvalidArgument("Not allowed to do groupBy when doing iteration")
        order = (sp.get("order_by_fields") or "").strip()
        if iterator and order:
            raise InvalidArgument("order_by is not supported when using search iterator")
        if order:
            extra["order_by_fields"] = order
        client.check_loaded(name)
        snap = self._snapshot(client, name, request, iterator)
        try:
            limit = int(sp.get("topk", "10"))
            offset = int(sp.get("offset") or 0)
        except ValueError:
            raise InvalidArgument("topk and offset must be integers") from None
        metric = sp.get("metric_type") or params.get("metric_type")
        search_params: dict[str, Any] = {"params": params}
        if metric:
            search_params["metric_type"] = metric
        after = None
        v2 = iterator and _param_bool(sp.get("search_iter_v2"))
        if _param_bool(sp.get("search_iter_v2")) and not iterator:
            raise InvalidArgument("parse iterator v2 info failed: both iterator and search_iter_v2 must be set in the SDK")
        if v2 and offset > 0:
            raise InvalidArgument(
                "parse iterator v2 info failed: Setting an offset is not permitted when using a search iterator v2"
            )
        if v2 and sp.get("search_iter_last_bound"):
            try:
                after = float(sp["search_iter_last_bound"])
            except ValueError:
                raise InvalidArgument("search_iter_last_bound must be a number") from None
        token = (sp.get("search_iter_id") or uuid.uuid4().hex) if v2 else ""
        seen: dict[Any, float] | None = None  # hits already returned near the bound (ties)
        # Larger scores rank first for IP and COSINE; L2 is ascending.
        asked = str(metric) if metric else None
        larger_better = iterator and larger_is_better(client.collection_entry(name).search_metric(field.name, asked))
        query_limit = limit
        if v2 and after is not None and len(queries) == 1:
            seen = self._cursors.get(token, after)
            if seen is not None:
                eps = _IteratorCursors.tolerance(after)
                after = after + eps if larger_better else after - eps
                # A bound tied by more than MAX_TOPK rows still loses rows: a known limit.
                query_limit = min(MAX_TOPK, limit + len(seen))
        # Every page of an iterator is searched exactly, the first too: V2's cursor and V1's
        # rings (range searches below the last score) only move on, so a row an ANN index
        # missed on a page (better than its last hit) would never be returned by a later one.
        # A cursor at the best possible score makes the engine search exactly.
        cursor = after
        if iterator and cursor is None:
            cursor = math.inf if larger_better else -math.inf
        requested = list(request.output_fields)
        out = resolve_output(schema, requested)
        hits = client.search(
            name, queries, filter=request.dsl, limit=query_limit, output_fields=requested,
            search_params=search_params, partition_names=list(request.partition_names),
            anns_field=field.name, offset=offset, snapshot=snap, after_distance=cursor,
            filter_params=templates, timezone=sp.get("timezone") or None, ids=ids, ranker=ranker,
            ignore_growing=sp.get("ignore_growing"), **extra,
        )
        if seen is not None:
            hits[0] = [h for h in hits[0] if h["id"] not in seen][:limit]
        flat = [h for per_query in hits for h in per_query]
        data = _result_data(schema, out, hits, limit)
        if v2:
            data.search_iterator_v2_results.token = token
            v2res = data.search_iterator_v2_results
            bound: float | None = None
            if flat:
                v2res.last_bound = flat[-1]["distance"]
                bound = v2res.last_bound  # float32, as the client will see and send it back
            elif after is not None:
                bound = v2res.last_bound = float(sp["search_iter_last_bound"])
            if len(hits) == 1 and bound is not None:
                eps = _IteratorCursors.tolerance(bound)
                near = {
                    k: d for k, d in itertools.chain((seen or {}).items(), ((h["id"], h["distance"]) for h in flat))
                    if (d <= bound + eps if larger_better else d >= bound - eps)
                }
                self._cursors.put(token, bound, near)
        return _search_results(name, data, hits, self._session_ts(snap))

    @_rpc(milvus_pb2.SearchResults)
    def HybridSearch(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Several searches fused by a ranker (``rank_params``: ``RRFRanker`` /
        ``WeightedRanker`` as ``strategy`` + ``params``, with ``limit``, ``offset``,
        ``round_decimal`` and the grouping keys; or a ``function_score`` reranker), every
        search on the one snapshot of the request's consistency level."""
        name = request.collection_name
        client = self.client.for_read()
        schema = client.collection_schema(name)
        rp = convert.kv(request.rank_params)
        if request.HasField("function_score") and request.function_score.functions:
            ranker: Any = _function_score(request.function_score, hybrid=True)
        elif rp.get("strategy"):
            ranker = ranker_from_legacy(_json_or_text(rp["strategy"]), rp.get("params") or "{}")
        else:
            ranker = None  # Milvus's default: RRF, k = 60
        reqs = []
        for i, sub in enumerate(request.requests):
            if sub.WhichOneof("search_input") == "ids":
                raise InvalidArgument(
                    f"search request {i}: search by primary key is not supported in a hybrid search"
                )
            _refuse_chains(sub)
            sp = convert.kv(sub.search_params)
            refuse_unsupported(sp, SEARCH_UNSUPPORTED)
            if (sp.get("order_by_fields") or "").strip():
                raise InvalidArgument(
                    f"search request {i}: order_by_fields applies to the hybrid search (its rank params), "
                    "not to one of its requests"
                )
            # pymilvus copies the hybrid search's grouping keys into every request; grouping
            # is the hybrid search's (each request is then searched grouped, as Milvus does).
            if (sp.get("group_by_field") or "").strip() not in ("", (rp.get("group_by_field") or "").strip()):
                raise InvalidArgument(f"search request {i}: group_by_field differs from the hybrid search's")
            params = convert.parse_param(sp.get("params", "{}")) or {}
            if not isinstance(params, dict):
                raise InvalidArgument(f"search request {i}: search params must be a JSON object")
            field = _anns(schema, sp.get("anns_field") or "")
            param: dict[str, Any] = {"params": params}
            metric = sp.get("metric_type") or params.get("metric_type")
            if metric:
                param["metric_type"] = metric
            reqs.append({
                "anns_field": field.name, "data": _queries(schema, field, sub.placeholder_group),
                "param": param, "limit": _int_param(sp, "topk", 10), "expr": sub.dsl,
                "expr_params": convert.template_values(sub.expr_template_values),
            })  # fmt: skip
        client.check_loaded(name)
        snap = self._snapshot(client, name, request, False)
        limit = _int_param(rp, "limit", 10)
        requested = list(request.output_fields)
        out = resolve_output(schema, requested)
        hits = client.hybrid_search(
            name, reqs, ranker, limit=limit, output_fields=requested,
            partition_names=list(request.partition_names), snapshot=snap,
            offset=_int_param(rp, "offset", 0), round_decimal=_int_param(rp, "round_decimal", -1),
            rank_group_scorer=rp.get("rank_group_scorer") or None, **_grouping_params(rp),
            order_by_fields=(rp.get("order_by_fields") or "").strip(),
        )  # fmt: skip
        return _search_results(name, _result_data(schema, out, hits, limit), hits, self._session_ts(snap))


def _report_cost(status: Any, result: Any) -> None:
    """The read's cost in the status's ``extra_info["report_value"]``, where Milvus puts
    it (``SetReportValue``: only when positive); pymilvus reads it as ``extra["cost"]``."""
    cost = int(getattr(result, "extra", {}).get("cost", 0))
    if cost > 0:
        status.extra_info["report_value"] = str(cost)


def _search_results(name: str, data: Any, hits: Any, session_ts: int) -> Any:
    """A SearchResults with what Milvus adds to the hits: the cost in the status, the
    entities searched in ``all_search_count``, and the recalls when they were asked for."""
    status = convert.status()
    _report_cost(status, hits)
    data.all_search_count = int(getattr(hits, "extra", {}).get("cost", 0))
    if getattr(hits, "recalls", None) is not None:
        data.recalls.extend(hits.recalls)
    return milvus_pb2.SearchResults(status=status, results=data, collection_name=name, session_ts=session_ts)


def _result_data(schema: Any, out: Any, hits: list[list[dict[str, Any]]], limit: int) -> Any:
    """Search hits as the SearchResultData pymilvus parses."""
    flat = [h for per_query in hits for h in per_query]
    data = schema_pb2.SearchResultData(
        num_queries=len(hits), top_k=limit, primary_field_name=schema.primary.name
    )
    data.topks.extend(len(per_query) for per_query in hits)
    data.ids.CopyFrom(convert.ids_to_proto(schema, [h["id"] for h in flat]))
    data.scores.extend(h["distance"] for h in flat)
    data.distances.extend(h["distance"] for h in flat)
    entities = [dict(h["entity"]) for h in flat]
    fields, names = convert.fields_to_proto(schema, out, entities, pk_first=False)
    data.fields_data.extend(fields)
    data.output_fields.extend(names)
    return data


def _unknown_anns(anns: str) -> str:
    """Milvus's words for an anns_field the schema does not have."""
    return f"failed to create query plan: failed to get field schema by name: fieldName({anns}) not found: invalid parameter"


def _anns(schema: Any, anns: str) -> Any:
    vfields = schema.vector_fields
    field = schema.field(anns) if anns else (vfields[0] if len(vfields) == 1 else None)
    if field is None or not field.kind.is_vector:
        raise InvalidArgument(
            "pass anns_field: the collection has several vector fields" if not anns
            else _unknown_anns(anns) if schema.field(anns) is None else f"anns_field {anns!r} is not a vector field"
        )  # fmt: skip
    return field


def _queries(schema: Any, field: Any, placeholder_group: bytes) -> Any:
    """A search's queries: texts for a BM25 function's output field, vectors otherwise."""
    if schema.bm25_input(field.name) is not None:
        return vectors.search_texts(placeholder_group)
    return vectors.search_queries(placeholder_group, field)


def _ids(ids: Any) -> list[Any]:
    """A search's ``ids`` (search by primary key)."""
    which = ids.WhichOneof("id_field")
    if which == "int_id":
        return list(ids.int_id.data)
    if which == "str_id":
        return list(ids.str_id.data)
    raise InvalidArgument("search by primary key: no ids")


def _json_or_text(value: str) -> Any:
    """A ``rank_params`` value: pymilvus sends dicts as JSON and everything else as str()."""
    try:
        return json.loads(value)
    except ValueError:
        return value


def _int_param(params: dict[str, str], key: str, default: int) -> int:
    value = params.get(key)
    if value in (None, ""):
        return default
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"{key} must be an integer, got {value!r}") from None


def _grouping_params(params: dict[str, str]) -> dict[str, Any]:
    """``group_by_field`` / ``group_size`` / ``strict_group_size`` of a request's params."""
    out: dict[str, Any] = {}
    field = (params.get("group_by_field") or "").strip()
    if field:
        out["group_by_field"] = field
        out["group_size"] = _int_param(params, "group_size", 1)
        out["strict_group_size"] = _param_bool(params.get("strict_group_size"))
    return out


def _function_score(fs: Any, *, hybrid: bool = False) -> Any:
    """A ``FunctionScore`` (``ranker=Function(...)`` or ``FunctionScore(...)``) as an engine
    ranker: RERANK functions, their params and the score's params arrive as text."""
    parts = []
    for f in fs.functions:
        if f.type != schema_pb2.FunctionType.Rerank:
            raise RankerError(f"{schema_pb2.FunctionType.Name(f.type)} is not rerank function.")
        if [n for n in f.output_field_names if n]:
            raise RankerError(
                f"Rerank function should not have output field, but now is {len(f.output_field_names)}"
            )
        parts.append((convert.kv(f.params), list(f.input_field_names)))
    return ranker_from_functions(parts, convert.kv(fs.params), hybrid=hybrid)


def _refuse_chains(request: Any) -> None:
    """pymilvus 3's function chains, search aggregations and highlighters: not run by keeldb,
    so refused (a highlighter accepted and ignored would return results without what it asked)."""
    fields = request.DESCRIPTOR.fields_by_name
    if "function_chains" in fields and len(request.function_chains):
        raise InvalidArgument("function_chains are not supported by keeldb")
    if "search_aggregation" in fields and request.HasField("search_aggregation"):
        raise InvalidArgument("search_aggregation is not supported by keeldb")
    if "highlighter" in fields and request.HasField("highlighter"):
        raise InvalidArgument("search highlighters are not supported by keeldb")
