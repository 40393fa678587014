"""Bad input is rejected with the right error, a message that names the problem, and no effect.

Every test here follows one pattern: capture the collection's state, make a call that must
fail, check the error type and that its message names the field / row / key / position at
fault, and check the state again. "State" is deliberately broad (see :func:`capture`):
``count(*)``, every live row with every field, the collection statistics, the live-key index
and the visible timestamp -- a write that got as far as the log would move the timestamp even
if it left the rows alone. The seed data spans a flushed segment and the growing one and
includes a delete and overwrites, so "unchanged" covers both kinds of storage.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import keeldb
import keeldb.engine.rows as rows_mod
from keeldb import (
    CollectionNotFound,
    CollectionNotLoaded,
    DataType,
    FilterError,
    InvalidArgument,
    PrimaryKeyExists,
)
from keeldb.engine.search import MAX_TOPK
from keeldb.names import FIELD_NAME_INVALID

COLL = "t"
DIM = 4
NAN = float("nan")
INF = float("inf")
_DROP = object()  # a patch value meaning "leave this field out of the row"


# ---------------------------------------------------------------------------------------------
# Fixtures and the state helper
# ---------------------------------------------------------------------------------------------


def make_schema() -> keeldb.CollectionSchema:
    s = keeldb.Client.create_schema(enable_dynamic_field=False)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=DIM)
    s.add_field("i8", DataType.INT8, nullable=True)
    s.add_field("i16", DataType.INT16, nullable=True)
    s.add_field("i32", DataType.INT32, nullable=True)
    s.add_field("i64", DataType.INT64, nullable=True)
    s.add_field("f", DataType.FLOAT, nullable=True)
    s.add_field("d", DataType.DOUBLE, nullable=True)
    s.add_field("b", DataType.BOOL, nullable=True)
    s.add_field("s", DataType.VARCHAR, max_length=8, nullable=True)
    s.add_field("j", DataType.JSON, nullable=True)
    s.add_field("req", DataType.INT64)  # not nullable, no default: must always be given
    s.add_field("dflt", DataType.INT32, default_value=7)
    return s


def good_row(i: int) -> dict[str, Any]:
    return {
        "id": i,
        "v": [float(i), 1.0, -0.5, 0.25],
        "i8": i % 100,
        "i16": i * 3,
        "i32": i * 1000,
        "i64": i * 10**12,
        "f": i / 4,
        "d": i / 3,
        "b": i % 2 == 0,
        "s": f"s{i}",
        "j": {"k": i, "tags": ["a", "b"]},
        "req": i,
    }


@dataclass
class Env:
    path: Path
    client: keeldb.Client

    def reopen(self) -> None:
        self.client.close()
        self.client = keeldb.Client(str(self.path))


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The seed database, built once (its fsyncs dominate) and copied for every test."""
    path = tmp_path_factory.mktemp("template") / "db"
    with keeldb.Client(str(path)) as client:
        ip = client.prepare_index_params("v", metric_type="L2")
        client.create_collection(COLL, schema=make_schema(), index_params=ip)
        client.insert(COLL, [good_row(i) for i in range(15)])
        client.flush(COLL)  # rows 0..14 now live in a sealed segment
        client.insert(COLL, [good_row(i) for i in range(15, 30)])
        client.delete(COLL, ids=[3])
        client.upsert(
            COLL, [{**good_row(5), "s": "new5"}, {**good_row(20), "s": "new20", "i8": None}]
        )
    return path


@pytest.fixture
def env(template: Path, tmp_path: Path) -> Iterator[Env]:
    path = tmp_path / "db"
    shutil.copytree(template, path)
    e = Env(path, keeldb.Client(str(path)))
    yield e
    e.client.close()


@dataclass(frozen=True)
class State:
    count: int
    rows: list[dict[str, Any]]
    stats: dict[str, Any]
    live_keys: int
    visible_ts: int
    collections: list[str]


def capture(client: keeldb.Client, name: str = COLL) -> State:
    """Everything a failed call must leave alone."""
    count = client.query(name, "", output_fields=["count(*)"])[0]["count(*)"]
    rows = sorted(client.query(name, "", output_fields=["*"]), key=lambda r: r["id"])
    coll = client.db.collection(name)
    return State(
        count=count,
        rows=rows,
        stats=client.get_collection_stats(name),
        live_keys=coll.live_keys,
        visible_ts=coll.visible_ts,
        collections=sorted(client.list_collections()),
    )


def assert_unchanged(client: keeldb.Client, before: State, name: str = COLL) -> None:
    after = capture(client, name)
    assert after.count == before.count
    assert after.live_keys == before.live_keys == before.count
    assert after.stats == before.stats
    assert after.visible_ts == before.visible_ts, "a failed call reached the log"
    assert after.collections == before.collections
    assert after.rows == before.rows


def expect(
    env: Env,
    exc: type[Exception],
    fn: Callable[[keeldb.Client], Any],
    *words: str,
) -> pytest.ExceptionInfo[Exception]:
    """Run ``fn``; it must raise ``exc`` whose message holds every word, and change nothing."""
    before = capture(env.client)
    with pytest.raises(exc) as info:
        fn(env.client)
    msg = str(info.value)
    if isinstance(info.value, InvalidArgument):
        # Milvus's ParameterInvalid (a field's name: its FieldNameInvalid), for the gRPC server to pass on
        assert info.value.code in (1100, FIELD_NAME_INVALID)
    for w in words:
        assert w in msg, f"{w!r} not in error message {msg!r}"
    assert_unchanged(env.client, before)
    return info


def test_seed_state_is_what_the_tests_assume(env: Env) -> None:
    s = capture(env.client)
    assert s.count == 29
    by_id = {r["id"]: r for r in s.rows}
    assert 3 not in by_id
    assert by_id[5]["s"] == "new5" and by_id[20]["i8"] is None
    assert by_id[0]["dflt"] == 7


