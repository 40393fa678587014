"""A small etcd v3 client over etcd's JSON gateway (``/v3/kv/*``, ``/v3/lease/*``).

Why not a PyPI client: the maintained-looking ones pin old protobuf or grpc releases that
conflict with pymilvus's, or are unmaintained; etcd's own gRPC gateway serves every call we
need as JSON over HTTP, so the standard library is enough and there is nothing to pin.
Keys and values travel base64-encoded; int64 fields come back as JSON strings and are
omitted when zero (proto3), which the helpers here normalise.

Only what cluster mode needs: get, put, delete, prefix range, transactions with compares
(the primitive under every commit and every fence), and leases.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from keeldb.errors import KeelError


class EtcdError(KeelError):
    """etcd could not be reached or refused the request."""


def _b64(data: bytes | str) -> str:
    return base64.b64encode(data.encode() if isinstance(data, str) else data).decode()


def _raw(text: str | None) -> bytes:
    return base64.b64decode(text or "")


def prefix_end(prefix: bytes) -> bytes:
    """The smallest key greater than every key starting with ``prefix`` (etcd's range_end)."""
    p = bytearray(prefix)
    while p and p[-1] == 0xFF:
        p.pop()
    if not p:
        return b"\0"  # etcd: "\0" as range_end means "to the end of the keyspace"
    p[-1] += 1
    return bytes(p)


@dataclass(frozen=True)
class KeyValue:
    key: bytes
    value: bytes
    mod_revision: int
    create_revision: int
    version: int
    lease: int

    @classmethod
    def from_json(cls, kv: dict[str, Any]) -> KeyValue:
        return cls(
            key=_raw(kv.get("key")),
            value=_raw(kv.get("value")),
            mod_revision=int(kv.get("mod_revision", 0)),
            create_revision=int(kv.get("create_revision", 0)),
            version=int(kv.get("version", 0)),
            lease=int(kv.get("lease", 0)),
        )


@dataclass(frozen=True)
class Compare:
    """One condition of a transaction: ``target`` is VERSION, CREATE, MOD, VALUE or LEASE;
    a key that does not exist has version/create/mod revision 0 and lease 0."""

    key: bytes | str
    target: str
    value: int | bytes | str
    result: str = "EQUAL"

    def to_json(self) -> dict[str, Any]:
        field = {"VERSION": "version", "CREATE": "create_revision", "MOD": "mod_revision", "LEASE": "lease"}
        body: dict[str, Any] = {"key": _b64(self.key), "target": self.target, "result": self.result}
        if self.target == "VALUE":
            body["value"] = _b64(self.value if isinstance(self.value, bytes | str) else str(self.value))
        else:
            body[field[self.target]] = str(self.value)
        return body


@dataclass(frozen=True)
class TxnResult:
    succeeded: bool
    revision: int
    ranges: list[list[KeyValue]]  # one list per request_range of the branch that ran


class Etcd:
    def __init__(self, endpoint: str, timeout: float = 5.0) -> None:
        if endpoint.startswith("etcd://"):
            endpoint = "http://" + endpoint[len("etcd://") :]
        self.endpoint = endpoint.rstrip("/")
        self.timeout = timeout

    def _call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        req = urllib.request.Request(
            self.endpoint + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as r:
                out: dict[str, Any] = json.loads(r.read() or b"{}")
        except urllib.error.HTTPError as e:
            raise EtcdError(f"etcd {path}: HTTP {e.code}: {e.read()[:300]!r}") from None
        except (urllib.error.URLError, OSError, TimeoutError) as e:
            raise EtcdError(f"etcd at {self.endpoint} unreachable ({path}): {e}") from None
        if "error" in out and "header" not in out:
            raise EtcdError(f"etcd {path}: {out['error']}")
        return out

    # -- keys -----------------------------------------------------------------------------

    def get(self, key: bytes | str) -> KeyValue | None:
        kvs = self._call("/v3/kv/range", {"key": _b64(key)}).get("kvs") or []
        return KeyValue.from_json(kvs[0]) if kvs else None

    def get_prefix(self, prefix: bytes | str) -> list[KeyValue]:
        p = prefix.encode() if isinstance(prefix, str) else prefix
        out = self._call("/v3/kv/range", {"key": _b64(p), "range_end": _b64(prefix_end(p))})
        return [KeyValue.from_json(kv) for kv in out.get("kvs") or []]

    def put(self, key: bytes | str, value: bytes | str, lease: int = 0) -> int:
        body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
        if lease:
            body["lease"] = str(lease)
        return int(self._call("/v3/kv/put", body)["header"]["revision"])

    def delete(self, key: bytes | str) -> int:
        return int(self._call("/v3/kv/deleterange", {"key": _b64(key)}).get("deleted", 0))

    def txn(
        self,
        compare: list[Compare],
        success: list[dict[str, Any]],
        failure: list[dict[str, Any]] | None = None,
    ) -> TxnResult:
        """All compares hold -> run ``success``, else ``failure``; atomically. Build the
        requests with :func:`put_op`, :func:`range_op` and :func:`delete_op`."""
        out = self._call(
            "/v3/kv/txn",
            {"compare": [c.to_json() for c in compare], "success": success, "failure": failure or []},
        )
        ranges = [
            [KeyValue.from_json(kv) for kv in r["response_range"].get("kvs") or []]
            for r in out.get("responses") or []
            if "response_range" in r
        ]
        return TxnResult(bool(out.get("succeeded", False)), int(out["header"]["revision"]), ranges)

    # -- leases ---------------------------------------------------------------------------

    def lease_grant(self, ttl: int) -> int:
        return int(self._call("/v3/lease/grant", {"TTL": str(ttl)})["ID"])

    def lease_keepalive(self, lease: int) -> int:
        """Refresh a lease; return its remaining TTL, 0 if it has expired (or never was)."""
        out = self._call("/v3/lease/keepalive", {"ID": str(lease)})
        return int(out.get("result", out).get("TTL", 0))

    def lease_revoke(self, lease: int) -> None:
        try:
            self._call("/v3/lease/revoke", {"ID": str(lease)})
        except EtcdError:
            pass  # already expired: the same outcome


def put_op(key: bytes | str, value: bytes | str, lease: int = 0) -> dict[str, Any]:
    body: dict[str, Any] = {"key": _b64(key), "value": _b64(value)}
    if lease:
        body["lease"] = str(lease)
    return {"request_put": body}


def range_op(key: bytes | str) -> dict[str, Any]:
    return {"request_range": {"key": _b64(key)}}


def delete_op(key: bytes | str) -> dict[str, Any]:
    return {"request_delete_range": {"key": _b64(key)}}
