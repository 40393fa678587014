"""pymilvus's search iterators over every searchable kind of field, against ``keeldb serve``.

For float16, bfloat16 and int8 vectors (FLAT, and ANN indexes: IVF_FLAT probing one list,
HNSW), binary vectors (HAMMING, whose integer distances tie a lot, and JACCARD), sparse
vectors and BM25 text queries (``data=["text"]``): iterating in small pages returns every
hit exactly once, in score order, the same hits with the same scores as one big search at
the same snapshot -- while rows are inserted and deleted between pages -- through the V2
iterator (``MilvusClient.search_iterator``: ``search_iter_v2``, a cursor at the last score)
and the V1 iterator (``Collection.search_iterator``: range searches that widen a ring below
the last score, excluding the ids already returned at it). Milvus's refusals with an
iterator: grouping, ``order_by``, an offset (V2).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pymilvus import Collection, DataType, Function, FunctionType, MilvusClient, connections
from pymilvus.client.prepare import Prepare
from pymilvus.exceptions import MilvusException
from pymilvus.grpc_gen import milvus_pb2_grpc

from keeldb import DataType as KD
from tests.server_util import KeelServer
from tests.vector_util import bit_distances, dense, dense_distances, sparse, sparse_dicts

N = 260
DIM = 16
WORDS = "apple banana cherry date elder fig grape".split()
# field -> (type, index, metric, build params, search params)
FIELDS: dict[str, tuple[DataType, str, str, dict[str, Any], dict[str, Any]]] = {
    "h": (DataType.FLOAT16_VECTOR, "FLAT", "L2", {}, {}),
    "bf": (DataType.BFLOAT16_VECTOR, "IVF_FLAT", "IP", {"nlist": 16}, {"nprobe": 1}),
    "i8": (DataType.INT8_VECTOR, "HNSW", "COSINE", {"M": 4, "efConstruction": 8}, {"ef": 16}),
    "bh": (DataType.BINARY_VECTOR, "BIN_FLAT", "HAMMING", {}, {}),
    "bj": (DataType.BINARY_VECTOR, "BIN_IVF_FLAT", "JACCARD", {"nlist": 8}, {"nprobe": 1}),
    "sp": (DataType.SPARSE_FLOAT_VECTOR, "SPARSE_INVERTED_INDEX", "IP", {}, {}),
    "bm": (DataType.SPARSE_FLOAT_VECTOR, "SPARSE_INVERTED_INDEX", "BM25", {}, {}),
}
STORED = {"h": KD.FLOAT16_VECTOR, "bf": KD.BFLOAT16_VECTOR, "i8": KD.INT8_VECTOR, "bh": KD.BINARY_VECTOR, "bj": KD.BINARY_VECTOR}


class Data:
    def __init__(self) -> None:
        self.cols = {name: dense(N + 40, 30 + i, t) for i, (name, t) in enumerate(STORED.items())}
        self.sparse = sparse_dicts(sparse(N + 40, 3))
        rng = np.random.default_rng(0)
        # few words and short texts: many documents tie on their BM25 score
        self.text = [" ".join(rng.choice(WORDS, int(rng.integers(2, 5)))) for _ in range(N + 40)]

    def row(self, i: int) -> dict[str, Any]:
        r: dict[str, Any] = {"id": i, "sp": self.sparse[i], "text": self.text[i], "tag": i % 4}
        for name in STORED:
            r[name] = self.cols[name][i].tobytes() if STORED[name] == KD.BINARY_VECTOR else self.cols[name][i]
        return r

    def query(self, field: str) -> list[Any]:
        if field == "bm":
            return ["apple fig cherry"]
        if field == "sp":
            return [self.sparse[7]]
        col = self.cols[field][7]
        return [col.tobytes() if STORED[field] == KD.BINARY_VECTOR else col]


@pytest.fixture(scope="module")
def server() -> Iterator[KeelServer]:
    """A server that indexes small segments (keeldb searches segments under 1,024 rows
    exactly), so that the ANN indexes below really answer the searches that use them."""
    old = os.environ.get("KEELDB_INDEX_MIN_ROWS")
    os.environ["KEELDB_INDEX_MIN_ROWS"] = "32"
    try:
        with KeelServer() as s:
            yield s
            err = s.stderr_path.read_text(errors="replace")
        assert "Traceback" not in err, err[-3000:]
    finally:
        if old is None:
            del os.environ["KEELDB_INDEX_MIN_ROWS"]
        else:
            os.environ["KEELDB_INDEX_MIN_ROWS"] = old


@pytest.fixture(scope="module")
def data(mc: MilvusClient) -> Data:
    d = Data()
    s = mc.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    for name, (dtype, *_rest) in FIELDS.items():
        if name == "bm":
            continue
        if dtype == DataType.SPARSE_FLOAT_VECTOR:
            s.add_field(name, dtype)
        else:
            s.add_field(name, dtype, dim=DIM)
    s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True)
    s.add_field("bm", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("tag", DataType.INT64)
    s.add_function(Function(name="bm25", function_type=FunctionType.BM25, input_field_names=["text"],
                            output_field_names=["bm"]))  # fmt: skip
    ip = mc.prepare_index_params()
    for name, (_dtype, index, metric, build, _search) in FIELDS.items():
        ip.add_index(name, index, metric_type=metric, params=build)
    mc.create_collection("itm", schema=s, index_params=ip)
    mc.insert("itm", [d.row(i) for i in range(N // 2)])
    mc.flush("itm")
    mc.insert("itm", [d.row(i) for i in range(N // 2, N)])
    mc.delete("itm", ids=list(range(0, N, 23)))
    mc.load_collection("itm")  # waits for the index builds
    return d


@pytest.fixture(scope="module")
def orm(server: KeelServer, data: Data) -> Iterator[Collection]:
    connections.connect(alias="itm", uri=server.uri)
    yield Collection("itm", using="itm")
    connections.disconnect("itm")


def params(field: str, k: int = 0) -> dict[str, Any]:
    """The field's search params; for a search of top-``k``, HNSW's ``ef`` at least ``k``."""
    p = dict(FIELDS[field][4])
    if "ef" in p:
        p["ef"] = max(p["ef"], k)
    return {"metric_type": FIELDS[field][2], "params": p}


def drain(it: Any) -> list[tuple[int, float]]:
    hits: list[tuple[int, float]] = []
    while True:
        page = it.next()
        if not page:
            break
        hits.extend((int(h.id), float(h.distance)) for h in page)
    it.close()
    return hits


def check(hits: list[tuple[int, float]], whole: list[tuple[int, float]], metric: str) -> None:
    """Every hit of ``whole`` once, in score order, with its score."""
    ids = [i for i, _ in hits]
    assert len(ids) == len(set(ids)), "a hit came back twice"
    assert set(ids) == {i for i, _ in whole}, f"missing {sorted({i for i, _ in whole} - set(ids))[:10]}"
    scores = dict(whole)
    assert all(abs(d - scores[i]) <= 1e-5 * max(1.0, abs(d)) for i, d in hits)
    d = [x for _, x in hits]
    larger_better = metric in ("IP", "COSINE", "BM25")
    assert all((a >= b) if larger_better else (a <= b) for a, b in zip(d, d[1:], strict=False)), "out of score order"


def brute_force(d: Data, field: str, live: list[int], filt: Any = None) -> list[tuple[int, float]]:
    """Every live row's exact score (numpy), for the ANN fields."""
    metric = FIELDS[field][2]
    ids = [i for i in live if filt is None or filt(i)]
    if STORED[field] == KD.BINARY_VECTOR:
        dist = bit_distances(d.cols[field][ids], d.cols[field][[7]], metric)[0]
    else:
        dist = dense_distances(d.cols[field][ids], d.cols[field][[7]], metric)[0]
    return list(zip(ids, dist.tolist(), strict=True))


