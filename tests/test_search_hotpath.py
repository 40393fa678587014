"""The search hot path's caches never answer from stale state.

- A plain search's checked plan (client.py ``_PlainSearch``) is reused only while the catalog
  entry and the schema it was checked against are current: an index rebuilt with another
  metric, a released partition, a released collection and bad arguments are seen at once.
- A sealed segment's visibility mask (engine/visibility.py) is reused only for the same delete
  version and the same stamps before the snapshot: rows deleted after a mask was cached,
  older snapshots, flushes, compactions, inserts and upserts all answer as the general path
  (a filter that matches every row takes it: its mask is computed from the rows every time).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

import keeldb
from keeldb import DataType
from keeldb.engine.search import SoleSegmentSearch
from keeldb.engine.visibility import visible_mask
from keeldb.errors import CollectionNotLoaded, InvalidArgument
from keeldb.index.params import search_knobs

DIM = 16
N = 3000
rng = np.random.default_rng(11)
BASE = rng.normal(0, 1, (N, DIM)).astype(np.float32)
PLAIN: dict[str, Any] = {"metric_type": "L2", "params": {"ef": 64}}


def make(path: Path, metric: str = "L2") -> keeldb.Client:
    c = keeldb.Client(str(path))
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    ip = c.prepare_index_params()
    ip.add_index("v", "HNSW", metric_type=metric, params={"M": 8, "efConstruction": 40})
    c.create_collection("c", schema=s, index_params=ip)
    c.insert_columns("c", {"id": np.arange(N), "v": BASE}, N)
    c.flush("c")
    c.wait_for_index("c")
    return c


def ids(res: Any) -> list[list[int]]:
    return [[h["id"] for h in hits] for hits in res]


def both(c: keeldb.Client, q: np.ndarray, **kw: Any) -> list[list[int]]:
    """The plain (cached) answer, checked equal to the general path's: a filter matching
    every row computes visibility from the rows, and FAISS gets the same bitmap."""
    plain = ids(c.search("c", q, limit=10, search_params=PLAIN, **kw))
    general = ids(c.search("c", q, limit=10, search_params=PLAIN, filter="id >= 0", **kw))
    assert plain == general
    assert all(len(h) == 10 for h in plain)
    return plain


def test_rows_deleted_after_a_mask_was_cached_are_never_returned(tmp_path: Path) -> None:
    c = make(tmp_path / "db")
    q = BASE[:3] + 0.01
    first = both(c, q)
    assert [h[0] for h in first] == [0, 1, 2]
    c.delete("c", ids=[0, 1])
    second = both(c, q)  # caches the mask with rows 0 and 1 hidden
    assert not {0, 1} & {i for h in second for i in h}
    before_more = c.snapshot("c")
    gone = [second[2][0], second[2][1]]
    c.delete("c", ids=gone)  # a new delete version: the cached mask must not answer
    third = both(c, q)
    assert not {0, 1, *gone} & {i for h in third for i in h}
    # An older snapshot still sees what was deleted after it, then the newer one again.
    old = both(c, q, snapshot=before_more)
    assert old == second
    assert both(c, q) == third
    c.flush("c")
    assert both(c, q) == third
    c.compact("c")
    coll = c._coll("c")  # noqa: SLF001
    if coll._bg_compact is not None:  # noqa: SLF001
        coll._bg_compact.join()  # noqa: SLF001
    c.wait_for_index("c")
    assert both(c, q) == third
    # A new row next to the query (growing segment), then upserted far away.
    c.insert("c", [{"id": N + 1, "v": (BASE[2] + 0.01).tolist()}])
    assert both(c, q)[2][0] == N + 1
    c.upsert("c", [{"id": N + 1, "v": (BASE[2] + 50).tolist()}])
    assert N + 1 not in both(c, q)[2]
    c.close()


def test_cached_mask_equals_visibility_at_every_snapshot(tmp_path: Path) -> None:
    """Deletes in several steps, snapshots between them read in a shuffled order: the cached
    mask is always the rows' own visibility at that snapshot."""
    c = make(tmp_path / "db")
    snaps = [c.snapshot("c")]
    order = np.random.default_rng(3).permutation(N)
    for step in range(5):
        c.delete("c", ids=order[step * 40 : (step + 1) * 40].tolist())
        snaps.append(c.snapshot("c"))
    for i in [3, 0, 5, 5, 1, 4, 2, 0, 5]:
        snap = snaps[i]
        (view,) = [v for v in snap.views if v.num_rows]
        cached = visible_mask(view, snap.ts)
        assert cached is not None
        mask, nsel = cached
        expect = view.visible(snap.ts)
        if mask is None:
            assert expect.all()
        else:
            assert not mask.flags.writeable
            assert np.array_equal(mask, expect)
        assert nsel == int(expect.sum()) == N - 40 * i
        hits = ids(c.search("c", BASE[order[:1]], limit=10, search_params=PLAIN, snapshot=snap))[0]
        assert (order[0] in hits) == (i == 0)
    c.close()


