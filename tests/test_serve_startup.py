"""``keeldb serve`` refuses to start where it would hurt: one line, exit code 2, no traceback.

The worst of them: grpcio sets SO_REUSEPORT by default, so a second server on a busy port
used to start silently and take a share of the new connections, and clients saw two
different databases at one address.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pymilvus import MilvusClient

from tests.server_util import KeelServer


def serve(*args: str | Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "keeldb.cli", "serve", *map(str, args)],
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def one_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_busy_port_is_refused_and_the_other_server_keeps_every_client(tmp_path: Path) -> None:
    with KeelServer(tmp_path / "first") as first:
        c = MilvusClient(uri=first.uri)
        c.create_collection("only_in_first", dimension=2)
        c.close()
        line = one_line(serve("--data", tmp_path / "second", "--port", first.port))
        assert line == f"keeldb serve: port {first.port} is already in use"
        assert not (tmp_path / "second" / "LOCK").exists(), "nothing is opened before the port check"
        # Every new client reaches the first server (with SO_REUSEPORT, some would not).
        for _ in range(12):
            c = MilvusClient(uri=first.uri)
            assert c.list_collections() == ["only_in_first"]
            c.close()
        # The same on any address that covers the port.
        one_line(serve("--data", tmp_path / "third", "--host", "0.0.0.0", "--insecure", "--port", first.port))


def test_port_held_by_another_program(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        assert one_line(serve("--data", tmp_path / "d", "--port", port)).endswith(f"port {port} is already in use")


def test_data_that_is_a_file(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("not a database")
    line = one_line(serve("--data", f, "--port", 0))
    assert line == f"keeldb serve: the data directory {f} is not a directory"
    assert f.read_text() == "not a database"


def test_data_in_use_by_another_server(tmp_path: Path) -> None:
    with KeelServer(tmp_path / "d") as first:
        line = one_line(serve("--data", tmp_path / "d", "--port", 0))
        assert str(tmp_path / "d") in line and "open in another process" in line
        assert f"(pid {first.process.pid})" in line  # type: ignore[union-attr]
        assert "LOCK" not in line  # a path the user never typed


@pytest.mark.skipif(os.geteuid() == 0, reason="root is never refused permission")
def test_data_without_permission(tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir(mode=0o500)
    line = one_line(serve("--data", d / "db", "--port", 0))
    assert "permission denied" in line


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    f = tmp_path / "file"
    f.write_text("x")
    r = subprocess.run(
        [sys.executable, "-m", "keeldb.cli", "--debug", "serve", "--data", str(f), "--port", "0"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_bad_flag_values_are_one_line(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "keeldb.cli", "chaos", "--faults", "sigkil", "--out", str(tmp_path / "o")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert "unknown fault kinds ['sigkil']" in one_line(r)
    assert one_line(serve("--data", tmp_path / "d", "--cluster", "etcd://127.0.0.1:9")).endswith(
        "--cluster and --storage go together"
    )
