"""The REST API's authentication and authorization (the gRPC path's, with Milvus's HTTP
answers), ``/metrics`` parsed with prometheus_client's text parser and seen to move,
``/healthz`` and gRPC health checking."""

from __future__ import annotations

import base64
from typing import Any

import grpc
import httpx
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client.parser import text_string_to_metric_families
from pymilvus import MilvusClient

from tests.rest_util import client, data, post, rest_server


def _samples(http: httpx.Client) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = http.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_auth_shared_credential() -> None:
    with rest_server(auth="root:secret") as server:
        http = client(server)
        none = post(http, "collections/list")
        assert none["_http"] == 401 and none["code"] == 1800
        wrong = post(http, "collections/list", headers={"Authorization": "Bearer root:nope"})
        assert wrong["_http"] == 401 and wrong["code"] == 1800
        assert data(post(http, "collections/list", headers={"Authorization": "Bearer root:secret"})) == []
        basic = "Basic " + base64.b64encode(b"root:secret").decode()
        assert data(post(http, "collections/create", {"collectionName": "c", "dimension": 2}, headers={"Authorization": basic})) == {}
        mc = MilvusClient(uri=server.uri, token="root:secret")
        assert mc.list_collections() == ["c"]
        mc.close()
        # health needs no credentials, on either port
        assert http.get("/healthz").text == "OK"
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            reply = health_pb2_grpc.HealthStub(ch).Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
        http.close()


def test_authorization_users_roles_and_denials() -> None:
    with rest_server(extra_args=["--authorization"]) as server:
        http = client(server)
        root = {"Authorization": "Bearer root:Milvus"}
        bob = {"Authorization": "Bearer bob:Secret123"}
        assert data(post(http, "collections/create", {"collectionName": "c", "dimension": 2}, headers=root)) == {}
        assert data(post(http, "users/create", {"userName": "bob", "password": "Secret123"}, headers=root)) == {}
        assert "bob" in data(post(http, "users/list", headers=root))
        assert data(post(http, "roles/create", {"roleName": "reader"}, headers=root)) == {}
        assert data(post(http, "users/grant_role", {"userName": "bob", "roleName": "reader"}, headers=root)) == {}
        assert data(post(http, "users/describe", {"userName": "bob"}, headers=root)) == ["reader"]
        search = {"collectionName": "c", "data": [[1.0, 0.0]], "limit": 1}
        denied = post(http, "entities/search", search, headers=bob)
        assert denied["_http"] == 403 and denied["code"] == 1401 and "PrivilegeSearch" in denied["message"]
        grant = {"roleName": "reader", "objectType": "Collection", "objectName": "c", "privilege": "Search"}
        assert data(post(http, "roles/grant_privilege", grant, headers=root)) == {}
        assert any(p["privilege"] == "Search" for p in data(post(http, "roles/describe", {"roleName": "reader"}, headers=root)))
        assert data(post(http, "entities/search", search, headers=bob)) == []
        # the same decisions as over gRPC
        mc = MilvusClient(uri=server.uri, token="bob:Secret123")
        assert mc.search("c", [[1.0, 0.0]], limit=1) == [[]]
        mc.close()
        assert post(http, "entities/insert", {"collectionName": "c", "data": [{"id": 1, "vector": [1, 0]}]}, headers=bob)["code"] == 1401
        assert post(http, "users/create", {"userName": "eve", "password": "Secret123"}, headers=bob)["_http"] == 403
        assert post(http, "collections/list", headers={"Authorization": "Bearer bob:wrong"})["code"] == 1800
        assert data(post(http, "users/update_password", {"userName": "bob", "password": "Secret123", "newPassword": "Other1234"}, headers=bob)) == {}
        assert post(http, "collections/list", headers=bob)["code"] == 1800
        http.close()


def test_metrics_move_and_health() -> None:
    with rest_server() as server:
        http = client(server)
        mc = MilvusClient(uri=server.uri)
        before = _samples(http)
        assert _value(before, "keeldb_recovery_duration_seconds_count") >= 0  # declared from the start
        data(post(http, "collections/create", {"collectionName": "m", "dimension": 2}))
        rows = [{"id": i, "vector": [float(i), 1.0]} for i in range(50)]
        data(post(http, "entities/insert", {"collectionName": "m", "data": rows}))
        data(post(http, "entities/search", {"collectionName": "m", "data": [[1.0, 1.0]], "limit": 3}))
        mc.search("m", [[1.0, 1.0]], limit=3)
        mc.search("m", [[1.0, 1.0]], limit=3)
        mc.flush("m")
        after = _samples(http)
        assert _value(after, "keeldb_rpc_requests_total", rpc="Search", status="0", via="rest") == 1
        assert _value(after, "keeldb_rpc_requests_total", rpc="Search", status="0", via="grpc") == 2
        assert _value(after, "keeldb_rpc_requests_total", rpc="Insert", status="0", via="rest") == 1
        assert _value(after, "keeldb_http_requests_total", endpoint="entities/search", code="0") == 1
        assert _value(after, "keeldb_rpc_duration_seconds_count", rpc="Search", via="grpc") == 2
        assert _value(after, "keeldb_collection_rows", db="default", collection="m") == 50
        assert _value(after, "keeldb_collection_segments", db="default", collection="m") >= 1
        assert _value(after, "keeldb_flush_duration_seconds_count") >= 1
        assert _value(after, "keeldb_wal_synced_bytes_total") > 0
        assert _value(after, "keeldb_wal_group_commit_bytes_count") >= 1
        # a refused call is counted under its Milvus code
        post(http, "collections/describe", {"collectionName": "nope"})
        assert _value(_samples(http), "keeldb_rpc_requests_total", rpc="DescribeCollection", status="100", via="rest") == 1
        assert http.get("/healthz").text == "OK"
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as ch:
            stub = health_pb2_grpc.HealthStub(ch)
            for service in ("", "milvus.proto.milvus.MilvusService"):
                reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
                assert reply.status == health_pb2.HealthCheckResponse.SERVING
        mc.close()
        http.close()
