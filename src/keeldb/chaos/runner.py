"""One chaos run, start to finish: load, run the workload, inject faults on a schedule,
restart and check after each, check at the end, write the report.

A checker pass holds every worker between calls first, so "two counts with no writes in
between" really has no writes in between, and reads the whole collection back with Strong
consistency: two counts, a full ``query_iterator`` scan, and searches.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keeldb.chaos import workload
from keeldb.chaos.checker import Observed, availability, check_reads, check_state
from keeldb.chaos.history import Check, Fault, History
from keeldb.chaos.targets import (
    ClusterTarget,
    ExternalTarget,
    KeelTarget,
    MilvusLiteTarget,
    Target,
)
from keeldb.chaos.workload import COLLECTION, Gate, Worker

FAULT_KINDS = ("sigkill", "sigstop", "crash-point", "disk-full", "slow-fsync")
# Crash points worth arming in a live server: each sits on a path that makes data visible
# or invisible under this workload (flushes, the log, compaction, index commits, garbage
# collection, replay). The flusher drives flush.*, manifest.*, gc.* and (once the
# collection's index exists, after each flush) index.*; the compactor drives compaction.*.
LIVE_CRASH_POINTS = (
    "wal.after_append",
    "wal.before_fsync",
    "wal.after_fsync",
    "flush.after_rotate",
    "flush.after_segment_write",
    "flush.after_segment_fsync",
    "manifest.before_rename",
    "manifest.after_rename",
    "compaction.after_write",
    "compaction.after_commit",
    "index.after_write",
    "index.after_commit",
    "gc.during",
    "recovery.during_replay",
)
CRASH_WAIT = 30.0  # seconds an armed point has to be reached before the runner gives up
NOT_REACHED = "(not reached in {:g}s; killed)"


def known_crash_points() -> set[str]:
    """The points this keeldb's server knows (keeldb.storage.crash.CRASH_POINTS): a name it
    does not know is never reached, so it is refused (or, from the defaults, skipped)."""
    from keeldb.storage.crash import CRASH_POINTS

    return set(CRASH_POINTS)


def live_crash_points(requested: tuple[str, ...] = ()) -> tuple[str, ...]:
    """The points a run arms: ``requested`` (each must exist), or every live one the server
    knows."""
    known = known_crash_points()
    if requested:
        unknown = [p for p in requested if p not in known]
        if unknown:
            raise ValueError(f"unknown crash points {unknown}; known: {', '.join(sorted(known))}")
        return requested
    return tuple(p for p in LIVE_CRASH_POINTS if p in known)


@dataclass
class Config:
    target: str = "keeldb"  # keeldb | milvus-lite | cluster | external
    rows: int = 100_000
    dim: int = 32
    faults: tuple[str, ...] = ("sigkill",)
    count: int = 5  # number of faults to inject
    interval: tuple[float, float] = (1.0, 5.0)  # seconds of workload between faults
    pause: float = 8.0  # SIGSTOP duration: longer than the client timeout
    crash_points: tuple[str, ...] = ()  # empty: every live point the server knows
    churn: bool = True  # inserts and deletes of extra keys besides the upserts
    searchers: int = 1
    flush_interval: float = 0.25
    compact_interval: float = 1.0  # seconds between compactions; 0 turns the compactor off
    index_type: str | None = None  # None: IVF_FLAT, or AUTOINDEX against milvus-lite
    crash_wait: float = CRASH_WAIT
    out: Path | None = None  # None: a new ./keeldb-chaos-<time> directory
    keep_data: bool = False  # keep the servers' data directories under ``out`` after the run
    uri: str | None = None
    kill_cmd: str | None = None
    restart_cmd: str | None = None
    pid: int | None = None
    seed: int = 0
    settle: float = 0.5
    # --target cluster: nodes, their lease TTL (None: the node's default), whether a killed
    # node comes back with an empty local directory, and how victims are picked (random, or
    # cover: each of node / etcd / object store once per three faults)
    nodes: int = 3
    lease_ttl: int | None = None
    empty_disk_restarts: bool = False
    victims: str = "random"


@dataclass
class Result:
    history: History
    violations: list[str]
    out: Path
    wall_seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    kept: list[Path] = field(default_factory=list)  # data directories left behind (--keep-data)


def make_target(cfg: Config, workdir: Path) -> Target:
    if cfg.target == "keeldb":
        return KeelTarget(workdir / "data")
    if cfg.target == "milvus-lite":
        return MilvusLiteTarget(workdir / "data")
    if cfg.target == "cluster":
        return ClusterTarget(
            workdir / "cluster",
            cfg.nodes,
            lease_ttl=cfg.lease_ttl,
            empty_disk_restarts=cfg.empty_disk_restarts,
            victims=cfg.victims,
            seed=cfg.seed,
        )
    if cfg.target == "external":
        if not cfg.uri:
            raise ValueError("--target external needs --uri")
        return ExternalTarget(cfg.uri, cfg.kill_cmd, cfg.restart_cmd, cfg.pid, workdir)
    raise ValueError(f"unknown target {cfg.target!r}")


def _client(uri: str) -> Any:
    import pymilvus

    deadline = time.monotonic() + 120
    while True:
        try:
            return pymilvus.MilvusClient(uri=uri, dedicated=True, timeout=10)
        except Exception:  # noqa: BLE001 - gRPC may still be backing off from the dead server
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def index_type(cfg: Config) -> str:
    """The index the workload builds: ``--index-type``, else IVF_FLAT — except against
    Milvus Lite, which builds only FLAT and is given AUTOINDEX, as its quick setup does."""
    if cfg.index_type:
        return cfg.index_type
    return "AUTOINDEX" if cfg.target == "milvus-lite" else "IVF_FLAT"


def create_collection(c: Any, cfg: Config) -> None:
    """The quick-setup schema (int64 ``id``, ``vector``, dynamic fields for ``batch``) with
    the configured ANN index; pymilvus creates the index and loads the collection."""
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=True)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=cfg.dim)
    itype = index_type(cfg)
    build, _ = workload.index_params(itype, cfg.dim)
    ip = c.prepare_index_params()
    ip.add_index("vector", index_type=itype, metric_type=workload.METRIC, params=build)
    c.create_collection(COLLECTION, schema=schema, index_params=ip, consistency_level="Strong")


def load_base(uri: str, cfg: Config, history: History, progress: Callable[[str], None]) -> None:
    c = _client(uri)
    if c.has_collection(COLLECTION):
        c.drop_collection(COLLECTION)
    create_collection(c, cfg)
    step = 5000
    for s in range(0, cfg.rows, step):
        rows = workload.rows_for(list(range(s, min(cfg.rows, s + step))), -1, cfg.dim)
        c.insert(COLLECTION, rows, timeout=60)
        if s // step % 20 == 0:
            progress(f"loading {s + len(rows):,}/{cfg.rows:,} rows")
    c.flush(COLLECTION, timeout=600)
    history.base_rows = cfg.rows
    c.close()


def ensure_loaded(uri: str) -> None:
    """Milvus Lite forgets that a collection was loaded when it restarts (keeldb and Milvus
    remember); load it again, as an operator would, before the workload resumes."""
    c = _client(uri)
    try:
        if c.has_collection(COLLECTION):
            c.load_collection(COLLECTION, timeout=600)
    finally:
        c.close()


def read_back(uri: str, cfg: Config) -> Observed:
    c = _client(uri)
    try:
        counts = [
            c.query(COLLECTION, filter="", output_fields=["count(*)"], consistency_level="Strong", timeout=120)[0]["count(*)"]
            for _ in range(2)
        ]
        values: dict[int, int] = {}
        dups: list[int] = []
        it = c.query_iterator(COLLECTION, batch_size=16384, output_fields=["batch"], consistency_level="Strong", timeout=120)
        while True:
            page = it.next()
            if not page:
                break
            for r in page:
                if r["id"] in values:
                    dups.append(r["id"])
                values[r["id"]] = r["batch"]
        it.close()
        rng = random.Random(cfg.seed + len(values))
        hits: list[tuple[int, int]] = []
        probes = [rng.randrange(cfg.rows) for _ in range(5)]
        res = c.search(COLLECTION, [workload.vector(k, -1, cfg.dim) for k in probes], limit=10,
                       output_fields=["batch"], search_params=workload.search_params(index_type(cfg), cfg.dim),
                       consistency_level="Strong", timeout=120)
        for per_query in res:
            ids = [h["id"] for h in per_query]
            dups.extend(k for k, n in Counter(ids).items() if n > 1)
            hits.extend((h["id"], h["entity"]["batch"]) for h in per_query)
        return Observed(values=values, duplicates=dups, counts=counts, search_hits=hits)
    finally:
        c.close()


class Run:
    def __init__(self, cfg: Config, progress: Callable[[str], None] = lambda s: None) -> None:
        self.cfg = cfg
        self.progress = progress
        self.rng = random.Random(cfg.seed)
        self.history = History()
        self.history.meta = {"config": {k: str(v) for k, v in cfg.__dict__.items()}}
        self.gate = Gate()
        self.workers: list[Worker] = []
        self.violations: list[str] = []
        self.batch_base = 0
        self.crash_points: tuple[str, ...] = cfg.crash_points or LIVE_CRASH_POINTS

    # -- workers ------------------------------------------------------------------------

    def start_workers(self, uris: list[str]) -> None:
        """One thread per worker, each with its own connection to one of ``uris`` (a cluster's
        nodes: dealt at random, evenly, fixed per worker, so calls are routed between
        nodes). The deal has its own generator: the fault sequence of a seed is unchanged."""
        cfg = self.cfg
        bodies = [("upsert", workload.upserter(cfg.rows, cfg.dim, self.batch_base))]
        if cfg.churn:
            bodies.append(("churn", workload.churner(cfg.rows, 1_000_000, cfg.dim, 1_000_000_000 + self.batch_base)))
        itype = index_type(cfg)
        bodies += [
            (f"search{i}", workload.searcher(cfg.rows, cfg.dim, cfg.seed + i, itype)) for i in range(cfg.searchers)
        ]
        bodies += [("count", workload.counter()), ("flush", workload.flusher(cfg.flush_interval))]
        if cfg.compact_interval > 0:
            bodies.append(("compact", workload.compactor(cfg.compact_interval)))
        slots = [uris[i % len(uris)] for i in range(len(bodies))]
        random.Random(f"uris-{cfg.seed}").shuffle(slots)
        self.workers = [
            Worker(n, uri, self.history, self.gate, b)
            for (n, b), uri in zip(bodies, slots, strict=True)
        ]
        self.history.meta["worker_uris"] = {w.name: w.uri for w in self.workers}
        for w in self.workers:
            w.start()

    def hold_workers(self) -> None:
        for w in self.workers:
            w.paused.set()
        for w in self.workers:
            while not w.idle.wait(0.1):
                if not w.is_alive():
                    break

    def release_workers(self) -> None:
        for w in self.workers:
            w.paused.clear()

    # -- faults -------------------------------------------------------------------------

    def inject(self, target: Target, kind: str) -> Fault:
        cfg = self.cfg
        fault = Fault(kind, self.history.now())
        self.history.faults.append(fault)
        self.gate.close()
        if kind == "sigkill":
            target.kill()
            target.start()
        elif kind == "sigstop":
            target.signal(signal.SIGSTOP)
            time.sleep(cfg.pause)
            target.signal(signal.SIGCONT)
        elif kind == "crash-point":
            # Restart the server with the point armed (a graceful stop, so the only crash is
            # the armed one) and let the workload drive it there: the writers and the
            # flusher reach wal.*, flush.*, manifest.*, gc.* and index.* (built after
            # flushes), the compactor compaction.*. A point not reached within
            # ``crash_wait`` is noted in the fault's detail and the server SIGKILLed.
            point = self.rng.choice(self.crash_points)
            nth = self.rng.randint(1, 3) if point.startswith("wal.") else 1
            fault.detail = f"{point}:{nth}"
            target.stop()
            try:
                target.start(env={"KEELDB_CRASH_AT": fault.detail})
                self.gate.open()
                died = target.wait_exit(cfg.crash_wait)
            except RuntimeError:  # died while starting: recovery.during_replay
                died = True
            self.gate.close()
            code = target.proc.returncode if target.proc is not None else None
            if not died:
                fault.detail += f" {NOT_REACHED.format(cfg.crash_wait)}"
                target.kill()
            elif code is not None and code != -signal.SIGKILL:
                # The point kills with SIGKILL; anything else died some other way.
                fault.detail += f" (server exited with code {code}, not at the point)"
            target.start()
        elif kind in ("disk-full", "slow-fsync"):
            spec = "disk-full" if kind == "disk-full" else "slow-fsync=200"
            fault.detail = spec
            target.stop()
            target.start(env={"KEELDB_FAULTS": spec})
            self.gate.open()
            time.sleep(self.rng.uniform(*cfg.interval))
            self.gate.close()
            target.kill()
            target.start()
        else:
            raise ValueError(f"unknown fault {kind!r}")
        fault.detail = fault.detail or target.last_victim  # a cluster: which component
        ensure_loaded(target.uri)
        fault.recovered = self.history.now()
        time.sleep(cfg.settle)
        self.gate.open()
        return fault

    # -- checking -----------------------------------------------------------------------

    def check(self, uri: str) -> list[str]:
        self.hold_workers()
        try:
            observed = read_back(uri, self.cfg)
            found = check_state(self.history, observed)
            self.history.checks.append(Check(self.history.now(), observed.counts[0], found))
            return found
        finally:
            self.release_workers()

    # -- the run ------------------------------------------------------------------------

    def execute(self) -> Result:
        cfg = self.cfg
        t_start = time.monotonic()
        workdir = cfg.out or Path(f"keeldb-chaos-{time.strftime('%Y%m%d-%H%M%S')}")
        workdir.mkdir(parents=True, exist_ok=True)
        target = make_target(cfg, workdir)
        kinds = [k for k in cfg.faults if k in FAULT_KINDS]
        if not target.supports_crash_points:
            kinds = [k for k in kinds if k not in ("crash-point", "disk-full", "slow-fsync")] or ["sigkill"]
        elif "crash-point" in kinds:
            self.crash_points = live_crash_points(cfg.crash_points)
        try:
            target.start()
            self.progress(f"{target.name} up at {', '.join(target.uris)}")
            load_base(target.uri, cfg, self.history, self.progress)
            self.history.t0 = time.monotonic()  # the workload's clock starts now
            self.start_workers(target.uris)
            for i in range(cfg.count):
                time.sleep(self.rng.uniform(*cfg.interval))
                kind = self.rng.choice(kinds)
                self.progress(f"fault {i + 1}/{cfg.count}: {kind}")
                self.inject(target, kind)
                found = self.check(target.uri)
                self.violations.extend(f"after fault {i + 1} ({kind}): {v}" for v in found)
                self.history.save(workdir / "history.partial.json")  # survives an interrupted run
                self.progress(f"fault {i + 1}/{cfg.count} checked: {len(found)} violations")
            time.sleep(self.rng.uniform(*cfg.interval))
            self.gate.stop.set()
            for w in self.workers:
                w.join(timeout=60)
            found = self.check(target.uri)
            self.violations.extend(f"final check: {v}" for v in found)
            self.violations.extend(f"during the run: {v}" for v in check_reads(self.history))
        finally:
            self.gate.stop.set()
            target.stop()
            if target.events:
                self.history.meta["target_events"] = target.events
            kept = [p for p in target.data_paths if p.exists()]
            if not cfg.keep_data:
                # The data is only evidence while the run is going on: the history and the
                # report say what happened. Hundreds of MB per run would pile up otherwise.
                for p in kept:
                    shutil.rmtree(p, ignore_errors=True)
                kept = []
        wall = time.monotonic() - t_start
        summary = summarize(self.history, self.violations, wall, target.name, cfg)
        return Result(self.history, self.violations, workdir, wall, summary, kept)


def is_hit(fault: Fault) -> bool:
    """A SIGKILL or SIGSTOP whose detail names the component it hit (a cluster's)."""
    return fault.kind in ("sigkill", "sigstop") and bool(fault.detail)


def summarize(history: History, violations: list[str], wall: float, target: str, cfg: Config) -> dict[str, Any]:
    by_outcome = Counter((o.kind, o.outcome) for o in history.ops)
    avail = availability(history)
    # From the fault to the first successful call on the restarted server (the runner's own
    # has_collection + load, made before the workload is let go: the workers' first success
    # comes later still, after the checker's pass, which holds them).
    rec = [r["restart_seconds"] for r in avail["recoveries"]]
    armed = [f.detail for f in history.faults if f.kind == "crash-point"]
    victims = Counter(f.detail.split(" ", 1)[0] for f in history.faults if is_hit(f))
    return {
        "target": target,
        "rows": cfg.rows,
        "index_type": index_type(cfg),
        "faults": len(history.faults),
        "fault_kinds": dict(Counter(f.kind for f in history.faults)),
        # name:n of every armed point, and those the server did not die at (not reached in
        # time, or it exited some other way): the fault's detail says which
        "crash_points": armed,
        "crash_points_not_reached": [d.split(" ", 1)[0] for d in armed if " (" in d],
        # a cluster: how often each component was hit (node id, etcd, object-store)
        "fault_victims": dict(victims),
        "operations": len(history.ops),
        "outcomes": {f"{k}/{o}": n for (k, o), n in sorted(by_outcome.items())},
        "violations": len(violations),
        "recovery_seconds_max": max(rec, default=None),
        "recovery_seconds_mean": (sum(rec) / len(rec)) if rec else None,
        "wall_seconds": round(wall, 1),
        "availability": avail,
    }
