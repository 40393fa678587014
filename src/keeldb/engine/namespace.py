"""Databases and aliases: where a collection name is looked up.

A collection lives in a database; ``default`` always exists. The catalog keys a collection
of ``default`` by its bare name (so catalogs written before databases existed read the same)
and a collection of database ``db`` by ``db.name`` -- unambiguous, since neither name may
contain a dot (``schema.check_name``). An alias is another name, in the same database, for
one collection.

Both live in the catalog's other members, changed through its one commit (``Catalog.commit``
with ``extra``) and in the same commit as the collections when a change touches both, so
every rule below is checked against the state it changes (never a check-then-act race):

    "databases": {"<db>": {"id": 2, "created_ts": ..., "properties": {...}}}   # not "default"
    "aliases":   {"<alias key>": "<collection key>"}

``alter_alias`` is therefore atomic: a reader resolving the alias gets the old collection or
the new one, whole, never an error in between (the blue/green switch aliases exist for).

``DatabaseScope`` is a ``Database`` seen from one database: the client works through it
with bare names and never builds a key itself.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from keeldb.errors import CollectionNotFound, InvalidArgument, KeelError
from keeldb.schema import check_name

if TYPE_CHECKING:
    from keeldb.engine.catalog import CollectionEntry
    from keeldb.engine.collection import Collection
    from keeldb.engine.database import Database, ReadCall

DEFAULT_DB = "default"
SEP = "."
DATABASES, ALIASES = "databases", "aliases"
MAX_DATABASES = 64  # Milvus's rootCoord.maxDatabaseNum
# The database of the call in progress, for a client not bound to one (the server's: each
# RPC names its database, server/rpc.py sets it). A client's using_database overrides it.
current_database: ContextVar[str] = ContextVar("keeldb_database", default=DEFAULT_DB)


class DatabaseNotFound(KeelError):
    code = 800  # Milvus's ErrDatabaseNotFound


class AliasError(InvalidArgument):
    """Milvus answers alias conflicts as invalid input (code 1100 ... "alias ... exists")."""


ALIAS_COLLECTION_CONFLICT = 1601  # merr.ErrAliasCollectionNameConfict


def key(db: str, name: str) -> str:
    return name if db == DEFAULT_DB else f"{db}{SEP}{name}"


def split(k: str) -> tuple[str, str]:
    db, sep, name = k.rpartition(SEP)
    return (db, name) if sep else (DEFAULT_DB, k)


def databases(members: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every database (``default`` first) -> its record."""
    stored = dict(members.get(DATABASES) or {})
    return {DEFAULT_DB: stored.pop(DEFAULT_DB, {"id": 1, "properties": {}}), **stored}


def aliases(members: Mapping[str, Any]) -> dict[str, str]:
    return dict(members.get(ALIASES) or {})


def aliases_of(members: Mapping[str, Any], collection_key: str) -> list[str]:
    """The bare alias names pointing at ``collection_key``."""
    return [split(a)[1] for a, target in aliases(members).items() if target == collection_key]


# -- changes: each a pure update of the catalog's other members (``Catalog.commit(extra=)``) --

Update = Callable[[Mapping[str, Any], Mapping[str, Any]], Mapping[str, Any]]


def create_database(db: str, properties: Mapping[str, Any], created_ts: int) -> Update:
    check_name("database", db)

    def update(members: Mapping[str, Any], _cols: Mapping[str, Any]) -> Mapping[str, Any]:
        dbs = databases(members)
        if db in dbs:
            raise InvalidArgument(f"database already exist: {db}")
        if len(dbs) >= MAX_DATABASES:
            raise InvalidArgument(f"database number ({len(dbs)}) exceeds max configuration ({MAX_DATABASES})")
        new_id = max(int(r.get("id", 1)) for r in dbs.values()) + 1
        dbs[db] = {"id": new_id, "created_ts": created_ts, "properties": {k: str(v) for k, v in properties.items()}}
        return {**members, DATABASES: dbs}

    return update


def drop_database(db: str) -> Update:
    check_name("database", db)
    if db == DEFAULT_DB:
        raise InvalidArgument("can not drop default database")

    def update(members: Mapping[str, Any], cols: Mapping[str, Any]) -> Mapping[str, Any]:
        dbs = databases(members)
        if db not in dbs:
            return members  # Milvus: dropping a database that does not exist succeeds
        left = [split(k)[1] for k in cols if split(k)[0] == db]
        if left:
            raise InvalidArgument(
                f"database:{db} not empty, must drop all collections before drop database (it holds {sorted(left)})"
            )
        del dbs[db]
        return {**members, DATABASES: dbs}

    return update


