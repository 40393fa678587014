"""Optional authentication, checked on every call.

pymilvus sends ``authorization: base64("user:password")`` (or base64 of a token) on every
RPC, Connect included (docs/research/pymilvus-wire.md §2). A missing or wrong credential is
answered the way Milvus answers it: gRPC status UNAUTHENTICATED — not a ``common.Status``
error, which pymilvus would retry.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable
from typing import Any

import grpc


def _deny(message: str) -> grpc.RpcMethodHandler:
    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(handler)


class AuthInterceptor(grpc.ServerInterceptor):
    def __init__(self, credential: str) -> None:
        """``credential`` is ``user:password`` or a token, compared in constant time."""
        self._expected = credential.encode()

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        header = dict(details.invocation_metadata or ()).get("authorization")
        if not header:
            return _deny("missing authorization in header")
        try:
            given = base64.b64decode(header, validate=True)
        except (binascii.Error, ValueError):
            return _deny("malformed authorization header")
        if not hmac.compare_digest(given, self._expected):
            return _deny("auth check failure, please check username and password are correct")
        return continuation(details)
