"""The BM25 function's write side: text -> the output field's term-frequency vectors.

A BM25 function's output field (SPARSE_FLOAT_VECTOR) is *derived* from its input field (an
analyzed VARCHAR): each row's text goes through the input field's analyzer, every token is
hashed with Milvus's ``HashString2LessUint32`` (``text.token_hash``: CRC-32 of the token's
first 100 UTF-8 bytes, modulo 2^32 - 1 -- the dimension Milvus's ``BM25FunctionRunner``
uses) and the row's vector is hash -> count; an empty text is an empty row. The client
never writes it: ``rows.columns_to_batch`` refuses a value and fills the column from here,
before a timestamp is taken, so a batch is still all-or-nothing. The derived column is then
logged like any other column, so recovery, flush and compaction carry it without knowing it
was derived. A search's text is turned into query term counts the same way
(``query_rows``); the scoring is ``bm25.py``'s.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from itertools import chain
from typing import Any

import numpy as np

from keeldb.errors import InvalidArgument
from keeldb.fields.sparse_vector import SparseRows
from keeldb.schema import CollectionSchema, FieldSchema
from keeldb.text import Analyzer, MultiAnalyzer, token_hash


def term_counts(analyzer: Analyzer, text: str) -> Counter[int]:
    """One text's hashed terms and their counts (Milvus's ``embeddingMap[hash] += 1``; two
    tokens with the same hash add up, as they do in Milvus)."""
    if not text:
        return Counter()
    return Counter(token_hash(t) for t in analyzer.terms(text))


def rows_from_counts(counts: Sequence[Counter[int]]) -> SparseRows:
    """Term counts as CSR rows: dimensions ascending, weights the counts as float32."""
    indptr = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum([len(c) for c in counts], out=indptr[1:])
    idx = np.empty(int(indptr[-1]), dtype=np.uint32)
    val = np.empty(int(indptr[-1]), dtype=np.float32)
    for i, c in enumerate(counts):
        if c:
            keys = sorted(c)
            a, b = int(indptr[i]), int(indptr[i + 1])
            idx[a:b] = keys
            val[a:b] = [c[k] for k in keys]
    return SparseRows(indptr, idx, val)


def rows_from_terms(terms: Sequence[Sequence[str]]) -> SparseRows:
    """Each row's tokens as CSR rows of hashed-term counts -- what ``term_counts`` and
    ``rows_from_counts`` give, in a few vectorised steps: every distinct token of the batch
    is hashed once, and the (row, hash) pairs are counted by one ``np.unique``."""
    n = len(terms)
    flat = list(chain.from_iterable(terms))
    codes: dict[str, int] = {}
    code = np.fromiter((codes.setdefault(t, len(codes)) for t in flat), dtype=np.int64, count=len(flat))
    hashes = np.fromiter((token_hash(t) for t in codes), dtype=np.uint64, count=len(codes))
    row_of = np.repeat(np.arange(n, dtype=np.uint64), [len(t) for t in terms])
    keys, counts = np.unique((row_of << np.uint64(32)) | hashes[code], return_counts=True)
    indptr = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(np.bincount((keys >> np.uint64(32)).astype(np.int64), minlength=n), out=indptr[1:])
    return SparseRows(indptr, (keys & np.uint64(0xFFFFFFFF)).astype(np.uint32), counts.astype(np.float32))


def _analyzers(f: FieldSchema, by_values: Sequence[Any] | None, n: int) -> list[Analyzer]:
    """Each row's analyzer: the field's, or for a multi-language field the one its
    ``by_field`` value names (the default one when it names none)."""
    a = f.analyzer
    if isinstance(a, MultiAnalyzer):
        names = by_values if by_values is not None else [None] * n
        return [a.pick(None if v is None else str(v)) for v in names]
    return [a] * n


def derive(schema: CollectionSchema, output: str, columns: dict[str, Any]) -> SparseRows:
    """The output column of the BM25 function writing ``output``, from the batch's
    converted input column (an Arrow array, defaults applied)."""
    f = schema.bm25_input(output)
    assert f is not None, f"{output} is no BM25 output"
    texts = columns[f.name].to_pylist()
    by = getattr(f.analyzer, "by_field", None)
    by_values = columns[by].to_pylist() if by is not None and by in columns else None
    per_row = _analyzers(f, by_values, len(texts))
    return rows_from_terms([a.terms(t) if t else [] for a, t in zip(per_row, texts, strict=True)])


def query_rows(schema: CollectionSchema, output: str, data: Any, analyzer_name: str | None = None) -> SparseRows:
    """Search texts as query term counts, analyzed like the rows (``analyzer_name`` picks
    a multi-language field's analyzer, as Milvus's search parameter does)."""
    f = schema.bm25_input(output)
    assert f is not None, f"{output} is no BM25 output"
    if isinstance(data, str):
        data = [data]
    if not isinstance(data, Sequence) or isinstance(data, bytes) or not data:
        raise InvalidArgument("data must be a non-empty list of query texts")
    if not all(isinstance(t, str) for t in data):
        raise InvalidArgument(
            f"field {output!r} is the output of a BM25 function: search it with text (a list of strings), not vectors"
        )
    a = f.analyzer
    analyzer = a.pick(analyzer_name) if isinstance(a, MultiAnalyzer) else a
    return rows_from_terms([analyzer.terms(t) if t else [] for t in data])
