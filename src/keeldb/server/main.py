"""Running the server: bind, serve, and stop cleanly on SIGTERM.

SIGTERM (and SIGINT): stop accepting calls, let calls in flight finish (up to a grace
period), then close the engine, which fsyncs the log. SIGKILL needs no handling: nothing
acknowledged is ever only in memory.
"""

from __future__ import annotations

import errno
import logging
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2_grpc

from keeldb.client import Client
from keeldb.errors import KeelError
from keeldb.server.auth import AuthInterceptor
from keeldb.server.service import Service

log = logging.getLogger(__name__)
DEFAULT_MAX_MESSAGE_MB = 64  # Milvus's proxy default (proxy.grpc.serverMaxRecvSize)


class StartupError(KeelError):
    """The server cannot start (a busy port, ...); ``keeldb serve`` prints it as one line."""


def check_port_free(host: str, port: int) -> None:
    """Refuse a port another process listens on, before opening any data.

    grpcio sets SO_REUSEPORT on its listening sockets by default, so a second server on the
    same port would start silently and the kernel would hand it a share of the new
    connections: clients would see two different databases at one address. Our servers turn
    SO_REUSEPORT off (``build_server``), and this check gives the one clear line; a bind
    with SO_REUSEADDR still succeeds over connections lingering in TIME_WAIT."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise StartupError(f"port {port} is already in use") from None
            raise StartupError(f"cannot listen on {host}:{port}: {e.strerror}") from None


@dataclass(frozen=True)
class ClusterOptions:
    etcd: str
    storage: str
    s3_endpoint: str | None = None
    s3_access_key: str | None = None
    s3_secret_key: str | None = None
    node_id: str | None = None
    roles: tuple[str, ...] = ("write", "read")
    lease_ttl: int = 5
    advertise: str | None = None


def build_server(
    client: Client,
    host: str,
    port: int,
    *,
    auth: str | None = None,
    max_message_mb: int = DEFAULT_MAX_MESSAGE_MB,
    workers: int = 32,
    extra_interceptors: tuple[Any, ...] = (),
) -> tuple[grpc.Server, int]:
    limit = max_message_mb * 1024 * 1024
    options = [
        ("grpc.max_receive_message_length", limit),
        ("grpc.max_send_message_length", limit),
        # pymilvus pings every 10 s, also while idle (§1 of the wire notes).
        ("grpc.keepalive_permit_without_calls", 1),
        ("grpc.http2.min_ping_interval_without_data_ms", 5000),
        ("grpc.http2.max_ping_strikes", 0),
        # One server per port: never share it with another process (see check_port_free).
        ("grpc.so_reuseport", 0),
    ]
    interceptors = ([AuthInterceptor(auth)] if auth else []) + list(extra_interceptors)
    server = grpc.server(ThreadPoolExecutor(max_workers=workers), interceptors=interceptors, options=options)
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(Service(client), server)
    try:
        bound = server.add_insecure_port(f"{host}:{port}")
    except RuntimeError:  # grpcio: "Failed to bind to address ..."
        bound = 0
    if not bound:
        # check_port_free passed a moment ago, so another process has just taken it.
        raise StartupError(f"port {port} is already in use" if port else f"cannot listen on {host}")
    return server, bound


def serve(
    data: Path,
    host: str = "127.0.0.1",
    port: int = 19530,
    *,
    auth: str | None = None,
    max_message_mb: int = DEFAULT_MAX_MESSAGE_MB,
    grace_seconds: float = 10.0,
    cluster: ClusterOptions | None = None,
) -> None:
    # grpc logs every UNIMPLEMENTED call (aliases, compaction, ...) with a traceback; the
    # client already gets a clear status, so keep the server's log for real problems.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    if port:
        check_port_free(host, port)
    node = None
    if cluster is None:
        client = Client(str(data))
        try:
            server, bound = build_server(client, host, port, auth=auth, max_message_mb=max_message_mb)
        except BaseException:
            client.close()
            raise
    else:
        node, client, server, bound = _cluster_server(data, host, port, cluster, auth, max_message_mb)
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
    if node is not None:
        node.close()
    print("keeldb serve stopped cleanly", flush=True)


def _cluster_server(
    data: Path, host: str, port: int, opts: ClusterOptions, auth: str | None, max_message_mb: int
) -> tuple[Any, Client, grpc.Server, int]:
    """Bind first (the node registers the address it is reachable at), then join."""
    from keeldb.cluster.node import Node
    from keeldb.server.routing import RoutingInterceptor

    if port == 0:
        with socket.socket() as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
    address = opts.advertise or f"{host}:{port}"
    node = Node(
        etcd=opts.etcd,
        storage=opts.storage,
        s3_endpoint=opts.s3_endpoint,
        s3_access_key=opts.s3_access_key,
        s3_secret_key=opts.s3_secret_key,
        data_dir=data,
        address=address,
        node_id=opts.node_id or address,
        roles=opts.roles,
        lease_ttl=opts.lease_ttl,
    )
    try:
        server, bound = build_server(
            node.client, host, port, auth=auth, max_message_mb=max_message_mb,
            extra_interceptors=(RoutingInterceptor(node),),
        )
    except BaseException:
        node.close()
        raise
    return node, node.client, server, bound
