"""Users, roles, privileges and TLS through pymilvus against ``keeldb serve``.

The privilege matrix is written out by hand from Milvus's documentation of its built-in
privilege groups (not computed from keeldb's tables): one user per group, each trying the
same calls; a call is refused exactly when Milvus refuses it (gRPC PERMISSION_DENIED), and
any other outcome (success, or a Milvus status such as "not supported") means the privilege
check let it through.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import grpc
import pytest
from pymilvus import DataType, MilvusClient

from keeldb.testing.certificates import self_signed
from tests.server_util import KeelServer, kill_and_restart

ROOT = "root:Milvus"
AUTHZ = ["--authorization"]


def denied(call: Callable[[], object]) -> bool:
    """Whether the server refused ``call`` for lack of a privilege."""
    try:
        call()
    except grpc.RpcError as e:
        if e.code() == grpc.StatusCode.PERMISSION_DENIED:
            return True
        raise
    except Exception:  # noqa: BLE001 - a Milvus status: the check let the call through
        return False
    return False


def unauthenticated(call: Callable[[], object]) -> str:
    """The message of the UNAUTHENTICATED refusal ``call`` must get (pymilvus's connect wraps
    it in a MilvusException; later calls raise the gRPC error)."""
    try:
        call()
    except grpc.RpcError as e:
        assert e.code() == grpc.StatusCode.UNAUTHENTICATED, e
        return str(e.details())
    except Exception as e:  # noqa: BLE001
        assert "illegal connection params" in str(e) or "auth" in str(e), e
        return "connect refused"
    raise AssertionError("the call was accepted")


def _schema() -> object:
    """A schema alone: create_collection(dimension=...) also creates an index and loads,
    which need collection privileges of their own."""
    s = MilvusClient.create_schema()
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("vector", DataType.FLOAT_VECTOR, dim=2)
    return s


# The calls of the matrix, by the privilege Milvus checks (as its docs list them per group).
def calls(c: MilvusClient, me: str) -> dict[str, Callable[[], object]]:
    return {
        "Query": lambda: c.query("c", filter="id >= 0", limit=1),
        "Search": lambda: c.search("c", [[0.1, 0.2]], limit=1),
        "GetLoadState": lambda: c.get_load_state("c"),
        "HasPartition": lambda: c.has_partition("c", "_default"),
        "ShowPartitions": lambda: c.list_partitions("c"),
        "GetStatistics": lambda: c.get_collection_stats("c"),
        "Insert": lambda: c.insert("c", [{"id": 1000 + len(me), "vector": [0.0, 1.0]}]),
        "Upsert": lambda: c.upsert("c", [{"id": 2000 + len(me), "vector": [0.0, 1.0]}]),
        "Delete": lambda: c.delete("c", ids=[999_999]),
        "Flush": lambda: c.flush("c"),
        "CreatePartition": lambda: c.create_partition("c", f"p_{me}"),
        "Load": lambda: c.load_collection("c"),
        "CreateAlias": lambda: c.create_alias("c", f"a_{me}"),
        "DescribeDatabase": lambda: c.describe_database("default"),
        "CreateCollection": lambda: c.create_collection(f"new_{me}", schema=_schema()),
        "SelectUser": lambda: c.describe_user("root"),
        "ListPrivilegeGroups": lambda: c.list_privilege_groups(),
        "CreateOwnership": lambda: c.create_user(f"made_by_{me}", "secret123"),
        "CreatePrivilegeGroup": lambda: c.create_privilege_group(f"g_{me}"),
        "RenameCollection": lambda: c.rename_collection("nonexistent", f"renamed_{me}"),
        # public's defaults: every user may
        "DescribeCollection": lambda: c.describe_collection("c"),
        "IndexDetail": lambda: c.list_indexes("c"),
        # no privilege checked by Milvus at all
        "ShowCollections": lambda: c.list_collections(),
        "ListDatabases": lambda: c.list_databases(),
    }


EVERYONE = {"DescribeCollection", "IndexDetail", "ShowCollections", "ListDatabases"}
COLLECTION_RO = {"Query", "Search", "GetLoadState", "HasPartition", "ShowPartitions", "GetStatistics"}
COLLECTION_RW = COLLECTION_RO | {"Insert", "Upsert", "Delete", "Flush", "CreatePartition", "Load"}
ALLOWED = {
    # group: (grant_privilege_v2's collection_name, db_name), what it allows
    "CollectionReadOnly": (("c", "default"), COLLECTION_RO),
    "CollectionReadWrite": (("*", "default"), COLLECTION_RW),
    "CollectionAdmin": (("*", "default"), COLLECTION_RW | {"CreateAlias"}),
    "DatabaseReadOnly": (("*", "default"), {"DescribeDatabase"}),
    "DatabaseReadWrite": (("*", "default"), {"DescribeDatabase"}),
    "DatabaseAdmin": (("*", "default"), {"DescribeDatabase", "CreateCollection"}),
    "ClusterReadOnly": (("*", "*"), {"SelectUser", "ListPrivilegeGroups"}),
    "ClusterReadWrite": (("*", "*"), {"SelectUser", "ListPrivilegeGroups"}),
    "ClusterAdmin": (("*", "*"), {"SelectUser", "ListPrivilegeGroups", "CreateOwnership", "CreatePrivilegeGroup",
                                  "RenameCollection"}),  # fmt: skip
}


def test_privilege_matrix() -> None:
    with KeelServer(extra_args=AUTHZ) as srv:
        root = MilvusClient(uri=srv.uri, token=ROOT)
        root.create_collection("c", dimension=2)
        users = {}
        for group, ((coll, db), _) in ALLOWED.items():
            user = f"u_{group}"
            root.create_user(user, "secret123")
            root.create_role(f"r_{group}")
            root.grant_privilege_v2(f"r_{group}", group, coll, db_name=db)
            root.grant_role(user, f"r_{group}")
            users[group] = MilvusClient(uri=srv.uri, user=user, password="secret123")
        nobody = root.create_user("nobody", "secret123") or MilvusClient(uri=srv.uri, user="nobody", password="secret123")
        wrong = []
        for group, (_, allowed) in [*ALLOWED.items(), ("(no role)", (None, set()))]:
            c = users.get(group, nobody)
            for privilege, call in calls(c, group.replace("(no role)", "none")).items():
                want_denied = privilege not in allowed | EVERYONE
                if denied(call) != want_denied:
                    wrong.append(f"{group} {privilege}: {'denied' if want_denied else 'allowed'} in Milvus")
        assert not wrong, "\n".join(wrong)
        # Root may do everything; a grant on one collection does not reach another.
        assert not denied(lambda: root.create_collection("d", dimension=2))
        assert denied(lambda: users["CollectionReadOnly"].query("d", filter="id >= 0", limit=1))


def test_list_collections_and_databases_show_what_the_user_holds_grants_on() -> None:
    """Milvus's rule: ShowCollections lists the collections one of the user's own roles
    (not public) has a Collection grant or collection-level group on, all of them for
    root, admin and a global All; ListDatabases the databases those roles hold grants in."""
    with KeelServer(extra_args=AUTHZ) as srv:
        root = MilvusClient(uri=srv.uri, token=ROOT)
        root.create_database("other")
        for name in ("a", "b"):
            root.create_collection(name, schema=_schema())
        MilvusClient(uri=srv.uri, token=ROOT, db_name="other").create_collection("x", schema=_schema())
        root.create_privilege_group("loaders")
        root.add_privileges_to_group("loaders", ["Load"])
        grants = {
            "none": [],
            "ro_a": [("CollectionReadOnly", "a", "default")],
            "custom_b": [("loaders", "b", "default")],
            "query_all": [("Query", "*", "default")],
            "db_ro": [("DatabaseReadOnly", "*", "default")],
            "other_ro": [("CollectionReadOnly", "*", "other")],
            "everything": [("*", "*", "*")],
        }
        for user, gs in grants.items():
            root.create_user(user, "secret123")
            root.create_role(f"r_{user}")
            root.grant_role(user, f"r_{user}")
            for privilege, coll, db in gs:
                root.grant_privilege_v2(f"r_{user}", privilege, coll, db_name=db)
        root.create_user("adm", "secret123")
        root.grant_role("adm", "admin")

        def seen(user: str) -> tuple[list[str], list[str], list[str]]:
            login = {"token": ROOT} if user == "root" else {"user": user, "password": "secret123"}
            here, other = (MilvusClient(uri=srv.uri, db_name=db, **login) for db in ("default", "other"))
            return sorted(here.list_collections()), sorted(other.list_collections()), sorted(here.list_databases())

        want = {  # user: (collections of default, collections of other, databases)
            "none": ([], [], []),
            "ro_a": (["a"], [], ["default"]),
            "custom_b": (["b"], [], ["default"]),
            "query_all": (["a", "b"], [], ["default"]),
            "db_ro": ([], [], ["default"]),
            "other_ro": ([], ["x"], ["other"]),
            "everything": (["a", "b"], ["x"], ["default", "other"]),
            "adm": (["a", "b"], ["x"], ["default", "other"]),
            "root": (["a", "b"], ["x"], ["default", "other"]),
        }
        assert {u: seen(u) for u in want} == want
        root.revoke_privilege_v2("r_ro_a", "CollectionReadOnly", "a", db_name="default")
        assert seen("ro_a") == ([], [], [])


def test_login_failures_say_the_same_thing() -> None:
    with KeelServer(extra_args=AUTHZ) as srv:
        root = MilvusClient(uri=srv.uri, token=ROOT)
        root.create_user("alice", "secret123")
        root.create_role("reader")
        root.create_collection("c", dimension=2)
        root.grant_privilege_v2("reader", "CollectionReadOnly", "c")
        root.grant_role("alice", "reader")
        for user, password in (("alice", "wrong-one"), ("mallory", "secret123"), ("root", "milvus")):
            assert unauthenticated(lambda u=user, p=password: MilvusClient(uri=srv.uri, user=u, password=p)) == "connect refused"
        stub_calls = grpc.insecure_channel(f"{srv.host}:{srv.port}")
        stub = stub_calls.unary_unary("/milvus.proto.milvus.MilvusService/ShowCollections")
        with pytest.raises(grpc.RpcError) as e:
            stub(b"")
        assert e.value.code() == grpc.StatusCode.UNAUTHENTICATED and e.value.details() == "missing authorization in header"
        alice = MilvusClient(uri=srv.uri, user="alice", password="secret123")
        assert alice.query("c", filter="id >= 0") == []
        root.revoke_role("alice", "reader")  # a revoked role: refused at the next call
        assert denied(lambda: alice.query("c", filter="id >= 0"))
        root.grant_role("alice", "reader")
        assert not denied(lambda: alice.query("c", filter="id >= 0"))
        root.update_password("alice", "secret123", "newsecret")  # the session "expires"
        msg = unauthenticated(lambda: alice.query("c", filter="id >= 0"))
        assert msg == "auth check failure, please check username and password are correct"
        alice = MilvusClient(uri=srv.uri, user="alice", password="newsecret")
        assert alice.query("c", filter="id >= 0") == []
        alice.update_password("alice", "newsecret", "mine123")  # one's own password: no privilege needed
        root.drop_user("alice")
        assert unauthenticated(lambda: alice.query("c", filter="id >= 0")).startswith("auth check failure")


def test_users_and_grants_survive_restart_and_kill(tmp_path: Path) -> None:
    with KeelServer(tmp_path / "d", extra_args=AUTHZ) as srv:
        root = MilvusClient(uri=srv.uri, token=ROOT)
        root.create_user("alice", "secret123")
        root.create_role("writer")
        root.grant_privilege_v2("writer", "CollectionReadWrite", "*")
        root.grant_role("alice", "writer")
        root.update_password("root", "Milvus", "rootpass1")
        kill_and_restart(srv)
        MilvusClient(uri=srv.uri, token="root:rootpass1").create_collection("c", dimension=2)
        alice = MilvusClient(uri=srv.uri, user="alice", password="secret123")
        alice.insert("c", [{"id": 1, "vector": [1.0, 0.0]}])
        assert denied(lambda: alice.drop_collection("c"))
        assert unauthenticated(lambda: MilvusClient(uri=srv.uri, token=ROOT).list_collections()) in (
            "connect refused", "auth check failure, please check username and password are correct")


def serve_line(*args: object, env: dict[str, str] | None = None) -> str:
    """The one line ``keeldb serve`` prints when it refuses to start."""
    r = subprocess.run(
        [sys.executable, "-m", "keeldb.cli", "serve", "--port", "0", *map(str, args)],
        capture_output=True, text=True, timeout=60, env={**os.environ, **(env or {})},
    )  # fmt: skip
    assert r.returncode != 0, r.stdout
    return (r.stderr or r.stdout).strip().splitlines()[-1]


def test_a_network_address_needs_authorization(tmp_path: Path) -> None:
    line = serve_line("--data", tmp_path / "a", "--host", "0.0.0.0")
    assert "refusing to listen on 0.0.0.0 without --authorization" in line
    line = serve_line("--data", tmp_path / "b", "--host", "0.0.0.0", "--authorization")
    assert "needs --root-password" in line and "'Milvus' is public" in line
    assert not (tmp_path / "a").exists()


def test_tls_round_trip_and_client_certificates(tmp_path: Path) -> None:
    cert, key, ca_cert, ca_key = self_signed(tmp_path, "server")
    tls = ["--tls-cert", cert, "--tls-key", key]
    with KeelServer(extra_args=[*AUTHZ, *map(str, tls)]) as srv:
        c = MilvusClient(uri=f"https://localhost:{srv.port}", token=ROOT, server_pem_path=str(cert),
                         server_name="localhost")  # fmt: skip
        c.create_collection("c", dimension=2)
        c.insert("c", [{"id": 1, "vector": [1.0, 0.0]}])
        assert c.query("c", filter="id == 1", output_fields=["id"]) == [{"id": 1}]
        plain = grpc.insecure_channel(f"localhost:{srv.port}").unary_unary("/milvus.proto.milvus.MilvusService/GetVersion")
        with pytest.raises(grpc.RpcError) as e:  # plaintext against TLS never gets an answer
            plain(b"", timeout=3)
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
    # --tls-ca: only clients with a certificate signed by that CA get in.
    client_cert, client_key, _, _ = self_signed(tmp_path, "client", issuer=(ca_cert, ca_key))
    with KeelServer(extra_args=[*map(str, tls), "--tls-ca", str(cert)]) as srv:
        c = MilvusClient(uri=f"https://localhost:{srv.port}", secure=True, server_name="localhost",
                         client_pem_path=str(client_cert), client_key_path=str(client_key), ca_pem_path=str(cert))  # fmt: skip
        assert c.list_collections() == []
        creds = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())  # no client certificate
        opts = [("grpc.ssl_target_name_override", "localhost")]
        anon = grpc.secure_channel(f"localhost:{srv.port}", creds, opts)
        with pytest.raises(grpc.RpcError) as e:
            anon.unary_unary("/milvus.proto.milvus.MilvusService/GetVersion")(b"", timeout=3)
        assert e.value.code() in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
