"""One chaos run, start to finish: load, run the workload, inject faults on a schedule,
restart and check after each, check at the end, write the report.

A checker pass holds every worker between calls first, so "two counts with no writes in
between" really has no writes in between, and reads the whole collection back with Strong
consistency through every read path (chaos/readback.py).

A target that does not come back after a fault (it exits while starting, or never serves)
is a finding: the run stops injecting, judges what it has, and reports "did not recover"
with the last lines of the server's log — the history and the report are written all the
same, and the exit code says it failed.
"""

from __future__ import annotations

import random
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from keeldb.chaos import reads, workload
from keeldb.chaos.checker import availability, check_reads, check_state
from keeldb.chaos.faults import (
    CRASH_WAIT,
    DEFAULT_FAULTS,
    FAULT_KINDS,
    LIVE_CRASH_POINTS,
    NOT_REACHED,
    POWER_MODES,
    RANDOM_CUT,
    CrashCycle,
    NotRecovered,
    hurried_worker,
    live_crash_points,
    log_tail,
    schedule,
)
from keeldb.chaos.history import Check, Fault, History
from keeldb.chaos.predicates import Pred
from keeldb.chaos.readback import read_back
from keeldb.chaos.targets import (
    ClusterTarget,
    ExternalTarget,
    KeelTarget,
    MilvusLiteTarget,
    Target,
)
from keeldb.chaos.variants import ALL, Mix, expand, mix_of
from keeldb.chaos.variants import DEFAULT as DEFAULT_WORKLOAD
from keeldb.chaos.workload import COLLECTION, Gate, Worker

__all__ = ["CRASH_WAIT", "FAULT_KINDS", "LIVE_CRASH_POINTS", "Config", "Result", "Run", "live_crash_points", "plan"]
INSERT_KEYS = 2_000_000  # fresh keys of the insert-only writer start at rows + this
CHURN_SPAN = 1_000_000  # extra keys the churner cycles over, from rows on
RECOVER_TIMEOUT = 120.0  # seconds a restarted target has to serve again


@dataclass
class Config:
    target: str = "keeldb"  # keeldb | milvus-lite | cluster | external
    rows: int = 100_000
    dim: int = 32
    # None: faults.DEFAULT_FAULTS less what the target cannot take (Run.fault_kinds)
    faults: tuple[str, ...] | None = None
    count: int = 5  # number of faults to inject
    interval: tuple[float, float] = (1.0, 5.0)  # seconds of workload between faults
    pause: float = 8.0  # SIGSTOP duration: longer than the client timeout
    crash_points: tuple[str, ...] = ()  # empty: every live point the server knows
    workload: str = DEFAULT_WORKLOAD  # a variant or a comma list of them (chaos/variants.py)
    churn: bool = True  # False: no churner (--no-churn: the upsert-only variant)
    searchers: int = 1
    readers: int = 1  # workers reading through every other path (chaos/reads.py)
    flush_interval: float = 0.25
    compact_interval: float = 1.0  # seconds between compactions; 0 turns the compactor off
    index_type: str | None = None  # None: IVF_FLAT, or AUTOINDEX against milvus-lite
    crash_wait: float = CRASH_WAIT
    recover_timeout: float = RECOVER_TIMEOUT
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

    @property
    def mix(self) -> Mix:
        m = mix_of(self.workload)
        return m if self.churn else replace(m, churn_group=0)


@dataclass
class Result:
    history: History
    violations: list[str]
    out: Path
    wall_seconds: float
    summary: dict[str, Any] = field(default_factory=dict)
    kept: list[Path] = field(default_factory=list)  # data directories left behind (--keep-data)


def plan(cfg: Config) -> list[Config]:
    """The runs a configuration asks for: one, or (``--workload all``) one per variant, in
    turn, each writing to its own directory under ``out``."""
    names = expand(cfg.workload)
    if cfg.target == "cluster":
        # A TTL is judged by write timestamps that bound each read's snapshot, which takes
        # one oracle; a cluster's nodes stamp from separate windows (chaos/expiry.py).
        if any(mix_of(n).ttl_seconds for n in names) and cfg.workload.strip() != ALL:
            raise ValueError("--workload ttl is not available for --target cluster (see chaos/expiry.py)")
        names = [n for n in names if not mix_of(n).ttl_seconds]
    if len(names) == 1:
        return [replace(cfg, workload=names[0])]
    out = cfg.out or Path(f"keeldb-chaos-{time.strftime('%Y%m%d-%H%M%S')}")
    return [replace(cfg, workload=n, out=out / n) for n in names]


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


