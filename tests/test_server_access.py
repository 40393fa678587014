"""Users, roles, privileges and TLS through pymilvus against ``keeldb serve``.

The privilege matrix is written out by hand from Milvus's privilege table and its
documentation of the built-in privilege groups (not computed from keeldb's tables): every
RPC keeldb serves, tried by a user holding each group, each single privilege, and nothing;
a call is refused exactly when Milvus refuses it (gRPC PERMISSION_DENIED), and any other
outcome (success, or a Milvus status such as "collection not found") means the privilege
check let it through.
"""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.message_factory import GetMessageClass
from pymilvus import DataType, MilvusClient
from pymilvus.grpc_gen import common_pb2, milvus_pb2, milvus_pb2_grpc

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


# -- the privilege matrix: every RPC keeldb serves, against every built-in group ----------

# Milvus's privilege table (milvus.proto's privilege_ext_obj on each request; its docs list
# the same): the privilege each RPC needs, written out by hand. Every RPC keeldb serves must
# be here -- a new one fails test_every_served_rpc_needs_milvus_privilege until it is added.
UNCHECKED = ("HasCollection", "ShowCollections", "GetFlushAllState", "GetReplicas", "GetCompactionState",
             "GetVersion", "CheckHealth", "Connect", "AllocTimestamp", "ListDatabases", "RunAnalyzer")  # fmt: skip
NEEDS: dict[str, tuple[str, ...]] = {  # privilege: the RPCs that need it
    "CreateCollection": ("CreateCollection", "AlterCollection", "AlterCollectionField"),
    "DropCollection": ("DropCollection",),
    "DescribeCollection": ("DescribeCollection",),
    "Load": ("LoadCollection", "LoadPartitions"),
    "Release": ("ReleaseCollection", "ReleasePartitions"),
    "GetStatistics": ("GetCollectionStatistics", "GetPartitionStatistics"),
    "CreatePartition": ("CreatePartition",),
    "DropPartition": ("DropPartition",),
    "HasPartition": ("HasPartition",),
    "ShowPartitions": ("ShowPartitions",),
    "GetLoadState": ("GetLoadState", "GetLoadingProgress"),
    "CreateAlias": ("CreateAlias", "AlterAlias"),
    "DropAlias": ("DropAlias",),
    "DescribeAlias": ("DescribeAlias",),
    "ListAliases": ("ListAliases",),
    "CreateIndex": ("CreateIndex", "AlterIndex"),
    "IndexDetail": ("DescribeIndex",),
    "DropIndex": ("DropIndex",),
    "Insert": ("Insert",),
    "Delete": ("Delete",),
    "Upsert": ("Upsert",),
    "Search": ("Search", "HybridSearch"),
    "Query": ("Query",),
    "Flush": ("Flush",),
    "FlushAll": ("FlushAll",),
    "AddCollectionField": ("AddCollectionField",),
    "GetFlushState": ("GetFlushState",),
    "Compaction": ("ManualCompaction",),
    "CreateOwnership": ("CreateCredential", "CreateRole"),
    "DropOwnership": ("DeleteCredential", "DropRole"),
    "UpdateUser": ("UpdateCredential",),
    "SelectOwnership": ("ListCredUsers", "SelectRole", "SelectGrant"),
    "SelectUser": ("SelectUser",),
    "ManageOwnership": ("OperateUserRole", "OperatePrivilege", "OperatePrivilegeV2"),
    "ListResourceGroups": ("ListResourceGroups",),
    "DescribeResourceGroup": ("DescribeResourceGroup",),
    "RenameCollection": ("RenameCollection",),
    "CreateDatabase": ("CreateDatabase",),
    "DropDatabase": ("DropDatabase",),
    "AlterDatabase": ("AlterDatabase",),
    "DescribeDatabase": ("DescribeDatabase",),
    "CreatePrivilegeGroup": ("CreatePrivilegeGroup",),
    "DropPrivilegeGroup": ("DropPrivilegeGroup",),
    "ListPrivilegeGroups": ("ListPrivilegeGroups",),
    "OperatePrivilegeGroup": ("OperatePrivilegeGroup",),
}
NEED = {rpc: privilege for privilege, rpcs in NEEDS.items() for rpc in rpcs} | dict.fromkeys(UNCHECKED)
PUBLIC = {"DescribeCollection", "ListAliases", "IndexDetail"}  # public's default grants: everyone holds them