def live_ids() -> list[int]:
    return [i for i in range(N) if i % 23]


@pytest.mark.parametrize("field", list(FIELDS))
def test_v2_iterator_returns_the_big_search_page_by_page(mc: MilvusClient, data: Data, field: str) -> None:
    metric = FIELDS[field][2]
    q = data.query(field)
    whole = [(h["id"], h["distance"]) for h in mc.search("itm", q, anns_field=field, limit=N, search_params=params(field, N))[0]]
    if field not in ("sp", "bm"):
        exact = brute_force(data, field, live_ids())
        assert {i for i, _ in whole} == {i for i, _ in exact}  # limit N: every row
    it = mc.search_iterator("itm", q, anns_field=field, batch_size=9, search_params=params(field), output_fields=["tag"])
    first = it.next()
    assert len(first) == 9 and all(h["entity"]["tag"] == h["id"] % 4 for h in first)
    # writes between pages: the iterator reads the snapshot of its first call
    gone = {h["id"] for h in first[:2]} | {i for i, _ in whole[-3:]}
    mc.insert("itm", [data.row(i) for i in range(N, N + 10)])
    mc.delete("itm", ids=sorted(gone))
    try:
        hits = [(h["id"], h["distance"]) for h in first] + drain(it)
        check(hits, whole, metric)
    finally:  # leave the collection as it was
        mc.delete("itm", ids=list(range(N, N + 10)))
        mc.upsert("itm", [data.row(i) for i in sorted(gone)])