def _client(uri: str, timeout: float = 120) -> Any:
    import pymilvus

    deadline = time.monotonic() + timeout
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
    ttl = {"properties": {"collection.ttl.seconds": cfg.mix.ttl_seconds}} if cfg.mix.ttl_seconds else {}
    c.create_collection(COLLECTION, schema=schema, index_params=ip, consistency_level="Strong", **ttl)


def load_base(uri: str, cfg: Config, history: History, progress: Callable[[str], None]) -> None:
    """Create the collection and insert the base rows (keys 0..rows-1, batch -1); note what
    the target supports (``probe``)."""
    c = _client(uri)
    if c.has_collection(COLLECTION):
        c.drop_collection(COLLECTION)
    create_collection(c, cfg)
    step = 5000
    stamps: list[int | None] = []
    for s in range(0, cfg.rows, step):
        rows = workload.rows_for(list(range(s, min(cfg.rows, s + step))), -1, cfg.dim)
        stamps.append(workload.mutate(c, "insert", rows, timeout=60))
        if s // step % 20 == 0:
            progress(f"loading {s + len(rows):,}/{cfg.rows:,} rows")
    c.flush(COLLECTION, timeout=600)
    history.base_rows = cfg.rows
    history.batch_size = cfg.mix.batch
    stamped = bool(stamps) and all(stamps)
    history.meta["capabilities"] = {"write_timestamps": stamped, "mod_filter": probe_mod(c, cfg.rows)}
    if cfg.mix.ttl_seconds:
        # When the base versions were stamped: when they expire (chaos/expiry.py).
        got = [t for t in stamps if t]
        base_ts = [min(got), max(got)] if stamped else None
        history.meta["ttl"] = {"seconds": cfg.mix.ttl_seconds, "base_ts": base_ts}
    c.close()


def probe_mod(c: Any, rows: int) -> bool:
    """Whether the target takes ``id % m == r`` filters (Milvus's grammar has them, Milvus
    Lite refuses them). What a target lacks is not used, and the summary says so; likewise
    pinned reads need the write timestamps a target reports (Milvus Lite reports 0)."""
    try:
        reads.count(c, Pred(lo=0, hi=min(rows, 100), mod=(reads.MOD, 3)), timeout=60)
        return True
    except Exception:  # noqa: BLE001 - an error the server answered: not supported
        return False


