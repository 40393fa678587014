#!/usr/bin/env python
"""Vector types beyond FLOAT_VECTOR: keeldb against Milvus Lite, raw FAISS and scipy, same
run, same data.

Three comparisons, each on data generated once (fixed seed) into the work directory and read
by every system, each system in its own child process (``_workers``):

* **sparse** — ``--sparse-rows`` [1,000,000] SPARSE_FLOAT_VECTOR rows of ``--sparse-nnz``
  [100] nonzeros over a ``--sparse-vocab`` [30,000]-dimension vocabulary, dimensions drawn
  Zipf-distributed (s = 1.1) and each row's distinct, weights BM25/SPLADE-like (idf of the
  dimension x U(0.5, 1.5): rare dimensions weigh more); ``--queries`` [100] queries of
  ``--query-nnz`` [30] nonzeros drawn the same way. keeldb builds SPARSE_INVERTED_INDEX (IP)
  and is searched with DAAT_MAXSCORE, then rebuilt and searched with TAAT_NAIVE; Milvus Lite
  gets the same collection and index type; the brute force is scipy's product of the whole
  CSR matrix with each query (``X @ q.T``), which also gives the exact top-10 every system's
  answers are checked against (the same ids, scores within 1e-5 relative: all three sum in
  float32, in different orders). Targets: keeldb's QPS >= 10x Milvus Lite's; exact top-k.
* **binary** — ``--dense-rows`` [1,000,000] BINARY_VECTOR rows of ``--binary-dim`` [256]
  bits (the signs of random projections of clustered float vectors, so neighbours exist):
  keeldb's BIN_FLAT (HAMMING) against raw FAISS's ``IndexBinaryFlat`` on the same bytes,
  QPS at nq=1 and nq=100, distances equal. Target: keeldb >= 0.8x FAISS's QPS.
* **float16** — ``--dense-rows`` x ``--dim`` [128] FLOAT16_VECTOR rows (clustered):
  keeldb's HNSW (``--hnsw-m``, ``--ef-construction``; FAISS ``HNSW{M},SQfp16`` inside)
  against raw FAISS's identical ``HNSW{M},SQfp16`` index built from the same float16
  values, recall@10 against the exact answer (FAISS flat search over the float32 widening)
  and QPS at nq=1 and nq=100 for each ``--ef`` in the sweep. Target: keeldb >= 0.8x FAISS's
  QPS at the same ef. Then **memory**: a fresh process opens keeldb's FLAT (a FAISS
  ``SQfp16`` flat index file, memory-mapped) and HNSW collections of the same float16 rows,
  searches them, and its resident memory above the interpreter with everything imported is
  compared with the raw bytes (rows x dim x 2). Target: <= 1.2x for FLAT (the vectors
  themselves); HNSW's graph links come on top and are shown as such.

QPS = queries answered / summed call time, each call timed alone; the query set repeats
until ``--min-time`` seconds were timed. keeldb and raw FAISS are compared on timings taken
*beside* each other: the FAISS job saves its index, and the keeldb job loads it and times
both in one process in alternating rounds (``paired``), so a busy minute of this shared
machine lands on both; FAISS's timings alone are reported too. Milvus Lite is given ``--lite-budget`` seconds of
searching (at least ``MIN_LITE_QUERIES`` queries): its pure-Python postings walk takes
seconds a query at 1M rows. Targets are shown as met / not met, never asserted.

Usage::

    PYTHONPATH=src python benchmarks/bench_vectors.py --workdir /tmp/bv --out vectors.json
    PYTHONPATH=src python benchmarks/bench_vectors.py --quick      # toy sizes (the smoke test)
"""

from __future__ import annotations

import argparse
import gc
import os
import shutil
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import _cli
import _report
import _workers
import numpy as np
from _common import TOP_K, package_version, recall_at_k, time_calls
from _workers import job_worker, progress

DEFAULT_SEED = 20261207
SECTIONS = ("sparse", "binary", "float16")
SYSTEMS = {"keeldb": "keeldb", "milvus-lite": "Milvus Lite", "faiss": "raw FAISS", "scipy": "scipy brute force"}
BATCH_NQ = 100
MIN_LITE_QUERIES = 3
LITE_QPS_TARGET = 10.0
FAISS_QPS_TARGET = 0.8
MEMORY_TARGET = 1.2
SPARSE_ALGOS = ("DAAT_MAXSCORE", "TAAT_NAIVE")
CHUNK = 50_000
COLLECTION = "bench"
FULL = {"sparse_rows": 1_000_000, "sparse_nnz": 100, "sparse_vocab": 30_000, "query_nnz": 30,
        "dense_rows": 1_000_000, "dim": 128, "binary_dim": 256, "queries": 100,
        "ef": "16,32,64,128", "min_time": 2.0, "lite_budget": 300.0, "memory_searches": 200}  # fmt: skip
QUICK = {"sparse_rows": 3000, "sparse_nnz": 20, "sparse_vocab": 2000, "query_nnz": 8,
         "dense_rows": 3000, "dim": 16, "binary_dim": 64, "queries": 20,
         "ef": "16,64", "min_time": 0.0, "lite_budget": 20.0, "memory_searches": 20}  # fmt: skip


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------


