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
# A change of the catalog's other members: (current members, collections after the change)
# -> new members.
ExtraUpdate = Callable[[Mapping[str, Any], Mapping[str, E]], Mapping[str, Any]]


@dataclass(frozen=True)
class CatalogState(Generic[E]):
    """The whole catalog as one immutable value: a change builds a new state, so a reader
    holding the old one (``peek``) never sees half a change."""

    next_id: int = 1
    collections: Mapping[str, E] = field(default_factory=dict)
    # The catalog's other top-level members, JSON values opaque here: "databases" and
    # "aliases" (engine/namespace.py), "access" (users, roles, grants: keeldb/access). They
    # change through the same atomic replace as the collections -- in the same commit when
    # a change touches both (a rename moves the collection's aliases with it).
    extra: Mapping[str, Any] = field(default_factory=dict)

    def allocated(self) -> CatalogState[E]:
        """The state after handing out ``next_id``."""
        return replace(self, next_id=self.next_id + 1)

    def changed(
        self, changes: Mapping[str, E | None], new: Collection[str] = (), extra: ExtraUpdate[E] | None = None
    ) -> CatalogState[E]:
        """``{name: entry}`` applied (``None`` removes the name). Each name in ``new`` must
        not exist yet: a create (or a rename's target) that a racing change already took
        fails instead of overwriting it. ``extra(members, collections)``: the new other
        members, given the current ones and the collections after ``changes`` (it may
        raise: then nothing changes)."""
        for name in new:
            if name in self.collections:
                raise InvalidArgument(f"collection '{name}' already exists")
        collections = dict(self.collections)
        for name, entry in changes.items():
            if entry is None:
                collections.pop(name, None)
            else:
                collections[name] = entry
        members = self.extra if extra is None else dict(extra(self.extra, collections))
        return replace(self, collections=collections, extra=members)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "next_id": self.next_id,
            "collections": {name: e.to_dict() for name, e in self.collections.items()},
        }
        # Members appear once first set: an older catalog reads the same.
        out.update({k: v for k, v in self.extra.items() if k not in out})
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any], decode: Callable[[dict[str, Any]], E]) -> CatalogState[E]:
        collections = {name: decode(e) for name, e in d["collections"].items()}
        extra = {k: v for k, v in d.items() if k not in ("next_id", "collections")}
        return cls(int(d["next_id"]), collections, extra)


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

    def commit(
        self, changes: Mapping[str, E | None], *, new: Collection[str] = (), extra: ExtraUpdate[E] | None = None
    ) -> Mapping[str, Any]:
        """THE way the catalog changes: apply ``{name: entry}`` (``None`` removes; names in
        ``new`` must not exist yet) and ``extra`` (see ``CatalogState.changed``; it runs
        under the catalog's lock, so two changes never race) and make it durable,
        atomically. Returns the other members as committed."""
        return self._apply(lambda state: state.changed(changes, new, extra)).extra

    def extra(self, fresh: bool = False) -> Mapping[str, Any]:
        """The other members as last committed; one process writes this catalog, so
        memory is always fresh."""
        return self._state.extra

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
