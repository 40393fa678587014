"""The model of a chaos run: for every key, the writes that touched it, and from them the
values the key may hold now or may have held while a read ran.

Every row carries the number of the batch that wrote it, so a key's value names the write
it came from. A key's allowed values are those of its last acknowledged write, or of any
later write whose outcome is unknown (the connection died: it may have landed) — nothing
older (a lost acknowledged write), nothing refused (a write that failed, or that an earlier
check already found not applied, must never appear).

The model assumes writes to one key never overlap in time (the chaos workload guarantees it:
each key belongs to one writer); ``overlapping_writes`` verifies that assumption rather than
trusting it. It also assumes that a server's write timestamps follow real time for one key
(a write that began after another was acknowledged has a later timestamp), which is what
makes a read pinned at a write's timestamp comparable with the model at all.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from keeldb.chaos.history import FAILED, OK, UNKNOWN, History, Op
from keeldb.chaos.predicates import Pred

BASE = -1  # the batch number of the rows inserted before the workload starts
ABSENT = None  # the value of a key that is not live

Value = int | None


class Model:
    """Per-key write sequences from a history, in invoke order."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.base_rows = history.base_rows
        self.writes: dict[int, list[Op]] = defaultdict(list)
        self.by_id: dict[int, Op] = {}
        for op in history.ops:
            self.by_id[op.id] = op
            if op.is_write:
                for k in op.keys:
                    self.writes[k].append(op)
        # Keys that an insert or delete touches can be absent; the others are always live.
        self.variable = {k for k, ops in self.writes.items() if any(o.kind != "upsert" for o in ops)}
        self.written = sorted(self.writes)

    @staticmethod
    def value(op: Op) -> Value:
        return ABSENT if op.kind == "delete" else op.batch

    def initial(self, key: int) -> Value:
        return BASE if 0 <= key < self.base_rows else ABSENT

    def overlapping_writes(self) -> list[str]:
        """The model orders a key's writes by invoke time; that is only sound if each began
        after the previous one returned. Say so if the history breaks that."""
        bad = []
        for k, ops in self.writes.items():
            for a, b in zip(ops, ops[1:], strict=False):
                if a.complete is None or b.invoke < a.complete:
                    bad.append(f"key {k}: writes #{a.id} and #{b.id} overlap in time; the model cannot order them")
                    break
            if len(bad) >= 5:
                break
        return bad

    def allowed_now(self, key: int) -> tuple[set[Value], Op | None]:
        """Values a key may hold after everything in the history: the last acknowledged
        write's, or a later unknown one's. Returns (allowed values, last acknowledged op)."""
        ops = self.writes.get(key, [])
        last = max((i for i, o in enumerate(ops) if o.outcome == OK), default=-1)
        allowed = {self.value(ops[last]) if last >= 0 else self.initial(key)}
        allowed |= {self.value(o) for o in ops[last + 1 :] if o.outcome == UNKNOWN}
        return allowed, ops[last] if last >= 0 else None

    def allowed_during(self, key: int, start: float, end: float) -> set[Value]:
        """Values a key may have held at some moment of a read running over [start, end]."""
        ops = self.writes.get(key)
        if not ops:
            return {self.initial(key)}
        last = -1
        for i in range(len(ops) - 1, -1, -1):
            o = ops[i]
            if o.outcome == OK and o.complete is not None and o.complete < start:
                last = i
                break
        allowed = {self.value(ops[last]) if last >= 0 else self.initial(key)}
        for o in ops[last + 1 :]:
            if o.invoke >= end:
                break
            if o.outcome != FAILED:
                allowed.add(self.value(o))
        return allowed

    def value_before(self, key: int, op: Op) -> set[Value]:
        """Values ``key`` may have held just before ``op`` (one of its writes) took effect."""
        ops = self.writes[key]
        prior = ops[: ops.index(op)]
        last = max((i for i, o in enumerate(prior) if o.outcome == OK), default=-1)
        vals = {self.value(prior[last]) if last >= 0 else self.initial(key)}
        vals |= {self.value(o) for o in prior[last + 1 :] if o.outcome == UNKNOWN}
        return vals

    def candidates(self, pred: Pred) -> Iterable[int]:
        """Every key that may ever have matched ``pred``'s key terms: base keys and written
        keys in its range (or list). A broad range over the base keys visits all of them,
        so reads during the run use narrow ones."""
        if pred.ids is not None:
            return [k for k in pred.ids if pred.key_matches(k)]
        lo = pred.lo if pred.lo is not None else min(0, self.written[0] if self.written else 0)
        hi = pred.hi if pred.hi is not None else max(self.base_rows, self.written[-1] + 1 if self.written else 0)
        keys = set(range(max(lo, 0), min(hi, self.base_rows)))
        keys.update(self.written[bisect.bisect_left(self.written, lo) : bisect.bisect_left(self.written, hi)])
        return sorted(k for k in keys if pred.key_matches(k))


class LiveIndex:
    """Answers "how many variable keys were surely / possibly live during [a, b]" without
    visiting every key for every read: a key whose writes all ended before ``a`` is in its
    final state, one whose first write began after ``b`` in its initial state, and both
    groups are counted by binary search over sorted times; only keys with a write
    overlapping the read (a handful) are judged one by one."""

    def __init__(self, model: Model) -> None:
        self.model = model
        keys = sorted(model.variable)
        self.keys = np.asarray(keys, dtype=np.int64)
        first = np.asarray([model.writes[k][0].invoke for k in keys], dtype=np.float64)
        last = np.asarray([max(o.end for o in model.writes[k]) for k in keys], dtype=np.float64)
        final_lo, final_hi, init_live = [], [], []
        for k in keys:
            vals, _ = model.allowed_now(k)
            live = [v is not ABSENT for v in vals]
            final_lo.append(all(live))
            final_hi.append(any(live))
            init_live.append(model.initial(k) is not ABSENT)
        self.first, self.last = first, last
        order_last = np.argsort(last, kind="stable")
        self.last_sorted = last[order_last]
        self.cum_lo = np.concatenate([[0], np.cumsum(np.asarray(final_lo, dtype=np.int64)[order_last])])
        self.cum_hi = np.concatenate([[0], np.cumsum(np.asarray(final_hi, dtype=np.int64)[order_last])])
        order_first = np.argsort(first, kind="stable")
        self.first_sorted = first[order_first]
        init = np.asarray(init_live, dtype=np.int64)[order_first]
        self.cum_init_from = np.concatenate([np.cumsum(init[::-1])[::-1], [0]])

    def bounds(self, a: float, b: float) -> tuple[int, int]:
        done = int(np.searchsorted(self.last_sorted, a, side="left"))  # every write ended before a
        lo, hi = int(self.cum_lo[done]), int(self.cum_hi[done])
        not_started = int(np.searchsorted(self.first_sorted, b, side="left"))  # first write at/after b
        lo += int(self.cum_init_from[not_started])
        hi += int(self.cum_init_from[not_started])
        for i in np.flatnonzero((self.first < b) & (self.last >= a)):
            vals = self.model.allowed_during(int(self.keys[i]), a, b)
            live = [v is not ABSENT for v in vals]
            lo += all(live)
            hi += any(live)
        return lo, hi
