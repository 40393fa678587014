"""The chaos checker must flag each kind of anomaly, alone, and pass the clean history."""

from __future__ import annotations

import json
from typing import Any

import pytest

from keeldb.chaos.checker import Observed, availability, check_reads, check_state
from keeldb.chaos.history import FAILED, OK, UNKNOWN, Fault, History, Op

N, B = 1000, 200


def build(outcomes: list[str], ephemeral: bool = False) -> History:
    """Upsert batches 0..len-1 cycling over keys 0..N-1, one after another, each taking 1 s;
    optionally an insert and a delete of ephemeral keys N..N+9 at the end."""
    h = History()
    h.base_rows = N
    t = 0.0
    for b, outcome in enumerate(outcomes):
        start = (b * B) % N
        h.ops.append(Op(len(h.ops), "upsert", t, t + 1, outcome, b, list(range(start, start + B))))
        t += 1
    if ephemeral:
        keys = list(range(N, N + 10))
        h.ops.append(Op(len(h.ops), "insert", t, t + 1, OK, 1000, keys))
        h.ops.append(Op(len(h.ops), "delete", t + 1, t + 2, OK, 1001, keys))
    return h


def state_after(h: History, applied: set[int] | None = None) -> dict[int, int]:
    """What a correct database shows: acknowledged batches, plus the given unknown ones."""
    vals = {k: -1 for k in range(N)}
    for op in h.ops:
        if op.kind == "upsert" and (op.outcome == OK or (applied and op.batch in applied)):
            for k in op.keys:
                vals[k] = op.batch  # type: ignore[assignment]
    return vals


def observe(vals: dict[int, int], **kw: Any) -> Observed:
    return Observed(values=vals, counts=kw.pop("counts", [len(vals), len(vals)]), **kw)


def test_clean_history_passes() -> None:
    h = build([OK] * 12 + [UNKNOWN], ephemeral=True)
    assert check_state(h, observe(state_after(h, applied={12}))) == []
    h = build([OK] * 12 + [UNKNOWN])
    assert check_state(h, observe(state_after(h))) == []
    h.ops.append(Op(len(h.ops), "count", 3.5, 3.6, OK, value=N))
    h.ops.append(Op(len(h.ops), "search", 5.5, 5.6, OK, value=[[(0, 5), (1, 5)]]))
    assert check_reads(h) == []


def test_count_off_by_one_batch() -> None:
    h = build([OK] * 5)
    v = check_state(h, observe(state_after(h), counts=[N + 200, N + 200]))
    assert any("count(*) returned 1200" in x and "1 batches of 200" in x for x in v), v
    h.ops.append(Op(len(h.ops), "count", 2.5, 2.6, OK, value=N + 200))
    assert any("outside [1000, 1000]" in x for x in check_reads(h))


def test_key_twice() -> None:
    h = build([OK] * 3)
    v = check_state(h, observe(state_after(h), duplicates=[42]))
    assert v == ["key 42 is visible twice in a full scan"]


def test_lost_acknowledged_write() -> None:
    h = build([OK] * 6)
    vals = state_after(h)
    vals[205] = -1  # batch 1 overwrote key 205 and was acknowledged; the base version came back
    v = check_state(h, observe(vals))
    assert len(v) == 1 and "key 205" in v[0] and "expected batch 1" in v[0] and "lost" in v[0], v


def test_half_applied_batch() -> None:
    h = build([OK] * 4 + [UNKNOWN])
    vals = state_after(h)
    for k in range(800, 900):  # half of batch 4's keys (800..999)
        vals[k] = 4
    v = check_state(h, observe(vals))
    assert any("half applied" in x and "100 of 200" in x for x in v), v


def test_unstable_count() -> None:
    h = build([OK] * 3)
    vals = state_after(h)
    v = check_state(h, observe(vals, counts=[N, N - 1]))
    assert any("unstable" in x for x in v), v


def test_stale_search_hit() -> None:
    h = build([OK] * 4)
    # Key 0 was rewritten by batch 0 (t=0..1); a search at t=2.5 must not see the base version.
    h.ops.append(Op(len(h.ops), "search", 2.5, 2.6, OK, value=[[(0, -1)]]))
    v = check_reads(h)
    assert any("key 0 at batch -1" in x for x in v), v
    # And after recovery, a search hit at an overwritten version is flagged too.
    v = check_state(h, observe(state_after(h), search_hits=[(0, -1)]))
    assert any("not live" in x for x in v), v


