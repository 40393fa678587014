"""Milvus boolean filter expressions: parsing, type checking and vectorised evaluation.

``filter=`` strings reach keeldb from ``query``, ``search`` and ``delete`` exactly as a
``pymilvus`` user wrote them for Milvus, so the language here is Milvus's (see ``Plan.g4`` in
the Milvus source): comparisons, chained ranges, ``in``/``not in``, ``like``, ``is [not]
null``, arithmetic, JSON paths and the dynamic ``$meta`` field, combined with
``and``/``or``/``not``.

The work is split in two so that the expensive part runs once:

* :func:`parse_filter` parses with a LALR grammar (lark) and compiles the tree into a small
  typed plan, rejecting every malformed or ill-typed expression with a :class:`FilterError`
  that points at the offending character — the same expression is usually evaluated against
  many segments.
* :meth:`Filter.evaluate` runs the plan column-at-a-time with ``pyarrow.compute`` and numpy.
  There is no per-row Python for schema fields; the only per-row work is walking a JSON path
  through already-parsed JSON objects, after which comparison is vectorised again.

Nulls follow SQL's three-valued (Kleene) logic: a comparison with a null is unknown, ``not``
of unknown is unknown, ``false and unknown`` is false, ``true or unknown`` is true, and a row
whose final result is unknown is not selected. A JSON value of the wrong type for the
comparison (a string compared with a number, ``true`` compared with ``1``) and a missing JSON
key both count as unknown, so neither ``==`` nor ``!=`` selects them.
"""

from __future__ import annotations

import json
import operator
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import Any, Protocol

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from lark import Lark, Token, Tree
from lark.exceptions import UnexpectedCharacters, UnexpectedInput, UnexpectedToken

from keeldb.errors import FilterError
from keeldb.fields.defaults import MILVUS_TYPE_NAMES
from keeldb.fields.json import cast_values, walk_path
from keeldb.fields.numeric import FLOAT_TYPES, INTEGER_TYPES
from keeldb.schema import DYNAMIC_FIELD, CollectionSchema, DataType

__all__ = ["ArrowColumnSource", "ColumnSource", "Filter", "parse_filter"]

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# ---------------------------------------------------------------------------------------------
# Column sources
# ---------------------------------------------------------------------------------------------


class ColumnSource(Protocol):
    """What :meth:`Filter.evaluate` reads rows from.

    A protocol rather than a class so that the engine can hand over a segment, a memtable or
    a plain table without copying: only the columns the filter names are ever requested.
    """

    num_rows: int

    def column(self, name: str) -> pa.Array | pa.ChunkedArray:
        """A scalar field (VARCHAR/JSON/``$meta`` as ``pa.string()``), ``num_rows`` long."""
        ...

    def json_objects(self, name: str) -> Sequence[object]:
        """The parsed value of each row of a JSON field or ``$meta`` (``None`` for null)."""
        ...


class ArrowColumnSource:
    """A :class:`ColumnSource` over a ``pyarrow.Table``.

    JSON text is parsed lazily and at most once per column, because one filter may walk
    several paths of the same JSON field and parsing dominates the cost of JSON filters.
    """

    def __init__(self, table: pa.Table) -> None:
        self.table = table
        self.num_rows: int = table.num_rows
        self._json: dict[str, list[object]] = {}

    def column(self, name: str) -> pa.Array | pa.ChunkedArray:
        return self.table.column(name)

    def json_objects(self, name: str) -> Sequence[object]:
        cached = self._json.get(name)
        if cached is None:
            loads = json.loads
            texts = self.table.column(name).to_pylist()
            cached = [None if t is None else loads(t) for t in texts]
            self._json[name] = cached
        return cached


# ---------------------------------------------------------------------------------------------
# Grammar
# ---------------------------------------------------------------------------------------------

# Keywords are regexes with a higher priority than NAME and a trailing \b so that "android" is
# an identifier while "and" is the operator. The spellings are exactly those Milvus's lexer
# accepts (``and``/``AND``, not ``And``), so an expression valid here is valid there.
# Precedence, loosest first: or, and, not, predicates (comparison/in/like/is null), + -,
# * / %, unary minus, **. ``not`` binds looser than comparisons so ``not x > 1`` means
# ``not (x > 1)``, as in SQL.
_GRAMMAR = r"""
?start: or_expr

?or_expr: and_expr
        | or_expr OR and_expr                  -> or_
?and_expr: not_expr
         | and_expr AND not_expr               -> and_
?not_expr: predicate
         | NOT not_expr                        -> not_
?predicate: sum
          | sum (CMP_OP sum)+                  -> compare
          | sum IN list                        -> in_
          | sum NOT IN list                    -> not_in
          | sum LIKE STRING                    -> like
          | sum LIKE TEMPLATE                  -> like
          | EXISTS sum                         -> exists
          | sum IS_NULL                        -> is_null
          | sum IS_NOT_NULL                    -> is_not_null
?sum: product
    | sum PLUS product                         -> arith
    | sum MINUS product                        -> arith
?product: unary
        | product STAR unary                   -> arith
        | product SLASH unary                  -> arith
        | product PERCENT unary                -> arith
?unary: power
      | MINUS unary                            -> neg
      | PLUS unary                             -> pos
?power: atom
      | atom POW unary                         -> arith
?atom: INT                                     -> int_lit
     | FLOAT                                   -> float_lit
     | STRING                                  -> str_lit
     | BOOL                                    -> bool_lit
     | NAME                                    -> ident
     | META                                    -> ident
     | NAME subscript+                         -> json_path
     | META subscript+                         -> json_path
     | NAME "(" [call_arg ("," call_arg)*] ")" -> call
     | ISO STRING                              -> iso_lit
     | INTERVAL STRING                         -> interval_lit
     | TEMPLATE                                -> template
     | LITERAL_LIST                            -> list_lit
     | LSQB (sum ("," sum)* ","?)? "]"         -> list_lit
     | "(" or_expr ")"
?call_arg: sum
         | NAMED sum                           -> named_arg
list: LITERAL_LIST
    | LSQB (sum ("," sum)* ","?)? "]"
    | TEMPLATE
subscript: LITERAL_LIST

LITERAL_LIST.4: /LITERAL_LIST_RE/

NAMED.3: /(?:minimum_should_match|MINIMUM_SHOULD_MATCH)\s*=(?!=)/
OR.2: /(?:or|OR)\b|\|\|/
AND.2: /(?:and|AND)\b|&&/
NOT.2: /(?:not|NOT)\b|!(?!=)/
IN.2: /(?:in|IN)\b/
LIKE.2: /(?:like|LIKE)\b/
IS_NOT_NULL.3: /(?:is\s+not\s+null|IS\s+NOT\s+NULL)\b/
IS_NULL.2: /(?:is\s+null|IS\s+NULL)\b/
BOOL.2: /(?:true|True|TRUE|false|False|FALSE)\b/
EXISTS.2: /(?:exists|EXISTS)\b/
ISO.2: /(?:iso|ISO)(?=\s*["'])/
INTERVAL.2: /(?:interval|INTERVAL)(?=\s*["'])/
TEMPLATE: /\{\s*[A-Za-z_][A-Za-z0-9_]*\s*\}/
CMP_OP: /==|!=|<=|>=|<|>/
POW: "**"
STAR: "*"
SLASH: "/"
PERCENT: "%"
PLUS: "+"
MINUS: "-"
LSQB: "["
META: "$meta"
NAME: /[A-Za-z_][A-Za-z0-9_]*/
FLOAT.3: /(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+/
INT: /0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*/
STRING: /"(?:[^"\\\r\n]|\\.)*"/ | /'(?:[^'\\\r\n]|\\.)*'/

%ignore /[ \t\r\n]+/
"""