def sparse_matrix(rng: np.random.Generator, rows: int, nnz: int, vocab: int) -> Any:
    """Rows of ``nnz`` distinct Zipf-distributed dimensions, weights idf x U(0.5, 1.5)."""
    import scipy.sparse as sp

    p = 1.0 / np.arange(1, vocab + 1) ** 1.1
    p /= p.sum()
    idf = np.log1p(1.0 / (1 - (1 - p) ** nnz)).astype(np.float32)  # ~ log(1 + N/df)
    parts = []
    for lo in range(0, rows, CHUNK):
        n = min(CHUNK, rows - lo)
        draw = np.sort(rng.choice(vocab, size=(n, 2 * nnz), p=p), axis=1)
        distinct = np.ones(draw.shape, dtype=bool)
        distinct[:, 1:] = draw[:, 1:] != draw[:, :-1]
        rank = np.argsort(np.where(distinct, rng.random(draw.shape), 2.0), axis=1)  # a random order
        keep = np.zeros(draw.shape, dtype=bool)
        np.put_along_axis(keep, rank, np.arange(2 * nnz)[None, :] < np.minimum(distinct.sum(1), nnz)[:, None], axis=1)
        cols = draw[keep]
        indptr = np.concatenate([[0], np.cumsum(keep.sum(1))])
        vals = idf[cols] * rng.uniform(0.5, 1.5, len(cols)).astype(np.float32)
        parts.append(sp.csr_matrix((vals, cols, indptr), shape=(n, vocab)))
    m = sp.vstack(parts, format="csr")
    m.sort_indices()
    return m


def clustered(rng: np.random.Generator, rows: int, dim: int, clusters: int) -> np.ndarray:
    centers = rng.normal(0, 4, (clusters, dim)).astype(np.float32)
    out = np.empty((rows, dim), dtype=np.float32)
    for lo in range(0, rows, CHUNK):
        n = min(CHUNK, rows - lo)
        out[lo : lo + n] = centers[rng.integers(0, clusters, n)] + rng.normal(0, 1, (n, dim))
    return out


