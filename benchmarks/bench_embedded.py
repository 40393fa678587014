#!/usr/bin/env python
"""Embedded benchmark: keeldb's ``keeldb.Client`` against Milvus Lite, same run, same data.

Both systems are driven through the identical ``pymilvus.MilvusClient``-style calls
(``create_collection``, ``insert``, ``query(... output_fields=["count(*)"])``, ``flush``,
``close``), so every measurement below is written once, as a function of a client factory,
and simply run once per system.

Measurements (sizes are options; defaults in brackets):

1. insert rows/s -- ``--insert-rows`` [100,000] vectors of ``--dim`` [128] float32, inserted
   in batches of ``--batch`` [5,000] row dicts ``{"id": int, "vector": list[float]}``. The row
   dicts are built from numpy *before* the timer starts: building them is the caller's cost
   and identical for both systems, so the figure is the database's own cost.
2. ``count(*)`` latency at ``--rows`` [1,000,000] rows, after the data is inserted and
   flushed: median and p99 over ``--count-calls`` [200] calls, cut short after
   ``--count-budget`` [60] seconds (never below 10 calls) for a system whose count is slow.
3. reopen time at ``--rows`` rows, the last 10% of which are only in the log: a child process
   inserts 90%, flushes, inserts the last 10% and SIGKILLs itself. A fresh child then times
   opening the client on that path plus the first ``count(*)``, and checks the count.

Every measurement runs in its own child process (this script, hidden ``_worker``
sub-command). That is required for the crash test, and it also keeps the two systems from
disturbing each other: Milvus Lite keeps a gRPC server thread and background index builders
alive in the process that opened it, and on a 2-core machine those would steal CPU from
whichever system is measured next.

The vectors are generated once with a fixed seed, saved to ``vectors.npy`` in the work
directory and memory-mapped by every child, so both systems see byte-identical data.

Timings are noisy (shared, small machines): nothing here fails on time. Targets are shown
next to the ratios and never asserted.

Usage::

    PYTHONPATH=src python benchmarks/bench_embedded.py --out results.json
    PYTHONPATH=src python benchmarks/bench_embedded.py --rows 3000 --insert-rows 2000 \\
        --batch 500 --dim 16 --systems keeldb,milvus-lite
"""

from __future__ import annotations

import argparse
import gc
import inspect
import os
import shutil
import signal
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn, Protocol

import _cli
import _report
import numpy as np
from _common import figure, package_version
from _workers import WORKER_COMMAND, measure, read_result, run_worker, write_json

COLLECTION = "bench"
DEFAULT_SEED = 20240607
WARMUP_CALLS = 3
MIN_COUNT_CALLS = 10  # below this a "p99" would just be the maximum of a handful of calls

# The four headline figures, per system. The smoke test checks all of them are present.
METRICS: dict[str, dict[str, str]] = {
    "insert_rows_per_s": {"unit": "rows/s", "better": "higher"},
    "count_median_ms": {"unit": "ms", "better": "lower"},
    "count_p99_ms": {"unit": "ms", "better": "lower"},
    "reopen_s": {"unit": "s", "better": "lower"},
}


class MilvusLikeClient(Protocol):
    """The subset of ``pymilvus.MilvusClient`` the benchmark uses; keeldb mirrors it."""

    def create_collection(self, collection_name: str, *args: Any, **kwargs: Any) -> Any: ...

    def insert(self, collection_name: str, data: Any, *args: Any, **kwargs: Any) -> Any: ...

    def query(self, collection_name: str, *args: Any, **kwargs: Any) -> Any: ...

    def flush(self, collection_name: str, *args: Any, **kwargs: Any) -> Any: ...

    def close(self) -> Any: ...


ClientFactory = Callable[[], MilvusLikeClient]


class BenchmarkError(Exception):
    """A step could not be carried out; the message is shown verbatim under the results table."""


# --------------------------------------------------------------------------------------
# Systems
# --------------------------------------------------------------------------------------


