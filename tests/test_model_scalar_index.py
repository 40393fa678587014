"""Stateful property test for scalar indexes: random inserts, upserts, deletes, flushes,
compactions, index builds and reopens over a collection whose scalar fields carry every
index kind (with nulls, JSON of mixed types, arrays); after each step a random filter over
the indexed (and some unindexed) fields must select the same rows and count through the
indexes as through the scan (``scalar_filter.ENABLED = False``), and the row count must be
the model's."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

import keeldb
from keeldb import DataType
from keeldb.engine import compaction as compaction_mod
from keeldb.engine import index_builder as index_builder_mod
from keeldb.engine import scalar_filter as SF

KEYS = st.integers(min_value=0, max_value=60)
KEY_LISTS = st.lists(KEYS, min_size=1, max_size=12, unique=True)
OPS = st.sampled_from(["==", "!=", "<", "<=", ">", ">="])
SMALL = st.integers(min_value=-1, max_value=7)


def _iso(d: int) -> str:
    return f'ISO "2025-01-{d + 2:02d}T00:00:00Z"'


def _leaf() -> st.SearchStrategy[str]:
    ints = st.lists(SMALL, min_size=1, max_size=3)
    return st.one_of(
        st.builds(lambda o, v: f"i {o} {v}", OPS, SMALL),
        st.builds(lambda o, v: f"i {o} {v}.5", OPS, SMALL),
        st.builds(lambda a, b: f"{a} <= i < {b}", SMALL, SMALL),
        st.builds(lambda vs, neg: f"i {'not in' if neg else 'in'} {vs}", ints, st.booleans()),
        st.sampled_from(["i is null", "i is not null", "b", "not b", "b == false", "s is null", "j is null",
                         'j["a"] is null', 'j["t"] is not null', 'j["q"] is null']),
        st.builds(lambda o, v: f"f {o} {v / 2}", OPS, SMALL),
        st.builds(lambda o, v: f'c {o} "c{v}"', OPS, SMALL),
        st.builds(lambda v: f'c like "c{v}%"', SMALL),
        st.builds(lambda v, w: f's like "%{v}{w}%"', SMALL, SMALL),
        st.builds(lambda v: f's like "w{v}_%"', SMALL),
        st.builds(lambda o, v: f'j["a"] {o} {v}', OPS, SMALL),
        st.builds(lambda v: f'j["a"] == "x{v}"', SMALL),
        st.builds(lambda vs: f'j["a"] in {vs}', ints),
        st.builds(lambda v: f'j["t"] like "%t{v}%"', SMALL),
        st.builds(lambda v: f"array_contains(tags, {v})", SMALL),
        st.builds(lambda vs, all_: f"array_contains_{'all' if all_ else 'any'}(tags, {vs})", ints, st.booleans()),
        st.builds(lambda o, v: f'j["p"] {o} {v}', OPS, SMALL),
        st.builds(lambda vs: f'j["p"] in {vs}', ints),
        st.builds(lambda v: f'j["p"] == "{v}"', SMALL),
        st.builds(lambda v: f'json_contains(j["g"], {v})', SMALL),
        st.builds(lambda v: f'json_contains(j["g"], {v}.5)', SMALL),
        st.builds(lambda vs, all_: f'json_contains_{"all" if all_ else "any"}(j["g"], {vs})', ints, st.booleans()),
        st.builds(lambda v: f'array_contains(j["g"], {v})', SMALL),
        st.sampled_from(['exists j["a"]', 'exists j["g"]', 'not exists j["t"]', 'json_contains(j["g"], true)']),
        st.builds(lambda ds, neg: f"ts {'not in' if neg else 'in'} [{', '.join(_iso(d) for d in ds)}]", ints, st.booleans()),
        st.builds(lambda o, d: f"ts {o} {_iso(d)}", OPS, SMALL),
        # k: a JSON flat index (json_cast_type JSON) on the whole field; any sub-path.
        st.builds(lambda o, v: f'k["a"]["b"] {o} {v}', OPS, SMALL),
        st.builds(lambda o, v: f'k["a"]["b"] {o} {v}.5', OPS, SMALL),
        st.builds(lambda vs, neg: f'k["a"]["b"] {"not in" if neg else "in"} {vs}', ints, st.booleans()),
        st.builds(lambda o, v: f'k["a"]["c"] {o} "y{v}"', OPS, SMALL),
        st.builds(lambda v: f'k["a"]["c"] like "y{v}%"', SMALL),
        st.builds(lambda a, b: f'{a} < k["s"] <= {b}', SMALL, SMALL),
        st.sampled_from(['k["a"] is null', 'k["a"]["b"] is not null', 'exists k["a"]["c"]', 'k["a"]["d"] == true',
                         'k["a"]["b"] == true', 'k is null', 'k["a"] == 5', 'k["l"] is null', 'k["zz"] == 1']),
        # list literals: whole-array equality, arrays as json_contains* items
        st.builds(lambda vs, neg: f"tags {'!=' if neg else '=='} {vs}", st.lists(SMALL, max_size=3), st.booleans()),
        st.builds(lambda vs, neg: f'k["l"] {"!=" if neg else "=="} {vs}', st.lists(SMALL, max_size=2), st.booleans()),
        st.builds(lambda v, all_: f'json_contains_{"all" if all_ else "any"}(k["m"], [[1, {v}], {v}])', SMALL, st.booleans()),
        st.builds(lambda v: f'json_contains(k["m"], [1, {v}])', SMALL),
        st.builds(lambda m: f"id % {m} == 0", st.integers(min_value=2, max_value=5)),  # unindexed
        st.builds(lambda v: f"val > {v * 10}", SMALL),  # unindexed
    )


FILTERS = st.recursive(
    _leaf(),
    lambda inner: st.one_of(
        st.builds(lambda a, b: f"({a}) and ({b})", inner, inner),
        st.builds(lambda a, b: f"({a}) or ({b})", inner, inner),
        st.builds(lambda a: f"not ({a})", inner),
    ),
    max_leaves=4,
)


class ScalarIndexModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="keeldb-scalar-model-"))
        self.keys: set[int] = set()
        self.version = 0
        self._min_rows = index_builder_mod.INDEX_MIN_ROWS
        self._retention = compaction_mod.COMPACTION_RETENTION_MS
        index_builder_mod.INDEX_MIN_ROWS = 4
        compaction_mod.COMPACTION_RETENTION_MS = 0
        self.client = keeldb.Client(str(self.dir), auto_flush_bytes=4096)
        s = self.client.create_schema()
        s.add_field("id", DataType.INT64, is_primary=True)
        s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
        s.add_field("val", DataType.INT64)
        s.add_field("i", DataType.INT32, nullable=True)
        s.add_field("f", DataType.FLOAT)
        s.add_field("b", DataType.BOOL, nullable=True)
        s.add_field("c", DataType.VARCHAR, max_length=16)
        s.add_field("s", DataType.VARCHAR, max_length=32, nullable=True)
        s.add_field("j", DataType.JSON, nullable=True)
        s.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4, nullable=True)
        s.add_field("ts", DataType.TIMESTAMPTZ, nullable=True)
        s.add_field("k", DataType.JSON, nullable=True)
        ip = self.client.prepare_index_params()
        ip.add_index("k", "INVERTED", index_name="kf", params={"json_cast_type": "JSON"})
        ip.add_index("v", "FLAT", metric_type="L2")
        ip.add_index("i", "STL_SORT")
        ip.add_index("f", "INVERTED")
        ip.add_index("b", "BITMAP")
        ip.add_index("c", "TRIE")
        ip.add_index("s", "NGRAM", min_gram=1, max_gram=2)
        ip.add_index("j", "INVERTED", index_name="ja", params={"json_path": 'j["a"]', "json_cast_type": "double"})
        ip.add_index("j", "NGRAM", index_name="jt", params={"json_path": 'j["t"]', "json_cast_type": "varchar", "min_gram": 2, "max_gram": 3})
        ip.add_index("tags", "INVERTED")
        ip.add_index("j", "INVERTED", index_name="jg", params={"json_path": 'j["g"]', "json_cast_type": "ARRAY_DOUBLE"})
        ip.add_index("j", "INVERTED", index_name="jp",
                     params={"json_path": 'j["p"]', "json_cast_type": "DOUBLE", "json_cast_function": "STRING_TO_DOUBLE"})  # fmt: skip
        ip.add_index("ts", "STL_SORT")
        self.client.create_collection("m", schema=s, index_params=ip)

    def _row(self, pk: int) -> dict[str, Any]:
        self.version += 1
        v = self.version
        g: Any = [(v + k) % 7 / (1 + v % 2) for k in range(v % 3)] + ([True] if v % 4 == 1 else [])
        p: Any = [str(v % 7), v % 5, f" {v % 6}.5x", "none", True, None][v % 6]
        j: Any = {"a": v % 6, "t": f"t{v % 9}-{pk}", "g": g, "p": p}
        if v % 5 == 0:
            j = {"a": f"x{v % 4}", "t": v, "g": "not an array" if v % 2 else None}
        elif v % 7 == 0:
            j = {"a": (v % 8) / 2}
        kb: Any = [v % 5, (v % 6) / 2, f"y{v % 4}", True, None, [1, v % 3]][v % 6]
        k: Any = {"a": {"b": kb, "c": f"y{v % 5}" if v % 3 else v % 4, "d": v % 2 == 0},
                  "l": [[1, v % 3], [v % 3], []][v % 3], "s": v % 7 if v % 4 else "s",
                  "m": [[1, v % 4], v % 5, [True]][: v % 4]}  # fmt: skip
        if v % 11 == 0:
            k = {"a": 5, "l": {"x": 1}}
        elif v % 13 == 0:
            k = {"a": None, "s": 2.5}
        return {
            "id": pk, "v": [float(pk), 1.0], "val": v, "k": None if v % 10 == 3 else k,
            "i": None if v % 4 == 0 else (v * 3) % 8 - 1,
            "f": (v % 9) / 2,
            "b": None if v % 6 == 0 else v % 2 == 0,
            "c": f"c{v % 7}",
            "s": None if v % 5 == 1 else f"w{v % 4}{pk % 6}z{v % 3}",
            "j": None if v % 9 == 0 else j,
            "tags": None if v % 8 == 3 else [(v + k) % 6 for k in range(v % 4)],
            "ts": None if v % 7 == 2 else f"2025-01-{2 + v % 9:02d}T00:00:00Z",
        }  # fmt: skip

    @rule(keys=KEY_LISTS)
    def insert(self, keys: list[int]) -> None:
        new = [k for k in keys if k not in self.keys]
        if new:
            self.client.insert("m", [self._row(k) for k in new])
            self.keys.update(new)

    @rule(keys=KEY_LISTS)
    def upsert(self, keys: list[int]) -> None:
        self.client.upsert("m", [self._row(k) for k in keys])
        self.keys.update(keys)

    @rule(keys=KEY_LISTS)
    def delete(self, keys: list[int]) -> None:
        self.client.delete("m", ids=keys)
        self.keys.difference_update(keys)

    @rule()
    def flush(self) -> None:
        self.client.flush("m")

    @rule()
    def compact(self) -> None:
        self.client.compact("m")

    @rule()
    def build(self) -> None:
        self.client.wait_for_index("m")

    @rule()
    def reopen(self) -> None:
        self.client.close()
        self.client = keeldb.Client(str(self.dir), auto_flush_bytes=4096)

    @rule(expr=FILTERS)
    def filter_answers_as_the_scan(self, expr: str) -> None:
        got = self._answers(expr, True)
        want = self._answers(expr, False)
        assert got == want, expr
        assert got[1] == len(got[0])

    def _answers(self, expr: str, indexed: bool) -> tuple[list[int], int]:
        SF.ENABLED = indexed
        try:
            ids = sorted(r["id"] for r in self.client.query("m", expr, output_fields=["id"]))
            n = self.client.query("m", expr, output_fields=["count(*)"])[0]["count(*)"]
        finally:
            SF.ENABLED = True
        return ids, n

    @invariant()
    def count_matches(self) -> None:
        assert self.client.query("m", "", output_fields=["count(*)"])[0]["count(*)"] == len(self.keys)

    def teardown(self) -> None:
        index_builder_mod.INDEX_MIN_ROWS = self._min_rows
        compaction_mod.COMPACTION_RETENTION_MS = self._retention
        SF.ENABLED = True
        self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)


ScalarIndexModel.TestCase.settings = settings(
    max_examples=int(os.environ.get("KEELDB_MODEL_EXAMPLES", "25")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestScalarIndexModel = ScalarIndexModel.TestCase


def test_the_model_reaches_the_index_path() -> None:
    """A fixed run: indexes are built and read (the property above would pass vacuously
    if no filter ever met a sealed, indexed segment)."""
    m = ScalarIndexModel()
    try:
        m.insert(list(range(40)))
        m.flush()
        m.build()
        before = SF.STATS["answered"]
        m.filter_answers_as_the_scan('(i > 2) and (j["a"] != 3 or not b)')
        m.filter_answers_as_the_scan('s like "%1z%" or array_contains(tags, 2)')
        m.filter_answers_as_the_scan('json_contains_any(j["g"], [1, 2]) and exists j["t"]')
        m.filter_answers_as_the_scan('ts in [ISO "2025-01-03T00:00:00Z", ISO "2025-01-05T00:00:00Z"] or not exists j["g"]')
        assert SF.STATS["answered"] > before
    finally:
        m.teardown()
