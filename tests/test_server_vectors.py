"""Every vector type through the wire: the real ``pymilvus.MilvusClient`` against ``keeldb
serve`` — inserts in the forms pymilvus sends (numpy float16 / bfloat16 / int8 arrays, bytes,
lists of floats for the half types, dicts and scipy rows for sparse vectors), query and
search results in pymilvus's shapes and equal to an embedded client's on the same data,
exact searches against a brute force, search iterators and range search, several vector
fields, and bad input (wrong byte lengths, bad sparse rows, a placeholder of another type)
refused with code 1100 and nothing changed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

import keeldb
from tests.vector_util import (
    DIM,
    bit_distances,
    dense,
    dense_distances,
    same_hits,
    sparse,
    sparse_dicts,
    sparse_top_k,
    top_k,
    widened,
)

N = 1500
K = 8
TYPES = {
    "h": (DataType.FLOAT16_VECTOR, "FLAT", "L2", {}),
    "bf": (DataType.BFLOAT16_VECTOR, "IVF_FLAT", "IP", {"nlist": 4}),
    "i8": (DataType.INT8_VECTOR, "HNSW", "L2", {"M": 16, "efConstruction": 100}),
    "b": (DataType.BINARY_VECTOR, "BIN_FLAT", "JACCARD", {}),
    "sp": (DataType.SPARSE_FLOAT_VECTOR, "SPARSE_INVERTED_INDEX", "IP", {"inverted_index_algo": "DAAT_MAXSCORE"}),
}
SEARCH_PARAMS = {"bf": {"nprobe": 4}, "i8": {"ef": 200}}



def make_schema(c: Any) -> Any:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    for name, (dtype, *_rest) in TYPES.items():
        if dtype == DataType.SPARSE_FLOAT_VECTOR:
            s.add_field(name, dtype)
        else:
            s.add_field(name, dtype, dim=DIM)
    s.add_field("tag", DataType.INT64)
    return s


def index_params(c: Any) -> Any:
    ip = c.prepare_index_params()
    for name, (_dtype, index, metric, build) in TYPES.items():
        ip.add_index(name, index, metric_type=metric, params=build)
    return ip


class Data:
    def __init__(self) -> None:
        self.cols = {name: (widened(sparse(N, 7)) if name == "sp" else dense(N, i, dtype)) for i, (name, (dtype, *_)) in enumerate(TYPES.items())}
        self.narrow = sparse(N, 7)  # the same rows at their small column numbers, for scipy products
        self.sparse_rows = sparse_dicts(self.narrow)

    def rows(self, ids: range, *, float_lists: bool = False) -> list[dict[str, Any]]:
        out = []
        for i in ids:
            r: dict[str, Any] = {"id": i, "tag": i % 3}
            for name in TYPES:
                if name == "sp":
                    r[name] = self.sparse_rows[i] if i % 2 else self.cols["sp"][i]  # dicts and scipy rows
                elif name == "b":
                    r[name] = self.cols[name][i].tobytes()
                elif name == "h" and float_lists:
                    r[name] = self.cols[name][i].astype(np.float32).tolist()  # sent as float32, stored as fp16
                else:
                    r[name] = self.cols[name][i]
            out.append(r)
        return out


@pytest.fixture(scope="module")
def loaded(mc: MilvusClient, tmp_path_factory: pytest.TempPathFactory) -> tuple[Data, keeldb.Client]:
    """Collection ``vt`` over the wire and the same data in an embedded client (``vt``):
    half flushed and indexed, half growing."""
    d = Data()
    emb = keeldb.Client(str(tmp_path_factory.mktemp("embedded")))
    for c in (mc, emb):
        c.create_collection("vt", schema=make_schema(c), index_params=index_params(c))
        c.insert("vt", d.rows(range(0, N // 2)))
        c.flush("vt")
        c.insert("vt", d.rows(range(N // 2, N - 100)))
        c.insert("vt", d.rows(range(N - 100, N), float_lists=True))
    emb.wait_for_index("vt")
    mc.load_collection("vt")  # waits for the indexes, as pymilvus does
    return d, emb


def plain(v: Any) -> Any:
    if isinstance(v, list) and v and isinstance(v[0], bytes):
        return [bytes(x) for x in v]
    return v


def test_query_and_get_shapes_equal_the_embedded_client(mc: MilvusClient, loaded: tuple[Data, keeldb.Client]) -> None:
    d, emb = loaded
    names = list(TYPES)
    got = mc.query("vt", "id in [0, 1, 999, 1450]", output_fields=names)
    want = emb.query("vt", "id in [0, 1, 999, 1450]", output_fields=names)
    assert [{k: plain(v) for k, v in r.items()} for r in got] == want
    for r in got:
        i = r["id"]
        assert r["b"] == [d.cols["b"][i].tobytes()] and r["i8"] == [d.cols["i8"][i].tobytes()]
        assert r["h"] == [d.cols["h"][i].tobytes()] and r["bf"] == [d.cols["bf"][i].tobytes()]
        assert r["sp"] == d.sparse_rows[i]
    assert [plain(x["sp"]) for x in mc.get("vt", ids=[3, 4], output_fields=["sp"])] == [d.sparse_rows[3], d.sparse_rows[4]]
    desc = {f["name"]: f for f in mc.describe_collection("vt")["fields"]}
    assert desc["b"]["type"] == DataType.BINARY_VECTOR and desc["b"]["params"]["dim"] == DIM
    assert desc["sp"]["type"] == DataType.SPARSE_FLOAT_VECTOR and "dim" not in desc["sp"]["params"]
    assert mc.describe_index("vt", "sp")["inverted_index_algo"] == "DAAT_MAXSCORE"


@pytest.mark.parametrize("name", list(TYPES))
def test_search_equals_brute_force_and_embedded(mc: MilvusClient, loaded: tuple[Data, keeldb.Client], name: str) -> None:
    d, emb = loaded
    dtype, _index, metric, _ = TYPES[name]
    ids = np.arange(N)
    qrows = [2, 800, 1490]
    col = d.cols[name]
    if name == "sp":
        q: Any = [col[i] for i in qrows]  # scipy rows, as pymilvus takes them
        narrow = d.narrow
        full = (narrow[qrows] @ narrow.T).toarray()
        want = sparse_top_k(narrow, ids, narrow[qrows], K)
    elif name == "b":
        q = [col[i].tobytes() for i in qrows]
        full = bit_distances(col, col[qrows], metric)
        want = top_k(full, ids, K, False)
    else:
        q = [col[i] for i in qrows]
        full = dense_distances(col, col[qrows].astype(np.float32), metric)
        want = top_k(full, ids, K, metric != "L2")
    params = {"metric_type": metric, "params": SEARCH_PARAMS.get(name, {})}
    got = mc.search("vt", q, anns_field=name, limit=K, search_params=params, output_fields=[name, "tag"])
    emb_got = emb.search("vt", q, anns_field=name, limit=K, search_params=params, output_fields=[name, "tag"])
    for qi, (g, e) in enumerate(zip(got, emb_got, strict=True)):
        truth = dict(zip(ids.tolist(), full[qi].tolist(), strict=True))
        hits = [{"id": h["id"], "distance": h["distance"]} for h in g]
        if name == "i8":  # HNSW: approximate; each hit a true distance
            assert len({h["id"] for h in hits} & {i for i, _ in want[qi]}) >= K - 2
        else:
            same_hits(hits, want[qi], truth)
        assert [h["id"] for h in g] == [h["id"] for h in e]
        assert np.allclose([h["distance"] for h in g], [h["distance"] for h in e], rtol=1e-5)
        for h in g:  # the entity's vector in pymilvus's search shape
            v = h["entity"][name]
            if name == "sp":
                assert v == d.sparse_rows[h["id"]]
            else:
                assert isinstance(v, bytes) and v == d.cols[name][h["id"]].tobytes()


def test_float_queries_for_half_types_and_mismatched_placeholders(mc: MilvusClient, loaded: tuple[Data, keeldb.Client]) -> None:
    d, _ = loaded
    q = d.cols["h"][5].astype(np.float32).tolist()  # a FloatVector placeholder
    assert mc.search("vt", [q], anns_field="h", limit=1)[0][0]["id"] == 5
    with pytest.raises(MilvusException) as e:
        mc.search("vt", [d.cols["h"][5].astype(np.float32).tolist()], anns_field="i8", limit=1)
    assert e.value.code == 1100 and "vector type must be the same" in e.value.message
    with pytest.raises(MilvusException) as e:
        mc.search("vt", [b"\x01\x02\x03"], anns_field="b", limit=1)
    assert e.value.code == 1100 and "bytes" in e.value.message


def test_iterators_and_range_search(mc: MilvusClient, loaded: tuple[Data, keeldb.Client]) -> None:
    d, emb = loaded
    for name, q in (("sp", [d.sparse_rows[10]]), ("b", [d.cols["b"][10].tobytes()])):
        it = mc.search_iterator("vt", q, anns_field=name, batch_size=7, limit=40, search_params={"metric_type": TYPES[name][2]})
        paged = []
        while page := it.next():
            paged += [(h["id"], h["distance"]) for h in page]
        it.close()
        whole = mc.search("vt", q, anns_field=name, limit=40, search_params={"metric_type": TYPES[name][2]})[0]
        assert len({i for i, _ in paged}) == len(paged) == 40
        assert np.allclose(sorted(x for _, x in paged), sorted(h["distance"] for h in whole), atol=1e-5)
    hits = mc.search("vt", [d.cols["b"][3].tobytes()], anns_field="b", limit=100,
                     search_params={"metric_type": "JACCARD", "params": {"radius": 0.7, "range_filter": 0.5}})[0]  # fmt: skip
    full = bit_distances(d.cols["b"], d.cols["b"][[3]], "JACCARD")[0]
    want = sorted(i for i in range(N) if 0.5 <= full[i] < 0.7)
    assert sorted(h["id"] for h in hits) == want[:100] or len(hits) == 100
    assert all(0.5 <= h["distance"] < 0.7 for h in hits)


def test_bad_input_over_the_wire_changes_nothing(mc: MilvusClient, loaded: tuple[Data, keeldb.Client]) -> None:
    d, _ = loaded
    before = mc.query("vt", "", output_fields=["count(*)"])[0]["count(*)"]
    good = d.rows(range(N - 1, N))[0]
    bad = [
        ("sp", {1: -0.5}, "negative value"),
        ("sp", {1: float("inf")}, "NaN"),
        ("sp", [(3, 0.5), (3, 0.25)], "same indices"),
        ("b", b"\x01" * (DIM // 8 + 1), "bytes"),
        ("i8", np.zeros(DIM - 1, dtype=np.int8), "bytes"),
        ("h", [70000.0] * DIM, "range"),
    ]
    for name, value, words in bad:
        with pytest.raises(MilvusException) as e:
            first = dict(good, id=N + 5)
            if name == "h":  # one form a batch (pymilvus loses data when float16 arrays and lists mix)
                first["h"] = good["h"].astype(np.float32).tolist()
            mc.insert("vt", [first, dict(good, id=N + 6, **{name: value})])
        assert e.value.code == 1100 and words in e.value.message, (name, e.value.message)
    assert mc.query("vt", "", output_fields=["count(*)"])[0]["count(*)"] == before
    s = mc.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("b", DataType.BINARY_VECTOR, dim=12)
    with pytest.raises(MilvusException) as e:
        mc.create_collection("bad", schema=s)
    assert "binary vector dimension should be multiple of 8." in e.value.message
    assert not mc.has_collection("bad")


def test_milvus_lite_agrees_on_sparse_search(tmp_path: Path) -> None:
    """The same sparse script against Milvus Lite (pure Python, SPARSE_INVERTED_INDEX with
    IP): the same top-k ids and scores as keeldb's, both exact."""
    pytest.importorskip("milvus_lite")
    d = Data()
    q = [d.sparse_rows[i] for i in (5, 6, 700)]
    answers = []
    lite = MilvusClient(str(tmp_path / "lite.db"))
    emb = keeldb.Client(str(tmp_path / "keel"))
    try:
        for c in (lite, emb):
            s = c.create_schema()
            s.add_field("id", DataType.INT64, is_primary=True)
            s.add_field("sp", DataType.SPARSE_FLOAT_VECTOR)
            ip = c.prepare_index_params()
            ip.add_index("sp", "SPARSE_INVERTED_INDEX", metric_type="IP")
            c.create_collection("s", schema=s, index_params=ip)
            c.insert("s", [{"id": i, "sp": d.sparse_rows[i]} for i in range(N) if d.sparse_rows[i]])
            c.flush("s")
            answers.append(c.search("s", q, anns_field="sp", limit=K, search_params={"metric_type": "IP"}))
    finally:
        lite.close()
        emb.close()
    for a, b in zip(*answers, strict=True):
        assert np.allclose([h["distance"] for h in a], [h["distance"] for h in b], rtol=1e-5)
        assert [h["id"] for h in a] == [h["id"] for h in b] or sorted(h["distance"] for h in a) == sorted(h["distance"] for h in b)


