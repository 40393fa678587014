"""Every MilvusService RPC keeldb does not implement answers a Milvus status, not gRPC's
bare UNIMPLEMENTED ("Method not implemented!").

pymilvus turns a bare UNIMPLEMENTED into an exception that names no feature, and some
code paths retry it; Milvus itself answers an RPC it cannot serve with its
``ErrServiceUnimplemented`` (code 10). ``install`` gives ``Service`` a handler for each
RPC of the service descriptor that ``Service`` does not define: it answers the RPC's own
response message with that status and a reason naming the feature (aliases, databases,
RBAC, ...), so the client's error says what is missing. The list follows the protobuf
descriptor shipped with pymilvus, so an RPC added there is covered without a code change
(``tests/test_server_unimplemented.py`` checks every one).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import grpc
from google.protobuf.message_factory import GetMessageClass
from pymilvus.grpc_gen import common_pb2, milvus_pb2

UNIMPLEMENTED_CODE = 10  # Milvus's merr.ErrServiceUnimplemented
# What the client is told is missing, by the first matching word of the RPC's name.
_FEATURES: tuple[tuple[tuple[str, ...], str], ...] = (
    (("RowPolic",), "row-level security policies are not supported by keeldb (users, roles and privileges are)"),
    (("UserTags", "UsersWithTag"), "user tags are not supported by keeldb (users, roles and privileges are)"),
    (("RBAC",), "backing up and restoring RBAC metadata is not supported by keeldb (it is in the catalog, "
     "which a copy of the data directory carries)"),
    (("AlterRole",), "role descriptions are not supported by keeldb (roles are)"),
    (("ResourceGroup", "TransferNode", "TransferReplica", "LoadBalance"),
     "keeldb has one resource group, __default_resource_group, and one replica of each loaded collection "
     "(list_resource_groups, describe_resource_group, describe_replica); changing groups or placement does not apply"),
    (("PhraseMatch",), "computing a phrase-match slop is not supported by keeldb (phrase_match filters are)"),
    (("Import",), "bulk import is not supported by keeldb yet"),
    (("Snapshot",), "snapshots are not supported by keeldb yet"),
    (("Namespace",), "namespaces are not supported by keeldb"),
    (("Function", "AlterCollectionSchema"), "schema functions are not supported by keeldb"),
    (("StructField",), "struct array fields are not supported by keeldb"),
    (("Truncate",), "truncate_collection is not supported by keeldb yet (drop and create the collection)"),
    (("FileResource",), "file resources are not supported by keeldb"),
    (("Replicate", "DumpMessages"), "cross-cluster replication is not supported by keeldb"),
    (("Prewarm",), "prewarming does not apply to keeldb (collections are loaded eagerly)"),
    (("External", "Manifest"), "external collections are not supported by keeldb"),
)


def reason(method: str) -> str:
    for words, text in _FEATURES:
        if any(w in method for w in words):
            return f"{method}: {text}"
    return f"{method} is not supported by keeldb"


def unimplemented_status(method: str) -> common_pb2.Status:
    return common_pb2.Status(code=UNIMPLEMENTED_CODE, error_code=common_pb2.ErrorCode.UnexpectedError, reason=reason(method))


def _handler(method: str, out: Any, streaming: bool) -> Callable[..., Any]:
    """The answer: the response message with a status field set, or the Status itself;
    a message without a status field (there are a few internal ones) gets gRPC
    UNIMPLEMENTED with the same reason."""
    has_status = "status" in out.DESCRIPTOR.fields_by_name

    def answer(context: grpc.ServicerContext) -> Any:
        st = unimplemented_status(method)
        if out is common_pb2.Status:
            return st
        if has_status:
            return out(status=st)
        context.abort(grpc.StatusCode.UNIMPLEMENTED, st.reason)
        return None  # pragma: no cover - abort raises

    if streaming:

        def stream(self: Any, request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            yield answer(context)

        stream.__name__ = method
        return stream

    def unary(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
        return answer(context)

    unary.__name__ = method
    return unary


def missing(cls: type) -> list[str]:
    """The RPCs of MilvusService that ``cls`` (or a keeldb base) does not define."""
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    own = {name for klass in cls.__mro__ if klass.__module__.startswith("keeldb.") for name in vars(klass)}
    return [m.name for m in service.methods if m.name not in own]


def install(cls: type) -> type:
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    by_name = {m.name: m for m in service.methods}
    for name in missing(cls):
        m = by_name[name]
        setattr(cls, name, _handler(name, GetMessageClass(m.output_type), m.server_streaming))
    return cls
