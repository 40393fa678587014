"""``order_by_fields`` (engine/ordering.py), checked against a brute-force sort.

A query's rows are every live match sorted by the keys -- nulls first or last as asked --
then by primary key, then cut to ``offset`` / ``limit``; a search's are its ``offset +
limit`` best hits stably re-sorted by the keys (ties keep their score order), then cut; a
grouped search sorts whole groups by their first hit. The reference sort here is written
independently of the engine: one comparator over the rows as a plain query returns them.
Embedded first (hypothesis over specs, windows and filters, on data with ties, nulls,
deletes, upserts, a sealed and a growing segment), then pymilvus over the wire, including
the refusals (Milvus's messages, nothing changed).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc

import keeldb

DIM = 4
N = 240
NAMES = ("apple", "Banana", "cherry", "ä-umlaut", "", "z")
SORTABLE = ("i8", "i32", "price", "f", "flag", "name", "id")
Key = tuple[str, bool, bool]  # field, ascending, nulls_first


def make_rows(n: int = N, seed: int = 1) -> list[dict[str, Any]]:
    """Rows with many ties and nulls: small value sets in every sortable field."""
    rng = np.random.default_rng(seed)
    vecs = rng.standard_normal((n, DIM)).astype(np.float32)
    rows = []
    for i in range(n):
        rows.append({
            "id": i, "v": vecs[i].tolist(),
            "i8": None if i % 7 == 0 else int(rng.integers(-3, 3)),
            "i32": int(rng.integers(0, 5)),
            "price": None if i % 5 == 0 else float(rng.integers(0, 6)) / 2,
            "f": float(np.float32(rng.integers(0, 4) * 0.25)),
            "flag": None if i % 11 == 0 else bool(rng.integers(0, 2)),
            "name": None if i % 13 == 0 else NAMES[int(rng.integers(0, len(NAMES)))],
            "meta": {"p": int(rng.integers(0, 3))} if i % 3 else {},
            "dyn": int(rng.integers(0, 4)),
        })  # fmt: skip
    return rows


def schema(client: Any) -> Any:
    s = client.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("i8", DataType.INT8, nullable=True)
    s.add_field("i32", DataType.INT32)
    s.add_field("price", DataType.DOUBLE, nullable=True)
    s.add_field("f", DataType.FLOAT)
    s.add_field("flag", DataType.BOOL, nullable=True)
    s.add_field("name", DataType.VARCHAR, max_length=32, nullable=True)
    s.add_field("meta", DataType.JSON)
    return s


def load(client: Any, name: str) -> list[dict[str, Any]]:
    """The collection with a sealed and a growing segment, deletes and upserts; returns its
    live rows by primary key."""
    ip = client.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    client.create_collection(name, schema=schema(client), index_params=ip)
    rows = make_rows()
    client.insert(name, rows[: N // 2])
    client.flush(name)
    client.insert(name, rows[N // 2 :])
    client.delete(name, ids=list(range(0, N, 17)))
    changed = make_rows(seed=2)[: N // 4 : 3]
    client.upsert(name, changed)
    live = {r["id"]: r for r in rows if r["id"] % 17}
    live.update({r["id"]: r for r in changed})
    return [live[k] for k in sorted(live)]


def compare(a: dict[str, Any], b: dict[str, Any], keys: list[Key]) -> int:
    for field, asc, nulls_first in keys:
        x, y = a.get(field), b.get(field)
        if x is None and y is None:
            continue
        if x is None or y is None:
            return (-1 if nulls_first else 1) * (1 if x is None else -1)
        if x != y:
            return (-1 if x < y else 1) * (1 if asc else -1)
    return 0


def brute(rows: list[dict[str, Any]], keys: list[Key]) -> list[dict[str, Any]]:
    """``rows`` stably sorted by ``keys`` (Python's sort is stable)."""
    return sorted(rows, key=functools.cmp_to_key(lambda a, b: compare(a, b, keys)))


def spec_of(items: list[tuple[str, str, str | None]]) -> tuple[str, list[Key]]:
    """An order_by string and the keys it means (defaults: asc, nulls last; desc, nulls first)."""
    parts, keys = [], []
    for field, direction, nulls in items:
        text = field + (f":{direction}" if direction or nulls else "") + (f":{nulls}" if nulls else "")
        parts.append(text)
        asc = direction.lower() not in ("desc", "descending")
        keys.append((field, asc, (not asc) if nulls is None else nulls == "nulls_first"))
    return ",".join(parts), keys


items = st.lists(
    st.tuples(
        st.sampled_from(SORTABLE),
        st.sampled_from(["", "asc", "desc", "DESC", "ascending", "descending"]),
        st.sampled_from([None, "nulls_first", "nulls_last"]),
    ),
    min_size=1,
    max_size=3,
)


@pytest.fixture(scope="module")
def emb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[keeldb.Client, list[dict[str, Any]]]]:
    c = keeldb.Client(str(tmp_path_factory.mktemp("ordering") / "db"))
    live = load(c, "o")
    yield c, live
    c.close()


