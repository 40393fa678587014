"""``text_match`` / ``phrase_match`` (issue 15), embedded: every answer is checked against an
independent reference written here over the analyzer's (token, position) pairs -- Milvus's
rules: any query token (or at least ``minimum_should_match`` of them, repeats counted); a
phrase when one occurrence of each query token, shifted by its query position, fits in a
span of ``slop`` -- on every path a segment can take: the growing segment's token table, a
sealed segment's postings built in memory, its committed index file, after a reopen, after
a compaction; and under deletes, upserts, partitions and TTL, where text match is one more
predicate on the read's snapshot.
"""

from __future__ import annotations

import itertools
import os
import random
from pathlib import Path
from typing import Any

import pytest

import keeldb
from keeldb import DataType
from keeldb.engine import index_builder as index_builder_mod
from keeldb.errors import FilterError
from keeldb.text import build_analyzer
from tests.scalar_util import base_schema, create_flat
from tests.test_ttl import advance

ANALYZER_PARAMS = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ["of", "the"]}]}
ANALYZER = build_analyzer(ANALYZER_PARAMS)
WORDS = ["alpha", "Beta", "gamma", "delta", "of", "the", "eps"]


def corpus(n: int, seed: int = 1) -> list[str | None]:
    rng = random.Random(seed)
    out: list[str | None] = []
    for i in range(n):
        if i % 23 == 7:
            out.append(None)
        else:
            words = [rng.choice(WORDS) for _ in range(rng.randint(0, 9))]
            out.append(" ".join(words) + ("!" if i % 4 == 0 else ""))
    return out


def ref_text(doc: str | None, query: str, minimum: int = 1) -> bool:
    if doc is None:
        return False
    have = {t for t, _ in ANALYZER.positioned(doc)}
    return sum(t in have for t in ANALYZER.terms(query)) >= max(minimum, 1)


def ref_phrase(doc: str | None, query: str, slop: int) -> bool:
    if doc is None:
        return False
    q = ANALYZER.positioned(query)
    if len(q) <= 1:
        return ref_text(doc, query) if q else False
    d = ANALYZER.positioned(doc)
    top = max(p for _, p in q)
    places = [[p + top - qp for t, p in d if t == qt] for qt, qp in q]
    return all(places) and any(max(c) - min(c) <= slop for c in itertools.product(*places))


QUERIES: list[tuple[str, Any]] = [
    ("text_match(text, '{q}')", lambda d, q: ref_text(d, q)),
    ("text_match(text, '{q}', minimum_should_match=2)", lambda d, q: ref_text(d, q, 2)),
    ("TEXT_MATCH(text, '{q}', MINIMUM_SHOULD_MATCH=3)", lambda d, q: ref_text(d, q, 3)),
    ("phrase_match(text, '{q}')", lambda d, q: ref_phrase(d, q, 0)),
    ("phrase_match(text, '{q}', 1)", lambda d, q: ref_phrase(d, q, 1)),
    ("PHRASE_MATCH(text, '{q}', 3)", lambda d, q: ref_phrase(d, q, 3)),
    ("not phrase_match(text, '{q}', 2)", lambda d, q: d is not None and not ref_phrase(d, q, 2)),
]
TEXTS = ["alpha beta", "beta alpha", "gamma", "Alpha the gamma", "delta eps delta", "the", "", "beta beta", "eps of alpha beta"]


def _schema(c: keeldb.Client) -> Any:
    s = base_schema(c)
    s.add_field("text", DataType.VARCHAR, max_length=500, enable_analyzer=True, enable_match=True,
                analyzer_params=ANALYZER_PARAMS, nullable=True)  # fmt: skip
    s.add_field("n", DataType.INT64)
    return s


def _open(path: Path, **kwargs: Any) -> keeldb.Client:
    c = keeldb.Client(str(path))
    if not c.has_collection("c"):
        create_flat(c, "c", _schema(c), **kwargs)
    return c


def _rows(docs: dict[int, str | None], n: int = 0) -> list[dict[str, Any]]:
    return [{"id": k, "v": [float(k), 1.0], "text": d, "n": n} for k, d in docs.items()]


def _ids(c: keeldb.Client, flt: str, **kwargs: Any) -> list[int]:
    return sorted(r["id"] for r in c.query("c", flt, output_fields=["id"], **kwargs))


