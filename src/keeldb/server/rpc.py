"""The wrapper every MilvusService handler runs in.

Any exception becomes a ``common.Status`` in the RPC's own response: an exception escaping
a gRPC servicer becomes status UNKNOWN, which pymilvus retries for minutes
(docs/research/pymilvus-wire.md §3).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2

from keeldb.engine import namespace
from keeldb.errors import KeelError
from keeldb.server import convert

log = logging.getLogger("keeldb.server.service")


# RPCs whose request's db_name is the database they act on, not the one they run in.
_TARGETS = frozenset({"CreateDatabase", "DropDatabase", "DescribeDatabase", "AlterDatabase"})


def call_database(rpc: str, request: Any, context: grpc.ServicerContext) -> str:
    """The database a call runs in: its request's ``db_name`` when set, else pymilvus's
    ``dbname`` header (``using_database``, ``db_name=`` in the client), else ``default``."""
    if rpc not in _TARGETS:
        db = getattr(request, "db_name", "") if "db_name" in request.DESCRIPTOR.fields_by_name else ""
        if db:
            return str(db)
    for k, v in context.invocation_metadata() or ():
        if k == "dbname" and v:
            return str(v)
    return namespace.DEFAULT_DB


def rpc(response: type[Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run a handler; on any error answer ``response(status=...)`` (or the Status itself)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def handler(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            token = namespace.current_database.set(call_database(fn.__name__, request, context))
            try:
                return fn(self, request, context)
            except Exception as e:  # noqa: BLE001 - see module docstring
                if not isinstance(e, KeelError):
                    log.exception("%s failed", fn.__name__)
                st = convert.status(e)
                return st if response is common_pb2.Status else response(status=st)
            finally:
                namespace.current_database.reset(token)

        return handler

    return wrap


