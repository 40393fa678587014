"""What pymilvus reads about a deployment from ``keeldb serve``: one replica of a loaded
collection, the default resource group with this server in it; placement changes refused
with a Milvus status that says why."""

from __future__ import annotations

import pytest
from pymilvus import MilvusClient
from pymilvus.exceptions import MilvusException

from tests.server_util import KeelServer


def test_replicas_and_resource_groups() -> None:
    with KeelServer() as srv:
        c = MilvusClient(uri=srv.uri)
        c.create_collection("c", dimension=2)
        replicas = c.describe_replica("c")
        assert len(replicas) == 1
        r = replicas[0]
        assert r.resource_group == "__default_resource_group" and list(r.group_nodes) == [1]
        assert [s.shard_leader for s in r.shards] == [1]
        c.release_collection("c")
        assert c.describe_replica("c") == []  # as Milvus: no replica while released
        assert c.list_resource_groups() == ["__default_resource_group"]
        g = c.describe_resource_group("__default_resource_group")
        assert g.name == "__default_resource_group" and g.num_available_node == 1
        assert [n.address for n in g.nodes] == [f"{srv.host}:{srv.port}"]
        with pytest.raises(MilvusException, match="resource group not found"):
            c.describe_resource_group("other")
        with pytest.raises(MilvusException, match="one resource group"):
            c.create_resource_group("other")
        with pytest.raises(MilvusException, match="one resource group"):
            c.transfer_replica("__default_resource_group", "other", "c", 1)
