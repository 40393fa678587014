"""Milvus's RESTful API v2 (``POST /v2/vectordb/<category>/<action>``) over keeldb.

Each endpoint does what Milvus's own REST handler (``httpserver/handler_v2.go``) does:
read the JSON body, build the MilvusService request message(s) pymilvus would send, run
them, and render the reply as ``{"code": 0, "data": ...}`` or ``{"code": N, "message":
...}``. The requests run through :class:`keeldb.server.inprocess.Dispatcher`, i.e. through
the gRPC server's interceptors and servicer in-process: authentication and the privilege
check (``--auth`` / ``--authorization``), cluster routing, metrics and every handler's
validation and error codes are the gRPC path's, not a second implementation. This layer only
translates JSON: it checks the body's shape (Milvus's codes 1801 malformed JSON or a wrong
type, 1802 a missing required parameter, 1804 rows that cannot be packed) and never calls
the client or the engine.

Credentials: ``Authorization: Bearer user:password`` (or a token), or HTTP Basic, passed
on as the base64 ``authorization`` metadata pymilvus sends; the database: ``dbName`` in the
body, else the ``DB-Name`` header, else ``default``. Served by Starlette on uvicorn on its
own port (``--http-port``): Milvus multiplexes REST and gRPC on 19530 with cmux, which
grpcio's server cannot share.
"""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2, schema_pb2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from keeldb.server import rest_values as V
from keeldb.server.inprocess import Dispatcher, RpcAborted

log = logging.getLogger(__name__)
PREFIX = "/v2/vectordb/"
VIA = ("keeldb-via", "rest")  # metadata: the metrics interceptor labels the call
DEFAULT_DB = "default"

# Milvus's codes for the REST layer's own refusals (pkg/util/merr).
NEED_AUTHENTICATE = 1800
INCORRECT_FORMAT = 1801
MISSING_PARAMETERS = 1802
INVALID_INSERT_DATA = 1804
CHECK_PRIMARY_KEY = 1806
PARAMETER_INVALID = 1100
PRIVILEGE_NOT_PERMITTED = 1401
SERVICE_UNAVAILABLE = 2
UNIMPLEMENTED = 10
_MESSAGES = {
    INCORRECT_FORMAT: "can only accept json format request",
    MISSING_PARAMETERS: "missing required parameters",
    INVALID_INSERT_DATA: "fail to deal the insert data",
    CHECK_PRIMARY_KEY: "please check the primary key and its' type can only in [int, string]",
}


class RestError(Exception):
    def __init__(self, code: int, message: str, http_status: int = 200) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.http_status = http_status


def refuse(code: int, detail: str) -> RestError:
    """Milvus's message for ``code``, with ``detail`` after it as Milvus writes it."""
    return RestError(code, f"{_MESSAGES[code]}, error: {detail}")


# -- the body ----------------------------------------------------------------------------

_JSON_TYPE = {str: "string", int: "number", float: "number", bool: "bool", list: "array", dict: "object"}
_MISSING = object()


def _json_type(v: Any) -> str:
    return "null" if v is None else _JSON_TYPE.get(type(v), type(v).__name__)


def _check(key: str, v: Any, kind: str) -> Any:
    ok = {
        "str": isinstance(v, str),
        "int": isinstance(v, int) and not isinstance(v, bool),
        "bool": isinstance(v, bool),
        "number": isinstance(v, int | float) and not isinstance(v, bool),
        "list": isinstance(v, list),
        "strs": isinstance(v, list) and all(isinstance(x, str) for x in v),
        "dict": isinstance(v, dict),
        "any": True,
    }[kind]
    if not ok:
        want = {"str": "string", "int": "int", "bool": "bool", "number": "number", "list": "array",
                "strs": "array of strings", "dict": "object", "any": "value"}[kind]  # fmt: skip
        raise refuse(INCORRECT_FORMAT, f"json: cannot unmarshal {_json_type(v)} into field {key} of type {want}")
    return v


@dataclass
class Call:
    """One REST request: its body, database and credentials, and the dispatcher."""

    dispatcher: Dispatcher
    body: dict[str, Any]
    db: str
    metadata: list[tuple[str, str]]
    int64_numbers: bool = True
    extra: dict[str, Any] = field(default_factory=dict)

    def get(self, key: str, kind: str, default: Any = None, *, required: bool = False) -> Any:
        v = self.body.get(key, _MISSING)
        if v is _MISSING or v is None:
            if required:
                raise refuse(
                    MISSING_PARAMETERS,
                    f"Key: '{key}' Error:Field validation for '{key}' failed on the 'required' tag",
                )
            return default
        _check(key, v, kind)
        if required and v in ("", [], {}):
            raise refuse(MISSING_PARAMETERS, f"Key: '{key}' Error:Field validation for '{key}' failed on the 'required' tag")
        return v

    def name(self) -> str:
        return str(self.get("collectionName", "str", required=True))

    def req(self, cls: Any, **kw: Any) -> Any:
        """A request message with the call's database in its ``db_name`` (when it has one)."""
        if "db_name" in cls.DESCRIPTOR.fields_by_name and "db_name" not in kw:
            kw["db_name"] = self.db
        return cls(**kw)

    def rpc(self, rpc: str, request: Any) -> Any:
        """The reply of ``rpc``; a failed status or an aborted call raises RestError."""
        try:
            reply = self.dispatcher.call(rpc, request, self.metadata)
        except RpcAborted as e:
            raise _aborted(e) from None
        status = reply if isinstance(reply, common_pb2.Status) else reply.status
        if status.code or status.error_code:
            raise RestError(status.code or 65535, status.reason)
        return reply


def _aborted(e: RpcAborted) -> RestError:
    if e.code == grpc.StatusCode.UNAUTHENTICATED:
        return RestError(NEED_AUTHENTICATE, "user hasn't authenticated", 401)
    if e.code == grpc.StatusCode.PERMISSION_DENIED:
        return RestError(PRIVILEGE_NOT_PERMITTED, e.details, 403)
    if e.code == grpc.StatusCode.UNAVAILABLE:
        return RestError(SERVICE_UNAVAILABLE, e.details)
    return RestError(65535, f"{e.code.name}: {e.details}")


def ok(data: Any = None, **extra: Any) -> dict[str, Any]:
    return {"code": 0, "data": {} if data is None else data, **extra}


def _kv(d: Any, what: str) -> list[common_pb2.KeyValuePair]:
    if d is None:
        return []
    if not isinstance(d, dict):
        raise refuse(INCORRECT_FORMAT, f"{what} must be an object")
    return [common_pb2.KeyValuePair(key=k, value=_text(v)) for k, v in d.items()]


