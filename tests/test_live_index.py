"""LiveIndex: random sequences of every mutation checked against a plain dict (the model)
after each step, for int and for str keys; plus memory and scale checks on 1M keys."""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from keeldb.engine.live_index import LiveIndex

LOCS = st.integers(min_value=0, max_value=(1 << 50) - 1)
INT_KEYS = st.integers(min_value=-5, max_value=40)
# Small alphabet so keys collide; "" , NUL, non-ASCII and astral characters test that
# sorting, searching and equality agree on one order.
STR_KEYS = st.text(alphabet="ab\x00é\U0001f600", max_size=3)


def make_machine(keys: st.SearchStrategy[Any], str_keys: bool) -> type[RuleBasedStateMachine]:
    # Lists longer than the index's small-batch cut-off (8) take the vectorised paths.
    key_lists = st.lists(keys, max_size=24)

    class LiveIndexMachine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            # A tiny auto-merge floor so merges also happen inside add_many.
            self.idx = LiveIndex(str_keys=str_keys, auto_merge_min=4)
            self.model: dict[Any, int] = {}
            self.seen: set[Any] = set()

        def _see(self, ks: list[Any]) -> None:
            self.seen.update(ks)

        def _key_array(self, ks: list[Any]) -> np.ndarray:
            return np.array(ks, dtype=object if str_keys else np.int64)

        @rule(ks=key_lists, locs=st.lists(LOCS, min_size=24, max_size=24), as_array=st.booleans())
        def add_many(self, ks: list[Any], locs: list[int], as_array: bool) -> None:
            self._see(ks)
            new = list(dict.fromkeys(k for k in ks if k not in self.model))
            locs = locs[: len(new)]
            if as_array:
                self.idx.add_many(self._key_array(new), np.array(locs, dtype=np.int64))
            else:
                self.idx.add_many(new, iter(locs))
            self.model.update(zip(new, locs, strict=True))

        @rule(k=keys, numpy_scalar=st.booleans())
        def pop(self, k: Any, numpy_scalar: bool) -> None:
            self._see([k])
            probe = np.int64(k) if numpy_scalar and not str_keys else k
            assert self.idx.pop(probe) == self.model.pop(k, None)

        @rule(ks=key_lists)
        def pop_many(self, ks: list[Any]) -> None:
            self._see(ks)
            exp_keys, exp_locs = [], []
            for k in ks:
                if k in self.model:
                    exp_keys.append(k)
                    exp_locs.append(self.model.pop(k))
            got_keys, got_locs = self.idx.pop_many(ks)
            assert got_keys == exp_keys
            assert got_locs == exp_locs
            assert all(type(x) is int for x in got_locs)

        @rule(ks=st.lists(keys, unique=True, max_size=24), data=st.data())
        def repoint(self, ks: list[Any], data: st.DataObject) -> None:
            self._see(ks)
            locs = data.draw(st.lists(LOCS, min_size=len(ks), max_size=len(ks)))
            n = self.idx.repoint(self._key_array(ks), np.array(locs, dtype=np.int64))
            hit = 0
            for k, loc in zip(ks, locs, strict=True):
                if k in self.model:
                    self.model[k] = loc
                    hit += 1
            assert n == hit

        @rule()
        def merge(self) -> None:
            self.idx.merge()
            assert self.idx.delta_size == 0
            assert self.idx.base_size == len(self.model)

        @rule(content=st.dictionaries(keys, LOCS, max_size=30), presort=st.booleans())
        def bulk_load(self, content: dict[Any, int], presort: bool) -> None:
            ks = sorted(content) if presort else list(content)
            self._see(ks)
            self.idx.bulk_load(
                self._key_array(ks), np.array([content[k] for k in ks], dtype=np.int64)
            )
            self.model = dict(content)

        @rule(ks=key_lists)
        def first_present(self, ks: list[Any]) -> None:
            self._see(ks)
            assert self.idx.first_present(ks) == next((k for k in ks if k in self.model), None)

        @invariant()
        def matches_model(self) -> None:
            idx, model = self.idx, self.model
            assert len(idx) == len(model)
            assert idx.to_dict() == model
            probe = sorted(self.seen)
            for k in probe:
                assert (k in idx) == (k in model)
                assert idx.get(k) == model.get(k)
                if not str_keys:
                    assert (np.int64(k) in idx) == (k in model)
                    assert idx.get(np.int64(k)) == model.get(k)
            # The whole universe, forwards and backwards: the vectorised first_present.
            for order in (probe, probe[::-1]):
                assert idx.first_present(order) == next((k for k in order if k in model), None)
            absent = [k for k in probe if k not in model]
            assert idx.first_present(absent) is None
            assert idx.first_present(absent[:3]) is None

        @invariant()
        def base_is_sorted(self) -> None:
            k = self.idx._keys
            assert len(k) < 2 or bool(np.all(k[1:] > k[:-1]))

    LiveIndexMachine.TestCase.settings = settings(
        max_examples=int(os.environ.get("KEELDB_LIVE_INDEX_EXAMPLES", "40")),
        stateful_step_count=40,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    return LiveIndexMachine


TestIntKeys = make_machine(INT_KEYS, str_keys=False).TestCase
TestStrKeys = make_machine(STR_KEYS, str_keys=True).TestCase


# -- plain tests -------------------------------------------------------------------------


def test_wrong_typed_keys_are_absent() -> None:
    ints = LiveIndex()
    ints.bulk_load(np.arange(0, 100, 2), np.arange(50))
    for k in ["4", "a", 4.5, 2**70, -(2**70), None, b"4"]:
        assert k not in ints
        assert ints.get(k) is None
        assert ints.pop(k) is None
    assert 4 in ints and 4.0 in ints and np.int64(4) in ints  # as in a dict
    batch = [3, "a", 4.5, 2**70, 8, 5, 7, 9, 11, 13]
    assert ints.first_present(batch) == 8
    assert ints.pop_many(batch) == ([8], [4])
    assert len(ints) == 49

    strs = LiveIndex(str_keys=True)
    strs.bulk_load(np.array(["x", "y", "z"], dtype=object), np.array([1, 2, 3]))
    for k in [1, None, b"x", 1.5]:
        assert k not in strs
        assert strs.get(k) is None
    batch2 = [1, 2, 3, 4, 5, 6, 7, 8, 9, "y", "x"]
    assert strs.first_present(batch2) == "y"
    assert strs.pop_many(batch2) == (["y", "x"], [2, 1])
    assert strs.to_dict() == {"z": 3}


def test_bulk_load_rejects_bad_input() -> None:
    idx = LiveIndex()
    with pytest.raises(ValueError, match="duplicate"):
        idx.bulk_load(np.array([3, 1, 3]), np.array([0, 1, 2]))
    with pytest.raises(ValueError):
        idx.bulk_load(np.array([1, 2]), np.array([0]))
    with pytest.raises(ValueError, match="negative"):
        idx.bulk_load(np.array([1, 2]), np.array([0, -1]))
    strs = LiveIndex(str_keys=True)
    with pytest.raises(TypeError, match="object array"):  # "a\0" would become "a"
        strs.bulk_load(np.array(["a\0", "b"]), np.array([0, 1]))
    assert len(strs) == 0


def test_bulk_load_owns_its_arrays() -> None:
    keys = np.arange(10, dtype=np.int64)
    locs = np.arange(10, dtype=np.int64)
    ro = locs[:]
    ro.flags.writeable = False
    idx = LiveIndex()
    idx.bulk_load(keys[2:], ro[2:])  # sorted views: the no-sort path
    idx.pop(5)
    assert locs[5] == 5 and 5 not in idx
    assert idx.repoint(np.array([6]), np.array([60])) == 1
    assert locs[6] == 6 and idx.get(6) == 60
    idx.bulk_load(keys, locs)
    idx.pop(1)
    idx.repoint(np.array([2]), np.array([20]))
    assert locs.tolist() == list(range(10))


def test_1m_keys_memory_and_paths() -> None:
    n = 1_000_000
    rng = np.random.default_rng(7)
    keys = rng.permutation(n).astype(np.int64) * 3 + 11  # unique, unsorted
    locs = np.arange(n, dtype=np.int64) | (5 << 40)
    idx = LiveIndex()
    idx.bulk_load(keys, locs)
    assert len(idx) == n
    assert idx.nbytes < 24 * 2**20
    probe = keys[:200].tolist()
    assert idx.first_present([k + 1 for k in probe]) is None
    assert idx.first_present([k + 1 for k in probe] + [probe[7]]) == probe[7]
    assert idx.get(probe[0]) == int(locs[0])

    # Churn: upsert 100k keys (pop, then add at new locations), delete 50k, add 50k new.
    up = keys[:100_000].tolist()
    got, _ = idx.pop_many(up)
    assert got == up
    idx.add_many(up, range(1 << 41, (1 << 41) + len(up)))
    gone, _ = idx.pop_many(keys[100_000:150_000].tolist())
    assert len(gone) == 50_000
    fresh = list(range(-50_000, 0))
    assert idx.first_present(fresh) is None
    idx.add_many(fresh, range(len(fresh)))
    assert len(idx) == n
    assert idx.get(up[3]) == (1 << 41) + 3
    assert keys[120_000].item() not in idx
    assert idx.repoint(keys[140_000:160_000], np.zeros(20_000, dtype=np.int64)) == 10_000

    idx.merge()
    assert idx.delta_size == 0 and idx.base_size == n
    assert idx.nbytes < 24 * 2**20
    assert idx.get(-1) == 49_999 and idx.get(keys[155_000].item()) == 0


def test_nbytes_counts_strings_and_delta() -> None:
    strs = LiveIndex(str_keys=True, auto_merge_min=None)
    keys = [f"user-{i:06d}" for i in range(5000)]
    strs.bulk_load(np.array(keys, dtype=object), np.arange(5000))
    base = strs.nbytes
    assert base > 5000 * (16 + len(keys[0]))  # pointer + loc + the strings themselves
    strs.add_many([k + "x" for k in keys], range(5000))
    assert strs.nbytes > base + 5000 * len(keys[0])
    assert "delta=5000" in repr(strs)
    strs.merge()
    assert strs.delta_size == 0 and len(strs) == 10_000


def test_timing_sanity() -> None:
    """Prints timings (run with -s); asserts results only, never times."""
    n = int(os.environ.get("KEELDB_LIVE_INDEX_TIMING_N", "2000000"))
    rng = np.random.default_rng(1)
    keys = rng.permutation(n).astype(np.int64)
    out: dict[str, float] = {}

    def timed(name: str, fn: Any) -> Any:
        t0 = time.perf_counter()
        res = fn()
        out[name] = time.perf_counter() - t0
        return res

    idx = LiveIndex(auto_merge_min=None)
    timed("bulk_load unsorted", lambda: idx.bulk_load(keys, np.arange(n, dtype=np.int64)))
    sorted_keys = np.sort(keys)
    timed("bulk_load sorted", lambda: idx.bulk_load(sorted_keys, np.arange(n, dtype=np.int64)))
    absent = rng.integers(n, 2 * n, 200).tolist()
    assert timed("first_present 200 absent", lambda: idx.first_present(absent)) is None
    hits = keys[:200].tolist()
    got = timed("pop_many 200", lambda: idx.pop_many(hits))
    assert got[0] == hits
    timed("add_many 200", lambda: idx.add_many(hits, range(200)))
    fresh = list(range(n, n + n // 8))
    timed("add_many n/8", lambda: idx.add_many(fresh, range(len(fresh))))
    timed("first_present 200 absent, big delta", lambda: idx.first_present(absent[:-1] + [-1]))
    timed("merge n/8", idx.merge)
    timed("get x1000", lambda: [idx.get(k) for k in hits * 5])
    assert len(idx) == n + n // 8

    m = n // 10
    strs = np.array([f"k{x}" for x in rng.permutation(m).tolist()], dtype=object)
    sidx = LiveIndex(str_keys=True)
    timed(f"str bulk_load {m}", lambda: sidx.bulk_load(strs, np.arange(m)))
    probe = [x + "!" for x in strs[:200].tolist()]
    assert timed("str first_present 200 absent", lambda: sidx.first_present(probe)) is None
    print({k: f"{v * 1e3:.2f} ms" for k, v in out.items()})
