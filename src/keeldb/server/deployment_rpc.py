"""What pymilvus reads about a deployment: replicas (GetReplicas, ``describe_replica``) and
resource groups (``list_resource_groups``, ``describe_resource_group``).

keeldb has no query-node placement to configure: one replica of every loaded collection,
served by the standalone server, or in a cluster by every node with the read role; one
resource group, Milvus's default, holding those nodes. Calls that would change placement
(CreateResourceGroup, TransferReplica, ...) are answered with a Milvus status saying so
(server/unimplemented.py), never accepted and ignored.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

import grpc
from pymilvus.grpc_gen import milvus_pb2, rg_pb2

from keeldb.client import Client
from keeldb.errors import CollectionNotFound, InvalidArgument
from keeldb.server import convert
from keeldb.server.rpc import rpc

DEFAULT_GROUP = "__default_resource_group"
# (node id, address) of the nodes serving reads: this server, or a cluster's read nodes.
Members = Callable[[], list[tuple[int, str]]]


def standalone(address: str) -> Members:
    return lambda: [(1, address)]


class DeploymentRPCs:
    client: Client
    members: Members

    @rpc(milvus_pb2.GetReplicasResponse)
    def GetReplicas(self, request: Any, context: grpc.ServicerContext) -> Any:
        name = request.collection_name or self._named_by_id(request.collectionID)
        entry = self.client.collection_entry(name)
        if not entry.is_loaded:
            return milvus_pb2.GetReplicasResponse(status=convert.status())  # Milvus: no replica until loaded
        nodes = self.members()
        ids = [n for n, _ in nodes]
        shard = milvus_pb2.ShardReplica(
            leaderID=ids[0], leader_addr=nodes[0][1], dm_channel_name=f"keeldb-dml_{entry.id}_0v0", node_ids=ids
        )
        replica = milvus_pb2.ReplicaInfo(
            replicaID=entry.id, collectionID=entry.id, partition_ids=sorted(entry.visible_partitions),
            shard_replicas=[shard], node_ids=ids, resource_group_name=DEFAULT_GROUP,
        )  # fmt: skip
        return milvus_pb2.GetReplicasResponse(status=convert.status(), replicas=[replica])

    def _named_by_id(self, collection_id: int) -> str:
        """pymilvus's describe_replica sends the collection's id (from describe_collection)."""
        for name in self.client.list_collections():
            if self.client.collection_entry(name).id == collection_id:
                return name
        raise CollectionNotFound(f"collection not found[collection={collection_id}]")

    @rpc(milvus_pb2.ListResourceGroupsResponse)
    def ListResourceGroups(self, request: Any, context: grpc.ServicerContext) -> Any:
        return milvus_pb2.ListResourceGroupsResponse(status=convert.status(), resource_groups=[DEFAULT_GROUP])

    @rpc(milvus_pb2.DescribeResourceGroupResponse)
    def DescribeResourceGroup(self, request: Any, context: grpc.ServicerContext) -> Any:
        if request.resource_group != DEFAULT_GROUP:
            raise InvalidArgument(f"resource group not found[rg={request.resource_group}]")
        nodes = self.members()
        loaded = {n: 1 for n in self.client.list_collections() if self.client.collection_entry(n).is_loaded}
        group = milvus_pb2.ResourceGroup(
            name=DEFAULT_GROUP, capacity=len(nodes), num_available_node=len(nodes), num_loaded_replica=loaded,
            config=rg_pb2.ResourceGroupConfig(requests=rg_pb2.ResourceGroupLimit(node_num=len(nodes)),
                                              limits=rg_pb2.ResourceGroupLimit(node_num=len(nodes))),
            nodes=[_node_info(i, a) for i, a in nodes],
        )  # fmt: skip
        return milvus_pb2.DescribeResourceGroupResponse(status=convert.status(), resource_group=group)


def _node_info(node_id: int, address: str) -> Any:
    from pymilvus.grpc_gen import common_pb2

    return common_pb2.NodeInfo(node_id=node_id, address=address, hostname=socket.gethostname())