# Milvus's built-in privilege groups, as its documentation lists them, and where each is granted.
_COLL_RO = {"Query", "Search", "IndexDetail", "GetFlushState", "GetLoadState", "GetLoadingProgress", "HasPartition",
            "ShowPartitions", "DescribeCollection", "DescribeAlias", "GetStatistics", "ListAliases"}  # fmt: skip
_COLL_RW = _COLL_RO | {"Load", "Release", "Insert", "Delete", "Upsert", "Import", "Flush", "Compaction", "LoadBalance",
                       "CreateIndex", "DropIndex", "CreatePartition", "DropPartition", "AddCollectionField"}  # fmt: skip
_DB_RO = {"ShowCollections", "DescribeDatabase"}
_DB_ADMIN = _DB_RO | {"AlterDatabase", "CreateCollection", "DropCollection"}
_CLUSTER_RO = {"ListDatabases", "SelectOwnership", "SelectUser", "DescribeResourceGroup", "ListResourceGroups",
               "ListPrivilegeGroups"}  # fmt: skip
_CLUSTER_RW = _CLUSTER_RO | {"FlushAll", "TransferNode", "TransferReplica", "UpdateResourceGroups"}
GROUPS: dict[str, tuple[tuple[str, str], set[str]]] = {  # group: ((collection, db) granted on, privileges)
    "CollectionReadOnly": (("*", "default"), _COLL_RO),
    "CollectionReadWrite": (("*", "default"), _COLL_RW),
    "CollectionAdmin": (("*", "default"), _COLL_RW | {"CreateAlias", "DropAlias"}),
    "DatabaseReadOnly": (("*", "default"), _DB_RO),
    "DatabaseReadWrite": (("*", "default"), _DB_RO | {"AlterDatabase"}),
    "DatabaseAdmin": (("*", "default"), _DB_ADMIN),
    "ClusterReadOnly": (("*", "*"), _CLUSTER_RO),
    "ClusterReadWrite": (("*", "*"), _CLUSTER_RW),
    "ClusterAdmin": (("*", "*"), _CLUSTER_RW | {"BackupRBAC", "RestoreRBAC", "CreateDatabase", "DropDatabase",
                                                "CreateOwnership", "DropOwnership", "ManageOwnership",
                                                "CreateResourceGroup", "DropResourceGroup", "UpdateUser",
                                                "RenameCollection", "CreatePrivilegeGroup", "DropPrivilegeGroup",
                                                "OperatePrivilegeGroup"}),  # fmt: skip
}


def served_rpcs() -> list[str]:
    """The MilvusService RPCs keeldb answers (not with its "not supported" status)."""
    from keeldb.server.service import Service

    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    return [m.name for m in service.methods if getattr(Service, m.name).__module__ != "keeldb.server.unimplemented"]


def proto_privilege(rpc: str) -> str | None:
    """The privilege milvus.proto declares for ``rpc`` (read here, not through keeldb)."""
    method = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"].methods_by_name[rpc]
    opts = method.input_type.GetOptions()
    if not opts.HasExtension(common_pb2.privilege_ext_obj):
        return None
    e = opts.Extensions[common_pb2.privilege_ext_obj]
    return str(common_pb2.ObjectPrivilege.Name(e.object_privilege)).removeprefix("Privilege")


@pytest.mark.parametrize("rpc", served_rpcs())
def test_every_served_rpc_needs_milvus_privilege(rpc: str) -> None:
    from keeldb.access.privileges import requirements

    assert rpc in NEED, f"{rpc} is served but the matrix has no expectation for it: add it to NEEDS or UNCHECKED"
    assert NEED[rpc] == proto_privilege(rpc), f"{rpc}: Milvus's table says {proto_privilege(rpc)}"
    need = requirements().get(rpc)
    assert (need.privilege if need else None) == NEED[rpc]


# What each request names (objects that do not exist, or the caller's own new ones), so that
# whatever the check lets through changes nothing another call sees.
_NAMES = {"collection_name": "absent", "partition_name": "p_absent", "alias": "ghost_alias", "username": "ghost",
          "role_name": "ghost_role", "group_name": "ghost_group", "oldName": "absent", "db_name": "default"}  # fmt: skip