def _text(v: Any) -> str:
    """A parameter value as Go's ``fmt.Sprintf("%v")`` renders JSON values (true, 5, 0.5)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, dict | list):
        return json.dumps(v)
    return str(v)


def _cost(status: Any) -> int:
    try:
        return int(status.extra_info.get("report_value", "0"))
    except ValueError:
        return 0


# -- collections ------------------------------------------------------------------------


def list_collections(c: Call) -> Any:
    return ok(list(c.rpc("ShowCollections", c.req(milvus_pb2.ShowCollectionsRequest)).collection_names))


def has_collection(c: Call) -> Any:
    return ok({"has": c.rpc("HasCollection", c.req(milvus_pb2.HasCollectionRequest, collection_name=c.name())).value})


def describe(c: Call, name: str) -> Any:
    return c.rpc("DescribeCollection", c.req(milvus_pb2.DescribeCollectionRequest, collection_name=name))


def _field_info(f: schema_pb2.FieldSchema) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": f.name, "id": f.fieldID, "type": schema_pb2.DataType.Name(f.data_type),
        "primaryKey": f.is_primary_key, "autoId": f.autoID, "partitionKey": f.is_partition_key,
        "clusteringKey": f.is_clustering_key, "nullable": f.nullable, "description": f.description,
        "params": [{"key": p.key, "value": p.value} for p in f.type_params],
    }  # fmt: skip
    if f.data_type == schema_pb2.DataType.Array:
        out["elementType"] = schema_pb2.DataType.Name(f.element_type)
    if f.HasField("default_value"):
        which = f.default_value.WhichOneof("data")
        if which:
            out["defaultValue"] = getattr(f.default_value, which)
    if f.is_function_output:
        out["isFunctionOutput"] = True
    return out


def describe_collection(c: Call) -> Any:
    name = c.name()
    coll = describe(c, name)
    notes = ""
    try:
        state = c.rpc("GetLoadState", c.req(milvus_pb2.GetLoadStateRequest, collection_name=name)).state
        load = common_pb2.LoadState.Name(state)
    except RestError as e:
        load, notes = "", notes + e.message + ";"
    vector = next((f.name for f in coll.schema.fields if f.data_type >= schema_pb2.DataType.BinaryVector), "")
    indexes: list[dict[str, Any]] = []
    try:
        desc = c.rpc("DescribeIndex", c.req(milvus_pb2.DescribeIndexRequest, collection_name=name, field_name=vector))
        for d in desc.index_descriptions:
            params = {p.key: p.value for p in d.params}
            indexes.append({"indexName": d.index_name, "fieldName": d.field_name, "metricType": params.get("metric_type", "")})
    except RestError as e:
        notes += e.message + ";"
    data = {
        "collectionName": coll.collection_name, "collectionID": coll.collectionID,
        "description": coll.schema.description, "autoId": any(f.autoID for f in coll.schema.fields if f.is_primary_key),
        "fields": [_field_info(f) for f in coll.schema.fields],
        "functions": [
            {"name": fn.name, "type": schema_pb2.FunctionType.Name(fn.type), "description": fn.description,
             "inputFieldNames": list(fn.input_field_names), "outputFieldNames": list(fn.output_field_names),
             "params": [{"key": p.key, "value": p.value} for p in fn.params]}
            for fn in coll.schema.functions
        ],
        "aliases": list(coll.aliases), "indexes": indexes, "load": load, "shardsNum": coll.shards_num,
        "partitionsNum": coll.num_partitions,
        "consistencyLevel": common_pb2.ConsistencyLevel.Name(coll.consistency_level),
        "enableDynamicField": coll.schema.enable_dynamic_field,
        "properties": [{"key": p.key, "value": p.value} for p in coll.properties],
    }  # fmt: skip
    return {"code": 0, "data": data, "message": notes}


def _row_count(stats: Any) -> Any:
    value = next((p.value for p in stats if p.key == "row_count"), "0")
    try:
        return int(value)
    except ValueError:
        return value


def collection_stats(c: Call) -> Any:
    r = c.rpc("GetCollectionStatistics", c.req(milvus_pb2.GetCollectionStatisticsRequest, collection_name=c.name()))
    return ok({"rowCount": _row_count(r.stats)})


def load_state(c: Call) -> Any:
    name = c.name()
    parts = c.get("partitionNames", "strs", [])
    state = c.rpc("GetLoadState", c.req(milvus_pb2.GetLoadStateRequest, collection_name=name, partition_names=parts)).state
    if state == common_pb2.LoadState.LoadStateNotExist:
        raise RestError(100, f"collection not found[collection={name}]")
    if state == common_pb2.LoadState.LoadStateNotLoad:
        return ok({"loadState": common_pb2.LoadState.Name(state)})
    notes, progress = "", -1
    try:
        req = c.req(milvus_pb2.GetLoadingProgressRequest, collection_name=name, partition_names=parts)
        progress = c.rpc("GetLoadingProgress", req).progress
    except RestError as e:
        notes = e.message + "."
    loaded = "LoadStateLoaded" if progress >= 100 else "LoadStateLoading"
    return {"code": 0, "data": {"loadState": loaded, "loadProgress": progress}, "message": notes}


def _status_call(rpc: str, build: Callable[[Call], Any]) -> Callable[[Call], Any]:
    """An endpoint that runs one RPC and answers ``{}`` on success."""

    def endpoint(c: Call) -> Any:
        c.rpc(rpc, build(c))
        return ok()

    return endpoint


def rename_collection(c: Call) -> Any:
    req = c.req(
        milvus_pb2.RenameCollectionRequest, oldName=c.name(),
        newName=c.get("newCollectionName", "str", required=True), newDBName=c.get("newDbName", "str", "") or c.db,
    )  # fmt: skip
    c.rpc("RenameCollection", req)
    return ok()


_CONSISTENCY = dict(common_pb2.ConsistencyLevel.items())


def _schema_field(c: Call, f: Any, auto_id: bool, outputs: set[str]) -> tuple[schema_pb2.FieldSchema, bool]:
    if not isinstance(f, dict):
        raise refuse(INCORRECT_FORMAT, "schema.fields must be a list of objects")
    sub = Call(c.dispatcher, f, c.db, c.metadata)
    name = sub.get("fieldName", "str", required=True)
    dtype = sub.get("dataType", "str", required=True)
    if dtype not in schema_pb2.DataType.keys():
        raise RestError(PARAMETER_INVALID, f"invalid parameter, data type {dtype} is invalid(case sensitive).")
    pf = schema_pb2.FieldSchema(
        name=name, data_type=schema_pb2.DataType.Value(dtype), is_primary_key=bool(sub.get("isPrimary", "bool", False)),
        is_partition_key=bool(sub.get("isPartitionKey", "bool", False)),
        is_clustering_key=bool(sub.get("isClusteringKey", "bool", False)), nullable=bool(sub.get("nullable", "bool", False)),
        description=sub.get("description", "str", ""), is_function_output=name in outputs,
    )  # fmt: skip
    if pf.is_primary_key:
        pf.autoID = auto_id
    if pf.data_type == schema_pb2.DataType.Array:
        element = sub.get("elementDataType", "str", "")
        if element not in schema_pb2.DataType.keys():
            raise RestError(PARAMETER_INVALID, f"invalid parameter, element data type {element} is invalid(case sensitive).")
        pf.element_type = schema_pb2.DataType.Value(element)
    pf.type_params.extend(_kv(sub.get("elementTypeParams", "dict", {}), "elementTypeParams"))
    default = sub.get("defaultValue", "any")
    if default is not None:
        pf.default_value.CopyFrom(_default_value(name, pf.data_type, default))
    return pf, pf.is_partition_key


def _default_value(name: str, dtype: int, v: Any) -> schema_pb2.ValueField:
    DT = schema_pb2.DataType
    slot = {DT.Bool: ("bool_data", bool), DT.Int8: ("int_data", int), DT.Int16: ("int_data", int),
            DT.Int32: ("int_data", int), DT.Int64: ("long_data", int), DT.Float: ("float_data", float),
            DT.Double: ("double_data", float), DT.VarChar: ("string_data", str),
            DT.JSON: ("string_data", str)}.get(dtype)  # fmt: skip
    if slot is None:
        raise RestError(PARAMETER_INVALID, f"convert defaultValue fail, err: field {name}: no default value for this type")
    key, kind = slot
    if kind is bool and not isinstance(v, bool) or kind is int and (not isinstance(v, int) or isinstance(v, bool)) \
            or kind is float and not isinstance(v, int | float) or kind is str and not isinstance(v, str):
        raise RestError(PARAMETER_INVALID, f"convert defaultValue fail, err: field {name}: {v!r} is not a {kind.__name__}")
    return schema_pb2.ValueField(**{key: kind(v)})


def create_collection(c: Call) -> Any:
    name = c.name()
    params = c.get("params", "dict", {})
    schema_in = c.get("schema", "dict", {})
    fields_in = schema_in.get("fields") or []
    if not isinstance(fields_in, list):
        raise refuse(INCORRECT_FORMAT, "schema.fields must be a list")
    req = c.req(milvus_pb2.CreateCollectionRequest, collection_name=name, shards_num=1)
    partition_key = False
    if not fields_in:
        if schema_in.get("functions"):
            raise RestError(PARAMETER_INVALID, "invalid parameter[expected=schema][actual=functions]: functions are not supported for quickly create collection")
        dim = c.get("dimension", "int", 0)
        if not dim:
            raise RestError(
                PARAMETER_INVALID,
                "invalid parameter[expected=collectionName & dimension][actual=collectionName]: dimension is required for quickly create collection(default metric type: COSINE)",
            )
        id_type = c.get("idType", "str", "")
        pk = schema_pb2.FieldSchema(name=c.get("primaryFieldName", "str", "") or "id", is_primary_key=True,
                                    autoID=bool(c.get("autoID", "bool", False)), fieldID=100)  # fmt: skip
        if id_type in ("VarChar", "Varchar"):
            pk.data_type = schema_pb2.DataType.VarChar
            pk.type_params.add(key="max_length", value=_text(params.get("max_length", 65535)))
        elif id_type in ("", "Int64", "int64"):
            pk.data_type = schema_pb2.DataType.Int64
        else:
            raise RestError(PARAMETER_INVALID, f"invalid parameter[expected=Int64, Varchar][actual={id_type}]: idType can only be [Int64, VarChar], default: Int64")
        vector_name = c.get("vectorFieldName", "str", "") or "vector"
        vec = schema_pb2.FieldSchema(name=vector_name, data_type=schema_pb2.DataType.FloatVector, fieldID=101)
        vec.type_params.add(key="dim", value=str(dim))
        dynamic = params.get("enableDynamicField", True)
        if not isinstance(dynamic, bool):
            dynamic = str(dynamic).lower() == "true"
        schema = schema_pb2.CollectionSchema(name=name, fields=[pk, vec], enable_dynamic_field=dynamic,
                                             description=c.get("description", "str", ""))  # fmt: skip
    else:
        auto_id = bool(schema_in.get("autoID", False))
        schema = schema_pb2.CollectionSchema(
            name=name, autoID=auto_id, enable_dynamic_field=bool(schema_in.get("enableDynamicField", False)),
            description=c.get("description", "str", ""),
        )
        outputs: set[str] = set()
        for fn in schema_in.get("functions") or []:
            sub = Call(c.dispatcher, fn if isinstance(fn, dict) else {}, c.db, c.metadata)
            ftype = sub.get("type", "str", required=True)
            if ftype not in schema_pb2.FunctionType.keys():
                raise RestError(PARAMETER_INVALID, f"invalid parameter[expected=FunctionType][actual={ftype}]: function data type is invalid(case sensitive)")
            out_names = sub.get("outputFieldNames", "strs", required=True)
            outputs.update(out_names)
            schema.functions.add(
                name=sub.get("name", "str", required=True), description=sub.get("description", "str", ""),
                type=schema_pb2.FunctionType.Value(ftype), input_field_names=sub.get("inputFieldNames", "strs", required=True),
                output_field_names=out_names, params=_kv(sub.get("params", "dict", {}), "function params"),
            )  # fmt: skip
        for f in fields_in:
            pf, is_pk = _schema_field(c, f, auto_id, outputs)
            schema.fields.append(pf)
            partition_key = partition_key or is_pk
    req.schema = schema.SerializeToString()
    if "shardsNum" in params:
        req.shards_num = int(params["shardsNum"])
    level = params.get("consistencyLevel")
    if level is not None:
        if level not in _CONSISTENCY:
            raise RestError(PARAMETER_INVALID, f"invalid parameter[expected=Strong, Session, Bounded, Eventually, Customized][actual={level}]: consistencyLevel can only be [Strong, Session, Bounded, Eventually, Customized], default: Bounded")
        req.consistency_level = _CONSISTENCY[level]
    else:
        req.consistency_level = common_pb2.ConsistencyLevel.Bounded
    if partition_key:
        req.num_partitions = int(params.get("partitionsNum", 64))
    if "ttlSeconds" in params:
        req.properties.add(key="collection.ttl.seconds", value=_text(params["ttlSeconds"]))
    if "partitionKeyIsolation" in params:
        req.properties.add(key="partitionkey.isolation", value=_text(params["partitionKeyIsolation"]))
    c.rpc("CreateCollection", req)
    if not fields_in:
        metric = c.get("metricType", "str", "") or "COSINE"
        ireq = c.req(milvus_pb2.CreateIndexRequest, collection_name=name, field_name=schema.fields[1].name,
                     index_name=schema.fields[1].name, extra_params=[common_pb2.KeyValuePair(key="metric_type", value=metric)])  # fmt: skip
        c.rpc("CreateIndex", ireq)
    else:
        index_params = c.get("indexParams", "list", [])
        if not index_params:
            return ok()
        names = {f.name for f in schema.fields}
        for ip in index_params:
            if not isinstance(ip, dict) or ip.get("fieldName") not in names:
                missing = ip.get("fieldName") if isinstance(ip, dict) else ip
                raise refuse(MISSING_PARAMETERS, f"`{missing}` hasn't defined in schema")
            c.rpc("CreateIndex", _index_request(c, name, ip))
    c.rpc("LoadCollection", c.req(milvus_pb2.LoadCollectionRequest, collection_name=name))
    return ok()


# -- indexes ----------------------------------------------------------------------------


def _index_request(c: Call, collection: str, ip: Any) -> Any:
    if not isinstance(ip, dict):
        raise refuse(INCORRECT_FORMAT, "indexParams must be a list of objects")
    sub = Call(c.dispatcher, ip, c.db, c.metadata)
    extra = []
    index_type = sub.get("indexType", "str", "")
    params = sub.get("params", "dict", {})
    if not index_type and "index_type" in params:
        index_type = _text(params["index_type"])
    if index_type:
        extra.append(common_pb2.KeyValuePair(key="index_type", value=index_type))
    metric = sub.get("metricType", "str", "")
    if metric:
        extra.append(common_pb2.KeyValuePair(key="metric_type", value=metric))
    if params:
        extra.append(common_pb2.KeyValuePair(key="params", value=json.dumps(params)))
    return c.req(
        milvus_pb2.CreateIndexRequest, collection_name=collection, field_name=sub.get("fieldName", "str", required=True),
        index_name=sub.get("indexName", "str", ""), extra_params=extra,
    )  # fmt: skip


def create_index(c: Call) -> Any:
    name = c.name()
    for ip in c.get("indexParams", "list", required=True):
        c.rpc("CreateIndex", _index_request(c, name, ip))
    return ok()


def list_indexes(c: Call) -> Any:
    try:
        r = c.rpc("DescribeIndex", c.req(milvus_pb2.DescribeIndexRequest, collection_name=c.name()))
    except RestError as e:
        if e.code == 700:  # index not found: an empty list, as Milvus answers
            return ok([])
        raise
    return ok([d.index_name for d in r.index_descriptions])


def describe_index(c: Call) -> Any:
    req = c.req(milvus_pb2.DescribeIndexRequest, collection_name=c.name(), index_name=c.get("indexName", "str", required=True))
    out = []
    for d in c.rpc("DescribeIndex", req).index_descriptions:
        params = {p.key: p.value for p in d.params}
        out.append({
            "indexName": d.index_name, "fieldName": d.field_name, "indexType": params.get("index_type", ""),
            "metricType": params.get("metric_type", ""), "totalRows": d.total_rows, "pendingRows": d.pending_index_rows,
            "indexedRows": d.indexed_rows, "indexState": common_pb2.IndexState.Name(d.state),
            "failReason": d.index_state_fail_reason,
        })  # fmt: skip
    return ok(out)


# -- entities ---------------------------------------------------------------------------


def _write(c: Call, upsert: bool) -> Any:
    name = c.name()
    partition = c.get("partitionName", "str", "")
    data = c.get("data", "list", required=True)
    coll = describe(c, name)
    try:
        req = V.insert_request(name, data, partition, coll, upsert, c.db)
    except V.BadValue as e:
        raise refuse(INVALID_INSERT_DATA, str(e)) from None
    reply = c.rpc("Upsert" if upsert else "Insert", req)
    which = reply.IDs.WhichOneof("id_field")
    ids: list[Any] = list(reply.IDs.int_id.data) if which == "int_id" else list(reply.IDs.str_id.data)
    if which == "int_id" and not c.int64_numbers:
        ids = [str(i) for i in ids]
    key = "upsert" if upsert else "insert"
    count = reply.upsert_cnt if upsert else reply.insert_cnt
    return ok({f"{key}Count": count, f"{key}Ids": ids}, cost=_cost(reply.status))


def _pk_filter(c: Call, coll: Any) -> str:
    """``id`` (one key or a list) as Milvus's ``pk in [...]`` filter."""
    pk = next((f for f in coll.schema.fields if f.is_primary_key), None)
    ids = c.body.get("id")
    if pk is None or ids is None:
        raise refuse(CHECK_PRIMARY_KEY, "id is required")
    ids = ids if isinstance(ids, list) else [ids]
    if pk.data_type == schema_pb2.DataType.Int64:
        try:
            keys = [int(i) if not isinstance(i, bool | float) else _bad() for i in ids]
        except (TypeError, ValueError):
            raise refuse(CHECK_PRIMARY_KEY, f"the ids must be integers for primary key {pk.name}") from None
        return f"{pk.name} in [{','.join(map(str, keys))}]"
    if not all(isinstance(i, str) for i in ids):
        raise refuse(CHECK_PRIMARY_KEY, f"the ids must be strings for primary key {pk.name}")
    return f"{pk.name} in [{','.join(json.dumps(i) for i in ids)}]"


