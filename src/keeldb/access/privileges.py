"""Milvus's privilege model: which privilege each RPC needs, on which object, and the
privilege groups Milvus ships.

The RPC -> privilege table is not copied by hand: Milvus declares it on each request
message of ``milvus.proto`` as the ``privilege_ext_obj`` option (object type, privilege, and
the field number that holds the object's name), and pymilvus ships those descriptors. Reading
them means keeldb checks exactly what Milvus checks, and an RPC added to the protos is
covered without a code change. RPCs whose request carries no option (Connect, GetVersion,
ListDatabases, ShowCollections, HasCollection, ...) are not checked by Milvus either.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any

from pymilvus.grpc_gen import common_pb2, milvus_pb2

GLOBAL, COLLECTION, USER = "Global", "Collection", "User"
ALL = "All"  # PrivilegeAll: every privilege (granted as "*" or "All")
PREFIX = "Privilege"

# Milvus's built-in privilege groups (pkg/util/constant.go, BuiltinPrivilegeGroups), by
# the object type they are granted on. Each level includes the one before it.
_COLL_RO = ("Query", "Search", "IndexDetail", "GetFlushState", "GetLoadState", "GetLoadingProgress",
            "HasPartition", "ShowPartitions", "DescribeCollection", "DescribeAlias", "GetStatistics",
            "ListAliases")  # fmt: skip
_COLL_RW = (*_COLL_RO, "Load", "Release", "Insert", "Delete", "Upsert", "Import", "Flush", "Compaction",
            "LoadBalance", "CreateIndex", "DropIndex", "CreatePartition", "DropPartition",
            "AddCollectionField")  # fmt: skip
_COLL_ADMIN = (*_COLL_RW, "CreateAlias", "DropAlias")
_DB_RO = ("ShowCollections", "DescribeDatabase")
_DB_RW = (*_DB_RO, "AlterDatabase")
_DB_ADMIN = (*_DB_RW, "CreateCollection", "DropCollection")
_CLUSTER_RO = ("ListDatabases", "SelectOwnership", "SelectUser", "DescribeResourceGroup",
               "ListResourceGroups", "ListPrivilegeGroups")  # fmt: skip
_CLUSTER_RW = (*_CLUSTER_RO, "FlushAll", "TransferNode", "TransferReplica", "UpdateResourceGroups")
_CLUSTER_ADMIN = (*_CLUSTER_RW, "BackupRBAC", "RestoreRBAC", "CreateDatabase", "DropDatabase",
                  "CreateOwnership", "DropOwnership", "ManageOwnership", "CreateResourceGroup",
                  "DropResourceGroup", "UpdateUser", "RenameCollection", "CreatePrivilegeGroup",
                  "DropPrivilegeGroup", "OperatePrivilegeGroup")  # fmt: skip
BUILTIN_GROUPS: dict[str, tuple[str, ...]] = {
    "CollectionReadOnly": _COLL_RO,
    "CollectionReadWrite": _COLL_RW,
    "CollectionAdmin": _COLL_ADMIN,
    "DatabaseReadOnly": _DB_RO,
    "DatabaseReadWrite": _DB_RW,
    "DatabaseAdmin": _DB_ADMIN,
    "ClusterReadOnly": _CLUSTER_RO,
    "ClusterReadWrite": _CLUSTER_RW,
    "ClusterAdmin": _CLUSTER_ADMIN,
}
# Privileges about one collection. Some of their RPCs are declared Global without a name
# (CreateAlias, DescribeAlias, ListAliases, DescribeCollection), yet Milvus grants them on
# collections (the CollectionAdmin groups, grant_privilege_v2 with a collection name): they
# are checked on the request's collection, whatever object type the grant was stored with.
COLLECTION_LEVEL = frozenset(_COLL_ADMIN)


@dataclass(frozen=True)
class Requirement:
    """What one RPC needs: ``privilege`` (Milvus's name without the "Privilege" prefix) on
    an object of ``object_type``, whose name is the request's field number ``name_field``
    (0: none; the object is then "*")."""

    rpc: str
    object_type: str
    privilege: str
    name_field: int
    names_field: int  # a repeated field of names (Flush: collection_names), 0 if none

    def object_names(self, request: Any) -> list[str]:
        """The names of the objects ``request`` touches ("*" when it names none)."""
        d = request.DESCRIPTOR
        if self.names_field:
            f = d.fields_by_number.get(self.names_field)
            names = list(getattr(request, f.name)) if f is not None else []
            return names or ["*"]
        if self.name_field > 0:
            f = d.fields_by_number.get(self.name_field)
            value = getattr(request, f.name) if f is not None else ""
            if f is not None and f.message_type is not None:
                # An entity (SelectUser's ``user``): its first field is the name (Milvus's
                # funcutil.GetObjectName does the same).
                first = f.message_type.fields_by_number.get(1)
                value = getattr(value, first.name) if first is not None else ""
            return [str(value) or "*"]
        if self.object_type == GLOBAL and self.privilege in COLLECTION_LEVEL and "collection_name" in d.fields_by_name:
            return [request.collection_name or "*"]
        return ["*"]


@cache
def requirements() -> dict[str, Requirement]:
    """RPC name -> what it needs, from the protos' ``privilege_ext_obj`` options."""
    ext = common_pb2.privilege_ext_obj
    service = milvus_pb2.DESCRIPTOR.services_by_name["MilvusService"]
    out: dict[str, Requirement] = {}
    for m in service.methods:
        opts = m.input_type.GetOptions()
        if not opts.HasExtension(ext):
            continue
        e = opts.Extensions[ext]
        out[m.name] = Requirement(
            rpc=m.name,
            object_type=common_pb2.ObjectType.Name(e.object_type),
            privilege=common_pb2.ObjectPrivilege.Name(e.object_privilege).removeprefix(PREFIX),
            name_field=int(e.object_name_index),
            names_field=int(e.object_name_indexs),
        )
    return out


@cache
def privilege_names() -> frozenset[str]:
    """Every privilege Milvus defines (``Search``, ``CreateCollection``, ..., ``All``)."""
    return frozenset(n.removeprefix(PREFIX) for n in common_pb2.ObjectPrivilege.keys())


def normalize(name: str) -> str:
    """A privilege as a user may write it: ``Search``, ``PrivilegeSearch``; ``*`` is All."""
    name = name.strip()
    if name == "*":
        return ALL
    return name.removeprefix(PREFIX) if name.removeprefix(PREFIX) in privilege_names() else name
