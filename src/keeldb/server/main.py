"""Running the server: bind, serve, and stop cleanly on SIGTERM.

SIGTERM (and SIGINT): stop accepting calls, let calls in flight finish (up to a grace
period), then close the engine, which fsyncs the log. SIGKILL needs no handling: nothing
acknowledged is ever only in memory.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import signal
import socket
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_health.v1 import health_pb2_grpc
from pymilvus.grpc_gen import milvus_pb2_grpc

from keeldb.client import Client
from keeldb.errors import KeelError
from keeldb.server.access import AccessInterceptor
from keeldb.server.auth import AuthInterceptor
from keeldb.server.deployment_rpc import Members, standalone
from keeldb.server.inprocess import Dispatcher
from keeldb.server.metrics import Health, Metrics, MetricsInterceptor, OnlyMilvus
from keeldb.server.service import Service

log = logging.getLogger(__name__)
DEFAULT_MAX_MESSAGE_MB = 64  # Milvus's proxy default (proxy.grpc.serverMaxRecvSize)


class StartupError(KeelError):
    """The server cannot start (a busy port, ...); ``keeldb serve`` prints it as one line."""


@dataclass(frozen=True)
class Security:
    """Who may call, and over what. ``authorization``: Milvus's users, roles and privileges
    (server/access.py), root's password set by ``root_password`` at the first start (on
    loopback it may stay Milvus's default, 'Milvus'). ``tls_cert``/``tls_key``: serve TLS
    (pymilvus: ``secure=True`` / an https uri, ``server_pem_path``); ``tls_ca``: also require
    client certificates signed by it. ``insecure``: allow a network address without
    authorization."""

    authorization: bool = False
    root_password: str | None = None
    tls_cert: Path | None = None
    tls_key: Path | None = None
    tls_ca: Path | None = None
    insecure: bool = False


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_security(host: str, security: Security, auth: str | None) -> None:
    """Refuse to put an unauthenticated server on a network address unless asked to."""
    if not is_loopback(host) and not security.authorization and not security.insecure:
        raise StartupError(
            f"refusing to listen on {host} without --authorization: anyone who can reach it could read and drop "
            "every collection (pass --authorization, or --insecure on a trusted network)"
        )
    if bool(security.tls_cert) != bool(security.tls_key):
        raise StartupError("--tls-cert and --tls-key go together")
    if security.tls_ca and not security.tls_cert:
        raise StartupError("--tls-ca (client certificates) needs --tls-cert and --tls-key")
    if auth and security.authorization:
        raise StartupError("--auth (one shared user:password) and --authorization (users and roles) exclude each other")


def _credentials(security: Security) -> grpc.ServerCredentials | None:
    if not security.tls_cert or not security.tls_key:
        return None
    try:
        pair = (Path(security.tls_key).read_bytes(), Path(security.tls_cert).read_bytes())
        ca = Path(security.tls_ca).read_bytes() if security.tls_ca else None
    except OSError as e:
        raise StartupError(f"cannot read a TLS file: {e.filename}: {e.strerror}") from None
    return grpc.ssl_server_credentials([pair], root_certificates=ca, require_client_auth=ca is not None)


def _peer_credentials(security: Security) -> grpc.ChannelCredentials | None:
    """How a cluster node calls another (forwarding a call to a collection's writer): over
    TLS when the nodes serve TLS, trusting ``--tls-ca`` (and presenting this node's own
    certificate, which the other node requires then) or, without a CA, the node's own
    certificate -- so without --tls-ca the nodes share one (self-signed) certificate."""
    if not security.tls_cert or not security.tls_key:
        return None
    try:
        cert, key = Path(security.tls_cert).read_bytes(), Path(security.tls_key).read_bytes()
        ca = Path(security.tls_ca).read_bytes() if security.tls_ca else None
    except OSError as e:
        raise StartupError(f"cannot read a TLS file: {e.filename}: {e.strerror}") from None
    if ca is None:
        return grpc.ssl_channel_credentials(root_certificates=cert)
    return grpc.ssl_channel_credentials(root_certificates=ca, private_key=key, certificate_chain=cert)


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
    security: Security = Security(),
    members: Members | None = None,
    metrics: Metrics | None = None,
) -> Built:
    """``members``: the read nodes GetReplicas reports (a cluster's); this server by default.
    ``metrics``: count and time every call into it (``/metrics``). Every interceptor sees
    MilvusService calls only: the health service answers without credentials."""
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
    interceptors: list[Any] = [AuthInterceptor(auth)] if auth else []
    if security.authorization:
        try:
            client.initialize_access(security.root_password, network=not is_loopback(host))
        except KeelError as e:
            raise StartupError(e.message) from None
        interceptors.append(AccessInterceptor(client))
    interceptors += extra_interceptors
    if metrics is not None:
        interceptors.insert(0, MetricsInterceptor(metrics))
    interceptors = [OnlyMilvus(i) for i in interceptors]
    credentials = _credentials(security)
    server = grpc.server(ThreadPoolExecutor(max_workers=workers), interceptors=interceptors, options=options)
    service = Service(client, members)
    milvus_pb2_grpc.add_MilvusServiceServicer_to_server(service, server)
    health = Health(client)
    health_pb2_grpc.add_HealthServicer_to_server(health.servicer, server)
    try:
        address = f"{host}:{port}"
        bound = server.add_secure_port(address, credentials) if credentials else server.add_insecure_port(address)
    except RuntimeError:  # grpcio: "Failed to bind to address ..."
        bound = 0
    if not bound:
        # check_port_free passed a moment ago, so another process has just taken it.
        raise StartupError(f"port {port} is already in use" if port else f"cannot listen on {host}")
    if members is None:
        service.members = standalone(f"{host}:{bound}")
    return Built(server, bound, Dispatcher(service, interceptors), health)


@dataclass
class Built:
    """A gRPC server ready to start, and what the HTTP side needs of it: the dispatcher
    that runs MilvusService calls through its interceptors (the REST API) and its health."""

    server: grpc.Server
    port: int
    dispatcher: Dispatcher
    health: Health


def serve(
    data: Path,
    host: str = "127.0.0.1",
    port: int = 19530,
    *,
    auth: str | None = None,
    max_message_mb: int = DEFAULT_MAX_MESSAGE_MB,
    grace_seconds: float = 10.0,
    cluster: ClusterOptions | None = None,
    security: Security = Security(),
    http_port: int | None = None,
) -> None:
    """``http_port``: also serve the REST API v2, ``/metrics`` and ``/healthz`` there
    (server/http.py; 0 picks a free port). None: gRPC only."""
    # grpc logs every UNIMPLEMENTED call (aliases, compaction, ...) with a traceback; the
    # client already gets a clear status, so keep the server's log for real problems.
    logging.getLogger("grpc._server").setLevel(logging.CRITICAL)
    check_security(host, security, auth)
    if port:
        check_port_free(host, port)
    if http_port:
        check_port_free(host, http_port)
    metrics = Metrics()  # before the data is opened: recovery is timed too
    node = None
    if cluster is None:
        client = Client(str(data))
        try:
            built = build_server(
                client, host, port, auth=auth, max_message_mb=max_message_mb, security=security, metrics=metrics
            )
        except BaseException:
            client.close()
            raise
    else:
        node, client, built = _cluster_server(data, host, port, cluster, auth, max_message_mb, security, metrics)
        metrics.watch_node(node)
    metrics.watch_client(client)
    web = None
    if http_port is not None:
        from keeldb.server.http import HttpServer

        try:
            web = HttpServer(built.dispatcher, metrics, built.health, host, http_port, security)
        except BaseException:
            client.close()
            if node is not None:
                node.close()
            raise
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    built.server.start()
    scheme = " (TLS)" if security.tls_cert else ""
    if web is not None:
        web.start()
        print(f"keeldb serve HTTP on {host}:{web.port}{scheme} (REST API v2, /metrics, /healthz)", flush=True)
    print(f"keeldb serve listening on {host}:{built.port}{scheme} (data in {data})", flush=True)
    stop.wait()
    built.health.set(False)
    if web is not None:
        web.stop()
    built.server.stop(grace_seconds).wait()
    client.close()
    if node is not None:
        node.close()
    metrics.close()
    print("keeldb serve stopped cleanly", flush=True)


def _cluster_server(
    data: Path, host: str, port: int, opts: ClusterOptions, auth: str | None, max_message_mb: int,
    security: Security, metrics: Metrics | None = None,
) -> tuple[Any, Client, Built]:
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
        built = build_server(
            node.client, host, port, auth=auth, max_message_mb=max_message_mb,
            extra_interceptors=(RoutingInterceptor(node, _peer_credentials(security)),), security=security,
            members=lambda: [(i + 1, a) for i, (_, a, roles) in enumerate(node.members()) if "read" in roles],
            metrics=metrics,
        )
    except BaseException:
        node.close()
        raise
    return node, node.client, built