def _bad() -> int:
    raise ValueError("not an integer")


def _guarantee(c: Call, coll: Any, level: str | None) -> int:
    """The guarantee timestamp pymilvus would send for the consistency level (the
    collection's unless the request names one): Strong (and Session, which a REST caller
    has no session for) 0 = every write so far; Bounded 2, Eventually 1 = the newest
    visible state, which includes every acknowledged write."""
    if level is not None and level not in _CONSISTENCY:
        raise RestError(
            PARAMETER_INVALID,
            f"consistencyLevel can only be [Strong, Session, Bounded, Eventually, Customized], default: Bounded, err:parameter:'{level}' is incorrect, please check it",
        )
    value = _CONSISTENCY[level] if level else coll.consistency_level
    return {common_pb2.ConsistencyLevel.Bounded: 2, common_pb2.ConsistencyLevel.Eventually: 1}.get(value, 0)


def _query(c: Call, filter_: str, output: list[str], limit: int, offset: int, parts: list[str], coll: Any) -> Any:
    params = []
    count_only = [o.strip().lower() for o in output] == ["count(*)"]
    if offset > 0:
        params.append(common_pb2.KeyValuePair(key="offset", value=str(offset)))
    if limit > 0 and not count_only:
        params.append(common_pb2.KeyValuePair(key="limit", value=str(limit)))
    try:
        templates = V.template_values(c.get("exprParams", "dict"))
    except V.BadValue as e:
        raise refuse(INCORRECT_FORMAT, str(e)) from None
    req = c.req(
        milvus_pb2.QueryRequest, collection_name=c.name(), expr=filter_, output_fields=output,
        partition_names=parts, query_params=params, expr_template_values=templates,
        guarantee_timestamp=_guarantee(c, coll, c.get("consistencyLevel", "str")), use_default_consistency=True,
    )  # fmt: skip
    reply = c.rpc("Query", req)
    return ok(V.rows(reply.fields_data, c.int64_numbers), cost=_cost(reply.status))


