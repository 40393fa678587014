"""The chaos checker must flag each kind of anomaly, alone, and pass the clean history."""

from __future__ import annotations

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
