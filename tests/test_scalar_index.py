"""Scalar indexes (STL_SORT, INVERTED, BITMAP, TRIE, NGRAM, AUTOINDEX, JSON paths): accepted
on the types Milvus 2.6 accepts them on and refused elsewhere with its words, built per
sealed segment and committed beside it, loaded at restart without a rebuild, rebuilt when
damaged, dropped by drop_index -- and every filter answered through them equal, row for
row and in count(*), to the scan (``scalar_filter.ENABLED = False``)."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import keeldb
from keeldb import DataType
from keeldb.engine import index_builder
from keeldb.engine import scalar_filter as SF
from keeldb.errors import InvalidArgument

N = 240


def row(k: int) -> dict[str, Any]:
    """Deterministic rows with nulls, repeated values, NaN-free floats, JSON of mixed
    types at one path, and arrays (some empty, some null)."""
    j: Any = {"a": k % 5, "t": f"tag{k % 17}-{k}", "n": {"x": k % 3 == 0}}
    if k % 7 == 0:
        j = {"a": f"s{k % 3}", "t": k}  # other types at the paths
    elif k % 11 == 0:
        j = {"a": k / 4}  # floats among the ints
    return {
        "id": k,
        "v": [float(k % 13), 1.0],
        "i8": k % 9 - 4,
        "i16": (k * 37) % 200 - 100,
        "i32": None if k % 6 == 0 else k % 10,
        "i64": k * 1000003 % 9973,
        "f": (k % 23) / 3,
        "d": None if k % 8 == 0 else k / 7,
        "s": None if k % 9 == 0 else f"{'ab'[k % 2]}{k % 12}x{k % 5}",
        "b": None if k % 10 == 0 else k % 3 == 0,
        "j": None if k % 13 == 0 else j,
        "ai": None if k % 14 == 0 else [k % 4, k % 6, k % 4][: k % 4],
        "af": [(k % 5) / 2],
        "vs": [f"w{k % 3}", f"w{k % 5}"],
        "ab": [k % 2 == 0],
    }


def create(c: keeldb.Client, name: str = "t") -> None:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    for f, t in (("i8", DataType.INT8), ("i16", DataType.INT16), ("i32", DataType.INT32), ("i64", DataType.INT64),
                 ("f", DataType.FLOAT), ("d", DataType.DOUBLE), ("b", DataType.BOOL)):  # fmt: skip
        s.add_field(f, t, nullable=f in ("i32", "d", "b"))
    s.add_field("s", DataType.VARCHAR, max_length=32, nullable=True)
    s.add_field("j", DataType.JSON, nullable=True)
    s.add_field("ai", DataType.ARRAY, element_type=DataType.INT32, max_capacity=4, nullable=True)
    s.add_field("af", DataType.ARRAY, element_type=DataType.FLOAT, max_capacity=4)
    s.add_field("vs", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=4, max_length=8)
    s.add_field("ab", DataType.ARRAY, element_type=DataType.BOOL, max_capacity=4)
    ip = c.prepare_index_params()
    ip.add_index("v", "FLAT", metric_type="L2")
    c.create_collection(name, schema=s, index_params=ip)


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[keeldb.Client]:
    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    c = keeldb.Client(str(tmp_path / "db"))
    create(c)
    c.insert("t", [row(k) for k in range(N // 2)])
    c.flush("t")
    c.insert("t", [row(k) for k in range(N // 2, N)])
    c.flush("t")
    c.insert("t", [row(k) for k in range(N, N + 30)])  # growing rows: scanned
    c.delete("t", filter="id in [3, 50, 130, 200]")
    yield c
    c.close()


# (index type, field, params) that Milvus 2.6 accepts, and filters each one answers.
ACCEPTED: list[tuple[str, str, dict[str, Any], list[str]]] = [
    ("STL_SORT", "i8", {}, ["i8 == 2", "i8 < -1", "-2 <= i8 < 3", "i8 in [1, 3]", "i8 != 0", "i8 > 2.5"]),
    ("STL_SORT", "i64", {}, ["i64 >= 5000", "i64 == 1000003 % 9973", "i64 not in [1, 2, 3]", "4000 < i64 <= 4100"]),
    ("STL_SORT", "f", {}, ["f == 1/3", "f > 2.5", "f <= 4", "f in [0.3333333333, 1]"]),
    ("STL_SORT", "d", {}, ["d > 10", "d == 2", "d is null", "not (d < 5)", "d != 1"]),
    ("STL_SORT", "s", {}, ['s > "b"', 's like "a1%"', 's == "b1x1"']),
    ("INVERTED", "i32", {}, ["i32 == 4", "i32 != 4", "i32 is null", "i32 is not null", "not i32 in [1, 2]"]),
    ("INVERTED", "i16", {}, ["i16 < 0", "i16 in [11, -89, 5]"]),
    ("INVERTED", "d", {}, ["d >= 3 and d < 9", "d in [1, 2, 3]"]),
    ("INVERTED", "s", {}, ['s == "a2x2"', 's != "a2x2"', 's in ["b3x3", "a0x0"]', 's like "b%"', 's is null']),
    ("INVERTED", "b", {}, ["b", "not b", "b == false", "b != true", "b is null"]),
    ("INVERTED", "ai", {}, ["array_contains(ai, 3)", "array_contains_any(ai, [1, 5])", "array_contains_all(ai, [0, 3])"]),
    ("INVERTED", "af", {}, ["array_contains(af, 1.5)", "array_contains_any(af, [0, 2])"]),
    ("INVERTED", "j", {"json_path": 'j["a"]', "json_cast_type": "double"},
     ['j["a"] == 2', 'j["a"] > 2.5', 'j["a"] != 1', 'j["a"] in [0, 4]', 'j["a"] < 20', 'not (j["a"] == 3)',
      'j["a"] is null', 'j["a"] is not null']),
    ("INVERTED", "j", {"json_path": 'j["t"]', "json_cast_type": "varchar"},
     ['j["t"] == "tag3-3"', 'j["t"] like "tag1%"', 'j["t"] > "tag5"', 'j["t"] in ["tag1-1", "tag2-2"]']),
    ("INVERTED", "j", {"json_path": "j['n']['x']", "json_cast_type": "bool"}, ['j["n"]["x"] == true', 'j["n"]["x"] != true']),
    ("INVERTED", "j", {"json_path": 'j["t"]', "json_cast_type": "ARRAY_VARCHAR"}, ['j["t"] == "tag3-3"']),
    ("BITMAP", "b", {}, ["b == true", "b is not null"]),
    ("BITMAP", "i8", {}, ["i8 in [0, 1, 2]", "i8 > 0"]),
    ("BITMAP", "s", {}, ['s in ["a0x0", "b1x1"]']),
    ("BITMAP", "vs", {}, ['array_contains(vs, "w1")', 'array_contains_all(vs, ["w1", "w2"])']),
    ("BITMAP", "ab", {}, ["array_contains(ab, true)"]),
    ("TRIE", "s", {}, ['s like "a1%"', 's like "b10x0"', 's == "a4x4"', 's like "%x1"']),
    ("NGRAM", "s", {"min_gram": 2, "max_gram": 3}, ['s like "%1x%"', 's like "%10x0"', 's like "a%x2"', 's like "%2x_"']),
    ("NGRAM", "j", {"json_path": 'j["t"]', "json_cast_type": "varchar", "min_gram": 2, "max_gram": 4},
     ['j["t"] like "%g1-%"', 'j["t"] like "%-10%"', 'j["t"] is null']),
    ("AUTOINDEX", "i64", {}, ["i64 < 100"]),
    ("AUTOINDEX", "b", {}, ["b"]),
    ("AUTOINDEX", "s", {}, ['s like "a%"']),
    ("AUTOINDEX", "j", {"json_path": 'j["a"]', "json_cast_type": "DOUBLE"}, ['j["a"] >= 3']),
]
# Filters that combine indexed and unindexed parts (index + scan under Kleene logic).
MIXED = [
    "i32 == 4 and id % 3 == 0", "i32 == 4 or id < 5", "not (i32 > 5 and b)", "(d > 10 or s like \"a%\") and not i32 in [1]",
    "i32 > 3 and s like \"%x1\"", "not (i32 is null or d is null)", 'j["a"] == 2 and j["t"] like "%-1%"',
    "(i32 == 4 or d < 3) and (b or id > 100)", 'i32 != 2 and j["a"] != 1 and not b',
]  # fmt: skip


def answers(c: keeldb.Client, expr: str, *, indexed: bool) -> tuple[list[int], int]:
    SF.ENABLED = indexed
    try:
        ids = sorted(r["id"] for r in c.query("t", expr, output_fields=["id"]))
        count = c.query("t", expr, output_fields=["count(*)"])[0]["count(*)"]
    finally:
        SF.ENABLED = True
    return ids, count


def check_same(c: keeldb.Client, exprs: list[str], *, must_use: bool = True) -> None:
    for e in exprs:
        before = SF.STATS["answered"]
        got = answers(c, e, indexed=True)
        used = SF.STATS["answered"] - before
        want = answers(c, e, indexed=False)
        assert got == want, e
        assert got[1] == len(got[0])
        if must_use:
            assert used, f"no index answered {e!r}"


@pytest.mark.parametrize("kind,field,params,exprs", ACCEPTED, ids=[f"{a[0]}-{a[1]}-{i}" for i, a in enumerate(ACCEPTED)])
def test_every_kind_on_its_types_answers_as_the_scan(client: keeldb.Client, kind: str, field: str,
                                                      params: dict[str, Any], exprs: list[str]) -> None:  # fmt: skip
    ip = client.prepare_index_params()
    ip.add_index(field, kind, index_name="x", params=params)
    client.create_index("t", ip)
    d = client.describe_index("t", "x")
    assert d["index_type"] == kind and d["field_name"] == field and d["state"] == "Finished"
    assert d["indexed_rows"] == d["total_rows"] and d["pending_index_rows"] == 0
    sealed = [v.segment for v in client.snapshot("t").views if type(v.segment).__name__ == "SealedSegment"]
    assert len(sealed) == 2 and all(f"{field}#x" in s.indexes for s in sealed)
    # An ARRAY_* JSON cast answers json_contains* (test_json_array_casts_...), not comparisons.
    check_same(client, exprs, must_use=params.get("json_cast_type", "").upper() != "ARRAY_VARCHAR")


def test_several_indexes_mixed_with_scans(client: keeldb.Client) -> None:
    ip = client.prepare_index_params()
    ip.add_index("i32", "STL_SORT")
    ip.add_index("d", "INVERTED")
    ip.add_index("b", "BITMAP")
    ip.add_index("s", "NGRAM", min_gram=1, max_gram=2)
    ip.add_index("j", "INVERTED", index_name="ja", params={"json_path": 'j["a"]', "json_cast_type": "double"})
    ip.add_index("j", "NGRAM", index_name="jt", params={"json_path": 'j["t"]', "json_cast_type": "varchar", "min_gram": 2, "max_gram": 3})
    client.create_index("t", ip)
    assert sorted(client.list_indexes("t", field_name="j")) == ["ja", "jt"]
    check_same(client, MIXED)
    # search with a filter: the allowed rows come from the same path
    SF.ENABLED = True
    a = client.search("t", [[1.0, 1.0]], limit=50, filter="i32 == 4 or b", output_fields=["id"])
    SF.ENABLED = False
    b = client.search("t", [[1.0, 1.0]], limit=50, filter="i32 == 4 or b", output_fields=["id"])
    SF.ENABLED = True
    assert [h["id"] for h in a[0]] == [h["id"] for h in b[0]]


REFUSED = [
    ("BITMAP", "d", {}, "bitmap index are only supported on bool, int, string and array field"),
    ("BITMAP", "f", {}, "bitmap index are only supported on bool, int, string and array field"),
    ("BITMAP", "j", {"json_path": 'j["a"]', "json_cast_type": "double"}, "bitmap index are only supported"),
    ("BITMAP", "id", {}, "create bitmap index on primary key not supported"),
    ("BITMAP", "af", {}, "bitmap index are only supported on bool, int, string for array field"),
    ("TRIE", "i32", {}, "TRIE are only supported on varchar field"),
    ("STL_SORT", "j", {"json_path": 'j["a"]', "json_cast_type": "double"}, "STL_SORT are only supported on numeric, varchar or timestamptz field, got JSON"),
    ("STL_SORT", "b", {}, "STL_SORT are only supported"),
    ("STL_SORT", "ai", {}, "STL_SORT are only supported"),
    ("FANCY", "i32", {}, "invalid index type: FANCY"),
    ("HNSW", "i32", {}, "can't build with this index HNSW"),
    ("INVERTED", "j", {"json_path": 'j["a"]', "json_cast_type": "decimal"}, "json_cast_type decimal is not supported"),
    ("INVERTED", "j", {"json_path": 'j["a"]'}, "json index must specify cast type"),
    ("INVERTED", "j", {"json_path": 'k["a"]', "json_cast_type": "double"}, "is not a path of JSON field 'j'"),
    ("INVERTED", "i32", {"json_cast_type": "double"}, "apply to JSON fields only"),
    ("INVERTED", "j", {"json_path": 'j["a"]', "json_cast_type": "double", "json_cast_function": "STRING_TO_INT"}, "json_cast_function STRING_TO_INT is not supported"),
    ("INVERTED", "j", {"json_path": 'j["a"]', "json_cast_type": "varchar", "json_cast_function": "STRING_TO_DOUBLE"}, "json_cast_function STRING_TO_DOUBLE is not supported for json_cast_type VARCHAR"),
    ("INVERTED", "i32", {"json_cast_function": "STRING_TO_DOUBLE"}, "apply to JSON fields only"),
    ("NGRAM", "i32", {"min_gram": 1, "max_gram": 2}, "Ngram index can only be created on VARCHAR or JSON field"),
    ("NGRAM", "s", {"min_gram": 3}, "Ngram index must specify both min_gram and max_gram"),
    ("NGRAM", "s", {"min_gram": 3, "max_gram": 2}, "invalid min_gram or max_gram value"),
    ("NGRAM", "j", {"json_path": 'j["t"]', "json_cast_type": "double", "min_gram": 1, "max_gram": 2}, "only supports VARCHAR cast type"),
]  # fmt: skip


@pytest.mark.parametrize("kind,field,params,message", REFUSED, ids=[f"{a[0]}-{a[1]}-{i}" for i, a in enumerate(REFUSED)])
def test_refused_as_milvus_refuses(client: keeldb.Client, kind: str, field: str, params: dict[str, Any], message: str) -> None:
    before = client.list_indexes("t")
    ip = client.prepare_index_params()
    ip.add_index("i64", "STL_SORT")  # a good one in the same call: all or nothing
    ip.add_index(field, kind, index_name="x", params=params)
    with pytest.raises(InvalidArgument, match=_re(message)):
        client.create_index("t", ip)
    assert client.list_indexes("t") == before
    assert not any("#" in k for k in client._coll("t").index_specs)


def _re(s: str) -> str:
    import re

    return re.escape(s)


def test_one_index_per_path_and_drop(client: keeldb.Client) -> None:
    ip = client.prepare_index_params()
    ip.add_index("j", "INVERTED", index_name="ja", params={"json_path": 'j["a"]', "json_cast_type": "double"})
    ip.add_index("i32", "INVERTED", index_name="i32")
    client.create_index("t", ip)
    again = client.prepare_index_params()
    again.add_index("j", "INVERTED", index_name="other", params={"json_path": "j['a']", "json_cast_type": "double"})
    with pytest.raises(InvalidArgument, match="at most one distinct index"):
        client.create_index("t", again)
    same = client.prepare_index_params()
    same.add_index("i32", "INVERTED", index_name="i32")
    client.create_index("t", same)  # the same definition again: a no-op, as in Milvus
    client.release_collection("t")
    client.drop_index("t", "ja")
    assert "ja" not in client.list_indexes("t")
    client.load_collection("t")
    coll = client._coll("t")
    assert "j#ja" not in coll.index_specs
    for v in client.snapshot("t").views:
        assert "j#ja" not in v.segment.indexes


def test_restart_loads_without_rebuild_and_damage_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    path = str(tmp_path / "db")
    c = keeldb.Client(path)
    create(c)
    c.insert("t", [row(k) for k in range(N)])
    c.flush("t")
    ip = c.prepare_index_params()
    ip.add_index("i32", "STL_SORT")
    ip.add_index("s", "NGRAM", min_gram=2, max_gram=3)
    c.create_index("t", ip)
    exprs = ["i32 > 4", 's like "%1x%"']
    want = {e: answers(c, e, indexed=False) for e in exprs}
    files = sorted(e.file for e in c._coll("t")._versions.current.indexes if "#" in e.field)
    assert len(files) == 2
    c.close()

    c = keeldb.Client(path)
    coll = c._coll("t")
    assert coll.report.indexes_loaded >= 2 and not coll.report.indexes_skipped
    assert sorted(e.file for e in coll._versions.current.indexes if "#" in e.field) == files  # not rebuilt
    check_same(c, exprs)
    c.close()

    # Damage one file (a flipped byte): the open skips it, filters scan, the builder rebuilds.
    victim = Path(path) / "t" / files[0] if (Path(path) / "t" / files[0]).exists() else next(Path(path).rglob(files[0]))
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    c = keeldb.Client(path)
    coll = c._coll("t")
    assert any(files[0] in s for s in coll.report.indexes_skipped)
    assert {e: answers(c, e, indexed=True) for e in exprs} == want
    c.wait_for_index("t")
    now = sorted(e.file for e in coll._versions.current.indexes if "#" in e.field)
    assert len(now) == 2 and files[0] not in now
    check_same(c, exprs)
    c.close()


def test_compaction_and_upserts_keep_answers(client: keeldb.Client) -> None:
    ip = client.prepare_index_params()
    ip.add_index("i32", "INVERTED")
    ip.add_index("s", "TRIE")
    client.create_index("t", ip)
    client.upsert("t", [{**row(k), "i32": 4, "s": "zz"} for k in range(0, N, 5)])
    client.flush("t")
    client.compact("t")
    client.wait_for_index("t")
    check_same(client, ["i32 == 4", 's like "z%"', "i32 != 4 and s != \"zz\""])


# -- the server path, and Milvus Lite side by side -------------------------------------------------


def _pymilvus_collection(mc: Any, name: str) -> None:
    from pymilvus import DataType as D

    s = mc.create_schema()
    s.add_field("id", D.INT64, is_primary=True)
    s.add_field("v", D.FLOAT_VECTOR, dim=2)
    s.add_field("tag", D.INT64)
    s.add_field("name", D.VARCHAR, max_length=16)
    ip = mc.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    mc.create_collection(name, schema=s, index_params=ip)
    mc.insert(name, [{"id": k, "v": [float(k), 1.0], "tag": k % 10, "name": f"n{k % 7}"} for k in range(300)])
    mc.flush(name)
    mc.release_collection(name)
    ip = mc.prepare_index_params()
    ip.add_index("tag", index_type="INVERTED", index_name="tag_idx")
    ip.add_index("name", index_type="INVERTED", index_name="name_idx")
    mc.create_index(name, ip)
    mc.load_collection(name)


SIDE_BY_SIDE = ["tag == 7", "tag in [1, 2]", "tag > 5 and name == \"n3\"", "not (tag < 3)", 'name like "n1%"']


def test_server_create_describe_and_filter() -> None:
    from pymilvus import MilvusClient
    from pymilvus.exceptions import MilvusException

    from tests.server_util import KeelServer

    with KeelServer() as server:
        mc = MilvusClient(uri=server.uri)
        _pymilvus_collection(mc, "s")
        d = mc.describe_index("s", "tag_idx")
        assert d["index_type"] == "INVERTED" and d["field_name"] == "tag"
        assert sorted(mc.list_indexes("s")) == ["name_idx", "tag_idx", "v"]
        ip = mc.prepare_index_params()
        ip.add_index("tag", index_type="TRIE", index_name="bad")
        mc.release_collection("s")
        with pytest.raises(MilvusException, match="TRIE are only supported on varchar field"):
            mc.create_index("s", ip)
        mc.load_collection("s")
        for e in SIDE_BY_SIDE:
            got = mc.query("s", filter=e, output_fields=["count(*)"])[0]["count(*)"]
            ids = mc.query("s", filter=e, output_fields=["id"], limit=1000)
            assert got == len(ids) == sum(1 for k in range(300) if _ref(e, k)), e
        mc.close()


def _ref(e: str, k: int) -> bool:
    """The expected answer of a SIDE_BY_SIDE filter for row k (Python reads them as is)."""
    return bool(eval(e.replace('name like "n1%"', 'name.startswith("n1")'), {"tag": k % 10, "name": f"n{k % 7}"}))  # noqa: S307


@pytest.mark.skipif(importlib.util.find_spec("milvus_lite") is None, reason="milvus-lite not installed")
def test_counts_equal_to_milvus_lite(tmp_path: Path) -> None:
    """Milvus Lite builds INVERTED only (its other kinds: "not implemented"); over it the
    counts must agree with keeldb's, index and all."""
    from pymilvus import MilvusClient

    from tests.server_util import KeelServer

    lite = MilvusClient(str(tmp_path / "lite.db"))
    _pymilvus_collection(lite, "s")
    want = {e: lite.query("s", filter=e, output_fields=["count(*)"])[0]["count(*)"] for e in SIDE_BY_SIDE}
    lite.close()
    with KeelServer() as server:
        mc = MilvusClient(uri=server.uri)
        _pymilvus_collection(mc, "s")
        got = {e: mc.query("s", filter=e, output_fields=["count(*)"])[0]["count(*)"] for e in SIDE_BY_SIDE}
        mc.close()
    assert got == want


