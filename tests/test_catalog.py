"""The typed catalog entry, the one catalog commit, the injected parts of ``Database``, and
the public client methods the server is built on."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Collection, Mapping
from dataclasses import FrozenInstanceError, replace
from pathlib import Path
from typing import Any

import pytest

import keeldb
from keeldb.client import refuse_unsupported
from keeldb.engine.catalog import Catalog, CollectionEntry
from keeldb.engine.database import Database
from keeldb.errors import CollectionNotFound, CollectionNotLoaded, InvalidArgument
from keeldb.schema import CollectionSchema, DataType, IndexParam
from keeldb.storage.catalog import MAGIC, CatalogState, FileCatalog
from keeldb.storage.framed import encode_framed, read_framed

SRC = Path(keeldb.__file__).parent
SCHEMA = {
    "auto_id": False,
    "description": "",
    "enable_dynamic_field": True,
    "fields": [
        {"name": "id", "type": 5, "is_primary": True, "params": {}, "description": ""},
        {"name": "vector", "type": 101, "params": {"dim": 2}, "description": ""},
    ],
}
INDEX = {"field_name": "vector", "index_name": "vector", "index_type": "AUTOINDEX", "metric_type": "L2", "params": {}}


def _entry(**changes: Any) -> CollectionEntry:
    return replace(CollectionEntry.from_dict({"id": 1, "schema": SCHEMA, "indexes": [INDEX]}), **changes)


# -- the entry ----------------------------------------------------------------------------


def test_an_entry_as_the_first_catalogs_wrote_it_reads_with_defaults() -> None:
    e = CollectionEntry.from_dict({"id": 7, "schema": SCHEMA, "indexes": [INDEX], "loaded": True, "properties": {}})
    assert e.id == 7 and e.schema.primary.name == "id"
    assert e.indexes == (IndexParam("vector", "AUTOINDEX", "vector", "L2", {}),)
    assert dict(e.partitions) == {"_default": 0} and e.next_partition_id == 1
    assert e.loaded_partitions == () and e.created_ts == 0
    assert e.visible_partitions == {0} and e.is_loaded


def test_to_dict_and_from_dict_round_trip_and_write_every_key() -> None:
    e = _entry(loaded_partitions=(1,), partitions={"_default": 0, "p": 1}, next_partition_id=2, created_ts=5)
    d = e.to_dict()
    assert set(d) == {"id", "schema", "indexes", "loaded", "loaded_partitions", "partitions",
                      "next_partition_id", "properties", "created_ts", "consistency_level"}  # fmt: skip
    assert d["schema"] == SCHEMA and d["indexes"] == [INDEX]
    assert CollectionEntry.from_dict(d) == e
    assert CollectionEntry.from_dict(d).to_dict() == d


def test_entries_are_immutable_values() -> None:
    e = _entry()
    with pytest.raises(FrozenInstanceError):
        e.loaded = True  # type: ignore[misc]
    with pytest.raises(TypeError):
        e.partitions["p"] = 1  # type: ignore[index]
    changed = replace(e, partitions={**e.partitions, "p": 1})
    assert "p" not in e.partitions and changed.partitions["p"] == 1


def test_load_state_and_index_lookups() -> None:
    e = _entry(partitions={"_default": 0, "a": 1, "b": 2})
    assert not e.is_loaded and e.visible_partitions == set()
    assert replace(e, loaded_partitions=(2,)).visible_partitions == {2}
    assert replace(e, loaded=True).visible_partitions == {0, 1, 2}  # later partitions too
    assert e.index_on("vector") is e.index_named("vector") is e.indexes[0]
    assert e.index_on("id") is None and e.index_named("nope") is None
    assert e.search_metric("vector") == "L2" and e.search_metric("vector", "ip") == "IP"
    assert replace(e, indexes=()).search_metric("vector") == "COSINE"  # Milvus's default
    assert e.index_specs()["vector"].metric == "L2"


def test_an_index_the_code_cannot_build_means_exact_search() -> None:
    bad = {**INDEX, "index_type": "DISKANN"}
    assert CollectionEntry.from_dict({"id": 1, "schema": SCHEMA, "indexes": [bad]}).index_specs() == {}


# -- the catalog file and its one commit ---------------------------------------------------


def test_commit_is_atomic_and_durable_and_new_names_must_be_new(tmp_path: Path) -> None:
    path = tmp_path / "CATALOG"
    cat: FileCatalog[CollectionEntry] = FileCatalog(path, CollectionEntry.from_dict)
    assert cat.allocate_id() == 1 and cat.allocate_id() == 2
    cat.commit({"a": _entry(id=1)}, new=("a",))
    with pytest.raises(InvalidArgument, match="collection 'a' already exists"):
        cat.commit({"a": _entry(id=2)}, new=("a",))
    assert cat.get("a") == _entry(id=1)
    cat.commit({"a": None, "b": _entry(id=1)}, new=("b",))  # a rename
    assert read_framed(MAGIC, path) == {"next_id": 3, "collections": {"b": _entry(id=1).to_dict()}}
    again: FileCatalog[CollectionEntry] = FileCatalog(path, CollectionEntry.from_dict)
    assert again.names() == ["b"] and again.peek("b") == _entry(id=1) and again.allocate_id() == 3


def test_a_data_directory_written_before_the_typed_entry_opens_unchanged(tmp_path: Path) -> None:
    """The CATALOG as the dict-based code wrote it (no partition keys until partitions were
    used, one collection with a partition, loaded partially)."""
    db = tmp_path / "db"
    (db / "collections" / "000001").mkdir(parents=True)
    (db / "collections" / "000002").mkdir()
    old = {
        "next_id": 3,
        "collections": {
            "plain": {"id": 1, "schema": SCHEMA, "indexes": [INDEX], "loaded": True, "properties": {}, "created_ts": 9},
            "parted": {"id": 2, "schema": SCHEMA, "indexes": [INDEX], "loaded": False, "properties": {},
                       "created_ts": 10, "partitions": {"_default": 0, "p": 1}, "next_partition_id": 2,
                       "loaded_partitions": [1]},
        },
    }  # fmt: skip
    (db / "CATALOG").write_bytes(encode_framed(MAGIC, old))
    c = keeldb.Client(str(db))
    try:
        assert sorted(c.list_collections()) == ["parted", "plain"]
        assert c.list_partitions("plain") == ["_default"] and c.partition_ids("parted") == {"_default": 0, "p": 1}
        assert c.get_load_state("parted", partition_name="p")["state"] == keeldb.LoadState.Loaded
        assert c.get_load_state("parted", partition_name="_default")["state"] == keeldb.LoadState.NotLoad
        assert c.describe_index("plain", "vector")["metric_type"] == "L2"
        assert c.collection_entry("parted").created_ts == 10
        c.insert("plain", [{"id": 1, "vector": [1, 0]}])
        assert c.query("plain", filter="", output_fields=["count(*)"]) == [{"count(*)": 1}]
        c.create_partition("plain", "q")  # the next id is still 1 where none was written
        assert c.partition_ids("plain") == {"_default": 0, "q": 1}
    finally:
        c.close()


# -- Database: what a cluster node injects -------------------------------------------------


class MemoryCatalog:
    """A Catalog that keeps nothing: the engine needs only the protocol."""

    def __init__(self) -> None:
        self.state: CatalogState[CollectionEntry] = CatalogState()
        self.commits = 0

    def snapshot(self) -> dict[str, CollectionEntry]:
        return dict(self.state.collections)

    def get(self, name: str) -> CollectionEntry | None:
        return self.state.collections.get(name)

    peek = get

    def names(self) -> list[str]:
        return list(self.state.collections)

    def allocate_id(self) -> int:
        self.state = self.state.allocated()
        return self.state.next_id - 1

    def commit(
        self, changes: Mapping[str, CollectionEntry | None], *, new: Collection[str] = (), extra: Any = None
    ) -> Mapping[str, Any]:
        self.state = self.state.changed(changes, new, extra)
        self.commits += 1
        return self.state.extra

    def extra(self, fresh: bool = False) -> Mapping[str, Any]:
        return self.state.extra


def test_database_runs_on_an_injected_catalog_and_collections_dir(tmp_path: Path) -> None:
    memory = MemoryCatalog()
    catalog: Catalog = memory  # the protocol is all the engine asks for
    db = Database(tmp_path, catalog=lambda: catalog, collections_dir="elsewhere")
    try:
        c = keeldb.Client.over(db)
        c.create_collection("x", dimension=2, metric_type="L2")
        c.create_partition("x", "p")
        c.rename_collection("x", "y")
        c.insert("y", [{"id": 1, "vector": [0, 1]}], partition_name="p")
        assert c.query("y", filter="", output_fields=["count(*)"]) == [{"count(*)": 1}]
        assert memory.names() == ["y"] and memory.commits == 3
        assert not (tmp_path / "CATALOG").exists()
        assert [p.name for p in (tmp_path / "elsewhere").iterdir()] == ["000001"]
    finally:
        db.close()


def test_a_failed_open_releases_the_directory_lock(tmp_path: Path) -> None:
    def broken() -> Catalog:
        raise OSError("the catalog is unreachable")

    with pytest.raises(OSError, match="unreachable"):
        Database(tmp_path, catalog=broken)
    Database(tmp_path).close()  # not DatabaseLocked: the failed open let go of the lock


# -- the client's public surface for the server ---------------------------------------------


def test_the_servers_client_methods(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path / "db"))
    try:
        schema = CollectionSchema(enable_dynamic_field=False)
        schema.add_field("pk", DataType.INT64, is_primary=True)
        schema.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        c.create_collection("s", schema=schema)
        assert [f.name for f in c.collection_schema("s").fields] == ["pk", "v"]
        schema.add_field("late", DataType.INT64)  # the caller's object is not the catalog's
        assert c.collection_entry("s").schema.field("late") is None
        with pytest.raises(CollectionNotLoaded):
            c.check_loaded("s")
        with pytest.raises(CollectionNotFound):
            c.check_loaded("nope")
        c.create_index("s", c.prepare_index_params("v", index_type="FLAT", metric_type="IP"))
        c.load_collection("s")
        c.check_loaded("s")
        ts = c.alloc_timestamp()
        assert c.last_timestamp() == ts < c.alloc_timestamp()
        c.insert("s", [{"pk": 1, "v": [1, 0]}])
        reader = c.for_read()
        assert reader.search("s", [[1, 0]], limit=1) == c.search("s", [[1, 0]], limit=1)
        assert reader.get_collection_stats("s") == {"row_count": 1}
        assert c.collection_entry("s").search_metric("v") == "IP"
    finally:
        c.close()


@pytest.mark.parametrize("key", ["group_by_field", "group_by_fields"])
def test_unsupported_read_parameters_are_refused_in_one_place(key: str) -> None:
    with pytest.raises(InvalidArgument, match=f"{key} is not supported"):
        refuse_unsupported({key: "x"})
    refuse_unsupported({key: "  "})  # blank, as the wire sends an unset one
    refuse_unsupported({key: None})
    refuse_unsupported({"limit": 3})


# -- layering ----------------------------------------------------------------------------


def test_cluster_never_imports_server() -> None:
    for path in (SRC / "cluster").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            assert not any(n.startswith("keeldb.server") for n in names), path.name


def test_server_routing_imports_without_the_cluster_extra() -> None:
    code = (
        "import sys; sys.modules['boto3'] = None\n"
        "import keeldb.server.routing\n"
        "from keeldb.errors import MissingExtra\n"
        "try:\n    import keeldb.cluster.node\nexcept MissingExtra:\n    print('extra')\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "extra"
