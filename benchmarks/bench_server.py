#!/usr/bin/env python
"""Server benchmark: ``keeldb serve`` against ``milvus-lite server``, same run, same data.

Both servers are started by this script as child processes on a free loopback port, each
with a fresh temporary data directory, and both are driven through the very same
``pymilvus.MilvusClient(uri="http://127.0.0.1:PORT")`` calls, so every measurement below is
written once and run once per system. Only one server is alive at a time: the first is
stopped before the second starts, so neither steals CPU from the other.

Data (sizes are options; defaults in brackets): ``--rows`` [100,000] vectors of ``--dim``
[128] float32 drawn around ``--clusters`` [1,000] Gaussian centres (fixed seed), so that
approximate indexes have real structure to exploit and recall@10 means something, plus
``--queries`` [200] held-out query vectors from the same distribution (not in the
collection). Exact top-10 ground truth comes from ``faiss.IndexFlatL2`` (numpy if faiss is
missing).

Measurements, per system:

1. insert rows/s -- a collection made the quick way (``create_collection(name,
   dimension=dim, metric_type="L2")``), filled with ``--batch`` [5,000]-row lists of
   ``{"id": int, "vector": list[float]}``. The row dicts are built before the timer: they are
   the caller's cost and identical for both systems. ``flush`` follows, timed on its own.
2. single-thread search QPS, nq=1, top-10 -- for each index type in ``--index-types``
   (release, drop the index, create the new one, load), the search-time parameter is swept
   (IVF: ``nprobe``; HNSW: ``ef``) from cheap to expensive; each setting runs every query
   once, timed one by one, and its recall@10 against the exact answer is computed. A sweep
   stops at the first setting that reaches ``--recall-target`` [0.95]: later ones only cost
   more. An index type whose ``create_index`` or ``load_collection`` fails is recorded as
   "unsupported" with the server's message. Reported: the FLAT figure, and the fastest
   configuration of any type that reached the recall target (with its recall).
3. concurrent latency -- ``--threads`` [8] threads, each with its own
   ``MilvusClient(uri, dedicated=True)``, share ``--concurrent-queries`` [2,000] searches
   (nq=1, top-10) on the system's best configuration: p50, p99 and total QPS.

Honest caveats, also printed with the results:

* keeldb's current version answers every index type with an exact scan (ANN indexes come
  in a later issue): its "best index" is whatever exact configuration was fastest, and its
  recall is 1.0 as measured.
* Searches pass ``output_fields=["id"]``: Milvus Lite 3.2 returns every field, including the
  whole vector, when ``output_fields`` is omitted (Milvus returns only the primary key), and
  shipping 128 floats per hit would bill it for something the benchmark does not ask for.
* Build parameters (``nlist``, ``M``, ``efConstruction``) are chosen equal to Milvus Lite's
  defaults because Milvus Lite 3.2.2 reads them only from a JSON ``params`` key, while
  pymilvus 3.x sends them as flat key/value pairs: whatever is asked, it builds with its
  defaults. ``describe_index`` output is kept in the JSON for each index.
* Searching can be slow on one system and fast on the other; ``--search-budget`` and
  ``--concurrent-budget`` bound the wall time of one sweep step and of the concurrent run
  (never fewer than a handful of queries); how many queries actually ran is reported.

Before each timed phase the script waits (up to ``IDLE_WAIT_MAX_S``) for the server process
to go idle, so background work -- e.g. Milvus Lite building indexes after a flush -- is not
billed to the next measurement; the wait is reported, never timed.

Timings are noisy (shared, small machines): nothing here fails on time. The issue's targets
are shown next to the ratios and never asserted. A step that fails is reported with the
reason; the script goes on with the next step and still exits 0.

Usage::

    PYTHONPATH=src python benchmarks/bench_server.py --out results.json
    PYTHONPATH=src python benchmarks/bench_server.py --quick          # tiny sizes, for CI
    PYTHONPATH=src python benchmarks/bench_server.py --systems keeldb --rows 20000
"""

from __future__ import annotations

import argparse
import gc
import itertools
import os
import shlex
import shutil
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _cli
import _report
import numpy as np
from _common import (
    EF_SWEEP,
    NPROBE_SWEEP,
    TOP_K,
    error_text,
    figure,
    package_version,
    recall_at_k,
)

if TYPE_CHECKING:
    from keeldb.testing.server import MilvusServer

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:  # keeldb.testing from this checkout if not installed
    sys.path.insert(1, str(ROOT / "src"))

COLLECTION = "bench_server"
METRIC_TYPE = "L2"
DEFAULT_SEED = 20240611

# Seconds. pymilvus would otherwise wait forever on some calls; these are generous on purpose.
RPC_TIMEOUT_S = 120.0  # insert, search, describe, release, drop
BUILD_TIMEOUT_S = 1800.0  # flush, create_index, load_collection (index builds happen here)
SERVER_READY_TIMEOUT_S = 90.0
SERVER_STOP_TIMEOUT_S = 30.0
IDLE_WAIT_MAX_S = 180.0  # waiting for a server's background work before a timed phase
IDLE_CPU_FRACTION = 0.10  # "idle" = the server used < 10% of one core over IDLE_WINDOW_S
IDLE_WINDOW_S = 1.0
WARMUP_QUERIES = 3
MIN_BUDGET_QUERIES = 10  # a budget never cuts a step below this many queries
MAX_ERRORS_PER_THREAD = 5