def test_unknown_write_that_later_appears() -> None:
    h = build([OK] * 4 + [UNKNOWN])
    # First check after a restart: batch 4 is not there -> resolved as not applied.
    assert check_state(h, observe(state_after(h))) == []
    assert h.ops[4].outcome == FAILED
    # A later check finds it after all: a write that was gone came back.
    v = check_state(h, observe(state_after(h, applied={4})))
    assert v and "must never appear" in v[0], v


def test_unknown_write_that_landed_is_resolved_ok() -> None:
    h = build([OK] * 4 + [UNKNOWN])
    assert check_state(h, observe(state_after(h, applied={4}))) == []
    assert h.ops[4].outcome == OK


def test_refused_write_must_not_appear() -> None:
    h = build([OK] * 4 + [FAILED])
    v = check_state(h, observe(state_after(h, applied={4})))
    assert v and "refused by the server" in v[0], v


def test_count_bounds_with_inserts_and_deletes() -> None:
    h = build([OK] * 2, ephemeral=True)  # insert t=2..3, delete t=3..4
    h.ops.append(Op(len(h.ops), "count", 3.5, 3.6, OK, value=N + 10))  # before the delete's ack
    h.ops.append(Op(len(h.ops), "count", 4.5, 4.6, OK, value=N + 10))  # after: too many
    v = check_reads(h)
    assert len(v) == 1 and "t=4.50s" in v[0], v


def test_overlapping_writes_are_reported_not_judged() -> None:
    h = build([OK] * 2)
    h.ops.append(Op(len(h.ops), "upsert", 0.5, 3, OK, 99, [0]))
    assert any("overlap" in x for x in check_state(h, observe(state_after(h))))


def test_availability_phases() -> None:
    h = build([OK, OK, UNKNOWN, FAILED, OK, OK])
    h.faults.append(Fault("sigkill", 2.0, 3.5))
    a = availability(h)
    assert a["rates"]["upsert"]["before"]["rate"] == 1.0
    assert a["rates"]["upsert"]["during"] == {"ok": 0, "total": 2, "rate": 0.0}
    assert a["recoveries"][0]["first_ok_seconds"] == pytest.approx(3.0)


def with_compactions(h: History, outcomes: list[str]) -> History:
    """Add a compaction every second (and a flush), with the given outcomes, alongside the
    writes: neither changes the data."""
    for i, outcome in enumerate(outcomes):
        h.ops.append(Op(len(h.ops), "flush", i + 0.2, i + 0.4, outcome))
        h.ops.append(Op(len(h.ops), "compact", i + 0.5, i + 0.9, outcome, value=1 if outcome == OK else None))
    return h


def test_compactions_change_nothing_in_the_model() -> None:
    h = with_compactions(build([OK] * 6 + [UNKNOWN], ephemeral=True), [OK, OK, UNKNOWN, FAILED, OK, OK])
    assert check_state(h, observe(state_after(h, applied={6}))) == []
    h.ops.append(Op(len(h.ops), "count", 3.5, 3.6, OK, value=N))
    h.ops.append(Op(len(h.ops), "search", 5.5, 5.6, OK, value=[[(0, 5), (1, 5)]]))
    assert check_reads(h) == []
    # ... and they do not hide an anomaly either.
    vals = state_after(h, applied={6})
    vals[205] = -1
    v = check_state(h, observe(vals))
    assert len(v) == 1 and "key 205" in v[0] and "lost" in v[0], v


def test_search_need_not_be_complete() -> None:
    """An ANN index may miss rows: a search that returns fewer hits than asked for, or none,
    is not a violation; only a hit that was not live is."""
    h = with_compactions(build([OK] * 4), [OK] * 4)
    h.ops.append(Op(len(h.ops), "search", 4.5, 4.6, OK, value=[[(0, 0)], []]))
    assert check_reads(h) == []
    assert check_state(h, observe(state_after(h), search_hits=[(0, 0)])) == []


