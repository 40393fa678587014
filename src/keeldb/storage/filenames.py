"""Every name keeldb gives a file or an object, formatted and parsed in one place.

LevelDB keeps this in ``filename.h`` for the reason that applies here too: garbage
collection deletes "whatever looks like ours and no manifest needs", recovery lists logs by
number, and a cluster writer tells its own files from a predecessor's by the tag in the
name. A name formatted one way in one module and parsed another way in another is how a live
file comes to look like garbage. Numbers are zero-padded to a fixed width so that byte
order (a directory listing sorted, an S3 LIST) is numeric order.

Layout (docs/formats.md):

    <collections>/<cid:06d>/                one collection (``-replica`` for a cluster replica)
        MANIFEST-<version:012d>              manifest versions
        seg-<id:012d>[-<tag>].arrow          segment files
        del-<id:012d>[-<tag>].arrow          delete files
        idx-<id:012d>[-<tag>].<ext>          index files
        wal/<log:012d>.log                   the write-ahead log
    collections/<cid>/wal/<log:012d>/<chunk:08d>   the cluster's log, one object per chunk

``<tag>`` is the cluster writer's lease id (``cluster/store.py``); embedded names have none.
"""

from __future__ import annotations

SEGMENT = "seg"
DELETES = "del"
INDEX = "idx"
DATA_KINDS = (SEGMENT, DELETES, INDEX)
ARROW = "arrow"  # segment and delete files are Arrow IPC files (storage/segment_file.py)

LOG_SUFFIX = ".log"
MANIFEST_PREFIX = "MANIFEST-"
TMP_SUFFIX = ".tmp"
REPLICA_SUFFIX = "-replica"


# -- the log ------------------------------------------------------------------------------


def log_name(number: int) -> str:
    return f"{number:012d}{LOG_SUFFIX}"


def parse_log_name(name: str) -> int | None:
    """The log number of ``name``, or None if it is not a log file."""
    stem = name[: -len(LOG_SUFFIX)]
    if not name.endswith(LOG_SUFFIX) or not stem.isdigit():
        return None
    return int(stem)


# -- manifests ------------------------------------------------------------------------------


def manifest_name(version: int) -> str:
    return f"{MANIFEST_PREFIX}{version:012d}"


def parse_manifest_name(name: str) -> int | None:
    """The version of ``name``, or None if it is not a committed manifest (a ``.tmp`` is a
    commit that never happened, or one in flight)."""
    rest = name[len(MANIFEST_PREFIX) :]
    if not name.startswith(MANIFEST_PREFIX) or not rest.isdigit():
        return None
    return int(rest)


# -- segment, delete and index files --------------------------------------------------------


def data_file_name(kind: str, fid: int, ext: str, tag: str = "") -> str:
    """``seg-000000000012.arrow``; with a writer's ``tag``, ``seg-000000000012-7f3a.arrow``."""
    assert kind in DATA_KINDS, kind
    return f"{kind}-{fid:012d}-{tag}.{ext}" if tag else f"{kind}-{fid:012d}.{ext}"


def is_data_file(name: str) -> bool:
    """Whether ``name`` looks like a segment, delete or index file (GC's test of "ours")."""
    return name.startswith(tuple(f"{kind}-" for kind in DATA_KINDS))


def parse_data_file_name(name: str) -> tuple[str, int, str, str] | None:
    """(kind, id, tag, ext) of a data file name, or None if it is not one."""
    stem, dot, ext = name.rpartition(".")
    kind, _, rest = stem.partition("-")
    fid, _, tag = rest.partition("-")
    if not dot or kind not in DATA_KINDS or len(fid) != 12 or not fid.isdigit():
        return None
    return kind, int(fid), tag, ext


def has_tag(name: str, tag: str) -> bool:
    """Whether the data file ``name`` was written under the writer tag ``tag``."""
    parsed = parse_data_file_name(name)
    return parsed is not None and parsed[2] == tag


# -- temporary files ------------------------------------------------------------------------


def tmp_name(name: str) -> str:
    """Where an atomic replace of ``name`` writes first (fs.atomic_replace)."""
    return name + TMP_SUFFIX


def is_tmp(name: str) -> bool:
    return name.endswith(TMP_SUFFIX)


# -- collection directories -----------------------------------------------------------------


def collection_dir_name(cid: int) -> str:
    """A collection's directory: its catalog id, never its name."""
    return f"{cid:06d}"


def replica_dir_name(cid: int) -> str:
    """A cluster read replica's local cache of collection ``cid``."""
    return collection_dir_name(cid) + REPLICA_SUFFIX


# -- the cluster's log objects ----------------------------------------------------------------


def wal_chunk_name(number: int, chunk: int) -> str:
    """``<log>/<chunk>`` under a collection's ``wal/`` prefix: one group commit's object."""
    return f"{number:012d}/{chunk:08d}"


def parse_wal_chunk_name(rest: str) -> tuple[int, int] | None:
    number, _, chunk = rest.partition("/")
    if not (number.isdigit() and chunk.isdigit()):
        return None
    return int(number), int(chunk)


def wal_log_label(number: int, objects: int) -> str:
    """How the recovery report names a cluster log it replayed."""
    return f"wal/{number:012d} ({objects} objects)"
