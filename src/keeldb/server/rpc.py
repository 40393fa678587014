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

from keeldb.errors import KeelError
from keeldb.server import convert

log = logging.getLogger("keeldb.server.service")


def rpc(response: type[Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Run a handler; on any error answer ``response(status=...)`` (or the Status itself)."""

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def handler(self: Any, request: Any, context: grpc.ServicerContext) -> Any:
            try:
                self._check_database(context)
                return fn(self, request, context)
            except Exception as e:  # noqa: BLE001 - see module docstring
                if not isinstance(e, KeelError):
                    log.exception("%s failed", fn.__name__)
                st = convert.status(e)
                return st if response is common_pb2.Status else response(status=st)

        return handler

    return wrap


