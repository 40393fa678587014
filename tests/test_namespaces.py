"""Databases and aliases, embedded (engine/namespace.py through keeldb.Client): isolation,
Milvus's rules, one commit per change, restart."""

from __future__ import annotations

from pathlib import Path

import pytest

import keeldb
from keeldb.errors import CollectionNotFound, KeelError


def rows(ids: list[int], v: float) -> list[dict]:
    return [{"id": i, "vector": [v, 1.0]} for i in ids]


def count(c: keeldb.Client, name: str) -> int:
    return int(c.query(name, filter="", output_fields=["count(*)"])[0]["count(*)"])


def test_same_names_in_two_databases_never_meet(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path / "d"))
    c.create_database("other", properties={"owner": "team-b"})
    assert c.list_databases() == ["default", "other"]
    assert c.describe_database("other") == {"name": "other", "owner": "team-b"}
    c.create_collection("c", dimension=2)
    c.insert("c", rows([1, 2, 3], 0.0))
    o = keeldb.Client(str(tmp_path / "d"), db_name="other")  # the same directory, another database
    assert o.list_collections() == []
    with pytest.raises(CollectionNotFound):
        o.query("c", filter="id > 0")
    o.create_collection("c", dimension=2)
    o.insert("c", rows([10, 11], 1.0))
    assert count(c, "c") == 3 and count(o, "c") == 2
    assert sorted(r["id"] for r in o.search("c", [[1.0, 1.0]], limit=10)[0]) == [10, 11]
    assert sorted(r["id"] for r in c.search("c", [[1.0, 1.0]], limit=10)[0]) == [1, 2, 3]
    c.using_database("other")
    assert count(c, "c") == 2
    with pytest.raises(KeelError, match="database not found"):
        c.using_database("nope")
    o.close()
    c.close()
    c = keeldb.Client(str(tmp_path / "d"))  # after a restart
    assert count(c, "c") == 3 and c.list_databases() == ["default", "other"]
    c.using_database("other")
    assert count(c, "c") == 2 and c.list_collections() == ["c"]
    c.close()


def test_database_rules(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path / "d"))
    for bad in ("", "1x", "a.b", "a b"):
        with pytest.raises(KeelError, match="invalid database name"):
            c.create_database(bad)
    c.create_database("x")
    with pytest.raises(KeelError, match="database already exist: x"):
        c.create_database("x")
    with pytest.raises(KeelError, match="can not drop default database"):
        c.drop_database("default")
    c.using_database("x")
    c.create_collection("c", dimension=2)
    with pytest.raises(KeelError, match="not empty"):
        c.drop_database("x")
    c.drop_collection("c")
    c.alter_database_properties("x", {"a": 1, "b": "two"})
    c.drop_database_properties("x", ["a"])
    assert c.describe_database("x") == {"name": "x", "b": "two"}
    c.drop_database("x")
    c.drop_database("x")  # again: nothing to do, as in Milvus
    assert c.list_databases() == ["default"]
    with pytest.raises(KeelError, match="database not found"):
        c.list_collections()  # this client's database is gone
    c.close()


def test_alias_rules(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path / "d"))
    c.create_collection("blue", dimension=2)
    c.create_collection("green", dimension=2)
    c.insert("blue", rows([1], 0.0))
    c.insert("green", rows([1, 2], 0.0))
    c.create_alias("blue", "live")
    c.create_alias("blue", "live")  # the same again: nothing to do
    assert count(c, "live") == 1
    with pytest.raises(KeelError, match="alias to another collection"):
        c.create_alias("green", "live")
    with pytest.raises(KeelError, match="conflict"):
        c.create_alias("green", "blue")  # an alias may not shadow a collection
    with pytest.raises(KeelError, match="conflicts with an existing alias"):
        c.create_collection("live", dimension=2)
    with pytest.raises(CollectionNotFound):
        c.create_alias("nope", "x")
    with pytest.raises(KeelError, match="alias not found"):
        c.alter_alias("green", "nope")
    c.alter_alias("green", "live")  # the blue/green switch
    assert count(c, "live") == 2
    d = c.describe_collection("live")
    assert d["collection_name"] == "green" and d["aliases"] == ["live"]
    assert c.describe_alias("live") == {"alias": "live", "collection_name": "green", "db_name": "default"}
    assert c.list_aliases("green")["aliases"] == ["live"] and c.list_aliases("blue")["aliases"] == []
    c.insert("live", rows([3], 0.0))  # writes through an alias land in its collection
    assert count(c, "green") == 3
    with pytest.raises(KeelError, match="because it has aliases"):
        c.drop_collection("green")
    c.rename_collection("green", "green2")  # the alias follows
    assert c.describe_alias("live")["collection_name"] == "green2" and count(c, "live") == 3
    c.close()
    c = keeldb.Client(str(tmp_path / "d"))
    assert c.describe_alias("live")["collection_name"] == "green2"
    c.drop_alias("live")
    c.drop_alias("live")  # again: nothing to do
    c.drop_collection("green2")
    assert c.list_aliases()["aliases"] == []
    with pytest.raises(KeelError, match="alias not found"):
        c.describe_alias("live")
    c.close()


def test_a_refused_change_changes_nothing(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path / "d"))
    c.create_collection("c", dimension=2)
    c.create_alias("c", "a")
    before = (tmp_path / "d" / "CATALOG").read_bytes()
    for bad in (lambda: c.drop_collection("c"), lambda: c.create_alias("c", "c"), lambda: c.create_database("default"),
                lambda: c.drop_database("default"), lambda: c.alter_alias("nope", "a")):  # fmt: skip
        with pytest.raises(KeelError):
            bad()
    assert (tmp_path / "d" / "CATALOG").read_bytes() == before
    c.close()
