"""keeldb: a vector database that speaks Milvus's API and keeps count(*) exact through kill -9.

The public surface is small on purpose: ``Client`` (mirrors ``pymilvus.MilvusClient``),
``DataType``, the schema helpers, and the errors.

Importing ``keeldb`` is cheap: the engine (and FAISS, pyarrow, numpy) load on first use of
``Client`` or the schema types, so ``keeldb chaos --target external`` or ``keeldb --help``
never pay for an engine they do not run.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from keeldb.errors import (
    CollectionNotFound,
    CollectionNotLoaded,
    DatabaseLocked,
    FilterError,
    IndexNotFound,
    InvalidArgument,
    KeelError,
    MissingExtra,
    PartitionNotFound,
    PartitionNotLoaded,
    PrimaryKeyExists,
    StorageError,
)

if TYPE_CHECKING:
    from keeldb.client import Client, LoadState
    from keeldb.schema import CollectionSchema, DataType, FieldSchema, IndexParams

__version__ = "0.1.0"

_LAZY = {
    "Client": "keeldb.client",
    "LoadState": "keeldb.client",
    "CollectionSchema": "keeldb.schema",
    "DataType": "keeldb.schema",
    "FieldSchema": "keeldb.schema",
    "IndexParams": "keeldb.schema",
}


def __getattr__(name: str) -> Any:
    """PEP 562: the engine's names, imported when first asked for."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'keeldb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "Client",
    "CollectionNotFound",
    "CollectionNotLoaded",
    "CollectionSchema",
    "DataType",
    "DatabaseLocked",
    "FieldSchema",
    "FilterError",
    "IndexNotFound",
    "IndexParams",
    "InvalidArgument",
    "KeelError",
    "LoadState",
    "MissingExtra",
    "PartitionNotFound",
    "PartitionNotLoaded",
    "PrimaryKeyExists",
    "StorageError",
]
