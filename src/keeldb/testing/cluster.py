"""A keeldb cluster on this machine: etcd, a SeaweedFS object store and N ``keeldb serve``
nodes, each a process on 127.0.0.1 with its own local data directory and a fixed port (a
restarted node comes back at the same address, so a client's connection stays meaningful).

Used by ``keeldb chaos --target cluster`` (which adds faults: ``keeldb.chaos.targets``), by
the cluster tests and by ``benchmarks/bench_cluster.py``.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from keeldb.testing.ports import HOST, free_ports
from keeldb.testing.process import Process, stop_together
from keeldb.testing.server import KeelServer
from keeldb.testing.testbed import EtcdProcess, ObjectStoreProcess

ETCD = "etcd"
OBJECT_STORE = "object-store"
NODE_STOP_TIMEOUT = 30.0  # seconds the nodes get, together, between SIGTERM and SIGKILL


def node_metrics(address: str, timeout: float = 10.0) -> dict[str, Any]:
    """A cluster node's ``GetMetrics`` answer (``{"node", "object_store_requests",
    "acknowledged_writes", "shards", ...}``). pymilvus has no call for it, so this is a raw
    gRPC stub; ``address`` is ``host:port`` or an ``http://`` URI."""
    import grpc
    from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

    target = address.split("://", 1)[-1].rstrip("/")
    with grpc.insecure_channel(target) as channel:
        stub = milvus_pb2_grpc.MilvusServiceStub(channel)
        request = milvus_pb2.GetMetricsRequest(request='{"metric_type": "system_info"}')
        reply = stub.GetMetrics(request, timeout=timeout)
    if reply.status.code != 0:
        status = f"{reply.status.code} {reply.status.reason}"
        raise RuntimeError(f"GetMetrics on {target} failed: {status}")
    doc: dict[str, Any] = json.loads(reply.response)
    return doc


