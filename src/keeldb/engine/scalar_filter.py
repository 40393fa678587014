"""Filters answered from a sealed segment's scalar indexes (``index/scalar_index.py``,
``index/ngram_index.py``), falling back to the scan (``engine/expr.py``) for what no index
answers -- with the scan's answer, to the row.

``Filter.evaluate`` hands a segment view here when its segment has scalar indexes. The plan
is walked once: each leaf an index can answer (``==``, ``!=``, ``<``..``>=`` and chained
ranges, ``in`` / ``not in``, ``like`` prefix / exact / infix, ``is [not] null`` (a JSON path's too), a bare BOOL,
``array_contains[_all|_any]`` of an ARRAY field, ``json_contains[_all|_any]`` /
``array_contains*`` of a JSON path with ``ARRAY_*`` indexes, ``exists path``, ``in`` lists of
TIMESTAMPTZ, JSON path comparisons whose literal's type is the index's ``json_cast_type``) becomes a pair of row masks (true, null) built from posting lists; every
other leaf is evaluated by the scan and turned into the same pair; ``and`` / ``or`` /
``not`` combine the pairs with Kleene's three-valued logic, exactly as ``pc.and_kleene`` /
``or_kleene`` / ``invert`` do in the scan:

- and: true where both are true; null where neither is false and not both true;
- or: true where either is true; null where neither is true and one is null;
- not: true where the operand is false; null stays null.

A null never matches ``==`` nor ``!=`` (the index's null rows -- for a JSON path, the rows
whose value is not of the cast type, where the scan's typed view is null -- are null in
both), and the final answer selects only the true rows. Visibility (deletes, MVCC, TTL,
partitions) is not this module's business: the caller ANDs the answer with the live rows,
as it does the scan's.

An ``and`` whose indexed parts leave few candidate rows evaluates its other parts on those
rows only (a ``TakenRows`` view), so ``tag == 7 and <unindexed predicate>`` reads the
unindexed column at the candidates, not at every row.

The engine names no index implementation (tests/test_index_registry.py): an index is
recognised by its posting lists (``term_ptr``) and asked through its methods
(``compare``, ``isin``, ``prefix``, ``contains``, ``like_candidates``, ``null_mask``, ``absent_mask``).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from keeldb.engine import expr as E

# Off (KEELDB_SCALAR_FILTER_INDEXES=0, or ENABLED = False): every filter scans, as before
# indexes existed -- what the benchmark's "without index" columns and the equivalence
# tests compare with.
ENABLED = os.environ.get("KEELDB_SCALAR_FILTER_INDEXES", "1") != "0"
# An ``and`` evaluates its unindexed parts on the candidates only below this share of rows.
TAKE_FRACTION = 0.25
# Evaluations answered with an index (tests check that the index path really ran).
STATS = {"answered": 0}

TV = tuple[np.ndarray, np.ndarray | None]  # (true rows, null rows) as masks; None: no nulls
_INT_RANGES = {"INT8": 2**7, "INT16": 2**15, "INT32": 2**31}
_CAST_OF = {E.Kind.NUMBER: "DOUBLE", E.Kind.INT: "DOUBLE", E.Kind.FLOAT: "DOUBLE", E.Kind.STRING: "VARCHAR", E.Kind.BOOL: "BOOL"}


class Indexes:
    """A view's usable scalar indexes by (field, JSON path or None)."""

    def __init__(self, view: Any) -> None:
        self.n = int(view.num_rows)
        self.memo: dict[int, TV | None] = {}  # leaf id -> its answer, read once
        self.by: dict[tuple[str, tuple[Any, ...] | None], list[Any]] = {}
        self.flat: dict[str, list[Any]] = {}  # JSON flat indexes by field
        seg = getattr(view, "segment", None)
        for idx in (getattr(seg, "indexes", None) or {}).values():
            if idx.ntotal != self.n:
                continue
            if getattr(idx, "term_ptr", None) is not None:
                self.by.setdefault((idx.field, idx.path), []).append(idx)
            elif getattr(idx, "flat", False):
                self.flat.setdefault(idx.field, []).append(idx)

    def on(self, field: str, path: tuple[Any, ...] | None = None) -> list[Any]:
        return self.by.get((field, path), [])

    def flat_on(self, ref: E._JsonRef) -> list[tuple[Any, tuple[str, ...]]]:
        """The JSON flat indexes covering ``ref``'s path, each with the path relative to it."""
        out = []
        for index in self.flat.get(ref.field, ()):
            rel = index.relative(ref.path)
            if rel is not None:
                out.append((index, rel))
        return out


