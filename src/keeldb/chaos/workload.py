"""The seed workload: upserts of 200 cycling from key 0, searches, flushes, compactions and
count(*) in a loop (and, per the variant, inserts and deletes of extra keys, inserts of
fresh keys, deletes of base keys: chaos/variants.py), each in its own thread with its own
pymilvus connection, every call recorded in the history. The collection has a real ANN
index (``--index-type``, IVF_FLAT by default), so the server builds indexes while the
workload runs, and searches pass the matching search parameters. Reads ask for Strong
consistency: the checker holds every read to "sees every write acknowledged before it
started", which only Strong promises (Bounded or Eventually reads may legally lag). An ANN
search may miss rows; the checker demands only that every hit be a live version.

Besides the unfiltered count(*) and the searches, a reader goes through every other path a
server may decide visibility on (chaos/reads.py) — filtered counts, filtered queries, gets,
query pages, query iterators, filtered searches — with filters that select the keys just
written; and each writer reads its own write back pinned at the write's timestamp and just
before it, which is where an MVCC off-by-one shows (a version visible at the very
timestamp that ended it).

Discipline that keeps the model sound (chaos/checker.py): each key has one writer thread,
and a writer whose call ended in an unknown outcome waits until the server has been
restarted or resumed before its next write — so a paused request cannot land after the
write that follows it.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from keeldb.chaos import reads
from keeldb.chaos.history import DEFAULT_BATCH, FAILED, OK, UNKNOWN, History, Op
from keeldb.chaos.predicates import Pred, key_span
from keeldb.chaos.reads import CALL_TIMEOUT, COLLECTION, MOD

__all__ = ["CALL_TIMEOUT", "COLLECTION", "Gate", "Worker"]
BATCH = DEFAULT_BATCH
METRIC = "L2"
READ_KINDS = ("count", "query", "get", "page", "iterate", "search")  # what the reader cycles through
HURRY_SECONDS = 0.2  # a hurried periodic worker's interval (chaos/faults.py: HURRY)

# Build and search parameters per index type. An ANN search may miss rows (the checker only
# demands that every hit be a live version, never that a result be complete).
INDEXES: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "FLAT": ({}, {}),
    "IVF_FLAT": ({"nlist": 64}, {"nprobe": 16}),
    "IVF_SQ8": ({"nlist": 64}, {"nprobe": 16}),
    "IVF_PQ": ({"nlist": 64, "nbits": 8}, {"nprobe": 16}),  # m: see index_params()
    "HNSW": ({"M": 16, "efConstruction": 64}, {"ef": 64}),
    "AUTOINDEX": ({}, {}),
}
INDEX_TYPES = tuple(INDEXES)


def index_params(index_type: str, dim: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(build params, search params) for ``index_type`` on vectors of ``dim``."""
    if index_type not in INDEXES:
        raise ValueError(f"unknown index type {index_type!r}; use one of {', '.join(INDEX_TYPES)}")
    build, search = (dict(p) for p in INDEXES[index_type])
    if index_type == "IVF_PQ":
        build["m"] = next(m for m in (8, 4, 2, 1) if dim % m == 0)  # m must divide dim
    return build, search


def search_params(index_type: str, dim: int) -> dict[str, Any]:
    """What ``MilvusClient.search`` takes as ``search_params`` for this index."""
    return {"metric_type": METRIC, "params": index_params(index_type, dim)[1]}


_FREQ = np.random.default_rng(12345).uniform(0.5, 1.5, size=(2, 4096))


def vectors(keys: np.ndarray | list[int], batch: int, dim: int) -> np.ndarray:
    """Deterministic vectors per (key, batch), computed for many keys at once (the load of
    10M rows is otherwise bound by generating them): a search for one finds that version."""
    k = np.asarray(keys, dtype=np.float64)[:, None]
    a, c = _FREQ[0, :dim], _FREQ[1, :dim]
    v = np.sin(k * a * 0.001 + (batch + 2) * c)
    v[:, 0] = k[:, 0] / 1000.0
    return v.astype(np.float32)


