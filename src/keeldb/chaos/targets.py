"""The systems a chaos run can hurt: a `keeldb serve` it starts, a `milvus-lite server` it
starts, a keeldb cluster it starts (etcd, an object store and N nodes), or any endpoint the
user names with commands to kill and restart it.

Every target listens on loopback only; the chaos command never contacts another address
unless the user passes one with ``--uri``.
"""

from __future__ import annotations

import json
import os
import random
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from keeldb.errors import MissingExtra
from keeldb.testing.ports import free_port, free_ports


def wait_listening(port: int, timeout: float, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} while starting")
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port} after {timeout:.0f}s")


class Target:
    """A server process the chaos run controls."""

    name = "target"
    supports_crash_points = False
    supports_io_faults = False
    last_victim = ""  # which component the last fault hit, where there is a choice (cluster)
    events: Sequence[str] = ()  # what happened to which component (a cluster's own list)
    data_paths: Sequence[Path] = ()  # the servers' data, removed after a run unless kept

    @property
    def uris(self) -> list[str]:
        """Every address the workers may connect to (one server: its own)."""
        return [self.uri]

    def __init__(self) -> None:
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self) -> list[str]:
        """The command line that starts this server (subclasses that start one)."""
        raise RuntimeError(f"{self.name} targets are not started by the chaos command")

    def start(self, env: dict[str, str] | None = None, timeout: float = 300) -> None:
        full_env = dict(os.environ)
        full_env.pop("KEELDB_CRASH_AT", None)
        full_env.pop("KEELDB_FAULTS", None)
        full_env.update(env or {})
        self.log = open(self.log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(self.command(), env=full_env, stdout=self.log, stderr=subprocess.STDOUT)
        wait_listening(self.port, timeout, self.proc)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def wait_exit(self, timeout: float) -> bool:
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout=timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def stop(self) -> None:
        if self.alive():
            self.signal(signal.SIGTERM)
            if not self.wait_exit(30):
                self.kill()
        if getattr(self, "log", None):
            self.log.close()


class KeelTarget(Target):
    name = "keeldb"
    supports_crash_points = True
    supports_io_faults = True

    def __init__(self, data: Path) -> None:
        super().__init__()
        self.data = data
        self.data_paths = (data,)
        self.log_path = data.parent / "server.log"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "keeldb.cli", "serve", "--data", str(self.data), "--port", str(self.port)]


class MilvusLiteTarget(Target):
    name = "milvus-lite"

    def __init__(self, data: Path) -> None:
        super().__init__()
        self.data = data
        self.data_paths = (data,)
        self.log_path = data.parent / "server.log"

    def command(self) -> list[str]:
        if shutil.which("milvus-lite") is None:
            raise MissingExtra("--target milvus-lite needs the 'bench' extra (milvus-lite is not "
                               "installed): pip install 'keeldb[bench]'")
        return ["milvus-lite", "server", "--data-dir", str(self.data), "--host", "127.0.0.1", "--port", str(self.port)]