def evaluate(root: E._Pred, ctx: E._Ctx) -> np.ndarray | None:
    """Which rows of ``ctx``'s view match (as ``Filter.evaluate``), or None when no part of
    the filter has an index here (the caller scans)."""
    if not ENABLED:
        return None
    idx = Indexes(ctx.cols)
    if not (idx.by or idx.flat) or not _uses(root, ctx, idx):
        return None
    t, _ = _tv(root, ctx, idx)
    STATS["answered"] += 1
    return t


def _uses(p: E._Pred, ctx: E._Ctx, idx: Indexes) -> bool:
    if isinstance(p, E._And | E._Or):
        return any(_uses(c, ctx, idx) for c in p.parts)
    if isinstance(p, E._Not):
        return _uses(p.inner, ctx, idx)
    return _leaf(p, ctx, idx) is not None


def _tv(p: E._Pred, ctx: E._Ctx, idx: Indexes) -> TV:
    if isinstance(p, E._And):
        return _and(p, ctx, idx)
    if isinstance(p, E._Or):
        t, u = _tv(p.parts[0], ctx, idx)
        for c in p.parts[1:]:
            t2, u2 = _tv(c, ctx, idx)
            t = t | t2
            u = None if u is None and u2 is None else _or_none(u, u2) & ~t
        return t, u
    if isinstance(p, E._Not):
        t, u = _tv(p.inner, ctx, idx)
        return (~t if u is None else ~(t | u)), u
    hit = _leaf(p, ctx, idx)
    return hit if hit is not None else _scan(p, ctx)


def _and(p: E._And, ctx: E._Ctx, idx: Indexes) -> TV:
    indexed = [c for c in p.parts if _uses(c, ctx, idx)]
    if not indexed:  # an `and` inside an `or` / `not` whose parts have no index here: scanned whole
        return _scan(p, ctx)
    rest = [c for c in p.parts if not _uses(c, ctx, idx)]
    t: np.ndarray | None = None
    u: np.ndarray | None = None
    for c in indexed:
        t2, u2 = _tv(c, ctx, idx)
        t, u = (t2, u2) if t is None else _and_tv(t, u, t2, u2)
    assert t is not None
    if not rest:
        return t, u
    maybe = t if u is None else t | u  # rows the indexed parts do not make false
    cand = np.flatnonzero(maybe)
    if len(cand) <= TAKE_FRACTION * idx.n and not any(_whole_segment(c) for c in rest):
        # The rest only matters where the indexed parts are not false: evaluate it there.
        sub = E._Ctx(TakenRows(ctx.cols, cand))
        root = rest[0] if len(rest) == 1 else E._And(rest)
        res = E._as_array(root.eval(sub)) if len(cand) else pa.array([], type=pa.bool_())
        t2 = np.zeros(idx.n, dtype=bool)
        u2 = None
        if res.null_count:
            u2 = np.zeros(idx.n, dtype=bool)
            u2[cand] = res.is_null().to_numpy(zero_copy_only=False)
            res = res.fill_null(False)
        t2[cand] = res.to_numpy(zero_copy_only=False)
        # Outside the candidates the indexed parts are false, so the rest's value there
        # does not change the answer: treating it as false is exact.
        return _and_tv(t, u, t2, u2)
    for c in rest:
        t2, u2 = _scan(c, ctx)
        t, u = _and_tv(t, u, t2, u2)
    return t, u


def _whole_segment(p: E._Pred) -> bool:
    """Whether ``p`` reads a per-segment structure that is faster over the whole view than
    rebuilt for some rows (text_match / phrase_match: the segment's postings)."""
    if isinstance(p, E._And | E._Or):
        return any(_whole_segment(c) for c in p.parts)
    if isinstance(p, E._Not):
        return _whole_segment(p.inner)
    return type(p).__name__ in ("TextMatch", "PhraseMatch")


