#!/usr/bin/env python
"""Full-text search (the BM25 function): keeldb against Milvus Lite, same run, same data.

The data is generated once (fixed seed) into the work directory and read by every system,
each system in its own child process (``_workers``):

* **documents** -- ``--docs`` [1,000,000] short texts of 8-30 words (uniform) drawn from a
  ``--vocab`` [50,000]-word vocabulary with Zipf frequencies (s = 1; the commonest word is
  in ~80% of the documents, half the words in fewer than 20). The words are made-up
  pronounceable strings (consonant-vowel syllables), the short ones the frequent ones, as in
  real text; the standard analyzer turns each into one token. Each document also has a
  ``--dim`` [64]-d float vector (clustered), for the hybrid search.
* **queries** -- ``--queries`` [200] texts of 2-5 words drawn from the same distribution
  (common words included: the hard case for pruning), each with a dense query vector.

Both systems get one collection: ``id`` INT64, ``text`` VARCHAR with ``enable_analyzer``,
``sparse`` SPARSE_FLOAT_VECTOR = BM25(text) (a schema Function), ``dense`` FLOAT_VECTOR;
indexes SPARSE_INVERTED_INDEX (BM25, k1 = 1.2, b = 0.75) and IVF_FLAT (L2, ``--nlist``).

Sections:

* **bm25** -- ``search(data=[text], anns_field="sparse", limit=10)``, QPS at nq=1 and
  nq=``--batch-nq`` [100]. Target (issue 15): keeldb >= 10x Milvus Lite's QPS at equal
  top-10. Every answer is checked against the exact top-10 computed here with numpy from
  the word ids (Milvus's formula and token hash, N / df / avgdl over the whole collection,
  ties by id): keeldb must return it on every query. Milvus Lite computes IDF and avgdl per
  segment, so its scores differ slightly when the rows sit in several segments and its
  top-10 can differ where scores are close: its overlap with the exact top-10 and its score
  deviation are reported, not asserted.
* **hybrid** -- ``hybrid_search([AnnSearchRequest(dense, nprobe), AnnSearchRequest(text,
  BM25)], RRFRanker(60), limit=10)``, each request ``--hybrid-limit`` [20] deep, QPS at nq=1
  and nq=``--batch-nq``; the two systems' top-10 overlap is shown (IVF is approximate and
  trained with different samples, so no exact answer exists to check).
* **insert** -- rows/s of ``insert`` (row dicts built before the timer, ``--batch``-row
  calls) of ``--insert-rows`` [100,000] rows (id, text, the dense vector as a list) into a
  fresh collection with the BM25 function (its sparse output derived from the text) and
  without it (the same fields, no function, no sparse field), each system; then ``flush``
  on its own. The ratio on / off is what deriving the vectors costs.

QPS = queries answered / summed call time, each call timed alone, after one untimed call;
the query set repeats until ``--min-time`` seconds were timed. Milvus Lite searches for at
most ``--lite-budget`` seconds per figure (at least ``MIN_LITE_QUERIES`` queries) and
inserts for at most ``--lite-build-budget`` seconds: if it stops short, what it reached is
reported and its figures are over fewer rows (the report says so). Targets are shown as
met / not met, never asserted.

Usage::

    PYTHONPATH=src python benchmarks/bench_text.py --workdir /tmp/bt --out text.json
    PYTHONPATH=src python benchmarks/bench_text.py --quick      # toy sizes (the smoke test)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import _cli
import _report
import _workers
import numpy as np
from _common import TOP_K, package_version, time_calls
from _workers import job_worker, progress

DEFAULT_SEED = 20261215
SECTIONS = ("bm25", "hybrid", "insert")
SYSTEMS = {"keeldb": "keeldb", "milvus-lite": "Milvus Lite"}
MIN_LITE_QUERIES = 3
LITE_QPS_TARGET = 10.0
K1, B = 1.2, 0.75
RRF_K = 60
COLLECTION = "bench"
CHUNK = 50_000
FULL = {"docs": 1_000_000, "vocab": 50_000, "queries": 200, "dim": 64, "nlist": 1024, "nprobe": 16,
        "hybrid_limit": 20, "batch_nq": 100, "insert_rows": 100_000, "batch": 5000, "min_time": 3.0,
        "lite_budget": 120.0, "lite_build_budget": 3600.0}  # fmt: skip
QUICK = {"docs": 3000, "vocab": 2000, "queries": 20, "dim": 16, "nlist": 16, "nprobe": 4,
         "hybrid_limit": 20, "batch_nq": 10, "insert_rows": 2000, "batch": 500, "min_time": 0.0,
         "lite_budget": 10.0, "lite_build_budget": 120.0}  # fmt: skip
MIN_WORDS, MAX_WORDS = 8, 30
MIN_QUERY_WORDS, MAX_QUERY_WORDS = 2, 5


# --------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------

ONSETS = ("", "b", "c", "d", "f", "g", "h", "j", "k", "l", "m", "n", "p", "r", "s", "t", "v", "w", "z",
          "br", "ch", "cl", "dr", "fl", "gr", "pl", "sh", "st", "th", "tr")  # fmt: skip
VOWELS = ("a", "e", "i", "o", "u", "ai", "ea", "ee", "io", "ou", "y")
CODAS = ("", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ng", "ck")


def vocabulary(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct made-up words of 1-5 syllables, shortest first (rank 1 = the most
    frequent word, as short words are in real text)."""
    words: list[str] = []
    seen: set[str] = set()
    while len(words) < n:
        syllables = 1 + min(int(rng.geometric(0.45)), 4)
        w = "".join(ONSETS[rng.integers(len(ONSETS))] + VOWELS[rng.integers(len(VOWELS))] for _ in range(syllables))
        w += CODAS[rng.integers(len(CODAS))]
        if w not in seen:
            seen.add(w)
            words.append(w)
    return sorted(words, key=lambda w: (len(w), w))