def test_availability_counts_compactions() -> None:
    h = with_compactions(build([OK] * 6), [OK, OK, UNKNOWN, FAILED, OK, OK])
    h.faults.append(Fault("crash-point", 2.0, 3.5, "compaction.after_commit:1"))
    a = availability(h)
    assert a["rates"]["compact"]["before"] == {"ok": 2, "total": 2, "rate": 1.0}
    assert a["rates"]["compact"]["during"] == {"ok": 0, "total": 1, "rate": 0.0}  # at t=2.5
    assert a["rates"]["compact"]["after"] == {"ok": 2, "total": 3, "rate": pytest.approx(2 / 3)}
    assert a["rates"]["flush"]["before"]["total"] == 2


def test_history_roundtrip() -> None:
    h = with_compactions(build([OK, UNKNOWN]), [OK, UNKNOWN])
    h.faults.append(Fault("sigkill", 1.0, 2.0))
    h.faults.append(Fault("crash-point", 2.5, 3.0, "compaction.after_write:1"))
    again = History.from_json(h.to_json())
    assert [o.__dict__ for o in again.ops] == [o.__dict__ for o in h.ops]
    assert [f.__dict__ for f in again.faults] == [f.__dict__ for f in h.faults]


def test_report_and_summary_show_compactions_and_crash_points() -> None:
    from keeldb.chaos.report import render_html
    from keeldb.chaos.runner import Config, summarize

    h = with_compactions(build([OK] * 4), [OK] * 4)
    h.faults.append(Fault("crash-point", 1.0, 1.5, "compaction.after_commit:1"))
    h.faults.append(Fault("crash-point", 2.0, 2.5, "index.after_write:1 (not reached in 30s; killed)"))
    s = summarize(h, [], 10.0, "keeldb", Config(rows=N))
    assert s["outcomes"]["compact/ok"] == 4
    assert s["crash_points"] == ["compaction.after_commit:1", "index.after_write:1 (not reached in 30s; killed)"]
    assert s["crash_points_not_reached"] == ["index.after_write:1"]
    assert s["index_type"] == "IVF_FLAT"
    page = render_html(h, s, [])
    assert ">compact</text>" in page and "not reached in 30s" in page


def test_crash_point_selection() -> None:
    from keeldb.chaos.runner import LIVE_CRASH_POINTS, live_crash_points
    from keeldb.storage.crash import CRASH_POINTS

    assert {"compaction.after_write", "compaction.after_commit", "index.after_write", "index.after_commit"} <= set(
        LIVE_CRASH_POINTS
    )
    # The defaults are the live points this server knows; a named one must exist.
    assert live_crash_points() == tuple(p for p in LIVE_CRASH_POINTS if p in CRASH_POINTS)
    assert "compaction.after_commit" in live_crash_points()
    assert live_crash_points(("compaction.after_write",)) == ("compaction.after_write",)
    with pytest.raises(ValueError, match="unknown crash points"):
        live_crash_points(("compaction.after_wirte",))


def test_index_and_search_params() -> None:
    from keeldb.chaos.workload import index_params, search_params

    assert index_params("IVF_FLAT", 32) == ({"nlist": 64}, {"nprobe": 16})
    assert search_params("IVF_FLAT", 32) == {"metric_type": "L2", "params": {"nprobe": 16}}
    assert index_params("IVF_PQ", 12)[0]["m"] == 4  # m divides dim
    assert search_params("HNSW", 32)["params"]["ef"] >= 10  # ef >= limit
    with pytest.raises(ValueError, match="unknown index type"):
        index_params("DISKANN", 32)


# -- reads through every visibility path (chaos/judge.py) ----------------------------------


def read(h: History, kind: str, t: float, value: Any, pred: Any = None, keys: Any = None, **args: Any) -> Op:
    """A read of ``kind`` over [t, t + 0.1] that returned ``value``."""
    from keeldb.chaos.predicates import Pred

    p = pred.to_json() if isinstance(pred, Pred) else pred
    op = Op(len(h.ops), kind, t, t + 0.1, OK, value=value, keys=list(keys or []), pred=p, args=args)
    h.ops.append(op)
    return op


def churned() -> History:
    """Upserts of batches 0..5 at t=b..b+1 (keys 200b..200b+199; batch 5 rewrites keys
    0..199, batch 4 wrote 800..999), an insert of extra keys N..N+9 (t=6..7) and their
    delete (t=7..8); op ids equal batch numbers; each write has a server timestamp."""
    h = build([OK] * 6, ephemeral=True)
    for i, op in enumerate(h.ops):
        op.ts = 1000 * (i + 1)
    return h


