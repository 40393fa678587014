"""Text analyzers (keeldb.text) and their schema settings, embedded.

Expected tokens are Milvus's documented examples (milvus.io: standard / english / chinese
analyzer pages, run_analyzer) and the behaviour of Milvus's tantivy-binding code: filter
order, what each filter keeps, UTF-8 byte offsets, jieba positions in characters.
"""

from __future__ import annotations

import zlib
from pathlib import Path
from typing import Any

import pytest

import keeldb
from keeldb import DataType, InvalidArgument
from keeldb.text import build_analyzer, token_hash

SENTENCE = "The Milvus vector database is built for scale!"


def terms(params: Any, text: str) -> list[str]:
    a = build_analyzer(params)
    out = a.terms(text)
    # The fast path (terms) and the detailed one (tokens) must always agree.
    assert out == [t.text for t in a.tokens(text)]
    return out


# -- built-in analyzers: Milvus's documented outputs -----------------------------------------


def test_standard_analyzer_matches_milvus_docs() -> None:
    expected = ["the", "milvus", "vector", "database", "is", "built", "for", "scale"]
    assert terms({"type": "standard"}, SENTENCE) == expected
    assert terms({}, SENTENCE) == expected  # empty params: the standard analyzer
    assert terms(None, SENTENCE) == expected
    assert terms({"tokenizer": "standard", "filter": ["lowercase"]}, SENTENCE) == expected


def test_english_analyzer_matches_milvus_docs() -> None:
    # lowercase, then the Snowball stemmer, then Milvus's English stop words (that order).
    assert terms({"type": "english"}, SENTENCE) == ["milvus", "vector", "databas", "built", "scale"]


def test_chinese_analyzer_matches_milvus_docs() -> None:
    text = "Milvus 是一个高性能、可扩展的向量数据库！"
    assert terms({"type": "chinese"}, text) == [
        "Milvus", "是", "一个", "高性", "性能", "高性能", "可", "扩展", "的", "向量", "数据", "据库", "数据库",
    ]  # fmt: skip


def test_builtin_stop_words() -> None:
    assert terms({"type": "standard", "stop_words": ["of", "_english_"]}, "The art of the deal") == ["art", "deal"]
    assert terms({"type": "english", "stop_words": ["milvus"]}, SENTENCE) == ["vector", "databas", "built", "scale"]


# -- custom analyzers ----------------------------------------------------------------------


def test_tokenizers_without_filters_keep_case_and_punctuation_rules() -> None:
    assert terms({"tokenizer": "standard"}, "Hello, World! it's 3.14") == ["Hello", "World", "it", "s", "3", "14"]
    assert terms({"tokenizer": "whitespace"}, "Hello, World! it's") == ["Hello,", "World!", "it's"]
    assert terms({"tokenizer": {"type": "whitespace"}}, "a  b") == ["a", "b"]


def test_lowercase_asciifolding_alphanumonly() -> None:
    p = {"tokenizer": "whitespace", "filter": ["lowercase", "asciifolding", "alphanumonly"]}
    assert terms(p, "Café NAÏVE x-y 42") == ["cafe", "naive", "42"]
    # tantivy lower-cases per character (no final-sigma rule, unlike str.lower()).
    assert terms({"tokenizer": "standard", "filter": ["lowercase"]}, "ΣΑΣ") == ["σασ"]


def test_length_filter_counts_utf8_bytes() -> None:
    p = {"tokenizer": "standard", "filter": [{"type": "length", "max": 4}]}
    assert terms(p, "abcd abcde wörd x") == ["abcd", "x"]  # "wörd" is 5 bytes


def test_stop_and_stemmer_filters() -> None:
    p = {"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ["the", "_french_"]},
                                            {"type": "stemmer", "language": "french"}]}  # fmt: skip
    assert terms(p, "The chevaux et les continuations") == ["cheval", "continu"]
    p = {"tokenizer": "standard", "filter": [{"type": "stemmer", "language": "English"}]}
    assert terms(p, "running jumps") == ["run", "jump"]


def test_chinese_and_punctuation_filters() -> None:
    # jieba's search mode (Milvus's default) also yields the dictionary word "中文标点".
    assert terms({"tokenizer": "jieba", "filter": ["removepunct"]}, "中文标点，测试。") == ["中文", "标点", "中文标点", "测试"]
    assert terms({"tokenizer": "jieba", "filter": ["cncharonly"]}, "milvus 向量 42") == ["向量"]
    assert terms({"tokenizer": "jieba", "filter": ["cnalphanumonly"]}, "milvus 向量，42") == ["milvus", "向量", "42"]