def query(c: Call) -> Any:
    coll = describe(c, c.name())
    return _query(
        c, c.get("filter", "str", ""), c.get("outputFields", "strs", ["*"]), c.get("limit", "int", 100),
        c.get("offset", "int", 0), c.get("partitionNames", "strs", []), coll,
    )  # fmt: skip


def get(c: Call) -> Any:
    if c.body.get("id") is None:
        c.get("id", "any", required=True)
    coll = describe(c, c.name())
    parts = c.get("partitionNames", "strs", []) or ([p] if (p := c.get("partitionName", "str", "")) else [])
    return _query(c, _pk_filter(c, coll), c.get("outputFields", "strs", ["*"]), 0, 0, parts, coll)


def delete(c: Call) -> Any:
    name = c.name()
    filter_ = c.get("filter", "str", "")
    if not filter_:
        if c.body.get("id") is None:
            c.get("filter", "str", required=True)
        filter_ = _pk_filter(c, describe(c, name))
    try:
        templates = V.template_values(c.get("exprParams", "dict"))
    except V.BadValue as e:
        raise refuse(INCORRECT_FORMAT, str(e)) from None
    req = c.req(milvus_pb2.DeleteRequest, collection_name=name, partition_name=c.get("partitionName", "str", ""),
                expr=filter_, expr_template_values=templates)  # fmt: skip
    reply = c.rpc("Delete", req)
    return ok({"deleteCount": reply.delete_cnt}, cost=_cost(reply.status))


