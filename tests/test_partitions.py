"""Partitions: names, writes into them, reads restricted to them, and dropping them."""

from __future__ import annotations

from pathlib import Path

import pytest

import keeldb


@pytest.fixture
def client(tmp_path: Path):  # type: ignore[no-untyped-def]
    c = keeldb.Client(str(tmp_path / "db"))
    c.create_collection("c", dimension=2, metric_type="L2")
    c.create_partition("c", "p1")
    c.insert("c", [{"id": i, "vector": [i, 0]} for i in range(10)])
    c.insert("c", [{"id": i, "vector": [i, 0]} for i in range(10, 15)], partition_name="p1")
    yield c
    c.close()


def count(c: keeldb.Client, **kw: object) -> int:
    return c.query("c", filter="", output_fields=["count(*)"], **kw)[0]["count(*)"]


def test_names(client: keeldb.Client) -> None:
    assert client.list_partitions("c") == ["_default", "p1"]
    assert client.has_partition("c", "p1") and not client.has_partition("c", "p2")
    with pytest.raises(keeldb.InvalidArgument, match="already exists"):
        client.create_partition("c", "p1")
    with pytest.raises(keeldb.InvalidArgument, match="Invalid partition name: ../escape. The first character of a partition name"):
        client.create_partition("c", "../escape")
    assert client.describe_collection("c")["num_partitions"] == 2


def test_reads_restricted_to_partitions(client: keeldb.Client) -> None:
    assert count(client) == 15
    assert count(client, partition_names=["p1"]) == 5
    assert count(client, partition_names=["_default"]) == 10
    assert [r["id"] for r in client.query("c", filter="id > 8", partition_names=["p1"])] == [10, 11, 12, 13, 14]
    hits = client.search("c", [[0, 0]], limit=3, partition_names=["p1"])[0]
    assert [h["id"] for h in hits] == [10, 11, 12]
    assert client.get("c", ids=[1, 11], partition_names=["p1"]) == [{"id": 11}]
    assert client.get_partition_stats("c", "p1") == {"row_count": 5}
    with pytest.raises(keeldb.PartitionNotFound, match="partition name nope not found|partition not found"):
        client.query("c", filter="", partition_names=["nope"])


def test_upsert_moves_a_key_between_partitions(client: keeldb.Client) -> None:
    client.upsert("c", [{"id": 1, "vector": [1, 1]}], partition_name="p1")
    assert count(client) == 15
    assert count(client, partition_names=["p1"]) == 6
    assert client.get("c", ids=[1], output_fields=["vector"]) == [{"id": 1, "vector": [1.0, 1.0]}]


def test_delete_within_a_partition(client: keeldb.Client) -> None:
    assert client.delete("c", ids=[1, 11], partition_name="p1") == {"delete_count": 1}
    assert client.delete("c", filter="id < 5", partition_name="p1") == {"delete_count": 0}
    assert count(client) == 14


def test_drop_partition_deletes_its_rows_durably(client: keeldb.Client, tmp_path: Path) -> None:
    client.flush("c")
    client.insert("c", [{"id": 20, "vector": [2, 0]}], partition_name="p1")
    client.drop_partition("c", "p1")
    assert count(client) == 10 and client.list_partitions("c") == ["_default"]
    with pytest.raises(keeldb.PartitionNotFound, match="partition name nope not found|partition not found"):
        client.insert("c", [{"id": 99, "vector": [0, 0]}], partition_name="p1")
    with pytest.raises(keeldb.InvalidArgument, match="cannot be dropped"):
        client.drop_partition("c", "_default")
    client.insert("c", [{"id": 12, "vector": [0, 0]}])  # the key is free again
    client.close()
    c = keeldb.Client(str(tmp_path / "db"))
    assert count(c) == 11 and c.list_partitions("c") == ["_default"]
    c.create_partition("c", "p1")  # a new p1 is a new, empty partition
    assert count(c, partition_names=["p1"]) == 0
    c.close()


def test_load_and_release_partitions(client: keeldb.Client) -> None:
    """Reads see the loaded partitions only; naming an unloaded one is refused."""
    client.release_collection("c")
    with pytest.raises(keeldb.CollectionNotLoaded):
        count(client)
    client.load_partitions("c", ["p1"])
    assert count(client) == 5
    assert [h["id"] for h in client.search("c", [[0, 0]], limit=2)[0]] == [10, 11]
    with pytest.raises(keeldb.PartitionNotLoaded, match="_default"):
        client.get("c", ids=[1], partition_names=["_default"])
    assert str(client.get_load_state("c", partition_name="_default")["state"]) == "NotLoad"
    client.load_partitions("c", ["_default"])
    assert count(client) == 15
    client.release_partitions("c", ["p1", "_default"])
    assert str(client.get_load_state("c")["state"]) == "NotLoad"
    with pytest.raises(keeldb.PartitionNotFound):
        client.load_partitions("c", ["nope"])
