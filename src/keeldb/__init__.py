"""keeldb: a vector database that speaks Milvus's API and keeps count(*) exact through kill -9.

The public surface is small on purpose: ``Client`` (mirrors ``pymilvus.MilvusClient``),
``DataType``, the schema helpers, and the errors.
"""

from keeldb.client import Client, LoadState
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
from keeldb.schema import CollectionSchema, DataType, FieldSchema, IndexParams

__version__ = "0.1.0"

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