def _and_tv(t: np.ndarray, u: np.ndarray | None, t2: np.ndarray, u2: np.ndarray | None) -> TV:
    tt = t & t2
    if u is None and u2 is None:
        return tt, None
    nf = (t if u is None else t | u) & (t2 if u2 is None else t2 | u2)  # neither false
    return tt, nf & ~tt


def _or_none(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray:
    if a is None:
        assert b is not None
        return b
    return a if b is None else a | b


def _scan(p: E._Pred, ctx: E._Ctx) -> TV:
    res = p.eval(ctx)
    res = E._as_array(res) if isinstance(res, pa.ChunkedArray) else res
    u = None
    if res.null_count:
        u = res.is_null().to_numpy(zero_copy_only=False)
        res = res.fill_null(False)
    return np.asarray(res.to_numpy(zero_copy_only=False), dtype=bool), u


class TakenRows:
    """The rows ``rows`` of a view, as a ``ColumnSource`` (``engine/expr.py``): what an
    ``and``'s unindexed parts are evaluated on."""

    def __init__(self, cols: Any, rows: np.ndarray) -> None:
        self._cols = cols
        self._rows = pa.array(rows, type=pa.int64())
        self.num_rows = len(rows)
        self._json: dict[str, list[Any]] = {}

    def column(self, name: str) -> pa.Array:
        return E._as_array(self._cols.column(name)).take(self._rows)

    def json_objects(self, name: str) -> Sequence[object]:
        got = self._json.get(name)
        if got is None:
            # The view's parsed objects (cached on its segment: parsed once, like the scan's).
            objs = self._cols.json_objects(name)
            got = self._json[name] = [objs[r] for r in self._rows.to_numpy().tolist()]
        return got


# -- leaves ---------------------------------------------------------------------------------------


def _mask(rows: np.ndarray, n: int) -> np.ndarray:
    m = np.zeros(n, dtype=bool)
    m[rows] = True
    return m


def _answer(rows: np.ndarray, index: Any, n: int, *, negate: bool = False) -> TV:
    """(true, null) of a leaf whose true rows are ``rows`` (``negate``: whose rows are those
    of the leaf it negates) and whose null rows are the index's."""
    null = index.null_mask()
    t = _mask(rows, n)
    if negate:
        t = ~t if null is None else ~(t | null)
    return t, null


def _term_indexes(idx: Indexes, v: E._Value, want: E.Kind | None) -> list[Any]:
    """The term indexes that hold ``v``'s values typed as the scan types them: a scalar
    field's own, or a JSON path's of the matching cast type."""
    if isinstance(v, E._FieldRef):
        if v.dtype.name in ("ARRAY", "JSON", "GEOMETRY") or (v.dtype.name == "TIMESTAMPTZ") != (want is E.Kind.TIME):
            return []  # a TIMESTAMPTZ field's index (microseconds) is compared with timestamps only
        return [i for i in idx.on(v.name) if not i.is_array]
    if isinstance(v, E._JsonRef) and want is not None:
        # A path read through a json_cast_function (``_JsonRef.cast``) is answered by the
        # index built through it, and only by that one; a plain read never by it.
        cast = _CAST_OF.get(want)
        fn = v.cast if want in (E.Kind.NUMBER, E.Kind.INT, E.Kind.FLOAT) else None
        typed = [i for i in idx.on(v.field, v.path) if i.cast == cast and getattr(i, "cast_function", None) == fn]
        if fn is None and cast is not None:
            # A flat index's terms of the path's JSON type (None: numbers it cannot
            # compare exactly there): read after a typed index of the path itself.
            kind = {"DOUBLE": "num", "VARCHAR": "str", "BOOL": "bool"}[cast]
            typed += [t for f, rel in idx.flat_on(v) if (t := f.typed(rel, kind)) is not None]
        return typed
    return []


def _absent(idx: Indexes, ref: E._JsonRef) -> np.ndarray | None:
    """The rows where ``ref``'s path holds nothing (missing, JSON null, a null row), from
    any JSON index of the path or a flat index above it; None when none has it."""
    for index in idx.on(ref.field, ref.path):
        absent = index.absent_mask()
        if absent is not None:
            return absent
    for index, rel in idx.flat_on(ref):
        return ~_mask(index.present(rel), idx.n)
    return None


def _leaf(p: E._Pred, ctx: E._Ctx, idx: Indexes) -> TV | None:
    """The leaf's (true, null) from an index, None when no index answers it (read once per
    evaluation: ``_uses`` asks first)."""
    key = id(p)
    if key not in idx.memo:
        idx.memo[key] = _read(p, ctx, idx)
    return idx.memo[key]


def _read(p: E._Pred, ctx: E._Ctx, idx: Indexes) -> TV | None:
    n = idx.n
    if isinstance(p, E._Compare) and isinstance(p.right, E._Lit):
        lit = p.right
        for index in _term_indexes(idx, p.left, lit.kind):
            as_float = lit.kind is E.Kind.FLOAT
            rows = index.compare("==" if p.op == "!=" else p.op, lit.value, as_float=as_float)
            if rows is not None:
                return _answer(rows, index, n, negate=p.op == "!=")
        return None
    if isinstance(p, E._Truthy):
        for index in _term_indexes(idx, p.value, E.Kind.BOOL):
            rows = index.compare("==", True)
            if rows is not None:
                return _answer(rows, index, n)
        return None
    if isinstance(p, E._In):
        if len(p.groups) != 1:
            return None
        ((kind, items),) = p.groups.items()
        # TIMESTAMPTZ lists hold microseconds, compared as integers (the scan's timestamp set).
        as_float = not items.all_int and kind is not E.Kind.TIME
        for index in _term_indexes(idx, p.value, kind):
            rows = index.isin(list(items.values), as_float=as_float)
            if rows is not None:
                return _answer(rows, index, n, negate=p.negate)
        return None
    if isinstance(p, E._Like):
        return _like(p, ctx, idx)
    if isinstance(p, E._IsNull) and isinstance(p.value, E._JsonRef):
        # ``path is null``: nothing at the path (missing, JSON null, a null row) -- what
        # every JSON index of the path records, whatever its cast type.
        absent = _absent(idx, p.value)
        return None if absent is None else ((~absent if p.negate else absent), None)
    if isinstance(p, E._IsNull) and isinstance(p.value, E._FieldRef):
        cands = idx.on(p.value.name)
        if not cands:
            return None
        null = cands[0].null_mask()
        t = np.zeros(n, dtype=bool) if null is None else null.copy()
        return (~t if p.negate else t), None
    name = type(p).__name__
    if name == "Contains":  # array_contains* / json_contains* (engine/expr_functions.py)
        return _contains_json(p, idx) if isinstance(p.ref, E._JsonRef) else _contains(p, idx)
    if name == "Exists":  # ``exists path`` is ``path is not null`` (engine/expr_functions.py)
        absent = _absent(idx, p.ref)
        return None if absent is None else (~absent, None)
    return None


_PREFIX = re.compile(r"[^%_\\]*%")
_EXACT = re.compile(r"[^%_\\]*")


def _like(p: E._Like, ctx: E._Ctx, idx: Indexes) -> TV | None:
    n = idx.n
    pat = p.pattern
    exact = _EXACT.fullmatch(pat) is not None
    prefix = _PREFIX.fullmatch(pat) is not None
    for index in _term_indexes(idx, p.value, E.Kind.STRING):
        rows = index.compare("==", pat) if exact else index.prefix(pat[:-1]) if prefix else None
        if rows is None and not (exact or prefix):
            rows = index.like(pat)  # any pattern over the distinct values, when fewer
        if rows is not None:
            return _answer(rows, index, n)
    if isinstance(p.value, E._FieldRef):
        grams = [i for i in idx.on(p.value.name) if hasattr(i, "like_candidates")]
    elif isinstance(p.value, E._JsonRef):
        grams = [i for i in idx.on(p.value.field, p.value.path) if hasattr(i, "like_candidates")]
    else:
        return None
    for index in grams:
        cand = index.like_candidates(pat)
        if cand is None:
            continue
        return _answer(cand[_verify(p, ctx, cand)], index, n)
    return None


def _verify(p: E._Like, ctx: E._Ctx, cand: np.ndarray) -> np.ndarray:
    """Which candidates really match: the scan's LIKE on their values only."""
    if not len(cand):
        return np.zeros(0, dtype=bool)
    take = pa.array(cand, type=pa.int64())
    if isinstance(p.value, E._FieldRef):
        vals = E._as_array(ctx.cols.column(p.value.name)).take(take)
    else:
        assert isinstance(p.value, E._JsonRef)
        texts = E._as_array(ctx.cols.column(p.value.field)).take(take).to_pylist()
        path = p.value.path
        picked = [None if s is None else E._walk(json.loads(s), path) for s in texts]
        vals = pa.array([v if type(v) is str else None for v in picked], type=pa.string())
    return np.asarray(pc.match_like(vals, p.pattern).fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)


def _contains(p: Any, idx: Indexes) -> TV | None:
    ref = p.ref
    if not isinstance(ref, E._FieldRef) or not p.items:
        return None
    arrays = [i for i in idx.on(ref.name) if i.is_array and i.path is None]
    if not arrays:
        return None
    index = arrays[0]
    bound = _INT_RANGES.get(index.spec.build.get("element", ""))
    if bound is not None and any(not -bound <= int(v) < bound for v in p.items):
        return None  # the scan refuses such an element literal: let it say so
    items = list(dict.fromkeys(p.items))
    parts = []
    for v in items:
        rows = index.contains(v)
        if rows is None:
            return None
        parts.append(rows)
    rows = _combine(parts, p.mode)
    return _answer(rows, index, idx.n)


def _combine(parts: list[np.ndarray], mode: str) -> np.ndarray:
    """The rows of a contains-all (every item's rows) or contains-any (some item's rows)."""
    if mode == "all":
        rows = parts[0]
        for r in parts[1:]:
            rows = np.intersect1d(rows, r, assume_unique=True)
        return rows
    return np.concatenate(parts) if len(parts) > 1 else parts[0]


_JSON_ARRAY_CAST = {bool: "ARRAY_BOOL", int: "ARRAY_DOUBLE", float: "ARRAY_DOUBLE", str: "ARRAY_VARCHAR"}
_EXACT_FLOAT = 2.0**53  # below it, every int and float64 compares with Python's exactness


def _contains_json(p: Any, idx: Indexes) -> TV | None:
    """``json_contains[_all|_any]`` / ``array_contains*`` on a JSON path, from the path's
    ``ARRAY_*`` indexes: an item is looked up in the index of its own JSON type (a number in
    ARRAY_DOUBLE, a string in ARRAY_VARCHAR, a bool in ARRAY_BOOL: the scan's ``_json_eq``
    never equates a bool with a number), so a mixed list needs one index per type. The scan
    is never null here (a row whose path is not an array is false), and the rows whose path
    is an array are every row outside an ARRAY index's null rows (what ``_all`` of an empty
    list selects)."""
    ref = p.ref
    arrays = {i.cast: i for i in idx.on(ref.field, ref.path) if i.is_array}
    if not arrays:
        return None
    n = idx.n
    if any(type(v) not in _JSON_ARRAY_CAST for v in p.items):
        return None  # an array item (``json_contains(path, [1, 2])``): the scan answers
    # Distinct items by JSON type and value (dict.fromkeys would fold True into 1).
    items = list({(type(v) if type(v) is not int else float, v): v for v in p.items}.values())
    if not items:
        if p.mode != "all":
            return np.zeros(n, dtype=bool), None
        null = next(iter(arrays.values())).null_mask()
        return (np.ones(n, dtype=bool) if null is None else ~null), None
    parts = []
    for v in items:
        index = arrays.get(_JSON_ARRAY_CAST[type(v)])
        if index is None:
            return None  # no index of the item's type on the path: the scan answers
        rows = _json_element_rows(index, v)
        if rows is None:
            return None
        parts.append(rows)
    rows = _combine(parts, p.mode)
    return _mask(rows, n), None


def _json_element_rows(index: Any, v: Any) -> np.ndarray | None:
    """The rows whose array holds an element equal to ``v`` as the scan's ``_json_eq`` says
    (Python's exact comparison of numbers), or None when the index cannot say exactly: a
    number's terms are int64 (every element an integer that fits) or float64, and beyond
    2**53 a float64 term may stand for an integer it does not equal."""
    if type(v) is int or type(v) is float:
        f = float(v)
        if f != f or abs(f) >= _EXACT_FLOAT:
            return None
        if index.term_type == "int64":
            if type(v) is float and not v.is_integer():
                return index.rows[:0]
            return index.contains(int(v))
        return index.contains(f)
    return index.contains(v)