def test_plan_follows_index_partition_and_load_changes(tmp_path: Path) -> None:
    c = make(tmp_path / "db")
    q = BASE[:1] + 0.01
    assert ids(c.search("c", q, limit=10, search_params=PLAIN))[0][0] == 0
    # Bad arguments are refused as before, a plan for the good ones notwithstanding.
    with pytest.raises(InvalidArgument):
        c.search("c", q, limit=True, search_params=PLAIN)
    with pytest.raises(InvalidArgument):
        c.search("c", q[:, :4], limit=10, search_params=PLAIN)
    with pytest.raises(InvalidArgument):
        c.search("c", None, limit=10, search_params=PLAIN)
    # The index rebuilt with another metric: the plan checked against L2 must not answer.
    c.release_collection("c")
    with pytest.raises(CollectionNotLoaded):
        c.search("c", q, limit=10, search_params=PLAIN)
    c.drop_index("c", "v")
    ip = c.prepare_index_params()
    ip.add_index("v", "HNSW", metric_type="IP", params={"M": 8, "efConstruction": 40})
    c.create_index("c", ip)
    c.load_collection("c")
    with pytest.raises(InvalidArgument, match="metric type not match"):
        c.search("c", q, limit=10, search_params=PLAIN)
    d = [h["distance"] for h in c.search("c", q, limit=10, search_params={"params": {"ef": 64}})[0]]
    assert d == sorted(d, reverse=True)  # IP: similarities, best first
    c.close()


def test_plan_follows_released_partitions(tmp_path: Path) -> None:
    c = make(tmp_path / "db")
    c.create_partition("c", "p")
    q = BASE[:1] + 0.001
    c.insert("c", [{"id": N + 7, "v": q[0].tolist()}], partition_name="p")
    assert ids(c.search("c", q, limit=10, search_params=PLAIN))[0][0] == N + 7
    c.release_partitions("c", ["p"])
    assert N + 7 not in ids(c.search("c", q, limit=10, search_params=PLAIN))[0]
    c.load_partitions("c", ["p"])
    assert ids(c.search("c", q, limit=10, search_params=PLAIN))[0][0] == N + 7
    c.close()


def test_ids_only_results_keep_their_shape(tmp_path: Path) -> None:
    c = make(tmp_path / "db")
    q = BASE[:2] + 0.01
    for out in (None, [], ["id"]):
        res = c.search("c", q, limit=3, search_params=PLAIN, output_fields=out)
        for qi, hits in enumerate(res):
            assert hits[0]["id"] == qi
            assert all(set(h) == {"id", "distance", "entity"} for h in hits)
            assert all(h["entity"] == ({"id": h["id"]} if out else {}) for h in hits)
            assert all(isinstance(h["distance"], float) for h in hits)
        assert res.extra == {"cost": N}
    c.close()


def full(res: Any) -> list[list[tuple[int, float, dict[str, Any]]]]:
    return [[(h["id"], h["distance"], h["entity"]) for h in hits] for hits in res]