class ExternalTarget(Target):
    """An endpoint the user runs: we can only kill and restart it with their commands."""

    name = "external"

    def __init__(self, uri: str, kill_cmd: str | None, restart_cmd: str | None, pid: int | None, log_dir: Path) -> None:
        self._uri = uri
        self.kill_cmd, self.restart_cmd, self.pid = kill_cmd, restart_cmd, pid
        self.proc = None
        self._killed = False
        self.log_path = log_dir / "server.log"
        host_port = uri.split("://", 1)[-1].split("/", 1)[0]
        self.port = int(host_port.rsplit(":", 1)[1]) if ":" in host_port else 19530
        self.host = host_port.rsplit(":", 1)[0]

    @property
    def uri(self) -> str:
        return self._uri

    def start(self, env: dict[str, str] | None = None, timeout: float = 300) -> None:
        # Restart only what we killed: at the first start the user's server may simply
        # still be coming up, and starting a second one would race it.
        if self.restart_cmd and self._killed:
            subprocess.run(shlex.split(self.restart_cmd), check=True)
            self._killed = False
        deadline = time.monotonic() + timeout
        while not self._reachable():
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.uri} did not come back")
            time.sleep(0.1)

    def _reachable(self) -> bool:
        with socket.socket() as s:
            s.settimeout(0.5)
            return s.connect_ex((self.host, self.port)) == 0

    def alive(self) -> bool:
        return self._reachable()

    def signal(self, sig: int) -> None:
        if self.pid:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        if self.kill_cmd:
            subprocess.run(shlex.split(self.kill_cmd), check=False)
        elif self.pid:
            os.kill(self.pid, signal.SIGKILL)
        else:
            raise RuntimeError("an external target needs --kill-cmd or --pid to be killed")
        self._killed = True
        # A kill is asynchronous: wait until the port is closed, or start() would find the
        # dying server still listening.
        if not self.wait_exit(30):
            raise RuntimeError(f"{self.uri} still answers 30 s after the kill command")

    def wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._reachable() and time.monotonic() < deadline:
            time.sleep(0.1)
        return not self._reachable()

    def stop(self) -> None:
        pass


# -- cluster ------------------------------------------------------------------------------

ETCD = "etcd"
OBJECT_STORE = "object-store"
VICTIM_MODES = ("random", "cover")


class VictimPicker:
    """Which component of a cluster a fault hits.

    ``random``: uniformly among the components (each node, etcd, the object store), which is
    what a long run should do: no component is special. ``cover``: the kinds *node*, *etcd*
    and *object store* in a seeded shuffled round (the node picked uniformly), so every three
    consecutive faults hit each kind once — a short CI run with four or five faults is then
    certain to have killed a node, etcd and the object store, whatever the seed. Pauses
    (SIGSTOP) hit nodes only: etcd and the object store are third-party processes, and a
    paused writer is the case fencing exists for.
    """

    def __init__(self, nodes: list[str], mode: str = "random", seed: int = 0) -> None:
        if mode not in VICTIM_MODES:
            raise ValueError(f"unknown victim mode {mode!r}; use one of {', '.join(VICTIM_MODES)}")
        if not nodes:
            raise ValueError("a cluster needs at least one node")
        self.nodes = list(nodes)
        self.mode = mode
        self.rng = random.Random(seed)
        self._round: list[str] = []

    @property
    def components(self) -> list[str]:
        return [*self.nodes, ETCD, OBJECT_STORE]

    def pick(self) -> str:
        """The component the next SIGKILL hits."""
        if self.mode == "random":
            return self.rng.choice(self.components)
        if not self._round:
            self._round = ["node", ETCD, OBJECT_STORE]
            self.rng.shuffle(self._round)
        kind = self._round.pop(0)
        return self.pick_node() if kind == "node" else kind

    def pick_node(self) -> str:
        """The node the next pause hits."""
        return self.rng.choice(self.nodes)


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


