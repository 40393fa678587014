"""Errors raised by keeldb.

Every error carries a ``code`` taken from Milvus's own error table (``merr`` in the Milvus
source), so that the gRPC server can hand it to a ``pymilvus`` client unchanged and code
that matches on ``e.code`` behaves the same against Milvus and against keeldb.
"""

from __future__ import annotations


class KeelError(Exception):
    """Base class. ``code`` is the Milvus status code a client would see."""

    code: int = 65535  # Milvus's "unexpected error"

    def __init__(self, message: str, *, code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class InvalidArgument(KeelError):
    """Bad input: the call changed nothing. (Milvus: ParameterInvalid.)"""

    code = 1100


class FilterError(InvalidArgument):
    """A malformed filter expression; ``position`` is the 0-based column of the problem.
    The text starts as Milvus's does ("failed to create query plan: cannot parse
    expression: <expr>, error: ..."), which clients match on, then says where."""

    def __init__(self, message: str, expr: str = "", position: int | None = None) -> None:
        self.expr = expr
        self.position = position
        text = f"failed to create query plan: cannot parse expression: {expr}, error: {message}" if expr else message
        if position is not None and expr:
            text = f"{text} at column {position + 1}\n  {expr}\n  {' ' * position}^"
        super().__init__(text)


class PrimaryKeyExists(InvalidArgument):
    """``insert`` named a primary key that is already live; use ``upsert`` to overwrite."""


class CollectionNotFound(KeelError):
    code = 100


class CollectionNotLoaded(KeelError):
    code = 101


class PartitionNotFound(KeelError):
    code = 200


class PartitionNotLoaded(KeelError):
    code = 201


class IndexNotFound(KeelError):
    code = 700


class StorageError(KeelError):
    """An I/O failure. The collection refuses further writes until it is reopened, because
    after a failed fsync the kernel may have dropped dirty pages we can no longer trust."""

    code = 65535


class CorruptionError(StorageError):
    """An on-disk structure failed its checksum or could not be parsed."""


class ReadOnlyReplica(KeelError):
    """A write reached a cluster node's read replica (ownership moved while it was routed).
    Code 65535: nothing was written, but the client retries through routing anyway."""

    code = 65535


class DatabaseLocked(KeelError):
    """Another process holds the data directory open."""

    code = 65535


class ClientClosed(KeelError):
    code = 1


class MissingExtra(KeelError):
    """An optional feature was asked for without the package that provides it (see
    ``keeldb.extras``). Nothing was changed."""

    code = 65535


__all__ = [
    "ClientClosed",
    "CollectionNotFound",
    "CollectionNotLoaded",
    "CorruptionError",
    "DatabaseLocked",
    "FilterError",
    "IndexNotFound",
    "InvalidArgument",
    "KeelError",
    "MissingExtra",
    "PartitionNotFound",
    "PartitionNotLoaded",
    "PrimaryKeyExists",
    "StorageError",
]