# ---------------------------------------------------------------------------------------------
# Bad values in a row (insert and upsert share the validation; both are checked)
# ---------------------------------------------------------------------------------------------

# (case id, patch applied to a good row, field the message must name, other words it must hold)
ROW_CASES: list[tuple[str, dict[str, Any], str, tuple[str, ...]]] = [
    ("dim_short", {"v": [1.0, 2.0, 3.0]}, "v", ("dimension 3", "4")),
    ("dim_long", {"v": [1.0] * 5}, "v", ("dimension 5",)),
    ("vector_nan", {"v": [1.0, NAN, 0.0, 0.0]}, "v", ("NaN",)),
    ("vector_inf", {"v": [1.0, 0.0, INF, 0.0]}, "v", ("infinity",)),
    ("vector_neg_inf", {"v": [-INF, 0.0, 0.0, 0.0]}, "v", ("infinity",)),
    ("vector_beyond_float32", {"v": [1e39, 0.0, 0.0, 0.0]}, "v", ("float32",)),
    ("vector_numpy_nan", {"v": np.array([0.0, 0.0, np.nan, 1.0])}, "v", ("NaN",)),
    ("vector_not_a_list_int", {"v": 3}, "v", ("list",)),
    ("vector_not_a_list_float", {"v": 0.5}, "v", ("list",)),
    ("vector_is_string", {"v": "abcd"}, "v", ("list",)),
    ("vector_is_dict", {"v": {"a": 1.0}}, "v", ("list",)),
    ("vector_string_elements", {"v": ["1", "2", "3", "4"]}, "v", ("str",)),
    ("vector_none_element", {"v": [1.0, None, 0.0, 0.0]}, "v", ("NoneType",)),
    ("vector_nested", {"v": [[1.0, 2.0], [3.0, 4.0]]}, "v", ("dimension 2",)),
    ("float_nan", {"f": NAN}, "f", ("NaN",)),
    ("float_inf", {"f": INF}, "f", ("infinity",)),
    ("float_numpy_nan", {"f": np.float32("nan")}, "f", ("NaN",)),
    ("float_beyond_float32", {"f": 1e39}, "f", ("out of range", "FLOAT")),
    ("double_nan", {"d": NAN}, "d", ("NaN",)),
    ("double_neg_inf", {"d": -INF}, "d", ("infinity",)),
    ("double_huge_int", {"d": 10**400}, "d", ("DOUBLE",)),
    ("string_into_int64", {"i64": "3"}, "i64", ("INT64", "str")),
    ("float_into_int32", {"i32": 3.0}, "i32", ("INT32", "float")),
    ("bool_into_int64", {"i64": True}, "i64", ("INT64", "bool")),
    ("bool_into_int8", {"i8": False}, "i8", ("INT8", "bool")),
    ("int_into_varchar", {"s": 3}, "s", ("VARCHAR", "int")),
    ("list_into_bool", {"b": [True]}, "b", ("BOOL", "list")),
    ("int_into_bool", {"b": 1}, "b", ("BOOL", "int")),
    ("string_into_float", {"f": "1.5"}, "f", ("FLOAT", "str")),
    ("bool_into_double", {"d": True}, "d", ("DOUBLE", "bool")),
    ("complex_into_double", {"d": 1 + 2j}, "d", ("DOUBLE", "complex")),
    ("int8_above", {"i8": 128}, "i8", ("128", "out of range", "INT8")),
    ("int8_below", {"i8": -129}, "i8", ("-129", "INT8")),
    ("int16_above", {"i16": 32768}, "i16", ("32768", "INT16")),
    ("int16_below", {"i16": -32769}, "i16", ("-32769", "INT16")),
    ("int32_above", {"i32": 2**31}, "i32", ("2147483648", "INT32")),
    ("int32_below", {"i32": -(2**31) - 1}, "i32", ("-2147483649", "INT32")),
    ("int64_above", {"i64": 2**63}, "i64", ("INT64",)),
    ("numpy_int8_above", {"i8": np.int64(300)}, "i8", ("300", "INT8")),
    ("unknown_field", {"nope": 1}, "nope", ("unknown field",)),
    ("missing_required", {"req": _DROP}, "req", ("missing",)),
    ("missing_vector", {"v": _DROP}, "v", ("missing",)),
    ("none_required", {"req": None}, "req", ("None",)),
    ("none_vector", {"v": None}, "v", ("None",)),
    ("varchar_too_long_ascii", {"s": "x" * 9}, "s", ("9 bytes", "max_length 8")),
    # 5 characters, 10 bytes: short in characters, long in UTF-8 bytes
    ("varchar_too_long_utf8", {"s": "ééééé"}, "s", ("10 bytes", "max_length 8")),
    ("varchar_too_long_emoji", {"s": "🙂🙂🙂"}, "s", ("12 bytes",)),
    ("json_set", {"j": {1, 2}}, "j", ("JSON", "set")),
    ("json_bytes", {"j": b"raw"}, "j", ("JSON", "bytes")),
    ("json_object", {"j": {"k": object()}}, "j", ("JSON", "object")),
    ("json_nan", {"j": {"k": NAN}}, "j", ("JSON",)),
    ("json_numpy_nan", {"j": {"k": np.float32("nan")}}, "j", ("JSON",)),
    ("json_text_invalid", {"j": "hello"}, "j", ("JSON",)),  # a str is JSON text, as in pymilvus
    ("json_text_nan", {"j": "[NaN]"}, "j", ("JSON",)),
    ("json_non_string_key", {"j": {1: "a"}}, "j", ("keys must be strings",)),
    ("pk_wrong_type", {"id": "x"}, "id", ("INT64",)),
    ("pk_none", {"id": None}, "id", ("None",)),
]


def patched(i: int, patch: dict[str, Any]) -> dict[str, Any]:
    row = good_row(i)
    for k, v in patch.items():
        if v is _DROP:
            row.pop(k, None)
        else:
            row[k] = v
    return row


