"""Schema changes on a live collection: ``add_collection_field`` (rows written before read
the default or null, from segment files, from replayed log records, from the growing
segment, and after compaction), ``alter_collection_field``, ``alter_collection_properties``
/ ``drop_collection_properties``, each with Milvus's refusals and nothing changed by a
refused call. The kill -9 tests at ``schema.before_commit`` / ``schema.after_commit`` are
in the crash matrix (tests/crash_workload.py drives both points)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import keeldb
from keeldb import DataType
from keeldb.engine.properties import CollectionLoaded
from keeldb.errors import InvalidArgument
from tests.scalar_util import base_schema, create_flat

ROOT = Path(__file__).resolve().parent.parent


def _open(path: Path) -> keeldb.Client:
    c = keeldb.Client(str(path))
    if not c.has_collection("c"):
        s = base_schema(c)
        s.add_field("n", DataType.INT64)
        create_flat(c, "c", s)
    return c


def _rows(lo: int, hi: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"id": i, "v": [float(i), 0.0], "n": i, **extra} for i in range(lo, hi)]


def _all(c: keeldb.Client, *fields: str) -> dict[int, tuple[Any, ...]]:
    return {r["id"]: tuple(r[f] for f in fields) for r in c.query("c", "", output_fields=["id", *fields])}


def test_added_fields_read_default_everywhere(tmp_path: Path) -> None:
    c = _open(tmp_path)
    c.insert("c", _rows(0, 10))
    c.flush("c")  # 0..9 in a segment file
    c.insert("c", _rows(10, 20))  # 10..19 in the log and the growing segment
    c.add_collection_field("c", "added", DataType.VARCHAR, max_length=8, nullable=True, default_value="old")
    c.add_collection_field("c", "plain", DataType.DOUBLE, nullable=True)
    c.add_collection_field("c", "arr", DataType.ARRAY, element_type=DataType.INT64, max_capacity=3, nullable=True)
    c.insert("c", [{"id": 20, "v": [20, 0], "n": 20, "added": "new", "plain": 1.5, "arr": [1]}])
    want = {i: ("old", None, None) for i in range(20)} | {20: ("new", 1.5, [1])}
    assert _all(c, "added", "plain", "arr") == want
    assert sorted(r["id"] for r in c.query("c", 'added == "old"', output_fields=["id"])) == list(range(20))
    assert c.query("c", "plain is null", output_fields=["count(*)"])[0]["count(*)"] == 20
    c.close()
    c = _open(tmp_path)  # a segment file and log records from before the change, conformed
    assert _all(c, "added", "plain", "arr") == want
    c.flush("c")
    c.compact("c")
    c.close()
    c = _open(tmp_path)
    assert _all(c, "added", "plain", "arr") == want
    fields = [f["name"] for f in c.describe_collection("c")["fields"]]
    assert fields == ["id", "v", "n", "added", "plain", "arr"]


ADD_REFUSALS: list[tuple[str, dict[str, Any], str]] = [
    ("not nullable", {"data_type": DataType.INT64}, "added field must be nullable, please check it, field name = f"),
    ("vector", {"data_type": DataType.FLOAT_VECTOR, "dim": 2, "nullable": True}, "not support to add vector field"),
    ("primary", {"data_type": DataType.INT64, "is_primary": True, "nullable": True}, "not support to add pk field"),
    ("partition key", {"data_type": DataType.INT64, "is_partition_key": True, "nullable": True}, "not support to add partition key"),
    ("duplicate", {"field_name": "n", "data_type": DataType.INT64, "nullable": True}, "duplicate field name: n"),
    ("max_length", {"data_type": DataType.VARCHAR, "max_length": 65536, "nullable": True}, "should be in (0, 65535]"),
    ("no max_length", {"data_type": DataType.VARCHAR, "nullable": True}, "type param(max_length) should be specified"),
    ("auto_id", {"data_type": DataType.INT64, "auto_id": True, "nullable": True}, "auto_id can only be specified on the primary"),
    ("default of wrong type", {"data_type": DataType.INT64, "nullable": True, "default_value": "x"}, "is not equal to the type"),
    ("unknown argument", {"data_type": DataType.INT64, "nullable": True, "colour": 1}, "unsupported arguments"),
    ("json default", {"data_type": DataType.JSON, "nullable": True, "default_value": {"a": 1}}, "type not support default_value"),
]


@pytest.mark.parametrize("what,args,words", ADD_REFUSALS, ids=[a[0] for a in ADD_REFUSALS])
def test_add_field_refusals_change_nothing(tmp_path: Path, what: str, args: dict[str, Any], words: str) -> None:
    c = _open(tmp_path)
    c.insert("c", _rows(0, 3))
    before = c.describe_collection("c")
    args = {"field_name": "f", **args}
    with pytest.raises(InvalidArgument) as info:
        c.add_collection_field("c", **args)
    assert words in str(info.value)
    assert c.describe_collection("c") == before
    assert _all(c, "n") == {i: (i,) for i in range(3)}


def test_alter_field(tmp_path: Path) -> None:
    c = _open(tmp_path)
    c.add_collection_field("c", "s", DataType.VARCHAR, max_length=4, nullable=True)
    c.add_collection_field("c", "a", DataType.ARRAY, element_type=DataType.VARCHAR, max_length=2, max_capacity=2, nullable=True)
    with pytest.raises(InvalidArgument, match="exceeds max length.*max_length 4"):
        c.insert("c", _rows(0, 1, s="12345"))
    c.alter_collection_field("c", "s", {"max_length": 8})
    c.alter_collection_field("c", "a", {"max_capacity": 3, "max_length": 5})
    c.insert("c", _rows(0, 1, s="12345", a=["abcde", "b", "c"]))
    assert _all(c, "s", "a") == {0: ("12345", ["abcde", "b", "c"])}
    fields = {f["name"]: f for f in c.describe_collection("c")["fields"]}
    assert fields["s"]["params"]["max_length"] == 8 and fields["a"]["params"]["max_capacity"] == 3
    with pytest.raises(CollectionLoaded, match="can not alter collection field properties if collection loaded"):
        c.alter_collection_field("c", "s", {"mmap_enabled": True})
    c.release_collection("c")
    c.alter_collection_field("c", "s", {"mmap_enabled": True})
    assert c.describe_collection("c")["fields"][3]["params"]["mmap_enabled"] is True
    for params, words in (
        ({"max_length": 5}, "can not modify the maxlength for non-string types"),
        ({"max_capacity": 5}, "can not modify the maxcapacity for non-array types"),
        ({"dim": 5}, "dim does not allow update in collection field param"),
    ):
        with pytest.raises(InvalidArgument, match=words):
            c.alter_collection_field("c", "n", params)
    with pytest.raises(InvalidArgument, match="should be in \\(0, 4096\\]"):
        c.alter_collection_field("c", "a", {"max_capacity": 5000})
    with pytest.raises(InvalidArgument, match="not found"):
        c.alter_collection_field("c", "nope", {"max_length": 5})
    c.close()
    c = keeldb.Client(str(tmp_path))
    assert {f["name"]: f for f in c.describe_collection("c")["fields"]}["s"]["params"]["max_length"] == 8


def test_properties(tmp_path: Path) -> None:
    c = _open(tmp_path)
    assert c.describe_collection("c")["properties"] == {"timezone": "UTC"}  # Milvus's one default
    c.alter_collection_properties("c", {"collection.ttl.seconds": 100, "my.key": "x"})
    assert c.describe_collection("c")["properties"] == {"timezone": "UTC", "collection.ttl.seconds": "100", "my.key": "x"}
    for props, words in (
        ({"mmap.enabled": True}, "can not alter mmap properties if collection loaded"),
        ({"lazyload.enabled": True}, "can not alter mmap properties if collection loaded"),
    ):
        with pytest.raises(CollectionLoaded, match=words):
            c.alter_collection_properties("c", props)
    for props, words in (
        ({"collection.ttl.seconds": "soon"}, "collection TTL is not a valid positive integer"),
        ({"collection.ttl.seconds": -2}, "collection TTL is out of range"),
        ({"timezone": "Nowhere/Land"}, "unknown or invalid IANA Time Zone ID: Nowhere/Land"),
        ({"dynamicfield.enabled": False}, "dynamic schema cannot supported to be disabled"),
        ({"partitionkey.isolation": True}, "no partition key field is set"),
        ({}, "no properties or delete keys provided"),
    ):
        with pytest.raises(InvalidArgument, match=words):
            c.alter_collection_properties("c", props)
    with pytest.raises(CollectionLoaded, match="can not delete mmap properties if collection loaded"):
        c.drop_collection_properties("c", ["mmap.enabled"])
    with pytest.raises(InvalidArgument, match="cannot delete key dynamicfield.enabled"):
        c.drop_collection_properties("c", ["dynamicfield.enabled"])
    c.release_collection("c")
    c.alter_collection_properties("c", {"mmap.enabled": "true"})
    c.drop_collection_properties("c", ["my.key", "collection.ttl.seconds", "absent"])
    assert c.describe_collection("c")["properties"] == {"timezone": "UTC", "mmap.enabled": "true"}
    c.close()
    c = keeldb.Client(str(tmp_path))
    assert c.describe_collection("c")["properties"] == {"timezone": "UTC", "mmap.enabled": "true"}


def test_enable_dynamic_field_later(tmp_path: Path) -> None:
    c = _open(tmp_path)
    c.insert("c", _rows(0, 3))
    with pytest.raises(InvalidArgument, match="unknown field"):
        c.insert("c", _rows(3, 4, extra=1))
    c.alter_collection_properties("c", {"dynamicfield.enabled": True})
    c.insert("c", _rows(3, 4, extra=1))
    got = {r["id"]: r.get("extra") for r in c.query("c", "", output_fields=["*"])}
    assert got == {0: None, 1: None, 2: None, 3: 1}
    assert c.query("c", "extra == 1", output_fields=["id"]) == [{"id": 3}]
    assert c.describe_collection("c")["enable_dynamic_field"] is True


def test_writes_racing_a_schema_change_get_the_new_column(tmp_path: Path) -> None:
    """A batch converted against the old schema and written after the change: it lands
    with the added field's default, never with a missing column."""
    c = _open(tmp_path)
    coll = c._coll("c")
    from keeldb.engine.rows import rows_to_batch

    batch = rows_to_batch(coll.schema, _rows(0, 2), require_pk=False)
    c.add_collection_field("c", "added", DataType.INT64, nullable=True, default_value=5)
    coll.write(batch, upsert=False)
    assert _all(c, "added") == {0: (5,), 1: (5,)}
    c.close()
    c = _open(tmp_path)
    assert _all(c, "added") == {0: (5,), 1: (5,)}


@pytest.mark.parametrize("point", ["schema.before_commit", "schema.after_commit"])
def test_killed_at_a_schema_change(tmp_path: Path, point: str) -> None:
    """kill -9 at each side of the commit: the reopened collection has the old schema or
    the new one, never half, and its rows are all there either way."""
    code = f"""
import sys, keeldb
sys.path.insert(0, {str(ROOT)!r})
from tests.test_schema_change import _open, _rows
c = _open(sys.argv[1])
c.insert("c", _rows(0, 5)); c.flush("c"); c.insert("c", _rows(5, 8))
c.add_collection_field("c", "added", keeldb.DataType.INT64, nullable=True, default_value=3)
"""
    env = dict(os.environ, KEELDB_CRASH_AT=point, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env, capture_output=True, timeout=120)
    assert proc.returncode == -9, proc.stderr.decode()[-2000:]
    c = _open(tmp_path)
    names = [f["name"] for f in c.describe_collection("c")["fields"]]
    if point == "schema.before_commit":
        assert names == ["id", "v", "n"]
        assert _all(c, "n") == {i: (i,) for i in range(8)}
    else:
        assert names == ["id", "v", "n", "added"]
        assert _all(c, "n", "added") == {i: (i, 3) for i in range(8)}