def _vector_field(coll: Any, anns: str) -> tuple[schema_pb2.FieldSchema, bool]:
    vectors = [f for f in coll.schema.fields if f.data_type >= schema_pb2.DataType.BinaryVector]
    if anns:
        field = next((f for f in vectors if f.name == anns), None)
        if field is None:
            raise refuse(INCORRECT_FORMAT, f"cannot find a vector field named: {anns}")
    elif len(vectors) == 1:
        field = vectors[0]
    else:
        names = ", ".join(f.name for f in vectors[:2])
        raise refuse(INCORRECT_FORMAT, f"search without annsField, but already found multiple vector fields: [{names},,,]")
    bm25 = any(fn.type == schema_pb2.FunctionType.BM25 and field.name in fn.output_field_names for fn in coll.schema.functions)
    return field, bm25


def _search_request(c: Call, sub: Call, coll: Any, name: str, output: list[str], parts: list[str]) -> Any:
    anns = sub.get("annsField", "str", "")
    field, text = _vector_field(coll, anns)
    try:
        group = V.placeholder_group(sub.get("data", "list", required=True), field, text)
        templates = V.template_values(sub.get("exprParams", "dict"))
    except V.BadValue as e:
        raise refuse(INCORRECT_FORMAT, str(e)) from None
    sp = sub.get("searchParams", "dict", None)
    if sp is None:
        sp = sub.get("params", "dict", {})  # hybrid sub-requests name them "params"
    sp = dict(sp)
    inner = sp.pop("params", {})
    if not isinstance(inner, dict):
        raise refuse(INCORRECT_FORMAT, "searchParams.params must be an object")
    pairs = {"params": json.dumps(inner), "topk": str(sub.get("limit", "int", 100)),
             "offset": str(sub.get("offset", "int", 0)), "anns_field": field.name, "round_decimal": "-1"}  # fmt: skip
    for k, v in sp.items():
        if k in ("radius", "range_filter"):
            inner[k] = v
            pairs["params"] = json.dumps(inner)
        else:  # ignore_growing, hints, ...: the servicer acts on them or refuses them, as over gRPC
            pairs[k] = _text(v)
    metric = sub.get("metricType", "str", "")
    if metric:
        pairs["metric_type"] = metric
    pairs.update(_grouping(sub))
    return c.req(
        milvus_pb2.SearchRequest, collection_name=name, dsl=sub.get("filter", "str", ""),
        dsl_type=common_pb2.DslType.BoolExprV1, placeholder_group=group, output_fields=output, partition_names=parts,
        search_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in pairs.items()],
        expr_template_values=templates,
    )  # fmt: skip


def _grouping(c: Call) -> dict[str, str]:
    """A body's groupingField / groupSize / strictGroupSize as the search or rank params a
    grouped search takes (a search's and a hybrid search's alike)."""
    group_by = c.get("groupingField", "str", "")
    if not group_by:
        return {}
    pairs = {"group_by_field": group_by}
    size = c.get("groupSize", "int", 0)
    if size > 0:
        pairs["group_size"] = str(size)
        pairs["strict_group_size"] = _text(bool(c.get("strictGroupSize", "bool", False)))
    return pairs


def _search_answer(c: Call, reply: Any) -> Any:
    results = reply.results
    extra: dict[str, Any] = {"cost": _cost(reply.status)}
    if results.num_queries > 1:
        extra["topks"] = list(results.topks)
    if results.top_k == 0 or not len(results.scores):
        return ok([], **extra)
    return ok(V.hits(results, c.int64_numbers), **extra)