@pytest.mark.parametrize("op", ["insert", "upsert"])
@pytest.mark.parametrize(
    ("patch", "field", "words"), [c[1:] for c in ROW_CASES], ids=[c[0] for c in ROW_CASES]
)
def test_bad_row_rejects_whole_batch(
    env: Env, op: str, patch: dict[str, Any], field: str, words: tuple[str, ...]
) -> None:
    # two good new rows, then the bad one: the message must point at row 2
    batch = [good_row(100), good_row(101), patched(102, patch)]
    if op == "upsert":  # an upsert batch that also overwrites live keys
        batch = [{**good_row(1), "s": "over"}, good_row(101), patched(25, patch)]
    expect(
        env, InvalidArgument, lambda c: getattr(c, op)(COLL, batch), "row 2", repr(field), *words
    )


@pytest.mark.parametrize("op", ["insert", "upsert"])
@pytest.mark.parametrize(
    ("patch", "words"),
    [
        ({"v": [1.0, 2.0]}, ("row 999", "'v'", "dimension 2")),
        ({"v": [0.0, NAN, 0.0, 0.0]}, ("row 999", "'v'", "NaN")),
        ({"v": 7}, ("row 999", "'v'", "list")),
        ({"i32": "1"}, ("row 999", "'i32'", "INT32")),
        ({"i8": 1000}, ("row 999", "'i8'", "INT8")),
        ({"f": INF}, ("row 999", "'f'")),
        ({"s": "ü" * 5}, ("row 999", "'s'", "10 bytes")),
        ({"j": {"x": {3}}}, ("row 999", "'j'")),
        ({"req": _DROP}, ("row 999", "'req'", "missing")),
        ({"id": 1000}, ("1000", "rows 0 and 999", "twice")),  # repeats the key of row 0
    ],
    ids=[
        "dim",
        "nan",
        "not_list",
        "type",
        "range",
        "inf",
        "utf8_len",
        "json",
        "missing",
        "dup_key",
    ],
)
def test_bad_last_row_of_1000(
    env: Env, op: str, patch: dict[str, Any], words: tuple[str, ...]
) -> None:
    """All-or-nothing: 999 good new rows are not written because the 1,000th is bad."""
    batch = [good_row(i) for i in range(1000, 1999)] + [patched(5000, patch)]
    before = capture(env.client)
    expect(env, InvalidArgument, lambda c: getattr(c, op)(COLL, batch), *words)
    assert env.client.get(COLL, ids=[1000, 1500, 1998], output_fields=["id"]) == []
    # and nothing of it reached the log: a reopen replays to the same state
    env.reopen()
    assert_unchanged(env.client, before)


@pytest.mark.parametrize("op", ["insert", "upsert"])
def test_key_named_twice_in_one_batch(env: Env, op: str) -> None:
    batch = [good_row(200), good_row(201), {**good_row(200), "s": "again"}]
    expect(
        env, InvalidArgument, lambda c: getattr(c, op)(COLL, batch), "200", "twice", "rows 0 and 2"
    )


def test_string_key_named_twice(tmp_path: Path) -> None:
    with keeldb.Client(str(tmp_path / "db")) as c:
        c.create_collection("sk", dimension=DIM, id_type="string", max_length=16)
        c.insert("sk", [{"id": "a", "vector": [1.0] * DIM}])
        before = capture_simple(c, "sk")
        with pytest.raises(InvalidArgument, match="'b'.*twice"):
            c.insert("sk", [{"id": "b", "vector": [1.0] * DIM}, {"id": "b", "vector": [2.0] * DIM}])
        assert capture_simple(c, "sk") == before


def capture_simple(c: keeldb.Client, name: str) -> tuple[int, list[dict[str, Any]]]:
    rows = c.query(name, "", output_fields=["*"])
    return c.query(name, "", output_fields=["count(*)"])[0]["count(*)"], sorted(
        rows, key=lambda r: r["id"]
    )


# ---------------------------------------------------------------------------------------------
# Insert of an already-live key
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("live_key", "where"),
    [(7, "flushed segment"), (22, "growing segment"), (5, "flushed, then overwritten by upsert")],
)
@pytest.mark.parametrize("position", [0, 2])
def test_insert_of_live_key_rejects_whole_batch(
    env: Env, live_key: int, where: str, position: int
) -> None:
    batch = [good_row(300), good_row(301)]
    batch.insert(position, good_row(live_key))
    info = expect(env, PrimaryKeyExists, lambda c: c.insert(COLL, batch), str(live_key), "upsert")
    assert isinstance(info.value, InvalidArgument)  # callers catching InvalidArgument see it too
    assert env.client.get(COLL, ids=[300, 301], output_fields=["id"]) == []


def test_insert_of_live_key_after_reopen(env: Env) -> None:
    """The live-key index rebuilt by recovery (sealed rows + replayed log) rejects too."""
    env.reopen()
    for key in (0, 14, 29, 5, 20):
        expect(
            env,
            PrimaryKeyExists,
            lambda c, k=key: c.insert(COLL, [good_row(400), good_row(k)]),
            str(key),
        )


def test_insert_of_live_key_last_of_1000(env: Env) -> None:
    batch = [good_row(i) for i in range(1000, 1999)] + [good_row(9)]  # 9 is in the flushed segment
    expect(env, PrimaryKeyExists, lambda c: c.insert(COLL, batch), "9")


def test_deleted_key_can_be_inserted_again(env: Env) -> None:
    """Control for the tests above: key 3 was deleted, so it is not live."""
    env.client.insert(COLL, [good_row(3)])
    assert env.client.get(COLL, ids=[3], output_fields=["s"]) == [{"id": 3, "s": "s3"}]


# ---------------------------------------------------------------------------------------------
# Dynamic field and auto_id rules
# ---------------------------------------------------------------------------------------------