def _load_keeldb() -> Callable[[str], MilvusLikeClient]:
    """Import keeldb and return its client constructor (import cost kept out of timings)."""
    try:
        import keeldb
    except ImportError as exc:
        raise BenchmarkError(
            f"cannot import keeldb ({exc}); run with PYTHONPATH=src or `pip install -e .`"
        ) from exc
    client = getattr(keeldb, "Client", None)
    if client is None:
        raise BenchmarkError(f"keeldb ({keeldb.__file__}) has no attribute 'Client'")
    return client


def _load_milvus_lite() -> Callable[[str], MilvusLikeClient]:
    """Import pymilvus + milvus_lite and return ``MilvusClient`` (a ``.db`` URI = Milvus Lite)."""
    try:
        import milvus_lite  # noqa: F401  (without it pymilvus cannot open a local .db)
        from pymilvus import MilvusClient
    except ImportError as exc:
        raise BenchmarkError(f"cannot import pymilvus/milvus_lite ({exc})") from exc
    return MilvusClient


def _describe_keeldb() -> dict[str, str]:
    """Version and durability, for the report."""
    import keeldb

    return {
        "version": package_version("keeldb", keeldb),
        "location": str(Path(keeldb.__file__).parent),
        "durability": "each insert is acknowledged only after fsync (keeldb's normal mode)",
    }


def _describe_milvus_lite() -> dict[str, str]:
    """Version and durability. Milvus Lite's WAL fsync policy is read from its source,
    because it is not exposed through the client API."""
    import milvus_lite
    import pymilvus

    durability = "unknown (could not inspect milvus_lite.storage.wal.WAL)"
    try:
        from milvus_lite.storage.wal import WAL

        mode = inspect.signature(WAL.__init__).parameters["sync_mode"].default
        meaning = {
            "none": "the WAL is never fsynced",
            "close": (
                "insert returns once the WAL bytes are in the OS page cache; the WAL is "
                "fsynced only when it is closed (flush/rotation), so an acknowledged insert "
                "survives a process kill but not a power loss or OS crash"
            ),
            "batch": "the WAL is fsynced on every insert",
        }.get(mode, "unrecognised mode")
        durability = f"WAL sync_mode={mode!r} (library default): {meaning}"
    except Exception:  # noqa: BLE001 - internal layout may change between releases
        pass
    return {
        "version": f"milvus-lite {getattr(milvus_lite, '__version__', '?')}, "
        f"pymilvus {pymilvus.__version__}",
        "location": str(Path(milvus_lite.__file__).parent),
        "durability": durability,
    }


@dataclass(frozen=True)
class SystemSpec:
    """How to open one system. ``suffix`` exists because pymilvus only treats a URI
    ending in ``.db`` as a local Milvus Lite file."""

    key: str
    label: str
    suffix: str
    load: Callable[[], Callable[[str], MilvusLikeClient]]
    describe: Callable[[], dict[str, str]]


SYSTEMS: dict[str, SystemSpec] = {
    "keeldb": SystemSpec("keeldb", "keeldb", "", _load_keeldb, _describe_keeldb),
    "milvus-lite": SystemSpec(
        "milvus-lite", "Milvus Lite", ".db", _load_milvus_lite, _describe_milvus_lite
    ),
}


# --------------------------------------------------------------------------------------
# Measurements: each written once, as a function of a client factory
# --------------------------------------------------------------------------------------


def build_rows(vectors: np.ndarray, start: int, stop: int) -> list[dict[str, Any]]:
    """Rows ``start..stop`` as the dicts ``MilvusClient.insert`` takes; the id is the row number."""
    return [
        {"id": i, "vector": vec}
        for i, vec in zip(range(start, stop), vectors[start:stop].tolist(), strict=True)
    ]


def count_rows(client: MilvusLikeClient) -> int:
    """``count(*)`` through ``query``, exactly as a MilvusClient user writes it."""
    res = client.query(COLLECTION, filter="", output_fields=["count(*)"])
    try:
        return int(res[0]["count(*)"])
    except (IndexError, KeyError, TypeError, ValueError) as exc:
        raise BenchmarkError(
            f"query({COLLECTION!r}, filter='', output_fields=['count(*)']) returned "
            f"{res!r}; expected [{{'count(*)': N}}] ({type(exc).__name__}: {exc})"
        ) from exc


