"""Property test of the cluster log: any interleaving of writers, takeovers, log rotations
and readers, checked against the set of acknowledged records.

The object store here is an in-memory model with exactly S3's conditional-put semantics
(``If-None-Match: *``: the first put of a key wins, every later one fails), so hypothesis
can explore thousands of interleavings in seconds; the same code runs against the real
SeaweedFS in test_cluster_store.py and test_cluster_crash.py.

Invariants, after every step:
- a takeover's replay holds every record any writer had acknowledged, in each writer's
  order, and no record whose put failed;
- a writer that was taken over can never acknowledge again;
- a replica following the log has exactly the acknowledged records of the current writer's
  lineage (what a Strong read must see).
"""

from __future__ import annotations

import tempfile
import threading
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from keeldb.cluster.objectstore import PositionTaken
from keeldb.cluster.store import ClusterStore, ObjectLog
from keeldb.errors import StorageError
from keeldb.storage.log_reader import Record
from keeldb.storage.store import Replay

SCRATCH = Path(tempfile.mkdtemp(prefix="keeldb-logmodel-"))  # the store's (unused) local cache


class MemoryObjects:
    """S3's semantics for the calls ClusterStore's log makes."""

    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}
        self.lock = threading.Lock()

    def put_if_absent(self, key: str, data: bytes) -> None:
        with self.lock:
            if key in self.data and self.data[key] != data:
                raise PositionTaken(key)
            self.data.setdefault(key, data)

    def get(self, key: str) -> bytes | None:
        return self.data.get(key)

    def list(self, prefix: str = "", start_after: str = "") -> list[str]:
        return sorted(k for k in self.data if k.startswith(prefix) and k > start_after)


class Lease:
    """Stands in for ShardWriter: a lease id for file names, no manifest (checkpoint 0)."""

    def __init__(self, lease: int) -> None:
        self.lease = lease
        self.manifest_key = "manifest"

    def read_manifest(self) -> tuple[None, int]:
        return None, 0


class LogModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.objects = MemoryObjects()
        self.writers: list[dict[str, Any]] = []  # each: log, lineage of acked payloads
        self.acked: list[bytes] = []  # every acknowledged payload, in acknowledgement order
        self.failed: set[bytes] = set()
        self.n = 0
        self._take_over()

    def _store(self, writer: bool) -> ClusterStore:
        return ClusterStore(SCRATCH, self.objects, 1, Lease(len(self.writers) + 1), writer=writer)  # type: ignore[arg-type]

    def _take_over(self) -> list[bytes]:
        store = self._store(True)
        got: list[Record] = []
        out = Replay()
        store.replay(0, got.append, out)
        self.writers.append({"log": ObjectLog(self.objects, store.base, out.next_log), "alive": True})  # type: ignore[arg-type]
        return [bytes(r.payload) for r in got]

    @rule(who=st.integers(0, 3), size=st.integers(1, 3))
    def write(self, who: int, size: int) -> None:
        w = self.writers[-1 - who] if who < len(self.writers) else self.writers[0]
        payloads = []
        try:
            for _ in range(size):
                self.n += 1
                p = f"rec-{self.n}".encode()
                payloads.append(p)
                w["log"].append(1, self.n, p)
            w["log"].sync()
        except StorageError:
            assert w is not self.writers[-1] or not w["alive"], "the current writer was fenced"
            self.failed.update(payloads)
            w["alive"] = False
            return
        assert w is self.writers[-1], "a writer that was taken over acknowledged a write"
        self.acked.extend(payloads)

    @rule()
    def rotate(self) -> None:
        """A flush: the current log ends, the next one starts (checkpoint unchanged)."""
        w = self.writers[-1]
        if not w["alive"]:
            return
        w["log"].end()
        w["log"] = ObjectLog(self.objects, w["log"]._base, w["log"].number + 1)  # noqa: SLF001

    @rule()
    def take_over(self) -> None:
        replayed = self._take_over()
        assert replayed == self.acked, (replayed, self.acked)
        assert not self.failed & set(replayed)

    @precondition(lambda self: len(self.acked) > 0)
    @invariant()
    def replica_sees_every_ack(self) -> None:
        store = self._store(False)
        got: list[Record] = []
        store.replay(0, got.append, Replay())
        assert [bytes(r.payload) for r in got] == self.acked


TestLogModel = LogModel.TestCase
TestLogModel.settings = settings(max_examples=150, stateful_step_count=25, deadline=None)