def alter_database(db: str, set_props: Mapping[str, Any], drop_keys: tuple[str, ...] = ()) -> Update:
    def update(members: Mapping[str, Any], _cols: Mapping[str, Any]) -> Mapping[str, Any]:
        dbs = databases(members)
        record = dbs.get(db)
        if record is None:
            raise DatabaseNotFound(f"database not found[database={db}]")
        props = {k: v for k, v in dict(record.get("properties") or {}).items() if k not in drop_keys}
        props.update({k: str(v) for k, v in set_props.items()})
        dbs[db] = {**record, "properties": props}
        return {**members, DATABASES: dbs}

    return update


def require_database(db: str) -> Update:
    """No change; refused if ``db`` does not exist (checked in the commit that creates a
    collection in it, so a racing drop_database cannot leave an orphan)."""

    def update(members: Mapping[str, Any], _cols: Mapping[str, Any]) -> Mapping[str, Any]:
        if db not in databases(members):
            raise DatabaseNotFound(f"database not found[database={db}]")
        return members

    return update


def _alias_checks(db: str, collection: str, alias: str) -> tuple[str, str, Callable[..., None]]:
    """What create_alias and alter_alias both check, Milvus's way: the names first (alias,
    then collection), then, inside the commit, that the collection exists and that the
    alias is no collection's name. Returns the target's key, the alias's key and that check."""
    check_name("alias", alias)
    check_name("collection", collection)
    target, akey = key(db, collection), key(db, alias)

    def check(cols: Mapping[str, Any]) -> None:
        if target not in cols:
            raise CollectionNotFound(f"collection not found[database={db}][collection={collection}]")
        if akey in cols:
            raise AliasError(
                f"alias and collection name conflict[database={db}][alias={alias}]", code=ALIAS_COLLECTION_CONFLICT
            )

    return target, akey, check


def create_alias(db: str, collection: str, alias: str) -> Update:
    target, akey, check = _alias_checks(db, collection, alias)

    def update(members: Mapping[str, Any], cols: Mapping[str, Any]) -> Mapping[str, Any]:
        check(cols)
        al = aliases(members)
        if akey in al:
            if al[akey] == target:
                return members
            raise AliasError(
                f"{alias} is alias to another collection: {split(al[akey])[1]}: alias already exist[database={db}]"
                f"[alias={alias}]"
            )
        return {**members, ALIASES: {**al, akey: target}}

    return update


def alter_alias(db: str, collection: str, alias: str) -> Update:
    target, akey, check = _alias_checks(db, collection, alias)

    def update(members: Mapping[str, Any], cols: Mapping[str, Any]) -> Mapping[str, Any]:
        check(cols)
        al = aliases(members)
        if akey not in al:
            raise AliasError(f"alias not found[database={db}][alias={alias}]")
        return {**members, ALIASES: {**al, akey: target}}

    return update


def drop_alias(db: str, alias: str) -> Update:
    akey = key(db, alias)

    def update(members: Mapping[str, Any], _cols: Mapping[str, Any]) -> Mapping[str, Any]:
        al = aliases(members)
        if akey not in al:
            return members  # Milvus: dropping an alias that does not exist succeeds
        del al[akey]
        return {**members, ALIASES: al}

    return update


def refuse_if_aliased(collection_key: str) -> Update:
    """drop_collection's rule (Milvus's): not while aliases point at it."""

    def update(members: Mapping[str, Any], _cols: Mapping[str, Any]) -> Mapping[str, Any]:
        names = aliases_of(members, collection_key)
        if names:
            db, name = split(collection_key)
            raise InvalidArgument(
                f"unable to drop the collection [{name}] because it has aliases {sorted(names)}, please remove all "
                "aliases before dropping the collection"
            )
        return members

    return update


def move_aliases(old_key: str, new_key: str) -> Update:
    """rename_collection keeps the collection's aliases (in the same database)."""

    def update(members: Mapping[str, Any], _cols: Mapping[str, Any]) -> Mapping[str, Any]:
        al = aliases(members)
        if new_key in al:  # checked in the commit, against the catalog as it is (Milvus's words)
            raise AliasError(f"cannot rename collection to an existing alias: {split(new_key)[1]}")
        if not any(t == old_key for t in al.values()):
            return members
        if split(old_key)[0] != split(new_key)[0]:
            raise InvalidArgument(
                f"cannot move collection [{split(old_key)[1]}] with aliases to another database; drop its aliases first"
            )
        return {**members, ALIASES: {a: (new_key if t == old_key else t) for a, t in al.items()}}

    return update


