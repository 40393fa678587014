"""One supervised child process: start it, wait until it is ready, signal it, kill it,
restart it with the same command line (same ports, same data), stop it with a signal and
then SIGKILL, and keep what it prints in a log file.

Every server that the tests, ``keeldb chaos`` and the benchmarks run is one of these
(``keeldb.testing.server``: ``keeldb serve`` and ``milvus-lite server``;
``keeldb.testing.testbed``: etcd and SeaweedFS). A subclass says what to run
(:meth:`Process.command`) and when it is ready (:meth:`Process.ready`); the log, process
groups, the order of signals and reaping are written once, here.

Stopping is the owner's job: a ``with`` block, or ``stop()`` in a ``finally``. As a last
resort for a runner that leaves by a path nobody expected, the first start registers one
atexit hook that stops whatever is still running when the interpreter exits. Importing this
module registers nothing. (A parent-death signal would also cover a SIGKILLed runner, but it
needs a ``preexec_fn``, and Python code between fork and exec is unsafe in a process with
threads: gRPC's made etcd abort before exec.)
"""

from __future__ import annotations

import atexit
import os
import re
import signal
import socket
import subprocess
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Self

from keeldb.testing.ports import HOST

POLL_S = 0.05  # how often wait_ready asks again


class ProcessExited(RuntimeError):
    """The process exited while we waited for it to become ready (a crash point armed in
    recovery, a busy port, a bad flag: its log says which)."""


def port_open(port: int, host: str = HOST, timeout: float = 0.5) -> bool:
    """Whether something accepts TCP connections on ``host:port`` right now."""
    with socket.socket() as s:
        s.settimeout(timeout)
        return s.connect_ex((host, port)) == 0


# -- the last-resort registry -------------------------------------------------------------

_running: set[Process] = set()
_running_lock = threading.Lock()
_hook_registered = False


def _track(process: Process) -> None:
    global _hook_registered
    with _running_lock:
        _running.add(process)
        if not _hook_registered:
            atexit.register(stop_all_running)
            _hook_registered = True


def _untrack(process: Process) -> None:
    with _running_lock:
        _running.discard(process)


def running() -> list[Process]:
    """Every process started here that has not been stopped or killed yet."""
    with _running_lock:
        return [p for p in _running if p.alive]


def stop_all_running(timeout: float = 5.0) -> None:
    """Stop every process started here and still running (the atexit hook; a benchmark
    calls it too, whatever path it leaves by)."""
    stop_together(running(), timeout)


def stop_together(processes: Iterable[Process], timeout: float) -> None:
    """The stop signal to all of them at once, then wait for each against one deadline
    (SIGKILL for whoever is still there): n processes take ``timeout``, not n times it."""
    live = [p for p in processes if p.alive]
    for p in live:
        p.terminate()
    deadline = time.monotonic() + timeout
    for p in live:
        try:
            p.stop(max(0.1, deadline - time.monotonic()))
        except Exception:  # noqa: BLE001 - best effort: stop the others regardless
            pass


# -- one process --------------------------------------------------------------------------


