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
import atexit
import ctypes
import gc
import itertools
import math
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _common import (
    add_run_options,
    bench_main,
    fill_defaults,
    machine_info,
    prepare_client_run,
    target_cell,
)

ROOT = Path(__file__).resolve().parents[1]
COLLECTION = "bench_server"
METRIC_TYPE = "L2"
TOP_K = 10
DEFAULT_SEED = 20240611
RESULT_SCHEMA = 1

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
NPROBE_SWEEP = (1, 2, 4, 8, 16, 32, 64, 128)
EF_SWEEP = (16, 32, 64, 128, 256, 512)

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


def recall_at_k(got: Sequence[Sequence[int]], truth: np.ndarray) -> float:
    """Mean over queries of |returned ids & true top-k| / k."""
    k = truth.shape[1]
    hits = [len(set(ids[:k]) & set(truth[i].tolist())) for i, ids in enumerate(got)]
    return float(np.mean(hits)) / k if hits else float("nan")


# --------------------------------------------------------------------------------------
# Server processes
# --------------------------------------------------------------------------------------

_LIVE: set[ServerProcess] = set()


def _kill_live_servers() -> None:
    """atexit: no server outlives the benchmark, whatever path we leave by."""
    for server in list(_LIVE):
        server.stop()


atexit.register(_kill_live_servers)


def _die_with_parent() -> None:
    """In the child before exec (Linux): SIGKILL it if the benchmark itself is SIGKILLed."""
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0):
            return True
    except OSError:
        return False


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


@dataclass(frozen=True)
class SystemSpec:
    """How to start one server. ``picks_port``: the server accepts ``--port 0`` and prints the
    port it bound; otherwise a free port is chosen here and passed in."""

    key: str
    label: str
    command: Callable[[Path, int], list[str]]
    picks_port: bool
    stop_signal: signal.Signals
    package: str


def _keeldb_command(data_dir: Path, port: int) -> list[str]:
    return [sys.executable, "-m", "keeldb.cli", "serve", "--data", str(data_dir),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip


def _milvus_lite_command(data_dir: Path, port: int) -> list[str]:
    # --host is always given: milvus-lite's default is 0.0.0.0.
    return [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data_dir),
            "--host", "127.0.0.1", "--port", str(port)]  # fmt: skip


SYSTEMS: dict[str, SystemSpec] = {
    # keeldb stops cleanly on SIGTERM (fsyncs its log, prints "stopped cleanly").
    "keeldb": SystemSpec("keeldb", "keeldb", _keeldb_command, True, signal.SIGTERM, "keeldb"),
    # milvus-lite's server shuts down gracefully on KeyboardInterrupt only; SIGTERM kills it.
    "milvus-lite": SystemSpec(
        "milvus-lite", "Milvus Lite", _milvus_lite_command, False, signal.SIGINT, "milvus-lite"
    ),
}

READY = re.compile(r"listening on (\S+):(\d+)")