def vector(key: int, batch: int, dim: int) -> list[float]:
    return vectors([key], batch, dim)[0].tolist()


def rows_for(keys: list[int], batch: int, dim: int) -> list[dict[str, Any]]:
    vs = vectors(keys, batch, dim).tolist()
    return [{"id": k, "vector": v, "batch": batch} for k, v in zip(keys, vs, strict=True)]


def classify(err: BaseException) -> str:
    """``failed`` only when the server itself answered "no" to a request it understood.
    Anything else — a dead connection, a timeout, an internal error that may have come after
    the write reached the log — is ``unknown``: it may or may not have happened."""
    code = getattr(err, "code", None)
    text = str(err).lower()
    if isinstance(code, int) and code not in (0, 1, 2, 65535) and "deadline" not in text:
        return FAILED
    return UNKNOWN


class Gate:
    """Open while the server is up; writers that lost a call wait here for the restart."""

    def __init__(self) -> None:
        self._open = threading.Event()
        self._open.set()
        self.stop = threading.Event()

    def close(self) -> None:
        self._open.clear()

    def open(self) -> None:
        self._open.set()

    def wait(self) -> bool:
        """Block until open (or stopping); False when the run is over."""
        while not self._open.wait(0.1):
            if self.stop.is_set():
                return False
        return not self.stop.is_set()


