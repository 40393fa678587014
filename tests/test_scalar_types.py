"""ARRAY, TIMESTAMPTZ and GEOMETRY through the embedded client: values in and out, every
filter on them (vectorised, checked against a plain-Python evaluation of the same rows),
persistence through flush and reopen (segments and log replay), defaults and nullable with
Milvus's refusals, auto_id on VARCHAR keys, and bad input refused with nothing changed.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import shapely

import keeldb
from keeldb import DataType
from keeldb.errors import FilterError, InvalidArgument
from tests.scalar_util import base_schema, create_flat


def _schema(client: keeldb.Client) -> Any:
    s = base_schema(client, dynamic=True)
    s.add_field("tags", DataType.ARRAY, element_type=DataType.VARCHAR, max_capacity=5, max_length=8, nullable=True)
    s.add_field("nums", DataType.ARRAY, element_type=DataType.INT32, max_capacity=5)
    s.add_field("fl", DataType.ARRAY, element_type=DataType.FLOAT, max_capacity=3, nullable=True)
    s.add_field("flags", DataType.ARRAY, element_type=DataType.BOOL, max_capacity=3, nullable=True)
    s.add_field("t", DataType.TIMESTAMPTZ, nullable=True)
    s.add_field("g", DataType.GEOMETRY, nullable=True)
    s.add_field("j", DataType.JSON, nullable=True)
    return s


def _open(path: Path) -> keeldb.Client:
    c = keeldb.Client(str(path))
    if not c.has_collection("c"):
        create_flat(c, "c", _schema(c))
    return c


BASE = datetime(2025, 1, 1, tzinfo=UTC)
WORDS = ["ab", "ax", "b", "ca", "abc", "zz"]


def _rows(n: int, seed: int = 7) -> list[dict[str, Any]]:
    rnd = random.Random(seed)
    rows = []
    for i in range(n):
        rows.append(
            {
                "id": i,
                "v": [float(i), 0.0],
                "tags": None if i % 7 == 0 else rnd.sample(WORDS, rnd.randint(0, 3)),
                "nums": [rnd.randint(-3, 9) for _ in range(rnd.randint(0, 5))],
                "fl": None if i % 5 == 0 else [0.1 * rnd.randint(0, 5) for _ in range(rnd.randint(0, 3))],
                "flags": None if i % 3 == 0 else [rnd.random() < 0.5 for _ in range(rnd.randint(0, 3))],
                "t": None if i % 6 == 0 else (BASE + timedelta(hours=7 * i)).isoformat(),
                "g": None if i % 4 == 0 else f"POINT({i % 10} {i // 10})",
                "j": {"k": [rnd.randint(0, 3) for _ in range(rnd.randint(0, 3))], "s": rnd.choice(WORDS)},
                "dyn": i % 3,
            }
        )
    return rows


def _ids(c: keeldb.Client, flt: str, **kw: Any) -> list[int]:
    return sorted(r["id"] for r in c.query("c", flt, output_fields=["id"], **kw))


def _micros(iso: str) -> int:
    return int(datetime.fromisoformat(iso).timestamp() * 1_000_000)


POLY = "POLYGON((1.5 -1, 6.5 -1, 6.5 2.5, 1.5 2.5, 1.5 -1))"
# (filter, the same predicate in Python over the inserted row dicts; None = not selected)
CASES: list[tuple[str, Any]] = [
    ('array_contains(tags, "ab")', lambda r: r["tags"] is not None and "ab" in r["tags"]),
    ("ARRAY_CONTAINS(nums, 3)", lambda r: 3 in r["nums"]),
    ("array_contains_all(nums, [1, 2])", lambda r: 1 in r["nums"] and 2 in r["nums"]),
    ('array_contains_any(tags, ["zz", "b"])', lambda r: r["tags"] is not None and bool({"zz", "b"} & set(r["tags"]))),
    ("array_contains(fl, 0.3)", lambda r: r["fl"] is not None and any(math.isclose(x, 0.3, abs_tol=1e-6) for x in r["fl"])),
    ("array_contains(flags, true)", lambda r: r["flags"] is not None and True in r["flags"]),
    ("array_length(nums) == 2", lambda r: len(r["nums"]) == 2),
    ("array_length(tags) >= 2", lambda r: r["tags"] is not None and len(r["tags"]) >= 2),
    ("nums[0] > 4", lambda r: len(r["nums"]) > 0 and r["nums"][0] > 4),
    ('tags[1] == "abc"', lambda r: r["tags"] is not None and len(r["tags"]) > 1 and r["tags"][1] == "abc"),
    ('tags[0] like "a%"', lambda r: r["tags"] is not None and len(r["tags"]) > 0 and r["tags"][0].startswith("a")),
    ("nums[1] in [0, 9]", lambda r: len(r["nums"]) > 1 and r["nums"][1] in (0, 9)),
    ("nums[0] + nums[1] == 5", lambda r: len(r["nums"]) > 1 and r["nums"][0] + r["nums"][1] == 5),
    ("not array_contains(nums, 9)", lambda r: 9 not in r["nums"]),
    ("tags is null", lambda r: r["tags"] is None),
    ('t > ISO "2025-01-05T00:00:00Z"', lambda r: r["t"] is not None and _micros(r["t"]) > _micros("2025-01-05T00:00:00+00:00")),
    ('t <= ISO "2025-01-03T08:00:00+08:00"', lambda r: r["t"] is not None and _micros(r["t"]) <= _micros("2025-01-03T00:00:00+00:00")),
    ('t + INTERVAL "P1DT2H" > ISO "2025-01-08T00:00:00Z"',
     lambda r: r["t"] is not None and _micros(r["t"]) + 26 * 3600 * 10**6 > _micros("2025-01-08T00:00:00+00:00")),
    ('t - INTERVAL "PT30M" == ISO "2025-01-01T06:30:00Z"', lambda r: r["t"] is not None and _micros(r["t"]) == _micros("2025-01-01T07:00:00+00:00")),
    ("t is null", lambda r: r["t"] is None),
    (f'ST_WITHIN(g, "{POLY}")', lambda r: r["g"] is not None and shapely.within(shapely.from_wkt(r["g"]), shapely.from_wkt(POLY))),
    (f'st_intersects(g, "{POLY}")', lambda r: r["g"] is not None and shapely.intersects(shapely.from_wkt(r["g"]), shapely.from_wkt(POLY))),
    ('ST_EQUALS(g, "POINT(3 1)")', lambda r: r["g"] == "POINT(3 1)"),
    ('ST_DWITHIN(g, "POINT(2 0)", 120000)', lambda r: r["g"] is not None and _haversine(r["g"], 2, 0) <= 120000),
    ("ST_ISVALID(g)", lambda r: r["g"] is not None),
    ('json_contains(j["k"], 2)', lambda r: 2 in r["j"]["k"]),
    ('JSON_CONTAINS_ALL(j["k"], [0, 1])', lambda r: 0 in r["j"]["k"] and 1 in r["j"]["k"]),
    ('json_contains_any(j["k"], [3])', lambda r: 3 in r["j"]["k"]),
    ('array_length(j["k"]) == 0', lambda r: len(r["j"]["k"]) == 0),
    ('exists j["k"]', lambda r: True),
    ('exists j["nope"]', lambda r: False),
    ("exists dyn", lambda r: True),
    ('j["s"] like "%b%"', lambda r: "b" in r["j"]["s"]),
]


def _haversine(wkt: str, lon: float, lat: float) -> float:
    p = shapely.from_wkt(wkt)
    lon1, lat1, lon2, lat2 = map(math.radians, (p.x, p.y, lon, lat))
    a = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6_371_008.8 * math.asin(math.sqrt(a))


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Rows split over a sealed segment (flushed) and the growing one, then a reopen, so
    every filter runs over segment files and replayed log records alike."""
    path = tmp_path_factory.mktemp("scalars")
    rows = _rows(120)
    c = _open(path)
    c.insert("c", rows[:70])
    c.flush("c")
    c.insert("c", rows[70:])
    c.close()
    c = _open(path)
    yield c, rows
    c.close()