def insert_range(
    client: MilvusLikeClient, vectors: np.ndarray, start: int, stop: int, batch: int
) -> float:
    """Load rows ``start..stop`` in batches; returns seconds spent inside ``insert`` only.
    Used to fill collections for the count/reopen measurements, where speed is not measured."""
    spent = 0.0
    for lo in range(start, stop, batch):
        rows = build_rows(vectors, lo, min(lo + batch, stop))
        t0 = time.perf_counter()
        client.insert(COLLECTION, rows)
        spent += time.perf_counter() - t0
    return spent


def _check_count(got: int, expected: int, when: str) -> str | None:
    """A wrong count is reported, never raised: the timing is still worth showing."""
    if got == expected:
        return None
    return f"count(*) {when} returned {got:,}, expected {expected:,}"


def measure_insert(factory: ClientFactory, vectors: np.ndarray, dim: int, batch: int) -> dict:
    """Insert throughput. Row dicts are built before the timer (the caller's cost, equal for
    both systems); ``gc.freeze`` moves them out of the collector's view so that the cyclic
    GC traversing ~100k prebuilt dicts is not billed to whichever database allocates next."""
    n = len(vectors)
    t0 = time.perf_counter()
    batches = [build_rows(vectors, lo, min(lo + batch, n)) for lo in range(0, n, batch)]
    build_s = time.perf_counter() - t0
    gc.collect()
    gc.freeze()

    client = factory()
    try:
        client.create_collection(COLLECTION, dimension=dim, metric_type="L2")
        per_batch: list[float] = []
        t_start = time.perf_counter()
        for rows in batches:
            t0 = time.perf_counter()
            client.insert(COLLECTION, rows)
            per_batch.append(time.perf_counter() - t0)
        insert_s = time.perf_counter() - t_start
        t0 = time.perf_counter()
        client.flush(COLLECTION)
        flush_s = time.perf_counter() - t0
        error = _check_count(count_rows(client), n, "after the insert run")
    finally:
        client.close()
        gc.unfreeze()

    lat = np.asarray(per_batch) * 1e3
    return {
        "value": n / insert_s,
        "error": error,
        "detail": {
            "rows": n,
            "batches": len(batches),
            "insert_s": insert_s,
            "batch_median_ms": float(np.median(lat)),
            "batch_p99_ms": float(np.percentile(lat, 99)),
            "build_rows_s_excluded": build_s,
            "flush_after_s": flush_s,
            "insert_then_flush_rows_per_s": n / (insert_s + flush_s),
        },
    }


def measure_count(
    factory: ClientFactory,
    vectors: np.ndarray,
    dim: int,
    batch: int,
    calls: int,
    budget_s: float,
) -> dict:
    """``count(*)`` latency once everything is inserted and flushed; each call timed alone.
    The timed loop stops early after ``budget_s`` (but not before ``MIN_COUNT_CALLS``):
    a system whose count(*) scans every row (Milvus Lite 3.2 does, in Python) would otherwise
    keep the benchmark busy for many minutes at 1M rows. The calls made are reported."""
    n = len(vectors)
    client = factory()
    try:
        client.create_collection(COLLECTION, dimension=dim, metric_type="L2")
        load_s = insert_range(client, vectors, 0, n, batch)
        t0 = time.perf_counter()
        client.flush(COLLECTION)
        flush_s = time.perf_counter() - t0
        error = _check_count(count_rows(client), n, "after flush")
        for _ in range(WARMUP_CALLS):
            count_rows(client)
        samples: list[float] = []
        last = -1
        deadline = time.perf_counter() + budget_s
        for i in range(calls):
            if i >= MIN_COUNT_CALLS and time.perf_counter() > deadline:
                break
            t0 = time.perf_counter()
            last = count_rows(client)
            samples.append(time.perf_counter() - t0)
        error = error or _check_count(last, n, "in the timed loop")
    finally:
        client.close()

    ms = np.asarray(samples) * 1e3
    return {
        "count_median_ms": float(np.median(ms)),
        "count_p99_ms": float(np.percentile(ms, 99)),
        "error": error,
        "detail": {
            "rows": n,
            "calls": len(samples),
            "calls_requested": calls,
            "budget_s": budget_s,
            "warmup_calls": WARMUP_CALLS,
            "min_ms": float(ms.min()),
            "mean_ms": float(ms.mean()),
            "max_ms": float(ms.max()),
            "load_insert_s": load_s,
            "load_rows_per_s": n / load_s if load_s else None,
            "flush_s": flush_s,
        },
    }