def test_regex_and_decompounder_filters() -> None:
    assert terms({"tokenizer": "standard", "filter": [{"type": "regex", "expr": "^(?!test)"}]}, "test milvus testing") == ["milvus"]
    p = {"tokenizer": "standard", "filter": [{"type": "decompounder", "word_list": ["dampf", "schiff", "fahrt"]}]}
    assert terms(p, "dampfschifffahrt brot") == ["dampf", "schiff", "fahrt", "brot"]
    # A mixed chain: tantivy filters around one of Milvus's own.
    p = {"tokenizer": "whitespace", "filter": ["lowercase", "removepunct", {"type": "stemmer", "language": "english"}]}
    assert terms(p, "Running, Dogs barking") == ["dog", "bark"]


def test_jieba_options() -> None:
    p = {"tokenizer": {"type": "jieba", "dict": ["结巴分词器"], "mode": "exact", "hmm": False}}
    assert terms(p, "milvus结巴分词器中文测试") == ["milvus", "结巴分词器", "中", "文", "测", "试"]
    p = {"tokenizer": {"type": "jieba", "dict": ["_default_", "结巴分词器"], "mode": "search"}}
    assert "结巴分词器" in terms(p, "milvus结巴分词器中文测试")


def test_details_are_utf8_byte_offsets_and_positions() -> None:
    text = "Ünïcödé wörds, 中文 here"
    toks = build_analyzer({"tokenizer": "standard"}).tokens(text)
    raw = text.encode()
    assert [raw[t.start_offset:t.end_offset].decode() for t in toks] == [t.text for t in toks]
    assert [t.position for t in toks] == list(range(len(toks)))
    # Stop words leave a gap in positions (phrase matching relies on it).
    toks = build_analyzer({"type": "english"}).tokens("the cat is on the mat")
    assert [(t.text, t.position) for t in toks] == [("cat", 1), ("mat", 5)]
    # jieba: position = first character, position_length = characters (Milvus's jieba tokenizer).
    toks = build_analyzer({"type": "chinese"}).tokens("我爱数据库")
    raw = "我爱数据库".encode()
    for t in toks:
        assert raw[t.start_offset:t.end_offset].decode() == t.text
        assert t.position_length == len(t.text)
    assert [(t.text, t.position) for t in toks][-1] == ("数据库", 2)


def test_token_hash_is_milvus_crc32() -> None:
    assert token_hash("hello") == 0x3610A686  # CRC-32/IEEE("hello")
    assert token_hash("a" * 150) == token_hash("a" * 100) == zlib.crc32(b"a" * 100) % 0xFFFFFFFF


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"type": "klingon"}, "unknown build-in analyzer type: klingon"),
        ({"tokenizer": "nope"}, "unsupported tokenizer: nope"),
        ({"tokenizer": "icu"}, "not built in keeldb"),
        ({"tokenizer": {"type": "lindera", "dict_kind": "ipadic"}}, "not built in keeldb"),
        ({"tokenizer": {"dict": []}}, "must set type"),
        ({"filter": ["lowercase"]}, "tokenizer name or type must be set"),
        ({"tokenizer": "standard", "filter": ["uppercase"]}, "filter not found :uppercase"),
        ({"tokenizer": "standard", "filter": "lowercase"}, "filter params should be array"),
        ({"tokenizer": "standard", "filter": [{"type": "bogus"}]}, "unsupport filter type: bogus"),
        ({"tokenizer": "standard", "filter": [{"max": 3}]}, "no type field in filter params"),
        ({"tokenizer": "standard", "filter": [{"type": "length"}]}, "max param was none or not uint"),
        ({"tokenizer": "standard", "filter": [{"type": "stemmer", "language": "klingon"}]}, "unsupport language: klingon"),
        ({"tokenizer": "standard", "filter": [{"type": "stop", "stop_words": "_english_"}]}, "stop_words should be array"),
        ({"tokenizer": "standard", "filter": [{"type": "regex", "expr": "("}]}, "regex expression invalid"),
        ({"tokenizer": "standard", "filter": [{"type": "synonym", "synonyms": []}]}, "synonym filter is not supported"),
        ({"tokenizer": {"type": "jieba", "mode": "fast"}}, 'mode must be "exact" or "search"'),
        ({"tokenizer": "standard", "colour": "red"}, "unknown analyzer option key: colour"),
        ("{not json", "JsonError"),
        ("[1, 2]", "params should be a json map"),
    ],
)
def test_bad_params_are_refused_with_milvus_words(params: Any, words: str) -> None:
    with pytest.raises(InvalidArgument, match="create analyzer failed") as e:
        build_analyzer(params)
    assert words in str(e.value)


