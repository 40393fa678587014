"""Users, roles and privileges (keeldb/access) without a server: Milvus's rules for each
change, the check, the privilege table read from the protos, passwords, and the embedded
client's pymilvus-shaped calls persisting through the catalog."""

from __future__ import annotations

from pathlib import Path

import pytest

import keeldb
from keeldb.access import privileges as P
from keeldb.access.passwords import hash_password, verify_password
from keeldb.access.state import ADMIN, PUBLIC, ROOT, AccessError, AccessState, Grant
from keeldb.errors import KeelError


def fresh() -> AccessState:
    return AccessState.from_dict({}).initialize("Milvus")


def test_the_privilege_table_is_milvus_own() -> None:
    req = P.requirements()
    assert (req["Search"].object_type, req["Search"].privilege) == ("Collection", "Search")
    assert (req["CreateCollection"].object_type, req["CreateCollection"].privilege) == ("Global", "CreateCollection")
    assert (req["UpdateCredential"].object_type, req["UpdateCredential"].privilege) == ("User", "UpdateUser")
    assert req["Flush"].names_field == 3  # Flush names several collections
    for unchecked in ("Connect", "GetVersion", "CheckHealth", "ShowCollections", "ListDatabases", "HasCollection"):
        assert unchecked not in req
    # Every member of a built-in group is a privilege Milvus defines.
    for members in P.BUILTIN_GROUPS.values():
        assert set(members) <= P.privilege_names()


def test_passwords_are_salted_hashes_checked_exactly() -> None:
    a, b = hash_password("secret123", n=1 << 10), hash_password("secret123", n=1 << 10)
    assert a != b and "secret123" not in a
    assert verify_password("secret123", a) and not verify_password("secret124", a)
    assert not verify_password("secret123", "garbage") and not verify_password("x", "scrypt$1$2$3$!!$!!")


def test_user_rules() -> None:
    s = fresh().create_user("alice", "secret123")
    assert s.authenticate("alice", "secret123") and not s.authenticate("alice", "wrong!!")
    assert not s.authenticate("nobody", "secret123")
    with pytest.raises(AccessError, match="user already exists: alice"):
        s.create_user("alice", "another1")
    for bad in ("", "1abc", "a b", "a" * 33, "ä"):
        with pytest.raises(KeelError, match="invalid username"):
            s.create_user(bad, "secret123")
    with pytest.raises(KeelError, match="invalid password length"):
        s.create_user("bob", "short")
    with pytest.raises(AccessError, match="root user cannot be deleted"):
        s.drop_user(ROOT)
    assert s.drop_user("nobody") is s  # Milvus: dropping an unknown user succeeds
    with pytest.raises(AccessError, match="old password not correct"):
        s.update_password("alice", "wrong!!", "newsecret")
    t = s.update_password("alice", "secret123", "newsecret")
    assert t.authenticate("alice", "newsecret") and not t.authenticate("alice", "secret123")


def test_role_rules() -> None:
    s = fresh().create_user("alice", "secret123").create_role("reader")
    assert s.role_names() == [ADMIN, PUBLIC, "reader"]
    with pytest.raises(AccessError, match="already exists"):
        s.create_role("reader")
    with pytest.raises(AccessError, match="already exists"):
        s.create_role("admin")
    for role in (ADMIN, PUBLIC):
        with pytest.raises(AccessError, match="default role"):
            s.drop_role(role)
    s = s.grant_role("alice", "reader").grant(Grant("reader", "Collection", "c", "default", "Query"))
    with pytest.raises(AccessError, match="force_drop"):
        s.drop_role("reader")
    t = s.drop_role("reader", force=True)
    assert t.role_names() == [ADMIN, PUBLIC] and t.users["alice"].roles == () and not t.grants_of("reader")
    with pytest.raises(AccessError, match="not found the role"):
        s.grant_role("alice", "nope")
    with pytest.raises(AccessError, match="not found the user"):
        s.grant_role("nobody", "reader")
    with pytest.raises(KeelError, match="not found the privilege name"):
        s.grant(Grant("reader", "Collection", "c", "default", "Teleport"))