def crash_write(
    factory: ClientFactory,
    vectors: np.ndarray,
    dim: int,
    batch: int,
    unflushed: int,
    progress: Path,
) -> NoReturn:
    """Leave a collection with ``len(vectors)`` rows, the last ``unflushed`` only in the log,
    then die by SIGKILL so that no close/atexit/finaliser runs. ``progress`` tells the parent
    how far we got, so an exception is not mistaken for the intended crash."""
    n = len(vectors)
    flushed = n - unflushed
    client = factory()
    client.create_collection(COLLECTION, dimension=dim, metric_type="L2")
    insert_range(client, vectors, 0, flushed, batch)
    client.flush(COLLECTION)
    write_json(progress, {"phase": "flushed", "rows": flushed})
    insert_range(client, vectors, flushed, n, batch)
    write_json(progress, {"phase": "killing", "rows": n, "unflushed": unflushed})
    os.kill(os.getpid(), signal.SIGKILL)
    raise AssertionError("unreachable: SIGKILL did not terminate the process")


def measure_reopen(factory: ClientFactory, expected: int) -> dict:
    """Open a crashed collection and get a correct ``count(*)``: recovery must have replayed
    the log by the time the first query answers, so open + first count is the honest figure."""
    t0 = time.perf_counter()
    client = factory()
    t1 = time.perf_counter()
    try:
        got = count_rows(client)
        t2 = time.perf_counter()
        # keeldb-only extra, after the timer: evidence that the log really was replayed.
        recovery = None
        report = getattr(client, "recovery_report", None)
        if callable(report):
            try:
                recovery = report(COLLECTION)
            except Exception as exc:  # noqa: BLE001 - informational only
                recovery = {"error": f"{type(exc).__name__}: {exc}"}
    finally:
        client.close()
    return {
        "value": t2 - t0,
        "error": _check_count(got, expected, "after reopen"),
        "detail": {
            "open_s": t1 - t0,
            "first_count_s": t2 - t1,
            "count": got,
            "recovery_report": recovery,
        },
    }


# --------------------------------------------------------------------------------------
# Worker (child process) side
# --------------------------------------------------------------------------------------


def worker_main(argv: Sequence[str]) -> int:
    """Hidden sub-command: run one measurement for one system, write the result as JSON."""
    p = argparse.ArgumentParser(prog=f"bench_embedded.py {WORKER_COMMAND}")
    p.add_argument("task", choices=["insert", "count", "crash-write", "reopen"])
    p.add_argument("--system", required=True, choices=sorted(SYSTEMS))
    p.add_argument("--path", required=True)
    p.add_argument("--result", required=True, type=Path)
    p.add_argument("--vectors", type=Path)
    p.add_argument("--rows", type=int, default=0)
    p.add_argument("--unflushed", type=int, default=0)
    p.add_argument("--batch", type=int, default=5000)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--calls", type=int, default=200)
    p.add_argument("--budget", type=float, default=60.0)
    a = p.parse_args(argv)
    return measure(a.result, lambda: run_task(a))


def run_task(a: argparse.Namespace) -> dict:
    spec = SYSTEMS[a.system]
    ctor = spec.load()  # imports happen here, before any timer

    def factory() -> MilvusLikeClient:
        return ctor(a.path)

    if a.task == "reopen":
        return measure_reopen(factory, a.rows)
    vectors = np.load(a.vectors, mmap_mode="r")[: a.rows]
    if a.task == "insert":
        return measure_insert(factory, vectors, a.dim, a.batch)
    if a.task == "count":
        return measure_count(factory, vectors, a.dim, a.batch, a.calls, a.budget)
    crash_write(factory, vectors, a.dim, a.batch, a.unflushed, a.result)