def test_stl_sort_on_timestamptz(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """STL_SORT (and AUTOINDEX, which picks it) on TIMESTAMPTZ, as Milvus 2.6 allows: ranges
    and equality with ISO literals through the index; other kinds refused."""
    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    c = keeldb.Client(str(tmp_path / "db"))
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("t", DataType.TIMESTAMPTZ, nullable=True)
    s.add_field("u", DataType.TIMESTAMPTZ)
    ip = c.prepare_index_params()
    ip.add_index("v", "FLAT", metric_type="L2")
    c.create_collection("t", schema=s, index_params=ip)
    c.insert("t", [{"id": k, "v": [1.0, 2.0], "t": None if k % 9 == 0 else f"2025-03-{1 + k % 28:02d}T{k % 24:02d}:00:00Z",
                    "u": f"2024-12-31T23:59:{k % 60:02d}+08:00"} for k in range(200)])  # fmt: skip
    c.flush("t")
    for kind, field, message in (("INVERTED", "t", "INVERTED are not supported on TIMESTAMPTZ field"),
                                 ("BITMAP", "t", "bitmap index are only supported"), ("TRIE", "u", "TRIE are only supported")):  # fmt: skip
        bad = c.prepare_index_params()
        bad.add_index(field, kind)
        with pytest.raises(InvalidArgument, match=_re(message)):
            c.create_index("t", bad)
    ip = c.prepare_index_params()
    ip.add_index("t", "STL_SORT")
    ip.add_index("u", "AUTOINDEX")
    c.create_index("t", ip)
    try:
        check_same(c, ['t > ISO "2025-03-10T00:00:00Z"', 't == ISO "2025-03-02T01:00:00Z"', "t is null",
                       'ISO "2025-03-05T00:00:00Z" <= t < ISO "2025-03-07T12:00:00+02:00"', 'u <= ISO "2024-12-31T15:59:30Z"',
                       'not (u != ISO "2024-12-31T15:59:07Z")'])  # fmt: skip
        check_same(c, ['t in [ISO "2025-03-02T01:00:00Z", ISO "2025-03-03T02:00:00+00:00", ISO "2030-01-01T00:00:00Z"]',
                       't not in [ISO "2025-03-02T01:00:00Z"]', 'not (u in [ISO "2024-12-31T15:59:07Z", ISO "2024-12-31T23:59:08+08:00"])'])  # fmt: skip
        check_same(c, ['t + INTERVAL "P1D" > ISO "2025-03-10T00:00:00Z"', "t in []"], must_use=False)  # a shifted field scans
    finally:
        c.close()


def _is_mapped(a: Any) -> bool:
    while a is not None:
        if isinstance(a, np.memmap):
            return True
        a = a.base
    return False


def test_mmap_enabled_on_a_scalar_index(client: keeldb.Client) -> None:
    """A scalar index is a file: ``mmap.enabled`` opens it memory-mapped or reads it into
    memory, at once (alter_index_properties) and at every open."""
    ip = client.prepare_index_params()
    ip.add_index("i32", "STL_SORT", index_name="x")
    client.create_index("t", ip)

    def indexes() -> list[Any]:
        return [v.segment.indexes["i32#x"] for v in client.snapshot("t").views if "i32#x" in v.segment.indexes]

    assert len(indexes()) == 2 and all(_is_mapped(i.rows) for i in indexes())
    client.release_collection("t")
    client.alter_index_properties("t", "x", {"mmap.enabled": False})
    assert client.describe_index("t", "x")["mmap.enabled"] == "False"
    client.load_collection("t")
    assert len(indexes()) == 2 and not any(_is_mapped(i.rows) for i in indexes())
    check_same(client, ["i32 > 4", "i32 is null"])


# -- JSON ARRAY_* casts and exists -----------------------------------------------------------------


def _jrow(k: int) -> dict[str, Any]:
    """JSON whose array paths mix the element types, hold non-arrays, nothing, JSON null and
    integers beyond 2**53 (where float64 terms stop being exact)."""
    j: Any = {
        "n": [k % 5, (k % 7) / 2, True if k % 3 == 0 else 2**60 + k % 2][: k % 4],
        "s": [f"x{k % 4}", k, None],
        "b": [k % 2 == 0],
        "k": None if k % 6 == 0 else k % 4,
    }
    if k % 11 == 0:
        j = {"n": "x", "s": None, "b": {}}  # not arrays; a JSON null
    return {"id": k, "v": [0.0, 1.0], "j": None if k % 13 == 0 else j}


JSON_ARRAY_FILTERS = [
    'json_contains(j["n"], 3)', 'json_contains(j["n"], 1.5)', 'json_contains(j["n"], 3.0)',
    'json_contains_any(j["n"], [1, 2.5, 7])', 'json_contains_all(j["n"], [1, 0.5])', 'json_contains_all(j["n"], [])',
    'json_contains_any(j["n"], [])', 'not json_contains(j["n"], 3)', 'array_contains(j["n"], 4)',
    'array_contains_all(j["n"], [0, 1])', 'json_contains(j["s"], "x1")', 'json_contains_any(j["s"], ["x1", "x2"])',
    'json_contains(j["b"], true)', 'not json_contains(j["b"], false)', 'exists j["n"]', 'not exists j["s"]',
    'exists j["k"]', 'exists j["b"] and json_contains(j["n"], 2)', 'json_contains(j["n"], 4) or j["k"] == 1',
]  # fmt: skip
# Items whose type has no index on the path, list items, or integers beyond 2**53: scanned.
JSON_ARRAY_SCANNED = [
    'json_contains(j["n"], true)', 'json_contains_all(j["s"], ["x1", 5])', 'json_contains(j["n"], 1152921504606846976)',
    'json_contains(j["n"], [1, 2])', 'exists j["q"]',
]  # fmt: skip


def _json_array_collection(c: Any, *, index: bool, make: Any = _jrow) -> None:
    from pymilvus import DataType as D

    s = c.create_schema()
    s.add_field("id", D.INT64, is_primary=True)
    s.add_field("v", D.FLOAT_VECTOR, dim=2)
    s.add_field("j", D.JSON, nullable=True)
    ip = c.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    c.create_collection("t", schema=s, index_params=ip)
    c.insert("t", [make(k) for k in range(0, 150)])
    c.flush("t")
    c.insert("t", [make(k) for k in range(150, 300)])
    c.flush("t")
    c.insert("t", [make(k) for k in range(300, 320)])  # growing: scanned
    if index:
        ip = c.prepare_index_params()
        for name, cast in (("n", "ARRAY_DOUBLE"), ("s", "ARRAY_VARCHAR"), ("b", "ARRAY_BOOL"), ("k", "DOUBLE")):
            ip.add_index("j", "INVERTED", index_name=name, params={"json_path": f'j["{name}"]', "json_cast_type": cast})
        c.create_index("t", ip)


def test_json_array_casts_answer_contains_and_exists(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """ARRAY_DOUBLE / ARRAY_VARCHAR / ARRAY_BOOL indexes answer json_contains[_all|_any] and
    array_contains* on their path (each item through the index of its JSON type), any JSON
    index of a path answers ``exists``; the answers are the scan's, row for row."""
    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    c = keeldb.Client(str(tmp_path / "db"))
    _json_array_collection(c, index=True)
    c.delete("t", filter="id in [4, 150, 151]")
    try:
        check_same(c, JSON_ARRAY_FILTERS)
        check_same(c, JSON_ARRAY_SCANNED, must_use=False)
    finally:
        c.close()


@pytest.mark.skipif(importlib.util.find_spec("milvus_lite") is None, reason="milvus-lite not installed")
def test_json_contains_and_exists_equal_to_milvus_lite(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Milvus Lite has no JSON-path indexes ("field type JSON does not support scalar
    index"); its scan is the reference for what keeldb's indexes answer. Bools are left out
    of the arrays compared: Lite equates ``true`` with ``1`` inside json_contains, keeldb
    (and its indexes) does not."""
    from pymilvus import MilvusClient

    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    lite = MilvusClient(str(tmp_path / "lite.db"))
    _json_array_collection(lite, index=False, make=_jrow_no_bools)
    exprs = [e for e in JSON_ARRAY_FILTERS if "j[\"b\"]" not in e and "[]" not in e]
    want = {e: sorted(r["id"] for r in lite.query("t", filter=e, output_fields=["id"], limit=1000)) for e in exprs}
    lite.close()
    c = keeldb.Client(str(tmp_path / "db"))
    _json_array_collection(c, index=True, make=_jrow_no_bools)
    try:
        for e in exprs:
            before = SF.STATS["answered"]
            assert sorted(r["id"] for r in c.query("t", e, output_fields=["id"])) == want[e], e
            assert SF.STATS["answered"] > before, e
    finally:
        c.close()


def _jrow_no_bools(k: int) -> dict[str, Any]:
    r = _jrow(k)
    if isinstance(r["j"], dict) and isinstance(r["j"]["n"], list):
        r["j"]["n"] = [e for e in r["j"]["n"] if type(e) is not bool]
    return r


# -- json_cast_function ------------------------------------------------------------------------------


def test_string_to_double_is_std_stod() -> None:
    """Milvus parses with std::stod: leading blanks, the longest readable prefix, hex, inf /
    nan; nothing readable or out of double's range is no value."""
    from keeldb.fields.json import string_to_double as f

    cases = {"12.5": 12.5, " 99x": 99.0, "abc": None, "": None, ".": None, "1e400": None, "1e-400": None,
             "4e-320": None, "0x1p3": 8.0, "-0x1.8": -1.5, "-Infinity": float("-inf"), "  +.5e1z": 5.0, "0x": 0.0,
             "1e": 1.0, "-4": -4.0, "0.0e5": 0.0}  # fmt: skip
    for text, want in cases.items():
        assert f(text) == want, text
    got = f("nan(x)")
    assert got is not None and got != got


_CAST_VALUES: list[Any] = ["12.5", 7, " 99x", "abc", True, None, 3.5, "1e400", "-4", [1], "0x10", "7"]


def _cast_row(k: int) -> dict[str, Any]:
    j = None if k % 13 == 0 else {"p": _CAST_VALUES[k % len(_CAST_VALUES)]} if k % 17 else {}
    return {"id": k, "v": [0.0, 1.0], "j": j}


def test_json_cast_function_string_to_double(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """With a STRING_TO_DOUBLE index on a path, the path's numeric comparisons (== .. >=,
    ranges, in lists of numbers) read strings as the doubles std::stod makes of them -- what
    Milvus answers from such an index -- in sealed segments (through the index) and growing
    ones (the scan) alike; strings that do not parse, bools and arrays match no number.
    String literals, arithmetic and ``is null`` read the stored values. drop_index ends it."""
    from keeldb.fields.json import string_to_double

    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    path = str(tmp_path / "db")
    c = keeldb.Client(path)
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("j", DataType.JSON, nullable=True)
    ip = c.prepare_index_params()
    ip.add_index("v", "FLAT", metric_type="L2")
    c.create_collection("t", schema=s, index_params=ip)
    c.insert("t", [_cast_row(k) for k in range(120)])
    c.flush("t")
    c.insert("t", [_cast_row(k) for k in range(120, 150)])  # growing
    ip = c.prepare_index_params()
    ip.add_index("j", "INVERTED", index_name="p",
                 params={"json_path": 'j["p"]', "json_cast_type": "double", "json_cast_function": "string_to_double"})  # fmt: skip
    c.create_index("t", ip)
    assert c.describe_index("t", "p")["json_cast_function"] == "string_to_double"

    def number(k: int) -> float | None:
        v = (_cast_row(k)["j"] or {}).get("p")
        return float(v) if type(v) in (int, float) else string_to_double(v) if type(v) is str else None

    def expect(pred: Any) -> list[int]:
        return [k for k in range(150) if number(k) is not None and pred(number(k))]

    cases = {'j["p"] > 5': expect(lambda x: x > 5), 'j["p"] == 12.5': expect(lambda x: x == 12.5),
             'j["p"] in [16, 99]': expect(lambda x: x in (16, 99)), '0 < j["p"] <= 12.5': expect(lambda x: 0 < x <= 12.5),
             'j["p"] != 7': expect(lambda x: x != 7)}  # fmt: skip
    try:
        for e, want in cases.items():
            assert answers(c, e, indexed=True)[0] == want, e
        check_same(c, [*cases, 'not (j["p"] < 0)', 'j["p"] is null', "exists j[\"p\"]"])
        check_same(c, ['j["p"] == "abc"', 'j["p"] + 0 > 5'], must_use=False)  # stored values, scanned
        assert answers(c, 'j["p"] == "7"', indexed=True)[0] == [k for k in range(150) if _cast_row(k)["j"] and _cast_row(k)["j"].get("p") == "7"]
        c.close()
        c = keeldb.Client(path)  # reopened: the index and its cast are the catalog's
        check_same(c, list(cases))
        assert answers(c, 'j["p"] > 5', indexed=True)[0] == cases['j["p"] > 5']
        c.release_collection("t")
        c.drop_index("t", "p")
        c.load_collection("t")
        stored = [k for k in range(150) if type((_cast_row(k)["j"] or {}).get("p")) in (int, float) and _cast_row(k)["j"]["p"] > 5]
        assert answers(c, 'j["p"] > 5', indexed=False)[0] == stored  # no index: numbers as stored
    finally:
        c.close()


def test_an_unindexed_and_inside_an_or_is_scanned(client: keeldb.Client) -> None:
    """`(a and b) or c` where only c has an index: the `and` is scanned whole (it raised an
    AssertionError once, found by the model test)."""
    ip = client.prepare_index_params()
    ip.add_index("i32", "INVERTED")
    client.create_index("t", ip)
    check_same(client, ["(id % 3 == 0 and d > 2) or i32 == 4", "not (id < 5 and d > 1) or i32 == 2"])
