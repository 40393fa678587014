"""Stateful property test of BM25 full-text search (issue 15): random sequences of insert,
upsert, partial update, delete (by key, by filter, by a ``like`` on the text), flush,
compaction, index builds and reopen over a collection whose VARCHAR field feeds a BM25
function, with BM25 searches (filters, limit, offset, several queries, k1 / b from the
index or the search) checked against an independent BM25 over the model's live rows.

A sibling of ``test_model.py`` rather than more of it: that machine checks every column and
search kind after every step; this one checks scores, whose statistics (N, df, avgdl) are the
whole collection's, so every write anywhere moves them. The reference is Milvus's formula
computed here over the analyzer's token *strings* (``test_bm25.reference``) -- not the
engine's hashed vectors, postings or visibility masks -- so a stale statistic, a deleted row
still counted, a row scored by the wrong version or a segment-local IDF all show as a wrong
score. Flush, compaction, index builds and reopen must in addition leave every score
bit-for-bit unchanged.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

import keeldb
from keeldb import DataType
from keeldb.engine import compaction as compaction_mod
from keeldb.engine import index_builder as index_builder_mod
from keeldb.schema import Function, FunctionType
from keeldb.text import build_analyzer, token_hash
from tests.test_bm25 import reference

# Stop words, stems of one word ("run" / "runs" / "running"), case and punctuation, so the
# analyzers disagree about what a term is and a text's length is not its word count.
WORDS = ["the", "a", "and", "Apple", "apples", "run", "runs", "running", "fig", "Fig,", "kiwi",
         "kiwi!", "mango", "lemon", "date", "cherry"]  # fmt: skip
QUERY_WORDS = [*WORDS, "zebra"]  # a term no row holds
ANALYZERS: dict[str, dict[str, Any]] = {
    "english": {"type": "english"},  # stemmed, stop words gone
    "standard": {"type": "standard"},
    "whitespace": {"tokenizer": "whitespace", "filter": ["lowercase"]},  # "fig," is a term
}
# The reference scores token strings, the engine their CRC-32 hashes: the same only if no
# two terms of the vocabulary share a hash.
for _p in ANALYZERS.values():
    _terms = {t for w in QUERY_WORDS for t in build_analyzer(_p).terms(w)}
    assert len({token_hash(t) for t in _terms}) == len(_terms)

INDEX_PARAMS = [{}, {"bm25_k1": 1.5, "bm25_b": 0.6}, {"bm25_k1": 0.8, "bm25_b": 1.0, "inverted_index_algo": "DAAT_MAXSCORE"}]
SEARCH_PARAMS = [None, {"bm25_k1": 0.0, "bm25_b": 0.0}, {"bm25_k1": 3.0}, {"bm25_b": 0.25}]
FILTERS: dict[str | None, Callable[[dict[str, Any]], bool]] = {
    None: lambda r: True,
    "id < 20": lambda r: r["id"] < 20,
    "val % 2 == 0": lambda r: r["val"] % 2 == 0,
    'text like "%kiwi%"': lambda r: "kiwi" in r["text"],
    "id in [1, 5, 9, 13, 17, 21] or val % 5 == 0": lambda r: r["id"] in (1, 5, 9, 13, 17, 21) or r["val"] % 5 == 0,
}
# Searched before and after every flush, compaction, index build and reopen: every row with
# a positive score (the limit exceeds the key space), so the comparison has no ties to allow.
PROBES = ["apple kiwi", "run the date date", "Fig, mango lemon cherry apples"]

KEYS = st.integers(min_value=0, max_value=40)
KEY_LISTS = st.lists(KEYS, min_size=1, max_size=8, unique=True)
TEXTS = st.lists(st.sampled_from(WORDS), max_size=7).map(" ".join)  # "" included
QUERIES = st.lists(st.sampled_from(QUERY_WORDS), min_size=1, max_size=4).map(" ".join)
ROWS = st.lists(st.tuples(KEYS, TEXTS), min_size=1, max_size=8, unique_by=lambda r: r[0])


def close(a: float, b: float) -> bool:
    """Scores travel as float32: equal to ~1e-7 relative."""
    return math.isclose(a, b, rel_tol=2e-6, abs_tol=1e-9)


class BM25Model(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="keeldb-bm25model-"))
        self.model: dict[int, dict[str, Any]] = {}
        self.version = 0
        # Tiny automatic flushes and indexes on segments of 4 rows and more, so a search
        # meets sealed segments (scored through their postings) and the growing one (a scan).
        self._saved = (index_builder_mod.INDEX_MIN_ROWS, compaction_mod.COMPACTION_RETENTION_MS)
        index_builder_mod.INDEX_MIN_ROWS = 4
        compaction_mod.COMPACTION_RETENTION_MS = 0  # compaction drops dead versions at once
        self.client = self._open()

    def _open(self) -> keeldb.Client:
        return keeldb.Client(str(self.dir), auto_flush_bytes=1024)

    @initialize(
        analyzer=st.sampled_from(sorted(ANALYZERS)),
        index=st.sampled_from(INDEX_PARAMS),
        seed=st.lists(TEXTS, min_size=8, max_size=35),
    )
    def create(self, analyzer: str, index: dict[str, Any], seed: list[str]) -> None:
        """The collection, and rows under keys 0, 1, ...: hypothesis's swarm testing often
        disables the writes of a sequence, and searches of an empty collection test little."""
        self.analyzer = build_analyzer(ANALYZERS[analyzer])
        self.index = index
        s = self.client.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True, analyzer_params=ANALYZERS[analyzer])
        s.add_field("val", DataType.INT64)
        s.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
        s.add_function(Function("bm25", FunctionType.BM25, ["text"], ["sv"]))
        ip = self.client.prepare_index_params()
        ip.add_index("sv", "SPARSE_INVERTED_INDEX", metric_type="BM25", params=index)
        self.client.create_collection("m", schema=s, index_params=ip)
        self.insert(list(enumerate(seed)))

    def _val(self) -> int:
        self.version += 1
        return self.version

    # -- the reference -----------------------------------------------------------------------

    def k1_b(self, params: dict[str, Any] | None) -> tuple[float, float]:
        """A search's k1 and b: its own, else the index's, else Milvus's defaults."""
        p = {"bm25_k1": 1.2, "bm25_b": 0.75, **self.index, **(params or {})}
        return p["bm25_k1"], p["bm25_b"]

    def truth(self, query: str, params: dict[str, Any] | None = None, flt: str | None = None) -> dict[int, float]:
        """Every live row the filter selects with a positive score; the statistics are
        over all live rows whatever the filter."""
        if not self.model:
            return {}
        k1, b = self.k1_b(params)
        docs = {k: r["text"] for k, r in self.model.items()}
        scores = reference(docs, query, k1, b, analyzer=self.analyzer)
        keep = FILTERS[flt]
        return {k: s for k, s in scores.items() if keep(self.model[k])}

    def search(self, queries: list[str], **kw: Any) -> list[list[dict[str, Any]]]:
        params = kw.pop("params", None)
        sp = {"metric_type": "BM25", "params": params} if params else None
        return self.client.search("m", queries, anns_field="sv", search_params=sp, **kw)

    def probe(self) -> list[dict[int, float]]:
        hits = self.search(PROBES, limit=64) + self.search(PROBES[:1], limit=64, filter="val % 2 == 0")
        return [{h["id"]: h["distance"] for h in res} for res in hits]

    def unchanged(self, op: Callable[[], Any]) -> None:
        """``op`` moves rows between segments (or reloads them): no score may move."""
        before = self.probe()
        op()
        assert self.probe() == before

    # -- writes ------------------------------------------------------------------------------

    @rule(rows=ROWS)
    def insert(self, rows: list[tuple[int, str]]) -> None:
        batch = [{"id": k, "text": t, "val": self._val()} for k, t in rows]
        if any(k in self.model for k, _ in rows):
            try:
                self.client.insert("m", batch)
            except keeldb.PrimaryKeyExists:
                return
            raise AssertionError("insert of a live key was accepted")
        assert self.client.insert("m", batch)["insert_count"] == len(batch)
        self.model.update({r["id"]: r for r in batch})

    @rule(rows=ROWS)
    def upsert(self, rows: list[tuple[int, str]]) -> None:
        batch = [{"id": k, "text": t, "val": self._val()} for k, t in rows]
        assert self.client.upsert("m", batch)["upsert_count"] == len(batch)
        self.model.update({r["id"]: r for r in batch})

    @rule(keys=KEY_LISTS, text=st.none() | TEXTS)
    def partial_update(self, keys: list[int], text: str | None) -> None:
        """val changes; the text (and so the derived vector) only when given. A key that is
        not live is an insert, which needs the text (not nullable, no default)."""
        v = self._val()
        batch = [{"id": k, "val": v} | ({} if text is None else {"text": text}) for k in keys]
        if text is None and any(k not in self.model for k in keys):
            try:
                self.client.upsert("m", batch, partial_update=True)
            except keeldb.InvalidArgument as e:
                assert "fieldSchema(text) has no corresponding fieldData" in str(e)
                return
            raise AssertionError("a partial update inserting a row without its text was accepted")
        assert self.client.upsert("m", batch, partial_update=True)["upsert_count"] == len(batch)
        for r in batch:
            self.model[r["id"]] = self.model.get(r["id"], {}) | r

    @rule(keys=KEY_LISTS)
    def delete(self, keys: list[int]) -> None:
        assert self.client.delete("m", ids=keys)["delete_count"] == sum(1 for k in keys if k in self.model)
        for k in keys:
            self.model.pop(k, None)

    @rule(flt=st.sampled_from(["val % 2 == 0 and id < 20", 'text like "%kiwi%"', 'text like "Apple%"']))
    def delete_filter(self, flt: str) -> None:
        preds = {
            "val % 2 == 0 and id < 20": lambda r: r["val"] % 2 == 0 and r["id"] < 20,
            'text like "%kiwi%"': lambda r: "kiwi" in r["text"],
            'text like "Apple%"': lambda r: r["text"].startswith("Apple"),
        }
        victims = [k for k, r in self.model.items() if preds[flt](r)]
        assert self.client.delete("m", filter=flt)["delete_count"] == len(victims)
        for k in victims:
            del self.model[k]

    # -- moves that must not change a score --------------------------------------------------

    @rule()
    def flush(self) -> None:
        self.unchanged(lambda: self.client.flush("m"))

    @rule()
    def compact(self) -> None:
        self.unchanged(lambda: self.client.compact("m"))

    @rule()
    def wait_for_index(self) -> None:
        """Every sealed segment indexed. A background flush or compaction still running
        would commit an unindexed segment after ``wait_for_index`` returned: wait for it."""

        def op() -> None:
            self.client._coll("m").wait_background()  # noqa: SLF001 - see the docstring
            self.client.wait_for_index("m")

        self.unchanged(op)
        assert self.client.describe_index("m", "sv")["pending_index_rows"] == 0

    @rule()
    def reopen(self) -> None:
        def op() -> None:
            self.client.close()
            self.client = self._open()

        self.unchanged(op)

    # -- reads -------------------------------------------------------------------------------

    @precondition(lambda self: bool(self.model))  # the probes search an empty collection
    @rule(
        queries=st.lists(QUERIES, min_size=1, max_size=3),
        flt=st.sampled_from(list(FILTERS)),
        limit=st.integers(min_value=1, max_value=12),
        offset=st.sampled_from([0, 0, 1, 3]),
        params=st.sampled_from(SEARCH_PARAMS),
    )
    def bm25_search(self, queries: list[str], flt: str | None, limit: int, offset: int, params: dict[str, Any] | None) -> None:
        """A page of hits per query: its scores those of the reference's ranks offset ..
        offset + limit, every hit a live row the filter selects at its true score. Ids are
        then right up to ties, wherever the page boundaries cut them."""
        res = self.search(queries, limit=limit, offset=offset, filter=flt or "", params=params, output_fields=["text", "val"])
        assert len(res) == len(queries)
        for q, hits in zip(queries, res, strict=True):
            truth = self.truth(q, params, flt)
            want = sorted(truth.values(), reverse=True)[offset : offset + limit]
            got = [h["distance"] for h in hits]
            assert len(got) == len(want) and all(map(close, got, want)), (q, flt, params, got, want)
            assert got == sorted(got, reverse=True)
            assert len({h["id"] for h in hits}) == len(hits)
            for h in hits:
                assert h["id"] in truth and close(h["distance"], truth[h["id"]]), (q, h, truth)
                row = self.model[h["id"]]
                assert h["entity"] == {"text": row["text"], "val": row["val"]}

    @invariant()
    def rows_match(self) -> None:
        rows = self.client.query("m", filter="", output_fields=["text", "val"], limit=100)
        assert {r["id"]: (r["text"], r["val"]) for r in rows} == {k: (r["text"], r["val"]) for k, r in self.model.items()}

    @invariant()
    def probes_match(self) -> None:
        """Every row with a positive score, at its true score (limit > the key space)."""
        asked = [(q, None) for q in PROBES] + [(PROBES[0], "val % 2 == 0")]
        for (q, flt), got in zip(asked, self.probe(), strict=True):
            want = self.truth(q, flt=flt)
            assert got.keys() == want.keys(), (q, got, want)
            assert all(close(got[k], want[k]) for k in want), (q, got, want)

    def teardown(self) -> None:
        index_builder_mod.INDEX_MIN_ROWS, compaction_mod.COMPACTION_RETENTION_MS = self._saved
        self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)


BM25Model.TestCase.settings = settings(
    max_examples=int(os.environ.get("KEELDB_MODEL_EXAMPLES", "25")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestBM25Model = BM25Model.TestCase
