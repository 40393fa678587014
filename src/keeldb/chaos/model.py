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
import math
from collections import defaultdict
from collections.abc import Iterable

import numpy as np

from keeldb.chaos.expiry import Expiry, Window
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
        self.expiry = Expiry.of(history)  # a collection TTL (chaos/expiry.py), or None
        # The version each batch number names (deletes name none).
        self.writer_of = {op.batch: op for op in history.ops if op.is_write and op.kind != "delete"}
        # Keys that an insert or delete touches can be absent; the others are always live —
        # unless a TTL makes every version leave in time.
        if self.expiry is not None:
            self.variable = set(self.writes)
        else:
            self.variable = {k for k, ops in self.writes.items() if any(o.kind != "upsert" for o in ops)}
        self.written = sorted(self.writes)

    @staticmethod
    def value(op: Op) -> Value:
        return ABSENT if op.kind == "delete" else op.batch

    def initial(self, key: int) -> Value:
        return BASE if 0 <= key < self.base_rows else ABSENT

    # -- a collection TTL (chaos/expiry.py) -------------------------------------------------

    def version_window(self, value: Value) -> Window:
        """Where the stamp of the version ``value`` names lies (a TTL run only)."""
        assert self.expiry is not None and value is not ABSENT
        return self.expiry.written(None if value == BASE else self.writer_of[value])

    def read_window(self, start: float, end: float) -> Window | None:
        """Where the snapshot of a read over [start, end] lies; None without a TTL."""
        return None if self.expiry is None else self.expiry.read(start, end)

    def expire(self, values: set[Value], read: Window | None) -> set[Value]:
        """``values`` as a read at ``read`` may show them: versions it may find expired may
        show as absent (chaos/expiry.py). Without a TTL (or a window), unchanged."""
        if self.expiry is None or read is None:
            return values
        pairs = ((v, (0.0, 0.0) if v is ABSENT else self.version_window(v)) for v in values)
        return self.expiry.apply(pairs, read, ABSENT)  # type: ignore[return-value]

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

    def may_expire(self, values: set[Value], read: Window | None) -> bool:
        """Whether a read at ``read`` may find one of these versions expired and may not:
        two snapshots in that window can disagree about the key."""
        ttl = self.expiry
        if ttl is None or read is None:
            return False
        windows = (self.version_window(v) for v in values if v is not ABSENT)
        return any(ttl.maybe(w, read) and not ttl.surely(w, read) for w in windows)

    def allowed_now(self, key: int, read: Window | None = None) -> tuple[set[Value], Op | None]:
        """Values a key may hold after everything in the history: the last acknowledged
        write's, or a later unknown one's — as a read at ``read`` may show them (TTL).
        Returns (allowed values, last acknowledged op)."""
        ops = self.writes.get(key, [])
        last = max((i for i, o in enumerate(ops) if o.outcome == OK), default=-1)
        allowed = {self.value(ops[last]) if last >= 0 else self.initial(key)}
        allowed |= {self.value(o) for o in ops[last + 1 :] if o.outcome == UNKNOWN}
        return self.expire(allowed, read), ops[last] if last >= 0 else None

    def allowed_during(self, key: int, start: float, end: float, read: Window | None = None) -> set[Value]:
        """Values a key may have shown to a read running over [start, end] (``read``: where
        its snapshot lies, if known more precisely than the interval says)."""
        if read is None:
            read = self.read_window(start, end)
        ops = self.writes.get(key)
        if not ops:
            return self.expire({self.initial(key)}, read)
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
        return self.expire(allowed, read)

    def held_after(self, key: int, j: int) -> set[Value]:
        """Values ``key`` may hold between the end of its ``j``-th write and the start of the
        next: what ``allowed_during`` says of a read in that gap, before any TTL."""
        ops = self.writes[key]
        last = max((i for i in range(j + 1) if ops[i].outcome == OK), default=-1)
        vals = {self.value(ops[last]) if last >= 0 else self.initial(key)}
        vals |= {self.value(o) for o in ops[last + 1 : j + 1] if o.outcome != FAILED}
        return vals

    def value_before(self, key: int, op: Op, read: Window | None = None) -> set[Value]:
        """Values ``key`` may have held just before ``op`` (one of its writes) took effect,
        as a read at ``read`` may show them (TTL)."""
        ops = self.writes[key]
        prior = ops[: ops.index(op)]
        last = max((i for i, o in enumerate(prior) if o.outcome == OK), default=-1)
        vals = {self.value(prior[last]) if last >= 0 else self.initial(key)}
        vals |= {self.value(o) for o in prior[last + 1 :] if o.outcome == UNKNOWN}
        return self.expire(vals, read)

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


