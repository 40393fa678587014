"""The database and alias RPCs (CreateDatabase ... ListAliases): each one call of
``keeldb.Client``'s pymilvus-shaped methods (``engine/namespace.py``), the answer put back
into Milvus's response messages."""

from __future__ import annotations

from typing import Any

import grpc
from pymilvus.grpc_gen import common_pb2, milvus_pb2

from keeldb.client import Client
from keeldb.server import access, convert
from keeldb.server.rpc import rpc


class NamespaceRPCs:
    client: Client

    @rpc(common_pb2.Status)
    def CreateDatabase(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.create_database(request.db_name, convert.kv(request.properties))
        return convert.status()

    @rpc(common_pb2.Status)
    def DropDatabase(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.drop_database(request.db_name)
        return convert.status()

    @rpc(milvus_pb2.ListDatabasesResponse)
    def ListDatabases(self, request: Any, context: grpc.ServicerContext) -> Any:
        names = access.visible_databases(self.client, self.client.list_databases())
        return milvus_pb2.ListDatabasesResponse(status=convert.status(), db_names=names)

    @rpc(milvus_pb2.DescribeDatabaseResponse)
    def DescribeDatabase(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.db_name or "default"
        info = self.client.describe_database(name)
        resp = milvus_pb2.DescribeDatabaseResponse(status=convert.status(), db_name=name)
        for k, v in info.items():
            if k != "name":
                resp.properties.add(key=k, value=str(v))
        return resp

    @rpc(common_pb2.Status)
    def AlterDatabase(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.db_name or "default"
        if request.properties:
            self.client.alter_database_properties(name, convert.kv(request.properties))
        if request.delete_keys:
            self.client.drop_database_properties(name, list(request.delete_keys))
        return convert.status()

    @rpc(common_pb2.Status)
    def CreateAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.create_alias(request.collection_name, request.alias)
        return convert.status()

    @rpc(common_pb2.Status)
    def AlterAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.alter_alias(request.collection_name, request.alias)
        return convert.status()

    @rpc(common_pb2.Status)
    def DropAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        self.client.drop_alias(request.alias)
        return convert.status()

    @rpc(milvus_pb2.DescribeAliasResponse)
    def DescribeAlias(self, request: Any, context: grpc.ServicerContext) -> Any:
        d = self.client.describe_alias(request.alias)
        return milvus_pb2.DescribeAliasResponse(
            status=convert.status(), db_name=d["db_name"], alias=d["alias"], collection=d["collection_name"]
        )

    @rpc(milvus_pb2.ListAliasesResponse)
    def ListAliases(self, request: Any, context: grpc.ServicerContext) -> Any:
        d = self.client.list_aliases(request.collection_name)
        return milvus_pb2.ListAliasesResponse(
            status=convert.status(), db_name=d["db_name"], collection_name=d.get("collection_name", ""),
            aliases=d["aliases"],
        )  # fmt: skip
