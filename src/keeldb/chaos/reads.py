"""Every way the chaos run reads the collection, through pymilvus only, each returning its
answer in the form the history keeps (chaos/history.py): a count, rows as ``[key, batch]``
in the order returned, or search hits per query vector.

The workload's reader and the checker's passes use the same calls, so a read kind judged
during the run is judged after each fault too. Reads ask for Strong consistency (the model
holds a read to "sees every write acknowledged before it started"), except a read *pinned*
at a timestamp: it is sent as Milvus's iterators send their pages — ``iterator`` set and
``guarantee_timestamp`` the snapshot to read at — which Milvus (its proxy makes such a
request's MVCC timestamp the guarantee timestamp) and keeldb both read as of exactly that
timestamp. A server that reports no write timestamps (Milvus Lite answers 0) gets no
pinned reads.
"""

from __future__ import annotations

from typing import Any

from keeldb.chaos.predicates import Pred

COLLECTION = "chaos"
CALL_TIMEOUT = 5.0
ITERATOR_PAGE = 37  # small and odd: a range of a few hundred keys takes several pages
MOD = 7  # the modulus of ``id % m == r`` filters


def rows_of(res: Any) -> list[list[Any]]:
    return [[int(r["id"]), r.get("batch")] for r in res]


def count(c: Any, pred: Pred | None, timeout: float = CALL_TIMEOUT, pin_ts: int | None = None) -> int:
    kw: dict[str, Any] = {"iterator": "True", "guarantee_timestamp": pin_ts} if pin_ts else {"consistency_level": "Strong"}
    flt = pred.filter() if pred is not None else ""
    return int(c.query(COLLECTION, filter=flt, output_fields=["count(*)"], timeout=timeout, **kw)[0]["count(*)"])


def query(c: Any, pred: Pred, timeout: float = CALL_TIMEOUT, pin_ts: int | None = None, cap: int = 16384) -> list[list[Any]]:
    """Rows the filter selects. Pinned: with a limit (Milvus's iterator requests carry one),
    generous enough that a duplicate or an extra version still shows."""
    if pin_ts:
        kw: dict[str, Any] = {"iterator": "True", "guarantee_timestamp": pin_ts, "limit": cap}
    else:
        kw = {"consistency_level": "Strong"}
    return rows_of(c.query(COLLECTION, filter=pred.filter(), output_fields=["batch"], timeout=timeout, **kw))


def get(c: Any, ids: list[int], timeout: float = CALL_TIMEOUT) -> list[list[Any]]:
    return rows_of(c.get(COLLECTION, ids=ids, output_fields=["batch"], consistency_level="Strong", timeout=timeout))


def page(c: Any, pred: Pred, limit: int, offset: int, timeout: float = CALL_TIMEOUT) -> list[list[Any]]:
    res = c.query(COLLECTION, filter=pred.filter(), output_fields=["batch"], limit=limit, offset=offset,
                  consistency_level="Strong", timeout=timeout)  # fmt: skip
    return rows_of(res)


def iterate(c: Any, pred: Pred, batch_size: int = ITERATOR_PAGE, timeout: float = CALL_TIMEOUT) -> list[list[Any]]:
    """Every page of a ``query_iterator`` over the filter, concatenated (one snapshot)."""
    it = c.query_iterator(COLLECTION, batch_size=batch_size, filter=pred.filter(), output_fields=["batch"],
                          consistency_level="Strong", timeout=timeout)  # fmt: skip
    out: list[list[Any]] = []
    try:
        while page_rows := it.next():
            out.extend(rows_of(page_rows))
    finally:
        it.close()
    return out


def search(
    c: Any, vectors: list[list[float]], params: dict[str, Any], pred: Pred | None = None,
    limit: int = 10, timeout: float = CALL_TIMEOUT,
) -> list[list[list[Any]]]:  # fmt: skip
    res = c.search(COLLECTION, vectors, limit=limit, filter=pred.filter() if pred is not None else "",
                   output_fields=["batch"], search_params=params, consistency_level="Strong", timeout=timeout)  # fmt: skip
    return [[[int(h["id"]), h["entity"].get("batch")] for h in hits] for hits in res]
