"""The history of a chaos run: every operation with its invoke and complete times and its
outcome, and every fault. The checker reads nothing else, so a history saved as JSON can be
re-checked later, or built by hand to test the checker.

Outcomes: ``ok`` (acknowledged), ``failed`` (the server answered with an error: it did not
happen), ``unknown`` (the connection died: it may or may not have happened).
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

OK, FAILED, UNKNOWN = "ok", "failed", "unknown"
DEFAULT_BATCH = 200
WRITE_KINDS = ("upsert", "insert", "delete")
# Reads: count(*) (``pred`` None: unfiltered), rows by filter, rows by ids, one page of a
# filtered query (limit/offset), a whole query_iterator, a search (with or without filter).
READ_KINDS = ("count", "query", "get", "page", "iterate", "search")
ROW_READS = ("query", "get", "page", "iterate")


@dataclass
class Op:
    id: int
    kind: str  # WRITE_KINDS | READ_KINDS | flush | compact
    invoke: float  # seconds since the run started
    complete: float | None = None
    outcome: str = UNKNOWN
    batch: int | None = None  # writes: the batch number every row of it carries
    keys: list[int] = field(default_factory=list)  # writes: the keys it touches; get: the ids
    # reads: count(*) result; rows [(key, batch), ...] (query, get, page, iterate: in the
    # order returned); search hits per query vector [[(key, batch), ...], ...]
    value: Any = None
    error: str = ""
    ts: int | None = None  # writes: the server's timestamp of the write, when it reports one
    pred: dict[str, Any] | None = None  # reads: the filter (chaos.predicates.Pred.to_json)
    # reads: limit/offset (page), batch_size (iterate), and for a read pinned at a write's
    # timestamp (MVCC, Milvus's iterator guarantee_timestamp): pin_op (that write's id),
    # pin_ts (the timestamp read at), pin_side ("at" the write's timestamp, or "before" it)
    args: dict[str, Any] = field(default_factory=dict)

    @property
    def is_write(self) -> bool:
        return self.kind in WRITE_KINDS

    @property
    def is_read(self) -> bool:
        return self.kind in READ_KINDS

    @property
    def end(self) -> float:
        """When the op stopped being able to take effect: an unknown op may land any time
        until the server it was sent to died, so it stays open to the end of the run."""
        return self.complete if self.complete is not None and self.outcome != UNKNOWN else float("inf")


@dataclass
class Fault:
    kind: str  # sigkill | sigstop | crash-point | power-cut | disk-full | slow-fsync
    start: float
    recovered: float | None = None  # when the restarted server first answered
    detail: str = ""  # crash-point: "name:n", plus "(not reached in 30s; killed)" if it was not
    # crash-point: every point armed in turn during this fault, each "name:n" plus what
    # happened if the server did not die there (a fault arms a round of points)
    points: list[str] = field(default_factory=list)
    restarted: float | None = None  # crash-point: when the last, plain restart began


@dataclass
class Check:
    """One checker pass (after a restart, or at the end)."""

    at: float
    count: int | None
    violations: list[str]


class History:
    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.ops: list[Op] = []
        self.faults: list[Fault] = []
        self.checks: list[Check] = []
        self.base_rows = 0
        self.batch_size = DEFAULT_BATCH  # rows per upsert batch: how counts off by batches read
        self.meta: dict[str, Any] = {}
        self._lock = threading.Lock()

    def now(self) -> float:
        return time.monotonic() - self.t0

    def invoke(
        self,
        kind: str,
        batch: int | None = None,
        keys: list[int] | None = None,
        pred: dict[str, Any] | None = None,
        **args: Any,
    ) -> Op:
        with self._lock:
            op = Op(len(self.ops), kind, self.now(), batch=batch, keys=list(keys or []), pred=pred, args=args)
            self.ops.append(op)
            return op

    def complete(self, op: Op, outcome: str, value: Any = None, error: str = "") -> None:
        op.complete = self.now()
        op.outcome = outcome
        op.value = value
        op.error = error[:300]

    def to_json(self) -> dict[str, Any]:
        return {
            "base_rows": self.base_rows,
            "batch_size": self.batch_size,
            "meta": self.meta,
            "ops": [asdict(o) for o in self.ops],
            "faults": [asdict(f) for f in self.faults],
            "checks": [asdict(c) for c in self.checks],
        }

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(self.to_json(), default=str))

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> History:
        h = cls()
        h.base_rows = d["base_rows"]
        h.batch_size = d.get("batch_size", DEFAULT_BATCH)
        h.meta = d.get("meta", {})
        h.ops = [Op(**o) for o in d["ops"]]
        h.faults = [Fault(**f) for f in d["faults"]]
        h.checks = [Check(**c) for c in d.get("checks", [])]
        return h