FILTERS = {"": lambda r: True, "i32 >= 2": lambda r: r["i32"] >= 2, "id < 100": lambda r: r["id"] < 100}


@settings(max_examples=60)
@given(items=items, limit=st.integers(1, 260), offset=st.integers(0, 240), flt=st.sampled_from(sorted(FILTERS)))
def test_query_order_by_is_a_sort_of_every_match(
    emb: tuple[keeldb.Client, list[dict[str, Any]]], items: list[Any], limit: int, offset: int, flt: str
) -> None:
    c, live = emb
    spec, keys = spec_of(items)
    fields = ["i8", "i32", "price", "f", "flag", "name"]
    got = c.query("o", filter=flt, output_fields=fields, order_by_fields=spec, limit=limit, offset=offset)
    want = brute([r for r in live if FILTERS[flt](r)], keys)[offset : offset + limit]
    assert [r["id"] for r in got] == [r["id"] for r in want]
    assert [{k: r[k] for k in fields} for r in got] == [{k: r[k] for k in fields} for r in want]


def test_query_order_by_forms_and_aliases(emb: tuple[keeldb.Client, list[dict[str, Any]]]) -> None:
    """pymilvus's forms: dicts, "field:dir" strings, one string, and the ``order_by`` alias;
    an order field need not be an output field, and is not added to the rows."""
    c, live = emb
    want = [r["id"] for r in brute(live, [("price", False, True), ("name", True, False)])[:20]]
    for form in (
        [{"field": "price", "order": "desc"}, {"field": "name"}],
        ["price:desc", "name:asc"],
        "price:desc, name",
    ):
        got = c.query("o", filter="", output_fields=["i8"], order_by_fields=form, limit=20)
        assert [r["id"] for r in got] == want
        assert all(set(r) == {"id", "i8"} for r in got)
    got = c.query("o", filter="", order_by=[{"field": "price", "order": "desc"}, {"field": "name"}], limit=20)
    assert [r["id"] for r in got] == want
    # by ids (get's selector) too
    ids = [r["id"] for r in live[:30]]
    got = c.query("o", ids=ids, order_by_fields="f:desc,id:desc", limit=30)
    assert [r["id"] for r in got] == [r["id"] for r in brute(live[:30], [("f", False, True), ("id", False, True)])]


def search_base(c: keeldb.Client, q: list[float], k: int, **kw: Any) -> list[dict[str, Any]]:
    hits = c.search("o", [q], limit=k, output_fields=list(SORTABLE[:-1]), **kw)[0]
    return [dict(h["entity"], id=h["id"], distance=h["distance"]) for h in hits]


@settings(max_examples=40)
@given(items=items, limit=st.integers(1, 60), offset=st.integers(0, 60), seed=st.integers(0, 5))
def test_search_order_by_resorts_the_best_hits_stably(
    emb: tuple[keeldb.Client, list[dict[str, Any]]], items: list[Any], limit: int, offset: int, seed: int
) -> None:
    c, _ = emb
    spec, keys = spec_of(items)
    q = np.random.default_rng(seed).standard_normal(DIM).tolist()
    best = search_base(c, q, offset + limit)  # score order: ties keep it
    want = brute(best, keys)[offset : offset + limit]
    got = c.search("o", [q], limit=limit, offset=offset, output_fields=["price"], order_by_fields=spec)[0]
    assert [(h["id"], h["distance"]) for h in got] == [(r["id"], r["distance"]) for r in want]
    assert [h["entity"] for h in got] == [{"price": r["price"]} for r in want]


