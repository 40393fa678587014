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
import signal
import subprocess
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from keeldb.testing.cluster import ETCD, OBJECT_STORE, LocalCluster
from keeldb.testing.ports import free_port
from keeldb.testing.process import Process, port_open
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
    one (its exit code tells how it died), else None."""

    name = "target"
    supports_crash_points = False
    supports_io_faults = False
    supports_power_cut = False  # KEELDB_FAULTS=power-cut: keeldb's own storage, one process
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
    """

    name = "cluster"

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
        self._turn = 0

    @property
    def uri(self) -> str:
        node = self.node_ids[self._turn % len(self.node_ids)]
        self._turn += 1
        return self.node_uri(node)

    def _note(self, event: str) -> None:
        """Also in the detail of the fault being recovered from (the runner copies
        ``last_victim`` into it)."""
        super()._note(event)
        self.last_victim = f"{self.last_victim}; {event}" if self.last_victim else event

    def kill(self) -> None:
        victim = self.picker.pick()
        self.kill_component(victim)
        self.last_victim = victim
        if victim in self.nodes and self.empty_disk_restarts:
            self.last_victim += " (restarted with an empty disk)"
        self.events.append(f"SIGKILL {victim}")

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
        self.paused = None  # a stop resumes a paused node (SIGCONT with the SIGTERM)
        super().stop()