@pytest.mark.parametrize("flt,pred", CASES, ids=[c[0][:50] for c in CASES])
def test_filters_match_python(loaded: Any, flt: str, pred: Any) -> None:
    c, rows = loaded
    assert _ids(c, flt) == sorted(r["id"] for r in rows if pred(r))


def test_values_round_trip(loaded: Any) -> None:
    c, rows = loaded
    got = {r["id"]: r for r in c.query("c", "id < 20", output_fields=["*"])}
    for r in rows[:20]:
        g = got[r["id"]]
        assert g["tags"] == r["tags"] and g["nums"] == r["nums"] and g["flags"] == r["flags"]
        assert g["fl"] is None if r["fl"] is None else g["fl"] == pytest.approx(r["fl"], abs=1e-6)
        if r["t"] is None:
            assert g["t"] is None
        else:  # UTC, RFC 3339, trailing zeros dropped (Milvus's output)
            assert g["t"] == datetime.fromisoformat(r["t"]).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert g["g"] == (None if r["g"] is None else shapely.to_wkt(shapely.from_wkt(r["g"]), rounding_precision=-1))
        assert g["j"] == r["j"] and g["dyn"] == r["dyn"]


def test_timezone_of_output_and_of_naive_input(tmp_path: Path) -> None:
    c = _open(tmp_path)
    c.insert("c", [{"id": 1, "v": [0, 0], "nums": [], "t": "2025-03-01T12:00:00.250+05:30"}])
    assert c.query("c", "id == 1", output_fields=["t"])[0]["t"] == "2025-03-01T06:30:00.25Z"
    assert c.query("c", "id == 1", output_fields=["t"], timezone="Asia/Tokyo")[0]["t"] == "2025-03-01T15:30:00.25+09:00"
    # A naive literal or value is read in the collection's zone (default UTC), or the call's.
    assert _ids(c, 't == ISO "2025-03-01 06:30:00.25"') == [1]
    assert _ids(c, 't == ISO "2025-03-01T15:30:00.25"', timezone="Asia/Tokyo") == [1]
    c.alter_collection_properties("c", {"timezone": "America/New_York"})
    c.insert("c", [{"id": 2, "v": [0, 0], "nums": [], "t": "2025-07-01 08:00:00"}])  # EDT, -04:00
    assert c.query("c", "id == 2", output_fields=["t"], timezone="UTC")[0]["t"] == "2025-07-01T12:00:00Z"
    assert c.query("c", "id == 2", output_fields=["t"])[0]["t"] == "2025-07-01T08:00:00-04:00"
    with pytest.raises(InvalidArgument, match="unknown or invalid IANA Time Zone ID: Mars/Base"):
        c.query("c", "", output_fields=["t"], limit=1, timezone="Mars/Base")
    with pytest.raises(InvalidArgument, match="unknown or invalid IANA Time Zone ID"):
        c.alter_collection_properties("c", {"timezone": "Not/AZone"})
    assert c.describe_collection("c")["properties"]["timezone"] == "America/New_York"


