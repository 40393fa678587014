"""Text analyzers: Milvus's ``analyzer_params`` turned into tokens (issue 15).

An analyzer is one tokenizer and zero or more filters, built from the JSON a VARCHAR
field's ``analyzer_params`` (or ``MilvusClient.run_analyzer``) carries, exactly as Milvus
2.6 reads it (its tantivy-binding crate: ``analyzer.rs``, ``tokenizers/``, ``filter/``):

- built in: ``{"type": "standard"}`` (standard tokenizer + lowercase), ``{"type": "english"}``
  (standard + lowercase + English Snowball stemmer + Milvus's English stop words, in that
  order), ``{"type": "chinese"}`` (jieba + cnalphanumonly); each takes ``stop_words``;
  ``{}`` is the standard analyzer;
- custom: ``{"tokenizer": "standard" | "whitespace" | "jieba" | {"type": ..., ...},
  "filter": [...]}`` with filters ``lowercase``, ``asciifolding``, ``alphanumonly``,
  ``cncharonly``, ``cnalphanumonly``, ``removepunct`` and ``{"type": "length" | "stop" |
  "stemmer" | "decompounder" | "regex", ...}``.

What Milvus has and keeldb does not build is refused by name (the ``icu`` and ``lindera``
tokenizers, the ``synonym`` filter, stop-word and dictionary *files*, the ``_chinese_``
stop-word list), never silently replaced by something else.

Library choice. Milvus analyzes text with tantivy (Rust) plus jieba-rs; keeldb uses the
same two engines through their Python bindings rather than re-implementing them:

- ``tantivy`` (the official Python binding, tantivy-py >= 0.25) exposes tantivy's own
  ``SimpleTokenizer`` (which *is* Milvus's ``standard`` tokenizer), ``WhitespaceTokenizer``,
  and the filters Milvus takes from tantivy: ``LowerCaser``, ``AsciiFoldingFilter``,
  ``AlphaNumOnlyFilter``, ``RemoveLongFilter``, ``StopWordFilter``, ``Stemmer``
  (rust-stemmers, Snowball) and ``SplitCompoundWords``. Using them gives Milvus's tokens
  bit for bit where a hand-written tokenizer would drift at the edges: Rust's
  ``char::is_alphanumeric`` keeps combining marks (Devanagari vowel signs) inside a word
  where Python's ``str.isalnum`` splits, tantivy lower-cases per character (``ΣΑΣ`` ->
  ``σασ``) where ``str.lower`` applies the final-sigma rule, and a Python Snowball package
  may be a different Snowball release than rust-stemmers.
- ``rjieba`` binds jieba-rs, the crate Milvus's ``jieba`` tokenizer wraps (the Python
  ``jieba`` package is a different implementation of the same algorithm).
- ``regex`` for the filters Milvus writes itself with Rust's ``regex`` / ``fancy_regex``:
  it has ``\\p{Han}`` and Unicode general categories (the standard ``re`` has neither) and
  lookaround, as fancy_regex does.

Speed: when the tokenizer and every filter are tantivy's, one tantivy analyzer runs the
whole chain in one native call a text (``Analyzer.terms`` is what a BM25 function calls
per row); otherwise the tokenizer runs once and each run of consecutive tantivy filters is
applied per token through a tantivy analyzer over a ``raw`` tokenizer (the same filter
code), with keeldb's own filters (Milvus's Chinese/punctuation/regex filters) between them.
Built analyzers are cached by their parameters, so a field's analyzer is built once.

Offsets are UTF-8 byte offsets into the text, as Milvus returns them (tantivy's
``Token.offset_from``; Milvus's jieba tokenizer converts jieba's character indices to
bytes too); positions are tantivy's (the token's index in the tokenizer's stream; jieba's
position is the token's first character and ``position_length`` its length in
characters, as Milvus's jieba tokenizer sets them).
"""

from keeldb.text.analyzer import (
    Analyzer,
    AnalyzerResult,
    MultiAnalyzer,
    Token,
    build_analyzer,
    build_multi_analyzer,
    canonical,
    parse_params,
    token_hash,
)

__all__ = [
    "Analyzer",
    "AnalyzerResult",
    "MultiAnalyzer",
    "Token",
    "build_analyzer",
    "build_multi_analyzer",
    "canonical",
    "parse_params",
    "token_hash",
]
