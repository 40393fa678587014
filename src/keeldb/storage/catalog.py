"""The catalog file: which collections exist, and the one way it changes.

One small framed JSON file, ``CATALOG``, replaced atomically on every change. A collection's
data lives in ``collections/<id>/``; the directory is named by an id, never by the user's
collection name, so renames are a catalog edit and no name can reach outside the data
directory. Dropping a collection commits the catalog first and removes the directory after;
a crash in between leaves a directory no catalog entry names, which the next open removes.

This layer knows the catalog's shape (``next_id`` and ``{name: entry}``) and how a change is
made durable, not what an entry holds: entries are values with ``to_dict`` that the engine
decodes (``engine/catalog.py``'s ``CollectionEntry``), so storage never imports the schema.
The etcd catalog (``cluster/catalog.py``) applies changes with the same ``CatalogState``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Generic, Protocol, TypeVar

from keeldb.errors import InvalidArgument
from keeldb.storage.crash import crash_point
from keeldb.storage.framed import encode_framed, read_framed
from keeldb.storage.fs import atomic_replace

MAGIC = b"KEELCAT1"


class Entry(Protocol):
    """What the catalog stores per name: an immutable value that encodes itself to JSON."""

    def to_dict(self) -> dict[str, Any]: ...


E = TypeVar("E", bound=Entry)


@dataclass(frozen=True)
class CatalogState(Generic[E]):
    """The whole catalog as one immutable value: a change builds a new state, so a reader
    holding the old one (``peek``) never sees half a change."""

    next_id: int = 1
    collections: Mapping[str, E] = field(default_factory=dict)
    # Users, roles and grants (keeldb/access/state.py's JSON form), opaque here: they change
    # through the same atomic replace as the collections, so one commit path carries both.
    access: Mapping[str, Any] = field(default_factory=dict)

    def allocated(self) -> CatalogState[E]:
        """The state after handing out ``next_id``."""
        return replace(self, next_id=self.next_id + 1)

    def changed(self, changes: Mapping[str, E | None], new: Collection[str] = ()) -> CatalogState[E]:
        """``{name: entry}`` applied (``None`` removes the name). Each name in ``new`` must
        not exist yet: a create (or a rename's target) that a racing change already took
        fails instead of overwriting it."""
        for name in new:
            if name in self.collections:
                raise InvalidArgument(f"collection '{name}' already exists")
        collections = dict(self.collections)
        for name, entry in changes.items():
            if entry is None:
                collections.pop(name, None)
            else:
                collections[name] = entry
        return replace(self, collections=collections)

    def with_access(self, access: Mapping[str, Any]) -> CatalogState[E]:
        return replace(self, access=dict(access))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "next_id": self.next_id,
            "collections": {name: e.to_dict() for name, e in self.collections.items()},
        }
        if self.access:  # absent until the first user or grant: older catalogs read the same
            out["access"] = dict(self.access)
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], decode: Callable[[dict[str, Any]], E]) -> CatalogState[E]:
        collections = {name: decode(e) for name, e in d["collections"].items()}
        return cls(int(d["next_id"]), collections, dict(d.get("access") or {}))


class FileCatalog(Generic[E]):
    """The catalog of one data directory, in ``path``. Thread-safe; entries are immutable
    and replaced whole, so what ``get``/``peek``/``snapshot`` return needs no copy."""

    def __init__(self, path: Path, decode: Callable[[dict[str, Any]], E]) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._state: CatalogState[E] = (
            CatalogState.from_dict(read_framed(MAGIC, path), decode) if path.exists() else CatalogState()
        )

    def snapshot(self) -> dict[str, E]:
        return dict(self._state.collections)

    def get(self, name: str) -> E | None:
        return self._state.collections.get(name)

    def peek(self, name: str) -> E | None:
        """The same as ``get`` here (one process writes this catalog, so memory is current);
        the hot read paths call ``peek`` because the etcd catalog's ``get`` reads etcd."""
        return self._state.collections.get(name)

    def names(self) -> list[str]:
        return list(self._state.collections)

    def allocate_id(self) -> int:
        """A collection id never handed out before (durable with the next ``commit``: an id
        lost to a crash before it was used is never seen again either way)."""
        with self._lock:
            cid = self._state.next_id
            self._state = self._state.allocated()
            return cid

    def commit(self, changes: Mapping[str, E | None], *, new: Collection[str] = ()) -> None:
        """THE way the catalog changes: apply ``{name: entry}`` (``None`` removes; names in
        ``new`` must not exist yet) and make it durable, atomically."""
        self._apply(lambda state: state.changed(changes, new))

    def access(self, fresh: bool = False) -> Mapping[str, Any]:
        """Users, roles and grants as last committed (``keeldb/access/state.py`` decodes);
        one process writes this catalog, so memory is always fresh."""
        return self._state.access

    def commit_access(self, update: Callable[[Mapping[str, Any]], Mapping[str, Any]]) -> Mapping[str, Any]:
        """Replace the access state by ``update(current)`` through the same commit as
        ``commit``; ``update`` runs under the catalog's lock, so two changes never race."""
        return self._apply(lambda state: state.with_access(update(state.access))).access

    def _apply(self, change: Callable[[CatalogState[E]], CatalogState[E]]) -> CatalogState[E]:
        with self._lock:
            state = change(self._state)
            atomic_replace(
                self.path,
                encode_framed(MAGIC, state.to_dict()),
                before_rename=lambda: crash_point("catalog.before_rename"),
                after_rename=lambda: crash_point("catalog.after_rename"),
            )
            self._state = state
            return state