def _count(c: keeldb.Client) -> int:
    return c.query("c", "", output_fields=["count(*)"])[0]["count(*)"]


BAD_ROWS: list[tuple[str, dict[str, Any], str]] = [
    ("array over capacity", {"nums": [1, 2, 3, 4, 5, 6]}, "exceeds max_capacity (5)"),
    ("wrong element type", {"nums": [1, "x"]}, "ARRAY of INT32"),
    ("element out of range", {"nums": [2**40]}, "out of range for INT32"),
    ("null element", {"nums": [1, None]}, "cannot be null"),
    ("varchar element too long", {"nums": [], "tags": ["123456789"]}, "max_length 8"),
    ("array not a list", {"nums": "123"}, "expects an ARRAY"),
    ("non-null array missing", {}, "'nums' is missing"),
    ("bad WKT", {"nums": [], "g": "POINT((1 2)"}, "not valid WKT"),
    ("geometry not text", {"nums": [], "g": 5}, "expects GEOMETRY"),
    ("bad timestamp", {"nums": [], "t": "2025-13-01T00:00:00Z"}, "invalid timestamp string"),
    ("date only", {"nums": [], "t": "2025-01-01"}, "invalid timestamp string"),
    ("offset out of range", {"nums": [], "t": "2025-01-01T00:00:00+15:00"}, "out of the valid range"),
    ("timestamp not text", {"nums": [], "t": 1700000000}, "ISO 8601 string"),
]


