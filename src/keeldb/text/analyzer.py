"""Analyzer params -> an ``Analyzer`` (see the package docstring for the choices).

Every refusal is an ``InvalidArgument`` whose text is Milvus's (its tantivy-binding's
messages, wrapped the way its proxy wraps them: ``create analyzer failed with error:
... param: ...``), so a user who reads the error in keeldb reads what Milvus would say.
"""

from __future__ import annotations

import functools
import json
import zlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import regex
import tantivy

from keeldb.errors import InvalidArgument
from keeldb.text.stopwords import ENGLISH

# -- tokens ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Token:
    """One token as Milvus's ``AnalyzerToken`` carries it: UTF-8 byte offsets into the
    analyzed text, the stream position and how many positions it spans."""

    text: str
    start_offset: int
    end_offset: int
    position: int
    position_length: int = 1

    def with_text(self, text: str) -> Token:
        return Token(text, self.start_offset, self.end_offset, self.position, self.position_length)


def token_hash(token: str) -> int:
    """What RunAnalyzer's ``with_hash`` returns: Milvus's ``typeutil.HashString2LessUint32``
    -- CRC-32 (IEEE) of the token's first 100 UTF-8 bytes, modulo 2^32 - 1."""
    return zlib.crc32(token.encode("utf-8")[:100]) % 0xFFFFFFFF


class _Error(Exception):
    """A tantivy-binding message before it is wrapped with the params (``_fail``)."""


# -- tokenizers -------------------------------------------------------------------------

Tokenize = Callable[[str], list[Token]]


def _byte_offsets(text: str) -> Callable[[int], int]:
    """Character index -> UTF-8 byte offset (tantivy-py and rjieba count characters; Milvus
    reports bytes). ASCII text, the common case, needs no table."""
    if text.isascii():
        return int
    table = [0]
    n = 0
    for ch in text:
        n += len(ch.encode("utf-8"))
        table.append(n)
    return table.__getitem__


def _tantivy_tokens(analyzer: tantivy.TextAnalyzer, text: str) -> list[Token]:
    to_bytes = _byte_offsets(text)
    return [
        Token(t.text, to_bytes(t.char_offset_from), to_bytes(t.char_offset_to), t.position)
        for t in analyzer.pre_tokenize(text).tokens
    ]


_TANTIVY_TOKENIZERS: dict[str, Callable[[], tantivy.Tokenizer]] = {
    "standard": tantivy.Tokenizer.simple,  # Milvus: standard_builder() = SimpleTokenizer
    "whitespace": tantivy.Tokenizer.whitespace,
}
# Tokenizers Milvus builds that keeldb does not: refused by name, not replaced.
_NOT_BUILT_TOKENIZERS = ("icu", "lindera", "language_identifier", "char_group", "grpc")


@dataclass(frozen=True)
class _Jieba:
    mode: str  # jieba-rs TokenizeMode: "search" (Milvus's default) or "default" ("exact")
    hmm: bool
    dict_words: tuple[str, ...] | None  # None: the default dictionary only

    @functools.cached_property
    def engine(self) -> Any:
        if self.dict_words is None:
            return _default_jieba()
        use_default = "_default_" in self.dict_words
        rjieba = _rjieba()
        j = rjieba.Jieba() if use_default else rjieba.Jieba.empty()
        for w in self.dict_words:
            if w != "_default_":
                j.add_word(w, None, None)
        return j

    def __call__(self, text: str) -> list[Token]:
        to_bytes = _byte_offsets(text)
        # Milvus's jieba tokenizer: position = first character, position_length = characters.
        return [
            Token(word, to_bytes(start), to_bytes(end), start, end - start)
            for word, start, end in self.engine.tokenize(text, self.mode, self.hmm)
        ]


@functools.cache
def _default_jieba() -> Any:
    return _rjieba().Jieba()  # loads jieba-rs's built-in dictionary once per process


def _rjieba() -> Any:
    """rjieba, imported when a jieba tokenizer is first built: the import costs ~0.1 s, which
    every keeldb process paid whether or not it analyzed Chinese."""
    import rjieba

    return rjieba


