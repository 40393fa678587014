"""The compaction policy alone: a pure function of segment numbers, no files, no threads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keeldb.engine.compaction import CompactionPick, SegmentStats, pick_compaction

TARGET = 1000


def seg(sid: int, size: int = 10, rows: int = 100, purgeable: int = 0) -> SegmentStats:
    return SegmentStats(sid, size, rows, purgeable)


def pick(segs: list[SegmentStats], deletes: int = 0, *, force: bool = False, ratio: float = 0.2) -> CompactionPick | None:
    return pick_compaction(segs, deletes, target_bytes=TARGET, deleted_ratio=ratio, force=force, min_segments=8)


def test_eight_small_segments_are_merged_seven_are_not() -> None:
    assert pick([seg(i) for i in range(7)]) is None
    assert pick([seg(i) for i in range(8)]) == CompactionPick(tuple(range(8)), False)


def test_force_merges_any_two_small_segments_but_not_one() -> None:
    assert pick([seg(1), seg(2)], force=True) == CompactionPick((1, 2), False)
    assert pick([seg(1)], force=True) is None
    assert pick([seg(1, size=TARGET)], force=True) is None  # large and clean: nothing to gain


def test_a_dirty_segment_is_rewritten_alone_even_if_large() -> None:
    big_dirty = seg(5, size=5 * TARGET, rows=100, purgeable=20)
    assert pick([big_dirty]) == CompactionPick((5,), False)
    assert pick([seg(5, size=5 * TARGET, rows=100, purgeable=19)]) is None  # below the ratio


def test_dirty_first_then_small_oldest_first_up_to_the_target() -> None:
    segs = [seg(1, size=400), seg(2, size=300, purgeable=50), seg(3, size=400), seg(4, size=100)]
    # Dirty 2 first (300), then small 1 (700), then 3 would pass the target: stop there.
    assert pick(segs) == CompactionPick((2, 1), False)


def test_delete_files_merge_along_or_alone() -> None:
    assert pick([], deletes=7) is None
    assert pick([], deletes=8) == CompactionPick((), True)
    assert pick([], deletes=2, force=True) == CompactionPick((), True)
    assert pick([], deletes=1, force=True) is None  # one file: nothing to merge
    assert pick([seg(i) for i in range(8)], deletes=2) == CompactionPick(tuple(range(8)), True)


SEGS = st.lists(
    st.builds(
        lambda size, rows, frac: (size, rows, int(rows * frac)),
        st.integers(min_value=0, max_value=3 * TARGET),
        st.integers(min_value=0, max_value=1000),
        st.floats(min_value=0, max_value=1),
    ),
    max_size=20,
).map(lambda xs: [SegmentStats(i, s, r, p) for i, (s, r, p) in enumerate(xs)])


@given(SEGS, st.integers(min_value=0, max_value=12), st.booleans(), st.floats(min_value=0.01, max_value=1))
def test_policy_invariants(segs: list[SegmentStats], deletes: int, force: bool, ratio: float) -> None:
    p = pick(segs, deletes, force=force, ratio=ratio)
    by_id = {s.id: s for s in segs}
    dirty = {s.id for s in segs if s.rows and s.purgeable >= ratio * s.rows and s.purgeable}
    small = {s.id for s in segs if s.bytes < TARGET // 2}
    if p is None:
        # Nothing worth doing: no dirty segment, too few small ones, too few delete files.
        assert not dirty
        assert len(small) < (2 if force else 8)
        assert deletes < 2 or not (force or deletes >= 8)
        return
    chosen = [by_id[i] for i in p.segments]
    assert len(set(p.segments)) == len(p.segments)
    assert p.segments or p.merge_deletes
    assert set(p.segments) <= dirty | small
    # Dirty segments come first, each group in id order (oldest first).
    flags = [s.id in dirty for s in chosen]
    assert flags == sorted(flags, reverse=True)
    assert [s.id for s in chosen if s.id in dirty] == sorted(s.id for s in chosen if s.id in dirty)
    assert [s.id for s in chosen if s.id not in dirty] == sorted(s.id for s in chosen if s.id not in dirty)
    # Up to the target: only a lone segment may exceed it, and a lone one is dirty.
    if len(chosen) > 1:
        assert sum(s.bytes for s in chosen) <= TARGET
    if len(chosen) == 1:
        assert chosen[0].id in dirty
    # Delete files merge only when there are two, and along with work or on their own count.
    assert p.merge_deletes == (deletes >= 2 and (force or deletes >= 8 or bool(p.segments)))
