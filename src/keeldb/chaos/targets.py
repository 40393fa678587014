"""The systems a chaos run can hurt: a `keeldb serve` it starts, a `milvus-lite server` it
starts, or any endpoint the user names with commands to kill and restart it.

Every target listens on loopback only; the chaos command never contacts another address
unless the user passes one with ``--uri``.
"""

from __future__ import annotations

import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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
        self.log_path = data.parent / "server.log"

    def command(self) -> list[str]:
        return [sys.executable, "-m", "keeldb.cli", "serve", "--data", str(self.data), "--port", str(self.port)]


class MilvusLiteTarget(Target):
    name = "milvus-lite"

    def __init__(self, data: Path) -> None:
        super().__init__()
        self.data = data
        self.log_path = data.parent / "server.log"

    def command(self) -> list[str]:
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