def test_meta_key_is_reserved(tmp_path: Path) -> None:
    with keeldb.Client(str(tmp_path / "db")) as c:
        c.create_collection("dyn", dimension=DIM)  # quick setup: dynamic field on
        c.insert("dyn", [{"id": 1, "vector": [1.0] * DIM, "x": 1}])
        before = capture_simple(c, "dyn")
        with pytest.raises(InvalidArgument, match=r"row 1: '\$meta' is reserved"):
            c.insert(
                "dyn",
                [{"id": 2, "vector": [1.0] * DIM}, {"id": 3, "vector": [1.0] * DIM, "$meta": {}}],
            )
        with pytest.raises(InvalidArgument, match=r"row 0: field '\$meta' is not valid JSON"):
            c.insert("dyn", [{"id": 2, "vector": [1.0] * DIM, "x": {1, 2}}])
        assert capture_simple(c, "dyn") == before


def test_auto_id_rules(tmp_path: Path) -> None:
    with keeldb.Client(str(tmp_path / "db")) as c:
        c.create_collection("auto", dimension=DIM, auto_id=True)
        c.insert("auto", [{"vector": [1.0] * DIM}])
        before = capture_simple(c, "auto")
        with pytest.raises(InvalidArgument, match="row 1: the primary key 'id' is auto_id"):
            c.insert("auto", [{"vector": [1.0] * DIM}, {"id": 5, "vector": [1.0] * DIM}])
        with pytest.raises(InvalidArgument, match="row 0: field 'id' is missing"):
            c.upsert("auto", [{"vector": [1.0] * DIM}])  # an upsert must name its key
        with pytest.raises(InvalidArgument, match="row 1: vector field 'vector' has dimension 3"):
            c.insert("auto", [{"vector": [1.0] * DIM}, {"vector": [1.0] * 3}])
        assert capture_simple(c, "auto") == before


# ---------------------------------------------------------------------------------------------
# Malformed data arguments
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["insert", "upsert"])
@pytest.mark.parametrize(
    ("data", "words"),
    [
        ("abc", ("list of dicts", "str")),
        (42, ("list of dicts", "int")),
        ([good_row(500), [1, 2]], ("row 1", "list", "not a dict")),
        ([good_row(500), None], ("row 1", "NoneType")),
    ],
    ids=["str", "int", "row_is_list", "row_is_none"],
)
def test_data_not_rows(env: Env, op: str, data: Any, words: tuple[str, ...]) -> None:
    expect(env, InvalidArgument, lambda c: getattr(c, op)(COLL, data), *words)


# ---------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------

# (expression, 0-based position of the problem, words in the message)
BAD_FILTERS: list[tuple[str, int, str]] = [
    ("id >", 4, "unexpected end"),
    ("id == 1 and and i32 > 0", 12, "unexpected token 'and'"),
    ("id in [1, 2", 11, "missing ']'"),
    ("(id > 1", 7, "missing ')'"),
    ("id > 1)", 6, "unexpected token ')'"),
    ("id === 3", 5, "unexpected character '='"),
    ("s == 'abc", 5, "unterminated string"),
    ("id @ 3", 3, "unexpected character '@'"),
    ("id > 1 extra", 7, "unexpected token 'extra'"),
    ("nope == 1", 0, "unknown field 'nope'"),  # the dynamic field is off
    ("id == 1 and nope > 2", 12, "unknown field 'nope'"),
    ("s > 1", 4, "VARCHAR"),
    ("i32 + 'a' > 1", 6, "arithmetic"),
]


def _search(c: keeldb.Client, flt: str) -> Any:
    return c.search(COLL, [[0.0] * DIM], filter=flt, limit=3, output_fields=["id"])


FILTER_CALLS: dict[str, Callable[[keeldb.Client, str], Any]] = {
    "query": lambda c, f: c.query(COLL, f, output_fields=["id"]),
    "query_count": lambda c, f: c.query(COLL, f, output_fields=["count(*)"]),
    "search": _search,
    "delete": lambda c, f: c.delete(COLL, filter=f),
    "count": lambda c, f: c.count(COLL, f),
}


@pytest.mark.parametrize(("expr", "pos", "words"), BAD_FILTERS, ids=[f[0] for f in BAD_FILTERS])
def test_malformed_filter(env: Env, expr: str, pos: int, words: str) -> None:
    for name, call in FILTER_CALLS.items():
        info = expect(
            env, FilterError, lambda c, call=call: call(c, expr), words, f"column {pos + 1}"
        )
        err = info.value
        assert isinstance(err, FilterError), name
        assert (err.position, err.expr) == (pos, expr), name
        # the caret line under the echoed expression points at the same character
        lines = str(err).splitlines()
        assert lines[-2].strip() == expr, name
        assert lines[-1].index("^") - lines[-2].index(expr[0]) == pos, name


@pytest.mark.parametrize("name", list(FILTER_CALLS))
def test_filter_of_wrong_type(env: Env, name: str) -> None:
    call = FILTER_CALLS[name]
    expect(env, FilterError, lambda c: call(c, 42), "filter must be a string")  # type: ignore[arg-type]


def test_delete_needs_ids_or_filter(env: Env) -> None:
    expect(env, InvalidArgument, lambda c: c.delete(COLL), "ids or a non-empty filter")
    expect(
        env, InvalidArgument, lambda c: c.delete(COLL, filter="   "), "ids or a non-empty filter"
    )
    expect(env, InvalidArgument, lambda c: c.delete(COLL, ids=[1], filter="id > 0"), "not both")


# ---------------------------------------------------------------------------------------------
# Unknown collection
# ---------------------------------------------------------------------------------------------