def test_partial_update_of_each_vector_type_over_the_wire(mc: MilvusClient, tmp_path: Path) -> None:
    """``upsert(partial_update=True)`` naming one vector field: that field takes the new
    value, every other field keeps its own, over the wire as embedded (the server decodes
    a sparse column as one column object, which the merge must take whole)."""
    d = Data()
    emb = keeldb.Client(str(tmp_path / "embedded"))
    names = [*TYPES, "tag"]
    for c in (mc, emb):
        c.create_collection("pu", schema=make_schema(c), index_params=index_params(c))
        c.insert("pu", d.rows(range(0, 8)))
    before = {r["id"]: r for r in emb.query("pu", "id in [1, 6]", output_fields=names)}
    for name in TYPES:
        new = d.rows(range(6, 7))[0][name]  # row 6's value
        for c in (mc, emb):
            assert c.upsert("pu", [{"id": 1, name: new}], partial_update=True)["upsert_count"] == 1
        got = [{k: plain(v) for k, v in r.items()} for r in mc.get("pu", ids=[1], output_fields=names)]
        assert got == emb.get("pu", ids=[1], output_fields=names), name
        assert got[0][name] == before[6][name], name
        before[1][name] = before[6][name]
        assert got[0] == before[1], name  # the fields not named kept their values
    mc.drop_collection("pu")