def make_data(cfg: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> dict[str, str]:
    import scipy.sparse as sp

    rng = np.random.default_rng(cfg.seed)
    paths = {k: str(workdir / f"{k}") for k in ("sparse.npz", "sparse_q.npz", "f16.npy", "f16_q.npy", "bin.npy", "bin_q.npy")}
    if "sparse" in cfg.sections:
        t0 = time.perf_counter()
        sp.save_npz(paths["sparse.npz"], sparse_matrix(rng, cfg.sparse_rows, cfg.sparse_nnz, cfg.sparse_vocab), compressed=False)
        sp.save_npz(paths["sparse_q.npz"], sparse_matrix(rng, cfg.queries, cfg.query_nnz, cfg.sparse_vocab), compressed=False)
        log(f"sparse data: {cfg.sparse_rows:,} rows in {time.perf_counter() - t0:.0f}s")
    if "binary" in cfg.sections or "float16" in cfg.sections:
        clusters = max(1, min(2000, cfg.dense_rows // 50))
        base = clustered(rng, cfg.dense_rows + cfg.queries, cfg.dim, clusters)
        np.save(paths["f16.npy"], base[: cfg.dense_rows].astype(np.float16))
        np.save(paths["f16_q.npy"], base[cfg.dense_rows :].astype(np.float16))
        proj = rng.standard_normal((cfg.dim, cfg.binary_dim)).astype(np.float32)
        bits = np.concatenate([np.packbits(base[lo : lo + CHUNK] @ proj > 0, axis=1) for lo in range(0, len(base), CHUNK)])
        np.save(paths["bin.npy"], bits[: cfg.dense_rows])
        np.save(paths["bin_q.npy"], bits[cfg.dense_rows :])
        del base, bits
        log(f"dense data: {cfg.dense_rows:,} rows")
    return paths


# --------------------------------------------------------------------------------------
# Timing
# --------------------------------------------------------------------------------------


def timed(search: Callable[[Any], Any], batches: Sequence[Any], min_s: float, budget_s: float | None = None,
          min_calls: int = 1) -> tuple[dict[str, Any], list[Any]]:  # fmt: skip
    """Call ``search`` on each batch, timing each call alone, repeating the batches until
    ``min_s`` seconds were timed; stop early after ``budget_s`` once ``min_calls`` calls
    were made. Returns the figures and the first pass's answers."""
    search(batches[0])  # warm-up: page faults of a freshly mapped index are not a search
    t = time_calls(search, batches, min_s=min_s, budget_s=budget_s, min_queries=min_calls)
    return {"qps": t.qps, "queries": t.answered, "calls": len(t.latencies),
            "p50_ms": float(np.median(t.latencies) * 1e3)}, t.first  # fmt: skip


PAIR_ROUNDS = 6


def paired(
    mine: Callable[[Any], Any], theirs: Callable[[Any], Any], batches: Sequence[Any], min_s: float
) -> tuple[dict[str, Any], dict[str, Any], list[Any]]:
    """Time keeldb (``mine``) and raw FAISS (``theirs``) in one process, in alternating
    rounds, each round every batch through one and then the other: a busy minute on this
    machine then lands on both, not on whichever system's turn it was, so their ratio holds
    even when the absolute figures do not. Returns (keeldb's figures, FAISS's, keeldb's
    first-pass answers)."""
    mine(batches[0])
    theirs(batches[0])
    a = b = None
    for _ in range(PAIR_ROUNDS):
        ra = time_calls(mine, batches, min_s=min_s / PAIR_ROUNDS)
        rb = time_calls(theirs, batches, min_s=min_s / PAIR_ROUNDS)
        if a is None or b is None:
            a, b = ra, rb
        else:
            a.latencies += ra.latencies
            a.answered += ra.answered
            b.latencies += rb.latencies
            b.answered += rb.answered
    assert a is not None and b is not None

    def figs(t: Any) -> dict[str, Any]:
        return {"qps": t.answered / sum(t.latencies), "queries": t.answered, "calls": len(t.latencies),
                "p50_ms": float(np.median(t.latencies) * 1e3)}  # fmt: skip

    return figs(a), figs(b), a.first


def proc_memory() -> dict[str, int]:
    out: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = int(rest.split()[0]) * 1024
    return out


# --------------------------------------------------------------------------------------
# Children
# --------------------------------------------------------------------------------------


def _hits(res: list[list[dict]]) -> list[tuple[list[int], list[float]]]:
    return [([h["id"] for h in r], [h["distance"] for h in r]) for r in res]


def _exact_share(got: list[tuple[list[int], list[float]]], truth: dict[str, np.ndarray]) -> dict[str, Any]:
    """How many answers equal the exact top-k: same ids in order, scores within 1e-5."""
    same = 0
    for qi, (ids, scores) in enumerate(got):
        want = truth["ids"][qi][truth["ids"][qi] >= 0]
        if list(ids) == want.tolist() and np.allclose(scores, truth["scores"][qi][: len(want)], rtol=1e-5, atol=1e-6):
            same += 1
    return {"exact_queries": same, "checked_queries": len(got), "exact_share": same / len(got) if got else None}


def job_sparse_scipy(job: dict) -> dict:
    import scipy.sparse as sp

    x, q = sp.load_npz(job["data"]), sp.load_npz(job["queries"])
    k = TOP_K

    def search(i: int) -> tuple[np.ndarray, np.ndarray]:
        s = (x @ q[i].T).toarray().ravel()
        cand = np.flatnonzero(s > 0)
        top = cand[np.lexsort((cand, -s[cand]))[:k]] if len(cand) <= 4 * k else None
        if top is None:
            part = cand[np.argpartition(-s[cand], k - 1)[:k]]
            top = part[np.lexsort((part, -s[part]))]
        return top, s[top]

    figs, answers = timed(lambda b: [search(i) for i in b], [[i] for i in range(q.shape[0])], job["min_time"])
    ids = np.full((q.shape[0], k), -1, dtype=np.int64)
    scores = np.zeros((q.shape[0], k), dtype=np.float32)
    for i, ((top, s),) in enumerate(answers):
        ids[i, : len(top)], scores[i, : len(top)] = top, s
    np.savez(job["truth"], ids=ids, scores=scores)
    return {"search": figs, "nnz": int(x.nnz)}


def _keeldb_client(path: str) -> Any:
    import keeldb

    # One flush at the end: segments as big as the data, as in bench_ann.
    return keeldb.Client(path, auto_flush_bytes=1 << 40)


def job_sparse_keeldb(job: dict) -> dict:
    import scipy.sparse as sp

    from keeldb import DataType

    x, q = sp.load_npz(job["data"]), sp.load_npz(job["queries"])
    truth = dict(np.load(job["truth"]))
    shutil.rmtree(job["path"], ignore_errors=True)
    c = _keeldb_client(job["path"])
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.SPARSE_FLOAT_VECTOR)
    out: dict[str, Any] = {"algos": {}}
    t0 = time.perf_counter()
    c.create_collection(COLLECTION, schema=s)
    for lo in range(0, x.shape[0], CHUNK):
        hi = min(x.shape[0], lo + CHUNK)
        c.insert_columns(COLLECTION, {"id": np.arange(lo, hi), "v": x[lo:hi]}, hi - lo)
    out["insert_s"] = time.perf_counter() - t0
    progress(f"keeldb sparse: inserted in {out['insert_s']:.0f}s")
    t0 = time.perf_counter()
    c.flush(COLLECTION)
    out["flush_s"] = time.perf_counter() - t0
    queries = [dict(zip(q[i].indices.tolist(), q[i].data.tolist(), strict=True)) for i in range(q.shape[0])]
    for algo in job["algos"]:
        ip = c.prepare_index_params()
        ip.add_index("v", "SPARSE_INVERTED_INDEX", metric_type="IP", params={"inverted_index_algo": algo})
        t0 = time.perf_counter()
        c.create_index(COLLECTION, ip)  # returns once every segment's index is committed
        build_s = time.perf_counter() - t0
        c.load_collection(COLLECTION)
        figs, answers = timed(lambda b: c.search(COLLECTION, b, limit=TOP_K, anns_field="v"), [[qq] for qq in queries], job["min_time"])
        got = [h for a in answers for h in _hits(a)]
        out["algos"][algo] = {"build_s": build_s, "search": figs, **_exact_share(got, truth)}
        progress(f"keeldb sparse {algo}: build {build_s:.0f}s, {figs['qps']:.1f} QPS, exact {out['algos'][algo]['exact_share']}")
        c.release_collection(COLLECTION)
        c.drop_index(COLLECTION, "v")
    c.close()
    return out


def job_sparse_lite(job: dict) -> dict:
    import resource

    import scipy.sparse as sp
    from pymilvus import DataType, MilvusClient

    # Milvus Lite keeps its postings as Python objects: at 1M rows that is many GB. Cap this
    # child's heap so that running out is this measurement's error, not the machine's.
    cap = int(job["memory_gb"] * 2**30)
    resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))

    x, q = sp.load_npz(job["data"]), sp.load_npz(job["queries"])
    truth = dict(np.load(job["truth"]))
    shutil.rmtree(job["path"], ignore_errors=True)
    os.makedirs(job["path"])
    c = MilvusClient(str(Path(job["path"]) / "lite.db"))
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.SPARSE_FLOAT_VECTOR)
    ip = c.prepare_index_params()
    ip.add_index("v", "SPARSE_INVERTED_INDEX", metric_type="IP")
    c.create_collection(COLLECTION, schema=s, index_params=ip)
    t0 = time.perf_counter()
    batch = job["batch"]
    for lo in range(0, x.shape[0], batch):
        rows = []
        for i in range(lo, min(x.shape[0], lo + batch)):
            a, b = x.indptr[i], x.indptr[i + 1]
            rows.append({"id": i, "v": dict(zip(x.indices[a:b].tolist(), x.data[a:b].tolist(), strict=True))})
        c.insert(COLLECTION, rows)
    insert_s = time.perf_counter() - t0
    progress(f"Milvus Lite sparse: inserted in {insert_s:.0f}s")
    t0 = time.perf_counter()
    c.flush(COLLECTION)
    c.load_collection(COLLECTION)
    build_s = time.perf_counter() - t0
    queries = [dict(zip(q[i].indices.tolist(), q[i].data.tolist(), strict=True)) for i in range(q.shape[0])]
    figs, answers = timed(lambda b: c.search(COLLECTION, b, limit=TOP_K, anns_field="v", search_params={"metric_type": "IP"}),
                          [[qq] for qq in queries], 0.0, job["budget"], MIN_LITE_QUERIES)  # fmt: skip
    got = [h for a in answers for h in _hits(a)]
    progress(f"Milvus Lite sparse: {figs['qps']:.3f} QPS over {figs['queries']} queries")
    return {"insert_s": insert_s, "build_s": build_s, "search": figs, **_exact_share(got, truth),
            "version": package_version("milvus-lite")}  # fmt: skip