def search(c: Call) -> Any:
    name = c.name()
    coll = describe(c, name)
    req = _search_request(c, c, coll, name, c.get("outputFields", "strs", []), c.get("partitionNames", "strs", []))
    req.guarantee_timestamp = _guarantee(c, coll, c.get("consistencyLevel", "str"))
    req.use_default_consistency = True
    return _search_answer(c, c.rpc("Search", req))


def hybrid_search(c: Call) -> Any:
    name = c.name()
    coll = describe(c, name)
    output, parts = c.get("outputFields", "strs", []), c.get("partitionNames", "strs", [])
    subs = c.get("search", "list", required=True)
    reqs = []
    for s in subs:
        if not isinstance(s, dict):
            raise refuse(INCORRECT_FORMAT, "search must be a list of objects")
        reqs.append(_search_request(c, Call(c.dispatcher, s, c.db, c.metadata, c.int64_numbers), coll, name, output, parts))
    rerank = c.get("rerank", "dict", {})
    rank = {"strategy": _text(rerank.get("strategy", "rrf")), "params": json.dumps(rerank.get("params") or {}),
            "limit": str(c.get("limit", "int", 100)), "round_decimal": "-1"}  # fmt: skip
    rank.update(_grouping(c))
    req = c.req(
        milvus_pb2.HybridSearchRequest, collection_name=name, requests=reqs, output_fields=output, partition_names=parts,
        rank_params=[common_pb2.KeyValuePair(key=k, value=v) for k, v in rank.items()],
        guarantee_timestamp=_guarantee(c, coll, c.get("consistencyLevel", "str")), use_default_consistency=True,
    )  # fmt: skip
    return _search_answer(c, c.rpc("HybridSearch", req))


# -- partitions, aliases, databases -----------------------------------------------------


def _partition(c: Call) -> str:
    return str(c.get("partitionName", "str", required=True))


def list_partitions(c: Call) -> Any:
    return ok(list(c.rpc("ShowPartitions", c.req(milvus_pb2.ShowPartitionsRequest, collection_name=c.name())).partition_names))


def has_partition(c: Call) -> Any:
    r = c.rpc("HasPartition", c.req(milvus_pb2.HasPartitionRequest, collection_name=c.name(), partition_name=_partition(c)))
    return ok({"has": r.value})


def partition_stats(c: Call) -> Any:
    req = c.req(milvus_pb2.GetPartitionStatisticsRequest, collection_name=c.name(), partition_name=_partition(c))
    return ok({"rowCount": _row_count(c.rpc("GetPartitionStatistics", req).stats)})


def list_aliases(c: Call) -> Any:
    req = c.req(milvus_pb2.ListAliasesRequest, collection_name=c.get("collectionName", "str", ""))
    return ok(list(c.rpc("ListAliases", req).aliases))


def describe_alias(c: Call) -> Any:
    r = c.rpc("DescribeAlias", c.req(milvus_pb2.DescribeAliasRequest, alias=c.get("aliasName", "str", required=True)))
    return ok({"dbName": r.db_name, "collectionName": r.collection, "aliasName": r.alias})


def list_databases(c: Call) -> Any:
    return ok(list(c.rpc("ListDatabases", milvus_pb2.ListDatabasesRequest()).db_names))


def describe_database(c: Call) -> Any:
    name = c.get("dbName", "str", required=True)
    r = c.rpc("DescribeDatabase", milvus_pb2.DescribeDatabaseRequest(db_name=name))
    return ok({"dbName": r.db_name, "dbID": r.dbID, "properties": [{"key": p.key, "value": p.value} for p in r.properties]})


# -- users and roles --------------------------------------------------------------------


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def list_users(c: Call) -> Any:
    return ok(list(c.rpc("ListCredUsers", milvus_pb2.ListCredUsersRequest()).usernames))


def describe_user(c: Call) -> Any:
    name = c.get("userName", "str", required=True)
    req = milvus_pb2.SelectUserRequest(user=milvus_pb2.UserEntity(name=name), include_role_info=True)
    roles = [r.name for u in c.rpc("SelectUser", req).results if u.user.name == name for r in u.roles]
    return ok(roles)


def list_roles(c: Call) -> Any:
    return ok([r.role.name for r in c.rpc("SelectRole", milvus_pb2.SelectRoleRequest()).results])


def describe_role(c: Call) -> Any:
    entity = milvus_pb2.GrantEntity(role=milvus_pb2.RoleEntity(name=c.get("roleName", "str", required=True)), db_name=c.db)
    out = [
        {"objectType": g.object.name, "objectName": g.object_name, "privilege": g.grantor.privilege.name,
         "dbName": g.db_name, "grantor": g.grantor.user.name}
        for g in c.rpc("SelectGrant", milvus_pb2.SelectGrantRequest(entity=entity)).entities
    ]  # fmt: skip
    return ok(out)


def _grant(kind: int) -> Callable[[Call], Any]:
    def endpoint(c: Call) -> Any:
        entity = milvus_pb2.GrantEntity(
            role=milvus_pb2.RoleEntity(name=c.get("roleName", "str", required=True)),
            object=milvus_pb2.ObjectEntity(name=c.get("objectType", "str", required=True)),
            object_name=c.get("objectName", "str", required=True), db_name=c.db,
            grantor=milvus_pb2.GrantorEntity(privilege=milvus_pb2.PrivilegeEntity(name=c.get("privilege", "str", required=True))),
        )  # fmt: skip
        c.rpc("OperatePrivilege", milvus_pb2.OperatePrivilegeRequest(entity=entity, type=kind))
        return ok()

    return endpoint


def _grant_v2(kind: int) -> Callable[[Call], Any]:
    def endpoint(c: Call) -> Any:
        req = milvus_pb2.OperatePrivilegeV2Request(
            role=milvus_pb2.RoleEntity(name=c.get("roleName", "str", required=True)),
            grantor=milvus_pb2.GrantorEntity(privilege=milvus_pb2.PrivilegeEntity(name=c.get("privilege", "str", required=True))),
            type=kind, db_name=c.get("dbName", "str", ""), collection_name=c.get("collectionName", "str", ""),
        )  # fmt: skip
        c.rpc("OperatePrivilegeV2", req)
        return ok()

    return endpoint


def list_privilege_groups(c: Call) -> Any:
    groups = c.rpc("ListPrivilegeGroups", milvus_pb2.ListPrivilegeGroupsRequest()).privilege_groups
    out = [{"privilegeGroupName": g.group_name, "privileges": ",".join(p.name for p in g.privileges)} for g in groups]
    return ok({"privilegeGroups": out})