def _jieba_from(params: Mapping[str, Any] | None) -> _Jieba:
    if params is None:
        return _Jieba("search", True, None)
    words: tuple[str, ...] | None = None
    if "dict" in params:
        d = params["dict"]
        if not isinstance(d, list):
            raise _Error("jieba tokenizer dict must be array")
        if not all(isinstance(w, str) for w in d):
            raise _Error("jieba tokenizer dict item must be string")
        words = tuple(d)
    mode = params.get("mode", "search")
    if not isinstance(mode, str):
        raise _Error("jieba tokenizer mode must be string")
    if mode not in ("exact", "search"):
        raise _Error('jieba tokenizer mode must be "exact" or "search"')
    hmm = params.get("hmm", True)
    if not isinstance(hmm, bool):
        raise _Error("jieba tokenizer mode must be boolean")  # sic: Milvus's message
    return _Jieba("default" if mode == "exact" else "search", hmm, words)


# -- filters ----------------------------------------------------------------------------


@dataclass(frozen=True)
class _TantivyFilter:
    """A filter tantivy implements (the same code Milvus runs)."""

    make: Callable[[], tantivy.Filter]


@dataclass(frozen=True)
class _KeepIf:
    """A filter Milvus writes itself: keep a token iff ``keep(text)``; no rewriting."""

    keep: Callable[[str], bool]


_Filter = _TantivyFilter | _KeepIf

_HAN = regex.compile(r"\p{Han}+")
_CN_ALNUM = regex.compile(r"[\p{Han}a-zA-Z0-9]+")
_PUNCT = regex.compile(r"[\p{P}\s]+")  # Rust regex's \p{Punct} is General_Category=Punctuation

_NAMED_FILTERS: dict[str, _Filter] = {
    "lowercase": _TantivyFilter(tantivy.Filter.lowercase),
    "asciifolding": _TantivyFilter(tantivy.Filter.ascii_fold),
    "alphanumonly": _TantivyFilter(tantivy.Filter.alphanum_only),
    # Milvus's regexes use is_match: anywhere in the token, not the whole token.
    "cncharonly": _KeepIf(lambda t: _HAN.search(t) is not None),
    "cnalphanumonly": _KeepIf(lambda t: _CN_ALNUM.search(t) is not None),
    "removepunct": _KeepIf(lambda t: _PUNCT.search(t) is None),
}

_STEMMER_LANGUAGES = frozenset({
    "arabic", "danish", "dutch", "english", "finnish", "french", "german", "greek", "hungarian",
    "italian", "norwegian", "portuguese", "romanian", "russian", "spanish", "swedish", "tamil", "turkish",
})  # fmt: skip
# Milvus's `_lang_` stop-word lists. English is Milvus's own (Lucene's 33 words, which
# tantivy's Snowball list is not); the others are the Snowball lists tantivy ships, which
# Milvus copied from the same Snowball project.
_STOP_LANGUAGES = frozenset({
    "danish", "dutch", "finnish", "french", "german", "hungarian", "italian", "norwegian",
    "portuguese", "russian", "spanish", "swedish",
})  # fmt: skip


def _string_list(value: Any, label: str) -> list[str]:
    if not isinstance(value, list):
        raise _Error(f"{label} should be array")
    if not all(isinstance(v, str) for v in value):
        raise _Error(f"{label} list item should be string")
    return list(value)


def _stop_filters(words: list[str]) -> list[_Filter]:
    """Milvus's ``get_stop_words_list``: ``_english_`` etc. expand to a language's list; any
    other word (also an unknown ``_x_``) is a stop word as written."""
    plain: list[str] = []
    languages: list[str] = []
    for w in words:
        if w == "_english_":
            plain.extend(ENGLISH)
        elif w == "_chinese_":
            raise _Error("stop words list _chinese_ is not built in keeldb")
        elif w.startswith("_") and w.endswith("_") and w[1:-1] in _STOP_LANGUAGES:
            languages.append(w[1:-1])
        else:
            plain.append(w)
    out: list[_Filter] = [_TantivyFilter(functools.partial(tantivy.Filter.stopword, lang)) for lang in languages]
    if plain or not out:
        out.append(_TantivyFilter(functools.partial(tantivy.Filter.custom_stopword, plain)))
    return out


