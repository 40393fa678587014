"""Workload variants (``keeldb chaos --workload``): what the writers do.

A ``Mix`` says which writers run and how big their batches are; a variant is a small change
to a mix, and a comma list applies them left to right (``upsert-only,big-batches``). Each
exists because some bug shows under it and hides under the others:

- ``mixed`` (the default): upserts of 200 cycling over the base keys, and a churner that
  inserts 20 extra keys and deletes them again — the seed scenario;
- ``insert-only``: only inserts of fresh keys, no upsert, no delete. Recovery and
  compaction never see a delete here, so nothing can mask a row version that is present
  twice (a compaction committed in two steps makes such a collection unopenable);
- ``delete-heavy``: a deleter owns half the base keys and deletes them a batch at a time
  (by ids and by filter, alternately), then upserts them back: deletes of flushed rows,
  delete files, compaction of mostly-deleted segments;
- ``upsert-only``: the upserter alone (``--no-churn``): count(*) must stay exactly N;
- ``big-batches``: every batch 25 times larger (upserts of 5,000): a write that spans a
  log group commit, a flush and a segment;
- ``partial-update``: the upserter writes with ``upsert(partial_update=True)``, so each
  batch goes through the server's read-merge-log path (the current rows read under the
  write lock and logged merged, as one record) instead of a plain upsert. Its rows carry
  every field the checker reads, so the model is the upsert's.

- ``ttl``: the collection has a TTL (``collection.ttl.seconds``, TTL_SECONDS) and an
  inserter adds fresh keys beside the mix's writers: versions leave by the server's clock
  while everything else runs — fresh keys a few seconds after their insert, base keys
  whenever the upserter takes longer than the TTL to come back to them — so reads,
  flushes, compactions (which reclaim expired rows) and recovery all meet expiry. The
  model judges it in the server's own time, bounded by the write timestamps it reported
  (chaos/expiry.py); not for the cluster target (several oracles: no such bound).

``all`` (or ``--long``) runs every variant in turn, each a run of its own.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

DEFAULT = "mixed"
# Short enough that fresh keys expire within a fault interval, long enough that a key is
# usually read back (pinned, filtered) before it goes.
TTL_SECONDS = 3


@dataclass(frozen=True)
class Mix:
    upsert_batch: int = 200  # rows per upsert, cycling over the upserter's base keys; 0: none
    churn_group: int = 20  # extra keys a churn insert adds and its delete removes; 0: none
    insert_batch: int = 0  # rows per insert of fresh keys (insert-only); 0: none
    delete_group: int = 0  # base keys the deleter deletes, then upserts back; 0: none
    partial_update: bool = False  # the upserter's writes are partial updates
    ttl_seconds: int = 0  # the collection's TTL; 0: none

    @property
    def batch(self) -> int:
        """The main writer's batch: what the checker calls "a batch" in its messages."""
        return self.upsert_batch or self.insert_batch or self.delete_group or self.churn_group or 1


def _bigger(m: Mix, factor: int = 25) -> Mix:
    return replace(
        m,
        upsert_batch=factor * m.upsert_batch,
        churn_group=factor * m.churn_group,
        insert_batch=factor * m.insert_batch,
        delete_group=factor * m.delete_group,
    )


VARIANTS: dict[str, Callable[[Mix], Mix]] = {
    "mixed": lambda m: m,
    "insert-only": lambda m: Mix(upsert_batch=0, churn_group=0, insert_batch=m.upsert_batch or m.batch, delete_group=0),
    "delete-heavy": lambda m: replace(m, delete_group=m.upsert_batch or m.batch),
    "upsert-only": lambda m: replace(m, churn_group=0, insert_batch=0, delete_group=0),
    "big-batches": _bigger,
    "partial-update": lambda m: replace(m, partial_update=True),
    "ttl": lambda m: replace(m, ttl_seconds=TTL_SECONDS, insert_batch=m.insert_batch or m.upsert_batch or m.batch),
}
ALL = "all"


def mix_of(spec: str) -> Mix:
    """The mix a ``--workload`` value names: one variant or a comma list of them."""
    m = Mix()
    for name in (s.strip() for s in spec.split(",")):
        if name not in VARIANTS:
            raise ValueError(f"--workload: unknown variant {name!r}; choose from {', '.join(VARIANTS)} or {ALL}")
        m = VARIANTS[name](m)
    if not (m.upsert_batch or m.churn_group or m.insert_batch or m.delete_group):
        raise ValueError(f"--workload {spec!r} leaves no writer")
    return m


def expand(spec: str) -> list[str]:
    """The runs a ``--workload`` value asks for: ``all`` is every variant in turn."""
    if spec.strip() == ALL:
        return list(VARIANTS)
    mix_of(spec)  # refuse a bad name before anything starts
    return [spec]