# -- schema: stored, described, refused -------------------------------------------------------


def _schema(c: keeldb.Client, **text: Any) -> Any:
    s = c.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    s.add_field("text", DataType.VARCHAR, max_length=200, **text)
    return s


def test_analyzer_settings_round_trip_and_survive_a_restart(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path))
    c.create_collection("docs", schema=_schema(c, enable_analyzer=True, enable_match=True,
                                               analyzer_params={"type": "english"}))  # fmt: skip
    c.close()
    c = keeldb.Client(str(tmp_path))
    (f,) = [f for f in c.describe_collection("docs")["fields"] if f["name"] == "text"]
    # As pymilvus shows Milvus's: the type params as the text pymilvus sent.
    assert f["params"] == {"max_length": 200, "enable_analyzer": "true", "enable_match": "true",
                           "analyzer_params": '{"type":"english"}'}  # fmt: skip
    r = c.run_analyzer(SENTENCE, collection_name="docs", field_name="text")
    assert r.tokens == ["milvus", "vector", "databas", "built", "scale"]
    c.close()


def test_bad_text_settings_change_nothing(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path))
    with pytest.raises(InvalidArgument, match="unsupported tokenizer: nope"):
        c.create_collection("docs", schema=_schema(c, enable_analyzer=True, analyzer_params={"tokenizer": "nope"}))
    assert not c.has_collection("docs")
    with pytest.raises(InvalidArgument, match="set to enable match or bm25 function but not enable analyzer"):
        c.create_collection("docs", schema=_schema(c, enable_match=True))
    s = _schema(c)
    with pytest.raises(InvalidArgument, match="applies to VARCHAR fields only"):
        s.add_field("n", DataType.INT64, enable_analyzer=True)
    c.create_collection("docs", schema=_schema(c))
    before = c.describe_collection("docs")["fields"]
    with pytest.raises(InvalidArgument, match="filter not found :nope"):
        c.add_collection_field("docs", "body", DataType.VARCHAR, max_length=50, nullable=True,
                               enable_analyzer=True, analyzer_params={"tokenizer": "standard", "filter": ["nope"]})  # fmt: skip
    assert c.describe_collection("docs")["fields"] == before
    c.add_collection_field("docs", "body", DataType.VARCHAR, max_length=50, nullable=True,
                           enable_analyzer=True, analyzer_params={"type": "chinese"})  # fmt: skip
    assert c.describe_collection("docs")["fields"][-1]["params"]["analyzer_params"] == '{"type":"chinese"}'
    with pytest.raises(InvalidArgument, match="does not enable analyzer"):
        c.run_analyzer("x", collection_name="docs", field_name="text")
    c.close()


def test_run_analyzer_shapes(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path))
    assert c.run_analyzer(["a B", "c"]).__class__ is list
    one = c.run_analyzer("Hello wörld", {"tokenizer": "standard"}, with_detail=True, with_hash=True)
    assert one.tokens[1] == {"token": "wörld", "start_offset": 6, "end_offset": 12, "position": 1,
                             "position_length": 1, "hash": token_hash("wörld")}  # fmt: skip
    assert c.run_analyzer("Hello", with_hash=True).tokens == [{"token": "hello", "hash": token_hash("hello")}]
    c.close()


def test_multi_language_analyzer(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path))
    multi = {"analyzers": {"en": {"type": "english"}, "cn": {"type": "chinese"}, "default": {"tokenizer": "whitespace"}},
             "by_field": "lang", "alias": {"chinese": "cn"}}  # fmt: skip
    s = _schema(c, enable_analyzer=True, multi_analyzer_params=multi)
    with pytest.raises(InvalidArgument, match="by_field 'lang'"):
        c.create_collection("docs", schema=s)  # no `lang` field yet
    s.add_field("lang", DataType.VARCHAR, max_length=8)
    c.create_collection("docs", schema=s)
    got = c.run_analyzer(["Running dogs", "向量数据库", "Running dogs"], collection_name="docs", field_name="text",
                         analyzer_names=["en", "chinese", "xx"])  # fmt: skip
    assert [r.tokens for r in got] == [["run", "dog"], ["向量", "数据", "据库", "数据库"], ["Running", "dogs"]]
    with pytest.raises(InvalidArgument, match="'default'"):
        _schema(c, enable_analyzer=True, multi_analyzer_params={"analyzers": {"en": {"type": "english"}}, "by_field": "lang"})
    c.close()
