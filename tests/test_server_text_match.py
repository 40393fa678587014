"""``text_match`` / ``phrase_match`` over the wire, with unmodified pymilvus: the same filters
in query, count(*), search, hybrid search's sub-requests, delete, query_iterator and
search_iterator, answered as the embedded client answers them (the reference of
tests/test_text_match.py), and refused with Milvus's status code 1100 and its words."""

from __future__ import annotations

from typing import Any

import pytest
from pymilvus import AnnSearchRequest, DataType, MilvusClient, RRFRanker
from pymilvus.exceptions import MilvusException

from tests.test_text_match import ANALYZER_PARAMS, corpus, ref_phrase, ref_text

DOCS = dict(enumerate(corpus(120, seed=4)))


def _create(mc: MilvusClient, name: str) -> None:
    s = mc.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("w", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("text", DataType.VARCHAR, max_length=500, enable_analyzer=True, enable_match=True,
                analyzer_params=ANALYZER_PARAMS, nullable=True)  # fmt: skip
    s.add_field("plain", DataType.VARCHAR, max_length=50)
    ip = mc.prepare_index_params()
    ip.add_index("v", index_type="FLAT", metric_type="L2")
    ip.add_index("w", index_type="FLAT", metric_type="L2")
    mc.create_collection(name, schema=s, index_params=ip)
    rows = [{"id": k, "v": [float(k), 0.0], "w": [0.0, float(k)], "text": d, "plain": "x"} for k, d in DOCS.items()]
    mc.insert(name, rows[:70])
    mc.flush(name)
    mc.insert(name, rows[70:])  # sealed + growing


def _ids(rows: Any) -> list[int]:
    return sorted(r["id"] for r in rows)


def test_every_read_path_over_the_wire(mc: MilvusClient) -> None:
    _create(mc, "tm")
    cases = [
        ("text_match(text, 'alpha eps')", lambda d: ref_text(d, "alpha eps")),
        ("text_match(text, 'alpha beta eps', minimum_should_match=2)", lambda d: ref_text(d, "alpha beta eps", 2)),
        ("phrase_match(text, 'alpha beta')", lambda d: ref_phrase(d, "alpha beta", 0)),
        ("PHRASE_MATCH(text, 'beta of gamma', 2)", lambda d: ref_phrase(d, "beta of gamma", 2)),
        ("not text_match(text, 'delta') and id < 60", lambda d: d is not None and not ref_text(d, "delta")),
    ]
    for flt, ref in cases:
        want = sorted(k for k, d in DOCS.items() if ref(d) and (k < 60 or "id < 60" not in flt))
        assert _ids(mc.query("tm", filter=flt, output_fields=["id"])) == want, flt
        assert mc.query("tm", filter=flt, output_fields=["count(*)"])[0]["count(*)"] == len(want)
        hits = mc.search("tm", [[0.0, 0.0]], anns_field="v", limit=200, filter=flt, output_fields=["id"])[0]
        assert sorted(h["id"] for h in hits) == want, flt
        it = mc.query_iterator("tm", batch_size=7, filter=flt, output_fields=["id"])
        seen: list[int] = []
        while page := it.next():
            seen += [r["id"] for r in page]
        it.close()
        assert sorted(seen) == want
        sit = mc.search_iterator("tm", [[0.0, 0.0]], anns_field="v", batch_size=9, filter=flt, limit=200,
                                 output_fields=["id"])  # fmt: skip
        seen = []
        while page := sit.next():
            seen += [h["id"] for h in page]
        sit.close()
        assert sorted(seen) == want
    a = AnnSearchRequest([[0.0, 0.0]], "v", {"metric_type": "L2"}, limit=200, expr="text_match(text, 'alpha')")
    b = AnnSearchRequest([[0.0, 0.0]], "w", {"metric_type": "L2"}, limit=200, expr="phrase_match(text, 'gamma delta', 1)")
    hits = mc.hybrid_search("tm", [a, b], RRFRanker(), limit=200, output_fields=["id"])[0]
    want = {k for k, d in DOCS.items() if ref_text(d, "alpha") or ref_phrase(d, "gamma delta", 1)}
    assert {h["id"] for h in hits} == want
    # delete by text match: exactly those rows go
    gone = sorted(k for k, d in DOCS.items() if ref_phrase(d, "eps alpha", 0))
    assert gone and mc.delete("tm", filter="phrase_match(text, 'eps alpha')")["delete_count"] == len(gone)
    assert mc.query("tm", filter="", output_fields=["count(*)"])[0]["count(*)"] == len(DOCS) - len(gone)
    assert _ids(mc.query("tm", filter="phrase_match(text, 'eps alpha')", output_fields=["id"])) == []


@pytest.mark.parametrize("flt,words", [
    ("text_match(plain, 'x')", 'field "plain" does not enable match'),
    ("text_match(id, 'x')", "text match operation on non-string is unsupported"),
    ("text_match(nope, 'x')", "unknown field 'nope'"),
    ("phrase_match(text, 'x y', -1)", '"slop" should not be a negative interger'),
    ("text_match(text, 3)", "the query must be a string literal"),
    ("text_match(text, 'x', minimum_should_match=0)", "minimum_should_match should be >= 1"),
])  # fmt: skip
def test_refusals_over_the_wire(mc: MilvusClient, flt: str, words: str) -> None:
    if not mc.has_collection("tm"):
        _create(mc, "tm")
    before = mc.query("tm", filter="", output_fields=["count(*)"])[0]["count(*)"]
    for call in (lambda: mc.query("tm", filter=flt, output_fields=["id"]), lambda: mc.delete("tm", filter=flt),
                 lambda: mc.search("tm", [[0.0, 0.0]], anns_field="v", limit=3, filter=flt)):  # fmt: skip
        with pytest.raises(MilvusException) as e:
            call()
        assert e.value.code == 1100 and words in e.value.message, e.value.message
    assert mc.query("tm", filter="", output_fields=["count(*)"])[0]["count(*)"] == before
