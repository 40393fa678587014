"""The user, role and privilege RPCs (CreateCredential ... OperatePrivilegeGroup): each one
call of ``keeldb.Client``'s pymilvus-shaped methods (``keeldb/access/calls.py``), its answer
put back into Milvus's response messages.

They work with or without ``--authorization`` (as in Milvus, where users and grants can be
managed while checks are off); whether calls are *checked* is the interceptor's business
(``server/access.py``).
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from keeldb.access.calls import all_groups
from keeldb.access.state import InvalidAccessArgument
from keeldb.client import Client
from keeldb.server import convert
from keeldb.server.rpc import rpc


def _password(raw: str) -> str:
    """pymilvus sends passwords base64-encoded (CreateCredential, UpdateCredential)."""
    try:
        return base64.b64decode(raw, validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise InvalidAccessArgument("the password must be sent base64-encoded, as pymilvus does") from None


def _grant_entity(item: dict[str, str]) -> milvus_pb2.GrantEntity:
    return milvus_pb2.GrantEntity(
        role=milvus_pb2.RoleEntity(name=item["role_name"]),
        object=milvus_pb2.ObjectEntity(name=item["object_type"]),
        object_name=item["object_name"],
        db_name=item.get("db_name", ""),
        grantor=milvus_pb2.GrantorEntity(
            user=milvus_pb2.UserEntity(name=item.get("grantor_name", "")),
            privilege=milvus_pb2.PrivilegeEntity(name=item["privilege"]),
        ),
    )


class AccessRPCs:
    client: Client

    @rpc(common_pb2.Status)
    def CreateCredential(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.create_user(request.username, _password(request.password))
        return convert.status()

    @rpc(common_pb2.Status)
    def UpdateCredential(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.update_password(request.username, _password(request.oldPassword), _password(request.newPassword))
        return convert.status()

    @rpc(common_pb2.Status)
    def DeleteCredential(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.drop_user(request.username)
        return convert.status()

    @rpc(milvus_pb2.ListCredUsersResponse)
    def ListCredUsers(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.ListCredUsersResponse(status=convert.status(), usernames=self.client.list_users())

    @rpc(common_pb2.Status)
    def CreateRole(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.create_role(request.entity.name)
        return convert.status()

    @rpc(common_pb2.Status)
    def DropRole(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.drop_role(request.role_name, force_drop=request.force_drop)
        return convert.status()

    @rpc(common_pb2.Status)
    def OperateUserRole(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.type == milvus_pb2.OperateUserRoleType.AddUserToRole:
            self.client.grant_role(request.username, request.role_name)
        else:
            self.client.revoke_role(request.username, request.role_name)
        return convert.status()

    @rpc(milvus_pb2.SelectRoleResponse)
    def SelectRole(self, request: Any, context: grpc.ServicerContext) -> Any:
        state = self.client.access_state()
        names = state.role_names()
        if request.HasField("role") and request.role.name:
            names = [n for n in names if n == request.role.name]
        results = []
        for n in names:
            users = [milvus_pb2.UserEntity(name=u) for u in state.users_of(n)] if request.include_user_info else []
            results.append(milvus_pb2.RoleResult(role=milvus_pb2.RoleEntity(name=n), users=users))
        return milvus_pb2.SelectRoleResponse(status=convert.status(), results=results)

    @rpc(milvus_pb2.SelectUserResponse)
    def SelectUser(self, request: Any, context: grpc.ServicerContext) -> Any:
        state = self.client.access_state()
        names = list(state.users)
        if request.HasField("user") and request.user.name:
            names = [n for n in names if n == request.user.name]
        results = []
        for n in names:
            roles = [milvus_pb2.RoleEntity(name=r) for r in state.users[n].roles] if request.include_role_info else []
            results.append(milvus_pb2.UserResult(user=milvus_pb2.UserEntity(name=n), roles=roles))
        return milvus_pb2.SelectUserResponse(status=convert.status(), results=results)

    @rpc(milvus_pb2.SelectGrantResponse)
    def SelectGrant(self, request: Any, context: grpc.ServicerContext) -> Any:
        e = request.entity
        items = self.client.describe_role(e.role.name, db_name=e.db_name)["privileges"]
        if e.HasField("object") and e.object.name:
            items = [i for i in items if i["object_type"] == e.object.name]
        if e.object_name:
            items = [i for i in items if i["object_name"] == e.object_name]
        return milvus_pb2.SelectGrantResponse(status=convert.status(), entities=[_grant_entity(i) for i in items])

    @rpc(common_pb2.Status)
    def OperatePrivilege(self, request: Any, context: grpc.ServicerContext) -> Any:
        e = request.entity
        op = self.client.grant_privilege if request.type == milvus_pb2.OperatePrivilegeType.Grant else self.client.revoke_privilege
        op(e.role.name, e.object.name, e.grantor.privilege.name, e.object_name, e.db_name)
        return convert.status()

    @rpc(common_pb2.Status)
    def OperatePrivilegeV2(self, request: Any, context: grpc.ServicerContext) -> Any:
        grant = request.type == milvus_pb2.OperatePrivilegeType.Grant
        op = self.client.grant_privilege_v2 if grant else self.client.revoke_privilege_v2
        op(request.role.name, request.grantor.privilege.name, request.collection_name, request.db_name)
        return convert.status()

    @rpc(common_pb2.Status)
    def CreatePrivilegeGroup(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.create_privilege_group(request.group_name)
        return convert.status()

    @rpc(common_pb2.Status)
    def DropPrivilegeGroup(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.drop_privilege_group(request.group_name)
        return convert.status()

    @rpc(milvus_pb2.ListPrivilegeGroupsResponse)
    def ListPrivilegeGroups(self, request: Any, context: grpc.ServicerContext) -> Any:
        groups = [
            milvus_pb2.PrivilegeGroupInfo(group_name=n, privileges=[milvus_pb2.PrivilegeEntity(name=p) for p in privs])
            for n, privs in all_groups(self.client.access_state()).items()
        ]
        return milvus_pb2.ListPrivilegeGroupsResponse(status=convert.status(), privilege_groups=groups)

    @rpc(common_pb2.Status)
    def OperatePrivilegeGroup(self, request: Any, context: grpc.ServicerContext) -> Any:
        names = [p.name for p in request.privileges]
        if request.type == milvus_pb2.OperatePrivilegeGroupType.AddPrivilegesToGroup:
            self.client.add_privileges_to_group(request.group_name, names)
        else:
            self.client.remove_privileges_from_group(request.group_name, names)
        return convert.status()
