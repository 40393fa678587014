"""A checker pass's reads, made while no worker writes: two counts, a full
``query_iterator`` scan, searches — and the same collection read through every other path,
each to be compared exactly with the scan (chaos/checker.py, chaos/judge.py):

- filtered ``count(*)``: everything (``id >= 0``: the filtered path, not a key index), the
  base keys, the extra keys, ``id % 7 == r``, the keys rewritten at least once;
- filtered queries, gets, pages (limit/offset, by key and by a non-key filter) and short
  iterators over the keys the last writes touched;
- filtered searches;
- reads pinned at the timestamp of each writer's last acknowledged write whose keys nobody
  wrote since: they must show that write (a restart must keep write timestamps and
  versions as they were).

A read the server refuses (an error it answered) is kept as failed and not judged — a
target may not support every filter; a dead connection is not: the pass fails.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from typing import Any

from keeldb.chaos import reads
from keeldb.chaos.checker import Observed
from keeldb.chaos.history import FAILED, OK, UNKNOWN, History, Op
from keeldb.chaos.predicates import Pred, key_span
from keeldb.chaos.reads import MOD
from keeldb.chaos.workload import classify, mutate, vector

SCAN_PAGE = 16384  # the largest query_iterator batch pymilvus allows
MAX_ROWS = 10_000  # Milvus caps one query's result (16,384): row reads stay below


def scan(c: Any) -> tuple[dict[int, int], list[int]]:
    """Every live key through a ``query_iterator``: key -> batch, and keys seen twice."""
    values: dict[int, int] = {}
    dups: list[int] = []
    it = c.query_iterator(reads.COLLECTION, batch_size=SCAN_PAGE, output_fields=["batch"],
                          consistency_level="Strong", timeout=120)  # fmt: skip
    try:
        while page := it.next():
            for r in page:
                if r["id"] in values:
                    dups.append(r["id"])
                values[r["id"]] = r["batch"]
    finally:
        it.close()
    return values, dups


def last_writes(history: History) -> list[Op]:
    """Per writer, its last acknowledged write with a server timestamp whose keys nobody
    wrote after it: at that timestamp its keys must still show it."""
    latest: dict[int, Op] = {}
    for op in history.ops:
        if op.is_write:
            for k in op.keys:
                latest[k] = op
    picked: dict[str, Op] = {}
    for op in reversed(history.ops):
        if not op.is_write or op.outcome != OK or not op.ts or not op.keys:
            continue
        writer = op.args.get("by", "")
        if writer not in picked and all(latest[k] is op for k in op.keys):
            picked[writer] = op
    return list(picked.values())


class _Reads:
    """Collects the pass's extra reads as history-shaped ops (id -1: not part of the run)."""

    def __init__(self, c: Any) -> None:
        self.c = c
        self.ops: list[Op] = []

    def add(self, kind: str, fn: Callable[[Any], Any], pred: Pred | None = None,
            keys: list[int] | None = None, **args: Any) -> None:  # fmt: skip
        op = Op(-1, kind, 0.0, 0.0, OK, keys=list(keys or []), pred=pred.to_json() if pred else None, args=args)
        try:
            op.value = fn(self.c)
        except Exception as e:  # noqa: BLE001 - a refused read is noted; a dead server is not ours to hide
            if classify(e) == UNKNOWN:
                raise
            op.outcome, op.error = FAILED, f"{type(e).__name__}: {e}"[:300]
        self.ops.append(op)


def _pinned_at(r: _Reads, w: Op) -> None:
    """A count and the rows of ``w``'s keys, pinned at ``w``'s timestamp."""
    p, ts, cap = key_span(w.keys), w.ts, 2 * len(w.keys) + 10
    pin = {"pin_op": w.id, "pin_ts": ts, "pin_side": "at"}
    r.add("count", lambda c: reads.count(c, p, timeout=120, pin_ts=ts), p, **pin)
    r.add("query", lambda c: reads.query(c, p, timeout=120, pin_ts=ts, cap=cap), p, **pin)


