"""ANN indexes: recall against exact search, deletes and filters inside the index search,
persistence across restarts, compaction dropping and rebuilding indexes, bad parameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import keeldb
from keeldb import DataType
from keeldb.engine import index_builder as index_builder_mod

DIM = 32
N = 12_000
SEED = 7

# Search parameters per index type, and the recall@10 each must reach on the fixed data.
CASES: dict[str, tuple[dict[str, Any], dict[str, Any], float]] = {
    "IVF_FLAT": ({"nlist": 64}, {"nprobe": 12}, 0.90),
    "IVF_SQ8": ({"nlist": 64}, {"nprobe": 12}, 0.85),
    "IVF_PQ": ({"nlist": 32, "m": 16, "nbits": 6}, {"nprobe": 8}, 0.45),
    "HNSW": ({"M": 16, "efConstruction": 64}, {"ef": 64}, 0.90),
    "AUTOINDEX": ({}, {}, 0.85),
    # Milvus 2.6's quantized kinds (index/quantized.py): the graph or lists over codes,
    # re-ranked by a finer copy where asked.
    "HNSW_SQ": ({"M": 16, "efConstruction": 64, "sq_type": "SQ8"}, {"ef": 64}, 0.85),
    "HNSW_SQ/refine": ({"M": 16, "efConstruction": 64, "sq_type": "SQ4U", "refine": True, "refine_type": "FP16"},
                       {"ef": 64, "refine_k": 4}, 0.85),  # fmt: skip
    "HNSW_PQ": ({"M": 16, "efConstruction": 64, "m": 16, "nbits": 6, "refine": True, "refine_type": "FP32"}, {"ef": 64, "refine_k": 8}, 0.85),
    "HNSW_PRQ": ({"M": 16, "efConstruction": 64, "m": 16, "nrq": 2, "nbits": 4, "refine": True, "refine_type": "SQ8"},
                 {"ef": 64, "refine_k": 8}, 0.85),  # fmt: skip
    "IVF_RABITQ": ({"nlist": 64, "refine": True, "refine_type": "FP32"}, {"nprobe": 12, "refine_k": 8}, 0.85),
    "SCANN": ({"nlist": 64}, {"nprobe": 12, "reorder_k": 200}, 0.85),
}


def clustered(n: int, dim: int, seed: int, clusters: int = 60) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 4, (clusters, dim))
    return (centers[rng.integers(0, clusters, n)] + rng.normal(0, 1, (n, dim))).astype(np.float32)


DATA = clustered(N + 100, DIM, SEED)
BASE, QUERIES = DATA[:N], DATA[N:]


def make(path: Path, index_type: str, metric: str = "L2", build: dict[str, Any] | None = None) -> keeldb.Client:
    c = keeldb.Client(str(path))
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("g", DataType.INT64)
    ip = c.prepare_index_params()
    ip.add_index("v", index_type, metric_type=metric, params=build or {})
    c.create_collection("c", schema=s, index_params=ip)
    c.insert_columns("c", {"id": np.arange(N), "v": BASE, "g": np.arange(N) % 100}, N)
    c.flush("c")
    c.wait_for_index("c")
    return c


def exact_top(base: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int, metric: str) -> list[list[int]]:
    if metric == "COSINE":
        base = base / np.linalg.norm(base, axis=1, keepdims=True)
        q = q / np.linalg.norm(q, axis=1, keepdims=True)
    if metric == "L2":
        d = (q**2).sum(1)[:, None] + (base**2).sum(1)[None, :] - 2 * q @ base.T
        order = np.argsort(d, axis=1)
    else:
        order = np.argsort(-(q @ base.T), axis=1)
    return [ids[o[:k]].tolist() for o in order]


def recall(got: list[list[dict[str, Any]]], truth: list[list[int]]) -> float:
    hit = sum(len({h["id"] for h in g} & set(t)) for g, t in zip(got, truth, strict=True))
    return hit / sum(len(t) for t in truth)


def index_in_use(c: keeldb.Client) -> bool:
    segs = c._coll("c")._mem.sealed.values()  # noqa: SLF001 - the test checks the engine's state
    return bool(segs) and all(seg.indexes for seg in segs)


@pytest.mark.parametrize("index_type", sorted(CASES))
def test_recall_against_exact_search(tmp_path: Path, index_type: str) -> None:
    build, search, floor = CASES[index_type]
    c = make(tmp_path / "db", index_type.split("/")[0], build=build)
    assert index_in_use(c), "the index was never committed: the test would measure exact search"
    got = c.search("c", QUERIES, limit=10, search_params={"params": search})
    r = recall(got, exact_top(BASE, np.arange(N), QUERIES, 10, "L2"))
    assert r >= floor, f"{index_type} recall@10 {r:.3f} < {floor}"
    assert all(len(g) == 10 for g in got)
    c.close()


@pytest.mark.parametrize("metric", ["L2", "IP", "COSINE"])
def test_metrics_through_the_index(tmp_path: Path, metric: str) -> None:
    c = make(tmp_path / "db", "HNSW", metric=metric, build={"M": 16, "efConstruction": 64})
    assert index_in_use(c)
    got = c.search("c", QUERIES[:50], limit=10, search_params={"metric_type": metric, "params": {"ef": 128}})
    assert recall(got, exact_top(BASE, np.arange(N), QUERIES[:50], 10, metric)) >= 0.9
    # Distances in Milvus's convention: ascending for L2, descending similarities otherwise.
    for g in got:
        d = [h["distance"] for h in g]
        assert d == sorted(d, reverse=metric != "L2")
    c.close()


@pytest.mark.parametrize("index_type", ["IVF_FLAT", "HNSW", "IVF_PQ", "HNSW_SQ/refine", "IVF_RABITQ", "SCANN"])
def test_deleted_and_filtered_rows_never_returned_and_k_hits(tmp_path: Path, index_type: str) -> None:
    build, search, _ = CASES[index_type]
    c = make(tmp_path / "db", index_type.split("/")[0], build=build)
    assert index_in_use(c)
    rng = np.random.default_rng(1)
    deleted = set(rng.choice(N, N // 3, replace=False).tolist())
    c.delete("c", ids=sorted(deleted))
    alive = np.array(sorted(set(range(N)) - deleted))
    # From "nearly everything" through "a few percent" (IVF with one probe meets too few
    # of them: the exact fallback must fill k) to "fewer than k rows" (all of them, no more).
    for flt, ok in [
        ("", lambda i: True),
        ("g >= 10", lambda i: i % 100 >= 10),
        ("g < 5", lambda i: i % 100 < 5),
        ("g == 7", lambda i: i % 100 == 7),
        ("id in [1, 2, 3, 5, 8]", lambda i: i in (1, 2, 3, 5, 8)),
    ]:
        qualifying = [i for i in alive.tolist() if ok(i)]
        for params in (search, {"ef": 10} if index_type.startswith("HNSW") else {"nprobe": 1}):
            got = c.search("c", QUERIES[:20], limit=10, filter=flt, search_params={"params": params}, output_fields=["g"])
            for hits in got:
                assert len(hits) == min(10, len(qualifying)), (flt, params, len(hits))
                for h in hits:
                    assert h["id"] not in deleted, f"deleted row {h['id']} returned ({flt!r}, {params})"
                    assert ok(h["id"]) and h["entity"]["g"] == h["id"] % 100
    c.close()


def test_upserts_overwrite_inside_indexed_segments(tmp_path: Path) -> None:
    """Overwritten versions stay in the index (it is immutable) but are never returned."""
    c = make(tmp_path / "db", "IVF_FLAT", build={"nlist": 32})
    target = QUERIES[0]
    near = exact_top(BASE, np.arange(N), target[None, :], 20, "L2")[0]
    c.upsert("c", [{"id": i, "v": (BASE[i] + 50).tolist(), "g": -1} for i in near])
    got = c.search("c", [target], limit=10, search_params={"params": {"nprobe": 32}}, output_fields=["g"])[0]
    assert len(got) == 10
    assert not {h["id"] for h in got} & set(near)
    c.flush("c")  # the new versions are sealed too (and indexed if big enough): same answer
    c.wait_for_index("c")
    assert c.search("c", [target], limit=10, search_params={"params": {"nprobe": 32}})[0] == [
        {k: v for k, v in h.items() if k != "entity"} | {"entity": {}} for h in got
    ]
    c.close()


def test_range_search_through_the_index(tmp_path: Path) -> None:
    c = make(tmp_path / "db", "IVF_FLAT", build={"nlist": 32})
    q = QUERIES[:10]
    exact = c.search("c", q, limit=50, search_params={"params": {"nprobe": 32}})
    radius, inner = 60.0, 30.0
    got = c.search("c", q, limit=50, search_params={"params": {"nprobe": 32, "radius": radius, "range_filter": inner}})
    for e, g in zip(exact, got, strict=True):
        assert all(inner <= h["distance"] < radius for h in g)
        want = [h["id"] for h in e if inner <= h["distance"] < radius]
        assert [h["id"] for h in g][: len(want)] == want  # nprobe = nlist: exhaustive
    c.close()


def test_index_survives_restart_without_rebuild(tmp_path: Path) -> None:
    c = make(tmp_path / "db", "IVF_FLAT", build={"nlist": 64})
    before = c.search("c", QUERIES, limit=10, search_params={"params": {"nprobe": 8}})
    coll_dir = c._coll("c").dir  # noqa: SLF001
    files = sorted(p.name for p in coll_dir.glob("idx-*"))
    assert len(files) == 1
    c.close()

    c = keeldb.Client(str(tmp_path / "db"))
    c.load_collection("c")
    report = c.recovery_report("c")
    assert report["indexes_loaded"] == 1 and not report["indexes_skipped"]
    assert index_in_use(c)
    assert c.describe_index("c", "v")["state"] == "Finished"
    assert c.wait_for_index("c")["built"] == 0
    assert sorted(p.name for p in coll_dir.glob("idx-*")) == files
    assert c.search("c", QUERIES, limit=10, search_params={"params": {"nprobe": 8}}) == before
    c.close()


def test_corrupt_index_file_is_skipped_and_rebuilt(tmp_path: Path) -> None:
    c = make(tmp_path / "db", "IVF_FLAT", build={"nlist": 64})
    coll_dir = c._coll("c").dir  # noqa: SLF001
    c.close()
    (f,) = coll_dir.glob("idx-*")
    raw = bytearray(f.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    f.write_bytes(bytes(raw))

    c = keeldb.Client(str(tmp_path / "db"))
    c.load_collection("c")
    report = c.recovery_report("c")
    assert report["indexes_loaded"] == 0 and "checksum" in report["indexes_skipped"][0]
    # Still answers, exactly, while the index is rebuilt.
    got = c.search("c", QUERIES[:5], limit=10)
    assert recall(got, exact_top(BASE, np.arange(N), QUERIES[:5], 10, "L2")) == 1.0
    c.wait_for_index("c")
    assert index_in_use(c)
    c.close()


def test_compaction_drops_input_indexes_and_indexes_the_output(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path / "db"))
    c.create_collection("c", dimension=DIM, metric_type="L2")  # AUTOINDEX
    for part in range(3):
        rows = np.arange(part * 4000, (part + 1) * 4000)
        c.insert_columns("c", {"id": rows, "vector": BASE[rows]}, rows.size)
        c.flush("c")
    c.wait_for_index("c")
    coll = c._coll("c")  # noqa: SLF001
    assert len(coll._mem.sealed) == 3 and index_in_use(c)  # noqa: SLF001
    c.delete("c", ids=list(range(0, N, 3)))
    c.flush("c")
    c.compact("c")  # may find the work done: with no retention the flush compacts by itself
    if coll._bg_compact is not None:  # noqa: SLF001
        coll._bg_compact.join()  # noqa: SLF001
    m = coll._versions.current  # noqa: SLF001
    assert len(m.segments) == 1
    assert {e.segment for e in m.indexes} <= {e.id for e in m.segments}, "an input's index survived the commit"
    c.wait_for_index("c")
    assert index_in_use(c)
    assert {e.segment for e in coll._versions.current.indexes} == {m.segments[0].id}  # noqa: SLF001
    got = c.search("c", QUERIES[:20], limit=10)
    assert all(len(g) == 10 and all(h["id"] % 3 for h in g) for g in got)
    assert c.query("c", filter="", output_fields=["count(*)"])[0]["count(*)"] == N - len(range(0, N, 3))
    c.close()


def test_drop_and_recreate_index_with_other_params(tmp_path: Path) -> None:
    c = make(tmp_path / "db", "IVF_FLAT", build={"nlist": 64})
    c.release_collection("c")
    c.drop_index("c", "v")
    assert not index_in_use(c)
    ip = c.prepare_index_params()
    ip.add_index("v", "HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
    c.create_index("c", ip)
    c.load_collection("c")
    c.wait_for_index("c")
    coll = c._coll("c")  # noqa: SLF001
    assert [a.spec.index_type for seg in coll._mem.sealed.values() for a in seg.indexes.values()] == ["HNSW"]  # noqa: SLF001
    assert len(coll._versions.current.indexes) == 1  # noqa: SLF001
    c.close()
    c = keeldb.Client(str(tmp_path / "db"))
    assert c.recovery_report("c")["indexes_loaded"] == 1
    c.close()


def test_create_index_and_load_return_when_searches_use_the_index(tmp_path: Path) -> None:
    """As pymilvus's: the first search after create_index (or load) already uses the index;
    ``sync=False`` / ``_async=True`` leave the build to the background."""
    c = keeldb.Client(str(tmp_path / "db"))
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    c.create_collection("c", schema=s)
    for part in range(2):  # two sealed segments, both needing an index
        ids = np.arange(part * N // 2, (part + 1) * N // 2)
        c.insert_columns("c", {"id": ids, "v": BASE[ids]}, len(ids))
        c.flush("c")
    ip = c.prepare_index_params()
    ip.add_index("v", "HNSW", metric_type="L2", params={"M": 8, "efConstruction": 32})
    c.create_index("c", ip)
    d = c.describe_index("c", "v")
    assert (d["pending_index_rows"], d["indexed_rows"], d["state"]) == (0, N, "Finished")
    assert len(c._coll("c")._versions.current.indexes) == 2  # noqa: SLF001 - committed, not only built
    c.load_collection("c")
    assert index_in_use(c)
    # The opt-out: create_index returns before the build; load_collection then waits for it.
    c.release_collection("c")
    c.drop_index("c", "v")
    ip = c.prepare_index_params()
    ip.add_index("v", "IVF_FLAT", metric_type="L2", params={"nlist": 16})
    coll = c._coll("c")  # noqa: SLF001
    with coll._indexer.lock:  # noqa: SLF001 - hold the builder so the call cannot finish it
        c.create_index("c", ip, sync=False)
        assert c.describe_index("c", "v")["pending_index_rows"] == N
    c.load_collection("c")
    assert c.describe_index("c", "v")["pending_index_rows"] == 0 and index_in_use(c)
    c.close()


@pytest.mark.parametrize(
    ("index_type", "params", "message"),
    [
        ("IVF_FLAT", {"nlist": 0}, "nlist"),
        ("IVF_FLAT", {"nlist": "many"}, "nlist"),
        ("IVF_PQ", {"nlist": 16, "m": 5}, "multiple"),
        ("IVF_PQ", {"nlist": 16, "m": 8, "nbits": 40}, "nbits"),
        ("HNSW", {"M": 1}, "M"),
        ("HNSW", {"efConstruction": -3}, "efConstruction"),
        ("HNSW_SQ", {"sq_type": "SQ3"}, "sq_type must be one of SQ4U, SQ6, SQ8, FP16, BF16"),
        ("HNSW_SQ", {"sq_type": "FP16", "refine": True, "refine_type": "SQ8"}, "must be finer than sq_type FP16"),
        ("HNSW_SQ", {"refine_type": "FP32"}, "refine_type needs refine set to true"),
        ("HNSW_SQ", {"refine": "maybe"}, "refine must be true or false"),
        ("HNSW_PQ", {"m": 5}, "multiple"),
        ("HNSW_PQ", {"m": 8, "nbits": 24}, "nbits"),
        ("HNSW_PRQ", {"m": 8, "nrq": 0}, "nrq"),
        ("IVF_RABITQ", {"refine": True, "refine_type": "INT4"}, "refine_type must be one of"),
        ("SCANN", {"with_raw_data": 3}, "with_raw_data"),
        ("DISKANN", {}, "unknown vector index type"),
    ],
)
def test_bad_index_params_are_refused_at_create(tmp_path: Path, index_type: str, params: dict[str, Any], message: str) -> None:
    c = keeldb.Client(str(tmp_path / "db"))
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    ip = c.prepare_index_params()
    ip.add_index("v", index_type, metric_type="L2", params=params)
    with pytest.raises(keeldb.InvalidArgument, match=message):
        c.create_collection("c", schema=s, index_params=ip)
    assert not c.has_collection("c")
    c.close()


def test_bad_search_params(tmp_path: Path) -> None:
    c = make(tmp_path / "db", "HNSW", build={"M": 8, "efConstruction": 32})
    with pytest.raises(keeldb.InvalidArgument, match="ef"):
        c.search("c", QUERIES[:1], limit=20, search_params={"params": {"ef": 10}})
    with pytest.raises(keeldb.InvalidArgument, match="nprobe"):
        c.search("c", QUERIES[:1], limit=5, search_params={"params": {"nprobe": 0}})
    for bad, message in (({"refine_k": 0.5}, "refine_k"), ({"reorder_k": 5}, "reorder_k"), ({"rbq_query_bits": 9}, "rbq_query_bits")):
        with pytest.raises(keeldb.InvalidArgument, match=message):
            c.search("c", QUERIES[:1], limit=10, search_params={"params": bad})
    c.close()


@pytest.mark.parametrize("index_type", ["HNSW_SQ/refine", "IVF_RABITQ", "SCANN"])
def test_quantized_index_survives_restart_and_answers_the_same(tmp_path: Path, index_type: str) -> None:
    """A quantized kind's file (FAISS's serialisation of the wrapper, codes and refine copy)
    is loaded at restart, not rebuilt, and answers exactly as before."""
    build, search, _ = CASES[index_type]
    c = make(tmp_path / "db", index_type.split("/")[0], build=build)
    before = c.search("c", QUERIES[:20], limit=10, search_params={"params": search})
    c.close()
    c = keeldb.Client(str(tmp_path / "db"))
    c.load_collection("c")
    assert c.recovery_report("c")["indexes_loaded"] == 1 and index_in_use(c)
    assert c.wait_for_index("c")["built"] == 0
    assert c.search("c", QUERIES[:20], limit=10, search_params={"params": search}) == before
    c.close()


@pytest.mark.parametrize("metric", ["IP", "COSINE"])
def test_quantized_kinds_under_similarity_metrics(tmp_path: Path, metric: str) -> None:
    c = make(tmp_path / "db", "HNSW_SQ", metric=metric, build={"M": 16, "efConstruction": 64, "refine": True, "refine_type": "FP32"})
    assert index_in_use(c)
    got = c.search("c", QUERIES[:50], limit=10, search_params={"metric_type": metric, "params": {"ef": 128, "refine_k": 2}})
    assert recall(got, exact_top(BASE, np.arange(N), QUERIES[:50], 10, metric)) >= 0.85
    for g in got:
        d = [h["distance"] for h in g]
        assert d == sorted(d, reverse=True)
    c.close()


def test_small_segments_are_not_indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_builder_mod, "INDEX_MIN_ROWS", 5000)
    c = keeldb.Client(str(tmp_path / "db"))
    c.create_collection("c", dimension=DIM, metric_type="L2")
    c.insert_columns("c", {"id": np.arange(4000), "vector": BASE[:4000]}, 4000)
    c.flush("c")
    assert c.wait_for_index("c")["built"] == 0
    assert c.describe_index("c", "vector")["state"] == "Finished"
    assert not index_in_use(c)
    c.close()


def test_reader_on_an_older_snapshot_keeps_its_files(tmp_path: Path) -> None:
    """A compaction commits and GC unlinks the inputs while a reader still holds a snapshot
    over them: the reader keeps answering from the inputs (memory-mapped, so unlinking does
    not take the pages away), and new readers see the output."""
    c = keeldb.Client(str(tmp_path / "db"))
    c.create_collection("c", dimension=DIM, metric_type="L2")
    for part in range(2):
        rows = np.arange(part * 3000, (part + 1) * 3000)
        c.insert_columns("c", {"id": rows, "vector": BASE[rows]}, rows.size)
        c.flush("c")
    c.wait_for_index("c")
    coll = c._coll("c")  # noqa: SLF001
    old = c.snapshot("c")
    before = c.search("c", QUERIES[:5], limit=10, snapshot=old)
    inputs = {p.name for p in coll.dir.glob("seg-*")} | {p.name for p in coll.dir.glob("idx-*")}
    c.delete("c", ids=list(range(0, 6000, 2)))
    c.flush("c")
    c.compact("c")
    if coll._bg_compact is not None:  # noqa: SLF001
        coll._bg_compact.join()  # noqa: SLF001
    c.flush("c")  # one more manifest version, so GC drops what only the older one needed
    c.wait_for_index("c")
    now = {p.name for p in coll.dir.glob("seg-*")} | {p.name for p in coll.dir.glob("idx-*")}
    assert not inputs & now, "the inputs' files should be gone from the directory by now"
    assert c.search("c", QUERIES[:5], limit=10, snapshot=old) == before
    fresh = c.search("c", QUERIES[:5], limit=10)
    assert all(h["id"] % 2 for hits in fresh for h in hits)
    c.close()


def test_index_build_on_a_full_disk_leaves_the_segment_exact(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An index that cannot be written is not an error for anyone: the build gives up, the
    segment keeps answering exactly, writes go on, and the next build succeeds."""
    from keeldb.storage import crash

    c = keeldb.Client(str(tmp_path / "db"))
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    c.create_collection("c", schema=s)  # no index yet: flush writes the segment first
    c.insert_columns("c", {"id": np.arange(N), "v": BASE}, N)
    c.flush("c")
    monkeypatch.setattr(crash, "_faults", {"disk-full": ""})
    ip = c.prepare_index_params()
    ip.add_index("v", "IVF_FLAT", metric_type="L2", params={"nlist": 32})
    c.create_index("c", ip)
    c.load_collection("c")
    assert c.wait_for_index("c")["built"] == 0
    assert not index_in_use(c)
    bg = c._coll("c")._indexer.thread  # noqa: SLF001 - let the background builder give up too
    if bg is not None:
        bg.join()
    d = c.describe_index("c", "v")  # the builder gave up: pending rows, but not "in progress"
    assert d["pending_index_rows"] == N and d["state"] == "Finished"
    assert not list(c._coll("c").dir.glob("idx-*"))  # noqa: SLF001 - nothing half-written left
    got = c.search("c", QUERIES[:5], limit=10)
    assert recall(got, exact_top(BASE, np.arange(N), QUERIES[:5], 10, "L2")) == 1.0
    c.upsert("c", [{"id": 0, "v": BASE[0].tolist()}])
    monkeypatch.setattr(crash, "_faults", {})
    assert c.wait_for_index("c")["built"] == 1
    assert index_in_use(c) and c.describe_index("c", "v")["state"] == "Finished"
    c.close()


def test_brute_force_is_milvus_lites_name_for_flat(tmp_path: Path) -> None:
    """BRUTE_FORCE (Milvus Lite's exact index) searches exactly as FLAT, is described by the
    name it was given, and is the same after a reopen."""
    c = make(tmp_path / "db", "BRUTE_FORCE")
    got = c.search("c", QUERIES[:20], limit=10)
    assert [[h["id"] for h in g] for g in got] == exact_top(BASE, np.arange(N), QUERIES[:20], 10, "L2")
    assert c.describe_index("c", "v")["index_type"] == "BRUTE_FORCE"
    c.close()
    c = keeldb.Client(str(tmp_path / "db"))
    c.load_collection("c")
    assert c.search("c", QUERIES[:20], limit=10) == got
    assert c.describe_index("c", "v")["index_type"] == "BRUTE_FORCE"
    c.close()
