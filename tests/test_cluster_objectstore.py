"""The object-store client against a real SeaweedFS (``weed mini`` on 127.0.0.1): the
conditional PUT that keeps two writers off one log position, listing, deletes, atomic
downloads, request accounting, and behaviour across a SIGKILL of the store."""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from keeldb.cluster import objectstore as objectstore_module
from keeldb.cluster.objectstore import ObjectStore, ObjectStoreError, PositionTaken
from keeldb.errors import InvalidArgument
from keeldb.testing.testbed import ObjectStoreProcess
from tests.cluster_util import object_store, s3_server  # noqa: F401 - pytest fixtures

# -- no server needed ------------------------------------------------------------------------


def test_from_url_and_key_joining() -> None:
    store = ObjectStore.from_url("s3://my-bucket/a/b/", endpoint="http://127.0.0.1:9")
    assert (store.bucket, store.prefix) == ("my-bucket", "a/b/")
    assert store._full("x/y") == "a/b/x/y" and store._full("/x") == "a/b/x"
    bare = ObjectStore.from_url("s3://my-bucket", endpoint="http://127.0.0.1:9")
    assert bare.prefix == "" and bare._full("k") == "k"
    for bad in ("http://b/p", "s3:///p", "my-bucket/p", "s3://b/p", "s3://Bad_Bucket/p"):
        with pytest.raises(InvalidArgument):
            ObjectStore.from_url(bad, endpoint="http://127.0.0.1:9")
    with pytest.raises(InvalidArgument):
        store._full("")


# -- conditional writes ----------------------------------------------------------------------


def test_racing_conditional_puts_exactly_one_wins(object_store: ObjectStore) -> None:  # noqa: F811
    # SeaweedFS makes losers wait on a per-key lock in steps of ~1 s: 2 rounds, not more.
    for round_ in range(2):
        key = f"log/{round_:020d}"
        start = threading.Barrier(8)
        won: list[int] = []
        taken: list[int] = []
        other: list[BaseException] = []

        def write(
            i: int,
            key: str = key,
            start: threading.Barrier = start,
            won: list[int] = won,
            taken: list[int] = taken,
            other: list[BaseException] = other,
        ) -> None:
            data = f"writer {i} owns {key}".encode()  # writer-unique bytes, as required
            start.wait()
            try:
                object_store.put_if_absent(key, data)
                won.append(i)
            except PositionTaken:
                taken.append(i)
            except BaseException as e:  # noqa: BLE001 - reported below
                other.append(e)

        threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert not other, other
        assert len(won) == 1, f"winners {won}, refused {taken}"
        assert sorted(won + taken) == list(range(8))
        assert object_store.get(key) == f"writer {won[0]} owns {key}".encode()


def test_conditional_put_of_the_same_bytes_is_our_own_retry(object_store: ObjectStore) -> None:  # noqa: F811
    object_store.put_if_absent("pos/1", b"batch 1 from node a")
    # What botocore does when the first PUT landed but its reply was lost: send it again.
    object_store.put_if_absent("pos/1", b"batch 1 from node a")
    before = object_store.snapshot_requests()
    with pytest.raises(PositionTaken, match="pos/1"):
        object_store.put_if_absent("pos/1", b"batch 1 from node b")  # same length, other bytes
    with pytest.raises(PositionTaken):
        object_store.put_if_absent("pos/1", b"shorter")
    after = object_store.snapshot_requests()
    # Each refused PUT cost one PUT (412) and one GET (the compare), nothing more.
    assert after["PUT"] - before["PUT"] == 2 and after["GET"] - before.get("GET", 0) == 2
    assert object_store.get("pos/1") == b"batch 1 from node a"


def test_upload_file_is_conditional_too(object_store: ObjectStore, tmp_path: Path) -> None:  # noqa: F811
    seg = tmp_path / "seg"
    seg.write_bytes(os.urandom(3 << 20))  # spans several compare blocks
    object_store.upload_file(seg, "segments/1")
    object_store.upload_file(seg, "segments/1")  # the retry case
    other = tmp_path / "other"
    other.write_bytes(seg.read_bytes()[:-1] + b"\0")
    with pytest.raises(PositionTaken):
        object_store.upload_file(other, "segments/1")
    assert object_store.get("segments/1") == seg.read_bytes()


# -- reads -----------------------------------------------------------------------------------


def test_missing_keys(object_store: ObjectStore, tmp_path: Path) -> None:  # noqa: F811
    assert object_store.get("nope") is None
    assert object_store.download("nope", tmp_path / "f") is False
    assert list(tmp_path.iterdir()) == []