_NEW = {"CreateCollection": "collection_name", "CreateDatabase": "db_name", "CreatePrivilegeGroup": "group_name",
        "CreateCredential": "username", "RenameCollection": "newName"}  # fmt: skip
_ENTITIES = {"CreateRole": "entity", "SelectRole": "role", "SelectUser": "user", "SelectGrant": "entity.role",
             "OperatePrivilege": "entity.role", "OperatePrivilegeV2": "role"}  # fmt: skip


def request_for(rpc: str, me: str) -> Any:
    """A request for ``rpc`` by user ``me`` (see _NAMES)."""
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    req = GetMessageClass(service.methods_by_name[rpc].input_type)()
    fields = req.DESCRIPTOR.fields_by_name
    for name, value in _NAMES.items():
        f = fields.get(name)
        if f is not None and f.type == f.TYPE_STRING and not f.is_repeated:
            setattr(req, name, value)
    if "collection_names" in fields:
        req.collection_names.append("absent")
    if rpc in _NEW:
        setattr(req, _NEW[rpc], f"new_{me}".lower())
    if rpc == "CreateCredential":
        req.password = base64.b64encode(b"secret123").decode()
    if rpc == "DropDatabase":
        req.db_name = "ghost_db"  # AlterDatabase of default without properties changes nothing
    if rpc in _ENTITIES:
        entity = req
        for part in _ENTITIES[rpc].split("."):
            entity = getattr(entity, part)
        entity.name = f"role_{me}" if rpc == "CreateRole" else "ghost_role"
    return req


def test_privilege_matrix_over_every_rpc() -> None:
    """Each served RPC, raw over gRPC, by a user whose one role holds in turn each built-in
    group, each single privilege, and nothing: refused (PERMISSION_DENIED) exactly when
    Milvus refuses it; any other answer (success, or a status such as "collection not
    found") means the check let it through."""
    with KeelServer(extra_args=AUTHZ) as srv:
        root = MilvusClient(uri=srv.uri, token=ROOT)
        root.create_user("u", "secret123")
        root.create_role("r")
        root.grant_role("u", "r")
        holders: dict[str, tuple[tuple[str, str], set[str]]] = {"nothing": (("*", "*"), set()), **GROUPS}
        for privilege in NEEDS:  # just this privilege, granted where its level says
            level = [where for where, privileges in GROUPS.values() if privilege in privileges]
            holders[privilege] = (level[-1] if level else ("*", "default"), {privilege})
        channel = grpc.insecure_channel(f"{srv.host}:{srv.port}")
        stub = milvus_pb2_grpc.MilvusServiceStub(channel)
        metadata = (("authorization", base64.b64encode(b"u:secret123").decode()), ("dbname", "default"))
        wrong = []
        for holder, ((coll, db), privileges) in holders.items():
            if privileges:
                root.grant_privilege_v2("r", holder, coll, db_name=db)
            for rpc in served_rpcs():
                want_denied = NEED[rpc] is not None and NEED[rpc] not in privileges | PUBLIC
                try:
                    getattr(stub, rpc)(request_for(rpc, holder), metadata=metadata, timeout=30)
                    got_denied = False
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.PERMISSION_DENIED:
                        raise
                    got_denied = True
                if got_denied != want_denied:
                    wrong.append(f"{holder} {rpc} ({NEED[rpc]}): {'denied' if want_denied else 'allowed'} in Milvus")
            if privileges:
                root.revoke_privilege_v2("r", holder, coll, db_name=db)
        channel.close()
        assert not wrong, "\n".join(wrong)
        # Root may do everything; a grant on one collection does not reach another.
        root.create_collection("c", dimension=2)
        root.create_collection("d", dimension=2)
        root.grant_privilege_v2("r", "Query", "c")
        u = MilvusClient(uri=srv.uri, user="u", password="secret123")
        assert u.query("c", filter="id >= 0") == []
        assert denied(lambda: u.query("d", filter="id >= 0", limit=1))


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
        assert alice.describe_user("alice")["user_name"] == "alice"  # one's own user: no privilege needed
        assert denied(lambda: alice.describe_user("root"))
        alice.update_password("alice", "newsecret", "mine123")  # nor one's own password
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