def _object_filter(params: Mapping[str, Any]) -> list[_Filter]:
    kind = params.get("type")
    if kind is None:
        raise _Error("no type field in filter params")
    if not isinstance(kind, str):
        raise _Error("filter type should be string")
    if kind == "length":
        limit = params.get("max")
        if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
            raise _Error("lenth max param was none or not uint")  # sic
        # Milvus: RemoveLongFilter::limit(max + 1) -- keeps tokens of at most `max` bytes.
        return [_TantivyFilter(functools.partial(tantivy.Filter.remove_long, limit + 1))]
    if kind == "stop":
        if "stop_words_file" in params:
            raise _Error("stop_words_file is not supported by keeldb (give the words as stop_words)")
        words = _string_list(params["stop_words"], "stop_words") if "stop_words" in params else []
        return _stop_filters(words)
    if kind == "stemmer":
        lang = params.get("language")
        if not isinstance(lang, str):
            raise _Error("stemmer language field should be string")
        lang = lang.lower()
        lang = "arabic" if lang == "arabig" else lang  # Milvus accepts its own typo
        if lang not in _STEMMER_LANGUAGES:
            raise _Error(f"create stemmer failed : unsupport language: {lang}")
        return [_TantivyFilter(functools.partial(tantivy.Filter.stemmer, lang))]
    if kind == "decompounder":
        words = params.get("word_list")
        if not isinstance(words, list):
            raise _Error("decompounder word list should be array")
        if not all(isinstance(w, str) for w in words):
            raise _Error("decompounder word list item should be string")
        return [_TantivyFilter(functools.partial(tantivy.Filter.split_compound, list(words)))]
    if kind == "regex":
        expr = params.get("expr")
        if expr is None:
            raise _Error("must set expr for regex filter")
        if not isinstance(expr, str):
            raise _Error("expr must be string")
        try:
            pattern = regex.compile(expr)
        except regex.error as e:
            raise _Error(f"regex expression invalid, expr:{expr}, err: {e}") from None
        return [_KeepIf(lambda t: pattern.search(t) is not None)]
    if kind == "synonym":
        raise _Error("the synonym filter is not supported by keeldb")
    raise _Error(f"unsupport filter type: {kind}")


def _filters(value: Any) -> list[_Filter]:
    if not isinstance(value, list):
        raise _Error("filter params should be array")
    out: list[_Filter] = []
    for item in value:
        if isinstance(item, str):
            f = _NAMED_FILTERS.get(item)
            if f is None:
                raise _Error(f"build analyzer failed, filter not found :{item}")
            out.append(f)
        elif isinstance(item, dict):
            out.extend(_object_filter(item))
        else:
            # Milvus skips such an item without a word; keeldb says so instead.
            raise _Error(f"filter should be a name or an object, got {json.dumps(item)}")
    return out


# -- the analyzer -----------------------------------------------------------------------


def _filter_runner(group: list[_TantivyFilter]) -> tantivy.TextAnalyzer:
    """A run of tantivy filters applied to one token: a raw tokenizer (the token as one
    piece) followed by the filters, as they follow the tokenizer in Milvus's chain."""
    b = tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.raw())
    for f in group:
        b = b.filter(f.make())
    return b.build()


class Analyzer:
    """Text -> tokens, for RunAnalyzer (``tokens``) and for a BM25 function or text match
    (``terms``: the token texts only, the cheapest call). Thread-safe: it holds no state
    between calls."""

    def __init__(self, tokenizer: Tokenize, tantivy_tokenizer: str | None, filters: list[_Filter]) -> None:
        self._tokenize = tokenizer
        self._stages: list[Callable[[list[Token]], list[Token]]] = []
        self._whole: tantivy.TextAnalyzer | None = None
        if tantivy_tokenizer is not None and all(isinstance(f, _TantivyFilter) for f in filters):
            b = tantivy.TextAnalyzerBuilder(_TANTIVY_TOKENIZERS[tantivy_tokenizer]())
            for f in filters:
                assert isinstance(f, _TantivyFilter)
                b = b.filter(f.make())
            self._whole = b.build()  # the whole chain in one native call
            return
        group: list[_TantivyFilter] = []
        for f in [*filters, None]:
            if isinstance(f, _TantivyFilter):
                group.append(f)
                continue
            if group:
                self._stages.append(functools.partial(_run_tantivy, _filter_runner(group)))
                group = []
            if isinstance(f, _KeepIf):
                self._stages.append(functools.partial(_run_keep, f.keep))

    def tokens(self, text: str) -> list[Token]:
        if self._whole is not None:
            return _tantivy_tokens(self._whole, text)
        toks = self._tokenize(text)
        for stage in self._stages:
            toks = stage(toks)
        return toks

    def terms(self, text: str) -> list[str]:
        if self._whole is not None:
            return list(self._whole.analyze(text))
        return [t.text for t in self.tokens(text)]

    def positioned(self, text: str) -> list[tuple[str, int]]:
        """(token text, position) pairs: what a text-match index keeps of a text (the
        positions are the ones ``tokens`` reports, gaps left by removed tokens included).
        Without ``Token`` objects and byte offsets: a quarter of ``tokens``' cost."""
        if self._whole is not None:
            return [(t.text, t.position) for t in self._whole.pre_tokenize(text).tokens]
        return [(t.text, t.position) for t in self.tokens(text)]