# The figures every system gets (the smoke test checks all are present). "better" orients
# the ratio column; "ratio": False for recall, which is a quality figure, not a speed.
METRICS: dict[str, dict[str, Any]] = {
    "insert_rows_per_s": {"unit": "rows/s", "better": "higher", "ratio": True},
    "flush_s": {"unit": "s", "better": "lower", "ratio": True},
    "flat_qps": {"unit": "queries/s", "better": "higher", "ratio": True},
    "flat_recall": {"unit": "recall@10", "better": "higher", "ratio": False},
    "best_qps": {"unit": "queries/s", "better": "higher", "ratio": True},
    "best_recall": {"unit": "recall@10", "better": "higher", "ratio": False},
    "concurrent_p50_ms": {"unit": "ms", "better": "lower", "ratio": True},
    "concurrent_p99_ms": {"unit": "ms", "better": "lower", "ratio": True},
    "concurrent_qps": {"unit": "queries/s", "better": "higher", "ratio": True},
}

# The targets (keeldb / Milvus Lite, oriented as the ratio column). Shown, never asserted.
TARGETS: dict[str, tuple[str, float]] = {
    "insert_rows_per_s": (">= 3x Milvus Lite", 3.0),
    "flat_qps": (">= 10x Milvus Lite (search QPS)", 10.0),
    "best_qps": (">= 10x Milvus Lite (search QPS)", 10.0),
}

ALL_INDEX_TYPES = ("FLAT", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", "HNSW_SQ")

FULL_DEFAULTS: dict[str, Any] = {
    "rows": 100_000,
    "dim": 128,
    "queries": 200,
    "threads": 8,
    "concurrent_queries": 2000,
    "batch": 5000,
    "clusters": 1000,
    "search_budget": 90.0,
    "concurrent_budget": 300.0,
}
QUICK_DEFAULTS: dict[str, Any] = {
    "rows": 3000,
    "dim": 16,
    "queries": 20,
    "threads": 2,
    "concurrent_queries": 100,
    "batch": 500,
    "clusters": 30,
    "search_budget": 15.0,
    "concurrent_budget": 20.0,
}


class StepError(Exception):
    """A step could not be carried out; the message becomes the figure's ``error``."""


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def make_dataset(
    rows: int, queries: int, dim: int, clusters: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """``rows`` + ``queries`` float32 vectors: unit-variance centres, points scattered around a
    random centre with per-coordinate sigma 0.5 (intra-cluster distances about half the
    inter-centre ones, so each query's 10 nearest neighbours come from its own cluster while
    the cluster's ~100 members still need ranking). Queries are held out: not in the data."""
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim), dtype=np.float32)
    total = rows + queries
    owner = rng.integers(0, clusters, size=total)
    points = centres[owner] + np.float32(0.5) * rng.standard_normal((total, dim), dtype=np.float32)
    points = np.ascontiguousarray(points, dtype=np.float32)
    return points[:rows], points[rows:]


def exact_neighbours(data: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, str]:
    """Exact L2 top-k ids (row numbers = primary keys) for every query, and how they were
    computed."""
    k = min(k, len(data))
    try:
        import faiss

        index = faiss.IndexFlatL2(data.shape[1])
        index.add(data)
        _, ids = index.search(queries, k)
        return ids.astype(np.int64), f"faiss {faiss.__version__} IndexFlatL2"
    except ImportError:
        pass
    norms = np.einsum("ij,ij->i", data, data)
    out = np.empty((len(queries), k), dtype=np.int64)
    for lo in range(0, len(queries), 64):
        q = queries[lo : lo + 64]
        d = norms[None, :] - 2 * (q @ data.T)
        part = np.argpartition(d, k - 1, axis=1)[:, :k]
        order = np.argsort(np.take_along_axis(d, part, axis=1), axis=1)
        out[lo : lo + 64] = np.take_along_axis(part, order, axis=1)
    return out, "numpy exact L2"


# --------------------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------------------

def cpu_seconds(pid: int) -> float | None:
    """user + system CPU seconds of a process (Linux /proc), or None where unavailable."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def rss_peak_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def wait_idle(pid: int) -> float:
    """Block until the server uses < IDLE_CPU_FRACTION of a core over IDLE_WINDOW_S (or
    IDLE_WAIT_MAX_S passed); returns the seconds waited. Not timed by any measurement."""
    t0 = time.perf_counter()
    last = cpu_seconds(pid)
    if last is None:
        return 0.0
    while time.perf_counter() - t0 < IDLE_WAIT_MAX_S:
        time.sleep(IDLE_WINDOW_S)
        now = cpu_seconds(pid)
        if now is None or now - last < IDLE_CPU_FRACTION * IDLE_WINDOW_S:
            break
        last = now
    return time.perf_counter() - t0


@dataclass(frozen=True)
class SystemSpec:
    """One server: its name in the report, its distribution (for the version), and how to
    make its process (``keeldb.testing.server``) for a data directory and a log."""

    key: str
    label: str
    package: str
    server: Callable[[Path, Path], MilvusServer]


def _keeldb_server(data: Path, log: Path) -> MilvusServer:
    """keeldb stops cleanly on SIGTERM (fsyncs its log, prints "stopped cleanly")."""
    from keeldb.testing.server import KeelServer

    return KeelServer(data, log_path=log, cwd=data.parent, ready_timeout=SERVER_READY_TIMEOUT_S)


def _milvus_lite_server(data: Path, log: Path) -> MilvusServer:
    """milvus-lite's server shuts down gracefully on KeyboardInterrupt (SIGINT) only."""
    from keeldb.testing.server import MilvusLiteServer

    return MilvusLiteServer(data, log_path=log, cwd=data.parent)