@pytest.mark.parametrize("metric", ["L2", "COSINE", "IP"])
def test_sole_segment_path_answers_as_the_general_path(
    tmp_path: Path, metric: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kept plain search over one sealed segment, all visible, goes to its index without
    a snapshot (search.SoleSegmentSearch): ids, distances and entities equal to the general
    path's (a filter matching every row), for one query and several; after a delete, an
    insert, a flush making a second segment and a TTL it steps aside, and answers the same."""
    answered: list[int] = []
    call = SoleSegmentSearch.__call__

    def spy(self: SoleSegmentSearch, seg: Any, q: np.ndarray) -> Any:
        out = call(self, seg, q)
        answered.append(out is not None)
        return out

    monkeypatch.setattr(SoleSegmentSearch, "__call__", spy)
    c = make(tmp_path / "db", metric)
    sp = {"metric_type": metric, "params": {"ef": 64}}

    def check(q: np.ndarray, sole: bool) -> list[list[int]]:
        for out in (None, ["id"]):
            answered.clear()
            fast = c.search("c", q, limit=10, search_params=sp, output_fields=out)
            fast = c.search("c", q, limit=10, search_params=sp, output_fields=out)  # the kept plan
            assert answered[-1:] == ([True] if sole else [])
            general = c.search("c", q, limit=10, search_params=sp, output_fields=out, filter="id >= 0")
            assert full(fast) == full(general)
            assert fast.extra == general.extra
        return ids(fast)

    q = BASE[:5] + 0.01
    assert [h[0] for h in check(q, True)] == [0, 1, 2, 3, 4] or metric == "IP"
    check(q[:1], True)
    c.delete("c", ids=[0])  # a stamp at or before the newest snapshot: not all visible
    assert 0 not in check(q, False)[0]
    c.insert("c", [{"id": N + 1, "v": BASE[0].tolist()}])  # rows in the growing segment
    got = check(q[:1], False)
    assert N + 1 in got[0] and 0 not in got[0]
    c.flush("c")  # two sealed segments
    c.wait_for_index("c")
    check(q, False)
    c.alter_collection_properties("c", {"collection.ttl.seconds": 3600})
    check(q, False)
    c.close()


def test_sole_segment_path_at_a_given_snapshot_and_small_segments(tmp_path: Path) -> None:
    """A caller's snapshot is searched at that snapshot, never at the newest state; a
    segment no bigger than the page is searched exactly (the general path)."""
    c = make(tmp_path / "db")
    q = BASE[:1] + 0.01
    before = c.snapshot("c")
    c.delete("c", ids=[0])
    assert ids(c.search("c", q, limit=10, search_params=PLAIN))[0][0] != 0
    assert ids(c.search("c", q, limit=10, search_params=PLAIN, snapshot=before))[0][0] == 0
    res = c.search("c", q, limit=N, search_params={"metric_type": "L2", "params": {"ef": N}})
    assert len(res[0]) == N - 1
    c.close()


def test_bound_faiss_search_equals_search_and_refuses_other_shapes(tmp_path: Path) -> None:
    """FaissIndex.searcher (the sole-segment path's FAISS call, bound once) answers as
    FaissIndex.search, and refuses queries FAISS would read past (another width, dtype or
    layout) instead of handing it the pointer."""
    c = make(tmp_path / "db")
    (view,) = [v for v in c.snapshot("c").views if v.num_rows]
    ann = view.segment.indexes["v"]
    knobs = search_knobs({"ef": 64}, 10)
    run = ann.searcher(10, knobs)
    q = np.ascontiguousarray(BASE[:4] + 0.01)
    d1, i1 = run(q)
    d2, i2 = ann.search(q, 10, knobs, None)
    assert np.array_equal(i1, i2) and np.array_equal(d1, d2)
    for bad in (q[:, :8].copy(), q.astype(np.float64), np.asfortranarray(q)):
        with pytest.raises(ValueError):
            run(bad)
    c.close()