def chain(*updates: Update) -> Update:
    def update(members: Mapping[str, Any], cols: Mapping[str, Any]) -> Mapping[str, Any]:
        for u in updates:
            members = u(members, cols)
        return members

    return update


class DatabaseScope:
    """``database`` seen from database ``db``: bare collection names (or aliases) in,
    catalog keys to the ``Database`` underneath. Reads and writes of an existing collection
    accept an alias; creating, renaming to and dropping take collection names."""

    def __init__(self, database: Database, db: str) -> None:
        self.database = database
        self.db_name = db
        self.catalog = database.catalog
        self.oracle = database.oracle

    def __getattr__(self, name: str) -> Any:  # compaction_plans, root, ...: not name-scoped
        return getattr(self.database, name)

    # -- names ------------------------------------------------------------------------

    def key(self, name: str) -> str:
        """``name``'s catalog key: the collection itself, or the one the alias names. (Which
        calls refuse an invalid name before looking is the client's business: Milvus does
        on some, and answers "not found" on others.)"""
        k = key(self.db_name, name)
        if self.catalog.peek(k) is not None:
            return k
        # peek re-read the catalog when it lacked ``k`` (Catalog.peek), aliases with it: an
        # alias made through another node a moment ago is in this copy already.
        return aliases(self.catalog.extra()).get(k, k)

    def check(self) -> None:
        if self.db_name != DEFAULT_DB and self.db_name not in databases(self.catalog.extra()):
            if self.db_name not in databases(self.catalog.extra(fresh=True)):
                raise DatabaseNotFound(f"database not found[database={self.db_name}]")

    def names(self) -> list[str]:
        self.check()
        return [n for db, n in map(split, self.database.names()) if db == self.db_name]

    # -- the Database calls, by name ------------------------------------------------------

    def get(self, name: str, *, resolve: bool = True) -> CollectionEntry | None:
        """The entry, current, or None (no error: has_collection, get_load_state);
        ``resolve=False``: the collection of that very name, not an alias's."""
        self.check()
        check_name("collection", name)  # has_collection('12-s') is refused, not False (Milvus)
        k = self.key(name)
        return self.catalog.get(k if resolve else key(self.db_name, name))

    def entry(self, name: str) -> CollectionEntry:
        return self._named(name, self.database.entry)

    def peek(self, name: str) -> CollectionEntry:
        return self._named(name, self.database.peek)

    def collection(self, name: str, read: ReadCall | None = None) -> Collection:
        return self._named(name, lambda k: self.database.collection(k, read))

    def collection_and_entry(self, name: str, read: ReadCall | None = None) -> tuple[Collection, CollectionEntry]:
        """``collection`` and ``peek`` with one name resolution (every read starts here)."""
        return self._named(name, lambda k: (self.database.collection(k, read), self.database.peek(k)))

    def update(self, name: str, **changes: Any) -> None:
        self._named(name, lambda k: self.database.update(k, **changes))

    def set_properties(self, name: str, properties: dict[str, Any]) -> None:
        self._named(name, lambda k: self.database.set_properties(k, properties))

    def change_schema(self, name: str, schema: Any) -> None:
        self._named(name, lambda k: self.database.change_schema(k, schema))

    def create_partition(self, name: str, partition: str) -> None:
        self._named(name, lambda k: self.database.create_partition(k, partition))

    def drop_partition(self, name: str, partition: str) -> None:
        self._named(name, lambda k: self.database.drop_partition(k, partition))

    def compact(self, name: str) -> int:
        return self._named(name, self.database.compact)

    def create(self, name: str, schema: Any, **kw: Any) -> None:
        check_name("collection", name)
        k = key(self.db_name, name)
        if k in aliases(self.catalog.extra()):
            raise AliasError(
                f"collection name [{name}] conflicts with an existing alias, please choose a unique name",
                code=ALIAS_COLLECTION_CONFLICT,
            )
        self.database.create(k, schema, extra=require_database(self.db_name), **kw)

    def rename(self, old: str, new: str, new_db: str = "") -> None:
        check_name("collection", new)  # the old name is looked up, unchecked, as Milvus does
        old_key = key(self.db_name, old)
        new_key = key(new_db or self.db_name, new)
        self._named(old, lambda _: self.database.rename(old_key, new_key, extra=chain(
            require_database(new_db or self.db_name), move_aliases(old_key, new_key))))  # fmt: skip

    def drop(self, name: str) -> None:
        check_name("collection", name)
        k = key(self.db_name, name)
        if self.catalog.peek(k) is None and k in aliases(self.catalog.extra()):
            raise InvalidArgument(f"cannot drop the collection via alias = {name}")
        self.database.drop(k, extra=refuse_if_aliased(k))

    def _named(self, name: str, get: Callable[[str], Any]) -> Any:
        try:
            return get(self.key(name))
        except CollectionNotFound:
            self.check()
            raise CollectionNotFound(f"collection not found[database={self.db_name}][collection={name}]") from None


