#!/usr/bin/env python
"""REST vs gRPC: insert and search rates of one ``keeldb serve --http-port``, same run.

One server (a child process, fresh temporary data directory) serves both protocols. The
same data go in through each: ``--rows`` [20,000] random ``--dim`` [128] float32 vectors in
``--batch`` [1,000]-row batches, into two collections made the quick way (FLAT index, L2),
one through pymilvus (``MilvusClient.insert``) and one through ``POST
/v2/vectordb/entities/insert`` (httpx, one keep-alive connection). Then ``--queries``
[500] single-vector top-10 searches run one after another against the same collection
through each protocol, alternating blocks so drift hits both alike.

What the figures mean: the REST path is the gRPC path plus JSON (the REST layer runs the
very same MilvusService handlers in-process, docs/rest.md), so the ratio is the price of
JSON encoding, the extra DescribeCollection each data request makes, and Starlette/uvicorn
-- not a different engine. Row dicts and query lists are built before the timers. Timings
are noisy on small shared machines; nothing is asserted.

Usage::

    PYTHONPATH=src python benchmarks/bench_rest.py --out rest.json
    PYTHONPATH=src python benchmarks/bench_rest.py --quick
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pymilvus import MilvusClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import json_default, machine_info  # noqa: E402

from keeldb.testing.server import KeelServer  # noqa: E402

HTTP = re.compile(r"keeldb serve HTTP on (\S+):(\d+)")


def _post(http: httpx.Client, path: str, body: dict[str, Any]) -> Any:
    r = http.post(f"/v2/vectordb/{path}", json=body)
    answer = r.json()
    if answer.get("code") != 0:
        raise RuntimeError(f"{path}: {answer}")
    return answer.get("data")


def run(rows: int, dim: int, batch: int, queries: int, blocks: int = 5) -> dict[str, Any]:
    rng = np.random.default_rng(7)
    vectors = rng.random((rows, dim), dtype=np.float32)
    qs = rng.random((queries, dim), dtype=np.float32).tolist()
    batches = [[{"id": i, "vector": vectors[i].tolist()} for i in range(lo, min(lo + batch, rows))]
               for lo in range(0, rows, batch)]  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="keeldb-bench-rest-") as tmp:
        server = KeelServer(Path(tmp) / "data", log_path=Path(tmp) / "serve.log", extra_args=["--http-port", "0"])
        with server:
            m = server.printed(HTTP)
            assert m is not None
            # TCP_NODELAY: httpx writes a request's headers and body separately, and Nagle's
            # algorithm would hold the body for the server's delayed ACK (~40 ms a call).
            transport = httpx.HTTPTransport(socket_options=[(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)])
            http = httpx.Client(base_url=f"http://127.0.0.1:{m.group(2)}", timeout=120, transport=transport)
            mc = MilvusClient(uri=server.uri)
            out: dict[str, Any] = {}
            for proto in ("grpc", "rest"):
                name = f"bench_{proto}"
                if proto == "grpc":
                    mc.create_collection(name, dimension=dim, metric_type="L2")
                else:
                    _post(http, "collections/create", {"collectionName": name, "dimension": dim, "metricType": "L2"})
                start = time.perf_counter()
                for b in batches:
                    if proto == "grpc":
                        mc.insert(name, b)
                    else:
                        _post(http, "entities/insert", {"collectionName": name, "data": b})
                out[f"{proto}_insert_rows_per_s"] = rows / (time.perf_counter() - start)
                assert mc.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"] == rows
            mc.flush("bench_grpc")
            per_block = max(1, queries // blocks)
            spent = {"grpc": 0.0, "rest": 0.0}
            done = {"grpc": 0, "rest": 0}
            same = 0
            for k in range(0, queries, per_block):
                block = qs[k : k + per_block]
                for proto in ("grpc", "rest") if (k // per_block) % 2 == 0 else ("rest", "grpc"):
                    start = time.perf_counter()
                    for q in block:
                        if proto == "grpc":
                            mc.search("bench_grpc", [q], limit=10)
                        else:
                            _post(http, "entities/search", {"collectionName": "bench_grpc", "data": [q], "limit": 10})
                    spent[proto] += time.perf_counter() - start
                    done[proto] += len(block)
            for q in qs[:20]:  # the two protocols answer the same hits
                g = [h["id"] for h in mc.search("bench_grpc", [q], limit=10)[0]]
                r = [h["id"] for h in _post(http, "entities/search", {"collectionName": "bench_grpc", "data": [q], "limit": 10})]
                same += g == r
            for proto in ("grpc", "rest"):
                out[f"{proto}_search_qps"] = done[proto] / spent[proto]
            out["same_hits_of_20"] = same
            mc.close()
            http.close()
    out["rest_vs_grpc_insert"] = out["rest_insert_rows_per_s"] / out["grpc_insert_rows_per_s"]
    out["rest_vs_grpc_search"] = out["rest_search_qps"] / out["grpc_search_qps"]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=None, help="rows inserted through each protocol [20,000]")
    p.add_argument("--dim", type=int, default=None, help="vector dimension [128]")
    p.add_argument("--batch", type=int, default=None, help="rows per insert call [1,000]")
    p.add_argument("--queries", type=int, default=None, help="searches through each protocol [500]")
    p.add_argument("--quick", action="store_true", help="tiny sizes (2,000 rows x 16-d, 60 queries), for CI")
    p.add_argument("--out", type=Path, default=None, help="write the figures as JSON here")
    a = p.parse_args()
    sizes = {"rows": 2000, "dim": 16, "batch": 500, "queries": 60} if a.quick else {"rows": 20000, "dim": 128, "batch": 1000, "queries": 500}
    for k, v in sizes.items():
        if getattr(a, k) is None:
            setattr(a, k, v)
    figures = run(a.rows, a.dim, a.batch, a.queries)
    result = {"settings": {k: getattr(a, k) for k in sizes}, "figures": figures, "machine": machine_info()}
    print(f"{'':26}{'gRPC (pymilvus)':>18}{'REST (httpx)':>16}{'REST/gRPC':>11}")
    print(f"{'insert rows/s':26}{figures['grpc_insert_rows_per_s']:>18,.0f}{figures['rest_insert_rows_per_s']:>16,.0f}"
          f"{figures['rest_vs_grpc_insert']:>11.2f}")  # fmt: skip
    print(f"{'search QPS (nq=1, top-10)':26}{figures['grpc_search_qps']:>18,.1f}{figures['rest_search_qps']:>16,.1f}"
          f"{figures['rest_vs_grpc_search']:>11.2f}")  # fmt: skip
    print(f"same hits on {figures['same_hits_of_20']} of 20 queries; {a.rows:,} rows x {a.dim}-d, batches of {a.batch}")
    if a.out:
        a.out.write_text(json.dumps(result, indent=2, default=json_default))
    return 0


if __name__ == "__main__":
    sys.exit(main())
