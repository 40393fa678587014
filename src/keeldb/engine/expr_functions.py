"""Filter functions and the newer operand types of Milvus's filter language, compiled by
``engine/expr.py``'s compiler and evaluated on the same column sources, vectorised:

- ARRAY fields: ``array_contains`` / ``array_contains_all`` / ``array_contains_any``,
  ``array_length``, element access ``tags[0]`` (a value, compared like any other). They work
  on the Arrow list column's two flat buffers -- offsets and values -- with numpy and
  ``pyarrow.compute``; no per-row Python.
- JSON: ``json_contains`` / ``json_contains_all`` / ``json_contains_any`` (on an ARRAY
  field they are the ``array_*`` functions, as in Milvus), ``array_length`` of a JSON
  array, ``exists path`` (the path holds a non-null value). A JSON value's type is only known per row, so these walk the
  already-parsed objects once per row, like the JSON paths of ``expr.py``.
- GEOMETRY: ``ST_EQUALS``, ``ST_TOUCHES``, ``ST_OVERLAPS``, ``ST_CROSSES``,
  ``ST_CONTAINS``, ``ST_INTERSECTS``, ``ST_WITHIN`` (``op(field, 'WKT')``),
  ``ST_DWITHIN(field, 'POINT (lon lat)', metres)`` and ``ST_ISVALID(field)``: one shapely
  (GEOS) call over the whole column. ST_DWITHIN measures, as Milvus does, metres on the
  sphere from the point to the nearest point of each geometry (great-circle distance,
  radius 6,371,008.8 m), so coordinates are longitude/latitude in degrees.
- TIMESTAMPTZ: ``ISO '...'`` literals and ``field + INTERVAL 'P1DT2H'`` (ISO 8601
  durations; years and months are calendar months, added in UTC with the day clamped to
  the month's end), compared as microseconds.

- Text: ``text_match(field, 'words'[, minimum_should_match=k])`` and
  ``phrase_match(field, 'phrase'[, slop])`` on an ``enable_match`` VARCHAR field, through
  its text-match postings (``engine/text_match.py``).

Function names are Milvus's, all lower or all upper case (``ST_Contains`` is refused, as
Milvus refuses it). Milvus's ``random_sample`` is refused with a reason.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import shapely

from keeldb.engine import expr as E
from keeldb.engine import text_match
from keeldb.errors import InvalidArgument
from keeldb.fields import timestamptz
from keeldb.fields.geometry import geometries_of, parse_wkt
from keeldb.schema import DataType

if TYPE_CHECKING:
    from lark import Token

EARTH_RADIUS_M = 6_371_008.8
NOT_YET = {
    "random_sample": "random_sample is not supported by keeldb",
}

# -- values -------------------------------------------------------------------------------


@dataclass(eq=False)
class ListLit(E._Value):
    """A list of constants where a function takes one (``[1, 2]``, or a template's list)."""

    items: list[E._Lit]

    def describe(self) -> str:
        return "a list literal"


@dataclass(eq=False)
class NamedArg(E._Value):
    """``name=value`` inside a call: only text_match's ``minimum_should_match=k``, as in
    Milvus's grammar."""

    name: str
    value: E._Value

    def describe(self) -> str:
        return f"the named argument {self.name}="


@dataclass(eq=False)
class ArrayElement(E._Value):
    """``field[i]`` on an ARRAY field: the i-th element, null where the array is shorter
    or null."""

    field: str
    index: int
    dtype: DataType  # the element type

    def describe(self) -> str:
        return f"element {self.index} of ARRAY field '{self.field}'"

    def arrow(self, ctx: E._Ctx) -> pa.Array:
        lists = ctx.column(self.field)
        offsets, lengths, flat = _flat(lists)
        valid = lengths > self.index
        if lists.null_count:
            valid &= np.asarray(lists.is_valid(), dtype=bool)
        if not valid.any():
            return pa.nulls(len(lengths), type=flat.type)
        idx = np.where(valid, offsets[:-1] - offsets[0] + self.index, 0)
        taken = flat.take(pa.array(idx, type=pa.int64()))
        return pc.if_else(pa.array(valid), taken, pa.scalar(None, type=flat.type))

    def numeric(self, ctx: E._Ctx) -> tuple[np.ndarray, np.ndarray | None]:
        return E._to_numpy(self.arrow(ctx))


@dataclass(eq=False)
class ArrayLength(E._Value):
    """``array_length(x)``: elements of an ARRAY field, or of a JSON array (null when the
    JSON value is not an array)."""

    ref: E._FieldRef | E._JsonRef

    def describe(self) -> str:
        return "array_length(...)"

    def arrow(self, ctx: E._Ctx) -> pa.Array:
        if isinstance(self.ref, E._FieldRef):
            return pc.list_value_length(ctx.column(self.ref.name)).cast(pa.int64())
        vals = ctx.json_values(self.ref)
        return pa.array([len(v) if type(v) is list else None for v in vals], type=pa.int64())

    def numeric(self, ctx: E._Ctx) -> tuple[np.ndarray, np.ndarray | None]:
        return E._to_numpy(self.arrow(ctx))


@dataclass(eq=False)
class TimeShift(E._Value):
    """``tsz + INTERVAL '...'`` / ``tsz - INTERVAL '...'``: a TIMESTAMPTZ value moved."""

    base: E._Value
    months: int
    micros: int

    def describe(self) -> str:
        return "a TIMESTAMPTZ expression"

    def arrow(self, ctx: E._Ctx) -> pa.Array:
        col = E._arrow_value(self.base, ctx, E.Kind.TIME)
        micros = np.asarray(timestamptz.micros_of(col).fill_null(0), dtype=np.int64)
        valid = np.asarray(col.is_valid(), dtype=bool) if col.null_count else None
        if self.months:
            micros = add_months(micros, self.months)
        micros = micros + self.micros
        arr = pa.array(micros, type=pa.int64(), mask=None if valid is None else ~valid)
        return arr.cast(timestamptz.ARROW_TYPE)


def _flat(lists: pa.Array) -> tuple[np.ndarray, np.ndarray, pa.Array]:
    """(offsets, per-row lengths, the values the rows span) of a list array."""
    lists = E._as_array(lists)
    offsets = np.asarray(lists.offsets, dtype=np.int64)
    lengths = np.diff(offsets)
    flat = lists.values.slice(int(offsets[0]), int(offsets[-1] - offsets[0]))
    return offsets, lengths, flat


def add_months(micros: np.ndarray, months: int) -> np.ndarray:
    """Calendar months added in UTC, the day clamped to the new month's last day."""
    t = micros.astype("datetime64[us]")
    day = t.astype("datetime64[D]")
    month = t.astype("datetime64[M]")
    day_index = (day - month.astype("datetime64[D]")).astype(np.int64)
    time_of_day = t - day.astype("datetime64[us]")
    new_month = month + np.timedelta64(months, "M")
    days_in = ((new_month + np.timedelta64(1, "M")).astype("datetime64[D]") - new_month.astype("datetime64[D]")).astype(np.int64)
    new_day = new_month.astype("datetime64[D]") + np.minimum(day_index, days_in - 1).astype("timedelta64[D]")
    return (new_day.astype("datetime64[us]") + time_of_day).astype(np.int64)


_DURATION = re.compile(
    r"^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?$"
)


def parse_interval(text: str) -> tuple[int, int] | None:
    """An ISO 8601 duration as (months, microseconds), or None if it is not one."""
    m = _DURATION.match(text)
    if m is None or text in ("P", "PT") or text.endswith("T"):
        return None
    y, mo, w, d, h, mi, s = m.groups()
    months = int(y or 0) * 12 + int(mo or 0)
    micros = round(
        ((int(w or 0) * 7 + int(d or 0)) * 86400 + int(h or 0) * 3600 + int(mi or 0) * 60 + float(s or 0)) * 1_000_000
    )
    return months, micros


# -- predicates -----------------------------------------------------------------------------


@dataclass(eq=False)
class Contains(E._Pred):
    """``array_contains`` / ``json_contains`` (``mode`` "one"), ``..._all``, ``..._any``."""

    ref: E._FieldRef | E._JsonRef
    items: list[Any]
    mode: str
    float32: bool = False
    pos: int = 0

    def eval(self, ctx: E._Ctx) -> pa.Array:
        if isinstance(self.ref, E._JsonRef):
            return self._json(ctx)
        lists = E._as_array(ctx.column(self.ref.name))
        n = len(lists)
        offsets, lengths, flat = _flat(lists)
        parent = np.repeat(np.arange(n), lengths)
        items = list(dict.fromkeys(self.items))
        if self.float32:
            items = np.asarray(items, dtype=np.float32).tolist()
        if self.mode == "all":
            hit = np.ones(n, dtype=bool)
            for v in items:
                rows = np.zeros(n, dtype=bool)
                rows[parent[np.asarray(pc.equal(flat, pa.scalar(v, type=flat.type)), dtype=bool)]] = True
                hit &= rows
        else:
            hit = np.zeros(n, dtype=bool)
            if items and len(flat):
                found = np.asarray(pc.is_in(flat, value_set=pa.array(items, type=flat.type)), dtype=bool)
                hit[parent[found]] = True
        mask = None if not lists.null_count else ~np.asarray(lists.is_valid(), dtype=bool)
        return pa.array(hit, mask=mask)

    def _json(self, ctx: E._Ctx) -> pa.Array:
        vals = ctx.json_values(self.ref)
        items = self.items
        out = np.zeros(len(vals), dtype=bool)
        keys = [_json_key(x) for x in items]
        if all(k is not None for k in keys):
            # Scalar items: one set per row instead of items x elements comparisons.
            for i, v in enumerate(vals):
                if type(v) is list:
                    have = {_json_key(e) for e in v}
                    out[i] = all(k in have for k in keys) if self.mode == "all" else any(k in have for k in keys)
            return pa.array(out)
        for i, v in enumerate(vals):
            if type(v) is not list:
                continue
            if self.mode == "one":
                out[i] = any(_json_eq(e, items[0]) for e in v)
            elif self.mode == "all":
                out[i] = all(any(_json_eq(e, x) for e in v) for x in items)
            else:
                out[i] = any(_json_eq(e, x) for e in v for x in items)
        return pa.array(out)


def _json_key(v: Any) -> tuple[bool, Any] | None:
    """A scalar JSON value as a set key equal exactly where ``_json_eq`` is: numbers by value
    (``1`` and ``1.0`` one key), a bool never a number (Python's ``True == 1`` is kept apart
    by the flag); None for arrays and objects."""
    t = type(v)
    return (t is bool, v) if t is bool or t is int or t is float or t is str else None


def _json_eq(a: Any, b: Any) -> bool:
    """JSON equality as Milvus compares: numbers by value (bool is not a number), strings
    and bools exactly, arrays element by element by these rules (Milvus's
    ``CompareTwoJsonArray``: same length, ``[1, 2.0]`` equals ``[1, 2]``, ``[true]`` does
    not equal ``[1]``)."""
    if type(a) is list or type(b) is list:
        return type(a) is list and type(b) is list and len(a) == len(b) and all(map(_json_eq, a, b))
    if type(a) is bool or type(b) is bool:
        return type(a) is type(b) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


@dataclass(eq=False)
class ArrayEquals(E._Pred):
    """``arr == [..]`` / ``arr != [..]`` on an ARRAY field: the whole array equals the list
    (same length, equal element by element), vectorised over the list column's buffers;
    null where the array is null."""

    ref: E._FieldRef
    items: list[Any]
    negate: bool
    float32: bool = False
    pos: int = 0

    def eval(self, ctx: E._Ctx) -> pa.Array:
        lists = E._as_array(ctx.column(self.ref.name))
        offsets, lengths, flat = _flat(lists)
        rows = np.flatnonzero(lengths == len(self.items))
        base = offsets[:-1][rows] - offsets[0]
        for i, v in enumerate(self.items):
            if not len(rows):
                break
            try:
                lit = pa.scalar(float(np.float32(v)) if self.float32 else v, type=flat.type)
            except (pa.ArrowInvalid, OverflowError, TypeError):
                rows = rows[:0]  # the element type cannot hold the item (300 in an INT8 array)
                break
            got = flat.take(pa.array(base + i, type=pa.int64()))
            keep = np.asarray(pc.equal(got, lit).fill_null(False), dtype=bool)
            rows, base = rows[keep], base[keep]
        hit = np.zeros(len(lists), dtype=bool)
        hit[rows] = True
        if self.negate:
            hit = ~hit
        mask = None if not lists.null_count else ~np.asarray(lists.is_valid(), dtype=bool)
        return pa.array(hit, mask=mask)


@dataclass(eq=False)
class JsonArrayEquals(E._Pred):
    """``path == [..]`` / ``path != [..]`` on a JSON path: the value is an array equal to
    the list by ``_json_eq``; null where the value is not an array (another type, as for
    any JSON comparison of mismatched types: neither ``==`` nor ``!=`` selects it)."""

    ref: E._JsonRef
    items: list[Any]
    negate: bool
    pos: int = 0

    def eval(self, ctx: E._Ctx) -> pa.Array:
        vals = ctx.json_values(self.ref)
        n = len(vals)
        out = np.zeros(n, dtype=bool)
        valid = np.zeros(n, dtype=bool)
        items = self.items
        for i, v in enumerate(vals):
            if type(v) is list:
                valid[i] = True
                out[i] = _json_eq(v, items) != self.negate
        return pa.array(out, mask=~valid)


@dataclass(eq=False)
class Exists(E._Pred):
    """``exists path``: the path holds a value -- not missing, not JSON ``null`` (Milvus Lite
    answers so: ``{"k": null}`` does not satisfy ``exists j["k"]``; ``[]`` and ``{}`` do). So it
    is exactly ``path is not null``, which a JSON-path index of any cast type answers
    (``engine/scalar_filter.py``)."""

    ref: E._JsonRef
    pos: int = 0

    def eval(self, ctx: E._Ctx) -> pa.Array:
        vals = ctx.json_values(self.ref)
        return pa.array(np.fromiter((v is not None for v in vals), dtype=bool, count=len(vals)))


_GEO_OPS = {
    "st_equals": shapely.equals,
    "st_touches": shapely.touches,
    "st_overlaps": shapely.overlaps,
    "st_crosses": shapely.crosses,
    "st_contains": shapely.contains,
    "st_intersects": shapely.intersects,
    "st_within": shapely.within,
}


@dataclass(eq=False)
class Spatial(E._Pred):
    """A GEOMETRY predicate over the whole column in one shapely call."""

    field: str
    op: str
    other: Any = None  # the literal geometry (None for ST_ISVALID)
    distance: float = 0.0
    pos: int = 0

    def eval(self, ctx: E._Ctx) -> pa.Array:
        geoms = _geometries(ctx, self.field)
        present = np.array([g is not None for g in geoms], dtype=bool)
        out = np.zeros(len(geoms), dtype=bool)
        if present.any():
            g = geoms[present]
            if self.op == "st_isvalid":
                res = shapely.is_valid(g)
            elif self.op == "st_dwithin":
                res = _metres_to_point(g, self.other) <= self.distance
            else:
                # The literal goes first, prepared (GEOS indexes its edges once): the
                # predicate is then evaluated as that shape's relation to each row's.
                res = _GEO_FLIPPED[self.op](self.other, g)
            out[present] = np.asarray(res, dtype=bool)
        return pa.array(out, mask=None if present.all() else ~present)


# op(row, literal) as a predicate of (literal, row): within <-> contains, the rest symmetric.
_GEO_FLIPPED = {**_GEO_OPS, "st_contains": shapely.within, "st_within": shapely.contains}


def _geometries(ctx: E._Ctx, field: str) -> np.ndarray:
    """The column's geometries, parsed from WKB once per segment (sealed segments never
    change; a growing one's cache is keyed by its row count), beside the parsed-JSON cache:
    parsing is ~10x the cost of a predicate over the same rows."""
    src = ctx.cols
    seg = getattr(src, "segment", None)
    key = "\x00geometry:" + field
    if seg is not None:
        hit = seg.json_cache(key, src.num_rows)
        if hit is not None:
            return hit  # type: ignore[return-value]
    geoms = geometries_of(ctx.column(field))
    if seg is not None:
        seg.store_json_cache(key, src.num_rows, geoms)  # type: ignore[arg-type]
    return geoms


def _metres_to_point(geoms: np.ndarray, point: Any) -> np.ndarray:
    """Great-circle metres from ``point`` to the nearest point of each geometry (the
    nearest point taken in lon/lat degrees), vectorised."""
    lines = shapely.shortest_line(geoms, point)  # from each geometry's nearest point to the point
    coords = shapely.get_coordinates(lines).reshape(-1, 2, 2)
    lon1, lat1 = np.radians(coords[:, 0, 0]), np.radians(coords[:, 0, 1])
    lon2, lat2 = np.radians(coords[:, 1, 0]), np.radians(coords[:, 1, 1])
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


# -- compiling calls ----------------------------------------------------------------------


def compile_call(c: E._Compiler, name_tok: Token, args: list[E._Value]) -> E._Pred | E._Value:
    name = name_tok.value
    pos = E._pos(name_tok)
    low = name.lower()
    if low in NOT_YET and (name.islower() or name.isupper()):
        raise c.error(NOT_YET[low], pos)
    if not (name.islower() or name.isupper()) or low not in _CALLS:
        raise c.error(f"unknown function '{name}' (function names are all lower or all upper case)", pos)
    if low not in _TAKES_NAMED:
        for a in args:
            if isinstance(a, NamedArg):
                raise c.error(f"{low} takes no named arguments", a.pos)
    return _CALLS[low](c, low, args, pos)


def _want(c: E._Compiler, low: str, args: list[E._Value], n: int, pos: int) -> None:
    if len(args) != n:
        raise c.error(f"{low} takes {n} argument{'s' if n != 1 else ''}, got {len(args)}", pos)


def _container(c: E._Compiler, low: str, v: E._Value) -> E._FieldRef | E._JsonRef:
    if isinstance(v, E._JsonRef) or (isinstance(v, E._FieldRef) and v.dtype == DataType.ARRAY):
        return v
    raise c.error(f"{low} needs an ARRAY field or a JSON path, got {E._describe(v)}", v.pos)


def _constants(c: E._Compiler, low: str, v: E._Value, *, many: bool) -> list[E._Lit]:
    if many:
        if not isinstance(v, ListLit):
            raise c.error(f"the second argument of {low} must be a list of constants", v.pos)
        return v.items
    if isinstance(v, E._Lit):
        return [v]
    if isinstance(v, ListLit):
        return [E._Lit(v.pos, E.Kind.LIST, [it.value for it in v.items])]  # a JSON array element
    raise c.error(f"the second argument of {low} must be a constant", v.pos)


def _contains(c: E._Compiler, low: str, args: list[E._Value], pos: int) -> E._Pred:
    _want(c, low, args, 2, pos)
    ref = _container(c, low, args[0])
    mode = "all" if low.endswith("_all") else "any" if low.endswith("_any") else "one"
    lits = _constants(c, low, args[1], many=mode != "one")
    float32 = _elements(c, low, ref, lits) if isinstance(ref, E._FieldRef) else False
    return Contains(ref, [lit.value for lit in lits], mode, float32, pos=pos)


def _elements(c: E._Compiler, what: str, ref: E._FieldRef, lits: list[E._Lit]) -> bool:
    """Check that each literal can be an element of ARRAY field ``ref`` (a number of its
    numeric type -- no float in an integer array --, a string, a bool); whether the
    elements are FLOAT (compared as float32)."""
    f = c.schema.field(ref.name)
    assert f is not None and f.element_type is not None
    want = E._field_kind(f.element_type)
    for lit in lits:
        ok = lit.kind is want or (lit.kind in E._NUMERIC and want in E._NUMERIC and not (want is E.Kind.INT and lit.kind is E.Kind.FLOAT))
        if not ok:
            raise c.error(
                f"{what}: {E._describe(lit)} cannot be an element of ARRAY field '{ref.name}' of {f.element_type.name}",
                lit.pos,
            )
        c.check_lit(lit)
    return f.element_type == DataType.FLOAT


def list_values(v: ListLit) -> list[Any]:
    """A list literal's items as the Python list they stand for (nested lists included)."""
    return [it.value for it in v.items]


def array_compare(c: E._Compiler, op: str, op_pos: int, left: E._Value, right: E._Value) -> E._Pred:
    """A comparison with a list literal: whole-array equality (``==``, ``!=``) of an ARRAY
    field or a JSON path, as Milvus's plan compares an array value (``CompareTwoJsonArray``);
    arrays are not ordered."""
    if isinstance(left, ListLit) and not isinstance(right, ListLit):
        left, right = right, left
    if not isinstance(right, ListLit):  # pragma: no cover - one side is a list literal
        raise c.error(f"cannot compare {E._describe(left)} with {E._describe(right)}", right.pos)
    if op not in ("==", "!="):
        raise c.error(f"operator '{op}' cannot order arrays (only == and != compare a list literal)", op_pos)
    items = list_values(right)
    negate = op == "!="
    if isinstance(left, ListLit):
        return E._Const(_json_eq(list_values(left), items) != negate, pos=left.pos)
    if isinstance(left, E._JsonRef):
        return JsonArrayEquals(left, items, negate, pos=left.pos)
    if isinstance(left, E._FieldRef) and left.dtype == DataType.ARRAY:
        float32 = _elements(c, f"'{op}'", left, right.items)
        return ArrayEquals(left, items, negate, float32, pos=left.pos)
    raise c.error(f"cannot compare {E._describe(left)} with a list literal", right.pos)


def _array_length(c: E._Compiler, low: str, args: list[E._Value], pos: int) -> E._Value:
    _want(c, low, args, 1, pos)
    ref = _container(c, low, args[0])
    return ArrayLength(pos, E.Kind.INT, ref)


def _spatial(c: E._Compiler, low: str, args: list[E._Value], pos: int) -> E._Pred:
    want = 1 if low == "st_isvalid" else 3 if low == "st_dwithin" else 2
    _want(c, low, args, want, pos)
    field = args[0]
    if not (isinstance(field, E._FieldRef) and field.dtype == DataType.GEOMETRY):
        raise c.error(f"{low.upper()} needs a GEOMETRY field first, got {E._describe(field)}", field.pos)
    if low == "st_isvalid":
        return Spatial(field.name, low, pos=pos)
    wkt = args[1]
    if not (isinstance(wkt, E._Lit) and wkt.kind is E.Kind.STRING):
        raise c.error(f"{low.upper()} needs a WKT string literal second", wkt.pos)
    try:
        geom = parse_wkt(wkt.value)
    except InvalidArgument as e:
        raise c.error(e.message, wkt.pos) from None
    if low != "st_dwithin":
        shapely.prepare(geom)
        return Spatial(field.name, low, geom, pos=pos)
    if shapely.get_type_id(geom) != 0:  # Milvus: "geometry B currently supports points only"
        raise c.error("ST_DWITHIN takes a POINT as its second argument", wkt.pos)
    dist = args[2]
    if not (isinstance(dist, E._Lit) and dist.kind in E._NUMERIC) or not math.isfinite(float(dist.value)) or float(dist.value) < 0:
        raise c.error("ST_DWITHIN needs a non-negative distance in metres third", dist.pos)
    return Spatial(field.name, low, geom, float(dist.value), pos=pos)


_CALLS = {
    "array_contains": _contains,
    "array_contains_all": _contains,
    "array_contains_any": _contains,
    "json_contains": _contains,
    "json_contains_all": _contains,
    "json_contains_any": _contains,
    "array_length": _array_length,
    **{op: _spatial for op in (*_GEO_OPS, "st_dwithin", "st_isvalid")},
    "text_match": text_match.compile_text_match,
    "phrase_match": text_match.compile_phrase_match,
}
_TAKES_NAMED = ("text_match", "phrase_match")  # phrase_match refuses them itself, naming why


def element(c: E._Compiler, base: E._FieldRef, subscripts: list[E._Lit], pos: int) -> ArrayElement:
    """``field[i]`` on an ARRAY field."""
    f = c.schema.field(base.name)
    assert f is not None and f.element_type is not None
    if len(subscripts) != 1 or subscripts[0].kind is not E.Kind.INT or int(subscripts[0].value) < 0:
        raise c.error(f"ARRAY field '{base.name}' takes one non-negative integer index", pos)
    return ArrayElement(base.pos, E._field_kind(f.element_type), base.name, int(subscripts[0].value), f.element_type)


def exists(c: E._Compiler, v: E._Value, pos: int) -> E._Pred:
    if not isinstance(v, E._JsonRef) or not v.path:
        raise c.error(f"exists needs a JSON path or dynamic field key, got {E._describe(v)}", v.pos)
    return Exists(v, pos=pos)


def iso_literal(c: E._Compiler, text: str, pos: int) -> E._Lit:
    try:
        return E._Lit(pos, E.Kind.TIME, timestamptz.parse(text, c.timezone))
    except InvalidArgument as e:
        raise c.error(e.message, pos) from None


def interval_literal(c: E._Compiler, text: str, pos: int) -> E._Lit:
    parsed = parse_interval(text)
    if parsed is None:
        raise c.error(f"invalid ISO 8601 duration {text!r} (like 'P1D', 'PT3H', 'P2DT6H')", pos)
    return E._Lit(pos, E.Kind.INTERVAL, parsed)  # type: ignore[arg-type]


def shift(c: E._Compiler, op: str, left: E._Value, right: E._Value) -> E._Value:
    """``time ± INTERVAL``; the interval must be on the right, the time on the left."""
    if left.kind is not E.Kind.TIME or not (isinstance(right, E._Lit) and right.kind is E.Kind.INTERVAL) or op not in "+-":
        raise c.error("INTERVAL can only be added to or subtracted from a TIMESTAMPTZ value", right.pos)
    months, micros = right.value  # type: ignore[misc]
    sign = 1 if op == "+" else -1
    if isinstance(left, TimeShift):
        return TimeShift(left.pos, E.Kind.TIME, left.base, left.months + sign * months, left.micros + sign * micros)
    return TimeShift(left.pos, E.Kind.TIME, left, sign * months, sign * micros)


def template_value(c: E._Compiler, name: str, value: Any, pos: int) -> E._Value:
    """A template parameter (``{name}``) as the literal it stands for."""
    if isinstance(value, list | tuple):
        return ListLit(pos, E.Kind.LIST, [_lit(c, name, v, pos) for v in value])
    return _lit(c, name, value, pos)


def _lit(c: E._Compiler, name: str, v: Any, pos: int) -> E._Lit:
    if isinstance(v, bool | np.bool_):
        return E._Lit(pos, E.Kind.BOOL, bool(v))
    if isinstance(v, int | np.integer):
        lit = E._Lit(pos, E.Kind.INT, int(v))
        c.check_lit(lit)
        return lit
    if isinstance(v, float | np.floating):
        if not math.isfinite(float(v)):
            raise c.error(f"template variable {{{name}}} is not a finite number", pos)
        return E._Lit(pos, E.Kind.FLOAT, float(v))
    if isinstance(v, str):
        return E._Lit(pos, E.Kind.STRING, v)
    if isinstance(v, list | tuple):
        return E._Lit(pos, E.Kind.LIST, [_lit(c, name, x, pos).value for x in v])
    raise c.error(f"template variable {{{name}}} has an unsupported value of type {type(v).__name__}", pos)
