"""Smoke test for ``benchmarks/bench_ann.py``.

The ANN benchmark is run by hand (its full size takes hours), so without this test it would
rot silently as keeldb's index code evolves. It runs the script end to end at toy size --
3,000 x 16-d, 50 queries, every float-vector index kind (Milvus 2.6's quantized ones and
BRUTE_FORCE included), keeldb and raw FAISS, plus Milvus Lite when it is installed -- and
checks what the figures must be whatever the timings: exit code 0; every index type present,
Milvus Lite's extra types too, and the kinds it refuses reported with its message; for every
index and system a sweep with recall@10 in [0, 1] and positive QPS at nq=1 and nq=100, cheap
settings first; the exact FLAT / BRUTE_FORCE rows at recall 1.0; IVF_FLAT's recall never
falling as nprobe grows (it ranks by exact distances, so more lists can only add
candidates); keeldb's and raw FAISS's recall equal at every shared setting of the FAISS-built
kinds (the same index, trained on the same number of rows: on this data the samples are all
rows); the refine / query-bits parameters given to every search; keeldb's memory and disk
figures and FAISS's index file; the peers on the same data; ratios and targets computed from
the figures shown, the best recall of a kind that misses the target; and the report printed
again from the JSON equal to the one printed by the run (the JSON holds what the report
reads). It asserts nothing about speed or about whether a target is met: timings on
CI machines are noise.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from tests.bench_util import bench_env, peer_systems, printed_from_json

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "bench_ann.py"
INDEXES = ("FLAT", "BRUTE_FORCE", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "IVF_RABITQ", "SCANN",
           "HNSW", "HNSW_SQ", "HNSW_PQ", "HNSW_PRQ")  # fmt: skip
MILVUS_LITE_EXTRA = ("AUTOINDEX",)
# Milvus Lite 3.2 builds these; it refuses the others (IVF_PQ "reserved for a future phase",
# the 2.6 quantized kinds "unknown index_type").
MILVUS_LITE_HAS = ("FLAT", "BRUTE_FORCE", "IVF_FLAT", "IVF_SQ8", "HNSW", "HNSW_SQ")
EXACT = ("keeldb", "faiss")  # FLAT is an exact scan in these: recall 1.0
# Search parameters every setting carries beside the swept knob.
FIXED = {
    "IVF_RABITQ": {"refine_k": 4.0, "rbq_query_bits": 4},
    "SCANN": {"reorder_k": 40},
    "HNSW_PQ": {"refine_k": 4.0},
    "HNSW_PRQ": {"refine_k": 4.0},
}
# Graph or lists over coarse codes: a wider search finds candidates closer by the codes,
# not by the true distance, so recall need not grow along the sweep at toy size.
CODES_RANK = ("IVF_PQ", "IVF_RABITQ", "HNSW_PQ", "HNSW_PRQ")
FAISS_QPS_TARGET = 0.8


def _positive(value: object) -> bool:
    return isinstance(value, int | float) and math.isfinite(value) and value > 0


def _check_sweep(where: str, index: str, sweep: list[dict]) -> None:
    assert sweep, f"{where}: empty sweep"
    for point in sweep:
        assert point["error"] is None, f"{where} {point['label']}: {point['error']}"
        assert 0.0 <= point["recall"] <= 1.0, f"{where} {point['label']}: {point['recall']}"
        for mode in ("nq1", "nq100"):
            m = point[mode]
            assert 0.0 <= m["recall"] <= 1.0, f"{where} {point['label']} {mode}: {m}"
            assert _positive(m["qps"]), f"{where} {point['label']} {mode}: qps {m['qps']!r}"
            assert m["queries_timed"] > 0
    knobs = [next(iter(p["params"].values()), 0) for p in sweep]
    assert knobs == sorted(knobs) and len(set(knobs)) == len(knobs), f"{where}: {knobs}"
    recalls = [p["recall"] for p in sweep]
    if index == "IVF_FLAT":
        assert recalls == sorted(recalls), f"{where}: recall fell as nprobe grew: {recalls}"
    if index not in CODES_RANK:
        assert recalls[-1] >= recalls[0], f"{where}: {recalls}"
    for p in sweep:
        rest = {k: v for k, v in p["params"].items() if f"{k}=" not in p["label"]}
        assert rest == FIXED.get(index, {}), f"{where} {p['label']}: {p['params']}"


def _at_target(sweep: list[dict], target: float, mode: str) -> dict | None:
    """The cheapest setting reaching ``target`` (what the report compares), with its QPS."""
    p = next((p for p in sweep if p["recall"] >= target), None)
    return None if p is None else {"label": p["label"], "qps": p[mode]["qps"]}


def test_bench_ann_smoke(tmp_path: Path) -> None:
    pytest.importorskip("faiss")  # raw FAISS is a peer, and computes the exact answers
    systems = ["keeldb", "faiss"] + [s for s in peer_systems() if s != "keeldb"]
    out = tmp_path / "results.json"
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--rows", "3000",
        "--dim", "16",
        "--queries", "50",
        "--min-time", "0",        # one pass over the queries per setting
        "--point-budget", "2",
        "--ef-construction", "40",
        "--pq-nbits", "4",        # 16-centroid sub-quantizers: quick to train on 3,000 rows
        "--memory-searches", "20",
        "--systems", ",".join(systems),
        "--workdir", str(tmp_path / "work"),
        "--out", str(out),
    ]  # fmt: skip
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=300, env=bench_env(), check=False
    )
    assert proc.returncode == 0, f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"

    report = json.loads(out.read_text())
    assert set(report["systems"]) == set(systems)
    milvus_lite = "milvus-lite" in systems
    assert set(report["indexes"]) == set(INDEXES) | (set(MILVUS_LITE_EXTRA) if milvus_lite else set())
    raw = report["config"]["raw_vector_bytes"]
    assert raw == 3000 * 16 * 4
    target = report["config"]["recall_target"]
    for t in INDEXES:
        entry = report["indexes"][t]
        assert not entry["milvus_lite_only"]
        assert set(entry["systems"]) == set(systems), t
        for system in systems:
            s = entry["systems"][system]
            if system in EXACT:
                # The system under development and the reference must both work.
                assert s["status"] == "ok", f"{t} {system}: {s.get('error')}"
            elif s["status"] != "ok":
                # A type Milvus Lite refuses is reported with its reason, not crashed on.
                assert isinstance(s["error"], str) and s["error"], f"{t} {system}: no reason"
                assert t not in MILVUS_LITE_HAS, f"{t} {system}: {s['error']}"
                assert report["summary"]["milvus_lite_refused"][t] == s["error"]
                continue
            _check_sweep(f"{t} {system}", t, s["sweep"])
            assert _positive(s["build"]["build_s"]), f"{t} {system}: {s['build']}"
            if t in ("FLAT", "BRUTE_FORCE") and system in EXACT:
                assert [p["label"] for p in s["sweep"]] == ["exact"]
                assert {s["sweep"][0][m]["recall"] for m in ("nq1", "nq100")} == {1.0}, s["sweep"]
            for mode in ("nq1", "nq100"):
                want = _at_target(s["sweep"], target, mode)
                got = s["at_target"][mode]
                assert (got and {"label": got["label"], "qps": got["qps"]}) == want, (t, system)
            best = max(s["sweep"], key=lambda p: p["recall"])
            assert s["best_recall"]["recall"] == best["recall"], (t, system)
        # Raw FAISS searched the same data: a FLAT index file holds every vector.
        if t in ("FLAT", "BRUTE_FORCE"):
            assert entry["systems"]["faiss"]["index_file_bytes"] >= raw
        assert entry["systems"]["faiss"]["index_file_bytes"] > 0
        # The same index trained on the same rows (all 3,000 here) answers the same: equal
        # recall at every setting both measured. (HNSW adds rows in chunks in keeldb and
        # all at once in FAISS, which may wire the graph differently.)
        if not t.startswith("HNSW"):
            f_recall = {p["label"]: p["recall"] for p in entry["systems"]["faiss"]["sweep"]}
            for p in entry["systems"]["keeldb"]["sweep"]:
                if p["label"] in f_recall:
                    assert p["recall"] == f_recall[p["label"]], (t, p["label"])
        # keeldb and FAISS share settings (same parameters), compared one to one.
        labels = {p["label"] for p in entry["systems"]["faiss"]["sweep"]}
        same = [p for p in entry["systems"]["keeldb"]["sweep"] if p["label"] in labels]
        assert len(entry["same_params"]) == len(same) >= 1, t
        k = entry["systems"]["keeldb"]
        mem, disk = k["memory"], k["disk"]
        assert "error" not in mem, f"{t} keeldb memory: {mem.get('error')}"
        assert _positive(mem["rss_total_bytes"]) and _positive(mem["rss_baseline_bytes"])
        assert isinstance(mem["rss_minus_baseline_bytes"], int)
        assert (t in ("FLAT", "BRUTE_FORCE", "IVF_FLAT", "IVF_SQ8", "IVF_PQ")) == ("target" in mem)
        assert disk["total_bytes"] > 0 and disk["total_bytes_per_million"] > 0
        for mode in ("nq1", "nq100"):
            kb, fb = k["at_target"][mode], entry["systems"]["faiss"]["at_target"][mode]
            ratio = entry["ratios"][f"{mode}_keeldb_over_faiss"]
            assert ratio == (kb["qps"] / fb["qps"] if kb and fb else None), (t, mode)
            met = entry["targets"][f"{mode}_vs_faiss"]["met"]
            assert met == (None if ratio is None else ratio >= FAISS_QPS_TARGET), (t, mode)
    # FLAT reaches recall 1.0 in keeldb and FAISS, so each has a best at the target.
    summary = report["summary"]
    for mode in ("nq1", "nq100"):
        best = {key: summary["best"][key][mode] for key in systems}
        for key in EXACT:
            assert best[key] is not None and best[key]["recall"] >= target, (key, mode)
            assert best[key]["qps"] == max(
                e["systems"][key]["at_target"][mode]["qps"]
                for e in report["indexes"].values()
                if e["systems"].get(key, {}).get("at_target", {}).get(mode)
            ), (key, mode)
        ratio = summary["ratios"][f"{mode}_keeldb_over_faiss"]
        assert ratio == best["keeldb"]["qps"] / best["faiss"]["qps"]
        assert summary["targets"][f"{mode}_vs_faiss"]["met"] == (ratio >= FAISS_QPS_TARGET)
    kinds = summary["nq1_faiss_target_kinds"]
    named = [t for t in INDEXES if t.startswith(("HNSW", "IVF")) or t == "SCANN"]
    assert sorted(kinds["met"] + kinds["not_met"] + kinds["not_measured"]) == sorted(named)
    for t in named:
        met = report["indexes"][t]["targets"]["nq1_vs_faiss"]["met"]
        assert t in kinds[{True: "met", False: "not_met", None: "not_measured"}[met]], t
    if milvus_lite:
        for t in MILVUS_LITE_EXTRA:
            assert report["indexes"][t]["milvus_lite_only"]
            assert set(report["indexes"][t]["systems"]) == {"milvus-lite"}
        load = report["systems"]["milvus-lite"]["load"]
        if load.get("segments"):  # Milvus Lite's internals were visible: the same rows
            assert sum(load["segments"]["rows"]) == 3000, load
    assert report["machine"]["cpu_count"]
    assert "bench_ann.py" in report["command"]
    assert "keeldb" in proc.stdout and "At recall@10 >= 0.95" in proc.stdout  # tables printed
    assert printed_from_json("bench_ann", out) == proc.stdout
