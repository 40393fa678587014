"""``keeldb.testing``: the one process supervisor under every server that tests, ``keeldb
chaos`` and the benchmarks start — and what the shipped packages may not do: ``keeldb.cluster``
registers nothing at import and holds no test bed; ``keeldb.chaos`` imports no engine.

The children here are tiny Python programs, so every behaviour is checked in well under a
second per test: readiness from what a process prints, its log per incarnation, SIGTERM then
SIGKILL, a paused process stopped at once, a whole process group killed, the environment of
one start, the atexit hook registered at the first start and not at import.
"""

from __future__ import annotations

import ast
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keeldb.chaos.targets import ServerTarget
from keeldb.testing import process as process_module
from keeldb.testing.process import Process, ProcessExited, stop_together

SRC = Path(__file__).resolve().parents[1] / "src" / "keeldb"
READY = re.compile(r"ready (\d+)")

# A child that prints its pid once it is "ready", says goodbye on SIGTERM (unless told to
# ignore it) and otherwise sleeps.
CHILD = """
import os, signal, sys, time
mode = sys.argv[1]
if mode == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
else:
    signal.signal(signal.SIGTERM, lambda *_: (print("bye", flush=True), sys.exit(0)))
if mode == "exit-early":
    print("cannot start", flush=True)
    sys.exit(3)
if mode == "grandchild":
    import subprocess
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    print("grandchild", child.pid, flush=True)
if mode == "env":
    print("env", os.environ.get("KEELDB_CRASH_AT", "-"), os.environ.get("EXTRA", "-"), flush=True)
if mode != "never-ready":
    print("ready", os.getpid(), flush=True)
while True:
    time.sleep(0.05)
"""


class Child(Process):
    name = "child"
    ready_timeout = 20.0

    def __init__(self, log: Path, mode: str = "normal", **kwargs: object) -> None:
        super().__init__(log, **kwargs)  # type: ignore[arg-type]
        self.mode = mode

    def command(self) -> list[str]:
        return [sys.executable, "-c", CHILD, self.mode]

    def ready(self) -> bool:
        return self.printed(READY) is not None


class SessionChild(Child):
    new_session = True


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_start_waits_for_ready_and_stop_sends_sigterm(tmp_path: Path) -> None:
    p = Child(tmp_path / "child.log").start()
    try:
        assert p.alive and p.startup_s is not None and p.startup_s >= 0
        m = p.printed(READY)
        assert m is not None and int(m.group(1)) == p.pid
        assert p in process_module.running()
    finally:
        code = p.stop()
    assert code == 0 and p.stopped_with == "SIGTERM" and not p.alive
    assert p not in process_module.running()
    assert "bye" in p.output()
    assert p.stop() == 0  # idempotent


def test_stop_kills_what_ignores_sigterm(tmp_path: Path) -> None:
    p = Child(tmp_path / "child.log", "ignore-term").start()
    t0 = time.monotonic()
    assert p.stop(timeout=0.5) == -signal.SIGKILL
    assert time.monotonic() - t0 < 10
    assert p.stopped_with == "SIGTERM ignored for 0s, SIGKILL"


def test_a_paused_process_stops_at_once(tmp_path: Path) -> None:
    p = Child(tmp_path / "child.log").start()
    p.send_signal(signal.SIGSTOP)
    t0 = time.monotonic()
    assert p.stop(timeout=30) == 0  # SIGCONT with the SIGTERM: no wait for the timeout
    assert time.monotonic() - t0 < 10


def test_kill_and_restart_keep_one_log_each_incarnation_apart(tmp_path: Path) -> None:
    log = tmp_path / "child.log"
    p = Child(log).start()
    first = p.pid
    p.kill()
    assert p.returncode == -signal.SIGKILL and not p.alive
    p.start(note="after the kill")
    try:
        assert p.pid != first and p.starts == 2
        text = log.read_text()
        assert text.count("--- ") == 2 and "child: after the kill ---" in text
        assert f"ready {first}" in text and f"ready {first}" not in p.output()
        assert p.printed(READY).group(1) == str(p.pid)  # type: ignore[union-attr]
        p.restart()
        assert p.starts == 3 and "bye" in log.read_text()  # restart: a graceful stop first
    finally:
        p.stop()


def test_exit_before_ready_and_never_ready(tmp_path: Path) -> None:
    early = Child(tmp_path / "early.log", "exit-early")
    with pytest.raises(ProcessExited, match="exited with code 3 while starting") as e:
        early.start()
    assert "cannot start" in str(e.value)  # what it printed, to explain why
    assert early not in process_module.running()
    never = Child(tmp_path / "never.log", "never-ready")
    with pytest.raises(TimeoutError, match="not ready after"):
        never.start(timeout=0.5)
    assert never.alive  # left as it is: its owner stops it
    never.stop()


def test_its_own_session_takes_its_children_along(tmp_path: Path) -> None:
    p = SessionChild(tmp_path / "child.log", "grandchild").start()
    m = re.search(r"grandchild (\d+)", p.output())
    assert m is not None
    grandchild = int(m.group(1))
    assert os.getpgid(p.pid) == p.pid != os.getpgid(0)  # type: ignore[arg-type]
    p.kill()
    deadline = time.monotonic() + 10
    while not _gone(grandchild) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _gone(grandchild), "SIGKILL reached the process, not its group"


