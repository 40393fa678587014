"""alter_index_properties / drop_index_properties (Milvus's AlterIndex RPC), embedded and
through pymilvus against ``keeldb serve``: Milvus 2.6's rules and words (configurable keys,
released collection first, value checks), ``mmap.enabled`` acted on (the index's files are
memory-mapped or read into memory: visible in ``/proc/<pid>/maps``), at once and after a
restart; refused input changes nothing (engine/index_properties.py)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

import keeldb
from keeldb.engine import index_builder
from keeldb.errors import CollectionNotFound, IndexNotFound, InvalidArgument, KeelError
from tests.server_util import KeelServer, kill_and_restart

DIM = 8


def _mapped(pid: int | str, root: Path | str, ext: str = ".faiss") -> list[str]:
    """The index files of ``root`` that process ``pid`` has memory-mapped."""
    with open(f"/proc/{pid}/maps") as f:
        return sorted({line.split()[-1] for line in f if str(root) in line and line.rstrip().endswith(ext)})


def _collection(c: Any, name: str = "c", index: str = "HNSW", params: dict[str, Any] | None = None) -> None:
    schema = c.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("tag", DataType.VARCHAR, max_length=8)
    ip = c.prepare_index_params()
    ip.add_index("v", index, index_name="vi", metric_type="L2", params={"M": 8, "efConstruction": 32} if params is None else params)
    ip.add_index("tag", "INVERTED", index_name="ti")
    c.create_collection(name, schema=schema, index_params=ip)
    rng = np.random.default_rng(7)
    c.insert(name, [{"id": i, "v": rng.random(DIM).tolist(), "tag": f"t{i % 3}"} for i in range(1100)])
    c.flush(name)


def _nearest(c: Any, name: str = "c") -> int:
    v = np.random.default_rng(7).random((1100, DIM))[123].tolist()
    return int(c.search(name, [v], anns_field="v", limit=1)[0][0]["id"])


@pytest.fixture
def client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 100)
    c = keeldb.Client(str(tmp_path / "db"))
    yield c
    c.close()


def test_mmap_enabled_is_acted_on_at_once_and_after_a_restart(tmp_path: Path, client: Any) -> None:
    root = tmp_path / "db"
    _collection(client)
    client.wait_for_index("c")
    assert _mapped("self", root) == []  # the default: read into memory, as Milvus
    client.release_collection("c")
    client.alter_index_properties("c", "vi", properties={"mmap.enabled": True})
    assert client.describe_index("c", "vi")["mmap.enabled"] == "True"  # as pymilvus sends it
    assert len(_mapped("self", root)) == 1  # reopened, memory-mapped
    client.load_collection("c")
    assert _nearest(client) == 123
    client.close()
    gc.collect()  # the closed client's index objects, and their mapping, go

    c2 = keeldb.Client(str(root))  # a restart opens it as the catalog says
    try:
        assert c2.describe_index("c", "vi")["mmap.enabled"] == "True"
        assert len(_mapped("self", root)) == 1 and _nearest(c2) == 123
        c2.release_collection("c")
        c2.drop_index_properties("c", "vi", property_keys=["mmap.enabled"])
        assert "mmap.enabled" not in c2.describe_index("c", "vi")
        assert _mapped("self", root) == []
        c2.alter_index_properties("c", "vi", properties={"mmap.enabled": "true"})  # Go's ParseBool words
        assert len(_mapped("self", root)) == 1
        c2.drop_index_properties("c", "vi", property_keys=["mmap.enabled", "warmup"])  # absent: nothing to drop
        assert _mapped("self", root) == []
    finally:
        c2.close()


def test_refused_input_changes_nothing(client: Any) -> None:
    _collection(client)
    before = client.db.entry("c").to_dict()

    def refused(exc: type[KeelError], match: str, call: Any) -> None:
        with pytest.raises(exc, match=match):
            call()
        assert client.db.entry("c").to_dict() == before

    a, d = client.alter_index_properties, client.drop_index_properties
    # loaded: Milvus's ErrCollectionLoaded (code 104), for both, whatever the index
    for call in (lambda: a("c", "vi", {"mmap.enabled": True}), lambda: d("c", "vi", ["mmap.enabled"]),
                 lambda: a("c", "nope", {"mmap.enabled": True})):  # fmt: skip
        refused(KeelError, r"can't alter index on loaded collection, please release the collection first: "
                r"collection already loaded\[collection=c\]", call)  # fmt: skip
    client.release_collection("c")
    before = client.db.entry("c").to_dict()
    refused(InvalidArgument, "M is not a configable index property", lambda: a("c", "vi", {"M": 16}))
    refused(InvalidArgument, "index_type is not a configable index property", lambda: d("c", "vi", ["index_type"]))
    refused(InvalidArgument, "foo is not a configable index property", lambda: a("c", "vi", {"mmap.enabled": True, "foo": 1}))
    for value in (None, [], "", 20, "  ", 0.01, "yes", "tRuE"):
        refused(InvalidArgument, "invalid mmap.enabled value: .*, expected: true, false",
                lambda value=value: a("c", "vi", {"mmap.enabled": value}))  # fmt: skip
    refused(InvalidArgument, "warmup is not supported: keeldb opens every index", lambda: a("c", "vi", {"warmup": "sync"}))
    refused(InvalidArgument, "indexoffsetcache.enabled is not supported: keeldb has no BITMAP",
            lambda: a("c", "vi", {"indexoffsetcache.enabled": True}))  # fmt: skip
    refused(IndexNotFound, r"index not found\[indexName=nope\]", lambda: a("c", "nope", {"mmap.enabled": True}))
    refused(InvalidArgument, "index name is empty", lambda: a("c", "", {"mmap.enabled": True}))
    refused(InvalidArgument, "no properties or delete keys provided", lambda: a("c", "vi", {}))
    refused(InvalidArgument, "no properties or delete keys provided", lambda: d("c", "vi", []))
    with pytest.raises(CollectionNotFound):
        a("nope", "vi", {"mmap.enabled": True})


def test_flat_and_create_index(client: Any) -> None:
    """FLAT on FLOAT_VECTOR has no file (searches read the segment's mapped vectors):
    mmap.enabled=true is what it is, false cannot be honoured. create_index's params are
    checked the same way, and a repeated create_index ignores the alterable keys."""
    _collection(client, "f", "FLAT", {})
    client.release_collection("f")
    client.alter_index_properties("f", "vi", {"mmap.enabled": True})
    with pytest.raises(InvalidArgument, match="mmap.enabled=false is not supported for index type FLAT"):
        client.alter_index_properties("f", "vi", {"mmap.enabled": "0"})
    ip = client.prepare_index_params()
    ip.add_index("v", "FLAT", index_name="vi", metric_type="L2")
    client.create_index("f", ip)  # the same index: a no-op, the property stays
    assert client.describe_index("f", "vi")["mmap.enabled"] == "True"

    schema = client.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    for params, match in (({"mmap.enabled": "maybe"}, "invalid mmap.enabled value: maybe"),
                          ({"warmup": "sync"}, "warmup is not supported")):  # fmt: skip
        ip = client.prepare_index_params()
        ip.add_index("v", "IVF_FLAT", metric_type="L2", params={"nlist": 4, **params})
        with pytest.raises(InvalidArgument, match=match):
            client.create_collection("g", schema=schema, index_params=ip)
        assert not client.has_collection("g")
    ip = client.prepare_index_params()
    ip.add_index("v", "IVF_FLAT", metric_type="L2", params={"nlist": 4, "mmap.enabled": False})
    client.create_collection("g", schema=schema, index_params=ip)
    assert client.db.collection("g").index_specs["v"].mmap is False


def test_through_pymilvus_and_a_restart(tmp_path: Path) -> None:
    with KeelServer(tmp_path / "data") as server:
        c = MilvusClient(uri=server.uri)
        _collection(c)
        c.load_collection("c")  # waits for the index
        pid = server.process.pid  # type: ignore[union-attr]
        assert _mapped(pid, tmp_path / "data") == []  # the default: read into memory

        def err(call: Any) -> tuple[int, str]:
            with pytest.raises(MilvusException) as e:
                call()
            return e.value.code, e.value.message

        assert err(lambda: c.alter_index_properties("c", "vi", {"mmap.enabled": True})) == (
            104, "can't alter index on loaded collection, please release the collection first: "
                 "collection already loaded[collection=c]")  # fmt: skip
        c.release_collection("c")
        assert err(lambda: c.alter_index_properties("c", "vi", {"efConstruction": 64})) == (
            1100, "efConstruction is not a configable index property")  # fmt: skip
        assert err(lambda: c.alter_index_properties("c", "vi", {"mmap.enabled": 20}))[1] == (
            "invalid mmap.enabled value: 20, expected: true, false")  # fmt: skip
        assert err(lambda: c.drop_index_properties("c", "nope", ["mmap.enabled"]))[0] == 700
        assert "warmup" in err(lambda: c.alter_index_properties("c", "vi", {"warmup": "async"}))[1]

        c.alter_index_properties("c", "vi", properties={"mmap.enabled": True})
        d = c.describe_index("c", "vi")
        assert d["mmap.enabled"] == "True" and d["index_type"] == "HNSW" and d["M"] == "8"
        assert len(_mapped(pid, tmp_path / "data")) == 1

        kill_and_restart(server)  # SIGKILL: the catalog commit was durable before the answer
        c = MilvusClient(uri=server.uri)
        assert c.describe_index("c", "vi")["mmap.enabled"] == "True"
        c.load_collection("c")
        assert _nearest(c) == 123
        assert len(_mapped(server.process.pid, tmp_path / "data")) == 1  # type: ignore[union-attr]
        c.release_collection("c")
        c.drop_index_properties("c", "vi", property_keys=["mmap.enabled"])
        assert "mmap.enabled" not in c.describe_index("c", "vi")
        assert _mapped(server.process.pid, tmp_path / "data") == []  # type: ignore[union-attr]

        # DISKANN is refused at create_index with the reason, through pymilvus too.
        ip = c.prepare_index_params()
        ip.add_index("v", "DISKANN", index_name="dk", metric_type="L2")
        c.drop_index("c", "vi")
        code, message = err(lambda: c.create_index("c", ip))
        assert code == 1100 and "unknown vector index type 'DISKANN'" in message and "keeldb does not" in message
