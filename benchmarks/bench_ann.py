#!/usr/bin/env python
"""ANN benchmark: keeldb's embedded search against raw FAISS and Milvus Lite, same run, same data.

For every float-vector index kind keeldb builds -- FLAT, BRUTE_FORCE (Milvus Lite's name for
FLAT), IVF_FLAT, IVF_SQ8, IVF_PQ, IVF_RABITQ, SCANN, HNSW, HNSW_SQ, HNSW_PQ, HNSW_PRQ -- the
script measures, per system:

* build time -- keeldb: ``flush`` + ``wait_for_index`` after the rows are inserted (the
  insert itself is timed and reported separately); raw FAISS: ``train`` + ``add``; Milvus
  Lite: ``create_index`` + ``load_collection`` on the already-flushed rows (that is where it
  builds its per-segment indexes);
* recall@10 against the exact answer, and QPS at nq=1 (single-query calls, one after the
  other) and nq=100 (batches), for every search setting of a sweep (IVF kinds: ``nprobe``;
  HNSW kinds: ``ef``; FLAT has none), cheap first, until a setting reaches the recall
  target; kinds re-ranked by a finer copy search with a fixed ``refine_k`` (SCANN:
  ``reorder_k``) beside the swept knob;
* for keeldb: resident memory in a fresh process after opening the built collection and
  searching it, and the bytes on disk; for raw FAISS: its index file's size; all per million
  vectors and as multiples of the raw vector bytes (rows x dim x 4).

Raw FAISS gets exactly the index keeldb is asked for, written as a FAISS factory string from
the same Milvus parameters (:func:`make_plans`; e.g. IVF_FLAT -> ``IVF{nlist},Flat``, HNSW ->
``HNSW{M}``, HNSW_SQ -> ``HNSW{M}_SQ8``, HNSW_PQ with SQ8 refine ->
``HNSW{M}_PQ{m}x{nbits},Refine(SQ8)``, IVF_RABITQ -> ``IVF{nlist},RaBitQ,Refine(SQ8)``, SCANN
-> ``IVF{nlist},PQ{dim/2}x4fs,RFlat``; HNSW_PRQ, which FAISS's factory cannot spell, is
``IndexHNSW`` over ``PRQ{m}x{nrq}x{nbits}`` as keeldb builds it), ``efConstruction`` set
before ``add``, trained on as many rows as keeldb trains on (IVF kinds ``256 * nlist``, the
graph-over-codes kinds 65,536, at least ``39 * 2^nbits`` with PQ/RQ codebooks; all rows if
fewer) drawn without replacement with a fixed seed (keeldb samples the same number with its
own generator), and searched with the same ``nprobe`` / ``efSearch`` / refine factor /
RaBitQ query bits, set on the index once per setting.

Milvus Lite (``pymilvus.MilvusClient("x.db")``) is loaded once; each index type is then
created, loaded and swept in turn. Its sweep stops at the first setting reaching the recall
target (later settings only cost more); its best QPS among the configurations that reached
the target is what keeldb is compared with. Types it refuses are reported with its message.

The issue's targets are evaluated and shown as met / not met, never asserted:

* keeldb's QPS >= 0.8x raw FAISS's, each at its best setting with recall@10 >= 0.95 (the
  issue names HNSW and the IVFs at nq=1; the report counts how many of those met it);
* keeldb's best QPS at recall@10 >= 0.95 >= 20x Milvus Lite's best at that recall;
* keeldb's resident memory for a FLAT or IVF collection < 1.3x the raw vector bytes.

Data: ``--rows`` [1,000,000] vectors of ``--dim`` [128] float32 drawn around ``--clusters``
[2,000] Gaussian clusters with a fixed seed; each cluster spreads along ``--cluster-rank``
[16] random directions (plus a little isotropic noise), so the data has the low intrinsic
dimension of real embeddings and the clusters overlap enough that IVF needs several probes.
``--queries`` [1,000] held-out vectors from the same distribution are the queries; the exact
top-10 comes from ``faiss.knn``. Everything is saved as ``.npy`` in the work directory and
memory-mapped by every child process.

Every system and index runs in its own child process (this script, hidden ``_worker``
sub-command): Milvus Lite keeps server and index-builder threads in the process that opened
it, a FAISS index of 1M vectors is hundreds of MB, and the memory figure needs a fresh
process anyway. Children print progress lines, which the parent relays.

Usage::

    PYTHONPATH=src python benchmarks/bench_ann.py --workdir /tmp/ann --out ann.json
    PYTHONPATH=src python benchmarks/bench_ann.py --workdir /tmp/ann --reuse   # reuse builds
    PYTHONPATH=src python benchmarks/bench_ann.py --rows 3000 --dim 16 --queries 50
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import math
import os
import re
import shutil
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import _cli
import _report
import numpy as np
from _common import (
    EF_SWEEP,
    NPROBE_SWEEP,
    TOP_K,
    json_default,
    package_version,
    recall_at_k,
    time_calls,
)
from _workers import measure, progress, read_result, run_worker, write_json

COLLECTION = "bench"
BATCH_NQ = 100
DEFAULT_SEED = 20240615

INDEX_TYPES = ("FLAT", "BRUTE_FORCE", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "IVF_RABITQ", "SCANN",
               "HNSW", "HNSW_SQ", "HNSW_PQ", "HNSW_PRQ")  # fmt: skip
MILVUS_LITE_EXTRA_TYPES = ("AUTOINDEX",)  # Milvus Lite only: more chances for it
# The kinds the nq=1 target names ("HNSW and the IVFs"); FLAT is counted apart.
TARGET_KINDS = tuple(t for t in INDEX_TYPES if t.startswith(("HNSW", "IVF")) or t == "SCANN")
SYSTEMS = {"keeldb": "keeldb", "faiss": "raw FAISS", "milvus-lite": "Milvus Lite"}

FAISS_QPS_TARGET = 0.8  # keeldb / raw FAISS, at recall >= target
MILVUS_LITE_QPS_TARGET = 20.0  # keeldb best / Milvus Lite best, at recall >= target
MEMORY_TARGET = 1.3  # resident memory / raw vector bytes, FLAT and IVF_*
MEMORY_TARGET_TYPES = ("FLAT", "BRUTE_FORCE", "IVF_FLAT", "IVF_SQ8", "IVF_PQ")

WARMUP_CALLS = 3
MIN_NQ1_QUERIES = 20  # a budget never cuts an nq=1 measurement below this many queries
MAX_PASSES = 50  # fast settings repeat the query set until --min-time, at most this often
GEN_CHUNK = 8192
CLUSTER_SPREAD = 1.0
CLUSTER_NOISE = 0.05
KEELDB_AUTO_FLUSH_MIN = 4 << 30
MILVUS_LITE_INDEX_CLASSES = {
    "FLAT": "BruteForceIndex",
    "BRUTE_FORCE": "BruteForceIndex",
    "IVF_FLAT": "FaissIvfFlatIndex",
    "IVF_SQ8": "FaissIvfSq8Index",
    "HNSW": "FaissHnswIndex",
    "HNSW_SQ": "FaissHnswSqIndex",
    "AUTOINDEX": "FaissHnswIndex",
}


class BenchmarkError(Exception):
    """A step could not be carried out; the message is shown under the results."""


# --------------------------------------------------------------------------------------
# Index plans: Milvus parameters, the FAISS factory string and the search sweep
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndexPlan:
    index_type: str
    build_params: dict[str, Any]  # Milvus names (nlist, m, nbits, M, efConstruction, refine...)
    faiss_factory: str | None  # None: a type only Milvus Lite is asked to build
    knob: str | None  # the search parameter swept: "nprobe", "ef" or None (FLAT)
    sweep: tuple[int, ...]
    # Search parameters every setting carries beside the knob (refine_k, reorder_k,
    # rbq_query_bits): Milvus's names, given to keeldb and set on raw FAISS alike.
    search_fixed: dict[str, Any] = field(default_factory=dict)

    def settings(self) -> list[dict[str, Any]]:
        if self.knob is None:
            return [dict(self.search_fixed)]
        return [{self.knob: v, **self.search_fixed} for v in self.sweep]

    def setting_label(self, sp: dict[str, Any]) -> str:
        """The swept knob only ("nprobe=4"; "exact" for FLAT): the fixed parameters are the
        same for every setting and shown once, with the index."""
        return "exact" if self.knob is None else f"{self.knob}={sp[self.knob]}"

    def train_rows(self, n: int) -> int | None:
        """How many rows keeldb trains this kind on (``index/faiss_index.py``): 256 per IVF
        list, 65,536 for a graph over codes, at least 39 per PQ / RQ centroid; None for the
        kinds that need no training (FLAT, HNSW)."""
        if self.index_type in ("FLAT", "BRUTE_FORCE", "HNSW"):
            return None
        p = self.build_params
        want = 256 * int(p["nlist"]) if "nlist" in p else 65536
        if "nbits" in p:
            want = max(want, 39 * (1 << int(p["nbits"])))
        return min(n, want)


def label(params: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in params.items()) or "exact"


def default_nlist(rows: int) -> int:
    """The power of two nearest sqrt(rows) (1024 at 1M rows), never more than rows / 39."""
    want = 1 << max(0, round(math.log2(max(1.0, math.sqrt(rows)))))
    return max(1, min(want, rows // 39))


def default_pq_m(dim: int) -> int:
    """The largest divisor of dim up to dim / 4 (4-d sub-vectors): 32 at 128-d."""
    return max(d for d in range(1, max(1, dim // 4) + 1) if dim % d == 0)


def default_prq_m(dim: int) -> int:
    """The largest divisor of dim up to dim / 8 (8-d sub-vectors): 16 at 128-d, so that
    HNSW_PRQ's codes (m x nrq=2 bytes) are as long as HNSW_PQ's (dim / 4 bytes)."""
    return max(d for d in range(1, max(1, dim // 8) + 1) if dim % d == 0)


# Milvus's precision names -> FAISS factory names (HNSW_SQ storage, refine copies)
SQ_FACTORY = {"SQ6": "SQ6", "SQ8": "SQ8", "FP16": "SQfp16", "BF16": "SQbf16"}
REFINE_CHOICES = (*SQ_FACTORY, "FP32")


def refine_factory(refine_type: str) -> str:
    """The factory suffix of the finer copy candidates are re-ranked with (FP32: the raw
    vectors, ``IndexRefineFlat``)."""
    return ",RFlat" if refine_type == "FP32" else f",Refine({SQ_FACTORY[refine_type]})"


def make_plans(cfg: argparse.Namespace) -> dict[str, IndexPlan]:
    nlist, dim = cfg.nlist, cfg.dim
    nprobes = tuple(p for p in NPROBE_SWEEP if p < nlist)
    if nlist <= NPROBE_SWEEP[-1]:
        nprobes += (nlist,)
    efs = tuple(ef for ef in EF_SWEEP if ef >= TOP_K)
    M, nbits = cfg.hnsw_m, cfg.pq_nbits
    hnsw = {"M": M, "efConstruction": cfg.ef_construction}
    pq = {"nlist": nlist, "m": cfg.pq_m, "nbits": nbits}
    refine = {"refine": True, "refine_type": cfg.refine_type}
    rsuffix = refine_factory(cfg.refine_type)
    rk = {"refine_k": cfg.refine_k}
    scann_m = dim // 2 if dim % 2 == 0 else dim  # quantized.SCANN_SUB_DIM: 2-d sub-vectors
    prq = f"PRQ{cfg.prq_m}x{cfg.prq_nrq}x{nbits}"
    plans = [
        IndexPlan("FLAT", {}, "Flat", None, ()),
        IndexPlan("BRUTE_FORCE", {}, "Flat", None, ()),
        IndexPlan("IVF_FLAT", {"nlist": nlist}, f"IVF{nlist},Flat", "nprobe", nprobes),
        IndexPlan("IVF_SQ8", {"nlist": nlist}, f"IVF{nlist},SQ8", "nprobe", nprobes),
        IndexPlan("IVF_PQ", pq, f"IVF{nlist},PQ{cfg.pq_m}x{nbits}", "nprobe", nprobes),
        IndexPlan("IVF_RABITQ", {"nlist": nlist, **refine}, f"IVF{nlist},RaBitQ{rsuffix}",
                  "nprobe", nprobes, {**rk, "rbq_query_bits": cfg.rbq_query_bits}),  # fmt: skip
        IndexPlan("SCANN", {"nlist": nlist, "with_raw_data": True}, f"IVF{nlist},PQ{scann_m}x4fs,RFlat",
                  "nprobe", nprobes, {"reorder_k": round(cfg.refine_k * TOP_K)}),  # fmt: skip
        IndexPlan("HNSW", hnsw, f"HNSW{M}", "ef", efs),
        IndexPlan("HNSW_SQ", {**hnsw, "sq_type": cfg.sq_type}, f"HNSW{M}_{SQ_FACTORY[cfg.sq_type]}",
                  "ef", efs),  # fmt: skip
        IndexPlan("HNSW_PQ", {**hnsw, "m": cfg.pq_m, "nbits": nbits, **refine},
                  f"HNSW{M}_PQ{cfg.pq_m}x{nbits}{rsuffix}", "ef", efs, dict(rk)),  # fmt: skip
        # FAISS's factory cannot spell a graph over PRQ codes: faiss_index() builds it.
        IndexPlan("HNSW_PRQ", {**hnsw, "m": cfg.prq_m, "nrq": cfg.prq_nrq, "nbits": nbits, **refine},
                  f"HNSW{M}_{prq}{rsuffix}", "ef", efs, dict(rk)),  # fmt: skip
        # Milvus Lite's AUTOINDEX is its HNSW with its defaults (M=16, efConstruction=200).
        IndexPlan("AUTOINDEX", {}, None, "ef", efs),
    ]
    return {plan.index_type: plan for plan in plans}


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def data_paths(workdir: Path, cfg: argparse.Namespace) -> dict[str, Path]:
    tag = f"{cfg.rows}x{cfg.dim}-c{cfg.clusters}r{cfg.cluster_rank}-s{cfg.seed}"
    return {
        "vectors": workdir / f"vectors-{tag}.npy",
        "queries": workdir / f"queries{cfg.queries}-{tag}.npy",
        "truth": workdir / f"truth-{cfg.metric}-top{TOP_K}-q{cfg.queries}-{tag}.npy",
    }


def generate_data(paths: dict[str, Path], cfg: argparse.Namespace) -> None:
    """Rows, then queries, from one seeded generator: centre + SPREAD * (z @ basis) + noise,
    with z ~ N(0, I_rank) and a random rank x dim basis per cluster (entries N(0, 1/rank)).
    With rank 0 the clusters are isotropic: centre + SPREAD * N(0, I_dim)."""
    rng = np.random.default_rng(cfg.seed)
    dim, rank = cfg.dim, cfg.cluster_rank
    centres = rng.standard_normal((cfg.clusters, dim), dtype=np.float32)
    bases = None
    if rank:
        bases = rng.standard_normal((cfg.clusters, rank, dim), dtype=np.float32)
        bases /= np.float32(math.sqrt(rank))

    def block(n: int) -> np.ndarray:
        owner = rng.integers(0, cfg.clusters, size=n)
        if bases is None:
            spread = rng.standard_normal((n, dim), dtype=np.float32)
        else:
            z = rng.standard_normal((n, rank), dtype=np.float32)
            spread = np.einsum("nr,nrd->nd", z, bases[owner])
        x = centres[owner] + np.float32(CLUSTER_SPREAD) * spread
        if bases is not None:
            x += np.float32(CLUSTER_NOISE) * rng.standard_normal((n, dim), dtype=np.float32)
        return x.astype(np.float32, copy=False)

    tmp = paths["vectors"].with_name(paths["vectors"].name + ".tmp")
    out = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(cfg.rows, dim))
    for lo in range(0, cfg.rows, GEN_CHUNK):
        hi = min(lo + GEN_CHUNK, cfg.rows)
        out[lo:hi] = block(hi - lo)
    out.flush()
    del out
    os.replace(tmp, paths["vectors"])
    queries = np.concatenate([block(min(GEN_CHUNK, cfg.queries - lo))
                              for lo in range(0, cfg.queries, GEN_CHUNK)])  # fmt: skip
    _save_npy(paths["queries"], queries)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.npy")
    np.save(tmp, arr)
    os.replace(tmp, path)


def normalized(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return (x / np.maximum(norms, np.float32(1e-30))).astype(np.float32)


def faiss_metric(metric: str) -> int:
    import faiss

    return int(faiss.METRIC_L2 if metric == "L2" else faiss.METRIC_INNER_PRODUCT)


def exact_truth(vectors: np.ndarray, queries: np.ndarray, metric: str) -> tuple[np.ndarray, str]:
    """Exact top-k ids (row numbers = primary keys). COSINE = inner product of unit vectors."""
    import faiss

    k = min(TOP_K, len(vectors))
    if metric == "COSINE":
        vectors, queries = normalized(np.asarray(vectors)), normalized(queries)
    _, ids = faiss.knn(queries, vectors, k, metric=faiss_metric(metric))
    return ids.astype(np.int64), f"faiss {faiss.__version__} knn (exact), metric {metric}"


# --------------------------------------------------------------------------------------
# Timing one search setting
# --------------------------------------------------------------------------------------


def measure_point(
    search: Callable[[np.ndarray], Any],
    to_ids: Callable[[Any], np.ndarray],
    queries: np.ndarray,
    truth: np.ndarray,
    nq: int,
    budget_s: float,
    min_s: float,
) -> dict[str, Any]:
    """Run the queries in calls of ``nq``; only the call is timed (turning a result into an
    id array happens after the timer). The query set is repeated until ``min_s`` seconds of
    calls were timed (at most MAX_PASSES times), and the loop stops after ``budget_s`` once
    a minimum was done. QPS = queries answered / summed call time; recall@10 is computed on
    the first pass (all queries unless the budget cut it)."""
    batches = [queries[lo : lo + nq] for lo in range(0, len(queries), nq)]
    for b in batches[: WARMUP_CALLS if nq == 1 else 1]:
        search(b)
    minimum = MIN_NQ1_QUERIES if nq == 1 else len(batches[0])
    t = time_calls(
        search, batches, min_s=min_s, budget_s=budget_s, min_queries=minimum, max_passes=MAX_PASSES, keep=to_ids
    )
    lat, first, answered, passes = t.latencies, t.first, t.answered, t.passes
    got = np.concatenate(first)
    total = float(sum(lat))
    out: dict[str, Any] = {
        "nq": nq,
        "qps": answered / total if total > 0 else None,
        "recall": recall_at_k(got, truth[: len(got)]),
        "recall_queries": len(got),
        "queries_timed": answered,
        "calls": len(lat),
        "complete_passes": passes,
        "cut_by_budget": passes == 0,
    }
    if nq == 1:
        ms = np.asarray(lat) * 1e3
        out["p50_ms"] = float(np.median(ms))
        out["p99_ms"] = float(np.percentile(ms, 99))
    return out


def run_sweep(
    plan: IndexPlan,
    make_search: Callable[[dict[str, int]], Callable[[np.ndarray], Any]],
    to_ids: Callable[[Any], np.ndarray],
    queries: np.ndarray,
    truth: np.ndarray,
    job: dict[str, Any],
    stop_at: float,
    who: str,
) -> list[dict[str, Any]]:
    """Every setting of ``plan``'s sweep, cheap first, at nq=1 and nq=100, until one reaches
    ``stop_at`` recall. An error ends the sweep and is recorded on the point."""
    threads = os.environ.get("KEELDB_BENCH_SEARCH_THREADS")
    if threads:
        import faiss

        faiss.omp_set_num_threads(int(threads))
    points: list[dict[str, Any]] = []
    for sp in plan.settings():
        point: dict[str, Any] = {"params": sp, "label": plan.setting_label(sp), "error": None}
        points.append(point)
        try:
            search = make_search(sp)
            nq_batch = min(BATCH_NQ, len(queries))
            point["nq1"] = measure_point(
                search, to_ids, queries, truth, 1, job["point_budget"], job["min_time"]
            )
            point["nq100"] = measure_point(
                search, to_ids, queries, truth, nq_batch, job["point_budget"], job["min_time"]
            )
        except Exception as exc:  # noqa: BLE001 - recorded, the sweep stops here
            point["error"] = f"{type(exc).__name__}: {exc}"
            progress(f"{who} {plan.index_type} {point['label']}: {point['error'][:300]}")
            break
        # The recall of the run that answered more queries (normally the batched one).
        best = max((point["nq1"], point["nq100"]), key=lambda m: m["recall_queries"])
        point["recall"] = best["recall"]
        point["recall_queries"] = best["recall_queries"]
        progress(
            f"{who} {plan.index_type} {point['label']:<11} recall@10 {point['recall']:.3f}  "
            f"QPS nq=1 {_num(point['nq1']['qps'])}  nq={point['nq100']['nq']} "
            f"{_num(point['nq100']['qps'])}"
        )
        if point["recall"] >= stop_at:
            break
    return points


# --------------------------------------------------------------------------------------
# Child-process helpers
# --------------------------------------------------------------------------------------


def proc_status() -> dict[str, int]:
    """Memory lines of /proc/self/status, in bytes."""
    keys = ("VmRSS", "RssAnon", "RssFile", "RssShmem", "VmHWM")
    out: dict[str, int] = {}
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in keys:
                out[key] = int(rest.split()[0]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return out


def jsonable(obj: Any) -> Any:
    """Whatever an API returned, in a form json.dumps accepts."""
    try:
        return json.loads(json.dumps(obj, default=json_default))
    except (TypeError, ValueError):
        return repr(obj)


def _read_meta(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """A build recorded by an earlier run with the same settings, or None."""
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return meta if meta.get("fingerprint") == fingerprint else None


def hits_to_ids(res: Any) -> np.ndarray:
    """MilvusClient-style search results -> (nq, k) id array, -1 where fewer hits came back."""
    out = np.full((len(res), TOP_K), -1, dtype=np.int64)
    for i, hits in enumerate(res):
        for j, hit in enumerate(list(hits)[:TOP_K]):
            out[i, j] = int(hit["id"])
    return out


def client_search(client: Any, metric: str, sp: dict[str, int]) -> Callable[[np.ndarray], Any]:
    """The very same call for keeldb and Milvus Lite. ``output_fields=["id"]`` because Milvus
    Lite 3.2 returns every field, the vector included, when it is omitted."""
    search_params = {"metric_type": metric, "params": dict(sp)}

    def run(q: np.ndarray) -> Any:
        return client.search(
            COLLECTION, data=q, limit=TOP_K, search_params=search_params, output_fields=["id"]
        )

    return run


def client_sweep(
    client: Any, plan: IndexPlan, job: dict, stop_at: float, who: str
) -> list[dict[str, Any]]:
    """:func:`run_sweep` through a MilvusClient-style ``search`` (keeldb and Milvus Lite)."""
    queries, truth = np.load(job["queries"]), np.load(job["truth"])
    return run_sweep(
        plan, lambda sp: client_search(client, job["metric"], sp), hits_to_ids,
        queries, truth, job, stop_at, who,
    )  # fmt: skip


def _keeldb_auto_flush(rows: int, dim: int) -> int:
    """Large enough that the whole data set is flushed once, as one segment."""
    return max(KEELDB_AUTO_FLUSH_MIN, 2 * rows * dim * 4 + (64 << 20))


# --------------------------------------------------------------------------------------
# keeldb
# --------------------------------------------------------------------------------------


def keeldb_build(client: Any, plan: IndexPlan, vectors: np.ndarray, job: dict) -> dict:
    """Create the collection with its index, insert column-wise in chunks, then time
    flush + wait_for_index: one flush of all rows = one segment, whose index is built."""
    from keeldb import DataType

    n, dim = vectors.shape
    schema = client.create_schema(auto_id=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    ip = client.prepare_index_params()
    ip.add_index(
        field_name="vector",
        index_type=plan.index_type,
        metric_type=job["metric"],
        params=dict(plan.build_params),
    )
    client.create_collection(COLLECTION, schema=schema, index_params=ip)
    insert_s = 0.0
    for lo in range(0, n, job["chunk"]):
        hi = min(lo + job["chunk"], n)
        cols = {"id": np.arange(lo, hi, dtype=np.int64), "vector": np.array(vectors[lo:hi])}
        t0 = time.perf_counter()
        client.insert_columns(COLLECTION, cols, hi - lo)
        insert_s += time.perf_counter() - t0
    progress(f"keeldb {plan.index_type}: inserted {n:,} rows in {insert_s:.1f}s; flushing")
    t0 = time.perf_counter()
    client.flush(COLLECTION)
    t1 = time.perf_counter()
    wait = getattr(client, "wait_for_index", None)
    info = wait(COLLECTION, timeout=job["timeout"]) if callable(wait) else None
    t2 = time.perf_counter()
    return {
        "build_s": t2 - t0,
        "flush_s": t1 - t0,
        "wait_for_index_s": t2 - t1 if callable(wait) else None,
        "wait_for_index": jsonable(info),
        "has_wait_for_index": callable(wait),
        "insert_s": insert_s,
        "insert_rows_per_s": n / insert_s if insert_s else None,
        "timed_as": "flush + wait_for_index (insert timed separately)",
    }


def keeldb_job(job: dict) -> dict:
    import keeldb

    plan = IndexPlan(**job["plan"])
    path, meta_path = Path(job["path"]), Path(job["meta"])
    vectors = np.load(job["vectors"], mmap_mode="r")
    auto_flush = _keeldb_auto_flush(*vectors.shape)
    meta = _read_meta(meta_path, job["fingerprint"]) if job["reuse"] and path.exists() else None
    if meta is None:
        shutil.rmtree(path, ignore_errors=True)
        meta_path.unlink(missing_ok=True)
        client = keeldb.Client(str(path), auto_flush_bytes=auto_flush)
        build = keeldb_build(client, plan, vectors, job)
        write_json(meta_path, {"fingerprint": job["fingerprint"], "build": build})
    else:
        build = {**meta["build"], "reused": True}
        progress(f"keeldb {plan.index_type}: reusing the build in {path}")
        client = keeldb.Client(str(path), auto_flush_bytes=auto_flush)
    progress(f"keeldb {plan.index_type}: build {build['build_s']:.1f}s; sweeping")
    try:
        client.load_collection(COLLECTION)
        wait = getattr(client, "wait_for_index", None)
        if callable(wait):  # a reopened collection must not be mid-build while searched
            wait(COLLECTION, timeout=job["timeout"])
        described = jsonable(client.describe_index(COLLECTION, "vector"))
        sweep = client_sweep(client, plan, job, job["stop_recall"], "keeldb")
    finally:
        client.close()
    return {
        "build": build,
        "describe_index": described,
        "sweep": sweep,
        "rss_end": proc_status(),
    }


def keeldb_memory_job(job: dict) -> dict:
    """Resident memory of a fresh process that opens the built collection and searches it.
    The baseline is taken after importing everything a search needs, so the difference is
    what the collection itself costs."""
    import faiss  # noqa: F401 - part of the baseline, as keeldb's indexes need it
    import pyarrow  # noqa: F401 - keeldb's storage layer, part of the baseline

    import keeldb

    queries = np.load(job["queries"])
    gc.collect()
    before = proc_status()
    t0 = time.perf_counter()
    client = keeldb.Client(job["path"], auto_flush_bytes=job["auto_flush"])
    try:
        client.load_collection(COLLECTION)
        wait = getattr(client, "wait_for_index", None)
        if callable(wait):
            wait(COLLECTION, timeout=job["timeout"])
        open_s = time.perf_counter() - t0
        after_open = proc_status()
        search = client_search(client, job["metric"], job["search_params"])
        n = job["searches"]
        t0 = time.perf_counter()
        for i in range(n):
            search(queries[i % len(queries) : i % len(queries) + 1])
        search(queries[: min(BATCH_NQ, len(queries))])
        search_s = time.perf_counter() - t0
        gc.collect()
        after = proc_status()
    finally:
        client.close()
    return {
        "before": before,
        "after_open": after_open,
        "after": after,
        "open_s": open_s,
        "searches": n + 1,
        "search_s": search_s,
        "search_params": job["search_params"],
    }


# --------------------------------------------------------------------------------------
# raw FAISS
# --------------------------------------------------------------------------------------


def training_rows(n: int, want: int, seed: int) -> np.ndarray | None:
    """``want`` rows without replacement (fixed seed), or None for all rows."""
    if want >= n:
        return None
    return np.sort(np.random.default_rng(seed).choice(n, size=want, replace=False))


_HNSW_OVER = re.compile(r"HNSW(\d+)_(PRQ[^,]*)(,.*)?$")


def faiss_index(plan: IndexPlan, dim: int, metric: int) -> Any:
    """The empty index of ``plan.faiss_factory``, ``efConstruction`` set on its graph.
    ``HNSW{M}_PRQ...``, which the factory cannot parse, is built as keeldb builds it: an
    ``IndexHNSW`` over the factory's PRQ storage, whose residual codebooks train with plain
    k-means (``Train_default``, as ``index/quantized.py`` sets: FAISS's default grows the
    codebooks' dimension step by step, ~12x slower), then the refine suffix if any."""
    import faiss

    assert plan.faiss_factory is not None
    over = _HNSW_OVER.match(plan.faiss_factory)
    if over is None:
        index = faiss.index_factory(dim, plan.faiss_factory, metric)
    else:
        storage = faiss.index_factory(dim, over[2], metric)
        for i in range(storage.prq.nsplits):
            rq = faiss.downcast_Quantizer(storage.prq.subquantizer(i))
            rq.train_type = faiss.ResidualQuantizer.Train_default
        index = faiss.IndexHNSW(storage, int(over[1]))
        suffix = over[3] or ""
        if suffix == ",RFlat":
            index = faiss.IndexRefineFlat(index)
        elif suffix:
            copy = re.fullmatch(r",Refine\((\w+)\)", suffix)
            assert copy is not None, plan.faiss_factory
            index = faiss.IndexRefine(index, faiss.index_factory(dim, copy[1], metric))
    graph = faiss_core(index)
    if isinstance(graph, faiss.IndexHNSW):
        graph.hnsw.efConstruction = int(plan.build_params["efConstruction"])
    return index


def faiss_core(index: Any) -> Any:
    """The graph or the lists under a refine wrapper, or the index itself."""
    import faiss

    return faiss.downcast_index(index.base_index) if isinstance(index, faiss.IndexRefine) else index


def faiss_set_knob(index: Any, plan: IndexPlan, sp: dict[str, Any]) -> None:
    """Set a setting's search parameters on the index, as keeldb passes them per call:
    nprobe / efSearch on the lists / graph; the refine wrapper's candidate factor
    (``refine_k``, or SCANN's ``reorder_k`` / k; 1 when not given); RaBitQ's query bits
    (``rbq_query_bits``, 0 = float queries when not given, FAISS's own default being 4)."""
    import faiss

    core = faiss_core(index)
    if isinstance(index, faiss.IndexRefine):
        reorder = sp.get("reorder_k")
        index.k_factor = float(reorder / TOP_K if reorder is not None else sp.get("refine_k", 1.0))
    if isinstance(core, faiss.IndexIVFRaBitQ):
        core.qb = int(sp.get("rbq_query_bits", 0))
    if plan.knob == "nprobe":
        faiss.extract_index_ivf(core).nprobe = int(sp["nprobe"])
    elif plan.knob == "ef":
        core.hnsw.efSearch = int(sp["ef"])


def faiss_job(job: dict) -> dict:
    import faiss

    plan = IndexPlan(**job["plan"])
    assert plan.faiss_factory is not None
    path, meta_path = Path(job["path"]), Path(job["meta"])
    metric = job["metric"]
    vectors = np.load(job["vectors"], mmap_mode="r")
    queries, truth = np.load(job["queries"]), np.load(job["truth"])
    if metric == "COSINE":  # FAISS has no cosine: unit vectors and inner product
        queries = normalized(queries)
    meta = _read_meta(meta_path, job["fingerprint"]) if job["reuse"] and path.exists() else None
    if meta is None:
        path.unlink(missing_ok=True)
        meta_path.unlink(missing_ok=True)
        x = normalized(np.asarray(vectors)) if metric == "COSINE" else np.array(vectors)
        index = faiss_index(plan, x.shape[1], faiss_metric(metric))
        t0 = time.perf_counter()
        train_rows = None
        want = plan.train_rows(len(x))
        if want is not None:
            sample = training_rows(len(x), want, job["seed"])
            xt = x if sample is None else np.ascontiguousarray(x[sample])
            train_rows = len(xt)
            index.train(xt)
            del xt
        t1 = time.perf_counter()
        index.add(x)
        t2 = time.perf_counter()
        del x
        build = {
            "build_s": t2 - t0,
            "train_s": t1 - t0,
            "add_s": t2 - t1,
            "train_rows": train_rows,
            "timed_as": "train (incl. drawing the sample) + add",
        }
        faiss.write_index(index, str(path))
        write_json(meta_path, {"fingerprint": job["fingerprint"], "build": build})
    else:
        build = {**meta["build"], "reused": True}
        progress(f"faiss {plan.index_type}: reusing {path}")
        index = faiss.read_index(str(path))
    progress(f"faiss {plan.index_type}: build {build['build_s']:.1f}s; sweeping")

    def make_search(sp: dict[str, int]) -> Callable[[np.ndarray], Any]:
        faiss_set_knob(index, plan, sp)
        return lambda q: index.search(q, TOP_K)[1]

    sweep = run_sweep(
        plan, make_search, lambda ids: ids, queries, truth, job, job["stop_recall"], "faiss"
    )
    return {
        "build": build,
        "factory": plan.faiss_factory,
        "omp_threads": faiss.omp_get_max_threads(),
        "index_file_bytes": path.stat().st_size,
        "sweep": sweep,
        "rss_end": proc_status(),
    }


# --------------------------------------------------------------------------------------
# Milvus Lite
# --------------------------------------------------------------------------------------


class _ErrorLog(logging.Handler):
    """Keeps Milvus Lite's logged errors: its background index builds fail only in its log."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            text += f" ({type(exc).__name__}: {exc})"
        self.messages.append(text)


def _milvus_lite_collection(path: str) -> Any:
    """Milvus Lite's in-process Collection object, for what its API does not tell: whether
    background work is finished and which index each segment really holds. None if its
    internals moved (then those checks are skipped and the report says so)."""
    try:
        from milvus_lite.server_manager import server_manager_instance

        _, db, _ = server_manager_instance._servers[os.path.abspath(path)]
        return db.get_collection(COLLECTION)
    except Exception:  # noqa: BLE001 - best effort
        return None


def _milvus_lite_drain(col: Any, timeout: float) -> float | None:
    if col is None or not hasattr(col, "_wait_for_bg"):
        return None
    t0 = time.perf_counter()
    col._wait_for_bg(timeout)
    return time.perf_counter() - t0


def _milvus_lite_segments(col: Any) -> dict[str, Any] | None:
    """Per segment: rows and the class of its vector index (with its nlist / M if FAISS)."""
    if col is None:
        return None
    try:
        segs = [s for s in col._segments_snapshot() if s.num_rows]
    except Exception:  # noqa: BLE001
        return None
    classes: Counter[str] = Counter()
    params: dict[str, set[int]] = {}
    for s in segs:
        idx = getattr(s, "indexes", {}).get("vector")
        classes[type(idx).__name__ if idx is not None else "none"] += 1
        inner = getattr(idx, "_index", None)
        if inner is not None and hasattr(inner, "nlist"):
            params.setdefault("nlist", set()).add(int(inner.nlist))
        if inner is not None and hasattr(inner, "hnsw"):
            params.setdefault("M", set()).add(int(inner.hnsw.nb_neighbors(1)))
            params.setdefault("efConstruction", set()).add(int(inner.hnsw.efConstruction))
    return {
        "segments": len(segs),
        "rows": [int(s.num_rows) for s in segs],
        "index_classes": dict(classes),
        "faiss_params": {k: sorted(v) for k, v in params.items()},
    }


def milvus_lite_load(client: Any, vectors: np.ndarray, job: dict) -> dict:
    from pymilvus import DataType, MilvusClient

    n, dim = vectors.shape
    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=dim)
    client.create_collection(COLLECTION, schema=schema)
    col = _milvus_lite_collection(job["path"])
    insert_s = 0.0
    for lo in range(0, n, job["batch"]):
        hi = min(lo + job["batch"], n)
        rows = [
            {"id": i, "vector": v}
            for i, v in zip(range(lo, hi), vectors[lo:hi].tolist(), strict=True)
        ]
        t0 = time.perf_counter()
        client.insert(COLLECTION, rows)
        insert_s += time.perf_counter() - t0
        if (lo // job["batch"]) % 20 == 19:
            progress(f"milvus-lite: inserted {hi:,} / {n:,} rows ({insert_s:.0f}s)")
    t0 = time.perf_counter()
    client.flush(COLLECTION)
    flush_s = time.perf_counter() - t0
    drain_s = _milvus_lite_drain(col, job["timeout"])
    return {
        "insert_s": insert_s,
        "insert_rows_per_s": n / insert_s if insert_s else None,
        "flush_s": flush_s,
        "background_drain_s": drain_s,
        "batch": job["batch"],
    }


def milvus_lite_set_index(client: Any, plan: IndexPlan, metric: str, col: Any, job: dict) -> dict:
    """Release, drop the previous index, create this one, load (Milvus Lite builds every
    segment's index inside load_collection). Build parameters are passed under a nested
    ``params`` key: pymilvus 3 sends ``add_index(params=...)`` as flat key/value pairs, which
    Milvus Lite 3.2 ignores (it reads only a JSON ``params`` key); nested, they arrive."""
    client.release_collection(COLLECTION)
    for name in client.list_indexes(COLLECTION):
        client.drop_index(COLLECTION, name)
    ip = client.prepare_index_params()
    params = {"params": dict(plan.build_params)} if plan.build_params else {}
    ip.add_index(field_name="vector", index_type=plan.index_type, metric_type=metric, params=params)
    t0 = time.perf_counter()
    client.create_index(COLLECTION, ip)
    t1 = time.perf_counter()
    client.load_collection(COLLECTION)
    t2 = time.perf_counter()
    drain_s = _milvus_lite_drain(col, job["timeout"])
    return {
        "build_s": t2 - t0,
        "create_index_s": t1 - t0,
        "load_s": t2 - t1,
        "background_drain_s_excluded": drain_s,
        "timed_as": "create_index + load_collection (rows already inserted and flushed)",
    }


def milvus_lite_job(job: dict) -> dict:
    import milvus_lite
    import pymilvus
    from pymilvus import MilvusClient

    errors = _ErrorLog()
    logging.getLogger().addHandler(errors)
    path, meta_path = job["path"], Path(job["meta"])
    vectors = np.load(job["vectors"], mmap_mode="r")
    meta = (
        _read_meta(meta_path, job["fingerprint"]) if job["reuse"] and Path(path).exists() else None
    )
    if meta is None:
        shutil.rmtree(path, ignore_errors=True)
        meta_path.unlink(missing_ok=True)
    client = MilvusClient(path)
    if meta is None:
        progress(f"milvus-lite: inserting {len(vectors):,} rows in batches of {job['batch']:,}")
        load = milvus_lite_load(client, vectors, job)
        write_json(meta_path, {"fingerprint": job["fingerprint"], "load": load})
    else:
        load = {**meta["load"], "reused": True}
        progress(f"milvus-lite: reusing the rows in {path}")
    col = _milvus_lite_collection(path)
    load["segments"] = _milvus_lite_segments(col)
    results: dict[str, Any] = {}
    for d in job["plans"]:
        plan = IndexPlan(**d)
        entry: dict[str, Any] = {"status": "ok", "error": None, "sweep": []}
        results[plan.index_type] = entry
        seen = len(errors.messages)
        progress(f"milvus-lite {plan.index_type}: create_index + load_collection")
        try:
            entry["build"] = milvus_lite_set_index(client, plan, job["metric"], col, job)
            entry["describe_index"] = jsonable(client.describe_index(COLLECTION, "vector"))
        except Exception as exc:  # noqa: BLE001 - a type it refuses is a finding
            entry["status"] = "refused"
            entry["error"] = f"{type(exc).__name__}: {exc}"
            entry["logged_errors"] = errors.messages[seen:][-5:]
            progress(f"milvus-lite {plan.index_type}: refused ({entry['error'][:200]})")
            continue
        segs = _milvus_lite_segments(col)
        entry["segments"] = segs
        if segs is not None:
            want = MILVUS_LITE_INDEX_CLASSES.get(plan.index_type)
            if set(segs["index_classes"]) != {want}:
                entry["status"] = "refused"
                entry["error"] = (
                    f"after load_collection the segments hold {segs['index_classes']}, not "
                    f"{want}: it would search without the index"
                )
                entry["logged_errors"] = errors.messages[seen:][-5:]
                progress(f"milvus-lite {plan.index_type}: {entry['error']}")
                continue
        progress(f"milvus-lite {plan.index_type}: build {entry['build']['build_s']:.1f}s; sweeping")
        entry["sweep"] = client_sweep(client, plan, job, job["recall_target"], "milvus-lite")
        entry["rss_after"] = proc_status()
    client.close()
    return {
        "version": f"milvus-lite {package_version('milvus-lite', milvus_lite)}, "
        f"pymilvus {pymilvus.__version__}",
        "load": load,
        "indexes": results,
        "internals_visible": col is not None,
    }


# --------------------------------------------------------------------------------------
# Worker entry point
# --------------------------------------------------------------------------------------

JOBS: dict[str, Callable[[dict], dict]] = {
    "keeldb": keeldb_job,
    "keeldb-memory": keeldb_memory_job,
    "faiss": faiss_job,
    "milvus-lite": milvus_lite_job,
}


def worker_main(argv: Sequence[str]) -> int:
    """Hidden sub-command: ``_worker JOB.json RESULT.json``."""
    job_path, result_path = Path(argv[0]), Path(argv[1])
    job = json.loads(job_path.read_text())
    return measure(result_path, lambda: JOBS[job["task"]](job))


# --------------------------------------------------------------------------------------
# Parent side
# --------------------------------------------------------------------------------------


class Runner:
    """Runs one job per child process; relays its progress lines while it runs."""

    def __init__(
        self, workdir: Path, timeout: float, log: Callable[[str], None], omp_threads: int | None
    ) -> None:
        self.workdir = workdir
        self.timeout = timeout
        self.log = log
        self.env = dict(os.environ)
        if omp_threads:
            # Applied by each child before it searches (run_sweep), not at start: builds keep
            # every core, or single-threaded HNSW builds at 1M rows would take most of an hour.
            self.env["KEELDB_BENCH_SEARCH_THREADS"] = str(omp_threads)

    def run(self, tag: str, job: dict) -> dict:
        job_path = self.workdir / f"{tag}.job.json"
        result_path = self.workdir / f"{tag}.result.json"
        log_path = self.workdir / f"{tag}.stderr.log"
        result_path.unlink(missing_ok=True)
        write_json(job_path, {**job, "timeout": self.timeout})
        rc, wall = run_worker(__file__, [str(job_path), str(result_path)], log_path,
                              self.timeout, env=self.env, relay=self.log)  # fmt: skip
        out = read_result(result_path)
        if out is None:
            tail = log_path.read_text(errors="replace").strip().splitlines()[-1:] or ["no output"]
            why = f"timed out after {self.timeout:.0f}s" if rc is None else f"exit code {rc}"
            out = {"ok": False, "error": f"child {why} ({tail[0][:300]})"}
        out["process_wall_s"] = wall
        out["log"] = str(log_path)
        return out


def dir_usage(path: Path) -> dict[str, Any]:
    """Bytes under a keeldb directory: total (apparent and allocated), index files (names
    starting with ``idx-``), segment files (``seg-``), and logs (under a ``wal`` directory)."""
    total = alloc = idx = seg = wal = 0
    files = 0
    for root, _dirs, names in os.walk(path):
        for name in names:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            files += 1
            total += st.st_size
            alloc += st.st_blocks * 512
            if name.startswith("idx-"):
                idx += st.st_size
            elif name.startswith("seg-"):
                seg += st.st_size
            if "wal" in Path(root).relative_to(path).parts:
                wal += st.st_size
    return {
        "files": files,
        "total_bytes": total,
        "allocated_bytes": alloc,
        "index_bytes": idx,
        "segment_bytes": seg,
        "wal_bytes": wal,
    }


def best_at(points: list[dict], target: float, mode: str) -> dict | None:
    """The smallest setting (the first of the sweep, which runs cheap first) whose recall@10
    reached ``target``, with its QPS at nq mode ``mode``. Not the fastest qualifying one:
    that would let timing noise pick a costlier setting."""
    p = next((p for p in points if not p.get("error") and p.get("recall", 0) >= target), None)
    if p is None or not p[mode]["qps"]:
        return None
    return {
        "params": p["params"],
        "label": p["label"],
        "recall": p["recall"],
        "qps": p[mode]["qps"],
    }


def best_recall(points: list[dict]) -> dict | None:
    """The most accurate setting the sweep measured (what a kind that never reached the
    target got to), or None."""
    good = [p for p in points if not p.get("error")]
    if not good:
        return None
    p = max(good, key=lambda p: p["recall"])
    return {"params": p["params"], "label": p["label"], "recall": p["recall"]}


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


# keeldb's QPS over a peer's, each at its best setting reaching the recall target.
QPS_TARGETS = {
    "faiss": (FAISS_QPS_TARGET, f">= {FAISS_QPS_TARGET}x FAISS"),
    "milvus-lite": (MILVUS_LITE_QPS_TARGET, f">= {MILVUS_LITE_QPS_TARGET:g}x Milvus Lite"),
}


def compare_best(
    best: Callable[[str], dict | None],
    mode: str,
    present: Sequence[str] | dict[str, Any],
    targeted: Sequence[str],
    ratios: dict[str, float | None],
    targets: dict[str, dict],
) -> None:
    """keeldb's best QPS over each peer's (``best(system)``, at nq mode ``mode``) into
    ``ratios``, and the targets against the ``targeted`` peers where both systems ran."""
    k = best("keeldb")
    for peer, (goal, text) in QPS_TARGETS.items():
        p = best(peer)
        r = _ratio(k and k["qps"], p and p["qps"])
        name = peer.replace("-", "_")
        ratios[f"{mode}_keeldb_over_{name}"] = r
        if peer in targeted and "keeldb" in present and peer in present:
            targets[f"{mode}_vs_{name}"] = _report.target(text, r, goal)


def compare_index(entry: dict, target: float) -> None:
    """Fill in an index entry's side-by-side figures, ratios and targets."""
    systems = entry["systems"]

    def sweep(key: str) -> list[dict]:
        s = systems.get(key)
        return s["sweep"] if s and s.get("status") == "ok" else []

    k, f = sweep("keeldb"), sweep("faiss")
    for key in systems:
        s = systems[key]
        if s.get("status") == "ok":
            s["at_target"] = {mode: best_at(s["sweep"], target, mode) for mode in ("nq1", "nq100")}
            s["best_recall"] = best_recall(s["sweep"])
    f_by_label = {p["label"]: p for p in f if not p.get("error")}
    same = []
    for p in k:
        q = f_by_label.get(p["label"])
        if p.get("error") or q is None:
            continue
        same.append({
            "params": p["params"],
            "keeldb_recall": p["recall"],
            "faiss_recall": q["recall"],
            "nq1_keeldb_over_faiss": _ratio(p["nq1"]["qps"], q["nq1"]["qps"]),
            "nq100_keeldb_over_faiss": _ratio(p["nq100"]["qps"], q["nq100"]["qps"]),
        })  # fmt: skip
    entry["same_params"] = same
    ratios: dict[str, float | None] = {}
    targets: dict[str, dict] = {}
    for mode in ("nq1", "nq100"):
        compare_best(lambda key, mode=mode: best_at(sweep(key), target, mode), mode, systems,
                     ("faiss",), ratios, targets)  # fmt: skip
    entry["ratios"] = ratios
    entry["targets"] = targets


def memory_figures(mem: dict, raw_bytes: int, index_type: str) -> dict:
    before, after = mem["before"], mem["after"]
    total = after.get("VmRSS")
    delta = total - before["VmRSS"] if total is not None and "VmRSS" in before else None
    out = {
        "rss_total_bytes": total,
        "rss_baseline_bytes": before.get("VmRSS"),
        "rss_minus_baseline_bytes": delta,
        "rss_anon_minus_baseline_bytes": _diff(after, before, "RssAnon"),
        "rss_file_minus_baseline_bytes": _diff(after, before, "RssFile"),
        "peak_rss_bytes": after.get("VmHWM"),
        "peak_minus_baseline_bytes": _diff(after, before, "VmHWM"),
        "rss_minus_baseline_over_raw": delta / raw_bytes if delta is not None else None,
        "rss_total_over_raw": total / raw_bytes if total is not None else None,
        "raw_vector_bytes": raw_bytes,
        "open_s": mem["open_s"],
        "searches": mem["searches"],
        "search_params": mem["search_params"],
        "status_before": before,
        "status_after_open": mem["after_open"],
        "status_after": after,
    }
    if index_type in MEMORY_TARGET_TYPES:
        out["target"] = _report.target(
            f"< {MEMORY_TARGET}x raw", out["rss_minus_baseline_over_raw"], MEMORY_TARGET, higher=False
        )
    return out


def _diff(a: dict, b: dict, key: str) -> int | None:
    return a[key] - b[key] if key in a and key in b else None


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description="keeldb's embedded ANN search vs raw FAISS (same index, same parameters) "
        "and Milvus Lite (same recall), on the same data in the same run.",
    )
    p.add_argument("--rows", type=int, default=1_000_000, help="vectors (default 1,000,000)")
    p.add_argument("--dim", type=int, default=128, help="dimension (default 128)")
    p.add_argument("--queries", type=int, default=1000, help="held-out queries (default 1000)")
    p.add_argument("--clusters", type=int, help="Gaussian clusters (default min(2000, rows/50))")
    p.add_argument(
        "--cluster-rank",
        type=int,
        default=16,
        help="directions each cluster spreads along; 0 = isotropic (default 16)",
    )
    p.add_argument("--metric", default="L2", choices=["L2", "IP", "COSINE"])
    p.add_argument(
        "--indexes",
        default=",".join(INDEX_TYPES),
        help=f"comma-separated, from {', '.join(INDEX_TYPES)} (default all)",
    )
    p.add_argument(
        "--milvus-lite-extra",
        default=",".join(MILVUS_LITE_EXTRA_TYPES),
        help="index types only Milvus Lite is asked to build, for its best-QPS figure "
        f"(default {','.join(MILVUS_LITE_EXTRA_TYPES)}; '' for none)",
    )
    p.add_argument(
        "--systems",
        default=",".join(SYSTEMS),
        help=f"comma-separated, from {', '.join(SYSTEMS)} (default all)",
    )
    p.add_argument("--nlist", type=int, help="IVF lists (default: power of 2 nearest sqrt(rows))")
    p.add_argument("--pq-m", type=int, help="IVF_PQ / HNSW_PQ sub-vectors (default dim/4 -> 32)")
    p.add_argument(
        "--pq-nbits",
        type=int,
        default=8,
        help="bits per code of IVF_PQ, HNSW_PQ and HNSW_PRQ (default 8)",
    )
    p.add_argument("--prq-m", type=int, help="HNSW_PRQ sub-vectors (default dim/8 -> 16)")
    p.add_argument("--prq-nrq", type=int, default=2, help="HNSW_PRQ residual codebooks (default 2)")
    p.add_argument("--sq-type", default="SQ8", choices=list(SQ_FACTORY),
                   help="HNSW_SQ's codes (default SQ8, Milvus Lite's only one)")  # fmt: skip
    p.add_argument(
        "--refine-type",
        default="SQ8",
        choices=list(REFINE_CHOICES),
        help="the copy HNSW_PQ, HNSW_PRQ and IVF_RABITQ re-rank with (default SQ8, knowhere's)",
    )
    p.add_argument(
        "--refine-k",
        type=float,
        default=4.0,
        help="candidates re-ranked per hit: refine_k of HNSW_PQ, HNSW_PRQ, IVF_RABITQ, "
        "SCANN's reorder_k = this x 10 (default 4)",
    )
    p.add_argument(
        "--rbq-query-bits",
        type=int,
        default=4,
        help="IVF_RABITQ's query bits (default 4, FAISS's own default; Milvus's 0 = float "
        "queries gave the same recall at 1/60 of the QPS with FAISS 1.15)",
    )
    p.add_argument("--hnsw-m", type=int, default=16, help="HNSW M (default 16)")
    p.add_argument("--ef-construction", type=int, default=200, help="HNSW (default 200)")
    p.add_argument("--recall-target", type=float, default=0.95, help="(default 0.95)")
    p.add_argument(
        "--stop-recall",
        type=float,
        default=0.99,
        help="keeldb and FAISS sweeps stop at the first setting reaching this recall "
        "(default 0.99; Milvus Lite's stops at --recall-target)",
    )
    p.add_argument(
        "--point-budget",
        type=float,
        default=15.0,
        help="seconds of searching per sweep setting and nq, before it is cut (default 15)",
    )
    p.add_argument(
        "--min-time",
        type=float,
        default=1.0,
        help="repeat the query set until this many seconds were timed (default 1)",
    )
    p.add_argument(
        "--memory-searches",
        type=int,
        default=300,
        help="nq=1 searches made before reading keeldb's resident memory (default 300)",
    )
    p.add_argument("--chunk", type=int, default=100_000, help="rows per keeldb insert_columns")
    p.add_argument("--milvus-batch", type=int, default=10_000, help="rows per Milvus Lite insert")
    _cli.add_run_options(p, DEFAULT_SEED, "data and builds")
    p.add_argument(
        "--reuse",
        action="store_true",
        help="reuse data, keeldb/FAISS builds and Milvus Lite's loaded rows found in "
        "--workdir from an earlier run with the same settings (their build times are the "
        "recorded ones)",
    )
    p.add_argument(
        "--omp-threads",
        type=int,
        help="FAISS/OpenMP threads for searching in every child (all systems alike; builds "
        "keep the default); default: the library's own (one per CPU)",
    )
    _cli.add_child_timeout(p, 14400.0)
    a = p.parse_args(argv)

    a.systems = _cli.names(p, "--systems", a.systems, list(SYSTEMS))
    a.indexes = _cli.names(p, "--indexes", a.indexes, INDEX_TYPES, upper=True)
    a.milvus_lite_extra = _cli.names(p, "--milvus-lite-extra", a.milvus_lite_extra,
                                     MILVUS_LITE_EXTRA_TYPES, upper=True, empty=True)  # fmt: skip
    _cli.at_least_one(p, a, ("rows", "dim", "queries", "chunk", "milvus_batch", "memory_searches"))
    if "milvus-lite" not in a.systems:
        a.milvus_lite_extra = []
    if a.clusters is None:
        a.clusters = max(1, min(2000, a.rows // 50))
    if a.nlist is None:
        a.nlist = default_nlist(a.rows)
    if a.pq_m is None:
        a.pq_m = default_pq_m(a.dim)
    if a.dim % a.pq_m:
        p.error(f"--pq-m {a.pq_m} must divide --dim {a.dim}")
    if a.prq_m is None:
        a.prq_m = default_prq_m(a.dim)
    if a.dim % a.prq_m:
        p.error(f"--prq-m {a.prq_m} must divide --dim {a.dim}")
    if not 1.0 <= a.refine_k <= 1024.0:
        p.error("--refine-k must be in [1, 1024]")
    if a.rows < TOP_K:
        p.error(f"--rows must be >= {TOP_K}")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    return _cli.main(argv, parse_args, "keeldb-ann-", run_benchmarks, print_report,
                     worker_main=worker_main)  # fmt: skip


def _system_info(key: str) -> dict[str, Any]:
    """Import a system in the parent only to say whether (and which version) it is there."""
    try:
        if key == "keeldb":
            import keeldb

            return {"available": True, "version": package_version("keeldb", keeldb),
                    "location": str(Path(keeldb.__file__).parent)}  # fmt: skip
        if key == "faiss":
            import faiss

            return {"available": True, "version": faiss.__version__,
                    "omp_threads": faiss.omp_get_max_threads()}  # fmt: skip
        import milvus_lite  # noqa: F401  (pymilvus needs it to open a local .db)
        import pymilvus

        return {"available": True,
                "version": f"milvus-lite {package_version('milvus-lite', milvus_lite)}, "
                f"pymilvus {pymilvus.__version__}"}  # fmt: skip
    except Exception as exc:  # noqa: BLE001 - an absent system is reported, not fatal
        return {"available": False, "unavailable_reason": f"{type(exc).__name__}: {exc}"}


def _prepare_data(cfg: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> dict:
    paths = data_paths(workdir, cfg)
    info: dict[str, Any] = {k: str(v) for k, v in paths.items()}
    have = (
        cfg.reuse
        and paths["vectors"].exists()
        and paths["queries"].exists()
        and np.load(paths["vectors"], mmap_mode="r").shape == (cfg.rows, cfg.dim)
    )
    if have:
        log(f"reusing {paths['vectors'].name}")
        info["generate_s"] = None
    else:
        log(f"generating {cfg.rows:,} x {cfg.dim} float32 vectors + {cfg.queries:,} queries "
            f"({cfg.clusters:,} clusters, rank {cfg.cluster_rank}, seed {cfg.seed})")  # fmt: skip
        t0 = time.perf_counter()
        generate_data(paths, cfg)
        info["generate_s"] = time.perf_counter() - t0
    if cfg.reuse and paths["truth"].exists() and have:
        info["truth_s"] = None
        info["truth_method"] = "reused"
    else:
        log(f"exact top-{TOP_K} ground truth ({cfg.metric})")
        t0 = time.perf_counter()
        ids, how = exact_truth(
            np.load(paths["vectors"], mmap_mode="r"), np.load(paths["queries"]), cfg.metric
        )
        _save_npy(paths["truth"], ids)
        info["truth_s"] = time.perf_counter() - t0
        info["truth_method"] = how
    info["generator"] = (
        f"numpy default_rng(seed): {cfg.clusters} centres ~ N(0, I); a point = its centre + "
        + (
            f"{CLUSTER_SPREAD} * z @ B_c (z ~ N(0, I_{cfg.cluster_rank}), B_c a random "
            f"{cfg.cluster_rank} x {cfg.dim} basis with N(0, 1/{cfg.cluster_rank}) entries) + "
            f"{CLUSTER_NOISE} * N(0, I)"
            if cfg.cluster_rank
            else f"{CLUSTER_SPREAD} * N(0, I)"
        )
        + f"; the {cfg.queries} queries are drawn after the rows (held out); ids 0..n-1"
    )
    return info


def _fingerprint(cfg: argparse.Namespace, data: dict, plan: IndexPlan | None) -> dict:
    fp: dict[str, Any] = {"vectors": Path(data["vectors"]).name, "metric": cfg.metric}
    if plan is not None:
        fp.update(index_type=plan.index_type, build_params=plan.build_params)
    return fp


def run_benchmarks(cfg: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> dict:
    plans = make_plans(cfg)
    systems = {key: {"label": SYSTEMS[key], **_system_info(key)} for key in cfg.systems}
    for key, info in systems.items():
        if not info["available"]:
            log(f"[red]{SYSTEMS[key]} unavailable: {info['unavailable_reason']}[/red]")
    if not systems.get("faiss", {}).get("available") and not _system_info("faiss")["available"]:
        raise SystemExit("faiss is needed for the exact ground truth: pip install faiss-cpu")
    data = _prepare_data(cfg, workdir, log)
    runner = Runner(workdir, cfg.child_timeout, log, cfg.omp_threads)
    raw_bytes = cfg.rows * cfg.dim * 4
    common = {
        "vectors": data["vectors"],
        "queries": data["queries"],
        "truth": data["truth"],
        "metric": cfg.metric,
        "seed": cfg.seed,
        "reuse": cfg.reuse,
        "point_budget": cfg.point_budget,
        "min_time": cfg.min_time,
        "stop_recall": cfg.stop_recall,
        "recall_target": cfg.recall_target,
    }
    indexes: dict[str, dict] = {}
    for t in [*cfg.indexes, *cfg.milvus_lite_extra]:
        plan = plans[t]
        indexes[t] = {
            "build_params": plan.build_params,
            "faiss_factory": plan.faiss_factory,
            "search_param": plan.knob,
            "search_fixed": plan.search_fixed,
            "milvus_lite_only": t not in cfg.indexes,
            "systems": {},
        }

    def usable(key: str) -> bool:
        return key in systems and systems[key]["available"]

    for t in cfg.indexes:
        plan = plans[t]
        entry = indexes[t]["systems"]
        for key in ("keeldb", "faiss"):
            if not usable(key):
                continue
            log(f"{t}: {SYSTEMS[key]} build + sweep ...")
            suffix = "" if key == "keeldb" else ".faissindex"
            job = {
                **common,
                "task": key,
                "plan": asdict(plan),
                "path": str(workdir / f"{key}-{t}{suffix}"),
                "meta": str(workdir / f"{key}-{t}.build.json"),
                "fingerprint": _fingerprint(cfg, data, plan),
                "chunk": cfg.chunk,
            }
            out = runner.run(f"{key}-{t}", job)
            entry[key] = _system_entry(out)
            if out["ok"] and key == "keeldb":
                entry[key]["disk"] = _disk_figures(
                    dir_usage(Path(job["path"])), cfg.rows, raw_bytes
                )
            log(f"  ({out['process_wall_s']:.1f}s){_err_suffix(out)}")
        k = entry.get("keeldb")
        if k and k["status"] == "ok":
            good = [p for p in k["sweep"] if not p.get("error")]
            # The cheapest setting reaching the recall target, else the most accurate one.
            top = next((p for p in good if p["recall"] >= cfg.recall_target), None)
            if top is None and good:
                top = max(good, key=lambda p: p["recall"])
            if top is not None:
                pick = {"params": top["params"], "label": top["label"], "recall": top["recall"]}
                log(f"{t}: keeldb resident memory in a fresh process ({pick['label']}) ...")
                mem = runner.run(
                    f"keeldb-{t}-memory",
                    {
                        **common,
                        "task": "keeldb-memory",
                        "path": str(workdir / f"keeldb-{t}"),
                        "auto_flush": _keeldb_auto_flush(cfg.rows, cfg.dim),
                        "search_params": pick["params"],
                        "searches": cfg.memory_searches,
                    },
                )
                if mem["ok"]:
                    k["memory"] = memory_figures(mem, raw_bytes, t)
                    k["memory"]["setting_recall"] = pick["recall"]
                else:
                    k["memory"] = {"error": mem["error"]}
                log(f"  ({mem['process_wall_s']:.1f}s){_err_suffix(mem)}")

    if usable("milvus-lite"):
        types = [*cfg.indexes, *cfg.milvus_lite_extra]
        log(f"Milvus Lite: load {cfg.rows:,} rows, then {', '.join(types)} ...")
        out = runner.run(
            "milvus-lite",
            {
                **common,
                "task": "milvus-lite",
                "plans": [asdict(plans[t]) for t in types],
                "path": str(workdir / "milvus-lite.db"),
                "meta": str(workdir / "milvus-lite.load.json"),
                "fingerprint": _fingerprint(cfg, data, None),
                "batch": cfg.milvus_batch,
            },
        )
        log(f"  ({out['process_wall_s']:.1f}s){_err_suffix(out)}")
        if out["ok"]:
            systems["milvus-lite"]["version"] = out["version"]
            systems["milvus-lite"]["load"] = out["load"]
            systems["milvus-lite"]["internals_visible"] = out["internals_visible"]
            for t in types:
                indexes[t]["systems"]["milvus-lite"] = out["indexes"][t]
        else:
            for t in types:
                indexes[t]["systems"]["milvus-lite"] = {
                    "status": "error",
                    "error": out["error"],
                    "sweep": [],
                }

    for entry in indexes.values():
        compare_index(entry, cfg.recall_target)
    summary = summarize(indexes, cfg)
    return {
        "config": {
            **{k: v for k, v in vars(cfg).items() if k not in ("out", "workdir")},
            "workdir": str(workdir),
            "workdir_kept": cfg.workdir is not None,
            "top_k": TOP_K,
            "batch_nq": BATCH_NQ,
            "raw_vector_bytes": raw_bytes,
            "faiss_training": "IVF types: 256 * nlist rows drawn without replacement with "
            "numpy default_rng(seed) (all rows if fewer)",
        },
        "data": data,
        "systems": systems,
        "indexes": indexes,
        "summary": summary,
    }


def _system_entry(out: dict) -> dict:
    if not out["ok"]:
        return {"status": "error", "error": out["error"], "sweep": [], "log": out["log"]}
    body = {k: v for k, v in out.items() if k not in ("ok",)}
    return {"status": "ok", "error": None, **body}


def _err_suffix(out: dict) -> str:
    return "" if out["ok"] else f" [red]{out['error'][:300]}[/red] (log: {out['log']})"


def _disk_figures(usage: dict, rows: int, raw_bytes: int) -> dict:
    per_m = 1_000_000 / rows
    return {
        **usage,
        "total_bytes_per_million": usage["total_bytes"] * per_m,
        "index_bytes_per_million": usage["index_bytes"] * per_m,
        "total_over_raw": usage["total_bytes"] / raw_bytes,
        "index_over_raw": usage["index_bytes"] / raw_bytes,
    }


def summarize(indexes: dict[str, dict], cfg: argparse.Namespace) -> dict:
    """Each system's best QPS at recall >= target over every index type, and the targets."""
    target = cfg.recall_target
    best: dict[str, dict[str, dict | None]] = {}
    for key in SYSTEMS:
        for mode in ("nq1", "nq100"):
            cands = []
            for t, entry in indexes.items():
                s = entry["systems"].get(key)
                if s and s.get("status") == "ok":
                    b = best_at(s["sweep"], target, mode)
                    if b:
                        cands.append({**b, "index_type": t})
            best.setdefault(key, {})[mode] = max(cands, key=lambda c: c["qps"]) if cands else None
    ratios: dict[str, float | None] = {}
    targets: dict[str, dict] = {}
    for mode in ("nq1", "nq100"):
        compare_best(lambda key, mode=mode: best[key][mode], mode, cfg.systems,
                     ("faiss", "milvus-lite"), ratios, targets)  # fmt: skip
    refused = {
        t: e["systems"]["milvus-lite"]["error"]
        for t, e in indexes.items()
        if e["systems"].get("milvus-lite", {}).get("status") == "refused"
    }
    kinds = {}
    for t in TARGET_KINDS:
        met = indexes.get(t, {}).get("targets", {}).get("nq1_vs_faiss", {}).get("met")
        if t in indexes and "faiss" in indexes[t]["systems"]:
            kinds[t] = met
    nq1 = {
        "target": f">= {FAISS_QPS_TARGET}x raw FAISS at nq=1, HNSW and IVF kinds",
        "met": sorted(t for t, m in kinds.items() if m),
        "not_met": sorted(t for t, m in kinds.items() if m is False),
        "not_measured": sorted(t for t, m in kinds.items() if m is None),
    }
    return {"best": best, "ratios": ratios, "targets": targets, "milvus_lite_refused": refused,
            "nq1_faiss_target_kinds": nq1}  # fmt: skip


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _num(v: float | None) -> str:
    if v is None:
        return "-"
    return f"{v:,.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"


def _scaled(b: float | None, factor: float) -> float | None:
    return None if b is None else b * factor


def _mib(b: float | None) -> str:
    return "-" if b is None else f"{b / 1024**2:,.1f} MiB"


def _pick(b: dict | None, best: dict | None = None) -> str:
    if b is not None:
        return f"{_num(b['qps'])} ({b['label']})"
    if best is None:
        return "not reached"
    return f"not reached (best {best['recall']:.3f}, {best['label']})"


def print_report(report: dict) -> None:
    from rich.table import Table

    console = _report.console(180)
    cfg = report["config"]
    target = cfg["recall_target"]
    keys = [k for k in SYSTEMS if k in report["systems"]]
    labels = {k: SYSTEMS[k] for k in keys}
    notes = _report.Footnotes()
    note = notes.see

    console.print(
        f"[bold]ANN benchmark[/bold]: {cfg['rows']:,} x {cfg['dim']}-d, {cfg['metric']}, "
        f"{cfg['queries']:,} queries, recall@{TOP_K} vs exact; QPS = queries / summed call "
        f"time, nq=1 = one query per call, nq={min(BATCH_NQ, cfg['queries'])} = batches"
    )
    for t, entry in report["indexes"].items():
        systems = entry["systems"]
        params = label(entry["build_params"]) if entry["build_params"] else "no parameters"
        factory = f", FAISS '{entry['faiss_factory']}'" if entry["faiss_factory"] else ""
        if entry.get("search_fixed"):
            factory += f"; every search: {label(entry['search_fixed'])}"
        extra = " (Milvus Lite only)" if entry["milvus_lite_only"] else ""
        table = Table(title=f"{t}{extra}: {params}{factory}", title_justify="left")
        table.add_column("setting")
        shown = [k for k in keys if k in systems]
        for k in shown:
            table.add_column(f"{labels[k]}\nrecall", justify="right")
            table.add_column(f"{labels[k]}\nQPS nq=1", justify="right")
            table.add_column(f"{labels[k]}\nQPS nq=100", justify="right")
        both = "keeldb" in shown and "faiss" in shown
        if both:
            table.add_column("keeldb/FAISS\nnq=1", justify="right")
            table.add_column("keeldb/FAISS\nnq=100", justify="right")
        by_label: dict[str, dict[str, dict]] = {}
        order: list[str] = []
        for k in shown:
            for p in systems[k].get("sweep", []):
                if p["label"] not in by_label:
                    order.append(p["label"])
                by_label.setdefault(p["label"], {})[k] = p
        order.sort(key=lambda lab: int(lab.split("=")[1]) if "=" in lab else 0)  # knob=value
        build_row = ["build s"]
        for k in shown:
            s = systems[k]
            if s.get("status") != "ok":
                build_row += [note(f"{t}, {labels[k]}: {s.get('error')}"), "", ""]
            else:
                reused = " (reused)" if s["build"].get("reused") else ""
                build_row += [f"{s['build']['build_s']:.1f}{reused}", "", ""]
        if both:
            build_row += ["", ""]
        table.add_row(*build_row, end_section=True)
        for lab in order:
            row = [lab]
            pts = by_label[lab]
            for k in shown:
                p = pts.get(k)
                if p is None:
                    row += ["", "", ""]
                elif p.get("error"):
                    row += [note(f"{t} {lab}, {labels[k]}: {p['error']}"), "", ""]
                else:
                    row += [f"{p['recall']:.3f}", _num(p["nq1"]["qps"]), _num(p["nq100"]["qps"])]
            if both:
                kp, fp = pts.get("keeldb"), pts.get("faiss")
                if kp and fp and not kp.get("error") and not fp.get("error"):
                    row += [_report.times(_ratio(kp["nq1"]["qps"], fp["nq1"]["qps"])),
                            _report.times(_ratio(kp["nq100"]["qps"], fp["nq100"]["qps"]))]  # fmt: skip
                else:
                    row += ["", ""]
            table.add_row(*row)
        console.print(table)

    # Summary at the recall target
    table = Table(
        title=f"At recall@{TOP_K} >= {target}: QPS at each system's smallest setting that reaches "
        "it (setting); best of any index = the highest of those",
        title_justify="left",
        caption=f"Targets: keeldb >= {FAISS_QPS_TARGET}x raw FAISS, >= "
        f"{MILVUS_LITE_QPS_TARGET:g}x Milvus Lite (best vs best). Shown, never asserted.",
    )
    table.add_column("index")
    table.add_column("nq")
    for k in keys:
        table.add_column(labels[k], justify="right")
    if "faiss" in keys and "keeldb" in keys:
        table.add_column("keeldb/FAISS", justify="right")
    if "milvus-lite" in keys and "keeldb" in keys:
        table.add_column("keeldb/Milvus Lite", justify="right")
    table.add_column("target")
    for t, entry in report["indexes"].items():
        for mode, nq in (("nq1", "1"), ("nq100", "100")):
            row = [t if mode == "nq1" else "", nq]
            for k in keys:
                s = entry["systems"].get(k)
                if s is None:
                    row.append("")
                elif s.get("status") != "ok":
                    row.append(s.get("status", "error"))
                else:
                    row.append(_pick(s["at_target"][mode], s.get("best_recall")))
            if "faiss" in keys and "keeldb" in keys:
                row.append(_report.times(entry["ratios"].get(f"{mode}_keeldb_over_faiss")))
            if "milvus-lite" in keys and "keeldb" in keys:
                row.append(_report.times(entry["ratios"].get(f"{mode}_keeldb_over_milvus_lite")))
            row.append(_report.target_cell(entry["targets"].get(f"{mode}_vs_faiss")))
            table.add_row(*row, end_section=mode == "nq100")
    summ = report["summary"]
    for mode, nq in (("nq1", "1"), ("nq100", "100")):
        row = ["[bold]best of any index[/bold]" if mode == "nq1" else "", nq]
        for k in keys:
            b = summ["best"][k][mode]
            row.append(
                "not reached" if b is None else f"{_num(b['qps'])} ({b['index_type']} {b['label']})"
            )
        if "faiss" in keys and "keeldb" in keys:
            row.append(_report.times(summ["ratios"][f"{mode}_keeldb_over_faiss"]))
        if "milvus-lite" in keys and "keeldb" in keys:
            row.append(_report.times(summ["ratios"][f"{mode}_keeldb_over_milvus_lite"]))
        cells = [
            _report.target_cell(summ["targets"].get(f"{mode}_vs_{s}")) for s in ("faiss", "milvus_lite")
        ]
        row.append("\n".join(c for c in cells if c))
        table.add_row(*row)
    console.print(table)

    # keeldb memory and disk
    if "keeldb" in keys:
        table = Table(
            title="keeldb: resident memory (fresh process: open, load, searches at the setting "
            f"shown) and bytes on disk; raw vectors = {_mib(cfg['raw_vector_bytes'])}; and "
            "raw FAISS's index file, the index itself",
            title_justify="left",
        )
        per_m = 1_000_000 / cfg["rows"]
        for col in ("index", "setting", "RSS total", "RSS - baseline", "RSS - base\n/ 1M",
                    "x raw (- base)", "x raw (total)", "target", "disk total / 1M",
                    "idx- files / 1M", "disk x raw", "FAISS index\nfile / 1M",
                    "FAISS file\nx raw"):  # fmt: skip
            table.add_column(
                col, justify="left" if col in ("index", "setting", "target") else "right"
            )
        for t, entry in report["indexes"].items():
            s = entry["systems"].get("keeldb")
            if not s or s.get("status") != "ok":
                continue
            mem, disk = s.get("memory") or {}, s.get("disk") or {}
            if mem.get("error"):
                mem_cells = [note(f"{t}, keeldb memory: {mem['error']}"), "", "", "", "", "", ""]
            elif mem:
                mem_cells = [
                    label(mem["search_params"]),
                    _mib(mem["rss_total_bytes"]),
                    f"{_mib(mem['rss_minus_baseline_bytes'])}\n(anon "
                    f"{_mib(mem['rss_anon_minus_baseline_bytes'])}, file "
                    f"{_mib(mem['rss_file_minus_baseline_bytes'])})",
                    _mib(_scaled(mem["rss_minus_baseline_bytes"], per_m)),
                    _report.times(mem["rss_minus_baseline_over_raw"]),
                    _report.times(mem["rss_total_over_raw"]),
                    _report.target_cell(mem.get("target")) or "n/a (FLAT, IVF only)",
                ]
            else:
                mem_cells = ["-"] * 7
            fs = entry["systems"].get("faiss") or {}
            ffile = fs.get("index_file_bytes") if fs.get("status") == "ok" else None
            table.add_row(
                t,
                *mem_cells,
                _mib(disk.get("total_bytes_per_million")),
                _mib(disk.get("index_bytes_per_million")),
                _report.times(disk.get("total_over_raw")),
                _mib(_scaled(ffile, per_m)),
                _report.times(_ratio(ffile, cfg["raw_vector_bytes"])),
            )
        console.print(table)

    kinds = summ.get("nq1_faiss_target_kinds")
    if kinds and (kinds["met"] or kinds["not_met"] or kinds["not_measured"]):
        console.print(
            f"{kinds['target']}: met by {len(kinds['met'])} of "
            f"{len(kinds['met']) + len(kinds['not_met']) + len(kinds['not_measured'])}"
            + "".join(f"; {what.replace('_', ' ')}: {', '.join(kinds[what])}"
                      for what in ("met", "not_met", "not_measured") if kinds[what]),
            highlight=False,
        )  # fmt: skip
    notes.print(console)
    for t, why in summ["milvus_lite_refused"].items():
        console.print(f"Milvus Lite refused {t}: {why[:400]}", highlight=False)
    for k in keys:
        info = report["systems"][k]
        if not info.get("available"):
            console.print(f"{labels[k]}: unavailable ({info.get('unavailable_reason')})")
            continue
        console.print(f"[bold]{labels[k]}[/bold] {info.get('version', '')}", highlight=False)
    ml = report["systems"].get("milvus-lite", {}).get("load")
    if ml:
        segs = ml.get("segments") or {}
        rps = ml.get("insert_rows_per_s")
        console.print(
            f"  Milvus Lite: rows inserted at {_num(rps)} rows/s"
            + (" (reused)" if ml.get("reused") else "")
            + (f"; {segs['segments']} segment(s), rows {segs['rows']}" if segs else ""),
            highlight=False,
        )
    k_builds = [
        (t, e["systems"]["keeldb"]["build"])
        for t, e in report["indexes"].items()
        if e["systems"].get("keeldb", {}).get("status") == "ok"
    ]
    if k_builds:
        console.print(
            "  keeldb build = flush + wait_for_index; insert_columns not included: "
            + ", ".join(f"{t} {_num(b.get('insert_rows_per_s'))} rows/s" for t, b in k_builds),
            highlight=False,
        )
        if not all(b.get("has_wait_for_index") for _, b in k_builds):
            console.print(
                "  [yellow]this keeldb has no wait_for_index: its index builds were not "
                "awaited (or it has none yet)[/yellow]"
            )
    d = report["data"]
    console.print(f"data: {d['generator']}", highlight=False)
    console.print(f"ground truth: {d['truth_method']}", highlight=False)
    _report.print_machine(console, report["machine"])
    console.print(
        f"command: {report['command']}  ({report['wall_s'] / 60:.1f} min)", highlight=False
    )


if __name__ == "__main__":
    _cli.run_script(main, worker_main)
