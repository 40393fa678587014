"""``text_match(field, 'words'[, minimum_should_match=k])`` and ``phrase_match(field,
'phrase'[, slop])`` in filters (Milvus 2.6; issue 15): compiled by ``expr_functions.py``'s
``compile_call``, evaluated per segment view like every other predicate, so deletes,
upserts, partitions, TTL and the read's snapshot apply to them as to any filter.

The query text is analyzed once, at compile time, with the field's analyzer; what a row
holds comes from the first of these that the segment has (``text/postings.py`` does the
matching, the same code for all three):

1. its committed text-match index (``index/text_index.py``: the builder writes one for
   every sealed segment of an ``enable_match`` field, memory-mapped at open);
2. for a sealed segment without one yet (just flushed or compacted, too small to get a
   file, its file unreadable): postings built in memory from the segment's text, once,
   by whichever comes first of the first match and the index builder, which writes them
   to the file (``SealedSegment.text_postings``);
3. for the growing segment: its token table, extended with the rows that arrived since the
   last match (rows are tokenized once; a reader with an older, shorter view drops the
   rows beyond it).

Null values match nothing, and their negation nothing either (Milvus's valid bitmap; here
the predicate is null there, and Kleene logic does the rest).

What is refused, with Milvus's words where it has them: a field that is not VARCHAR ("text
match operation on non-string is unsupported"), one without ``enable_match`` ('field "x"
does not enable match'), a query that is not a string literal, a slop that is not a
non-negative uint32 constant, ``minimum_should_match`` outside [1, 1000]. A field with
multi-language analyzers is refused too: Milvus supports those for BM25 search only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa

from keeldb.engine import expr as E
from keeldb.engine.segment import SealedSegment
from keeldb.schema import DataType
from keeldb.text import Analyzer, MultiAnalyzer, postings
from keeldb.text.postings import Occurrences, Postings, TokenTable

if TYPE_CHECKING:
    from keeldb.engine.expr_functions import NamedArg

MAX_SLOP = 2**32 - 1  # Milvus: a uint32
MIN_SHOULD_RANGE = (1, 1000)  # Milvus's bounds on minimum_should_match


# -- where a segment's tokens come from --------------------------------------------------------


def source(ctx: E._Ctx, field: str, analyzer: Analyzer) -> tuple[Occurrences, np.ndarray]:
    """(the occurrences of the view's tokens, its null rows) -- the module doc's order."""
    cols = ctx.cols
    seg = getattr(cols, "segment", None)
    if seg is None:  # a plain table: tokenized for this evaluation only
        table = TokenTable(analyzer)
        table.add(E._as_array(ctx.column(field)).to_pylist())
        return table, table.null_rows()
    index = seg.indexes.get(field)
    committed: Postings | None = getattr(index, "postings", None)
    if committed is not None and committed.n_rows == seg.num_rows:
        return committed, committed.null_rows
    if isinstance(seg, SealedSegment):
        memo = seg.text_postings(field, analyzer)
        return memo, memo.null_rows
    table = seg.text_tables.get(field)
    if table is None:
        table = seg.text_tables.setdefault(field, TokenTable(analyzer))
    view = cols

    def values(start: int, stop: int) -> list[Any]:
        return view.column(field).slice(start, stop - start).to_pylist()

    table.cover(ctx.n, values)
    return table, table.null_rows()


def _answer(hit: np.ndarray, nulls: np.ndarray, n: int) -> pa.Array:
    nulls = nulls[nulls < n]
    if not len(nulls):
        return pa.array(hit)
    mask = np.zeros(n, dtype=bool)
    mask[nulls] = True
    return pa.array(hit, mask=mask)


# -- the predicates -----------------------------------------------------------------------------


@dataclass(eq=False)
class TextMatch(E._Pred):
    field: str
    analyzer: Analyzer
    terms: list[str]  # the query's tokens, repeats kept (each is one clause)
    minimum: int | None = None
    pos: int = 0

    def eval(self, ctx: E._Ctx) -> pa.Array:
        src, nulls = source(ctx, self.field, self.analyzer)
        return _answer(postings.text_match(src, self.terms, ctx.n, self.minimum), nulls, ctx.n)


@dataclass(eq=False)
class PhraseMatch(E._Pred):
    field: str
    analyzer: Analyzer
    tokens: list[tuple[str, int]]  # the query's (token, position) pairs
    slop: int = 0
    pos: int = 0

    def eval(self, ctx: E._Ctx) -> pa.Array:
        src, nulls = source(ctx, self.field, self.analyzer)
        return _answer(postings.phrase_match(src, self.tokens, self.slop, ctx.n), nulls, ctx.n)


# -- compiling ------------------------------------------------------------------------------------


def _field(c: E._Compiler, low: str, v: E._Value) -> tuple[str, Analyzer]:
    what = "text match" if low == "text_match" else "phrase match"
    if not (isinstance(v, E._FieldRef) and v.dtype == DataType.VARCHAR):
        raise c.error(f"{what} operation on non-string is unsupported ({low} needs a VARCHAR field, got {E._describe(v)})", v.pos)
    f = c.schema.field(v.name)
    assert f is not None
    if not f.enable_match:
        raise c.error(f'field "{v.name}" does not enable match (set enable_analyzer=True and enable_match=True on it)', v.pos)
    analyzer = f.analyzer
    if isinstance(analyzer, MultiAnalyzer):
        raise c.error(
            f'field "{v.name}" has multi-language analyzers (multi_analyzer_params), which Milvus supports for BM25 '
            f"full-text search only: {low} is not supported on it",
            v.pos,
        )
    return v.name, analyzer


def _query(c: E._Compiler, low: str, v: E._Value) -> str:
    if not (isinstance(v, E._Lit) and v.kind is E.Kind.STRING):
        raise c.error(f"{low}: the query must be a string literal, got {E._describe(v)}", v.pos)
    return str(v.value)


def _shown(v: E._Value) -> str:
    """An argument as Milvus's messages quote it."""
    if isinstance(v, E._Lit):
        return repr(v.value) if v.kind is E.Kind.STRING else str(v.value).lower() if v.kind is E.Kind.BOOL else str(v.value)
    return E._describe(v)


def compile_text_match(c: E._Compiler, low: str, args: list[E._Value], pos: int) -> E._Pred:
    from keeldb.engine.expr_functions import NamedArg

    named = [a for a in args if isinstance(a, NamedArg)]
    plain = [a for a in args if not isinstance(a, NamedArg)]
    if len(plain) != 2 or len(named) > 1 or (named and args[-1] is not named[0]):
        raise c.error(f"{low} takes a VARCHAR field and a query string, then optionally minimum_should_match=<n>", pos)
    field, analyzer = _field(c, low, plain[0])
    query = _query(c, low, plain[1])
    minimum = _minimum(c, named[0]) if named else None
    return TextMatch(field, analyzer, analyzer.terms(query) if query else [], minimum, pos=pos)


def _minimum(c: E._Compiler, arg: NamedArg) -> int:
    v = arg.value
    if not (isinstance(v, E._Lit) and v.kind is E.Kind.INT):
        raise c.error("minimum_should_match should be a const integer expression", v.pos)
    n = int(v.value)
    low, high = MIN_SHOULD_RANGE
    if n < low:
        raise c.error(f"minimum_should_match should be >= {low}, got {n}", v.pos)
    if n > high:
        raise c.error(f"minimum_should_match should be <= {high}, got {n}", v.pos)
    return n


def compile_phrase_match(c: E._Compiler, low: str, args: list[E._Value], pos: int) -> E._Pred:
    from keeldb.engine.expr_functions import NamedArg

    for a in args:
        if isinstance(a, NamedArg):
            raise c.error(f"{low} takes no named arguments (minimum_should_match is text_match's)", a.pos)
    if len(args) not in (2, 3):
        raise c.error(f"{low} takes a VARCHAR field, a phrase string and optionally a slop, got {len(args)} arguments", pos)
    field, analyzer = _field(c, low, args[0])
    query = _query(c, low, args[1])
    slop = 0
    if len(args) == 3:
        s = args[2]
        # Milvus's words, typo included
        if not (isinstance(s, E._Lit) and s.kind is E.Kind.INT):
            raise c.error(f'"slop" should be a const integer expression with "uint32" value. "slop" expression passed: {_shown(s)}', s.pos)
        slop = int(s.value)
        if slop < 0:
            raise c.error(f'"slop" should not be a negative interger. "slop" passed: {slop}', s.pos)  # sic
        if slop > MAX_SLOP:
            raise c.error(f'"slop" exceeds the range of "uint32". "slop" expression passed: {slop}', s.pos)
    return PhraseMatch(field, analyzer, analyzer.positioned(query) if query else [], slop, pos=pos)