V = [[0.0] * DIM]
NO_COLLECTION_CALLS: dict[str, Callable[[keeldb.Client], Any]] = {
    "insert": lambda c: c.insert("nope", [good_row(1)]),
    "upsert": lambda c: c.upsert("nope", [good_row(1)]),
    "delete_ids": lambda c: c.delete("nope", ids=[1]),
    "delete_filter": lambda c: c.delete("nope", filter="id > 0"),
    "get": lambda c: c.get("nope", ids=[1]),
    "query": lambda c: c.query("nope", "id > 0"),
    "query_count": lambda c: c.query("nope", "", output_fields=["count(*)"]),
    "count": lambda c: c.count("nope"),
    "search": lambda c: c.search("nope", V),
    "flush": lambda c: c.flush("nope"),
    "describe_collection": lambda c: c.describe_collection("nope"),
    "get_collection_stats": lambda c: c.get_collection_stats("nope"),
    "load_collection": lambda c: c.load_collection("nope"),
    "release_collection": lambda c: c.release_collection("nope"),
    "rename_collection": lambda c: c.rename_collection("nope", "other"),
    "list_indexes": lambda c: c.list_indexes("nope"),
    "describe_index": lambda c: c.describe_index("nope", "v"),
    "create_index": lambda c: c.create_index("nope", c.prepare_index_params("v", metric_type="L2")),
    "drop_index": lambda c: c.drop_index("nope", "v"),
    "refresh_load": lambda c: c.refresh_load("nope"),
    "recovery_report": lambda c: c.recovery_report("nope"),
}


@pytest.mark.parametrize("call", list(NO_COLLECTION_CALLS.values()), ids=list(NO_COLLECTION_CALLS))
def test_unknown_collection(env: Env, call: Callable[[keeldb.Client], Any]) -> None:
    info = expect(env, CollectionNotFound, call, "collection not found[database=default][collection=nope]")
    assert info.value.code == 100  # Milvus's CollectionNotFound code
    assert not env.client.has_collection("nope")


def test_unknown_collection_calls_that_do_not_raise(env: Env) -> None:
    """As in Milvus: has_collection is False, get_load_state says NotExist, drop is a no-op."""
    before = capture(env.client)
    assert env.client.has_collection("nope") is False
    assert env.client.get_load_state("nope") == {"state": keeldb.LoadState.NotExist}
    env.client.drop_collection("nope")
    assert_unchanged(env.client, before)


# ---------------------------------------------------------------------------------------------
# Oversized requests
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("op", ["insert", "upsert"])
def test_too_many_rows(env: Env, op: str) -> None:
    n = rows_mod.MAX_BATCH_ROWS + 1
    row = {"id": 0, "v": [0.0] * DIM, "req": 0}
    batch = [{**row, "id": 10_000 + i} for i in range(n)]
    expect(
        env,
        InvalidArgument,
        lambda c: getattr(c, op)(COLL, batch),
        f"at most {rows_mod.MAX_BATCH_ROWS}",
        str(n),
    )


@pytest.mark.parametrize("op", ["insert", "upsert"])
def test_batch_over_byte_limit(env: Env, op: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rows_mod, "MAX_BATCH_BYTES", 4096)
    batch = [good_row(i) for i in range(600, 700)]
    expect(env, InvalidArgument, lambda c: getattr(c, op)(COLL, batch), "bytes", "4096")
    # a small batch still fits under the patched limit
    getattr(env.client, op)(COLL, [good_row(600)])
    assert env.client.get(COLL, ids=[600], output_fields=["id"]) == [{"id": 600}]


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"limit": MAX_TOPK + 1}, (str(MAX_TOPK), str(MAX_TOPK + 1))),
        ({"limit": 0}, ("top-k",)),
        ({"limit": -1}, ("top-k",)),
        ({"limit": 10, "offset": MAX_TOPK}, ("offset + limit",)),
        ({"limit": "10"}, ("limit must be an integer",)),
        ({"limit": 2.5}, ("limit must be an integer",)),
        ({"limit": 2, "offset": "1"}, ("offset must be an integer", "'1'")),
        ({"limit": 2, "offset": 1.5}, ("offset must be an integer", "1.5")),
        ({"limit": 2, "offset": -1}, ("offset + limit",)),
        ({"limit": 2, "search_params": {"params": {"radius": "x"}}}, ("radius", "'x'")),
        ({"limit": 2, "search_params": {"params": {"range_filter": NAN}}}, ("range_filter", "nan")),
    ],
    ids=[
        "topk_too_big", "zero", "negative", "offset_plus_limit", "str", "float",
        "offset_str", "offset_float", "offset_negative", "radius_str", "range_filter_nan",
    ],  # fmt: skip
)
def test_bad_search_limit(env: Env, kwargs: dict[str, Any], words: tuple[str, ...]) -> None:
    expect(
        env, InvalidArgument, lambda c: c.search(COLL, V, output_fields=["id"], **kwargs), *words
    )


def test_max_topk_itself_is_fine(env: Env) -> None:
    hits = env.client.search(COLL, V, limit=MAX_TOPK, output_fields=["id"])
    assert len(hits[0]) == 29


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"limit": -2}, ("limit",)),
        ({"offset": -1, "limit": 5}, ("offset",)),
        ({"limit": 3, "offset": "1"}, ("offset",)),
    ],
    ids=["negative_limit", "negative_offset", "str_offset"],
)
def test_bad_query_window(env: Env, kwargs: dict[str, Any], words: tuple[str, ...]) -> None:
    expect(
        env,
        InvalidArgument,
        lambda c: c.query(COLL, "id >= 0", output_fields=["id"], **kwargs),
        *words,
    )


# ---------------------------------------------------------------------------------------------
# Bad schemas
# ---------------------------------------------------------------------------------------------


def _schema(*fields: tuple[str, DataType, dict[str, Any]]) -> keeldb.CollectionSchema:
    s = keeldb.Client.create_schema()
    for name, dt, kw in fields:
        s.add_field(name, dt, **kw)
    return s


PK = ("id", DataType.INT64, {"is_primary": True})
VEC = ("v", DataType.FLOAT_VECTOR, {"dim": DIM})

