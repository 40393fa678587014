"""Analyzers over the wire: pymilvus's ``MilvusClient.run_analyzer`` (RunAnalyzer) and the
analyzer settings of a field through create_collection / add_collection_field /
describe_collection, against ``keeldb serve``."""

from __future__ import annotations

import pytest
from pymilvus import DataType, MilvusClient
from pymilvus.exceptions import MilvusException

from keeldb.text import token_hash

SENTENCE = "The Milvus vector database is built for scale!"


def test_run_analyzer_tokens(mc: MilvusClient) -> None:
    assert mc.run_analyzer(SENTENCE, {"type": "english"}).tokens == ["milvus", "vector", "databas", "built", "scale"]
    results = mc.run_analyzer([SENTENCE, "Milvus 是一个高性能、可扩展的向量数据库！"], {"type": "chinese"})
    assert isinstance(results, list) and len(results) == 2
    assert results[1].tokens[:4] == ["Milvus", "是", "一个", "高性"]
    # No params: the standard analyzer.
    assert mc.run_analyzer("Hello World").tokens == ["hello", "world"]


def test_run_analyzer_detail_and_hash(mc: MilvusClient) -> None:
    r = mc.run_analyzer("Hello wörld", {"tokenizer": "standard"}, with_detail=True, with_hash=True)
    t = r.tokens[1]
    assert (t.token, t.start_offset, t.end_offset, t.position, t.position_length) == ("wörld", 6, 12, 1, 1)
    assert t.hash == token_hash("wörld")
    r = mc.run_analyzer("我爱数据库", {"type": "chinese"}, with_detail=True)
    assert [(t["token"], t["position"], t["position_length"]) for t in r.tokens][-1] == ("数据库", 2, 3)


def test_run_analyzer_refuses_bad_params(mc: MilvusClient) -> None:
    with pytest.raises(MilvusException, match="filter not found :nope") as e:
        mc.run_analyzer("x", {"tokenizer": "standard", "filter": ["nope"]})
    assert e.value.code == 1100
    with pytest.raises(MilvusException, match="unsupported tokenizer: nope"):
        mc.run_analyzer("x", {"tokenizer": "nope"})


def test_analyzer_settings_round_trip_over_the_wire(mc: MilvusClient) -> None:
    s = mc.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("text", DataType.VARCHAR, max_length=200, enable_analyzer=True, enable_match=True,
                analyzer_params={"tokenizer": "standard", "filter": ["lowercase", {"type": "stemmer", "language": "english"}]})  # fmt: skip
    mc.create_collection("an_docs", schema=s)
    (f,) = [f for f in mc.describe_collection("an_docs")["fields"] if f["name"] == "text"]
    assert f["params"]["enable_analyzer"] == "true" and f["params"]["enable_match"] == "true"
    assert f["params"]["analyzer_params"] == (
        '{"tokenizer":"standard","filter":["lowercase",{"type":"stemmer","language":"english"}]}'
    )
    r = mc.run_analyzer("Running Dogs", collection_name="an_docs", field_name="text")
    assert r.tokens == ["run", "dog"]

    mc.add_collection_field("an_docs", "body", DataType.VARCHAR, max_length=64, nullable=True,
                            enable_analyzer=True, analyzer_params={"type": "chinese"})  # fmt: skip
    (b,) = [f for f in mc.describe_collection("an_docs")["fields"] if f["name"] == "body"]
    assert b["params"]["analyzer_params"] == '{"type":"chinese"}'
    before = mc.describe_collection("an_docs")["fields"]
    with pytest.raises(MilvusException, match="unknown build-in analyzer type: klingon"):
        mc.add_collection_field("an_docs", "other", DataType.VARCHAR, max_length=64, nullable=True,
                                enable_analyzer=True, analyzer_params={"type": "klingon"})  # fmt: skip
    assert mc.describe_collection("an_docs")["fields"] == before


def test_analyzer_settings_refused_at_create(mc: MilvusClient) -> None:
    def schema(**text: object) -> object:
        s = mc.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=2, **text)
        s.add_field("text", DataType.VARCHAR, max_length=20)
        return s

    # pymilvus sends enable_analyzer for a vector field's type params; Milvus's rule: VARCHAR only.
    with pytest.raises(MilvusException, match="applies to VARCHAR fields only"):
        mc.create_collection("an_bad", schema=schema(enable_analyzer=True))
    s = schema()
    s.add_field("t2", DataType.VARCHAR, max_length=20, enable_analyzer=True, analyzer_params={"tokenizer": "icu"})
    with pytest.raises(MilvusException, match="tokenizer icu is supported by Milvus but not built in keeldb"):
        mc.create_collection("an_bad", schema=s)
    assert not mc.has_collection("an_bad")
