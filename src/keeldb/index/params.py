"""Milvus index parameters, checked and translated to FAISS.

A user writes Milvus's names (``nlist``, ``nprobe``, ``m``, ``nbits``, ``M``,
``efConstruction``, ``ef``); this module is the one place that knows what FAISS calls them,
which values are legal, and what ``AUTOINDEX`` means. Everything is checked when the index
is *created*, so a bad parameter is a clear error at ``create_index`` and never a failed
background build later.

An :class:`IndexSpec` is the *resolved* description of how a segment's index is built. Its
``key`` is stored beside each index file in the manifest: a file whose key differs from the
collection's current spec (the index was dropped and created again with other parameters)
is simply not used, and the next manifest commit leaves it out.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from keeldb.errors import InvalidArgument

ANN_TYPES = ("IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW")
# Build parameters per type: name -> (default, low, high). Milvus's own ranges.
BUILD_PARAMS: dict[str, dict[str, tuple[int, int, int]]] = {
    "FLAT": {},
    "IVF_FLAT": {"nlist": (128, 1, 65536)},
    "IVF_SQ8": {"nlist": (128, 1, 65536)},
    "IVF_PQ": {"nlist": (128, 1, 65536), "m": (0, 1, 65536), "nbits": (8, 1, 16)},
    "HNSW": {"M": (16, 2, 2048), "efConstruction": (200, 1, 1 << 31)},
}
# AUTOINDEX: an IVF_FLAT whose nlist follows the segment's size (about 4 * sqrt(rows)) and
# whose default nprobe scans about 1/16 of the lists. IVF_FLAT rather than Milvus's HNSW:
# it builds in seconds instead of minutes on a small machine, keeps exact distances, and its
# memory is the vectors plus their ids, which the memory target of the issue needs.
AUTO_PROBE_FRACTION = 16
DEFAULT_NPROBE = 8


@dataclass(frozen=True)
class IndexSpec:
    """How one vector field's per-segment indexes are built."""

    index_type: str  # FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW, or AUTOINDEX
    metric: str  # L2, IP or COSINE
    dim: int
    build: dict[str, int] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return json.dumps([self.index_type, self.metric, self.dim, sorted(self.build.items())])

    @property
    def needs_file(self) -> bool:
        """FLAT searches the segment's own (memory-mapped) vectors: no second copy."""
        return self.index_type != "FLAT"

    def nlist_for(self, rows: int) -> int:
        """Lists for a segment of ``rows`` rows: the asked-for nlist, but never so many that
        k-means has fewer than ~39 points per centroid (FAISS's own warning threshold)."""
        if self.index_type == "AUTOINDEX":
            want = 1 << max(4, round(math.log2(max(1.0, 4 * math.sqrt(rows)))))
        else:
            want = self.build["nlist"]
        return max(1, min(want, rows // 39))

    def factory(self, rows: int) -> str:
        """The FAISS index_factory string for a segment of ``rows`` rows."""
        t = self.index_type
        if t in ("IVF_FLAT", "AUTOINDEX"):
            return f"IVF{self.nlist_for(rows)},Flat"
        if t == "IVF_SQ8":
            return f"IVF{self.nlist_for(rows)},SQ8"
        if t == "IVF_PQ":
            return f"IVF{self.nlist_for(rows)},PQ{self.build['m']}x{self.build['nbits']}"
        if t == "HNSW":
            return f"HNSW{self.build['M']}"
        return "Flat"


def _int_param(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise InvalidArgument(f"index parameter {name} must be an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"index parameter {name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise InvalidArgument(f"index parameter {name} must be in [{low}, {high}], got {value}")
    return value


def index_spec(index_type: str, metric: str, dim: int, params: dict[str, Any]) -> IndexSpec:
    """Check a Milvus index definition and resolve its defaults. Unknown keys are ignored
    (Milvus accepts and ignores them too, e.g. ``mmap.enabled``)."""
    t = index_type.upper()
    if t not in BUILD_PARAMS and t != "AUTOINDEX":
        raise InvalidArgument(f"unknown vector index type {index_type!r}; use one of {(*BUILD_PARAMS, 'AUTOINDEX')}")
    build: dict[str, int] = {}
    for name, (default, low, high) in BUILD_PARAMS.get(t, {}).items():
        build[name] = _int_param(name, params[name], low, high) if name in params else default
    if t == "IVF_PQ":
        if build["m"] == 0:
            # Milvus requires m; we pick the largest divisor of dim up to dim / 4 (4-dim
            # subvectors), a usual choice, rather than refuse.
            build["m"] = max(d for d in range(1, max(1, dim // 4) + 1) if dim % d == 0)
        if dim % build["m"]:
            raise InvalidArgument(f"IVF_PQ: dimension {dim} is not a multiple of m={build['m']}")
    return IndexSpec(t, metric.upper(), dim, build)


@dataclass(frozen=True)
class SearchKnobs:
    """Search-time parameters, after checking: nprobe for IVF, ef for HNSW (None = default)."""

    nprobe: int | None = None
    ef: int | None = None


def search_knobs(params: dict[str, Any], limit: int) -> SearchKnobs:
    nprobe = ef = None
    if "nprobe" in params:
        nprobe = _int_param("nprobe", params["nprobe"], 1, 65536)
    if "ef" in params:
        ef = _int_param("ef", params["ef"], 1, 32768)
        if ef < limit:
            raise InvalidArgument(f"search parameter ef ({ef}) must be at least the top-k ({limit})")
    return SearchKnobs(nprobe, ef)