# A bracketed list of plain literals is lexed as ONE token. ``pk in [...]`` with thousands of
# ids is the common shape (pymilvus turns ``delete(ids=...)`` into it) and token-at-a-time
# LALR parsing costs ~50 us per token, so a 5,000-id list would take a quarter of a second;
# as one token it is lexed by a single regex match and decoded by ``_list_items``. Lists
# holding anything else (``[x, 1 + 1]``) fall back to the general ``list`` rule. JSON
# subscripts (``meta["k"]``, ``meta[0]``) are one-element lists of this token too.
_STR_RE = r"""(?:"(?:[^"\\\r\n]|\\.)*"|'(?:[^'\\\r\n]|\\.)*')"""
_NUM_BODY_RE = (
    r"(?:(?:[0-9]+\.[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|[0-9]+[eE][+-]?[0-9]+"
    r"|0[xX][0-9a-fA-F]+|0[bB][01]+|0[0-7]*|[1-9][0-9]*)"
)
_BOOL_RE = r"(?:true|True|TRUE|false|False|FALSE)\b"
_ITEM_RE = rf"(?:{_STR_RE}|(?:[+-]\s*)?{_NUM_BODY_RE}|{_BOOL_RE})"
_LITERAL_LIST_RE = rf"\[\s*(?:{_ITEM_RE}(?:\s*,\s*{_ITEM_RE})*\s*(?:,\s*)?)?\]"
_ITEM_SCAN = re.compile(
    rf"(?P<str>{_STR_RE})|(?P<sign>[+-])?\s*(?P<num>{_NUM_BODY_RE})|(?P<bool>{_BOOL_RE})"
)

_PARSER = Lark(
    _GRAMMAR.replace("LITERAL_LIST_RE", _LITERAL_LIST_RE),
    parser="lalr",
    lexer="basic",
    propagate_positions=True,
    maybe_placeholders=False,
)


# ---------------------------------------------------------------------------------------------
# Typed plan: values
# ---------------------------------------------------------------------------------------------


class Kind(Enum):
    """The static type of a value expression, used for type checking before evaluation."""

    INT = "integer"
    FLOAT = "float"
    NUMBER = "number"  # arithmetic over a JSON path: numeric, int or float only known per row
    BOOL = "bool"
    STRING = "string"
    JSON = "JSON"  # any JSON value; its type is known only per row
    TIME = "TIMESTAMPTZ"  # microseconds since the epoch (expr_functions.py)
    INTERVAL = "INTERVAL"  # (months, microseconds)
    ARRAY = "ARRAY"  # a whole ARRAY field (filter functions take it)
    GEOMETRY = "GEOMETRY"  # a GEOMETRY field (the ST_ functions take it)
    LIST = "list"  # a list of constants (a template's value, a function's argument)


