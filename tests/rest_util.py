"""A ``keeldb serve --http-port 0`` for the REST tests, and its HTTP base URL."""

from __future__ import annotations

import re
import socket
from collections.abc import Sequence
from typing import Any

import httpx

from tests.server_util import KeelServer

HTTP = re.compile(r"keeldb serve HTTP on (\S+):(\d+)")


def rest_server(*, auth: str | None = None, extra_args: Sequence[str] = ()) -> KeelServer:
    return KeelServer(auth=auth, extra_args=["--http-port", "0", *extra_args])


def http_base(server: KeelServer) -> str:
    m = server.printed(HTTP)
    assert m is not None, "the server did not print its HTTP port"
    return f"http://127.0.0.1:{m.group(2)}"


def client(server: KeelServer) -> httpx.Client:
    """An HTTP client of ``server`` with TCP_NODELAY: httpx writes a request's headers and
    body separately, and Nagle's algorithm would hold the body for the server's delayed ACK
    (~40 ms a call)."""
    transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
    return httpx.Client(base_url=http_base(server), timeout=30, transport=transport)


def post(http: httpx.Client, path: str, body: Any = None, **kw: Any) -> dict[str, Any]:
    """POST ``/v2/vectordb/<path>``; the JSON answer (any HTTP status)."""
    r = http.post(f"/v2/vectordb/{path}", json=body if body is not None else {}, **kw)
    out: dict[str, Any] = r.json()
    out["_http"] = r.status_code
    return out


def data(answer: dict[str, Any]) -> Any:
    assert answer["code"] == 0, answer
    return answer["data"]
