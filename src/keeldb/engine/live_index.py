"""The live-key index: every live primary key and the packed location of its live row.

Why not a dict: a dict entry costs ~120 bytes (hash slot, boxed key, boxed value), ~120 MB
for 1M int64 keys, which alone breaks the memory target (1M x 128-d float32 vectors are
512 MB raw and the whole process must stay under 1.3x that). Two parallel numpy arrays
sorted by key cost 16 bytes per int64 key, and a batch of lookups is one ``searchsorted``.

Why a delta dict: inserting into a sorted array is O(n) per call, and writes arrive in small
batches. New keys therefore go to a small dict, folded into the base in bulk by ``merge``.
The base is already sorted, so a merge sorts only the delta and splices it in, O(n + d log d).
``add_many`` merges by itself once the delta outgrows max(auto_merge_min, base / 16): at
~100 bytes a dict entry against 16 a base entry, that keeps the dict under half the base's
memory (past the floor), while a merge costs O(n) only every n/16 inserts. So the caller need
not schedule merges (it still may, e.g. after a flush).

Why tombstones: deleting from a sorted array is O(n) too, so a removal writes -1 into the
base's loc and the next merge drops the entry. A key removed from the base and added again
sits in the delta while its tombstone stays in the base. A key is live in at most one of the
two places, which is what lets every lookup consult them independently.

Why an object array for VARCHAR keys and not ``<U``: a ``<U`` array is as wide as its
longest key at 4 bytes a character, so one long key would inflate every entry, and it
silently drops trailing NUL characters, merging "a\\0" into "a" (so ``<U`` input is refused
too). An object array costs a pointer per key plus the string, and at recovery those strings
are the very objects the sealed segments' pk caches already hold. Sorting, searchsorted and the
equality checks all use Python's ``<`` and ``==`` on them, so they agree on one order.

Lookups behave like a dict's: Python ints and numpy int64 are the same key, and a key of the
wrong type or outside the int64 range is simply absent, never an error, so callers need not
type-check keys before a lookup.

Thread-safety: none inside, on purpose. The collection calls every method under its write
lock; snapshot readers never touch this structure. ``len()`` reads one int attribute, so
reading it without the lock (for stats) is safe.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

# Batches up to this size go key by key: below it numpy's per-call overhead dominates.
_SMALL = 8

# Default floor for the automatic merge (see the module docstring).
AUTO_MERGE_MIN = 1 << 16

# A location packs a segment id and a row: ``segment_id << ROW_BITS | row`` (one int64 per
# key instead of two arrays; 2**40 rows per segment, 2**23 segment ids).
ROW_BITS = 40
ROW_MASK = (1 << ROW_BITS) - 1


class LiveIndex:
    """Live primary key -> packed location (``segment_id << 40 | row``), compactly."""

    __slots__ = ("str_keys", "auto_merge_min", "_dtype", "_keys", "_locs", "_delta", "_count", "_dead")

    def __init__(self, *, str_keys: bool = False, auto_merge_min: int | None = AUTO_MERGE_MIN) -> None:
        """``str_keys`` for a VARCHAR primary key, else INT64. ``auto_merge_min=None`` turns
        the automatic merge off (the caller then owns calling ``merge``)."""
        self.str_keys = str_keys
        self.auto_merge_min = auto_merge_min
        self._dtype = np.dtype(object) if str_keys else np.dtype(np.int64)
        self._keys: np.ndarray = np.empty(0, dtype=self._dtype)  # sorted, unique
        self._locs: np.ndarray = np.empty(0, dtype=np.int64)  # -1: tombstone
        self._delta: dict[Any, int] = {}
        self._count = 0  # live keys, base and delta together
        self._dead = 0  # tombstones in the base

    # -- size ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return self._count

    @property
    def delta_size(self) -> int:
        return len(self._delta)

    @property
    def base_size(self) -> int:
        """Entries in the sorted arrays, tombstones included."""
        return len(self._keys)

    @property
    def nbytes(self) -> int:
        """Approximate memory held. String and delta sizes are estimated from a sample, so
        this stays cheap enough for stats."""
        total = self._keys.nbytes + self._locs.nbytes
        n = len(self._keys)
        if self.str_keys and n:
            sample = self._keys[:: max(1, n // 1024)]
            total += int(sum(map(sys.getsizeof, sample)) * n / len(sample))
        d = self._delta
        if d:
            head = list(itertools.islice(d.items(), 64))
            per = sum(sys.getsizeof(k) + sys.getsizeof(v) for k, v in head) / len(head)
            total += sys.getsizeof(d) + int(per * len(d))
        return total

    # -- single keys --------------------------------------------------------------------

    def __contains__(self, k: Any) -> bool:
        return k in self._delta or self._base_live(k) >= 0

    def get(self, k: Any) -> int | None:
        loc = self._delta.get(k)
        if loc is not None:
            return loc
        i = self._base_live(k)
        return int(self._locs[i]) if i >= 0 else None

    def pop(self, k: Any) -> int | None:
        """Remove ``k``; return its location, or None if it was not live."""
        loc = self._delta.pop(k, None)
        if loc is not None:
            self._count -= 1
            return loc
        i = self._base_live(k)
        if i < 0:
            return None
        loc = int(self._locs[i])
        self._locs[i] = -1
        self._count -= 1
        self._dead += 1
        return loc

    # -- batches ------------------------------------------------------------------------

    def pop_many(self, keys: Sequence[Any]) -> tuple[list[Any], list[int]]:
        """Remove every live key of ``keys``; return the keys removed and their locations,
        in input order. A key repeated in the input is removed (and reported) once."""
        keys = keys if isinstance(keys, list) else list(keys)
        if len(keys) <= _SMALL:
            found: list[Any] = []
            locs: list[int] = []
            for k in keys:
                loc = self.pop(k)
                if loc is not None:
                    found.append(k)
                    locs.append(loc)
            return found, locs
        pos = self._base_positions(keys)
        at = np.flatnonzero(pos >= 0)
        if at.size:
            # First occurrence of each base entry, in input order.
            _, first = np.unique(pos[at], return_index=True)
            if first.size != at.size:
                at = np.sort(at[first])
        rows = pos[at]
        base_locs = self._locs[rows]
        self._locs[rows] = -1
        self._count -= at.size
        self._dead += at.size
        d = self._delta
        if not d:
            return [keys[i] for i in at.tolist()], base_locs.tolist()
        loc_at = dict(zip(at.tolist(), base_locs.tolist(), strict=True))
        for i, k in enumerate(keys):
            loc = d.pop(k, None)
            if loc is not None:
                loc_at[i] = loc
                self._count -= 1
        order = sorted(loc_at)
        return [keys[i] for i in order], [loc_at[i] for i in order]

    def first_present(self, keys: Sequence[Any]) -> Any | None:
        """The first key of ``keys`` that is live, or None (an insert refuses live keys)."""
        keys = keys if isinstance(keys, list) else list(keys)
        if len(keys) <= _SMALL:
            return next((k for k in keys if k in self), None)
        first = len(keys)
        d = self._delta
        if d:
            first = next((i for i, k in enumerate(keys) if k in d), first)
        if first and len(self._keys):
            hits = np.flatnonzero(self._base_positions(keys[:first]) >= 0)
            if hits.size:
                first = int(hits[0])
        return keys[first] if first < len(keys) else None

    def add_many(self, keys: Iterable[Any], locs: Iterable[int]) -> None:
        """Add keys that are not live (the caller checks: ``first_present`` for an insert,
        ``pop_many`` first for an upsert). Not checked here, because every write would pay
        a second lookup; adding a key live in the base would count it twice."""
        if isinstance(keys, np.ndarray):
            keys = keys.tolist()
        if isinstance(locs, np.ndarray):
            locs = locs.tolist()
        d = self._delta
        before = len(d)
        try:
            d.update(zip(keys, locs, strict=True))
        finally:
            self._count += len(d) - before
        m = self.auto_merge_min
        if m is not None and len(d) > max(m, len(self._keys) >> 4):
            self.merge()

    def repoint(self, keys: np.ndarray | Sequence[Any], locs: np.ndarray | Sequence[int]) -> int:
        """Give each key of ``keys`` that is live the matching new location (compaction moved
        its row); keys not live are ignored. Return how many keys were re-pointed."""
        k = self._as_keys(keys)
        new = np.asarray(locs, dtype=np.int64)
        if k.shape != new.shape:
            raise ValueError(f"repoint: {k.shape} keys but {new.shape} locations")
        pos = self._base_positions(k)
        live = pos >= 0
        self._locs[pos[live]] = new[live]
        n = int(np.count_nonzero(live))
        d = self._delta
        if d:
            rest = ~live
            for key, loc in zip(k[rest].tolist(), new[rest].tolist(), strict=True):
                if key in d:
                    d[key] = loc
                    n += 1
        return n

    def bulk_load(self, keys: np.ndarray | Sequence[Any], locs: np.ndarray | Sequence[int]) -> None:
        """Replace everything by ``keys -> locs`` (unique keys, any order; already sorted input,
        as recovery's lexsort yields, skips the sort)."""
        k = self._as_keys(keys)
        loc = np.asarray(locs, dtype=np.int64)
        if k.ndim != 1 or k.shape != loc.shape:
            raise ValueError(f"bulk_load: {k.shape} keys but {loc.shape} locations")
        if loc.size and int(loc.min()) < 0:
            raise ValueError("bulk_load: negative location")
        if len(k) > 1 and not np.all(k[1:] > k[:-1]):
            if self.str_keys:
                # Python's sort compares str directly; numpy's object argsort goes through
                # the generic rich comparison and takes ~2x as long.
                lst = k.tolist()
                order = np.fromiter(sorted(range(len(lst)), key=lst.__getitem__), dtype=np.intp, count=len(lst))
            else:
                order = np.argsort(k)
            k, loc = k[order], loc[order]
            if not np.all(k[1:] > k[:-1]):
                dup = k[1:][k[1:] == k[:-1]][0]
                raise ValueError(f"bulk_load: duplicate key {dup!r}")
        else:
            # Locs are written in place, so never share the caller's; keys are only read, but
            # a view would pin its owner (a segment's buffer) after the segment is gone.
            loc = loc.copy()
            if k.base is not None:
                k = k.copy()
        self._keys, self._locs = k, loc
        self._delta = {}
        self._count = len(k)
        self._dead = 0

    def merge(self) -> None:
        """Fold the delta into the base and drop tombstones: O(n + d log d)."""
        d = self._delta
        if not d and not self._dead:
            return
        bk, bl = self._keys, self._locs
        if self._dead:
            keep = bl >= 0
            bk, bl = bk[keep], bl[keep]
        if d:
            dk = np.fromiter(d.keys(), dtype=self._dtype, count=len(d))
            dl = np.fromiter(d.values(), dtype=np.int64, count=len(d))
            order = np.argsort(dk)
            dk, dl = dk[order], dl[order]
            at = bk.searchsorted(dk)
            bk, bl = np.insert(bk, at, dk), np.insert(bl, at, dl)
        self._keys, self._locs = bk, bl
        self._delta = {}
        self._dead = 0

    def to_dict(self) -> dict[Any, int]:
        """Every live key and its location (for tests and debugging: costs a dict)."""
        live = self._locs >= 0
        out = dict(zip(self._keys[live].tolist(), self._locs[live].tolist(), strict=True))
        out.update(self._delta)
        return out

    def __repr__(self) -> str:
        kind = "str" if self.str_keys else "int"
        return f"<LiveIndex {kind} live={self._count} base={len(self._keys)} delta={len(self._delta)}>"

    # -- internals ----------------------------------------------------------------------

    def _as_keys(self, keys: np.ndarray | Sequence[Any]) -> np.ndarray:
        if self.str_keys:
            if isinstance(keys, np.ndarray):
                if keys.dtype != object:
                    # A <U array has already cut trailing NULs off its keys ("a\0" == "a").
                    raise TypeError(f"str keys must be an object array of str, not {keys.dtype}")
                return keys
            return np.fromiter(keys, dtype=object, count=len(keys))
        return np.asarray(keys, dtype=np.int64)

    def _base_index(self, k: Any) -> int:
        """Index of the base entry equal to ``k`` (live or tombstone), or -1."""
        bk = self._keys
        n = len(bk)
        if not n:
            return -1
        try:
            i = int(bk.searchsorted(k))
            if i < n and bk[i] == k:
                return i
        except (TypeError, ValueError, OverflowError):
            pass  # a key of the wrong type is absent, as in a dict
        return -1

    def _base_live(self, k: Any) -> int:
        i = self._base_index(k)
        return i if i >= 0 and self._locs[i] >= 0 else -1

    def _base_positions(self, keys: Sequence[Any] | np.ndarray) -> np.ndarray:
        """For each key, the index of its live base entry, or -1; one searchsorted when the
        keys convert cleanly to the base's dtype, else key by key."""
        bk = self._keys
        n = len(bk)
        if not n:
            return np.full(len(keys), -1, dtype=np.intp)
        q: np.ndarray | None
        if self.str_keys:
            q = keys if isinstance(keys, np.ndarray) and keys.dtype == object else None
            if q is None:
                q = np.fromiter(keys, dtype=object, count=len(keys))
        else:
            q = np.asarray(keys)
            # Floats, ints past int64 (numpy infers float64 or object) and the like: key by key.
            if q.ndim != 1 or q.dtype.kind not in "iub":
                q = None
            elif q.dtype.kind == "u" and len(q) and int(q.max()) > np.iinfo(np.int64).max:
                q = None
            else:
                q = q.astype(np.int64, copy=False)
        if q is not None:
            try:
                i = np.minimum(bk.searchsorted(q), n - 1)
                hit = (bk[i] == q) & (self._locs[i] >= 0)
                return np.where(hit, i, -1)
            except (TypeError, ValueError, OverflowError):
                pass
        return np.fromiter((self._base_live(k) for k in keys), dtype=np.intp, count=len(keys))
