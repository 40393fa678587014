"""Servers that speak Milvus's protocol, as supervised child processes on 127.0.0.1:
``keeldb serve`` (:class:`KeelServer`) and Milvus Lite's ``milvus-lite server``
(:class:`MilvusLiteServer`, the peer that ``keeldb chaos`` and the benchmarks judge keeldb
against).

Both keep their port and data directory across restarts, so a client's URI stays valid: a
``keeldb serve`` started with port 0 keeps the port it bound the first time.
"""

from __future__ import annotations

import importlib.util
import os
import re
import signal
import sys
import sysconfig
from collections.abc import Mapping, Sequence
from pathlib import Path

from keeldb.errors import MissingExtra
from keeldb.testing.ports import HOST, free_port
from keeldb.testing.process import Process, port_open

# What `keeldb serve` prints once it accepts calls (keeldb.server.main).
READY = re.compile(r"keeldb serve listening on (\S+):(\d+)")
# The directory this keeldb package is imported from (src/ in a checkout).
PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def child_pythonpath() -> str | None:
    """PYTHONPATH for a ``keeldb serve`` child: :data:`PACKAGE_ROOT` first, so the server runs
    the very code its parent runs (a checkout's, not another installed keeldb) — unless it
    is this interpreter's site-packages, which the child searches anyway (and which must
    not go before the standard library)."""
    installed = {Path(sysconfig.get_paths()[k]).resolve() for k in ("purelib", "platlib")}
    own = [] if PACKAGE_ROOT in installed else [str(PACKAGE_ROOT)]
    return os.pathsep.join(p for p in (*own, os.environ.get("PYTHONPATH", "")) if p) or None


class MilvusServer(Process):
    """A server that pymilvus reaches at ``uri`` (``host`` and ``port`` are set by the
    subclass)."""

    host = HOST
    port = 0

    @property
    def uri(self) -> str:
        return f"http://{self.host}:{self.port}"


class KeelServer(MilvusServer):
    """``python -m keeldb.cli serve`` on ``data_dir``, ready when it prints that it listens.

    ``port=0`` lets the server pick a free port the first time; later starts reuse it.
    ``extra_args`` are appended to the command line (e.g. ``--cluster ...`` for a node).
    """

    name = "keeldb serve"

    def __init__(
        self,
        data_dir: Path,
        *,
        log_path: Path,
        port: int = 0,
        host: str = HOST,
        auth: str | None = None,
        max_message_mb: int | None = None,
        extra_args: Sequence[str] = (),
        env: Mapping[str, str | None] | None = None,
        cwd: Path | None = None,
        ready_timeout: float | None = None,
        stop_timeout: float | None = None,
    ) -> None:
        base: dict[str, str | None] = {"PYTHONPATH": child_pythonpath(), "PYTHONUNBUFFERED": "1"}
        super().__init__(log_path, env={**base, **(env or {})}, cwd=cwd)
        self.data_dir = Path(data_dir)
        self.port = port
        self.host = host
        self.auth = auth
        self.max_message_mb = max_message_mb
        self.extra_args = list(extra_args)
        if ready_timeout is not None:
            self.ready_timeout = ready_timeout
        if stop_timeout is not None:
            self.stop_timeout = stop_timeout

    def command(self) -> list[str]:
        cmd = [sys.executable, "-m", "keeldb.cli", "serve", "--data", str(self.data_dir),
               "--host", self.host, "--port", str(self.port)]  # fmt: skip
        if self.auth is not None:
            cmd += ["--auth", self.auth]
        if self.max_message_mb is not None:
            cmd += ["--max-message-mb", str(self.max_message_mb)]
        return cmd + self.extra_args

    def ready(self) -> bool:
        m = self.printed(READY)
        if m is None:
            return False
        self.port = int(m.group(2))  # the port it bound: kept for every restart
        return True


class MilvusLiteServer(MilvusServer):
    """``python -m milvus_lite server`` on ``data_dir`` and a fixed port (a free one unless
    given), ready when the port accepts connections. It shuts down gracefully on SIGINT
    only (a KeyboardInterrupt), the default ``stop_signal``; SIGTERM kills it outright,
    which is all a run that deletes its data afterwards needs. (A child inherits an ignored
    SIGINT, e.g. from a shell's background job: then a stop waits ``stop_timeout`` and
    SIGKILLs.)"""

    name = "milvus-lite server"
    stop_signal = signal.SIGINT

    def __init__(
        self,
        data_dir: Path,
        *,
        log_path: Path,
        port: int | None = None,
        env: Mapping[str, str | None] | None = None,
        cwd: Path | None = None,
        stop_signal: signal.Signals = signal.SIGINT,
        stop_timeout: float | None = None,
    ) -> None:
        super().__init__(log_path, env={"PYTHONUNBUFFERED": "1", **(env or {})}, cwd=cwd)
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.stop_signal = stop_signal
        if stop_timeout is not None:
            self.stop_timeout = stop_timeout

    def command(self) -> list[str]:
        if importlib.util.find_spec("milvus_lite") is None:
            raise MissingExtra("milvus-lite is not installed; it is in the 'bench' extra: "
                               "pip install 'keeldb[bench]'")  # fmt: skip
        # --host is always given: milvus-lite's default is 0.0.0.0.
        return [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(self.data_dir),
                "--host", self.host, "--port", str(self.port)]  # fmt: skip

    def ready(self) -> bool:
        return port_open(self.port, self.host)