_US = 1_000_000  # segment bounds are kept in integer microseconds of history time
_SPAN = 1 << 40  # per key, an offset past any time (12 days): all keys in one sorted array
_EARLY = -(1 << 38)  # "before the run" (the initial segment's start)


def _us(t: float | None) -> int:
    """History seconds as integer microseconds; None or infinity: the end of time."""
    return _SPAN // 2 if t is None or math.isinf(t) else round(t * _US)


class LiveIndex:
    """Answers "how many variable keys were surely / possibly live during [a, b]" without
    judging every key one by one for every read.

    Each key's history is cut into *segments* between its writes: before its first write,
    and from each write's completion to the next write's invocation. A read that falls
    wholly inside a segment sees the values held there, which do not change within it
    (``held_after``). Every segment of every key sits in one sorted array (times offset by
    the key's position), so one ``searchsorted`` finds, for all keys at once, the segment a
    read starts in; the keys whose segment also contains the read's end are counted with
    vector masks, the others (a write overlaps the read: a handful) one by one.

    Under a TTL a segment's version is surely live only if the read cannot find it expired,
    and possibly live unless it surely does (chaos/expiry.py): each segment keeps the window
    of its live versions' stamps. Without a TTL nothing expires."""

    def __init__(self, model: Model) -> None:
        self.model = model
        keys = sorted(model.variable)
        self.keys = np.asarray(keys, dtype=np.int64)
        starts: list[int] = []
        ends: list[int] = []
        sure: list[bool] = []
        maybe: list[bool] = []
        w_min: list[float] = []
        w_max: list[float] = []
        for ki, k in enumerate(keys):
            ops = model.writes[k]
            bounds = [(_EARLY, _us(ops[0].invoke), {model.initial(k)})]
            for j, o in enumerate(ops):
                nxt = _us(ops[j + 1].invoke) if j + 1 < len(ops) else _SPAN // 2
                bounds.append((_us(o.complete), nxt, model.held_after(k, j)))
            for start, end, vals in bounds:
                live = [v for v in vals if v is not ABSENT]
                windows = [model.version_window(v) for v in live] if model.expiry is not None and live else [(0.0, 0.0)]
                starts.append(start + ki * _SPAN)
                ends.append(end)
                sure.append(len(live) == len(vals))
                maybe.append(bool(live))
                w_min.append(min(w[0] for w in windows))
                w_max.append(max(w[1] for w in windows))
        self.offsets = np.arange(len(keys), dtype=np.int64) * _SPAN
        self.starts = np.asarray(starts, dtype=np.int64)  # sorted: per key, in time order
        self.ends = np.asarray(ends, dtype=np.int64)
        self.sure = np.asarray(sure, dtype=bool)
        self.maybe = np.asarray(maybe, dtype=bool)
        self.w_min = np.asarray(w_min, dtype=np.float64)
        self.w_max = np.asarray(w_max, dtype=np.float64)

    def bounds(self, a: float, b: float) -> tuple[int, int]:
        if not len(self.keys):
            return 0, 0
        seg = np.searchsorted(self.starts, self.offsets + _us(a), side="left") - 1  # starts before a
        # ... and no write of the key begins before b. Strictly after b in microseconds: a
        # tie may be a rounding of two different instants, and then the key is judged one by
        # one below (rounding is monotonic, so a strict "<" here is a strict "<" in time).
        inside = self.ends[seg] > _us(b)
        sure, maybe = self.sure[seg] & inside, self.maybe[seg] & inside
        ttl = self.model.expiry
        if ttl is not None:
            r_lo, r_hi = ttl.read(a, b)
            sure &= r_hi - self.w_min[seg] < ttl.ttl_ms  # none of its versions may have expired
            maybe &= r_lo - self.w_max[seg] < ttl.ttl_ms  # one of them surely has not
        lo, hi = int(np.count_nonzero(sure)), int(np.count_nonzero(maybe))
        for i in np.flatnonzero(~inside):
            vals = self.model.allowed_during(int(self.keys[i]), a, b)
            live = [v is not ABSENT for v in vals]
            lo += all(live)
            hi += any(live)
        return lo, hi
