"""Partition keys: rows routed by hash to ``num_partitions`` internal partitions, filters on
the key reading only those partitions, Milvus's refusals of every manual partition call,
partition key isolation, and what describe_collection / list_partitions show."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import keeldb
from keeldb import DataType
from keeldb.engine import partition_key
from keeldb.errors import InvalidArgument
from tests.scalar_util import base_schema, create_flat


def _open(path: Path, key_type: DataType = DataType.INT64, **kw: Any) -> keeldb.Client:
    c = keeldb.Client(str(path))
    if not c.has_collection("c"):
        s = base_schema(c)
        s.add_field("tenant", key_type, is_partition_key=True, **({"max_length": 16} if key_type == DataType.VARCHAR else {}))
        create_flat(c, "c", s, **kw)
    return c


def _tenant(i: int, key_type: DataType) -> Any:
    return i % 7 if key_type == DataType.INT64 else f"t{i % 7}"


@pytest.mark.parametrize("key_type", [DataType.INT64, DataType.VARCHAR])
def test_routing_pruning_and_results(tmp_path: Path, key_type: DataType) -> None:
    c = _open(tmp_path, key_type, num_partitions=5)
    assert c.list_partitions("c") == [f"_default_{i}" for i in range(5)]
    assert c.describe_collection("c")["num_partitions"] == 5
    assert [f.get("is_partition_key") for f in c.describe_collection("c")["fields"]] == [None, None, True]
    rows = [{"id": i, "v": [float(i), 0.0], "tenant": _tenant(i, key_type)} for i in range(70)]
    c.insert("c", rows[:40])
    c.flush("c")
    c.insert("c", rows[40:])
    # Each row is in its key's partition, by the documented hash.
    coll = c._coll("c")
    parts: dict[int, int] = {}
    for v in coll.snapshot().views:
        ids = v.take(np.arange(v.num_rows), ["id"])["id"]
        parts.update(zip(ids, v.column("$partition").to_pylist(), strict=True))
    for r in rows:
        assert parts[r["id"]] == partition_key.partitions_of(5, [r["tenant"]])[0]
    one = _tenant(3, key_type)
    want = sorted(r["id"] for r in rows if r["tenant"] == one)
    assert sorted(r["id"] for r in c.query("c", f"tenant == {one!r}".replace("'", '"'), output_fields=["id"])) == want
    two = [_tenant(1, key_type), _tenant(2, key_type)]
    flt = "tenant in [" + ", ".join(f'"{t}"' if isinstance(t, str) else str(t) for t in two) + "] and id > 5"
    assert sorted(r["id"] for r in c.query("c", flt, output_fields=["id"])) == sorted(
        r["id"] for r in rows if r["tenant"] in two and r["id"] > 5
    )
    hits = c.search("c", [[0, 0]], limit=100, filter=f"tenant == {one!r}".replace("'", '"'))[0]
    assert sorted(h["id"] for h in hits) == want
    assert c.query("c", "", output_fields=["count(*)"])[0]["count(*)"] == 70
    c.delete("c", filter=f"tenant == {one!r}".replace("'", '"'))
    assert c.query("c", "", output_fields=["count(*)"])[0]["count(*)"] == 70 - len(want)
    c.close()
    c = _open(tmp_path, key_type)
    assert c.query("c", "", output_fields=["count(*)"])[0]["count(*)"] == 70 - len(want)


def test_the_key_filter_is_a_partition_mask(tmp_path: Path) -> None:
    """The pruning selector keeps only the key's partition: with the key's rows deleted, a
    filter on it finds nothing although other partitions hold matching ids."""
    c = _open(tmp_path, num_partitions=4)
    c.insert("c", [{"id": i, "v": [0, 0], "tenant": i} for i in range(40)])
    from keeldb.client import _key_selector
    from keeldb.engine.expr import parse_filter

    e = c.collection_entry("c")
    sel = _key_selector(e, parse_filter("tenant == 5 and id >= 0", e.schema))
    view = next(v for v in c._coll("c").snapshot().views if v.num_rows)
    mask = sel(view)
    part = np.asarray(view.column("$partition").to_pylist())
    assert mask.tolist() == (part == partition_key.partitions_of(4, [5])[0]).tolist()
    assert _key_selector(e, parse_filter("tenant == 5 or id == 1", e.schema)) is None  # not pinned


def test_manual_partitions_refused(tmp_path: Path) -> None:
    c = _open(tmp_path)
    assert len(c.list_partitions("c")) == partition_key.DEFAULT_NUM_PARTITIONS
    refusals = [
        (lambda: c.create_partition("c", "p"), "disable create partition if partition key mode is used"),
        (lambda: c.drop_partition("c", "_default_0"), "disable drop partition if partition key mode is used"),
        (lambda: c.load_partitions("c", ["_default_0"]), "disable load partitions if partition key mode is used"),
        (lambda: c.release_partitions("c", ["_default_0"]), "disable release partitions if partition key mode is used"),
        (lambda: c.insert("c", [{"id": 1, "v": [0, 0], "tenant": 1}], partition_name="_default_1"), partition_key.REFUSAL),
        (lambda: c.upsert("c", [{"id": 1, "v": [0, 0], "tenant": 1}], partition_name="_default_1"), partition_key.REFUSAL),
        (lambda: c.delete("c", ids=[1], partition_name="_default_1"), partition_key.REFUSAL),
        (lambda: c.query("c", "id > 0", partition_names=["_default_1"]), partition_key.REFUSAL),
        (lambda: c.search("c", [[0, 0]], partition_names=["_default_1"]), partition_key.REFUSAL),
    ]
    for fn, words in refusals:
        with pytest.raises(InvalidArgument) as info:
            fn()
        assert words in str(info.value)
    assert c.query("c", "", output_fields=["count(*)"])[0]["count(*)"] == 0


def test_schema_rules(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path))
    s = base_schema(c)
    s.add_field("a", DataType.INT64, is_partition_key=True)
    with pytest.raises(InvalidArgument, match="more than one partition key"):
        s.add_field("b", DataType.INT64, is_partition_key=True)
    with pytest.raises(InvalidArgument, match="must not be primary"):
        c.create_schema().add_field("k", DataType.INT64, is_primary=True, is_partition_key=True)
    for n, words in ((-1, "should be greater than 0"), (1025, "exceeds max configuration")):
        with pytest.raises(InvalidArgument, match=words):
            c.create_collection("c", schema=s, num_partitions=n)
    plain = c.create_schema()
    plain.add_field("id", DataType.INT64, is_primary=True)
    plain.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    with pytest.raises(InvalidArgument, match="num_partitions should only be specified with partition key"):
        c.create_collection("p", schema=plain, num_partitions=4)
    assert not c.has_collection("c") and not c.has_collection("p")


def test_isolation(tmp_path: Path) -> None:
    c = _open(tmp_path, properties={"partitionkey.isolation": "true"})
    c.insert("c", [{"id": i, "v": [float(i), 0], "tenant": i % 3} for i in range(30)])
    hits = c.search("c", [[0, 0]], limit=50, filter="tenant == 1")[0]
    assert sorted(h["id"] for h in hits) == [i for i in range(30) if i % 3 == 1]
    for flt, words in (
        ("", "partition key not found in expr"),
        ("id > 3", "partition key not found in expr"),
        ("tenant in [1, 2]", "partition key isolation does not support IN"),
        ("tenant == 1 or id == 2", "partition key not found in expr"),
    ):
        with pytest.raises(InvalidArgument, match=words):
            c.search("c", [[0, 0]], limit=5, filter=flt)
    # Changing it needs the vector index dropped first (Milvus's rule).
    with pytest.raises(InvalidArgument, match="drop the index first"):
        c.alter_collection_properties("c", {"partitionkey.isolation": "false"})
