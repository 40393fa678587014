"""The chaos checker under a collection TTL (``--workload ttl``, chaos/expiry.py): versions
leave by the server's clock, which the checker bounds by the timestamps writes reported.

Histories are built by hand: the server's clock reads ``CLOCK0 + t`` ms at history time ``t``
s, a ticker writer stamps a no-op write every 0.1 s (as the workload's writers and the
checker's stamps do), base rows 0..9 are loaded at t = 0 and the TTL is 3 s."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from keeldb.chaos.checker import Observed, check_reads, check_state
from keeldb.chaos.expiry import LOGICAL_BITS, Expiry
from keeldb.chaos.history import OK, UNKNOWN, History, Op
from keeldb.chaos.predicates import Pred
from keeldb.chaos.runner import Config, plan
from keeldb.chaos.variants import TTL_SECONDS, mix_of

CLOCK0 = 1_000_000  # the server's physical clock (ms) at history time 0
BASE = 10
FRESH = list(range(100, 110))  # inserted at t = 1: expire at t = 4


def stamp(t: float) -> int:
    return (CLOCK0 + round(t * 1000)) << LOGICAL_BITS


def history(until: float = 8.0, insert_outcome: str = OK) -> History:
    h = History()
    h.base_rows = BASE
    h.meta["ttl"] = {"seconds": 3, "base_ts": [stamp(0.0), stamp(0.0)]}
    t = 0.05
    while t < until:  # the ticker: a delete of a key that never exists, every 0.1 s
        h.ops.append(Op(len(h.ops), "delete", t, t + 0.01, OK, None, [-1], ts=stamp(t + 0.005), args={"by": "tick"}))
        t = round(t + 0.1, 3)
    ins = Op(len(h.ops), "insert", 1.0, 1.01, insert_outcome, 7, list(FRESH), args={"by": "insert"})
    ins.ts = stamp(1.005) if insert_outcome == OK else None
    h.ops.append(ins)
    h.ops.sort(key=lambda o: o.invoke)
    for i, o in enumerate(h.ops):
        o.id = i
    return h


def count(h: History, t: float, value: int, dt: float = 0.02) -> None:
    h.ops.append(Op(len(h.ops), "count", t, t + dt, OK, value=value))


def read(h: History, kind: str, t: float, value: Any, keys: list[int] | None = None, dt: float = 0.02) -> None:
    pred = None if kind == "get" else Pred(lo=0, hi=200).to_json()
    h.ops.append(Op(len(h.ops), kind, t, t + dt, OK, keys=list(keys or []), value=value, pred=pred))


def test_the_servers_time_is_bounded_by_the_stamps_around_a_read() -> None:
    e = Expiry.of(history())
    assert e is not None and e.ttl_ms == 3000
    lo, hi = e.read(2.0, 2.02)
    assert CLOCK0 + 1900 < lo <= CLOCK0 + 2000 and CLOCK0 + 2000 <= hi < CLOCK0 + 2200
    assert e.read(0.0, 0.01)[0] == 0  # nothing acknowledged before: no lower bound
    assert e.read(9.0, 9.1)[1] == float("inf")  # nothing written after: no upper bound


def test_counts_follow_expiry_exactly_where_the_stamps_decide_it() -> None:
    h = history()
    count(h, 2.0, BASE + len(FRESH))  # nothing has expired
    count(h, 3.5, len(FRESH))  # the base rows went at t = 3
    count(h, 4.5, 0)  # the inserted ones at t = 4
    assert check_reads(h) == []
    h = history()
    count(h, 3.5, BASE + len(FRESH))  # an expired base row still counted
    count(h, 4.5, 1)
    found = check_reads(h)
    assert len(found) == 2 and "outside [10, 10]" in found[0] and "outside [0, 0]" in found[1], found


def test_a_count_at_the_moment_of_expiry_may_go_either_way() -> None:
    for seen in (BASE, BASE + len(FRESH) - 3, BASE + len(FRESH)):
        h = history()
        count(h, 2.96, seen, dt=0.08)  # its snapshot may lie before or after t = 3
        assert check_reads(h) == [], seen


def test_rows_of_an_expired_version_are_not_live() -> None:
    h = history()
    read(h, "get", 3.5, [(0, -1)], keys=[0])  # key 0's base version expired at t = 3
    read(h, "query", 3.5, [(k, 7) for k in FRESH])
    read(h, "query", 4.5, [(k, 7) for k in FRESH[:2]])  # expired at t = 4
    found = check_reads(h)
    assert len(found) == 3, found
    assert "get of 1 ids" in found[0] and "key 0 at batch -1" in found[0] and "not live" in found[0]
    assert all("at batch 7, a version that was not live" in f for f in found[1:])
    h = history()
    read(h, "query", 3.5, [(k, 7) for k in FRESH])  # every fresh key, none of the base
    read(h, "get", 2.5, [(0, -1)], keys=[0])
    assert check_reads(h) == []


def test_a_write_of_unknown_outcome_expires_before_its_writers_next_write_plus_the_ttl() -> None:
    h = history(insert_outcome=UNKNOWN)
    # Its writer's next write, stamped at t = 1.5: had the insert landed, it was stamped
    # before that, so it expired by t = 4.5 whatever happened.
    h.ops.append(Op(len(h.ops), "insert", 1.5, 1.51, OK, 8, [200], ts=stamp(1.505), args={"by": "insert"}))
    count(h, 2.0, BASE + 1)  # not landed
    count(h, 2.2, BASE + 1 + len(FRESH))  # landed: either is allowed
    count(h, 4.7, 0)
    assert check_reads(h) == []
    h2 = history(insert_outcome=UNKNOWN)
    h2.ops.append(Op(len(h2.ops), "insert", 1.5, 1.51, OK, 8, [200], ts=stamp(1.505), args={"by": "insert"}))
    count(h2, 4.7, len(FRESH))
    assert any("outside [0, 0]" in f for f in check_reads(h2))


def scan_pass(h: History, values: dict[int, int], start: float, end: float, counts: list[int]) -> list[str]:
    return check_state(h, Observed(values=values, counts=counts, start=start, end=end))


def test_a_checker_pass_after_expiry_must_not_see_expired_rows() -> None:
    h = history()
    assert scan_pass(h, dict.fromkeys(FRESH, 7), 3.5, 3.6, [10, 10]) == []
    found = scan_pass(h, {0: -1, **dict.fromkeys(FRESH, 7)}, 3.5, 3.6, [11, 11])
    assert len(found) == 1 and "key 0: expected absent" in found[0], found
    assert scan_pass(h, {}, 4.5, 4.6, [0, 0]) == []


def test_a_pass_that_spans_an_expiry_may_count_and_scan_at_different_moments() -> None:
    h = history()
    # The pass ran over t = 3.95 .. 4.05: the fresh keys may expire between its reads.
    assert scan_pass(h, dict.fromkeys(FRESH, 7), 3.95, 4.05, [10, 0]) == []
    assert scan_pass(h, {}, 3.95, 4.05, [10, 10]) == []
    found = scan_pass(h, {}, 3.95, 4.05, [11, 11])
    assert any("count(*) returned 11" in f for f in found), found


def test_the_ttl_variant_and_where_it_runs() -> None:
    m = mix_of("ttl")
    assert m.ttl_seconds == TTL_SECONDS and m.insert_batch and m.upsert_batch
    assert [c.workload for c in plan(Config(workload="ttl"))] == ["ttl"]
    with pytest.raises(ValueError, match="not available for --target cluster"):
        plan(Config(workload="ttl", target="cluster"))
    assert "ttl" not in [c.workload for c in plan(Config(workload="all", target="cluster"))]
    assert "ttl" in [c.workload for c in plan(Config(workload="all"))]


@settings(max_examples=300, deadline=None)
@given(seed=st.integers(0, 10_000), ttl=st.booleans())
@example(seed=227, ttl=True)  # a read at the instant of a write, to the microsecond
def test_live_index_agrees_with_judging_every_key(seed: int, ttl: bool) -> None:
    """The segment index (one searchsorted for all keys) against the per-key model, over
    random histories of inserts, upserts and deletes of every outcome, with and without TTL."""
    import random

    from keeldb.chaos.model import ABSENT, LiveIndex, Model

    rng = random.Random(seed)
    h = history(until=6.0) if ttl else History()
    if not ttl:
        h.base_rows = BASE
    clock: dict[str, float] = {}
    for n in range(60):
        by = rng.choice(["w0", "w1", "w2"])
        keys = {"w0": [0, 1, 2, 3], "w1": [4, 5, 100, 101], "w2": [102, 103, 104]}[by]
        t = clock.get(by, 0.0) + rng.uniform(0.01, 0.3)
        dt = rng.uniform(0.0, 0.1)
        clock[by] = t + dt
        kind = rng.choice(["insert", "upsert", "delete"])
        outcome = rng.choice([OK, OK, OK, UNKNOWN, "failed"])
        op = Op(len(h.ops), kind, t, t + dt, outcome, 500 + n, rng.sample(keys, 2), args={"by": by})
        op.ts = stamp(t + dt / 2) if outcome == OK and rng.random() < 0.8 else None
        h.ops.append(op)
    h.ops.sort(key=lambda o: o.invoke)
    for i, o in enumerate(h.ops):
        o.id = i
    model = Model(h)
    index = LiveIndex(model)
    for _ in range(30):
        # Reads that begin or end at (or within a microsecond of) the instant of a write.
        edge = rng.choice(h.ops)
        near = [t + d for t in (edge.invoke, edge.complete or 0.0) for d in (0.0, -2e-7, 2e-7)]
        a = rng.choice([rng.uniform(0, 7), *near])
        b = rng.choice([a + rng.choice([0.0, 0.01, 0.2, 1.0]), *(max(a, t) for t in near)])
        lo = hi = 0
        for k in model.variable:
            live = [v is not ABSENT for v in model.allowed_during(k, a, b)]
            lo += all(live)
            hi += any(live)
        assert index.bounds(a, b) == (lo, hi), (a, b)
