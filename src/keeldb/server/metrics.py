"""``/metrics`` (Prometheus text format) and health: what an operator of ``keeldb serve``
watches.

- Calls: every MilvusService call is counted and timed by :class:`MetricsInterceptor`, the
  outermost gRPC interceptor, per RPC, Milvus status code (``0`` success; a gRPC status
  name such as ``UNAUTHENTICATED`` when the call was aborted) and ``via`` (``grpc``, or
  ``rest`` for the calls the REST API makes in-process); REST requests also per endpoint.
- Data: rows and segments per collection, read at scrape time through the client's public
  calls (a newest-visible snapshot, no waiting for writes).
- The engine: flush, compaction, index-build and recovery durations and the bytes each
  group commit of the log made durable, from ``keeldb.telemetry`` events.
- A cluster node: its shards (writer leases held), acknowledged writes and object-store
  requests (``Node.metrics()``).

Every metric lives in this server's own registry, so two servers in one process (tests)
never share counters.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import grpc
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from pymilvus.grpc_gen import common_pb2

from keeldb import telemetry
from keeldb.engine import namespace

SERVICE_PREFIX = "/milvus.proto.milvus.MilvusService/"
_SECONDS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_BYTES = tuple(float(4 ** i) for i in range(4, 16))  # 256 B .. 1 GiB


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.requests = Counter("keeldb_rpc_requests", "MilvusService calls", ["rpc", "status", "via"], registry=r)
        self.latency = Histogram("keeldb_rpc_duration_seconds", "MilvusService call latency", ["rpc", "via"],
                                 buckets=_SECONDS, registry=r)  # fmt: skip
        self.http = Counter("keeldb_http_requests", "REST API requests", ["endpoint", "code"], registry=r)
        self.http_latency = Histogram("keeldb_http_duration_seconds", "REST API request latency", ["endpoint"],
                                      buckets=_SECONDS, registry=r)  # fmt: skip
        self.durations = {
            event: Histogram(f"keeldb_{event}_duration_seconds", f"{event.replace('_', ' ')} duration",
                             buckets=_SECONDS, registry=r)  # fmt: skip
            for event in (telemetry.FLUSH, telemetry.COMPACTION, telemetry.INDEX_BUILD, telemetry.RECOVERY)
        }
        self.wal_bytes = Counter("keeldb_wal_synced_bytes", "log bytes made durable by group commits", registry=r)
        self.group_commit = Histogram("keeldb_wal_group_commit_bytes", "bytes one group commit made durable",
                                      buckets=_BYTES, registry=r)  # fmt: skip
        self._sources: list[Callable[[], Iterator[Any]]] = []
        r.register(_Gauges(self._sources))
        telemetry.add_sink(self._event)

    def close(self) -> None:
        telemetry.remove_sink(self._event)

    def _event(self, event: str, value: float) -> None:
        if event == telemetry.WAL_SYNC_BYTES:
            self.wal_bytes.inc(value)
            self.group_commit.observe(value)
        elif event in self.durations:
            self.durations[event].observe(value)

    def watch_client(self, client: Any) -> None:
        """Rows and segments per collection of ``client`` (every database), at scrape time."""
        self._sources.append(lambda: _collection_gauges(client))

    def watch_node(self, node: Any) -> None:
        self._sources.append(lambda: _node_gauges(node))

    def observe_http(self, endpoint: str, code: int, seconds: float) -> None:
        self.http.labels(endpoint, str(code)).inc()
        self.http_latency.labels(endpoint).observe(seconds)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


class _Gauges:
    """A collector of gauges computed when scraped."""

    def __init__(self, sources: list[Callable[[], Iterator[Any]]]) -> None:
        self.sources = sources

    def collect(self) -> Iterator[Any]:
        for source in list(self.sources):
            yield from source()


def _collection_gauges(client: Any) -> Iterator[Any]:
    rows = GaugeMetricFamily("keeldb_collection_rows", "live rows of a collection", labels=["db", "collection"])
    segments = GaugeMetricFamily("keeldb_collection_segments", "segments of a collection (sealed and growing)",
                                 labels=["db", "collection"])  # fmt: skip
    try:
        databases = client.list_databases()
    except Exception:  # noqa: BLE001 - a scrape never fails because the data is busy
        databases = []
    for db in databases:
        token = namespace.current_database.set(db)  # as the RPC wrapper scopes a call
        try:
            for name in client.list_collections():
                try:
                    if not client.collection_entry(name).is_loaded:
                        continue  # a released collection is not opened for a scrape
                    snap = client.snapshot(name, guarantee_ts=1)
                except Exception:  # noqa: BLE001, S112 - dropped meanwhile, or not readable now
                    continue
                rows.add_metric([db, name], snap.live_count())
                segments.add_metric([db, name], len(snap.views))
        except Exception:  # noqa: BLE001, S112
            continue
        finally:
            namespace.current_database.reset(token)
    yield rows
    yield segments


def _node_gauges(node: Any) -> Iterator[Any]:
    try:
        m = node.metrics()
    except Exception:  # noqa: BLE001
        return
    g = GaugeMetricFamily("keeldb_cluster_shards_owned", "shards whose writer lease this node holds", labels=["node"])
    g.add_metric([m["node"]], len(m.get("shards", ())))
    yield g
    a = GaugeMetricFamily("keeldb_cluster_acknowledged_writes", "writes this node acknowledged", labels=["node"])
    a.add_metric([m["node"]], m.get("acknowledged_writes", 0))
    yield a
    requests = m.get("object_store_requests") or {}
    if isinstance(requests, dict):
        o = GaugeMetricFamily("keeldb_cluster_object_store_requests", "object-store requests by kind", labels=["node", "kind"])
        for kind, n in requests.items():
            if isinstance(n, int | float):
                o.add_metric([m["node"], str(kind)], n)
        yield o


class MetricsInterceptor(grpc.ServerInterceptor):
    """Counts and times MilvusService calls (outermost: refusals by the access check count)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        handler = continuation(details)
        method: str = details.method
        if handler is None or handler.unary_unary is None or not method.startswith(SERVICE_PREFIX):
            return handler
        rpc = method[len(SERVICE_PREFIX) :]
        via = "rest" if any(k == "keeldb-via" for k, _ in details.invocation_metadata or ()) else "grpc"
        inner = handler.unary_unary
        m = self.metrics

        def run(request: Any, context: Any) -> Any:
            start = time.perf_counter()
            status = "UNKNOWN"
            try:
                reply = inner(request, context)
                status = _status_of(reply)
                return reply
            except grpc.RpcError:
                status = context.code().name if hasattr(context, "code") and context.code() else "ABORTED"
                raise
            except Exception as e:
                code = getattr(e, "code", None)
                status = code.name if isinstance(code, grpc.StatusCode) else type(e).__name__
                raise
            finally:
                m.requests.labels(rpc, status, via).inc()
                m.latency.labels(rpc, via).observe(time.perf_counter() - start)

        return handler._replace(unary_unary=run)