SYSTEMS: dict[str, SystemSpec] = {
    "keeldb": SystemSpec("keeldb", "keeldb", "keeldb", _keeldb_server),
    "milvus-lite": SystemSpec("milvus-lite", "Milvus Lite", "milvus-lite", _milvus_lite_server),
}


def stop_server(server: MilvusServer) -> dict[str, Any]:
    """Stop it (its stop signal, SIGKILL after SERVER_STOP_TIMEOUT_S); what the report says
    of it: how it started, how it stopped, its peak memory."""
    rss = rss_peak_mb(server.pid) if server.alive and server.pid else None
    code = server.stop(SERVER_STOP_TIMEOUT_S)
    return {
        "command": shlex.join(server.command()),
        "uri": server.uri,
        "startup_s": server.startup_s or 0.0,
        "stopped_with": server.stopped_with,
        "exit_code": code,
        "rss_peak_mb": rss,
    }


# --------------------------------------------------------------------------------------
# Measurements: each written once against a pymilvus.MilvusClient
# --------------------------------------------------------------------------------------


def build_batches(data: np.ndarray, batch: int) -> list[list[dict[str, Any]]]:
    """Row dicts exactly as a MilvusClient user passes them; the id is the row number."""
    out = []
    for lo in range(0, len(data), batch):
        vecs = data[lo : lo + batch].tolist()
        out.append([{"id": lo + i, "vector": v} for i, v in enumerate(vecs)])
    return out


def count_rows(client: Any) -> int:
    res = client.query(COLLECTION, filter="", output_fields=["count(*)"], timeout=RPC_TIMEOUT_S)
    return int(res[0]["count(*)"])


def measure_insert(client: Any, server: MilvusServer, data: np.ndarray, batch: int) -> dict:
    """Create the collection the quick way, insert every row in batches, then flush.
    ``gc.freeze`` keeps the ~rows prebuilt dicts out of the cyclic collector's scans, which
    would otherwise be billed to whichever system allocates while they are alive."""
    n, dim = data.shape
    t0 = time.perf_counter()
    batches = build_batches(data, batch)
    build_s = time.perf_counter() - t0
    client.create_collection(
        COLLECTION, dimension=dim, metric_type=METRIC_TYPE, timeout=RPC_TIMEOUT_S
    )
    gc.collect()
    gc.freeze()
    try:
        assert server.pid is not None
        idle_s = wait_idle(server.pid)
        cpu0 = cpu_seconds(server.pid)
        per_batch: list[float] = []
        t_start = time.perf_counter()
        for rows in batches:
            t0 = time.perf_counter()
            client.insert(COLLECTION, rows, timeout=RPC_TIMEOUT_S)
            per_batch.append(time.perf_counter() - t0)
        insert_s = time.perf_counter() - t_start
        cpu1 = cpu_seconds(server.pid)
        t0 = time.perf_counter()
        client.flush(COLLECTION, timeout=BUILD_TIMEOUT_S)
        flush_s = time.perf_counter() - t0
    finally:
        gc.unfreeze()
        del batches
        gc.collect()
    got = count_rows(client)
    error = None if got == n else f"count(*) after insert + flush returned {got:,}, expected {n:,}"
    lat = np.asarray(per_batch) * 1e3
    server_cpu = None if cpu0 is None or cpu1 is None else cpu1 - cpu0
    return {
        "insert_rows_per_s": figure(
            n / insert_s,
            error,
            rows=n,
            batches=len(per_batch),
            insert_s=insert_s,
            batch_median_ms=float(np.median(lat)),
            batch_p99_ms=float(np.percentile(lat, 99)),
            build_rows_s_excluded=build_s,
            idle_wait_s_excluded=idle_s,
            server_cpu_s_during_insert=server_cpu,
            insert_then_flush_rows_per_s=n / (insert_s + flush_s),
        ),
        "flush_s": figure(flush_s, error, rows=n),
    }


@dataclass
class IndexTrial:
    """One index type: how to build it and the search-time settings to sweep, cheap first."""

    index_type: str
    build_params: dict[str, Any]
    sweep: list[dict[str, Any]]


