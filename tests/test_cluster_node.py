"""Cluster nodes as separate processes (``keeldb serve --cluster ... --storage ...``) over a
real etcd and SeaweedFS, driven through pymilvus: routing, read replicas, failover and
fencing of a paused writer, each checked against a model of acknowledged writes."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymilvus import DataType, MilvusClient

from keeldb.cluster.etcd import Etcd
from keeldb.testing.ports import free_port
from keeldb.testing.testbed import ObjectStoreProcess
from tests.cluster_util import etcd_server, s3_server  # noqa: F401 - pytest fixtures

ROOT = Path(__file__).resolve().parents[1]
TTL = 2
DIM = 4


class Nodes:
    """Several ``keeldb serve`` processes forming one cluster."""

    def __init__(self, etcd: Etcd, s3: ObjectStoreProcess, root: Path) -> None:
        self.etcd, self.s3, self.root = etcd, s3, root
        self.storage = f"s3://{s3.bucket}/n-{uuid.uuid4().hex[:10]}"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.roles: dict[str, str] = {}

    def start(self, name: str, roles: str = "write,read", extra: tuple[str, ...] = ()) -> None:
        self.ports.setdefault(name, free_port())
        self.roles[name] = roles
        env = dict(os.environ, AWS_ACCESS_KEY_ID=self.s3.access_key, AWS_SECRET_ACCESS_KEY=self.s3.secret_key)
        env["PYTHONPATH"] = str(ROOT / "src")
        cmd = [
            sys.executable, "-m", "keeldb.cli", "serve", "--cluster", self.etcd.endpoint, "--storage", self.storage,
            "--s3-endpoint", self.s3.endpoint, "--data", str(self.root / name), "--port", str(self.ports[name]),
            "--node-id", name, "--roles", roles, "--lease-ttl", str(TTL), *extra,
        ]  # fmt: skip
        log = open(self.log(name), "ab")  # noqa: SIM115 - the child keeps it
        self.procs[name] = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while b"listening" not in self.log(name).read_bytes():
            assert self.procs[name].poll() is None, self.log(name).read_text()[-3000:]
            assert time.monotonic() < deadline, "node did not start"
            time.sleep(0.05)

    def log(self, name: str) -> Path:
        return self.root / f"{name}.log"

    def client(self, name: str, **auth: str) -> MilvusClient:
        return MilvusClient(uri=f"http://127.0.0.1:{self.ports[name]}", timeout=30, **auth)

    def stop(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGCONT)
                p.kill()
                p.wait(10)


@pytest.fixture
def nodes(etcd_server: Etcd, s3_server: ObjectStoreProcess, tmp_path: Path) -> Iterator[Nodes]:  # noqa: F811
    n = Nodes(etcd_server, s3_server, tmp_path)
    yield n
    n.stop()


def rows(keys: list[int], version: int) -> list[dict[str, Any]]:
    return [{"id": k, "vector": [float(version), float(k), 0.0, 1.0], "v": version} for k in keys]


def create(c: MilvusClient) -> None:
    schema = c.create_schema(enable_dynamic_field=False)
    schema.add_field("id", DataType.INT64, is_primary=True)
    schema.add_field("vector", DataType.FLOAT_VECTOR, dim=DIM)
    schema.add_field("v", DataType.INT64)
    idx = c.prepare_index_params()
    idx.add_index("vector", "FLAT", metric_type="L2")
    c.create_collection("c", schema=schema, index_params=idx, consistency_level="Strong")
    c.load_collection("c")


def count(c: MilvusClient) -> int:
    return int(c.query("c", filter="", output_fields=["count(*)"], consistency_level="Strong")[0]["count(*)"])


def state(c: MilvusClient) -> dict[int, int]:
    got = c.query("c", filter="id >= 0", output_fields=["id", "v"], limit=16384, consistency_level="Strong")
    return {r["id"]: r["v"] for r in got}


def metrics(n: Nodes, name: str) -> dict[str, Any]:
    import json

    import grpc
    from pymilvus.grpc_gen import milvus_pb2, milvus_pb2_grpc

    with grpc.insecure_channel(f"127.0.0.1:{n.ports[name]}") as ch:
        r = milvus_pb2_grpc.MilvusServiceStub(ch).GetMetrics(milvus_pb2.GetMetricsRequest(request="{}"), timeout=10)
    return dict(json.loads(r.response))


def test_every_node_answers_every_call_and_replicas_read_the_writes_they_did_not_see(nodes: Nodes) -> None:
    """Writes through any node land at the writer; a Strong read through any node — the
    writer, another writer-capable node, a read-only node — sees every acknowledged one,
    across flushes (a replica reloads on a new manifest, tails the log otherwise)."""
    for name, roles in (("a", "write,read"), ("b", "write,read"), ("r", "read")):
        nodes.start(name, roles)
    clients = {name: nodes.client(name) for name in ("a", "b", "r")}
    create(clients["r"])  # a read-only node can create; a writer-capable node takes the shard
    rng = random.Random(7)
    model: dict[int, int] = {}
    for version in range(1, 31):
        keys = rng.sample(range(200), 20)
        rng.choice(list(clients.values())).upsert("c", rows(keys, version))
        model.update(dict.fromkeys(keys, version))
        if version % 7 == 0:
            rng.choice(list(clients.values())).flush("c")
        if version % 5 == 0:
            doomed = rng.sample(sorted(model), 3)
            rng.choice(list(clients.values())).delete("c", ids=doomed)
            for k in doomed:
                model.pop(k)
        for name, c in clients.items():
            assert count(c) == len(model), (name, version)
        assert state(clients["r"]) == model
    clients["r"].flush_all()  # each collection flushed by its writer, wherever that is
    assert state(clients["b"]) == model
    job = clients["r"].compact("c")  # run by the writer; any node knows the job
    assert all(c.get_compaction_state(job) == "Completed" for c in clients.values())
    hits = clients["r"].search("c", [[30.0, 5.0, 0.0, 1.0]], limit=3, output_fields=["v"])[0]
    assert all(model.get(h["id"]) == h["entity"]["v"] for h in hits)
    owners = {name: metrics(nodes, name)["shards"] for name in clients}
    assert owners["r"] == [] and sorted(owners["a"] + owners["b"]) == ["c"], owners


def test_killed_writer_shard_moves_and_nothing_acknowledged_is_lost(nodes: Nodes) -> None:
    nodes.start("a")
    create(nodes.client("a"))
    nodes.start("b")
    nodes.start("r", "read")
    a, r = nodes.client("a"), nodes.client("r")
    a.upsert("c", rows(list(range(100)), 1))
    a.flush("c")
    r.upsert("c", rows(list(range(50, 150)), 2))  # routed to a; acknowledged, only in a's log
    assert metrics(nodes, "a")["shards"] == ["c"]
    nodes.procs["a"].kill()
    killed = time.monotonic()
    while True:
        try:
            r.upsert("c", rows([500], 3), timeout=3)
            break
        except Exception:  # noqa: BLE001 - the shard is moving
            assert time.monotonic() - killed < 10 * TTL, "the shard never moved"
            time.sleep(0.1)
    moved = time.monotonic() - killed
    assert moved < 4 * TTL + 5
    want = {**dict.fromkeys(range(50), 1), **dict.fromkeys(range(50, 150), 2), 500: 3}
    assert state(r) == want
    assert metrics(nodes, "b")["shards"] == ["c"] and metrics(nodes, "r")["shards"] == []


def test_paused_writer_is_fenced_and_says_so(nodes: Nodes) -> None:
    """SIGSTOP the writer past its lease: the shard moves, writes go on through the other
    node; SIGCONT: the old writer finds its lease gone, stops writing (and logs it), and a
    call sent to it is routed to the new writer. No acknowledged write is lost or doubled."""
    nodes.start("a")
    create(nodes.client("a"))
    nodes.start("b")
    a, b = nodes.client("a"), nodes.client("b")
    a.upsert("c", rows(list(range(100)), 1))
    nodes.procs["a"].send_signal(signal.SIGSTOP)
    deadline = time.monotonic() + 10 * TTL
    while True:
        try:
            b.upsert("c", rows(list(range(50)), 2), timeout=3)
            break
        except Exception:  # noqa: BLE001 - until a's lease expires and b takes the shard
            assert time.monotonic() < deadline, "the shard never moved off the paused writer"
            time.sleep(0.2)
    nodes.procs["a"].send_signal(signal.SIGCONT)
    a.upsert("c", rows([7], 3))  # to the resumed node: routed to b
    want = {**dict.fromkeys(range(100), 1), **dict.fromkeys(range(50), 2), 7: 3}
    assert state(a) == want and state(b) == want
    deadline = time.monotonic() + 10
    while b"stops writing c" not in nodes.log("a").read_bytes():
        assert time.monotonic() < deadline, nodes.log("a").read_text()[-2000:]
        time.sleep(0.1)
    assert metrics(nodes, "a")["shards"] == [] and metrics(nodes, "b")["shards"] == ["c"]


def test_catalog_calls_and_bad_input_through_any_node(nodes: Nodes) -> None:
    """Create, rename, drop and re-create through nodes that do not write the collection;
    a bad request forwarded to the writer comes back with Milvus's code and changes nothing."""
    from pymilvus.exceptions import MilvusException

    nodes.start("a")
    nodes.start("b")
    nodes.start("r", "read")
    a, b, r = nodes.client("a"), nodes.client("b"), nodes.client("r")
    create(r)
    b.upsert("c", rows(list(range(10)), 1))
    with pytest.raises(MilvusException) as bad:
        r.upsert("c", [{"id": 99, "vector": [1.0, 2.0], "v": 1}])  # wrong dimension
    assert bad.value.code == 1100
    with pytest.raises(MilvusException):
        r.upsert("c", rows([98], 1) + [{"id": 97, "vector": [float("nan")] * DIM, "v": 1}])
    assert count(a) == 10 and count(r) == 10
    r.rename_collection("c", "d")
    assert sorted(a.list_collections()) == ["d"] and b.has_collection("d") and not r.has_collection("c")
    assert int(r.query("d", filter="", output_fields=["count(*)"])[0]["count(*)"]) == 10
    b.drop_collection("d")
    assert a.list_collections() == [] and r.list_collections() == []
    create(a)
    assert count(r) == 0
    r.upsert("c", rows([1], 5))
    assert state(b) == {1: 5}


