"""The JSON flat index (``json_cast_type: "JSON"``, index/json_flat.py) and list literals in
filters: a flat index on a JSON field answers filters on any sub-path below its path
exactly as the scan does (row for row and in count(*)), is refused where Milvus refuses it,
is loaded at restart without a rebuild and rebuilt when damaged; ``arr == [..]``,
``j["k"] != [..]`` and arrays inside json_contains* lists answer as Milvus Lite does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

import keeldb
from keeldb import DataType
from keeldb.engine import index_builder
from keeldb.errors import InvalidArgument
from keeldb.index.base import build_index, index_kind, load_index
from keeldb.index.params import scalar_index_spec
from tests.test_scalar_index import answers, check_same

N = 200


def jrow(k: int) -> dict[str, Any]:
    """Mixed JSON: numbers (ints and floats), strings, bools, nulls, arrays and objects at
    the same sub-paths; some rows without the path, some null rows."""
    b: Any = [k % 7, k / 4, f"s{k % 5}", k % 3 == 0, None, [k % 3, 1], {"x": k % 2}][k % 7]
    j: Any = {"a": {"b": b, "c": f"c{k % 9}", "d": {"e": k % 4}}, "n": k % 10, "l": [[1, k % 3], [k % 2], []][k % 3],
         "m": [[1, k % 3], [k % 2], 5][: k % 4]}
    if k % 11 == 0:
        j = {"a": k % 3}  # a is not an object here
    elif k % 13 == 0:
        j = {"n": f"{k}"}
    return {"id": k, "v": [float(k % 5), 1.0], "j": None if k % 17 == 0 else j,
            "arr": None if k % 19 == 0 else [k % 3, k % 2][: k % 3]}  # fmt: skip


FILTERS = [
    'j["a"]["b"] == 3', 'j["a"]["b"] != 3', 'j["a"]["b"] > 2', 'j["a"]["b"] <= 1.25', '1 <= j["a"]["b"] < 5',
    'j["a"]["b"] in [1, 2, 30.25]', 'j["a"]["b"] not in [0, 1]', 'j["a"]["b"] == "s2"', 'j["a"]["b"] like "s%"',
    'j["a"]["b"] == true', 'j["a"]["b"] != false', 'j["a"]["b"] is null', 'j["a"]["b"] is not null', 'exists j["a"]["b"]',
    'j["a"]["c"] like "%3"', 'j["a"]["c"] > "c5"', 'j["a"]["d"]["e"] == 2', 'j["a"]["d"] is null', 'j["a"] == 1',
    'j["n"] >= 5 and j["a"]["c"] == "c4"', 'not (j["n"] < 3) or j["a"]["b"] == false', 'j["missing"]["x"] == 1',
    'j["n"] == "26"', 'j is null', 'j is not null', 'j["a"]["b"]["x"] == 1',
]  # fmt: skip
# Read by the scan, not the flat index (arrays are not walked; arrays compared whole).
SCANNED = ['j["l"][0] == 1', 'j["l"] == [1, 1]', 'json_contains(j["l"], 1)', 'j["a"]["b"] + 1 == 4']


def create(c: Any, *, index: bool = True, cast: str = "JSON", path: str | None = None) -> None:
    s = c.create_schema(enable_dynamic_field=True)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("j", DataType.JSON, nullable=True)
    s.add_field("arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4, nullable=True)
    ip = c.prepare_index_params()
    ip.add_index("v", "FLAT", metric_type="L2")
    if index:
        params = {"json_cast_type": cast, **({"json_path": path} if path else {})}
        ip.add_index("j", "INVERTED", index_name="jf", params=params)
    c.create_collection("t", schema=s, index_params=ip)


@pytest.fixture
def flat(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    c = keeldb.Client(str(tmp_path / "db"))
    create(c, cast="json")
    c.insert("t", [jrow(k) for k in range(N // 2)])
    c.flush("t")
    c.insert("t", [jrow(k) for k in range(N // 2, N)])
    c.flush("t")
    c.insert("t", [jrow(k) for k in range(N, N + 20)])  # growing rows: scanned
    c.delete("t", filter="id in [4, 77, 150]")
    c.wait_for_index("t")
    yield c
    c.close()


def test_flat_index_answers_every_sub_path_as_the_scan(flat: keeldb.Client) -> None:
    check_same(flat, FILTERS)
    check_same(flat, SCANNED, must_use=False)
    d = flat.describe_index("t", "jf")
    assert d["json_cast_type"] == "json" and d["index_type"] == "INVERTED"


def test_flat_index_below_a_path_and_beside_typed_indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Several flat indexes (at j["a"] and j["a"]["d"]) and a typed one on the same field:
    each path is answered, below an index's path only."""
    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    c = keeldb.Client(str(tmp_path / "db"))
    create(c, path='j["a"]')
    ip = c.prepare_index_params()
    ip.add_index("j", "AUTOINDEX", index_name="jd", params={"json_cast_type": "Json", "json_path": "j['a']['d']"})
    ip.add_index("j", "INVERTED", index_name="jn", params={"json_cast_type": "double", "json_path": 'j["n"]'})
    c.create_index("t", ip)
    c.insert("t", [jrow(k) for k in range(N)])
    c.flush("t")
    c.wait_for_index("t")
    try:
        check_same(c, [f for f in FILTERS if 'j["a"]' in f and " or " not in f])
        check_same(c, ['j["n"] >= 5', 'j["a"]["d"]["e"] in [1, 3]'])
        check_same(c, ['j is null', 'j["n"] == "26"', 'j["missing"] == 1'], must_use=False)  # not below jf's path
    finally:
        c.close()


