"""pymilvus's user, role and privilege calls (``MilvusClient.create_user`` ... ``list_privilege_groups``),
with the same arguments and return shapes, over an ``AccessStore``.

``keeldb.Client`` (embedded: its user is the data directory's owner, no login) and the
server's RPC handlers both call these, so a change has one implementation whichever way it
arrives. Each change is one catalog commit (``AccessStore.change``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from keeldb.access import privileges as P
from keeldb.access.passwords import check_password
from keeldb.access.state import (
    ANY,
    DEFAULT_ROOT_PASSWORD,
    ROOT,
    AccessError,
    AccessState,
    Grant,
    InvalidAccessArgument,
)

DEFAULT_DB = "default"


class AccessStore(Protocol):
    """Where the access state lives: the catalog's ``access`` member (``Catalog.extra`` /
    ``commit``)."""

    def extra(self, fresh: bool = False) -> Mapping[str, Any]: ...

    def commit(self, changes: Mapping[str, Any], *, extra: Callable[..., Mapping[str, Any]]) -> Mapping[str, Any]: ...


MEMBER = "access"


class AccessCalls:
    """Mixed into a client that provides ``_access_store()``."""

    _access_store: Callable[[], AccessStore]  # the client's method (declared, not defined here)

    def access_state(self, fresh: bool = False) -> AccessState:
        """Users, roles and grants as last committed (``fresh``: re-read now, where a
        cluster catalog would answer from its copy). Decoded once per change: the server
        calls this on every RPC it checks."""
        raw = self._access_store().extra(fresh).get(MEMBER)
        cached = getattr(self, "_access_cache", None)
        if cached is not None and cached[0] is raw:
            return cached[1]
        state = AccessState.from_dict(raw)
        self._access_cache = (raw, state)  # holds raw, so its identity is not reused
        return state

    def initialize_access(self, root_password: str | None, *, network: bool) -> None:
        """Before a server checks calls: root exists, with ``root_password`` if given; on a
        network address (``network``), root may not keep Milvus's well-known default."""
        state = self.access_state()
        if root_password is not None:
            check_password(root_password)
            if not state.initialized:
                self._change_access(lambda s: s.initialize(root_password))
            elif state.authenticate(ROOT, DEFAULT_ROOT_PASSWORD):
                self._change_access(lambda s: s.update_password(ROOT, "", root_password, check_old=False))
            elif not state.authenticate(ROOT, root_password):
                raise AccessError(
                    "--root-password does not match root's password: it sets root's password at the first start "
                    "(or replaces the default 'Milvus') only; change it with update_password"
                )
            return
        if not state.initialized:
            if network:
                raise AccessError(
                    "the first start with --authorization on a network address needs --root-password (or "
                    "KEELDB_ROOT_PASSWORD): root's default password 'Milvus' is public"
                )
            self._change_access(lambda s: s.initialize(DEFAULT_ROOT_PASSWORD))
        elif network and state.authenticate(ROOT, DEFAULT_ROOT_PASSWORD):
            raise AccessError(
                "root still has the default password 'Milvus', which is public: change it (update_password) "
                "or start once with --root-password before listening on a network address"
            )

    def _change_access(self, change: Callable[[AccessState], AccessState]) -> AccessState:
        """One commit: ``change`` applied to the state as committed (it must be pure: a
        cluster catalog may apply it again after a conflicting change by another node)."""
        def update(members: Mapping[str, Any], _collections: Any) -> Mapping[str, Any]:
            return {**members, MEMBER: change(AccessState.from_dict(members.get(MEMBER))).to_dict()}

        return AccessState.from_dict(self._access_store().commit({}, extra=update).get(MEMBER))

    # -- users ---------------------------------------------------------------------------

    def create_user(self, user_name: str, password: str, timeout: float | None = None, **_: Any) -> None:
        self._change_access(lambda s: s.create_user(user_name, password))

    def drop_user(self, user_name: str, timeout: float | None = None, **_: Any) -> None:
        self._change_access(lambda s: s.drop_user(user_name))

    def update_password(
        self, user_name: str, old_password: str, new_password: str, reset_connection: bool = False,
        timeout: float | None = None, **_: Any,
    ) -> None:  # fmt: skip
        self._change_access(lambda s: s.update_password(user_name, old_password, new_password))

    def list_users(self, timeout: float | None = None, **_: Any) -> list[str]:
        return list(self.access_state().users)

    def describe_user(self, user_name: str, timeout: float | None = None, **_: Any) -> dict[str, Any]:
        u = self.access_state().users.get(user_name)
        if u is None:
            return {}
        return {"user_name": user_name, "roles": tuple(u.roles), "description": ""}

    # -- roles ---------------------------------------------------------------------------

    def create_role(self, role_name: str, timeout: float | None = None, **_: Any) -> None:
        self._change_access(lambda s: s.create_role(role_name))

    def drop_role(self, role_name: str, force_drop: bool = False, timeout: float | None = None, **_: Any) -> None:
        self._change_access(lambda s: s.drop_role(role_name, force=force_drop))

    def list_roles(self, timeout: float | None = None, **_: Any) -> list[str]:
        return self.access_state().role_names()

    def describe_role(self, role_name: str, timeout: float | None = None, **kwargs: Any) -> dict[str, Any]:
        s = self.access_state()
        s._role(role_name)
        grants = s.grants_of(role_name, kwargs.get("db_name") or None)
        return {"role": role_name, "description": "", "privileges": [grant_item(g) for g in grants]}

    def grant_role(self, user_name: str, role_name: str, timeout: float | None = None, **_: Any) -> None:
        self._change_access(lambda s: s.grant_role(user_name, role_name))

    def revoke_role(self, user_name: str, role_name: str, timeout: float | None = None, **_: Any) -> None:
        self._change_access(lambda s: s.revoke_role(user_name, role_name))

    # -- privileges ---------------------------------------------------------------------

    def grant_privilege(
        self, role_name: str, object_type: str, privilege: str, object_name: str, db_name: str | None = "",
        timeout: float | None = None, **_: Any,
    ) -> None:  # fmt: skip
        g = v1_grant(role_name, object_type, privilege, object_name, db_name)
        self._change_access(lambda s: s.grant(g))

    def revoke_privilege(
        self, role_name: str, object_type: str, privilege: str, object_name: str, db_name: str | None = "",
        timeout: float | None = None, **_: Any,
    ) -> None:  # fmt: skip
        g = v1_grant(role_name, object_type, privilege, object_name, db_name)
        self._change_access(lambda s: s.revoke(g))

    def grant_privilege_v2(
        self, role_name: str, privilege: str, collection_name: str, db_name: str | None = None,
        timeout: float | None = None, **_: Any,
    ) -> None:  # fmt: skip
        self._change_access(lambda s: s.grant(v2_grant(s, role_name, privilege, collection_name, db_name)))

    def revoke_privilege_v2(
        self, role_name: str, privilege: str, collection_name: str, db_name: str | None = None,
        timeout: float | None = None, **_: Any,
    ) -> None:  # fmt: skip
        self._change_access(lambda s: s.revoke(v2_grant(s, role_name, privilege, collection_name, db_name)))

    # -- privilege groups ---------------------------------------------------------------

    def create_privilege_group(self, group_name: str, timeout: float | None = None, **_: Any) -> None:
        self._change_access(lambda s: s.create_group(group_name))

    def drop_privilege_group(self, group_name: str, timeout: float | None = None, **_: Any) -> None:
        self._change_access(lambda s: s.drop_group(group_name))

    def list_privilege_groups(self, timeout: float | None = None, **_: Any) -> list[dict[str, Any]]:
        return [{"privilege_group": n, "privileges": p} for n, p in all_groups(self.access_state()).items()]

    def add_privileges_to_group(
        self, group_name: str, privileges: list[str], timeout: float | None = None, **_: Any
    ) -> None:
        self._change_access(lambda s: s.change_group(group_name, privileges, add=True))

    def remove_privileges_from_group(
        self, group_name: str, privileges: list[str], timeout: float | None = None, **_: Any
    ) -> None:
        self._change_access(lambda s: s.change_group(group_name, privileges, add=False))