class Process(ABC):
    """A child process we start, signal, kill and restart with one command line.

    Everything it prints (stdout and stderr) is appended to ``log_path``, each incarnation
    after a ``--- time name: note ---`` line: the log of every incarnation, in order, is
    what explains a bad restart. ``output()`` is the current incarnation's part.
    """

    name = "process"
    # Its own session (and process group): a Ctrl-C aimed at the runner's terminal does not
    # reach it mid-test, and signals reach everything it started. For third-party servers
    # that may fork helpers; keeldb's own servers stay in the runner's group.
    new_session = False
    stop_signal: signal.Signals = signal.SIGTERM
    stop_timeout = 15.0  # seconds between the stop signal and SIGKILL
    ready_timeout = 30.0

    def __init__(
        self,
        log_path: Path,
        *,
        env: Mapping[str, str | None] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.log_path = Path(log_path)
        self.env: dict[str, str | None] = dict(env or {})  # None: removed from the child's
        self.cwd = cwd
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.startup_s: float | None = None  # launch to ready, of the last start
        self.stopped_with = ""  # how the last stop() ended it ("" if it had exited already)
        self._started_at = 0.0
        self._log_offset = 0
        self._terminated = False

    # -- what a subclass says -----------------------------------------------------------

    @abstractmethod
    def command(self) -> list[str]:
        """The command line that starts the process."""

    def ready(self) -> bool:
        """One readiness check: True once the process serves. Called until it is."""
        return True

    def _before_start(self) -> None:  # noqa: B027 - an optional hook
        """Hook: tidy up what a previous (killed) incarnation left behind."""

    def _after_exit(self) -> None:  # noqa: B027 - an optional hook
        """Hook: tidy up after the process is gone and reaped."""

    # -- state --------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc is not None else None

    @property
    def returncode(self) -> int | None:
        """The exit code once it has exited (negative: killed by that signal), else None."""
        return self.proc.poll() if self.proc is not None else None

    def environment(self, env: Mapping[str, str | None] | None = None) -> dict[str, str]:
        """This process's environment: ours, then ``self.env``, then ``env`` (one start's
        extras); a None value removes the variable."""
        merged: dict[str, str | None] = {**os.environ, **self.env, **(env or {})}
        return {key: value for key, value in merged.items() if value is not None}

    # -- lifecycle ----------------------------------------------------------------------

    def launch(self, env: Mapping[str, str | None] | None = None, note: str = "start") -> Self:
        """Start the process and return without waiting (see :meth:`wait_ready`): starting
        several, then waiting for each, lets them come up side by side."""
        if self.alive:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._before_start()
        command = self.command()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self._log_offset = log.tell()
            log.write(f"--- {time.strftime('%H:%M:%S')} {self.name}: {note} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.environment(env),
                cwd=self.cwd,
                start_new_session=self.new_session,
            )
        self.starts += 1
        self._started_at = time.monotonic()
        self._terminated = False
        self.startup_s = None
        self.stopped_with = ""
        _track(self)
        return self

    def wait_ready(self, timeout: float | None = None) -> Self:
        """Block until :meth:`ready`. Raises :class:`ProcessExited` if the process exits
        first and TimeoutError after ``timeout`` seconds, each with the end of its log; the
        process is left as it is (its owner stops it)."""
        timeout = self.ready_timeout if timeout is None else timeout
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive:
                code = self.returncode
                self._reap()
                raise ProcessExited(
                    f"{self.name} exited with code {code} while starting "
                    f"(log {self.log_path}):\n{self.output()[-2000:]}"
                )
            if self.ready():
                self.startup_s = time.monotonic() - self._started_at
                return self
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name} not ready after {timeout:.0f}s "
                    f"(log {self.log_path}):\n{self.output()[-2000:]}"
                )
            time.sleep(POLL_S)

    def start(
        self,
        env: Mapping[str, str | None] | None = None,
        timeout: float | None = None,
        note: str = "start",
    ) -> Self:
        """:meth:`launch`, then :meth:`wait_ready`."""
        return self.launch(env, note).wait_ready(timeout)

    def send_signal(self, sig: int) -> None:
        """Signal it (its whole group if it has its own session): e.g. SIGSTOP and SIGCONT
        for a pause. Nothing if it is not running."""
        if self.proc is None or not self.alive:
            return
        try:
            if self.new_session:
                os.killpg(self.proc.pid, sig)
            else:
                self.proc.send_signal(sig)
        except ProcessLookupError:
            pass

    def kill(self) -> None:
        """SIGKILL, as a crash would; returns once it is gone. Its log, ports and data stay
        for the next start."""
        if self.proc is None:
            return
        self.send_signal(signal.SIGKILL)
        self._reap()

    def terminate(self) -> None:
        """The stop signal, without waiting (see :meth:`stop`); SIGCONT too, in case a
        pause left it stopped, where it would sit on the signal until the timeout."""
        if self._terminated or not self.alive:
            return
        self.send_signal(self.stop_signal)
        self.send_signal(signal.SIGCONT)
        self._terminated = True

    def stop(self, timeout: float | None = None) -> int | None:
        """The stop signal, then SIGKILL after ``timeout`` seconds; returns the exit code.
        Idempotent: a no-op (returning the old code) once it has exited."""
        if self.proc is None:
            return None
        timeout = self.stop_timeout if timeout is None else timeout
        if self.alive:
            self.terminate()
            name = self.stop_signal.name
            try:
                self.proc.wait(timeout)
                self.stopped_with = name
            except subprocess.TimeoutExpired:
                self.send_signal(signal.SIGKILL)
                self.stopped_with = f"{name} ignored for {timeout:.0f}s, SIGKILL"
        self._reap()
        return self.proc.returncode

    def wait_exit(self, timeout: float) -> bool:
        """Whether it exits (by itself: e.g. at an armed crash point) within ``timeout``."""
        if self.proc is None:
            return True
        try:
            self.proc.wait(timeout)
            return True
        except subprocess.TimeoutExpired:
            return False

    def restart(self, timeout: float | None = None) -> Self:
        """Stop (gracefully) if running, then start again with the same command line: the
        same ports and data, which is what "it came back" means to a client."""
        self.stop()
        return self.start(timeout=timeout, note="restart")

    def _reap(self, timeout: float = 30.0) -> None:
        if self.proc is None:
            return
        self.proc.wait(timeout)
        _untrack(self)
        self._after_exit()

    # -- its output ---------------------------------------------------------------------

    def output(self) -> str:
        """What the current (or last) incarnation printed so far."""
        try:
            with open(self.log_path, "rb") as f:
                f.seek(self._log_offset)
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def printed(self, pattern: re.Pattern[str]) -> re.Match[str] | None:
        """``pattern`` in what the current incarnation printed (e.g. its "listening" line)."""
        return pattern.search(self.output())

    def log_tail(self, n: int = 4000) -> str:
        """The last ``n`` characters of the whole log (every incarnation)."""
        try:
            return self.log_path.read_bytes()[-n:].decode(errors="replace")
        except OSError:
            return ""

    # -- with ---------------------------------------------------------------------------

    def __enter__(self) -> Self:
        """Starts it (and waits until it is ready) unless it runs already."""
        if not self.alive:
            try:
                self.start()
            except BaseException:
                self.__exit__(None, None, None)
                raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