def index_plan(index_types: Sequence[str], rows: int, dim: int) -> list[IndexTrial]:
    """Build parameters equal to Milvus Lite's defaults (see the module docstring); ``nlist``
    shrinks for tiny collections so that k-means has ~39 points per list."""
    nlist = max(1, min(128, rows // 39))
    nprobes = [{"nprobe": p} for p in NPROBE_SWEEP if p < nlist] + [{"nprobe": nlist}]
    efs = [{"ef": ef} for ef in EF_SWEEP]
    pq_m = next((m for m in (16, 8, 4, 2, 1) if dim % m == 0 and m <= dim), 1)
    plans = {
        "FLAT": IndexTrial("FLAT", {}, [{}]),
        "IVF_FLAT": IndexTrial("IVF_FLAT", {"nlist": nlist}, nprobes),
        "IVF_SQ8": IndexTrial("IVF_SQ8", {"nlist": nlist}, nprobes),
        "IVF_PQ": IndexTrial("IVF_PQ", {"nlist": nlist, "m": pq_m, "nbits": 8}, nprobes),
        "HNSW": IndexTrial("HNSW", {"M": 16, "efConstruction": 200}, efs),
        "HNSW_SQ": IndexTrial("HNSW_SQ", {"M": 16, "efConstruction": 200, "sq_type": "SQ8"}, efs),
    }
    return [plans[t] for t in index_types]


def describe_config(index_type: str, search_params: dict[str, Any]) -> str:
    extra = " ".join(f"{k}={v}" for k, v in search_params.items())
    return f"{index_type} {extra}".strip()


def drop_all_indexes(client: Any) -> None:
    """release (Milvus refuses to drop the index of a loaded collection), then drop each."""
    client.release_collection(COLLECTION, timeout=RPC_TIMEOUT_S)
    for name in client.list_indexes(COLLECTION, timeout=RPC_TIMEOUT_S):
        client.drop_index(COLLECTION, name, timeout=RPC_TIMEOUT_S)
    left = client.list_indexes(COLLECTION, timeout=RPC_TIMEOUT_S)
    if left:
        raise StepError(f"indexes still listed after drop_index: {left}")


def set_index(client: Any, trial: IndexTrial) -> dict[str, Any]:
    """Replace the collection's vector index with ``trial``'s and load. Returns the build
    time (create_index + load, where index builds happen) and what describe_index says."""
    drop_all_indexes(client)
    params = client.prepare_index_params()
    params.add_index(
        field_name="vector",
        index_type=trial.index_type,
        metric_type=METRIC_TYPE,
        params=dict(trial.build_params),
    )
    t0 = time.perf_counter()
    client.create_index(COLLECTION, params, timeout=BUILD_TIMEOUT_S)
    t1 = time.perf_counter()
    client.load_collection(COLLECTION, timeout=BUILD_TIMEOUT_S)
    t2 = time.perf_counter()
    names = client.list_indexes(COLLECTION, timeout=RPC_TIMEOUT_S)
    described = (
        client.describe_index(COLLECTION, names[0], timeout=RPC_TIMEOUT_S) if names else None
    )
    if described and str(described.get("index_type", "")).upper() != trial.index_type:
        raise StepError(
            f"describe_index reports {described.get('index_type')!r} after creating {trial.index_type}"
        )
    return {"create_index_s": t1 - t0, "load_s": t2 - t1, "describe_index": described}


def search_one(client: Any, vector: list[float], search_params: dict[str, Any]) -> list[int]:
    res = client.search(
        COLLECTION,
        data=[vector],
        limit=TOP_K,
        search_params={"metric_type": METRIC_TYPE, "params": search_params},
        output_fields=["id"],
        timeout=RPC_TIMEOUT_S,
    )
    return [int(hit["id"]) for hit in res[0]]


def run_queries(
    client: Any,
    queries: list[list[float]],
    truth: np.ndarray,
    search_params: dict[str, Any],
    budget_s: float,
) -> dict[str, Any]:
    """Every query once, one at a time, each timed; stops early after ``budget_s`` (never
    before MIN_BUDGET_QUERIES). QPS = queries / summed latency of the timed calls."""
    for q in queries[:WARMUP_QUERIES]:
        search_one(client, q, search_params)
    lat: list[float] = []
    got: list[list[int]] = []
    deadline = time.perf_counter() + budget_s
    for q in queries:
        if len(lat) >= MIN_BUDGET_QUERIES and time.perf_counter() > deadline:
            break
        t0 = time.perf_counter()
        ids = search_one(client, q, search_params)
        lat.append(time.perf_counter() - t0)
        got.append(ids)
    ms = np.asarray(lat) * 1e3
    return {
        "search_params": search_params,
        "queries": len(lat),
        "cut_by_budget": len(lat) < len(queries),
        "recall": recall_at_k(got, truth[: len(got)]),
        "qps": len(lat) / float(np.sum(lat)),
        "p50_ms": float(np.median(ms)),
        "p99_ms": float(np.percentile(ms, 99)),
    }


def sweep_indexes(
    client: Any,
    server: MilvusServer,
    plan: list[IndexTrial],
    queries: list[list[float]],
    truth: np.ndarray,
    cfg: argparse.Namespace,
    log: Callable[[str], None],
) -> list[dict[str, Any]]:
    """Try every index type; within a type sweep its search parameter until the recall target
    is reached. Failures are recorded per type, never raised."""
    results: list[dict[str, Any]] = []
    for trial in plan:
        entry: dict[str, Any] = {
            "index_type": trial.index_type,
            "build_params": trial.build_params,
            "status": "ok",
            "error": None,
            "configs": [],
        }
        results.append(entry)
        try:
            entry.update(set_index(client, trial))
        except Exception as exc:  # a type the server rejects is a finding, not a crash
            entry["status"] = "unsupported"
            entry["error"] = error_text(exc)
            log(f"    {trial.index_type}: [yellow]unsupported[/yellow] ({entry['error'][:160]})")
            continue
        assert server.pid is not None
        entry["idle_wait_s_excluded"] = wait_idle(server.pid)
        for sp in trial.sweep:
            try:
                res = run_queries(client, queries, truth, sp, cfg.search_budget)
            except Exception as exc:
                entry["status"] = "error"
                entry["error"] = f"search {describe_config(trial.index_type, sp)}: {error_text(exc)}"
                log(f"    [red]{entry['error'][:200]}[/red]")
                break
            entry["configs"].append(res)
            cut = f", cut to {res['queries']} queries by the budget" if res["cut_by_budget"] else ""
            log(
                f"    {describe_config(trial.index_type, sp):<18} recall {res['recall']:.3f}  "
                f"{res['qps']:8.1f} QPS  p50 {res['p50_ms']:.2f} ms{cut}"
            )
            if res["recall"] >= cfg.recall_target:
                break
    return results


def pick_best(sweep: list[dict[str, Any]], target: float) -> tuple[dict | None, str | None]:
    """The fastest configuration reaching the recall target, as (index entry, config)."""
    candidates = [
        (cfg["qps"], entry, cfg)
        for entry in sweep
        for cfg in entry["configs"]
        if cfg["recall"] >= target
    ]
    if not candidates:
        return None, None
    _, entry, conf = max(candidates, key=lambda c: c[0])
    return {"entry": entry, "config": conf}, describe_config(
        entry["index_type"], conf["search_params"]
    )


def measure_concurrent(
    uri: str,
    queries: list[list[float]],
    search_params: dict[str, Any],
    threads: int,
    total: int,
    budget_s: float,
) -> dict[str, Any]:
    """``threads`` threads, each with its own dedicated connection, take searches from one
    shared counter until ``total`` are done (or ``budget_s`` passed, never before
    MIN_BUDGET_QUERIES). Connecting and a warm-up search happen before the start barrier."""
    from pymilvus import MilvusClient

    latencies: list[list[float]] = [[] for _ in range(threads)]
    finished: list[float] = [0.0] * threads
    errors: list[str] = []
    counter = itertools.count()
    counter_lock = threading.Lock()
    barrier = threading.Barrier(threads + 1, timeout=BUILD_TIMEOUT_S)
    clock: dict[str, float] = {}

    def worker(slot: int) -> None:
        client = None
        try:
            client = MilvusClient(uri=uri, dedicated=True, timeout=RPC_TIMEOUT_S)
            search_one(client, queries[slot % len(queries)], search_params)
        except Exception as exc:
            errors.append(f"thread {slot} setup: {error_text(exc)}")
            client = None
        try:
            barrier.wait()
        except threading.BrokenBarrierError:
            return
        try:
            if client is None:
                return
            fails = 0
            while True:
                with counter_lock:
                    i = next(counter)
                done = sum(len(x) for x in latencies)
                if i >= total or (
                    done >= MIN_BUDGET_QUERIES and time.perf_counter() > clock["deadline"]
                ):
                    break
                t0 = time.perf_counter()
                try:
                    search_one(client, queries[i % len(queries)], search_params)
                except Exception as exc:
                    fails += 1
                    errors.append(f"thread {slot}: {error_text(exc)}")
                    if fails >= MAX_ERRORS_PER_THREAD:
                        break
                    continue
                latencies[slot].append(time.perf_counter() - t0)
        finally:
            finished[slot] = time.perf_counter()
            if client is not None:
                try:
                    client.close()
                except Exception:
                    pass

    pool = [
        threading.Thread(target=worker, args=(s,), name=f"bench-{s}", daemon=True)
        for s in range(threads)
    ]
    for t in pool:
        t.start()
    clock["deadline"] = time.perf_counter() + budget_s + 1e9  # placeholder until the start
    try:
        barrier.wait()
    except threading.BrokenBarrierError as exc:
        raise StepError("worker threads did not all reach the start barrier") from exc
    start = time.perf_counter()
    clock["deadline"] = start + budget_s
    for t in pool:
        t.join(BUILD_TIMEOUT_S)
    if any(t.is_alive() for t in pool):
        raise StepError("worker threads still running after the timeout")
    wall = max(finished) - start
    flat = np.asarray([x for per in latencies for x in per]) * 1e3
    if flat.size == 0:
        raise StepError("no search completed: " + "; ".join(errors[:3]))
    return {
        "p50_ms": float(np.median(flat)),
        "p99_ms": float(np.percentile(flat, 99)),
        "qps": flat.size / wall,
        "completed": int(flat.size),
        "requested": total,
        "cut_by_budget": flat.size < total and not errors,
        "wall_s": wall,
        "threads": threads,
        "per_thread": [len(x) for x in latencies],
        "errors": errors[:20],
        "error_count": len(errors),
        "mean_ms": float(flat.mean()),
        "max_ms": float(flat.max()),
    }


# --------------------------------------------------------------------------------------
# One system, start to finish
# --------------------------------------------------------------------------------------


def _server_version(client: Any, spec: SystemSpec) -> str:
    parts = [f"{spec.package} {package_version(spec.package)}"]
    try:
        parts.append(f"server reports {client.get_server_version(timeout=RPC_TIMEOUT_S)}")
    except Exception as exc:
        parts.append(f"get_server_version failed ({error_text(exc)})")
    return ", ".join(parts)


def bench_system(
    spec: SystemSpec,
    cfg: argparse.Namespace,
    data: np.ndarray,
    queries: np.ndarray,
    truth: np.ndarray,
    workdir: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    entry: dict[str, Any] = {"label": spec.label, "metrics": {}, "errors": []}
    metrics: dict[str, dict] = entry["metrics"]
    data_dir = workdir / f"{spec.key}-data"
    shutil.rmtree(data_dir, ignore_errors=True)
    server = spec.server(data_dir, workdir / f"{spec.key}-server.log")
    client: Any = None
    try:
        from pymilvus import MilvusClient

        log(f"{spec.label}: starting server ...")
        server.start(timeout=SERVER_READY_TIMEOUT_S)
        log(f"  listening on {server.uri} after {server.startup_s:.1f}s (pid {server.pid})")
        client = MilvusClient(uri=server.uri, timeout=RPC_TIMEOUT_S)
        entry["version"] = _server_version(client, spec)

        log(f"  insert {len(data):,} rows in batches of {cfg.batch:,}, then flush ...")
        try:
            metrics.update(measure_insert(client, server, data, cfg.batch))
            m = metrics["insert_rows_per_s"]
            log(
                f"  insert {m['value']:,.0f} rows/s, flush {metrics['flush_s']['value']:.2f}s"
                + (f"  [red]{m['error']}[/red]" if m["error"] else "")
            )
        except Exception as exc:
            msg = f"insert: {error_text(exc)}"
            entry["errors"].append(msg)
            entry["insert_traceback"] = traceback.format_exc()
            log(f"  [red]{msg}[/red]")
            return entry  # nothing to search

        q_lists = queries.tolist()
        log(f"  search sweep ({len(q_lists)} queries per setting, top-{TOP_K}) ...")
        plan = index_plan(cfg.index_types, len(data), data.shape[1])
        sweep = sweep_indexes(client, server, plan, q_lists, truth, cfg, log)
        entry["sweep"] = sweep

        flat = next((e for e in sweep if e["index_type"] == "FLAT"), None)
        if flat is None:
            err = "FLAT not in --index-types"
            metrics["flat_qps"] = metrics["flat_recall"] = figure(None, err)
        elif not flat["configs"]:
            err = f"FLAT {flat['status']}: {flat['error']}"
            metrics["flat_qps"] = metrics["flat_recall"] = figure(None, err)
        else:
            c = flat["configs"][0]
            detail = {"queries": c["queries"], "p50_ms": c["p50_ms"], "p99_ms": c["p99_ms"]}
            metrics["flat_qps"] = figure(c["qps"], None, recall=c["recall"], **detail)
            metrics["flat_recall"] = figure(c["recall"], None, **detail)

        best, best_name = pick_best(sweep, cfg.recall_target)
        if best is None:
            err = f"no configuration reached recall@{TOP_K} >= {cfg.recall_target}"
            metrics["best_qps"] = metrics["best_recall"] = figure(None, err)
            tried = [(c["recall"], e, c) for e in sweep for c in e["configs"]]
            if not tried:
                entry["errors"].append("search: no index configuration could be searched")
                return entry
            _, e, c = max(tried, key=lambda t: (t[0], t[2]["qps"]))
            conc_entry, conc_conf = e, c
            conc_note = f"no configuration reached the recall target; ran on the most accurate one, {describe_config(e['index_type'], c['search_params'])}"
        else:
            conc_entry, conc_conf = best["entry"], best["config"]
            detail = {
                "config": best_name,
                "index_type": conc_entry["index_type"],
                "build_params": conc_entry["build_params"],
                "search_params": conc_conf["search_params"],
                "queries": conc_conf["queries"],
                "p50_ms": conc_conf["p50_ms"],
            }
            metrics["best_qps"] = figure(conc_conf["qps"], None, recall=conc_conf["recall"], **detail)
            metrics["best_recall"] = figure(conc_conf["recall"], None, **detail)
            conc_note = f"best configuration, {best_name}"
        entry["best_config"] = best_name

        name = describe_config(conc_entry["index_type"], conc_conf["search_params"])
        log(
            f"  concurrent: {cfg.threads} threads x dedicated clients, {cfg.concurrent_queries:,} searches on {name} ..."
        )
        try:
            trial = next(t for t in plan if t.index_type == conc_entry["index_type"])
            set_index(client, trial)
            assert server.pid is not None
            idle = wait_idle(server.pid)
            res = measure_concurrent(
                server.uri, q_lists, conc_conf["search_params"], cfg.threads,
                cfg.concurrent_queries, cfg.concurrent_budget,
            )  # fmt: skip
            err = None
            if res["error_count"]:
                err = f"{res['error_count']} searches failed, e.g. {res['errors'][0]}"
            detail = {**res, "config": name, "note": conc_note, "idle_wait_s_excluded": idle}
            metrics["concurrent_p50_ms"] = figure(res["p50_ms"], err, **detail)
            metrics["concurrent_p99_ms"] = figure(res["p99_ms"], err, **detail)
            metrics["concurrent_qps"] = figure(res["qps"], err, **detail)
            cut = f" (cut at {res['completed']:,} by the budget)" if res["cut_by_budget"] else ""
            log(
                f"  concurrent p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms, {res['qps']:.1f} QPS{cut}"
            )
        except Exception as exc:
            msg = f"concurrent: {error_text(exc)}"
            entry["errors"].append(msg)
            log(f"  [red]{msg}[/red]")
    except Exception as exc:  # server start-up or connection: everything left is missing
        msg = error_text(exc)
        entry["errors"].append(msg)
        entry["traceback"] = traceback.format_exc()
        log(f"  [red]{spec.label}: {msg}[/red]")
    finally:
        if client is not None:
            try:
                client.close()
            except Exception:
                pass
        if server.proc is not None:
            entry["server"] = info = stop_server(server)
            if info["exit_code"] not in (0, None, -server.stop_signal):
                info["log_tail"] = server.log_tail(1500)
            log(
                f"  server stopped with {info['stopped_with'] or 'nothing (already exited)'}, exit code {info['exit_code']}"
            )
        shutil.rmtree(data_dir, ignore_errors=True)
    return entry


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def compute_targets(ratios: dict[str, dict]) -> dict[str, dict]:
    return {
        metric: _report.target(text, ratios[metric]["value"], need, asserted=False)
        for metric, (text, need) in TARGETS.items()
    }


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    if "recall" in metric:
        return f"{value:.3f}"
    if value >= 1000:
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.1f}"
    return f"{value:.2f}" if value >= 1 else f"{value:.3f}"


def _cell(metric: str, fig: dict) -> str:
    text = _fmt(metric, fig["value"])
    if metric == "best_qps" and fig["value"] is not None:
        text += f"\n{fig['detail'].get('config', '')}"
    return text


def _ratio_cell(metric: str, ratio: dict) -> str:
    if not METRICS[metric]["ratio"]:
        return ""
    return "n/a" if ratio["value"] is None else f"{ratio['value']:.2f}x"


def print_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    console = _report.console(150)
    cfg = report["config"]
    systems = report["systems"]
    conc = f"{cfg['threads']} threads, {cfg['concurrent_queries']:,} searches"
    names = {
        "insert_rows_per_s": f"insert rows/s ({cfg['rows']:,} x {cfg['dim']}-d, batch {cfg['batch']:,})",
        "flush_s": "flush after the insert, s",
        "flat_qps": "search QPS, FLAT (1 thread, nq=1, top-10)",
        "flat_recall": "  recall@10, FLAT",
        "best_qps": f"search QPS, best config with recall >= {cfg['recall_target']}",
        "best_recall": "  recall@10, best config",
        "concurrent_p50_ms": f"p50 ms ({conc})",
        "concurrent_p99_ms": f"p99 ms ({conc})",
        "concurrent_qps": f"total QPS ({conc})",
    }
    _report.print_comparison(
        console, report, names=names, labels={key: e["label"] for key, e in systems.items()},
        title=f"keeldb serve vs milvus-lite server, pymilvus over loopback gRPC, same data "
        f"({cfg['rows']:,} x {cfg['dim']}-d, {cfg['clusters']:,} clusters)",
        caption="ratio > 1 means keeldb is better (throughput: keeldb / Milvus Lite; times: "
        "Milvus Lite / keeldb). Targets are the issue's, shown and never asserted.",
        cell=_cell, ratio_cell=_ratio_cell,
    )  # fmt: skip

    for entry in systems.values():
        console.print(f"[bold]{entry['label']}[/bold]: {entry.get('version', '')}")
        srv = entry.get("server")
        if srv:
            rss = f"{srv['rss_peak_mb']:,.0f} MB" if srv.get("rss_peak_mb") else "?"
            console.print(
                f"  server: started in {srv['startup_s']:.1f}s, peak RSS {rss}, stopped with "
                f"{srv['stopped_with'] or '-'} -> exit code {srv['exit_code']}",
                highlight=False,
            )
        ins = entry["metrics"]["insert_rows_per_s"]
        if ins["value"]:
            d = ins["detail"]
            console.print(
                f"  insert: batch median {d['batch_median_ms']:.0f} ms, p99 {d['batch_p99_ms']:.0f} ms; "
                f"insert + flush {d['insert_then_flush_rows_per_s']:,.0f} rows/s",
                highlight=False,
            )
        if entry.get("sweep"):
            sub = Table(
                title=f"{entry['label']}: index sweep", title_justify="left", show_edge=False
            )
            for col in (
                "index",
                "build s",
                "search params",
                "recall@10",
                "QPS",
                "p50 ms",
                "queries",
            ):
                sub.add_column(
                    col, justify="left" if col in ("index", "search params") else "right"
                )
            for e in entry["sweep"]:
                build = e.get("create_index_s", 0) + e.get("load_s", 0)
                if not e["configs"]:
                    sub.add_row(
                        e["index_type"],
                        "",
                        f"[yellow]{e['status']}[/yellow]: {(e['error'] or '')[:160]}",
                        "",
                        "",
                        "",
                        "",
                    )
                    continue
                for i, c in enumerate(e["configs"]):
                    sp = " ".join(f"{k}={v}" for k, v in c["search_params"].items()) or "-"
                    sub.add_row(
                        e["index_type"] if i == 0 else "",
                        f"{build:.1f}" if i == 0 else "",
                        sp,
                        f"{c['recall']:.3f}",
                        f"{c['qps']:.1f}",
                        f"{c['p50_ms']:.2f}",
                        f"{c['queries']}" + ("*" if c["cut_by_budget"] else ""),
                    )
                if e["status"] != "ok":
                    sub.add_row("", "", f"[red]{(e['error'] or '')[:160]}[/red]", "", "", "", "")
            console.print(sub)
    console.print(
        "Notes: row dicts are built before the insert timer (the caller's cost, equal for both). "
        "Searches ask output_fields=['id'] (Milvus Lite returns whole vectors otherwise). "
        "keeldb currently answers every index type with an exact scan, so its recall is 1.0 "
        "as measured and its 'best' configuration is an exact one. Milvus Lite 3.2.2 ignores "
        "build params sent by pymilvus 3.x (it reads a JSON 'params' key pymilvus no longer "
        "sends); the params used here equal its defaults. '*' = cut short by the time budget.",
        highlight=False,
    )
    _report.print_machine(console, report["machine"])
    console.print(f"ground truth: {cfg['ground_truth']}", highlight=False)
    console.print(f"command: {report['command']}", highlight=False)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Compare `keeldb serve` with `milvus-lite server` through pymilvus.MilvusClient.",
    )
    _cli.add_quick_option(p)
    _cli.add_sizes(p, FULL_DEFAULTS, {
        "rows": "vectors in the collection",
        "dim": "vector dimension",
        "queries": "held-out query vectors",
        "threads": "client threads for the latency test",
        "concurrent_queries": "searches shared by the threads",
        "batch": "rows per insert call",
        "clusters": "Gaussian clusters in the data",
        "search_budget": "seconds per sweep step before it is cut short",
        "concurrent_budget": "seconds before the concurrent run is cut short",
    })  # fmt: skip
    p.add_argument("--recall-target", type=float, default=0.95,
                   help="recall@10 a configuration must reach (default 0.95)")
    p.add_argument("--index-types", default=",".join(ALL_INDEX_TYPES),
                   help=f"comma-separated, tried in order (default {','.join(ALL_INDEX_TYPES)})")
    p.add_argument("--systems", default="keeldb,milvus-lite",
                   help=f"comma-separated, from {', '.join(SYSTEMS)} (default both)")
    _cli.add_run_options(p, DEFAULT_SEED, "server data and logs")
    a = p.parse_args(argv)
    _cli.fill_defaults(a, QUICK_DEFAULTS, FULL_DEFAULTS)
    a.systems = _cli.names(p, "--systems", a.systems, list(SYSTEMS))
    a.index_types = _cli.names(p, "--index-types", a.index_types, ALL_INDEX_TYPES, upper=True)
    _cli.at_least_one(p, a, ("rows", "dim", "queries", "threads", "concurrent_queries", "batch", "clusters"))
    if a.rows < TOP_K:
        p.error(f"--rows must be >= {TOP_K}")
    if not 0 < a.recall_target <= 1:
        p.error("--recall-target must be in (0, 1]")
    if a.search_budget <= 0 or a.concurrent_budget <= 0:
        p.error("budgets must be > 0")
    return a


def run(cfg: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    log(
        f"generating {cfg.rows:,} + {cfg.queries} held-out x {cfg.dim}-d vectors around "
        f"{cfg.clusters:,} clusters (seed {cfg.seed})"
    )
    data, queries = make_dataset(cfg.rows, cfg.queries, cfg.dim, cfg.clusters, cfg.seed)
    t0 = time.perf_counter()
    truth, how = exact_neighbours(data, queries, TOP_K)
    log(f"exact top-{TOP_K} ground truth with {how} in {time.perf_counter() - t0:.1f}s")

    systems: dict[str, dict] = {}
    for key in cfg.systems:
        spec = SYSTEMS[key]
        t0 = time.perf_counter()
        try:
            import pymilvus  # noqa: F401

            if key == "milvus-lite":
                import milvus_lite  # noqa: F401
        except ImportError as exc:
            entry = {"label": spec.label, "metrics": {}, "errors": [], "available": False,
                     "unavailable_reason": f"cannot import ({exc})"}  # fmt: skip
            log(f"[red]{spec.label} unavailable: {exc}[/red]")
        else:
            entry = bench_system(spec, cfg, data, queries, truth, workdir, log)
            entry["available"] = True
        entry["wall_s"] = time.perf_counter() - t0
        systems[key] = entry
        gc.collect()

    ratios = _report.finish(systems, METRICS)
    return {
        "config": {
            **_cli.settings(cfg, "rows", "dim", "queries", "clusters", "threads",
                            "concurrent_queries", "batch"),
            "top_k": TOP_K,
            "metric_type": METRIC_TYPE,
            **_cli.settings(cfg, "recall_target", "index_types", search_budget_s="search_budget",
                            concurrent_budget_s="concurrent_budget"),
            **_cli.settings(cfg, "seed", "quick", "systems"),
            "ground_truth": how,
            "data": "centres ~ N(0,1)^dim, points = centre + N(0, 0.5^2)^dim, float32; ids 0..rows-1;"
            " queries held out from the same distribution",
        },
        "systems": systems,
        "ratios": ratios,
        "targets": compute_targets(ratios),
    }


def main(argv: Sequence[str] | None = None) -> int:
    return _cli.main(argv, parse_args, "keeldb-bench-server-", run, print_report, client_run=True)


if __name__ == "__main__":
    _cli.run_script(main)
