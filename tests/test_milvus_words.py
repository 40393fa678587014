"""keeldb refuses and answers as Milvus 2.6 does where both have the feature: the same code
and words for invalid names, a lookup validated before it looks, and the read semantics
Milvus's own suite (``compat/``) checks -- drop_index of nothing, ``ignore_growing``, an
offset without a limit, the query window, reserved field names. Each case here is one
Milvus rule; the suite runner (compat/milvus_suite.py) measures the whole contract."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pymilvus import MilvusClient, MilvusException

import keeldb
from keeldb import DataType
from keeldb.errors import CollectionNotFound, FilterError, InvalidArgument
from keeldb.names import FIELD_NAME_KEYWORDS
from tests.server_util import KeelServer


@pytest.fixture
def client(tmp_path: Path) -> Iterator[keeldb.Client]:
    c = keeldb.Client(str(tmp_path / "db"))
    c.create_collection("c", dimension=2)
    yield c
    c.close()


@pytest.mark.parametrize(("name", "why"), [
    ("12-s", "the first character of a collection name must be an underscore or letter"),
    ("a" * 256, "the length of a collection name must be less than 255 characters"),
    ("españa", "collection name can only contain numbers, letters and underscores"),
])  # fmt: skip
def test_an_invalid_collection_name_is_refused_before_any_lookup(client: keeldb.Client, name: str, why: str) -> None:
    calls = [
        lambda: client.insert(name, [{"id": 1, "vector": [1, 2]}]),
        lambda: client.describe_collection(name),
        lambda: client.load_collection(name),
        lambda: client.release_collection(name),
        lambda: client.has_collection(name),  # Milvus refuses, it does not answer False
        lambda: client.list_partitions(name),
        lambda: client.create_partition(name, "p"),
        lambda: client.query(name, "id > 0"),
    ]
    for call in calls:
        with pytest.raises(InvalidArgument) as info:
            call()
        assert info.value.code == 1100
        assert f"Invalid collection name: {name}. {why}: invalid parameter" == str(info.value)


def test_search_index_and_rename_look_up_an_invalid_name_unchecked(client: keeldb.Client) -> None:
    """On these calls Milvus looks the name up at once: not found (100), not invalid (1100)."""
    ip = client.prepare_index_params()
    ip.add_index("vector", metric_type="COSINE")
    for call in (
        lambda: client.search("12-s", [[1.0, 2.0]]),
        lambda: client.create_index("12-s", ip),
        lambda: client.rename_collection("12-s", "b"),
    ):
        with pytest.raises(CollectionNotFound, match=r"collection not found\[database=default\]\[collection=12-s\]"):
            call()


def test_an_unknown_valid_name_is_not_found_with_milvus_words(client: keeldb.Client) -> None:
    with pytest.raises(CollectionNotFound, match=r"^collection not found\[database=default\]\[collection=nope\]$"):
        client.describe_collection("nope")
    assert client.has_collection("nope") is False


@pytest.mark.parametrize("word", sorted(FIELD_NAME_KEYWORDS - {"$meta"}))
def test_filter_keywords_are_not_field_names(client: keeldb.Client, word: str) -> None:
    s = client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    with pytest.raises(InvalidArgument) as info:
        s.add_field(word, DataType.INT64)
    assert info.value.code == 1701
    assert str(info.value) == f"Invalid field name: {word}. {word} is keyword in milvus.: field name invalid[field={word}]"


def test_partition_names_follow_milvus_rules(client: keeldb.Client) -> None:
    client.create_partition("c", "2024-q1")  # Milvus allows a leading digit and '-'
    assert client.has_partition("c", "2024-q1")
    for bad, why in [("12 s", "can only contain"), ("", "should not be empty"), ("(mn)", "The first character")]:
        with pytest.raises(InvalidArgument, match=f"Invalid partition name: .*{why}") as info:
            client.has_partition("c", bad)
        assert info.value.code == 65535


def test_drop_index_of_nothing_succeeds_and_a_scalar_index_may_go_while_loaded(client: keeldb.Client) -> None:
    client.drop_index("c", "no_such_index")
    ip = client.prepare_index_params()
    ip.add_index("id", index_type="STL_SORT", metric_type="COSINE")  # a metric on a scalar index: kept
    client.create_index("c", ip)
    assert client.describe_index("c", "id")["metric_type"] == "COSINE"
    client.drop_index("c", "id")  # loaded: a scalar index may go
    with pytest.raises(InvalidArgument, match="vector index cannot be dropped on loaded collection"):
        client.drop_index("c", "vector")


def test_ignore_growing_reads_sealed_segments_only(client: keeldb.Client) -> None:
    client.insert("c", [{"id": i, "vector": [float(i), 1.0]} for i in range(10)])
    client.flush("c")
    client.insert("c", [{"id": i, "vector": [float(i), 1.0]} for i in range(10, 15)])
    client.upsert("c", [{"id": 0, "vector": [5.0, 1.0]}])  # the sealed version is deleted
    count = lambda **kw: client.query("c", "", output_fields=["count(*)"], **kw)[0]["count(*)"]  # noqa: E731
    assert (count(), count(ignore_growing=True)) == (15, 9)
    hits = client.search("c", [[1.0, 1.0]], limit=20, ignore_growing=True)[0]
    assert sorted(h["id"] for h in hits) == list(range(1, 10))


def test_offset_needs_a_limit_and_the_window_is_milvus_s(client: keeldb.Client) -> None:
    client.insert("c", [{"id": i, "vector": [float(i), 1.0]} for i in range(5)])
    assert [r["id"] for r in client.query("c", "id < 3", offset=2)] == [0, 1, 2]  # no limit: offset ignored
    assert [r["id"] for r in client.query("c", "id < 3", offset=2, limit=5)] == [2]
    with pytest.raises(InvalidArgument, match=r"\(offset\+limit\) should be in range \[1, 16384\], but got 16385"):
        client.query("c", "id < 3", offset=1, limit=16384)


def test_filter_errors_start_as_milvus_s(client: keeldb.Client) -> None:
    with pytest.raises(FilterError) as info:
        client.query("c", "vector is null")
    assert str(info.value).startswith(
        "failed to create query plan: cannot parse expression: vector is null, error: unsupported data type: VECTOR_FLOAT"
    )


def test_aliases_and_databases_validate_their_names(client: keeldb.Client) -> None:
    with pytest.raises(InvalidArgument, match="Invalid collection alias: 1a. the first character"):
        client.create_alias("c", "1a")
    with pytest.raises(InvalidArgument, match="Invalid collection name: 1c. the first character"):
        client.create_alias("1c", "a")
    with pytest.raises(InvalidArgument) as info:
        client.drop_database("12-s")
    assert info.value.code == 802
    client.create_alias("c", "a")
    with pytest.raises(InvalidArgument, match="cannot drop the collection via alias = a"):
        client.drop_collection("a")
    with pytest.raises(InvalidArgument, match="conflicts with an existing alias, please choose a unique name") as info:
        client.create_collection("a", dimension=2)
    assert info.value.code == 1601


def test_codes_and_words_reach_a_pymilvus_client() -> None:
    with KeelServer() as server:
        mc = MilvusClient(uri=server.uri)
        with pytest.raises(MilvusException) as info:
            mc.has_collection("12-s")
        assert info.value.code == 1100 and "Invalid collection name: 12-s." in info.value.message
        with pytest.raises(MilvusException) as info:
            mc.describe_collection("nope")
        assert info.value.code == 100 and "collection not found[database=default][collection=nope]" in info.value.message
        schema = mc.create_schema()
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        schema.add_field("like", DataType.INT64)
        with pytest.raises(MilvusException) as info:
            mc.create_collection("k", schema=schema)
        assert info.value.code == 1701 and "like is keyword in milvus" in info.value.message
        mc.close()


def test_a_partial_update_over_the_wire_sets_null() -> None:
    """pymilvus sends a partial update's fields for every row (it refuses rows that differ);
    a row's None is a validity flag off, which means null -- not "keep the old value"."""
    with KeelServer() as server:
        mc = MilvusClient(uri=server.uri)
        schema = mc.create_schema(enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        schema.add_field("n", DataType.INT32, nullable=True)
        ip = mc.prepare_index_params()
        ip.add_index("v", metric_type="L2")
        mc.create_collection("pu", schema=schema, index_params=ip)
        mc.upsert("pu", [{"id": i, "v": [1.0, float(i)], "n": i} for i in range(4)])
        mc.upsert("pu", [{"id": i, "n": None if i % 2 else 7} for i in range(4)], partial_update=True)
        got = {r["id"]: r["n"] for r in mc.query("pu", "id >= 0", output_fields=["n"])}
        assert got == {0: 7, 1: None, 2: 7, 3: None}
        mc.close()


def test_search_hints(client: keeldb.Client) -> None:
    client.insert("c", [{"id": i, "vector": [1.0, float(i)]} for i in range(10)])
    hits = client.search("c", [[1.0, 2.0]], limit=3, filter="id > 2", search_params={"hints": "iterative_filter"})[0]
    assert sorted(h["id"] for h in hits) == [3, 4, 5]
    with pytest.raises(InvalidArgument, match="hints: bogus not supported"):
        client.search("c", [[1.0, 2.0]], limit=3, search_params={"hints": "bogus"})


def test_a_collection_cannot_be_renamed_to_an_alias(client: keeldb.Client) -> None:
    client.create_collection("d", dimension=2)
    client.create_alias("d", "al")
    with pytest.raises(InvalidArgument, match="cannot rename collection to an existing alias: al"):
        client.rename_collection("c", "al")
    assert sorted(client.list_collections()) == ["c", "d"]
