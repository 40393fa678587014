#!/usr/bin/env python
"""What checking every call costs: ``keeldb serve`` searched through pymilvus without
authorization, with ``--authorization`` (a user holding CollectionReadOnly on the
collection), and with ``--authorization`` over TLS (a self-signed certificate made here),
same run, same data.

The three servers run at once on loopback, each over its own copy of the same rows
(``--rows`` x ``--dim``, FLAT, so the search itself is the same work); the measurement
alternates between them in ``--rounds`` rounds of ``--calls`` single-query searches each
(nq=1, top-10, ``output_fields=["id"]``), so that noise on this shared machine hits all three
alike. Reported: the median QPS of the rounds per configuration, the ratios to the plain one
and the extra microseconds per call. Nothing is asserted: timings are noise on CI.

    python benchmarks/bench_access.py [--rows 10000 --dim 64 --calls 500 --rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import json_default, machine_info  # noqa: E402

from keeldb.testing.certificates import self_signed  # noqa: E402

USER, PASSWORD = "reader_user", "reader-pass-1"


def check_cost_us(calls: int = 20_000) -> float:
    """The interceptor alone, in this process: authenticate (remembered) and authorize one
    Search call of a user holding CollectionReadOnly -- what --authorization adds per call
    before gRPC's own costs, without the network noise of the end-to-end figures."""
    import base64

    import grpc
    from pymilvus.grpc_gen import milvus_pb2

    import keeldb
    from keeldb.server.access import AccessInterceptor

    client = keeldb.Client(tempfile.mkdtemp(prefix="bench-access-check-"))
    client.initialize_access(None, network=False)
    client.create_user(USER, PASSWORD)
    client.create_role("readers")
    client.grant_privilege_v2("readers", "CollectionReadOnly", "c")
    client.grant_role(USER, "readers")
    interceptor = AccessInterceptor(client)
    meta = (("authorization", base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()), ("dbname", "default"))
    details = type("Details", (), {"method": "/milvus.proto.milvus.MilvusService/Search", "invocation_metadata": meta})()
    handler = grpc.unary_unary_rpc_method_handler(lambda request, context: None)
    request = milvus_pb2.SearchRequest(collection_name="c")
    interceptor.intercept_service(lambda d: handler, details).unary_unary(request, None)  # verifies the password
    t0 = time.perf_counter()
    for _ in range(calls):
        interceptor.intercept_service(lambda d: handler, details).unary_unary(request, None)
    took = time.perf_counter() - t0
    client.close()
    return took / calls * 1e6


def run(args: argparse.Namespace) -> dict[str, Any]:
    from pymilvus import MilvusClient

    from keeldb.testing.server import KeelServer

    tmp = Path(tempfile.mkdtemp(prefix="bench-access-"))
    cert, key, _, _ = self_signed(tmp, "server")
    rng = np.random.default_rng(args.seed)
    data = rng.standard_normal((args.rows, args.dim), dtype=np.float32)
    queries = rng.standard_normal((args.calls, args.dim), dtype=np.float32).tolist()
    configs = {
        "plain": [],
        "authorization": ["--authorization"],
        "authorization+TLS": ["--authorization", "--tls-cert", str(cert), "--tls-key", str(key)],
    }
    servers: dict[str, Any] = {}
    clients: dict[str, Any] = {}
    try:
        for name, extra in configs.items():
            srv = KeelServer(tmp / name, log_path=tmp / f"{name}.log", extra_args=extra)
            srv.start()
            servers[name] = srv
            tls = {"server_pem_path": str(cert), "server_name": "localhost"} if "TLS" in name else {}
            scheme = "https" if tls else "http"
            uri = f"{scheme}://localhost:{srv.port}"
            admin = MilvusClient(uri=uri, token="root:Milvus" if extra else "", **tls)
            admin.create_collection("c", dimension=args.dim, metric_type="L2", index_type="FLAT")
            for i in range(0, args.rows, 5000):
                chunk = data[i : i + 5000]
                admin.insert("c", [{"id": i + j, "vector": v} for j, v in enumerate(chunk.tolist())])
            admin.flush("c")
            if extra:
                admin.create_user(USER, PASSWORD)
                admin.create_role("readers")
                admin.grant_privilege_v2("readers", "CollectionReadOnly", "c")
                admin.grant_role(USER, "readers")
                clients[name] = MilvusClient(uri=uri, user=USER, password=PASSWORD, **tls)
            else:
                clients[name] = admin
        for c in clients.values():  # warm up
            for q in queries[:20]:
                c.search("c", [q], limit=10, output_fields=["id"])
        qps: dict[str, list[float]] = {n: [] for n in configs}
        for _ in range(args.rounds):
            for name, c in clients.items():
                t0 = time.perf_counter()
                for q in queries:
                    c.search("c", [q], limit=10, output_fields=["id"])
                qps[name].append(len(queries) / (time.perf_counter() - t0))
    finally:
        for srv in servers.values():
            srv.stop()
    med = {n: statistics.median(v) for n, v in qps.items()}
    return {
        "machine": machine_info(),
        "params": vars(args),
        "qps_rounds": qps,
        "qps_median": med,
        "ratio_to_plain": {n: med[n] / med["plain"] for n in med},
        "extra_us_per_call": {n: (1 / med[n] - 1 / med["plain"]) * 1e6 for n in med},
        "check_us_in_process": check_cost_us(),
    }


def print_report(r: dict[str, Any]) -> None:
    print(f"search nq=1 through pymilvus, {r['params']['rows']} x {r['params']['dim']} FLAT, "
          f"{r['params']['rounds']} rounds of {r['params']['calls']} calls, median QPS:")  # fmt: skip
    for n, q in r["qps_median"].items():
        print(f"  {n:<18} {q:8.0f} QPS  {r['ratio_to_plain'][n]:.2f}x plain  "
              f"{r['extra_us_per_call'][n]:+7.0f} us per call")  # fmt: skip
    print(f"the check alone (interceptor, in process): {r['check_us_in_process']:.1f} us per call")
    m = r["machine"]
    print(f"machine: {m['cpu_count']} x {m['cpu_model']}, load {m['loadavg_at_end']}")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rows", type=int, default=10_000)
    p.add_argument("--dim", type=int, default=64)
    p.add_argument("--calls", type=int, default=500, help="searches per configuration per round")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return p.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    report = run(args)
    print_report(report)
    if args.json:
        args.json.write_text(json.dumps(report, default=json_default, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
