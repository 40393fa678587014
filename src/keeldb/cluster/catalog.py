"""The cluster's catalog: one etcd key holding what ``storage/catalog.py`` holds in a file.

Every change is a compare-and-swap on the key's ``mod_revision``, retried on conflict, so
two nodes changing the catalog at once both land (changes are per collection name) and a
create of a name that a racing create already took fails instead of overwriting it.

Reads that must see other nodes' changes (``get``, ``names``, ``snapshot``: list/has/
describe) read etcd. ``peek``, the per-call read path, uses this node's copy: every change
to a collection's entry is made by the node that writes the collection (calls are routed
there), so that node's copy of its own entries is current.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from keeldb.cluster.etcd import Compare, Etcd, put_op
from keeldb.engine.catalog import CollectionEntry
from keeldb.storage.catalog import CatalogState, ExtraUpdate

State = CatalogState[CollectionEntry]
EXTRA_MAX_AGE = 1.0  # seconds a node answers access checks and alias lookups from its copy


class EtcdCatalog:
    """The ``Catalog`` protocol (engine/catalog.py) over one etcd key."""

    def __init__(self, etcd: Etcd, cluster: str) -> None:
        self.etcd = etcd
        self.key = f"/keeldb/{cluster}/catalog"
        self._lock = threading.Lock()
        self._state: State = CatalogState()
        self._extra_read = time.monotonic()
        self._refresh()

    def _read(self) -> tuple[State, int]:
        kv = self.etcd.get(self.key)
        if kv is None:
            return CatalogState(), 0
        return CatalogState.from_dict(json.loads(kv.value), CollectionEntry.from_dict), kv.mod_revision

    def _refresh(self) -> State:
        state, _ = self._read()
        with self._lock:
            self._state = state
        return state

    def snapshot(self) -> dict[str, CollectionEntry]:
        return dict(self._refresh().collections)

    def get(self, name: str) -> CollectionEntry | None:
        return self._refresh().collections.get(name)

    def peek(self, name: str) -> CollectionEntry | None:
        """This node's copy, re-read when it lacks the entry or has it not loaded (a
        replica's node learns of a load made through another node here)."""
        entry = self._state.collections.get(name)
        if entry is None or not entry.is_loaded:
            entry = self._refresh().collections.get(name)
        return entry

    def names(self) -> list[str]:
        return list(self._refresh().collections)

    def allocate_id(self) -> int:
        return self._change(lambda state: state.allocated()).next_id - 1

    def commit(
        self, changes: Mapping[str, CollectionEntry | None], *, new: Collection[str] = (),
        extra: ExtraUpdate[CollectionEntry] | None = None,
    ) -> Mapping[str, Any]:  # fmt: skip
        """One compare-and-swap, retried on conflict; a name in ``new`` that a racing create
        on another node took fails (checked against the state the swap is compared on).
        ``extra`` may run more than once (on the state each attempt read): it must be a
        pure function of its arguments."""
        return self._change(lambda state: state.changed(changes, new, extra)).extra

    def extra(self, fresh: bool = False) -> Mapping[str, Any]:
        """Databases, aliases, users and grants: this node's copy, re-read from etcd when
        older than ``EXTRA_MAX_AGE`` seconds (or ``fresh``), so a change made through
        another node (a revoked role, a switched alias) takes effect here within that time,
        and a call's check or alias lookup costs no etcd read."""
        now = time.monotonic()
        if fresh or now - self._extra_read > EXTRA_MAX_AGE:
            self._refresh()
            self._extra_read = now
        return self._state.extra

    def _change(self, apply: Callable[[State], State]) -> State:
        while True:
            state, revision = self._read()
            state = apply(state)
            put = put_op(self.key, json.dumps(state.to_dict()))
            if self.etcd.txn([Compare(self.key, "MOD", revision)], [put]).succeeded:
                with self._lock:
                    self._state = state
                return state
