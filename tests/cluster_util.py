"""Start a real single-node etcd (Debian's etcd-server) on 127.0.0.1 for the cluster tests."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from keeldb.cluster.etcd import Etcd, EtcdError


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    binary = shutil.which("etcd")
    if binary is None:
        pytest.skip("etcd is not installed (.ci/run installs Debian's etcd-server)")
    data: Path = tmp_path_factory.mktemp("etcd")
    client, peer = free_port(), free_port()
    proc = subprocess.Popen(
        [
            binary, "--name", "keeldb-test", "--data-dir", str(data / "data"),
            "--listen-client-urls", f"http://127.0.0.1:{client}",
            "--advertise-client-urls", f"http://127.0.0.1:{client}",
            "--listen-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls", f"http://127.0.0.1:{peer}",
            "--initial-cluster", f"keeldb-test=http://127.0.0.1:{peer}",
            "--listen-metrics-urls", "", "--log-level", "error",
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(data / "etcd.log", "wb"),  # noqa: SIM115 - lives as long as the server
    )  # fmt: skip
    etcd = Etcd(f"http://127.0.0.1:{client}", timeout=3)
    deadline = time.monotonic() + 30
    while True:
        try:
            etcd.get("/ping")
            break
        except EtcdError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                raise RuntimeError(f"etcd did not start: {(data / 'etcd.log').read_text()[-2000:]}") from None
            time.sleep(0.1)
    yield etcd
    proc.terminate()
    proc.wait(10)