class LocalCluster:
    """etcd + a SeaweedFS object store + ``nodes`` keeldb nodes (``node0``, ``node1``, ...).

    :meth:`start` brings up whatever is down — the first time everything, later whatever
    :meth:`kill_component` killed and any node that exited by itself meanwhile (noted in
    ``events``). A node comes back with the same node id; with ``empty_disk_restarts`` its
    local directory is deleted first, so everything it serves afterwards must come from etcd
    and the object store. ``start`` returns only when every node answers a Strong
    ``count(*)`` of every collection: a check right after it judges the cluster's data, not
    its recovery.
    """

    def __init__(
        self,
        workdir: Path,
        nodes: int = 3,
        *,
        lease_ttl: int | None = None,
        empty_disk_restarts: bool = False,
        bucket: str = "keeldb",
        prefix: str = "cluster",
        ready_timeout: float = 180.0,
        node_args: Sequence[str] = (),
    ) -> None:
        """``node_args``: added to every node's command line (e.g. ``--authorization``)."""
        if nodes < 1:
            raise ValueError("--nodes must be at least 1")
        self.workdir = workdir
        self.node_ids = [f"node{i}" for i in range(nodes)]
        self.ports = dict(zip(self.node_ids, free_ports(nodes), strict=True))
        self.data_paths = (*(self.node_dir(n) for n in self.node_ids), workdir / "etcd", workdir / "s3")
        self.lease_ttl = lease_ttl
        self.empty_disk_restarts = empty_disk_restarts
        self.bucket, self.prefix = bucket, prefix
        self.ready_timeout = ready_timeout
        self.etcd: EtcdProcess | None = None  # the services and nodes, once started
        self.store: ObjectStoreProcess | None = None
        self.nodes: dict[str, KeelServer] = {}
        self.down: set[str] = set()  # killed by kill_component, not started again yet
        self.events: list[str] = []  # what happened to which component, in order
        self._env: dict[str, str | None] = {}
        self.node_args = list(node_args)

    # -- addresses ----------------------------------------------------------------------

    def node_uri(self, node: str) -> str:
        return f"http://{HOST}:{self.ports[node]}"

    @property
    def uris(self) -> list[str]:
        return [self.node_uri(n) for n in self.node_ids]

    def node_dir(self, node: str) -> Path:
        return self.workdir / node

    def node_log(self, node: str) -> Path:
        return self.workdir / f"{node}.log"

    # -- processes ----------------------------------------------------------------------

    def _start_services(self) -> None:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.etcd = EtcdProcess(self.workdir / "etcd")
        self.store = ObjectStoreProcess(self.workdir / "s3", self.bucket)
        self.etcd.launch()
        self.store.launch()  # side by side with etcd's start: then wait for both
        self.etcd.wait_ready()
        self.store.wait_ready()
        credentials = {
            "AWS_ACCESS_KEY_ID": self.store.access_key,
            "AWS_SECRET_ACCESS_KEY": self.store.secret_key,
        }
        for node in self.node_ids:
            args = [
                "--cluster", self.etcd.url.replace("http://", "etcd://", 1),
                "--storage", f"s3://{self.bucket}/{self.prefix}",
                "--s3-endpoint", self.store.endpoint,
                "--node-id", node,
            ]  # fmt: skip
            if self.lease_ttl is not None:
                args += ["--lease-ttl", str(self.lease_ttl)]
            args += self.node_args
            self.nodes[node] = KeelServer(
                self.node_dir(node), log_path=self.node_log(node), port=self.ports[node],
                extra_args=args, env=credentials,
            )  # fmt: skip

    def _service(self, name: str) -> Process:
        service = self.etcd if name == ETCD else self.store
        assert service is not None, "the cluster was never started"
        return service

    def start(self, env: Mapping[str, str | None] | None = None, timeout: float = 300) -> None:
        """First call: the whole cluster. Later calls: whatever is down (services first, so
        the nodes find etcd and the object store), then wait until every node serves.
        ``env``: extra environment for the nodes, kept for their later restarts."""
        if env is not None:
            self._env = dict(env)
        if self.etcd is None:
            self._start_services()
            for node in self.node_ids:
                self.nodes[node].launch(self._env)
        else:
            self._revive_services()
            for node in self.node_ids:
                server = self.nodes[node]
                if node in self.down:
                    self._restart_node(node)
                elif not server.alive:
                    code = server.returncode
                    self._note(f"{node} had exited by itself (code {code}); restarted")
                    server.launch(self._env, f"restart after it exited with code {code}")
        deadline = time.monotonic() + timeout
        for node in self.node_ids:
            self.nodes[node].wait_ready(max(1.0, deadline - time.monotonic()))
        self.wait_serving(min(self.ready_timeout, max(1.0, deadline - time.monotonic())))

    def _revive_services(self) -> None:
        """etcd and the object store: restart whichever is down (killed, or exited by itself,
        which is noted), and wait until both serve."""
        for name in (ETCD, OBJECT_STORE):
            service = self._service(name)
            if name in self.down or not service.alive:
                if name not in self.down:
                    self._note(f"{name} had exited by itself; restarted")
                service.restart()
                self.down.discard(name)
            service.wait_ready()

    def _note(self, event: str) -> None:
        """Something nobody injected happened (a component exited by itself)."""
        self.events.append(event)

    def _restart_node(self, node: str) -> None:
        note = "restart"
        if self.empty_disk_restarts:
            shutil.rmtree(self.node_dir(node), ignore_errors=True)
            note += " with an EMPTY local data dir"
        self.nodes[node].launch(self._env, note)
        self.down.discard(node)

    def wait_serving(self, timeout: float) -> None:
        """Until every node answers ``list_collections`` and a Strong ``count(*)`` of each
        collection (a collection not loaded counts as answered: loading is the caller's
        business). Through each node, so every node can route again."""
        deadline = time.monotonic() + timeout
        for node in self.node_ids:
            last = ""
            while True:
                try:
                    self._probe(node)
                    break
                except Exception as e:  # noqa: BLE001 - recovering: etcd, leases, replay
                    last = f"{type(e).__name__}: {e}"
                if not self.nodes[node].alive:
                    raise RuntimeError(f"{node} exited while recovering: {self.node_log(node)}")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{node} does not serve {timeout:.0f}s on: {last[:300]}")
                time.sleep(0.2)

    def _probe(self, node: str) -> None:
        import pymilvus

        c = pymilvus.MilvusClient(uri=self.node_uri(node), dedicated=True, timeout=5)
        try:
            count = {"output_fields": ["count(*)"], "consistency_level": "Strong", "timeout": 10}
            for name in c.list_collections(timeout=5):
                try:
                    c.query(name, **count)
                except pymilvus.MilvusException as e:
                    if e.code != 101:  # 101: not loaded
                        raise
        finally:
            c.close()

    def kill_component(self, name: str) -> None:
        """SIGKILL one component (a node id, ``etcd`` or ``object-store``) and wait for it."""
        if name in (ETCD, OBJECT_STORE):
            self._service(name).kill()
        else:
            self.nodes[name].kill()
        self.down.add(name)

    def alive(self) -> bool:
        """Every node and both services are running."""
        nodes = bool(self.nodes) and all(s.alive for s in self.nodes.values())
        return nodes and self._service(ETCD).alive and self._service(OBJECT_STORE).alive

    def wait_exit(self, timeout: float) -> bool:
        """Whether every node exits within ``timeout`` seconds (together)."""
        deadline = time.monotonic() + timeout
        return all(s.wait_exit(max(0.0, deadline - time.monotonic())) for s in self.nodes.values())

    def stop(self) -> None:
        """Nodes first (SIGTERM together, SIGKILL after 30 s), then the object store and
        etcd, so no node spends its shutdown retrying a service that is already gone."""
        stop_together(self.nodes.values(), NODE_STOP_TIMEOUT)
        for service in (self.store, self.etcd):
            if service is not None:
                try:
                    service.stop()
                except Exception:  # noqa: BLE001 - best effort: it may be dead already
                    service.kill()