def _check_all(c: keeldb.Client, docs: dict[int, str | None]) -> None:
    for pattern, ref in QUERIES:
        for q in TEXTS:
            flt = pattern.format(q=q)
            want = sorted(k for k, d in docs.items() if ref(d, q))
            assert _ids(c, flt) == want, flt
            assert c.query("c", flt, output_fields=["count(*)"])[0]["count(*)"] == len(want), flt


def _paths(c: keeldb.Client) -> set[str]:
    """Which source each segment of the current snapshot answers from."""
    out = set()
    for v in c.snapshot("c").views:
        seg = v.segment
        if "text" in seg.indexes:
            out.add("file")
        elif type(seg).__name__ == "SealedSegment":
            out.add("memory" if "text" in seg.text_tables else "sealed-untouched")
        elif v.num_rows:
            out.add("growing")
    return out


def test_reference_answers_on_every_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_builder_mod, "INDEX_MIN_ROWS", 10**9)  # no files yet
    docs = dict(enumerate(corpus(160)))
    c = _open(tmp_path)
    ids = list(docs)
    c.insert("c", _rows({k: docs[k] for k in ids[:50]}))
    c.insert("c", _rows({k: docs[k] for k in ids[50:80]}))
    _check_all(c, {k: docs[k] for k in ids[:80]})  # the growing segment, tokenized in two steps
    assert _paths(c) == {"growing"}
    c.flush("c")
    c.insert("c", _rows({k: docs[k] for k in ids[80:]}))
    _check_all(c, docs)  # a sealed segment's postings in memory + the growing segment
    assert _paths(c) == {"memory", "growing"}
    monkeypatch.setattr(index_builder_mod, "INDEX_MIN_ROWS", 10)
    c.flush("c")
    c.wait_for_index("c")
    assert _paths(c) == {"file"}
    _check_all(c, docs)  # both sealed segments through their index files
    c.close()
    c = _open(tmp_path)
    assert c._coll("c").report.indexes_loaded == 2
    _check_all(c, docs)  # loaded at open
    c.compact("c")
    c.wait_for_index("c")
    assert len(c.snapshot("c").views) <= 2 and _paths(c) == {"file"}
    _check_all(c, docs)
    c.close()


def test_an_older_snapshot_sees_only_its_rows(tmp_path: Path) -> None:
    """The growing segment's token table covers rows a pinned reader (an iterator's
    snapshot) must not see."""
    c = _open(tmp_path)
    c.insert("c", _rows({i: "alpha beta" for i in range(30)}))
    pinned = c.snapshot("c")
    c.insert("c", _rows({i: "alpha beta" for i in range(30, 60)}))
    assert len(_ids(c, "text_match(text, 'alpha')")) == 60  # the table now covers 60 rows
    assert _ids(c, "phrase_match(text, 'alpha beta')", snapshot=pinned) == list(range(30))
    assert _ids(c, "not text_match(text, 'gamma')", snapshot=pinned) == list(range(30))
    c.close()


def test_deletes_upserts_partitions_and_ttl(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_builder_mod, "INDEX_MIN_ROWS", 10)
    c = _open(tmp_path, properties={"collection.ttl.seconds": 60})
    c.create_partition("c", "p1")
    docs: dict[int, str | None] = {i: ("alpha beta" if i % 2 else "gamma delta") for i in range(40)}
    c.insert("c", _rows({k: d for k, d in docs.items() if k < 20}))
    c.insert("c", _rows({k: d for k, d in docs.items() if k >= 20}), partition_name="p1")
    c.flush("c")
    c.wait_for_index("c")
    # an upsert moves a key's text to another match; a delete removes one
    c.upsert("c", _rows({1: "gamma", 2: "alpha beta"}))
    c.delete("c", ids=[3, 4])
    docs.update({1: "gamma", 2: "alpha beta"})
    del docs[3], docs[4]
    want = sorted(k for k, d in docs.items() if d and "alpha" in d)
    assert _ids(c, "text_match(text, 'alpha')") == want
    assert _ids(c, "phrase_match(text, 'alpha beta')", partition_names=["p1"]) == [k for k in want if k >= 20]
    assert c.get("c", ids=[1], output_fields=["text"])[0]["text"] == "gamma"
    hits = c.search("c", [[1.0, 1.0]], limit=50, filter="phrase_match(text, 'alpha beta') and id < 20")[0]
    assert sorted(h["id"] for h in hits) == [k for k in want if k < 20]
    # delete by filter deletes exactly the matching rows, count(*) follows
    before = c.query("c", "", output_fields=["count(*)"])[0]["count(*)"]
    res = c.delete("c", filter="text_match(text, 'gamma') and id >= 30")
    gone = [k for k, d in docs.items() if d and "gamma" in d and k >= 30]
    assert res["delete_count"] == len(gone)
    assert c.query("c", "", output_fields=["count(*)"])[0]["count(*)"] == before - len(gone)
    assert _ids(c, "text_match(text, 'gamma')") == sorted(k for k, d in docs.items() if d and "gamma" in d and k < 30)
    # TTL: the old rows expire, the text match follows
    advance(c, 40)
    c.insert("c", _rows({100: "alpha"}))
    advance(c, 21)
    assert _ids(c, "text_match(text, 'alpha beta')") == [100]
    c.close()


