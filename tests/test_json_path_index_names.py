"""JSON path indexes as Milvus names and places them: several unnamed indexes on one JSON
field get the path's name (``my_json/a/b``), and on a collection with a dynamic field an
index on a key the schema does not have is an index on that key of ``$meta``
(``$meta/my_json/a/b``), which a filter on the key uses. Milvus's suite
(``test_milvus_client_json_path_index_default_index_name`` and the search-iterator tests
that create five such indexes in one ``create_collection``) checks exactly this."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import keeldb
from keeldb import DataType
from keeldb.engine import index_builder
from keeldb.engine import scalar_filter as SF
from keeldb.errors import InvalidArgument

PATHS = ["my_json['a']['b']", "my_json['a']", "my_json", "my_json['a'][0]"]


def make(c: keeldb.Client, name: str, *, dynamic: bool) -> None:
    s = c.create_schema(enable_dynamic_field=dynamic)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    if not dynamic:
        s.add_field("my_json", DataType.JSON)
    ip = c.prepare_index_params()
    ip.add_index("v", metric_type="L2")
    for path in PATHS:
        ip.add_index(field_name="my_json", index_type="INVERTED", params={"json_cast_type": "DOUBLE", "json_path": path})
    c.create_collection(name, schema=s, index_params=ip)
    c.insert(name, [{"id": i, "v": [0.1, 0.2, 0.3, float(i)], "my_json": {"a": {"b": i % 17}}} for i in range(300)])
    c.flush(name)
    c.wait_for_index(name)


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[keeldb.Client]:
    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    c = keeldb.Client(str(tmp_path / "db"))
    yield c
    c.close()


@pytest.mark.parametrize("dynamic", [False, True])
def test_unnamed_json_path_indexes_are_named_by_their_paths(client: keeldb.Client, dynamic: bool) -> None:
    make(client, "c", dynamic=dynamic)
    head = "$meta/" if dynamic else ""
    names = [f"{head}my_json/a/b", f"{head}my_json/a", f"{head}my_json", f"{head}my_json/a/0"]
    assert client.list_indexes("c") == ["v", *names]
    d = client.describe_index("c", names[0])
    assert (d["field_name"], d["json_path"], d["json_cast_type"], d["index_type"]) == (
        "my_json", "my_json['a']['b']", "DOUBLE", "INVERTED",
    )  # fmt: skip
    assert d["indexed_rows"] == 300 and d["pending_index_rows"] == 0


@pytest.mark.parametrize("dynamic", [False, True])
def test_filters_on_the_path_use_the_index_and_answer_as_the_scan(client: keeldb.Client, dynamic: bool) -> None:
    make(client, "c", dynamic=dynamic)
    for expr in ['my_json["a"]["b"] < 3', 'my_json["a"]["b"] in [5, 7]', 'my_json["a"]["b"] == 16']:
        before = SF.STATS["answered"]
        got = sorted(r["id"] for r in client.query("c", expr, output_fields=["id"]))
        assert SF.STATS["answered"] > before, f"no index answered {expr}"
        SF.ENABLED = False
        try:
            want = sorted(r["id"] for r in client.query("c", expr, output_fields=["id"]))
        finally:
            SF.ENABLED = True
        assert got == want and got


def test_dynamic_key_indexes_survive_a_restart_and_drop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)
    with keeldb.Client(str(tmp_path / "db")) as c:
        make(c, "c", dynamic=True)
    with keeldb.Client(str(tmp_path / "db")) as c:
        assert c.describe_index("c", "$meta/my_json/a/b")["indexed_rows"] == 300
        before = SF.STATS["answered"]
        assert len(c.query("c", 'my_json["a"]["b"] == 2', output_fields=["id"])) == 18
        assert SF.STATS["answered"] > before
        c.release_collection("c")
        c.drop_index("c", "$meta/my_json/a/b")
        assert "$meta/my_json/a/b" not in c.list_indexes("c")


def test_a_key_index_needs_a_dynamic_field_and_a_given_name_stays_checked(client: keeldb.Client) -> None:
    s = client.create_schema(enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=4)
    client.create_collection("c", schema=s)
    ip = client.prepare_index_params()
    ip.add_index(field_name="my_json", index_type="INVERTED", params={"json_cast_type": "DOUBLE", "json_path": "my_json['a']"})
    with pytest.raises(InvalidArgument, match="cannot create index on non-exist field: my_json"):
        client.create_index("c", ip)
    ip = client.prepare_index_params()
    ip.add_index(field_name="id", index_type="STL_SORT", index_name="bad name")
    with pytest.raises(InvalidArgument, match="invalid index name"):
        client.create_index("c", ip)
    assert client.list_indexes("c") == []