# --------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------


@dataclass
class WorkerOutcome:
    """What a child left behind: its exit code, its JSON (if any) and its wall time."""

    returncode: int | None
    result: dict | None
    wall_s: float
    stderr_tail: str


class Runner:
    """Spawns worker processes and keeps their logs next to the data in the work dir."""

    def __init__(self, workdir: Path, timeout: float) -> None:
        self.workdir = workdir
        self.timeout = timeout

    def path_for(self, spec: SystemSpec, name: str) -> Path:
        """A fresh data path; stale data from an earlier run in the same ``--workdir`` is
        removed so that reruns measure the same thing."""
        path = self.workdir / f"{spec.key}-{name}{spec.suffix}"
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
        return path

    def run(self, task: str, spec: SystemSpec, path: Path, tag: str, **opts: Any) -> WorkerOutcome:
        result = self.workdir / f"{spec.key}-{tag}.result.json"
        result.unlink(missing_ok=True)
        args = [task, "--system", spec.key, "--path", str(path), "--result", str(result)]
        for key, value in opts.items():
            args += [f"--{key}", str(value)]
        stderr_path = self.workdir / f"{spec.key}-{tag}.stderr.log"
        rc, wall = run_worker(__file__, args, stderr_path, self.timeout)
        tail = stderr_path.read_text(errors="replace")[-2000:]
        return WorkerOutcome(rc, read_result(result), wall, tail)

    def figures(self, task: str, spec: SystemSpec, keys: dict[str, str], **opts: Any) -> dict:
        """Run ``task`` on fresh data; its figures (``keys``: figure -> its value's key in
        the child's result), or each with the reason the child produced none."""
        out = self.run(task, spec, self.path_for(spec, task), task, **opts)
        r = out.result
        if not (r and r.get("ok")):
            err = _failure(out, task, self.timeout)
            return {name: figure(None, err) for name in keys}
        return {name: figure(r[key], r["error"], **r["detail"]) for name, key in keys.items()}


def _failure(outcome: WorkerOutcome, what: str, timeout: float) -> str:
    """One line explaining why a child produced no figure."""
    if outcome.result and outcome.result.get("error") and not outcome.result.get("ok", True):
        return f"{what}: {outcome.result['error']}"
    if outcome.returncode is None:
        return f"{what}: timed out after {timeout:.0f}s"
    last = outcome.stderr_tail.strip().splitlines()[-1:] or ["no output"]
    return f"{what}: child exited with code {outcome.returncode} ({last[0][:300]})"


def bench_insert(runner: Runner, spec: SystemSpec, vectors: Path, cfg: argparse.Namespace) -> dict:
    return runner.figures("insert", spec, {"insert_rows_per_s": "value"}, vectors=vectors,
                          rows=cfg.insert_rows, batch=cfg.batch, dim=cfg.dim)  # fmt: skip


def bench_count(runner: Runner, spec: SystemSpec, vectors: Path, cfg: argparse.Namespace) -> dict:
    keys = {"count_median_ms": "count_median_ms", "count_p99_ms": "count_p99_ms"}
    return runner.figures("count", spec, keys, vectors=vectors, rows=cfg.rows, batch=cfg.batch,
                          dim=cfg.dim, calls=cfg.count_calls, budget=cfg.count_budget)  # fmt: skip