class ClusterTarget(Target):
    """etcd + a SeaweedFS object store + ``nodes`` keeldb nodes, each a process on
    127.0.0.1 with its own local data directory and a fixed port (a restarted node comes
    back at the same address, so a worker's connection stays meaningful).

    A SIGKILL hits one component (``VictimPicker``); ``start`` then brings back whatever is
    down — and any node that exited by itself meanwhile, which is noted in ``events`` and in
    the fault's detail. A node comes back with the same node id; with
    ``empty_disk_restarts`` its local directory is deleted first, so everything it serves
    afterwards must come from etcd and the object store. ``start`` returns only when every
    node answers a Strong ``count(*)`` of every collection: the checker's pass right after
    a fault is then judging the cluster's data, not its recovery.

    ``uri`` names the nodes in turn (the runner's load, reloads and checks go through every
    node, so routing is exercised by reads too); ``uris`` lists them all for the workers.
    """

    name = "cluster"

    def __init__(
        self,
        workdir: Path,
        nodes: int = 3,
        *,
        lease_ttl: int | None = None,
        empty_disk_restarts: bool = False,
        victims: str = "random",
        seed: int = 0,
        bucket: str = "keeldb",
        prefix: str = "cluster",
        ready_timeout: float = 180.0,
    ) -> None:
        if nodes < 1:
            raise ValueError("--nodes must be at least 1")
        self.workdir = workdir
        self.node_ids = [f"node{i}" for i in range(nodes)]
        self.ports = dict(zip(self.node_ids, free_ports(nodes), strict=True))
        self.port = self.ports[self.node_ids[0]]
        self.procs: dict[str, subprocess.Popen[bytes] | None] = dict.fromkeys(self.node_ids)
        self.data_paths = (*(self.node_dir(n) for n in self.node_ids), workdir / "etcd", workdir / "s3")
        self.proc = None  # no single server process: crash-point faults do not apply
        self.log_path = workdir / "cluster.log"
        self.lease_ttl = lease_ttl
        self.empty_disk_restarts = empty_disk_restarts
        self.bucket, self.prefix = bucket, prefix
        self.ready_timeout = ready_timeout
        self.picker = VictimPicker(self.node_ids, victims, seed)
        self.etcd: Any = None  # an EtcdProcess once started
        self.store: Any = None  # an ObjectStoreProcess once started
        self.down: set[str] = set()
        self.paused: str | None = None
        self.last_victim = ""
        self.events: list[str] = []
        self._turn = 0
        self._env: dict[str, str] = {}

    # -- addresses ----------------------------------------------------------------------

    def node_uri(self, node: str) -> str:
        return f"http://127.0.0.1:{self.ports[node]}"

    @property
    def uris(self) -> list[str]:
        return [self.node_uri(n) for n in self.node_ids]

    @property
    def uri(self) -> str:
        node = self.node_ids[self._turn % len(self.node_ids)]
        self._turn += 1
        return self.node_uri(node)

    def node_dir(self, node: str) -> Path:
        return self.workdir / node

    def node_log(self, node: str) -> Path:
        return self.workdir / f"{node}.log"

    # -- processes ----------------------------------------------------------------------

    def node_command(self, node: str) -> list[str]:
        cmd = [
            sys.executable, "-m", "keeldb.cli", "serve",
            "--cluster", self.etcd.url.replace("http://", "etcd://", 1),
            "--storage", f"s3://{self.bucket}/{self.prefix}",
            "--s3-endpoint", self.store.endpoint,
            "--data", str(self.node_dir(node)),
            "--port", str(self.ports[node]),
            "--node-id", node,
        ]  # fmt: skip
        if self.lease_ttl is not None:
            cmd += ["--lease-ttl", str(self.lease_ttl)]
        return cmd

    def _node_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("KEELDB_CRASH_AT", None)
        env.pop("KEELDB_FAULTS", None)
        env.update(self._env)
        env["AWS_ACCESS_KEY_ID"] = self.store.access_key
        env["AWS_SECRET_ACCESS_KEY"] = self.store.secret_key
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _spawn(self, node: str, note: str) -> None:
        with open(self.node_log(node), "ab") as log:
            log.write(f"--- {time.strftime('%H:%M:%S')} keeldb chaos: {note}\n".encode())
            log.flush()
            self.procs[node] = subprocess.Popen(
                self.node_command(node), env=self._node_env(), stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )  # fmt: skip

    def _start_services(self) -> None:
        from keeldb.cluster.testbed import (  # needs the cluster extra
            EtcdProcess,
            ObjectStoreProcess,
        )

        self.workdir.mkdir(parents=True, exist_ok=True)
        self.etcd = EtcdProcess(self.workdir / "etcd")
        self.store = ObjectStoreProcess(self.workdir / "s3", self.bucket)
        self.etcd.start()
        self.store.start()  # side by side with etcd's start: then wait for both
        self.etcd.wait_ready()
        self.store.wait_ready()

    def start(self, env: dict[str, str] | None = None, timeout: float = 300) -> None:
        """First call: the whole cluster. Later calls: whatever is down (services first, so
        the nodes find etcd and the object store), then wait until every node serves."""
        if env is not None:
            self._env = dict(env)
        if self.etcd is None:
            self._start_services()
            for node in self.node_ids:
                self._spawn(node, "start")
        else:
            for name in (ETCD, OBJECT_STORE):
                if name in self.down or not self._service(name).alive:
                    if name not in self.down:
                        self._note(f"{name} had exited by itself; restarted")
                    self._service(name).restart()
                    self.down.discard(name)
            self.etcd.wait_ready()
            self.store.wait_ready()
            for node in self.node_ids:
                proc = self.procs[node]
                if node in self.down:
                    self._restart_node(node)
                elif proc is None or proc.poll() is not None:
                    code = None if proc is None else proc.returncode
                    self._note(f"{node} had exited by itself (code {code}); restarted")
                    self._spawn(node, f"restart after it exited with code {code}")
        deadline = time.monotonic() + timeout
        for node in self.node_ids:
            left = max(1.0, deadline - time.monotonic())
            wait_listening(self.ports[node], left, self.procs[node])
        self.wait_serving(min(self.ready_timeout, max(1.0, deadline - time.monotonic())))

    def _note(self, event: str) -> None:
        """Something nobody injected: in ``events``, and in the detail of the fault being
        recovered from (the runner copies ``last_victim`` into it)."""
        self.events.append(event)
        self.last_victim = f"{self.last_victim}; {event}" if self.last_victim else event

    def _restart_node(self, node: str) -> None:
        note = "restart"
        if self.empty_disk_restarts:
            shutil.rmtree(self.node_dir(node), ignore_errors=True)
            note += " with an EMPTY local data dir"
        self._spawn(node, note)
        self.down.discard(node)

    def _service(self, name: str) -> Any:
        return self.etcd if name == ETCD else self.store

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
                proc = self.procs[node]
                if proc is None or proc.poll() is not None:
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
            proc = self.procs[name]
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        self.down.add(name)

    def kill(self) -> None:
        victim = self.picker.pick()
        self.kill_component(victim)
        self.last_victim = victim
        if victim in self.procs and self.empty_disk_restarts:
            self.last_victim += " (restarted with an empty disk)"
        self.events.append(f"SIGKILL {victim}")

    def signal(self, sig: int) -> None:
        """SIGSTOP pauses a random node; SIGCONT resumes it and waits until the cluster
        serves again (a resumed writer has lost its lease: its shards move or come back)."""
        if sig == signal.SIGCONT:
            if self.paused is not None:
                node, self.paused = self.paused, None
                os.kill(self.procs[node].pid, sig)  # type: ignore[union-attr]
                self.wait_serving(self.ready_timeout)
            return
        node = self.picker.pick_node()
        proc = self.procs[node]
        if proc is None or proc.poll() is not None:
            return
        if sig == signal.SIGSTOP:
            self.paused = node
        self.last_victim = node
        self.events.append(f"{signal.Signals(sig).name} {node}")
        proc.send_signal(sig)

    def alive(self) -> bool:
        nodes = all(p is not None and p.poll() is None for p in self.procs.values())
        return nodes and self.etcd is not None and self.etcd.alive and self.store.alive

    def wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for proc in self.procs.values():
            if proc is None:
                continue
            try:
                proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                return False
        return True

    def stop(self) -> None:
        """Nodes first (SIGTERM together, SIGKILL after 30 s), then the object store and
        etcd, so no node spends its shutdown retrying a service that is already gone."""
        if self.paused is not None:
            proc = self.procs[self.paused]
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGCONT)
            self.paused = None
        live = [p for p in self.procs.values() if p is not None and p.poll() is None]
        for p in live:
            p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for p in live:
            try:
                p.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for service in (self.store, self.etcd):
            if service is not None:
                try:
                    service.stop()
                except Exception:  # noqa: BLE001 - best effort: it may be dead already
                    service.kill()
