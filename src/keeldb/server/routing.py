"""Any node accepts any call: a gRPC interceptor serves it here or forwards it to the writer.

Server-level code for cluster mode (it speaks gRPC and builds replies with ``convert``):
``cluster/`` never imports ``server/``, and this module imports no more of the cluster than
its errors, so ``keeldb.server`` imports without the cluster extra.

Every Milvus RPC about one collection carries ``collection_name``. Data reads (search,
query, statistics: ``service.READS``) on a node with the read role are answered here, by
the writer's own collection if this node writes it, else by a read replica brought up to
date with the log first (each such handler reads through one ``Client.for_read()``, and
``ClusterDatabase.collection`` serves that call's lookups from a caught-up replica), so
every consistency level means on a cluster what it means on one node. Any other call runs here if this node writes the collection (or can
take it, because nobody does); otherwise it is forwarded, as is, to the writer's address
and its reply passed back.

A forwarded call is marked (``keeldb-forwarded`` metadata) and never forwarded again: if
ownership moved in between, the receiving node answers "not the owner" (code 65535,
outcome unknown) and the client's retry routes afresh — no loops.

When no node can be found to serve a call, it is aborted with UNAVAILABLE (nothing was
sent anywhere; pymilvus retries). When a forward breaks mid-call, the outcome is unknown:
reads are aborted with UNAVAILABLE too, but writes are answered with code 65535, which
pymilvus does not retry (see ``_forward``).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf import message_factory
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from keeldb.cluster.errors import NotOwner
from keeldb.server import convert
from keeldb.server.rpc import call_database
from keeldb.server.service import READS

if TYPE_CHECKING:  # the node needs the cluster extra; routing is handed one
    from keeldb.cluster.node import Node

log = logging.getLogger(__name__)
FORWARDED = "keeldb-forwarded"
_WRITES = {"Insert", "Upsert", "Delete"}
# Data reads (READS) a node with the read role answers from its own replica (node.py, "read
# replicas") instead of forwarding them; everything else about a collection goes to its writer.
_READ_PREFIXES = ("Describe", "Has", "Show", "Get", "List")
_SERVICE = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
_CHANNEL_OPTIONS = [("grpc.max_receive_message_length", 256 << 20), ("grpc.max_send_message_length", 256 << 20)]


def _unknown_outcome(rpc: str, reason: str) -> Any:
    """``rpc``'s reply type carrying code 65535 (Milvus's "unexpected error")."""
    reply = message_factory.GetMessageClass(_SERVICE.methods_by_name[rpc].output_type)
    status = common_pb2.Status(code=65535, error_code=common_pb2.UnexpectedError, reason=reason)
    return status if reply is common_pb2.Status else reply(status=status)


def _collection_of(request: Any) -> str:
    """The one collection a request is about ("" if none, or several: served here)."""
    fields = request.DESCRIPTOR.fields_by_name
    if "collection_name" in fields:
        return str(request.collection_name)
    if "collection_names" in fields and len(request.collection_names) == 1:
        return str(request.collection_names[0])
    if "oldName" in fields:  # RenameCollection
        return str(request.oldName)
    return ""


class RoutingInterceptor(grpc.ServerInterceptor):
    def __init__(self, node: Node, credentials: grpc.ChannelCredentials | None = None) -> None:
        """``credentials``: TLS to the other nodes (server/main.py ``_peer_credentials``),
        None for plaintext."""
        self.node = node
        self._credentials = credentials
        self._channels: dict[str, grpc.Channel] = {}
        self._lock = threading.Lock()

    def _channel(self, address: str) -> grpc.Channel:
        with self._lock:
            ch = self._channels.get(address)
            if ch is None:
                ch = self._channels[address] = (
                    grpc.secure_channel(address, self._credentials, options=_CHANNEL_OPTIONS)
                    if self._credentials is not None
                    else grpc.insecure_channel(address, options=_CHANNEL_OPTIONS)
                )
            return ch

    def drop_channel(self, address: str) -> None:
        with self._lock:
            ch = self._channels.pop(address, None)
        if ch is not None:
            ch.close()

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        method: str = details.method
        rpc = method.rsplit("/", 1)[-1]
        if rpc == "GetMetrics":
            return grpc.unary_unary_rpc_method_handler(
                self._metrics,
                request_deserializer=milvus_pb2.GetMetricsRequest.FromString,
                response_serializer=milvus_pb2.GetMetricsResponse.SerializeToString,
            )
        if rpc == "FlushAll":
            return grpc.unary_unary_rpc_method_handler(
                self._flush_all,
                request_deserializer=milvus_pb2.FlushAllRequest.FromString,
                response_serializer=milvus_pb2.FlushAllResponse.SerializeToString,
            )
        if rpc == "GetFlushAllState":
            return grpc.unary_unary_rpc_method_handler(
                self._flush_all_state,
                request_deserializer=milvus_pb2.GetFlushAllStateRequest.FromString,
                response_serializer=milvus_pb2.GetFlushAllStateResponse.SerializeToString,
            )
        handler = continuation(details)
        if handler is None or handler.unary_unary is None:
            return handler
        if rpc == "GetCompactionState":
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: self._compaction_state(handler.unary_unary, request, context),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        inner = handler.unary_unary
        serialize = handler.response_serializer
        forwarded = any(k == FORWARDED for k, _ in details.invocation_metadata or ())

        def route(request: Any, context: grpc.ServicerContext) -> Any:
            name = _collection_of(request)
            if name:  # the catalog key of the name (or alias) in the call's database
                name = self.node.client.catalog_key(name, call_database(rpc, request, context))
            if name and rpc in READS and self.node.can_read:
                return inner(request, context)
            if name and not forwarded:
                try:
                    target = self.node.route(name)
                except NotOwner as e:
                    context.abort(grpc.StatusCode.UNAVAILABLE, str(e))
                except Exception as e:  # noqa: BLE001 - etcd unreachable and the like
                    context.abort(grpc.StatusCode.UNAVAILABLE, f"cannot route {rpc} for '{name}': {e}")
                if target is not None and target != self.node.address:
                    return self._forward(target, method, request, context)
            response = inner(request, context)
            if rpc in _WRITES and getattr(getattr(response, "status", None), "code", 1) == 0:
                self.node.acknowledged_writes += 1
            return response

        def serialize_any(response: Any) -> bytes:
            return response if isinstance(response, bytes) else serialize(response)

        return grpc.unary_unary_rpc_method_handler(
            route, request_deserializer=handler.request_deserializer, response_serializer=serialize_any
        )

    def _forwarded_metadata(self, context: grpc.ServicerContext) -> list[tuple[str, str]]:
        """The caller's metadata (its credentials and database: the node asked checks them
        again, with the same users and grants from etcd), marked as forwarded."""
        metadata = [(k, v) for k, v in context.invocation_metadata() or () if not k.startswith(":") and k not in ("user-agent", FORWARDED)]
        metadata.append((FORWARDED, self.node.node_id))
        return metadata

    def _forward(self, address: str, method: str, request: Any, context: grpc.ServicerContext) -> Any:
        """The writer's reply, as bytes. If the forward breaks, the outcome is unknown: a
        read is aborted with UNAVAILABLE (pymilvus retries it, harmlessly); anything that
        changes state is answered with code 65535 instead, which pymilvus does not retry —
        its retry of an insert the writer had applied would insert the rows twice (auto_id)
        or be refused as a duplicate key, a false "no"."""
        call = self._channel(address).unary_unary(method, request_serializer=lambda r: r.SerializeToString())
        metadata = self._forwarded_metadata(context)
        remaining = context.time_remaining()
        timeout = min(remaining, 60.0) if remaining is not None else 60.0
        try:
            reply: bytes = call(request, timeout=timeout, metadata=metadata)
            return reply
        except grpc.RpcError as e:
            if e.code() in (grpc.StatusCode.PERMISSION_DENIED, grpc.StatusCode.UNAUTHENTICATED):
                # The writer's own access check refused it before it ran: a known outcome,
                # answered as the writer answered (not retried by pymilvus).
                context.abort(e.code(), e.details())
            self.drop_channel(address)
            why = f"forwarding to the writer at {address} failed ({e.code().name}); outcome unknown"
            rpc = method.rsplit("/", 1)[-1]
            if rpc in READS or rpc.startswith(_READ_PREFIXES):
                context.abort(grpc.StatusCode.UNAVAILABLE, why + ", retry")
            return _unknown_outcome(rpc, why)

    def _at_writer(self, name: str, rpc: str, request: Any, reply_type: Any, local: Callable[[], Any], context: grpc.ServicerContext) -> Any:
        """``local()`` if this node writes ``name`` (or nobody does), else ``rpc`` at the
        writer; either way the reply message."""
        target = self.node.route(name)
        if target is None or target == self.node.address:
            return local()
        reply = self._forward(target, f"/milvus.proto.milvus.MilvusService/{rpc}", request, context)
        return reply_type.FromString(reply) if isinstance(reply, bytes) else reply

    def _flush_all(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Every collection is flushed by its writer, wherever that is; the reply's timestamp
        is the smallest of their flush timestamps (see Service.FlushAll)."""
        stamps = []
        try:
            for name in self.node.client.list_collections():
                req = milvus_pb2.FlushRequest(collection_names=[name])
                reply = self._at_writer(
                    name, "Flush", req, milvus_pb2.FlushResponse,
                    lambda n=name: milvus_pb2.FlushResponse(coll_flush_ts={n: self.node.client.flush(n)}), context,
                )  # fmt: skip
                if reply.status.code:
                    return milvus_pb2.FlushAllResponse(status=reply.status)
                stamps.append(reply.coll_flush_ts[name])
        except Exception as e:  # noqa: BLE001 - answered as a status, like every handler
            return milvus_pb2.FlushAllResponse(status=convert.status(e))
        ts = min(stamps) if stamps else self.node.client.last_timestamp()
        return milvus_pb2.FlushAllResponse(status=convert.status(), flush_all_ts=ts)

    def _flush_all_state(self, request: Any, context: grpc.ServicerContext) -> Any:
        """Flushed when every collection's writer says so."""
        try:
            for name in self.node.client.list_collections():
                req = milvus_pb2.GetFlushStateRequest(collection_name=name, flush_ts=request.flush_all_ts)
                reply = self._at_writer(
                    name, "GetFlushState", req, milvus_pb2.GetFlushStateResponse,
                    lambda n=name: milvus_pb2.GetFlushStateResponse(flushed=self.node.client.flushed(n, request.flush_all_ts)),
                    context,
                )  # fmt: skip
                if reply.status.code or not reply.flushed:
                    return milvus_pb2.GetFlushAllStateResponse(status=reply.status, flushed=False)
        except Exception as e:  # noqa: BLE001
            return milvus_pb2.GetFlushAllStateResponse(status=convert.status(e))
        return milvus_pb2.GetFlushAllStateResponse(status=convert.status(), flushed=True)

    def _compaction_state(self, local: Callable[..., Any], request: Any, context: grpc.ServicerContext) -> Any:
        """A job is known to the writer that ran it, which need not be this node: ask the
        others when this one does not know the id (the request names no collection)."""
        reply = local(request, context)
        if reply.status.code == 0 or any(k == FORWARDED for k, _ in context.invocation_metadata() or ()):
            return reply
        for address in self.node.peers():
            call = self._channel(address).unary_unary(
                "/milvus.proto.milvus.MilvusService/GetCompactionState",
                request_serializer=lambda r: r.SerializeToString(),
                response_deserializer=milvus_pb2.GetCompactionStateResponse.FromString,
            )
            try:
                other = call(request, timeout=10, metadata=self._forwarded_metadata(context))
            except grpc.RpcError:  # a peer going away: ask the next one
                self.drop_channel(address)
                continue
            if other.status.code == 0:
                return other
        return reply

    def _metrics(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.GetMetricsResponse(
            status=convert.status(), response=json.dumps(self.node.metrics()), component_name=self.node.node_id
        )