def _privilege_group(kind: int) -> Callable[[Call], Any]:
    def endpoint(c: Call) -> Any:
        req = milvus_pb2.OperatePrivilegeGroupRequest(
            group_name=c.get("privilegeGroupName", "str", required=True), type=kind,
            privileges=[milvus_pb2.PrivilegeEntity(name=p) for p in c.get("privileges", "strs", [])],
        )  # fmt: skip
        c.rpc("OperatePrivilegeGroup", req)
        return ok()

    return endpoint


def not_built(what: str) -> Callable[[Call], Any]:
    def endpoint(c: Call) -> Any:
        raise RestError(UNIMPLEMENTED, f"service unimplemented: {what} is not supported by keeldb yet")

    return endpoint


def _collection_req(cls: Any) -> Callable[[Call], Any]:
    return lambda c: c.req(cls, collection_name=c.name())


_M = milvus_pb2
ROUTES: dict[str, Callable[[Call], Any]] = {
    "collections/list": list_collections,
    "collections/has": has_collection,
    "collections/describe": describe_collection,
    "collections/get_stats": collection_stats,
    "collections/get_load_state": load_state,
    "collections/create": create_collection,
    "collections/drop": _status_call("DropCollection", _collection_req(_M.DropCollectionRequest)),
    "collections/rename": rename_collection,
    "collections/load": _status_call("LoadCollection", _collection_req(_M.LoadCollectionRequest)),
    "collections/refresh_load": _status_call(
        "LoadCollection", lambda c: c.req(_M.LoadCollectionRequest, collection_name=c.name(), refresh=True)
    ),
    "collections/release": _status_call("ReleaseCollection", _collection_req(_M.ReleaseCollectionRequest)),
    "collections/alter_properties": _status_call(
        "AlterCollection",
        lambda c: c.req(_M.AlterCollectionRequest, collection_name=c.name(), properties=_kv(c.get("properties", "dict", {}), "properties")),
    ),
    "collections/drop_properties": _status_call(
        "AlterCollection",
        lambda c: c.req(_M.AlterCollectionRequest, collection_name=c.name(), delete_keys=c.get("propertyKeys", "strs", [])),
    ),
    "collections/fields/alter_properties": _status_call(
        "AlterCollectionField",
        lambda c: c.req(_M.AlterCollectionFieldRequest, collection_name=c.name(), field_name=c.get("fieldName", "str", required=True),
                        properties=_kv(c.get("fieldParams", "dict", {}), "fieldParams")),
    ),  # fmt: skip
    "collections/flush": _status_call("Flush", lambda c: c.req(_M.FlushRequest, collection_names=[c.name()])),
    "collections/compact": lambda c: ok(
        {"compactionID": c.rpc("ManualCompaction", c.req(_M.ManualCompactionRequest, collection_name=c.name())).compactionID}
    ),
    "collections/get_compaction_state": lambda c: ok({
        "state": common_pb2.CompactionState.Name(
            c.rpc("GetCompactionState", _M.GetCompactionStateRequest(compactionID=c.get("jobID", "int", required=True))).state
        )
    }),  # fmt: skip
    "indexes/list": list_indexes,
    "indexes/describe": describe_index,
    "indexes/create": create_index,
    "indexes/drop": _status_call(
        "DropIndex",
        lambda c: c.req(_M.DropIndexRequest, collection_name=c.name(), index_name=c.get("indexName", "str", required=True)),
    ),
    "indexes/alter_properties": _status_call(
        "AlterIndex",
        lambda c: c.req(_M.AlterIndexRequest, collection_name=c.name(), index_name=c.get("indexName", "str", required=True),
                        extra_params=_kv(c.get("properties", "dict", {}), "properties")),
    ),  # fmt: skip
    "indexes/drop_properties": _status_call(
        "AlterIndex",
        lambda c: c.req(_M.AlterIndexRequest, collection_name=c.name(), index_name=c.get("indexName", "str", required=True),
                        delete_keys=c.get("propertyKeys", "strs", [])),
    ),  # fmt: skip
    "partitions/list": list_partitions,
    "partitions/has": has_partition,
    "partitions/get_stats": partition_stats,
    "partitions/create": _status_call(
        "CreatePartition", lambda c: c.req(_M.CreatePartitionRequest, collection_name=c.name(), partition_name=_partition(c))
    ),
    "partitions/drop": _status_call(
        "DropPartition", lambda c: c.req(_M.DropPartitionRequest, collection_name=c.name(), partition_name=_partition(c))
    ),
    "partitions/load": _status_call(
        "LoadPartitions",
        lambda c: c.req(_M.LoadPartitionsRequest, collection_name=c.name(), partition_names=c.get("partitionNames", "strs", required=True)),
    ),
    "partitions/release": _status_call(
        "ReleasePartitions",
        lambda c: c.req(_M.ReleasePartitionsRequest, collection_name=c.name(), partition_names=c.get("partitionNames", "strs", required=True)),
    ),
    "aliases/list": list_aliases,
    "aliases/describe": describe_alias,
    "aliases/create": _status_call(
        "CreateAlias", lambda c: c.req(_M.CreateAliasRequest, collection_name=c.name(), alias=c.get("aliasName", "str", required=True))
    ),
    "aliases/alter": _status_call(
        "AlterAlias", lambda c: c.req(_M.AlterAliasRequest, collection_name=c.name(), alias=c.get("aliasName", "str", required=True))
    ),
    "aliases/drop": _status_call(
        "DropAlias", lambda c: c.req(_M.DropAliasRequest, alias=c.get("aliasName", "str", required=True))
    ),
    "databases/list": list_databases,
    "databases/describe": describe_database,
    "databases/create": _status_call(
        "CreateDatabase",
        lambda c: _M.CreateDatabaseRequest(db_name=c.get("dbName", "str", required=True), properties=_kv(c.get("properties", "dict", {}), "properties")),
    ),
    "databases/drop": _status_call(
        "DropDatabase", lambda c: _M.DropDatabaseRequest(db_name=c.get("dbName", "str", required=True))
    ),
    "databases/alter": _status_call(
        "AlterDatabase",
        lambda c: _M.AlterDatabaseRequest(db_name=c.get("dbName", "str", required=True), properties=_kv(c.get("properties", "dict", {}), "properties")),
    ),
    "databases/drop_properties": _status_call(
        "AlterDatabase",
        lambda c: _M.AlterDatabaseRequest(db_name=c.get("dbName", "str", required=True), delete_keys=c.get("propertyKeys", "strs", [])),
    ),
    "entities/insert": lambda c: _write(c, upsert=False),
    "entities/upsert": lambda c: _write(c, upsert=True),
    "entities/delete": delete,
    "entities/get": get,
    "entities/query": query,
    "entities/search": search,
    "entities/hybrid_search": hybrid_search,
    "entities/advanced_search": hybrid_search,
    "users/list": list_users,
    "users/describe": describe_user,
    "users/create": _status_call(
        "CreateCredential",
        lambda c: _M.CreateCredentialRequest(username=c.get("userName", "str", required=True), password=_b64(c.get("password", "str", required=True))),
    ),
    "users/update_password": _status_call(
        "UpdateCredential",
        lambda c: _M.UpdateCredentialRequest(
            username=c.get("userName", "str", required=True), oldPassword=_b64(c.get("password", "str", required=True)),
            newPassword=_b64(c.get("newPassword", "str", required=True)),
        ),
    ),  # fmt: skip
    "users/drop": _status_call("DeleteCredential", lambda c: _M.DeleteCredentialRequest(username=c.get("userName", "str", required=True))),
    "users/grant_role": _status_call(
        "OperateUserRole",
        lambda c: _M.OperateUserRoleRequest(username=c.get("userName", "str", required=True), role_name=c.get("roleName", "str", required=True),
                                            type=_M.OperateUserRoleType.AddUserToRole),
    ),  # fmt: skip
    "users/revoke_role": _status_call(
        "OperateUserRole",
        lambda c: _M.OperateUserRoleRequest(username=c.get("userName", "str", required=True), role_name=c.get("roleName", "str", required=True),
                                            type=_M.OperateUserRoleType.RemoveUserFromRole),
    ),  # fmt: skip
    "roles/list": list_roles,
    "roles/describe": describe_role,
    "roles/create": _status_call("CreateRole", lambda c: _M.CreateRoleRequest(entity=_M.RoleEntity(name=c.get("roleName", "str", required=True)))),
    "roles/drop": _status_call("DropRole", lambda c: _M.DropRoleRequest(role_name=c.get("roleName", "str", required=True))),
    "roles/grant_privilege": _grant(_M.OperatePrivilegeType.Grant),
    "roles/revoke_privilege": _grant(_M.OperatePrivilegeType.Revoke),
    "roles/grant_privilege_v2": _grant_v2(_M.OperatePrivilegeType.Grant),
    "roles/revoke_privilege_v2": _grant_v2(_M.OperatePrivilegeType.Revoke),
    "privilege_groups/create": _status_call(
        "CreatePrivilegeGroup", lambda c: _M.CreatePrivilegeGroupRequest(group_name=c.get("privilegeGroupName", "str", required=True))
    ),
    "privilege_groups/drop": _status_call(
        "DropPrivilegeGroup", lambda c: _M.DropPrivilegeGroupRequest(group_name=c.get("privilegeGroupName", "str", required=True))
    ),
    "privilege_groups/list": list_privilege_groups,
    "privilege_groups/add_privileges_to_group": _privilege_group(_M.OperatePrivilegeGroupType.AddPrivilegesToGroup),
    "privilege_groups/remove_privileges_from_group": _privilege_group(_M.OperatePrivilegeGroupType.RemovePrivilegesFromGroup),
    "jobs/import/create": not_built("bulk import"),
    "jobs/import/list": not_built("bulk import"),
    "jobs/import/get_progress": not_built("bulk import"),
    "jobs/import/describe": not_built("bulk import"),
}