@pytest.mark.parametrize("kind,params,message", [
    ("INVERTED", {"json_cast_type": "JSON", "json_cast_function": "STRING_TO_DOUBLE"}, "not supported for json_cast_type JSON"),
    ("NGRAM", {"json_cast_type": "JSON", "min_gram": 2, "max_gram": 3}, "only supports VARCHAR cast type"),
    ("BITMAP", {"json_cast_type": "JSON"}, "bitmap index are only supported"),
    ("STL_SORT", {"json_cast_type": "JSON"}, "STL_SORT are only supported"),
])  # fmt: skip
def test_flat_index_refused_as_milvus_refuses(kind: str, params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        scalar_index_spec(kind, "j", DataType.JSON, None, params)


def _column(rows: list[Any]) -> pa.Array:
    import json

    return pa.array([None if r is None else json.dumps(r) for r in rows], type=pa.string())


def test_dynamic_field_key_index_and_file_checks(tmp_path: Path) -> None:
    """An index on a key of the dynamic field is one on ``$meta`` at that key
    (engine/catalog.py): the flat index built so answers the key's sub-paths; its file
    round-trips, is checked at load and refuses inconsistent pointers."""
    spec = scalar_index_spec("INVERTED", "$meta", DataType.JSON, None, {"json_cast_type": "JSON", "json_path": '$meta["k"]'})
    assert index_kind(spec).file_ext == "jsonflat"
    rows = [{"k": {"x": i % 4, "y": f"v{i % 3}"}} if i % 5 else {"other": 1} for i in range(50)]
    index = build_index(spec, _column(rows))
    path = tmp_path / "idx.jsonflat"
    size, _ = index.save(path)
    assert size == path.stat().st_size
    loaded = load_index(spec, path)
    assert loaded.relative(("k", "x")) == ("x",) and loaded.relative(("other",)) is None
    view = loaded.typed(("x",), "num")
    assert view is not None
    assert sorted(view.compare("==", 2).tolist()) == [i for i in range(50) if i % 5 and i % 4 == 2]
    assert len(loaded.present(())) == 40 and len(loaded.present(("nope",))) == 0
    raw = bytearray(path.read_bytes())
    header_end = raw.index(b"}", 16) + 1
    assert header_end < len(raw)
    arrays = dict(loaded.a)
    arrays["pres_rows"] = np.asarray(loaded.a["pres_rows"]).copy()
    arrays["pres_rows"][0] = 10**6  # a row past the end: refused at load
    bad = type(loaded)(spec, loaded.ntotal, arrays)
    bad.save(tmp_path / "bad.jsonflat")
    with pytest.raises(keeldb.errors.CorruptionError):
        load_index(spec, tmp_path / "bad.jsonflat")


def test_numbers_beyond_2_53_are_left_to_the_scan(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    c = keeldb.Client(str(tmp_path / "db"))
    create(c)
    c.insert("t", [{"id": k, "v": [0.0, 1.0], "j": {"big": 2**60 + k % 3, "s": k % 4}} for k in range(30)])
    c.flush("t")
    c.wait_for_index("t")
    try:
        check_same(c, [f"j[\"big\"] == {2**60 + 1}", 'j["s"] == 9007199254740993'], must_use=False)
        check_same(c, ['j["s"] == 2', 'j["big"] is not null'])
    finally:
        c.close()


def test_restart_loads_without_rebuild_and_damage_is_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    path = str(tmp_path / "db")
    c = keeldb.Client(path)
    create(c)
    c.insert("t", [jrow(k) for k in range(N)])
    c.flush("t")
    c.wait_for_index("t")
    exprs = FILTERS[:6]
    want = {e: answers(c, e, indexed=False) for e in exprs}
    files = [e.file for e in c._coll("t")._versions.current.indexes if "#" in e.field]
    assert len(files) == 1 and files[0].endswith(".jsonflat")
    c.close()

    c = keeldb.Client(path)
    coll = c._coll("t")
    assert not coll.report.indexes_skipped
    assert [e.file for e in coll._versions.current.indexes if "#" in e.field] == files  # not rebuilt
    check_same(c, exprs)
    c.close()

    victim = next(Path(path).rglob(files[0]))
    raw = bytearray(victim.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    victim.write_bytes(bytes(raw))
    c = keeldb.Client(path)
    coll = c._coll("t")
    assert any(files[0] in s for s in coll.report.indexes_skipped)
    assert {e: answers(c, e, indexed=True) for e in exprs} == want  # scanned meanwhile
    c.wait_for_index("t")
    now = [e.file for e in coll._versions.current.indexes if "#" in e.field]
    assert len(now) == 1 and now != files
    check_same(c, exprs)
    c.close()


# -- list literals ---------------------------------------------------------------------------------

LIST_FILTERS = [
    "arr == [1, 1]", "arr == []", "arr != [2, 0]", "arr == [2]", 'j["l"] == [1, 1]', 'j["l"] != [1, 2]',
    'j["l"] == []', 'j["a"]["b"] == [1, 1]', 'json_contains(j["m"], [1, 0])', "json_contains_all(j[\"m\"], [[1, 2], 5])",
    'json_contains_any(j["m"], [[1, 0], [1, 1], 5])', 'array_contains_any(j["m"], [[0], [1.0]])',
    'not (j["l"] == [0])', 'j["l"] == [1.0, 2] or arr == [0, 1]',
]  # fmt: skip


def test_list_literals_scan_equal_with_and_without_index(flat: keeldb.Client) -> None:
    check_same(flat, LIST_FILTERS, must_use=False)
    ids = sorted(r["id"] for r in flat.query("t", 'j["l"] == [1, 1]', output_fields=["id"]))
    assert ids == [k for k in range(N + 20) if k not in (4, 77, 150) and isinstance(jrow(k)["j"], dict)
                   and jrow(k)["j"].get("l") == [1, 1]]  # fmt: skip


@pytest.mark.parametrize("expr,message", [
    ("arr < [1]", "cannot order arrays"),
    ("arr == [1.5]", "float literal cannot be an element"),
    ('arr == ["a"]', "cannot be an element"),
    ('j["k"] in [[1], 2]', "cannot hold arrays"),
    ("id == [1]", "cannot compare"),
])  # fmt: skip
def test_list_literal_refusals(flat: keeldb.Client, expr: str, message: str) -> None:
    with pytest.raises(keeldb.errors.FilterError, match=message):
        flat.query("t", expr, output_fields=["id"])


def _j(k: int, key: str) -> Any:
    j = jrow(k)["j"]
    return j.get(key) if isinstance(j, dict) else None


# Milvus Lite parses none of these (``unexpected token '['``, ``unknown AST node: ListLit``);
# the reference is Milvus's plan semantics (CompareTwoJsonArray), written out in Python.
REFERENCE = {
    "arr == [1, 1]": lambda k: jrow(k)["arr"] == [1, 1],
    "arr != [2, 0]": lambda k: jrow(k)["arr"] is not None and jrow(k)["arr"] != [2, 0],
    'j["l"] == [1, 1]': lambda k: _j(k, "l") == [1, 1],
    'j["l"] != [1, 2]': lambda k: type(_j(k, "l")) is list and _j(k, "l") != [1, 2],
    'json_contains(j["m"], [1, 0])': lambda k: type(_j(k, "m")) is list and [1, 0] in _j(k, "m"),
    'json_contains_all(j["m"], [[1, 2], 5])': lambda k: type(_j(k, "m")) is list and [1, 2] in _j(k, "m") and 5 in _j(k, "m"),
    'array_contains_any(j["m"], [[0], [1.0]])': lambda k: type(_j(k, "m")) is list and ([0] in _j(k, "m") or [1] in _j(k, "m")),
}


def test_list_literals_answer_as_milvus_plans_them(flat: keeldb.Client) -> None:
    live = [k for k in range(N + 20) if k not in (4, 77, 150)]
    for e, ref in REFERENCE.items():
        got = sorted(r["id"] for r in flat.query("t", e, output_fields=["id"]))
        assert got == [k for k in live if ref(k)], e
