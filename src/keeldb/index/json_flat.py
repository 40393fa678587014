"""The JSON flat index (Milvus 2.6's ``json_cast_type: "JSON"``, PR milvus-io/milvus#39917):
one index over a JSON field (or a key of the dynamic field) at ``json_path`` -- the whole
field by default -- that holds *every* value below that path, each under its relative path
and JSON type, so a filter on any sub-path (``meta["a"]["b"] == 3``, ranges, in-lists,
``like 'x%'``, ``is null``, ``exists``) reads it without one index per path.

Milvus builds it on tantivy's JSON fields, which flatten arrays into their parent's path
("arrays do not work like nested objects"). keeldb answers every filter exactly as the scan
does (``engine/expr.py``), and the scan never looks into an array for ``a == 1``: so here an
array, like an object, is a value that is *present* at its path (``is null``, ``exists``)
and holds no typed term there; objects are walked key by key, arrays are not walked.
A filter whose path steps into an array (``meta["a"][0]``) or compares arrays is left to
the scan.

Layout: the relative paths that occur (JSON text of their keys, sorted by bytes), and per
path three term lists -- numbers, strings, bools -- each a range of one global sorted term
list with CSR posting lists (``index/scalar_index.py``'s structure, once per JSON type),
plus the rows where the path holds a value at all. A filter asks ``typed(rel, kind)`` for a
``ScalarIndex`` view over one path's terms of one type: the term kinds' code (ranges,
in-lists, prefixes, LIKE over distinct terms) then answers unchanged, and the view's null
rows are the rows without a value of that type there, which is where the scan's typed view
of the path is null.

Numbers are kept as float64: exact for every integer below 2**53 in magnitude, where float64
comparison agrees with the scan's int64 / float64 typing (``engine/expr.py``'s
``_num_array``). A path holding a larger number, and a literal beyond 2**53, are left to the
scan (``num_exact``).
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
from keeldb.fields.json import walk_path
from keeldb.index import sections
from keeldb.index.base import IndexKind
from keeldb.index.params import IndexSpec, SearchKnobs
from keeldb.index.scalar_index import ScalarIndex, StrTerms

MAGIC = b"KEELJSF1"
VERSION = 1
EXACT = 2.0**53  # below it every integer and float64 compare exactly
KINDS = ("num", "str", "bool")
_EMPTY = np.zeros(0, dtype=np.int32)


def path_key(rel: tuple[str | int, ...]) -> bytes:
    """How a relative path is stored and looked up: its keys as compact JSON."""
    return json.dumps(list(rel), separators=(",", ":"), ensure_ascii=False).encode("utf-8")


class _View(ScalarIndex):
    """One path's terms of one JSON type, as a term index the filter reads. Its null rows
    are every row without a value of this type at the path (computed on first use)."""

    def __init__(self, spec: IndexSpec, n: int, arrays: dict[str, np.ndarray], term_type: str, exact: bool) -> None:
        super().__init__(spec, n, arrays, term_type)
        self.exact = exact
        self._nulls: np.ndarray | None = None

    def null_mask(self) -> np.ndarray | None:
        if self._nulls is None:
            m = np.ones(self.ntotal, dtype=bool)
            m[self.rows] = False
            self._nulls = m
        return self._nulls if self._nulls.any() else None

    def _usable(self, value: Any) -> bool:
        if self.term_type != "float64" or isinstance(value, bool | str):
            return True
        if not self.exact:
            return False
        try:
            f = float(value)
        except OverflowError:
            return False
        return f == f and abs(f) < EXACT

    def compare(self, op: str, value: Any, *, as_float: bool = False) -> np.ndarray | None:
        return super().compare(op, value, as_float=as_float) if self._usable(value) else None

    def between(self, low: Any, low_incl: bool, high: Any, high_incl: bool) -> np.ndarray | None:
        if not (self._usable(low) and self._usable(high)):
            return None
        return super().between(low, low_incl, high, high_incl)


class JsonFlatIndex:
    """One sealed segment's flat index over a JSON field below ``path`` (module doc)."""

    file_ext = "jsonflat"
    flat = True  # what the filter recognises it by (engine/scalar_filter.py)
    is_array = False

    def __init__(self, spec: IndexSpec, n_rows: int, arrays: dict[str, np.ndarray]) -> None:
        self.spec = spec
        self.ntotal = n_rows
        b = spec.build
        self.field: str = b["field"]
        self.path: tuple[str | int, ...] = tuple(b["path"])
        self.cast = "JSON"
        self.a = arrays
        self.paths = StrTerms(arrays["path_offsets"], arrays["path_bytes"])
        self._views: dict[tuple[int, str], _View | None] = {}

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def build(cls, spec: IndexSpec, column: Any) -> JsonFlatIndex:
        """From the segment's column (JSON text, one document per row)."""
        col = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        base = tuple(spec.build["path"])
        ids: dict[tuple[str, ...], int] = {}
        pres: tuple[list[int], list[int]] = ([], [])
        num: tuple[list[int], list[float], list[int]] = ([], [], [])
        strs: tuple[list[int], list[str], list[int]] = ([], [], [])
        bools: tuple[list[int], list[bool], list[int]] = ([], [], [])
        inexact: set[int] = set()

        def visit(v: object, rel: tuple[str, ...], row: int) -> None:
            if v is None:
                return
            p = ids.setdefault(rel, len(ids))
            pres[0].append(p)
            pres[1].append(row)
            t = type(v)
            if t is dict:
                for k, x in v.items():  # type: ignore[attr-defined]
                    visit(x, (*rel, k), row)
            elif t is str:
                strs[0].append(p), strs[1].append(v), strs[2].append(row)  # type: ignore[func-returns-value]
            elif t is bool:
                bools[0].append(p), bools[1].append(v), bools[2].append(row)  # type: ignore[func-returns-value]
            elif t is int or t is float:
                try:
                    f = float(v)  # type: ignore[arg-type]
                except OverflowError:
                    inexact.add(p)
                    return
                if not abs(f) < EXACT:
                    inexact.add(p)
                num[0].append(p), num[1].append(f), num[2].append(row)  # type: ignore[func-returns-value]

        loads = json.loads
        for row, text in enumerate(col.to_pylist()):
            if text is not None:
                visit(walk_path(loads(text), base), (), row)
        # Paths sorted by their stored bytes; ids renumbered to that order.
        keys = [path_key(r) for r in ids]
        order = sorted(range(len(keys)), key=keys.__getitem__)
        rank = np.empty(len(keys), dtype=np.int64)
        rank[order] = np.arange(len(keys))
        sorted_keys = [keys[i] for i in order]
        offsets = np.zeros(len(keys) + 1, dtype=np.int64)
        offsets[1:] = np.cumsum([len(k) for k in sorted_keys])
        P = len(keys)
        arrays: dict[str, np.ndarray] = {
            "path_offsets": offsets,
            "path_bytes": np.frombuffer(b"".join(sorted_keys), dtype=np.uint8).copy(),
        }
        pp = rank[np.asarray(pres[0], dtype=np.int64)]
        pr = np.asarray(pres[1], dtype=np.int64)
        o = np.lexsort((pr, pp))
        arrays["pres_ptr"] = _starts(pp[o], P)
        arrays["pres_rows"] = pr[o].astype(np.int32)
        exact = np.ones(P, dtype=np.uint8)
        for p in inexact:
            exact[rank[p]] = 0
        arrays["num_exact"] = exact
        arrays.update(_terms("num", rank, num[0], pa.array(num[1], type=pa.float64()), num[2], P))
        arrays.update(_terms("str", rank, strs[0], pa.array(strs[1], type=pa.string()), strs[2], P))
        arrays.update(_terms("bool", rank, bools[0], pa.array(bools[1], type=pa.bool_()), bools[2], P))
        return cls(spec, len(col), arrays)

    # -- the file -----------------------------------------------------------------------------

    _LAYOUT = (
        ("path_offsets", "<i8"), ("path_bytes", "|u1"), ("pres_ptr", "<i8"), ("pres_rows", "<i4"),
        ("num_exact", "|u1"), ("num_start", "<i8"), ("num_terms", "<f8"), ("num_ptr", "<i8"), ("num_rows", "<i4"),
        ("str_start", "<i8"), ("str_offsets", "<i8"), ("str_bytes", "|u1"), ("str_ptr", "<i8"), ("str_rows", "<i4"),
        ("bool_start", "<i8"), ("bool_terms", "|u1"), ("bool_ptr", "<i8"), ("bool_rows", "<i4"),
    )  # fmt: skip

    def save(self, path: Path) -> tuple[int, int]:
        """Write and fsync the file (docs/formats.md, "JSON flat index file")."""
        header = {"version": VERSION, "rows": self.ntotal, "spec": self.spec.key}
        return sections.write(path, MAGIC, header, self._LAYOUT, self.a)

    @classmethod
    def load(cls, spec: IndexSpec, path: Path) -> JsonFlatIndex:
        header, arrays = sections.read(path, MAGIC, VERSION, "JSON flat index", mmap=spec.mmap)
        if {name for name, _ in cls._LAYOUT} - set(arrays):
            raise CorruptionError(f"{path}: JSON flat index lacks sections")
        index = cls(spec, int(header["rows"]), arrays)
        index._check(path)
        return index

    def _check(self, path: Path) -> None:
        """Every pointer array fits what it points into (O(paths + terms)): a file whose
        bytes are intact but inconsistent is refused, never read out of bounds."""
        a, n = self.a, self.ntotal
        P = len(a["path_offsets"]) - 1

        def csr(ptr: np.ndarray, count: int, target: int) -> bool:
            return (
                len(ptr) == count + 1 and int(ptr[0]) == 0 and int(ptr[-1]) == target and bool(np.all(np.diff(ptr) >= 0))
            )

        def rows_ok(r: np.ndarray) -> bool:
            return not len(r) or (int(r.min()) >= 0 and int(r.max()) < n)

        ok = P >= 0 and int(a["path_offsets"][-1]) == len(a["path_bytes"]) and bool(np.all(np.diff(a["path_offsets"]) >= 0))
        ok = ok and csr(a["pres_ptr"], P, len(a["pres_rows"])) and rows_ok(a["pres_rows"]) and len(a["num_exact"]) == P
        terms = {"num": len(a["num_terms"]), "str": len(a["str_offsets"]) - 1, "bool": len(a["bool_terms"])}
        for k in KINDS:
            ok = ok and csr(a[f"{k}_start"], P, terms[k]) and csr(a[f"{k}_ptr"], terms[k], len(a[f"{k}_rows"]))
            ok = ok and rows_ok(a[f"{k}_rows"])
        off = a["str_offsets"]
        ok = ok and len(off) >= 1 and int(off[-1]) == len(a["str_bytes"]) and bool(np.all(np.diff(off) >= 0))
        if not ok:
            raise CorruptionError(f"{path}: JSON flat index sections do not fit together")

    # -- what the filter reads ----------------------------------------------------------------

    def relative(self, path: tuple[str | int, ...]) -> tuple[str, ...] | None:
        """``path`` (a filter's, from the field) relative to this index's path, or None when
        the index does not cover it: not below the index's path, or stepping through an
        array index (the index does not walk arrays)."""
        k = len(self.path)
        if path[:k] != self.path or any(type(s) is not str for s in path[k:]):
            return None
        return tuple(path[k:])  # type: ignore[arg-type]

    def _find(self, rel: tuple[str, ...]) -> int | None:
        key = path_key(rel)
        i = bisect.bisect_left(self.paths, key)
        return i if i < len(self.paths) and self.paths[i] == key else None

    def present(self, rel: tuple[str, ...]) -> np.ndarray:
        """Rows whose value at ``rel`` is not null (missing, JSON null and null rows are)."""
        i = self._find(rel)
        if i is None:
            return _EMPTY
        p = self.a["pres_ptr"]
        return self.a["pres_rows"][int(p[i]) : int(p[i + 1])]

    def typed(self, rel: tuple[str, ...], kind: str) -> _View | None:
        """A term index over ``rel``'s values of one JSON type (``num``, ``str``, ``bool``),
        None where numbers cannot be compared exactly (``num_exact``)."""
        i = self._find(rel)
        key = (-1 if i is None else i, kind)
        if key in self._views:
            return self._views[key]
        a = self.a
        arrays: dict[str, np.ndarray]
        if i is None:
            lo = hi = 0
        else:
            lo, hi = int(a[f"{kind}_start"][i]), int(a[f"{kind}_start"][i + 1])
        ptr = a[f"{kind}_ptr"][lo : hi + 1]
        first, last = int(ptr[0]), int(ptr[-1])
        arrays = {"term_ptr": ptr - first, "rows": a[f"{kind}_rows"][first:last], "null_rows": _EMPTY}
        if kind == "str":
            arrays["term_offsets"], arrays["term_bytes"] = a["str_offsets"][lo : hi + 1], a["str_bytes"]
        else:
            arrays["terms"] = a[f"{kind}_terms"][lo:hi]
        term_type = {"num": "float64", "str": "bytes", "bool": "uint8"}[kind]
        exact = i is None or bool(a["num_exact"][i])
        view = _View(self.spec, self.ntotal, arrays, term_type, exact) if kind != "num" or exact else None
        self._views[key] = view
        return view

    def search(self, q: Any, k: int, knobs: SearchKnobs, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        raise TypeError("a scalar index answers filters, not vector searches")

    def range_search(self, q: Any, radius: float, knobs: SearchKnobs, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        raise TypeError("a scalar index answers filters, not vector searches")


def _starts(ranks: np.ndarray, count: int) -> np.ndarray:
    """CSR pointers of ``count`` groups from the (sorted) group of each entry."""
    return np.searchsorted(ranks, np.arange(count + 1), side="left").astype(np.int64)


def _terms(
    kind: str, rank: np.ndarray, paths: list[int], values: pa.Array, rows: list[int], P: int
) -> dict[str, np.ndarray]:  # fmt: skip
    """One JSON type's entries (path, value, row) sorted by (path, value, row) into terms --
    distinct (path, value) -- with their posting lists, and each path's range of terms."""
    pr = rank[np.asarray(paths, dtype=np.int64)] if paths else np.zeros(0, dtype=np.int64)
    rr = np.asarray(rows, dtype=np.int64)
    table = pa.table({"p": pa.array(pr, type=pa.int64()), "v": values, "r": pa.array(rr, type=pa.int64())})
    order = pc.sort_indices(table, sort_keys=[("p", "ascending"), ("v", "ascending"), ("r", "ascending")])
    sp = pr[order.to_numpy()] if len(pr) else pr
    sv = values.take(order)
    sr = rr[order.to_numpy()] if len(rr) else rr
    m = len(sp)
    if m:
        change = (sp[1:] != sp[:-1]) | pc.not_equal(sv.slice(1), sv.slice(0, m - 1)).to_numpy(zero_copy_only=False)
        starts = np.concatenate(([0], np.flatnonzero(change) + 1))
    else:
        starts = np.zeros(0, dtype=np.int64)
    out = {
        f"{kind}_start": _starts(sp[starts], P) if m else np.zeros(P + 1, dtype=np.int64),
        f"{kind}_ptr": np.append(starts, m).astype(np.int64),
        f"{kind}_rows": sr.astype(np.int32),
    }
    tv = sv.take(pa.array(starts, type=pa.int64()))
    if kind == "str":
        t = tv.cast(pa.large_binary())
        t = pa.concat_arrays([t]) if t.offset else t
        _, off, data = t.buffers()
        offsets = np.frombuffer(off, dtype=np.int64)[: len(t) + 1].copy() if off is not None and len(t) else np.zeros(1, np.int64)
        out["str_offsets"] = offsets
        out["str_bytes"] = np.frombuffer(data, dtype=np.uint8)[: int(offsets[-1])].copy() if data is not None else np.zeros(0, np.uint8)
    elif kind == "bool":
        out["bool_terms"] = np.asarray(tv.to_numpy(zero_copy_only=False), dtype=np.uint8)
    else:
        out["num_terms"] = np.asarray(tv.to_numpy(zero_copy_only=False), dtype=np.float64)
    return out


JSON_FLAT: IndexKind = JsonFlatIndex