def test_clean_reads_of_every_kind_pass() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    rows = [[k, 4] for k in range(N - 200, N)]  # batch 4 wrote keys 800..999
    read(h, "count", 8.5, 200, Pred(lo=N - 200))  # base keys 800..999 and the deleted extra keys
    read(h, "count", 6.5, 1, Pred(lo=N, hi=N + 1))  # during the insert: 0 or 1
    read(h, "count", 6.5, 0, Pred(lo=N, hi=N + 1))
    read(h, "count", 8.5, sum(k % 7 == 3 for k in range(800, 1000)), Pred(lo=N - 200, mod=(7, 3)))
    read(h, "count", 8.5, 200, Pred(lo=0, batch_min=5))
    read(h, "query", 8.5, rows, Pred(lo=N - 200))
    read(h, "query", 7.5, rows + [[k, 1000] for k in range(N, N + 10)], Pred(lo=N - 200))  # delete running
    read(h, "get", 8.5, [[0, 5], [N - 1, 4]], keys=[0, N - 1, N + 3])
    read(h, "page", 8.5, [[k, 4] for k in range(810, 820)], Pred(lo=N - 200), limit=10, offset=10)
    read(h, "page", 8.5, [[k, 4] for k in range(990, 1000)], Pred(lo=N - 200), limit=50, offset=190)
    read(h, "page", 8.5, [], Pred(lo=N - 200), limit=50, offset=200)
    read(h, "iterate", 8.5, rows, Pred(lo=N - 200), batch_size=37)
    read(h, "search", 8.5, [[[5, 5], [6, 5]]], Pred(hi=10))
    # Pinned at the upsert of batch 5 (op 5) and just before it; at the delete (op 7).
    read(h, "query", 8.5, [[k, 5] for k in range(200)], Pred(lo=0, hi=200), pin_op=5, pin_side="at")
    read(h, "query", 8.5, [[k, 0] for k in range(200)], Pred(lo=0, hi=200), pin_op=5, pin_side="before")
    read(h, "count", 8.5, 0, Pred(lo=N, hi=N + 10), pin_op=7, pin_side="at")
    read(h, "count", 8.5, 10, Pred(lo=N, hi=N + 10), pin_op=7, pin_side="before")
    assert check_reads(h) == []


def test_filtered_count_off_by_one() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    read(h, "count", 8.5, 201, Pred(lo=N - 200))
    v = check_reads(h)
    assert len(v) == 1 and "count(*) where id >= 800 (op #8" in v[0] and "returned 201" in v[0], v
    assert "off by +1" in v[0], v


def test_filtered_count_off_by_a_batch_names_the_history_batch_size() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    h.batch_size = 5000  # a big-batches run: "a batch" is 5,000 rows
    read(h, "count", 8.5, 5200, Pred(lo=N - 200))
    v = check_reads(h)
    assert len(v) == 1 and "1 batches of 5000" in v[0], v


def test_filtered_count_with_mod_and_batch_terms() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    read(h, "count", 8.5, 1 + sum(k % 7 == 3 for k in range(800, 1000)), Pred(lo=N - 200, mod=(7, 3)))
    read(h, "count", 8.5, 199, Pred(lo=0, batch_min=5))  # batch 5 wrote 200 keys
    v = check_reads(h)
    assert len(v) == 2 and "id % 7 == 3" in v[0] and "batch >= 5" in v[1], v


def test_query_page_with_a_deleted_key() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    page = [[k, 4] for k in range(990, 1000)] + [[N, 1000]]  # key N was deleted at t=7..8
    read(h, "page", 8.5, page, Pred(lo=N - 200), limit=50, offset=190)
    v = check_reads(h)
    assert any(f"key {N} at batch 1000, a version that was not live" in x for x in v), v


def test_query_page_that_skips_or_repeats_rows() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    read(h, "page", 8.5, [[k, 4] for k in range(815, 825)], Pred(lo=N - 200), limit=10, offset=10)  # from 810
    read(h, "page", 8.5, [[k, 4] for k in (810, 811, 813)], Pred(lo=N - 200), limit=3, offset=10)  # 812 lost
    read(h, "page", 8.5, [[k, 4] for k in (812, 811)], Pred(lo=N - 200), limit=2, offset=11)  # out of order
    v = check_reads(h)
    assert any("starts at key 815, but 15 matching keys come before it" in x for x in v), v
    assert any("did not return key 812" in x for x in v), v
    assert any("not in key order" in x for x in v), v


