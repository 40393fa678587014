"""Collection properties: what ``create_collection(properties=...)``,
``alter_collection_properties`` and ``drop_collection_properties`` may set, checked with
Milvus 2.6's rules and words (proxy's ``alterCollectionTask.PreExecute`` and rootcoord's
alter-collection broadcast).

Properties keeldb acts on:

- ``collection.ttl.seconds``: rows expire (``engine/ttl.py``);
- ``timezone``: the IANA zone TIMESTAMPTZ values without an offset are read in and all are
  returned in (every new collection gets ``timezone=UTC``, as Milvus copies its default);
- ``partitionkey.isolation``: searches must pin one partition-key value;
- ``dynamicfield.enabled``: ``true`` turns the dynamic field on (a schema change; turning it
  off is refused, as in Milvus).

Properties keeldb only keeps and shows (it always memory-maps segment files and loads
eagerly): ``mmap.enabled``, ``lazyload.enabled`` -- refused while the collection is loaded,
as Milvus refuses them -- and any other key, kept as given. Values are kept as strings, as
Milvus keeps them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from keeldb.engine import ttl
from keeldb.errors import InvalidArgument, KeelError
from keeldb.fields import timestamptz

TIMEZONE = "timezone"
MMAP = "mmap.enabled"
LAZYLOAD = "lazyload.enabled"
ISOLATION = "partitionkey.isolation"
DYNAMIC = "dynamicfield.enabled"
_LOADED_ONLY = (MMAP, LAZYLOAD)


class CollectionLoaded(KeelError):
    """Milvus's ErrCollectionLoaded: the change needs a released collection."""

    code = 104


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _bool(key: str, value: str) -> bool:
    low = value.strip().lower()
    if low not in ("true", "false"):
        raise InvalidArgument(f"invalid {key} value: {value}, expected: true, false")
    return low == "true"


def check(props: Mapping[str, str], *, has_partition_key: bool) -> None:
    """The values of the properties keeldb understands (InvalidArgument otherwise)."""
    if TIMEZONE in props:
        timestamptz.check_timezone(props[TIMEZONE])
    if ttl.PROPERTY in props:
        ttl.parse(props[ttl.PROPERTY])
    for key in (MMAP, LAZYLOAD):
        if key in props:
            _bool(key, props[key])
    if ISOLATION in props and _bool(ISOLATION, props[ISOLATION]) and not has_partition_key:
        raise InvalidArgument(
            "partition key isolation mode is enabled but no partition key field is set. "
            "Please set the partition key first"
        )


def for_create(given: Mapping[str, Any] | None, *, has_partition_key: bool) -> dict[str, str]:
    props = {str(k): as_text(v) for k, v in (given or {}).items()}
    props.pop(DYNAMIC, None)  # create_collection's enable_dynamic_field says it
    check(props, has_partition_key=has_partition_key)
    props.setdefault(TIMEZONE, timestamptz.DEFAULT_TIMEZONE)
    return props


def altered(
    current: Mapping[str, str],
    given: Mapping[str, Any],
    *,
    loaded: bool,
    has_partition_key: bool,
    has_vector_index: bool,
) -> tuple[dict[str, str], bool | None]:
    """The properties after ``alter_collection_properties(given)``, and the requested
    dynamic-field state (None: not asked)."""
    if not given:
        raise InvalidArgument("no properties or delete keys provided")
    props = {str(k): as_text(v) for k, v in given.items()}
    if loaded and any(k in props for k in _LOADED_ONLY):
        raise CollectionLoaded("can not alter mmap properties if collection loaded")
    dynamic = None
    if DYNAMIC in props:
        if len(props) != 1:
            raise InvalidArgument("cannot alter dynamic schema with other properties at the same time")
        dynamic = _bool(DYNAMIC, props.pop(DYNAMIC))
        if not dynamic:
            raise InvalidArgument("dynamic schema cannot supported to be disabled: invalid parameter")
        return dict(current), dynamic
    check(props, has_partition_key=has_partition_key)
    if ISOLATION in props and has_vector_index:
        old = _bool(ISOLATION, current.get(ISOLATION, "false"))
        if _bool(ISOLATION, props[ISOLATION]) != old:
            raise InvalidArgument(
                "can not alter partition key isolation mode if the collection already has a vector index. "
                "Please drop the index first"
            )
    return {**current, **props}, dynamic


def dropped(current: Mapping[str, str], keys: Iterable[str], *, loaded: bool) -> dict[str, str]:
    keys = [str(k) for k in keys]
    if not keys:
        raise InvalidArgument("no properties or delete keys provided")
    if DYNAMIC in keys:
        raise InvalidArgument(f"cannot delete key {DYNAMIC}, dynamic field schema could support set to true/false")
    for k in keys:
        if loaded and k in _LOADED_ONLY:
            # Milvus says "mmap" for every key it refuses to delete while loaded
            raise CollectionLoaded(f"can not delete mmap properties if collection loaded ({k})")
    return {k: v for k, v in current.items() if k not in keys}


def isolated(props: Mapping[str, str]) -> bool:
    return props.get(ISOLATION, "false").strip().lower() == "true"
