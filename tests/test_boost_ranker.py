"""The boost ranker (Milvus 2.6.2+) in ``search``: embedded and over pymilvus.

Every boosted answer is checked against a hand computation over the plain search's first
``offset + limit`` hits (the formulas of Milvus's segment rescorer written out here, in
float32 as there), and every refusal against Milvus's message and "nothing changed".
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pymilvus import AnnSearchRequest, Function, FunctionScore, FunctionType, MilvusClient
from pymilvus.exceptions import MilvusException

import keeldb
from keeldb.datatype import DataType
from keeldb.engine.boost import hash_to_unit, murmur_special
from keeldb.errors import KeelError

N = 60
DIM = 4
Q = np.random.default_rng(11).normal(size=(2, DIM)).tolist()


def _rows() -> list[dict[str, Any]]:
    rng = np.random.default_rng(7)
    return [
        {"id": i, "v": rng.normal(size=DIM).tolist(), "w": rng.normal(size=DIM).tolist(),
         "doctype": "abstract" if i % 3 == 0 else "body", "rank": int(i * 7 % 13),
         "price": float(i % 10)}
        for i in range(N)
    ]  # fmt: skip


def _schema(c: Any) -> Any:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("w", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("doctype", DataType.VARCHAR, max_length=16)
    s.add_field("rank", DataType.INT64)
    s.add_field("price", DataType.DOUBLE)
    ip = c.prepare_index_params()
    ip.add_index("v", "FLAT", metric_type="IP")
    ip.add_index("w", "FLAT", metric_type="L2")
    return s, ip


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[keeldb.Client]:
    c = keeldb.Client(str(tmp_path_factory.mktemp("boost") / "db"))
    s, ip = _schema(c)
    c.create_collection("bo", schema=s, index_params=ip)
    rows = _rows()
    c.insert("bo", rows[:30])
    c.flush("bo")  # two segments
    c.insert("bo", rows[30:])
    yield c
    c.close()


def boost(**params: Any) -> Function:
    return Function(
        name="b", input_field_names=[], function_type=FunctionType.RERANK,
        params={"reranker": "boost", **params},
    )  # fmt: skip


ROWS = {r["id"]: r for r in _rows()}


def _matches(flt: str | None, row: dict[str, Any]) -> bool:
    """The few filters used here, evaluated by hand."""
    if flt is None:
        return True
    return {
        "doctype == 'abstract'": row["doctype"] == "abstract",
        "rank > 6": row["rank"] > 6,
        "price < 3": row["price"] < 3,
    }[flt]


def expected(
    plain: list[dict[str, Any]],
    fns: list[dict[str, Any]],
    *,
    boost_mode: str = "multiply",
    function_mode: str = "multiply",
    descending: bool = True,
    limit: int,
    offset: int = 0,
) -> list[tuple[int, float]]:
    """Milvus's rescorer by hand: each matching function's value (weight, or
    weight * hash of the seed field) combined by function_mode, applied by boost_mode."""
    out = []
    for h in plain:
        row = ROWS[h["id"]]
        acc: np.float32 | None = None
        for fn in fns:
            if not _matches(fn.get("filter"), row):
                continue
            v = np.float32(fn["weight"])
            if "random_score" in fn:
                rs = fn["random_score"]
                key = row[rs["field"]] if "field" in rs else row["id"]
                v = np.float32(np.float32(hash_to_unit(key, rs["seed"])) * v)
            acc = v if acc is None else (acc * v if function_mode == "multiply" else acc + v)
        s = np.float32(h["distance"])
        if acc is not None:
            s = s * acc if boost_mode == "multiply" else s + acc
        out.append((h["id"], float(s)))
    sign = -1 if descending else 1
    out.sort(key=lambda t: (sign * t[1], t[0]))
    return out[offset : offset + limit]


def _got(res: Any) -> list[tuple[int, float]]:
    return [(h["id"], float(h["distance"])) for h in res]


def _check(client: Any, fns: list[dict[str, Any]], *, field: str = "v", limit: int = 8,
           offset: int = 0, score_params: dict[str, str] | None = None) -> None:  # fmt: skip
    plain = client.search("bo", Q, limit=limit + offset, anns_field=field)
    functions = [boost(**fn) for fn in fns]
    ranker: Any = (
        functions[0]
        if len(fns) == 1 and not score_params
        else FunctionScore(functions=functions, params=score_params or {})
    )
    got = client.search("bo", Q, limit=limit, offset=offset, anns_field=field, ranker=ranker)
    sp = score_params or {}
    for qi in range(len(Q)):
        want = expected(
            plain[qi], fns, limit=limit, offset=offset, descending=field == "v",
            boost_mode=sp.get("boost_mode", "multiply"),
            function_mode=sp.get("function_mode", "multiply"),
        )  # fmt: skip
        assert [i for i, _ in _got(got[qi])] == [i for i, _ in want]
        assert [s for _, s in _got(got[qi])] == pytest.approx([s for _, s in want], rel=1e-6)


def test_murmur_matches_reference_properties() -> None:
    # MurmurHash3_x64 of (key, seed) is deterministic, spread, and hash_to_unit is in [0, 1).
    assert murmur_special(1, 0) == murmur_special(1, 0)
    assert len({murmur_special(k, 126) for k in range(1000)}) == 1000
    vals = [hash_to_unit(k, 126) for k in range(2000)]
    assert all(0.0 <= v < 1.0 for v in vals)
    assert 0.45 < float(np.mean(vals)) < 0.55


def test_weight_with_filter_promotes_and_demotes(client: keeldb.Client) -> None:
    _check(client, [{"filter": "doctype == 'abstract'", "weight": 0.5}])
    _check(client, [{"filter": "doctype == 'abstract'", "weight": 3}], limit=5, offset=3)
    _check(client, [{"weight": 2.0}])  # no filter: every candidate


def test_distance_metrics_are_multiplied_as_distances(client: keeldb.Client) -> None:
    # L2: the distance itself is scaled and still ranks ascending (Milvus's rescorer).
    _check(client, [{"filter": "rank > 6", "weight": 0.25}], field="w")
    _check(client, [{"filter": "rank > 6", "weight": 0.5}], field="w",
           score_params={"boost_mode": "sum"})  # fmt: skip


@pytest.mark.parametrize("boost_mode", ["multiply", "sum"])
@pytest.mark.parametrize("function_mode", ["multiply", "sum"])
def test_several_functions_combine_by_modes(
    client: keeldb.Client, boost_mode: str, function_mode: str
) -> None:
    fns = [
        {"filter": "doctype == 'abstract'", "weight": 2.0},
        {"filter": "rank > 6", "weight": 0.5},
        {"filter": "price < 3", "weight": 1.5, "random_score": {"seed": 9, "field": "rank"}},
    ]
    _check(client, fns, limit=10,
           score_params={"boost_mode": boost_mode, "function_mode": function_mode})  # fmt: skip


def test_random_score_is_deterministic_per_seed(client: keeldb.Client) -> None:
    _check(client, [{"weight": 1.0, "random_score": {"seed": 126, "field": "id"}}], limit=10)
    _check(client, [{"weight": 0.3, "random_score": {"seed": 5}}], limit=10)  # primary key
    r = {"weight": 1.0, "random_score": {"seed": 126, "field": "id"}}
    a = client.search("bo", Q, limit=10, anns_field="v", ranker=boost(**r), output_fields=["rank"])
    b = client.search("bo", Q, limit=10, anns_field="v", ranker=boost(**r), output_fields=["rank"])
    assert _got(a[0]) == _got(b[0])
    r2 = {"weight": 1.0, "random_score": {"seed": 127, "field": "id"}}
    c = client.search("bo", Q, limit=10, anns_field="v", ranker=boost(**r2))
    assert [i for i, _ in _got(c[0])] != [i for i, _ in _got(a[0])]


BAD: list[tuple[Any, str]] = [
    (boost(filter="doctype == 'abstract'"), "must set weight params for weight scorer"),
    (boost(weight="heavy"), "parse function scorer weight params failed"),
    (boost(weight=1, filter="nosuch > 1"), "parse expr failed with error"),
    (boost(weight=1, random_score={"seed": "x"}), "random seed must be number"),
    (boost(weight=1, random_score={"seed": 1, "field": 3}),
     "random seed field name must be string"),
    (boost(weight=1, random_score={"seed": 1, "field": "price"}),
     "only support int64 field as random seed, but got Double"),
    (boost(weight=1, random_score={"seed": 1, "field": "nosuch"}), "random seed field not found"),
    (FunctionScore(functions=[boost(weight=1)], params={"boost_mode": "max"}),
     "unknown boost mode: max"),
    (FunctionScore(functions=[boost(weight=1)], params={"function_mode": "avg"}),
     "unknown boost mode: avg"),
    (FunctionScore(functions=[boost(weight=1), Function(
        name="d", input_field_names=["price"], function_type=FunctionType.RERANK,
        params={"reranker": "decay", "function": "gauss", "origin": 0, "scale": 5})]),
     "mixing boost functions with other rerankers"),
]  # fmt: skip


@pytest.mark.parametrize("ranker,message", BAD)
def test_bad_params_are_refused_and_nothing_changes(
    client: keeldb.Client, ranker: Any, message: str
) -> None:
    before = client.query("bo", filter="id >= 0", output_fields=["rank"])
    with pytest.raises(KeelError, match=message):
        client.search("bo", Q, limit=5, anns_field="v", ranker=ranker)
    assert client.query("bo", filter="id >= 0", output_fields=["rank"]) == before


def test_boost_is_not_a_hybrid_ranker_nor_grouped(client: keeldb.Client) -> None:
    reqs = [AnnSearchRequest(Q, "v", {}, 5), AnnSearchRequest(Q, "w", {}, 5)]
    with pytest.raises(KeelError, match=r"Unsupported rerank function: \[boost\]"):
        client.hybrid_search("bo", reqs, ranker=boost(weight=1), limit=5)
    with pytest.raises(KeelError, match="don't support use segment scorer with group_by"):
        client.search(
            "bo", Q, limit=5, anns_field="v", ranker=boost(weight=1), group_by_field="rank"
        )


# -- over pymilvus, through the server -------------------------------------------------------


@pytest.fixture(scope="module")
def remote(mc: MilvusClient) -> Iterator[MilvusClient]:
    s, ip = _schema(mc)
    mc.create_collection("bo", schema=s, index_params=ip)
    rows = _rows()
    mc.insert("bo", rows[:30])
    mc.flush("bo")
    mc.insert("bo", rows[30:])
    yield mc
    mc.drop_collection("bo")


def test_over_the_wire_matches_hand_computation(remote: MilvusClient) -> None:
    _check(remote, [{"filter": "doctype == 'abstract'", "weight": 0.5}])
    _check(remote, [{"filter": "rank > 6", "weight": 0.25}], field="w", offset=2)
    _check(
        remote,
        [{"filter": "doctype == 'abstract'", "weight": 2.0},
         {"weight": 0.7, "random_score": {"seed": 126, "field": "id"}}],
        limit=10, score_params={"boost_mode": "sum", "function_mode": "sum"},
    )  # fmt: skip


@pytest.mark.parametrize("ranker,message", BAD[:9])
def test_over_the_wire_bad_params_are_refused(
    remote: MilvusClient, ranker: Any, message: str
) -> None:
    with pytest.raises(MilvusException, match=message):
        remote.search("bo", Q, limit=5, anns_field="v", ranker=ranker)
    assert remote.query("bo", filter="id >= 0", output_fields=["count(*)"])[0]["count(*)"] == N


def test_over_the_wire_hybrid_refuses_boost(remote: MilvusClient) -> None:
    reqs = [AnnSearchRequest(Q, "v", {}, 5), AnnSearchRequest(Q, "w", {}, 5)]
    with pytest.raises(MilvusException, match=r"Unsupported rerank function: \[boost\]"):
        remote.hybrid_search("bo", reqs, ranker=boost(weight=1), limit=5)