def zipf_words(rng: np.random.Generator, vocab: int, lengths: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Word ids of texts of the given lengths, Zipf (s = 1) over the vocabulary: (indptr, ids)."""
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    indptr = np.zeros(len(lengths) + 1, dtype=np.int64)
    np.cumsum(lengths, out=indptr[1:])
    ids = np.empty(int(indptr[-1]), dtype=np.int32)
    for lo in range(0, len(ids), 4 * CHUNK):
        n = min(4 * CHUNK, len(ids) - lo)
        ids[lo : lo + n] = rng.choice(vocab, size=n, p=p)
    return indptr, ids


def texts_of(words: list[str], indptr: np.ndarray, ids: np.ndarray, lo: int = 0, hi: int | None = None) -> list[str]:
    hi = len(indptr) - 1 if hi is None else hi
    w = np.asarray(words, dtype=object)
    flat = w[ids[int(indptr[lo]) : int(indptr[hi])]].tolist()
    bounds = (indptr[lo : hi + 1] - indptr[lo]).tolist()
    return [" ".join(flat[a:b]) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def clustered(rng: np.random.Generator, rows: int, dim: int, clusters: int) -> np.ndarray:
    centers = rng.normal(0, 4, (clusters, dim)).astype(np.float32)
    out = np.empty((rows, dim), dtype=np.float32)
    for lo in range(0, rows, CHUNK):
        n = min(CHUNK, rows - lo)
        out[lo : lo + n] = centers[rng.integers(0, clusters, n)] + rng.normal(0, 1, (n, dim))
    return out


def token_hash(word: str) -> int:
    """Milvus's token hash (``HashString2LessUint32``): CRC-32 of the first 100 bytes,
    modulo 2^32 - 1 -- written out here so the exact answer does not use keeldb's code."""
    return zlib.crc32(word.encode("utf-8")[:100]) % 0xFFFFFFFF


def exact_bm25(words: list[str], docs: tuple[np.ndarray, np.ndarray], queries: tuple[np.ndarray, np.ndarray],
               k: int) -> dict[str, np.ndarray]:  # fmt: skip
    """The exact top-k of every query (Milvus's BM25 with collection-wide N, df, avgdl; words
    with the same hash are one term, as in Milvus; ties by id), from the word ids."""
    import scipy.sparse as sp

    _, dim_of = np.unique(np.array([token_hash(w) for w in words], dtype=np.int64), return_inverse=True)
    indptr, ids = docs
    n = len(indptr) - 1
    x = sp.csr_matrix((np.ones(len(ids)), dim_of[ids], indptr), shape=(n, int(dim_of.max()) + 1))
    x.sum_duplicates()  # a word twice in a text: its count
    dl = np.asarray(x.sum(axis=1)).ravel()
    avgdl = dl.mean()
    csc = x.tocsc()
    df = np.diff(csc.indptr)
    idf = np.log1p((n - df + 0.5) / (df + 0.5))
    norm = K1 * (1 - B + B * dl / avgdl)
    qptr, qids = queries
    out_ids = np.full((len(qptr) - 1, k), -1, dtype=np.int64)
    out_scores = np.zeros((len(qptr) - 1, k), dtype=np.float64)
    for qi in range(len(qptr) - 1):
        dims, qtf = np.unique(dim_of[qids[qptr[qi] : qptr[qi + 1]]], return_counts=True)
        acc = np.zeros(n)
        for d, c in zip(dims.tolist(), qtf.tolist(), strict=True):
            rows, tf = csc.indices[csc.indptr[d] : csc.indptr[d + 1]], csc.data[csc.indptr[d] : csc.indptr[d + 1]]
            acc[rows] += c * idf[d] * tf * (K1 + 1) / (tf + norm[rows])
        cand = np.flatnonzero(acc > 0)
        if len(cand) > k:
            cut = np.partition(acc[cand], len(cand) - k)[len(cand) - k]
            cand = cand[acc[cand] >= cut * (1 - 1e-12)]
        top = cand[np.lexsort((cand, -np.round(acc[cand], 9)))][:k]
        out_ids[qi, : len(top)], out_scores[qi, : len(top)] = top, acc[top]
    return {"ids": out_ids, "scores": out_scores}


def make_data(cfg: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> dict[str, str]:
    rng = np.random.default_rng(cfg.seed)
    t0 = time.perf_counter()
    words = vocabulary(rng, cfg.vocab)
    docs = zipf_words(rng, cfg.vocab, rng.integers(MIN_WORDS, MAX_WORDS + 1, cfg.docs))
    queries = zipf_words(rng, cfg.vocab, rng.integers(MIN_QUERY_WORDS, MAX_QUERY_WORDS + 1, cfg.queries))
    clusters = max(1, min(1000, cfg.docs // 100))
    dense = clustered(rng, cfg.docs + cfg.queries, cfg.dim, clusters)
    paths = {name: str(workdir / name) for name in ("words.json", "docs.npz", "queries.npz", "dense.npy", "dense_q.npy", "truth.npz")}
    Path(paths["words.json"]).write_text(json.dumps(words))
    np.savez(paths["docs.npz"], indptr=docs[0], ids=docs[1])
    np.savez(paths["queries.npz"], indptr=queries[0], ids=queries[1])
    np.save(paths["dense.npy"], dense[: cfg.docs])
    np.save(paths["dense_q.npy"], dense[cfg.docs :])
    log(f"data: {cfg.docs:,} documents ({len(docs[1]):,} words), {cfg.queries} queries in {time.perf_counter() - t0:.0f}s")
    if "bm25" in cfg.sections:
        t0 = time.perf_counter()
        np.savez(paths["truth.npz"], **exact_bm25(words, docs, queries, TOP_K))
        log(f"exact BM25 top-{TOP_K}: {time.perf_counter() - t0:.0f}s")
    return paths


def data_stats(paths: dict[str, str]) -> dict[str, Any]:
    d = np.load(paths["docs.npz"])
    ids = d["ids"]
    n = len(d["indptr"]) - 1
    present = np.zeros(n, dtype=bool)
    commonest = np.flatnonzero(ids == 0)
    present[np.searchsorted(d["indptr"], commonest, side="right") - 1] = True
    q = np.load(paths["queries.npz"])
    return {"words": int(len(ids)), "mean_words": len(ids) / n if n else 0.0,
            "commonest_word_doc_share": float(present.mean()) if n else 0.0,
            "query_words": np.diff(q["indptr"]).tolist()}  # fmt: skip


# --------------------------------------------------------------------------------------
# Children
# --------------------------------------------------------------------------------------


def _load(job: dict) -> dict[str, Any]:
    words = json.loads(Path(job["words"]).read_text())
    d, q = np.load(job["docs"]), np.load(job["queries"])
    return {"words": words, "docs": (d["indptr"], d["ids"]), "queries": texts_of(words, q["indptr"], q["ids"])}


def _open(system: str, path: str, memory_gb: float | None) -> Any:
    shutil.rmtree(path, ignore_errors=True)
    if system == "keeldb":
        import keeldb

        # One flush at the end: one segment as big as the data, as in bench_ann.
        return keeldb.Client(path, auto_flush_bytes=1 << 40)
    import resource

    from pymilvus import MilvusClient

    if memory_gb:  # Milvus Lite keeps its postings as Python objects: cap this child's heap
        cap = int(memory_gb * 2**30)
        resource.setrlimit(resource.RLIMIT_DATA, (cap, cap))
    os.makedirs(path)
    return MilvusClient(str(Path(path) / "lite.db"))


def _schema(c: Any, *, bm25: bool, dim: int | None) -> Any:
    from pymilvus import DataType, Function, FunctionType

    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=2000, enable_analyzer=True)
    if bm25:
        s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                                output_field_names=["sparse"]))  # fmt: skip
    if dim:
        s.add_field("dense", DataType.FLOAT_VECTOR, dim=dim)
    return s


def _index_params(c: Any, system: str, *, bm25: bool, nlist: int | None) -> Any:
    ip = c.prepare_index_params()
    # Milvus Lite 3.2 reads build parameters from a nested "params" key only (pymilvus 3
    # sends plain ones flat: see bench_ann); keeldb takes Milvus's flat form.
    def params(p: dict[str, Any]) -> dict[str, Any]:
        return {"params": p} if system == "milvus-lite" else p

    if bm25:
        ip.add_index("sparse", "SPARSE_INVERTED_INDEX", metric_type="BM25", params=params({"bm25_k1": K1, "bm25_b": B}))
    if nlist:
        ip.add_index("dense", "IVF_FLAT", metric_type="L2", params=params({"nlist": nlist}))
    return ip


def _segments(c: Any, system: str, path: str) -> int | None:
    """How many segments hold the rows: BM25 statistics are per segment in Milvus Lite, so
    its scores depend on it. keeldb: the snapshot's non-empty segments; Milvus Lite 3.2:
    its data files (None if its layout is not the one known here)."""
    if system == "keeldb":
        return sum(1 for v in c.snapshot(COLLECTION).views if v.num_rows)
    found = list(Path(path).glob(f"lite.db/collections/{COLLECTION}/partitions/*/data/*.parquet"))
    return len(found) or None


def _hits(res: list[list[dict]]) -> list[tuple[list[int], list[float]]]:
    return [([int(h["id"]) for h in r], [float(h["distance"]) for h in r]) for r in res]


def _timed(search: Callable[[Any], Any], batches: Sequence[Any], min_s: float, budget_s: float | None = None,
           min_queries: int = 1) -> tuple[dict[str, Any], list[Any]]:  # fmt: skip
    search(batches[0])  # warm-up, untimed
    t = time_calls(search, batches, min_s=min_s, budget_s=budget_s, min_queries=min_queries, keep=_hits)
    figs = {"qps": t.qps, "queries": t.answered, "calls": len(t.latencies),
            "p50_ms": float(np.median(t.latencies) * 1e3), "p99_ms": float(np.percentile(t.latencies, 99) * 1e3)}  # fmt: skip
    return figs, [h for a in t.first for h in a]


def job_search(job: dict) -> dict:
    """Build the collection (text, BM25, dense), then time BM25 and hybrid searches."""
    from pymilvus import AnnSearchRequest, RRFRanker

    system, lite = job["system"], job["system"] == "milvus-lite"
    data = _load(job)
    dense, dense_q = np.load(job["dense"], mmap_mode="r"), np.load(job["dense_q"])
    indptr, ids = data["docs"]
    n = len(indptr) - 1
    c = _open(system, job["path"], job.get("memory_gb"))
    c.create_collection(COLLECTION, schema=_schema(c, bm25=True, dim=dense.shape[1]),
                        index_params=_index_params(c, system, bm25=True, nlist=job["nlist"]))  # fmt: skip
    out: dict[str, Any] = {"system": system}
    t0 = time.perf_counter()
    deadline = t0 + job["build_budget"] if lite else None
    done = 0
    for lo in range(0, n, job["chunk"]):
        if deadline is not None and time.perf_counter() > deadline:
            break
        hi = min(n, lo + job["chunk"])
        texts = texts_of(data["words"], indptr, ids, lo, hi)
        vecs = np.asarray(dense[lo:hi])
        if lite:
            c.insert(COLLECTION, [{"id": lo + i, "text": t, "dense": vecs[i]} for i, t in enumerate(texts)])
        else:
            c.insert_columns(COLLECTION, {"id": np.arange(lo, hi), "text": texts, "dense": vecs}, hi - lo)
        done = hi
        if (lo // job["chunk"]) % 10 == 9:
            progress(f"{system}: {done:,} rows in {time.perf_counter() - t0:.0f}s")
    out["build"] = {"rows": done, "insert_s": time.perf_counter() - t0, "complete": done == n}
    t0 = time.perf_counter()
    c.flush(COLLECTION)
    if lite:
        c.load_collection(COLLECTION)
    else:
        c.wait_for_index(COLLECTION)
    out["build"]["index_s"] = time.perf_counter() - t0
    out["build"]["segments"] = _segments(c, system, job["path"])
    queries = data["queries"]
    t0 = time.perf_counter()
    c.search(COLLECTION, queries[:1], anns_field="sparse", limit=TOP_K, output_fields=["id"],
             search_params={"metric_type": "BM25"})  # fmt: skip
    out["build"]["first_search_s"] = time.perf_counter() - t0  # Milvus Lite builds its postings here
    progress(f"{system}: {done:,} rows, insert {out['build']['insert_s']:.0f}s, index {out['build']['index_s']:.0f}s, "
             f"first search {out['build']['first_search_s']:.1f}s")  # fmt: skip
    budget = job["lite_budget"] if lite else None
    min_q = MIN_LITE_QUERIES if lite else 1
    bnq = job["batch_nq"]
    if "bm25" in job["sections"]:
        def bm25(b: list[str]) -> Any:
            return c.search(COLLECTION, b, anns_field="sparse", limit=TOP_K, output_fields=["id"],
                            search_params={"metric_type": "BM25"})  # fmt: skip

        nq1, answers = _timed(bm25, [[q] for q in queries], job["min_time"], budget, min_q)
        batch, _ = _timed(bm25, [queries[lo : lo + bnq] for lo in range(0, len(queries), bnq)], job["min_time"], budget, min_q)
        out["bm25"] = {"nq1": nq1, "batch": batch, "answers": answers}
        progress(f"{system} BM25: {nq1['qps']:.2f} QPS nq=1, {batch['qps']:.2f} QPS nq={bnq}")
    if "hybrid" in job["sections"]:
        def hybrid(b: list[int]) -> Any:
            reqs = [AnnSearchRequest(data=dense_q[b], anns_field="dense", limit=job["hybrid_limit"],
                                     param={"metric_type": "L2", "params": {"nprobe": job["nprobe"]}}),
                    AnnSearchRequest(data=[queries[i] for i in b], anns_field="sparse", limit=job["hybrid_limit"],
                                     param={"metric_type": "BM25"})]  # fmt: skip
            return c.hybrid_search(COLLECTION, reqs, RRFRanker(RRF_K), limit=TOP_K, output_fields=["id"])

        idx = list(range(len(queries)))
        nq1, answers = _timed(hybrid, [[i] for i in idx], job["min_time"], budget, min_q)
        batch, _ = _timed(hybrid, [idx[lo : lo + bnq] for lo in range(0, len(idx), bnq)], job["min_time"], budget, min_q)
        out["hybrid"] = {"nq1": nq1, "batch": batch, "answers": answers}
        progress(f"{system} hybrid: {nq1['qps']:.2f} QPS nq=1, {batch['qps']:.2f} QPS nq={bnq}")
    out["version"] = package_version("milvus-lite") if lite else package_version("keeldb")
    return out


def job_insert(job: dict) -> dict:
    """Rows/s of ``insert`` into a fresh collection with or without the BM25 function."""
    system, bm25 = job["system"], job["bm25"]
    data = _load(job)
    indptr, ids = data["docs"]
    n = min(job["rows"], len(indptr) - 1)
    texts = texts_of(data["words"], indptr, ids, 0, n)
    dense = np.load(job["dense"], mmap_mode="r")
    vecs = np.asarray(dense[:n]).tolist()  # lists, as an application hands them over
    batches = [[{"id": i, "text": texts[i], "dense": vecs[i]} for i in range(lo, min(n, lo + job["batch"]))]
               for lo in range(0, n, job["batch"])]  # fmt: skip
    c = _open(system, job["path"], job.get("memory_gb"))
    kw: dict[str, Any] = {"schema": _schema(c, bm25=bm25, dim=dense.shape[1])}
    if bm25:
        kw["index_params"] = _index_params(c, system, bm25=True, nlist=None)
    c.create_collection(COLLECTION, **kw)
    per_call = []
    for rows in batches:
        t0 = time.perf_counter()
        c.insert(COLLECTION, rows)
        per_call.append(time.perf_counter() - t0)
    insert_s = sum(per_call)
    t0 = time.perf_counter()
    c.flush(COLLECTION)
    flush_s = time.perf_counter() - t0
    progress(f"{system} insert, BM25 {'on' if bm25 else 'off'}: {n / insert_s:,.0f} rows/s")
    return {"rows": n, "insert_s": insert_s, "rows_per_s": n / insert_s, "flush_s": flush_s,
            "p50_call_ms": float(np.median(per_call) * 1e3)}  # fmt: skip


JOBS: dict[str, Callable[[dict], dict]] = {"search": job_search, "insert": job_insert}


def worker_main(argv: Sequence[str]) -> int:
    return job_worker(argv, JOBS)


def run_job(workdir: Path, tag: str, job: dict, timeout: float, log: Callable[[str], None]) -> dict:
    return _workers.run_job(__file__, workdir, tag, job, timeout, log)


def _ratio(a: float | None, b: float | None) -> float | None:
    return a / b if a and b else None


def _get(entry: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(entry, dict) or key not in entry:
            return None
        entry = entry[key]
    return entry


def agreement(answers: list[list[Any]], truth: dict[str, np.ndarray], *, negated: bool = False) -> dict[str, Any]:
    """Answers against the exact top-k: queries answered exactly (the same ids in the same
    order, each score within 1e-6 relative), the mean overlap of the id sets, and how far
    the scores of the ids both hold are from the exact ones. ``negated``: the system
    reports a score as its negation (Milvus Lite 3.2's BM25 distances are -score)."""
    exact = 0
    overlaps, rel = [], []
    for qi, (ids, scores) in enumerate(answers):
        want = truth["ids"][qi][truth["ids"][qi] >= 0]
        want_s = truth["scores"][qi][: len(want)]
        got_s = -np.asarray(scores, dtype=np.float64) if negated else np.asarray(scores, dtype=np.float64)
        if list(ids) == want.tolist() and np.allclose(got_s, want_s, rtol=1e-6, atol=0):
            exact += 1
        overlaps.append(len(set(ids) & set(want.tolist())) / len(want) if len(want) else float(not ids))
        at = {int(i): s for i, s in zip(want.tolist(), want_s.tolist(), strict=True)}
        rel += [abs(s - at[i]) / at[i] for i, s in zip(ids, got_s.tolist(), strict=True) if i in at and at[i]]
    n = len(answers)
    return {"checked_queries": n, "exact_queries": exact, "exact_share": exact / n if n else None,
            "overlap_at_k": float(np.mean(overlaps)) if overlaps else None,
            "max_rel_score_diff": max(rel) if rel else None, "mean_rel_score_diff": float(np.mean(rel)) if rel else None}  # fmt: skip


def _overlap(a: list[list[Any]], b: list[list[Any]]) -> float | None:
    pairs = list(zip(a, b, strict=False))
    if not pairs:
        return None
    return float(np.mean([len(set(x[0]) & set(y[0])) / max(1, len(x[0])) for x, y in pairs]))


def run_benchmarks(cfg: argparse.Namespace, workdir: Path, log: Callable[[str], None]) -> dict:
    paths = make_data(cfg, workdir, log)
    report: dict[str, Any] = {
        "config": _cli.settings(cfg, "sections", "systems", "docs", "vocab", "queries", "dim", "nlist", "nprobe",
                                "hybrid_limit", "batch_nq", "insert_rows", "batch", "min_time", "lite_budget",
                                "lite_build_budget", "seed", k1="k1", b="b"),
        "data": data_stats(paths),
        "sections": {},
    }  # fmt: skip
    common = {"task": "", "words": paths["words.json"], "docs": paths["docs.npz"], "queries": paths["queries.npz"],
              "min_time": cfg.min_time}  # fmt: skip

    def job(tag: str, system: str, **kw: Any) -> dict:
        mem = cfg.lite_memory_gb if system == "milvus-lite" else None
        return run_job(workdir, tag, {**common, "system": system, "memory_gb": mem, **kw}, cfg.child_timeout, log)

    searched = [s for s in SECTIONS[:2] if s in cfg.sections]
    if searched:
        systems: dict[str, dict] = {}
        for system in cfg.systems:
            systems[system] = job(f"search-{system}", system, task="search", sections=searched, path=str(workdir / f"{system}-search"),
                                  dense=paths["dense.npy"], dense_q=paths["dense_q.npy"], nlist=cfg.nlist, nprobe=cfg.nprobe,
                                  hybrid_limit=cfg.hybrid_limit, batch_nq=cfg.batch_nq, lite_budget=cfg.lite_budget,
                                  build_budget=cfg.lite_build_budget, chunk=CHUNK if system == "keeldb" else cfg.lite_batch)  # fmt: skip
        k, lite = systems.get("keeldb", {}), systems.get("milvus-lite", {})
        lite_rows = _get(lite, "build", "rows")
        partial = bool(lite.get("ok")) and not _get(lite, "build", "complete")
        if "bm25" in cfg.sections:
            truth = dict(np.load(paths["truth.npz"]))
            agree: dict[str, Any] = {}
            for name, e in systems.items():
                if e.get("ok") and not (name == "milvus-lite" and partial):
                    agree[name] = agreement(_get(e, "bm25", "answers") or [], truth, negated=name == "milvus-lite")
            ratios = {m: _ratio(_get(k, "bm25", m, "qps"), _get(lite, "bm25", m, "qps")) for m in ("nq1", "batch")}
            report["sections"]["bm25"] = {
                "agreement": agree, "ratios": ratios, "milvus_lite_rows": lite_rows, "milvus_lite_partial": partial,
                "targets": {
                    **{m: _report.target(f">= {LITE_QPS_TARGET:g}x Milvus Lite QPS", r, LITE_QPS_TARGET) for m, r in ratios.items()},
                    "exact": _report.target("keeldb's top-10 = the exact one (share of queries)",
                                            _get(agree, "keeldb", "exact_share"), 1.0),
                },
            }  # fmt: skip
        if "hybrid" in cfg.sections:
            report["sections"]["hybrid"] = {
                "ratios": {m: _ratio(_get(k, "hybrid", m, "qps"), _get(lite, "hybrid", m, "qps")) for m in ("nq1", "batch")},
                "overlap_keeldb_milvus_lite": None if partial else _overlap(_get(k, "hybrid", "answers") or [],
                                                                            _get(lite, "hybrid", "answers") or []),
                "milvus_lite_partial": partial,
            }  # fmt: skip
        for e in systems.values():  # the answers are in the agreement figures; keep the JSON small
            for sec in SECTIONS[:2]:
                if isinstance(e.get(sec), dict):
                    e[sec].pop("answers", None)
        report["search_systems"] = systems
    if "insert" in cfg.sections:
        ins: dict[str, dict] = {s: {} for s in cfg.systems}
        for mode in ("on", "off"):
            for system in cfg.systems:
                ins[system][mode] = job(f"insert-{system}-{mode}", system, task="insert", bm25=mode == "on", rows=cfg.insert_rows,
                                        batch=cfg.batch, dense=paths["dense.npy"], path=str(workdir / f"{system}-insert-{mode}"))  # fmt: skip
        report["sections"]["insert"] = {
            "systems": ins,
            "on_over_off": {s: _ratio(_get(ins[s], "on", "rows_per_s"), _get(ins[s], "off", "rows_per_s")) for s in ins},
            "ratios": {m: _ratio(_get(ins.get("keeldb"), m, "rows_per_s"), _get(ins.get("milvus-lite"), m, "rows_per_s"))
                       for m in ("on", "off")},
        }  # fmt: skip
    report["versions"] = {"pymilvus": package_version("pymilvus"), "milvus-lite": package_version("milvus-lite"),
                          "numpy": np.__version__}  # fmt: skip
    return report


# --------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------


def _n(v: float | None, fmt: str = ",.1f") -> str:
    return "-" if v is None else format(v, fmt)


def _qps(v: float | None) -> str:
    return "-" if v is None else f"{v:,.1f}" if v >= 10 else f"{v:.3f}"


def print_report(report: dict) -> None:
    from rich.table import Table

    out = _report.console(170)
    cfg = report["config"]
    notes = _report.Footnotes()
    secs = report["sections"]
    systems = report.get("search_systems", {})
    bnq = cfg["batch_nq"]
    d = report["data"]
    out.print(f"data: {cfg['docs']:,} documents of {MIN_WORDS}-{MAX_WORDS} words (mean {d['mean_words']:.1f}; {d['words']:,} "
              f"words) from a {cfg['vocab']:,}-word Zipf vocabulary (the commonest word in {d['commonest_word_doc_share']:.0%} "
              f"of them), {cfg['queries']} queries of {MIN_QUERY_WORDS}-{MAX_QUERY_WORDS} words; BM25 k1={cfg['k1']} "
              f"b={cfg['b']}, top-{TOP_K}", highlight=False)  # fmt: skip
    if systems:
        t = Table(title="build (not a target: how each system got there)", title_justify="left")
        for col in ("system", "rows", "segments", "insert s", "flush + index s", "first search s"):
            t.add_column(col, justify="left" if col == "system" else "right")
        for key, e in systems.items():
            name = f"{SYSTEMS[key]} {e.get('version', '')}".strip()
            if not e.get("ok"):
                t.add_row(name, notes.see(f"{SYSTEMS[key]}: {e.get('error')}"), "", "", "", "")
                continue
            b = e["build"]
            rows = f"{b['rows']:,}" + ("" if b["complete"] else f" of {cfg['docs']:,} (budget)")
            t.add_row(name, rows, _n(b["segments"], ","), _n(b["insert_s"]), _n(b["index_s"]), _n(b["first_search_s"], ".2f"))
        out.print(t)
    for sec, title in (("bm25", "BM25 full-text search, search(data=<query texts>, anns_field='sparse')"),
                       ("hybrid", f"hybrid search: IVF_FLAT nprobe={cfg['nprobe']} (L2) + BM25, each {cfg['hybrid_limit']} deep, "
                                  f"RRFRanker({RRF_K})")):  # fmt: skip
        if sec not in secs:
            continue
        s = secs[sec]
        t = Table(title=f"{title}, top-{TOP_K}", title_justify="left")
        for col in ("system", "QPS nq=1", "p50 ms", "p99 ms", f"QPS nq={bnq}", f"p50 ms (nq={bnq})"):
            t.add_column(col, justify="left" if col == "system" else "right")
        for key, e in systems.items():
            f = e.get(sec) if e.get("ok") else None
            if f is None:
                t.add_row(SYSTEMS[key], notes.see(f"{SYSTEMS[key]}: {e.get('error')}") if not e.get("ok") else "-", "", "", "", "")
                continue
            t.add_row(SYSTEMS[key], _qps(f["nq1"]["qps"]), _n(f["nq1"]["p50_ms"], ",.2f"), _n(f["nq1"]["p99_ms"], ",.2f"),
                      _qps(f["batch"]["qps"]), _n(f["batch"]["p50_ms"], ",.1f"))  # fmt: skip
        tg = s.get("targets", {})
        t.add_row("keeldb / Milvus Lite", _report.times(s["ratios"]["nq1"]), "", _report.target_cell(tg.get("nq1")),
                  _report.times(s["ratios"]["batch"]), _report.target_cell(tg.get("batch")))  # fmt: skip
        out.print(t)
        if s.get("milvus_lite_partial"):
            out.print(f"[yellow]Milvus Lite reached {s.get('milvus_lite_rows') or 0:,} of {cfg['docs']:,} rows within its insert "
                      "budget: its figures are over fewer rows, and its answers are not compared.[/yellow]")  # fmt: skip
        if sec == "bm25":
            for key, a in s["agreement"].items():
                out.print(f"{SYSTEMS[key]} against the exact top-{TOP_K}: {a['exact_queries']}/{a['checked_queries']} queries "
                          f"exact, overlap {_n(a['overlap_at_k'], '.4f')}, score deviation mean {_n(a['mean_rel_score_diff'], '.2e')} "
                          f"max {_n(a['max_rel_score_diff'], '.2e')}", highlight=False)  # fmt: skip
            segs = _get(systems, "milvus-lite", "build", "segments")
            out.print(f"{_report.target_cell(s['targets']['exact'])}; Milvus Lite's IDF and avgdl are per segment "
                      f"({_n(segs, ',')} here), so its scores (and close ranks) move with the segment layout; keeldb's "
                      "are the collection's.", highlight=False)  # fmt: skip
        else:
            out.print(f"top-{TOP_K} overlap keeldb / Milvus Lite: {_n(s['overlap_keeldb_milvus_lite'], '.4f')} (IVF lists "
                      "trained on different samples, BM25 statistics per segment in Milvus Lite)", highlight=False)  # fmt: skip
    if "insert" in secs:
        s = secs["insert"]
        t = Table(title=f"insert: {cfg['insert_rows']:,} rows in {cfg['batch']:,}-row insert calls, (id, text, {cfg['dim']}-d vector), a fresh collection each",
                  title_justify="left")  # fmt: skip
        for col in ("system", "BM25 on rows/s", "flush s", "BM25 off rows/s", "flush s", "on / off"):
            t.add_column(col, justify="left" if col == "system" else "right")
        for key, modes in s["systems"].items():
            cells = []
            for mode in ("on", "off"):
                e = modes.get(mode, {})
                if not e.get("ok"):
                    cells += [notes.see(f"{SYSTEMS[key]} ({mode}): {e.get('error')}"), ""]
                else:
                    cells += [_n(e["rows_per_s"], ",.0f"), _n(e["flush_s"], ".2f")]
            t.add_row(SYSTEMS[key], *cells, _n(s["on_over_off"][key], ".2f"))
        t.add_row("keeldb / Milvus Lite", _report.times(s["ratios"]["on"]), "", _report.times(s["ratios"]["off"]), "", "")
        out.print(t)
    notes.print(out)
    out.print("versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()), highlight=False)
    _report.print_machine(out, report["machine"])
    out.print(f"command: {report['command']}", highlight=False)


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="BM25 full-text, hybrid and insert: keeldb vs Milvus Lite on the same data "
                                            "in the same run.")  # fmt: skip
    texts = {
        "docs": "documents", "vocab": "vocabulary size", "queries": "queries", "dim": "dense vector dimension",
        "nlist": "IVF_FLAT nlist", "nprobe": "IVF_FLAT nprobe", "hybrid_limit": "depth of each hybrid request",
        "batch_nq": "queries per batched call", "insert_rows": "rows of the insert measurement",
        "batch": "rows per insert call", "min_time": "seconds of timed calls per figure",
        "lite_budget": "seconds Milvus Lite may spend per search figure",
        "lite_build_budget": "seconds Milvus Lite may spend inserting the search collection",
    }  # fmt: skip
    _cli.add_sizes(p, FULL, texts)
    p.add_argument("--lite-batch", type=int, default=10_000, help="rows per Milvus Lite insert while building (default 10,000)")
    p.add_argument("--lite-memory-gb", type=float, default=16.0, help="heap cap of the Milvus Lite children (default 16)")
    p.add_argument("--sections", default=",".join(SECTIONS), help=f"from {', '.join(SECTIONS)}")
    p.add_argument("--systems", default=",".join(SYSTEMS), help=f"from {', '.join(SYSTEMS)}")
    _cli.add_quick_option(p)
    _cli.add_run_options(p, DEFAULT_SEED, "data and collections")
    _cli.add_child_timeout(p, 14400.0)
    a = p.parse_args(argv)
    _cli.fill_defaults(a, QUICK, FULL)
    a.k1, a.b = K1, B
    a.sections = _cli.names(p, "--sections", a.sections, SECTIONS)
    a.systems = _cli.names(p, "--systems", a.systems, list(SYSTEMS))
    _cli.at_least_one(p, a, ("docs", "vocab", "queries", "dim", "nlist", "nprobe", "hybrid_limit", "batch_nq",
                             "insert_rows", "batch", "lite_batch"))  # fmt: skip
    return a


def main(argv: Sequence[str] | None = None) -> int:
    return _cli.main(argv, parse_args, "keeldb-text-", run_benchmarks, print_report, worker_main=worker_main)


if __name__ == "__main__":
    _cli.run_script(main, worker_main)
