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

    @rule(finish=st.booleans())
    def rotate(self, finish: bool) -> None:
        """A flush: the next log starts, then the old one ends (checkpoint unchanged). With
        ``finish`` false the writer is paused between the two (the end comes later, from
        ``finish_rotation``, or never): the window in which a successor can take over."""
        w = self.writers[-1]
        if not w["alive"] or w.get("ending") is not None:
            return
        old, w["log"] = w["log"], ObjectLog(self.objects, w["log"]._base, w["log"].number + 1)  # noqa: SLF001
        w["ending"] = old
        if finish:
            self.finish_rotation(0)

    @rule(who=st.integers(0, 3))
    def finish_rotation(self, who: int) -> None:
        w = self.writers[-1 - who] if who < len(self.writers) else self.writers[0]
        old, w["ending"] = w.get("ending"), None
        if old is None:
            return
        try:
            old.end()
        except StorageError:
            assert w is not self.writers[-1], "the current writer could not end its own log"
            w["alive"] = False

    @rule()
    def take_over(self) -> None:
        replayed = self._take_over()
        assert replayed == self.acked, (replayed, self.acked)
        assert not self.failed & set(replayed)

    # A replica waits (2 s, then refuses) while the current writer is between starting a new
    # log and ending the old one; in a real flush that lasts milliseconds, here forever.
    @precondition(lambda self: len(self.acked) > 0 and self.writers[-1].get("ending") is None)
    @invariant()
    def replica_sees_every_ack(self) -> None:
        store = self._store(False)
        got: list[Record] = []
        store.replay(0, got.append, Replay())
        assert [bytes(r.payload) for r in got] == self.acked


TestLogModel = LogModel.TestCase
TestLogModel.settings = settings(max_examples=300, stateful_step_count=25, deadline=None)