def ensure_loaded(uri: str, timeout: float = RECOVER_TIMEOUT) -> None:
    """Milvus Lite forgets that a collection was loaded when it restarts (keeldb and Milvus
    remember); load it again, as an operator would, before the workload resumes. A keeldb
    cluster answers a load that reaches a node while the writer's lease is moving (a node
    just restarted, its old lease not yet expired) with "...; retry (routing moves)": the
    load is idempotent, so it is sent again until ``timeout``, as an operator would."""
    deadline = time.monotonic() + timeout
    c = _client(uri, timeout)
    try:
        while True:
            try:
                if c.has_collection(COLLECTION, timeout=timeout):
                    c.load_collection(COLLECTION, timeout=timeout)
                return
            except Exception as e:  # noqa: BLE001 - only the cluster's own "retry" answer is retried
                if "retry" not in str(e) or time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
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
        self.cycle: CrashCycle | None = None
        self.power_cycle: CrashCycle | None = None  # the power-cut faults' own cycle of points

    # -- workers ------------------------------------------------------------------------

    def start_workers(self, uris: list[str]) -> None:
        """One thread per worker, each with its own connection to one of ``uris`` (a cluster's
        nodes: dealt at random, evenly, fixed per worker, so calls are routed between
        nodes). The deal has its own generator: the fault sequence of a seed is unchanged.
        Each writer owns its keys (chaos/variants.py): the upserter the base keys (the lower
        half when a deleter owns the upper), the churner and the inserter extra keys."""
        cfg, mix, rows = self.cfg, self.cfg.mix, self.cfg.rows
        b0 = self.batch_base
        bodies: list[tuple[str, Callable[[Worker], None]]] = []
        upsert_span = rows // 2 if mix.delete_group else rows
        if mix.upsert_batch:
            up = workload.upserter(upsert_span, cfg.dim, b0, mix.upsert_batch, partial=mix.partial_update)
            bodies.append(("upsert", up))
        if mix.churn_group:
            bodies.append(("churn", workload.churner(rows, CHURN_SPAN, cfg.dim, 1_000_000_000 + b0, mix.churn_group)))
        if mix.insert_batch:
            bodies.append(("insert", workload.inserter(rows + INSERT_KEYS, cfg.dim, 2_000_000_000 + b0, mix.insert_batch)))
        if mix.delete_group:
            bodies.append(("delete", workload.deleter(upsert_span, rows, cfg.dim, 3_000_000_000 + b0, mix.delete_group)))
        itype = index_type(cfg)
        bodies += [
            (f"search{i}", workload.searcher(rows, cfg.dim, cfg.seed + i, itype)) for i in range(cfg.searchers)
        ]
        use_mod = bool(self.history.meta.get("capabilities", {}).get("mod_filter", True))
        bodies += [
            (f"read{i}", workload.reader(rows, cfg.dim, cfg.seed + i, itype, use_mod)) for i in range(cfg.readers)
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

    def restart(self, target: Target, env: dict[str, str] | None = None, start: bool = True) -> None:
        """Start the target (again; ``start`` False: it was only paused) and, unless it runs
        with a fault armed, wait until it serves the collection — or raise NotRecovered with
        the last lines of its log: it exited while starting, or never served."""
        try:
            if start:
                target.start(env=env, timeout=self.cfg.recover_timeout)
            if env is None:
                ensure_loaded(target.uri, self.cfg.recover_timeout)
        except Exception as e:  # noqa: BLE001 - whatever it was, the target is not back
            raise NotRecovered(
                f"{type(e).__name__}: {e}; last lines of {target.log_path}: {log_tail(target.log_path)}"
            ) from e

    def inject(self, target: Target, kind: str) -> Fault:
        cfg = self.cfg
        fault = Fault(kind, self.history.now())
        self.history.faults.append(fault)
        self.gate.close()
        if kind == "sigkill":
            target.kill()
            self.restart(target)
        elif kind == "sigstop":
            target.signal(signal.SIGSTOP)
            time.sleep(cfg.pause)
            target.signal(signal.SIGCONT)
            self.restart(target, start=False)
        elif kind == "crash-point":
            assert self.cycle is not None
            self.crash_round(target, fault, self.cycle)
        elif kind == "power-cut":
            assert self.power_cycle is not None
            self.crash_round(target, fault, self.power_cycle, power=True)
        elif kind in ("disk-full", "slow-fsync"):
            spec = "disk-full" if kind == "disk-full" else "slow-fsync=200"
            fault.detail = spec
            target.stop()
            self.restart(target, env={"KEELDB_FAULTS": spec})
            self.gate.open()
            time.sleep(self.rng.uniform(*cfg.interval))
            self.gate.close()
            target.kill()
            self.restart(target)
        else:
            raise ValueError(f"unknown fault {kind!r}")
        fault.detail = fault.detail or target.last_victim  # a cluster: which component
        fault.recovered = self.history.now()
        time.sleep(cfg.settle)
        self.gate.open()
        return fault

    def crash_round(self, target: Target, fault: Fault, cycle: CrashCycle, *, power: bool = False) -> None:
        """Restart the server with each point of this fault's share of the cycle armed in
        turn (a graceful stop first, so the only crashes are armed ones: ``Target.take_down``;
        a cluster arms one node and makes it the shard's writer, so the points on the
        writer's path are reached) and let the workload drive it there: the writers reach
        wal.*, the flusher flush.*, manifest.*, gc.* and index.* (built after flushes), the
        compactor compaction.*, the restart after a crash recovery.* (a round that starts
        with it starts with a SIGKILL instead of the graceful stop, so there is a log tail to
        replay). A point not reached within ``crash_wait`` is noted and the server
        SIGKILLed; then the next point is armed. Last, a plain restart. The fault's detail
        names the node a cluster round armed (``node1: wal.after_fsync:2; ...``).

        ``power``: each point cuts the power instead (``KEELDB_FAULTS=power-cut``, alternately
        torn), and the round ends with one more cut at a random instant (SIGUSR1); each entry
        of ``fault.points`` is then ``name:n@mode``."""
        specs = cycle.next_round()
        target.take_down(sigkill=specs[0].startswith("recovery."))
        where = target.last_victim  # a cluster: the node this round arms
        if power:
            specs.append(RANDOM_CUT)
        for i, spec in enumerate(specs):
            mode = POWER_MODES[i % 2].format(seed=self.rng.randrange(1 << 16)) if power else None
            note = self._arm(target, spec, mode)
            fault.points.append(spec + (f"@{mode}" if mode else "") + note)
            if "while starting" in note:
                break  # it does not start at all: the plain restart below says why
        fault.detail = (f"{where}: " if where else "") + "; ".join(fault.points)
        fault.restarted = self.history.now()
        self.restart(target)

    def _arm(self, target: Target, spec: str, power: str | None = None) -> str:
        """Start with ``spec`` armed until the server dies there: "" if it did, else what
        happened instead. Some points are armed with a worker hurried (faults.HURRY).
        ``power``: the KEELDB_FAULTS power-cut mode the point cuts the power with; with
        ``spec`` RANDOM_CUT, the cut is a SIGUSR1 after a random share of the interval."""
        hurried = [w for w in self.workers if w.name == hurried_worker(spec)]
        for w in hurried:
            w.hurry.set()
        try:
            return self._armed_run(target, spec, power)
        finally:
            for w in hurried:
                w.hurry.clear()

    def _armed_run(self, target: Target, spec: str, power: str | None = None) -> str:
        cfg = self.cfg
        env = {"KEELDB_FAULTS": power} if power else {}
        if spec != RANDOM_CUT:
            env["KEELDB_CRASH_AT"] = spec
        try:
            target.start(env=env, timeout=cfg.recover_timeout)
        except Exception:  # noqa: BLE001 - died while starting: recovery.* (or a finding, next restart)
            code = target.proc.returncode if target.proc is not None else None
            return "" if code == -signal.SIGKILL else f" (server exited with code {code} while starting)"
        if spec.startswith("recovery."):
            target.kill()  # it started: there was nothing to replay
            return " (not reached: nothing to replay; killed)"
        self.gate.open()
        if spec == RANDOM_CUT:
            time.sleep(self.rng.uniform(*cfg.interval))
            target.signal(signal.SIGUSR1)
        died = target.wait_exit(cfg.crash_wait)
        self.gate.close()
        if not died:
            target.kill()
            return f" {NOT_REACHED.format(cfg.crash_wait)}"
        code = target.proc.returncode if target.proc is not None else None
        # The point kills with SIGKILL; anything else died some other way.
        return "" if code is None or code == -signal.SIGKILL else f" (server exited with code {code}, not at the point)"

    # -- checking -----------------------------------------------------------------------

    def check(self, target: Target) -> list[str]:
        """One checker pass, workers held. A target that cannot answer the pass's reads
        (twice, a few seconds apart) has not recovered."""
        self.hold_workers()
        try:
            caps = self.history.meta.get("capabilities", {})
            sp = workload.search_params(index_type(self.cfg), self.cfg.dim)
            for attempt in range(2):
                try:
                    c = _client(target.uri, self.cfg.recover_timeout)
                    try:
                        observed = read_back(c, self.history, dim=self.cfg.dim, seed=self.cfg.seed,
                                             search_params=sp, use_mod=caps.get("mod_filter", True))  # fmt: skip
                    finally:
                        c.close()
                    break
                except Exception as e:  # noqa: BLE001 - a dead or broken server: once more, then a finding
                    if attempt:
                        raise NotRecovered(
                            f"the checker's reads failed: {type(e).__name__}: {str(e)[:300]}; "
                            f"last lines of {target.log_path}: {log_tail(target.log_path)}"
                        ) from e
                    time.sleep(3)
            found = check_state(self.history, observed)
            self.history.checks.append(Check(self.history.now(), observed.counts[0], found))
            return found
        finally:
            self.release_workers()

    # -- the run ------------------------------------------------------------------------

    def fault_kinds(self, target: Target) -> list[str]:
        """The run's fault schedule. Default: sigkill, cycling crash points and power cuts
        where the target has them (keeldb: all three; a cluster: sigkill and crash points;
        elsewhere sigkill); kinds a target cannot take are dropped (sigkill if none is left).
        The crash points cycled are the target's (``Target.crash_points``) unless named."""
        cfg = self.cfg
        kinds = list(cfg.faults) if cfg.faults else list(DEFAULT_FAULTS)
        kinds = [k for k in kinds if k in FAULT_KINDS]
        cannot: set[str] = set()
        if not target.supports_crash_points:
            cannot.add("crash-point")
        if not target.supports_io_faults:
            cannot |= {"disk-full", "slow-fsync"}
        if not target.supports_power_cut:
            cannot.add("power-cut")
        kinds = [k for k in kinds if k not in cannot] or ["sigkill"]
        plan_ = schedule(kinds, cfg.count, self.rng)
        if "crash-point" in plan_ or "power-cut" in plan_:
            self.crash_points = live_crash_points(cfg.crash_points, target.crash_points)
        if "crash-point" in plan_:
            self.cycle = CrashCycle(self.crash_points, plan_.count("crash-point"), self.rng)
        if "power-cut" in plan_:
            self.power_cycle = CrashCycle(self.crash_points, plan_.count("power-cut"), self.rng)
        return plan_

    def execute(self) -> Result:
        cfg = self.cfg
        t_start = time.monotonic()
        workdir = cfg.out or Path(f"keeldb-chaos-{time.strftime('%Y%m%d-%H%M%S')}")
        workdir.mkdir(parents=True, exist_ok=True)
        target = make_target(cfg, workdir)
        kinds = self.fault_kinds(target)
        try:
            target.start()
            self.progress(f"{target.name} up at {', '.join(target.uris)}")
            load_base(target.uri, cfg, self.history, self.progress)
            self.history.t0 = time.monotonic()  # the workload's clock starts now
            self.start_workers(target.uris)
            recovered = True
            for i, kind in enumerate(kinds):
                time.sleep(self.rng.uniform(*cfg.interval))
                self.progress(f"fault {i + 1}/{cfg.count}: {kind}")
                try:
                    self.inject(target, kind)
                    found = self.check(target)
                except NotRecovered as e:
                    self.violations.append(f"after fault {i + 1} ({kind}): did not recover: {e}")
                    self.progress(f"fault {i + 1}/{cfg.count}: the target did not recover; stopping")
                    recovered = False
                    break
                self.violations.extend(f"after fault {i + 1} ({kind}): {v}" for v in found)
                self.history.save(workdir / "history.partial.json")  # survives an interrupted run
                self.progress(f"fault {i + 1}/{cfg.count} checked: {len(found)} violations")
            if recovered:
                time.sleep(self.rng.uniform(*cfg.interval))
            self.gate.stop.set()
            for w in self.workers:
                w.join(timeout=60)
            if recovered:
                try:
                    found = self.check(target)
                    self.violations.extend(f"final check: {v}" for v in found)
                except NotRecovered as e:
                    self.violations.append(f"final check: did not recover: {e}")
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
    armed = [p for f in history.faults if f.kind in ("crash-point", "power-cut") for p in (f.points or [f.detail])]
    reads_ok = Counter(o.kind for o in history.ops if o.is_read and o.outcome == "ok")
    victims = Counter(f.detail.split(" ", 1)[0] for f in history.faults if is_hit(f))
    return {
        "target": target,
        "workload": cfg.workload if cfg.churn else f"{cfg.workload} (--no-churn)",
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
        # what the target supports of the checker's reads (chaos/reads.py), and the reads
        # that were answered, by kind; pinned: at or just before a write's timestamp
        "capabilities": history.meta.get("capabilities", {}),
        "reads_ok": dict(reads_ok),
        "pinned_reads_ok": sum(1 for o in history.ops if o.args.get("pin_op") is not None and o.outcome == "ok"),
        "outcomes": {f"{k}/{o}": n for (k, o), n in sorted(by_outcome.items())},
        "violations": len(violations),
        "recovery_seconds_max": max(rec, default=None),
        "recovery_seconds_mean": (sum(rec) / len(rec)) if rec else None,
        "wall_seconds": round(wall, 1),
        "availability": avail,
    }
