"""Collection TTL (``collection.ttl.seconds``): a row version is visible only while it is
younger than the TTL, measured from its write timestamp.

TTL is a *visibility rule*, not a background delete. A snapshot at time S sees a version
iff ``ts <= S < deleted_at`` (MVCC) and ``physical(ts) + ttl > physical(S)``: the age is
taken against the snapshot's own timestamp, so every read at S -- count(*), query, search,
get, iterators pinned to S -- agrees on which rows have expired, at every instant, with
nothing written when a row expires (so nothing to lose in a crash, and recovery has no
expiry to redo). Three consequences, each handled where it arises:

- ``count(*)`` cannot come from the live-key count (a live key may have expired): with a
  TTL every count is a vectorised scan of the ``ts``/``deleted_at`` arrays;
- the live-key index still holds expired keys: an ``insert`` of an expired key is
  accepted and logged as an UPSERT record (ending the expired version in the same record
  and timestamp, so the key never has two versions), a ``delete`` of one reports nothing
  deleted, a partial update of one is an insert;
- the snapshot timestamp must track the clock, or rows would never expire on a collection
  nobody writes to: with a TTL, a snapshot taken while no write is in flight first moves
  the visible timestamp to a fresh oracle timestamp (``Collection.snapshot``).

Compaction reclaims expired versions: a version expired at the compaction horizon
(``physical(ts) + ttl <= physical(horizon)``) is dropped like a deleted one, and its key
leaves the live-key index in the same swap (``compaction.py``). A crash anywhere in that is
covered by the compaction crash points: before its commit the inputs are the truth, after
it the output is, and an expired version is invisible in both.
"""

from __future__ import annotations

from typing import Any

from keeldb.errors import InvalidArgument
from keeldb.storage.oracle import LOGICAL_BITS

PROPERTY = "collection.ttl.seconds"
MAX_TTL_SECONDS = 3155760000  # Milvus's common.MaxTTLSeconds (100 years)
_LOGICAL_MAX = (1 << LOGICAL_BITS) - 1


def parse(value: Any) -> int:
    """A TTL property value as whole seconds (0 = none), refused in Milvus's words."""
    try:
        seconds = int(str(value).strip())
    except ValueError:
        raise InvalidArgument("collection TTL is not a valid positive integer") from None
    if seconds < -1 or seconds > MAX_TTL_SECONDS:
        raise InvalidArgument(f"collection TTL is out of range, expect [-1, {MAX_TTL_SECONDS}], got {seconds}")
    return max(seconds, 0)


def expire_before(snapshot_ts: int, ttl_ms: int) -> int:
    """The newest timestamp expired at ``snapshot_ts``: versions with ``ts`` at or below it
    are invisible (0 when there is no TTL, which no timestamp is at or below)."""
    if ttl_ms <= 0:
        return 0
    cut = (snapshot_ts >> LOGICAL_BITS) - ttl_ms
    return (cut << LOGICAL_BITS) | _LOGICAL_MAX if cut > 0 else 0