def test_the_check() -> None:
    s = fresh().create_user("alice", "secret123").create_role("reader").grant_role("alice", "reader")
    s = s.grant(Grant("reader", "Collection", "c", "default", "PrivilegeQuery"))  # the proto's spelling too
    assert s.allows("alice", "Collection", "c", "default", "Query")
    assert not s.allows("alice", "Collection", "d", "default", "Query")  # another collection
    assert not s.allows("alice", "Collection", "c", "other", "Query")  # another database
    assert not s.allows("alice", "Collection", "c", "default", "Insert")
    assert s.allows("alice", "Global", "*", "default", "DescribeCollection")  # public's default
    assert s.allows(ROOT, "Global", "*", "x", "DropDatabase")  # root: everything
    assert not s.allows("nobody", "Collection", "c", "default", "IndexDetail")
    g = s.grant(Grant("reader", "Collection", "*", "*", "CollectionReadWrite"))
    assert g.allows("alice", "Collection", "d", "other", "Insert") and not g.allows("alice", "Global", "*", "d", "CreateCollection")
    a = s.create_user("bob", "secret123").grant_role("bob", ADMIN)
    assert a.allows("bob", "Global", "*", "default", "CreateOwnership")
    r = s.revoke(Grant("reader", "Collection", "c", "default", "Query"))
    assert not r.allows("alice", "Collection", "c", "default", "Query")


def test_custom_privilege_groups() -> None:
    s = fresh().create_role("r").create_group("readers")
    with pytest.raises(AccessError, match="already exists"):
        s.create_group("readers")
    with pytest.raises(AccessError, match="built in"):
        s.create_group("CollectionAdmin")
    with pytest.raises(KeelError, match="not found the privilege name"):
        s.change_group("readers", ["Query", "Fly"], add=True)
    s = s.change_group("readers", ["Query", "Search", "Query"], add=True)
    assert s.groups["readers"] == ("Query", "Search")
    s = s.create_user("u", "secret123").grant_role("u", "r").grant(Grant("r", "Collection", "c", "default", "readers"))
    assert s.allows("u", "Collection", "c", "default", "Search")
    with pytest.raises(AccessError, match="revoke it first"):
        s.drop_group("readers")
    s = s.change_group("readers", ["Search"], add=False)
    assert not s.allows("u", "Collection", "c", "default", "Search")


def test_embedded_calls_persist_in_the_catalog(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path / "d"))
    c.create_user("alice", "secret123")
    c.create_role("reader")
    c.grant_role("alice", "reader")
    c.grant_privilege_v2("reader", "CollectionReadOnly", "docs", db_name="default")
    c.grant_privilege("reader", "Global", "DescribeCollection", "*")
    c.create_privilege_group("mine")
    c.add_privileges_to_group("mine", ["Query", "Insert"])
    with pytest.raises(KeelError, match="cluster-level"):
        c.grant_privilege_v2("reader", "ClusterAdmin", "docs")
    c.close()
    c = keeldb.Client(str(tmp_path / "d"))
    assert c.list_users() == ["alice"]  # no root: embedded use needs no login
    assert c.describe_user("alice") == {"user_name": "alice", "roles": ("reader",), "description": ""}
    assert c.describe_user("nobody") == {}
    assert c.list_roles() == ["admin", "public", "reader"]
    privs = c.describe_role("reader")["privileges"]
    assert {(p["object_type"], p["object_name"], p["privilege"]) for p in privs} == {
        ("Collection", "docs", "CollectionReadOnly"), ("Global", "*", "DescribeCollection")}  # fmt: skip
    assert {"privilege_group": "mine", "privileges": ("Query", "Insert")} in c.list_privilege_groups()
    assert len(c.list_privilege_groups()) == len(P.BUILTIN_GROUPS) + 1
    public = {p["privilege"] for p in c.describe_role("public")["privileges"]}
    assert public == {"DescribeCollection", "ListAliases", "IndexDetail"}
    c.revoke_privilege_v2("reader", "CollectionReadOnly", "docs", db_name="default")
    c.drop_role("reader", force_drop=True)
    c.drop_user("alice")
    assert c.list_users() == [] and c.list_roles() == ["admin", "public"]
    c.close()


def test_a_refused_change_changes_nothing(tmp_path: Path) -> None:
    c = keeldb.Client(str(tmp_path / "d"))
    c.create_user("alice", "secret123")
    before = (tmp_path / "d" / "CATALOG").read_bytes()
    for bad in (lambda: c.create_user("alice", "x" * 8), lambda: c.grant_role("alice", "nope"),
                lambda: c.create_user("bob", "short"), lambda: c.drop_role("admin")):  # fmt: skip
        with pytest.raises(KeelError):
            bad()
    assert (tmp_path / "d" / "CATALOG").read_bytes() == before
    c.close()