def test_a_forward_broken_mid_call_is_an_unknown_outcome_not_a_retry(nodes: Nodes) -> None:
    """The writer dies while a write forwarded to it is in flight: the forwarding node must
    answer code 65535 (outcome unknown), which pymilvus does not retry — not UNAVAILABLE,
    which it would retry into a double insert or a false "duplicate key" refusal."""
    import threading

    from pymilvus.exceptions import MilvusException

    nodes.start("a")
    create(nodes.client("a"))
    nodes.start("b", "read")  # never takes the shard: the write can only be forwarded
    b = nodes.client("b")
    b.upsert("c", rows([1], 1))
    nodes.procs["a"].send_signal(signal.SIGSTOP)
    got: list[BaseException | None] = []

    def write() -> None:
        try:
            b.insert("c", rows([2], 2), timeout=20)
            got.append(None)
        except BaseException as e:  # noqa: BLE001 - inspected below
            got.append(e)

    t = threading.Thread(target=write)
    t.start()
    time.sleep(1.0)  # the insert is now waiting in the stopped writer
    nodes.procs["a"].kill()
    t.join(30)
    assert len(got) == 1 and isinstance(got[0], MilvusException), got
    assert got[0].code == 65535 and "outcome unknown" in got[0].message, got[0]


def test_users_and_grants_are_the_clusters(nodes: Nodes) -> None:
    """--authorization on every node: users, roles and grants live in etcd beside the
    catalog, so one made through any node holds at every node -- a new user logs in
    elsewhere at once, a revoked role stops working elsewhere within a second -- and a call
    forwarded to the writer carries the caller's credentials, checked again there."""
    import grpc

    for name in ("a", "b"):
        nodes.start(name, extra=("--authorization",))
    root_a, root_b = nodes.client("a", token="root:Milvus"), nodes.client("b", token="root:Milvus")
    create(root_a)
    root_a.create_user("alice", "secret123")
    root_a.create_role("writer")
    root_a.grant_privilege_v2("writer", "CollectionReadWrite", "*")
    root_a.grant_role("alice", "writer")
    alice_b = nodes.client("b", user="alice", password="secret123")  # made through a, at b at once
    alice_b.insert("c", rows([1, 2], 1))  # forwarded to the writer, whichever node it is
    assert state(alice_b) == {1: 1, 2: 1}
    assert root_b.describe_user("alice")["roles"] == ("writer",)
    root_a.revoke_role("alice", "writer")  # through the other node
    deadline = time.monotonic() + 10
    while True:
        try:
            alice_b.insert("c", rows([3], 1))
        except grpc.RpcError as e:
            assert e.code() == grpc.StatusCode.PERMISSION_DENIED
            break
        assert time.monotonic() < deadline, "the revocation never reached node b"
        time.sleep(0.2)