def bench_reopen(runner: Runner, spec: SystemSpec, vectors: Path, cfg: argparse.Namespace) -> dict:
    """Crash a writer, then reopen. Extra repeats reopen byte-for-byte copies of the crashed
    directory (made before the first reopen, which may checkpoint the log), because a single
    multi-second sample on a noisy machine says little."""
    path = runner.path_for(spec, "reopen")
    unflushed = cfg.unflushed_rows
    writer = runner.run(
        "crash-write",
        spec,
        path,
        "crash-write",
        vectors=vectors,
        rows=cfg.rows,
        unflushed=unflushed,
        batch=cfg.batch,
        dim=cfg.dim,
    )
    progress = writer.result or {}
    if writer.returncode != -signal.SIGKILL or progress.get("phase") != "killing":
        err = _failure(writer, "crash-writer", runner.timeout)
        if writer.returncode == 0:
            err = "crash-writer: exited normally instead of being SIGKILLed"
        return {"reopen_s": figure(None, f"{err} (got to phase {progress.get('phase')!r})")}

    # Both systems keep their log under a directory named "wal"; if it is empty the
    # "unflushed" rows were flushed behind our back and the test would not test recovery.
    # (It can also hold logs that were already flushed but are not deleted yet.)
    log_files = {
        str(f.relative_to(path)): f.stat().st_size
        for f in sorted(path.rglob("*"))
        if f.is_file() and "wal" in f.relative_to(path).parts
    }
    paths = [path]
    for i in range(2, cfg.reopen_repeats + 1):
        copy = runner.path_for(spec, f"reopen-copy{i}")
        shutil.copytree(path, copy, symlinks=True)
        paths.append(copy)

    samples: list[dict] = []
    errors: list[str] = []
    for i, p in enumerate(paths, start=1):
        out = runner.run("reopen", spec, p, f"reopen{i}", rows=cfg.rows)
        if out.result and out.result.get("ok"):
            samples.append(
                {
                    **out.result["detail"],
                    "reopen_s": out.result["value"],
                    "process_wall_s": out.wall_s,
                }
            )
            if out.result["error"]:
                errors.append(out.result["error"])
        else:
            errors.append(_failure(out, f"reopen #{i}", runner.timeout))
    for p in paths[1:]:
        shutil.rmtree(p, ignore_errors=True)

    if not samples:
        return {"reopen_s": figure(None, "; ".join(dict.fromkeys(errors)))}
    times = [s["reopen_s"] for s in samples]
    return {
        "reopen_s": figure(
            float(np.median(times)),
            "; ".join(dict.fromkeys(errors)) or None,
            rows=cfg.rows,
            unflushed_rows=unflushed,
            log_bytes_at_crash=sum(log_files.values()),
            log_files_at_crash=log_files,
            samples=samples,
            note="open + first count(*) in a fresh process; process_wall_s adds interpreter "
            "start-up and imports",
        )
    }


BENCHES: list[tuple[str, Callable[[Runner, SystemSpec, Path, argparse.Namespace], dict]]] = [
    ("insert", bench_insert),
    ("count(*)", bench_count),
    ("crash + reopen", bench_reopen),
]


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if metric == "insert_rows_per_s":
        return f"{value:,.0f}"
    return f"{value:.3f}" if value < 100 else f"{value:,.1f}"