def _status_of(reply: Any) -> str:
    if isinstance(reply, bytes):
        return "forwarded"
    status = reply if isinstance(reply, common_pb2.Status) else getattr(reply, "status", None)
    return str(getattr(status, "code", 0) or getattr(status, "error_code", 0))


class OnlyMilvus(grpc.ServerInterceptor):
    """``inner`` for MilvusService calls only: the health service is answered without
    credentials (as Milvus's /healthz is), whatever ``inner`` would require."""

    def __init__(self, inner: grpc.ServerInterceptor) -> None:
        self.inner = inner

    def intercept_service(self, continuation: Callable[..., Any], details: Any) -> Any:
        if not details.method.startswith(SERVICE_PREFIX):
            return continuation(details)
        return self.inner.intercept_service(continuation, details)


class Health:
    """gRPC health checking (``grpc.health.v1``) and ``/healthz``: SERVING while the
    server accepts calls and its client answers, NOT_SERVING once it stops."""

    def __init__(self, client: Any) -> None:
        from grpc_health.v1 import health, health_pb2

        self.client = client
        self._pb = health_pb2
        self.servicer = health.HealthServicer()
        self._lock = threading.Lock()
        self.set(True)

    def set(self, serving: bool) -> None:
        state = self._pb.HealthCheckResponse.SERVING if serving else self._pb.HealthCheckResponse.NOT_SERVING
        with self._lock:
            for name in ("", "milvus.proto.milvus.MilvusService"):
                self.servicer.set(name, state)
        self.serving = serving

    def check(self) -> tuple[bool, str]:
        if not self.serving:
            return False, "stopping"
        try:
            self.client.list_databases()
        except Exception as e:  # noqa: BLE001
            return False, f"{type(e).__name__}: {e}"
        return True, "OK"