def test_databases_and_aliases_through_any_node(nodes: Nodes) -> None:
    """A collection of another database, reached through an alias, routed to its writer
    from any node: the catalog key (database + name, alias resolved) is what routes."""
    for name in ("a", "b"):
        nodes.start(name)
    a = nodes.client("a")
    a.create_database("team")
    a.using_database("team")
    create(a)
    a.create_alias("c", "live")
    b = nodes.client("b", db_name="team")
    b.insert("live", rows([1, 2, 3], 1))  # through the alias, forwarded to c's writer
    assert state(b) == {1: 1, 2: 1, 3: 1}
    assert nodes.client("b").list_collections() == []  # default holds nothing
    b.upsert("live", rows([2], 2))
    assert state(a) == {1: 1, 2: 2, 3: 1}


def test_tls_between_nodes_with_client_certificates(nodes: Nodes) -> None:
    """Nodes serving TLS with --tls-ca forward to each other over mutual TLS, with the same
    certificates: each node's certificate is signed by the CA and presented when it calls
    another. A write through each node reaches the one writer, so at least one of them was
    forwarded; a client without a certificate gets nothing."""
    import grpc

    from keeldb.testing.certificates import self_signed

    ca_pem, _, ca_cert, ca_key = self_signed(nodes.root, "ca")
    tls = {}
    for name in ("a", "b"):
        cert, key, _, _ = self_signed(nodes.root, f"node-{name}", issuer=(ca_cert, ca_key))
        tls[name] = ("--tls-cert", str(cert), "--tls-key", str(key), "--tls-ca", str(ca_pem))
        nodes.start(name, extra=("--authorization", *tls[name]))
    client_cert, client_key, _, _ = self_signed(nodes.root, "client", issuer=(ca_cert, ca_key))

    def client(name: str) -> MilvusClient:
        return MilvusClient(
            uri=f"https://127.0.0.1:{nodes.ports[name]}", token="root:Milvus", timeout=30, ca_pem_path=str(ca_pem),
            client_pem_path=str(client_cert), client_key_path=str(client_key), server_name="localhost",
        )  # fmt: skip

    a, b = client("a"), client("b")
    create(a)
    a.insert("c", rows([1, 2], 1))
    b.insert("c", rows([3], 1))
    b.upsert("c", rows([1], 2))
    assert state(a) == state(b) == {1: 2, 2: 1, 3: 1}
    creds = grpc.ssl_channel_credentials(root_certificates=ca_pem.read_bytes())  # no client certificate
    anon = grpc.secure_channel(f"127.0.0.1:{nodes.ports['b']}", creds, [("grpc.ssl_target_name_override", "localhost")])
    with pytest.raises(grpc.RpcError) as e:
        anon.unary_unary("/milvus.proto.milvus.MilvusService/GetVersion")(b"", timeout=3)
    assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