def test_get_returning_an_old_version() -> None:
    h = churned()
    read(h, "get", 8.5, [[0, 5], [5, 0]], keys=[0, 5])  # batch 5 rewrote key 5 at t=5..6
    v = check_reads(h)
    assert len(v) == 1 and "key 5 at batch 0, a version that was not live while it ran" in v[0], v
    assert "allowed: batch 5" in v[0], v


def test_get_missing_a_live_key() -> None:
    h = churned()
    read(h, "get", 8.5, [[0, 5]], keys=[0, 805])
    v = check_reads(h)
    assert len(v) == 1 and "did not return key 805" in v[0], v


def test_iterator_with_a_duplicate() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    rows = [[k, 4] for k in range(N - 200, N)]
    read(h, "iterate", 8.5, rows[:37] + rows[36:], Pred(lo=N - 200), batch_size=37)  # key 836 on two pages
    v = check_reads(h)
    assert len(v) == 1 and "query_iterator where id >= 800" in v[0] and "returned key 836 twice" in v[0], v


def test_filtered_query_row_the_filter_does_not_select() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    read(h, "query", 8.5, [[k, 4] for k in range(N - 200, N)] + [[799, 3]], Pred(lo=N - 200))
    read(h, "search", 8.5, [[[5, 5], [11, 5]]], Pred(hi=10))
    v = check_reads(h)
    assert any("key 799 at batch 3, which its filter does not select" in x for x in v), v
    assert any("search where id < 10" in x and "key 11" in x for x in v), v


def test_pinned_read_seeing_a_later_write() -> None:
    """Pinned at the timestamp of batch 0's upsert (op 0), keys 0..199 must show batch 0 —
    not batch 5, written later (an MVCC read that ignores its snapshot)."""
    from keeldb.chaos.predicates import Pred

    h = churned()
    read(h, "query", 8.5, [[k, 5] for k in range(200)], Pred(lo=0, hi=200), pin_op=0, pin_ts=1000, pin_side="at")
    v = check_reads(h)
    assert v and "pinned at the timestamp of write #0" in v[0] and "batch 5, a version that was not live" in v[0], v


def test_pinned_read_at_a_write_showing_the_version_it_replaced() -> None:
    """The MVCC off-by-one: at S == the upsert's timestamp both the old version (its
    deleted_at == S) and the new one are visible."""
    from keeldb.chaos.predicates import Pred

    h = churned()
    both = [[k, 0] for k in range(200)] + [[k, 5] for k in range(200)]
    read(h, "query", 8.5, sorted(both), Pred(lo=0, hi=200), pin_op=5, pin_side="at")
    read(h, "count", 8.5, 400, Pred(lo=0, hi=200), pin_op=5, pin_side="at")
    read(h, "count", 8.5, 10, Pred(lo=N, hi=N + 10), pin_op=7, pin_side="at")  # deleted rows still there
    v = check_reads(h)
    assert any("returned key 0 twice" in x for x in v), v
    assert any("returned 400" in x and "match while it ran: 200" in x and "1 batches of 200" in x for x in v), v
    assert any("pinned at the timestamp of write #7" in x and "returned 10" in x for x in v), v


def test_pinned_read_just_before_a_write_seeing_it() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    read(h, "count", 8.5, 0, Pred(lo=N, hi=N + 10), pin_op=7, pin_side="before")  # the delete, already
    read(h, "query", 8.5, [[k, 5] for k in range(200)], Pred(lo=0, hi=200), pin_op=5, pin_side="before")
    v = check_reads(h)
    assert v[0].startswith("count(*) where id >= 1000 and id < 1010 pinned just before the timestamp of write #7"), v
    assert "returned 0; the keys that match while it ran: 10" in v[0], v
    assert any("pinned just before the timestamp of write #5" in x and "key 0 at batch 5" in x and "allowed: batch 0" in x for x in v), v


def test_reads_that_failed_are_not_judged() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    op = read(h, "count", 8.5, 12345, Pred(lo=N - 200))
    op.outcome = FAILED
    assert check_reads(h) == []


# -- a checker pass's reads, against its scan ------------------------------------------------


def pass_read(kind: str, value: Any, pred: Any = None, keys: Any = None, **args: Any) -> Op:
    return Op(-1, kind, 0.0, 0.0, OK, value=value, keys=list(keys or []), pred=pred.to_json() if pred else None, args=args)


