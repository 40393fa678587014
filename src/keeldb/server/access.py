"""Authentication and authorization of every call, as Milvus does them with
``common.security.authorizationEnabled``: who is calling (the ``authorization`` header,
checked against the stored users), then whether that user may make this call (the privilege
the RPC needs, on the collection or database it names, from the user's roles).

Answers are Milvus's: a missing or wrong credential is gRPC UNAUTHENTICATED with one
message whichever part was wrong (an unknown user and a wrong password read the same, and
take the same time: ``passwords.burn_time``); a call the user may not make is gRPC
PERMISSION_DENIED, ``PrivilegeSearch: permission deny to bob in the `default` database``.
Both are gRPC statuses, not a ``common.Status``, so pymilvus does not retry them.

A password check costs ~50 ms (scrypt), so a verified credential is remembered with the
password hash it was verified against: a changed password or a dropped user no longer
matches that hash, so the next call (a session that has "expired") is checked again and
refused. The remembered digest is a SHA-256 of the header, never the password.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import threading
from collections.abc import Callable
from contextvars import ContextVar
from typing import Any

import grpc

from keeldb.access import privileges as P
from keeldb.access.state import AccessState
from keeldb.client import Client

AUTH_FAILED = "auth check failure, please check username and password are correct"
DEFAULT_DB = "default"
MAX_REMEMBERED = 10_000
# The authenticated user of the call in progress (None: the server checks no users). Set
# around each handler by the interceptor; ShowCollections and ListDatabases list only what
# it may see (``AccessState.visible_collections``).
caller: ContextVar[str | None] = ContextVar("keeldb_caller", default=None)


def visible_collections(client: Client, names: list[str], db: str) -> list[str]:
    """``names`` (collections of ``db``) less those the caller may not see."""
    user = caller.get()
    seen = None if user is None else client.access_state().visible_collections(user, db)
    return names if seen is None else [n for n in names if n in seen]


def visible_databases(client: Client, names: list[str]) -> list[str]:
    """``names`` (databases) less those the caller may not see."""
    user = caller.get()
    seen = None if user is None else client.access_state().visible_databases(user)
    return names if seen is None else [n for n in names if n in seen]


class AccessInterceptor(grpc.ServerInterceptor):
    """Checks every call against ``client``'s users and grants (``Client.access_state``)."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self._verified: dict[bytes, tuple[str, str]] = {}  # sha256(header) -> (user, password hash)
        self._lock = threading.Lock()
        self._requirements = P.requirements()

    # -- who --------------------------------------------------------------------------

    def authenticate(self, header: str | None, state: AccessState) -> str | None:
        """The user ``header`` proves to be, or None."""
        if not header:
            return None
        digest = hashlib.sha256(header.encode()).digest()
        known = self._verified.get(digest)
        if known is not None:
            user = state.users.get(known[0])
            if user is not None and user.password_hash == known[1]:
                return known[0]
        try:
            text = base64.b64decode(header, validate=True).decode("utf-8")
        except (binascii.Error, ValueError):
            return None
        name, sep, password = text.partition(":")
        if not sep:
            return None  # an API key: keeldb has none
        if not state.authenticate(name, password):
            return None
        with self._lock:
            if len(self._verified) >= MAX_REMEMBERED:
                self._verified.clear()
            self._verified[digest] = (name, state.users[name].password_hash)
        return name

    # -- what ------------------------------------------------------------------------------

    def denied(self, rpc: str, request: Any, user: str, db: str, state: AccessState) -> str | None:
        """Why ``user`` may not make this call (Milvus's message), or None if they may."""
        need = self._requirements.get(rpc)
        if need is None:
            return None  # Milvus checks no privilege for it (Connect, ShowCollections, ...)
        names = need.object_names(request)
        if need.object_type == P.USER and names == [user]:
            return None  # one's own user object: change one's password, describe oneself
        own_roles = state.users[user].roles if user in state.users else ()
        if rpc == "SelectGrant" and request.entity.role.name in {*own_roles, "public"}:
            return None  # the grants of a role one holds
        db = getattr(request, "db_name", "") or db
        for name in names:
            if not state.allows(user, need.object_type, name, db, need.privilege):
                return f"{P.PREFIX}{need.privilege}: permission deny to {user} in the `{db}` database"
        return None

    # -- the interceptor ----------------------------------------------------------------

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        meta = dict(details.invocation_metadata or ())
        state = self.client.access_state()
        header = meta.get("authorization")
        if not header:
            return _abort(grpc.StatusCode.UNAUTHENTICATED, "missing authorization in header")
        user = self.authenticate(header, state)
        if user is None:
            # A user created (or a password changed) through another cluster node a moment
            # ago: this node's copy may be up to a second old. Once, from etcd.
            state = self.client.access_state(fresh=True)
            user = self.authenticate(header, state)
        if user is None:
            return _abort(grpc.StatusCode.UNAUTHENTICATED, AUTH_FAILED)
        handler = continuation(details)
        if handler is None:
            return handler
        rpc = details.method.rsplit("/", 1)[-1]
        db = meta.get("dbname") or DEFAULT_DB
        return _checked(handler, user, lambda request: self.denied(rpc, request, user, db, self.client.access_state()))


def _abort(code: grpc.StatusCode, message: str) -> grpc.RpcMethodHandler:
    def handler(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    return grpc.unary_unary_rpc_method_handler(handler)


def _checked(handler: grpc.RpcMethodHandler, user: str, denied: Callable[[Any], str | None]) -> grpc.RpcMethodHandler:
    """``handler`` with the privilege check run on its request first, and ``caller`` set
    to ``user`` while it runs."""

    def guard(behavior: Callable[..., Any]) -> Callable[..., Any]:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            why = denied(request)
            if why is not None:
                context.abort(grpc.StatusCode.PERMISSION_DENIED, why)
            token = caller.set(user)
            try:
                return behavior(request, context)
            finally:
                caller.reset(token)

        return run

    if handler.unary_unary is not None:
        return handler._replace(unary_unary=guard(handler.unary_unary))
    if handler.unary_stream is not None:
        return handler._replace(unary_stream=guard(handler.unary_stream))
    return handler  # MilvusService has no client-streaming RPCs
