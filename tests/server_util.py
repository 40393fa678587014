"""Run ``keeldb serve`` as a child process for end-to-end tests.

``KeelServer`` is :class:`keeldb.testing.server.KeelServer` with what a test wants on top: a
temporary data directory when none is given, its log in a temporary directory, both removed
when the ``with`` block ends. It starts on a free port (``--port 0``), waits for the
``listening on`` line, and stops with SIGTERM (SIGKILL if it does not stop in time).
:func:`kill_and_restart` simulates a crash: SIGKILL, then a new process on the same data
directory and the same port, so clients keep their ``uri``.

    with KeelServer(auth="root:secret") as server:
        client = pymilvus.MilvusClient(uri=server.uri, token="root:secret")
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from keeldb.testing import server


class KeelServer(server.KeelServer):
    """One ``keeldb serve`` child process (see the module docstring)."""

    def __init__(
        self,
        data_dir: Path | str | None = None,
        *,
        auth: str | None = None,
        max_message_mb: int | None = None,
        port: int = 0,
        ready_timeout: float | None = None,
        extra_args: Sequence[str] = (),
    ) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="keeldb-serve-"))
        data = self._tmp / "data" if data_dir is None else Path(data_dir)
        super().__init__(
            data, log_path=self._tmp / "serve.log", port=port, auth=auth,
            max_message_mb=max_message_mb, ready_timeout=ready_timeout, extra_args=extra_args,
        )  # fmt: skip

    @property
    def process(self) -> subprocess.Popen[bytes] | None:
        return self.proc

    @property
    def stdout_path(self) -> Path:
        """Everything the server printed, stdout and stderr together (one log), every
        incarnation in order."""
        return self.log_path

    @property
    def stderr_path(self) -> Path:
        """The same log: stderr is in it (a check for tracebacks reads it)."""
        return self.log_path

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            super().__exit__(exc_type, exc, tb)
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)


def kill_and_restart(server: KeelServer) -> KeelServer:
    """SIGKILL ``server`` and start it again on the same data directory and port."""
    server.kill()
    return server.start(note="restart after SIGKILL")