BAD_SCHEMAS: dict[str, tuple[Callable[[keeldb.Client], Any], tuple[str, ...]]] = {
    "no_primary_key": (
        lambda c: c.create_collection("x", schema=_schema(VEC)),
        ("primary key", "got 0"),
    ),
    "two_primary_keys": (
        lambda c: c.create_collection(
            "x", schema=_schema(PK, ("id2", DataType.INT64, {"is_primary": True}), VEC)
        ),
        ("primary key", "got 2"),
    ),
    "no_vector_field": (lambda c: c.create_collection("x", schema=_schema(PK)), ("vector field",)),
    "dim_0": (
        lambda c: _schema(PK, ("v", DataType.FLOAT_VECTOR, {"dim": 0})),
        ("'v'", "dim", "got 0"),
    ),
    "dim_40000": (
        lambda c: _schema(PK, ("v", DataType.FLOAT_VECTOR, {"dim": 40000})),
        ("'v'", "40000"),
    ),
    "dim_missing": (lambda c: _schema(PK, ("v", DataType.FLOAT_VECTOR, {})), ("'v'", "dim")),
    "dim_str": (lambda c: _schema(PK, ("v", DataType.FLOAT_VECTOR, {"dim": "4"})), ("'v'", "dim")),
    "quick_dim_0": (lambda c: c.create_collection("x", dimension=0), ("dim", "got 0")),
    "quick_dim_40000": (lambda c: c.create_collection("x", dimension=40000), ("dim", "40000")),
    "quick_no_dim": (lambda c: c.create_collection("x"), ("dimension",)),
    "quick_bad_id_type": (
        lambda c: c.create_collection("x", dimension=DIM, id_type="float"),
        ("id_type",),
    ),
    "quick_bad_metric": (
        lambda c: c.create_collection("x", dimension=DIM, metric_type="HAMMING"),
        ("HAMMING",),
    ),
    "quick_auto_id_on_a_non_key": (
        lambda c: _schema(("a", DataType.INT64, {"auto_id": True})),
        ("auto_id can only be specified on the primary key",),
    ),
    "varchar_without_max_length": (
        lambda c: _schema(PK, ("s", DataType.VARCHAR, {})),
        ("type param(max_length) should be specified for the field(s)",),  # Milvus's words
    ),
    "varchar_max_length_0": (
        lambda c: _schema(PK, ("s", DataType.VARCHAR, {"max_length": 0})),
        ("the maximum length specified for the field(s) should be in (0, 65535], but got 0 instead",),
    ),
    "varchar_max_length_huge": (
        lambda c: _schema(PK, ("s", DataType.VARCHAR, {"max_length": 70000})),
        ("should be in (0, 65535], but got 70000 instead",),
    ),
    "float_primary_key": (
        lambda c: _schema(("id", DataType.FLOAT, {"is_primary": True})),
        ("INT64 or VARCHAR",),
    ),
    "nullable_primary_key": (
        lambda c: _schema(("id", DataType.INT64, {"is_primary": True, "nullable": True})),
        ("primary field not support null",),  # Milvus's words
    ),
    "nullable_vector": (
        lambda c: _schema(("v", DataType.FLOAT_VECTOR, {"dim": 4, "nullable": True})),
        ("'v'", "nullable"),
    ),
    "unsupported_type": (
        lambda c: _schema(("a", DataType.STRING, {})),
        ("string data type not supported yet, please use VarChar type instead",),  # Milvus's words
    ),
    "array_without_element_type": (
        lambda c: _schema(("a", DataType.ARRAY, {"max_capacity": 4})),
        ("'a'", "element_type"),
    ),
    "unknown_type": (lambda c: _schema(("a", 12345, {})), ("unknown data type",)),
    "duplicate_field": (
        lambda c: _schema(PK, VEC, ("v", DataType.INT64, {})),
        ("duplicated field name v found",),
    ),
    "unknown_add_field_arg": (
        lambda c: _schema(("a", DataType.INT64, {"colour": "red"})),
        ("colour",),
    ),
    "default_of_wrong_type": (
        lambda c: _schema(("a", DataType.INT64, {"default_value": "x"})),
        ("type (Int64) of field (a) is not equal to the type(DataType_VarChar) of default_value",),
    ),
    "default_out_of_range": (
        lambda c: _schema(("a", DataType.INT8, {"default_value": 300})),
        ("'a'", "300", "INT8"),
    ),
    "default_nan": (
        lambda c: _schema(("a", DataType.DOUBLE, {"default_value": NAN})),
        ("'a'", "NaN"),
    ),
    "default_beyond_float32": (
        lambda c: _schema(("a", DataType.FLOAT, {"default_value": 1e39})),
        ("'a'", "FLOAT"),
    ),
    "default_too_long": (
        lambda c: _schema(("a", DataType.VARCHAR, {"max_length": 4, "default_value": "ééé"})),
        ("'a'", "6 bytes"),
    ),
    "collection_name_dotdot": (
        lambda c: c.create_collection("../x", dimension=DIM),
        ("Invalid collection name: ../x.", "the first character of a collection name"),
    ),
    "collection_name_space": (
        lambda c: c.create_collection("a b", dimension=DIM),
        ("Invalid collection name: a b.",),
    ),
    "collection_name_empty": (
        lambda c: c.create_collection("", dimension=DIM),
        ("collection name should not be empty",),
    ),
    "collection_name_digit": (
        lambda c: c.create_collection("1abc", dimension=DIM),
        ("collection name",),
    ),
    "collection_name_slash": (
        lambda c: c.create_collection("a/b", dimension=DIM),
        ("collection name",),
    ),
    "collection_name_too_long": (
        lambda c: c.create_collection("a" * 256, dimension=DIM),
        ("collection name",),
    ),
    "collection_name_none": (
        lambda c: c.create_collection(None, dimension=DIM),
        ("`collection_name` value None is illegal",),
    ),  # type: ignore[arg-type]
    "field_name_dotdot": (
        lambda c: _schema(("../x", DataType.INT64, {})),
        ("Invalid field name: ../x.",),
    ),
    "field_name_space": (lambda c: _schema(("a b", DataType.INT64, {})), ("Invalid field name: a b.",)),
    "field_name_empty": (lambda c: _schema(("", DataType.INT64, {})), ("field name should not be empty",)),
    "field_name_meta": (lambda c: _schema(("$meta", DataType.JSON, {})), ("Invalid field name: $meta",)),
    "quick_field_name_bad": (
        lambda c: c.create_collection("x", dimension=DIM, vector_field_name="a b"),
        ("Invalid field name: a b.",),
    ),
    "index_on_unknown_field": (
        lambda c: c.create_collection(
            "x", schema=_schema(PK, VEC), index_params=c.prepare_index_params("w")
        ),
        ("non-exist field: w",),
    ),
    "index_bad_type": (
        lambda c: c.create_collection(
            "x",
            schema=_schema(PK, VEC),
            index_params=c.prepare_index_params("v", index_type="MAGIC"),
        ),
        ("MAGIC",),
    ),
    "index_bad_name": (
        lambda c: c.create_collection(
            "x", schema=_schema(PK, VEC), index_params=c.prepare_index_params("v", index_name="a b")
        ),
        ("index name",),
    ),
    "existing_name_other_schema": (
        lambda c: c.create_collection(COLL, dimension=DIM),
        ("already exists",),
    ),
    "rename_to_bad_name": (lambda c: c.rename_collection(COLL, "../x"), ("collection name",)),
    "rename_to_existing": (lambda c: c.rename_collection(COLL, COLL), ("already exists",)),
}


