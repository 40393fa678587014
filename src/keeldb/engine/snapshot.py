"""A snapshot: what one read sees — a timestamp and the segments that existed at it.

Its own module because every read path (query, search, count) takes one and none of them
needs the collection that made it: reads depend on this value, not on the write side.
"""

from __future__ import annotations

from dataclasses import dataclass

from keeldb.engine.segment import SealedSegment, SegmentView
from keeldb.schema import CollectionSchema


@dataclass
class Snapshot:
    """One consistent read: a timestamp and the segments that existed at it."""

    ts: int
    views: list[SegmentView]
    count: int | None  # live rows at ts, when known without a scan
    schema: CollectionSchema | None = None  # what the views' rows are (search picks executors by field kind)

    def live_count(self) -> int:
        if self.count is not None:
            return self.count
        return sum(v.count_visible(self.ts) for v in self.views)

    def sealed_only(self) -> Snapshot:
        """The same read without the growing (and flushing) segment: Milvus's
        ``ignore_growing``, which reads sealed segments only -- rows written since the last
        flush are not seen, nor is an older version those rows replaced (its delete is
        already applied, as in Milvus)."""
        views = [v for v in self.views if isinstance(v.segment, SealedSegment)]
        return Snapshot(self.ts, views, None, self.schema)