_NUMERIC = frozenset({Kind.INT, Kind.FLOAT, Kind.NUMBER})
_ORDERED_OPS = frozenset({"<", "<=", ">", ">="})
_CMP: dict[str, Callable[[Any, Any], Any]] = {
    "==": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
_PY_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_FLIP = {"==": "==", "!=": "!=", "<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(eq=False)
class _Value:
    pos: int
    kind: Kind


@dataclass(eq=False)
class _Lit(_Value):
    value: int | float | str | bool


@dataclass(eq=False)
class _FieldRef(_Value):
    name: str
    dtype: DataType


@dataclass(eq=False)
class _JsonRef(_Value):
    field: str
    path: tuple[str | int, ...]
    # A json_cast_function of the path's index (fields/json.py), set where the path is
    # compared with numbers: its numbers are then the cast's (``_Compiler.cast_ref``).
    cast: str | None = None


@dataclass(eq=False)
class _Arith(_Value):
    op: str
    left: _Value
    right: _Value


# The names Milvus's filter compiler gives vector types when it refuses them.
_SEGCORE_VECTOR_NAMES = {
    DataType.FLOAT_VECTOR: "VECTOR_FLOAT",
    DataType.BINARY_VECTOR: "VECTOR_BINARY",
    DataType.FLOAT16_VECTOR: "VECTOR_FLOAT16",
    DataType.BFLOAT16_VECTOR: "VECTOR_BFLOAT16",
    DataType.SPARSE_FLOAT_VECTOR: "VECTOR_SPARSE_FLOAT",
    DataType.INT8_VECTOR: "VECTOR_INT8",
}


def _describe(v: _Value) -> str:
    """How an operand is named in error messages."""
    if hasattr(v, "describe"):
        return v.describe()  # the operand types of expr_functions.py
    if isinstance(v, _FieldRef):
        return f"{v.dtype.name} field '{v.name}'"
    if isinstance(v, _JsonRef):
        return f"JSON path {_path_text(v)}"
    if isinstance(v, _Lit):
        return {
            Kind.INT: "an integer literal",
            Kind.FLOAT: "a float literal",
            Kind.BOOL: "a boolean literal",
            Kind.STRING: "a string literal",
            Kind.TIME: "a timestamp literal",
            Kind.INTERVAL: "an interval literal",
            Kind.LIST: "a list literal",
        }.get(v.kind, "a literal")
    return "an arithmetic expression"


def _path_text(v: _JsonRef) -> str:
    return v.field + "".join(f"[{json.dumps(k)}]" for k in v.path)


# ---------------------------------------------------------------------------------------------
# Evaluation context
# ---------------------------------------------------------------------------------------------




_walk = walk_path  # fields/json.py: the one walk, shared with JSON-path indexes


def _as_array(col: pa.Array | pa.ChunkedArray) -> pa.Array:
    if isinstance(col, pa.ChunkedArray):
        if col.num_chunks == 1:
            return col.chunk(0)
        return col.combine_chunks()
    return col


def _num_array(vals: list[object]) -> pa.Array:
    """JSON numbers (bool excluded: JSON ``true`` is not ``1``) as int64 when possible."""
    picked = [v if (type(v) is int or type(v) is float) else None for v in vals]
    try:
        arr = pa.array(picked)
    except (OverflowError, pa.ArrowInvalid):  # an integer beyond int64: compare as double
        arr = pa.array([None if v is None else float(v) for v in picked], type=pa.float64())
    if arr.type == pa.null():
        arr = arr.cast(pa.int64())
    return arr


class _Ctx:
    """Per-evaluation caches: each column is fetched and each JSON path walked only once."""

    def __init__(self, cols: ColumnSource) -> None:
        self.cols = cols
        self.n: int = int(cols.num_rows)
        self._columns: dict[str, pa.Array] = {}
        self._paths: dict[tuple[str, tuple[str | int, ...]], list[object]] = {}
        self._typed: dict[tuple[str, tuple[str | int, ...], Kind, str | None], pa.Array] = {}

    def column(self, name: str) -> pa.Array:
        arr = self._columns.get(name)
        if arr is None:
            arr = _as_array(self.cols.column(name))
            if len(arr) != self.n:
                raise ValueError(f"column {name!r} has {len(arr)} rows, expected {self.n}")
            self._columns[name] = arr
        return arr

    def json_values(self, ref: _JsonRef) -> list[object]:
        key = (ref.field, ref.path)
        vals = self._paths.get(key)
        if vals is None:
            objs = self.cols.json_objects(ref.field)
            path = ref.path
            if not path:
                vals = list(objs)
            elif len(path) == 1 and type(path[0]) is str:
                k = path[0]
                vals = [o.get(k) if type(o) is dict else None for o in objs]
            else:
                vals = [_walk(o, path) for o in objs]
            if len(vals) != self.n:
                raise ValueError(
                    f"JSON column {ref.field!r} has {len(vals)} rows, expected {self.n}"
                )
            self._paths[key] = vals
        return vals

    def json_typed(self, ref: _JsonRef, kind: Kind) -> pa.Array:
        """The path's values of one JSON type as an Arrow array; other types become null."""
        key = (ref.field, ref.path, kind, ref.cast)
        arr = self._typed.get(key)
        if arr is None:
            vals = self.json_values(ref)
            if kind in _NUMERIC:
                arr = _num_array(vals if ref.cast is None else cast_values(vals, ref.cast))
            elif kind is Kind.STRING:
                arr = pa.array([v if type(v) is str else None for v in vals], type=pa.string())
            elif kind is Kind.BOOL:
                arr = pa.array([v if type(v) is bool else None for v in vals], type=pa.bool_())
            else:  # pragma: no cover - callers always ask for a concrete kind
                raise AssertionError(kind)
            self._typed[key] = arr
        return arr

    def json_is_null(self, ref: _JsonRef) -> pa.Array:
        vals = self.json_values(ref)
        return pa.array(np.fromiter((v is None for v in vals), dtype=bool, count=len(vals)))

    def full(self, value: bool) -> pa.Array:
        return pa.array(np.full(self.n, value, dtype=bool))


# ---------------------------------------------------------------------------------------------
# Value evaluation
# ---------------------------------------------------------------------------------------------


def _lit_scalar(lit: _Lit, like: _Value | None = None) -> pa.Scalar:
    """A literal as an Arrow scalar typed to compare the way Milvus does.

    A number compared with a FLOAT field is rounded to float32 first (Milvus casts the
    literal to the field's type), so ``f == 0.1`` finds rows stored from ``0.1``.
    """
    v = lit.value
    if lit.kind is Kind.BOOL:
        return pa.scalar(v, pa.bool_())
    if lit.kind is Kind.STRING:
        return pa.scalar(v, pa.string())
    if lit.kind is Kind.TIME:
        return pa.scalar(v, pa.int64()).cast(pa.timestamp("us", tz="UTC"))
    if getattr(like, "dtype", None) == DataType.FLOAT:  # a FLOAT field, or an element of a FLOAT array
        return pa.scalar(float(v), pa.float32())
    if lit.kind is Kind.INT:
        return pa.scalar(v, pa.int64())
    return pa.scalar(v, pa.float64())


def _to_numpy(arr: pa.Array) -> tuple[np.ndarray, np.ndarray | None]:
    """Values (nulls filled with 0) and a validity mask (None when there are no nulls)."""
    t = arr.type
    if pa.types.is_integer(t):
        target = pa.int64()
    elif pa.types.is_floating(t):
        target = pa.float64()
    else:  # pragma: no cover - the type checker only lets numbers through
        raise AssertionError(t)
    if arr.type != target:
        arr = arr.cast(target)
    if arr.null_count:
        valid = arr.is_valid().to_numpy(zero_copy_only=False)
        return arr.fill_null(0).to_numpy(zero_copy_only=False), valid
    return arr.to_numpy(zero_copy_only=False), None


def _and_masks(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
    if a is None:
        return b
    if b is None:
        return a
    return a & b


def _arith_np(
    op: str, a: np.ndarray, b: np.ndarray, valid: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """One arithmetic operator with Milvus's (C++) semantics on numpy operands.

    Integer ``/`` truncates toward zero and ``%`` takes the sign of the dividend, as in C++;
    dividing by zero gives null rather than an error because it depends on row data.
    """
    both_int = a.dtype.kind in "iu" and b.dtype.kind in "iu"
    with np.errstate(all="ignore"):
        if op == "+":
            return a + b, valid
        if op == "-":
            return a - b, valid
        if op == "*":
            return a * b, valid
        if op == "**":
            return np.power(a.astype(np.float64), b.astype(np.float64)), valid
        zero = b == 0
        if np.any(zero):
            valid = _and_masks(valid, np.broadcast_to(~zero, np.broadcast(a, b).shape).copy())
            b = np.where(zero, 1, b).astype(b.dtype)
        if op == "%":
            return np.fmod(a, b), valid
        if both_int:  # truncating division
            q = a // b
            q = q + ((q * b != a) & ((a < 0) != (b < 0)))
            return q, valid
        return a / b, valid


def _lit_np(v: _Lit) -> np.ndarray:
    return np.asarray(v.value, dtype=np.int64 if v.kind is Kind.INT else np.float64)


def _numeric(v: _Value, ctx: _Ctx) -> tuple[np.ndarray, np.ndarray | None]:
    """A numeric value as numpy (length n, or 0-d for a literal) plus validity."""
    if isinstance(v, _Lit):
        return _lit_np(v), None
    if isinstance(v, _FieldRef):
        return _to_numpy(ctx.column(v.name))
    if isinstance(v, _JsonRef):
        return _to_numpy(ctx.json_typed(v, Kind.NUMBER))
    if hasattr(v, "numeric"):
        return v.numeric(ctx)  # array elements, array_length (expr_functions.py)
    assert isinstance(v, _Arith)
    a, av = _numeric(v.left, ctx)
    b, bv = _numeric(v.right, ctx)
    return _arith_np(v.op, a, b, _and_masks(av, bv))


def _arrow_value(v: _Value, ctx: _Ctx, want: Kind, other: _Value | None = None) -> Any:
    """A value as an Arrow array or scalar; JSON paths are extracted as kind ``want``."""
    if isinstance(v, _Lit):
        return _lit_scalar(v, other)
    if isinstance(v, _FieldRef):
        return ctx.column(v.name)
    if isinstance(v, _JsonRef):
        return ctx.json_typed(v, want)
    if hasattr(v, "arrow"):
        return v.arrow(ctx)  # array elements, array_length, time shifts (expr_functions.py)
    values, valid = _numeric(v, ctx)
    if values.ndim == 0:  # pragma: no cover - literal-only arithmetic is folded at compile time
        values = np.full(ctx.n, values)
    return pa.array(values, mask=None if valid is None else ~valid)


def _renull(result: pa.Array, values: pa.Array) -> pa.Array:
    """Make ``result`` null wherever ``values`` is null (``is_in`` answers false there)."""
    if values.null_count == 0:
        return result
    return pc.if_else(values.is_valid(), result, pa.scalar(None, pa.bool_()))


# ---------------------------------------------------------------------------------------------
# Typed plan: predicates
# ---------------------------------------------------------------------------------------------


class _Pred(ABC):
    """A boolean node; ``eval`` returns a nullable BooleanArray of ``ctx.n`` rows."""

    pos: int = 0

    @abstractmethod
    def eval(self, ctx: _Ctx) -> pa.Array: ...


@dataclass(eq=False)
class _Const(_Pred):
    value: bool
    pos: int = 0

    def eval(self, ctx: _Ctx) -> pa.Array:
        return ctx.full(self.value)


@dataclass(eq=False)
class _And(_Pred):
    parts: list[_Pred]
    pos: int = 0

    def eval(self, ctx: _Ctx) -> pa.Array:
        out = self.parts[0].eval(ctx)
        for p in self.parts[1:]:
            out = pc.and_kleene(out, p.eval(ctx))
        return out


@dataclass(eq=False)
class _Or(_Pred):
    parts: list[_Pred]
    pos: int = 0

    def eval(self, ctx: _Ctx) -> pa.Array:
        out = self.parts[0].eval(ctx)
        for p in self.parts[1:]:
            out = pc.or_kleene(out, p.eval(ctx))
        return out


@dataclass(eq=False)
class _Not(_Pred):
    inner: _Pred
    pos: int = 0

    def eval(self, ctx: _Ctx) -> pa.Array:
        return pc.invert(self.inner.eval(ctx))


@dataclass(eq=False)
class _Truthy(_Pred):
    """A bare BOOL field or JSON path used as a condition: true where the value is true."""

    value: _FieldRef | _JsonRef
    pos: int = 0

    def eval(self, ctx: _Ctx) -> pa.Array:
        if isinstance(self.value, _FieldRef):
            return ctx.column(self.value.name)
        return ctx.json_typed(self.value, Kind.BOOL)


def _json_want(other: _Value) -> Kind:
    """The JSON type to extract when a JSON path is compared with ``other``."""
    return Kind.NUMBER if other.kind in _NUMERIC else other.kind


@dataclass(eq=False)
class _Compare(_Pred):
    op: str
    left: _Value
    right: _Value
    pos: int = 0

    def eval(self, ctx: _Ctx) -> pa.Array:
        fn = _CMP[self.op]
        lj = self.left.kind is Kind.JSON
        rj = self.right.kind is Kind.JSON
        if lj and rj:
            # Two JSON paths: compare numbers with numbers, strings with strings, bools with
            # bools; each typed comparison is null where either side has another type, so
            # coalescing them gives the answer for every row whose types agree.
            kinds = [Kind.NUMBER, Kind.STRING]
            if self.op not in _ORDERED_OPS:
                kinds.append(Kind.BOOL)
            parts = [
                fn(ctx.json_typed(self.left, k), ctx.json_typed(self.right, k))  # type: ignore[arg-type]
                for k in kinds
            ]
            return pc.coalesce(*parts)
        lwant = _json_want(self.right) if lj else self.left.kind
        rwant = _json_want(self.left) if rj else self.right.kind
        left = _arrow_value(self.left, ctx, lwant, self.right)
        right = _arrow_value(self.right, ctx, rwant, self.left)
        return fn(left, right)


@dataclass(eq=False)
class _InSet:
    """The constants of an ``in`` list that share one JSON type (all numbers, all strings or
    all bools); ``all_int`` says whether integer columns can be matched without casting."""

    values: list[Any]
    all_int: bool = False
    _arrays: dict[pa.DataType, pa.Array] = field(default_factory=dict, repr=False)

    def value_set(self, t: pa.DataType) -> pa.Array:
        """The list as an Arrow array of type ``t``, built once per type and reused."""
        arr = self._arrays.get(t)
        if arr is None:
            if pa.types.is_floating(t):
                arr = pa.array([float(x) for x in self.values], type=t)
            else:
                arr = pa.array(self.values, type=t)
            self._arrays[t] = arr
        return arr


@dataclass(eq=False)
class _In(_Pred):
    value: _Value
    groups: dict[Kind, _InSet]
    negate: bool
    pos: int = 0

    def eval(self, ctx: _Ctx) -> pa.Array:
        res = self._in(ctx)
        return pc.invert(res) if self.negate else res

    def _in(self, ctx: _Ctx) -> pa.Array:
        v = self.value
        if isinstance(v, _JsonRef):
            # Mixed lists are fine for JSON: test each JSON type against the items of that
            # type; a row whose type matches no item's type stays null (never selected).
            parts = [self._is_in(ctx.json_typed(v, k), s) for k, s in self.groups.items()]
            if not parts:
                isnull = ctx.json_is_null(v).to_numpy(zero_copy_only=False)
                return pa.array(np.zeros(ctx.n, dtype=bool), mask=isnull)
            return parts[0] if len(parts) == 1 else pc.coalesce(*parts)
        arr = _arrow_value(v, ctx, v.kind)
        if not self.groups:
            return _renull(ctx.full(False), arr)
        (items,) = self.groups.values()
        return self._is_in(arr, items)

    @staticmethod
    def _is_in(arr: pa.Array, items: _InSet) -> pa.Array:
        t = arr.type
        if pa.types.is_integer(t):
            if items.all_int:
                if t != pa.int64():
                    arr = arr.cast(pa.int64())
                t = pa.int64()
            else:
                arr = arr.cast(pa.float64())
                t = pa.float64()
        if len(arr) == 0:
            return pa.array([], type=pa.bool_())
        return _renull(pc.is_in(arr, value_set=items.value_set(t)), arr)


@dataclass(eq=False)
class _Like(_Pred):
    value: _Value
    pattern: str
    pos: int = 0

    def eval(self, ctx: _Ctx) -> pa.Array:
        if isinstance(self.value, _FieldRef):
            arr = ctx.column(self.value.name)
        elif isinstance(self.value, _JsonRef):
            arr = ctx.json_typed(self.value, Kind.STRING)
        else:
            arr = _arrow_value(self.value, ctx, Kind.STRING)  # an element of a VARCHAR array
        return pc.match_like(arr, self.pattern)


@dataclass(eq=False)
class _IsNull(_Pred):
    value: _FieldRef | _JsonRef
    negate: bool
    pos: int = 0

    def eval(self, ctx: _Ctx) -> pa.Array:
        if isinstance(self.value, _FieldRef):
            res = pc.is_null(ctx.column(self.value.name))
        else:
            res = ctx.json_is_null(self.value)
        return pc.invert(res) if self.negate else res


# ---------------------------------------------------------------------------------------------
# Public result
# ---------------------------------------------------------------------------------------------


def _pins(p: _Pred, name: str) -> tuple[str, list[Any]] | None:
    """``p`` as ``name == v`` or ``name in [...]``: the operator and the values."""
    if isinstance(p, _In) and not p.negate and isinstance(p.value, _FieldRef) and p.value.name == name:
        return "in", [v for group in p.groups.values() for v in group.values]
    if isinstance(p, _Compare) and p.op == "==" and isinstance(p.left, _FieldRef) and p.left.name == name and isinstance(p.right, _Lit):
        return "==", [p.right.value]
    return None


@dataclass(frozen=True, eq=False)
class Filter:
    """A parsed, type-checked filter, reusable across any number of row batches."""

    expr: str
    fields: frozenset[str]
    _root: _Pred = field(repr=False)

    def key_list(self, pk: str) -> list[Any] | None:
        """The keys, when the whole filter is ``pk in [...]`` or ``pk == x`` — the shape
        pymilvus gives ``delete(ids=...)`` — so the caller can use the live-key index
        instead of scanning every segment. ``None`` for any other filter."""
        pins = _pins(self._root, pk)
        return None if pins is None else pins[1]

    def pinned(self, name: str) -> tuple[str, list[Any]] | None:
        """``("==", [v])`` or ``("in", [...])`` when the filter pins field ``name`` -- the
        whole filter, or one part of its top-level ``and``, is ``name == v`` or ``name in
        [...]`` -- else None. Every row the filter selects then has one of those values:
        a partition-key read may skip every other partition."""
        parts = self._root.parts if isinstance(self._root, _And) else [self._root]
        return next((hit for p in parts if (hit := _pins(p, name)) is not None), None)

    def key_lower_bound(self, pk: str) -> tuple[int, bool] | None:
        """``(x, inclusive)`` when the whole filter is ``pk > x`` or ``pk >= x`` on an integer
        key — the shape of every query_iterator page after the first — so a caller can range-
        scan a key-sorted index instead of evaluating every row. ``None`` otherwise."""
        root = self._root
        if (
            isinstance(root, _Compare)
            and root.op in (">", ">=")
            and isinstance(root.left, _FieldRef)
            and root.left.name == pk
            and root.left.dtype == DataType.INT64
            and isinstance(root.right, _Lit)
            and isinstance(root.right.value, int)
            and not isinstance(root.right.value, bool)
        ):
            return root.right.value, root.op == ">="
        return None

    def evaluate(self, cols: ColumnSource) -> np.ndarray:
        """Which rows of ``cols`` match: a bool array; unknown (null) counts as no match."""
        ctx = _Ctx(cols)
        if getattr(getattr(cols, "segment", None), "indexes", None):
            from keeldb.engine import scalar_filter  # imports this module

            hit = scalar_filter.evaluate(self._root, ctx)
            if hit is not None:  # the segment's scalar indexes answered (scan-identical)
                return hit
        res = self._root.eval(ctx)
        if isinstance(res, pa.ChunkedArray):
            res = _as_array(res)
        if res.null_count:
            res = res.fill_null(False)
        out = res.to_numpy(zero_copy_only=False)
        if len(out) != ctx.n:  # pragma: no cover - guards a broken ColumnSource
            raise ValueError(f"filter produced {len(out)} results for {ctx.n} rows")
        return out.astype(bool, copy=False)


def parse_filter(
    expr: str | None, schema: CollectionSchema, params: dict[str, Any] | None = None, timezone: str = "UTC",
    json_casts: Mapping[tuple[str, tuple[str | int, ...]], str] | None = None,
) -> Filter | None:  # fmt: skip
    """Parse and type-check a Milvus filter expression against ``schema``.

    ``None``, ``""`` or whitespace mean "no filter" and give ``None``, so callers can pass
    pymilvus's ``filter=""`` default straight through. Anything malformed or ill-typed raises
    :class:`FilterError` with the 0-based position of the offending character.
    ``params``: the values of template variables (``id in {ids}``; pymilvus's
    ``filter_params``); ``timezone``: the zone of ``ISO '...'`` literals without an offset;
    ``json_casts``: the collection's JSON-path indexes with a ``json_cast_function``, by
    (field, path) -- a comparison of such a path with numbers compares the cast's numbers
    (Milvus answers it from the index so), in every segment alike.
    """
    if expr is None:
        return None
    if not isinstance(expr, str):
        raise FilterError(f"filter must be a string, got {type(expr).__name__}")
    if not expr.strip():
        return None
    if params is not None and not isinstance(params, dict):
        raise FilterError(f"filter_params must be a dict, got {type(params).__name__}")
    casts = tuple(sorted(json_casts.items(), key=repr)) if json_casts else ()
    key = (expr, timezone, id(schema), casts)
    hit = _PARSED.get(key) if params is None else None
    if hit is not None and hit[0] is schema:
        return hit[1]
    tree = _parse(expr)
    compiler = _Compiler(expr, schema, params, timezone, dict(casts))
    try:
        root = compiler.predicate(tree)
    except RecursionError:
        raise FilterError("expression is too deeply nested", expr, 0) from None
    flt = Filter(expr=expr, fields=frozenset(compiler.fields), _root=root)
    if params is None:
        if len(_PARSED) >= 256:
            _PARSED.clear()
        _PARSED[key] = (schema, flt)
    return flt


# The last filters parsed (without template values), by (text, timezone, schema, JSON casts): a filter
# is immutable and depends on nothing else, and parsing (lark) costs more than answering a
# selective filter from a scalar index. The schema object is kept and compared, so a
# changed schema (a new object) never meets a filter compiled for another.
_PARSED: dict[tuple[str, str, int, tuple[Any, ...]], tuple[CollectionSchema, Filter]] = {}


# ---------------------------------------------------------------------------------------------
# Parsing
# ---------------------------------------------------------------------------------------------


def _parse(expr: str) -> Tree:
    try:
        return _PARSER.parse(expr)
    except UnexpectedCharacters as e:
        ch = expr[e.pos_in_stream]
        if ch in "\"'":
            raise FilterError("unterminated string literal", expr, e.pos_in_stream) from None
        raise FilterError(f"unexpected character {ch!r}", expr, e.pos_in_stream) from None
    except UnexpectedToken as e:
        tok = e.token
        if tok.type == "$END":
            msg = "unexpected end of expression"
            missing = _unclosed(expr)
            if missing:
                msg += f"; missing {missing!r}"
            raise FilterError(msg, expr, len(expr.rstrip())) from None
        text = tok.value if len(tok.value) <= 40 else tok.value[:37] + "..."
        raise FilterError(f"unexpected token {text!r}", expr, tok.start_pos) from None
    except UnexpectedInput as e:  # pragma: no cover - other lark errors, kept readable
        raise FilterError("invalid expression", expr, getattr(e, "pos_in_stream", 0)) from None


def _unclosed(expr: str) -> str:
    """The closing bracket an incomplete expression lacks, if any, for a friendlier message."""
    stack: list[str] = []
    for tok in _PARSER.lex(expr):
        if tok.value == "(" and tok.type != "STRING":
            stack.append(")")
        elif tok.type == "LSQB":
            stack.append("]")
        elif tok.value in (")", "]") and tok.type != "STRING" and stack:
            stack.pop()
    return stack[-1] if stack else ""


_SIMPLE_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "?": "?",
}
_HEX = set("0123456789abcdefABCDEF")


def _unescape(quoted: str, start: int, expr: str) -> str:
    """Decode a quoted literal (starting at ``start`` in ``expr``) and its C-style escapes.

    An unknown escape such as ``\\%`` or ``\\_`` keeps its backslash, so that it still reaches
    ``like`` as an escaped wildcard.
    """
    body = quoted[1:-1]
    if "\\" not in body:
        return body
    out: list[str] = []
    i = 0
    base = start + 1
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = body[i + 1]
        if n in _SIMPLE_ESCAPES:
            out.append(_SIMPLE_ESCAPES[n])
            i += 2
        elif n in "uUx":
            width = {"u": 4, "U": 8, "x": 2}[n]
            digits = body[i + 2 : i + 2 + width]
            if len(digits) != width or not set(digits) <= _HEX:
                raise FilterError(f"invalid escape sequence '\\{n}'", expr, base + i)
            code = int(digits, 16)
            if code > 0x10FFFF:
                raise FilterError("invalid unicode escape", expr, base + i)
            out.append(chr(code))
            i += 2 + width
        elif n in "01234567":
            j = i + 1
            while j < len(body) and j < i + 4 and body[j] in "01234567":
                j += 1
            out.append(chr(int(body[i + 1 : j], 8)))
            i = j
        else:
            out.append("\\" + n)
            i += 2
    return "".join(out)


_FAST_INT_BODY = re.compile(r"[0-9,\s+-]*")
_LEADING_ZERO = re.compile(r"(?<![0-9])0[0-9]")


def _fast_int_list(text: str) -> list[int] | None:
    """The values of a LITERAL_LIST token holding only decimal int64 integers, else None.

    This is the ``pk in [...]`` shape; ``int()`` over a split is several times faster than
    scanning item by item. Anything unusual (octal, hex, spaced signs, out-of-range values)
    returns None and takes the general path, which also produces exact error positions.
    """
    body = text[1:-1]
    if not _FAST_INT_BODY.fullmatch(body) or _LEADING_ZERO.search(body):
        return None
    parts = body.split(",")
    if not parts[-1].strip():
        parts.pop()
    try:
        values = [int(p) for p in parts]
    except ValueError:
        return None
    if values and (min(values) < INT64_MIN or max(values) > INT64_MAX):
        return None
    return values


def _parse_int(text: str) -> int:
    """Integer literals as Milvus reads them (Go's ``ParseInt(s, 0, 64)``): hex ``0x``,
    binary ``0b`` and C-style octal with a leading ``0``."""
    if len(text) > 1 and text[0] == "0" and text[1].isdigit():
        return int(text, 8)
    return int(text, 0)


# ---------------------------------------------------------------------------------------------
# Compilation: tree -> typed plan
# ---------------------------------------------------------------------------------------------


def _pos(node: Tree | Token) -> int:
    if isinstance(node, Token):
        return node.start_pos or 0
    return getattr(node.meta, "start_pos", 0) if not node.meta.empty else 0


class _Compiler:
    """Turns a lark tree into ``_Pred``/``_Value`` nodes, resolving names and checking types."""

    def __init__(
        self, expr: str, schema: CollectionSchema, params: dict[str, Any] | None = None, timezone: str = "UTC",
        json_casts: dict[tuple[str, tuple[str | int, ...]], str] | None = None,
    ) -> None:  # fmt: skip
        self.expr = expr
        self.schema = schema
        self.json_casts = json_casts or {}
        self.fields: set[str] = set()
        self.params = params or {}  # filter templates: {name} -> value
        self.timezone = timezone  # for ISO literals without an offset

    def error(self, message: str, pos: int) -> FilterError:
        return FilterError(message, self.expr, pos)

    # -- dispatch ----------------------------------------------------------------------------

    def node(self, t: Tree | Token) -> _Pred | _Value:
        if isinstance(t, Token):  # pragma: no cover - every token is wrapped in an alias rule
            raise self.error(f"unexpected token {t.value!r}", _pos(t))
        method = getattr(self, "c_" + t.data)
        return method(t)

    def predicate(self, t: Tree | Token) -> _Pred:
        n = self.node(t)
        if isinstance(n, _Pred):
            return n
        return self.as_condition(n)

    def value(self, t: Tree | Token) -> _Value:
        n = self.node(t)
        if isinstance(n, _Pred):
            raise self.error("a condition cannot be used as a value here", _pos(t))
        return n

    def as_condition(self, v: _Value) -> _Pred:
        """A value where a condition is expected: only booleans qualify. A JSON path alone
        is refused as Milvus refuses it (its type is known per row only: compare it)."""
        if isinstance(v, _Lit) and v.kind is Kind.BOOL:
            return _Const(bool(v.value), pos=v.pos)
        if isinstance(v, _FieldRef) and v.kind is Kind.BOOL:
            return _Truthy(v, pos=v.pos)
        kind = "JSON" if isinstance(v, _JsonRef) else (
            MILVUS_TYPE_NAMES.get(v.dtype, v.dtype.name) if isinstance(v, _FieldRef) else v.kind.value
        )  # fmt: skip
        raise self.error(
            f"predicate is not a boolean expression: {self.expr}, data type: {kind}: "
            f"expected a boolean condition, got {_describe(v)}",
            v.pos,
        )

    # -- boolean structure -------------------------------------------------------------------

    def _flatten(self, t: Tree, data: str) -> list[Tree | Token]:
        out: list[Tree | Token] = []
        stack: list[Tree | Token] = [t]
        while stack:
            cur = stack.pop()
            if isinstance(cur, Tree) and cur.data == data:
                stack.append(cur.children[2])
                stack.append(cur.children[0])
            else:
                out.append(cur)
        return out

    def c_or_(self, t: Tree) -> _Pred:
        parts = [self.predicate(c) for c in self._flatten(t, "or_")]
        # Constant folding is sound under Kleene logic: unknown or true is true and
        # x or false is x, so a ``true`` operand decides and ``false`` operands drop out.
        if any(isinstance(p, _Const) and p.value for p in parts):
            return _Const(True, pos=_pos(t))
        parts = [p for p in parts if not isinstance(p, _Const)] or [_Const(False)]
        return parts[0] if len(parts) == 1 else _Or(parts, pos=_pos(t))

    def c_and_(self, t: Tree) -> _Pred:
        return self.conjunction([self.predicate(c) for c in self._flatten(t, "and_")], _pos(t))

    def c_not_(self, t: Tree) -> _Pred:
        inner = self.predicate(t.children[1])
        if isinstance(inner, _Const):
            return _Const(not inner.value, pos=_pos(t))
        return _Not(inner, pos=_pos(t))

    # -- predicates --------------------------------------------------------------------------

    def c_compare(self, t: Tree) -> _Pred:
        ch = t.children
        operands = [self.value(c) for c in ch[0::2]]
        ops: list[Token] = list(ch[1::2])
        if len(ops) == 1:
            return self.compare(ops[0], operands[0], operands[1])
        if len(ops) > 2:
            raise self.error(
                "a comparison chain may have at most two operators, as in 'a < x < b'",
                ops[2].start_pos or 0,
            )
        o1, o2 = ops[0].value, ops[1].value
        if not (
            (o1 in ("<", "<=") and o2 in ("<", "<=")) or (o1 in (">", ">=") and o2 in (">", ">="))
        ):
            raise self.error(
                "a chained comparison must be a range in one direction, "
                "like 'a < x <= b' or 'a > x >= b'",
                ops[1].start_pos or 0,
            )
        lo, mid, hi = operands
        first = self.compare(ops[0], lo, mid)
        second = self.compare(ops[1], mid, hi)
        return self.conjunction([first, second], _pos(t))

    def conjunction(self, parts: list[_Pred], pos: int) -> _Pred:
        """``and`` of ``parts``, folding constants (unknown and false is false)."""
        if any(isinstance(p, _Const) and not p.value for p in parts):
            return _Const(False, pos=pos)
        parts = [p for p in parts if not isinstance(p, _Const)] or [_Const(True)]
        return parts[0] if len(parts) == 1 else _And(parts, pos=pos)

    def compare(self, op_tok: Token, left: _Value, right: _Value) -> _Pred:
        op = op_tok.value
        op_pos = op_tok.start_pos or 0
        lk, rk = left.kind, right.kind
        if Kind.LIST in (lk, rk):  # whole-array equality: ``arr == [1, 2]``, ``j["k"] != [1, "a"]``
            return _functions().array_compare(self, op, op_pos, left, right)  # type: ignore[no-any-return]
        if lk is Kind.JSON or rk is Kind.JSON:
            other = right if lk is Kind.JSON else left
            if other.kind is Kind.BOOL and op in _ORDERED_OPS:
                raise self.error(f"operator '{op}' cannot order booleans", op_pos)
        elif lk in _NUMERIC and rk in _NUMERIC:
            pass
        elif lk is Kind.STRING and rk is Kind.STRING:
            pass
        elif lk is Kind.TIME and rk is Kind.TIME:
            pass
        elif lk is Kind.BOOL and rk is Kind.BOOL:
            if op in _ORDERED_OPS:
                raise self.error(f"operator '{op}' cannot order booleans", op_pos)
        else:
            # Point at the side that does not fit: the literal if there is one, else the right.
            bad = left if isinstance(left, _Lit) and not isinstance(right, _Lit) else right
            milvus = ""
            if isinstance(left, _FieldRef) and isinstance(right, _FieldRef):  # Milvus's words for two fields
                milvus = (
                    f"comparisons between {MILVUS_TYPE_NAMES.get(left.dtype, left.dtype.name)} and "
                    f"{MILVUS_TYPE_NAMES.get(right.dtype, right.dtype.name)} are not supported: "
                )
            raise self.error(f"{milvus}cannot compare {_describe(left)} with {_describe(right)}", bad.pos)
        for side in (left, right):
            if isinstance(side, _Lit):
                self.check_lit(side)
        if isinstance(left, _Lit) and isinstance(right, _Lit):
            return _Const(bool(_PY_CMP[op](left.value, right.value)), pos=left.pos)
        if isinstance(left, _Lit):  # keep the column on the left: the evaluator's usual shape
            left, right, op = right, left, _FLIP[op]
        if isinstance(left, _JsonRef) and isinstance(right, _Lit) and right.kind in _NUMERIC:
            left = self.cast_ref(left)
        return _Compare(op, left, right, pos=left.pos)

    def cast_ref(self, ref: _JsonRef) -> _JsonRef:
        """``ref`` with its index's json_cast_function, if the path has one: where the path
        is compared with numbers (``==`` .. ``>=``, chained ranges, an ``in`` list of numbers),
        as Milvus answers those from the index; arithmetic, JSON-to-JSON comparisons and
        string or bool literals read the values as stored."""
        fn = self.json_casts.get((ref.field, ref.path))
        return ref if fn is None else _JsonRef(ref.pos, ref.kind, ref.field, ref.path, fn)

    def check_lit(self, lit: _Lit) -> None:
        if lit.kind is Kind.INT and not INT64_MIN <= int(lit.value) <= INT64_MAX:
            raise self.error("integer literal out of the int64 range", lit.pos)

    def c_in_(self, t: Tree) -> _Pred:
        return self.in_list(t.children[0], t.children[-1], negate=False, pos=_pos(t))

    def c_not_in(self, t: Tree) -> _Pred:
        return self.in_list(t.children[0], t.children[-1], negate=True, pos=_pos(t))

    def in_list(self, vt: Tree | Token, lt: Tree, *, negate: bool, pos: int) -> _Pred:
        v = self.value(vt)
        allowed = self.list_kinds(v)
        first = lt.children[0]
        if isinstance(first, Token) and first.type == "TEMPLATE":
            tv = self.template(first)
            items_of = getattr(tv, "items", None)
            if items_of is None:
                raise self.error(f"template variable {first.value} must be a list after 'in'", _pos(first))
            first = Tree("list", list(items_of))  # literals: handled below like parsed elements
        if isinstance(first, Tree) and first.data == "list":
            elems: list[_Value] = list(first.children)  # type: ignore[arg-type]
        elif isinstance(first, Token) and first.type == "LITERAL_LIST":
            fast = _fast_int_list(first.value)
            if fast is not None and not isinstance(v, _Lit):
                if allowed is None or Kind.INT in allowed:
                    groups = {Kind.NUMBER: _InSet(fast, all_int=True)} if fast else {}
                    if fast and isinstance(v, _JsonRef):
                        v = self.cast_ref(v)
                    return _In(v, groups, negate, pos=pos)
            elems = list(self.literal_list(first))
        else:
            elems = [self.value(c) for c in lt.children[1:]]
        items: list[_Lit] = []
        for it in elems:
            if it.kind is Kind.LIST:
                raise self.error("an 'in' list cannot hold arrays (compare a whole array with '==')", it.pos)
            if not isinstance(it, _Lit):
                raise self.error("the elements of an 'in' list must be constants", it.pos)
            if it.kind is Kind.INT and not INT64_MIN <= it.value <= INT64_MAX:  # type: ignore[operator]
                raise self.error("integer literal out of the int64 range", it.pos)
            if allowed is not None and it.kind not in allowed:
                raise self.error(
                    f"{_describe(it)} cannot be matched against {_describe(v)}", it.pos
                )
            items.append(it)
        if isinstance(v, _Lit):
            hit = any(
                (it.kind is v.kind or (it.kind in _NUMERIC and v.kind in _NUMERIC))
                and it.value == v.value
                for it in items
            )
            return _Const(hit != negate, pos=pos)
        grouped: dict[Kind, list[_Lit]] = {}
        for it in items:
            grouped.setdefault(Kind.NUMBER if it.kind in _NUMERIC else it.kind, []).append(it)
        sets = {
            k: _InSet([it.value for it in g], all_int=all(it.kind is Kind.INT for it in g))
            for k, g in grouped.items()
        }
        if isinstance(v, _JsonRef) and list(sets) == [Kind.NUMBER]:
            v = self.cast_ref(v)
        return _In(v, sets, negate, pos=pos)

    @staticmethod
    def list_kinds(v: _Value) -> frozenset[Kind] | None:
        """The literal kinds an ``in`` list may hold for ``v``; None means any (JSON)."""
        if v.kind is Kind.JSON:
            return None
        if v.kind in _NUMERIC:
            return _NUMERIC
        return frozenset({v.kind})

    def c_like(self, t: Tree) -> _Pred:
        v = self.value(t.children[0])
        pat_tok: Token = t.children[2]
        if pat_tok.type == "TEMPLATE":
            pat = self.template(pat_tok)
            if not (isinstance(pat, _Lit) and pat.kind is Kind.STRING):
                raise self.error("a 'like' pattern must be a string", _pos(pat_tok))
            pattern = str(pat.value)
        else:
            pattern = _unescape(pat_tok.value, _pos(pat_tok), self.expr)
        if isinstance(v, _Lit) and v.kind is Kind.STRING:
            arr = pc.match_like(pa.array([v.value]), pattern)
            return _Const(bool(arr[0].as_py()), pos=v.pos)
        element = hasattr(v, "arrow") and v.kind is Kind.STRING
        if not (isinstance(v, _JsonRef) or (isinstance(v, _FieldRef) and v.kind is Kind.STRING) or element):
            raise self.error(
                "like operation on non-string or no-json field is unsupported: 'like' needs a VARCHAR field "
                f"or JSON path, got {_describe(v)}",
                v.pos,
            )
        return _Like(v, pattern, pos=v.pos)

    def c_is_null(self, t: Tree) -> _Pred:
        return _IsNull(self.nullable_ref(t.children[0]), negate=False, pos=_pos(t))

    def c_is_not_null(self, t: Tree) -> _Pred:
        return _IsNull(self.nullable_ref(t.children[0]), negate=True, pos=_pos(t))

    def nullable_ref(self, t: Tree | Token) -> _FieldRef | _JsonRef:
        v = self.value(t)
        if not isinstance(v, _FieldRef | _JsonRef):
            what = _describe(v)
            milvus = "unsupported data type: ARRAY: " if "ARRAY" in what else ""  # Milvus's words for an element
            raise self.error(f"{milvus}'is null' needs a field or JSON path, got {what}", v.pos)
        return v

    # -- functions, templates, timestamps (expr_functions.py) --------------------------------

    def c_call(self, t: Tree) -> _Pred | _Value:
        name_tok: Token = t.children[0]
        args = [self.call_arg(c) for c in t.children[1:] if c is not None]
        return _functions().compile_call(self, name_tok, args)

    def call_arg(self, c: Tree | Token) -> _Value:
        if isinstance(c, Tree) and c.data == "named_arg":  # text_match's minimum_should_match=k
            tok: Token = c.children[0]
            name = tok.value.split("=")[0].strip().lower()
            value = self.value(c.children[1])
            return _functions().NamedArg(_pos(tok), value.kind, name, value)  # type: ignore[no-any-return]
        return self.value(c)

    def c_list_lit(self, t: Tree) -> _Value:
        """A list of constants (``[1, 2]``, ``[[1, "a"], [2]]``): a function's argument
        (``array_contains_any(x, [1, 2])``) or the operand of an array comparison
        (``arr == [1, 2]``). A list inside it is one item, a ``Kind.LIST`` literal holding
        the Python list (a JSON array element, as Milvus's plan has it)."""
        first = t.children[0]
        items: list[_Lit] = []
        if isinstance(first, Token) and first.type == "LITERAL_LIST":
            items = self.literal_list(first)
        else:
            for c in t.children[1:]:
                it = self.value(c)
                if hasattr(it, "items") and it.kind is Kind.LIST:  # a nested list literal
                    it = _Lit(it.pos, Kind.LIST, _functions().list_values(it))
                if not isinstance(it, _Lit):
                    raise self.error("the elements of a list must be constants", it.pos)
                self.check_lit(it)
                items.append(it)
        return _functions().ListLit(_pos(t), Kind.LIST, items)  # type: ignore[no-any-return]

    def c_exists(self, t: Tree) -> _Pred:
        return _functions().exists(self, self.value(t.children[1]), _pos(t))

    def c_iso_lit(self, t: Tree) -> _Value:
        tok: Token = t.children[1]
        return _functions().iso_literal(self, _unescape(tok.value, _pos(tok), self.expr), _pos(t))

    def c_interval_lit(self, t: Tree) -> _Value:
        tok: Token = t.children[1]
        return _functions().interval_literal(self, _unescape(tok.value, _pos(tok), self.expr), _pos(t))

    def c_template(self, t: Tree) -> _Value:
        return self.template(t.children[0])

    def template(self, tok: Token) -> _Value:
        name = tok.value.strip("{} \t")
        if name not in self.params:
            raise self.error(f"the value of expression template variable name {{{name}}} is not found", _pos(tok))
        return _functions().template_value(self, name, self.params[name], _pos(tok))

    # -- values ------------------------------------------------------------------------------

    def c_arith(self, t: Tree) -> _Value:
        left = self.value(t.children[0])
        op_tok: Token = t.children[1]
        right = self.value(t.children[2])
        if Kind.INTERVAL in (left.kind, right.kind) or Kind.TIME in (left.kind, right.kind):
            return _functions().shift(self, op_tok.value, left, right)
        return self.arith(op_tok.value, left, right)

    def arith(self, op: str, left: _Value, right: _Value) -> _Value:
        for side in (left, right):
            if side.kind not in _NUMERIC and side.kind is not Kind.JSON:
                raise self.error(f"arithmetic needs numbers, got {_describe(side)}", side.pos)
            if isinstance(side, _Lit):
                self.check_lit(side)
        if op == "%":
            for side in (left, right):
                if side.kind is Kind.FLOAT:
                    raise self.error(f"'%' needs integers, got {_describe(side)}", side.pos)
        if op in ("/", "%") and isinstance(right, _Lit) and right.value == 0:
            raise self.error("division by zero", right.pos)
        if Kind.JSON in (left.kind, right.kind) or Kind.NUMBER in (left.kind, right.kind):
            kind = Kind.NUMBER
        elif op == "**" or Kind.FLOAT in (left.kind, right.kind):
            kind = Kind.FLOAT
        else:
            kind = Kind.INT
        node = _Arith(left.pos, kind, op, left, right)
        if isinstance(left, _Lit) and isinstance(right, _Lit):
            return self.fold(node)
        return node

    def fold(self, node: _Arith) -> _Lit:
        """Evaluate literal-only arithmetic now, with the same code the rows would use."""
        assert isinstance(node.left, _Lit) and isinstance(node.right, _Lit)
        r, _ = _arith_np(node.op, _lit_np(node.left), _lit_np(node.right), None)
        if node.kind is Kind.INT:
            return _Lit(node.pos, Kind.INT, int(r))
        return _Lit(node.pos, Kind.FLOAT, float(r))

    def c_neg(self, t: Tree) -> _Value:
        op_tok: Token = t.children[0]
        v = self.value(t.children[1])
        if isinstance(v, _Lit) and v.kind in _NUMERIC:
            return _Lit(op_tok.start_pos or 0, v.kind, -v.value)  # type: ignore[operator]
        zero = _Lit(op_tok.start_pos or 0, Kind.INT, 0)
        node = self.arith("-", zero, v)
        node.pos = op_tok.start_pos or 0
        return node

    def c_pos(self, t: Tree) -> _Value:
        v = self.value(t.children[1])
        if v.kind not in _NUMERIC and v.kind is not Kind.JSON:
            raise self.error(f"unary '+' needs a number, got {_describe(v)}", v.pos)
        return v

    def c_int_lit(self, t: Tree) -> _Value:
        tok: Token = t.children[0]
        return self.number(tok.value, _pos(tok))

    def c_float_lit(self, t: Tree) -> _Value:
        tok: Token = t.children[0]
        return _Lit(_pos(tok), Kind.FLOAT, float(tok.value))

    def c_str_lit(self, t: Tree) -> _Value:
        tok: Token = t.children[0]
        return _Lit(_pos(tok), Kind.STRING, _unescape(tok.value, _pos(tok), self.expr))

    def c_bool_lit(self, t: Tree) -> _Value:
        tok: Token = t.children[0]
        return _Lit(_pos(tok), Kind.BOOL, tok.value.lower() == "true")

    def c_ident(self, t: Tree) -> _Value:
        return self.resolve(t.children[0])

    def c_json_path(self, t: Tree) -> _Value:
        name_tok: Token = t.children[0]
        base = self.resolve(name_tok)
        if isinstance(base, _FieldRef) and base.dtype == DataType.ARRAY:
            subs = [lit for sub in t.children[1:] for lit in self.literal_list(sub.children[0])]
            return _functions().element(self, base, subs, base.pos)
        if not isinstance(base, _JsonRef):
            raise self.error(f"{_describe(base)} is not JSON and cannot be subscripted", base.pos)
        path = list(base.path)
        for sub in t.children[1:]:
            tok: Token = sub.children[0]
            keys = self.literal_list(tok)
            if len(keys) != 1:
                raise self.error("a JSON subscript takes exactly one key or index", _pos(tok))
            key = keys[0]
            if key.kind is Kind.STRING:
                path.append(key.value)  # type: ignore[arg-type]
            elif key.kind is Kind.INT and int(key.value) >= 0:
                path.append(int(key.value))
            else:
                raise self.error(
                    "a JSON subscript must be a string key or a non-negative integer index",
                    key.pos,
                )
        return _JsonRef(base.pos, Kind.JSON, base.field, tuple(path))

    def literal_list(self, tok: Token) -> list[_Lit]:
        """Decode a LITERAL_LIST token into literals that know their own positions."""
        start = _pos(tok)
        items: list[_Lit] = []
        append = items.append
        for m in _ITEM_SCAN.finditer(tok.value):
            group = m.lastgroup
            if group == "num":
                num = m.group("num")
                if num.isdecimal() and (num[0] != "0" or len(num) == 1) and len(num) < 19:
                    lit = _Lit(start + m.start("num"), Kind.INT, int(num))  # the common case
                else:
                    lit = self.number(num, start + m.start("num"))
                sign = m.group("sign")
                if sign:
                    lit.pos = start + m.start("sign")
                    if sign == "-":
                        lit.value = -lit.value  # type: ignore[operator]
                append(lit)
            elif group == "str":
                p = start + m.start("str")
                append(_Lit(p, Kind.STRING, _unescape(m.group("str"), p, self.expr)))
            else:
                append(_Lit(start + m.start("bool"), Kind.BOOL, m.group("bool")[0] in "tT"))
        return items

    def number(self, text: str, pos: int) -> _Lit:
        """An unsigned numeric literal; integers may be hex, binary or C-style octal."""
        if text[:2] not in ("0x", "0X") and any(c in text for c in ".eE"):
            return _Lit(pos, Kind.FLOAT, float(text))
        value = _parse_int(text)
        if value > 2**63:  # 2**63 itself is allowed so that -9223372036854775808 parses
            raise self.error("integer literal out of the int64 range", pos)
        return _Lit(pos, Kind.INT, value)

    def resolve(self, tok: Token) -> _Value:
        """A name: a schema field, ``$meta``, or (dynamic schemas) a key of ``$meta``."""
        name = tok.value
        pos = _pos(tok)
        dynamic = self.schema.enable_dynamic_field
        if name == DYNAMIC_FIELD:
            if not dynamic:
                raise self.error("'$meta' needs a collection with enable_dynamic_field=True", pos)
            self.fields.add(DYNAMIC_FIELD)
            return _JsonRef(pos, Kind.JSON, DYNAMIC_FIELD, ())
        f = self.schema.field(name)
        if f is None:
            if not dynamic:
                raise self.error(f"field {name} not exist: unknown field '{name}'", pos)
            self.fields.add(DYNAMIC_FIELD)
            return _JsonRef(pos, Kind.JSON, DYNAMIC_FIELD, (name,))
        if f.kind.is_vector:
            kind = _SEGCORE_VECTOR_NAMES.get(f.dtype, f.dtype.name)
            raise self.error(f"unsupported data type: {kind}: vector field '{name}' cannot be used in a filter", pos)
        self.fields.add(name)
        if f.dtype == DataType.JSON:
            return _JsonRef(pos, Kind.JSON, name, ())
        return _FieldRef(pos, _field_kind(f.dtype), name, f.dtype)


def _field_kind(dtype: DataType) -> Kind:
    if dtype in INTEGER_TYPES:
        return Kind.INT
    if dtype in FLOAT_TYPES:
        return Kind.FLOAT
    if dtype == DataType.BOOL:
        return Kind.BOOL
    if dtype == DataType.VARCHAR:
        return Kind.STRING
    return _OTHER_KINDS[dtype]


_OTHER_KINDS = {DataType.TIMESTAMPTZ: Kind.TIME, DataType.ARRAY: Kind.ARRAY, DataType.GEOMETRY: Kind.GEOMETRY}


def _functions() -> Any:
    """The function and operand module, imported on first use: it builds on this one."""
    from keeldb.engine import expr_functions

    return expr_functions
