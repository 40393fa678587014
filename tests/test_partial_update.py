"""``upsert(..., partial_update=True)``: only the given fields change, the rest keep their
exact stored values (vectors, geometries, timestamps, arrays, JSON), dynamic keys merge,
keys that are not live are inserts (Milvus's refusal when a required field is missing),
and the batch is one record, one timestamp: atomic under concurrent readers and through a
crash (tests/test_crash_matrix.py and the hypothesis model cover those)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import keeldb
from keeldb import DataType
from keeldb.errors import InvalidArgument
from tests.scalar_util import base_schema, create_flat


def _open(path: Path) -> keeldb.Client:
    c = keeldb.Client(str(path))
    if not c.has_collection("c"):
        s = base_schema(c, dynamic=True)
        s.add_field("title", DataType.VARCHAR, max_length=16)
        s.add_field("issue", DataType.VARCHAR, max_length=16, nullable=True)
        s.add_field("score", DataType.FLOAT, default_value=0.5)
        s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4, nullable=True)
        s.add_field("t", DataType.TIMESTAMPTZ, nullable=True)
        s.add_field("g", DataType.GEOMETRY, nullable=True)
        s.add_field("j", DataType.JSON, nullable=True)
        create_flat(c, "c", s)
    return c


FULL = {
    "v": [0.1, 0.7], "title": "first", "issue": "vol.1", "score": 0.25, "tags": [1, 2],
    "t": "2025-05-01T23:59:59.123456+08:00", "g": "POINT(0.1 0.30000000000000004)", "j": {"a": 1}, "author": "John",
}  # fmt: skip


def _get(c: keeldb.Client, k: int) -> dict[str, Any]:
    return c.get("c", [k], output_fields=["*"])[0]


def test_only_given_fields_change(tmp_path: Path) -> None:
    c = _open(tmp_path)
    c.insert("c", [{"id": 1, **FULL, "year": 2020}, {"id": 2, **FULL}])
    c.flush("c")  # keep values from a segment file...
    before = _get(c, 1)
    out = c.upsert("c", [{"id": 1, "issue": "vol.2", "genre": "fantasy", "year": 2021}], partial_update=True)
    assert out["upsert_count"] == 1 and out["ids"] == [1]
    after = _get(c, 1)
    assert after == {**before, "issue": "vol.2", "genre": "fantasy", "year": 2021}  # dynamic keys merged
    c.upsert("c", [{"id": 1, "tags": [9], "j": {"b": 2}, "issue": None}], partial_update=True)  # ...and from the log
    assert _get(c, 1) == {**after, "tags": [9], "j": {"b": 2}, "issue": None}  # JSON and ARRAY replaced whole
    assert _get(c, 2) == {"id": 2, **{k: v for k, v in before.items() if k not in ("id", "year")}}
    assert c.query("c", "", output_fields=["count(*)"])[0]["count(*)"] == 2
    c.close()
    c = _open(tmp_path)
    assert _get(c, 1)["issue"] is None and _get(c, 1)["g"] == before["g"] and _get(c, 1)["t"] == before["t"]


def test_a_key_that_is_not_live_is_an_insert(tmp_path: Path) -> None:
    c = _open(tmp_path)
    c.insert("c", [{"id": 1, **FULL}])
    c.upsert("c", [{"id": 5, "v": [1, 1], "title": "new"}], partial_update=True)
    got = _get(c, 5)
    assert got["title"] == "new" and got["score"] == 0.5 and got["issue"] is None and got["tags"] is None
    before = c.query("c", "", output_fields=["*"])
    with pytest.raises(InvalidArgument, match=r"fieldSchema\(title\) has no corresponding fieldData pass in"):
        c.upsert("c", [{"id": 1, "issue": "x"}, {"id": 6, "v": [0, 0]}], partial_update=True)
    c.delete("c", ids=[5])
    with pytest.raises(InvalidArgument, match=r"fieldSchema\(v\) has no corresponding fieldData pass in"):
        c.upsert("c", [{"id": 5, "title": "gone"}], partial_update=True)
    assert c.query("c", "", output_fields=["*"]) == [r for r in before if r["id"] != 5]


BAD = [
    ("unknown field without dynamic", None, "unknown"),
    ("wrong type", {"id": 1, "score": "high"}, "expects FLOAT"),
    ("over-long string", {"id": 1, "title": "x" * 17}, "max_length 16"),
    ("array over capacity", {"id": 1, "tags": [1, 2, 3, 4, 5]}, "exceeds max_capacity"),
    ("no key", {"title": "x"}, "needs the primary key"),
    ("key twice", [{"id": 1, "title": "a"}, {"id": 1, "title": "b"}], "twice"),
    ("key of the wrong type", {"id": "1", "title": "a"}, "not an INT64"),
    ("bad vector", {"id": 1, "v": [1.0]}, "dimension"),
]


@pytest.mark.parametrize("what,row,words", BAD, ids=[b[0] for b in BAD])
def test_bad_partial_updates_change_nothing(tmp_path: Path, what: str, row: Any, words: str) -> None:
    c = _open(tmp_path)
    c.insert("c", [{"id": 1, **FULL}, {"id": 2, **FULL}])
    before = c.query("c", "", output_fields=["*"])
    if row is None:  # a collection without a dynamic field
        s = base_schema(c)
        create_flat(c, "nodyn", s)
        c.insert("nodyn", [{"id": 1, "v": [0, 0]}])
        with pytest.raises(InvalidArgument, match=words):
            c.upsert("nodyn", [{"id": 1, "nope": 1}], partial_update=True)
        assert c.query("nodyn", "", output_fields=["*"]) == [{"id": 1, "v": [0.0, 0.0]}]
        return
    batch = row if isinstance(row, list) else [{"id": 2, "title": "fine"}, row]
    with pytest.raises(InvalidArgument, match=words):
        c.upsert("c", batch, partial_update=True)
    assert c.query("c", "", output_fields=["*"]) == before


def test_field_ops_other_than_replace_refused(tmp_path: Path) -> None:
    c = _open(tmp_path)
    c.insert("c", [{"id": 1, **FULL}])
    with pytest.raises(InvalidArgument, match="ARRAY_APPEND / ARRAY_REMOVE are not supported"):
        c.upsert("c", [{"id": 1, "tags": [3]}], field_ops={"tags": "array_append"})


def test_readers_never_see_half_a_partial_batch(tmp_path: Path) -> None:
    """Every snapshot holds all rows of a batch at the same version: one record, one ts."""
    c = _open(tmp_path)
    c.insert("c", [{"id": i, **FULL, "score": 0.0} for i in range(50)])
    stop = threading.Event()
    bad: list[Any] = []

    def reader() -> None:
        while not stop.is_set():
            scores = {r["score"] for r in c.query("c", "", output_fields=["score"])}
            if len(scores) != 1:
                bad.append(scores)

    t = threading.Thread(target=reader)
    t.start()
    for step in range(1, 30):
        c.upsert("c", [{"id": i, "score": float(step)} for i in range(50)], partial_update=True)
    stop.set()
    t.join()
    assert not bad
    assert {r["score"] for r in c.query("c", "", output_fields=["score"])} == {29.0}
    assert {r["title"] for r in c.query("c", "", output_fields=["title"])} == {"first"}
