"""The HTTP port of ``keeldb serve --http-port``: the REST API v2 (``server/rest.py``),
``/metrics`` and ``/healthz``, a Starlette app on uvicorn in a thread of the server.

The socket is bound here, before anything starts, so a busy port is a startup error and
``--http-port 0`` can print the port it got. With ``--tls-cert``/``--tls-key`` the HTTP
port serves HTTPS with the same certificate (and ``--tls-ca`` requires client
certificates), so REST is never the plaintext side door of a TLS server. ``/metrics`` and
``/healthz`` need no credentials, as on Milvus's metrics port (9091): they carry counts and
timings, no data.
"""

from __future__ import annotations

import asyncio
import errno
import socket
import ssl
import threading

import uvicorn
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from keeldb.errors import KeelError
from keeldb.server.inprocess import Dispatcher
from keeldb.server.metrics import Health, Metrics
from keeldb.server.rest import build_app


class HttpStartupError(KeelError):
    """The HTTP port cannot be served (busy); ``keeldb serve`` prints it as one line."""


class HttpServer:
    def __init__(self, dispatcher: Dispatcher, metrics: Metrics, health: Health, host: str, port: int, security: object) -> None:
        async def metrics_page(request: Request) -> Response:
            body, content_type = metrics.exposition()
            return Response(body, media_type=content_type)

        async def healthz(request: Request) -> Response:
            serving, why = health.check()
            return PlainTextResponse(why, status_code=200 if serving else 503)

        app = build_app(
            dispatcher,
            [Route("/metrics", metrics_page, methods=["GET"]), Route("/healthz", healthz, methods=["GET"])],
            observe=metrics.observe_http,
        )
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        # IPPROTO_TCP explicitly: asyncio turns Nagle's algorithm off only on sockets whose
        # proto says TCP, and a response written in two parts (headers, body) would
        # otherwise wait ~40 ms for the client's delayed ACK on every keep-alive request.
        self._sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self._sock.bind((host.strip("[]"), port))
        except OSError as e:
            self._sock.close()
            if e.errno == errno.EADDRINUSE:
                raise HttpStartupError(f"HTTP port {port} is already in use") from None
            raise HttpStartupError(f"cannot listen on {host}:{port} for HTTP: {e.strerror}") from None
        self._sock.listen(512)
        self.port = int(self._sock.getsockname()[1])
        cert, key, ca = (getattr(security, k, None) for k in ("tls_cert", "tls_key", "tls_ca"))
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", timeout_graceful_shutdown=10,
            ssl_certfile=str(cert) if cert else None, ssl_keyfile=str(key) if key else None,
            ssl_ca_certs=str(ca) if ca else None, ssl_cert_reqs=ssl.CERT_REQUIRED if ca else ssl.CERT_NONE,
        )  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="keeldb-http", daemon=True)

    def _run(self) -> None:
        asyncio.run(self._server.serve(sockets=[self._sock]))

    def start(self) -> None:
        self._thread.start()
        while not self._server.started and self._thread.is_alive():
            self._thread.join(0.01)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(15)
        self._sock.close()