def test_environment_of_one_start(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KEELDB_CRASH_AT", "inherited:1")
    p = Child(tmp_path / "child.log", "env", env={"EXTRA": "always"})
    for env, want in [
        (None, "env inherited:1 always"),
        ({"KEELDB_CRASH_AT": None}, "env - always"),
        ({"KEELDB_CRASH_AT": "armed:2", "EXTRA": None}, "env armed:2 -"),
        (None, "env inherited:1 always"),  # one start's environment is not kept
    ]:
        p.start(env)
        assert want in p.output(), (env, p.output())
        p.stop()


def test_a_chaos_target_never_passes_on_an_armed_crash_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runner arms a crash point for one start only; a server must not inherit one the
    chaos command itself was started with."""
    monkeypatch.setenv("KEELDB_CRASH_AT", "wal.after_append:1")
    target = ServerTarget(tmp_path / "data", Child(tmp_path / "server.log", "env"))
    for env, want in [(None, "env -"), ({"KEELDB_CRASH_AT": "gc.during:1"}, "env gc.during:1"),
                      (None, "env -")]:  # fmt: skip
        target.start(env, timeout=20)
        assert want in target.server.output()
        assert target.proc is not None and target.alive()
        target.stop()
        assert target.proc.returncode == 0


def test_stop_together_takes_one_timeout_for_all(tmp_path: Path) -> None:
    stubborn = [Child(tmp_path / f"c{i}.log", "ignore-term").start() for i in range(3)]
    t0 = time.monotonic()
    stop_together(stubborn, timeout=1.0)
    assert time.monotonic() - t0 < 8  # not 3 x the timeout (and generous for a loaded box)
    assert all(p.returncode == -signal.SIGKILL for p in stubborn)


def test_the_atexit_hook_comes_with_the_first_start_not_the_import(tmp_path: Path) -> None:
    code = f"""
import atexit, sys
sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})
hooks = []
atexit.register = lambda f, *a, **k: hooks.append(f.__module__ + "." + f.__qualname__)
import keeldb.testing.process as process, keeldb.testing.server, keeldb.testing.testbed
import keeldb.testing.cluster
from test_testing_process import Child
ours = lambda: [h for h in hooks if h.startswith("keeldb")]
assert ours() == [], ours()
Child(__import__("pathlib").Path({str(tmp_path / "c.log")!r})).start().stop()
print(ours())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "['keeldb.testing.process.stop_all_running']"


# -- what the shipped packages may import and do at import -----------------------------------


def test_keeldb_cluster_registers_nothing_at_import_and_holds_no_test_bed() -> None:
    pytest.importorskip("boto3")  # keeldb.cluster.objectstore needs the cluster extra
    code = """
import atexit, importlib, json, pkgutil, sys
hooks = []
atexit.register = lambda f, *a, **k: hooks.append(f.__module__ + "." + f.__qualname__)
import keeldb.cluster
names = [m.name for m in pkgutil.iter_modules(keeldb.cluster.__path__, "keeldb.cluster.")]
for name in names:
    importlib.import_module(name)
print(json.dumps({"names": names, "hooks": [h for h in hooks if h.startswith("keeldb")],
                  "testing": sorted(m for m in sys.modules if m.startswith("keeldb.testing"))}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)
    assert "keeldb.cluster.testbed" not in found["names"]
    assert "keeldb.cluster.node" in found["names"]  # the walk did find the package's modules
    assert found["hooks"] == []
    assert found["testing"] == [], "the shipped cluster package imports the test supervisor"


def _keeldb_imports(path: Path) -> list[tuple[str, str]]:
    """(module imported, function it is imported in or "<module>") for every keeldb import."""
    tree = ast.parse(path.read_text())
    out: list[tuple[str, str]] = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inner = child.name if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else where
            if isinstance(child, ast.Import):
                out.extend((a.name, where) for a in child.names if a.name.startswith("keeldb"))
            elif isinstance(child, ast.ImportFrom) and (child.module or "").startswith("keeldb"):
                out.append((child.module or "", where))
            visit(child, inner)

    visit(tree, "<module>")
    return out


def _outside(package: str, allowed: tuple[str, ...]) -> list[str]:
    bad = []
    for path in sorted((SRC / package).glob("*.py")):
        for module, where in _keeldb_imports(path):
            if not any(module == a or module.startswith(a + ".") for a in allowed):
                bad.append(f"{path.name}:{where}: {module}")
    return bad


def test_chaos_imports_nothing_of_the_engine() -> None:
    """keeldb.chaos judges any Milvus-compatible server through pymilvus: it may import
    itself, keeldb.testing (the processes it starts) and keeldb.errors. The one exception:
    the runner asks the server's own storage layer which crash points exist."""
    bad = _outside("chaos", ("keeldb.chaos", "keeldb.testing", "keeldb.errors"))
    assert bad == ["faults.py:known_crash_points: keeldb.storage.crash"]


def test_testing_imports_only_clients_for_what_it_starts() -> None:
    """keeldb.testing starts processes; besides itself it needs the etcd and object-store
    clients (to see a test bed is ready, and to hand clients to tests) and keeldb.errors."""
    allowed = ("keeldb.testing", "keeldb.errors", "keeldb.cluster.etcd", "keeldb.cluster.objectstore")
    assert _outside("testing", allowed) == []
