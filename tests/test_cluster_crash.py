"""The crash matrix again, over cluster storage: every crash point the cluster path passes
through, with the node killed there (SIGKILL) and recovery done by a NEW node on an EMPTY
local disk, which must produce exactly the model of acknowledged operations.

What differs from the embedded matrix is where "durable" is: a log record is acknowledged
after its object's conditional put; a manifest is committed by one etcd transaction; files
are uploaded before the manifest names them. The recovering node must also take the shard
over from the dead one (its lease expires first) and seal the dead writer's log.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from keeldb.cluster.etcd import Etcd
from keeldb.storage.crash import CRASH_POINTS
from keeldb.testing.testbed import ObjectStoreProcess
from tests.cluster_util import etcd_server, s3_server  # noqa: F401 - pytest fixtures
from tests.crash_workload import check, expected_states, observed_state, run_child

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The catalog is an etcd key in a cluster (one transaction, no file to crash around).
CLUSTER_POINTS = sorted(p for p in CRASH_POINTS if not p.startswith("catalog."))


@pytest.fixture
def cluster_env(etcd_server: Etcd, s3_server: ObjectStoreProcess, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:  # noqa: F811
    spec = {
        "etcd": etcd_server.endpoint,
        "storage": f"s3://{s3_server.bucket}/crash-{uuid.uuid4().hex[:10]}",
        "endpoint": s3_server.endpoint,
    }
    env = {
        "KEELDB_TEST_CLUSTER": json.dumps(spec),
        "AWS_ACCESS_KEY_ID": s3_server.access_key,
        "AWS_SECRET_ACCESS_KEY": s3_server.secret_key,
    }
    for k, v in env.items():
        monkeypatch.setenv(k, v)  # observed_state runs in this process
    return env


@pytest.mark.parametrize("point", CLUSTER_POINTS)
def test_cluster_crash_at_point(tmp_path: Path, point: str, cluster_env: dict[str, str]) -> None:
    data, journal = tmp_path / "db", tmp_path / "journal"
    rc = run_child(data, journal, f"{point}:1", cluster_env)
    assert rc == -9, f"crash point {point} was never reached by the cluster workload"
    check(data, journal)
    check(data, journal)  # and again, by yet another node on yet another empty disk


def test_cluster_workload_without_crash(tmp_path: Path, cluster_env: dict[str, str]) -> None:
    data, journal = tmp_path / "db", tmp_path / "journal"
    assert run_child(data, journal, None, cluster_env) == 0
    states, done = expected_states(journal)
    assert done
    assert observed_state(data) == states[0]
