"""Scalar indexes over one sealed segment: ``STL_SORT``, ``INVERTED``, ``BITMAP`` and ``TRIE``
(Milvus 2.6's kinds; ``NGRAM`` is ``index/ngram_index.py``), kept in a file next to the
segment and read by the filter (``engine/scalar_filter.py``), never searched.

One structure serves the four, because what each is for in Milvus is one operation on it:
the segment's distinct values ("terms") in ascending order, and for each term the rows that
hold it, ascending (a CSR posting list: ``term_ptr`` into ``rows``):

- STL_SORT (sorted values + row order: ranges, ==, in): a range of values is a range of
  terms, and the rows of consecutive terms are one contiguous slice of ``rows`` -- a range
  filter costs two binary searches and one slice, whatever its selectivity;
- INVERTED (term -> rows) and BITMAP (a bitmap per value): a term's posting list is its
  bitmap, kept as sorted row numbers (the engine ORs them into a mask);
- TRIE (VARCHAR ==, in, prefix LIKE 'x%'): terms are sorted by UTF-8 bytes, so the strings
  with a prefix are one range of terms.

Why sorted row arrays and not roaring bitmaps (pyroaring): the posting lists must be read in
place from a memory-mapped file at open (a restart loads no index into the heap), and one
term's rows, or a range of terms' rows, is then a numpy slice the engine ORs into its row
mask in one vectorised step; a roaring bitmap would be deserialised per term and converted
to that mask anyway. At a segment's sizes (up to millions of rows) the arrays cost 4 bytes a
row, as the file sizes in benchmarks/README.md show.

So the kinds differ in name (what describe_index shows, which types Milvus accepts them on:
``index/params.py``), not in layout; each still has its own registry entry and file
extension. Nulls: ``null_rows`` are the rows whose value is null -- for a JSON path index,
whose value at the path is not of the cast type (missing, JSON null, another type), which
is exactly where the filter's typed view of the path is null (``engine/expr.py``).

Comparison semantics are the scan's, by construction: numeric terms keep the column's own
type (int64 for the integers, float32 for FLOAT, float64 for DOUBLE; a JSON path's numbers
as int64 when they all fit, else float64 -- ``_num_array``'s rule), literals are cast the
way Arrow's kernels cast them (float32 for a FLOAT field; int terms compared with a float
literal through their float64 values), and NaN sorts last, above every range.

An ARRAY field's index holds its elements: a term's rows are the rows whose array contains
it (once per row), which answers ``array_contains*``; JSON ``ARRAY_*`` casts likewise (their
elements of the cast type: ``json_contains*`` of a path, ``engine/scalar_filter.py``).
"""

from __future__ import annotations

import bisect
import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keeldb.errors import CorruptionError
from keeldb.fields.json import cast_values, walk_path
from keeldb.index import sections
from keeldb.index.base import IndexKind
from keeldb.index.params import IndexSpec, SearchKnobs

MAGIC = b"KEELSCL1"
VERSION = 1
_NUMERIC_DTYPES = {"int64": "<i8", "float32": "<f4", "float64": "<f8", "uint8": "|u1"}
_INT_FIELDS = ("INT8", "INT16", "INT32", "INT64")


walk = walk_path  # the filter's walk (fields/json.py)


def json_numbers(vals: list[object]) -> pa.Array:
    """JSON numbers as the filter types them (``engine/expr.py``'s ``_num_array``): int64
    when every one fits, else float64; anything else (bool included) null."""
    picked = [v if (type(v) is int or type(v) is float) else None for v in vals]
    try:
        arr = pa.array(picked)
    except (OverflowError, pa.ArrowInvalid):
        arr = pa.array([None if v is None else float(v) for v in picked], type=pa.float64())
    if arr.type == pa.null():
        arr = arr.cast(pa.int64())
    return arr


class StrTerms:
    """Sorted UTF-8 terms viewed through (offsets, bytes): a sequence ``bisect`` can search
    without materialising every term."""

    def __init__(self, offsets: np.ndarray, data: np.ndarray) -> None:
        self.offsets = offsets
        self.data = data

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> bytes:
        return bytes(self.data[int(self.offsets[i]) : int(self.offsets[i + 1])])


def _prefix_successor(p: bytes) -> bytes | None:
    """The smallest byte string above every string starting with ``p`` (None: no bound)."""
    b = bytearray(p)
    while b and b[-1] == 0xFF:
        b.pop()
    if not b:
        return None
    b[-1] += 1
    return bytes(b)