# -- the HTTP side ----------------------------------------------------------------------


def _metadata(request: Request, db: str) -> list[tuple[str, str]]:
    """The gRPC metadata pymilvus would send: its database and its credential."""
    md = [("dbname", db), VIA]
    auth = request.headers.get("authorization", "")
    if auth.startswith("Basic "):
        md.append(("authorization", auth[6:].strip()))
    elif auth:
        md.append(("authorization", _b64(auth.removeprefix("Bearer ").strip())))
    return md


Observer = Callable[[str, int, float], None]


def build_app(dispatcher: Dispatcher, extra_routes: list[Route] | None = None, observe: Observer | None = None) -> Starlette:
    """The ASGI app: ``/v2/vectordb/...`` plus ``extra_routes`` (``/metrics``, ``/healthz``).
    ``observe(endpoint, code, seconds)`` is told about every REST call."""

    async def endpoint(request: Request) -> Response:
        path = request.path_params["path"]
        handler = ROUTES.get(path)
        if handler is None or request.method != "POST":
            # gin's answer to an unknown route (404 page not found), in Milvus's envelope.
            return JSONResponse({"code": 404, "message": f"404 page not found: {request.url.path}"}, status_code=404)
        start = time.perf_counter()
        raw = await request.body()
        answer, status = await run_in_threadpool(_handle, dispatcher, handler, request, raw)
        if observe is not None:
            observe(path, int(answer.get("code", 0)), time.perf_counter() - start)
        return JSONResponse(answer, status_code=status)

    routes = [Route(PREFIX + "{path:path}", endpoint, methods=["GET", "POST", "PUT", "DELETE", "PATCH"])]
    return Starlette(routes=routes + list(extra_routes or []))


def _handle(dispatcher: Dispatcher, handler: Callable[[Call], Any], request: Request, raw: bytes) -> tuple[dict[str, Any], int]:
    try:
        if not raw.strip():
            raise RestError(INCORRECT_FORMAT, f"{_MESSAGES[INCORRECT_FORMAT]}, the request body should be nil, however {{}} is valid")
        try:
            body = json.loads(raw)
        except ValueError as e:
            raise refuse(INCORRECT_FORMAT, f"invalid JSON: {e}") from None
        if not isinstance(body, dict):
            raise refuse(INCORRECT_FORMAT, f"json: cannot unmarshal {_json_type(body)} into the request object")
        db = body.get("dbName") or request.headers.get("db-name") or DEFAULT_DB
        if not isinstance(db, str):
            raise refuse(INCORRECT_FORMAT, f"json: cannot unmarshal {_json_type(db)} into field dbName of type string")
        allow = request.headers.get("accept-type-allow-int64", "true").strip().lower() != "false"
        return handler(Call(dispatcher, body, db, _metadata(request, db), allow)), 200
    except RestError as e:
        return {"code": e.code, "message": e.message}, e.http_status
    except Exception as e:  # noqa: BLE001 - an unexpected failure is an answer, never a dropped connection
        log.exception("REST %s failed", request.url.path)
        return {"code": 65535, "message": f"internal error: {type(e).__name__}: {e}"}, 200


def plain(text: str, status: int = 200) -> PlainTextResponse:
    return PlainTextResponse(text, status_code=status)