def test_pass_reads_agree_with_the_scan() -> None:
    from keeldb.chaos.predicates import Pred

    h = build([OK] * 5)
    vals = state_after(h)
    everything = sorted([k, b] for k, b in vals.items())
    reads = [
        pass_read("count", N, Pred(lo=0)),
        pass_read("count", 200, Pred(batch_min=4)),
        pass_read("count", 143, Pred(mod=(7, 3))),
        pass_read("query", everything[:50], Pred(hi=50)),
        pass_read("get", [[3, vals[3]]], keys=[3, N + 5]),
        pass_read("page", everything[100:150], Pred(lo=0), limit=50, offset=100),
        pass_read("iterate", everything[:300], Pred(hi=300), batch_size=37),
        pass_read("search", [[[7, vals[7]]]], Pred(hi=10)),
    ]
    assert check_state(h, observe(vals, reads=reads)) == []


def test_pass_reads_that_disagree_with_the_scan() -> None:
    """The seed's class of bug: a path with its own copy of the visibility rule. The scan
    and the unfiltered count agree; a filtered count, a filtered query and a page do not."""
    from keeldb.chaos.predicates import Pred

    h = build([OK] * 5)
    vals = state_after(h)
    reads = [
        pass_read("count", N + 200, Pred(lo=0)),
        pass_read("query", [[k, vals[k]] for k in range(49)], Pred(hi=50)),
        pass_read("page", [[k, vals[k]] for k in range(101, 151)], Pred(lo=0), limit=50, offset=100),
        pass_read("get", [[3, -1]], keys=[3]),
    ]
    v = check_state(h, observe(vals, reads=reads))
    assert any("count(*) where id >= 0 returned 1200; the keys that match in the full scan: 1000" in x for x in v), v
    assert any("query where id < 50 did not return key 49" in x for x in v), v
    assert any("query page where id >= 0 limit 50 offset 100 starts at key 101" in x for x in v), v
    assert any("get of 1 ids returned key 3 at batch -1, a version that was not live in the full scan" in x for x in v), v


def test_pass_pinned_read_at_the_last_write() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    vals = state_after(h)
    good = pass_read("count", 200, Pred(lo=0, hi=200), pin_op=5, pin_ts=6000, pin_side="at")
    bad = pass_read("query", [[k, 0] for k in range(200)], Pred(lo=0, hi=200), pin_op=5, pin_side="at")
    v = check_state(h, observe(vals, reads=[good, bad]))
    assert v and all("pinned at the timestamp of write #5" in x for x in v), v


# -- filters, variants, fault schedule ------------------------------------------------------


def test_predicates_render_milvus_filters_and_evaluate_them() -> None:
    from keeldb.chaos.predicates import Pred, key_span

    p = Pred(lo=10, hi=20, mod=(7, 3), batch_min=4)
    assert p.filter() == "id >= 10 and id < 20 and id % 7 == 3 and batch >= 4"
    assert p.matches(17, 4) and not p.matches(17, 3) and not p.matches(11, 9) and not p.matches(17, None)
    assert Pred(ids=(3, 1)).filter() == "id in [3, 1]" and Pred().filter() == "id >= 0"
    assert key_span([5, 3, 4]) == Pred(lo=3, hi=6)
    assert key_span([9, 0, 1]) == Pred(ids=(0, 1, 9))  # an upsert that wrapped around
    assert Pred.from_json(p.to_json()) == p
    assert Pred(lo=10, hi=20).within(15, None) == Pred(lo=15, hi=20)
    assert Pred(lo=10).within(None, 12) == Pred(lo=10, hi=12)


def test_workload_variants_compose() -> None:
    from keeldb.chaos.variants import VARIANTS, Mix, expand, mix_of

    assert mix_of("mixed") == Mix()
    assert mix_of("upsert-only") == Mix(churn_group=0)
    assert mix_of("insert-only") == Mix(upsert_batch=0, churn_group=0, insert_batch=200)
    assert mix_of("delete-heavy").delete_group == 200
    assert mix_of("big-batches") == Mix(upsert_batch=5000, churn_group=500)
    assert mix_of("insert-only,big-batches") == Mix(upsert_batch=0, churn_group=0, insert_batch=5000)
    assert mix_of("upsert-only,big-batches").batch == 5000
    assert expand("all") == list(VARIANTS) and expand("delete-heavy") == ["delete-heavy"]
    with pytest.raises(ValueError, match="unknown variant 'insert'"):
        expand("insert")


