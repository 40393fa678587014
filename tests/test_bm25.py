"""The BM25 function (issue 15): schema functions, the derived output field, and text search
scored with collection-wide statistics at the read's snapshot.

Scores are checked against an independent BM25 written here over the analyzer's token
*strings* (Milvus's formula: IDF = log(1 + (N - df + 0.5) / (df + 0.5)), the query's term
counts times IDF as weights, k1 / b length normalisation with dl = a row's term count and
avgdl over the visible rows). The issue's proof is ``test_same_scores_across_flush_compaction_reopen``:
a segment-local IDF (Milvus Lite's) gives different numbers when a flush or compaction moves
rows between segments; keeldb's must not move at all.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import keeldb
from keeldb import InvalidArgument
from keeldb.schema import CollectionSchema, DataType, Function, FunctionType
from keeldb.text import build_analyzer, token_hash

WORDS = ("apple banana cherry date elder fig grape honeydew kiwi lemon mango nectarine olive papaya "
         "quince raspberry strawberry tangerine ugli vanilla").split()  # fmt: skip
ANALYZER = build_analyzer({"type": "english"})


def corpus(n: int, seed: int = 0) -> list[str]:
    """Deterministic texts of varied length with repeated words, some punctuation and case."""
    out = []
    x = seed * 7919 + 17
    for i in range(n):
        words = []
        for _ in range(3 + i % 9):
            x = (x * 1103515245 + 12345) % 2**31
            words.append(WORDS[x % (len(WORDS) - (i % 5))])
        out.append(" ".join(words).capitalize() + ("!" if i % 3 == 0 else "."))
    return out


def reference(docs: dict[int, str], query: str, k1: float = 1.2, b: float = 0.75, analyzer: Any = ANALYZER) -> dict[int, float]:
    """BM25 by Milvus's formula over token strings: every doc with a positive score."""
    tfs = {pk: Counter(analyzer.terms(t)) for pk, t in docs.items()}
    n = len(tfs)
    avgdl = sum(sum(c.values()) for c in tfs.values()) / n
    qtf = Counter(analyzer.terms(query))
    scores: dict[int, float] = {}
    for pk, tf in tfs.items():
        dl = sum(tf.values())
        s = 0.0
        for term, q in qtf.items():
            if term in tf:
                df = sum(1 for c in tfs.values() if term in c)
                idf = math.log(1 + (n - df + 0.5) / (df + 0.5))
                f = tf[term]
                s += q * idf * f * (k1 + 1) / (f + k1 * (1 - b + b * dl / avgdl))
        if s > 0:
            scores[pk] = s
    return scores


def bm25_schema(c: keeldb.Client, *, partition_key: bool = False) -> CollectionSchema:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=2000, enable_analyzer=True, analyzer_params={"type": "english"})
    s.add_field("tag", DataType.INT64, is_partition_key=partition_key)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function("bm25", FunctionType.BM25, ["text"], ["sparse"]))
    return s


def create(c: keeldb.Client, name: str, index: dict[str, Any] | None = None, **kwargs: Any) -> None:
    ip = c.prepare_index_params()
    ip.add_index("sparse", "SPARSE_INVERTED_INDEX", metric_type="BM25", params=index or {})
    c.create_collection(name, schema=bm25_schema(c), index_params=ip, **kwargs)


def scores(c: keeldb.Client, name: str, query: str, limit: int = 100, **kw: Any) -> dict[int, float]:
    hits = c.search(name, [query], anns_field="sparse", limit=limit, **kw)[0]
    return {h["id"]: h["distance"] for h in hits}


def assert_close(got: dict[int, float], want: dict[int, float]) -> None:
    assert got.keys() == want.keys()
    for k in want:
        assert got[k] == pytest.approx(want[k], rel=2e-6), k


QUERIES = ["apple banana", "cherry cherry fig", "Mango, papaya and quince!", "kiwi", "grape elder vanilla ugli"]