@pytest.mark.parametrize(("call", "words"), list(BAD_SCHEMAS.values()), ids=list(BAD_SCHEMAS))
def test_bad_schema(env: Env, call: Callable[[keeldb.Client], Any], words: tuple[str, ...]) -> None:
    coll_dir = env.client.db.collections_dir
    dirs_before = sorted(p.name for p in coll_dir.iterdir())
    expect(env, InvalidArgument, call, *words)
    assert env.client.list_collections() == [COLL]
    assert sorted(p.name for p in coll_dir.iterdir()) == dirs_before
    assert not (env.path.parent / "x").exists()


# ---------------------------------------------------------------------------------------------
# Search arguments
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "words"),
    [
        ([[0.0] * 3], ("dimension 3", "4")),
        ([[0.0] * 5], ("dimension 5",)),
        ([[0.0] * DIM, [0.0] * 3], ("equal length",)),
        ([[0.0, NAN, 0.0, 0.0]], ("NaN",)),
        ([[0.0, 0.0, INF, 0.0]], ("infinity",)),
        (np.array([[0.0, 0.0, 0.0, np.nan]]), ("NaN",)),
        (np.zeros((2, 3)), ("dimension 3",)),
        ([], ("non-empty",)),
        ("abcd", ("non-empty list",)),
        ([["a", "b", "c", "d"]], ("numbers",)),
    ],
    ids=[
        "short",
        "long",
        "ragged",
        "nan",
        "inf",
        "numpy_nan",
        "numpy_dim",
        "empty",
        "str",
        "str_elems",
    ],
)
def test_bad_query_vector(env: Env, data: Any, words: tuple[str, ...]) -> None:
    expect(
        env, InvalidArgument, lambda c: c.search(COLL, data, limit=3, output_fields=["id"]), *words
    )


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"anns_field": "i32"}, ("'i32'", "not a vector field")),
        ({"anns_field": "nope"}, ("fieldName(nope) not found",)),
        ({"search_params": {"metric_type": "IP"}}, ("IP", "L2")),
        ({"search_params": {"metric_type": "HAMMING"}}, ("HAMMING",)),
    ],
    ids=["anns_scalar", "anns_unknown", "metric_mismatch", "metric_unknown"],
)
def test_bad_search_arguments(env: Env, kwargs: dict[str, Any], words: tuple[str, ...]) -> None:
    expect(
        env,
        InvalidArgument,
        lambda c: c.search(COLL, V, limit=3, output_fields=["id"], **kwargs),
        *words,
    )


def test_search_in_an_unknown_partition(env: Env) -> None:
    """Milvus's words for a read: "partition name p1 not found" (65535)."""
    info = expect(
        env,
        keeldb.PartitionNotFound,
        lambda c: c.search(COLL, V, limit=3, output_fields=["id"], partition_names=["p1"]),
        "partition name p1 not found",
    )
    assert info.value.code == 65535


# ---------------------------------------------------------------------------------------------
# Output fields
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c, o: c.query(COLL, "id > 0", output_fields=o),
        lambda c, o: c.get(COLL, ids=[1], output_fields=o),
        lambda c, o: c.search(COLL, V, limit=2, output_fields=o),
    ],
    ids=["query", "get", "search"],
)
@pytest.mark.parametrize(
    ("fields", "words"),
    [
        (["nope"], ("output field 'nope'", "does not exist")),
        (["id", "s", "nope"], ("'nope'",)),
        ("s", ("list of field names",)),
        ([1], ("list of field names",)),
        (["count(*)", "id"], ("count(*)",)),
    ],
    ids=["unknown", "unknown_among_known", "str", "int", "count_plus"],
)
def test_bad_output_fields(
    env: Env, call: Callable[[keeldb.Client, Any], Any], fields: Any, words: tuple[str, ...]
) -> None:
    expect(env, InvalidArgument, lambda c: call(c, fields), *words)


def test_count_with_window(env: Env) -> None:
    expect(
        env,
        InvalidArgument,
        lambda c: c.query(COLL, "", output_fields=["count(*)"], limit=5),
        "count(*)",
    )