def test_search_order_by_with_filter_range_and_several_queries(emb: tuple[keeldb.Client, list[dict[str, Any]]]) -> None:
    c, _ = emb
    qs = np.random.default_rng(7).standard_normal((3, DIM)).tolist()
    keys: list[Key] = [("flag", True, False), ("i32", False, True)]
    got = c.search("o", qs, limit=9, filter="i32 != 1", output_fields=["flag"], order_by_fields="flag,i32:desc")
    for q, hits in zip(qs, got, strict=True):
        best = search_base(c, q, 9, filter="i32 != 1")
        assert [h["id"] for h in hits] == [r["id"] for r in brute(best, keys)]
    params = {"metric_type": "L2", "params": {"radius": 6.0, "range_filter": 1.0}}
    hits = c.search("o", [qs[0]], limit=30, search_params=params, order_by_fields="name:desc:nulls_last")[0]
    best = search_base(c, qs[0], 30, search_params=params)
    assert [h["id"] for h in hits] == [r["id"] for r in brute(best, [("name", False, False)])]
    assert all(1.0 <= h["distance"] < 6.0 for h in hits)


@pytest.mark.parametrize("offset", [0, 2])
def test_grouped_search_orders_whole_groups_by_their_first_hit(
    emb: tuple[keeldb.Client, list[dict[str, Any]]], offset: int
) -> None:
    c, _ = emb
    q = np.random.default_rng(3).standard_normal(DIM).tolist()
    kw: dict[str, Any] = {"group_by_field": "i32", "group_size": 3, "output_fields": ["i32", "price"]}
    plain = c.search("o", [q], limit=offset + 3, **kw)[0]
    groups: list[list[dict[str, Any]]] = []
    for h in plain:
        row = dict(h["entity"], id=h["id"])
        if groups and groups[-1][0]["i32"] == row["i32"]:
            groups[-1].append(row)
        else:
            groups.append([row])
    keys: list[Key] = [("price", False, False)]
    ordered = sorted(groups, key=functools.cmp_to_key(lambda a, b: compare(a[0], b[0], keys)))
    want = [r["id"] for g in ordered[offset : offset + 3] for r in g]
    got = c.search("o", [q], limit=3, offset=offset, order_by_fields="price:desc:nulls_last", **kw)[0]
    assert [h["id"] for h in got] == want


def test_search_orders_by_json_paths_and_dynamic_keys(tmp_path: Path) -> None:
    """A path in a JSON field or the dynamic field: missing or null is null; numbers, strings,
    booleans compare among themselves; mixed JSON types by their JSON text (Milvus's gjson raw
    comparison): strings < numbers < arrays < booleans < objects."""
    c = keeldb.Client(str(tmp_path / "j"))
    s = c.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("meta", DataType.JSON, nullable=True)
    ip = c.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection("j", schema=s, index_params=ip)
    values: list[Any] = [3, "b", None, 2.5, True, [1, 2], "a", {"x": 1}, False, -1, "MISSING", [0]]
    rows = []
    for i, val in enumerate(values):
        meta = None if i == 2 else ({} if val == "MISSING" else {"k": {"deep": val}})
        row: dict[str, Any] = {"id": i, "v": [float(i), 0.0], "meta": meta}
        if val != "MISSING":
            row["dk"] = val
        rows.append(row)
    c.insert("j", rows)
    # ascending (nulls last), in score order for ties: ids 2 (meta null) and 10 (missing)
    want = [6, 1, 9, 3, 0, 11, 5, 8, 4, 7, 2, 10]
    for spec in ('meta["k"]["deep"]', "dk", '$meta["dk"]', 'dk:asc:nulls_last'):
        hits = c.search("j", [[0.0, 0.0]], limit=12, order_by_fields=spec)[0]
        assert [h["id"] for h in hits] == want, spec
    hits = c.search("j", [[0.0, 0.0]], limit=12, order_by_fields="dk:desc")[0]
    assert [h["id"] for h in hits] == [2, 10, 7, 4, 8, 5, 11, 0, 3, 9, 1, 6]
    hits = c.search("j", [[0.0, 0.0]], limit=12, order_by_fields='meta["k"]["deep"][0]:desc:nulls_last')[0]
    assert [h["id"] for h in hits][:2] == [5, 11]  # 1 > 0; every other row has no element 0
    c.close()


