"""The systems a chaos run can hurt: a `keeldb serve` it starts, a `milvus-lite server` it
starts, a keeldb cluster it starts (etcd, an object store and N nodes), or any endpoint the
user names with commands to kill and restart it.

The processes themselves are ``keeldb.testing``'s (``server``, ``cluster``); a target adds
what a fault needs: which component a kill hits, what happened to it, what to leave out of
a restart's environment. Every target listens on loopback only; the chaos command never
contacts another address unless the user passes one with ``--uri``.
"""

from __future__ import annotations

import os
import random
import shlex
import shutil
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from keeldb.chaos.faults import CLUSTER_CRASH_POINTS, LIVE_CRASH_POINTS
from keeldb.testing.cluster import ETCD, NODE_STOP_TIMEOUT, OBJECT_STORE, LocalCluster, node_metrics
from keeldb.testing.ports import free_port
from keeldb.testing.process import Process, port_open, stop_together
from keeldb.testing.server import KeelServer, MilvusLiteServer

__all__ = [
    "ETCD",
    "OBJECT_STORE",
    "VICTIM_MODES",
    "ClusterTarget",
    "ExternalTarget",
    "KeelTarget",
    "MilvusLiteTarget",
    "Target",
    "VictimPicker",
]

# Armed by the runner for one start only; a server must never inherit them from us.
FAULT_ENV = ("KEELDB_CRASH_AT", "KEELDB_FAULTS")
STOP_TIMEOUT = 30.0  # seconds a server gets between SIGTERM and SIGKILL at a stop


class Target(ABC):
    """What the runner drives: start (and restart) with an environment for that start, kill,
    signal, wait for an exit, stop. ``proc`` is the server process where there is exactly
    one (its exit code tells how it died), else None.

    A start with ``env`` (not None) arms a fault for that start only (``FAULT_ENV``); the
    next plain start (``env`` None) runs unarmed again. Between :meth:`take_down` and the
    next plain start, ``kill``, ``wait_exit`` and ``proc`` are about the process that is
    armed (a cluster: one node of it)."""

    name = "target"
    supports_crash_points = False
    supports_io_faults = False  # KEELDB_FAULTS=disk-full / slow-fsync
    supports_power_cut = False  # KEELDB_FAULTS=power-cut: keeldb's own storage, one process
    # The crash points this target's server reaches under the workload: a crash-point round
    # cycles through these (``--crash-points`` overrides them).
    crash_points: Sequence[str] = LIVE_CRASH_POINTS
    last_victim = ""  # which component the last fault hit, where there is a choice (cluster)
    events: Sequence[str] = ()  # what happened to which component (a cluster's own list)
    data_paths: Sequence[Path] = ()  # the servers' data, removed after a run unless kept
    proc: subprocess.Popen[bytes] | None = None
    port: int

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def uris(self) -> list[str]:
        """Every address the workers may connect to (one server: its own)."""
        return [self.uri]

    @abstractmethod
    def start(self, env: Mapping[str, str] | None = None, timeout: float = 300) -> None: ...

    @abstractmethod
    def alive(self) -> bool: ...

    @abstractmethod
    def signal(self, sig: int) -> None: ...

    @abstractmethod
    def kill(self) -> None: ...

    @abstractmethod
    def wait_exit(self, timeout: float) -> bool: ...

    @abstractmethod
    def stop(self) -> None: ...

    def take_down(self, sigkill: bool = False) -> None:
        """Before a crash-point round: down with the server, gracefully (so the only crashes
        are armed ones), or with SIGKILL (leaving a log tail for ``recovery.*`` to replay).
        One server: all of it. A cluster takes down only the node the round arms."""
        if sigkill:
            self.kill()
        else:
            self.stop()


