"""The seed workload: upserts of 200 cycling from key 0, searches, flushes, compactions and
count(*) in a loop (and optionally inserts and deletes of extra keys), each in its own thread
with its own pymilvus connection, every call recorded in the history. The collection has a
real ANN index (``--index-type``, IVF_FLAT by default), so the server builds indexes while
the workload runs, and searches pass the matching search parameters. Reads ask for Strong
consistency: the checker holds every read to "sees every write acknowledged before it
started", which only Strong promises (Bounded or Eventually reads may legally lag). An ANN
search may miss rows; the checker demands only that every hit be a live version.

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

from keeldb.chaos.history import FAILED, OK, UNKNOWN, History, Op

COLLECTION = "chaos"
BATCH = 200
CALL_TIMEOUT = 5.0
METRIC = "L2"

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

    def connect(self) -> Any:
        import pymilvus

        while not self.gate.stop.is_set():
            try:
                return pymilvus.MilvusClient(uri=self.uri, dedicated=True, timeout=CALL_TIMEOUT)
            except Exception:  # noqa: BLE001 - the server is down; try again
                time.sleep(0.2)
        return None

    def call(self, op: Op, fn: Callable[[Any], Any], value: Callable[[Any], Any] | None = None) -> bool:
        try:
            if self.client is None:
                self.client = self.connect()
                if self.client is None:
                    self.history.complete(op, UNKNOWN, error="run stopped")
                    return False
            res = fn(self.client)
            self.history.complete(op, OK, value(res) if value else None)
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


def upserter(rows: int, dim: int, first_batch: int) -> Callable[[Worker], None]:
    state = {"b": first_batch}

    def step(w: Worker) -> None:
        b = state["b"]
        start = (b * BATCH) % rows
        keys = [(start + i) % rows for i in range(BATCH)]
        data = rows_for(keys, b, dim)
        op = w.history.invoke("upsert", batch=b, keys=keys)
        w.call(op, lambda c: c.upsert(COLLECTION, data, timeout=CALL_TIMEOUT))
        state["b"] = b + 1

    return step


def churner(rows: int, span: int, dim: int, first_batch: int) -> Callable[[Worker], None]:
    """Inserts a group of extra keys (>= rows) and then deletes it: count(*) moves by known
    steps, and deletes get crash-tested too."""
    state = {"b": first_batch, "live": False}
    group = 20

    def step(w: Worker) -> None:
        b = state["b"]
        start = rows + ((b // 2) * group) % span
        keys = list(range(start, start + group))
        if not state["live"]:
            data = rows_for(keys, b, dim)
            op = w.history.invoke("insert", batch=b, keys=keys)
            ok = w.call(op, lambda c: c.insert(COLLECTION, data, timeout=CALL_TIMEOUT))
        else:
            op = w.history.invoke("delete", batch=b, keys=keys)
            ok = w.call(op, lambda c: c.delete(COLLECTION, ids=keys, timeout=CALL_TIMEOUT))
        if ok:
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


def searcher(rows: int, dim: int, seed: int, index_type: str = "AUTOINDEX") -> Callable[[Worker], None]:
    rng = random.Random(seed)
    sp = search_params(index_type, dim)

    def step(w: Worker) -> None:
        keys = [rng.randrange(rows) for _ in range(2)]
        q = [vector(k, -1, dim) for k in keys]
        op = w.history.invoke("search")
        w.call(
            op,
            lambda c: c.search(
                COLLECTION, q, limit=10, output_fields=["batch"], search_params=sp,
                consistency_level="Strong", timeout=CALL_TIMEOUT,
            ),
            lambda res: [[(h["id"], h["entity"]["batch"]) for h in hits] for hits in res],
        )

    return step


def counter() -> Callable[[Worker], None]:
    def step(w: Worker) -> None:
        op = w.history.invoke("count")
        w.call(
            op,
            lambda c: c.query(
                COLLECTION, filter="", output_fields=["count(*)"], consistency_level="Strong", timeout=CALL_TIMEOUT
            ),
            lambda res: res[0]["count(*)"],
        )

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
        if not w.sleep(interval):
            return
        op = w.history.invoke("compact")
        w.call(op, lambda c: c.compact(COLLECTION, timeout=60), lambda job: int(job) if job is not None else None)

    return step