def test_hybrid_search_orders_the_fused_hits(emb: tuple[keeldb.Client, list[dict[str, Any]]]) -> None:
    from pymilvus import AnnSearchRequest, RRFRanker

    c, _ = emb
    qs = np.random.default_rng(11).standard_normal((2, DIM)).tolist()
    reqs = [AnnSearchRequest([qs[0]], "v", {"metric_type": "L2"}, 30), AnnSearchRequest([qs[1]], "v", {"metric_type": "L2"}, 30)]
    fused = c.hybrid_search("o", reqs, RRFRanker(), limit=12, output_fields=["name", "i8"])[0]
    best = [dict(h["entity"], id=h["id"]) for h in fused]
    keys: list[Key] = [("name", True, False), ("i8", False, True)]
    got = c.hybrid_search("o", reqs, RRFRanker(), limit=8, offset=4, order_by_fields="name,i8:desc")[0]
    assert [h["id"] for h in got] == [r["id"] for r in brute(best, keys)[4:12]]


BAD_QUERY = [
    ({"order_by_fields": "v"}, "order_by field 'v' has type FLOAT_VECTOR which is not sortable"),
    ({"order_by_fields": "meta"}, "order_by field 'meta' has type JSON which is not sortable"),
    ({"order_by_fields": "nope"}, "order_by field 'nope' does not exist in collection schema"),
    ({"order_by_fields": 'meta["p"]'}, "does not exist in collection schema"),  # queries: schema fields only
    ({"order_by_fields": "dyn"}, "order_by field 'dyn' does not exist in collection schema"),
    ({"order_by_fields": "price:up"}, "invalid order direction 'up' for field 'price', must be 'asc' or 'desc'"),
    ({"order_by_fields": "price:asc:nulls_middle"}, "invalid null ordering 'nulls_middle'"),
    ({"order_by_fields": "price:asc:nulls_last:x"}, "invalid order_by item"),
    ({"order_by_fields": ":desc"}, "empty field name in order_by_fields"),
    ({"order_by_fields": [{"order": "desc"}]}, "'field' key is required"),
    ({"order_by_fields": [3]}, "expect dict with 'field' and 'order' keys"),
    ({"order_by_fields": "price", "limit": None}, "ORDER BY requires explicit limit"),
    ({"order_by_fields": "price", "output_fields": ["count(*)"]}, "ORDER BY field 'price' is not valid"),
]


@pytest.mark.parametrize(("kw", "words"), BAD_QUERY)
def test_bad_query_order_by_is_refused(emb: tuple[keeldb.Client, list[dict[str, Any]]], kw: dict[str, Any], words: str) -> None:
    c, _ = emb
    kw = {"limit": 5, **kw}
    with pytest.raises(keeldb.InvalidArgument) as e:
        c.query("o", filter="", **kw)
    assert words in str(e.value)


BAD_SEARCH = [
    ("v", "order_by field 'v' has type FLOAT_VECTOR which is not sortable"),
    ("meta", 'for JSON fields use path syntax like field["key"]'),
    ('name["a"]', "order_by field 'name[\"a\"]' has brackets but is not a JSON type"),
    ('meta["a"', "invalid JSON path in order_by field"),
    ("price:sideways", "invalid order direction 'sideways'"),
]


@pytest.mark.parametrize(("spec", "words"), BAD_SEARCH)
def test_bad_search_order_by_is_refused(emb: tuple[keeldb.Client, list[dict[str, Any]]], spec: str, words: str) -> None:
    c, _ = emb
    with pytest.raises(keeldb.InvalidArgument) as e:
        c.search("o", [[0.0] * DIM], limit=3, order_by_fields=spec)
    assert words in str(e.value)


def test_search_order_by_conflicts(emb: tuple[keeldb.Client, list[dict[str, Any]]]) -> None:
    from pymilvus import Function, FunctionType

    c, _ = emb
    rrf = Function(name="rrf", input_field_names=[], function_type=FunctionType.RERANK, params={"reranker": "rrf"})
    with pytest.raises(keeldb.InvalidArgument, match="order_by and function_score cannot be used together"):
        c.search("o", [[0.0] * DIM], limit=3, ranker=rrf, order_by_fields="price")
    with pytest.raises(keeldb.InvalidArgument, match="order_by is not supported when using search iterator"):
        c.search("o", [[0.0] * DIM], limit=3, after_distance=0.5, order_by_fields="price")


