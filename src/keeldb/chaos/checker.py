"""The checker: does what the database says agree with what it acknowledged?

Milvus's own chaos checkers counted successful calls. This one compares data with a model
built from the history (chaos/history.py):

- every row carries the number of the batch that wrote it, so a key's value names the write
  it came from;
- a key's allowed values are those of its last acknowledged write, or of any later write
  whose outcome is unknown (the connection died: it may have landed) — nothing older (a lost
  acknowledged write), nothing refused (a write that failed, or that an earlier check already
  found not applied, must never appear);
- a batch is all or nothing: of the keys an unknown batch wrote (and nobody wrote after),
  either all show it or none do;
- ``count(*)`` must equal the number of distinct keys a full scan finds, a key must not appear
  twice, and two counts with no write in between must agree;
- during the run, every ``count(*)`` must lie between the keys that were surely live and the
  keys that might have been live while it ran, and every search hit must be a version that
  might have been live.

The model assumes writes to one key never overlap in time (the chaos workload guarantees it:
each key belongs to one writer); the checker verifies that assumption rather than trusting it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from keeldb.chaos.history import FAILED, OK, UNKNOWN, History, Op

BASE = -1  # the batch number of the rows inserted before the workload starts
ABSENT = None  # the value of a key that is not live


@dataclass
class Observed:
    """What a checker pass read back: a full scan and two counts with no writes between."""

    values: dict[int, int]  # key -> batch, from the scan (the last value for a duplicate)
    duplicates: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    search_hits: list[tuple[int, int]] = field(default_factory=list)  # (key, batch) seen


class Model:
    """Per-key write sequences from a history, in invoke order."""

    def __init__(self, history: History) -> None:
        self.history = history
        self.base_rows = history.base_rows
        self.writes: dict[int, list[Op]] = defaultdict(list)
        for op in history.ops:
            if op.is_write:
                for k in op.keys:
                    self.writes[k].append(op)
        # Keys that an insert or delete touches can be absent; the others are always live.
        self.variable = {k for k, ops in self.writes.items() if any(o.kind != "upsert" for o in ops)}

    @staticmethod
    def value(op: Op) -> int | None:
        return ABSENT if op.kind == "delete" else op.batch

    def initial(self, key: int) -> int | None:
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

    def allowed_now(self, key: int) -> tuple[set[int | None], Op | None]:
        """Values a key may hold after everything in the history: the last acknowledged
        write's, or a later unknown one's. Returns (allowed values, last acknowledged op)."""
        ops = self.writes.get(key, [])
        last = max((i for i, o in enumerate(ops) if o.outcome == OK), default=-1)
        allowed = {self.value(ops[last]) if last >= 0 else self.initial(key)}
        allowed |= {self.value(o) for o in ops[last + 1 :] if o.outcome == UNKNOWN}
        return allowed, ops[last] if last >= 0 else None

    def allowed_during(self, key: int, start: float, end: float) -> set[int | None]:
        """Values a key may have held at some moment of a read running over [start, end]."""
        ops = self.writes.get(key, [])
        done = [i for i, o in enumerate(ops) if o.outcome == OK and o.complete is not None and o.complete < start]
        last = done[-1] if done else -1
        allowed = {self.value(ops[last]) if last >= 0 else self.initial(key)}
        for o in ops[last + 1 :]:
            if o.invoke < end and o.outcome != FAILED:
                allowed.add(self.value(o))
        return allowed


def _describe(op: Op | None) -> str:
    if op is None:
        return "the base load"
    return f"{op.kind} batch {op.batch} (op #{op.id}, acknowledged at t={op.complete:.2f}s)"


def check_state(history: History, observed: Observed, *, resolve: bool = True) -> list[str]:
    """Compare one read-back of the whole collection with the model. With ``resolve``, the
    unknown writes whose fate the read-back reveals become ok or failed in the history, so a
    later pass can tell if a write found missing now shows up afterwards."""
    model = Model(history)
    out: list[str] = list(model.overlapping_writes())
    for k in observed.duplicates[:20]:
        out.append(f"key {k} is visible twice in a full scan")
    n_scan = len(observed.values)
    for i, c in enumerate(observed.counts):
        if c != n_scan:
            diff = c - n_scan
            out.append(
                f"count(*) returned {c} but a full scan finds {n_scan} distinct keys "
                f"(off by {diff:+d}{_batches(diff)})"
            )
        if i and c != observed.counts[i - 1]:
            out.append(f"count(*) is unstable with no writes in between: {observed.counts[i - 1]} then {c}")

    keys: Iterable[int] = set(observed.values) | set(model.writes) | set(range(model.base_rows))
    lost = 0
    for k in sorted(keys):
        got = observed.values.get(k, ABSENT)
        if k not in model.writes:
            if got != model.initial(k):
                out.append(_mismatch(model, k, got, {model.initial(k)}, None))
            continue
        allowed, last = model.allowed_now(k)
        if got not in allowed:
            lost += 1
            if lost <= 20:
                out.append(_mismatch(model, k, got, allowed, last))
    if lost > 20:
        out.append(f"... and {lost - 20} more keys with wrong values")

    for op in history.ops:
        if not op.is_write or op.outcome != UNKNOWN:
            continue
        # Keys nobody wrote after this batch (a refused write does not count): on those the
        # batch is either visible everywhere or nowhere.
        candidates = [
            k for k in op.keys
            if all(o is op or o.invoke < op.invoke or o.outcome == FAILED for o in model.writes[k])
        ]
        if not candidates:
            continue
        mine = model.value(op)
        before = {k: _value_before(model, k, op) for k in candidates}
        decidable = [k for k in candidates if mine not in before[k]]
        if not decidable:
            continue
        shown = [k for k in decidable if observed.values.get(k, ABSENT) == mine]
        if shown and len(shown) != len(decidable):
            out.append(
                f"{op.kind} batch {op.batch} (op #{op.id}, outcome unknown) is half applied: "
                f"{len(shown)} of {len(decidable)} keys show it (e.g. key {shown[0]}), "
                f"the others do not (e.g. key {next(k for k in decidable if k not in shown)})"
            )
        elif resolve:
            op.outcome = OK if shown else FAILED
            if not shown:
                op.error = op.error or "resolved: not applied (checker)"

    for key, batch in observed.search_hits:
        allowed, last = model.allowed_now(key)
        if batch not in allowed:
            out.append(f"search returned key {key} at batch {batch}, a version that is not live (live: {sorted(map(str, allowed))})")
    return out


def _value_before(model: Model, key: int, op: Op) -> set[int | None]:
    ops = model.writes[key]
    idx = ops.index(op)
    prior = ops[:idx]
    last = max((i for i, o in enumerate(prior) if o.outcome == OK), default=-1)
    vals = {model.value(prior[last]) if last >= 0 else model.initial(key)}
    vals |= {model.value(o) for o in prior[last + 1 :] if o.outcome == UNKNOWN}
    return vals


def _batches(diff: int) -> str:
    return f", i.e. {abs(diff) // 200} batches of 200" if diff and diff % 200 == 0 else ""


def _mismatch(model: Model, key: int, got: int | None, allowed: set[int | None], last: Op | None) -> str:
    shown = "absent" if got is ABSENT else f"batch {got}"
    expect = " or ".join(
        "absent" if v is ABSENT else f"batch {v}" for v in sorted(allowed, key=lambda v: -2 if v is None else v)
    )
    ops = model.writes.get(key, [])
    older = {model.initial(key)} | {model.value(o) for o in ops[: ops.index(last)]} if last else set()
    writer = next((o for o in ops if model.value(o) == got and got is not ABSENT), None)
    if writer is not None and writer.outcome == FAILED:
        how = "resolved as not applied by an earlier check" if "resolved" in writer.error else "refused by the server"
        why = f" — that write was {how} and must never appear"
    elif got in older:
        why = " — an older version: the acknowledged write was lost"
    elif got is not ABSENT and writer is None:
        why = " — no write of that batch ever touched this key"
    else:
        why = ""
    return f"key {key}: expected {expect} (last acknowledged: {_describe(last)}), saw {shown}{why}"


class _LiveIndex:
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


def check_reads(history: History) -> list[str]:
    """Reads taken while the workload ran: counts within bounds, search hits live."""
    model = Model(history)
    fixed_live = model.base_rows - sum(1 for k in model.variable if 0 <= k < model.base_rows)
    index = _LiveIndex(model) if model.variable else None
    out: list[str] = []
    for op in history.ops:
        if op.outcome != OK or op.complete is None:
            continue
        if op.kind == "count":
            lo = hi = fixed_live
            if index is not None:
                dlo, dhi = index.bounds(op.invoke, op.complete)
                lo, hi = lo + dlo, hi + dhi
            if not lo <= op.value <= hi:
                off = op.value - (lo if op.value < lo else hi)
                out.append(
                    f"count(*) at t={op.invoke:.2f}s returned {op.value}, outside [{lo}, {hi}] "
                    f"(off by {off:+d}{_batches(off)})"
                )
        elif op.kind == "search":
            for hits in op.value or []:
                ids = [h[0] for h in hits]
                if len(ids) != len(set(ids)):
                    out.append(f"search at t={op.invoke:.2f}s returned a key twice: {ids}")
                for key, batch in hits:
                    if batch not in model.allowed_during(key, op.invoke, op.complete):
                        out.append(
                            f"search at t={op.invoke:.2f}s returned key {key} at batch {batch}, "
                            "a version that was not live while it ran"
                        )
        if len(out) > 50:
            out.append("... (more read violations cut)")
            break
    return out


def availability(history: History) -> dict[str, Any]:
    """Success rate per operation kind before, during and after faults, and time from each
    restart to the first successful call."""
    windows = [(f.start, f.recovered if f.recovered is not None else float("inf")) for f in history.faults]
    first_fault = min((w[0] for w in windows), default=float("inf"))

    def phase(t: float) -> str:
        if t < first_fault:
            return "before"
        return "during" if any(a <= t < b for a, b in windows) else "after"

    table: dict[str, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for op in history.ops:
        if op.complete is None:
            continue
        cell = table[op.kind][phase(op.invoke)]
        cell[1] += 1
        cell[0] += op.outcome == OK
    rates = {
        kind: {ph: {"ok": c[0], "total": c[1], "rate": (c[0] / c[1]) if c[1] else None} for ph, c in phases.items()}
        for kind, phases in table.items()
    }
    recoveries = []
    for f in history.faults:
        if f.recovered is None:
            continue
        first_ok = min(
            (o.complete for o in history.ops if o.outcome == OK and o.complete is not None and o.invoke >= f.recovered),
            default=None,
        )
        recoveries.append(
            {
                "fault": f.kind,
                "at": f.start,
                "restart_seconds": f.recovered - f.start,
                "first_ok_seconds": None if first_ok is None else first_ok - f.start,
            }
        )
    return {"rates": rates, "recoveries": recoveries}