def test_download_is_atomic(
    object_store: ObjectStore,  # noqa: F811
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = os.urandom(2 << 20)
    object_store.put_if_absent("blob", data)
    target = tmp_path / "blob"
    target.write_bytes(b"old contents")
    assert object_store.download("blob", target) is True
    assert target.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob"]  # no .tmp left

    # A failure before the rename leaves the old file alone and no temporary behind.
    object_store.put_if_absent("blob2", b"new")
    target.write_bytes(b"old contents")

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(objectstore_module.os, "fsync", failing_fsync)
    with pytest.raises(ObjectStoreError, match="blob2"):
        object_store.download("blob2", target)
    assert target.read_bytes() == b"old contents"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["blob"]


def test_list_paginates_and_delete_many_batches(object_store: ObjectStore) -> None:  # noqa: F811
    keys = [f"many/{i:06d}" for i in range(1050)]  # > 1000: two LIST pages, two DELETEs
    with ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda k: object_store.put_if_absent(k, b"v"), keys))
    object_store.put_if_absent("other/1", b"v")
    object_store.requests.reset()
    assert object_store.list("many/") == keys
    assert object_store.snapshot_requests() == {"LIST": 2}
    assert object_store.list("many/", start_after="many/001047") == keys[1048:]
    assert object_store.list() == [*keys, "other/1"]

    object_store.requests.reset()
    object_store.delete_many([*keys, "many/never-written"])
    assert object_store.snapshot_requests() == {"DELETE": 2}
    assert object_store.list() == ["other/1"]
    object_store.requests.reset()
    object_store.delete_many([])
    assert object_store.snapshot_requests() == {}


def test_list_order_and_start_after_match_s3(object_store: ObjectStore) -> None:  # noqa: F811
    """SeaweedFS lists per directory ("a/b" before "a-") and resumes StartAfter per
    directory entry (skipping the entry's subtree); results must still be S3's."""
    keys = ["d/a", "d/a/b", "d/a/c/d", "d/a-", "d/a.x", "d/a0", "d/b", "d/b/x", "d/c-1/z", "e"]
    for k in keys:
        object_store.put_if_absent(k, b"v")
    assert object_store.list() == sorted(keys)
    assert object_store.list("d/a") == sorted(k for k in keys if k.startswith("d/a"))
    probes = ["", "d", "d/", "d/a", "d/a/", "d/a-", "d/a.", "d/a/b", "d/a/c", "d/a0", "d/b"]
    probes += ["d/c", "d/c-1", "d/c-1/", "d/zz", "e", "f", "d/a/c/d"]
    for after in probes:
        expected = sorted(k for k in keys if k > after)
        assert object_store.list(start_after=after) == expected, after
        assert object_store.list("d/", start_after=after) == [
            k for k in expected if k.startswith("d/")
        ], after


def test_request_counters(object_store: ObjectStore) -> None:  # noqa: F811
    object_store.put_if_absent("c/1", b"x")
    object_store.get("c/1")
    object_store.get("c/missing")
    object_store.list("c/")
    object_store.delete_many(["c/1"])
    assert object_store.snapshot_requests() == {"PUT": 1, "GET": 2, "LIST": 1, "DELETE": 1}
    assert object_store.requests["PUT"] == 1 and object_store.requests.total == 5


def test_ensure_bucket_creates_and_tolerates_existing(s3_server: ObjectStoreProcess) -> None:  # noqa: F811
    store = ObjectStore(
        "keeldb-ensure-test",
        endpoint=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
    )
    store.ensure_bucket()
    store.ensure_bucket()
    store.put_if_absent("k", b"v")
    assert store.get("k") == b"v"


# -- the server itself -----------------------------------------------------------------------


def test_store_listens_on_loopback_only(s3_server: ObjectStoreProcess) -> None:  # noqa: F811
    if shutil.which("ss") is None:
        pytest.skip("ss (iproute2) is not installed")
    out = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True, check=True).stdout
    listening = {line.split()[3] for line in out.splitlines() if f"pid={s3_server.pid}," in line}
    assert listening, out
    assert listening == {f"127.0.0.1:{p}" for p in s3_server.ports.values()}


def test_sigkill_and_restart_keep_the_data(
    s3_server: ObjectStoreProcess,  # noqa: F811
    object_store: ObjectStore,  # noqa: F811
) -> None:
    object_store.put_if_absent("durable/1", b"acknowledged before the kill")
    s3_server.kill()
    assert not s3_server.alive

    # A dead store is an error within seconds, not a hang, and botocore's retries are
    # visible in the counters: three attempts of one PUT.
    object_store.requests.reset()
    began = time.monotonic()
    with pytest.raises(ObjectStoreError, match="durable/2"):
        object_store.put_if_absent("durable/2", b"x")
    assert time.monotonic() - began < 15
    assert object_store.snapshot_requests() == {"PUT": 3}

    endpoint = s3_server.endpoint
    s3_server.restart()
    assert s3_server.endpoint == endpoint
    assert object_store.get("durable/1") == b"acknowledged before the kill"
    object_store.put_if_absent("durable/2", b"after the restart")
    with pytest.raises(PositionTaken):
        object_store.put_if_absent("durable/1", b"a second writer")
    assert object_store.list("durable/") == ["durable/1", "durable/2"]