BAD = [
    ("text_match(nope, 'a')", "unknown field 'nope'"),
    ("text_match(plain, 'a')", 'field "plain" does not enable match'),
    ("phrase_match(plain, 'a')", 'field "plain" does not enable match'),
    ("text_match(n, 'a')", "text match operation on non-string is unsupported"),
    ("phrase_match(n, 'a b')", "phrase match operation on non-string is unsupported"),
    ("text_match(text, 1)", "the query must be a string literal"),
    ("text_match(text, plain)", "the query must be a string literal"),
    ("phrase_match(text, 'a b', -1)", '"slop" should not be a negative interger'),
    ("phrase_match(text, 'a b', 1.5)", '"slop" should be a const integer expression with "uint32" value'),
    ("phrase_match(text, 'a b', n)", '"slop" should be a const integer expression'),
    ("phrase_match(text, 'a b', 4294967296)", '"slop" exceeds the range of "uint32"'),
    ("text_match(text)", "text_match takes a VARCHAR field and a query string"),
    ("text_match(text, 'a', 'b')", "text_match takes a VARCHAR field and a query string"),
    ("phrase_match(text, 'a', 1, 2)", "phrase_match takes a VARCHAR field, a phrase string"),
    ("text_match(text, 'a', minimum_should_match=0)", "minimum_should_match should be >= 1, got 0"),
    ("text_match(text, 'a', minimum_should_match=1001)", "minimum_should_match should be <= 1000, got 1001"),
    ("text_match(text, 'a', minimum_should_match='2')", "minimum_should_match should be a const integer"),
    ("phrase_match(text, 'a b', minimum_should_match=1)", "phrase_match takes no named arguments"),
    ("array_length(text, minimum_should_match=1)", "array_length takes no named arguments"),
    ("text_match(text, 'a') > 1", "a condition cannot be used as a value"),
    ("Text_Match(text, 'a')", "unknown function 'Text_Match'"),
]


@pytest.mark.parametrize("flt,words", BAD, ids=[b[0] for b in BAD])
def test_bad_input_refused_nothing_changed(tmp_path: Path, flt: str, words: str) -> None:
    c = keeldb.Client(str(tmp_path))
    s = _schema(c)
    s.add_field("plain", DataType.VARCHAR, max_length=50)
    create_flat(c, "c", s)
    c.insert("c", [{"id": i, "v": [0.0, 1.0], "text": "a b", "n": i, "plain": "a"} for i in range(5)])
    for call in (lambda: c.query("c", flt, output_fields=["id"]), lambda: c.delete("c", filter=flt),
                 lambda: c.search("c", [[0.0, 1.0]], limit=3, filter=flt)):  # fmt: skip
        with pytest.raises(FilterError) as info:
            call()
        assert words in str(info.value), str(info.value)
    assert c.query("c", "", output_fields=["count(*)"])[0]["count(*)"] == 5
    c.close()


