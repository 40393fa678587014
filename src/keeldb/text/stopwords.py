"""Milvus's ``_english_`` stop words (its ``stop_words.rs``): Lucene's English stop set,
which is what the built-in ``english`` analyzer removes -- shorter than the Snowball English
list tantivy ships, so it is spelled out here rather than taken from tantivy."""

ENGLISH: tuple[str, ...] = (
    "a", "an", "and", "are", "as", "at", "be", "but", "by", "for", "if", "in", "into", "is", "it",
    "no", "not", "of", "on", "or", "such", "that", "the", "their", "then", "there", "these",
    "they", "this", "to", "was", "will", "with",
)  # fmt: skip