class ServerProcess:
    """One server child process with its output in ``log_path``."""

    def __init__(self, spec: SystemSpec, data_dir: Path, log_path: Path) -> None:
        self.spec = spec
        self.data_dir = data_dir
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.startup_s = 0.0
        self.exit_code: int | None = None
        self.stop_how = ""
        self.rss_peak_mb: float | None = None
        self.command: list[str] = []

    @property
    def uri(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def log_tail(self, chars: int = 1500) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""

    def start(self) -> ServerProcess:
        port = 0 if self.spec.picks_port else free_loopback_port()
        self.command = self.spec.command(self.data_dir, port)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(ROOT / "src"), env.get("PYTHONPATH", "")) if p
        )
        env["PYTHONUNBUFFERED"] = "1"
        t0 = time.perf_counter()
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                cwd=self.data_dir.parent,
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )
        _LIVE.add(self)
        deadline = t0 + SERVER_READY_TIMEOUT_S
        while True:
            m = READY.search(self.log_tail(100_000))
            if m:
                # keeldb prints the port it bound; for milvus-lite we chose it ourselves.
                self.port = port or int(m.group(2))
                if _port_open(self.port):
                    break
            if self.proc.poll() is not None:
                code = self.proc.returncode
                self.stop()
                raise StepError(
                    f"{self.spec.label} server exited with code {code} before it was ready: "
                    f"{self.log_tail(600).strip()!r}"
                )
            if time.perf_counter() > deadline:
                self.stop()
                raise StepError(
                    f"{self.spec.label} server not ready after {SERVER_READY_TIMEOUT_S:.0f}s: "
                    f"{self.log_tail(600).strip()!r}"
                )
            time.sleep(0.05)
        self.startup_s = time.perf_counter() - t0
        return self

    def stop(self) -> int | None:
        """Graceful signal, then SIGKILL if it does not exit in time. Idempotent."""
        p = self.proc
        if p is None:
            return None
        if p.poll() is None:
            self.rss_peak_mb = rss_peak_mb(p.pid)
            sig = self.spec.stop_signal
            try:
                p.send_signal(sig)
                p.wait(SERVER_STOP_TIMEOUT_S)
                self.stop_how = sig.name
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(SERVER_STOP_TIMEOUT_S)
                self.stop_how = f"{sig.name} ignored for {SERVER_STOP_TIMEOUT_S:.0f}s, SIGKILL"
        self.exit_code = p.returncode
        _LIVE.discard(self)
        return self.exit_code

    def wait_idle(self) -> float:
        """Block until the server uses < IDLE_CPU_FRACTION of a core over IDLE_WINDOW_S (or
        IDLE_WAIT_MAX_S passed); returns the seconds waited. Not timed by any measurement."""
        t0 = time.perf_counter()
        last = cpu_seconds(self.pid)
        if last is None:
            return 0.0
        while time.perf_counter() - t0 < IDLE_WAIT_MAX_S:
            time.sleep(IDLE_WINDOW_S)
            now = cpu_seconds(self.pid)
            if now is None or now - last < IDLE_CPU_FRACTION * IDLE_WINDOW_S:
                break
            last = now
        return time.perf_counter() - t0

    def info(self) -> dict[str, Any]:
        return {
            "command": shlex.join(self.command),
            "uri": self.uri,
            "startup_s": self.startup_s,
            "stopped_with": self.stop_how,
            "exit_code": self.exit_code,
            "rss_peak_mb": self.rss_peak_mb,
        }


# --------------------------------------------------------------------------------------
# Measurements: each written once against a pymilvus.MilvusClient
# --------------------------------------------------------------------------------------


def _fig(value: float | None, error: str | None = None, **detail: Any) -> dict[str, Any]:
    return {"value": value, "error": error, "detail": detail}


def _err(exc: BaseException) -> str:
    """One line for the report; a server's refusal keeps its code and message only."""
    code, message = getattr(exc, "code", None), getattr(exc, "message", None)
    if message is not None and code is not None:
        text = f"server said (code {code}): {message}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) < 600 else text[:600] + "..."


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


