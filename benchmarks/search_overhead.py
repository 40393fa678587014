"""keeldb's per-call cost above FAISS at nq=1, on builds a ``bench_ann.py --workdir`` run left.

For each index type asked, in ONE process on one thread (OMP_NUM_THREADS=1), the same
queries are searched one per call three ways, in alternating blocks so that load on a shared
machine hits all three alike:

- ``keeldb``: ``Client.search(data=q, limit=10, search_params=..., output_fields=["id"])``,
  bench_ann's call;
- ``same index``: the FAISS index object keeldb searched, called directly with keeldb's
  search parameters -- the difference is keeldb's own cost per call;
- ``search_c``: that index's ``search_c`` bound once with those parameters
  (``FaissIndex.searcher``, what keeldb's plain search calls), without the FAISS Python
  wrapper's per-call conversions -- keeldb above it is all of keeldb's Python per call;
- ``raw FAISS``: bench_ann's raw FAISS build (``faiss-<TYPE>.faissindex``), read into memory.

Times are CPU time of this process (``time.process_time``), the median of ``--repeats``
blocks per way. Not a replacement for bench_ann (whose QPS are wall time over 1,000 queries
in separate processes), a diagnostic for the search hot path::

    PYTHONPATH=src python benchmarks/bench_ann.py --rows 100000 --systems keeldb,faiss \\
        --indexes HNSW,IVF_FLAT --omp-threads 1 --workdir /tmp/ann100k
    PYTHONPATH=src python benchmarks/search_overhead.py /tmp/ann100k HNSW:ef=32 IVF_FLAT:nprobe=32
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402

import keeldb  # noqa: E402
from keeldb.index.params import search_knobs  # noqa: E402

COLLECTION = "bench"  # bench_ann's
TOP_K = 10


def measure(workdir: Path, index_type: str, knob: str, value: int, queries: np.ndarray, repeats: int) -> dict[str, Any]:
    client = keeldb.Client(str(workdir / f"keeldb-{index_type}"), auto_flush_bytes=1 << 40)
    client.load_collection(COLLECTION)
    client.wait_for_index(COLLECTION)
    sp = {"metric_type": "L2", "params": {knob: value}}
    snap = client.snapshot(COLLECTION)
    (view,) = [v for v in snap.views if v.num_rows]
    ann = view.segment.indexes["vector"]
    params = ann._params(search_knobs(sp["params"], TOP_K), TOP_K, None)[0]  # noqa: SLF001
    ways: dict[str, Callable[[np.ndarray], Any]] = {
        "keeldb": lambda q: client.search(COLLECTION, data=q, limit=TOP_K, search_params=sp, output_fields=["id"]),
        "same index": lambda q: ann.index.search(q, TOP_K, params=params),
    }
    if hasattr(ann, "searcher"):  # (not in the code before it: PYTHONPATH=<older keeldb>/src)
        ways["search_c"] = ann.searcher(TOP_K, search_knobs(sp["params"], TOP_K))
    raw_path = workdir / f"faiss-{index_type}.faissindex"
    if raw_path.exists():
        raw = faiss.read_index(str(raw_path))
        if knob == "ef":
            raw.hnsw.efSearch = value
        else:
            faiss.extract_index_ivf(raw).nprobe = value
        ways["raw FAISS"] = lambda q: raw.search(q, TOP_K)
    times: dict[str, list[float]] = {w: [] for w in ways}
    for f in ways.values():  # warm up
        for i in range(min(50, len(queries))):
            f(queries[i : i + 1])
    for r in range(repeats):
        order = list(ways)[r % len(ways) :] + list(ways)[: r % len(ways)]
        for w in order:
            f = ways[w]
            t = time.process_time()
            for i in range(len(queries)):
                f(queries[i : i + 1])
            times[w].append((time.process_time() - t) / len(queries) * 1e6)
    client.close()
    us = {w: statistics.median(v) for w, v in times.items()}
    out: dict[str, Any] = {"index": index_type, "setting": f"{knob}={value}", "us_per_query": us}
    out["overhead_us"] = us["keeldb"] - us["same index"]
    if "search_c" in us:
        out["above_search_c_us"] = us["keeldb"] - us["search_c"]
    if "raw FAISS" in us:
        out["keeldb_over_raw_qps"] = us["raw FAISS"] / us["keeldb"]
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("workdir", type=Path, help="a bench_ann.py --workdir holding keeldb-<TYPE> builds")
    p.add_argument("points", nargs="+", help="TYPE:knob=value, e.g. HNSW:ef=32 IVF_FLAT:nprobe=32")
    p.add_argument("--queries", type=int, default=300, help="queries per block (default 300)")
    p.add_argument("--repeats", type=int, default=5, help="blocks per way (default 5)")
    a = p.parse_args()
    qfile = next(a.workdir.glob("queries*.npy"))
    queries = np.ascontiguousarray(np.load(qfile)[: a.queries], dtype=np.float32)
    for point in a.points:
        index_type, setting = point.split(":")
        knob, value = setting.split("=")
        r = measure(a.workdir, index_type, knob, int(value), queries, a.repeats)
        us = "  ".join(f"{w} {t:7.1f} us" for w, t in r["us_per_query"].items())
        ratio = f"  keeldb/raw QPS {r['keeldb_over_raw_qps']:.2f}" if "keeldb_over_raw_qps" in r else ""
        above = f" (above search_c {r['above_search_c_us']:5.1f} us)" if "above_search_c_us" in r else ""
        print(f"{index_type:9s} {r['setting']:10s} {us}  keeldb's own {r['overhead_us']:5.1f} us{above}{ratio}")


if __name__ == "__main__":
    main()