def read_back(
    c: Any, history: History, *, dim: int, seed: int, search_params: dict[str, Any], use_mod: bool
) -> Observed:  # fmt: skip
    rows = history.base_rows
    ttl = bool(history.meta.get("ttl"))
    if ttl:
        stamp(c, history)
    start = history.now()
    counts = [reads.count(c, None, timeout=120) for _ in range(2)]
    values, dups = scan(c)
    rng = random.Random(seed + len(values))
    hits: list[tuple[int, int]] = []
    probes = [rng.randrange(rows) for _ in range(5)]
    res = reads.search(c, [vector(k, -1, dim) for k in probes], search_params, timeout=120)
    for per_query in res:
        dups.extend(k for k, n in Counter(h[0] for h in per_query).items() if n > 1)
        hits.extend((h[0], h[1]) for h in per_query)

    r = _Reads(c)
    counted = [Pred(lo=0), Pred(hi=rows), Pred(lo=rows), Pred(batch_min=0)]
    if use_mod:
        counted.append(Pred(mod=(MOD, rng.randrange(MOD))))
    for p in counted:
        r.add("count", lambda c, p=p: reads.count(c, p, timeout=120), p)

    recent = [o for o in history.ops if o.is_write and o.keys][-6:]
    spans = [key_span(sorted(o.keys)[:2000]) for o in recent]
    spans.append(Pred(lo=rng.randrange(rows), hi=None))
    for p in spans:
        n = sum(1 for k, b in values.items() if p.matches(k, b))
        if n <= MAX_ROWS:
            r.add("query", lambda c, p=p: reads.query(c, p, timeout=120), p)
        if p.hi is not None or p.ids is not None:
            r.add("iterate", lambda c, p=p: reads.iterate(c, p, timeout=120), p, batch_size=reads.ITERATOR_PAGE)
    if use_mod:
        p = Pred(lo=0, hi=min(rows, 20_000), mod=(MOD, rng.randrange(MOD)))
        r.add("query", lambda c: reads.query(c, p, timeout=120), p)

    ids = sorted({k for o in recent for k in o.keys[:100]} | {rng.randrange(rows) for _ in range(20)})
    r.add("get", lambda c: reads.get(c, ids, timeout=120), keys=ids)

    for p in (Pred(lo=0), Pred(batch_min=0), *spans[:2]):
        for offset in (0, rng.randrange(max(1, min(len(values), 10_000) - 50))):
            r.add("page", lambda c, p=p, o=offset: reads.page(c, p, 50, o, timeout=120), p, limit=50, offset=offset)

    for p in (*spans[:2], Pred(batch_min=0)):
        k = rng.randrange(rows)
        r.add("search", lambda c, p=p, k=k: reads.search(c, [vector(k, -1, dim)], search_params, p, timeout=120), p)

    for w in last_writes(history):
        _pinned_at(r, w)
    end = history.now()
    if ttl:
        stamp(c, history)
    return Observed(values=values, duplicates=dups, counts=counts, search_hits=hits, reads=r.ops, start=start, end=end)


STAMP_KEY = -1  # a key no workload writes: deleting it changes nothing


def stamp(c: Any, history: History) -> None:
    """A write that changes nothing (the delete of a key that never exists), kept in the
    history with the timestamp the server gave it. Under a TTL the pass brackets its reads
    with two: the first bounds their snapshots from below, the second from above — which
    no worker's write does for the last pass of a run (chaos/expiry.py)."""
    op = history.invoke("delete", keys=[STAMP_KEY], by="checker")
    try:
        op.ts = mutate(c, "delete", expr=Pred(ids=(STAMP_KEY,)).filter(), timeout=120)
    except Exception as e:
        history.complete(op, classify(e), error=f"{type(e).__name__}: {e}")
        raise
    history.complete(op, OK)
