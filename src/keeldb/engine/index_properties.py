"""Index properties: what ``alter_index_properties`` / ``drop_index_properties`` (Milvus's
AlterIndex RPC, with ``extra_params`` or ``delete_keys``) and ``create_index``'s params may
set, checked with Milvus 2.6's rules and words (proxy ``alterIndexTask.PreExecute``,
datacoord ``AlterIndex``, ``indexparams.IsConfigableIndexParam``,
``indexparamcheck.ValidateMmapIndexParams``).

Milvus lets three keys be altered; any other "is not a configable index property". keeldb:

- ``mmap.enabled`` is acted on: a vector index's saved files are opened memory-mapped
  (true) or read into memory (false); unset, ``KEELDB_INDEX_MMAP`` decides (default:
  read into memory, as Milvus). The open indexes are reopened at once (``IndexBuilder._reopen``) and at every
  open after (``IndexSpec.mmap``). Refused where keeldb cannot honour it: ``false`` on a
  FLAT index over FLOAT_VECTOR (it has no file: searches read the segment's own
  memory-mapped vectors). Scalar indexes' files are opened the same way.
- ``warmup`` and ``indexoffsetcache.enabled`` are refused with the reason: keeldb has no
  tiered storage to warm (every index is opened when the collection opens) and no BITMAP
  index offset cache.

Like Milvus, a change needs a released collection, keeps the other params, and is ONE
catalog commit of the index definition (the property lives in ``IndexParam.params``, where
``describe_index`` shows it, as Milvus keeps it in the index params). Values are kept as the
client sent them (pymilvus sends ``str(value)``, e.g. ``"True"``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from keeldb.engine.properties import CollectionLoaded
from keeldb.errors import InvalidArgument
from keeldb.index.params import MMAP_KEY, index_spec, parse_go_bool
from keeldb.schema import FieldSchema, IndexParam

WARMUP = "warmup"
OFFSET_CACHE = "indexoffsetcache.enabled"
CONFIGURABLE = (MMAP_KEY, OFFSET_CACHE, WARMUP)  # Milvus's configableIndexParams
_NOT_HONOURED = {
    WARMUP: "keeldb opens every index when the collection opens (memory-mapped or read, as mmap.enabled "
            "says) and has no tiered storage to warm up",
    OFFSET_CACHE: "keeldb has no BITMAP index offset cache",
}  # fmt: skip


def as_sent(value: Any) -> str:
    """A property value as pymilvus puts it on the wire (``utils.dumps``): JSON for a
    dict, ``str`` for anything else (``True`` -> ``"True"``)."""
    if isinstance(value, dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def check_keys(keys: Iterable[str]) -> None:
    """Every key one Milvus lets be altered or dropped (checked first, as the proxy does)."""
    for k in keys:
        if k not in CONFIGURABLE:
            raise InvalidArgument(f"{k} is not a configable index property")


def loaded_error(collection: str) -> CollectionLoaded:
    return CollectionLoaded(
        "can't alter index on loaded collection, please release the collection first: "
        f"collection already loaded[collection={collection}]"
    )


def check_values(params: Mapping[str, Any], field: FieldSchema | None, index: IndexParam) -> None:
    """The configurable keys among ``params`` (a change, or create_index's params) of
    ``index`` on ``field`` (None: a key of the dynamic field), checked against what keeldb
    can honour for this index."""
    index_type = index.index_type
    for key, reason in _NOT_HONOURED.items():
        if key in params:
            raise InvalidArgument(f"index property {key} is not supported: {reason}")
    if MMAP_KEY not in params:
        return
    enable = parse_go_bool(MMAP_KEY, params[MMAP_KEY])
    if field is None or not field.kind.is_vector:
        return  # a scalar index is a file (index/scalar_index.py), opened as asked
    if not enable and not _has_file(field, index):
        raise InvalidArgument(
            f"{MMAP_KEY}=false is not supported for index type {index_type} on {field.name!r}: a FLAT index on "
            "FLOAT_VECTOR has no file, its searches read the segment's own memory-mapped vectors"
        )


def _has_file(field: FieldSchema, index: IndexParam) -> bool:
    """Whether the index on a vector field is a file keeldb opens (FLAT on FLOAT_VECTOR is
    not). A definition the current code cannot build has no file either."""
    try:
        spec = index_spec(index.index_type, index.metric_type or getattr(field.kind, "default_metric", ""), field.dim or 0, dict(index.params), field.dtype)
    except InvalidArgument:
        return False
    return spec.needs_file


def altered(
    collection: str, index: IndexParam, field: FieldSchema, given: Mapping[str, Any], *, loaded: bool
) -> dict[str, Any]:
    """The index's params after ``alter_index_properties(given)``."""
    if not given:
        raise InvalidArgument("no properties or delete keys provided")
    props = {str(k): as_sent(v) for k, v in given.items()}
    if loaded:
        raise loaded_error(collection)
    params = {**index.params, **props}
    check_values(props, field, index)
    return params


def dropped(collection: str, index: IndexParam, keys: Iterable[str], *, loaded: bool) -> dict[str, Any]:
    """The index's params after ``drop_index_properties(keys)`` (an absent key: nothing to drop)."""
    keys = [str(k) for k in keys]
    if not keys:
        raise InvalidArgument("no properties or delete keys provided")
    if loaded:
        raise loaded_error(collection)
    return {k: v for k, v in index.params.items() if k not in keys}


def mmap_of(params: Mapping[str, Any]) -> bool | None:
    """An index definition's ``mmap.enabled`` (None: unset). Lenient, for definitions read
    from the catalog: a value the checks would refuse means the default, never an unusable
    index."""
    if MMAP_KEY not in params:
        return None
    try:
        return parse_go_bool(MMAP_KEY, params[MMAP_KEY])
    except InvalidArgument:
        return None


def without_configurable(params: Mapping[str, Any]) -> dict[str, Any]:
    """The params that define what an index is: create_index of an existing index is the
    same index whatever its alterable properties say (Milvus's ``checkParams`` leaves out
    mmap and warmup the same way)."""
    return {k: v for k, v in params.items() if k not in CONFIGURABLE}