def _fmt_bytes(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1024**2:
        return f"{n / 1024:.1f} KiB"
    return f"{n / 1024**2:,.1f} MiB"


def compute_targets(systems: dict[str, dict], ratios: dict[str, dict]) -> dict[str, dict]:
    """The issue's targets, evaluated for display only; ``met`` is None when not measurable."""
    k = systems.get("keeldb", {}).get("metrics", {})
    ins = ratios["insert_rows_per_s"]["value"]
    med = k.get("count_median_ms", {}).get("value")
    p99 = k.get("count_p99_ms", {}).get("value")
    return {
        "insert_rows_per_s": _report.target(">= 3x Milvus Lite", ins, 3),
        "count_median_ms": _report.target("keeldb < 1 ms", med, 1, higher=False),
        "count_p99_ms": _report.target("keeldb < 1 ms", p99, 1, higher=False),
    }


def _ratio_cell(_metric: str, ratio: dict) -> str:
    if ratio["value"] is None:
        return "n/a"
    return f"{_report.times(ratio['value'])}\n({ratio['computed_as']})"


def _insert_detail(d: dict) -> list[str]:
    return [f"  insert: batch median {d['batch_median_ms']:.1f} ms, p99 {d['batch_p99_ms']:.1f} "
            f"ms; flush afterwards {d['flush_after_s']:.3f} s (insert+flush "
            f"{d['insert_then_flush_rows_per_s']:,.0f} rows/s)"]  # fmt: skip


def _count_detail(d: dict) -> list[str]:
    cut = f" (cut short by the {d['budget_s']:g} s budget)" if d["calls"] < d["calls_requested"] else ""
    return [f"  count(*): {d['calls']} timed calls{cut}, min {d['min_ms']:.3f} / mean "
            f"{d['mean_ms']:.3f} / max {d['max_ms']:.3f} ms; loading the {d['rows']:,} rows took "
            f"{d['load_insert_s']:.1f} s in insert + {d['flush_s']:.1f} s flush"]  # fmt: skip


def _reopen_detail(d: dict) -> list[str]:
    parts = ", ".join(
        f"{s['reopen_s']:.3f}s (open {s['open_s']:.3f} + count {s['first_count_s']:.3f};"
        f" process {s['process_wall_s']:.2f})"
        for s in d["samples"]
    )
    logs = d["log_files_at_crash"]
    sizes = ", ".join(f"{Path(k).name} {_fmt_bytes(v)}" for k, v in logs.items())
    return [f"  reopen samples: {parts}", f"  log files under wal/ at the SIGKILL: {sizes or 'none'}"]


# The lines under the table that explain a system's figure, when it has one.
DETAILS: dict[str, Callable[[dict], list[str]]] = {
    "insert_rows_per_s": _insert_detail,
    "count_median_ms": _count_detail,
    "reopen_s": _reopen_detail,
}


def print_report(report: dict) -> None:
    console = _report.console(140)
    cfg = report["config"]
    systems = report["systems"]
    labels = {key: SYSTEMS[key].label for key in systems}
    rows_label = f"{cfg['rows']:,} rows"
    names = {
        "insert_rows_per_s": f"insert rows/s ({cfg['insert_rows']:,} x {cfg['dim']}-d, "
        f"batch {cfg['batch']:,}) [higher better]",
        "count_median_ms": f"count(*) median ms @ {rows_label} [lower better]",
        "count_p99_ms": f"count(*) p99 ms @ {rows_label} [lower better]",
        "reopen_s": f"reopen + first count(*) s @ {rows_label}, {cfg['unflushed_rows']:,} "
        f"only in log [lower better]",
    }
    _report.print_comparison(
        console, report, names=names, labels=labels,
        title="keeldb vs Milvus Lite, embedded, same data",
        caption="ratio > 1 means keeldb is better (throughput: keeldb / Milvus Lite; "
        "times: Milvus Lite / keeldb). Targets are shown, never asserted.",
        cell=lambda metric, fig: _fmt(metric, fig["value"]), ratio_cell=_ratio_cell,
    )  # fmt: skip

    for key, info in systems.items():
        console.print(f"[bold]{labels[key]}[/bold] {info.get('version', '')}")
        console.print(f"  durability: {info.get('durability', 'unknown')}")
        for metric, lines in DETAILS.items():
            fig = info["metrics"][metric]
            if fig["value"]:
                for line in lines(fig["detail"]):
                    console.print(line)
    console.print(
        "Row dicts are built from numpy before the insert timer starts: that is the caller's "
        "cost, equal for both systems, so insert rows/s is the database's own cost."
    )
    _report.print_machine(console, report["machine"])
    console.print(f"command: {report['command']}")


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Compare keeldb's embedded client with Milvus Lite on the same data.",
    )
    p.add_argument("--rows", type=int, default=1_000_000,
                   help="rows for the count(*) and reopen measurements (default 1,000,000)")
    p.add_argument("--insert-rows", type=int, default=100_000,
                   help="rows for the insert-throughput measurement (default 100,000)")
    p.add_argument("--dim", type=int, default=128, help="vector dimension (default 128)")
    p.add_argument("--batch", type=int, default=5000, help="rows per insert call (default 5000)")
    p.add_argument("--systems", default="keeldb,milvus-lite",
                   help=f"comma-separated, from {', '.join(SYSTEMS)} (default both)")
    p.add_argument("--unflushed-rows", type=int,
                   help="rows left only in the log for the reopen test (default rows/10)")
    p.add_argument("--count-calls", type=int, default=200, help="timed count(*) calls (default 200)")
    p.add_argument("--count-budget", type=float, default=60.0,
                   help="stop the timed count(*) loop after this many seconds, once at least "
                   f"{MIN_COUNT_CALLS} calls are done (default 60)")
    p.add_argument("--reopen-repeats", type=int, default=3,
                   help="reopen samples; #2.. reopen copies of the crashed data (default 3)")
    _cli.add_run_options(p, DEFAULT_SEED, "data")
    _cli.add_child_timeout(p, 1800.0)
    a = p.parse_args(argv)

    a.systems = _cli.names(p, "--systems", a.systems, list(SYSTEMS))
    if a.unflushed_rows is None:
        a.unflushed_rows = a.rows // 10
    _cli.at_least_one(p, a, ("rows", "insert_rows", "dim", "batch", "count_calls", "reopen_repeats"))
    if a.count_budget <= 0:
        p.error("--count-budget must be > 0")
    if not 0 <= a.unflushed_rows < a.rows:
        p.error("--unflushed-rows must be in [0, rows)")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    return _cli.main(argv, parse_args, "keeldb-bench-", run_benchmarks, print_report,
                     worker_main=worker_main)  # fmt: skip