@pytest.mark.parametrize("what,row,words", BAD_ROWS, ids=[b[0] for b in BAD_ROWS])
def test_bad_values_refused_and_nothing_changes(tmp_path: Path, what: str, row: dict[str, Any], words: str) -> None:
    c = _open(tmp_path)
    c.insert("c", [{"id": 1, "v": [0, 0], "nums": [1]}])
    before = c.query("c", "", output_fields=["*"])
    good = {"id": 2, "v": [1, 1], "nums": [2]}
    with pytest.raises(InvalidArgument) as info:
        c.insert("c", [good, {"id": 3, "v": [2, 2], **row}])
    assert words in str(info.value)
    assert "row 1" in str(info.value) or what == "non-null array missing"
    assert c.query("c", "", output_fields=["*"]) == before and _count(c) == 1


BAD_SCHEMAS: list[tuple[str, dict[str, Any], str]] = [
    ("array without element type", {"datatype": DataType.ARRAY, "max_capacity": 4}, "ARRAY needs element_type"),
    ("array of json", {"datatype": DataType.ARRAY, "element_type": DataType.JSON, "max_capacity": 4}, "element type JSON is not supported"),
    ("array of arrays", {"datatype": DataType.ARRAY, "element_type": DataType.ARRAY, "max_capacity": 4}, "not supported"),
    ("capacity zero", {"datatype": DataType.ARRAY, "element_type": DataType.INT64, "max_capacity": 0}, "should be in (0, 4096]"),
    ("capacity 4097", {"datatype": DataType.ARRAY, "element_type": DataType.INT64, "max_capacity": 4097}, "should be in (0, 4096]"),
    ("varchar elements without max_length", {"datatype": DataType.ARRAY, "element_type": DataType.VARCHAR, "max_capacity": 2},
     "max_length) should be specified"),
    ("array default", {"datatype": DataType.ARRAY, "element_type": DataType.INT64, "max_capacity": 2, "default_value": [1]},
     "type not support default_value, type:Array"),
    ("json default", {"datatype": DataType.JSON, "default_value": {"a": 1}}, "type not support default_value, type:JSON"),
    ("int default on FLOAT", {"datatype": DataType.FLOAT, "default_value": 1},
     "type (Float) of field (f) is not equal to the type(DataType_Int64) of default_value"),
    ("string default on INT8", {"datatype": DataType.INT8, "default_value": "1"},
     "type (Int8) of field (f) is not equal to the type(DataType_VarChar) of default_value"),
    ("bool default on INT64", {"datatype": DataType.INT64, "default_value": True},
     "type (Int64) of field (f) is not equal to the type(DataType_Bool) of default_value"),
    ("float default on DOUBLE ok, on INT16 not", {"datatype": DataType.INT16, "default_value": 1.5},
     "type (Int16) of field (f) is not equal to the type(DataType_Double) of default_value"),
    ("bad timestamp default", {"datatype": DataType.TIMESTAMPTZ, "default_value": "noon"}, "invalid timestamp string"),
    ("bad WKT default", {"datatype": DataType.GEOMETRY, "default_value": "CIRCLE(1)"}, "not valid WKT"),
    ("nullable partition key", {"datatype": DataType.INT64, "is_partition_key": True, "nullable": True},
     "partition key field not support nullable"),
    ("float partition key", {"datatype": DataType.FLOAT, "is_partition_key": True}, "partition key should be Int64 or VarChar"),
    ("auto_id off the key", {"datatype": DataType.INT64, "auto_id": True}, "auto_id can only be specified on the primary key"),
]


@pytest.mark.parametrize("what,args,words", BAD_SCHEMAS, ids=[b[0] for b in BAD_SCHEMAS])
def test_bad_schemas_refused(tmp_path: Path, what: str, args: dict[str, Any], words: str) -> None:
    c = keeldb.Client(str(tmp_path))
    s = base_schema(c)
    args = dict(args)
    with pytest.raises(InvalidArgument) as info:
        s.add_field("f", args.pop("datatype"), **args)
    assert words in str(info.value)


