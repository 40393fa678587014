"""Judging one read against what the data was: a filtered ``count(*)``, rows by filter, rows
by ids, a page of a query (limit/offset), a whole ``query_iterator``, search hits.

The same judges serve both kinds of check, through a *truth* that says which values each
key may have had while the read ran:

- during the run, the model at the read's interval [invoke, complete] (``DuringTruth``):
  a key may show any value it held at some moment of the interval, so a count lies between
  the keys that surely matched and those that might have; a read pinned at a write's
  timestamp sees the interval of that write, with the write's own keys fixed to exactly the
  value after it (pinned *at* it) or before it (pinned just *before* it);
- after a fault, with nothing writing, the full scan that the checker has already compared
  with the model (``ScanTruth``): every filtered read must agree with it exactly.

A row's value is the batch that wrote it, so "a version that was not live" names the write
it came from; ``None`` is an absent key.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Protocol

import numpy as np

from keeldb.chaos.expiry import Window
from keeldb.chaos.history import Op
from keeldb.chaos.model import ABSENT, Model, Value
from keeldb.chaos.predicates import Pred

ALL = Pred()  # no filter: every live key
NO_BATCH = -(2**62)  # a scanned row without a batch field: matches no batch filter


class Truth(Protocol):
    when: str  # how a message says when the values held: "while it ran", "in the full scan"

    def allowed(self, key: int) -> set[Value]: ...

    def candidates(self, pred: Pred) -> Iterable[int]: ...


class DuringTruth:
    """The model over [start, end]; ``fixed`` overrides the allowed values of some keys (a
    read pinned at a write's timestamp: that write's keys). ``read``: where the read's
    snapshot lies in the server's time, when known better than [start, end] says (a pinned
    read: exactly there) — what a collection TTL is judged by (chaos/expiry.py)."""

    def __init__(
        self,
        model: Model,
        start: float,
        end: float,
        fixed: dict[int, set[Value]] | None = None,
        read: Window | None = None,
    ) -> None:
        self.model, self.start, self.end = model, start, end
        self.fixed = fixed or {}
        self.read = read
        self.when = "while it ran"

    def allowed(self, key: int) -> set[Value]:
        if key in self.fixed:
            return self.fixed[key]
        return self.model.allowed_during(key, self.start, self.end, self.read)

    def candidates(self, pred: Pred) -> Iterable[int]:
        return self.model.candidates(pred)


class ScanTruth:
    """The full scan of a checker pass (already compared with the model): exact, except for
    the keys in ``expiring`` (a TTL: versions that may expire between the pass's reads),
    which may show any of the values listed there. Matching is vectorised, so a filter over
    every key of a 10-million-row scan stays cheap."""

    def __init__(self, values: dict[int, int], expiring: dict[int, set[Value]] | None = None) -> None:
        self.values = values
        self.expiring = expiring or {}
        self.when = "in the full scan"
        keys = np.fromiter(values.keys(), dtype=np.int64, count=len(values))
        vals = np.fromiter((NO_BATCH if v is None else v for v in values.values()), dtype=np.int64, count=len(values))
        order = np.argsort(keys, kind="stable")
        self.keys, self.batches = keys[order], vals[order]

    def allowed(self, key: int) -> set[Value]:
        if key in self.expiring:
            return self.expiring[key]
        return {self.values.get(key, ABSENT)}

    def candidates(self, pred: Pred) -> Iterable[int]:
        scanned = self.matching(Pred(pred.lo, pred.hi, pred.ids, pred.mod)).tolist()
        if not self.expiring:
            return scanned
        return sorted(set(scanned) | {k for k in self.expiring if pred.key_matches(k)})

    def matching(self, pred: Pred) -> np.ndarray:
        """The keys whose scanned version ``pred`` selects, in key order."""
        a = 0 if pred.lo is None else int(np.searchsorted(self.keys, pred.lo, side="left"))
        b = len(self.keys) if pred.hi is None else int(np.searchsorted(self.keys, pred.hi, side="left"))
        keys, batches = self.keys[a:b], self.batches[a:b]
        mask = np.ones(len(keys), dtype=bool)
        if pred.ids is not None:
            mask &= np.isin(keys, np.asarray(pred.ids, dtype=np.int64))
        if pred.mod is not None:
            mask &= keys % pred.mod[0] == pred.mod[1]
        if pred.batch_min is not None:
            mask &= batches >= pred.batch_min
        return keys[mask]


def pinned_truth(model: Model, read: Op) -> DuringTruth | None:
    """The truth for a read pinned at a write's timestamp (``read.args``: pin_op, pin_side),
    or None for a read that is not pinned. At the write's timestamp its keys hold exactly its
    value; just before it, exactly what they held before it. Everything else: the write's
    interval, since the write's timestamp was taken between its invoke and its return."""
    pin = read.args.get("pin_op")
    if pin is None:
        return None
    w = model.by_id[pin]
    if read.args.get("pin_side") == "at":
        fixed = {k: {model.value(w)} for k in w.keys}
    else:
        fixed = {k: model.value_before(k, w) for k in w.keys}
    assert w.complete is not None
    # A collection TTL is judged at exactly the pinned timestamp.
    snap = None if model.expiry is None else model.expiry.pinned(int(read.args["pin_ts"]))
    fixed = {k: model.expire(v, snap) for k, v in fixed.items()}
    return DuringTruth(model, w.invoke, w.complete, fixed, snap)


def _show(v: Value) -> str:
    return "absent" if v is ABSENT else f"batch {v}"


def _choices(vals: set[Value]) -> str:
    return " or ".join(_show(v) for v in sorted(vals, key=lambda v: -2 if v is None else v))


def match_bounds(pred: Pred, truth: Truth) -> tuple[int, int, Sequence[int]]:
    """(keys that surely matched, keys that may have matched, the sure ones)."""
    if isinstance(truth, ScanTruth) and not truth.expiring:
        exact = truth.matching(pred)
        return len(exact), len(exact), exact
    lo = hi = 0
    sure: list[int] = []
    for k in truth.candidates(pred):
        m = [pred.matches(k, v) for v in truth.allowed(k)]
        if all(m):
            lo += 1
            sure.append(k)
        hi += any(m)
    return lo, hi, sure


def describe(read: Op) -> str:
    """How a message names a read: kind, filter, window, pin, time."""
    what = {"count": "count(*)", "query": "query", "get": "get", "page": "query page",
            "iterate": "query_iterator", "search": "search"}.get(read.kind, read.kind)  # fmt: skip
    if read.kind == "get":
        what += f" of {len(read.keys)} ids"
    elif read.pred is not None:
        what += f" where {Pred.from_json(read.pred).filter()}"
    if read.kind == "page":
        what += f" limit {read.args.get('limit')} offset {read.args.get('offset', 0)}"
    if read.args.get("pin_op") is not None:
        side = "at" if read.args.get("pin_side") == "at" else "just before"
        what += f" pinned {side} the timestamp of write #{read.args['pin_op']}"
    return f"{what} (op #{read.id}, t={read.invoke:.2f}s)" if read.id >= 0 else what


def judge_count(read: Op, pred: Pred, truth: Truth, batch: int) -> list[str]:
    lo, hi, _ = match_bounds(pred, truth)
    got = int(read.value)
    if lo <= got <= hi:
        return []
    off = got - (lo if got < lo else hi)
    exact = f"{lo}" if lo == hi else f"within [{lo}, {hi}]"
    return [f"{describe(read)} returned {got}; the keys that match {truth.when}: {exact} (off by {off:+d}{batches(off, batch)})"]


def batches(diff: int, batch: int) -> str:
    return f", i.e. {abs(diff) // batch} batches of {batch}" if diff and batch and diff % batch == 0 else ""


def _row_faults(read: Op, rows: Sequence[Sequence[Any]], pred: Pred, truth: Truth, limit: int) -> list[str]:
    """What is wrong with each returned row: twice, not selected by the filter, not a
    version that was live."""
    out: list[str] = []
    seen: set[int] = set()
    for k, b in ((int(r[0]), r[1]) for r in rows):
        if k in seen:
            out.append(f"{describe(read)} returned key {k} twice")
        seen.add(k)
        if not pred.matches(k, b):
            out.append(f"{describe(read)} returned key {k} at {_show(b)}, which its filter does not select")
        elif b not in (allowed := truth.allowed(k)):
            out.append(
                f"{describe(read)} returned key {k} at {_show(b)}, a version that was not live {truth.when} "
                f"(allowed: {_choices(allowed)})"
            )
        if len(out) >= limit:
            break
    return out


def _missing(read: Op, keys: Iterable[int], truth: Truth, limit: int) -> list[str]:
    out = []
    for k in keys:
        out.append(f"{describe(read)} did not return key {k}, live at {_choices(truth.allowed(k))} {truth.when}")
        if len(out) >= limit:
            break
    return out


def judge_rows(read: Op, pred: Pred, truth: Truth, limit: int = 5) -> list[str]:
    """Rows of a filtered query, a get (``pred`` lists the ids) or a whole iterator: each
    row selected and live, none twice, and every key that surely matched returned."""
    rows = read.value or []
    out = _row_faults(read, rows, pred, truth, limit)
    returned = {int(r[0]) for r in rows}
    _, _, sure = match_bounds(pred, truth)
    return out + _missing(read, (k for k in sure if k not in returned), truth, limit)


def judge_page(read: Op, pred: Pred, truth: Truth, limit: int = 5) -> list[str]:
    """One page (``limit``, ``offset``) of the matching rows in key order: besides each row
    being selected and live, the page must be in key order, no longer than asked, have no
    surely-matching key missing between its first and last key (or after its last, if it
    is short: the result ended), and the surely / possibly matching keys before it must
    bracket its offset."""
    rows = read.value or []
    want, offset = int(read.args.get("limit") or 0), int(read.args.get("offset") or 0)
    out = _row_faults(read, rows, pred, truth, limit)
    keys = [int(r[0]) for r in rows]
    if keys != sorted(keys):
        out.append(f"{describe(read)} is not in key order: {keys[:20]}")
    if len(keys) > want:
        out.append(f"{describe(read)} returned {len(keys)} rows, more than its limit {want}")
    if not keys:
        lo, _, _ = match_bounds(pred, truth)
        if lo > offset:
            out.append(f"{describe(read)} returned nothing, but {lo} keys surely matched {truth.when}")
        return out
    first, last = min(keys), max(keys)
    lo, hi, _ = match_bounds(pred.within(None, first), truth)
    if not lo <= offset <= hi:
        before = f"{lo}" if lo == hi else f"{lo} to {hi}"
        out.append(
            f"{describe(read)} starts at key {first}, but {before} matching keys come before it {truth.when}: "
            "rows were skipped or repeated"
        )
    returned = set(keys)
    # Between its first and last key nothing that surely matched may be missing; after its
    # last, nothing either if the page is short (the result ended there).
    _, _, sure = match_bounds(pred.within(first + 1, None if len(keys) < want else last), truth)
    return out + _missing(read, (k for k in sure if k not in returned), truth, limit)


def judge_hits(read: Op, pred: Pred, truth: Truth, limit: int = 5) -> list[str]:
    """Search hits: each a version that was live and that the filter selects, no key twice in
    one result. Never required to be complete (an ANN index may miss rows)."""
    out: list[str] = []
    for hits in read.value or []:
        ids = [int(h[0]) for h in hits]
        if len(ids) != len(set(ids)):
            out.append(f"{describe(read)} returned a key twice: {ids}")
        for k, b in hits:
            if not pred.matches(int(k), b):
                out.append(f"{describe(read)} returned key {k} at {_show(b)}, which its filter does not select")
            elif b not in truth.allowed(int(k)):
                out.append(f"{describe(read)} returned key {k} at batch {b}, a version that was not live {truth.when}")
        if len(out) >= limit:
            break
    return out


def judge(read: Op, truth: Truth, batch: int) -> list[str]:
    """Any read but an unfiltered count (the checker answers that one from a live-key
    index): the violations it shows against ``truth``."""
    if read.kind == "get":
        pred = Pred(ids=tuple(read.keys))
    else:
        pred = Pred.from_json(read.pred) if read.pred is not None else ALL
    if read.kind == "count":
        return judge_count(read, pred, truth, batch)
    if read.kind == "page":
        return judge_page(read, pred, truth)
    if read.kind == "search":
        return judge_hits(read, pred, truth)
    return judge_rows(read, pred, truth)
