"""A sealed segment's visibility mask, kept between searches while it cannot have changed.

A read without a filter or partition selection may return exactly the rows visible at its
snapshot. For a sealed segment with deletes that mask -- ``(ts <= s) & (deleted_at > s)``
over every row, then packed into the bitmap FAISS takes -- cost more than the index walk
itself at a million rows, and it was recomputed by every search although it changes only
when a delete lands or the snapshot passes one.

So each sealed segment keeps (in ``Segment.read_cache``) its stamped rows sorted by stamp,
found once per version of its delete mask (``Segment.stamps``, bumped after each delete's
stamps are written, read here BEFORE the scan, as ``bm25_stats`` does), and the last mask
it handed out with the number of stamps at or before that snapshot. At a snapshot at or
after every row was written (the common case: ``max_ts <= s``), the invisible rows are
exactly the stamped rows whose stamp is ``<= s``: the first ``searchsorted(stamps, s)`` of
them. The same version and the same count mean the same rows, so the same mask. Anything
else -- a newer delete (a new version), a snapshot on the other side of a stamp (another
count), rows newer than the snapshot, a collection TTL (expiry moves with the clock), the
growing segment (still appended to) -- is computed from the rows as before.

Masks handed out are read-only: every search of that segment shares them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from keeldb.engine.segment import NEVER, SealedSegment, SegmentView

__all__ = ["packed", "visible_mask"]


@dataclass(frozen=True)
class _Stamped:
    """The segment's stamped rows at one version of its delete mask, ordered by stamp."""

    version: int
    stamps: np.ndarray  # sorted ascending
    rows: np.ndarray  # the row of each stamp


@dataclass(frozen=True)
class _Mask:
    """The mask for snapshots that see the first ``hidden`` stamps of ``version``."""

    version: int
    hidden: int
    mask: np.ndarray | None  # None: every row is visible
    nsel: int
    bits: np.ndarray | None  # the mask packed little-endian (FAISS's IDSelectorBitmap)


_STAMPED = "visibility.stamped"
_MASK = "visibility.mask"


def visible_mask(view: SegmentView, ts: int) -> tuple[np.ndarray | None, int] | None:
    """(mask, selected rows) of the rows of ``view`` visible at ``ts`` -- mask None when all
    are -- from the segment's cache; None when the cache cannot describe this view (the
    caller computes the mask from the rows)."""
    seg = view.segment
    if (
        not isinstance(seg, SealedSegment)  # the growing segment is still appended to
        or view.expire_before  # a collection TTL: expiry moves with the clock
        or view.num_rows != seg.num_rows
        or seg.max_ts > ts  # rows newer than the snapshot
    ):
        return None
    version = seg.stamps  # BEFORE reading deleted_at (Segment.stamps)
    entry = seg.read_cache.get(_MASK)
    stamped = seg.read_cache.get(_STAMPED)
    if stamped is None or stamped.version != version:
        rows = np.flatnonzero(seg.deleted_at != NEVER)
        stamps = seg.deleted_at[rows]
        order = np.argsort(stamps, kind="stable")
        stamped = _Stamped(version, stamps[order], rows[order])
        seg.read_cache[_STAMPED] = stamped
    hidden = int(np.searchsorted(stamped.stamps, ts, side="right"))
    if entry is not None and entry.version == version and entry.hidden == hidden:
        return entry.mask, entry.nsel
    if hidden == 0:
        entry = _Mask(version, 0, None, view.num_rows, None)
    else:
        mask = np.ones(view.num_rows, dtype=bool)
        mask[stamped.rows[:hidden]] = False
        mask.flags.writeable = False
        nsel = int(np.count_nonzero(mask))
        entry = _Mask(version, hidden, mask, nsel, None)
    seg.read_cache[_MASK] = entry
    return entry.mask, entry.nsel


def packed(view: SegmentView, mask: np.ndarray) -> np.ndarray:
    """``mask`` as a little-endian packed bitmap; kept with the segment's cached mask when
    ``mask`` is that mask (read-only, so it is the one ``visible_mask`` handed out)."""
    entry = view.segment.read_cache.get(_MASK)
    if entry is None or entry.mask is not mask:
        return np.packbits(mask, bitorder="little")
    if entry.bits is None:
        bits = np.packbits(mask, bitorder="little")
        bits.flags.writeable = False
        # Replaced whole (another search may hold the old entry): same mask, now with bits.
        view.segment.read_cache[_MASK] = _Mask(entry.version, entry.hidden, entry.mask, entry.nsel, bits)
        return bits
    return entry.bits