def _nq_batches(q: np.ndarray, nq: int) -> list[np.ndarray]:
    return [q[lo : lo + nq] for lo in range(0, len(q), nq)]


def job_binary_faiss(job: dict) -> dict:
    import faiss

    x, q = np.load(job["data"]), np.load(job["queries"])
    t0 = time.perf_counter()
    index = faiss.IndexBinaryFlat(x.shape[1] * 8)
    index.add(x)
    out: dict[str, Any] = {"build_s": time.perf_counter() - t0}
    faiss.write_index_binary(index, job["index_out"])  # searched again beside keeldb (``paired``)
    for nq in (1, min(BATCH_NQ, len(q))):
        figs, answers = timed(lambda b: index.search(b, TOP_K), _nq_batches(q, nq), job["min_time"])
        out[f"nq{nq if nq == 1 else 100}"] = figs
        if nq == 1:
            np.save(job["truth"], np.concatenate([d for d, _ in answers]))
    return out


def job_binary_keeldb(job: dict) -> dict:
    from keeldb import DataType

    x, q = np.load(job["data"]), np.load(job["queries"])
    truth = np.load(job["truth"])
    shutil.rmtree(job["path"], ignore_errors=True)
    c = _keeldb_client(job["path"])
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.BINARY_VECTOR, dim=x.shape[1] * 8)
    ip = c.prepare_index_params()
    ip.add_index("v", "BIN_FLAT", metric_type="HAMMING")
    c.create_collection(COLLECTION, schema=s, index_params=ip)
    t0 = time.perf_counter()
    for lo in range(0, len(x), CHUNK):
        hi = min(len(x), lo + CHUNK)
        c.insert_columns(COLLECTION, {"id": np.arange(lo, hi), "v": x[lo:hi]}, hi - lo)
    insert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    c.flush(COLLECTION)
    c.wait_for_index(COLLECTION)
    out: dict[str, Any] = {"insert_s": insert_s, "build_s": time.perf_counter() - t0, "faiss_paired": {}}
    import faiss

    raw = faiss.read_index_binary(job["faiss_index"])
    for nq in (1, min(BATCH_NQ, len(q))):
        figs, theirs, answers = paired(lambda b: c.search(COLLECTION, b, limit=TOP_K), lambda b: raw.search(b, TOP_K),
                                       _nq_batches(q, nq), job["min_time"])  # fmt: skip
        out[f"nq{nq if nq == 1 else 100}"] = figs
        out["faiss_paired"][f"nq{nq if nq == 1 else 100}"] = theirs
        if nq == 1:
            got = np.array([[h["distance"] for h in r] for a in answers for r in a])
            out["distances_equal_faiss"] = bool(got.shape == truth.shape and np.array_equal(got, truth.astype(got.dtype)))
    c.close()
    return out


def _f16_truth(x: np.ndarray, q: np.ndarray) -> np.ndarray:
    import faiss

    flat = faiss.IndexFlatL2(x.shape[1])
    for lo in range(0, len(x), CHUNK):
        flat.add(x[lo : lo + CHUNK].astype(np.float32))
    return flat.search(q.astype(np.float32), TOP_K)[1]