def test_no_dynamic_field_no_dynamic_keys(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path / "nd"))
    c.create_collection("nd", dimension=2)  # quick setup has a dynamic field: make one without
    s = c.create_schema(enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    ip = c.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection("strict", schema=s, index_params=ip)
    with pytest.raises(keeldb.InvalidArgument, match="order_by field 'age' does not exist in collection schema"):
        c.search("strict", [[0.0, 0.0]], limit=1, order_by_fields="age")
    with pytest.raises(keeldb.InvalidArgument, match="not found in schema and no dynamic field available"):
        c.search("strict", [[0.0, 0.0]], limit=1, order_by_fields='age["x"]')
    c.close()


# ---------------------------------------------------------------------------------------------
# Over the wire: pymilvus against keeldb serve
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wire(mc: MilvusClient) -> list[dict[str, Any]]:
    return load(mc, "ow")


@pytest.mark.parametrize(
    ("items", "limit", "offset", "flt"),
    [
        ([("price", "desc", None), ("name", "", None)], 25, 0, ""),
        ([("flag", "", "nulls_first"), ("f", "desc", "nulls_last"), ("i8", "", None)], 40, 30, "i32 >= 2"),
        ([("name", "descending", None)], 300, 0, ""),
    ],
)
def test_query_order_by_over_the_wire(
    mc: MilvusClient, wire: list[dict[str, Any]], items: list[Any], limit: int, offset: int, flt: str
) -> None:
    spec, keys = spec_of(items)
    as_dicts = [{"field": f, "order": d or "asc"} for f, d, nulls in items if nulls is None]
    forms = [spec] + ([as_dicts] if len(as_dicts) == len(items) else [])
    want = brute([r for r in wire if FILTERS[flt](r)], keys)[offset : offset + limit]
    for form in forms:
        got = mc.query("ow", filter=flt, output_fields=["name", "price"], order_by_fields=form, limit=limit, offset=offset)
        assert [r["id"] for r in got] == [r["id"] for r in want]
        assert [(r["name"], r["price"]) for r in got] == [(r["name"], r["price"]) for r in want]


def test_search_order_by_over_the_wire(mc: MilvusClient, wire: list[dict[str, Any]]) -> None:
    q = np.random.default_rng(4).standard_normal(DIM).tolist()
    plain = mc.search("ow", [q], limit=25, output_fields=["price", "name"])[0]
    best = [dict(h["entity"], id=h["id"], distance=h["distance"]) for h in plain]
    keys: list[Key] = [("price", True, False), ("name", False, True)]
    got = mc.search("ow", [q], limit=20, offset=5, output_fields=["name"],
                    order_by_fields=[{"field": "price", "order": "asc"}, {"field": "name", "order": "desc"}])[0]  # fmt: skip
    assert [(h["id"], h["distance"]) for h in got] == [(r["id"], r["distance"]) for r in brute(best, keys)[5:25]]
    assert all(set(h["entity"]) == {"name"} for h in got)
    # a dynamic key and a JSON path, over the wire
    plain = mc.search("ow", [q], limit=15, output_fields=["dyn", "meta"])[0]
    best = [{"id": h["id"], "dyn": h["entity"]["dyn"], "p": h["entity"]["meta"].get("p")} for h in plain]
    got = mc.search("ow", [q], limit=15, order_by_fields=[{"field": "dyn", "order": "desc"}])[0]
    assert [h["id"] for h in got] == [r["id"] for r in brute(best, [("dyn", False, True)])]
    got = mc.search("ow", [q], limit=15, order_by_fields=[{"field": 'meta["p"]', "order": "asc"}])[0]
    assert [h["id"] for h in got] == [r["id"] for r in brute(best, [("p", True, False)])]


def expect(fn: Any, *words: str) -> None:
    with pytest.raises(MilvusException) as e:
        fn()
    assert e.value.code == 1100, e.value
    for w in words:
        assert w in e.value.message, e.value.message


def test_bad_order_by_over_the_wire_changes_nothing(mc: MilvusClient, wire: list[dict[str, Any]]) -> None:
    before = mc.query("ow", filter="", output_fields=["count(*)"])[0]["count(*)"]
    q = [[0.0] * DIM]
    expect(lambda: mc.query("ow", filter="", order_by_fields=[{"field": "v"}], limit=3), "FLOAT_VECTOR", "not sortable")
    expect(lambda: mc.query("ow", filter="", order_by_fields=[{"field": "nope"}], limit=3), "does not exist")
    expect(lambda: mc.query("ow", filter="", order_by_fields=[{"field": "price", "order": "up"}], limit=3),
           "invalid order direction 'up'")  # fmt: skip
    expect(lambda: mc.query("ow", filter="", order_by_fields=[{"field": "price"}]), "ORDER BY requires explicit limit")
    expect(lambda: mc.search("ow", q, limit=3, order_by_fields=[{"field": "v", "order": "desc"}]), "not sortable")
    expect(lambda: mc.search("ow", q, limit=3, order_by_fields=[{"field": "price", "order": "down"}]),
           "invalid order direction 'down'")  # fmt: skip
    # iterators: Milvus refuses ordering with them
    expect(lambda: mc.query_iterator("ow", batch_size=5, order_by_fields=[{"field": "price"}]).next(),
           "ORDER BY with iterator is not supported")  # fmt: skip
    expect(lambda: mc.search_iterator("ow", q, batch_size=5, order_by_fields=[{"field": "price"}]),
           "order_by is not supported when using search iterator")  # fmt: skip
    assert mc.query("ow", filter="", output_fields=["count(*)"])[0]["count(*)"] == before == len(wire)


def test_raw_requests_carry_nulls_option_and_hybrid_order(server: Any, wire: list[dict[str, Any]]) -> None:
    """What the protocol carries beyond pymilvus's dicts: the ``:nulls_first`` option of a
    query's ``order_by_fields``, and a hybrid search's ``order_by_fields`` rank param."""
    import grpc

    channel = grpc.insecure_channel(f"127.0.0.1:{server.port}")
    stub = milvus_pb2_grpc.MilvusServiceStub(channel)
    req = milvus_pb2.QueryRequest(collection_name="ow", expr="", output_fields=["price"])
    for k, v in (("limit", "12"), ("order_by_fields", "price:asc:nulls_first,id:desc")):
        req.query_params.add(key=k, value=v)
    reply = stub.Query(req)
    assert reply.status.code == 0, reply.status.reason
    ids = list(next(f for f in reply.fields_data if f.field_name == "id").scalars.long_data.data)
    assert ids == [r["id"] for r in brute(wire, [("price", True, True), ("id", False, True)])[:12]]
    bad = milvus_pb2.QueryRequest(collection_name="ow", expr="")
    bad.query_params.add(key="order_by_fields", value="price")
    bad.query_params.add(key="limit", value="x")
    reply = stub.Query(bad)
    assert reply.status.code == 1100 and "limit" in reply.status.reason
    # hybrid search: pymilvus has no order_by for it; the protocol carries it in rank_params
    from pymilvus import RRFRanker
    from pymilvus.client.prepare import Prepare

    qs = np.random.default_rng(8).standard_normal((2, DIM)).tolist()
    subs = [Prepare.search_requests_with_expr("ow", "v", {"metric_type": "L2"}, 20, data=[q]) for q in qs]
    hreq = Prepare.hybrid_search_request_with_ranker("ow", subs, RRFRanker(), 20, output_fields=["price"])
    plain = stub.HybridSearch(hreq)
    assert plain.status.code == 0, plain.status.reason
    prices = list(plain.results.fields_data[0].scalars.double_data.data)
    valid = list(plain.results.fields_data[0].valid_data)
    it = iter(prices)
    best = [{"id": i, "price": next(it) if ok else None} if len(prices) < len(valid) else {"id": i, "price": prices[j] if ok else None}
            for j, (i, ok) in enumerate(zip(plain.results.ids.int_id.data, valid, strict=True))]  # fmt: skip
    hreq.rank_params.add(key="order_by_fields", value="price:desc")
    ordered = stub.HybridSearch(hreq)
    assert ordered.status.code == 0, ordered.status.reason
    assert list(ordered.results.ids.int_id.data) == [r["id"] for r in brute(best, [("price", False, True)])]
    sub = subs[0]
    sub.search_params.add(key="order_by_fields", value="price")
    hreq = Prepare.hybrid_search_request_with_ranker("ow", subs, RRFRanker(), 20)
    reply = stub.HybridSearch(hreq)
    assert reply.status.code == 1100 and "rank params" in reply.status.reason
    channel.close()
    assert common_pb2.Status().code == 0
