"""Users, roles, grants and privilege groups: one immutable value, changed only by
building a new one.

The value lives in the catalog (``CATALOG`` in a data directory, the catalog key in etcd for
a cluster) beside the collections, and changes through the catalog's one commit path, so a
user or grant change has the catalog's crash-safety argument (docs/crash-safety.md, "A
catalog change") and its crash points: a change is durable before anyone can log in with it,
and a crash leaves the old state or the new one, never a mix.

This module holds Milvus's rules for each change (which names are valid, what may not be
dropped, which privilege names exist) and the check itself (``allows``). It stores privilege
names in the API's spelling (``Search``, ``CollectionReadOnly``, ``All``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from keeldb.access import privileges as P
from keeldb.access.passwords import (
    burn_time,
    check_password,
    check_username,
    hash_password,
    verify_password,
)
from keeldb.errors import KeelError

ROOT, ADMIN, PUBLIC = "root", "admin", "public"
BUILTIN_ROLES = (ADMIN, PUBLIC)
DEFAULT_ROOT_PASSWORD = "Milvus"  # Milvus's documented default (common.security.defaultRootPassword)
ANY = "*"
MAX_ROLE_NAME = 255
_ROLE = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


class AccessError(KeelError):
    """A user / role / grant change Milvus refuses (its rootcoord answers these as a plain
    failed status, code 65535)."""


class InvalidAccessArgument(AccessError):
    code = 1100


@dataclass(frozen=True)
class Grant:
    """One privilege (or group, or ``All``) of a role on an object: ``object_type`` is
    Global, Collection or User; ``object_name`` and ``db_name`` may be ``*``."""

    role: str
    object_type: str
    object_name: str
    db_name: str
    privilege: str
    grantor: str = ROOT

    def to_list(self) -> list[str]:
        return [self.role, self.object_type, self.object_name, self.db_name, self.privilege, self.grantor]

    @classmethod
    def from_list(cls, v: list[str]) -> Grant:
        return cls(*v)

    def key(self) -> tuple[str, str, str, str, str]:
        return (self.role, self.object_type, self.object_name, self.db_name, self.privilege)


@dataclass(frozen=True)
class User:
    password_hash: str
    roles: tuple[str, ...] = ()


# public's default grants (Milvus: initPublicRolePrivilege, common.security.enablePublicPrivilege).
PUBLIC_DEFAULTS = (
    Grant(PUBLIC, P.GLOBAL, ANY, ANY, "DescribeCollection"),
    Grant(PUBLIC, P.GLOBAL, ANY, ANY, "ListAliases"),
    Grant(PUBLIC, P.COLLECTION, ANY, ANY, "IndexDetail"),
)
COLLECTION_GROUPS = ("CollectionReadOnly", "CollectionReadWrite", "CollectionAdmin")


@dataclass(frozen=True)
class AccessState:
    users: Mapping[str, User] = field(default_factory=dict)
    roles: tuple[str, ...] = ()  # custom roles, in creation order (admin and public always exist)
    grants: tuple[Grant, ...] = ()
    groups: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # custom privilege groups

    # -- the JSON form (the catalog's "access" member, docs/formats.md) ------------------

    def to_dict(self) -> dict[str, Any]:
        return {
            "users": {n: {"password": u.password_hash, "roles": list(u.roles)} for n, u in self.users.items()},
            "roles": list(self.roles),
            "grants": [g.to_list() for g in self.grants],
            "groups": {n: list(p) for n, p in self.groups.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> AccessState:
        if not d:  # never changed: what Milvus has at its first start, less root
            return cls(grants=PUBLIC_DEFAULTS)
        return cls(
            users={n: User(u["password"], tuple(u.get("roles", ()))) for n, u in d.get("users", {}).items()},
            roles=tuple(d.get("roles", ())),
            grants=tuple(Grant.from_list(g) for g in d.get("grants", ())),
            groups={n: tuple(p) for n, p in d.get("groups", {}).items()},
        )

    # -- first start --------------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        return ROOT in self.users

    def initialize(self, root_password: str) -> AccessState:
        """The root user with ``root_password`` (Milvus creates it at its first start)."""
        if self.initialized:
            return self
        check_password(root_password)
        return replace(self, users={**self.users, ROOT: User(hash_password(root_password))})

    # -- users ---------------------------------------------------------------------------

    def create_user(self, name: str, password: str) -> AccessState:
        name = name.strip()
        check_username(name)
        check_password(password)
        if name in self.users:
            raise AccessError(f"user already exists: {name}")
        return replace(self, users={**self.users, name: User(hash_password(password))})

    def drop_user(self, name: str) -> AccessState:
        if name == ROOT:
            raise AccessError("root user cannot be deleted")
        if name not in self.users:
            return self  # Milvus: deleting a user that does not exist succeeds
        users = dict(self.users)
        del users[name]
        return replace(self, users=users)

    def update_password(self, name: str, old: str, new: str, *, check_old: bool = True) -> AccessState:
        user = self.users.get(name)
        if user is None:
            raise AccessError(f"user not found: {name}")
        check_password(new)
        if check_old and not verify_password(old, user.password_hash):
            raise AccessError(f"old password not correct for user {name}")
        return replace(self, users={**self.users, name: replace(user, password_hash=hash_password(new))})

    def authenticate(self, name: str, password: str) -> bool:
        user = self.users.get(name)
        if user is None:
            burn_time(password)
            return False
        return verify_password(password, user.password_hash)

    # -- roles ---------------------------------------------------------------------------

    def role_names(self) -> list[str]:
        return [*BUILTIN_ROLES, *self.roles]

    def has_role(self, role: str) -> bool:
        return role in BUILTIN_ROLES or role in self.roles

    def create_role(self, role: str) -> AccessState:
        role = role.strip()
        if not role or len(role) > MAX_ROLE_NAME or not _ROLE.fullmatch(role):
            raise InvalidAccessArgument(
                f"invalid role name {role!r}: the first character must be a letter or an underscore, the others "
                f"letters, digits, underscores or dashes, at most {MAX_ROLE_NAME} characters"
            )
        if self.has_role(role):
            raise AccessError(f"role [{role}] already exists")
        return replace(self, roles=(*self.roles, role))

    def drop_role(self, role: str, *, force: bool = False) -> AccessState:
        if role in BUILTIN_ROLES:
            raise AccessError(f"the role[{role}] is a default role, which can't be dropped")
        if role not in self.roles:
            raise AccessError(f"not found the role[{role}]")
        granted = [g for g in self.grants if g.role == role]
        holders = [n for n, u in self.users.items() if role in u.roles]
        if (granted or holders) and not force:
            raise AccessError(
                f"role [{role}] still has {len(granted)} privileges and {len(holders)} users; revoke them "
                "first or drop it with force_drop=True"
            )
        users = {n: replace(u, roles=tuple(r for r in u.roles if r != role)) for n, u in self.users.items()}
        return replace(
            self, users=users, roles=tuple(r for r in self.roles if r != role),
            grants=tuple(g for g in self.grants if g.role != role),
        )  # fmt: skip

    def grant_role(self, user: str, role: str) -> AccessState:
        u = self._user(user)
        self._role(role)
        if role in u.roles:
            return self
        return replace(self, users={**self.users, user: replace(u, roles=(*u.roles, role))})

    def revoke_role(self, user: str, role: str) -> AccessState:
        u = self._user(user)
        self._role(role)
        return replace(self, users={**self.users, user: replace(u, roles=tuple(r for r in u.roles if r != role))})

    def users_of(self, role: str) -> list[str]:
        return [n for n, u in self.users.items() if role in u.roles]

    # -- privileges ---------------------------------------------------------------------

    def grant(self, g: Grant) -> AccessState:
        self._role(g.role)
        g = replace(g, privilege=self.privilege_name(g.privilege))
        if any(x.key() == g.key() for x in self.grants):
            return self
        return replace(self, grants=(*self.grants, g))

    def revoke(self, g: Grant) -> AccessState:
        self._role(g.role)
        key = replace(g, privilege=self.privilege_name(g.privilege)).key()
        return replace(self, grants=tuple(x for x in self.grants if x.key() != key))

    def privilege_name(self, name: str) -> str:
        """``name`` as stored (``PrivilegeSearch`` -> ``Search``, ``*`` -> ``All``), or
        refused if it is no privilege, built-in group or custom group."""
        n = P.normalize(name)
        if n in P.privilege_names() and not n.startswith("Group") or n in P.BUILTIN_GROUPS or n in self.groups:
            return n
        raise InvalidAccessArgument(f"not found the privilege name[{name}]")

    def members(self, privilege: str) -> tuple[str, ...] | None:
        """A group's privileges (None: not a group)."""
        return P.BUILTIN_GROUPS.get(privilege) or self.groups.get(privilege)

    def grants_of(self, role: str, db_name: str | None = None) -> list[Grant]:
        return [g for g in self.grants if g.role == role and (db_name in (None, "") or g.db_name in (db_name, ANY))]

    # -- privilege groups ---------------------------------------------------------------

    def create_group(self, name: str) -> AccessState:
        if not name or not _ROLE.fullmatch(name):
            raise InvalidAccessArgument(f"invalid privilege group name {name!r}")
        if name in P.BUILTIN_GROUPS or name in P.privilege_names():
            raise AccessError(f"privilege group name [{name}] is defined by built in privileges or privilege groups")
        if name in self.groups:
            raise AccessError(f"privilege group [{name}] already exists")
        return replace(self, groups={**self.groups, name: ()})

    def drop_group(self, name: str) -> AccessState:
        if name in P.BUILTIN_GROUPS:
            raise AccessError(f"the privilege group [{name}] is built in and cannot be dropped")
        if name not in self.groups:
            return self
        if any(g.privilege == name for g in self.grants):
            raise AccessError(f"privilege group [{name}] is granted to a role; revoke it first")
        groups = dict(self.groups)
        del groups[name]
        return replace(self, groups=groups)

    def change_group(self, name: str, privileges: Iterable[str], *, add: bool) -> AccessState:
        if name in P.BUILTIN_GROUPS:
            raise AccessError(f"the privilege group [{name}] is built in and cannot be changed")
        if name not in self.groups:
            raise AccessError(f"privilege group [{name}] does not exist")
        names = []
        for p in privileges:
            n = P.normalize(p)
            if n not in P.privilege_names() or n.startswith("Group") or n == P.ALL:
                raise InvalidAccessArgument(f"not found the privilege name[{p}]")
            names.append(n)
        cur = list(self.groups[name])
        new = [*cur, *(n for n in dict.fromkeys(names) if n not in cur)] if add else [p for p in cur if p not in names]
        return replace(self, groups={**self.groups, name: tuple(new)})

    # -- the check ------------------------------------------------------------------------

    def allows(self, user: str, object_type: str, object_name: str, db_name: str, privilege: str) -> bool:
        """Whether ``user`` may use ``privilege`` on the object (Milvus's matcher: root and
        the admin role may do everything; every user has public; ``*`` matches any name or
        database; ``All`` any privilege; a group its members, whatever their object type;
        a collection-level privilege whether it was granted as Global or Collection)."""
        if user == ROOT:
            return True
        u = self.users.get(user)
        if u is None:
            return False
        roles = {*u.roles, PUBLIC}
        if ADMIN in roles:
            return True
        for g in self.grants:
            if g.role not in roles or g.db_name not in (ANY, db_name) or g.object_name not in (ANY, object_name):
                continue
            if g.privilege == P.ALL:
                return True
            members = self.members(g.privilege)
            if members is not None:
                if privilege in members:
                    return True
            elif g.privilege == privilege and (g.object_type == object_type or privilege in P.COLLECTION_LEVEL):
                return True
        return False

    # -- what a user may see ---------------------------------------------------------------

    def visible_collections(self, user: str, db_name: str) -> frozenset[str] | None:
        """The collections of ``db_name`` that ShowCollections lists to ``user`` (None: all
        of them). Milvus's rule (rootcoord showCollectionTask): root and the admin role see
        every collection, and so does a role granted ``All`` globally; otherwise a
        collection is listed when one of the user's own roles -- not public, which Milvus
        adds to privilege checks only -- holds a Collection grant on it (``*``: on all) or
        a collection-level or custom privilege group on it, in that database or ``*``."""
        roles = self._own_roles(user)
        if roles is None:
            return None
        names: set[str] = set()
        for g in self.grants:
            if g.role not in roles or g.db_name not in (ANY, db_name):
                continue
            if g.object_type == P.GLOBAL and g.privilege == P.ALL:
                return None
            if g.object_type != P.COLLECTION and g.privilege not in COLLECTION_GROUPS and g.privilege not in self.groups:
                continue
            if g.object_name == ANY:
                return None
            names.add(g.object_name)
        return frozenset(names)

    def visible_databases(self, user: str) -> frozenset[str] | None:
        """The databases ListDatabases lists to ``user`` (None: all). Milvus's rule
        (rootcoord listDatabaseTask): root and admin see all; otherwise a database is listed
        when one of the user's own roles other than public holds any grant in it (a grant
        in ``*``: all of them)."""
        roles = self._own_roles(user)
        if roles is None:
            return None
        names = {g.db_name for g in self.grants if g.role in roles and g.role != PUBLIC}
        return None if ANY in names else frozenset(names)

    def _own_roles(self, user: str) -> tuple[str, ...] | None:
        """The roles granted to ``user`` (an unknown user has none); None for root and
        holders of admin, who see everything."""
        if user == ROOT:
            return None
        u = self.users.get(user)
        roles = u.roles if u is not None else ()
        return None if ADMIN in roles else roles

    # -- lookups ---------------------------------------------------------------------------

    def _user(self, name: str) -> User:
        u = self.users.get(name)
        if u is None:
            raise AccessError(f"not found the user, maybe the user isn't existed or internal system error: {name}")
        return u

    def _role(self, role: str) -> None:
        if not self.has_role(role):
            raise AccessError(f"not found the role, maybe the role isn't existed or internal system error: {role}")