def test_defaults_and_nullable_on_new_types(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path))
    s = base_schema(c)
    s.add_field("t", DataType.TIMESTAMPTZ, default_value="2025-01-01 09:00:00")  # naive: the collection's zone
    s.add_field("g", DataType.GEOMETRY, default_value="POINT(1 2)")
    s.add_field("a", DataType.ARRAY, element_type=DataType.DOUBLE, max_capacity=2, nullable=True)
    s.add_field("i8", DataType.INT8, default_value=7)
    s.add_field("f", DataType.FLOAT, default_value=0.5)
    create_flat(c, "c", s, properties={"timezone": "Asia/Shanghai"})
    c.insert("c", [{"id": 1, "v": [0, 0]}, {"id": 2, "v": [0, 0], "t": None, "g": None, "a": [1.5]}])
    got = c.query("c", "", output_fields=["*"])
    assert [r["t"] for r in got] == ["2025-01-01T09:00:00+08:00"] * 2
    assert [r["g"] for r in got] == ["POINT (1 2)"] * 2
    assert [r["a"] for r in got] == [None, [1.5]] and [r["i8"] for r in got] == [7, 7]
    fields = {f["name"]: f for f in c.describe_collection("c")["fields"]}
    assert fields["t"]["default_value"] == "2025-01-01T09:00:00+08:00"
    assert fields["a"]["element_type"] == DataType.DOUBLE and fields["a"]["params"]["max_capacity"] == 2


def test_auto_id_on_varchar_key(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path))
    c.create_collection("q", dimension=2, id_type="string", auto_id=True, max_length=64)
    ids = c.insert("q", [{"vector": [i, 0]} for i in range(5)])["ids"]
    assert all(isinstance(i, str) and i.isdigit() for i in ids) and len(set(ids)) == 5
    assert sorted(r["id"] for r in c.query("q", "", output_fields=["id"])) == sorted(ids)
    assert c.get("q", ids[:1], output_fields=["vector"])[0]["vector"] == [0.0, 0.0]
    with pytest.raises(InvalidArgument, match="auto_id"):
        c.insert("q", [{"id": "mine", "vector": [0, 0]}])
    c.upsert("q", [{"id": ids[0], "vector": [9, 9]}])  # an upsert names its key
    assert c.get("q", ids[:1], output_fields=["vector"])[0]["vector"] == [9.0, 9.0]
    more = c.insert_columns("q", {"vector": [[0, 0]]}, 1)["ids"]  # the server's path
    assert isinstance(more[0], str) and more[0] not in ids
    c.close()
    c = keeldb.Client(str(tmp_path))
    assert c.query("q", "", output_fields=["count(*)"])[0]["count(*)"] == 6  # five + one column insert


BAD_FILTERS = [
    ('array_contains(nums, "x")', "cannot be an element of ARRAY field 'nums'"),
    ('array_contains_all(nums, 3)', "must be a list of constants"),
    ("array_contains(v, 1)", "vector field 'v' cannot be used"),
    ('nums[0] == "x"', "cannot compare"),
    ("nums[-1] > 0", "non-negative integer index"),
    ('t > "2025-01-01"', "cannot compare TIMESTAMPTZ field 't' with a string literal"),
    ('t > ISO "tomorrow"', "invalid timestamp string"),
    ('t + INTERVAL "P1Q" > ISO "2025-01-01T00:00:00Z"', "invalid ISO 8601 duration"),
    ('nums + INTERVAL "P1D" > 0', "INTERVAL can only be added"),
    ('ST_CONTAINS(g, "POINT((")', "not valid WKT"),
    ('St_Contains(g, "POINT(1 1)")', "unknown function 'St_Contains'"),
    ('ST_DWITHIN(g, "POLYGON((0 0,1 0,1 1,0 0))", 5)', "takes a POINT"),
    ('ST_DWITHIN(g, "POINT(0 0)", -5)', "non-negative distance"),
    ('ST_CONTAINS(t, "POINT(0 0)")', "needs a GEOMETRY field"),
    ("g > 1", "cannot compare GEOMETRY field"),
    ('text_match(tags, "a")', "text match operation on non-string is unsupported"),
    ("random_sample(0.1)", "random_sample is not supported"),
    ("exists id", "exists needs a JSON path"),
    ("id in {ids}", "template variable name {ids} is not found"),
]


@pytest.mark.parametrize("flt,words", BAD_FILTERS, ids=[b[0] for b in BAD_FILTERS])
def test_bad_filters(loaded: Any, flt: str, words: str) -> None:
    c, _ = loaded
    with pytest.raises(FilterError) as info:
        c.query("c", flt, output_fields=["id"])
    assert words in str(info.value)