def job_f16_faiss(job: dict) -> dict:
    import faiss

    from keeldb.index.faiss_index import HNSW_ADD_CHUNK

    x, q = np.load(job["data"], mmap_mode="r"), np.load(job["queries"])
    truth = _f16_truth(x, q)
    np.save(job["truth"], truth)
    t0 = time.perf_counter()
    index = faiss.index_factory(x.shape[1], f"HNSW{job['m']},SQfp16")
    index.hnsw.efConstruction = job["ef_construction"]
    index.train(np.asarray(x[: min(len(x), 65536)], dtype=np.float32))
    # Added in keeldb's HNSW chunks: FAISS inserts a chunk's points in parallel, blind to
    # each other, so bigger chunks make a worse graph (recall 0.919 against keeldb's 0.944
    # at ef=32 on 1M rows with chunks of 50,000), and a worse graph at the same ef is a
    # cheaper walk: the two would not be timed doing the same work.
    for lo in range(0, len(x), HNSW_ADD_CHUNK):
        index.add(np.asarray(x[lo : lo + HNSW_ADD_CHUNK], dtype=np.float32))
    out: dict[str, Any] = {"build_s": time.perf_counter() - t0, "sweep": {}}
    faiss.write_index(index, job["index_out"])  # searched again beside keeldb (``paired``)
    qf = q.astype(np.float32)
    for ef in job["ef"]:
        params = faiss.SearchParametersHNSW(efSearch=max(ef, TOP_K))
        point: dict[str, Any] = {}
        for nq in (1, min(BATCH_NQ, len(q))):
            figs, answers = timed(lambda b, p=params: index.search(b, TOP_K, params=p), _nq_batches(qf, nq), job["min_time"])
            figs["recall"] = recall_at_k(np.concatenate([i for _, i in answers]), truth)
            point[f"nq{nq if nq == 1 else 100}"] = figs
        out["sweep"][str(ef)] = point
        progress(f"FAISS HNSW,SQfp16 ef={ef}: recall {point['nq1']['recall']:.3f}, {point['nq1']['qps']:.0f} QPS nq=1")
    return out


def _f16_collection(c: Any, x: np.ndarray, index: str, params: dict[str, Any]) -> tuple[float, float]:
    from keeldb import DataType

    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT16_VECTOR, dim=x.shape[1])
    ip = c.prepare_index_params()
    ip.add_index("v", index, metric_type="L2", params=params)
    c.create_collection(COLLECTION, schema=s, index_params=ip)
    t0 = time.perf_counter()
    for lo in range(0, len(x), CHUNK):
        hi = min(len(x), lo + CHUNK)
        c.insert_columns(COLLECTION, {"id": np.arange(lo, hi), "v": np.asarray(x[lo:hi])}, hi - lo)
    insert_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    c.flush(COLLECTION)
    c.wait_for_index(COLLECTION)
    return insert_s, time.perf_counter() - t0


def job_f16_keeldb(job: dict) -> dict:
    x, q = np.load(job["data"], mmap_mode="r"), np.load(job["queries"])
    truth = np.load(job["truth"])
    out: dict[str, Any] = {"sweep": {}}
    shutil.rmtree(job["flat_path"], ignore_errors=True)
    c = _keeldb_client(job["flat_path"])
    out["flat_insert_s"], out["flat_build_s"] = _f16_collection(c, x, "FLAT", {})
    c.close()
    shutil.rmtree(job["path"], ignore_errors=True)
    c = _keeldb_client(job["path"])
    out["insert_s"], out["build_s"] = _f16_collection(c, x, "HNSW", {"M": job["m"], "efConstruction": job["ef_construction"]})
    progress(f"keeldb HNSW float16: built in {out['build_s']:.0f}s")
    import faiss

    raw = faiss.read_index(job["faiss_index"])
    out["faiss_paired"] = {}
    for ef in job["ef"]:
        sp = {"params": {"ef": max(ef, TOP_K)}}
        fp = faiss.SearchParametersHNSW(efSearch=max(ef, TOP_K))
        point: dict[str, Any] = {}
        theirs_at: dict[str, Any] = {}
        for nq in (1, min(BATCH_NQ, len(q))):
            figs, theirs, answers = paired(
                lambda b, sp=sp: c.search(COLLECTION, b, limit=TOP_K, search_params=sp),
                lambda b, fp=fp: raw.search(np.ascontiguousarray(b, dtype=np.float32), TOP_K, params=fp),
                _nq_batches(q, nq), job["min_time"],
            )  # fmt: skip
            figs["recall"] = recall_at_k([[h["id"] for h in r] for a in answers for r in a], truth)
            point[f"nq{nq if nq == 1 else 100}"] = figs
            theirs_at[f"nq{nq if nq == 1 else 100}"] = theirs
        out["sweep"][str(ef)] = point
        out["faiss_paired"][str(ef)] = theirs_at
        progress(f"keeldb HNSW float16 ef={ef}: recall {point['nq1']['recall']:.3f}, {point['nq1']['qps']:.0f} QPS nq=1")
    c.close()
    return out


def job_memory(job: dict) -> dict:
    """Resident memory of a fresh process that opens a built collection and searches it,
    above a baseline taken with everything a search needs imported."""
    import faiss  # noqa: F401 - the baseline includes every module a search loads
    import pyarrow  # noqa: F401
    import scipy.sparse  # noqa: F401

    import keeldb
    import keeldb.client  # noqa: F401
    import keeldb.index.faiss_index  # noqa: F401
    import keeldb.index.sparse_index  # noqa: F401

    q = np.load(job["queries"])
    gc.collect()
    before = proc_memory()
    c = keeldb.Client(job["path"])
    c.load_collection(COLLECTION)
    for i in range(job["searches"]):
        c.search(COLLECTION, q[i % len(q) : i % len(q) + 1], limit=TOP_K, search_params={"params": {"ef": 64}})
    gc.collect()
    after = proc_memory()
    c.close()
    return {"before": before, "after": after, "above_baseline": after["VmRSS"] - before["VmRSS"]}


JOBS: dict[str, Callable[[dict], dict]] = {
    "sparse_scipy": job_sparse_scipy, "sparse_keeldb": job_sparse_keeldb, "sparse_lite": job_sparse_lite,
    "binary_faiss": job_binary_faiss, "binary_keeldb": job_binary_keeldb,
    "f16_faiss": job_f16_faiss, "f16_keeldb": job_f16_keeldb, "memory": job_memory,
}  # fmt: skip


