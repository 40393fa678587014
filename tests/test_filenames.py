"""File and object names: every name keeldb formats parses back to what made it, and what
is not ours is never taken for ours (GC deletes by these rules)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from keeldb.storage import filenames as fn

NUMBERS = st.integers(min_value=0, max_value=10**12 - 1)
TAGS = st.one_of(st.just(""), st.integers(min_value=1, max_value=2**63).map(lambda n: f"{n:x}"))


@given(NUMBERS)
def test_log_names_round_trip_and_sort_numerically(n: int) -> None:
    assert fn.parse_log_name(fn.log_name(n)) == n
    assert len(fn.log_name(n)) == len(fn.log_name(0))  # fixed width: byte order is number order


@given(NUMBERS)
def test_manifest_names_round_trip(v: int) -> None:
    name = fn.manifest_name(v)
    assert fn.parse_manifest_name(name) == v
    assert fn.parse_manifest_name(fn.tmp_name(name)) is None  # a commit in flight is no version
    assert fn.is_tmp(fn.tmp_name(name)) and not fn.is_tmp(name)


@given(st.sampled_from(fn.DATA_KINDS), NUMBERS, st.sampled_from(["arrow", "faiss"]), TAGS)
def test_data_file_names_round_trip(kind: str, fid: int, ext: str, tag: str) -> None:
    name = fn.data_file_name(kind, fid, ext, tag)
    assert fn.is_data_file(name)
    assert fn.parse_data_file_name(name) == (kind, fid, tag, ext)
    assert fn.has_tag(name, tag)
    assert not fn.has_tag(name, tag + "0")


def test_names_are_what_they_always_were() -> None:
    # The on-disk format (docs/formats.md): existing directories must keep opening.
    assert fn.data_file_name(fn.SEGMENT, 12, "arrow") == "seg-000000000012.arrow"
    assert fn.data_file_name(fn.INDEX, 3, "faiss", "7f3a") == "idx-000000000003-7f3a.faiss"
    assert fn.log_name(7) == "000000000007.log"
    assert fn.manifest_name(5) == "MANIFEST-000000000005"
    assert fn.collection_dir_name(42) == "000042"
    assert fn.replica_dir_name(42) == "000042-replica"
    assert fn.wal_chunk_name(3, 9) == "000000000003/00000009"


def test_foreign_names_are_not_ours() -> None:
    for name in ("LOCK", "CATALOG", "wal", "notes.log.bak", "x.log", "MANIFEST-", "MANIFEST-12a", "seg.arrow"):
        assert fn.parse_log_name(name) is None
        assert fn.parse_manifest_name(name) is None
        assert fn.parse_data_file_name(name) is None
    assert fn.parse_data_file_name("seg-12.arrow") is None  # not our width
    assert fn.parse_wal_chunk_name("12/x") is None and fn.parse_wal_chunk_name("12") is None


@given(NUMBERS, st.integers(min_value=0, max_value=10**8 - 1))
def test_wal_chunk_names_round_trip(number: int, chunk: int) -> None:
    assert fn.parse_wal_chunk_name(fn.wal_chunk_name(number, chunk)) == (number, chunk)
