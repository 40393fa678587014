"""Filtered reads with and without scalar indexes, embedded keeldb, one collection, same run.

``--rows`` rows (1M by default) of ``--dim``-dim clustered float vectors plus scalar columns,
generated from ``--seed``; every filter below selects exactly 0.1%, 1% or 10% of the rows:

- ``num``  INT64, a permutation of 0..rows-1 (``num < k``)            -- STL_SORT
- ``cat``  VARCHAR, one of 1000 codes ``c000``..``c999`` (``==``, ``like 'c00%'``) -- TRIE
- ``low``  INT32, 1000 values (``==``, ``in``, ``<``)                   -- BITMAP
- ``flag`` BOOL, true on 10% of the rows                               -- BITMAP
- ``meta["p"]`` a JSON path holding 0..999 (``==``, ``<``)              -- INVERTED, json_cast_type DOUBLE
- ``meta["g"]`` a JSON array ``[p, p + 1000]`` (``json_contains``, ``json_contains_any``)
                                                                      -- INVERTED, json_cast_type ARRAY_DOUBLE

For each filter: ``query`` (ids, ``limit`` 1000) and ``count(*)``, median of ``--calls``
calls, through the indexes and through the scan -- the same collection with the filter's
index path switched off (``scalar_filter.ENABLED = False``: exactly what runs when the field
has no index) -- and the ratio scan / index. The answers of both are compared (``same``).
Then dense ANN search (nq=1, top-10) filtered on ``num`` at the same selectivities vs
unfiltered, for each of ``--ann`` (HNSW M=16 efConstruction=64 ef=64; IVF_FLAT nlist=1024
nprobe=16), each built in turn on the same rows. The 10x target at 0.1% is printed, never
asserted.

    python benchmarks/bench_filters.py                # 1M rows: the README's figures
    python benchmarks/bench_filters.py --quick        # 20k rows, a minute
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _common import json_default, machine_info

COLLECTION = "f"
SELECTIVITIES = (0.001, 0.01, 0.1)
TARGET = 10.0  # the issue's: >= 10x faster than the scan at 0.1%


def filters(rows: int) -> dict[str, dict[float, str]]:
    """Per indexed column, the filter at each selectivity (each exact: see the module doc)."""
    return {
        "num (STL_SORT)": {s: f"num < {int(rows * s)}" for s in SELECTIVITIES},
        "cat (TRIE)": {0.001: 'cat == "c007"', 0.01: 'cat like "c00%"', 0.1: 'cat like "c0%"'},
        "low (BITMAP)": {0.001: "low == 7", 0.01: f"low in {list(range(10))}", 0.1: "low < 100"},
        "flag (BITMAP)": {0.1: "flag"},
        'meta["p"] (INVERTED JSON)': {0.001: 'meta["p"] == 7', 0.01: 'meta["p"] < 10', 0.1: 'meta["p"] < 100'},
        'meta["g"] (INVERTED ARRAY_DOUBLE)': {0.001: 'json_contains(meta["g"], 1007)',
                                              0.01: f'json_contains_any(meta["g"], {list(range(10))})',
                                              0.1: f'json_contains_any(meta["g"], {list(range(1000, 1100))})'},
    }  # fmt: skip


def make_batch(rng: np.random.Generator, centers: np.ndarray, perm: np.ndarray, lo: int, hi: int) -> list[dict[str, Any]]:
    n = hi - lo
    vec = centers[rng.integers(0, len(centers), n)] + rng.normal(0, 1, (n, centers.shape[1])).astype(np.float32)
    codes = np.arange(lo, hi) % 1000  # cat / low / meta: each value on exactly rows/1000 rows
    cat = [f"c{int(c):03d}" for c in rng.permutation(codes)]
    low = rng.permutation(codes)
    p = rng.permutation(codes)
    return [
        {"id": lo + i, "v": vec[i].tolist(), "num": int(perm[lo + i]), "cat": cat[i], "low": int(low[i]),
         "flag": bool((lo + i) % 10 == 0), "meta": {"p": int(p[i]), "q": "x" * (i % 3), "g": [int(p[i]), int(p[i]) + 1000]}}
        for i in range(n)
    ]  # fmt: skip


def median_ms(fn: Callable[[], Any], calls: int) -> tuple[float, Any]:
    out = fn()  # warm: caches (parsed JSON, column views) as a long-running process has them
    times = []
    for _ in range(calls):
        t0 = time.perf_counter()
        out = fn()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), out


def run(cfg: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> dict[str, Any]:
    import keeldb
    from keeldb import DataType
    from keeldb.engine import scalar_filter as SF

    rng = np.random.default_rng(cfg.seed)
    rows = cfg.rows
    centers = rng.normal(0, 4, (256, cfg.dim)).astype(np.float32)
    perm = rng.permutation(rows)
    c = keeldb.Client(str(workdir / "db"))
    if cfg.reuse and c.has_collection(COLLECTION):
        # The data and indexes of an earlier run in this work dir: measure again, build nothing.
        c.load_collection(COLLECTION)
        ann = c.describe_index(COLLECTION, "v")["index_type"]
        log(f"reusing {workdir / 'db'} ({ann})")
        res = {"filters": _filters(c, SF, rows, cfg.calls, log), "insert_s": 0.0, "scalar_index_build_s": 0.0,
               "search": _search(c, SF, ann, 0.0, rows, cfg, centers, log) if ann != "FLAT" else [], "reused": True}
        c.close()
        return res
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=cfg.dim)
    s.add_field("num", DataType.INT64)
    s.add_field("cat", DataType.VARCHAR, max_length=8)
    s.add_field("low", DataType.INT32)
    s.add_field("flag", DataType.BOOL)
    s.add_field("meta", DataType.JSON)
    c.create_collection(COLLECTION, schema=s)
    t0 = time.perf_counter()
    for lo in range(0, rows, cfg.batch):
        c.insert(COLLECTION, make_batch(rng, centers, perm, lo, min(rows, lo + cfg.batch)))
    c.flush(COLLECTION)
    insert_s = time.perf_counter() - t0
    log(f"inserted {rows} rows in {insert_s:.0f}s")
    c.compact(COLLECTION)
    ip = c.prepare_index_params()
    ip.add_index("num", "STL_SORT")
    ip.add_index("cat", "TRIE")
    ip.add_index("low", "BITMAP")
    ip.add_index("flag", "BITMAP")
    ip.add_index("meta", "INVERTED", index_name="meta_p", params={"json_path": 'meta["p"]', "json_cast_type": "double"})
    ip.add_index("meta", "INVERTED", index_name="meta_g", params={"json_path": 'meta["g"]', "json_cast_type": "ARRAY_DOUBLE"})
    t0 = time.perf_counter()
    c.create_index(COLLECTION, ip)
    scalar_build_s = time.perf_counter() - t0
    log(f"scalar indexes built in {scalar_build_s:.1f}s")

    results: dict[str, Any] = {"filters": [], "search": [], "insert_s": insert_s, "scalar_index_build_s": scalar_build_s}
    ann_types = [t for t in cfg.ann.split(",") if t]
    if not ann_types:
        vp = c.prepare_index_params()
        vp.add_index("v", "FLAT", metric_type="L2")
        c.create_index(COLLECTION, vp)
        c.load_collection(COLLECTION)
        results["filters"] = _filters(c, SF, rows, cfg.calls, log)
    for k, ann in enumerate(ann_types):
        if k:
            c.release_collection(COLLECTION)
            c.drop_index(COLLECTION, "v")
        vp = c.prepare_index_params()
        params = {"M": 16, "efConstruction": 64} if ann == "HNSW" else {"nlist": min(1024, max(16, rows // 1000))}
        vp.add_index("v", ann, metric_type="L2", params=params)
        t0 = time.perf_counter()
        c.create_index(COLLECTION, vp)
        build_s = time.perf_counter() - t0
        c.load_collection(COLLECTION)
        log(f"{ann} built in {build_s:.0f}s")
        if k == 0:
            results["filters"] = _filters(c, SF, rows, cfg.calls, log)
        results["search"] += _search(c, SF, ann, build_s, rows, cfg, centers, log)
    c.close()
    return results


def _filters(c: Any, SF: Any, rows: int, calls: int, log: Callable[[str], None]) -> list[dict[str, Any]]:
    out = []
    for column, by_sel in filters(rows).items():
        for sel, expr in by_sel.items():
            fig: dict[str, Any] = {"column": column, "selectivity": sel, "filter": expr}
            answers = {}
            for mode, on in (("index", True), ("scan", False)):
                SF.ENABLED = on
                try:
                    q_ms, got = median_ms(lambda e=expr: c.query(COLLECTION, e, output_fields=["id"], limit=1000), calls)
                    n_ms, cnt = median_ms(lambda e=expr: c.query(COLLECTION, e, output_fields=["count(*)"]), calls)
                finally:
                    SF.ENABLED = True
                fig[f"query_{mode}_ms"], fig[f"count_{mode}_ms"] = q_ms, n_ms
                answers[mode] = (sorted(r["id"] for r in got), cnt[0]["count(*)"])
            fig["count"] = answers["index"][1]
            fig["same"] = answers["index"] == answers["scan"] and fig["count"] == round(rows * sel)
            fig["query_speedup"] = fig["query_scan_ms"] / fig["query_index_ms"]
            fig["count_speedup"] = fig["count_scan_ms"] / fig["count_index_ms"]
            log(f"{expr}: count {fig['count_index_ms']:.2f} ms vs scan {fig['count_scan_ms']:.2f} ms")
            out.append(fig)
    return out


def _search(c: Any, SF: Any, ann: str, build_s: float, rows: int, cfg: argparse.Namespace, centers: np.ndarray,
            log: Callable[[str], None]) -> list[dict[str, Any]]:  # fmt: skip
    rng = np.random.default_rng(cfg.seed + 1)
    queries = (centers[rng.integers(0, len(centers), cfg.calls)] + rng.normal(0, 1, (cfg.calls, cfg.dim))).astype(np.float32)
    knobs = {"ef": 64} if ann == "HNSW" else {"nprobe": 16}
    out = []
    for sel in (None, *SELECTIVITIES):
        expr = "" if sel is None else f"num < {int(rows * sel)}"
        fig: dict[str, Any] = {"index": ann, "build_s": build_s, "selectivity": sel, "filter": expr}
        for mode, on in (("index", True), ("scan", False)):
            if sel is None and not on:
                continue
            SF.ENABLED = on
            it = iter(range(10**9))
            try:
                ms, _ = median_ms(lambda e=expr, it=it: c.search(COLLECTION, [queries[next(it) % len(queries)].tolist()], limit=10,
                                                          filter=e, search_params={"params": knobs}), cfg.calls)  # fmt: skip
            finally:
                SF.ENABLED = True
            fig[f"search_{mode}_filter_ms"] = ms
        hits = c.search(COLLECTION, [queries[0].tolist()], limit=10, filter=expr, output_fields=["num"],
                        search_params={"params": knobs})[0]  # fmt: skip
        fig["hits"] = len(hits)
        fig["hits_pass_filter"] = sel is None or all(h["entity"]["num"] < int(rows * sel) for h in hits)
        log(f"{ann} filter={expr or '-'}: {fig['search_index_filter_ms']:.2f} ms")
        out.append(fig)
    return out


def report(res: dict[str, Any]) -> str:
    head = (f"insert {res['insert_s']:.0f}s; scalar index build {res['scalar_index_build_s']:.1f}s"
            if not res.get("reused") else "an earlier run's collection, measured again")
    lines = [f"rows {res['config']['rows']} x {res['config']['dim']}-dim; {head}", "",
             "filter                                    sel     count  | count(*) index / scan ms   x  | query index / scan ms   x  | same"]  # fmt: skip
    for f in res["filters"]:
        lines.append(
            f"{f['filter'][:40]:<40} {f['selectivity'] * 100:>5.1f}% {f['count']:>8} | {f['count_index_ms']:>8.2f} / "
            f"{f['count_scan_ms']:>8.2f} {f['count_speedup']:>6.1f} | {f['query_index_ms']:>7.2f} / {f['query_scan_ms']:>7.2f} "
            f"{f['query_speedup']:>6.1f} | {f['same']}"
        )
    at = [f for f in res["filters"] if f["selectivity"] == 0.001]
    if at:
        worst = min(min(f["count_speedup"], f["query_speedup"]) for f in at)
        lines.append(f"\nat 0.1%: the slowest speedup is {worst:.1f}x (target >= {TARGET:.0f}x: "
                     f"{'met' if worst >= TARGET else 'NOT met'} for every filter)")  # fmt: skip
    lines += ["", "search (nq=1, top-10)   filter              ms (index filter)  ms (scan filter)  vs unfiltered  hits"]
    base: dict[str, float] = {}
    for s in res["search"]:
        if s["selectivity"] is None:
            base[s["index"]] = s["search_index_filter_ms"]
        scan = s.get("search_scan_filter_ms")
        lines.append(
            f"{s['index']:<8} (built {s['build_s']:>4.0f}s) {s['filter'] or '(none)':<20} {s['search_index_filter_ms']:>10.2f}"
            f"  {'' if scan is None else f'{scan:>16.2f}':>16}  {s['search_index_filter_ms'] / base[s['index']]:>12.2f}x  {s['hits']:>4}"
        )
    lines.append(f"\nsame answers everywhere: {all(f['same'] for f in res['filters'])}; "
                 f"every search hit passes its filter: {all(s['hits_pass_filter'] for s in res['search'])}")
    return "\n".join(lines)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int)
    p.add_argument("--dim", type=int, default=128)
    p.add_argument("--batch", type=int, default=50_000)
    p.add_argument("--calls", type=int)
    p.add_argument("--ann", default="HNSW,IVF_FLAT", help="vector index types searched with filters (comma-separated; '' for none)")
    p.add_argument("--quick", action="store_true", help="20k rows, 5 calls")
    p.add_argument("--seed", type=int, default=16)
    p.add_argument("--out", type=Path)
    p.add_argument("--workdir", type=Path)
    p.add_argument("--reuse", action="store_true", help="measure again on the collection an earlier run left in --workdir")
    p.add_argument("--print-json", type=Path, help="print the report of a JSON written by --out, and exit")
    cfg = p.parse_args()
    if cfg.print_json:
        print(report(json.loads(cfg.print_json.read_text())))
        return 0
    cfg.rows = cfg.rows or (20_000 if cfg.quick else 1_000_000)
    cfg.calls = cfg.calls or (5 if cfg.quick else 15)
    cfg.batch = min(cfg.batch, cfg.rows)
    if cfg.rows % 1000:
        p.error("--rows must be a multiple of 1000 (each code is on exactly rows/1000 rows)")
    work = cfg.workdir or Path(tempfile.mkdtemp(prefix="keeldb-bench-filters-"))
    work.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - t0:7.1f}s] {msg}", file=sys.stderr, flush=True)

    try:
        res = run(cfg, work, log)
    finally:
        if cfg.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    res["config"] = {"rows": cfg.rows, "dim": cfg.dim, "calls": cfg.calls, "ann": cfg.ann, "seed": cfg.seed}
    res["machine"] = machine_info()
    if cfg.out:
        cfg.out.write_text(json.dumps(res, indent=1, default=json_default))
    print(report(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