class NamespaceCalls:
    """pymilvus's database and alias calls, with its argument names and return shapes;
    mixed into ``keeldb.Client`` (which provides ``_database``, ``db`` and ``_db_name``)."""

    # Provided by the client (declared, not defined: the client's own properties serve).
    _db_name: str
    _database: Database
    db: DatabaseScope

    def _commit(self, update: Update) -> Mapping[str, Any]:
        """One catalog commit; ``update`` checks its rule against the state it changes,
        under the catalog's own lock (no lock of the Database is needed)."""
        return self._database.catalog.commit({}, extra=update)

    # -- databases ----------------------------------------------------------------------

    def create_database(self, db_name: str, properties: Mapping[str, Any] | None = None, **_: Any) -> None:
        self._commit(create_database(db_name, properties or {}, self._database.oracle.next()))

    def drop_database(self, db_name: str, **_: Any) -> None:
        self._commit(drop_database(db_name))

    def list_databases(self, timeout: float | None = None, **_: Any) -> list[str]:
        return list(databases(self._database.catalog.extra(fresh=True)))

    def describe_database(self, db_name: str, **_: Any) -> dict[str, Any]:
        record = databases(self._database.catalog.extra(fresh=True)).get(db_name)
        if record is None:
            raise DatabaseNotFound(f"database not found[database={db_name}]")
        return {"name": db_name, **dict(record.get("properties") or {})}

    def alter_database_properties(self, db_name: str, properties: Mapping[str, Any], **_: Any) -> None:
        self._commit(alter_database(db_name, properties))

    def drop_database_properties(self, db_name: str, property_keys: list[str], **_: Any) -> None:
        self._commit(alter_database(db_name, {}, tuple(property_keys)))

    def using_database(self, db_name: str, **_: Any) -> None:
        """Later calls of this client work in ``db_name`` (which must exist)."""
        self.describe_database(db_name)
        self._db_name = db_name

    use_database = using_database

    # -- aliases ------------------------------------------------------------------------

    def _scope_db(self) -> str:
        return self.db.db_name

    def create_alias(self, collection_name: str, alias: str, timeout: float | None = None, **_: Any) -> None:
        self.db.check()
        self._commit(create_alias(self._scope_db(), collection_name, alias))

    def alter_alias(self, collection_name: str, alias: str, timeout: float | None = None, **_: Any) -> None:
        self.db.check()
        self._commit(alter_alias(self._scope_db(), collection_name, alias))

    def drop_alias(self, alias: str, timeout: float | None = None, **_: Any) -> None:
        self.db.check()
        self._commit(drop_alias(self._scope_db(), alias))

    def describe_alias(self, alias: str, timeout: float | None = None, **_: Any) -> dict[str, Any]:
        db = self._scope_db()
        target = aliases(self._database.catalog.extra(fresh=True)).get(key(db, alias))
        if target is None:
            raise AliasError(f"alias not found[database={db}][alias={alias}]")
        return {"alias": alias, "collection_name": split(target)[1], "db_name": db}

    def list_aliases(self, collection_name: str = "", timeout: float | None = None, **_: Any) -> dict[str, Any]:
        db = self._scope_db()
        self.db.check()
        members = self._database.catalog.extra(fresh=True)
        if collection_name:
            self.db.entry(collection_name)  # CollectionNotFound as Milvus
            names = aliases_of(members, key(db, collection_name))
        else:
            names = [split(a)[1] for a in aliases(members) if split(a)[0] == db]
        out: dict[str, Any] = {"aliases": names, "db_name": db}
        if collection_name:
            out["collection_name"] = collection_name
        return out

    def catalog_key(self, collection_name: str, db_name: str = "") -> str:
        """The catalog key ``collection_name`` (or an alias) stands for in ``db_name`` (this
        client's database if empty): what cluster routing finds the writer by."""
        scope = self.db if not db_name else DatabaseScope(self._database, db_name)
        return scope.key(collection_name)

    def aliases_of(self, collection_name: str) -> list[str]:
        """The aliases of a collection (describe_collection reports them)."""
        return aliases_of(self._database.catalog.extra(), self.db.key(collection_name))