def _run_tantivy(runner: tantivy.TextAnalyzer, toks: list[Token]) -> list[Token]:
    out: list[Token] = []
    for t in toks:
        # 0 texts: removed (stop word, too long, ...); 1: rewritten; more: a compound split,
        # each part keeping the original token's offsets and position, as tantivy's does.
        for text in runner.analyze(t.text):
            out.append(t if text == t.text else t.with_text(text))
    return out


def _run_keep(keep: Callable[[str], bool], toks: list[Token]) -> list[Token]:
    return [t for t in toks if keep(t.text)]


def _tokenizer(value: Any) -> tuple[Tokenize, str | None]:
    if isinstance(value, str):
        name, params = value, None
    elif isinstance(value, dict):
        name = value.get("type")
        if name is None:
            raise _Error("costum tokenizer must set type")  # sic
        if not isinstance(name, str):
            raise _Error("tokenizer type should be string")
        params = value
    else:
        raise _Error("tokenizer name should be string or dict")
    if name in _TANTIVY_TOKENIZERS:
        return functools.partial(_tantivy_tokens, tantivy.TextAnalyzerBuilder(_TANTIVY_TOKENIZERS[name]()).build()), name
    if name == "jieba":
        return _jieba_from(params), None
    if name in _NOT_BUILT_TOKENIZERS:
        raise _Error(f"tokenizer {name} is supported by Milvus but not built in keeldb (use standard, whitespace or jieba)")
    raise _Error(f"unsupported tokenizer: {name}")


def _builtin(kind: Any, params: Mapping[str, Any]) -> Analyzer:
    if not isinstance(kind, str):
        raise _Error("analyzer type shoud be string")  # sic
    extra = _stop_filters(_string_list(params["stop_words"], "filter stop_words")) if "stop_words" in params else []
    # Milvus's build_in_analyzer.rs; other keys beside `stop_words` are ignored there too.
    if kind == "standard":
        return Analyzer(*_tokenizer("standard"), [_NAMED_FILTERS["lowercase"], *extra])
    if kind == "english":
        chain = [_NAMED_FILTERS["lowercase"], *_object_filter({"type": "stemmer", "language": "english"}),
                 *_stop_filters(["_english_"]), *extra]  # fmt: skip
        return Analyzer(*_tokenizer("standard"), chain)
    if kind == "chinese":
        return Analyzer(*_tokenizer("jieba"), [_NAMED_FILTERS["cnalphanumonly"], *extra])
    raise _Error(f"unknown build-in analyzer type: {kind}")


def _build(params: Mapping[str, Any]) -> Analyzer:
    if not params:
        return _builtin("standard", {})
    if "type" in params:
        return _builtin(params["type"], params)
    if "tokenizer" not in params:
        raise _Error("tokenizer name or type must be set")
    tokenize, tantivy_name = _tokenizer(params["tokenizer"])
    filters: list[_Filter] = []
    for key, value in params.items():
        if key == "filter":
            filters = _filters(value)
        elif key != "tokenizer":
            raise _Error(f"unknown analyzer option key: {key}")
    return Analyzer(tokenize, tantivy_name, filters)


