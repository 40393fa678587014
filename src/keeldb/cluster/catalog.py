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

import copy
import json
import threading
from typing import Any

from keeldb.cluster.etcd import Compare, Etcd, put_op
from keeldb.errors import InvalidArgument
from keeldb.storage.catalog import apply_changes


class EtcdCatalog:
    def __init__(self, etcd: Etcd, cluster: str) -> None:
        self.etcd = etcd
        self.key = f"/keeldb/{cluster}/catalog"
        self._lock = threading.Lock()
        self._state: dict[str, Any] = {"next_id": 1, "collections": {}}
        self._refresh()

    def _read(self) -> tuple[dict[str, Any], int]:
        kv = self.etcd.get(self.key)
        if kv is None:
            return {"next_id": 1, "collections": {}}, 0
        return json.loads(kv.value), kv.mod_revision

    def _refresh(self) -> dict[str, Any]:
        state, _ = self._read()
        with self._lock:
            self._state = state
        return state

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return copy.deepcopy(self._refresh()["collections"])

    def get(self, name: str) -> dict[str, Any] | None:
        entry = self._refresh()["collections"].get(name)
        return copy.deepcopy(entry) if entry else None

    def peek(self, name: str) -> dict[str, Any] | None:
        """This node's copy, re-read when it lacks the entry or has it not loaded (a
        replica's node learns of a load made through another node here)."""
        entry = self._state["collections"].get(name)
        if entry is None or not (entry.get("loaded") or entry.get("loaded_partitions")):
            entry = self._refresh()["collections"].get(name)
        return entry

    def names(self) -> list[str]:
        return list(self._refresh()["collections"])

    def allocate_id(self) -> int:
        return int(self._change(lambda s: s.__setitem__("next_id", int(s["next_id"]) + 1))["next_id"]) - 1

    def update(self, changes: dict[str, dict[str, Any] | None]) -> None:
        self._change(lambda state: apply_changes(state, changes))

    def create(self, name: str, entry: dict[str, Any]) -> None:
        """Add ``name`` unless it exists (also if a racing create on another node won)."""

        def apply(state: dict[str, Any]) -> None:
            if name in state["collections"]:
                raise InvalidArgument(f"collection '{name}' already exists")
            state["collections"][name] = entry

        self._change(apply)

    def _change(self, apply: Any) -> dict[str, Any]:
        while True:
            state, revision = self._read()
            apply(state)
            r = self.etcd.txn([Compare(self.key, "MOD", revision)], [put_op(self.key, json.dumps(state))])
            if r.succeeded:
                with self._lock:
                    self._state = state
                return state