@pytest.mark.parametrize("field", ["bf", "i8", "bj"])
def test_v2_iterator_over_an_ann_index_is_exact(mc: MilvusClient, data: Data, field: str) -> None:
    """IVF probing one list and a small HNSW miss true neighbours; every page of the
    iterator is exact, so it ranks every row exactly (a first page through the index used
    to set a cursor past rows it had missed, which no later page returned)."""
    q = data.query(field)
    live = [h["id"] for h in mc.query("itm", filter="", output_fields=["id"], limit=N + 40)]
    exact = brute_force(data, field, live, lambda i: i % 4 != 1)
    it = mc.search_iterator("itm", q, anns_field=field, batch_size=11, filter="tag != 1", search_params=params(field))
    check(drain(it), exact, FIELDS[field][2])


@pytest.mark.parametrize("field", list(FIELDS))
def test_v1_iterator_returns_the_big_search(mc: MilvusClient, orm: Collection, data: Data, field: str) -> None:
    metric = FIELDS[field][2]
    q = data.query(field)
    flt = "tag in [0, 2, 3]"
    whole = [(h["id"], h["distance"]) for h in
             mc.search("itm", q, anns_field=field, limit=N, filter=flt, search_params=params(field, N))[0]]  # fmt: skip
    if field in ("bf", "i8", "bj"):  # ANN: the big search may miss rows; the iterator is exact
        live = [h["id"] for h in mc.query("itm", filter=flt, output_fields=["id"], limit=N + 40)]
        whole = brute_force(data, field, live)
    hits = drain(orm.search_iterator(q, field, params(field), batch_size=13, expr=flt))
    check(hits, whole, metric)


def test_iterators_refuse_what_milvus_refuses(server: KeelServer, mc: MilvusClient, data: Data) -> None:
    q = data.query("h")

    def expect(fn: Any, words: str) -> None:
        with pytest.raises(MilvusException) as e:
            fn()
        assert e.value.code == 1100 and words in e.value.message, e.value

    expect(lambda: mc.search_iterator("itm", q, anns_field="h", batch_size=5, group_by_field="tag",
                                      search_params=params("h")), "Not allowed to do groupBy when doing iteration")  # fmt: skip
    expect(lambda: mc.search_iterator("itm", q, anns_field="h", batch_size=5, order_by_fields=[{"field": "tag"}],
                                      search_params=params("h")), "order_by is not supported when using search iterator")  # fmt: skip
    import grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = milvus_pb2_grpc.MilvusServiceStub(channel)
    for kw, words in (
        ({"iterator": "True", "search_iter_v2": "True", "search_iter_batch_size": 5, "offset": 3},
         "offset is not permitted when using a search iterator v2"),
        ({"search_iter_v2": "True", "search_iter_batch_size": 5}, "both iterator and search_iter_v2 must be set"),
    ):  # fmt: skip
        req = Prepare.search_requests_with_expr("itm", "h", params("h"), 5, data=[data.cols["h"][7]], **kw)
        reply = stub.Search(req)
        assert reply.status.code == 1100 and words in reply.status.reason, reply.status
    channel.close()
