"""MilvusService calls made in-process, through the gRPC server's own interceptors.

The REST API (``server/rest.py``) turns each HTTP request into the request message pymilvus
would send and runs it here, as Milvus's REST handlers call its proxy's gRPC handlers. The
call goes through the same chain as one that came over the network -- the metrics
interceptor, ``--auth`` or ``--authorization`` (authentication, then the privilege check on
the request), cluster routing (served here or forwarded to the writer) -- and then the same
servicer method. So validation, error codes, authorization and routing have one code path,
and nothing here knows how any of them works: this module only plays the part of grpcio's
server (resolve the handler through the interceptors, run it with a context).

What it is not: a network hop. No serialization happens (a forwarded cluster call excepted,
which the routing interceptor serializes itself), and no TLS is involved, so the HTTP port
works whatever the gRPC port requires.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf import message_factory
from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

SERVICE = "milvus.proto.milvus.MilvusService"
_DESCRIPTOR = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]


class RpcAborted(Exception):
    """The call was aborted with a gRPC status (``context.abort``), as UNAUTHENTICATED and
    PERMISSION_DENIED are: the REST layer answers it with Milvus's HTTP equivalent."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True)
class _Details:
    """What ``grpc.HandlerCallDetails`` carries, which is all interceptors read."""

    method: str
    invocation_metadata: tuple[tuple[str, str], ...]


class LocalContext:
    """The parts of ``grpc.ServicerContext`` the servicer and the interceptors use."""

    def __init__(self, metadata: Sequence[tuple[str, str]], timeout: float | None) -> None:
        self._metadata = tuple(metadata)
        self._deadline = None if timeout is None else time.monotonic() + timeout

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        return self._metadata

    def abort(self, code: grpc.StatusCode, details: str) -> None:
        raise RpcAborted(code, details)

    def abort_with_status(self, status: Any) -> None:
        raise RpcAborted(status.code, status.details)

    def time_remaining(self) -> float | None:
        return None if self._deadline is None else max(0.0, self._deadline - time.monotonic())

    def is_active(self) -> bool:
        return True

    def peer(self) -> str:
        return "inprocess:rest"

    def set_code(self, code: grpc.StatusCode) -> None:
        pass

    def set_details(self, details: str) -> None:
        pass

    def set_trailing_metadata(self, metadata: Any) -> None:
        pass

    def send_initial_metadata(self, metadata: Any) -> None:
        pass

    def add_callback(self, callback: Callable[[], None]) -> bool:
        return False


class _Capture:
    """Stands in for a ``grpc.Server`` to collect the servicer's method handlers."""

    def __init__(self) -> None:
        self.generic: Any = None

    def add_generic_rpc_handlers(self, handlers: Sequence[Any]) -> None:
        self.generic = handlers[0]

    def add_registered_method_handlers(self, name: str, handlers: Any) -> None:
        pass


def reply_type(rpc: str) -> Any:
    """The response message class of a MilvusService RPC."""
    return message_factory.GetMessageClass(_DESCRIPTOR.methods_by_name[rpc].output_type)


class Dispatcher:
    """Runs MilvusService RPCs on ``servicer`` through ``interceptors`` (outermost first,
    as ``grpc.server(interceptors=...)`` applies them)."""

    def __init__(self, servicer: Any, interceptors: Sequence[grpc.ServerInterceptor]) -> None:
        capture = _Capture()
        milvus_pb2_grpc.add_MilvusServiceServicer_to_server(servicer, capture)
        self._generic = capture.generic
        self._interceptors = list(interceptors)

    def _resolve(self, details: _Details) -> Any:
        def at(i: int, d: Any) -> Any:
            if i == len(self._interceptors):
                return self._generic.service(d)
            return self._interceptors[i].intercept_service(lambda nd: at(i + 1, nd), d)

        return at(0, details)

    def call(
        self, rpc: str, request: Any, metadata: Sequence[tuple[str, str]] = (), timeout: float | None = None
    ) -> Any:
        """The reply message of ``rpc``; raises :class:`RpcAborted` when the call is aborted
        with a gRPC status (unauthenticated, permission denied, unavailable, ...)."""
        details = _Details(f"/{SERVICE}/{rpc}", tuple(metadata))
        handler = self._resolve(details)
        if handler is None or handler.unary_unary is None:
            raise RpcAborted(grpc.StatusCode.UNIMPLEMENTED, f"{rpc} is not a unary MilvusService method")
        reply = handler.unary_unary(request, LocalContext(metadata, timeout))
        if isinstance(reply, bytes):  # forwarded to a cluster's writer: its serialized reply
            return reply_type(rpc).FromString(reply)
        return reply
