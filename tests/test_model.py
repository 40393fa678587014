"""Stateful property test: random sequences of insert, upsert, partial update, delete,
flush, compaction and reopen, checked after every step against a plain dict (the model)
through count, get, query (an ARRAY column and array filters included) and exact search —
dense (IVF_FLAT, exhaustive) and sparse (an inverted index per sealed segment, every row
carrying a sparse vector, some of them empty)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

import keeldb
from keeldb import DataType
from keeldb.engine import compaction as compaction_mod
from keeldb.engine import index_builder as index_builder_mod

# Compaction drops dead versions at once here, so the model checks that path too.
compaction_mod.COMPACTION_RETENTION_MS = 0

DIM = 4
KEYS = st.integers(min_value=0, max_value=40)
KEY_LISTS = st.lists(KEYS, min_size=1, max_size=8, unique=True)


def vector(pk: int, version: int) -> list[float]:
    return [float(pk), float(version), float((pk * 7 + version) % 5), 1.0]


def sparse_vector(pk: int, version: int) -> dict[int, float]:
    """A sparse row per version: a few shared dimensions (so searches meet many rows),
    one dimension near the top of uint32, and now and then an empty row."""
    if version % 11 == 0:
        return {}
    return {pk % 7: 1.0 + version % 3, 10 + version % 5: 0.5, 2**32 - 2 - pk % 3: (pk + 1) / 40}


class Model(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="keeldb-model-"))
        self.model: dict[int, dict[str, Any]] = {}
        self.version = 0
        self.auto_flush = 2048  # tiny: background flushes happen inside sequences too
        # Index even these tiny segments, so searches go through FAISS with deletes as
        # selectors. nprobe = nlist makes IVF_FLAT exhaustive: its answers must be exact.
        self._min_rows = index_builder_mod.INDEX_MIN_ROWS
        index_builder_mod.INDEX_MIN_ROWS = 4
        self.client = self._open()
        schema = self.client.create_schema(enable_dynamic_field=True)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
        schema.add_field("val", DataType.INT64)
        schema.add_field("note", DataType.VARCHAR, max_length=32, nullable=True)
        schema.add_field("sv", DataType.SPARSE_FLOAT_VECTOR)
        schema.add_field("tags", DataType.ARRAY, element_type=DataType.INT64, max_capacity=4, nullable=True)
        idx = self.client.prepare_index_params()
        idx.add_index("vector", "IVF_FLAT", metric_type="L2", params={"nlist": 4})
        idx.add_index("sv", "SPARSE_INVERTED_INDEX", metric_type="IP", params={"inverted_index_algo": "DAAT_MAXSCORE"})
        self.client.create_collection("m", schema=schema, index_params=idx)

    def _open(self) -> keeldb.Client:
        return keeldb.Client(str(self.dir), auto_flush_bytes=self.auto_flush)

    def _row(self, pk: int) -> dict[str, Any]:
        self.version += 1
        v = self.version
        row: dict[str, Any] = {"id": pk, "vector": vector(pk, v), "val": v, "sv": sparse_vector(pk, v)}
        if v % 3:
            row["note"] = f"n{v}"
        if v % 4 == 0:
            row["extra"] = v  # a dynamic field
        if v % 5:
            row["tags"] = [(v + j) % 3 for j in range(v % 4)]
        return row

    @staticmethod
    def _expect(row: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": row["id"], "val": row["val"], "note": row.get("note"), "vector": row["vector"], "sv": row["sv"],
            "tags": row.get("tags"),
        }  # fmt: skip

    @rule(keys=KEY_LISTS)
    def insert(self, keys: list[int]) -> None:
        rows = [self._row(k) for k in keys]
        if any(k in self.model for k in keys):
            try:
                self.client.insert("m", rows)
            except keeldb.PrimaryKeyExists:
                return
            raise AssertionError("insert of a live key was accepted")
        res = self.client.insert("m", rows)
        assert res["insert_count"] == len(keys)
        for r in rows:
            self.model[r["id"]] = self._expect(r)

    @rule(keys=KEY_LISTS)
    def upsert(self, keys: list[int]) -> None:
        rows = [self._row(k) for k in keys]
        assert self.client.upsert("m", rows)["upsert_count"] == len(keys)
        for r in rows:
            self.model[r["id"]] = self._expect(r)

    @rule(keys=KEY_LISTS, with_vector=st.booleans())
    def partial_update(self, keys: list[int], with_vector: bool) -> None:
        """Only val and tags change (note, the vector and dynamic keys are kept); a key that
        is not live is an insert, which needs the vector (not nullable, no default)."""
        self.version += 1
        v = self.version
        rows: list[dict[str, Any]] = []
        for k in keys:
            r: dict[str, Any] = {"id": k, "val": v, "tags": [v % 3] * (v % 3)}
            if with_vector:  # the vectors an insert needs (neither nullable nor defaulted)
                r.update(vector=vector(k, v), sv=sparse_vector(k, v))
            rows.append(r)
        if not with_vector and any(k not in self.model for k in keys):
            try:
                self.client.upsert("m", rows, partial_update=True)
            except keeldb.InvalidArgument as e:
                assert "fieldSchema(vector) has no corresponding fieldData" in str(e)
                return
            raise AssertionError("a partial update inserting a row without its vector was accepted")
        assert self.client.upsert("m", rows, partial_update=True)["upsert_count"] == len(keys)
        for r in rows:
            old = self.model.get(r["id"])
            new = dict(old) if old is not None else {"id": r["id"], "note": None}
            new.update(val=v, tags=r["tags"])
            if with_vector:
                new.update(vector=r["vector"], sv=r["sv"])
            self.model[r["id"]] = new

    @rule(keys=KEY_LISTS)
    def delete(self, keys: list[int]) -> None:
        n = self.client.delete("m", ids=keys)["delete_count"]
        assert n == sum(1 for k in keys if k in self.model)
        for k in keys:
            self.model.pop(k, None)

    @rule(bound=st.integers(min_value=0, max_value=40))
    def delete_filter(self, bound: int) -> None:
        victims = [k for k, r in self.model.items() if r["id"] < bound and r["val"] % 2 == 0]
        n = self.client.delete("m", filter=f"id < {bound} and val % 2 == 0")["delete_count"]
        assert n == len(victims)
        for k in victims:
            del self.model[k]

    @rule()
    def flush(self) -> None:
        self.client.flush("m")

    @rule()
    def compact(self) -> None:
        self.client.compact("m")

    @rule()
    def wait_for_index(self) -> None:
        # A background flush or compaction still running would commit an unindexed
        # segment after wait_for_index returned (test_model_bm25.py's flush threshold met it).
        self.client._coll("m").wait_background()  # noqa: SLF001
        self.client.wait_for_index("m")
        assert self.client.describe_index("m", "vector")["pending_index_rows"] == 0

    @rule()
    def reopen(self) -> None:
        self.client.close()
        self.client = self._open()

    @invariant()
    def count_matches(self) -> None:
        got = self.client.query("m", filter="", output_fields=["count(*)"])[0]["count(*)"]
        assert got == len(self.model)
        assert self.client.get_collection_stats("m")["row_count"] == len(self.model)

    @invariant()
    def query_matches(self) -> None:
        rows = self.client.query("m", filter="id >= 0", output_fields=["val", "note", "vector", "sv", "tags"])
        assert [r["id"] for r in rows] == sorted(self.model)
        for r in rows:
            exp = self.model[r["id"]]
            assert (r["val"], r["note"], r["tags"]) == (exp["val"], exp["note"], exp["tags"])
            assert np.allclose(r["vector"], exp["vector"])
            assert r["sv"] == {k: float(np.float32(v)) for k, v in exp["sv"].items()}
        for flt, pred in (
            ("array_contains(tags, 1)", lambda t: t is not None and 1 in t),
            ("array_length(tags) >= 2 and tags[1] == 0", lambda t: t is not None and len(t) >= 2 and t[1] == 0),
            ("tags is null", lambda t: t is None),
        ):
            got = self.client.query("m", filter=flt, output_fields=["count(*)"])[0]["count(*)"]
            assert got == sum(1 for r in self.model.values() if pred(r["tags"])), flt
        n_even = self.client.query("m", filter="val % 2 == 0", output_fields=["count(*)"])[0]["count(*)"]
        assert n_even == sum(1 for r in self.model.values() if r["val"] % 2 == 0)

    @invariant()
    def key_range_pages_match(self) -> None:
        """query_iterator's page shape (`id > last`, limit): the key-range scan path."""
        keys = sorted(self.model)
        assert [r["id"] for r in self.client.query("m", filter="", limit=4)] == keys[:4]
        assert [r["id"] for r in self.client.query("m", filter="id > 10", limit=3, offset=1)] == [k for k in keys if k > 10][1:4]
        got = self.client.query("m", filter="id >= 20", limit=50, output_fields=["val"])
        assert [(r["id"], r["val"]) for r in got] == [(k, self.model[k]["val"]) for k in keys if k >= 20]

    @invariant()
    def get_matches(self) -> None:
        probe = list(range(0, 41, 3))
        got = {r["id"]: r["val"] for r in self.client.get("m", ids=probe, output_fields=["val"])}
        assert got == {k: self.model[k]["val"] for k in probe if k in self.model}

    @precondition(lambda self: bool(self.model))
    @invariant()
    def search_matches(self) -> None:
        keys = sorted(self.model)[:5]
        queries = [self.model[k]["vector"] for k in keys]
        k = min(3, len(self.model))
        hits = self.client.search("m", queries, limit=k, output_fields=["val"], anns_field="vector",
                                  search_params={"params": {"nprobe": 4}})  # fmt: skip
        live = np.array([self.model[x]["vector"] for x in sorted(self.model)], dtype=np.float32)
        ids = np.array(sorted(self.model))
        for q, res in zip(queries, hits, strict=True):
            assert len(res) == k
            d = ((live - np.asarray(q, dtype=np.float32)) ** 2).sum(axis=1)
            best = np.sort(d)[:k]
            assert np.allclose([h["distance"] for h in res], best, atol=1e-3)
            for h in res:
                assert h["id"] in self.model and h["entity"]["val"] == self.model[h["id"]]["val"]
            assert set(h["id"] for h in res) <= set(ids.tolist())

    @invariant()
    def sparse_search_matches(self) -> None:
        """Sparse search (through the inverted indexes of sealed segments, an exact scan of
        the growing one) equals a brute force over the model's live rows: the same scores
        in order, every hit a live row at its true score, no row sharing no dimension."""
        for q in ({0: 1.0, 12: 0.25}, {3: 0.5, 2**32 - 2: 2.0}, {5: 1.0}):
            truth = {}
            for k, r in self.model.items():
                shared = set(q) & set(r["sv"])
                score = sum(float(np.float32(q[d])) * float(np.float32(r["sv"][d])) for d in shared)
                if score > 0:
                    truth[k] = score
            want = sorted(truth.values(), reverse=True)[:4]
            hits = self.client.search("m", [q], anns_field="sv", limit=4, output_fields=["val"])[0]
            assert np.allclose([h["distance"] for h in hits], want, rtol=1e-5), (q, hits, want)
            for h in hits:
                assert abs(truth[h["id"]] - h["distance"]) <= 1e-5 * max(1.0, h["distance"])
                assert h["entity"]["val"] == self.model[h["id"]]["val"]

    def teardown(self) -> None:
        index_builder_mod.INDEX_MIN_ROWS = self._min_rows
        self.client.close()
        shutil.rmtree(self.dir, ignore_errors=True)


Model.TestCase.settings = settings(
    max_examples=int(os.environ.get("KEELDB_MODEL_EXAMPLES", "40")),
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestModel = Model.TestCase
