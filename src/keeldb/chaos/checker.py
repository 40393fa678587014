"""The checker: does what the database says agree with what it acknowledged?

Milvus's own chaos checkers counted successful calls. This one compares data with a model
built from the history (chaos/model.py: every row names the write it came from; a key may
hold its last acknowledged value or a later unknown one, never an older or a refused one):

- after each fault, with nothing writing: ``count(*)`` equals the distinct keys of a full
  scan, no key twice, every key at an allowed value, every unknown batch all or nothing,
  two counts with no write between agree — and every other way of reading the collection
  agrees with that scan exactly (filtered counts, filtered queries, gets, pages, filtered
  searches: chaos/judge.py), and reads pinned at the last writes' timestamps show them;
- during the run, every read is judged against the model at its interval [invoke,
  complete]: an unfiltered ``count(*)`` lies between the keys that were surely live and
  those that might have been; filtered counts, rows, pages, iterators and search hits
  likewise for the keys their filters select; a read pinned at a write's timestamp (or just
  before it) sees exactly that write's keys after (or before) it.

Reads through every path matter because a server decides visibility in more than one
place: an unfiltered count may come from a key index, a scan from a primary-key path, a
filtered read from the rows' own timestamps — a bug in one is invisible to the others.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from keeldb.chaos.history import FAILED, OK, UNKNOWN, History, Op
from keeldb.chaos.judge import DuringTruth, ScanTruth, Truth, batches, judge, pinned_truth
from keeldb.chaos.model import ABSENT, BASE, LiveIndex, Model, Value

__all__ = ["ABSENT", "BASE", "Model", "Observed", "availability", "check_reads", "check_state"]
MAX_READ_VIOLATIONS = 60  # per pass: enough to see the pattern, not a wall of text


@dataclass
class Observed:
    """What a checker pass read back: a full scan and two counts with no writes between."""

    values: dict[int, int]  # key -> batch, from the scan (the last value for a duplicate)
    duplicates: list[int] = field(default_factory=list)
    counts: list[int] = field(default_factory=list)
    search_hits: list[tuple[int, int]] = field(default_factory=list)  # (key, batch) seen
    # Every other read of the pass (filtered counts, queries, gets, pages, filtered
    # searches, reads pinned at the last writes' timestamps), judged against the scan.
    reads: list[Op] = field(default_factory=list)
    # When the pass read (history time): under a TTL, versions may expire while it reads.
    start: float | None = None
    end: float | None = None


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
    # Under a TTL the pass's reads take their snapshots at different moments, and a version
    # may expire between two of them: such keys (``expiring``: what else each may show) may
    # differ between the counts, the scan and the other reads; every other key may not.
    read = model.read_window(observed.start, observed.end) if observed.start is not None else None
    expiring: dict[int, set[Value]] = {}
    keys: Iterable[int] = set(observed.values) | set(model.writes) | set(range(model.base_rows))
    lost = 0
    for k in sorted(keys):
        got = observed.values.get(k, ABSENT)
        held, last = model.allowed_now(k) if k in model.writes else ({model.initial(k)}, None)
        allowed = model.expire(held, read)
        if model.may_expire(held, read):
            expiring[k] = {got, ABSENT} if got is not ABSENT else allowed
        if got not in allowed:
            lost += 1
            if lost <= 20:
                out.append(_mismatch(model, k, got, allowed, last))
    if lost > 20:
        out.append(f"... and {lost - 20} more keys with wrong values")

    n_scan, slack = len(observed.values), len(expiring)
    for i, c in enumerate(observed.counts):
        if abs(c - n_scan) > slack:
            diff = c - n_scan
            within = f" (and at most {slack} keys may have expired between the two)" if slack else ""
            out.append(
                f"count(*) returned {c} but a full scan finds {n_scan} distinct keys{within} "
                f"(off by {diff:+d}{batches(diff, history.batch_size)})"
            )
        if i and abs(c - observed.counts[i - 1]) > slack:
            out.append(f"count(*) is unstable with no writes in between: {observed.counts[i - 1]} then {c}")

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
        if mine is not ABSENT and model.expire({mine}, read) != {mine}:
            continue  # it may have expired: not showing it says nothing about whether it landed
        before = {k: model.value_before(k, op, read) for k in candidates}
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
        allowed, last = model.allowed_now(key, read)
        if batch not in allowed:
            out.append(f"search returned key {key} at batch {batch}, a version that is not live (live: {sorted(map(str, allowed))})")
    return out + _judge_reads(history, model, observed.reads, ScanTruth(observed.values, expiring))


def _judge_reads(history: History, model: Model, reads: Iterable[Op], truth: Truth | None = None) -> list[str]:
    """Judge each read: a pinned one against the model at its write, any other against
    ``truth`` (a pass's scan), or the model at its own interval when ``truth`` is None."""
    out: list[str] = []
    for read in reads:
        if read.outcome != OK or read.complete is None or read.value is None:
            continue
        t = pinned_truth(model, read) or truth or DuringTruth(model, read.invoke, read.complete)
        out.extend(judge(read, t, history.batch_size))
        if len(out) > MAX_READ_VIOLATIONS:
            out.append("... (more read violations cut)")
            break
    return out


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


def check_reads(history: History) -> list[str]:
    """Reads taken while the workload ran, each against the model at its interval: an
    unfiltered count within the live-key bounds (a live-key index answers it without
    visiting every key), every other read through chaos/judge.py."""
    model = Model(history)
    fixed_live = model.base_rows - sum(1 for k in model.variable if 0 <= k < model.base_rows)
    index = LiveIndex(model) if model.variable else None
    out: list[str] = []
    others: list[Op] = []
    for op in history.ops:
        if op.outcome != OK or op.complete is None or not op.is_read:
            continue
        if op.kind != "count" or op.pred is not None or op.args.get("pin_op") is not None:
            others.append(op)
            continue
        lo = hi = fixed_live
        if model.expiry is not None:  # the never-written base keys leave together
            read = model.expiry.read(op.invoke, op.complete)
            lo = 0 if model.expiry.maybe(model.expiry.base, read) else fixed_live
            hi = 0 if model.expiry.surely(model.expiry.base, read) else fixed_live
        if index is not None:
            dlo, dhi = index.bounds(op.invoke, op.complete)
            lo, hi = lo + dlo, hi + dhi
        if not lo <= op.value <= hi:
            off = op.value - (lo if op.value < lo else hi)
            out.append(
                f"count(*) at t={op.invoke:.2f}s returned {op.value}, outside [{lo}, {hi}] "
                f"(off by {off:+d}{batches(off, history.batch_size)})"
            )
            if len(out) > MAX_READ_VIOLATIONS:
                out.append("... (more count violations cut)")
                break
    return out + _judge_reads(history, model, others)

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
        # A crash-point fault's round of crashes is not its restart: count from the last.
        since = f.restarted if f.restarted is not None else f.start
        recoveries.append(
            {
                "fault": f.kind,
                "at": f.start,
                "restart_seconds": f.recovered - since,
                "first_ok_seconds": None if first_ok is None else first_ok - since,
            }
        )
    return {"rates": rates, "recoveries": recoveries}