def run_benchmarks(cfg: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> dict:
    """Generate the shared vectors, then run every measurement for every system, interleaving
    systems per measurement so slow drifts in machine load hit both alike."""
    n_vec = max(cfg.rows, cfg.insert_rows)
    log(f"generating {n_vec:,} x {cfg.dim} float32 vectors (seed {cfg.seed}) in {workdir}")
    rng = np.random.default_rng(cfg.seed)
    vectors_path = workdir / "vectors.npy"
    np.save(vectors_path, rng.random((n_vec, cfg.dim), dtype=np.float32))

    runner = Runner(workdir, cfg.child_timeout)
    systems: dict[str, dict] = {}
    for key in cfg.systems:
        spec = SYSTEMS[key]
        entry: dict[str, Any] = {"label": spec.label, "metrics": {}}
        try:
            spec.load()
            entry.update(spec.describe())
            entry["available"] = True
        except Exception as exc:  # noqa: BLE001 - an absent system is reported, not fatal
            entry["available"] = False
            entry["unavailable_reason"] = f"{type(exc).__name__}: {exc}"
            log(f"[red]{spec.label} unavailable: {exc}[/red]")
        systems[key] = entry

    for title, bench in BENCHES:
        for key in cfg.systems:
            spec = SYSTEMS[key]
            entry = systems[key]
            if not entry["available"]:
                continue
            log(f"{title}: {spec.label} ...")
            t0 = time.perf_counter()
            try:
                figures = bench(runner, spec, vectors_path, cfg)
            except Exception as exc:  # noqa: BLE001 - keep going with the other measurements
                figures = {}
                log(f"[red]{title} for {spec.label} failed in the parent: {exc!r}[/red]")
                entry.setdefault("errors", []).append(f"{title}: {type(exc).__name__}: {exc}")
            entry["metrics"].update(figures)
            for metric, fig in figures.items():
                shown = _fmt(metric, fig["value"])
                log(
                    f"  {metric} = {shown}"
                    + (f"  [red]{fig['error']}[/red]" if fig["error"] else "")
                )
            log(f"  ({time.perf_counter() - t0:.1f}s)")

    ratios = _report.finish(systems, METRICS)
    return {
        "config": {
            **_cli.settings(cfg, "rows", "insert_rows", "unflushed_rows", "dim", "batch",
                            "count_calls", count_budget_s="count_budget"),
            **_cli.settings(cfg, "reopen_repeats", "seed", "systems"),
            "workdir": str(workdir),
            "workdir_kept": cfg.workdir is not None,
            "vectors": "numpy default_rng(seed).random((n, dim), float32), ids 0..n-1",
        },
        "systems": systems,
        "ratios": ratios,
        "targets": compute_targets(systems, ratios),
    }


if __name__ == "__main__":
    _cli.run_script(main, worker_main)