def test_analyzers_decide_what_matches(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path))
    s = base_schema(c)
    s.add_field("en", DataType.VARCHAR, max_length=200, enable_analyzer=True, enable_match=True,
                analyzer_params={"type": "english"})  # fmt: skip
    s.add_field("zh", DataType.VARCHAR, max_length=200, enable_analyzer=True, enable_match=True,
                analyzer_params={"type": "chinese"})  # fmt: skip
    create_flat(c, "c", s)
    c.insert("c", [
        {"id": 0, "v": [0, 1], "en": "The dogs were running in the park", "zh": "中华人民共和国成立了"},
        {"id": 1, "v": [0, 1], "en": "Bank of America", "zh": "我爱北京天安门"},
        {"id": 2, "v": [0, 1], "en": "America has a bank", "zh": "人民公园"},
    ])  # fmt: skip
    assert _ids(c, "text_match(en, 'dog run')") == [0]  # stems: dogs -> dog, running -> run
    assert _ids(c, "text_match(en, {q})", filter_params={"q": "dogs"}) == [0]  # a template for the query
    assert _ids(c, "text_match(en, 'the')") == []  # a stop word: no query token at all
    assert _ids(c, "phrase_match(en, 'running park')") == []  # "in the" between them ...
    assert _ids(c, "phrase_match(en, 'running park', 2)") == [0]  # ... two positions
    assert _ids(c, "phrase_match(en, 'bank america')") == []  # "of" keeps its position
    assert _ids(c, "phrase_match(en, 'bank america', 1)") == [1]
    assert _ids(c, "phrase_match(en, 'america bank', 3)") == [1, 2]  # order swapped within the span
    assert _ids(c, "text_match(zh, '人民')") == [0, 2]
    assert _ids(c, "phrase_match(zh, '北京天安门')") == [1]
    c.close()


def test_multi_language_field_refused(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path))
    s = base_schema(c)
    s.add_field("lang", DataType.VARCHAR, max_length=8)
    s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True, enable_match=True,
                multi_analyzer_params={"analyzers": {"default": {"type": "standard"}}, "by_field": "lang"})  # fmt: skip
    create_flat(c, "c", s)
    with pytest.raises(FilterError, match="multi-language analyzers"):
        c.query("c", "text_match(text, 'a')")
    c.close()


def test_an_added_field_is_matched_and_indexed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_builder_mod, "INDEX_MIN_ROWS", 10)
    c = _open(tmp_path)
    c.insert("c", _rows({i: "alpha" for i in range(20)}))
    c.flush("c")
    c.add_collection_field("c", "extra", DataType.VARCHAR, max_length=50, nullable=True, enable_analyzer=True, enable_match=True)
    c.insert("c", [{"id": 100 + i, "v": [0.0, 1.0], "text": "x", "n": 0, "extra": "hello world"} for i in range(20)])
    c.flush("c")
    c.wait_for_index("c")
    assert sum("extra" in v.segment.indexes for v in c.snapshot("c").views) == 2
    assert _ids(c, "text_match(extra, 'world')") == list(range(100, 120))
    assert _ids(c, "not text_match(extra, 'world')") == []  # the old rows' null matches neither way
    c.close()


def test_a_damaged_index_file_is_skipped_and_rebuilt(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_builder_mod, "INDEX_MIN_ROWS", 10)
    docs = dict(enumerate(corpus(60)))
    c = _open(tmp_path)
    c.insert("c", _rows(docs))
    c.flush("c")
    c.wait_for_index("c")
    c.close()
    coll_dir = next((tmp_path / "collections").iterdir())
    (idx,) = [p for p in coll_dir.iterdir() if p.suffix == ".text"]
    raw = bytearray(idx.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    idx.write_bytes(bytes(raw))
    c = _open(tmp_path)
    assert any(idx.name in s for s in c._coll("c").report.indexes_skipped)
    _check_all(c, docs)  # answered from the segment's text meanwhile
    c.wait_for_index("c")
    assert _paths(c) == {"file"}
    assert [e.file for e in c._coll("c")._versions.current.indexes if e.field == "text"] != [idx.name]
    _check_all(c, docs)
    c.close()


def test_index_file_round_trip(tmp_path: Path) -> None:
    """The file (docs/formats.md) holds exactly the postings it was built from."""
    from keeldb.index.params import text_match_spec
    from keeldb.index.text_index import TextIndex
    docs = corpus(200, seed=5)
    spec = text_match_spec(ANALYZER_PARAMS)
    built = TextIndex.build(spec, docs)
    size, _ = built.save(tmp_path / "idx.text")
    assert size == os.path.getsize(tmp_path / "idx.text")
    loaded = TextIndex.load(spec, tmp_path / "idx.text")
    assert loaded.ntotal == 200
    for name in ("term_offsets", "term_bytes", "term_ptr", "rows", "positions", "null_rows"):
        assert (getattr(loaded.postings, name) == getattr(built.postings, name)).all(), name
    terms = [loaded.postings.term(j) for j in range(loaded.postings.n_terms)]
    assert terms == sorted(terms, key=str.encode) and "alpha" in terms and "the" not in terms
    assert list(loaded.postings.null_rows) == [i for i, d in enumerate(docs) if d is None]