def test_filter_templates(loaded: Any) -> None:
    c, rows = loaded
    params = {"ids": [3, 5, 8], "lo": 2, "word": "ab", "words": ["zz", "b"], "pat": "a%", "k": [0, 1]}
    assert _ids(c, "id in {ids}", filter_params=params) == [3, 5, 8]
    assert _ids(c, "id in {ids} and nums[0] >= {lo}", filter_params=params) == sorted(
        r["id"] for r in rows if r["id"] in (3, 5, 8) and r["nums"] and r["nums"][0] >= 2
    )
    assert _ids(c, "array_contains(tags, {word})", filter_params=params) == _ids(c, 'array_contains(tags, "ab")')
    assert _ids(c, "array_contains_any(tags, {words})", filter_params=params) == _ids(c, 'array_contains_any(tags, ["zz", "b"])')
    assert _ids(c, 'j["s"] like {pat}', filter_params=params) == _ids(c, 'j["s"] like "a%"')
    assert _ids(c, 'json_contains_all(j["k"], {k})', filter_params=params) == _ids(c, 'json_contains_all(j["k"], [0, 1])')
    hits = c.search("c", [[3, 0]], limit=3, filter="id in {ids}", filter_params=params)[0]
    assert sorted(h["id"] for h in hits) == [3, 5, 8]
    assert c.count("c", "id in {ids}", filter_params=params) == 3


def test_pymilvus_schema_objects(tmp_path: Path) -> None:
    """A pymilvus CollectionSchema given to the embedded client: the new field settings are
    taken, defaults checked by their ValueField slot, BM25 functions taken, others refused."""
    import numpy as np
    from pymilvus import DataType as D
    from pymilvus import Function, FunctionType, MilvusClient

    c = keeldb.Client(str(tmp_path))
    s = MilvusClient.create_schema(enable_dynamic_field=True)
    s.add_field("id", D.VARCHAR, is_primary=True, auto_id=True, max_length=32)
    s.add_field("v", D.FLOAT_VECTOR, dim=2)
    s.add_field("tags", D.ARRAY, element_type=D.INT8, max_capacity=3, nullable=True, mmap_enabled=True)
    s.add_field("tenant", D.INT64, is_partition_key=True)
    s.add_field("t", D.TIMESTAMPTZ, default_value="2025-01-01T00:00:00Z")
    s.add_field("i16", D.INT16, default_value=np.int16(4))
    create_flat(c, "p", s, num_partitions=2)
    fields = {f["name"]: f for f in c.describe_collection("p")["fields"]}
    assert fields["tags"]["element_type"] == DataType.INT8 and fields["tags"]["params"]["mmap_enabled"] is True
    assert fields["tenant"]["is_partition_key"] and fields["id"]["auto_id"]
    ids = c.insert("p", [{"v": [0, 0], "tags": [1, 2], "tenant": 5}])["ids"]
    assert c.get("p", ids, output_fields=["tags", "t", "i16"])[0] == {"id": ids[0], "tags": [1, 2], "t": "2025-01-01T00:00:00Z", "i16": 4}
    bad = MilvusClient.create_schema()
    bad.add_field("id", D.INT64, is_primary=True)
    bad.add_field("v", D.FLOAT_VECTOR, dim=2)
    bad.add_field("i8", D.INT8, default_value=3)  # pymilvus: long_data, which Milvus refuses
    with pytest.raises(InvalidArgument, match=r"type \(Int8\) of field \(i8\) is not equal to the type\(DataType_Int64\)"):
        c.create_collection("bad", schema=bad)
    fn = MilvusClient.create_schema()
    fn.add_field("id", D.INT64, is_primary=True)
    fn.add_field("text", D.VARCHAR, max_length=64, enable_analyzer=True)
    fn.add_field("sparse", D.SPARSE_FLOAT_VECTOR)
    fn.add_function(Function(name="bm", function_type=FunctionType.BM25, input_field_names=["text"], output_field_names=["sparse"]))
    c.create_collection("fn", schema=fn)  # a BM25 function is taken (tests/test_bm25.py)
    assert c.describe_collection("fn")["functions"][0]["output_field_names"] == ["sparse"]
    with pytest.raises(InvalidArgument, match="not supported by keeldb"):
        c.create_schema().add_function(Function(name="e", function_type=FunctionType.TEXTEMBEDDING,
                                                input_field_names=["a"], output_field_names=["b"]))  # fmt: skip
    assert sorted(c.list_collections()) == ["fn", "p"]