class Worker(threading.Thread):
    def __init__(self, name: str, uri: str, history: History, gate: Gate, body: Callable[[Worker], None]) -> None:
        super().__init__(name=name, daemon=True)
        self.uri, self.history, self.gate, self.body = uri, history, gate, body
        self.client: Any = None
        self.paused = threading.Event()  # set by the runner to hold the worker between calls
        self.idle = threading.Event()  # set by the worker while it holds
        self.hurry = threading.Event()  # set by the runner: a periodic worker calls more often

    def connect(self) -> Any:
        import pymilvus

        while not self.gate.stop.is_set():
            try:
                return pymilvus.MilvusClient(uri=self.uri, dedicated=True, timeout=CALL_TIMEOUT)
            except Exception:  # noqa: BLE001 - the server is down; try again
                time.sleep(0.2)
        return None

    def write(self, op: Op, send: Callable[[Any], int | None]) -> bool:
        """A write: ``send`` returns the server's timestamp of it (or None), kept in the op."""

        def fn(c: Any) -> None:
            op.ts = send(c)

        ok = self.call(op, fn)
        if ok:
            self.pin(op)
        return ok

    def pin(self, write: Op) -> None:
        """Read an acknowledged write's keys back pinned just before its timestamp and at
        it: before, they must show what they held before it; at, exactly the write. The
        read kind (count or rows) and the filter form (a key range or an ``in`` list)
        rotate with the write, so both paths meet both forms. Deletes too: Milvus (and
        keeldb) report a delete's own timestamp."""
        if write.outcome != OK or not write.ts:
            return
        as_count = write.id % 2 == 0
        pred = key_span(write.keys) if write.id % 4 < 2 else Pred(ids=tuple(sorted(set(write.keys))))
        sides = [("before", write.ts - 1), ("at", write.ts)]
        for side, ts in sides:
            op = self.history.invoke(
                "count" if as_count else "query", pred=pred.to_json(), pin_op=write.id, pin_ts=ts, pin_side=side
            )
            if as_count:
                ok = self.call(op, lambda c, ts=ts: reads.count(c, pred, pin_ts=ts))
            else:
                ok = self.call(op, lambda c, ts=ts: reads.query(c, pred, pin_ts=ts, cap=2 * len(write.keys) + 10))
            if not ok:
                return

    def call(self, op: Op, fn: Callable[[Any], Any], value: Callable[[Any], Any] | None = None) -> bool:
        try:
            if self.client is None:
                self.client = self.connect()
                if self.client is None:
                    self.history.complete(op, UNKNOWN, error="run stopped")
                    return False
            res = fn(self.client)
            self.history.complete(op, OK, value(res) if value else (res if op.is_read else None))
            return True
        except Exception as e:  # noqa: BLE001 - every failure is history
            outcome = classify(e)
            self.history.complete(op, outcome, error=f"{type(e).__name__}: {e}")
            if outcome == UNKNOWN:
                self._drop_client()
                self.gate.wait()
            return False

    def _drop_client(self) -> None:
        try:
            if self.client is not None:
                self.client.close()
        except Exception:  # noqa: BLE001
            pass
        self.client = None

    def sleep(self, seconds: float) -> bool:
        """Wait between calls, but give way at once to a pause request or the end of the
        run (a checker pass should not wait out a long interval): False if interrupted."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            if self.paused.is_set() or self.gate.stop.is_set():
                return False
            time.sleep(min(left, 0.05))
        return True

    def hold_point(self) -> bool:
        """Between calls: honour a pause request from the runner; False when stopping."""
        if self.paused.is_set():
            self.idle.set()
            while self.paused.is_set() and not self.gate.stop.is_set():
                time.sleep(0.02)
            self.idle.clear()
        return not self.gate.stop.is_set()

    def run(self) -> None:
        while self.hold_point():
            self.body(self)
        self._drop_client()
        self.idle.set()


def mutate(
    c: Any,
    kind: str,
    data: list[dict[str, Any]] | None = None,
    expr: str = "",
    timeout: float = CALL_TIMEOUT,
    partial_update: bool = False,
) -> int | None:
    """Send one write; return the server's timestamp of it (None if it reports none).

    ``MilvusClient.insert/upsert/delete`` return counts only: they drop the timestamp of
    the ``MutationResult`` that the connection handler under them returns (pymilvus keeps
    it only as a process-wide "latest write" for Session reads, shared by every thread).
    A read pinned at one write's timestamp needs exactly that write's, so the write goes
    through the same handler call the client method makes; without one (another pymilvus),
    through the client method, and nothing is pinned."""
    partial = {"partial_update": True} if partial_update else {}
    handler = getattr(c, "_get_connection", None)
    if handler is None:
        if kind == "delete":
            c.delete(COLLECTION, filter=expr, timeout=timeout)
        else:
            getattr(c, kind)(COLLECTION, data, timeout=timeout, **partial)
        return None
    h = handler()
    if kind == "delete":
        res = h.delete(COLLECTION, expr, timeout=timeout)
    elif kind == "upsert":
        res = h.upsert_rows(COLLECTION, data, timeout=timeout, **partial)
    else:
        res = h.insert_rows(COLLECTION, data, timeout=timeout)
    return int(getattr(res, "timestamp", 0) or 0) or None


def _write(
    w: Worker, kind: str, batch: int, keys: list[int], dim: int, by_filter: bool = False, partial: bool = False
) -> Op:
    """One write of ``keys`` (rows of ``batch``, or their delete: by ids, or by a filter
    that selects exactly them; an upsert as a partial update if ``partial``), recorded and,
    if acknowledged, read back pinned."""
    op = w.history.invoke(kind, batch=batch, keys=keys, by=w.name)
    if kind == "delete":
        expr = key_span(keys).filter() if by_filter else Pred(ids=tuple(keys)).filter()
        w.write(op, lambda c: mutate(c, "delete", expr=expr))
    else:
        data = rows_for(keys, batch, dim)
        w.write(op, lambda c: mutate(c, kind, data, partial_update=partial))
    return op


def upserter(
    rows: int, dim: int, first_batch: int, batch: int = BATCH, partial: bool = False
) -> Callable[[Worker], None]:
    """Upserts of ``batch`` keys cycling over keys ``0..rows-1`` (partial updates if
    ``partial``: the same rows through the read-merge-log path)."""
    state = {"b": first_batch}

    def step(w: Worker) -> None:
        b = state["b"]
        start = (b * batch) % rows
        _write(w, "upsert", b, [(start + i) % rows for i in range(min(batch, rows))], dim, partial=partial)
        state["b"] = b + 1

    return step


def churner(rows: int, span: int, dim: int, first_batch: int, group: int = 20) -> Callable[[Worker], None]:
    """Inserts a group of extra keys (>= rows) and then deletes it: count(*) moves by known
    steps, and deletes get crash-tested too."""
    state = {"b": first_batch, "live": False}

    def step(w: Worker) -> None:
        b = state["b"]
        start = rows + ((b // 2) * group) % span
        keys = list(range(start, start + group))
        op = _write(w, "delete" if state["live"] else "insert", b, keys, dim)
        if op.outcome == OK:
            state["live"] = not state["live"]
        elif op.outcome == UNKNOWN:
            # We cannot know whether the keys are live now; move to a fresh group. Groups are
            # numbered b // 2 (insert at an even b, delete at the odd b + 1 after it), so
            # the fresh one starts at the next even number, not at b + 2: from an odd b
            # that would pair each insert with the delete of the group after it.
            state["b"] = (b // 2 + 1) * 2
            state["live"] = False
            return
        state["b"] = b + 1

    return step


def inserter(first_key: int, dim: int, first_batch: int, batch: int = BATCH) -> Callable[[Worker], None]:
    """Inserts of ``batch`` fresh keys from ``first_key`` on: never a key twice, whatever
    the outcome (a retried insert of a key that did land would be a second version)."""
    state = {"b": first_batch, "next": first_key}

    def step(w: Worker) -> None:
        keys = list(range(state["next"], state["next"] + batch))
        _write(w, "insert", state["b"], keys, dim)
        state["b"] += 1
        state["next"] += batch

    return step


def deleter(lo: int, hi: int, dim: int, first_batch: int, group: int = BATCH) -> Callable[[Worker], None]:
    """Deletes a group of the base keys ``lo..hi-1`` (by ids and by filter, alternately),
    then upserts it back, group after group: deletes of rows long flushed, whatever the
    outcome of the delete (an upsert restores the group either way)."""
    state = {"b": first_batch, "g": 0, "deleted": False}

    def step(w: Worker) -> None:
        g = state["g"]
        start = lo + (g * group) % (hi - lo)
        keys = [lo + (start - lo + i) % (hi - lo) for i in range(min(group, hi - lo))]
        if not state["deleted"]:
            _write(w, "delete", state["b"], keys, dim, by_filter=g % 2 == 1)
            state["deleted"] = True
        else:
            _write(w, "upsert", state["b"], keys, dim)
            state["deleted"] = False
            state["g"] = g + 1
        state["b"] += 1

    return step


def searcher(rows: int, dim: int, seed: int, index_type: str = "AUTOINDEX") -> Callable[[Worker], None]:
    rng = random.Random(seed)
    sp = search_params(index_type, dim)

    def step(w: Worker) -> None:
        keys = [rng.randrange(rows) for _ in range(2)]
        q = [vector(k, -1, dim) for k in keys]
        op = w.history.invoke("search")
        w.call(op, lambda c: reads.search(c, q, sp))

    return step


def counter() -> Callable[[Worker], None]:
    def step(w: Worker) -> None:
        op = w.history.invoke("count")
        w.call(op, lambda c: reads.count(c, None))

    return step


def recent_pred(history: History, rng: random.Random, rows: int, use_mod: bool) -> tuple[Pred, Op | None]:
    """A filter over keys just written (one of the last writes of any writer), so reads meet
    versions that are being replaced: its range, widened a little; a part of it as an ``in``
    list with neighbours; or its range with ``id % 7 == r`` or ``batch >= its batch``. A
    key range of at most 500 (the checker visits every key a filter may select)."""
    writes = [o for o in history.ops[-64:] if o.is_write and o.keys]
    if not writes:
        start = rng.randrange(max(1, rows - 400))
        return Pred(lo=start, hi=start + 400), None
    w = rng.choice(writes)
    keys = sorted(w.keys)
    if len(keys) > 500:
        i = rng.randrange(len(keys) - 500)
        keys = keys[i : i + 500]
    span = key_span(keys)
    form = rng.randrange(4)
    if form == 1 or span.ids is not None:
        pick = rng.sample(keys, max(1, len(keys) // 2)) + [keys[0] - 1, keys[-1] + 1]
        return Pred(ids=tuple(sorted(k for k in set(pick) if k >= 0))), w
    lo, hi = max(0, span.lo - rng.randrange(20)), span.hi + rng.randrange(20)  # type: ignore[operator]
    if form == 2 and use_mod:
        return Pred(lo=lo, hi=hi, mod=(MOD, rng.randrange(MOD))), w
    if form == 3 and w.batch is not None:
        return Pred(lo=lo, hi=hi, batch_min=w.batch), w
    return Pred(lo=lo, hi=hi), w


def reader(rows: int, dim: int, seed: int, index_type: str, use_mod: bool = True) -> Callable[[Worker], None]:
    """Every read kind in turn (READ_KINDS), each over a filter chosen by ``recent_pred``,
    Strong: filtered count(*), the rows it selects, a get of some of its keys, one page of it
    (limit/offset), all of it through a query_iterator, a search restricted to it."""
    rng = random.Random(f"reader-{seed}")
    sp = search_params(index_type, dim)
    state = {"i": 0}

    def step(w: Worker) -> None:
        kind = READ_KINDS[state["i"] % len(READ_KINDS)]
        state["i"] += 1
        pred, write = recent_pred(w.history, rng, rows, use_mod)
        p = pred.to_json()
        if kind == "count":
            w.call(w.history.invoke("count", pred=p), lambda c: reads.count(c, pred))
        elif kind == "query":
            w.call(w.history.invoke("query", pred=p), lambda c: reads.query(c, pred))
        elif kind == "get":
            pool = list(pred.ids) if pred.ids is not None else list(range(pred.lo or 0, pred.hi or rows))
            ids = sorted(rng.sample(pool, min(len(pool), 50)))
            w.call(w.history.invoke("get", keys=ids), lambda c: reads.get(c, ids))
        elif kind == "page":
            limit, offset = rng.choice((7, 50)), rng.randrange(60)
            op = w.history.invoke("page", pred=p, limit=limit, offset=offset)
            w.call(op, lambda c: reads.page(c, pred, limit, offset))
        elif kind == "iterate":
            w.call(w.history.invoke("iterate", pred=p, batch_size=reads.ITERATOR_PAGE), lambda c: reads.iterate(c, pred))
        else:
            near = write.keys[:2] if write is not None else [rng.randrange(rows)]
            batch = write.batch if write is not None and write.kind != "delete" else -1
            q = [vector(k, batch if batch is not None else -1, dim) for k in near]
            w.call(w.history.invoke("search", pred=p), lambda c: reads.search(c, q, sp, pred))

    return step


def flusher(interval: float) -> Callable[[Worker], None]:
    def step(w: Worker) -> None:
        if not w.sleep(interval):
            return
        op = w.history.invoke("flush")
        w.call(op, lambda c: c.flush(COLLECTION, timeout=30))

    return step


def compactor(interval: float) -> Callable[[Worker], None]:
    """Asks for a compaction every ``interval`` seconds (keeldb: ManualCompaction merges the
    small segments now, ``compact(force=True)``; that is what drives an armed
    ``compaction.*`` crash point). Like a flush it changes no data, so the checker models
    nothing for it; it counts in availability."""

    def step(w: Worker) -> None:
        if not w.sleep(min(interval, HURRY_SECONDS) if w.hurry.is_set() else interval):
            return
        op = w.history.invoke("compact")
        w.call(op, lambda c: c.compact(COLLECTION, timeout=60), lambda job: int(job) if job is not None else None)

    return step