class ServerTarget(Target):
    """One server process this command starts, on a fixed port and data directory; its
    output goes to ``server.log`` beside the data."""

    def __init__(self, data: Path, server: Process) -> None:
        self.data = data
        self.data_paths = (data,)
        self.server = server
        self.log_path = server.log_path

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:  # type: ignore[override]
        return self.server.proc

    def start(self, env: Mapping[str, str] | None = None, timeout: float = 300) -> None:
        unarmed: dict[str, str | None] = dict.fromkeys(FAULT_ENV)
        self.server.start({**unarmed, **(env or {})}, timeout)

    def alive(self) -> bool:
        return self.server.alive

    def signal(self, sig: int) -> None:
        self.server.send_signal(sig)

    def kill(self) -> None:
        self.server.kill()

    def wait_exit(self, timeout: float) -> bool:
        return self.server.wait_exit(timeout)

    def stop(self) -> None:
        self.server.stop(STOP_TIMEOUT)


class KeelTarget(ServerTarget):
    name = "keeldb"
    supports_crash_points = True
    supports_io_faults = True
    supports_power_cut = True

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        super().__init__(data, KeelServer(data, log_path=data.parent / "server.log", port=self.port))


class MilvusLiteTarget(ServerTarget):
    name = "milvus-lite"

    def __init__(self, data: Path) -> None:
        self.port = free_port()
        server = MilvusLiteServer(
            data, log_path=data.parent / "server.log", port=self.port, stop_signal=signal.SIGTERM
        )
        super().__init__(data, server)


class ExternalTarget(Target):
    """An endpoint the user runs: we can only kill and restart it with their commands."""

    name = "external"

    def __init__(self, uri: str, kill_cmd: str | None, restart_cmd: str | None, pid: int | None, log_dir: Path) -> None:
        self._uri = uri
        self.kill_cmd, self.restart_cmd, self.pid = kill_cmd, restart_cmd, pid
        self._killed = False
        self.log_path = log_dir / "server.log"
        host_port = uri.split("://", 1)[-1].split("/", 1)[0]
        self.port = int(host_port.rsplit(":", 1)[1]) if ":" in host_port else 19530
        self.host = host_port.rsplit(":", 1)[0]

    @property
    def uri(self) -> str:
        return self._uri

    def start(self, env: Mapping[str, str] | None = None, timeout: float = 300) -> None:
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
        return port_open(self.port, self.host)

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


