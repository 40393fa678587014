"""What a read's answer carries besides its rows, where pymilvus reads it.

``cost``: Milvus puts a read's cost in the status's ``extra_info["report_value"]`` (only when
positive) and pymilvus shows it as ``extra["cost"]``; keeldb's cost is the entities the read
ran over (the count Milvus hands its cost hook), also in ``all_search_count``. ``recalls``:
with ``enable_recall_calculation`` each query's recall -- the share of the exact top-k the
search found through its index -- checked here against numpy's exact top-k. The embedded
client returns the same ``extra`` / ``recalls`` on its results.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from pymilvus import DataType, MilvusClient, RRFRanker
from pymilvus.client.prepare import Prepare
from pymilvus.exceptions import MilvusException
from pymilvus.grpc_gen import milvus_pb2_grpc

import keeldb
from tests.server_util import KeelServer

DIM = 8
N = 1500  # above the 1,024 rows from which a sealed segment gets its index
VEC = np.random.default_rng(0).standard_normal((N, DIM)).astype(np.float32)


def fill(c: Any, name: str, index: str, params: dict[str, Any]) -> None:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("tag", DataType.INT64)
    ip = c.prepare_index_params()
    ip.add_index("v", index, metric_type="L2", params=params)
    c.create_collection(name, schema=s, index_params=ip)
    c.create_partition(name, "p1")
    c.insert(name, [{"id": i, "v": VEC[i], "tag": i % 5} for i in range(N - 100)])
    c.insert(name, [{"id": i, "v": VEC[i], "tag": i % 5} for i in range(N - 100, N)], partition_name="p1")
    c.flush(name)
    c.delete(name, ids=list(range(0, 50)))


def exact_top(q: np.ndarray, k: int, flt: Any = None) -> list[int]:
    ids = np.array([i for i in range(50, N) if flt is None or flt(i)])
    d = ((VEC[ids] - q) ** 2).sum(axis=1)
    return ids[np.argsort(d, kind="stable")[:k]].tolist()


@pytest.fixture(scope="module")
def coll(mc: MilvusClient) -> str:
    fill(mc, "ivf", "IVF_FLAT", {"nlist": 64})
    mc.load_collection("ivf")  # waits for the index build
    fill(mc, "flat", "FLAT", {})
    mc.create_collection("empty", dimension=DIM)
    return "ivf"


def test_cost_is_the_entities_the_read_ran_over(mc: MilvusClient, coll: str) -> None:
    live = N - 50
    q = VEC[:2] + 0.1
    assert mc.search(coll, q.tolist(), limit=5).extra["cost"] == live
    assert mc.search(coll, q.tolist(), limit=5, partition_names=["p1"]).extra["cost"] == 100
    assert mc.search(coll, q.tolist(), limit=5, filter="tag == 1").extra["cost"] == live  # the filter ran over all
    assert mc.query(coll, filter="id < 80", limit=3).extra["cost"] == live
    assert mc.query(coll, filter="", output_fields=["count(*)"]).extra["cost"] == live
    from pymilvus import AnnSearchRequest

    reqs = [AnnSearchRequest(q[:1].tolist(), "v", {"metric_type": "L2"}, 5) for _ in range(3)]
    assert mc.hybrid_search(coll, reqs, RRFRanker(), limit=5).extra["cost"] == 3 * live
    # an empty collection: nothing ran, nothing reported (Milvus leaves a cost of 0 out)
    assert mc.search("empty", [[0.0] * DIM], limit=3).extra == {}
    assert mc.query("empty", filter="", limit=3).extra["cost"] == 0


def test_recalls_over_the_wire(mc: MilvusClient, coll: str) -> None:
    qs = VEC[[100, 700, 1450]] + np.random.default_rng(2).normal(0, 0.3, (3, DIM)).astype(np.float32)
    params = {"metric_type": "L2", "params": {"nprobe": 1, "enable_recall_calculation": True}}
    res = mc.search(coll, qs.tolist(), limit=10, search_params=params, filter="tag != 3")
    want = []
    for q, hits in zip(qs, res, strict=True):
        exact = set(exact_top(q, 10, lambda i: i % 5 != 3))
        want.append(len(exact & {h["id"] for h in hits}) / 10)
    assert res.recalls == pytest.approx(want, abs=1e-6)
    assert min(want) < 1.0  # one IVF list of 64 misses neighbours: the recall is not a constant
    # an exact index always has recall 1; without the flag there are none
    res = mc.search("flat", qs.tolist(), limit=10, search_params=params)
    assert res.recalls == pytest.approx([1.0, 1.0, 1.0])
    assert mc.search(coll, qs.tolist(), limit=10, search_params={"params": {"nprobe": 1}}).recalls is None
    for bad, words in (
        ({"enable_recall_calculation": "maybe"}, "enable_recall_calculation must be true or false"),
    ):
        with pytest.raises(MilvusException) as e:
            mc.search(coll, qs.tolist(), limit=3, search_params={"params": bad})
        assert e.value.code == 1100 and words in e.value.message
    with pytest.raises(MilvusException) as e:
        mc.search(coll, qs.tolist(), limit=3, group_by_field="tag", search_params=params)
    assert e.value.code == 1100 and "not with grouping" in e.value.message


def test_raw_status_and_result_fields(server: KeelServer, coll: str) -> None:
    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = milvus_pb2_grpc.MilvusServiceStub(channel)
    req = Prepare.search_requests_with_expr(coll, "v", {"metric_type": "L2"}, 4, data=[VEC[60].tolist()])
    reply = stub.Search(req)
    assert reply.status.code == 0
    assert reply.status.extra_info["report_value"] == str(N - 50)
    assert reply.results.all_search_count == N - 50
    assert list(reply.results.recalls) == []
    channel.close()


def test_embedded_results_carry_the_same(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path / "e"))
    fill(c, "ivf", "IVF_FLAT", {"nlist": 64})
    c.wait_for_index("ivf")
    q = VEC[300] + 0.2
    res = c.search("ivf", [q], limit=10, search_params={"params": {"nprobe": 1, "enable_recall_calculation": True}})
    assert res.extra == {"cost": N - 50}
    assert res.recalls == pytest.approx([len(set(exact_top(q, 10)) & {h["id"] for h in res[0]}) / 10])
    assert res == [list(res[0])]  # still a plain list of lists of hits
    assert c.query("ivf", filter="id < 60", partition_names=["_default"]).extra == {"cost": N - 150}
    c.close()
