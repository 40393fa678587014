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
import re
from dataclasses import dataclass, field
from typing import Any

from keeldb.datatype import DataType
from keeldb.errors import InvalidArgument
from keeldb.fields import vector_kind_of
from keeldb.fields.json import JSON_CAST_FUNCTIONS

# Milvus 2.6's quantized kinds (``index/quantized.py`` builds them): graphs over compressed
# codes and RaBitQ / ScaNN-style IVF, each optionally re-ranked by a finer copy.
QUANTIZED_TYPES = ("HNSW_SQ", "HNSW_PQ", "HNSW_PRQ", "IVF_RABITQ", "SCANN")
ANN_TYPES = ("IVF_FLAT", "IVF_SQ8", "IVF_PQ", "HNSW", *QUANTIZED_TYPES)
BINARY_TYPES = ("BIN_FLAT", "BIN_IVF_FLAT")
SPARSE_TYPES = ("SPARSE_INVERTED_INDEX", "SPARSE_WAND")
# The index every enable_match VARCHAR field gets without create_index (index/text_index.py).
TEXT_MATCH = "TEXT_MATCH"
# What a spec records of the field's data type (``IndexSpec.vector``); FLOAT_VECTOR is
# "float", and leaves the spec's key as it was before other types existed.
VECTOR_NAMES = {
    DataType.FLOAT_VECTOR: "float",
    DataType.FLOAT16_VECTOR: "float16",
    DataType.BFLOAT16_VECTOR: "bfloat16",
    DataType.INT8_VECTOR: "int8",
    DataType.BINARY_VECTOR: "binary",
    DataType.SPARSE_FLOAT_VECTOR: "sparse",
}
# Index types Milvus builds for a data type that keeldb does not (yet): refused as a
# missing feature, not as a wrong combination.
_MILVUS_ONLY = {
    "float": ("DISKANN", "GPU_IVF_FLAT", "GPU_IVF_PQ", "GPU_CAGRA", "GPU_BRUTE_FORCE"),
    "binary": ("MINHASH_LSH",),
}
_MILVUS_ONLY["float16"] = _MILVUS_ONLY["bfloat16"] = (*_MILVUS_ONLY["float"], "IVF_RABITQ", "SCANN")
SPARSE_ALGOS = ("TAAT_NAIVE", "DAAT_WAND", "DAAT_MAXSCORE")
# Build parameters per type: name -> (default, low, high). Milvus's own ranges.
BUILD_PARAMS: dict[str, dict[str, tuple[int, int, int]]] = {
    "FLAT": {},
    "IVF_FLAT": {"nlist": (128, 1, 65536)},
    "IVF_SQ8": {"nlist": (128, 1, 65536)},
    "IVF_PQ": {"nlist": (128, 1, 65536), "m": (0, 1, 65536), "nbits": (8, 1, 16)},
    "HNSW": {"M": (16, 2, 2048), "efConstruction": (200, 1, 1 << 31)},
    "HNSW_SQ": {"M": (16, 2, 2048), "efConstruction": (200, 1, 1 << 31)},
    # nbits: Milvus allows up to 24; 2^nbits centroids per sub-space are trained here, so
    # keeldb stops at 16 (65,536 centroids) and says so.
    "HNSW_PQ": {"M": (16, 2, 2048), "efConstruction": (200, 1, 1 << 31), "m": (0, 1, 65536), "nbits": (8, 1, 16)},
    "HNSW_PRQ": {"M": (16, 2, 2048), "efConstruction": (200, 1, 1 << 31), "m": (0, 1, 65536),
                 "nbits": (8, 1, 16), "nrq": (2, 1, 16)},  # fmt: skip
    "IVF_RABITQ": {"nlist": (128, 1, 65536)},
    "SCANN": {"nlist": (128, 1, 65536)},
    "BIN_FLAT": {},
    "BIN_IVF_FLAT": {"nlist": (128, 1, 65536)},
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

    index_type: str  # FLAT, IVF_FLAT, IVF_SQ8, IVF_PQ, HNSW, BIN_*, SPARSE_*, or AUTOINDEX
    metric: str  # L2, IP, COSINE, HAMMING, JACCARD
    dim: int  # 0 for sparse vectors
    build: dict[str, Any] = field(default_factory=dict)
    vector: str = "float"  # the field's data type (VECTOR_NAMES)
    # The index's ``mmap.enabled`` property: True opens saved files memory-mapped, False
    # reads them into memory, None follows KEELDB_INDEX_MMAP (default: mapped). How a file
    # is opened, not what it holds: not part of ``key`` (no rebuild), but part of equality,
    # so a changed setting reopens the files (engine/index_builder.py, cluster replicas).
    mmap: bool | None = None

    @property
    def key(self) -> str:
        parts: list[Any] = [self.index_type, self.metric, self.dim, sorted(self.build.items())]
        if self.vector != "float":  # keys of FLOAT_VECTOR indexes are what they always were
            parts.append(self.vector)
        return json.dumps(parts)

    @property
    def needs_file(self) -> bool:
        """FLAT on float32 vectors searches the segment's own (memory-mapped) vectors: no
        second copy. Every other type's FLAT is a FAISS flat index over 2-byte / 1-byte /
        1-bit codes, which FAISS scans with SIMD instead of widening rows to float32."""
        return self.index_type != "FLAT" or self.vector != "float"

    @property
    def half(self) -> str | None:
        """FAISS's scalar quantizer that keeps this type's 2-byte values as they are."""
        return {"float16": "SQfp16", "bfloat16": "SQbf16"}.get(self.vector)

    def nlist_for(self, rows: int) -> int:
        """Lists for a segment of ``rows`` rows: the asked-for nlist, but never so many that
        k-means has fewer than ~39 points per centroid (FAISS's own warning threshold)."""
        if self.index_type == "AUTOINDEX":
            want = 1 << max(4, round(math.log2(max(1.0, 4 * math.sqrt(rows)))))
        else:
            want = self.build["nlist"]
        return max(1, min(want, rows // 39))

    def factory(self, rows: int) -> str:
        """The FAISS index_factory string for a segment of ``rows`` rows. Half-precision
        types keep their 2-byte values in FAISS's fp16 / bf16 scalar quantizers (decoded
        exactly); INT8 keeps its bytes in ``SQ8_direct_signed`` (decoded exactly), except
        under COSINE, whose normalised vectors are not integers: they are kept as fp16."""
        t = self.index_type
        codes = self.half or "Flat"
        if self.vector == "int8":
            codes = "SQfp16" if self.metric == "COSINE" else "SQ8_direct_signed"
        if t in ("IVF_FLAT", "AUTOINDEX"):
            return f"IVF{self.nlist_for(rows)},{codes}"
        if t == "IVF_SQ8":
            return f"IVF{self.nlist_for(rows)},SQ8"
        if t == "IVF_PQ":
            return f"IVF{self.nlist_for(rows)},PQ{self.build['m']}x{self.build['nbits']}"
        if t == "HNSW":
            return f"HNSW{self.build['M']}" + (f",{codes}" if codes != "Flat" else "")
        return codes


MMAP_KEY = "mmap.enabled"
# Go's strconv.ParseBool, which Milvus reads ``mmap.enabled`` with (pymilvus sends str(True)).
_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def parse_go_bool(key: str, value: Any) -> bool:
    """A boolean index property as Milvus reads it (InvalidArgument with Milvus's words)."""
    if isinstance(value, bool):
        return value
    text = str(value)
    if text in _GO_TRUE or text in _GO_FALSE:
        return text in _GO_TRUE
    raise InvalidArgument(f"invalid {key} value: {text}, expected: true, false")


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


def _float_param(name: str, value: Any, low: float, high: float, *, high_open: bool = True) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidArgument(f"parameter {name} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise InvalidArgument(f"parameter {name} must be a number, got {value!r}")
    if not low <= value <= high or (high_open and value == high):
        shown = f"[{low}, {high})" if high_open else f"[{low:f}, {high:f}]"
        raise InvalidArgument(f"param '{name}' ({value}) should be in range {shown}")
    return float(value)


def text_match_spec(analyzer_params: dict[str, Any]) -> IndexSpec:
    """The text-match index of an ``enable_match`` field analyzed with ``analyzer_params``:
    a spec like a vector index's, so the builder, the manifest and recovery treat both
    alike. The params are part of the key (as JSON with sorted keys: the catalog stores
    them sorted, a new schema in the order given), so postings built with another analyzer
    are never used."""
    text = json.dumps(analyzer_params, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return IndexSpec(TEXT_MATCH, "", 0, {"analyzer": text}, "varchar")


def text_analyzer_params(spec: IndexSpec) -> dict[str, Any]:
    """The analyzer params a text-match spec was made with."""
    params: dict[str, Any] = json.loads(spec.build["analyzer"])
    return params


def index_spec(
    index_type: str, metric: str, dim: int, params: dict[str, Any], dtype: DataType = DataType.FLOAT_VECTOR
) -> IndexSpec:
    """Check a Milvus index definition for a field of ``dtype`` and resolve its defaults:
    the index type and metric must be ones Milvus allows for the type (its messages), the
    parameters in Milvus's ranges. Unknown keys are ignored (Milvus accepts and ignores them
    too, e.g. ``mmap.enabled``)."""
    kind = vector_kind_of(dtype)
    vector = VECTOR_NAMES[dtype]
    t = index_type.upper()
    if t == "BRUTE_FORCE" and "FLAT" in kind.index_types:
        t = "FLAT"  # Milvus Lite's name for an exact search; the catalog keeps the name given
    m = metric.upper()
    if t not in kind.index_types:
        if t in _MILVUS_ONLY.get(vector, ()):
            raise InvalidArgument(
                f"unknown vector index type {index_type!r} for {dtype.name}: Milvus builds it, keeldb does "
                f"not; use one of {kind.index_types}"
            )
        if t not in (*BUILD_PARAMS, *SPARSE_TYPES, "AUTOINDEX"):
            raise InvalidArgument(
                f"unknown vector index type {index_type!r} for {dtype.name}; use one of {kind.index_types}"
            )
        raise InvalidArgument(
            f"data type {kind.milvus_name} can't build with this index {t}: "
            "invalid parameter[expected=valid index params][actual=invalid index params]"
        )
    if m not in kind.metrics:
        raise InvalidArgument(
            f"metric type {m} not found or not supported, supported: [{' '.join(kind.metrics)}]"
        )
    if vector == "sparse":
        return _sparse_spec(t, m, params)
    if vector == "int8" and t == "AUTOINDEX":
        t = "HNSW"  # Milvus builds HNSW on INT8 vectors, and nothing else
    build: dict[str, Any] = {}
    for name, (default, low, high) in BUILD_PARAMS.get(t, {}).items():
        build[name] = _int_param(name, params[name], low, high) if name in params else default
    if "m" in build:  # IVF_PQ, HNSW_PQ, HNSW_PRQ
        if build["m"] == 0:
            # Milvus requires m; we pick the largest divisor of dim up to dim / 4 (4-dim
            # subvectors), a usual choice, rather than refuse.
            build["m"] = max(d for d in range(1, max(1, dim // 4) + 1) if dim % d == 0)
        if dim % build["m"]:
            raise InvalidArgument(f"{t}: dimension {dim} is not a multiple of m={build['m']}")
    if t in QUANTIZED_TYPES:
        build.update(_quantized_params(t, params))
    return IndexSpec(t, m, dim, build, vector)


# Code precisions, coarsest first: a refine copy must be finer than the codes it re-ranks.
SQ_TYPES = ("SQ4U", "SQ6", "SQ8", "FP16", "BF16")
REFINE_TYPES = ("SQ6", "SQ8", "FP16", "BF16", "FP32")
_PRECISION = {"SQ4U": 4, "SQ6": 6, "SQ8": 8, "FP16": 16, "BF16": 16, "FP32": 32}


def _bool_param(name: str, value: Any) -> bool:
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    if not isinstance(value, bool):
        raise InvalidArgument(f"index parameter {name} must be true or false, got {value!r}")
    return value


def _choice_param(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.upper() not in allowed:
        raise InvalidArgument(f"index parameter {name} must be one of {', '.join(allowed)}, got {value!r}")
    return value.upper()


def _quantized_params(t: str, params: dict[str, Any]) -> dict[str, Any]:
    """The string and boolean build parameters of Milvus 2.6's quantized kinds: ``sq_type``
    (HNSW_SQ, default SQ8), ``refine`` + ``refine_type`` (the finer copy candidates are
    re-ranked with; default SQ8 as knowhere's), ``with_raw_data`` (SCANN, default true:
    its re-ranking copy is the raw vectors)."""
    out: dict[str, Any] = {}
    if t == "HNSW_SQ":
        out["sq_type"] = _choice_param("sq_type", params.get("sq_type", "SQ8"), SQ_TYPES)
    if t == "SCANN":
        out["with_raw_data"] = _bool_param("with_raw_data", params.get("with_raw_data", True))
        return out
    refine = _bool_param("refine", params.get("refine", False))
    if not refine:
        if "refine_type" in params:
            raise InvalidArgument("index parameter refine_type needs refine set to true")
        return out
    rtype = _choice_param("refine_type", params.get("refine_type", "SQ8"), REFINE_TYPES)
    if t == "HNSW_SQ" and _PRECISION[rtype] <= _PRECISION[out["sq_type"]]:
        raise InvalidArgument(
            f"refine_type {rtype} must be finer than sq_type {out['sq_type']} (the copy candidates are re-ranked with)"
        )
    out["refine_type"] = rtype
    return out


def _sparse_spec(t: str, metric: str, params: dict[str, Any]) -> IndexSpec:
    """SPARSE_INVERTED_INDEX / SPARSE_WAND (AUTOINDEX is the former): the search algorithm
    (DAAT_MAXSCORE by default, DAAT_WAND for SPARSE_WAND, as in Milvus) and the share of
    the smallest weights left out of the postings at build time (0: none, exact)."""
    if t == "AUTOINDEX":
        t = "SPARSE_INVERTED_INDEX"
    algo = params.get("inverted_index_algo", "DAAT_WAND" if t == "SPARSE_WAND" else "DAAT_MAXSCORE")
    if not isinstance(algo, str) or algo.upper() not in SPARSE_ALGOS:
        raise InvalidArgument(f"sparse inverted index algo {algo} not found or not supported, supported: {list(SPARSE_ALGOS)}")
    build: dict[str, Any] = {"inverted_index_algo": algo.upper()}
    drop = _float_param("drop_ratio_build", params.get("drop_ratio_build", 0.0), 0.0, 1.0)
    if drop:
        build["drop_ratio_build"] = drop
    for name in BM25_PARAMS:
        if name in params:
            if metric != "BM25":
                raise InvalidArgument(f"index parameter {name} applies to metric type BM25 only, not {metric}")
            build[name] = bm25_param(name, params[name])
    return IndexSpec(t, metric, 0, build, "sparse")


# BM25's knobs (index build params, and search params over the index's): knowhere's ranges.
BM25_PARAMS = {"bm25_k1": (0.0, 3.0), "bm25_b": (0.0, 1.0)}


def bm25_param(name: str, value: Any) -> float:
    """``bm25_k1`` in [0, 3] or ``bm25_b`` in [0, 1], checked."""
    low, high = BM25_PARAMS[name]
    return _float_param(name, value, low, high, high_open=False)


@dataclass(frozen=True)
class SearchKnobs:
    """Search-time parameters, after checking: nprobe for IVF, ef for HNSW, and for sparse
    indexes the share of the query's smallest weights left out and MaxScore's bound scale
    (None = default)."""

    nprobe: int | None = None
    ef: int | None = None
    drop_ratio_search: float | None = None
    dim_max_score_ratio: float | None = None
    # Quantized kinds: candidates re-ranked per hit (``refine_k``, a factor >= 1; SCANN's
    # ``reorder_k``, a count >= k), and RaBitQ's query bits (0 = float queries).
    refine_k: float | None = None
    reorder_k: int | None = None
    rbq_query_bits: int | None = None


# The search parameters keeldb reads (Milvus's names); others are ignored, as Milvus does.
SEARCH_PARAMS = ("nprobe", "ef", "drop_ratio_search", "dim_max_score_ratio", "bm25_k1", "bm25_b", "analyzer_name",
                 "refine_k", "reorder_k", "rbq_query_bits")  # fmt: skip


def search_knobs(params: dict[str, Any], limit: int) -> SearchKnobs:
    nprobe = ef = drop = ratio = None
    if "nprobe" in params:
        nprobe = _int_param("nprobe", params["nprobe"], 1, 65536)
    if "ef" in params:
        ef = _int_param("ef", params["ef"], 1, 32768)
        if ef < limit:
            raise InvalidArgument(f"search parameter ef ({ef}) must be at least the top-k ({limit})")
    if "drop_ratio_search" in params:
        drop = _float_param("drop_ratio_search", params["drop_ratio_search"], 0.0, 1.0)
    if "dim_max_score_ratio" in params:
        ratio = _float_param("dim_max_score_ratio", params["dim_max_score_ratio"], 0.5, 1.3, high_open=False)
    refine_k = reorder_k = qbits = None
    if "refine_k" in params:
        refine_k = _float_param("refine_k", params["refine_k"], 1.0, 1024.0, high_open=False)
    if "reorder_k" in params:
        reorder_k = _int_param("reorder_k", params["reorder_k"], 1, 1 << 20)
        if reorder_k < limit:
            raise InvalidArgument(f"search parameter reorder_k ({reorder_k}) must be at least the top-k ({limit})")
    if "rbq_query_bits" in params:
        qbits = _int_param("rbq_query_bits", params["rbq_query_bits"], 0, 8)
    return SearchKnobs(nprobe, ef, drop, ratio, refine_k, reorder_k, qbits)


# -- scalar indexes ------------------------------------------------------------------------------

# The scalar kinds (index/scalar_index.py, index/ngram_index.py). Each answers filters,
# never vector searches; AUTOINDEX on a scalar field resolves to one of them (``_AUTO_SCALAR``).
SCALAR_TYPES = ("STL_SORT", "INVERTED", "BITMAP", "TRIE", "NGRAM")
# json_cast_function values: fields/json.py (STRING_TO_DOUBLE, on DOUBLE casts only).
# "JSON": the flat index (index/json_flat.py), every value below the path, INVERTED only.
JSON_CAST_TYPES = ("BOOL", "DOUBLE", "VARCHAR", "ARRAY_BOOL", "ARRAY_DOUBLE", "ARRAY_VARCHAR", "JSON")
_INTS = (DataType.INT8, DataType.INT16, DataType.INT32, DataType.INT64)
_NUMERIC = (*_INTS, DataType.FLOAT, DataType.DOUBLE)
_STRINGS = (DataType.VARCHAR, DataType.STRING)
# What Milvus 2.6's AUTOINDEX builds on a scalar field (its ``scalarAutoIndex`` defaults:
# BITMAP for BOOL, a sorted index for integers -- HYBRID there, whose high-cardinality
# half is STL_SORT --, INVERTED for the rest). The four term kinds share one structure
# here, so the choice changes what describe_index shows, not which filters are fast.
_AUTO_SCALAR = {DataType.BOOL: "BITMAP", DataType.TIMESTAMPTZ: "STL_SORT", **{t: "STL_SORT" for t in _INTS}}


def is_scalar_spec(spec: IndexSpec) -> bool:
    return spec.vector == "scalar"


def parse_json_path(field_name: str, path: Any) -> list[str | int]:
    """``json_path`` (``meta["a"]["b"]``, ``meta['a'][0]``, or the field's name alone) as
    the steps a filter's JSON path compiles to (``engine/expr.py``: string keys, and
    non-negative integers that index arrays)."""
    if not isinstance(path, str) or not path.strip():
        raise InvalidArgument(f"json_path must be a JSON path of field {field_name!r}, got {path!r}")
    text = path.strip()
    m = re.fullmatch(r"([A-Za-z_$][A-Za-z0-9_]*)((?:\[[^\]]*\])*)", text)
    if m is None or m.group(1) != field_name:
        raise InvalidArgument(f"json_path {path!r} is not a path of JSON field {field_name!r} (e.g. {field_name}[\"key\"])")
    steps: list[str | int] = []
    for sub in re.findall(r"\[([^\]]*)\]", m.group(2)):
        sub = sub.strip()
        if len(sub) >= 2 and sub[0] == sub[-1] == '"':
            steps.append(json.loads(sub))
        elif len(sub) >= 2 and sub[0] == sub[-1] == "'":
            steps.append(sub[1:-1])
        elif sub.isdigit():
            steps.append(int(sub))
        else:
            raise InvalidArgument(f"json_path {path!r}: a subscript must be a quoted key or a non-negative integer")
    return steps


def scalar_index_spec(
    index_type: str, field_name: str, dtype: DataType, element_type: DataType | None, params: dict[str, Any],
    *, is_primary: bool = False,
) -> IndexSpec:  # fmt: skip
    """Check a scalar index definition the way Milvus 2.6's index checkers do (their
    messages) and resolve it: the kind (AUTOINDEX by type), the JSON path and cast type,
    NGRAM's gram lengths. Refused: a kind on a type Milvus refuses it on (BITMAP on
    FLOAT/DOUBLE/JSON or a primary key, TRIE off VARCHAR, STL_SORT on BOOL/JSON/ARRAY), an
    unknown kind, a JSON index without or with an unknown ``json_cast_type``."""
    t = (index_type or "AUTOINDEX").upper()
    if t not in (*SCALAR_TYPES, "AUTOINDEX"):
        if t in (*BUILD_PARAMS, *SPARSE_TYPES, *QUANTIZED_TYPES, "DISKANN", "BRUTE_FORCE"):
            raise InvalidArgument(f"data type {dtype.name} can't build with this index {t}: vector index types apply to vector fields")
        raise InvalidArgument(f"invalid index type: {index_type}; a scalar field takes one of {', '.join(SCALAR_TYPES)} or AUTOINDEX")
    if dtype in (DataType.GEOMETRY, DataType.TEXT):
        raise InvalidArgument(f"keeldb builds no scalar index on {dtype.name} fields yet (filters on {field_name!r} scan)")
    elem = element_type if dtype == DataType.ARRAY else None
    if t == "AUTOINDEX":
        t = _AUTO_SCALAR.get(dtype, "INVERTED")
    build: dict[str, Any] = {"field": field_name, "dtype": dtype.name}
    if elem is not None:
        build["element"] = elem.name
    if t == "STL_SORT" and dtype not in (*_NUMERIC, *_STRINGS, DataType.TIMESTAMPTZ):
        raise InvalidArgument(f"STL_SORT are only supported on numeric, varchar or timestamptz field, got {dtype.name}")
    if t == "TRIE" and dtype not in _STRINGS:
        raise InvalidArgument("TRIE are only supported on varchar field")
    if t == "BITMAP":
        if is_primary:
            raise InvalidArgument("create bitmap index on primary key not supported")
        if dtype not in (DataType.BOOL, *_INTS, *_STRINGS, DataType.ARRAY):
            raise InvalidArgument("bitmap index are only supported on bool, int, string and array field")
        if elem is not None and elem not in (DataType.BOOL, *_INTS, *_STRINGS):
            raise InvalidArgument("bitmap index are only supported on bool, int, string for array field")
    if t == "INVERTED" and dtype not in (DataType.BOOL, *_NUMERIC, *_STRINGS, DataType.ARRAY, DataType.JSON):
        raise InvalidArgument(f"INVERTED are not supported on {dtype.name} field")
    if t == "NGRAM":
        if dtype not in (*_STRINGS, DataType.JSON):
            raise InvalidArgument("Ngram index can only be created on VARCHAR or JSON field")
        if dtype == DataType.JSON:
            cast = params.get("json_cast_type")
            if cast is None:
                raise InvalidArgument("JSON field with ngram index must specify json_cast_type")
            if str(cast).strip().upper() != "VARCHAR":
                raise InvalidArgument(f"JSON field with ngram index only supports VARCHAR cast type, got: {str(cast).upper()}")
        if "min_gram" not in params or "max_gram" not in params:
            raise InvalidArgument("Ngram index must specify both min_gram and max_gram")
        grams = {}
        for name in ("min_gram", "max_gram"):
            try:
                grams[name] = int(str(params[name]))
            except ValueError:
                raise InvalidArgument(f"{name} for Ngram index must be an integer, got: {params[name]}") from None
        lo, hi = grams["min_gram"], grams["max_gram"]
        if lo <= 0 or hi <= 0 or lo > hi:
            raise InvalidArgument(f"invalid min_gram or max_gram value for Ngram index, min_gram: {lo}, max_gram: {hi}")
        build.update(grams)
    if dtype == DataType.JSON:
        cast = params.get("json_cast_type")
        if cast is None:
            raise InvalidArgument("json index must specify cast type")
        c = str(cast).strip().upper()
        if c not in JSON_CAST_TYPES:
            raise InvalidArgument(f"json_cast_type {cast} is not supported; use one of {', '.join(JSON_CAST_TYPES)}")
        build["cast"] = c
        build["path"] = parse_json_path(field_name, params.get("json_path", field_name))
        if "json_cast_function" in params:
            # Milvus's checker (its words); the name is case-insensitive, as its docs say.
            fn = str(params["json_cast_function"]).strip().upper()
            if fn not in JSON_CAST_FUNCTIONS:
                raise InvalidArgument(f"json_cast_function {params['json_cast_function']} is not supported")
            if c != "DOUBLE":
                raise InvalidArgument(f"json_cast_function {fn} is not supported for json_cast_type {c}")
            build["cast_function"] = fn
    elif "json_path" in params or "json_cast_type" in params or "json_cast_function" in params:
        raise InvalidArgument(
            f"json_path, json_cast_type and json_cast_function apply to JSON fields only; {field_name!r} is {dtype.name}"
        )
    return IndexSpec(t, "", 0, build, "scalar")
