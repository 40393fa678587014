"""Filters the chaos checker can evaluate itself.

A read with a filter is only worth something if the checker knows which rows the filter
selects. So every filter the workload sends is built from a ``Pred``: a conjunction of
simple terms over the primary key ``id`` and the dynamic field ``batch`` (the number of the
write a row came from). ``filter()`` renders it in Milvus's filter language
(https://milvus.io/docs/boolean.md: comparisons, ``in`` lists, arithmetic such as ``%``);
``matches(key, batch)`` evaluates it in Python for one row version; ``key_range`` and
``ids`` say which keys can match at all, so the checker visits only those.

The terms are chosen to make a server decide visibility through its filtered paths, not
through a shortcut: a range or list of ids that covers the keys just written (the churned
and the upserted ones), ``id % m == r`` (a predicate no key index answers), and
``batch >= b`` (a predicate on the row's version, which an old and a new version of one
key answer differently).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any


@dataclass(frozen=True)
class Pred:
    lo: int | None = None  # id >= lo
    hi: int | None = None  # id < hi
    ids: tuple[int, ...] | None = None  # id in [...]
    mod: tuple[int, int] | None = None  # id % m == r
    batch_min: int | None = None  # batch >= batch_min

    def filter(self) -> str:
        """The filter string, in Milvus's language."""
        terms = []
        if self.lo is not None:
            terms.append(f"id >= {self.lo}")
        if self.hi is not None:
            terms.append(f"id < {self.hi}")
        if self.ids is not None:
            terms.append(f"id in [{', '.join(map(str, self.ids))}]")
        if self.mod is not None:
            terms.append(f"id % {self.mod[0]} == {self.mod[1]}")
        if self.batch_min is not None:
            terms.append(f"batch >= {self.batch_min}")
        return " and ".join(terms) or "id >= 0"

    def key_matches(self, key: int) -> bool:
        """Whether the key part of the filter selects ``key`` (whatever its version)."""
        if self.lo is not None and key < self.lo:
            return False
        if self.hi is not None and key >= self.hi:
            return False
        if self.ids is not None and key not in self.ids:
            return False
        return self.mod is None or key % self.mod[0] == self.mod[1]

    def matches(self, key: int, batch: int | None) -> bool:
        """Whether the row version (key, batch) is selected; ``None`` is an absent key."""
        if batch is None or not self.key_matches(key):
            return False
        return self.batch_min is None or batch >= self.batch_min

    def within(self, lo: int | None, hi: int | None) -> Pred:
        """This filter and ``lo <= id < hi`` (None: unbounded)."""
        if lo is not None and self.lo is not None:
            lo = max(lo, self.lo)
        if hi is not None and self.hi is not None:
            hi = min(hi, self.hi)
        return replace(self, lo=self.lo if lo is None else lo, hi=self.hi if hi is None else hi)

    def to_json(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items() if v is not None}

    @classmethod
    def from_json(cls, d: dict[str, Any] | None) -> Pred:
        d = dict(d or {})
        for k in ("ids", "mod"):
            if d.get(k) is not None:
                d[k] = tuple(d[k])
        return cls(**d)


def key_span(keys: list[int]) -> Pred:
    """A filter that selects exactly ``keys`` (and nothing else): a range when they are
    contiguous, an ``in`` list otherwise."""
    lo, hi = min(keys), max(keys) + 1
    if hi - lo == len(keys) and len(set(keys)) == len(keys):
        return Pred(lo=lo, hi=hi)
    return Pred(ids=tuple(sorted(set(keys))))
