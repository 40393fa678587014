"""What the issue-14 tests share: a collection created with an exact (FLAT, L2) index on its
vector field ``v``, so it is loaded and every search is exact. Works with keeldb.Client and
pymilvus.MilvusClient alike."""

from __future__ import annotations

from typing import Any

from keeldb import DataType


def create_flat(client: Any, name: str, schema: Any, **kwargs: Any) -> None:
    ip = client.prepare_index_params()
    ip.add_index("v", "FLAT", metric_type="L2")
    client.create_collection(name, schema=schema, index_params=ip, **kwargs)


def base_schema(client: Any, *, dynamic: bool = False) -> Any:
    """A schema with the INT64 primary key ``id`` and a 2-d vector ``v``; tests add the rest."""
    s = client.create_schema(enable_dynamic_field=dynamic)
    s.add_field("id", DataType.INT64, is_primary=True)
    s.add_field("v", DataType.FLOAT_VECTOR, dim=2)
    return s