def test_plan_of_the_long_mode_runs_every_variant_in_its_own_directory(tmp_path: Any) -> None:
    from keeldb.chaos.runner import Config, plan
    from keeldb.chaos.variants import VARIANTS

    runs = plan(Config(workload="all", out=tmp_path))
    assert [r.workload for r in runs] == list(VARIANTS)
    assert [r.out for r in runs] == [tmp_path / n for n in VARIANTS]
    assert Config(workload="mixed", churn=False).mix.churn_group == 0
    assert len(plan(Config(workload="upsert-only,big-batches"))) == 1


def test_fault_schedule_has_every_kind_and_crash_points_cycle() -> None:
    import random

    from keeldb.chaos.faults import CrashCycle, schedule

    kinds = schedule(["sigkill", "crash-point"], 5, random.Random(1))
    assert len(kinds) == 5 and kinds.count("sigkill") in (2, 3) and kinds.count("crash-point") in (2, 3)
    points = [f"p{i}" for i in range(14)] + ["wal.after_append", "manifest.after_rename"]
    cycle = CrashCycle(points, 3, random.Random(2))
    dealt = [spec for _ in range(3) for spec in cycle.next_round()]
    assert cycle.per_fault == 7 and len(dealt) == 21
    # Every point within the first cycle (19: wal.after_append is armed for an odd and an
    # even hit, manifest points for hits 1 to 3): a cycle, not a draw with repeats.
    first = dealt[:19]
    assert {s.split(":")[0] for s in first} == set(points) and len(set(first)) == 19
    assert {"wal.after_append:1", "wal.after_append:2"} <= set(first)
    assert {f"manifest.after_rename:{n}" for n in (1, 2, 3)} <= set(first)
    assert all(s.endswith(":1") for s in dealt if s.startswith("p"))
    one = CrashCycle(["compaction.after_commit"], 2, random.Random(3))
    assert one.next_round() == ["compaction.after_commit:1"] == one.next_round()


def test_log_tail(tmp_path: Any) -> None:
    from keeldb.chaos.faults import log_tail

    log = tmp_path / "server.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "RuntimeError: duplicate key 0\n")
    tail = log_tail(log, 3)
    assert tail == "line 98 | line 99 | RuntimeError: duplicate key 0"
    with log.open("a") as f:
        f.write("listening\n" + "RuntimeError: duplicate key 0\n" * 4)
    assert log_tail(log, 2) == "listening | RuntimeError: duplicate key 0 (x4)"
    assert "no log" in log_tail(tmp_path / "missing.log")


def test_history_roundtrip_keeps_reads_and_rounds() -> None:
    from keeldb.chaos.predicates import Pred

    h = churned()
    h.batch_size = 5000
    read(h, "page", 8.5, [[810, 5]], Pred(lo=800, mod=(7, 5)), limit=10, offset=3)
    h.faults.append(Fault("crash-point", 1.0, 3.0, "a:1; b:2", points=["a:1", "b:2 (not reached in 30s; killed)"], restarted=2.5))
    again = History.from_json(json.loads(json.dumps(h.to_json())))
    assert again.batch_size == 5000 and again.ops[-1].pred == {"lo": 800, "mod": [7, 5]}
    assert again.ops[-1].args == {"limit": 10, "offset": 3} and again.ops[0].ts == 1000
    assert again.faults[0].points == h.faults[0].points and again.faults[0].restarted == 2.5
    assert check_reads(again) == check_reads(h)


def test_summary_lists_every_point_of_a_crash_round_and_restart_time_from_its_last_restart() -> None:
    from keeldb.chaos.runner import Config, summarize

    h = with_compactions(build([OK] * 4), [OK] * 4)
    h.faults.append(Fault("crash-point", 1.0, 3.5, "", points=["wal.after_append:2", "gc.during:1 (not reached in 30s; killed)"], restarted=3.0))
    s = summarize(h, [], 10.0, "keeldb", Config(rows=N))
    assert s["crash_points"] == ["wal.after_append:2", "gc.during:1 (not reached in 30s; killed)"]
    assert s["crash_points_not_reached"] == ["gc.during:1"]
    assert s["recovery_seconds_max"] == pytest.approx(0.5)
    assert s["workload"] == "mixed"
