"""The catalog: which collections exist, their schemas, index parameters and load state.

One small framed JSON file, ``CATALOG``, replaced atomically on every change. A collection's
data lives in ``collections/<id>/``; the directory is named by an id, never by the user's
collection name, so renames are a catalog edit and no name can reach outside the data
directory. Dropping a collection commits the catalog first and removes the directory after;
a crash in between leaves a directory no catalog entry names, which the next open removes.
"""

from __future__ import annotations

import copy
import threading
from pathlib import Path
from typing import Any

from keeldb.storage.crash import crash_point
from keeldb.storage.framed import encode_framed, read_framed
from keeldb.storage.fs import atomic_replace

MAGIC = b"KEELCAT1"


def apply_changes(state: dict[str, Any], changes: dict[str, dict[str, Any] | None]) -> None:
    """``{name: entry}`` into ``state``'s collections; ``None`` removes the name."""
    for name, entry in changes.items():
        if entry is None:
            state["collections"].pop(name, None)
        else:
            state["collections"][name] = entry


class Catalog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        if path.exists():
            self._state = read_framed(MAGIC, path)
        else:
            self._state = {"next_id": 1, "collections": {}}

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return copy.deepcopy(self._state["collections"])

    def get(self, name: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._state["collections"].get(name)
            return copy.deepcopy(entry) if entry else None

    def peek(self, name: str) -> dict[str, Any] | None:
        """The entry itself, not a copy: for hot read paths that only look. Entries are
        replaced whole by ``update``, never changed in place, so a peeked entry is stable."""
        return self._state["collections"].get(name)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._state["collections"])

    def allocate_id(self) -> int:
        with self._lock:
            cid = int(self._state["next_id"])
            self._state["next_id"] = cid + 1
            return cid

    def update(self, changes: dict[str, dict[str, Any] | None]) -> None:
        """Apply ``{name: entry}`` (``None`` removes) and make it durable, atomically."""
        with self._lock:
            new = copy.deepcopy(self._state)
            apply_changes(new, changes)
            atomic_replace(
                self.path,
                encode_framed(MAGIC, new),
                before_rename=lambda: crash_point("catalog.before_rename"),
                after_rename=lambda: crash_point("catalog.after_rename"),
            )
            self._state = new
