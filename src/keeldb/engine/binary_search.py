"""The executor for BINARY_VECTOR fields: the dense executor's pipeline (index with the
selection as a bitmap, or an exact block scan) with bit distances — HAMMING, the number of
differing bits, and JACCARD, 1 - |a AND b| / |a OR b| — both smaller-is-closer, both exact
in a scan: per block, a popcount of (query XOR rows) or (query AND rows) over the packed
bytes, 8 bytes at a time where the row width allows.
"""

from __future__ import annotations

import numpy as np

from keeldb.engine.dense_search import DenseSearch
from keeldb.engine.executor import SearchRequest
from keeldb.fields.binary_vector import bit_distances, popcount_rows


class BinarySearch(DenseSearch):
    def prepare(self, req: SearchRequest) -> np.ndarray:
        return np.ascontiguousarray(req.queries, dtype=np.uint8)

    @staticmethod
    def score(x: np.ndarray, q: np.ndarray, metric: str, x_sq: np.ndarray | None) -> np.ndarray:
        """(nq, rows) distances of a block of packed rows."""
        bits = popcount_rows(np.ascontiguousarray(x)) if metric == "JACCARD" else None
        return np.stack([bit_distances(qi, x, metric, bits) for qi in q]) if len(q) else np.empty((0, len(x)), np.float32)
