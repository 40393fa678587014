"""Run ``keeldb serve`` as a child process for end-to-end tests.

``KeelServer`` starts ``python -m keeldb.cli serve`` on a free port (``--port 0``) with a
data directory (a temporary one unless given), waits for the ``listening on`` line, and on
exit stops it with SIGTERM (SIGKILL if it does not stop in time). ``kill()`` / ``restart()``
(or :func:`kill_and_restart`) simulate a crash: SIGKILL, then a new process on the same data
directory and the same port, so clients keep their ``uri``.

    with KeelServer(auth="root:secret") as server:
        port, data_dir, process = server          # also server.port, server.uri, ...
        client = pymilvus.MilvusClient(uri=server.uri, token="root:secret")

or, as a generator for a pytest fixture, ``with keeldb_server() as (port, data_dir, proc)``.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

REPO = Path(__file__).resolve().parent.parent
READY = re.compile(r"keeldb serve listening on (\S+):(\d+)")
DEFAULT_READY_TIMEOUT = 30.0
DEFAULT_STOP_TIMEOUT = 15.0


class ServerStartError(RuntimeError):
    pass


class KeelServer:
    """One ``keeldb serve`` child process (see the module docstring)."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        auth: str | None = None,
        max_message_mb: int | None = None,
        port: int = 0,
        host: str = "127.0.0.1",
        ready_timeout: float = DEFAULT_READY_TIMEOUT,
        extra_args: list[str] | None = None,
    ) -> None:
        self._tmp: Path | None = None
        if data_dir is None:
            self._tmp = Path(tempfile.mkdtemp(prefix="keeldb-serve-"))
            data_dir = self._tmp / "data"
        self.data_dir = Path(data_dir)
        self.auth = auth
        self.max_message_mb = max_message_mb
        self.host = host
        self.port = port
        self.ready_timeout = ready_timeout
        self.extra_args = list(extra_args or [])
        self.process: subprocess.Popen[bytes] | None = None
        self._logs = Path(tempfile.mkdtemp(prefix="keeldb-serve-logs-"))
        self._starts = 0

    # -- tuple-like access: (port, data_dir, process) ---------------------------------

    def __iter__(self) -> Iterator[object]:
        return iter((self.port, self.data_dir, self.process))

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stdout_path(self) -> Path:
        return self._logs / f"stdout.{self._starts}"

    @property
    def stderr_path(self) -> Path:
        return self._logs / f"stderr.{self._starts}"

    def output(self) -> str:
        """stdout and stderr of the current (or last) process, for failure messages."""
        parts = []
        for p in (self.stdout_path, self.stderr_path):
            if p.exists():
                parts.append(f"--- {p.name} ---\n{p.read_text(errors='replace')}")
        return "\n".join(parts)

    # -- lifecycle ----------------------------------------------------------------------

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "keeldb.cli", "serve", "--data", str(self.data_dir),
               "--host", self.host, "--port", str(self.port)]
        if self.auth is not None:
            cmd += ["--auth", self.auth]
        if self.max_message_mb is not None:
            cmd += ["--max-message-mb", str(self.max_message_mb)]
        return cmd + self.extra_args

    def start(self) -> KeelServer:
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError("the server is already running")
        self._starts += 1
        env = dict(os.environ)
        paths = [str(REPO / "src"), str(REPO)]
        if env.get("PYTHONPATH"):
            paths.append(env["PYTHONPATH"])
        env["PYTHONPATH"] = os.pathsep.join(paths)
        env["PYTHONUNBUFFERED"] = "1"
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                self.command(), stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, cwd=REPO
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        assert self.process is not None
        deadline = time.monotonic() + self.ready_timeout
        while True:
            text = self.stdout_path.read_text(errors="replace") if self.stdout_path.exists() else ""
            m = READY.search(text)
            if m:
                self.port = int(m.group(2))
                return
            if self.process.poll() is not None:
                raise ServerStartError(
                    f"keeldb serve exited with {self.process.returncode} before it was ready\n{self.output()}"
                )
            if time.monotonic() > deadline:
                self._signal_and_wait(signal.SIGKILL, DEFAULT_STOP_TIMEOUT)
                raise ServerStartError(
                    f"keeldb serve not ready after {self.ready_timeout:.0f} s\n{self.output()}"
                )
            time.sleep(0.02)

    def _signal_and_wait(self, sig: signal.Signals, timeout: float) -> int | None:
        p = self.process
        if p is None or p.poll() is not None:
            return None if p is None else p.returncode
        p.send_signal(sig)
        try:
            return p.wait(timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            return p.wait(timeout)

    def stop(self, timeout: float = DEFAULT_STOP_TIMEOUT) -> int | None:
        """SIGTERM and wait (SIGKILL after ``timeout``); returns the exit code."""
        return self._signal_and_wait(signal.SIGTERM, timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would; the data directory and port are kept for ``restart``."""
        self._signal_and_wait(signal.SIGKILL, DEFAULT_STOP_TIMEOUT)

    def restart(self) -> KeelServer:
        """Start again on the same data directory and port (kills a running process first)."""
        self.kill()
        return self.start()

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self._logs, ignore_errors=True)
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)

    def __enter__(self) -> KeelServer:
        try:
            return self.start()
        except BaseException:
            self.close()  # __exit__ will not run: remove the temporary directories here
            raise

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def kill_and_restart(server: KeelServer) -> KeelServer:
    """SIGKILL ``server`` and start it again on the same data directory and port."""
    return server.restart()


@contextmanager
def keeldb_server(
    data_dir: Path | str | None = None,
    *,
    auth: str | None = None,
    max_message_mb: int | None = None,
    ready_timeout: float = DEFAULT_READY_TIMEOUT,
) -> Iterator[KeelServer]:
    """Context manager form: ``with keeldb_server() as (port, data_dir, process): ...``
    (the yielded ``KeelServer`` also unpacks to that triple)."""
    with KeelServer(data_dir, auth=auth, max_message_mb=max_message_mb, ready_timeout=ready_timeout) as s:
        yield s
