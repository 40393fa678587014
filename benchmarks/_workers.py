"""Measurements in child processes (imported as ``_workers``). ``bench_ann`` and
``bench_embedded`` run each measurement in a fresh process — the script itself, under the
hidden ``_worker`` sub-command — so that one system's threads, caches and crashes never
touch the next measurement. The child writes its result as JSON; the parent waits for it
(relaying its progress lines) and reads it back."""

from __future__ import annotations

import faulthandler
import json
import os
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from _common import json_default, package_version

WORKER_COMMAND = "_worker"
PROGRESS = "[bench] "  # child stderr lines with this prefix are relayed by the parent


# -- the child ----------------------------------------------------------------------------


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write-then-rename, so nobody reads half a file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(payload, indent=2, default=json_default))
    os.replace(tmp, path)


def progress(msg: str) -> None:
    """A line the parent relays to its own log while the child runs."""
    print(PROGRESS + msg, file=sys.stderr, flush=True)


def measure(result_path: Path, fn: Callable[[], dict[str, Any]]) -> int:
    """Run one measurement and write ``{"ok": true, ...its result}``, or ``{"ok": false,
    "error", "traceback"}``: any failure becomes a reported error, not a crash. ``kill -USR1
    <pid>`` prints every thread's stack into the child's log meanwhile, which is how to see
    what a slow or stuck measurement is doing."""
    faulthandler.register(signal.SIGUSR1, all_threads=True)
    try:
        result = fn()
    except Exception as exc:  # noqa: BLE001 - reported in the results
        write_json(result_path, {"ok": False, "error": f"{type(exc).__name__}: {exc}",
                                 "traceback": traceback.format_exc()})  # fmt: skip
        return 1
    write_json(result_path, {"ok": True, **result})
    return 0


def exit_worker(code: int) -> NoReturn:
    """End a worker without running atexit handlers. Its result is already on disk, and
    Milvus Lite's atexit hook closes its server and finishes background index builds first:
    tens of seconds per child at 1M rows, which no measurement includes, only the wait."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


# -- the parent ---------------------------------------------------------------------------


def run_worker(
    script: str,
    args: Sequence[str],
    log_path: Path,
    timeout: float,
    *,
    env: dict[str, str] | None = None,
    relay: Callable[[str], None] | None = None,
) -> tuple[int | None, float]:
    """``python script _worker args...`` with its output in ``log_path``, killed after
    ``timeout`` seconds; its progress lines go to ``relay`` while it runs. Returns the exit
    code (None: timed out) and the wall time."""
    cmd = [sys.executable, str(Path(script).resolve()), WORKER_COMMAND, *args]
    t0 = time.perf_counter()
    with open(log_path, "wb") as err:
        proc = subprocess.Popen(cmd, stdout=err, stderr=err, env=env)
        stop = threading.Event()
        relaying = None
        if relay is not None:
            relaying = threading.Thread(target=_relay, args=(log_path, stop, relay), daemon=True)
            relaying.start()
        try:
            rc: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            rc = None
        finally:
            stop.set()
            if relaying is not None:
                relaying.join()
    return rc, time.perf_counter() - t0


def read_result(path: Path) -> dict[str, Any] | None:
    """What a child wrote, or None if it wrote nothing (it died, or timed out)."""
    return json.loads(path.read_text()) if path.exists() else None


def run_system(
    script: str, key: str, label: str, workdir: Path, params: dict[str, Any], timeout: float,
    log: Callable[[str], None],
) -> tuple[dict[str, Any], dict[str, Any] | None]:  # fmt: skip
    """One system's worker (``key`` is "keeldb" or "milvus-lite"), run in ``workdir/key``
    with ``params``: its report entry (label, version, or why it is unavailable or failed)
    and its result, None if there is none."""
    entry: dict[str, Any] = {"label": label, "metrics": {}}
    if key == "milvus-lite":
        try:
            import milvus_lite

            entry["version"] = package_version("milvus-lite", milvus_lite)
        except ImportError:
            entry["unavailable_reason"] = "milvus-lite is not installed (the 'bench' extra)"
            return entry, None
    else:
        import keeldb

        entry["version"] = package_version("keeldb", keeldb)
    where = workdir / key
    where.mkdir(parents=True, exist_ok=True)
    result_path = where / "result.json"
    log(f"{label} ...")
    rc, wall = run_worker(script, [key, str(where), str(result_path), json.dumps(params)], where / "child.log",
                          timeout, relay=log)  # fmt: skip
    res = read_result(result_path)
    if not res or not res.get("ok"):
        entry.setdefault("errors", []).append((res or {}).get("error") or f"child exited {rc} after {wall:.0f}s")
        return entry, None
    return entry, res


def _relay(log_path: Path, stop: threading.Event, relay: Callable[[str], None]) -> None:
    pos = 0
    buf = b""
    while True:
        done = stop.wait(0.5)
        try:
            with open(log_path, "rb") as f:
                f.seek(pos)
                chunk = f.read()
        except OSError:
            chunk = b""
        pos += len(chunk)
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            text = line.decode(errors="replace")
            if text.startswith(PROGRESS):
                relay("  " + text[len(PROGRESS) :])
        if done:
            return


def job_worker(argv: Sequence[str], jobs: dict[str, Callable[[dict], dict]]) -> int:
    """A worker that runs one job file (``run_job``): ``jobs[job["task"]](job)``."""
    job_path, result_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text())
    return measure(result_path, lambda: jobs[job["task"]](job))


def run_job(script: str, workdir: Path, tag: str, job: dict, timeout: float, log: Callable[[str], None]) -> dict:
    """Run ``job`` (a dict with its ``task``) in a ``script`` worker (``job_worker``); its
    result, or why there is none, with the child's wall time."""
    job_path, result_path = workdir / f"{tag}.job.json", workdir / f"{tag}.result.json"
    log_path = workdir / f"{tag}.stderr.log"
    result_path.unlink(missing_ok=True)
    write_json(job_path, job)
    log(f"{tag} ...")
    rc, wall = run_worker(script, [str(job_path), str(result_path)], log_path, timeout, relay=log)
    out = read_result(result_path)
    if out is None:
        tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
        out = {"ok": False, "error": f"child {'timed out' if rc is None else f'exit code {rc}'} ({tail[0][:300]})"}
    out["process_wall_s"] = wall
    return out

