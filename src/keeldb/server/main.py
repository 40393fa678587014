"""Running the server: bind, serve, and stop cleanly on SIGTERM.

SIGTERM (and SIGINT): stop accepting calls, let calls in flight finish (up to a grace
period), then close the engine, which fsyncs the log. SIGKILL needs no handling: nothing
acknowledged is ever only in memory.
"""

from __future__ import annotations

import logging
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from pymilvus.grpc_gen import milvus_pb2_grpc

from keeldb.client import Client
from keeldb.server.auth import AuthInterceptor
from keeldb.server.service import Service

log = logging.getLogger(__name__)
DEFAULT_MAX_MESSAGE_MB = 64  # Milvus's proxy default (proxy.grpc.serverMaxRecvSize)


def build_server(
    client: Client,
    host: str,
    port: int,
    *,
    auth: str | None = None,
    max_message_mb: int = DEFAULT_MAX_MESSAGE_MB,
    workers: int = 32,
) -> tuple[grpc.Server, int]:
    limit = max_message_mb * 1024 * 1024
    options = [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        # pymilvus pings every 10 s, also while idle (§1 of the wire notes).
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ("grpc.http2.max_ping_strikes", 0),
    ]
    interceptors = [AuthInterceptor(auth)] if auth else []
    server = grpc.server(ThreadPoolExecutor(max_workers=workers), interceptors=interceptors, options=options)
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(Service(client), server)
    bound = server.add_insecure_port(f"{host}:{port}")
    if not bound:
        raise OSError(f"cannot listen on {host}:{port}")
    return server, bound


def serve(
    data: Path,
    host: str = "127.0.0.1",
    port: int = 19530,
    *,
    auth: str | None = None,
    max_message_mb: int = DEFAULT_MAX_MESSAGE_MB,
    grace_seconds: float = 10.0,
) -> None:
    # grpc logs every UNIMPLEMENTED call (aliases, compaction, ...) with a traceback; the
    # client already gets a clear status, so keep the server's log for real problems.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    client = Client(str(data))
    server, bound = build_server(client, host, port, auth=auth, max_message_mb=max_message_mb)
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    server.start()
    print(f"keeldb serve listening on {host}:{bound} (data in {data})", flush=True)
    stop.wait()
    server.stop(grace_seconds).wait()
    client.close()
    print("keeldb serve stopped cleanly", flush=True)