# ---------------------------------------------------------------------------------------------
# Released collection
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda c: c.query(COLL, "id > 0", output_fields=["id"]),
        lambda c: c.query(COLL, "", output_fields=["count(*)"]),
        lambda c: c.get(COLL, ids=[1]),
        lambda c: c.count(COLL),
        lambda c: c.search(COLL, V, limit=3),
        lambda c: c.refresh_load(COLL),
    ],
    ids=["query", "count_query", "get", "count", "search", "refresh_load"],
)
def test_read_on_released_collection(env: Env, call: Callable[[keeldb.Client], Any]) -> None:
    c = env.client
    before = capture(c)
    c.release_collection(COLL)
    assert c.get_load_state(COLL)["state"] == keeldb.LoadState.NotLoad
    with pytest.raises(CollectionNotLoaded, match=rf"collection not loaded\[collection={COLL}\]") as info:
        call(c)
    assert info.value.code == 101
    c.load_collection(COLL)
    assert_unchanged(c, before)


def test_load_without_index(tmp_path: Path) -> None:
    with keeldb.Client(str(tmp_path / "db")) as c:
        c.create_collection("noidx", schema=_schema(PK, VEC))
        assert c.get_load_state("noidx")["state"] == keeldb.LoadState.NotLoad
        with pytest.raises(keeldb.IndexNotFound, match="index not found.*no vector index.*'v'"):
            c.load_collection("noidx")
        with pytest.raises(CollectionNotLoaded):
            c.query("noidx", "id > 0")
        assert c.get_load_state("noidx")["state"] == keeldb.LoadState.NotLoad


def test_drop_index_while_loaded(env: Env) -> None:
    expect(env, InvalidArgument, lambda c: c.drop_index(COLL, "v"), "release")
    assert env.client.list_indexes(COLL) == ["v"]
    before = capture(env.client)
    env.client.drop_index(COLL, "nope")  # as Milvus: nothing to drop is a success
    assert_unchanged(env.client, before)
    expect(env, keeldb.IndexNotFound, lambda c: c.describe_index(COLL, "nope"), "'nope'")
    expect(
        env,
        InvalidArgument,
        lambda c: c.create_index(
            COLL, c.prepare_index_params("v", index_type="HNSW", metric_type="IP")
        ),
        "'v'",
    )


# ---------------------------------------------------------------------------------------------
# Bad ids for get / delete
# ---------------------------------------------------------------------------------------------

BAD_IDS: list[tuple[Any, tuple[str, ...]]] = [
    ("x", ("'x'", "INT64")),
    (1.5, ("ids must be a list", "float")),
    ({"a": 1}, ("ids must be a list", "dict")),
    ([True], ("True", "INT64")),
    ([1, "x"], ("'x'", "INT64")),
    ([1, None], ("None", "INT64")),
    ([1, 2.0], ("2.0", "INT64")),
    ([[1]], ("[1]", "INT64")),
]


@pytest.mark.parametrize(("ids", "words"), BAD_IDS, ids=[repr(i[0]) for i in BAD_IDS])
def test_bad_ids_for_get(env: Env, ids: Any, words: tuple[str, ...]) -> None:
    expect(env, InvalidArgument, lambda c: c.get(COLL, ids=ids), *words)
    expect(env, InvalidArgument, lambda c: c.query(COLL, ids=ids), *words)


@pytest.mark.parametrize(("ids", "words"), BAD_IDS, ids=[repr(i[0]) for i in BAD_IDS])
def test_bad_ids_for_delete(env: Env, ids: Any, words: tuple[str, ...]) -> None:
    # [1, "x"] must not delete 1: the whole call is refused
    expect(env, InvalidArgument, lambda c: c.delete(COLL, ids=ids), *words)


def test_get_with_none_ids(env: Env) -> None:
    expect(env, InvalidArgument, lambda c: c.get(COLL, ids=None), "ids must be a list")


def test_bad_ids_for_string_keys(tmp_path: Path) -> None:
    with keeldb.Client(str(tmp_path / "db")) as c:
        c.create_collection("sk", dimension=DIM, id_type="string", max_length=16)
        c.insert("sk", [{"id": "1", "vector": [1.0] * DIM}])
        before = capture_simple(c, "sk")
        for ids in ([1], ["1", 2], [b"1"]):
            with pytest.raises(InvalidArgument, match="VARCHAR"):
                c.get("sk", ids=ids)
            with pytest.raises(InvalidArgument, match="VARCHAR"):
                c.delete("sk", ids=ids)
        assert capture_simple(c, "sk") == before


# ---------------------------------------------------------------------------------------------
# Closed client
# ---------------------------------------------------------------------------------------------


def test_closed_client(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path / "db"))
    c.create_collection("a", dimension=DIM)
    c.close()
    with pytest.raises(keeldb.KeelError, match="closed"):
        c.insert("a", [{"id": 1, "vector": [0.0] * DIM}])
    with keeldb.Client(str(tmp_path / "db")) as c2:
        assert c2.query("a", "", output_fields=["count(*)"]) == [{"count(*)": 0}]


def test_boundary_values_are_accepted(env: Env) -> None:
    """Boundary values that ARE valid: exactly at each range's edge, exactly max_length bytes."""
    edge = {
        **good_row(900),
        "i8": -128,
        "i16": 32767,
        "i32": -(2**31),
        "i64": 2**63 - 1,
        "f": 3.4e38,
        "d": -1.7e308,
        "s": "éééé",  # 8 bytes, the limit
        "j": None,
    }
    env.client.insert(COLL, [edge])
    got = env.client.get(COLL, ids=[900], output_fields=["*"])[0]
    assert (
        got["i8"] == -128
        and got["i16"] == 32767
        and got["i32"] == -(2**31)
        and got["i64"] == 2**63 - 1
    )
    assert math.isclose(got["f"], 3.4e38, rel_tol=1e-6) and got["d"] == -1.7e308
    assert got["s"] == "éééé" and got["j"] is None and got["dflt"] == 7
