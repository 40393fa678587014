"""Partition keys: a collection whose rows are spread over ``num_partitions`` internal
partitions by a hash of one field (Milvus's ``is_partition_key``, default 16 partitions,
named ``_default_0`` ... ``_default_{n-1}``).

Partition *i* has id *i*, so routing is ``hash(key) % n`` and needs no catalog lookup; the
partitions exist from the create on and cannot be created, dropped, loaded or named by
hand (Milvus refuses all of that in partition-key mode). A filter that pins the key
(``key == x``, ``key in [...]``, as a conjunct of the whole filter) reads only the
partitions those values hash to.

The hash is keeldb's own and part of the on-disk format (rows carry their partition id in
``$partition``, docs/formats.md): CRC-32 of the key's bytes -- an INT64 key as 8 bytes
little-endian, a VARCHAR key as UTF-8. Milvus uses murmur3 for INT64 keys; the assignment
of keys to partitions is not observable through the API (only through partition
statistics), and CRC-32 is in every Python.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa

from keeldb.errors import InvalidArgument

DEFAULT_NUM_PARTITIONS = 16
MAX_PARTITIONS = 1024
PROPERTY_ISOLATION = "partitionkey.isolation"
REFUSAL = "not support manually specifying the partition names if partition key mode is used"


def partition_names(n: int) -> dict[str, int]:
    return {f"_default_{i}": i for i in range(n)}


def check_num_partitions(n: Any) -> int:
    if n is None or n == 0:
        return DEFAULT_NUM_PARTITIONS
    if isinstance(n, bool) or not isinstance(n, int) or n < 0:
        raise InvalidArgument("the specified partitions should be greater than 0 if partition key is used")
    if n > MAX_PARTITIONS:
        raise InvalidArgument(f"partition number ({n}) exceeds max configuration ({MAX_PARTITIONS})")
    return n


def hash_keys(values: Iterable[Any]) -> np.ndarray:
    """CRC-32 of each key (module docstring), as uint32."""
    out = []
    for v in values:
        if isinstance(v, str):
            out.append(zlib.crc32(v.encode("utf-8")))
        else:
            out.append(zlib.crc32(int(v).to_bytes(8, "little", signed=True)))
    return np.asarray(out, dtype=np.uint32)


def route(n: int, column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Each row's partition id (= its partition's index) from its key."""
    return (hash_keys(column.to_pylist()) % np.uint32(n)).astype(np.int64)


def partitions_of(n: int, values: Iterable[Any]) -> list[int]:
    """The partition ids the given key values live in (for pruning a read)."""
    return sorted({int(p) for p in hash_keys(values) % np.uint32(n)})