def parse_params(params: Any) -> dict[str, Any]:
    """Analyzer params as a dict, from a dict or the JSON text pymilvus sends."""
    if params is None or params == "":
        return {}
    if isinstance(params, str):
        try:
            params = json.loads(params)
        except ValueError as e:
            raise InvalidArgument(f"create analyzer failed with error: JsonError: {e} param: {params}") from None
    if not isinstance(params, dict):
        raise InvalidArgument(f"create analyzer failed with error: params should be a json map param: {params}")
    return params


def canonical(params: Mapping[str, Any]) -> str:
    """The JSON text Milvus stores and describes: what pymilvus sends (orjson: compact,
    keys in the given order, UTF-8 as is)."""
    return json.dumps(params, separators=(",", ":"), ensure_ascii=False)


@functools.lru_cache(maxsize=256)
def _cached(text: str) -> Analyzer:
    try:
        return _build(json.loads(text))
    except _Error as e:
        raise InvalidArgument(f"create analyzer failed with error: {e} param: {text}") from None


def build_analyzer(params: Any = None) -> Analyzer:
    """The analyzer for ``analyzer_params`` (a dict, JSON text or None for the standard
    analyzer); refused with Milvus's words when Milvus would refuse it. Cached: a field's
    analyzer is built once however often it is asked for."""
    return _cached(canonical(parse_params(params)))


# -- multi-language analyzers -------------------------------------------------------------


class MultiAnalyzer:
    """``multi_analyzer_params``: ``{"analyzers": {name: params, ..., "default": params},
    "by_field": "<VARCHAR field naming each row's analyzer>", "alias": {other: name}}``. A
    row whose ``by_field`` value names no analyzer (directly or by alias) uses ``default``."""

    def __init__(self, analyzers: dict[str, Analyzer], by_field: str, alias: dict[str, str]) -> None:
        self.analyzers = analyzers
        self.by_field = by_field
        self.alias = alias

    def pick(self, name: str | None) -> Analyzer:
        if name is None:
            return self.analyzers["default"]
        name = self.alias.get(name, name)
        return self.analyzers.get(name, self.analyzers["default"])


def build_multi_analyzer(params: Any) -> MultiAnalyzer:
    p = parse_params(params)

    def bad(why: str) -> InvalidArgument:
        return InvalidArgument(f"invalid multi_analyzer_params: {why}")

    for key in p:
        if key not in ("analyzers", "by_field", "alias"):
            raise bad(f"unknown key {key!r}")
    analyzers = p.get("analyzers")
    if not isinstance(analyzers, dict) or not analyzers:
        raise bad("analyzers must be a non-empty object of name -> analyzer params")
    if "default" not in analyzers:
        raise bad("analyzers must contain a 'default' analyzer")
    by_field = p.get("by_field")
    if not isinstance(by_field, str) or not by_field:
        raise bad("by_field must name a field")
    alias = p.get("alias", {})
    if not isinstance(alias, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in alias.items()):
        raise bad("alias must be an object of name -> analyzer name")
    for k, v in alias.items():
        if v not in analyzers:
            raise bad(f"alias {k!r} names no analyzer ({v!r})")
    built = {name: build_analyzer(a) for name, a in analyzers.items()}
    return MultiAnalyzer(built, by_field, dict(alias))


def analyze(analyzer: Analyzer, texts: Sequence[str]) -> list[list[Token]]:
    return [analyzer.tokens(t) for t in texts]


class AnalyzerResult:
    """One text's answer in pymilvus's ``AnalyzeResult`` shape: ``tokens`` is a list of
    strings, or -- with ``with_detail`` / ``with_hash`` -- of dicts with pymilvus's keys
    (``token``, ``start_offset``, ``end_offset``, ``position``, ``position_length``,
    ``hash``)."""

    def __init__(self, tokens: Sequence[Token], with_hash: bool = False, with_detail: bool = False) -> None:
        if not with_hash and not with_detail:
            self.tokens: list[Any] = [t.text for t in tokens]
            return
        self.tokens = []
        for t in tokens:
            d: dict[str, Any] = {"token": t.text}
            if with_detail:
                d.update(start_offset=t.start_offset, end_offset=t.end_offset, position=t.position,
                         position_length=t.position_length)  # fmt: skip
            if with_hash:
                d["hash"] = token_hash(t.text)
            self.tokens.append(d)

    def __repr__(self) -> str:
        return str(self.tokens)