def worker_main(argv: Sequence[str]) -> int:
    return job_worker(argv, JOBS)


def run_job(workdir: Path, tag: str, job: dict, timeout: float, log: Callable[[str], None]) -> dict:
    return _workers.run_job(__file__, workdir, tag, job, timeout, log)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _qps(entry: dict, *path: str) -> float | None:
    for key in path:
        if not isinstance(entry, dict) or key not in entry:
            return None
        entry = entry[key]
    return entry if isinstance(entry, int | float) else None


def run_benchmarks(cfg: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> dict:
    paths = make_data(cfg, workdir, log)
    common = {"min_time": cfg.min_time}
    report: dict[str, Any] = {
        "config": _cli.settings(cfg, "sections", "systems", "sparse_rows", "sparse_nnz", "sparse_vocab", "query_nnz",
                                "dense_rows", "dim", "binary_dim", "queries", "ef", "hnsw_m", "ef_construction",
                                "min_time", "lite_budget", "seed"),
        "sections": {},
    }  # fmt: skip

    def job(tag: str, task: str, **kw: Any) -> dict:
        return run_job(workdir, tag, {"task": task, **common, **kw}, cfg.child_timeout, log)

    if "sparse" in cfg.sections:
        truth = str(workdir / "sparse_truth.npz")
        systems: dict[str, dict] = {}
        data = {"data": paths["sparse.npz"], "queries": paths["sparse_q.npz"], "truth": truth}
        systems["scipy"] = job("sparse-scipy", "sparse_scipy", **data)
        if not systems["scipy"].get("ok"):
            raise RuntimeError(f"the brute force failed, nothing to check against: {systems['scipy'].get('error')}")
        if "keeldb" in cfg.systems:
            systems["keeldb"] = job("sparse-keeldb", "sparse_keeldb", path=str(workdir / "keeldb-sparse"), algos=list(SPARSE_ALGOS), **data)
        if "milvus-lite" in cfg.systems:
            systems["milvus-lite"] = job("sparse-lite", "sparse_lite", path=str(workdir / "lite-sparse"), batch=cfg.lite_batch,
                                         budget=cfg.lite_budget, memory_gb=cfg.lite_memory_gb, **data)  # fmt: skip
        best = max((_qps(systems.get("keeldb", {}), "algos", a, "search", "qps") or 0) for a in SPARSE_ALGOS) or None
        lite = _qps(systems.get("milvus-lite", {}), "search", "qps")
        ratio = _ratio(best, lite)
        exact = [systems["keeldb"]["algos"][a]["exact_share"] for a in SPARSE_ALGOS] if systems.get("keeldb", {}).get("ok") else []
        report["sections"]["sparse"] = {
            "systems": systems,
            "ratios": {"keeldb_over_milvus_lite": ratio, "keeldb_over_scipy": _ratio(best, _qps(systems["scipy"], "search", "qps"))},
            "targets": {
                "vs_milvus_lite": _report.target(f">= {LITE_QPS_TARGET:g}x Milvus Lite QPS", ratio, LITE_QPS_TARGET),
                "exact": _report.target("exact top-k (share of queries)", min(exact) if exact else None, 1.0),
            },
        }
    if "binary" in cfg.sections:
        truth = str(workdir / "binary_truth.npy")
        data = {"data": paths["bin.npy"], "queries": paths["bin_q.npy"], "truth": truth}
        raw_index = str(workdir / "binary.faissbin")
        systems = {"faiss": job("binary-faiss", "binary_faiss", index_out=raw_index, **data)}
        if "keeldb" in cfg.systems:
            systems["keeldb"] = job("binary-keeldb", "binary_keeldb", path=str(workdir / "keeldb-binary"), faiss_index=raw_index, **data)
        # The ratio is of the paired timings (same process, alternating rounds: ``paired``).
        ratios = {m: _ratio(_qps(systems.get("keeldb", {}), m, "qps"), _qps(systems.get("keeldb", {}), "faiss_paired", m, "qps"))
                  for m in ("nq1", "nq100")}  # fmt: skip
        report["sections"]["binary"] = {
            "systems": systems, "ratios": ratios,
            "targets": {m: _report.target(f">= {FAISS_QPS_TARGET:g}x FAISS QPS", r, FAISS_QPS_TARGET) for m, r in ratios.items()},
        }  # fmt: skip
    if "float16" in cfg.sections:
        truth = str(workdir / "f16_truth.npy")
        hnsw = {"m": cfg.hnsw_m, "ef_construction": cfg.ef_construction, "ef": cfg.ef}
        data = {"data": paths["f16.npy"], "queries": paths["f16_q.npy"], "truth": truth}
        raw_index = str(workdir / "f16.faiss")
        systems = {"faiss": job("f16-faiss", "f16_faiss", index_out=raw_index, **data, **hnsw)}
        flat_path, hnsw_path = str(workdir / "keeldb-f16-flat"), str(workdir / "keeldb-f16-hnsw")
        if "keeldb" in cfg.systems:
            systems["keeldb"] = job("f16-keeldb", "f16_keeldb", path=hnsw_path, flat_path=flat_path, faiss_index=raw_index,
                                    **data, **hnsw)  # fmt: skip
        ratios: dict[str, Any] = {}
        for ef in cfg.ef:
            for m in ("nq1", "nq100"):
                ratios[f"ef{ef}_{m}"] = _ratio(_qps(systems.get("keeldb", {}), "sweep", str(ef), m, "qps"),
                                               _qps(systems.get("keeldb", {}), "faiss_paired", str(ef), m, "qps"))  # fmt: skip
        raw = cfg.dense_rows * cfg.dim * 2
        memory: dict[str, Any] = {"raw_bytes": raw}
        if systems.get("keeldb", {}).get("ok"):
            for name, path in (("FLAT", flat_path), ("HNSW", hnsw_path)):
                mem = job(f"memory-{name}", "memory", path=path, queries=paths["f16_q.npy"], searches=cfg.memory_searches)
                mem["x_raw"] = mem["above_baseline"] / raw if mem.get("ok") else None
                memory[name] = mem
        report["sections"]["float16"] = {
            "systems": systems, "ratios": ratios, "memory": memory,
            "targets": {
                **{k: _report.target(f">= {FAISS_QPS_TARGET:g}x FAISS QPS", r, FAISS_QPS_TARGET) for k, r in ratios.items()},
                "memory_flat": _report.target(f"<= {MEMORY_TARGET:g}x raw bytes", memory.get("FLAT", {}).get("x_raw"),
                                              MEMORY_TARGET + 1e-12, higher=False),
            },
        }  # fmt: skip
    report["versions"] = {"faiss": package_version("faiss-cpu"), "scipy": package_version("scipy")}
    return report


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _n(v: float | None, fmt: str = ",.1f") -> str:
    return "-" if v is None else format(v, fmt)


def print_report(report: dict) -> None:
    from rich.table import Table

    out = _report.console(160)
    cfg = report["config"]
    notes = _report.Footnotes()
    secs = report["sections"]
    if "sparse" in secs:
        s = secs["sparse"]
        t = Table(title=f"sparse: {cfg['sparse_rows']:,} rows x ~{cfg['sparse_nnz']} nonzeros over {cfg['sparse_vocab']:,} "
                        f"dimensions, {cfg['queries']} queries of ~{cfg['query_nnz']}, top-{TOP_K}, IP", title_justify="left")  # fmt: skip
        for col in ("system", "insert s", "index s", "QPS nq=1", "p50 ms", "exact top-k"):
            t.add_column(col, justify="left" if col == "system" else "right")
        sysd = s["systems"]
        k = sysd.get("keeldb")
        if k is not None:
            if not k.get("ok"):
                t.add_row("keeldb", notes.see(f"keeldb: {k.get('error')}"), "", "", "", "")
            for algo, a in (k.get("algos") or {}).items():
                t.add_row(f"keeldb SPARSE_INVERTED_INDEX {algo}", _n(k["insert_s"] + k["flush_s"]), _n(a["build_s"]),
                          _n(a["search"]["qps"]), _n(a["search"]["p50_ms"], ".2f"), f"{a['exact_queries']}/{a['checked_queries']}")  # fmt: skip
        lite = sysd.get("milvus-lite")
        if lite is not None:
            if lite.get("ok"):
                t.add_row(f"Milvus Lite {lite.get('version', '')} SPARSE_INVERTED_INDEX", _n(lite["insert_s"]), _n(lite["build_s"]),
                          _n(lite["search"]["qps"], ".3f"), _n(lite["search"]["p50_ms"], ",.0f"),
                          f"{lite['exact_queries']}/{lite['checked_queries']}")  # fmt: skip
            else:
                t.add_row("Milvus Lite", notes.see(f"Milvus Lite: {lite.get('error')}"), "", "", "", "")
        sc = sysd["scipy"]
        t.add_row("scipy X @ q.T (brute force)", "", "", _n(sc["search"]["qps"]), _n(sc["search"]["p50_ms"], ".2f"), "the reference")
        out.print(t)
        r = s["ratios"]
        out.print(f"keeldb (best algorithm) / Milvus Lite QPS: {_report.times(r['keeldb_over_milvus_lite'])} "
                  f"({_report.target_cell(s['targets']['vs_milvus_lite'])}); keeldb / scipy brute force: "
                  f"{_report.times(r['keeldb_over_scipy'])}; {_report.target_cell(s['targets']['exact'])}", highlight=False)  # fmt: skip
    if "binary" in secs:
        s = secs["binary"]
        t = Table(title=f"binary: {cfg['dense_rows']:,} rows x {cfg['binary_dim']} bits, BIN_FLAT / IndexBinaryFlat, HAMMING, "
                        f"top-{TOP_K}", title_justify="left")  # fmt: skip
        for col in ("system", "build s", "QPS nq=1", f"QPS nq={min(BATCH_NQ, cfg['queries'])}", "distances = FAISS's"):
            t.add_column(col, justify="left" if col == "system" else "right")
        for key, e in s["systems"].items():
            if not e.get("ok"):
                t.add_row(SYSTEMS[key], notes.see(f"{SYSTEMS[key]}: {e.get('error')}"), "", "", "")
                continue
            same = "" if key == "faiss" else ("yes" if e.get("distances_equal_faiss") else "NO")
            t.add_row(SYSTEMS[key] + (" (alone)" if key == "faiss" else ""), _n(e["build_s"]), _n(e["nq1"]["qps"]),
                      _n(e["nq100"]["qps"]), same)  # fmt: skip
        beside = s["systems"].get("keeldb", {}).get("faiss_paired")
        if beside:
            t.add_row("raw FAISS (beside keeldb)", "", _n(beside["nq1"]["qps"]), _n(beside["nq100"]["qps"]), "")
        t.add_row("keeldb / FAISS", "", _report.times(s["ratios"]["nq1"]), _report.times(s["ratios"]["nq100"]),
                  f"{_report.target_cell(s['targets']['nq1'])}; {_report.target_cell(s['targets']['nq100'])}")  # fmt: skip
        out.print(t)
    if "float16" in secs:
        s = secs["float16"]
        sysd = s["systems"]
        t = Table(title=f"float16: {cfg['dense_rows']:,} x {cfg['dim']}-d, HNSW M={cfg['hnsw_m']} efConstruction="
                        f"{cfg['ef_construction']} over SQfp16 codes, L2, recall@{TOP_K}", title_justify="left")  # fmt: skip
        t.add_column("ef")
        for key in ("keeldb", "faiss"):
            for col in ("recall", "QPS nq=1", f"QPS nq={min(BATCH_NQ, cfg['queries'])}"):
                t.add_column(f"{SYSTEMS[key]}\n{col}", justify="right")
        t.add_column("keeldb/FAISS\nnq=1", justify="right")
        t.add_column(f"keeldb/FAISS\nnq={min(BATCH_NQ, cfg['queries'])}", justify="right")
        builds = ["build s"]
        for key in ("keeldb", "faiss"):
            e = sysd.get(key, {})
            builds += [notes.see(f"{SYSTEMS[key]}: {e.get('error')}") if not e.get("ok") else _n(e["build_s"]), "", ""]
        t.add_row(*builds, "", "", end_section=True)
        for ef in cfg["ef"]:
            row = [str(ef)]
            for key in ("keeldb", "faiss"):
                p = (sysd.get(key, {}).get("sweep") or {}).get(str(ef))
                beside = (sysd.get("keeldb", {}).get("faiss_paired") or {}).get(str(ef))
                if key == "faiss" and p is not None and beside is not None:
                    p = {m: {**p[m], "qps": beside[m]["qps"]} for m in ("nq1", "nq100")}
                row += ["", "", ""] if p is None else [f"{p['nq1']['recall']:.3f}", _n(p["nq1"]["qps"]), _n(p["nq100"]["qps"])]
            row += [_report.times(s["ratios"][f"ef{ef}_nq1"]), _report.times(s["ratios"][f"ef{ef}_nq100"])]
            t.add_row(*row)
        out.print(t)
        out.print("raw FAISS's QPS above: timed beside keeldb, in one process, in alternating rounds (its recall: "
                  "from its own run, the same index)", highlight=False)  # fmt: skip
        mem = s["memory"]
        for name in ("FLAT", "HNSW"):
            m = mem.get(name)
            if m is None:
                continue
            if not m.get("ok"):
                out.print(f"memory {name}: {notes.see(str(m.get('error')))}")
                continue
            tgt = f" ({_report.target_cell(s['targets']['memory_flat'])})" if name == "FLAT" else " (the vectors' codes plus HNSW's graph links)"
            out.print(f"memory, {name} on float16: {m['above_baseline'] / 2**20:,.0f} MiB resident above the baseline for "
                      f"{mem['raw_bytes'] / 2**20:,.0f} MiB of raw float16 vectors = {m['x_raw']:.2f}x{tgt}", highlight=False)  # fmt: skip
    notes.print(out)
    _report.print_machine(out, report["machine"])
    out.print(f"command: {report['command']}", highlight=False)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Sparse, binary and float16 vectors: keeldb vs Milvus Lite, raw FAISS "
                                            "and scipy on the same data in the same run.")  # fmt: skip
    texts = {
        "sparse_rows": "sparse rows", "sparse_nnz": "nonzeros a sparse row", "sparse_vocab": "sparse dimensions used",
        "query_nnz": "nonzeros a sparse query", "dense_rows": "binary and float16 rows", "dim": "float16 dimension",
        "binary_dim": "binary dimension (bits)", "queries": "queries per section", "min_time": "seconds of timed calls per figure",
        "lite_budget": "seconds Milvus Lite may spend searching", "memory_searches": "searches before reading memory",
    }  # fmt: skip
    _cli.add_sizes(p, FULL, texts)
    p.add_argument("--ef", type=str, help=f"HNSW ef values, comma-separated (default {FULL['ef']})")
    p.add_argument("--hnsw-m", type=int, default=16)
    p.add_argument("--ef-construction", type=int, default=200)
    p.add_argument("--lite-batch", type=int, default=10_000, help="rows per Milvus Lite insert")
    p.add_argument("--lite-memory-gb", type=float, default=12.0, help="heap cap of the Milvus Lite child (default 12)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"from {', '.join(SECTIONS)}")
    p.add_argument("--systems", default="keeldb,milvus-lite,faiss,scipy", help=f"from {', '.join(SYSTEMS)}")
    _cli.add_quick_option(p)
    _cli.add_run_options(p, DEFAULT_SEED, "data and collections")
    _cli.add_child_timeout(p, 14400.0)
    a = p.parse_args(argv)
    _cli.fill_defaults(a, QUICK, FULL)
    a.ef = sorted({int(x) for x in str(a.ef).split(",") if x.strip()})
    a.sections = _cli.names(p, "--sections", a.sections, SECTIONS)
    a.systems = _cli.names(p, "--systems", a.systems, list(SYSTEMS))
    _cli.at_least_one(p, a, ("sparse_rows", "sparse_nnz", "query_nnz", "dense_rows", "dim", "queries"))
    if a.binary_dim % 8:
        p.error("--binary-dim must be a multiple of 8")
    return a


def main(argv: Sequence[str] | None = None) -> int:
    return _cli.main(argv, parse_args, "keeldb-vectors-", run_benchmarks, print_report, worker_main=worker_main)


if __name__ == "__main__":
    _cli.run_script(main, worker_main)