class ClusterTarget(LocalCluster, Target):
    """A :class:`keeldb.testing.cluster.LocalCluster` under faults.

    A SIGKILL hits one component (``VictimPicker``); ``start`` then brings back whatever is
    down — and any node that exited by itself meanwhile, which is noted in ``events`` and in
    the fault's detail. ``uri`` names the nodes in turn (the runner's load, reloads and
    checks go through every node, so routing is exercised by reads too); ``uris`` lists
    them all for the workers.

    **Crash points.** A crash-point round arms ONE node: :meth:`take_down` picks it
    (``VictimPicker.pick_node``, seeded) and stops it (or SIGKILLs it, for ``recovery.*``);
    until the round's plain restart, ``kill``, ``wait_exit`` and ``proc`` are that node's.
    Almost every point (the log, flushes, manifest commits, compaction, index builds, GC)
    lies on the path of a shard's *writer*, and the chaos collection has one shard, so an
    armed start (:meth:`start` with ``env``) makes the armed node its writer: it stops the
    other nodes gracefully (a writer that closes gives its lease up at once, and a stopped
    node cannot compete for the shard), starts the armed node alone with ``env``, waits
    until it has taken the shard over (recovering it from etcd and the object store:
    ``recovery.*`` is reached there), and starts the other nodes again, plainly. Only the
    armed node ever sees ``env``: etcd, the object store, the other nodes and every later
    start of the armed node itself run without it.
    """

    name = "cluster"
    supports_crash_points = True
    crash_points = CLUSTER_CRASH_POINTS
    # disk-full and slow-fsync stay off: their rounds (runner.inject) stop the whole target,
    # restart it armed and later SIGKILL "it"; per node that would need the same hand-over
    # and a writer that fails its flushes lets its shard go to an unarmed node at once, so
    # the fault would not stay where it was put. power-cut stays off: a cut rolls back only
    # the files of the one process that tracks its own fsyncs (storage/powercut.py), but a
    # node's durable state is in etcd and the object store -- other processes, durable once a
    # transaction or a put returned, whose fsyncs nothing here can see (that would take a
    # file system that records them, as LazyFS does) -- and the node's own disk is only a
    # cache, so cutting the node's power would test nothing its crash points do not.
    supports_io_faults = False
    supports_power_cut = False

    def __init__(
        self, workdir: Path, nodes: int = 3, *, victims: str = "random", seed: int = 0, **options: Any
    ) -> None:
        """``options``: :class:`LocalCluster`'s (lease_ttl, empty_disk_restarts, ...)."""
        super().__init__(workdir, nodes, **options)
        self.port = self.ports[self.node_ids[0]]
        self.log_path = workdir / "cluster.log"
        self.picker = VictimPicker(self.node_ids, victims, seed)
        self.paused: str | None = None
        self.last_victim = ""
        self.armed: str | None = None  # the node a crash-point round arms, until its plain restart
        # Every plain start of a node removes the fault variables, in case the runner's own
        # environment has them: a node must never inherit a crash point from us.
        self._env = dict.fromkeys(FAULT_ENV)
        self._turn = 0

    @property
    def uri(self) -> str:
        node = self.node_ids[self._turn % len(self.node_ids)]
        self._turn += 1
        return self.node_uri(node)

    @property
    def proc(self) -> subprocess.Popen[bytes] | None:  # type: ignore[override]
        """The armed node's process during a crash-point round (its exit code says whether
        it died at its point), else None: the cluster is not one process."""
        return self.nodes[self.armed].proc if self.armed is not None else None

    def _note(self, event: str) -> None:
        """Also in the detail of the fault being recovered from (the runner copies
        ``last_victim`` into it)."""
        super()._note(event)
        self.last_victim = f"{self.last_victim}; {event}" if self.last_victim else event

    def start(self, env: Mapping[str, str | None] | None = None, timeout: float = 300) -> None:
        """``env`` None: bring back whatever is down, plainly (and end a crash-point round).
        Otherwise an armed start: ``env`` for the armed node only (see the class)."""
        if env is not None:
            self._start_armed(env, timeout)
            return
        super().start(None, timeout)
        self.armed = None

    def take_down(self, sigkill: bool = False) -> None:
        """The start of a crash-point round: pick the node to arm and take it down alone
        (etcd, the object store and the other nodes keep serving the workload)."""
        node = self.picker.pick_node()
        self.armed = self.last_victim = node
        if sigkill:
            self.kill_component(node)
        else:
            self.nodes[node].stop(NODE_STOP_TIMEOUT)
            self.down.add(node)  # stopped on purpose: not "exited by itself" at the next start
        self.events.append(f"crash-point round on {node}: {'SIGKILL' if sigkill else 'stopped'}")

    def _start_armed(self, env: Mapping[str, str | None], timeout: float) -> None:
        """Start the armed node with ``env`` and make it the shard's writer; the other nodes
        are stopped for the hand-over and started again (plainly) whatever happens. Raises if
        the armed node exits first (at its point, during the take-over: ``proc`` says how)
        or does not take the shard over in time (then it is stopped gracefully, so its exit
        code does not look like a crash point's SIGKILL)."""
        deadline = time.monotonic() + timeout
        if self.armed is None:
            self.take_down()  # armed without a round (not the runner's way): arm a node of ours
        assert self.armed is not None
        node, server = self.armed, self.nodes[self.armed]
        if server.alive:
            server.stop(NODE_STOP_TIMEOUT)
        others = [n for n in self.node_ids if n != node]
        for n in others:
            if not self.nodes[n].alive and n not in self.down:
                self._note(f"{n} had exited by itself (code {self.nodes[n].returncode}); restarted")
        stop_together([self.nodes[n] for n in others], NODE_STOP_TIMEOUT)
        try:
            self._revive_services()
            if self.empty_disk_restarts:
                shutil.rmtree(self.node_dir(node), ignore_errors=True)
            armed = " ".join(f"{k}={v}" for k, v in env.items() if v is not None)
            server.launch({**self._env, **env}, f"armed: {armed}")
            self.down.discard(node)
            self.events.append(f"{node} started armed ({armed}), the other nodes stopped for the hand-over")
            try:
                server.wait_ready(max(1.0, deadline - time.monotonic()))
                self._wait_writer(node, deadline)
            except BaseException:
                if server.alive:
                    server.stop(NODE_STOP_TIMEOUT)
                self.down.add(node)  # the round's plain restart brings it back, unarmed
                raise
        finally:
            for n in others:
                self.nodes[n].launch(self._env, "restart after a crash-point hand-over")
                self.down.discard(n)
            for n in others:
                self.nodes[n].wait_ready(max(1.0, deadline - time.monotonic()))

    def _wait_writer(self, node: str, deadline: float) -> None:
        """Until ``node`` reports a shard (the chaos workload's one collection): alone, it
        takes it at its next tick or at the first write it is sent, once the previous
        writer's lease is gone (revoked by a graceful stop, or expired after a crash)."""
        server = self.nodes[node]
        last = ""
        while True:
            if not server.alive:
                raise RuntimeError(f"{node} exited with code {server.returncode} before it took the shard over")
            try:
                if node_metrics(self.node_uri(node), timeout=5)["shards"]:
                    return
            except Exception as e:  # noqa: BLE001 - still starting, or etcd slow: ask again
                last = f": {type(e).__name__}: {e}"
            if time.monotonic() > deadline:
                raise TimeoutError(f"{node} did not take the shard over{last[:300]}")
            time.sleep(0.2)

    def kill(self) -> None:
        """SIGKILL a component (``VictimPicker``); within a crash-point round, the armed
        node (its point was not reached, or it started with nothing to replay)."""
        if self.armed is not None:
            self.kill_component(self.armed)
            self.events.append(f"SIGKILL {self.armed} (armed)")
            return
        victim = self.picker.pick()
        self.kill_component(victim)
        self.last_victim = victim
        if victim in self.nodes and self.empty_disk_restarts:
            self.last_victim += " (restarted with an empty disk)"
        self.events.append(f"SIGKILL {victim}")

    def wait_exit(self, timeout: float) -> bool:
        """Within a crash-point round: whether the armed node exits (at its point) within
        ``timeout``; else whether every node does."""
        if self.armed is None:
            return super().wait_exit(timeout)
        exited = self.nodes[self.armed].wait_exit(timeout)
        if exited:
            self.down.add(self.armed)  # died where it was armed to: not "by itself"
        return exited

    def signal(self, sig: int) -> None:
        """SIGSTOP pauses a random node; SIGCONT resumes it and waits until the cluster
        serves again (a resumed writer has lost its lease: its shards move or come back)."""
        if sig == signal.SIGCONT:
            if self.paused is not None:
                node, self.paused = self.paused, None
                self.nodes[node].send_signal(sig)
                self.wait_serving(self.ready_timeout)
            return
        node = self.picker.pick_node()
        if not self.nodes[node].alive:
            return
        if sig == signal.SIGSTOP:
            self.paused = node
        self.last_victim = node
        self.events.append(f"{signal.Signals(sig).name} {node}")
        self.nodes[node].send_signal(sig)

    def stop(self) -> None:
        """Everything: the nodes, then the object store and etcd (the end of a run). A
        crash-point round takes down only its node (``take_down``)."""
        self.paused = None  # a stop resumes a paused node (SIGCONT with the SIGTERM)
        self.armed = None
        super().stop()
