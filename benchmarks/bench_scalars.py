"""keeldb vs Milvus Lite on issue 14's scalar types, embedded, same data, same run.

Both systems are driven through the same MilvusClient calls (``keeldb.Client(path)`` and
``pymilvus.MilvusClient("x.db")``, Milvus Lite 3.2.2), each in a fresh child process. One
collection of ``--rows`` rows with an ARRAY<INT64> (0-8 elements), a TIMESTAMPTZ, a
GEOMETRY point, a VARCHAR and a small vector, generated once from ``--seed``; then:

- ``insert_rows_per_s``: the rows inserted in ``--batch``-row calls (row dicts built before
  the timer starts), plus one flush;
- one ``count(*)`` with each filter in FILTERS, median of ``--calls`` calls: ARRAY
  (``array_contains``, ``array_contains_any``, ``array_length``, element access),
  TIMESTAMPTZ (an ISO range, an INTERVAL shift), GEOMETRY (``ST_WITHIN`` a polygon);
  the counts must agree between the systems (``answers_agree``, printed);
- ``partial_update_rows_per_s``: ``upsert(..., partial_update=True)`` of one field for
  ``--partial-rows`` rows.

Milvus Lite's ``ST_DWITHIN`` measures in degrees, not metres as Milvus (and keeldb) do, so
it is left out of the comparison (tests/test_milvus_lite_compare.py records the difference).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import _cli
import _report
import _workers
import numpy as np
from _common import figure

DEFAULT_SEED = 14
SYSTEMS = {"keeldb": "keeldb (embedded)", "milvus-lite": "Milvus Lite (embedded)"}
FILTERS = {
    "array_contains": "array_contains(nums, 7)",
    "array_contains_any": "array_contains_any(nums, [1, 13, 42])",
    "array_length": "array_length(nums) >= 6",
    "array_element": "nums[0] < 10",
    "time_range": 't >= ISO "2025-03-01T00:00:00Z" and t < ISO "2025-04-01T00:00:00+08:00"',
    "time_interval": 't + INTERVAL "P30D" > ISO "2025-06-01T00:00:00Z"',
    "st_within": 'ST_WITHIN(g, "POLYGON((10 10, 40 10, 40 35, 10 35, 10 10))")',
}
FULL = {"rows": 100_000, "batch": 5000, "calls": 20, "partial_rows": 10_000}
QUICK = {"rows": 3000, "batch": 1000, "calls": 3, "partial_rows": 500}
METRICS: dict[str, dict[str, Any]] = {
    "insert_rows_per_s": {"unit": "rows/s", "better": "higher"},
    **{f"filter_{k}_ms": {"unit": "ms", "better": "lower"} for k in FILTERS},
    "partial_update_rows_per_s": {"unit": "rows/s", "better": "higher"},
}


def make_rows(n: int, seed: int) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    lengths = rng.integers(0, 9, n)
    values = rng.integers(0, 50, int(lengths.sum()))
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    seconds = rng.integers(0, 180 * 86400, n) + 1735689600  # 2025-01-01 .. +180 days
    xy = rng.random((n, 2)) * 50
    vec = rng.random((n, 4), dtype=np.float32)
    times = np.datetime_as_string(seconds.astype("datetime64[s]"), unit="s")
    return [
        {"id": i, "v": vec[i].tolist(), "nums": values[offsets[i] : offsets[i + 1]].tolist(),
         "t": f"{times[i]}Z", "g": f"POINT({xy[i, 0]:.4f} {xy[i, 1]:.4f})", "tag": f"t{i % 100}"}
        for i in range(n)
    ]  # fmt: skip


def open_system(key: str, path: Path) -> Any:
    if key == "keeldb":
        import keeldb

        return keeldb.Client(str(path / "keeldb"))
    from pymilvus import MilvusClient

    return MilvusClient(str(path / "lite.db"))


def create(client: Any) -> None:
    from pymilvus import DataType

    s = client.create_schema(enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    s.add_field("nums", DataType.ARRAY, element_type=DataType.INT64, max_capacity=8)
    s.add_field("t", DataType.TIMESTAMPTZ)
    s.add_field("g", DataType.GEOMETRY)
    s.add_field("tag", DataType.VARCHAR, max_length=16)
    ip = client.prepare_index_params()
    ip.add_index("v", "FLAT", metric_type="L2")
    client.create_collection("s", schema=s, index_params=ip)


def measure(key: str, workdir: Path, cfg: dict[str, Any]) -> dict[str, Any]:
    """One system, in its own process: insert, the filters, the partial updates."""
    rows = make_rows(cfg["rows"], cfg["seed"])
    client = open_system(key, workdir)
    create(client)
    _workers.progress(f"{key}: inserting {len(rows):,} rows")
    t0 = time.perf_counter()
    for i in range(0, len(rows), cfg["batch"]):
        client.insert("s", rows[i : i + cfg["batch"]])
    client.flush("s")
    out: dict[str, Any] = {"insert_s": time.perf_counter() - t0, "counts": {}, "filter_ms": {}}
    for name, flt in FILTERS.items():
        times = []
        for _ in range(cfg["calls"]):
            t = time.perf_counter()
            n = client.query("s", flt, output_fields=["count(*)"])[0]["count(*)"]
            times.append((time.perf_counter() - t) * 1000)
        out["counts"][name] = n
        out["filter_ms"][name] = statistics.median(times)
        _workers.progress(f"{key}: {name} {n:,} rows, median {statistics.median(times):.1f} ms")
    updates = [{"id": i, "tag": "upd"} for i in range(cfg["partial_rows"])]
    t0 = time.perf_counter()
    for i in range(0, len(updates), cfg["batch"]):
        client.upsert("s", updates[i : i + cfg["batch"]], partial_update=True)
    out["partial_s"] = time.perf_counter() - t0
    out["partial_check"] = client.query("s", 'tag == "upd"', output_fields=["count(*)"])[0]["count(*)"]
    client.close()
    return out


def worker_main(argv: Sequence[str]) -> int:
    key, workdir, result, cfg = argv[0], Path(argv[1]), Path(argv[2]), json.loads(argv[3])
    return _workers.measure(result, lambda: measure(key, workdir, cfg))


def run_benchmarks(cfg: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> dict:
    params = {"rows": cfg.rows, "batch": cfg.batch, "calls": cfg.calls, "partial_rows": cfg.partial_rows, "seed": cfg.seed}
    systems: dict[str, dict] = {}
    for key in cfg.systems:
        entry, res = _workers.run_system(__file__, key, SYSTEMS[key], workdir, params, cfg.child_timeout, log)
        systems[key] = entry
        if res is None:
            continue
        entry["metrics"]["insert_rows_per_s"] = figure(cfg.rows / res["insert_s"], None, seconds=res["insert_s"])
        for name in FILTERS:
            entry["metrics"][f"filter_{name}_ms"] = figure(res["filter_ms"][name], None, rows=res["counts"][name])
        ok = res["partial_check"] == cfg.partial_rows
        entry["metrics"]["partial_update_rows_per_s"] = figure(
            cfg.partial_rows / res["partial_s"], None if ok else f"{res['partial_check']} rows updated of {cfg.partial_rows}",
            seconds=res["partial_s"],
        )
        entry["counts"] = res["counts"]
    counted = [s["counts"] for s in systems.values() if "counts" in s]
    agree = len(counted) < 2 or all(c == counted[0] for c in counted)
    ratios = _report.finish(systems, METRICS)
    return {
        "config": {**_cli.settings(cfg, "rows", "batch", "calls", "partial_rows", "seed", "systems"), "filters": FILTERS},
        "systems": systems,
        "ratios": ratios,
        "targets": {},
        "answers_agree": agree,
    }


def _fmt(metric: str, value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if metric.endswith("rows_per_s") else f"{value:.1f}"


def print_report(report: dict) -> None:
    console = _report.console(140)
    cfg = report["config"]
    systems = report["systems"]
    names = {
        "insert_rows_per_s": f"insert + flush rows/s ({cfg['rows']:,} rows, batch {cfg['batch']:,})",
        **{f"filter_{k}_ms": f"count(*) where {v} — median ms" for k, v in cfg["filters"].items()},
        "partial_update_rows_per_s": f"partial update rows/s ({cfg['partial_rows']:,} rows, one field)",
    }
    _report.print_comparison(
        console, report, names=names, labels={k: v["label"] for k, v in systems.items()},
        title="keeldb vs Milvus Lite: ARRAY, TIMESTAMPTZ, GEOMETRY, partial update (embedded, same data)",
        caption="ratio > 1 means keeldb is better (throughput: keeldb / Milvus Lite; times: Milvus Lite / keeldb)",
        cell=lambda metric, fig: _fmt(metric, fig["value"]),
        ratio_cell=lambda metric, r: _report.times(r["value"]),
    )  # fmt: skip
    console.print(f"every filter counted the same rows in both systems: {report['answers_agree']}")
    for info in systems.values():
        if "counts" in info:
            console.print(f"  {info['label']} {info.get('version', '')}: {info['counts']}", highlight=False)
    _report.print_machine(console, report["machine"])
    console.print(f"command: {report['command']}")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="keeldb vs Milvus Lite on ARRAY, TIMESTAMPTZ, GEOMETRY and partial update.")
    p.add_argument("--systems", default="keeldb,milvus-lite", help="comma-separated (default both)")
    _cli.add_quick_option(p)
    _cli.add_sizes(p, FULL, {"rows": "rows inserted", "batch": "rows per insert / upsert call",
                             "calls": "timed calls per filter", "partial_rows": "rows partially updated"})  # fmt: skip
    _cli.add_run_options(p, DEFAULT_SEED, "the two databases")
    _cli.add_child_timeout(p, 1800.0)
    a = p.parse_args(argv)
    _cli.fill_defaults(a, QUICK, FULL)
    a.systems = _cli.names(p, "--systems", a.systems, list(SYSTEMS))
    _cli.at_least_one(p, a, ("rows", "batch", "calls", "partial_rows"))
    if a.partial_rows > a.rows:
        p.error("--partial-rows must not exceed --rows")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    return _cli.main(argv, parse_args, "keeldb-bench-scalars-", run_benchmarks, print_report, worker_main=worker_main)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    _cli.run_script(main, worker_main)