def measure_insert(client: Any, server: ServerProcess, data: np.ndarray, batch: int) -> dict:
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
        idle_s = server.wait_idle()
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
        "insert_rows_per_s": _fig(
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
        "flush_s": _fig(flush_s, error, rows=n),
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
    server: ServerProcess,
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
            entry["error"] = _err(exc)
            log(f"    {trial.index_type}: [yellow]unsupported[/yellow] ({entry['error'][:160]})")
            continue
        entry["idle_wait_s_excluded"] = server.wait_idle()
        for sp in trial.sweep:
            try:
                res = run_queries(client, queries, truth, sp, cfg.search_budget)
            except Exception as exc:
                entry["status"] = "error"
                entry["error"] = f"search {describe_config(trial.index_type, sp)}: {_err(exc)}"
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
            errors.append(f"thread {slot} setup: {_err(exc)}")
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
                    errors.append(f"thread {slot}: {_err(exc)}")
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
    parts = []
    try:
        from importlib.metadata import version

        parts.append(f"{spec.package} {version(spec.package)}")
    except Exception:
        pass  # keeldb run from a checkout (PYTHONPATH=src) is not an installed distribution
    try:
        parts.append(f"server reports {client.get_server_version(timeout=RPC_TIMEOUT_S)}")
    except Exception as exc:
        parts.append(f"get_server_version failed ({_err(exc)})")
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
    server = ServerProcess(spec, data_dir, workdir / f"{spec.key}-server.log")
    client: Any = None
    try:
        from pymilvus import MilvusClient

        log(f"{spec.label}: starting server ...")
        server.start()
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
            msg = f"insert: {_err(exc)}"
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
            metrics["flat_qps"] = metrics["flat_recall"] = _fig(None, err)
        elif not flat["configs"]:
            err = f"FLAT {flat['status']}: {flat['error']}"
            metrics["flat_qps"] = metrics["flat_recall"] = _fig(None, err)
        else:
            c = flat["configs"][0]
            detail = {"queries": c["queries"], "p50_ms": c["p50_ms"], "p99_ms": c["p99_ms"]}
            metrics["flat_qps"] = _fig(c["qps"], None, recall=c["recall"], **detail)
            metrics["flat_recall"] = _fig(c["recall"], None, **detail)

        best, best_name = pick_best(sweep, cfg.recall_target)
        if best is None:
            err = f"no configuration reached recall@{TOP_K} >= {cfg.recall_target}"
            metrics["best_qps"] = metrics["best_recall"] = _fig(None, err)
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
            metrics["best_qps"] = _fig(conc_conf["qps"], None, recall=conc_conf["recall"], **detail)
            metrics["best_recall"] = _fig(conc_conf["recall"], None, **detail)
            conc_note = f"best configuration, {best_name}"
        entry["best_config"] = best_name

        name = describe_config(conc_entry["index_type"], conc_conf["search_params"])
        log(
            f"  concurrent: {cfg.threads} threads x dedicated clients, {cfg.concurrent_queries:,} searches on {name} ..."
        )
        try:
            trial = next(t for t in plan if t.index_type == conc_entry["index_type"])
            set_index(client, trial)
            idle = server.wait_idle()
            res = measure_concurrent(
                server.uri, q_lists, conc_conf["search_params"], cfg.threads,
                cfg.concurrent_queries, cfg.concurrent_budget,
            )  # fmt: skip
            err = None
            if res["error_count"]:
                err = f"{res['error_count']} searches failed, e.g. {res['errors'][0]}"
            detail = {**res, "config": name, "note": conc_note, "idle_wait_s_excluded": idle}
            metrics["concurrent_p50_ms"] = _fig(res["p50_ms"], err, **detail)
            metrics["concurrent_p99_ms"] = _fig(res["p99_ms"], err, **detail)
            metrics["concurrent_qps"] = _fig(res["qps"], err, **detail)
            cut = f" (cut at {res['completed']:,} by the budget)" if res["cut_by_budget"] else ""
            log(
                f"  concurrent p50 {res['p50_ms']:.2f} ms, p99 {res['p99_ms']:.2f} ms, {res['qps']:.1f} QPS{cut}"
            )
        except Exception as exc:
            msg = f"concurrent: {_err(exc)}"
            entry["errors"].append(msg)
            log(f"  [red]{msg}[/red]")
    except Exception as exc:  # server start-up or connection: everything left is missing
        msg = _err(exc)
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
            server.stop()
            entry["server"] = server.info()
            if server.exit_code not in (0, None, -spec.stop_signal):
                entry["server"]["log_tail"] = server.log_tail()
            log(
                f"  server stopped with {server.stop_how or 'nothing (already exited)'}, exit code {server.exit_code}"
            )
        shutil.rmtree(data_dir, ignore_errors=True)
    return entry


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def finish_metrics(entry: dict[str, Any]) -> None:
    """Every metric present for the system, even if only to say why it is missing."""
    why = "; ".join(entry.get("errors", [])) or entry.get("unavailable_reason") or "not measured"
    for metric, info in METRICS.items():
        fig = entry["metrics"].setdefault(metric, _fig(None, why))
        fig["unit"] = info["unit"]
        fig["better"] = info["better"]
        v = fig["value"]
        if v is not None and not math.isfinite(v):
            fig["value"] = None
            fig["error"] = fig["error"] or "non-finite value"


def compute_ratios(systems: dict[str, dict]) -> dict[str, dict]:
    """keeldb's advantage, oriented so > 1 means keeldb is better: keeldb / Milvus Lite for
    throughput, Milvus Lite / keeldb for times. Recall gets no ratio."""
    k = systems.get("keeldb", {}).get("metrics", {})
    m = systems.get("milvus-lite", {}).get("metrics", {})
    out: dict[str, dict] = {}
    for metric, info in METRICS.items():
        kv = k.get(metric, {}).get("value")
        mv = m.get(metric, {}).get("value")
        ratio = None
        if info["ratio"] and kv and mv:
            ratio = kv / mv if info["better"] == "higher" else mv / kv
        how = "keeldb / Milvus Lite" if info["better"] == "higher" else "Milvus Lite / keeldb"
        out[metric] = {
            "value": ratio,
            "computed_as": how if info["ratio"] else "not a speed: no ratio",
            "greater_is_better_for_keeldb": True,
        }
    return out


def compute_targets(ratios: dict[str, dict]) -> dict[str, dict]:
    return {
        metric: {
            "target": text,
            "met": None if ratios[metric]["value"] is None else ratios[metric]["value"] >= need,
            "asserted": False,
        }
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


def print_report(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console(width=None if sys.stdout.isatty() else 150)
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
    table = Table(
        title=f"keeldb serve vs milvus-lite server, pymilvus over loopback gRPC, same data "
        f"({cfg['rows']:,} x {cfg['dim']}-d, {cfg['clusters']:,} clusters)",
        caption="ratio > 1 means keeldb is better (throughput: keeldb / Milvus Lite; times: "
        "Milvus Lite / keeldb). Targets are the issue's, shown and never asserted.",
    )
    table.add_column("metric")
    for key in systems:
        table.add_column(systems[key]["label"], justify="right")
    table.add_column("ratio (>1 = keeldb better)", justify="right")
    table.add_column("target")
    footnotes: dict[str, int] = {}
    for metric in METRICS:
        cells = []
        for key in systems:
            fig = systems[key]["metrics"][metric]
            cell = _fmt(metric, fig["value"])
            if metric == "best_qps" and fig["value"] is not None:
                cell += f"\n{fig['detail'].get('config', '')}"
            if fig["error"]:
                n = footnotes.setdefault(
                    f"{systems[key]['label']}: {fig['error']}", len(footnotes) + 1
                )
                cell += f"\n[red]{'see' if fig['value'] is None else 'but see'} [{n}][/red]"
            cells.append(cell)
        ratio = report["ratios"][metric]
        if not METRICS[metric]["ratio"]:
            rcell = ""
        elif ratio["value"] is None:
            rcell = "n/a"
        else:
            rcell = f"{ratio['value']:.2f}x"
        tcell = target_cell(report["targets"].get(metric))
        table.add_row(names[metric], *cells, rcell, tcell)
    console.print(table)
    for text, n in footnotes.items():
        console.print(f"[red][{n}][/red] {text}", highlight=False)

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
    m = report["machine"]
    console.print(
        f"machine: {m['cpu_count']} CPUs ({m['cpu_model']}), {m['memory_gib']} GiB, "
        f"{m['platform']}, {m['python']}; load average at the end {m['loadavg_at_end']}",
        highlight=False,
    )
    console.print(f"ground truth: {cfg['ground_truth']}", highlight=False)
    console.print(f"command: {report['command']}", highlight=False)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="Compare `keeldb serve` with `milvus-lite server` through pymilvus.MilvusClient.",
    )
    F = FULL_DEFAULTS
    p.add_argument(
        "--quick",
        action="store_true",
        help="tiny sizes for CI (options given explicitly still win)",
    )
    p.add_argument("--rows", type=int, help=f"vectors in the collection (default {F['rows']:,})")
    p.add_argument("--dim", type=int, help=f"vector dimension (default {F['dim']})")
    p.add_argument("--queries", type=int, help=f"held-out query vectors (default {F['queries']})")
    p.add_argument(
        "--threads", type=int, help=f"client threads for the latency test (default {F['threads']})"
    )
    p.add_argument(
        "--concurrent-queries",
        type=int,
        help=f"searches shared by the threads (default {F['concurrent_queries']:,})",
    )
    p.add_argument("--batch", type=int, help=f"rows per insert call (default {F['batch']:,})")
    p.add_argument(
        "--clusters", type=int, help=f"Gaussian clusters in the data (default {F['clusters']:,})"
    )
    p.add_argument(
        "--search-budget",
        type=float,
        help=f"seconds per sweep step before it is cut short (default {F['search_budget']:g})",
    )
    p.add_argument(
        "--concurrent-budget",
        type=float,
        help=f"seconds before the concurrent run is cut short (default {F['concurrent_budget']:g})",
    )
    p.add_argument(
        "--recall-target",
        type=float,
        default=0.95,
        help="recall@10 a configuration must reach (default 0.95)",
    )
    p.add_argument(
        "--index-types",
        default=",".join(ALL_INDEX_TYPES),
        help=f"comma-separated, tried in order (default {','.join(ALL_INDEX_TYPES)})",
    )
    p.add_argument(
        "--systems",
        default="keeldb,milvus-lite",
        help=f"comma-separated, from {', '.join(SYSTEMS)} (default both)",
    )
    add_run_options(p, DEFAULT_SEED, "server data and logs")
    a = p.parse_args(argv)
    fill_defaults(a, QUICK_DEFAULTS, FULL_DEFAULTS)
    a.systems = [s.strip() for s in a.systems.split(",") if s.strip()]
    unknown = [s for s in a.systems if s not in SYSTEMS]
    if unknown or not a.systems:
        p.error(f"--systems: unknown {unknown}; choose from {', '.join(SYSTEMS)}")
    a.index_types = [t.strip().upper() for t in a.index_types.split(",") if t.strip()]
    bad = [t for t in a.index_types if t not in ALL_INDEX_TYPES]
    if bad or not a.index_types:
        p.error(f"--index-types: unknown {bad}; choose from {', '.join(ALL_INDEX_TYPES)}")
    for name in ("rows", "dim", "queries", "threads", "concurrent_queries", "batch", "clusters"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
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
        finish_metrics(entry)
        systems[key] = entry
        gc.collect()

    ratios = compute_ratios(systems)
    return {
        "schema": RESULT_SCHEMA,
        "machine": machine_info(),
        "config": {
            "rows": cfg.rows,
            "dim": cfg.dim,
            "queries": cfg.queries,
            "clusters": cfg.clusters,
            "threads": cfg.threads,
            "concurrent_queries": cfg.concurrent_queries,
            "batch": cfg.batch,
            "top_k": TOP_K,
            "metric_type": METRIC_TYPE,
            "recall_target": cfg.recall_target,
            "index_types": cfg.index_types,
            "search_budget_s": cfg.search_budget,
            "concurrent_budget_s": cfg.concurrent_budget,
            "seed": cfg.seed,
            "quick": cfg.quick,
            "systems": cfg.systems,
            "ground_truth": how,
            "data": "centres ~ N(0,1)^dim, points = centre + N(0, 0.5^2)^dim, float32; ids 0..rows-1;"
            " queries held out from the same distribution",
        },
        "systems": systems,
        "ratios": ratios,
        "targets": compute_targets(ratios),
    }


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    cfg = parse_args(argv)
    prepare_client_run()
    return bench_main(argv, cfg, "keeldb-bench-server-", run, print_report, cleanup=_kill_live_servers)


if __name__ == "__main__":
    sys.exit(main())
