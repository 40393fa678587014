"""Milvus's rules for the names of collections, aliases, fields, partitions and databases,
with Milvus's own messages and status codes.

Why Milvus's words rather than one message of ours: clients and their users match on the
code and the text (Milvus's own test suite checks that the message *contains* Milvus's),
and a refusal that reads the same against Milvus and keeldb is one less surprise. The
rules are Milvus 2.6's proxy checks (``validateCollectionNameOrAlias``,
``validateFieldName``, ``validatePartitionTag``, ``ValidateDatabaseName``): at most 255
characters, ASCII letters, digits and ``_`` (a partition may also start with a digit and
hold ``-``), and no field named after a word of the filter language.

Every name keeldb stores passed these checks, so a lookup of a name that fails them is
answered with the invalid-name error before "not found" — as Milvus, which validates
before it looks.
"""

from __future__ import annotations

from typing import Any

from keeldb.errors import InvalidArgument

MAX_NAME_LENGTH = 255

# Milvus's ``common.FieldNameKeywords``: words of the filter language a field may not be
# named, or a filter could not tell the field from the word.
FIELD_NAME_KEYWORDS = frozenset({
    "$meta", "like", "exists", "EXISTS", "and", "or", "not", "in",
    "json_contains", "JSON_CONTAINS", "json_contains_all", "JSON_CONTAINS_ALL",
    "json_contains_any", "JSON_CONTAINS_ANY", "array_contains", "ARRAY_CONTAINS",
    "array_contains_all", "ARRAY_CONTAINS_ALL", "array_contains_any", "ARRAY_CONTAINS_ANY",
    "array_length", "ARRAY_LENGTH", "true", "True", "TRUE", "false", "False", "FALSE",
    "null", "Null", "NULL", "text_match", "TEXT_MATCH", "phrase_match", "PHRASE_MATCH",
    "random_sample", "RANDOM_SAMPLE",
})  # fmt: skip

FIELD_NAME_INVALID = 1701  # merr.ErrFieldNameInvalid
DATABASE_NAME_INVALID = 802  # merr.ErrDatabaseNameInvalid
UNEXPECTED = 65535  # partition-name errors are plain errors in Milvus's proxy


def _alpha(c: str) -> bool:
    return ("a" <= c <= "z") or ("A" <= c <= "Z")


def _digit(c: str) -> bool:
    return "0" <= c <= "9"


def _text(name: Any, kind: str) -> str:
    if not isinstance(name, str):
        raise InvalidArgument(f"`{kind}_name` value {name!r} is illegal")
    return name


def _fault(name: str, *, digit_first: bool = False, more: str = "") -> str | None:
    """Which of Milvus's rules ``name`` breaks first: "length" (over 255), "first" (not a
    letter or '_', or a digit where allowed), "rest" (not letters, digits, '_' or ``more``),
    or None. One rule for every kind; each kind words the fault its own way."""
    if len(name) > MAX_NAME_LENGTH:
        return "length"
    c = name[0]
    if c != "_" and not _alpha(c) and not (digit_first and _digit(c)):
        return "first"
    if any(c != "_" and c not in more and not _alpha(c) and not _digit(c) for c in name[1:]):
        return "rest"
    return None


def check_collection_name(name: Any, what: str = "name") -> str:
    """A collection's name (``what="name"``) or an alias (``what="alias"``): 1100."""
    name = _text(name, "collection" if what == "name" else "alias")
    head = f"Invalid collection {what}: {name}."
    if not name.strip():  # Milvus trims spaces first: " " is an empty name
        raise InvalidArgument(f"{head} collection {what} should not be empty: invalid parameter")
    fault = _fault(name)
    if fault is None:
        return name
    why = {
        "length": f"the length of a collection {what} must be less than {MAX_NAME_LENGTH} characters",
        "first": f"the first character of a collection {what} must be an underscore or letter",
        "rest": f"collection {what} can only contain numbers, letters and underscores",
    }[fault]
    raise InvalidArgument(f"{head} {why}: invalid parameter")


def check_field_name(name: Any) -> str:
    """A field's name: 1701 "field name invalid", keywords of the filter language included."""
    name = _text(name, "field")
    if not name:
        raise InvalidArgument("field name should not be empty: field name invalid[field=]", code=FIELD_NAME_INVALID)
    fault = _fault(name)
    if fault is None and name not in FIELD_NAME_KEYWORDS:
        return name
    why = {
        "length": f"The length of a field name must be less than {MAX_NAME_LENGTH} characters.",
        "first": "The first character of a field name must be an underscore or letter.",
        "rest": "Field name can only contain numbers, letters, and underscores.",
        None: f"{name} is keyword in milvus.",
    }[fault]
    raise InvalidArgument(f"Invalid field name: {name}. {why}: field name invalid[field={name}]", code=FIELD_NAME_INVALID)


def check_partition_name(name: Any) -> str:
    """A partition's name. Milvus allows a leading digit and '-' after the first character."""
    name = _text(name, "partition")
    fault = "empty" if not name.strip() else _fault(name, digit_first=True, more="-")  # Milvus trims first
    if fault is None:
        return name
    why = {
        "empty": "Partition name should not be empty.",
        "length": f"The length of a partition name must be less than {MAX_NAME_LENGTH} characters.",
        "first": "The first character of a partition name must be an underscore or letter.",
        "rest": "Partition name can only contain numbers, letters and underscores.",
    }[fault]
    raise InvalidArgument(f"Invalid partition name: {name}. {why}", code=UNEXPECTED)


def check_database_name(name: Any) -> str:
    """A database's name: 802 "invalid database name"."""
    name = _text(name, "db")
    fault = "empty" if not name else _fault(name)
    if fault is None:
        return name
    why = {
        "empty": "database name couldn't be empty",
        "length": f"the length of a database name must be less than {MAX_NAME_LENGTH} characters",
        "first": "the first character of a database name must be an underscore or letter",
        "rest": "database name can only contain numbers, letters and underscores",
    }[fault]
    raise InvalidArgument(f"{why}: invalid database name[database={name}]", code=DATABASE_NAME_INVALID)