class ScalarIndex:
    """One segment's sorted terms and posting lists (module doc); the class is the
    ``IndexKind`` of the four term kinds (``KINDS``)."""

    file_ext = "scalar"

    def __init__(self, spec: IndexSpec, n_rows: int, arrays: dict[str, np.ndarray], term_type: str) -> None:
        self.spec = spec
        self.ntotal = n_rows
        b = spec.build
        self.field: str = b["field"]
        self.path: tuple[str | int, ...] | None = tuple(b["path"]) if "path" in b else None
        self.cast: str | None = b.get("cast")
        self.cast_function: str | None = b.get("cast_function")  # json_cast_function (fields/json.py)
        self.is_array = b["dtype"] == "ARRAY" or (self.cast or "").startswith("ARRAY_")
        self.term_type = term_type  # int64 / float32 / float64 / uint8 / bytes
        self.term_ptr = arrays["term_ptr"]
        self.rows = arrays["rows"]
        self.null_rows = arrays["null_rows"]
        # JSON indexes: the rows where the path holds nothing (missing, JSON null, null
        # row) -- what ``path is null`` selects -- a subset of ``null_rows``.
        self.absent_rows: np.ndarray | None = arrays.get("absent_rows")
        self.terms: Any = (
            StrTerms(arrays["term_offsets"], arrays["term_bytes"]) if term_type == "bytes" else arrays["terms"]
        )
        self._arrays = arrays
        self._f64: np.ndarray | None = None
        self._null_mask: np.ndarray | None = None

    # -- building -------------------------------------------------------------------------

    @classmethod
    def build(cls, spec: IndexSpec, column: Any) -> ScalarIndex:
        """From the segment's column (an Arrow array of the field's values; JSON as text)."""
        col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        n = len(col)
        row_of: np.ndarray | None = None  # for arrays: the row of each element
        b = spec.build
        absent = None
        if b["dtype"] == "JSON":
            values, row_of, nulls, absent = _json_values(col, tuple(b["path"]), b["cast"], b.get("cast_function"))
        elif b["dtype"] == "ARRAY":
            nulls = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))
            values, row_of = _array_elements(col)
        else:
            nulls = np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False)) if col.null_count else np.empty(0, np.int64)
            values = _typed(col, b["dtype"])
        return cls._from_values(spec, n, values, row_of, nulls, absent)

    @classmethod
    def _from_values(
        cls, spec: IndexSpec, n: int, values: pa.Array, row_of: np.ndarray | None, nulls: np.ndarray,
        absent: np.ndarray | None = None,
    ) -> ScalarIndex:  # fmt: skip
        """Sort ``values`` (one per row, or per element with ``row_of`` its row; nulls are
        skipped) into terms and posting lists."""
        valid = np.flatnonzero(values.is_valid().to_numpy(zero_copy_only=False)) if values.null_count else np.arange(len(values))
        vals = values.take(pa.array(valid)) if values.null_count else values
        rows_all = valid if row_of is None else row_of[valid]
        order = pc.array_sort_indices(vals, null_placement="at_end").to_numpy()  # stable: rows stay ascending
        svals = vals.take(pa.array(order))
        srows = rows_all[order]
        m = len(svals)
        if m:
            change = pc.not_equal(svals.slice(1), svals.slice(0, m - 1)).fill_null(True).to_numpy(zero_copy_only=False)
            if pa.types.is_floating(svals.type):  # NaN != NaN: keep every NaN in one (last) term
                nan = pc.is_nan(svals).to_numpy(zero_copy_only=False)
                change &= ~(nan[1:] & nan[:-1])
            starts = np.concatenate(([0], np.flatnonzero(change) + 1))
        else:
            starts = np.zeros(0, dtype=np.int64)
        if row_of is not None and m:
            # An element repeated within one array: keep the row once per term.
            term_of = np.repeat(np.arange(len(starts)), np.diff(np.append(starts, m)))
            # Rows within a term are ascending only if the sort kept element order: sort by
            # (term, row) to be sure, then drop the repeats.
            o2 = np.lexsort((srows, term_of))
            srows, term_of = srows[o2], term_of[o2]
            keep = np.ones(m, dtype=bool)
            keep[1:] = (term_of[1:] != term_of[:-1]) | (srows[1:] != srows[:-1])
            counts = np.bincount(term_of[keep], minlength=len(starts))
            srows = srows[keep]
            ptr = np.concatenate(([0], np.cumsum(counts)))
        else:
            ptr = np.append(starts, m)
        term_vals = svals.take(pa.array(starts, type=pa.int64())) if m else svals
        arrays: dict[str, np.ndarray] = {
            "term_ptr": ptr.astype(np.int64),
            "rows": np.asarray(srows, dtype=np.int32),
            "null_rows": np.asarray(nulls, dtype=np.int32),
        }
        if absent is not None:
            arrays["absent_rows"] = np.asarray(absent, dtype=np.int32)
        if pa.types.is_string(term_vals.type) or pa.types.is_large_string(term_vals.type):
            t = term_vals.cast(pa.large_binary())
            t = pa.concat_arrays([t]) if t.offset else t
            _, off, data = t.buffers()
            offsets = np.frombuffer(off, dtype=np.int64)[: len(t) + 1].copy() if off is not None else np.zeros(1, np.int64)
            arrays["term_offsets"] = offsets
            arrays["term_bytes"] = np.frombuffer(data, dtype=np.uint8)[: int(offsets[-1])].copy() if data is not None else np.zeros(0, np.uint8)
            term_type = "bytes"
        else:
            tv = term_vals.to_numpy(zero_copy_only=False)
            term_type = {np.dtype(np.bool_): "uint8"}.get(tv.dtype, tv.dtype.name)
            arrays["terms"] = tv.astype(np.uint8) if term_type == "uint8" else tv
        return cls(spec, n, arrays, term_type)

    # -- the file -----------------------------------------------------------------------------

    def _layout(self) -> tuple[tuple[str, str], ...]:
        head = (
            (("term_offsets", "<i8"), ("term_bytes", "|u1"))
            if self.term_type == "bytes"
            else (("terms", _NUMERIC_DTYPES[self.term_type]),)
        )
        tail = (("absent_rows", "<i4"),) if self.absent_rows is not None else ()
        return (*head, ("term_ptr", "<i8"), ("rows", "<i4"), ("null_rows", "<i4"), *tail)

    def save(self, path: Path) -> tuple[int, int]:
        """Write and fsync the file (docs/formats.md, "Scalar index file")."""
        header = {"version": VERSION, "rows": self.ntotal, "spec": self.spec.key, "terms": self.term_type}
        return sections.write(path, MAGIC, header, self._layout(), self._arrays)

    @classmethod
    def load(cls, spec: IndexSpec, path: Path) -> ScalarIndex:
        header, arrays = sections.read(path, MAGIC, VERSION, "scalar index", mmap=spec.mmap)
        term_type = header.get("terms")
        if term_type != "bytes" and term_type not in _NUMERIC_DTYPES:
            raise CorruptionError(f"{path}: scalar index has unknown term type {term_type!r}")
        index = cls(spec, int(header["rows"]), arrays, term_type)
        index._check(path)
        return index

    def _check(self, path: Path) -> None:
        """The pointer arrays' shape, checked at load (O(terms)): a file whose bytes are
        intact but inconsistent is refused, never read out of bounds."""
        t = len(self.terms)
        p = self.term_ptr
        ok = (
            len(p) == t + 1
            and (t == 0 or (int(p[0]) == 0 and bool(np.all(np.diff(p) >= 0))))
            and int(p[-1]) == len(self.rows)
            and (not len(self.rows) or (int(self.rows.min()) >= 0 and int(self.rows.max()) < self.ntotal))
            and (not len(self.null_rows) or (int(self.null_rows.min()) >= 0 and int(self.null_rows.max()) < self.ntotal))
        )
        a = self.absent_rows
        ok = ok and (a is None or not len(a) or (int(a.min()) >= 0 and int(a.max()) < self.ntotal))
        if self.term_type == "bytes":
            off = self.terms.offsets
            ok = ok and len(off) >= 1 and int(off[-1]) == len(self.terms.data) and bool(np.all(np.diff(off) >= 0))
        if not ok:
            raise CorruptionError(f"{path}: scalar index sections do not fit together")

    # -- what the filter reads ------------------------------------------------------------------

    def null_mask(self) -> np.ndarray | None:
        """Rows whose (typed) value is null, as a mask; None when there are none."""
        if not len(self.null_rows):
            return None
        if self._null_mask is None:
            m = np.zeros(self.ntotal, dtype=bool)
            m[self.null_rows] = True
            self._null_mask = m
        return self._null_mask

    def absent_mask(self) -> np.ndarray | None:
        """JSON indexes: the rows whose path holds nothing, as a mask (None: not a JSON index)."""
        if self.absent_rows is None:
            return None
        m = np.zeros(self.ntotal, dtype=bool)
        m[self.absent_rows] = True
        return m

    def _span(self, lo: int, hi: int) -> np.ndarray:
        return self.rows[int(self.term_ptr[lo]) : int(self.term_ptr[hi])] if hi > lo else self.rows[:0]

    def _keyed(self, value: Any, *, as_float: bool = False) -> tuple[Any, Any] | None:
        """(sorted terms to search, the literal cast as the scan casts it), or None when the
        literal's type does not compare with this index's values."""
        t = self.term_type
        if t == "bytes":
            return (self.terms, value.encode("utf-8")) if isinstance(value, str) else None
        if isinstance(value, str):
            return None
        if t == "uint8":
            return (self.terms, int(value)) if isinstance(value, bool) else None
        if isinstance(value, bool):
            return None
        if t == "float32":
            return self.terms, np.float32(float(value))
        if t == "float64":
            return self.terms, float(value)
        if isinstance(value, float) or as_float:  # int terms against a float: Arrow compares as float64
            if self._f64 is None:
                self._f64 = self.terms.astype(np.float64)
            return self._f64, float(value)
        return self.terms, int(value)

    @staticmethod
    def _search(terms: Any, key: Any, side: str) -> int:
        if isinstance(terms, StrTerms):
            return (bisect.bisect_left if side == "left" else bisect.bisect_right)(terms, key)
        return int(np.searchsorted(terms, key, side=side))  # type: ignore[call-overload]

    def _end(self, terms: Any) -> int:
        """Terms below NaN (NaN sorts last; no range holds it)."""
        if isinstance(terms, np.ndarray) and terms.dtype.kind == "f" and len(terms) and np.isnan(terms[-1]):
            return int(np.searchsorted(terms, np.nan, side="left"))
        return len(terms)

    def compare(self, op: str, value: Any, *, as_float: bool = False) -> np.ndarray | None:
        """The rows whose value ``op`` the literal is true (``==``, ``<``, ``<=``, ``>``,
        ``>=``), or None when this index cannot say. ``!=`` is the engine's: every non-null
        row outside ``==``."""
        if self.is_array:
            return None
        keyed = self._keyed(value, as_float=as_float)
        if keyed is None:
            return None
        terms, key = keyed
        if isinstance(key, float | np.floating) and np.isnan(key):
            return None
        s = self._search
        if op == "==":
            return self._span(s(terms, key, "left"), s(terms, key, "right"))
        if op == "<":
            return self._span(0, s(terms, key, "left"))
        if op == "<=":
            return self._span(0, s(terms, key, "right"))
        if op == ">":
            return self._span(s(terms, key, "right"), self._end(terms))
        if op == ">=":
            return self._span(s(terms, key, "left"), self._end(terms))
        return None

    def between(self, low: Any, low_incl: bool, high: Any, high_incl: bool) -> np.ndarray | None:
        """``low <(=) value <(=) high`` (a chained range) as one slice."""
        if self.is_array:
            return None
        a, b = self._keyed(low), self._keyed(high)
        if a is None or b is None or a[0] is not b[0]:
            return None
        terms = a[0]
        lo = self._search(terms, a[1], "left" if low_incl else "right")
        hi = min(self._search(terms, b[1], "right" if high_incl else "left"), self._end(terms))
        return self._span(lo, hi)

    def isin(self, values: list[Any], *, as_float: bool = False) -> np.ndarray | None:
        """Rows equal to any of ``values`` (``in``): the union of their posting lists.
        ``as_float``: compare in float64 (the scan does when the list is not all integers)."""
        parts = []
        for v in values:
            hit = self.compare("==", v, as_float=as_float)
            if hit is None:
                return None
            parts.append(hit)
        if not parts:
            return self.rows[:0]
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def contains(self, value: Any) -> np.ndarray | None:
        """For an ARRAY index: the rows whose array holds an element equal to ``value``."""
        if not self.is_array:
            return None
        keyed = self._keyed(value)
        if keyed is None:
            return None
        terms, key = keyed
        return self._span(self._search(terms, key, "left"), self._search(terms, key, "right"))

    def prefix(self, p: str) -> np.ndarray | None:
        """Rows whose string starts with ``p`` (``LIKE 'p%'``)."""
        if self.term_type != "bytes" or self.is_array:
            return None
        key = p.encode("utf-8")
        lo = bisect.bisect_left(self.terms, key)
        succ = _prefix_successor(key)
        hi = len(self.terms) if succ is None else bisect.bisect_left(self.terms, succ)
        return self._span(lo, hi)

    def like(self, pattern: str) -> np.ndarray | None:
        """Rows whose string matches the LIKE ``pattern``, by matching the distinct terms
        (Arrow's LIKE, the scan's) and taking their rows: exact, and cheaper than the rows
        when values repeat. None when the terms are not fewer than half the rows."""
        if self.term_type != "bytes" or self.is_array or 2 * len(self.terms) > self.ntotal:
            return None
        n = len(self.terms)
        off, data = self.terms.offsets, self.terms.data
        arr = pa.LargeStringArray.from_buffers(n, pa.py_buffer(np.ascontiguousarray(off)), pa.py_buffer(np.ascontiguousarray(data)))
        hit = np.flatnonzero(pc.match_like(arr, pattern).to_numpy(zero_copy_only=False))
        if not len(hit):
            return self.rows[:0]
        return np.concatenate([self._span(int(t), int(t) + 1) for t in hit])

    def search(self, q: Any, k: int, knobs: SearchKnobs, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        raise TypeError("a scalar index answers filters, not vector searches")

    def range_search(self, q: Any, radius: float, knobs: SearchKnobs, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise TypeError("a scalar index answers filters, not vector searches")


# -- the values of a column, typed as the filter types them ---------------------------------------


def _typed(col: pa.Array, dtype: str) -> pa.Array:
    if dtype in _INT_FIELDS or dtype == "TIMESTAMPTZ":  # TIMESTAMPTZ: microseconds since the epoch
        return col.cast(pa.int64())
    if dtype in ("VARCHAR", "STRING"):
        return col.cast(pa.string()) if col.type != pa.string() else col
    return col  # FLOAT (float32), DOUBLE (float64), BOOL


def _array_elements(col: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Every element of a list column and the row it belongs to."""
    lists = col if not pa.types.is_large_list(col.type) else col.cast(pa.list_(col.type.value_type))
    flat = lists.flatten()
    parent = pc.list_parent_indices(lists).to_numpy(zero_copy_only=False).astype(np.int64)
    t = flat.type
    if pa.types.is_integer(t):
        flat = flat.cast(pa.int64())
    elif pa.types.is_large_string(t):
        flat = flat.cast(pa.string())
    return flat, parent


def _json_values(
    col: pa.Array, path: tuple[str | int, ...], cast: str, function: str | None = None
) -> tuple[pa.Array, np.ndarray | None, np.ndarray, np.ndarray]:
    """The values at ``path`` of each row's JSON, of the cast type (others null), the rows
    where there is none of that type, and the rows where there is nothing at all. ARRAY_*
    casts: the elements of the type of each array. ``function``: a json_cast_function
    applied first (STRING_TO_DOUBLE: strings parsed; a string that does not parse is no
    value -- not indexed, as in Milvus)."""
    vals = json_path_values(col, path)
    absent = np.flatnonzero(np.fromiter((v is None for v in vals), dtype=bool, count=len(vals)))
    if function is not None:
        vals = cast_values(vals, function)
    if cast.startswith("ARRAY_"):
        want = cast[6:]
        elems: list[Any] = []
        rows: list[int] = []
        null = []
        for r, v in enumerate(vals):
            if type(v) is not list:
                null.append(r)
                continue
            for e in v:
                if _is_cast(e, want):
                    elems.append(e)
                    rows.append(r)
        arr = json_numbers(elems) if want == "DOUBLE" else pa.array(elems, type=pa.string() if want == "VARCHAR" else pa.bool_())
        return arr, np.asarray(rows, dtype=np.int64), np.asarray(null, dtype=np.int64), absent
    if cast == "DOUBLE":
        arr = json_numbers(vals)
    elif cast == "VARCHAR":
        arr = pa.array([v if type(v) is str else None for v in vals], type=pa.string())
    else:
        arr = pa.array([v if type(v) is bool else None for v in vals], type=pa.bool_())
    nulls = np.flatnonzero(arr.is_null().to_numpy(zero_copy_only=False))
    return arr, None, nulls, absent


def json_path_values(col: pa.Array, path: tuple[str | int, ...]) -> list[Any]:
    """Each row's value at ``path`` (None: nothing there, or a null row)."""
    loads = json.loads
    return [None if s is None else walk(loads(s), path) for s in col.to_pylist()]


def _is_cast(v: object, want: str) -> bool:
    if want == "DOUBLE":
        return type(v) is int or type(v) is float
    return type(v) is (str if want == "VARCHAR" else bool)


# What index/base.py's registry names: one structure, four Milvus kinds (module doc).
STL_SORT: IndexKind = ScalarIndex
INVERTED: IndexKind = ScalarIndex
BITMAP: IndexKind = ScalarIndex
TRIE: IndexKind = ScalarIndex