def all_groups(s: AccessState) -> dict[str, tuple[str, ...]]:
    """Built-in groups then custom ones (ListPrivilegeGroups lists both)."""
    return {**P.BUILTIN_GROUPS, **s.groups}


def grant_item(g: Grant) -> dict[str, str]:
    """A grant as pymilvus's ``dict(GrantItem)``: db_name and grantor_name only if set."""
    out = {"object_type": g.object_type, "object_name": g.object_name}
    if g.db_name:
        out["db_name"] = g.db_name
    out |= {"role_name": g.role, "privilege": g.privilege}
    if g.grantor:
        out["grantor_name"] = g.grantor
    return out


def v1_grant(role: str, object_type: str, privilege: str, object_name: str, db_name: str | None) -> Grant:
    """grant_privilege's (object type, name, privilege, db): the object type must be one
    Milvus has (Global, Collection, User)."""
    kinds = {k.lower(): k for k in (P.GLOBAL, P.COLLECTION, P.USER)}
    kind = kinds.get((object_type or "").strip().lower())
    if kind is None:
        raise InvalidAccessArgument(f"invalid object type {object_type!r}: use one of Global, Collection, User")
    return Grant(role, kind, object_name or ANY, db_name or DEFAULT_DB, privilege)


_CLUSTER = set(P.BUILTIN_GROUPS["ClusterAdmin"]) | {"ClusterReadOnly", "ClusterReadWrite", "ClusterAdmin", P.ALL}
_DATABASE = set(P.BUILTIN_GROUPS["DatabaseAdmin"]) | {"DatabaseReadOnly", "DatabaseReadWrite", "DatabaseAdmin"}


def v2_grant(s: AccessState, role: str, privilege: str, collection: str, db_name: str | None) -> Grant:
    """grant_privilege_v2's (privilege, collection, db) as a grant. Milvus's scope rule: a
    cluster-level privilege or group needs db and collection ``*``, a database-level one
    collection ``*``; the object type follows the privilege's level."""
    name = s.privilege_name(privilege)
    db = db_name or DEFAULT_DB
    collection = collection or ANY
    if name in _CLUSTER and (db != ANY or collection != ANY):
        raise InvalidAccessArgument(
            f"privilege {privilege} is a cluster-level privilege: grant it with db_name='*' and collection_name='*'"
        )
    if name in _DATABASE and collection != ANY:
        raise InvalidAccessArgument(
            f"privilege {privilege} is a database-level privilege: grant it with collection_name='*'"
        )
    if name in ("UpdateUser", "SelectUser"):
        kind = P.USER
    elif name in _CLUSTER or name in _DATABASE:
        kind = P.GLOBAL
    else:
        kind = P.COLLECTION
    return Grant(role, kind, collection, db, name)