@pytest.fixture(autouse=True)
def small_indexes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Index segments of 10 rows and more, so sealed segments are scored through their
    postings and the growing one by a scan -- both paths in one search."""
    from keeldb.engine import index_builder

    monkeypatch.setattr(index_builder, "INDEX_MIN_ROWS", 10)


def indexed_views(c: keeldb.Client, name: str) -> int:
    c.wait_for_index(name, "sparse")
    return sum(1 for v in c.snapshot(name).views if "sparse" in v.segment.indexes)


@pytest.fixture
def client(tmp_path: Path) -> keeldb.Client:
    c = keeldb.Client(str(tmp_path / "db"))
    yield c
    c.close()


def test_schema_describe_and_derived_vectors(tmp_path: Path) -> None:
    client = keeldb.Client(str(tmp_path / "db"))
    create(client, "t")
    d = client.describe_collection("t")
    (fn,) = d["functions"]
    assert fn["name"] == "bm25" and fn["type"] == FunctionType.BM25 and fn["params"] == {}
    assert fn["input_field_names"] == ["text"] and fn["output_field_names"] == ["sparse"]
    fields = {f["name"]: f for f in d["fields"]}
    assert fn["input_field_ids"] == [fields["text"]["field_id"]] and fn["output_field_ids"] == [fields["sparse"]["field_id"]]
    assert fields["sparse"].get("is_function_output") and "is_function_output" not in fields["text"]
    client.insert("t", [{"id": 1, "text": "The dogs run; a dog ran.", "tag": 0}, {"id": 2, "text": "", "tag": 0}])
    # The stored vector: Milvus's dimensions (token_hash) and term counts.
    snap = client.snapshot("t")
    rows = [r for v in snap.views for r in v.vectors("sparse").to_dicts()]
    want = Counter(token_hash(t) for t in ANALYZER.terms("The dogs run; a dog ran."))
    assert rows == [{k: float(v) for k, v in want.items()}, {}]
    assert want[token_hash("dog")] == 2  # english: stemmed, stop words gone
    # "*" leaves the function output out; naming it is refused, as Milvus refuses it
    assert client.query("t", "id == 1", output_fields=["*"]) == [{"id": 1, "text": "The dogs run; a dog ran.", "tag": 0}]
    with pytest.raises(InvalidArgument, match="not allowed to retrieve raw data of field sparse"):
        client.query("t", "id == 1", output_fields=["sparse"])
    with pytest.raises(InvalidArgument, match="not allowed to retrieve raw data of field sparse"):
        client.search("t", ["dog"], anns_field="sparse", output_fields=["sparse"])
    # the schema survives a reopen typed, and an identical create is a no-op
    client.close()
    client = keeldb.Client(str(tmp_path / "db"))
    assert client.describe_collection("t")["functions"] == d["functions"]
    create(client, "t")
    assert [h["id"] for h in client.search("t", ["dogs"], anns_field="sparse")[0]] == [1]
    client.close()


def test_scores_match_reference(client: keeldb.Client) -> None:
    create(client, "t", {"bm25_k1": 1.5, "bm25_b": 0.6})
    docs = dict(enumerate(corpus(60)))
    client.insert("t", [{"id": k, "text": t, "tag": k % 3} for k, t in docs.items()][:35])
    client.flush("t")  # a sealed, indexed segment and a growing one
    assert indexed_views(client, "t") == 1
    client.insert("t", [{"id": k, "text": t, "tag": k % 3} for k, t in docs.items()][35:])
    for q in QUERIES:
        assert_close(scores(client, "t", q), reference(docs, q, 1.5, 0.6))  # the index's k1 / b
        got = scores(client, "t", q, search_params={"metric_type": "BM25", "params": {"bm25_k1": 0.9, "bm25_b": 1.0}})
        assert_close(got, reference(docs, q, 0.9, 1.0))  # a search's own k1 / b
    hits = client.search("t", ["apple"], anns_field="sparse", limit=5)[0]
    assert [h["distance"] for h in hits] == sorted((h["distance"] for h in hits), reverse=True)
    assert client.search("t", ["zebra"], anns_field="sparse", limit=5) == [[]]  # no term in the collection


def test_same_scores_across_flush_compaction_reopen(tmp_path: Path) -> None:
    """The issue's proof: the same query scores every row identically while its rows move
    from the growing segment to several sealed ones, into one compacted segment, and
    through a restart -- because N, df and avgdl are the collection's, not a segment's."""
    path = str(tmp_path / "db")
    c = keeldb.Client(path)
    create(c, "t")
    docs = dict(enumerate(corpus(80, seed=3)))
    items = [{"id": k, "text": t, "tag": k % 2} for k, t in docs.items()]
    for part in range(4):  # four flushed segments of different vocabularies
        c.insert("t", items[part * 20 : part * 20 + 20])
        if part < 3:
            c.flush("t")

    def all_scores(cl: keeldb.Client) -> list[list[tuple[Any, float]]]:
        return [[(h["id"], h["distance"]) for h in cl.search("t", [q], anns_field="sparse", limit=80)[0]] for q in QUERIES]

    assert indexed_views(c, "t") == 3  # three sealed segments searched through postings, one scanned
    before = all_scores(c)
    for q, got in zip(QUERIES, before, strict=True):
        assert_close(dict(got), reference(docs, q))
    c.flush("t")
    assert all_scores(c) == before  # bit for bit: growing -> sealed
    c.compact("t")
    assert [v.num_rows for v in c.snapshot("t").views if v.num_rows] == [80]  # really one segment now
    assert all_scores(c) == before
    assert indexed_views(c, "t") == 1
    assert all_scores(c) == before
    c.close()
    c = keeldb.Client(path)
    assert all_scores(c) == before
    c.close()


def test_deletes_and_upserts_change_statistics_exactly(client: keeldb.Client) -> None:
    create(client, "t")
    docs = dict(enumerate(corpus(40, seed=5)))
    client.insert("t", [{"id": k, "text": t, "tag": 0} for k, t in docs.items()])
    client.flush("t")
    snap = client.snapshot("t")
    old = {q: scores(client, "t", q) for q in QUERIES}
    client.delete("t", ids=list(range(0, 40, 3)))
    for k in range(0, 40, 3):
        del docs[k]
    client.upsert("t", [{"id": 1, "text": "apple apple apple", "tag": 0}, {"id": 100, "text": "kiwi banana", "tag": 0}])
    docs[1], docs[100] = "apple apple apple", "kiwi banana"
    client.upsert("t", [{"id": 2, "text": "fig fig cherry"}], partial_update=True)  # tag kept, vector re-derived
    docs[2] = "fig fig cherry"
    for q in QUERIES:
        assert_close(scores(client, "t", q), reference(docs, q))
    assert client.get("t", [2], output_fields=["text", "tag"]) == [{"id": 2, "text": "fig fig cherry", "tag": 0}]
    # an older snapshot still scores with the statistics it saw
    for q in QUERIES:
        assert scores(client, "t", q, snapshot=snap) == old[q]
    client.flush("t")
    client.compact("t")
    for q in QUERIES:
        assert_close(scores(client, "t", q), reference(docs, q))


def test_writing_the_output_field_is_refused(client: keeldb.Client) -> None:
    create(client, "t")
    client.insert("t", [{"id": 1, "text": "apple", "tag": 0}])
    msg = "Attempt to insert an unexpected function output field `sparse` to collection"
    with pytest.raises(InvalidArgument, match=msg):
        client.insert("t", [{"id": 2, "text": "banana", "tag": 0, "sparse": {1: 1.0}}])
    with pytest.raises(InvalidArgument, match=msg):
        client.upsert("t", [{"id": 1, "text": "banana", "tag": 0, "sparse": {1: 1.0}}])
    with pytest.raises(InvalidArgument, match=msg):
        client.upsert("t", [{"id": 1, "sparse": {1: 1.0}}], partial_update=True)
    with pytest.raises(InvalidArgument, match=msg):
        client.insert_columns("t", {"id": [3], "text": ["x"], "tag": [0], "sparse": [{1: 1.0}]}, 1)
    assert client.count("t") == 1
    assert client.query("t", "", output_fields=["text"], limit=10) == [{"id": 1, "text": "apple"}]
    assert scores(client, "t", "apple").keys() == {1}


BAD: list[tuple[str, Any, str]] = [
    ("not analyzed", dict(enable_analyzer=False), "BM25 function input field must set enable_analyzer to true"),
    ("input not varchar", dict(inp="tag"), "BM25 function input field must be a VARCHAR field, got 1 field with type Int64"),
    ("output not sparse", dict(out="dense"), "BM25 function output field must be a SparseFloatVector field, but got FloatVector"),
    ("missing input", dict(inp="nope"), "function input field not found: nope"),
    ("missing output", dict(out="nope"), "function output field not found: nope"),
    ("params", dict(params={"k": 1}), "BM25 function accepts no params"),
    ("input is output", dict(out="text"), "a single field cannot be both input and output"),
    ("two inputs", dict(inp=["text", "text2"]), "BM25 function input field must be a VARCHAR field, got 2 field"),
    ("two outputs", dict(out=["sparse", "sparse2"]), "BM25 function only need 1 output field, but got 2"),
    ("nullable input", dict(nullable_text=True), "function input field cannot be nullable"),
    ("empty name", dict(name=""), "function name cannot be empty"),
    ("output used twice", dict(twice=True), "duplicate function output field"),
]


@pytest.mark.parametrize(("case", "args", "msg"), BAD, ids=[b[0] for b in BAD])
def test_bad_functions_refused_nothing_created(client: keeldb.Client, case: str, args: dict[str, Any], msg: str) -> None:
    s = client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("text", DataType.VARCHAR, max_length=100, enable_analyzer=args.get("enable_analyzer", True),
                nullable=args.get("nullable_text", False))  # fmt: skip
    s.add_field("text2", DataType.VARCHAR, max_length=100, enable_analyzer=True)
    s.add_field("tag", DataType.INT64)
    s.add_field("dense", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_field("sparse2", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function(args.get("name", "bm"), FunctionType.BM25, args.get("inp", "text"), args.get("out", "sparse"),
                            params=args.get("params")))  # fmt: skip
    if args.get("twice"):
        s.add_function(Function("bm2", FunctionType.BM25, "text2", "sparse"))
    with pytest.raises(InvalidArgument, match=msg):
        client.create_collection("bad", schema=s)
    assert client.list_collections() == []


def test_other_function_types_refused(client: keeldb.Client) -> None:
    s = client.create_schema()
    for t, name in ((FunctionType.TEXTEMBEDDING, "TextEmbedding"), (FunctionType.RERANK, "Rerank"), (FunctionType.MINHASH, "MinHash")):
        with pytest.raises(InvalidArgument, match=f"of type {name} is not supported by keeldb"):
            s.add_function(Function("f", t, ["text"], ["v"]))
    create(client, "t")
    with pytest.raises(InvalidArgument, match="adding function 'b2' to existing collection 't' is not supported"):
        client.add_collection_function("t", Function("b2", FunctionType.BM25, ["text"], ["sparse"]))


def test_metric_and_query_rules(client: keeldb.Client) -> None:
    s = bm25_schema(client)
    s.add_field("plain", DataType.SPARSE_FLOAT_VECTOR)
    ip = client.prepare_index_params()
    ip.add_index("sparse", "SPARSE_INVERTED_INDEX", metric_type="IP")
    with pytest.raises(InvalidArgument, match="only takes metric type BM25, got IP"):
        client.create_collection("t", schema=s, index_params=ip)
    ip = client.prepare_index_params()
    ip.add_index("sparse", "SPARSE_INVERTED_INDEX", metric_type="BM25", params={"bm25_k1": 5})
    with pytest.raises(InvalidArgument, match="bm25_k1"):
        client.create_collection("t", schema=s, index_params=ip)
    ip = client.prepare_index_params()
    ip.add_index("sparse", "SPARSE_INVERTED_INDEX", metric_type="BM25")
    ip.add_index("plain", "SPARSE_INVERTED_INDEX", metric_type="BM25")
    with pytest.raises(InvalidArgument, match="applies to the output field of a BM25 function only"):
        client.create_collection("t", schema=s, index_params=ip)
    assert client.list_collections() == []
    ip = client.prepare_index_params()
    ip.add_index("sparse", "AUTOINDEX")  # the metric defaults to BM25 on a BM25 output
    ip.add_index("plain", "SPARSE_INVERTED_INDEX", metric_type="IP")
    client.create_collection("t", schema=s, index_params=ip)
    assert client.describe_index("t", "sparse")["metric_type"] == "BM25"
    client.insert("t", [{"id": 1, "text": "apple pie", "tag": 0, "plain": {5: 1.0}}])
    with pytest.raises(InvalidArgument, match="search it with text"):
        client.search("t", [{1: 1.0}], anns_field="sparse")
    with pytest.raises(InvalidArgument, match="metric type not match|must use BM25 metric type"):
        client.search("t", ["apple"], anns_field="sparse", search_params={"metric_type": "IP"})
    with pytest.raises(InvalidArgument, match="bm25_b"):
        client.search("t", ["apple"], anns_field="sparse", search_params={"params": {"bm25_b": 2}})
    assert [h["id"] for h in client.search("t", ["apple"], anns_field="sparse")[0]] == [1]
    assert [h["id"] for h in client.search("t", [{5: 1.0}], anns_field="plain")[0]] == [1]


def test_filters_pages_partitions_and_drop_ratio(client: keeldb.Client) -> None:
    create(client, "t")
    docs = dict(enumerate(corpus(50, seed=9)))
    client.create_partition("t", "p1")
    client.insert("t", [{"id": k, "text": t, "tag": k % 4} for k, t in docs.items() if k < 25])
    client.insert("t", [{"id": k, "text": t, "tag": k % 4} for k, t in docs.items() if k >= 25], partition_name="p1")
    client.flush("t")
    q = "apple banana cherry grape"
    full = reference(docs, q)  # statistics over the whole collection, whatever is searched
    ranked = sorted(full, key=lambda k: (-full[k], k))
    hits = client.search("t", [q], anns_field="sparse", limit=50, filter="tag == 1", output_fields=["tag", "text"])[0]
    assert [h["id"] for h in hits] == [k for k in ranked if k % 4 == 1]
    assert all(h["entity"] == {"tag": 1, "text": docs[h["id"]]} for h in hits)
    for h in hits:
        assert h["distance"] == pytest.approx(full[h["id"]], rel=2e-6)
    page = client.search("t", [q], anns_field="sparse", limit=5, offset=5)[0]
    assert [h["id"] for h in page] == ranked[5:10]
    part = client.search("t", [q], anns_field="sparse", limit=50, partition_names=["p1"])[0]
    assert [h["id"] for h in part] == [k for k in ranked if k >= 25]
    # drop_ratio_search drops the query's lowest-weighted terms: fewer terms, fewer hits
    dropped = client.search("t", [q], anns_field="sparse", limit=50, search_params={"params": {"drop_ratio_search": 0.5}})[0]
    assert 0 < len(dropped) <= len(full)
    # several queries at once
    two = client.search("t", [q, "kiwi"], anns_field="sparse", limit=3)
    assert [h["id"] for h in two[0]] == ranked[:3] and len(two[1]) <= 3


def test_multi_language_analyzer(client: keeldb.Client) -> None:
    s = client.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("lang", DataType.VARCHAR, max_length=8)
    s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True, multi_analyzer_params={
        "analyzers": {"en": {"type": "english"}, "default": {"tokenizer": "whitespace"}}, "by_field": "lang"})  # fmt: skip
    s.add_field("sparse", DataType.SPARSE_FLOAT_VECTOR)
    s.add_function(Function("bm", FunctionType.BM25, "text", "sparse"))
    ip = client.prepare_index_params()
    ip.add_index("sparse", "SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection("m", schema=s, index_params=ip)
    client.insert("m", [{"id": 1, "lang": "en", "text": "Running dogs"}, {"id": 2, "lang": "xx", "text": "Running dogs"}])
    assert [h["id"] for h in client.search("m", ["dog"], anns_field="sparse", search_params={"params": {"analyzer_name": "en"}})[0]] == [1]
    assert [h["id"] for h in client.search("m", ["Running"], anns_field="sparse")[0]] == [2]
